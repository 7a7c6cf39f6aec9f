//! GM/T 0111 §8.3 and §8.5 without a node: the transaction id is SM3 over the documented
//! encoding and the SM2 signature binds it; a store with one flipped byte names that height.

use super::{Check, Evidence, derived, expect_eq, expect_err};
use crate::ledger_ref;
use crypto::{Digest, PublicKey, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::sync::Arc;
use storage::{ChainStore, IntegrityError, KvBackend, MemBackend, Table, WriteBatch};
use types::{
    Block, BlockHash, BlockHeader, Call, ChainId, Decode, Encode, Height, Limits, Receipt, Sender,
    SignedTx, Status, Timestamp, Transaction,
};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "ledger-txid-sm3",
        title: "A transaction's id is SM3 over its documented encoding, and its SM2 signature binds body, key and user ID",
        run: txid_sm3,
    },
    Check {
        id: "ledger-tamper-detected",
        title: "One flipped byte in a stored block, header or signature is found, naming its height",
        run: tamper_detected,
    },
];

/// SM3("GMCHAIN-TX-V1\0" ‖ encoding) of [`fixed_tx`]. Pinned when format version 1 was
/// released; the same value is given by `openssl dgst -sm3` over the domain tag and the
/// encoding of docs/formats.md §3. A change here is a format change, never a test update.
const FIXED_TX_ID: &str = "c3b088b67cec38f2d144add33e13d162589939580a0b493a5fed6365ef8498ea";

const PINNED_SOURCE: &str =
    "gmchain-derived: docs/formats.md §3-§4 (format v1), SM3 cross-checked with openssl dgst -sm3";

fn pinned(case: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: case.to_string(),
        source: PINNED_SOURCE.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

fn signer(seed: u8) -> Result<SoftSigner, String> {
    let key = PrivateKey::from_bytes(&[seed; 32]).map_err(|e| e.to_string())?;
    Ok(SoftwareProvider::new(Arc::new(SeededRandom::new(u64::from(seed)))).signer(key))
}

/// A fixed anchoring transaction: every field is a constant.
pub(crate) fn fixed_tx() -> Result<Transaction, String> {
    Ok(Transaction {
        fuel_limit: None,
        chain_id: ChainId::new("gmchain-conformance").map_err(|e| e.to_string())?,
        salt: core::array::from_fn(|i| i as u8),
        expiry: Height(1000),
        sender: Sender::Registered(crypto_sm::sm3::sm3(b"conformance sender certificate")),
        call: Call {
            contract: "attestation".into(),
            method: "anchor".into(),
            args: vec![
                crypto_sm::sm3::sm3(b"conformance document").0.to_vec(),
                b"document".to_vec(),
                "GM/T 0111-2021 §8.3 存证".as_bytes().to_vec(),
                Vec::new(),
            ],
        },
    })
}

fn txid_sm3() -> Vec<Evidence> {
    let mut out = Vec::new();
    let tx = match fixed_tx() {
        Ok(t) => t,
        Err(e) => return vec![derived("build the fixed transaction", Err(e))],
    };
    let encoding = ledger_ref::tx_encoding(&tx);
    out.push(pinned(
        "the canonical encoding equals docs/formats.md §3, encoded independently",
        expect_eq("encoding", &tx.to_bytes(), &encoding),
    ));
    let independent = ledger_ref::tx_id(&tx);
    out.push(pinned(
        "Transaction::tx_id = SM3(\"GMCHAIN-TX-V1\\0\" ‖ encoding), recomputed with crypto_sm::sm3",
        expect_eq("tx id", tx.tx_id().as_bytes(), &independent),
    ));
    out.push(pinned(
        "the id equals the pinned value",
        hex::decode(FIXED_TX_ID)
            .map_err(|e| format!("pinned value: {e}"))
            .and_then(|want| expect_eq("tx id", &independent, &want)),
    ));

    let (s, other) = match (signer(0x5a), signer(0x5b)) {
        (Ok(s), Ok(o)) => (s, o),
        (Err(e), _) | (_, Err(e)) => return vec![derived("fixed SM2 key", Err(e))],
    };
    let pk: PublicKey = crypto::Signer::public_key(&s);
    let signed = match SignedTx::sign(tx.clone(), &s, &UserId::default()) {
        Ok(t) => t,
        Err(e) => {
            out.push(derived("sign the fixed transaction", Err(e.to_string())));
            return out;
        }
    };
    out.push(derived(
        "the SM2 signature (default user ID) over the 32-byte id verifies, GB/T 32918.2 §7.1",
        crypto_sm::sm2::verify(&pk, &UserId::default(), &independent, &signed.signature)
            .map_err(|e| e.to_string())
            .and_then(|()| signed.verify_signature(&pk).map_err(|e| e.to_string())),
    ));
    out.push(derived(
        "the signed encoding round-trips and its id is the unsigned body's",
        SignedTx::from_bytes(&signed.to_bytes(), &Limits::default())
            .map_err(|e| e.to_string())
            .and_then(|back| {
                if back != signed {
                    return Err("decoded signed transaction differs".into());
                }
                expect_eq("id", back.tx_id().as_bytes(), &independent)
            }),
    ));
    let mut wrong_id = signed.clone();
    wrong_id.signer_user_id = UserId::new(b"8765432187654321".to_vec()).unwrap_or_default();
    out.push(derived(
        "NEG: the signature does not verify under another user ID",
        expect_err("another user ID", wrong_id.verify_signature(&pk)),
    ));
    let mut altered = signed.clone();
    altered.tx.expiry = Height(1001);
    out.push(derived(
        "NEG: an altered body (expiry + 1) changes the id and fails verification",
        if altered.tx_id() == signed.tx_id() {
            Err("the id does not cover the expiry".into())
        } else {
            expect_err("altered body", altered.verify_signature(&pk))
        },
    ));
    let mut salted = signed.clone();
    salted.tx.salt[0] ^= 1;
    out.push(derived(
        "NEG: an altered salt fails verification",
        expect_err("altered salt", salted.verify_signature(&pk)),
    ));
    out.push(derived(
        "NEG: another key does not verify the signature",
        expect_err(
            "another key",
            signed.verify_signature(&crypto::Signer::public_key(&other)),
        ),
    ));
    out
}

const CHAIN_LEN: u64 = 8;
const CHAIN: &str = "gmchain-conformance";

fn salt(height: u64, i: usize) -> [u8; 16] {
    let mut s = [0xc3; 16];
    s[..8].copy_from_slice(&height.to_be_bytes());
    s[8] = i as u8;
    s
}

fn block_on(
    store: &ChainStore<MemBackend>,
    s: &SoftSigner,
    n: usize,
) -> Result<(Block, Vec<Receipt>, state::UpdateBatch), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (height, parent, prev_root) = match store.tip().map_err(|x| e(&x))? {
        None => (0, BlockHash::GENESIS_PARENT, state::EMPTY_ROOT),
        Some(t) => (
            t.height.0 + 1,
            t.hash,
            store
                .header(t.height)
                .map_err(|x| e(&x))?
                .ok_or("tip header missing")?
                .state_root,
        ),
    };
    let chain = ChainId::new(CHAIN).map_err(|x| e(&x))?;
    let mut txs = Vec::new();
    for i in 0..n {
        let body = Transaction {
            fuel_limit: None,
            chain_id: chain.clone(),
            salt: salt(height, i),
            expiry: Height(height + 100),
            sender: Sender::Registered(Digest([0x11; 32])),
            call: Call {
                contract: "attestation".into(),
                method: "anchor".into(),
                args: vec![vec![i as u8; 32], b"document".to_vec()],
            },
        };
        txs.push(SignedTx::sign(body, s, &UserId::default()).map_err(|x| e(&x))?);
    }
    let receipts: Vec<Receipt> = txs
        .iter()
        .map(|t| Receipt {
            fuel_used: Some(0),
            output: Vec::new(),
            tx_id: t.tx_id(),
            status: Status::Success,
            events: Vec::new(),
        })
        .collect();
    let updates: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        vec![(b"height".to_vec(), Some(height.to_be_bytes().to_vec()))];
    let update = state::apply(&store.state_nodes(), prev_root, &updates).map_err(|x| e(&x))?;
    let mut block = Block {
        header: BlockHeader {
            chain_id: chain,
            height: Height(height),
            tx_count: n as u32,
            parent,
            tx_root: Digest([0; 32]),
            state_root: update.root,
            receipts_root: types::receipts_root(&receipts),
            timestamp: Timestamp(1_700_000_000_000 + height * 1000),
            proposer: Digest([0x22; 32]),
            consensus: Some(types::ConsensusLinks {
                validator_set: Digest([0x33; 32]),
                next_validator_set: Digest([0x33; 32]),
                last_commit: types::ConsensusLinks::NO_PARENT_CERTIFICATE,
            }),
        },
        txs,
    };
    block.header.tx_root = block.tx_root();
    Ok((block, receipts, update))
}

/// A chain of [`CHAIN_LEN`] blocks (0..=3 transactions each) in a fresh in-memory store.
fn small_chain() -> Result<ChainStore<MemBackend>, String> {
    let store = ChainStore::new(MemBackend::new(), Limits::default());
    let s = signer(0x3c)?;
    for h in 0..CHAIN_LEN {
        let (b, r, u) = block_on(&store, &s, (h % 3 + 1) as usize)?;
        store.commit_block(&b, &r, u).map_err(|e| e.to_string())?;
    }
    Ok(store)
}

/// Flips one byte of a stored value (chosen by `at`), through the backend.
fn flip(
    store: &ChainStore<MemBackend>,
    table: Table,
    height: u64,
    at: impl Fn(&[u8]) -> Option<usize>,
) -> Result<(), String> {
    let key = height.to_be_bytes();
    let mut v = store
        .backend()
        .get(table, &key)
        .map_err(|e| e.to_string())?
        .ok_or("no stored value")?;
    let i = at(&v).ok_or("byte to flip not found")?;
    v[i] ^= 0x01;
    let mut b = WriteBatch::new();
    b.put(table, key.to_vec(), v);
    store.backend().write(b).map_err(|e| e.to_string())
}

/// Expects `r` to name `height`; the note records what the check found.
fn names(height: u64, r: Result<(), IntegrityError>) -> Result<String, String> {
    match r {
        Ok(()) => Err(format!("not detected (height {height} was altered)")),
        Err(e) if e.height.0 == height => Ok(e.to_string()),
        Err(e) => Err(format!("detected at the wrong height: {e}")),
    }
}

fn noted(case: &str, r: Result<String, String>) -> Evidence {
    let pass = r.is_ok();
    Evidence {
        case: case.to_string(),
        source: "gmchain-derived (hash chain over SM3, docs/formats.md §4)".to_string(),
        pass,
        detail: match r {
            Ok(note) | Err(note) => note,
        },
    }
}

fn tamper_case(
    case: &str,
    table: Table,
    height: u64,
    at: impl Fn(&[u8], &ChainStore<MemBackend>) -> Option<usize>,
    verify: impl Fn(&ChainStore<MemBackend>) -> Result<(), IntegrityError>,
) -> Evidence {
    let r = small_chain().and_then(|store| {
        flip(&store, table, height, |v| at(v, &store))?;
        names(height, verify(&store))
    });
    noted(case, r)
}

fn tamper_detected() -> Vec<Evidence> {
    let last = CHAIN_LEN - 1;
    let whole = move |s: &ChainStore<MemBackend>| s.verify_chain(Height(0), Height(last));
    let mut out = vec![noted(
        "the intact chain verifies (verify_all)",
        small_chain().and_then(|s| match s.verify_all() {
            Ok(Some(t)) if t.height.0 == last => Ok(format!("tip {} at height {last}", t.hash)),
            Ok(t) => Err(format!("unexpected tip {t:?}")),
            Err(e) => Err(e.to_string()),
        }),
    )];
    out.push(tamper_case(
        "a byte of a transaction salt in stored block 3 is found at height 3",
        Table::Blocks,
        3,
        |v, _| {
            let needle = salt(3, 0);
            v.windows(16).position(|w| w == needle).map(|p| p + 5)
        },
        whole,
    ));
    out.push(tamper_case(
        "a byte of a transaction signature in stored block 5 is found at height 5",
        Table::Blocks,
        5,
        |v, s| {
            let der = s.block(Height(5)).ok()??.txs.first()?.signature.to_der();
            v.windows(der.len())
                .position(|w| w == der)
                .map(|p| p + der.len() - 1)
        },
        whole,
    ));
    out.push(tamper_case(
        "a byte of stored header 2 is found at height 2",
        Table::Headers,
        2,
        |v, _| v.len().checked_sub(1),
        whole,
    ));
    out.push(tamper_case(
        "a byte of the tip header is refused at start-up (check_tip_on_startup)",
        Table::Headers,
        last,
        |v, _| v.len().checked_sub(1),
        |s| s.check_tip_on_startup().map(|_| ()),
    ));
    out.push(tamper_case(
        "the format byte of stored block 6 is found at height 6",
        Table::Blocks,
        6,
        |_, _| Some(0),
        whole,
    ));
    out
}
