//! Key objects: their attributes, how templates create and modify them, how they answer
//! `C_GetAttributeValue`, and how they match a search template.
//!
//! The object model is typed rather than a bag of attributes: a key is an SM2 public key, an SM2
//! private key or an SM4 secret key, and every attribute the token reports is computed from
//! typed fields. That makes the security rules (sensitive values never leave, `CKA_SENSITIVE`
//! never goes back to false) a matter of a few `match` arms instead of per-attribute flags.
#![forbid(unsafe_code)]

use crate::attr::{Attr, Template, encode_bool, encode_ulong};
use crate::error::{Result, ck, refuse};
use crate::keywrap::{KeyBytes, Sealed};
use crate::vendor::{CKK_GM_SM2, CKK_GM_SM4, SM2_EC_PARAMS, ec_point_der};
use crypto::PublicKey;
use crypto_sm::sm2::PrivateKey;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The token-internal identity of an object: random, stable across processes, never reused.
/// (PKCS#11 object handles are per process; this is what they point at.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 16]);

impl core::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ObjectId({})", hex::encode(self.0))
    }
}

/// The object classes this token holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectClass {
    /// `CKO_PUBLIC_KEY`.
    PublicKey,
    /// `CKO_PRIVATE_KEY`.
    PrivateKey,
    /// `CKO_SECRET_KEY`.
    SecretKey,
}

impl ObjectClass {
    /// Maps a `CKO_*` value; other classes (data objects, certificates) are not supported.
    pub fn from_ck(v: CK_OBJECT_CLASS) -> Result<Self> {
        match v {
            CKO_PUBLIC_KEY => Ok(Self::PublicKey),
            CKO_PRIVATE_KEY => Ok(Self::PrivateKey),
            CKO_SECRET_KEY => Ok(Self::SecretKey),
            _ => Err(ck(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "this token holds only public, private and secret keys",
            )),
        }
    }

    /// Returns the `CKO_*` value.
    pub fn to_ck(self) -> CK_OBJECT_CLASS {
        match self {
            Self::PublicKey => CKO_PUBLIC_KEY,
            Self::PrivateKey => CKO_PRIVATE_KEY,
            Self::SecretKey => CKO_SECRET_KEY,
        }
    }
}

/// The key types this token holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `CKK_GM_SM2`.
    Sm2,
    /// `CKK_GM_SM4`.
    Sm4,
}

impl KeyType {
    /// Maps a `CKK_*` value.
    pub fn from_ck(v: CK_KEY_TYPE) -> Result<Self> {
        match v {
            CKK_GM_SM2 => Ok(Self::Sm2),
            CKK_GM_SM4 => Ok(Self::Sm4),
            _ => Err(ck(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "this token holds only CKK_GM_SM2 and CKK_GM_SM4 keys",
            )),
        }
    }

    /// Returns the `CKK_*` value.
    pub fn to_ck(self) -> CK_KEY_TYPE {
        match self {
            Self::Sm2 => CKK_GM_SM2,
            Self::Sm4 => CKK_GM_SM4,
        }
    }
}

/// A decrypted private or secret value, shared by reference with running operations and
/// zeroized when the last reference goes (logout, finalize, object destruction).
pub enum Plain {
    /// An SM4 key.
    Sm4(KeyBytes),
    /// An SM2 private key (with its public key and precomputed (1+d)⁻¹).
    Sm2(PrivateKey),
}

impl core::fmt::Debug for Plain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Plain::Sm4(_) => f.write_str("Plain::Sm4([redacted])"),
            Plain::Sm2(k) => write!(f, "Plain::Sm2({:?})", k.public_key()),
        }
    }
}

impl Plain {
    /// Returns the value's bytes: the SM4 key or the SM2 scalar d (32 bytes, big-endian).
    pub fn bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            Plain::Sm4(k) => Zeroizing::new(k.expose().to_vec()),
            Plain::Sm2(k) => Zeroizing::new(k.to_bytes().to_vec()),
        }
    }
}

/// Where an object's key value is.
#[derive(Clone, Debug)]
pub enum Material {
    /// An SM2 public key, in the clear.
    Public(PublicKey),
    /// A token object's private or secret value, encrypted under the token key.
    Sealed(Sealed),
    /// A session object's private or secret value (session objects never touch the disk).
    Plain(Arc<Plain>),
}

/// How a key came to exist; decides `CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Generated on the token by this mechanism.
    Generated(CK_MECHANISM_TYPE),
    /// Created by value (`C_CreateObject`): its value was known outside.
    Imported,
    /// Unwrapped (`C_UnwrapKey`): its value was outside, encrypted. It is always made
    /// sensitive, see [`Object::apply_creation_template`].
    Unwrapped,
}

/// The usage attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `CKA_ENCRYPT`.
    pub encrypt: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
    /// `CKA_SIGN`.
    pub sign: bool,
    /// `CKA_VERIFY`.
    pub verify: bool,
    /// `CKA_WRAP`.
    pub wrap: bool,
    /// `CKA_UNWRAP`.
    pub unwrap: bool,
    /// `CKA_DERIVE` (no derivation mechanism exists; kept for clients that set it false).
    pub derive: bool,
}

/// The usage combinations no key may have, because together they turn wrapping into
/// extraction or injection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageConflicts {
    /// `CKA_WRAP` and `CKA_DECRYPT`: the key decrypts what it wrapped, so every extractable key
    /// comes out in clear.
    pub wrap_decrypt: bool,
    /// `CKA_WRAP` and `CKA_ENCRYPT`: SM4-CTR (or GCM) encryption with the caller's counter
    /// block gives the keystream a GCM wrap used, and the wrapped key is the blob XOR that
    /// keystream. (SM2 public keys never wrap here: for them the pair is harmless.)
    pub wrap_encrypt: bool,
    /// `CKA_UNWRAP` and `CKA_ENCRYPT`: the key encrypts a value of the caller's choosing and
    /// unwraps it as a key, so a key whose value is known outside looks like any other.
    pub unwrap_encrypt: bool,
    /// `CKA_UNWRAP` and `CKA_DECRYPT` on an SM2 private key: the key decrypts the GM/T 0009
    /// SM2Cipher of an envelope instead of unwrapping it, and the envelope's SM4 key, and with
    /// it the enveloped private key, comes out in host memory: the opposite of what unwrapping
    /// in the token is for. (For an SM4 key the pair stays allowed: the blobs such a key
    /// unwraps were made outside by whoever knows its value; the keys an SM2 key unwraps
    /// are transport keys that never decrypt, see `Module::unwrap_key`.)
    pub unwrap_decrypt: bool,
}

impl UsageConflicts {
    /// Returns whether there is any conflict.
    pub fn any(self) -> bool {
        self.wrap_decrypt || self.wrap_encrypt || self.unwrap_encrypt || self.unwrap_decrypt
    }

    /// Returns whether `self` has a conflict that `before` did not.
    pub fn adds_to(self, before: UsageConflicts) -> bool {
        (self.wrap_decrypt && !before.wrap_decrypt)
            || (self.wrap_encrypt && !before.wrap_encrypt)
            || (self.unwrap_encrypt && !before.unwrap_encrypt)
            || (self.unwrap_decrypt && !before.unwrap_decrypt)
    }
}

impl Usage {
    /// Returns the forbidden combinations this usage holds.
    pub fn conflicts(&self) -> UsageConflicts {
        UsageConflicts {
            wrap_decrypt: self.wrap && self.decrypt,
            wrap_encrypt: self.wrap && self.encrypt,
            unwrap_encrypt: self.unwrap && self.encrypt,
            unwrap_decrypt: self.unwrap && self.decrypt,
        }
    }
}

fn usage_conflict() -> crate::error::Error {
    refuse(
        CKR_TEMPLATE_INCONSISTENT,
        "a key that wraps may neither encrypt nor decrypt, a key that unwraps may not encrypt, and an SM2 private key that unwraps may not decrypt (it could decrypt what it wrapped or is to unwrap, give the keystream a wrap used, or unwrap a value of the caller's choosing); use separate keys",
    )
}

fn wrap_needs_an_unknown_value() -> crate::error::Error {
    refuse(
        CKR_TEMPLATE_INCONSISTENT,
        "a key that wraps must be generated on the token, always sensitive and never extractable: if its value or a copy of it is outside, so is everything it wraps",
    )
}

fn unwrap_not_sensitive() -> crate::error::Error {
    refuse(
        CKR_TEMPLATE_INCONSISTENT,
        "an unwrapped key is always CKA_SENSITIVE: a non-sensitive copy of a wrapped key would show its value in clear",
    )
}

/// One key object.
#[derive(Clone, Debug)]
pub struct Object {
    /// Internal identity.
    pub id: ObjectId,
    /// `CKA_CLASS`.
    pub class: ObjectClass,
    /// `CKA_KEY_TYPE`.
    pub key_type: KeyType,
    /// `CKA_TOKEN`.
    pub token: bool,
    /// `CKA_PRIVATE`: invisible and unusable unless the user is logged in.
    pub private: bool,
    /// `CKA_MODIFIABLE`.
    pub modifiable: bool,
    /// `CKA_DESTROYABLE`.
    pub destroyable: bool,
    /// `CKA_LABEL`.
    pub label: Vec<u8>,
    /// `CKA_ID`.
    pub key_id: Vec<u8>,
    /// `CKA_SUBJECT` (public and private keys).
    pub subject: Vec<u8>,
    /// `CKA_START_DATE` (empty or 8 characters).
    pub start_date: Vec<u8>,
    /// `CKA_END_DATE` (empty or 8 characters).
    pub end_date: Vec<u8>,
    /// `CKA_LOCAL`.
    pub local: bool,
    /// `CKA_KEY_GEN_MECHANISM`, if generated here.
    pub key_gen_mechanism: Option<CK_MECHANISM_TYPE>,
    /// Usage attributes.
    pub usage: Usage,
    /// `CKA_SENSITIVE` (private and secret keys).
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE` (private and secret keys).
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// The key value.
    pub material: Material,
}

/// One attribute as `C_GetAttributeValue` reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum AttrRead {
    /// The value.
    Value(Zeroizing<Vec<u8>>),
    /// The attribute exists but its value may not leave the token.
    Sensitive,
    /// The value is readable but encrypted and the token key is not loaded (nobody logged in).
    NeedsLogin,
    /// The object has no such attribute.
    Invalid,
}

fn val(v: impl Into<Vec<u8>>) -> AttrRead {
    AttrRead::Value(Zeroizing::new(v.into()))
}

fn is_usage(kind: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        kind,
        CKA_ENCRYPT | CKA_DECRYPT | CKA_SIGN | CKA_VERIFY | CKA_WRAP | CKA_UNWRAP | CKA_DERIVE
    )
}

fn date(a: &Attr) -> Result<Vec<u8>> {
    if a.value.is_empty() || a.value.len() == 8 {
        Ok(a.value.to_vec())
    } else {
        Err(ck(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "a CK_DATE is empty or 8 characters YYYYMMDD",
        ))
    }
}

impl Object {
    /// Returns an object with this token's defaults: session object; public keys public,
    /// private and secret keys private; sensitive and not extractable; public keys verify,
    /// private keys sign, secret keys encrypt and decrypt; nothing wraps until asked to (and
    /// then does not encrypt or decrypt, see [`Object::apply_creation_template`]).
    pub fn with_defaults(
        id: ObjectId,
        class: ObjectClass,
        key_type: KeyType,
        material: Material,
    ) -> Self {
        let usage = match class {
            ObjectClass::PublicKey => Usage {
                verify: true,
                ..Usage::default()
            },
            ObjectClass::PrivateKey => Usage {
                sign: true,
                ..Usage::default()
            },
            ObjectClass::SecretKey => Usage {
                encrypt: true,
                decrypt: true,
                ..Usage::default()
            },
        };
        let has_secret = class != ObjectClass::PublicKey;
        Self {
            id,
            class,
            key_type,
            token: false,
            private: has_secret,
            modifiable: true,
            destroyable: true,
            label: Vec::new(),
            key_id: Vec::new(),
            subject: Vec::new(),
            start_date: Vec::new(),
            end_date: Vec::new(),
            local: false,
            key_gen_mechanism: None,
            usage,
            sensitive: has_secret,
            extractable: false,
            always_sensitive: false,
            never_extractable: false,
            material,
        }
    }

    /// Returns whether the object holds a private or secret value.
    pub fn has_secret(&self) -> bool {
        self.class != ObjectClass::PublicKey
    }

    /// Applies a creation template on top of the defaults, then sets the attributes that only
    /// the token decides (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`,
    /// `CKA_KEY_GEN_MECHANISM`) from `origin`. `consumed` lists attribute types the caller has
    /// already taken the key value from (`CKA_VALUE`, `CKA_EC_POINT`); any other value-bearing
    /// attribute in the template is refused.
    ///
    /// A template that asks for `CKA_WRAP` or `CKA_UNWRAP` makes a key-encryption key, whose
    /// defaults are `CKA_ENCRYPT` and `CKA_DECRYPT` false; a key that would end up wrapping and
    /// encrypting or decrypting, unwrapping and encrypting, or (an SM2 private key) unwrapping
    /// and decrypting is refused (`CKR_TEMPLATE_INCONSISTENT`).
    /// For an SM2 private key this makes signing and unwrapping the only pair that can go
    /// together: an SM2 signing key may unwrap envelopes sealed to it but never decrypt.
    ///
    /// An unwrapped key ([`Origin::Unwrapped`]) is `CKA_SENSITIVE` whatever the template says
    /// or omits, and a template asking for `CKA_SENSITIVE` false is refused
    /// (`CKR_TEMPLATE_INCONSISTENT`): the key it came from may be sensitive, and a
    /// non-sensitive copy would show its value to anyone who can wrap it. It may be
    /// `CKA_EXTRACTABLE` (it came wrapped; wrapping it again shows nothing new).
    ///
    /// A key with `CKA_WRAP` must have a value nobody outside the token has or can get
    /// ([`Object::value_never_left`]): generated here, sensitive and unextractable. Anything
    /// else is refused (`CKR_TEMPLATE_INCONSISTENT`): a key made by value or unwrapped may have
    /// a value the caller knows, a non-sensitive one reads out, and an extractable one can be
    /// wrapped out and unwrapped as a copy that decrypts; each would open whatever it wraps.
    pub fn apply_creation_template(
        &mut self,
        template: &Template,
        origin: Origin,
        consumed: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<()> {
        if template.bool(CKA_WRAP)? == Some(true) || template.bool(CKA_UNWRAP)? == Some(true) {
            self.usage.encrypt = false;
            self.usage.decrypt = false;
        }
        let unwrapped = origin == Origin::Unwrapped && self.has_secret();
        if unwrapped && template.bool(CKA_SENSITIVE)? == Some(false) {
            return Err(unwrap_not_sensitive());
        }
        for a in template.attrs() {
            if consumed.contains(&a.kind) {
                continue;
            }
            self.apply_one(a, true)?;
        }
        match origin {
            Origin::Generated(m) => {
                self.local = true;
                self.key_gen_mechanism = Some(m);
                self.always_sensitive = self.has_secret() && self.sensitive;
                self.never_extractable = self.has_secret() && !self.extractable;
            }
            Origin::Imported | Origin::Unwrapped => {
                self.local = false;
                self.key_gen_mechanism = None;
                self.always_sensitive = false;
                self.never_extractable = false;
            }
        }
        if !self.has_secret() {
            self.sensitive = false;
            self.extractable = false;
        }
        if unwrapped {
            // Already so (the default, and `false` was refused above); said again so that no
            // later default can change it.
            self.sensitive = true;
        }
        if self.usage_conflicts().any() {
            return Err(usage_conflict());
        }
        if self.has_secret() && self.usage.wrap && !self.value_never_left() {
            return Err(wrap_needs_an_unknown_value());
        }
        Ok(())
    }

    /// Returns the forbidden usage combinations the object holds ([`Usage::conflicts`]; for an
    /// SM2 public key, whose `CKA_WRAP` is inert here, wrap and encrypt is no conflict; unwrap
    /// and decrypt is one for SM2 private keys only).
    pub fn usage_conflicts(&self) -> UsageConflicts {
        let mut c = self.usage.conflicts();
        if self.class == ObjectClass::PublicKey {
            c.wrap_encrypt = false;
        }
        if self.class != ObjectClass::PrivateKey {
            c.unwrap_decrypt = false;
        }
        c
    }

    /// Returns whether the key's value has never been outside the token and never can be:
    /// generated here (`CKA_LOCAL`), `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE`. Only
    /// such a key may wrap: neither its value nor a copy of it exists anywhere else.
    pub fn value_never_left(&self) -> bool {
        self.local && self.always_sensitive && self.never_extractable
    }

    /// Applies `C_SetAttributeValue`: all or nothing. A change that would give the key a
    /// forbidden usage combination it did not have is refused (`CKR_TEMPLATE_INCONSISTENT`);
    /// since every change is checked against the state it applies to, two changes that are
    /// each harmless (first `CKA_WRAP`, then `CKA_DECRYPT`) cannot add up to one. A key stored
    /// with a conflict before this rule existed may still be relabelled, and may lose it.
    /// `CKA_WRAP` is given only to a key whose value never left the token
    /// ([`Object::value_never_left`]), and never taken away (`CKR_ATTRIBUTE_READ_ONLY`): a key
    /// that wrapped, then lost `CKA_WRAP` and took `CKA_DECRYPT`, would open its own blobs.
    pub fn apply_modification(&mut self, template: &Template) -> Result<()> {
        let mut next = self.clone();
        for a in template.attrs() {
            next.apply_one(a, false)?;
        }
        if next.usage_conflicts().adds_to(self.usage_conflicts()) {
            return Err(usage_conflict());
        }
        if next.has_secret() && next.usage.wrap && !self.usage.wrap && !next.value_never_left() {
            return Err(wrap_needs_an_unknown_value());
        }
        *self = next;
        Ok(())
    }

    fn usage_applies(&self, kind: CK_ATTRIBUTE_TYPE) -> bool {
        use ObjectClass::*;
        match kind {
            CKA_ENCRYPT | CKA_VERIFY | CKA_WRAP => matches!(self.class, PublicKey | SecretKey),
            CKA_DECRYPT | CKA_SIGN | CKA_UNWRAP => matches!(self.class, PrivateKey | SecretKey),
            CKA_DERIVE => true,
            _ => false,
        }
    }

    fn usage_mut(&mut self, kind: CK_ATTRIBUTE_TYPE) -> Option<&mut bool> {
        let u = &mut self.usage;
        Some(match kind {
            CKA_ENCRYPT => &mut u.encrypt,
            CKA_DECRYPT => &mut u.decrypt,
            CKA_SIGN => &mut u.sign,
            CKA_VERIFY => &mut u.verify,
            CKA_WRAP => &mut u.wrap,
            CKA_UNWRAP => &mut u.unwrap,
            CKA_DERIVE => &mut u.derive,
            _ => return None,
        })
    }

    /// Applies one attribute. `creating` distinguishes a creation template from
    /// `C_SetAttributeValue`, whose rules are stricter (PKCS#11 v2.40 §4.1.2 table 3).
    fn apply_one(&mut self, a: &Attr, creating: bool) -> Result<()> {
        let read_only = || ck(CKR_ATTRIBUTE_READ_ONLY, "this attribute cannot be changed");
        if !creating && !self.modifiable {
            return Err(ck(CKR_ATTRIBUTE_READ_ONLY, "the object is not modifiable"));
        }
        match a.kind {
            CKA_LABEL => self.label = a.as_name()?,
            CKA_ID => self.key_id = a.as_name()?,
            CKA_SUBJECT if self.class != ObjectClass::SecretKey => self.subject = a.as_name()?,
            CKA_START_DATE => self.start_date = date(a)?,
            CKA_END_DATE => self.end_date = date(a)?,
            k if is_usage(k) => {
                let v = a.as_bool()?;
                if !self.usage_applies(k) {
                    // A usage this class cannot have: "false" is harmless, "true" is a mistake.
                    if v {
                        return Err(ck(
                            CKR_TEMPLATE_INCONSISTENT,
                            "usage attribute not applicable to this object class",
                        ));
                    }
                    return Ok(());
                }
                // A key that may have wrapped keeps CKA_WRAP: without it, it could take
                // CKA_DECRYPT (or CKA_ENCRYPT) and open the blobs it made.
                if !creating && k == CKA_WRAP && self.usage.wrap && !v {
                    return Err(refuse(
                        CKR_ATTRIBUTE_READ_ONLY,
                        "CKA_WRAP never goes back to false: a key that may have wrapped would otherwise decrypt its own blobs",
                    ));
                }
                if let Some(slot) = self.usage_mut(k) {
                    *slot = v;
                }
            }
            CKA_SENSITIVE if self.has_secret() => {
                let v = a.as_bool()?;
                // PKCS#11 §4.9: once sensitive, always sensitive.
                if !creating && self.sensitive && !v {
                    return Err(read_only());
                }
                self.sensitive = v;
            }
            CKA_EXTRACTABLE if self.has_secret() => {
                let v = a.as_bool()?;
                // PKCS#11 §4.9: once unextractable, always unextractable.
                if !creating && !self.extractable && v {
                    return Err(read_only());
                }
                self.extractable = v;
            }
            CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_DESTROYABLE if creating => {
                let v = a.as_bool()?;
                match a.kind {
                    CKA_TOKEN => self.token = v,
                    CKA_PRIVATE => self.private = v,
                    CKA_MODIFIABLE => self.modifiable = v,
                    _ => self.destroyable = v,
                }
            }
            CKA_CLASS if creating => {
                if a.as_ulong()? != self.class.to_ck() {
                    return Err(ck(
                        CKR_TEMPLATE_INCONSISTENT,
                        "CKA_CLASS disagrees with the operation",
                    ));
                }
            }
            CKA_KEY_TYPE if creating => {
                if a.as_ulong()? != self.key_type.to_ck() {
                    return Err(ck(
                        CKR_TEMPLATE_INCONSISTENT,
                        "CKA_KEY_TYPE disagrees with the mechanism",
                    ));
                }
            }
            CKA_EC_PARAMS if creating && self.key_type == KeyType::Sm2 => {
                if a.value.as_slice() != SM2_EC_PARAMS {
                    return Err(ck(
                        CKR_ATTRIBUTE_VALUE_INVALID,
                        "CKA_EC_PARAMS of an SM2 key is the OID 1.2.156.10197.1.301",
                    ));
                }
            }
            CKA_VALUE_LEN if creating && self.key_type == KeyType::Sm4 => {
                if a.as_ulong()? != 16 {
                    return Err(ck(CKR_ATTRIBUTE_VALUE_INVALID, "SM4 keys are 16 bytes"));
                }
            }
            // Attributes that can only be false here (no trusted-key or recovery support).
            CKA_COPYABLE
            | CKA_TRUSTED
            | CKA_WRAP_WITH_TRUSTED
            | CKA_ALWAYS_AUTHENTICATE
            | CKA_SIGN_RECOVER
            | CKA_VERIFY_RECOVER
                if creating =>
            {
                if a.as_bool()? {
                    return Err(ck(
                        CKR_ATTRIBUTE_VALUE_INVALID,
                        "this token supports no copying, trusted keys, re-authentication or recovery",
                    ));
                }
            }
            CKA_VALUE | CKA_EC_POINT if creating => {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a key value cannot be given to this operation",
                ));
            }
            CKA_LOCAL | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE | CKA_KEY_GEN_MECHANISM
                if creating =>
            {
                return Err(ck(
                    CKR_ATTRIBUTE_READ_ONLY,
                    "the token sets this attribute itself",
                ));
            }
            other => {
                // On modification: an attribute the object has may be "set" to its current
                // value; anything else is read-only. Unknown attributes are invalid.
                return match self.read(other, None) {
                    AttrRead::Invalid => Err(ck(
                        CKR_ATTRIBUTE_TYPE_INVALID,
                        "attribute not valid for this object",
                    )),
                    AttrRead::Value(v) if !creating && v.as_slice() == a.value.as_slice() => Ok(()),
                    _ => Err(read_only()),
                };
            }
        }
        Ok(())
    }

    /// Returns one attribute. `plain` is the decrypted value, when the caller has it; without it
    /// an extractable, non-sensitive token key's `CKA_VALUE` reads as [`AttrRead::NeedsLogin`].
    pub fn read(&self, kind: CK_ATTRIBUTE_TYPE, plain: Option<&Plain>) -> AttrRead {
        use ObjectClass::*;
        let pubkey = matches!(self.class, PublicKey);
        let privkey = matches!(self.class, PrivateKey);
        let secret = matches!(self.class, SecretKey);
        match kind {
            CKA_CLASS => val(encode_ulong(self.class.to_ck())),
            CKA_TOKEN => val(encode_bool(self.token)),
            CKA_PRIVATE => val(encode_bool(self.private)),
            CKA_MODIFIABLE => val(encode_bool(self.modifiable)),
            CKA_COPYABLE => val(encode_bool(false)),
            CKA_DESTROYABLE => val(encode_bool(self.destroyable)),
            CKA_LABEL => val(self.label.clone()),
            CKA_KEY_TYPE => val(encode_ulong(self.key_type.to_ck())),
            CKA_ID => val(self.key_id.clone()),
            CKA_START_DATE => val(self.start_date.clone()),
            CKA_END_DATE => val(self.end_date.clone()),
            CKA_DERIVE => val(encode_bool(self.usage.derive)),
            CKA_LOCAL => val(encode_bool(self.local)),
            CKA_KEY_GEN_MECHANISM => val(encode_ulong(
                self.key_gen_mechanism.unwrap_or(CK_UNAVAILABLE_INFORMATION),
            )),
            CKA_SUBJECT if !secret => val(self.subject.clone()),
            CKA_ENCRYPT if !privkey => val(encode_bool(self.usage.encrypt)),
            CKA_VERIFY if !privkey => val(encode_bool(self.usage.verify)),
            CKA_WRAP if !privkey => val(encode_bool(self.usage.wrap)),
            CKA_DECRYPT if !pubkey => val(encode_bool(self.usage.decrypt)),
            CKA_SIGN if !pubkey => val(encode_bool(self.usage.sign)),
            CKA_UNWRAP if !pubkey => val(encode_bool(self.usage.unwrap)),
            CKA_VERIFY_RECOVER | CKA_TRUSTED if pubkey => val(encode_bool(false)),
            CKA_SIGN_RECOVER | CKA_ALWAYS_AUTHENTICATE if privkey => val(encode_bool(false)),
            CKA_TRUSTED if secret => val(encode_bool(false)),
            CKA_SENSITIVE if !pubkey => val(encode_bool(self.sensitive)),
            CKA_EXTRACTABLE if !pubkey => val(encode_bool(self.extractable)),
            CKA_ALWAYS_SENSITIVE if !pubkey => val(encode_bool(self.always_sensitive)),
            CKA_NEVER_EXTRACTABLE if !pubkey => val(encode_bool(self.never_extractable)),
            CKA_WRAP_WITH_TRUSTED if !pubkey => val(encode_bool(false)),
            CKA_EC_PARAMS if self.key_type == KeyType::Sm2 => val(SM2_EC_PARAMS.to_vec()),
            CKA_EC_POINT if pubkey => match &self.material {
                Material::Public(p) => val(ec_point_der(p.as_bytes())),
                _ => AttrRead::Invalid,
            },
            CKA_VALUE_LEN if secret => val(encode_ulong(16)),
            CKA_VALUE if !pubkey => {
                if self.sensitive || !self.extractable {
                    return AttrRead::Sensitive;
                }
                match (&self.material, plain) {
                    (Material::Plain(p), _) => AttrRead::Value(p.bytes()),
                    (_, Some(p)) => AttrRead::Value(p.bytes()),
                    _ => AttrRead::NeedsLogin,
                }
            }
            _ => AttrRead::Invalid,
        }
    }

    /// Returns whether every attribute of `template` has exactly this value on the object.
    /// Values that cannot be read (sensitive, or needing the token key) never match.
    pub fn matches(&self, template: &Template) -> bool {
        template
            .attrs()
            .iter()
            .all(|a| match self.read(a.kind, None) {
                AttrRead::Value(v) => v.as_slice() == a.value.as_slice(),
                _ => false,
            })
    }

    /// Returns the associated data that binds a sealed value to this object on this token.
    pub fn seal_aad(&self, token_id: &[u8; 8]) -> Vec<u8> {
        let mut aad = b"gmchain-softtoken/1 object ".to_vec();
        aad.extend_from_slice(token_id);
        aad.extend_from_slice(&self.id.0);
        // Fixed one-byte tags, independent of the platform's CK_ULONG size.
        aad.push(match self.class {
            ObjectClass::PublicKey => 1,
            ObjectClass::PrivateKey => 2,
            ObjectClass::SecretKey => 3,
        });
        aad.push(match self.key_type {
            KeyType::Sm2 => 1,
            KeyType::Sm4 => 2,
        });
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::CKM_GM_SM4_KEY_GEN;

    fn sm4_session_key(v: u8) -> Object {
        let k = KeyBytes::from_slice(&[v; 16]).unwrap();
        Object::with_defaults(
            ObjectId([v; 16]),
            ObjectClass::SecretKey,
            KeyType::Sm4,
            Material::Plain(Arc::new(Plain::Sm4(k))),
        )
    }

    fn t(attrs: Vec<Attr>) -> Template {
        Template::new(attrs).unwrap()
    }

    #[test]
    fn generated_keys_are_local_and_always_sensitive() {
        let mut o = sm4_session_key(1);
        o.apply_creation_template(
            &t(vec![Attr::new(CKA_LABEL, b"k".to_vec())]),
            Origin::Generated(CKM_GM_SM4_KEY_GEN),
            &[],
        )
        .unwrap();
        assert!(o.local && o.always_sensitive && o.never_extractable && o.sensitive);
        assert_eq!(o.read(CKA_VALUE, None), AttrRead::Sensitive);
        assert_eq!(o.read(0x7fff_0000, None), AttrRead::Invalid);
        assert_eq!(o.read(CKA_EC_POINT, None), AttrRead::Invalid);
    }

    #[test]
    fn imported_extractable_key_reads_back() {
        let mut o = sm4_session_key(2);
        o.apply_creation_template(
            &t(vec![
                Attr::bool(CKA_SENSITIVE, false),
                Attr::bool(CKA_EXTRACTABLE, true),
            ]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        assert!(!o.local && !o.always_sensitive && !o.never_extractable);
        assert_eq!(o.read(CKA_VALUE, None), val(vec![2u8; 16]));
    }

    #[test]
    fn unwrapped_keys_are_always_sensitive() {
        // Asked for non-sensitive: refused, whatever else the template says.
        for extra in [vec![], vec![Attr::bool(CKA_EXTRACTABLE, true)]] {
            let mut o = sm4_session_key(7);
            let mut attrs = vec![Attr::bool(CKA_SENSITIVE, false)];
            attrs.extend(extra);
            let r = o.apply_creation_template(&t(attrs), Origin::Unwrapped, &[]);
            let e = r.unwrap_err();
            assert_eq!(e.rv(), CKR_TEMPLATE_INCONSISTENT);
            assert!(e.is_logged(), "{e}");
            assert!(e.to_string().contains("always CKA_SENSITIVE"), "{e}");
        }
        // Silent, or asking for sensitive: sensitive. Extractable is allowed (it came wrapped),
        // and the value still does not read out.
        for attrs in [
            vec![],
            vec![Attr::bool(CKA_SENSITIVE, true)],
            vec![Attr::bool(CKA_EXTRACTABLE, true)],
        ] {
            let mut o = sm4_session_key(8);
            o.apply_creation_template(&t(attrs), Origin::Unwrapped, &[])
                .unwrap();
            assert!(o.sensitive && !o.local && !o.always_sensitive && !o.never_extractable);
            assert_eq!(o.read(CKA_VALUE, None), AttrRead::Sensitive);
        }
        // The same template by value (the caller had the value anyway) is accepted.
        let mut o = sm4_session_key(9);
        o.apply_creation_template(
            &t(vec![
                Attr::bool(CKA_SENSITIVE, false),
                Attr::bool(CKA_EXTRACTABLE, true),
            ]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        assert!(!o.sensitive);
    }

    #[test]
    fn only_a_key_whose_value_never_left_wraps() {
        let generated = Origin::Generated(CKM_GM_SM4_KEY_GEN);
        let wrap = || Attr::bool(CKA_WRAP, true);
        for (what, attrs, origin) in [
            ("by value", vec![wrap()], Origin::Imported),
            ("unwrapped", vec![wrap()], Origin::Unwrapped),
            (
                "generated, extractable",
                vec![wrap(), Attr::bool(CKA_EXTRACTABLE, true)],
                generated,
            ),
            (
                "generated, non-sensitive",
                vec![wrap(), Attr::bool(CKA_SENSITIVE, false)],
                generated,
            ),
        ] {
            let mut o = sm4_session_key(10);
            let e = o
                .apply_creation_template(&t(attrs), origin, &[])
                .unwrap_err();
            assert_eq!(e.rv(), CKR_TEMPLATE_INCONSISTENT, "{what}");
            assert!(
                e.to_string().contains("a key that wraps must be generated"),
                "{what}: {e}"
            );
        }
        let mut o = sm4_session_key(11);
        o.apply_creation_template(&t(vec![wrap()]), generated, &[])
            .unwrap();
        assert!(o.value_never_left() && o.usage.wrap);
        // Unwrapping is not restricted: what it makes may be known, like a key made by value.
        let mut o = sm4_session_key(12);
        o.apply_creation_template(
            &t(vec![Attr::bool(CKA_UNWRAP, true)]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        assert!(o.usage.unwrap);
        // Modification: CKA_WRAP is given to a generated, sensitive, unextractable key only.
        let mut data = sm4_session_key(13);
        data.apply_creation_template(
            &t(vec![Attr::bool(CKA_DECRYPT, false)]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        let e = data.apply_modification(&t(vec![wrap()])).unwrap_err();
        assert_eq!(e.rv(), CKR_TEMPLATE_INCONSISTENT);
        assert!(!data.usage.wrap);
        let mut local = sm4_session_key(14);
        local
            .apply_creation_template(
                &t(vec![
                    Attr::bool(CKA_ENCRYPT, false),
                    Attr::bool(CKA_DECRYPT, false),
                ]),
                generated,
                &[],
            )
            .unwrap();
        local.apply_modification(&t(vec![wrap()])).unwrap();
        assert!(local.usage.wrap);
    }

    #[test]
    fn sensitive_and_extractable_are_one_way() {
        let mut o = sm4_session_key(3);
        o.apply_creation_template(
            &t(vec![
                Attr::bool(CKA_SENSITIVE, false),
                Attr::bool(CKA_EXTRACTABLE, true),
            ]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        // false -> true is allowed for CKA_SENSITIVE, true -> false for CKA_EXTRACTABLE.
        o.apply_modification(&t(vec![Attr::bool(CKA_SENSITIVE, true)]))
            .unwrap();
        o.apply_modification(&t(vec![Attr::bool(CKA_EXTRACTABLE, false)]))
            .unwrap();
        let back = o.apply_modification(&t(vec![Attr::bool(CKA_SENSITIVE, false)]));
        assert_eq!(back.unwrap_err().rv(), CKR_ATTRIBUTE_READ_ONLY);
        let back = o.apply_modification(&t(vec![Attr::bool(CKA_EXTRACTABLE, true)]));
        assert_eq!(back.unwrap_err().rv(), CKR_ATTRIBUTE_READ_ONLY);
        // All or nothing: the label is not changed by a failing template.
        let mixed = t(vec![
            Attr::new(CKA_LABEL, b"new".to_vec()),
            Attr::bool(CKA_TOKEN, true),
        ]);
        assert_eq!(
            o.apply_modification(&mixed).unwrap_err().rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert!(o.label.is_empty());
        o.apply_modification(&t(vec![Attr::new(CKA_LABEL, b"new".to_vec())]))
            .unwrap();
        assert_eq!(o.label, b"new");
        // Unknown attributes are invalid, not read-only.
        let unknown = o.apply_modification(&t(vec![Attr::bool(0x7fff_0001, true)]));
        assert_eq!(unknown.unwrap_err().rv(), CKR_ATTRIBUTE_TYPE_INVALID);
    }

    #[test]
    fn creation_refuses_token_decided_attributes_and_mismatches() {
        let mut o = sm4_session_key(4);
        let r =
            o.apply_creation_template(&t(vec![Attr::bool(CKA_LOCAL, true)]), Origin::Imported, &[]);
        assert_eq!(r.unwrap_err().rv(), CKR_ATTRIBUTE_READ_ONLY);
        let r = o.apply_creation_template(
            &t(vec![Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM2)]),
            Origin::Imported,
            &[],
        );
        assert_eq!(r.unwrap_err().rv(), CKR_TEMPLATE_INCONSISTENT);
        let r = o.apply_creation_template(
            &t(vec![Attr::ulong(CKA_VALUE_LEN, 32)]),
            Origin::Imported,
            &[],
        );
        assert_eq!(r.unwrap_err().rv(), CKR_ATTRIBUTE_VALUE_INVALID);
        // Inapplicable usage: false is accepted, true is not.
        let mut p = Object::with_defaults(
            ObjectId([5; 16]),
            ObjectClass::PublicKey,
            KeyType::Sm2,
            Material::Sealed(Sealed {
                nonce: [0; 12],
                ciphertext: vec![],
            }),
        );
        p.apply_creation_template(&t(vec![Attr::bool(CKA_SIGN, false)]), Origin::Imported, &[])
            .unwrap();
        let r =
            p.apply_creation_template(&t(vec![Attr::bool(CKA_SIGN, true)]), Origin::Imported, &[]);
        assert_eq!(r.unwrap_err().rv(), CKR_TEMPLATE_INCONSISTENT);
    }

    #[test]
    fn matching() {
        let mut o = sm4_session_key(6);
        o.apply_creation_template(
            &t(vec![
                Attr::new(CKA_ID, vec![1, 2]),
                Attr::bool(CKA_TOKEN, false),
            ]),
            Origin::Imported,
            &[],
        )
        .unwrap();
        assert!(o.matches(&t(vec![Attr::ulong(CKA_CLASS, CKO_SECRET_KEY)])));
        assert!(o.matches(&t(vec![Attr::new(CKA_ID, vec![1, 2])])));
        assert!(!o.matches(&t(vec![Attr::new(CKA_ID, vec![1])])));
        // A sensitive value never matches, whatever the guess.
        assert!(!o.matches(&t(vec![Attr::new(CKA_VALUE, vec![6u8; 16])])));
        assert!(o.matches(&Template::default()));
    }
}
