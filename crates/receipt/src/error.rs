//! The one error type of the crate: each check of [`crate::ReceiptBundle::verify`] fails with
//! its own variant and stable code.

use crypto::Digest;
use pki::{ChainError, PkiError, UnixTime};
use thiserror::Error;
use types::merkle::ProofError;
use types::{BlockHash, DecodeError, TxError, TxId};

/// Why a receipt file could not be read, or a receipt bundle not verified or built.
///
/// Every variant has a stable [`ReceiptError::code`]; its message names the part of the
/// receipt that is wrong and says what to do.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The file is larger than any receipt this release writes; refused before parsing.
    #[error(
        "the receipt file is {len} bytes, more than the {max} bytes a receipt may have; this is not a gmchain receipt"
    )]
    TooLarge { len: usize, max: usize },
    /// The file is a JSON object, but not a receipt of a format and version this release reads.
    #[error(
        "the file is format {format:?} version {version}; this release reads only format \"gmchain-receipt\" version 1"
    )]
    UnsupportedFormat { format: String, version: u64 },
    /// A field of the file cannot be decoded.
    #[error(
        "the receipt file's field `{field}` is malformed: {problem}; the file was altered or truncated, obtain it again"
    )]
    Malformed {
        /// The JSON field (`tx`, `chain[1]`, …), or `file` for the JSON structure itself.
        field: String,
        /// What is wrong with it.
        problem: Malformation,
    },
    /// The header or the transaction names another chain than the genesis file.
    #[error(
        "the {part} is for chain {found:?}, but the genesis file is for chain {expected:?}; verify against the genesis file of chain {found:?}"
    )]
    WrongChain {
        /// `header` or `transaction`.
        part: &'static str,
        /// The chain ID the receipt carries.
        found: String,
        /// The genesis file's chain ID.
        expected: String,
    },
    /// The seal's signer is not a validator of the genesis file.
    #[error(
        "the block seal is signed by {signer}, which is not the certificate fingerprint (SM3 of DER) of any validator in the genesis file; the seal is forged or the genesis file is of another chain"
    )]
    SealUnknownValidator { signer: Digest },
    /// The seal's signer is a validator, but not the header's proposer.
    #[error(
        "the block seal is signed by validator {signer}, but the sealed header names proposer {proposer}; a validator sealed a block it did not propose, which gmchain does not accept"
    )]
    SealNotProposer { signer: Digest, proposer: Digest },
    /// The seal's signature does not verify with the validator's key.
    #[error(
        "the block seal's SM2 signature does not verify with the key of validator {validator:?} ({reason}); the seal was altered or made with another key"
    )]
    SealSignature { validator: String, reason: TxError },
    /// The seal is genuine but over another block hash than the header's.
    #[error(
        "the block seal is over block {sealed}, but the header hashes to {header}; the header was altered (any field: height, timestamp, roots, …) or the seal belongs to another block"
    )]
    SealOtherBlock {
        sealed: BlockHash,
        header: BlockHash,
    },
    /// The commit certificate does not decide the header under the validator set.
    #[error(
        "the block's commit certificate does not decide this header under the genesis validator set: {reason}"
    )]
    Certificate {
        /// Why.
        reason: types::CertificateError,
    },
    /// The header names another validator set than the genesis file's.
    #[error(
        "the block was decided by validator set {header}, not the genesis file's set {genesis}, and the receipt carries no certified chain of validator-set changes; verify against this chain's genesis file"
    )]
    ValidatorSet {
        /// The header's.
        header: Digest,
        /// The genesis file's.
        genesis: Digest,
    },
    /// A validator-set change the receipt carries is not certified by the set before it.
    #[error(
        "validator-set change {index} of the receipt does not follow from the set before it: {reason}; the receipt was altered or built for another chain"
    )]
    SetChange {
        /// Its index in the receipt.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A seal over a v2 header, or a certificate over a v1 header.
    #[error(
        "the receipt finalises a version-{header_version} header with a {finality}, which only a version-{expected} header has"
    )]
    FinalityFormat {
        /// The header's version.
        header_version: u8,
        /// "seal" or "commit certificate".
        finality: &'static str,
        /// The header version that finality goes with.
        expected: u8,
    },
    /// A version-1 seal against a genesis of several validators.
    #[error(
        "the receipt is finalised by one validator's seal (version 1), but the genesis file names {validators} validators: only a single-validator chain's seal proves finality; verify against the genesis file of the receipt's own chain"
    )]
    SealOnConsortium {
        /// How many validators the genesis names.
        validators: usize,
    },
    /// The transaction's entry hash is not at `position` under the header's transactions root.
    #[error(
        "the transaction is not at position {position} of the block's {tx_count} transactions under the header's tx_root ({problem}); the transaction, the position or tx_proof was altered"
    )]
    TxNotInBlock {
        position: u32,
        tx_count: u32,
        problem: ProofError,
    },
    /// The receipt's hash is not at `position` under the header's receipts root.
    #[error(
        "the execution result is not at position {position} of the block's {tx_count} results under the header's receipts_root ({problem}); the receipt, the position or receipt_proof was altered"
    )]
    ResultNotInBlock {
        position: u32,
        tx_count: u32,
        problem: ProofError,
    },
    /// The receipt in the block at `position` is for another transaction.
    #[error(
        "the execution result at this position is for transaction {receipt_tx}, not for the receipt's transaction {tx}; the receipt file does not prove this transaction"
    )]
    ResultOtherTx { receipt_tx: TxId, tx: TxId },
    /// The transaction was committed but failed.
    #[error(
        "the transaction was committed but its execution failed (code {code}: {message:?}); it changed nothing and proves nothing"
    )]
    NotSuccessful { code: u32, message: String },
    /// The bundle carries no signer certificate.
    #[error(
        "the receipt carries no signer certificate (`chain` is empty); obtain the receipt again from a node"
    )]
    SignerMissing,
    /// The first certificate of the chain is not the transaction's sender.
    #[error(
        "the transaction's sender is certificate {sender}, but the receipt's first certificate is {certificate} (SM3 of DER); the certificate chain was altered or swapped"
    )]
    SignerMismatch { sender: Digest, certificate: Digest },
    /// The signer's certificate chain is not valid at the block's time under the genesis CAs.
    #[error(
        "the signer's certificate {subject:?} is not valid at the block time {at} under the genesis CA certificates and the receipt's CRLs: {reason} ({code}); {hint}",
        code = reason.code(),
        hint = signer_chain_hint(reason)
    )]
    SignerChain {
        subject: String,
        at: UnixTime,
        /// Boxed: the largest variant by far.
        reason: Box<ChainError>,
    },
    /// An anchor proof the receipt carries does not prove a founding organisation of the
    /// chain at the receipt's block.
    #[error(
        "anchor proof {index} of the receipt does not prove a trust anchor of the chain at the receipt's block: {reason}; the receipt was altered, or obtain it again from a node"
    )]
    AnchorProof {
        /// Its index in the receipt.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The transaction's signature does not verify with the signer's certificate.
    #[error(
        "the transaction's SM2 signature does not verify with the key of {subject:?} and the transaction's user ID ({reason}); the transaction was altered"
    )]
    TxSignature { subject: String, reason: TxError },
    /// A document was given, but the transaction is not an anchoring.
    #[error(
        "a document was given, but the transaction calls {contract}.{method}, not attestation.anchor with a 32-byte SM3 digest as args[0]; this receipt anchors no document"
    )]
    NotAnAttestation { contract: String, method: String },
    /// The document's SM3 digest is not the anchored one.
    #[error(
        "the document's SM3 digest is {document}, but the transaction anchored {anchored}; this is not the anchored document (or it was altered)"
    )]
    DocumentMismatch { anchored: Digest, document: Digest },
    /// A receipt could not be built from the node's block (a node-side inconsistency).
    #[error("cannot build a receipt: {problem}")]
    Build { problem: BuildProblem },
}

impl ReceiptError {
    /// Returns a stable code for the API edge.
    pub fn code(&self) -> &'static codes::Code {
        match self {
            ReceiptError::TooLarge { .. } => &codes::RECEIPT_TOO_LARGE,
            ReceiptError::UnsupportedFormat { .. } => &codes::RECEIPT_UNSUPPORTED_FORMAT,
            ReceiptError::Malformed { .. } => &codes::RECEIPT_MALFORMED,
            ReceiptError::WrongChain { .. } => &codes::RECEIPT_WRONG_CHAIN,
            ReceiptError::SealUnknownValidator { .. } => &codes::RECEIPT_SEAL_UNKNOWN_VALIDATOR,
            ReceiptError::SealNotProposer { .. } => &codes::RECEIPT_SEAL_NOT_PROPOSER,
            ReceiptError::SealSignature { .. } => &codes::RECEIPT_SEAL_SIGNATURE,
            ReceiptError::SealOtherBlock { .. } => &codes::RECEIPT_SEAL_OTHER_BLOCK,
            ReceiptError::Certificate { .. } => &codes::RECEIPT_CERTIFICATE,
            ReceiptError::ValidatorSet { .. } | ReceiptError::SetChange { .. } => {
                &codes::RECEIPT_VALIDATOR_SET
            }
            ReceiptError::FinalityFormat { .. } | ReceiptError::SealOnConsortium { .. } => {
                &codes::RECEIPT_FINALITY_FORMAT
            }
            ReceiptError::TxNotInBlock { .. } => &codes::RECEIPT_TX_NOT_IN_BLOCK,
            ReceiptError::ResultNotInBlock { .. } => &codes::RECEIPT_RESULT_NOT_IN_BLOCK,
            ReceiptError::ResultOtherTx { .. } => &codes::RECEIPT_RESULT_OTHER_TX,
            ReceiptError::NotSuccessful { .. } => &codes::RECEIPT_NOT_SUCCESSFUL,
            ReceiptError::SignerMissing => &codes::RECEIPT_SIGNER_MISSING,
            ReceiptError::SignerMismatch { .. } => &codes::RECEIPT_SIGNER_MISMATCH,
            ReceiptError::SignerChain { .. } | ReceiptError::AnchorProof { .. } => {
                &codes::RECEIPT_SIGNER_CHAIN
            }
            ReceiptError::TxSignature { .. } => &codes::RECEIPT_TX_SIGNATURE,
            ReceiptError::NotAnAttestation { .. } => &codes::RECEIPT_NOT_AN_ATTESTATION,
            ReceiptError::DocumentMismatch { .. } => &codes::RECEIPT_DOCUMENT_MISMATCH,
            ReceiptError::Build { .. } => &codes::RECEIPT_BUILD,
        }
    }
}

/// What to do about a signer chain failure, for someone holding only a receipt file.
fn signer_chain_hint(reason: &ChainError) -> &'static str {
    match reason {
        ChainError::RevocationUnknown { .. } => {
            "a receipt must carry, for each issuer in the chain, a CRL current at the block time; obtain the receipt again from a node"
        }
        ChainError::NoPathToAnchor { .. } | ChainError::NameChaining { .. } => {
            "the chain must lead to a CA certificate of this chain's genesis file, or of an organisation its governance registered (the receipt then carries its anchor proof): check that the genesis file is the chain's, or obtain the receipt again with the intermediate certificates"
        }
        other => other.hint(),
    }
}

/// What is wrong with a field of a receipt file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformation {
    /// Not JSON, not the expected structure, an unknown or duplicated field, a wrong type.
    #[error("{message} (line {line}, column {column})")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    /// Not lower-case hexadecimal with an even number of digits.
    #[error("not lower-case hexadecimal of whole bytes")]
    NotHex,
    /// Longer than the field may be.
    #[error("{len} characters, more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    /// More list entries than allowed.
    #[error("{count} entries, more than the {max} allowed")]
    TooMany { count: usize, max: usize },
    /// An empty list that needs at least one entry.
    #[error("empty, at least one entry is required")]
    Empty,
    /// A field the file's version requires is missing, or one it does not have is present.
    #[error("a version-{version} receipt has {expected} (and not the other finality field)")]
    Finality {
        /// The file's version.
        version: u64,
        /// What it must have: "a `seal`" or "a `certificate`".
        expected: &'static str,
    },
    /// Hex of bytes that are not the canonical encoding (docs/formats.md).
    #[error("{0}")]
    Decode(DecodeError),
    /// PEM that is not an SM2 certificate or CRL gmchain reads.
    #[error("{0}")]
    Pki(PkiError),
    /// Bytes that are not a canonical state proof.
    #[error("not a canonical state proof: {0}")]
    State(String),
}

/// Why a node could not build a receipt from a block: the inputs disagree with each other.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildProblem {
    /// The position is not that of a transaction in the block.
    #[error("position {position} is not below the block's {count} transactions")]
    PositionOutOfRange { position: u32, count: usize },
    /// The header's transaction count differs from the block's transactions.
    #[error("header.tx_count is {declared}, but the block holds {count} transactions")]
    TxCount { declared: u32, count: usize },
    /// There is not one receipt per transaction.
    #[error("{receipts} receipts for {txs} transactions")]
    ReceiptCount { receipts: usize, txs: usize },
    /// The header's transactions root is not the root of the block's transactions.
    #[error("header.tx_root is not the Merkle root of the block's transactions")]
    TxRoot,
    /// The header's receipts root is not the root of the receipts given.
    #[error("header.receipts_root is not the Merkle root of the receipts given")]
    ReceiptsRoot,
    /// The receipt at the position is for another transaction.
    #[error("the receipt at the position is for transaction {receipt_tx}, not {tx}")]
    ReceiptForOtherTx { receipt_tx: TxId, tx: TxId },
    /// The seal is over another block.
    #[error("the seal is over block {sealed}, not this block {block}")]
    SealForOtherBlock { sealed: BlockHash, block: BlockHash },
}

impl codes::Coded for ReceiptError {
    fn code(&self) -> &'static codes::Code {
        ReceiptError::code(self)
    }

    fn class(&self) -> codes::Class {
        self.code().class
    }
}
