//! The file-system primitives of the keystore: bounded reads with permission checks, and, on
//! `safefile`, crash-safe writes (temporary file, fsync, rename, fsync of the directory) and the
//! directory lock.

use crate::KeystoreError;
use safefile::{DirLock, StagedFile};
pub(crate) use safefile::{LockKind, Mode};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest file the keystore reads. Its PEM files are well under 1 KiB; anything larger is
/// not one of them, and reading it whole would let a stray file exhaust memory.
pub(crate) const MAX_FILE_LEN: u64 = 64 * 1024;

// The lock file (`.lock`) and the temporary files (`.tmp-…`) are safefile's; labels never
// start with '.', so neither can collide with a key file.

/// Which permission bits a file may not have, and what to set instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    forbidden: u32,
    fix: u32,
    problem: &'static str,
}

/// An encrypted private key file: owner-only (0600).
pub(crate) const PRIVATE: Policy = Policy {
    forbidden: 0o077,
    fix: 0o600,
    problem: "lets other users read or replace an encrypted private key",
};

/// A public file (public key, marker): nobody but the owner may change it.
pub(crate) const PUBLIC: Policy = Policy {
    forbidden: 0o022,
    fix: 0o644,
    problem: "lets other users replace it",
};

/// The keystore directory: nobody but the owner may add, rename or remove entries.
pub(crate) const DIRECTORY: Policy = Policy {
    forbidden: 0o022,
    fix: 0o700,
    problem: "lets other users add, replace or delete key files",
};

/// Returns a closure naming the failed operation and its file.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeystoreError {
    let path = path.to_path_buf();
    move |source| KeystoreError::Io { op, path, source }
}

/// Returns the metadata of `path` itself (a symlink is not followed), or `None` if absent.
pub(crate) fn entry_metadata(path: &Path) -> Result<Option<Metadata>, KeystoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Returns whether `path` exists (as any kind of entry, a dangling symlink included).
pub(crate) fn exists(path: &Path) -> Result<bool, KeystoreError> {
    entry_metadata(path).map(|m| m.is_some())
}

/// Refuses anything but a regular file: a symlink could point out of the directory.
pub(crate) fn require_regular(path: &Path, meta: &Metadata) -> Result<(), KeystoreError> {
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let kind = if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else {
        "special file"
    };
    Err(KeystoreError::NotARegularFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// Refuses permission bits the policy forbids.
#[cfg(unix)]
pub(crate) fn require_mode(
    path: &Path,
    meta: &Metadata,
    policy: Policy,
) -> Result<(), KeystoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & policy.forbidden != 0 {
        return Err(KeystoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
            fix: policy.fix,
            problem: policy.problem,
        });
    }
    Ok(())
}

/// Other platforms have no mode bits to check; their ACLs are the administrator's business.
#[cfg(not(unix))]
pub(crate) fn require_mode(_: &Path, _: &Metadata, _: Policy) -> Result<(), KeystoreError> {
    Ok(())
}

/// Reads a small regular file, checking its permissions on the open handle (so the bytes read
/// are those of the file checked). Returns `None` if the file does not exist.
pub(crate) fn read_small(path: &Path, policy: Policy) -> Result<Option<Vec<u8>>, KeystoreError> {
    let Some(meta) = entry_metadata(path)? else {
        return Ok(None);
    };
    require_regular(path, &meta)?;
    let file = match File::open(path) {
        Ok(f) => f,
        // Deleted between the two calls: as absent as before.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let meta = file.metadata().map_err(io_err("inspect", path))?;
    require_regular(path, &meta)?;
    require_mode(path, &meta, policy)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeystoreError::FileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_LEN,
        });
    }
    Ok(Some(bytes))
}

/// One file for [`write_new_files`].
#[derive(Debug)]
pub(crate) struct NewFile<'a> {
    pub(crate) name: String,
    pub(crate) contents: &'a [u8],
    /// The file's mode (further narrowed by the umask).
    pub(crate) mode: Mode,
}

/// Maps a file-safety failure to the keystore's error, keeping the step and the path.
fn fs_err(e: safefile::Error) -> KeystoreError {
    let (step, path, source) = e.into_parts();
    KeystoreError::Io {
        op: step.as_str(),
        path,
        source,
    }
}

/// Writes `files` into `dir` so that each either appears whole or not at all: each is written
/// to a temporary file in `dir`, flushed to disk, renamed into place, and then the directory is
/// flushed so the renames survive a crash. The caller holds the exclusive lock and has checked
/// that the names are free (rename would replace an existing file).
///
/// If a later step fails, the files already renamed are removed again, so a failed call leaves
/// nothing behind (a crash can still leave a prefix of `files`: the caller reads an incomplete
/// set as such).
pub(crate) fn write_new_files(dir: &Path, files: &[NewFile<'_>]) -> Result<(), KeystoreError> {
    // A failure drops the files staged so far, which removes their temporary files.
    let staged = files
        .iter()
        .map(|f| StagedFile::write(&dir.join(&f.name), f.contents, f.mode))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fs_err)?;
    let mut placed: Vec<PathBuf> = Vec::with_capacity(files.len());
    let mut staged = staged.into_iter();
    for file in staged.by_ref() {
        let target = file.target().to_path_buf();
        if let Err(e) = file.rename_into_place() {
            // Undo: nothing of this call may remain. Failures here are secondary.
            for p in &placed {
                let _ = fs::remove_file(p);
            }
            drop(staged);
            let _ = safefile::sync_dir(dir);
            return Err(fs_err(e));
        }
        placed.push(target);
    }
    sync_dir(dir)
}

/// Flushes the directory's entries (creations, renames, removals) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), KeystoreError> {
    safefile::sync_dir(dir).map_err(fs_err)
}

/// Removes temporary files left by a crash. Only called under the exclusive lock, when no other
/// writer can be between its temp write and its rename.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<(), KeystoreError> {
    safefile::remove_stale_temps(dir).map_err(fs_err)?;
    Ok(())
}

/// Takes the directory lock (readers: list, signer, shared; writers: generate, import, delete,
/// exclusive) and returns the guard that holds it; dropping it releases the lock.
///
/// An advisory `flock`-style lock on `.lock` (mode 0600): it binds processes (and threads,
/// since each call opens its own handle) that go through this crate, which is all the keystore
/// promises.
pub(crate) fn lock(dir: &Path, kind: LockKind) -> Result<DirLock, KeystoreError> {
    DirLock::acquire(dir, kind, true).map_err(fs_err)
}
