//! How secrets are protected at rest: a random 16-byte token key encrypts every private or
//! secret value with SM4-GCM, and the token key itself is stored wrapped (SM4-GCM) under a key
//! derived from each PIN with PBKDF2-HMAC-SM3. A PIN is checked by unwrapping: there is no PIN
//! hash on disk, and a wrong PIN is exactly a failed tag check.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crypto::{RandomSource, Sm4Mode};
use crypto_sm::sm4::{self, Sm4Secret};
use zeroize::Zeroizing;

/// PBKDF2 iterations for newly written PIN wraps. GM/T 0091 and NIST SP 800-132 ask for at least
/// 10 000; the iteration count is stored with each wrap, so it can be raised without a migration.
pub const PBKDF2_ITERATIONS: u32 = 10_000;
/// The fewest iterations accepted when reading a wrap back.
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;
/// The most iterations accepted when reading: bounds the work a corrupted file can cause.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Whose PIN a wrap belongs to; part of the wrap's associated data, so the two cannot be swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinRole {
    /// The security officer.
    So,
    /// The normal user.
    User,
}

/// The token key wrapped under one PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct PinWrap {
    /// PBKDF2 salt.
    pub salt: [u8; 16],
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// SM4-GCM nonce.
    pub nonce: [u8; 12],
    /// SM4-GCM output: the 16-byte token key ‖ 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl core::fmt::Debug for PinWrap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PinWrap(iterations={})", self.iterations)
    }
}

/// A secret value encrypted under the token key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// SM4-GCM nonce.
    pub nonce: [u8; 12],
    /// SM4-GCM output: ciphertext ‖ tag.
    pub ciphertext: Vec<u8>,
}

impl core::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

/// A 16-byte SM4 key held as bytes (the token key, or an SM4 key object's value), zeroized on
/// drop and never printed. `crypto_sm::sm4::Sm4Secret` does not hand its bytes back, and wrapping
/// needs them, so keys live here and become an `Sm4Secret` per operation.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; 16]>);

impl core::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyBytes([redacted])")
    }
}

impl KeyBytes {
    /// Takes exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 16] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// Draws a fresh random key.
    pub fn random(rng: &dyn RandomSource) -> Result<Self> {
        Ok(Self(Zeroizing::new(random::<16>(rng)?)))
    }

    /// Exposes the bytes; keep the borrow short.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    /// Returns the key as an SM4 cipher key.
    pub fn sm4(&self) -> Result<Sm4Secret> {
        Sm4Secret::from_slice(&self.0[..]).map_err(Error::from)
    }
}

fn random<const N: usize>(rng: &dyn RandomSource) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    rng.fill(&mut out).map_err(|_| Error::Entropy)?;
    Ok(out)
}

fn wrap_aad(role: PinRole, token_id: &[u8; 8]) -> Vec<u8> {
    let mut aad = b"gmchain-softtoken/1 token-key ".to_vec();
    aad.extend_from_slice(match role {
        PinRole::So => b"so ",
        PinRole::User => b"user ",
    });
    aad.extend_from_slice(token_id);
    aad
}

fn kek(pin: &[u8], salt: &[u8; 16], iterations: u32) -> KeyBytes {
    let mut out = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sm3::Sm3>(pin, salt, iterations, &mut out[..]);
    KeyBytes(out)
}

/// Wraps the token key under a PIN with a fresh salt and nonce.
pub fn wrap_token_key(
    pin: &[u8],
    role: PinRole,
    token_id: &[u8; 8],
    token_key: &KeyBytes,
    rng: &dyn RandomSource,
) -> Result<PinWrap> {
    let salt = random::<16>(rng)?;
    let nonce = random::<12>(rng)?;
    let kek = kek(pin, &salt, PBKDF2_ITERATIONS);
    let ciphertext = sm4::encrypt(
        &kek.sm4()?,
        Sm4Mode::Gcm,
        &nonce,
        &wrap_aad(role, token_id),
        token_key.expose(),
    )?;
    Ok(PinWrap {
        salt,
        iterations: PBKDF2_ITERATIONS,
        nonce,
        ciphertext,
    })
}

/// Unwraps the token key with a PIN. `None` means the PIN is wrong (or the wrap was tampered
/// with: the two are indistinguishable, by design).
pub fn unwrap_token_key(
    pin: &[u8],
    role: PinRole,
    token_id: &[u8; 8],
    wrap: &PinWrap,
) -> Option<KeyBytes> {
    let kek = kek(pin, &wrap.salt, wrap.iterations).sm4().ok()?;
    let plain = sm4::decrypt(
        &kek,
        Sm4Mode::Gcm,
        &wrap.nonce,
        &wrap_aad(role, token_id),
        &wrap.ciphertext,
    )
    .ok()?;
    KeyBytes::from_slice(plain.expose())
}

/// Encrypts a secret value under the token key; `aad` binds it to its object.
pub fn seal(
    token_key: &KeyBytes,
    aad: &[u8],
    plain: &[u8],
    rng: &dyn RandomSource,
) -> Result<Sealed> {
    let nonce = random::<12>(rng)?;
    let ciphertext = sm4::encrypt(&token_key.sm4()?, Sm4Mode::Gcm, &nonce, aad, plain)?;
    Ok(Sealed { nonce, ciphertext })
}

/// Decrypts a sealed value; `None` if the tag does not verify (wrong token key, tampering, or a
/// value moved to another object).
pub fn open(token_key: &KeyBytes, aad: &[u8], sealed: &Sealed) -> Option<Zeroizing<Vec<u8>>> {
    let plain = sm4::decrypt(
        &token_key.sm4().ok()?,
        Sm4Mode::Gcm,
        &sealed.nonce,
        aad,
        &sealed.ciphertext,
    )
    .ok()?;
    Some(Zeroizing::new(plain.expose().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::rng::SeededRandom;

    #[test]
    fn wrap_round_trip_and_wrong_pin() {
        let rng = SeededRandom::new(1);
        let k = KeyBytes::random(&rng).unwrap();
        let id = [1u8; 8];
        let w = wrap_token_key(b"1234", PinRole::User, &id, &k, &rng).unwrap();
        assert_eq!(w.ciphertext.len(), 32);
        let back = unwrap_token_key(b"1234", PinRole::User, &id, &w).unwrap();
        assert_eq!(back.expose(), k.expose());
        assert!(unwrap_token_key(b"1235", PinRole::User, &id, &w).is_none());
        // The role and the token are bound into the wrap.
        assert!(unwrap_token_key(b"1234", PinRole::So, &id, &w).is_none());
        assert!(unwrap_token_key(b"1234", PinRole::User, &[2u8; 8], &w).is_none());
    }

    #[test]
    fn seal_binds_aad() {
        let rng = SeededRandom::new(2);
        let k = KeyBytes::random(&rng).unwrap();
        let s = seal(&k, b"object-1", b"secret", &rng).unwrap();
        assert_eq!(open(&k, b"object-1", &s).unwrap().as_slice(), b"secret");
        assert!(open(&k, b"object-2", &s).is_none());
        assert!(!s.ciphertext.windows(6).any(|w| w == b"secret"));
    }
}
