//! The attestation proof (数据存证, GZ-6.2): an anchored document's receipt verifies offline
//! against the genesis file, and an altered document or header does not.

use super::error::NodeCheckError;
use super::submit::{anchor, body, commit, ev, hex32, random, sign};
use super::{NodeProbe, genesis};
use crate::checks::Evidence;
use receipt::ReceiptError;

const SRC_RECEIPT: &str = "live node; expected: docs/receipts.md, verified offline";

pub(super) fn attestation_proof(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (g, _) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return vec![ev("the genesis file", SRC_RECEIPT, Err(e))],
    };
    let consortium = match g.consortium() {
        Ok(c) => c,
        Err(source) => {
            return vec![ev(
                "the genesis file's consortium",
                SRC_RECEIPT,
                Err(NodeCheckError::Consortium { source }),
            )];
        }
    };
    let trust = receipt::TrustContext {
        chain_id: g.chain_id.clone(),
        validators: g.validators.iter().map(|v| v.cert.clone()).collect(),
        consortium,
    };
    // The ceiling the chain's parameters may reach, as `gmchain receipt verify` decodes.
    let limits = types::Limits::default();
    let doc = match random::<48>(p) {
        Ok(r) => {
            let mut d = b"gmchain conformance GZ-6.2 document ".to_vec();
            d.extend_from_slice(hex::encode(r).as_bytes());
            d
        }
        Err(e) => return vec![ev("a random document", SRC_RECEIPT, Err(e))],
    };
    let digest = crypto_sm::sm3::sm3(&doc);
    let committed = p.status().map_err(NodeCheckError::from).and_then(|st| {
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
            out.push(ev(
                "the node returns the receipt file",
                SRC_RECEIPT,
                Err(e.into()),
            ));
            return out;
        }
    };
    let verify = |json: &[u8], doc: &[u8]| -> Result<receipt::VerifiedReceipt, ReceiptError> {
        receipt::ReceiptBundle::from_json(json, &limits)?.verify(&trust, Some(doc))
    };
    // A refusal as the report shows it: its stable code, then its message.
    let coded = |e: ReceiptError| {
        NodeCheckError::Receipt {
            source: Box::new(e),
        }
        .why()
    };
    let verified = verify(json.as_bytes(), &doc).map_err(|e| NodeCheckError::Receipt {
        source: Box::new(e),
    });
    out.push(ev(
        "the receipt verifies offline against the genesis file and the document (signer chain, SM2 signature, Merkle inclusion, the block's commit certificate)",
        SRC_RECEIPT,
        verified.and_then(|v| {
            if v.tx_id.0.0 != c.id || v.height.0 != c.height {
                return Err(NodeCheckError::ReceiptForOther { tx: v.tx_id, height: v.height });
            }
            if v.document_digest != Some(digest) || v.anchored_digest != Some(digest) {
                return Err(NodeCheckError::ReceiptNotAnchoring);
            }
            Ok(format!(
                "tx {} at height {} in block {}, signer {} ({}), proposed by {}, time {} ms",
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
            Ok(_) => Err(NodeCheckError::AlteredVerified { what: "document" }),
            Err(e @ ReceiptError::DocumentMismatch { .. }) => Ok(coded(e)),
            Err(e) => Err(NodeCheckError::ReceiptRefusedOtherwise {
                source: Box::new(e),
            }),
        },
    ));
    out.push(ev(
        "NEG: a receipt whose header has one byte altered (its timestamp) does not verify",
        SRC_RECEIPT,
        alter_header(&json).and_then(|bad| match verify(bad.as_bytes(), &doc) {
            Ok(_) => Err(NodeCheckError::AlteredVerified { what: "receipt" }),
            Err(e) => Ok(coded(e)),
        }),
    ));
    out
}

/// The receipt file with one byte of the header's timestamp flipped (still a valid header).
fn alter_header(json: &str) -> Result<String, NodeCheckError> {
    let json_error = |source| NodeCheckError::ReceiptJson { source };
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(json_error)?;
    let hex_header = v
        .get("header")
        .and_then(|h| h.as_str())
        .ok_or(NodeCheckError::ReceiptNoHeader)?;
    let mut header =
        hex::decode(hex_header).map_err(|source| NodeCheckError::ReceiptHeaderHex { source })?;
    // The timestamp's last byte sits before the 32-byte proposer at the end.
    let i = header
        .len()
        .checked_sub(33)
        .ok_or(NodeCheckError::ReceiptHeaderShort { len: header.len() })?;
    header[i] ^= 0x01;
    v["header"] = serde_json::Value::String(hex::encode(header));
    serde_json::to_string_pretty(&v).map_err(json_error)
}
