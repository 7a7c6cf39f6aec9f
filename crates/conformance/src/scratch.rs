//! A private scratch directory for checks that need files (the audit-log check here, the
//! OpenSSL probe of `gmchain conformance`), removed when dropped.

use std::path::{Path, PathBuf};

/// A directory of its own under the system's temporary directory: `create_dir`, never
/// `create_dir_all`, so an existing name (or a symlink someone planted) fails the check
/// rather than being reused; removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `<temp>/gmchain-<what>-<pid>-<nanos>`.
    pub fn new(what: &str) -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("gmchain-{what}-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `data` to the file `name` in it; returns its path.
    pub fn write(&self, name: &str, data: &[u8]) -> Result<PathBuf, String> {
        let p = self.0.join(name);
        std::fs::write(&p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
