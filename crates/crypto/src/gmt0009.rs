//! GM/T 0009 ASN.1 encodings of SM2 values, in strict DER.
//!
//! Decoders reject non-minimal INTEGERs, negative INTEGERs, long-form lengths where short form
//! fits, indefinite lengths, integers wider than 32 bytes and trailing bytes: the same value has
//! exactly one accepted encoding.

use crate::{CryptoError, Signature};
use der::asn1::{OctetStringRef, UintRef};
use der::{Decode, Encode, Reader, SliceReader};

fn to_array32(int: UintRef<'_>) -> Option<[u8; 32]> {
    let bytes = int.as_bytes();
    if bytes.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(bytes);
    Some(out)
}

/// Wraps already-encoded DER values in a SEQUENCE.
pub fn der_sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    let body = parts.concat();
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    push_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn uint_der(bytes: &[u8]) -> der::Result<Vec<u8>> {
    UintRef::new(bytes)?.to_der()
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes `SM2Signature ::= SEQUENCE { r INTEGER, s INTEGER }` (GM/T 0009 §7.3).
pub fn encode_signature(sig: &Signature) -> Vec<u8> {
    // UintRef strips leading zeros and adds the 0x00 a set top bit needs.
    match (uint_der(sig.r()), uint_der(sig.s())) {
        (Ok(r), Ok(s)) => der_sequence(&[r, s]),
        // Encoding a 32-byte unsigned INTEGER cannot fail.
        _ => Vec::new(),
    }
}

/// Decodes `SM2Signature` from strict DER.
pub fn decode_signature(der: &[u8]) -> Result<Signature, CryptoError> {
    let bad = |_| CryptoError::MalformedSignature {
        reason: "not a strict-DER SEQUENCE { r INTEGER, s INTEGER }",
    };
    let mut reader = SliceReader::new(der).map_err(bad)?;
    let (r, s) = reader
        .sequence(|seq| Ok::<_, der::Error>((UintRef::decode(seq)?, UintRef::decode(seq)?)))
        .map_err(bad)?;
    reader
        .finish()
        .map_err(|_| CryptoError::MalformedSignature {
            reason: "trailing bytes after the signature",
        })?;
    let too_wide = CryptoError::MalformedSignature {
        reason: "r or s wider than 32 bytes",
    };
    let r = to_array32(r).ok_or(too_wide.clone())?;
    let s = to_array32(s).ok_or(too_wide)?;
    Ok(Signature::from_scalars(r, s))
}

/// Encodes `SM2Cipher ::= SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET
/// STRING (32), CipherText OCTET STRING }` (GM/T 0009 §7.2) from the raw `C1 ‖ C3 ‖ C2` form
/// with an uncompressed C1.
pub fn encode_ciphertext(c1c3c2: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let CipherParts { x, y, c3, c2 } = split_c1c3c2(c1c3c2)?;
    let mal = |_| CryptoError::MalformedCiphertext {
        reason: "ciphertext too long to encode",
    };
    let x = uint_der(x).map_err(mal)?;
    let y = uint_der(y).map_err(mal)?;
    let c3 = OctetStringRef::new(c3)
        .and_then(|o| o.to_der())
        .map_err(mal)?;
    let c2 = OctetStringRef::new(c2)
        .and_then(|o| o.to_der())
        .map_err(mal)?;
    Ok(der_sequence(&[x, y, c3, c2]))
}

/// Decodes `SM2Cipher` from strict DER and returns the raw `04 ‖ x ‖ y ‖ C3 ‖ C2` form.
/// Curve membership of C1 is checked by the decrypting provider, not here.
pub fn decode_ciphertext(der: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let bad = |_| CryptoError::MalformedCiphertext {
        reason: "not a strict-DER SM2Cipher SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING, ciphertext OCTET STRING }",
    };
    let mut reader = SliceReader::new(der).map_err(bad)?;
    let (x, y, c3, c2) = reader
        .sequence(|seq| {
            Ok::<_, der::Error>((
                UintRef::decode(seq)?,
                UintRef::decode(seq)?,
                <&OctetStringRef>::decode(seq)?,
                <&OctetStringRef>::decode(seq)?,
            ))
        })
        .map_err(bad)?;
    reader
        .finish()
        .map_err(|_| CryptoError::MalformedCiphertext {
            reason: "trailing bytes after SM2Cipher",
        })?;
    let wide = CryptoError::MalformedCiphertext {
        reason: "C1 coordinate wider than 32 bytes",
    };
    let x = to_array32(x).ok_or(wide.clone())?;
    let y = to_array32(y).ok_or(wide)?;
    if c3.as_bytes().len() != 32 {
        return Err(CryptoError::MalformedCiphertext {
            reason: "HASH (C3) must be 32 bytes",
        });
    }
    if c2.as_bytes().is_empty() {
        return Err(CryptoError::MalformedCiphertext {
            reason: "CipherText (C2) is empty",
        });
    }
    let mut out = Vec::with_capacity(97 + c2.as_bytes().len());
    out.push(0x04);
    out.extend_from_slice(&x);
    out.extend_from_slice(&y);
    out.extend_from_slice(c3.as_bytes());
    out.extend_from_slice(c2.as_bytes());
    Ok(out)
}

/// The parts of a raw `04 ‖ x ‖ y ‖ C3 ‖ C2` ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct CipherParts<'a> {
    /// x of C1.
    pub x: &'a [u8],
    /// y of C1.
    pub y: &'a [u8],
    /// C3 = SM3(x2 ‖ M ‖ y2).
    pub c3: &'a [u8],
    /// C2 = M ⊕ t.
    pub c2: &'a [u8],
}

/// Splits raw `04 ‖ x ‖ y ‖ C3 ‖ C2` into its parts.
pub fn split_c1c3c2(c: &[u8]) -> Result<CipherParts<'_>, CryptoError> {
    if c.len() < 65 + 32 + 1 {
        return Err(CryptoError::MalformedCiphertext {
            reason: "C1‖C3‖C2 needs 65 + 32 bytes and at least one byte of C2",
        });
    }
    if c[0] != 0x04 {
        return Err(CryptoError::MalformedCiphertext {
            reason: "C1 must be an uncompressed point (0x04)",
        });
    }
    Ok(CipherParts {
        x: &c[1..33],
        y: &c[33..65],
        c3: &c[65..97],
        c2: &c[97..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(r0: u8, s0: u8) -> Signature {
        let mut r = [0x11u8; 32];
        let mut s = [0x22u8; 32];
        r[0] = r0;
        s[0] = s0;
        Signature::from_scalars(r, s)
    }

    #[test]
    fn signature_der_round_trip_and_leading_zero() {
        for (r0, s0) in [(0x80, 0x01), (0x00, 0x7f), (0xff, 0xff)] {
            let s = sig(r0, s0);
            let der = s.to_der();
            assert_eq!(Signature::from_der(&der).unwrap(), s);
        }
        // top bit set: INTEGER needs 33 bytes with a leading 0x00
        let der = sig(0x80, 0x01).to_der();
        assert_eq!(&der[..5], &[0x30, 0x45, 0x02, 0x21, 0x00]);
        // leading zero byte of r: INTEGER shrinks to 31 bytes
        let der = sig(0x00, 0x01).to_der();
        assert_eq!(&der[..4], &[0x30, 0x43, 0x02, 0x1f]);
    }

    #[test]
    fn signature_der_rejects_non_canonical() {
        let good = sig(0x01, 0x01).to_der();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Signature::from_der(&trailing).is_err());
        // non-minimal: 00 before a byte < 0x80
        let mut nonmin = vec![0x30, 0x45, 0x02, 0x21, 0x00];
        nonmin.extend_from_slice(&good[4..]);
        assert!(Signature::from_der(&nonmin).is_err());
        // negative integer
        let mut neg = good.clone();
        neg[4] = 0x81;
        assert!(Signature::from_der(&neg).is_err());
        // long-form length for a short value
        let mut long = vec![0x30, 0x81, good[1]];
        long.extend_from_slice(&good[2..]);
        assert!(Signature::from_der(&long).is_err());
        assert!(Signature::from_der(&[]).is_err());
        assert!(Signature::from_der(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn ciphertext_der_round_trip() {
        let mut raw = vec![0x04];
        raw.extend_from_slice(&[0x80; 32]);
        raw.extend_from_slice(&[0x00; 31]);
        raw.push(0x05);
        raw.extend_from_slice(&[0xaa; 32]);
        raw.extend_from_slice(b"hello");
        let der = encode_ciphertext(&raw).unwrap();
        assert_eq!(decode_ciphertext(&der).unwrap(), raw);
        let mut t = der.clone();
        t.push(0);
        assert!(decode_ciphertext(&t).is_err());
        assert!(encode_ciphertext(&raw[..97]).is_err());
    }
}
