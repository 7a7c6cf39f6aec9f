//! HSM profiles: one TOML file per PKCS#11 module, saying which codes the module uses for SM2,
//! SM3 and SM4, how it handles ZA, and which encodings it speaks. `hsm-profiles/README.md`
//! describes every field and how to fill one in from a vendor's header file.
//!
//! This file holds the validated profile and its option types; `parse` reads and validates the
//! TOML file, `mechanisms` is the mechanism table, and `library` resolves the module library.

use cryptoki_sys::*;
use std::path::{Path, PathBuf};

mod library;
mod mechanisms;
mod parse;

pub use library::LibraryPath;
pub use mechanisms::{Mechanisms, Operation};

/// The profile format this crate reads.
pub const PROFILE_FORMAT: u32 = 1;

/// The environment variable that, when set and not empty, names the module library for every
/// profile (it wins over the profile's `library`).
pub const MODULE_ENV: &str = "GMCHAIN_PKCS11_MODULE";

/// DER of the SM2 curve OID 1.2.156.10197.1.301 (sm2p256v1), the value of `CKA_EC_PARAMS`.
pub const SM2_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

/// A validated profile.
#[derive(Clone, Debug)]
pub struct Profile {
    file: PathBuf,
    name: String,
    description: Option<String>,
    library: String,
    library_override: Option<PathBuf>,
    development: bool,
    certification: Option<Certification>,
    quirks: Vec<String>,
    exclusive_object_writes: bool,
    sm2: Sm2Options,
    sm4: Sm4Options,
    mechanisms: Mechanisms,
}

/// The certification a profile declares for a production device, as printed on its
/// certificate. A declaration, not a proof: the conformance suite compares `manufacturer`,
/// `model` and `firmware` exactly with what the token reports (`C_GetTokenInfo`) and leaves the
/// certificate itself for the auditor to confirm with the issuing body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certification {
    /// The certificate number.
    pub certificate: String,
    /// The issuing body (for commercial cryptographic products, the GM certification body).
    pub issuer: String,
    /// The product model as on the certificate; the token's `C_GetTokenInfo` `model`.
    pub model: String,
    /// The manufacturer as the token reports it (`C_GetTokenInfo` `manufacturerID`).
    pub manufacturer: String,
    /// The certified firmware version, `major.minor` (`C_GetTokenInfo` `firmwareVersion`).
    pub firmware: String,
    /// Security level, if recorded.
    pub level: Option<String>,
    /// Expiry as written on the certificate, if recorded.
    pub valid_until: Option<String>,
}

/// How SM2 keys are represented in the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sm2KeyType {
    /// `CKK_EC` with `CKA_EC_PARAMS` = the SM2 curve OID.
    Ec,
    /// A vendor key type code (`CKK_SM2` of some header).
    Vendor(u64),
}

impl Sm2KeyType {
    /// Returns the `CKA_KEY_TYPE` value.
    pub fn code(self) -> u64 {
        match self {
            Sm2KeyType::Ec => u64::from(CKK_EC),
            Sm2KeyType::Vendor(code) => code,
        }
    }
}

/// Where the public point of an SM2 key is found and how it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKeyAttribute {
    /// `CKA_EC_POINT` holding DER `OCTET STRING(04‖x‖y)` (PKCS#11 as written).
    EcPointDer,
    /// `CKA_EC_POINT` holding the bare point `04‖x‖y`.
    EcPointRaw,
    /// A vendor attribute.
    Vendor {
        /// The attribute type code.
        attribute: u64,
        /// Its encoding.
        encoding: PointEncoding,
    },
}

impl PublicKeyAttribute {
    /// Returns the attribute type holding the point.
    pub fn attribute(self) -> u64 {
        match self {
            PublicKeyAttribute::EcPointDer | PublicKeyAttribute::EcPointRaw => {
                u64::from(CKA_EC_POINT)
            }
            PublicKeyAttribute::Vendor { attribute, .. } => attribute,
        }
    }

    /// Returns the encoding of the attribute's value.
    pub fn encoding(self) -> PointEncoding {
        match self {
            PublicKeyAttribute::EcPointDer => PointEncoding::Der,
            PublicKeyAttribute::EcPointRaw => PointEncoding::Raw,
            PublicKeyAttribute::Vendor { encoding, .. } => encoding,
        }
    }
}

/// Encodings of an SM2 public point in an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointEncoding {
    /// `04‖x‖y`.
    Raw,
    /// `x‖y`, 64 bytes.
    Xy,
    /// DER `OCTET STRING(04‖x‖y)`.
    Der,
}

/// What the signing mechanism takes as input (GB/T 32918.2 §6.1 A1-A2 are done by whom).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInput {
    /// The caller passes e = SM3(ZA‖M); the token does A3-A7 only.
    Digest,
    /// The caller passes M; the token computes ZA from the ID in the mechanism parameter.
    MessageWithId,
}

/// How the user ID reaches a `message-with-id` mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdParameter {
    /// The ID bytes are the mechanism parameter.
    Raw,
    /// No parameter: the token always uses its built-in ID (gmchain then refuses other IDs).
    None,
}

/// Signature encodings a token returns and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFormat {
    /// `r‖s`, 64 bytes.
    Raw,
    /// GM/T 0009 `SM2Signature` DER.
    Der,
}

/// SM2 ciphertext encodings a token returns and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiphertextFormat {
    /// `C1‖C3‖C2` (GB/T 32918.4-2016).
    C1C3C2,
    /// `C1‖C2‖C3` (the 2012 draft order some devices still use).
    C1C2C3,
    /// GM/T 0009 `SM2Cipher` DER.
    Der,
}

/// How an SM4-CTR mechanism takes its counter block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrParameter {
    /// The 16-byte initial counter block as the parameter.
    CounterBlock,
    /// `CK_AES_CTR_PARAMS { ulCounterBits = 128, cb }`, as for `CKM_AES_CTR`.
    AesCtrParams,
}

/// The parameter of the wrapping mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapParameter {
    /// No parameter (an ECB-style or key-wrap mechanism).
    None,
    /// A 16-byte IV; gmchain draws it from the token and prepends it to the wrapped key.
    Iv16,
}

/// SM2 behaviour of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm2Options {
    /// Key representation.
    pub key_type: Sm2KeyType,
    /// Public point location and encoding.
    pub public_key: PublicKeyAttribute,
    /// Whether key generation templates carry `CKA_EC_PARAMS` (the SM2 OID).
    pub keygen_ec_params: bool,
    /// Signing input, when the profile names a signing mechanism.
    pub sign_input: Option<SignInput>,
    /// ID parameter for `message-with-id`.
    pub id_parameter: IdParameter,
    /// Signature encoding, when the profile names a signing mechanism.
    pub signature: Option<SignatureFormat>,
    /// Ciphertext encoding, when the profile names an encryption mechanism.
    pub ciphertext: Option<CiphertextFormat>,
    /// Encoding of the SM2 ciphertext `C_UnwrapKey` takes with `mechanisms.sm2_unwrap`.
    pub unwrap_ciphertext: Option<CiphertextFormat>,
}

/// SM4 behaviour of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm4Options {
    /// `CKA_KEY_TYPE` of SM4 keys.
    pub key_type: Option<u64>,
    /// CTR parameter form.
    pub ctr_parameter: Option<CtrParameter>,
    /// Wrap mechanism parameter form.
    pub wrap_parameter: Option<WrapParameter>,
}

impl Profile {
    /// Returns the file the profile was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Returns the profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the free-text description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Returns the module library as written in the profile.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// Returns whether this is a development token.
    pub fn development(&self) -> bool {
        self.development
    }

    /// Returns the device certification, if recorded.
    pub fn certification(&self) -> Option<&Certification> {
        self.certification.as_ref()
    }

    /// Returns the label results made with this profile carry. A certification is the
    /// profile's declaration, and the label says so.
    pub fn assurance(&self) -> String {
        match (&self.certification, self.development) {
            (_, true) => "development token, not certified".to_string(),
            (Some(c), false) => format!(
                "declared certified device (not confirmed): model {}, certificate {} ({})",
                c.model, c.certificate, c.issuer
            ),
            (None, false) => "no certification recorded".to_string(),
        }
    }

    /// Returns the free-text quirks.
    pub fn quirks(&self) -> &[String] {
        &self.quirks
    }

    /// Returns whether creating or destroying objects must exclude every other operation on
    /// the module in this process (a module whose object store breaks when objects are read
    /// while one is written, as SoftHSM 2.6 does).
    pub fn exclusive_object_writes(&self) -> bool {
        self.exclusive_object_writes
    }

    /// Returns the SM2 options.
    pub fn sm2(&self) -> &Sm2Options {
        &self.sm2
    }

    /// Returns the SM4 options.
    pub fn sm4(&self) -> &Sm4Options {
        &self.sm4
    }

    /// Returns the mechanism table.
    pub fn mechanisms(&self) -> &Mechanisms {
        &self.mechanisms
    }
}

#[cfg(test)]
mod tests;
