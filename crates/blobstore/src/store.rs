//! The store: a directory of `<hex id>.blob` files, written by uploads that stream into
//! temporary files and rename them into place only when complete, verified and on disk.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto_sm::sm3::Sm3Context;
use crypto_sm::sm4::AEAD_TAG_LEN;
use exchange::payload::{CHUNK_LEN, HEADER_LEN, MAGIC, MAX_CHUNKS, VERSION};
use safefile::{DirLock, Mode, StagingFile};

use crate::{BlobError, BlobId};

/// The suffix of a stored blob's file name, after the id's 64 hex digits.
pub const BLOB_SUFFIX: &str = ".blob";

/// The largest blob a store accepts unless configured otherwise: 1 GiB.
pub const DEFAULT_MAX_BLOB_LEN: u64 = 1 << 30;

/// The one buffer a [`BlobStore::put`] or [`BlobStore::verify`] reads through (256 KiB): the
/// most blob bytes either holds in memory at once, whatever the blob's size.
pub const IO_BUFFER_LEN: usize = 256 * 1024;

/// The permission bits the store's directory may not have: group or world write.
const FORBIDDEN_DIR_BITS: u32 = 0o022;

/// How a store is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest blob accepted, in bytes; a longer upload is refused before its first byte
    /// (by its announced length) or at its first byte too many.
    pub max_blob_len: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_blob_len: DEFAULT_MAX_BLOB_LEN,
        }
    }
}

/// A stored (or just uploaded) blob: its id and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// The SM3 of its bytes.
    pub id: BlobId,
    /// Its length in bytes.
    pub len: u64,
}

/// Returns whether `len` is the length of some GMCP v1 payload (`docs/formats.md` §8): the
/// 13-byte header, then *k* chunks of 2²⁰ + 16 bytes and a last chunk of 16 to 2²⁰ + 16 bytes,
/// at most 2³² chunks in all.
pub fn is_payload_len(len: u64) -> bool {
    const TAG: u64 = AEAD_TAG_LEN as u64;
    const SEALED: u64 = CHUNK_LEN as u64 + TAG;
    let Some(body) = len.checked_sub(HEADER_LEN as u64 + TAG) else {
        return false;
    };
    // body = k × SEALED + r with the last chunk's plaintext r in [0, CHUNK_LEN].
    body % SEALED <= CHUNK_LEN as u64 && body / SEALED < MAX_CHUNKS
}

/// The owner node's blob store. Cloning it is cheap and shares the directory lock, which is
/// released when the last clone and the last [`Upload`] are dropped.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    config: Config,
    stale_temps_removed: usize,
    /// Deletions take it shared; a [`DeletionHold`] (a backup copying the store) exclusively.
    deletions: std::sync::RwLock<()>,
    _lock: DirLock,
}

/// While it lives, no blob of its store is deleted: [`BlobStore::delete`] waits until it is
/// dropped. A backup holds one from before it lists the blobs until it has copied them, so a
/// blob the backup's checkpoint of the chain references cannot vanish between the two
/// (blobs are immutable, and an upload meanwhile only adds a blob the backup may or may not
/// carry).
#[derive(Debug)]
pub struct DeletionHold<'a> {
    _guard: std::sync::RwLockWriteGuard<'a, ()>,
}

impl BlobStore {
    /// Opens (creating it with mode 0700 if absent) the store in `dir` with the default
    /// [`Config`]. See [`open_with`](Self::open_with).
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        BlobStore::open_with(dir, Config::default())
    }

    /// Opens (creating it with mode 0700 if absent, its parent must exist) the store in `dir`.
    /// Refuses a symbolic link, anything but a directory, and a directory that other users may
    /// write to; takes the directory's exclusive lock without waiting ([`BlobError::Locked`]
    /// if another process has the store open) and removes the temporary files that
    /// interrupted uploads left behind ([`stale_temps_removed`](Self::stale_temps_removed)
    /// tells how many).
    pub fn open_with(dir: &Path, config: Config) -> Result<BlobStore, BlobError> {
        let meta = match fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dir(dir)?;
                fs::symlink_metadata(dir)
                    .map_err(BlobError::io("inspect blob store", dir.to_path_buf()))?
            }
            Err(e) => return Err(BlobError::io("inspect blob store", dir.to_path_buf())(e)),
        };
        if meta.file_type().is_symlink() {
            return Err(BlobError::NotAStore {
                dir: dir.to_path_buf(),
                found: "a symbolic link",
            });
        }
        if !meta.is_dir() {
            return Err(BlobError::NotAStore {
                dir: dir.to_path_buf(),
                found: "not a directory",
            });
        }
        require_private_dir(dir, &meta)?;
        let lock = DirLock::try_exclusive(dir).map_err(BlobError::from_safefile)?;
        // Under the exclusive lock no upload of another process is between its temporary
        // file and its rename, and this process has none yet: every temporary is a leftover.
        let stale_temps_removed =
            safefile::remove_stale_temps(dir).map_err(BlobError::from_safefile)?;
        if stale_temps_removed > 0 {
            safefile::sync_dir(dir).map_err(BlobError::from_safefile)?;
        }
        Ok(BlobStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                config,
                stale_temps_removed,
                deletions: std::sync::RwLock::new(()),
                _lock: lock,
            }),
        })
    }

    /// Returns the store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Returns the store's configuration.
    pub fn config(&self) -> Config {
        self.inner.config
    }

    /// Returns how many temporary files of interrupted uploads [`open`](Self::open) removed.
    pub fn stale_temps_removed(&self) -> usize {
        self.inner.stale_temps_removed
    }

    /// Returns the path of the blob `id`'s file (whether or not it exists).
    pub fn blob_path(&self, id: &BlobId) -> PathBuf {
        self.inner.blob_path(id)
    }

    /// Stores the blob read from `reader`, which must be a GMCP v1 payload of `expected_len`
    /// bytes whose SM3 is `expected`, streaming it through one buffer of [`IO_BUFFER_LEN`]
    /// bytes (see [`begin`](Self::begin) for the checks). Returns once the blob is on disk.
    /// On any error nothing of the upload remains and a blob stored before is untouched.
    ///
    /// A put of a blob already stored is idempotent: the bytes are streamed and checked like
    /// any others and then replace the stored copy atomically (the same bytes, or a repair of
    /// a damaged copy).
    pub fn put(
        &self,
        expected: BlobId,
        expected_len: u64,
        reader: &mut dyn Read,
    ) -> Result<BlobInfo, BlobError> {
        let mut upload = self.begin(expected, expected_len)?;
        let mut buf = vec![0u8; IO_BUFFER_LEN];
        loop {
            // Never ask for more than one byte past the announced length: a longer stream is
            // refused as soon as it shows, however much the reader could still give.
            let room = upload.remaining().saturating_add(1);
            let want = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(BlobError::Input {
                        id: expected,
                        source,
                    });
                }
            };
            upload.write(&buf[..n])?;
        }
        upload.commit()
    }

    /// Begins an upload of the blob `expected`, announced as `expected_len` bytes, to be fed
    /// chunk by chunk ([`Upload::write`]) and committed ([`Upload::commit`]). Refuses at once a
    /// length above the store's limit or one that no GMCP v1 payload has; the upload then
    /// refuses bytes that do not start with a GMCP v1 header, or go past the announced length,
    /// at the first such byte, and its commit refuses a short stream or a digest other than
    /// `expected`. The upload holds no blob bytes in memory: each write goes to its temporary
    /// file.
    pub fn begin(&self, expected: BlobId, expected_len: u64) -> Result<Upload, BlobError> {
        let limit = self.inner.config.max_blob_len;
        if expected_len > limit {
            return Err(BlobError::TooLarge {
                id: expected,
                len: expected_len,
                limit,
            });
        }
        if !is_payload_len(expected_len) {
            return Err(BlobError::ImpossibleLength {
                id: expected,
                len: expected_len,
            });
        }
        let staging = StagingFile::create(&self.inner.blob_path(&expected), Mode::PRIVATE)
            .map_err(BlobError::from_safefile)?;
        Ok(Upload {
            store: Arc::clone(&self.inner),
            id: expected,
            expected_len,
            received: 0,
            hash: Sm3Context::new(),
            staging: Some(staging),
        })
    }

    /// Returns whether the blob `id` is stored.
    pub fn contains(&self, id: &BlobId) -> Result<bool, BlobError> {
        let path = self.inner.blob_path(id);
        match fs::symlink_metadata(&path) {
            Ok(meta) => {
                require_regular(&path, &meta)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::io("inspect blob", path)(e)),
        }
    }

    /// Opens the blob `id` for reading. The reader gives the bytes as stored; they were
    /// verified when stored, and [`verify`](Self::verify) checks them again (the grantee
    /// checks the digest and every chunk's tag in any case).
    pub fn open_read(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        let path = self.inner.blob_path(id);
        let not_found = |path: PathBuf| BlobError::NotFound { id: *id, path };
        match fs::symlink_metadata(&path) {
            Ok(meta) => require_regular(&path, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(path)),
            Err(e) => return Err(BlobError::io("inspect blob", path)(e)),
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Deleted in between: as absent as before.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(path)),
            Err(e) => return Err(BlobError::io("open blob", path)(e)),
        };
        let meta = file
            .metadata()
            .map_err(BlobError::io("inspect blob", path.clone()))?;
        require_regular(&path, &meta)?;
        Ok(BlobReader {
            id: *id,
            len: meta.len(),
            path,
            file,
        })
    }

    /// Holds off every deletion from this store (all clones) until the hold is dropped
    /// ([`DeletionHold`]); waits for deletions under way to end first.
    pub fn hold_deletions(&self) -> DeletionHold<'_> {
        DeletionHold {
            _guard: self
                .inner
                .deletions
                .write()
                .unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Deletes the blob `id`, durably (the directory is fsynced before this returns). Readers
    /// that opened it before keep reading their copy until they close it. Waits while a
    /// [`DeletionHold`] lives (a backup is copying the store).
    pub fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        let _deleting = self
            .inner
            .deletions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let path = self.inner.blob_path(id);
        match fs::symlink_metadata(&path) {
            Ok(meta) => require_regular(&path, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound { id: *id, path });
            }
            Err(e) => return Err(BlobError::io("inspect blob", path)(e)),
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound { id: *id, path });
            }
            Err(e) => return Err(BlobError::io("remove blob", path)(e)),
        }
        safefile::sync_dir(&self.inner.dir).map_err(BlobError::from_safefile)
    }

    /// Lists the stored blobs, sorted by id. Only `<64 lower-case hex>.blob` names are blobs:
    /// temporary files, the lock file and anything else in the directory are not listed; a
    /// blob name that is not a regular file is an error.
    pub fn list(&self) -> Result<Vec<BlobInfo>, BlobError> {
        let dir = &self.inner.dir;
        let mut blobs = Vec::new();
        let entries = fs::read_dir(dir).map_err(BlobError::io("list", dir.clone()))?;
        for entry in entries {
            let entry = entry.map_err(BlobError::io("list", dir.clone()))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(BLOB_SUFFIX))
                .and_then(|hex| BlobId::from_hex(hex).ok())
            else {
                continue;
            };
            let path = entry.path();
            let meta =
                fs::symlink_metadata(&path).map_err(BlobError::io("inspect blob", path.clone()))?;
            require_regular(&path, &meta)?;
            blobs.push(BlobInfo {
                id,
                len: meta.len(),
            });
        }
        blobs.sort_by_key(|b| b.id);
        Ok(blobs)
    }

    /// Reads the blob `id` again and checks that it still hashes to its id (bit rot,
    /// tampering), through one buffer of [`IO_BUFFER_LEN`] bytes.
    pub fn verify(&self, id: &BlobId) -> Result<BlobInfo, BlobError> {
        let mut reader = self.open_read(id)?;
        let mut hash = Sm3Context::new();
        let mut buf = vec![0u8; IO_BUFFER_LEN];
        let mut len: u64 = 0;
        loop {
            let n = match reader.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BlobError::io("read blob", reader.path)(e)),
            };
            hash.update(&buf[..n]);
            len += n as u64;
        }
        let actual = BlobId::from(hash.finish());
        if actual != *id {
            return Err(BlobError::Corrupt {
                id: *id,
                path: reader.path,
                len,
                actual,
            });
        }
        Ok(BlobInfo { id: *id, len })
    }
}

impl Inner {
    fn blob_path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{id}{BLOB_SUFFIX}"))
    }
}

/// An upload in progress: a temporary file in the store, fed chunk by chunk (from a gRPC
/// stream, say) and hashed as it goes. [`commit`](Self::commit) checks and stores it;
/// dropping it uncommitted, or a failed write, removes the temporary file. It keeps the
/// store's lock held while it lives, and is `Send` and `'static` (an async task may own it).
#[derive(Debug)]
pub struct Upload {
    store: Arc<Inner>,
    id: BlobId,
    expected_len: u64,
    received: u64,
    hash: Sm3Context,
    /// `None` once a write failed: the temporary file is removed then.
    staging: Option<StagingFile>,
}

impl Upload {
    /// Returns the id the upload must hash to.
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// Returns the bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Returns the bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.expected_len - self.received
    }

    /// Appends `bytes` to the upload. Refuses (and discards the upload, removing its
    /// temporary file) bytes past the announced length and a start that is not a GMCP v1
    /// header; after a failure every call fails with [`BlobError::UploadDiscarded`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        let result = self.append(bytes);
        if result.is_err() {
            // Dropping the staging file removes the temporary file now, not when the caller
            // gets round to dropping the upload.
            self.staging = None;
        }
        result
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        if self.staging.is_none() {
            return Err(BlobError::UploadDiscarded { id: self.id });
        }
        if bytes.len() as u64 > self.remaining() {
            return Err(BlobError::LongerThanExpected {
                id: self.id,
                expected: self.expected_len,
            });
        }
        self.check_header(bytes)?;
        self.hash.update(bytes);
        if let Some(staging) = self.staging.as_mut() {
            staging.write_all(bytes).map_err(BlobError::from_safefile)?;
        }
        self.received += bytes.len() as u64;
        Ok(())
    }

    /// Checks the bytes of `bytes` that fall in the first five of the blob: "GMCP", then the
    /// version (`docs/formats.md` §8). The nonce prefix that follows can be anything.
    fn check_header(&self, bytes: &[u8]) -> Result<(), BlobError> {
        let start = self.received;
        for (offset, &b) in bytes.iter().enumerate() {
            match start + offset as u64 {
                pos @ 0..4 => {
                    if b != MAGIC[pos as usize] {
                        return Err(BlobError::NotAPayload { id: self.id });
                    }
                }
                4 => {
                    if b != VERSION {
                        return Err(BlobError::UnsupportedVersion {
                            id: self.id,
                            version: b,
                        });
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// Checks that the upload has exactly the announced length and hashes to its id, then
    /// fsyncs it, renames it to its blob name and fsyncs the directory: once this returns
    /// `Ok` the blob survives a crash. On a check's failure the temporary file is removed and
    /// a blob stored before is untouched. A failure of the last step (the directory fsync)
    /// leaves the complete, verified blob in place but unacknowledged.
    pub fn commit(mut self) -> Result<BlobInfo, BlobError> {
        let staging = self
            .staging
            .take()
            .ok_or(BlobError::UploadDiscarded { id: self.id })?;
        if self.received != self.expected_len {
            return Err(BlobError::ShorterThanExpected {
                id: self.id,
                expected: self.expected_len,
                received: self.received,
            });
        }
        let actual = BlobId::from(std::mem::take(&mut self.hash).finish());
        if actual != self.id {
            return Err(BlobError::DigestMismatch {
                expected: self.id,
                actual,
            });
        }
        staging
            .finish()
            .and_then(|staged| staged.rename_into_place())
            .and_then(|()| safefile::sync_dir(&self.store.dir))
            .map_err(BlobError::from_safefile)?;
        Ok(BlobInfo {
            id: self.id,
            len: self.received,
        })
    }
}

/// A stored blob opened for reading: the bytes as stored, and their length.
#[derive(Debug)]
pub struct BlobReader {
    id: BlobId,
    len: u64,
    path: PathBuf,
    file: File,
}

impl BlobReader {
    /// Returns the blob's id.
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// Returns the blob's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Returns whether the blob is empty (never, for a stored GMCP payload).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the blob's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

/// Creates the store's directory, owner-only, and makes its entry durable.
fn create_dir(dir: &Path) -> Result<(), BlobError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {}
        // Created by someone else in between: inspected like any existing directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(BlobError::io("create blob store", dir.to_path_buf())(e)),
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    safefile::sync_dir(parent).map_err(BlobError::from_safefile)
}

/// Refuses a directory that other users may write to.
#[cfg(unix)]
fn require_private_dir(dir: &Path, meta: &Metadata) -> Result<(), BlobError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_DIR_BITS != 0 {
        return Err(BlobError::InsecurePermissions {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Other platforms have no mode bits to check; their ACLs are the administrator's business.
#[cfg(not(unix))]
fn require_private_dir(_: &Path, _: &Metadata) -> Result<(), BlobError> {
    Ok(())
}

/// Refuses anything but a regular file under a blob's name: a symbolic link could point out
/// of the store.
fn require_regular(path: &Path, meta: &Metadata) -> Result<(), BlobError> {
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
    Err(BlobError::NotARegularFile {
        path: path.to_path_buf(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lengths_follow_the_chunk_layout() {
        let chunk = CHUNK_LEN as u64;
        // Header and an empty last chunk (its tag alone): the shortest payload.
        assert!(!is_payload_len(28));
        assert!(is_payload_len(29));
        // One full chunk that is the last one.
        assert!(is_payload_len(13 + chunk + 16));
        // A full chunk then a last chunk of 0 bytes.
        assert!(is_payload_len(13 + (chunk + 16) + 16));
        // After a full chunk, a remainder of 1 to 15 bytes cannot be a last chunk.
        for extra in 1..16 {
            assert!(!is_payload_len(13 + (chunk + 16) + extra), "{extra}");
        }
        // Nor can a last chunk hold more than CHUNK_LEN.
        assert!(!is_payload_len(13 + chunk + 17));
        assert!(is_payload_len(13 + 64 * (chunk + 16) + 1 + 16));
    }
}
