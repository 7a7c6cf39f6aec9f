//! `gmchain node …`: create a chain's genesis and store, run the node, check a store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use execution::{ChainParams, Genesis, GenesisOrg, GenesisValidator};
use node::{Mode, NodeConfig, Validator};
use storage::ChainStore;
use storage_rocksdb::RocksBackend;
use types::{ChainId, Height};

use crate::io::{PassArgs, read_cert, read_crl};
use crate::{CmdResult, Failure};

#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per run; boxing the audit-verify node arguments only adds noise"
)]
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Writes the genesis file (from the config's [chain], [[organisations]] and
    /// [[validators]], or from --genesis) into data_dir and commits block 0.
    Init {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Join an existing chain: use this genesis file instead of the config's [chain].
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Fast join: initialise the store from this state snapshot (`node snapshot export`),
        /// verified against --genesis, instead of from block 0. Exit 1 names what did not
        /// verify; nothing is written then.
        #[arg(long, value_name = "FILE", requires = "genesis")]
        snapshot: Option<PathBuf>,
        /// With --snapshot: the block hash of the snapshot's height (64 hex), as an archive
        /// node of the chain gives it (`gmchain query block --height H`, checked out of band):
        /// a snapshot of any other block is refused. Without it, the snapshot is trusted as
        /// far as its certificate goes (docs/ops/snapshot.md, "Trust").
        #[arg(long, value_name = "HEX", requires = "snapshot")]
        expect_hash: Option<String>,
    },
    /// State snapshots: export one from a stopped node's store (or a backup's DIR/store).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Runs the node until SIGTERM/SIGINT.
    Start {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Checks the node's audit log (<data dir>/audit.log): every hash link, every checkpoint
    /// signature against the node-sign certificate(s), the head. Exit 1 names the first
    /// edited or removed entry, a bad checkpoint signature, or a cut tail (with --expect-head);
    /// exit 2 on bad input.
    AuditVerify {
        /// The node's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The node-sign certificate whose key signs the checkpoints (repeat it for a key that
        /// changed over the log's life).
        #[arg(long, value_name = "FILE", required = true)]
        cert: Vec<PathBuf>,
        /// The head recorded earlier (printed at stop, or anchored): fails if the log does
        /// not end there (truncated or replaced).
        #[arg(long, value_name = "HEX")]
        expect_head: Option<String>,
        /// Fail if entries follow the last checkpoint (no signature covers them).
        #[arg(long)]
        strict: bool,
        /// Also check the head the node last anchored on the chain (`supervision.anchor_log`,
        /// read from the node `--node` names): the log must hold that entry with that hash, so a
        /// truncation or rewrite since is caught without `--expect-head`.
        #[arg(long)]
        anchored: bool,
        #[command(flatten)]
        node: crate::client::NodeArgs,
    },
    /// Checks the whole stored chain (hash links, roots, receipts, index, commit certificates); the node
    /// must be stopped. Exit 1 names the first bad height.
    VerifyStore {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Backs the node up into DIR (new or empty): a RocksDB checkpoint of the store, the
    /// genesis file, the custodian's blobs, and a manifest of every file's length and SM3
    /// signed with the node's key. A running node makes it (through <data dir>/admin.sock);
    /// with no node running, this process does. Nothing appears under DIR unless complete.
    Backup {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The backup's directory (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restores a backup into the configuration's (empty or absent) data directory: checks
    /// the manifest's signature, every file's length and SM3 (no file missing, none added),
    /// the chain, and runs the full store verification before the directory is put in place.
    /// Exit 1 names the file that does not verify.
    Restore {
        /// The backup's directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The node configuration (TOML) of the node to restore.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Also trust a backup signed with this node-sign certificate (another node's backup
        /// restored onto this one); by default only the configuration's [key] (and
        /// [next_key]) certificate is trusted.
        #[arg(long, value_name = "FILE")]
        signer_cert: Option<PathBuf>,
    },
    /// Releases the restore guard of a stopped validator restored from a backup or a snapshot
    /// (it otherwise signs nothing until the chain has passed the height the network had
    /// reached, which a chain needing it for a quorum never does). Only once the backed-up
    /// instance is known stopped for good: the node then counts as one faulty validator for
    /// the heights that instance may have signed. Written with the reason in the store, and
    /// into the node's audit log at its next start.
    ReleaseGuard {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Why, for the audit log (e.g. the ticket, who decided).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Moves a stopped node's store from the previous release's layout (version 3) to this
    /// build's (version 4): checks the tip, then writes the base and the version in one synced
    /// batch. On a version-4 store there is nothing to do (exit 0); another version is refused
    /// naming both (exit 2); a store whose tip does not check is not touched (exit 1).
    Migrate {
        /// The node configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Makes a throwaway development chain in DIR (software keys: a root CA, a validator,
    /// an admin and N users, all keys encrypted with the passphrase in DIR/pass) and runs
    /// init. For tests, benchmarks and first steps; never for real data.
    #[command(hide = true)]
    DevChain {
        /// The directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// User identities to make.
        #[arg(long, default_value_t = 2)]
        clients: usize,
        /// Block interval (ms).
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Most transactions per block.
        #[arg(long, default_value_t = 2000)]
        block_max_txs: u32,
        /// Founding organisations (the first holds the nodes, the admin and the clients; each other
        /// one has a root and an admin, `orgs/<i>.admin.key.pem` and `orgs/<i>.admin.crt.pem`).
        #[arg(long, default_value_t = 1)]
        orgs: usize,
        /// Validator nodes (more than one: BFT consensus over loopback, `nodeI.toml`).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
        validators: u16,
        /// Follower nodes (after the validators: `nodeI.toml`, not in the validator set).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=8))]
        followers: u16,
        /// Make the last organisation the chain's supervisor, with an auditor
        /// (`orgs/<N>.auditor.*`) whose encryption certificate is the supervision escrow.
        #[arg(long)]
        supervisor: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Writes the state at a height, with its header, commit certificate, the validator-set
    /// changes from genesis and the blocks duplicate detection needs (docs/formats.md §11).
    /// The store must not be in use: stop the node, or export from a backup's DIR/store.
    Export {
        /// The node configuration (TOML): its data directory's store and genesis file.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "store",
            conflicts_with = "store"
        )]
        config: Option<PathBuf>,
        /// A copy of a store (a backup's DIR/store, or a stopped node's data_dir/db), opened
        /// read-only: nothing is written into it, so a backup still restores. Needs --genesis.
        #[arg(long, value_name = "DIR", requires = "genesis")]
        store: Option<PathBuf>,
        /// The chain's genesis file (with --store).
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// The height to export (default: the tip).
        #[arg(long)]
        height: Option<u64>,
        /// The snapshot file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn load_config(path: &Path) -> Result<NodeConfig, Failure> {
    NodeConfig::load(path).map_err(|e| Failure::BadInput(e.to_string()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A node error's exit status is its registry class; a seal failure takes its signer's (a wrong
/// key or PIN is bad input, 2; a token that is gone is unreachable, 3).
fn node_failure(e: node::NodeError) -> Failure {
    Failure::coded(&e, e.to_string())
}

pub(crate) fn genesis_from_config(config: &NodeConfig) -> Result<Genesis, Failure> {
    let chain = config.chain.as_ref().ok_or_else(|| {
        Failure::BadInput(format!(
            "{}: no [chain] section; give the chain definition or --genesis FILE",
            config.file.display()
        ))
    })?;
    let chain_id = ChainId::new(&chain.chain_id).map_err(|e| {
        Failure::BadInput(format!("{}: chain.chain_id: {e}", config.file.display()))
    })?;
    let mut params = ChainParams::default();
    if let Some(w) = chain.expiry_window {
        params.expiry_window = w;
    }
    if let Some(m) = chain.max_txs_per_block {
        params.max_txs_per_block = m;
    }
    if let Some(m) = chain.max_tx_size {
        params.max_tx_size = m;
    }
    let mut organisations = Vec::new();
    for (i, o) in chain.organisations.iter().enumerate() {
        organisations.push(GenesisOrg {
            name: o.name.clone(),
            ca_cert: read_cert(&format!("organisations[{i}].ca_cert"), &o.ca_cert)?,
            crl: read_crl(&format!("organisations[{i}].crl"), &o.crl)?,
            sponsors: o.sponsors.clone(),
        });
    }
    let mut validators = Vec::new();
    for (i, (name, cert)) in chain.validators.iter().enumerate() {
        validators.push(GenesisValidator {
            name: name.clone(),
            cert: read_cert(&format!("validators[{i}].cert"), cert)?,
        });
    }
    let supervision = match &chain.supervision {
        None => None,
        Some(sv) => {
            let freeze_policy = match sv.freeze_policy.as_deref() {
                None => {
                    return Err(Failure::BadInput(format!(
                        "{}: chain.supervision.freeze_policy: missing: \"supervisor\" (its auditors freeze alone) or \"governance\" (each freeze by vote)",
                        config.file.display()
                    )));
                }
                Some(p) => execution::FreezePolicy::parse(p).ok_or_else(|| {
                    Failure::BadInput(format!(
                        "{}: chain.supervision.freeze_policy: {p:?} is not supervisor or governance",
                        config.file.display()
                    ))
                })?,
            };
            let mut escrow = Vec::new();
            for (i, f) in sv.escrow.iter().enumerate() {
                escrow.push(read_cert(&format!("chain.supervision.escrow[{i}]"), f)?);
            }
            Some(execution::GenesisSupervision {
                supervisor: sv.supervisor.clone(),
                freeze_policy,
                escrow,
            })
        }
    };
    let g = Genesis {
        format: execution::GENESIS_FORMAT,
        chain_id,
        test_chain: chain.test_chain,
        timestamp_ms: now_ms(),
        params,
        organisations,
        validators,
        governance: Vec::new(),
        supervision,
    };
    // The same checks as any genesis file read from disk.
    Genesis::from_json(g.to_json().as_bytes())
        .map_err(|e| Failure::BadInput(format!("{}: genesis: {e}", config.file.display())))
}

pub(crate) fn validator(config: &NodeConfig) -> Result<Validator, Failure> {
    load_identity(config, &config.key, "key")
}

/// The key and certificate of a `[key]`-like section (`[key]`, `[next_key]`).
fn load_identity(
    config: &NodeConfig,
    key: &node::config::KeyConfig,
    section: &str,
) -> Result<Validator, Failure> {
    let pass = PassArgs {
        pass_file: key.pass_file.clone(),
        pass_env: key.pass_env.clone(),
    };
    let signer = crate::cli_crypto::load_signer(
        &key.key,
        key.hsm_profile.clone(),
        pass,
        config.mode == Mode::Development,
    )?;
    let certificate = read_cert(&format!("{section}.certificate"), &key.certificate)?;
    Ok(Validator {
        signer: Arc::from(signer),
        certificate,
    })
}

/// The custodian of `[exchange]`, if configured: the blob store (opened and locked for the
/// node's lifetime) and the node-enc key, checked against this node's certificate.
fn custodian(
    config: &NodeConfig,
    core: &node::LocalNode,
    key_use: &Arc<auditlog::KeyUse>,
) -> Result<Option<Arc<node::exchange::Custodian>>, Failure> {
    let Some(x) = &config.exchange else {
        return Ok(None);
    };
    let pass = PassArgs {
        pass_file: x.key.pass_file.clone(),
        pass_env: x.key.pass_env.clone(),
    };
    let key = crate::cli_crypto::load_decrypter(
        &x.key.key,
        x.key.hsm_profile.clone(),
        pass,
        config.mode == Mode::Development,
    )?;
    let key: Arc<dyn crypto::Decrypter> = Arc::new(auditlog::CountingDecrypter::new(
        key,
        auditlog::Purpose::CustodianDecryption,
        key_use.clone(),
    ));
    let enc_cert = read_cert("exchange.key.certificate", &x.key.certificate)?;
    let blobs = blobstore::BlobStore::open_with(
        &x.blobs,
        blobstore::Config {
            max_blob_len: x.max_blob_bytes,
        },
    )
    .map_err(|e| Failure::BadInput(format!("exchange.blobs: {e}")))?;
    if blobs.stale_temps_removed() > 0 {
        eprintln!(
            "gmchain: note: the blob store {} removed {} upload(s) a crash interrupted",
            x.blobs.display(),
            blobs.stale_temps_removed()
        );
    }
    let custodian = node::exchange::Custodian::new(
        core.validator(),
        blobs,
        key,
        enc_cert,
        Arc::new(crypto_sm::rng::SystemRandom),
    )
    .map_err(node_failure)?;
    Ok(Some(Arc::new(custodian)))
}

/// The `[next_key]` identity, if configured: its certificate must be a node-sign certificate
/// and its key must match it.
pub(crate) fn next_validator(config: &NodeConfig) -> Result<Option<Validator>, Failure> {
    let Some(k) = &config.next_key else {
        return Ok(None);
    };
    let v = load_identity(config, k, "next_key")?;
    if v.certificate.role() != Some(pki::Role::NodeSign) {
        return Err(Failure::BadInput(format!(
            "{}: next_key.certificate: not a node-sign certificate",
            config.file.display()
        )));
    }
    if v.signer.public_key() != v.certificate.public_key() {
        return Err(Failure::BadInput(format!(
            "{}: next_key: the key does not match next_key.certificate",
            config.file.display()
        )));
    }
    Ok(Some(v))
}

/// The node's TLS identity, read at start and on SIGHUP: the `[tls]` pair if configured
/// (another node-sign certificate and key), else the validator's token key with the
/// `[key]` certificate file as it is now (a renewed certificate of the same key).
fn tls_source(
    config: &NodeConfig,
    validator: Arc<dyn crypto::Signer>,
    key_use: Arc<auditlog::KeyUse>,
) -> node::TlsSource {
    let tls = config.tls.clone();
    let key_cert = config.key.certificate.clone();
    let development = config.mode == Mode::Development;
    Arc::new(move || {
        let (signer, cert_path, field) = match &tls {
            Some(t) => {
                let pass = PassArgs {
                    pass_file: t.pass_file.clone(),
                    pass_env: t.pass_env.clone(),
                };
                let signer = crate::cli_crypto::load_signer(
                    &t.key,
                    t.hsm_profile.clone(),
                    pass,
                    development,
                )
                .map_err(|f| format!("tls.key: {}", f.message()))?;
                let signer: Arc<dyn crypto::Signer> = Arc::new(auditlog::CountingSigner::new(
                    Arc::from(signer),
                    auditlog::Purpose::TlsHandshake,
                    key_use.clone(),
                ));
                (signer, t.certificate.clone(), "tls.certificate")
            }
            None => (validator.clone(), key_cert.clone(), "key.certificate"),
        };
        let chain =
            crate::client::read_certs(field, &cert_path).map_err(|f| f.message().to_string())?;
        gmtls::Credentials::new(chain, signer).map_err(|e| format!("{field}: {e}"))
    })
}

fn init_logging(config: &NodeConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        node::LogFormat::Json => builder.json().try_init(),
        node::LogFormat::Text => builder.try_init(),
    };
}

pub(crate) fn run(cmd: NodeCommand) -> CmdResult {
    match cmd {
        NodeCommand::Init {
            config,
            genesis,
            snapshot: Some(snapshot),
            expect_hash,
        } => {
            let config = load_config(&config)?;
            let path = genesis.ok_or_else(|| {
                Failure::BadInput("--snapshot needs --genesis (the chain's genesis file)".into())
            })?;
            let genesis = node::read_genesis(&path).map_err(node_failure)?;
            let expect = expect_hash
                .as_deref()
                .map(|h| {
                    hex::decode(h.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .map(|b| types::BlockHash(crypto::Digest(b)))
                        .ok_or_else(|| {
                            Failure::BadInput(format!(
                                "--expect-hash {h:?}: give the block hash as 64 hex digits"
                            ))
                        })
                })
                .transpose()?;
            let started = std::time::Instant::now();
            let imported = node::snapshot::import(&config.data_dir, &genesis, &snapshot, expect)
                .map_err(|e| Failure::coded(&e, format!("{}: {e}", e.code().name)))?;
            println!("chain {}", genesis.chain_id);
            println!("genesis file {}", config.genesis_path().display());
            println!("genesis hash {}", genesis.hash());
            println!(
                "snapshot verified: certificate of height {} under the validator set followed from genesis ({} set changes), {} state nodes hashed to the state root, transactions indexed from height {}",
                imported.height, imported.set_changes, imported.nodes, imported.indexed_from
            );
            println!(
                "base {} {} ({} ms); start the node to sync forward",
                imported.height,
                imported.hash,
                started.elapsed().as_millis()
            );
            if expect.is_some() {
                println!(
                    "block hash of height {} matches --expect-hash",
                    imported.height
                );
            } else {
                eprintln!(
                    "warning: the snapshot's block hash was not checked against an archive node (--expect-hash): its certificate is trusted as far as the validator sets it names go (docs/ops/snapshot.md, \"Trust\")"
                );
            }
            Ok(())
        }
        NodeCommand::Snapshot(SnapshotCommand::Export {
            config,
            store,
            genesis,
            height,
            out,
        }) => {
            // A copy (--store) is opened read-only: a backup's store stays as its manifest
            // lists it.
            let (store_dir, genesis_path, copy) = match (config, store) {
                (Some(c), _) => {
                    let c = load_config(&c)?;
                    (c.db_path(), c.genesis_path(), false)
                }
                (None, Some(dir)) => (
                    dir,
                    genesis.ok_or_else(|| Failure::BadInput("--store needs --genesis".into()))?,
                    true,
                ),
                (None, None) => {
                    return Err(Failure::BadInput("give --config or --store".into()));
                }
            };
            let genesis = node::read_node_genesis(&genesis_path).map_err(node_failure)?;
            let started = std::time::Instant::now();
            let source = if copy {
                node::snapshot::Source::Copy(&store_dir)
            } else {
                node::snapshot::Source::Stopped(&store_dir)
            };
            let e = node::snapshot::export(source, genesis, height.map(Height), &out)
                .map_err(|e| Failure::coded(&e, format!("{}: {e}", e.code().name)))?;
            println!(
                "snapshot {}: height {} ({}), {} state nodes, blocks from {} carried for duplicate detection, {} bytes, sm3 {} ({} ms)",
                out.display(),
                e.height,
                e.hash,
                e.nodes,
                e.blocks_from,
                e.bytes,
                e.sm3,
                started.elapsed().as_millis()
            );
            println!(
                "block hash {}: check it on an archive node of the chain and give it to `gmchain node init --snapshot FILE --expect-hash {}`",
                e.hash, e.hash
            );
            Ok(())
        }
        NodeCommand::Init {
            config, genesis, ..
        } => {
            let config = load_config(&config)?;
            let genesis = match genesis {
                Some(path) => node::read_genesis(&path).map_err(node_failure)?,
                None => genesis_from_config(&config)?,
            };
            let hash = node::init(&config.data_dir, &genesis).map_err(node_failure)?;
            println!("chain {}", genesis.chain_id);
            println!("genesis file {}", config.genesis_path().display());
            println!("genesis hash {}", genesis.hash());
            println!("block 0 {hash}");
            Ok(())
        }
        NodeCommand::Start { config: path } => {
            let config = load_config(&path)?;
            // What the start entry records: the bytes just parsed, read again.
            let config_sm3 = node::audit::config_hash(&crate::io::read_named("config", &path)?);
            init_logging(&config);
            // The node's key: signatures counted per purpose for the audit log; the raw key
            // signs the log's checkpoints.
            let key_use = Arc::new(auditlog::KeyUse::default());
            let Validator {
                signer: raw_key,
                certificate,
            } = validator(&config)?;
            let operator = certificate
                .common_name()
                .unwrap_or_else(|| certificate.subject().to_string());
            let validator = Validator {
                signer: Arc::new(auditlog::CountingSigner::new(
                    raw_key.clone(),
                    auditlog::Purpose::BlockAndVoteSigning,
                    key_use.clone(),
                )),
                certificate,
            };
            let engine = if config.consensus.is_some() {
                node::Engine::Bft
            } else {
                node::Engine::Single
            };
            // Below the threshold already: said before RocksDB's recovery writes (the guard
            // itself starts with the node's services, docs/ops/disk.md).
            node::disk::warn_if_low_before_open(&config.storage_paths(), &config.storage);
            let core = node::LocalNode::open_with(
                &config.data_dir,
                validator,
                config.block,
                Arc::new(now_ms),
                engine,
            )
            .map_err(node_failure)?;
            if let Some(next) = next_validator(&config)? {
                if config.consensus.is_none() {
                    return Err(Failure::BadInput(format!(
                        "{}: next_key needs a [consensus] section (a single validator rotates by re-creating its chain)",
                        config.file.display()
                    )));
                }
                core.set_next_validator(Validator {
                    signer: Arc::new(auditlog::CountingSigner::new(
                        next.signer,
                        auditlog::Purpose::BlockAndVoteSigning,
                        key_use.clone(),
                    )),
                    certificate: next.certificate,
                });
            }
            core.ledger()
                .node_cache()
                .set_capacity(config.state_cache_nodes);
            // Pruned mode, refused on a validator of the current set (its key or its next).
            if let Some(n) = config.keep_blocks {
                core.set_keep_blocks(n).map_err(node_failure)?;
            }
            // Opened once the store is (its lock keeps a second node off this data directory).
            let audit = node::audit::NodeAudit::open(
                &config.data_dir,
                raw_key.clone(),
                &operator,
                key_use.clone(),
                config.audit,
            )
            .map_err(node_failure)?;
            core.set_audit(audit.clone());
            audit.record(
                "start",
                auditlog::Outcome::Done,
                &format!(
                    "gmchain {} (pid {}), configuration {} sm3 {config_sm3}",
                    env!("CARGO_PKG_VERSION"),
                    std::process::id(),
                    path.display()
                ),
            );
            audit.record(
                "config-loaded",
                auditlog::Outcome::Done,
                &config_summary(&config, &config_sm3),
            );
            // An operator released the restore guard while the node was stopped: said in
            // the log the node signs. The record leaves the store only once the audit log
            // is closed with it in (a crash before: it is recorded again at the next start).
            let released = node::restored::released(core.store().backend())
                .map_err(|e| node_failure(e.into()))?;
            if let Some(record) = &released {
                audit.record("restore-guard-released", auditlog::Outcome::Done, record);
                eprintln!("the restore guard was released by an operator: {record}");
            }
            let served = (|| {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
                let core = Arc::new(core);
                let custodian = custodian(&config, &core, &key_use)?;
                let tls_key = Arc::new(auditlog::CountingSigner::new(
                    raw_key.clone(),
                    auditlog::Purpose::TlsHandshake,
                    key_use.clone(),
                ));
                let source = tls_source(&config, tls_key, key_use.clone());
                rt.block_on(node::run(&config, core, source, custodian))
                    .map_err(node_failure)
            })();
            let detail = match &served {
                Ok(()) => "stopped cleanly".to_string(),
                Err(f) => format!("stopped by an error: {}", f.message()),
            };
            if let Some((seq, head)) = audit.stop(&detail) {
                eprintln!("audit log head: entry {seq} hash {head}");
                if released.is_some()
                    && audit.failures() == 0
                    && let Ok(b) = RocksBackend::open(&config.db_path(), false)
                    && let Err(e) = node::restored::take_released(&b)
                {
                    eprintln!(
                        "the restore guard's release record stays in the store ({e}): the next start records it again"
                    );
                }
            }
            served
        }
        NodeCommand::AuditVerify {
            data_dir,
            cert,
            expect_head,
            strict,
            anchored,
            node,
        } => {
            audit_verify(&data_dir, &cert, expect_head.as_deref(), strict)?;
            if anchored {
                check_anchored(&data_dir, &cert, &node)?;
            }
            Ok(())
        }
        NodeCommand::VerifyStore { config } => {
            let config = load_config(&config)?;
            verify_store(&config)
        }
        NodeCommand::Backup { config, out } => {
            let config = load_config(&config)?;
            crate::cli_backup::backup(&config, &out)
        }
        NodeCommand::Restore {
            from,
            config,
            signer_cert,
        } => {
            let config = load_config(&config)?;
            crate::cli_backup::restore(&config, &from, signer_cert.as_deref())
        }
        NodeCommand::Migrate { config } => {
            let config = load_config(&config)?;
            migrate(&config)
        }
        NodeCommand::ReleaseGuard { config, reason } => {
            let config = load_config(&config)?;
            release_guard(&config, &reason)
        }
        NodeCommand::DevChain {
            dir,
            clients,
            interval_ms,
            block_max_txs,
            orgs,
            validators,
            followers,
            supervisor,
        } => {
            let chain = crate::devchain::prepare_network(
                &dir,
                clients,
                block_max_txs,
                interval_ms,
                orgs.max(1),
                usize::from(validators),
                usize::from(followers),
                supervisor,
            )?;
            println!(
                "development chain in {}: config {}",
                dir.display(),
                chain.config.display()
            );
            Ok(())
        }
    }
}

/// What the `config-loaded` entry records: the file's hash and what it sets that matters to
/// an auditor (mode, engine, listeners, peers, custody).
fn config_summary(config: &NodeConfig, sm3: &str) -> String {
    format!(
        "{} sm3 {sm3}: mode {:?}, engine {}, api {}, metrics {}, public {}, p2p {}, custodian {}, checkpoints every {} entries or {} s",
        config.file.display(),
        config.mode,
        if config.consensus.is_some() {
            "bft"
        } else {
            "single"
        },
        config.listen,
        config.metrics_listen,
        config
            .public_listen
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
        config.consensus.as_ref().map_or_else(
            || "off".to_string(),
            |c| format!("{} with {} peer(s)", c.listen, c.peers.len())
        ),
        if config.exchange.is_some() {
            "yes"
        } else {
            "no"
        },
        config.audit.checkpoint_entries,
        config.audit.checkpoint_interval.as_secs(),
    )
}

/// `node audit-verify`: the node's audit log against its node-sign certificate(s).
fn audit_verify(
    data_dir: &Path,
    certs: &[PathBuf],
    expect_head: Option<&str>,
    strict: bool,
) -> CmdResult {
    let mut keys = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let cert = read_cert(&format!("--cert #{}", i + 1), c)?;
        if cert.role() != Some(pki::Role::NodeSign) {
            return Err(Failure::BadInput(format!(
                "--cert {}: not a node-sign certificate (the node signs its audit checkpoints with its node-sign key)",
                c.display()
            )));
        }
        keys.push(cert.public_key());
    }
    if let Some(h) = expect_head
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Failure::BadInput(format!(
            "--expect-head {h:?}: not an SM3 hash (64 hex digits)"
        )));
    }
    let path = data_dir.join(node::audit::FILE);
    if !path.is_file() {
        return Err(Failure::BadInput(format!(
            "{}: no audit log there (is --data-dir the node's data_dir?)",
            path.display()
        )));
    }
    let tail = if strict {
        auditlog::UnsignedTail::Refuse
    } else {
        auditlog::UnsignedTail::Allow
    };
    let log = auditlog::Log::new(&path, &auditlog::NODE);
    match log.verify(&keys, expect_head, tail) {
        Ok(r) => {
            let signed = match &r.last_signed {
                Some(s) => format!("last checkpoint entry {} hash {}", s.seq, s.hash),
                None => "no checkpoint".to_string(),
            };
            println!(
                "audit log OK: {} entries, head {}; {signed}",
                r.entries, r.head
            );
            if let (Some(first), Some(last)) = (r.unsigned_tail.first(), r.unsigned_tail.last()) {
                println!(
                    "unsigned tail: entries {first} to {last} follow the last checkpoint (the node did not stop cleanly, or is running); --strict fails on it"
                );
            }
            // What the node itself marked: entries it found unsigned when it started again,
            // entries it dropped. Listed always; --strict fails on them (their content, or
            // their absence, is not authenticated by any checkpoint of the run that wrote them).
            let marks: Vec<auditlog::Entry> = log
                .read()
                .map_err(|e| Failure::NotVerified(format!("{}: {e}", path.display())))?
                .into_iter()
                .filter(|e| {
                    e.action == node::audit::UNSIGNED_AT_OPEN || e.action == node::audit::DROPPED
                })
                .collect();
            for m in &marks {
                println!("marked: entry {} ({}): {}", m.seq, m.action, m.detail);
            }
            if strict && let Some(m) = marks.first() {
                return Err(Failure::NotVerified(format!(
                    "{}: entry {} ({}): {}; --strict refuses a log with such a mark ({} in all)",
                    path.display(),
                    m.seq,
                    m.action,
                    m.detail,
                    marks.len()
                )));
            }
            Ok(())
        }
        Err(e @ auditlog::AuditError::Io { .. }) => Err(Failure::BadInput(e.to_string())),
        Err(e) => Err(Failure::NotVerified(format!("{}: {e}", path.display()))),
    }
}

/// The node log holds the entry whose head the chain anchored last, with that hash.
fn check_anchored(data_dir: &Path, certs: &[PathBuf], node: &crate::client::NodeArgs) -> CmdResult {
    // The log's current signer: the last certificate given.
    let Some(last) = certs.last() else {
        return Err(Failure::BadInput("--cert: required".into()));
    };
    let cert = read_cert("--cert", last)?;
    crate::cli_audit::check_anchored_head(
        &data_dir.join(node::audit::FILE),
        &auditlog::NODE,
        &cert,
        node,
    )
}

pub(crate) fn verify_store(config: &NodeConfig) -> CmdResult {
    println!("{}", verify_store_report(config)?);
    Ok(())
}

/// The checks of `gmchain node verify-store`; returns the line it prints.
pub(crate) fn verify_store_report(config: &NodeConfig) -> Result<String, Failure> {
    let genesis = node::read_genesis(&config.genesis_path()).map_err(node_failure)?;
    let backend = RocksBackend::open(&config.db_path(), false)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    // The ceiling, as the node decodes: governance may raise the parameters up to it.
    let store = ChainStore::new(backend, types::Limits::default());
    let bad = |m: String| Failure::NotVerified(m);
    let tip = store
        .verify_all()
        .map_err(|e| bad(format!("store {}: {e}", config.db_path().display())))?
        .ok_or_else(|| bad("the store holds no block".into()))?;
    let expected = genesis
        .build(&state::MemStore::new())
        .map_err(|e| Failure::BadInput(e.to_string()))?
        .block
        .header
        .hash();
    let base = store
        .base()
        .map_err(|e| bad(format!("the store's base: {e}")))?
        .ok_or_else(|| bad("the store records no base".into()))?;
    let lowest = store
        .lowest_held()
        .map_err(|e| bad(format!("the store's base: {e}")))?;
    if base.height == Height(0) {
        let stored = store
            .header(Height(0))
            .map_err(|e| bad(format!("height 0: {e}")))?
            .ok_or_else(|| bad("height 0: no header".into()))?
            .hash();
        if stored != expected || base.hash != stored {
            return Err(bad(format!(
                "height 0: block hash {stored} is not the genesis file's {expected}"
            )));
        }
    } else {
        // A store initialised from a snapshot holds no block 0: the snapshot's genesis hash,
        // checked at import, is recorded instead.
        let recorded = store
            .recorded_genesis()
            .map_err(|e| bad(format!("the recorded genesis hash: {e}")))?
            .ok_or_else(|| bad("a snapshot store without its genesis hash".into()))?;
        if recorded != expected {
            return Err(bad(format!(
                "the store's recorded genesis hash {recorded} is not the genesis file's {expected}"
            )));
        }
    }
    let set = genesis
        .validator_set()
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut h = Height(lowest.0.max(1));
    // The first height checked links to the certificate before it when the store holds it
    // (an archive or pruned store); at a snapshot's base that certificate is not held: the
    // import verified the base's certificate from genesis instead.
    let mut last_commit = match h.0 {
        1 => types::ConsensusLinks::NO_PARENT_CERTIFICATE,
        _ => match store
            .certificate(Height(h.0 - 1))
            .map_err(|e| bad(format!("height {}: certificate: {e}", h.0 - 1)))?
        {
            Some(c) => c.hash(),
            None => store
                .header(h)
                .map_err(|e| bad(format!("height {h}: {e}")))?
                .and_then(|hd| hd.consensus)
                .map(|l| l.last_commit)
                .ok_or_else(|| bad(format!("height {h}: no header")))?,
        },
    };
    while h <= tip.height {
        let header = store
            .header(h)
            .map_err(|e| bad(format!("height {h}: {e}")))?
            .ok_or_else(|| bad(format!("height {h}: no header")))?;
        let certificate = store
            .certificate(h)
            .map_err(|e| bad(format!("height {h}: certificate: {e}")))?
            .ok_or_else(|| bad(format!("height {h}: the block has no commit certificate")))?;
        let links = header
            .consensus
            .ok_or_else(|| bad(format!("height {h}: a version-1 header")))?;
        if links.validator_set != set.hash() {
            return Err(bad(format!(
                "height {h}: the header names validator set {}, not the genesis set {}",
                links.validator_set,
                set.hash()
            )));
        }
        if links.last_commit != last_commit {
            return Err(bad(format!(
                "height {h}: the header's last_commit is not the hash of height {}'s certificate",
                h.0 - 1
            )));
        }
        certificate
            .verify(&genesis.chain_id, h, &header.hash(), &set)
            .map_err(|e| bad(format!("height {h}: commit certificate: {e}")))?;
        last_commit = certificate.hash();
        h = Height(h.0 + 1);
    }
    let nodes = store
        .verify_state(tip.height)
        .map_err(|e| bad(format!("store {}: {e}", config.db_path().display())))?;
    Ok(format!(
        "store verified: heights {}..={} (hash links, transaction and receipt roots, index, commit certificates), state tree at the tip re-hashed ({nodes} nodes); tip {}; base {}{}",
        lowest,
        tip.height,
        tip.hash,
        base.height,
        match store.pruned_below().ok().flatten() {
            Some(p) => format!(", pruned below {p}"),
            None => String::new(),
        }
    ))
}

/// `gmchain node release-guard`: the restore marker deleted and the release recorded, in one
/// batch, under the store's lock (a running node holds it: refused, `NODE_STORE_OPEN`, exit 2,
/// as `migrate` and `verify-store` are).
fn release_guard(config: &NodeConfig, reason: &str) -> CmdResult {
    let reason = reason.trim();
    // Printable text only: no control characters, and none of Unicode's line separators or
    // directional overrides, which could make the audit entry read otherwise than it is.
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    if reason.is_empty() || reason.len() > 512 || reason.chars().any(hidden) {
        return Err(Failure::BadInput(
            "--reason: give one line of printable text (1 to 512 bytes; no control, line-separator or direction characters) saying why, for the audit log".into(),
        ));
    }
    let path = config.db_path();
    let backend = RocksBackend::open(&path, false).map_err(|e| node_failure(e.into()))?;
    let learned = node::restored::read(&backend).map_err(|e| node_failure(e.into()))?;
    let Some(learned) = learned else {
        println!(
            "store {} carries no restore guard: nothing to release",
            path.display()
        );
        return Ok(());
    };
    // The uid is the process's; the login name is only what the environment says (under sudo
    // or a service account it is that account's).
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let record = format!(
        "released by uid {} (login name in the environment: {user}) at {} ms since the epoch, the guard having learned height {}: {reason}",
        node::admin::effective_uid(),
        now_ms(),
        learned.0
    );
    node::restored::release(&backend, &record).map_err(|e| node_failure(e.into()))?;
    println!(
        "restore guard released on {} (it had learned height {}); the node signs from its next height once started, and its audit log records: {record}",
        path.display(),
        learned.0
    );
    Ok(())
}

/// `gmchain node migrate`: version 3 to 4, in one batch, under the store's lock.
fn migrate(config: &NodeConfig) -> CmdResult {
    let path = config.db_path();
    // Judged read-only first (RocksDB's log aside): a store that is current, or whose tip
    // does not check, is left byte for byte as it was (a read-write open rewrites RocksDB's
    // MANIFEST and OPTIONS files even when nothing is migrated).
    {
        let log = std::env::temp_dir().join(format!("gmchain-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&log)
            .map_err(|e| Failure::BadInput(format!("{}: {e}", log.display())))?;
        let checked = (|| -> Result<bool, Failure> {
            let backend = RocksBackend::open_read_only_for_migration(&path, &log)
                .map_err(|e| node_failure(node::NodeError::from(e)))?;
            let store = ChainStore::new(backend, types::Limits::default());
            let version = storage::KvBackend::get(
                store.backend(),
                storage::Table::Meta,
                storage::STORE_VERSION_KEY,
            )
            .map_err(|e| node_failure(e.into()))?;
            if version.as_deref() == Some(&[storage::STORE_VERSION][..]) {
                return Ok(false);
            }
            if version.as_deref() == Some(&[storage::MIGRATES_FROM][..]) {
                store.check_tip_on_startup().map_err(|e| {
                    Failure::NotVerified(format!(
                        "store {}: {e}; nothing was changed",
                        path.display()
                    ))
                })?;
            }
            Ok(true)
        })();
        let _ = std::fs::remove_dir_all(&log);
        if !checked? {
            println!("store is version {}, nothing to do", storage::STORE_VERSION);
            return Ok(());
        }
    }
    let backend = RocksBackend::open_for_migration(&path).map_err(|e| {
        let e = node::NodeError::from(e);
        node_failure(e)
    })?;
    let store = ChainStore::new(backend, types::Limits::default());
    match store.migrate_to_current() {
        Ok(base) => {
            println!(
                "store {} migrated from version {} to {}: tip checked, base = height {} ({}) written with the version in one batch",
                path.display(),
                storage::MIGRATES_FROM,
                storage::STORE_VERSION,
                base.height,
                base.hash
            );
            Ok(())
        }
        Err(storage::MigrateError::Storage(storage::StorageError::AlreadyCurrent { version })) => {
            println!("store is version {version}, nothing to do");
            Ok(())
        }
        Err(storage::MigrateError::Integrity(e)) => Err(Failure::NotVerified(format!(
            "store {}: {e}; nothing was changed",
            path.display()
        ))),
        Err(storage::MigrateError::Storage(e)) => Err(node_failure(e.into())),
        Err(e) => Err(Failure::BadInput(e.to_string())),
    }
}
