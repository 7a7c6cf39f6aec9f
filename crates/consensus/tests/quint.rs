//! Model-based replay: ITF traces generated from Malachite's Quint spec (`tests/itf/`, see its
//! README and `scripts/quint-traces.sh`) replayed against Malachite's vote keeper and round
//! state machine instantiated with our [`GmContext`]: our heights, block hashes, SM2-signed
//! wire votes and `types::ValidatorSet`. After every step the implementation's output and
//! state must equal the spec's; any difference fails with the trace, step and field.
//!
//! The spec's names are mapped deterministically: a validator name becomes an SM2 key drawn
//! from `SeededRandom` seeded with the SM3 of the name (its id is the SM3 of the public key,
//! as in the simulation), a value name becomes the block hash SM3("quint-value:" ‖ name).
//!
//! Differences of modelling that the replay bridges, each checked rather than ignored:
//! - The spec's consensus state starts at round -1 with `NoStep`; Malachite's starts
//!   `Unstarted` at `Round::Nil`.
//! - The spec's round skip (`SkipRoundOutput(r)`) leaves `round` until the next `NewRound`,
//!   Malachite's moves to `r` at once (both `Unstarted`): the replay expects round `r`.
//! - The spec answers an input that does not apply with `ErrorOutput(msg)` and an unchanged
//!   state; Malachite answers with no output and an unchanged state (an invalid transition).
//! - The spec has no decision field: `DecidedOutput((r, v))` sets the expected decision
//!   (`State::decision`, value v at the commit's round r). Malachite's `Decision(round, p)`
//!   carries the round the machine is at; the commit's round is `p`'s.
//! - A timeout of another height never reaches Malachite's state machine (the host cancels a
//!   height's timers when it ends); the spec must reject it.
//! - `ProposalAndPolkaAndInvalidCInput` has no counterpart (see `SmReplay::input`): a trace
//!   is replayed up to it, and the scenario traces must not contain it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use consensus::context::{
    Address, BlockId, CHeight, CProposal, CValidatorSet, CVote, GmContext, Sm2Signature,
};
use crypto::Signer;
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm3::sm3;
use crypto_sm::{SoftSigner, SoftwareProvider};
use itf::de::{As, Integer, Same};
use malachitebft_core_state_machine::input::Input as SmInput;
use malachitebft_core_state_machine::output::Output as SmOutput;
use malachitebft_core_state_machine::state::{RoundValue, State as SmState, Step};
use malachitebft_core_state_machine::state_machine::Info;
use malachitebft_core_types::{
    Context, NilOrVal, Proposal as _, Round, SignedMessage, TimeoutKind, Validator as _,
    ValidatorSet as _, Vote as _, VoteType,
};
use malachitebft_core_votekeeper::ThresholdParams;
use malachitebft_core_votekeeper::keeper::{Output as VkOutput, VoteKeeper};
use serde::Deserialize;
use types::{BlockHash, ChainId, Height, ValidatorEntry, ValidatorSet, Vote, VoteKind};

// ---------------------------------------------------------------------------------------------
// The spec's types, as its ITF traces encode them (types.qnt, votekeeper.qnt, consensus.qnt).
// Unknown record fields (the vote keeper's evidence) are ignored by serde.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MValue {
    Nil,
    Val(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MVoteType {
    Prevote,
    Precommit,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MVote {
    vote_type: MVoteType,
    #[serde(with = "As::<Integer>")]
    height: i64,
    #[serde(with = "As::<Integer>")]
    round: i64,
    value_id: MValue,
    src_address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MVkOutput {
    #[serde(rename = "NoVKOutput")]
    None,
    #[serde(rename = "PolkaAnyVKOutput", with = "As::<Integer>")]
    PolkaAny(i64),
    #[serde(rename = "PolkaNilVKOutput", with = "As::<Integer>")]
    PolkaNil(i64),
    #[serde(rename = "PolkaValueVKOutput", with = "As::<(Integer, Same)>")]
    PolkaValue(i64, String),
    #[serde(rename = "PrecommitAnyVKOutput", with = "As::<Integer>")]
    PrecommitAny(i64),
    #[serde(rename = "PrecommitValueVKOutput", with = "As::<(Integer, Same)>")]
    PrecommitValue(i64, String),
    #[serde(rename = "SkipVKOutput", with = "As::<Integer>")]
    Skip(i64),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MWeightedVote {
    #[serde(rename = "NoWeightedVote")]
    None,
    /// The vote, its sender's weight, and the round the receiver is at.
    #[serde(rename = "WV", with = "As::<(Same, Integer, Integer)>")]
    Vote(MVote, i64, i64),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MVoteCount {
    #[serde(with = "As::<Integer>")]
    total_weight: i64,
    #[serde(with = "As::<BTreeMap<Same, Integer>>")]
    values_weights: BTreeMap<MValue, i64>,
    votes_addresses: BTreeSet<String>,
    received_votes: BTreeSet<MVote>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MRoundVotes {
    #[serde(with = "As::<Integer>")]
    height: i64,
    #[serde(with = "As::<Integer>")]
    round: i64,
    prevotes: MVoteCount,
    precommits: MVoteCount,
    emitted_outputs: BTreeSet<MVkOutput>,
    #[serde(with = "As::<BTreeMap<Same, Integer>>")]
    votes_addresses_weights: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MBookkeeper {
    #[serde(with = "As::<Integer>")]
    height: i64,
    #[serde(with = "As::<BTreeMap<Same, Integer>>")]
    validator_set: BTreeMap<String, i64>,
    #[serde(with = "As::<BTreeMap<Integer, Same>>")]
    rounds: BTreeMap<i64, MRoundVotes>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VkState {
    bookkeeper: MBookkeeper,
    last_emitted: MVkOutput,
    weighted_vote: MWeightedVote,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MStep {
    #[serde(rename = "NoStep")]
    None,
    #[serde(rename = "UnstartedStep")]
    Unstarted,
    #[serde(rename = "ProposeStep")]
    Propose,
    #[serde(rename = "PrevoteStep")]
    Prevote,
    #[serde(rename = "PrecommitStep")]
    Precommit,
    #[serde(rename = "CommitStep")]
    Commit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MTimeout {
    #[serde(rename = "ProposeTimeout")]
    Propose,
    #[serde(rename = "PrevoteTimeout")]
    Prevote,
    #[serde(rename = "PrecommitTimeout")]
    Precommit,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MConsensusState {
    p: String,
    #[serde(with = "As::<Integer>")]
    height: i64,
    #[serde(with = "As::<Integer>")]
    round: i64,
    step: MStep,
    #[serde(with = "As::<Integer>")]
    locked_round: i64,
    locked_value: MValue,
    #[serde(with = "As::<Integer>")]
    valid_round: i64,
    valid_value: MValue,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MInput {
    #[serde(rename = "NoConsensusInput")]
    None,
    #[serde(rename = "NewRoundCInput", with = "As::<Integer>")]
    NewRound(i64),
    #[serde(rename = "NewRoundProposerCInput", with = "As::<Integer>")]
    NewRoundProposer(i64),
    #[serde(rename = "ProposeValueCInput")]
    ProposeValue(String),
    #[serde(rename = "ProposalCInput", with = "As::<(Integer, Same)>")]
    Proposal(i64, MValue),
    #[serde(
        rename = "ProposalAndPolkaPreviousAndValidCInput",
        with = "As::<(Same, Integer)>"
    )]
    ProposalAndPolkaPreviousAndValid(MValue, i64),
    #[serde(rename = "ProposalInvalidCInput")]
    ProposalInvalid,
    #[serde(rename = "PolkaNilCInput")]
    PolkaNil,
    #[serde(rename = "PolkaAnyCInput")]
    PolkaAny,
    #[serde(rename = "ProposalAndPolkaAndValidCInput")]
    ProposalAndPolkaAndValid(MValue),
    #[serde(rename = "ProposalAndPolkaAndInvalidCInput")]
    ProposalAndPolkaAndInvalid(MValue),
    #[serde(rename = "PrecommitAnyCInput")]
    PrecommitAny,
    #[serde(
        rename = "ProposalAndCommitAndValidCInput",
        with = "As::<(Integer, Same)>"
    )]
    ProposalAndCommitAndValid(i64, String),
    #[serde(rename = "RoundSkipCInput", with = "As::<Integer>")]
    RoundSkip(i64),
    #[serde(rename = "TimeoutProposeCInput", with = "As::<(Integer, Integer)>")]
    TimeoutPropose(i64, i64),
    #[serde(rename = "TimeoutPrevoteCInput", with = "As::<(Integer, Integer)>")]
    TimeoutPrevote(i64, i64),
    #[serde(rename = "TimeoutPrecommitCInput", with = "As::<(Integer, Integer)>")]
    TimeoutPrecommit(i64, i64),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MProposal {
    src_address: String,
    #[serde(with = "As::<Integer>")]
    height: i64,
    #[serde(with = "As::<Integer>")]
    round: i64,
    proposal: String,
    #[serde(with = "As::<Integer>")]
    valid_round: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "tag", content = "value")]
enum MOutput {
    #[serde(rename = "NoConsensusOutput")]
    None,
    #[serde(rename = "ProposalOutput")]
    Proposal(MProposal),
    #[serde(
        rename = "GetValueAndScheduleTimeoutOutput",
        with = "As::<(Integer, Integer, Same)>"
    )]
    GetValueAndScheduleTimeout(i64, i64, MTimeout),
    #[serde(rename = "VoteOutput")]
    Vote(MVote),
    #[serde(rename = "TimeoutOutput", with = "As::<(Integer, Same)>")]
    Timeout(i64, MTimeout),
    #[serde(rename = "DecidedOutput", with = "As::<(Integer, Same)>")]
    Decided(i64, String),
    #[serde(rename = "SkipRoundOutput", with = "As::<Integer>")]
    SkipRound(i64),
    #[serde(rename = "ErrorOutput")]
    Error(String),
}

#[derive(Clone, Debug, Deserialize)]
struct SmStep {
    state: MConsensusState,
    input: MInput,
    output: MOutput,
}

// ---------------------------------------------------------------------------------------------
// Mapping the spec's names to our types.
// ---------------------------------------------------------------------------------------------

fn chain() -> ChainId {
    ChainId::new("quint-mbt").unwrap()
}

/// The block hash standing for the spec's value `name`.
fn block(name: &str) -> BlockId {
    BlockId(BlockHash(sm3(format!("quint-value:{name}").as_bytes())))
}

fn value_id(v: &MValue) -> NilOrVal<BlockId> {
    match v {
        MValue::Nil => NilOrVal::Nil,
        MValue::Val(name) => NilOrVal::Val(block(name)),
    }
}

/// The SM2 key of the spec's validator `name`.
fn signer(name: &str) -> SoftSigner {
    let seed = u64::from_be_bytes(sm3(name.as_bytes()).0[..8].try_into().unwrap());
    SoftwareProvider::new(Arc::new(SeededRandom::new(seed)))
        .generate()
        .unwrap()
}

/// Validators by spec name: key and address.
struct Validators {
    signers: HashMap<String, SoftSigner>,
    addresses: HashMap<String, Address>,
}

impl Validators {
    fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let mut signers = HashMap::new();
        let mut addresses = HashMap::new();
        for name in names {
            let s = signer(name);
            addresses.insert(name.clone(), Address(sm3(s.public_key().as_bytes())));
            signers.insert(name.clone(), s);
        }
        Self { signers, addresses }
    }

    fn address(&self, name: &str) -> Result<Address, String> {
        self.addresses
            .get(name)
            .copied()
            .ok_or_else(|| format!("the trace names validator {name:?}, unknown to the replay"))
    }

    fn name_of(&self, address: &Address) -> String {
        self.addresses
            .iter()
            .find(|(_, a)| *a == address)
            .map_or_else(|| format!("<unknown {address}>"), |(n, _)| n.clone())
    }
}

fn height(h: i64) -> Result<CHeight, String> {
    u64::try_from(h)
        .map(|h| CHeight(Height(h)))
        .map_err(|_| format!("height {h} is negative: not a height of ours"))
}

fn round(r: i64) -> Result<Round, String> {
    if r == -1 {
        return Ok(Round::Nil);
    }
    u32::try_from(r)
        .map(Round::new)
        .map_err(|_| format!("round {r} is neither -1 (nil) nor a u32"))
}

fn vote_type(t: MVoteType) -> VoteType {
    match t {
        MVoteType::Prevote => VoteType::Prevote,
        MVoteType::Precommit => VoteType::Precommit,
    }
}

fn timeout_kind(t: MTimeout) -> TimeoutKind {
    match t {
        MTimeout::Propose => TimeoutKind::Propose,
        MTimeout::Prevote => TimeoutKind::Prevote,
        MTimeout::Precommit => TimeoutKind::Precommit,
    }
}

/// Fails with `what` and both sides when they differ.
fn same<T: PartialEq + Debug>(what: &str, actual: T, expected: T) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: implementation has {actual:?}, spec has {expected:?}"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading traces.
// ---------------------------------------------------------------------------------------------

fn trace_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/itf")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".itf.json"))
        .collect();
    files.sort();
    files
}

fn load<S: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<S>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let trace = itf::trace_from_str::<S>(&text).map_err(|e| format!("not a valid trace: {e}"))?;
    if trace.states.len() < 2 {
        return Err(format!(
            "{} state(s): a trace needs an initial state and at least one step",
            trace.states.len()
        ));
    }
    Ok(trace.states.into_iter().map(|s| s.value).collect())
}

/// What one trace (or a set of traces) exercised.
#[derive(Debug, Default)]
struct Replayed {
    /// Steps handed to the implementation and compared.
    applied: usize,
    /// Steps the host never hands to the implementation; the spec rejected each.
    dropped: usize,
    /// Why the replay stopped before the end of the trace, if it did.
    cut_short: Option<String>,
}

#[derive(Debug, Default)]
struct Summary {
    traces: usize,
    applied: usize,
    dropped: usize,
    cut_short: usize,
}

/// Replays every trace of `dir` with `replay`; fails naming each trace that diverges.
fn replay_all<S: for<'de> Deserialize<'de>>(
    dir: &str,
    replay: impl Fn(&[S]) -> Result<Replayed, String>,
) -> Summary {
    let files = trace_files(dir);
    assert!(!files.is_empty(), "no traces in tests/itf/{dir}");
    let mut failures = Vec::new();
    let mut sum = Summary::default();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        match load::<S>(path).and_then(|states| replay(&states)) {
            Err(e) => failures.push(format!("{dir}/{name}: {e}")),
            Ok(r) => {
                sum.traces += 1;
                sum.applied += r.applied;
                sum.dropped += r.dropped;
                if let Some(why) = r.cut_short {
                    sum.cut_short += 1;
                    println!("{dir}/{name}: replayed up to {why}");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} traces diverge:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    println!("{dir}: {sum:?}");
    sum
}

// ---------------------------------------------------------------------------------------------
// Vote keeper.
// ---------------------------------------------------------------------------------------------

/// Our vote keeper's outputs in the spec's terms (the spec tags each with the vote's round).
fn vk_output(o: &VkOutput<BlockId>, vote_round: i64, v: &Values) -> MVkOutput {
    match o {
        VkOutput::PolkaAny => MVkOutput::PolkaAny(vote_round),
        VkOutput::PolkaNil => MVkOutput::PolkaNil(vote_round),
        VkOutput::PolkaValue(id) => MVkOutput::PolkaValue(vote_round, v.name_of(id)),
        VkOutput::PrecommitAny => MVkOutput::PrecommitAny(vote_round),
        VkOutput::PrecommitValue(id) => MVkOutput::PrecommitValue(vote_round, v.name_of(id)),
        VkOutput::SkipRound(r) => MVkOutput::Skip(r.as_i64()),
    }
}

/// Value names seen in a trace, for naming block hashes back in messages and outputs.
#[derive(Default)]
struct Values(HashMap<BlockId, String>);

impl Values {
    fn note(&mut self, v: &MValue) {
        if let MValue::Val(name) = v {
            self.0.insert(block(name), name.clone());
        }
    }
    fn name_of(&self, id: &BlockId) -> String {
        self.0
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("<block {id}>"))
    }
}

fn check_vote_count(
    what: &str,
    actual: &malachitebft_core_votekeeper::count::VoteCount<GmContext>,
    received: &BTreeSet<MVote>,
    expected: &MVoteCount,
    vals: &Validators,
    total: u64,
) -> Result<(), String> {
    same(
        &format!("{what} total weight"),
        total,
        expected.total_weight as u64,
    )?;
    let actual_weights: BTreeMap<NilOrVal<BlockId>, u64> = expected
        .values_weights
        .keys()
        .map(value_id)
        .chain([NilOrVal::Nil])
        .map(|v| (v, actual.get(&v)))
        .filter(|(_, w)| *w > 0)
        .collect();
    let expected_weights: BTreeMap<NilOrVal<BlockId>, u64> = expected
        .values_weights
        .iter()
        .map(|(v, w)| (value_id(v), *w as u64))
        .filter(|(_, w)| *w > 0)
        .collect();
    same(
        &format!("{what} weights per value"),
        actual_weights,
        expected_weights,
    )?;
    // Every weight the implementation holds is one the spec names (no extra values).
    same(
        &format!("{what} summed weight"),
        actual.sum(),
        expected.values_weights.values().map(|w| *w as u64).sum(),
    )?;
    let actual_voters: BTreeSet<String> = actual
        .validator_addresses
        .iter()
        .map(|a| vals.name_of(a))
        .collect();
    same(
        &format!("{what} voters"),
        actual_voters,
        expected.votes_addresses.clone(),
    )?;
    same(
        &format!("{what} received votes"),
        received,
        &expected.received_votes,
    )
}

fn replay_votekeeper(states: &[VkState]) -> Result<Replayed, String> {
    let init = &states[0].bookkeeper;
    let vals = Validators::new(init.validator_set.keys());
    let mut entries = Vec::new();
    for (name, power) in &init.validator_set {
        let s = &vals.signers[name];
        entries.push(ValidatorEntry {
            id: vals.addresses[name].0,
            public_key: s.public_key(),
            power: u64::try_from(*power).map_err(|_| format!("{name} has power {power}"))?,
        });
    }
    let set =
        CValidatorSet::new(ValidatorSet::new(entries).map_err(|e| format!("validator set: {e}"))?);
    let total = set.total_voting_power();
    let mut keeper: VoteKeeper<GmContext> = VoteKeeper::new(set, ThresholdParams::default());
    let mut values = Values::default();
    same("initial rounds", keeper.rounds(), init.rounds.len())?;
    same("initial output", &states[0].last_emitted, &MVkOutput::None)?;

    for (i, st) in states.iter().enumerate().skip(1) {
        let step = format!("step {i}");
        let MWeightedVote::Vote(mv, weight, current_round) = &st.weighted_vote else {
            return Err(format!("{step}: no vote in the step"));
        };
        values.note(&mv.value_id);
        let addr = vals.address(&mv.src_address)?;
        let power = keeper
            .validator_set()
            .get_by_address(&addr)
            .map(|v| v.voting_power())
            .ok_or_else(|| format!("{step}: {} is not in the set", mv.src_address))?;
        same(&format!("{step}: sender's weight"), power, *weight as u64)?;
        let vote = Vote {
            chain_id: chain(),
            height: height(mv.height)?.0,
            round: u32::try_from(mv.round).map_err(|_| format!("vote round {}", mv.round))?,
            kind: match mv.vote_type {
                MVoteType::Prevote => VoteKind::Prevote,
                MVoteType::Precommit => VoteKind::Precommit,
            },
            block: match value_id(&mv.value_id) {
                NilOrVal::Nil => None,
                NilOrVal::Val(b) => Some(b.0),
            },
            validator: addr.0,
        };
        let signed = vote
            .sign(&vals.signers[&mv.src_address])
            .map_err(|e| format!("{step}: signing: {e}"))?;
        signed
            .verify(&vals.signers[&mv.src_address].public_key())
            .map_err(|e| format!("{step}: our own signature does not verify: {e:?}"))?;
        let message = CVote::new(signed.vote.clone());
        same(
            &format!("{step}: vote type"),
            message.vote_type(),
            vote_type(mv.vote_type),
        )?;
        let output = keeper.apply_vote(
            SignedMessage::new(message, Sm2Signature(signed.signature)),
            round(*current_round)?,
        );
        let actual = output
            .as_ref()
            .map_or(MVkOutput::None, |o| vk_output(o, mv.round, &values));
        same(&format!("{step}: output"), &actual, &st.last_emitted)?;
        check_bookkeeper(&step, &keeper, &st.bookkeeper, &vals, &values, total)?;
    }
    Ok(Replayed {
        applied: states.len() - 1,
        ..Replayed::default()
    })
}

fn check_bookkeeper(
    step: &str,
    keeper: &VoteKeeper<GmContext>,
    expected: &MBookkeeper,
    vals: &Validators,
    values: &Values,
    total: u64,
) -> Result<(), String> {
    same(
        &format!("{step}: total weight"),
        keeper.total_weight(),
        expected.validator_set.values().map(|w| *w as u64).sum(),
    )?;
    let actual_rounds: Vec<i64> = keeper.all_rounds().keys().map(|r| r.as_i64()).collect();
    let expected_rounds: Vec<i64> = expected.rounds.keys().copied().collect();
    same(&format!("{step}: rounds"), actual_rounds, expected_rounds)?;
    for (r, exp) in &expected.rounds {
        let at = format!("{step}, round {r}");
        same(&format!("{at}: height"), exp.height, expected.height)?;
        same(&format!("{at}: round"), exp.round, *r)?;
        let per_round = keeper.per_round(round(*r)?).unwrap();
        let outputs: BTreeSet<MVkOutput> = per_round
            .emitted_outputs()
            .iter()
            .map(|o| vk_output(o, *r, values))
            .collect();
        same(
            &format!("{at}: emitted outputs"),
            &outputs,
            &exp.emitted_outputs,
        )?;
        let weights: BTreeMap<String, i64> = per_round
            .addresses_weights()
            .get_inner()
            .iter()
            .map(|(a, w)| (vals.name_of(a), *w as i64))
            .collect();
        same(
            &format!("{at}: weight per sender"),
            &weights,
            &exp.votes_addresses_weights,
        )?;
        let mut received: [BTreeSet<MVote>; 2] = Default::default();
        for v in per_round.received_votes() {
            let m = &v.message;
            let (kind, slot) = match m.vote_type() {
                VoteType::Prevote => (MVoteType::Prevote, 0),
                VoteType::Precommit => (MVoteType::Precommit, 1),
            };
            received[slot].insert(MVote {
                vote_type: kind,
                height: m.height().0.0 as i64,
                round: m.round().as_i64(),
                value_id: match m.value() {
                    NilOrVal::Nil => MValue::Nil,
                    NilOrVal::Val(b) => MValue::Val(values.name_of(b)),
                },
                src_address: vals.name_of(m.validator_address()),
            });
        }
        let votes = per_round.votes();
        check_vote_count(
            &format!("{at}: prevotes"),
            votes.prevotes(),
            &received[0],
            &exp.prevotes,
            vals,
            total,
        )?;
        check_vote_count(
            &format!("{at}: precommits"),
            votes.precommits(),
            &received[1],
            &exp.precommits,
            vals,
            total,
        )?;
    }
    Ok(())
}

#[test]
fn votekeeper_traces_replay_on_our_context() {
    let r = replay_all::<VkState>("votekeeper", replay_votekeeper);
    assert_eq!(
        r.traces, 10,
        "the vote keeper set has 10 traces (tests/itf/README.md)"
    );
    assert_eq!(r.applied, 29, "votes applied over the 10 traces");
}

// ---------------------------------------------------------------------------------------------
// Round state machine.
// ---------------------------------------------------------------------------------------------

/// The process that proposes whenever the trace's own process does not.
const OTHER: &str = "Other";

struct SmReplay {
    ctx: GmContext,
    vals: Validators,
    values: Values,
}

impl SmReplay {
    fn proposal(
        &self,
        state: &SmState<GmContext>,
        r: Round,
        value: &MValue,
        pol_round: Round,
    ) -> Result<CProposal, String> {
        let NilOrVal::Val(b) = value_id(value) else {
            return Err(
                "a proposal for nil cannot be expressed (our proposals name a block)".into(),
            );
        };
        Ok(self
            .ctx
            .new_proposal(state.height, r, b, pol_round, self.vals.address(OTHER)?))
    }

    /// What becomes of the spec's input: for Malachite, the input and its `Info` (the input's
    /// round, the round's proposer; our address is `me`).
    fn input(
        &self,
        state: &SmState<GmContext>,
        input: &MInput,
        me: Address,
    ) -> Result<Delivery, String> {
        let other = self.vals.address(OTHER)?;
        let cur = state.round;
        let apply = |r: Round, proposer: Address, i: SmInput<GmContext>| {
            Ok(Delivery::Apply(r, proposer, Box::new(i)))
        };
        // Malachite's timeouts carry no height: the timers of a height are cancelled when
        // it ends (`Effect::CancelAllTimeouts`, `Host::cancel_all_timeouts`).
        let timeout = |h: i64, r: i64, i: SmInput<GmContext>| {
            if height(h)? == state.height {
                apply(round(r)?, other, i)
            } else {
                Ok(Delivery::Dropped("a timeout of another height"))
            }
        };
        match input {
            MInput::None => Err("NoConsensusInput after the initial state".into()),
            MInput::NewRound(r) => apply(round(*r)?, other, SmInput::NewRound(round(*r)?)),
            MInput::NewRoundProposer(r) => apply(round(*r)?, me, SmInput::NewRound(round(*r)?)),
            MInput::ProposeValue(v) => apply(cur, me, SmInput::ProposeValue(block(v))),
            MInput::Proposal(r, v) => {
                let p = self.proposal(state, round(*r)?, v, Round::Nil)?;
                apply(round(*r)?, other, SmInput::Proposal(p))
            }
            MInput::ProposalAndPolkaPreviousAndValid(v, vr) => {
                let p = self.proposal(state, cur, v, round(*vr)?)?;
                apply(cur, other, SmInput::ProposalAndPolkaPrevious(p))
            }
            MInput::ProposalInvalid => apply(cur, other, SmInput::InvalidProposal),
            MInput::PolkaNil => apply(cur, other, SmInput::PolkaNil),
            MInput::PolkaAny => apply(cur, other, SmInput::PolkaAny),
            MInput::ProposalAndPolkaAndValid(v) => {
                let p = self.proposal(state, cur, v, Round::Nil)?;
                apply(cur, other, SmInput::ProposalAndPolkaCurrent(p))
            }
            // The spec marks this input as open ("TODO: Discuss what to do about it"): it
            // carries no proof-of-lock round, which Malachite's InvalidProposalAndPolkaPrevious
            // needs, and the spec prevotes nil on it in any step, even after a precommit.
            MInput::ProposalAndPolkaAndInvalid(_) => Ok(Delivery::Inexpressible(
                "ProposalAndPolkaAndInvalidCInput (no proof-of-lock round; open in the spec)",
            )),
            MInput::PrecommitAny => apply(cur, other, SmInput::PrecommitAny),
            MInput::ProposalAndCommitAndValid(r, v) => {
                let p = self.proposal(state, round(*r)?, &MValue::Val(v.clone()), Round::Nil)?;
                apply(round(*r)?, other, SmInput::ProposalAndPrecommitValue(p))
            }
            MInput::RoundSkip(r) => apply(round(*r)?, other, SmInput::SkipRound(round(*r)?)),
            MInput::TimeoutPropose(h, r) => timeout(*h, *r, SmInput::TimeoutPropose),
            MInput::TimeoutPrevote(h, r) => timeout(*h, *r, SmInput::TimeoutPrevote),
            MInput::TimeoutPrecommit(h, r) => timeout(*h, *r, SmInput::TimeoutPrecommit),
        }
    }

    fn check_output(
        &self,
        out: Option<&SmOutput<GmContext>>,
        expected: &MOutput,
    ) -> Result<(), String> {
        match (out, expected) {
            (None, MOutput::None | MOutput::Error(_)) => Ok(()),
            (Some(SmOutput::NewRound(r)), MOutput::SkipRound(er)) => {
                same("new round", r.as_i64(), *er)
            }
            (Some(SmOutput::ScheduleTimeout(t)), MOutput::Timeout(er, ek)) => {
                same("timeout round", t.round.as_i64(), *er)?;
                same("timeout kind", t.kind, timeout_kind(*ek))
            }
            (
                Some(SmOutput::GetValueAndScheduleTimeout(h, r, t)),
                MOutput::GetValueAndScheduleTimeout(eh, er, ek),
            ) => {
                same("get-value height", *h, height(*eh)?)?;
                same("get-value round", r.as_i64(), *er)?;
                same("get-value timeout round", t.round.as_i64(), *er)?;
                same("get-value timeout kind", t.kind, timeout_kind(*ek))
            }
            (Some(SmOutput::Proposal(p)), MOutput::Proposal(ep)) => {
                same("proposal chain", &p.proposal().chain_id, &chain())?;
                same(
                    "proposer",
                    self.vals.name_of(p.validator_address()),
                    ep.src_address.clone(),
                )?;
                same("proposal height", p.height(), height(ep.height)?)?;
                same("proposal round", p.round().as_i64(), ep.round)?;
                same(
                    "proposed value",
                    self.values.name_of(p.value()),
                    ep.proposal.clone(),
                )?;
                same("proposal POL round", p.pol_round().as_i64(), ep.valid_round)
            }
            (Some(SmOutput::Vote(v)), MOutput::Vote(ev)) => {
                same("vote chain", &v.vote().chain_id, &chain())?;
                same(
                    "voter",
                    self.vals.name_of(v.validator_address()),
                    ev.src_address.clone(),
                )?;
                same("vote type", v.vote_type(), vote_type(ev.vote_type))?;
                same("vote height", v.height(), height(ev.height)?)?;
                same("vote round", v.round().as_i64(), ev.round)?;
                same("vote value", v.value(), &value_id(&ev.value_id))
            }
            // The spec's decision round is the round of the commit (the proposal's round);
            // Malachite's `Decision(round, proposal)` carries the round the state machine is
            // at, and the proposal carries the round of the commit.
            (Some(SmOutput::Decision(_, p)), MOutput::Decided(er, ev)) => {
                same("decision round", p.round().as_i64(), *er)?;
                same("decided value", self.values.name_of(p.value()), ev.clone())
            }
            (actual, expected) => Err(format!(
                "output: implementation has {actual:?}, spec has {expected:?}"
            )),
        }
    }
}

fn round_value(r: i64, v: &MValue) -> Result<Option<RoundValue<BlockId>>, String> {
    match (r, value_id(v)) {
        (-1, NilOrVal::Nil) => Ok(None),
        (r, NilOrVal::Val(b)) if r >= 0 => Ok(Some(RoundValue::new(b, round(r)?))),
        (r, v) => Err(format!("spec state pairs round {r} with value {v:?}")),
    }
}

/// Compares our state with the spec's. `skipped_to`: the round of the spec's last
/// `SkipRoundOutput` while it is still `Unstarted` (see the module docs).
fn check_state(
    actual: &SmState<GmContext>,
    expected: &MConsensusState,
    skipped_to: Option<i64>,
    decided: &Option<RoundValue<BlockId>>,
) -> Result<(), String> {
    same("decision", &actual.decision, decided)?;
    same("height", actual.height, height(expected.height)?)?;
    let (step, r) = match expected.step {
        MStep::None => (Step::Unstarted, expected.round),
        MStep::Unstarted => (Step::Unstarted, skipped_to.unwrap_or(expected.round)),
        MStep::Propose => (Step::Propose, expected.round),
        MStep::Prevote => (Step::Prevote, expected.round),
        MStep::Precommit => (Step::Precommit, expected.round),
        MStep::Commit => (Step::Commit, expected.round),
    };
    same("step", actual.step, step)?;
    same("round", actual.round.as_i64(), r)?;
    same(
        "locked",
        &actual.locked,
        &round_value(expected.locked_round, &expected.locked_value)?,
    )?;
    same(
        "valid",
        &actual.valid,
        &round_value(expected.valid_round, &expected.valid_value)?,
    )
}

/// What the replay does with one of the spec's inputs.
enum Delivery {
    /// Hand it to Malachite's state machine.
    Apply(Round, Address, Box<SmInput<GmContext>>),
    /// The host never hands it to the state machine; the spec must reject it.
    Dropped(&'static str),
    /// Malachite has no counterpart: the trace is replayed up to here.
    Inexpressible(&'static str),
}

fn replay_state_machine(states: &[SmStep]) -> Result<Replayed, String> {
    let init = &states[0].state;
    let mut names: BTreeSet<String> = states.iter().map(|s| s.state.p.clone()).collect();
    names.insert(OTHER.to_string());
    let mut replay = SmReplay {
        ctx: GmContext::new(chain()),
        vals: Validators::new(&names),
        values: Values::default(),
    };
    same("initial step", init.step, MStep::None)?;
    same("initial round", init.round, -1)?;
    let mut actual = SmState::<GmContext>::new(height(init.height)?, Round::Nil);
    check_state(&actual, init, None, &None).map_err(|e| format!("initial state: {e}"))?;

    let mut skipped_to = None;
    let mut decided = None;
    let mut replayed = Replayed::default();
    for (i, st) in states.iter().enumerate().skip(1) {
        let at = |e: String| format!("step {i} ({:?}): {e}", st.input);
        for v in match &st.input {
            MInput::Proposal(_, v)
            | MInput::ProposalAndPolkaPreviousAndValid(v, _)
            | MInput::ProposalAndPolkaAndValid(v)
            | MInput::ProposalAndPolkaAndInvalid(v) => vec![v.clone()],
            MInput::ProposeValue(v) | MInput::ProposalAndCommitAndValid(_, v) => {
                vec![MValue::Val(v.clone())]
            }
            _ => vec![],
        } {
            replay.values.note(&v);
        }
        let me = replay.vals.address(&st.state.p).map_err(at)?;
        let before = actual.clone();
        match replay.input(&actual, &st.input, me).map_err(at)? {
            Delivery::Inexpressible(why) => {
                replayed.cut_short = Some(format!("step {i}: {why}"));
                return Ok(replayed);
            }
            Delivery::Dropped(why) => {
                let MOutput::Error(_) = &st.output else {
                    return Err(at(format!(
                        "the spec accepts an input that never reaches the state machine \
                         ({why}): {:?}",
                        st.output
                    )));
                };
                replayed.dropped += 1;
            }
            Delivery::Apply(input_round, proposer, input) => {
                let info = Info::new(input_round, &me, &proposer);
                let transition = actual.apply(&replay.ctx, &info, *input);
                actual = transition.next_state;
                if let MOutput::Error(reason) = &st.output {
                    let rejected = same("state after a rejected input", &actual, &before)
                        .and_then(|()| same("transition validity", transition.valid, false));
                    rejected.map_err(|e| at(format!("{e} (the spec rejects it: {reason})")))?;
                }
                replay
                    .check_output(transition.output.as_ref(), &st.output)
                    .map_err(at)?;
                replayed.applied += 1;
            }
        }
        skipped_to = match (&st.output, st.state.step) {
            (MOutput::SkipRound(r), _) => Some(*r),
            (_, MStep::Unstarted) => skipped_to,
            _ => None,
        };
        if let MOutput::Decided(r, v) = &st.output {
            decided = Some(RoundValue::new(block(v), round(*r).map_err(at)?));
        }
        check_state(&actual, &st.state, skipped_to, &decided).map_err(at)?;
    }
    Ok(replayed)
}

#[test]
fn state_machine_traces_replay_on_our_context() {
    let r = replay_all::<SmStep>("consensus", replay_state_machine);
    assert_eq!(
        r.traces, 2,
        "the state machine set has 2 traces (tests/itf/README.md)"
    );
    assert_eq!(r.cut_short, 0, "every scenario trace replays to its end");
}

/// The mapping is injective on the names the traces use (distinct keys, ids and blocks).
#[test]
fn name_mapping_is_injective() {
    let names = ["alice", "bob", "john", "v1", OTHER];
    let v = Validators::new(
        names
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter(),
    );
    let ids: HashSet<Address> = names.iter().map(|n| v.address(n).unwrap()).collect();
    assert_eq!(ids.len(), names.len());
    let blocks: HashSet<BlockId> = ["v1", "v2", "v3", "A", "B", "C", "block", "nextBlock"]
        .iter()
        .map(|n| block(n))
        .collect();
    assert_eq!(blocks.len(), 8);
}
