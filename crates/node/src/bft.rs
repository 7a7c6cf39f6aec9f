//! The BFT engine's host: runs `consensus` (Malachite's core, crates/consensus) on its own
//! thread over the ledger, the pool, the validator's token key and the `p2p` links.
//!
//! - Consensus runs on the thread `consensus`, never inside the async runtime: signing a vote
//!   or a proposal is a token round trip and blocks that thread only. Messages from peers come
//!   through a bounded channel: a slow consensus slows every link (their inbound queue is
//!   shared); what is kept for later (later heights, re-gossip) is bounded in count and bytes,
//!   and only messages a validator of the height signed are kept.
//! - `propose_block` hands the pool's oldest transactions (not removed) to
//!   `Ledger::propose`; `validate_block` runs `Ledger::verify` (a fresh proposal's timestamp
//!   within the configured bound of this node's clock, a re-proposal under a proof of lock
//!   only after its parent); each executed block waits, by hash, for a decision.
//! - The WAL is the store's `consensus_wal` table: every frame is synced before the engine
//!   goes on, so a vote is durable before it is signed or leaves the node; committing a block
//!   deletes its height's frames in the same batch. A restarted node replays the frames of the
//!   height it was deciding (`Consensus::recover`), so it never signs two different votes
//!   for one height, round and kind.
//! - A decision commits through `LocalNode::commit` (the ledger verifies the certificate);
//!   then links are revalidated (a revoked validator's link is cut) and, after the block
//!   interval, the next height starts: at once if transactions wait or a peer is already at
//!   it, otherwise after [`EMPTY_BLOCK_INTERVAL`].
//! - Sync: a node that sees messages of a later height, or decides nothing for a while, asks
//!   its peers for the block after its tip; a block with a certificate is verified (roots,
//!   execution, every transaction) and committed before the node takes part again.
//! - Transactions admitted through the API are gossiped; a transaction from a peer is
//!   admitted into the pool like a client's (refusals are counted, not answered).
//! - A follower (its certificate not in the validator set) runs the same engine without a
//!   key to vote with: it verifies and commits what the validators decide.
//! - A validator restored from a backup (the store's restore marker, [`crate::restored`]) has
//!   lost the WAL frames of what it signed after the backup: it runs as a follower, learning
//!   from its peers' messages and sync answers how far the network got, until it has
//!   committed that height; only then does it sign again. While it waits it says so (log,
//!   `gmchain_restore_guard`, health `signing`); a chain that needs it for a quorum cannot
//!   decide that height, and an operator then releases the guard (`gmchain node
//!   release-guard` on the stopped node, audit-logged at the next start).
//! - No validator signs at a height its peers show decided: when validators holding more than
//!   a third of the height's power (at least one honest) have signed messages of a later
//!   height, the height runs as a follower's and its block comes by sync. A node whose store
//!   was re-initialised behind the network (review r4 M1) therefore does not sign the old
//!   heights it catches up through; what it may sign at its first height, before any peer's
//!   message arrived, is the limit said in docs/ops/backup.md.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consensus::context::Timeouts;
use consensus::{
    Consensus, Decision, Equivocation, Host, HostError, Input, LivenessCertificate, Params,
    ProposedBlock, Timeout,
};
use crypto::Digest;
use ledger::{BlockRefusal, ExecutedBlock, TimeRule};
use p2p::{Inbound, NetworkHandle, PeerId, Topic};
use pki::Certificate;
use types::{
    Block, BlockHash, CommitCertificate, Decode, Encode, Height, Proposal, SignedProposal,
    SignedVote, Vote,
};

use crate::config::ConsensusConfig;
use crate::error::NodeError;
use crate::local::{Committed, LocalNode};

/// The p2p topic of liveness certificates (polka, precommit-any, skip).
pub const TOPIC_CERTIFICATE: u8 = 6;
/// The p2p topic of re-gossiped messages: the original topic byte, then its payload. Not
/// relayed, hence not deduplicated by the links: a validator that dropped a message while it
/// was behind gets it again.
pub const TOPIC_REGOSSIP: u8 = 7;

/// How often a validator held by its restore guard, with no height decided meanwhile, says
/// what holds it and what an operator can do.
const GUARD_WARNING_EVERY: Duration = Duration::from_secs(30);

/// How long a node with nothing to do waits before it starts the next height anyway (an
/// empty block keeps the chain's time moving and shows it is alive).
pub const EMPTY_BLOCK_INTERVAL: Duration = Duration::from_secs(10);

/// How often a node that is behind (or has decided nothing for [`SYNC_AFTER`]) asks its
/// peers for the block after its tip.
const SYNC_EVERY: Duration = Duration::from_millis(500);
/// Deciding nothing for this long makes a node ask for the next block.
const SYNC_AFTER: Duration = Duration::from_secs(3);
/// Behind the network without a block for this long: the peers asked may not hold the next
/// block (pruned nodes answer sync only from their mark), said at most this often.
const STRANDED_AFTER: Duration = Duration::from_secs(30);
/// Messages of the next height kept while it has not started.
const MAX_BUFFERED: usize = 4096;
/// A height that has not decided for this long gossips again every proposal, vote and
/// certificate of the height this node holds: a validator that (re)joined after they were
/// sent has none of them, and without them cannot reach a quorum (the engine rebroadcasts
/// only its own last vote). It goes on a topic the links do not deduplicate, so every peer
/// receives it again: bounded by the height's messages, every 2 s, only while stalled.
const REGOSSIP_AFTER: Duration = Duration::from_secs(2);
/// Messages of the current height kept for re-gossip.
const MAX_HEIGHT_MESSAGES: usize = 4096;
/// Bytes of later heights' messages kept while behind.
const MAX_BUFFERED_BYTES: usize = 64 << 20;
/// Proposals more rounds ahead of ours than this are dropped.
const MAX_ROUNDS_AHEAD: u32 = 10;
/// Gossiped transactions waiting for the admission thread.
const TX_ADMISSION_QUEUE: usize = 4096;

/// What the consensus thread waits for.
enum Event {
    /// A message from a peer.
    Net(Inbound),
    /// A transaction admitted locally arrived in the pool (the next height may start).
    Pool,
    /// Stop.
    Stop,
}

/// The running engine: the thread and the way to reach it.
pub struct BftEngine {
    events: SyncSender<Event>,
    thread: Option<std::thread::JoinHandle<Result<(), NodeError>>>,
}

impl std::fmt::Debug for BftEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BftEngine").finish_non_exhaustive()
    }
}

impl BftEngine {
    /// Asks the engine to stop and waits for it; returns its result.
    pub fn stop(mut self) -> Result<(), NodeError> {
        let _ = self.events.send(Event::Stop);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(NodeError::Server("the consensus thread panicked".into())),
            None => Ok(()),
        }
    }

    /// Whether the thread has ended (a fail-stop).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// Wire form of three values: u32 length and bytes of the first, of the second, then the
/// third (possibly empty). A proposal message is (signed proposal, block, the parent
/// certificate the block's header names); a sync response is (block, its certificate, the
/// parent certificate the block's header names).
fn encode_three(a: &[u8], b: &[u8], c: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + a.len() + b.len() + c.len());
    for part in [a, b] {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(c);
    out
}

fn split_three(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (a, rest) = split_prefixed(bytes)?;
    let (b, c) = split_prefixed(rest)?;
    Some((a, b, c))
}

/// The first byte of a host frame in the consensus WAL table: a parent certificate a proposer
/// sent beside its block (`HOST_FRAME_PARENT ‖ block hash ‖ certificate`). Consensus frames
/// start with their version (1), so the two never mix; recovery hands consensus only its own.
const HOST_FRAME_PARENT: u8 = 0xF0;

/// The parent certificate of a host frame, with the block it came beside.
fn parent_frame(frame: &[u8], limits: &types::Limits) -> Option<(BlockHash, CommitCertificate)> {
    let rest = frame.strip_prefix(&[HOST_FRAME_PARENT])?;
    let (hash, cert) = rest.split_at_checked(32)?;
    let hash = BlockHash(Digest(hash.try_into().ok()?));
    Some((hash, CommitCertificate::from_bytes(cert, limits).ok()?))
}

/// The parent certificate sent beside a block (empty: none).
fn parent_certificate(bytes: &[u8], limits: &types::Limits) -> Option<CommitCertificate> {
    if bytes.is_empty() {
        return None;
    }
    CommitCertificate::from_bytes(bytes, limits).ok()
}

fn split_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_at_checked(4)?;
    let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
    rest.split_at_checked(len)
}

/// Starts the engine: the consensus thread, and a forwarder from the links to it. Returns the
/// engine; admitted transactions are gossiped from now on.
pub fn start(
    core: Arc<LocalNode>,
    config: &ConsensusConfig,
    net: NetworkHandle,
    inbound: tokio::sync::mpsc::Receiver<Inbound>,
    on_failure: Box<dyn FnOnce() + Send>,
) -> Result<BftEngine, NodeError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(1024);
    // Gossiped transactions are admitted (signature, chain, state checks) on their own thread.
    let (tx_admission, admit_rx) = std::sync::mpsc::sync_channel::<Arc<[u8]>>(TX_ADMISSION_QUEUE);
    // Links → consensus thread (a blocking forwarder: backpressure reaches the links), except
    // transactions, which go straight to the admission thread (one thread hop less each, and
    // votes never queue behind them); a full admission queue drops them, counted.
    let fwd = tx.clone();
    let (fwd_admission, fwd_core) = (tx_admission.clone(), core.clone());
    std::thread::Builder::new()
        .name("p2p-inbound".into())
        .spawn(move || {
            let mut inbound = inbound;
            while let Some(m) = inbound.blocking_recv() {
                if m.topic == Topic::TRANSACTION {
                    if fwd_admission.try_send(m.payload).is_err() {
                        fwd_core.metrics.rejected("TX_GOSSIP_DROPPED");
                    }
                    continue;
                }
                if fwd.send(Event::Net(m)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| NodeError::Server(format!("cannot start the p2p forwarder: {e}")))?;
    // Admitted transactions go to the peers, and wake the engine if it waits for one.
    let idle = IdleFlag::default();
    let gossip_net = net.clone();
    let (wake, gossip_idle) = (tx.clone(), idle.clone());
    core.set_gossip(Box::new(move |bytes: &[u8]| {
        let _ = gossip_net.broadcast(Topic::TRANSACTION, bytes.to_vec());
        gossip_idle.wake(&wake);
    }));
    let genesis = core.genesis();
    let me = core.validator_id();
    // A node outside a height's validator set follows it (Malachite signs only for an
    // active validator of the height); governance may add or remove it later.
    let next = next_height(&core)?;
    let set = core.ledger().validator_set(next);
    let is_validator = set.get(&core.identity_for(&set).0).is_some();
    let timeouts = Timeouts {
        propose: Duration::from_millis(config.timeout_propose_ms),
        prevote: Duration::from_millis(config.timeout_prevote_ms),
        precommit: Duration::from_millis(config.timeout_precommit_ms),
        ..Timeouts::default()
    };
    let params = Params {
        chain_id: genesis.chain_id.clone(),
        me: Some(me),
        timeouts,
        max_block_bytes: core.store().limits().max_block_size,
    };
    let bound = config.timestamp_bound_ms;
    let admit_core = core.clone();
    let (admit_wake, admit_idle) = (tx.clone(), idle.clone());
    std::thread::Builder::new()
        .name("tx-admission".into())
        .spawn(move || {
            while let Ok(bytes) = admit_rx.recv() {
                // A peer's transaction wakes the engine as a client's does: the next height
                // may be waiting for one.
                if admit_core.submit_from_peer(&bytes).is_ok() {
                    admit_idle.wake(&admit_wake);
                }
            }
        })
        .map_err(|e| NodeError::Server(format!("cannot start the admission thread: {e}")))?;
    let thread_core = core.clone();
    let thread = std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            // A panic (ours or the engine's) is a failure like any other: the node stops.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Starting (or resuming from the WAL) may propose and log: not below the
                // free-space threshold.
                if !wait_for_space(&thread_core, &rx, &net) {
                    return Ok(());
                }
                Runner::new(thread_core, Box::new(net), params, bound)
                    .and_then(|r| r.run(rx, &idle))
            }))
            .unwrap_or_else(|_| Err(NodeError::Server("the consensus thread panicked".into())));
            if let Err(e) = &r {
                // Fail-stop: a validator that cannot decide or store stops serving.
                tracing::error!("consensus stopped: {e}; stopping the node");
                on_failure();
            }
            r
        })
        .map_err(|e| NodeError::Server(format!("cannot start the consensus thread: {e}")))?;
    tracing::info!(
        role = if is_validator {
            "validator"
        } else {
            "follower"
        },
        "consensus engine started"
    );
    Ok(BftEngine {
        events: tx,
        thread: Some(thread),
    })
}

/// Whether the block bytes beside signed proposal `p`, and the parent certificate beside
/// them, are what its signature covers: the block decodes, its header hashes to the block the
/// proposal names, and its transactions to the header's `tx_root` (checked last: it hashes
/// every transaction); and the parent certificate the header names is at hand: the one given
/// beside it, or one of the `known` (this node's own; one that came with a whole copy of
/// this block before). `None` if not; else whether the given certificate is the named one,
/// to keep. A relay's copy beside another certificate or none is thus dropped unless this
/// node holds the named one anyway, and a re-proposal under a proof of lock, which travels
/// beside its re-proposer's copy of the certificate its header names, is taken.
fn is_whole(
    p: &Proposal,
    block: &[u8],
    parent: Option<&CommitCertificate>,
    known: &[Option<Digest>],
    limits: &types::Limits,
) -> Option<bool> {
    let b = Block::from_bytes(block, limits).ok()?;
    let links = b.header.consensus?;
    if b.header.hash() != p.block {
        return None;
    }
    let given_named = parent.is_some_and(|c| c.hash() == links.last_commit);
    let named_at_hand = given_named || known.contains(&Some(links.last_commit));
    (named_at_hand && b.tx_root() == b.header.tx_root).then_some(given_named)
}

/// Who the links charge a verified consensus message to: its validator, or for a liveness
/// certificate (signed by a quorum) one name for all of them.
fn signer_of(input: &Input) -> Digest {
    match input {
        Input::Proposal { proposal, .. } => proposal.proposal.proposer,
        Input::Vote(v) => v.vote.validator,
        _ => CERTIFICATE_SIGNER,
    }
}

/// Whether a warning about a wait is due: the wait passed `every`, and so did the time since
/// the same warning was last given (then recorded in `last` as given now).
fn warning_due(
    last: &mut Option<Instant>,
    now: Instant,
    waited: Duration,
    every: Duration,
) -> bool {
    let due = waited > every && last.is_none_or(|t| now.duration_since(t) >= every);
    if due {
        *last = Some(now);
    }
    due
}

/// The author liveness certificates are charged to in the links' store of recent messages.
const CERTIFICATE_SIGNER: Digest = Digest([0xff; 32]);

/// What the engine needs of the links (the p2p network; a recording stand-in in tests).
pub trait Links: Send {
    /// Sends to every link, never waiting.
    fn broadcast(&self, topic: Topic, payload: Vec<u8>);
    /// Sends to one peer, never waiting.
    fn send(&self, peer: PeerId, topic: Topic, payload: Vec<u8>);
    /// Re-judges every live link; returns how many were cut.
    fn revalidate(&self) -> usize;
    /// Sends to every link a message `author` signed (this node's own), never waiting.
    fn broadcast_vouched(&self, topic: Topic, payload: Vec<u8>, author: Digest);
    /// Says that relayed message `id` (`topic`, `payload`) is authentic, signed in full by
    /// `author`, and of use.
    fn vouch(&self, id: &Digest, topic: Topic, payload: &Arc<[u8]>, author: Digest);
}

impl Links for NetworkHandle {
    fn broadcast(&self, topic: Topic, payload: Vec<u8>) {
        let _ = NetworkHandle::broadcast(self, topic, payload);
    }

    fn send(&self, peer: PeerId, topic: Topic, payload: Vec<u8>) {
        let _ = NetworkHandle::send(self, peer, topic, payload);
    }

    fn revalidate(&self) -> usize {
        NetworkHandle::revalidate(self)
    }

    fn broadcast_vouched(&self, topic: Topic, payload: Vec<u8>, author: Digest) {
        let _ = NetworkHandle::broadcast_vouched(self, topic, payload, author);
    }

    fn vouch(&self, id: &Digest, topic: Topic, payload: &Arc<[u8]>, author: Digest) {
        NetworkHandle::vouch(self, id, topic, payload, author);
    }
}

/// What consensus calls back into.
struct NodeHost {
    core: Arc<LocalNode>,
    net: Box<dyn Links>,
    bound_ms: u64,
    height: Height,
    wal_seq: u32,
    timers: BTreeMap<Timeout, Instant>,
    /// Blocks of the current height this node executed (proposed or verified), by hash.
    executed: HashMap<BlockHash, ExecutedBlock>,
    /// The blocks this node proposed at the current height.
    own: HashSet<BlockHash>,
    /// The parent certificates proposers sent beside their blocks, by block hash.
    parent_certs: HashMap<BlockHash, CommitCertificate>,
    /// The current height's messages (topic, payload), sent or received, for re-gossip.
    height_messages: Vec<(Topic, Vec<u8>)>,
    /// Verdicts on the current height's blocks, by block and by whether the clock was judged
    /// (a fresh proposal) or not (a re-proposal under a proof of lock): a block is judged once
    /// per kind, when first seen (a fresh one's timestamp against the clock of that moment),
    /// and keeps that verdict.
    judged: HashMap<(BlockHash, bool), bool>,
    /// Set by `decide`; the runner starts the next height.
    decided: Option<Height>,
    /// A failure that must stop the node (a decided block that cannot be stored).
    fatal: Option<NodeError>,
    /// A block decided while the free space ran out (`crate::disk`): committed, before
    /// anything else, once the space returns.
    pending: Option<(ExecutedBlock, CommitCertificate)>,
    /// The identity this node decides the current height with (its `[key]`, or its
    /// `[next_key]` once governance rotated the validator to it).
    me: Digest,
    signer: Arc<dyn crypto::Signer>,
}

impl NodeHost {
    fn limits(&self) -> &types::Limits {
        self.core.store().limits()
    }

    fn execute_decided(&self, block: &BlockHash, bytes: &[u8]) -> Result<ExecutedBlock, NodeError> {
        let b = Block::from_bytes(bytes, self.limits()).map_err(|e| {
            NodeError::Server(format!("decided block {block} does not decode: {e}"))
        })?;
        self.core
            .ledger()
            .verify(b, TimeRule::Decided, self.parent_certs.get(block))
            .map_err(|e| NodeError::Server(format!("decided block {block} does not verify: {e}")))
    }
}

fn host_error(e: impl std::fmt::Display) -> HostError {
    HostError(e.to_string())
}

impl NodeHost {
    fn new(core: Arc<LocalNode>, net: Box<dyn Links>, bound_ms: u64, height: Height) -> Self {
        let (me, signer) = core.identity_for(&core.ledger().validator_set(height));
        NodeHost {
            me,
            signer,
            core,
            net,
            bound_ms,
            height,
            wal_seq: 0,
            timers: BTreeMap::new(),
            executed: HashMap::new(),
            own: HashSet::new(),
            parent_certs: HashMap::new(),
            height_messages: Vec::new(),
            judged: HashMap::new(),
            decided: None,
            fatal: None,
            pending: None,
        }
    }

    /// Judges the block `bytes` that came with `proposal`: `None` if they are not the
    /// block the proposal names (they do not decode, or their header or transactions are
    /// not the ones the proposer signed, or the parent certificate that came with them is
    /// not the one the header names): a verdict on what a relay sent, not on the proposer's
    /// block, so never kept for its hash.
    fn judge_block(&mut self, proposal: &Proposal, bytes: &[u8]) -> Option<bool> {
        let block = match Block::from_bytes(bytes, self.limits()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    height = proposal.height.0,
                    "proposed block does not decode: {e}"
                );
                return None;
            }
        };
        if block.header.hash() != proposal.block {
            tracing::warn!(
                height = proposal.height.0,
                "the block beside the proposal is not the one it names"
            );
            return None;
        }
        // A fresh proposal's block is its proposer's; a re-proposal under a proof of lock
        // carries the block another validator proposed in an earlier round.
        if proposal.pol_round.is_none() && block.header.proposer != proposal.proposer {
            tracing::warn!(
                height = proposal.height.0,
                "the proposed block is not its proposer's"
            );
            return Some(false);
        }
        // A fresh proposal is judged against our clock; a re-proposal under a proof of lock
        // was judged when 2f+1 prevoted it.
        let rule = match proposal.pol_round {
            None => TimeRule::Live {
                now_ms: self.core.now_ms(),
                bound_ms: self.bound_ms,
            },
            Some(_) => TimeRule::Decided,
        };
        match self
            .core
            .ledger()
            .verify(block, rule, self.parent_certs.get(&proposal.block))
        {
            Ok(executed) => {
                self.executed.insert(executed.hash(), executed);
                Some(true)
            }
            Err(e) => {
                tracing::warn!(
                    height = proposal.height.0,
                    round = proposal.round,
                    "prevoting nil: {e}"
                );
                self.core.metrics.rejected("BLOCK_REFUSED");
                match e {
                    // The transactions beside the header, or the parent certificate beside
                    // the block, are a relay's, not what the proposer signed.
                    BlockRefusal::Root {
                        which: "tx_root", ..
                    }
                    | BlockRefusal::TxCount { .. }
                    | BlockRefusal::LastCommit { .. } => None,
                    _ => Some(false),
                }
            }
        }
    }

    fn remember(&mut self, topic: Topic, payload: &[u8]) {
        if self.height_messages.len() < MAX_HEIGHT_MESSAGES
            && !self
                .height_messages
                .iter()
                .any(|(t, p)| *t == topic && p.as_slice() == payload)
        {
            self.height_messages.push((topic, payload.to_vec()));
        }
    }
}

impl Host for NodeHost {
    fn sign_vote(&mut self, vote: &Vote) -> Result<SignedVote, HostError> {
        let signed = vote
            .clone()
            .sign(self.signer.as_ref())
            .map_err(host_error)?;
        self.core.metrics.hsm_signatures.fetch_add(1, Relaxed);
        Ok(signed)
    }

    fn sign_proposal(&mut self, proposal: &Proposal) -> Result<SignedProposal, HostError> {
        let signed = proposal
            .clone()
            .sign(self.signer.as_ref())
            .map_err(host_error)?;
        self.core.metrics.hsm_signatures.fetch_add(1, Relaxed);
        Ok(signed)
    }

    fn propose_block(&mut self, height: Height, _round: u32) -> Result<ProposedBlock, HostError> {
        let proposed = self
            .core
            .ledger()
            .propose(self.core.candidates(), self.me, self.core.now_ms())
            .map_err(host_error)?;
        self.core.drop_refused(proposed.dropped);
        let executed = proposed.executed;
        if executed.height() != height {
            return Err(HostError(format!(
                "asked to propose height {height}, but the ledger's next height is {}",
                executed.height()
            )));
        }
        let out = ProposedBlock {
            hash: executed.hash(),
            bytes: executed.block().to_bytes(),
            timestamp: executed.block().header.timestamp,
        };
        self.own.insert(executed.hash());
        self.executed.insert(executed.hash(), executed);
        Ok(out)
    }

    fn validate_block(&mut self, proposal: &Proposal, bytes: &[u8]) -> bool {
        // Our own proposal was made by the ledger from our clock.
        if self.own.contains(&proposal.block) {
            return true;
        }
        let key = (proposal.block, proposal.pol_round.is_none());
        if let Some(v) = self.judged.get(&key) {
            return *v;
        }
        let verdict = match self.executed.get(&proposal.block) {
            // Executed already (judged as a re-proposal): a fresh proposal of it still needs
            // its timestamp judged against our clock; execution need not run again.
            Some(e) if proposal.pol_round.is_none() => {
                let ts = e.block().header.timestamp.0;
                let parent = self.core.tip().1.timestamp.0;
                let ok = ts > parent && ts.abs_diff(self.core.now_ms()) <= self.bound_ms;
                if !ok {
                    tracing::warn!(
                        height = proposal.height.0,
                        "prevoting nil: the timestamp {ts} ms is not within {} ms of this node's clock",
                        self.bound_ms
                    );
                }
                ok
            }
            Some(_) => true,
            None => match self.judge_block(proposal, bytes) {
                Some(v) => v,
                None => return false,
            },
        };
        self.judged.insert(key, verdict);
        verdict
    }

    fn broadcast_proposal(&mut self, proposal: &SignedProposal, block: &[u8]) {
        // The certificate the block's header names for its parent travels with it: another
        // validator may hold another quorum for the parent. Ours for a block we made; for a
        // re-proposal of another validator's block under a proof of lock, the one that came
        // with it (ours would make the copy not whole to everyone else).
        // (`parent_certs` holds only certificates a header named, and is restored from the
        // WAL after a restart.)
        let parent = self
            .parent_certs
            .get(&proposal.proposal.block)
            .cloned()
            .or_else(|| self.core.ledger().head().certificate)
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let payload = encode_three(&proposal.to_bytes(), block, &parent);
        self.remember(Topic::PROPOSAL, &payload);
        let signer = proposal.proposal.proposer;
        self.net.broadcast_vouched(Topic::PROPOSAL, payload, signer);
    }

    fn broadcast_vote(&mut self, vote: &SignedVote) {
        let payload = vote.to_bytes();
        self.remember(Topic::VOTE, &payload);
        self.net
            .broadcast_vouched(Topic::VOTE, payload, vote.vote.validator);
    }

    fn broadcast_certificate(&mut self, certificate: &LivenessCertificate) {
        if let Ok(topic) = Topic::new(TOPIC_CERTIFICATE) {
            let payload = certificate.to_bytes();
            self.remember(topic, &payload);
            self.net
                .broadcast_vouched(topic, payload, CERTIFICATE_SIGNER);
        }
    }

    fn schedule_timeout(&mut self, timeout: Timeout, after: Duration) {
        self.timers.insert(timeout, Instant::now() + after);
    }

    fn cancel_timeout(&mut self, timeout: Timeout) {
        self.timers.remove(&timeout);
    }

    fn cancel_all_timeouts(&mut self) {
        self.timers.clear();
    }

    fn wal_append(&mut self, frame: &[u8]) -> Result<(), HostError> {
        self.core
            .store()
            .wal_append(self.height, self.wal_seq, frame)
            .map_err(host_error)?;
        self.wal_seq += 1;
        Ok(())
    }

    fn decide(&mut self, decision: Decision) {
        let executed = match self.executed.remove(&decision.block) {
            Some(e) => Ok(e),
            None => match &decision.bytes {
                Some(bytes) => self.execute_decided(&decision.block, bytes),
                None => Err(NodeError::Server(format!(
                    "block {} was decided but this node has not got it",
                    decision.block
                ))),
            },
        };
        let executed = match executed {
            Ok(e) => e,
            Err(e) => {
                // Fail-stop: a decided block this node cannot execute.
                tracing::error!(
                    height = decision.height.0,
                    "cannot commit a decided block: {e}"
                );
                self.fatal = Some(e);
                return;
            }
        };
        // The commit's own reading of the free space decides: the space ran out since the
        // runner's reading, the decision is kept, not written, and committed first once the
        // space returns (the runner takes no input meanwhile).
        match self.core.commit_or_hold(executed, decision.certificate) {
            Ok(Committed::Written) => {
                self.decided = Some(decision.height);
                tracing::debug!(
                    height = decision.height.0,
                    round = decision.round,
                    "decided"
                );
            }
            Ok(Committed::Held { block, why }) => {
                tracing::warn!(
                    height = decision.height.0,
                    "a decided block is held until the space returns: {why}"
                );
                self.pending = Some(*block);
            }
            Err(e) => {
                // Fail-stop: a decided block this node cannot store.
                tracing::error!(
                    height = decision.height.0,
                    "cannot commit a decided block: {e}"
                );
                self.fatal = Some(e);
            }
        }
    }

    fn evidence(&mut self, evidence: Equivocation) {
        self.core.metrics.rejected("CONSENSUS_EQUIVOCATION");
        tracing::warn!(
            validator = %evidence.validator,
            height = evidence.first.vote.height.0,
            round = evidence.first.vote.round,
            "equivocation: a validator signed two different votes for one height, round and kind"
        );
    }
}

/// The consensus thread's state.
struct Runner {
    host: NodeHost,
    engine: Consensus,
    params: Params,
    /// Messages for the next height while it has not started.
    buffered: VecDeque<Input>,
    /// Messages of later heights while this node is behind.
    future: VecDeque<(Topic, Vec<u8>, Input)>,
    future_bytes: usize,
    /// The block each (height, round, proposer) proposed, as first seen.
    proposals_seen: HashMap<(Height, u32, Digest), BlockHash>,
    /// The liveness certificates taken, by height, round and what they prove: one suffices,
    /// and any f+1 (or 2f+1) of a round's votes make another, so later ones are dropped
    /// (a relay could otherwise mint thousands from one round, each vouched for and kept).
    certificates_seen: HashSet<(Height, u32, consensus::CertificateKind)>,
    /// The votes held in `buffered` and `future`, by height, round, kind and validator: the
    /// re-gossip topic is not deduplicated by the links, so copies of one vote must not fill
    /// the buffers (and crowd out the proposal).
    votes_held: HashSet<(Height, u32, types::VoteKind, Digest)>,
    /// When the next height may start (block interval after the last decision), and when it
    /// must (the empty-block interval).
    start_after: Option<(Instant, Instant)>,
    last_progress: Instant,
    last_sync_request: Option<Instant>,
    // When "no peer sends the next block" was last said (pruned peers, snapshot join).
    last_stranded_warning: Option<Instant>,
    last_regossip: Option<Instant>,
    /// The highest height seen in a peer's message.
    highest_seen: Height,
    sync_answered: HashMap<(PeerId, u64), Instant>,
    /// Set while the store's restore marker is: every height runs as a follower.
    guard: Option<crate::restored::SignGuard>,
    last_guard_warning: Option<Instant>,
    /// The highest height of an authentic message each validator signed (validators of the
    /// heights concerned only, so its size is bounded by the sets').
    peers_at: HashMap<Digest, Height>,
    /// Whether the height under way is followed because the peers show it decided (said
    /// once when it begins, not for every height of a catch-up).
    following_decided: bool,
}

impl Runner {
    fn new(
        core: Arc<LocalNode>,
        net: Box<dyn Links>,
        params: Params,
        bound_ms: u64,
    ) -> Result<Self, NodeError> {
        let next = next_height(&core)?;
        let wal = core.store().wal_entries()?;
        let frames: Vec<Vec<u8>> = wal
            .iter()
            .filter(|(h, _, f)| *h >= next && f.first() != Some(&HOST_FRAME_PARENT))
            .map(|(_, _, f)| f.clone())
            .collect();
        // Parent certificates proposers sent at this height: a block decided again from
        // the WAL may name one of them rather than ours.
        let parents: Vec<(BlockHash, CommitCertificate)> = wal
            .iter()
            .filter(|(h, _, _)| *h == next)
            .filter_map(|(_, _, f)| parent_frame(f, core.store().limits()))
            .collect();
        let wal_seq = wal
            .iter()
            .filter(|(h, _, _)| *h == next)
            .map(|(_, s, _)| s + 1)
            .max()
            .unwrap_or(0);
        let mut host = NodeHost::new(core.clone(), net, bound_ms, next);
        host.wal_seq = wal_seq;
        host.parent_certs.extend(parents);
        let validators = core.ledger().validator_set(next).as_ref().clone();
        let guard = crate::restored::SignGuard::load(core.store().backend())?;
        // What the operator sees of the guard: a validator's only (a follower joined from a
        // snapshot carries the marker too, but signs nothing anyway).
        let guarded_validator = guard.is_some() && validators.get(&host.me).is_some();
        core.metrics
            .restore_guard
            .store(u64::from(guarded_validator), Relaxed);
        if let Some(g) = guard.as_ref().filter(|_| guarded_validator) {
            core.metrics
                .restore_guard_height
                .store(g.known().0, Relaxed);
            tracing::warn!(
                height = next.0,
                learned = g.known().0,
                "restored from a backup: this validator signs nothing (follows) until it has committed the highest height its peers show the network reached"
            );
        }
        let mut params = params;
        params.me = guard.is_none().then_some(host.me);
        let engine = if frames.is_empty() {
            let mut e = Consensus::new(params.clone());
            e.handle(
                Input::StartHeight {
                    height: next,
                    validators,
                },
                &mut host,
            )
            .map_err(consensus_error)?;
            e
        } else {
            tracing::info!(
                height = next.0,
                frames = frames.len(),
                "resuming consensus from the write-ahead log"
            );
            Consensus::recover(params.clone(), next, validators, &frames, &mut host)
                .map_err(consensus_error)?
        };
        let mut runner = Self {
            host,
            engine,
            params,
            buffered: VecDeque::new(),
            future: VecDeque::new(),
            future_bytes: 0,
            proposals_seen: HashMap::new(),
            certificates_seen: HashSet::new(),
            votes_held: HashSet::new(),
            start_after: None,
            last_progress: Instant::now(),
            last_sync_request: None,
            last_stranded_warning: None,
            last_regossip: None,
            highest_seen: Height(0),
            sync_answered: HashMap::new(),
            guard,
            last_guard_warning: None,
            peers_at: HashMap::new(),
            following_decided: false,
        };
        // A decision reached while replaying the WAL (or a failure) is acted on now.
        if let Some(e) = runner.host.fatal.take() {
            return Err(e);
        }
        if let Some(h) = runner.host.decided.take() {
            runner.after_commit(h);
            runner.guard_committed(h, false)?;
        }
        Ok(runner)
    }

    /// After a commit of `height` (decided by the peers' `live` votes, or not): the end of a
    /// restored validator's guard, if it has come.
    fn guard_committed(&mut self, height: Height, live: bool) -> Result<(), NodeError> {
        let Some(g) = self.guard.as_mut() else {
            return Ok(());
        };
        if g.committed(self.host.core.store().backend(), height, live)? {
            tracing::info!(
                height = height.0,
                "restored from a backup: the chain passed the height the network had reached; this validator signs again from height {}",
                height.0 + 1
            );
            self.guard = None;
            self.core().metrics.restore_guard.store(0, Relaxed);
        }
        Ok(())
    }

    /// A peer showed the network at `height`: a restored validator's guard learns it.
    fn guard_learn(&mut self, height: Height) -> Result<(), NodeError> {
        let next = next_height(self.core())?;
        if let Some(g) = self.guard.as_mut() {
            g.learn(self.host.core.store().backend(), height, next)?;
            let known = g.known().0;
            self.core()
                .metrics
                .restore_guard_height
                .store(known, Relaxed);
        }
        Ok(())
    }

    /// Whether validators holding more than a third of `validators`' power (so at least one
    /// honest validator, which moves on only after committing) have signed messages of a
    /// height above `height`: then `height` is decided, and signing in it could only
    /// contradict what this validator's key may have signed there before (a store
    /// re-initialised or copied behind the network).
    fn decided_by_peers(&self, height: Height, validators: &types::ValidatorSet) -> bool {
        let power: u64 = validators
            .validators()
            .iter()
            .filter(|v| self.peers_at.get(&v.id).is_some_and(|h| *h > height))
            .map(|v| v.power)
            .sum();
        power >= validators.honest_threshold()
    }

    fn core(&self) -> &Arc<LocalNode> {
        &self.host.core
    }

    fn handle(&mut self, input: Input) -> Result<(), NodeError> {
        let r = self.engine.handle(input, &mut self.host);
        if let Some(e) = self.host.fatal.take() {
            return Err(e);
        }
        if let Err(e) = r {
            // A host failure (a WAL write, the token) poisons this instance: fail-stop, the
            // restart resumes from the WAL.
            return Err(consensus_error(e));
        }
        if let Some(h) = self.host.decided.take() {
            self.after_commit(h);
            self.guard_committed(h, true)?;
        }
        Ok(())
    }

    /// After a commit (decided here or synced): new links check, the next height scheduled.
    fn after_commit(&mut self, height: Height) {
        self.last_progress = Instant::now();
        self.host.executed.clear();
        self.host.own.clear();
        self.host.parent_certs.clear();
        self.proposals_seen.clear();
        self.certificates_seen.clear();
        self.votes_held.retain(|k| k.0 > height);
        self.host.height_messages.clear();
        self.host.judged.clear();
        self.host.timers.clear();
        let revoked = self.host.net.revalidate();
        if revoked > 0 {
            tracing::warn!(
                links = revoked,
                "links cut: their certificates no longer pass"
            );
        }
        let now = Instant::now();
        let interval = Duration::from_millis(self.core().block_interval_ms());
        self.start_after = Some((now + interval, now + EMPTY_BLOCK_INTERVAL.max(interval)));
        self.host.height = Height(height.0 + 1);
        self.host.wal_seq = 0;
    }

    /// Starts the next height if it is time: the block interval passed and transactions wait
    /// or a peer is already at it, or the empty-block interval passed.
    fn maybe_start_height(&mut self, now: Instant) -> Result<(), NodeError> {
        let Some((earliest, latest)) = self.start_after else {
            return Ok(());
        };
        if now < earliest || (!self.height_wanted() && now < latest) {
            return Ok(());
        }
        self.start_after = None;
        let height = next_height(self.core())?;
        self.host.height = height;
        let validators = self.core().ledger().validator_set(height).as_ref().clone();
        // The identity of this height: after a governance rotation, the `[next_key]`.
        let (me, signer) = self.core().identity_for(&validators);
        if me != self.host.me {
            tracing::info!(
                height = height.0,
                validator = %me.to_hex(),
                "deciding with another validator key from this height (rotated by governance)"
            );
        }
        self.host.me = me;
        self.host.signer = signer;
        // A restored validator follows until its guard ends (crate::restored); no validator
        // signs at a height its peers show decided.
        let validator = validators.get(&me).is_some();
        let decided = self.decided_by_peers(height, &validators);
        if decided && !self.following_decided && self.guard.is_none() && validator {
            tracing::info!(
                height = height.0,
                seen = self.highest_seen.0,
                "height {} is decided by the peers (more than a third of the power signed later heights): following it and the next ones, signing nothing, until this node has caught up",
                height.0
            );
        }
        self.following_decided = decided;
        self.params.me = (self.guard.is_none() && !decided).then_some(me);
        self.core()
            .metrics
            .restore_guard
            .store(u64::from(self.guard.is_some() && validator), Relaxed);
        self.engine = Consensus::new(self.params.clone());
        self.handle(Input::StartHeight { height, validators })?;
        let buffered: Vec<Input> = self.buffered.drain(..).collect();
        for input in buffered {
            if input_height(&input).is_none_or(|h| h == height) {
                self.handle(input)?;
            }
        }
        // Messages that arrived while we were behind: this height's now, later ones kept.
        let future: Vec<(Topic, Vec<u8>, Input)> = self.future.drain(..).collect();
        self.future_bytes = 0;
        for (topic, payload, input) in future {
            match input_height(&input) {
                Some(h) if h == height => {
                    if let Input::Proposal { proposal, .. } = &input {
                        // The commit cleared `proposals_seen`: one block per proposer and
                        // round again, among the replayed ones and those that come next.
                        let p = &proposal.proposal;
                        let key = (p.height, p.round, p.proposer);
                        if self.proposals_seen.contains_key(&key) || p.round > MAX_ROUNDS_AHEAD {
                            continue;
                        }
                        self.proposals_seen.insert(key, p.block);
                    }
                    if let Input::Certificate(c) = &input
                        && !self.certificates_seen.insert((c.height, c.round, c.kind))
                    {
                        continue;
                    }
                    self.host.remember(topic, &payload);
                    if let Input::Proposal { proposal, .. } = &input
                        && let Some((_, _, parent)) = split_three(&payload)
                        && let Some(c) = parent_certificate(parent, self.host.core.store().limits())
                    {
                        self.keep_parent_certificate(height, proposal.proposal.block, c)?;
                    }
                    self.handle(input)?;
                }
                Some(h) if h > height => {
                    self.future_bytes += payload.len();
                    self.future.push_back((topic, payload, input));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_message(&mut self, mut m: Inbound) -> Result<(), NodeError> {
        if m.topic.number() == TOPIC_REGOSSIP {
            // Unwrap: the original topic and payload (consensus messages only).
            let Some((&t, rest)) = m.payload.split_first() else {
                return Ok(());
            };
            let topic = match Topic::new(t) {
                Ok(topic)
                    if topic == Topic::PROPOSAL
                        || topic == Topic::VOTE
                        || t == TOPIC_CERTIFICATE =>
                {
                    topic
                }
                _ => return Ok(()),
            };
            m = Inbound {
                peer: m.peer,
                topic,
                payload: rest.into(),
                id: None,
            };
        }
        let limits = self.core().store().limits().clone();
        let mut parent_cert = None;
        let input = match m.topic {
            Topic::PROPOSAL => {
                let Some((sp, block, parent)) = split_three(&m.payload) else {
                    return Ok(());
                };
                let Ok(proposal) = SignedProposal::from_bytes(sp, &limits) else {
                    return Ok(());
                };
                parent_cert = parent_certificate(parent, &limits);
                Input::Proposal {
                    proposal,
                    block: block.to_vec(),
                }
            }
            Topic::VOTE => match SignedVote::from_bytes(&m.payload, &limits) {
                Ok(v) => Input::Vote(v),
                Err(_) => return Ok(()),
            },
            Topic::SYNC_REQUEST => {
                self.answer_sync(m.peer, &m.payload);
                return Ok(());
            }
            Topic::SYNC_RESPONSE => return self.on_synced(&m.payload),
            t if t.number() == TOPIC_CERTIFICATE => {
                match LivenessCertificate::from_bytes(&m.payload) {
                    Ok(c) => Input::Certificate(c),
                    Err(_) => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        // Only what a validator of the height signed goes further: nothing unauthenticated is
        // kept, re-gossiped or allowed to move `highest_seen`.
        if !self.authentic(&input) {
            return Ok(());
        }
        // Of use only at this height, or at one of the next 64 while this node is behind (sync
        // asks for the block after our tip, in `tick`; the peers will not send those messages
        // again: their copies would be duplicates to our links) if the buffers have room.
        // Nothing else is recorded as seen or taken below.
        let current = next_height(self.core())?;
        let height = input_height(&input);
        if let Some(h) = height {
            self.guard_learn(h)?;
            let signer = signer_of(&input);
            if signer != CERTIFICATE_SIGNER {
                let at = self.peers_at.entry(signer).or_insert(h);
                *at = (*at).max(h);
            }
        }
        if let Some(h) = height
            && h > self.highest_seen
        {
            self.highest_seen = h;
            self.core()
                .metrics
                .sync_target
                .store(h.0, std::sync::atomic::Ordering::Relaxed);
        }
        let ahead = height.is_some_and(|h| h > current);
        // Whether the parent certificate beside a proposal is the one its header names.
        let mut keep_given = false;
        let fits = if ahead {
            height.is_some_and(|h| h.0 <= current.0.saturating_add(64))
                && self.future.len() < MAX_BUFFERED
                && self.future_bytes.saturating_add(m.payload.len()) <= MAX_BUFFERED_BYTES
        } else {
            self.start_after.is_none() || self.buffered.len() < MAX_BUFFERED
        };
        if height.is_some_and(|h| h < current) || !fits {
            return Ok(());
        }
        if let Input::Vote(v) = &input
            && (ahead || self.start_after.is_some())
        {
            // Held for a height not started yet: only of the next one, of its first rounds
            // (it starts at round 0; later rounds' votes come again, re-gossiped, when it
            // stalls), once each. A validator, even a faulty one, holds at most
            // 2 × (MAX_ROUNDS_AHEAD + 1) places, so its votes cannot crowd out the proposal.
            let v = &v.vote;
            if v.round > MAX_ROUNDS_AHEAD
                || v.height.0 > current.0.saturating_add(1)
                || !self
                    .votes_held
                    .insert((v.height, v.round, v.kind, v.validator))
            {
                return Ok(());
            }
        }
        if let Input::Proposal { proposal, block } = &input {
            let p = &proposal.proposal;
            // A proposal of a round far ahead (a later height starts at round 0), with a lock
            // round not before it, a second block from one proposer for one round, or a copy
            // of one already taken: dropped before any block is decoded, executed or logged
            // (a faulty proposer cannot make us validate many blocks per height, nor a relay
            // make us check one many times).
            let round_now = if ahead || self.start_after.is_some() {
                0
            } else {
                self.engine.round().unwrap_or(0)
            };
            let key = (p.height, p.round, p.proposer);
            if p.round > round_now.saturating_add(MAX_ROUNDS_AHEAD)
                || p.pol_round.is_some_and(|r| r >= p.round)
                || self.proposals_seen.contains_key(&key)
                || self.proposals_seen.len() >= MAX_BUFFERED
            {
                return Ok(());
            }
            // The signature covers the block's hash only: a relay may send the signed
            // proposal beside other bytes, or beside another parent certificate, or none,
            // first. Such a copy is dropped whole (not judged, kept, logged or vouched for),
            // so the proposer's own copy, when it comes, is judged on its merits.
            let known = [
                Some(self.core().ledger().head().last_commit()),
                self.host
                    .parent_certs
                    .get(&p.block)
                    .map(CommitCertificate::hash),
            ];
            let given = parent_cert.as_ref();
            let Some(whole_given) = is_whole(p, block, given, &known, &limits) else {
                return Ok(());
            };
            keep_given = whole_given;
            self.proposals_seen.insert(key, p.block);
            if let Some(c) = parent_cert.filter(|_| keep_given) {
                self.keep_parent_certificate(p.height, p.block, c)?;
            }
        }
        if let Input::Certificate(c) = &input
            && (self.certificates_seen.len() >= MAX_BUFFERED
                || !self.certificates_seen.insert((c.height, c.round, c.kind)))
        {
            return Ok(());
        }
        // Kept by the links to answer peers' wants, vouched for now that it is of use: a flood
        // of unverified messages must not push it out (it is charged to its signer, not the
        // relay).
        if let Some(id) = &m.id {
            self.host
                .net
                .vouch(id, m.topic, &m.payload, signer_of(&input));
        }
        if ahead {
            // A proposal's certificate goes with it only if its header names it (replayed
            // when that height starts, and re-gossiped).
            let payload = match (&input, split_three(&m.payload)) {
                (Input::Proposal { .. }, Some((sp, block, parent)))
                    if !parent.is_empty() && !keep_given =>
                {
                    encode_three(sp, block, &[])
                }
                _ => m.payload.to_vec(),
            };
            self.future_bytes += payload.len();
            self.future.push_back((m.topic, payload, input));
            return Ok(());
        }
        if matches!(
            &input,
            Input::Proposal { .. } | Input::Vote(_) | Input::Certificate(_)
        ) {
            self.host.remember(m.topic, &m.payload);
        }
        if self.start_after.is_some() {
            self.buffered.push_back(input);
            return self.maybe_start_height(Instant::now());
        }
        self.handle(input)
    }

    /// Keeps the parent certificate a proposer sent beside `block` of `height`. At the
    /// current height one that is not ours is also written to the WAL (synced) before the
    /// proposal reaches consensus, which may log the block and decide it: a restart that
    /// decides the block again from the WAL then still holds the certificate its header
    /// names. (A later height's is kept in memory only: it is read again when that height
    /// starts.)
    fn keep_parent_certificate(
        &mut self,
        height: Height,
        block: BlockHash,
        cert: CommitCertificate,
    ) -> Result<(), NodeError> {
        if self.host.parent_certs.contains_key(&block) {
            return Ok(());
        }
        let ours = self.core().ledger().head().certificate.map(|c| c.hash());
        if height == self.host.height && ours != Some(cert.hash()) {
            let mut frame = vec![HOST_FRAME_PARENT];
            frame.extend_from_slice(block.as_bytes());
            frame.extend_from_slice(&cert.to_bytes());
            self.host
                .wal_append(&frame)
                .map_err(|e| NodeError::Server(format!("consensus WAL: {}", e.0)))?;
        }
        self.host.parent_certs.insert(block, cert);
        Ok(())
    }

    /// Whether a consensus message is signed by a validator of its height, for this chain.
    fn authentic(&self, input: &Input) -> bool {
        let core = self.core();
        let chain = &core.genesis().chain_id;
        match input {
            Input::Proposal { proposal, .. } => {
                let p = &proposal.proposal;
                &p.chain_id == chain
                    && core
                        .ledger()
                        .validator_set(p.height)
                        .get(&p.proposer)
                        .is_some_and(|(_, v)| proposal.verify(&v.public_key).is_ok())
            }
            Input::Vote(v) => {
                &v.vote.chain_id == chain
                    && core
                        .ledger()
                        .validator_set(v.vote.height)
                        .get(&v.vote.validator)
                        .is_some_and(|(_, e)| v.verify(&e.public_key).is_ok())
            }
            Input::Certificate(c) => c
                .verify(chain, &core.ledger().validator_set(c.height))
                .is_ok(),
            _ => false,
        }
    }

    fn answer_sync(&mut self, peer: PeerId, payload: &[u8]) {
        answer_sync(
            &self.host.core,
            self.host.net.as_ref(),
            &mut self.sync_answered,
            peer,
            payload,
        );
    }

    /// A block with its certificate from a peer: verified and committed if it is the next.
    fn on_synced(&mut self, payload: &[u8]) -> Result<(), NodeError> {
        let limits = self.core().store().limits().clone();
        let Some((b, c, parent)) = split_three(payload) else {
            return Ok(());
        };
        let parent = parent_certificate(parent, &limits);
        let (Ok(block), Ok(cert)) = (
            Block::from_bytes(b, &limits),
            CommitCertificate::from_bytes(c, &limits),
        ) else {
            return Ok(());
        };
        let next = next_height(self.core())?;
        if block.header.height != next {
            return Ok(());
        }
        // Only an answer to our own recent request, and the cheap check first: the
        // certificate must decide this block before it is executed.
        if self
            .last_sync_request
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            return Ok(());
        }
        let hash = block.header.hash();
        let core = self.host.core.clone();
        if let Err(e) = cert.verify(
            &core.genesis().chain_id,
            next,
            &hash,
            &core.ledger().validator_set(next),
        ) {
            tracing::warn!(height = next.0, "synced block's certificate refused: {e}");
            return Ok(());
        }
        let executed = match self
            .core()
            .ledger()
            .verify(block, TimeRule::Decided, parent.as_ref())
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(height = next.0, "synced block refused: {e}");
                return Ok(());
            }
        };
        match self.core().commit(executed, cert) {
            Ok(()) => {
                tracing::info!(
                    height = next.0,
                    block = %hash,
                    seen = self.highest_seen.0,
                    "sync: committed a block decided by the validators ({} of {})",
                    next.0,
                    self.highest_seen.0
                );
                // Its certificate shows the validators moved on to the next height.
                self.guard_learn(Height(next.0.saturating_add(1)))?;
                self.after_commit(next);
                self.guard_committed(next, false)?;
                // Catching up: the next block at once.
                self.start_after = Some((Instant::now(), Instant::now()));
                self.last_sync_request = None;
                Ok(())
            }
            Err(NodeError::Certificate(e)) => {
                tracing::warn!(height = next.0, "synced block's certificate refused: {e}");
                Ok(())
            }
            // The space ran out since the runner's reading: not written; asked for again
            // once the space returns.
            Err(NodeError::StorageLow(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Timers, the next height, and sync requests.
    fn tick(&mut self, now: Instant) -> Result<(), NodeError> {
        let due: Vec<Timeout> = self
            .host
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in due {
            self.host.timers.remove(&t);
            self.handle(Input::TimeoutElapsed(t))?;
        }
        self.maybe_start_height(now)?;
        if self.start_after.is_none()
            && now.duration_since(self.last_progress) > REGOSSIP_AFTER
            && self
                .last_regossip
                .is_none_or(|t| now.duration_since(t) >= REGOSSIP_AFTER)
        {
            self.last_regossip = Some(now);
            if let Ok(regossip) = Topic::new(TOPIC_REGOSSIP) {
                for (topic, payload) in &self.host.height_messages {
                    let mut m = Vec::with_capacity(1 + payload.len());
                    m.push(topic.number());
                    m.extend_from_slice(payload);
                    self.host.net.broadcast(regossip, m);
                }
            }
        }
        let current = next_height(self.core())?;
        let guarded_validator =
            self.guard.is_some() && self.core().metrics.restore_guard.load(Relaxed) == 1;
        if guarded_validator {
            let waited = now.duration_since(self.last_progress);
            if warning_due(
                &mut self.last_guard_warning,
                now,
                waited,
                GUARD_WARNING_EVERY,
            ) {
                tracing::warn!(
                    at = current.0,
                    learned = self.guard.as_ref().map_or(0, |g| g.known().0),
                    waited_s = waited.as_secs(),
                    "restore guard: no height decided for {} s while this restored validator signs nothing; if the other validators cannot make a quorum without it, the chain stays halted until enough of them return (the safe way); if they cannot, and the backed-up instance is known stopped for good, stop this node and run `gmchain node release-guard --config FILE --reason TEXT`, then start it (docs/ops/backup.md)",
                    waited.as_secs()
                );
            }
        }
        let behind = self.highest_seen > current;
        let stalled = now.duration_since(self.last_progress) > SYNC_AFTER;
        if (behind || stalled)
            && self
                .last_sync_request
                .is_none_or(|t| now.duration_since(t) >= SYNC_EVERY)
        {
            self.last_sync_request = Some(now);
            self.host
                .net
                .broadcast(Topic::SYNC_REQUEST, current.0.to_be_bytes().to_vec());
            if behind {
                tracing::info!(
                    at = current.0 - 1,
                    seen = self.highest_seen.0,
                    "sync: behind the network, asking peers for height {}",
                    current.0
                );
                // The sync protocol has no "pruned" answer (0.1.0 peers must keep deciding
                // with this release): a peer that pruned the block stays silent, and this
                // node cannot tell that from a slow peer; after long enough, it says what
                // may be the cause and what to do.
                let waited = now.duration_since(self.last_progress);
                if warning_due(&mut self.last_stranded_warning, now, waited, STRANDED_AFTER) {
                    tracing::warn!(
                        at = current.0 - 1,
                        seen = self.highest_seen.0,
                        waited_s = waited.as_secs(),
                        "sync: no peer has sent block {} for {} s although the network is at {}: the peers asked may have pruned it (a pruned node answers sync only for the blocks it keeps; validators keep all); link this node to an archive node, or re-join from a snapshot (docs/ops/snapshot.md)",
                        current.0,
                        waited.as_secs(),
                        self.highest_seen.0
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether the next height is wanted before the empty-block interval: transactions wait,
    /// or a peer is already at it.
    fn height_wanted(&self) -> bool {
        self.core().pool_size() > 0 || !self.buffered.is_empty()
    }

    fn run(mut self, events: Receiver<Event>, idle: &IdleFlag) -> Result<(), NodeError> {
        let mut paused = false;
        loop {
            let now = Instant::now();
            // Waiting for a transaction to start the next height: say so before looking at
            // the pool, so that one admitted after the look sends a wake-up.
            let waits = self
                .start_after
                .is_some_and(|(earliest, _)| earliest <= now);
            idle.set(waits);
            let wanted = self.height_wanted();
            if wanted {
                idle.set(false);
            }
            let wake = wake_at(
                now,
                self.host.timers.values().min().copied(),
                self.start_after,
                wanted,
            );
            self.core()
                .metrics
                .consensus_wakeups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Paused, the timers are not served: the next reading of the space is the deadline.
            let wait = if paused {
                crate::disk::SAMPLE_EVERY
            } else {
                wake.saturating_duration_since(now)
            };
            let event = match events.recv_timeout(wait) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
            };
            // Every step below may write (a WAL frame, a commit): it is taken only after a
            // fresh reading of the free space. Low, the node neither proposes, votes, logs nor
            // commits; it drops the consensus messages (like a node cut off: the blocks decided
            // meanwhile are synced from the peers once it resumes) and still answers the
            // peers' sync requests from its store (reads).
            if let Err(e) = self.core().require_writable() {
                if !paused {
                    paused = true;
                    tracing::warn!(height = self.host.height.0, "consensus paused: {e}");
                }
                if let Some(Event::Net(m)) = event
                    && m.topic == Topic::SYNC_REQUEST
                {
                    self.answer_sync(m.peer, &m.payload);
                }
                continue;
            }
            if paused {
                paused = false;
                tracing::info!(
                    height = self.host.height.0,
                    "consensus resumed: free space is back above the resume point"
                );
            }
            if let Some((executed, certificate)) = self.host.pending.take() {
                let height = executed.height();
                match self.core().commit_or_hold(executed, certificate)? {
                    Committed::Written => {
                        tracing::info!(height = height.0, "the held decided block is committed");
                        self.after_commit(height);
                        self.guard_committed(height, true)?;
                    }
                    Committed::Held { block, .. } => {
                        self.host.pending = Some(*block);
                        continue;
                    }
                }
            }
            if let Some(Event::Net(m)) = event {
                self.on_message(m)?;
            }
            self.tick(Instant::now())?;
        }
    }
}

/// Answers a peer's request for the block at a height (`payload`: the height, u64 BE) from the
/// store: the block, its certificate and its parent's. At most one answer per peer and height
/// a second (`answered`; a peer re-asks every 500 ms; an answer lost on the way is sent again
/// later). A read: answered while the node is low on space too.
fn answer_sync(
    core: &LocalNode,
    net: &dyn Links,
    answered: &mut HashMap<(PeerId, u64), Instant>,
    peer: PeerId,
    payload: &[u8],
) {
    let Ok(h) = <[u8; 8]>::try_from(payload).map(u64::from_be_bytes) else {
        return;
    };
    let now = Instant::now();
    answered.retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
    if answered.len() > 10_000 {
        return;
    }
    let store = core.store();
    let (Ok(Some(block)), Ok(Some(cert))) = (store.block(Height(h)), store.certificate(Height(h)))
    else {
        return;
    };
    if answered.insert((peer, h), now).is_some() {
        return;
    }
    let parent = match h.checked_sub(1).filter(|p| *p > 0) {
        Some(p) => match store.certificate(Height(p)) {
            Ok(Some(c)) => c.to_bytes(),
            _ => return,
        },
        None => Vec::new(),
    };
    let out = encode_three(&block.to_bytes(), &cert.to_bytes(), &parent);
    net.send(peer, Topic::SYNC_RESPONSE, out);
}

/// Waits, dropping consensus messages and answering the peers' sync requests from the store,
/// until the free space allows the engine to start; `false` if asked to stop meanwhile.
fn wait_for_space(core: &LocalNode, events: &Receiver<Event>, net: &dyn Links) -> bool {
    let mut said = false;
    let mut answered = HashMap::new();
    while let Err(e) = core.require_writable() {
        if !said {
            said = true;
            tracing::warn!("consensus waits to start: {e}");
        }
        match events.recv_timeout(crate::disk::SAMPLE_EVERY) {
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
            Ok(Event::Net(m)) if m.topic == Topic::SYNC_REQUEST => {
                answer_sync(core, net, &mut answered, m.peer, &m.payload);
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
    true
}

/// Set while the consensus loop waits for a transaction to start the next height: only then
/// does an admitted transaction send it a wake-up (one, not one per transaction).
#[derive(Clone, Debug, Default)]
struct IdleFlag(Arc<std::sync::atomic::AtomicBool>);

impl IdleFlag {
    fn set(&self, waiting: bool) {
        self.0.store(waiting, std::sync::atomic::Ordering::SeqCst);
    }

    /// After a transaction entered the pool: wakes the loop if it was waiting.
    fn wake(&self, events: &SyncSender<Event>) {
        if self.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let _ = events.try_send(Event::Pool);
        }
    }
}

/// The longest the consensus loop sleeps without an event.
const IDLE_WAKE: Duration = Duration::from_millis(100);

/// When the consensus loop must next wake without an event: the first timer, the block
/// interval's end, and once that passed with nothing `wanted` the empty-block interval's end
/// (an admitted transaction or a peer's message wakes it sooner), never later than
/// [`IDLE_WAKE`] from `now`. Never `now` itself while nothing is due: the loop would spin.
fn wake_at(
    now: Instant,
    timer: Option<Instant>,
    start_after: Option<(Instant, Instant)>,
    wanted: bool,
) -> Instant {
    let mut d = now + IDLE_WAKE;
    if let Some(t) = timer {
        d = d.min(t);
    }
    if let Some((earliest, latest)) = start_after {
        d = d.min(if earliest > now || wanted {
            earliest
        } else {
            latest
        });
    }
    d
}

fn input_height(input: &Input) -> Option<Height> {
    match input {
        Input::Proposal { proposal, .. } => Some(proposal.proposal.height),
        Input::Vote(v) => Some(v.vote.height),
        Input::Certificate(c) => Some(c.height),
        _ => None,
    }
}

fn next_height(core: &LocalNode) -> Result<Height, NodeError> {
    core.tip().0.height.next().ok_or(NodeError::HeightOverflow)
}

fn consensus_error(e: consensus::ConsensusError) -> NodeError {
    NodeError::Server(format!("consensus: {e}"))
}

/// The links' authority: the chain's judgement of node-sign certificates, remembering each
/// accepted certificate so that the links' admission can judge it again after every block.
#[derive(Debug)]
pub struct LinkAuthority {
    inner: crate::tls::ChainAuthority,
    certs: Arc<LinkCertificates>,
}

impl LinkAuthority {
    /// Judges link peers by `core`'s chain, recording them in `certs`.
    pub fn new(core: Arc<LocalNode>, certs: Arc<LinkCertificates>) -> Self {
        LinkAuthority {
            inner: crate::tls::ChainAuthority::new(core, gmtls::LINK_ROLES),
            certs,
        }
    }
}

impl gmtls::Authority for LinkAuthority {
    fn authenticate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: pki::UnixTime,
    ) -> Result<gmtls::PeerIdentity, gmtls::Refusal> {
        let id = self.inner.authenticate(leaf, intermediates, now)?;
        self.certs.record(leaf);
        Ok(id)
    }
}

/// Starts the links and the engine (inside the node's tokio runtime). `on_failure` runs if the
/// engine stops on an error.
pub async fn start_with_links(
    core: Arc<LocalNode>,
    config: &ConsensusConfig,
    creds: &gmtls::Credentials,
    server_cert: Arc<gmtls::ServerCertificate>,
    on_failure: Box<dyn FnOnce() + Send>,
) -> Result<(BftEngine, NetworkHandle), NodeError> {
    let certs = Arc::new(LinkCertificates::default());
    let authority: Arc<dyn gmtls::Authority> =
        Arc::new(LinkAuthority::new(core.clone(), certs.clone()));
    let server = gmtls::link_server_config(server_cert, authority.clone())
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    let client =
        gmtls::link_client_config(creds, authority).map_err(|e| NodeError::Tls(e.to_string()))?;
    let mut net_config = p2p::NetworkConfig::new(config.listen, PeerId::of(creds.leaf()));
    net_config.peers = config
        .peers
        .iter()
        .map(|p| p2p::PeerAddr {
            addr: p.address,
            name: p.name.clone(),
            organisation: p.organisation.clone(),
        })
        .collect();
    if let Ok(t) = Topic::new(TOPIC_CERTIFICATE) {
        net_config.relay_topics.push(t);
    }
    if let Ok(t) = Topic::new(TOPIC_REGOSSIP) {
        // It carries proposals, hence blocks.
        net_config.limits.large_topics.push(t);
    }
    net_config.on_link = Some(crate::audit::p2p_observer(core.audit().clone()));
    // A link holds while its certificate still authenticates on the chain (revoked,
    // suspended, expired or deregistered: cut at the next revalidation, after each block).
    let admit_core = core.clone();
    let admit: p2p::Admit = Arc::new(move |id: &gmtls::PeerIdentity| {
        certs
            .get(&id.cert_id)
            .is_some_and(|c| admit_core.authenticate(&c).is_ok())
    });
    let (net, inbound) = p2p::Network::start(net_config, server, client, admit)
        .await
        .map_err(|e| NodeError::Server(format!("p2p: {e}")))?;
    tracing::info!(listen = %config.listen, peers = config.peers.len(), "p2p links started");
    let engine = start(core, config, net.clone(), inbound, on_failure)?;
    Ok((engine, net))
}

/// Certificates of peers accepted at their link's handshake, by id: the links' admission
/// re-judges them against the chain after every block.
#[derive(Debug, Default)]
pub struct LinkCertificates(Mutex<(HashMap<Digest, Certificate>, VecDeque<Digest>)>);

/// Certificates remembered for links at most (the oldest recorded go first).
const MAX_LINK_CERTIFICATES: usize = 4096;

impl LinkCertificates {
    /// Remembers an accepted peer's certificate.
    pub fn record(&self, leaf: &Certificate) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *g;
        let id = leaf.fingerprint();
        if map.insert(id, leaf.clone()).is_none() {
            order.push_back(id);
        } else if let Some(i) = order.iter().position(|x| *x == id) {
            // Recorded again (a new handshake): now the newest.
            order.remove(i);
            order.push_back(id);
        }
        while order.len() > MAX_LINK_CERTIFICATES {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The certificate of `id`, if a handshake presented it.
    pub fn get(&self, id: &Digest) -> Option<Certificate> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(id)
            .cloned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The host's judgement of what peers send, over a real node store (review findings on
    //! issue 13: H1, H2, H3, H4, H5); the free-space guard's effect on decisions (review r1 of
    //! issue 18). The fixture is shared with `local.rs`'s tests.
    use super::*;
    use crypto::Signer;
    use crypto_sm::rng::SeededRandom;
    use crypto_sm::{SoftSigner, SoftwareProvider};
    use pki::{IssueRequest, Role, Serial, UnixTime, Validity};
    use types::VoteKind;

    use crate::config::BlockConfig;
    use crate::local::{Engine, Validator};

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    pub(crate) struct Fx {
        _dir: tempfile::TempDir,
        pub(crate) core: Arc<LocalNode>,
        pub(crate) keys: Vec<(Arc<SoftSigner>, Certificate)>,
        /// A user of the organisation, to sign transactions.
        pub(crate) user: (Arc<SoftSigner>, Certificate),
    }

    /// A node (validator 0 of 4) over a fresh store.
    fn fixture() -> Fx {
        fixture_of(4, Engine::Bft)
    }

    /// A node (validator 0 of `n`, deciding by `engine`) over a fresh store.
    pub(crate) fn fixture_of(n: u8, engine: Engine) -> Fx {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(13)));
        let t = now_ms() / 1000;
        // Fixed, so that the certificates, hence the validator ids and the proposer of each
        // round, are the same in every run.
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
        let crl = pki::issue_crl(
            &root,
            &root_key,
            1,
            UnixTime(t - 60),
            UnixTime(t + 30 * 86_400),
            &[],
        )
        .unwrap();
        let keys: Vec<(Arc<SoftSigner>, Certificate)> = (0..n)
            .map(|i| {
                let k = p.generate().unwrap();
                let c = pki::issue(
                    &root,
                    &root_key,
                    &IssueRequest {
                        role: Role::NodeSign,
                        common_name: &format!("node{i}"),
                        organisation: "Test Bureau",
                        public_key: &k.public_key(),
                        serial: Serial::from_bytes(&[0x10 + i]).unwrap(),
                        validity,
                    },
                )
                .unwrap();
                (Arc::new(k), c)
            })
            .collect();
        let user = {
            let k = p.generate().unwrap();
            let c = pki::issue(
                &root,
                &root_key,
                &IssueRequest {
                    role: Role::User,
                    common_name: "user0",
                    organisation: "Test Bureau",
                    public_key: &k.public_key(),
                    serial: Serial::from_bytes(&[0x20]).unwrap(),
                    validity,
                },
            )
            .unwrap();
            (Arc::new(k), c)
        };
        let validators: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, (_, c))| {
                format!(
                    r#"{{"name":"node{i}","cert":{}}}"#,
                    serde_json_string(&c.to_pem())
                )
            })
            .collect();
        let json = format!(
            r#"{{"format":2,"chain_id":"test-chain","test_chain":true,"timestamp_ms":{},"params":{{}},"organisations":[{{"name":"Test Bureau","ca_cert":{},"crl":{}}}],"validators":[{}]}}"#,
            now_ms() - 60_000,
            serde_json_string(&root.to_pem()),
            serde_json_string(&crl.to_pem()),
            validators.join(",")
        );
        let genesis = execution::Genesis::from_json(json.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::local::init(dir.path(), &genesis).unwrap();
        let core = LocalNode::open_with(
            dir.path(),
            Validator {
                signer: keys[0].0.clone(),
                certificate: keys[0].1.clone(),
            },
            BlockConfig {
                interval_ms: 50,
                max_txs: 100,
                max_pool: 1000,
            },
            Arc::new(now_ms),
            engine,
        )
        .unwrap();
        Fx {
            _dir: dir,
            core: Arc::new(core),
            keys,
            user,
        }
    }

    /// An `attestation.anchor` by the fixture's user, told apart by `salt`: canonical bytes.
    pub(crate) fn anchor_tx(fx: &Fx, salt: u8) -> Vec<u8> {
        let tx = types::SignedTx::sign(
            types::Transaction {
                chain_id: types::ChainId::new("test-chain").unwrap(),
                salt: [salt; 16],
                expiry: Height(10),
                fuel_limit: None,
                sender: types::Sender::Certificate(fx.user.1.der().to_vec()),
                call: types::Call {
                    contract: "attestation".into(),
                    method: "anchor".into(),
                    args: vec![
                        crypto_sm::sm3::sm3(&[salt]).as_bytes().to_vec(),
                        b"document".to_vec(),
                        Vec::new(),
                        Vec::new(),
                    ],
                },
            },
            fx.user.0.as_ref(),
            &crypto::UserId::default(),
        )
        .unwrap();
        types::Encode::to_bytes(&tx)
    }

    /// Review of idle CPU: once the block interval passed with no transaction waiting, the
    /// loop waited until `max(earliest, now)`, i.e. not at all, and spun on both cores of an
    /// idle devnet until the empty-block interval. It now sleeps until something is due.
    #[test]
    fn the_consensus_loop_sleeps_until_something_is_due() {
        let now = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        // Idle after the block interval: the empty-block interval or the idle cap, never now.
        let idle = wake_at(now, None, Some((now - ms(5), now + ms(9_000))), false);
        assert_eq!(idle, now + IDLE_WAKE);
        let idle = wake_at(now, None, Some((now - ms(5), now + ms(40))), false);
        assert_eq!(idle, now + ms(40));
        // A transaction waits: the height starts at once.
        let wanted = wake_at(now, None, Some((now - ms(5), now + ms(9_000))), true);
        assert!(wanted <= now);
        // Before the block interval's end: its end, wanted or not.
        for w in [false, true] {
            assert_eq!(
                wake_at(now, None, Some((now + ms(30), now + ms(9_000))), w),
                now + ms(30)
            );
        }
        // A timer due first wins; deciding a height (no start pending) waits for timers only.
        assert_eq!(
            wake_at(
                now,
                Some(now + ms(10)),
                Some((now + ms(30), now + ms(90))),
                false
            ),
            now + ms(10)
        );
        assert_eq!(wake_at(now, None, None, true), now + IDLE_WAKE);
    }

    /// One wake-up for a loop waiting for a transaction; none while it is busy (a wake-up per
    /// admitted transaction cost a context switch each at peak load).
    #[test]
    fn an_admitted_transaction_wakes_a_waiting_loop_once() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(8);
        let idle = IdleFlag::default();
        idle.wake(&tx);
        assert!(rx.try_recv().is_err(), "woke a busy loop");
        idle.set(true);
        idle.wake(&tx);
        idle.wake(&tx);
        assert!(matches!(rx.try_recv(), Ok(Event::Pool)));
        assert!(rx.try_recv().is_err(), "woke it twice");
    }

    /// A rotation decided by governance: the node decides a height whose set holds its
    /// `[next_key]` certificate with that key, and a height whose set holds its `[key]` with
    /// the `[key]`; a height holding neither it follows (signs nothing as a validator of it).
    #[test]
    fn the_identity_of_a_height_follows_the_set_after_a_rotation() {
        let fx = fixture();
        let genesis_set = fx.core.ledger().validator_set(Height(1));
        let (id, _) = fx.core.identity_for(&genesis_set);
        assert_eq!(id, fx.keys[0].1.fingerprint());
        // Node 0's new key: the certificate of key 3 stands in for it (any node-sign pair).
        fx.core.set_next_validator(Validator {
            signer: fx.keys[3].0.clone(),
            certificate: fx.keys[3].1.clone(),
        });
        let entry = |i: usize| types::ValidatorEntry {
            id: fx.keys[i].1.fingerprint(),
            public_key: fx.keys[i].1.public_key(),
            power: 1,
        };
        // A set holding both: the [key] still decides.
        assert_eq!(
            fx.core.identity_for(&genesis_set).0,
            fx.keys[0].1.fingerprint()
        );
        // The rotated set (1, 2, 3): the [next_key], and its signer signs for it.
        let rotated = types::ValidatorSet::new(vec![entry(1), entry(2), entry(3)]).unwrap();
        let (id, signer) = fx.core.identity_for(&rotated);
        assert_eq!(id, fx.keys[3].1.fingerprint());
        assert_eq!(signer.public_key(), fx.keys[3].1.public_key());
        // A set holding neither: the [key] (and the node follows that height).
        let other = types::ValidatorSet::new(vec![entry(1), entry(2)]).unwrap();
        assert_eq!(fx.core.identity_for(&other).0, fx.keys[0].1.fingerprint());
    }

    /// Issue 16 (watch rules), through the real commit path: a block whose certificate lacks
    /// a validator's precommit counts against that validator (from the block's certificate
    /// and the height's validator set), and a missed-rounds rule fires at its second miss,
    /// on the channel and in the counter, never for the validators that signed.
    #[test]
    fn missing_precommits_raise_a_missed_rounds_alert_at_commit() {
        use crate::watch::{Rule, RuleKind, WatchConfig, Watcher};
        let fx = fixture();
        let config = WatchConfig {
            max_subjects: 10,
            rules: vec![Rule {
                name: "absent".into(),
                kind: RuleKind::MissedRounds,
                above: 1,
                window_blocks: 10,
            }],
        };
        let watcher = Arc::new(Watcher::new(&config, fx.core.metrics.clone()));
        let mut alerts = watcher.subscribe();
        fx.core.set_watcher(watcher);
        for h in 1..=3u64 {
            let p = fx
                .core
                .ledger()
                .propose(vec![], fx.keys[1].1.fingerprint(), now_ms() - 1_000)
                .unwrap();
            let hash = p.executed.hash();
            // Validator 3 signs the first certificate only.
            let signers: &[usize] = if h == 1 { &[0, 1, 2, 3] } else { &[0, 1, 2] };
            let cert = commit_certificate(&fx, Height(h), hash, signers);
            fx.core.commit(p.executed, cert).unwrap();
            if h == 2 {
                assert!(alerts.try_recv().is_err(), "fired at the first miss");
            }
        }
        let a = alerts.try_recv().unwrap();
        assert_eq!(a.subject, fx.keys[3].1.fingerprint().to_hex());
        assert_eq!((a.kind, a.height, a.count), ("missed-rounds", 3, 2));
        assert!(alerts.try_recv().is_err(), "{:?}", alerts.try_recv());
        assert_eq!(fx.core.metrics.watch_alerts("absent"), 1);
        assert!(
            fx.core
                .metrics
                .render()
                .contains("gmchain_watch_alerts_total{rule=\"absent\"} 1")
        );
    }

    /// Issue 16 (watch rules): the facts of a block are read from its transactions and
    /// receipts: a failed receipt names its signer (a first transaction's certificate or a
    /// registered id) and code; a successful `exchange.record_fetch` names the requester and
    /// the dataset; a failed one is no fetch record.
    #[test]
    fn block_facts_read_failures_and_fetch_records() {
        use crate::watch::{BlockFacts, FailedFact, FetchFact};
        let fx = fixture();
        let (_, mut block) = proposed_block(&fx, 1, now_ms() - 1_000);
        let tx = |sender: types::Sender, method: &str, args: Vec<Vec<u8>>| {
            types::SignedTx::sign(
                types::Transaction {
                    chain_id: types::ChainId::new("test-chain").unwrap(),
                    salt: [7; 16],
                    expiry: Height(10),
                    fuel_limit: None,
                    sender,
                    call: types::Call {
                        contract: "exchange".into(),
                        method: method.into(),
                        args,
                    },
                },
                fx.keys[2].0.as_ref(),
                &crypto::UserId::default(),
            )
            .unwrap()
        };
        let requester = [0xab; 32];
        let fetch_args = |outcome: u32| {
            vec![
                vec![execution::data::OBJECT_DATASET],
                b"Test Bureau/census".to_vec(),
                1u64.to_be_bytes().to_vec(),
                requester.to_vec(),
                vec![0; 32],
                outcome.to_be_bytes().to_vec(),
                vec![],
                vec![],
            ]
        };
        let der = fx.keys[2].1.der().to_vec();
        let registered = fx.keys[1].1.fingerprint();
        block.txs = vec![
            tx(types::Sender::Certificate(der), "grant", vec![]),
            tx(
                types::Sender::Registered(registered),
                "record_fetch",
                fetch_args(0),
            ),
            tx(
                types::Sender::Registered(registered),
                "record_fetch",
                fetch_args(0),
            ),
            tx(
                types::Sender::Registered(registered),
                "record_fetch",
                fetch_args(301),
            ),
        ];
        let receipt = |status: types::Status| types::Receipt {
            tx_id: types::TxId(Digest([0; 32])),
            status,
            events: vec![],
            fuel_used: None,
            output: vec![],
        };
        let failed = || types::Status::Failed {
            code: 301,
            message: "no".into(),
        };
        let receipts = vec![
            receipt(failed()),
            receipt(types::Status::Success),
            receipt(failed()),
            receipt(types::Status::Success),
        ];
        let set = fx.core.ledger().validator_set(Height(1));
        let cert = commit_certificate(&fx, Height(1), block.header.hash(), &[0, 1, 2, 3]);
        let facts = BlockFacts::of(&block, &receipts, &cert, &set);
        assert_eq!(facts.height, 1);
        assert!(facts.missing.is_empty());
        assert_eq!(
            facts.failed,
            [
                FailedFact {
                    signer: fx.keys[2].1.fingerprint().to_hex(),
                    code: 301,
                    call: "exchange.grant".into(),
                },
                FailedFact {
                    signer: registered.to_hex(),
                    code: 301,
                    call: "exchange.record_fetch".into(),
                },
            ]
        );
        let fetch = |served| FetchFact {
            requester: hex::encode(requester),
            object: "Test Bureau/census".into(),
            served,
        };
        assert_eq!(facts.fetches, [fetch(true), fetch(false)]);
    }

    /// JSON string literal of `s` (PEM: letters, digits, `+/=-`, spaces and newlines).
    fn serde_json_string(s: &str) -> String {
        format!("\"{}\"", s.replace('\n', "\\n"))
    }

    /// What the host sent: topic and payload.
    type Sent = Arc<Mutex<Vec<(Topic, Vec<u8>)>>>;
    /// The messages the host vouched for: id and author.
    type Vouched = Arc<Mutex<Vec<(Digest, Digest)>>>;

    #[derive(Default, Clone)]
    struct Recorder {
        sent: Sent,
        vouched: Vouched,
    }

    impl Links for Recorder {
        fn broadcast(&self, topic: Topic, payload: Vec<u8>) {
            self.sent.lock().unwrap().push((topic, payload));
        }
        fn send(&self, _: PeerId, topic: Topic, payload: Vec<u8>) {
            self.sent.lock().unwrap().push((topic, payload));
        }
        fn revalidate(&self) -> usize {
            0
        }
        fn broadcast_vouched(&self, topic: Topic, payload: Vec<u8>, _: Digest) {
            self.sent.lock().unwrap().push((topic, payload));
        }
        fn vouch(&self, id: &Digest, _: Topic, _: &Arc<[u8]>, author: Digest) {
            self.vouched.lock().unwrap().push((*id, author));
        }
    }

    fn host(fx: &Fx) -> NodeHost {
        NodeHost::new(
            fx.core.clone(),
            Box::new(Recorder::default()),
            2_000,
            Height(1),
        )
    }

    fn runner(fx: &Fx) -> Runner {
        runner_with(fx, Recorder::default())
    }

    fn runner_with(fx: &Fx, links: Recorder) -> Runner {
        let params = Params {
            chain_id: fx.core.genesis().chain_id.clone(),
            me: Some(fx.core.validator_id()),
            timeouts: Timeouts::default(),
            max_block_bytes: 1 << 20,
        };
        Runner::new(fx.core.clone(), Box::new(links), params, 2_000).unwrap()
    }

    /// A proposal of height 1 by validator `signer`, signed with its key.
    fn proposal(
        fx: &Fx,
        signer: usize,
        block: BlockHash,
        round: u32,
        pol: Option<u32>,
    ) -> SignedProposal {
        signed_proposal(fx, signer, Height(1), round, block, pol)
    }

    /// A proposal of `block` for `height` and `round` by validator `signer`, signed with its
    /// key.
    fn signed_proposal(
        fx: &Fx,
        signer: usize,
        height: Height,
        round: u32,
        block: BlockHash,
        pol_round: Option<u32>,
    ) -> SignedProposal {
        Proposal {
            chain_id: fx.core.genesis().chain_id.clone(),
            height,
            round,
            block,
            pol_round,
            proposer: fx.keys[signer].1.fingerprint(),
        }
        .sign(fx.keys[signer].0.as_ref())
        .unwrap()
    }

    /// Which fixture key proposes each round of `height`, by the validator set of `height`
    /// as the ledger holds it now.
    fn proposer_of(fx: &Fx, height: Height) -> impl Fn(u32) -> usize {
        let set = fx.core.ledger().validator_set(height);
        move |round: u32| {
            let id = set.validators()[consensus::context::proposer_index(&set, height, round)].id;
            (0..4).find(|&i| fx.keys[i].1.fingerprint() == id).unwrap()
        }
    }

    /// The next height's block proposed by validator `v` at time `at` (on a fresh fixture,
    /// height 1): its hash and the block.
    fn proposed_block(fx: &Fx, v: usize, at: u64) -> (BlockHash, Block) {
        let p = fx
            .core
            .ledger()
            .propose(vec![], fx.keys[v].1.fingerprint(), at)
            .unwrap();
        (p.executed.hash(), p.executed.block().clone())
    }

    /// A block of height 1 proposed by validator `v` at time `at`.
    fn block_by(fx: &Fx, v: usize, at: u64) -> (BlockHash, Vec<u8>) {
        let (hash, block) = proposed_block(fx, v, at);
        (hash, block.to_bytes())
    }

    /// A commit certificate of `block` at `height`, round 0: the precommits of `signers`.
    fn commit_certificate(
        fx: &Fx,
        height: Height,
        block: BlockHash,
        signers: &[usize],
    ) -> CommitCertificate {
        let votes: Vec<SignedVote> = signers
            .iter()
            .map(|&i| signed_vote(fx, i, height, 0, VoteKind::Precommit, Some(block)))
            .collect();
        CommitCertificate::from_votes(height, 0, block, &votes)
    }

    /// Height 1's block, proposed by validator 1 a second ago, and its commit certificate by
    /// validators 0, 1 and 2: the block's hash, the block and the certificate.
    fn height_1_committed(fx: &Fx) -> (BlockHash, Block, CommitCertificate) {
        let (h1, block) = proposed_block(fx, 1, now_ms() - 1_000);
        let cert = commit_certificate(fx, Height(1), h1, &[0, 1, 2]);
        (h1, block, cert)
    }

    /// `block` with its header naming `parent` as the certificate of its parent: its hash
    /// and bytes.
    fn naming_parent(mut block: Block, parent: &CommitCertificate) -> (BlockHash, Vec<u8>) {
        if let Some(links) = block.header.consensus.as_mut() {
            links.last_commit = parent.hash();
        }
        (block.header.hash(), block.to_bytes())
    }

    /// Height 1's `block` relabelled as height 2's by validator `v`, its header naming
    /// `parent` (not a valid height 2 to a ledger still at height 0): its hash and bytes.
    fn relabelled_height_2(
        fx: &Fx,
        block: &Block,
        v: usize,
        parent: &CommitCertificate,
    ) -> (BlockHash, Vec<u8>) {
        let mut block = block.clone();
        block.header.height = Height(2);
        block.header.proposer = fx.keys[v].1.fingerprint();
        naming_parent(block, parent)
    }

    /// Height 1 committed by `runner` as from a sync response to its own request: `block`
    /// and its certificate `cert`.
    fn sync_height_1(runner: &mut Runner, block: &Block, cert: &CommitCertificate) {
        runner.last_sync_request = Some(Instant::now());
        let synced = encode_three(&block.to_bytes(), &cert.to_bytes(), &[]);
        runner.on_synced(&synced).unwrap();
    }

    /// H1: a block first judged as a re-proposal (no clock) is not thereby valid as a fresh
    /// proposal: its timestamp an hour ahead is refused then.
    #[test]
    fn a_fresh_proposal_is_judged_against_the_clock_even_after_a_re_proposal_of_its_block() {
        let fx = fixture();
        let mut h = host(&fx);
        let (hash, bytes) = block_by(&fx, 1, now_ms() + 3_600_000);
        let relock = proposal(&fx, 1, hash, 1, Some(0)).proposal;
        assert!(h.validate_block(&relock, &bytes));
        let fresh = proposal(&fx, 1, hash, 1, None).proposal;
        assert!(!h.validate_block(&fresh, &bytes));
        // A timely block is valid fresh.
        let (hash, bytes) = block_by(&fx, 1, now_ms());
        assert!(h.validate_block(&proposal(&fx, 1, hash, 2, None).proposal, &bytes));
    }

    /// H2: a re-proposal under a proof of lock carries the block its first proposer made; a
    /// fresh proposal must carry the proposer's own block.
    #[test]
    fn a_re_proposal_may_carry_another_proposers_block_a_fresh_one_may_not() {
        let fx = fixture();
        let (hash, bytes) = block_by(&fx, 1, now_ms());
        assert!(host(&fx).validate_block(&proposal(&fx, 2, hash, 3, Some(1)).proposal, &bytes));
        assert!(!host(&fx).validate_block(&proposal(&fx, 2, hash, 3, None).proposal, &bytes));
    }

    fn inbound(topic: Topic, payload: Vec<u8>) -> Inbound {
        Inbound {
            peer: PeerId(Digest([9; 32])),
            id: Some(p2p::message_id(topic, &payload)),
            topic,
            payload: payload.into(),
        }
    }

    fn proposal_message(p: &SignedProposal, block: &[u8]) -> Inbound {
        inbound(Topic::PROPOSAL, encode_three(&p.to_bytes(), block, &[]))
    }

    /// H3, H4: a forged proposal is not kept, re-gossiped or allowed to name a parent
    /// certificate; one proposer's second block for one round, and a proposal far ahead, are
    /// dropped before anything is executed.
    #[test]
    fn unauthenticated_or_excess_proposals_are_not_kept() {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let (hash, bytes) = block_by(&fx, 1, now_ms());
        // Signed by validator 2's key but naming validator 1: forged.
        let mut forged = proposal(&fx, 1, hash, 0, None);
        forged.signature = proposal(&fx, 2, hash, 0, None).signature;
        let kept = r.host.height_messages.len();
        r.on_message(proposal_message(&forged, &bytes)).unwrap();
        assert_eq!(r.host.height_messages.len(), kept);
        assert!(r.proposals_seen.is_empty());
        assert!(r.host.parent_certs.is_empty());
        assert!(
            links.vouched.lock().unwrap().is_empty(),
            "forged: not vouched for"
        );
        // A genuine one is kept, and vouched for in the links' store as its proposer's; the
        // same proposer's second block for that round is not.
        let genuine = proposal_message(&proposal(&fx, 1, hash, 0, None), &bytes);
        let id = genuine.id.unwrap();
        r.on_message(genuine).unwrap();
        assert_eq!(r.proposals_seen.len(), 1);
        assert_eq!(
            *links.vouched.lock().unwrap(),
            vec![(id, fx.keys[1].1.fingerprint())]
        );
        let (other, other_bytes) = block_by(&fx, 1, now_ms() + 1);
        let before = r.host.height_messages.len();
        r.on_message(proposal_message(
            &proposal(&fx, 1, other, 0, None),
            &other_bytes,
        ))
        .unwrap();
        assert_eq!(r.host.height_messages.len(), before);
        assert_eq!(
            r.proposals_seen.values().copied().collect::<Vec<_>>(),
            vec![hash]
        );
        assert_eq!(
            links.vouched.lock().unwrap().len(),
            1,
            "dropped: not vouched for"
        );
        // Far ahead, or locked at a round not before its own: dropped.
        for (round, pol) in [(50, None), (2, Some(2))] {
            r.on_message(proposal_message(
                &proposal(&fx, 1, hash, round, pol),
                &bytes,
            ))
            .unwrap();
        }
        assert_eq!(r.proposals_seen.len(), 1);
    }

    /// A vote of validator `i`, signed with its key.
    fn signed_vote(
        fx: &Fx,
        i: usize,
        height: Height,
        round: u32,
        kind: VoteKind,
        block: Option<BlockHash>,
    ) -> SignedVote {
        Vote {
            chain_id: fx.core.genesis().chain_id.clone(),
            height,
            round,
            kind,
            block,
            validator: fx.keys[i].1.fingerprint(),
        }
        .sign(fx.keys[i].0.as_ref())
        .unwrap()
    }

    /// Review finding: the proposal's signature covers its block's hash, not the bytes that
    /// travel beside it. A peer (no validator needed) re-wraps a genuine signed proposal with
    /// junk where the parent certificate goes, or with another block: each copy has a fresh
    /// message id, is relayed on, and is vouched for as the honest proposer's, so it outlives
    /// every unverified message and, charged to the proposer, pushes out the proposer's
    /// genuine proposal (its oldest) from the links' store.
    #[test]
    fn a_signed_proposal_beside_bytes_it_does_not_sign_is_not_vouched_for() {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let (hash, bytes) = block_by(&fx, 1, now_ms());
        let signed = proposal(&fx, 1, hash, 0, None);
        r.on_message(proposal_message(&signed, &bytes)).unwrap();
        assert_eq!(links.vouched.lock().unwrap().len(), 1, "the genuine one");
        let (_, other_block) = block_by(&fx, 2, now_ms() + 1);
        for (block, parent) in [
            (&bytes[..], &b"junk-1"[..]),
            (&bytes[..], &b"junk-2"[..]),
            (&other_block[..], &[][..]),
        ] {
            r.on_message(inbound(
                Topic::PROPOSAL,
                encode_three(&signed.to_bytes(), block, parent),
            ))
            .unwrap();
        }
        let vouched = links.vouched.lock().unwrap().clone();
        assert_eq!(
            vouched.len(),
            1,
            "re-wrapped copies vouched for as validator 1's: {vouched:?}"
        );
    }

    /// Review finding: `on_message` vouches before its height check, so every validly signed
    /// vote of a past height (replayed by any peer once out of the seen-cache) or of a height
    /// far ahead (signed at will by a Byzantine validator) is vouched for, then dropped. A
    /// peer replaying an honest validator's old votes thereby pushes that validator's
    /// current vote out of the links' store (its share's oldest), after every unverified
    /// message (transactions included).
    #[test]
    fn votes_dropped_for_their_height_are_not_vouched_for() {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let block = Some(BlockHash(Digest([7; 32])));
        for (height, round) in [(Height(0), 0), (Height(0), 9), (Height(1_000), 0)] {
            let v = signed_vote(&fx, 1, height, round, VoteKind::Prevote, block);
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        let vouched = links.vouched.lock().unwrap().clone();
        assert!(vouched.is_empty(), "dropped yet vouched for: {vouched:?}");
    }

    /// Review finding: `LivenessCertificate::verify` rejects a repeated validator
    /// (`Unordered`) but accepts the votes in any order, and `from_bytes` keeps the order it
    /// read: k votes give k! encodings of one certificate, each a fresh message id, each
    /// vouched for under the one `CERTIFICATE_SIGNER`, whose oldest (the current round's
    /// genuine certificate) then goes first.
    #[test]
    fn a_liveness_certificate_with_its_votes_reordered_is_not_vouched_for_again() {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let mut votes: Vec<SignedVote> = (1..4)
            .map(|i| signed_vote(&fx, i, Height(1), 0, VoteKind::Precommit, None))
            .collect();
        votes.sort_by_key(|v| v.vote.validator.0);
        let topic = Topic::new(TOPIC_CERTIFICATE).unwrap();
        // The encoding sorts the votes (one encoding per set); a relay writes them in its own
        // order, by hand: version 1, kind 2 (any precommits), height, round, the votes.
        let mut sent = Vec::new();
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut b = vec![1u8, 2];
            b.extend_from_slice(&1u64.to_be_bytes());
            b.extend_from_slice(&0u32.to_be_bytes());
            b.extend_from_slice(&3u32.to_be_bytes());
            for &i in &order {
                let v = votes[i].to_bytes();
                b.extend_from_slice(&(v.len() as u32).to_be_bytes());
                b.extend_from_slice(&v);
            }
            sent.push(b.clone());
            r.on_message(inbound(topic, b)).unwrap();
        }
        assert_ne!(sent[0], sent[1], "premise: three different encodings");
        let vouched = links.vouched.lock().unwrap().clone();
        assert_eq!(vouched.len(), 1, "one certificate, vouched for {vouched:?}");
    }

    /// Round 0's proposer at height 1 (another node than this one's, validator 0), its
    /// proposal and block, and the proposal message with `block` bytes beside it.
    fn round_0_proposal(fx: &Fx) -> (usize, BlockHash, Vec<u8>, SignedProposal) {
        let p = proposer_of(fx, Height(1))(0);
        assert_ne!(p, 0, "fixture: round 0 is another node's");
        let (hash, bytes) = block_by(fx, p, now_ms());
        (p, hash, bytes, proposal(fx, p, hash, 0, None))
    }

    /// Height 1 with round 0's proposal, first a copy carrying `first` beside it (the
    /// genuine block, or a peer's junk), then the genuine one, and the other three
    /// validators' precommits for it: what each input returned, and this node's prevotes'
    /// blocks, and the genuine block's hash.
    fn decide_after(
        fx: &Fx,
        first: Option<&[u8]>,
    ) -> (
        Vec<Result<(), NodeError>>,
        Vec<Option<BlockHash>>,
        BlockHash,
    ) {
        let links = Recorder::default();
        let mut r = runner_with(fx, links.clone());
        let (_, hash, bytes, signed) = round_0_proposal(fx);
        let mut out = Vec::new();
        let copy = first.unwrap_or(&bytes);
        out.push(r.on_message(proposal_message(&signed, copy)));
        out.push(r.on_message(proposal_message(&signed, &bytes)));
        for i in 1..4 {
            let v = signed_vote(fx, i, Height(1), 0, VoteKind::Precommit, Some(hash));
            out.push(r.on_message(inbound(Topic::VOTE, v.to_bytes())));
        }
        let prevotes = own_prevotes(fx, &links).iter().map(|v| v.block).collect();
        (out, prevotes, hash)
    }

    /// This node's (validator 0's) prevotes among the votes it sent through `links`, in the
    /// order sent.
    fn own_prevotes(fx: &Fx, links: &Recorder) -> Vec<Vote> {
        let limits = fx.core.store().limits().clone();
        let me = fx.keys[0].1.fingerprint();
        links
            .sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t == Topic::VOTE)
            .filter_map(|(_, b)| SignedVote::from_bytes(b, &limits).ok())
            .filter(|v| v.vote.validator == me && v.vote.kind == VoteKind::Prevote)
            .map(|v| v.vote)
            .collect()
    }

    /// Control for the finding below: the genuine proposal gets this node's prevote, and
    /// three precommits decide height 1.
    #[test]
    fn a_proposal_and_a_quorum_of_precommits_decide_the_height() {
        let fx = fixture();
        let (results, prevotes, hash) = decide_after(&fx, None);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(prevotes, vec![Some(hash)]);
        assert_eq!(fx.core.tip().0.height, Height(1));
    }

    /// Review finding (critical): any peer that sees a proposal first (its signed part leads
    /// the frame; the block takes longer to arrive) sends a copy of the signed proposal
    /// beside junk bytes. The engine keeps the first bytes under the proposal's block hash
    /// (`engine.rs` `on_proposal`: the `blocks` insert and its WAL `Block` entry) and the
    /// host caches the verdict by that hash (`judged`): the genuine copy is judged invalid,
    /// this node prevotes nil and does not decide when the others do (it waits for sync).
    /// No validator key needed; done to f+1 validators each round, no round gets a polka
    /// and the chain halts.
    #[test]
    fn a_junk_copy_of_a_signed_proposal_arriving_first_does_not_spoil_the_genuine_one() {
        let fx = fixture();
        let (results, prevotes, hash) = decide_after(&fx, Some(b"junk where a block goes"));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(prevotes, vec![Some(hash)], "this node's prevotes");
        assert_eq!(fx.core.tip().0.height, Height(1), "not decided here");
    }

    /// The parent certificate beside the copy of a proposal that arrives first.
    #[derive(Clone, Copy, Debug)]
    enum FirstParent {
        /// This node's own certificate of the parent (valid, not the one the header names).
        Ours,
        /// The one the header names.
        Theirs,
        /// None: a relay stripped it.
        Stripped,
    }

    /// Height 2 after height 1 was committed here with a certificate of validators 0, 1
    /// and 2, moved to round 1 (round 0 is this node's) by two prevotes of round 1; round
    /// 1's proposer built its block on another quorum for height 1 (1, 2, 3),
    /// which its header names and which travels beside it. `first` is what a copy arriving
    /// before the genuine one carries beside the same signed proposal and block: this
    /// node's own certificate of height 1 (valid, but not the one named), the genuine
    /// one, or nothing. Returns this node's prevotes at height 2 and the block's hash.
    fn parent_race(fx: &Fx, first: FirstParent) -> (Vec<Option<BlockHash>>, BlockHash) {
        let links = Recorder::default();
        let mut r = runner_with(fx, links.clone());
        let (h1, b1, ours) = height_1_committed(fx);
        let theirs = commit_certificate(fx, Height(1), h1, &[1, 2, 3]);
        sync_height_1(&mut r, &b1, &ours);
        assert_eq!(fx.core.tip().0.height, Height(1));
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        let p = proposer_of(fx, Height(2))(1);
        assert_ne!(p, 0, "fixture: round 1 of height 2 is another node's");
        for i in [1, 2] {
            let v = signed_vote(fx, i, Height(2), 1, VoteKind::Prevote, None);
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        // The proposer's block: ours but for the parent certificate it names.
        let (hash, bytes) = naming_parent(proposed_block(fx, p, now_ms()).1, &theirs);
        let signed = signed_proposal(fx, p, Height(2), 1, hash, None);
        let first = match first {
            FirstParent::Ours => ours.to_bytes(),
            FirstParent::Theirs => theirs.to_bytes(),
            FirstParent::Stripped => Vec::new(),
        };
        for parent in [first, theirs.to_bytes()] {
            let m = encode_three(&signed.to_bytes(), &bytes, &parent);
            r.on_message(inbound(Topic::PROPOSAL, m)).unwrap();
        }
        let prevotes = own_prevotes(fx, &links)
            .into_iter()
            .filter(|v| v.height == Height(2) && v.round == 1)
            .map(|v| v.block)
            .collect();
        (prevotes, hash)
    }

    /// Control for the finding below: a block naming another quorum for its parent, with
    /// that certificate beside it, gets this node's prevote.
    #[test]
    fn a_block_naming_another_quorum_for_its_parent_is_prevoted_with_that_certificate() {
        let fx = fixture();
        let (prevotes, hash) = parent_race(&fx, FirstParent::Theirs);
        assert_eq!(prevotes, vec![Some(hash)]);
    }

    /// Review 5 finding (high): the parent certificate beside a proposal is not covered by
    /// the proposer's signature either, and the first one kept for a block won. A peer that
    /// sends the genuine proposal and block first, beside any valid certificate of the
    /// parent (this node's own, from sync or a query), made this node refuse the block
    /// (`LastCommit`), cache that verdict and prevote nil when the proposer's header names
    /// another quorum, which 3f+1 nodes collecting precommits in different orders often do.
    /// Review 6 finding (high): the same race with the certificate stripped (`is_whole` let a
    /// copy with none through whatever the header named; judged invalid, a nil prevote).
    #[test]
    fn a_copy_beside_another_or_no_parent_certificate_does_not_spoil_the_genuine_proposal() {
        for first in [FirstParent::Ours, FirstParent::Stripped] {
            let fx = fixture();
            let (prevotes, hash) = parent_race(&fx, first);
            assert_eq!(
                prevotes,
                vec![Some(hash)],
                "this node's prevotes in round 1, the first copy {first:?}"
            );
        }
    }

    /// Review 6 finding (medium): a liveness certificate has one encoding per set of votes,
    /// but any subset of a round's votes that reaches the threshold is another valid
    /// certificate: a `Skip` needs f+1 validators, each with its prevote or its precommit,
    /// so one round's votes of n validators give about 3^n of them (72 for n = 4, over 2 000
    /// for n = 7, 57 888 for n = 10). Any peer that saw the votes (no key) sends each: a
    /// fresh message id, relayed by every node, vouched for under `CERTIFICATE_SIGNER`
    /// (vouched bytes cross half the store: unverified transactions go, then the genuine
    /// certificate, the signer's oldest), and kept in `height_messages`, whose 4 096
    /// entries then hold no room for this node's own later votes and proposal (not
    /// re-gossiped after a loss), while the flood is re-gossiped every 2 s of a stall.
    #[test]
    fn liveness_certificates_from_subsets_of_one_rounds_votes_are_not_each_kept() {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let votes: Vec<[SignedVote; 2]> = (0..4)
            .map(|i| {
                [VoteKind::Prevote, VoteKind::Precommit]
                    .map(|k| signed_vote(&fx, i, Height(1), 0, k, None))
            })
            .collect();
        let topic = Topic::new(TOPIC_CERTIFICATE).unwrap();
        let kept = r.host.height_messages.len();
        let mut sent = 0;
        // Each validator absent (0), by its prevote (1) or by its precommit (2).
        for mask in 0..81u32 {
            let chosen: Vec<SignedVote> = (0..4)
                .filter_map(|i| match mask / 3u32.pow(i as u32) % 3 {
                    0 => None,
                    k => Some(votes[i][k as usize - 1].clone()),
                })
                .collect();
            if chosen.len() < 2 {
                continue;
            }
            let c = LivenessCertificate {
                kind: consensus::CertificateKind::Skip,
                height: Height(1),
                round: 0,
                votes: chosen,
            };
            r.on_message(inbound(topic, c.to_bytes())).unwrap();
            sent += 1;
        }
        assert_eq!(sent, 72, "premise: 72 certificates of one round");
        let vouched = links.vouched.lock().unwrap().len();
        let remembered = r.host.height_messages.len() - kept;
        assert!(
            vouched <= 1 && remembered <= 1,
            "{sent} certificates of one round's votes: {vouched} vouched for, {remembered} kept for re-gossip"
        );
    }

    /// Review 6 finding (low): `proposals_seen` (one block per height, round and proposer,
    /// so that a faulty proposer cannot make this node validate many blocks) is cleared by
    /// `after_commit`, and the buffered proposals of the next height replayed by
    /// `maybe_start_height` are not entered again: a proposer's second block for a round
    /// whose first came while this node was behind is taken, and executed, too (one more
    /// per height the node was behind).
    #[test]
    fn a_second_block_for_a_round_whose_first_was_buffered_is_dropped() {
        let fx = fixture();
        let mut r = runner(&fx);
        let limits = fx.core.store().limits().clone();
        let (_, bytes) = block_by(&fx, 1, now_ms());
        // Two whole blocks of height 2 by validator 1 (their contents are not judged here).
        let height_2 = |at: u64| {
            let mut b = Block::from_bytes(&bytes, &limits).unwrap();
            b.header.height = Height(2);
            b.header.timestamp = types::Timestamp(at);
            (b.header.hash(), b.to_bytes())
        };
        let message = |(hash, block): &(BlockHash, Vec<u8>)| {
            proposal_message(&signed_proposal(&fx, 1, Height(2), 0, *hash, None), block)
        };
        let (first, second) = (height_2(now_ms() + 10), height_2(now_ms() + 20));
        r.on_message(message(&first)).unwrap();
        assert_eq!(r.future.len(), 1, "premise: buffered while at height 1");
        // Height 1 committed (synced), height 2 started: the buffered proposal is replayed.
        let (_, b1, cert) = height_1_committed(&fx);
        sync_height_1(&mut r, &b1, &cert);
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        assert!(r.future.is_empty(), "premise: replayed");
        r.on_message(message(&second)).unwrap();
        let key = (Height(2), 0, fx.keys[1].1.fingerprint());
        assert_eq!(
            r.proposals_seen.get(&key),
            Some(&first.0),
            "validator 1's second block of round 0 taken"
        );
    }

    /// Review finding (critical, the same cause at the host): the verdict on a proposed
    /// block is cached by the hash the proposal names, not by the bytes judged, so a junk
    /// copy judged first makes the genuine block invalid here (a nil prevote).
    #[test]
    fn a_junk_copy_judged_first_does_not_decide_the_genuine_blocks_verdict() {
        let fx = fixture();
        let mut h = host(&fx);
        let (hash, bytes) = block_by(&fx, 1, now_ms());
        let p = proposal(&fx, 1, hash, 0, None).proposal;
        assert!(!h.validate_block(&p, b"junk"));
        assert!(
            h.validate_block(&p, &bytes),
            "the genuine block judged by the junk copy's verdict"
        );
    }

    /// A parent certificate a proposer sent beside its block survives a restart: it is in
    /// the WAL as a host frame, which recovery hands back to the host and not to consensus
    /// (found by the governance process test: a validator killed after logging a decision
    /// could not decide the block again from its WAL when the header named the proposer's
    /// certificate of the parent rather than its own).
    #[test]
    fn a_proposers_parent_certificate_survives_a_restart_in_the_wal() {
        let fx = fixture();
        let mut r = runner(&fx);
        let (_, bytes) = block_by(&fx, 1, now_ms());
        let parent = commit_certificate(&fx, Height(0), BlockHash(Digest([7; 32])), &[1, 2, 3]);
        // The header names that certificate for its parent (else the copy is not whole).
        let limits = fx.core.store().limits().clone();
        let block = Block::from_bytes(&bytes, &limits).unwrap();
        let (hash, bytes) = naming_parent(block, &parent);
        let message = inbound(
            Topic::PROPOSAL,
            encode_three(
                &proposal(&fx, 1, hash, 0, None).to_bytes(),
                &bytes,
                &parent.to_bytes(),
            ),
        );
        r.on_message(message).unwrap();
        assert_eq!(r.host.parent_certs.get(&hash), Some(&parent));
        let frames = fx.core.store().wal_entries().unwrap();
        assert!(
            frames
                .iter()
                .any(|(h, _, f)| *h == Height(1) && f.first() == Some(&HOST_FRAME_PARENT))
        );
        drop(r);
        // Restarted: recovery replays the consensus frames and the host has the certificate.
        let again = runner(&fx);
        assert_eq!(again.host.parent_certs.get(&hash), Some(&parent));
        assert!(again.host.wal_seq as usize >= frames.len());
    }

    /// H5: a sync response is taken only after our own request, and one whose certificate is
    /// no quorum is refused; a good one commits.
    #[test]
    fn sync_responses_need_our_request_and_a_quorum_certificate() {
        let fx = fixture();
        let mut r = runner(&fx);
        let (hash, block) = proposed_block(&fx, 1, now_ms());
        let cert = |signers: &[usize]| commit_certificate(&fx, Height(1), hash, signers);
        let response = |c: &CommitCertificate| encode_three(&block.to_bytes(), &c.to_bytes(), &[]);
        let good = cert(&[0, 1, 2]);
        // Unasked: ignored.
        r.on_synced(&response(&good)).unwrap();
        assert_eq!(fx.core.tip().0.height, Height(0));
        r.last_sync_request = Some(Instant::now());
        r.on_synced(&response(&cert(&[0, 1]))).unwrap();
        assert_eq!(fx.core.tip().0.height, Height(0));
        r.on_synced(&response(&good)).unwrap();
        assert_eq!(fx.core.tip().0.height, Height(1));
        assert_eq!(fx.core.tip().1.timestamp, block.header.timestamp);
    }

    /// Height 1 committed here (synced) with the certificate of validators 0, 1 and 2, and
    /// height 2 started: the runner, what it sent and vouched for, height 1's block, and a
    /// commit certificate of height 1 by any three validators.
    fn at_height_2(fx: &Fx) -> (Runner, Recorder, impl Fn([usize; 3]) -> CommitCertificate) {
        let links = Recorder::default();
        let mut r = runner_with(fx, links.clone());
        let (h1, b1, ours) = height_1_committed(fx);
        sync_height_1(&mut r, &b1, &ours);
        assert_eq!(
            fx.core.tip().0.height,
            Height(1),
            "premise: height 1 synced"
        );
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        let cert = move |signers: [usize; 3]| commit_certificate(fx, Height(1), h1, &signers);
        (r, links, cert)
    }

    /// Review 7 finding (high): a re-proposal under a proof of lock carries the block an
    /// earlier round's proposer built, whose header names that proposer's certificate of
    /// the parent; the engine hands the re-proposer's stored block to `broadcast_proposal`,
    /// which sends beside it the re-proposer's own certificate (`head().certificate`).
    /// Where the two collected different quorums for the parent (the case the parent
    /// certificate travels for), `is_whole` finds the certificate beside it not the one the
    /// header names and every node drops the re-proposal as it would a relay's: the round
    /// has no proposal (nil prevotes), and so has every later round whose proposer
    /// re-proposes the block (its valid value) with another quorum than the block's maker.
    #[test]
    fn a_re_proposal_beside_the_re_proposers_own_parent_certificate_is_taken() {
        let fx = fixture();
        let (taken, what) = re_proposal_taken(&fx, [0, 1, 3]);
        assert!(
            taken,
            "{what}, beside its own certificate of the parent, dropped"
        );
    }

    /// Control for the finding above: the same re-proposal beside the certificate its
    /// block's header names is taken.
    #[test]
    fn a_re_proposal_beside_the_certificate_its_header_names_is_taken() {
        let fx = fixture();
        let (taken, what) = re_proposal_taken(&fx, [1, 2, 3]);
        assert!(taken, "{what} dropped");
    }

    /// At height 2, round `o`'s proposal of a block naming the quorum (1, 2, 3) for height
    /// 1, then round `re`'s re-proposal of it (another validator's) beside the certificate
    /// of height 1 by `beside`: whether the re-proposal was taken, and what it was.
    fn re_proposal_taken(fx: &Fx, beside: [usize; 3]) -> (bool, String) {
        let (mut r, _links, cert) = at_height_2(fx);
        let proposer_of = proposer_of(fx, Height(2));
        // Round `o`: validator p proposes a block naming its quorum for height 1 (1, 2, 3).
        let o = (0..8).find(|&k| proposer_of(k) != 0).unwrap();
        let p = proposer_of(o);
        // Round `re`: validator q (neither p nor this node) re-proposes it under a polka of
        // round `o`, beside its own certificate of height 1 (0, 1, 3).
        let re = (o + 1..o + 10)
            .find(|&k| ![0, p].contains(&proposer_of(k)))
            .unwrap();
        let q = proposer_of(re);
        // (Signatures are randomised: one quorum's certificate is made once.)
        let theirs = cert([1, 2, 3]);
        let qs = if beside == [1, 2, 3] {
            theirs.clone()
        } else {
            cert(beside)
        };
        let (hash, bytes) = naming_parent(proposed_block(fx, p, now_ms()).1, &theirs);
        let signed = |v: usize, round: u32, pol_round: Option<u32>| {
            signed_proposal(fx, v, Height(2), round, hash, pol_round).to_bytes()
        };
        let first = encode_three(&signed(p, o, None), &bytes, &theirs.to_bytes());
        r.on_message(inbound(Topic::PROPOSAL, first)).unwrap();
        let key = |v: usize, round: u32| (Height(2), round, fx.keys[v].1.fingerprint());
        assert!(
            r.proposals_seen.contains_key(&key(p, o)),
            "premise: round {o}'s proposal taken"
        );
        // As `broadcast_proposal` on validator q sends it.
        let again = encode_three(&signed(q, re, Some(o)), &bytes, &qs.to_bytes());
        r.on_message(inbound(Topic::PROPOSAL, again)).unwrap();
        (
            r.proposals_seen.contains_key(&key(q, re)),
            format!("validator {q}'s re-proposal in round {re} of round {o}'s block"),
        )
    }

    /// Control for the finding below: at height 2, a `Skip` certificate of round 1 (two
    /// prevotes) moves this node to round 1.
    #[test]
    fn a_skip_certificate_of_the_current_height_moves_the_round() {
        let fx = fixture();
        let (mut r, _, _) = at_height_2(&fx);
        let skip = skip_to(&fx, Height(2), 1);
        assert_eq!(r.engine.round(), Some(0));
        r.on_message(skip).unwrap();
        assert_eq!(r.engine.round(), Some(1));
    }

    /// Review 7 finding (medium): `on_message` enters a liveness certificate in
    /// `certificates_seen` before its height check, and the set's bound (`MAX_BUFFERED`)
    /// then drops every later certificate until the next commit. Certificates of past
    /// heights cost a peer no key: a commit certificate's signatures are precommits, so
    /// every synced height gives a `Skip` and a `PrecommitAny` (2 048 heights fill the set;
    /// a peer recording gossip has polkas too). Here one past height's rounds stand in for
    /// many heights (the same keys' count). Then the current height's `Skip` certificate,
    /// which would move this node to the round the others are in, is dropped. The same
    /// order holds for `proposals_seen` (a recording peer's old signed proposals, whole,
    /// one per past height: then every proposal of the height is dropped, nil prevotes).
    #[test]
    fn liveness_certificates_of_past_heights_do_not_crowd_out_the_current_heights() {
        let fx = fixture();
        let (mut r, links, _) = at_height_2(&fx);
        for round in 0..MAX_BUFFERED as u32 {
            r.on_message(skip_to(&fx, Height(1), round)).unwrap();
        }
        assert!(
            links.vouched.lock().unwrap().is_empty(),
            "premise: past heights' certificates not vouched for"
        );
        assert_eq!(r.engine.round(), Some(0), "premise: height 2, round 0");
        r.on_message(skip_to(&fx, Height(2), 1)).unwrap();
        assert_eq!(
            r.engine.round(),
            Some(1),
            "the current height's Skip certificate for round 1, after {MAX_BUFFERED} of a past height"
        );
    }

    /// A `Skip` certificate of `height` and `round` by validators 1 and 2 (two prevotes).
    fn skip_to(fx: &Fx, height: Height, round: u32) -> Inbound {
        let mut votes: Vec<SignedVote> = [1, 2]
            .iter()
            .map(|&i| signed_vote(fx, i, height, round, VoteKind::Prevote, None))
            .collect();
        votes.sort_by_key(|v| v.vote.validator.0);
        let c = LivenessCertificate {
            kind: consensus::CertificateKind::Skip,
            height,
            round,
            votes,
        };
        inbound(Topic::new(TOPIC_CERTIFICATE).unwrap(), c.to_bytes())
    }

    /// Height 2's proposal of round `r` (above `MAX_ROUNDS_AHEAD`), sent (if `early`) while
    /// this node is still at height 1 in round `r - 10`; then height 1 synced, height 2
    /// started, a `Skip` certificate moving it to round `r`, and a re-gossiped copy of the
    /// proposal. Returns this node's prevotes of height 2, round `r`.
    fn far_round_proposal_of_the_next_height(fx: &Fx, early: bool) -> Vec<Option<BlockHash>> {
        let links = Recorder::default();
        let mut r = runner_with(fx, links.clone());
        let limits = fx.core.store().limits().clone();
        let proposer_of = proposer_of(fx, Height(2));
        let round = (MAX_ROUNDS_AHEAD + 1..MAX_ROUNDS_AHEAD + 9)
            .find(|&k| proposer_of(k) != 0)
            .unwrap();
        let p = proposer_of(round);
        // Height 1's block and certificate (synced below), and height 2's block on it.
        let (_, b1, cert) = height_1_committed(fx);
        let (hash, bytes) = relabelled_height_2(fx, &b1, p, &cert);
        assert!(Block::from_bytes(&bytes, &limits).is_ok());
        let signed = signed_proposal(fx, p, Height(2), round, hash, None);
        let payload = encode_three(&signed.to_bytes(), &bytes, &cert.to_bytes());
        if early {
            r.on_message(skip_to(fx, Height(1), round - MAX_ROUNDS_AHEAD))
                .unwrap();
            assert_eq!(r.engine.round(), Some(round - MAX_ROUNDS_AHEAD));
            r.on_message(inbound(Topic::PROPOSAL, payload.clone()))
                .unwrap();
            // Fixed: a later height starts at round 0, so this proposal is too far ahead to
            // keep (and not recorded as taken).
            assert!(r.future.is_empty(), "kept for height 2");
        }
        sync_height_1(&mut r, &b1, &cert);
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        r.on_message(skip_to(fx, Height(2), round)).unwrap();
        assert_eq!(r.engine.round(), Some(round), "premise: in round {round}");
        // A peer re-gossips the round's proposal (a stall: every 2 s).
        let mut wrapped = vec![Topic::PROPOSAL.number()];
        wrapped.extend_from_slice(&payload);
        r.on_message(inbound(Topic::new(TOPIC_REGOSSIP).unwrap(), wrapped))
            .unwrap();
        own_prevotes(fx, &links)
            .into_iter()
            .filter(|v| v.height == Height(2) && v.round == round)
            .map(|v| v.block)
            .collect()
    }

    /// Control for the finding below: a proposal of a round the node has just entered,
    /// re-gossiped to it, gets its prevote (nil here: the block is not a valid height 2).
    #[test]
    fn a_re_gossiped_proposal_of_the_round_entered_is_prevoted() {
        let fx = fixture();
        assert_eq!(far_round_proposal_of_the_next_height(&fx, false).len(), 1);
    }

    /// Review 7 finding (low): `on_message` bounds a proposal's round by this height's
    /// round even when the proposal is of a later height (kept in `future`). Replayed when
    /// that height starts (round 0), it re-enters `proposals_seen`, then Malachite drops it
    /// (its future-round lookahead, also 10). Since copies of a proposal already taken are
    /// now dropped, the re-gossiped copy is too when the node reaches the round: no
    /// proposal, no prevote. (Before, a copy of the same block went through.) The same
    /// holds for a proposal whose `buffered` or `future` slot was full.
    #[test]
    fn a_far_round_proposal_kept_while_behind_is_taken_when_its_round_comes() {
        let fx = fixture();
        assert_eq!(far_round_proposal_of_the_next_height(&fx, true).len(), 1);
    }

    /// At height 2 (height 1 synced with this node's quorum 0, 1, 2), round `o`'s proposal
    /// of a block whose header names the quorum 1, 2, 3 for height 1 is taken; then (after a
    /// restart from the WAL if `restart`) the engine has this node re-propose that block under
    /// a proof of lock of round `o`: the parent certificate `broadcast_proposal` sends beside
    /// it, and the one its header names.
    fn re_proposal_sent_by_this_node(fx: &Fx, restart: bool) -> (Vec<u8>, Vec<u8>) {
        let (mut r, links, cert) = at_height_2(fx);
        let proposer_of = proposer_of(fx, Height(2));
        let o = (0..8).find(|&k| proposer_of(k) != 0).unwrap();
        let p = proposer_of(o);
        let theirs = cert([1, 2, 3]);
        let (hash, bytes) = naming_parent(proposed_block(fx, p, now_ms()).1, &theirs);
        let signed = |v: usize, round: u32, pol_round: Option<u32>| {
            signed_proposal(fx, v, Height(2), round, hash, pol_round)
        };
        let first = encode_three(&signed(p, o, None).to_bytes(), &bytes, &theirs.to_bytes());
        r.on_message(inbound(Topic::PROPOSAL, first)).unwrap();
        assert!(
            r.host.executed.contains_key(&hash),
            "premise: round {o}'s block judged valid"
        );
        let links = if restart {
            drop(r);
            let again = Recorder::default();
            r = runner_with(fx, again.clone());
            assert_eq!(
                r.host.parent_certs.get(&hash),
                Some(&theirs),
                "premise: the named certificate is back from the WAL"
            );
            again
        } else {
            links
        };
        // What the engine's `PublishConsensusMsg` (or `RestreamProposal`) hands the host: the
        // signed re-proposal and the block bytes it holds (after a restart, from its WAL).
        r.host
            .broadcast_proposal(&signed(0, o + 1, Some(o)), &bytes);
        let sent = links
            .sent
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _)| *t == Topic::PROPOSAL)
            .map(|(_, b)| b.clone())
            .unwrap();
        let (_, _, parent) = split_three(&sent).unwrap();
        (parent.to_vec(), theirs.to_bytes())
    }

    /// Control for the finding below: without a restart, this node re-proposes another
    /// validator's block beside the certificate of the parent its header names.
    #[test]
    fn a_re_proposal_travels_beside_the_certificate_its_header_names() {
        let fx = fixture();
        let (beside, named) = re_proposal_sent_by_this_node(&fx, false);
        assert!(beside == named, "sent beside another certificate");
    }

    /// Review 8 finding (medium): `broadcast_proposal` reads which certificate a re-proposed
    /// block's header names from `executed`, which only `validate_block` fills. After a
    /// restart, `Consensus::recover` restores the block bytes and its validity from the WAL
    /// without asking the host, so `executed` lacks the block, `named` is `None`, and the
    /// re-proposal goes out beside this node's own certificate of the parent (the host
    /// frame in the WAL gave `parent_certs` the named one, unused). A validator that missed
    /// the original proposal (the one the re-proposal is for) and holds another quorum for
    /// the parent finds the copy not whole and drops it: no proposal, nil prevote, in every
    /// round this node re-proposes. Honest: quorums differ per node, and a restart is a crash.
    #[test]
    fn a_re_proposal_after_a_restart_travels_beside_the_certificate_its_header_names() {
        let fx = fixture();
        let (beside, named) = re_proposal_sent_by_this_node(&fx, true);
        assert!(
            beside == named,
            "after a restart, sent beside another certificate ({} bytes) than its header names",
            beside.len()
        );
    }

    /// At height 1, `copies` re-gossip-topic copies of one genuine prevote of height 2 from
    /// a peer, then height 2's proposal (whole, beside the certificate its header names):
    /// whether the proposal is kept for height 2.
    fn next_heights_proposal_kept_after(fx: &Fx, copies: usize) -> bool {
        next_heights_proposal_kept_behind(fx, copies, false)
    }

    /// As above; with `faulty_rounds`, the `copies` are instead distinct prevotes of height 2
    /// one other validator signed, one per round from 0 (all genuine, each verified).
    fn next_heights_proposal_kept_behind(fx: &Fx, copies: usize, faulty_rounds: bool) -> bool {
        let mut r = runner(fx);
        let proposer_of = proposer_of(fx, Height(2));
        let round = (0..MAX_ROUNDS_AHEAD)
            .find(|&k| proposer_of(k) != 0)
            .unwrap();
        let p = proposer_of(round);
        let vote = signed_vote(fx, p, Height(2), round, VoteKind::Prevote, None);
        let mut wrapped = vec![Topic::VOTE.number()];
        wrapped.extend_from_slice(&vote.to_bytes());
        let regossip = Topic::new(TOPIC_REGOSSIP).unwrap();
        let faulty = (0..4).find(|&i| i != p).unwrap();
        for k in 0..copies {
            let payload = if faulty_rounds {
                let v = signed_vote(fx, faulty, Height(2), k as u32, VoteKind::Prevote, None);
                let mut w = vec![Topic::VOTE.number()];
                w.extend_from_slice(&v.to_bytes());
                w
            } else {
                wrapped.clone()
            };
            r.on_message(Inbound {
                peer: PeerId(Digest([9; 32])),
                topic: regossip,
                payload: payload.into(),
                id: None,
            })
            .unwrap();
        }
        // Fixed: copies of one vote are held once, and one validator's votes of a height not
        // started only for its first MAX_ROUNDS_AHEAD + 1 rounds.
        let held = if faulty_rounds {
            copies.min(MAX_ROUNDS_AHEAD as usize + 1)
        } else {
            copies.min(1)
        };
        assert_eq!(r.future.len(), held, "votes held");
        let (_, b1, cert) = height_1_committed(fx);
        let (hash, bytes) = relabelled_height_2(fx, &b1, p, &cert);
        let signed = signed_proposal(fx, p, Height(2), round, hash, None);
        let payload = encode_three(&signed.to_bytes(), &bytes, &cert.to_bytes());
        r.on_message(inbound(Topic::PROPOSAL, payload)).unwrap();
        r.future
            .iter()
            .any(|(_, _, i)| matches!(i, Input::Proposal { .. }))
    }

    /// Control for the finding below: a node behind keeps the next height's proposal.
    #[test]
    fn a_node_behind_keeps_the_next_heights_proposal() {
        let fx = fixture();
        assert!(next_heights_proposal_kept_after(&fx, 1));
    }

    /// Review 8 finding (medium, not new in bee915d): the re-gossip topic is not
    /// deduplicated by the links, and neither `future` nor `buffered` drops a vote it holds
    /// already. A linked peer with no key re-sends one genuine vote of the next height
    /// `MAX_BUFFERED` times while this node is behind: `future` is full, the proposer's
    /// genuine proposal of that height is dropped (and its later copies by the links, as
    /// duplicates), so when this node gets there it has no proposal and prevotes nil until
    /// a stalled peer re-gossips. The same holds for `buffered` within the block interval.
    #[test]
    fn copies_of_one_vote_do_not_crowd_out_the_next_heights_proposal() {
        let fx = fixture();
        assert!(
            next_heights_proposal_kept_after(&fx, MAX_BUFFERED),
            "the proposal of height 2 dropped behind {MAX_BUFFERED} copies of one vote"
        );
    }

    /// Review 9 finding (medium, left open by 0ce6ddf): `votes_held` drops copies of one
    /// vote, but nothing bounds the round of a vote of a later (or the waiting) height, as
    /// `MAX_ROUNDS_AHEAD` bounds a proposal's. One faulty validator (f = 1 of 4) signs a
    /// prevote of the next height for each of rounds 0..`MAX_BUFFERED`: each is distinct and
    /// genuine, `future` fills, and the proposer's genuine proposal of that height is
    /// dropped (its later copies too, as duplicates to the links): the review-8 outcome,
    /// with one signer instead of a keyless relay. (`buffered`, within the block interval,
    /// takes the same unbounded rounds; not tested here.)
    #[test]
    fn one_validators_far_round_votes_do_not_crowd_out_the_next_heights_proposal() {
        let fx = fixture();
        assert!(
            next_heights_proposal_kept_behind(&fx, MAX_BUFFERED, true),
            "the proposal of height 2 dropped behind {MAX_BUFFERED} votes of one validator"
        );
    }

    /// Height `height`'s empty block proposed by validator 1 a second ago, with a commit
    /// certificate by validators 0, 1 and 2, ready for `decide`.
    fn decision_at(fx: &Fx, h: &mut NodeHost) -> (Height, Decision) {
        let p = fx
            .core
            .ledger()
            .propose(vec![], fx.keys[1].1.fingerprint(), now_ms() - 1_000)
            .unwrap();
        let (height, hash) = (p.executed.height(), p.executed.hash());
        h.height = height;
        h.executed.insert(hash, p.executed);
        let certificate = commit_certificate(fx, height, hash, &[0, 1, 2]);
        (
            height,
            Decision {
                height,
                round: 0,
                block: hash,
                bytes: None,
                certificate,
            },
        )
    }

    /// Review r1 M1 (the reviewer's PoC made deterministic): `decide` read the free space,
    /// then `LocalNode::commit` read it again; the threshold crossed between the two readings
    /// made the commit's `StorageLow` a fatal error (the validator fail-stopped) instead of a
    /// held decision. Here the guard's filesystem fills right after its first reading (the
    /// guard's after-reading step flips its path to /proc, through the real `statvfs`). The
    /// commit's own reading now decides: the block is written or held, never fatal; held, it
    /// is written once the space returns.
    #[test]
    fn review_r1_the_threshold_crossed_inside_decide_holds_the_block_never_fatal() {
        let fx = fixture();
        let flip = crate::disk::testing::Flip::new();
        let guard = flip.guard(fx.core.metrics.clone());
        fx.core.set_disk(guard.clone());
        // The space runs out right after the next reading.
        guard.set_after_reading(flip.fills_after_one_reading());
        let mut h = host(&fx);
        let (height, d) = decision_at(&fx, &mut h);
        h.decide(d);
        assert!(
            h.fatal.is_none(),
            "a decided block was made fatal by a StorageLow from LocalNode::commit: {:?}",
            h.fatal
        );
        // The one reading before the write said there was room: written.
        assert_eq!(h.decided, Some(height));
        assert_eq!(fx.core.tip().0.height, height);
        // Full now: the next decision is held, not written, not fatal.
        let mut h = host(&fx);
        let (height, d) = decision_at(&fx, &mut h);
        h.decide(d);
        assert!(h.fatal.is_none(), "{:?}", h.fatal);
        assert_eq!(h.decided, None);
        let (held, certificate) = h.pending.take().expect("the decision is held");
        assert_eq!(held.height(), height);
        assert_eq!(fx.core.tip().0.height.0, height.0 - 1, "nothing written");
        // Room again: the held block commits.
        flip.empty();
        fx.core.commit(held, certificate).unwrap();
        assert_eq!(fx.core.tip().0.height, height);
    }

    /// Review r1 L4: while the free space keeps the engine from starting, the consensus thread
    /// dropped every event, sync requests included, though a low node is to answer them (a
    /// read). It answers them from its store.
    #[test]
    fn review_r1_a_node_waiting_for_space_to_start_answers_sync_requests() {
        let fx = fixture();
        let p = fx
            .core
            .ledger()
            .propose(vec![], fx.keys[1].1.fingerprint(), now_ms() - 1_000)
            .unwrap();
        let hash = p.executed.hash();
        let cert = commit_certificate(&fx, Height(1), hash, &[0, 1, 2]);
        fx.core.commit(p.executed, cert).unwrap();
        let flip = crate::disk::testing::Flip::new();
        let guard = flip.guard(fx.core.metrics.clone());
        fx.core.set_disk(guard);
        flip.fill();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(8);
        tx.send(Event::Net(inbound(
            Topic::SYNC_REQUEST,
            1u64.to_be_bytes().to_vec(),
        )))
        .unwrap();
        tx.send(Event::Stop).unwrap();
        let links = Recorder::default();
        assert!(
            !wait_for_space(&fx.core, &rx, &links),
            "stopped while waiting"
        );
        let sent = links.sent.lock().unwrap();
        let answers: Vec<&Vec<u8>> = sent
            .iter()
            .filter(|(t, _)| *t == Topic::SYNC_RESPONSE)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(answers.len(), 1, "no sync answer while waiting for space");
        let (b, _, _) = split_three(answers[0]).unwrap();
        let block = Block::from_bytes(b, fx.core.store().limits()).unwrap();
        assert_eq!(block.header.hash(), hash);
    }

    /// What this node (validator 0) signed among the messages it sent through `links`: the
    /// height and kind of each vote and proposal.
    fn own_signed(fx: &Fx, links: &Recorder) -> Vec<(Height, String)> {
        let limits = fx.core.store().limits().clone();
        let me = fx.keys[0].1.fingerprint();
        let mut out = Vec::new();
        for (t, b) in links.sent.lock().unwrap().iter() {
            if *t == Topic::VOTE
                && let Ok(v) = SignedVote::from_bytes(b, &limits)
                && v.vote.validator == me
            {
                out.push((v.vote.height, format!("{:?}", v.vote.kind)));
            }
            if *t == Topic::PROPOSAL
                && let Some((sp, _, _)) = split_three(b)
                && let Ok(p) = SignedProposal::from_bytes(sp, &limits)
                && p.proposal.proposer == me
            {
                out.push((p.proposal.height, "Proposal".into()));
            }
        }
        out
    }

    /// Review r2 H1: a validator restored from a backup (its WAL removed, the restore marker
    /// set) signs nothing at the height its peers are deciding, not even when its timeouts
    /// pass (a node without the marker prevotes the proposal: the control above), follows
    /// it to its decision, and signs from the next height on; the marker is then gone.
    #[test]
    fn a_restored_validator_follows_the_height_its_peers_decide_and_signs_after_it() {
        let fx = fixture();
        crate::restored::mark(fx.core.store().backend()).unwrap();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        assert_eq!(r.params.me, None, "no identity while the marker is set");
        let (_, hash, bytes, signed) = round_0_proposal(&fx);
        r.on_message(proposal_message(&signed, &bytes)).unwrap();
        r.tick(Instant::now() + Duration::from_secs(600)).unwrap();
        assert_eq!(own_signed(&fx, &links), vec![], "signed while restored");
        for i in 1..4 {
            let v = signed_vote(&fx, i, Height(1), 0, VoteKind::Precommit, Some(hash));
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        assert_eq!(
            fx.core.tip().0.height,
            Height(1),
            "followed to the decision"
        );
        assert_eq!(own_signed(&fx, &links), vec![], "signed while restored");
        assert_eq!(
            crate::restored::read(fx.core.store().backend()).unwrap(),
            None,
            "the marker outlived the height the network had reached"
        );
        // Height 2: signed (a proposal, or a prevote once the propose timeout passes).
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        r.tick(Instant::now() + Duration::from_secs(1200)).unwrap();
        let signed = own_signed(&fx, &links);
        assert!(
            !signed.is_empty() && signed.iter().all(|(h, _)| *h == Height(2)),
            "{signed:?}"
        );
    }

    /// Review r2 H1: what a restored validator learned of a later height (a vote of height
    /// 3) keeps it following past the decision of height 1, and survives a restart: the
    /// marker holds it.
    #[test]
    fn a_restored_validators_guard_outlives_a_decision_below_it_and_a_restart() {
        let fx = fixture();
        crate::restored::mark(fx.core.store().backend()).unwrap();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        let ahead = signed_vote(&fx, 1, Height(3), 0, VoteKind::Prevote, None);
        r.on_message(inbound(Topic::VOTE, ahead.to_bytes()))
            .unwrap();
        let (_, hash, bytes, signed) = round_0_proposal(&fx);
        r.on_message(proposal_message(&signed, &bytes)).unwrap();
        for i in 1..4 {
            let v = signed_vote(&fx, i, Height(1), 0, VoteKind::Precommit, Some(hash));
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        assert_eq!(fx.core.tip().0.height, Height(1));
        assert_eq!(
            crate::restored::read(fx.core.store().backend()).unwrap(),
            Some(Height(3))
        );
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        r.tick(Instant::now() + Duration::from_secs(1200)).unwrap();
        assert_eq!(own_signed(&fx, &links), vec![], "signed below height 3");
        drop(r);
        let again = Recorder::default();
        let mut r = runner_with(&fx, again.clone());
        assert_eq!(r.params.me, None, "the restart forgot the guard");
        assert_eq!(r.guard.as_ref().map(|g| g.known()), Some(Height(3)));
        r.tick(Instant::now() + Duration::from_secs(600)).unwrap();
        assert_eq!(own_signed(&fx, &again), vec![]);
    }

    /// Height 1 decided by the peers, with `ahead` of them (by index) having signed votes of
    /// height `at` meanwhile; then height 2 started and its timeouts passed. Returns what this
    /// validator signed at height 2.
    fn signed_at_2_with_peers_at(at: u64, ahead: &[usize]) -> Vec<(Height, String)> {
        let fx = fixture();
        let links = Recorder::default();
        let mut r = runner_with(&fx, links.clone());
        for &i in ahead {
            let v = signed_vote(&fx, i, Height(at), 0, VoteKind::Prevote, None);
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        let (_, hash, bytes, signed) = round_0_proposal(&fx);
        r.on_message(proposal_message(&signed, &bytes)).unwrap();
        for i in 1..4 {
            let v = signed_vote(&fx, i, Height(1), 0, VoteKind::Precommit, Some(hash));
            r.on_message(inbound(Topic::VOTE, v.to_bytes())).unwrap();
        }
        assert_eq!(fx.core.tip().0.height, Height(1));
        r.maybe_start_height(Instant::now() + Duration::from_secs(600))
            .unwrap();
        r.tick(Instant::now() + Duration::from_secs(1200)).unwrap();
        own_signed(&fx, &links)
            .into_iter()
            .filter(|(h, _)| *h == Height(2))
            .collect()
    }

    /// Review r4 M1: a validator behind the network (a store re-initialised from genesis, or
    /// copied) signs nothing at a height that validators of more than a third of the power
    /// show decided by signing later heights: it follows the height and syncs its block.
    /// One validator ahead (it may be faulty) does not silence it: the control.
    #[test]
    fn a_validator_signs_nothing_at_a_height_more_than_a_third_of_the_power_shows_decided() {
        assert_eq!(
            signed_at_2_with_peers_at(3, &[1, 2]),
            vec![],
            "signed at a height two of four validators had passed"
        );
        let control = signed_at_2_with_peers_at(3, &[1]);
        assert!(
            !control.is_empty(),
            "one validator ahead (maybe faulty) kept this one from signing"
        );
        // Peers at the height itself, not past it, show nothing decided (review r5 R5-7:
        // a rule counting them would stop every chain).
        let level = signed_at_2_with_peers_at(2, &[1, 2, 3]);
        assert!(
            !level.is_empty(),
            "peers at the same height kept this one from signing"
        );
    }
}
