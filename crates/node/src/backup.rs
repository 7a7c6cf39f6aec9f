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
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The node's key is not the key of its certificate: the manifest's signature would not
    /// verify.
    #[error(
        "the node's [key] is not the key of its certificate {subject}: a manifest it signs would not verify; nothing was written (give the certificate's key)"
    )]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// Stopped on request (the node stops, or the command was interrupted).
    #[error("{what} was interrupted (the node or the command is stopping); nothing was left")]
    Cancelled {
        /// `the backup` or `the restore`.
        what: &'static str,
    },
    /// A step of the restore failed (I/O).
    #[error("{step} {path}: {source}")]
    RestoreIo {
        /// The step.
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
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
            BackupError::KeyMismatch { .. } => &codes::NODE_KEY_CERT_MISMATCH,
            BackupError::Cancelled { .. } => &codes::NODE_BACKUP_CANCELLED,
            BackupError::RestoreIo { .. } => &codes::NODE_RESTORE_FAILED,
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
    /// Set to stop the backup (checked between buffers): it then fails with
    /// [`BackupError::Cancelled`], leaving nothing.
    pub cancel: Option<&'a AtomicBool>,
}

fn check_cancel(cancel: Option<&AtomicBool>, what: &'static str) -> Result<(), BackupError> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(BackupError::Cancelled { what });
    }
    Ok(())
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
    /// The blobs of the store that no longer hash to their names, left out of the backup
    /// (each a [`BackupError::BlobCorrupt`] sentence); the backup holds everything else.
    #[serde(default)]
    pub damaged_blobs: Vec<String>,
}

/// Makes a backup of `src` in `out` (absolute; a new directory, or an empty one that is not a
/// mount point, on an existing parent, outside the data directory and the blob store).
/// Reports its stages to `progress`. On any error nothing is left under `out` (nor of the
/// temporary sibling it writes into, nor of the checkpoint beside the store). Reads and hashes
/// every byte it copies: run it on a thread of its own ([`spawn_low_priority`]), never on the
/// consensus thread or an async worker.
pub fn create(
    src: &Source<'_>,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, BackupError> {
    let target = |problem: String| BackupError::Target {
        path: out.to_path_buf(),
        problem,
    };
    let parent = check_new_dir(out).map_err(target)?;
    let data_dir = src
        .store
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut inside = vec![("the node's data directory", data_dir.clone())];
    if let Some(b) = src.blobs {
        inside.push(("the node's blob store", b.dir().to_path_buf()));
    }
    check_outside(out, &parent, &inside).map_err(target)?;
    // The key must be the certificate's: a manifest signed by another key would verify with
    // nothing (checked again on the signature itself below).
    if src.signer.public_key() != src.certificate.public_key() {
        return Err(BackupError::KeyMismatch {
            subject: src.certificate.subject(),
        });
    }
    let staging = Staging::create(&parent, out, "partial")?;
    let root = staging.path.clone();
    let store_dir = root.join(STORE);
    // The checkpoint is made beside the store, on its filesystem (hard links: RocksDB holds
    // off deleting obsolete files only while it makes it, an instant), then linked or copied
    // into the backup and removed: a backup onto another filesystem never keeps the live
    // store from freeing the files its compactions replace for the whole copy.
    remove_stale_checkpoints(&data_dir);
    let checkpoint = Staging::create_in(&data_dir, CHECKPOINT_PREFIX)?;
    let checkpoint_store = checkpoint.path.join(STORE);
    src.store
        .checkpoint(&checkpoint_store)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    // The tip as of the checkpoint, read from the checkpoint itself (read-only: nothing is
    // written into it; RocksDB's info log goes to a scratch directory removed at once).
    let (height, tip_hash) = {
        let scratch = checkpoint.path.join(".rocksdb-info-log");
        make_private_dir(&scratch)?;
        let tip = (|| {
            let backend = RocksBackend::open_read_only(&checkpoint_store, &scratch)
                .map_err(|e| BackupError::Store(e.to_string()))?;
            let store = ChainStore::new(backend, types::Limits::default());
            store
                .tip()
                .map_err(|e| BackupError::Store(format!("{}: {e}", checkpoint_store.display())))?
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
    make_private_dir(&store_dir)?;
    for name in read_dir_sorted(&checkpoint_store)? {
        link_or_copy(
            &checkpoint_store.join(&name),
            &store_dir.join(&name),
            src.cancel,
        )?;
    }
    safefile::sync_dir(&store_dir).map_err(|e| BackupError::Store(e.to_string()))?;
    drop(checkpoint);
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
            link_or_copy(&from, &to, src.cancel)?;
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
    // Every file, hashed (and fsynced: the links are already on disk, the copies may not be).
    let mut damaged_blobs = Vec::new();
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut last_report = 0u64;
    for rel in list_files(&root)? {
        let path = root.join(&rel);
        let (len, sm3) = hash_file(&path, true, src.cancel)?;
        if let Some(name) = rel.strip_prefix("blobs/") {
            let want = name.strip_suffix(BLOB_SUFFIX).unwrap_or(name);
            if want != sm3 {
                // Never carried, and not a reason to lose the chain's backup: left out, and
                // named in the summary (the command then exits 1).
                let live = src
                    .blobs
                    .map_or_else(|| path.clone(), |b| b.dir().join(name));
                let e = BackupError::BlobCorrupt {
                    path: live,
                    actual: sm3,
                };
                tracing::warn!("backup: {e}; left out of the backup");
                damaged_blobs.push(e.to_string());
                fs::remove_file(&path).map_err(BackupError::io("remove", &path))?;
                blob_count -= 1;
                continue;
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
    // What a restore checks first: a signature that does not verify with the manifest's
    // certificate is never written (a token that signs with another key than its
    // certificate's, or a faulty one).
    crypto_sm::sm2::verify(
        &src.certificate.public_key(),
        &UserId::default(),
        &bytes,
        &signature,
    )
    .map_err(|_| BackupError::KeyMismatch {
        subject: src.certificate.subject(),
    })?;
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
        damaged_blobs,
    })
}

/// The name prefix of the checkpoint a backup makes in the data directory.
pub const CHECKPOINT_PREFIX: &str = ".backup-checkpoint-";

/// Removes the checkpoints a crashed backup left in `data_dir`: only one backup of a store
/// runs at a time (the running node makes one at a time; the CLI holds the store's lock).
fn remove_stale_checkpoints(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(CHECKPOINT_PREFIX)
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            tracing::info!(path = %e.path().display(), "removing a checkpoint an interrupted backup left");
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Refuses an output inside any of `places` (a backup written into the live store's
/// directory, or the blob store, would be part of the next one, or break it). `out` may not
/// exist yet: its parent is resolved (symbolic links followed) and its name appended.
fn check_outside(out: &Path, parent: &Path, places: &[(&str, PathBuf)]) -> Result<(), String> {
    let resolved = fs::canonicalize(parent)
        .map_err(|e| format!("its parent {}: {e}", parent.display()))?
        .join(out.file_name().unwrap_or_default());
    for (what, place) in places {
        let Ok(place) = fs::canonicalize(place) else {
            continue;
        };
        if resolved.starts_with(&place) {
            return Err(format!(
                "is inside {what} {}: a backup goes outside it (another directory or filesystem)",
                place.display()
            ));
        }
    }
    Ok(())
}

/// Whether `dir` is a mount point: another filesystem than its parent's, or listed as a mount
/// point in `/proc/self/mountinfo` (a bind mount of the same filesystem). A rename cannot
/// replace it (`EBUSY`), and a staging sibling would be on another filesystem.
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    if let (Ok(d), Ok(p)) = (fs::metadata(dir), fs::metadata(parent))
        && d.dev() != p.dev()
    {
        return true;
    }
    let Ok(resolved) = fs::canonicalize(dir) else {
        return false;
    };
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
    table.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&unescape_mountinfo(m)) == resolved)
    })
}

fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `f` on a new thread named `name` at a modest CPU priority (nice 10), so that hashing
/// gigabytes does not take the cores from consensus, admission and the API. Returns the
/// thread's handle. Its I/O is not given a lower priority: Linux derives a thread's default
/// I/O priority from its nice value only under the BFQ (and the former CFQ) scheduler, and
/// `ioprio_set` has no safe wrapper in the crates this build uses; the page cache is spared
/// instead (the backup's own copies are dropped from it once hashed).
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
            if is_mount_point(dir, parent) {
                return Err(
                    "is a mount point: the directory is renamed into place at the end, which a mount point cannot be; give a new subdirectory of the mount (e.g. DIR/node3)".into(),
                );
            }
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
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Staging::create_in(parent, &format!(".{name}.{what}-"))
    }

    /// A new directory `prefix<random hex>` in `parent`.
    fn create_in(parent: &Path, prefix: &str) -> Result<Staging, BackupError> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| BackupError::Io {
            step: "draw a temporary name",
            path: parent.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        let path = parent.join(format!("{prefix}{}", hex::encode(random)));
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

/// A hard link when both are on one filesystem (blobs and checkpoint files never change: a
/// link is a copy), a copy (fsynced) otherwise.
fn link_or_copy(from: &Path, to: &Path, cancel: Option<&AtomicBool>) -> Result<(), BackupError> {
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
                check_cancel(cancel, "the backup")?;
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
                .map_err(|e| BackupError::Store(e.to_string()))?;
            // The source (the live store's file, or a blob) stays in the page cache if it was.
            if let Ok(f) = File::open(to) {
                drop_cache(&f);
            }
            Ok(())
        }
    }
}

/// Asks the kernel to drop `file`'s pages from the page cache (`POSIX_FADV_DONTNEED`) when
/// the file is the backup's own copy (one link): hashing gigabytes should not push the live
/// node's pages out. A hard link shares its pages with the live store's file: those are left.
fn drop_cache(file: &File) {
    if file.metadata().is_ok_and(|m| m.nlink() == 1) {
        let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
    }
}

fn read_some(input: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<usize, BackupError> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BackupError::io("read", path)(e)),
        }
    }
}

/// Length and SM3 (hex) of a file; with `sync`, also fsyncs it.
fn hash_file(
    path: &Path,
    sync: bool,
    cancel: Option<&AtomicBool>,
) -> Result<(u64, String), BackupError> {
    let mut input = File::open(path).map_err(BackupError::io("open", path))?;
    let mut hash = Sm3Context::new();
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        check_cancel(cancel, "the backup")?;
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
    drop_cache(&input);
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

/// Reads `dir`'s manifest and checks, in this order, its signature (with the key of the
/// certificate it names), that its signer is one of `trusted` (compared byte for byte) and a
/// node-sign certificate, then its format, version and store version: a manifest altered in
/// any field is refused as not verifying, naming `manifest.sig`, before anything in it is
/// believed. `dir` may be a symbolic link (a `latest` link to the newest backup): it is
/// resolved once; inside the backup no link is followed. The files are checked by
/// [`stage_restore`] as it copies them.
pub fn check_manifest(dir: &Path, trusted: &[Certificate]) -> Result<Checked, BackupError> {
    let format = |path: PathBuf, problem: &str| BackupError::Format {
        path,
        problem: problem.into(),
    };
    let dir = match fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) => return Err(format(dir.to_path_buf(), &e.to_string())),
    };
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format(dir.clone(), "not a directory")),
        Err(e) => return Err(format(dir.clone(), &e.to_string())),
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
    // Only the signer is read before the signature is checked.
    #[derive(Deserialize)]
    struct Named {
        node_certificate: String,
    }
    let named: Named = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::not_verified(MANIFEST, format!("not a backup manifest: {e}")))?;
    let signer = Certificate::from_pem(named.node_certificate.as_bytes())
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
    // Signed by a trusted node: what it says is now read (a format or version this build
    // does not know is bad input, not damage).
    let loose: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::not_verified(MANIFEST, format!("not a backup manifest: {e}")))?;
    let (f, v) = (&loose["format"], &loose["version"]);
    if f.as_str() != Some(FORMAT) || v.as_u64() != Some(u64::from(VERSION)) {
        return Err(format(
            manifest_path,
            &format!("format {f} version {v}; this build restores {FORMAT} version {VERSION}"),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        format(
            manifest_path.clone(),
            &format!("not a {FORMAT} version {VERSION} manifest: {e}"),
        )
    })?;
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
        dir,
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
            staging.commit(&to).map_err(restore_error)?;
        }
        data.commit(&target.data_dir).map_err(restore_error)
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
///
/// `cancel`, checked between buffers, stops it: the staging directories are removed. An I/O
/// failure is [`BackupError::RestoreIo`] (`NODE_RESTORE_FAILED`).
pub fn stage_restore(
    checked: &Checked,
    target: &RestoreTarget,
    progress: &mut dyn FnMut(Progress),
    cancel: Option<&AtomicBool>,
) -> Result<Staged, BackupError> {
    stage_restore_inner(checked, target, progress, cancel).map_err(restore_error)
}

/// A backup's I/O error, said as the restore's.
fn restore_error(e: BackupError) -> BackupError {
    match e {
        BackupError::Io { step, path, source } => BackupError::RestoreIo { step, path, source },
        BackupError::Store(message) => BackupError::RestoreIo {
            step: "write",
            path: PathBuf::new(),
            source: io::Error::other(message),
        },
        e => e,
    }
}

fn stage_restore_inner(
    checked: &Checked,
    target: &RestoreTarget,
    progress: &mut dyn FnMut(Progress),
    cancel: Option<&AtomicBool>,
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
        } else if listed.contains_key(&top) {
            return Err(BackupError::not_verified(
                top,
                "not a regular file (a FIFO, device, link or directory has no place in a backup)",
            ));
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
    // A blob directory anywhere under the data directory is staged at its place inside the
    // data directory's staging (`blobs`, `exchange/blobs`, …).
    let blobs_inside = target
        .blobs_dir
        .as_ref()
        .and_then(|b| b.strip_prefix(&target.data_dir).ok())
        .filter(|rel| {
            rel.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .map(Path::to_path_buf);
    let data = Staging::create(&data_parent, &target.data_dir, "restore")?;
    let mut blobs_staging = None;
    let blobs_root = match &target.blobs_dir {
        None => None,
        Some(_) if blobs_inside.is_some() => {
            let mut dest = data.path.clone();
            for c in blobs_inside.iter().flat_map(|r| r.components()) {
                dest.push(c);
                if !dest.exists() {
                    make_private_dir(&dest)?;
                }
            }
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
        let (len, sm3) = copy_hashing(&checked.dir.join(rel), &to, rel, entry.len, cancel)?;
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
/// fsynced), returning the length and SM3 of what was copied. A file whose length is not the
/// manifest's `len` for it (`rel`) is refused before a byte is written, and no more than
/// `len + 1` bytes are ever read (a file that grows meanwhile is caught by its length).
fn copy_hashing(
    from: &Path,
    to: &Path,
    rel: &str,
    len_listed: u64,
    cancel: Option<&AtomicBool>,
) -> Result<(u64, String), BackupError> {
    let input = File::open(from).map_err(BackupError::io("open", from))?;
    let meta = input.metadata().map_err(BackupError::io("inspect", from))?;
    if !meta.is_file() || meta.nlink() == 0 {
        return Err(BackupError::not_verified(rel, "not a regular file"));
    }
    if meta.len() != len_listed {
        return Err(BackupError::not_verified(
            rel,
            format!("{} bytes; the manifest says {len_listed} bytes", meta.len()),
        ));
    }
    let mut input = input.take(len_listed.saturating_add(1));
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
        check_cancel(cancel, "the restore")?;
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
    drop_cache(&output);
    drop_cache(input.get_ref());
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

#[cfg(test)]
mod tests {
    //! The backup and restore of a store made here (one validator, block 0), without a node
    //! process (tests/backup.rs runs them through the CLI and the admin socket).
    use super::*;
    use std::sync::Arc;

    use crypto_sm::rng::SeededRandom;
    use crypto_sm::{SoftSigner, SoftwareProvider};
    use pki::{IssueRequest, Role, Serial, UnixTime, Validity};

    struct Fx {
        dir: tempfile::TempDir,
        store: RocksBackend,
        key: SoftSigner,
        other: SoftSigner,
        cert: Certificate,
    }

    /// A data directory `data/` (genesis file and store at block 0) of a one-validator chain.
    fn fixture() -> Fx {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(18)));
        let validity = Validity {
            not_before: UnixTime(1_577_836_800),
            not_after: UnixTime(4_102_444_800),
        };
        let root_key = p.generate().unwrap();
        let root = pki::issue_root(
            "Test Root",
            "Test Bureau",
            Serial::from_hex("01").unwrap(),
            validity,
            &root_key,
        )
        .unwrap();
        let now = 1_800_000_000;
        let crl = pki::issue_crl(
            &root,
            &root_key,
            1,
            UnixTime(now - 60),
            UnixTime(now + 86_400),
            &[],
        )
        .unwrap();
        let key = p.generate().unwrap();
        let cert = pki::issue(
            &root,
            &root_key,
            &IssueRequest {
                role: Role::NodeSign,
                common_name: "node0",
                organisation: "Test Bureau",
                public_key: &crypto::Signer::public_key(&key),
                serial: Serial::from_bytes(&[0x10]).unwrap(),
                validity,
            },
        )
        .unwrap();
        let json_str = |s: String| format!("\"{}\"", s.replace('\n', "\\n"));
        let json = format!(
            r#"{{"format":2,"chain_id":"test-chain","test_chain":true,"timestamp_ms":{},"params":{{}},"organisations":[{{"name":"Test Bureau","ca_cert":{},"crl":{}}}],"validators":[{{"name":"node0","cert":{}}}]}}"#,
            now * 1000,
            json_str(root.to_pem()),
            json_str(crl.to_pem()),
            json_str(cert.to_pem()),
        );
        let genesis = execution::Genesis::from_json(json.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::local::init(&dir.path().join("data"), &genesis).unwrap();
        let store = RocksBackend::open(&dir.path().join("data/db"), false).unwrap();
        Fx {
            dir,
            store,
            key,
            other: p.generate().unwrap(),
            cert,
        }
    }

    fn source<'a>(fx: &'a Fx, genesis: &'a Path, cancel: Option<&'a AtomicBool>) -> Source<'a> {
        Source {
            store: &fx.store,
            genesis_file: genesis,
            blobs: None,
            signer: &fx.key,
            certificate: &fx.cert,
            now_secs: 1_800_000_000,
            cancel,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_backup_verifies_and_leaves_no_checkpoint_beside_the_store() {
        let fx = fixture();
        let genesis = fx.dir.path().join("data/genesis.json");
        let out = fx.dir.path().join("b");
        let summary = create(&source(&fx, &genesis, None), &out, &mut |_| {}).unwrap();
        assert_eq!(summary.height, 0);
        assert_eq!(entries(&fx.dir.path().join("data")), ["db", "genesis.json"]);
        let checked = check_manifest(&out, std::slice::from_ref(&fx.cert)).unwrap();
        assert_eq!(checked.manifest.chain_id, "test-chain");
    }

    /// Review r2 L7: a cancelled backup stops and leaves nothing: not the output, not its
    /// temporary sibling, not the checkpoint beside the store.
    #[test]
    fn a_cancelled_backup_leaves_nothing() {
        let fx = fixture();
        let genesis = fx.dir.path().join("data/genesis.json");
        let cancel = AtomicBool::new(true);
        let out = fx.dir.path().join("b");
        let err = create(&source(&fx, &genesis, Some(&cancel)), &out, &mut |_| {}).unwrap_err();
        assert!(matches!(err, BackupError::Cancelled { .. }), "{err}");
        assert_eq!(err.code().name, "NODE_BACKUP_CANCELLED");
        assert_eq!(entries(fx.dir.path()), ["data"]);
        assert_eq!(entries(&fx.dir.path().join("data")), ["db", "genesis.json"]);
    }

    /// Review r2 M3: a key that is not the certificate's is refused before anything is
    /// written (a manifest it signed would never verify).
    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_before_anything_is_written() {
        let fx = fixture();
        let genesis = fx.dir.path().join("data/genesis.json");
        let mut src = source(&fx, &genesis, None);
        src.signer = &fx.other;
        let err = create(&src, &fx.dir.path().join("b"), &mut |_| {}).unwrap_err();
        assert_eq!(err.code().name, "NODE_KEY_CERT_MISMATCH", "{err}");
        assert_eq!(entries(fx.dir.path()), ["data"]);
    }

    /// Review r2 L4: never into the data directory.
    #[test]
    fn a_backup_into_the_data_directory_is_refused() {
        let fx = fixture();
        let genesis = fx.dir.path().join("data/genesis.json");
        let out = fx.dir.path().join("data/db/inner");
        let err = create(&source(&fx, &genesis, None), &out, &mut |_| {}).unwrap_err();
        assert_eq!(err.code().name, "NODE_BACKUP_TARGET", "{err}");
        assert!(!out.exists());
    }

    /// Review r2 L1 and L7: a tampered version is a signature that does not verify; a
    /// cancelled restore leaves no staging directory.
    #[test]
    fn the_signature_is_checked_first_and_a_cancelled_restore_leaves_nothing() {
        let fx = fixture();
        let genesis = fx.dir.path().join("data/genesis.json");
        let out = fx.dir.path().join("b");
        create(&source(&fx, &genesis, None), &out, &mut |_| {}).unwrap();
        let m = fs::read_to_string(out.join(MANIFEST)).unwrap();
        let tampered = fx.dir.path().join("t");
        fs::create_dir(&tampered).unwrap();
        for e in fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                fs::copy(e.path(), tampered.join(e.file_name())).unwrap();
            }
        }
        fs::write(
            tampered.join(MANIFEST),
            m.replace("\"version\": 1,", "\"version\": 2,"),
        )
        .unwrap();
        match check_manifest(&tampered, std::slice::from_ref(&fx.cert)) {
            Err(BackupError::NotVerified { file, .. }) => assert_eq!(file, SIGNATURE),
            other => panic!("{other:?}"),
        }
        let checked = check_manifest(&out, std::slice::from_ref(&fx.cert)).unwrap();
        let target = RestoreTarget {
            data_dir: fx.dir.path().join("restored"),
            blobs_dir: None,
        };
        let cancel = AtomicBool::new(true);
        let err = stage_restore(&checked, &target, &mut |_| {}, Some(&cancel)).unwrap_err();
        assert_eq!(err.code().name, "NODE_BACKUP_CANCELLED", "{err}");
        assert_eq!(entries(fx.dir.path()), ["b", "data", "t"]);
    }

    /// Review r2 M2: a mount point is recognised (another filesystem, or listed in
    /// mountinfo with its escapes undone).
    #[test]
    fn mount_points_are_recognised() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b\134c"), r"/mnt/a b\c");
        assert_eq!(unescape_mountinfo(r"/x\04"), r"/x\04");
        assert!(is_mount_point(Path::new("/proc"), Path::new("/")));
        let d = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(d.path(), d.path().parent().unwrap()));
        fs::create_dir(d.path().join(".backup-checkpoint-00")).unwrap();
        fs::create_dir(d.path().join("kept")).unwrap();
        remove_stale_checkpoints(d.path());
        assert_eq!(entries(d.path()), ["kept"]);
    }
}
