//! SM4 (GB/T 32907-2016) and the modes gmchain uses: CBC with PKCS#7 padding, CTR (128-bit
//! big-endian counter, as OpenSSL), and the RFC 8998 AEADs SM4-GCM and SM4-CCM (12-byte nonce,
//! 16-byte tag appended to the ciphertext).
//!
//! Note on side channels: the `sm4` crate uses a table S-box, which is not constant-time with
//! respect to cache timing. Long-lived SM4 keys belong in the HSM.

use aes_gcm::aead::{Aead, Payload};
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
    StreamCipher,
};
use crypto::{CryptoError, Secret, Sm4Mode};
use sm4::Sm4;
use zeroize::Zeroizing;

type Sm4Gcm = aes_gcm::AesGcm<Sm4, aes_gcm::aead::consts::U12>;
type Sm4Ccm = ccm::Ccm<Sm4, ccm::consts::U16, ccm::consts::U12>;
type Sm4Ctr = ctr::Ctr128BE<Sm4>;

/// A 128-bit SM4 key, zeroized on drop.
#[derive(Clone)]
pub struct Sm4Secret(Zeroizing<[u8; 16]>);

impl core::fmt::Debug for Sm4Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sm4Secret([redacted])")
    }
}

impl Sm4Secret {
    /// Takes a 16-byte key.
    pub fn from_slice(key: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 16] = key.try_into().map_err(|_| CryptoError::InvalidLength {
            what: "SM4 key",
            expected: 16,
            got: key.len(),
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn cipher(&self) -> Sm4 {
        Sm4::new(&(*self.0).into())
    }
}

fn check_iv(mode: Sm4Mode, iv: &[u8]) -> Result<(), CryptoError> {
    if iv.len() != mode.iv_len() {
        return Err(CryptoError::InvalidLength {
            what: if mode.is_aead() {
                "SM4 nonce (RFC 8998: 12 bytes)"
            } else {
                "SM4 IV"
            },
            expected: mode.iv_len(),
            got: iv.len(),
        });
    }
    Ok(())
}

fn check_no_aad(mode: Sm4Mode, aad: &[u8]) -> Result<(), CryptoError> {
    if !mode.is_aead() && !aad.is_empty() {
        return Err(CryptoError::InvalidInput {
            reason: "AAD is only meaningful for GCM and CCM",
        });
    }
    Ok(())
}

/// Encrypts one 16-byte block (GB/T 32907-2016 §7.1).
pub fn encrypt_block(key: &Sm4Secret, block: &[u8; 16]) -> [u8; 16] {
    let mut b = (*block).into();
    key.cipher().encrypt_block(&mut b);
    b.into()
}

/// Decrypts one 16-byte block (GB/T 32907-2016 §7.2: round keys in reverse order).
pub fn decrypt_block(key: &Sm4Secret, block: &[u8; 16]) -> [u8; 16] {
    let mut b = (*block).into();
    key.cipher().decrypt_block(&mut b);
    b.into()
}

/// An RFC 8998 AEAD (`AEAD_SM4_GCM` or `AEAD_SM4_CCM`: 12-byte nonce, 16-byte tag) with its
/// key schedule expanded once, sealing and opening in place: the record layer of TLS 1.3
/// encrypts every record under one key, so neither the key schedule nor a copy of the record
/// is paid per record.
pub struct Sm4Aead(AeadInner);

enum AeadInner {
    Gcm(Box<Sm4Gcm>),
    Ccm(Box<Sm4Ccm>),
}

impl core::fmt::Debug for Sm4Aead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self.0 {
            AeadInner::Gcm(_) => "Sm4Aead(GCM, [redacted])",
            AeadInner::Ccm(_) => "Sm4Aead(CCM, [redacted])",
        })
    }
}

/// The tag length of both RFC 8998 AEADs.
pub const AEAD_TAG_LEN: usize = 16;

impl Sm4Aead {
    /// Expands `key` for `mode`, which must be [`Sm4Mode::Gcm`] or [`Sm4Mode::Ccm`].
    pub fn new(key: &Sm4Secret, mode: Sm4Mode) -> Result<Self, CryptoError> {
        // The expanded key schedules and GHASH key are wiped on drop (the `zeroize` features
        // of `sm4` and `aes-gcm`); so is this copy of the key.
        let k = zeroize::Zeroizing::new((*key.0).into());
        match mode {
            Sm4Mode::Gcm => Ok(Self(AeadInner::Gcm(Box::new(Sm4Gcm::new(&k))))),
            Sm4Mode::Ccm => Ok(Self(AeadInner::Ccm(Box::new(Sm4Ccm::new(&k))))),
            Sm4Mode::Cbc | Sm4Mode::Ctr => Err(CryptoError::InvalidInput {
                reason: "an AEAD is SM4-GCM or SM4-CCM",
            }),
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        use aes_gcm::aead::AeadInOut;
        let n = (*nonce).into();
        let tag = match &self.0 {
            AeadInner::Gcm(c) => c
                .encrypt_inout_detached(&n, aad, buf.into())
                .map_err(|_| CryptoError::InvalidInput {
                    reason: "SM4-GCM plaintext too long",
                })?
                .into(),
            AeadInner::Ccm(c) => c
                .encrypt_inout_detached(&n, aad, buf.into())
                .map_err(|_| CryptoError::InvalidInput {
                    reason: "SM4-CCM plaintext longer than 2^24 - 1 bytes",
                })?
                .into(),
        };
        Ok(tag)
    }

    /// Decrypts `buf` in place if `tag` verifies; otherwise fails with
    /// [`CryptoError::TagMismatch`] and `buf` must be discarded.
    pub fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        use aes_gcm::aead::AeadInOut;
        let n = (*nonce).into();
        let t = (*tag).into();
        match &self.0 {
            AeadInner::Gcm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &t),
            AeadInner::Ccm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &t),
        }
        .map_err(|_| CryptoError::TagMismatch)
    }
}

/// Encrypts with the given mode; AEAD output is ciphertext ‖ tag.
pub fn encrypt(
    key: &Sm4Secret,
    mode: Sm4Mode,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_iv(mode, iv)?;
    check_no_aad(mode, aad)?;
    match mode {
        Sm4Mode::Cbc => {
            let enc = cbc::Encryptor::<Sm4>::new_from_slices(key.bytes(), iv).map_err(|_| {
                CryptoError::InvalidInput {
                    reason: "SM4-CBC key or IV length",
                }
            })?;
            Ok(enc.encrypt_padded_vec::<cbc::cipher::block_padding::Pkcs7>(data))
        }
        Sm4Mode::Ctr => {
            let mut out = data.to_vec();
            ctr_apply(key, iv, &mut out)?;
            Ok(out)
        }
        Sm4Mode::Gcm => Sm4Gcm::new(&(*key.0).into())
            .encrypt(
                iv.try_into()
                    .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?,
                Payload { msg: data, aad },
            )
            .map_err(|_| CryptoError::InvalidInput {
                reason: "SM4-GCM plaintext too long",
            }),
        Sm4Mode::Ccm => Sm4Ccm::new(&(*key.0).into())
            .encrypt(
                iv.try_into()
                    .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?,
                Payload { msg: data, aad },
            )
            .map_err(|_| CryptoError::InvalidInput {
                reason: "SM4-CCM plaintext longer than 2^24 - 1 bytes",
            }),
    }
}

/// Decrypts with the given mode. AEAD modes release nothing unless the tag verifies; CBC
/// checks PKCS#7 padding (CBC is unauthenticated: use it only under a MAC or signature).
pub fn decrypt(
    key: &Sm4Secret,
    mode: Sm4Mode,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Secret, CryptoError> {
    check_iv(mode, iv)?;
    check_no_aad(mode, aad)?;
    match mode {
        Sm4Mode::Cbc => {
            if data.is_empty() || !data.len().is_multiple_of(16) {
                return Err(CryptoError::BadPadding {
                    reason: "ciphertext length is not a positive multiple of 16",
                });
            }
            let dec = cbc::Decryptor::<Sm4>::new_from_slices(key.bytes(), iv).map_err(|_| {
                CryptoError::InvalidInput {
                    reason: "SM4-CBC key or IV length",
                }
            })?;
            dec.decrypt_padded_vec::<cbc::cipher::block_padding::Pkcs7>(data)
                .map(Secret::new)
                .map_err(|_| CryptoError::BadPadding {
                    reason: "PKCS#7 padding is invalid (wrong key or IV, or tampered data)",
                })
        }
        Sm4Mode::Ctr => {
            let mut out = data.to_vec();
            ctr_apply(key, iv, &mut out)?;
            Ok(Secret::new(out))
        }
        Sm4Mode::Gcm | Sm4Mode::Ccm => {
            if data.len() < 16 {
                return Err(CryptoError::InvalidLength {
                    what: "AEAD input (ciphertext ‖ 16-byte tag)",
                    expected: 16,
                    got: data.len(),
                });
            }
            let nonce = iv
                .try_into()
                .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?;
            let payload = Payload { msg: data, aad };
            let pt = if mode == Sm4Mode::Gcm {
                Sm4Gcm::new(&(*key.0).into()).decrypt(nonce, payload)
            } else {
                Sm4Ccm::new(&(*key.0).into()).decrypt(nonce, payload)
            };
            pt.map(Secret::new).map_err(|_| CryptoError::TagMismatch)
        }
    }
}

/// Applies SM4-CTR keystream in place (encryption and decryption are the same operation).
pub fn ctr_apply(key: &Sm4Secret, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
    check_iv(Sm4Mode::Ctr, iv)?;
    let mut c =
        Sm4Ctr::new_from_slices(key.bytes(), iv).map_err(|_| CryptoError::InvalidInput {
            reason: "SM4-CTR key or IV length",
        })?;
    c.try_apply_keystream(data)
        .map_err(|_| CryptoError::InvalidInput {
            reason: "SM4-CTR keystream exhausted",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn annex_a1_block() {
        // GB/T 32907-2016 Annex A.1
        let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let pt: [u8; 16] = h("0123456789abcdeffedcba9876543210").try_into().unwrap();
        let ct = encrypt_block(&key, &pt);
        assert_eq!(hex::encode(ct), "681edf34d206965e86b3e94f536e4246");
        assert_eq!(decrypt_block(&key, &ct), pt);
    }

    #[test]
    fn rfc8998_gcm_and_ccm() {
        let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let nonce = h("00001234567800000000abcd");
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = h(
            "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
        );
        let gcm = encrypt(&key, Sm4Mode::Gcm, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&gcm[gcm.len() - 16..]),
            "83de3541e4c2b58177e065a9bf7b62ec"
        );
        assert_eq!(
            decrypt(&key, Sm4Mode::Gcm, &nonce, &aad, &gcm)
                .unwrap()
                .expose(),
            &pt[..]
        );
        let ccm = encrypt(&key, Sm4Mode::Ccm, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&ccm[ccm.len() - 16..]),
            "16842d4fa186f56ab33256971fa110f4"
        );
        let mut bad = ccm.clone();
        bad[0] ^= 1;
        assert_eq!(
            decrypt(&key, Sm4Mode::Ccm, &nonce, &aad, &bad),
            Err(CryptoError::TagMismatch)
        );
        assert!(decrypt(&key, Sm4Mode::Gcm, &nonce, b"other aad", &gcm).is_err());
    }

    #[test]
    fn in_place_aead_matches_the_one_shot_modes_and_refuses_a_bad_tag() {
        let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let nonce: [u8; 12] = h("00001234567800000000abcd").try_into().unwrap();
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        for mode in [Sm4Mode::Gcm, Sm4Mode::Ccm] {
            let aead = Sm4Aead::new(&key, mode).unwrap();
            for len in [0usize, 1, 15, 16, 17, 64, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let whole = encrypt(&key, mode, &nonce, &aad, &pt).unwrap();
                let mut buf = pt.clone();
                let tag = aead.seal_in_place(&nonce, &aad, &mut buf).unwrap();
                assert_eq!([&buf[..], &tag[..]].concat(), whole, "{mode:?} {len}");
                aead.open_in_place(&nonce, &aad, &mut buf, &tag).unwrap();
                assert_eq!(buf, pt);
                let mut bad_tag = tag;
                bad_tag[15] ^= 1;
                let mut ct = whole[..len].to_vec();
                assert_eq!(
                    aead.open_in_place(&nonce, &aad, &mut ct, &bad_tag),
                    Err(CryptoError::TagMismatch)
                );
            }
        }
        assert!(Sm4Aead::new(&key, Sm4Mode::Cbc).is_err());
    }

    #[test]
    fn cbc_padding_and_bad_lengths() {
        let key = Sm4Secret::from_slice(&[7u8; 16]).unwrap();
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0x5au8; len];
            let ct = encrypt(&key, Sm4Mode::Cbc, &iv, &[], &pt).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(
                decrypt(&key, Sm4Mode::Cbc, &iv, &[], &ct).unwrap().expose(),
                &pt[..]
            );
        }
        assert!(matches!(
            decrypt(&key, Sm4Mode::Cbc, &iv, &[], &[0u8; 15]),
            Err(CryptoError::BadPadding { .. })
        ));
        assert!(matches!(
            decrypt(&key, Sm4Mode::Cbc, &iv, &[], &[]),
            Err(CryptoError::BadPadding { .. })
        ));
        assert!(matches!(
            encrypt(&key, Sm4Mode::Gcm, &iv, &[], b"x"),
            Err(CryptoError::InvalidLength { .. })
        ));
        assert!(matches!(
            decrypt(&key, Sm4Mode::Gcm, &iv[..12], &[], &[0u8; 15]),
            Err(CryptoError::InvalidLength { .. })
        ));
        assert!(Sm4Secret::from_slice(&[0u8; 15]).is_err());
    }
}
