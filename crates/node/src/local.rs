//! The local node: the ledger (crates/ledger), the pool and the single-validator engine, without
//! the network. The gRPC service and the producer thread call into it. The engine proposes a
//! block from the pool's oldest transactions (the pool hands them out without removing them),
//! signs its own precommit in the token (a one-validator commit certificate) and commits
//! through the ledger; the pool drops a transaction only when its block commits or the
//! re-check refuses it, so a failed round loses nothing.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crypto::{Digest, Signer};
use execution::{Genesis, MemberRefusal, RejectCode, Rejection, SignerInfo, StateView};
use ledger::{CachedNodes, Ledger};
use pki::{Certificate, UnixTime};
use receipt::ReceiptBundle;
use storage::{ChainStore, Tip};
use storage_rocksdb::RocksBackend;
use tokio::sync::{broadcast, oneshot};
use types::{
    Block, BlockHash, BlockHeader, CommitCertificate, Encode, Height, Receipt, Sender, SignedTx,
    TxId, Vote, VoteKind,
};

use crate::config::BlockConfig;
use crate::error::NodeError;
use crate::metrics::Metrics;
use crate::pool::{Outcome, Pool, PoolRefusal};
use crate::watch::{BlockFacts, Watcher};

/// A clock in milliseconds since the Unix epoch (the node passes the system clock; tests a
/// fixed one).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The identity the node seals blocks with.
pub struct Validator {
    /// The signing key (normally a handle in the token).
    pub signer: Arc<dyn Signer>,
    /// Its certificate, one of the genesis validators.
    pub certificate: Certificate,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("certificate", &self.certificate.subject())
            .finish_non_exhaustive()
    }
}

struct Wake {
    stop: bool,
}

/// How the node decides blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Alone: the node is the whole validator set (the producer thread).
    Single,
    /// With the other validators, by BFT consensus (`crate::bft`); or as a follower.
    Bft,
}

/// Where an admitted transaction is sent on to the other nodes (BFT: the p2p gossip).
pub type Gossip = Box<dyn Fn(&[u8]) + Send + Sync>;

/// What [`LocalNode::commit_or_hold`] did with a decided block.
#[derive(Debug)]
pub enum Committed {
    /// The block is in the store.
    Written,
    /// Nothing was written: the free space was below `[storage] min_free_mib` at the reading
    /// right before the write (`crate::disk`). The block and its certificate, to commit once
    /// the space returns, and why.
    Held {
        /// The block and its certificate, as given.
        block: Box<(ledger::ExecutedBlock, CommitCertificate)>,
        /// The guard's reason.
        why: String,
    },
}

/// The node without its network.
pub struct LocalNode {
    ledger: Ledger<RocksBackend>,
    engine: Engine,
    gossip: std::sync::OnceLock<Gossip>,
    pool: Mutex<Pool>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
    validator: Validator,
    validator_id: Digest,
    // The `[next_key]` identity, for a rotation decided by governance: the node decides with
    // it from the first height whose validator set holds it.
    next_validator: Mutex<Option<Validator>>,
    block: BlockConfig,
    clock: Clock,
    /// The node's metrics.
    pub metrics: Arc<Metrics>,
    blocks: broadcast::Sender<Height>,
    // Serialises block production (one producer, but `produce_block` is public for tests).
    producing: Mutex<()>,
    // When the validators' certificates were last checked for expiry.
    expiry_checked: Mutex<Option<Instant>>,
    // Pruned mode: the number of heights whose blocks and receipts are kept (`[storage]
    // keep_blocks`); unset, an archive node.
    keep_blocks: std::sync::OnceLock<u64>,
    // Pruned mode: the last batch stopped short of its target (prune again next height).
    prune_behind: std::sync::atomic::AtomicBool,
    // Pruned mode: suspended because this node became a validator (said once).
    prune_suspended: std::sync::atomic::AtomicBool,
    // The watch rules (`crate::watch`), once `run` (or a test) sets them.
    watcher: std::sync::OnceLock<Arc<Watcher>>,
    // The node's audit log (`audit`), set once at start; unset, nothing is recorded.
    audit: std::sync::OnceLock<crate::audit::NodeAudit>,
    // The free-space guard of the data directory (`crate::disk`), set once by `run`; unset
    // (a node driven in process by a test or a benchmark), no write is held back.
    disk: std::sync::OnceLock<Arc<crate::disk::DiskGuard>>,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode")
            .field("chain_id", &self.ledger.genesis().chain_id)
            .field("validator", &self.validator)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug; the data (a pool) stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the data directory's store from `genesis`: writes `genesis.json` and commits
/// block 0. Refuses a directory that already holds a store.
pub fn init(data_dir: &Path, genesis: &Genesis) -> Result<BlockHash, NodeError> {
    genesis
        .require_current_format()
        .map_err(|e| NodeError::Genesis {
            path: "the genesis".into(),
            message: e.to_string(),
        })?;
    let db = data_dir.join("db");
    if db.join("CURRENT").exists() {
        return Err(NodeError::AlreadyInitialised {
            path: db.display().to_string(),
        });
    }
    std::fs::create_dir_all(data_dir).map_err(|e| NodeError::io(data_dir, e))?;
    let genesis_file = data_dir.join("genesis.json");
    write_atomic(&genesis_file, genesis.to_json().as_bytes())?;
    let backend = RocksBackend::open(&db, true)?;
    // The store decodes under the ceiling: the chain's parameters may grow up to it by
    // governance; admission and the ledger enforce the ones in force.
    let store = ChainStore::new(backend, types::Limits::default());
    Ok(ledger::init(&store, genesis)?)
}

/// Writes `data` to `path` (mode 0644) through a temporary file with an unpredictable name,
/// fsync, rename and fsync of the directory ([`safefile::write_atomic`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    safefile::write_atomic(path, data, safefile::Mode::PUBLIC).map_err(|e| {
        let (_, path, source) = e.into_parts();
        NodeError::io(&path, source)
    })
}

/// Reads a genesis file of any format this build knows (for verifying receipts).
pub fn read_genesis(path: &Path) -> Result<Genesis, NodeError> {
    let bytes = std::fs::read(path).map_err(|e| NodeError::io(path, e))?;
    Genesis::from_json(&bytes).map_err(|e| NodeError::Genesis {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads a genesis file a node of this build can run: the current format only.
pub fn read_node_genesis(path: &Path) -> Result<Genesis, NodeError> {
    let g = read_genesis(path)?;
    g.require_current_format().map_err(|e| NodeError::Genesis {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(g)
}

/// A pruned node prunes every this many heights (one batch each time).
pub const PRUNE_EVERY: u64 = 8;

impl LocalNode {
    /// Opens the store in `data_dir`, checks its tip (refusing a tampered or half-written
    /// store, naming the height), that its block 0 is this genesis, and that `validator` is a
    /// genesis validator holding the key of its certificate.
    pub fn open(
        data_dir: &Path,
        validator: Validator,
        block: BlockConfig,
        clock: Clock,
    ) -> Result<Self, NodeError> {
        Self::open_with(data_dir, validator, block, clock, Engine::Single)
    }

    /// [`LocalNode::open`] for `engine`: the single-validator engine needs the node to be the
    /// whole validator set; under BFT it may be one validator of several, or a follower (its
    /// certificate not in the set: it verifies and serves, never votes).
    pub fn open_with(
        data_dir: &Path,
        validator: Validator,
        block: BlockConfig,
        clock: Clock,
        engine: Engine,
    ) -> Result<Self, NodeError> {
        let genesis = read_node_genesis(&data_dir.join("genesis.json"))?;
        let backend = RocksBackend::open(&data_dir.join("db"), false)?;
        // RocksBackend::open refused a store of another layout version before opening it.
        // Decoded under the ceiling, since governance may raise the parameters up to it.
        let store = ChainStore::new(backend, types::Limits::default());
        let validator_id = validator.certificate.fingerprint();
        if engine == Engine::Single && genesis.validator(&validator_id).is_none() {
            return Err(NodeError::NotAValidator {
                subject: validator.certificate.subject(),
            });
        }
        if validator.signer.public_key() != validator.certificate.public_key() {
            return Err(NodeError::KeyCertificateMismatch {
                subject: validator.certificate.subject(),
            });
        }
        // This engine decides alone: its own precommit must be a quorum.
        if engine == Engine::Single && genesis.validators.len() != 1 {
            return Err(NodeError::NotSingleValidator {
                count: genesis.validators.len(),
            });
        }
        // A single validator restored from a backup or a snapshot has no peer to learn from
        // how far its backed-up instance signed: refused until an operator releases the guard
        // (review r4 M3; docs/ops/backup.md).
        if engine == Engine::Single && crate::restored::read(store.backend())?.is_some() {
            return Err(NodeError::RestoredSingleValidator {
                tip: store.tip()?.map_or(0, |t| t.height.0),
            });
        }
        let ledger = Ledger::open(store, genesis)?;
        let metrics = Arc::new(Metrics::default());
        let head = ledger.head();
        metrics
            .height
            .store(head.tip.height.0, std::sync::atomic::Ordering::Relaxed);
        let lowest = ledger.store().lowest_held()?;
        metrics
            .lowest_held
            .store(lowest.0, std::sync::atomic::Ordering::Relaxed);
        if let Some(base) = ledger.store().base()?.filter(|b| b.height > Height(0)) {
            tracing::info!(
                base = base.height.0,
                tip = head.tip.height.0,
                "store initialised from a snapshot at height {}: holds heights from {lowest}; syncing forward from the tip",
                base.height.0
            );
            if head.tip.height == base.height {
                metrics
                    .snapshot_unconfirmed
                    .store(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    base = base.height.0,
                    hash = %base.hash,
                    "snapshot base {} ({}) not yet confirmed: only the snapshot's certificate vouches for this state until a block after it, certified by the validators, is committed (a snapshot certified by a retired validator set would never be followed by one; docs/ops/snapshot.md, trust)",
                    base.height.0,
                    base.hash
                );
            }
        }
        let (blocks, _) = broadcast::channel(256);
        // Blocks are filled up to what the store will read back.
        let block_budget = ledger
            .store()
            .limits()
            .block_tx_budget(&ledger.genesis().chain_id);
        Ok(Self {
            ledger,
            engine,
            gossip: std::sync::OnceLock::new(),
            pool: Mutex::new(Pool::new(block.max_pool, block_budget)),
            wake: Mutex::new(Wake { stop: false }),
            wake_cv: Condvar::new(),
            validator,
            validator_id,
            block,
            clock,
            metrics,
            blocks,
            producing: Mutex::new(()),
            next_validator: Mutex::new(None),
            expiry_checked: Mutex::new(None),
            watcher: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
            disk: std::sync::OnceLock::new(),
            keep_blocks: std::sync::OnceLock::new(),
            prune_behind: std::sync::atomic::AtomicBool::new(false),
            prune_suspended: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger<RocksBackend> {
        &self.ledger
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        self.ledger.genesis()
    }

    /// The hash of block 0.
    pub fn genesis_hash(&self) -> BlockHash {
        self.ledger.genesis_hash()
    }

    /// The store (read side).
    pub fn store(&self) -> &ChainStore<RocksBackend> {
        self.ledger.store()
    }

    /// The sealing validator's certificate.
    pub fn validator(&self) -> &Certificate {
        &self.validator.certificate
    }

    /// The current tip and its header (kept in memory: reading it cannot fail).
    pub fn tip(&self) -> (Tip, BlockHeader) {
        let head = self.ledger.head();
        (head.tip, head.header)
    }

    /// Subscribes to committed heights.
    pub fn subscribe(&self) -> broadcast::Receiver<Height> {
        self.blocks.subscribe()
    }

    /// Transactions waiting.
    pub fn pool_size(&self) -> usize {
        lock(&self.pool).len()
    }

    fn now_secs(&self) -> UnixTime {
        UnixTime((self.clock)() / 1000)
    }

    /// Sets the node's audit log (once; a second call is ignored).
    pub fn set_audit(&self, audit: crate::audit::NodeAudit) {
        let _ = self.metrics.audit.set(audit.clone());
        let _ = self.audit.set(audit);
    }

    /// The node's audit log (a handle that records nothing if none was set).
    pub fn audit(&self) -> &crate::audit::NodeAudit {
        static NONE: std::sync::OnceLock<crate::audit::NodeAudit> = std::sync::OnceLock::new();
        self.audit
            .get()
            .unwrap_or_else(|| NONE.get_or_init(Default::default))
    }

    /// Sets the free-space guard of the data directory (once; a second call is ignored).
    pub fn set_disk(&self, disk: Arc<crate::disk::DiskGuard>) {
        let _ = self.disk.set(disk);
    }

    /// The free-space guard, once `run` set it.
    pub fn disk(&self) -> Option<&Arc<crate::disk::DiskGuard>> {
        self.disk.get()
    }

    /// The refusal of a new transaction or upload while the free space is low (the last
    /// reading: admission writes nothing, so no system call).
    pub fn storage_refusal(&self) -> Option<Rejection> {
        self.disk().filter(|d| d.is_low()).map(|d| d.rejection())
    }

    /// Whether the node is low on space as of the last reading (no system call).
    pub fn storage_low(&self) -> bool {
        self.disk().is_some_and(|d| d.is_low())
    }

    /// Reads the free space now: `Err(NodeError::StorageLow)` if a write must not start.
    /// Every step that writes the store (a commit; a consensus input, which may append to the
    /// WAL) calls this right before it.
    pub fn require_writable(&self) -> Result<(), NodeError> {
        match self.disk() {
            Some(d) if d.check().low => Err(NodeError::StorageLow(d.reason())),
            _ => Ok(()),
        }
    }

    /// The validator's signing key (the TLS listener presents the same key unless `[tls]`
    /// names another).
    pub fn validator_signer(&self) -> Arc<dyn Signer> {
        self.validator.signer.clone()
    }

    /// The CA that issued `leaf`, if it is the active registered CA of an organisation
    /// registered after genesis (a genesis CA is every member's anchor and is not sent).
    pub fn registered_issuer(&self, leaf: &Certificate) -> Option<Certificate> {
        self.with_state(|v| v.organisations())
            .ok()?
            .ok()?
            .into_iter()
            .filter(|o| o.is_active() && !o.is_founding())
            .map(|o| o.ca_cert)
            .find(|ca| {
                ca.subject() == leaf.issuer()
                    && leaf
                        .verify_signed_by(&ca.public_key(), &crypto::UserId::default())
                        .is_ok()
            })
    }

    /// The node's clock, in seconds: the time certificates and CRLs are judged at.
    pub fn now(&self) -> UnixTime {
        self.now_secs()
    }

    /// Authenticates a member by its certificate at the tip's state, as admission judges a
    /// transaction's signer (the TLS listeners' peers).
    pub fn authenticate(&self, leaf: &Certificate) -> Result<SignerInfo, MemberRefusal> {
        let r = self.ledger.authenticate(self.now_secs(), leaf);
        // A frozen identity that tries to connect is what the refused-signer rules watch for:
        // it never reaches admission, its handshake is refused here.
        if let Err(MemberRefusal::Frozen(code, why)) = &r
            && let Some(w) = self.watcher()
            && w.watches_code(code.as_str())
        {
            w.refused(
                self.tip().0.height.0,
                code.as_str(),
                &leaf.fingerprint().to_hex(),
                why,
            );
        }
        r
    }

    /// Admits `bytes` (a canonical SignedTx) into the pool. With `wait`, also returns a
    /// receiver for its outcome, registered before any block can take it.
    pub fn submit(
        &self,
        bytes: &[u8],
        wait: bool,
    ) -> Result<(TxId, Option<oneshot::Receiver<Outcome>>), Rejection> {
        self.submit_inner(bytes, wait, true)
    }

    /// Admits a transaction a peer gossiped (the links relay it on; it is not sent again).
    pub fn submit_from_peer(&self, bytes: &[u8]) -> Result<TxId, Rejection> {
        self.submit_inner(bytes, false, false).map(|(id, _)| id)
    }

    fn submit_inner(
        &self,
        bytes: &[u8],
        wait: bool,
        gossip: bool,
    ) -> Result<(TxId, Option<oneshot::Receiver<Outcome>>), Rejection> {
        let started = Instant::now();
        // A storage read error is not "unseen": admission refuses (TX_STATE_UNAVAILABLE).
        let in_pool = |id: &TxId| lock(&self.pool).contains(id);
        let verified = self
            .ledger
            .admit(bytes, self.now_secs(), &in_pool)
            .inspect_err(|r| {
                self.metrics.rejected(r.code.as_str());
                self.watch_refusal(r, || {
                    <SignedTx as types::Decode>::from_bytes(bytes, self.ledger.store().limits())
                        .map(|t| crate::watch::signer_id(&t.tx.sender).to_hex())
                        .unwrap_or_else(|_| "unknown".into())
                });
            })?;
        self.metrics.verify.observe(started.elapsed());
        // Low on space: nothing is admitted that could not be committed (NODE_STORAGE_LOW).
        // After the lookup: a transaction already waiting or committed is answered as such
        // (TX_DUPLICATE), whatever the space.
        if let Some(r) = self.storage_refusal() {
            self.metrics.rejected(r.code.as_str());
            return Err(r);
        }
        let id = verified.id();
        let rx = {
            let mut pool = lock(&self.pool);
            match pool.insert(verified) {
                Ok(()) => {}
                Err(PoolRefusal::Duplicate) => {
                    let r = Rejection::new(
                        RejectCode::Duplicate,
                        format!("transaction {id} is already waiting in the pool"),
                    );
                    self.metrics.rejected(r.code.as_str());
                    return Err(r);
                }
                Err(PoolRefusal::LargerThanABlock { len, budget }) => {
                    // Unreachable with a checked genesis (max_tx_size fits one block); kept so
                    // that no transaction waits for a block that could never hold it.
                    let r = Rejection::new(
                        RejectCode::TooLarge,
                        format!(
                            "the transaction takes {len} bytes in a block, more than a block's budget of {budget} bytes"
                        ),
                    );
                    self.metrics.rejected(r.code.as_str());
                    return Err(r);
                }
                Err(PoolRefusal::Full { max }) => {
                    let r = Rejection::new(
                        RejectCode::PoolFull,
                        format!(
                            "the pool holds its maximum of {max} transactions; retry after the next block"
                        ),
                    );
                    self.metrics.rejected(r.code.as_str());
                    return Err(r);
                }
            }
            let rx = wait.then(|| pool.wait(id));
            self.metrics
                .pool_size
                .store(pool.len() as u64, std::sync::atomic::Ordering::Relaxed);
            rx
        };
        self.metrics
            .txs_admitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if gossip && let Some(g) = self.gossip.get() {
            g(bytes);
        }
        // Notify under the wake lock: the producer checks the pool and starts waiting while
        // holding it, so the notification cannot fall between the two.
        let _wake = lock(&self.wake);
        self.wake_cv.notify_all();
        Ok((id, rx))
    }

    /// The most transactions in a block: the node's setting, within the chain's
    /// `max_txs_per_block` in force after the head (the ledger caches it per state root;
    /// the store's decoding ceiling if the state cannot be read, and the ledger's proposer
    /// still bounds the block).
    fn max_txs(&self) -> usize {
        let chain = self.ledger.params().map_or_else(
            |_| self.ledger.store().limits().max_txs_per_block,
            |p| p.params.limits().max_txs_per_block,
        );
        usize::try_from(self.block.max_txs)
            .unwrap_or(usize::MAX)
            .min(chain)
    }

    /// Whether the pool holds a full block, by count or by bytes.
    fn pool_holds_a_block(&self) -> bool {
        lock(&self.pool).holds_a_block(self.max_txs())
    }

    /// Decides the next block alone: the pool hands out its oldest transactions, up to the
    /// block's count and byte budget (the pool's; derived from the `max_block_size` the store
    /// reads blocks under, so every block read back), without removing them; the ledger
    /// re-checks each (revocation, suspension, expiry, duplicates, permissions) and executes
    /// them; the validator signs its precommit in the token, which is the whole commit
    /// certificate of a one-validator set; the ledger commits block, receipts, state and
    /// certificate in one synced batch. Only then does the pool drop the committed
    /// transactions (and the ones the re-check refused). Returns the new height, or `None` if
    /// nothing was left to commit.
    ///
    /// Below the free-space threshold (`crate::disk`) nothing is produced: `None`, the pool
    /// untouched; a block made while the space ran out is dropped before its write (its
    /// precommit never left the node), and made again once the space returns.
    pub fn produce_block(&self) -> Result<Option<Height>, NodeError> {
        let _one = lock(&self.producing);
        if self.require_writable().is_err() {
            return Ok(None);
        }
        let candidates = lock(&self.pool).peek(self.max_txs());
        if candidates.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let proposed = self
            .ledger
            .propose(candidates, self.validator_id, (self.clock)())?;
        self.metrics.execute.observe(started.elapsed());
        self.drop_refused(proposed.dropped);
        let executed = proposed.executed;
        if executed.block().txs.is_empty() {
            self.update_pool_gauge();
            return Ok(None);
        }
        let height = executed.height();
        let hash = executed.hash();
        let precommit = Vote {
            chain_id: self.ledger.genesis().chain_id.clone(),
            height,
            round: 0,
            kind: VoteKind::Precommit,
            block: Some(hash),
            validator: self.validator_id,
        }
        .sign(self.validator.signer.as_ref())
        .map_err(NodeError::Seal)?;
        let certificate = CommitCertificate::from_votes(height, 0, hash, [&precommit]);
        self.metrics
            .hsm_signatures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.commit(executed, certificate) {
            Ok(()) => Ok(Some(height)),
            Err(NodeError::StorageLow(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Commits a decided block through the ledger (which checks the certificate), then drops
    /// its transactions from the pool and answers the clients waiting for them: only after the
    /// synced batch returned. Reads the free space first: below the threshold nothing is
    /// written ([`NodeError::StorageLow`]; the caller drops the block, or keeps it through
    /// [`LocalNode::commit_or_hold`]).
    pub fn commit(
        &self,
        executed: ledger::ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        match self.commit_or_hold(executed, certificate)? {
            Committed::Written => Ok(()),
            Committed::Held { why, .. } => Err(NodeError::StorageLow(why)),
        }
    }

    /// [`LocalNode::commit`], giving the block and its certificate back unwritten
    /// ([`Committed::Held`]) when the reading right before the write is below the free-space
    /// threshold: the one reading that decides whether the write starts is this one, so a
    /// caller that must not lose a decided block keeps it whenever the space ran out.
    pub fn commit_or_hold(
        &self,
        executed: ledger::ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<Committed, NodeError> {
        if let Some(d) = self.disk()
            && d.check().low
        {
            return Ok(Committed::Held {
                block: Box::new((executed, certificate)),
                why: d.reason(),
            });
        }
        self.write_block(executed, certificate)?;
        Ok(Committed::Written)
    }

    fn write_block(
        &self,
        executed: ledger::ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        let height = executed.height();
        let hash = executed.hash();
        let ids = executed.tx_ids();
        let receipts = executed.receipts().to_vec();
        // The watch rules read the block before the ledger takes it (no copy of it is kept).
        // The supervisor's freezes this node applies go into its audit log ("freezes served").
        let freezes: Vec<String> = executed
            .block()
            .txs
            .iter()
            .zip(&receipts)
            .filter(|(t, r)| {
                t.tx.call.contract == "supervision" && r.status == types::Status::Success
            })
            .map(|(t, _)| {
                let a = &t.tx.call.args;
                let text = |i: usize| {
                    a.get(i)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                };
                format!(
                    "{} {} {:?} at height {}: {:?} (transaction {})",
                    t.tx.call.method,
                    text(0),
                    text(1),
                    height.0,
                    text(2),
                    t.tx_id()
                )
            })
            .collect();
        let facts = self.watcher().filter(|w| w.watches_blocks()).map(|_| {
            BlockFacts::of(
                executed.block(),
                &receipts,
                &certificate,
                &self.ledger.validator_set(height),
            )
        });
        let started = Instant::now();
        self.ledger.commit(executed, certificate)?;
        self.metrics.commit.observe(started.elapsed());
        // The metrics count the block before any client hears of it: a client that reads them
        // after its acknowledgement sees its own transaction counted.
        let m = &self.metrics;
        use std::sync::atomic::Ordering::Relaxed;
        m.height.store(height.0, Relaxed);
        m.blocks_committed.fetch_add(1, Relaxed);
        m.txs_committed.fetch_add(receipts.len() as u64, Relaxed);
        let fuel: u64 = receipts
            .iter()
            .filter_map(|r| r.fuel_used)
            .fold(0, u64::saturating_add);
        m.contract_fuel_used.fetch_add(fuel, Relaxed);
        self.publish_module_cache();
        m.wal_syncs
            .store(self.ledger.store().backend().stats().wal_syncs, Relaxed);
        m.signature_cache_hits
            .store(self.ledger.admission().signature_cache_hits(), Relaxed);
        {
            let mut pool = lock(&self.pool);
            for (i, (id, r)) in ids.iter().zip(&receipts).enumerate() {
                pool.remove(id);
                pool.resolve(
                    id,
                    Outcome::Committed {
                        height,
                        position: i as u32,
                        receipt: r.clone(),
                    },
                );
            }
        }
        self.update_pool_gauge();
        tracing::info!(height = height.0, txs = receipts.len(), hash = %hash, "block committed");
        for f in &freezes {
            self.audit()
                .record("supervision.freeze-served", auditlog::Outcome::Done, f);
        }
        self.watch_validator_expiry(height);
        if let (Some(w), Some(facts)) = (self.watcher(), facts) {
            w.committed(&facts);
        }
        self.prune(height);
        if self
            .metrics
            .snapshot_unconfirmed
            .swap(0, std::sync::atomic::Ordering::Relaxed)
            == 1
        {
            tracing::info!(
                height = height.0,
                "snapshot base confirmed: block {} was committed on it with its commit certificate",
                height.0
            );
        }
        // Nobody listening is fine.
        let _ = self.blocks.send(height);
        Ok(())
    }

    /// Pruned mode: keep the blocks and receipts of the last `n` heights only (set once,
    /// before the node runs; a second call is ignored). Refused on a validator of the next
    /// height's set ([`NodeError::PrunedValidator`]): a pruned node does not answer sync
    /// requests below its mark (the sync protocol has no "pruned" answer, and 0.1.0 peers
    /// must keep deciding with this release), so validators are archive nodes and any node
    /// falling behind finds the blocks it needs on them.
    pub fn set_keep_blocks(&self, n: u64) -> Result<(), NodeError> {
        let next = self
            .tip()
            .0
            .height
            .next()
            .ok_or(NodeError::HeightOverflow)?;
        if self.decides(next) {
            return Err(NodeError::PrunedValidator {
                subject: self.validator.certificate.subject(),
                keep: n,
            });
        }
        let window = self
            .ledger
            .params()
            .map(|p| p.params.expiry_window)
            .unwrap_or(0);
        tracing::info!(
            keep_blocks = n,
            "pruned mode: keeping the blocks and receipts of the last {n} heights; this node answers sync requests for those only: a peer more than {n} heights behind catches up from an archive node (validators are){}",
            if n < window {
                format!(" (keep_blocks is below the chain's expiry window {window})")
            } else {
                String::new()
            }
        );
        let _ = self.keep_blocks.set(n);
        Ok(())
    }

    /// Whether this node (its `[key]` or its `[next_key]`) is a validator of `height`'s set.
    fn decides(&self, height: Height) -> bool {
        let set = self.ledger.validator_set(height);
        set.get(&self.validator_id).is_some()
            || lock(&self.next_validator)
                .as_ref()
                .is_some_and(|n| set.get(&n.certificate.fingerprint()).is_some())
    }

    /// After a commit at `height` in pruned mode, every [`PRUNE_EVERY`] heights (every
    /// height while a batch stopped short of the target): deletes the blocks and receipts
    /// below `height + 1 − keep_blocks`, at most [`storage::PRUNE_BATCH_DELETES`] deletions a
    /// batch, keeping the blocks that hold the causes of validator-set changes (receipts and
    /// snapshots prove them). Headers, certificates and the transaction index stay, so
    /// duplicates are still found. A node that governance made a validator stops pruning and
    /// says so (validators are archive nodes; it refuses keep_blocks at its next start). A
    /// failure is logged and retried at the next round: nothing is half-deleted (one batch).
    fn prune(&self, height: Height) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(keep) = self.keep_blocks.get().copied() else {
            return;
        };
        if !self.prune_behind.load(Relaxed) && !height.0.is_multiple_of(PRUNE_EVERY) {
            return;
        }
        if height.next().is_some_and(|next| self.decides(next)) {
            if !self.prune_suspended.swap(true, Relaxed) {
                tracing::warn!(
                    height = height.0,
                    "pruned mode suspended: this node is now a validator of the current set (a governance change); validators keep every block so that peers falling behind can sync from them; remove [storage] keep_blocks from its configuration (it refuses to start with it while a validator)"
                );
            }
            return;
        }
        self.prune_suspended.store(false, Relaxed);
        let below = Height((height.0 + 1).saturating_sub(keep));
        let kept = match self.ledger.set_change_blocks() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(
                    "pruned mode: the blocks of validator-set changes could not be read ({e}); not pruning this round"
                );
                return;
            }
        };
        match self
            .store()
            .prune_below(below, &kept, storage::PRUNE_BATCH_DELETES)
        {
            Ok(Some(mark)) => {
                self.prune_behind.store(mark < below.min(height), Relaxed);
                self.metrics.lowest_held.store(mark.0, Relaxed);
                tracing::info!(
                    pruned_below = mark.0,
                    "pruned mode: blocks and receipts below height {} deleted",
                    mark.0
                );
            }
            Ok(None) => self.prune_behind.store(false, Relaxed),
            Err(e) => tracing::warn!("pruned mode: pruning below {} failed: {e}", below.0),
        }
    }

    /// Publishes the earliest expiry among the next height's validators and warns, at most
    /// once an hour, for each whose certificate expires within 30 days: expiry never removes
    /// a validator (the set would shrink without a decision), governance rotates it.
    pub fn watch_validator_expiry(&self, height: Height) {
        use std::sync::atomic::Ordering::Relaxed;
        {
            let mut last = lock(&self.expiry_checked);
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(3600)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let Ok(Ok(validators)) = self
            .ledger
            .with_state_at(height, |v| execution::current_validators(v))
        else {
            return;
        };
        let now = self.now().0;
        let mut earliest = u64::MAX;
        let mut expiring = 0u64;
        for v in &validators {
            let not_after = v.cert.validity().not_after.0;
            earliest = earliest.min(not_after);
            if not_after.saturating_sub(now) <= crate::EXPIRY_WARNING {
                expiring += 1;
                tracing::warn!(
                    validator = %v.name,
                    certificate = %v.cert.fingerprint().to_hex(),
                    days_left = not_after.saturating_sub(now) / 86_400,
                    "a validator's certificate expires within 30 days: rotate its key and certificate by a governance proposal (validator-rotate)"
                );
            }
        }
        self.metrics
            .validator_certificate_not_after
            .store(earliest, Relaxed);
        self.metrics.validators_expiring.store(expiring, Relaxed);
    }

    /// Sets the watch rules (once: `run` sets them from the configuration).
    pub fn set_watcher(&self, watcher: Arc<Watcher>) {
        let _ = self.watcher.set(watcher);
    }

    /// The watch rules, with their alert channel ([`Watcher::subscribe`]).
    pub fn watcher(&self) -> Option<&Arc<Watcher>> {
        self.watcher.get()
    }

    /// Tells the watch rules of a refusal; `signer` (the certificate id, hex) is computed only
    /// when a rule counts the code.
    fn watch_refusal(&self, r: &Rejection, signer: impl FnOnce() -> String) {
        if let Some(w) = self.watcher()
            && w.watches_code(r.code.as_str())
        {
            let next = self.ledger.head().tip.height.0.saturating_add(1);
            w.refused(next, r.code.as_str(), &signer(), &r.message);
        }
    }

    /// The block interval (ms): the least time between two blocks.
    pub fn block_interval_ms(&self) -> u64 {
        self.block.interval_ms
    }

    /// The engine this node runs.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Sets where admitted transactions are sent on (once; the BFT host's gossip).
    pub fn set_gossip(&self, gossip: Gossip) {
        let _ = self.gossip.set(gossip);
    }

    /// The validator id (SM3 of the node's certificate), whether or not it is in the set.
    pub fn validator_id(&self) -> Digest {
        self.validator_id
    }

    /// Adds the `[next_key]` identity: the key and certificate a governance rotation moves
    /// this node's validator to. Until a height's set holds it, the node keeps deciding with
    /// its `[key]`; from then on with this one, without a restart.
    pub fn set_next_validator(&self, next: Validator) {
        *lock(&self.next_validator) = Some(next);
    }

    /// The identity to decide a height of validator set `set` with: the `[key]` if the set
    /// holds it, else the `[next_key]` if the set holds that, else the `[key]` (the node
    /// follows that height: consensus signs only for a validator of the height).
    pub fn identity_for(&self, set: &types::ValidatorSet) -> (Digest, Arc<dyn Signer>) {
        if set.get(&self.validator_id).is_none()
            && let Some(next) = lock(&self.next_validator).as_ref()
        {
            let id = next.certificate.fingerprint();
            if set.get(&id).is_some() {
                return (id, next.signer.clone());
            }
        }
        (self.validator_id, self.validator.signer.clone())
    }

    /// Candidates for the next block: the pool's oldest, up to a block, not removed.
    pub fn candidates(&self) -> Vec<execution::VerifiedTx> {
        lock(&self.pool).peek(self.max_txs())
    }

    /// Drops transactions the ledger's re-check refused, telling their waiting clients why.
    pub fn drop_refused(&self, dropped: Vec<(TxId, Rejection)>) {
        if dropped.is_empty() {
            return;
        }
        let mut pool = lock(&self.pool);
        for (id, r) in dropped {
            self.metrics.rejected(r.code.as_str());
            self.watch_refusal(&r, || {
                pool.get(&id)
                    .map_or_else(|| "unknown".into(), |t| t.signer().cert_id.to_hex())
            });
            tracing::info!(tx = %id, code = r.code.as_str(), "dropped before commit: {}", r.message);
            pool.remove(&id);
            pool.resolve(&id, Outcome::Dropped(r));
        }
    }

    /// The node's clock, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    fn update_pool_gauge(&self) {
        self.metrics.pool_size.store(
            lock(&self.pool).len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The producer loop: seals a block when the pool holds a full block (by count or by
    /// bytes), or when the oldest waiting transaction has waited the block interval; returns
    /// after [`LocalNode::stop`], once the pool is committed.
    pub fn run_producer(&self) -> Result<(), NodeError> {
        let interval = Duration::from_millis(self.block.interval_ms);
        let mut rate_window: (Instant, u64) = (Instant::now(), 0);
        loop {
            // Low on space: no block until the monitor reads enough free space again. A stop
            // then ends the loop with the pool uncommitted: its waiting clients are told the
            // node stopped (nothing was acknowledged), and the ids of every transaction lost
            // are logged, for those admitted without waiting to be submitted again.
            if self.storage_low() {
                let w = lock(&self.wake);
                if w.stop {
                    let lost = lock(&self.pool).ids();
                    tracing::warn!(
                        waiting = lost.len(),
                        "stopping while low on space with {} admitted transactions not committed; they are dropped and must be submitted again: {}",
                        lost.len(),
                        lost.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    return Ok(());
                }
                let _ = self.wake_cv.wait_timeout(w, crate::disk::SAMPLE_EVERY);
                continue;
            }
            // Wait for work or a stop.
            let stop = {
                let mut w = lock(&self.wake);
                while !w.stop && self.pool_size() == 0 {
                    w = self
                        .wake_cv
                        .wait_timeout(w, Duration::from_millis(500))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                w.stop
            };
            if !stop && !self.pool_holds_a_block() {
                // Give the block the interval to fill.
                let deadline = Instant::now() + interval;
                let mut w = lock(&self.wake);
                while !w.stop && !self.pool_holds_a_block() && Instant::now() < deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    w = self
                        .wake_cv
                        .wait_timeout(w, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
            while self.produce_block()?.is_some() {
                let committed = self
                    .metrics
                    .txs_committed
                    .load(std::sync::atomic::Ordering::Relaxed);
                let elapsed = rate_window.0.elapsed();
                if elapsed >= Duration::from_secs(2) {
                    let rate = (committed - rate_window.1) as f64 / elapsed.as_secs_f64();
                    self.metrics
                        .tx_rate_milli
                        .store((rate * 1000.0) as u64, std::sync::atomic::Ordering::Relaxed);
                    rate_window = (Instant::now(), committed);
                }
                if !self.pool_holds_a_block() {
                    break;
                }
            }
            if lock(&self.wake).stop && self.pool_size() == 0 {
                return Ok(());
            }
        }
    }

    /// Asks the producer to commit what is waiting and return.
    pub fn stop(&self) {
        lock(&self.wake).stop = true;
        self.wake_cv.notify_all();
    }

    /// Stopping while low on space (`crate::disk`): the pool will not be committed before the
    /// node stops, so the clients waiting for its transactions are answered now,
    /// `NODE_STORAGE_LOW` (admitted, not committed, dropped: submit it again), rather than
    /// holding their requests, and the server's shutdown, until space returns. The
    /// transactions stay in the pool (the producer names them as it stops). Returns how many
    /// transactions had waiting clients; 0 and nothing done when the node is not low.
    pub fn answer_waiters_when_stopping_low(&self) -> usize {
        if !self.storage_low() {
            return 0;
        }
        let mut pool = lock(&self.pool);
        let mut answered = 0;
        for id in pool.ids() {
            if pool.has_waiters(&id) {
                answered += 1;
                pool.resolve(
                    &id,
                    Outcome::Dropped(Rejection::new(
                        RejectCode::StorageLow,
                        format!(
                            "the node is stopping while low on space: transaction {id} was admitted but not committed, and is dropped; submit it again"
                        ),
                    )),
                );
            }
        }
        answered
    }

    /// The committed transaction `id` and its location.
    pub fn transaction(
        &self,
        id: &TxId,
    ) -> Result<Option<(SignedTx, storage::TxLocation)>, NodeError> {
        let Some(loc) = self.store().tx_location(id)? else {
            return self.not_indexed(id).map(|()| None);
        };
        self.held(loc.height)?;
        match self.store().tx(id)? {
            Some(found) => Ok(Some(found)),
            // Pruned between the check and the read: say so, not "not committed".
            None => self.held(loc.height).map(|()| None),
        }
    }

    /// After an index miss: on a node initialised from a snapshot (base above 0),
    /// [`NodeError::NotIndexed`] unless the transaction waits in the pool: it may have been
    /// committed before the blocks the snapshot carried, which this node never saw. On a node
    /// built from genesis (pruned or not: pruning keeps the whole index) a miss is "not
    /// committed", `Ok`.
    fn not_indexed(&self, id: &TxId) -> Result<(), NodeError> {
        match self.ledger.snapshot_base()? {
            Some(base) if !lock(&self.pool).contains(id) => {
                Err(NodeError::NotIndexed { id: *id, base })
            }
            _ => Ok(()),
        }
    }

    /// Fails with [`NodeError::Pruned`] when `height` is below the lowest height this node
    /// holds blocks and receipts for (a snapshot's base, or the pruning mark). Block 0 of a
    /// store initialised from a snapshot is below its base like any other.
    pub fn held(&self, height: Height) -> Result<(), NodeError> {
        let lowest = self.store().lowest_held()?;
        if height < lowest {
            return Err(NodeError::Pruned { height, lowest });
        }
        Ok(())
    }

    /// The receipt of `id` and its location.
    pub fn receipt(&self, id: &TxId) -> Result<Option<(Receipt, storage::TxLocation)>, NodeError> {
        let Some(loc) = self.store().tx_location(id)? else {
            return self.not_indexed(id).map(|()| None);
        };
        self.held(loc.height)?;
        // One index read: the receipt is read at the location, checked to be this one's.
        match self.store().receipt_at(loc)? {
            Some(r) => Ok((r.tx_id == *id).then_some((r, loc))),
            // Pruned between the check and the read: say so, not "not committed".
            None => self.held(loc.height).map(|()| None),
        }
    }

    /// The block at `height` and its commit certificate (`None` for block 0).
    pub fn block(
        &self,
        height: Height,
    ) -> Result<Option<(Block, Option<CommitCertificate>)>, NodeError> {
        let below_tip = height <= self.tip().0.height;
        if below_tip {
            self.held(height)?;
        }
        let Some(block) = self.store().block(height)? else {
            // Pruned between the check and the read: say so, not "no block".
            if below_tip {
                self.held(height)?;
            }
            return Ok(None);
        };
        Ok(Some((block, self.store().certificate(height)?)))
    }

    /// Runs `contract.method(args)` read-only at the tip as `caller` with at most `fuel` fuel
    /// (`ledger::Ledger::query`); returns the answer and the tip it read.
    pub fn query_contract(
        &self,
        caller: &SignerInfo,
        contract: &str,
        method: &str,
        args: &[Vec<u8>],
        fuel: u64,
    ) -> Result<(execution::QueryAnswer, Height), execution::ContractError> {
        let r = self.ledger.query(caller, contract, method, args, fuel);
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.contract_queries.fetch_add(1, Relaxed);
        self.publish_module_cache();
        r
    }

    /// Copies the executor's compiled-module cache counters into the metrics.
    fn publish_module_cache(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.ledger.module_cache();
        self.metrics
            .contract_module_cache_hits
            .store(c.hits, Relaxed);
        self.metrics
            .contract_module_cache_misses
            .store(c.misses, Relaxed);
    }

    /// A state view at the tip.
    pub fn with_state<R>(
        &self,
        f: impl FnOnce(&StateView<'_, CachedNodes<'_, RocksBackend>>) -> R,
    ) -> Result<R, NodeError> {
        Ok(self.ledger.with_state(f))
    }

    /// The offline receipt of committed transaction `id` (docs/receipts.md): its block's
    /// proofs, the commit certificate, the signer's chain to a genesis organisation and the CRLs the chain
    /// had recorded when the transaction was admitted into the block (the parent's state).
    pub fn receipt_bundle(&self, id: &TxId) -> Result<Option<ReceiptBundle>, NodeError> {
        let store = self.store();
        let Some(loc) = store.tx_location(id)? else {
            return self.not_indexed(id).map(|()| None);
        };
        self.held(loc.height)?;
        // The bundle proves the signer's chain in the parent's state: a transaction of the
        // base block of a snapshot node has none here (the state below the base is not held).
        if let Some(base) = self.ledger.snapshot_base()?
            && loc.height <= base
        {
            return Err(NodeError::Pruned {
                height: loc.height,
                lowest: Height(base.0 + 1),
            });
        }
        let Some(block) = store.block(loc.height)? else {
            // Pruned between the check and the read: say so.
            self.held(loc.height)?;
            return Err(NodeError::Missing("block of an indexed transaction"));
        };
        let certificate = store.certificate(loc.height)?.ok_or(NodeError::Missing(
            "commit certificate of a committed block",
        ))?;
        let mut receipts = Vec::with_capacity(block.txs.len());
        for i in 0..block.txs.len() {
            let Some(r) = store.receipt_at(storage::TxLocation {
                height: loc.height,
                position: i as u32,
            })?
            else {
                // Pruned while the bundle was being read: say so.
                self.held(loc.height)?;
                return Err(NodeError::Missing("receipt of a committed transaction"));
            };
            receipts.push(r);
        }
        let tx = block
            .txs
            .get(loc.position as usize)
            .ok_or(NodeError::Missing("indexed position in its block"))?;
        let parent_height = Height(loc.height.0.saturating_sub(1));
        let (chain, crls, anchor) = self.ledger.with_state_at(parent_height, |view| {
            signer_chain(view, self.ledger.genesis(), tx, &block)
        })??;
        let mut bundle = ReceiptBundle::build(
            &block,
            &receipts,
            loc.position,
            receipt::Finality::Certificate(certificate),
            chain,
            crls,
        )
        .map_err(|e| NodeError::Receipt(e.to_string()))?;
        // The chain of validator-set changes from genesis, each certified by the set before.
        bundle.set_changes = self.ledger.set_changes(loc.height)?;
        // An anchor registered by governance: its organisation record, proven in the state
        // of the receipt's own (certified) block.
        if let Some(name) = anchor {
            let key = receipt::org_record_key(&name);
            let (record, proof) = self
                .ledger
                .with_state_at(loc.height, |view| -> Result<_, NodeError> {
                    Ok((view.get(&key)?, view.prove(&key)?))
                })??;
            let record = record.ok_or(NodeError::Missing(
                "the record of the organisation anchoring the signer",
            ))?;
            bundle.anchor_proofs = vec![receipt::AnchorProof { record, proof }];
        }
        Ok(Some(bundle))
    }
}

/// The signer's certificate, the intermediate CAs up to a founding organisation's CA, and the
/// CRL of each issuer, as recorded in `view` (the state the transaction was judged against),
/// and the name of that organisation when governance registered it after genesis (the receipt
/// then proves its record). For `identity.register_org`, the new CA and its CRL come from the
/// transaction itself, as admission took them.
fn signer_chain<S: state::NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    genesis: &Genesis,
    tx: &SignedTx,
    block: &Block,
) -> Result<SignerChain, NodeError> {
    let leaf = match &tx.tx.sender {
        Sender::Certificate(der) => {
            Certificate::from_der(der).map_err(|e| NodeError::Receipt(e.to_string()))?
        }
        Sender::Registered(id) => {
            // Registered before this block, or by an earlier transaction in it.
            match view.certificate(id)? {
                Some(c) => c,
                None => block
                    .txs
                    .iter()
                    .find_map(|t| match &t.tx.sender {
                        Sender::Certificate(der) if crypto_sm::sm3::sm3(der) == *id => {
                            Certificate::from_der(der).ok()
                        }
                        _ => None,
                    })
                    .ok_or(NodeError::Missing("the signer's registered certificate"))?,
            }
        }
    };
    let mut anchors: Vec<Certificate> = genesis
        .organisations
        .iter()
        .map(|o| o.ca_cert.clone())
        .collect();
    let genesis_anchors = anchors.len();
    // The CAs of organisations active at this state: the receipt carries the path admission
    // judged, and a deregistered organisation's CA is on no admitted path. Founding
    // organisations registered by governance are anchors.
    let mut orgs: Vec<Certificate> = Vec::new();
    for o in view.organisations()?.into_iter().filter(|o| o.is_active()) {
        if o.is_founding() {
            if !anchors.iter().any(|a| a.der() == o.ca_cert.der()) {
                anchors.push(o.ca_cert);
            }
        } else {
            orgs.push(o.ca_cert);
        }
    }
    let pending = execution::register_org_ca(tx);
    if let Some((ca, _)) = &pending {
        orgs.push(ca.clone());
    }
    let mut chain = vec![leaf];
    let mut crls = Vec::new();
    // Walk up by issuer name (and key identifier, among several) through the registered
    // organisation CAs until a genesis CA.
    for _ in 0..pki::MAX_PATH_LEN {
        let Some(cur) = chain.last() else { break };
        let named: Vec<&Certificate> = orgs
            .iter()
            .chain(anchors.iter())
            .filter(|c| c.subject() == cur.issuer() && c.der() != cur.der())
            .collect();
        let issuer = named
            .iter()
            .find(|c| {
                cur.authority_key_id().is_some() && c.subject_key_id() == cur.authority_key_id()
            })
            .or(named.first())
            .map(|c| (*c).clone());
        let Some(issuer) = issuer else { break };
        match &pending {
            Some((ca, crl)) if ca.der() == issuer.der() => crls.push(crl.clone()),
            _ => {
                if let Some(crl) = view.crl(&issuer.fingerprint())? {
                    crls.push(crl);
                }
            }
        }
        if let Some(i) = anchors.iter().position(|a| a.der() == issuer.der()) {
            let anchor = (i >= genesis_anchors).then(|| issuer.organisation().unwrap_or_default());
            return Ok((chain, crls, anchor));
        }
        chain.push(issuer);
    }
    Ok((chain, crls, None))
}

/// A signer's chain (leaf first, no anchor), the CRLs of its issuers, and the name of its
/// anchor's organisation when governance registered it.
type SignerChain = (Vec<Certificate>, Vec<pki::Crl>, Option<String>);

/// Encodes a block response's commit certificate (empty for block 0).
pub fn certificate_bytes(certificate: &Option<CommitCertificate>) -> Vec<u8> {
    certificate
        .as_ref()
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{concurrently, dir_entries};

    /// A file planted where a fixed temporary name would go (`genesis.tmp`, a symlink to a
    /// file outside the data directory) must be neither written through nor needed.
    #[cfg(unix)]
    #[test]
    fn write_atomic_does_not_write_through_a_planted_temporary_name() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let data = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&victim, data.path().join("genesis.tmp")).unwrap();
        let target = data.path().join("genesis.json");
        write_atomic(&target, b"{\"genesis\":1}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&target).unwrap(), b"{\"genesis\":1}");
        assert_eq!(dir_entries(data.path()), ["genesis.json", "genesis.tmp"]);
    }

    /// Two writers of one file at once both succeed, and leave no temporary file: with one
    /// fixed temporary name, one writer's rename took the other's temporary file away.
    #[test]
    fn concurrent_write_atomic_of_one_file_all_succeed() {
        let data = tempfile::tempdir().unwrap();
        let target = data.path().join("genesis.json");
        let results = concurrently(2, |i| {
            (0..200).try_for_each(|_| write_atomic(&target, &[b'a' + i as u8; 8192]))
        });
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let last = std::fs::read(&target).unwrap();
        assert!(last == [b'a'; 8192] || last == [b'b'; 8192]);
        assert_eq!(dir_entries(data.path()), ["genesis.json"]);
    }

    use crate::bft::tests::{anchor_tx, fixture_of};
    use crate::disk::testing::Flip;

    /// A single validator over a fresh store, with a free-space guard over a path the test
    /// fills and empties.
    fn single_with_guard() -> (crate::bft::tests::Fx, Flip, Arc<crate::disk::DiskGuard>) {
        let fx = fixture_of(1, Engine::Single);
        let flip = Flip::new();
        let guard = flip.guard(fx.core.metrics.clone());
        fx.core.set_disk(guard.clone());
        (fx, flip, guard)
    }

    /// Review r1 M3 (no test reached it): a single validator whose space runs out between the
    /// producer's reading and the commit's drops the block it made and signed (its precommit
    /// never left the node), keeps the pool, and makes the block again once the space returns;
    /// the waiting client is answered then.
    #[test]
    fn review_r1_the_producer_drops_a_signed_block_when_the_space_runs_out_before_its_write() {
        let (fx, flip, guard) = single_with_guard();
        let (id, rx) = fx.core.submit(&anchor_tx(&fx, 1), true).unwrap();
        let mut rx = rx.unwrap();
        guard.set_after_reading(flip.fills_after_one_reading());
        let signed = |fx: &crate::bft::tests::Fx| {
            fx.core
                .metrics
                .hsm_signatures
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let before = signed(&fx);
        assert_eq!(fx.core.produce_block().unwrap(), None);
        assert_eq!(
            signed(&fx),
            before + 1,
            "premise: the block was made and signed"
        );
        assert_eq!(fx.core.tip().0.height, Height(0), "nothing written");
        assert_eq!(fx.core.pool_size(), 1, "the pool is kept");
        assert!(rx.try_recv().is_err(), "the client is not answered yet");
        flip.empty();
        assert_eq!(fx.core.produce_block().unwrap(), Some(Height(1)));
        assert!(fx.core.receipt(&id).unwrap().is_some());
        assert!(matches!(
            rx.try_recv(),
            Ok(Outcome::Committed {
                height: Height(1),
                ..
            })
        ));
    }

    /// Review r1 L8: admission refused for low space before it looked the transaction up, so
    /// a client resubmitting one already waiting, or already committed, was told
    /// NODE_STORAGE_LOW instead of TX_DUPLICATE. It looks it up first.
    #[test]
    fn review_r1_a_resubmission_while_low_is_answered_as_a_duplicate() {
        let (fx, flip, guard) = single_with_guard();
        let committed = anchor_tx(&fx, 1);
        fx.core.submit(&committed, false).unwrap();
        assert_eq!(fx.core.produce_block().unwrap(), Some(Height(1)));
        let waiting = anchor_tx(&fx, 2);
        fx.core.submit(&waiting, false).unwrap();
        flip.fill();
        assert!(guard.check().low);
        for bytes in [&committed, &waiting] {
            let r = fx.core.submit(bytes, false).unwrap_err();
            assert_eq!(r.code.as_str(), "TX_DUPLICATE", "{r}");
        }
        let r = fx.core.submit(&anchor_tx(&fx, 3), false).unwrap_err();
        assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW", "{r}");
    }

    /// A log line sink for one test's subscriber.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Review r1 L5: a single validator stopped while low drops the transactions it admitted
    /// and did not commit (the pool is in memory); a client that did not wait for the commit
    /// is never told. The stop now names each one in its warning, to be submitted again, and a
    /// client that waits is answered NODE_STORAGE_LOW at the stop (its request held the
    /// server's shutdown, so the node did not stop while low with a client waiting).
    #[test]
    fn review_r1_a_stop_while_low_names_the_transactions_it_drops() {
        let (fx, flip, guard) = single_with_guard();
        let (a, _) = fx.core.submit(&anchor_tx(&fx, 1), false).unwrap();
        let (b, waiting) = fx.core.submit(&anchor_tx(&fx, 2), true).unwrap();
        let mut waiting = waiting.unwrap();
        assert_eq!(fx.core.answer_waiters_when_stopping_low(), 0, "not low");
        flip.fill();
        assert!(guard.check().low);
        // The client waiting for b is answered at the stop (its request would hold the
        // server's shutdown until space returns).
        assert_eq!(fx.core.answer_waiters_when_stopping_low(), 1);
        match waiting.try_recv() {
            Ok(Outcome::Dropped(r)) => {
                assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW");
                assert!(r.message.contains("submit it again"), "{r}");
            }
            other => panic!("{other:?}"),
        }
        fx.core.stop();
        let log = Captured::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || fx.core.run_producer()).unwrap();
        let log = String::from_utf8(lock(&log.0).clone()).unwrap();
        assert!(
            log.contains("stopping while low on space with 2 admitted transactions not committed")
                && log.contains(&a.to_string())
                && log.contains(&b.to_string()),
            "{log}"
        );
        assert_eq!(fx.core.tip().0.height, Height(0));
    }
}
