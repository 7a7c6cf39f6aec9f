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
    let source = backup::Source {
        store: &store,
        genesis_file: &config.genesis_path(),
        blobs: blobs.as_ref(),
        signer: signer.as_ref(),
        certificate: &certificate,
        now_secs: now,
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
    if let Some(f) = signer_cert {
        let cert = read_cert("--signer-cert", f)?;
        if cert.role() != Some(pki::Role::NodeSign) {
            return Err(Failure::BadInput(format!(
                "--signer-cert {}: not a node-sign certificate (a backup is signed by a node's [key])",
                f.display()
            )));
        }
        trusted.push(cert);
    }
    let from = absolute("--from", from)?;
    let checked = backup::check_manifest(&from, &trusted).map_err(failure)?;
    let m = &checked.manifest;
    eprintln!(
        "restore: manifest of chain {} at height {} signed by {}: signature verified",
        m.chain_id,
        m.height,
        checked.signer.subject()
    );
    let target = RestoreTarget {
        data_dir: absolute("data_dir", &config.data_dir)?,
        blobs_dir: match &config.exchange {
            Some(x) => Some(absolute("exchange.blobs", &x.blobs)?),
            None => None,
        },
    };
    let staged = backup::stage_restore(&checked, &target, &mut |p| {
        eprintln!("restore: {}", p.detail)
    })
    .map_err(failure)?;
    // The full store verification on the staged copy, as `gmchain node verify-store` runs it:
    // the node can only ever start on a verified store.
    let mut staged_config = config.clone();
    staged_config.data_dir = staged.data_dir().to_path_buf();
    crate::cli_node::verify_store(&staged_config).map_err(|f| {
        Failure::NotVerified(format!(
            "NODE_BACKUP_NOT_VERIFIED: store/: the store verification failed: {}",
            f.message()
        ))
    })?;
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
            Failure::coded(
                &BackupError::Store(e.to_string()),
                format!("NODE_BACKUP_FAILED: marking the staged store as restored: {e}"),
            )
        })?;
    }
    let (files, bytes, blobs) = (staged.files, staged.bytes, staged.blobs_copied);
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
