//! Integration tests of the `storage` crate over the in-memory backend: a signed chain
//! committed and read back, tampering found by height, half-written commits refused at
//! start-up, and refused commits that write nothing.

use std::sync::Arc;

use crypto::{Digest, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use state::{EMPTY_ROOT, NodeStore, StateError, UpdateBatch};
use storage::{
    ChainStore, IntegrityError, IntegrityFault, KvBackend, MemBackend, StorageError, Table,
    TxLocation, WriteBatch, WriteOp,
};
use types::{
    Block, BlockHash, BlockHeader, Call, ChainId, Encode, Event, Height, Limits, Receipt, Sender,
    SignedTx, Status, Timestamp, Transaction,
};

const CHAIN_LEN: u64 = 20;

fn signer() -> SoftSigner {
    let provider = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
    provider.signer(PrivateKey::from_bytes(&[0x5a; 32]).unwrap())
}

fn salt(height: u64, i: usize) -> [u8; 16] {
    let mut s = [0xa5; 16];
    s[..8].copy_from_slice(&height.to_be_bytes());
    s[8] = u8::try_from(i).unwrap();
    s
}

fn tx(signer: &SoftSigner, height: u64, i: usize) -> SignedTx {
    let body = Transaction {
        fuel_limit: None,
        chain_id: ChainId::new("gov-bj-1").unwrap(),
        salt: salt(height, i),
        expiry: Height(height + 100),
        sender: Sender::Registered(Digest([0x11; 32])),
        call: Call {
            contract: "registry".into(),
            method: "put".into(),
            args: vec![format!("k{height}-{i}").into_bytes(), b"v".to_vec()],
        },
    };
    SignedTx::sign(body, signer, &UserId::default()).unwrap()
}

fn receipt_for(tx: &SignedTx, i: usize) -> Receipt {
    let status = if i % 3 == 2 {
        Status::Failed {
            code: 7,
            message: "denied".into(),
        }
    } else {
        Status::Success
    };
    Receipt {
        fuel_used: Some(0),
        output: Vec::new(),
        tx_id: tx.tx_id(),
        status,
        events: vec![Event {
            topics: Vec::new(),
            contract: "registry".into(),
            name: "put".into(),
            data: vec![0x42, u8::try_from(i).unwrap()],
        }],
    }
}

/// Builds the next block on `store`'s tip, with `n` transactions, its receipts and state.
fn next_block(
    store: &ChainStore<MemBackend>,
    signer: &SoftSigner,
    n: usize,
) -> (Block, Vec<Receipt>, UpdateBatch) {
    let (height, parent, prev_root) = match store.tip().unwrap() {
        None => (0, BlockHash::GENESIS_PARENT, EMPTY_ROOT),
        Some(t) => (
            t.height.0 + 1,
            t.hash,
            store.header(t.height).unwrap().unwrap().state_root,
        ),
    };
    let txs: Vec<SignedTx> = (0..n).map(|i| tx(signer, height, i)).collect();
    let receipts: Vec<Receipt> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| receipt_for(t, i))
        .collect();
    let updates: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
        .map(|i| (format!("k{height}-{i}").into_bytes(), Some(b"v".to_vec())))
        .chain([(b"height".to_vec(), Some(height.to_be_bytes().to_vec()))])
        .collect();
    let state = state::apply(&store.state_nodes(), prev_root, &updates).unwrap();
    let mut block = Block {
        header: BlockHeader {
            chain_id: ChainId::new("gov-bj-1").unwrap(),
            height: Height(height),
            tx_count: u32::try_from(n).unwrap(),
            parent,
            tx_root: Digest([0; 32]),
            state_root: state.root,
            receipts_root: types::receipts_root(&receipts),
            timestamp: Timestamp(1_700_000_000_000 + height * 1000),
            proposer: Digest([0x22; 32]),
            consensus: Some(types::ConsensusLinks {
                validator_set: Digest([0x33; 32]),
                next_validator_set: Digest([0x33; 32]),
                last_commit: Digest([0; 32]),
            }),
        },
        txs,
    };
    block.header.tx_root = block.tx_root();
    (block, receipts, state)
}

fn chain() -> (ChainStore<MemBackend>, SoftSigner) {
    let store = ChainStore::new(MemBackend::new(), Limits::default());
    let s = signer();
    for h in 0..CHAIN_LEN {
        let (block, receipts, state) = next_block(&store, &s, usize::try_from(h % 4).unwrap());
        store.commit_block(&block, &receipts, state).unwrap();
    }
    (store, s)
}

fn key(h: u64) -> [u8; 8] {
    h.to_be_bytes()
}

/// Flips one byte of a stored value, through the backend.
fn flip(store: &ChainStore<MemBackend>, table: Table, key: &[u8], at: impl Fn(&[u8]) -> usize) {
    let mut value = store.backend().get(table, key).unwrap().unwrap();
    let i = at(&value);
    value[i] ^= 0x01;
    let mut batch = WriteBatch::new();
    batch.put(table, key.to_vec(), value);
    store.backend().write(batch).unwrap();
}

fn height_of(e: IntegrityError) -> (u64, IntegrityFault) {
    (e.height.0, e.fault)
}

#[test]
fn commit_chain_read_back_and_verify() {
    let (store, s) = chain();
    let tip = store.tip().unwrap().unwrap();
    assert_eq!(tip.height, Height(CHAIN_LEN - 1));
    let tip_header = store.header(tip.height).unwrap().unwrap();
    assert_eq!(tip_header.hash(), tip.hash);

    for h in 0..CHAIN_LEN {
        let header = store.header(Height(h)).unwrap().unwrap();
        let block = store.block(Height(h)).unwrap().unwrap();
        assert_eq!(block.header, header);
        assert_eq!(block.txs.len(), usize::try_from(h % 4).unwrap());
        if h > 0 {
            let prev = store.header(Height(h - 1)).unwrap().unwrap();
            assert_eq!(header.parent, prev.hash());
        }
        for (i, t) in block.txs.iter().enumerate() {
            let expected = tx(&s, h, i);
            assert_eq!(t.tx_id(), expected.tx_id());
            let (got, loc) = store.tx(&t.tx_id()).unwrap().unwrap();
            assert_eq!(&got, t);
            assert_eq!(
                loc,
                TxLocation {
                    height: Height(h),
                    position: u32::try_from(i).unwrap()
                }
            );
            assert_eq!(
                store.receipt(&t.tx_id()).unwrap().unwrap(),
                receipt_for(t, i)
            );
            // The state written with the block is readable through the NodeStore view.
            let key = format!("k{h}-{i}").into_bytes();
            assert_eq!(
                state::get(&store.state_nodes(), tip_header.state_root, &key).unwrap(),
                Some(b"v".to_vec())
            );
        }
    }
    assert_eq!(store.header(Height(CHAIN_LEN)).unwrap(), None);
    assert_eq!(store.block(Height(CHAIN_LEN)).unwrap(), None);
    let absent = tx(&s, 999, 0).tx_id();
    assert!(store.tx(&absent).unwrap().is_none());
    assert!(store.receipt(&absent).unwrap().is_none());
    assert_eq!(
        state::get(&store.state_nodes(), tip_header.state_root, b"height").unwrap(),
        Some((CHAIN_LEN - 1).to_be_bytes().to_vec())
    );

    store.verify_chain(Height(0), tip.height).unwrap();
    store.verify_chain(Height(5), Height(9)).unwrap();
    assert_eq!(store.check_tip_on_startup().unwrap(), Some(tip));
    assert_eq!(store.verify_all().unwrap(), Some(tip));
}

#[test]
fn empty_store() {
    let store = ChainStore::new(MemBackend::new(), Limits::default());
    assert_eq!(store.tip().unwrap(), None);
    assert_eq!(store.check_tip_on_startup().unwrap(), None);
    assert_eq!(store.verify_all().unwrap(), None);
    let (h, fault) = height_of(store.verify_chain(Height(0), Height(0)).unwrap_err());
    assert_eq!(h, 0);
    assert!(matches!(fault, IntegrityFault::BeyondTip { tip: None }));
}

#[test]
fn verify_beyond_tip_is_refused() {
    let (store, _) = chain();
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN))
            .unwrap_err(),
    );
    assert_eq!(h, CHAIN_LEN);
    assert!(matches!(fault, IntegrityFault::BeyondTip { tip: Some(t) } if t.0 == CHAIN_LEN - 1));
}

#[test]
fn tampered_block_names_its_height() {
    let (store, s) = chain();
    // Flip a byte of the salt of the first transaction of block 7: its ID, hence tx_root,
    // changes.
    let needle = salt(7, 0);
    flip(&store, Table::Blocks, &key(7), |v| {
        v.windows(16).position(|w| w == needle).unwrap() + 3
    });
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN - 1))
            .unwrap_err(),
    );
    assert_eq!(h, 7);
    assert!(matches!(fault, IntegrityFault::TxRoot { .. }), "{fault:?}");
    // Heights before it are fine; the start-up check looks at the tip only.
    store.verify_chain(Height(0), Height(6)).unwrap();
    store.check_tip_on_startup().unwrap();
    assert!(store.tx(&tx(&s, 7, 0).tx_id()).unwrap().is_none());
}

#[test]
fn tampered_signature_names_its_height() {
    let (store, s) = chain();
    // Flip the last byte of the signature of the first transaction of block 7 (the last byte
    // of s: the DER stays strict). The transaction ID does not cover the signature, but the
    // transactions root does (SignedTx::entry_hash), so tx_root no longer matches.
    let stored = store.block(Height(7)).unwrap().unwrap();
    let der = stored.txs[0].signature.to_der();
    flip(&store, Table::Blocks, &key(7), |v| {
        v.windows(der.len()).position(|w| w == der).unwrap() + der.len() - 1
    });
    let tampered = store.block(Height(7)).unwrap().unwrap();
    assert_ne!(tampered.txs[0].signature, stored.txs[0].signature);
    assert_eq!(tampered.txs[0].tx_id(), tx(&s, 7, 0).tx_id());
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN - 1))
            .unwrap_err(),
    );
    assert_eq!(h, 7);
    assert!(matches!(fault, IntegrityFault::TxRoot { .. }), "{fault:?}");
    store.verify_chain(Height(0), Height(6)).unwrap();
}

#[test]
fn undecodable_block_names_its_height() {
    let (store, _) = chain();
    flip(&store, Table::Blocks, &key(3), |_| 0); // the format version byte
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN - 1))
            .unwrap_err(),
    );
    assert_eq!(h, 3);
    assert!(
        matches!(
            fault,
            IntegrityFault::Unreadable {
                table: Table::Blocks,
                source: StorageError::Decode { .. }
            }
        ),
        "{fault:?}"
    );
}

#[test]
fn tampered_header_names_its_height() {
    let (store, _) = chain();
    // The last byte is in `proposer`: the header still decodes but no longer matches the
    // block's copy, and its hash no longer matches block 6's parent.
    flip(&store, Table::Headers, &key(5), |v| v.len() - 1);
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN - 1))
            .unwrap_err(),
    );
    assert_eq!(h, 5);
    assert!(matches!(fault, IntegrityFault::BlockHeader), "{fault:?}");
    let (h, fault) = height_of(store.verify_chain(Height(6), Height(6)).unwrap_err());
    assert_eq!(h, 6);
    assert!(
        matches!(fault, IntegrityFault::ParentLink { .. }),
        "{fault:?}"
    );
}

#[test]
fn tampered_tip_header_is_refused_at_startup() {
    let (store, _) = chain();
    let tip = CHAIN_LEN - 1;
    flip(&store, Table::Headers, &key(tip), |v| v.len() - 1);
    let (h, fault) = height_of(store.check_tip_on_startup().unwrap_err());
    assert_eq!(h, tip);
    assert!(matches!(fault, IntegrityFault::TipHash { .. }), "{fault:?}");
}

#[test]
fn tampered_receipt_names_its_height() {
    let (store, _) = chain();
    // Block 9 has one transaction; the receipt (version 2) ends with its event's data, then
    // the output's length (4 bytes, an empty output): the fifth byte from the end is data.
    let loc = [key(9).as_slice(), &0u32.to_be_bytes()].concat();
    flip(&store, Table::Receipts, &loc, |v| v.len() - 5);
    let (h, fault) = height_of(
        store
            .verify_chain(Height(0), Height(CHAIN_LEN - 1))
            .unwrap_err(),
    );
    assert_eq!(h, 9);
    assert!(
        matches!(fault, IntegrityFault::ReceiptsRoot { .. }),
        "{fault:?}"
    );
}

#[test]
fn tip_pointer_ahead_of_data_is_refused() {
    let (store, s) = chain();
    let (block, receipts, state) = next_block(&store, &s, 3);
    let batch = store.prepare_commit(&block, &receipts, &state).unwrap();
    // A backend that broke atomicity wrote the tip pointer and nothing else.
    store
        .backend()
        .write_partial(batch, |op| {
            matches!(
                op,
                WriteOp::Put {
                    table: Table::Meta,
                    ..
                }
            )
        })
        .unwrap();
    let (h, fault) = height_of(store.check_tip_on_startup().unwrap_err());
    assert_eq!(h, CHAIN_LEN);
    assert!(
        matches!(
            fault,
            IntegrityFault::Missing {
                table: Table::Headers,
                ..
            }
        ),
        "{fault:?}"
    );
    assert_eq!(height_of(store.verify_all().unwrap_err()).0, CHAIN_LEN);
}

#[test]
fn data_beyond_tip_pointer_is_refused() {
    let (store, s) = chain();
    let (block, receipts, state) = next_block(&store, &s, 2);
    let batch = store.prepare_commit(&block, &receipts, &state).unwrap();
    // Everything but the tip pointer was written.
    store
        .backend()
        .write_partial(batch, |op| {
            !matches!(
                op,
                WriteOp::Put {
                    table: Table::Meta,
                    ..
                }
            )
        })
        .unwrap();
    let (h, fault) = height_of(store.check_tip_on_startup().unwrap_err());
    assert_eq!(h, CHAIN_LEN);
    assert!(
        matches!(fault, IntegrityFault::DataBeyondTip { .. }),
        "{fault:?}"
    );

    // Only the receipts of the next block landed.
    let (store, s) = chain();
    let (block, receipts, state) = next_block(&store, &s, 2);
    let batch = store.prepare_commit(&block, &receipts, &state).unwrap();
    store
        .backend()
        .write_partial(batch, |op| {
            matches!(
                op,
                WriteOp::Put {
                    table: Table::Receipts,
                    ..
                }
            )
        })
        .unwrap();
    let (h, fault) = height_of(store.check_tip_on_startup().unwrap_err());
    assert_eq!(h, CHAIN_LEN);
    assert!(
        matches!(
            fault,
            IntegrityFault::DataBeyondTip {
                table: Table::Receipts
            }
        ),
        "{fault:?}"
    );
}

/// Asserts that `commit` is refused with an error matching `check` and writes nothing.
fn refused(
    store: &ChainStore<MemBackend>,
    block: &Block,
    receipts: &[Receipt],
    state: UpdateBatch,
    check: impl Fn(&StorageError) -> bool,
) {
    let before = store.backend().len().unwrap();
    let tip = store.tip().unwrap();
    let e = store.commit_block(block, receipts, state).unwrap_err();
    assert!(check(&e), "unexpected error: {e:?}");
    assert_eq!(store.backend().len().unwrap(), before);
    assert_eq!(store.tip().unwrap(), tip);
}

#[test]
fn bad_blocks_are_refused_and_write_nothing() {
    let (store, s) = chain();
    let next = Height(CHAIN_LEN);
    let (good, receipts, state) = next_block(&store, &s, 3);

    let mut b = good.clone();
    b.header.height = Height(CHAIN_LEN + 1);
    refused(&store, &b, &receipts, state.clone(), |e| {
        matches!(e, StorageError::HeightNotNext { height, expected }
            if height.0 == CHAIN_LEN + 1 && *expected == next)
    });

    let mut b = good.clone();
    b.header.parent = BlockHash(Digest([9; 32]));
    refused(
        &store,
        &b,
        &receipts,
        state.clone(),
        |e| matches!(e, StorageError::ParentMismatch { height, .. } if *height == next),
    );

    let mut b = good.clone();
    b.header.tx_root = Digest([1; 32]);
    refused(
        &store,
        &b,
        &receipts,
        state.clone(),
        |e| matches!(e, StorageError::TxRootMismatch { height, .. } if *height == next),
    );

    let mut b = good.clone();
    b.header.receipts_root = Digest([1; 32]);
    refused(
        &store,
        &b,
        &receipts,
        state.clone(),
        |e| matches!(e, StorageError::ReceiptsRootMismatch { height, .. } if *height == next),
    );

    let mut b = good.clone();
    b.header.state_root = Digest([1; 32]);
    refused(
        &store,
        &b,
        &receipts,
        state.clone(),
        |e| matches!(e, StorageError::StateRootMismatch { height, .. } if *height == next),
    );

    let mut b = good.clone();
    b.header.tx_count = 2;
    refused(
        &store,
        &b,
        &receipts,
        state.clone(),
        |e| matches!(e, StorageError::TxCountMismatch { height, declared: 2, actual: 3 } if *height == next),
    );

    // Receipts missing, reordered or extra.
    refused(
        &store,
        &good,
        &receipts[..2],
        state.clone(),
        |e| matches!(e, StorageError::ReceiptMismatch { height, position: 2 } if *height == next),
    );
    let swapped = vec![
        receipts[1].clone(),
        receipts[0].clone(),
        receipts[2].clone(),
    ];
    refused(&store, &good, &swapped, state.clone(), |e| {
        matches!(e, StorageError::ReceiptMismatch { position: 0, .. })
    });
    let mut extra = receipts.clone();
    extra.push(receipts[0].clone());
    refused(&store, &good, &extra, state.clone(), |e| {
        matches!(e, StorageError::ReceiptMismatch { position: 3, .. })
    });

    // A transaction already in the chain.
    let mut b = good.clone();
    b.txs[0] = tx(&s, 5, 0);
    b.header.tx_root = b.tx_root();
    let mut r = receipts.clone();
    r[0] = receipt_for(&b.txs[0], 0);
    b.header.receipts_root = types::receipts_root(&r);
    refused(
        &store,
        &b,
        &r,
        state.clone(),
        |e| matches!(e, StorageError::DuplicateTx { height, tx_id } if *height == next && *tx_id == b.txs[0].tx_id()),
    );

    // The good block still commits, and the chain verifies.
    store.commit_block(&good, &receipts, state).unwrap();
    store.verify_all().unwrap();
}

/// A store under `limits` holding block 0.
fn store_under(limits: Limits) -> (ChainStore<MemBackend>, SoftSigner) {
    let store = ChainStore::new(MemBackend::new(), limits);
    let s = signer();
    let (block, receipts, state) = next_block(&store, &s, 0);
    store.commit_block(&block, &receipts, state).unwrap();
    (store, s)
}

/// Issue 9, defect 1: the store used to write a block of any size and then refuse to read it
/// (`max_block_size`), so the chain could not restart. It now refuses, writing nothing, any
/// block or receipt it could not read back, naming the size and the limit.
#[test]
fn a_block_or_receipt_it_could_not_read_back_is_refused_and_writes_nothing() {
    let probe = store_under(Limits::default());
    let (block, _, _) = next_block(&probe.0, &probe.1, 3);
    let size = block.to_bytes().len();

    // One byte over max_block_size: refused, with both numbers, through either commit.
    let limits = Limits {
        max_block_size: size - 1,
        ..Limits::default()
    };
    let (store, s) = store_under(limits.clone());
    let (block, receipts, state) = next_block(&store, &s, 3);
    assert_eq!(block.to_bytes().len(), size);
    refused(&store, &block, &receipts, state.clone(), |e| {
        matches!(e, StorageError::BlockTooLarge { height: Height(1), size: got, limit }
            if *got == size && *limit == size - 1)
    });
    let e = store
        .commit_block(&block, &receipts, state.clone())
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "{size} bytes, above max_block_size = {}",
            size - 1
        )),
        "{e}"
    );
    let certificate = types::CommitCertificate {
        height: block.header.height,
        round: 0,
        block: block.header.hash(),
        signatures: vec![(
            Digest([0x22; 32]),
            crypto::Signature::from_scalars([1; 32], [2; 32]),
        )],
    };
    let before = store.backend().len().unwrap();
    assert!(matches!(
        store.commit_certified_block(&block, &receipts, state.clone(), &certificate),
        Err(StorageError::BlockTooLarge { .. })
    ));
    assert_eq!(store.backend().len().unwrap(), before);
    // The budget the producer uses is the same limit: this block's transactions exceed it.
    let entries: usize = block
        .txs
        .iter()
        .map(|t| Block::entry_len(t.to_bytes().len()))
        .sum();
    assert!(entries > limits.block_tx_budget(&block.header.chain_id));

    // Exactly max_block_size: committed and read back.
    let (store, s) = store_under(Limits {
        max_block_size: size,
        ..Limits::default()
    });
    let (block, receipts, state) = next_block(&store, &s, 3);
    store.commit_block(&block, &receipts, state).unwrap();
    assert_eq!(store.block(Height(1)).unwrap().unwrap(), block);
    store.verify_all().unwrap();

    // A receipt over max_receipt_size.
    let receipt_size = receipt_for(&tx(&s, 1, 0), 0).to_bytes().len();
    let (store, s) = store_under(Limits {
        max_receipt_size: receipt_size - 1,
        ..Limits::default()
    });
    let (block, receipts, state) = next_block(&store, &s, 3);
    refused(&store, &block, &receipts, state, |e| {
        matches!(e, StorageError::ReceiptTooLarge { height: Height(1), position: 0, size, limit }
            if *size == receipt_size && *limit == receipt_size - 1)
    });

    // Any other limit the readers enforce: more transactions than max_txs_per_block (the
    // header's tx_count is refused first), an event payload over max_event_data.
    let (store, s) = store_under(Limits {
        max_txs_per_block: 2,
        ..Limits::default()
    });
    let (block, receipts, state) = next_block(&store, &s, 3);
    refused(&store, &block, &receipts, state, |e| {
        matches!(e, StorageError::WouldNotReadBack { height: Height(1), table: Table::Headers, source }
            if source.field == "header.tx_count")
    });
    let (store, s) = store_under(Limits {
        max_event_data: 1,
        ..Limits::default()
    });
    let (block, receipts, state) = next_block(&store, &s, 3);
    refused(&store, &block, &receipts, state, |e| {
        matches!(e, StorageError::WouldNotReadBack { height: Height(1), table: Table::Receipts, source }
            if source.field == "receipt.events[].data")
    });
}

#[test]
fn genesis_must_be_height_zero_with_zero_parent() {
    let store = ChainStore::new(MemBackend::new(), Limits::default());
    let s = signer();
    let (good, receipts, state) = next_block(&store, &s, 1);
    let mut b = good.clone();
    b.header.height = Height(1);
    refused(&store, &b, &receipts, state.clone(), |e| {
        matches!(
            e,
            StorageError::HeightNotNext {
                expected: Height(0),
                ..
            }
        )
    });
    let mut b = good.clone();
    b.header.parent = BlockHash(Digest([1; 32]));
    refused(&store, &b, &receipts, state.clone(), |e| {
        matches!(
            e,
            StorageError::ParentMismatch {
                height: Height(0),
                ..
            }
        )
    });
    assert!(store.backend().is_empty().unwrap());
    store.commit_block(&good, &receipts, state).unwrap();
    store.verify_all().unwrap();
}

#[test]
fn state_view_is_read_only() {
    let (store, _) = chain();
    let mut view = store.state_nodes();
    assert!(matches!(
        view.write(Vec::new()),
        Err(StateError::Backend(_))
    ));
    assert_eq!(view.get(&Digest([7; 32])).unwrap(), None);
}

#[test]
fn encoded_values_are_the_canonical_codec() {
    let (store, _) = chain();
    let header = store.header(Height(3)).unwrap().unwrap();
    assert_eq!(
        store
            .backend()
            .get(Table::Headers, &key(3))
            .unwrap()
            .unwrap(),
        header.to_bytes()
    );
    let tip = store.tip().unwrap().unwrap();
    let raw = store.backend().get(Table::Meta, b"tip").unwrap().unwrap();
    assert_eq!(raw[..8], tip.height.0.to_be_bytes());
    assert_eq!(&raw[8..], tip.hash.as_bytes());
}

#[test]
fn malformed_tip_pointer_is_an_error() {
    let (store, _) = chain();
    let mut batch = WriteBatch::new();
    batch.put(Table::Meta, b"tip".to_vec(), vec![1, 2, 3]);
    store.backend().write(batch).unwrap();
    assert!(matches!(
        store.tip(),
        Err(StorageError::BadLength {
            table: Table::Meta,
            len: 3,
            ..
        })
    ));
    assert!(store.check_tip_on_startup().is_err());
}

#[test]
fn the_state_tree_is_rehashed_and_a_tampered_node_is_found() {
    let (store, _) = chain();
    let tip = store.tip().unwrap().unwrap();
    let visited = store.verify_state(tip.height).unwrap();
    assert!(visited > 10, "visited {visited}");
    // Rewrite one leaf's value in place: its key no longer is its hash.
    let nodes = store.backend().iter_prefix(Table::StateNodes, &[]).unwrap();
    let (key, mut value) = nodes
        .into_iter()
        .find(|(_, v)| v.first() == Some(&0))
        .expect("a leaf");
    let last = value.len() - 1;
    value[last] ^= 1;
    let mut w = WriteBatch::new();
    w.put(Table::StateNodes, key.clone(), value);
    store.backend().write(w).unwrap();
    let e = store.verify_state(tip.height).unwrap_err();
    assert_eq!(e.height, tip.height);
    assert!(
        matches!(e.fault, IntegrityFault::StateNode { key: k, .. } if k.as_bytes()[..] == key[..]),
        "{e}"
    );
    // A node deleted: missing.
    let mut w = WriteBatch::new();
    w.delete(Table::StateNodes, key);
    store.backend().write(w).unwrap();
    let e = store.verify_state(tip.height).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

/// Issue 11 point 8 and issue 13 point 8: a store of another layout version is refused,
/// naming both versions, and nothing is written to it; a version-1 store (the key absent or 1)
/// is refused with what to do.
#[test]
fn a_store_of_another_version_is_refused_naming_both() {
    let (store, s) = chain();
    // Block 0 recorded this build's version.
    assert_eq!(
        store.backend().get(Table::Meta, b"store_version").unwrap(),
        Some(vec![storage::STORE_VERSION])
    );
    assert_eq!(storage::STORE_VERSION, 4);
    store.check_version().unwrap();
    let tip = store.tip().unwrap();
    let (block, receipts, state) = next_block(&store, &s, 1);
    let mut batch = storage::WriteBatch::new();
    batch.put(Table::Meta, b"store_version".to_vec(), vec![5]);
    store.backend().write(batch).unwrap();
    let e = store.check_version().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the store is format version 5; this build reads version 4: open it with the gmchain release that wrote it (docs/formats.md §0); nothing was changed"
    );
    // A commit is refused the same way and writes nothing.
    let e = store
        .commit_block(&block, &receipts, state.clone())
        .unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::UnsupportedVersion {
                supported: storage::STORE_VERSION,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(store.tip().unwrap(), tip);
    // A store written before the key existed (no key), or recording version 1, is a
    // version-1 store: refused, saying to re-initialise.
    for v1 in [None, Some(vec![1u8])] {
        let mut batch = storage::WriteBatch::new();
        match v1 {
            None => batch.delete(Table::Meta, b"store_version".to_vec()),
            Some(v) => batch.put(Table::Meta, b"store_version".to_vec(), v),
        }
        store.backend().write(batch).unwrap();
        let e = store.check_version().unwrap_err();
        assert!(
            matches!(
                e,
                StorageError::Version1Store {
                    supported: storage::STORE_VERSION
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("re-initialise the node"), "{e}");
        let e = store
            .commit_block(&block, &receipts, state.clone())
            .unwrap_err();
        assert!(matches!(e, StorageError::Version1Store { .. }), "{e}");
        assert_eq!(store.tip().unwrap(), tip);
    }
}

/// A v2 store takes only v2 headers, and a certificate only for the block it decides; the
/// consensus log of the committed height goes with the commit.
#[test]
fn v2_store_refuses_v1_headers_and_foreign_certificates_and_prunes_the_wal() {
    let (store, s) = chain();
    let (mut block, receipts, state) = next_block(&store, &s, 1);
    let mut v1 = block.clone();
    v1.header.consensus = None;
    assert!(matches!(
        store.commit_block(&v1, &receipts, state.clone()),
        Err(StorageError::HeaderVersion { .. })
    ));
    let certificate = |hash: types::BlockHash, height: Height| types::CommitCertificate {
        height,
        round: 0,
        block: hash,
        signatures: vec![],
    };
    let height = block.header.height;
    assert!(matches!(
        store.commit_certified_block(
            &block,
            &receipts,
            state.clone(),
            &certificate(types::BlockHash(Digest([9; 32])), height)
        ),
        Err(StorageError::CertificateMismatch { .. })
    ));
    assert!(matches!(
        store.commit_certified_block(
            &block,
            &receipts,
            state.clone(),
            &certificate(block.header.hash(), Height(height.0 + 1))
        ),
        Err(StorageError::CertificateMismatch { .. })
    ));
    store.wal_append(height, 0, b"a").unwrap();
    store.wal_append(height, 1, b"b").unwrap();
    let next = Height(height.0 + 1);
    store.wal_append(next, 0, b"c").unwrap();
    assert_eq!(
        store.wal_entries().unwrap(),
        vec![
            (height, 0, b"a".to_vec()),
            (height, 1, b"b".to_vec()),
            (next, 0, b"c".to_vec())
        ]
    );
    block.header.tx_root = block.tx_root();
    let cert = certificate(block.header.hash(), height);
    store
        .commit_certified_block(&block, &receipts, state, &cert)
        .unwrap();
    assert_eq!(store.certificate(height).unwrap(), Some(cert));
    assert_eq!(store.wal_entries().unwrap(), vec![(next, 0, b"c".to_vec())]);
}

/// Issue 18 (store version 4): block 0 records the base (height 0 and its hash) beside the
/// version. The key and value bytes are pinned: `base` = u64 BE height ‖ 32-byte hash.
#[test]
fn kat_version_4_block_0_records_the_base() {
    let (store, _s) = chain();
    let zero = store.header(Height(0)).unwrap().unwrap().hash();
    let mut want = vec![0u8; 8];
    want.extend_from_slice(zero.as_bytes());
    assert_eq!(
        store.backend().get(Table::Meta, b"base").unwrap(),
        Some(want)
    );
    assert_eq!(
        store.backend().get(Table::Meta, b"store_version").unwrap(),
        Some(vec![4])
    );
    assert_eq!(
        store.base().unwrap(),
        Some(storage::Tip {
            height: Height(0),
            hash: zero
        })
    );
    assert_eq!(store.pruned_below().unwrap(), None);
    assert_eq!(store.lowest_held().unwrap(), Height(0));
}

/// Issue 18: a version-3 store (what gmchain 0.1.0 wrote) is refused, saying to run
/// `gmchain node migrate`, and writes nothing; migrate checks the tip and writes the base and
/// the version in one batch; run again it has nothing to do.
///
/// The version-3 store is built honestly: a store committed by this build, with the version
/// byte set back to 3 and the `base` key removed, is byte for byte what 0.1.0 wrote, since
/// version 4 changes nothing else (the same tables, keys and encodings; block 0's batch gained
/// only the `base` key). Helper tests in tests/upgrade.rs migrate a store the real 0.1.0
/// binary wrote.
#[test]
fn a_version_3_store_is_refused_saying_to_migrate_and_migrate_moves_it() {
    let (store, s) = chain();
    for h in 1..4 {
        let (block, receipts, state) = next_block(&store, &s, h);
        store.commit_block(&block, &receipts, state).unwrap();
    }
    let tip = store.tip().unwrap();
    let mut batch = storage::WriteBatch::new();
    batch.put(Table::Meta, b"store_version".to_vec(), vec![3]);
    batch.delete(Table::Meta, b"base".to_vec());
    store.backend().write(batch).unwrap();
    let e = store.check_version().unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::NeedsMigration {
                found: 3,
                supported: 4
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("run `gmchain node migrate --config FILE`"),
        "{e}"
    );
    let (block, receipts, state) = next_block(&store, &s, 4);
    let e = store.commit_block(&block, &receipts, state).unwrap_err();
    assert!(matches!(e, StorageError::NeedsMigration { .. }), "{e}");
    assert_eq!(store.tip().unwrap(), tip);
    assert_eq!(store.base().unwrap(), None);

    let base = store.migrate_to_current().unwrap();
    let zero = store.header(Height(0)).unwrap().unwrap().hash();
    assert_eq!(base.height, Height(0));
    assert_eq!(base.hash, zero);
    assert_eq!(store.base().unwrap(), Some(base));
    store.check_version().unwrap();
    assert_eq!(store.tip().unwrap(), tip);
    store.verify_all().unwrap();
    let e = store.migrate_to_current().unwrap_err();
    assert_eq!(e.to_string(), "store is version 4, nothing to do");

    // A damaged version-3 store is not migrated: the tip check comes first.
    let mut batch = storage::WriteBatch::new();
    batch.put(Table::Meta, b"store_version".to_vec(), vec![3]);
    batch.delete(Table::Meta, b"base".to_vec());
    let t = tip.unwrap();
    batch.delete(Table::Blocks, t.height.0.to_be_bytes().to_vec());
    store.backend().write(batch).unwrap();
    let e = store.migrate_to_current().unwrap_err();
    assert!(matches!(e, storage::MigrateError::Integrity(_)), "{e}");
    assert_eq!(store.base().unwrap(), None);
    // Version 2 is not one to migrate: refused naming both.
    let mut batch = storage::WriteBatch::new();
    batch.put(Table::Meta, b"store_version".to_vec(), vec![2]);
    store.backend().write(batch).unwrap();
    let e = store.migrate_to_current().unwrap_err();
    assert!(
        e.to_string()
            .contains("format version 2; this build reads version 4"),
        "{e}"
    );
}

/// Issue 18: pruning deletes blocks and receipts below the mark in one batch and keeps the
/// headers, certificates and transaction index (a committed transaction is still a duplicate);
/// the full check runs from the mark.
#[test]
fn pruning_keeps_the_index_and_the_check_runs_from_the_mark() {
    let (store, s) = chain();
    let tip = store.tip().unwrap().unwrap();
    let old = store.block(Height(5)).unwrap().unwrap();
    let old_id = old.txs[0].tx_id();
    assert_eq!(
        store.prune_below(Height(12), &[], usize::MAX).unwrap(),
        Some(Height(12))
    );
    assert_eq!(store.pruned_below().unwrap(), Some(Height(12)));
    assert_eq!(store.lowest_held().unwrap(), Height(12));
    assert!(store.block(Height(5)).unwrap().is_none());
    assert!(store.block(Height(11)).unwrap().is_none());
    assert!(store.header(Height(5)).unwrap().is_some());
    assert!(
        store
            .receipt_at(TxLocation {
                height: Height(5),
                position: 0
            })
            .unwrap()
            .is_none()
    );
    assert!(store.block(Height(12)).unwrap().is_some());
    assert_eq!(
        store.tx_location(&old_id).unwrap().unwrap().height,
        Height(5)
    );
    store.verify_all().unwrap();
    // Pruning never reaches the tip, nor goes back.
    assert_eq!(
        store.prune_below(Height(10), &[], usize::MAX).unwrap(),
        None
    );
    assert_eq!(
        store.prune_below(Height(1000), &[], usize::MAX).unwrap(),
        Some(tip.height)
    );
    assert!(store.block(tip.height).unwrap().is_some());
    // A block repeating a pruned height's transaction is still refused as a duplicate.
    let (mut block, mut receipts, state) = next_block(&store, &s, 1);
    block.txs[0] = old.txs[0].clone();
    block.header.tx_root = block.tx_root();
    receipts[0].tx_id = old_id;
    block.header.receipts_root = types::receipts_root(&receipts);
    let e = store.commit_block(&block, &receipts, state).unwrap_err();
    assert!(matches!(e, StorageError::DuplicateTx { .. }), "{e}");
}

/// Review r3 L2 and M2: pruning goes in bounded batches (a long archive node switched to
/// pruned mode does not delete everything in one batch under the commit lock), each call on
/// from the mark the last one reached, and keeps the blocks it is told to keep (those holding
/// the causes of validator-set changes) with their receipts.
#[test]
fn pruning_goes_in_bounded_batches_and_keeps_the_blocks_asked_for() {
    let (store, _) = chain();
    let tip = store.tip().unwrap().unwrap();
    assert!(tip.height.0 > 12, "{tip:?}");
    let per_block: Vec<usize> = (0..12u64)
        .map(|h| {
            store
                .header(Height(h))
                .unwrap()
                .map_or(0, |hd| hd.tx_count as usize)
                + 1
        })
        .collect();
    // A budget of the first three blocks' deletions: the first call stops after them.
    let budget = per_block[..3].iter().sum::<usize>();
    let keep = [Height(7)];
    let mark = store.prune_below(Height(12), &keep, budget).unwrap();
    assert_eq!(mark, Some(Height(3)), "the first batch stops at its budget");
    assert_eq!(store.pruned_below().unwrap(), Some(Height(3)));
    assert!(store.block(Height(2)).unwrap().is_none());
    assert!(store.block(Height(3)).unwrap().is_some());
    // The next calls go on from the mark until the target; height 7 is kept.
    let mut calls = 1;
    while store.pruned_below().unwrap() < Some(Height(12)) {
        let m = store.prune_below(Height(12), &keep, budget).unwrap();
        assert!(m.is_some());
        calls += 1;
        assert!(calls < 20);
    }
    assert!(calls > 2, "{calls} calls");
    assert!(store.block(Height(7)).unwrap().is_some(), "kept");
    let kept = store.header(Height(7)).unwrap().unwrap();
    assert!(kept.tx_count > 0);
    for i in 0..kept.tx_count {
        assert!(
            store
                .receipt_at(TxLocation {
                    height: Height(7),
                    position: i
                })
                .unwrap()
                .is_some()
        );
    }
    for h in (0..12).filter(|h| *h != 7) {
        assert!(store.block(Height(h)).unwrap().is_none(), "height {h}");
    }
    assert!(store.block(Height(12)).unwrap().is_some());
    store.verify_all().unwrap();
}

/// Issue 18: a store initialised from a snapshot (`install_base` over the base's state nodes)
/// holds tip = base, verifies from its base, records block 0's hash, indexes the carried
/// blocks' transactions, and takes the next block; a base key edited is caught.
#[test]
fn a_store_installed_at_a_base_verifies_from_it_and_extends() {
    let (src, s) = chain();
    let tip = src.tip().unwrap().unwrap();
    let block = src.block(tip.height).unwrap().unwrap();
    let receipts: Vec<Receipt> = (0..block.txs.len())
        .map(|i| {
            src.receipt_at(TxLocation {
                height: tip.height,
                position: u32::try_from(i).unwrap(),
            })
            .unwrap()
            .unwrap()
        })
        .collect();
    let earlier = src.block(Height(tip.height.0 - 1)).unwrap().unwrap();
    let certificate = types::CommitCertificate {
        height: tip.height,
        round: 0,
        block: tip.hash,
        signatures: Vec::new(),
    };
    let dst = ChainStore::new(MemBackend::new(), Limits::default());
    // The state nodes first, as the import streams them.
    let mut w = WriteBatch::new();
    for (k, v) in src.backend().iter_prefix(Table::StateNodes, &[]).unwrap() {
        w.put(Table::StateNodes, k, v);
    }
    dst.backend().write(w).unwrap();
    let zero = src.header(Height(0)).unwrap().unwrap().hash();
    // A certificate of another block is refused, writing nothing.
    let other = types::CommitCertificate {
        block: BlockHash::GENESIS_PARENT,
        ..certificate.clone()
    };
    assert!(matches!(
        dst.install_base(&block, &receipts, &other, &[], zero, b"{}"),
        Err(StorageError::CertificateMismatch { .. })
    ));
    assert_eq!(dst.tip().unwrap(), None);
    let base = dst
        .install_base(
            &block,
            &receipts,
            &certificate,
            &earlier
                .txs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        t.tx_id(),
                        TxLocation {
                            height: earlier.header.height,
                            position: u32::try_from(i).unwrap(),
                        },
                    )
                })
                .collect::<Vec<_>>(),
            zero,
            b"{\"certified\":1}",
        )
        .unwrap();
    assert_eq!(base, tip);
    assert_eq!(
        dst.base_certified().unwrap().as_deref(),
        Some(&b"{\"certified\":1}"[..])
    );
    assert_eq!(src.base_certified().unwrap(), None);
    assert_eq!(dst.base().unwrap(), Some(tip));
    assert_eq!(dst.tip().unwrap(), Some(tip));
    assert_eq!(dst.recorded_genesis().unwrap(), Some(zero));
    assert_eq!(dst.lowest_held().unwrap(), tip.height);
    dst.check_version().unwrap();
    dst.verify_all().unwrap();
    dst.verify_state(tip.height).unwrap();
    for t in &earlier.txs {
        assert_eq!(
            dst.tx_location(&t.tx_id()).unwrap().unwrap().height,
            earlier.header.height
        );
    }
    assert!(dst.block(earlier.header.height).unwrap().is_none());
    // It extends like any store.
    let (next, next_receipts, next_state) = next_block(&src, &s, 2);
    dst.commit_block(&next, &next_receipts, next_state).unwrap();
    dst.verify_all().unwrap();
    // An edited base is caught at its height.
    let mut w = WriteBatch::new();
    let mut bad = tip.height.0.to_be_bytes().to_vec();
    bad.extend_from_slice(&[0x11; 32]);
    w.put(Table::Meta, storage::BASE_KEY.to_vec(), bad);
    dst.backend().write(w).unwrap();
    let e = dst.verify_all().unwrap_err();
    assert_eq!(e.height, tip.height);
    assert!(matches!(e.fault, IntegrityFault::BaseHash { .. }), "{e}");
}
