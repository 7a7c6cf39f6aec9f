//! Questions about where a private key lives: its protection attributes, and whether the token
//! lets its value out (by reading or by wrapping). Used by the conformance suite's GM/T 0111
//! §7.4 checks; every answer is a real call.

use crate::HsmError;
use crate::ffi::{Mech, Param};
use crate::hsm::{Hsm, HsmSm4Key};
use crate::profile::WrapParameter;
use crate::uri::KeyUri;
use cryptoki_sys::*;

/// The protection attributes of a private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: generated inside the token.
    pub local: bool,
}

/// The usage attributes of an SM4 key, as the token reports them. An attribute the token does
/// not report reads as false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm4Usage {
    /// `CKA_ENCRYPT`.
    pub encrypt: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
    /// `CKA_WRAP`.
    pub wrap: bool,
    /// `CKA_UNWRAP`.
    pub unwrap: bool,
}

impl Hsm {
    /// Reads the usage attributes of an SM4 key from the token.
    pub fn sm4_usage(&self, key: &HsmSm4Key) -> Result<Sm4Usage, HsmError> {
        self.inner().pool.run("reading key usage", |ctx| {
            key.key_ref().with_handle(ctx, |h| {
                let flag = |ty| -> Result<bool, crate::rv::CallError> {
                    Ok(ctx
                        .raw
                        .attribute(ctx.handle(), h, ty)?
                        .and_then(|b| b.first().map(|x| *x != 0))
                        .unwrap_or(false))
                };
                Ok(Sm4Usage {
                    encrypt: flag(CKA_ENCRYPT)?,
                    decrypt: flag(CKA_DECRYPT)?,
                    wrap: flag(CKA_WRAP)?,
                    unwrap: flag(CKA_UNWRAP)?,
                })
            })
        })
    }

    /// Reads the protection attributes of the private key `uri` names. An attribute the token
    /// does not report counts against the key (`sensitive`, `always_sensitive`,
    /// `never_extractable` and `local` false; `extractable` true).
    pub fn key_protection(&self, uri: &KeyUri) -> Result<KeyProtection, HsmError> {
        let signer = self.signer(uri)?;
        self.inner().pool.run("reading key attributes", |ctx| {
            signer.key_ref().with_handle(ctx, |h| {
                let flag = |ty| -> Result<Option<bool>, crate::rv::CallError> {
                    Ok(ctx
                        .raw
                        .attribute(ctx.handle(), h, ty)?
                        .and_then(|b| b.first().map(|x| *x != 0)))
                };
                Ok(KeyProtection {
                    sensitive: flag(CKA_SENSITIVE)?.unwrap_or(false),
                    extractable: flag(CKA_EXTRACTABLE)?.unwrap_or(true),
                    always_sensitive: flag(CKA_ALWAYS_SENSITIVE)?.unwrap_or(false),
                    never_extractable: flag(CKA_NEVER_EXTRACTABLE)?.unwrap_or(false),
                    local: flag(CKA_LOCAL)?.unwrap_or(false),
                })
            })
        })
    }

    /// Asks the token for the private key's `CKA_VALUE`. `Ok(None)` means the token refused
    /// (`CKR_ATTRIBUTE_SENSITIVE`) or holds no such attribute.
    pub fn read_private_value(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, HsmError> {
        let signer = self.signer(uri)?;
        self.inner().pool.run("reading CKA_VALUE", |ctx| {
            signer
                .key_ref()
                .with_handle(ctx, |h| ctx.raw.attribute(ctx.handle(), h, CKA_VALUE))
        })
    }

    /// Asks the token to wrap the private key out under `wrapping`. `Ok(None)` means the token
    /// refused (`CKR_KEY_UNEXTRACTABLE`, `CKR_KEY_NOT_WRAPPABLE`, `CKR_ATTRIBUTE_SENSITIVE`).
    pub fn wrap_private_key(
        &self,
        wrapping: &HsmSm4Key,
        uri: &KeyUri,
    ) -> Result<Option<Vec<u8>>, HsmError> {
        let signer = self.signer(uri)?;
        let (mech, param) = self.wrap_mechanism()?;
        let iv = match param {
            WrapParameter::Iv16 => self.random(16)?,
            WrapParameter::None => Vec::new(),
        };
        let p = if iv.is_empty() {
            Param::None
        } else {
            Param::Bytes(&iv)
        };
        self.inner().pool.run("wrapping a private key", |ctx| {
            let target = signer.key_ref().lookup(ctx)?;
            wrapping.key_ref().with_handle(ctx, |w| {
                match ctx
                    .raw
                    .wrap_key(ctx.handle(), &Mech::new(mech, p), w, target)
                {
                    Ok(v) => Ok(Some(v)),
                    Err(c)
                        if c.is(CKR_KEY_UNEXTRACTABLE)
                            || c.is(CKR_KEY_NOT_WRAPPABLE)
                            || c.is(CKR_ATTRIBUTE_SENSITIVE) =>
                    {
                        Ok(None)
                    }
                    Err(c) => Err(c),
                }
            })
        })
    }
}

impl HsmError {
    /// Returns whether the token refused an operation on a key because of the key's usage
    /// attributes (`CKR_KEY_FUNCTION_NOT_PERMITTED`): a policy decision, not a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(self, HsmError::Pkcs11 { rv, .. } if rv.0 == u64::from(CKR_KEY_FUNCTION_NOT_PERMITTED))
    }
}
