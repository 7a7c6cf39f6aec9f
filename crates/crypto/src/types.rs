use crate::CryptoError;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The default SM2 user ID (GM/T 0009 §10), used when two parties agreed on no other.
pub const DEFAULT_USER_ID: &[u8] = b"1234567812345678";
/// The user ID RFC 8998 §3.2.1 prescribes for TLS 1.3 CertificateVerify signatures.
pub const TLS13_USER_ID: &[u8] = b"TLSv1.3+GM+Cipher+Suite";
/// ENTL is two bytes holding the ID length in bits, so an ID has at most 8191 bytes.
pub const MAX_USER_ID_LEN: usize = 8191;

/// The signer's distinguishing identifier (IDA of GB/T 32918.2 §5.5): arbitrary bytes, not text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(Vec<u8>);

impl UserId {
    /// Returns a user ID, refusing one that ENTL cannot describe.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, CryptoError> {
        let bytes = bytes.into();
        if bytes.len() > MAX_USER_ID_LEN {
            return Err(CryptoError::UserIdTooLong {
                len: bytes.len(),
                max: MAX_USER_ID_LEN,
            });
        }
        Ok(Self(bytes))
    }

    /// Returns the bytes of the ID.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Returns ENTL: the ID's length in bits as two big-endian bytes.
    pub fn entl(&self) -> [u8; 2] {
        // GB/T 32918.2 §5.5: ENTL is the bit length of ID in two bytes. `new` bounds the length.
        let bits = (self.0.len() * 8) as u16;
        bits.to_be_bytes()
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self(DEFAULT_USER_ID.to_vec())
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "UserId({s:?})"),
            _ => write!(f, "UserId(hex:{})", hex::encode(&self.0)),
        }
    }
}

/// An SM2 public key in uncompressed form `04 ‖ x ‖ y` (GB/T 32918.1 §4.2.9).
///
/// This type fixes the encoding only; whether the point lies on sm2p256v1 is checked by every
/// provider before use (GB/T 32918.1 §6.2), because bytes can arrive from anywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 65]);

impl PublicKey {
    /// Wraps 65 bytes that start with 0x04. Curve membership is not checked here.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 65] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey {
                reason: "an uncompressed point is 65 bytes",
            })?;
        if arr[0] != 0x04 {
            return Err(CryptoError::InvalidPublicKey {
                reason: "an uncompressed point starts with 0x04",
            });
        }
        Ok(Self(arr))
    }

    /// Returns `04 ‖ x ‖ y`.
    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.0
    }

    /// Returns the affine x coordinate.
    pub fn x(&self) -> &[u8] {
        &self.0[1..33]
    }

    /// Returns the affine y coordinate.
    pub fn y(&self) -> &[u8] {
        &self.0[33..65]
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

/// An SM2 signature (r, s), each a 32-byte big-endian integer.
///
/// Range checks (1 ≤ r, s ≤ n−1) belong to verification (GB/T 32918.2 §7.1 B1, B2), which every
/// verifier performs; this type only fixes sizes and encodings.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    r: [u8; 32],
    s: [u8; 32],
}

impl Signature {
    /// Builds a signature from its two integers.
    pub fn from_scalars(r: [u8; 32], s: [u8; 32]) -> Self {
        Self { r, s }
    }

    /// Decodes the raw `r ‖ s` form (64 bytes).
    pub fn from_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 64 {
            return Err(CryptoError::MalformedSignature {
                reason: "raw r‖s is 64 bytes",
            });
        }
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Ok(Self { r, s })
    }

    /// Returns the raw `r ‖ s` form.
    pub fn to_raw(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }

    /// Decodes GM/T 0009 `SM2Signature ::= SEQUENCE { r INTEGER, s INTEGER }` in strict DER.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        crate::gmt0009::decode_signature(der)
    }

    /// Encodes GM/T 0009 `SM2Signature` in DER.
    pub fn to_der(&self) -> Vec<u8> {
        crate::gmt0009::encode_signature(self)
    }

    /// Returns r.
    pub fn r(&self) -> &[u8; 32] {
        &self.r
    }

    /// Returns s.
    pub fn s(&self) -> &[u8; 32] {
        &self.s
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature(r={}, s={})",
            hex::encode(self.r),
            hex::encode(self.s)
        )
    }
}

/// An SM3 digest (GB/T 32905).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Returns the digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", hex::encode(self.0))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Secret bytes (a plaintext, a symmetric key, a passphrase): zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Exposes the bytes; keep the borrow short.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Returns the length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_bounds_and_entl() {
        assert_eq!(UserId::default().entl(), [0x00, 0x80]);
        assert!(UserId::new(vec![0u8; MAX_USER_ID_LEN]).is_ok());
        assert_eq!(
            UserId::new(vec![0u8; MAX_USER_ID_LEN]).unwrap().entl(),
            [0xff, 0xf8]
        );
        assert_eq!(
            UserId::new(vec![0u8; MAX_USER_ID_LEN + 1]),
            Err(CryptoError::UserIdTooLong {
                len: 8192,
                max: 8191
            })
        );
        assert_eq!(UserId::new(Vec::new()).unwrap().entl(), [0, 0]);
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(
            format!("{:?}", UserId::new(vec![0xff, 0x00]).unwrap()),
            "UserId(hex:ff00)"
        );
    }

    #[test]
    fn public_key_form() {
        assert!(PublicKey::from_uncompressed(&[4u8; 64]).is_err());
        let mut b = [0u8; 65];
        assert!(PublicKey::from_uncompressed(&b).is_err());
        b[0] = 4;
        assert!(PublicKey::from_uncompressed(&b).is_ok());
    }
}
