//! [`Module`]: key generation, wrapping and unwrapping, random numbers.

use super::{Module, OutSpace, Role, Step, not_permitted, sm2_needs_gcm, type_inconsistent};
use crate::attr::Template;
use crate::error::{Error, Result, ck, refuse};
use crate::keywrap::{KeyBytes, Sealed};
use crate::mechanism::{Mechanism, Sm4Cipher};
use crate::object::{KeyType, Material, Object, ObjectClass, Origin, Plain};
use crate::vendor::ec_point_from_attribute;
use crate::vendor::{CKM_GM_SM2_KEY_PAIR_GEN, CKM_GM_SM4_KEY_GEN};
use crypto::CipherFormat;
use crypto_sm::sm2::PrivateKey;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

impl Module {
    /// `C_GenerateKey` (SM4).
    pub fn generate_key(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.session(sh)?;
        if *mech != Mechanism::Sm4KeyGen {
            return Err(ck(
                CKR_MECHANISM_INVALID,
                "C_GenerateKey takes CKM_GM_SM4_KEY_GEN",
            ));
        }
        let k = KeyBytes::random(self.rng.as_ref())?;
        let mut obj = Object::with_defaults(
            self.new_id()?,
            ObjectClass::SecretKey,
            KeyType::Sm4,
            Material::Plain(Arc::new(Plain::Sm4(k))),
        );
        obj.apply_creation_template(template, Origin::Generated(CKM_GM_SM4_KEY_GEN), &[])?;
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_GenerateKeyPair` (SM2): returns (public, private).
    pub fn generate_key_pair(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        self.session(sh)?;
        if *mech != Mechanism::Sm2KeyPairGen {
            return Err(ck(
                CKR_MECHANISM_INVALID,
                "C_GenerateKeyPair takes CKM_GM_SM2_KEY_PAIR_GEN",
            ));
        }
        // GB/T 32918.1 §6.1: d uniform in [1, n-2].
        let d = PrivateKey::generate(self.rng.as_ref())?;
        let mut public = Object::with_defaults(
            self.new_id()?,
            ObjectClass::PublicKey,
            KeyType::Sm2,
            Material::Public(d.public_key()),
        );
        public.apply_creation_template(
            public_template,
            Origin::Generated(CKM_GM_SM2_KEY_PAIR_GEN),
            &[],
        )?;
        let mut private = Object::with_defaults(
            self.new_id()?,
            ObjectClass::PrivateKey,
            KeyType::Sm2,
            Material::Plain(Arc::new(Plain::Sm2(d))),
        );
        private.apply_creation_template(
            private_template,
            Origin::Generated(CKM_GM_SM2_KEY_PAIR_GEN),
            &[],
        )?;
        let h = self.store_new(sh, vec![public, private])?;
        Ok((h[0], h[1]))
    }

    fn wrap_cipher(mech: &Mechanism, flag: CK_FLAGS) -> Result<Sm4Cipher> {
        match mech {
            Mechanism::Sm4(c) if mech.has_flag(flag) => Ok(c.clone()),
            _ => Err(ck(
                CKR_MECHANISM_INVALID,
                "keys are wrapped with CKM_GM_SM4_CBC_PAD or CKM_GM_SM4_GCM",
            )),
        }
    }

    /// `C_WrapKey`: an SM4 key's 16 bytes or an SM2 private key's 32-byte d, encrypted under an
    /// SM4 key with `CKA_WRAP` whose value never left the token (generated here, always
    /// sensitive, never extractable). The wrapped key must be `CKA_EXTRACTABLE`.
    ///
    /// With SM4-GCM the token draws the nonce: the caller's 12-byte IV must be all zero
    /// (`CKR_MECHANISM_PARAM_INVALID` otherwise), and the nonce used is returned with the
    /// output, for the caller's `CK_GCM_PARAMS.pIv` (a length query draws none). GCM encrypts
    /// by XOR with a keystream fixed by key and nonce: two wraps under one nonce, one of a key
    /// whose value the caller knows, would give the other in clear.
    pub fn wrap_key(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        space: OutSpace,
    ) -> Result<(Step<'static>, Option<[u8; 12]>)> {
        let mut cipher = Self::wrap_cipher(mech, CKF_WRAP)?;
        if let Sm4Cipher::Gcm { iv, .. } = &cipher
            && *iv != [0u8; 12]
        {
            return Err(refuse(
                CKR_MECHANISM_PARAM_INVALID,
                "C_WrapKey with CKM_GM_SM4_GCM takes an all-zero 12-byte IV: the token draws the nonce and writes it back to CK_GCM_PARAMS.pIv (a nonce used twice would give one wrapped key from another)",
            ));
        }
        let (slot, wk) = self.lookup(sh, wrapping, Role::WrappingKey)?;
        if (wk.class, wk.key_type) != (ObjectClass::SecretKey, KeyType::Sm4) {
            return Err(ck(
                CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
                "the wrapping key must be an SM4 key",
            ));
        }
        if !wk.usage.wrap {
            return Err(not_permitted());
        }
        // Key files written before this rule may hold a wrapping key made by value, unwrapped,
        // or once extractable or non-sensitive: it keeps unwrapping, but wraps nothing more.
        if !wk.value_never_left() {
            return Err(refuse(
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                "this wrapping key was not generated on the token as always sensitive and never extractable, so its value may be known outside; it no longer wraps",
            ));
        }
        let (_, k) = self.lookup(sh, key, Role::Key)?;
        let len = match (k.class, k.key_type) {
            (ObjectClass::SecretKey, KeyType::Sm4) => 16,
            (ObjectClass::PrivateKey, KeyType::Sm2) => 32,
            _ => {
                return Err(ck(
                    CKR_KEY_NOT_WRAPPABLE,
                    "only SM4 keys and SM2 private keys wrap",
                ));
            }
        };
        if !k.extractable {
            return Err(ck(CKR_KEY_UNEXTRACTABLE, "the key is not extractable"));
        }
        if k.class == ObjectClass::PrivateKey && !cipher.authenticates() {
            return Err(sm2_needs_gcm(CKR_KEY_NOT_WRAPPABLE));
        }
        let needed = cipher.encrypted_len(len)?;
        match space {
            OutSpace::Query => return Ok((Step::Length(needed), None)),
            OutSpace::Capacity(c) if c < needed => return Ok((Step::TooSmall(needed), None)),
            OutSpace::Capacity(_) => {}
        }
        let wplain = self.tokens[slot].plain(&wk)?;
        let kplain = self.tokens[slot].plain(&k)?;
        let Plain::Sm4(wkey) = wplain.as_ref() else {
            return Err(type_inconsistent());
        };
        // A fresh random 96-bit nonce per wrap (NIST SP 800-38D §8.2.2).
        let mut drawn = None;
        if let Sm4Cipher::Gcm { iv, .. } = &mut cipher {
            self.rng.fill(iv).map_err(|_| Error::Entropy)?;
            drawn = Some(*iv);
        }
        let out = cipher.encrypt(&wkey.sm4()?, &kplain.bytes())?;
        Ok((Step::Done(Zeroizing::new(out)), drawn))
    }

    /// `C_UnwrapKey`: the template must name `CKA_CLASS` and `CKA_KEY_TYPE`; the new key is not
    /// local, not always sensitive and not never-extractable (its value existed outside). It is
    /// always `CKA_SENSITIVE`: a template asking for `CKA_SENSITIVE` false is refused with
    /// `CKR_TEMPLATE_INCONSISTENT` (otherwise wrapping a sensitive, extractable key and
    /// unwrapping it non-sensitive would read it in clear).
    ///
    /// Three kinds of blob unwrap:
    /// - under an SM4 key with CBC-PAD or GCM: an SM4 key, or (GCM only) an SM2 private key;
    /// - under an SM2 private key with `CKM_GM_SM2_ENCRYPT`: the GM/T 0009 SM2Cipher (DER) of
    ///   a 16-byte SM4 key, the `symEncryptedKey` of an SM2EnvelopedKey
    ///   ([`Module::unwrap_under_sm2`]);
    /// - under an SM4 key with `CKM_GM_SM4_ECB`: the 32-byte `sm2EncryptedPrivateKey` of an
    ///   SM2EnvelopedKey, only as an SM2 private key, and only when the template names the
    ///   enveloped public key in `CKA_EC_POINT`: a d whose public key is another is the same
    ///   `CKR_WRAPPED_KEY_INVALID` as any unusable blob, and no object is made. ECB does not
    ///   authenticate; this check does, so no altered blob ever unwraps and whether one would
    ///   tells nothing about d.
    ///
    /// Everything that can be checked without the blob (mechanism, unwrapping key, template,
    /// session) is checked before the blob is decrypted, and every problem with the blob is the
    /// same `CKR_WRAPPED_KEY_INVALID` ([`Sm4Cipher::unwrap_value`]): no answer depends on what
    /// the blob decrypts to.
    pub fn unwrap_key(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        if *mech == Mechanism::Sm2Encrypt {
            return self.unwrap_under_sm2(sh, unwrapping, wrapped, template);
        }
        let cipher = Self::wrap_cipher(mech, CKF_UNWRAP)?;
        let (slot, uk) = self.lookup(sh, unwrapping, Role::UnwrappingKey)?;
        if (uk.class, uk.key_type) != (ObjectClass::SecretKey, KeyType::Sm4) {
            return Err(ck(
                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
                "the unwrapping key must be an SM4 key (or an SM2 private key with CKM_GM_SM2_ENCRYPT)",
            ));
        }
        if !uk.usage.unwrap {
            return Err(not_permitted());
        }
        let (class, key_type) = unwrap_target(template)?;
        let envelope = cipher == Sm4Cipher::Ecb;
        let value_len = match (class, key_type) {
            (ObjectClass::SecretKey, KeyType::Sm4) if !envelope => 16,
            (ObjectClass::PrivateKey, KeyType::Sm2) if cipher.authenticates() || envelope => 32,
            (ObjectClass::PrivateKey, KeyType::Sm2) => {
                return Err(sm2_needs_gcm(CKR_MECHANISM_INVALID));
            }
            (ObjectClass::SecretKey, KeyType::Sm4) => {
                return Err(ck(
                    CKR_MECHANISM_INVALID,
                    "CKM_GM_SM4_ECB unwraps only the SM2 private key of a GM/T 0009 envelope; SM4 keys unwrap with CKM_GM_SM4_CBC_PAD or CKM_GM_SM4_GCM",
                ));
            }
            _ => {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "unwrap makes SM4 secret keys or SM2 private keys",
                ));
            }
        };
        // The public key an enveloped d must belong to (GM/T 0009 sm2PublicKey).
        let expected = if envelope {
            let v = template.get(CKA_EC_POINT).ok_or(ck(
                CKR_TEMPLATE_INCOMPLETE,
                "unwrapping an SM2 private key with CKM_GM_SM4_ECB needs CKA_EC_POINT: the enveloped public key the key must belong to",
            ))?;
            let bad = || {
                ck(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "CKA_EC_POINT is not a point of sm2p256v1",
                )
            };
            let point = ec_point_from_attribute(&v.value).ok_or_else(bad)?;
            Some(crypto_sm::sm2::parse_public_key(point).map_err(|_| bad())?)
        } else {
            None
        };
        let consumed: &[CK_ATTRIBUTE_TYPE] = if envelope { &[CKA_EC_POINT] } else { &[] };
        // The template is applied before the value exists; the placeholder is replaced below
        // and never stored.
        let mut obj = Object::with_defaults(
            self.new_id()?,
            class,
            key_type,
            Material::Sealed(Sealed {
                nonce: [0; 12],
                ciphertext: Vec::new(),
            }),
        );
        obj.apply_creation_template(template, Origin::Unwrapped, consumed)?;
        self.check_store(sh, &[&obj])?;
        let uplain = self.tokens[slot].plain(&uk)?;
        let Plain::Sm4(ukey) = uplain.as_ref() else {
            return Err(type_inconsistent());
        };
        let value = cipher.unwrap_value(&ukey.sm4()?, wrapped, value_len)?;
        let invalid = || ck(CKR_WRAPPED_KEY_INVALID, "the wrapped key is not valid");
        let material = match key_type {
            KeyType::Sm4 => Plain::Sm4(KeyBytes::from_slice(&value).ok_or_else(invalid)?),
            KeyType::Sm2 => {
                let d = PrivateKey::from_bytes(&value).map_err(|_| invalid())?;
                if expected.is_some_and(|p| p != d.public_key()) {
                    return Err(invalid());
                }
                Plain::Sm2(d)
            }
        };
        obj.material = Material::Plain(Arc::new(material));
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_UnwrapKey` with `CKM_GM_SM2_ENCRYPT`: an SM2 private key with `CKA_UNWRAP` (which
    /// therefore never decrypts, [`crate::object::UsageConflicts::unwrap_decrypt`]) opens a
    /// GM/T 0009 SM2Cipher (DER, C3 verified) of a 16-byte SM4 key: the `symEncryptedKey` of
    /// an SM2EnvelopedKey. The key made is a transport key: `CKA_UNWRAP` and no other usage,
    /// never extractable. A template asking for more is refused (`CKR_TEMPLATE_INCONSISTENT`):
    /// a copy that decrypts would open the enveloped private key in host memory, one that
    /// could be wrapped out could come back as such a copy.
    fn unwrap_under_sm2(
        &mut self,
        sh: CK_SESSION_HANDLE,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let (slot, uk) = self.lookup(sh, unwrapping, Role::UnwrappingKey)?;
        if (uk.class, uk.key_type) != (ObjectClass::PrivateKey, KeyType::Sm2) {
            return Err(ck(
                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
                "CKM_GM_SM2_ENCRYPT unwraps with an SM2 private key",
            ));
        }
        if !uk.usage.unwrap {
            return Err(not_permitted());
        }
        if unwrap_target(template)? != (ObjectClass::SecretKey, KeyType::Sm4) {
            return Err(ck(
                CKR_TEMPLATE_INCONSISTENT,
                "an SM2 key unwraps only SM4 keys (the symmetric key of a GM/T 0009 envelope)",
            ));
        }
        let mut obj = Object::with_defaults(
            self.new_id()?,
            ObjectClass::SecretKey,
            KeyType::Sm4,
            Material::Sealed(Sealed {
                nonce: [0; 12],
                ciphertext: Vec::new(),
            }),
        );
        obj.apply_creation_template(template, Origin::Unwrapped, &[])?;
        let transport = crate::object::Usage {
            unwrap: true,
            ..Default::default()
        };
        if obj.usage != transport || obj.extractable {
            return Err(refuse(
                CKR_TEMPLATE_INCONSISTENT,
                "a key unwrapped under an SM2 key only unwraps (CKA_UNWRAP true, every other usage false) and is never extractable: a copy that decrypts would open what it is to unwrap in host memory",
            ));
        }
        self.check_store(sh, &[&obj])?;
        let uplain = self.tokens[slot].plain(&uk)?;
        let Plain::Sm2(d) = uplain.as_ref() else {
            return Err(type_inconsistent());
        };
        let invalid = || ck(CKR_WRAPPED_KEY_INVALID, "the wrapped key is not valid");
        // An SM2Cipher of 16 bytes is about 110 bytes; nothing longer is parsed.
        if wrapped.len() > 256 {
            return Err(invalid());
        }
        // GB/T 32918.4-2016 §7.1: B1-B7, nothing released unless C3 verifies.
        let sym = crypto_sm::sm2::decrypt(d, wrapped, CipherFormat::Der).map_err(|_| invalid())?;
        let key = KeyBytes::from_slice(sym.expose()).ok_or_else(invalid)?;
        obj.material = Material::Plain(Arc::new(Plain::Sm4(key)));
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_GenerateRandom`.
    pub fn generate_random(&self, sh: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(sh)?;
        self.rng.fill(out).map_err(|_| Error::Entropy)
    }
}

/// The class and key type an unwrap template must name.
fn unwrap_target(template: &Template) -> Result<(ObjectClass, KeyType)> {
    let class = template
        .ulong(CKA_CLASS)?
        .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;
    let key_type = template
        .ulong(CKA_KEY_TYPE)?
        .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))?;
    Ok((ObjectClass::from_ck(class)?, KeyType::from_ck(key_type)?))
}
