//! GM/T 0009 encodings: SM2Signature, SM2Cipher, SubjectPublicKeyInfo.

use super::{Check, Evidence, each, expect_eq, expect_err};
use crypto::{Signature, gmt0009};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "gmt0009-sig-der",
        title: "SM2Signature DER encodes and decodes exactly",
        run: sig_der,
    },
    Check {
        id: "gmt0009-sig-der-neg",
        title: "SM2Signature decoding rejects non-DER, negative, wide and trailing encodings",
        run: sig_der_neg,
    },
    Check {
        id: "gmt0009-cipher-der",
        title: "SM2Cipher DER encodes and decodes exactly",
        run: cipher_der,
    },
    Check {
        id: "gmt0009-cipher-der-neg",
        title: "SM2Cipher decoding rejects malformed encodings",
        run: cipher_der_neg,
    },
    Check {
        id: "gmt0009-spki",
        title: "SM2 SubjectPublicKeyInfo matches OpenSSL's encoding",
        run: spki,
    },
];

fn sig_der() -> Vec<Evidence> {
    each("gmt0009", "signature-der", |v| {
        let sig = Signature::from_scalars(v.array32("r")?, v.array32("s")?);
        let der = v.bytes("der")?;
        expect_eq("encoding", &sig.to_der(), &der)?;
        let back = Signature::from_der(&der).map_err(|e| e.to_string())?;
        expect_eq("decoded r‖s", &back.to_raw(), &sig.to_raw())
    })
}

fn sig_der_neg() -> Vec<Evidence> {
    each("gmt0009", "signature-der-invalid", |v| {
        expect_err(
            v.text("what").unwrap_or("DER"),
            Signature::from_der(&v.bytes("der")?),
        )
    })
}

fn cipher_der() -> Vec<Evidence> {
    each("gmt0009", "ciphertext-der", |v| {
        let raw = v.bytes("c1c3c2")?;
        let der = v.bytes("der")?;
        expect_eq(
            "encoding",
            &gmt0009::encode_ciphertext(&raw).map_err(|e| e.to_string())?,
            &der,
        )?;
        expect_eq(
            "decoding",
            &gmt0009::decode_ciphertext(&der).map_err(|e| e.to_string())?,
            &raw,
        )
    })
}

fn cipher_der_neg() -> Vec<Evidence> {
    // Some cases are well-formed DER whose C1 is not a curve point: decoding may accept them,
    // decryption (GB/T 32918.4 §7.1 B1) must not. Any key shows that, since B1 precedes its use.
    let key = match crypto_sm::sm2::PrivateKey::from_bytes(&[0x11; 32]) {
        Ok(k) => k,
        Err(e) => return vec![super::derived("fixed test key", Err(e.to_string()))],
    };
    each("gmt0009", "ciphertext-der-invalid", |v| {
        let what = v.text("what").unwrap_or("DER");
        match gmt0009::decode_ciphertext(&v.bytes("der")?) {
            Err(_) => Ok(()),
            Ok(raw) => match crypto_sm::sm2::decrypt(&key, &raw, crypto::CipherFormat::C1C3C2) {
                Err(crypto::CryptoError::MalformedCiphertext { .. }) => Ok(()),
                Err(e) => Err(format!(
                    "{what}: decoded, then failed only at a later step: {e}"
                )),
                Ok(_) => Err(format!("{what}: accepted, but must be rejected")),
            },
        }
    })
}

fn spki() -> Vec<Evidence> {
    each("gmt0009", "pubkey-spki", |v| {
        let der = v.bytes("spki_der")?;
        let pk = crypto_sm::keys::decode_public_key(&der).map_err(|e| e.to_string())?;
        expect_eq("point", pk.as_bytes(), &v.bytes("point")?)?;
        expect_eq(
            "re-encoding",
            &crypto_sm::keys::encode_public_key_der(&pk).map_err(|e| e.to_string())?,
            &der,
        )
    })
}
