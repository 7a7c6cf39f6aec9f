//! The mechanism table of a profile: one code per [`Operation`].

use cryptoki_sys::*;

/// The mechanism code for each operation; `None` means unsupported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mechanisms {
    /// SM2 key pair generation.
    pub sm2_keygen: Option<u64>,
    /// SM2 signing and verification.
    pub sm2_sign: Option<u64>,
    /// SM2 encryption and decryption.
    pub sm2_encrypt: Option<u64>,
    /// SM3.
    pub sm3_digest: Option<u64>,
    /// SM4 key generation.
    pub sm4_keygen: Option<u64>,
    /// SM4-CBC with PKCS#7 padding.
    pub sm4_cbc_pad: Option<u64>,
    /// SM4-GCM.
    pub sm4_gcm: Option<u64>,
    /// SM4-CTR.
    pub sm4_ctr: Option<u64>,
    /// Key wrapping with an SM4 key.
    pub wrap: Option<u64>,
    /// `C_UnwrapKey` of an SM4 key under an SM2 private key: the `symEncryptedKey` of a
    /// GM/T 0009 SM2EnvelopedKey, opened with the holder's (unwrap-only) signing key.
    pub sm2_unwrap: Option<u64>,
    /// `C_UnwrapKey` with SM4-ECB (no parameter) of an SM2 private key: the
    /// `sm2EncryptedPrivateKey` of a GM/T 0009 SM2EnvelopedKey.
    pub sm4_ecb_unwrap: Option<u64>,
}

/// The operations a profile can name a mechanism for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// SM2 key pair generation.
    Sm2Keygen,
    /// SM2 signing and verification.
    Sm2Sign,
    /// SM2 encryption and decryption.
    Sm2Encrypt,
    /// SM3.
    Sm3Digest,
    /// SM4 key generation.
    Sm4Keygen,
    /// SM4-CBC-PAD.
    Sm4CbcPad,
    /// SM4-GCM.
    Sm4Gcm,
    /// SM4-CTR.
    Sm4Ctr,
    /// Key wrapping.
    Wrap,
    /// Unwrapping an SM4 key under an SM2 private key (a GM/T 0009 envelope's key).
    Sm2Unwrap,
    /// Unwrapping an SM2 private key under SM4-ECB (a GM/T 0009 envelope's private key).
    Sm4EcbUnwrap,
}

impl Operation {
    /// Every operation, in profile order.
    pub const ALL: [Operation; 11] = [
        Operation::Sm2Keygen,
        Operation::Sm2Sign,
        Operation::Sm2Encrypt,
        Operation::Sm3Digest,
        Operation::Sm4Keygen,
        Operation::Sm4CbcPad,
        Operation::Sm4Gcm,
        Operation::Sm4Ctr,
        Operation::Wrap,
        Operation::Sm2Unwrap,
        Operation::Sm4EcbUnwrap,
    ];

    /// Returns the profile field name (`mechanisms.<name>`).
    pub fn field(self) -> &'static str {
        match self {
            Operation::Sm2Keygen => "sm2_keygen",
            Operation::Sm2Sign => "sm2_sign",
            Operation::Sm2Encrypt => "sm2_encrypt",
            Operation::Sm3Digest => "sm3_digest",
            Operation::Sm4Keygen => "sm4_keygen",
            Operation::Sm4CbcPad => "sm4_cbc_pad",
            Operation::Sm4Gcm => "sm4_gcm",
            Operation::Sm4Ctr => "sm4_ctr",
            Operation::Wrap => "wrap",
            Operation::Sm2Unwrap => "sm2_unwrap",
            Operation::Sm4EcbUnwrap => "sm4_ecb_unwrap",
        }
    }

    /// Returns a human name for messages.
    pub fn description(self) -> &'static str {
        match self {
            Operation::Sm2Keygen => "SM2 key generation",
            Operation::Sm2Sign => "SM2 signing",
            Operation::Sm2Encrypt => "SM2 encryption",
            Operation::Sm3Digest => "SM3 digest",
            Operation::Sm4Keygen => "SM4 key generation",
            Operation::Sm4CbcPad => "SM4-CBC",
            Operation::Sm4Gcm => "SM4-GCM",
            Operation::Sm4Ctr => "SM4-CTR",
            Operation::Wrap => "key wrapping",
            Operation::Sm2Unwrap => "unwrapping under an SM2 key (GM/T 0009 envelope)",
            Operation::Sm4EcbUnwrap => {
                "unwrapping an SM2 private key with SM4-ECB (GM/T 0009 envelope)"
            }
        }
    }

    /// Returns the `CKF_` flags a module must report for the mechanism to serve the operation.
    pub fn required_flags(self) -> u64 {
        u64::from(match self {
            Operation::Sm2Keygen => CKF_GENERATE_KEY_PAIR,
            Operation::Sm2Sign => CKF_SIGN | CKF_VERIFY,
            Operation::Sm2Encrypt
            | Operation::Sm4CbcPad
            | Operation::Sm4Gcm
            | Operation::Sm4Ctr => CKF_ENCRYPT | CKF_DECRYPT,
            Operation::Sm3Digest => CKF_DIGEST,
            Operation::Sm4Keygen => CKF_GENERATE,
            Operation::Wrap => CKF_WRAP | CKF_UNWRAP,
            Operation::Sm2Unwrap | Operation::Sm4EcbUnwrap => CKF_UNWRAP,
        })
    }
}

impl Mechanisms {
    /// Returns the code for `op`.
    pub fn get(&self, op: Operation) -> Option<u64> {
        match op {
            Operation::Sm2Keygen => self.sm2_keygen,
            Operation::Sm2Sign => self.sm2_sign,
            Operation::Sm2Encrypt => self.sm2_encrypt,
            Operation::Sm3Digest => self.sm3_digest,
            Operation::Sm4Keygen => self.sm4_keygen,
            Operation::Sm4CbcPad => self.sm4_cbc_pad,
            Operation::Sm4Gcm => self.sm4_gcm,
            Operation::Sm4Ctr => self.sm4_ctr,
            Operation::Wrap => self.wrap,
            Operation::Sm2Unwrap => self.sm2_unwrap,
            Operation::Sm4EcbUnwrap => self.sm4_ecb_unwrap,
        }
    }
}
