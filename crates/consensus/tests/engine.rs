//! Checks that would fail on a broken engine: one validator (index 0 of four) driven by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use std::rc::Rc;
use std::time::Duration;

use consensus::context::proposer_index;
use consensus::{
    CertificateKind, Consensus, ConsensusError, Decision, Equivocation, Host, HostError, Input,
    LivenessCertificate, ProposedBlock, Timeout, TimeoutKind, WalEntry, timestamp_acceptable,
};
use crypto::{Digest, Signer};
use crypto_sm::SoftSigner;
use crypto_sm::sm3::sm3;
use sim::{chain_id, genesis, make_block, make_validators, params};
use types::{
    BlockHash, CertificateError, CommitCertificate, Height, Proposal, SignedProposal, SignedVote,
    Timestamp, ValidatorEntry, ValidatorSet, Vote, VoteKind,
};

#[derive(Default)]
struct Rec {
    signer: Option<Rc<SoftSigner>>,
    wal: Vec<Vec<u8>>,
    votes: Vec<SignedVote>,
    proposals: Vec<SignedProposal>,
    decisions: Vec<Decision>,
    evidence: Vec<Equivocation>,
    timeouts: Vec<Timeout>,
    valid: bool,
}

impl Host for Rec {
    fn sign_vote(&mut self, vote: &Vote) -> Result<SignedVote, HostError> {
        vote.clone()
            .sign(&**self.signer.as_ref().unwrap())
            .map_err(|e| HostError(e.to_string()))
    }
    fn sign_proposal(&mut self, p: &Proposal) -> Result<SignedProposal, HostError> {
        p.clone()
            .sign(&**self.signer.as_ref().unwrap())
            .map_err(|e| HostError(e.to_string()))
    }
    fn propose_block(&mut self, height: Height, _round: u32) -> Result<ProposedBlock, HostError> {
        let (hash, bytes) = make_block(height, sim::T0, genesis().0, 99);
        Ok(ProposedBlock {
            hash,
            bytes,
            timestamp: Timestamp(sim::T0),
        })
    }
    fn validate_block(&mut self, _p: &Proposal, _b: &[u8]) -> bool {
        self.valid
    }
    fn broadcast_proposal(&mut self, p: &SignedProposal, _b: &[u8]) {
        self.proposals.push(p.clone());
    }
    fn broadcast_vote(&mut self, v: &SignedVote) {
        self.votes.push(v.clone());
    }
    fn broadcast_certificate(&mut self, _c: &LivenessCertificate) {}
    fn schedule_timeout(&mut self, t: Timeout, _after: Duration) {
        self.timeouts.push(t);
    }
    fn cancel_timeout(&mut self, _t: Timeout) {}
    fn cancel_all_timeouts(&mut self) {}
    fn wal_append(&mut self, frame: &[u8]) -> Result<(), HostError> {
        self.wal.push(frame.to_vec());
        Ok(())
    }
    fn decide(&mut self, d: Decision) {
        self.decisions.push(d);
    }
    fn evidence(&mut self, e: Equivocation) {
        self.evidence.push(e);
    }
}

struct Fixture {
    signers: Vec<Rc<SoftSigner>>,
    set: ValidatorSet,
    me: usize,
    c: Consensus,
    host: Rec,
}

/// Validator `me` of four at height 1; the round-0 proposer is another validator.
fn fixture() -> Fixture {
    let (signers, set) = make_validators(4, 5);
    let signers: Vec<Rc<SoftSigner>> = signers.into_iter().map(Rc::new).collect();
    let me = (proposer_index(&set, Height(1), 0) + 1) % 4;
    let mut host = Rec {
        signer: Some(signers[me].clone()),
        valid: true,
        ..Rec::default()
    };
    let mut c = Consensus::new(params(Some(set.validators()[me].id)));
    c.handle(
        Input::StartHeight {
            height: Height(1),
            validators: set.clone(),
        },
        &mut host,
    )
    .unwrap();
    Fixture {
        signers,
        set,
        me,
        c,
        host,
    }
}

fn vote(
    f: &Fixture,
    who: usize,
    kind: VoteKind,
    round: u32,
    block: Option<BlockHash>,
) -> SignedVote {
    Vote {
        chain_id: chain_id(),
        height: Height(1),
        round,
        kind,
        block,
        validator: f.set.validators()[who].id,
    }
    .sign(&*f.signers[who])
    .unwrap()
}

fn proposal(f: &Fixture, who: usize, round: u32) -> (SignedProposal, Vec<u8>) {
    let (hash, bytes) = make_block(Height(1), sim::T0, genesis().0, who as u64);
    let p = Proposal {
        chain_id: chain_id(),
        height: Height(1),
        round,
        block: hash,
        pol_round: None,
        proposer: f.set.validators()[who].id,
    }
    .sign(&*f.signers[who])
    .unwrap();
    (p, bytes)
}

fn my_votes(f: &Fixture, kind: VoteKind) -> Vec<Option<BlockHash>> {
    f.host
        .votes
        .iter()
        .filter(|v| v.vote.kind == kind && v.vote.validator == f.set.validators()[f.me].id)
        .map(|v| v.vote.block)
        .collect()
}

fn others(f: &Fixture) -> Vec<usize> {
    (0..4).filter(|i| *i != f.me).collect()
}

/// The round-0 proposer's proposal of height 1, delivered; returns the block it names.
fn deliver_round0_proposal(f: &mut Fixture) -> Option<BlockHash> {
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(f, proposer, 0);
    let block = Some(p.proposal.block);
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    block
}

#[test]
fn prevotes_the_round_proposers_valid_proposal() {
    let mut f = fixture();
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(&f, proposer, 0);
    f.c.handle(
        Input::Proposal {
            proposal: p.clone(),
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    assert_eq!(
        my_votes(&f, VoteKind::Prevote),
        vec![Some(p.proposal.block)]
    );
}

#[test]
fn invalid_block_gets_a_nil_prevote() {
    let mut f = fixture();
    f.host.valid = false;
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(&f, proposer, 0);
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    assert_eq!(my_votes(&f, VoteKind::Prevote), vec![None]);
}

#[test]
fn proposal_from_a_non_proposer_is_ignored() {
    let mut f = fixture();
    let proposer = proposer_index(&f.set, Height(1), 0);
    let intruder = (0..4).find(|i| *i != proposer && *i != f.me).unwrap();
    let (p, b) = proposal(&f, intruder, 0);
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    assert!(
        my_votes(&f, VoteKind::Prevote).is_empty(),
        "voted on a non-proposer's proposal"
    );
    // The same proposal body, wrongly signed by another key, is ignored too.
    let (mut p, b) = proposal(&f, proposer, 0);
    p.signature = proposal(&f, intruder, 0).0.signature;
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    assert!(
        my_votes(&f, VoteKind::Prevote).is_empty(),
        "voted on a badly signed proposal"
    );
}

#[test]
fn vote_from_a_non_validator_is_ignored() {
    let mut f = fixture();
    let block = deliver_round0_proposal(&mut f);
    // An outsider's key and id.
    let (outsiders, _) = make_validators(1, 999);
    let outsider_id = sm3(outsiders[0].public_key().as_bytes());
    let fake = Vote {
        chain_id: chain_id(),
        height: Height(1),
        round: 0,
        kind: VoteKind::Prevote,
        block,
        validator: outsider_id,
    }
    .sign(&outsiders[0])
    .unwrap();
    let o = others(&f);
    // Ours + one validator + the outsider: no quorum (3 of 4 needed), so no precommit.
    f.c.handle(
        Input::Vote(vote(&f, o[0], VoteKind::Prevote, 0, block)),
        &mut f.host,
    )
    .unwrap();
    f.c.handle(Input::Vote(fake), &mut f.host).unwrap();
    assert!(
        my_votes(&f, VoteKind::Precommit).is_empty(),
        "a non-validator's vote counted"
    );
    // A vote from another chain does not count either.
    let mut other_chain = vote(&f, o[1], VoteKind::Prevote, 0, block).vote;
    other_chain.chain_id = types::ChainId::new("other-chain").unwrap();
    let other_chain = other_chain.sign(&*f.signers[o[1]]).unwrap();
    f.c.handle(Input::Vote(other_chain), &mut f.host).unwrap();
    assert!(
        my_votes(&f, VoteKind::Precommit).is_empty(),
        "another chain's vote counted"
    );
    // A real third validator's vote makes the polka: we precommit the block.
    f.c.handle(
        Input::Vote(vote(&f, o[1], VoteKind::Prevote, 0, block)),
        &mut f.host,
    )
    .unwrap();
    assert_eq!(my_votes(&f, VoteKind::Precommit), vec![block]);
}

#[test]
fn decides_with_a_certificate_that_verifies_and_not_with_2f() {
    let mut f = fixture();
    let block = deliver_round0_proposal(&mut f);
    let o = others(&f);
    for i in &o {
        f.c.handle(
            Input::Vote(vote(&f, *i, VoteKind::Prevote, 0, block)),
            &mut f.host,
        )
        .unwrap();
    }
    // Our precommit + one other: 2f = 2 precommits, no decision.
    f.c.handle(
        Input::Vote(vote(&f, o[0], VoteKind::Precommit, 0, block)),
        &mut f.host,
    )
    .unwrap();
    assert!(f.host.decisions.is_empty(), "decided on 2f precommits");
    f.c.handle(
        Input::Vote(vote(&f, o[1], VoteKind::Precommit, 0, block)),
        &mut f.host,
    )
    .unwrap();
    assert_eq!(f.host.decisions.len(), 1);
    let d = &f.host.decisions[0];
    assert_eq!(Some(d.block), block);
    d.certificate
        .verify(&chain_id(), Height(1), &d.block, &f.set)
        .unwrap();
    assert!(d.bytes.is_some());
    // The same certificate with one signature fewer (2f) is refused.
    let mut short = d.certificate.clone();
    short.signatures.truncate(2);
    assert!(matches!(
        short.verify(&chain_id(), Height(1), &d.block, &f.set),
        Err(CertificateError::NoQuorum { .. })
    ));
}

fn certificate(f: &Fixture, signers: &[usize], block: BlockHash) -> CommitCertificate {
    let votes: Vec<SignedVote> = signers
        .iter()
        .map(|i| vote(f, *i, VoteKind::Precommit, 0, Some(block)))
        .collect();
    CommitCertificate::from_votes(Height(1), 0, block, votes.iter())
}

#[test]
fn synced_block_needs_a_quorum_certificate() {
    let mut f = fixture();
    let (block, bytes) = make_block(Height(1), sim::T0, genesis().0, 5);
    let o = others(&f);
    // 2f precommits: refused, nothing decided, and this instance must be recovered.
    let short = certificate(&f, &o[..2], block);
    let e =
        f.c.handle(
            Input::SyncedBlock {
                block,
                bytes: bytes.clone(),
                certificate: short,
            },
            &mut f.host,
        )
        .unwrap_err();
    assert!(matches!(e, ConsensusError::SyncCertificate { .. }), "{e}");
    assert!(f.host.decisions.is_empty());
    // A certificate for another block does not prove this one.
    let mut f = fixture();
    let other = make_block(Height(1), sim::T0, genesis().0, 6).0;
    let wrong = certificate(&f, &o, other);
    assert!(
        f.c.handle(
            Input::SyncedBlock {
                block,
                bytes: bytes.clone(),
                certificate: wrong,
            },
            &mut f.host,
        )
        .is_err()
    );
    // 2f+1: decided.
    let mut f = fixture();
    let full = certificate(&f, &o, block);
    f.c.handle(
        Input::SyncedBlock {
            block,
            bytes,
            certificate: full,
        },
        &mut f.host,
    )
    .unwrap();
    assert_eq!(f.host.decisions.len(), 1);
    assert_eq!(f.host.decisions[0].block, block);
}

#[test]
fn double_votes_are_recorded_as_evidence() {
    let mut f = fixture();
    let block = deliver_round0_proposal(&mut f);
    let o = others(&f);
    let cheat = o[2];
    f.c.handle(
        Input::Vote(vote(&f, cheat, VoteKind::Prevote, 0, None)),
        &mut f.host,
    )
    .unwrap();
    for i in &o {
        f.c.handle(
            Input::Vote(vote(&f, *i, VoteKind::Prevote, 0, block)),
            &mut f.host,
        )
        .unwrap();
    }
    for i in &o {
        f.c.handle(
            Input::Vote(vote(&f, *i, VoteKind::Precommit, 0, block)),
            &mut f.host,
        )
        .unwrap();
    }
    assert_eq!(f.host.decisions.len(), 1);
    let cheat_id = f.set.validators()[cheat].id;
    assert_eq!(f.host.evidence.len(), 1, "{:?}", f.host.evidence);
    let e = &f.host.evidence[0];
    assert_eq!(e.validator, cheat_id);
    assert_eq!(e.first.vote.block, None);
    assert_eq!(e.second.vote.block, block);
}

#[test]
fn guard_from_wal_refuses_a_conflicting_vote_after_restart() {
    let f = fixture();
    let me_id = f.set.validators()[f.me].id;
    // Before the crash we were about to sign a nil prevote at (1, 0).
    let intent = WalEntry::SignVote(Vote {
        chain_id: chain_id(),
        height: Height(1),
        round: 0,
        kind: VoteKind::Prevote,
        block: None,
        validator: me_id,
    });
    let mut host = Rec {
        signer: Some(f.signers[f.me].clone()),
        valid: true,
        wal: vec![intent.encode()],
        ..Rec::default()
    };
    let wal = host.wal.clone();
    let mut c = Consensus::recover(
        params(Some(me_id)),
        Height(1),
        f.set.clone(),
        &wal,
        &mut host,
    )
    .unwrap();
    // Now a valid proposal arrives: the state machine wants to prevote the block; the guard
    // refuses, and nothing was broadcast.
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(&f, proposer, 0);
    let e = c
        .handle(
            Input::Proposal {
                proposal: p.clone(),
                block: b.clone(),
            },
            &mut host,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConsensusError::DoubleVote {
                kind: VoteKind::Prevote,
                ..
            }
        ),
        "{e}"
    );
    assert!(host.votes.is_empty());
    assert!(matches!(
        c.handle(
            Input::Vote(vote(&f, 0, VoteKind::Prevote, 0, None)),
            &mut host
        ),
        Err(ConsensusError::Poisoned)
    ));
    // With the same intent for the block instead, the restarted node signs that vote.
    let intent = WalEntry::SignVote(Vote {
        block: Some(p.proposal.block),
        ..match intent {
            WalEntry::SignVote(v) => v,
            _ => unreachable!(),
        }
    });
    let mut host = Rec {
        signer: Some(f.signers[f.me].clone()),
        valid: true,
        wal: vec![intent.encode()],
        ..Rec::default()
    };
    let wal = host.wal.clone();
    let mut c = Consensus::recover(
        params(Some(me_id)),
        Height(1),
        f.set.clone(),
        &wal,
        &mut host,
    )
    .unwrap();
    c.handle(
        Input::Proposal {
            proposal: p.clone(),
            block: b,
        },
        &mut host,
    )
    .unwrap();
    assert_eq!(host.votes.len(), 1);
    assert_eq!(host.votes[0].vote.block, Some(p.proposal.block));
}

#[test]
fn restart_replays_the_wal_without_signing_anew() {
    let mut f = fixture();
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(&f, proposer, 0);
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    let before = f.host.votes.clone();
    assert_eq!(before.len(), 1);
    let me_id = f.set.validators()[f.me].id;
    let wal = f.host.wal.clone();
    // A signer that must not be called: the prevote is taken from the WAL.
    let mut host = Rec {
        signer: None,
        valid: true,
        ..Rec::default()
    };
    let _c = Consensus::recover(
        params(Some(me_id)),
        Height(1),
        f.set.clone(),
        &wal,
        &mut host,
    )
    .unwrap();
    assert!(host.wal.is_empty(), "replayed entries were logged again");
}

#[test]
fn wal_frames_round_trip_and_refuse_damage() {
    let f = fixture();
    let (p, b) = proposal(&f, 0, 0);
    let v = vote(&f, 1, VoteKind::Precommit, 3, None);
    let cert = LivenessCertificate {
        kind: CertificateKind::Skip,
        height: Height(1),
        round: 0,
        votes: vec![v.clone()],
    };
    let entries = vec![
        WalEntry::SignVote(v.vote.clone()),
        WalEntry::SignProposal(p.proposal.clone()),
        WalEntry::Vote(v.clone()),
        WalEntry::Proposal(p.clone()),
        WalEntry::Block {
            height: Height(1),
            hash: p.proposal.block,
            bytes: b,
        },
        WalEntry::Propose {
            height: Height(1),
            round: 2,
            block: p.proposal.block,
        },
        WalEntry::ProposedValue {
            height: Height(1),
            round: 2,
            valid_round: Some(1),
            proposer: Digest([7; 32]),
            block: p.proposal.block,
            valid: false,
        },
        WalEntry::Timeout {
            height: Height(1),
            timeout: Timeout {
                round: 4,
                kind: TimeoutKind::Precommit,
            },
        },
        WalEntry::Certificate(cert),
    ];
    for e in &entries {
        let frame = e.encode();
        assert_eq!(&WalEntry::decode(&frame, 4096).unwrap(), e);
        // Every single-byte change is caught.
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x01;
            assert!(
                WalEntry::decode(&bad, 4096).is_err(),
                "flip at {i} of {e:?} accepted"
            );
        }
        let mut long = frame.clone();
        long.push(0);
        assert!(matches!(
            WalEntry::decode(&long, 4096),
            Err(ConsensusError::WalCorrupt { .. })
        ));
        assert!(WalEntry::decode(&frame[..frame.len() - 1], 4096).is_err());
        assert!(matches!(
            WalEntry::decode(&frame, 5),
            Err(ConsensusError::WalEntryTooLarge { .. })
        ));
    }
}

/// Known answer, SM3 computed independently with `openssl dgst -sm3` over the first 19 bytes.
#[test]
fn wal_timeout_frame_known_answer() {
    let e = WalEntry::Timeout {
        height: Height(5),
        timeout: Timeout {
            round: 2,
            kind: TimeoutKind::Precommit,
        },
    };
    let expected = "01070000000d00000000000000050000000203\
                    d54ae30acd0c50aa1a88ee9a2053719879672a48bd7ae8e6675ab292302a8295";
    assert_eq!(hex::encode(e.encode()), expected);
    // Version 2 and an unknown kind are refused by name (checksums made valid).
    let mut v2 = e.encode()[..19].to_vec();
    v2[0] = 2;
    v2.extend_from_slice(sm3(&v2).as_bytes());
    assert!(matches!(
        WalEntry::decode(&v2, 64),
        Err(ConsensusError::WalVersion { got: 2 })
    ));
    let mut k = e.encode()[..19].to_vec();
    k[1] = 200;
    k.extend_from_slice(sm3(&k).as_bytes());
    assert!(matches!(
        WalEntry::decode(&k, 64),
        Err(ConsensusError::WalUnknownKind { got: 200 })
    ));
}

#[test]
fn liveness_certificates_need_their_threshold_and_valid_votes() {
    let f = fixture();
    let block = make_block(Height(1), sim::T0, genesis().0, 1).0;
    let polka = |who: &[usize]| LivenessCertificate {
        kind: CertificateKind::Polka { block },
        height: Height(1),
        round: 0,
        votes: who
            .iter()
            .map(|i| vote(&f, *i, VoteKind::Prevote, 0, Some(block)))
            .collect(),
    };
    polka(&[0, 1, 2]).verify(&chain_id(), &f.set).unwrap();
    assert!(matches!(
        polka(&[0, 1]).verify(&chain_id(), &f.set),
        Err(CertificateError::NoQuorum { .. })
    ));
    assert!(
        polka(&[0, 1, 1]).verify(&chain_id(), &f.set).is_err(),
        "duplicate signer counted"
    );
    let mut wrong_block = polka(&[0, 1, 2]);
    wrong_block.votes[2] = vote(&f, 2, VoteKind::Prevote, 0, None);
    assert!(wrong_block.verify(&chain_id(), &f.set).is_err());
    let mut forged = polka(&[0, 1, 2]);
    forged.votes[2].signature = forged.votes[1].signature;
    assert!(matches!(
        forged.verify(&chain_id(), &f.set),
        Err(CertificateError::BadSignature { .. })
    ));
    // Skip: f+1 = 2 votes of any kind.
    let skip = LivenessCertificate {
        kind: CertificateKind::Skip,
        height: Height(1),
        round: 3,
        votes: vec![
            vote(&f, 0, VoteKind::Prevote, 3, None),
            vote(&f, 1, VoteKind::Precommit, 3, Some(block)),
        ],
    };
    skip.verify(&chain_id(), &f.set).unwrap();
    let mut one = skip.clone();
    one.votes.pop();
    assert!(one.verify(&chain_id(), &f.set).is_err());
    // Encoding round-trips; trailing bytes are refused.
    let c = polka(&[0, 1, 2]);
    assert_eq!(LivenessCertificate::from_bytes(&c.to_bytes()).unwrap(), c);
    let mut long = c.to_bytes();
    long.push(0);
    assert!(LivenessCertificate::from_bytes(&long).is_err());
}

#[test]
fn proposer_rotation_is_weighted_by_power() {
    let (signers, _) = make_validators(3, 11);
    let entries: Vec<ValidatorEntry> = signers
        .iter()
        .zip([1u64, 2, 3])
        .map(|(s, power)| ValidatorEntry {
            id: sm3(s.public_key().as_bytes()),
            public_key: s.public_key(),
            power,
        })
        .collect();
    let set = ValidatorSet::new(entries).unwrap();
    let mut count = [0u32; 3];
    for r in 0..6 {
        count[proposer_index(&set, Height(10), r)] += 1;
    }
    let powers: Vec<u32> = set.validators().iter().map(|v| v.power as u32).collect();
    assert_eq!(count.to_vec(), powers);
    // Keyed by height + round.
    assert_eq!(
        proposer_index(&set, Height(10), 1),
        proposer_index(&set, Height(11), 0)
    );
}

#[test]
fn timestamp_rule() {
    let parent = Timestamp(1_000);
    let now = Timestamp(10_000);
    assert!(timestamp_acceptable(
        Timestamp(10_000),
        parent,
        now,
        2_000,
        None
    ));
    assert!(timestamp_acceptable(
        Timestamp(12_000),
        parent,
        now,
        2_000,
        None
    ));
    assert!(timestamp_acceptable(
        Timestamp(8_000),
        parent,
        now,
        2_000,
        None
    ));
    assert!(
        !timestamp_acceptable(Timestamp(12_001), parent, now, 2_000, None),
        "too far ahead"
    );
    assert!(
        !timestamp_acceptable(Timestamp(7_999), parent, now, 2_000, None),
        "too far behind"
    );
    assert!(
        !timestamp_acceptable(Timestamp(1_000), parent, Timestamp(1_000), 2_000, None),
        "not after parent"
    );
    // A re-proposal is not judged against the clock again, but still after its parent.
    assert!(timestamp_acceptable(
        Timestamp(5_000),
        parent,
        now,
        2_000,
        Some(0)
    ));
    assert!(!timestamp_acceptable(
        Timestamp(999),
        parent,
        now,
        2_000,
        Some(0)
    ));
}

#[test]
fn follower_never_signs() {
    let (signers, set) = make_validators(4, 5);
    let mut host = Rec {
        signer: None,
        valid: true,
        ..Rec::default()
    };
    let mut c = Consensus::new(params(None));
    c.handle(
        Input::StartHeight {
            height: Height(1),
            validators: set.clone(),
        },
        &mut host,
    )
    .unwrap();
    let proposer = proposer_index(&set, Height(1), 0);
    let (block, bytes) = make_block(Height(1), sim::T0, genesis().0, 0);
    let p = Proposal {
        chain_id: chain_id(),
        height: Height(1),
        round: 0,
        block,
        pol_round: None,
        proposer: set.validators()[proposer].id,
    }
    .sign(&signers[proposer])
    .unwrap();
    c.handle(
        Input::Proposal {
            proposal: p,
            block: bytes,
        },
        &mut host,
    )
    .unwrap();
    for (i, s) in signers.iter().enumerate() {
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let v = Vote {
                chain_id: chain_id(),
                height: Height(1),
                round: 0,
                kind,
                block: Some(block),
                validator: set.validators()[i].id,
            }
            .sign(s)
            .unwrap();
            c.handle(Input::Vote(v), &mut host).unwrap();
        }
    }
    assert!(host.votes.is_empty() && host.proposals.is_empty());
    assert_eq!(
        host.decisions.len(),
        1,
        "a follower still decides from others' votes"
    );
}

#[test]
fn round_certificates_move_rounds_only_when_they_verify() {
    // Skip: f+1 = 2 votes of round 5 take us to round 5; one vote does not.
    let mut f = fixture();
    let o = others(&f);
    let skip = |f: &Fixture, who: &[usize]| LivenessCertificate {
        kind: CertificateKind::Skip,
        height: Height(1),
        round: 5,
        votes: who
            .iter()
            .map(|i| vote(f, *i, VoteKind::Prevote, 5, None))
            .collect(),
    };
    f.c.handle(Input::Certificate(skip(&f, &o[..1])), &mut f.host)
        .unwrap();
    assert_eq!(f.c.round(), Some(0));
    let mut forged = skip(&f, &o[..2]);
    forged.votes[1].signature = forged.votes[0].signature;
    f.c.handle(Input::Certificate(forged), &mut f.host).unwrap();
    assert_eq!(
        f.c.round(),
        Some(0),
        "a forged skip certificate moved the round"
    );
    f.c.handle(Input::Certificate(skip(&f, &o[..2])), &mut f.host)
        .unwrap();
    assert_eq!(f.c.round(), Some(5));

    // Precommit-any: 2f+1 precommits of round 0 start the precommit timeout (L47); 2f do not.
    let mut f = fixture();
    let o = others(&f);
    let pc = |f: &Fixture, who: &[usize]| LivenessCertificate {
        kind: CertificateKind::PrecommitAny,
        height: Height(1),
        round: 0,
        votes: who
            .iter()
            .map(|i| vote(f, *i, VoteKind::Precommit, 0, None))
            .collect(),
    };
    let precommit_timeout = Timeout {
        round: 0,
        kind: TimeoutKind::Precommit,
    };
    f.c.handle(Input::Certificate(pc(&f, &o[..2])), &mut f.host)
        .unwrap();
    assert!(
        !f.host.timeouts.contains(&precommit_timeout),
        "{:?}",
        f.host.timeouts
    );
    f.c.handle(Input::Certificate(pc(&f, &o)), &mut f.host)
        .unwrap();
    assert!(
        f.host.timeouts.contains(&precommit_timeout),
        "{:?}",
        f.host.timeouts
    );
}

/// Known answer for the liveness certificate's framing: version 1, kind 1 (polka), block,
/// height, round, count, then each vote as u32 length + `types`' own (pinned) encoding.
#[test]
fn liveness_certificate_encoding_known_answer() {
    let v = SignedVote {
        vote: Vote {
            chain_id: chain_id(),
            height: Height(7),
            round: 2,
            kind: VoteKind::Prevote,
            block: Some(BlockHash(Digest([0xAB; 32]))),
            validator: Digest([0x11; 32]),
        },
        signature: crypto::Signature::from_scalars([1; 32], [2; 32]),
    };
    let c = LivenessCertificate {
        kind: CertificateKind::Polka {
            block: BlockHash(Digest([0xAB; 32])),
        },
        height: Height(7),
        round: 2,
        votes: vec![v.clone()],
    };
    let inner = types::Encode::to_bytes(&v);
    let mut expected = String::from("0101");
    expected.push_str(&"ab".repeat(32));
    expected.push_str("0000000000000007");
    expected.push_str("00000002");
    expected.push_str("00000001"); // one vote
    expected.push_str(&format!("{:08x}", inner.len()));
    expected.push_str(&hex::encode(&inner));
    assert_eq!(hex::encode(c.to_bytes()), expected);
}

#[test]
fn a_height_decided_by_sync_is_not_decided_again() {
    let mut f = fixture();
    let proposer = proposer_index(&f.set, Height(1), 0);
    let (p, b) = proposal(&f, proposer, 0);
    let block = p.proposal.block;
    let o = others(&f);
    let cert = certificate(&f, &o, block);
    f.c.handle(
        Input::SyncedBlock {
            block,
            bytes: b.clone(),
            certificate: cert,
        },
        &mut f.host,
    )
    .unwrap();
    assert_eq!(f.host.decisions.len(), 1);
    // The round's messages arriving late do not produce a second decision.
    f.c.handle(
        Input::Proposal {
            proposal: p,
            block: b,
        },
        &mut f.host,
    )
    .unwrap();
    for i in &o {
        f.c.handle(
            Input::Vote(vote(&f, *i, VoteKind::Prevote, 0, Some(block))),
            &mut f.host,
        )
        .unwrap();
    }
    for i in &o {
        f.c.handle(
            Input::Vote(vote(&f, *i, VoteKind::Precommit, 0, Some(block))),
            &mut f.host,
        )
        .unwrap();
    }
    assert_eq!(f.host.decisions.len(), 1, "decided twice");
}

/// A liveness certificate has one encoding per set of votes: encoded in validator order
/// whatever the order held, and an encoding with its votes in another order (a relay's
/// reordered copy, a fresh message id for the same proof) does not decode.
#[test]
fn a_liveness_certificate_has_one_encoding() {
    let f = fixture();
    let votes: Vec<SignedVote> = (0..3)
        .map(|i| vote(&f, i, VoteKind::Precommit, 2, None))
        .collect();
    let cert = |order: [usize; 3]| LivenessCertificate {
        kind: CertificateKind::PrecommitAny,
        height: Height(1),
        round: 2,
        votes: order.iter().map(|&i| votes[i].clone()).collect(),
    };
    let canonical = cert([0, 1, 2]).to_bytes();
    for order in [[2, 1, 0], [1, 2, 0], [0, 2, 1]] {
        assert_eq!(cert(order).to_bytes(), canonical);
    }
    let decoded = LivenessCertificate::from_bytes(&canonical).unwrap();
    decoded.verify(&chain_id(), &f.set).unwrap();
    // The same votes written in another order, as a relay could.
    let mut reversed = decoded.votes.clone();
    reversed.reverse();
    let mut w = types::codec::Writer::new();
    w.u8(1);
    w.u8(2);
    w.u64(1);
    w.u32(2);
    w.len(reversed.len());
    for v in &reversed {
        w.bytes(&types::Encode::to_bytes(v));
    }
    let reordered = w.into_bytes();
    assert_eq!(reordered.len(), canonical.len());
    let e = LivenessCertificate::from_bytes(&reordered).unwrap_err();
    assert_eq!(e.field, "liveness.votes[]");
}
