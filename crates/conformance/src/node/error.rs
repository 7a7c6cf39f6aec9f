//! Why a case of a node check failed, as data: which step, which block or transaction, and the
//! error underneath kept as its source. The report's "why" line is [`NodeCheckError::why`]:
//! this error's message, then each source's, on one line.
//!
//! The variants fall in four kinds, and a check that decides on the kind matches the variant:
//! the node could not be asked ([`NodeCheckError::Probe`]); the node's answer is wrong (it
//! accepted what it must refuse, its blocks or receipts do not verify: most variants); the
//! auditor's input cannot be used (the genesis file, the certificates given); or the suite could
//! not build its own test material (randomness, throwaway keys and certificates).

use super::probe::ProbeError;
use crypto::CryptoError;
use pki::{PkiError, Role, Serial, UnixTime};
use receipt::ReceiptError;
use types::{BlockHash, ChainId, DecodeError, Height, TxError, TxId};

/// Why a case of a node check failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeCheckError {
    // --- The node could not be asked.
    /// A call to the node returned no usable answer.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// A block the walk asked for did not come back.
    #[error("block {height}")]
    BlockUnavailable {
        height: u64,
        #[source]
        source: ProbeError,
    },

    // --- The node's answer is wrong: submissions.
    /// The node reports a chain id that is not one.
    #[error("node reports chain id {chain_id:?}")]
    NodeChainId {
        chain_id: String,
        #[source]
        source: DecodeError,
    },
    /// A committed transaction's receipt does not decode.
    #[error("unreadable receipt at height {height}")]
    UnreadableReceipt {
        height: u64,
        #[source]
        source: DecodeError,
    },
    /// The transaction committed but its execution failed.
    #[error("committed at height {height} but failed: {code}: {message}")]
    CommittedButFailed {
        height: u64,
        code: u32,
        message: String,
    },
    /// The node returned a transaction id that is not 32 bytes.
    #[error("the node returned a {len}-byte id")]
    TxIdLength { len: usize },
    /// The node admitted the transaction but did not report it committed.
    #[error("tx {} admitted but not reported committed", hex::encode(tx_id))]
    NotReportedCommitted { tx_id: Vec<u8> },
    /// The node refused a transaction that should commit.
    #[error("refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// The node refused with another code than the one expected.
    #[error("refused with {got} ({message}), expected {expected}")]
    WrongRefusal {
        got: String,
        message: String,
        expected: String,
    },
    /// The node refused with the expected code, but its message does not name the reason.
    #[error("refused {code} but not for {detail}: {message}")]
    RefusedNotNaming {
        code: String,
        detail: String,
        message: String,
    },
    /// The node committed a transaction it must refuse.
    #[error("ACCEPTED and committed at height {height}; expected {expected}")]
    AcceptedCommitted { height: u64, expected: String },
    /// The node admitted a transaction it must refuse.
    #[error("ACCEPTED; expected {expected}")]
    Accepted { expected: String },
    /// A check that looks for refused transactions had none to look for.
    #[error("no refused transaction to look for")]
    NoRefusedTx,
    /// The node knows a refused transaction as committed.
    #[error("transaction {} is committed at height {height}", hex::encode(tx))]
    RefusedTxCommitted { tx: [u8; 32], height: u64 },
    /// A block holds a refused transaction.
    #[error("block {height} holds refused transaction {tx}")]
    BlockHoldsRefused { height: u64, tx: TxId },

    // --- The node's answer is wrong: one committed transaction.
    /// The receipt the node returned names another transaction.
    #[error("the receipt is for {tx}")]
    ReceiptForOtherTx { tx: TxId },
    /// The node's transaction id is not the independently recomputed one.
    #[error("node {} != recomputed {}", hex::encode(node), hex::encode(recomputed))]
    TxIdMismatch {
        node: [u8; 32],
        recomputed: [u8; 32],
    },
    /// The block the node named has no transaction at the position it named.
    #[error("block {height} has no position {position}")]
    NoPosition { height: u64, position: u32 },
    /// The block holds other bytes than those submitted.
    #[error(
        "the transaction at height {height} position {position} differs from the one submitted"
    )]
    StoredTxDiffers { height: u64, position: u32 },
    /// GetTransaction places the transaction elsewhere than its commit.
    #[error("GetTransaction says height {height} position {position}")]
    TxLookupDisagrees { height: u64, position: u32 },
    /// GetTransaction does not know a committed transaction.
    #[error("GetTransaction does not know tx {}", hex::encode(tx))]
    TxNotFound { tx: [u8; 32] },
    /// The stored transaction's sender is not the identity's certificate.
    #[error("the stored sender is not the identity's certificate")]
    SenderNotIdentity,
    /// The stored signature does not verify with the identity's certificate.
    #[error("tx {}", hex::encode(tx))]
    TxSignature {
        tx: [u8; 32],
        #[source]
        source: CryptoError,
    },
    /// The stored signature verifies under a user ID it was not made with.
    #[error("verifies under another user ID")]
    VerifiesUnderOtherUserId,
    /// The stored signature verifies with a key that did not make it.
    #[error("verifies with another key")]
    VerifiesWithOtherKey,
    /// A resubmitted transaction's original moved.
    #[error("the original moved to height {height}")]
    OriginalMoved { height: u64 },
    /// A resubmitted transaction's original is gone.
    #[error("the original is no longer found")]
    OriginalGone,

    // --- The node's answer is wrong: the chain against the genesis file.
    /// The node's chain id is not the genesis file's.
    #[error("node chain {node:?}, genesis file {genesis:?}")]
    ChainIdDiffers { node: String, genesis: String },
    /// The node's block 0 hash is not the genesis file's.
    #[error("node block 0 {}, genesis file gives {genesis}", hex::encode(node))]
    Block0HashDiffers { node: Vec<u8>, genesis: BlockHash },
    /// The node's block 0 bytes are not the genesis file's.
    #[error("the node's block 0 differs from the genesis file's")]
    Block0Differs,
    /// Block 0 carries a commit certificate.
    #[error("block 0 carries a commit certificate")]
    Block0Certified,
    /// A block does not decode under the limits every node decodes under (`Limits::default()`).
    #[error("block {height}")]
    BlockUndecodable {
        height: u64,
        #[source]
        source: DecodeError,
    },
    /// A block's header names another height than the one asked for.
    #[error("block {height} says height {says}")]
    HeightDiffers { height: u64, says: Height },
    /// A block is for another chain.
    #[error("block {height} is for chain {chain_id}")]
    WrongChain { height: u64, chain_id: ChainId },
    /// The independent header hash differs from `BlockHeader::hash`.
    #[error("block {height}: independent header hash differs from BlockHeader::hash")]
    HeaderHashDiffers { height: u64 },
    /// Block 0 names a parent.
    #[error("block 0 has a parent")]
    Block0Parent,
    /// A block's parent is not the recomputed hash of the block below.
    #[error(
        "block {height}: parent {parent} is not the recomputed hash {} of block {below}",
        hex::encode(recomputed)
    )]
    ParentLink {
        height: u64,
        parent: BlockHash,
        below: u64,
        recomputed: [u8; 32],
    },
    /// A block's tx_root is not the Merkle root of its transactions.
    #[error(
        "block {height}: tx_root {header} but its transactions give {}",
        hex::encode(computed)
    )]
    TxRoot {
        height: u64,
        header: crypto::Digest,
        computed: [u8; 32],
    },
    /// A block's tx_count is not the number of its transactions.
    #[error("block {height}: tx_count {header} for {txs} transactions")]
    TxCount {
        height: u64,
        header: u32,
        txs: usize,
    },
    /// A transaction in a block names a certificate that does not decode.
    #[error("block {height} tx {tx}")]
    BlockTxCertificate {
        height: u64,
        tx: TxId,
        #[source]
        source: PkiError,
    },
    /// A transaction in a block does not verify with its certificate.
    #[error("block {height} tx {tx}")]
    BlockTxSignature {
        height: u64,
        tx: TxId,
        #[source]
        source: TxError,
    },
    /// A block's commit certificate does not decode.
    #[error("block {height}: commit certificate")]
    CertificateUndecodable {
        height: u64,
        #[source]
        source: DecodeError,
    },
    /// A block above 0 comes without a commit certificate.
    #[error("block {height} has no commit certificate")]
    CertificateMissing { height: u64 },
    /// A block's header does not commit to the genesis validator set or to the parent's
    /// certificate.
    #[error("block {height}: {what}")]
    CertificateLinks { height: u64, what: String },
    /// A block's certificate does not decide it under the genesis validator set.
    #[error("block {height}: commit certificate")]
    CertificateInvalid {
        height: u64,
        #[source]
        source: types::CertificateError,
    },
    /// The walk read no block.
    #[error("no block was read")]
    NoBlockRead,
    /// The chain has no block above 0, so no certificate to check.
    #[error("the chain has no block above 0: no commit certificate to check")]
    NoCertificateToCheck,
    /// The set deciding the tip has one member: no second validator re-executed anything.
    #[error(
        "determinism across validators cannot be shown on a one-validator chain (the set deciding block {height} has one member)"
    )]
    OneValidator { height: u64 },
    /// No block in the searched range holds a call to a deployed WASM contract.
    #[error(
        "no contract call found in the last {searched} blocks ({from}..={to}): run with --allow-writes so node-contract-lifecycle makes some"
    )]
    NoContractCall { searched: u64, from: u64, to: u64 },
    /// A block's certificate verifies, but fewer than two distinct validators signed it.
    #[error(
        "block {height}: its commit certificate has {signers} signer(s) of a {members}-validator set: fewer than 2 distinct validators re-executed it"
    )]
    TooFewSigners {
        height: u64,
        signers: usize,
        members: usize,
    },
    /// The tip hash the node reported is not the hash of its tip block.
    #[error(
        "status tip {}, block {height} hashes to {hash}",
        hex::encode(status_tip)
    )]
    TipDiffers {
        status_tip: Vec<u8>,
        height: u64,
        hash: BlockHash,
    },

    // --- The node's answer is wrong: receipts (a `ReceiptError` is large: boxed).
    /// A receipt file does not decode or does not verify; the message leads with its code.
    #[error("{}", source.code())]
    Receipt {
        #[source]
        source: Box<ReceiptError>,
    },
    /// The receipt file of a committed transaction does not decode.
    #[error("its receipt: {}", source.code())]
    ReceiptOfTx {
        tx: [u8; 32],
        #[source]
        source: Box<ReceiptError>,
    },
    /// A verified receipt is for another transaction or height.
    #[error("the receipt is for tx {tx} at height {height}")]
    ReceiptForOther { tx: TxId, height: Height },
    /// A verified receipt does not anchor the document's digest.
    #[error("the receipt does not anchor the document's digest")]
    ReceiptNotAnchoring,
    /// An altered document or receipt verified.
    #[error("the altered {what} verified")]
    AlteredVerified { what: &'static str },
    /// An altered document was refused, but with another code than expected.
    #[error("refused for another reason: {}", source.code())]
    ReceiptRefusedOtherwise {
        #[source]
        source: Box<ReceiptError>,
    },
    /// The receipt file is not JSON.
    #[error("the receipt file is not JSON")]
    ReceiptJson {
        #[source]
        source: serde_json::Error,
    },
    /// The receipt file has no header.
    #[error("the receipt has no header field")]
    ReceiptNoHeader,
    /// The receipt file's header is not hex.
    #[error("the receipt's header is not hex")]
    ReceiptHeaderHex {
        #[source]
        source: hex::FromHexError,
    },
    /// The receipt file's header is too short to hold a timestamp.
    #[error("the header is too short ({len} bytes)")]
    ReceiptHeaderShort { len: usize },
    /// A receipt carries no CRL of the organisation's CA.
    #[error("its receipt carries no CRL of {ca} signed by the CA's key")]
    NoCaCrl { ca: String },

    // --- The node's answer is wrong: TLS.
    /// The node refused a handshake it must accept.
    #[error("refused with {}", super::tls::alert_name(*alert))]
    TlsRefused { alert: u8 },
    /// The handshake failed without an alert.
    #[error("{why}")]
    TlsFailed { why: String },
    /// The node completed a handshake it must refuse.
    #[error("ACCEPTED: the handshake completed; expected a refusal with {expected}")]
    TlsAccepted { expected: String },
    /// The node refused with another alert than expected.
    #[error("refused with {}, expected {expected}", super::tls::alert_name(*got))]
    TlsWrongAlert { got: u8, expected: String },
    /// The node refused without an alert.
    #[error("no alert ({why}); expected {expected}")]
    TlsNoAlert { why: String, expected: String },
    /// The node answered a refused offer with a ServerHello.
    #[error(
        "the node answered with a ServerHello (version 0x{version:04X}, {}); expected a refusal before it",
        super::tls::suite_name(*suite)
    )]
    ServerHelloOnRefusal { version: u16, suite: u16 },
    /// The captured bytes are not the TLS the check expects.
    #[error("{why}")]
    TlsWire { why: String },
    /// The server sent no ServerHello.
    #[error("no ServerHello from the node: {why}")]
    NoServerHello { why: String },
    /// The ServerHello selects another version, suite or group than allowed.
    #[error("the ServerHello selects {what} 0x{got:04X}, expected {expected}")]
    TlsNegotiated {
        what: &'static str,
        got: u16,
        expected: String,
    },
    /// The node presented no certificate.
    #[error("the node presented no certificate")]
    NoServerCertificate,
    /// The node's certificate does not meet the profile.
    #[error("the node's certificate {subject}: {why}")]
    ServerCertificate { subject: String, why: String },
    /// The node's certificate does not validate to the genesis file's CAs.
    #[error(
        "the node's certificate {subject} does not validate as node-sign under the genesis file's CAs and CRLs"
    )]
    ServerCertificateChain {
        subject: String,
        #[source]
        source: Box<pki::ChainError>,
    },
    /// The marker sent inside the connection crossed the wire in clear.
    #[error("the marker is IN CLEAR in the {direction}'s bytes at offset {offset}")]
    MarkerInClear {
        direction: &'static str,
        offset: usize,
    },
    /// A record after the hellos is not application_data.
    #[error(
        "{direction}: record {index} after the hello has content type {content_type}, not application_data (23)"
    )]
    RecordInClear {
        direction: &'static str,
        index: usize,
        content_type: u8,
    },

    // --- The auditor's input cannot be used.
    /// The genesis file does not parse.
    #[error("genesis file")]
    GenesisFile {
        #[source]
        source: execution::GenesisError,
    },
    /// The genesis file's block 0 cannot be built.
    #[error("genesis block")]
    GenesisBlock {
        #[source]
        source: execution::ExecError,
    },
    /// The genesis file's validators do not form a set.
    #[error("the genesis file's validators do not form a set")]
    GenesisValidators {
        #[source]
        source: execution::ExecError,
    },
    /// The genesis file's consortium cannot be read.
    #[error("the genesis file's consortium")]
    Consortium {
        #[source]
        source: execution::GenesisError,
    },
    /// A certificate given (`what` names it) does not decode.
    #[error("{what}")]
    BadCertificate {
        what: &'static str,
        #[source]
        source: PkiError,
    },
    /// A case that needs a role-user identity was given another.
    #[error(
        "not exercised: the identity's role is {role:?}; run the suite with a role-user identity"
    )]
    NotExercised { role: Option<Role> },
    /// The writing check was given no admin or no CA.
    #[error("not given (--admin-key/--admin-cert, --ca-key/--ca-cert)")]
    AdminCaNotGiven,
    /// The writing check was given no admin.
    #[error("no admin given (--admin-key/--admin-cert)")]
    AdminNotGiven,
    /// The admin certificate given is not an admin's.
    #[error("--admin-cert {subject} is not an admin")]
    NotAdmin { subject: String },
    /// The CA, the admin and the identity are of different organisations.
    #[error(
        "the CA's organisation {ca:?}, the admin's {admin:?} and the identity's {identity:?} differ"
    )]
    OrganisationsDiffer {
        ca: Option<String>,
        admin: Option<String>,
        identity: Option<String>,
    },
    /// The CA certificate names no organisation.
    #[error("the CA certificate names no organisation (O)")]
    CaNoOrganisation,
    /// The CA's validity starts too recently for an already expired certificate inside it.
    #[error(
        "the CA's validity starts at {not_before}, too recently for a certificate that has already expired"
    )]
    CaTooRecent { not_before: UnixTime },
    /// The identity under test is already in its organisation's CRL.
    #[error("the identity under test (serial {serial}) is already revoked")]
    IdentityRevoked { serial: Serial },
    /// The CRL on chain is not older than now: no later one can be issued.
    #[error(
        "the recorded CRL's thisUpdate {this_update} is not before now ({now}): cannot issue a later one"
    )]
    CrlNotBeforeNow { this_update: UnixTime, now: u64 },
    /// A transaction the next step needs did not commit.
    #[error("no committed transaction")]
    NoCommittedTx,
    /// A `--voter-cert` is no admin of an organisation other than the admin's and the other
    /// voters'.
    #[error("--voter-cert {subject}: {why}")]
    BadVoter { subject: String, why: String },
    /// The votes given do not reach the proposal's policy.
    #[error(
        "the votes given cannot pass proposal {id} ({}): policy {:?}, electorate {:?}, votes so far {:?}, status {:?}; give --voter-key/--voter-cert for admins of the organisations still needed",
        proposal.kind, proposal.policy, proposal.electorate, proposal.votes, proposal.status
    )]
    PolicyNotMet {
        id: String,
        proposal: Box<super::probe::ProposalInfo>,
    },
    /// A lifecycle change executed without yes votes of two organisations (GZ-6.5 multi-party
    /// approval), as GetProposal reports it.
    #[error(
        "proposal {id} ({}) executed on the yes votes of {} organisation(s) {yes:?}: multi-party approval needs at least two (policy {:?}, electorate {:?}); run on a chain whose contract policy needs the votes of two organisations, with --voter-key/--voter-cert",
        proposal.kind, yes.len(), proposal.policy, proposal.electorate
    )]
    SingleOrganisation {
        id: String,
        yes: Vec<String>,
        proposal: Box<super::probe::ProposalInfo>,
    },
    /// A case the chain's policy gave no chance to show (the proposal executed in its own
    /// transaction, so nothing could be observed while votes were awaited).
    #[error("could not be shown: {why}")]
    NotShown { why: String },
    /// GetProposal does not know a proposal that committed.
    #[error("GetProposal does not know the committed proposal {id}")]
    ProposalUnknown { id: String },
    /// The node's answer about a contract is not what the chain's rules give.
    #[error("{what}")]
    ContractAnswer { what: String },
    /// A query the check expected to answer was refused.
    #[error("QueryContract {call} refused: {code}: {message}")]
    QueryRefused {
        call: String,
        code: String,
        message: String,
    },

    /// The REST gateway's answer is not what the API contract says (docs/rest.md).
    #[error("{what}")]
    RestContract { what: String },

    // --- The suite could not build its test material.
    /// The test contract's text did not compile.
    #[error("the test contract module: {why}")]
    ProbeModule { why: String },
    /// The probe's randomness failed.
    #[error("randomness")]
    Randomness {
        #[source]
        source: CryptoError,
    },
    /// A transaction could not be signed.
    #[error("signing")]
    Signing {
        #[source]
        source: TxError,
    },
    /// A cryptographic step of a case's set-up failed (`what` names it).
    #[error("{what}")]
    Crypto {
        what: &'static str,
        #[source]
        source: CryptoError,
    },
    /// A certificate or CRL step of a case's set-up failed (`what` names it).
    #[error("{what}")]
    Pki {
        what: &'static str,
        #[source]
        source: PkiError,
    },
    /// A throwaway certificate could not be issued.
    #[error("issuing {cn}")]
    Issue {
        cn: String,
        #[source]
        source: PkiError,
    },
    /// Another chain id could not be made.
    #[error("another chain id")]
    OtherChainId {
        #[source]
        source: DecodeError,
    },
    /// Eight draws of randomness gave no valid SM2 private key.
    #[error("no valid private key from the randomness")]
    NoThrowawayKey,
}

impl NodeCheckError {
    /// The report's "why" line: this error's message, then each source's message that it does
    /// not already contain, joined by ": ", on one line.
    pub(crate) fn why(&self) -> String {
        one_line(self)
    }
}

/// `e`'s message followed by each of its sources' messages not already shown (some errors
/// print their source themselves), with line breaks replaced, so a report line stays one line.
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::probe::Rpc;

    #[test]
    fn the_why_line_keeps_every_source_once_on_one_line() {
        let e = NodeCheckError::BlockUnavailable {
            height: 7,
            source: ProbeError::Unreachable {
                call: Rpc::GetBlock { height: 7 },
                status: "Unavailable".into(),
                message: "connection refused\nretry later".into(),
            },
        };
        assert_eq!(
            e.why(),
            "block 7: GetBlock 7: gRPC Unavailable: connection refused retry later"
        );
        // PkiError::Signer prints its source itself: it is not repeated.
        let e = NodeCheckError::Issue {
            cn: "conformance-expired".into(),
            source: PkiError::Signer(CryptoError::Entropy),
        };
        assert_eq!(
            e.why(),
            "issuing conformance-expired: signing failed: random number source failed"
        );
        let e = NodeCheckError::Signing {
            source: TxError::Signing(CryptoError::Entropy),
        };
        assert_eq!(
            e.why(),
            "signing: cannot sign the transaction: random number source failed"
        );
    }
}
