//! The node checks against fake nodes: one that accepts everything (every check must fail),
//! and one over a real genesis file that enforces revocation, or lets a revoked signer through.

use super::ledger::ledger_chain;
use super::transactions::verify_before_commit;
use super::*;
use crypto::{Digest, RandomSource, Signer};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::{Certificate, IssueRequest, Role, Serial, UnixTime, Validity};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fake node's error answer to `call`.
fn failed(call: Rpc, status: &str, message: impl std::fmt::Display) -> ProbeError {
    ProbeError::Failed {
        call,
        status: status.to_string(),
        message: message.to_string(),
    }
}
use types::{ChainId, Decode, Encode, Height, Limits, Receipt, Sender, SignedTx, Status};

/// A node that admits and "commits" everything, with no blocks and no genesis: every
/// live check must fail against it, none vacuously.
struct AcceptsAll {
    signer: SoftSigner,
    cert: Vec<u8>,
    rng: SeededRandom,
    height: AtomicU64,
}

impl AcceptsAll {
    fn new() -> Self {
        let signer = SoftwareProvider::new(Arc::new(SeededRandom::new(1)))
            .signer(PrivateKey::from_bytes(&[0x42; 32]).unwrap());
        let v = Validity {
            not_before: UnixTime(1_700_000_000),
            not_after: UnixTime(1_900_000_000),
        };
        let cert = pki::issue_root(
            "Fake",
            "Fake Org",
            Serial::from_bytes(&[1]).unwrap(),
            v,
            &signer,
        )
        .unwrap()
        .der()
        .to_vec();
        AcceptsAll {
            signer,
            cert,
            rng: SeededRandom::new(2),
            height: AtomicU64::new(3),
        }
    }
}

impl NodeProbe for AcceptsAll {
    fn allow_writes(&self) -> bool {
        true
    }
    fn identity(&self) -> NodeIdentity {
        NodeIdentity::default()
    }
    fn genesis_json(&self) -> &[u8] {
        b"{}"
    }
    fn certificate(&self) -> &[u8] {
        &self.cert
    }
    fn signer(&self) -> &dyn Signer {
        &self.signer
    }
    fn random(&self) -> &dyn RandomSource {
        &self.rng
    }
    fn now_unix(&self) -> u64 {
        1_800_000_000
    }
    fn status(&self) -> Result<NodeStatus, ProbeError> {
        Ok(NodeStatus {
            chain_id: "fake-chain".into(),
            height: self.height.load(Ordering::SeqCst),
            expiry_window: 100,
            ..NodeStatus::default()
        })
    }
    fn submit(&self, signed_tx: &[u8]) -> Result<Submission, ProbeError> {
        let h = self.height.fetch_add(1, Ordering::SeqCst) + 1;
        let id = types::TxId(Digest(
            SignedTx::from_bytes(signed_tx, &Limits::default())
                .map(|t| t.tx_id().0.0)
                .unwrap_or([0; 32]),
        ));
        Ok(Submission::Committed {
            tx_id: id.as_bytes().to_vec(),
            height: h,
            position: 0,
            receipt: Receipt {
                fuel_used: Some(0),
                output: Vec::new(),
                tx_id: id,
                status: Status::Success,
                events: Vec::new(),
            }
            .to_bytes(),
        })
    }
    fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        Ok(None)
    }
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        Err(failed(
            Rpc::GetBlock { height },
            "NotFound",
            format!("no block {height}"),
        ))
    }
    fn receipt_json(&self, _: &[u8; 32]) -> Result<String, ProbeError> {
        Err(failed(Rpc::GetReceiptProof, "NotFound", "no receipts"))
    }
}

#[test]
fn every_node_check_fails_against_a_node_that_accepts_everything() {
    let probe = AcceptsAll::new();
    for c in node_checks() {
        let ev = (c.run)(&probe);
        assert!(!ev.is_empty(), "{}", c.id);
        assert!(ev.iter().any(|e| !e.pass), "{} passed: {ev:#?}", c.id);
    }
    let ev = verify_before_commit(&probe);
    let sig = ev
        .iter()
        .find(|e| e.case.contains("another transaction's id"))
        .unwrap();
    assert!(!sig.pass && sig.detail.contains("ACCEPTED"), "{sig:?}");
}

#[test]
fn a_failed_node_check_fails_its_clause_not_just_not_run() {
    let probe = AcceptsAll::new();
    let stds = crate::load_standards().unwrap();
    let r = crate::run(&stds, crate::Provenance::default(), None, Some(&probe));
    assert!(
        r.summary
            .mandatory_failed
            .contains(&"GM/T 0111-2021 8.4".to_string()),
        "{:?}",
        r.summary.mandatory_failed
    );
    let without = crate::run(&stds, crate::Provenance::default(), None, None);
    let c = without
        .standards
        .iter()
        .flat_map(|s| &s.clauses)
        .find(|c| c.id == "GZ-6.2")
        .unwrap();
    assert!(c.cause.as_deref().unwrap().contains("needs a live node"));
}

// ---------------------------------------------------------------------------------------
// A fake node that enforces revocation (or, with `accept_revoked`, lets a revoked signer
// through), over a real genesis file of one organisation.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

const NOW: u64 = 1_800_000_000;

fn soft(seed: u8) -> SoftSigner {
    SoftwareProvider::new(Arc::new(SeededRandom::new(u64::from(seed))))
        .signer(PrivateKey::from_bytes(&[seed; 32]).unwrap())
}

struct Ledger {
    ca_key: SoftSigner,
    ca_cert: Vec<u8>,
    admin_key: SoftSigner,
    admin_cert: Vec<u8>,
    user_key: SoftSigner,
    user_cert: Vec<u8>,
    genesis: Vec<u8>,
    genesis_hash: Vec<u8>,
    allow_writes: bool,
    accept_revoked: bool,
    rng: SeededRandom,
    crl: RefCell<pki::Crl>,
    suspended: RefCell<BTreeSet<[u8; 32]>>,
    committed: RefCell<BTreeMap<[u8; 32], SignedTx>>,
    submits: RefCell<usize>,
    height: u64,
    block0: Vec<u8>,
    asked: RefCell<Vec<u64>>,
    progress: RefCell<Vec<String>>,
}

impl Ledger {
    fn new(test_chain: bool, allow_writes: bool, accept_revoked: bool) -> Self {
        let ca_key = soft(0x31);
        let v = Validity {
            not_before: UnixTime(NOW - 10 * 86_400),
            not_after: UnixTime(NOW + 365 * 86_400),
        };
        let ca = pki::issue_root(
            "Fake Root CA",
            "Fake Bureau",
            Serial::from_bytes(&[1]).unwrap(),
            v,
            &ca_key,
        )
        .unwrap();
        let crl = pki::issue_crl(
            &ca,
            &ca_key,
            1,
            UnixTime(NOW - 60),
            UnixTime(NOW + 86_400),
            &[],
        )
        .unwrap();
        let issue = |role, cn: &str, key: &SoftSigner, serial: u8| {
            pki::issue(
                &ca,
                &ca_key,
                &IssueRequest {
                    role,
                    common_name: cn,
                    organisation: "Fake Bureau",
                    public_key: &key.public_key(),
                    serial: Serial::from_bytes(&[serial]).unwrap(),
                    validity: v,
                },
            )
            .unwrap()
        };
        let admin_key = soft(0x32);
        let admin = issue(Role::Admin, "admin", &admin_key, 2);
        let user_key = soft(0x33);
        let user = issue(Role::User, "client0", &user_key, 3);
        let node = issue(Role::NodeSign, "node0", &soft(0x34), 4);
        let g = execution::Genesis {
            format: execution::GENESIS_FORMAT,
            chain_id: ChainId::new("fake-chain").unwrap(),
            test_chain,
            timestamp_ms: NOW * 1000,
            params: execution::ChainParams::default(),
            organisations: vec![execution::GenesisOrg {
                name: "Fake Bureau".into(),
                ca_cert: ca.clone(),
                crl: crl.clone(),
                sponsors: Vec::new(),
            }],
            validators: vec![execution::GenesisValidator {
                name: "node0".into(),
                cert: node,
            }],
            governance: Vec::new(),
            supervision: None,
        };
        let json = g.to_json().into_bytes();
        let block0 = execution::Genesis::from_json(&json)
            .unwrap()
            .build(&state::MemStore::new())
            .unwrap()
            .block;
        let genesis_hash = block0.header.hash().as_bytes().to_vec();
        Ledger {
            ca_key,
            ca_cert: ca.der().to_vec(),
            admin_key,
            admin_cert: admin.der().to_vec(),
            user_key,
            user_cert: user.der().to_vec(),
            genesis: json,
            genesis_hash,
            allow_writes,
            accept_revoked,
            rng: SeededRandom::new(7),
            crl: RefCell::new(crl),
            suspended: RefCell::new(BTreeSet::new()),
            committed: RefCell::new(BTreeMap::new()),
            submits: RefCell::new(0),
            height: 5,
            block0: block0.to_bytes(),
            asked: RefCell::new(Vec::new()),
            progress: RefCell::new(Vec::new()),
        }
    }

    fn refuse(code: &str, message: String) -> Result<Submission, ProbeError> {
        Ok(Submission::Refused {
            code: code.into(),
            message: format!("{code}: {message}"),
        })
    }
}

impl NodeProbe for Ledger {
    fn allow_writes(&self) -> bool {
        self.allow_writes
    }
    fn admin(&self) -> Option<Party<'_>> {
        Some(Party {
            cert: &self.admin_cert,
            signer: &self.admin_key,
        })
    }
    fn ca(&self) -> Option<Party<'_>> {
        Some(Party {
            cert: &self.ca_cert,
            signer: &self.ca_key,
        })
    }
    fn progress(&self, message: &str) {
        self.progress.borrow_mut().push(message.to_string());
    }
    fn identity(&self) -> NodeIdentity {
        NodeIdentity::default()
    }
    fn genesis_json(&self) -> &[u8] {
        &self.genesis
    }
    fn certificate(&self) -> &[u8] {
        &self.user_cert
    }
    fn signer(&self) -> &dyn Signer {
        &self.user_key
    }
    fn random(&self) -> &dyn RandomSource {
        &self.rng
    }
    fn now_unix(&self) -> u64 {
        NOW
    }
    fn status(&self) -> Result<NodeStatus, ProbeError> {
        Ok(NodeStatus {
            chain_id: "fake-chain".into(),
            height: self.height,
            genesis_hash: self.genesis_hash.clone(),
            expiry_window: 100,
            ..NodeStatus::default()
        })
    }
    fn submit(&self, bytes: &[u8]) -> Result<Submission, ProbeError> {
        *self.submits.borrow_mut() += 1;
        let bad = |e: &dyn std::fmt::Display| failed(Rpc::SubmitTransaction, "InvalidArgument", e);
        let s = SignedTx::from_bytes(bytes, &Limits::default()).map_err(|e| bad(&e))?;
        let Sender::Certificate(der) = &s.tx.sender else {
            return Err(bad(&"no certificate"));
        };
        let cert = Certificate::from_der(der).map_err(|e| bad(&e))?;
        if cert.validity().not_after.0 < NOW {
            return Self::refuse("TX_CERT_INVALID", "expired (CERT_EXPIRED)".into());
        }
        if self.suspended.borrow().contains(&cert.fingerprint().0) {
            return Self::refuse("TX_SIGNER_SUSPENDED", "suspended".into());
        }
        if self.crl.borrow().find(&cert.serial()).is_some() && !self.accept_revoked {
            return Self::refuse("TX_SIGNER_REVOKED", "revoked (CERT_REVOKED)".into());
        }
        let call = &s.tx.call;
        match (call.contract.as_str(), call.method.as_str()) {
            ("identity", "suspend") => {
                self.suspended
                    .borrow_mut()
                    .insert(call.args[0].as_slice().try_into().unwrap());
            }
            ("identity", "resume") => {
                self.suspended
                    .borrow_mut()
                    .remove(<&[u8; 32]>::try_from(call.args[0].as_slice()).unwrap());
            }
            ("identity", "update_crl") => {
                *self.crl.borrow_mut() = pki::Crl::from_der(&call.args[0]).unwrap();
            }
            _ => {}
        }
        let id = s.tx_id();
        self.committed.borrow_mut().insert(id.0.0, s);
        Ok(Submission::Committed {
            tx_id: id.as_bytes().to_vec(),
            height: 5,
            position: 0,
            receipt: Receipt {
                fuel_used: Some(0),
                output: Vec::new(),
                tx_id: id,
                status: Status::Success,
                events: Vec::new(),
            }
            .to_bytes(),
        })
    }
    fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        Ok(None)
    }
    /// Block 0 is the genesis file's; every other block is one undecodable byte.
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        self.asked.borrow_mut().push(height);
        Ok(BlockBytes {
            block: if height == 0 {
                self.block0.clone()
            } else {
                vec![0xff]
            },
            certificate: Vec::new(),
        })
    }
    fn receipt_json(&self, tx_id: &[u8; 32]) -> Result<String, ProbeError> {
        let tx = self.committed.borrow().get(tx_id).cloned().ok_or(failed(
            Rpc::GetReceiptProof,
            "NotFound",
            "unknown",
        ))?;
        let Sender::Certificate(der) = &tx.tx.sender else {
            return Err(failed(Rpc::GetReceiptProof, "Internal", "no certificate"));
        };
        let header = types::BlockHeader {
            chain_id: ChainId::new("fake-chain").unwrap(),
            height: Height(5),
            tx_count: 1,
            parent: types::BlockHash(Digest([1; 32])),
            tx_root: Digest([2; 32]),
            state_root: Digest([3; 32]),
            receipts_root: Digest([4; 32]),
            timestamp: types::Timestamp(NOW * 1000),
            proposer: Digest([5; 32]),
            consensus: Some(types::ConsensusLinks {
                validator_set: Digest([6; 32]),
                next_validator_set: Digest([6; 32]),
                last_commit: Digest([7; 32]),
            }),
        };
        let bundle = receipt::ReceiptBundle {
            position: 0,
            tx_proof: types::merkle::InclusionProof { path: Vec::new() },
            receipt: Receipt {
                fuel_used: Some(0),
                output: Vec::new(),
                tx_id: tx.tx_id(),
                status: Status::Success,
                events: Vec::new(),
            },
            receipt_proof: types::merkle::InclusionProof { path: Vec::new() },
            finality: receipt::Finality::Certificate(types::CommitCertificate {
                height: header.height,
                round: 0,
                block: header.hash(),
                signatures: vec![(Digest([5; 32]), tx.signature)],
            }),
            header,
            chain: vec![Certificate::from_der(der).unwrap()],
            crls: vec![self.crl.borrow().clone()],
            tx,
            set_changes: Vec::new(),
            anchor_proofs: Vec::new(),
        };
        Ok(bundle.to_json())
    }
}

fn revocation_check() -> &'static NodeCheck {
    node_checks()
        .iter()
        .find(|c| c.id == "node-revocation-live")
        .unwrap()
}

#[test]
fn the_ledger_walk_reads_every_block_from_0_to_the_tip() {
    let mut p = Ledger::new(true, false, false);
    p.height = 2 * LEDGER_PROGRESS_EVERY + 500;
    let ev = ledger_chain(&p);
    let asked = p.asked.borrow();
    // Block 0 for the genesis comparison, then every height once in order (then the tip
    // again for its hash): not only block 0 and the last 1000 blocks.
    let walked = &asked[1..=(p.height + 1) as usize];
    let all: Vec<u64> = (0..=p.height).collect();
    assert!(
        walked == all.as_slice(),
        "walked {} heights, first gap after {:?}",
        walked.len(),
        walked.windows(2).find(|w| w[1] != w[0] + 1)
    );
    // Undecodable blocks fail the walk, naming the first.
    let decode = ev
        .iter()
        .find(|e| e.case.starts_with("every block decodes"))
        .unwrap();
    assert!(
        !decode.pass && decode.detail.starts_with("block 1:"),
        "{decode:?}"
    );
    assert_eq!(
        *p.progress.borrow(),
        vec![
            format!("node-ledger-chain: walking blocks 0..={}", p.height),
            format!("node-ledger-chain: block 10000 of {}", p.height),
            format!("node-ledger-chain: block 20000 of {}", p.height),
        ]
    );
}

#[test]
fn writing_checks_need_allow_writes_and_a_test_chain_genesis_file() {
    let no_flag = Ledger::new(true, false, false);
    let o = revocation_check().execute(&no_flag);
    assert_eq!(
        o.not_run.as_deref(),
        Some("not run: --allow-writes not given")
    );
    // The genesis file the auditor gives says production: refused though the flag is set.
    let production = Ledger::new(false, true, false);
    let o = revocation_check().execute(&production);
    assert!(
        o.not_run
            .as_deref()
            .unwrap()
            .contains("the genesis file does not mark a test chain"),
        "{o:?}"
    );
    assert!(!o.pass && o.evidence.is_empty());
    // A test genesis file for another chain than the node's licenses nothing.
    let mut other = Ledger::new(true, true, false);
    other.genesis_hash = vec![9; 32];
    let o = revocation_check().execute(&other);
    assert!(
        o.not_run
            .as_deref()
            .unwrap()
            .contains("is not the test chain"),
        "{o:?}"
    );
    for p in [&no_flag, &production, &other] {
        assert_eq!(*p.submits.borrow(), 0, "a refused writing check wrote");
    }
    // In a run, the clause that needs it is NOT MET with the reason, not a failed run.
    let stds = crate::load_standards().unwrap();
    let r = crate::run(&stds, crate::Provenance::default(), None, Some(&production));
    let c87 = r
        .standards
        .iter()
        .find(|s| s.id.starts_with("GM/T 0111"))
        .unwrap()
        .clauses
        .iter()
        .find(|c| c.id == "8.7")
        .unwrap();
    assert_eq!(c87.verdict, crate::Verdict::NotMet);
    assert!(
        c87.cause.as_deref().unwrap().contains("test chain"),
        "{c87:?}"
    );
    assert!(
        !r.summary
            .mandatory_failed
            .iter()
            .any(|c| c.ends_with(" 8.7"))
    );
}

#[test]
fn revocation_live_passes_against_a_node_that_enforces_revocation() {
    let p = Ledger::new(true, true, false);
    let o = revocation_check().execute(&p);
    assert!(o.not_run.is_none());
    assert!(o.pass, "{:#?}", o.evidence);
    let all = serde_json::to_string(&o.evidence).unwrap();
    for code in ["CERT_EXPIRED", "TX_SIGNER_SUSPENDED", "TX_SIGNER_REVOKED"] {
        assert!(all.contains(code), "{code}: {all}");
    }
    // The recorded CRL now lists a throwaway serial, numbered after the genesis CRL.
    let crl = p.crl.borrow();
    assert_eq!(crl.number(), 2);
    assert_eq!(crl.revoked().len(), 1);
    assert!(
        p.suspended.borrow().is_empty(),
        "the suspension was not cleaned up"
    );
}

#[test]
fn revocation_live_fails_when_the_node_accepts_a_revoked_signer() {
    let p = Ledger::new(true, true, true);
    let o = revocation_check().execute(&p);
    assert!(!o.pass);
    let revoked = o
        .evidence
        .iter()
        .find(|e| e.case.contains("TX_SIGNER_REVOKED"))
        .unwrap();
    assert!(
        !revoked.pass && revoked.detail.contains("ACCEPTED"),
        "{revoked:?}"
    );
    // Only that case fails.
    assert_eq!(
        o.evidence.iter().filter(|e| !e.pass).count(),
        1,
        "{:#?}",
        o.evidence
    );
    let stds = crate::load_standards().unwrap();
    let r = crate::run(&stds, crate::Provenance::default(), None, Some(&p));
    assert!(
        r.summary
            .mandatory_failed
            .contains(&"GM/T 0111-2021 8.7".to_string()),
        "{:?}",
        r.summary.mandatory_failed
    );
}

#[test]
fn the_altered_document_case_passes_only_on_a_document_mismatch() {
    // The fake node's receipts carry made-up proofs and seal: every one fails to verify, for
    // another reason than the document. The altered-document case wants that refusal's kind
    // (RECEIPT_DOCUMENT_MISMATCH), not any refusal; the altered-header case wants any refusal.
    let p = Ledger::new(true, false, false);
    let ev = super::attestation::attestation_proof(&p);
    let doc = ev
        .iter()
        .find(|e| e.case.contains("a document with one byte altered"))
        .unwrap();
    assert!(
        !doc.pass
            && doc
                .detail
                .starts_with("refused for another reason: RECEIPT_")
            && !doc.detail.contains("RECEIPT_DOCUMENT_MISMATCH"),
        "{doc:?}"
    );
    let header = ev
        .iter()
        .find(|e| e.case.contains("header has one byte altered"))
        .unwrap();
    assert!(
        header.pass && header.detail.starts_with("RECEIPT_"),
        "{header:?}"
    );
    assert!(
        ev.iter().all(|e| !e.detail.contains('\n')),
        "a why line spans lines: {ev:#?}"
    );
}
