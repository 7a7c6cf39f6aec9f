//! The node as the checks see it: what the binary implements over the node's gRPC API
//! ([`NodeProbe`]), and the answers it returns.

use crypto::{RandomSource, Signer};
use serde::Serialize;

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

/// A block and its commit certificate as the node returned them (canonical encodings; the
/// certificate is empty for block 0).
#[derive(Debug, Clone)]
pub struct BlockBytes {
    pub block: Vec<u8>,
    pub certificate: Vec<u8>,
}

/// A member of a validator set as the node listed it (GetValidators): its node-signing
/// certificate (DER) and voting power. The walk derives the id and key from the certificate
/// and trusts nothing else the node says about the set.
#[derive(Debug, Clone)]
pub struct ValidatorBytes {
    pub certificate: Vec<u8>,
    pub power: u64,
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

/// A deployed WASM contract's record as the node reported it (GetContract).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractInfo {
    pub name: String,
    /// SM3 of the module it runs, as the node reports it.
    pub code_hash: Vec<u8>,
    pub version: u32,
    pub frozen: bool,
    /// The height of its deployment and of its last lifecycle change.
    pub deployed: u64,
    pub updated: u64,
    /// The proposal that made the last change.
    pub proposal_id: Vec<u8>,
    pub code_size: u64,
}

/// What the node answered to a read-only contract query (QueryContract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// The contract's output, the fuel the query used and the tip whose state was read.
    Output {
        output: Vec<u8>,
        fuel_used: u64,
        height: u64,
    },
    /// Refused with a stable code (`CONTRACT_TRAP`, `TX_UNKNOWN_CALL`) and its message.
    Refused { code: String, message: String },
}

/// A governance proposal as the node reported it (GetProposal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposalInfo {
    pub kind: String,
    /// The proposing organisation.
    pub proposer: String,
    /// The organisations that vote, in name order.
    pub electorate: Vec<String>,
    /// The votes cast: organisation and yes/no.
    pub votes: Vec<(String, bool)>,
    /// The threshold ("majority", "all", "at-least:<m>").
    pub policy: String,
    /// "open", "executed", "rejected" or "expired".
    pub status: String,
    /// The block that executed or rejected it (0 while open).
    pub status_height: u64,
}

/// A live node and an identity that may send to it, as the conformance checks see them.
/// Every call that reaches the node is a real call.
pub trait NodeProbe {
    /// Whether the auditor allowed the checks that write more than a few small transactions
    /// or change identities (`--allow-writes`). They run only if the genesis file also marks a
    /// test chain.
    /// Default: no (a probe that says nothing never licenses writes).
    fn allow_writes(&self) -> bool {
        false
    }
    /// An admin of the identity's organisation (`--admin-key/--admin-cert`), if given.
    fn admin(&self) -> Option<Party<'_>> {
        None
    }
    /// The identity's organisation's CA (`--ca-key/--ca-cert`), if given.
    fn ca(&self) -> Option<Party<'_>> {
        None
    }
    /// Admins of other organisations (`--voter-key/--voter-cert`, in the order given) whose
    /// votes a governance policy may need beyond the admin's own organisation.
    fn voters(&self) -> Vec<Party<'_>> {
        Vec::new()
    }
    /// Reports the progress of a long check (the whole-chain walk) to the auditor.
    fn progress(&self, message: &str) {
        let _ = message;
    }
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
    fn status(&self) -> Result<NodeStatus, ProbeError>;
    /// SubmitTransaction with wait-for-commit. A coded refusal is an answer
    /// ([`Submission::Refused`]); `Err` only for transport failures or an answer that is neither
    /// a commit nor a coded refusal.
    fn submit(&self, signed_tx: &[u8]) -> Result<Submission, ProbeError>;
    /// GetTransaction; `Ok(None)` when the node says it is not committed.
    fn transaction(&self, tx_id: &[u8; 32]) -> Result<Option<TxAt>, ProbeError>;
    /// GetBlock at a height.
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError>;
    /// GetReceiptProof: the offline receipt file (JSON).
    fn receipt_json(&self, tx_id: &[u8; 32]) -> Result<String, ProbeError>;
    /// GetValidators: the set that decides `height`. The whole-chain walk asks for it only
    /// where a certified header announces a set other than the one in force, and accepts it
    /// only if its hash is the announced one.
    fn validators(&self, height: u64) -> Result<Vec<ValidatorBytes>, ProbeError> {
        let _ = height;
        Err(ProbeError::Unsupported {
            what: "GetValidators".into(),
        })
    }
    /// GetContract: a deployed contract's record; `Ok(None)` when the node says there is none.
    fn contract(&self, name: &str) -> Result<Option<ContractInfo>, ProbeError> {
        let _ = name;
        Err(ProbeError::Unsupported {
            what: "GetContract".into(),
        })
    }
    /// QueryContract: `contract.method(args)` read-only on the tip's state, at most `fuel`.
    /// A coded refusal is an answer ([`QueryAnswer::Refused`]).
    fn query_contract(
        &self,
        contract: &str,
        method: &str,
        args: &[Vec<u8>],
        fuel: Option<u64>,
    ) -> Result<QueryAnswer, ProbeError> {
        let _ = (contract, method, args, fuel);
        Err(ProbeError::Unsupported {
            what: "QueryContract".into(),
        })
    }
    /// GetProposal: a governance proposal by its id; `Ok(None)` when the node knows none.
    fn proposal(&self, id: &[u8; 32]) -> Result<Option<ProposalInfo>, ProbeError> {
        let _ = id;
        Err(ProbeError::Unsupported {
            what: "GetProposal".into(),
        })
    }
    /// One HTTP/1.1 request to the REST gateway the node serves beside gRPC on its mutual-TLS
    /// API listener (docs/rest.md), as the auditor's identity: the answer's status, media type
    /// and body.
    fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<HttpAnswer, ProbeError> {
        let _ = (method, path, content_type, body);
        Err(ProbeError::Unsupported {
            what: "HTTP requests to the REST gateway".into(),
        })
    }
    /// One TLS connection attempt to the node's API listener, relayed through a recorder.
    /// `Err` only when the attempt could not be made (the probe cannot make it, or the node
    /// is unreachable); a refusal is an observation.
    fn tls_attempt(&self, attempt: TlsAttempt) -> Result<TlsObservation, ProbeError> {
        let _ = attempt;
        Err(ProbeError::Unsupported {
            what: "TLS connection attempts".into(),
        })
    }
}

/// A call the probe makes to the node, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rpc {
    GetStatus,
    SubmitTransaction,
    GetTransaction,
    GetBlock {
        height: u64,
    },
    GetReceiptProof,
    GetValidators {
        height: u64,
    },
    /// A TLS connection attempt to the API listener.
    Tls,
    GetContract,
    QueryContract,
    GetProposal,
    /// An HTTP request to the REST gateway beside gRPC on the API listener.
    Rest,
}

impl std::fmt::Display for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rpc::GetStatus => f.write_str("GetStatus"),
            Rpc::SubmitTransaction => f.write_str("SubmitTransaction"),
            Rpc::GetTransaction => f.write_str("GetTransaction"),
            Rpc::GetBlock { height } => write!(f, "GetBlock {height}"),
            Rpc::GetReceiptProof => f.write_str("GetReceiptProof"),
            Rpc::GetValidators { height } => write!(f, "GetValidators {height}"),
            Rpc::Tls => f.write_str("TLS"),
            Rpc::GetContract => f.write_str("GetContract"),
            Rpc::QueryContract => f.write_str("QueryContract"),
            Rpc::GetProposal => f.write_str("GetProposal"),
            Rpc::Rest => f.write_str("REST"),
        }
    }
}

/// Why a call to the node gave no answer the checks can read. A refusal with a stable code is
/// an answer ([`Submission::Refused`]), and "not committed" from GetTransaction is `Ok(None)`:
/// neither is an error. `status` is the gRPC status code's name (`Unavailable`), `message` the
/// node's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The node could not be reached, or the call did not complete (gRPC `Unavailable`,
    /// `DeadlineExceeded`, `Unknown`).
    #[error("{call}: gRPC {status}: {message}")]
    Unreachable {
        call: Rpc,
        status: String,
        message: String,
    },
    /// The probe cannot make this call (a fake node, or a node given as a plain http://
    /// address).
    #[error("the probe cannot make {what}")]
    Unsupported { what: String },
    /// The node answered with an error status that is no coded refusal (`NotFound` for a
    /// block, `Internal`).
    #[error("{call}: gRPC {status}: {message}")]
    Failed {
        call: Rpc,
        status: String,
        message: String,
    },
}

/// The node's answer to an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// The Content-Type header's media type (without parameters), empty when absent.
    pub media_type: String,
    pub body: Vec<u8>,
}

/// Which RFC 8998 cipher suites the auditor's client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GmSuites {
    /// `TLS_SM4_GCM_SM3` then `TLS_SM4_CCM_SM3`.
    Both,
    /// `TLS_SM4_GCM_SM3` (0x00C6) only.
    GcmOnly,
    /// `TLS_SM4_CCM_SM3` (0x00C7) only.
    CcmOnly,
}

/// What the auditor's client offers the node's TLS listener in one connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsAttempt {
    /// The auditor's own TLS identity (the TLS flags or client profile) offering `suites`,
    /// `curveSM2` and `sm2sig_sm3`. With a `marker`, a GetTransaction request for that id is
    /// sent over the connection once the handshake is done.
    Member {
        suites: GmSuites,
        marker: Option<[u8; 32]>,
    },
    /// A GM TLS 1.3 client that sends no certificate.
    NoCertificate,
    /// A certificate issued by a self-signed root made in memory for this attempt: a CA the
    /// consortium does not know.
    Outsider,
    /// A raw TLS 1.2 ClientHello (no supported_versions extension).
    Tls12Hello,
    /// A raw TLS 1.3 ClientHello offering only `TLS_AES_128_GCM_SHA256`, the group `x25519`
    /// and non-SM signature schemes.
    NonGmHello,
    /// The auditor's own identity; once the handshake is done (the node's first bytes
    /// received), the relay flips one bit in the authentication tag of the next record the
    /// client sends, and the client sends application data and waits for the answer.
    Tampered,
}

/// What a wire observer and the client saw of one attempt. The binary relays the connection
/// through a recorder and reports the bytes as they crossed; the checks parse them.
#[derive(Debug, Clone, Default)]
pub struct TlsObservation {
    /// What the client offered, in words (for the evidence).
    pub offered: String,
    /// Every byte the client sent, in order.
    pub client_bytes: Vec<u8>,
    /// Every byte the server sent, in order.
    pub server_bytes: Vec<u8>,
    /// The client finished the handshake and was not refused afterwards (in TLS 1.3 the
    /// server judges the client's certificate after the client's Finished, so a refusal
    /// arrives as an alert in place of the server's first application data).
    pub completed: bool,
    /// The alert the client received (TLS AlertDescription code), in clear or inside the
    /// encrypted handshake.
    pub alert: Option<u8>,
    /// Why the attempt failed otherwise (no alert): the client's own error.
    pub error: Option<String>,
    /// The server's certificate chain as the client received it (DER, leaf first).
    pub server_chain: Vec<Vec<u8>>,
    /// The signature scheme of the server's CertificateVerify, as the client verified it.
    pub server_signature_scheme: Option<u16>,
    /// The signature_algorithms of the server's CertificateRequest as the client received
    /// them (rustls drops the schemes TLS 1.3 forbids: SHA-1, MD5, SHA-224, RSA-PKCS1, DSA).
    pub certificate_request_schemes: Option<Vec<u16>>,
    /// The answer to the request sent with a marker: the gRPC status name or "OK".
    pub request: Option<Result<String, String>>,
    /// What the relay altered (`Tampered`): which record and which bit; `None` when nothing
    /// was altered.
    pub tampered: Option<String>,
}
