//! Online backup and verified restore of a node's data (issue 18 item 1; docs/ops/backup.md,
//! the manifest in docs/formats.md §10).
//!
//! A backup is a directory: `store/` (a RocksDB checkpoint of the whole store, made by the
//! process that holds the store: the running node through its admin socket, or the CLI when
//! no node runs), `genesis.json` (the data directory's genesis file), `blobs/` (a custodian's
//! blob files) and `manifest.json` (format `gmchain-backup` version 1: chain, node
//! certificate, height and tip at the checkpoint, store version, every file's path, length
//! and SM3) with `manifest.sig` (the DER SM2 signature of the manifest's bytes by the node's
//! key, default user ID). It appears under its name only once complete: everything is written
//! into a temporary sibling, fsynced, then renamed.
//!
//! A restore verifies before it writes anything in place: the signature and the signer (a
//! certificate the caller trusts), every file's length and SM3 as it is copied, no missing
//! and no unlisted file, the chain; it copies into a staging sibling of the data directory
//! that the caller renames into place ([`Staged::commit`]) only after the store verification
//! passed on the staged copy.
//!
//! What it refuses to do: write into a non-empty directory, leave a half backup or a half
//! restore under the final name, follow a symbolic link, carry a blob that does not hash to
//! its name, or read a manifest larger than [`MAX_MANIFEST`].

use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use blobstore::{BLOB_SUFFIX, BlobId, BlobStore};
use crypto::{Signature, Signer, UserId};
use crypto_sm::sm3::Sm3Context;
use pki::Certificate;
use serde::{Deserialize, Serialize};
use storage::ChainStore;
use storage_rocksdb::RocksBackend;

/// The manifest's `format`.
pub const FORMAT: &str = "gmchain-backup";
/// The manifest's `version`.
pub const VERSION: u32 = 1;
/// The manifest's file name in a backup.
pub const MANIFEST: &str = "manifest.json";
/// The signature's file name in a backup.
pub const SIGNATURE: &str = "manifest.sig";
/// The checkpoint's directory in a backup.
pub const STORE: &str = "store";
/// The blob files' directory in a backup.
pub const BLOBS: &str = "blobs";
/// The genesis file in a backup.
pub const GENESIS: &str = "genesis.json";
/// The largest manifest read (a million files fit in well under it).
pub const MAX_MANIFEST: u64 = 256 << 20;
/// The largest signature file read (a DER SM2 signature is at most 72 bytes).
const MAX_SIGNATURE: u64 = 256;
/// The buffer files are hashed and copied through.
const BUFFER: usize = 1 << 20;

/// The signed description of a backup (docs/formats.md §10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The chain's id.
    pub chain_id: String,
    /// SM3 of the genesis file's content (`Genesis::hash`), hex.
    pub genesis_hash: String,
    /// The certificate of the node whose key signed `manifest.sig` (PEM).
    pub node_certificate: String,
    /// The tip's height in the checkpoint.
    pub height: u64,
    /// The tip's block hash in the checkpoint, hex.
    pub tip_hash: String,
    /// The store's layout version (`storage::STORE_VERSION` of the build that made it).
    pub store_version: u32,
    /// When the backup was made, seconds since the epoch.
    pub created: u64,
    /// Every file of the backup but the manifest and its signature, sorted by path.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path relative to the backup, `/`-separated: `genesis.json`, `store/<name>`,
    /// `blobs/<sm3 hex>.blob`.
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// SM3 of its bytes, hex.
    pub sm3: String,
}

/// Why a backup or a restore failed. Each is one registry code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The backup's output directory cannot be used.
    #[error("{path}: {problem}")]
    Target {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A step of the backup failed.
    #[error("{step} {path}: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The checkpoint or the store read failed.
    #[error("{0}")]
    Store(String),
    /// Another backup of this node is running.
    #[error("a backup of this node is already running")]
    Busy,
    /// A blob does not hash to its name.
    #[error("{path}: the blob's bytes hash to {actual}, not to its name")]
    BlobCorrupt {
        /// The blob's file.
        path: PathBuf,
        /// What it hashes to.
        actual: String,
    },
    /// Signing the manifest failed.
    #[error("signing the manifest with the node's key: {0}")]
    Sign(#[source] crypto::CryptoError),
    /// A backup does not verify.
    #[error("{file}: {problem}")]
    NotVerified {
        /// The backup's file, relative to the backup.
        file: String,
        /// What does not verify.
        problem: String,
    },
    /// The manifest is signed by a certificate the restore does not trust.
    #[error(
        "manifest.sig: signed by {subject}, which is not this node's [key] certificate nor a --signer-cert; to restore another node's backup here give its certificate with --signer-cert FILE"
    )]
    Untrusted {
        /// The signer's subject.
        subject: String,
    },
    /// Not a backup this build restores.
    #[error("{path}: {problem}")]
    Format {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The restore's target is not empty.
    #[error("{path}: {problem}")]
    RestoreTarget {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl BackupError {
    fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
        move |source| BackupError::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    }

    fn not_verified(file: impl Into<String>, problem: impl Into<String>) -> BackupError {
        BackupError::NotVerified {
            file: file.into(),
            problem: problem.into(),
        }
    }

    /// Returns the registry code.
    pub fn code(&self) -> &'static codes::Code {
        match self {
            BackupError::Target { .. } => &codes::NODE_BACKUP_TARGET,
            BackupError::Io { .. } | BackupError::Store(_) => &codes::NODE_BACKUP_FAILED,
            BackupError::Busy => &codes::NODE_BACKUP_BUSY,
            BackupError::BlobCorrupt { .. } => &codes::NODE_BACKUP_BLOB_CORRUPT,
            BackupError::Sign(_) => &codes::NODE_SEAL,
            BackupError::NotVerified { .. } => &codes::NODE_BACKUP_NOT_VERIFIED,
            BackupError::Untrusted { .. } => &codes::NODE_BACKUP_SIGNER_UNTRUSTED,
            BackupError::Format { .. } => &codes::NODE_BACKUP_FORMAT,
            BackupError::RestoreTarget { .. } => &codes::NODE_RESTORE_TARGET,
        }
    }
}

impl codes::Coded for BackupError {
    fn code(&self) -> &'static codes::Code {
        BackupError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            // The token decides: gone (3), or a wrong key or PIN (2).
            BackupError::Sign(e) => codes::Coded::class(e),
            _ => self.code().class,
        }
    }
}

/// What a backup is made of.
pub struct Source<'a> {
    /// The open store (the running node's, or one the CLI opened).
    pub store: &'a RocksBackend,
    /// The data directory's genesis file.
    pub genesis_file: &'a Path,
    /// The custodian's blob store, if the node has `[exchange]`.
    pub blobs: Option<&'a BlobStore>,
    /// The node's key (`[key]`), which signs the manifest.
    pub signer: &'a dyn Signer,
    /// Its certificate, which the manifest carries.
    pub certificate: &'a Certificate,
    /// Now, in seconds since the epoch.
    pub now_secs: u64,
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("store", &self.store.path())
            .field("certificate", &self.certificate.subject())
            .finish_non_exhaustive()
    }
}

/// How far a backup is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// `checkpoint`, `blobs`, `hashing`, `signed`.
    pub stage: String,
    /// Files done in this stage.
    pub files: u64,
    /// Bytes done in this stage.
    pub bytes: u64,
    /// A sentence for people.
    pub detail: String,
}

/// What a finished backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The backup's directory.
    pub out: PathBuf,
    /// The tip's height in it.
    pub height: u64,
    /// The tip's hash, hex.
    pub tip_hash: String,
    /// Files listed in the manifest.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs among them.
    pub blobs: u64,
    /// SM3 of `manifest.json`, hex.
    pub manifest_sm3: String,
}

/// Makes a backup of `src` in `out` (absolute; a new directory, or an empty one, on an
/// existing parent). Reports its stages to `progress`. On any error nothing is left under
/// `out` (nor of the temporary sibling it writes into). Reads and hashes every byte it
/// copies: run it on a thread of its own ([`spawn_low_priority`]), never on the consensus
/// thread or an async worker.
pub fn create(
    src: &Source<'_>,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, BackupError> {
    let parent = check_new_dir(out).map_err(|problem| BackupError::Target {
        path: out.to_path_buf(),
        problem,
    })?;
    let staging = Staging::create(&parent, out, "partial")?;
    let root = staging.path.clone();
    let store_dir = root.join(STORE);
    src.store
        .checkpoint(&store_dir)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    // The tip as of the checkpoint, read from the checkpoint itself (read-only: nothing is
    // written into it; RocksDB's info log goes to a scratch directory removed at once).
    let (height, tip_hash) = {
        let scratch = root.join(".rocksdb-info-log");
        make_private_dir(&scratch)?;
        let tip = (|| {
            let backend = RocksBackend::open_read_only(&store_dir, &scratch)
                .map_err(|e| BackupError::Store(e.to_string()))?;
            let store = ChainStore::new(backend, types::Limits::default());
            store
                .tip()
                .map_err(|e| BackupError::Store(format!("{}: {e}", store_dir.display())))?
                .ok_or_else(|| BackupError::Store("the store holds no block".into()))
        })();
        fs::remove_dir_all(&scratch).map_err(BackupError::io("remove", &scratch))?;
        let tip = tip?;
        (tip.height.0, tip.hash.to_string())
    };
    progress(Progress {
        stage: "checkpoint".into(),
        files: 0,
        bytes: 0,
        detail: format!("checkpoint of the store at height {height}, tip {tip_hash}"),
    });
    let genesis_bytes =
        fs::read(src.genesis_file).map_err(BackupError::io("read", src.genesis_file))?;
    let genesis = execution::Genesis::from_json(&genesis_bytes)
        .map_err(|e| BackupError::Store(format!("{}: {e}", src.genesis_file.display())))?;
    safefile::write_atomic(&root.join(GENESIS), &genesis_bytes, safefile::Mode::PRIVATE)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    let mut blob_count = 0u64;
    if let Some(blobs) = src.blobs {
        let dest = root.join(BLOBS);
        make_private_dir(&dest)?;
        // Deletions wait until every blob listed now is linked or copied: the listing comes
        // after the checkpoint, so it holds every blob the checkpointed chain could reference
        // (blobs never change; an upload since only adds one the chain does not reference yet).
        let _hold = blobs.hold_deletions();
        let listed = blobs
            .list()
            .map_err(|e| BackupError::Store(e.to_string()))?;
        for (i, b) in listed.iter().enumerate() {
            let from = blobs.blob_path(&b.id);
            let to = dest.join(format!("{}{BLOB_SUFFIX}", b.id));
            link_or_copy(&from, &to)?;
            blob_count += 1;
            if (i + 1) % 64 == 0 {
                progress(Progress {
                    stage: "blobs".into(),
                    files: blob_count,
                    bytes: 0,
                    detail: format!("{blob_count} of {} blobs copied", listed.len()),
                });
            }
        }
        safefile::sync_dir(&dest).map_err(|e| BackupError::Store(e.to_string()))?;
        progress(Progress {
            stage: "blobs".into(),
            files: blob_count,
            bytes: 0,
            detail: format!("{blob_count} blobs copied (deletions were held off meanwhile)"),
        });
    }
    // Every file, hashed (and fsynced: the checkpoint's hard links are already on disk, its
    // copies and the blob copies may not be).
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut last_report = 0u64;
    for rel in list_files(&root)? {
        let path = root.join(&rel);
        let (len, sm3) = hash_file(&path, true)?;
        if let Some(name) = rel.strip_prefix("blobs/") {
            let want = name.strip_suffix(BLOB_SUFFIX).unwrap_or(name);
            if want != sm3 {
                return Err(BackupError::BlobCorrupt {
                    path: src
                        .blobs
                        .map_or_else(|| path.clone(), |b| b.dir().join(name)),
                    actual: sm3,
                });
            }
        }
        total += len;
        files.push(FileEntry {
            path: rel,
            len,
            sm3,
        });
        if total - last_report >= 64 << 20 {
            last_report = total;
            progress(Progress {
                stage: "hashing".into(),
                files: files.len() as u64,
                bytes: total,
                detail: format!("{} files, {total} bytes hashed", files.len()),
            });
        }
    }
    for d in [store_dir.clone(), root.clone()] {
        safefile::sync_dir(&d).map_err(|e| BackupError::Store(e.to_string()))?;
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        chain_id: genesis.chain_id.to_string(),
        genesis_hash: genesis.hash().to_string(),
        node_certificate: src.certificate.to_pem(),
        height,
        tip_hash: tip_hash.clone(),
        store_version: u32::from(storage::STORE_VERSION),
        created: src.now_secs,
        files,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Store(format!("encoding the manifest: {e}")))?;
    bytes.push(b'\n');
    let signature = src
        .signer
        .sign(&UserId::default(), &bytes)
        .map_err(BackupError::Sign)?;
    safefile::write_atomic(&root.join(MANIFEST), &bytes, safefile::Mode::PRIVATE)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    safefile::write_atomic(
        &root.join(SIGNATURE),
        &signature.to_der(),
        safefile::Mode::PRIVATE,
    )
    .map_err(|e| BackupError::Store(e.to_string()))?;
    progress(Progress {
        stage: "signed".into(),
        files: manifest.files.len() as u64,
        bytes: total,
        detail: format!(
            "manifest signed by {}",
            src.certificate
                .common_name()
                .unwrap_or_else(|| src.certificate.subject())
        ),
    });
    staging.commit(out)?;
    Ok(Summary {
        out: out.to_path_buf(),
        height,
        tip_hash,
        files: manifest.files.len() as u64,
        bytes: total,
        blobs: blob_count,
        manifest_sm3: crypto_sm::sm3::sm3(&bytes).to_string(),
    })
}

/// Runs `f` on a new thread named `name` at a modest CPU priority (nice 10, which on Linux
/// also lowers its default I/O priority), so that hashing gigabytes does not take the cores
/// from consensus, admission and the API. Returns the thread's handle.
pub fn spawn_low_priority<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let me = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(me), 10) {
                tracing::warn!("the backup thread runs at normal priority: setpriority: {e}");
            }
            f()
        })
}

/// The checks of a new output directory: absolute, absent or an empty directory (not a
/// symbolic link), on an existing parent directory. Returns the parent.
fn check_new_dir(dir: &Path) -> Result<PathBuf, String> {
    if !dir.is_absolute() {
        return Err("not an absolute path".into());
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or("has no parent directory")?;
    if dir.file_name().is_none() {
        return Err("names no directory".into());
    }
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err("is a symbolic link".into()),
        Ok(m) if !m.is_dir() => return Err("exists and is not a directory".into()),
        Ok(_) => {
            let mut entries = fs::read_dir(dir).map_err(|e| format!("cannot list: {e}"))?;
            if entries.next().is_some() {
                return Err("exists and is not empty (a backup never writes into another directory's files)".into());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect: {e}")),
    }
    match fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok(parent.to_path_buf()),
        Ok(_) => Err(format!("{} is not a directory", parent.display())),
        Err(e) => Err(format!("its parent {}: {e}", parent.display())),
    }
}

/// A temporary sibling directory, removed on drop unless renamed into place.
struct Staging {
    path: PathBuf,
    placed: bool,
}

impl Staging {
    fn create(parent: &Path, target: &Path, what: &str) -> Result<Staging, BackupError> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| BackupError::Io {
            step: "draw a temporary name",
            path: parent.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = parent.join(format!(".{name}.{what}-{}", hex::encode(random)));
        make_private_dir(&path)?;
        Ok(Staging {
            path,
            placed: false,
        })
    }

    /// Renames the staging directory to `target` (absent, or an empty directory, which the
    /// rename replaces) and fsyncs the parent.
    fn commit(mut self, target: &Path) -> Result<(), BackupError> {
        safefile::sync_dir(&self.path).map_err(|e| BackupError::Store(e.to_string()))?;
        fs::rename(&self.path, target).map_err(BackupError::io("rename into place", target))?;
        self.placed = true;
        if let Some(parent) = target.parent() {
            safefile::sync_dir(parent).map_err(|e| BackupError::Store(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn make_private_dir(path: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(BackupError::io("create directory", path))
}

/// A hard link when both are on one filesystem (blobs never change: a link is a copy), a
/// copy (fsynced) otherwise.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), BackupError> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Deletions are held off: a blob listed a moment ago cannot be gone.
            Err(BackupError::io("link", from)(e))
        }
        Err(_) => {
            let mut input = File::open(from).map_err(BackupError::io("open", from))?;
            let mut staging = safefile::StagingFile::create(to, safefile::Mode::PRIVATE)
                .map_err(|e| BackupError::Store(e.to_string()))?;
            let mut buf = vec![0u8; BUFFER];
            loop {
                let n = read_some(&mut input, &mut buf, from)?;
                if n == 0 {
                    break;
                }
                staging
                    .write_all(&buf[..n])
                    .map_err(|e| BackupError::Store(e.to_string()))?;
            }
            staging
                .finish()
                .and_then(|s| s.rename_into_place())
                .map_err(|e| BackupError::Store(e.to_string()))
        }
    }
}

fn read_some(input: &mut File, buf: &mut [u8], path: &Path) -> Result<usize, BackupError> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BackupError::io("read", path)(e)),
        }
    }
}

/// Length and SM3 (hex) of a file; with `sync`, also fsyncs it.
fn hash_file(path: &Path, sync: bool) -> Result<(u64, String), BackupError> {
    let mut input = File::open(path).map_err(BackupError::io("open", path))?;
    let mut hash = Sm3Context::new();
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        let n = read_some(&mut input, &mut buf, path)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
    if sync {
        input.sync_all().map_err(BackupError::io("fsync", path))?;
    }
    Ok((len, hash.finish().to_string()))
}

/// The files under `root` (regular files only, two levels at most), as sorted `/`-separated
/// relative paths, without the manifest and its signature.
fn list_files(root: &Path) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    for top in read_dir_sorted(root)? {
        let path = root.join(&top);
        let meta = fs::symlink_metadata(&path).map_err(BackupError::io("inspect", &path))?;
        if meta.is_dir() {
            for name in read_dir_sorted(&path)? {
                out.push(format!("{top}/{name}"));
            }
        } else if top != MANIFEST && top != SIGNATURE {
            out.push(top);
        }
    }
    out.sort();
    Ok(out)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(BackupError::io("list", dir))? {
        let e = e.map_err(BackupError::io("list", dir))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// A backup whose manifest and signature verified, from a trusted signer.
#[derive(Debug)]
pub struct Checked {
    /// The backup's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The certificate that signed it.
    pub signer: Certificate,
}

/// Reads `dir`'s manifest and checks its signature, its format and that its signer is one of
/// `trusted` (compared byte for byte) and a node-sign certificate. The files are checked by
/// [`stage_restore`] as it copies them.
pub fn check_manifest(dir: &Path, trusted: &[Certificate]) -> Result<Checked, BackupError> {
    let format = |path: PathBuf, problem: &str| BackupError::Format {
        path,
        problem: problem.into(),
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format(dir.to_path_buf(), "not a directory")),
        Err(e) => return Err(format(dir.to_path_buf(), &e.to_string())),
    }
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(format(
            manifest_path,
            "no manifest: not a directory `gmchain node backup` wrote",
        ));
    }
    let bytes = read_bounded(&manifest_path, MAX_MANIFEST, MANIFEST)?;
    let sig = read_bounded(&dir.join(SIGNATURE), MAX_SIGNATURE, SIGNATURE)?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::not_verified(MANIFEST, format!("not a backup manifest: {e}")))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(format(
            manifest_path,
            &format!(
                "format {} version {}; this build restores {FORMAT} version {VERSION}",
                manifest.format, manifest.version
            ),
        ));
    }
    let signer = Certificate::from_pem(manifest.node_certificate.as_bytes())
        .map_err(|e| BackupError::not_verified(MANIFEST, format!("node_certificate: {e}")))?;
    let signature = Signature::from_der(&sig).map_err(|e| {
        BackupError::not_verified(SIGNATURE, format!("not a DER SM2 signature: {e}"))
    })?;
    crypto_sm::sm2::verify(&signer.public_key(), &UserId::default(), &bytes, &signature)
        .map_err(|_| {
            BackupError::not_verified(
                SIGNATURE,
                format!(
                    "the signature does not verify over {MANIFEST} with the key of {} (one of the two files was altered)",
                    signer.subject()
                ),
            )
        })?;
    if !trusted.iter().any(|t| t.der() == signer.der()) {
        return Err(BackupError::Untrusted {
            subject: signer.subject(),
        });
    }
    if signer.role() != Some(pki::Role::NodeSign) {
        return Err(BackupError::not_verified(
            MANIFEST,
            format!("{} is not a node-sign certificate", signer.subject()),
        ));
    }
    if manifest.store_version != u32::from(storage::STORE_VERSION) {
        return Err(format(
            manifest_path,
            &format!(
                "a store of version {}; this build runs version {} (restore it with the release that wrote it, then upgrade as docs/ops/upgrade.md says)",
                manifest.store_version,
                storage::STORE_VERSION
            ),
        ));
    }
    Ok(Checked {
        dir: dir.to_path_buf(),
        manifest,
        signer,
    })
}

fn read_bounded(path: &Path, max: u64, name: &str) -> Result<Vec<u8>, BackupError> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| BackupError::not_verified(name, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(BackupError::not_verified(name, "not a regular file"));
    }
    if meta.len() > max {
        return Err(BackupError::not_verified(
            name,
            format!("{} bytes, more than {max}", meta.len()),
        ));
    }
    fs::read(path).map_err(|e| BackupError::not_verified(name, format!("cannot read: {e}")))
}

/// Where a restore goes.
#[derive(Clone, Debug)]
pub struct RestoreTarget {
    /// The node's data directory (`genesis.json`, `db/`): absolute, absent or empty.
    pub data_dir: PathBuf,
    /// The node's blob store directory if it has `[exchange]`: absolute; inside `data_dir`,
    /// or absent or empty.
    pub blobs_dir: Option<PathBuf>,
}

/// A restore copied and checked into staging directories, not yet in place.
#[derive(Debug)]
pub struct Staged {
    data: Staging,
    /// The blob store's own staging directory, when it is outside the data directory.
    blobs: Option<(Staging, PathBuf)>,
    target: RestoreTarget,
    /// Files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Blobs among them.
    pub blobs_copied: u64,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging").field("path", &self.path).finish()
    }
}

impl Staged {
    /// The staged data directory: the store verification runs on it before [`commit`](Self::commit).
    pub fn data_dir(&self) -> &Path {
        &self.data.path
    }

    /// Renames the staged directories into place: the blob store first, the data directory
    /// last (a node cannot start without its data directory, so a crash between the two
    /// leaves nothing that runs).
    pub fn commit(self) -> Result<(), BackupError> {
        let Staged {
            data,
            blobs,
            target,
            ..
        } = self;
        if let Some((staging, to)) = blobs {
            staging.commit(&to)?;
        }
        data.commit(&target.data_dir)
    }
}

/// The checks of a restore target: absolute, absent or an empty directory, its parent a
/// directory.
fn check_restore_dir(dir: &Path) -> Result<PathBuf, BackupError> {
    check_new_dir(dir).map_err(|problem| BackupError::RestoreTarget {
        path: dir.to_path_buf(),
        problem: if problem.starts_with("exists and is not empty") {
            "exists and is not empty: a restore goes only into an empty or absent directory (move the old one aside; the node must be stopped)".into()
        } else {
            problem
        },
    })
}

/// Copies the verified backup `checked` into staging siblings of `target`, checking every
/// file's length and SM3 as it is copied, that no listed file is missing and no unlisted
/// one present, that every blob hashes to its name, and that the genesis file is the
/// manifest's chain. Nothing is written at the target's names ([`Staged::commit`] does that).
pub fn stage_restore(
    checked: &Checked,
    target: &RestoreTarget,
    progress: &mut dyn FnMut(Progress),
) -> Result<Staged, BackupError> {
    let m = &checked.manifest;
    // The listed paths: well-formed, unique, in the three places a backup has.
    let mut listed = std::collections::BTreeMap::new();
    let mut has_blobs = false;
    for f in &m.files {
        let ok = match f.path.split_once('/') {
            None => f.path == GENESIS,
            Some((STORE, name)) => plain_name(name),
            Some((BLOBS, name)) => {
                has_blobs = true;
                plain_name(name)
                    && name
                        .strip_suffix(BLOB_SUFFIX)
                        .is_some_and(|h| BlobId::from_hex(h).is_ok())
            }
            Some(_) => false,
        };
        if !ok {
            return Err(BackupError::not_verified(
                MANIFEST,
                format!("lists {:?}, which no backup holds", f.path),
            ));
        }
        if listed.insert(f.path.clone(), f).is_some() {
            return Err(BackupError::not_verified(
                MANIFEST,
                format!("lists {} twice", f.path),
            ));
        }
    }
    if !listed.contains_key(GENESIS) {
        return Err(BackupError::not_verified(
            MANIFEST,
            format!("does not list {GENESIS}"),
        ));
    }
    // Present and listed, both ways.
    let mut present = std::collections::BTreeSet::new();
    for top in read_dir_sorted(&checked.dir)? {
        let path = checked.dir.join(&top);
        let meta = fs::symlink_metadata(&path).map_err(BackupError::io("inspect", &path))?;
        if meta.is_dir() && (top == STORE || top == BLOBS) {
            for name in read_dir_sorted(&path)? {
                let rel = format!("{top}/{name}");
                let meta = fs::symlink_metadata(path.join(&name))
                    .map_err(BackupError::io("inspect", &path))?;
                if !meta.is_file() {
                    return Err(BackupError::not_verified(
                        rel,
                        "not a regular file (a symbolic link or directory has no place in a backup)",
                    ));
                }
                present.insert(rel);
            }
        } else if top == MANIFEST || top == SIGNATURE {
            continue;
        } else if meta.is_file() {
            present.insert(top);
        } else {
            return Err(BackupError::not_verified(
                top,
                "not a regular file and not listed in the manifest",
            ));
        }
    }
    if let Some(extra) = present.iter().find(|p| !listed.contains_key(*p)) {
        return Err(BackupError::not_verified(
            extra.clone(),
            "present in the backup but not listed in its manifest (added after it was signed)",
        ));
    }
    if let Some(missing) = listed.keys().find(|p| !present.contains(*p)) {
        return Err(BackupError::not_verified(
            missing.clone(),
            "listed in the manifest but missing from the backup",
        ));
    }
    if has_blobs && target.blobs_dir.is_none() {
        return Err(BackupError::Format {
            path: checked.dir.join(BLOBS),
            problem: "the backup holds a custodian's blobs but the configuration has no [exchange] section to restore them into".into(),
        });
    }
    // The targets.
    let data_parent = check_restore_dir(&target.data_dir)?;
    let blobs_inside = target
        .blobs_dir
        .as_ref()
        .is_some_and(|b| b.parent() == Some(target.data_dir.as_path()));
    let data = Staging::create(&data_parent, &target.data_dir, "restore")?;
    let mut blobs_staging = None;
    let blobs_root = match &target.blobs_dir {
        None => None,
        Some(b) if blobs_inside => {
            let dest = data.path.join(b.file_name().unwrap_or_default());
            make_private_dir(&dest)?;
            Some(dest)
        }
        Some(b) => {
            let parent = check_restore_dir(b)?;
            let s = Staging::create(&parent, b, "restore")?;
            let dest = s.path.clone();
            blobs_staging = Some((s, b.clone()));
            Some(dest)
        }
    };
    let db = data.path.join("db");
    make_private_dir(&db)?;
    let (mut files, mut bytes, mut blobs_copied) = (0u64, 0u64, 0u64);
    let mut last_report = 0u64;
    for (rel, entry) in &listed {
        let to = match rel.split_once('/') {
            None => data.path.join(GENESIS),
            Some((STORE, name)) => db.join(name),
            Some((_, name)) => match &blobs_root {
                Some(b) => {
                    blobs_copied += 1;
                    b.join(name)
                }
                None => continue,
            },
        };
        let (len, sm3) = copy_hashing(&checked.dir.join(rel), &to)?;
        if len != entry.len || sm3 != entry.sm3 {
            return Err(BackupError::not_verified(
                rel.clone(),
                format!(
                    "{len} bytes with SM3 {sm3}; the manifest says {} bytes with SM3 {}",
                    entry.len, entry.sm3
                ),
            ));
        }
        if let Some(name) = rel.strip_prefix("blobs/")
            && name.strip_suffix(BLOB_SUFFIX) != Some(sm3.as_str())
        {
            return Err(BackupError::not_verified(
                rel.clone(),
                "the blob does not hash to its name",
            ));
        }
        files += 1;
        bytes += len;
        if bytes - last_report >= 64 << 20 {
            last_report = bytes;
            progress(Progress {
                stage: "copying".into(),
                files,
                bytes,
                detail: format!("{files} files, {bytes} bytes copied and checked"),
            });
        }
    }
    // The genesis file names the manifest's chain.
    let genesis_bytes =
        fs::read(data.path.join(GENESIS)).map_err(BackupError::io("read", &data.path))?;
    let genesis = execution::Genesis::from_json(&genesis_bytes)
        .map_err(|e| BackupError::not_verified(GENESIS, e.to_string()))?;
    if genesis.chain_id.to_string() != m.chain_id || genesis.hash().to_string() != m.genesis_hash {
        return Err(BackupError::not_verified(
            GENESIS,
            format!(
                "chain {} with genesis hash {}; the manifest says chain {} with {}",
                genesis.chain_id,
                genesis.hash(),
                m.chain_id,
                m.genesis_hash
            ),
        ));
    }
    for d in [&db, &data.path] {
        safefile::sync_dir(d).map_err(|e| BackupError::Store(e.to_string()))?;
    }
    if let Some(b) = &blobs_root {
        safefile::sync_dir(b).map_err(|e| BackupError::Store(e.to_string()))?;
    }
    progress(Progress {
        stage: "copied".into(),
        files,
        bytes,
        detail: format!("{files} files ({bytes} bytes) copied, each one's length and SM3 checked"),
    });
    Ok(Staged {
        data,
        blobs: blobs_staging,
        target: target.clone(),
        files,
        bytes,
        blobs_copied,
    })
}

/// One path component of printable ASCII, not `.` or `..`.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Copies `from` (a regular file, not followed if a link) to the new file `to` (0600,
/// fsynced), returning the length and SM3 of what was copied.
fn copy_hashing(from: &Path, to: &Path) -> Result<(u64, String), BackupError> {
    let mut input = File::open(from).map_err(BackupError::io("open", from))?;
    let meta = input.metadata().map_err(BackupError::io("inspect", from))?;
    if !meta.is_file() || meta.nlink() == 0 {
        return Err(BackupError::io("copy", from)(io::Error::other(
            "not a regular file",
        )));
    }
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_private()
        .open(to)
        .map_err(BackupError::io("create", to))?;
    let mut hash = Sm3Context::new();
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        let n = read_some(&mut input, &mut buf, from)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(BackupError::io("write", to))?;
        len += n as u64;
    }
    output.sync_all().map_err(BackupError::io("fsync", to))?;
    Ok((len, hash.finish().to_string()))
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}
