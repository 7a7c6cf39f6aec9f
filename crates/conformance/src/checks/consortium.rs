//! GM/T 0111 §8.4 and §8.7 without a node, through the node's own admission and executor on an
//! in-memory state: an organisation's CA registered by transaction is judged by its issuer's
//! CRL (revoking it refuses every member from the next block), a genesis root registers only
//! the organisations it sponsors, and the sponsor's deregistration takes effect at once. Every
//! case can fail: each expects a specific refusal code where a broken rule would admit.

use super::{Check, Evidence};
use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{
    Admission, AdmitContext, BlockContext, Executor, Genesis, RejectCode, StateView, VerifiedTx,
};
use pki::{
    Certificate, Crl, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime,
    Validity, issue, issue_crl, issue_root,
};
use state::{MemStore, NodeStore};
use std::sync::Arc;
use types::{Call, ChainId, Encode, Height, Sender, SignedTx, Status, Transaction};

pub(super) const CHECKS: &[Check] = &[Check {
    id: "ledger-consortium-revocation",
    title: "Admission judges a registered organisation's CA by its issuer's recorded CRL, registers only sponsored names, and honours deregistration from the next block",
    run: consortium_revocation,
}];

const SOURCE: &str =
    "gmchain-derived: docs/execution.md §5-6 (the node's admission and executor, in memory)";

fn case(name: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: name.to_string(),
        source: SOURCE.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

struct Ca {
    key: SoftSigner,
    cert: Certificate,
}

struct World {
    p: SoftwareProvider,
    serial: std::cell::Cell<u64>,
    store: MemStore,
    root: Digest,
    height: u64,
    admission: Admission,
    executor: Executor,
}

type R<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}

impl World {
    fn serial(&self) -> R<Serial> {
        let s = self.serial.get();
        self.serial.set(s + 1);
        Serial::from_bytes(&s.to_be_bytes()[6..]).map_err(e("serial"))
    }

    fn issue(&self, by: &Ca, role: Role, org: &str, cn: &str) -> R<Ca> {
        let key = self.p.generate().map_err(e("key"))?;
        let cert = issue(
            &by.cert,
            &by.key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: org,
                public_key: &key.public_key(),
                serial: self.serial()?,
                validity: Validity {
                    not_before: t(0),
                    not_after: t(365),
                },
            },
        )
        .map_err(e("issue"))?;
        Ok(Ca { key, cert })
    }

    fn crl(&self, ca: &Ca, number: u64, day: u64, revoked: &[&Certificate]) -> R<Crl> {
        let entries: Vec<RevokedEntry> = revoked
            .iter()
            .map(|c| RevokedEntry {
                serial: c.serial(),
                revoked_at: t(day),
                reason: RevocationReason::CaCompromise,
            })
            .collect();
        issue_crl(&ca.cert, &ca.key, number, t(day), t(day + 60), &entries).map_err(e("crl"))
    }

    fn ctx(&self) -> AdmitContext {
        AdmitContext {
            tip: Height(self.height),
            now: t(10 + self.height),
        }
    }

    fn tx(&self, who: &Ca, salt: u8, method: (&str, &str), args: Vec<Vec<u8>>) -> R<Vec<u8>> {
        let body = Transaction {
            fuel_limit: None,
            chain_id: ChainId::new("conformance-consortium").map_err(e("chain id"))?,
            salt: [salt; 16],
            expiry: Height(self.height + 50),
            sender: Sender::Certificate(who.cert.der().to_vec()),
            call: Call {
                contract: method.0.into(),
                method: method.1.into(),
                args,
            },
        };
        Ok(SignedTx::sign(body, &who.key, &UserId::default())
            .map_err(e("sign"))?
            .to_bytes())
    }

    fn anchor(&self, who: &Ca, salt: u8) -> R<Vec<u8>> {
        let d = crypto_sm::sm3::sm3(&[salt, 0xa5]);
        self.tx(
            who,
            salt,
            ("attestation", "anchor"),
            vec![d.0.to_vec(), b"document".to_vec(), Vec::new(), Vec::new()],
        )
    }

    fn admit(&self, bytes: &[u8]) -> Result<VerifiedTx, execution::Rejection> {
        let view = StateView::new(&self.store, self.root);
        self.admission
            .admit(&view, &self.ctx(), &|_| Ok(false), bytes)
    }

    /// Admits and commits `txs` in one block; every receipt must succeed.
    fn commit(&mut self, txs: &[Vec<u8>]) -> R<()> {
        let mut v = Vec::new();
        for b in txs {
            v.push(
                self.admit(b)
                    .map_err(|r| format!("admission refused: {r}"))?,
            );
        }
        let ctx = BlockContext {
            height: Height(self.height + 1),
            timestamp_ms: (T0 + (10 + self.height) * DAY) * 1000,
        };
        let exec = self
            .executor
            .execute_block(&self.store, self.root, &ctx, &v)
            .map_err(e("execute"))?;
        for r in &exec.receipts {
            if let Status::Failed { code, message } = &r.status {
                return Err(format!("a setup transaction failed: {code}: {message}"));
            }
        }
        self.root = exec.update.root;
        self.store.write(exec.update.nodes).map_err(e("store"))?;
        self.height += 1;
        Ok(())
    }

    /// Expects `bytes` refused with `code`.
    fn refused(&self, bytes: &[u8], code: RejectCode) -> R<()> {
        match self.admit(bytes) {
            Ok(_) => Err(format!("admitted, but must be refused with {code}")),
            Err(r) if r.code == code => Ok(()),
            Err(r) => Err(format!("refused with {r}, expected {code}")),
        }
    }
}

fn consortium_revocation() -> Vec<Evidence> {
    match run() {
        Ok(ev) => ev,
        // A setup failure fails the check: it never passes for want of running.
        Err(err) => vec![case("set up the consortium", Err(err))],
    }
}

fn run() -> R<Vec<Evidence>> {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(0x0111_0807)));
    let root_key = p.generate().map_err(e("key"))?;
    let root = Ca {
        cert: issue_root(
            "Conformance Root CA",
            "Conformance Root",
            Serial::from_hex("01").map_err(e("serial"))?,
            Validity {
                not_before: t(0),
                not_after: t(3650),
            },
            &root_key,
        )
        .map_err(e("root"))?,
        key: root_key,
    };
    let other_key = p.generate().map_err(e("key"))?;
    let other = Ca {
        cert: issue_root(
            "Other Root CA",
            "Other Root",
            Serial::from_hex("02").map_err(e("serial"))?,
            Validity {
                not_before: t(0),
                not_after: t(3650),
            },
            &other_key,
        )
        .map_err(e("other root"))?,
        key: other_key,
    };
    let mut w = World {
        p,
        serial: std::cell::Cell::new(0x100),
        store: MemStore::new(),
        root: Digest::default(),
        height: 0,
        admission: Admission::new(
            ChainId::new("x").map_err(e("chain id"))?,
            &Default::default(),
            pki::Consortium::new(Vec::new()).map_err(e("consortium"))?,
        ),
        executor: Executor::new(
            ChainId::new("x").map_err(e("chain id"))?,
            &Default::default(),
        ),
    };
    let node = w.issue(&root, Role::NodeSign, "Conformance Root", "node-1")?;
    let json = serde_json::json!({
        "format": 2,
        "chain_id": "conformance-consortium",
        "test_chain": true,
        "timestamp_ms": (T0 + DAY) * 1000,
        "organisations": [
            { "name": "Conformance Root", "ca_cert": root.cert.to_pem(), "crl": w.crl(&root, 1, 0, &[])?.to_pem(), "sponsors": ["Agency B"] },
            { "name": "Other Root", "ca_cert": other.cert.to_pem(), "crl": w.crl(&other, 1, 0, &[])?.to_pem() },
        ],
        "validators": [ { "name": "node-1", "cert": node.cert.to_pem() } ],
    });
    let g = Genesis::from_json(json.to_string().as_bytes()).map_err(e("genesis"))?;
    let gb = g.build(&w.store).map_err(e("genesis block"))?;
    w.root = gb.update.root;
    w.store.write(gb.update.nodes).map_err(e("store"))?;
    w.admission = Admission::new(
        g.chain_id.clone(),
        &g.params,
        g.consortium().map_err(e("consortium"))?,
    );
    w.executor = Executor::new(g.chain_id.clone(), &g.params);

    let mut out = Vec::new();
    // Sponsorship: the other root certifies a CA in Agency B's name; its admin is refused.
    let squat = w.issue(&other, Role::AgencyCa, "Agency B", "Agency B CA")?;
    let squat_admin = w.issue(&squat, Role::Admin, "Agency B", "squatter")?;
    let squat_args = vec![
        squat.cert.der().to_vec(),
        w.crl(&squat, 1, 0, &[])?.der().to_vec(),
    ];
    let squat_tx = w.tx(&squat_admin, 1, ("identity", "register_org"), squat_args)?;
    out.push(case(
        "a root registers no organisation it does not sponsor (TX_CERT_INVALID, CERT_NOT_SPONSORED)",
        match w.admit(&squat_tx) {
            Err(r) if r.code == RejectCode::CertInvalid && r.message.contains("CERT_NOT_SPONSORED") => Ok(()),
            Err(r) => Err(format!("refused with {r}, expected CERT_NOT_SPONSORED")),
            Ok(_) => Err("admitted".into()),
        },
    ));

    // Agency B registered under the sponsoring root; its user anchors.
    let b = w.issue(&root, Role::AgencyCa, "Agency B", "Agency B CA")?;
    let b_admin = w.issue(&b, Role::Admin, "Agency B", "b-admin")?;
    let b_user = w.issue(&b, Role::User, "Agency B", "b-user")?;
    let args = vec![b.cert.der().to_vec(), w.crl(&b, 1, 0, &[])?.der().to_vec()];
    let reg = w.tx(&b_admin, 2, ("identity", "register_org"), args)?;
    w.commit(&[reg])?;
    let first = w.anchor(&b_user, 3)?;
    w.commit(&[first])?;
    let pending_bytes = w.anchor(&b_user, 4)?;
    let pending = w
        .admit(&pending_bytes)
        .map_err(|r| format!("admission refused: {r}"))?;

    // The root revokes Agency B's CA; the root organisation's admin records the CRL.
    let root_admin = w.issue(&root, Role::Admin, "Conformance Root", "root-admin")?;
    let crl2 = w.crl(&root, 2, 5, &[&b.cert])?;
    let upd = w.tx(
        &root_admin,
        5,
        ("identity", "update_crl"),
        vec![crl2.der().to_vec()],
    )?;
    w.commit(&[upd])?;
    let view = StateView::new(&w.store, w.root);
    out.push(case(
        "a transaction admitted before the CA's revocation is refused before commit (TX_SIGNER_REVOKED)",
        match w.admission.recheck(&view, &w.ctx(), &|_| Ok(false), &pending) {
            Err(r) if r.code == RejectCode::SignerRevoked => Ok(()),
            Err(r) => Err(format!("refused with {r}, expected TX_SIGNER_REVOKED")),
            Ok(()) => Err("passed recheck after its CA was revoked".into()),
        },
    ));
    out.push(case(
        "a member of the revoked CA is refused (TX_SIGNER_REVOKED)",
        w.anchor(&b_user, 6)
            .and_then(|tx| w.refused(&tx, RejectCode::SignerRevoked)),
    ));
    let newcomer = w.issue(&b, Role::User, "Agency B", "newcomer")?;
    out.push(case(
        "a certificate newly issued with the revoked CA's key is refused (TX_SIGNER_REVOKED)",
        w.anchor(&newcomer, 7)
            .and_then(|tx| w.refused(&tx, RejectCode::SignerRevoked)),
    ));

    // Deregistration by the sponsor, of an organisation whose CA is not revoked.
    let c = w.issue(&root, Role::AgencyCa, "Agency B", "Agency B CA 2")?;
    let c_user = w.issue(&c, Role::User, "Agency B", "c-user")?;
    let replace = w.tx(
        &root_admin,
        8,
        ("identity", "replace_ca"),
        vec![c.cert.der().to_vec(), w.crl(&c, 1, 5, &[])?.der().to_vec()],
    )?;
    w.commit(&[replace])?;
    out.push(case(
        "the sponsor's replacement CA certifies the organisation's members",
        w.anchor(&c_user, 9).and_then(|tx| {
            w.admit(&tx)
                .map(|_| ())
                .map_err(|r| format!("refused: {r}"))
        }),
    ));
    let dereg = w.tx(
        &root_admin,
        10,
        ("identity", "deregister_org"),
        vec![b"Agency B".to_vec()],
    )?;
    w.commit(&[dereg])?;
    out.push(case(
        "after the sponsor deregisters the organisation, its members are refused (TX_ORG_REMOVED)",
        w.anchor(&c_user, 11)
            .and_then(|tx| w.refused(&tx, RejectCode::OrgRemoved)),
    ));
    Ok(out)
}
