//! Directory locks.

use crate::{Error, Step};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file a [`DirLock`] creates in its directory (mode 0600). Callers keep their own
/// files' names from starting with '.', so it cannot collide with one.
pub const LOCK_FILE: &str = ".lock";

/// Whether a lock excludes everyone else or only exclusive holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Readers: many at once, none while an exclusive lock is held.
    Shared,
    /// Writers: one at a time, and no reader meanwhile.
    Exclusive,
}

/// An advisory lock on a directory's [`LOCK_FILE`], held until dropped.
///
/// It binds every process, and every thread, that locks the same directory through this type
/// (each lock opens its own handle to the lock file); it does not stop a process that ignores
/// the lock. On Linux it is `flock(2)`, released by the kernel if the process dies.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
    kind: LockKind,
}

impl DirLock {
    /// Takes an exclusive lock on `dir`, waiting while another holder has it.
    pub fn exclusive(dir: &Path) -> Result<DirLock, Error> {
        Self::acquire(dir, LockKind::Exclusive, true)
    }

    /// Takes a shared lock on `dir`, waiting while an exclusive holder has it.
    pub fn shared(dir: &Path) -> Result<DirLock, Error> {
        Self::acquire(dir, LockKind::Shared, true)
    }

    /// Takes an exclusive lock on `dir`, or fails at once with [`Error::Locked`] (naming the
    /// directory) if another holder has any lock on it.
    pub fn try_exclusive(dir: &Path) -> Result<DirLock, Error> {
        Self::acquire(dir, LockKind::Exclusive, false)
    }

    /// Takes a shared lock on `dir`, or fails at once with [`Error::Locked`] if another
    /// holder has an exclusive lock on it.
    pub fn try_shared(dir: &Path) -> Result<DirLock, Error> {
        Self::acquire(dir, LockKind::Shared, false)
    }

    /// Takes a lock of `kind`, waiting or not.
    pub fn acquire(dir: &Path, kind: LockKind, wait: bool) -> Result<DirLock, Error> {
        let path = dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| Error::io(Step::OpenLock, &path, e))?;
        let taken = match (kind, wait) {
            (LockKind::Exclusive, true) => file.lock().map_err(TryLockError::Error),
            (LockKind::Shared, true) => file.lock_shared().map_err(TryLockError::Error),
            (LockKind::Exclusive, false) => file.try_lock(),
            (LockKind::Shared, false) => file.try_lock_shared(),
        };
        match taken {
            Ok(()) => Ok(DirLock {
                _file: file,
                dir: dir.to_path_buf(),
                kind,
            }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                dir: dir.to_path_buf(),
                lock_file: path,
            }),
            Err(TryLockError::Error(e)) => Err(Error::io(Step::Lock, &path, e)),
        }
    }

    /// Returns the locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the kind of lock held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }
}
