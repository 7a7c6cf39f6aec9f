//! [`Hsm`]: the operations of a private key: signing input per profile, [`HsmSigner`] (signing
//! and decryption).

use super::{Hsm, KeyInfo, KeyRef};
use crate::HsmError;
use crate::ffi::{Mech, Param};
use crate::format;
use crate::pool::OpError;
use crate::profile::{IdParameter, Operation, SignInput};
use crate::uri::KeyUri;
use crypto::{
    CipherFormat, CryptoError, Decrypter, Digest, PublicKey, Secret, Signature, Signer, UserId,
};
use cryptoki_sys::*;

impl Hsm {
    /// Prepares the signing input per profile: (data, parameter bytes).
    pub(super) fn signing_input(
        &self,
        public_key: &PublicKey,
        id: &UserId,
        msg: &[u8],
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), HsmError> {
        let sm2 = self.inner.profile.sm2();
        match sm2.sign_input {
            Some(SignInput::Digest) => {
                // GB/T 32918.2 §6.1 A1-A2 in software: e = SM3(ZA ‖ M), ZA over the ID and the
                // token's public key. The token does A3-A7 with the private key.
                let e = crypto_sm::sm2::message_digest(id, public_key, msg);
                Ok((e.as_bytes().to_vec(), None))
            }
            Some(SignInput::MessageWithId) => match sm2.id_parameter {
                IdParameter::Raw if id.as_bytes().is_empty() => Err(HsmError::InvalidInput {
                    reason: format!(
                        "profile {:?} passes the user ID as the mechanism parameter, where an empty parameter means the token's default ID; an empty user ID cannot be used with it (use a profile with sign_input = \"digest\")",
                        self.inner.profile.name()
                    ),
                }),
                IdParameter::Raw => Ok((msg.to_vec(), Some(id.as_bytes().to_vec()))),
                IdParameter::None => {
                    if id.as_bytes() != crypto::DEFAULT_USER_ID {
                        return Err(HsmError::InvalidInput {
                            reason: format!(
                                "profile {:?} signs with the token's built-in user ID only; {id:?} cannot be used",
                                self.inner.profile.name()
                            ),
                        });
                    }
                    Ok((msg.to_vec(), None))
                }
            },
            None => Err(self.unsupported(Operation::Sm2Sign.description())),
        }
    }

    /// Decrypts with the private key the URI names.
    pub fn decrypt(
        &self,
        uri: &KeyUri,
        ciphertext: &[u8],
        format: CipherFormat,
    ) -> Result<Secret, HsmError> {
        self.signer(uri)?.decrypt_ciphertext(ciphertext, format)
    }
}

/// An SM2 private key in the token, as a [`Signer`] and [`Decrypter`]. A handle, never bytes.
pub struct HsmSigner {
    pub(super) hsm: Hsm,
    pub(super) key: KeyRef,
    pub(super) info: KeyInfo,
}

impl HsmSigner {
    pub(crate) fn key_ref(&self) -> &KeyRef {
        &self.key
    }
}

impl std::fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmSigner({})", self.info.uri)
    }
}

impl HsmSigner {
    /// Returns what the token says about the key.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// Signs `msg` for `id` per the profile (ZA in software for `digest`, in the token for
    /// `message-with-id`), with structured errors.
    pub fn sign_message(&self, id: &UserId, msg: &[u8]) -> Result<Signature, HsmError> {
        let (data, param) = self.hsm.signing_input(&self.info.public_key, id, msg)?;
        self.sign_input(&data, param.as_deref())
    }

    /// Signs a precomputed e = SM3(ZA ‖ M); only for profiles whose token signs digests.
    pub fn sign_prehashed(&self, e: &Digest) -> Result<Signature, HsmError> {
        if self.hsm.inner.profile.sm2().sign_input != Some(SignInput::Digest) {
            return Err(self.hsm.unsupported("SM2 signing of a precomputed digest"));
        }
        self.sign_input(e.as_bytes(), None)
    }

    fn sign_input(&self, data: &[u8], param: Option<&[u8]>) -> Result<Signature, HsmError> {
        let mech = self.hsm.mechanism(Operation::Sm2Sign)?;
        let format = self
            .hsm
            .inner
            .profile
            .sm2()
            .signature
            .ok_or_else(|| self.hsm.unsupported("SM2 signing"))?;
        let param = param.map_or(Param::None, Param::Bytes);
        let out = self.hsm.inner.pool.run("SM2 signing", |ctx| {
            self.key.with_handle(ctx, |h| {
                ctx.raw.sign(ctx.handle(), &Mech::new(mech, param), h, data)
            })
        })?;
        Ok(format::signature_from_token(&out, format)?)
    }

    /// Decrypts with structured errors.
    pub fn decrypt_ciphertext(
        &self,
        ciphertext: &[u8],
        format: CipherFormat,
    ) -> Result<Secret, HsmError> {
        let mech = self.hsm.mechanism(Operation::Sm2Encrypt)?;
        let token_format = self
            .hsm
            .inner
            .profile
            .sm2()
            .ciphertext
            .ok_or_else(|| self.hsm.unsupported("SM2 decryption"))?;
        let input = format::ciphertext_to_token(ciphertext, format, token_format)?;
        let out = self.hsm.inner.pool.run("SM2 decryption", |ctx| {
            self.key
                .with_handle(ctx, |h| {
                    ctx.raw
                        .decrypt(ctx.handle(), &Mech::new(mech, Param::None), h, &input)
                })
                .map_err(|e| match e {
                    OpError::Call(c)
                        if c.is(CKR_ENCRYPTED_DATA_INVALID)
                            || c.is(CKR_ENCRYPTED_DATA_LEN_RANGE)
                            || c.is(CKR_DATA_INVALID) =>
                    {
                        OpError::Hsm(HsmError::Crypto(CryptoError::DecryptionFailed {
                            reason: "the token rejected the ciphertext (C1 not on the curve, or C3 mismatch)",
                        }))
                    }
                    other => other,
                })
        })?;
        Ok(Secret::new(out.to_vec()))
    }
}

impl Signer for HsmSigner {
    fn public_key(&self) -> PublicKey {
        self.info.public_key
    }

    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError> {
        Ok(self.sign_message(id, msg)?)
    }

    fn sign_digest(&self, e: &Digest) -> Result<Signature, CryptoError> {
        Ok(self.sign_prehashed(e)?)
    }
}

impl Decrypter for HsmSigner {
    fn public_key(&self) -> PublicKey {
        self.info.public_key
    }

    fn decrypt(&self, ciphertext: &[u8], format: CipherFormat) -> Result<Secret, CryptoError> {
        Ok(self.decrypt_ciphertext(ciphertext, format)?)
    }
}
