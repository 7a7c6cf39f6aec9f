//! SM2 public key encryption (GB/T 32918.4-2016 §6-7). The output order is C1 ‖ C3 ‖ C2.

use super::{PrivateKey, coordinates, decode_point, validate};
use crate::sm3::{Sm3Context, kdf};
use crypto::{CipherFormat, CryptoError, PublicKey, RandomSource, Secret, gmt0009};
use elliptic_curve::Group;
use elliptic_curve::subtle::ConstantTimeEq;
use sm2::{NonZeroScalar, ProjectivePoint};
use zeroize::Zeroizing;

use super::elliptic_curve;

/// Encrypts `msg` to `to` (GB/T 32918.4-2016 §6.1), in the requested format.
pub fn encrypt(
    to: &PublicKey,
    msg: &[u8],
    format: CipherFormat,
    rng: &dyn RandomSource,
) -> Result<Vec<u8>, CryptoError> {
    if msg.is_empty() {
        return Err(CryptoError::InvalidInput {
            reason: "SM2 cannot encrypt an empty message (klen = 0)",
        });
    }
    validate(to)?;
    // A1: k ∈ [1, n−1]; A5 sends us back here when t is all zero.
    for _ in 0..64 {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill(&mut k[..])?;
        match encrypt_with_k(to, msg, &k) {
            Ok(c) => return finish(c, format),
            Err(CryptoError::InvalidInput { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CryptoError::Entropy)
}

fn finish(c1c3c2: Vec<u8>, format: CipherFormat) -> Result<Vec<u8>, CryptoError> {
    match format {
        CipherFormat::C1C3C2 => Ok(c1c3c2),
        CipherFormat::Der => gmt0009::encode_ciphertext(&c1c3c2),
    }
}

/// GB/T 32918.4-2016 §6.1 A2-A8 with a given k. `InvalidInput` means "pick another k".
pub(crate) fn encrypt_with_k(
    to: &PublicKey,
    msg: &[u8],
    k: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    let pb = ProjectivePoint::from(validate(to)?);
    let k = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*k).into())).ok_or(
        CryptoError::InvalidInput {
            reason: "k must lie in [1, n-1]",
        },
    )?;
    // A2: C1 = [k]G
    let c1 = ProjectivePoint::mul_by_generator(&*k).to_affine();
    // A3: S = [h]PB with h = 1; validate() already refused the point at infinity.
    // A4: (x2, y2) = [k]PB
    let (x2, y2) = coordinates(&(pb * *k).to_affine());
    let x2 = Zeroizing::new(x2);
    let y2 = Zeroizing::new(y2);
    // A5: t = KDF(x2 ‖ y2, klen); all-zero t sends us back to A1
    let mut z = Zeroizing::new([0u8; 64]);
    z[..32].copy_from_slice(&x2[..]);
    z[32..].copy_from_slice(&y2[..]);
    let t = kdf(&z[..], msg.len())?;
    if t.expose().iter().all(|b| *b == 0) {
        return Err(CryptoError::InvalidInput {
            reason: "KDF output is all zero for this k",
        });
    }
    // A6: C2 = M ⊕ t
    let c2: Vec<u8> = msg.iter().zip(t.expose()).map(|(m, t)| m ^ t).collect();
    // A7: C3 = Hash(x2 ‖ M ‖ y2)
    let mut h = Sm3Context::new();
    h.update(&x2[..]);
    h.update(msg);
    h.update(&y2[..]);
    let c3 = h.finish();
    // A8: C = C1 ‖ C3 ‖ C2
    let (x1, y1) = coordinates(&c1);
    let mut out = Vec::with_capacity(97 + c2.len());
    out.push(0x04);
    out.extend_from_slice(&x1);
    out.extend_from_slice(&y1);
    out.extend_from_slice(c3.as_bytes());
    out.extend_from_slice(&c2);
    Ok(out)
}

/// Decrypts a ciphertext in the given format (GB/T 32918.4-2016 §7.1). Nothing is released
/// unless C3 verifies.
pub fn decrypt(
    key: &PrivateKey,
    ciphertext: &[u8],
    format: CipherFormat,
) -> Result<Secret, CryptoError> {
    match format {
        CipherFormat::C1C3C2 => decrypt_parts(key, split(ciphertext, false)?),
        CipherFormat::Der => {
            let raw = gmt0009::decode_ciphertext(ciphertext)?;
            decrypt_parts(key, split(&raw, false)?)
        }
    }
}

/// Decrypts the legacy C1 ‖ C2 ‖ C3 order of GM/T 0003.4-2012 and older libraries. gmchain
/// never writes this order; it reads it only when a caller names this decoder explicitly.
pub fn decrypt_c1c2c3_legacy(key: &PrivateKey, ciphertext: &[u8]) -> Result<Secret, CryptoError> {
    decrypt_parts(key, split(ciphertext, true)?)
}

struct Parts<'a> {
    c1: &'a [u8],
    c3: &'a [u8],
    c2: &'a [u8],
}

fn split(c: &[u8], legacy: bool) -> Result<Parts<'_>, CryptoError> {
    let first = *c.first().ok_or(CryptoError::MalformedCiphertext {
        reason: "empty ciphertext",
    })?;
    let c1_len = match first {
        0x04 | 0x06 | 0x07 => 65,
        0x02 | 0x03 => 33,
        _ => {
            return Err(CryptoError::MalformedCiphertext {
                reason: "C1 has an unknown point prefix",
            });
        }
    };
    if c.len() < c1_len + 32 + 1 {
        return Err(CryptoError::MalformedCiphertext {
            reason: "too short for C1, a 32-byte C3 and a non-empty C2",
        });
    }
    let (c1, rest) = c.split_at(c1_len);
    let (c3, c2) = if legacy {
        let (c2, c3) = rest.split_at(rest.len() - 32);
        (c3, c2)
    } else {
        rest.split_at(32)
    };
    Ok(Parts { c1, c3, c2 })
}

fn decrypt_parts(key: &PrivateKey, p: Parts<'_>) -> Result<Secret, CryptoError> {
    // B1: C1 must be a point of the curve.
    let c1 = decode_point(p.c1).map_err(|_| CryptoError::MalformedCiphertext {
        reason: "C1 is not a point of sm2p256v1",
    })?;
    // B2: S = [h]C1 ≠ O; h = 1 and decode_point refuses O.
    let c1 = ProjectivePoint::from(c1);
    if bool::from(c1.is_identity()) {
        return Err(CryptoError::MalformedCiphertext {
            reason: "C1 is the point at infinity",
        });
    }
    // B3: (x2, y2) = [dB]C1
    let (x2, y2) = coordinates(&(c1 * **key.scalar()).to_affine());
    let mut z = Zeroizing::new([0u8; 64]);
    z[..32].copy_from_slice(&x2);
    z[32..].copy_from_slice(&y2);
    // B4: t = KDF(x2 ‖ y2, klen); all zero is an error
    let t = kdf(&z[..], p.c2.len())?;
    if t.expose().iter().all(|b| *b == 0) {
        return Err(CryptoError::DecryptionFailed {
            reason: "KDF output is all zero",
        });
    }
    // B5: M' = C2 ⊕ t
    let m = Secret::new(p.c2.iter().zip(t.expose()).map(|(c, t)| c ^ t).collect());
    // B6: u = Hash(x2 ‖ M' ‖ y2) must equal C3 (compared in constant time)
    let mut h = Sm3Context::new();
    h.update(&z[..32]);
    h.update(m.expose());
    h.update(&z[32..]);
    let u = h.finish();
    if !bool::from(u.as_bytes().ct_eq(p.c3)) {
        return Err(CryptoError::DecryptionFailed {
            reason: "C3 does not match (wrong key or tampered ciphertext)",
        });
    }
    // B7
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn round_trip_both_formats_and_tamper() {
        let rng = SeededRandom::new(3);
        let key = PrivateKey::generate(&rng).unwrap();
        for fmt in [CipherFormat::C1C3C2, CipherFormat::Der] {
            for len in [1usize, 31, 32, 33, 200] {
                let msg = vec![0xa5u8; len];
                let c = encrypt(&key.public_key(), &msg, fmt, &rng).unwrap();
                assert_eq!(decrypt(&key, &c, fmt).unwrap().expose(), &msg[..]);
            }
        }
        let c = encrypt(&key.public_key(), b"secret", CipherFormat::C1C3C2, &rng).unwrap();
        for i in [1usize, 64, 65, 96, 97, c.len() - 1] {
            let mut bad = c.clone();
            bad[i] ^= 1;
            assert!(
                decrypt(&key, &bad, CipherFormat::C1C3C2).is_err(),
                "byte {i}"
            );
        }
        assert!(decrypt(&key, &c[..97], CipherFormat::C1C3C2).is_err());
        assert!(encrypt(&key.public_key(), b"", CipherFormat::C1C3C2, &rng).is_err());
        let other = PrivateKey::generate(&rng).unwrap();
        assert!(matches!(
            decrypt(&other, &c, CipherFormat::C1C3C2),
            Err(CryptoError::DecryptionFailed { .. })
        ));
    }

    #[test]
    fn legacy_order_is_read_only_when_named() {
        let rng = SeededRandom::new(4);
        let key = PrivateKey::generate(&rng).unwrap();
        let c = encrypt(
            &key.public_key(),
            b"legacy message",
            CipherFormat::C1C3C2,
            &rng,
        )
        .unwrap();
        let mut legacy = c[..65].to_vec();
        legacy.extend_from_slice(&c[97..]);
        legacy.extend_from_slice(&c[65..97]);
        assert_eq!(
            decrypt_c1c2c3_legacy(&key, &legacy).unwrap().expose(),
            b"legacy message"
        );
        assert!(decrypt(&key, &legacy, CipherFormat::C1C3C2).is_err());
    }
}
