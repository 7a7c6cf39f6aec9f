//! The ledger on the in-memory backend: one validator proposes, others verify the same block
//! and reach the same state; commits need a quorum certificate for exactly that block; every
//! refusal of a proposed block names what was wrong and changes nothing.

use std::sync::Arc;

use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{Genesis, RejectCode};
use ledger::{BlockRefusal, Ledger, LedgerError, TimeRule};
use pki::{
    Certificate, IssueRequest, Role, Serial, UnixTime, Validity, issue, issue_crl, issue_root,
};
use storage::{ChainStore, MemBackend};
use types::{
    Block, BlockHash, Call, ChainId, CommitCertificate, Decode, Encode, Height, Limits, SignedTx,
    Transaction, Vote, VoteKind,
};

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const CHAIN: &str = "gov-bj-1";
/// Block 0's time: one day after T0, in ms.
const GENESIS_MS: u64 = (T0 + DAY) * 1000;

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

struct Member {
    key: SoftSigner,
    cert: Certificate,
}

struct Fixture {
    genesis: Genesis,
    validators: Vec<Member>,
    user: Member,
}

fn fixture(n_validators: usize) -> Fixture {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(42)));
    let validity = |to| Validity {
        not_before: t(0),
        not_after: t(to),
    };
    let root_key = p.generate().unwrap();
    let root = issue_root(
        "GMChain Root CA",
        "GMChain Consortium",
        Serial::from_hex("01").unwrap(),
        validity(3650),
        &root_key,
    )
    .unwrap();
    let mut serial = 0x100u64;
    let mut leaf = |role: Role, cn: &str| {
        serial += 1;
        let key = p.generate().unwrap();
        let cert = issue(
            &root,
            &root_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "GMChain Consortium",
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&serial.to_be_bytes()[6..]).unwrap(),
                validity: validity(365),
            },
        )
        .unwrap();
        Member { key, cert }
    };
    let validators: Vec<Member> = (0..n_validators)
        .map(|i| leaf(Role::NodeSign, &format!("node-{i}")))
        .collect();
    let user = leaf(Role::User, "alice");
    let crl = issue_crl(&root, &root_key, 1, t(0), t(60), &[]).unwrap();
    let json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": GENESIS_MS,
        "params": { "expiry_window": 100, "max_txs_per_block": 2000, "max_tx_size": 131072 },
        "organisations": [
            { "name": "GMChain Consortium", "ca_cert": root.to_pem(), "crl": crl.to_pem() },
        ],
        "validators": validators.iter().enumerate()
            .map(|(i, v)| serde_json::json!({ "name": format!("node-{i}"), "cert": v.cert.to_pem() }))
            .collect::<Vec<_>>(),
    });
    Fixture {
        genesis: Genesis::from_json(json.to_string().as_bytes()).unwrap(),
        validators,
        user,
    }
}

fn open(genesis: &Genesis) -> Ledger<MemBackend> {
    let store = ChainStore::new(MemBackend::new(), genesis.params.limits());
    ledger::init(&store, genesis).unwrap();
    Ledger::open(store, genesis.clone()).unwrap()
}

/// An attestation of `digest_byte` by `m`, salted by `salt`.
fn anchor(m: &Member, salt: u8, digest_byte: u8) -> Vec<u8> {
    let body = Transaction {
        fuel_limit: None,
        chain_id: ChainId::new(CHAIN).unwrap(),
        salt: [salt; 16],
        expiry: Height(50),
        sender: types::Sender::Certificate(m.cert.der().to_vec()),
        call: Call {
            contract: "attestation".into(),
            method: "anchor".into(),
            args: vec![
                vec![digest_byte; 32],
                b"contract.pdf".to_vec(),
                "合同 v1".as_bytes().to_vec(),
                vec![0xe5; 20],
            ],
        },
    };
    SignedTx::sign(body, &m.key, &UserId::default())
        .unwrap()
        .to_bytes()
}

fn admit_all(l: &Ledger<MemBackend>, txs: &[Vec<u8>]) -> Vec<execution::VerifiedTx> {
    txs.iter()
        .map(|b| l.admit(b, t(2), &|_| false).unwrap())
        .collect()
}

/// Precommits of `signers` for `hash` at `height`, as a certificate.
fn certificate(
    f: &Fixture,
    signers: &[usize],
    height: Height,
    round: u32,
    hash: BlockHash,
) -> CommitCertificate {
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            Vote {
                chain_id: ChainId::new(CHAIN).unwrap(),
                height,
                round,
                kind: VoteKind::Precommit,
                block: Some(hash),
                validator: f.validators[i].cert.fingerprint(),
            }
            .sign(&f.validators[i].key)
            .unwrap()
        })
        .collect();
    CommitCertificate::from_votes(height, round, hash, &votes)
}

fn now_after_genesis(secs: u64) -> u64 {
    GENESIS_MS + secs * 1000
}

fn live(now_ms: u64) -> TimeRule {
    TimeRule::Live {
        now_ms,
        bound_ms: ledger::DEFAULT_TIME_BOUND_MS,
    }
}

#[test]
fn a_proposed_block_verifies_on_other_validators_and_commits_everywhere_alike() {
    let f = fixture(4);
    let (a, b) = (open(&f.genesis), open(&f.genesis));
    let txs: Vec<Vec<u8>> = (0..3).map(|i| anchor(&f.user, i, i + 1)).collect();
    let now = now_after_genesis(10);
    let proposer = f.validators[0].cert.fingerprint();
    let p = a.propose(admit_all(&a, &txs), proposer, now).unwrap();
    assert!(p.dropped.is_empty());
    assert_eq!(p.executed.block().txs.len(), 3);
    let links = p.executed.block().header.consensus.unwrap();
    assert_eq!(
        links.validator_set,
        f.genesis.validator_set().unwrap().hash()
    );
    assert_eq!(
        links.last_commit,
        types::ConsensusLinks::NO_PARENT_CERTIFICATE
    );

    // B verifies A's block from its bytes, as it would arrive.
    let block = Block::from_bytes(&p.executed.block().to_bytes(), &Limits::default()).unwrap();
    let vb = b.verify(block, live(now + 500), None).unwrap();
    assert_eq!(vb.hash(), p.executed.hash());

    let cert = certificate(&f, &[0, 1, 2], Height(1), 0, vb.hash());
    let ha = a.commit(p.executed, cert.clone()).unwrap();
    let hb = b.commit(vb, cert.clone()).unwrap();
    assert_eq!(ha.header, hb.header);
    assert_eq!(
        a.store().certificate(Height(1)).unwrap(),
        Some(cert.clone())
    );

    // Height 2 commits to height 1's certificate.
    let p2 = a
        .propose(
            admit_all(&a, &[anchor(&f.user, 9, 9)]),
            proposer,
            now + 1000,
        )
        .unwrap();
    assert_eq!(
        p2.executed.block().header.consensus.unwrap().last_commit,
        cert.hash()
    );
    let v2 = b
        .verify(p2.executed.block().clone(), live(now + 1000), None)
        .unwrap();
    assert_eq!(v2.hash(), p2.executed.hash());

    // A store without block 0 is refused.
    let reopened = Ledger::open(
        ChainStore::new(MemBackend::new(), Limits::default()),
        f.genesis.clone(),
    );
    assert!(matches!(reopened, Err(LedgerError::EmptyStore)));
}

#[test]
fn commit_needs_a_quorum_certificate_for_exactly_this_block() {
    let f = fixture(4);
    let a = open(&f.genesis);
    let now = now_after_genesis(10);
    let proposer = f.validators[1].cert.fingerprint();
    let p = a
        .propose(admit_all(&a, &[anchor(&f.user, 1, 1)]), proposer, now)
        .unwrap();
    let hash = p.executed.hash();
    // 2f = 2 of 4: no quorum.
    let short = certificate(&f, &[0, 1], Height(1), 0, hash);
    let e = a.commit(p.executed.clone(), short).unwrap_err();
    assert!(
        matches!(
            e,
            LedgerError::Certificate {
                source: types::CertificateError::NoQuorum {
                    power: 2,
                    quorum: 3,
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
    // A quorum for another block.
    let other = certificate(&f, &[0, 1, 2], Height(1), 0, BlockHash(Digest([7; 32])));
    assert!(a.commit(p.executed.clone(), other).is_err());
    // Nothing was written.
    assert_eq!(a.head().tip.height, Height(0));
    assert_eq!(a.store().tip().unwrap().unwrap().height, Height(0));
    // The right one commits.
    a.commit(p.executed, certificate(&f, &[1, 2, 3], Height(1), 0, hash))
        .unwrap();
    assert_eq!(a.head().tip.height, Height(1));
}

/// Each kind of bad block is refused with its own reason, and the verifier's store is
/// unchanged.
#[test]
fn verify_refuses_bad_blocks_naming_what_was_wrong() {
    let f = fixture(4);
    let (a, b) = (open(&f.genesis), open(&f.genesis));
    let now = now_after_genesis(10);
    let proposer = f.validators[0].cert.fingerprint();
    let good = a
        .propose(
            admit_all(&a, &[anchor(&f.user, 1, 1), anchor(&f.user, 2, 2)]),
            proposer,
            now,
        )
        .unwrap()
        .executed
        .block()
        .clone();
    let fix = |b: &mut Block| b.header.tx_root = b.tx_root();
    let check = |mut edit: Box<dyn FnMut(&mut Block)>, time: TimeRule, expect: &str| {
        let mut blk = good.clone();
        edit(&mut blk);
        let e = b.verify(blk, time, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(expect),
            "expected {expect:?} in {msg:?} ({e:?})"
        );
    };
    check(
        Box::new(|b| b.header.state_root = Digest([1; 32])),
        live(now),
        "state_root",
    );
    check(
        Box::new(|b| b.header.receipts_root = Digest([1; 32])),
        live(now),
        "receipts_root",
    );
    check(
        Box::new(|b| b.header.tx_root = Digest([1; 32])),
        live(now),
        "tx_root",
    );
    check(
        Box::new(|b| b.header.height = Height(2)),
        live(now),
        "height 2, the next height is 1",
    );
    check(
        Box::new(|b| b.header.parent = BlockHash(Digest([3; 32]))),
        live(now),
        "is not the head",
    );
    check(
        Box::new(|b| b.header.consensus = None),
        live(now),
        "version-1 header",
    );
    check(
        Box::new(|b| b.header.consensus.as_mut().unwrap().validator_set = Digest([4; 32])),
        live(now),
        "validator set",
    );
    check(
        Box::new(|b| b.header.consensus.as_mut().unwrap().last_commit = Digest([4; 32])),
        live(now),
        "last_commit",
    );
    check(
        Box::new(|b| b.header.proposer = Digest([5; 32])),
        live(now),
        "not a validator",
    );
    // Time: not after the parent, or too far from our clock (either way), unless decided.
    check(
        Box::new(|b| b.header.timestamp = types::Timestamp(GENESIS_MS)),
        TimeRule::Decided,
        "not after the parent",
    );
    check(Box::new(|_| {}), live(now + 2_001), "more than 2000 ms");
    check(Box::new(|_| {}), live(now - 2_001), "more than 2000 ms");
    b.verify(good.clone(), live(now + 2_000), None).unwrap();
    b.verify(good.clone(), TimeRule::Decided, None).unwrap();
    // A transaction with a broken signature; a duplicate in the block.
    check(
        Box::new(move |b| {
            let mut sig = b.txs[1].signature;
            sig = crypto::Signature::from_scalars(*sig.r(), [1; 32]);
            b.txs[1].signature = sig;
            fix(b);
        }),
        live(now),
        "transaction 1",
    );
    check(
        Box::new(move |b| {
            b.txs[1] = b.txs[0].clone();
            fix(b);
        }),
        live(now),
        "appears earlier in the block",
    );
    assert_eq!(b.head().tip.height, Height(0));
    assert_eq!(b.store().tip().unwrap().unwrap().height, Height(0));
}

/// A transaction already on the chain is refused in a later block even though it never sat
/// in the verifier's pool; the proposer drops it from its candidates.
#[test]
fn a_replayed_transaction_is_refused_and_dropped() {
    let f = fixture(1);
    let (a, b) = (open(&f.genesis), open(&f.genesis));
    let now = now_after_genesis(10);
    let proposer = f.validators[0].cert.fingerprint();
    let tx = anchor(&f.user, 1, 1);
    let verified = admit_all(&a, std::slice::from_ref(&tx));
    let p = a.propose(verified.clone(), proposer, now).unwrap();
    let vb = b
        .verify(p.executed.block().clone(), live(now), None)
        .unwrap();
    let cert = certificate(&f, &[0], Height(1), 0, p.executed.hash());
    a.commit(p.executed.clone(), cert.clone()).unwrap();
    b.commit(vb, cert).unwrap();
    // The same (already admitted) transaction offered again: dropped with its code.
    let p2 = a.propose(verified, proposer, now + 1000).unwrap();
    assert_eq!(p2.executed.block().txs.len(), 0);
    assert_eq!(p2.dropped.len(), 1);
    assert_eq!(p2.dropped[0].1.code, RejectCode::Duplicate);
    // A block that carries it anyway is refused by the verifier.
    let mut replay = p.executed.block().clone();
    replay.header.height = Height(2);
    replay.header.parent = b.head().tip.hash;
    replay.header.timestamp = types::Timestamp(now + 1000);
    replay.header.consensus.as_mut().unwrap().last_commit = b.head().certificate.unwrap().hash();
    let e = b.verify(replay, live(now + 1000), None).unwrap_err();
    assert!(
        matches!(&e, BlockRefusal::Transaction { position: 0, rejection } if rejection.code == RejectCode::Duplicate),
        "{e}"
    );
}

/// A proposer whose clock is behind its parent's timestamp still proposes a later time.
#[test]
fn a_proposal_is_always_after_its_parent() {
    let f = fixture(1);
    let a = open(&f.genesis);
    let p = a
        .propose(
            admit_all(&a, &[anchor(&f.user, 1, 1)]),
            f.validators[0].cert.fingerprint(),
            GENESIS_MS - 5_000,
        )
        .unwrap();
    assert_eq!(p.executed.block().header.timestamp.0, GENESIS_MS + 1);
}

/// Honest validators may commit one block with different quorums of precommits; the next
/// header names one of them, which travels beside the block: a verifier holding another
/// quorum accepts it if it decides the parent, and keeps that one from then on. A "parent
/// certificate" that is no quorum is refused.
#[test]
fn the_next_header_picks_one_of_several_valid_parent_certificates() {
    let f = fixture(4);
    let (a, b) = (open(&f.genesis), open(&f.genesis));
    let now = now_after_genesis(10);
    let proposer = f.validators[0].cert.fingerprint();
    let p = a
        .propose(admit_all(&a, &[anchor(&f.user, 1, 1)]), proposer, now)
        .unwrap();
    let vb = b
        .verify(p.executed.block().clone(), live(now), None)
        .unwrap();
    let cert_a = certificate(&f, &[0, 1, 2], Height(1), 0, vb.hash());
    let cert_b = certificate(&f, &[1, 2, 3], Height(1), 0, vb.hash());
    a.commit(p.executed, cert_a.clone()).unwrap();
    b.commit(vb, cert_b.clone()).unwrap();
    // A proposes height 2 over its own certificate.
    let p2 = a
        .propose(
            admit_all(&a, &[anchor(&f.user, 2, 2)]),
            proposer,
            now + 1000,
        )
        .unwrap();
    let block = p2.executed.block().clone();
    let e = b.verify(block.clone(), live(now + 1000), None).unwrap_err();
    assert!(matches!(e, BlockRefusal::LastCommit { .. }), "{e}");
    // A forged parent certificate with the right hash cannot exist; one that is no quorum
    // (two precommits) is refused even if the header named it.
    let short = certificate(&f, &[0, 1], Height(1), 0, a.head().tip.hash);
    let e = b
        .verify(block.clone(), live(now + 1000), Some(&short))
        .unwrap_err();
    assert!(matches!(e, BlockRefusal::LastCommit { .. }), "{e}");
    // With A's certificate: verified, and B keeps A's certificate for height 1.
    let v2 = b.verify(block, live(now + 1000), Some(&cert_a)).unwrap();
    let cert2 = certificate(&f, &[0, 1, 2], Height(2), 0, v2.hash());
    b.commit(v2, cert2).unwrap();
    assert_eq!(b.store().certificate(Height(1)).unwrap(), Some(cert_a));
    assert_ne!(
        cert_b.hash(),
        b.store().certificate(Height(1)).unwrap().unwrap().hash()
    );
}
