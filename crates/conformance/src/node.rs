//! Checks that run against a live node (GM/T 0111 §8.3-8.5, the platform standard's storage
//! layer and 数据存证). This crate opens no socket: the binary implements [`NodeProbe`] over the
//! node's gRPC API and passes it in; without one, these checks are reported as not run.
//!
//! Everything the node returns is re-checked here from the bytes: ids and block hashes are
//! recomputed with the independent reference of `ledger_ref`, signatures are verified with the
//! certificates of the identity and of the genesis file, receipts offline with `receipt`.
//! Most checks write to the chain only a few small attestation records signed by the identity
//! under test (kind `document`, metadata naming the conformance check). Checks that write more
//! or change identities (`node-revocation-live` suspends, resumes and revokes throwaway
//! certificates) run only when the auditor allows writes (`--allow-writes`) and the genesis
//! file the auditor gives marks a test chain whose block 0 is the node's; otherwise they are
//! reported as not run with the reason, so an auditor's run never writes to a production chain.

use crate::checks::{CheckOutcome, Evidence};
use crate::ledger_ref;
use crypto::{Digest, RandomSource, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::{
    Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime, Validity,
};
use serde::Serialize;
use std::sync::Arc;
use types::{
    Block, BlockSeal, Call, ChainId, Decode, Encode, Height, Limits, Receipt, Sender, SignedTx,
    Status, Transaction,
};

/// What was tested: recorded in the report's provenance.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeIdentity {
    /// The node's gRPC address.
    pub url: String,
    /// The chain id and version the node reported.
    pub chain_id: String,
    pub version: String,
    /// The genesis file the checks trusted, and the SM3 of its bytes.
    pub genesis_file: String,
    pub genesis_file_sm3: String,
    /// The subject of the identity whose key signed the test transactions.
    pub sender: String,
    /// Where that key lives ("key file" or "pkcs11 token").
    pub sender_key: String,
}

/// The node's status (GetStatus).
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub chain_id: String,
    pub height: u64,
    pub tip_hash: Vec<u8>,
    /// The hash of the node's block 0.
    pub genesis_hash: Vec<u8>,
    pub expiry_window: u64,
    pub version: String,
}

/// What the node did with a submitted transaction (always submitted with wait-for-commit).
#[derive(Debug, Clone)]
pub enum Submission {
    /// In a synced block.
    Committed {
        tx_id: Vec<u8>,
        height: u64,
        position: u32,
        /// Canonical `Receipt`.
        receipt: Vec<u8>,
    },
    /// Accepted but not reported committed.
    NotCommitted { tx_id: Vec<u8> },
    /// Refused with a stable code (`TX_SIGNATURE_INVALID`) and its message.
    Refused { code: String, message: String },
}

/// A block and its seal as the node returned them (canonical encodings; the seal is empty
/// for block 0).
#[derive(Debug, Clone)]
pub struct BlockBytes {
    pub block: Vec<u8>,
    pub seal: Vec<u8>,
}

/// A committed transaction and where it is.
#[derive(Debug, Clone)]
pub struct TxAt {
    pub signed_tx: Vec<u8>,
    pub height: u64,
    pub position: u32,
}

/// An identity other than the one under test that a writing check may use: a certificate (DER)
/// and its key.
#[derive(Clone, Copy)]
pub struct Party<'a> {
    pub cert: &'a [u8],
    pub signer: &'a dyn Signer,
}

impl std::fmt::Debug for Party<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Party({} bytes of certificate)", self.cert.len())
    }
}

/// A live node and an identity that may send to it, as the conformance checks see them.
/// Every call that reaches the node is a real call.
pub trait NodeProbe {
    /// Whether the auditor allowed the checks that write more than a few small transactions
    /// or change identities (`--allow-writes`). They run only if the genesis file also marks a
    /// test chain.
    fn allow_writes(&self) -> bool;
    /// An admin of the identity's organisation (`--admin-key/--admin-cert`), if given.
    fn admin(&self) -> Option<Party<'_>>;
    /// The identity's organisation's CA (`--ca-key/--ca-cert`), if given.
    fn ca(&self) -> Option<Party<'_>>;
    /// Reports the progress of a long check (the whole-chain walk) to the auditor.
    fn progress(&self, message: &str);
    /// Identifies the node, the genesis file and the identity.
    fn identity(&self) -> NodeIdentity;
    /// The genesis file the auditor trusts (JSON), read by the binary.
    fn genesis_json(&self) -> &[u8];
    /// The identity's certificate (DER).
    fn certificate(&self) -> &[u8];
    /// The identity's key (a file key or a token handle).
    fn signer(&self) -> &dyn Signer;
    /// Randomness for salts, documents and throwaway keys.
    fn random(&self) -> &dyn RandomSource;
    /// The current time (Unix seconds), for the validity of throwaway certificates.
    fn now_unix(&self) -> u64;
    /// GetStatus.
    fn status(&self) -> Result<NodeStatus, String>;
    /// SubmitTransaction with wait-for-commit. `Err` only for transport failures or an answer
    /// that is neither a commit nor a coded refusal.
    fn submit(&self, signed_tx: &[u8]) -> Result<Submission, String>;
    /// GetTransaction; `Ok(None)` when the node says it is not committed.
    fn transaction(&self, tx_id: &[u8; 32]) -> Result<Option<TxAt>, String>;
    /// GetBlock at a height.
    fn block(&self, height: u64) -> Result<BlockBytes, String>;
    /// GetReceiptProof: the offline receipt file (JSON).
    fn receipt_json(&self, tx_id: &[u8; 32]) -> Result<String, String>;
}

/// A check against a live node.
#[derive(Debug, Clone, Copy)]
pub struct NodeCheck {
    pub id: &'static str,
    pub title: &'static str,
    /// What the check needs beyond a node and an identity.
    pub needs: Needs,
    pub run: fn(&dyn NodeProbe) -> Vec<Evidence>,
}

/// What a node check needs beyond a node and an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: it writes at most a few small attestation records.
    Node,
    /// `--allow-writes` on a test chain, an admin and the CA of the identity's organisation:
    /// it issues throwaway certificates, suspends and revokes them.
    WritesAdminCa,
}

/// How often (in blocks) `node-ledger-chain` reports its progress on a long chain.
pub const LEDGER_PROGRESS_EVERY: u64 = 10_000;

impl NodeCheck {
    /// Runs the check against `p`, or reports it not run with the reason when it needs what
    /// the auditor did not give (see [`write_refusal`]).
    pub fn execute(&self, p: &dyn NodeProbe) -> CheckOutcome {
        let refusal = match self.needs {
            Needs::Node => None,
            Needs::WritesAdminCa => write_refusal(p).or_else(|| {
                (p.admin().is_none() || p.ca().is_none()).then(|| {
                    "not run: needs an admin and the CA of the identity's organisation (--admin-key/--admin-cert and --ca-key/--ca-cert)".to_string()
                })
            }),
        };
        match refusal {
            Some(why) => CheckOutcome {
                id: self.id.to_string(),
                title: self.title.to_string(),
                pass: false,
                cases: 0,
                evidence: Vec::new(),
                not_run: Some(why),
            },
            None => CheckOutcome::from_evidence(self.id, self.title, (self.run)(p)),
        }
    }
}

/// Why a writing check may not run against `p`, or `None` when it may: the auditor gave
/// `--allow-writes`, the genesis file the auditor gave marks `test_chain = true`, and the node's
/// chain id and block 0 are that file's (so a test genesis file cannot license writes to
/// another chain). Read from the auditor's file, never from the node.
pub fn write_refusal(p: &dyn NodeProbe) -> Option<String> {
    if !p.allow_writes() {
        return Some("not run: --allow-writes not given".into());
    }
    let (g, block0) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return Some(format!("not run: writes refused: {e}")),
    };
    if !g.test_chain {
        return Some("not run: the genesis file does not mark a test chain: an auditor's run never writes to a production chain".into());
    }
    match p.status() {
        Err(e) => Some(format!("not run: writes refused: status: {e}")),
        Ok(st)
            if st.chain_id != g.chain_id.as_str()
                || st.genesis_hash != block0.header.hash().as_bytes() =>
        {
            Some(format!(
                "not run: writes refused: the node's chain {:?} (block 0 {}) is not the test chain of the genesis file ({:?}, block 0 {})",
                st.chain_id,
                hex32(&st.genesis_hash),
                g.chain_id.as_str(),
                block0.header.hash()
            ))
        }
        Ok(_) => None,
    }
}

/// Every node check in this build.
pub fn node_checks() -> &'static [NodeCheck] {
    &[
        NodeCheck {
            id: "node-tx-signed-sm2",
            title: "A transaction the identity signs is committed; in its block it verifies with the certificate's SM2 key and its id is SM3 over its encoding",
            needs: Needs::Node,
            run: tx_signed_sm2,
        },
        NodeCheck {
            id: "node-replay-refused",
            title: "The node refuses a resubmitted transaction (TX_DUPLICATE) and an expired one (TX_EXPIRED), committing nothing",
            needs: Needs::Node,
            run: replay_refused,
        },
        NodeCheck {
            id: "node-verify-before-commit",
            title: "The node refuses bad signatures, untrusted certificates, other chains, garbage, unknown calls and unpermitted calls with their codes, committing nothing",
            needs: Needs::Node,
            run: verify_before_commit,
        },
        NodeCheck {
            id: "node-ledger-chain",
            title: "Blocks from the genesis file's block 0 to the tip: hash links, transaction roots and counts, and every seal by a genesis validator",
            needs: Needs::Node,
            run: ledger_chain,
        },
        NodeCheck {
            id: "node-attestation-proof",
            title: "An anchored document's receipt verifies offline against the genesis file; an altered document or header does not",
            needs: Needs::Node,
            run: attestation_proof,
        },
        NodeCheck {
            id: "node-revocation-live",
            title: "Throwaway signers of the identity's organisation are refused by the node: an expired one (TX_CERT_INVALID, CERT_EXPIRED), a suspended one after it committed (TX_SIGNER_SUSPENDED), a revoked one after the CA's next CRL is recorded (TX_SIGNER_REVOKED), while the identity still commits",
            needs: Needs::WritesAdminCa,
            run: revocation_live,
        },
    ]
}

const SRC_TX: &str = "live node; expected: docs/formats.md §4-5 (SM3 ids, SM2 over the id)";
const SRC_CODES: &str = "live node; expected: docs/execution.md refusal codes";
const SRC_LEDGER: &str = "live node; expected: docs/formats.md §3-6 and the genesis file";
const SRC_RECEIPT: &str = "live node; expected: docs/receipts.md, verified offline";
const SRC_REVOKE: &str = "live node; expected: docs/execution.md refusal codes, identity contract (suspend, resume, update_crl)";

type Case = Result<String, String>;

fn ev(case: &str, source: &str, r: Case) -> Evidence {
    let pass = r.is_ok();
    Evidence {
        case: case.to_string(),
        source: source.to_string(),
        pass,
        detail: match r {
            Ok(note) | Err(note) => note,
        },
    }
}

fn random<const N: usize>(p: &dyn NodeProbe) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    p.random()
        .fill(&mut b)
        .map_err(|e| format!("randomness: {e}"))?;
    Ok(b)
}

fn anchor(digest: &Digest, metadata: &str) -> Call {
    Call {
        contract: "attestation".into(),
        method: "anchor".into(),
        args: vec![
            digest.as_bytes().to_vec(),
            b"document".to_vec(),
            metadata.as_bytes().to_vec(),
            Vec::new(),
        ],
    }
}

/// A transaction from the identity for the node's chain, expiring at the end of the window.
fn body(p: &dyn NodeProbe, st: &NodeStatus, call: Call) -> Result<Transaction, String> {
    Ok(Transaction {
        chain_id: ChainId::new(&st.chain_id)
            .map_err(|e| format!("node reports chain id {:?}: {e}", st.chain_id))?,
        salt: random(p)?,
        expiry: Height(st.height.saturating_add(st.expiry_window.max(1))),
        sender: Sender::Certificate(p.certificate().to_vec()),
        call,
    })
}

fn sign(p: &dyn NodeProbe, tx: Transaction) -> Result<SignedTx, String> {
    SignedTx::sign(tx, p.signer(), &UserId::default()).map_err(|e| format!("signing: {e}"))
}

fn hex32(b: &[u8]) -> String {
    hex::encode(b)
}

/// A committed transaction: its id, height, position and decoded receipt.
struct Committed {
    id: [u8; 32],
    height: u64,
    position: u32,
    receipt: Receipt,
    signed: SignedTx,
}

/// Anchors a fresh random digest signed by the identity and waits for the commit.
fn commit_anchor(p: &dyn NodeProbe, metadata: &str) -> Result<(Committed, Vec<u8>), String> {
    let st = p.status()?;
    let doc: [u8; 32] = random(p)?;
    let signed = sign(
        p,
        body(p, &st, anchor(&crypto_sm::sm3::sm3(&doc), metadata))?,
    )?;
    commit(p, signed).map(|c| (c, doc.to_vec()))
}

fn commit(p: &dyn NodeProbe, signed: SignedTx) -> Result<Committed, String> {
    match p.submit(&signed.to_bytes())? {
        Submission::Committed {
            tx_id,
            height,
            position,
            receipt,
        } => {
            let receipt = Receipt::from_bytes(&receipt, &Limits::default())
                .map_err(|e| format!("unreadable receipt: {e}"))?;
            if let Status::Failed { code, message } = &receipt.status {
                return Err(format!(
                    "committed at height {height} but failed: {code}: {message}"
                ));
            }
            let id: [u8; 32] = tx_id
                .as_slice()
                .try_into()
                .map_err(|_| format!("the node returned a {}-byte id", tx_id.len()))?;
            Ok(Committed {
                id,
                height,
                position,
                receipt,
                signed,
            })
        }
        Submission::NotCommitted { .. } => Err("admitted but not reported committed".into()),
        Submission::Refused { code, message } => Err(format!("refused: {code}: {message}")),
    }
}

/// Submits `bytes` and expects the refusal `code`.
fn refused(p: &dyn NodeProbe, bytes: &[u8], code: &str) -> Case {
    match p.submit(bytes)? {
        Submission::Refused { code: c, message } if c == code => Ok(if message.starts_with(&c) {
            message
        } else {
            format!("{c}: {message}")
        }),
        Submission::Refused { code: c, message } => {
            Err(format!("refused with {c} ({message}), expected {code}"))
        }
        Submission::Committed { height, .. } => Err(format!(
            "ACCEPTED and committed at height {height}; expected {code}"
        )),
        Submission::NotCommitted { .. } => Err(format!("ACCEPTED; expected {code}")),
    }
}

/// No refused transaction is committed: the node does not know them, and no block committed
/// while they were submitted holds them.
fn none_committed(p: &dyn NodeProbe, ids: &[[u8; 32]], before: u64) -> Case {
    if ids.is_empty() {
        return Err("no refused transaction to look for".into());
    }
    for id in ids {
        if let Some(at) = p.transaction(id)? {
            return Err(format!(
                "transaction {} is committed at height {}",
                hex32(id),
                at.height
            ));
        }
    }
    let after = p.status()?.height;
    for h in before.saturating_add(1)..=after {
        let b = p.block(h)?;
        let block = Block::from_bytes(&b.block, &Limits::default())
            .map_err(|e| format!("block {h}: {e}"))?;
        if let Some(t) = block.txs.iter().find(|t| ids.contains(&t.tx_id().0.0)) {
            return Err(format!("block {h} holds refused transaction {}", t.tx_id()));
        }
    }
    Ok(format!(
        "{} transactions unknown to GetTransaction; height {before} before, {after} after{}",
        ids.len(),
        if after > before {
            " (blocks in between hold none of them)"
        } else {
            ""
        }
    ))
}

fn tx_signed_sm2(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let cert = match Certificate::from_der(p.certificate()) {
        Ok(c) => c,
        Err(e) => return vec![ev("the identity's certificate", SRC_TX, Err(e.to_string()))],
    };
    let pk = cert.public_key();
    let c = match commit_anchor(p, "gmchain conformance node-tx-signed-sm2 (GM/T 0111 8.3)") {
        Ok((c, _)) => c,
        Err(e) => {
            return vec![ev(
                "a signed attestation anchor is committed",
                SRC_TX,
                Err(e),
            )];
        }
    };
    out.push(ev(
        "a signed attestation anchor is committed with a successful receipt for it",
        SRC_TX,
        if c.receipt.tx_id.0.0 == c.id {
            Ok(format!(
                "tx {} at height {} position {} signed by {}",
                hex32(&c.id),
                c.height,
                c.position,
                cert.subject()
            ))
        } else {
            Err(format!("the receipt is for {}", c.receipt.tx_id))
        },
    ));
    let independent = ledger_ref::tx_id(&c.signed.tx);
    out.push(ev(
        "the node's id is SM3(\"GMCHAIN-TX-V1\\0\" ‖ encoding), recomputed independently",
        SRC_TX,
        if independent == c.id {
            Ok(hex32(&independent))
        } else {
            Err(format!(
                "node {} != recomputed {}",
                hex32(&c.id),
                hex32(&independent)
            ))
        },
    ));
    let in_block = p.block(c.height).and_then(|b| {
        let block = Block::from_bytes(&b.block, &Limits::default())
            .map_err(|e| format!("block {}: {e}", c.height))?;
        block
            .txs
            .get(c.position as usize)
            .cloned()
            .ok_or_else(|| format!("block {} has no position {}", c.height, c.position))
    });
    let stored = match in_block {
        Ok(t) => t,
        Err(e) => {
            out.push(ev(
                "the committed block holds the transaction",
                SRC_TX,
                Err(e),
            ));
            return out;
        }
    };
    out.push(ev(
        "the block holds the transaction byte for byte at its position, and GetTransaction agrees",
        SRC_TX,
        if stored.to_bytes() != c.signed.to_bytes() {
            Err("the stored transaction differs from the one submitted".into())
        } else {
            match p.transaction(&c.id) {
                Ok(Some(at))
                    if at.height == c.height
                        && at.position == c.position
                        && at.signed_tx == stored.to_bytes() =>
                {
                    Ok(format!("block {} position {}", c.height, c.position))
                }
                Ok(Some(at)) => Err(format!(
                    "GetTransaction says height {} position {}",
                    at.height, at.position
                )),
                Ok(None) => Err("GetTransaction does not know it".into()),
                Err(e) => Err(e),
            }
        },
    ));
    out.push(ev(
        "the stored transaction names the certificate and its SM2 signature verifies with the certificate's key (GB/T 32918.2 §7.1)",
        SRC_TX,
        if stored.tx.sender != Sender::Certificate(p.certificate().to_vec()) {
            Err("the stored sender is not the identity's certificate".into())
        } else {
            crypto_sm::sm2::verify(
                &pk,
                &stored.signer_user_id,
                &ledger_ref::tx_id(&stored.tx),
                &stored.signature,
            )
            .map(|()| format!("user ID {:?}", String::from_utf8_lossy(stored.signer_user_id.as_bytes())))
            .map_err(|e| e.to_string())
        },
    ));
    let other_id = UserId::new(b"8765432187654321".to_vec()).unwrap_or_default();
    out.push(ev(
        "NEG: the stored signature does not verify under another user ID or another key",
        SRC_TX,
        if crypto_sm::sm2::verify(&pk, &other_id, &independent, &stored.signature).is_ok() {
            Err("verifies under another user ID".into())
        } else {
            match PrivateKey::from_bytes(&[0x5b; 32]) {
                Ok(k)
                    if crypto_sm::sm2::verify(
                        &k.public_key(),
                        &stored.signer_user_id,
                        &independent,
                        &stored.signature,
                    )
                    .is_ok() =>
                {
                    Err("verifies with another key".into())
                }
                Ok(_) => Ok("both refused".into()),
                Err(e) => Err(e.to_string()),
            }
        },
    ));
    out
}

fn replay_refused(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (c, _) = match commit_anchor(p, "gmchain conformance node-replay-refused (GM/T 0111 8.3)") {
        Ok(c) => c,
        Err(e) => return vec![ev("a first transaction is committed", SRC_CODES, Err(e))],
    };
    out.push(ev(
        "a first transaction is committed",
        SRC_CODES,
        Ok(format!("tx {} at height {}", hex32(&c.id), c.height)),
    ));
    let st = match p.status() {
        Ok(s) => s,
        Err(e) => {
            out.push(ev("status", SRC_CODES, Err(e)));
            return out;
        }
    };
    let before = st.height;
    out.push(ev(
        "resubmitting the same bytes is refused TX_DUPLICATE and leaves the original where it was",
        SRC_CODES,
        refused(p, &c.signed.to_bytes(), "TX_DUPLICATE").and_then(|note| {
            match p.transaction(&c.id)? {
                Some(at) if at.height == c.height && at.position == c.position => Ok(note),
                Some(at) => Err(format!("the original moved to height {}", at.height)),
                None => Err("the original is no longer found".into()),
            }
        }),
    ));
    let mut ids = Vec::new();
    let mut expiring = |label: &str, expiry: u64, code: &str| -> Evidence {
        let r = (|| {
            let mut tx = body(
                p,
                &st,
                anchor(
                    &crypto_sm::sm3::sm3(&random::<32>(p)?),
                    "gmchain conformance: must be refused",
                ),
            )?;
            tx.expiry = Height(expiry);
            let s = sign(p, tx)?;
            ids.push(s.tx_id().0.0);
            refused(p, &s.to_bytes(), code)
        })();
        ev(label, SRC_CODES, r)
    };
    out.push(expiring(
        &format!("a transaction expiring at the tip height {before} is refused TX_EXPIRED"),
        before,
        "TX_EXPIRED",
    ));
    out.push(expiring(
        "a transaction expiring at height 0 is refused TX_EXPIRED",
        0,
        "TX_EXPIRED",
    ));
    out.push(expiring(
        "a transaction expiring beyond the window is refused TX_EXPIRY_TOO_FAR",
        before.saturating_add(st.expiry_window).saturating_add(1000),
        "TX_EXPIRY_TOO_FAR",
    ));
    out.push(ev(
        "nothing refused was committed",
        SRC_CODES,
        none_committed(p, &ids, before),
    ));
    out
}

/// A software key from the probe's randomness, for identities the chain must not trust.
fn throwaway_signer(p: &dyn NodeProbe) -> Result<SoftSigner, String> {
    for _ in 0..8 {
        let d: [u8; 32] = random(p)?;
        if let Ok(k) = PrivateKey::from_bytes(&d) {
            let seed = u64::from_be_bytes(random(p)?);
            return Ok(SoftwareProvider::new(Arc::new(SeededRandom::new(seed))).signer(k));
        }
    }
    Err("no valid private key from the randomness".into())
}

/// A self-signed CA the chain has never seen, and a user certificate it issued.
fn outsider(
    p: &dyn NodeProbe,
) -> Result<(SoftSigner, Certificate, SoftSigner, Certificate), String> {
    let now = p.now_unix();
    let validity = Validity {
        not_before: UnixTime(now.saturating_sub(3600)),
        not_after: UnixTime(now.saturating_add(86_400)),
    };
    let e = |e: pki::PkiError| e.to_string();
    let root_key = throwaway_signer(p)?;
    let root = pki::issue_root(
        "Conformance Outsider CA",
        "Conformance Outsider",
        Serial::random(p.random()).map_err(e)?,
        validity,
        &root_key,
    )
    .map_err(e)?;
    let leaf_key = throwaway_signer(p)?;
    let leaf = pki::issue(
        &root,
        &root_key,
        &IssueRequest {
            role: Role::User,
            common_name: "conformance-outsider",
            organisation: "Conformance Outsider",
            public_key: &leaf_key.public_key(),
            serial: Serial::random(p.random()).map_err(e)?,
            validity,
        },
    )
    .map_err(e)?;
    Ok((root_key, root, leaf_key, leaf))
}

fn verify_before_commit(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let st = match p.status() {
        Ok(s) => s,
        Err(e) => return vec![ev("status", SRC_CODES, Err(e))],
    };
    let before = st.height;
    let mut ids: Vec<[u8; 32]> = Vec::new();
    let fresh = |meta: &str| -> Result<Transaction, String> {
        body(
            p,
            &st,
            anchor(&crypto_sm::sm3::sm3(&random::<32>(p)?), meta),
        )
    };
    const META: &str = "gmchain conformance: must be refused";

    // Signature made over another transaction's id.
    let mut case = |label: &str, code: &str, make: &dyn Fn() -> Result<SignedTx, String>| {
        let r = make().and_then(|s| {
            ids.push(s.tx_id().0.0);
            refused(p, &s.to_bytes(), code)
        });
        out.push(ev(label, SRC_CODES, r));
    };
    case(
        "a signature over another transaction's id is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let tx = fresh(META)?;
            let other = sign(p, fresh(META)?)?;
            Ok(SignedTx {
                tx,
                signature: other.signature,
                signer_user_id: UserId::default(),
            })
        },
    );
    case(
        "a signature made under another user ID than the one declared is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let tx = fresh(META)?;
            let other_id = UserId::new(b"8765432187654321".to_vec()).map_err(|e| e.to_string())?;
            let signature = p
                .signer()
                .sign(&other_id, &ledger_ref::tx_id(&tx))
                .map_err(|e| e.to_string())?;
            Ok(SignedTx {
                tx,
                signature,
                signer_user_id: UserId::default(),
            })
        },
    );
    case(
        "a body altered after signing (salt) is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let mut s = sign(p, fresh(META)?)?;
            s.tx.salt[0] ^= 0x01;
            Ok(s)
        },
    );
    case(
        "a user certificate from a self-signed CA the chain does not trust is refused TX_CERT_INVALID",
        "TX_CERT_INVALID",
        &|| {
            let (_, _, leaf_key, leaf) = outsider(p)?;
            let mut tx = fresh(META)?;
            tx.sender = Sender::Certificate(leaf.der().to_vec());
            SignedTx::sign(tx, &leaf_key, &UserId::default()).map_err(|e| e.to_string())
        },
    );
    case(
        "a self-signed certificate as the sender is refused TX_CERT_INVALID",
        "TX_CERT_INVALID",
        &|| {
            let (root_key, root, _, _) = outsider(p)?;
            let mut tx = fresh(META)?;
            tx.sender = Sender::Certificate(root.der().to_vec());
            SignedTx::sign(tx, &root_key, &UserId::default()).map_err(|e| e.to_string())
        },
    );
    case(
        "a transaction for another chain id is refused TX_WRONG_CHAIN",
        "TX_WRONG_CHAIN",
        &|| {
            let mut tx = fresh(META)?;
            let other = format!("{}-conformance-other", st.chain_id);
            tx.chain_id =
                ChainId::new(other.get(..64).unwrap_or(&other)).map_err(|e| e.to_string())?;
            sign(p, tx)
        },
    );
    case(
        "an unknown method is refused TX_UNKNOWN_CALL",
        "TX_UNKNOWN_CALL",
        &|| {
            let mut tx = fresh(META)?;
            tx.call.method = "conformance_no_such_method".into();
            sign(p, tx)
        },
    );
    let role = Certificate::from_der(p.certificate())
        .ok()
        .and_then(|c| c.role());
    if role == Some(Role::User) {
        case(
            "a user calling identity.suspend (admins only) is refused TX_PERMISSION_DENIED",
            "TX_PERMISSION_DENIED",
            &|| {
                let mut tx = fresh(META)?;
                tx.call = Call {
                    contract: "identity".into(),
                    method: "suspend".into(),
                    // A hash that names no certificate: were the refusal (the fault this case
                    // looks for) missing, execution would change nothing (found in review: the
                    // suite's own certificate was named, so a faulty node would suspend it).
                    args: vec![
                        crypto_sm::sm3::sm3(b"gmchain conformance: no such certificate")
                            .0
                            .to_vec(),
                    ],
                };
                sign(p, tx)
            },
        );
    } else {
        // Never sent with an admin identity: it would suspend a certificate.
        out.push(ev(
            "a user calling identity.suspend (admins only) is refused TX_PERMISSION_DENIED",
            SRC_CODES,
            Err(format!(
                "not exercised: the identity's role is {role:?}; run the suite with a role-user identity"
            )),
        ));
    }
    // Bytes that are no transaction: nothing to look up by id afterwards.
    let garbage = random::<96>(p);
    out.push(ev(
        "random bytes are refused TX_MALFORMED",
        SRC_CODES,
        garbage.and_then(|g| refused(p, &g, "TX_MALFORMED")),
    ));
    let trailing = fresh(META).and_then(|tx| sign(p, tx)).and_then(|s| {
        ids.push(s.tx_id().0.0);
        let mut b = s.to_bytes();
        b.push(0);
        refused(p, &b, "TX_MALFORMED")
    });
    out.push(ev(
        "a signed transaction with one trailing byte is refused TX_MALFORMED",
        SRC_CODES,
        trailing,
    ));
    out.push(ev(
        "nothing refused was committed",
        SRC_CODES,
        none_committed(p, &ids, before),
    ));
    out
}

/// The genesis file and its block 0, for the offline checks.
fn genesis(p: &dyn NodeProbe) -> Result<(execution::Genesis, Block), String> {
    let g = execution::Genesis::from_json(p.genesis_json())
        .map_err(|e| format!("genesis file: {e}"))?;
    let b = g
        .build(&state::MemStore::new())
        .map_err(|e| format!("genesis block: {e}"))?;
    Ok((g, b.block))
}

/// What one pass over the blocks found: the first failure per property.
#[derive(Default)]
struct Walk {
    blocks: u64,
    txs: u64,
    decode: Option<String>,
    chain_id: Option<String>,
    links: Option<String>,
    tx_root: Option<String>,
    tx_count: Option<String>,
    seals: Option<String>,
    tx_sigs: Option<String>,
}

fn first(slot: &mut Option<String>, msg: String) {
    if slot.is_none() {
        *slot = Some(msg);
    }
}

fn ledger_chain(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (g, block0) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return vec![ev("the genesis file", SRC_LEDGER, Err(e))],
    };
    // A chain with no block above 0 has no seal to check: anchor one record first.
    let st = p.status().and_then(|st| {
        if st.height > 0 {
            return Ok(st);
        }
        commit_anchor(p, "gmchain conformance node-ledger-chain (GM/T 0111 8.5)")?;
        p.status()
    });
    let st = match st {
        Ok(s) => s,
        Err(e) => return vec![ev("status", SRC_LEDGER, Err(e))],
    };
    let limits = g.params.limits();
    out.push(ev(
        "the node's chain id and block 0 are the genesis file's",
        SRC_LEDGER,
        if st.chain_id != g.chain_id.as_str() {
            Err(format!(
                "node chain {:?}, genesis file {:?}",
                st.chain_id,
                g.chain_id.as_str()
            ))
        } else if st.genesis_hash != block0.header.hash().as_bytes() {
            Err(format!(
                "node block 0 {}, genesis file gives {}",
                hex32(&st.genesis_hash),
                block0.header.hash()
            ))
        } else {
            p.block(0).and_then(|b| {
                if b.block != block0.to_bytes() {
                    return Err("the node's block 0 differs from the genesis file's".into());
                }
                if !b.seal.is_empty() {
                    return Err("block 0 carries a seal".into());
                }
                Ok(format!(
                    "chain {}, block 0 {}, genesis hash {}",
                    g.chain_id,
                    block0.header.hash(),
                    g.hash()
                ))
            })
        },
    ));

    // Every block from 0 to the tip: on a long chain this is the auditor's cost (one GetBlock
    // per block), reported as it goes.
    let tip = st.height;
    let mut w = Walk::default();
    let mut prev: Option<(u64, [u8; 32])> = None;
    if tip >= LEDGER_PROGRESS_EVERY {
        p.progress(&format!("node-ledger-chain: walking blocks 0..={tip}"));
    }
    for h in 0..=tip {
        if h > 0 && h % LEDGER_PROGRESS_EVERY == 0 {
            p.progress(&format!("node-ledger-chain: block {h} of {tip}"));
        }
        let bytes = match p.block(h) {
            Ok(b) => b,
            Err(e) => {
                first(&mut w.decode, format!("block {h}: {e}"));
                break;
            }
        };
        let block = match Block::from_bytes(&bytes.block, &limits) {
            Ok(b) => b,
            Err(e) => {
                first(&mut w.decode, format!("block {h}: {e}"));
                prev = None;
                continue;
            }
        };
        w.blocks += 1;
        let hd = &block.header;
        if hd.height.0 != h {
            first(
                &mut w.decode,
                format!("block {h} says height {}", hd.height),
            );
        }
        if hd.chain_id != g.chain_id {
            first(
                &mut w.chain_id,
                format!("block {h} is for chain {}", hd.chain_id),
            );
        }
        let hash = ledger_ref::header_hash(hd);
        if hash != hd.hash().0.0 {
            first(
                &mut w.links,
                format!("block {h}: independent header hash differs from BlockHeader::hash"),
            );
        }
        // Parent link: to the recomputed hash of the block below (unless it did not decode).
        if h == 0 {
            if hd.parent.as_bytes() != &[0u8; 32] {
                first(&mut w.links, "block 0 has a parent".into());
            }
        } else if let Some((ph, phash)) = prev.filter(|(ph, _)| ph + 1 == h)
            && hd.parent.as_bytes() != &phash
        {
            first(
                &mut w.links,
                format!(
                    "block {h}: parent {} is not the recomputed hash {} of block {ph}",
                    hd.parent,
                    hex32(&phash),
                ),
            );
        }
        prev = Some((h, hash));
        let entries: Vec<[u8; 32]> = block.txs.iter().map(ledger_ref::entry_hash).collect();
        let root = ledger_ref::merkle_root(&entries);
        if root != hd.tx_root.0 {
            first(
                &mut w.tx_root,
                format!(
                    "block {h}: tx_root {} but its transactions give {}",
                    hd.tx_root,
                    hex32(&root)
                ),
            );
        }
        if hd.tx_count as usize != block.txs.len() {
            first(
                &mut w.tx_count,
                format!(
                    "block {h}: tx_count {} for {} transactions",
                    hd.tx_count,
                    block.txs.len()
                ),
            );
        }
        w.txs += block.txs.len() as u64;
        for t in &block.txs {
            if let Sender::Certificate(der) = &t.tx.sender {
                let ok = Certificate::from_der(der)
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        t.verify_signature(&c.public_key())
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = ok {
                    first(&mut w.tx_sigs, format!("block {h} tx {}: {e}", t.tx_id()));
                }
            }
        }
        if h == 0 {
            continue;
        }
        let seal = match BlockSeal::from_bytes(&bytes.seal, &limits) {
            Ok(s) => s,
            Err(e) => {
                first(&mut w.seals, format!("block {h}: seal: {e}"));
                continue;
            }
        };
        if seal.block_hash.as_bytes() != &hash {
            first(
                &mut w.seals,
                format!("block {h}: the seal covers {}", seal.block_hash),
            );
        } else if seal.signer != hd.proposer {
            first(
                &mut w.seals,
                format!(
                    "block {h}: sealed by {} but proposer is {}",
                    seal.signer, hd.proposer
                ),
            );
        } else {
            match g.validator(&seal.signer) {
                None => first(
                    &mut w.seals,
                    format!(
                        "block {h}: sealed by {}, not a genesis validator",
                        seal.signer
                    ),
                ),
                Some(v) => {
                    if let Err(e) = seal.verify(&v.cert.public_key()) {
                        first(&mut w.seals, format!("block {h}: seal by {}: {e}", v.name));
                    }
                }
            }
        }
    }
    let summary = format!(
        "blocks 0..={tip} (the whole chain): {} blocks, {} transactions",
        w.blocks, w.txs
    );
    let judge = |slot: Option<String>| match slot {
        Some(e) => Err(e),
        None if w.blocks == 0 => Err("no block was read".into()),
        None => Ok(summary.clone()),
    };
    out.push(ev(
        "every block decodes under the genesis limits at its height",
        SRC_LEDGER,
        judge(w.decode.clone()),
    ));
    out.push(ev(
        "every block is for the genesis chain id",
        SRC_LEDGER,
        judge(w.chain_id.clone()),
    ));
    out.push(ev(
        "each parent is the SM3 hash of the block below, recomputed independently",
        SRC_LEDGER,
        judge(w.links.clone()),
    ));
    out.push(ev(
        "each tx_root is the RFC 6962 SM3 Merkle root of its transactions' entry hashes, recomputed independently",
        SRC_LEDGER,
        judge(w.tx_root.clone()),
    ));
    out.push(ev(
        "each tx_count is the number of transactions",
        SRC_LEDGER,
        judge(w.tx_count.clone()),
    ));
    out.push(ev(
        "every block above 0 is sealed over its hash by its proposer, a genesis validator, and the SM2 seal verifies",
        SRC_LEDGER,
        if tip == 0 {
            Err("the chain has no block above 0: no seal to check".into())
        } else {
            judge(w.seals.clone())
        },
    ));
    out.push(ev(
        "every transaction with a certificate sender verifies with that certificate's key",
        SRC_LEDGER,
        judge(w.tx_sigs.clone()),
    ));
    out.push(ev(
        "the tip the node reported is the hash of its tip block",
        SRC_LEDGER,
        p.block(tip).and_then(|b| {
            let block = Block::from_bytes(&b.block, &limits).map_err(|e| e.to_string())?;
            if block.header.hash().as_bytes() == st.tip_hash.as_slice() {
                Ok(format!("tip {} at height {tip}", block.header.hash()))
            } else {
                Err(format!(
                    "status tip {}, block {tip} hashes to {}",
                    hex32(&st.tip_hash),
                    block.header.hash()
                ))
            }
        }),
    ));
    out
}

fn attestation_proof(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (g, _) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return vec![ev("the genesis file", SRC_RECEIPT, Err(e))],
    };
    let consortium = match g.consortium() {
        Ok(c) => c,
        Err(e) => {
            return vec![ev(
                "the genesis file's consortium",
                SRC_RECEIPT,
                Err(e.to_string()),
            )];
        }
    };
    let trust = receipt::TrustContext {
        chain_id: g.chain_id.clone(),
        validators: g.validators.iter().map(|v| v.cert.clone()).collect(),
        consortium,
    };
    let limits = g.params.limits();
    let doc = match random::<48>(p) {
        Ok(r) => {
            let mut d = b"gmchain conformance GZ-6.2 document ".to_vec();
            d.extend_from_slice(hex::encode(r).as_bytes());
            d
        }
        Err(e) => return vec![ev("a random document", SRC_RECEIPT, Err(e))],
    };
    let digest = crypto_sm::sm3::sm3(&doc);
    let committed = p.status().and_then(|st| {
        let s = sign(
            p,
            body(
                p,
                &st,
                anchor(
                    &digest,
                    "gmchain conformance node-attestation-proof (GZ-6.2)",
                ),
            )?,
        )?;
        commit(p, s)
    });
    let c = match committed {
        Ok(c) => c,
        Err(e) => {
            return vec![ev(
                "the document's SM3 digest is anchored and committed",
                SRC_RECEIPT,
                Err(e),
            )];
        }
    };
    out.push(ev(
        "the document's SM3 digest is anchored and committed",
        SRC_RECEIPT,
        Ok(format!(
            "digest {digest} in tx {} at height {}",
            hex32(&c.id),
            c.height
        )),
    ));
    let json = match p.receipt_json(&c.id) {
        Ok(j) => j,
        Err(e) => {
            out.push(ev("the node returns the receipt file", SRC_RECEIPT, Err(e)));
            return out;
        }
    };
    let verify = |json: &[u8], doc: &[u8]| -> Result<receipt::VerifiedReceipt, String> {
        let b = receipt::ReceiptBundle::from_json(json, &limits)
            .map_err(|e| format!("{}: {e}", e.code()))?;
        b.verify(&trust, Some(doc))
            .map_err(|e| format!("{}: {e}", e.code()))
    };
    out.push(ev(
        "the receipt verifies offline against the genesis file and the document (signer chain, SM2 signature, Merkle inclusion, validator seal)",
        SRC_RECEIPT,
        verify(json.as_bytes(), &doc).and_then(|v| {
            if v.tx_id.0.0 != c.id || v.height.0 != c.height {
                return Err(format!("the receipt is for tx {} at height {}", v.tx_id, v.height));
            }
            if v.document_digest != Some(digest) || v.anchored_digest != Some(digest) {
                return Err("the receipt does not anchor the document's digest".into());
            }
            Ok(format!(
                "tx {} at height {} in block {}, signer {} ({}), sealed by {}, time {} ms",
                v.tx_id, v.height, v.block_hash, v.signer_subject, v.organisation, v.validator, v.timestamp_ms
            ))
        }),
    ));
    let mut altered = doc.clone();
    if let Some(b) = altered.last_mut() {
        *b ^= 0x01;
    }
    out.push(ev(
        "NEG: a document with one byte altered is refused RECEIPT_DOCUMENT_MISMATCH",
        SRC_RECEIPT,
        match verify(json.as_bytes(), &altered) {
            Ok(_) => Err("the altered document verified".into()),
            Err(e) if e.starts_with("RECEIPT_DOCUMENT_MISMATCH") => Ok(e),
            Err(e) => Err(format!("refused for another reason: {e}")),
        },
    ));
    out.push(ev(
        "NEG: a receipt whose header has one byte altered (its timestamp) does not verify",
        SRC_RECEIPT,
        alter_header(&json).and_then(|bad| match verify(bad.as_bytes(), &doc) {
            Ok(_) => Err("the altered receipt verified".into()),
            Err(e) => Ok(e),
        }),
    ));
    out
}

/// A fresh transaction from `party` (sender `party.cert`), signed by its key, for the node's
/// current height.
fn signed_as(p: &dyn NodeProbe, party: Party<'_>, call: Call) -> Result<SignedTx, String> {
    let st = p.status()?;
    let mut tx = body(p, &st, call)?;
    tx.sender = Sender::Certificate(party.cert.to_vec());
    SignedTx::sign(tx, party.signer, &UserId::default()).map_err(|e| format!("signing: {e}"))
}

/// A fresh attestation anchor from `party`.
fn anchor_as(p: &dyn NodeProbe, party: Party<'_>, meta: &str) -> Result<SignedTx, String> {
    let doc: [u8; 32] = random(p)?;
    signed_as(p, party, anchor(&crypto_sm::sm3::sm3(&doc), meta))
}

fn identity_call(method: &str, arg: Vec<u8>) -> Call {
    Call {
        contract: "identity".into(),
        method: method.into(),
        args: vec![arg],
    }
}

/// A throwaway user certificate of the CA's organisation, valid over `validity`.
fn throwaway_user(
    p: &dyn NodeProbe,
    ca_cert: &Certificate,
    ca: Party<'_>,
    cn: &str,
    validity: Validity,
) -> Result<(SoftSigner, Certificate), String> {
    let org = ca_cert
        .organisation()
        .ok_or("the CA certificate names no organisation (O)")?;
    let key = throwaway_signer(p)?;
    let cert = pki::issue(
        ca_cert,
        ca.signer,
        &IssueRequest {
            role: Role::User,
            common_name: cn,
            organisation: &org,
            public_key: &key.public_key(),
            serial: Serial::random(p.random()).map_err(|e| e.to_string())?,
            validity,
        },
    )
    .map_err(|e| format!("issuing {cn}: {e}"))?;
    Ok((key, cert))
}

/// Refused with `code`, the message naming `detail` too.
fn refused_naming(p: &dyn NodeProbe, s: &SignedTx, code: &str, detail: &str) -> Case {
    refused(p, &s.to_bytes(), code).and_then(|m| {
        if m.contains(detail) {
            Ok(m)
        } else {
            Err(format!("refused {code} but not for {detail}: {m}"))
        }
    })
}

fn committed_note(c: &Committed) -> String {
    format!("tx {} at height {}", hex32(&c.id), c.height)
}

const META_REVOKE: &str = "gmchain conformance node-revocation-live (GM/T 0111 8.4, 8.7)";

/// The organisation's next CRL: every entry of `recorded` plus `serial`, number + 1,
/// thisUpdate `now` (later than the recorded one), nextUpdate the recorded one's if later,
/// else now + 30 days, signed by the CA key.
fn next_crl(
    recorded: &pki::Crl,
    ca_cert: &Certificate,
    ca: Party<'_>,
    serial: Serial,
    now: u64,
) -> Result<pki::Crl, String> {
    if now <= recorded.this_update().0 {
        return Err(format!(
            "the recorded CRL's thisUpdate {} is not before now ({now}): cannot issue a later one",
            recorded.this_update()
        ));
    }
    let mut entries = recorded.revoked();
    entries.push(RevokedEntry {
        serial,
        revoked_at: UnixTime(now),
        reason: RevocationReason::KeyCompromise,
    });
    let next = recorded
        .next_update()
        .filter(|n| n.0 > now)
        .unwrap_or(UnixTime(now.saturating_add(30 * 86_400)));
    pki::issue_crl(
        ca_cert,
        ca.signer,
        recorded.number().saturating_add(1),
        UnixTime(now),
        next,
        &entries,
    )
    .map_err(|e| format!("issuing the next CRL: {e}"))
}

fn revocation_live(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (Some(admin), Some(ca)) = (p.admin(), p.ca()) else {
        return vec![ev(
            "an admin and the CA of the identity's organisation",
            SRC_REVOKE,
            Err("not given (--admin-key/--admin-cert, --ca-key/--ca-cert)".into()),
        )];
    };
    let parties = (|| {
        let ca_cert = Certificate::from_der(ca.cert).map_err(|e| format!("--ca-cert: {e}"))?;
        let admin_cert =
            Certificate::from_der(admin.cert).map_err(|e| format!("--admin-cert: {e}"))?;
        let id_cert = Certificate::from_der(p.certificate()).map_err(|e| format!("--cert: {e}"))?;
        let org = ca_cert.organisation();
        if admin_cert.role() != Some(Role::Admin) {
            return Err(format!(
                "--admin-cert {} is not an admin",
                admin_cert.subject()
            ));
        }
        if admin_cert.organisation() != org || id_cert.organisation() != org {
            return Err(format!(
                "the CA's organisation {org:?}, the admin's {:?} and the identity's {:?} differ",
                admin_cert.organisation(),
                id_cert.organisation()
            ));
        }
        Ok((ca_cert, id_cert))
    })();
    let (ca_cert, id_cert) = match parties {
        Ok(x) => x,
        Err(e) => return vec![ev("the admin, the CA and the identity", SRC_REVOKE, Err(e))],
    };
    let limits = match genesis(p) {
        Ok((g, _)) => g.params.limits(),
        Err(e) => return vec![ev("the genesis file", SRC_REVOKE, Err(e))],
    };
    let before = match p.status() {
        Ok(s) => s.height,
        Err(e) => return vec![ev("status", SRC_REVOKE, Err(e))],
    };
    let now = p.now_unix();
    let ca_validity = ca_cert.validity();
    let valid_now = Validity {
        not_before: UnixTime(now.saturating_sub(3600).max(ca_validity.not_before.0)),
        not_after: UnixTime(now.saturating_add(86_400).min(ca_validity.not_after.0)),
    };
    let mut refused_ids: Vec<[u8; 32]> = Vec::new();
    let admin_commits = |method: &str, arg: Vec<u8>| -> Result<Committed, String> {
        commit(p, signed_as(p, admin, identity_call(method, arg))?)
    };

    // (a) Expired: a validity entirely in the past, inside the CA's.
    let expired = (|| {
        let not_after = now.saturating_sub(60);
        let not_before = now.saturating_sub(2 * 86_400).max(ca_validity.not_before.0);
        if not_before >= not_after {
            return Err(format!(
                "the CA's validity starts at {}, too recently for a certificate that has already expired",
                ca_validity.not_before
            ));
        }
        let validity = Validity {
            not_before: UnixTime(not_before),
            not_after: UnixTime(not_after),
        };
        let (key, cert) = throwaway_user(p, &ca_cert, ca, "conformance-expired", validity)?;
        let s = anchor_as(
            p,
            Party {
                cert: cert.der(),
                signer: &key,
            },
            META_REVOKE,
        )?;
        refused_ids.push(s.tx_id().0.0);
        refused_naming(p, &s, "TX_CERT_INVALID", "CERT_EXPIRED")
            .map(|m| format!("certificate valid {not_before}..{not_after}: {m}"))
    })();
    out.push(ev(
        "an expired signer (validity entirely in the past) is refused TX_CERT_INVALID naming CERT_EXPIRED",
        SRC_REVOKE,
        expired,
    ));

    // (b) Suspended: commits, is suspended by the admin, is refused, is resumed.
    let suspended = throwaway_user(p, &ca_cert, ca, "conformance-suspended", valid_now);
    match suspended {
        Err(e) => out.push(ev("a throwaway signer to suspend", SRC_REVOKE, Err(e))),
        Ok((key, cert)) => {
            let party = Party {
                cert: cert.der(),
                signer: &key,
            };
            let first = anchor_as(p, party, META_REVOKE).and_then(|s| commit(p, s));
            let ok = first.is_ok();
            out.push(ev(
                "the signer to suspend first commits a transaction",
                SRC_REVOKE,
                first.map(|c| format!("{} by {}", committed_note(&c), cert.subject())),
            ));
            if ok {
                let id = cert.fingerprint().0.to_vec();
                let suspend = admin_commits("suspend", id.clone());
                let ok = suspend.is_ok();
                out.push(ev(
                    "the admin's identity.suspend of that certificate commits",
                    SRC_REVOKE,
                    suspend.map(|c| committed_note(&c)),
                ));
                if ok {
                    out.push(ev(
                        "the suspended signer's next transaction is refused TX_SIGNER_SUSPENDED",
                        SRC_REVOKE,
                        anchor_as(p, party, META_REVOKE).and_then(|s| {
                            refused_ids.push(s.tx_id().0.0);
                            refused(p, &s.to_bytes(), "TX_SIGNER_SUSPENDED")
                        }),
                    ));
                    out.push(ev(
                        "clean-up: the admin's identity.resume of that certificate commits",
                        SRC_REVOKE,
                        admin_commits("resume", id).map(|c| committed_note(&c)),
                    ));
                }
            }
        }
    }

    // (c) Revoked: commits, the organisation's next CRL lists it, is refused; the identity
    // under test still commits.
    match throwaway_user(p, &ca_cert, ca, "conformance-revoked", valid_now) {
        Err(e) => out.push(ev("a throwaway signer to revoke", SRC_REVOKE, Err(e))),
        Ok((key, cert)) => {
            let party = Party {
                cert: cert.der(),
                signer: &key,
            };
            let first = anchor_as(p, party, META_REVOKE).and_then(|s| commit(p, s));
            let first_id = first.as_ref().map(|c| c.id).ok();
            out.push(ev(
                "the signer to revoke first commits a transaction",
                SRC_REVOKE,
                first.map(|c| format!("{} by {}", committed_note(&c), cert.subject())),
            ));
            let recorded = first_id
                .ok_or_else(|| "no committed transaction".to_string())
                .and_then(|id| {
                    let json = p.receipt_json(&id)?;
                    let b = receipt::ReceiptBundle::from_json(json.as_bytes(), &limits)
                        .map_err(|e| format!("its receipt: {}: {e}", e.code()))?;
                    b.crls
                        .into_iter()
                        .find(|c| {
                            c.issuer() == ca_cert.subject()
                                && c.verify_signed_by(&ca_cert.public_key()).is_ok()
                        })
                        .ok_or_else(|| {
                            format!(
                                "its receipt carries no CRL of {} signed by the CA's key",
                                ca_cert.subject()
                            )
                        })
                });
            let crl = recorded.and_then(|r| {
                if r.find(&id_cert.serial()).is_some() {
                    return Err(format!(
                        "the identity under test (serial {}) is already revoked",
                        id_cert.serial()
                    ));
                }
                let crl = next_crl(&r, &ca_cert, ca, cert.serial(), p.now_unix())?;
                Ok((r, crl))
            });
            let update = crl.and_then(|(r, crl)| {
                let note = format!(
                    "CRL number {} → {}, {} → {} entries (adds serial {})",
                    r.number(),
                    crl.number(),
                    r.revoked().len(),
                    crl.revoked().len(),
                    cert.serial()
                );
                admin_commits("update_crl", crl.der().to_vec())
                    .map(|c| format!("{note}: {}", committed_note(&c)))
            });
            let ok = update.is_ok();
            out.push(ev(
                "the organisation's next CRL (the recorded CRL from a receipt, plus the signer's serial) is recorded by the admin's identity.update_crl",
                SRC_REVOKE,
                update,
            ));
            if ok {
                out.push(ev(
                    "the revoked signer's next transaction is refused TX_SIGNER_REVOKED",
                    SRC_REVOKE,
                    anchor_as(p, party, META_REVOKE).and_then(|s| {
                        refused_ids.push(s.tx_id().0.0);
                        refused(p, &s.to_bytes(), "TX_SIGNER_REVOKED")
                    }),
                ));
                out.push(ev(
                    "the identity under test, not in the CRL, still commits",
                    SRC_REVOKE,
                    commit_anchor(p, META_REVOKE).map(|(c, _)| committed_note(&c)),
                ));
            }
        }
    }
    out.push(ev(
        "nothing refused was committed",
        SRC_REVOKE,
        none_committed(p, &refused_ids, before),
    ));
    out
}

/// The receipt file with one byte of the header's timestamp flipped (still a valid header).
fn alter_header(json: &str) -> Result<String, String> {
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let hex_header = v
        .get("header")
        .and_then(|h| h.as_str())
        .ok_or("the receipt has no header field")?;
    let mut header = hex::decode(hex_header).map_err(|e| e.to_string())?;
    // The timestamp's last byte sits before the 32-byte proposer at the end.
    let i = header
        .len()
        .checked_sub(33)
        .ok_or("the header is too short")?;
    header[i] ^= 0x01;
    v["header"] = serde_json::Value::String(hex::encode(header));
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

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
        fn admin(&self) -> Option<Party<'_>> {
            None
        }
        fn ca(&self) -> Option<Party<'_>> {
            None
        }
        fn progress(&self, _: &str) {}
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
        fn status(&self) -> Result<NodeStatus, String> {
            Ok(NodeStatus {
                chain_id: "fake-chain".into(),
                height: self.height.load(Ordering::SeqCst),
                expiry_window: 100,
                ..NodeStatus::default()
            })
        }
        fn submit(&self, signed_tx: &[u8]) -> Result<Submission, String> {
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
                    tx_id: id,
                    status: Status::Success,
                    events: Vec::new(),
                }
                .to_bytes(),
            })
        }
        fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, String> {
            Ok(None)
        }
        fn block(&self, height: u64) -> Result<BlockBytes, String> {
            Err(format!("no block {height}"))
        }
        fn receipt_json(&self, _: &[u8; 32]) -> Result<String, String> {
            Err("no receipts".into())
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

        fn refuse(code: &str, message: String) -> Result<Submission, String> {
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
        fn status(&self) -> Result<NodeStatus, String> {
            Ok(NodeStatus {
                chain_id: "fake-chain".into(),
                height: self.height,
                genesis_hash: self.genesis_hash.clone(),
                expiry_window: 100,
                ..NodeStatus::default()
            })
        }
        fn submit(&self, bytes: &[u8]) -> Result<Submission, String> {
            *self.submits.borrow_mut() += 1;
            let s = SignedTx::from_bytes(bytes, &Limits::default()).map_err(|e| e.to_string())?;
            let Sender::Certificate(der) = &s.tx.sender else {
                return Err("no certificate".into());
            };
            let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
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
                    tx_id: id,
                    status: Status::Success,
                    events: Vec::new(),
                }
                .to_bytes(),
            })
        }
        fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, String> {
            Ok(None)
        }
        /// Block 0 is the genesis file's; every other block is one undecodable byte.
        fn block(&self, height: u64) -> Result<BlockBytes, String> {
            self.asked.borrow_mut().push(height);
            Ok(BlockBytes {
                block: if height == 0 {
                    self.block0.clone()
                } else {
                    vec![0xff]
                },
                seal: Vec::new(),
            })
        }
        fn receipt_json(&self, tx_id: &[u8; 32]) -> Result<String, String> {
            let tx = self
                .committed
                .borrow()
                .get(tx_id)
                .cloned()
                .ok_or("unknown")?;
            let Sender::Certificate(der) = &tx.tx.sender else {
                return Err("no certificate".into());
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
            };
            let bundle = receipt::ReceiptBundle {
                position: 0,
                tx_proof: types::merkle::InclusionProof { path: Vec::new() },
                receipt: Receipt {
                    tx_id: tx.tx_id(),
                    status: Status::Success,
                    events: Vec::new(),
                },
                receipt_proof: types::merkle::InclusionProof { path: Vec::new() },
                seal: BlockSeal {
                    block_hash: header.hash(),
                    signer: Digest([5; 32]),
                    signature: tx.signature,
                },
                header,
                chain: vec![Certificate::from_der(der).unwrap()],
                crls: vec![self.crl.borrow().clone()],
                tx,
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
}
