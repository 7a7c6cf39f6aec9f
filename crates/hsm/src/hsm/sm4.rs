//! [`Hsm`]: SM4 keys (generation, import, lookup, wrapping) and [`HsmSm4Key`].

use super::{Hsm, KeyRef, Sm4KeyOptions};
use crate::HsmError;
use crate::ffi::{Attr, Mech, Param};
use crate::pool::{Ctx, OpError};
use crate::profile::{CtrParameter, Operation, WrapParameter};
use crate::uri::{KeyUri, ObjectType};
use crypto::{CryptoError, Secret, Sm4Key, Sm4Mode};
use cryptoki_sys::*;

impl Hsm {
    fn sm4_template(
        &self,
        label: &str,
        id: &[u8],
        options: Sm4KeyOptions,
    ) -> Result<Vec<Attr>, HsmError> {
        let key_type = self
            .inner
            .profile
            .sm4()
            .key_type
            .ok_or_else(|| self.unsupported("SM4 keys"))?;
        Ok(vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
            Attr::ulong(CKA_KEY_TYPE, key_type),
            Attr::bool(CKA_TOKEN, !options.session_only),
            Attr::bool(CKA_PRIVATE, true),
            Attr::bool(CKA_SENSITIVE, true),
            Attr::bool(CKA_EXTRACTABLE, options.extractable),
            // Data or keys, never both (see `Sm4KeyOptions::wrapping`).
            Attr::bool(CKA_ENCRYPT, !options.wrapping),
            Attr::bool(CKA_DECRYPT, !options.wrapping),
            Attr::bool(CKA_WRAP, options.wrapping),
            Attr::bool(CKA_UNWRAP, options.wrapping),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
            Attr::bytes(CKA_ID, id),
        ])
    }

    fn sm4_ref(&self, label: &str, id: &[u8]) -> Result<HsmSm4Key, HsmError> {
        let key_type = self
            .inner
            .profile
            .sm4()
            .key_type
            .ok_or_else(|| self.unsupported("SM4 keys"))?;
        let uri = self.key_uri(label, id, ObjectType::SecretKey);
        Ok(HsmSm4Key {
            hsm: self.clone(),
            key: KeyRef::new(label, id, CKO_SECRET_KEY, key_type, uri.to_string()),
            uri,
        })
    }

    fn new_sm4_id(&self) -> Result<Vec<u8>, HsmError> {
        self.random(8)
    }

    fn refuse_taken_sm4(&self, ctx: &Ctx<'_>, label: &str) -> Result<(), OpError> {
        let key_type = self.inner.profile.sm4().key_type.unwrap_or(0);
        let probe = [
            Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
            Attr::ulong(CKA_KEY_TYPE, key_type),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
        ];
        if ctx.raw.find_objects(ctx.handle(), &probe)?.is_empty() {
            Ok(ctx.check_login("C_FindObjects")?)
        } else {
            Err(HsmError::KeyExists {
                label: label.to_string(),
            }
            .into())
        }
    }

    /// Generates an SM4 key inside the token.
    pub fn generate_sm4(&self, label: &str, options: Sm4KeyOptions) -> Result<HsmSm4Key, HsmError> {
        let mech = self.mechanism(Operation::Sm4Keygen)?;
        let id = self.new_sm4_id()?;
        let template = self.sm4_template(label, &id, options)?;
        self.inner.pool.run_write("SM4 key generation", |ctx| {
            self.refuse_taken_sm4(ctx, label)?;
            ctx.raw
                .generate_key(ctx.handle(), &Mech::new(mech, Param::None), &template)?;
            Ok(())
        })?;
        self.sm4_ref(label, &id)
    }

    /// Imports a known SM4 key (`C_CreateObject` with `CKA_VALUE`). For interoperability and
    /// tests: a key that existed outside the token is not `CKA_LOCAL` and never will be, and
    /// the self-check says so.
    pub fn import_sm4(
        &self,
        label: &str,
        key: &Secret,
        options: Sm4KeyOptions,
    ) -> Result<HsmSm4Key, HsmError> {
        if key.len() != 16 {
            return Err(CryptoError::InvalidLength {
                what: "SM4 key",
                expected: 16,
                got: key.len(),
            }
            .into());
        }
        let id = self.new_sm4_id()?;
        let mut template = self.sm4_template(label, &id, options)?;
        template.push(Attr::bytes(CKA_VALUE, key.expose()));
        self.inner.pool.run_write("SM4 key import", |ctx| {
            self.refuse_taken_sm4(ctx, label)?;
            ctx.raw.create_object(ctx.handle(), &template)?;
            Ok(())
        })?;
        self.sm4_ref(label, &id)
    }

    /// Returns the SM4 key the URI names.
    pub fn sm4_key(&self, uri: &KeyUri) -> Result<HsmSm4Key, HsmError> {
        self.check_token(uri)?;
        let key_type = self
            .inner
            .profile
            .sm4()
            .key_type
            .ok_or_else(|| self.unsupported("SM4 keys"))?;
        let mut template = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
            Attr::ulong(CKA_KEY_TYPE, key_type),
        ];
        if let Some(l) = &uri.object {
            template.push(Attr::bytes(CKA_LABEL, l.as_bytes()));
        }
        if let Some(id) = &uri.id {
            template.push(Attr::bytes(CKA_ID, id));
        }
        let shown = uri.to_string();
        let (label, id) = self.inner.pool.run("finding an SM4 key", |ctx| {
            let hs = ctx.raw.find_objects(ctx.handle(), &template)?;
            if hs.is_empty() {
                ctx.check_login("C_FindObjects")?;
            }
            match hs.as_slice() {
                [h] => {
                    let label = ctx
                        .raw
                        .attribute(ctx.handle(), *h, CKA_LABEL)?
                        .unwrap_or_default();
                    let id = ctx
                        .raw
                        .attribute(ctx.handle(), *h, CKA_ID)?
                        .unwrap_or_default();
                    Ok((String::from_utf8_lossy(&label).into_owned(), id))
                }
                [] => Err(HsmError::KeyNotFound { uri: shown.clone() }.into()),
                many => Err(HsmError::KeyAmbiguous {
                    uri: shown.clone(),
                    count: many.len(),
                }
                .into()),
            }
        })?;
        self.sm4_ref(&label, &id)
    }

    pub(crate) fn wrap_mechanism(&self) -> Result<(u64, WrapParameter), HsmError> {
        let mech = self.mechanism(Operation::Wrap)?;
        let param = self
            .inner
            .profile
            .sm4()
            .wrap_parameter
            .ok_or_else(|| self.unsupported("key wrapping"))?;
        Ok((mech, param))
    }

    /// Wraps (exports, encrypted under `wrapping`) an extractable SM4 key. With an IV-taking
    /// mechanism the result is `IV ‖ wrapped`.
    pub fn wrap_key(&self, wrapping: &HsmSm4Key, key: &HsmSm4Key) -> Result<Vec<u8>, HsmError> {
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
        let wrapped = self.inner.pool.run("key wrapping", |ctx| {
            let target = key.key.lookup(ctx)?;
            wrapping.key.with_handle(ctx, |w| {
                ctx.raw
                    .wrap_key(ctx.handle(), &Mech::new(mech, p), w, target)
            })
        })?;
        let mut out = iv;
        out.extend_from_slice(&wrapped);
        Ok(out)
    }

    /// Unwraps (imports) an SM4 key wrapped by [`Hsm::wrap_key`] under `wrapping`.
    pub fn unwrap_key(
        &self,
        wrapping: &HsmSm4Key,
        wrapped: &[u8],
        label: &str,
        options: Sm4KeyOptions,
    ) -> Result<HsmSm4Key, HsmError> {
        let (mech, param) = self.wrap_mechanism()?;
        let (iv, body) = match param {
            WrapParameter::Iv16 if wrapped.len() > 16 => wrapped.split_at(16),
            WrapParameter::Iv16 => {
                return Err(CryptoError::InvalidLength {
                    what: "wrapped key (16-byte IV ‖ wrapped key)",
                    expected: 32,
                    got: wrapped.len(),
                }
                .into());
            }
            WrapParameter::None => (&[][..], wrapped),
        };
        let p = if iv.is_empty() {
            Param::None
        } else {
            Param::Bytes(iv)
        };
        let id = self.new_sm4_id()?;
        let mut template = self.sm4_template(label, &id, options)?;
        // CKA_SENSITIVE etc. are fine in an unwrap template; CKA_VALUE_LEN is implied by SM4.
        template.retain(|a| a.ty != CKA_VALUE);
        self.inner.pool.run_write("key unwrapping", |ctx| {
            self.refuse_taken_sm4(ctx, label)?;
            wrapping.key.with_handle(ctx, |w| {
                ctx.raw
                    .unwrap_key(ctx.handle(), &Mech::new(mech, p), w, body, &template)
            })?;
            Ok(())
        })?;
        self.sm4_ref(label, &id)
    }
}

/// An SM4 key in the token, as a [`Sm4Key`]. Modes the profile has no mechanism for (and CCM,
/// which no profile names) are [`CryptoError::Unsupported`].
pub struct HsmSm4Key {
    hsm: Hsm,
    key: KeyRef,
    uri: KeyUri,
}

impl HsmSm4Key {
    pub(crate) fn key_ref(&self) -> &KeyRef {
        &self.key
    }
}

impl std::fmt::Debug for HsmSm4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmSm4Key({})", self.uri)
    }
}

impl HsmSm4Key {
    /// Returns a URI naming this key.
    pub fn uri(&self) -> &KeyUri {
        &self.uri
    }

    /// Checks the IV and AAD the way the software provider does, and returns the mechanism.
    fn mode(&self, mode: Sm4Mode, iv: &[u8], aad: &[u8]) -> Result<u64, HsmError> {
        if iv.len() != mode.iv_len() {
            return Err(CryptoError::InvalidLength {
                what: if mode.is_aead() {
                    "SM4 nonce (RFC 8998: 12 bytes)"
                } else {
                    "SM4 IV"
                },
                expected: mode.iv_len(),
                got: iv.len(),
            }
            .into());
        }
        if !mode.is_aead() && !aad.is_empty() {
            return Err(CryptoError::InvalidInput {
                reason: "AAD is only meaningful for GCM and CCM",
            }
            .into());
        }
        let op = match mode {
            Sm4Mode::Cbc => Operation::Sm4CbcPad,
            Sm4Mode::Ctr => Operation::Sm4Ctr,
            Sm4Mode::Gcm => Operation::Sm4Gcm,
            Sm4Mode::Ccm => return Err(self.hsm.unsupported("SM4-CCM")),
        };
        self.hsm.mechanism(op)
    }

    fn param<'a>(&self, mode: Sm4Mode, iv: &'a [u8], aad: &'a [u8]) -> Param<'a> {
        match mode {
            Sm4Mode::Ctr => match self.hsm.inner.profile.sm4().ctr_parameter {
                Some(CtrParameter::AesCtrParams) => {
                    let mut counter_block = [0u8; 16];
                    counter_block.copy_from_slice(iv);
                    Param::AesCtr { counter_block }
                }
                _ => Param::Bytes(iv),
            },
            Sm4Mode::Gcm => Param::Gcm {
                iv,
                aad,
                tag_bits: 128,
            },
            _ => Param::Bytes(iv),
        }
    }

    /// Encrypts with structured errors.
    pub fn encrypt_data(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let mech = self.mode(mode, iv, aad)?;
        let param = self.param(mode, iv, aad);
        self.hsm.inner.pool.run("SM4 encryption", |ctx| {
            self.key.with_handle(ctx, |h| {
                ctx.raw
                    .encrypt(ctx.handle(), &Mech::new(mech, param), h, data)
            })
        })
    }

    /// Decrypts with structured errors; AEAD releases nothing unless the tag verifies.
    pub fn decrypt_data(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Secret, HsmError> {
        let mech = self.mode(mode, iv, aad)?;
        if mode == Sm4Mode::Gcm && data.len() < 16 {
            return Err(CryptoError::InvalidLength {
                what: "AEAD input (ciphertext ‖ 16-byte tag)",
                expected: 16,
                got: data.len(),
            }
            .into());
        }
        if mode == Sm4Mode::Cbc && (data.is_empty() || !data.len().is_multiple_of(16)) {
            return Err(CryptoError::BadPadding {
                reason: "ciphertext length is not a positive multiple of 16",
            }
            .into());
        }
        let param = self.param(mode, iv, aad);
        let out = self.hsm.inner.pool.run("SM4 decryption", |ctx| {
            self.key
                .with_handle(ctx, |h| {
                    ctx.raw
                        .decrypt(ctx.handle(), &Mech::new(mech, param), h, data)
                })
                .map_err(|e| match e {
                    OpError::Call(c)
                        if c.is(CKR_ENCRYPTED_DATA_INVALID)
                            || c.is(CKR_ENCRYPTED_DATA_LEN_RANGE)
                            || c.is(CKR_AEAD_DECRYPT_FAILED)
                            || c.is(CKR_SIGNATURE_INVALID)
                            || c.is(CKR_DATA_INVALID) =>
                    {
                        OpError::Hsm(HsmError::Crypto(if mode == Sm4Mode::Gcm {
                            CryptoError::TagMismatch
                        } else {
                            CryptoError::BadPadding {
                                reason: "PKCS#7 padding is invalid (wrong key or IV, or tampered data)",
                            }
                        }))
                    }
                    other => other,
                })
        })?;
        Ok(Secret::new(out.to_vec()))
    }
}

impl Sm4Key for HsmSm4Key {
    fn encrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(self.encrypt_data(mode, iv, aad, data)?)
    }

    fn decrypt(
        &self,
        mode: Sm4Mode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Secret, CryptoError> {
        Ok(self.decrypt_data(mode, iv, aad, data)?)
    }
}
