//! The blob store's errors: each names the blob (its id, or a path that contains it) and the
//! step that failed.

use std::io;
use std::path::PathBuf;

use crate::BlobId;

/// Why a blob store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// An operating-system failure at one step. The path is the blob file, the temporary file
    /// of an upload (whose name repeats the blob's) or the store's directory.
    #[error("cannot {step} {}: {source}", path.display())]
    Io {
        /// `create temporary file`, `fsync directory`, `open blob`, `read blob`, ...
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path given as the store is not a directory (a symbolic link is refused too: give
    /// the real path, so that nobody can redirect the store by changing the link).
    #[error("{} cannot be a blob store: it is {found}", dir.display())]
    NotAStore { dir: PathBuf, found: &'static str },
    /// The store's directory lets other users add, replace or delete blobs.
    #[error(
        "blob store {} has mode {mode:04o}, which lets other users add, replace or delete blobs; run `chmod 700 {}`",
        dir.display(),
        dir.display()
    )]
    InsecurePermissions { dir: PathBuf, mode: u32 },
    /// Another process (another node) has the store open.
    #[error(
        "blob store {} is in use: another process holds its lock; stop it, or give this node its own directory",
        dir.display()
    )]
    Locked { dir: PathBuf },
    /// The announced length is above the store's limit: refused before any byte is read.
    #[error("blob {id}: {len} bytes is more than this store's limit of {limit} bytes")]
    TooLarge { id: BlobId, len: u64, limit: u64 },
    /// The announced length is not that of any GMCP v1 payload.
    #[error(
        "blob {id}: {len} bytes cannot be a GMCP v1 payload (a 13-byte header, chunks of 1 MiB + 16 bytes, a last chunk of 16 bytes to 1 MiB + 16)"
    )]
    ImpossibleLength { id: BlobId, len: u64 },
    /// The bytes do not start with "GMCP".
    #[error("blob {id}: not a GMCP payload: the first bytes are not \"GMCP\" (docs/formats.md §8)")]
    NotAPayload { id: BlobId },
    /// A payload header of a version this store does not accept.
    #[error("blob {id}: payload format version {version}, this store accepts version 1")]
    UnsupportedVersion { id: BlobId, version: u8 },
    /// The upload sent more bytes than announced (refused at the first byte too many).
    #[error("blob {id}: the upload is longer than the expected {expected} bytes")]
    LongerThanExpected { id: BlobId, expected: u64 },
    /// The upload ended before the announced length.
    #[error("blob {id}: the upload ended after {received} bytes, {expected} were expected")]
    ShorterThanExpected {
        id: BlobId,
        expected: u64,
        received: u64,
    },
    /// The uploaded bytes are not those the id names.
    #[error(
        "blob {expected}: the uploaded bytes hash to {actual} (SM3), not to the expected id: altered or different bytes"
    )]
    DigestMismatch { expected: BlobId, actual: BlobId },
    /// Reading the caller's stream failed during a put.
    #[error("blob {id}: cannot read the upload: {source}")]
    Input {
        id: BlobId,
        #[source]
        source: io::Error,
    },
    /// A write to this upload failed before; its temporary file is gone.
    #[error("blob {id}: this upload failed earlier and was discarded; begin a new one")]
    UploadDiscarded { id: BlobId },
    /// The store has no blob with this id.
    #[error("blob {id} is not in the store (no {})", path.display())]
    NotFound { id: BlobId, path: PathBuf },
    /// A blob's name is taken by something that is not a regular file.
    #[error("{} is a {kind}, not a blob file; remove it", path.display())]
    NotARegularFile { path: PathBuf, kind: &'static str },
    /// A stored blob no longer hashes to its id (bit rot or tampering).
    #[error(
        "stored blob {id} is damaged: {} ({len} bytes) hashes to {actual} (SM3); delete it and upload it again",
        path.display()
    )]
    Corrupt {
        id: BlobId,
        path: PathBuf,
        len: u64,
        actual: BlobId,
    },
}

impl BlobError {
    /// Maps a file-safety failure, keeping its step and path.
    pub(crate) fn from_safefile(e: safefile::Error) -> BlobError {
        match e {
            safefile::Error::Locked { dir, .. } => BlobError::Locked { dir },
            other => {
                let (step, path, source) = other.into_parts();
                BlobError::Io {
                    step: step.as_str(),
                    path,
                    source,
                }
            }
        }
    }

    /// Returns a closure naming the failed step and its path.
    pub(crate) fn io(step: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> BlobError {
        move |source| BlobError::Io { step, path, source }
    }
}
