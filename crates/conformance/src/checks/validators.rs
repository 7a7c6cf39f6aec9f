//! GM/T 0111 §7.7 (a node's identity in consensus is bound to its certificate) and the platform
//! standard's consensus layer, without a node: on gmchain's own ledger over an in-memory store,
//! four organisations each with its own CA and validator. When an organisation records a CRL
//! revoking its validator's certificate, the validator stops counting from the next height: the
//! next height's set leaves it out, the block's header commits to that set, a certificate that
//! needs its precommit is refused, and a receipt of a later block verifies offline from the
//! genesis file only with the certified chain of set changes.
//!
//! What this check does not show: a live network excluding the validator (the end-to-end test
//! `tests/governance.rs` does, in CI), or governance changes (`crates/ledger/tests/governance.rs`).

use super::{Check, Evidence};
use crypto::{Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use ledger::Ledger;
use pki::{
    Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime, Validity,
    issue, issue_crl, issue_root,
};
use receipt::{Finality, ReceiptBundle, ReceiptError, TrustContext};
use std::sync::Arc;
use storage::{ChainStore, MemBackend};
use types::{
    BlockHash, Call, ChainId, CommitCertificate, Encode, Height, SignedTx, Transaction, Vote,
    VoteKind,
};

pub(super) const CHECKS: &[Check] = &[Check {
    id: "consensus-revoked-validator-excluded",
    title: "A validator whose certificate its organisation revokes on the chain stops counting from the next height: the set, the header's next_validator_set, the certificates and offline receipts all follow",
    run: revoked_validator_excluded,
}];

const SRC: &str = "gmchain-derived: crates/execution validators rule and crates/ledger, driven in-process with SM2 keys and real X.509 certificates and CRLs";
const CHAIN: &str = "gmchain-conformance";
const T0: u64 = 1_767_225_600;

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * 86_400)
}

struct Org {
    ca: Certificate,
    ca_key: SoftSigner,
    admin: (SoftSigner, Certificate),
    node: (SoftSigner, Certificate),
}

fn case(what: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: what.to_string(),
        source: SRC.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

fn revoked_validator_excluded() -> Vec<Evidence> {
    match cases() {
        Ok((out, _)) => out,
        Err(e) => vec![case("set up four organisations and their chain", Err(e))],
    }
}

/// The chain the check builds: four organisations, D's validator revoked by the CRL of block
/// 2 (so the set changes from height 3), four blocks, each with its commit certificate.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Built {
    pub genesis_json: String,
    pub ledger: Ledger<MemBackend>,
    /// The first height the set without D decides.
    pub changed_from: Height,
    /// The genesis validators' certificates, and D's (revoked) among them.
    pub validators: Vec<Certificate>,
    pub revoked: Certificate,
}

/// Builds the check's chain (for the node checks' tests, which serve it as a node would).
#[cfg(test)]
pub(crate) fn built_chain() -> Result<Built, String> {
    cases().map(|(_, b)| b)
}

fn orgs() -> Result<Vec<Org>, String> {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(0x7_7)));
    let validity = |to| Validity {
        not_before: t(0),
        not_after: t(to),
    };
    let mut out = Vec::new();
    for (i, name) in ["Agency A", "Agency B", "Agency C", "Agency D"]
        .iter()
        .enumerate()
    {
        let ca_key = p.generate().map_err(|e| e.to_string())?;
        let ca = issue_root(
            &format!("{name} CA"),
            name,
            Serial::from_bytes(&[u8::try_from(i + 1).unwrap_or(1)]).map_err(|e| e.to_string())?,
            validity(3650),
            &ca_key,
        )
        .map_err(|e| e.to_string())?;
        let leaf = |role: Role, cn: &str, serial: u8| -> Result<_, String> {
            let key = p.generate().map_err(|e| e.to_string())?;
            let cert = issue(
                &ca,
                &ca_key,
                &IssueRequest {
                    role,
                    common_name: cn,
                    organisation: name,
                    public_key: &key.public_key(),
                    serial: Serial::from_bytes(&[serial]).map_err(|e| e.to_string())?,
                    validity: validity(365),
                },
            )
            .map_err(|e| e.to_string())?;
            Ok((key, cert))
        };
        let admin = leaf(Role::Admin, "admin", 0x11)?;
        let node = leaf(Role::NodeSign, "node", 0x12)?;
        out.push(Org {
            ca,
            ca_key,
            admin,
            node,
        });
    }
    Ok(out)
}

fn crl(o: &Org, number: u64, revoked: &[&Certificate]) -> Result<pki::Crl, String> {
    let entries: Vec<RevokedEntry> = revoked
        .iter()
        .map(|c| RevokedEntry {
            serial: c.serial(),
            revoked_at: t(1),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    issue_crl(&o.ca, &o.ca_key, number, t(number - 1), t(60), &entries).map_err(|e| e.to_string())
}

/// A commit certificate of `hash` at `h` on chain [`CHAIN`], signed by `signers`.
pub(crate) fn certificate(
    signers: &[&(SoftSigner, Certificate)],
    h: Height,
    hash: BlockHash,
) -> Result<CommitCertificate, String> {
    let chain = ChainId::new(CHAIN).map_err(|e| e.to_string())?;
    let votes = signers
        .iter()
        .map(|(k, c)| {
            Vote {
                chain_id: chain.clone(),
                height: h,
                round: 0,
                kind: VoteKind::Precommit,
                block: Some(hash),
                validator: c.fingerprint(),
            }
            .sign(k)
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CommitCertificate::from_votes(h, 0, hash, &votes))
}

/// Four organisations' validators (keys and node-sign certificates) and a test-chain genesis
/// file naming them (chain [`CHAIN`]), for the node checks' tests that sign certificates.
#[cfg(test)]
pub(crate) fn four_validators() -> Result<(String, Vec<(SoftSigner, Certificate)>), String> {
    let orgs = orgs()?;
    let json = genesis_json(&orgs)?;
    Ok((json.to_string(), orgs.into_iter().map(|o| o.node).collect()))
}

/// The genesis file of `orgs`: each organisation with its CA and first CRL, each one's
/// validator.
fn genesis_json(orgs: &[Org]) -> Result<serde_json::Value, String> {
    let mut organisations = Vec::new();
    for o in orgs {
        organisations.push(serde_json::json!({
            "name": o.ca.organisation().unwrap_or_default(),
            "ca_cert": o.ca.to_pem(),
            "crl": crl(o, 1, &[])?.to_pem(),
        }));
    }
    let genesis_json = serde_json::json!({
        "format": 2,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": (T0 + 86_400) * 1000,
        "params": { "expiry_window": 100, "max_txs_per_block": 100, "max_tx_size": 131072 },
        "organisations": organisations,
        "validators": orgs.iter().enumerate().map(|(i, o)| serde_json::json!({
            "name": format!("node {i}"), "cert": o.node.1.to_pem(),
        })).collect::<Vec<_>>(),
    });
    Ok(genesis_json)
}

fn cases() -> Result<(Vec<Evidence>, Built), String> {
    let orgs = orgs()?;
    let genesis_json = genesis_json(&orgs)?;
    let genesis = execution::Genesis::from_json(genesis_json.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let store = ChainStore::new(MemBackend::new(), genesis.params.limits());
    ledger::init(&store, &genesis).map_err(|e| e.to_string())?;
    let ledger = Ledger::open(store, genesis.clone()).map_err(|e| e.to_string())?;
    let all: Vec<&(SoftSigner, Certificate)> = orgs.iter().map(|o| &o.node).collect();
    let mut salt = 0u8;
    let mut tx = |who: &(SoftSigner, Certificate), contract: &str, method: &str, args| {
        salt += 1;
        let body = Transaction {
            fuel_limit: None,
            chain_id: ChainId::new(CHAIN).map_err(|e| e.to_string())?,
            salt: [salt; 16],
            expiry: Height(50),
            sender: types::Sender::Certificate(who.1.der().to_vec()),
            call: Call {
                contract: contract.into(),
                method: method.into(),
                args,
            },
        };
        SignedTx::sign(body, &who.0, &UserId::default())
            .map(|s| s.to_bytes())
            .map_err(|e| e.to_string())
    };
    // Commits a block of `txs` with the precommits of `signers`.
    let commit =
        |txs: Vec<Vec<u8>>, signers: &[&(SoftSigner, Certificate)]| -> Result<Height, String> {
            let admitted = txs
                .iter()
                .map(|b| ledger.admit(b, t(2), &|_| false).map_err(|r| r.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let head = ledger.head();
            let h = head.tip.height.next().ok_or("height overflow")?;
            let p = ledger
                .propose(
                    admitted,
                    orgs[0].node.1.fingerprint(),
                    head.header.timestamp.0 + 1000,
                )
                .map_err(|e| e.to_string())?;
            let cert = certificate(signers, h, p.executed.hash())?;
            ledger.commit(p.executed, cert).map_err(|e| e.to_string())?;
            Ok(h)
        };
    let mut out = Vec::new();
    commit(Vec::new(), &all)?;
    // D's admin records a CRL revoking D's validator certificate.
    let d = &orgs[3];
    let revoking = crl(d, 2, &[&d.node.1])?;
    let update = tx(
        &d.admin,
        "identity",
        "update_crl",
        vec![revoking.der().to_vec()],
    )?;
    let h = commit(vec![update], &all)?;
    let next = ledger.validator_set(Height(h.0 + 1));
    out.push(case(
        "after the block that records the CRL, the next height's set has 3 validators without the revoked one",
        if next.len() == 3 && next.get(&d.node.1.fingerprint()).is_none() {
            Ok(())
        } else {
            Err(format!("the next set has {} validators", next.len()))
        },
    ));
    let header = ledger.head().header;
    out.push(case(
        "the block's header commits to that set as next_validator_set",
        match header.consensus {
            Some(l) if l.next_validator_set == next.hash() => Ok(()),
            other => Err(format!("header links {other:?}")),
        },
    ));
    // At the next height D's precommit is no vote.
    let head = ledger.head();
    let p = ledger
        .propose(
            Vec::new(),
            orgs[0].node.1.fingerprint(),
            head.header.timestamp.0 + 1000,
        )
        .map_err(|e| e.to_string())?;
    let with_d = certificate(
        &[all[0], all[1], all[3]],
        Height(h.0 + 1),
        p.executed.hash(),
    )?;
    out.push(case(
        "a certificate of A, B and the revoked D at the next height is refused",
        match ledger.commit(p.executed.clone(), with_d) {
            Err(_) => Ok(()),
            Ok(_) => Err("accepted".into()),
        },
    ));
    let ok = certificate(
        &[all[0], all[1], all[2]],
        Height(h.0 + 1),
        p.executed.hash(),
    )?;
    ledger.commit(p.executed, ok).map_err(|e| e.to_string())?;
    // A receipt of a block after the change.
    let anchor = tx(
        &orgs[0].admin,
        "attestation",
        "anchor",
        vec![vec![9; 32], b"k".to_vec(), Vec::new(), Vec::new()],
    )?;
    let h2 = commit(vec![anchor], &[all[0], all[1], all[2]])?;
    let s = ledger.store();
    let block = s.block(h2).map_err(|e| e.to_string())?.ok_or("block")?;
    let receipt = s
        .receipt(&block.txs[0].tx_id())
        .map_err(|e| e.to_string())?
        .ok_or("receipt")?;
    let cert = s
        .certificate(h2)
        .map_err(|e| e.to_string())?
        .ok_or("certificate")?;
    let mut bundle = ReceiptBundle::build(
        &block,
        &[receipt],
        0,
        Finality::Certificate(cert),
        vec![orgs[0].admin.1.clone()],
        vec![crl(&orgs[0], 1, &[])?],
    )
    .map_err(|e| e.to_string())?;
    let trust = TrustContext {
        chain_id: ChainId::new(CHAIN).map_err(|e| e.to_string())?,
        validators: orgs.iter().map(|o| o.node.1.clone()).collect(),
        consortium: genesis.consortium().map_err(|e| e.to_string())?,
    };
    out.push(case(
        "without the chain of set changes, the receipt does not verify against the genesis set",
        match bundle.verify(&trust, None) {
            Err(ReceiptError::ValidatorSet { .. }) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    ));
    bundle.set_changes = ledger.set_changes(h2).map_err(|e| e.to_string())?;
    out.push(case(
        "with it (the CRL transaction and its proof as the cause), the receipt verifies offline",
        match bundle.verify(&trust, None) {
            Ok(v)
                if v.set_changes == vec![Height(h.0 + 1)]
                    && bundle.set_changes[0].causes.len() == 1 =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    ));
    let mut forged = bundle.clone();
    if let Some(c) = forged.set_changes.first_mut() {
        c.validators.push(d.node.1.clone());
    }
    out.push(case(
        "a chain of set changes that puts the revoked validator back is refused",
        match forged.verify(&trust, None) {
            Err(ReceiptError::SetChange { .. }) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    ));
    let chain = Built {
        genesis_json: genesis_json.to_string(),
        ledger,
        changed_from: Height(h.0 + 1),
        validators: orgs.iter().map(|o| o.node.1.clone()).collect(),
        revoked: d.node.1.clone(),
    };
    Ok((out, chain))
}
