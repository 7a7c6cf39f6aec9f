use crypto::CryptoError;
use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong in the keystore. Each message names the file or label involved
/// and says what to do; none contains a passphrase or key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// A label outside the allowed alphabet or length (it would not be a safe file name).
    #[error(
        "key label {label:?} is invalid: it {reason}; use 1 to 64 characters from A-Z a-z 0-9 . _ - not starting with '.'"
    )]
    InvalidLabel { label: String, reason: &'static str },
    /// An empty passphrase: the encrypted key files would protect nothing.
    #[error("the keystore passphrase is empty; give a non-empty passphrase")]
    EmptyPassphrase,
    /// A directory that is missing or holds no keystore marker.
    #[error("{} is not a gmchain keystore ({reason}); create a keystore there first", dir.display())]
    NotAKeystore { dir: PathBuf, reason: &'static str },
    /// `create` on a path that exists and is not a directory.
    #[error("{} exists and is not a directory; choose another path for the keystore", path.display())]
    NotADirectory { path: PathBuf },
    /// `create` on a directory that already is a keystore.
    #[error("{} is already a gmchain keystore; open it instead of creating it", dir.display())]
    AlreadyAKeystore { dir: PathBuf },
    /// `create` on a non-empty directory that is not a keystore.
    #[error(
        "{} is not empty (it holds {entry:?}) and is not a keystore; choose a new or empty directory",
        dir.display()
    )]
    DirectoryNotEmpty { dir: PathBuf, entry: String },
    /// A marker file written by a newer (or unknown) keystore format.
    #[error(
        "{} names keystore format version {found}; this gmchain reads version {supported}: use a gmchain that knows that format",
        path.display()
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A marker file whose first line is not `gmchain-keystore <version>`.
    #[error("{} is not a keystore marker: {reason}; restore it or recreate the keystore", path.display())]
    BadMarker { path: PathBuf, reason: &'static str },
    /// A directory or file that other users could read or change.
    #[error(
        "{} has mode {mode:04o}, which {problem}; run `chmod {fix:o} {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        path: PathBuf,
        mode: u32,
        fix: u32,
        problem: &'static str,
    },
    /// A symlink, directory or device where a key file belongs.
    #[error(
        "{} is a {kind}, not a regular file; the keystore holds only regular files: put the file itself there",
        path.display()
    )]
    NotARegularFile { path: PathBuf, kind: &'static str },
    /// A file too large to be one of the keystore's small PEM files.
    #[error("{} is larger than {limit} bytes, so it is not a key file; remove or replace it", path.display())]
    FileTooLarge { path: PathBuf, limit: u64 },
    /// A `*.key.pem` or `*.pub.pem` file whose name holds no valid label.
    #[error("{} looks like a key file but its name holds no valid label (it {reason}); rename or remove it", path.display())]
    BadFileName { path: PathBuf, reason: &'static str },
    /// An operating-system failure on a named file.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No key under this label.
    #[error("no key labelled {label:?} in {}; list the keystore to see its labels", dir.display())]
    KeyNotFound { label: String, dir: PathBuf },
    /// `generate` or `import` under a label already taken.
    #[error(
        "key label {label:?} is already in use ({}); choose another label or delete the old key first",
        path.display()
    )]
    LabelInUse { label: String, path: PathBuf },
    /// One file of a key's pair is missing.
    #[error(
        "key {label:?} is incomplete: {} is missing (an interrupted write or a hand edit); restore the file from a backup or delete the key",
        missing.display()
    )]
    IncompleteKey { label: String, missing: PathBuf },
    /// The store passphrase does not decrypt a key file.
    #[error(
        "the passphrase does not decrypt {} (or the file is corrupted); all keys of a keystore share the passphrase it was created with",
        path.display()
    )]
    WrongPassphrase { path: PathBuf },
    /// The decrypted private key does not match the recorded public key.
    #[error(
        "{} does not hold the public key of {}: the keystore was tampered with or files were mixed up; restore both files of key {label:?} from a backup or delete the key",
        pub_path.display(),
        key_path.display()
    )]
    PublicKeyMismatch {
        label: String,
        key_path: PathBuf,
        pub_path: PathBuf,
    },
    /// A `.key.pem` that is not an `ENCRYPTED PRIVATE KEY` PEM.
    #[error(
        "{} is not an ENCRYPTED PRIVATE KEY PEM; the keystore stores private keys in no other form: remove it and bring the key in with import",
        path.display()
    )]
    NotEncrypted { path: PathBuf },
    /// A key or public key file that does not decode.
    #[error("cannot read {}: {source}; restore it from a backup or delete the key", path.display())]
    BadKeyFile {
        path: PathBuf,
        #[source]
        source: CryptoError,
    },
    /// The file given to `import` does not decode (or its passphrase is wrong).
    #[error("cannot import key {label:?}: {source}")]
    ImportUnreadable {
        label: String,
        #[source]
        source: CryptoError,
    },
    /// `import` of a key the store already holds.
    #[error("cannot import key {label:?}: the keystore already holds this key as {existing:?}")]
    DuplicateKey { label: String, existing: String },
    /// A failure in the cryptography itself (entropy, encoding).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<KeystoreError> for CryptoError {
    /// Maps to the [`crypto::KeyStore`] vocabulary: a wrong passphrase is `KeyDecrypt`, a
    /// missing label `KeyNotFound`, and everything else `KeyStore` with the full message.
    fn from(e: KeystoreError) -> Self {
        match e {
            KeystoreError::WrongPassphrase { .. } => CryptoError::KeyDecrypt,
            KeystoreError::KeyNotFound { label, .. } => CryptoError::KeyNotFound { name: label },
            KeystoreError::Crypto(e) => e,
            other => CryptoError::KeyStore {
                reason: other.to_string(),
            },
        }
    }
}
