//! [`Hsm`]: operations with any SM2 public key through the token: verification and encryption,
//! [`HsmEncrypter`]; verification with any key through the token (device checks only: gmchain
//! verifies in software).

use super::{Hsm, KeyUsage};
use crate::HsmError;
use crate::ffi::{Attr, Mech, ObjectHandle, Param};
use crate::format;
use crate::pool::{Ctx, OpError};
use crate::profile::{Operation, SM2_EC_PARAMS};
use crate::rv::CallError;
use crate::uri::KeyUri;
use crypto::{CipherFormat, CryptoError, Encrypter, PublicKey, Signature, UserId};
use cryptoki_sys::*;

impl Hsm {
    /// A session (temporary) public key object for `key`, per the profile's representation.
    fn public_key_template(&self, key: &PublicKey, usage: KeyUsage) -> Result<Vec<Attr>, HsmError> {
        let key = crypto_sm::sm2::parse_public_key(key.as_bytes())?;
        let sm2 = self.inner.profile.sm2();
        let point = sm2.public_key;
        let mut t = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
            Attr::bool(CKA_TOKEN, false),
            Attr::bool(CKA_PRIVATE, false),
            Attr::bool(CKA_VERIFY, usage == KeyUsage::Signing),
            Attr::bool(CKA_ENCRYPT, usage == KeyUsage::Encryption),
            Attr::bytes(
                point.attribute() as CK_ATTRIBUTE_TYPE,
                &format::encode_public_key(&key, point.encoding()),
            ),
        ];
        if sm2.keygen_ec_params {
            t.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
        }
        Ok(t)
    }

    /// Runs `f` with a temporary session object holding `key`, destroyed afterwards.
    fn with_temporary_public_key<T>(
        &self,
        name: &'static str,
        key: &PublicKey,
        usage: KeyUsage,
        mut f: impl FnMut(&Ctx<'_>, ObjectHandle) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        let template = self.public_key_template(key, usage)?;
        self.inner.pool.run(name, |ctx| {
            let h = ctx.raw.create_object(ctx.handle(), &template)?;
            let result = f(ctx, h);
            // A session object dies with its session anyway; destroy it now so that a pooled
            // session does not accumulate them.
            let _ = ctx.raw.destroy_object(ctx.handle(), h);
            result
        })
    }

    /// Returns a [`crypto::Encrypter`] that encrypts through the token to any public key.
    pub fn encrypter(&self) -> Result<HsmEncrypter, HsmError> {
        self.mechanism(Operation::Sm2Encrypt)?;
        Ok(HsmEncrypter { hsm: self.clone() })
    }

    /// Verifies a signature by `key` (any SM2 public key) through the token.
    pub fn verify_with_key(
        &self,
        key: &PublicKey,
        id: &UserId,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), HsmError> {
        let mech = self.mechanism(Operation::Sm2Sign)?;
        let format = self
            .inner
            .profile
            .sm2()
            .signature
            .ok_or_else(|| self.unsupported("SM2 verification"))?;
        let (data, param) = self.signing_input(key, id, msg)?;
        let sig_bytes = format::signature_to_token(sig, format);
        let param = param.as_deref().map_or(Param::None, Param::Bytes);
        self.with_temporary_public_key("SM2 verification", key, KeyUsage::Signing, |ctx, h| {
            ctx.raw
                .verify(ctx.handle(), &Mech::new(mech, param), h, &data, &sig_bytes)
                .map_err(signature_invalid)
        })
    }

    /// Encrypts to `key` (any SM2 public key) through the token.
    pub fn encrypt_to(
        &self,
        key: &PublicKey,
        msg: &[u8],
        format: CipherFormat,
    ) -> Result<Vec<u8>, HsmError> {
        let mech = self.mechanism(Operation::Sm2Encrypt)?;
        let token_format = self
            .inner
            .profile
            .sm2()
            .ciphertext
            .ok_or_else(|| self.unsupported("SM2 encryption"))?;
        if msg.is_empty() {
            return Err(CryptoError::InvalidInput {
                reason: "SM2 cannot encrypt an empty message (klen = 0)",
            }
            .into());
        }
        let out = self.with_temporary_public_key(
            "SM2 encryption",
            key,
            KeyUsage::Encryption,
            |ctx, h| {
                Ok(ctx
                    .raw
                    .encrypt(ctx.handle(), &Mech::new(mech, Param::None), h, msg)?)
            },
        )?;
        Ok(format::ciphertext_from_token(&out, token_format, format)?)
    }

    /// Verifies a signature through the token (GB/T 32918.2 §7.1 done by the device).
    pub fn verify(
        &self,
        uri: &KeyUri,
        id: &UserId,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), HsmError> {
        let mech = self.mechanism(Operation::Sm2Sign)?;
        let format = self
            .inner
            .profile
            .sm2()
            .signature
            .ok_or_else(|| self.unsupported("SM2 verification"))?;
        let (key, public_key) = self.public_ref(uri)?;
        let (data, param) = self.signing_input(&public_key, id, msg)?;
        let sig_bytes = format::signature_to_token(sig, format);
        let param = param.as_deref().map_or(Param::None, Param::Bytes);
        self.inner.pool.run("SM2 verification", |ctx| {
            key.with_handle(ctx, |h| {
                ctx.raw
                    .verify(ctx.handle(), &Mech::new(mech, param), h, &data, &sig_bytes)
            })
            .map_err(|e| match e {
                OpError::Call(c) => signature_invalid(c),
                other => other,
            })
        })
    }

    /// Encrypts to the public key the URI names, through the token.
    pub fn encrypt(
        &self,
        uri: &KeyUri,
        msg: &[u8],
        format: CipherFormat,
    ) -> Result<Vec<u8>, HsmError> {
        let mech = self.mechanism(Operation::Sm2Encrypt)?;
        let token_format = self
            .inner
            .profile
            .sm2()
            .ciphertext
            .ok_or_else(|| self.unsupported("SM2 encryption"))?;
        if msg.is_empty() {
            return Err(CryptoError::InvalidInput {
                reason: "SM2 cannot encrypt an empty message (klen = 0)",
            }
            .into());
        }
        let (key, _) = self.public_ref(uri)?;
        let out = self.inner.pool.run("SM2 encryption", |ctx| {
            key.with_handle(ctx, |h| {
                ctx.raw
                    .encrypt(ctx.handle(), &Mech::new(mech, Param::None), h, msg)
            })
        })?;
        Ok(format::ciphertext_from_token(&out, token_format, format)?)
    }
}

/// `CKR_SIGNATURE_INVALID`/`CKR_SIGNATURE_LEN_RANGE` are answers, not failures.
fn signature_invalid(c: CallError) -> OpError {
    if c.is(CKR_SIGNATURE_INVALID) || c.is(CKR_SIGNATURE_LEN_RANGE) {
        OpError::Hsm(HsmError::Crypto(CryptoError::SignatureInvalid))
    } else {
        OpError::Call(c)
    }
}

/// SM2 encryption through the token, to any public key, as an [`Encrypter`].
#[derive(Clone, Debug)]
pub struct HsmEncrypter {
    hsm: Hsm,
}

impl Encrypter for HsmEncrypter {
    fn encrypt(
        &self,
        to: &PublicKey,
        msg: &[u8],
        format: CipherFormat,
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(self.hsm.encrypt_to(to, msg, format)?)
    }
}
