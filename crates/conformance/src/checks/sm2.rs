//! GB/T 32918.1-.5 (SM2) on sm2p256v1.

use super::{Check, Evidence, derived, each, expect_eq, expect_err};
use crate::vectors::Vector;
use crypto::{CipherFormat, PublicKey, Signature, UserId};
use crypto_sm::danger;
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::{self, EphemeralKey, KexRole, PrivateKey, params};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "sm2-curve-params",
        title: "sm2p256v1 parameters equal GB/T 32918.5 §2",
        run: curve,
    },
    Check {
        id: "sm2-pubkey-valid",
        title: "Valid public keys in every point form (04, 02/03, 06/07) are accepted and agree",
        run: pubkey_valid,
    },
    Check {
        id: "sm2-point-parity",
        title: "The parity of y is honoured: a compressed point with the other prefix decodes to −P, never P; a hybrid (06/07) point whose prefix contradicts y is rejected",
        run: point_parity,
    },
    Check {
        id: "sm2-pubkey-invalid",
        title: "Public key validation rejects O, off-curve points, coordinates ≥ p and bad encodings (every form, hybrid included)",
        run: pubkey_invalid,
    },
    Check {
        id: "sm2-privkey-range",
        title: "Private keys outside [1, n-2] are rejected",
        run: privkey_range,
    },
    Check {
        id: "sm2-za-kat",
        title: "ZA equals the vectors for default, empty, TLS and binary IDs",
        run: za,
    },
    Check {
        id: "sm2-sign-kat",
        title: "Signing with the annex k reproduces e, r and s",
        run: sign_kat,
    },
    Check {
        id: "sm2-verify-kat",
        title: "Annex signatures verify",
        run: verify_kat,
    },
    Check {
        id: "sm2-verify-neg",
        title: "Verification rejects wrong ID, altered message, r or s out of range, t = 0",
        run: verify_neg,
    },
    Check {
        id: "sm2-sign-roundtrip",
        title: "Hedged signatures verify, differ per call, and fail under another ID",
        run: sign_roundtrip,
    },
    Check {
        id: "sm2-encrypt-kat",
        title: "Encryption with the annex k reproduces C1‖C3‖C2",
        run: encrypt_kat,
    },
    Check {
        id: "sm2-decrypt-kat",
        title: "Annex ciphertexts decrypt to the message",
        run: decrypt_kat,
    },
    Check {
        id: "sm2-decrypt-neg",
        title: "Decryption rejects bad C3, C1 off the curve, altered C2 and truncation",
        run: decrypt_neg,
    },
    Check {
        id: "sm2-kex-kat",
        title: "Key exchange reproduces K, S1/SB and S2/SA of the vectors",
        run: kex_kat,
    },
    Check {
        id: "sm2-kex-roundtrip",
        title: "Key exchange: both sides agree; wrong ID or R fails confirmation",
        run: kex_roundtrip,
    },
];

fn pk(v: &Vector, field: &str) -> Result<PublicKey, String> {
    sm2::parse_public_key(&v.bytes(field)?).map_err(|e| e.to_string())
}

fn id(v: &Vector) -> Result<UserId, String> {
    UserId::new(v.bytes("user_id")?).map_err(|e| e.to_string())
}

fn key(v: &Vector) -> Result<PrivateKey, String> {
    PrivateKey::from_bytes(&v.bytes("privkey")?).map_err(|e| e.to_string())
}

fn curve() -> Vec<Evidence> {
    each("sm2", "curve", |v| {
        for (field, ours) in [
            ("p", params::P),
            ("a", params::A),
            ("b", params::B),
            ("n", params::N),
            ("gx", params::GX),
            ("gy", params::GY),
        ] {
            expect_eq(
                field,
                &hex::decode(ours).map_err(|e| e.to_string())?,
                &v.bytes(field)?,
            )?;
        }
        // The generator must be the public key of d = 1.
        let mut one = [0u8; 32];
        one[31] = 1;
        let g = PrivateKey::from_bytes(&one)
            .map_err(|e| e.to_string())?
            .public_key();
        expect_eq("[1]G", &g.as_bytes()[1..33], &v.bytes("gx")?)
    })
}

fn pubkey_valid() -> Vec<Evidence> {
    each("sm2", "pubkey-valid", pubkey_valid_case)
}

/// GB/T 32918.1 §4.2.10: the uncompressed (04), compressed (02/03) and hybrid (06/07) forms of
/// one key all decode to the point [d]G.
fn pubkey_valid_case(v: &Vector) -> Result<(), String> {
    let want = v.bytes("uncompressed")?;
    for form in ["compressed", "uncompressed", "hybrid"] {
        expect_eq(
            &format!("{form} form decoded"),
            pk(v, form)?.as_bytes(),
            &want,
        )?;
    }
    let d = PrivateKey::from_bytes(&v.bytes("privkey")?).map_err(|e| e.to_string())?;
    expect_eq("[d]G", d.public_key().as_bytes(), &want)
}

fn point_parity() -> Vec<Evidence> {
    each("sm2", "point-parity", point_parity_case)
}

/// GB/T 32918.1 §4.2.10: a compressed point carries only the parity of y, so the other prefix
/// names −P = (x, p − y), a valid key but never P; a hybrid point carries y and its parity, and
/// is rejected when the prefix contradicts y.
fn point_parity_case(v: &Vector) -> Result<(), String> {
    let p = v.bytes("uncompressed")?;
    let d = PrivateKey::from_bytes(&v.bytes("privkey")?).map_err(|e| e.to_string())?;
    expect_eq("setup: [d]G", d.public_key().as_bytes(), &p)?;
    let flipped = pk(v, "compressed_flipped")?;
    if flipped.as_bytes()[..] == p[..] {
        return Err(
            "compressed point with the other prefix decoded to P: the parity bit was ignored"
                .into(),
        );
    }
    expect_eq(
        "compressed point with the other prefix",
        flipped.as_bytes(),
        &v.bytes("negated")?,
    )?;
    expect_err(
        "hybrid point whose prefix contradicts the parity of y",
        sm2::parse_public_key(&v.bytes("hybrid_flipped")?),
    )
}

fn pubkey_invalid() -> Vec<Evidence> {
    each("sm2", "pubkey-invalid", |v| {
        expect_err(
            v.text("what").unwrap_or("invalid key"),
            sm2::parse_public_key(&v.bytes("pubkey")?),
        )
    })
}

fn privkey_range() -> Vec<Evidence> {
    each("sm2", "privkey-invalid", |v| {
        expect_err(
            v.text("what").unwrap_or("d"),
            PrivateKey::from_bytes(&v.bytes("d")?),
        )
    })
}

fn za() -> Vec<Evidence> {
    each("sm2", "za", |v| {
        expect_eq(
            "ZA",
            sm2::za(&id(v)?, &pk(v, "pubkey")?).as_bytes(),
            &v.bytes("za")?,
        )
    })
}

fn sign_kat() -> Vec<Evidence> {
    each("sm2", "sign", |v| {
        let k = key(v)?;
        expect_eq(
            "public key",
            k.public_key().as_bytes(),
            pk(v, "pubkey")?.as_bytes(),
        )?;
        if v.fields.get("e").is_some() {
            expect_eq(
                "e",
                sm2::message_digest(&id(v)?, &k.public_key(), &v.bytes("msg")?).as_bytes(),
                &v.bytes("e")?,
            )?;
        }
        let sig = danger::sign_with_k(&k, &id(v)?, &v.bytes("msg")?, &v.array32("k")?)
            .map_err(|e| e.to_string())?;
        expect_eq("r", sig.r(), &v.bytes("r")?)?;
        expect_eq("s", sig.s(), &v.bytes("s")?)
    })
}

fn verify_kat() -> Vec<Evidence> {
    each("sm2", "sign", |v| {
        let sig = Signature::from_scalars(v.array32("r")?, v.array32("s")?);
        sm2::verify(&pk(v, "pubkey")?, &id(v)?, &v.bytes("msg")?, &sig).map_err(|e| e.to_string())
    })
}

fn verify_neg() -> Vec<Evidence> {
    each("sm2", "verify-fail", verify_neg_case)
}

/// One `verify-fail` vector. Only the step under test may reject: a case whose setup fails (a
/// public key that does not parse, a malformed r or s field) fails, since it never reached
/// verification and so proves nothing about it.
fn verify_neg_case(v: &Vector) -> Result<(), String> {
    let what = v.text("what").unwrap_or("signature");
    let key = sm2::parse_public_key(&v.bytes("pubkey")?).map_err(|e| {
        format!("setup: the vector's public key does not parse ({e}), so verification never ran")
    })?;
    let (r, s) = (v.bytes("r")?, v.bytes("s")?);
    let sig = match (
        <[u8; 32]>::try_from(r.as_slice()),
        <[u8; 32]>::try_from(s.as_slice()),
    ) {
        (Ok(r), Ok(s)) => Signature::from_scalars(r, s),
        // r or s wider than 32 bytes (e.g. r + n) cannot be a `Signature`: it arrives as DER and
        // must be refused there, for its width and for nothing else.
        _ if significant_len(&r) > 32 || significant_len(&s) > 32 => {
            return match Signature::from_der(&der_signature(&r, &s)) {
                Ok(_) => Err(format!("{what}: accepted, but must be rejected")),
                Err(crypto::CryptoError::MalformedSignature { reason })
                    if reason.contains("wider than 32 bytes") =>
                {
                    Ok(())
                }
                Err(e) => Err(format!(
                    "setup: the DER built from r and s was refused for another reason ({e})"
                )),
            };
        }
        _ => {
            return Err(format!(
                "setup: r is {} bytes and s is {} bytes; the vector must give 32 (or a wider value)",
                r.len(),
                s.len()
            ));
        }
    };
    expect_err(what, sm2::verify(&key, &id(v)?, &v.bytes("msg")?, &sig))
}

/// The length of a big-endian unsigned integer without its leading zero bytes.
fn significant_len(v: &[u8]) -> usize {
    v.iter().skip_while(|b| **b == 0).count()
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` for unsigned big-endian integers of any width.
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if v.first().is_none_or(|b| b & 0x80 != 0) {
            vec![0]
        } else {
            vec![]
        };
        body.extend_from_slice(&v);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    }
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

fn sign_roundtrip() -> Vec<Evidence> {
    let rng = SeededRandom::new(0x5132_3931);
    let mut out = Vec::new();
    for i in 0..8u32 {
        let r = (|| {
            let k = PrivateKey::generate(&rng).map_err(|e| e.to_string())?;
            let id = UserId::new(format!("user-{i}").into_bytes()).map_err(|e| e.to_string())?;
            let msg = vec![i as u8; (i * 37) as usize];
            let s1 = k.sign(&id, &msg, &rng).map_err(|e| e.to_string())?;
            let s2 = k.sign(&id, &msg, &rng).map_err(|e| e.to_string())?;
            if s1 == s2 {
                return Err("two signatures of one message are equal: nonce not hedged".into());
            }
            sm2::verify(&k.public_key(), &id, &msg, &s1).map_err(|e| e.to_string())?;
            sm2::verify(
                &k.public_key(),
                &id,
                &msg,
                &Signature::from_der(&s2.to_der()).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            expect_err(
                "verify under the default ID",
                sm2::verify(&k.public_key(), &UserId::default(), &msg, &s1),
            )
        })();
        out.push(derived(&format!("random key {i}, ID user-{i}"), r));
    }
    out
}

fn encrypt_kat() -> Vec<Evidence> {
    each("sm2", "encrypt", |v| {
        let c = danger::encrypt_with_k(&pk(v, "pubkey")?, &v.bytes("msg")?, &v.array32("k")?)
            .map_err(|e| e.to_string())?;
        expect_eq("C1‖C3‖C2", &c, &v.bytes("c1c3c2")?)
    })
}

fn decrypt_kat() -> Vec<Evidence> {
    each("sm2", "encrypt", |v| {
        let m = sm2::decrypt(&key(v)?, &v.bytes("c1c3c2")?, CipherFormat::C1C3C2)
            .map_err(|e| e.to_string())?;
        expect_eq("plaintext", m.expose(), &v.bytes("msg")?)
    })
}

fn decrypt_neg() -> Vec<Evidence> {
    each("sm2", "decrypt-fail", |v| {
        expect_err(
            v.text("what").unwrap_or("ciphertext"),
            sm2::decrypt(&key(v)?, &v.bytes("ciphertext")?, CipherFormat::C1C3C2),
        )
    })
}

fn kex_kat() -> Vec<Evidence> {
    each("sm2", "kex", |v| {
        let ida = UserId::new(v.bytes("ida")?).map_err(|e| e.to_string())?;
        let idb = UserId::new(v.bytes("idb")?).map_err(|e| e.to_string())?;
        let da = PrivateKey::from_bytes(&v.bytes("da")?).map_err(|e| e.to_string())?;
        let db = PrivateKey::from_bytes(&v.bytes("db")?).map_err(|e| e.to_string())?;
        expect_eq("PA", da.public_key().as_bytes(), &v.bytes("pa")?)?;
        expect_eq("PB", db.public_key().as_bytes(), &v.bytes("pb")?)?;
        expect_eq(
            "ZA",
            sm2::za(&ida, &da.public_key()).as_bytes(),
            &v.bytes("za")?,
        )?;
        expect_eq(
            "ZB",
            sm2::za(&idb, &db.public_key()).as_bytes(),
            &v.bytes("zb")?,
        )?;
        let ra = danger::ephemeral_key(&v.array32("ra_priv")?).map_err(|e| e.to_string())?;
        let rb = danger::ephemeral_key(&v.array32("rb_priv")?).map_err(|e| e.to_string())?;
        expect_eq("RA", ra.public().as_bytes(), &v.bytes("ra")?)?;
        expect_eq("RB", rb.public().as_bytes(), &v.bytes("rb")?)?;
        let klen = v.int("klen")? as usize;
        let b = sm2::key_exchange(
            KexRole::Responder,
            &db,
            &idb,
            &rb,
            &da.public_key(),
            &ida,
            &ra.public(),
            klen,
        )
        .map_err(|e| e.to_string())?;
        let a = sm2::key_exchange(
            KexRole::Initiator,
            &da,
            &ida,
            &ra,
            &db.public_key(),
            &idb,
            &rb.public(),
            klen,
        )
        .map_err(|e| e.to_string())?;
        expect_eq("KB", b.key.expose(), &v.bytes("kb")?)?;
        expect_eq("KA", a.key.expose(), &v.bytes("ka")?)?;
        // B8: B sends SB; A10: A checks S1 = SB. A sends SA; B10: B checks S2 = SA.
        expect_eq("SB", &b.confirmation, &v.bytes("sb")?)?;
        expect_eq("S1", a.expected_from_peer(), &v.bytes("s1")?)?;
        expect_eq("SA", &a.confirmation, &v.bytes("sa")?)?;
        expect_eq("S2", b.expected_from_peer(), &v.bytes("s2")?)?;
        a.check_peer_confirmation(&b.confirmation)
            .map_err(|e| e.to_string())?;
        b.check_peer_confirmation(&a.confirmation)
            .map_err(|e| e.to_string())
    })
}

fn kex_roundtrip() -> Vec<Evidence> {
    let rng = SeededRandom::new(0x004b_4558);
    let run = || -> Result<(), String> {
        let e = |x: crypto::CryptoError| x.to_string();
        let a = PrivateKey::generate(&rng).map_err(e)?;
        let b = PrivateKey::generate(&rng).map_err(e)?;
        let (ida, idb) = (
            UserId::default(),
            UserId::new(b"agency-b".to_vec()).map_err(e)?,
        );
        let ea = EphemeralKey::generate(&rng).map_err(e)?;
        let eb = EphemeralKey::generate(&rng).map_err(e)?;
        let kb = sm2::key_exchange(
            KexRole::Responder,
            &b,
            &idb,
            &eb,
            &a.public_key(),
            &ida,
            &ea.public(),
            48,
        )
        .map_err(e)?;
        let ka = sm2::key_exchange(
            KexRole::Initiator,
            &a,
            &ida,
            &ea,
            &b.public_key(),
            &idb,
            &eb.public(),
            48,
        )
        .map_err(e)?;
        expect_eq("KA = KB", ka.key.expose(), kb.key.expose())?;
        ka.check_peer_confirmation(&kb.confirmation).map_err(e)?;
        kb.check_peer_confirmation(&ka.confirmation).map_err(e)?;
        let wrong = sm2::key_exchange(
            KexRole::Initiator,
            &a,
            &ida,
            &ea,
            &b.public_key(),
            &ida,
            &eb.public(),
            48,
        )
        .map_err(e)?;
        expect_err(
            "confirmation under a wrong peer ID",
            wrong.check_peer_confirmation(&kb.confirmation),
        )?;
        let mut off = *eb.public().as_bytes();
        off[64] ^= 1;
        let off = PublicKey::from_uncompressed(&off).map_err(e)?;
        expect_err(
            "peer R off the curve",
            sm2::key_exchange(
                KexRole::Initiator,
                &a,
                &ida,
                &ea,
                &b.public_key(),
                &idb,
                &off,
                48,
            ),
        )
    };
    vec![derived("random parties, 48-byte key", run())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors;

    fn vector(id: &str) -> Vector {
        vectors::of_kind("sm2", "verify-fail")
            .into_iter()
            .find(|v| v.id == id)
            .unwrap()
    }

    /// A real `verify-fail` vector with one hex field replaced.
    fn altered(id: &str, field: &str, value: &[u8]) -> Vector {
        let mut v = vector(id);
        v.fields[field] = serde_json::Value::String(hex::encode(value));
        v
    }

    #[test]
    fn every_verify_fail_vector_reaches_verification() {
        for v in vectors::of_kind("sm2", "verify-fail") {
            assert_eq!(verify_neg_case(&v), Ok(()), "{}", v.id);
        }
    }

    /// The audit's finding: a public key that does not parse made the case pass ("an invalid
    /// key is a rejection too"), so the check passed without verifying anything.
    #[test]
    fn a_case_whose_public_key_does_not_parse_fails() {
        // The wrong-ID case with its key's last byte changed: off the curve.
        let mut key = vector("sm2-vf-wrong-id").bytes("pubkey").unwrap();
        key[64] ^= 1;
        let v = altered("sm2-vf-wrong-id", "pubkey", &key);
        let r = verify_neg_case(&v);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("setup")),
            "a setup failure must fail the case: {r:?}"
        );
    }

    /// A 31-byte r is a broken vector, not a rejection: it must not reach the DER path and
    /// pass there.
    #[test]
    fn a_case_with_a_short_scalar_fails() {
        let r = vector("sm2-vf-swapped").bytes("r").unwrap();
        let v = altered("sm2-vf-swapped", "r", &r[1..]);
        let r = verify_neg_case(&v);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("setup")),
            "a malformed field must fail the case: {r:?}"
        );
    }

    /// r + n is refused by the DER decoder for its width, and the check says so.
    #[test]
    fn a_wide_scalar_is_refused_for_its_width() {
        let v = vector("sm2-vf-r-plus-n");
        assert_eq!(v.bytes("r").unwrap().len(), 33);
        assert_eq!(verify_neg_case(&v), Ok(()));
    }
}

#[cfg(test)]
mod point_form_tests {
    use super::*;
    use crate::model::load_standards;
    use crate::vectors;
    use std::collections::BTreeMap;

    /// GB/T 32918.1 §4.2 (point encodings) must run every hybrid (06/07) vector and every
    /// parity vector, and they must pass.
    #[test]
    fn hybrid_and_parity_cases_join_gbt32918_1_clause_4_2() {
        let stds = load_standards().unwrap();
        let clause = stds
            .iter()
            .find(|s| s.id.starts_with("GB/T 32918.1"))
            .and_then(|s| s.clauses.iter().find(|c| c.id == "4.2"))
            .unwrap();
        let mut ran: BTreeMap<String, bool> = BTreeMap::new();
        for check in crate::checks::registry()
            .into_iter()
            .filter(|c| clause.checks.iter().any(|id| id == c.id))
        {
            for e in check.execute().evidence {
                ran.insert(e.case.clone(), e.pass);
            }
        }
        let mut wanted: Vec<String> = vectors::of_kind("sm2", "point-parity")
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert!(wanted.len() >= 2, "no point-parity vectors");
        let hybrid_invalid: Vec<String> = vectors::of_kind("sm2", "pubkey-invalid")
            .into_iter()
            .filter(|v| {
                v.bytes("pubkey")
                    .unwrap()
                    .first()
                    .is_some_and(|p| *p == 6 || *p == 7)
            })
            .map(|v| v.id)
            .collect();
        assert!(hybrid_invalid.len() >= 3, "no invalid hybrid vectors");
        wanted.extend(hybrid_invalid);
        for v in vectors::of_kind("sm2", "pubkey-valid") {
            assert!(v.bytes("hybrid").is_ok(), "{} has no hybrid form", v.id);
            wanted.push(v.id);
        }
        for id in &wanted {
            assert_eq!(ran.get(id), Some(&true), "§4.2 case {id}: {ran:?}");
        }
    }

    /// A valid-key case decodes its hybrid form too: a hybrid encoding of another point fails it.
    #[test]
    fn a_wrong_hybrid_form_fails_the_valid_key_case() {
        let all = vectors::of_kind("sm2", "pubkey-valid");
        let mut v = all[0].clone();
        v.fields["hybrid"] = all[1].fields["hybrid"].clone();
        assert!(pubkey_valid_case(&v).is_err());
        assert_eq!(pubkey_valid_case(&all[0]), Ok(()));
    }

    /// A parity case fails if the flipped compressed point decoded to P itself, or if a hybrid
    /// point contradicting its y were accepted.
    #[test]
    fn a_parity_case_fails_when_the_parity_bit_is_ignored() {
        let v = vectors::of_kind("sm2", "point-parity").remove(0);
        assert_eq!(point_parity_case(&v), Ok(()));
        let mut ignored = v.clone();
        ignored.fields["negated"] = v.fields["uncompressed"].clone();
        assert!(point_parity_case(&ignored).is_err());
        let mut consistent = v.clone();
        let mut h = v.bytes("hybrid_flipped").unwrap();
        h[0] ^= 1; // now the prefix agrees with y: a valid point, which must not pass as a rejection
        consistent.fields["hybrid_flipped"] = serde_json::Value::String(hex::encode(h));
        assert!(point_parity_case(&consistent).is_err());
    }
}
