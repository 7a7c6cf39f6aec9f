//! The node's TOML configuration, validated before anything starts. Every error names the
//! file, the field and what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// A configuration the node refuses, with the field at fault.
#[derive(Debug, Error)]
#[error("{file}: {field}: {problem}")]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The field (`api.listen`, `key.key`).
    pub field: String,
    /// What is wrong and, where it helps, what to do.
    pub problem: String,
}

/// Production nodes keep their key in a PKCS#11 token and use GM algorithms only (a key file
/// protected with OpenSSL's PBKDF2-hmacWithSHA256 is refused by name); development nodes may use
/// an encrypted key file, OpenSSL's included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keys only in a token (`pkcs11:` URI).
    Production,
    /// Also an SM4/PBKDF2-encrypted PKCS#8 key file (never a clear one).
    Development,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Mode,
    data_dir: PathBuf,
    key: RawKey,
    tls: Option<RawKey>,
    next_key: Option<RawKey>,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    block: RawBlock,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    audit: RawAudit,
    chain: Option<RawChain>,
    #[serde(default)]
    organisations: Vec<RawOrg>,
    #[serde(default)]
    validators: Vec<RawValidator>,
    consensus: Option<RawConsensus>,
    exchange: Option<RawExchange>,
    watch: Option<crate::watch::RawWatch>,
    rest: Option<RawRest>,
    #[serde(default)]
    storage: RawStorage,
}

/// `[storage]`: the free space the node keeps on its data directory's filesystem
/// (docs/ops/disk.md) and pruned mode (docs/ops/snapshot.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default = "default_min_free_mib")]
    min_free_mib: u64,
    #[serde(default = "default_resume_margin_mib")]
    resume_margin_mib: u64,
    keep_blocks: Option<u64>,
    state_cache_nodes: Option<u64>,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            min_free_mib: default_min_free_mib(),
            resume_margin_mib: default_resume_margin_mib(),
            keep_blocks: None,
            state_cache_nodes: None,
        }
    }
}

/// The most state-tree nodes `[storage] state_cache_nodes` may keep in memory (50 million,
/// several GiB).
pub const MAX_STATE_CACHE_NODES: u64 = 50_000_000;

fn default_min_free_mib() -> u64 {
    StorageConfig::default().min_free_mib
}

fn default_resume_margin_mib() -> u64 {
    StorageConfig::default().resume_margin_mib
}

/// The largest `[storage]` figure taken, in MiB (1 TiB).
pub const MAX_STORAGE_MIB: u64 = 1 << 20;

/// `[storage]`: below `min_free_mib` MiB free on the data directory's filesystem the node
/// admits no transaction and neither proposes, votes nor commits (docs/ops/disk.md); it
/// resumes once `min_free_mib + resume_margin_mib` MiB are free (hysteresis: a node at the
/// threshold does not flap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The threshold, in MiB (default 1024).
    pub min_free_mib: u64,
    /// What must be free above the threshold before the node resumes, in MiB (default 256).
    pub resume_margin_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        // 1 GiB covers RocksDB's largest single allocations (a WAL preallocation or a
        // memtable flush of ~70 MiB, a level-1 compaction's output) many times over; the
        // margin is a quarter of it.
        StorageConfig {
            min_free_mib: 1024,
            resume_margin_mib: 256,
        }
    }
}

impl StorageConfig {
    /// The threshold in bytes.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_mib.saturating_mul(1 << 20)
    }

    /// The free bytes at which a paused node resumes.
    pub fn resume_bytes(&self) -> u64 {
        self.min_free_mib
            .saturating_add(self.resume_margin_mib)
            .saturating_mul(1 << 20)
    }
}

/// `[rest]` (docs/rest.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRest {
    listen: Option<String>,
    #[serde(default = "default_rest_mode")]
    mode: String,
    #[serde(default)]
    public_person_names: bool,
    #[serde(default)]
    public_raw: bool,
    #[serde(default = "default_rest_timeout")]
    request_timeout_secs: u64,
    conformance_report: Option<PathBuf>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
}

fn default_rest_mode() -> String {
    "gateway".into()
}

fn default_rest_timeout() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    key: RawKey,
    blobs: Option<PathBuf>,
    #[serde(default = "default_max_blob_bytes")]
    max_blob_bytes: u64,
}

fn default_max_blob_bytes() -> u64 {
    1 << 30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsensus {
    listen: String,
    #[serde(default)]
    peers: Vec<RawPeer>,
    #[serde(default = "default_timeout_propose")]
    timeout_propose_ms: u64,
    #[serde(default = "default_timeout_vote")]
    timeout_prevote_ms: u64,
    #[serde(default = "default_timeout_vote")]
    timeout_precommit_ms: u64,
    #[serde(default = "default_timestamp_bound")]
    timestamp_bound_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: String,
    name: String,
    organisation: Option<String>,
}

fn default_timeout_propose() -> u64 {
    3000
}

fn default_timeout_vote() -> u64 {
    1000
}

fn default_timestamp_bound() -> u64 {
    2000
}

/// A peer the node dials: where, and the certificate name (and organisation) it must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its p2p address.
    pub address: SocketAddr,
    /// The CN of its node-sign certificate.
    pub name: String,
    /// The O it must have, if given.
    pub organisation: Option<String>,
}

/// `[consensus]`: the node takes part in BFT consensus with other nodes (as a validator if its
/// certificate is in the validator set, else as a follower).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// The p2p listener (mutual GM TLS, node-sign certificates on both ends).
    pub listen: SocketAddr,
    /// The nodes to dial.
    pub peers: Vec<PeerConfig>,
    /// How long to wait for a proposal in round 0 (later rounds wait longer).
    pub timeout_propose_ms: u64,
    /// How long to wait for prevotes after seeing 2f+1 of any.
    pub timeout_prevote_ms: u64,
    /// How long to wait for precommits after seeing 2f+1 of any.
    pub timeout_precommit_ms: u64,
    /// A fresh proposal's timestamp must lie within this of the verifier's clock.
    pub timestamp_bound_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: String,
    hsm_profile: Option<PathBuf>,
    pass_file: Option<PathBuf>,
    pass_env: Option<String>,
    certificate: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_metrics")]
    metrics_listen: String,
    public_listen: Option<String>,
    #[serde(default)]
    allow_non_loopback: bool,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_max_streams")]
    max_streams_per_connection: u32,
    #[serde(default = "default_max_subscriptions")]
    max_subscriptions: usize,
    #[serde(default = "default_max_connections_per_peer")]
    max_connections_per_peer: usize,
    #[serde(default = "default_max_subscriptions_per_peer")]
    max_subscriptions_per_peer: usize,
    #[serde(default = "default_max_batch_txs")]
    max_batch_txs: usize,
    #[serde(default = "default_max_batch_bytes")]
    max_batch_bytes: usize,
}

fn default_max_batch_txs() -> usize {
    ApiLimits::default().max_batch_txs
}

fn default_max_batch_bytes() -> usize {
    ApiLimits::default().max_batch_bytes
}

fn default_max_connections_per_peer() -> usize {
    ApiLimits::default().max_connections_per_peer
}

fn default_max_subscriptions_per_peer() -> usize {
    ApiLimits::default().max_subscriptions_per_peer
}

fn default_max_connections() -> usize {
    ApiLimits::default().max_connections
}

fn default_max_streams() -> u32 {
    ApiLimits::default().max_streams_per_connection
}

fn default_max_subscriptions() -> usize {
    ApiLimits::default().max_subscriptions
}

/// Limits of the API listener (docs/execution.md, "API limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Open connections at most; more are closed on accept (default 256).
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection (default 64).
    pub max_streams_per_connection: u32,
    /// Open `SubscribeBlocks` streams at most, over all connections (default 64).
    pub max_subscriptions: usize,
    /// Open connections from one IP address at most (default 32).
    pub max_connections_per_peer: usize,
    /// Open `SubscribeBlocks` streams from one IP address at most (default 8).
    pub max_subscriptions_per_peer: usize,
    /// Transactions in one batch submission at most (`Batch.SubmitTransactions`, default 1000).
    pub max_batch_txs: usize,
    /// The batch submission's message limit in bytes (default 16 MiB; REST: its base64 in
    /// JSON).
    pub max_batch_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_connections: 256,
            max_streams_per_connection: 64,
            max_subscriptions: 64,
            max_connections_per_peer: 32,
            max_subscriptions_per_peer: 8,
            max_batch_txs: 1000,
            max_batch_bytes: 16 << 20,
        }
    }
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: default_metrics(),
            public_listen: None,
            allow_non_loopback: false,
            max_connections: default_max_connections(),
            max_streams_per_connection: default_max_streams(),
            max_subscriptions: default_max_subscriptions(),
            max_connections_per_peer: default_max_connections_per_peer(),
            max_subscriptions_per_peer: default_max_subscriptions_per_peer(),
            max_batch_txs: default_max_batch_txs(),
            max_batch_bytes: default_max_batch_bytes(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:7050".into()
}

fn default_metrics() -> String {
    "127.0.0.1:9150".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    #[serde(default = "default_interval")]
    interval_ms: u64,
    #[serde(default = "default_max_txs")]
    max_txs: u32,
    #[serde(default = "default_pool")]
    max_pool: usize,
}

impl Default for RawBlock {
    fn default() -> Self {
        Self {
            interval_ms: default_interval(),
            max_txs: default_max_txs(),
            max_pool: default_pool(),
        }
    }
}

fn default_interval() -> u64 {
    200
}

fn default_max_txs() -> u32 {
    2000
}

fn default_pool() -> usize {
    50_000
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    format: LogFormat,
    level: Option<String>,
}

/// `[audit]`: when the node's audit log signs a checkpoint (src/audit.rs).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    checkpoint_entries: Option<u64>,
    checkpoint_secs: Option<u64>,
    anchor_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    chain_id: String,
    #[serde(default)]
    test_chain: bool,
    expiry_window: Option<u64>,
    max_txs_per_block: Option<u32>,
    max_tx_size: Option<usize>,
    supervision: Option<RawSupervision>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervision {
    supervisor: String,
    freeze_policy: Option<String>,
    #[serde(default)]
    escrow: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    name: String,
    ca_cert: PathBuf,
    crl: PathBuf,
    #[serde(default)]
    sponsors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    name: String,
    cert: PathBuf,
}

/// Where the node's signing key is.
#[derive(Clone, Debug)]
pub struct KeyConfig {
    /// A `pkcs11:` URI or (development only) an encrypted key file.
    pub key: String,
    /// The module profile for a `pkcs11:` key.
    pub hsm_profile: Option<PathBuf>,
    /// File holding the token PIN or key passphrase.
    pub pass_file: Option<PathBuf>,
    /// Environment variable holding it.
    pub pass_env: Option<String>,
    /// The node's certificate (role node-sign), a genesis validator.
    pub certificate: PathBuf,
}

/// Block production.
#[derive(Clone, Copy, Debug)]
pub struct BlockConfig {
    /// Longest wait before a non-empty pool is sealed into a block.
    pub interval_ms: u64,
    /// Most transactions in one block.
    pub max_txs: u32,
    /// Most transactions waiting in the pool; more are refused (TX_POOL_FULL).
    pub max_pool: usize,
}

/// A founding organisation of the chain definition.
#[derive(Clone, Debug)]
pub struct OrgDefinition {
    /// Its name (its CA certificate's O).
    pub name: String,
    /// Its CA certificate file.
    pub ca_cert: PathBuf,
    /// Its CRL file.
    pub crl: PathBuf,
    /// Organisations its (self-signed) CA may sponsor.
    pub sponsors: Vec<String>,
}

/// The chain's supervision (`[chain.supervision]`): genesis `supervision`.
#[derive(Clone, Debug)]
pub struct SupervisionDefinition {
    /// The supervising organisation (a founding organisation).
    pub supervisor: String,
    /// `supervisor` (default) or `governance`.
    pub freeze_policy: Option<String>,
    /// The supervisor's `auditor-enc` certificate files every data key is also wrapped to.
    pub escrow: Vec<PathBuf>,
}

/// The chain definition `gmchain node init` turns into the genesis file.
#[derive(Clone, Debug)]
pub struct ChainDefinition {
    /// The chain id.
    pub chain_id: String,
    /// Whether genesis marks the chain as a test chain (conformance `--allow-writes`).
    pub test_chain: bool,
    /// Expiry window in blocks.
    pub expiry_window: Option<u64>,
    /// Most transactions per block (a chain rule).
    pub max_txs_per_block: Option<u32>,
    /// Largest transaction (a chain rule).
    pub max_tx_size: Option<usize>,
    /// The founding organisations.
    pub organisations: Vec<OrgDefinition>,
    /// Validators: name, certificate file.
    pub validators: Vec<(String, PathBuf)>,
    /// The supervisor, its freeze policy and the supervision escrow.
    pub supervision: Option<SupervisionDefinition>,
}

/// A validated node configuration. Relative paths are resolved against the file's directory.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Production or development.
    pub mode: Mode,
    /// The data directory: `genesis.json` and `db/`.
    pub data_dir: PathBuf,
    /// The signing key.
    pub key: KeyConfig,
    /// The TLS identity when it is not the signing key's (`[tls]`: another node-sign pair).
    pub tls: Option<KeyConfig>,
    /// The key and node-sign certificate a governance rotation moves this validator to
    /// (`[next_key]`): the node decides with it from the first height whose validator set
    /// holds its certificate, and with `[key]` before.
    pub next_key: Option<KeyConfig>,
    /// The API's listen address: gRPC over mutual GM TLS (RFC 8998) only.
    pub listen: SocketAddr,
    /// Prometheus metrics listen address (plain HTTP; loopback unless allowed).
    pub metrics_listen: SocketAddr,
    /// The public read-only listener (plain HTTP/2 gRPC, no client certificate, no writes),
    /// only if configured; loopback unless allowed. Outside GB/T 39786 §8.2: meant to sit
    /// behind the operator's own HTTPS/TLCP gateway.
    pub public_listen: Option<SocketAddr>,
    /// Limits of the API listener.
    pub api_limits: ApiLimits,
    /// Block production.
    pub block: BlockConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `node=debug`).
    pub log_level: String,
    /// The chain definition, needed only by `init`.
    pub chain: Option<ChainDefinition>,
    /// BFT consensus with other nodes (absent: the single-validator engine).
    pub consensus: Option<ConsensusConfig>,
    /// Data exchange custody (`[exchange]`): absent, the node serves the catalogue's reads
    /// but holds no blobs and serves no fetch.
    pub exchange: Option<ExchangeConfig>,
    /// Watch rules (`[watch]`, `[[watch.rule]]`; `crate::watch`): none by default.
    pub watch: crate::watch::WatchConfig,
    /// When the node's audit log signs checkpoints (`[audit]`; default 1000 entries or 60 s).
    pub audit: crate::audit::AuditConfig,
    /// The plain REST listener and what it serves (`[rest]`, docs/rest.md).
    pub rest: crate::rest::RestConfig,
    /// The free space kept on the data directory's filesystem (`[storage]`, docs/ops/disk.md).
    pub storage: StorageConfig,
    /// Pruned mode (`[storage] keep_blocks = N`): the node keeps the blocks and receipts of
    /// the last N heights only (headers, certificates and the transaction index stay);
    /// absent, it is an archive node and keeps everything. Followers only: a validator of
    /// the current set refuses to start with it (`LocalNode::set_keep_blocks`).
    pub keep_blocks: Option<u64>,
    /// State-tree nodes kept in memory (`[storage] state_cache_nodes`, default
    /// [`ledger::NODE_CACHE_CAPACITY`]): every admission and block walks the tree's paths, and
    /// a node missed is read from RocksDB (docs/operations.md).
    pub state_cache_nodes: usize,
}

/// `[exchange]`: the node is a custodian of its organisation's shared data (docs/exchange.md).
#[derive(Clone, Debug)]
pub struct ExchangeConfig {
    /// The node-enc key and certificate (`[exchange.key]`): custodian envelopes are wrapped to
    /// it, and it unwraps them inside the token when a fetch is served.
    pub key: KeyConfig,
    /// The blob store's directory (default `<data_dir>/blobs`).
    pub blobs: PathBuf,
    /// The largest payload accepted (default 1 GiB).
    pub max_blob_bytes: u64,
}

impl NodeConfig {
    /// The genesis file in the data directory.
    pub fn genesis_path(&self) -> PathBuf {
        self.data_dir.join("genesis.json")
    }

    /// The RocksDB directory.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    /// What the free-space guard watches (`crate::disk`, docs/ops/disk.md): the data directory
    /// (genesis, audit log, admin socket), the store under it (which may be a mount point of
    /// its own) and the custodian's blob store (which may be elsewhere); one path per
    /// filesystem is measured.
    pub fn storage_paths(&self) -> Vec<(&'static str, PathBuf)> {
        let mut paths = vec![
            ("data directory", self.data_dir.clone()),
            ("store", self.db_path()),
        ];
        if let Some(x) = &self.exchange {
            paths.push(("blob store", x.blobs.clone()));
        }
        paths
    }

    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let err = |field: &str, problem: String| ConfigError {
            file: file.to_path_buf(),
            field: field.into(),
            problem,
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| err("(file)", format!("cannot read: {e}")))?;
        Self::parse(file, &text).map_err(|(field, problem)| err(&field, problem))
    }

    fn parse(file: &Path, text: &str) -> Result<Self, (String, String)> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            // toml names unknown or missing fields in its message.
            ("(toml)".to_string(), msg)
        })?;
        let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let parse_addr = |field: &str, v: &str| -> Result<SocketAddr, (String, String)> {
            v.parse().map_err(|_| {
                (
                    field.to_string(),
                    format!("{v:?} is not an address like 127.0.0.1:7050"),
                )
            })
        };
        // The plain-HTTP listeners (metrics, public reads) carry no authentication: loopback
        // only unless the operator says otherwise (they belong behind a gateway).
        let plain_addr = |field: &str, v: &str| -> Result<SocketAddr, (String, String)> {
            let a = parse_addr(field, v)?;
            if !a.ip().is_loopback() && !raw.api.allow_non_loopback {
                return Err((
                    field.to_string(),
                    format!(
                        "{a} is not a loopback address; this plain-HTTP listener has no TLS and listens on loopback unless api.allow_non_loopback = true (put it behind your HTTPS/TLCP gateway)"
                    ),
                ));
            }
            Ok(a)
        };
        // The API listener speaks mutual GM TLS only: it may listen on any address.
        let listen = parse_addr("api.listen", &raw.api.listen)?;
        let metrics_listen = plain_addr("api.metrics_listen", &raw.api.metrics_listen)?;
        let public_listen = raw
            .api
            .public_listen
            .as_deref()
            .map(|v| plain_addr("api.public_listen", v))
            .transpose()?;
        let rest = match &raw.rest {
            None => crate::rest::RestConfig::default(),
            Some(r) => crate::rest::RestConfig {
                listen: r
                    .listen
                    .as_deref()
                    .map(|v| plain_addr("rest.listen", v))
                    .transpose()?,
                mode: match r.mode.as_str() {
                    "gateway" => crate::rest::RestMode::Gateway,
                    "public" => crate::rest::RestMode::Public,
                    other => {
                        return Err((
                            "rest.mode".into(),
                            format!(
                                "{other:?} is not a mode: \"gateway\" (reads and submission behind your gateway) or \"public\" (public reads only)"
                            ),
                        ));
                    }
                },
                public_person_names: r.public_person_names,
                public_raw: r.public_raw,
                conformance_report: r.conformance_report.as_deref().map(resolve),
                allowed_hosts: r.allowed_hosts.clone(),
                request_timeout: match r.request_timeout_secs {
                    1..=600 => std::time::Duration::from_secs(r.request_timeout_secs),
                    n => {
                        return Err((
                            "rest.request_timeout_secs".into(),
                            format!("{n} is outside 1..=600 seconds"),
                        ));
                    }
                },
            },
        };
        let mut taken = vec![("api.listen", listen)];
        for (field, a) in [
            ("api.metrics_listen", Some(metrics_listen)),
            ("api.public_listen", public_listen),
            ("rest.listen", rest.listen),
        ] {
            let Some(a) = a else { continue };
            if let Some((other, _)) = taken.iter().find(|(_, t)| *t == a) {
                return Err((
                    field.into(),
                    format!("{a} is also {other}; choose another port"),
                ));
            }
            taken.push((field, a));
        }
        let consensus = match &raw.consensus {
            None => None,
            Some(c) => {
                let listen = parse_addr("consensus.listen", &c.listen)?;
                if let Some((other, _)) = taken.iter().find(|(_, t)| *t == listen) {
                    return Err((
                        "consensus.listen".into(),
                        format!("{listen} is also {other}; choose another port"),
                    ));
                }
                let mut peers = Vec::with_capacity(c.peers.len());
                for (i, p) in c.peers.iter().enumerate() {
                    let address = parse_addr(&format!("consensus.peers[{i}].address"), &p.address)?;
                    if address == listen {
                        return Err((
                            format!("consensus.peers[{i}].address"),
                            format!("{address} is this node's own consensus.listen"),
                        ));
                    }
                    if p.name.is_empty() {
                        return Err((
                            format!("consensus.peers[{i}].name"),
                            "empty: give the CN of the peer's node-sign certificate".into(),
                        ));
                    }
                    peers.push(PeerConfig {
                        address,
                        name: p.name.clone(),
                        organisation: p.organisation.clone(),
                    });
                }
                for (field, v, min, max) in [
                    (
                        "consensus.timeout_propose_ms",
                        c.timeout_propose_ms,
                        10,
                        600_000,
                    ),
                    (
                        "consensus.timeout_prevote_ms",
                        c.timeout_prevote_ms,
                        10,
                        600_000,
                    ),
                    (
                        "consensus.timeout_precommit_ms",
                        c.timeout_precommit_ms,
                        10,
                        600_000,
                    ),
                    (
                        "consensus.timestamp_bound_ms",
                        c.timestamp_bound_ms,
                        100,
                        600_000,
                    ),
                ] {
                    if v < min || v > max {
                        return Err((field.into(), format!("{v} is outside {min}..={max}")));
                    }
                }
                Some(ConsensusConfig {
                    listen,
                    peers,
                    timeout_propose_ms: c.timeout_propose_ms,
                    timeout_prevote_ms: c.timeout_prevote_ms,
                    timeout_precommit_ms: c.timeout_precommit_ms,
                    timestamp_bound_ms: c.timestamp_bound_ms,
                })
            }
        };
        let check_key = |section: &str, k: &RawKey| -> Result<KeyConfig, (String, String)> {
            if k.key.starts_with("pkcs11:") {
                if k.hsm_profile.is_none() {
                    return Err((
                        format!("{section}.hsm_profile"),
                        "a pkcs11: key needs the module profile (hsm-profiles/…toml)".into(),
                    ));
                }
            } else if raw.mode == Mode::Production {
                // GM/T 0111 §7.1: a key file that uses a non-GM algorithm (OpenSSL's
                // PBKDF2-hmacWithSHA256) is named as such first; the file is read only for that.
                let path = resolve(Path::new(&k.key));
                let non_gm = std::fs::read(&path).ok().and_then(|bytes| {
                    match crypto_sm::keys::require_gm_key_file(&bytes) {
                        Ok(()) => None,
                        Err(crypto::CryptoError::KeyDecode { reason }) => Some(reason),
                        Err(e) => Some(e.to_string()),
                    }
                });
                return Err((
                    format!("{section}.key"),
                    match non_gm {
                        Some(e) => format!(
                            "{}: {e}; a production node uses GM algorithms only and keeps its key in a token (a pkcs11: URI)",
                            path.display()
                        ),
                        None => format!(
                            "{:?} is not a pkcs11: URI; production nodes keep their key in a token (set mode = \"development\" to use an encrypted key file)",
                            k.key
                        ),
                    },
                ));
            }
            if k.pass_file.is_some() && k.pass_env.is_some() {
                return Err((
                    format!("{section}.pass_env"),
                    "give pass_file or pass_env, not both".into(),
                ));
            }
            Ok(KeyConfig {
                key: if k.key.starts_with("pkcs11:") {
                    k.key.clone()
                } else {
                    resolve(Path::new(&k.key)).display().to_string()
                },
                hsm_profile: k.hsm_profile.as_deref().map(resolve),
                pass_file: k.pass_file.as_deref().map(resolve),
                pass_env: k.pass_env.clone(),
                certificate: resolve(&k.certificate),
            })
        };
        let key = check_key("key", &raw.key)?;
        let tls = raw.tls.as_ref().map(|k| check_key("tls", k)).transpose()?;
        let next_key = raw
            .next_key
            .as_ref()
            .map(|k| check_key("next_key", k))
            .transpose()?;
        let exchange = match &raw.exchange {
            None => None,
            Some(x) => {
                if !(1024..=(1u64 << 40)).contains(&x.max_blob_bytes) {
                    return Err((
                        "exchange.max_blob_bytes".into(),
                        format!("{} is outside 1024..=2^40", x.max_blob_bytes),
                    ));
                }
                Some(ExchangeConfig {
                    key: check_key("exchange.key", &x.key)?,
                    blobs: x
                        .blobs
                        .as_deref()
                        .map(resolve)
                        .unwrap_or_else(|| resolve(&raw.data_dir).join("blobs")),
                    max_blob_bytes: x.max_blob_bytes,
                })
            }
        };
        if raw.block.interval_ms == 0 || raw.block.interval_ms > 60_000 {
            return Err((
                "block.interval_ms".into(),
                format!("{} is outside 1..=60000", raw.block.interval_ms),
            ));
        }
        if raw.block.max_txs == 0 || raw.block.max_txs > 10_000 {
            return Err((
                "block.max_txs".into(),
                format!("{} is outside 1..=10000", raw.block.max_txs),
            ));
        }
        if raw.block.max_pool < raw.block.max_txs as usize {
            return Err((
                "block.max_pool".into(),
                format!(
                    "{} is below block.max_txs = {}",
                    raw.block.max_pool, raw.block.max_txs
                ),
            ));
        }
        for (field, v) in [
            ("api.max_connections", raw.api.max_connections),
            (
                "api.max_streams_per_connection",
                raw.api.max_streams_per_connection as usize,
            ),
            ("api.max_subscriptions", raw.api.max_subscriptions),
            (
                "api.max_connections_per_peer",
                raw.api.max_connections_per_peer,
            ),
            (
                "api.max_subscriptions_per_peer",
                raw.api.max_subscriptions_per_peer,
            ),
            ("api.max_batch_txs", raw.api.max_batch_txs),
        ] {
            if !(1..=1_000_000).contains(&v) {
                return Err((field.into(), format!("{v} is outside 1..=1000000")));
            }
        }
        // At least one transaction of the largest size the chain's parameters may take, at
        // most 256 MiB.
        let least = crate::submit_message_limit(types::Limits::default().max_tx_size);
        if !(least..=256 << 20).contains(&raw.api.max_batch_bytes) {
            return Err((
                "api.max_batch_bytes".into(),
                format!(
                    "{} is outside {least}..={} (one transaction of the largest max_tx_size, up to 256 MiB)",
                    raw.api.max_batch_bytes,
                    256 << 20
                ),
            ));
        }
        let api_limits = ApiLimits {
            max_connections: raw.api.max_connections,
            max_streams_per_connection: raw.api.max_streams_per_connection,
            max_subscriptions: raw.api.max_subscriptions,
            max_connections_per_peer: raw.api.max_connections_per_peer,
            max_subscriptions_per_peer: raw.api.max_subscriptions_per_peer,
            max_batch_txs: raw.api.max_batch_txs,
            max_batch_bytes: raw.api.max_batch_bytes,
        };
        let watch = crate::watch::parse(raw.watch.as_ref())?;
        let log_level = raw.log.level.clone().unwrap_or_else(|| "info".into());
        let chain = match raw.chain {
            None => {
                if !raw.organisations.is_empty() || !raw.validators.is_empty() {
                    return Err((
                        "chain".into(),
                        "organisations and validators need a [chain] section with chain_id".into(),
                    ));
                }
                None
            }
            Some(c) => Some(ChainDefinition {
                chain_id: c.chain_id,
                test_chain: c.test_chain,
                expiry_window: c.expiry_window,
                max_txs_per_block: c.max_txs_per_block,
                max_tx_size: c.max_tx_size,
                supervision: c.supervision.map(|s| SupervisionDefinition {
                    supervisor: s.supervisor,
                    freeze_policy: s.freeze_policy,
                    escrow: s.escrow.iter().map(|p| resolve(p)).collect(),
                }),
                organisations: raw
                    .organisations
                    .iter()
                    .map(|o| OrgDefinition {
                        name: o.name.clone(),
                        ca_cert: resolve(&o.ca_cert),
                        crl: resolve(&o.crl),
                        sponsors: o.sponsors.clone(),
                    })
                    .collect(),
                validators: raw
                    .validators
                    .iter()
                    .map(|v| (v.name.clone(), resolve(&v.cert)))
                    .collect(),
            }),
        };
        let audit = {
            let d = crate::audit::AuditConfig::default();
            let positive = |field: &str, v: Option<u64>, default: u64| match v {
                Some(0) => Err((
                    field.to_string(),
                    "must be at least 1 (a checkpoint signs the entries before it)".to_string(),
                )),
                Some(n) => Ok(n),
                None => Ok(default),
            };
            crate::audit::AuditConfig {
                checkpoint_entries: positive(
                    "audit.checkpoint_entries",
                    raw.audit.checkpoint_entries,
                    d.checkpoint_entries,
                )?,
                checkpoint_interval: std::time::Duration::from_secs(positive(
                    "audit.checkpoint_secs",
                    raw.audit.checkpoint_secs,
                    d.checkpoint_interval.as_secs(),
                )?),
                // 0: never anchored on the chain.
                anchor_interval: match raw.audit.anchor_secs {
                    Some(0) => None,
                    Some(n) => Some(std::time::Duration::from_secs(n)),
                    None => d.anchor_interval,
                },
            }
        };
        for (field, v) in [
            ("storage.min_free_mib", raw.storage.min_free_mib),
            ("storage.resume_margin_mib", raw.storage.resume_margin_mib),
        ] {
            if !(1..=MAX_STORAGE_MIB).contains(&v) {
                return Err((
                    field.into(),
                    format!(
                        "{v} is outside 1..={MAX_STORAGE_MIB} MiB (docs/ops/disk.md: the threshold and the margin above it at which the node resumes)"
                    ),
                ));
            }
        }
        let storage = StorageConfig {
            min_free_mib: raw.storage.min_free_mib,
            resume_margin_mib: raw.storage.resume_margin_mib,
        };
        Ok(NodeConfig {
            file: file.to_path_buf(),
            mode: raw.mode,
            data_dir: resolve(&raw.data_dir),
            key,
            tls,
            next_key,
            listen,
            metrics_listen,
            public_listen,
            api_limits,
            block: BlockConfig {
                interval_ms: raw.block.interval_ms,
                max_txs: raw.block.max_txs,
                max_pool: raw.block.max_pool,
            },
            log_format: raw.log.format,
            log_level,
            chain,
            consensus,
            exchange,
            watch,
            audit,
            rest,
            storage,
            keep_blocks: match raw.storage.keep_blocks {
                Some(n) if n < MIN_KEEP_BLOCKS => {
                    return Err((
                        "storage.keep_blocks".into(),
                        format!(
                            "{n}: keep at least {MIN_KEEP_BLOCKS} blocks (the tip and its parent); a pruned node answers sync requests only for the blocks it keeps, and a validator must not prune (docs/ops/snapshot.md)"
                        ),
                    ));
                }
                other => other,
            },
            state_cache_nodes: match raw.storage.state_cache_nodes {
                None => ledger::NODE_CACHE_CAPACITY,
                Some(n)
                    if (ledger::MIN_NODE_CACHE_CAPACITY as u64..=MAX_STATE_CACHE_NODES)
                        .contains(&n) =>
                {
                    n as usize
                }
                Some(n) => {
                    return Err((
                        "storage.state_cache_nodes".into(),
                        format!(
                            "{n}: give between {} and {MAX_STATE_CACHE_NODES} nodes (each 140-280 bytes of memory plus its value; default {})",
                            ledger::MIN_NODE_CACHE_CAPACITY,
                            ledger::NODE_CACHE_CAPACITY
                        ),
                    ));
                }
            },
        })
    }
}

/// The fewest blocks a pruned node keeps.
pub const MIN_KEEP_BLOCKS: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, (String, String)> {
        NodeConfig::parse(Path::new("/etc/gmchain/node.toml"), text)
    }

    const GOOD: &str = r#"
mode = "production"
data_dir = "data"
[key]
key = "pkcs11:token=node;object=node-sign"
hsm_profile = "/opt/profiles/softtoken.toml"
pass_file = "pin"
certificate = "node.crt.pem"
"#;

    /// `[storage] state_cache_nodes`: the default when absent, both ends of the range taken,
    /// one past each refused naming the field.
    #[test]
    fn state_cache_nodes_defaults_and_bounds() {
        assert_eq!(
            parse(GOOD).unwrap().state_cache_nodes,
            ledger::NODE_CACHE_CAPACITY
        );
        let c = parse(&format!("{GOOD}[storage]\nstate_cache_nodes = 1000000\n")).unwrap();
        assert_eq!(c.state_cache_nodes, 1_000_000);
        for good in [1_000usize, 50_000_000] {
            let c = parse(&format!("{GOOD}[storage]\nstate_cache_nodes = {good}\n")).unwrap();
            assert_eq!(c.state_cache_nodes, good);
        }
        for bad in ["999", "50000001"] {
            let (field, problem) =
                parse(&format!("{GOOD}[storage]\nstate_cache_nodes = {bad}\n")).unwrap_err();
            assert_eq!(field, "storage.state_cache_nodes");
            assert!(problem.starts_with(bad), "{problem}");
        }
    }

    /// Issue 18: `[storage] keep_blocks` is pruned mode; absent is an archive node; fewer than
    /// two blocks kept is refused, naming the field.
    #[test]
    fn keep_blocks_is_pruned_mode_and_at_least_two() {
        assert_eq!(parse(GOOD).unwrap().keep_blocks, None);
        let c = parse(&format!("{GOOD}[storage]\nkeep_blocks = 100\n")).unwrap();
        assert_eq!(c.keep_blocks, Some(100));
        let (field, problem) = parse(&format!("{GOOD}[storage]\nkeep_blocks = 1\n")).unwrap_err();
        assert_eq!(field, "storage.keep_blocks");
        assert!(problem.contains("keep at least 2 blocks"), "{problem}");
    }

    #[test]
    fn good_config_resolves_paths_and_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/gmchain/data"));
        assert_eq!(c.key.certificate, Path::new("/etc/gmchain/node.crt.pem"));
        assert_eq!(
            c.key.hsm_profile.as_deref(),
            Some(Path::new("/opt/profiles/softtoken.toml"))
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:7050");
        assert_eq!(c.block.max_txs, 2000);
        assert!(c.chain.is_none());
        assert!(c.watch.rules.is_empty(), "no watch rule unless configured");
        let watched = parse(&format!(
            "{GOOD}[[watch.rule]]\nname = \"refused\"\nkind = \"refused-signer\"\n"
        ))
        .unwrap();
        assert_eq!(watched.watch.rules[0].name, "refused");
    }

    #[test]
    fn bad_configs_name_their_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                GOOD.replace("pkcs11:token=node;object=node-sign", "node.key.pem"),
                "key.key",
            ),
            (
                GOOD.replace("hsm_profile = \"/opt/profiles/softtoken.toml\"\n", ""),
                "key.hsm_profile",
            ),
            (
                format!("{GOOD}[api]\nmetrics_listen = \"0.0.0.0:9150\"\n"),
                "api.metrics_listen",
            ),
            (
                format!("{GOOD}[api]\npublic_listen = \"10.0.0.1:7060\"\n"),
                "api.public_listen",
            ),
            (
                format!("{GOOD}[api]\npublic_listen = \"127.0.0.1:7050\"\n"),
                "api.public_listen",
            ),
            (
                GOOD.replace(
                    "[key]",
                    "[tls]\nkey = \"tls.key.pem\"\ncertificate = \"tls.crt\"\n\n[key]",
                ),
                "tls.key",
            ),
            (
                format!("{GOOD}[api]\nlisten = \"localhost\"\n"),
                "api.listen",
            ),
            (
                format!("{GOOD}[block]\ninterval_ms = 0\n"),
                "block.interval_ms",
            ),
            (format!("{GOOD}[block]\nmax_txs = 20000\n"), "block.max_txs"),
            (format!("{GOOD}colour = 1\n"), "(toml)"),
            (
                GOOD.replace("mode = \"production\"", "mode = \"fast\""),
                "(toml)",
            ),
            (
                format!("{GOOD}[[validators]]\nname = \"n\"\ncert = \"c\"\n"),
                "chain",
            ),
            (
                format!("{GOOD}[[watch.rule]]\nname = \"r\"\nkind = \"fetch-rate\"\n"),
                "watch.rule[0].max",
            ),
        ];
        for (text, field) in cases {
            let (f, problem) = parse(&text).unwrap_err();
            assert_eq!(f, field, "{problem}");
            assert!(!problem.is_empty());
        }
    }

    #[test]
    fn storage_threshold_defaults_and_refuses_out_of_range_values() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.storage, StorageConfig::default());
        assert_eq!(c.storage.min_free_bytes(), 1024 << 20);
        assert_eq!(c.storage.resume_bytes(), (1024 + 256) << 20);
        let c = parse(&format!(
            "{GOOD}[storage]\nmin_free_mib = 16\nresume_margin_mib = 8\n"
        ))
        .unwrap();
        assert_eq!(c.storage.min_free_bytes(), 16 << 20);
        assert_eq!(c.storage.resume_bytes(), 24 << 20);
        for (text, field) in [
            ("min_free_mib = 0", "storage.min_free_mib"),
            ("resume_margin_mib = 0", "storage.resume_margin_mib"),
            ("min_free_mib = 1048577", "storage.min_free_mib"),
            ("min_free_mib = -1", "(toml)"),
            ("min_free = 10", "(toml)"),
        ] {
            let (f, why) = parse(&format!("{GOOD}[storage]\n{text}\n")).unwrap_err();
            assert_eq!(f, field, "{text}: {why}");
            assert_eq!(why.lines().count(), 1, "{why}");
        }
    }

    #[test]
    fn audit_checkpoints_default_and_refuse_zero() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.audit, crate::audit::AuditConfig::default());
        assert_eq!(c.audit.checkpoint_entries, 1000);
        let c = parse(&format!(
            "{GOOD}[audit]\ncheckpoint_entries = 10\ncheckpoint_secs = 5\n"
        ))
        .unwrap();
        assert_eq!(c.audit.checkpoint_entries, 10);
        assert_eq!(c.audit.checkpoint_interval.as_secs(), 5);
        for (text, field) in [
            ("checkpoint_entries = 0", "audit.checkpoint_entries"),
            ("checkpoint_secs = 0", "audit.checkpoint_secs"),
            ("every = 3", "(toml)"),
        ] {
            let (f, _) = parse(&format!("{GOOD}[audit]\n{text}\n")).unwrap_err();
            assert_eq!(f, field, "{text}");
        }
    }

    #[test]
    fn exchange_custody_defaults_its_blob_store_and_checks_its_limit() {
        let section = "[exchange.key]\nkey = \"pkcs11:token=node;object=node-enc\"\nhsm_profile = \"p.toml\"\npass_file = \"pin\"\ncertificate = \"node.enc.crt.pem\"\n";
        let c = parse(&format!("{GOOD}{section}")).unwrap();
        let x = c.exchange.unwrap();
        assert_eq!(x.blobs, Path::new("/etc/gmchain/data/blobs"));
        assert_eq!(x.max_blob_bytes, 1 << 30);
        assert_eq!(
            x.key.certificate,
            Path::new("/etc/gmchain/node.enc.crt.pem")
        );
        assert!(parse(GOOD).unwrap().exchange.is_none());
        let (field, why) =
            parse(&format!("{GOOD}[exchange]\nmax_blob_bytes = 10\n{section}")).unwrap_err();
        assert_eq!(field, "exchange.max_blob_bytes");
        assert!(why.contains("outside"), "{why}");
        let (field, _) = parse(&format!("{GOOD}[exchange]\nblobz = \"x\"\n{section}")).unwrap_err();
        assert_eq!(field, "(toml)", "an unknown key in [exchange] is refused");
    }

    #[test]
    fn the_mutual_tls_api_may_listen_beyond_loopback() {
        let c = parse(&format!("{GOOD}[api]\nlisten = \"0.0.0.0:7050\"\n")).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:7050");
        assert!(c.public_listen.is_none() && c.tls.is_none());
    }

    /// Writes `name` in `dir`: an SM2 key encrypted as `openssl pkcs8 -topk8 -v2 sm4-cbc -v2prf
    /// PRF` writes it (OpenSSL 3 has no HMAC-SM3 PRF), passphrase "pass".
    fn openssl_key_file(dir: &Path, name: &str, prf: &str) {
        let run = |args: &[&str]| {
            let o = std::process::Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("openssl must be installed (the README's test command installs it)");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "plain.pem",
        ]);
        run(&[
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-v2",
            "sm4-cbc",
            "-v2prf",
            prf,
            "-passout",
            "pass:pass",
            "-out",
            name,
        ]);
    }

    /// GM/T 0111 §7.1: a production node uses GM algorithms only. A key file protected with
    /// OpenSSL's PBKDF2-hmacWithSHA256 is refused with an error naming the PRF; development mode
    /// still takes it (interoperability).
    #[test]
    fn production_refuses_a_non_gm_key_file_naming_its_prf() {
        let dir = tempfile::tempdir().unwrap();
        openssl_key_file(dir.path(), "node.key.pem", "hmacWithSHA256");
        let file = dir.path().join("node.toml");
        let text = GOOD.replace("pkcs11:token=node;object=node-sign", "node.key.pem");
        let (field, problem) = NodeConfig::parse(&file, &text).unwrap_err();
        assert_eq!(field, "key.key", "{problem}");
        assert!(
            problem.contains("hmacWithSHA256") && problem.contains("not a GM algorithm"),
            "the refusal must name the PRF: {problem}"
        );
        assert_eq!(problem.lines().count(), 1, "{problem}");
        let dev =
            NodeConfig::parse(&file, &text.replace("\"production\"", "\"development\"")).unwrap();
        assert_eq!(
            dev.key.key,
            dir.path().join("node.key.pem").display().to_string()
        );
    }

    #[test]
    fn development_mode_allows_an_encrypted_key_file() {
        let text = GOOD
            .replace("production", "development")
            .replace("pkcs11:token=node;object=node-sign", "keys/node.key.pem");
        let c = parse(&text).unwrap();
        assert_eq!(c.key.key, "/etc/gmchain/keys/node.key.pem");
    }
}
