//! Liveness certificates: signed votes of one round carried together, so that a validator
//! that saw a quorum can hand the proof to one that did not (an equivocator may have sent
//! each of them a different vote). Malachite emits them as `LivenessMsg`; this is their wire
//! form.
//!
//! Encoding (format version 1): `version ‖ kind ‖ [block] ‖ height ‖ round ‖ count ‖
//! (length ‖ SignedVote)*`, every integer big-endian, the votes in strictly ascending order
//! of validator id (one encoding per set of votes: a relay cannot mint fresh copies of one
//! certificate by reordering it), decoded under explicit limits with no trailing bytes.

use std::collections::BTreeSet;

use crypto::Digest;
use types::codec::{Reader, Writer};
use types::{
    BlockHash, CertificateError, ChainId, Decode, DecodeError, DecodeReason, Encode, Height,
    Limits, MAX_VALIDATORS, SignedVote, ValidatorSet, VoteKind,
};

/// The format version of [`LivenessCertificate::to_bytes`].
pub const CERTIFICATE_VERSION: u8 = 1;

/// Largest encoded signed vote inside a certificate.
const MAX_VOTE_BYTES: usize = 512;

/// What a liveness certificate proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// 2f+1 prevotes for `block` (a polka, Tendermint's proof of lock, L28/L36).
    Polka {
        /// The block.
        block: BlockHash,
    },
    /// 2f+1 precommits for anything (Tendermint L47: start the precommit timeout).
    PrecommitAny,
    /// f+1 votes of a higher round (Tendermint L55: skip to that round).
    Skip,
}

/// Votes of one height and round that together prove a [`CertificateKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessCertificate {
    /// What it proves.
    pub kind: CertificateKind,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: u32,
    /// The votes, one per validator.
    pub votes: Vec<SignedVote>,
}

impl LivenessCertificate {
    /// Checks that the votes are of `chain_id`, this height and round, of the kind's type,
    /// from distinct validators of `set`, correctly signed, and hold the kind's threshold
    /// (2f+1 of the power for Polka and PrecommitAny, f+1 for Skip).
    pub fn verify(&self, chain_id: &ChainId, set: &ValidatorSet) -> Result<(), CertificateError> {
        let mut seen = BTreeSet::new();
        let mut power: u64 = 0;
        for sv in &self.votes {
            let v = &sv.vote;
            let fits = match self.kind {
                CertificateKind::Polka { block } => {
                    v.kind == VoteKind::Prevote && v.block == Some(block)
                }
                CertificateKind::PrecommitAny => v.kind == VoteKind::Precommit,
                CertificateKind::Skip => true,
            };
            if !fits || v.chain_id != *chain_id || v.height != self.height || v.round != self.round
            {
                return Err(CertificateError::BadSignature { id: v.validator });
            }
            if !seen.insert(v.validator) {
                return Err(CertificateError::Unordered { id: v.validator });
            }
            let (_, entry) = set
                .get(&v.validator)
                .ok_or(CertificateError::UnknownSigner {
                    id: v.validator,
                    height: self.height,
                })?;
            sv.verify(&entry.public_key)
                .map_err(|_| CertificateError::BadSignature { id: v.validator })?;
            power = power.saturating_add(entry.power);
        }
        let needed = match self.kind {
            CertificateKind::Skip => set.honest_threshold(),
            _ => set.quorum(),
        };
        if power < needed {
            return Err(CertificateError::NoQuorum {
                power,
                quorum: needed,
                total: set.total_power(),
            });
        }
        Ok(())
    }

    /// The validators whose votes it carries.
    pub fn signers(&self) -> Vec<Digest> {
        self.votes.iter().map(|v| v.vote.validator).collect()
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CERTIFICATE_VERSION);
        match self.kind {
            CertificateKind::Polka { block } => {
                w.u8(1);
                w.fixed(block.as_bytes());
            }
            CertificateKind::PrecommitAny => w.u8(2),
            CertificateKind::Skip => w.u8(3),
        }
        w.u64(self.height.0);
        w.u32(self.round);
        // One encoding per set of votes: ordered by validator (a relay cannot make fresh
        // copies of one certificate by reordering it).
        let mut votes: Vec<&SignedVote> = self.votes.iter().collect();
        votes.sort_by_key(|v| v.vote.validator.0);
        w.len(votes.len());
        for v in votes {
            w.bytes(&v.to_bytes());
        }
        w.into_bytes()
    }

    /// Decodes exactly `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("liveness.version")?;
        if version != CERTIFICATE_VERSION {
            return Err(DecodeError::new(
                "liveness.version",
                DecodeReason::UnknownVariant { got: version },
            ));
        }
        let kind = match r.u8("liveness.kind")? {
            1 => CertificateKind::Polka {
                block: BlockHash(Digest(r.array("liveness.block")?)),
            },
            2 => CertificateKind::PrecommitAny,
            3 => CertificateKind::Skip,
            got => {
                return Err(DecodeError::new(
                    "liveness.kind",
                    DecodeReason::UnknownVariant { got },
                ));
            }
        };
        let height = Height(r.u64("liveness.height")?);
        let round = r.u32("liveness.round")?;
        let n = r.len("liveness.votes", MAX_VALIDATORS)?;
        let limits = Limits::default();
        let mut votes: Vec<SignedVote> = Vec::with_capacity(n);
        for _ in 0..n {
            let b = r.bytes("liveness.votes[]", MAX_VOTE_BYTES)?;
            let v = SignedVote::from_bytes(b, &limits)?;
            if votes
                .last()
                .is_some_and(|last| last.vote.validator.0 >= v.vote.validator.0)
            {
                return Err(DecodeError::new(
                    "liveness.votes[]",
                    DecodeReason::NotCanonical {
                        expected: "votes in ascending order of validator, each validator once",
                    },
                ));
            }
            votes.push(v);
        }
        r.finish()?;
        Ok(Self {
            kind,
            height,
            round,
            votes,
        })
    }
}
