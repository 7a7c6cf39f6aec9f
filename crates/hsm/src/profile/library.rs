//! Where a profile's module library is: the resolution rule, [`LibraryPath`] and `${VAR}`
//! expansion.

use super::{MODULE_ENV, Profile};
use crate::HsmError;
use std::path::{Path, PathBuf};

impl Profile {
    /// Returns this profile with the module library fixed to `path` (tests, and callers that
    /// located the module themselves); the resolution rule is then skipped.
    pub fn with_library(mut self, path: impl Into<PathBuf>) -> Profile {
        self.library_override = Some(path.into());
        self
    }

    /// Resolves the module library (rule in `hsm-profiles/README.md`):
    /// 1. a path set with [`Profile::with_library`];
    /// 2. `$GMCHAIN_PKCS11_MODULE`, when set and not empty;
    /// 3. `${VAR}` in `library` is expanded; an absolute path is used as is, and a path with a `/`
    ///    is taken relative to the profile's directory;
    /// 4. a bare file name is looked for in the profile's directory, `$CARGO_TARGET_DIR/{debug,
    ///    release}`, `./target/{debug,release}`, then `<profile dir>/../target/{debug,release}`;
    ///    the first existing file wins, and if none exists the bare name goes to the dynamic
    ///    loader's search path.
    pub fn resolve_library(&self) -> Result<LibraryPath, HsmError> {
        if let Some(path) = &self.library_override {
            return Ok(LibraryPath::File(path.clone()));
        }
        if let Some(path) = std::env::var_os(MODULE_ENV).filter(|v| !v.is_empty()) {
            return Ok(LibraryPath::File(PathBuf::from(path)));
        }
        let expanded = expand_env(&self.library).map_err(|reason| HsmError::Profile {
            file: self.file.clone(),
            field: "library".into(),
            reason,
        })?;
        let lib = PathBuf::from(&expanded);
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if lib.is_absolute() {
            return Ok(LibraryPath::File(lib));
        }
        if expanded.contains('/') {
            return Ok(LibraryPath::File(dir.join(lib)));
        }
        let candidates = self.search_path(&expanded);
        match candidates.iter().find(|p| p.is_file()) {
            Some(found) => Ok(LibraryPath::File(found.clone())),
            None => Ok(LibraryPath::Search {
                name: expanded,
                tried: candidates,
            }),
        }
    }

    fn search_path(&self, name: &str) -> Vec<PathBuf> {
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut out = vec![dir.join(name)];
        let profiles = ["debug", "release"];
        if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
            let target = PathBuf::from(target);
            out.extend(profiles.iter().map(|p| target.join(p).join(name)));
        }
        out.extend(
            profiles
                .iter()
                .map(|p| PathBuf::from("target").join(p).join(name)),
        );
        let parent = if dir.as_os_str().is_empty() {
            PathBuf::from("..")
        } else {
            dir.join("..")
        };
        out.extend(
            profiles
                .iter()
                .map(|p| parent.join("target").join(p).join(name)),
        );
        out
    }
}

/// Where the module library is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibraryPath {
    /// A file path.
    File(PathBuf),
    /// A bare name none of the search directories held: left to the dynamic loader.
    Search {
        /// The name.
        name: String,
        /// The paths tried first.
        tried: Vec<PathBuf>,
    },
}

impl LibraryPath {
    /// Returns the path (or name) handed to the loader.
    pub fn as_path(&self) -> &Path {
        match self {
            LibraryPath::File(p) => p,
            LibraryPath::Search { name, .. } => Path::new(name),
        }
    }
}

/// Expands `${NAME}` from the environment. `$` not followed by `{` is kept.
pub(super) fn expand_env(input: &str) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {input:?}"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not an environment variable name"));
        }
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable {name} (used as ${{{name}}}) is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
