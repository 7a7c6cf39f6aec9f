//! Snapshots, snapshot nodes and pruned nodes on a chain longer than its expiry window, with a
//! validator-set change (review r3: M1, M2, M4, H2, L4, L7), driven in process over real
//! RocksDB stores: four validators of one organisation, the fourth revoked by the CRL of block
//! 3 (the set changes from height 4), one attestation a block, each block committed with the
//! precommits of the three validators left.

use std::path::Path;
use std::sync::Arc;

use crypto::{Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::Genesis;
use pki::{
    Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime, Validity,
};
use types::{Call, CommitCertificate, Encode, Height, SignedTx, Transaction, TxId, Vote, VoteKind};

use crate::config::BlockConfig;
use crate::error::NodeError;
use crate::local::{Engine, LocalNode, Validator};
use crate::snapshot::{self, Source};

/// The chain's expiry window: blocks carried by a snapshot of height H are those from
/// H + 2 − WINDOW.
const WINDOW: u64 = 6;
/// The archive chain's tip.
const TIP: u64 = 20;
/// The height the snapshot node joins at.
const BASE: u64 = 14;
/// The block whose CRL revokes validator 3 (the set changes from the next height).
const REVOKED_AT: u64 = 3;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type Key = (Arc<SoftSigner>, Certificate);

struct Chain {
    genesis: Genesis,
    ca: Certificate,
    ca_key: SoftSigner,
    admin: Key,
    /// Validators 0..4 (3 is revoked at [`REVOKED_AT`]) and a follower (4), not in the set.
    nodes: Vec<Key>,
    t0: u64,
}

fn keys() -> Chain {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(18)));
    let now = now_ms() / 1000;
    let validity = Validity {
        not_before: UnixTime(1_577_836_800),
        not_after: UnixTime(4_102_444_800),
    };
    let ca_key = p.generate().unwrap();
    let ca = pki::issue_root(
        "Test Root",
        "Test Bureau",
        Serial::from_hex("01").unwrap(),
        validity,
        &ca_key,
    )
    .unwrap();
    let leaf = |role: Role, cn: &str, serial: u8| -> Key {
        let k = p.generate().unwrap();
        let c = pki::issue(
            &ca,
            &ca_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Test Bureau",
                public_key: &k.public_key(),
                serial: Serial::from_bytes(&[serial]).unwrap(),
                validity,
            },
        )
        .unwrap();
        (Arc::new(k), c)
    };
    let nodes: Vec<Key> = (0..5u8)
        .map(|i| leaf(Role::NodeSign, &format!("node{i}"), 0x10 + i))
        .collect();
    let admin = leaf(Role::Admin, "admin", 0x20);
    let crl = pki::issue_crl(
        &ca,
        &ca_key,
        1,
        UnixTime(now - 3600),
        UnixTime(now + 86_400),
        &[],
    )
    .unwrap();
    let t0 = now_ms() - 600_000;
    let genesis = serde_json::json!({
        "format": 2,
        "chain_id": "snap-chain",
        "test_chain": true,
        "timestamp_ms": t0,
        "params": { "expiry_window": WINDOW },
        "organisations": [{ "name": "Test Bureau", "ca_cert": ca.to_pem(), "crl": crl.to_pem() }],
        "validators": nodes[..4].iter().enumerate().map(|(i, (_, c))| serde_json::json!({
            "name": format!("node{i}"), "cert": c.to_pem(),
        })).collect::<Vec<_>>(),
    });
    let genesis = Genesis::from_json(genesis.to_string().as_bytes()).unwrap();
    Chain {
        genesis,
        ca,
        ca_key,
        admin,
        nodes,
        t0,
    }
}

impl Chain {
    fn open(&self, dir: &Path, who: usize) -> LocalNode {
        LocalNode::open_with(
            dir,
            Validator {
                signer: self.nodes[who].0.clone(),
                certificate: self.nodes[who].1.clone(),
            },
            BlockConfig {
                interval_ms: 50,
                max_txs: 100,
                max_pool: 1000,
            },
            Arc::new(now_ms),
            Engine::Bft,
        )
        .unwrap()
    }

    /// A transaction of the admin calling `contract.method(args)`, with the largest expiry
    /// admission takes at `core`'s tip (tip + window): it stays includable until then.
    fn tx(
        &self,
        core: &LocalNode,
        salt: u64,
        contract: &str,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> SignedTx {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&salt.to_be_bytes());
        let body = Transaction {
            fuel_limit: None,
            chain_id: self.genesis.chain_id.clone(),
            salt: s,
            expiry: Height(core.tip().0.height.0 + WINDOW),
            sender: types::Sender::Certificate(self.admin.1.der().to_vec()),
            call: Call {
                contract: contract.into(),
                method: method.into(),
                args,
            },
        };
        SignedTx::sign(body, self.admin.0.as_ref(), &UserId::default()).unwrap()
    }

    fn anchor(&self, core: &LocalNode, salt: u64) -> SignedTx {
        let digest = crypto_sm::sm3::sm3(&salt.to_be_bytes());
        self.tx(
            core,
            salt,
            "attestation",
            "anchor",
            vec![
                digest.as_bytes().to_vec(),
                b"k".to_vec(),
                Vec::new(),
                Vec::new(),
            ],
        )
    }

    /// Admits `txs` at `core`'s tip, proposes the next block and commits it with the
    /// precommits of validators 0, 1 and 2 (a quorum before and after the change).
    fn block(&self, core: &LocalNode, txs: &[SignedTx]) -> Height {
        let admitted = txs
            .iter()
            .map(|t| {
                core.ledger()
                    .admit(&t.to_bytes(), UnixTime(now_ms() / 1000), &|_| false)
                    .unwrap()
            })
            .collect();
        let h = core.tip().0.height.next().unwrap();
        let p = core
            .ledger()
            .propose(
                admitted,
                self.nodes[1].1.fingerprint(),
                self.t0 + h.0 * 1000,
            )
            .unwrap();
        let hash = p.executed.hash();
        let votes: Vec<_> = (0..3)
            .map(|i| {
                Vote {
                    chain_id: self.genesis.chain_id.clone(),
                    height: h,
                    round: 0,
                    kind: VoteKind::Precommit,
                    block: Some(hash),
                    validator: self.nodes[i].1.fingerprint(),
                }
                .sign(self.nodes[i].0.as_ref())
                .unwrap()
            })
            .collect();
        core.commit(
            p.executed,
            CommitCertificate::from_votes(h, 0, hash, &votes),
        )
        .unwrap();
        h
    }

    /// The CRL transaction revoking validator 3.
    fn revoke(&self, core: &LocalNode) -> SignedTx {
        let now = now_ms() / 1000;
        let crl = pki::issue_crl(
            &self.ca,
            &self.ca_key,
            2,
            UnixTime(now - 1800),
            UnixTime(now + 86_400),
            &[RevokedEntry {
                serial: self.nodes[3].1.serial(),
                revoked_at: UnixTime(now - 1800),
                reason: RevocationReason::KeyCompromise,
            }],
        )
        .unwrap();
        self.tx(
            core,
            1_000_000,
            "identity",
            "update_crl",
            vec![crl.der().to_vec()],
        )
    }

    fn trust(&self) -> receipt::TrustContext {
        receipt::TrustContext {
            chain_id: self.genesis.chain_id.clone(),
            validators: self
                .genesis
                .validators
                .iter()
                .map(|v| v.cert.clone())
                .collect(),
            consortium: self.genesis.consortium().unwrap(),
        }
    }
}

/// The archive chain in `dir`: block h holds the anchor of salt h (block [`REVOKED_AT`] the
/// CRL instead), up to [`TIP`]. Returns the transaction of each height (index = height).
fn archive(c: &Chain, dir: &Path) -> Vec<Option<SignedTx>> {
    crate::local::init(dir, &c.genesis).unwrap();
    let core = c.open(dir, 0);
    let mut txs = vec![None];
    for h in 1..=TIP {
        let tx = if h == REVOKED_AT {
            c.revoke(&core)
        } else {
            c.anchor(&core, h)
        };
        assert_eq!(c.block(&core, std::slice::from_ref(&tx)), Height(h));
        txs.push(Some(tx));
    }
    let set = core.ledger().validator_set(Height(REVOKED_AT + 1));
    assert_eq!(set.len(), 3, "the CRL changed the set");
    txs
}

fn id(txs: &[Option<SignedTx>], h: u64) -> TxId {
    txs[h as usize].as_ref().unwrap().tx_id()
}

fn code(e: &NodeError) -> &'static str {
    e.code().name
}

#[test]
fn a_snapshot_node_answers_pruned_below_its_base_and_proves_set_changes_from_the_recorded_header() {
    let c = keys();
    let dirs = tempfile::tempdir().unwrap();
    let a = dirs.path().join("a");
    let txs = archive(&c, &a);
    let snap = dirs.path().join("s.bin");
    let e = snapshot::export(
        Source::Stopped(&a.join("db")),
        c.genesis.clone(),
        Some(Height(BASE)),
        &snap,
    )
    .unwrap();
    // A chain longer than the window: only the blocks from BASE + 2 − WINDOW are carried.
    assert_eq!(e.blocks_from, Height(BASE + 2 - WINDOW));
    // M5: a snapshot whose block is not the one the operator checked is refused.
    let other = dirs.path().join("other");
    let r = snapshot::import(
        &other,
        &c.genesis,
        &snap,
        Some(types::BlockHash(crypto::Digest([9; 32]))),
    )
    .unwrap_err();
    assert_eq!(r.code().name, "NODE_SNAPSHOT_INVALID", "{r}");
    assert!(r.to_string().contains("--expect-hash"), "{r}");
    assert!(!other.join("db").exists());
    let b = dirs.path().join("b");
    let imported = snapshot::import(&b, &c.genesis, &snap, Some(e.hash)).unwrap();
    assert_eq!(imported.set_changes, 1);
    assert_eq!(imported.indexed_from, e.blocks_from);
    let node = c.open(&b, 0);
    assert_eq!(node.tip().0.height, Height(BASE));
    // Review r2 H1 carried over: a store made from a snapshot has no consensus WAL, so it
    // carries the restore marker that keeps a validator from signing where it may have before.
    assert_eq!(
        crate::restored::read(node.store().backend()).unwrap(),
        Some(Height(0)),
        "a snapshot store is not marked as restored"
    );
    let unconfirmed = || {
        node.metrics
            .snapshot_unconfirmed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(unconfirmed(), 1, "no block after the base yet");

    // The window's edge, as an archive node judges it: the lowest carried block's
    // transaction (expiry BASE + 1) is a duplicate; the block before's (expiry BASE) expired.
    let edge = e.blocks_from.0;
    let now = UnixTime(now_ms() / 1000);
    let r = node
        .ledger()
        .admit(
            &txs[edge as usize].as_ref().unwrap().to_bytes(),
            now,
            &|_| false,
        )
        .unwrap_err();
    assert_eq!(r.code.as_str(), "TX_DUPLICATE", "{}", r.message);
    let r = node
        .ledger()
        .admit(
            &txs[edge as usize - 1].as_ref().unwrap().to_bytes(),
            now,
            &|_| false,
        )
        .unwrap_err();
    assert_eq!(r.code.as_str(), "TX_EXPIRED", "{}", r.message);

    // M1: what needs a header or a state below the base answers NODE_PRUNED, not NODE_MISSING.
    let r = node.heights_in_time(0, u64::MAX).unwrap_err();
    assert_eq!(code(&r), "NODE_PRUNED", "{r}");
    let r = node
        .trace(
            execution::TraceKind::Contract,
            "attestation",
            Height(1),
            Height(BASE),
            0,
            10,
            false,
        )
        .unwrap_err();
    match r {
        crate::supervise::TraceError::Node(e) => assert_eq!(code(&e), "NODE_PRUNED", "{e}"),
        other => panic!("{other}"),
    }
    for h in [0, 2, BASE - 1] {
        let r = NodeError::from(node.ledger().certified_header(Height(h)).unwrap_err());
        assert_eq!(code(&r), "NODE_PRUNED", "certified header {h}: {r}");
        let r = NodeError::from(node.ledger().with_state_at(Height(h), |_| ()).unwrap_err());
        assert_eq!(code(&r), "NODE_PRUNED", "state at {h}: {r}");
    }
    // A trace from the height after the base reads the base's state.
    node.trace(
        execution::TraceKind::Contract,
        "attestation",
        Height(BASE + 1),
        Height(BASE),
        0,
        10,
        false,
    )
    .unwrap_err();
    node.ledger().with_state_at(Height(BASE), |_| ()).unwrap();
    // The base block's transaction: held, but its bundle reads the state before the base.
    assert!(node.receipt(&id(&txs, BASE)).unwrap().is_some());
    let r = node.receipt_bundle(&id(&txs, BASE)).unwrap_err();
    assert_eq!(code(&r), "NODE_PRUNED", "{r}");

    // M4: a transaction older than the carried window is not "not committed".
    for missing in [id(&txs, 5), TxId(crypto::Digest([7; 32]))] {
        let r = node.transaction(&missing).unwrap_err();
        assert_eq!(code(&r), "NODE_PRUNED", "{r}");
        assert!(r.to_string().contains("ask an archive node"), "{r}");
        let r = node.receipt(&missing).unwrap_err();
        assert_eq!(code(&r), "NODE_PRUNED", "{r}");
        let r = node.receipt_bundle(&missing).unwrap_err();
        assert_eq!(code(&r), "NODE_PRUNED", "{r}");
    }
    // An indexed one below the base: held() says so.
    let r = node.transaction(&id(&txs, BASE - 2)).unwrap_err();
    assert!(matches!(r, NodeError::Pruned { .. }), "{r}");

    // M2: the certified header at the base carries the set change below it (from the
    // recorded certified header), and verifies from the genesis file.
    let certified = receipt::CertifiedHeader {
        header: node.ledger().certified_header(Height(BASE)).unwrap().0,
        certificate: node.ledger().certified_header(Height(BASE)).unwrap().1,
        set_changes: node.ledger().set_changes(Height(BASE)).unwrap(),
    };
    assert_eq!(certified.set_changes.len(), 1);
    certified.verify(&c.trust()).unwrap();
    // The node extends its chain: a receipt of a later block verifies offline.
    let later = c.anchor(&node, 500);
    let h = c.block(&node, std::slice::from_ref(&later));
    assert_eq!(
        unconfirmed(),
        0,
        "a certified block after the base confirms it"
    );
    let bundle = node.receipt_bundle(&later.tx_id()).unwrap().unwrap();
    assert_eq!(bundle.set_changes.len(), 1);
    let v = bundle.verify(&c.trust(), None).unwrap();
    assert_eq!(v.set_changes, vec![Height(REVOKED_AT + 1)]);
    for salt in 501..=504 {
        c.block(&node, &[c.anchor(&node, salt)]);
    }
    let tip = node.tip().0.height;
    assert_eq!(tip, Height(h.0 + 4));
    drop(node);

    // L4: a snapshot node exporting at its own base: the carried blocks are below it, said
    // as such (not NODE_MISSING).
    let r = snapshot::export(
        Source::Stopped(&b.join("db")),
        c.genesis.clone(),
        Some(Height(BASE)),
        &dirs.path().join("x.bin"),
    )
    .unwrap_err();
    assert_eq!(r.code().name, "NODE_SNAPSHOT_SOURCE", "{r}");
    assert!(r.to_string().contains("joined from a snapshot"), "{r}");
    // Far enough above its base, it exports; the new snapshot's set changes come from the
    // recorded header, and a third node imports it.
    let h2 = Height(BASE + WINDOW - 2);
    assert!(h2 <= tip);
    let snap2 = dirs.path().join("s2.bin");
    let e2 = snapshot::export(
        Source::Copy(&b.join("db")),
        c.genesis.clone(),
        Some(h2),
        &snap2,
    )
    .unwrap();
    assert_eq!(e2.blocks_from, Height(BASE));
    let third = snapshot::import(&dirs.path().join("c"), &c.genesis, &snap2, None).unwrap();
    assert_eq!(third.set_changes, 1);
    assert_eq!(third.height, h2);
}

#[test]
fn a_pruned_follower_keeps_the_blocks_of_set_changes_and_a_validator_refuses_pruned_mode() {
    let c = keys();
    let dirs = tempfile::tempdir().unwrap();
    let a = dirs.path().join("a");
    let txs = archive(&c, &a);
    // H2: a validator of the current set does not prune.
    let validator = c.open(&a, 0);
    let r = validator.set_keep_blocks(4).unwrap_err();
    assert_eq!(code(&r), "NODE_PRUNED_VALIDATOR", "{r}");
    assert!(r.to_string().contains("remove keep_blocks"), "{r}");
    drop(validator);
    // The follower (not in the set) does; set changes' cause blocks stay.
    let follower = c.open(&a, 4);
    follower.set_keep_blocks(4).unwrap();
    for salt in 100..120 {
        c.block(&follower, &[c.anchor(&follower, salt)]);
    }
    let tip = follower.tip().0.height;
    let mark = follower.store().pruned_below().unwrap().unwrap();
    assert!(
        mark.0 > REVOKED_AT + 8 && mark.0 + 4 + 8 > tip.0,
        "mark {mark} at tip {tip}"
    );
    assert!(
        follower
            .store()
            .block(Height(REVOKED_AT))
            .unwrap()
            .is_some()
    );
    assert!(
        follower
            .store()
            .block(Height(REVOKED_AT + 1))
            .unwrap()
            .is_none()
    );
    // A pruned node keeps the whole index: a miss is "not committed", an old one NODE_PRUNED.
    assert!(
        follower
            .transaction(&TxId(crypto::Digest([7; 32])))
            .unwrap()
            .is_none()
    );
    let r = follower.receipt(&id(&txs, 5)).unwrap_err();
    assert_eq!(code(&r), "NODE_PRUNED", "{r}");
    // M2: a receipt of the tip's block carries the set change, proven from the kept block.
    let last = follower.store().block(tip).unwrap().unwrap().txs[0].tx_id();
    let bundle = follower.receipt_bundle(&last).unwrap().unwrap();
    let v = bundle.verify(&c.trust(), None).unwrap();
    assert_eq!(v.set_changes, vec![Height(REVOKED_AT + 1)]);
    assert_eq!(bundle.set_changes[0].causes.len(), 1);
}

/// The parts of a snapshot file (docs/formats.md §11) the tests below edit.
struct Parts {
    /// Everything up to the block count.
    head: Vec<u8>,
    /// The top block, its receipt count and receipts, as bytes.
    top: Vec<u8>,
    /// The other carried blocks, each with its length prefix.
    blocks: Vec<Vec<u8>>,
    /// The state nodes, each with its length prefix.
    nodes: Vec<Vec<u8>>,
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn parse(bytes: &[u8]) -> Parts {
    let mut at = 17;
    at += 4 + u32_at(bytes, at) + 32 + 8;
    at += 4 + u32_at(bytes, at);
    let head = bytes[..at].to_vec();
    let count = u32_at(bytes, at);
    at += 4;
    let top_from = at;
    at += 4 + u32_at(bytes, at);
    let receipts = u32_at(bytes, at);
    at += 4;
    for _ in 0..receipts {
        at += 4 + u32_at(bytes, at);
    }
    let top = bytes[top_from..at].to_vec();
    let mut blocks = Vec::new();
    for _ in 1..count {
        let len = 4 + u32_at(bytes, at);
        blocks.push(bytes[at..at + len].to_vec());
        at += len;
    }
    let mut nodes = Vec::new();
    loop {
        let len = u32_at(bytes, at);
        if len == 0 {
            break;
        }
        nodes.push(bytes[at..at + 4 + len].to_vec());
        at += 4 + len;
    }
    assert_eq!(at + 4 + 32, bytes.len());
    Parts {
        head,
        top,
        blocks,
        nodes,
    }
}

/// The file of `p`, with the SM3 trailer recomputed (so only the edit is wrong).
fn assemble(p: &Parts) -> Vec<u8> {
    let mut out = p.head.clone();
    out.extend_from_slice(&(u32::try_from(p.blocks.len() + 1).unwrap()).to_be_bytes());
    out.extend_from_slice(&p.top);
    for b in &p.blocks {
        out.extend_from_slice(b);
    }
    for n in &p.nodes {
        out.extend_from_slice(n);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    let d = crypto_sm::sm3::sm3(&out);
    out.extend_from_slice(d.as_bytes());
    out
}

#[test]
fn snapshots_with_a_cut_stream_an_extra_missing_or_misordered_node_unlinked_or_too_few_blocks_are_refused()
 {
    let c = keys();
    let dirs = tempfile::tempdir().unwrap();
    let a = dirs.path().join("a");
    archive(&c, &a);
    let snap = dirs.path().join("s.bin");
    snapshot::export(
        Source::Stopped(&a.join("db")),
        c.genesis.clone(),
        None,
        &snap,
    )
    .unwrap();
    let bytes = std::fs::read(&snap).unwrap();
    let good = parse(&bytes);
    assert_eq!(assemble(&good), bytes, "the parser reads the whole file");
    assert!(good.nodes.len() > 3 && good.blocks.len() >= 2);
    let refused = |name: &str, file: Vec<u8>, code_name: &str, needle: &str| {
        let path = dirs.path().join(format!("{name}.bin"));
        std::fs::write(&path, file).unwrap();
        let data = dirs.path().join(format!("data-{name}"));
        let r = snapshot::import(&data, &c.genesis, &path, None).unwrap_err();
        assert_eq!(r.code().name, code_name, "{name}: {r}");
        assert!(
            r.to_string().contains(needle),
            "{name}: expected {needle:?} in {r}"
        );
        assert!(!data.join("db").exists(), "{name}: a store was left");
        assert!(
            !data.join("db.importing").exists(),
            "{name}: a partial store was left"
        );
    };
    // Cut in the middle of the state nodes.
    refused(
        "cut",
        bytes[..good.head.len() + 4 + good.top.len() + 40].to_vec(),
        "NODE_SNAPSHOT_FORMAT",
        "truncated",
    );
    let cut_at = bytes.len() - 32 - 4 - good.nodes.last().unwrap().len() / 2;
    refused(
        "cut-node",
        bytes[..cut_at].to_vec(),
        "NODE_SNAPSHOT_FORMAT",
        "truncated",
    );
    // One node more than the tree.
    let mut p = parse(&bytes);
    let extra = p.nodes.last().unwrap().clone();
    p.nodes.push(extra);
    refused(
        "extra",
        assemble(&p),
        "NODE_SNAPSHOT_INVALID",
        "beyond the tree",
    );
    // The last node missing.
    let mut p = parse(&bytes);
    p.nodes.pop();
    refused(
        "missing",
        assemble(&p),
        "NODE_SNAPSHOT_INVALID",
        "are missing",
    );
    // Two nodes in the wrong order (the root's children swapped).
    let mut p = parse(&bytes);
    p.nodes.swap(1, 2);
    refused("order", assemble(&p), "NODE_SNAPSHOT_INVALID", "not the");
    // A carried block that does not link: two swapped.
    let mut p = parse(&bytes);
    p.blocks.swap(0, 1);
    refused(
        "unlinked",
        assemble(&p),
        "NODE_SNAPSHOT_INVALID",
        "is not the parent",
    );
    // Too few blocks carried: the lowest dropped (a replay of its transaction would pass).
    let mut p = parse(&bytes);
    p.blocks.pop();
    refused(
        "too-few",
        assemble(&p),
        "NODE_SNAPSHOT_INVALID",
        "may still be included after",
    );
    // The good file imports.
    snapshot::import(&dirs.path().join("ok"), &c.genesis, &snap, None).unwrap();
}
