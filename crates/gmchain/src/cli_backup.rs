//! `gmchain node backup` and `gmchain node restore` (issue 18 item 1; docs/ops/backup.md).
//!
//! A backup of a running node is made by the node (it holds the store's lock) through its admin
//! socket; with no node running, this process opens the store and the blob store itself and
//! makes the same backup. A restore checks the manifest's signature against a certificate it
//! was told to trust, copies and checks every file into a staging directory, runs the full
//! store verification of `gmchain node verify-store` on the staged copy, and only then
//! renames it into place.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use node::NodeConfig;
use node::admin::{Reply, Request};
use node::backup::{self, BackupError, Progress, RestoreTarget};
use storage::ChainStore;
use storage_rocksdb::{RocksBackend, RocksError};

use crate::io::read_cert;
use crate::{CmdResult, Failure};

fn absolute(what: &str, p: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(p).map_err(|e| Failure::BadInput(format!("{what} {}: {e}", p.display())))
}

fn failure(e: BackupError) -> Failure {
    Failure::coded(&e, format!("{}: {e}", e.code().name))
}

fn show(p: &Progress) {
    eprintln!("backup: {}", p.detail);
}

/// A flag SIGINT and SIGTERM set (instead of ending the process), so that a backup or restore
/// in this process stops between two buffers and removes what it staged.
fn interrupted() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                let _ = ready_tx.send(());
                return;
            };
            rt.block_on(async move {
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = ready_tx.send(());
                    return;
                };
                let _ = ready_tx.send(());
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!("interrupted: stopping and removing what was staged");
                set.store(true, Ordering::Relaxed);
            });
        });
    if spawned.is_ok() {
        let _ = ready_rx.recv();
    }
    flag
}

/// A top-level symbolic link (a `latest` link, a data directory linked elsewhere) resolved
/// once; anything else as it is.
fn resolve_link(p: &Path) -> PathBuf {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(p).unwrap_or(p.to_path_buf()),
        _ => p.to_path_buf(),
    }
}

/// `gmchain node backup --config FILE --out DIR`.
pub(crate) fn backup(config: &NodeConfig, out: &Path) -> CmdResult {
    let out = absolute("--out", out)?;
    let socket = config.data_dir.join(node::admin::SOCKET);
    let summary = match UnixStream::connect(&socket) {
        Ok(stream) => {
            eprintln!(
                "backup: the node runs; asking it through {}",
                socket.display()
            );
            online(stream, &out)?
        }
        Err(connect) => match RocksBackend::open(&config.db_path(), false) {
            Err(RocksError::Locked { path }) => {
                return Err(Failure::Unreachable(format!(
                    "{}: NODE_ADMIN_UNREACHABLE: a node holds the store {} but its admin socket {} does not answer ({connect}); run the command as the node's user, on a node of this release",
                    config.file.display(),
                    path.display(),
                    socket.display()
                )));
            }
            Err(e) => return Err(Failure::BadInput(e.to_string())),
            Ok(store) => {
                eprintln!(
                    "backup: no node runs on {}; backing up in this process",
                    config.data_dir.display()
                );
                offline(config, store, &out)?
            }
        },
    };
    println!(
        "backup {}: height {} tip {}, {} files ({} bytes, {} blobs), manifest sm3 {}",
        summary.out.display(),
        summary.height,
        summary.tip_hash,
        summary.files,
        summary.bytes,
        summary.blobs,
        summary.manifest_sm3
    );
    if let Some(first) = summary.damaged_blobs.first() {
        return Err(Failure::coded(
            &BackupError::BlobCorrupt {
                path: PathBuf::new(),
                actual: String::new(),
            },
            format!(
                "NODE_BACKUP_BLOB_CORRUPT: {first}; {} damaged blob(s) were left out of the backup {}, which holds everything else and verifies ({}); restore them from an earlier backup (or have them uploaded again)",
                summary.damaged_blobs.len(),
                summary.out.display(),
                summary.damaged_blobs.join("; ")
            ),
        ));
    }
    Ok(())
}

/// The backup through the running node's admin socket: progress on stderr, the summary or
/// the node's coded error at the end.
fn online(mut stream: UnixStream, out: &Path) -> Result<backup::Summary, Failure> {
    let unreachable = |e: std::io::Error| {
        Failure::Unreachable(format!(
            "NODE_ADMIN_UNREACHABLE: the admin socket: {e} (the node may have stopped; look in its log)"
        ))
    };
    let mut line = serde_json::to_vec(&Request::Backup {
        out: out.to_path_buf(),
    })
    .map_err(|e| Failure::BadInput(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(unreachable)?;
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let line = line.map_err(unreachable)?;
        let reply: Reply = serde_json::from_str(&line).map_err(|e| {
            Failure::Unreachable(format!("the node's admin socket answered {line:?}: {e}"))
        })?;
        match reply {
            Reply::Progress(p) => show(&p),
            Reply::Done(v) => {
                return serde_json::from_value(v)
                    .map_err(|e| Failure::Unreachable(format!("the node's backup summary: {e}")));
            }
            Reply::Error { code, message } => {
                let class = codes::ALL
                    .iter()
                    .find(|c| c.name == code)
                    .map_or(codes::Class::BadInput, |c| c.class);
                return Err(Failure::of_class(class, format!("{code}: {message}")));
            }
            _ => {}
        }
    }
    Err(Failure::Unreachable(
        "NODE_ADMIN_UNREACHABLE: the node closed the admin socket before the backup ended (look in its log)".into(),
    ))
}

/// The backup of a stopped node, in this process: the node's key loaded as `node start` does,
/// its blob store opened (and locked) if it has `[exchange]`.
fn offline(
    config: &NodeConfig,
    store: RocksBackend,
    out: &Path,
) -> Result<backup::Summary, Failure> {
    let node::Validator {
        signer,
        certificate,
    } = crate::cli_node::validator(config)?;
    let blobs = match &config.exchange {
        None => None,
        Some(x) => Some(
            blobstore::BlobStore::open_with(
                &x.blobs,
                blobstore::Config {
                    max_blob_len: x.max_blob_bytes,
                },
            )
            .map_err(|e| match e {
                blobstore::BlobError::Locked { .. } => Failure::Unreachable(format!(
                    "exchange.blobs: {e} (a node runs on it? stop it, or back it up while it runs)"
                )),
                e => Failure::BadInput(format!("exchange.blobs: {e}")),
            })?,
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cancel = interrupted();
    let source = backup::Source {
        store: &store,
        genesis_file: &config.genesis_path(),
        blobs: blobs.as_ref(),
        signer: signer.as_ref(),
        certificate: &certificate,
        now_secs: now,
        cancel: Some(&cancel),
    };
    backup::create(&source, out, &mut |p| show(&p)).map_err(failure)
}

/// `gmchain node restore --from DIR --config FILE [--signer-cert FILE]`.
pub(crate) fn restore(config: &NodeConfig, from: &Path, signer_cert: Option<&Path>) -> CmdResult {
    // Whose signature a restore accepts: this node's own certificates, and the one the
    // operator names for another node's backup (docs/ops/backup.md, "Whose backup").
    let mut trusted = vec![read_cert("key.certificate", &config.key.certificate)?];
    if let Some(k) = &config.next_key {
        trusted.push(read_cert("next_key.certificate", &k.certificate)?);
    }
    let mut named = None;
    if let Some(f) = signer_cert {
        let cert = read_cert("--signer-cert", f)?;
        if cert.role() != Some(pki::Role::NodeSign) {
            return Err(Failure::BadInput(format!(
                "--signer-cert {}: not a node-sign certificate (a backup is signed by a node's [key])",
                f.display()
            )));
        }
        named = Some((f.to_path_buf(), cert.clone()));
        trusted.push(cert);
    }
    let from = absolute("--from", from)?;
    let checked = backup::check_manifest(&from, &trusted).map_err(failure)?;
    let m = &checked.manifest;
    // A certificate named on the command line signed when it was valid.
    if let Some((f, cert)) = &named
        && checked.signer.der() == cert.der()
    {
        let v = cert.validity();
        if m.created < v.not_before.0 || m.created > v.not_after.0 {
            return Err(Failure::NotVerified(format!(
                "NODE_BACKUP_SIGNER_UNTRUSTED: --signer-cert {}: valid from {} to {} (seconds since the epoch), but the backup says it was made at {}",
                f.display(),
                v.not_before.0,
                v.not_after.0,
                m.created
            )));
        }
    }
    // The configuration's chain, when it names one, is the backup's.
    if let Some(chain) = &config.chain
        && chain.chain_id != m.chain_id
    {
        return Err(failure(BackupError::Format {
            path: checked.dir.join(backup::MANIFEST),
            problem: format!(
                "a backup of chain {}; the configuration's [chain] is {} (another chain's backup, or the wrong configuration)",
                m.chain_id, chain.chain_id
            ),
        }));
    }
    eprintln!(
        "restore: manifest of chain {} at height {} signed by {}: signature verified",
        m.chain_id,
        m.height,
        checked.signer.subject()
    );
    // A data directory that is a symbolic link is restored where it points; a blob directory
    // under it follows it there.
    let data_dir = absolute("data_dir", &config.data_dir)?;
    let resolved = resolve_link(&data_dir);
    let target = RestoreTarget {
        data_dir: resolved.clone(),
        blobs_dir: match &config.exchange {
            Some(x) => {
                let b = absolute("exchange.blobs", &x.blobs)?;
                Some(match b.strip_prefix(&data_dir) {
                    Ok(rel) => resolved.join(rel),
                    Err(_) => resolve_link(&b),
                })
            }
            None => None,
        },
    };
    let cancel = interrupted();
    let staged = backup::stage_restore(
        &checked,
        &target,
        &mut |p| eprintln!("restore: {}", p.detail),
        Some(&cancel),
    )
    .map_err(failure)?;
    // The full store verification on the staged copy, as `gmchain node verify-store` runs it:
    // the node can only ever start on a verified store.
    let mut staged_config = config.clone();
    staged_config.data_dir = staged.data_dir().to_path_buf();
    let verified = crate::cli_node::verify_store_report(&staged_config).map_err(|f| {
        Failure::NotVerified(format!(
            "NODE_BACKUP_NOT_VERIFIED: store/: the store verification failed: {}",
            f.message()
        ))
    })?;
    eprintln!("restore: {verified}");
    {
        let backend = RocksBackend::open(&staged_config.db_path(), false)
            .map_err(|e| Failure::NotVerified(format!("store/: {e}")))?;
        let store = ChainStore::new(backend, types::Limits::default());
        let tip = store
            .tip()
            .map_err(|e| Failure::NotVerified(format!("store/: {e}")))?
            .ok_or_else(|| Failure::NotVerified("store/: holds no block".into()))?;
        if tip.height.0 != m.height || tip.hash.to_string() != m.tip_hash {
            return Err(Failure::NotVerified(format!(
                "NODE_BACKUP_NOT_VERIFIED: store/: its tip is height {} {}, the manifest says height {} {}",
                tip.height, tip.hash, m.height, m.tip_hash
            )));
        }
        // The backup's consensus WAL is not what this node signed since (and may be another
        // validator's): removed, and the restore marker set, so that the node signs nothing
        // until it has passed the height the network reached (node::restored).
        node::restored::mark(store.backend()).map_err(|e| {
            failure(BackupError::RestoreIo {
                step: "mark as restored",
                path: staged_config.db_path(),
                source: std::io::Error::other(e.to_string()),
            })
        })?;
    }
    let (files, bytes, blobs) = (staged.files, staged.bytes, staged.blobs_copied);
    if cancel.load(Ordering::Relaxed) {
        // Dropped: the staging directories are removed.
        return Err(failure(BackupError::Cancelled {
            what: "the restore",
        }));
    }
    staged.commit().map_err(failure)?;
    println!(
        "restored {} into {}: chain {} height {} tip {}, {files} files ({bytes} bytes, {blobs} blobs), every file's SM3 and the store verified",
        from.display(),
        target.data_dir.display(),
        m.chain_id,
        m.height,
        m.tip_hash
    );
    Ok(())
}
