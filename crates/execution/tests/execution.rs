//! Integration tests of `execution` over a generated consortium: a root CA registered as the
//! organisation "GMChain Consortium", the agency CA of "Agency A" issued by it, leaves of every
//! role, a validator, CRLs; genesis, admission with every rejection code, execution of the
//! identity and attestation contracts, recheck, the certificate cache and determinism.

#[path = "execution/exchange.rs"]
mod exchange_contract;
#[path = "execution/layers.rs"]
mod layers;
#[path = "execution/standing.rs"]
mod standing;
#[path = "execution/supervision.rs"]
mod supervision;
#[path = "execution/wasm.rs"]
mod wasm;

use std::cell::Cell;
use std::sync::Arc;

use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm3::sm3;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{
    Admission, AdmitContext, BlockContext, ChainParams, Executor, FailureCode, Genesis,
    GenesisError, MemberRefusal, PERMISSIONS, Registry, RejectCode, Rejection, StateView,
    VerifiedTx,
};
use pki::{
    Certificate, Crl, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime,
    Validity, issue, issue_crl, issue_root,
};
use state::{MemStore, NodeStore};
use types::{
    Call, ChainId, Decode, Encode, Height, Receipt, Sender, SignedTx, Status, Transaction, TxId,
};

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const CHAIN: &str = "gov-bj-1";

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

fn validity(from: u64, to: u64) -> Validity {
    Validity {
        not_before: t(from),
        not_after: t(to),
    }
}

struct Org {
    key: SoftSigner,
    ca: Certificate,
}

struct Member {
    key: SoftSigner,
    cert: Certificate,
}

impl Member {
    fn id(&self) -> Digest {
        self.cert.fingerprint()
    }
}

/// A consortium: root (registered as its own organisation) → agency CAs → leaves.
struct Pki {
    p: SoftwareProvider,
    root: Org,
    a: Org,
    serial: Cell<u64>,
}

fn make_agency(p: &SoftwareProvider, root: &Org, serial: &Cell<u64>, name: &str) -> Org {
    let key = p.generate().unwrap();
    let s = serial.get();
    serial.set(s + 1);
    let ca = issue(
        &root.ca,
        &root.key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: &format!("{name} CA"),
            organisation: name,
            public_key: &key.public_key(),
            serial: Serial::from_bytes(&s.to_be_bytes()[6..]).unwrap(),
            validity: validity(0, 1825),
        },
    )
    .unwrap();
    Org { key, ca }
}

impl Pki {
    fn new() -> Pki {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(42)));
        let key = p.generate().unwrap();
        let ca = issue_root(
            "GMChain Root CA",
            "GMChain Consortium",
            Serial::from_hex("01").unwrap(),
            validity(0, 3650),
            &key,
        )
        .unwrap();
        let root = Org { key, ca };
        let serial = Cell::new(0x100);
        let a = make_agency(&p, &root, &serial, "Agency A");
        Pki { p, root, a, serial }
    }

    fn serial(&self) -> Serial {
        let s = self.serial.get();
        self.serial.set(s + 1);
        Serial::from_bytes(&s.to_be_bytes()[6..]).unwrap()
    }

    fn agency(&self, name: &str) -> Org {
        make_agency(&self.p, &self.root, &self.serial, name)
    }

    fn leaf(&self, org: &Org, role: Role, cn: &str) -> Member {
        let key = self.p.generate().unwrap();
        let cert = issue(
            &org.ca,
            &org.key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: &org.ca.organisation().unwrap(),
                public_key: &key.public_key(),
                serial: self.serial(),
                validity: validity(0, 365),
            },
        )
        .unwrap();
        Member { key, cert }
    }

    /// A self-signed root CA outside the consortium.
    fn rogue_root(&self, common_name: &str, organisation: &str, serial: &str) -> Org {
        let key = self.p.generate().unwrap();
        let ca = issue_root(
            common_name,
            organisation,
            Serial::from_hex(serial).unwrap(),
            validity(0, 3650),
            &key,
        )
        .unwrap();
        Org { key, ca }
    }

    /// The arguments of `register_org` and `replace_ca` for `org`: its CA and a first CRL.
    fn org_args(&self, org: &Org) -> Vec<Vec<u8>> {
        vec![
            org.ca.der().to_vec(),
            self.crl(org, 1, 0, &[]).der().to_vec(),
        ]
    }

    /// A CRL naming Agency A's CA but signed by the root's key. The fixture must build: a
    /// negative case that silently did not run when it failed proved nothing (issue 11).
    fn forged_crl(&self) -> Crl {
        pki::danger::sign_crl(
            &self.a.ca,
            &self.root.key,
            9,
            t(8),
            t(68),
            &[],
            &UserId::default(),
        )
        .expect("the forged CRL fixture builds")
    }

    /// A CRL of `org` current from day `from` for 60 days.
    fn crl(&self, org: &Org, number: u64, from: u64, revoked: &[&Member]) -> Crl {
        let entries: Vec<RevokedEntry> = revoked
            .iter()
            .map(|m| RevokedEntry {
                serial: m.cert.serial(),
                revoked_at: t(from),
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        issue_crl(&org.ca, &org.key, number, t(from), t(from + 60), &entries).unwrap()
    }
}

fn genesis(pki: &Pki, validator: &Member) -> Genesis {
    let json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": (T0 + DAY) * 1000,
        "params": { "expiry_window": 100, "max_txs_per_block": 2000, "max_tx_size": 131072 },
        "organisations": [
            { "name": "GMChain Consortium", "ca_cert": pki.root.ca.to_pem(), "crl": pki.crl(&pki.root, 1, 0, &[]).to_pem(), "sponsors": ["Agency B"] },
            { "name": "Agency A", "ca_cert": pki.a.ca.to_pem(), "crl": pki.crl(&pki.a, 1, 0, &[]).to_pem() },
        ],
        "validators": [ { "name": "node-1", "cert": validator.cert.to_pem() } ],
    });
    Genesis::from_json(json.to_string().as_bytes()).unwrap()
}

/// A node's view of the chain: store, tip, admission and executor.
struct Node {
    store: MemStore,
    root: Digest,
    height: u64,
    admission: Admission,
    executor: Executor,
}

impl Node {
    fn new(g: &Genesis) -> Node {
        let mut store = MemStore::new();
        let gb = g.build(&store).unwrap();
        let root = gb.update.root;
        store.write(gb.update.nodes).unwrap();
        Node {
            store,
            root,
            height: 0,
            admission: Admission::new(g.chain_id.clone(), &g.params, g.consortium().unwrap()),
            executor: Executor::new(g.chain_id.clone(), &g.params),
        }
    }

    fn view(&self) -> StateView<'_, MemStore> {
        StateView::new(&self.store, self.root)
    }

    fn ctx(&self) -> AdmitContext {
        AdmitContext {
            tip: Height(self.height),
            now: t(10 + self.height),
        }
    }

    fn block_ctx(&self) -> BlockContext {
        BlockContext {
            height: Height(self.height + 1),
            timestamp_ms: (T0 + 10 * DAY) * 1000 + self.height,
        }
    }

    fn admit(&self, bytes: &[u8]) -> Result<VerifiedTx, Rejection> {
        self.admission
            .admit(&self.view(), &self.ctx(), &|_| Ok(false), bytes)
    }

    fn must_admit(&self, bytes: &[u8]) -> VerifiedTx {
        self.admit(bytes)
            .unwrap_or_else(|r| panic!("expected admission, got {r}"))
    }

    fn recheck(&self, tx: &VerifiedTx) -> Result<(), Rejection> {
        self.admission
            .recheck(&self.view(), &self.ctx(), &|_| Ok(false), tx)
    }

    /// Executes and commits a block of `txs`.
    fn commit(&mut self, txs: &[VerifiedTx]) -> Vec<Receipt> {
        let exec = self
            .executor
            .execute_block(&self.store, self.root, &self.block_ctx(), txs)
            .unwrap();
        self.root = exec.update.root;
        self.store.write(exec.update.nodes).unwrap();
        self.height += 1;
        exec.receipts
    }

    /// Admits each transaction, then commits them in one block.
    fn run(&mut self, txs: &[Vec<u8>]) -> Vec<Receipt> {
        let v: Vec<VerifiedTx> = txs.iter().map(|b| self.must_admit(b)).collect();
        self.commit(&v)
    }
}

struct TxSpec<'a> {
    chain: &'a str,
    expiry: u64,
    registered: bool,
    salt: u8,
}

fn spec() -> TxSpec<'static> {
    TxSpec {
        chain: CHAIN,
        expiry: 50,
        registered: false,
        salt: 0,
    }
}

fn build_tx(
    s: &TxSpec<'_>,
    m: &Member,
    signer: &dyn Signer,
    contract: &str,
    method: &str,
    args: Vec<Vec<u8>>,
) -> Vec<u8> {
    let sender = if s.registered {
        Sender::Registered(m.id())
    } else {
        Sender::Certificate(m.cert.der().to_vec())
    };
    let body = Transaction {
        fuel_limit: None,
        chain_id: ChainId::new(s.chain).unwrap(),
        salt: [s.salt; 16],
        expiry: Height(s.expiry),
        sender,
        call: Call {
            contract: contract.into(),
            method: method.into(),
            args,
        },
    };
    SignedTx::sign(body, signer, &UserId::default())
        .unwrap()
        .to_bytes()
}

fn call(m: &Member, salt: u8, contract: &str, method: &str, args: Vec<Vec<u8>>) -> Vec<u8> {
    build_tx(
        &TxSpec { salt, ..spec() },
        m,
        &m.key,
        contract,
        method,
        args,
    )
}

/// `identity.deregister_org` of `name` by `m`.
fn dereg(m: &Member, salt: u8, name: &str) -> Vec<u8> {
    call(
        m,
        salt,
        "identity",
        "deregister_org",
        vec![name.as_bytes().to_vec()],
    )
}

fn anchor_args(digest: &Digest, kind: &str) -> Vec<Vec<u8>> {
    vec![
        digest.0.to_vec(),
        kind.as_bytes().to_vec(),
        "合同 v1".as_bytes().to_vec(),
        vec![0xe5; 20],
    ]
}

fn anchor(m: &Member, salt: u8, digest: &Digest) -> Vec<u8> {
    call(
        m,
        salt,
        "attestation",
        "anchor",
        anchor_args(digest, "contract.pdf"),
    )
}

fn code_of(r: Result<VerifiedTx, Rejection>) -> RejectCode {
    match r {
        Ok(tx) => panic!("expected a rejection, admitted {}", tx.id()),
        Err(r) => r.code,
    }
}

fn failed(r: &Receipt) -> Option<FailureCode> {
    match &r.status {
        Status::Success => None,
        Status::Failed { code, .. } => FailureCode::from_number(*code),
    }
}

fn assert_success(receipts: &[Receipt]) {
    for r in receipts {
        assert_eq!(r.status, Status::Success, "receipt {r:?}");
    }
}

struct World {
    pki: Pki,
    admin: Member,
    user: Member,
    user2: Member,
    user3: Member,
    auditor: Member,
    node_cert: Member,
    g: Genesis,
}

fn world() -> World {
    let pki = Pki::new();
    let node_cert = pki.leaf(&pki.a, Role::NodeSign, "node-1");
    let admin = pki.leaf(&pki.a, Role::Admin, "admin");
    let user = pki.leaf(&pki.a, Role::User, "alice");
    let user2 = pki.leaf(&pki.a, Role::User, "bob");
    let user3 = pki.leaf(&pki.a, Role::User, "carol");
    let auditor = pki.leaf(&pki.a, Role::Auditor, "audit");
    let g = genesis(&pki, &node_cert);
    World {
        pki,
        admin,
        user,
        user2,
        user3,
        auditor,
        node_cert,
        g,
    }
}

// ---------------------------------------------------------------------------------------------
// Genesis

#[test]
fn genesis_round_trip_hash_and_build_are_deterministic() {
    let w = world();
    let again = Genesis::from_json(w.g.to_json().as_bytes()).unwrap();
    assert_eq!(again, w.g);
    assert_eq!(again.hash(), w.g.hash());
    assert_eq!(w.g.consortium().unwrap().anchors().len(), 2);
    assert_eq!(
        w.g.validator(&w.node_cert.id()).unwrap().name,
        "node-1".to_string()
    );
    assert!(w.g.validator(&w.user.id()).is_none());

    let b1 = w.g.build(&MemStore::new()).unwrap();
    let b2 = again.build(&MemStore::new()).unwrap();
    assert_eq!(b1.block.header.hash(), b2.block.header.hash());
    assert_eq!(b1.update, b2.update);
    let h = &b1.block.header;
    assert_eq!(h.height, Height(0));
    assert_eq!(h.tx_count, 0);
    assert_eq!(h.parent, types::BlockHash::GENESIS_PARENT);
    assert_eq!(h.proposer, Digest([0; 32]));
    assert_eq!(h.timestamp.0, (T0 + DAY) * 1000);
    assert_eq!(h.receipts_root, types::receipts_root(&[]));
    assert_eq!(h.state_root, b1.update.root);
    assert!(b1.receipts.is_empty());

    // Another timestamp is another chain.
    let mut other = w.g.clone();
    other.timestamp_ms += 1;
    assert_ne!(other.hash(), w.g.hash());
    assert_ne!(
        other.build(&MemStore::new()).unwrap().block.header.hash(),
        b1.block.header.hash()
    );

    // The state holds what genesis wrote.
    let mut store = MemStore::new();
    store.write(b1.update.nodes.clone()).unwrap();
    let view = StateView::new(&store, b1.update.root);
    let orgs = view.organisations().unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["GMChain Consortium", "Agency A"]
    );
    assert_eq!(view.params().unwrap(), Some(w.g.params));
    assert_eq!(view.genesis_hash().unwrap(), Some(w.g.hash()));
    assert_eq!(view.validators().unwrap()[0].cert, w.node_cert.cert);
    assert!(view.crl(&w.pki.a.ca.fingerprint()).unwrap().is_some());
    assert_eq!(view.crls().unwrap().len(), 2);
}

#[test]
fn genesis_errors_name_their_field() {
    let w = world();
    let base: serde_json::Value = serde_json::from_str(&w.g.to_json()).unwrap();
    let b_org = w.pki.agency("Agency B");
    let b_node = w.pki.leaf(&b_org, Role::NodeSign, "node-b");
    let case = |edit: &dyn Fn(&mut serde_json::Value), field: &str, contains: &str| {
        let mut v = base.clone();
        edit(&mut v);
        let err = Genesis::from_json(v.to_string().as_bytes()).unwrap_err();
        match &err {
            GenesisError::Field { field: f, problem } => {
                assert_eq!(f, field, "{err}");
                assert!(problem.contains(contains), "{err}");
            }
            other => panic!("expected a field error for {field}, got {other}"),
        }
        assert!(err.to_string().starts_with(&format!("{field}: ")));
    };
    case(&|v| v["extra"] = 1.into(), "extra", "unknown field");
    case(
        &|v| v["params"]["gas"] = 1.into(),
        "params.gas",
        "unknown field",
    );
    case(
        &|v| v["params"]["expiry_window"] = 0.into(),
        "params.expiry_window",
        "at least 1",
    );
    case(
        &|v| v["params"]["max_tx_size"] = "big".into(),
        "params.max_tx_size",
        "unsigned",
    );
    // The floor governance respects holds at genesis too (MIN_MAX_TX_SIZE, 8 KiB).
    case(
        &|v| v["params"]["max_tx_size"] = 8191.into(),
        "params.max_tx_size",
        "below 8192 bytes",
    );
    case(&|v| v["chain_id"] = "".into(), "chain_id", "");
    case(&|v| v["chain_id"] = 5.into(), "chain_id", "not a string");
    case(
        &|v| {
            v.as_object_mut().unwrap().remove("timestamp_ms");
        },
        "timestamp_ms",
        "missing",
    );
    case(
        &|v| v["organisations"] = serde_json::json!([]),
        "organisations",
        "at least one",
    );
    case(
        &|v| v["organisations"][1]["ca_cert"] = "garbage".into(),
        "organisations[1].ca_cert",
        "not a PEM certificate",
    );
    case(
        &|v| v["organisations"][1]["crl"] = "garbage".into(),
        "organisations[1].crl",
        "not a PEM CRL",
    );
    case(
        &|v| v["organisations"][1]["name"] = "Agency Z".into(),
        "organisations[1].name",
        "differs from the organisation",
    );
    case(
        &|v| v["organisations"][1] = v["organisations"][0].clone(),
        "organisations[1].name",
        "duplicate",
    );
    case(
        &|v| v["organisations"][1]["crl"] = v["organisations"][0]["crl"].clone(),
        "organisations[1].crl",
        "not issued and signed",
    );
    let user_pem = w.user.cert.to_pem();
    case(
        &|v| v["organisations"][1]["ca_cert"] = user_pem.clone().into(),
        "organisations[1].ca_cert",
        "not a CA",
    );
    case(
        &|v| v["organisations"][1]["nickname"] = "x".into(),
        "organisations[1].nickname",
        "unknown field",
    );
    case(
        &|v| v["validators"] = serde_json::json!([]),
        "validators",
        "at least one",
    );
    case(
        &|v| v["validators"][0]["cert"] = user_pem.clone().into(),
        "validators[0].cert",
        "not node-sign",
    );
    let b_pem = b_node.cert.to_pem();
    case(
        &|v| v["validators"][0]["cert"] = b_pem.clone().into(),
        "validators[0].cert",
        "does not validate",
    );
    case(
        &|v| {
            let first = v["validators"][0].clone();
            v["validators"].as_array_mut().unwrap().push(first);
        },
        "validators[1].name",
        "duplicate",
    );
    assert!(matches!(
        Genesis::from_json(b"{not json"),
        Err(GenesisError::Json { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Admission: every rejection code

#[test]
fn every_bad_transaction_gets_its_code_and_good_ones_change_only_their_state() {
    let w = world();
    let mut node = Node::new(&w.g);
    let d = |i: u8| sm3(&[i]);

    // Block 1: the users' first transactions record their certificates.
    let r = node.run(&[
        anchor(&w.user, 1, &d(1)),
        anchor(&w.user2, 1, &d(2)),
        anchor(&w.user3, 1, &d(3)),
    ]);
    assert_success(&r);
    // Block 2: revoke user2, suspend user3.
    let crl = w.pki.crl(&w.pki.a, 2, 5, &[&w.user2]);
    let r = node.run(&[
        call(
            &w.admin,
            1,
            "identity",
            "update_crl",
            vec![crl.der().to_vec()],
        ),
        call(
            &w.admin,
            2,
            "identity",
            "suspend",
            vec![w.user3.id().0.to_vec()],
        ),
    ]);
    assert_success(&r);
    assert_eq!(node.height, 2);

    let b_org = w.pki.agency("Agency B");
    let outsider = w.pki.leaf(&b_org, Role::User, "mallory");
    let stranger = w.pki.p.generate().unwrap();
    let good_user = anchor(&w.user, 2, &d(10));
    let good_registered = build_tx(
        &TxSpec {
            registered: true,
            salt: 3,
            ..spec()
        },
        &w.user,
        &w.user.key,
        "attestation",
        "anchor",
        anchor_args(&d(11), "x"),
    );
    let good_admin = anchor(&w.admin, 3, &d(12));
    let replayed = anchor(&w.user, 4, &d(13));
    let replayed_id = SignedTx::from_bytes(&replayed, &types::Limits::default())
        .unwrap()
        .tx_id();
    let tip = node.height;
    let window = w.g.params.expiry_window;
    let mut oversized = good_user.clone();
    oversized.resize(w.g.params.max_tx_size + 1, 0);
    let unknown_sender = {
        let fake = w.pki.leaf(&w.pki.a, Role::User, "ghost");
        build_tx(
            &TxSpec {
                registered: true,
                ..spec()
            },
            &fake,
            &fake.key,
            "attestation",
            "anchor",
            anchor_args(&d(20), "x"),
        )
    };

    let bad: Vec<(&str, Vec<u8>, RejectCode)> = vec![
        ("malformed", vec![1, 2, 3], RejectCode::Malformed),
        (
            "trailing byte",
            [good_user.clone(), vec![0]].concat(),
            RejectCode::Malformed,
        ),
        ("oversized", oversized, RejectCode::TooLarge),
        (
            "wrong chain",
            build_tx(
                &TxSpec {
                    chain: "other-chain",
                    ..spec()
                },
                &w.user,
                &w.user.key,
                "attestation",
                "anchor",
                anchor_args(&d(21), "x"),
            ),
            RejectCode::WrongChain,
        ),
        (
            "expired",
            build_tx(
                &TxSpec {
                    expiry: tip,
                    ..spec()
                },
                &w.user,
                &w.user.key,
                "attestation",
                "anchor",
                anchor_args(&d(22), "x"),
            ),
            RejectCode::Expired,
        ),
        (
            "expiry too far",
            build_tx(
                &TxSpec {
                    expiry: tip + window + 1,
                    ..spec()
                },
                &w.user,
                &w.user.key,
                "attestation",
                "anchor",
                anchor_args(&d(23), "x"),
            ),
            RejectCode::ExpiryTooFar,
        ),
        ("replayed", replayed, RejectCode::Duplicate),
        (
            "unknown method",
            call(&w.user, 5, "attestation", "delete", vec![]),
            RejectCode::UnknownCall,
        ),
        (
            "unknown contract",
            call(&w.user, 5, "bank", "transfer", vec![]),
            RejectCode::UnknownCall,
        ),
        (
            "short digest",
            call(
                &w.user,
                6,
                "attestation",
                "anchor",
                vec![vec![0; 31], b"x".to_vec(), vec![], vec![]],
            ),
            RejectCode::BadArguments,
        ),
        (
            "bad kind",
            call(
                &w.user,
                6,
                "attestation",
                "anchor",
                anchor_args(&d(24), "a kind"),
            ),
            RejectCode::BadArguments,
        ),
        (
            "metadata not UTF-8",
            call(
                &w.user,
                6,
                "attestation",
                "anchor",
                vec![d(25).0.to_vec(), b"x".to_vec(), vec![0xff], vec![]],
            ),
            RejectCode::BadArguments,
        ),
        (
            "suspend id not 32 bytes",
            call(&w.admin, 6, "identity", "suspend", vec![vec![1; 5]]),
            RejectCode::BadArguments,
        ),
        (
            "unknown registered sender",
            unknown_sender,
            RejectCode::UnknownSender,
        ),
        (
            "unregistered organisation",
            anchor(&outsider, 1, &d(26)),
            RejectCode::CertInvalid,
        ),
        (
            "certificate garbage",
            {
                let body = Transaction {
                    fuel_limit: None,
                    chain_id: ChainId::new(CHAIN).unwrap(),
                    salt: [7; 16],
                    expiry: Height(50),
                    sender: Sender::Certificate(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
                    call: Call {
                        contract: "attestation".into(),
                        method: "anchor".into(),
                        args: anchor_args(&d(27), "x"),
                    },
                };
                SignedTx::sign(body, &w.user.key, &UserId::default())
                    .unwrap()
                    .to_bytes()
            },
            RejectCode::CertInvalid,
        ),
        (
            "revoked signer",
            anchor(&w.user2, 2, &d(28)),
            RejectCode::SignerRevoked,
        ),
        (
            "suspended signer",
            anchor(&w.user3, 2, &d(29)),
            RejectCode::SignerSuspended,
        ),
        (
            "wrongly signed",
            build_tx(
                &spec(),
                &w.user,
                &stranger,
                "attestation",
                "anchor",
                anchor_args(&d(30), "x"),
            ),
            RejectCode::SignatureInvalid,
        ),
        (
            "auditor anchoring",
            anchor(&w.auditor, 1, &d(31)),
            RejectCode::PermissionDenied,
        ),
        (
            "node certificate anchoring",
            anchor(&w.node_cert, 1, &d(32)),
            RejectCode::PermissionDenied,
        ),
        (
            "user updating the CRL",
            call(
                &w.user,
                7,
                "identity",
                "update_crl",
                vec![crl.der().to_vec()],
            ),
            RejectCode::PermissionDenied,
        ),
    ];

    let seen = |id: &TxId| Ok(*id == replayed_id);
    let view = node.view();
    let ctx = node.ctx();
    for (name, bytes, expected) in &bad {
        let got = node.admission.admit(&view, &ctx, &seen, bytes);
        match got {
            Ok(_) => panic!("{name}: admitted, expected {expected}"),
            Err(r) => {
                assert_eq!(r.code, *expected, "{name}: {r}");
                assert!(!r.message.is_empty());
                assert!(r.to_string().starts_with(expected.as_str()));
            }
        }
    }
    // Revocation unknown: at a time when the recorded CRL of Agency A is no longer current.
    let late = AdmitContext {
        tip: Height(tip),
        now: t(70),
    };
    let r = node.admission.admit(&view, &late, &seen, &good_user);
    assert_eq!(code_of(r), RejectCode::RevocationUnknown);

    // The good ones pass, and executing them changes exactly their attestations.
    let good: Vec<VerifiedTx> = [&good_user, &good_registered, &good_admin]
        .iter()
        .map(|b| node.admission.admit(&view, &ctx, &seen, b).unwrap())
        .collect();
    let before_count = node.view().attestation_count("Agency A/alice").unwrap();
    let r = node.commit(&good);
    assert_success(&r);
    let view = node.view();
    for i in [10, 11, 12] {
        assert!(
            view.attestation_by_digest(&d(i)).unwrap().is_some(),
            "d({i})"
        );
    }
    for i in 20..=32 {
        assert!(
            view.attestation_by_digest(&d(i)).unwrap().is_none(),
            "d({i})"
        );
    }
    assert_eq!(
        view.attestation_count("Agency A/alice").unwrap(),
        before_count + 2
    );
    assert_eq!(view.attestation_count("Agency A/admin").unwrap(), 1);
    assert_eq!(view.attestation_count("Agency A/audit").unwrap(), 0);
    assert!(view.certificate(&w.admin.id()).unwrap().is_some());
    assert!(view.certificate(&w.auditor.id()).unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Attestation

#[test]
fn anchor_then_query_by_id_digest_and_owner_with_proof() {
    let w = world();
    let mut node = Node::new(&w.g);
    let digests: Vec<Digest> = (0..5u8).map(|i| sm3(&[b'd', i])).collect();
    let txs: Vec<Vec<u8>> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| anchor(&w.user, u8::try_from(i).unwrap(), d))
        .collect();
    let admitted: Vec<VerifiedTx> = txs.iter().map(|b| node.must_admit(b)).collect();
    let ids: Vec<TxId> = admitted.iter().map(|t| t.id()).collect();
    let block = node.block_ctx();
    let receipts = node.commit(&admitted);
    assert_success(&receipts);
    for (r, id) in receipts.iter().zip(&ids) {
        assert_eq!(r.tx_id, *id);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].contract, "attestation");
        assert_eq!(r.events[0].name, "anchored");
        assert_eq!(r.events[0].data, id.0.0.to_vec());
    }
    let view = node.view();
    let a = view.attestation(&ids[2].0).unwrap().unwrap();
    assert_eq!(a.id, ids[2].0);
    assert_eq!(a.digest, digests[2]);
    assert_eq!(a.kind, "contract.pdf");
    assert_eq!(a.owner, "Agency A/alice");
    assert_eq!(a.metadata, "合同 v1");
    assert_eq!(a.pointer, vec![0xe5; 20]);
    assert_eq!(a.height, block.height);
    assert_eq!(a.timestamp_ms, block.timestamp_ms);
    assert_eq!(a.signer, w.user.id());
    assert_eq!(
        view.attestation_by_digest(&digests[2]).unwrap(),
        Some(a.clone())
    );
    assert_eq!(view.attestation_by_digest(&sm3(b"none")).unwrap(), None);
    assert_eq!(view.attestation(&sm3(b"none")).unwrap(), None);

    let all = view
        .attestations_by_owner("Agency A/alice", 0, 100)
        .unwrap();
    assert_eq!(all.iter().map(|a| a.digest).collect::<Vec<_>>(), digests);
    let page = view.attestations_by_owner("Agency A/alice", 3, 10).unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].digest, digests[3]);
    assert!(
        view.attestations_by_owner("Agency A/alice", 9, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        view.attestations_by_owner("Agency A/bob", 0, 10)
            .unwrap()
            .is_empty()
    );

    // A light client checks the record against the state root.
    let key = view.state_key_for_attestation(&a.id);
    let value = view.get(&key).unwrap().unwrap();
    let proof = view.prove(&key).unwrap();
    state::verify_proof(node.root, &key, Some(&value), &proof).unwrap();
    assert!(state::verify_proof(node.root, &key, Some(b"forged"), &proof).is_err());
}

#[test]
fn duplicate_digest_fails_and_leaves_state_unchanged() {
    let w = world();
    let mut node = Node::new(&w.g);
    let d = sm3(b"doc");
    let first = node.must_admit(&anchor(&w.user, 1, &d));
    let again = node.must_admit(&anchor(&w.user, 2, &d));
    let other_user = node.must_admit(&anchor(&w.admin, 1, &d));

    let ctx = node.block_ctx();
    let only_first = node
        .executor
        .execute_block(&node.store, node.root, &ctx, std::slice::from_ref(&first))
        .unwrap();
    let with_dups = node
        .executor
        .execute_block(
            &node.store,
            node.root,
            &ctx,
            &[first.clone(), again.clone(), other_user.clone()],
        )
        .unwrap();
    assert_eq!(with_dups.receipts[0].status, Status::Success);
    for r in &with_dups.receipts[1..] {
        assert_eq!(failed(r), Some(FailureCode::DigestAlreadyAnchored), "{r:?}");
        assert!(r.events.is_empty());
        match &r.status {
            Status::Failed { code, message } => {
                assert_eq!(*code, 3001);
                assert!(message.contains("already anchored"), "{message}");
            }
            Status::Success => unreachable!(),
        }
    }
    // A failed transaction writes nothing but its trace entries (issue 16): the admin's
    // certificate is not recorded, the digest still names the first transaction, and the
    // failures are in the signers' trace indexes with their code.
    assert_ne!(with_dups.update.root, only_first.update.root);
    let root = with_dups.update.root;
    node.store.write(with_dups.update.nodes.clone()).unwrap();
    let view = StateView::new(&node.store, root);
    let admin_id = w.admin.cert.fingerprint();
    assert_eq!(view.certificate(&admin_id).unwrap(), None);
    assert_eq!(
        view.attestation_by_digest(&d).unwrap().unwrap().id,
        first.id().0
    );
    let count = |kind: &str, id: &str| {
        view.get(&execution::keys::full(
            execution::keys::AUDIT,
            &execution::keys::audit::count(kind, id),
        ))
        .unwrap()
    };
    assert_eq!(
        count("cert", &admin_id.to_hex()),
        Some(1u64.to_be_bytes().to_vec())
    );
    // One entry for the block: the user's two transactions, the second failed.
    let user_id = w.user.cert.fingerprint();
    assert_eq!(
        count("cert", &user_id.to_hex()),
        Some(1u64.to_be_bytes().to_vec())
    );
    let entry_key = execution::keys::full(
        execution::keys::AUDIT,
        &execution::keys::audit::entry("cert", &user_id.to_hex(), 0),
    );
    let e =
        execution::TraceEntry::decode(&entry_key, &view.get(&entry_key).unwrap().unwrap()).unwrap();
    let r = &e.rows[1];
    assert_eq!((r.position, r.code, r.tx_id), (1, 3001, again.id().0));

    node.commit(std::slice::from_ref(&first));
    let later = node.must_admit(&anchor(&w.user, 3, &d));
    let r = node.commit(&[later]);
    assert_eq!(failed(&r[0]), Some(FailureCode::DigestAlreadyAnchored));
    let a = node.view().attestation_by_digest(&d).unwrap().unwrap();
    assert_eq!(a.id, first.id().0);
}

// ---------------------------------------------------------------------------------------------
// Identity

#[test]
fn register_org_by_its_admin_then_its_user_anchors() {
    let w = world();
    let mut node = Node::new(&w.g);
    let b = w.pki.agency("Agency B");
    let b_admin = w.pki.leaf(&b, Role::Admin, "b-admin");
    let b_user = w.pki.leaf(&b, Role::User, "bob");
    let b_crl = w.pki.crl(&b, 1, 0, &[]);
    let args = vec![b.ca.der().to_vec(), b_crl.der().to_vec()];

    // Before registration, Agency B's members are unknown.
    assert_eq!(
        code_of(node.admit(&anchor(&b_user, 1, &sm3(b"b1")))),
        RejectCode::CertInvalid
    );
    // Agency A's admin may not register Agency B.
    assert_eq!(
        code_of(node.admit(&call(&w.admin, 1, "identity", "register_org", args.clone()))),
        RejectCode::PermissionDenied
    );
    // A user of Agency B may not either.
    assert_eq!(
        code_of(node.admit(&call(&b_user, 1, "identity", "register_org", args.clone()))),
        RejectCode::PermissionDenied
    );
    // A CRL that is not the new CA's is a bad argument.
    let wrong = vec![
        b.ca.der().to_vec(),
        w.pki.crl(&w.pki.a, 9, 0, &[]).der().to_vec(),
    ];
    assert_eq!(
        code_of(node.admit(&call(&b_admin, 1, "identity", "register_org", wrong))),
        RejectCode::BadArguments
    );
    // An organisation whose CA no registered CA issued cannot register.
    let rogue = w.pki.rogue_root("Rogue Root", "Rogue", "05");
    let rogue_admin = w.pki.leaf(&rogue, Role::Admin, "boss");
    let rogue_args = w.pki.org_args(&rogue);
    assert_eq!(
        code_of(node.admit(&call(
            &rogue_admin,
            1,
            "identity",
            "register_org",
            rogue_args
        ))),
        RejectCode::CertInvalid
    );

    let reg = node.must_admit(&call(&b_admin, 1, "identity", "register_org", args.clone()));
    assert_eq!(reg.signer().organisation, "Agency B");
    assert_eq!(reg.signer().role, Role::Admin);
    node.recheck(&reg).unwrap();
    let again = node.must_admit(&call(&b_admin, 2, "identity", "register_org", args));
    let r = node.commit(&[reg, again]);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(failed(&r[1]), Some(FailureCode::OrgExists));

    let view = node.view();
    let org = view.organisation("Agency B").unwrap().unwrap();
    assert_eq!(org.ca_cert, b.ca);
    assert_eq!(org.registered_at, Height(1));
    assert_eq!(view.organisations().unwrap().len(), 3);
    assert_eq!(view.crl(&b.ca.fingerprint()).unwrap(), Some(b_crl));

    let t1 = node.must_admit(&anchor(&b_user, 1, &sm3(b"b1")));
    assert_eq!(t1.signer().organisation, "Agency B");
    let r = node.commit(&[t1]);
    assert_success(&r);
    let a = node
        .view()
        .attestation_by_digest(&sm3(b"b1"))
        .unwrap()
        .unwrap();
    assert_eq!(a.owner, "Agency B/bob");
    // The registering admin is now known by ID.
    let by_id = build_tx(
        &TxSpec {
            registered: true,
            salt: 9,
            ..spec()
        },
        &b_admin,
        &b_admin.key,
        "attestation",
        "anchor",
        anchor_args(&sm3(b"b2"), "x"),
    );
    node.must_admit(&by_id);
}

#[test]
fn update_crl_revokes_from_the_next_block_and_recheck_refuses() {
    let w = world();
    let mut node = Node::new(&w.g);
    // Admitted before the revocation is recorded.
    let pending = node.must_admit(&anchor(&w.user, 1, &sm3(b"p")));
    let crl = w.pki.crl(&w.pki.a, 2, 5, &[&w.user]);
    let upd = node.must_admit(&call(
        &w.admin,
        1,
        "identity",
        "update_crl",
        vec![crl.der().to_vec()],
    ));
    // Same block: the revocation is not in the parent state yet.
    node.recheck(&pending).unwrap();
    let r = node.commit(&[upd]);
    assert_success(&r);
    assert_eq!(
        node.view().crl(&w.pki.a.ca.fingerprint()).unwrap(),
        Some(crl.clone())
    );

    let err = node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::SignerRevoked, "{err}");
    assert_eq!(
        code_of(node.admit(&anchor(&w.user, 2, &sm3(b"q")))),
        RejectCode::SignerRevoked
    );
    // Others are unaffected.
    node.must_admit(&anchor(&w.user2, 1, &sm3(b"r")));

    // The same CRL again, or an older one: not newer.
    let same = node.must_admit(&call(
        &w.admin,
        2,
        "identity",
        "update_crl",
        vec![crl.der().to_vec()],
    ));
    let older = w.pki.crl(&w.pki.a, 3, 4, &[]);
    let older = node.must_admit(&call(
        &w.admin,
        3,
        "identity",
        "update_crl",
        vec![older.der().to_vec()],
    ));
    let r = node.commit(&[same, older]);
    assert_eq!(failed(&r[0]), Some(FailureCode::CrlNotNewer));
    assert_eq!(failed(&r[1]), Some(FailureCode::CrlNotNewer));
    // The failures wrote nothing but their trace entries: the recorded CRL is unchanged.
    assert_eq!(
        node.view().crl(&w.pki.a.ca.fingerprint()).unwrap(),
        Some(crl.clone())
    );

    // Another organisation's CRL: refused at admission.
    let root_crl = w.pki.crl(&w.pki.root, 2, 5, &[]);
    assert_eq!(
        code_of(node.admit(&call(
            &w.admin,
            4,
            "identity",
            "update_crl",
            vec![root_crl.der().to_vec()]
        ))),
        RejectCode::PermissionDenied
    );
    // A CRL naming Agency A's CA but signed by another key: a bad argument.
    let forged = w.pki.forged_crl();
    assert_eq!(
        code_of(node.admit(&call(
            &w.admin,
            5,
            "identity",
            "update_crl",
            vec![forged.der().to_vec()]
        ))),
        RejectCode::BadArguments
    );
}

#[test]
fn suspend_and_resume() {
    let w = world();
    let mut node = Node::new(&w.g);
    // The user's certificate is recorded by its first transaction.
    let suspend = call(
        &w.admin,
        1,
        "identity",
        "suspend",
        vec![w.user.id().0.to_vec()],
    );
    let early = node.must_admit(&suspend);
    let r = node.commit(&[early]);
    assert_eq!(failed(&r[0]), Some(FailureCode::CertUnknown));

    let pending = node.must_admit(&anchor(&w.user, 1, &sm3(b"s0")));
    let r = node.commit(std::slice::from_ref(&pending));
    assert_success(&r);
    let pending = node.must_admit(&anchor(&w.user, 2, &sm3(b"s1")));

    let s = node.must_admit(&call(
        &w.admin,
        2,
        "identity",
        "suspend",
        vec![w.user.id().0.to_vec()],
    ));
    let s2 = node.must_admit(&call(
        &w.admin,
        3,
        "identity",
        "suspend",
        vec![w.user.id().0.to_vec()],
    ));
    let r = node.commit(&[s, s2]);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(failed(&r[1]), Some(FailureCode::AlreadySuspended));
    let view = node.view();
    assert!(view.is_suspended(&w.user.id()).unwrap());
    let rec = view.suspension(&w.user.id()).unwrap().unwrap();
    assert_eq!(rec.by, w.admin.id());

    assert_eq!(
        node.recheck(&pending).unwrap_err().code,
        RejectCode::SignerSuspended
    );
    assert_eq!(
        code_of(node.admit(&anchor(&w.user, 3, &sm3(b"s2")))),
        RejectCode::SignerSuspended
    );

    // Only an admin of the certificate's own organisation: the root organisation's admin may
    // not touch Agency A's certificates.
    let root_admin = w.pki.leaf(&w.pki.root, Role::Admin, "consortium-admin");
    assert_eq!(
        code_of(node.admit(&call(
            &root_admin,
            1,
            "identity",
            "resume",
            vec![w.user.id().0.to_vec()]
        ))),
        RejectCode::PermissionDenied
    );
    // A user may not resume itself.
    assert_eq!(
        code_of(node.admit(&call(
            &w.user2,
            1,
            "identity",
            "resume",
            vec![w.user.id().0.to_vec()]
        ))),
        RejectCode::PermissionDenied
    );

    let res = node.must_admit(&call(
        &w.admin,
        4,
        "identity",
        "resume",
        vec![w.user.id().0.to_vec()],
    ));
    let res2 = node.must_admit(&call(
        &w.admin,
        5,
        "identity",
        "resume",
        vec![w.user.id().0.to_vec()],
    ));
    let r = node.commit(&[res, res2]);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(failed(&r[1]), Some(FailureCode::NotSuspended));
    assert!(!node.view().is_suspended(&w.user.id()).unwrap());
    node.recheck(&pending).unwrap();
    // Suspension never granted anything: the user is still a user.
    let tx = node.must_admit(&anchor(&w.user, 6, &sm3(b"s3")));
    assert_eq!(tx.signer().role, Role::User);
    assert_eq!(
        code_of(node.admit(&call(
            &w.user,
            7,
            "identity",
            "suspend",
            vec![w.user2.id().0.to_vec()]
        ))),
        RejectCode::PermissionDenied
    );
}

// ---------------------------------------------------------------------------------------------
// Parallel admission, cache, determinism

#[test]
fn admit_many_equals_sequential() {
    let w = world();
    let mut node = Node::new(&w.g);
    node.run(&[anchor(&w.user, 1, &sm3(b"m0"))]);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    for i in 0..24u8 {
        let tx = match i % 6 {
            0 => anchor(&w.user, 10 + i, &sm3(&[i])),
            1 => anchor(&w.auditor, 10 + i, &sm3(&[i])),
            2 => vec![i; 7],
            3 => build_tx(
                &TxSpec {
                    registered: true,
                    salt: 10 + i,
                    ..spec()
                },
                &w.user,
                &w.user.key,
                "attestation",
                "anchor",
                anchor_args(&sm3(&[i]), "k"),
            ),
            4 => build_tx(
                &TxSpec {
                    salt: 10 + i,
                    ..spec()
                },
                &w.user2,
                &w.user.key,
                "attestation",
                "anchor",
                anchor_args(&sm3(&[i]), "k"),
            ),
            _ => anchor(&w.admin, 10 + i, &sm3(&[i])),
        };
        batch.push(tx);
    }
    let view = node.view();
    let ctx = node.ctx();
    let seen = |_: &TxId| Ok(false);
    let fresh = Admission::new(w.g.chain_id.clone(), &w.g.params, w.g.consortium().unwrap());
    let parallel = fresh.admit_many(&view, &ctx, &seen, &batch);
    let sequential: Vec<_> = batch
        .iter()
        .map(|b| node.admission.admit(&view, &ctx, &seen, b))
        .collect();
    assert_eq!(parallel.len(), batch.len());
    let summary = |r: &Result<VerifiedTx, Rejection>| match r {
        Ok(t) => Ok((t.id(), t.signer().clone(), t.encoded_len())),
        Err(e) => Err(e.clone()),
    };
    for (i, (p, s)) in parallel.iter().zip(&sequential).enumerate() {
        assert_eq!(summary(p), summary(s), "tx {i}");
    }
    let oks = parallel.iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 12);
    assert_eq!(fresh.cache_len(), 4); // user, auditor, user2, admin
}

#[test]
fn cache_hit_still_catches_revocation_expiry_and_suspension() {
    let w = world();
    let mut node = Node::new(&w.g);
    node.must_admit(&anchor(&w.user, 1, &sm3(b"c0")));
    assert_eq!(node.admission.cache_len(), 1);
    assert_eq!(node.admission.cache_hits(), 0);
    let tx = node.must_admit(&anchor(&w.user, 2, &sm3(b"c1")));
    assert_eq!(node.admission.cache_hits(), 1);
    node.commit(&[tx]);

    let crl = w.pki.crl(&w.pki.a, 2, 5, &[&w.user]);
    node.run(&[call(
        &w.admin,
        1,
        "identity",
        "update_crl",
        vec![crl.der().to_vec()],
    )]);
    let hits = node.admission.cache_hits();
    let err = node.admit(&anchor(&w.user, 3, &sm3(b"c2"))).unwrap_err();
    assert_eq!(err.code, RejectCode::SignerRevoked, "{err}");
    assert_eq!(
        node.admission.cache_hits(),
        hits + 1,
        "served from the cache"
    );
    // A fresh cache says the same, with the same message.
    let fresh = Admission::new(w.g.chain_id.clone(), &w.g.params, w.g.consortium().unwrap());
    let err2 = fresh
        .admit(
            &node.view(),
            &node.ctx(),
            &|_| Ok(false),
            &anchor(&w.user, 3, &sm3(b"c2")),
        )
        .unwrap_err();
    assert_eq!(err, err2);

    // A cached certificate past its validity is refused too.
    node.must_admit(&anchor(&w.user2, 1, &sm3(b"c3")));
    let late = AdmitContext {
        tip: Height(node.height),
        now: t(400),
    };
    let err = node
        .admission
        .admit(
            &node.view(),
            &late,
            &|_| Ok(false),
            &anchor(&w.user2, 2, &sm3(b"c4")),
        )
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CertInvalid, "{err}");
    assert!(err.message.contains("CERT_EXPIRED"), "{err}");
}

#[test]
fn execute_block_is_deterministic() {
    let w = world();
    let node = Node::new(&w.g);
    let txs: Vec<VerifiedTx> = [
        anchor(&w.user, 1, &sm3(b"x")),
        anchor(&w.admin, 1, &sm3(b"y")),
        anchor(&w.user2, 1, &sm3(b"x")),
        call(
            &w.admin,
            2,
            "identity",
            "suspend",
            vec![w.user.id().0.to_vec()],
        ),
    ]
    .iter()
    .map(|b| node.must_admit(b))
    .collect();
    let ctx = node.block_ctx();
    let a = node
        .executor
        .execute_block(&node.store, node.root, &ctx, &txs)
        .unwrap();
    let other = Executor::new(w.g.chain_id.clone(), &w.g.params);
    let b = other
        .execute_block(&node.store, node.root, &ctx, &txs)
        .unwrap();
    assert_eq!(a.receipts, b.receipts);
    assert_eq!(a.update.root, b.update.root);
    let mut na: Vec<_> = a.update.nodes.iter().map(|(h, _)| *h).collect();
    let mut nb: Vec<_> = b.update.nodes.iter().map(|(h, _)| *h).collect();
    na.sort();
    nb.sort();
    assert_eq!(na, nb);
    assert_eq!(a.receipts.len(), 4);
    assert_eq!(
        failed(&a.receipts[2]),
        Some(FailureCode::DigestAlreadyAnchored)
    );
    // The user's certificate was recorded by tx 0 of the same block, so the suspension works.
    assert_eq!(a.receipts[3].status, Status::Success);
    assert_ne!(a.update.root, node.root);
    // Another timestamp changes the attestations, hence the root.
    let ctx2 = BlockContext {
        timestamp_ms: ctx.timestamp_ms + 1,
        ..ctx
    };
    let c = node
        .executor
        .execute_block(&node.store, node.root, &ctx2, &txs)
        .unwrap();
    assert_ne!(c.update.root, a.update.root);
    // An empty block changes nothing.
    let e = node
        .executor
        .execute_block(&node.store, node.root, &ctx, &[])
        .unwrap();
    assert_eq!(e.update.root, node.root);
    assert!(e.receipts.is_empty());
}

#[test]
fn shared_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Admission>();
    assert_send_sync::<Executor>();
    assert_send_sync::<VerifiedTx>();
    assert_send_sync::<Rejection>();
}

#[test]
fn permission_table_matches_the_contracts() {
    let reg = Registry::builtin();
    for p in PERMISSIONS {
        let (_, perm) = reg.resolve(p.contract, p.method).unwrap();
        assert_eq!(perm, p);
        // A node signs only its organisation's data requests and its fetch records.
        assert_eq!(
            p.roles.contains(&Role::NodeSign),
            matches!(
                (p.contract, p.method),
                ("exchange", "request" | "record_fetch") | ("supervision", "anchor_log")
            ),
            "{}.{} and node-sign",
            p.contract,
            p.method
        );
        // An auditor sends only the supervisor's freezes (issue 16).
        assert_eq!(
            p.roles.contains(&Role::Auditor),
            p.contract == "supervision" && p.method != "anchor_log",
            "{}.{} and auditor",
            p.contract,
            p.method
        );
        for role in [Role::NodeEnc, Role::RootCa, Role::AgencyCa] {
            assert!(
                !p.roles.contains(&role),
                "{}.{} allows {role}",
                p.contract,
                p.method
            );
        }
    }
    for name in [
        "identity",
        "attestation",
        "governance",
        "exchange",
        "supervision",
    ] {
        let c = reg.get(name).unwrap();
        assert_eq!(c.name(), name);
        for m in c.methods() {
            assert!(
                execution::permission(name, m).is_some(),
                "{name}.{m} has no entry"
            );
        }
    }
    assert!(reg.resolve("attestation", "delete").is_none());
    let p = ChainParams {
        max_tx_size: 1 << 30,
        max_txs_per_block: 10,
        expiry_window: 5,
        ..ChainParams::default()
    };
    let l = p.limits();
    assert_eq!(l.max_tx_size, types::Limits::default().max_tx_size);
    assert_eq!(l.max_txs_per_block, 10);
}

// ---------------------------------------------------------------------------------------------
// Issue 9: the consortium's anchors are exactly genesis's; a registered CA is an intermediate
// judged by its issuer's CRL; the sponsor deregisters or replaces it; refusals are remembered.

/// Agency B registered by its admin (its CA issued by the root, which sponsors it), with a
/// user, and the root organisation's admin (the sponsor's admin).
struct WithB {
    node: Node,
    b: Org,
    b_admin: Member,
    b_user: Member,
    root_admin: Member,
}

fn with_agency_b(w: &World) -> WithB {
    let mut node = Node::new(&w.g);
    let b = w.pki.agency("Agency B");
    let b_admin = w.pki.leaf(&b, Role::Admin, "b-admin");
    let b_user = w.pki.leaf(&b, Role::User, "bob");
    let r = node.run(&[call(
        &b_admin,
        1,
        "identity",
        "register_org",
        w.pki.org_args(&b),
    )]);
    assert_success(&r);
    let org = node.view().organisation("Agency B").unwrap().unwrap();
    assert_eq!(org.sponsor.as_deref(), Some("GMChain Consortium"));
    assert!(org.is_active() && !org.is_founding());
    let root_admin = w.pki.leaf(&w.pki.root, Role::Admin, "root-admin");
    WithB {
        node,
        b,
        b_admin,
        b_user,
        root_admin,
    }
}

#[test]
fn revoking_a_registered_agency_ca_refuses_its_members_from_the_next_block() {
    // The review's reproduction: the root revokes Agency B's CA and its admin records that CRL
    // on the chain. Before issue 9 the registered CA was a trust anchor whose own revocation
    // nobody checked: B's users kept committing, and so did a user newly issued by the revoked
    // CA's key.
    let w = world();
    let mut x = with_agency_b(&w);
    let node = &mut x.node;
    let r = node.run(&[anchor(&x.b_user, 1, &sm3(b"before"))]);
    assert_success(&r);
    // Admitted before the revocation is recorded: refused at recheck once it is.
    let pending = node.must_admit(&anchor(&x.b_user, 2, &sm3(b"pending")));
    let revoked = RevokedEntry {
        serial: x.b.ca.serial(),
        revoked_at: t(5),
        reason: RevocationReason::CaCompromise,
    };
    let root_crl = issue_crl(&w.pki.root.ca, &w.pki.root.key, 2, t(5), t(65), &[revoked]).unwrap();
    let r = node.run(&[call(
        &x.root_admin,
        1,
        "identity",
        "update_crl",
        vec![root_crl.der().to_vec()],
    )]);
    assert_success(&r);
    let err = node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::SignerRevoked, "{err}");
    assert!(err.message.contains("Agency B CA"), "{err}");
    assert_eq!(
        code_of(node.admit(&anchor(&x.b_user, 3, &sm3(b"after")))),
        RejectCode::SignerRevoked
    );
    // A user newly issued with the revoked CA's key.
    let newcomer = w.pki.leaf(&x.b, Role::User, "newcomer");
    assert_eq!(
        code_of(node.admit(&anchor(&newcomer, 1, &sm3(b"new")))),
        RejectCode::SignerRevoked
    );
    // Agency A (a founding organisation) is unaffected.
    node.must_admit(&anchor(&w.user, 1, &sm3(b"a")));
}

#[test]
fn a_root_registers_only_the_organisations_it_sponsors() {
    // The review's reproduction: with two genesis roots, any root could issue a CA in another
    // agency's name and register it first. Genesis now lists, per root, the names it sponsors.
    let pki = Pki::new();
    let other = pki.rogue_root("Other Root CA", "Other Consortium", "07");
    let node_cert = pki.leaf(&pki.a, Role::NodeSign, "node-1");
    let json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "timestamp_ms": (T0 + DAY) * 1000,
        "organisations": [
            { "name": "GMChain Consortium", "ca_cert": pki.root.ca.to_pem(), "crl": pki.crl(&pki.root, 1, 0, &[]).to_pem(), "sponsors": ["Agency B"] },
            { "name": "Agency A", "ca_cert": pki.a.ca.to_pem(), "crl": pki.crl(&pki.a, 1, 0, &[]).to_pem() },
            { "name": "Other Consortium", "ca_cert": other.ca.to_pem(), "crl": pki.crl(&other, 1, 0, &[]).to_pem(), "sponsors": ["Agency C"] },
        ],
        "validators": [ { "name": "node-1", "cert": node_cert.cert.to_pem() } ],
    });
    let g = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    let mut node = Node::new(&g);
    let register = |org: &Org, cn: &str, salt: u8| {
        let admin = pki.leaf(org, Role::Admin, cn);
        call(&admin, salt, "identity", "register_org", pki.org_args(org))
    };
    // The other root issues a CA in Agency B's name: refused, naming the anchor.
    let squatter = make_agency(&pki.p, &other, &pki.serial, "Agency B");
    let r = node.admit(&register(&squatter, "squatter", 1)).unwrap_err();
    assert_eq!(r.code, RejectCode::CertInvalid, "{r}");
    assert!(r.message.contains("CERT_NOT_SPONSORED"), "{r}");
    assert!(r.message.contains("Other Root CA"), "{r}");
    // Nor may it register a founding organisation's name.
    let a_squatter = make_agency(&pki.p, &other, &pki.serial, "Agency A");
    let r = node
        .admit(&register(&a_squatter, "a-squatter", 2))
        .unwrap_err();
    assert!(r.message.contains("CERT_NOT_SPONSORED"), "{r}");
    // Each root registers what it sponsors.
    let b = pki.agency("Agency B");
    let c = make_agency(&pki.p, &other, &pki.serial, "Agency C");
    let r = node.run(&[register(&b, "b-admin", 3), register(&c, "c-admin", 4)]);
    assert_success(&r);
    let view = node.view();
    assert_eq!(
        view.organisation("Agency C")
            .unwrap()
            .unwrap()
            .sponsor
            .as_deref(),
        Some("Other Consortium")
    );
    // A sponsored name on a genesis that is itself a founding organisation is refused.
    let mut bad = json.clone();
    bad["organisations"][2]["sponsors"] = serde_json::json!(["Agency A"]);
    let e = Genesis::from_json(bad.to_string().as_bytes()).unwrap_err();
    assert!(
        e.to_string().starts_with("organisations[2].sponsors[0]: "),
        "{e}"
    );
    // Only a self-signed CA sponsors.
    let mut bad = json.clone();
    bad["organisations"][1]["sponsors"] = serde_json::json!(["Agency D"]);
    let e = Genesis::from_json(bad.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("self-signed"), "{e}");
}

#[test]
fn the_sponsor_deregisters_an_organisation_from_the_next_block() {
    let w = world();
    let mut x = with_agency_b(&w);
    let node = &mut x.node;
    let pending = node.must_admit(&anchor(&x.b_user, 1, &sm3(b"pending")));
    // Agency A's admin does not sponsor Agency B; nobody deregisters a founding organisation.
    let r = node.admit(&dereg(&w.admin, 1, "Agency B")).unwrap_err();
    assert_eq!(r.code, RejectCode::PermissionDenied, "{r}");
    let r = node
        .admit(&dereg(&x.root_admin, 1, "Agency A"))
        .unwrap_err();
    assert_eq!(r.code, RejectCode::PermissionDenied, "{r}");
    assert!(r.message.contains("founding"), "{r}");
    // A user of the sponsor may not (role).
    let root_user = w.pki.leaf(&w.pki.root, Role::User, "root-user");
    assert_eq!(
        code_of(node.admit(&dereg(&root_user, 1, "Agency B"))),
        RejectCode::PermissionDenied
    );
    let r = node.run(&[dereg(&x.root_admin, 2, "Agency B")]);
    assert_success(&r);
    let org = node.view().organisation("Agency B").unwrap().unwrap();
    assert_eq!(org.removed_at, Some(Height(node.height)));
    // Pending and new transactions of its members: refused with their own code.
    let err = node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::OrgRemoved, "{err}");
    assert_eq!(
        code_of(node.admit(&anchor(&x.b_user, 2, &sm3(b"after")))),
        RejectCode::OrgRemoved
    );
    // A certificate never seen before answers the same as a cached one.
    let fresh = w.pki.leaf(&x.b, Role::User, "fresh");
    assert_eq!(
        code_of(node.admit(&anchor(&fresh, 1, &sm3(b"fresh")))),
        RejectCode::OrgRemoved
    );
    // Its own admin cannot re-register the name; deregistering twice fails in execution.
    let again = vec![
        x.b.ca.der().to_vec(),
        w.pki.crl(&x.b, 2, 1, &[]).der().to_vec(),
    ];
    let t1 = node.must_admit(&call(&x.b_admin, 5, "identity", "register_org", again));
    let t2 = node.must_admit(&dereg(&x.root_admin, 3, "Agency B"));
    let r = node.commit(&[t1, t2]);
    assert_eq!(failed(&r[0]), Some(FailureCode::OrgRemoved));
    assert_eq!(failed(&r[1]), Some(FailureCode::OrgRemoved));
    // Agency A is unaffected.
    node.must_admit(&anchor(&w.user, 1, &sm3(b"a")));
}

#[test]
fn the_sponsor_replaces_a_ca_without_overlap() {
    let w = world();
    let mut x = with_agency_b(&w);
    let node = &mut x.node;
    let r = node.run(&[anchor(&x.b_user, 1, &sm3(b"old ca"))]);
    assert_success(&r);
    let pending = node.must_admit(&anchor(&x.b_user, 2, &sm3(b"pending")));
    // A new CA for Agency B (same name, new key), issued by the root.
    let b2 = w.pki.agency("Agency B");
    let b2_crl = w.pki.crl(&b2, 1, 0, &[]);
    let replace = |m: &Member, salt: u8| {
        call(
            m,
            salt,
            "identity",
            "replace_ca",
            vec![b2.ca.der().to_vec(), b2_crl.der().to_vec()],
        )
    };
    // Neither Agency A's admin nor Agency B's own admin may replace it.
    assert_eq!(
        code_of(node.admit(&replace(&w.admin, 1))),
        RejectCode::PermissionDenied
    );
    assert_eq!(
        code_of(node.admit(&replace(&x.b_admin, 1))),
        RejectCode::PermissionDenied
    );
    // A CA that the sponsor did not issue (another root's) is refused.
    let rogue = w.pki.rogue_root("Agency B CA", "Agency B", "09");
    let rogue_args = w.pki.org_args(&rogue);
    assert_eq!(
        code_of(node.admit(&call(
            &x.root_admin,
            1,
            "identity",
            "replace_ca",
            rogue_args
        ))),
        RejectCode::BadArguments
    );
    let r = node.run(&[replace(&x.root_admin, 2)]);
    assert_success(&r);
    let org = node.view().organisation("Agency B").unwrap().unwrap();
    assert_eq!(org.ca_cert, b2.ca);
    assert_eq!(org.former_cas, vec![x.b.ca.clone()]);
    // No overlap: the old CA's members are refused from the next block, cached or not.
    let err = node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::CaReplaced, "{err}");
    let old_fresh = w.pki.leaf(&x.b, Role::User, "old-fresh");
    assert_eq!(
        code_of(node.admit(&anchor(&old_fresh, 1, &sm3(b"o")))),
        RejectCode::CaReplaced
    );
    // The new CA's members are Agency B.
    let b2_user = w.pki.leaf(&b2, Role::User, "bob2");
    let t = node.must_admit(&anchor(&b2_user, 1, &sm3(b"new ca")));
    assert_eq!(t.signer().organisation, "Agency B");
    // Replacing with the current CA again is a bad argument in execution.
    let t2 = node.must_admit(&replace(&x.root_admin, 3));
    let r = node.commit(&[t, t2]);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(failed(&r[1]), Some(FailureCode::BadArguments));
}

#[test]
fn a_refused_certificate_is_remembered_per_state_root() {
    // A certificate naming an issuer the chain does not know: refused without any trial
    // verification, and the same file again is answered from the refusal cache.
    let w = world();
    let node = Node::new(&w.g);
    let rogue = w.pki.rogue_root("Nowhere CA", "Nowhere", "0b");
    let mallory = w.pki.leaf(&rogue, Role::User, "mallory");
    let tx = anchor(&mallory, 1, &sm3(b"m"));
    let r1 = node.admit(&tx).unwrap_err();
    assert_eq!(r1.code, RejectCode::CertInvalid);
    assert!(r1.message.contains("CERT_NO_PATH_TO_ANCHOR"), "{r1}");
    assert_eq!(node.admission.refusal_hits(), 0);
    let r2 = node.admit(&tx).unwrap_err();
    assert_eq!(r2, r1);
    assert_eq!(node.admission.refusal_hits(), 1);
    // A certificate that is not yet valid is not remembered: it may become valid.
    let early = {
        let key = w.pki.p.generate().unwrap();
        let cert = issue(
            &w.pki.a.ca,
            &w.pki.a.key,
            &IssueRequest {
                role: Role::User,
                common_name: "early",
                organisation: "Agency A",
                public_key: &key.public_key(),
                serial: w.pki.serial(),
                validity: validity(300, 400),
            },
        )
        .unwrap();
        Member { key, cert }
    };
    let tx = anchor(&early, 1, &sm3(b"e"));
    assert_eq!(code_of(node.admit(&tx)), RejectCode::CertInvalid);
    assert_eq!(code_of(node.admit(&tx)), RejectCode::CertInvalid);
    assert_eq!(node.admission.refusal_hits(), 1);
}

#[test]
fn a_ca_recertified_with_the_same_key_answers_the_same_cached_or_fresh() {
    // Found in review: after the sponsor re-certified Agency B's CA key (same key and name,
    // new certificate: a renewal before expiry), a member whose chain was cached under the old
    // certificate was refused (TX_CA_REPLACED) while a node with an empty cache admitted it.
    let w = world();
    let mut x = with_agency_b(&w);
    let node = &mut x.node;
    assert_success(&node.run(&[anchor(&x.b_user, 1, &sm3(b"before"))]));
    let pending = node.must_admit(&anchor(&x.b_user, 3, &sm3(b"pending")));
    let b2_ca = issue(
        &w.pki.root.ca,
        &w.pki.root.key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: "Agency B CA",
            organisation: "Agency B",
            public_key: &x.b.key.public_key(),
            serial: w.pki.serial(),
            validity: validity(0, 1825),
        },
    )
    .unwrap();
    let b2_crl = issue_crl(&b2_ca, &x.b.key, 2, t(1), t(61), &[]).unwrap();
    let args = vec![b2_ca.der().to_vec(), b2_crl.der().to_vec()];
    assert_success(&node.run(&[call(&x.root_admin, 7, "identity", "replace_ca", args)]));
    let tx = anchor(&x.b_user, 2, &sm3(b"after"));
    let cached = node.admit(&tx).map(|v| v.signer().organisation.clone());
    let fresh_admission =
        Admission::new(w.g.chain_id.clone(), &w.g.params, w.g.consortium().unwrap());
    let fresh = fresh_admission
        .admit(&node.view(), &node.ctx(), &|_| Ok(false), &tx)
        .map(|v| v.signer().organisation.clone());
    assert_eq!(cached, fresh);
    // A re-certification of the same key keeps the members' certificates valid: they name
    // the same issuer and verify with the same key.
    assert_eq!(cached.as_deref(), Ok("Agency B"));
    // A transaction admitted before the re-certification passes its recheck too.
    node.recheck(&pending).unwrap();
}

#[test]
fn a_duplicate_check_that_cannot_read_fails_closed() {
    // Issue 11: the node's duplicate check turned a storage read error into "not seen", so a
    // transaction whose status could not be read was admitted. The check now reports the
    // error, and admission and recheck refuse with TX_STATE_UNAVAILABLE.
    let w = world();
    let node = Node::new(&w.g);
    let tx = anchor(&w.user, 1, &sm3(b"unreadable index"));
    let broken = |_: &TxId| -> Result<bool, String> { Err("index read failed".into()) };
    let r = node
        .admission
        .admit(&node.view(), &node.ctx(), &broken, &tx)
        .unwrap_err();
    assert_eq!(r.code, RejectCode::StateUnavailable, "{r}");
    assert!(r.message.contains("index read failed"), "{r}");
    let admitted = node.must_admit(&tx);
    let r = node
        .admission
        .recheck(&node.view(), &node.ctx(), &broken, &admitted)
        .unwrap_err();
    assert_eq!(r.code, RejectCode::StateUnavailable, "{r}");
    // Seen is still a duplicate.
    let r = node
        .admission
        .admit(&node.view(), &node.ctx(), &|_| Ok(true), &tx)
        .unwrap_err();
    assert_eq!(r.code, RejectCode::Duplicate);
}

// ---------------------------------------------------------------------------------------------
// Issue 11 point 5: the contract-specific rules moved behind `Contract::authorize`; admission
// and execution answer exactly as before (codes and messages pinned here, before the move).

fn cert_ref(c: &Certificate) -> pki::CertRef {
    pki::CertRef {
        subject: c.subject(),
        serial: c.serial(),
    }
}

fn refusal(r: Result<VerifiedTx, Rejection>) -> (RejectCode, String) {
    match r {
        Ok(tx) => panic!("expected a rejection, admitted {}", tx.id()),
        Err(r) => (r.code, r.message),
    }
}

fn failure(r: &Receipt) -> (Option<FailureCode>, String) {
    match &r.status {
        Status::Success => panic!("expected a failed receipt, got {r:?}"),
        Status::Failed { code, message } => (FailureCode::from_number(*code), message.clone()),
    }
}

#[test]
fn contract_rules_keep_their_codes_and_messages_at_admission_and_execution() {
    use FailureCode as F;
    use RejectCode as R;
    let w = world();
    let mut x = with_agency_b(&w);
    let node = &mut x.node;
    // Record Agency A's user, so the suspension rule finds the certificate.
    assert_success(&node.run(&[anchor(&w.user, 1, &sm3(b"recorded"))]));
    let b2 = w.pki.agency("Agency B");
    let b2_args = w.pki.org_args(&b2);
    let rogue = w.pki.rogue_root("Agency B CA", "Agency B", "09");
    let a_crl = w.pki.crl(&w.pki.a, 2, 5, &[]);
    let forged = w.pki.forged_crl();
    let d = w.pki.agency("Agency D");
    let d_args = w.pki.org_args(&d);
    let user = w.user.id();
    let admission_cases: Vec<(&str, Vec<u8>, RejectCode, String)> = vec![
        (
            "deregister by a non-sponsor",
            dereg(&w.admin, 1, "Agency B"),
            R::PermissionDenied,
            "identity.deregister_org: \"Agency B\" is sponsored by \"GMChain Consortium\", not by the admin's organisation \"Agency A\"".into(),
        ),
        (
            "deregister a founding organisation",
            dereg(&x.root_admin, 1, "Agency A"),
            R::PermissionDenied,
            "identity.deregister_org: \"Agency A\" is a founding organisation: it changes only through the consortium's governance".into(),
        ),
        (
            "deregister an unknown organisation",
            dereg(&x.root_admin, 1, "Agency Z"),
            R::BadArguments,
            "organisation \"Agency Z\" is not registered".into(),
        ),
        (
            "replace by a non-sponsor",
            call(&w.admin, 1, "identity", "replace_ca", b2_args.clone()),
            R::PermissionDenied,
            "identity.replace_ca: \"Agency B\" is sponsored by \"GMChain Consortium\", not by the admin's organisation \"Agency A\"".into(),
        ),
        (
            "replace with a CA outside the consortium",
            call(
                &x.root_admin,
                1,
                "identity",
                "replace_ca",
                w.pki.org_args(&rogue),
            ),
            R::BadArguments,
            format!(
                "args[0] (CA certificate): no path to a trust anchor: no issuer named {:?} for {} (CERT_NO_PATH_TO_ANCHOR)",
                rogue.ca.issuer(),
                cert_ref(&rogue.ca)
            ),
        ),
        (
            "update another organisation's CRL",
            call(
                &x.root_admin,
                1,
                "identity",
                "update_crl",
                vec![a_crl.der().to_vec()],
            ),
            R::PermissionDenied,
            format!(
                "identity.update_crl: the CRL is issued by {:?}, not by the registered CA of \"GMChain Consortium\"",
                a_crl.issuer()
            ),
        ),
        (
            "update with a forged CRL",
            call(
                &w.admin,
                1,
                "identity",
                "update_crl",
                vec![forged.der().to_vec()],
            ),
            R::BadArguments,
            "args[0] (CRL): its signature does not verify with the registered CA of \"Agency A\""
                .into(),
        ),
        (
            "suspend another organisation's certificate",
            call(&x.root_admin, 1, "identity", "suspend", vec![user.0.to_vec()]),
            R::PermissionDenied,
            format!(
                "identity.suspend: certificate {user} belongs to \"Agency A\", not to \"GMChain Consortium\""
            ),
        ),
        (
            "resume another organisation's certificate",
            call(&x.root_admin, 1, "identity", "resume", vec![user.0.to_vec()]),
            R::PermissionDenied,
            format!(
                "identity.resume: certificate {user} belongs to \"Agency A\", not to \"GMChain Consortium\""
            ),
        ),
        (
            "a user suspends",
            call(&w.user2, 1, "identity", "suspend", vec![user.0.to_vec()]),
            R::PermissionDenied,
            "role user may not call identity.suspend".into(),
        ),
        (
            "register_org signed outside the new CA",
            call(&w.admin, 1, "identity", "register_org", d_args),
            R::PermissionDenied,
            format!(
                "identity.register_org must be signed by an admin certified by the new CA {}; {} is not",
                cert_ref(&d.ca),
                cert_ref(&w.admin.cert)
            ),
        ),
    ];
    for (name, bytes, code, message) in &admission_cases {
        let got = refusal(node.admit(bytes));
        assert_eq!(got, (*code, message.clone()), "{name}");
    }

    // Execution: what an earlier transaction of the same block changed is judged there.
    let user3 = w.user3.id();
    let b_crl_old_ca = w.pki.crl(&x.b, 2, 2, &[]);
    let txs = vec![
        // user2's certificate is recorded by its first transaction, then another
        // organisation's admin suspends it (admission found no certificate to judge).
        node.must_admit(&anchor(&w.user2, 1, &sm3(b"user2"))),
        node.must_admit(&call(
            &x.root_admin,
            2,
            "identity",
            "suspend",
            vec![w.user2.id().0.to_vec()],
        )),
        // A certificate never recorded.
        node.must_admit(&call(
            &w.admin,
            2,
            "identity",
            "suspend",
            vec![user3.0.to_vec()],
        )),
        // Agency B's CA is replaced, then its admin records a CRL of the old CA.
        node.must_admit(&call(&x.root_admin, 3, "identity", "replace_ca", b2_args)),
        node.must_admit(&call(
            &x.b_admin,
            2,
            "identity",
            "update_crl",
            vec![b_crl_old_ca.der().to_vec()],
        )),
        // Deregistered twice in one block.
        node.must_admit(&dereg(&x.root_admin, 4, "Agency B")),
        node.must_admit(&dereg(&x.root_admin, 5, "Agency B")),
    ];
    let height = node.height + 1;
    let r = node.commit(&txs);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(
        failure(&r[1]),
        (
            Some(F::PermissionDenied),
            format!(
                "certificate {} belongs to \"Agency A\", not to the admin's organisation \"GMChain Consortium\"",
                w.user2.id()
            )
        )
    );
    assert_eq!(
        failure(&r[2]),
        (
            Some(F::CertUnknown),
            format!("no certificate is recorded under {user3}")
        )
    );
    assert_eq!(r[3].status, Status::Success);
    assert_eq!(
        failure(&r[4]),
        (
            Some(F::CrlIssuerMismatch),
            format!(
                "the CRL of {:?} is not issued and signed by the registered CA of \"Agency B\"",
                b_crl_old_ca.issuer()
            )
        )
    );
    assert_eq!(r[5].status, Status::Success);
    assert_eq!(
        failure(&r[6]),
        (
            Some(F::OrgRemoved),
            format!("organisation \"Agency B\" was already deregistered at height {height}")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 13 point 6: chain-parameter proposals.

/// The smallest `max_tx_size` governance may set still carries an organisation's
/// registration with a CRL of 100 revoked certificates, signed with the sender's certificate
/// inline: the justification of `MIN_MAX_TX_SIZE` measured, not assumed.
#[test]
fn the_smallest_max_tx_size_still_carries_a_registration_with_a_crl() {
    let w = world();
    let b = w.pki.agency("Agency B");
    let b_admin = w.pki.leaf(&b, Role::Admin, "b-admin");
    let revoked: Vec<Member> = (0..100)
        .map(|i| w.pki.leaf(&b, Role::User, &format!("user-{i}")))
        .collect();
    let refs: Vec<&Member> = revoked.iter().collect();
    let crl = w.pki.crl(&b, 1, 0, &refs);
    let tx = call(
        &b_admin,
        1,
        "identity",
        "register_org",
        vec![b.ca.der().to_vec(), crl.der().to_vec()],
    );
    assert!(
        tx.len() <= execution::MIN_MAX_TX_SIZE,
        "a registration with 100 revoked entries takes {} bytes, above {}",
        tx.len(),
        execution::MIN_MAX_TX_SIZE
    );
    // And it is admitted as it stands (the measurement is of a real registration).
    let node = Node::new(&w.g);
    node.must_admit(&tx);
}

fn params_args(deadline: u64, effective: u64, update: [Vec<u8>; 3]) -> Vec<Vec<u8>> {
    let mut args = vec![
        b"params".to_vec(),
        deadline.to_be_bytes().to_vec(),
        effective.to_be_bytes().to_vec(),
    ];
    args.extend(update);
    args
}

/// A parameter change is checked against the bounds again when it executes: a recorded
/// proposal whose value lies outside them (as one written under other bounds would) fails
/// its executing vote with `GOVERNANCE_PARAMS_INVALID`, and nothing becomes pending.
#[test]
fn a_parameter_change_outside_the_bounds_fails_when_executed() {
    let w = world();
    let mut node = Node::new(&w.g);
    let root_admin = w.pki.leaf(&w.pki.root, Role::Admin, "root-admin");
    let propose = call(
        &w.admin,
        1,
        "governance",
        "propose",
        params_args(5, 7, [50u64.to_be_bytes().to_vec(), vec![], vec![]]),
    );
    let id = SignedTx::from_bytes(&propose, &types::Limits::default())
        .unwrap()
        .tx_id()
        .0;
    assert_success(&node.run(&[propose]));
    // Two organisations, a majority of two: the proposal waits for the root's vote.
    let mut record = execution::read_proposal(&node.view(), &id)
        .unwrap()
        .unwrap();
    assert_eq!(record.status, execution::ProposalStatus::Open);
    assert_eq!(
        record.kind,
        execution::ProposalKind::Params(execution::ParamsUpdate {
            expiry_window: Some(50),
            ..Default::default()
        })
    );
    // The record as another build might have written it: a max_tx_size below the bound.
    record.kind = execution::ProposalKind::Params(execution::ParamsUpdate {
        max_tx_size: Some(100),
        ..Default::default()
    });
    let key = execution::keys::full(
        execution::keys::GOVERNANCE,
        &execution::keys::governance::proposal(&id),
    );
    let update = state::apply(&node.store, node.root, &[(key, Some(record.encode()))]).unwrap();
    node.root = update.root;
    node.store.write(update.nodes).unwrap();
    let vote = call(
        &root_admin,
        2,
        "governance",
        "vote",
        vec![id.0.to_vec(), b"yes".to_vec()],
    );
    let r = node.run(&[vote]);
    let (code, message) = failure(&r[0]);
    assert_eq!(code, Some(FailureCode::ParamsInvalid), "{message}");
    assert!(message.contains("max_tx_size 100 is outside"), "{message}");
    assert_eq!(FailureCode::ParamsInvalid.number(), 3107);
    assert!(execution::pending_params(&node.view()).unwrap().is_none());
    // The parameters did not move.
    let p = execution::params_in_force(&node.view()).unwrap();
    assert_eq!((p.params, p.since), (w.g.params, Height(0)));
}

/// The executor applies the parameters its parent's state holds, not the genesis file's: a
/// state whose `chain/params` allows one transaction refuses a block of two.
#[test]
fn the_executor_reads_the_parameters_from_the_parent_state() {
    let w = world();
    let mut node = Node::new(&w.g);
    let a = node.must_admit(&anchor(&w.user, 1, &sm3(b"p1")));
    let b = node.must_admit(&anchor(&w.user, 2, &sm3(b"p2")));
    let key = execution::keys::full(execution::keys::CHAIN, &execution::keys::chain::params());
    // The record's format (docs/execution.md §3): version 1, tag 0x83, u64 expiry window,
    // u32 max_txs_per_block, u64 max_tx_size, u64 max_fuel_per_tx, u64 max_fuel_per_block.
    let mut one = vec![1, 0x83];
    one.extend(100u64.to_be_bytes());
    one.extend(1u32.to_be_bytes());
    one.extend(131_072u64.to_be_bytes());
    one.extend(1_000_000u64.to_be_bytes());
    one.extend(10_000_000u64.to_be_bytes());
    let update = state::apply(&node.store, node.root, &[(key, Some(one))]).unwrap();
    node.store.write(update.nodes).unwrap();
    let err = node
        .executor
        .execute_block(
            &node.store,
            update.root,
            &node.block_ctx(),
            &[a.clone(), b.clone()],
        )
        .unwrap_err();
    assert!(
        matches!(err, execution::ExecError::TooManyTxs { count: 2, max: 1 }),
        "{err}"
    );
    // The genesis state holds 2000: the same block executes there.
    node.executor
        .execute_block(&node.store, node.root, &node.block_ctx(), &[a, b])
        .unwrap();
}
// ---------------------------------------------------------------------------------------------
// Governance of organisations: org-register makes a founding organisation (a trust anchor read
// from the state); org-remove takes one away, checked in a fixed order.

/// `governance.propose` of `kind` by `m`, deadline 10 blocks ahead of `node`, effective 0.
fn propose_org(node: &Node, m: &Member, salt: u8, kind: &str, rest: Vec<Vec<u8>>) -> Vec<u8> {
    let mut args = vec![
        kind.as_bytes().to_vec(),
        (node.height + 10).to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
    ];
    args.extend(rest);
    call(m, salt, "governance", "propose", args)
}

fn proposal_of(tx: &[u8]) -> Digest {
    SignedTx::from_bytes(tx, &types::Limits::default())
        .unwrap()
        .tx_id()
        .0
}

fn yes(m: &Member, salt: u8, id: &Digest) -> Vec<u8> {
    call(
        m,
        salt,
        "governance",
        "vote",
        vec![id.0.to_vec(), b"yes".to_vec()],
    )
}

#[test]
fn governance_removes_organisations_in_order_and_anchors_follow() {
    let w = world();
    let mut x = with_agency_b(&w);
    // A user of the root organisation, cached before any change.
    let root_user = w.pki.leaf(&w.pki.root, Role::User, "root-user");
    assert_success(&x.node.run(&[anchor(&root_user, 1, &sm3(b"root before"))]));
    let remove = |node: &Node, salt: u8, name: &str| {
        propose_org(
            node,
            &w.admin,
            salt,
            "org-remove",
            vec![name.as_bytes().to_vec()],
        )
    };
    let refused = |node: &Node, tx: &[u8]| {
        let r = node.admit(tx).unwrap_err();
        assert_eq!(r.code, RejectCode::BadArguments, "{r}");
        r.message
    };
    // The root sponsors Agency B, which is active.
    let m = refused(&x.node, &remove(&x.node, 1, "GMChain Consortium"));
    assert!(
        m.contains("sponsors the active organisations [\"Agency B\"]"),
        "{m}"
    );
    // Agency A holds the validator seat.
    let m = refused(&x.node, &remove(&x.node, 2, "Agency A"));
    assert!(m.contains("validator seat"), "{m}");
    // Once its sponsor deregistered Agency B, the root may go: A proposes, the root agrees
    // (2 of 2, B having left the electorate).
    assert_success(&x.node.run(&[dereg(&x.root_admin, 1, "Agency B")]));
    let p = remove(&x.node, 3, "GMChain Consortium");
    let id = proposal_of(&p);
    assert_success(&x.node.run(&[p]));
    // Before execution the root's members are still admitted.
    x.node
        .must_admit(&anchor(&root_user, 2, &sm3(b"root pending")));
    assert_success(&x.node.run(&[yes(&x.root_admin, 2, &id)]));
    let view = x.node.view();
    let root = view.organisation("GMChain Consortium").unwrap().unwrap();
    assert_eq!(root.removed_at, Some(Height(x.node.height)));
    let names = view.anchor_list().unwrap().unwrap().names;
    assert_eq!(names, ["Agency A"]);
    // Its members are refused from the next block, cached or fresh, as signers and peers;
    // Agency A, a genesis anchor itself, is unaffected.
    let r = x
        .node
        .admit(&anchor(&root_user, 3, &sm3(b"root after")))
        .unwrap_err();
    assert_eq!(r.code, RejectCode::OrgRemoved, "{r}");
    let fresh = w.pki.leaf(&w.pki.root, Role::User, "fresh");
    let r = x
        .node
        .admit(&anchor(&fresh, 1, &sm3(b"fresh")))
        .unwrap_err();
    assert_eq!(r.code, RejectCode::OrgRemoved, "{r}");
    assert!(matches!(
        x.node
            .admission
            .authenticate(&x.node.view(), x.node.ctx().now, &fresh.cert),
        Err(MemberRefusal::NotRegistered(_))
    ));
    x.node.must_admit(&anchor(&w.user, 1, &sm3(b"a after")));
    // Agency A is now the last founding organisation.
    let m = refused(&x.node, &remove(&x.node, 4, "Agency A"));
    assert!(m.contains("last active founding organisation"), "{m}");
    // A new founding organisation (1 of 1 executes at once) joins the anchors; its members
    // are admitted from the next block.
    let n = w.pki.rogue_root("Agency N CA", "Agency N", "4e");
    let n_user = w.pki.leaf(&n, Role::User, "nina");
    assert_eq!(
        code_of(x.node.admit(&anchor(&n_user, 1, &sm3(b"n early")))),
        RejectCode::CertInvalid
    );
    let register = propose_org(
        &x.node,
        &w.admin,
        5,
        "org-register",
        vec![n.ca.der().to_vec(), w.pki.crl(&n, 1, 0, &[]).der().to_vec()],
    );
    assert_success(&x.node.run(&[register]));
    let names = x.node.view().anchor_list().unwrap().unwrap().names;
    assert_eq!(names, ["Agency A", "Agency N"]);
    assert_success(&x.node.run(&[anchor(&n_user, 2, &sm3(b"n"))]));
}

/// Writes `n` more active organisations straight into the state (founding ones when
/// `founding`), each with a copy of `ca`: how a chain that grew that large looks to governance.
fn inflate_organisations(node: &mut Node, ca: &pki::Certificate, n: u64, founding: bool) {
    let count_key = execution::keys::full(
        execution::keys::IDENTITY,
        &execution::keys::identity::org_count(),
    );
    // Only the genesis organisations are registered before.
    let before = node
        .view()
        .get(&count_key)
        .unwrap()
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
    let mut writes = Vec::new();
    for i in 0..n {
        let name = format!("Filler {:05}", before + i);
        let record = execution::OrgRecord {
            name: name.clone(),
            ca_cert: ca.clone(),
            registered_at: Height(node.height),
            sponsor: (!founding).then(|| "GMChain Consortium".to_string()),
            removed_at: None,
            former_cas: Vec::new(),
        };
        let key = |k: Vec<u8>| execution::keys::full(execution::keys::IDENTITY, &k);
        writes.push((
            key(execution::keys::identity::org(&name)),
            Some(record.encode()),
        ));
        writes.push((
            key(execution::keys::identity::org_index(before + i)),
            Some(name.into_bytes()),
        ));
    }
    writes.push((count_key, Some((before + n).to_be_bytes().to_vec())));
    let update = state::apply(&node.store, node.root, &writes).unwrap();
    node.root = update.root;
    node.store.write(update.nodes).unwrap();
}

/// Review finding: a governance `org-register` beyond the anchors list's decoding bound
/// (1024) executed, and from then on every admission read a state it could not decode. Now the
/// registration is refused while 1024 founding organisations are active.
#[test]
fn org_register_is_refused_when_the_anchor_list_is_full() {
    let w = world();
    let mut node = Node::new(&w.g);
    let filler = w.pki.rogue_root("Filler CA", "Filler", "0f");
    let genesis = w.g.organisations.len() as u64;
    let n = w.pki.rogue_root("Agency N CA", "Agency N", "4e");
    let register = |node: &Node| {
        propose_org(
            node,
            &w.admin,
            1,
            "org-register",
            vec![n.ca.der().to_vec(), w.pki.crl(&n, 1, 0, &[]).der().to_vec()],
        )
    };
    // 1023 anchors: one more fits.
    inflate_organisations(&mut node, &filler.ca, 1023 - genesis, true);
    node.must_admit(&register(&node));
    // 1024: full.
    inflate_organisations(&mut node, &filler.ca, 1, true);
    let r = node.admit(&register(&node)).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r}");
    assert!(
        r.message
            .contains("1024 active founding organisations, the most its list of anchors holds"),
        "{r}"
    );
}

/// Review finding: proposals decode at most 4096 electors, while nothing bounded the active
/// organisations; a proposal made with more could never be read again. Now it is refused.
#[test]
fn a_proposal_is_refused_while_more_organisations_are_active_than_an_electorate_holds() {
    let w = world();
    let mut node = Node::new(&w.g);
    let filler = w.pki.rogue_root("Filler CA", "Filler", "0f");
    let genesis = w.g.organisations.len() as u64;
    let propose = |node: &Node| {
        propose_org(
            node,
            &w.admin,
            1,
            "org-remove",
            vec![b"Filler 00002".to_vec()],
        )
    };
    // As many as an electorate holds: the proposal is admitted.
    inflate_organisations(
        &mut node,
        &filler.ca,
        execution::MAX_ELECTORATE as u64 - genesis,
        false,
    );
    node.must_admit(&propose(&node));
    // One more: refused.
    inflate_organisations(&mut node, &filler.ca, 1, false);
    let r = node.admit(&propose(&node)).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r}");
    assert!(
        r.message.contains(&format!(
            "{} organisations are active, more than a proposal's electorate holds (4096)",
            execution::MAX_ELECTORATE + 1
        )),
        "{r}"
    );
}
