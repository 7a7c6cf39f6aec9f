//! The owner node's blob store (issue 15): the ciphertexts of shared datasets' versions, as
//! files in one directory, content-addressed by the SM3 of the ciphertext ([`BlobId`], the
//! `payload_sm3` the chain's catalogue records), with the durability rules of blocks.
//!
//! - A blob is acknowledged only once its bytes and its directory entry are on disk: a put
//!   streams into a temporary file (safefile's `create_new` under an unpredictable name),
//!   hashing as it goes with one bounded buffer ([`IO_BUFFER_LEN`]), checks that the bytes
//!   start with a GMCP v1 header (`docs/formats.md` §8) and that their length and SM3 are the
//!   expected ones, fsyncs the file, renames it to `<hex id>.blob` and fsyncs the directory.
//! - Nothing half-written is ever served: readers open only `<hex id>.blob` names, which
//!   appear by rename of a complete, verified, fsynced file; temporaries of interrupted
//!   uploads are removed when the store is next opened ([`BlobStore::stale_temps_removed`]).
//! - One process owns the store: [`BlobStore::open`] takes the directory's exclusive lock
//!   (safefile's `DirLock`, not waiting) and holds it for as long as any clone of the store or
//!   any [`Upload`] lives, so no other process can remove an upload's temporary file.
//!
//! What it refuses to do: store bytes that are not a GMCP v1 payload of the expected length
//! and digest, or longer than its limit ([`Config::max_blob_len`], 1 GiB by default); read
//! through a symbolic link or from a directory that other users may write to; hold a blob in
//! memory; decrypt anything (it never sees a data key: the grantee decrypts).
//! There is no RocksDB here: a blob is a file, so the node's C++ build stays out of this crate.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod id;
mod store;

pub use error::BlobError;
pub use id::{BlobId, ParseBlobIdError};
pub use store::{
    BLOB_SUFFIX, BlobInfo, BlobReader, BlobStore, Config, DEFAULT_MAX_BLOB_LEN, DeletionHold,
    IO_BUFFER_LEN, Upload, is_payload_len,
};
