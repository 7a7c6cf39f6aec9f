//! GM/T 0111 §7.1 "only state-approved algorithms": the inventory of every algorithm this build
//! can still use that is not SM2, SM3 or SM4 (or a GM mode of them), each with where it is
//! reachable. The check fails while any of them is reachable by a production deployment; the
//! known-answer checks mapped to §7.1 show only that the GM algorithms are right, not that they
//! are the only ones.
//!
//! Items that code here can exercise are probed (the key-file PRFs, on files OpenSSL wrote);
//! the others are declared facts of this build, each naming the code it describes and what
//! removes it, and each fails until that lands.

use super::{Check, Evidence, expect_err};
use crate::vectors::Vector;
use crypto_sm::keys;
use serde_json::Value;

pub(super) const CHECKS: &[Check] = &[Check {
    id: "algorithms-inventory",
    title: "Every non-GM algorithm this build can use is listed; none is reachable in production",
    run: inventory,
}];

/// Encrypted key files as OpenSSL writes them (`conformance/vectors/keyfiles.json`).
const KEYFILES: &str = include_str!("../../../../conformance/vectors/keyfiles.json");

const INVENTORY: &str = "gmchain build inventory (declared; the detail names the code)";

/// The key-file vectors, each with its id and source.
fn keyfiles() -> Vec<Vector> {
    let parsed: Value = serde_json::from_str(KEYFILES).unwrap_or(Value::Null);
    parsed
        .get("vectors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| Vector {
                    id: v.get("id").and_then(Value::as_str).unwrap_or("?").into(),
                    source: v
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .into(),
                    fields: v.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn keyfile(id: &str) -> Result<Vector, String> {
    keyfiles()
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| format!("setup: vector {id} is missing from keyfiles.json"))
}

fn item(case: &str, source: &str, r: Result<String, String>) -> Evidence {
    let pass = r.is_ok();
    Evidence {
        case: case.to_string(),
        source: source.to_string(),
        pass,
        detail: r.unwrap_or_else(|e| e),
    }
}

fn inventory() -> Vec<Evidence> {
    vec![
        pbkdf2_hmac_sha256(),
        pbkdf2_hmac_sha1(),
        node_api_transport(),
        random_source(),
    ]
}

/// OpenSSL writes encrypted PKCS#8 with PBKDF2-hmacWithSHA256 (it has no HMAC-SM3 PRF). The
/// interoperable reader takes such a file; the production rule must refuse it by name.
fn pbkdf2_hmac_sha256() -> Evidence {
    const ID: &str = "keyfile-openssl-hmacwithsha256";
    let case = "PBKDF2-hmacWithSHA256 (1.2.840.113549.2.9) protecting encrypted PKCS#8 key files";
    let source = keyfile(ID).map(|v| v.source).unwrap_or_default();
    let r = (|| {
        let v = keyfile(ID)?;
        let pem = v.bytes("pem")?;
        let d = v.bytes("privkey")?;
        let read = keys::decode_private_key(&pem, Some(&v.bytes("passphrase")?))
            .map_err(|e| format!("setup: the interoperable reader refused OpenSSL's file: {e}"))?;
        if read.to_bytes()[..] != d[..] {
            return Err("setup: the interoperable reader decrypted another key".to_string());
        }
        match keys::require_gm_key_file(&pem) {
            Ok(()) => Err(
                "reachable in production: the production rule (keys::require_gm_key_file, applied \
                 by the node configuration in mode = \"production\") accepts this file"
                    .to_string(),
            ),
            Err(e) if e.to_string().contains("hmacWithSHA256") => Ok(format!(
                "in this build: read by keys::decode_private_key for interoperability with \
                 OpenSSL (gmchain crypto/tx/ca/conformance --key FILE and development nodes print \
                 a note naming the PRF; the keystore imports such a file and rewrites it with \
                 PBKDF2-HMAC-SM3). Not reachable in production: a production node refuses it \
                 ({e})"
            )),
            Err(e) => Err(format!(
                "the production rule refused it without naming the PRF: {e}"
            )),
        }
    })();
    item(case, &source, r)
}

/// PBKDF2's default PRF when a file names none, hmacWithSHA1: no reader takes it.
fn pbkdf2_hmac_sha1() -> Evidence {
    const ID: &str = "keyfile-openssl-hmacwithsha1";
    let case = "PBKDF2-hmacWithSHA1 (1.2.840.113549.2.7) protecting encrypted PKCS#8 key files";
    let source = keyfile(ID).map(|v| v.source).unwrap_or_default();
    let r = (|| {
        let v = keyfile(ID)?;
        let pem = v.bytes("pem")?;
        let pass = v.bytes("passphrase")?;
        expect_err(
            "the interoperable reader",
            keys::decode_private_key(&pem, Some(&pass)),
        )?;
        expect_err("the production rule", keys::require_gm_key_file(&pem))?;
        Ok("not in this build: every key-file reader refuses it".to_string())
    })();
    item(case, &source, r)
}

/// The node's API is mutual GM TLS 1.3 (issue 12); its plain-HTTP listeners remain.
fn node_api_transport() -> Evidence {
    item(
        "Node plain-HTTP listeners: metrics (/metrics) and the optional public read-only API (api.public_listen), no SM2/SM3/SM4 channel protection",
        INVENTORY,
        Err(
            "reachable in production: the gRPC API that takes transactions and every \
             authenticated read is mutual GM TLS 1.3 (RFC 8998 TLS_SM4_GCM_SM3/TLS_SM4_CCM_SM3, \
             issue 12; node-tls-* checks), but the metrics listener always, and the public \
             read-only listener when configured, are plain HTTP, on loopback unless \
             api.allow_non_loopback = true; they carry no write and no key, and are meant to sit \
             behind the operator's HTTPS/TLCP gateway (GB/T 39786 8.3 b's note)."
                .to_string(),
        ),
    )
}

/// Software randomness comes from the operating system, which is neither a GM DRBG nor tested.
fn random_source() -> Evidence {
    item(
        "Random numbers outside the token: the operating system's source (getrandom(2): the Linux kernel CRNG, ChaCha20-based)",
        INVENTORY,
        Err(
            "reachable in production: crypto_sm::rng::SystemRandom, which the binary gives to \
             gmchain ca (certificate serials; keys it generates in software), gmchain tx \
             (transaction salts), software SM2 signatures (the 32 fresh bytes of the hedged \
             nonce) and the keystore; it is not a GM/T 0105 DRBG, and its output is not tested \
             (GM/T 0005 / GB/T 32915 randomness tests). A production node's own signatures use \
             the token's generator. No issue covers this yet."
                .to_string(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::load_standards;
    use crate::report::{Provenance, Verdict, run};

    #[test]
    fn keyfile_vectors_are_sound() {
        let all = keyfiles();
        assert_eq!(all.len(), 2);
        for v in &all {
            assert!(
                v.source.starts_with("written by `openssl pkcs8"),
                "{}",
                v.id
            );
            assert!(
                v.bytes("pem")
                    .unwrap()
                    .starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            );
            assert_eq!(v.bytes("privkey").unwrap().len(), 32);
        }
    }

    /// The probed items run against OpenSSL's files and pass (the production rule refuses
    /// hmacWithSHA256 by name, no reader takes hmacWithSHA1); the declared ones fail.
    #[test]
    fn the_inventory_lists_each_item_with_where_it_is_reachable() {
        let out = inventory();
        let find = |needle: &str| {
            out.iter()
                .find(|e| e.case.contains(needle))
                .unwrap_or_else(|| panic!("no inventory item {needle}: {out:?}"))
        };
        let sha256 = find("hmacWithSHA256");
        assert!(sha256.pass, "{}", sha256.detail);
        assert!(
            sha256.detail.contains("production node refuses"),
            "{}",
            sha256.detail
        );
        assert!(find("hmacWithSHA1").pass, "{}", find("hmacWithSHA1").detail);
        for declared in ["plain-HTTP", "Random numbers"] {
            let e = find(declared);
            assert!(
                !e.pass && e.detail.starts_with("reachable in production"),
                "{e:?}"
            );
        }
    }

    /// The audit's finding: §7.1 was MET on five known-answer checks, which cannot show that
    /// nothing else is used. Now it is NOT MET, with the list as its evidence.
    #[test]
    fn gmt0111_7_1_is_not_met_with_the_list() {
        let report = run(
            &load_standards().unwrap(),
            Provenance::default(),
            None,
            None,
        );
        let clause = report
            .standards
            .iter()
            .filter(|s| s.id.starts_with("GM/T 0111"))
            .flat_map(|s| s.clauses.iter())
            .find(|c| c.id == "7.1")
            .unwrap();
        assert_eq!(clause.verdict, Verdict::NotMet);
        let inventory = clause
            .checks
            .iter()
            .find(|o| o.id == "algorithms-inventory")
            .expect("§7.1 maps the inventory");
        assert!(!inventory.pass);
        let listed: Vec<&str> = inventory.evidence.iter().map(|e| e.case.as_str()).collect();
        for needle in ["hmacWithSHA256", "plain-HTTP", "Random numbers"] {
            assert!(
                listed.iter().any(|c| c.contains(needle)),
                "{needle} not listed: {listed:?}"
            );
        }
    }
}
