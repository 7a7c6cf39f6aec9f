//! Integration tests of the `receipt` crate over a generated consortium (root CA → agency CA →
//! user and validator certificates, with CRLs) and sealed blocks: the happy path for several
//! positions, the file round trip, and one test per check that alters exactly the part that
//! check covers and expects that check's code.

use std::sync::Arc;

use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm3::sm3;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::{
    Certificate, Consortium, ConsortiumAnchor, Crl, IssueRequest, RevocationReason, RevokedEntry,
    Role, Serial, Sponsorship, TrustAnchor, UnixTime, Validity, issue, issue_crl, issue_root,
};
use receipt::{Finality, Malformation, ReceiptBundle, ReceiptError, TrustContext, VerifiedReceipt};
use types::merkle::{self, InclusionProof};
use types::{
    Block, BlockHash, BlockHeader, BlockSeal, Call, ChainId, Encode, Event, Height, Limits,
    Receipt, Sender, SignedTx, Status, Timestamp, Transaction,
};

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const CHAIN: &str = "gov-bj-1";

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

fn v(from: u64, to: u64) -> Validity {
    Validity {
        not_before: t(from),
        not_after: t(to),
    }
}

/// The block time: day 30, in ms.
fn block_time() -> Timestamp {
    Timestamp(t(30).0 * 1000)
}

struct World {
    p: SoftwareProvider,
    root_key: SoftSigner,
    root: Certificate,
    agency_key: SoftSigner,
    agency: Certificate,
    validator_key: SoftSigner,
    validator: Certificate,
    validator2_key: SoftSigner,
    validator2: Certificate,
    alice_key: SoftSigner,
    alice: Certificate,
    bob: Certificate,
    serial: std::cell::Cell<u8>,
}

/// The test consortium: the root sponsors Agency A, whose CA certifies every identity.
fn consortium(root: &Certificate) -> Consortium {
    Consortium::new(vec![ConsortiumAnchor {
        anchor: TrustAnchor::new(root.clone()),
        sponsors: Sponsorship::Listed(vec!["Agency A".into()]),
    }])
    .unwrap()
}

impl World {
    fn new(seed: u64) -> World {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let root_key = p.generate().unwrap();
        let root = issue_root(
            "GMChain Root CA",
            "GMChain Consortium",
            Serial::from_hex("01").unwrap(),
            v(0, 3650),
            &root_key,
        )
        .unwrap();
        let agency_key = p.generate().unwrap();
        let agency = issue(
            &root,
            &root_key,
            &IssueRequest {
                role: Role::AgencyCa,
                common_name: "Agency A CA",
                organisation: "Agency A",
                public_key: &agency_key.public_key(),
                serial: Serial::from_hex("02").unwrap(),
                validity: v(0, 1825),
            },
        )
        .unwrap();
        let serial = std::cell::Cell::new(0x10);
        let leaf = |key: &SoftSigner, role: Role, cn: &str| {
            issue_leaf(&agency, &agency_key, &serial, &key.public_key(), role, cn)
        };
        let validator_key = p.generate().unwrap();
        let validator = leaf(&validator_key, Role::NodeSign, "node-1");
        let validator2_key = p.generate().unwrap();
        let validator2 = leaf(&validator2_key, Role::NodeSign, "node-2");
        let alice_key = p.generate().unwrap();
        let alice = leaf(&alice_key, Role::User, "alice");
        let bob = leaf(&p.generate().unwrap(), Role::User, "bob");
        World {
            p,
            root_key,
            root,
            agency_key,
            agency,
            validator_key,
            validator,
            validator2_key,
            validator2,
            alice_key,
            alice,
            bob,
            serial,
        }
    }

    /// A leaf from the agency CA, valid from day 1 to day 365.
    fn leaf(&self, key: &crypto::PublicKey, role: Role, cn: &str) -> Certificate {
        issue_leaf(&self.agency, &self.agency_key, &self.serial, key, role, cn)
    }

    /// The root's CRL (for the agency CA) and the agency's (for leaves), current on days 0-59.
    fn crls(&self, revoked: &[RevokedEntry]) -> Vec<Crl> {
        vec![
            issue_crl(&self.root, &self.root_key, 1, t(0), t(60), &[]).unwrap(),
            issue_crl(&self.agency, &self.agency_key, 7, t(0), t(60), revoked).unwrap(),
        ]
    }

    fn trust(&self) -> TrustContext {
        TrustContext {
            chain_id: ChainId::new(CHAIN).unwrap(),
            validators: vec![self.validator.clone()],
            consortium: consortium(&self.root),
        }
    }

    fn chain(&self) -> Vec<Certificate> {
        vec![self.alice.clone(), self.agency.clone()]
    }

    /// Alice's transaction `i`: anchors `document(i)`. Even ones name her registered
    /// certificate, odd ones carry it.
    fn anchor_tx(&self, i: usize) -> SignedTx {
        let sender = if i.is_multiple_of(2) {
            Sender::Registered(self.alice.fingerprint())
        } else {
            Sender::Certificate(self.alice.der().to_vec())
        };
        self.tx(
            i,
            sender,
            Call {
                contract: "attestation".into(),
                method: "anchor".into(),
                args: vec![
                    sm3(&document(i)).0.to_vec(),
                    b"contract".to_vec(),
                    format!("{{\"n\":{i}}}").into_bytes(),
                    format!("archive://box/{i}").into_bytes(),
                ],
            },
        )
    }

    fn tx(&self, i: usize, sender: Sender, call: Call) -> SignedTx {
        let mut salt = [0x5a; 16];
        salt[0] = u8::try_from(i).unwrap();
        let body = Transaction {
            fuel_limit: None,
            chain_id: ChainId::new(CHAIN).unwrap(),
            salt,
            expiry: Height(100),
            sender,
            call,
        };
        SignedTx::sign(body, &self.alice_key, &UserId::default()).unwrap()
    }

    /// A block at height 42 holding `txs`, with the given receipts and roots computed from
    /// both; proposed by the first validator.
    fn block(&self, txs: Vec<SignedTx>, receipts: &[Receipt]) -> Block {
        let mut block = Block {
            header: BlockHeader {
                chain_id: ChainId::new(CHAIN).unwrap(),
                height: Height(42),
                tx_count: u32::try_from(txs.len()).unwrap(),
                parent: BlockHash(Digest([0x07; 32])),
                tx_root: Digest([0; 32]),
                state_root: Digest([0x33; 32]),
                receipts_root: types::receipts_root(receipts),
                timestamp: block_time(),
                proposer: self.validator.fingerprint(),
                consensus: None,
            },
            txs,
        };
        block.header.tx_root = block.tx_root();
        block
    }

    fn seal(&self, header: &BlockHeader) -> BlockSeal {
        BlockSeal::sign(
            header.hash(),
            self.validator.fingerprint(),
            &self.validator_key,
        )
        .unwrap()
    }

    /// A sealed block of `n` anchorings, all successful.
    fn anchor_block(&self, n: usize) -> (Block, Vec<Receipt>) {
        let txs: Vec<SignedTx> = (0..n).map(|i| self.anchor_tx(i)).collect();
        let receipts: Vec<Receipt> = txs.iter().map(success).collect();
        (self.block(txs, &receipts), receipts)
    }

    /// The receipt of position `pos` in `block`, with Alice's chain and the CRLs.
    fn bundle(&self, block: &Block, receipts: &[Receipt], pos: u32) -> ReceiptBundle {
        ReceiptBundle::build(
            block,
            receipts,
            pos,
            Finality::Seal(self.seal(&block.header)),
            self.chain(),
            self.crls(&[]),
        )
        .unwrap()
    }

    /// The receipt of position 1 in a block of 3 anchorings.
    fn standard(&self) -> ReceiptBundle {
        let (block, receipts) = self.anchor_block(3);
        self.bundle(&block, &receipts, 1)
    }
}

/// A leaf from `agency`, valid from day 1 to day 365, with the next serial.
fn issue_leaf(
    agency: &Certificate,
    agency_key: &SoftSigner,
    serial: &std::cell::Cell<u8>,
    key: &crypto::PublicKey,
    role: Role,
    cn: &str,
) -> Certificate {
    let s = serial.get();
    serial.set(s + 1);
    issue(
        agency,
        agency_key,
        &IssueRequest {
            role,
            common_name: cn,
            organisation: "Agency A",
            public_key: key,
            serial: Serial::from_bytes(&[s]).unwrap(),
            validity: v(1, 365),
        },
    )
    .unwrap()
}

fn document(i: usize) -> Vec<u8> {
    format!("合同第{i}号: the parties agree …").into_bytes()
}

fn success(tx: &SignedTx) -> Receipt {
    Receipt {
        fuel_used: Some(1_000),
        output: vec![0x0a, 0x0b],
        tx_id: tx.tx_id(),
        status: Status::Success,
        events: vec![Event {
            topics: vec![b"doc".to_vec()],
            contract: "attestation".into(),
            name: "anchored".into(),
            data: tx.tx.call.args[0].clone(),
        }],
    }
}

/// The code of the error `r` must be.
#[track_caller]
fn code(r: Result<VerifiedReceipt, ReceiptError>) -> &'static str {
    match r {
        Ok(v) => panic!("verified, but should have failed: {v:?}"),
        Err(e) => {
            // Every message names a part and is printable on its own.
            assert!(!e.to_string().is_empty());
            e.code().name
        }
    }
}

#[track_caller]
fn parse_err(bytes: &[u8]) -> ReceiptError {
    ReceiptBundle::from_json(bytes, &Limits::default()).unwrap_err()
}

fn flip(d: &mut Digest) {
    d.0[0] ^= 0x01;
}

// ---------------------------------------------------------------------------------------------
// The happy path

#[test]
fn multi_tx_block_verifies_at_several_positions() {
    let w = World::new(1);
    let (block, receipts) = w.anchor_block(5);
    for pos in [0u32, 3, 4] {
        let b = w.bundle(&block, &receipts, pos);
        let i = usize::try_from(pos).unwrap();
        let doc = document(i);
        let ok = b.verify(&w.trust(), Some(&doc)).unwrap();
        assert_eq!(ok.tx_id, block.txs[i].tx_id());
        assert_eq!(ok.height, Height(42));
        assert_eq!(ok.block_hash, block.header.hash());
        assert_eq!(ok.timestamp_ms, block_time().0);
        assert_eq!(ok.signer_subject, w.alice.subject());
        assert_eq!(ok.organisation, "Agency A");
        assert_eq!(ok.validator, w.validator.subject());
        assert_eq!(ok.call, "attestation.anchor");
        assert_eq!(ok.document_digest, Some(sm3(&doc)));
        assert_eq!(ok.anchored_digest, Some(sm3(&doc)));
        // The version 2 result's fuel, output and events (with topics) are what it proves.
        assert_eq!(ok.fuel_used, Some(1_000));
        assert_eq!(ok.output, vec![0x0a, 0x0b]);
        assert_eq!(ok.events, receipts[i].events);
        assert_eq!(ok.events[0].topics, vec![b"doc".to_vec()]);
        // Without a document: the same facts, no document checked.
        let ok = b.verify(&w.trust(), None).unwrap();
        assert_eq!(ok.document_digest, None);
        assert_eq!(ok.anchored_digest, Some(sm3(&doc)));
    }
}

#[test]
fn single_tx_block_has_empty_paths_and_verifies() {
    let w = World::new(2);
    let (block, receipts) = w.anchor_block(1);
    let b = w.bundle(&block, &receipts, 0);
    assert!(b.tx_proof.path.is_empty() && b.receipt_proof.path.is_empty());
    b.verify(&w.trust(), Some(&document(0))).unwrap();
}

#[test]
fn other_calls_verify_without_a_document() {
    let w = World::new(3);
    let tx = w.tx(
        0,
        Sender::Registered(w.alice.fingerprint()),
        Call {
            contract: "registry".into(),
            method: "put".into(),
            args: vec![b"k".to_vec(), b"v".to_vec()],
        },
    );
    let txs = vec![tx, w.anchor_tx(1)];
    let receipts: Vec<Receipt> = txs.iter().map(success).collect();
    let block = w.block(txs, &receipts);
    let b = w.bundle(&block, &receipts, 0);
    let ok = b.verify(&w.trust(), None).unwrap();
    assert_eq!(ok.call, "registry.put");
    assert_eq!(ok.anchored_digest, None);
    // The same receipt with a document: it anchors none.
    assert_eq!(
        code(b.verify(&w.trust(), Some(b"anything"))),
        "RECEIPT_NOT_AN_ATTESTATION"
    );
}

#[test]
fn json_round_trip() {
    let w = World::new(4);
    let b = w.standard();
    let text = b.to_json();
    let back = ReceiptBundle::from_json(text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.to_json(), text, "writing is deterministic");
    back.verify(&w.trust(), Some(&document(1))).unwrap();
    // The documented shape: format tag and version first, then the fields in order.
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "format",
        "version",
        "header",
        "seal",
        "position",
        "tx",
        "tx_proof",
        "receipt",
        "receipt_proof",
        "chain",
        "crls",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(value["format"], "gmchain-receipt");
    assert_eq!(value["version"], 1);
    assert_eq!(value["position"], 1);
    assert_eq!(value["header"], hex::encode(b.header.to_bytes()));
    assert!(
        value["chain"][0]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        value["crls"][0]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN X509 CRL-----")
    );
}

// ---------------------------------------------------------------------------------------------
// One altered part per check

#[test]
fn altered_document_byte_is_document_mismatch() {
    let w = World::new(5);
    let b = w.standard();
    let mut doc = document(1);
    doc[3] ^= 0x01;
    let e = b.verify(&w.trust(), Some(&doc)).unwrap_err();
    assert_eq!(e.code(), "RECEIPT_DOCUMENT_MISMATCH");
    assert_eq!(
        e,
        ReceiptError::DocumentMismatch {
            anchored: sm3(&document(1)),
            document: sm3(&doc)
        }
    );
    let msg = e.to_string();
    assert!(msg.contains(&sm3(&document(1)).to_hex()) && msg.contains(&sm3(&doc).to_hex()));
    // Another position's document is another document.
    assert_eq!(
        code(b.verify(&w.trust(), Some(&document(0)))),
        "RECEIPT_DOCUMENT_MISMATCH"
    );
}

#[test]
fn wrong_chain_id() {
    let w = World::new(6);
    let b = w.standard();
    let mut trust = w.trust();
    trust.chain_id = ChainId::new("gov-sh-1").unwrap();
    let e = b.verify(&trust, None).unwrap_err();
    assert_eq!(e.code(), "RECEIPT_WRONG_CHAIN");
    assert!(matches!(e, ReceiptError::WrongChain { part: "header", .. }));

    // A transaction of another chain in a block of this one.
    let mut foreign = w.anchor_tx(0).tx;
    foreign.chain_id = ChainId::new("gov-sh-1").unwrap();
    let foreign = SignedTx::sign(foreign, &w.alice_key, &UserId::default()).unwrap();
    let receipts = vec![success(&foreign)];
    let block = w.block(vec![foreign], &receipts);
    let b = w.bundle(&block, &receipts, 0);
    let e = b.verify(&w.trust(), None).unwrap_err();
    assert!(
        matches!(
            e,
            ReceiptError::WrongChain {
                part: "transaction",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn altered_header_fields_fail_the_seal() {
    let w = World::new(7);
    let b = w.standard();
    type Alteration = (&'static str, fn(&mut BlockHeader));
    let alterations: [Alteration; 6] = [
        ("timestamp", |h| h.timestamp.0 += 1),
        ("state_root", |h| flip(&mut h.state_root)),
        ("height", |h| h.height.0 += 1),
        ("parent", |h| flip(&mut h.parent.0)),
        ("tx_root", |h| flip(&mut h.tx_root)),
        ("receipts_root", |h| flip(&mut h.receipts_root)),
    ];
    for (name, alter) in alterations {
        let mut x = b.clone();
        alter(&mut x.header);
        assert_eq!(
            code(x.verify(&w.trust(), None)),
            "RECEIPT_SEAL_OTHER_BLOCK",
            "{name}"
        );
    }
}

#[test]
fn seal_by_a_non_validator_key() {
    let w = World::new(8);
    let b = w.standard();
    // A node certificate from the same CA, but not a genesis validator.
    let rogue_key = w.p.generate().unwrap();
    let rogue = w.leaf(&rogue_key.public_key(), Role::NodeSign, "rogue");
    let mut x = b.clone();
    x.finality =
        Finality::Seal(BlockSeal::sign(x.header.hash(), rogue.fingerprint(), &rogue_key).unwrap());
    assert_eq!(
        code(x.verify(&w.trust(), None)),
        "RECEIPT_SEAL_UNKNOWN_VALIDATOR"
    );
    // The rogue key claiming to be the validator.
    let mut x = b.clone();
    x.finality = Finality::Seal(
        BlockSeal::sign(x.header.hash(), w.validator.fingerprint(), &rogue_key).unwrap(),
    );
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_SEAL_SIGNATURE");
    // An altered signature.
    let mut x = b.clone();
    let Finality::Seal(seal) = &mut x.finality else {
        panic!("a v1 bundle")
    };
    let sig = seal.signature.to_raw();
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    r[31] ^= 0x01;
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    seal.signature = crypto::Signature::from_scalars(r, s);
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_SEAL_SIGNATURE");
}

#[test]
fn seal_by_a_validator_that_is_not_the_proposer() {
    let w = World::new(9);
    // A single-validator genesis naming validator2: the seal is by the genesis validator, but
    // the header was proposed by another.
    let mut trust = w.trust();
    trust.validators = vec![w.validator2.clone()];
    let mut b = w.standard();
    b.finality = Finality::Seal(
        BlockSeal::sign(
            b.header.hash(),
            w.validator2.fingerprint(),
            &w.validator2_key,
        )
        .unwrap(),
    );
    assert_eq!(code(b.verify(&trust, None)), "RECEIPT_SEAL_NOT_PROPOSER");
}

/// Review finding C1 on issue 13: a version-1 seal is one validator's signature; against a
/// genesis of several validators it proves nothing and is refused, however genuine.
#[test]
fn a_seal_is_not_final_against_a_consortium_genesis() {
    let w = World::new(19);
    let b = w.standard();
    b.verify(&w.trust(), None).unwrap();
    let mut trust = w.trust();
    trust.validators.push(w.validator2.clone());
    let e = b.verify(&trust, None).unwrap_err();
    assert_eq!(e.code(), "RECEIPT_FINALITY_FORMAT");
    assert!(e.to_string().contains("names 2 validators"), "{e}");
}

#[test]
fn seal_over_another_block() {
    let w = World::new(10);
    let b = w.standard();
    let mut other = b.header.clone();
    other.height = Height(43);
    let mut x = b.clone();
    x.finality = Finality::Seal(w.seal(&other));
    let e = x.verify(&w.trust(), None).unwrap_err();
    assert_eq!(
        e,
        ReceiptError::SealOtherBlock {
            sealed: other.hash(),
            header: b.header.hash()
        }
    );
    assert_eq!(e.code(), "RECEIPT_SEAL_OTHER_BLOCK");
}

#[test]
fn altered_tx_proof_hash() {
    let w = World::new(11);
    let (block, receipts) = w.anchor_block(5);
    let b = w.bundle(&block, &receipts, 3);
    for i in 0..b.tx_proof.path.len() {
        let mut x = b.clone();
        flip(&mut x.tx_proof.path[i]);
        assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_TX_NOT_IN_BLOCK");
    }
    // A path too short or too long.
    let mut x = b.clone();
    x.tx_proof.path.pop();
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_TX_NOT_IN_BLOCK");
    let mut x = b.clone();
    x.tx_proof.path.push(Digest([0; 32]));
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_TX_NOT_IN_BLOCK");
}

#[test]
fn altered_transaction() {
    let w = World::new(12);
    let b = w.standard();
    let mut x = b.clone();
    x.tx.tx.call.args[3] = b"archive://elsewhere".to_vec();
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_TX_NOT_IN_BLOCK");
    // Another transaction of the same block, re-signed validly: not at this position.
    let mut x = b.clone();
    x.tx = w.anchor_tx(2);
    assert_eq!(code(x.verify(&w.trust(), None)), "RECEIPT_TX_NOT_IN_BLOCK");
}

#[test]
fn altered_receipt_proof_hash() {
    let w = World::new(13);
    let (block, receipts) = w.anchor_block(5);
    let b = w.bundle(&block, &receipts, 4);
    for i in 0..b.receipt_proof.path.len() {
        let mut x = b.clone();
        flip(&mut x.receipt_proof.path[i]);
        assert_eq!(
            code(x.verify(&w.trust(), None)),
            "RECEIPT_RESULT_NOT_IN_BLOCK"
        );
    }
    // An altered result: its hash is not in the tree. So is one with an event's topic, its
    // fuel or its output changed (version 2 receipts, issue 14).
    let mut x = b.clone();
    x.receipt.events[0].data[0] ^= 0x01;
    assert_eq!(
        code(x.verify(&w.trust(), None)),
        "RECEIPT_RESULT_NOT_IN_BLOCK"
    );
    let mut x = b.clone();
    x.receipt.events[0].topics[0][0] ^= 0x01;
    assert_eq!(
        code(x.verify(&w.trust(), None)),
        "RECEIPT_RESULT_NOT_IN_BLOCK"
    );
    let mut x = b.clone();
    x.receipt.fuel_used = Some(999);
    assert_eq!(
        code(x.verify(&w.trust(), None)),
        "RECEIPT_RESULT_NOT_IN_BLOCK"
    );
    let mut x = b.clone();
    x.receipt.output.push(0);
    assert_eq!(
        code(x.verify(&w.trust(), None)),
        "RECEIPT_RESULT_NOT_IN_BLOCK"
    );
}

#[test]
fn altered_position() {
    let w = World::new(14);
    let (block, receipts) = w.anchor_block(5);
    let b = w.bundle(&block, &receipts, 3);
    for pos in [0, 2, 4, 5, u32::MAX] {
        let mut x = b.clone();
        x.position = pos;
        assert_eq!(
            code(x.verify(&w.trust(), None)),
            "RECEIPT_TX_NOT_IN_BLOCK",
            "position {pos}"
        );
    }
}

#[test]
fn altered_tx_count_fails_the_seal() {
    // The tree size comes from the header, which the seal covers.
    let w = World::new(15);
    let (block, receipts) = w.anchor_block(5);
    let mut b = w.bundle(&block, &receipts, 4);
    b.header.tx_count = 6;
    assert_eq!(code(b.verify(&w.trust(), None)), "RECEIPT_SEAL_OTHER_BLOCK");
}

#[test]
fn receipt_for_another_tx() {
    // A block whose result at position 1 names transaction 0: a faulty or lying proposer.
    let w = World::new(16);
    let txs: Vec<SignedTx> = (0..3).map(|i| w.anchor_tx(i)).collect();
    let mut receipts: Vec<Receipt> = txs.iter().map(success).collect();
    receipts[1].tx_id = txs[0].tx_id();
    let block = w.block(txs.clone(), &receipts);
    // build refuses to make it...
    let e = ReceiptBundle::build(
        &block,
        &receipts,
        1,
        Finality::Seal(w.seal(&block.header)),
        w.chain(),
        w.crls(&[]),
    )
    .unwrap_err();
    assert_eq!(e.code(), "RECEIPT_BUILD");
    // ...so assemble it by hand, as a forger would.
    let b = hand_made(&w, &block, &receipts, 1);
    let e = b.verify(&w.trust(), None).unwrap_err();
    assert_eq!(e.code(), "RECEIPT_RESULT_OTHER_TX");
    assert_eq!(
        e,
        ReceiptError::ResultOtherTx {
            receipt_tx: txs[0].tx_id(),
            tx: txs[1].tx_id()
        }
    );
}

/// A bundle assembled without `build`'s consistency checks.
fn hand_made(w: &World, block: &Block, receipts: &[Receipt], pos: usize) -> ReceiptBundle {
    let tx_leaves: Vec<Digest> = block
        .txs
        .iter()
        .map(|t| merkle::leaf_hash(t.entry_hash().as_bytes()))
        .collect();
    let receipt_leaves: Vec<Digest> = receipts
        .iter()
        .map(|r| merkle::leaf_hash(r.receipt_hash().as_bytes()))
        .collect();
    ReceiptBundle {
        tx: block.txs[pos].clone(),
        position: u32::try_from(pos).unwrap(),
        tx_proof: merkle::prove(&tx_leaves, pos).unwrap(),
        receipt: receipts[pos].clone(),
        receipt_proof: merkle::prove(&receipt_leaves, pos).unwrap(),
        header: block.header.clone(),
        finality: Finality::Seal(w.seal(&block.header)),
        chain: w.chain(),
        crls: w.crls(&[]),
        set_changes: Vec::new(),
        anchor_proofs: Vec::new(),
    }
}

#[test]
fn failed_receipt_is_not_successful() {
    let w = World::new(17);
    let txs: Vec<SignedTx> = (0..3).map(|i| w.anchor_tx(i)).collect();
    let mut receipts: Vec<Receipt> = txs.iter().map(success).collect();
    receipts[2] = Receipt {
        fuel_used: Some(0),
        output: Vec::new(),
        tx_id: txs[2].tx_id(),
        status: Status::Failed {
            code: 409,
            message: "digest already anchored".into(),
        },
        events: vec![],
    };
    let block = w.block(txs, &receipts);
    let b = w.bundle(&block, &receipts, 2);
    let e = b.verify(&w.trust(), Some(&document(2))).unwrap_err();
    assert_eq!(e.code(), "RECEIPT_NOT_SUCCESSFUL");
    assert!(e.to_string().contains("digest already anchored"));
    // The others in the block are fine.
    w.bundle(&block, &receipts, 1)
        .verify(&w.trust(), Some(&document(1)))
        .unwrap();
}

#[test]
fn signer_certificate_swapped_for_another_valid_one() {
    let w = World::new(18);
    let (block, receipts) = w.anchor_block(2);
    // Position 0 names the registered certificate, position 1 carries it.
    for pos in [0, 1] {
        let mut b = w.bundle(&block, &receipts, pos);
        b.chain[0] = w.bob.clone();
        let e = b.verify(&w.trust(), None).unwrap_err();
        assert_eq!(e.code(), "RECEIPT_SIGNER_MISMATCH", "position {pos}");
        assert_eq!(
            e,
            ReceiptError::SignerMismatch {
                sender: w.alice.fingerprint(),
                certificate: w.bob.fingerprint()
            }
        );
    }
    let mut b = w.bundle(&block, &receipts, 0);
    b.chain.clear();
    assert_eq!(code(b.verify(&w.trust(), None)), "RECEIPT_SIGNER_MISSING");
}

#[track_caller]
fn chain_code(r: Result<VerifiedReceipt, ReceiptError>) -> &'static str {
    match r {
        Err(ReceiptError::SignerChain { reason, at, .. }) => {
            assert_eq!(at, t(30), "judged at the block time");
            reason.code().name
        }
        other => panic!("expected RECEIPT_SIGNER_CHAIN, got {other:?}"),
    }
}

#[test]
fn revoked_signer_per_included_crl() {
    let w = World::new(19);
    let mut b = w.standard();
    b.crls = w.crls(&[RevokedEntry {
        serial: w.alice.serial(),
        revoked_at: t(20),
        reason: RevocationReason::KeyCompromise,
    }]);
    let e = b.verify(&w.trust(), None);
    assert_eq!(chain_code(e.clone()), "CERT_REVOKED");
    assert_eq!(code(e), "RECEIPT_SIGNER_CHAIN");
}

#[test]
fn missing_crl_is_revocation_unknown() {
    let w = World::new(20);
    let mut b = w.standard();
    // Drop the agency's CRL (the signer's issuer).
    b.crls.retain(|c| c.issuer() != w.agency.subject());
    assert_eq!(b.crls.len(), 1);
    assert_eq!(
        chain_code(b.verify(&w.trust(), None)),
        "CERT_REVOCATION_UNKNOWN"
    );
    // And with no CRL at all.
    b.crls.clear();
    assert_eq!(
        chain_code(b.verify(&w.trust(), None)),
        "CERT_REVOCATION_UNKNOWN"
    );
}

#[test]
fn signer_chain_to_another_root() {
    let w = World::new(21);
    let other = World::new(22);
    let b = w.standard();
    let mut trust = w.trust();
    // The other consortium's root has the same name, so the path ends at it and the agency
    // certificate's signature does not verify with its key.
    trust.consortium = consortium(&other.root);
    assert_eq!(chain_code(b.verify(&trust, None)), "CERT_SIGNATURE_INVALID");
    // No anchor at all.
    trust.consortium = Consortium::new(Vec::new()).unwrap();
    assert_eq!(chain_code(b.verify(&trust, None)), "CERT_NO_PATH_TO_ANCHOR");
    // Without the intermediate.
    let mut x = b.clone();
    x.chain.truncate(1);
    assert_eq!(
        chain_code(x.verify(&w.trust(), None)),
        "CERT_NO_PATH_TO_ANCHOR"
    );
}

#[test]
fn bad_tx_signature_in_a_sealed_block() {
    // The proposer included a transaction whose signature does not verify: its user ID was
    // changed after signing.
    let w = World::new(23);
    let mut tx = w.anchor_tx(0);
    tx.signer_user_id = UserId::new(b"another-id".to_vec()).unwrap();
    let receipts = vec![success(&tx)];
    let block = w.block(vec![tx], &receipts);
    let b = w.bundle(&block, &receipts, 0);
    assert_eq!(code(b.verify(&w.trust(), None)), "RECEIPT_TX_SIGNATURE");
}

// ---------------------------------------------------------------------------------------------
// The file

#[test]
fn altered_file_fails_verification_naming_the_part() {
    let w = World::new(24);
    let b = w.standard();
    let text = b.to_json();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Flip the last hex digit of a field: still decodes (a digest or signature byte).
    for (field, expected) in [
        ("header", "RECEIPT_SEAL_OTHER_BLOCK"),
        ("tx_proof", "RECEIPT_TX_NOT_IN_BLOCK"),
        ("receipt_proof", "RECEIPT_RESULT_NOT_IN_BLOCK"),
    ] {
        let mut v = value.clone();
        let s = v[field].as_str().unwrap().to_string();
        let last = if s.ends_with('0') { '1' } else { '0' };
        v[field] = serde_json::Value::String(format!("{}{last}", &s[..s.len() - 1]));
        let x = ReceiptBundle::from_json(v.to_string().as_bytes(), &Limits::default()).unwrap();
        assert_eq!(code(x.verify(&w.trust(), None)), expected, "{field}");
    }
}

#[test]
fn truncated_file() {
    let w = World::new(25);
    let text = w.standard().to_json();
    for len in [0, 1, text.len() / 2, text.len() - 3] {
        let e = parse_err(&text.as_bytes()[..len]);
        assert_eq!(e.code(), "RECEIPT_MALFORMED", "len {len}");
        assert!(matches!(
            e,
            ReceiptError::Malformed {
                problem: Malformation::Json { .. },
                ..
            }
        ));
    }
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let mut big = vec![b' '; receipt::MAX_FILE_LEN + 1];
    big[0] = b'{';
    let e = parse_err(&big);
    assert_eq!(
        e,
        ReceiptError::TooLarge {
            len: receipt::MAX_FILE_LEN + 1,
            max: receipt::MAX_FILE_LEN
        }
    );
    assert_eq!(e.code(), "RECEIPT_TOO_LARGE");
}

fn edit(text: &str, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    f(v.as_object_mut().unwrap());
    v.to_string().into_bytes()
}

#[track_caller]
fn malformed_field(bytes: &[u8]) -> String {
    match parse_err(bytes) {
        ReceiptError::Malformed { field, .. } => field,
        other => panic!("expected RECEIPT_MALFORMED, got {other:?}"),
    }
}

#[test]
fn unknown_missing_and_duplicate_fields() {
    let w = World::new(26);
    let text = w.standard().to_json();
    let unknown = edit(&text, |m| {
        m.insert("note".into(), "trust me".into());
    });
    let e = parse_err(&unknown);
    assert_eq!(e.code(), "RECEIPT_MALFORMED");
    assert!(e.to_string().contains("note"), "{e}");
    let missing = edit(&text, |m| {
        m.remove("seal");
    });
    assert!(parse_err(&missing).to_string().contains("seal"));
    let duplicate = text.replacen(
        "\"position\": 1,",
        "\"position\": 1,\n  \"position\": 0,",
        1,
    );
    assert_ne!(duplicate, text);
    assert_eq!(parse_err(duplicate.as_bytes()).code(), "RECEIPT_MALFORMED");
    // Not an object at all.
    assert_eq!(parse_err(b"[1, 2]").code(), "RECEIPT_MALFORMED");
}

#[test]
fn unknown_format_or_version() {
    let w = World::new(27);
    let text = w.standard().to_json();
    let v3 = edit(&text, |m| {
        m.insert("version".into(), 3.into());
        m.insert("quorum_certificate".into(), "…".into());
    });
    let e = parse_err(&v3);
    assert_eq!(
        e,
        ReceiptError::UnsupportedFormat {
            format: "gmchain-receipt".into(),
            version: 3
        }
    );
    assert_eq!(e.code(), "RECEIPT_UNSUPPORTED_FORMAT");
    let other = edit(&text, |m| {
        m.insert("format".into(), "fabric-receipt".into());
    });
    assert_eq!(parse_err(&other).code(), "RECEIPT_UNSUPPORTED_FORMAT");
}

#[test]
fn each_encoded_field_is_named_when_malformed() {
    let w = World::new(28);
    let text = w.standard().to_json();
    for field in [
        "header",
        "seal",
        "tx",
        "tx_proof",
        "receipt",
        "receipt_proof",
    ] {
        // Upper-case hex: refused, one spelling per file.
        let upper = edit(&text, |m| {
            let s = m[field].as_str().unwrap().to_uppercase();
            m.insert(field.into(), s.into());
        });
        assert_eq!(malformed_field(&upper), field);
        // A trailing byte after the canonical encoding.
        let trailing = edit(&text, |m| {
            let s = format!("{}00", m[field].as_str().unwrap());
            m.insert(field.into(), s.into());
        });
        assert_eq!(malformed_field(&trailing), field);
        // Truncated encoding.
        let short = edit(&text, |m| {
            let s = m[field].as_str().unwrap();
            let s = s[..s.len() - 2].to_string();
            m.insert(field.into(), s.into());
        });
        assert_eq!(malformed_field(&short), field);
        // Odd length.
        let odd = edit(&text, |m| {
            let s = format!("{}0", m[field].as_str().unwrap());
            m.insert(field.into(), s.into());
        });
        assert_eq!(malformed_field(&odd), field);
    }
    // Another object's encoding in a field: a receipt where the transaction belongs.
    let swapped = edit(&text, |m| {
        let r = m["receipt"].clone();
        m.insert("tx".into(), r);
    });
    assert_eq!(malformed_field(&swapped), "tx");
    // Certificates and CRLs.
    let bad_cert = edit(&text, |m| {
        let pem = m["chain"][1].as_str().unwrap().replacen("MII", "MIJ", 1);
        m["chain"][1] = pem.into();
    });
    assert_eq!(malformed_field(&bad_cert), "chain[1]");
    let bad_crl = edit(&text, |m| {
        m["crls"][0] = m["chain"][0].clone();
    });
    assert_eq!(malformed_field(&bad_crl), "crls[0]");
    let empty_chain = edit(&text, |m| {
        m.insert("chain".into(), serde_json::Value::Array(vec![]));
    });
    assert_eq!(malformed_field(&empty_chain), "chain");
    let long_chain = edit(&text, |m| {
        let c = m["chain"][0].clone();
        m.insert(
            "chain".into(),
            serde_json::Value::Array(vec![c; pki::MAX_PATH_LEN + 1]),
        );
    });
    assert_eq!(malformed_field(&long_chain), "chain");
    let many_crls = edit(&text, |m| {
        let c = m["crls"][0].clone();
        m.insert(
            "crls".into(),
            serde_json::Value::Array(vec![c; receipt::MAX_CRLS + 1]),
        );
    });
    assert_eq!(malformed_field(&many_crls), "crls");
    let negative = edit(&text, |m| {
        m.insert("position".into(), (-1).into());
    });
    assert_eq!(malformed_field(&negative), "file");
}

#[test]
fn limits_bound_the_decoding() {
    let w = World::new(29);
    let text = w.standard().to_json();
    let tight = Limits {
        max_tx_size: 64,
        ..Limits::default()
    };
    match ReceiptBundle::from_json(text.as_bytes(), &tight).unwrap_err() {
        ReceiptError::Malformed {
            field,
            problem: Malformation::TooLong { max: 128, .. },
        } => assert_eq!(field, "tx"),
        other => panic!("{other:?}"),
    }
    let tight = Limits {
        max_proof_len: 1,
        ..Limits::default()
    };
    assert_eq!(
        malformed_field_with(&text, &tight),
        "tx_proof",
        "a 3-leaf tree needs 2 path hashes for position 1"
    );
    // Position 0 names its sender's certificate by digest, so only the chain carries one.
    let (block, receipts) = w.anchor_block(3);
    let text = w.bundle(&block, &receipts, 0).to_json();
    let tight = Limits {
        max_cert_size: 100,
        ..Limits::default()
    };
    assert_eq!(malformed_field_with(&text, &tight), "chain[0]");
}

fn malformed_field_with(text: &str, limits: &Limits) -> String {
    match ReceiptBundle::from_json(text.as_bytes(), limits).unwrap_err() {
        ReceiptError::Malformed { field, .. } => field,
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Building

#[test]
fn build_refuses_inconsistent_inputs() {
    let w = World::new(30);
    let (block, receipts) = w.anchor_block(3);
    let seal = w.seal(&block.header);
    let build = |block: &Block, receipts: &[Receipt], pos: u32, seal: BlockSeal| {
        ReceiptBundle::build(
            block,
            receipts,
            pos,
            Finality::Seal(seal),
            w.chain(),
            w.crls(&[]),
        )
        .unwrap_err()
        .code()
    };
    assert_eq!(build(&block, &receipts, 3, seal.clone()), "RECEIPT_BUILD");
    assert_eq!(
        build(&block, &receipts[..2], 0, seal.clone()),
        "RECEIPT_BUILD"
    );
    let mut other = block.header.clone();
    other.height = Height(1);
    assert_eq!(build(&block, &receipts, 0, w.seal(&other)), "RECEIPT_BUILD");
    let mut wrong_root = block.clone();
    flip(&mut wrong_root.header.tx_root);
    let seal2 = w.seal(&wrong_root.header);
    assert_eq!(build(&wrong_root, &receipts, 0, seal2), "RECEIPT_BUILD");
    let mut altered = receipts.clone();
    altered[0].events.clear();
    assert_eq!(build(&block, &altered, 0, seal), "RECEIPT_BUILD");
}

#[test]
fn build_proofs_match_the_merkle_module() {
    // The proofs build computes are those of the header's roots, for every position and size.
    let w = World::new(31);
    for n in 1..=7 {
        let (block, receipts) = w.anchor_block(n);
        for pos in 0..n {
            let b = w.bundle(&block, &receipts, u32::try_from(pos).unwrap());
            merkle::verify(
                &block.header.tx_root,
                block.txs[pos].entry_hash().as_bytes(),
                pos as u64,
                n as u64,
                &b.tx_proof,
            )
            .unwrap();
            assert_eq!(
                b.receipt_proof,
                InclusionProof {
                    path: merkle::prove(
                        &receipts
                            .iter()
                            .map(|r| merkle::leaf_hash(r.receipt_hash().as_bytes()))
                            .collect::<Vec<_>>(),
                        pos
                    )
                    .unwrap()
                    .path
                }
            );
        }
    }
}

/// The file format is pinned by a receipt this release wrote (`tests/data/receipt-v1.json`:
/// world seed 100, position 1 of a block of 3 anchorings) and the genesis certificates it
/// verifies against (`tests/data/genesis-v1.pem`: the root CA, then the validator). It must
/// keep reading, verifying and writing back byte for byte, whatever the date: certificates are
/// judged at the block's time. Changing these files is a format change (a new `version`),
/// never a way to make a test pass.
#[test]
fn known_answer_receipt_file() {
    let stored = include_str!("data/receipt-v1.json");
    let pems = include_str!("data/genesis-v1.pem");
    let certs: Vec<Certificate> = pems
        .split_inclusive("-----END CERTIFICATE-----\n")
        .map(|pem| Certificate::from_pem(pem.as_bytes()).unwrap())
        .collect();
    let [root, validator] = <[Certificate; 2]>::try_from(certs).unwrap();
    let trust = TrustContext {
        chain_id: ChainId::new(CHAIN).unwrap(),
        validators: vec![validator],
        consortium: consortium(&root),
    };
    let b = ReceiptBundle::from_json(stored.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(b.to_json(), stored);
    let ok = b.verify(&trust, Some(&document(1))).unwrap();
    assert_eq!(
        ok.tx_id.to_string(),
        "adbb37cc727b281a344a093156faab2dea2f5616b675dedadcc77aac0c1b3719"
    );
    assert_eq!(
        ok.block_hash.to_string(),
        "603bfc1562fb11b24233ad8631f6c4a909fc9e0299d3143c5dcbcf8d51521486"
    );
    assert_eq!(
        ok.document_digest.unwrap().to_hex(),
        "56e90c18a03ce6e9dda64e994b9aeef3fb7cf73f0de8dd3172cefe84e7b450b4"
    );
    assert_eq!(ok.height, Height(42));
    assert_eq!(ok.timestamp_ms, 1_769_817_600_000);
    assert_eq!(ok.call, "attestation.anchor");
    assert_eq!(ok.organisation, "Agency A");
    assert_eq!(ok.signer_subject, "CN=alice,OU=user,O=Agency A,C=CN");
    assert_eq!(ok.validator, "CN=node-1,OU=node,O=Agency A,C=CN");
}

/// A v2 receipt: the block of `standard()` with a v2 header naming the set of `validators`
/// (the trust's), finalised by the precommits of `signers` (indices into `keys`).
fn v2_bundle(
    w: &World,
    keys: &[(&Certificate, &crypto_sm::SoftSigner)],
    signers: &[usize],
) -> ReceiptBundle {
    let (mut block, receipts) = w.anchor_block(3);
    let set = types::ValidatorSet::new(
        keys.iter()
            .map(|(c, k)| types::ValidatorEntry {
                id: c.fingerprint(),
                public_key: crypto::Signer::public_key(*k),
                power: 1,
            })
            .collect(),
    )
    .unwrap();
    block.header.consensus = Some(types::ConsensusLinks {
        validator_set: set.hash(),
        next_validator_set: set.hash(),
        last_commit: Digest([0x44; 32]),
    });
    let hash = block.header.hash();
    let votes: Vec<types::SignedVote> = signers
        .iter()
        .map(|&i| {
            types::Vote {
                chain_id: ChainId::new(CHAIN).unwrap(),
                height: block.header.height,
                round: 1,
                kind: types::VoteKind::Precommit,
                block: Some(hash),
                validator: keys[i].0.fingerprint(),
            }
            .sign(keys[i].1)
            .unwrap()
        })
        .collect();
    let cert = types::CommitCertificate::from_votes(block.header.height, 1, hash, &votes);
    ReceiptBundle::build(
        &block,
        &receipts,
        1,
        Finality::Certificate(cert),
        w.chain(),
        w.crls(&[]),
    )
    .unwrap()
}

/// Issue 13 point 2: a v2 receipt verifies offline with its quorum certificate against the
/// genesis validators, round-trips as a version-2 file, and names its signers.
#[test]
fn v2_receipt_verifies_with_its_commit_certificate() {
    let w = World::new(40);
    let mut trust = w.trust();
    trust.validators.push(w.validator2.clone());
    let keys = [
        (&w.validator, &w.validator_key),
        (&w.validator2, &w.validator2_key),
    ];
    // Two validators: the quorum is both.
    let b = v2_bundle(&w, &keys, &[0, 1]);
    let ok = b.verify(&trust, Some(&document(1))).unwrap();
    assert_eq!(ok.certified_by.len(), 2);
    assert_eq!(ok.validator, "CN=node-1,OU=node,O=Agency A,C=CN");
    let text = b.to_json();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["version"], 2);
    assert!(value.get("seal").is_none() && value.get("certificate").is_some());
    let back = ReceiptBundle::from_json(text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, b);
    back.verify(&trust, None).unwrap();

    // One precommit of two is no quorum.
    let short = v2_bundle(&w, &keys, &[0]);
    assert_eq!(code(short.verify(&trust, None)), "RECEIPT_CERTIFICATE");
    // An altered header no longer matches the certificate.
    let mut x = b.clone();
    x.header.timestamp = Timestamp(x.header.timestamp.0 + 1);
    assert_eq!(code(x.verify(&trust, None)), "RECEIPT_CERTIFICATE");
    // Against a genesis with another validator set (one validator only): the header names
    // a set the genesis file does not give.
    assert_eq!(code(b.verify(&w.trust(), None)), "RECEIPT_VALIDATOR_SET");
    // A certificate on a v1 header, a seal on a v2 header.
    let mut x = b.clone();
    x.header.consensus = None;
    assert_eq!(code(x.verify(&trust, None)), "RECEIPT_FINALITY_FORMAT");
    let mut x = b.clone();
    x.finality = Finality::Seal(w.seal(&x.header));
    assert_eq!(code(x.verify(&trust, None)), "RECEIPT_FINALITY_FORMAT");
    // A version-1 file must carry a seal, a version-2 file a certificate.
    let v1_with_cert = edit(&text, |m| {
        m.insert("version".into(), 1.into());
    });
    assert!(
        malformed_field(&v1_with_cert).starts_with("seal"),
        "{}",
        malformed_field(&v1_with_cert)
    );
    let v2_with_both = edit(&text, |m| {
        m.insert("seal".into(), "00".into());
    });
    assert!(
        malformed_field(&v2_with_both).starts_with("certificate"),
        "{}",
        malformed_field(&v2_with_both)
    );
}
