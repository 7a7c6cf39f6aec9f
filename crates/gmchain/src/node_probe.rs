//! The conformance suite's view of a live node ([`conformance::NodeProbe`]) over its gRPC API,
//! with the identity whose key signs the test transactions. Every method that reaches the node
//! is a real call, made on a current-thread runtime owned by the probe.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use conformance::{
    BlockBytes, ContractInfo, NodeIdentity, NodeProbe, NodeStatus, Party, ProbeError, ProposalInfo,
    QueryAnswer, Rpc, Submission, TlsAttempt, TlsObservation, TxAt, ValidatorBytes,
};
use crypto::{RandomSource, Signer};
use crypto_sm::rng::SystemRandom;
use pki::Certificate;
use tonic::transport::Channel;

use crate::Failure;
use crate::cli_tx::{NodeArgs, connect, status_failure};
use crate::io::read_named;

/// A certificate and the key that goes with it (checked when made).
pub(crate) struct KeyedCert {
    cert: Certificate,
    signer: Box<dyn Signer>,
}

impl KeyedCert {
    /// Reads the certificate `path` (PEM or DER) given as `flag` and checks that `signer`
    /// holds its key (`key_flag`). Bad input is exit 2.
    pub(crate) fn load(
        flag: &str,
        path: &Path,
        key_flag: &str,
        signer: Box<dyn Signer>,
    ) -> Result<Self, Failure> {
        let bytes = read_named(flag, path)?;
        let cert = Certificate::from_pem(&bytes)
            .or_else(|_| Certificate::from_der(&bytes))
            .map_err(|e| Failure::BadInput(format!("{flag} {}: {e}", path.display())))?;
        if signer.public_key() != cert.public_key() {
            return Err(Failure::BadInput(format!(
                "{key_flag} is not the key of {flag} ({})",
                cert.subject()
            )));
        }
        Ok(KeyedCert { cert, signer })
    }

    fn party(&self) -> Party<'_> {
        Party {
            cert: self.cert.der(),
            signer: self.signer.as_ref(),
        }
    }
}

/// What the auditor allows the writing checks (`--allow-writes`) and the identities they
/// need: an admin and the CA of the sending identity's organisation, and admins of other
/// organisations whose votes a governance policy needs.
#[derive(Default)]
pub(crate) struct Writes {
    pub allow: bool,
    pub admin: Option<KeyedCert>,
    pub ca: Option<KeyedCert>,
    pub voters: Vec<KeyedCert>,
}

/// A node reached over gRPC, the genesis file the auditor trusts, and the sending identity.
pub(crate) struct GrpcProbe {
    rt: tokio::runtime::Runtime,
    client: ChainClient<Channel>,
    url: String,
    genesis_file: String,
    genesis: Vec<u8>,
    cert: Certificate,
    signer: Box<dyn Signer>,
    key_desc: String,
    chain_id: String,
    version: String,
    writes: Writes,
    /// The node's TLS listener and the auditor's TLS identity, for the TLS checks (`None` for
    /// a plain `http://` address).
    tls: Option<crate::tls_probe::TlsTarget>,
}

impl GrpcProbe {
    /// Connects to `url`, reads the genesis file and the certificate, and checks that the key
    /// is the certificate's. An unreachable node is exit 3, bad files exit 2.
    pub(crate) fn open(
        url: &str,
        genesis: &Path,
        cert: &Path,
        signer: Box<dyn Signer>,
        key_desc: String,
        writes: Writes,
        tls: crate::client::TlsArgs,
    ) -> Result<Self, Failure> {
        let genesis_bytes = read_named("--genesis", genesis)?;
        let cert_bytes = read_named("--cert", cert)?;
        let cert = Certificate::from_pem(&cert_bytes)
            .or_else(|_| Certificate::from_der(&cert_bytes))
            .map_err(|e| Failure::BadInput(format!("--cert {}: {e}", cert.display())))?;
        if signer.public_key() != cert.public_key() {
            return Err(Failure::BadInput(format!(
                "--key is not the key of --cert ({})",
                cert.subject()
            )));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
        let node = NodeArgs::at(url, tls);
        let tls = crate::client::tls_parts(&node)?;
        let mut client = rt.block_on(connect(&node))?;
        let status = rt
            .block_on(client.get_status(pb::GetStatusRequest {}))
            .map_err(|s| status_failure("status", s))?
            .into_inner();
        Ok(GrpcProbe {
            rt,
            client,
            url: url.to_string(),
            genesis_file: genesis.display().to_string(),
            genesis: genesis_bytes,
            cert,
            signer,
            key_desc,
            chain_id: status.chain_id,
            version: status.version,
            writes,
            tls,
        })
    }
}

/// A refusal's stable code: the `gmchain-code` metadata, which must name a registry code. The
/// message is not parsed: a node that does not send its code does not meet the API contract, and
/// the case says so.
fn refusal_code(s: &tonic::Status) -> Option<String> {
    gmchain_sdk::status_code(s).map(|c| c.name.to_string())
}

/// A gRPC error status as the conformance suite sees it: unreachable for the codes the CLI
/// calls unreachable (exit 3: `gmchain_sdk::is_unreachable`, as in `cli_tx::status_failure`), else an answer that failed.
fn transport(call: Rpc, s: &tonic::Status) -> ProbeError {
    let status = format!("{:?}", s.code());
    let message = s.message().to_string();
    if gmchain_sdk::is_unreachable(s.code()) {
        ProbeError::Unreachable {
            call,
            status,
            message,
        }
    } else {
        ProbeError::Failed {
            call,
            status,
            message,
        }
    }
}

impl NodeProbe for GrpcProbe {
    fn allow_writes(&self) -> bool {
        self.writes.allow
    }

    fn admin(&self) -> Option<Party<'_>> {
        self.writes.admin.as_ref().map(KeyedCert::party)
    }

    fn ca(&self) -> Option<Party<'_>> {
        self.writes.ca.as_ref().map(KeyedCert::party)
    }

    fn voters(&self) -> Vec<Party<'_>> {
        self.writes.voters.iter().map(KeyedCert::party).collect()
    }

    fn progress(&self, message: &str) {
        eprintln!("{message}");
    }
    fn identity(&self) -> NodeIdentity {
        NodeIdentity {
            url: self.url.clone(),
            chain_id: self.chain_id.clone(),
            version: self.version.clone(),
            genesis_file: self.genesis_file.clone(),
            genesis_file_sm3: crypto_sm::sm3::sm3(&self.genesis).to_string(),
            sender: self.cert.subject(),
            sender_key: self.key_desc.clone(),
        }
    }

    fn genesis_json(&self) -> &[u8] {
        &self.genesis
    }

    fn certificate(&self) -> &[u8] {
        self.cert.der()
    }

    fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }

    fn random(&self) -> &dyn RandomSource {
        &SystemRandom
    }

    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn status(&self) -> Result<NodeStatus, ProbeError> {
        let s = self
            .rt
            .block_on(self.client.clone().get_status(pb::GetStatusRequest {}))
            .map_err(|s| transport(Rpc::GetStatus, &s))?
            .into_inner();
        Ok(NodeStatus {
            chain_id: s.chain_id,
            height: s.height,
            tip_hash: s.tip_hash,
            genesis_hash: s.genesis_hash,
            expiry_window: s.expiry_window,
            version: s.version,
        })
    }

    fn submit(&self, signed_tx: &[u8]) -> Result<Submission, ProbeError> {
        let r = self.rt.block_on(self.client.clone().submit_transaction(
            pb::SubmitTransactionRequest {
                signed_tx: signed_tx.to_vec(),
                wait_for_commit: true,
            },
        ));
        match r {
            Ok(resp) => {
                let resp = resp.into_inner();
                Ok(if resp.committed {
                    Submission::Committed {
                        tx_id: resp.tx_id,
                        height: resp.height,
                        position: resp.position,
                        receipt: resp.receipt,
                    }
                } else {
                    Submission::NotCommitted { tx_id: resp.tx_id }
                })
            }
            Err(s) => match refusal_code(&s) {
                Some(code) => Ok(Submission::Refused {
                    code,
                    message: s.message().to_string(),
                }),
                None => Err(transport(Rpc::SubmitTransaction, &s)),
            },
        }
    }

    fn transaction(&self, tx_id: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        let r = self
            .rt
            .block_on(self.client.clone().get_transaction(pb::TxIdRequest {
                tx_id: tx_id.to_vec(),
            }));
        match r {
            Ok(t) => {
                let t = t.into_inner();
                Ok(Some(TxAt {
                    signed_tx: t.signed_tx,
                    height: t.height,
                    position: t.position,
                }))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(transport(Rpc::GetTransaction, &s)),
        }
    }

    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        let b = self
            .rt
            .block_on(self.client.clone().get_block(pb::GetBlockRequest {
                height: Some(height),
            }))
            .map_err(|s| transport(Rpc::GetBlock { height }, &s))?
            .into_inner();
        Ok(BlockBytes {
            block: b.block,
            certificate: b.certificate,
        })
    }

    fn validators(&self, height: u64) -> Result<Vec<ValidatorBytes>, ProbeError> {
        let v = self
            .rt
            .block_on(
                self.client
                    .clone()
                    .get_validators(pb::GetValidatorsRequest {
                        height: Some(height),
                    }),
            )
            .map_err(|s| transport(Rpc::GetValidators { height }, &s))?
            .into_inner();
        Ok(v.validators
            .into_iter()
            .map(|v| ValidatorBytes {
                certificate: v.certificate,
                power: v.power,
            })
            .collect())
    }

    fn tls_attempt(&self, attempt: TlsAttempt) -> Result<TlsObservation, ProbeError> {
        match &self.tls {
            Some(t) => self.rt.block_on(crate::tls_probe::attempt(t, attempt)),
            None => Err(ProbeError::Unsupported {
                what: "TLS connection attempts to a plain http:// address".into(),
            }),
        }
    }

    fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<conformance::HttpAnswer, ProbeError> {
        match &self.tls {
            Some(t) => self.rt.block_on(crate::tls_probe::http(
                t,
                method,
                path,
                content_type,
                body,
            )),
            None => Err(ProbeError::Unsupported {
                what: "REST requests to a plain http:// address (the gateway beside gRPC is on the mutual-TLS listener)".into(),
            }),
        }
    }

    fn receipt_json(&self, tx_id: &[u8; 32]) -> Result<String, ProbeError> {
        Ok(self
            .rt
            .block_on(self.client.clone().get_receipt_proof(pb::TxIdRequest {
                tx_id: tx_id.to_vec(),
            }))
            .map_err(|s| transport(Rpc::GetReceiptProof, &s))?
            .into_inner()
            .receipt_json)
    }

    fn contract(&self, name: &str) -> Result<Option<ContractInfo>, ProbeError> {
        let r = self
            .rt
            .block_on(self.client.clone().get_contract(pb::GetContractRequest {
                name: name.to_string(),
            }));
        match r {
            Ok(c) => {
                let c = c.into_inner();
                Ok(Some(ContractInfo {
                    name: c.name,
                    code_hash: c.code_hash,
                    version: c.version,
                    frozen: c.frozen,
                    deployed: c.deployed,
                    updated: c.updated,
                    proposal_id: c.proposal_id,
                    code_size: c.code_size,
                }))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(transport(Rpc::GetContract, &s)),
        }
    }

    fn query_contract(
        &self,
        contract: &str,
        method: &str,
        args: &[Vec<u8>],
        fuel: Option<u64>,
    ) -> Result<QueryAnswer, ProbeError> {
        let r = self.rt.block_on(
            self.client
                .clone()
                .query_contract(pb::QueryContractRequest {
                    contract: contract.to_string(),
                    method: method.to_string(),
                    args: args.to_vec(),
                    fuel,
                }),
        );
        match r {
            Ok(a) => {
                let a = a.into_inner();
                Ok(QueryAnswer::Output {
                    output: a.output,
                    fuel_used: a.fuel_used,
                    height: a.height,
                })
            }
            Err(s) => match refusal_code(&s) {
                Some(code) => Ok(QueryAnswer::Refused {
                    code,
                    message: s.message().to_string(),
                }),
                None => Err(transport(Rpc::QueryContract, &s)),
            },
        }
    }

    fn proposal(&self, id: &[u8; 32]) -> Result<Option<ProposalInfo>, ProbeError> {
        let r = self.rt.block_on(
            self.client
                .clone()
                .get_proposal(pb::GetProposalRequest { id: id.to_vec() }),
        );
        match r {
            Ok(p) => {
                let p = p.into_inner();
                Ok(Some(ProposalInfo {
                    kind: p.kind,
                    proposer: p.proposer,
                    electorate: p.electorate,
                    votes: p
                        .votes
                        .into_iter()
                        .map(|v| (v.organisation, v.yes))
                        .collect(),
                    policy: p.policy,
                    status: p.status,
                    status_height: p.status_height,
                }))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(transport(Rpc::GetProposal, &s)),
        }
    }
}
