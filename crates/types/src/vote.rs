//! Consensus values (docs/formats.md §7): validator sets, proposals, votes and commit
//! certificates, with the exact bytes each validator signs.
//!
//! Every signed message starts with its own domain tag and names the chain, the height, the
//! round and (for votes) the kind, so a signature for one of them is worthless for any other:
//! a prevote is not a precommit, a vote at round 0 is not one at round 1, and nothing signed
//! for one chain verifies on another. Signatures are SM2 with the default user ID over those
//! bytes; the key is the validator's, normally inside its HSM.
//!
//! What it refuses to do: decide who is the proposer, count votes towards anything but a
//! certificate, or read a clock. Consensus (crates/consensus) does that.

use crate::codec::{Decode, DecodeError, DecodeReason, Encode, Limits, Reader, Writer, tag};
use crate::error::TxError;
use crate::primitives::{BlockHash, ChainId, Height, MAX_CHAIN_ID_LEN, crypto_field};
use crate::tx::MAX_SIGNATURE_DER_LEN;
use crypto::{Digest, PublicKey, Signature, Signer, UserId};
use crypto_sm::sm3::sm3_parts;

/// The domain tag in front of a vote's encoding in the message a validator signs.
pub const VOTE_DOMAIN: &[u8] = b"GMCHAIN-VOTE-V1\0";
/// The domain tag in front of a proposal's encoding in the message a proposer signs.
pub const PROPOSAL_DOMAIN: &[u8] = b"GMCHAIN-PROPOSAL-V1\0";
/// The domain tag of a validator set's hash.
pub const VALIDATOR_SET_DOMAIN: &[u8] = b"GMCHAIN-VALIDATORS-V1\0";
/// The domain tag of a commit certificate's hash (the next header's `last_commit`).
pub const CERTIFICATE_DOMAIN: &[u8] = b"GMCHAIN-CERTIFICATE-V1\0";

/// Consensus signatures (votes and proposals) remembered as verified in this process.
const VERIFIED_CAPACITY: usize = 1 << 14;

/// The consensus signatures this process verified, by SM3(public key ‖ signature ‖ signed
/// bytes): a vote is checked on arrival, by consensus, at the decision and in each commit
/// certificate that carries it (and the certificate again at commit), which was four SM2
/// verifications of one signature. Only a verification that succeeded is remembered, and the
/// digest binds the key, the signature and every signed byte, so a change to any of them
/// verifies afresh. Oldest forgotten first.
struct Verified {
    set: std::collections::HashSet<Digest>,
    order: std::collections::VecDeque<Digest>,
}

static VERIFIED: std::sync::Mutex<Option<Verified>> = std::sync::Mutex::new(None);

/// Verifies an SM2 signature (default user ID) of a validator over consensus `bytes`, once
/// per process for each (key, signature, bytes).
pub fn verify_consensus_signature(
    public_key: &PublicKey,
    bytes: &[u8],
    signature: &Signature,
) -> Result<(), crypto::CryptoError> {
    let key = sm3_parts(&[public_key.as_bytes(), &signature.to_raw(), bytes]);
    let known = |g: &Option<Verified>| g.as_ref().is_some_and(|v| v.set.contains(&key));
    if known(&VERIFIED.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(());
    }
    crypto_sm::sm2::verify(public_key, &UserId::default(), bytes, signature)?;
    let mut g = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    let v = g.get_or_insert_with(|| Verified {
        set: Default::default(),
        order: Default::default(),
    });
    if v.set.insert(key) {
        v.order.push_back(key);
        if v.order.len() > VERIFIED_CAPACITY
            && let Some(old) = v.order.pop_front()
        {
            v.set.remove(&old);
        }
    }
    Ok(())
}

/// The most validators in one set.
pub const MAX_VALIDATORS: usize = 256;

/// A round of consensus at one height; the first is 0.
pub type Round = u32;

/// The two kinds of vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteKind {
    /// The first vote of a round.
    Prevote,
    /// The vote that commits: 2f+1 precommits for one block decide it.
    Precommit,
}

impl VoteKind {
    fn tag(self) -> u8 {
        match self {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        }
    }

    fn from_tag(field: &'static str, t: u8) -> Result<Self, DecodeError> {
        match t {
            1 => Ok(VoteKind::Prevote),
            2 => Ok(VoteKind::Precommit),
            got => Err(DecodeError::new(
                field,
                DecodeReason::UnknownVariant { got },
            )),
        }
    }
}

/// One member of a validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorEntry {
    /// SM3 of the validator's certificate (DER): its identity in votes and headers.
    pub id: Digest,
    /// The certificate's public key (validated when the set is built).
    pub public_key: PublicKey,
    /// Voting power, at least 1.
    pub power: u64,
}

/// The validators of one height, ordered by id, with distinct ids and powers of at least 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<ValidatorEntry>,
    total: u64,
}

/// Why a validator set cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validator.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// Too many validators.
    #[error("{count} validators exceed the limit of {max}")]
    TooMany {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One id twice.
    #[error("validator {id} appears twice")]
    Duplicate {
        /// The id.
        id: Digest,
    },
    /// A power of 0, or powers whose sum overflows.
    #[error("validator {id} has power {power}: powers are at least 1 and sum to at most 2^62")]
    BadPower {
        /// The id.
        id: Digest,
        /// Its power.
        power: u64,
    },
}

/// The largest total voting power (so that 2 × total + 1 never overflows).
const MAX_TOTAL_POWER: u64 = 1 << 62;

impl ValidatorSet {
    /// Builds a set from `validators` in any order, sorting them by id.
    pub fn new(mut validators: Vec<ValidatorEntry>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
                max: MAX_VALIDATORS,
            });
        }
        validators.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if i > 0 && validators[i - 1].id == v.id {
                return Err(ValidatorSetError::Duplicate { id: v.id });
            }
            total = total
                .checked_add(v.power)
                .filter(|t| v.power >= 1 && *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::BadPower {
                    id: v.id,
                    power: v.power,
                })?;
        }
        Ok(Self { validators, total })
    }

    /// The validators, ordered by id.
    pub fn validators(&self) -> &[ValidatorEntry] {
        &self.validators
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true (a set has at least one validator); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The sum of the powers.
    pub fn total_power(&self) -> u64 {
        self.total
    }

    /// The least power that is more than two thirds of the total: a quorum (2f+1 of 3f+1
    /// equal validators).
    pub fn quorum(&self) -> u64 {
        self.total * 2 / 3 + 1
    }

    /// The least power that is more than one third of the total (f+1): at least one honest
    /// validator among them.
    pub fn honest_threshold(&self) -> u64 {
        self.total / 3 + 1
    }

    /// The validator with `id`, and its index.
    pub fn get(&self, id: &Digest) -> Option<(usize, &ValidatorEntry)> {
        self.validators
            .binary_search_by(|v| v.id.as_bytes().cmp(id.as_bytes()))
            .ok()
            .map(|i| (i, &self.validators[i]))
    }

    /// SM3(`VALIDATOR_SET_DOMAIN` ‖ encoding): what a v2 header commits to.
    pub fn hash(&self) -> Digest {
        sm3_parts(&[VALIDATOR_SET_DOMAIN, &self.to_bytes()])
    }
}

impl Encode for ValidatorSet {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::VALIDATOR_SET);
        w.len(self.validators.len());
        for v in &self.validators {
            w.fixed(v.id.as_bytes());
            w.fixed(v.public_key.as_bytes());
            w.u64(v.power);
        }
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, DecodeError> {
        r.header("validators.header", tag::VALIDATOR_SET)?;
        let n = r.len("validators.count", MAX_VALIDATORS)?;
        let mut validators = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Digest(r.array("validators[].id")?);
            let key: [u8; 65] = r.array("validators[].public_key")?;
            let public_key = PublicKey::from_uncompressed(&key)
                .map_err(|e| crypto_field("validators[].public_key", e))?;
            let power = r.u64("validators[].power")?;
            validators.push(ValidatorEntry {
                id,
                public_key,
                power,
            });
        }
        let set = ValidatorSet::new(validators.clone()).map_err(|_| {
            DecodeError::new(
                "validators",
                DecodeReason::InvalidText {
                    expected: "distinct ids in ascending order with powers of at least 1",
                },
            )
        })?;
        // Canonical: already in order.
        if set.validators != validators {
            return Err(DecodeError::new(
                "validators",
                DecodeReason::InvalidText {
                    expected: "ids in ascending order",
                },
            ));
        }
        Ok(set)
    }
}

/// A vote: for a block (`Some`) or for nothing (`None`, "nil") at one height and round.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The chain.
    pub chain_id: ChainId,
    /// The height being decided.
    pub height: Height,
    /// The round at that height.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for, or `None` for nil.
    pub block: Option<BlockHash>,
    /// The voter's id (SM3 of its certificate).
    pub validator: Digest,
}

impl Vote {
    /// The message the validator signs: `VOTE_DOMAIN` ‖ the vote's encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut m = VOTE_DOMAIN.to_vec();
        m.extend_from_slice(&self.to_bytes());
        m
    }

    /// Signs the vote (the signer must hold the key of `self.validator`).
    pub fn sign(self, signer: &dyn Signer) -> Result<SignedVote, crypto::CryptoError> {
        let signature = signer.sign(&UserId::default(), &self.signing_bytes())?;
        Ok(SignedVote {
            vote: self,
            signature,
        })
    }
}

fn write_block(w: &mut Writer, block: &Option<BlockHash>) {
    match block {
        None => w.u8(0),
        Some(h) => {
            w.u8(1);
            w.fixed(h.as_bytes());
        }
    }
}

fn read_block(r: &mut Reader<'_>, field: &'static str) -> Result<Option<BlockHash>, DecodeError> {
    match r.u8(field)? {
        0 => Ok(None),
        1 => Ok(Some(BlockHash(Digest(r.array(field)?)))),
        got => Err(DecodeError::new(
            field,
            DecodeReason::UnknownVariant { got },
        )),
    }
}

fn read_signature(r: &mut Reader<'_>, field: &'static str) -> Result<Signature, DecodeError> {
    let der = r.bytes(field, MAX_SIGNATURE_DER_LEN)?;
    let signature = Signature::from_der(der).map_err(|e| crypto_field(field, e))?;
    if signature.to_der() != der {
        return Err(DecodeError::new(
            field,
            DecodeReason::InvalidText {
                expected: "strict DER SM2Signature",
            },
        ));
    }
    Ok(signature)
}

impl Encode for Vote {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::VOTE);
        w.bytes(self.chain_id.as_str().as_bytes());
        w.u64(self.height.0);
        w.u32(self.round);
        w.u8(self.kind.tag());
        write_block(w, &self.block);
        w.fixed(self.validator.as_bytes());
    }
}

impl Decode for Vote {
    fn decode_from(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, DecodeError> {
        r.header("vote.header", tag::VOTE)?;
        let chain_id =
            ChainId::parse("vote.chain_id", r.bytes("vote.chain_id", MAX_CHAIN_ID_LEN)?)?;
        Ok(Vote {
            chain_id,
            height: Height(r.u64("vote.height")?),
            round: r.u32("vote.round")?,
            kind: VoteKind::from_tag("vote.kind", r.u8("vote.kind")?)?,
            block: read_block(r, "vote.block")?,
            validator: Digest(r.array("vote.validator")?),
        })
    }
}

/// A vote with its signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// SM2 (default user ID) over [`Vote::signing_bytes`].
    pub signature: Signature,
}

impl SignedVote {
    /// Verifies the signature with the voter's key.
    pub fn verify(&self, public_key: &PublicKey) -> Result<(), TxError> {
        verify_consensus_signature(public_key, &self.vote.signing_bytes(), &self.signature)
            .map_err(TxError::SignatureInvalid)
    }
}

impl Encode for SignedVote {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::SIGNED_VOTE);
        self.vote.encode_to(w);
        w.bytes(&self.signature.to_der());
    }
}

impl Decode for SignedVote {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("signed_vote.header", tag::SIGNED_VOTE)?;
        Ok(SignedVote {
            vote: Vote::decode_from(r, limits)?,
            signature: read_signature(r, "signed_vote.signature")?,
        })
    }
}

/// A proposer's statement that `block` is its proposal for `height` and `round`. `pol_round`
/// is the round of the proof of lock it re-proposes a block under (Tendermint's validRound),
/// `None` for a fresh block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// The chain.
    pub chain_id: ChainId,
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The proposed block's hash.
    pub block: BlockHash,
    /// The proof-of-lock round, if any.
    pub pol_round: Option<Round>,
    /// The proposer's id.
    pub proposer: Digest,
}

impl Proposal {
    /// The message the proposer signs: `PROPOSAL_DOMAIN` ‖ the proposal's encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut m = PROPOSAL_DOMAIN.to_vec();
        m.extend_from_slice(&self.to_bytes());
        m
    }

    /// Signs the proposal.
    pub fn sign(self, signer: &dyn Signer) -> Result<SignedProposal, crypto::CryptoError> {
        let signature = signer.sign(&UserId::default(), &self.signing_bytes())?;
        Ok(SignedProposal {
            proposal: self,
            signature,
        })
    }
}

impl Encode for Proposal {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::PROPOSAL);
        w.bytes(self.chain_id.as_str().as_bytes());
        w.u64(self.height.0);
        w.u32(self.round);
        w.fixed(self.block.as_bytes());
        match self.pol_round {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                w.u32(r);
            }
        }
        w.fixed(self.proposer.as_bytes());
    }
}

impl Decode for Proposal {
    fn decode_from(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, DecodeError> {
        r.header("proposal.header", tag::PROPOSAL)?;
        let chain_id = ChainId::parse(
            "proposal.chain_id",
            r.bytes("proposal.chain_id", MAX_CHAIN_ID_LEN)?,
        )?;
        let height = Height(r.u64("proposal.height")?);
        let round = r.u32("proposal.round")?;
        let block = BlockHash(Digest(r.array("proposal.block")?));
        let pol_round = match r.u8("proposal.pol_round")? {
            0 => None,
            1 => Some(r.u32("proposal.pol_round")?),
            got => {
                return Err(DecodeError::new(
                    "proposal.pol_round",
                    DecodeReason::UnknownVariant { got },
                ));
            }
        };
        Ok(Proposal {
            chain_id,
            height,
            round,
            block,
            pol_round,
            proposer: Digest(r.array("proposal.proposer")?),
        })
    }
}

/// A proposal with its signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// SM2 (default user ID) over [`Proposal::signing_bytes`].
    pub signature: Signature,
}

impl SignedProposal {
    /// Verifies the signature with the proposer's key.
    pub fn verify(&self, public_key: &PublicKey) -> Result<(), TxError> {
        verify_consensus_signature(public_key, &self.proposal.signing_bytes(), &self.signature)
            .map_err(TxError::SignatureInvalid)
    }
}

impl Encode for SignedProposal {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::SIGNED_PROPOSAL);
        self.proposal.encode_to(w);
        w.bytes(&self.signature.to_der());
    }
}

impl Decode for SignedProposal {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("signed_proposal.header", tag::SIGNED_PROPOSAL)?;
        Ok(SignedProposal {
            proposal: Proposal::decode_from(r, limits)?,
            signature: read_signature(r, "signed_proposal.signature")?,
        })
    }
}

/// Proof that a block was decided: precommits for it, at one round, from validators holding
/// more than two thirds of the power of the height's validator set. Each signature is over
/// the [`Vote`] it stands for (`Precommit`, this height, round and block, the signer's id), so
/// the certificate carries only the signers and their signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCertificate {
    /// The decided height.
    pub height: Height,
    /// The round the precommits were cast in.
    pub round: Round,
    /// The decided block.
    pub block: BlockHash,
    /// The signers (validator ids, ascending) and their precommit signatures.
    pub signatures: Vec<(Digest, Signature)>,
}

/// Why a certificate does not prove a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// For another block or height than the one asked about.
    #[error(
        "the certificate is for block {got} at height {got_height}, not {expected} at height {expected_height}"
    )]
    WrongBlock {
        /// What it certifies.
        got: BlockHash,
        /// Its height.
        got_height: Height,
        /// What it should certify.
        expected: BlockHash,
        /// That height.
        expected_height: Height,
    },
    /// A signer not in the set.
    #[error("signer {id} is not a validator of height {height}")]
    UnknownSigner {
        /// The signer.
        id: Digest,
        /// The height.
        height: Height,
    },
    /// Signers out of order or repeated.
    #[error("signers are not in strictly ascending order (signer {id} repeated or misplaced)")]
    Unordered {
        /// The signer found out of order.
        id: Digest,
    },
    /// A bad signature.
    #[error("the precommit signature of validator {id} does not verify")]
    BadSignature {
        /// The signer.
        id: Digest,
    },
    /// Not enough power.
    #[error("signers hold power {power}, short of the quorum {quorum} of {total}")]
    NoQuorum {
        /// The power that signed.
        power: u64,
        /// The quorum.
        quorum: u64,
        /// The total.
        total: u64,
    },
}

impl CommitCertificate {
    /// The precommit a signer of this certificate signed.
    pub fn vote_of(&self, chain_id: &ChainId, validator: Digest) -> Vote {
        Vote {
            chain_id: chain_id.clone(),
            height: self.height,
            round: self.round,
            kind: VoteKind::Precommit,
            block: Some(self.block),
            validator,
        }
    }

    /// Builds a certificate from signed precommits for one block (their order does not
    /// matter; the caller counted them). Votes for anything else are ignored.
    pub fn from_votes<'a>(
        height: Height,
        round: Round,
        block: BlockHash,
        votes: impl IntoIterator<Item = &'a SignedVote>,
    ) -> Self {
        let mut signatures: Vec<(Digest, Signature)> = votes
            .into_iter()
            .filter(|v| {
                v.vote.kind == VoteKind::Precommit
                    && v.vote.height == height
                    && v.vote.round == round
                    && v.vote.block == Some(block)
            })
            .map(|v| (v.vote.validator, v.signature))
            .collect();
        signatures.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        signatures.dedup_by(|a, b| a.0 == b.0);
        Self {
            height,
            round,
            block,
            signatures,
        }
    }

    /// Checks that the certificate decides `block` at `height` on `chain_id` under `set`:
    /// known, ordered, distinct signers whose precommit signatures verify and whose power is
    /// a quorum.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        height: Height,
        block: &BlockHash,
        set: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.height != height || self.block != *block {
            return Err(CertificateError::WrongBlock {
                got: self.block,
                got_height: self.height,
                expected: *block,
                expected_height: height,
            });
        }
        let mut power: u64 = 0;
        let mut last: Option<&Digest> = None;
        for (id, signature) in &self.signatures {
            if last.is_some_and(|l| l.as_bytes() >= id.as_bytes()) {
                return Err(CertificateError::Unordered { id: *id });
            }
            last = Some(id);
            let (_, v) = set.get(id).ok_or(CertificateError::UnknownSigner {
                id: *id,
                height: self.height,
            })?;
            let vote = SignedVote {
                vote: self.vote_of(chain_id, *id),
                signature: *signature,
            };
            vote.verify(&v.public_key)
                .map_err(|_| CertificateError::BadSignature { id: *id })?;
            power = power.saturating_add(v.power);
        }
        if power < set.quorum() {
            return Err(CertificateError::NoQuorum {
                power,
                quorum: set.quorum(),
                total: set.total_power(),
            });
        }
        Ok(())
    }

    /// SM3(`CERTIFICATE_DOMAIN` ‖ encoding): what the next v2 header's `last_commit` holds.
    pub fn hash(&self) -> Digest {
        sm3_parts(&[CERTIFICATE_DOMAIN, &self.to_bytes()])
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::COMMIT_CERTIFICATE);
        w.u64(self.height.0);
        w.u32(self.round);
        w.fixed(self.block.as_bytes());
        w.len(self.signatures.len());
        for (id, sig) in &self.signatures {
            w.fixed(id.as_bytes());
            w.bytes(&sig.to_der());
        }
    }
}

impl Decode for CommitCertificate {
    fn decode_from(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, DecodeError> {
        r.header("certificate.header", tag::COMMIT_CERTIFICATE)?;
        let height = Height(r.u64("certificate.height")?);
        let round = r.u32("certificate.round")?;
        let block = BlockHash(Digest(r.array("certificate.block")?));
        let n = r.len("certificate.signatures", MAX_VALIDATORS)?;
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Digest(r.array("certificate.signatures[].validator")?);
            let sig = read_signature(r, "certificate.signatures[].signature")?;
            signatures.push((id, sig));
        }
        Ok(Self {
            height,
            round,
            block,
            signatures,
        })
    }
}
