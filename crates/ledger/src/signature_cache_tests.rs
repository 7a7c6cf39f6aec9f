//! Admission's cache of verified signatures, through a ledger: a transaction verified once is
//! not verified again, and nothing but the same signed transaction with the same certificate
//! ever hits (another signature of the same ID, another user ID, another sender, another
//! chain are judged afresh). The ledger's block verification admits a block's transactions
//! with only the chain's index as "seen", so a pool's transaction does not shield its variants:
//! these tests admit with nothing seen either.

use std::sync::Arc;

use crypto::{Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{Genesis, RejectCode, Rejection, VerifiedTx};
use pki::{
    Certificate, IssueRequest, Role, Serial, UnixTime, Validity, issue, issue_crl, issue_root,
};
use storage::{ChainStore, MemBackend};
use types::{Call, ChainId, Encode, Height, Sender, SignedTx, Transaction};

use crate::{Ledger, init};

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const CHAIN: &str = "sig-cache-1";

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

/// Alice (two certificates for one key) and bob, users of a one-organisation chain.
struct Fx {
    alice: (SoftSigner, Certificate),
    alice2: Certificate,
    bob: (SoftSigner, Certificate),
    ledger: Ledger<MemBackend>,
}

fn fixture() -> Fx {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
    let validity = |to| Validity {
        not_before: t(0),
        not_after: t(to),
    };
    let ca_key = p.generate().unwrap();
    let ca = issue_root(
        "Sig Root CA",
        "Sig Consortium",
        Serial::from_hex("01").unwrap(),
        validity(3650),
        &ca_key,
    )
    .unwrap();
    let leaf = |key: &dyn Signer, role: Role, cn: &str, serial: u8| {
        issue(
            &ca,
            &ca_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Sig Consortium",
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&[0x10, serial]).unwrap(),
                validity: validity(365),
            },
        )
        .unwrap()
    };
    let alice_key = p.generate().unwrap();
    let bob_key = p.generate().unwrap();
    let validator_key = p.generate().unwrap();
    let alice = leaf(&alice_key, Role::User, "alice", 1);
    let alice2 = leaf(&alice_key, Role::User, "alice", 2);
    let bob = leaf(&bob_key, Role::User, "bob", 3);
    let validator = leaf(&validator_key, Role::NodeSign, "node-1", 4);
    let crl = issue_crl(&ca, &ca_key, 1, t(0), t(60), &[]).unwrap();
    let json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": (T0 + DAY) * 1000,
        "params": { "expiry_window": 100, "max_txs_per_block": 2000, "max_tx_size": 131072 },
        "organisations": [
            { "name": "Sig Consortium", "ca_cert": ca.to_pem(), "crl": crl.to_pem() },
        ],
        "validators": [ { "name": "node-1", "cert": validator.to_pem() } ],
    });
    let genesis = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    let store = ChainStore::new(MemBackend::new(), genesis.params.limits());
    init(&store, &genesis).unwrap();
    Fx {
        alice: (alice_key, alice),
        alice2,
        bob: (bob_key, bob),
        ledger: Ledger::open(store, genesis).unwrap(),
    }
}

fn body(chain: &str, sender: &Certificate, salt: u8) -> Transaction {
    Transaction {
        fuel_limit: None,
        chain_id: ChainId::new(chain).unwrap(),
        salt: [salt; 16],
        expiry: Height(50),
        sender: Sender::Certificate(sender.der().to_vec()),
        call: Call {
            contract: "attestation".into(),
            method: "anchor".into(),
            args: vec![
                vec![salt; 32],
                b"contract.pdf".to_vec(),
                b"v1".to_vec(),
                vec![0xe5; 20],
            ],
        },
    }
}

fn signed(tx: Transaction, key: &dyn Signer) -> SignedTx {
    SignedTx::sign(tx, key, &UserId::default()).unwrap()
}

impl Fx {
    fn admit(&self, bytes: &[u8]) -> Result<VerifiedTx, Rejection> {
        self.ledger.admit(bytes, t(10), &|_| false)
    }

    fn code(&self, bytes: &[u8]) -> RejectCode {
        match self.admit(bytes) {
            Ok(tx) => panic!("expected a refusal, admitted {}", tx.id()),
            Err(r) => r.code,
        }
    }

    fn hits(&self) -> u64 {
        self.ledger.admission().signature_cache_hits()
    }

    fn cached(&self) -> usize {
        self.ledger.admission().signature_cache_len()
    }
}

#[test]
fn a_transaction_verified_once_is_not_verified_again() {
    let fx = fixture();
    let good = signed(body(CHAIN, &fx.alice.1, 1), &fx.alice.0);
    let bytes = good.to_bytes();
    fx.admit(&bytes).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!((fx.cached(), fx.hits()), (1, 0));
    let again = fx.admit(&bytes).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(again.id(), good.tx_id());
    assert_eq!((fx.cached(), fx.hits()), (1, 1));
}

#[test]
fn a_cached_transaction_with_another_signature_is_verified_and_refused() {
    let fx = fixture();
    let tx = body(CHAIN, &fx.alice.1, 2);
    let good = signed(tx.clone(), &fx.alice.0);
    fx.admit(&good.to_bytes()).unwrap_or_else(|r| panic!("{r}"));
    // The same transaction ID, signed by another key: a cache keyed by the ID would pass it.
    let forged = signed(tx.clone(), &fx.bob.0);
    assert_eq!(forged.tx_id(), good.tx_id());
    assert_eq!(fx.code(&forged.to_bytes()), RejectCode::SignatureInvalid);
    // Alice's own signature under another user ID (ZA differs): the signature bytes alone are
    // not the key either.
    let mut other_id = good.clone();
    other_id.signer_user_id = UserId::new(b"another user id".to_vec()).unwrap();
    assert_eq!(fx.code(&other_id.to_bytes()), RejectCode::SignatureInvalid);
    assert_eq!(fx.hits(), 0);
    // Another of alice's valid signatures of the same ID is its own entry.
    let resigned = signed(tx, &fx.alice.0);
    assert_ne!(resigned.signature, good.signature);
    fx.admit(&resigned.to_bytes())
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!((fx.cached(), fx.hits()), (2, 0));
}

#[test]
fn another_chains_transaction_never_reaches_the_cache() {
    let fx = fixture();
    let here = signed(body(CHAIN, &fx.alice.1, 4), &fx.alice.0);
    fx.admit(&here.to_bytes()).unwrap_or_else(|r| panic!("{r}"));
    // The same body and signature presented for another chain.
    let mut there = here.clone();
    there.tx.chain_id = ChainId::new("sig-cache-2").unwrap();
    assert_eq!(fx.code(&there.to_bytes()), RejectCode::WrongChain);
    assert_eq!((fx.cached(), fx.hits()), (1, 0));
}

#[test]
fn a_different_sender_certificate_is_verified_with_its_own_key() {
    let fx = fixture();
    // Alice's signature over a body naming bob: bob's key does not verify it.
    let by_alice = signed(body(CHAIN, &fx.bob.1, 5), &fx.alice.0);
    assert_eq!(fx.code(&by_alice.to_bytes()), RejectCode::SignatureInvalid);
    assert_eq!(fx.cached(), 0);
    // Alice's second certificate (same key) verifies its own transactions, as a new entry.
    fx.admit(&signed(body(CHAIN, &fx.alice2, 5), &fx.alice.0).to_bytes())
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!((fx.cached(), fx.hits()), (1, 0));
}

/// Issue 15 item 6: the encryption half of a person's dual pair receives keys and never signs.
/// A transaction naming a user-enc (or admin-enc, auditor-enc) certificate, correctly signed
/// with that certificate's key, is refused; the same key under a user certificate is admitted
/// (so the refusal is the role's, not the signature's).
#[test]
fn an_encryption_certificate_never_signs_a_transaction() {
    let fx = fixture();
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(11)));
    let validity = Validity {
        not_before: t(0),
        not_after: t(365),
    };
    // The fixture's CA key comes from seed 7; rebuild the same CA to issue more leaves.
    let p7 = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
    let ca_key7 = p7.generate().unwrap();
    let ca = issue_root(
        "Sig Root CA",
        "Sig Consortium",
        Serial::from_hex("01").unwrap(),
        Validity {
            not_before: t(0),
            not_after: t(3650),
        },
        &ca_key7,
    )
    .unwrap();
    let key = p.generate().unwrap();
    let leaf = |role: Role, serial: u8| {
        issue(
            &ca,
            &ca_key7,
            &IssueRequest {
                role,
                common_name: "alice",
                organisation: "Sig Consortium",
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&[0x20, serial]).unwrap(),
                validity,
            },
        )
        .unwrap()
    };
    for (i, role) in [Role::UserEnc, Role::AdminEnc, Role::AuditorEnc]
        .into_iter()
        .enumerate()
    {
        let enc = leaf(role, i as u8);
        assert_eq!(enc.role(), Some(role));
        let tx = signed(body(CHAIN, &enc, 30 + i as u8), &key);
        match fx.admit(&tx.to_bytes()) {
            Ok(v) => panic!("a {role} certificate signed transaction {}", v.id()),
            Err(r) => {
                assert_eq!(r.code, RejectCode::PermissionDenied, "{role}: {r}");
                assert!(r.message.contains(role.as_str()), "{r}");
            }
        }
    }
    let user = leaf(Role::User, 9);
    fx.admit(&signed(body(CHAIN, &user, 40), &key).to_bytes())
        .unwrap_or_else(|r| panic!("{r}"));
}
