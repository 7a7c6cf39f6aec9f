//! The ledger without I/O: what every consensus engine asks of the chain.
//!
//! - [`Ledger::propose`] builds the next block from admitted transactions (the pool's oldest,
//!   handed out without removing them), re-checking each at the parent's state and executing
//!   them; the proposer signs nothing here.
//! - [`Ledger::verify`] judges another validator's block: the header's links (height, parent,
//!   validator set, the parent's certificate), its time (after the parent's, and under
//!   [`TimeRule::Live`] within a bound of the verifier's clock), every transaction through
//!   admission's full checks (signature, signer chain, revocation, expiry, permissions,
//!   duplicates on the chain and within the block, but not the local pool's duplicate rule),
//!   then execution at the header's timestamp and the roots compared.
//! - [`Ledger::commit`] stores a decided block with its [`CommitCertificate`], after checking
//!   that the certificate is a quorum of the height's validator set, in one synced batch.
//!
//! An [`ExecutedBlock`] is made only by `propose` or `verify`, so nothing is committed that
//! this node did not execute itself. The ledger is generic over the storage backend (RocksDB
//! in the node, [`storage::MemBackend`] in tests and the simulation) and takes time as a value
//! (a [`Clock`] is what an engine reads it from); it opens no file, socket or thread and reads
//! no clock of its own.
//!
//! What it refuses to do: decide which block wins (consensus does), sign anything (the
//! engine's signer does, in the HSM), or keep transactions (the node's pool does).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cache;
mod error;
#[cfg(test)]
mod signature_cache_tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crypto::Digest;
use execution::{
    Admission, AdmitContext, BlockContext, Executor, Genesis, MemberRefusal, Rejection, SignerInfo,
    StateView, VerifiedTx,
};
use pki::{Certificate, UnixTime};
use state::UpdateBatch;
use storage::{ChainStore, KvBackend, Tip};
use types::{
    Block, BlockHash, BlockHeader, CommitCertificate, ConsensusLinks, Height, Receipt, SignedTx,
    Timestamp, TxId, ValidatorSet, receipts_root,
};

pub use cache::{CachedNodes, MIN_NODE_CACHE_CAPACITY, NODE_CACHE_CAPACITY, NodeCache};
pub use error::{BlockRefusal, LedgerError};

/// Where an engine reads the time from, in milliseconds since the Unix epoch. The node passes
/// the system clock; tests and the simulation a virtual one.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now_ms(&self) -> u64;
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now_ms(&self) -> u64 {
        self()
    }
}

/// The default bound between a live proposal's timestamp and the verifier's clock.
pub const DEFAULT_TIME_BOUND_MS: u64 = 2_000;

/// How [`Ledger::verify`] judges a block's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRule {
    /// A proposal being voted on: after its parent's and within `bound_ms` of `now_ms`.
    Live {
        /// The verifier's clock.
        now_ms: u64,
        /// The bound.
        bound_ms: u64,
    },
    /// A block a quorum already decided (sync): after its parent's only; the clock that
    /// judged it was the deciding validators'.
    Decided,
}

/// A block this node executed itself, with its receipts and state changes: what
/// [`Ledger::commit`] stores. Only [`Ledger::propose`] and [`Ledger::verify`] make one.
#[derive(Clone, Debug)]
pub struct ExecutedBlock {
    block: Block,
    hash: BlockHash,
    receipts: Vec<Receipt>,
    update: UpdateBatch,
    // The parent certificate the header commits to, when it is not the one this node stored
    // (it replaces that one at commit).
    parent_certificate: Option<CommitCertificate>,
    // The validator set of the next height, when the block changes it.
    next_validators: Option<ValidatorSet>,
}

impl ExecutedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// Its height.
    pub fn height(&self) -> Height {
        self.block.header.height
    }

    /// One receipt per transaction, in block order.
    pub fn receipts(&self) -> &[Receipt] {
        &self.receipts
    }

    /// The IDs of its transactions, in block order.
    pub fn tx_ids(&self) -> Vec<TxId> {
        self.block.txs.iter().map(SignedTx::tx_id).collect()
    }

    /// The validator set of the next height, when this block changes it.
    pub fn next_validators(&self) -> Option<&ValidatorSet> {
        self.next_validators.as_ref()
    }
}

/// What [`Ledger::propose`] made of the candidates.
#[derive(Debug)]
pub struct Proposed {
    /// The block, executed (possibly without transactions: every candidate was dropped, or
    /// there were none).
    pub executed: ExecutedBlock,
    /// Candidates the re-check refused at the parent's state, with why; they can never go
    /// into a block of this chain from here on only if the refusal is permanent (a pool
    /// decides what to keep).
    pub dropped: Vec<(TxId, Rejection)>,
    /// Candidates that passed the re-check but did not fit: the block already held the
    /// chain's `max_txs_per_block` in force (they stay for a later block).
    pub left_out: Vec<TxId>,
}

/// The last committed block: its tip pointer, header and certificate (`None` for block 0).
#[derive(Clone, Debug)]
pub struct Head {
    /// Height and hash.
    pub tip: Tip,
    /// The header.
    pub header: BlockHeader,
    /// The commit certificate (block 0 has none: the genesis file decides it).
    pub certificate: Option<CommitCertificate>,
}

impl Head {
    /// What the next header's `last_commit` must hold.
    pub fn last_commit(&self) -> Digest {
        self.certificate
            .as_ref()
            .map(CommitCertificate::hash)
            .unwrap_or(ConsensusLinks::NO_PARENT_CERTIFICATE)
    }
}

/// The ledger over a store.
#[derive(Debug)]
pub struct Ledger<B: KvBackend> {
    store: ChainStore<B>,
    genesis: Genesis,
    genesis_hash: BlockHash,
    admission: Admission,
    executor: Executor,
    // The genesis validator set (from height 1) and the recorded epochs, each with the first
    // height it decides, in height order.
    genesis_set: Arc<ValidatorSet>,
    epochs: Mutex<Vec<(Height, Arc<ValidatorSet>)>>,
    nodes: NodeCache,
    // The chain parameters read at a state root (the last one asked for): the head's, or a
    // block's parent's.
    params: Mutex<Option<(Digest, execution::ParamsInForce)>>,
    head: Mutex<Head>,
    // Serialises commits with the head update.
    committing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug; the data (a head) stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Commits block 0 of `genesis` to an empty store; returns its hash.
pub fn init<B: KvBackend>(
    store: &ChainStore<B>,
    genesis: &Genesis,
) -> Result<BlockHash, LedgerError> {
    let g = genesis.build(&store.state_nodes())?;
    let hash = g.block.header.hash();
    store.commit_block(&g.block, &g.receipts, g.update)?;
    Ok(hash)
}

impl<B: KvBackend> Ledger<B> {
    /// Opens the ledger over `store`: checks its tip (refusing a tampered or half-written
    /// store, naming the height), that its block 0 is `genesis`'s, and that the tip's
    /// certificate decides the tip under the validator set.
    pub fn open(store: ChainStore<B>, genesis: Genesis) -> Result<Self, LedgerError> {
        Self::open_inner(store, genesis, true)
    }

    /// Benchmark only (`gmchain bench audit`): [`Ledger::open`] with an executor that writes
    /// no trace index ([`Executor::without_trace_indexes_for_bench`]), to measure the indexes'
    /// share of commit time on the same blocks. Its state roots differ from every node's, so
    /// its blocks are refused by any other validator; a node never opens one.
    #[doc(hidden)]
    pub fn open_without_trace_indexes_for_bench(
        store: ChainStore<B>,
        genesis: Genesis,
    ) -> Result<Self, LedgerError> {
        Self::open_inner(store, genesis, false)
    }

    fn open_inner(
        store: ChainStore<B>,
        genesis: Genesis,
        trace_indexes: bool,
    ) -> Result<Self, LedgerError> {
        store.check_version()?;
        let tip = store
            .check_tip_on_startup()?
            .ok_or(LedgerError::EmptyStore)?;
        let expected = genesis.build(&state::MemStore::new())?.block.header.hash();
        // A store initialised from a snapshot holds no block 0: it recorded block 0's hash,
        // which the import checked against this genesis file; an archive store is judged by
        // its block 0, as before.
        let from_snapshot = store.base()?.is_some_and(|b| b.height > Height(0));
        let stored = if from_snapshot {
            store
                .recorded_genesis()?
                .ok_or(LedgerError::Missing("genesis hash of a snapshot store"))?
        } else {
            store
                .header(Height(0))?
                .ok_or(LedgerError::EmptyStore)?
                .hash()
        };
        if stored != expected {
            return Err(LedgerError::GenesisMismatch { stored, expected });
        }
        let consortium = genesis
            .consortium()
            .map_err(|e| LedgerError::Genesis(e.to_string()))?;
        let admission = Admission::new(genesis.chain_id.clone(), &genesis.params, consortium);
        let executor = if trace_indexes {
            Executor::new(genesis.chain_id.clone(), &genesis.params)
        } else {
            Executor::without_trace_indexes_for_bench(genesis.chain_id.clone(), &genesis.params)
        };
        let nodes = NodeCache::default();
        let genesis_set = Arc::new(genesis.validator_set()?);
        let mut epochs = Vec::new();
        {
            let header = store
                .header(tip.height)?
                .ok_or(LedgerError::Missing("tip header"))?;
            let cached = CachedNodes::new(&store, &nodes);
            let view = StateView::new(&cached, header.state_root);
            for e in execution::epochs(&view)? {
                epochs.push((e.from, Arc::new(execution::to_set(&e.validators)?)));
            }
        }
        let set_of = |h: Height| set_at(&genesis_set, &epochs, h);
        let header = store
            .header(tip.height)?
            .ok_or(LedgerError::Missing("tip header"))?;
        let certificate = store.certificate(tip.height)?;
        if tip.height > Height(0) {
            let cert = certificate
                .as_ref()
                .ok_or(LedgerError::Missing("tip's commit certificate"))?;
            cert.verify(
                &genesis.chain_id,
                tip.height,
                &tip.hash,
                &set_of(tip.height),
            )
            .map_err(|source| LedgerError::Certificate {
                height: tip.height,
                source,
            })?;
        }
        Ok(Self {
            store,
            genesis,
            genesis_hash: expected,
            admission,
            executor,
            genesis_set,
            epochs: Mutex::new(epochs),
            nodes,
            params: Mutex::new(None),
            head: Mutex::new(Head {
                tip,
                header,
                certificate,
            }),
            committing: Mutex::new(()),
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The hash of block 0.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// The store (read side).
    pub fn store(&self) -> &ChainStore<B> {
        &self.store
    }

    /// Gives the store back (to reopen it, as a restarted node does).
    pub fn into_store(self) -> ChainStore<B> {
        self.store
    }

    /// Admission (its caches and counters).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The last committed block (kept in memory: reading it cannot fail).
    pub fn head(&self) -> Head {
        lock(&self.head).clone()
    }

    /// The validator set that decides `height`: the genesis set, changed by the epochs the
    /// committed blocks recorded (governance, revocations). For a height beyond the head's
    /// next, the set of the head's next height (the best this node knows).
    pub fn validator_set(&self, height: Height) -> Arc<ValidatorSet> {
        set_at(&self.genesis_set, &lock(&self.epochs), height)
    }

    /// Every validator set with the first height it decides, in height order (the genesis
    /// set first, from height 1).
    pub fn validator_sets(&self) -> Vec<(Height, Arc<ValidatorSet>)> {
        let mut all = vec![(Height(1), self.genesis_set.clone())];
        all.extend(lock(&self.epochs).iter().cloned());
        all
    }

    /// The validator-set changes from genesis up to the set that decides `height`, each with
    /// the last block of the set before it (whose header names the next set), that block's
    /// certificate, the new set's certificates and the transactions that caused the change,
    /// proven in their blocks: what a receipt of a block at `height` carries so that it
    /// verifies from the genesis file alone.
    ///
    /// On a store initialised from a snapshot, the changes whose last block is below the
    /// base come from the certified header the import verified and recorded (those blocks
    /// were never in this store); `height` itself must be at or above the base. On a pruned
    /// store the blocks holding the causes are kept ([`Ledger::set_change_blocks`]).
    pub fn set_changes(&self, height: Height) -> Result<Vec<receipt::SetChange>, LedgerError> {
        let base = self.snapshot_base()?;
        if let Some(b) = base
            && height < b
        {
            return Err(LedgerError::BelowBase { height, base: b });
        }
        // The epochs recorded before `height`: those of the state after `height - 1`, or of
        // the base's state when that is below the base (an epoch recorded by the base's block
        // takes effect after it and is filtered out below).
        let before = Height(height.0.saturating_sub(1)).max(base.unwrap_or(Height(0)));
        let epochs = self.with_state_at(before, |v| execution::epochs(v))??;
        let mut recorded: Option<Vec<receipt::SetChange>> = None;
        let mut out = Vec::new();
        for e in epochs.into_iter().filter(|e| e.from <= height) {
            let last = Height(e.from.0.saturating_sub(1));
            if let Some(b) = base
                && last < b
            {
                if recorded.is_none() {
                    recorded = Some(self.base_certified()?.set_changes);
                }
                let change = recorded
                    .as_ref()
                    .and_then(|r| r.iter().find(|c| c.header.height == last))
                    .ok_or(LedgerError::Missing(
                        "set change below the base in the snapshot's certified header",
                    ))?;
                out.push(change.clone());
                continue;
            }
            let (header, certificate) = self.certified_header(last)?;
            let mut causes = Vec::new();
            for id in e.causes.iter().take(receipt::MAX_CAUSES) {
                let loc = self.store.tx_location(id)?.ok_or(LedgerError::Missing(
                    "the transaction of a set change's cause",
                ))?;
                let block = self
                    .store
                    .block(loc.height)?
                    .ok_or(LedgerError::Missing("block of a set change's cause"))?;
                let leaves: Vec<Digest> = block
                    .txs
                    .iter()
                    .map(|t| types::merkle::leaf_hash(t.entry_hash().as_bytes()))
                    .collect();
                let position = usize::try_from(loc.position).unwrap_or(usize::MAX);
                let (Some(tx), Some(tx_proof)) = (
                    block.txs.get(position).cloned(),
                    types::merkle::prove(&leaves, position),
                ) else {
                    return Err(LedgerError::Missing(
                        "indexed position of a set change's cause",
                    ));
                };
                let (_, cause_cert) = self.certified_header(loc.height)?;
                causes.push(receipt::Cause {
                    header: block.header,
                    certificate: cause_cert,
                    position: loc.position,
                    tx,
                    tx_proof,
                });
            }
            out.push(receipt::SetChange {
                header,
                certificate,
                validators: e.validators.into_iter().map(|v| v.cert).collect(),
                causes,
            });
        }
        Ok(out)
    }

    /// The heights of the blocks [`Ledger::set_changes`] reads at or above the base: those
    /// holding the causes of every validator-set change recorded at the head. A pruned node
    /// keeps them.
    pub fn set_change_blocks(&self) -> Result<Vec<Height>, LedgerError> {
        let base = self.snapshot_base()?.unwrap_or(Height(0));
        let epochs = self.with_state(|v| execution::epochs(v))?;
        let mut out = Vec::new();
        for e in epochs {
            if Height(e.from.0.saturating_sub(1)) < base {
                continue;
            }
            for id in e.causes.iter().take(receipt::MAX_CAUSES) {
                if let Some(loc) = self.store.tx_location(id)?
                    && !out.contains(&loc.height)
                {
                    out.push(loc.height);
                }
            }
        }
        Ok(out)
    }

    /// The base of a store initialised from a snapshot (`None` for one built from genesis).
    pub fn snapshot_base(&self) -> Result<Option<Height>, LedgerError> {
        Ok(self
            .store
            .base()?
            .map(|b| b.height)
            .filter(|h| *h > Height(0)))
    }

    /// The certified header a store initialised from a snapshot recorded at its base (the
    /// import verified it against the genesis file).
    pub fn base_certified(&self) -> Result<receipt::CertifiedHeader, LedgerError> {
        let bytes = self.store.base_certified()?.ok_or(LedgerError::Missing(
            "certified header of the snapshot's base",
        ))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| LedgerError::BaseCertified(e.to_string()))?;
        receipt::CertifiedHeader::from_json_value(&value, self.store.limits())
            .map_err(|e| LedgerError::BaseCertified(e.to_string()))
    }

    /// Returns the committed header of `height` and its commit certificate; a height below
    /// the base of a snapshot store is [`LedgerError::BelowBase`].
    pub fn certified_header(
        &self,
        height: Height,
    ) -> Result<(BlockHeader, CommitCertificate), LedgerError> {
        self.below_base(height)?;
        let header = self
            .store
            .header(height)?
            .ok_or(LedgerError::Missing("header of a set change"))?;
        let certificate = self
            .store
            .certificate(height)?
            .ok_or(LedgerError::Missing("certificate of a set change"))?;
        Ok((header, certificate))
    }

    /// Fails with [`LedgerError::BelowBase`] when `height` is below the base of a store
    /// initialised from a snapshot (whose headers and states start at the base).
    fn below_base(&self, height: Height) -> Result<(), LedgerError> {
        match self.snapshot_base()? {
            Some(base) if height < base => Err(LedgerError::BelowBase { height, base }),
            _ => Ok(()),
        }
    }

    /// The state-node cache of this ledger (`[storage] state_cache_nodes` sets its capacity).
    pub fn node_cache(&self) -> &NodeCache {
        &self.nodes
    }

    /// Runs `f` on a view of the state at the head.
    pub fn with_state<R>(&self, f: impl FnOnce(&StateView<'_, CachedNodes<'_, B>>) -> R) -> R {
        let root = lock(&self.head).header.state_root;
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let view = StateView::new(&nodes, root);
        f(&view)
    }

    /// Runs `f` on a view of the state after block `height` (for receipts: the state a
    /// transaction of block `height + 1` was judged against).
    pub fn with_state_at<R>(
        &self,
        height: Height,
        f: impl FnOnce(&StateView<'_, CachedNodes<'_, B>>) -> R,
    ) -> Result<R, LedgerError> {
        self.below_base(height)?;
        let header = self
            .store
            .header(height)?
            .ok_or(LedgerError::Missing("header"))?;
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let view = StateView::new(&nodes, header.state_root);
        Ok(f(&view))
    }

    /// Whether transaction `id` is on the chain; a read error is reported, never "no".
    fn on_chain(&self, id: &TxId) -> Result<bool, String> {
        self.store
            .tx_location(id)
            .map(|l| l.is_some())
            .map_err(|e| format!("the transaction index could not be read: {e}"))
    }

    /// Admits a submitted transaction at the head's state (`in_pool` says whether one with
    /// the same id already waits in the caller's pool). `now` is the node's clock.
    pub fn admit(
        &self,
        bytes: &[u8],
        now: UnixTime,
        in_pool: &(dyn Fn(&TxId) -> bool + Sync),
    ) -> Result<VerifiedTx, Rejection> {
        let head = self.head();
        let ctx = AdmitContext {
            tip: head.tip.height,
            now,
        };
        let seen = |id: &TxId| -> Result<bool, String> {
            if in_pool(id) {
                return Ok(true);
            }
            self.on_chain(id)
        };
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let view = StateView::new(&nodes, head.header.state_root);
        self.admission.admit(&view, &ctx, &seen, bytes)
    }

    /// The chain parameters that apply to the block after the head, and since when (read
    /// from the head's state, where governance changes them).
    pub fn params(&self) -> Result<execution::ParamsInForce, LedgerError> {
        self.with_state(|view| self.params_at(view))
    }

    /// The chain parameters that apply to the block after the state `view` (cached for the
    /// last root asked for, so the node's per-submission questions cost a lock).
    fn params_at(
        &self,
        view: &StateView<'_, CachedNodes<'_, B>>,
    ) -> Result<execution::ParamsInForce, LedgerError> {
        if let Some((root, p)) = *lock(&self.params)
            && root == view.root()
        {
            return Ok(p);
        }
        let p = execution::params_in_force(view)?;
        *lock(&self.params) = Some((view.root(), p));
        Ok(p)
    }

    /// Runs `contract.method(args)` read-only on the head's state with at most `fuel` fuel,
    /// seen by `caller`, as in the block after the head (its height, the head's timestamp):
    /// [`Executor::query`]. Returns the answer and the head's height it read.
    pub fn query(
        &self,
        caller: &SignerInfo,
        contract: &str,
        method: &str,
        args: &[Vec<u8>],
        fuel: u64,
    ) -> Result<(execution::QueryAnswer, Height), execution::ContractError> {
        let head = self.head();
        let block = BlockContext {
            height: Height(head.tip.height.0.saturating_add(1)),
            timestamp_ms: head.header.timestamp.0,
        };
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let answer = self.executor.query(
            &nodes,
            head.header.state_root,
            &block,
            caller,
            contract,
            method,
            args,
            fuel,
        )?;
        Ok((answer, head.tip.height))
    }

    /// The executor's compiled-module cache counters.
    pub fn module_cache(&self) -> contracts::CacheStats {
        self.executor.module_cache()
    }

    /// Authenticates a member by its certificate at the head's state, as admission judges a
    /// transaction's signer (the TLS listeners' and links' peers).
    pub fn authenticate(
        &self,
        now: UnixTime,
        leaf: &Certificate,
    ) -> Result<SignerInfo, MemberRefusal> {
        self.with_state(|view| self.admission.authenticate(view, now, leaf))
    }

    /// Builds the block after the head from `candidates` (in order), proposed by `proposer`
    /// at `now_ms` (raised to one millisecond after the parent's timestamp if the clock is
    /// behind it). Each candidate is re-checked at the parent's state (revocation,
    /// suspension, expiry, duplicates, permissions); the refused ones are returned in
    /// [`Proposed::dropped`], the rest executed, up to the chain's `max_txs_per_block` in force
    /// at the parent's state (the others in [`Proposed::left_out`]). The candidates must fit
    /// one block by bytes (the pool hands out at most a block by count and bytes).
    pub fn propose(
        &self,
        candidates: Vec<VerifiedTx>,
        proposer: Digest,
        now_ms: u64,
    ) -> Result<Proposed, LedgerError> {
        let head = self.head();
        let parent = &head.header;
        let height = head.tip.height.next().ok_or(LedgerError::HeightOverflow)?;
        let timestamp_ms = now_ms.max(parent.timestamp.0.saturating_add(1));
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let view = StateView::new(&nodes, parent.state_root);
        let ctx = AdmitContext {
            tip: head.tip.height,
            now: UnixTime(timestamp_ms / 1000),
        };
        let params = self.params_at(&view)?.params;
        let max_txs = params.limits().max_txs_per_block;
        // The block's fuel budget: the sum of the transactions' fuel limits (a transaction
        // without one counts the built-ins' fixed cost), as the executor checks it. One that
        // does not fit what is left waits for the next block, like one over the byte budget.
        let mut fuel_left = u128::from(params.max_fuel_per_block);
        let mut in_block = HashSet::new();
        let mut txs = Vec::with_capacity(candidates.len().min(max_txs));
        let mut dropped = Vec::new();
        let mut left_out = Vec::new();
        for tx in candidates {
            let id = tx.id();
            if !in_block.insert(id) {
                continue;
            }
            if txs.len() >= max_txs {
                left_out.push(id);
                continue;
            }
            let fuel = u128::from(
                tx.signed()
                    .tx
                    .fuel_limit
                    .unwrap_or(execution::BUILTIN_CALL_COST),
            );
            if fuel > fuel_left {
                left_out.push(id);
                continue;
            }
            let seen = |i: &TxId| self.on_chain(i);
            match self.admission.recheck(&view, &ctx, &seen, &tx) {
                Ok(()) => {
                    fuel_left -= fuel;
                    txs.push(tx);
                }
                Err(r) => dropped.push((id, r)),
            }
        }
        let exec = self.executor.execute_block(
            &nodes,
            parent.state_root,
            &BlockContext {
                height,
                timestamp_ms,
            },
            &txs,
        )?;
        let signed: Vec<SignedTx> = txs.iter().map(|t| t.signed().clone()).collect();
        let mut block = Block {
            header: BlockHeader {
                chain_id: self.genesis.chain_id.clone(),
                height,
                tx_count: u32::try_from(signed.len()).map_err(|_| {
                    LedgerError::TxCountOverflow {
                        count: signed.len(),
                    }
                })?,
                parent: head.tip.hash,
                tx_root: Digest([0; 32]),
                state_root: exec.update.root,
                receipts_root: receipts_root(&exec.receipts),
                timestamp: Timestamp(timestamp_ms),
                proposer,
                consensus: Some(ConsensusLinks {
                    validator_set: self.validator_set(height).hash(),
                    next_validator_set: exec.next_validators.hash(),
                    last_commit: head.last_commit(),
                }),
            },
            txs: signed,
        };
        block.header.tx_root = block.tx_root();
        let hash = block.header.hash();
        Ok(Proposed {
            executed: ExecutedBlock {
                block,
                hash,
                receipts: exec.receipts,
                update: exec.update,
                parent_certificate: None,
                next_validators: exec.epoch.is_some().then_some(exec.next_validators),
            },
            dropped,
            left_out,
        })
    }

    /// Verifies a block another validator proposed (or a decided block received by sync)
    /// as the next block after the head, and executes it. Refusals name what was wrong.
    /// The header's `last_commit` must be the hash of this node's certificate of the parent,
    /// or of `parent_certificate` (the proposer's, sent beside the block), which must then
    /// decide the parent under its validator set: honest nodes may hold different quorums of
    /// precommits for one block, and the next header picks one.
    pub fn verify(
        &self,
        block: Block,
        time: TimeRule,
        parent_certificate: Option<&CommitCertificate>,
    ) -> Result<ExecutedBlock, BlockRefusal> {
        let head = self.head();
        let parent = &head.header;
        let h = &block.header;
        let height = head
            .tip
            .height
            .next()
            .ok_or(BlockRefusal::Ledger(LedgerError::HeightOverflow))?;
        if h.chain_id != self.genesis.chain_id {
            return Err(BlockRefusal::ChainId {
                got: h.chain_id.to_string(),
            });
        }
        if h.height != height {
            return Err(BlockRefusal::Height {
                got: h.height,
                expected: height,
            });
        }
        if h.parent != head.tip.hash {
            return Err(BlockRefusal::Parent {
                got: h.parent,
                expected: head.tip.hash,
            });
        }
        let set = self.validator_set(height);
        let expected_links = ConsensusLinks {
            validator_set: set.hash(),
            next_validator_set: Digest([0; 32]),
            last_commit: head.last_commit(),
        };
        let mut replaces_parent = None;
        match h.consensus {
            None => return Err(BlockRefusal::HeaderVersion),
            Some(l) if l.validator_set != expected_links.validator_set => {
                return Err(BlockRefusal::ValidatorSet {
                    got: l.validator_set,
                    expected: expected_links.validator_set,
                });
            }
            Some(l) if l.last_commit != expected_links.last_commit => {
                // Another quorum for the parent: acceptable if it is the one named and it
                // decides the parent.
                let usable = parent_certificate.filter(|c| {
                    head.certificate.is_some()
                        && c.hash() == l.last_commit
                        && c.verify(
                            &self.genesis.chain_id,
                            head.tip.height,
                            &head.tip.hash,
                            &self.validator_set(head.tip.height),
                        )
                        .is_ok()
                });
                match usable {
                    Some(c) => replaces_parent = Some(c.clone()),
                    None => {
                        return Err(BlockRefusal::LastCommit {
                            got: l.last_commit,
                            expected: expected_links.last_commit,
                        });
                    }
                }
            }
            Some(_) => {}
        }
        if set.get(&h.proposer).is_none() {
            return Err(BlockRefusal::Proposer {
                proposer: h.proposer,
            });
        }
        // Time: strictly after the parent; live proposals also near our clock.
        if h.timestamp <= parent.timestamp {
            return Err(BlockRefusal::NotAfterParent {
                timestamp: h.timestamp.0,
                parent: parent.timestamp.0,
            });
        }
        if let TimeRule::Live { now_ms, bound_ms } = time
            && h.timestamp.0.abs_diff(now_ms) > bound_ms
        {
            return Err(BlockRefusal::Time {
                timestamp: h.timestamp.0,
                now: now_ms,
                bound: bound_ms,
            });
        }
        if usize::try_from(h.tx_count).ok() != Some(block.txs.len()) {
            return Err(BlockRefusal::TxCount {
                declared: h.tx_count,
                actual: block.txs.len(),
            });
        }
        let tx_root = block.tx_root();
        if tx_root != h.tx_root {
            return Err(BlockRefusal::Root {
                which: "tx_root",
                declared: h.tx_root,
                computed: tx_root,
            });
        }
        // Each transaction encoded once: for the size and for admission.
        let bytes: Vec<Vec<u8>> = block.txs.iter().map(Encode::to_bytes).collect();
        let encoded = block_len(&block.header.chain_id, &bytes);
        let limits = self.store.limits();
        if encoded > limits.max_block_size {
            return Err(BlockRefusal::TooLarge {
                size: encoded,
                limit: limits.max_block_size,
            });
        }
        // Every transaction through admission at the parent's state, at the header's time,
        // under the parameters in force there.
        let nodes = CachedNodes::new(&self.store, &self.nodes);
        let view = StateView::new(&nodes, parent.state_root);
        let params = self.params_at(&view).map_err(BlockRefusal::Ledger)?;
        let max_txs = params.params.limits().max_txs_per_block;
        if block.txs.len() > max_txs {
            return Err(BlockRefusal::TooManyTxs {
                count: block.txs.len(),
                max: max_txs,
                since: params.since_text(),
            });
        }
        let ctx = AdmitContext {
            tip: head.tip.height,
            now: UnixTime(h.timestamp.0 / 1000),
        };
        let seen = |id: &TxId| self.on_chain(id);
        let results = self.admission.admit_many(&view, &ctx, &seen, &bytes);
        let mut in_block = HashSet::new();
        let mut txs = Vec::with_capacity(results.len());
        for (position, r) in results.into_iter().enumerate() {
            let tx = r.map_err(|rejection| BlockRefusal::Transaction {
                position,
                rejection,
            })?;
            if !in_block.insert(tx.id()) {
                return Err(BlockRefusal::DuplicateInBlock {
                    position,
                    tx_id: tx.id(),
                });
            }
            txs.push(tx);
        }
        let exec = self
            .executor
            .execute_block(
                &nodes,
                parent.state_root,
                &BlockContext {
                    height,
                    timestamp_ms: h.timestamp.0,
                },
                &txs,
            )
            .map_err(|e| BlockRefusal::Ledger(e.into()))?;
        if exec.update.root != h.state_root {
            return Err(BlockRefusal::Root {
                which: "state_root",
                declared: h.state_root,
                computed: exec.update.root,
            });
        }
        let receipts = receipts_root(&exec.receipts);
        if receipts != h.receipts_root {
            return Err(BlockRefusal::Root {
                which: "receipts_root",
                declared: h.receipts_root,
                computed: receipts,
            });
        }
        let next_set = exec.next_validators.hash();
        if let Some(l) = h.consensus
            && l.next_validator_set != next_set
        {
            return Err(BlockRefusal::NextValidatorSet {
                got: l.next_validator_set,
                expected: next_set,
            });
        }
        let hash = h.hash();
        Ok(ExecutedBlock {
            block,
            hash,
            receipts: exec.receipts,
            update: exec.update,
            parent_certificate: replaces_parent,
            next_validators: exec.epoch.is_some().then_some(exec.next_validators),
        })
    }

    /// Commits a decided block: the certificate must decide exactly this block under the
    /// height's validator set (a quorum of valid precommits), and the block must still extend
    /// the head. One synced batch writes the block, receipts, index, state nodes, certificate
    /// and tip, and drops the consensus log of the height.
    pub fn commit(
        &self,
        executed: ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<Head, LedgerError> {
        let _guard = lock(&self.committing);
        let height = executed.height();
        certificate
            .verify(
                &self.genesis.chain_id,
                height,
                &executed.hash,
                &self.validator_set(height),
            )
            .map_err(|source| LedgerError::Certificate { height, source })?;
        // The storage layer re-checks height, parent and roots in the same step as the write,
        // and stores the parent certificate the header names if it is not ours.
        let written = executed.update.nodes.clone();
        self.store.commit_certified_block_with_parent(
            &executed.block,
            &executed.receipts,
            executed.update,
            &certificate,
            executed.parent_certificate.as_ref(),
        )?;
        // Only once they are stored: the next block reads these paths first.
        self.nodes.committed(written);
        let head = Head {
            tip: Tip {
                height,
                hash: executed.hash,
            },
            header: executed.block.header,
            certificate: Some(certificate),
        };
        if let Some(next) = executed.next_validators {
            let mut sets = lock(&self.epochs);
            let from = Height(height.0.saturating_add(1));
            sets.retain(|(h, _)| *h < from);
            sets.push((from, Arc::new(next)));
        }
        *lock(&self.head) = head.clone();
        Ok(head)
    }
}

use types::Encode;

/// The set of `height`: the last of `epochs` (first heights ascending) that starts at or
/// before it, else `genesis`'s.
fn set_at(
    genesis: &Arc<ValidatorSet>,
    epochs: &[(Height, Arc<ValidatorSet>)],
    height: Height,
) -> Arc<ValidatorSet> {
    epochs
        .iter()
        .rev()
        .find(|(from, _)| *from <= height)
        .map_or_else(|| genesis.clone(), |(_, s)| s.clone())
}

fn block_len(chain_id: &types::ChainId, txs: &[Vec<u8>]) -> usize {
    Block::envelope_len(chain_id) + txs.iter().map(|t| Block::entry_len(t.len())).sum::<usize>()
}
