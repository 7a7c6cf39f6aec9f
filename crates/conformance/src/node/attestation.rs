//! The attestation proof (数据存证, GZ-6.2): an anchored document's receipt verifies offline
//! against the genesis file, and an altered document or header does not.

use super::submit::{anchor, body, commit, ev, hex32, random, sign};
use super::{NodeProbe, genesis};
use crate::checks::Evidence;

const SRC_RECEIPT: &str = "live node; expected: docs/receipts.md, verified offline";

pub(super) fn attestation_proof(p: &dyn NodeProbe) -> Vec<Evidence> {
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

/// The receipt file with one byte of the header's timestamp flipped (still a valid header).
pub(super) fn alter_header(json: &str) -> Result<String, String> {
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
