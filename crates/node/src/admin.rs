//! The running node's control channel (issue 18): a Unix socket `<data dir>/admin.sock`, mode
//! 0600, answering only processes of the node's own user (`SO_PEERCRED`). A client sends one
//! JSON request line; the node answers with JSON lines: `{"progress":{…}}` while it works, then
//! one final `{"done":{…}}` or `{"error":{"code":"NODE_…","message":"…"}}` (docs/ops/backup.md,
//! "The admin socket").
//!
//! The one operation today is `{"op":"backup","out":"/abs/dir"}`: the node holds its store's
//! lock, so only the node can checkpoint it. An operation is a [`Request`] variant and a
//! handler; the channel itself knows nothing of backups.
//!
//! What it refuses to do: answer another user (a connection whose peer uid is not the node's
//! is told `NODE_ADMIN_REFUSED` and closed), read a request line longer than
//! [`MAX_REQUEST`] (the rest is read and dropped, so the client sees the answer), wait longer
//! than [`REQUEST_TIMEOUT`] for it, hold more than [`MAX_CONNECTIONS`] connections, run two
//! backups at once, do an operation's work on an async worker, or stop with a backup running
//! (it is cancelled, its thread joined, its temporary directory removed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::LocalNode;
use crate::backup;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "admin.sock";
/// The longest request line read.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long a connection may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// The most bytes read and dropped after a refused request line, so that closing does not
/// reset the connection before the client read the answer.
const DRAIN_MAX: u64 = 1 << 20;

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Back the node up into `out` (absolute; new or empty): `backup::create`.
    Backup {
        /// The backup's directory.
        out: PathBuf,
    },
}

/// One answer line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reply {
    /// How far the operation is.
    Progress(backup::Progress),
    /// The operation's result (the last line).
    Done(serde_json::Value),
    /// Why the operation failed (the last line).
    Error {
        /// The registry code's name.
        code: String,
        /// One sentence.
        message: String,
    },
}

impl Reply {
    fn error(code: &codes::Code, message: impl Into<String>) -> Reply {
        Reply::Error {
            code: code.name.into(),
            message: message.into(),
        }
    }
}

/// What the admin operations work on.
#[derive(Debug)]
pub struct Admin {
    core: Arc<LocalNode>,
    genesis_file: PathBuf,
    blobs: Option<blobstore::BlobStore>,
    backing_up: AtomicBool,
    /// Set when the node stops: a running backup stops between two buffers.
    cancel: AtomicBool,
    /// The backup thread, joined when the node stops.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    connections: AtomicUsize,
}

impl Admin {
    /// The operations on `core`, whose genesis file is `genesis_file`, with the custodian's
    /// blob store if it has one.
    pub fn new(
        core: Arc<LocalNode>,
        genesis_file: PathBuf,
        blobs: Option<blobstore::BlobStore>,
    ) -> Admin {
        Admin {
            core,
            genesis_file,
            blobs,
            backing_up: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            thread: Mutex::new(None),
            connections: AtomicUsize::new(0),
        }
    }

    /// Cancels a running backup and waits for its thread (it removes its temporary
    /// directory before it ends).
    fn stop_backup(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Counts a connection while it lives.
struct ConnectionSlot(Arc<Admin>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// This process's effective user id (what the admin socket admits, what an operator's command
/// records).
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Binds `<data_dir>/admin.sock` with mode 0600. A socket file left there is removed first:
/// the caller holds the store's lock, so no other node serves this data directory. Anything
/// else under that name is refused.
pub fn bind(data_dir: &Path) -> Result<(UnixListener, PathBuf), crate::NodeError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = data_dir.join(SOCKET);
    let err = |e: std::io::Error| crate::NodeError::Server(format!("{}: {e}", path.display()));
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path).map_err(err)?,
        Ok(_) => {
            return Err(crate::NodeError::Server(format!(
                "{}: exists and is not a socket; move it away",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(&path).map_err(err)?;
    // Connections made before the mode is set are still judged by their peer's uid.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok((listener, path))
}

/// Serves `listener` until `stop` turns true, then removes the socket file `path`, cancels a
/// running backup and waits for its thread.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    admin: Arc<Admin>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let uid = rustix::process::geteuid().as_raw();
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.changed() => break,
        };
        match conn {
            Ok((stream, _)) => {
                if admin.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    admin.connections.fetch_sub(1, Ordering::AcqRel);
                    tracing::warn!(
                        "admin socket: {MAX_CONNECTIONS} connections already; one more closed"
                    );
                    continue;
                }
                let slot = ConnectionSlot(admin.clone());
                let admin = admin.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = connection(stream, uid, admin).await {
                        tracing::info!("admin connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("admin socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    let _ = tokio::task::spawn_blocking(move || admin.stop_backup()).await;
}

/// After a refusal: what the client still sends is read and dropped (bounded in bytes and
/// time), so that closing does not reset the connection before the client read the answer.
async fn drain(stream: &mut UnixStream) {
    let _ = stream.shutdown().await;
    let mut rest = stream.take(DRAIN_MAX);
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
}

async fn send(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn connection(mut stream: UnixStream, uid: u32, admin: Arc<Admin>) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    if peer.uid() != uid {
        tracing::warn!(
            peer_uid = peer.uid(),
            pid = ?peer.pid(),
            "admin socket: a process of another user was refused"
        );
        admin.core.audit().record(
            "admin-refused",
            auditlog::Outcome::Refused,
            &format!(
                "NODE_ADMIN_REFUSED: a process of uid {} (pid {:?}) connected to the admin socket",
                peer.uid(),
                peer.pid()
            ),
        );
        let reply = Reply::error(
            &codes::NODE_ADMIN_REFUSED,
            format!(
                "the admin socket answers only uid {uid}, the node's user; this process runs as uid {}",
                peer.uid()
            ),
        );
        send(&mut stream, &reply).await?;
        drain(&mut stream).await;
        return Ok(());
    }
    let mut line = Vec::new();
    let read = {
        let mut reader = BufReader::new((&mut stream).take(MAX_REQUEST as u64 + 1));
        tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await
    };
    match read {
        Ok(r) => {
            r?;
        }
        Err(_) => {
            let reply = Reply::error(
                &codes::NODE_ADMIN_REQUEST,
                format!("no request line within {} s", REQUEST_TIMEOUT.as_secs()),
            );
            return send(&mut stream, &reply).await;
        }
    }
    if line.len() > MAX_REQUEST {
        let reply = Reply::error(
            &codes::NODE_ADMIN_REQUEST,
            format!("a request line is at most {MAX_REQUEST} bytes"),
        );
        send(&mut stream, &reply).await?;
        drain(&mut stream).await;
        return Ok(());
    }
    let request: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let reply = Reply::error(
                &codes::NODE_ADMIN_REQUEST,
                format!(
                    "not a request: {e} (expected one JSON line such as {{\"op\":\"backup\",\"out\":\"/abs/dir\"}})"
                ),
            );
            return send(&mut stream, &reply).await;
        }
    };
    match request {
        Request::Backup { out } => backup_op(&mut stream, admin, out).await,
    }
}

/// Clears the one-backup flag when the backup thread ends, however it ends.
struct BackupSlot(Arc<Admin>);

impl Drop for BackupSlot {
    fn drop(&mut self) {
        self.0.backing_up.store(false, Ordering::Release);
    }
}

/// While the node is low on space (`crate::disk`), a backup written to one of the filesystems
/// it watches would take what is left of them: why it is refused, if so. `out` may not exist
/// yet: its nearest existing ancestor tells its filesystem.
fn low_on_the_same_filesystem(core: &LocalNode, out: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let d = core.disk().filter(|d| d.is_low())?;
    let dev = out
        .ancestors()
        .find_map(|p| std::fs::metadata(p).ok())?
        .dev();
    let w = d.watched().iter().find(|w| w.dev == dev)?;
    Some(format!(
        "a backup to {} would be written on the filesystem of {} ({}) while the node is low on space there: {}; back up to another filesystem, or free space first",
        out.display(),
        w.path.display(),
        w.what,
        d.reason()
    ))
}

async fn backup_op(
    stream: &mut UnixStream,
    admin: Arc<Admin>,
    out: PathBuf,
) -> std::io::Result<()> {
    if let Some(why) = low_on_the_same_filesystem(&admin.core, &out) {
        return send(stream, &Reply::error(&codes::NODE_STORAGE_LOW, why)).await;
    }
    if admin.backing_up.swap(true, Ordering::AcqRel) {
        let e = backup::BackupError::Busy;
        return send(stream, &Reply::error(e.code(), e.to_string())).await;
    }
    let slot = BackupSlot(admin.clone());
    admin.cancel.store(false, Ordering::Relaxed);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let progress_tx = tx.clone();
    let spawned = backup::spawn_low_priority("backup", move || {
        let admin = slot.0.clone();
        let _slot = slot;
        let core = &admin.core;
        let signer = core.validator_signer();
        let source = backup::Source {
            store: core.store().backend(),
            genesis_file: &admin.genesis_file,
            blobs: admin.blobs.as_ref(),
            signer: signer.as_ref(),
            certificate: core.validator(),
            now_secs: core.now().0,
            cancel: Some(&admin.cancel),
        };
        let result = backup::create(&source, &out, &mut |p| {
            let _ = progress_tx.send(Reply::Progress(p));
        });
        let reply = match result {
            Ok(summary) => {
                tracing::info!(
                    out = %summary.out.display(),
                    height = summary.height,
                    files = summary.files,
                    bytes = summary.bytes,
                    "backup made"
                );
                core.audit().record(
                    "backup",
                    auditlog::Outcome::Done,
                    &format!(
                        "backup of height {} (tip {}) to {}: {} files, {} bytes, manifest sm3 {}",
                        summary.height,
                        summary.tip_hash,
                        summary.out.display(),
                        summary.files,
                        summary.bytes,
                        summary.manifest_sm3
                    ),
                );
                for d in &summary.damaged_blobs {
                    core.audit().record(
                        "backup",
                        auditlog::Outcome::Refused,
                        &format!("NODE_BACKUP_BLOB_CORRUPT: {d}; left out of the backup"),
                    );
                }
                serde_json::to_value(&summary)
                    .map(Reply::Done)
                    .unwrap_or_else(|e| Reply::error(&codes::NODE_BACKUP_FAILED, e.to_string()))
            }
            Err(e) => {
                tracing::warn!(out = %out.display(), "backup failed: {e}");
                core.audit().record(
                    "backup",
                    auditlog::Outcome::Refused,
                    &format!("{}: backup to {}: {e}", e.code().name, out.display()),
                );
                Reply::error(e.code(), e.to_string())
            }
        };
        let _ = tx.send(reply);
    });
    match spawned {
        Ok(handle) => {
            if let Ok(mut t) = admin.thread.lock() {
                // The previous backup's thread has ended (one backup at a time).
                *t = Some(handle);
            }
        }
        Err(e) => {
            // The closure (and the slot in it) is dropped with the failed spawn.
            let reply = Reply::error(
                &codes::NODE_BACKUP_FAILED,
                format!("cannot start the backup thread: {e}"),
            );
            return send(stream, &reply).await;
        }
    }
    // Until the thread's last line; a client that goes away does not stop the backup (it
    // ends, and is logged, as if it had stayed).
    while let Some(reply) = rx.recv().await {
        let last = !matches!(reply, Reply::Progress(_));
        send(stream, &reply).await?;
        if last {
            break;
        }
    }
    Ok(())
}
