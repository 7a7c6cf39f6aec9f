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

mod attestation;
mod contracts;
mod determinism;
mod error;
mod ledger;
mod openapi;
mod probe;
mod revocation;
mod submit;
mod tls;
mod transactions;

pub use probe::{
    BlockBytes, ContractInfo, GmSuites, HttpAnswer, NodeIdentity, NodeProbe, NodeStatus, Party,
    ProbeError, ProposalInfo, QueryAnswer, Rpc, Submission, TlsAttempt, TlsObservation, TxAt,
    ValidatorBytes,
};

use crate::checks::{CheckOutcome, Evidence};
use attestation::attestation_proof;
use error::NodeCheckError;
use ledger::ledger_chain;
use revocation::revocation_live;
use submit::hex32;
use transactions::{replay_refused, tx_signed_sm2, verify_before_commit};
use types::Block;

/// A check against a live node.
#[derive(Debug, Clone, Copy)]
pub struct NodeCheck {
    pub id: &'static str,
    pub title: &'static str,
    /// What the check needs beyond a node and an identity.
    pub needs: Needs,
    /// Private: the only way to run a check is [`NodeCheck::execute`], which first refuses a
    /// writing check the auditor did not allow (see [`write_refusal`]).
    run: fn(&dyn NodeProbe) -> Vec<Evidence>,
}

/// What a node check needs beyond a node and an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: it writes at most a few small attestation records.
    Node,
    /// `--allow-writes` on a test chain, an admin and the CA of the identity's organisation:
    /// it issues throwaway certificates, suspends and revokes them.
    WritesAdminCa,
    /// `--allow-writes` on a test chain and an admin (no CA): it proposes and votes on
    /// governance changes (a throwaway contract deployed, upgraded and frozen).
    WritesAdmin,
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
            Needs::WritesAdmin => write_refusal(p).or_else(|| {
                p.admin().is_none().then(|| {
                    "not run: needs an admin of a member organisation (--admin-key/--admin-cert)"
                        .to_string()
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
        Err(e) => return Some(format!("not run: writes refused: {}", e.why())),
    };
    if !g.test_chain {
        return Some("not run: the genesis file does not mark a test chain: an auditor's run never writes to a production chain".into());
    }
    match p.status() {
        Err(e) => Some(format!(
            "not run: writes refused: status: {}",
            error::one_line(&e)
        )),
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
            title: "Blocks from the genesis file's block 0 to the tip: hash links, transaction roots and counts, and every commit certificate a quorum of the genesis validators",
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
            id: "node-tls-mutual-auth",
            title: "The node's API completes a mutual GM TLS handshake with a consortium member and refuses, during the handshake, a client without a certificate (certificate_required) and one from outside the consortium (unknown_ca)",
            needs: Needs::Node,
            run: tls::mutual_auth,
        },
        NodeCheck {
            id: "node-tls-rfc8998-suites",
            title: "The node negotiates TLS 1.3 with TLS_SM4_GCM_SM3 (0x00C6) and TLS_SM4_CCM_SM3 (0x00C7) over curveSM2, as the ServerHello on the wire shows, and refuses a non-GM offer (handshake_failure or insufficient_security) and TLS 1.2 (protocol_version) before any ServerHello",
            needs: Needs::Node,
            run: tls::rfc8998_suites,
        },
        NodeCheck {
            id: "node-tls-server-certificate",
            title: "The node presents a node-sign certificate with an SM2 key, signed with SM2-with-SM3, with digitalSignature, valid under the genesis file's CAs and CRLs",
            needs: Needs::Node,
            run: tls::server_certificate,
        },
        NodeCheck {
            id: "node-tls-confidentiality",
            title: "A request's random marker crosses the wire in clear in neither direction, and every record after the hellos is an encrypted application_data record",
            needs: Needs::Node,
            run: tls::confidentiality,
        },
        NodeCheck {
            id: "node-tls-integrity",
            title: "A record of an established GM TLS session altered in transit (one bit of its tag) is refused by the node with bad_record_mac",
            needs: Needs::Node,
            run: tls::integrity,
        },
        NodeCheck {
            id: "node-open-api",
            title: "The node's REST/JSON gateway on its mutual-TLS listener serves an OpenAPI 3.1 document whose every path is under /v1 and that maps every gRPC method; it answers GetStatus as gRPC does, and refuses a malformed request, an unknown route and a body over its limit with RFC 9457 problem documents naming registry codes",
            needs: Needs::Node,
            run: openapi::open_api,
        },
        NodeCheck {
            id: "node-revocation-live",
            title: "Throwaway signers of the identity's organisation are refused by the node: an expired one (TX_CERT_INVALID, CERT_EXPIRED), a suspended one after it committed (TX_SIGNER_SUSPENDED), a revoked one after the CA's next CRL is recorded (TX_SIGNER_REVOKED), while the identity still commits",
            needs: Needs::WritesAdminCa,
            run: revocation_live,
        },
        NodeCheck {
            id: "node-contract-lifecycle",
            title: "A contract proposed by a user is refused; one proposed by an admin deploys on the yes votes of two organisations with the SM3 of its module; a user's call runs within its fuel limit with its receipt verifying offline; hostile calls fail with their codes and keep nothing; an upgrade and a freeze by two organisations' votes change nothing before their quorum, then the upgrade runs migrate and keeps the state and the frozen contract refuses calls and still answers queries, GetContract naming each change's proposal and height",
            needs: Needs::WritesAdmin,
            run: contracts::contract_lifecycle_live,
        },
        // After node-contract-lifecycle: in a run with writes, its calls are in the blocks.
        NodeCheck {
            id: "node-contract-deterministic",
            title: "Blocks holding committed WASM contract calls (the last 10 000 blocks searched from the tip, at most 16 taken) each carry a commit certificate valid for the validator set of their height and signed by at least two distinct validators, each of which re-executed the calls to the header's state and receipts roots",
            needs: Needs::Node,
            run: determinism::contract_deterministic,
        },
    ]
}

/// The genesis file and its block 0, for the offline checks.
pub(super) fn genesis(p: &dyn NodeProbe) -> Result<(execution::Genesis, Block), NodeCheckError> {
    let g = execution::Genesis::from_json(p.genesis_json())
        .map_err(|source| NodeCheckError::GenesisFile { source })?;
    let b = g
        .build(&state::MemStore::new())
        .map_err(|source| NodeCheckError::GenesisBlock { source })?;
    Ok((g, b.block))
}

#[cfg(test)]
mod contracts_tests;
#[cfg(test)]
mod determinism_tests;
#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
