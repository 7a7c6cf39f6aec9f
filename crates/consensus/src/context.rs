//! Our [`Context`](mc::Context) for Malachite: heights, addresses, values, votes and proposals
//! are thin wrappers around the wire types of `types::vote`, so what Malachite counts is exactly
//! what validators sign.

use core::fmt;
use core::time::Duration;

use crypto::{Digest, PublicKey, Signature};
use malachitebft_core_types as mc;
use mc::{NilOrVal, Round, VoteType};
use types::{BlockHash, ChainId, Height, Proposal, Vote, VoteKind};

/// The consensus context: which chain the votes are for.
#[derive(Clone, Debug)]
pub struct GmContext {
    chain_id: ChainId,
}

impl GmContext {
    /// A context for `chain_id`.
    pub fn new(chain_id: ChainId) -> Self {
        Self { chain_id }
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
}

/// A validator's address: the SM3 of its certificate (`ValidatorEntry::id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub Digest);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0.as_bytes()[..8]))
    }
}

impl mc::Address for Address {}

/// A height as Malachite sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CHeight(pub Height);

impl fmt::Display for CHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.0)
    }
}

impl mc::Height for CHeight {
    const ZERO: Self = CHeight(Height(0));
    // Height 0 is genesis; consensus decides heights from 1.
    const INITIAL: Self = CHeight(Height(1));

    fn increment_by(&self, n: u64) -> Self {
        CHeight(Height(self.0.0.saturating_add(n)))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.0.checked_sub(n).map(|h| CHeight(Height(h)))
    }

    fn as_u64(&self) -> u64 {
        self.0.0
    }
}

/// The value consensus decides: a block, named by its hash (the block travels beside the
/// proposal; see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub BlockHash);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0.as_bytes()[..8]))
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// Converts a Malachite round (never nil where we call it) to ours.
pub(crate) fn round_u32(r: Round) -> u32 {
    r.as_u32().unwrap_or(0)
}

fn pol_to_round(p: Option<u32>) -> Round {
    p.map_or(Round::Nil, Round::new)
}

/// A vote as Malachite handles it: our wire [`Vote`] plus its value in Malachite's form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CVote {
    vote: Vote,
    value: NilOrVal<BlockId>,
    address: Address,
}

impl CVote {
    /// Wraps a wire vote.
    pub fn new(vote: Vote) -> Self {
        let value = match vote.block {
            None => NilOrVal::Nil,
            Some(b) => NilOrVal::Val(BlockId(b)),
        };
        let address = Address(vote.validator);
        Self {
            vote,
            value,
            address,
        }
    }

    /// The wire vote.
    pub fn vote(&self) -> &Vote {
        &self.vote
    }
}

impl mc::Vote<GmContext> for CVote {
    fn height(&self) -> CHeight {
        CHeight(self.vote.height)
    }
    fn round(&self) -> Round {
        Round::new(self.vote.round)
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        match self.vote.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        }
    }
    fn validator_address(&self) -> &Address {
        &self.address
    }
    // Vote extensions are not used (policy `VoteExtensionPolicy::default()`, none required).
    fn extension(&self) -> Option<&mc::SignedExtension<GmContext>> {
        None
    }
    fn take_extension(&mut self) -> Option<mc::SignedExtension<GmContext>> {
        None
    }
    fn extend(self, _extension: mc::SignedExtension<GmContext>) -> Self {
        self
    }
}

/// A proposal as Malachite handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CProposal {
    proposal: Proposal,
    value: BlockId,
    address: Address,
}

impl CProposal {
    /// Wraps a wire proposal.
    pub fn new(proposal: Proposal) -> Self {
        let value = BlockId(proposal.block);
        let address = Address(proposal.proposer);
        Self {
            proposal,
            value,
            address,
        }
    }

    /// The wire proposal.
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }
}

impl mc::Proposal<GmContext> for CProposal {
    fn height(&self) -> CHeight {
        CHeight(self.proposal.height)
    }
    fn round(&self) -> Round {
        Round::new(self.proposal.round)
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        pol_to_round(self.proposal.pol_round)
    }
    fn validator_address(&self) -> &Address {
        &self.address
    }
}

/// Proposals travel whole (hash in the proposal, block beside it), never in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoParts;

impl mc::ProposalPart<GmContext> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// One validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CValidator {
    address: Address,
    public_key: PublicKey,
    power: u64,
}

impl mc::Validator<GmContext> for CValidator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validators of a height, ordered by id (as `types::ValidatorSet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CValidatorSet {
    set: types::ValidatorSet,
    validators: Vec<CValidator>,
}

impl CValidatorSet {
    /// Wraps a validator set.
    pub fn new(set: types::ValidatorSet) -> Self {
        let validators = set
            .validators()
            .iter()
            .map(|v| CValidator {
                address: Address(v.id),
                public_key: v.public_key,
                power: v.power,
            })
            .collect();
        Self { set, validators }
    }

    /// The wire set.
    pub fn set(&self) -> &types::ValidatorSet {
        &self.set
    }
}

impl mc::ValidatorSet<GmContext> for CValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.set.total_power()
    }
    fn get_by_address(&self, address: &Address) -> Option<&CValidator> {
        self.set.get(&address.0).map(|(i, _)| &self.validators[i])
    }
    fn get_by_index(&self, index: usize) -> Option<&CValidator> {
        self.validators.get(index)
    }
}

/// SM2 with the default user ID (GB/T 32918.2; `types::vote` fixes the signed bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm2Scheme;

/// An SM2 signature with the total order Malachite needs (by r ‖ s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sm2Signature(pub Signature);

impl PartialOrd for Sm2Signature {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sm2Signature {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.to_raw().cmp(&other.0.to_raw())
    }
}

/// Private keys never pass through consensus: the host signs (normally in its HSM).
#[derive(Clone, Copy, Debug)]
pub struct NoPrivateKey;

impl mc::SigningScheme for Sm2Scheme {
    type DecodingError = crypto::CryptoError;
    type Signature = Sm2Signature;
    type PublicKey = PublicKey;
    type PrivateKey = NoPrivateKey;

    /// Accepts the raw 64-byte r ‖ s form or strict DER (GM/T 0009 `SM2Signature`).
    fn decode_signature(bytes: &[u8]) -> Result<Sm2Signature, crypto::CryptoError> {
        if bytes.len() == 64 {
            Signature::from_raw(bytes).map(Sm2Signature)
        } else {
            Signature::from_der(bytes).map(Sm2Signature)
        }
    }
    fn encode_signature(signature: &Sm2Signature) -> Vec<u8> {
        signature.0.to_raw().to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, crypto::CryptoError> {
        PublicKey::from_uncompressed(bytes)
    }
    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.as_bytes().to_vec()
    }
}

/// Round timeouts: `base + round × delta` for each step, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for a proposal, round 0.
    pub propose: Duration,
    /// Waiting for more prevotes after any 2f+1, round 0.
    pub prevote: Duration,
    /// Waiting for more precommits after any 2f+1, round 0.
    pub precommit: Duration,
    /// Added per round to each of the three.
    pub delta: Duration,
    /// Rebroadcast of the last votes while stuck in a round.
    pub rebroadcast: Duration,
    /// No step timeout is longer.
    pub max: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            propose: Duration::from_millis(3000),
            prevote: Duration::from_millis(1000),
            precommit: Duration::from_millis(1000),
            delta: Duration::from_millis(500),
            rebroadcast: Duration::from_millis(2000),
            max: Duration::from_secs(60),
        }
    }
}

impl mc::Timeouts<GmContext> for Timeouts {
    fn duration_for(&self, timeout: mc::Timeout) -> Duration {
        let r = round_u32(timeout.round);
        let base = match timeout.kind {
            mc::TimeoutKind::Propose => self.propose,
            mc::TimeoutKind::Prevote => self.prevote,
            mc::TimeoutKind::Precommit => self.precommit,
            mc::TimeoutKind::Rebroadcast => return self.rebroadcast,
            mc::TimeoutKind::FinalizeHeight(d) => return d,
        };
        base.saturating_add(self.delta.saturating_mul(r))
            .min(self.max)
    }
}

/// Proposer of `(height, round)`: walks the set in id order, each validator holding as many
/// consecutive slots as its power, and takes slot `(height + round) mod total power`. Every
/// node computes the same proposer; over `total` consecutive rounds each validator proposes
/// in proportion to its power.
pub fn proposer_index(set: &types::ValidatorSet, height: Height, round: u32) -> usize {
    let total = set.total_power().max(1);
    let slot = (height.0 % total + u64::from(round) % total) % total;
    let mut acc = 0u64;
    for (i, v) in set.validators().iter().enumerate() {
        acc = acc.saturating_add(v.power);
        if slot < acc {
            return i;
        }
    }
    // Unreachable: the powers sum to `total` > slot.
    set.len().saturating_sub(1)
}

impl mc::Context for GmContext {
    type Address = Address;
    type Height = CHeight;
    type ProposalPart = NoParts;
    type Proposal = CProposal;
    type Validator = CValidator;
    type ValidatorSet = CValidatorSet;
    type Timeouts = Timeouts;
    type Value = BlockId;
    type Vote = CVote;
    type Extension = ();
    type SigningScheme = Sm2Scheme;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a CValidatorSet,
        height: CHeight,
        round: Round,
    ) -> &'a CValidator {
        let i = proposer_index(&validator_set.set, height.0, round_u32(round));
        &validator_set.validators[i]
    }

    fn new_proposal(
        &self,
        height: CHeight,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> CProposal {
        CProposal::new(Proposal {
            chain_id: self.chain_id.clone(),
            height: height.0,
            round: round_u32(round),
            block: value.0,
            pol_round: pol_round.as_u32(),
            proposer: address.0,
        })
    }

    fn new_prevote(
        &self,
        height: CHeight,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> CVote {
        self.vote(height, round, value_id, address, VoteKind::Prevote)
    }

    fn new_precommit(
        &self,
        height: CHeight,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> CVote {
        self.vote(height, round, value_id, address, VoteKind::Precommit)
    }
}

impl GmContext {
    fn vote(
        &self,
        height: CHeight,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
        kind: VoteKind,
    ) -> CVote {
        CVote::new(Vote {
            chain_id: self.chain_id.clone(),
            height: height.0,
            round: round_u32(round),
            kind,
            block: match value_id {
                NilOrVal::Nil => None,
                NilOrVal::Val(b) => Some(b.0),
            },
            validator: address.0,
        })
    }
}
