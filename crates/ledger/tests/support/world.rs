//! The world of the governance tests (`governance.rs`, `review.rs`): four founding
//! organisations, each with its own CA (Agency A sponsors "Agency E"), an admin, a validator
//! and a spare node-sign key, on a ledger over the in-memory store; helpers to sign
//! transactions, propose and commit blocks with the precommits of each height's validators.

use std::sync::Arc;

use crypto::{Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{Genesis, ProposalStatus};
use ledger::Ledger;
use pki::{
    Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime, Validity,
    issue, issue_crl, issue_root,
};
use storage::{ChainStore, MemBackend};
use types::{
    BlockHash, Call, ChainId, CommitCertificate, Encode, Height, SignedTx, Status, Transaction,
    Vote, VoteKind,
};

pub const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600;
pub const CHAIN: &str = "gov-bj-1";
pub const GENESIS_MS: u64 = (T0 + DAY) * 1000;

pub fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

pub struct Key {
    pub key: SoftSigner,
    pub cert: Certificate,
}

pub struct Org {
    pub name: String,
    pub ca: Certificate,
    pub ca_key: SoftSigner,
    pub admin: Key,
    pub node: Key,
    /// A second node-sign key of the organisation (for a rotation or an addition).
    pub spare: Key,
}

pub struct World {
    pub orgs: Vec<Org>,
    pub genesis: Genesis,
    pub ledger: Ledger<MemBackend>,
    pub salt: std::cell::Cell<u8>,
}

pub fn world() -> World {
    world_with(None)
}

/// A world whose genesis sets `governance` (kind → policy) when given.
pub fn world_with(governance: Option<serde_json::Value>) -> World {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
    let mut orgs = Vec::new();
    for (i, name) in ["Agency A", "Agency B", "Agency C", "Agency D"]
        .iter()
        .enumerate()
    {
        orgs.push(org_of(&p, name, u8::try_from(i + 1).unwrap()));
    }
    let json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": GENESIS_MS,
        "params": { "expiry_window": 100, "max_txs_per_block": 2000, "max_tx_size": 131072 },
        "organisations": orgs.iter().map(|o| serde_json::json!({
            "name": o.name,
            "ca_cert": o.ca.to_pem(),
            "crl": crl(o, 1, &[]).to_pem(),
            // Agency A may register Agency E under its CA.
            "sponsors": if o.name == "Agency A" { vec!["Agency E"] } else { Vec::new() },
        })).collect::<Vec<_>>(),
        "validators": orgs.iter().map(|o| serde_json::json!({
            "name": format!("{} node", o.name),
            "cert": o.node.cert.to_pem(),
        })).collect::<Vec<_>>(),
    });
    let mut json = json;
    if let Some(g) = governance {
        json["governance"] = g;
    }
    let genesis = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    let store = ChainStore::new(MemBackend::new(), genesis.params.limits());
    ledger::init(&store, &genesis).unwrap();
    let ledger = Ledger::open(store, genesis.clone()).unwrap();
    World {
        orgs,
        genesis,
        ledger,
        salt: std::cell::Cell::new(0),
    }
}

/// An organisation `name` with its own self-signed root CA (serial `ca_serial`), an admin, a
/// validator key and a spare node-sign key, all from `p`.
pub fn org_of(p: &SoftwareProvider, name: &str, ca_serial: u8) -> Org {
    let validity = |to| Validity {
        not_before: t(0),
        not_after: t(to),
    };
    let ca_key = p.generate().unwrap();
    let ca = issue_root(
        &format!("{name} CA"),
        name,
        Serial::from_bytes(&[ca_serial]).unwrap(),
        validity(3650),
        &ca_key,
    )
    .unwrap();
    let mut serial = 0x10u8;
    let mut leaf = |role: Role, cn: &str| {
        serial += 1;
        let key = p.generate().unwrap();
        let cert = issue(
            &ca,
            &ca_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: name,
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&[serial]).unwrap(),
                validity: validity(365),
            },
        )
        .unwrap();
        Key { key, cert }
    };
    let admin = leaf(Role::Admin, "admin");
    let node = leaf(Role::NodeSign, "node");
    let spare = leaf(Role::NodeSign, "node-2");
    Org {
        name: name.to_string(),
        ca,
        ca_key,
        admin,
        node,
        spare,
    }
}

/// A new organisation `name` outside the genesis, its keys from `seed`.
pub fn new_org(name: &str, seed: u64) -> Org {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
    org_of(&p, name, 0x40)
}

pub fn crl(o: &Org, number: u64, revoked: &[&Certificate]) -> pki::Crl {
    let entries: Vec<RevokedEntry> = revoked
        .iter()
        .map(|c| RevokedEntry {
            serial: c.serial(),
            revoked_at: t(1),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    issue_crl(&o.ca, &o.ca_key, number, t(number - 1), t(60), &entries).unwrap()
}

impl World {
    pub fn tx(&self, signer: &Key, contract: &str, method: &str, args: Vec<Vec<u8>>) -> Vec<u8> {
        self.salt.set(self.salt.get() + 1);
        let body = Transaction {
            fuel_limit: None,
            chain_id: ChainId::new(CHAIN).unwrap(),
            salt: [self.salt.get(); 16],
            expiry: Height(90),
            sender: types::Sender::Certificate(signer.cert.der().to_vec()),
            call: Call {
                contract: contract.into(),
                method: method.into(),
                args,
            },
        };
        SignedTx::sign(body, &signer.key, &UserId::default())
            .unwrap()
            .to_bytes()
    }

    pub fn propose_tx(
        &self,
        org: usize,
        kind: &str,
        deadline: u64,
        effective: u64,
        rest: Vec<Vec<u8>>,
    ) -> Vec<u8> {
        let mut args = vec![
            kind.as_bytes().to_vec(),
            deadline.to_be_bytes().to_vec(),
            effective.to_be_bytes().to_vec(),
        ];
        args.extend(rest);
        self.tx(&self.orgs[org].admin, "governance", "propose", args)
    }

    /// A `params` proposal of organisation `org`'s admin: each value given replaces the one in
    /// force, `None` keeps it (an empty argument).
    pub fn params_tx(
        &self,
        org: usize,
        deadline: u64,
        effective: u64,
        update: [Option<u64>; 3],
    ) -> Vec<u8> {
        let rest = update
            .iter()
            .map(|v| v.map_or_else(Vec::new, |v| v.to_be_bytes().to_vec()))
            .collect();
        self.propose_tx(org, "params", deadline, effective, rest)
    }

    /// An anchor by organisation `org`'s admin whose metadata and pointer are `fill` bytes
    /// each (up to 4096): about 1.2 KiB plus twice `fill` encoded.
    pub fn anchor_tx(&self, org: usize, fill: usize) -> Vec<u8> {
        self.salt.set(self.salt.get() + 1);
        self.tx(
            &self.orgs[org].admin,
            "attestation",
            "anchor",
            vec![
                vec![self.salt.get(); 32],
                b"k".to_vec(),
                vec![b'm'; fill],
                vec![b'p'; fill],
            ],
        )
    }

    pub fn vote_tx(&self, org: usize, proposal: &[u8; 32], yes: bool) -> Vec<u8> {
        let v: &[u8] = if yes { b"yes" } else { b"no" };
        self.tx(
            &self.orgs[org].admin,
            "governance",
            "vote",
            vec![proposal.to_vec(), v.to_vec()],
        )
    }

    /// A vote signed by `signer` (an admin of an organisation outside `orgs`).
    pub fn vote_tx_by(&self, signer: &Key, proposal: &[u8; 32], yes: bool) -> Vec<u8> {
        let v: &[u8] = if yes { b"yes" } else { b"no" };
        self.tx(
            signer,
            "governance",
            "vote",
            vec![proposal.to_vec(), v.to_vec()],
        )
    }

    /// Every key that may sign for the set of `height`.
    pub fn signers(&self, height: Height) -> Vec<&Key> {
        let set = self.ledger.validator_set(height);
        self.orgs
            .iter()
            .flat_map(|o| [&o.node, &o.spare])
            .filter(|k| set.get(&k.cert.fingerprint()).is_some())
            .collect()
    }

    pub fn certificate(keys: &[&Key], height: Height, hash: BlockHash) -> CommitCertificate {
        let votes: Vec<_> = keys
            .iter()
            .map(|k| {
                Vote {
                    chain_id: ChainId::new(CHAIN).unwrap(),
                    height,
                    round: 0,
                    kind: VoteKind::Precommit,
                    block: Some(hash),
                    validator: k.cert.fingerprint(),
                }
                .sign(&k.key)
                .unwrap()
            })
            .collect();
        CommitCertificate::from_votes(height, 0, hash, &votes)
    }

    /// Proposes a block of `txs` (each must be admitted), commits it with the precommits of
    /// every validator of its height, and returns its receipts' statuses.
    pub fn block(&mut self, txs: &[Vec<u8>]) -> Vec<Status> {
        let admitted: Vec<_> = txs
            .iter()
            .map(|b| self.ledger.admit(b, t(2), &|_| false).unwrap())
            .collect();
        let head = self.ledger.head();
        let height = head.tip.height.next().unwrap();
        let now = head.header.timestamp.0 + 1000;
        let p = self
            .ledger
            .propose(admitted, self.orgs[0].node.cert.fingerprint(), now)
            .unwrap();
        assert!(p.dropped.is_empty(), "{:?}", p.dropped);
        let exec = p.executed;
        let statuses = exec.receipts().iter().map(|r| r.status.clone()).collect();
        let cert = Self::certificate(&self.signers(height), height, exec.hash());
        self.ledger.commit(exec, cert).unwrap();
        statuses
    }

    /// Proposes a block of the admitted `txs` at the head without committing it.
    pub fn propose(&self, txs: &[Vec<u8>]) -> ledger::Proposed {
        let admitted: Vec<_> = txs
            .iter()
            .map(|b| self.ledger.admit(b, t(2), &|_| false).unwrap())
            .collect();
        let head = self.ledger.head();
        self.ledger
            .propose(
                admitted,
                self.orgs[0].node.cert.fingerprint(),
                head.header.timestamp.0 + 1000,
            )
            .unwrap()
    }

    /// Commits `exec` with the precommits of every validator of its height.
    pub fn commit(&mut self, exec: ledger::ExecutedBlock) {
        let height = exec.height();
        let cert = Self::certificate(&self.signers(height), height, exec.hash());
        self.ledger.commit(exec, cert).unwrap();
    }

    /// Closes the ledger and opens its store again (what a node restart does).
    pub fn reopen(&mut self) {
        let blank = ChainStore::new(MemBackend::new(), self.genesis.params.limits());
        ledger::init(&blank, &self.genesis).unwrap();
        let placeholder = Ledger::open(blank, self.genesis.clone()).unwrap();
        let store = std::mem::replace(&mut self.ledger, placeholder).into_store();
        self.ledger = Ledger::open(store, self.genesis.clone()).unwrap();
    }

    /// Submits `tx` for admission at the world's admission time.
    pub fn admit(&self, tx: &[u8]) -> Result<(), execution::Rejection> {
        self.ledger.admit(tx, t(2), &|_| false).map(|_| ())
    }

    pub fn empty_blocks_until(&mut self, height: u64) {
        while self.ledger.head().tip.height.0 < height {
            self.block(&[]);
        }
    }
}

pub fn failed(s: &Status) -> u32 {
    match s {
        Status::Failed { code, .. } => *code,
        Status::Success => 0,
    }
}

pub fn proposal_id(tx: &[u8]) -> [u8; 32] {
    let limits = types::Limits::default();
    use types::Decode;
    SignedTx::from_bytes(tx, &limits).unwrap().tx_id().0.0
}

/// The recorded proposal `id` (the proposing transaction's ID).
pub fn proposal(w: &World, id: [u8; 32]) -> execution::ProposalRecord {
    w.ledger
        .with_state(|v| execution::read_proposal(v, &crypto::Digest(id)))
        .unwrap()
        .unwrap()
}

/// Where proposal `id` stands.
pub fn status_of(w: &World, id: [u8; 32]) -> ProposalStatus {
    proposal(w, id).status
}

/// A node-sign key of organisation `org`'s CA with `validity` and subject organisation
/// `subject_org`.
pub fn node_key(
    w: &World,
    org: usize,
    seed: u64,
    serial: u8,
    subject_org: &str,
    validity: Validity,
) -> Key {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
    let key = p.generate().unwrap();
    let o = &w.orgs[org];
    let cert = issue(
        &o.ca,
        &o.ca_key,
        &IssueRequest {
            role: Role::NodeSign,
            common_name: "node-x",
            organisation: subject_org,
            public_key: &key.public_key(),
            serial: Serial::from_bytes(&[serial]).unwrap(),
            validity,
        },
    )
    .unwrap();
    Key { key, cert }
}
