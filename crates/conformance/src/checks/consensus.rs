//! GM/T 0111 §7.7 and the platform standard's consensus layer (GZ-5.3) without a node: the bytes
//! a validator signs are in their own domains, a commit certificate needs 2f+1 distinct valid
//! precommits of the height's validators, and a validator restarted from its write-ahead log
//! refuses to sign a vote that conflicts with one it may already have signed.
//!
//! What these checks do not show: that a network of validators stays safe and live under
//! faults. That is the consensus crate's deterministic simulation
//! (`crates/consensus/tests/simulation.rs`) and the four-process test (`tests/bft.rs`), run in
//! CI; the simulator is test code, not a library this suite can call, so the clause notes
//! point at those tests instead of repeating them here.

use super::{Check, Evidence, expect_eq};
use consensus::context::{Timeouts, proposer_index};
use consensus::{
    Consensus, ConsensusError, Decision, Equivocation, Host, HostError, Input, LivenessCertificate,
    Params, ProposedBlock, Timeout, WalEntry,
};
use crypto::{Digest, PublicKey, Signature, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::sm3::sm3;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use types::{
    BlockHash, CertificateError, ChainId, CommitCertificate, Height, Proposal, SignedProposal,
    SignedVote, Timestamp, ValidatorEntry, ValidatorSet, Vote, VoteKind,
};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "consensus-vote-domain",
        title: "Votes and proposals are signed over documented bytes in their own SM2 domains: a prevote's signature is not a precommit's, another chain's or round's is not this one's, a proposal's is not a vote's",
        run: vote_domain,
    },
    Check {
        id: "consensus-quorum-certificate",
        title: "A commit certificate verifies only with precommits for that block and height from distinct validators of the set holding more than two thirds of its power, every signature valid",
        run: quorum_certificate,
    },
    Check {
        id: "consensus-engine-votes",
        title: "The consensus engine decides only on 2f+1 validly signed precommits of the height's validators: a vote with a bad signature, from a non-validator, for another chain or a repeated one is not counted",
        run: engine_votes,
    },
    Check {
        id: "consensus-double-sign-guard",
        title: "A validator restarted from its write-ahead log at any step never signs a vote conflicting with one it may have signed, and refuses one its log forbids",
        run: double_sign_guard,
    },
];

const SRC_FORMAT: &str =
    "gmchain-derived: docs/formats.md §3.1 consensus values (format v1), bytes written by hand";
const SRC_PROPERTY: &str = "gmchain-derived: docs/formats.md §3.1 (CommitCertificate) and GM/T 0111 §7.7 as inferred: property of the consensus values";
const SRC_ENGINE: &str = "gmchain-derived: crates/consensus (Consensus::recover and its WAL), driven in-process with SM2 keys";

fn case(source: &str, what: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: what.to_string(),
        source: source.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

/// A case whose success carries a note.
fn noted(source: &str, what: &str, r: Result<String, String>) -> Evidence {
    let pass = r.is_ok();
    Evidence {
        case: what.to_string(),
        source: source.to_string(),
        pass,
        detail: r.unwrap_or_else(|e| e),
    }
}

/// Expects `r` to fail; describes an acceptance.
fn refused<T, E>(what: &str, r: Result<T, E>) -> Result<(), String> {
    match r {
        Ok(_) => Err(format!("{what}: accepted, but must be refused")),
        Err(_) => Ok(()),
    }
}

fn chain() -> Result<ChainId, String> {
    ChainId::new("gmchain-conformance").map_err(|e| e.to_string())
}

fn signer(seed: u8) -> Result<SoftSigner, String> {
    let key = PrivateKey::from_bytes(&[seed; 32]).map_err(|e| e.to_string())?;
    Ok(SoftwareProvider::new(Arc::new(SeededRandom::new(u64::from(seed)))).signer(key))
}

fn sm2_verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), String> {
    crypto_sm::sm2::verify(key, &UserId::default(), msg, sig).map_err(|e| e.to_string())
}

/// The vote of the known-answer case: chain "gmchain-conformance", height 7, round 2, a
/// precommit for block bb…bb by validator aa…aa.
fn fixed_vote() -> Result<Vote, String> {
    Ok(Vote {
        chain_id: chain()?,
        height: Height(7),
        round: 2,
        kind: VoteKind::Precommit,
        block: Some(BlockHash(Digest([0xbb; 32]))),
        validator: Digest([0xaa; 32]),
    })
}

/// Its signing bytes, written from docs/formats.md field by field.
const FIXED_VOTE_SIGNING_BYTES: &str = concat!(
    "474d434841494e2d564f54452d563100",       // "GMCHAIN-VOTE-V1\0"
    "01",                                     // format version 1
    "09",                                     // tag Vote
    "00000013",                               // chain id length 19
    "676d636861696e2d636f6e666f726d616e6365", // "gmchain-conformance"
    "0000000000000007",                       // height 7
    "00000002",                               // round 2
    "02",                                     // kind: precommit
    "01",                                     // a block follows (not nil)
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // validator
);

/// The proposal of the known-answer case: same chain, height and round, block bb…bb re-proposed
/// under a proof of lock from round 1, by proposer aa…aa.
fn fixed_proposal() -> Result<Proposal, String> {
    Ok(Proposal {
        chain_id: chain()?,
        height: Height(7),
        round: 2,
        block: BlockHash(Digest([0xbb; 32])),
        pol_round: Some(1),
        proposer: Digest([0xaa; 32]),
    })
}

const FIXED_PROPOSAL_SIGNING_BYTES: &str = concat!(
    "474d434841494e2d50524f504f53414c2d563100", // "GMCHAIN-PROPOSAL-V1\0"
    "01",                                       // format version 1
    "0b",                                       // tag Proposal
    "00000013",
    "676d636861696e2d636f6e666f726d616e6365",
    "0000000000000007",
    "00000002",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", // block
    "01",                                                               // pol_round follows
    "00000001",                                                         // pol_round 1
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // proposer
);

fn vote_domain() -> Vec<Evidence> {
    let mut out = Vec::new();
    let setup = (|| -> Result<_, String> {
        let vote_kat = hex::decode(FIXED_VOTE_SIGNING_BYTES).map_err(|e| e.to_string())?;
        let prop_kat = hex::decode(FIXED_PROPOSAL_SIGNING_BYTES).map_err(|e| e.to_string())?;
        Ok((
            fixed_vote()?,
            fixed_proposal()?,
            vote_kat,
            prop_kat,
            signer(7)?,
        ))
    })();
    let (vote, proposal, vote_kat, prop_kat, key) = match setup {
        Ok(x) => x,
        Err(e) => return vec![case(SRC_FORMAT, "set up the fixed vote", Err(e))],
    };
    out.push(case(
        SRC_FORMAT,
        "a precommit's signing bytes are \"GMCHAIN-VOTE-V1\\0\" ‖ its documented encoding",
        expect_eq("vote signing bytes", &vote.signing_bytes(), &vote_kat),
    ));
    out.push(case(
        SRC_FORMAT,
        "a proposal's signing bytes are \"GMCHAIN-PROPOSAL-V1\\0\" ‖ its documented encoding",
        expect_eq(
            "proposal signing bytes",
            &proposal.signing_bytes(),
            &prop_kat,
        ),
    ));
    let pk = key.public_key();
    let signed = match vote.clone().sign(&key) {
        Ok(s) => s,
        Err(e) => return vec![case(SRC_FORMAT, "sign the fixed vote", Err(e.to_string()))],
    };
    out.push(case(
        SRC_FORMAT,
        "a vote's SM2 signature (default user ID) verifies over the hand-written bytes, and as a SignedVote",
        sm2_verify(&pk, &vote_kat, &signed.signature)
            .and_then(|()| signed.verify(&pk).map_err(|e| e.to_string())),
    ));
    // Every variant below changes one thing the signature must bind.
    let with = |f: &dyn Fn(&mut Vote)| {
        let mut v = vote.clone();
        f(&mut v);
        SignedVote {
            vote: v,
            signature: signed.signature,
        }
    };
    let variants: Vec<(&str, Result<SignedVote, String>)> = vec![
        (
            "the precommit's signature does not verify as a prevote of the same block",
            Ok(with(&|v| v.kind = VoteKind::Prevote)),
        ),
        (
            "it does not verify on another chain (\"gmchain-other\")",
            ChainId::new("gmchain-other")
                .map_err(|e| e.to_string())
                .map(|c| with(&|v| v.chain_id = c.clone())),
        ),
        (
            "it does not verify at another round (3)",
            Ok(with(&|v| v.round = 3)),
        ),
        (
            "it does not verify at another height (8)",
            Ok(with(&|v| v.height = Height(8))),
        ),
        (
            "it does not verify as a nil precommit",
            Ok(with(&|v| v.block = None)),
        ),
        (
            "it does not verify for another block",
            Ok(with(&|v| v.block = Some(BlockHash(Digest([0xbc; 32]))))),
        ),
    ];
    for (what, sv) in variants {
        out.push(case(
            SRC_FORMAT,
            what,
            sv.and_then(|sv| refused(what, sv.verify(&pk))),
        ));
    }
    // A prevote's signature offered as the precommit of the same block.
    out.push(case(
        SRC_FORMAT,
        "a prevote's signature does not verify as the precommit of the same block",
        (|| {
            let prevote = Vote {
                kind: VoteKind::Prevote,
                ..vote.clone()
            }
            .sign(&key)
            .map_err(|e| e.to_string())?;
            prevote.verify(&pk).map_err(|e| e.to_string())?;
            refused(
                "a prevote signature as a precommit",
                SignedVote {
                    vote: vote.clone(),
                    signature: prevote.signature,
                }
                .verify(&pk),
            )
        })(),
    ));
    out.push(case(
        SRC_FORMAT,
        "a proposal's signature (same chain, height, round, block and signer) does not verify as a vote, nor a vote's as the proposal",
        (|| {
            let sp = proposal.clone().sign(&key).map_err(|e| e.to_string())?;
            sp.verify(&pk).map_err(|e| e.to_string())?;
            refused(
                "a proposal signature as a vote",
                SignedVote {
                    vote: vote.clone(),
                    signature: sp.signature,
                }
                .verify(&pk),
            )?;
            refused(
                "a vote signature as a proposal",
                SignedProposal {
                    proposal: proposal.clone(),
                    signature: signed.signature,
                }
                .verify(&pk),
            )
        })(),
    ));
    out.push(case(
        SRC_FORMAT,
        "a signature over the vote's encoding without the domain tag does not verify as the vote",
        (|| {
            let bare = key
                .sign(&UserId::default(), &vote_kat[16..])
                .map_err(|e| e.to_string())?;
            refused(
                "a signature without the domain",
                SignedVote {
                    vote: vote.clone(),
                    signature: bare,
                }
                .verify(&pk),
            )
        })(),
    ));
    out.push(case(
        SRC_FORMAT,
        "another validator's key does not verify the vote",
        signer(8).and_then(|other| refused("another key", signed.verify(&other.public_key()))),
    ));
    out
}

/// `n` validators of power `powers[i]`, keys from seeds 1..=n, ids SM3 of the public key.
fn validators(powers: &[u64]) -> Result<(Vec<SoftSigner>, ValidatorSet), String> {
    let mut signers = Vec::new();
    let mut entries = Vec::new();
    for (i, power) in powers.iter().enumerate() {
        let s = signer(u8::try_from(i + 1).map_err(|e| e.to_string())?)?;
        let pk = s.public_key();
        entries.push(ValidatorEntry {
            id: sm3(pk.as_bytes()),
            public_key: pk,
            power: *power,
        });
        signers.push(s);
    }
    let set = ValidatorSet::new(entries).map_err(|e| e.to_string())?;
    // The set orders by id; order the signers the same way.
    let mut ordered = Vec::new();
    for v in set.validators() {
        let i = signers
            .iter()
            .position(|s| sm3(s.public_key().as_bytes()) == v.id)
            .ok_or("a signer is missing from its own set")?;
        ordered.push(signers.remove(i));
    }
    Ok((ordered, set))
}

fn precommit(
    chain_id: &ChainId,
    s: &SoftSigner,
    height: u64,
    block: BlockHash,
    kind: VoteKind,
) -> Result<(Digest, Signature), String> {
    let id = sm3(s.public_key().as_bytes());
    let v = Vote {
        chain_id: chain_id.clone(),
        height: Height(height),
        round: 0,
        kind,
        block: Some(block),
        validator: id,
    }
    .sign(s)
    .map_err(|e| e.to_string())?;
    Ok((id, v.signature))
}

/// A certificate at height 5, round 0, built by hand (not by `CommitCertificate::from_votes`)
/// from the given (id, signature) pairs in the given order.
fn cert(block: BlockHash, sigs: Vec<(Digest, Signature)>) -> CommitCertificate {
    CommitCertificate {
        height: Height(5),
        round: 0,
        block,
        signatures: sigs,
    }
}

fn sorted(mut v: Vec<(Digest, Signature)>) -> Vec<(Digest, Signature)> {
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

fn quorum_certificate() -> Vec<Evidence> {
    match quorum_cases() {
        Ok(out) => out,
        Err(e) => vec![case(SRC_PROPERTY, "set up four validators", Err(e))],
    }
}

fn quorum_cases() -> Result<Vec<Evidence>, String> {
    let mut out = Vec::new();
    let chain_id = chain()?;
    let (keys, set) = validators(&[1, 1, 1, 1])?;
    let block = BlockHash(sm3(b"conformance decided block"));
    let other_block = BlockHash(sm3(b"conformance other block"));
    let pre = |i: usize| precommit(&chain_id, &keys[i], 5, block, VoteKind::Precommit);
    let all: Vec<_> = (0..4).map(pre).collect::<Result<_, _>>()?;
    let verify = |c: &CommitCertificate| c.verify(&chain_id, Height(5), &block, &set);
    let expect = |what: &str,
                  c: &CommitCertificate,
                  ok: fn(&CertificateError) -> bool|
     -> Result<(), String> {
        match verify(c) {
            Ok(()) => Err(format!("{what}: accepted, but must be refused")),
            Err(e) if ok(&e) => Ok(()),
            Err(e) => Err(format!("{what}: refused for the wrong reason: {e}")),
        }
    };

    // The quorum of n = 3f + 1 equal powers is 2f + 1: ⌊2·total/3⌋ + 1 (docs/formats.md).
    out.push(case(
        SRC_PROPERTY,
        "the quorum of 4 equal validators is 3, of 7 is 5, of powers 1,1,1,3 is 5",
        (|| {
            let q7 = validators(&[1; 7])?.1.quorum();
            let qw = validators(&[1, 1, 1, 3])?.1.quorum();
            if (set.quorum(), q7, qw) == (3, 5, 5) {
                Ok(())
            } else {
                Err(format!(
                    "quorums {}, {q7}, {qw}; expected 3, 5, 5",
                    set.quorum()
                ))
            }
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "2f+1 = 3 distinct validators' precommits verify (and all 4)",
        verify(&cert(block, sorted(all[..3].to_vec())))
            .and_then(|()| verify(&cert(block, sorted(all.clone()))))
            .map_err(|e| e.to_string()),
    ));
    out.push(case(
        SRC_PROPERTY,
        "2f = 2 precommits are refused (no quorum)",
        expect("2 of 4", &cert(block, sorted(all[..2].to_vec())), |e| {
            matches!(e, CertificateError::NoQuorum { .. })
        }),
    ));
    out.push(case(
        SRC_PROPERTY,
        "a signer repeated to make up 3 is refused",
        {
            let mut two = sorted(all[..2].to_vec());
            two.push(two[1]);
            expect("a repeated signer", &cert(block, two), |e| {
                matches!(e, CertificateError::Unordered { .. })
            })
        },
    ));
    out.push(case(
        SRC_PROPERTY,
        "a non-validator's valid precommit does not count (2 validators + 1 outsider)",
        (|| {
            let outsider = precommit(&chain_id, &signer(99)?, 5, block, VoteKind::Precommit)?;
            let mut three = all[..2].to_vec();
            three.push(outsider);
            expect("an outsider", &cert(block, sorted(three)), |e| {
                matches!(e, CertificateError::UnknownSigner { .. })
            })
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "a bad signature (one validator's signature under another's id) is refused",
        {
            let mut three = sorted(all[..3].to_vec());
            three[0].1 = three[1].1;
            expect("a swapped signature", &cert(block, three), |e| {
                matches!(e, CertificateError::BadSignature { .. })
            })
        },
    ));
    out.push(case(
        SRC_PROPERTY,
        "three prevotes for the block are not a commit certificate",
        (|| {
            let prevotes = (0..3)
                .map(|i| precommit(&chain_id, &keys[i], 5, block, VoteKind::Prevote))
                .collect::<Result<Vec<_>, _>>()?;
            expect("prevotes", &cert(block, sorted(prevotes)), |e| {
                matches!(e, CertificateError::BadSignature { .. })
            })
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "precommits for another block, relabelled as this block's, are refused",
        (|| {
            let others = (0..3)
                .map(|i| precommit(&chain_id, &keys[i], 5, other_block, VoteKind::Precommit))
                .collect::<Result<Vec<_>, _>>()?;
            expect(
                "another block's signatures",
                &cert(block, sorted(others)),
                |e| matches!(e, CertificateError::BadSignature { .. }),
            )
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "a valid certificate does not prove another block or another height",
        (|| {
            let good = cert(block, sorted(all[..3].to_vec()));
            refused(
                "another block",
                good.verify(&chain_id, Height(5), &other_block, &set),
            )?;
            refused(
                "another height",
                good.verify(&chain_id, Height(6), &block, &set),
            )
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "precommits signed for another height, relabelled as height 5, are refused",
        (|| {
            let h6 = (0..3)
                .map(|i| precommit(&chain_id, &keys[i], 6, block, VoteKind::Precommit))
                .collect::<Result<Vec<_>, _>>()?;
            expect(
                "another height's signatures",
                &cert(block, sorted(h6)),
                |e| matches!(e, CertificateError::BadSignature { .. }),
            )
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "a certificate of this chain does not verify for another chain",
        (|| {
            let other = ChainId::new("gmchain-other").map_err(|e| e.to_string())?;
            refused(
                "another chain",
                cert(block, sorted(all[..3].to_vec())).verify(&other, Height(5), &block, &set),
            )
        })(),
    ));
    out.push(case(
        SRC_PROPERTY,
        "power, not head count, decides: with powers 1,1,1,3 three power-1 validators are refused, the power-3 one with two others verifies",
        (|| {
            let (wkeys, wset) = validators(&[1, 1, 1, 3])?;
            let heavy = wset
                .validators()
                .iter()
                .position(|v| v.power == 3)
                .ok_or("no validator of power 3")?;
            let light: Vec<usize> = (0..4).filter(|i| *i != heavy).collect();
            let sig = |i: usize| precommit(&chain_id, &wkeys[i], 5, block, VoteKind::Precommit);
            let three_light = light
                .iter()
                .map(|i| sig(*i))
                .collect::<Result<Vec<_>, _>>()?;
            match cert(block, sorted(three_light)).verify(&chain_id, Height(5), &block, &wset) {
                Err(CertificateError::NoQuorum { power: 3, .. }) => {}
                other => return Err(format!("three of power 1: {other:?}, expected NoQuorum")),
            }
            let with_heavy = vec![sig(heavy)?, sig(light[0])?, sig(light[1])?];
            cert(block, sorted(with_heavy))
                .verify(&chain_id, Height(5), &block, &wset)
                .map_err(|e| format!("power 3 + 1 + 1: {e}"))
        })(),
    ));
    Ok(out)
}

/// An in-process host for one validator: signs with its key, records every vote it was asked
/// to sign (what left the signer, whether or not it was broadcast) and the WAL frames.
struct GuardHost {
    key: SoftSigner,
    valid: bool,
    wal: Vec<Vec<u8>>,
    signed: Vec<SignedVote>,
    broadcast: Vec<SignedVote>,
    decisions: Vec<Decision>,
}

impl GuardHost {
    fn new(key: SoftSigner, valid: bool, wal: Vec<Vec<u8>>) -> Self {
        Self {
            key,
            valid,
            wal,
            signed: Vec::new(),
            broadcast: Vec::new(),
            decisions: Vec::new(),
        }
    }
}

impl Host for GuardHost {
    fn sign_vote(&mut self, vote: &Vote) -> Result<SignedVote, HostError> {
        let s = vote
            .clone()
            .sign(&self.key)
            .map_err(|e| HostError(e.to_string()))?;
        self.signed.push(s.clone());
        Ok(s)
    }
    fn sign_proposal(&mut self, p: &Proposal) -> Result<SignedProposal, HostError> {
        p.clone()
            .sign(&self.key)
            .map_err(|e| HostError(e.to_string()))
    }
    fn propose_block(&mut self, height: Height, round: u32) -> Result<ProposedBlock, HostError> {
        let (hash, bytes) = block_of(height, u64::from(round) + 100);
        Ok(ProposedBlock {
            hash,
            bytes,
            timestamp: Timestamp(1),
        })
    }
    fn validate_block(&mut self, _p: &Proposal, _b: &[u8]) -> bool {
        self.valid
    }
    fn broadcast_proposal(&mut self, _p: &SignedProposal, _b: &[u8]) {}
    fn broadcast_vote(&mut self, v: &SignedVote) {
        self.broadcast.push(v.clone());
    }
    fn broadcast_certificate(&mut self, _c: &LivenessCertificate) {}
    fn schedule_timeout(&mut self, _t: Timeout, _after: Duration) {}
    fn cancel_timeout(&mut self, _t: Timeout) {}
    fn cancel_all_timeouts(&mut self) {}
    fn wal_append(&mut self, frame: &[u8]) -> Result<(), HostError> {
        self.wal.push(frame.to_vec());
        Ok(())
    }
    fn decide(&mut self, d: Decision) {
        self.decisions.push(d);
    }
    fn evidence(&mut self, _e: Equivocation) {}
}

fn block_of(height: Height, salt: u64) -> (BlockHash, Vec<u8>) {
    let mut b = b"conformance block ".to_vec();
    b.extend_from_slice(&height.0.to_be_bytes());
    b.extend_from_slice(&salt.to_be_bytes());
    (BlockHash(sm3(&b)), b)
}

fn guard_params(me: Digest) -> Result<Params, String> {
    Ok(Params {
        chain_id: chain()?,
        me: Some(me),
        timeouts: Timeouts::default(),
        max_block_bytes: 1024,
    })
}

/// The four validators, the index of ours (not the round-0 proposer at height 1), and the
/// round-0 proposal with its block.
struct Net {
    keys: Vec<SoftSigner>,
    set: ValidatorSet,
    me: usize,
    proposal: SignedProposal,
    block: Vec<u8>,
}

impl Net {
    fn new() -> Result<Self, String> {
        let (keys, set) = validators(&[1, 1, 1, 1])?;
        let proposer = proposer_index(&set, Height(1), 0);
        let me = (proposer + 1) % 4;
        let (hash, block) = block_of(Height(1), 7);
        let proposal = Proposal {
            chain_id: chain()?,
            height: Height(1),
            round: 0,
            block: hash,
            pol_round: None,
            proposer: set.validators()[proposer].id,
        }
        .sign(&keys[proposer])
        .map_err(|e| e.to_string())?;
        Ok(Self {
            keys,
            set,
            me,
            proposal,
            block,
        })
    }
    fn id(&self, i: usize) -> Digest {
        self.set.validators()[i].id
    }
    fn key(&self, i: usize) -> Result<SoftSigner, String> {
        // The same seed as `validators` gave it: a second handle on the same key.
        let pk = self.keys[i].public_key();
        (1..=4u8)
            .map(signer)
            .find(|s| s.as_ref().is_ok_and(|s| s.public_key() == pk))
            .ok_or_else(|| "validator key not found".to_string())?
    }
    fn vote(
        &self,
        who: usize,
        kind: VoteKind,
        block: Option<BlockHash>,
    ) -> Result<SignedVote, String> {
        Vote {
            chain_id: chain()?,
            height: Height(1),
            round: 0,
            kind,
            block,
            validator: self.id(who),
        }
        .sign(&self.keys[who])
        .map_err(|e| e.to_string())
    }
    /// What the network delivers to us: the proposal, then the others' prevotes and
    /// precommits for its block.
    fn inputs(&self) -> Result<Vec<Input>, String> {
        let b = Some(self.proposal.proposal.block);
        let mut v = vec![Input::Proposal {
            proposal: self.proposal.clone(),
            block: self.block.clone(),
        }];
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            for i in (0..4).filter(|i| *i != self.me) {
                v.push(Input::Vote(self.vote(i, kind, b)?));
            }
        }
        Ok(v)
    }
}

type Slot = (Height, u32, VoteKind);

/// Adds `votes` to `seen`, failing on a second, different vote for one slot.
fn no_conflict(seen: &mut BTreeMap<Slot, Vote>, votes: &[SignedVote]) -> Result<(), String> {
    for s in votes {
        let v = &s.vote;
        let key = (v.height, v.round, v.kind);
        if let Some(first) = seen.get(&key) {
            if first != v {
                return Err(format!(
                    "signed two {:?}s at height {} round {}: {:?} and {:?}",
                    v.kind, v.height, v.round, first.block, v.block
                ));
            }
        } else {
            seen.insert(key, v.clone());
        }
    }
    Ok(())
}

fn double_sign_guard() -> Vec<Evidence> {
    let net = match Net::new() {
        Ok(n) => n,
        Err(e) => return vec![case(SRC_ENGINE, "set up four validators", Err(e))],
    };
    vec![
        case(
            SRC_ENGINE,
            "a validator decides height 1 in-process (prevote, precommit, certificate), logging every step",
            first_run(&net).map(|_| ()),
        ),
        noted(
            SRC_ENGINE,
            "crashed after each WAL frame and recovered with the block now judged invalid, then sent everything again: no second, different vote is ever signed for a (height, round, kind)",
            every_prefix(&net),
        ),
        case(
            SRC_ENGINE,
            "a log holding the intent to prevote the block: recovered with the block judged invalid, it refuses the nil prevote (DoubleVote), signs and sends nothing",
            forbidden(&net, VoteKind::Prevote),
        ),
        case(
            SRC_ENGINE,
            "a log holding the intent to precommit nil: recovered, a polka for the block makes it want a precommit for the block; refused (DoubleVote), nothing signed or sent",
            forbidden(&net, VoteKind::Precommit),
        ),
        case(
            SRC_ENGINE,
            "control: with the same intent as what it now wants, the recovered validator does sign (the refusal is for the conflict only)",
            allowed(&net),
        ),
    ]
}

/// The uninterrupted run: returns its WAL and the votes it signed.
fn first_run(net: &Net) -> Result<(Vec<Vec<u8>>, Vec<SignedVote>), String> {
    let mut host = GuardHost::new(net.key(net.me)?, true, Vec::new());
    let mut c = Consensus::new(guard_params(net.id(net.me))?);
    c.handle(
        Input::StartHeight {
            height: Height(1),
            validators: net.set.clone(),
        },
        &mut host,
    )
    .map_err(|e| e.to_string())?;
    for i in net.inputs()? {
        c.handle(i, &mut host).map_err(|e| e.to_string())?;
    }
    let kinds: Vec<_> = host.signed.iter().map(|s| s.vote.kind).collect();
    if kinds != [VoteKind::Prevote, VoteKind::Precommit] {
        return Err(format!(
            "signed {kinds:?}, expected a prevote and a precommit"
        ));
    }
    let d = host.decisions.first().ok_or("nothing decided")?;
    d.certificate
        .verify(&chain()?, Height(1), &d.block, &net.set)
        .map_err(|e| format!("the decision's certificate: {e}"))?;
    let intents = host
        .wal
        .iter()
        .filter(|f| matches!(WalEntry::decode(f, 1 << 16), Ok(WalEntry::SignVote(_))))
        .count();
    if intents != 2 {
        return Err(format!(
            "{intents} sign-vote intents in the WAL, expected 2"
        ));
    }
    Ok((host.wal, host.signed))
}

fn every_prefix(net: &Net) -> Result<String, String> {
    let (wal, signed) = first_run(net)?;
    let mut refusals = 0;
    let mut resigned = 0;
    for k in 0..=wal.len() {
        let prefix = wal[..k].to_vec();
        // What the first run may have signed before this crash: the votes whose intent the
        // prefix holds (the signer is asked only after the intent is durable).
        let mut seen = BTreeMap::new();
        let before: Vec<SignedVote> = signed
            .iter()
            .filter(|s| {
                prefix.iter().any(|f| {
                    WalEntry::decode(f, 1 << 16)
                        .is_ok_and(|e| e == WalEntry::SignVote(s.vote.clone()))
                })
            })
            .cloned()
            .collect();
        no_conflict(&mut seen, &before)?;
        let mut host = GuardHost::new(net.key(net.me)?, false, prefix.clone());
        let recovered = Consensus::recover(
            guard_params(net.id(net.me))?,
            Height(1),
            net.set.clone(),
            &prefix,
            &mut host,
        );
        match recovered {
            Err(ConsensusError::DoubleVote { .. }) => refusals += 1,
            Err(e) => return Err(format!("crash after frame {k}: recover failed: {e}")),
            Ok(mut c) => {
                for i in net.inputs()? {
                    match c.handle(i, &mut host) {
                        Ok(()) => {}
                        Err(ConsensusError::DoubleVote { .. }) => {
                            refusals += 1;
                            break;
                        }
                        Err(e) => return Err(format!("crash after frame {k}: {e}")),
                    }
                }
            }
        }
        no_conflict(&mut seen, &host.signed)
            .and_then(|()| no_conflict(&mut seen, &host.broadcast))
            .map_err(|e| format!("crash after frame {k} of {}: {e}", wal.len()))?;
        if !host.signed.is_empty() {
            resigned += 1;
        }
    }
    if resigned == 0 {
        return Err(
            "no recovered validator signed anything: the runs did not exercise the guard".into(),
        );
    }
    Ok(format!(
        "{} crash points (0..={} frames): {resigned} recovered validators signed again, {refusals} stopped by the guard, none conflicting",
        wal.len() + 1,
        wal.len()
    ))
}

/// A WAL holding one intent that conflicts with what the recovered validator will want.
fn forbidden(net: &Net, kind: VoteKind) -> Result<(), String> {
    let block = Some(net.proposal.proposal.block);
    let (intent_block, valid) = match kind {
        // It will want nil (the block is now judged invalid); the log says the block.
        VoteKind::Prevote => (block, false),
        // It will want the block (valid, polka); the log says nil.
        VoteKind::Precommit => (None, true),
    };
    let intent = WalEntry::SignVote(Vote {
        chain_id: chain()?,
        height: Height(1),
        round: 0,
        kind,
        block: intent_block,
        validator: net.id(net.me),
    });
    let wal = vec![intent.encode()];
    let mut host = GuardHost::new(net.key(net.me)?, valid, wal.clone());
    let mut c = Consensus::recover(
        guard_params(net.id(net.me))?,
        Height(1),
        net.set.clone(),
        &wal,
        &mut host,
    )
    .map_err(|e| format!("recover: {e}"))?;
    let mut refusal = None;
    for i in net.inputs()? {
        match c.handle(i, &mut host) {
            Ok(()) => {}
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let conflicting = |v: &SignedVote| v.vote.kind == kind && v.vote.block != intent_block;
    if host.signed.iter().any(conflicting) || host.broadcast.iter().any(conflicting) {
        return Err(format!(
            "signed or sent a {kind:?} for {:?} despite the logged intent for {intent_block:?}",
            if intent_block.is_some() { None } else { block }
        ));
    }
    match refusal {
        Some(ConsensusError::DoubleVote { kind: k, .. }) if k == kind => Ok(()),
        Some(e) => Err(format!("stopped, but not by the guard: {e}")),
        None => Err(format!(
            "no refusal: the {kind:?} it wanted never conflicted (the case did not exercise the guard)"
        )),
    }
}

fn allowed(net: &Net) -> Result<(), String> {
    let block = Some(net.proposal.proposal.block);
    let intent = WalEntry::SignVote(Vote {
        chain_id: chain()?,
        height: Height(1),
        round: 0,
        kind: VoteKind::Prevote,
        block,
        validator: net.id(net.me),
    });
    let wal = vec![intent.encode()];
    let mut host = GuardHost::new(net.key(net.me)?, true, wal.clone());
    let mut c = Consensus::recover(
        guard_params(net.id(net.me))?,
        Height(1),
        net.set.clone(),
        &wal,
        &mut host,
    )
    .map_err(|e| format!("recover: {e}"))?;
    for i in net.inputs()? {
        c.handle(i, &mut host).map_err(|e| e.to_string())?;
    }
    let prevotes: Vec<_> = host
        .broadcast
        .iter()
        .filter(|v| v.vote.kind == VoteKind::Prevote)
        .map(|v| v.vote.block)
        .collect();
    if prevotes != [block] {
        return Err(format!(
            "prevotes sent {prevotes:?}, expected one for the block"
        ));
    }
    if host.decisions.len() != 1 {
        return Err(format!("{} decisions, expected 1", host.decisions.len()));
    }
    Ok(())
}

/// Feeds our validator the proposal, every prevote, one valid precommit of another validator
/// and then `extra` (each must not count), and reports whether it decided; then the third
/// valid precommit, which must decide with a certificate that verifies.
fn counted(net: &Net, extra: Vec<SignedVote>) -> Result<(), String> {
    let mut host = GuardHost::new(net.key(net.me)?, true, Vec::new());
    let mut c = Consensus::new(guard_params(net.id(net.me))?);
    c.handle(
        Input::StartHeight {
            height: Height(1),
            validators: net.set.clone(),
        },
        &mut host,
    )
    .map_err(|e| e.to_string())?;
    let b = Some(net.proposal.proposal.block);
    let others: Vec<usize> = (0..4).filter(|i| *i != net.me).collect();
    let mut inputs = vec![Input::Proposal {
        proposal: net.proposal.clone(),
        block: net.block.clone(),
    }];
    for i in &others {
        inputs.push(Input::Vote(net.vote(*i, VoteKind::Prevote, b)?));
    }
    // Ours (signed on the polka) + one other: 2f = 2.
    inputs.push(Input::Vote(net.vote(others[0], VoteKind::Precommit, b)?));
    inputs.extend(extra.into_iter().map(Input::Vote));
    for i in inputs {
        c.handle(i, &mut host).map_err(|e| e.to_string())?;
    }
    if !host.decisions.is_empty() {
        return Err(
            "decided without 2f+1 valid precommits: a vote that must not count was counted".into(),
        );
    }
    c.handle(
        Input::Vote(net.vote(others[1], VoteKind::Precommit, b)?),
        &mut host,
    )
    .map_err(|e| e.to_string())?;
    let d = host
        .decisions
        .first()
        .ok_or("the third valid precommit did not decide")?;
    d.certificate
        .verify(&chain()?, Height(1), &d.block, &net.set)
        .map_err(|e| format!("the decision's certificate: {e}"))?;
    if Some(d.block) != b || d.certificate.signatures.len() != 3 {
        return Err(format!(
            "decided {} with {} signers, expected the proposal's block with 3",
            d.block,
            d.certificate.signatures.len()
        ));
    }
    Ok(())
}

fn engine_votes() -> Vec<Evidence> {
    let net = match Net::new() {
        Ok(n) => n,
        Err(e) => return vec![case(SRC_ENGINE, "set up four validators", Err(e))],
    };
    let b = Some(net.proposal.proposal.block);
    let others: Vec<usize> = (0..4).filter(|i| *i != net.me).collect();
    let third = others[1];
    let bad = |f: &dyn Fn(&Net) -> Result<SignedVote, String>| f(&net);
    let cases: Vec<(&str, Result<Vec<SignedVote>, String>)> = vec![
        (
            "control: 2f valid precommits do not decide, the third decides",
            Ok(Vec::new()),
        ),
        (
            "a precommit of the third validator with another validator's signature is not counted",
            bad(&|n| {
                let mut v = n.vote(third, VoteKind::Precommit, b)?;
                v.signature = n.vote(others[0], VoteKind::Precommit, b)?.signature;
                Ok(v)
            })
            .map(|v| vec![v]),
        ),
        (
            "a precommit of the third validator signed as a prevote is not counted",
            bad(&|n| {
                let mut v = n.vote(third, VoteKind::Precommit, b)?;
                v.signature = n.vote(third, VoteKind::Prevote, b)?.signature;
                Ok(v)
            })
            .map(|v| vec![v]),
        ),
        (
            "a validly signed precommit of a key outside the validator set is not counted",
            bad(&|n| {
                let outsider = signer(99)?;
                Vote {
                    validator: sm3(outsider.public_key().as_bytes()),
                    ..n.vote(third, VoteKind::Precommit, b)?.vote
                }
                .sign(&outsider)
                .map_err(|e| e.to_string())
            })
            .map(|v| vec![v]),
        ),
        (
            "a precommit of the third validator for another chain is not counted",
            bad(&|n| {
                Vote {
                    chain_id: ChainId::new("gmchain-other").map_err(|e| e.to_string())?,
                    ..n.vote(third, VoteKind::Precommit, b)?.vote
                }
                .sign(&n.keys[third])
                .map_err(|e| e.to_string())
            })
            .map(|v| vec![v]),
        ),
        (
            "the second validator's precommit delivered again is counted once",
            net.vote(others[0], VoteKind::Precommit, b).map(|v| vec![v]),
        ),
    ];
    cases
        .into_iter()
        .map(|(what, extra)| case(SRC_ENGINE, what, extra.and_then(|e| counted(&net, e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consensus_check_passes_with_its_cases() {
        for c in CHECKS {
            let o = c.execute();
            let failed: Vec<_> = o.evidence.iter().filter(|e| !e.pass).collect();
            assert!(o.pass, "{}: {failed:#?}", c.id);
            assert!(o.cases >= 4, "{}: only {} cases", c.id, o.cases);
        }
    }

    /// The harness of consensus-engine-votes fails when the extra vote is one that counts.
    #[test]
    fn a_counted_extra_vote_fails_the_engine_case() {
        let net = Net::new().unwrap();
        let others: Vec<usize> = (0..4).filter(|i| *i != net.me).collect();
        let valid = net
            .vote(
                others[1],
                VoteKind::Precommit,
                Some(net.proposal.proposal.block),
            )
            .unwrap();
        let e = counted(&net, vec![valid]).unwrap_err();
        assert!(e.contains("was counted"), "{e}");
    }

    #[test]
    fn two_different_votes_for_one_slot_are_a_conflict() {
        let net = Net::new().unwrap();
        let a = net.vote(0, VoteKind::Prevote, None).unwrap();
        let b = net
            .vote(0, VoteKind::Prevote, Some(net.proposal.proposal.block))
            .unwrap();
        let mut seen = BTreeMap::new();
        no_conflict(&mut seen, &[a.clone(), a]).unwrap();
        assert!(no_conflict(&mut seen, &[b]).is_err());
    }

    #[test]
    fn the_known_answer_bytes_are_the_documented_lengths() {
        // domain 16 + version/tag 2 + chain 4+19 + height 8 + round 4 + kind 1 + block 33 + id 32
        assert_eq!(hex::decode(FIXED_VOTE_SIGNING_BYTES).unwrap().len(), 119);
        // domain 20 + 2 + 23 + 8 + 4 + block 32 + pol_round 5 + proposer 32
        assert_eq!(
            hex::decode(FIXED_PROPOSAL_SIGNING_BYTES).unwrap().len(),
            126
        );
    }
}
