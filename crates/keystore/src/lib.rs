//! The development keystore: a directory of encrypted PKCS#8 files, one per SM2 key, with
//! [`DirKeyStore`] implementing [`crypto::KeyStore`]. Per key the directory holds
//! `<label>.key.pem` (`ENCRYPTED PRIVATE KEY`: PBES2 with PBKDF2-HMAC-SM3 and SM4-CBC, as GmSSL 3
//! writes, mode 0600) and `<label>.pub.pem` (`PUBLIC KEY`), so listing needs no passphrase; a
//! `KEYSTORE` marker names the format version and `.lock` serialises writers across processes.
//!
//! Every write is crash-safe (temporary file, fsync, rename, fsync of the directory); `generate`,
//! `import` and `delete` hold an exclusive lock, so two processes cannot race on a label.
//!
//! What it refuses to do:
//! - store a private key in any other form: there is no plaintext, SEC1 or DER key file here,
//!   and [`DirKeyStore::import`] re-encrypts whatever it is given under the store passphrase;
//! - open a directory other users may write to, or a key file they may read (unix modes; the
//!   error names the file and the `chmod` that fixes it);
//! - accept a label that is not a plain file name (1 to 64 of `A-Z a-z 0-9 . _ -`, no leading
//!   dot), so no label reaches outside the directory;
//! - follow a symlink inside the directory, or read a file larger than a key file can be;
//! - hand out a signer whose private key does not match the recorded public key (tampering);
//! - write a key under a passphrase that does not decrypt the keys already there;
//! - pretend to erase: `delete` unlinks, because overwriting does not reach the old blocks on
//!   journaling or copy-on-write file systems or flash.
//!
//! This is a shell crate: it owns file I/O and nothing else. The cryptography is
//! `crypto-sm`'s; the randomness is whatever [`crypto::RandomSource`] the caller passes.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod fsio;
mod label;
mod store;

pub use error::KeystoreError;
pub use label::Label;
pub use store::{DirKeyStore, FORMAT_VERSION, KEY_SUFFIX, MARKER_FILE, PUBLIC_SUFFIX};
