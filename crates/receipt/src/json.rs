//! The receipt file (docs/receipts.md §2): a JSON object whose values are lower-case hex of the
//! canonical `types` encodings and PEM certificates and CRLs, read strictly and under limits.

use crate::bundle::{AnchorProof, Cause, CertifiedHeader, Finality, ReceiptBundle, SetChange};
use crate::error::{Malformation, ReceiptError};
use pki::{Certificate, Crl};
use serde::{Deserialize, Serialize};
use types::merkle::InclusionProof;
use types::{BlockHeader, CommitCertificate, Decode, Encode, Limits, Receipt, SignedTx};

/// The value of the file's `format` field.
pub const FORMAT: &str = "gmchain-receipt";
/// The value of the file's `version` field that this release writes: 2, a block finalised by
/// its commit certificate (field `certificate`). Version 1 (field `seal`, a single-validator
/// chain's) is still read and verified.
pub const VERSION: u64 = 2;
/// The versions this release reads.
pub const VERSIONS_READ: [u64; 2] = [1, 2];
/// The largest receipt file read, in bytes; a larger one is refused before parsing.
pub const MAX_FILE_LEN: usize = 4 * 1024 * 1024;
/// The most CRLs a receipt carries (one per issuer of a path of at most `pki::MAX_PATH_LEN`).
pub const MAX_CRLS: usize = pki::MAX_PATH_LEN;

/// The largest canonical header: version, tag, chain ID (4 + 64), height, tx count, five
/// digests, timestamp, and a v2 header's three consensus digests.
const MAX_HEADER_LEN: usize = 2 + 4 + types::MAX_CHAIN_ID_LEN + 8 + 4 + 5 * 32 + 8 + 3 * 32;
/// The most validator-set changes a receipt carries.
pub const MAX_SET_CHANGES: usize = 256;
/// The most causes one change carries.
pub const MAX_CAUSES: usize = 64;
/// The most anchor proofs a receipt carries: its signer's path has one anchor.
pub const MAX_ANCHOR_PROOFS: usize = 1;
/// The largest organisation record of an anchor proof: a name, a CA certificate and up to 8
/// former ones, and the fixed fields.
const MAX_ORG_RECORD_LEN: usize = 2 + 2 * (4 + 256) + 8 + 8 + 4 + 9 * (4 + pki::MAX_CERT_LEN);
/// The largest state proof: flag, leaf hashes, count, bitmap, 256 siblings.
const MAX_STATE_PROOF_LEN: usize =
    1 + 64 + 2 + state::MAX_PROOF_SIBLINGS / 8 + 32 * state::MAX_PROOF_SIBLINGS;
/// The largest canonical commit certificate: version, tag, height, round, block hash, count,
/// and per validator an id and a length-prefixed DER signature.
const MAX_CERTIFICATE_LEN: usize =
    2 + 8 + 4 + 32 + 4 + types::MAX_VALIDATORS * (32 + 4 + types::MAX_SIGNATURE_DER_LEN);
/// The largest canonical seal: version, tag, two digests, a length-prefixed DER signature.
const MAX_SEAL_LEN: usize = 2 + 2 * 32 + 4 + types::MAX_SIGNATURE_DER_LEN;

/// The file as written. Field order is the order `to_json` writes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptFile {
    format: String,
    version: u64,
    header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    position: u32,
    tx: String,
    tx_proof: String,
    receipt: String,
    receipt_proof: String,
    chain: Vec<String>,
    crls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    validator_changes: Vec<SetChangeFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    anchor_proofs: Vec<AnchorProofFile>,
}

/// One anchor proof as written (docs/receipts.md §2): the organisation record and its state
/// proof, both lower-case hex.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorProofFile {
    record: String,
    proof: String,
}

/// One validator-set change as written (docs/receipts.md §2).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetChangeFile {
    header: String,
    certificate: String,
    validators: Vec<String>,
    causes: Vec<CauseFile>,
}

/// One cause of a change as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CauseFile {
    header: String,
    certificate: String,
    position: u32,
    tx: String,
    tx_proof: String,
}

/// The first pass: only the format tag and version, so that a file of another version is
/// refused as such rather than for the fields it has.
#[derive(Debug, Deserialize)]
struct Probe {
    format: String,
    version: u64,
}

fn malformed(field: impl Into<String>, problem: Malformation) -> ReceiptError {
    ReceiptError::Malformed {
        field: field.into(),
        problem,
    }
}

fn json_error(e: &serde_json::Error) -> ReceiptError {
    // serde_json's Display appends " at line L column C"; keep the position as fields only.
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    malformed(
        "file",
        Malformation::Json {
            message,
            line: e.line(),
            column: e.column(),
        },
    )
}

/// Decodes the lower-case hex of at most `max` bytes in `field`.
fn hex_field(field: &'static str, s: &str, max: usize) -> Result<Vec<u8>, ReceiptError> {
    let max_chars = max.saturating_mul(2);
    if s.len() > max_chars {
        return Err(malformed(
            field,
            Malformation::TooLong {
                len: s.len(),
                max: max_chars,
            },
        ));
    }
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(malformed(field, Malformation::NotHex));
    }
    hex::decode(s).map_err(|_| malformed(field, Malformation::NotHex))
}

/// Decodes the canonical encoding of a `T` from the hex in `field`.
fn decoded<T: Decode>(
    field: &'static str,
    s: &str,
    max: usize,
    limits: &Limits,
) -> Result<T, ReceiptError> {
    let bytes = hex_field(field, s, max)?;
    T::from_bytes(&bytes, limits).map_err(|e| malformed(field, Malformation::Decode(e)))
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), ReceiptError> {
    if count > max {
        return Err(malformed(field, Malformation::TooMany { count, max }));
    }
    Ok(())
}

impl ReceiptBundle {
    /// Returns the receipt file (docs/receipts.md §2): pretty-printed JSON, one field per line,
    /// ending in a newline.
    pub fn to_json(&self) -> String {
        let file = ReceiptFile {
            format: FORMAT.to_string(),
            version: match self.finality {
                Finality::Seal(_) => 1,
                Finality::Certificate(_) => VERSION,
            },
            header: hex::encode(self.header.to_bytes()),
            seal: match &self.finality {
                Finality::Seal(s) => Some(hex::encode(s.to_bytes())),
                Finality::Certificate(_) => None,
            },
            certificate: match &self.finality {
                Finality::Certificate(c) => Some(hex::encode(c.to_bytes())),
                Finality::Seal(_) => None,
            },
            position: self.position,
            tx: hex::encode(self.tx.to_bytes()),
            tx_proof: hex::encode(self.tx_proof.to_bytes()),
            receipt: hex::encode(self.receipt.to_bytes()),
            receipt_proof: hex::encode(self.receipt_proof.to_bytes()),
            chain: self.chain.iter().map(Certificate::to_pem).collect(),
            crls: self.crls.iter().map(Crl::to_pem).collect(),
            validator_changes: write_set_changes(&self.set_changes),
            anchor_proofs: self
                .anchor_proofs
                .iter()
                .map(|a| AnchorProofFile {
                    record: hex::encode(&a.record),
                    proof: hex::encode(a.proof.encode()),
                })
                .collect(),
        };
        // Serialising strings, integers and lists of strings into memory cannot fail; were it
        // to, the empty output is refused by `from_json` rather than read as a receipt.
        let mut out = serde_json::to_string_pretty(&file).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Reads a receipt file strictly: at most [`MAX_FILE_LEN`] bytes (checked before parsing);
    /// a JSON object with format `gmchain-receipt` and version 1 or 2 (checked before the
    /// other fields; version 1 has a `seal`, version 2 a `certificate`, never both); exactly the documented fields, none unknown or repeated; lower-case hex of
    /// canonical encodings decoded under `limits`; PEM certificates (at most
    /// `pki::MAX_PATH_LEN`, each at most `limits.max_cert_size` bytes of DER) and CRLs (at most
    /// [`MAX_CRLS`]). Each error names the field. Reading checks form only: believe the
    /// contents after [`ReceiptBundle::verify`].
    pub fn from_json(bytes: &[u8], limits: &Limits) -> Result<ReceiptBundle, ReceiptError> {
        if bytes.len() > MAX_FILE_LEN {
            return Err(ReceiptError::TooLarge {
                len: bytes.len(),
                max: MAX_FILE_LEN,
            });
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        if probe.format != FORMAT || !VERSIONS_READ.contains(&probe.version) {
            return Err(ReceiptError::UnsupportedFormat {
                format: probe.format,
                version: probe.version,
            });
        }
        let file: ReceiptFile = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;

        let header: BlockHeader = decoded("header", &file.header, MAX_HEADER_LEN, limits)?;
        let finality = match (probe.version, &file.seal, &file.certificate) {
            (1, Some(seal), None) => Finality::Seal(decoded("seal", seal, MAX_SEAL_LEN, limits)?),
            (1, _, _) => {
                return Err(malformed(
                    "seal",
                    Malformation::Finality {
                        version: 1,
                        expected: "a `seal`",
                    },
                ));
            }
            (_, None, Some(cert)) => Finality::Certificate(decoded::<CommitCertificate>(
                "certificate",
                cert,
                MAX_CERTIFICATE_LEN,
                limits,
            )?),
            (version, _, _) => {
                return Err(malformed(
                    "certificate",
                    Malformation::Finality {
                        version,
                        expected: "a `certificate`",
                    },
                ));
            }
        };
        let proof_max = 2 + 4 + limits.max_proof_len.saturating_mul(32);
        let tx: SignedTx = decoded("tx", &file.tx, limits.max_tx_size, limits)?;
        let tx_proof: InclusionProof = decoded("tx_proof", &file.tx_proof, proof_max, limits)?;
        let receipt: Receipt = decoded("receipt", &file.receipt, limits.max_receipt_size, limits)?;
        let receipt_proof: InclusionProof =
            decoded("receipt_proof", &file.receipt_proof, proof_max, limits)?;

        check_count("chain", file.chain.len(), pki::MAX_PATH_LEN)?;
        if file.chain.is_empty() {
            return Err(malformed("chain", Malformation::Empty));
        }
        let mut chain = Vec::with_capacity(file.chain.len());
        for (i, pem) in file.chain.iter().enumerate() {
            chain.push(pem_cert(format!("chain[{i}]"), pem, limits)?);
        }
        check_count("crls", file.crls.len(), MAX_CRLS)?;
        let mut crls = Vec::with_capacity(file.crls.len());
        for (i, pem) in file.crls.iter().enumerate() {
            let crl = Crl::from_pem(pem.as_bytes())
                .map_err(|e| malformed(format!("crls[{i}]"), Malformation::Pki(e)))?;
            crls.push(crl);
        }

        if probe.version == 1 && !file.validator_changes.is_empty() {
            return Err(malformed(
                "validator_changes",
                Malformation::Finality {
                    version: 1,
                    expected: "no `validator_changes`",
                },
            ));
        }
        let set_changes = read_set_changes(&file.validator_changes, limits, proof_max)?;

        if probe.version == 1 && !file.anchor_proofs.is_empty() {
            return Err(malformed(
                "anchor_proofs",
                Malformation::Finality {
                    version: 1,
                    expected: "no `anchor_proofs`",
                },
            ));
        }
        check_count("anchor_proofs", file.anchor_proofs.len(), MAX_ANCHOR_PROOFS)?;
        let mut anchor_proofs = Vec::with_capacity(file.anchor_proofs.len());
        for a in &file.anchor_proofs {
            let record = hex_field("anchor_proofs[].record", &a.record, MAX_ORG_RECORD_LEN)?;
            let proof = hex_field("anchor_proofs[].proof", &a.proof, MAX_STATE_PROOF_LEN)?;
            let proof = state::Proof::decode(&proof).map_err(|e| {
                malformed("anchor_proofs[].proof", Malformation::State(e.to_string()))
            })?;
            anchor_proofs.push(AnchorProof { record, proof });
        }

        Ok(ReceiptBundle {
            tx,
            position: file.position,
            tx_proof,
            receipt,
            receipt_proof,
            header,
            finality,
            chain,
            crls,
            set_changes,
            anchor_proofs,
        })
    }
}

fn write_set_changes(changes: &[SetChange]) -> Vec<SetChangeFile> {
    changes
        .iter()
        .map(|c| SetChangeFile {
            header: hex::encode(c.header.to_bytes()),
            certificate: hex::encode(c.certificate.to_bytes()),
            validators: c.validators.iter().map(Certificate::to_pem).collect(),
            causes: c
                .causes
                .iter()
                .map(|k| CauseFile {
                    header: hex::encode(k.header.to_bytes()),
                    certificate: hex::encode(k.certificate.to_bytes()),
                    position: k.position,
                    tx: hex::encode(k.tx.to_bytes()),
                    tx_proof: hex::encode(k.tx_proof.to_bytes()),
                })
                .collect(),
        })
        .collect()
}

fn read_set_changes(
    files: &[SetChangeFile],
    limits: &Limits,
    proof_max: usize,
) -> Result<Vec<SetChange>, ReceiptError> {
    check_count("validator_changes", files.len(), MAX_SET_CHANGES)?;
    let mut set_changes = Vec::with_capacity(files.len());
    for c in files {
        check_count(
            "validator_changes[].validators",
            c.validators.len(),
            types::MAX_VALIDATORS,
        )?;
        check_count("validator_changes[].causes", c.causes.len(), MAX_CAUSES)?;
        let mut validators = Vec::with_capacity(c.validators.len());
        for (i, pem) in c.validators.iter().enumerate() {
            validators.push(pem_cert(
                format!("validator_changes[].validators[{i}]"),
                pem,
                limits,
            )?);
        }
        let mut causes = Vec::with_capacity(c.causes.len());
        for k in &c.causes {
            causes.push(Cause {
                header: decoded(
                    "validator_changes[].causes[].header",
                    &k.header,
                    MAX_HEADER_LEN,
                    limits,
                )?,
                certificate: decoded(
                    "validator_changes[].causes[].certificate",
                    &k.certificate,
                    MAX_CERTIFICATE_LEN,
                    limits,
                )?,
                position: k.position,
                tx: decoded(
                    "validator_changes[].causes[].tx",
                    &k.tx,
                    limits.max_tx_size,
                    limits,
                )?,
                tx_proof: decoded(
                    "validator_changes[].causes[].tx_proof",
                    &k.tx_proof,
                    proof_max,
                    limits,
                )?,
            });
        }
        set_changes.push(SetChange {
            header: decoded(
                "validator_changes[].header",
                &c.header,
                MAX_HEADER_LEN,
                limits,
            )?,
            certificate: decoded(
                "validator_changes[].certificate",
                &c.certificate,
                MAX_CERTIFICATE_LEN,
                limits,
            )?,
            validators,
            causes,
        });
    }
    Ok(set_changes)
}

/// A certified header as written in an audit report (docs/audit.md): the header and its commit
/// certificate as lower-case hex of their canonical encodings, and the validator-set changes
/// from genesis as in a receipt.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertifiedHeaderFile {
    header: String,
    certificate: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    validator_changes: Vec<SetChangeFile>,
}

impl CertifiedHeader {
    /// Returns the JSON value written in an audit report.
    pub fn to_json_value(&self) -> serde_json::Value {
        let file = CertifiedHeaderFile {
            header: hex::encode(self.header.to_bytes()),
            certificate: hex::encode(self.certificate.to_bytes()),
            validator_changes: write_set_changes(&self.set_changes),
        };
        serde_json::to_value(&file).unwrap_or(serde_json::Value::Null)
    }

    /// Reads the JSON value of an audit report strictly (unknown fields refused, hex of
    /// canonical encodings decoded under `limits`). Believe it after [`CertifiedHeader::verify`].
    pub fn from_json_value(
        v: &serde_json::Value,
        limits: &Limits,
    ) -> Result<CertifiedHeader, ReceiptError> {
        let file: CertifiedHeaderFile =
            serde_json::from_value(v.clone()).map_err(|e| json_error(&e))?;
        let proof_max = 2 + 4 + limits.max_proof_len.saturating_mul(32);
        Ok(CertifiedHeader {
            header: decoded("header", &file.header, MAX_HEADER_LEN, limits)?,
            certificate: decoded(
                "certificate",
                &file.certificate,
                MAX_CERTIFICATE_LEN,
                limits,
            )?,
            set_changes: read_set_changes(&file.validator_changes, limits, proof_max)?,
        })
    }
}

/// Reads a PEM certificate of at most `limits.max_cert_size` bytes of DER in `field`.
fn pem_cert(field: String, pem: &str, limits: &Limits) -> Result<Certificate, ReceiptError> {
    let cert = Certificate::from_pem(pem.as_bytes())
        .map_err(|e| malformed(field.clone(), Malformation::Pki(e)))?;
    if cert.der().len() > limits.max_cert_size {
        return Err(malformed(
            field,
            Malformation::TooLong {
                len: cert.der().len(),
                max: limits.max_cert_size,
            },
        ));
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_whole_bytes_and_bounded() {
        assert_eq!(hex_field("f", "00ff", 2).unwrap(), vec![0x00, 0xff]);
        assert_eq!(hex_field("f", "", 2).unwrap(), Vec::<u8>::new());
        for bad in ["0", "00FF", "0x00", "zz", "00 ff"] {
            assert_eq!(
                hex_field("f", bad, 8).unwrap_err(),
                malformed("f", Malformation::NotHex),
                "{bad:?}"
            );
        }
        // The length is checked before any character.
        assert_eq!(
            hex_field("f", "ZZZZZZ", 2).unwrap_err(),
            malformed("f", Malformation::TooLong { len: 6, max: 4 })
        );
    }

    #[test]
    fn json_errors_keep_the_position_as_fields() {
        let e = serde_json::from_slice::<Probe>(b"{\n  \"format\": 1}").unwrap_err();
        match json_error(&e) {
            ReceiptError::Malformed {
                field,
                problem:
                    Malformation::Json {
                        message,
                        line,
                        column,
                    },
            } => {
                assert_eq!(field, "file");
                assert_eq!(line, 2);
                assert!(column > 0);
                assert!(!message.contains(" at line "), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn size_bounds_cover_the_largest_encodings() {
        // A header with the longest chain ID, and a seal with the longest signature, fit.
        assert_eq!(MAX_HEADER_LEN, 2 + 68 + 8 + 4 + 160 + 8 + 96);
        assert_eq!(MAX_SEAL_LEN, 2 + 64 + 4 + 72);
    }
}
