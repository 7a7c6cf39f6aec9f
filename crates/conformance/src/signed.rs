//! The signed report: `report.json` with a `signature` member holding an auditor's SM2 signature
//! over the report's canonical bytes, the auditor's certificate and its chain; and the check of
//! that signature. The caller validates the auditor's chain (`pki::validate_chain` with
//! `Role::Auditor`, with the anchors and CRLs the verifier trusts), since which anchors and
//! CRLs to trust is the verifier's choice, not the report's.
//!
//! Canonical bytes (conformance/README.md, "Signed reports"): the report's JSON object without
//! its `signature` member, written with no whitespace, object members sorted by key (UTF-8 byte
//! order), strings with only `"`, `\` and U+0000..U+001F escaped (`\b \f \n \r \t`, otherwise
//! `\u00xx`, lower-case hex), other characters as UTF-8, numbers only integers in plain decimal.
//! That is Python's `json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`,
//! and RFC 8785's output for every report gmchain writes (ASCII keys, integers below 2^53).
//! So the file's layout and member order do not matter, and every value does.
//!
//! Deliberately absent: any choice of user ID (always 1234567812345678), of hash or of
//! canonical form (the `scheme` member names the one this code implements and nothing else is
//! accepted); and any trust in the unsigned members (`content_sm3` only chooses the message).

use crate::report::{Report, Summary};
use crypto::{CryptoError, Digest, Signer, UserId, gmt0009};
use pki::{Certificate, Role};
use serde::{Deserialize, Serialize, de};
use serde_json::{Map, Value};
use std::fmt;

/// The one signature scheme: SM2 with SM3 (GB/T 32918.2, ZA over user ID 1234567812345678)
/// over the canonical bytes defined above.
pub const SIGNATURE_SCHEME: &str = "gmchain-report-sm2-sm3-v1";

/// The largest report file read (a full live run is well under 1 MiB).
pub const MAX_REPORT_LEN: usize = 64 << 20;

/// The `signature` member of a signed report. Not covered by the signature itself: every
/// member is checked (the certificate by the caller's chain validation), none is trusted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSignature {
    /// [`SIGNATURE_SCHEME`].
    pub scheme: String,
    /// SM3 of the canonical bytes (hex): a short name for the signed content.
    pub content_sm3: String,
    /// The auditor's certificate (PEM).
    pub certificate: String,
    /// Certificates from the auditor's issuer towards the trust anchor (PEM), not trusted.
    pub chain: Vec<String>,
    /// The SM2 signature (GM/T 0009 `SM2Signature`, DER, hex).
    pub signature: String,
}

/// Who signed a report, for the HTML and the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// The auditor certificate's subject (RFC 4514).
    pub subject: String,
    /// Its serial number (hex).
    pub serial: String,
    /// Its issuer (RFC 4514).
    pub issuer: String,
    /// SM3 of the canonical bytes (hex).
    pub content_sm3: String,
}

impl SignedBy {
    fn new(cert: &Certificate, content_sm3: &Digest) -> Self {
        SignedBy {
            subject: cert.subject(),
            serial: cert.serial().to_hex(),
            issuer: cert.issuer(),
            content_sm3: content_sm3.to_hex(),
        }
    }
}

/// Why a report could not be signed, read or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignedReportError {
    #[error(
        "{subject} is {}, not an auditor: reports are signed only with a role-auditor certificate (gmchain ca issue --role auditor)",
        role.map(Role::as_str).unwrap_or("no gmchain role")
    )]
    NotAuditor { subject: String, role: Option<Role> },
    #[error("the signing key is not the key of the certificate {subject}")]
    KeyMismatch { subject: String },
    #[error("signing the report failed: {0}")]
    Signing(CryptoError),
    #[error("the report cannot be written as JSON: {reason}")]
    Serialise { reason: String },
    #[error("not a readable JSON report: {reason}")]
    Unreadable { reason: String },
    #[error(
        "the report is unsigned: it has no signature member, so nothing shows who produced it or that it is unchanged"
    )]
    Unsigned,
    #[error("the signature member is malformed: {field}: {reason}")]
    MalformedSignature { field: &'static str, reason: String },
    #[error("unknown signature scheme {scheme:?}: this gmchain verifies {SIGNATURE_SCHEME:?}")]
    UnknownScheme { scheme: String },
    #[error(
        "{path} is not an integer, and a signed report holds only integers: it was changed after signing"
    )]
    NotInteger { path: String },
    #[error(
        "the report was changed after signing: its canonical bytes have SM3 {actual}, the signer recorded {recorded}"
    )]
    ContentChanged { recorded: String, actual: String },
    #[error(
        "the report was changed after signing, or not signed by {subject}: the SM2 signature does not verify over its canonical bytes"
    )]
    SignatureInvalid { subject: String },
    #[error("the signed content is not a gmchain report: {reason}")]
    NotAReport { reason: String },
}

impl SignedReportError {
    /// Returns whether the input could not be read as a report at all (as opposed to a report
    /// that did not verify).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, SignedReportError::Unreadable { .. })
    }
}

/// Refuses a signing certificate that is not an auditor's, or whose key is not `signer`'s.
pub fn check_signer(signer: &dyn Signer, cert: &Certificate) -> Result<(), SignedReportError> {
    let role = cert.role();
    if role != Some(Role::Auditor) {
        return Err(SignedReportError::NotAuditor {
            subject: cert.subject(),
            role,
        });
    }
    if signer.public_key() != cert.public_key() {
        return Err(SignedReportError::KeyMismatch {
            subject: cert.subject(),
        });
    }
    Ok(())
}

/// A signed report: the JSON to write as `report.json`, and who signed it.
#[derive(Debug, Clone)]
pub struct SignedReport {
    /// The report's members in their usual order, then `signature` (pretty-printed).
    pub json: Vec<u8>,
    pub signed_by: SignedBy,
}

/// Signs `report` with `signer`, whose certificate `cert` must be an auditor's; `chain` is
/// embedded for verifiers (issuer first). The signature is verified before it is returned, so
/// a token that signs wrongly is caught here rather than by the auditor's readers.
pub fn sign(
    report: &Report,
    signer: &dyn Signer,
    cert: &Certificate,
    chain: &[Certificate],
) -> Result<SignedReport, SignedReportError> {
    check_signer(signer, cert)?;
    let value = serde_json::to_value(report).map_err(|e| SignedReportError::Serialise {
        reason: e.to_string(),
    })?;
    let bytes = canonical_bytes(&value)?;
    let id = UserId::default();
    let sig = signer
        .sign(&id, &bytes)
        .map_err(SignedReportError::Signing)?;
    crypto_sm::sm2::verify(&cert.public_key(), &id, &bytes, &sig)
        .map_err(SignedReportError::Signing)?;
    let digest = crypto_sm::sm3::sm3(&bytes);
    let signature = ReportSignature {
        scheme: SIGNATURE_SCHEME.to_string(),
        content_sm3: digest.to_hex(),
        certificate: cert.to_pem(),
        chain: chain.iter().map(Certificate::to_pem).collect(),
        signature: hex::encode(gmt0009::encode_signature(&sig)),
    };
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        report: &'a Report,
        signature: &'a ReportSignature,
    }
    let json = serde_json::to_vec_pretty(&Out {
        report,
        signature: &signature,
    })
    .map_err(|e| SignedReportError::Serialise {
        reason: e.to_string(),
    })?;
    Ok(SignedReport {
        json,
        signed_by: SignedBy::new(cert, &digest),
    })
}

/// Signs any report given as a JSON object (an audit report of `gmchain audit report`) under the same scheme: the object's canonical bytes, an auditor's
/// key, and a `signature` member appended. Refuses a value that is not an object or has a
/// `signature` member already.
pub fn sign_value(
    value: Value,
    signer: &dyn Signer,
    cert: &Certificate,
    chain: &[Certificate],
) -> Result<SignedReport, SignedReportError> {
    check_signer(signer, cert)?;
    let Value::Object(mut members) = value else {
        return Err(SignedReportError::Serialise {
            reason: "a report is a JSON object".into(),
        });
    };
    if members.contains_key("signature") {
        return Err(SignedReportError::Serialise {
            reason: "the report already has a signature member".into(),
        });
    }
    let bytes = canonical_bytes(&Value::Object(members.clone()))?;
    let id = UserId::default();
    let sig = signer
        .sign(&id, &bytes)
        .map_err(SignedReportError::Signing)?;
    crypto_sm::sm2::verify(&cert.public_key(), &id, &bytes, &sig)
        .map_err(SignedReportError::Signing)?;
    let digest = crypto_sm::sm3::sm3(&bytes);
    let signature = ReportSignature {
        scheme: SIGNATURE_SCHEME.to_string(),
        content_sm3: digest.to_hex(),
        certificate: cert.to_pem(),
        chain: chain.iter().map(Certificate::to_pem).collect(),
        signature: hex::encode(gmt0009::encode_signature(&sig)),
    };
    members.insert(
        "signature".into(),
        serde_json::to_value(&signature).map_err(|e| SignedReportError::Serialise {
            reason: e.to_string(),
        })?,
    );
    let json = serde_json::to_vec_pretty(&Value::Object(members)).map_err(|e| {
        SignedReportError::Serialise {
            reason: e.to_string(),
        }
    })?;
    Ok(SignedReport {
        json,
        signed_by: SignedBy::new(cert, &digest),
    })
}

/// A report file read back: the report without its `signature` member, its canonical bytes,
/// and the signature member if there is one.
#[derive(Debug, Clone)]
pub struct ReportFile {
    report: Value,
    canonical: Vec<u8>,
    signature: Option<Value>,
}

/// A signature that verified over the report's canonical bytes with the key of `certificate`.
/// Only [`ReportFile::verify_signature`] makes one; the certificate is not yet validated.
#[derive(Debug, Clone)]
pub struct CheckedSignature {
    certificate: Certificate,
    chain: Vec<Certificate>,
    signed_by: SignedBy,
}

impl CheckedSignature {
    /// Returns the signer's certificate, to validate as an auditor's.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Returns the certificates the report carries towards the anchor (untrusted).
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// Returns who signed.
    pub fn signed_by(&self) -> &SignedBy {
        &self.signed_by
    }
}

impl ReportFile {
    /// Reads a report file: one JSON object, no duplicate member anywhere (a reader and the
    /// verifier could otherwise see different values), nothing after it.
    pub fn parse(bytes: &[u8]) -> Result<Self, SignedReportError> {
        let unreadable = |reason: String| SignedReportError::Unreadable { reason };
        if bytes.len() > MAX_REPORT_LEN {
            return Err(unreadable(format!(
                "{} bytes; at most {MAX_REPORT_LEN}",
                bytes.len()
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let Strict(value) = Strict::deserialize(&mut de).map_err(|e| unreadable(e.to_string()))?;
        de.end().map_err(|e| unreadable(e.to_string()))?;
        let Value::Object(mut members) = value else {
            return Err(unreadable("not a JSON object".into()));
        };
        let signature = members.remove("signature");
        let report = Value::Object(members);
        let canonical = canonical_bytes(&report)?;
        Ok(ReportFile {
            report,
            canonical,
            signature,
        })
    }

    /// Returns the report without its signature member.
    pub fn report(&self) -> &Value {
        &self.report
    }

    /// Returns the canonical bytes.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// Returns SM3 of the canonical bytes.
    pub fn content_sm3(&self) -> Digest {
        crypto_sm::sm3::sm3(&self.canonical)
    }

    /// Checks the signature member: the scheme, the recorded SM3 of the content (for the
    /// message only), and the SM2 signature over the canonical bytes with the key of the
    /// embedded certificate. Whether that certificate is a valid auditor's is the caller's
    /// check, against its own anchors and CRLs.
    pub fn verify_signature(&self) -> Result<CheckedSignature, SignedReportError> {
        let malformed = |field: &'static str| {
            move |reason: String| SignedReportError::MalformedSignature { field, reason }
        };
        let block = self.signature.clone().ok_or(SignedReportError::Unsigned)?;
        let block = ReportSignature::deserialize(block)
            .map_err(|e| malformed("signature")(e.to_string()))?;
        if block.scheme != SIGNATURE_SCHEME {
            return Err(SignedReportError::UnknownScheme {
                scheme: block.scheme,
            });
        }
        let certificate = Certificate::from_pem(block.certificate.as_bytes())
            .map_err(|e| malformed("certificate")(e.to_string()))?;
        let chain = block
            .chain
            .iter()
            .map(|p| Certificate::from_pem(p.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| malformed("chain")(e.to_string()))?;
        let der = hex::decode(&block.signature)
            .map_err(|e| malformed("signature.signature")(e.to_string()))?;
        let sig = gmt0009::decode_signature(&der)
            .map_err(|e| malformed("signature.signature")(e.to_string()))?;
        let actual = self.content_sm3();
        if !block.content_sm3.eq_ignore_ascii_case(&actual.to_hex()) {
            return Err(SignedReportError::ContentChanged {
                recorded: block.content_sm3,
                actual: actual.to_hex(),
            });
        }
        crypto_sm::sm2::verify(
            &certificate.public_key(),
            &UserId::default(),
            &self.canonical,
            &sig,
        )
        .map_err(|_| SignedReportError::SignatureInvalid {
            subject: certificate.subject(),
        })?;
        let signed_by = SignedBy::new(&certificate, &actual);
        Ok(CheckedSignature {
            certificate,
            chain,
            signed_by,
        })
    }

    /// Returns the report's summary (for its headline).
    pub fn summary(&self) -> Result<Summary, SignedReportError> {
        let s =
            self.report
                .get("summary")
                .cloned()
                .ok_or_else(|| SignedReportError::NotAReport {
                    reason: "no summary".into(),
                })?;
        serde_json::from_value(s).map_err(|e| SignedReportError::NotAReport {
            reason: format!("summary: {e}"),
        })
    }
}

/// Returns the canonical bytes of a JSON value (see the module documentation).
pub fn canonical_bytes(value: &Value) -> Result<Vec<u8>, SignedReportError> {
    let mut out = Vec::new();
    write_canonical(value, &mut out).map_err(|path| SignedReportError::NotInteger {
        path: format!("report{path}"),
    })?;
    Ok(out)
}

/// Writes `v` canonically; on a number that is not an integer, returns its path (".a[3].b").
fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            let digits = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u.to_string(),
                (None, Some(i)) => i.to_string(),
                (None, None) => return Err(String::new()),
            };
            out.extend_from_slice(digits.as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out).map_err(|p| format!("[{i}]{p}"))?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // Sorted here, whatever order the map keeps (serde_json's `preserve_order` would
            // keep the file's).
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out).map_err(|p| format!(".{k}{p}"))?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A JSON string: `"` and `\` escaped, U+0000..U+001F as `\b \f \n \r \t` or `\u00xx`, every
/// other character as its UTF-8 bytes.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A JSON value parsed with every object's members checked for duplicates.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if members.contains_key(&k) {
                return Err(de::Error::custom(format_args!("duplicate member {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            members.insert(k, v);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Provenance, load_standards, run};
    use crypto_sm::rng::SeededRandom;
    use crypto_sm::{SoftSigner, SoftwareProvider};
    use pki::{IssueRequest, Serial, UnixTime, Validity};
    use std::sync::Arc;

    #[test]
    fn canonical_bytes_sort_members_escape_strings_and_refuse_fractions() {
        let v: Value = serde_json::from_str(
            r#"{"b": [1, -2, true, null], "a": "x\"\\\n\u0001é/", "é": {"z": 0, "Z": 1}}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical_bytes(&v).unwrap()).unwrap(),
            "{\"a\":\"x\\\"\\\\\\n\\u0001é/\",\"b\":[1,-2,true,null],\"é\":{\"Z\":1,\"z\":0}}"
        );
        let v: Value = serde_json::from_str(r#"{"a": [{"b": 1.5}]}"#).unwrap();
        let e = canonical_bytes(&v).unwrap_err();
        assert!(
            e.to_string().starts_with("report.a[0].b is not an integer"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_members_and_trailing_bytes_are_unreadable() {
        for bad in [
            &br#"{"a": 1, "a": 2}"#[..],
            br#"{"a": {"b": 1, "b": 1}}"#,
            br#"{"a": 1} x"#,
            b"[1]",
        ] {
            let e = ReportFile::parse(bad).unwrap_err();
            assert!(e.is_unreadable(), "{e}");
        }
    }

    /// A root CA and a certificate of `role` it issued, with the holder's key.
    fn holder(role: Role) -> (SoftSigner, Certificate) {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
        let root_key = p.generate().unwrap();
        let validity = Validity {
            not_before: UnixTime(1_700_000_000),
            not_after: UnixTime(1_900_000_000),
        };
        let root = pki::issue_root(
            "Test Root",
            "Test",
            Serial::from_hex("01").unwrap(),
            validity,
            &root_key,
        )
        .unwrap();
        let key = p.generate().unwrap();
        let cert = pki::issue(
            &root,
            &root_key,
            &IssueRequest {
                role,
                common_name: "holder",
                organisation: "Test",
                public_key: &key.public_key(),
                serial: Serial::from_hex("02").unwrap(),
                validity,
            },
        )
        .unwrap();
        (key, cert)
    }

    fn report() -> Report {
        run(
            &load_standards().unwrap(),
            Provenance::default(),
            None,
            None,
        )
    }

    #[test]
    fn sign_then_verify_round_trip_and_one_changed_value_fails() {
        let (key, cert) = holder(Role::Auditor);
        let signed = sign(&report(), &key, &cert, &[]).unwrap();
        assert_eq!(signed.signed_by.subject, cert.subject());
        let file = ReportFile::parse(&signed.json).unwrap();
        let ok = file.verify_signature().unwrap();
        assert_eq!(ok.certificate(), &cert);
        assert_eq!(ok.signed_by(), &signed.signed_by);
        // The canonical bytes of the file read back are those of the report as built.
        assert_eq!(
            file.canonical(),
            canonical_bytes(&serde_json::to_value(report()).unwrap()).unwrap()
        );
        assert!(file.summary().unwrap().counts.clauses > 50);
        // The summary comes first in the file, the signature last.
        let text = String::from_utf8(signed.json.clone()).unwrap();
        assert!(text.find("\"summary\"").unwrap() < text.find("\"standards\"").unwrap());
        assert!(text.rfind("\"signature\": {").unwrap() > text.rfind("\"standards\"").unwrap());

        let mut v: Value = serde_json::from_slice(&signed.json).unwrap();
        v["summary"]["met"] = (v["summary"]["met"].as_u64().unwrap() + 1).into();
        let changed = ReportFile::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        let e = changed.verify_signature().unwrap_err();
        assert!(matches!(e, SignedReportError::ContentChanged { .. }), "{e}");
        v["signature"]["content_sm3"] = changed.content_sm3().to_hex().into();
        let e = ReportFile::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap()
            .verify_signature()
            .unwrap_err();
        assert!(
            matches!(e, SignedReportError::SignatureInvalid { .. }),
            "{e}"
        );

        let mut v: Value = serde_json::from_slice(&signed.json).unwrap();
        v.as_object_mut().unwrap().remove("signature");
        let e = ReportFile::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap()
            .verify_signature()
            .unwrap_err();
        assert!(matches!(e, SignedReportError::Unsigned), "{e}");
        let mut v: Value = serde_json::from_slice(&signed.json).unwrap();
        v["signature"]["scheme"] = "gmchain-report-sm2-sm3-v0".into();
        let e = ReportFile::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap()
            .verify_signature()
            .unwrap_err();
        assert!(matches!(e, SignedReportError::UnknownScheme { .. }), "{e}");
    }

    #[test]
    fn only_an_auditor_with_its_own_key_signs() {
        let (key, user) = holder(Role::User);
        let e = sign(&report(), &key, &user, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                SignedReportError::NotAuditor {
                    role: Some(Role::User),
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("is user, not an auditor"), "{e}");
        let (_, auditor) = holder(Role::Auditor);
        let other = SoftwareProvider::new(Arc::new(SeededRandom::new(8)))
            .generate()
            .unwrap();
        let e = sign(&report(), &other, &auditor, &[]).unwrap_err();
        assert!(matches!(e, SignedReportError::KeyMismatch { .. }), "{e}");
    }
}
