//! Known-answer and negative tests of the consensus values: the v2 header, votes, proposals,
//! validator sets and commit certificates. Expected bytes and hashes were computed
//! independently (Python, with OpenSSL's SM3 through hashlib); changing them is a format change.

use crypto::{Digest, Signer};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::sync::Arc;
use types::{
    BlockHash, BlockHeader, CertificateError, ChainId, CommitCertificate, ConsensusLinks, Decode,
    DecodeReason, Encode, Height, Limits, Proposal, SignedVote, Timestamp, ValidatorEntry,
    ValidatorSet, ValidatorSetError, Vote, VoteKind,
};

fn d(b: u8) -> Digest {
    Digest([b; 32])
}

fn chain() -> ChainId {
    ChainId::new("gov-bj-1").unwrap()
}

fn v2_header() -> BlockHeader {
    BlockHeader {
        chain_id: chain(),
        height: Height(7),
        tx_count: 1,
        parent: BlockHash(d(0xaa)),
        tx_root: d(0xbb),
        state_root: d(0xcc),
        receipts_root: d(0xdd),
        timestamp: Timestamp(1_700_000_000_000),
        proposer: d(0xee),
        consensus: Some(ConsensusLinks {
            validator_set: d(0x11),
            next_validator_set: d(0x33),
            last_commit: d(0x22),
        }),
    }
}

// 01 0e (version 1, type BLOCK_HEADER_V2) | the v1 fields | validator_set |
// next_validator_set | last_commit
const HEADER_V2_HEX: &str = "010e00000008676f762d626a2d31000000000000000700000001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd0000018bcfe56800eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee111111111111111111111111111111111111111111111111111111111111111133333333333333333333333333333333333333333333333333333333333333332222222222222222222222222222222222222222222222222222222222222222";
// SM3("GMCHAIN-HEADER-V2\0" ‖ HEADER_V2_HEX), computed with `openssl dgst -sm3`
const HEADER_V2_HASH_HEX: &str = "8dcddc2727b3d1be3b59d48572ca106a97c322fa39a69636c402840d91786cf7";

#[test]
fn kat_header_v2() {
    let h = v2_header();
    assert_eq!(hex::encode(h.to_bytes()), HEADER_V2_HEX);
    assert_eq!(h.version(), 2);
    assert_eq!(h.hash().to_string(), HEADER_V2_HASH_HEX);
    let back =
        BlockHeader::from_bytes(&hex::decode(HEADER_V2_HEX).unwrap(), &Limits::default()).unwrap();
    assert_eq!(back, h);
    assert_eq!(
        h.to_bytes().len(),
        BlockHeader::encoded_len(&chain()),
        "encoded_len is the v2 length"
    );
}

/// The v1 and v2 layouts of the same fields hash differently (their own domains), and a v2
/// header cut to the v1 length does not read as v1.
#[test]
fn v1_and_v2_headers_do_not_alias() {
    let v2 = v2_header();
    let mut v1 = v2.clone();
    v1.consensus = None;
    assert_ne!(v1.hash(), v2.hash());
    let mut bytes = v2.to_bytes();
    bytes.truncate(bytes.len() - 96);
    let e = BlockHeader::from_bytes(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(e.field, "header.validator_set");
    // Type tag 0x0E with extra bytes after a v1 body is refused too.
    let mut long = v1.to_bytes();
    long.extend([0u8; 96]);
    assert!(matches!(
        BlockHeader::from_bytes(&long, &Limits::default())
            .unwrap_err()
            .reason,
        DecodeReason::TrailingBytes { count: 96 }
    ));
}

fn vote(kind: VoteKind, block: Option<BlockHash>) -> Vote {
    Vote {
        chain_id: chain(),
        height: Height(7),
        round: 2,
        kind,
        block,
        validator: d(0xee),
    }
}

// 01 09 | chain id | height 7 | round 2 | kind (1 prevote, 2 precommit) | 01 block / 00 nil | validator
const PRECOMMIT_HEX: &str = "010900000008676f762d626a2d310000000000000007000000020201aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const NIL_PREVOTE_HEX: &str = "010900000008676f762d626a2d310000000000000007000000020100eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

#[test]
fn kat_votes_and_their_signing_bytes() {
    let pc = vote(VoteKind::Precommit, Some(BlockHash(d(0xaa))));
    assert_eq!(hex::encode(pc.to_bytes()), PRECOMMIT_HEX);
    let nil = vote(VoteKind::Prevote, None);
    assert_eq!(hex::encode(nil.to_bytes()), NIL_PREVOTE_HEX);
    let mut expected = b"GMCHAIN-VOTE-V1\0".to_vec();
    expected.extend(hex::decode(PRECOMMIT_HEX).unwrap());
    assert_eq!(pc.signing_bytes(), expected);
    for v in [pc, nil] {
        assert_eq!(
            Vote::from_bytes(&v.to_bytes(), &Limits::default()).unwrap(),
            v
        );
    }
    // An unknown kind or block marker is refused by name.
    let mut bad = hex::decode(PRECOMMIT_HEX).unwrap();
    bad[2 + 4 + 8 + 8 + 4] = 3;
    let e = Vote::from_bytes(&bad, &Limits::default()).unwrap_err();
    assert_eq!(e.field, "vote.kind");
    let mut bad = hex::decode(PRECOMMIT_HEX).unwrap();
    bad[2 + 4 + 8 + 8 + 4 + 1] = 2;
    assert_eq!(
        Vote::from_bytes(&bad, &Limits::default())
            .unwrap_err()
            .field,
        "vote.block"
    );
}

struct Member {
    signer: SoftSigner,
    id: Digest,
}

fn members(n: usize, seed: u64) -> (Vec<Member>, ValidatorSet) {
    let provider = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
    let ms: Vec<Member> = (0..n)
        .map(|i| {
            let signer = provider.generate().unwrap();
            Member {
                id: crypto_sm::sm3::sm3(&[i as u8]),
                signer,
            }
        })
        .collect();
    let set = ValidatorSet::new(
        ms.iter()
            .map(|m| ValidatorEntry {
                id: m.id,
                public_key: m.signer.public_key(),
                power: 1,
            })
            .collect(),
    )
    .unwrap();
    (ms, set)
}

fn precommit(m: &Member, round: u32, block: BlockHash) -> SignedVote {
    Vote {
        chain_id: chain(),
        height: Height(5),
        round,
        kind: VoteKind::Precommit,
        block: Some(block),
        validator: m.id,
    }
    .sign(&m.signer)
    .unwrap()
}

#[test]
fn quorum_is_more_than_two_thirds() {
    for (n, q) in [(1, 1), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (10, 7)] {
        let (_, set) = members(n, 1);
        assert_eq!(set.quorum(), q, "n = {n}");
    }
}

#[test]
fn a_certificate_needs_a_quorum_of_valid_distinct_precommits() {
    let (ms, set) = members(4, 7);
    let block = BlockHash(d(0x42));
    let votes: Vec<SignedVote> = ms.iter().map(|m| precommit(m, 1, block)).collect();
    let cert = CommitCertificate::from_votes(Height(5), 1, block, &votes[..3]);
    cert.verify(&chain(), Height(5), &block, &set).unwrap();
    // Round trip and hash stability.
    let back = CommitCertificate::from_bytes(&cert.to_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, cert);
    assert_eq!(back.hash(), cert.hash());

    // 2f = 2 precommits are not enough.
    let short = CommitCertificate::from_votes(Height(5), 1, block, &votes[..2]);
    assert!(matches!(
        short.verify(&chain(), Height(5), &block, &set),
        Err(CertificateError::NoQuorum {
            power: 2,
            quorum: 3,
            total: 4
        })
    ));
    // A repeated signer does not count twice.
    let mut dup = cert.clone();
    dup.signatures[2] = dup.signatures[1];
    assert!(matches!(
        dup.verify(&chain(), Height(5), &block, &set),
        Err(CertificateError::Unordered { .. })
    ));
    // A signature from another round does not stand for this round's precommit.
    let mut mixed = cert.clone();
    let signer = ms.iter().find(|m| m.id == mixed.signatures[0].0).unwrap();
    mixed.signatures[0].1 = precommit(signer, 0, block).signature;
    assert!(matches!(
        mixed.verify(&chain(), Height(5), &block, &set),
        Err(CertificateError::BadSignature { .. })
    ));
    // For another block or height.
    assert!(matches!(
        cert.verify(&chain(), Height(5), &BlockHash(d(0x43)), &set),
        Err(CertificateError::WrongBlock { .. })
    ));
    assert!(matches!(
        cert.verify(&chain(), Height(6), &block, &set),
        Err(CertificateError::WrongBlock { .. })
    ));
    // On another chain the signatures do not verify.
    assert!(matches!(
        cert.verify(&ChainId::new("gov-sh-1").unwrap(), Height(5), &block, &set),
        Err(CertificateError::BadSignature { .. })
    ));
    // Signed by validators of another set.
    let (_, other) = members(4, 8);
    assert!(matches!(
        cert.verify(&chain(), Height(5), &block, &other),
        Err(CertificateError::BadSignature { .. }) | Err(CertificateError::UnknownSigner { .. })
    ));
}

#[test]
fn validator_sets_are_canonical() {
    let (_, set) = members(4, 3);
    let bytes = set.to_bytes();
    let back = ValidatorSet::from_bytes(&bytes, &Limits::default()).unwrap();
    assert_eq!(back, set);
    assert_eq!(back.hash(), set.hash());
    // Swapping two entries (out of order) is refused.
    let entry = 32 + 65 + 8;
    let mut swapped = bytes.clone();
    let (a, b) = (6, 6 + entry);
    let first: Vec<u8> = swapped[a..a + entry].to_vec();
    let second: Vec<u8> = swapped[b..b + entry].to_vec();
    swapped[a..a + entry].copy_from_slice(&second);
    swapped[b..b + entry].copy_from_slice(&first);
    assert!(ValidatorSet::from_bytes(&swapped, &Limits::default()).is_err());
    // Zero power, duplicates and empty sets are refused.
    let e = set.validators()[0].clone();
    assert_eq!(
        ValidatorSet::new(vec![]).unwrap_err(),
        ValidatorSetError::Empty
    );
    assert!(matches!(
        ValidatorSet::new(vec![e.clone(), e.clone()]),
        Err(ValidatorSetError::Duplicate { .. })
    ));
    let zero = ValidatorEntry { power: 0, ..e };
    assert!(matches!(
        ValidatorSet::new(vec![zero]),
        Err(ValidatorSetError::BadPower { power: 0, .. })
    ));
}

#[test]
fn proposals_sign_their_own_domain() {
    let (ms, _) = members(1, 9);
    let p = Proposal {
        chain_id: chain(),
        height: Height(3),
        round: 0,
        block: BlockHash(d(0x42)),
        pol_round: Some(0),
        proposer: ms[0].id,
    };
    let sp = p.clone().sign(&ms[0].signer).unwrap();
    sp.verify(&ms[0].signer.public_key()).unwrap();
    assert!(p.signing_bytes().starts_with(b"GMCHAIN-PROPOSAL-V1\0"));
    // A proposal signature is not a vote signature over the same fields.
    let as_vote = SignedVote {
        vote: Vote {
            chain_id: chain(),
            height: Height(3),
            round: 0,
            kind: VoteKind::Prevote,
            block: Some(BlockHash(d(0x42))),
            validator: ms[0].id,
        },
        signature: sp.signature,
    };
    assert!(as_vote.verify(&ms[0].signer.public_key()).is_err());
    let back = types::SignedProposal::from_bytes(&sp.to_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, sp);
}

/// A verified consensus signature is remembered (so a vote is verified once, not at arrival,
/// in consensus, at the decision and in each certificate), but only for the exact key,
/// signature and signed bytes: once the genuine vote is remembered, the same signature on
/// another round, the same vote under another validator's key, another validator's signature
/// on it, or a flipped signature byte still fail, before and after.
#[test]
fn a_remembered_vote_signature_does_not_verify_anything_else() {
    let (ms, _) = members(2, 31);
    let genuine = precommit(&ms[0], 0, BlockHash(d(0x44)));
    let key = ms[0].signer.public_key();
    let forgeries = |v: &SignedVote| {
        let mut other_round = v.clone();
        other_round.vote.round = 1;
        let mut other_signer = v.clone();
        other_signer.signature = precommit(&ms[1], 0, BlockHash(d(0x44))).signature;
        let mut raw = v.signature.to_raw();
        raw[63] ^= 1;
        let mut flipped = v.clone();
        flipped.signature = crypto::Signature::from_raw(&raw).unwrap();
        [
            other_round.verify(&key),
            other_signer.verify(&key),
            flipped.verify(&key),
            v.verify(&ms[1].signer.public_key()),
        ]
    };
    for r in forgeries(&genuine) {
        assert!(r.is_err());
    }
    for _ in 0..3 {
        genuine.verify(&key).unwrap();
        types::verify_consensus_signature(&key, &genuine.vote.signing_bytes(), &genuine.signature)
            .unwrap();
    }
    for r in forgeries(&genuine) {
        assert!(r.is_err(), "a remembered signature verified something else");
    }
}
