//! Offline receipt verification, delegated to the `receipt` crate: no node is asked.

use std::path::Path;

use execution::Genesis;
use receipt::{ReceiptBundle, TrustContext, VerifiedReceipt};
use types::Limits;

use crate::SdkError;

/// What a receipt's verification trusts: the chain id, the genesis validators and the
/// consortium (the founding organisations' CAs) of `genesis`.
pub fn trust_context(genesis: &Genesis) -> Result<TrustContext, execution::GenesisError> {
    Ok(TrustContext {
        chain_id: genesis.chain_id.clone(),
        validators: genesis.validators.iter().map(|v| v.cert.clone()).collect(),
        consortium: genesis.consortium()?,
    })
}

/// A receipt that verified, with the bundle it came in (its receipt's fields are covered by
/// the verified receipts root).
#[derive(Debug)]
pub struct Verified {
    /// The receipt bundle as read.
    pub bundle: ReceiptBundle,
    /// What verification established: transaction, block, finality, signer, document.
    pub verified: VerifiedReceipt,
}

/// Verifies the offline receipt `receipt_json` against `trust`, and that it anchors
/// `document`'s SM3 if a document is given.
pub fn verify_receipt(
    receipt_json: &[u8],
    trust: &TrustContext,
    document: Option<&[u8]>,
) -> Result<Verified, SdkError> {
    let bundle = ReceiptBundle::from_json(receipt_json, &Limits::default())?;
    let verified = bundle.verify(trust, document)?;
    Ok(Verified { bundle, verified })
}

/// Verifies the offline receipt `receipt_json` against the chain's genesis file, and that it
/// anchors `document`'s SM3 if a document is given. A receipt that does not verify is
/// [`SdkError::Receipt`] (class not verified) naming the failing part.
pub fn verify_receipt_offline(
    receipt_json: &[u8],
    genesis_file: &Path,
    document: Option<&[u8]>,
) -> Result<Verified, SdkError> {
    let bad = |reason: String| SdkError::Genesis {
        path: genesis_file.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(genesis_file).map_err(|e| bad(e.to_string()))?;
    let genesis = Genesis::from_json(&bytes).map_err(|e| bad(e.to_string()))?;
    let trust = trust_context(&genesis).map_err(|e| bad(e.to_string()))?;
    verify_receipt(receipt_json, &trust, document)
}
