//! The vendor-defined key types and mechanisms of this token. The numbers are part of the
//! interface: the `hsm` crate and the HSM profile files use exactly these values.
#![forbid(unsafe_code)]

use cryptoki_sys::{CK_KEY_TYPE, CK_MECHANISM_TYPE};

/// Key type of SM2 key pairs (GB/T 32918).
pub const CKK_GM_SM2: CK_KEY_TYPE = 0x8047_4D01;
/// Key type of SM4 secret keys (GB/T 32907), 16 bytes.
pub const CKK_GM_SM4: CK_KEY_TYPE = 0x8047_4D02;

/// SM2 key pair generation.
pub const CKM_GM_SM2_KEY_PAIR_GEN: CK_MECHANISM_TYPE = 0x8047_4D10;
/// SM2 signature over a caller-computed e = SM3(ZA ‖ M) (32 bytes in, raw r ‖ s out).
pub const CKM_GM_SM2_SIGN: CK_MECHANISM_TYPE = 0x8047_4D11;
/// SM2 signature over a message; the parameter is the user ID (empty: the default ID).
pub const CKM_GM_SM2_SM3_SIGN: CK_MECHANISM_TYPE = 0x8047_4D12;
/// SM2 public-key encryption, raw C1 ‖ C3 ‖ C2 with an uncompressed C1.
pub const CKM_GM_SM2_ENCRYPT: CK_MECHANISM_TYPE = 0x8047_4D13;
/// SM3 digest.
pub const CKM_GM_SM3: CK_MECHANISM_TYPE = 0x8047_4D20;
/// SM4 key generation.
pub const CKM_GM_SM4_KEY_GEN: CK_MECHANISM_TYPE = 0x8047_4D30;
/// SM4-ECB, no padding.
pub const CKM_GM_SM4_ECB: CK_MECHANISM_TYPE = 0x8047_4D31;
/// SM4-CBC with a 16-byte IV parameter, no padding.
pub const CKM_GM_SM4_CBC: CK_MECHANISM_TYPE = 0x8047_4D32;
/// SM4-CBC with a 16-byte IV parameter and PKCS#7 padding.
pub const CKM_GM_SM4_CBC_PAD: CK_MECHANISM_TYPE = 0x8047_4D33;
/// SM4-CTR; the parameter is the 16-byte initial counter block (128-bit big-endian increment).
pub const CKM_GM_SM4_CTR: CK_MECHANISM_TYPE = 0x8047_4D34;
/// SM4-GCM; the parameter is `CK_GCM_PARAMS` (12-byte IV, 128-bit tag); output ciphertext ‖ tag.
pub const CKM_GM_SM4_GCM: CK_MECHANISM_TYPE = 0x8047_4D35;

/// DER of the sm2p256v1 OID 1.2.156.10197.1.301, the `CKA_EC_PARAMS` of every SM2 key.
pub const SM2_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];

/// Returns `CKA_EC_POINT` for an SM2 public key: the DER OCTET STRING around `04 ‖ x ‖ y`, as
/// PKCS#11 stores EC points.
pub fn ec_point_der(point: &[u8; 65]) -> Vec<u8> {
    let mut out = Vec::with_capacity(67);
    out.push(0x04);
    out.push(65);
    out.extend_from_slice(point);
    out
}

/// Reads a `CKA_EC_POINT` value: the DER OCTET STRING form, or (as some clients send it) the
/// bare point. Curve membership is checked by the caller.
pub fn ec_point_from_attribute(value: &[u8]) -> Option<&[u8]> {
    // The total length tells the forms apart: 67/35 bytes are DER around a 65/33-byte point.
    match (value.len(), value.first(), value.get(1)) {
        (67, Some(0x04), Some(65)) | (35, Some(0x04), Some(33)) => Some(&value[2..]),
        (65 | 33, _, _) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_forms() {
        let mut p = [7u8; 65];
        p[0] = 4;
        let der = ec_point_der(&p);
        assert_eq!(&der[..2], &[0x04, 0x41]);
        assert_eq!(ec_point_from_attribute(&der), Some(&p[..]));
        assert_eq!(ec_point_from_attribute(&p), Some(&p[..]));
        assert_eq!(ec_point_from_attribute(&der[..66]), None);
        assert_eq!(ec_point_from_attribute(&[]), None);
    }
}
