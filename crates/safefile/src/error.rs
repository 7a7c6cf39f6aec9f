use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The step of a write, append or lock that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Drawing the random part of a temporary file's name (the path is the directory).
    NameTemp,
    /// Creating the temporary file (`create_new`).
    CreateTemp,
    /// Writing the content into the temporary file.
    WriteTemp,
    /// Flushing the temporary file to disk.
    SyncTemp,
    /// Renaming the temporary file over the target (the path is the target).
    Rename,
    /// Flushing the directory's entries to disk (the path is the directory).
    SyncDir,
    /// Opening (or creating) a log for appending.
    OpenAppend,
    /// Appending to a log.
    Append,
    /// Flushing a log to disk after an append.
    SyncAppend,
    /// Listing a directory.
    ListDir,
    /// Removing a temporary file left by a crash.
    RemoveTemp,
    /// Opening (or creating) a directory's lock file.
    OpenLock,
    /// Taking the lock.
    Lock,
}

impl Step {
    /// Returns the step as the verb phrase of "cannot {step} {path}".
    pub fn as_str(self) -> &'static str {
        match self {
            Step::NameTemp => "draw a temporary file name in",
            Step::CreateTemp => "create temporary file",
            Step::WriteTemp => "write temporary file",
            Step::SyncTemp => "fsync temporary file",
            Step::Rename => "rename into place",
            Step::SyncDir => "fsync directory",
            Step::OpenAppend => "open for appending",
            Step::Append => "append to",
            Step::SyncAppend => "fsync",
            Step::ListDir => "list",
            Step::RemoveTemp => "remove stale temporary file",
            Step::OpenLock => "open lock file",
            Step::Lock => "lock",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed write, append or lock. Every variant names the file or directory involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system failure at one step.
    #[error("cannot {step} {}: {source}", path.display())]
    Io {
        step: Step,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A non-waiting lock found the directory's lock held.
    #[error(
        "{} is in use: another process holds its lock ({}); wait until it finishes, then try again",
        dir.display(),
        lock_file.display()
    )]
    Locked { dir: PathBuf, lock_file: PathBuf },
}

impl Error {
    pub(crate) fn io(step: Step, path: &Path, source: io::Error) -> Self {
        Error::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Returns the step that failed ([`Step::Lock`] for [`Error::Locked`]).
    pub fn step(&self) -> Step {
        match self {
            Error::Io { step, .. } => *step,
            Error::Locked { .. } => Step::Lock,
        }
    }

    /// Returns the file or directory the failure concerns (the lock file for
    /// [`Error::Locked`]).
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. } => path,
            Error::Locked { lock_file, .. } => lock_file,
        }
    }

    /// Splits the error into its step, its path and an `io::Error`, for callers whose error
    /// type carries an `io::Error` (a held lock becomes [`io::ErrorKind::WouldBlock`]).
    pub fn into_parts(self) -> (Step, PathBuf, io::Error) {
        match self {
            Error::Io { step, path, source } => (step, path, source),
            Error::Locked { dir, lock_file } => (
                Step::Lock,
                lock_file,
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another process holds the lock of {}; wait until it finishes, then try again",
                        dir.display()
                    ),
                ),
            ),
        }
    }
}
