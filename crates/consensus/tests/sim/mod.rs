//! A deterministic, seeded, virtual-time simulation of n validators running `consensus`.
//!
//! Determinism: one PRNG (splitmix64) seeded per run, events ordered by (virtual time,
//! sequence number) in a BTreeMap, only BTreeMap/Vec anywhere order matters, no wall clock,
//! no OS randomness. Keys are real SM2 keys drawn from `SeededRandom`, and so are the
//! signatures' nonces, so a run is a function of its seed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use consensus::context::{Timeouts, proposer_index};
use consensus::{
    Consensus, DEFAULT_TIMESTAMP_BOUND_MS, Decision, Equivocation, Host, HostError, Input,
    LivenessCertificate, Params, ProposedBlock, Timeout, timestamp_acceptable,
};
use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm3::{sm3, sm3_parts};
use crypto_sm::{SoftSigner, SoftwareProvider};
use types::{
    BlockHash, ChainId, CommitCertificate, Encode, Height, Proposal, SignedProposal, SignedVote,
    Timestamp, ValidatorEntry, ValidatorSet, Vote,
};

/// splitmix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

pub const T0: u64 = 1_800_000_000_000;

pub fn chain_id() -> ChainId {
    ChainId::new("sim-chain").unwrap()
}

/// n validators with SM2 keys from `seed` (ids: SM3 of the public key, standing in for the
/// certificate).
pub fn make_validators(n: usize, seed: u64) -> (Vec<SoftSigner>, ValidatorSet) {
    let mut signers = Vec::new();
    let mut entries = Vec::new();
    for i in 0..n {
        let rng = Arc::new(SeededRandom::new(
            seed.wrapping_mul(1000).wrapping_add(i as u64),
        ));
        let s = SoftwareProvider::new(rng).generate().unwrap();
        let pk = s.public_key();
        entries.push(ValidatorEntry {
            id: sm3(pk.as_bytes()),
            public_key: pk,
            power: 1,
        });
        signers.push(s);
    }
    let set = ValidatorSet::new(entries).unwrap();
    // Order signers as the set orders validators.
    let mut ordered = Vec::new();
    for v in set.validators() {
        let i = signers
            .iter()
            .position(|s| sm3(s.public_key().as_bytes()) == v.id)
            .unwrap();
        ordered.push(signers.remove(i));
    }
    (ordered, set)
}

/// A simulated block: height ‖ timestamp ‖ parent ‖ salt.
pub fn make_block(height: Height, ts: u64, parent: BlockHash, salt: u64) -> (BlockHash, Vec<u8>) {
    let mut b = Vec::new();
    b.extend_from_slice(&height.0.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(parent.as_bytes());
    b.extend_from_slice(&salt.to_be_bytes());
    (BlockHash(sm3(&b)), b)
}

pub fn parse_block(b: &[u8]) -> Option<(Height, u64, BlockHash)> {
    if b.len() != 56 {
        return None;
    }
    let h = u64::from_be_bytes(b[0..8].try_into().ok()?);
    let ts = u64::from_be_bytes(b[8..16].try_into().ok()?);
    let parent = BlockHash(Digest(b[16..48].try_into().ok()?));
    Some((Height(h), ts, parent))
}

/// The salt of a simulated block (the proposer's index + 1 for honest proposals).
pub fn block_salt(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(48..56)?.try_into().ok()?))
}

pub fn genesis() -> (BlockHash, u64) {
    (BlockHash(sm3(b"genesis")), T0 - 1000)
}

pub fn params(me: Option<Digest>) -> Params {
    Params {
        chain_id: chain_id(),
        me,
        timeouts: Timeouts {
            propose: Duration::from_millis(1000),
            prevote: Duration::from_millis(500),
            precommit: Duration::from_millis(500),
            delta: Duration::from_millis(250),
            rebroadcast: Duration::from_millis(1000),
            max: Duration::from_secs(10),
        },
        max_block_bytes: 1024,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    Honest,
    /// Runs consensus but sends nothing.
    Silent,
    /// Sends conflicting votes and proposals to two halves of its peers.
    Equivocator,
    /// Its clock is off by this many ms.
    Skewed(i64),
}

#[derive(Clone, Debug)]
pub enum Msg {
    Proposal(SignedProposal, Vec<u8>),
    Vote(SignedVote),
    Certificate(LivenessCertificate),
    SyncRequest(Height),
    SyncResponse(BlockHash, Vec<u8>, CommitCertificate),
}

impl Msg {
    fn digest(&self) -> Digest {
        match self {
            Msg::Proposal(p, b) => sm3_parts(&[b"P", &p.to_bytes(), b]),
            Msg::Vote(v) => sm3_parts(&[b"V", &v.to_bytes()]),
            Msg::Certificate(c) => sm3_parts(&[b"C", &c.to_bytes()]),
            Msg::SyncRequest(h) => sm3_parts(&[b"Q", &h.0.to_be_bytes()]),
            Msg::SyncResponse(_, b, c) => sm3_parts(&[b"R", b, &c.to_bytes()]),
        }
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
    },
    Timer {
        node: usize,
        timeout: Timeout,
        generation: u64,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
}

/// What one validator's host did during one `handle` call.
#[derive(Default)]
struct Effects {
    out: Vec<(Option<usize>, Msg)>,
    timers: Vec<TimerOp>,
    decisions: Vec<Decision>,
    evidence: Vec<Equivocation>,
}

enum TimerOp {
    Set(Timeout, Duration),
    Cancel(Timeout),
    CancelAll,
}

/// Every message a validator's key signed, across its incarnations.
#[derive(Default, Debug)]
pub struct SignLog {
    pub votes: Vec<Vote>,
    pub proposals: Vec<Proposal>,
}

impl SignLog {
    /// Panics if two different votes for one (height, round, kind) or two different
    /// proposals for one (height, round) were signed.
    pub fn assert_no_equivocation(&self, who: usize) {
        let mut v: BTreeMap<(u64, u32, u8), &Vote> = BTreeMap::new();
        for x in &self.votes {
            let k = (x.height.0, x.round, x.kind as u8);
            if let Some(prev) = v.insert(k, x) {
                assert_eq!(
                    prev, x,
                    "validator {who} signed two different votes at {k:?}"
                );
            }
        }
        let mut p: BTreeMap<(u64, u32), &Proposal> = BTreeMap::new();
        for x in &self.proposals {
            let k = (x.height.0, x.round);
            if let Some(prev) = p.insert(k, x) {
                assert_eq!(
                    prev, x,
                    "validator {who} signed two different proposals at {k:?}"
                );
            }
        }
    }
}

struct SimHost<'a> {
    me: usize,
    signer: &'a SoftSigner,
    log: &'a mut SignLog,
    wal: &'a mut Vec<Vec<u8>>,
    chain: &'a BTreeMap<u64, Committed>,
    now_ms: u64,
    effects: Effects,
    /// Fails the WAL append with this number (1-based) in this call: a crash mid-step.
    fail_wal_at: Option<u32>,
    appends: u32,
}

#[derive(Clone, Debug)]
pub struct Committed {
    pub block: BlockHash,
    pub bytes: Vec<u8>,
    pub ts: u64,
    pub certificate: CommitCertificate,
}

impl SimHost<'_> {
    fn parent(&self, h: Height) -> (BlockHash, u64) {
        match h.0.checked_sub(1).and_then(|p| self.chain.get(&p)) {
            Some(c) => (c.block, c.ts),
            None => genesis(),
        }
    }
}

impl Host for SimHost<'_> {
    fn sign_vote(&mut self, vote: &Vote) -> Result<SignedVote, HostError> {
        self.log.votes.push(vote.clone());
        vote.clone()
            .sign(self.signer)
            .map_err(|e| HostError(e.to_string()))
    }
    fn sign_proposal(&mut self, proposal: &Proposal) -> Result<SignedProposal, HostError> {
        self.log.proposals.push(proposal.clone());
        proposal
            .clone()
            .sign(self.signer)
            .map_err(|e| HostError(e.to_string()))
    }
    fn propose_block(&mut self, height: Height, _round: u32) -> Result<ProposedBlock, HostError> {
        let (parent, pts) = self.parent(height);
        let ts = self.now_ms.max(pts + 1);
        let (hash, bytes) = make_block(height, ts, parent, self.me as u64 + 1);
        Ok(ProposedBlock {
            hash,
            bytes,
            timestamp: Timestamp(ts),
        })
    }
    fn validate_block(&mut self, proposal: &Proposal, block: &[u8]) -> bool {
        let Some((h, ts, parent)) = parse_block(block) else {
            return false;
        };
        let (want_parent, pts) = self.parent(proposal.height);
        BlockHash(sm3(block)) == proposal.block
            && h == proposal.height
            && parent == want_parent
            && timestamp_acceptable(
                Timestamp(ts),
                Timestamp(pts),
                Timestamp(self.now_ms),
                DEFAULT_TIMESTAMP_BOUND_MS,
                proposal.pol_round,
            )
    }
    fn broadcast_proposal(&mut self, proposal: &SignedProposal, block: &[u8]) {
        self.effects
            .out
            .push((None, Msg::Proposal(proposal.clone(), block.to_vec())));
    }
    fn broadcast_vote(&mut self, vote: &SignedVote) {
        self.effects.out.push((None, Msg::Vote(vote.clone())));
    }
    fn broadcast_certificate(&mut self, certificate: &LivenessCertificate) {
        self.effects
            .out
            .push((None, Msg::Certificate(certificate.clone())));
    }
    fn schedule_timeout(&mut self, timeout: Timeout, after: Duration) {
        self.effects.timers.push(TimerOp::Set(timeout, after));
    }
    fn cancel_timeout(&mut self, timeout: Timeout) {
        self.effects.timers.push(TimerOp::Cancel(timeout));
    }
    fn cancel_all_timeouts(&mut self) {
        self.effects.timers.push(TimerOp::CancelAll);
    }
    fn wal_append(&mut self, frame: &[u8]) -> Result<(), HostError> {
        self.appends += 1;
        if self.fail_wal_at == Some(self.appends) {
            return Err(HostError("simulated crash during the WAL write".into()));
        }
        self.wal.push(frame.to_vec());
        Ok(())
    }
    fn decide(&mut self, decision: Decision) {
        self.effects.decisions.push(decision);
    }
    fn evidence(&mut self, evidence: Equivocation) {
        self.effects.evidence.push(evidence);
    }
}

pub struct Node {
    pub signer: SoftSigner,
    pub id: Digest,
    pub behavior: Behavior,
    pub consensus: Option<Consensus>,
    pub wal: Vec<Vec<u8>>,
    timers: BTreeMap<Timeout, u64>,
    pub chain: BTreeMap<u64, Committed>,
    pub log: SignLog,
    pub evidence: Vec<Equivocation>,
    last_sync_request: u64,
    pub crashes: u32,
    pub mid_step_crashes: u32,
    /// Heights this node decided from a synced block and certificate.
    pub synced: u32,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub n: usize,
    pub behaviors: Vec<(usize, Behavior)>,
    pub loss_permille: u64,
    pub delay_ms: (u64, u64),
    /// Nodes on one side, from, until (ms after start).
    pub partition: Option<(Vec<usize>, u64, u64)>,
    /// Crash the proposer of this height (round 0) when it starts it, for this long (ms).
    pub crash_leader: Option<(u64, u64)>,
    /// Restart this node from its WAL after every input it handles.
    pub restart_every_step: Option<usize>,
    pub heights: u64,
}

impl Scenario {
    pub fn base(name: &'static str, n: usize) -> Self {
        Self {
            name,
            n,
            behaviors: Vec::new(),
            loss_permille: 0,
            delay_ms: (5, 50),
            partition: None,
            crash_leader: None,
            restart_every_step: None,
            heights: 10,
        }
    }
}

pub struct Outcome {
    pub trace: Digest,
    pub events: u64,
    pub virtual_ms: u64,
    pub nodes: Vec<Node>,
}

pub struct Sim {
    sc: Scenario,
    rng: Rng,
    set: ValidatorSet,
    pub nodes: Vec<Node>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    now: u64,
    trace: Digest,
    generation: u64,
    /// Every decision by any node: height → block.
    decided: BTreeMap<u64, BlockHash>,
    crash_done: bool,
}

impl Sim {
    pub fn new(sc: Scenario, seed: u64) -> Self {
        let (signers, set) = make_validators(sc.n, seed);
        let nodes = signers
            .into_iter()
            .enumerate()
            .map(|(i, signer)| {
                let behavior = sc
                    .behaviors
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map_or(Behavior::Honest, |(_, b)| b.clone());
                Node {
                    id: set.validators()[i].id,
                    signer,
                    behavior,
                    consensus: None,
                    wal: Vec::new(),
                    timers: BTreeMap::new(),
                    chain: BTreeMap::new(),
                    log: SignLog::default(),
                    evidence: Vec::new(),
                    last_sync_request: 0,
                    crashes: 0,
                    mid_step_crashes: 0,
                    synced: 0,
                }
            })
            .collect();
        Self {
            sc,
            rng: Rng::new(seed),
            set,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            trace: sm3(&seed.to_be_bytes()),
            generation: 0,
            decided: BTreeMap::new(),
            crash_done: false,
        }
    }

    fn push(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), e);
    }

    fn record(&mut self, parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = vec![self.trace.as_bytes()];
        all.extend_from_slice(parts);
        self.trace = sm3_parts(&all);
    }

    fn local_now(&self, i: usize) -> u64 {
        let base = T0 + self.now;
        match self.nodes[i].behavior {
            Behavior::Skewed(s) => base.saturating_add_signed(s),
            _ => base,
        }
    }

    fn honest(&self, i: usize) -> bool {
        matches!(
            self.nodes[i].behavior,
            Behavior::Honest | Behavior::Skewed(_)
        )
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        match &self.sc.partition {
            Some((side, from, until)) if self.now >= *from && self.now < *until => {
                side.contains(&a) == side.contains(&b)
            }
            _ => true,
        }
    }

    /// Runs one input on node `i`, then applies what its host did.
    fn step(&mut self, i: usize, input: Input) {
        let next_height = Height(self.nodes[i].chain.len() as u64 + 1);
        let now_ms = self.local_now(i);
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            // Under restart-every-step, sometimes the node dies in the middle of the step, at
            // one of its WAL writes (after the intent to sign is logged, or before).
            let fail_wal_at = (self.sc.restart_every_step == Some(i) && self.rng.permille(300))
                .then(|| 1 + self.rng.below(3) as u32);
            let node = &mut self.nodes[i];
            let Some(c) = node.consensus.as_mut() else {
                return;
            };
            if let Input::StartHeight { .. } = input {
                // The previous height is committed: its WAL entries are no longer needed.
                node.wal.clear();
            }
            let mut host = SimHost {
                me: i,
                signer: &node.signer,
                log: &mut node.log,
                wal: &mut node.wal,
                chain: &node.chain,
                now_ms,
                effects: Effects::default(),
                fail_wal_at,
                appends: 0,
            };
            if let Err(e) = c.handle(input, &mut host) {
                if fail_wal_at.is_some() {
                    // Crashed mid-step: nothing it "sent" in this step left the node.
                    self.record(&[b"midstep-crash", &(i as u64).to_be_bytes()]);
                    self.nodes[i].mid_step_crashes += 1;
                    self.restart(i, true);
                    return;
                }
                panic!("node {i}: {e}");
            }
            let fx = host.effects;
            let mut decided_now = false;
            for d in fx.decisions {
                self.commit(i, d);
                decided_now = true;
            }
            self.nodes[i].evidence.extend(fx.evidence);
            self.apply_timers(i, fx.timers);
            // Under restart-every-step, sometimes crash after signing (and logging) but before
            // anything leaves the node.
            let crash_before_send = self.sc.restart_every_step == Some(i) && self.rng.permille(300);
            if !crash_before_send {
                self.send(i, fx.out);
            }
            if decided_now {
                let h = Height(self.nodes[i].chain.len() as u64 + 1);
                pending.push(Input::StartHeight {
                    height: h,
                    validators: self.set.clone(),
                });
                self.maybe_crash_leader(i, h);
            }
        }
        let _ = next_height;
        if self.sc.restart_every_step == Some(i) {
            self.restart(i, false);
        }
    }

    fn commit(&mut self, i: usize, d: Decision) {
        let cert_ok = d
            .certificate
            .verify(&chain_id(), d.height, &d.block, &self.set);
        assert!(
            cert_ok.is_ok(),
            "node {i}: certificate of height {} does not verify: {cert_ok:?}",
            d.height
        );
        if let Some(prev) = self.decided.insert(d.height.0, d.block) {
            assert_eq!(
                prev, d.block,
                "SAFETY: two blocks decided at height {}",
                d.height
            );
        }
        let bytes = d.bytes.clone().expect("decided block bytes known");
        let (_, ts, _) = parse_block(&bytes).expect("decided block parses");
        let expected = self.nodes[i].chain.len() as u64 + 1;
        assert_eq!(d.height.0, expected, "node {i} decided out of order");
        self.record(&[
            b"decide",
            &(i as u64).to_be_bytes(),
            &d.height.0.to_be_bytes(),
            d.block.as_bytes(),
        ]);
        self.nodes[i].chain.insert(
            d.height.0,
            Committed {
                block: d.block,
                bytes,
                ts,
                certificate: d.certificate,
            },
        );
    }

    fn apply_timers(&mut self, i: usize, ops: Vec<TimerOp>) {
        for op in ops {
            match op {
                TimerOp::Set(t, after) => {
                    self.generation += 1;
                    let g = self.generation;
                    self.nodes[i].timers.insert(t, g);
                    let at = self.now + after.as_millis() as u64;
                    self.push(
                        at,
                        Event::Timer {
                            node: i,
                            timeout: t,
                            generation: g,
                        },
                    );
                }
                TimerOp::Cancel(t) => {
                    self.nodes[i].timers.remove(&t);
                }
                TimerOp::CancelAll => self.nodes[i].timers.clear(),
            }
        }
    }

    fn send(&mut self, from: usize, out: Vec<(Option<usize>, Msg)>) {
        let behavior = self.nodes[from].behavior.clone();
        if behavior == Behavior::Silent {
            return;
        }
        for (to, msg) in out {
            let targets: Vec<usize> = match to {
                Some(t) => vec![t],
                None => (0..self.sc.n).filter(|j| *j != from).collect(),
            };
            let conflicting = if behavior == Behavior::Equivocator {
                self.conflicting(from, &msg)
            } else {
                None
            };
            // Half the peers get the conflicting message; the first peer gets both, so an
            // honest node can catch the equivocation.
            for (k, t) in targets.into_iter().enumerate() {
                match (&conflicting, k % 2) {
                    (Some(c), 1) => self.transmit(from, t, c.clone()),
                    (Some(c), _) if k == 0 => {
                        self.transmit(from, t, msg.clone());
                        self.transmit(from, t, c.clone());
                    }
                    _ => self.transmit(from, t, msg.clone()),
                }
            }
        }
    }

    /// The equivocator's second message: the same slot, another value, signed with its key.
    fn conflicting(&mut self, from: usize, msg: &Msg) -> Option<Msg> {
        match msg {
            Msg::Vote(v) => {
                let mut other = v.vote.clone();
                other.block = match other.block {
                    Some(_) => None,
                    None => Some(BlockHash(sm3(&self.rng.next().to_be_bytes()))),
                };
                self.nodes[from].log.votes.push(other.clone());
                Some(Msg::Vote(other.sign(&self.nodes[from].signer).ok()?))
            }
            Msg::Proposal(p, b) => {
                let (h, ts, parent) = parse_block(b)?;
                let (hash, bytes) = make_block(h, ts + 1, parent, 7);
                let mut other = p.proposal.clone();
                other.block = hash;
                self.nodes[from].log.proposals.push(other.clone());
                Some(Msg::Proposal(
                    other.sign(&self.nodes[from].signer).ok()?,
                    bytes,
                ))
            }
            _ => None,
        }
    }

    fn transmit(&mut self, from: usize, to: usize, msg: Msg) {
        if !self.linked(from, to) || self.rng.permille(self.sc.loss_permille) {
            return;
        }
        let (lo, hi) = self.sc.delay_ms;
        let delay = lo + self.rng.below(hi - lo + 1);
        let at = self.now + delay;
        self.push(at, Event::Deliver { from, to, msg });
    }

    /// Crashes the round-0 leader of the scenario's height shortly after it starts that
    /// height (somewhere in its first round).
    fn maybe_crash_leader(&mut self, i: usize, h: Height) {
        let Some((height, down)) = self.sc.crash_leader else {
            return;
        };
        let leader = proposer_index(&self.set, h, 0);
        if self.crash_done || h.0 != height || i != leader {
            return;
        }
        self.crash_done = true;
        let at = self.now + self.rng.below(150);
        self.push(at, Event::Crash { node: leader });
        self.push(at + down, Event::Restart { node: leader });
    }

    fn restart(&mut self, i: usize, from_crash: bool) {
        let node = &mut self.nodes[i];
        node.timers.clear();
        node.crashes += 1;
        let height = Height(node.chain.len() as u64 + 1);
        let mut host = SimHost {
            me: i,
            signer: &node.signer,
            log: &mut node.log,
            wal: &mut node.wal,
            chain: &node.chain,
            now_ms: 0,
            effects: Effects::default(),
            fail_wal_at: None,
            appends: 0,
        };
        host.now_ms = T0 + self.now;
        let wal = host.wal.clone();
        let c = Consensus::recover(
            params(Some(node.id)),
            height,
            self.set.clone(),
            &wal,
            &mut host,
        )
        .unwrap_or_else(|e| {
            let entries: Vec<_> = wal
                .iter()
                .map(|f| consensus::WalEntry::decode(f, 1 << 20).unwrap())
                .collect();
            panic!(
                "node {i} cannot recover at height {height} (now {}): {e}\nWAL: {entries:#?}",
                self.now
            )
        });
        let fx = host.effects;
        node.consensus = Some(c);
        let _ = from_crash;
        for d in fx.decisions {
            self.commit(i, d);
        }
        self.apply_timers(i, fx.timers);
        self.send(i, fx.out);
    }

    pub fn run(mut self, seed: u64) -> Outcome {
        for i in 0..self.sc.n {
            self.nodes[i].consensus = Some(Consensus::new(params(Some(self.nodes[i].id))));
        }
        for i in 0..self.sc.n {
            self.record(&[b"start", &(i as u64).to_be_bytes()]);
            self.step(
                i,
                Input::StartHeight {
                    height: Height(1),
                    validators: self.set.clone(),
                },
            );
        }
        for i in 0..self.sc.n {
            self.maybe_crash_leader(i, Height(1));
        }
        let limit_ms = 600_000;
        let mut events = 0u64;
        loop {
            let done = (0..self.sc.n)
                .filter(|i| self.honest(*i))
                .all(|i| self.nodes[i].chain.len() as u64 >= self.sc.heights);
            if done {
                break;
            }
            let Some(((at, _), ev)) = self.queue.pop_first() else {
                panic!(
                    "{} seed {seed}: no more events before liveness",
                    self.sc.name
                );
            };
            if at > limit_ms {
                for (i, n) in self.nodes.iter().enumerate() {
                    let v: Vec<String> = n
                        .log
                        .votes
                        .iter()
                        .take(14)
                        .map(|v| {
                            format!(
                                "r{}{:?}{}",
                                v.round,
                                v.kind,
                                v.block
                                    .map_or("nil".to_string(), |b| b.to_string()[..4].to_string())
                            )
                        })
                        .collect();
                    let p: Vec<String> = n
                        .log
                        .proposals
                        .iter()
                        .take(5)
                        .map(|p| {
                            format!(
                                "r{}:{}pol{:?}",
                                p.round,
                                &p.block.to_string()[..4],
                                p.pol_round
                            )
                        })
                        .collect();
                    eprintln!("node {i}: votes {v:?}\n  proposals {p:?}");
                }
            }
            assert!(
                at <= limit_ms,
                "{} seed {seed}: LIVENESS: not every honest node decided {} heights by {} virtual s (heights: {:?})",
                self.sc.name,
                self.sc.heights,
                limit_ms / 1000,
                self.nodes.iter().map(|n| n.chain.len()).collect::<Vec<_>>()
            );
            self.now = at;
            events += 1;
            self.handle_event(ev);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.behavior != Behavior::Equivocator {
                n.log.assert_no_equivocation(i);
            }
        }
        Outcome {
            trace: self.trace,
            events,
            virtual_ms: self.now,
            nodes: self.nodes,
        }
    }

    fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Deliver { from, to, msg } => {
                if self.nodes[to].consensus.is_none() {
                    return;
                }
                let d = msg.digest();
                self.record(&[
                    b"deliver",
                    &(from as u64).to_be_bytes(),
                    &(to as u64).to_be_bytes(),
                    d.as_bytes(),
                ]);
                let my_height = self.nodes[to].chain.len() as u64 + 1;
                let msg_height = match &msg {
                    Msg::Proposal(p, _) => Some(p.proposal.height.0),
                    Msg::Vote(v) => Some(v.vote.height.0),
                    _ => None,
                };
                if let Some(h) = msg_height
                    && h > my_height
                    && self.now >= self.nodes[to].last_sync_request + 300
                {
                    self.nodes[to].last_sync_request = self.now;
                    self.transmit(to, from, Msg::SyncRequest(Height(my_height)));
                }
                match msg {
                    Msg::Proposal(p, b) => self.step(
                        to,
                        Input::Proposal {
                            proposal: p,
                            block: b,
                        },
                    ),
                    Msg::Vote(v) => self.step(to, Input::Vote(v)),
                    Msg::Certificate(c) => self.step(to, Input::Certificate(c)),
                    Msg::SyncRequest(h) => {
                        if self.nodes[to].behavior == Behavior::Silent {
                            return;
                        }
                        if let Some(c) = self.nodes[to].chain.get(&h.0).cloned() {
                            self.transmit(
                                to,
                                from,
                                Msg::SyncResponse(c.block, c.bytes, c.certificate),
                            );
                        }
                    }
                    Msg::SyncResponse(block, bytes, certificate) => {
                        let Some((h, _, parent)) = parse_block(&bytes) else {
                            return;
                        };
                        let want_parent = match h
                            .0
                            .checked_sub(1)
                            .and_then(|p| self.nodes[to].chain.get(&p))
                        {
                            Some(c) => c.block,
                            None => genesis().0,
                        };
                        if h.0 != my_height
                            || parent != want_parent
                            || BlockHash(sm3(&bytes)) != block
                        {
                            return;
                        }
                        let before = self.nodes[to].chain.len();
                        self.step(
                            to,
                            Input::SyncedBlock {
                                block,
                                bytes,
                                certificate,
                            },
                        );
                        if self.nodes[to].chain.len() > before {
                            self.nodes[to].synced += 1;
                        }
                    }
                }
            }
            Event::Timer {
                node,
                timeout,
                generation,
            } => {
                if self.nodes[node].timers.get(&timeout) != Some(&generation) {
                    return;
                }
                self.nodes[node].timers.remove(&timeout);
                self.record(&[
                    b"timer",
                    &(node as u64).to_be_bytes(),
                    &timeout.round.to_be_bytes(),
                    &[timeout.kind as u8],
                ]);
                self.step(node, Input::TimeoutElapsed(timeout));
            }
            Event::Crash { node } => {
                self.record(&[b"crash", &(node as u64).to_be_bytes()]);
                self.nodes[node].consensus = None;
                self.nodes[node].timers.clear();
            }
            Event::Restart { node } => {
                self.record(&[b"restart", &(node as u64).to_be_bytes()]);
                self.restart(node, true);
            }
        }
    }
}

/// Runs `sc` with `seed`, asserting safety, certificates, liveness and no equivocation by
/// honest nodes; returns the outcome.
pub fn run(sc: &Scenario, seed: u64) -> Outcome {
    Sim::new(sc.clone(), seed).run(seed)
}

pub fn signer_sign(s: &SoftSigner, m: &[u8]) -> crypto::Signature {
    s.sign(&UserId::default(), m).unwrap()
}

pub fn ids(set: &ValidatorSet) -> BTreeSet<Digest> {
    set.validators().iter().map(|v| v.id).collect()
}
