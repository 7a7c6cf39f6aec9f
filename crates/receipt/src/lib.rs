//! Receipts: a self-contained proof that a transaction was committed to a gmchain block and
//! executed successfully, which anyone verifies offline against only the chain's genesis file
//! (chain ID, validator certificates, CA certificates). A receipt carries the signed
//! transaction and its Merkle path to the header's transactions root, its execution result and
//! that result's path to the receipts root, the header, the proposer's block seal, and the
//! signer's certificate chain with the CRLs that judge it. For a document anchoring
//! (`attestation.anchor`), it also proves that the anchored digest is the SM3 of a given file.
//!
//! [`ReceiptBundle::build`] makes one from a committed block; [`ReceiptBundle::to_json`] and
//! [`ReceiptBundle::from_json`] write and read the file (docs/receipts.md §2);
//! [`ReceiptBundle::verify`] checks it and returns a [`VerifiedReceipt`], which nothing else
//! constructs. Each check fails with its own [`ReceiptError`] variant and stable code.
//!
//! What it refuses to do: read a clock, a file, a socket or an entropy source (the block's own
//! timestamp is the time certificates are judged at; the caller reads the files); consult
//! anything but the genesis file and the receipt (no node, no online revocation: the CRLs are
//! those the receipt carries); accept a seal from a key not listed as a validator in the
//! genesis file; read a file over [`MAX_FILE_LEN`] bytes, an unknown field, format or version,
//! or any encoding not decoded under [`types::Limits`]. It does not yet prove finality under
//! BFT: a single proposer's seal stands in for the quorum certificate to come.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bundle;
mod error;
mod json;

pub use bundle::{
    ATTESTATION_CONTRACT, ATTESTATION_METHOD, AnchorProof, Cause, CertifiedHeader, Finality,
    ReceiptBundle, SetChange, TrustContext, VerifiedReceipt, org_record_key,
};
pub use error::{BuildProblem, Malformation, ReceiptError};
pub use json::{
    FORMAT, MAX_ANCHOR_PROOFS, MAX_CAUSES, MAX_CRLS, MAX_FILE_LEN, MAX_SET_CHANGES, VERSION,
    VERSIONS_READ,
};
