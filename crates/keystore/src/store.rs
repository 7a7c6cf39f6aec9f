use crate::fsio::{
    self, DIRECTORY, LockKind, Mode, NewFile, PRIVATE, PUBLIC, exists, io_err, lock, read_small,
    require_mode, require_regular,
};
use crate::{KeystoreError, Label};
use crypto::{CryptoError, KeyInfo, KeyStore, PublicKey, RandomSource, Secret, Signer};
use crypto_sm::keys::{
    DEFAULT_ITERATIONS, decode_private_key, decode_public_key, encode_encrypted_pkcs8_pem,
    encode_public_key_pem,
};
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The marker file: its presence makes a directory a keystore, its first line names the format.
pub const MARKER_FILE: &str = "KEYSTORE";
/// The keystore format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The suffix of an encrypted private key file.
pub const KEY_SUFFIX: &str = ".key.pem";
/// The suffix of a public key file.
pub const PUBLIC_SUFFIX: &str = ".pub.pem";

const MARKER_MAGIC: &str = "gmchain-keystore";
const MARKER_TEXT: &str = "gmchain-keystore 1
# A gmchain development keystore. <label>.key.pem holds an SM2 private key as encrypted PKCS#8
# (PBES2: PBKDF2-HMAC-SM3, SM4-CBC) under the keystore passphrase; <label>.pub.pem holds its
# public key (SubjectPublicKeyInfo); .lock serialises writers. Change it only through gmchain:
# a key whose two files disagree is refused.
";
const ENCRYPTED_PEM: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
const PUBLIC_PEM: &[u8] = b"-----BEGIN PUBLIC KEY-----";

/// The development keystore: a directory holding, per key, `<label>.key.pem` (the private key as
/// encrypted PKCS#8, PBKDF2-HMAC-SM3 with [`DEFAULT_ITERATIONS`] and SM4-CBC, mode 0600) and
/// `<label>.pub.pem` (its SubjectPublicKeyInfo), plus the [`MARKER_FILE`] and a `.lock` file.
///
/// All keys share the passphrase given to [`DirKeyStore::open`]; it is held as a [`Secret`]
/// (zeroized on drop, never printed). Listing reads only the public key files; a signer costs
/// one key derivation.
///
/// The inherent methods return [`KeystoreError`], which names the file involved; the
/// [`KeyStore`] implementation maps it to [`CryptoError`] (a wrong passphrase is
/// [`CryptoError::KeyDecrypt`]) for callers that hold a `dyn KeyStore`.
pub struct DirKeyStore {
    dir: PathBuf,
    passphrase: Secret,
    provider: SoftwareProvider,
    /// Set once the passphrase has decrypted a key of this store, so writers check it only once.
    passphrase_checked: AtomicBool,
}

impl core::fmt::Debug for DirKeyStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirKeyStore")
            .field("dir", &self.dir)
            .field("passphrase", &format_args!("[redacted]"))
            .finish()
    }
}

/// Which files of a label the directory holds.
#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    key: bool,
    public: bool,
}

impl DirKeyStore {
    /// Creates a keystore in `dir`: a new directory (mode 0700, parents included), or an existing
    /// empty one (set to 0700). Refuses a directory that already is a keystore or holds anything.
    pub fn create(
        dir: &Path,
        passphrase: Secret,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, KeystoreError> {
        if passphrase.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        match fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(KeystoreError::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Ok(_) => {
                if exists(&dir.join(MARKER_FILE))? {
                    return Err(KeystoreError::AlreadyAKeystore {
                        dir: dir.to_path_buf(),
                    });
                }
                if let Some(entry) = fs::read_dir(dir).map_err(io_err("list", dir))?.next() {
                    let entry = entry.map_err(io_err("list", dir))?;
                    return Err(KeystoreError::DirectoryNotEmpty {
                        dir: dir.to_path_buf(),
                        entry: entry.file_name().to_string_lossy().into_owned(),
                    });
                }
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                        .map_err(io_err("set mode 0700 on", dir))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder
                    .create(dir)
                    .map_err(io_err("create directory", dir))?;
            }
            Err(e) => return Err(io_err("inspect", dir)(e)),
        }
        {
            // The lock file first and the marker last: a directory with a marker is complete.
            // The lock makes two concurrent creates agree on which one made the keystore.
            let _lock = lock(dir, LockKind::Exclusive)?;
            if exists(&dir.join(MARKER_FILE))? {
                return Err(KeystoreError::AlreadyAKeystore {
                    dir: dir.to_path_buf(),
                });
            }
            fsio::write_new_files(
                dir,
                &[NewFile {
                    name: MARKER_FILE.to_string(),
                    contents: MARKER_TEXT.as_bytes(),
                    mode: Mode::PUBLIC,
                }],
            )?;
        }
        Self::open(dir, passphrase, rng)
    }

    /// Opens the keystore in `dir`. Refuses (naming the file and the `chmod` that fixes it) a
    /// directory others may write to, a key file others may read or write, and a public key or
    /// marker file others may write; refuses a marker of another format and files named
    /// `*.key.pem`/`*.pub.pem` whose names are not labels.
    ///
    /// The passphrase is not checked here (that costs a key derivation): a wrong one surfaces
    /// as [`KeystoreError::WrongPassphrase`] from [`signer`](Self::signer), and
    /// [`generate`](Self::generate) and [`import`](Self::import) refuse to write under a
    /// passphrase that does not decrypt the store's existing keys.
    pub fn open(
        dir: &Path,
        passphrase: Secret,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, KeystoreError> {
        if passphrase.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        let not_a_keystore = |reason| KeystoreError::NotAKeystore {
            dir: dir.to_path_buf(),
            reason,
        };
        let meta = match fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_keystore("it does not exist"));
            }
            Err(e) => return Err(io_err("inspect", dir)(e)),
        };
        if !meta.is_dir() {
            return Err(not_a_keystore("it is not a directory"));
        }
        require_mode(dir, &meta, DIRECTORY)?;
        read_marker(dir)?;
        let store = Self {
            dir: dir.to_path_buf(),
            passphrase,
            provider: SoftwareProvider::new(rng),
            passphrase_checked: AtomicBool::new(false),
        };
        store.scan()?;
        Ok(store)
    }

    /// Returns the keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the path of the encrypted private key file of `label`.
    pub fn key_path(&self, label: &Label) -> PathBuf {
        self.dir.join(format!("{label}{KEY_SUFFIX}"))
    }

    /// Returns the path of the public key file of `label`.
    pub fn public_key_path(&self, label: &Label) -> PathBuf {
        self.dir.join(format!("{label}{PUBLIC_SUFFIX}"))
    }

    /// Lists the keys, sorted by label, reading only the public key files. Fails on a key with
    /// one of its two files missing, naming the file.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeystoreError> {
        let _lock = lock(&self.dir, LockKind::Shared)?;
        let mut keys = Vec::new();
        for (label, pair) in self.scan()? {
            self.require_pair(&label, pair)?;
            keys.push(KeyInfo {
                public_key: self.read_public(&label)?,
                label: label.as_str().to_string(),
            });
        }
        Ok(keys)
    }

    /// Generates a key under `label` from the store's randomness and writes it, refusing a label
    /// already in use.
    pub fn generate(&self, label: &str) -> Result<KeyInfo, KeystoreError> {
        let label = Label::new(label)?;
        // Fail fast, before the key derivation; `add` checks again under the lock.
        self.refuse_in_use(&label)?;
        let key = PrivateKey::generate(self.provider.rng())?;
        self.add(&label, &key, false)
    }

    /// Imports a private key file (PEM or DER; PKCS#8, SEC1 or encrypted PKCS#8, as OpenSSL 3 and
    /// GmSSL 3 write them) under `label`, re-encrypted under the store passphrase.
    /// `source_passphrase` is the file's own passphrase, required exactly when it is encrypted.
    /// Refuses a label in use and a key the store already holds under another label.
    ///
    /// The source file is left alone: delete it yourself if it was a plaintext key.
    pub fn import(
        &self,
        label: &str,
        key_file: &[u8],
        source_passphrase: Option<&[u8]>,
    ) -> Result<KeyInfo, KeystoreError> {
        let label = Label::new(label)?;
        self.refuse_in_use(&label)?;
        let key = decode_private_key(key_file, source_passphrase).map_err(|source| {
            KeystoreError::ImportUnreadable {
                label: label.as_str().to_string(),
                source,
            }
        })?;
        self.add(&label, &key, true)
    }

    /// Decrypts the key of `label` and returns it as a signer (and decrypter), after checking
    /// that it matches `<label>.pub.pem`: a mismatch means the files were tampered with.
    pub fn signer(&self, label: &str) -> Result<SoftSigner, KeystoreError> {
        let label = Label::new(label)?;
        let (pem, public) = {
            let _lock = lock(&self.dir, LockKind::Shared)?;
            (self.read_key_pem(&label)?, self.read_public(&label)?)
        };
        let key = self.decrypt(&label, &pem)?;
        if key.public_key() != public {
            return Err(KeystoreError::PublicKeyMismatch {
                label: label.as_str().to_string(),
                key_path: self.key_path(&label),
                pub_path: self.public_key_path(&label),
            });
        }
        self.passphrase_checked.store(true, Ordering::Relaxed);
        Ok(self.provider.signer(key))
    }

    /// Deletes both files of `label` (or whichever of the two is left after an interrupted
    /// write).
    pub fn delete(&self, label: &str) -> Result<(), KeystoreError> {
        let label = Label::new(label)?;
        let _lock = lock(&self.dir, LockKind::Exclusive)?;
        let key_path = self.key_path(&label);
        let pub_path = self.public_key_path(&label);
        let (has_key, has_pub) = (exists(&key_path)?, exists(&pub_path)?);
        if !has_key && !has_pub {
            return Err(self.not_found(&label));
        }
        // Unlinking is all there is to do: on journaling and copy-on-write file systems and on
        // flash, an overwrite is written to fresh blocks and the old ones survive anyway, so
        // overwrite-then-unlink would only pretend to erase. The file holds the key encrypted
        // under the passphrase; old copies are as safe as the passphrase (and backups) are.
        if has_key {
            fs::remove_file(&key_path).map_err(io_err("remove", &key_path))?;
        }
        if has_pub {
            fs::remove_file(&pub_path).map_err(io_err("remove", &pub_path))?;
        }
        fsio::sync_dir(&self.dir)
    }

    /// Encrypts and writes a key under `label`, holding the exclusive lock for the checks and
    /// the write.
    fn add(
        &self,
        label: &Label,
        key: &PrivateKey,
        refuse_duplicate: bool,
    ) -> Result<KeyInfo, KeystoreError> {
        let public = key.public_key();
        // The key derivation runs before the lock is taken, so other writers wait less.
        let key_pem = encode_encrypted_pkcs8_pem(
            key,
            self.passphrase.expose(),
            DEFAULT_ITERATIONS,
            self.provider.rng(),
        )?;
        let pub_pem = encode_public_key_pem(&public)?;
        let _lock = lock(&self.dir, LockKind::Exclusive)?;
        self.refuse_in_use(label)?;
        self.check_passphrase_locked()?;
        if refuse_duplicate {
            self.refuse_duplicate_locked(label, &public)?;
        }
        fsio::remove_stale_temps(&self.dir)?;
        // The private key first: a crash between the renames leaves a key without its public
        // file, which `list` reports and `delete` removes; never a public key with no key.
        fsio::write_new_files(
            &self.dir,
            &[
                NewFile {
                    name: format!("{label}{KEY_SUFFIX}"),
                    contents: key_pem.as_bytes(),
                    mode: Mode::PRIVATE,
                },
                NewFile {
                    name: format!("{label}{PUBLIC_SUFFIX}"),
                    contents: pub_pem.as_bytes(),
                    mode: Mode::PUBLIC,
                },
            ],
        )?;
        Ok(KeyInfo {
            label: label.as_str().to_string(),
            public_key: public,
        })
    }

    /// Refuses to write under a passphrase that does not decrypt the store's first key, so a
    /// store never ends up with keys under two passphrases. Called under the exclusive lock.
    fn check_passphrase_locked(&self) -> Result<(), KeystoreError> {
        if self.passphrase_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let first = self.scan()?.into_iter().find(|(_, pair)| pair.key);
        if let Some((label, _)) = first {
            let pem = self.read_key_pem(&label)?;
            self.decrypt(&label, &pem)?;
        }
        // An empty store: this passphrase becomes the store's.
        self.passphrase_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn refuse_duplicate_locked(
        &self,
        label: &Label,
        public: &PublicKey,
    ) -> Result<(), KeystoreError> {
        for (existing, pair) in self.scan()? {
            if pair.public && self.read_public(&existing)? == *public {
                return Err(KeystoreError::DuplicateKey {
                    label: label.as_str().to_string(),
                    existing: existing.as_str().to_string(),
                });
            }
        }
        Ok(())
    }

    fn refuse_in_use(&self, label: &Label) -> Result<(), KeystoreError> {
        for path in [self.key_path(label), self.public_key_path(label)] {
            if exists(&path)? {
                return Err(KeystoreError::LabelInUse {
                    label: label.as_str().to_string(),
                    path,
                });
            }
        }
        Ok(())
    }

    /// Walks the directory: checks the type and mode of every key and public key file and
    /// returns which files each label has, sorted by label. Dot files (the lock, temporary
    /// files) and files of other names are not the keystore's and are left alone.
    fn scan(&self) -> Result<BTreeMap<Label, Pair>, KeystoreError> {
        let mut labels: BTreeMap<Label, Pair> = BTreeMap::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let (stem, is_key) = if let Some(stem) = name.strip_suffix(KEY_SUFFIX) {
                (stem, true)
            } else if let Some(stem) = name.strip_suffix(PUBLIC_SUFFIX) {
                (stem, false)
            } else {
                continue;
            };
            let path = entry.path();
            let label = Label::new(stem).map_err(|e| match e {
                KeystoreError::InvalidLabel { reason, .. } => KeystoreError::BadFileName {
                    path: path.clone(),
                    reason,
                },
                other => other,
            })?;
            let Some(meta) = fsio::entry_metadata(&path)? else {
                continue; // removed since read_dir: not there
            };
            require_regular(&path, &meta)?;
            require_mode(&path, &meta, if is_key { PRIVATE } else { PUBLIC })?;
            let pair = labels.entry(label).or_default();
            if is_key {
                pair.key = true;
            } else {
                pair.public = true;
            }
        }
        Ok(labels)
    }

    fn require_pair(&self, label: &Label, pair: Pair) -> Result<(), KeystoreError> {
        let missing = match (pair.key, pair.public) {
            (true, true) => return Ok(()),
            (false, _) => self.key_path(label),
            (true, false) => self.public_key_path(label),
        };
        Err(KeystoreError::IncompleteKey {
            label: label.as_str().to_string(),
            missing,
        })
    }

    fn not_found(&self, label: &Label) -> KeystoreError {
        KeystoreError::KeyNotFound {
            label: label.as_str().to_string(),
            dir: self.dir.clone(),
        }
    }

    /// The error for a missing file of `label`: incomplete if its other file exists.
    fn missing(&self, label: &Label) -> KeystoreError {
        let pair = Pair {
            key: exists(&self.key_path(label)).unwrap_or(false),
            public: exists(&self.public_key_path(label)).unwrap_or(false),
        };
        if !pair.key && !pair.public {
            return self.not_found(label);
        }
        match self.require_pair(label, pair) {
            Err(e) => e,
            // Both exist now: one appeared after the read (no writer holds the lock, so a hand
            // edit). Report the key as missing at the time of the read.
            Ok(()) => self.not_found(label),
        }
    }

    fn read_key_pem(&self, label: &Label) -> Result<Vec<u8>, KeystoreError> {
        let path = self.key_path(label);
        let pem = read_small(&path, PRIVATE)?.ok_or_else(|| self.missing(label))?;
        if !pem.starts_with(ENCRYPTED_PEM) {
            return Err(KeystoreError::NotEncrypted { path });
        }
        Ok(pem)
    }

    fn read_public(&self, label: &Label) -> Result<PublicKey, KeystoreError> {
        let path = self.public_key_path(label);
        let pem = read_small(&path, PUBLIC)?.ok_or_else(|| self.missing(label))?;
        // `decode_public_key` also takes a private key file and returns its public half; here
        // only a PUBLIC KEY PEM is a public key file.
        if !pem.starts_with(PUBLIC_PEM) {
            return Err(KeystoreError::BadKeyFile {
                path,
                source: CryptoError::KeyDecode {
                    reason: "not a PUBLIC KEY PEM".to_string(),
                },
            });
        }
        decode_public_key(&pem).map_err(|source| KeystoreError::BadKeyFile { path, source })
    }

    fn decrypt(&self, label: &Label, pem: &[u8]) -> Result<PrivateKey, KeystoreError> {
        let path = self.key_path(label);
        decode_private_key(pem, Some(self.passphrase.expose())).map_err(|e| match e {
            CryptoError::KeyDecrypt => KeystoreError::WrongPassphrase { path },
            source => KeystoreError::BadKeyFile { path, source },
        })
    }
}

fn read_marker(dir: &Path) -> Result<(), KeystoreError> {
    let path = dir.join(MARKER_FILE);
    let Some(text) = read_small(&path, PUBLIC)? else {
        return Err(KeystoreError::NotAKeystore {
            dir: dir.to_path_buf(),
            reason: "it has no KEYSTORE file",
        });
    };
    let bad = |reason| KeystoreError::BadMarker {
        path: path.clone(),
        reason,
    };
    let text = core::str::from_utf8(&text).map_err(|_| bad("it is not UTF-8 text"))?;
    let first = text.lines().next().unwrap_or_default();
    let version = match first.split_once(' ') {
        Some((MARKER_MAGIC, v)) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| bad("the version after gmchain-keystore is not a number"))?,
        _ => return Err(bad("its first line is not `gmchain-keystore <version>`")),
    };
    if version != FORMAT_VERSION {
        return Err(KeystoreError::UnsupportedFormat {
            path,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

impl KeyStore for DirKeyStore {
    fn list(&self) -> Result<Vec<KeyInfo>, CryptoError> {
        Ok(DirKeyStore::list(self)?)
    }

    fn generate(&self, label: &str) -> Result<KeyInfo, CryptoError> {
        Ok(DirKeyStore::generate(self, label)?)
    }

    fn signer(&self, label: &str) -> Result<Box<dyn Signer>, CryptoError> {
        Ok(Box::new(DirKeyStore::signer(self, label)?))
    }

    fn delete(&self, label: &str) -> Result<(), CryptoError> {
        Ok(DirKeyStore::delete(self, label)?)
    }
}
