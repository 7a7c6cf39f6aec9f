//! The host-facing driver: [`Consensus::handle`] runs one input through Malachite's core and
//! turns each effect into a synchronous call on the [`Host`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crypto::Digest;
use malachitebft_core_consensus as mcc;
use malachitebft_core_types as mc;
use mc::{Round, SignedMessage, Validity, ValueOrigin, VoteExtensionPolicy};
use mcc::{ConsensusMsg, Effect, Input as CInput, Resumable, Resume, SignedConsensusMsg, State};
use types::{
    BlockHash, ChainId, CommitCertificate, Height, Proposal, SignedProposal, SignedVote, Timestamp,
    ValidatorSet, Vote, VoteKind,
};

use crate::certificate::{CertificateKind, LivenessCertificate};
use crate::context::{
    Address, BlockId, CHeight, CProposal, CValidatorSet, CVote, GmContext, Sm2Signature, Timeouts,
    proposer_index, round_u32,
};
use crate::error::ConsensusError;
use crate::wal::{Timeout, TimeoutKind, WalEntry};

/// How this node takes part.
#[derive(Clone, Debug)]
pub struct Params {
    /// The chain votes are for.
    pub chain_id: ChainId,
    /// Our validator id, or `None` for a follower (never signs).
    pub me: Option<Digest>,
    /// Round timeouts.
    pub timeouts: Timeouts,
    /// The largest block (bytes) accepted in a proposal or the WAL.
    pub max_block_bytes: usize,
}

/// A block the host offers for a round we propose in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedBlock {
    /// Its hash (what is voted on).
    pub hash: BlockHash,
    /// The block, sent beside the proposal.
    pub bytes: Vec<u8>,
    /// Its timestamp (also inside `bytes`; reported for the host's logs and checks).
    pub timestamp: Timestamp,
}

/// A decided block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Height.
    pub height: Height,
    /// Round of the deciding precommits.
    pub round: u32,
    /// The block.
    pub block: BlockHash,
    /// The block's bytes, when this node has them (a synced decision's come from the host).
    pub bytes: Option<Vec<u8>>,
    /// 2f+1 precommits for it.
    pub certificate: CommitCertificate,
}

/// A validator caught signing two different votes for one height, round and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The validator.
    pub validator: Digest,
    /// The first vote seen.
    pub first: SignedVote,
    /// The conflicting one.
    pub second: SignedVote,
}

/// An input from the host.
#[derive(Clone, Debug)]
pub enum Input {
    /// Start deciding `height` with its validator set (after the previous height is committed).
    StartHeight {
        /// The height.
        height: Height,
        /// Its validators.
        validators: ValidatorSet,
    },
    /// A proposal from the network, with its block.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The block it names.
        block: Vec<u8>,
    },
    /// A vote from the network.
    Vote(SignedVote),
    /// A liveness certificate (polka, precommit-any, skip) from the network.
    Certificate(LivenessCertificate),
    /// A timeout armed by [`Host::schedule_timeout`] elapsed.
    TimeoutElapsed(Timeout),
    /// A block of the current height decided by others, with its certificate (sync). The
    /// host has checked the block itself (roots, execution); consensus checks the certificate.
    SyncedBlock {
        /// The block hash.
        block: BlockHash,
        /// The block.
        bytes: Vec<u8>,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
}

/// A host failure, reported back to consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError(pub String);

/// What consensus needs from the node (or the simulator). Every method is called
/// synchronously on the thread that called [`Consensus::handle`]. Signing may block (an HSM
/// round trip): call `handle` from a dedicated consensus thread (or `spawn_blocking`), never
/// from inside an async executor's worker.
pub trait Host {
    /// Signs `vote` with our key. Called only after the double-sign guard's record of it is
    /// durable in the WAL.
    fn sign_vote(&mut self, vote: &Vote) -> Result<SignedVote, HostError>;
    /// Signs `proposal` with our key (same guarantee).
    fn sign_proposal(&mut self, proposal: &Proposal) -> Result<SignedProposal, HostError>;
    /// A block to propose at `height`, `round`.
    fn propose_block(&mut self, height: Height, round: u32) -> Result<ProposedBlock, HostError>;
    /// Whether `block` (what `proposal` names) is valid: it hashes to `proposal.block`, extends
    /// our last committed block, executes, and its timestamp passes [`timestamp_acceptable`]
    /// against the host's clock. `false` makes us prevote nil.
    fn validate_block(&mut self, proposal: &Proposal, block: &[u8]) -> bool;
    /// Sends a proposal and its block to the other validators.
    fn broadcast_proposal(&mut self, proposal: &SignedProposal, block: &[u8]);
    /// Sends a vote to the other validators.
    fn broadcast_vote(&mut self, vote: &SignedVote);
    /// Sends a liveness certificate to the other validators.
    fn broadcast_certificate(&mut self, certificate: &LivenessCertificate);
    /// Arms a timer; when it fires the host sends [`Input::TimeoutElapsed`].
    fn schedule_timeout(&mut self, timeout: Timeout, after: Duration);
    /// Disarms a timer.
    fn cancel_timeout(&mut self, timeout: Timeout);
    /// Disarms every timer.
    fn cancel_all_timeouts(&mut self);
    /// Appends a frame to the WAL; must be durable (fsync'd) when this returns `Ok`.
    fn wal_append(&mut self, frame: &[u8]) -> Result<(), HostError>;
    /// A block was decided; the host commits it, then sends [`Input::StartHeight`] for the next.
    fn decide(&mut self, decision: Decision);
    /// Evidence of a validator's double vote (found while deciding).
    fn evidence(&mut self, evidence: Equivocation);
}

/// The timestamp rule for a proposed block: later than its parent's, and, for a fresh
/// proposal (`pol_round == None`), within `bound_ms` of the verifier's clock `now` (both
/// ways). A re-proposal under a proof of lock carries a block that 2f+1 validators already
/// prevoted in `pol_round`, so its (now old) timestamp was judged then; judging it again
/// against the clock would make locked validators unable ever to decide (proposer-based
/// timestamps, Tendermint PBTS, check timeliness only in the block's first round).
pub fn timestamp_acceptable(
    proposed: Timestamp,
    parent: Timestamp,
    now: Timestamp,
    bound_ms: u64,
    pol_round: Option<u32>,
) -> bool {
    proposed > parent && (pol_round.is_some() || proposed.0.abs_diff(now.0) <= bound_ms)
}

/// The default bound of [`timestamp_acceptable`]: 2 s.
pub const DEFAULT_TIMESTAMP_BOUND_MS: u64 = 2000;

/// Proposals for future heights kept until that height starts (beyond: dropped).
const MAX_FUTURE_PROPOSALS: usize = 64;

/// The double-sign guard, rebuilt from the WAL on restart.
#[derive(Debug, Default)]
struct Guard {
    /// (height, round, kind) → the block about to be signed, and the signed vote once known.
    votes: BTreeMap<VoteSlot, (Option<BlockHash>, Option<SignedVote>)>,
    /// (height, round) → the proposal about to be signed, and the signed one once known.
    proposals: BTreeMap<(Height, u32), (Proposal, Option<SignedProposal>)>,
}

type VoteSlot = (Height, u32, VoteKind);

/// Everything but Malachite's state, so effects can borrow it beside the state.
struct Core {
    ctx: GmContext,
    params: Params,
    height: Height,
    validators: Option<ValidatorSet>,
    blocks: BTreeMap<BlockHash, Vec<u8>>,
    proposals: BTreeMap<u32, SignedProposal>,
    future_proposals: BTreeMap<Height, Vec<(SignedProposal, Vec<u8>)>>,
    guard: Guard,
    queue: VecDeque<CInput<GmContext>>,
    replaying: bool,
    replayed_propose: BTreeSet<(Height, u32)>,
    /// The WAL frames being replayed: not appended a second time.
    replayed_frames: BTreeSet<Vec<u8>>,
    decided: bool,
    error: Option<ConsensusError>,
}

/// One validator's (or follower's) consensus.
pub struct Consensus {
    state: Option<State<GmContext>>,
    core: Core,
    poisoned: bool,
}

impl core::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consensus")
            .field("height", &self.core.height)
            .field("me", &self.core.params.me)
            .finish_non_exhaustive()
    }
}

fn to_timeout(t: mc::Timeout) -> Option<Timeout> {
    let kind = match t.kind {
        mc::TimeoutKind::Propose => TimeoutKind::Propose,
        mc::TimeoutKind::Prevote => TimeoutKind::Prevote,
        mc::TimeoutKind::Precommit => TimeoutKind::Precommit,
        mc::TimeoutKind::Rebroadcast => TimeoutKind::Rebroadcast,
        mc::TimeoutKind::FinalizeHeight(_) => return None,
    };
    Some(Timeout {
        round: round_u32(t.round),
        kind,
    })
}

fn from_timeout(t: Timeout) -> mc::Timeout {
    let r = Round::new(t.round);
    match t.kind {
        TimeoutKind::Propose => mc::Timeout::propose(r),
        TimeoutKind::Prevote => mc::Timeout::prevote(r),
        TimeoutKind::Precommit => mc::Timeout::precommit(r),
        TimeoutKind::Rebroadcast => mc::Timeout::rebroadcast(r),
    }
}

fn wrap_vote(v: &SignedVote) -> mc::SignedVote<GmContext> {
    SignedMessage::new(CVote::new(v.vote.clone()), Sm2Signature(v.signature))
}

fn unwrap_vote(v: &mc::SignedVote<GmContext>) -> SignedVote {
    SignedVote {
        vote: v.message.vote().clone(),
        signature: v.signature.0,
    }
}

fn wrap_proposal(p: &SignedProposal) -> mc::SignedProposal<GmContext> {
    SignedMessage::new(
        CProposal::new(p.proposal.clone()),
        Sm2Signature(p.signature),
    )
}

fn unwrap_proposal(p: &mc::SignedProposal<GmContext>) -> SignedProposal {
    SignedProposal {
        proposal: p.message.proposal().clone(),
        signature: p.signature.0,
    }
}

/// Our certificate from Malachite's.
fn to_certificate(c: &mc::CommitCertificate<GmContext>) -> CommitCertificate {
    let mut signatures: Vec<_> = c
        .commit_signatures
        .iter()
        .map(|s| (s.address.0, s.signature.0))
        .collect();
    signatures.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    signatures.dedup_by(|a, b| a.0 == b.0);
    CommitCertificate {
        height: c.height.0,
        round: round_u32(c.round),
        block: c.value_id.0,
        signatures,
    }
}

fn host_err(action: &'static str) -> impl Fn(HostError) -> ConsensusError {
    move |e| ConsensusError::Host {
        action,
        reason: e.0,
    }
}

impl Consensus {
    /// A fresh node (nothing in its WAL). Send [`Input::StartHeight`] next.
    pub fn new(params: Params) -> Self {
        Self {
            poisoned: false,
            state: None,
            core: Core {
                ctx: GmContext::new(params.chain_id.clone()),
                params,
                height: Height(0),
                validators: None,
                blocks: BTreeMap::new(),
                proposals: BTreeMap::new(),
                future_proposals: BTreeMap::new(),
                guard: Guard::default(),
                queue: VecDeque::new(),
                replaying: false,
                replayed_propose: BTreeSet::new(),
                replayed_frames: BTreeSet::new(),
                decided: false,
                error: None,
            },
        }
    }

    /// Restarts a node at `height` (the one after its last committed block) from the WAL
    /// frames it had appended, in order. The double-sign guard is rebuilt from every frame;
    /// the inputs of `height` are replayed (effects run again, but nothing is re-logged and
    /// no vote is signed that differs from one the WAL shows was about to be signed).
    pub fn recover<H: Host>(
        params: Params,
        height: Height,
        validators: ValidatorSet,
        wal: &[Vec<u8>],
        host: &mut H,
    ) -> Result<Self, ConsensusError> {
        let max = params.max_block_bytes.saturating_add(4096);
        let mut entries = Vec::with_capacity(wal.len());
        for frame in wal {
            entries.push(WalEntry::decode(frame, max)?);
        }
        let mut c = Self::new(params);
        c.core.replayed_frames = wal.iter().cloned().collect();
        for e in &entries {
            match e {
                WalEntry::SignVote(v) => {
                    c.core
                        .guard
                        .votes
                        .entry((v.height, v.round, v.kind))
                        .or_insert((v.block, None));
                }
                WalEntry::SignProposal(p) => {
                    c.core
                        .guard
                        .proposals
                        .entry((p.height, p.round))
                        .or_insert((p.clone(), None));
                }
                WalEntry::Vote(sv) if Some(sv.vote.validator) == c.core.params.me => {
                    let key = (sv.vote.height, sv.vote.round, sv.vote.kind);
                    let slot = c
                        .core
                        .guard
                        .votes
                        .entry(key)
                        .or_insert((sv.vote.block, None));
                    if slot.0 == sv.vote.block {
                        slot.1 = Some(sv.clone());
                    }
                }
                WalEntry::Proposal(sp) if Some(sp.proposal.proposer) == c.core.params.me => {
                    let key = (sp.proposal.height, sp.proposal.round);
                    let slot = c
                        .core
                        .guard
                        .proposals
                        .entry(key)
                        .or_insert((sp.proposal.clone(), None));
                    if slot.0 == sp.proposal {
                        slot.1 = Some(sp.clone());
                    }
                }
                // Malachite logs our own value as a ProposedValue with us as proposer.
                WalEntry::Propose {
                    height: h, round, ..
                } => {
                    c.core.replayed_propose.insert((*h, *round));
                }
                WalEntry::ProposedValue {
                    height: h,
                    round,
                    proposer,
                    ..
                } if Some(*proposer) == c.core.params.me => {
                    c.core.replayed_propose.insert((*h, *round));
                }
                _ => {}
            }
        }
        c.core.replaying = true;
        let start = c.start_height(height, validators, true, host);
        let result = start.and_then(|()| {
            // After start_height, which forgets the blocks of the previous height.
            let replay: Vec<CInput<GmContext>> = entries
                .into_iter()
                .filter(|e| e.height() == height)
                .filter_map(|e| c.core.replay_input(e))
                .collect();
            if let Some(state) = c.state.as_mut() {
                state.index_wal_entries(replay.iter());
            }
            for i in replay {
                c.core.queue.push_back(i);
            }
            c.drain(host)
        });
        if let Some(state) = c.state.as_mut() {
            state.reset_entries_index();
        }
        c.core.replaying = false;
        c.core.replayed_propose.clear();
        c.core.replayed_frames.clear();
        result?;
        Ok(c)
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.core.height
    }

    /// The current round, if a height is under way.
    pub fn round(&self) -> Option<u32> {
        self.state.as_ref().and_then(|s| s.round().as_u32())
    }

    /// Whether the current height is decided (the host has been told).
    pub fn is_decided(&self) -> bool {
        self.core.decided
    }

    /// Handles one input, calling the host for every effect.
    ///
    /// After an error the state machine may have moved on without its WAL record: this
    /// `Consensus` refuses every further input ([`ConsensusError::Poisoned`]); the host
    /// treats it as a crash and calls [`Consensus::recover`] with its WAL.
    pub fn handle<H: Host>(&mut self, input: Input, host: &mut H) -> Result<(), ConsensusError> {
        if self.poisoned {
            return Err(ConsensusError::Poisoned);
        }
        let r = self.handle_inner(input, host);
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    fn handle_inner<H: Host>(&mut self, input: Input, host: &mut H) -> Result<(), ConsensusError> {
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, false, host)?
            }
            Input::Proposal { proposal, block } => self.on_proposal(proposal, block, host)?,
            Input::Vote(v) => {
                if v.vote.chain_id != *self.core.ctx.chain_id() || v.vote.height < self.core.height
                {
                    return Ok(());
                }
                self.core.queue.push_back(CInput::Vote(wrap_vote(&v)));
            }
            Input::Certificate(cert) => {
                if cert.height != self.core.height || self.core.decided {
                    return Ok(());
                }
                match self.core.to_core_certificate(&cert) {
                    Some(i) => self.core.queue.push_back(i),
                    None => return Ok(()),
                }
            }
            Input::TimeoutElapsed(t) => {
                if self.core.decided {
                    return Ok(());
                }
                self.core
                    .queue
                    .push_back(CInput::TimeoutElapsed(from_timeout(t)));
            }
            Input::SyncedBlock {
                block,
                bytes,
                certificate,
            } => return self.on_synced(block, bytes, certificate, host),
        }
        self.drain(host)
    }

    fn start_height<H: Host>(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        is_restart: bool,
        host: &mut H,
    ) -> Result<(), ConsensusError> {
        let c = &mut self.core;
        c.height = height;
        c.decided = false;
        c.blocks.clear();
        c.proposals.clear();
        c.validators = Some(validators.clone());
        c.guard.votes.retain(|k, _| k.0 >= height);
        c.guard.proposals.retain(|k, _| k.0 >= height);
        let vset = CValidatorSet::new(validators);
        let address = Address(c.params.me.unwrap_or(Digest([0; 32])));
        if self.state.is_none() {
            self.state = Some(State::new(
                c.ctx.clone(),
                CHeight(height),
                vset.clone(),
                mcc::Params {
                    address,
                    threshold_params: Default::default(),
                    // Not `ProposalOnly`: in 0.8.2 that mode marks every received proposal's
                    // value valid without asking the host (handle/proposal.rs, a TODO). With
                    // `ProposalAndParts` the value's validity comes only from our
                    // `ProposedValue` input, i.e. from `Host::validate_block`; the block
                    // travels beside the proposal instead of as streamed parts.
                    value_payload: mc::ValuePayload::ProposalAndParts,
                    enabled: true,
                },
                1000,
                1000,
            ));
        }
        c.queue.push_back(CInput::StartHeight(
            CHeight(height),
            vset,
            is_restart,
            None,
            VoteExtensionPolicy::default(),
        ));
        let below: Vec<Height> = c
            .future_proposals
            .range(..=height)
            .map(|(h, _)| *h)
            .collect();
        let mut ready = Vec::new();
        for h in below {
            if let Some(list) = c.future_proposals.remove(&h)
                && h == height
            {
                ready = list;
            }
        }
        self.drain(host)?;
        for (p, b) in ready {
            self.on_proposal(p, b, host)?;
        }
        self.drain(host)
    }

    fn on_proposal<H: Host>(
        &mut self,
        sp: SignedProposal,
        block: Vec<u8>,
        host: &mut H,
    ) -> Result<(), ConsensusError> {
        let c = &mut self.core;
        let p = &sp.proposal;
        if p.chain_id != *c.ctx.chain_id()
            || p.height < c.height
            || block.len() > c.params.max_block_bytes
        {
            return Ok(());
        }
        if p.height > c.height {
            let held: usize = c.future_proposals.values().map(Vec::len).sum();
            if held < MAX_FUTURE_PROPOSALS {
                c.future_proposals
                    .entry(p.height)
                    .or_default()
                    .push((sp, block));
            }
            return Ok(());
        }
        let Some(set) = c.validators.as_ref() else {
            return Err(ConsensusError::NotStarted);
        };
        // Only the round's proposer may propose (Tendermint L22/L28 act on
        // PROPOSAL from proposer(h, r)); anything else is dropped before costing a signature check.
        let expected = &set.validators()[proposer_index(set, p.height, p.round)];
        if expected.id != p.proposer {
            return Ok(());
        }
        if sp.verify(&expected.public_key).is_err() {
            return Ok(());
        }
        let valid = host.validate_block(p, &block);
        if !c.blocks.contains_key(&p.block) {
            c.wal(
                &WalEntry::Block {
                    height: p.height,
                    hash: p.block,
                    bytes: block.clone(),
                },
                host,
            )?;
            c.blocks.insert(p.block, block);
        }
        c.proposals.entry(p.round).or_insert_with(|| sp.clone());
        let pv = mcc::ProposedValue {
            height: CHeight(p.height),
            round: Round::new(p.round),
            valid_round: p.pol_round.map_or(Round::Nil, Round::new),
            proposer: Address(p.proposer),
            value: BlockId(p.block),
            validity: Validity::from_bool(valid),
        };
        c.queue.push_back(CInput::Proposal(wrap_proposal(&sp)));
        c.queue
            .push_back(CInput::ProposedValue(pv, ValueOrigin::Consensus));
        Ok(())
    }

    fn on_synced<H: Host>(
        &mut self,
        block: BlockHash,
        bytes: Vec<u8>,
        certificate: CommitCertificate,
        host: &mut H,
    ) -> Result<(), ConsensusError> {
        let c = &mut self.core;
        if c.decided || certificate.height != c.height {
            return Ok(());
        }
        let Some(set) = c.validators.as_ref() else {
            return Err(ConsensusError::NotStarted);
        };
        certificate
            .verify(c.ctx.chain_id(), c.height, &block, set)
            .map_err(|source| ConsensusError::SyncCertificate {
                height: c.height,
                block,
                source: Box::new(source),
            })?;
        c.decided = true;
        host.cancel_all_timeouts();
        host.decide(Decision {
            height: c.height,
            round: certificate.round,
            block,
            bytes: Some(bytes),
            certificate,
        });
        Ok(())
    }

    fn drain<H: Host>(&mut self, host: &mut H) -> Result<(), ConsensusError> {
        let Some(state) = self.state.as_mut() else {
            return Err(ConsensusError::NotStarted);
        };
        let core = &mut self.core;
        while let Some(input) = core.queue.pop_front() {
            let result: Result<(), mcc::Error<GmContext>> = mcc::process!(
                input: input,
                state: state,
                metrics: &(),
                with: effect => core.on_effect(effect, host)
            );
            if let Some(e) = core.error.take() {
                core.queue.clear();
                return Err(e);
            }
            if let Err(e) = result {
                core.queue.clear();
                return Err(ConsensusError::Core {
                    reason: e.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl Core {
    fn replay_input(&mut self, e: WalEntry) -> Option<CInput<GmContext>> {
        Some(match e {
            WalEntry::SignVote(_) | WalEntry::SignProposal(_) => return None,
            WalEntry::Vote(v) => CInput::Vote(wrap_vote(&v)),
            WalEntry::Proposal(p) => {
                self.proposals
                    .entry(p.proposal.round)
                    .or_insert_with(|| p.clone());
                CInput::Proposal(wrap_proposal(&p))
            }
            WalEntry::Block { hash, bytes, .. } => {
                self.blocks.entry(hash).or_insert(bytes);
                return None;
            }
            WalEntry::Propose {
                height,
                round,
                block,
            } => CInput::Propose(mcc::LocallyProposedValue::new(
                CHeight(height),
                Round::new(round),
                BlockId(block),
            )),
            WalEntry::ProposedValue {
                height,
                round,
                valid_round,
                proposer,
                block,
                valid,
            } => CInput::ProposedValue(
                mcc::ProposedValue {
                    height: CHeight(height),
                    round: Round::new(round),
                    valid_round: valid_round.map_or(Round::Nil, Round::new),
                    proposer: Address(proposer),
                    value: BlockId(block),
                    validity: Validity::from_bool(valid),
                },
                ValueOrigin::Consensus,
            ),
            WalEntry::Timeout { timeout, .. } => CInput::TimeoutElapsed(from_timeout(timeout)),
            WalEntry::Certificate(c) => return self.to_core_certificate(&c),
        })
    }

    /// Malachite's form of a liveness certificate.
    fn to_core_certificate(&self, c: &LivenessCertificate) -> Option<CInput<GmContext>> {
        let votes: Vec<_> = c.votes.iter().map(wrap_vote).collect();
        let (h, r) = (CHeight(c.height), Round::new(c.round));
        Some(match c.kind {
            CertificateKind::Polka { block } => {
                CInput::PolkaCertificate(mc::PolkaCertificate::new(h, r, BlockId(block), votes))
            }
            CertificateKind::PrecommitAny => {
                CInput::RoundCertificate(mc::RoundCertificate::new_from_votes(
                    h,
                    r,
                    mc::RoundCertificateType::Precommit,
                    votes,
                ))
            }
            CertificateKind::Skip => CInput::RoundCertificate(
                mc::RoundCertificate::new_from_votes(h, r, mc::RoundCertificateType::Skip, votes),
            ),
        })
    }

    fn vote_of(
        &self,
        h: CHeight,
        r: Round,
        kind: VoteKind,
        block: Option<BlockHash>,
        who: Address,
        sig: Sm2Signature,
    ) -> SignedVote {
        SignedVote {
            vote: Vote {
                chain_id: self.ctx.chain_id().clone(),
                height: h.0,
                round: round_u32(r),
                kind,
                block,
                validator: who.0,
            },
            signature: sig.0,
        }
    }

    fn liveness_of_polka(&self, c: &mc::PolkaCertificate<GmContext>) -> LivenessCertificate {
        LivenessCertificate {
            kind: CertificateKind::Polka {
                block: c.value_id.0,
            },
            height: c.height.0,
            round: round_u32(c.round),
            votes: c
                .polka_signatures
                .iter()
                .map(|s| {
                    self.vote_of(
                        c.height,
                        c.round,
                        VoteKind::Prevote,
                        Some(c.value_id.0),
                        s.address,
                        s.signature,
                    )
                })
                .collect(),
        }
    }

    fn liveness_of_round(&self, c: &mc::RoundCertificate<GmContext>) -> LivenessCertificate {
        LivenessCertificate {
            kind: match c.cert_type {
                mc::RoundCertificateType::Precommit => CertificateKind::PrecommitAny,
                mc::RoundCertificateType::Skip => CertificateKind::Skip,
            },
            height: c.height.0,
            round: round_u32(c.round),
            votes: c
                .round_signatures
                .iter()
                .map(|s| {
                    let kind = match s.vote_type {
                        mc::VoteType::Prevote => VoteKind::Prevote,
                        mc::VoteType::Precommit => VoteKind::Precommit,
                    };
                    let block = match &s.value_id {
                        mc::NilOrVal::Nil => None,
                        mc::NilOrVal::Val(b) => Some(b.0),
                    };
                    self.vote_of(c.height, c.round, kind, block, s.address, s.signature)
                })
                .collect(),
        }
    }

    /// Malachite's verdict on a liveness certificate: ours.
    fn verdict(&self, c: &LivenessCertificate, vset: &CValidatorSet) -> Resume<GmContext> {
        let ok = c.verify(self.ctx.chain_id(), vset.set()).is_ok();
        Resume::CertificateValidity(if ok { Ok(()) } else { Err(not_checked(vset)) })
    }

    fn fail(&mut self, e: ConsensusError) -> Result<Resume<GmContext>, ()> {
        if self.error.is_none() {
            self.error = Some(e);
        }
        Err(())
    }

    fn wal<H: Host>(&mut self, entry: &WalEntry, host: &mut H) -> Result<(), ConsensusError> {
        host.wal_append(&entry.encode())
            .map_err(host_err("append to the WAL"))
    }

    /// Logs, for the WAL, what Malachite asks to log. `None`: nothing to log.
    fn wal_entry(&self, input: &CInput<GmContext>) -> Option<WalEntry> {
        Some(match input {
            CInput::Vote(v) => WalEntry::Vote(unwrap_vote(v)),
            CInput::Proposal(p) => WalEntry::Proposal(unwrap_proposal(p)),
            CInput::Propose(v) => WalEntry::Propose {
                height: v.height.0,
                round: round_u32(v.round),
                block: v.value.0,
            },
            CInput::ProposedValue(v, _) => WalEntry::ProposedValue {
                height: v.height.0,
                round: round_u32(v.round),
                valid_round: v.valid_round.as_u32(),
                proposer: v.proposer.0,
                block: v.value.0,
                valid: v.validity.is_valid(),
            },
            CInput::TimeoutElapsed(t) => WalEntry::Timeout {
                height: self.height,
                timeout: to_timeout(*t)?,
            },
            // Never fed by this crate (no polka/round certificates on our wire, sync bypasses
            // the core), so never logged.
            CInput::PolkaCertificate(c) => WalEntry::Certificate(self.liveness_of_polka(c)),
            CInput::RoundCertificate(c) => WalEntry::Certificate(self.liveness_of_round(c)),
            CInput::StartHeight(..) | CInput::SyncValueResponse(_) => return None,
        })
    }

    fn sign_vote<H: Host>(
        &mut self,
        vote: &Vote,
        host: &mut H,
    ) -> Result<SignedVote, ConsensusError> {
        let key = (vote.height, vote.round, vote.kind);
        if let Some((block, signed)) = self.guard.votes.get(&key) {
            if *block != vote.block {
                return Err(ConsensusError::DoubleVote {
                    height: vote.height,
                    round: vote.round,
                    kind: vote.kind,
                    signed: *block,
                    wanted: vote.block,
                });
            }
            if let Some(s) = signed
                && s.vote == *vote
            {
                return Ok(s.clone());
            }
        } else {
            // Durable before the signer is asked: a crash after signing still leaves the
            // record that forbids a different vote here.
            self.wal(&WalEntry::SignVote(vote.clone()), host)?;
            self.guard.votes.insert(key, (vote.block, None));
        }
        let signed = host.sign_vote(vote).map_err(host_err("sign a vote"))?;
        if signed.vote != *vote {
            return Err(ConsensusError::Host {
                action: "sign a vote",
                reason: "the signer returned a different vote".into(),
            });
        }
        if let Some(slot) = self.guard.votes.get_mut(&key) {
            slot.1 = Some(signed.clone());
        }
        Ok(signed)
    }

    fn sign_proposal<H: Host>(
        &mut self,
        p: &Proposal,
        host: &mut H,
    ) -> Result<SignedProposal, ConsensusError> {
        let key = (p.height, p.round);
        if let Some((first, signed)) = self.guard.proposals.get(&key) {
            if first != p {
                return Err(ConsensusError::DoubleProposal {
                    height: p.height,
                    round: p.round,
                    signed: first.block,
                    wanted: p.block,
                });
            }
            if let Some(s) = signed {
                return Ok(s.clone());
            }
        } else {
            self.wal(&WalEntry::SignProposal(p.clone()), host)?;
            self.guard.proposals.insert(key, (p.clone(), None));
        }
        let signed = host.sign_proposal(p).map_err(host_err("sign a proposal"))?;
        if signed.proposal != *p {
            return Err(ConsensusError::Host {
                action: "sign a proposal",
                reason: "the signer returned a different proposal".into(),
            });
        }
        if let Some(slot) = self.guard.proposals.get_mut(&key) {
            slot.1 = Some(signed.clone());
        }
        Ok(signed)
    }

    fn verify_msg(
        &self,
        msg: &SignedMessage<GmContext, ConsensusMsg<GmContext>>,
        key: &crypto::PublicKey,
    ) -> bool {
        let (chain, bytes) = match &msg.message {
            ConsensusMsg::Vote(v) => (&v.vote().chain_id, v.vote().signing_bytes()),
            ConsensusMsg::Proposal(p) => (&p.proposal().chain_id, p.proposal().signing_bytes()),
        };
        chain == self.ctx.chain_id()
            && types::verify_consensus_signature(key, &bytes, &msg.signature.0).is_ok()
    }

    fn on_effect<H: Host>(
        &mut self,
        effect: Effect<GmContext>,
        host: &mut H,
    ) -> Result<Resume<GmContext>, ()> {
        if self.error.is_some() {
            // Failed earlier in this input (e.g. the WAL write): behave as crashed, touch
            // nothing outside. Malachite is resumed with `Continue`, so effects that need a
            // value (signatures) abort its processing.
            return Err(());
        }
        Ok(match effect {
            Effect::CancelAllTimeouts(r) => {
                host.cancel_all_timeouts();
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                if let Some(t) = to_timeout(t) {
                    host.cancel_timeout(t);
                }
                r.resume_with(())
            }
            Effect::ScheduleTimeout(t, r) => {
                if let Some(ours) = to_timeout(t) {
                    let after = mc::Timeouts::<GmContext>::duration_for(&self.params.timeouts, t);
                    host.schedule_timeout(ours, after);
                }
                r.resume_with(())
            }
            Effect::StartRound(_, _, _, _, r) => r.resume_with(()),
            Effect::PublishConsensusMsg(msg, r) => {
                match msg {
                    SignedConsensusMsg::Vote(v) => host.broadcast_vote(&unwrap_vote(&v)),
                    SignedConsensusMsg::Proposal(p) => {
                        let sp = unwrap_proposal(&p);
                        match self.blocks.get(&sp.proposal.block) {
                            Some(b) => host.broadcast_proposal(&sp, b),
                            None => {
                                return self.fail(ConsensusError::Host {
                                    action: "find the block of our proposal",
                                    reason: format!("block {} unknown", sp.proposal.block),
                                });
                            }
                        }
                        self.proposals.entry(sp.proposal.round).or_insert(sp);
                    }
                }
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                match msg {
                    mcc::LivenessMsg::Vote(v) => host.broadcast_vote(&unwrap_vote(&v)),
                    mcc::LivenessMsg::PolkaCertificate(c) => {
                        host.broadcast_certificate(&self.liveness_of_polka(&c))
                    }
                    mcc::LivenessMsg::SkipRoundCertificate(c) => {
                        host.broadcast_certificate(&self.liveness_of_round(&c))
                    }
                }
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(c, r) => {
                host.broadcast_certificate(&self.liveness_of_round(&c));
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                host.broadcast_vote(&unwrap_vote(&v));
                r.resume_with(())
            }
            Effect::RestreamProposal(_, round, _, _, _, r) => {
                if let Some(sp) = self.proposals.get(&round_u32(round))
                    && let Some(b) = self.blocks.get(&sp.proposal.block)
                {
                    host.broadcast_proposal(sp, b);
                }
                r.resume_with(())
            }
            Effect::GetValue(h, round, _, r) => {
                let rr = round_u32(round);
                let signed_before = self
                    .guard
                    .proposals
                    .get(&(h.0, rr))
                    .map(|(p, _)| p.block)
                    .filter(|b| self.blocks.contains_key(b));
                if let Some(b) = signed_before {
                    // A proposal for this round was about to be signed before a crash: propose
                    // the same block again rather than ask the host for a new one.
                    if !self.replayed_propose.contains(&(h.0, rr)) {
                        self.queue
                            .push_back(CInput::Propose(mcc::LocallyProposedValue::new(
                                h,
                                round,
                                BlockId(b),
                            )));
                    }
                } else if !(self.replaying && self.replayed_propose.contains(&(h.0, rr))) {
                    match host.propose_block(h.0, rr) {
                        Ok(b) => {
                            let entry = WalEntry::Block {
                                height: h.0,
                                hash: b.hash,
                                bytes: b.bytes,
                            };
                            if let Err(e) = self.wal(&entry, host) {
                                return self.fail(e);
                            }
                            if let WalEntry::Block { hash, bytes, .. } = entry {
                                self.blocks.insert(hash, bytes);
                            }
                            self.queue
                                .push_back(CInput::Propose(mcc::LocallyProposedValue::new(
                                    h,
                                    round,
                                    BlockId(b.hash),
                                )));
                        }
                        Err(e) => return self.fail(host_err("propose a block")(e)),
                    }
                }
                r.resume_with(())
            }
            Effect::CertVerifiedSyncValue(_, _, r) | Effect::CertRejectedSyncValue(_, _, _, r) => {
                r.resume_with(())
            }
            // Already decided through sync: the host has this height's decision.
            Effect::Decide(_, _, r) if self.decided => r.resume_with(()),
            Effect::Decide(cert, _, r) => {
                let certificate = to_certificate(&cert);
                self.decided = true;
                host.decide(Decision {
                    height: certificate.height,
                    round: certificate.round,
                    block: certificate.block,
                    bytes: self.blocks.get(&certificate.block).cloned(),
                    certificate,
                });
                r.resume_with(())
            }
            Effect::Finalize(_, _, evidence, r) => {
                for (addr, doubles) in evidence.votes.iter() {
                    for (a, b) in doubles {
                        host.evidence(Equivocation {
                            validator: addr.0,
                            first: unwrap_vote(a),
                            second: unwrap_vote(b),
                        });
                    }
                }
                r.resume_with(())
            }
            Effect::SignVote(v, r) => match self.sign_vote(v.vote(), host) {
                Ok(s) => r.resume_with(wrap_vote(&s)),
                Err(e) => return self.fail(e),
            },
            Effect::SignProposal(p, r) => match self.sign_proposal(p.proposal(), host) {
                Ok(s) => r.resume_with(wrap_proposal(&s)),
                Err(e) => return self.fail(e),
            },
            Effect::VerifySignature(msg, key, r) => r.resume_with(self.verify_msg(&msg, &key)),
            Effect::VerifyCommitCertificate(cert, vset, _, r) => {
                let ours = to_certificate(&cert);
                let ok = ours
                    .verify(self.ctx.chain_id(), ours.height, &ours.block, vset.set())
                    .is_ok()
                    && ours.signatures.len() == cert.commit_signatures.len();
                r.resume_with(if ok {
                    Ok(())
                } else {
                    Err(mc::CertificateError::NotEnoughVotingPower {
                        signed: 0,
                        total: vset.set().total_power(),
                        expected: vset.set().quorum(),
                    })
                })
            }
            // Never fed (sync bypasses the core): refuse rather than accept unchecked.
            Effect::VerifyExtendedCommitCertificate(_, vset, _, _, r) => {
                r.resume_with(Err(not_checked(&vset)))
            }
            Effect::VerifyPolkaCertificate(c, vset, _, _) => {
                self.verdict(&self.liveness_of_polka(&c), &vset)
            }
            Effect::VerifyRoundCertificate(c, vset, _, _) => {
                self.verdict(&self.liveness_of_round(&c), &vset)
            }
            Effect::WalAppend(_, input, r) => {
                // During recovery, inputs replayed from the WAL are not logged again; new ones
                // (our own proposal or votes derived while replaying) are.
                if let Some(entry) = self.wal_entry(&input) {
                    let frame = entry.encode();
                    if !self.replayed_frames.contains(&frame)
                        && let Err(e) = host.wal_append(&frame)
                    {
                        return self.fail(host_err("append to the WAL")(e));
                    }
                }
                r.resume_with(())
            }
            Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
        })
    }
}

fn not_checked(vset: &CValidatorSet) -> mc::CertificateError<GmContext> {
    mc::CertificateError::NotEnoughVotingPower {
        signed: 0,
        total: vset.set().total_power(),
        expected: vset.set().quorum(),
    }
}
