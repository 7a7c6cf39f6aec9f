//! Conversions between the encodings tokens speak (per profile) and gmchain's value types.
//! Everything here is pure and tested without a token.

use crate::profile::{CiphertextFormat, PointEncoding, SignatureFormat};
use crypto::{CipherFormat, CryptoError, PublicKey, Signature, gmt0009};

/// Decodes a public point read from a token and validates it as a point of sm2p256v1
/// (GB/T 32918.1 §6.2).
pub fn decode_public_key(bytes: &[u8], encoding: PointEncoding) -> Result<PublicKey, CryptoError> {
    let point: Vec<u8> = match encoding {
        PointEncoding::Raw => bytes.to_vec(),
        PointEncoding::Xy => {
            if bytes.len() != 64 {
                return Err(CryptoError::InvalidPublicKey {
                    reason: "an x‖y point is 64 bytes",
                });
            }
            let mut p = Vec::with_capacity(65);
            p.push(0x04);
            p.extend_from_slice(bytes);
            p
        }
        PointEncoding::Der => unwrap_octet_string(bytes)?.to_vec(),
    };
    crypto_sm::sm2::parse_public_key(&point)
}

/// Encodes a public point the way the token stores it (for templates and comparisons).
pub fn encode_public_key(key: &PublicKey, encoding: PointEncoding) -> Vec<u8> {
    match encoding {
        PointEncoding::Raw => key.as_bytes().to_vec(),
        PointEncoding::Xy => key.as_bytes()[1..].to_vec(),
        PointEncoding::Der => {
            let mut out = Vec::with_capacity(67);
            out.push(0x04);
            out.push(65);
            out.extend_from_slice(key.as_bytes());
            out
        }
    }
}

/// Strict DER `OCTET STRING` holding an uncompressed point: tag 04, short-form length 65
/// (or 33 for a compressed point), no trailing bytes.
fn unwrap_octet_string(bytes: &[u8]) -> Result<&[u8], CryptoError> {
    let bad = CryptoError::InvalidPublicKey {
        reason: "CKA_EC_POINT is not a DER OCTET STRING holding a point",
    };
    match bytes {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => Ok(rest),
        _ => Err(bad),
    }
}

/// Decodes a signature returned by a token.
pub fn signature_from_token(
    bytes: &[u8],
    format: SignatureFormat,
) -> Result<Signature, CryptoError> {
    match format {
        SignatureFormat::Raw => Signature::from_raw(bytes),
        SignatureFormat::Der => Signature::from_der(bytes),
    }
}

/// Encodes a signature for a token's `C_Verify`.
pub fn signature_to_token(sig: &Signature, format: SignatureFormat) -> Vec<u8> {
    match format {
        SignatureFormat::Raw => sig.to_raw().to_vec(),
        SignatureFormat::Der => sig.to_der(),
    }
}

/// Converts a ciphertext from the token's format to the caller's.
pub fn ciphertext_from_token(
    bytes: &[u8],
    token: CiphertextFormat,
    wanted: CipherFormat,
) -> Result<Vec<u8>, CryptoError> {
    let c1c3c2 = to_c1c3c2(bytes, token)?;
    match wanted {
        CipherFormat::C1C3C2 => Ok(c1c3c2),
        CipherFormat::Der => gmt0009::encode_ciphertext(&c1c3c2),
    }
}

/// Converts a ciphertext from the caller's format to the token's.
pub fn ciphertext_to_token(
    bytes: &[u8],
    given: CipherFormat,
    token: CiphertextFormat,
) -> Result<Vec<u8>, CryptoError> {
    let c1c3c2 = match given {
        CipherFormat::C1C3C2 => {
            gmt0009::split_c1c3c2(bytes)?;
            bytes.to_vec()
        }
        CipherFormat::Der => gmt0009::decode_ciphertext(bytes)?,
    };
    match token {
        CiphertextFormat::C1C3C2 => Ok(c1c3c2),
        CiphertextFormat::Der => gmt0009::encode_ciphertext(&c1c3c2),
        CiphertextFormat::C1C2C3 => {
            let parts = gmt0009::split_c1c3c2(&c1c3c2)?;
            let mut out = Vec::with_capacity(c1c3c2.len());
            out.extend_from_slice(&c1c3c2[..65]);
            out.extend_from_slice(parts.c2);
            out.extend_from_slice(parts.c3);
            Ok(out)
        }
    }
}

fn to_c1c3c2(bytes: &[u8], format: CiphertextFormat) -> Result<Vec<u8>, CryptoError> {
    match format {
        CiphertextFormat::C1C3C2 => {
            gmt0009::split_c1c3c2(bytes)?;
            Ok(bytes.to_vec())
        }
        CiphertextFormat::Der => gmt0009::decode_ciphertext(bytes),
        CiphertextFormat::C1C2C3 => {
            // 04‖x‖y (65) ‖ C2 (≥ 1) ‖ C3 (32)
            if bytes.len() < 65 + 1 + 32 || bytes[0] != 0x04 {
                return Err(CryptoError::MalformedCiphertext {
                    reason: "C1‖C2‖C3 needs an uncompressed C1, at least one byte of C2 and 32 bytes of C3",
                });
            }
            let c2_end = bytes.len() - 32;
            let mut out = Vec::with_capacity(bytes.len());
            out.extend_from_slice(&bytes[..65]);
            out.extend_from_slice(&bytes[c2_end..]);
            out.extend_from_slice(&bytes[65..c2_end]);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::rng::SeededRandom;
    use crypto_sm::sm2::PrivateKey;

    fn key() -> PrivateKey {
        PrivateKey::generate(&SeededRandom::new(7)).unwrap()
    }

    #[test]
    fn public_key_encodings_round_trip_and_validate() {
        let pk = key().public_key();
        for enc in [PointEncoding::Raw, PointEncoding::Xy, PointEncoding::Der] {
            let bytes = encode_public_key(&pk, enc);
            assert_eq!(decode_public_key(&bytes, enc).unwrap(), pk, "{enc:?}");
        }
        let der = encode_public_key(&pk, PointEncoding::Der);
        assert_eq!(&der[..3], &[0x04, 0x41, 0x04]);
        // trailing byte, wrong length, wrong tag
        let mut long = der.clone();
        long.push(0);
        assert!(decode_public_key(&long, PointEncoding::Der).is_err());
        assert!(decode_public_key(&der[..66], PointEncoding::Der).is_err());
        let mut tag = der.clone();
        tag[0] = 0x03;
        assert!(decode_public_key(&tag, PointEncoding::Der).is_err());
        // a raw point given where DER is expected
        assert!(decode_public_key(pk.as_bytes(), PointEncoding::Der).is_err());
        // off the curve
        let mut off = *pk.as_bytes();
        off[64] ^= 1;
        assert!(decode_public_key(&off, PointEncoding::Raw).is_err());
    }

    #[test]
    fn signature_formats() {
        let mut r = [0u8; 32];
        r[0] = 0x80;
        r[31] = 1;
        let sig = Signature::from_scalars(r, [0x22; 32]);
        for f in [SignatureFormat::Raw, SignatureFormat::Der] {
            assert_eq!(
                signature_from_token(&signature_to_token(&sig, f), f).unwrap(),
                sig
            );
        }
        assert!(signature_from_token(&[0u8; 63], SignatureFormat::Raw).is_err());
        assert!(signature_from_token(&sig.to_raw(), SignatureFormat::Der).is_err());
    }

    #[test]
    fn ciphertext_orders_and_der() {
        let k = key();
        let rng = SeededRandom::new(9);
        let c = crypto_sm::sm2::encrypt(
            &k.public_key(),
            b"attack at dawn",
            CipherFormat::C1C3C2,
            &rng,
        )
        .unwrap();
        for token in [
            CiphertextFormat::C1C3C2,
            CiphertextFormat::C1C2C3,
            CiphertextFormat::Der,
        ] {
            let t = ciphertext_to_token(&c, CipherFormat::C1C3C2, token).unwrap();
            assert_eq!(
                ciphertext_from_token(&t, token, CipherFormat::C1C3C2).unwrap(),
                c
            );
            let der = ciphertext_from_token(&t, token, CipherFormat::Der).unwrap();
            assert_eq!(
                crypto_sm::sm2::decrypt(&k, &der, CipherFormat::Der)
                    .unwrap()
                    .expose(),
                b"attack at dawn"
            );
        }
        // C1C2C3: C3 is last.
        let t = ciphertext_to_token(&c, CipherFormat::C1C3C2, CiphertextFormat::C1C2C3).unwrap();
        assert_eq!(&t[t.len() - 32..], &c[65..97]);
        let legacy = crypto_sm::sm2::decrypt_c1c2c3_legacy(&k, &t).unwrap();
        assert_eq!(legacy.expose(), b"attack at dawn");
        assert!(
            ciphertext_from_token(&c[..97], CiphertextFormat::C1C3C2, CipherFormat::C1C3C2)
                .is_err()
        );
        assert!(
            ciphertext_from_token(&c[..97], CiphertextFormat::C1C2C3, CipherFormat::C1C3C2)
                .is_err()
        );
    }
}
