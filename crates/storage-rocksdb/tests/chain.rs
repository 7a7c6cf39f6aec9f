//! The chain store on RocksDB: sealed blocks committed with one WAL sync each, read back
//! after reopening, and tampering on disk found at start-up or by the full check, naming the
//! height.

use std::sync::Arc;

use crypto::{Digest, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use state::{EMPTY_ROOT, UpdateBatch};
use storage::{ChainStore, KvBackend, Table, WriteBatch};
use storage_rocksdb::RocksBackend;
use types::{
    Block, BlockHash, BlockHeader, Call, ChainId, CommitCertificate, Height, Limits, Receipt,
    Sender, SignedTx, Status, Timestamp, Transaction, Vote, VoteKind,
};

fn signer() -> SoftSigner {
    let provider = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
    provider.signer(PrivateKey::from_bytes(&[0x5a; 32]).unwrap())
}

fn next_block(
    store: &ChainStore<RocksBackend>,
    signer: &SoftSigner,
    n: usize,
) -> (Block, Vec<Receipt>, UpdateBatch, CommitCertificate) {
    let (height, parent, prev_root) = match store.tip().unwrap() {
        None => (0, BlockHash::GENESIS_PARENT, EMPTY_ROOT),
        Some(t) => (
            t.height.0 + 1,
            t.hash,
            store.header(t.height).unwrap().unwrap().state_root,
        ),
    };
    let txs: Vec<SignedTx> = (0..n)
        .map(|i| {
            let mut salt = [0u8; 16];
            salt[..8].copy_from_slice(&height.to_be_bytes());
            salt[8] = i as u8;
            let body = Transaction {
                fuel_limit: None,
                chain_id: ChainId::new("gov-bj-1").unwrap(),
                salt,
                expiry: Height(height + 100),
                sender: Sender::Registered(Digest([0x11; 32])),
                call: Call {
                    contract: "attestation".into(),
                    method: "anchor".into(),
                    args: vec![vec![i as u8; 32]],
                },
            };
            SignedTx::sign(body, signer, &UserId::default()).unwrap()
        })
        .collect();
    let receipts: Vec<Receipt> = txs
        .iter()
        .map(|t| Receipt {
            fuel_used: Some(0),
            output: Vec::new(),
            tx_id: t.tx_id(),
            status: Status::Success,
            events: vec![],
        })
        .collect();
    let updates: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
        .map(|i| (format!("k{height}-{i}").into_bytes(), Some(b"v".to_vec())))
        .collect();
    let state = state::apply(&store.state_nodes(), prev_root, &updates).unwrap();
    let mut block = Block {
        header: BlockHeader {
            chain_id: ChainId::new("gov-bj-1").unwrap(),
            height: Height(height),
            tx_count: n as u32,
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
    // A one-validator certificate: its precommit, signed.
    let hash = block.header.hash();
    let vote = Vote {
        chain_id: block.header.chain_id.clone(),
        height: block.header.height,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(hash),
        validator: Digest([0x22; 32]),
    }
    .sign(signer)
    .unwrap();
    let cert = CommitCertificate::from_votes(block.header.height, 0, hash, [&vote]);
    (block, receipts, state, cert)
}

fn build(dir: &std::path::Path, blocks: u64) {
    let store = ChainStore::new(RocksBackend::open(dir, true).unwrap(), Limits::default());
    let s = signer();
    let base = store.backend().stats();
    for h in 0..blocks {
        let (block, receipts, state, seal) = next_block(&store, &s, (h % 5) as usize + 1);
        store
            .commit_certified_block(&block, &receipts, state, &seal)
            .unwrap();
    }
    let st = store.backend().stats();
    assert_eq!(st.batches_written - base.batches_written, blocks);
    assert_eq!(
        st.wal_syncs - base.wal_syncs,
        blocks,
        "one WAL sync per block, not per transaction"
    );
}

#[test]
fn sealed_chain_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 12);
    let store = ChainStore::new(
        RocksBackend::open(dir.path(), false).unwrap(),
        Limits::default(),
    );
    let tip = store.check_tip_on_startup().unwrap().unwrap();
    assert_eq!(tip.height, Height(11));
    store.verify_all().unwrap();
    let block = store.block(Height(7)).unwrap().unwrap();
    let cert = store.certificate(Height(7)).unwrap().unwrap();
    assert_eq!(cert.block, block.header.hash());
    let set = types::ValidatorSet::new(vec![types::ValidatorEntry {
        id: Digest([0x22; 32]),
        public_key: crypto::Signer::public_key(&signer()),
        power: 1,
    }])
    .unwrap();
    cert.verify(
        &block.header.chain_id,
        Height(7),
        &block.header.hash(),
        &set,
    )
    .unwrap();
    let id = block.txs[1].tx_id();
    let (tx, loc) = store.tx(&id).unwrap().unwrap();
    assert_eq!(tx, block.txs[1]);
    assert_eq!((loc.height, loc.position), (Height(7), 1));
    assert_eq!(store.receipt(&id).unwrap().unwrap().tx_id, id);
}

#[test]
fn a_tampered_tip_is_refused_at_startup_naming_the_height() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 6);
    {
        let backend = RocksBackend::open(dir.path(), false).unwrap();
        let mut header = backend
            .get(Table::Headers, &5u64.to_be_bytes())
            .unwrap()
            .unwrap();
        let last = header.len() - 1;
        header[last] ^= 1;
        let mut w = WriteBatch::new();
        w.put(Table::Headers, 5u64.to_be_bytes().to_vec(), header);
        backend.write(w).unwrap();
    }
    let store = ChainStore::new(
        RocksBackend::open(dir.path(), false).unwrap(),
        Limits::default(),
    );
    let e = store.check_tip_on_startup().unwrap_err();
    assert_eq!(e.height, Height(5), "{e}");
}

#[test]
fn a_tampered_old_block_is_found_by_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 8);
    {
        let backend = RocksBackend::open(dir.path(), false).unwrap();
        let mut block = backend
            .get(Table::Blocks, &3u64.to_be_bytes())
            .unwrap()
            .unwrap();
        let last = block.len() - 1;
        block[last] ^= 0x40;
        let mut w = WriteBatch::new();
        w.put(Table::Blocks, 3u64.to_be_bytes().to_vec(), block);
        backend.write(w).unwrap();
    }
    let store = ChainStore::new(
        RocksBackend::open(dir.path(), false).unwrap(),
        Limits::default(),
    );
    // The tip is fine; the full check finds height 3.
    store.check_tip_on_startup().unwrap();
    let e = store.verify_all().unwrap_err();
    assert_eq!(e.height, Height(3), "{e}");
}

/// The names and sizes of the files of a store directory.
fn listing(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Issue 11 point 8 and its review: a store of another layout version is refused naming both
/// versions before RocksDB opens it for writing (which would flush and rewrite its files), and
/// whatever column families that layout has.
#[test]
fn a_store_of_another_version_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 2);
    {
        let backend = RocksBackend::open(dir.path(), false).unwrap();
        assert_eq!(
            backend
                .get(Table::Meta, storage::STORE_VERSION_KEY)
                .unwrap(),
            Some(vec![storage::STORE_VERSION])
        );
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Meta,
            storage::STORE_VERSION_KEY.to_vec(),
            vec![storage::STORE_VERSION + 1],
        );
        backend.write(batch).unwrap();
    }
    let before = listing(dir.path());
    let Err(e) = RocksBackend::open(dir.path(), false) else {
        panic!("a store of a later version was opened")
    };
    assert!(
        e.to_string()
            .ends_with("the store is format version 5; this build reads version 4: open it with the gmchain release that wrote it (docs/formats.md §0); nothing was changed"),
        "{e}"
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "the refused store was written to"
    );

    // A later layout with a column family this build does not know: still the versions named.
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let existing = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&opts, dir.path(), &existing).unwrap();
        db.create_cf("votes", &opts).unwrap();
    }
    let Err(e) = RocksBackend::open(dir.path(), false) else {
        panic!("a store of a later version was opened")
    };
    assert!(e.to_string().contains("format version 5"), "{e}");
}

/// Issue 18: a version-3 RocksDB store is refused by the node's open before anything is
/// written, saying to migrate; `open_for_migration` opens it, and the migration writes the
/// base and version 4 in one synced batch, after which the normal open and the full check
/// pass. The version-3 store is this build's with the version byte set back to 3 and the
/// `base` key removed: exactly what 0.1.0 wrote, since version 4 adds only that key.
#[test]
fn a_version_3_store_is_refused_then_migrated_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 3);
    {
        let backend = RocksBackend::open(dir.path(), false).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, storage::STORE_VERSION_KEY.to_vec(), vec![3]);
        batch.delete(Table::Meta, storage::BASE_KEY.to_vec());
        backend.write(batch).unwrap();
    }
    let before = listing(dir.path());
    let Err(e) = RocksBackend::open(dir.path(), false) else {
        panic!("a version-3 store was opened")
    };
    assert!(
        e.to_string()
            .contains("format version 3; this build reads version 4: stop the node and run `gmchain node migrate --config FILE`"),
        "{e}"
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "the refused store was written to"
    );
    {
        let store = ChainStore::new(
            RocksBackend::open_for_migration(dir.path()).unwrap(),
            Limits::default(),
        );
        let batches = store.backend().stats().batches_written;
        let base = store.migrate_to_current().unwrap();
        assert_eq!(store.backend().stats().batches_written - batches, 1);
        assert_eq!(base.height, Height(0));
        assert_eq!(base.hash, store.header(Height(0)).unwrap().unwrap().hash());
    }
    let store = ChainStore::new(
        RocksBackend::open(dir.path(), false).unwrap(),
        Limits::default(),
    );
    store.verify_all().unwrap();
    assert_eq!(store.base().unwrap().unwrap().height, Height(0));
    // A version-2 store is refused by the migration open too, naming both.
    drop(store);
    {
        let backend = RocksBackend::open(dir.path(), false).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, storage::STORE_VERSION_KEY.to_vec(), vec![2]);
        backend.write(batch).unwrap();
    }
    let Err(e) = RocksBackend::open_for_migration(dir.path()) else {
        panic!("a version-2 store was opened for migration")
    };
    assert!(
        e.to_string()
            .contains("format version 2; this build reads version 4"),
        "{e}"
    );
}

/// Issue 13 point 8: a version-1 store (the single-validator layout, with a `seals` family
/// and no certificates) is refused before anything is written, saying to re-initialise.
#[test]
fn a_version_1_store_is_refused_saying_to_reinitialise() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 2);
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let existing = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), &existing).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.delete_cf(&meta, storage::STORE_VERSION_KEY).unwrap();
    }
    let before = listing(dir.path());
    let Err(e) = RocksBackend::open(dir.path(), false) else {
        panic!("a version-1 store was opened")
    };
    let msg = e.to_string();
    assert!(msg.contains("format version 1"), "{msg}");
    assert!(msg.contains("re-initialise the node"), "{msg}");
    assert_eq!(
        listing(dir.path()),
        before,
        "the refused store was written to"
    );
}
