//! [`Hsm`]: SM2 key pairs: generation, lookup, public keys, signers, deletion, and
//! [`crypto::KeyStore`].

use super::sign::HsmSigner;
use super::{Hsm, KeyInfo, KeyRef, KeyUsage, bool_attr, ulong_attr};
use crate::HsmError;
use crate::ffi::{Attr, Mech, ObjectHandle, Param};
use crate::format;
use crate::pool::{Ctx, OpError};
use crate::profile::{Operation, SM2_EC_PARAMS, Sm2KeyType};
use crate::uri::{KeyUri, ObjectType};
use crypto::{CryptoError, PublicKey, Signer};
use cryptoki_sys::*;

impl Hsm {
    pub(super) fn sm2_template(&self, class: CK_OBJECT_CLASS, uri: &KeyUri) -> Vec<Attr> {
        let sm2 = self.inner.profile.sm2();
        let mut t = vec![
            Attr::ulong(CKA_CLASS, u64::from(class)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
        ];
        if sm2.key_type == Sm2KeyType::Ec {
            // Only keys on the SM2 curve: a CKK_EC token holds other curves too.
            t.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
        }
        if let Some(label) = &uri.object {
            t.push(Attr::bytes(CKA_LABEL, label.as_bytes()));
        }
        if let Some(id) = &uri.id {
            t.push(Attr::bytes(CKA_ID, id));
        }
        t
    }

    pub(super) fn key_uri(&self, label: &str, id: &[u8], ty: ObjectType) -> KeyUri {
        KeyUri::for_key(&self.inner.token.label, label, id, ty)
    }

    /// Reads and decodes the public point of an SM2 public key object.
    fn read_point(
        &self,
        ctx: &Ctx<'_>,
        obj: ObjectHandle,
        uri: &str,
    ) -> Result<PublicKey, OpError> {
        let attr = self.inner.profile.sm2().public_key;
        let bytes = ctx
            .raw
            .attribute(ctx.handle(), obj, attr.attribute() as CK_ATTRIBUTE_TYPE)?
            .ok_or_else(|| HsmError::PublicKeyUnavailable {
                uri: uri.to_string(),
                reason: format!("the object has no attribute 0x{:X}", attr.attribute()),
            })?;
        format::decode_public_key(&bytes, attr.encoding()).map_err(|e| {
            OpError::Hsm(HsmError::PublicKeyUnavailable {
                uri: uri.to_string(),
                reason: format!("{e} (profile says {:?})", attr.encoding()),
            })
        })
    }

    /// Builds the description of a private key and finds its public half (same label and ID).
    pub(super) fn key_info(
        &self,
        ctx: &Ctx<'_>,
        private: ObjectHandle,
    ) -> Result<KeyInfo, OpError> {
        let s = ctx.handle();
        let label = ctx
            .raw
            .attribute(s, private, CKA_LABEL)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let id = ctx.raw.attribute(s, private, CKA_ID)?.unwrap_or_default();
        let key_type = ulong_attr(ctx.raw.attribute(s, private, CKA_KEY_TYPE)?)
            .unwrap_or(self.inner.profile.sm2().key_type.code());
        let sign = bool_attr(ctx.raw.attribute(s, private, CKA_SIGN)?).unwrap_or(false);
        let decrypt = bool_attr(ctx.raw.attribute(s, private, CKA_DECRYPT)?).unwrap_or(false);
        let uri = self.key_uri(&label, &id, ObjectType::Private);
        let pub_uri = uri.with_type(ObjectType::Public);
        let publics = ctx
            .raw
            .find_objects(s, &self.sm2_template(CKO_PUBLIC_KEY, &pub_uri))?;
        let public_key = match publics.as_slice() {
            [p] => self.read_point(ctx, *p, &uri.to_string())?,
            // Some tokens keep the point on the private key object only.
            [] => self.read_point(ctx, private, &uri.to_string())?,
            many => {
                return Err(HsmError::PublicKeyUnavailable {
                    uri: uri.to_string(),
                    reason: format!("{} public key objects carry this label and ID", many.len()),
                }
                .into());
            }
        };
        Ok(KeyInfo {
            label,
            id,
            public_key,
            key_type,
            sign,
            decrypt,
            uri,
        })
    }

    /// Generates an SM2 key pair inside the token: persistent (`CKA_TOKEN`), private,
    /// sensitive and never extractable, with the usage asked for and nothing else.
    pub fn generate_sm2(
        &self,
        label: &str,
        id: &[u8],
        usage: KeyUsage,
    ) -> Result<KeyInfo, HsmError> {
        let mech = self.mechanism(Operation::Sm2Keygen)?;
        if label.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: "a key label must not be empty".into(),
            });
        }
        let sm2 = *self.inner.profile.sm2();
        let signing = usage != KeyUsage::Encryption;
        // An unwrap-only use of the signing key (GM/T 0009 envelopes sealed to it): CKA_UNWRAP,
        // and still never CKA_DECRYPT, so that an envelope is opened only inside the token.
        let unwrap = usage == KeyUsage::SigningAndUnwrap;
        let mut public = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
            Attr::bool(CKA_TOKEN, true),
            Attr::bool(CKA_PRIVATE, false),
            Attr::bool(CKA_VERIFY, signing),
            Attr::bool(CKA_ENCRYPT, !signing),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
            Attr::bytes(CKA_ID, id),
        ];
        if sm2.keygen_ec_params {
            public.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
        }
        let private = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
            Attr::bool(CKA_TOKEN, true),
            Attr::bool(CKA_PRIVATE, true),
            Attr::bool(CKA_SENSITIVE, true),
            Attr::bool(CKA_EXTRACTABLE, false),
            Attr::bool(CKA_SIGN, signing),
            Attr::bool(CKA_DECRYPT, !signing),
            Attr::bool(CKA_UNWRAP, unwrap),
            Attr::bool(CKA_DERIVE, false),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
            Attr::bytes(CKA_ID, id),
        ];
        let taken = self.key_uri(label, &[], ObjectType::Private);
        self.inner.pool.run_write("SM2 key generation", |ctx| {
            let mut probe = self.sm2_template(CKO_PRIVATE_KEY, &taken);
            probe.retain(|a| a.ty != CKA_EC_PARAMS);
            let existing = ctx.raw.find_objects(ctx.handle(), &probe)?;
            if existing.is_empty() {
                ctx.check_login("C_FindObjects")?;
            } else {
                return Err(HsmError::KeyExists {
                    label: label.to_string(),
                }
                .into());
            }
            let (_, private_handle) = ctx.raw.generate_key_pair(
                ctx.handle(),
                &Mech::new(mech, Param::None),
                &public,
                &private,
            )?;
            self.key_info(ctx, private_handle)
        })
    }

    /// Lists the SM2 key pairs (private keys and their public halves) the URI matches.
    pub fn find(&self, uri: &KeyUri) -> Result<Vec<KeyInfo>, HsmError> {
        self.check_token(uri)?;
        match uri.object_type {
            None | Some(ObjectType::Private) => {}
            Some(other) => {
                return Err(HsmError::Uri {
                    uri: uri.to_string(),
                    reason: format!(
                        "find lists SM2 key pairs (type=private); type={} is not one",
                        other.as_str()
                    ),
                });
            }
        }
        let template = self.sm2_template(CKO_PRIVATE_KEY, uri);
        self.inner.pool.run("listing keys", |ctx| {
            let handles = ctx.raw.find_objects(ctx.handle(), &template)?;
            if handles.is_empty() {
                ctx.check_login("C_FindObjects")?;
            }
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                match self.key_info(ctx, h) {
                    Ok(k) => out.push(k),
                    // Destroyed (by another session) between the search and the read, unless
                    // the handle went invalid because the application was logged out.
                    Err(OpError::Call(c)) if c.is(CKR_OBJECT_HANDLE_INVALID) => {
                        ctx.check_login(c.function)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }

    /// Lists every SM2 key pair on the token.
    pub fn list(&self) -> Result<Vec<KeyInfo>, HsmError> {
        self.find(&KeyUri::default())
    }

    fn one(&self, uri: &KeyUri, mut found: Vec<KeyInfo>) -> Result<KeyInfo, HsmError> {
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(HsmError::KeyNotFound {
                uri: uri.to_string(),
            }),
            n => Err(HsmError::KeyAmbiguous {
                uri: uri.to_string(),
                count: n,
            }),
        }
    }

    /// Returns the public key the URI names: from the public key object (no login needed), or
    /// from the private key's public half.
    pub fn public_key(&self, uri: &KeyUri) -> Result<PublicKey, HsmError> {
        self.check_token(uri)?;
        if matches!(uri.object_type, None | Some(ObjectType::Public)) {
            let template = self.sm2_template(CKO_PUBLIC_KEY, uri);
            let shown = uri.to_string();
            let found = self.inner.pool.run("reading a public key", |ctx| {
                let hs = ctx.raw.find_objects(ctx.handle(), &template)?;
                match hs.as_slice() {
                    [h] => Ok(Some(self.read_point(ctx, *h, &shown)?)),
                    [] => Ok(None),
                    many => Err(HsmError::KeyAmbiguous {
                        uri: shown.clone(),
                        count: many.len(),
                    }
                    .into()),
                }
            })?;
            if let Some(pk) = found {
                return Ok(pk);
            }
            if uri.object_type == Some(ObjectType::Public) {
                return Err(HsmError::KeyNotFound { uri: shown });
            }
        }
        let key = self.one(uri, self.find(&uri.with_type(ObjectType::Private))?)?;
        Ok(key.public_key)
    }

    /// Returns a signer (and decrypter) for the one private key the URI names.
    pub fn signer(&self, uri: &KeyUri) -> Result<HsmSigner, HsmError> {
        let key = self.one(uri, self.find(uri)?)?;
        let shown = key.uri.to_string();
        Ok(HsmSigner {
            hsm: self.clone(),
            key: KeyRef::new(&key.label, &key.id, CKO_PRIVATE_KEY, key.key_type, shown),
            info: key,
        })
    }

    pub(super) fn public_ref(&self, uri: &KeyUri) -> Result<(KeyRef, PublicKey), HsmError> {
        self.check_token(uri)?;
        let public_key = self.public_key(uri)?;
        let (label, id) = (
            uri.object.clone().unwrap_or_default(),
            uri.id.clone().unwrap_or_default(),
        );
        if label.is_empty() && id.is_empty() {
            return Err(HsmError::Uri {
                uri: uri.to_string(),
                reason: "name the key with object= or id=".into(),
            });
        }
        let r = KeyRef::new(
            &label,
            &id,
            CKO_PUBLIC_KEY,
            self.inner.profile.sm2().key_type.code(),
            uri.with_type(ObjectType::Public).to_string(),
        );
        Ok((r, public_key))
    }

    /// Destroys every object the URI names (the private and public halves of a key pair, or a
    /// secret key) and returns how many were destroyed. The URI must name an object.
    pub fn delete(&self, uri: &KeyUri) -> Result<usize, HsmError> {
        self.check_token(uri)?;
        if !uri.names_an_object() {
            return Err(HsmError::Uri {
                uri: uri.to_string(),
                reason: "delete needs object= or id= (a bare URI would match every key)".into(),
            });
        }
        let mut templates = Vec::new();
        let classes: &[CK_OBJECT_CLASS] = match uri.object_type {
            Some(ObjectType::Private) => &[CKO_PRIVATE_KEY],
            Some(ObjectType::Public) => &[CKO_PUBLIC_KEY],
            Some(ObjectType::SecretKey) => &[CKO_SECRET_KEY],
            None => &[CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY],
            Some(other) => {
                return Err(HsmError::Uri {
                    uri: uri.to_string(),
                    reason: format!("gmchain deletes keys only, not type={}", other.as_str()),
                });
            }
        };
        for class in classes {
            if *class == CKO_SECRET_KEY {
                let Some(kt) = self.inner.profile.sm4().key_type else {
                    continue;
                };
                let mut t = vec![
                    Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
                    Attr::ulong(CKA_KEY_TYPE, kt),
                ];
                if let Some(l) = &uri.object {
                    t.push(Attr::bytes(CKA_LABEL, l.as_bytes()));
                }
                if let Some(id) = &uri.id {
                    t.push(Attr::bytes(CKA_ID, id));
                }
                templates.push(t);
            } else {
                templates.push(self.sm2_template(*class, uri));
            }
        }
        let n = self.inner.pool.run_write("deleting keys", |ctx| {
            let mut n = 0;
            for t in &templates {
                for h in ctx.raw.find_objects(ctx.handle(), t)? {
                    ctx.raw.destroy_object(ctx.handle(), h)?;
                    n += 1;
                }
            }
            if n == 0 {
                ctx.check_login("C_FindObjects")?;
            }
            Ok(n)
        })?;
        if n == 0 {
            return Err(HsmError::KeyNotFound {
                uri: uri.to_string(),
            });
        }
        Ok(n)
    }
}

impl crypto::KeyStore for Hsm {
    fn list(&self) -> Result<Vec<crypto::KeyInfo>, CryptoError> {
        Ok(Hsm::list(self)?.iter().map(crypto::KeyInfo::from).collect())
    }

    fn generate(&self, label: &str) -> Result<crypto::KeyInfo, CryptoError> {
        let id = self.random(8)?;
        Ok(crypto::KeyInfo::from(&self.generate_sm2(
            label,
            &id,
            KeyUsage::Signing,
        )?))
    }

    fn signer(&self, label: &str) -> Result<Box<dyn Signer>, CryptoError> {
        let uri = KeyUri {
            object: Some(label.to_string()),
            object_type: Some(ObjectType::Private),
            ..KeyUri::default()
        };
        Ok(Box::new(Hsm::signer(self, &uri)?))
    }

    fn delete(&self, label: &str) -> Result<(), CryptoError> {
        let uri = KeyUri {
            object: Some(label.to_string()),
            ..KeyUri::default()
        };
        Hsm::delete(self, &uri)?;
        Ok(())
    }
}
