//! File safety for every crate that writes to disk: crash-safe atomic replacement of a file,
//! durable appends to a log, and directory locks.
//!
//! - [`write_atomic`] writes a temporary file next to the target (created with `create_new`
//!   under an unpredictable name, [`TEMP_PREFIX`] followed by 16 random hex digits), fsyncs it,
//!   renames it over the target and fsyncs the directory: after a crash the target holds the
//!   old content or the new, never a mixture, and once the call returns the new content
//!   survives a crash. The caller chooses the file mode (0600 for secrets). On every failure
//!   before the rename the temporary file is removed and the target is untouched.
//! - [`StagedFile`] is the same in two steps, for callers that place several files together
//!   and undo them together (the keystore's key pairs); [`StagingFile`] writes such a
//!   temporary file piece by piece, for a stream too large to hold in memory (the blob store).
//! - [`append`] appends to a log, fsyncs it, and fsyncs the directory when it created the file.
//! - [`DirLock`] is an advisory lock on a `.lock` file in a directory (std's `File::lock`, which
//!   is `flock` on Linux): shared or exclusive, waiting or not ([`Error::Locked`] names the
//!   directory); dropping it releases the lock.
//!
//! What it refuses to do: write through a fixed or guessable temporary name (two writers, or
//! a planted file or symlink, could clobber it); leave a temporary file behind on an error it
//! sees; call `unsafe` code or `libc` itself (entropy for names comes from `getrandom`).
//! Errors ([`Error`]) name the path and the [`Step`] that failed, so each caller can map them
//! into its own error type and keep its messages.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod lock;
mod write;

pub use error::{Error, Step};
pub use lock::{DirLock, LOCK_FILE, LockKind};
pub use write::{
    Mode, StagedFile, StagingFile, TEMP_PREFIX, append, is_temp_name, remove_stale_temps, sync_dir,
    write_atomic,
};
