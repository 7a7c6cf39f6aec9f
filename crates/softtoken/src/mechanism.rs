//! The mechanisms this token offers: their `C_GetMechanismInfo` entries, how a mechanism and its
//! parameter are validated, and the SM4 modes over `crypto_sm`.
#![forbid(unsafe_code)]

use crate::error::{Result, ck};
use crate::vendor::*;
use crypto::{CryptoError, Sm4Mode, UserId};
use crypto_sm::sm4::{self, Sm4Secret};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// What `C_GetMechanismInfo` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MechanismInfo {
    /// Smallest key size (bits for SM2, bytes for SM4, as PKCS#11 does for EC and AES).
    pub min_key_size: CK_ULONG,
    /// Largest key size.
    pub max_key_size: CK_ULONG,
    /// `CKF_*` capability flags.
    pub flags: CK_FLAGS,
}

const fn info(min: CK_ULONG, max: CK_ULONG, flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: min,
        max_key_size: max,
        flags,
    }
}

/// Every mechanism, in the order `C_GetMechanismList` reports them.
pub const MECHANISMS: &[(CK_MECHANISM_TYPE, MechanismInfo)] = &[
    (
        CKM_GM_SM2_KEY_PAIR_GEN,
        info(256, 256, CKF_GENERATE_KEY_PAIR),
    ),
    (CKM_GM_SM2_SIGN, info(256, 256, CKF_SIGN | CKF_VERIFY)),
    (CKM_GM_SM2_SM3_SIGN, info(256, 256, CKF_SIGN | CKF_VERIFY)),
    (
        CKM_GM_SM2_ENCRYPT,
        info(256, 256, CKF_ENCRYPT | CKF_DECRYPT | CKF_UNWRAP),
    ),
    (CKM_GM_SM3, info(0, 0, CKF_DIGEST)),
    (CKM_GM_SM4_KEY_GEN, info(16, 16, CKF_GENERATE)),
    (
        CKM_GM_SM4_ECB,
        info(16, 16, CKF_ENCRYPT | CKF_DECRYPT | CKF_UNWRAP),
    ),
    (CKM_GM_SM4_CBC, info(16, 16, CKF_ENCRYPT | CKF_DECRYPT)),
    (
        CKM_GM_SM4_CBC_PAD,
        info(16, 16, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP),
    ),
    (CKM_GM_SM4_CTR, info(16, 16, CKF_ENCRYPT | CKF_DECRYPT)),
    (
        CKM_GM_SM4_GCM,
        info(16, 16, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP),
    ),
];

/// Returns the info of a mechanism, or `CKR_MECHANISM_INVALID`.
pub fn mechanism_info(m: CK_MECHANISM_TYPE) -> Result<MechanismInfo> {
    MECHANISMS
        .iter()
        .find(|(t, _)| *t == m)
        .map(|(_, i)| *i)
        .ok_or(ck(
            CKR_MECHANISM_INVALID,
            "mechanism not supported by this token",
        ))
}

/// Returns whether the mechanism's parameter is a `CK_GCM_PARAMS` structure (the FFI layer
/// must read the structure); every other parameter is a byte string.
pub fn takes_gcm_params(m: CK_MECHANISM_TYPE) -> bool {
    m == CKM_GM_SM4_GCM
}

/// The fields of a `CK_GCM_PARAMS`, copied out by the FFI layer.
#[derive(Debug, Clone, Copy)]
pub struct GcmParamsRef<'a> {
    /// `pIv`/`ulIvLen`.
    pub iv: &'a [u8],
    /// `ulIvBits`.
    pub iv_bits: CK_ULONG,
    /// `pAAD`/`ulAADLen`.
    pub aad: &'a [u8],
    /// `ulTagBits`.
    pub tag_bits: CK_ULONG,
}

/// A mechanism parameter as the FFI layer found it.
#[derive(Debug, Clone, Copy)]
pub enum RawParam<'a> {
    /// The parameter bytes (empty for a NULL parameter).
    Bytes(&'a [u8]),
    /// A `CK_GCM_PARAMS`.
    Gcm(GcmParamsRef<'a>),
}

/// An SM4 cipher mode with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sm4Cipher {
    /// ECB, no padding.
    Ecb,
    /// CBC, no padding.
    Cbc([u8; 16]),
    /// CBC with PKCS#7 padding.
    CbcPad([u8; 16]),
    /// CTR with this initial counter block.
    Ctr([u8; 16]),
    /// GCM with a 12-byte IV, 128-bit tag, and AAD.
    Gcm {
        /// The IV.
        iv: [u8; 12],
        /// Additional authenticated data.
        aad: Vec<u8>,
    },
}

/// A validated mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `CKM_GM_SM2_KEY_PAIR_GEN`.
    Sm2KeyPairGen,
    /// `CKM_GM_SM2_SIGN`: input e, 32 bytes.
    Sm2Sign,
    /// `CKM_GM_SM2_SM3_SIGN` with the signer's ID.
    Sm2Sm3Sign(UserId),
    /// `CKM_GM_SM2_ENCRYPT`.
    Sm2Encrypt,
    /// `CKM_GM_SM3`.
    Sm3,
    /// `CKM_GM_SM4_KEY_GEN`.
    Sm4KeyGen,
    /// One of the SM4 cipher mechanisms.
    Sm4(Sm4Cipher),
}

fn param_invalid(reason: &'static str) -> crate::error::Error {
    ck(CKR_MECHANISM_PARAM_INVALID, reason)
}

fn bytes_param<'a>(p: RawParam<'a>) -> Result<&'a [u8]> {
    match p {
        RawParam::Bytes(b) => Ok(b),
        RawParam::Gcm(_) => Err(param_invalid("unexpected CK_GCM_PARAMS")),
    }
}

fn no_param(p: RawParam<'_>) -> Result<()> {
    if bytes_param(p)?.is_empty() {
        Ok(())
    } else {
        Err(param_invalid("this mechanism takes no parameter"))
    }
}

fn block_param(p: RawParam<'_>, what: &'static str) -> Result<[u8; 16]> {
    bytes_param(p)?.try_into().map_err(|_| param_invalid(what))
}

impl Mechanism {
    /// Validates a mechanism type and its parameter.
    pub fn parse(mtype: CK_MECHANISM_TYPE, param: RawParam<'_>) -> Result<Self> {
        mechanism_info(mtype)?;
        Ok(match mtype {
            CKM_GM_SM2_KEY_PAIR_GEN => no_param(param).map(|_| Self::Sm2KeyPairGen)?,
            CKM_GM_SM2_SIGN => no_param(param).map(|_| Self::Sm2Sign)?,
            CKM_GM_SM2_ENCRYPT => no_param(param).map(|_| Self::Sm2Encrypt)?,
            CKM_GM_SM3 => no_param(param).map(|_| Self::Sm3)?,
            CKM_GM_SM4_KEY_GEN => no_param(param).map(|_| Self::Sm4KeyGen)?,
            CKM_GM_SM2_SM3_SIGN => {
                let id = bytes_param(param)?;
                // An empty (or NULL) parameter selects the default ID 1234567812345678.
                let id = if id.is_empty() {
                    UserId::default()
                } else {
                    UserId::new(id.to_vec())
                        .map_err(|_| param_invalid("the SM2 user ID is at most 8191 bytes"))?
                };
                Self::Sm2Sm3Sign(id)
            }
            CKM_GM_SM4_ECB => no_param(param).map(|_| Self::Sm4(Sm4Cipher::Ecb))?,
            CKM_GM_SM4_CBC => Self::Sm4(Sm4Cipher::Cbc(block_param(
                param,
                "SM4-CBC takes a 16-byte IV",
            )?)),
            CKM_GM_SM4_CBC_PAD => Self::Sm4(Sm4Cipher::CbcPad(block_param(
                param,
                "SM4-CBC-PAD takes a 16-byte IV",
            )?)),
            CKM_GM_SM4_CTR => Self::Sm4(Sm4Cipher::Ctr(block_param(
                param,
                "SM4-CTR takes a 16-byte initial counter block",
            )?)),
            CKM_GM_SM4_GCM => {
                let RawParam::Gcm(g) = param else {
                    return Err(param_invalid("SM4-GCM takes a CK_GCM_PARAMS"));
                };
                let iv: [u8; 12] =
                    g.iv.try_into()
                        .map_err(|_| param_invalid("SM4-GCM takes a 12-byte IV (RFC 8998)"))?;
                // ulIvBits is informational in v2.40; accept 0 (unset) or the matching 96.
                if g.iv_bits != 0 && g.iv_bits != 96 {
                    return Err(param_invalid("ulIvBits disagrees with the 12-byte IV"));
                }
                if g.tag_bits != 128 {
                    return Err(param_invalid("SM4-GCM uses a 128-bit tag"));
                }
                Self::Sm4(Sm4Cipher::Gcm {
                    iv,
                    aad: g.aad.to_vec(),
                })
            }
            _ => return Err(ck(CKR_MECHANISM_INVALID, "mechanism not supported")),
        })
    }

    /// Returns the mechanism's `CKM_*` value.
    pub fn to_ck(&self) -> CK_MECHANISM_TYPE {
        match self {
            Self::Sm2KeyPairGen => CKM_GM_SM2_KEY_PAIR_GEN,
            Self::Sm2Sign => CKM_GM_SM2_SIGN,
            Self::Sm2Sm3Sign(_) => CKM_GM_SM2_SM3_SIGN,
            Self::Sm2Encrypt => CKM_GM_SM2_ENCRYPT,
            Self::Sm3 => CKM_GM_SM3,
            Self::Sm4KeyGen => CKM_GM_SM4_KEY_GEN,
            Self::Sm4(Sm4Cipher::Ecb) => CKM_GM_SM4_ECB,
            Self::Sm4(Sm4Cipher::Cbc(_)) => CKM_GM_SM4_CBC,
            Self::Sm4(Sm4Cipher::CbcPad(_)) => CKM_GM_SM4_CBC_PAD,
            Self::Sm4(Sm4Cipher::Ctr(_)) => CKM_GM_SM4_CTR,
            Self::Sm4(Sm4Cipher::Gcm { .. }) => CKM_GM_SM4_GCM,
        }
    }

    /// Returns whether `C_GetMechanismInfo` lists `flag` for this mechanism.
    pub fn has_flag(&self, flag: CK_FLAGS) -> bool {
        mechanism_info(self.to_ck()).is_ok_and(|i| i.flags & flag != 0)
    }
}

fn data_len(reason: &'static str) -> crate::error::Error {
    ck(CKR_DATA_LEN_RANGE, reason)
}

fn enc_len(reason: &'static str) -> crate::error::Error {
    ck(CKR_ENCRYPTED_DATA_LEN_RANGE, reason)
}

impl Sm4Cipher {
    /// Returns the ciphertext length for `n` plaintext bytes, or the length error.
    pub fn encrypted_len(&self, n: usize) -> Result<usize> {
        match self {
            Self::Ecb | Self::Cbc(_) if !n.is_multiple_of(16) => Err(data_len(
                "SM4-ECB and SM4-CBC without padding take whole 16-byte blocks",
            )),
            Self::Ecb | Self::Cbc(_) | Self::Ctr(_) => Ok(n),
            Self::CbcPad(_) => Ok(n - n % 16 + 16),
            Self::Gcm { .. } => Ok(n + 16),
        }
    }

    /// Returns an upper bound of the plaintext length for `n` ciphertext bytes (exact except
    /// for CBC-PAD, where the padding is only known after decryption), or the length error.
    pub fn decrypted_len(&self, n: usize) -> Result<usize> {
        match self {
            Self::Ecb | Self::Cbc(_) if !n.is_multiple_of(16) => Err(enc_len(
                "SM4-ECB and SM4-CBC ciphertexts are whole 16-byte blocks",
            )),
            Self::CbcPad(_) if n == 0 || !n.is_multiple_of(16) => Err(enc_len(
                "an SM4-CBC-PAD ciphertext is a positive number of 16-byte blocks",
            )),
            Self::Gcm { .. } if n < 16 => {
                Err(enc_len("an SM4-GCM ciphertext ends with a 16-byte tag"))
            }
            Self::Gcm { .. } => Ok(n - 16),
            _ => Ok(n),
        }
    }

    /// Encrypts.
    pub fn encrypt(&self, key: &Sm4Secret, data: &[u8]) -> Result<Vec<u8>> {
        self.encrypted_len(data.len())?;
        Ok(match self {
            Self::Ecb => data
                .chunks_exact(16)
                .flat_map(|b| sm4::encrypt_block(key, &block(b)))
                .collect(),
            Self::Cbc(iv) => {
                // GB/T 17964-2021 §7: C_i = E(P_i ⊕ C_{i−1}), C_0 = IV. No padding.
                let mut prev = *iv;
                let mut out = Vec::with_capacity(data.len());
                for b in data.chunks_exact(16) {
                    let mut x = block(b);
                    xor(&mut x, &prev);
                    prev = sm4::encrypt_block(key, &x);
                    out.extend_from_slice(&prev);
                }
                out
            }
            Self::CbcPad(iv) => sm4::encrypt(key, Sm4Mode::Cbc, iv, &[], data)?,
            Self::Ctr(icb) => sm4::encrypt(key, Sm4Mode::Ctr, icb, &[], data)?,
            Self::Gcm { iv, aad } => sm4::encrypt(key, Sm4Mode::Gcm, iv, aad, data)?,
        })
    }

    /// Decrypts. Padding and tag failures are `CKR_ENCRYPTED_DATA_INVALID`, and nothing is
    /// released with them.
    pub fn decrypt(&self, key: &Sm4Secret, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.decrypted_len(data.len())?;
        let invalid = |e: CryptoError| match e {
            CryptoError::TagMismatch | CryptoError::BadPadding { .. } => {
                ck(CKR_ENCRYPTED_DATA_INVALID, "tag or padding does not verify")
            }
            other => other.into(),
        };
        Ok(match self {
            Self::Ecb => Zeroizing::new(
                data.chunks_exact(16)
                    .flat_map(|b| sm4::decrypt_block(key, &block(b)))
                    .collect(),
            ),
            Self::Cbc(iv) => {
                let mut prev = *iv;
                let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
                for b in data.chunks_exact(16) {
                    let c = block(b);
                    let mut p = sm4::decrypt_block(key, &c);
                    xor(&mut p, &prev);
                    prev = c;
                    out.extend_from_slice(&p);
                }
                out
            }
            Self::CbcPad(iv) => Zeroizing::new(
                sm4::decrypt(key, Sm4Mode::Cbc, iv, &[], data)
                    .map_err(invalid)?
                    .expose()
                    .to_vec(),
            ),
            Self::Ctr(icb) => Zeroizing::new(
                sm4::decrypt(key, Sm4Mode::Ctr, icb, &[], data)?
                    .expose()
                    .to_vec(),
            ),
            Self::Gcm { iv, aad } => Zeroizing::new(
                sm4::decrypt(key, Sm4Mode::Gcm, iv, aad, data)
                    .map_err(invalid)?
                    .expose()
                    .to_vec(),
            ),
        })
    }
}

impl Sm4Cipher {
    /// Returns whether the mechanism authenticates what it decrypts (GCM), so that no altered
    /// blob is ever accepted.
    pub fn authenticates(&self) -> bool {
        matches!(self, Self::Gcm { .. })
    }

    /// Decrypts a wrapped key whose value must be `value_len` bytes (`C_UnwrapKey`). Every way
    /// a blob can be unusable (its length, its padding, its tag, the length of what it holds)
    /// is the same `CKR_WRAPPED_KEY_INVALID`, so the answer is no padding oracle.
    ///
    /// For CBC-PAD the whole padding is known before decrypting, because the value's length
    /// is: `value_len` bytes always pad to the same blob length and the same padding bytes
    /// (PKCS #7: n bytes of value n). The blob length is compared first (it is public), then
    /// the blob is decrypted without unpadding and the expected padding compared in full, in
    /// constant time. Nothing depends on where in the padding a difference is.
    pub fn unwrap_value(
        &self,
        key: &Sm4Secret,
        data: &[u8],
        value_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let invalid = || ck(CKR_WRAPPED_KEY_INVALID, "the wrapped key is not valid");
        let expected = self.encrypted_len(value_len).map_err(|_| invalid())?;
        if data.len() != expected {
            return Err(invalid());
        }
        match self {
            Self::CbcPad(iv) => {
                let mut plain = Self::Cbc(*iv).decrypt(key, data).map_err(|_| invalid())?;
                let pad = u8::try_from(expected - value_len).map_err(|_| invalid())?;
                let diff = plain[value_len..]
                    .iter()
                    .fold(0u8, |acc, b| acc | (b ^ pad));
                if diff != 0 {
                    return Err(invalid());
                }
                plain.truncate(value_len);
                Ok(plain)
            }
            Self::Gcm { .. } => self.decrypt(key, data).map_err(|_| invalid()),
            // GM/T 0009 SM2EnvelopedKey: d as two SM4-ECB blocks. The caller checks the result
            // against the public key it must belong to (`Module::unwrap_key`).
            Self::Ecb => self.decrypt(key, data).map_err(|_| invalid()),
            // Not key-wrapping mechanisms (no CKF_UNWRAP); never reached.
            Self::Cbc(_) | Self::Ctr(_) => Err(invalid()),
        }
    }
}

fn block(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(b);
    out
}

fn xor(a: &mut [u8; 16], b: &[u8; 16]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Sm4Secret {
        Sm4Secret::from_slice(&hex::decode("0123456789abcdeffedcba9876543210").unwrap()).unwrap()
    }

    #[test]
    fn parse_parameters() {
        assert_eq!(
            Mechanism::parse(CKM_GM_SM2_SM3_SIGN, RawParam::Bytes(&[])).unwrap(),
            Mechanism::Sm2Sm3Sign(UserId::default())
        );
        assert!(Mechanism::parse(CKM_GM_SM2_SM3_SIGN, RawParam::Bytes(&[0u8; 8192])).is_err());
        assert_eq!(
            Mechanism::parse(CKM_GM_SM2_SIGN, RawParam::Bytes(&[1]))
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            Mechanism::parse(CKM_GM_SM4_CBC, RawParam::Bytes(&[0; 15]))
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            Mechanism::parse(0x1234, RawParam::Bytes(&[]))
                .unwrap_err()
                .rv(),
            CKR_MECHANISM_INVALID
        );
        let g = |iv: &'static [u8], tag| {
            RawParam::Gcm(GcmParamsRef {
                iv,
                iv_bits: 0,
                aad: b"aad",
                tag_bits: tag,
            })
        };
        assert!(Mechanism::parse(CKM_GM_SM4_GCM, g(&[0; 12], 128)).is_ok());
        assert!(Mechanism::parse(CKM_GM_SM4_GCM, g(&[0; 12], 96)).is_err());
        assert!(Mechanism::parse(CKM_GM_SM4_GCM, g(&[0; 16], 128)).is_err());
        assert!(Mechanism::parse(CKM_GM_SM4_GCM, RawParam::Bytes(&[0; 12])).is_err());
    }

    #[test]
    fn ecb_is_the_standard_block_and_cbc_chains() {
        // GB/T 32907-2016 Annex A example 1.
        let pt = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let ct = Sm4Cipher::Ecb.encrypt(&key(), &pt).unwrap();
        assert_eq!(hex::encode(&ct), "681edf34d206965e86b3e94f536e4246");
        assert_eq!(
            Sm4Cipher::Ecb.decrypt(&key(), &ct).unwrap().as_slice(),
            &pt[..]
        );
        // CBC without padding equals CBC-PAD with the padding block removed.
        let iv = [7u8; 16];
        let data = [9u8; 48];
        let nopad = Sm4Cipher::Cbc(iv).encrypt(&key(), &data).unwrap();
        let pad = Sm4Cipher::CbcPad(iv).encrypt(&key(), &data).unwrap();
        assert_eq!(&pad[..48], &nopad[..]);
        assert_eq!(
            Sm4Cipher::Cbc(iv)
                .decrypt(&key(), &nopad)
                .unwrap()
                .as_slice(),
            &data
        );
        assert_eq!(
            Sm4Cipher::Cbc(iv)
                .encrypt(&key(), &[0; 15])
                .unwrap_err()
                .rv(),
            CKR_DATA_LEN_RANGE
        );
    }

    #[test]
    fn gcm_tag_failure_releases_nothing() {
        let c = Sm4Cipher::Gcm {
            iv: [1; 12],
            aad: b"hdr".to_vec(),
        };
        let mut ct = c.encrypt(&key(), b"hello").unwrap();
        assert_eq!(ct.len(), 21);
        assert_eq!(c.decrypt(&key(), &ct).unwrap().as_slice(), b"hello");
        ct[0] ^= 1;
        assert_eq!(
            c.decrypt(&key(), &ct).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            c.decrypt(&key(), &[0; 15]).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
    }
}
