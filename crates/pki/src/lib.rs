//! SM2 X.509 for gmchain. Today: PKCS#10 certification requests signed through any
//! [`crypto::Signer`] (so the key can stay in an HSM) and their verification (proof of
//! possession, GM/T 0111 §8.1). Certificates, CRLs and chain validation arrive with the identity
//! issue (#4).
//!
//! It refuses: any signature algorithm but SM2-with-SM3 (1.2.156.10197.1.501, parameters absent
//! or NULL), any key but an SM2 point (id-ecPublicKey with curve 1.2.156.10197.1.301), and
//! trailing or non-DER bytes. Signatures use ZA with the default user ID over the signer's key.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod csr;
mod error;

pub use error::PkiError;

/// SM2-with-SM3 (GM/T 0006 / GB/T 33560): the only signature algorithm gmchain issues or accepts.
pub const OID_SM2_WITH_SM3: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
