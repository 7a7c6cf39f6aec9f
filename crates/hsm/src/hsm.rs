//! [`Hsm`]: one token through one profile, and the key handles it gives out.

use crate::HsmError;
use crate::ffi::{Attr, Mech, ObjectHandle, Param};
use crate::format;
use crate::module::Module;
use crate::pool::{Ctx, OpError, Pool};
use crate::profile::{
    CtrParameter, IdParameter, Operation, Profile, SM2_EC_PARAMS, SignInput, Sm2KeyType,
    WrapParameter,
};
use crate::rv::CallError;
use crate::uri::{KeyUri, ObjectType};
use crypto::{
    CipherFormat, CryptoError, Decrypter, Digest, Encrypter, HashContext, Hasher, PublicKey,
    RandomSource, Secret, Signature, Signer, Sm4Key, Sm4Mode, UserId, Verifier,
};
use cryptoki::session::UserType;
use cryptoki::types::{AuthPin, RawAuthPin};
use cryptoki_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The token an [`Hsm`] is connected to, as the token describes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDescription {
    /// Token label.
    pub label: String,
    /// Manufacturer ID.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// The slot it was found in when the connection opened.
    pub slot: u64,
}

/// What an SM2 key may be used for. gmchain generates separate signing and encryption keys
/// (usage separation): a signing key cannot decrypt and an encryption key cannot sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsage {
    /// `CKA_SIGN` (private) and `CKA_VERIFY` (public).
    Signing,
    /// `CKA_DECRYPT` (private) and `CKA_ENCRYPT` (public).
    Encryption,
}

/// An SM2 key pair in the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// The public key, validated as a point of sm2p256v1.
    pub public_key: PublicKey,
    /// `CKA_KEY_TYPE` of the private key.
    pub key_type: u64,
    /// `CKA_SIGN` of the private key.
    pub sign: bool,
    /// `CKA_DECRYPT` of the private key.
    pub decrypt: bool,
    /// A URI naming exactly this private key.
    pub uri: KeyUri,
}

impl From<&KeyInfo> for crypto::KeyInfo {
    fn from(k: &KeyInfo) -> Self {
        crypto::KeyInfo {
            label: k.label.clone(),
            public_key: k.public_key,
        }
    }
}

/// Which slot `init_token` initialises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSlot {
    /// A slot ID.
    Id(u64),
    /// The slot whose token currently has this label (re-initialisation erases it).
    Label(String),
    /// The first slot whose token is not initialised (SoftHSM's free slot).
    FirstUninitialized,
}

/// Attributes of an SM4 key made by [`Hsm::generate_sm4`], [`Hsm::import_sm4`] or
/// [`Hsm::unwrap_key`]. The default is a persistent, sensitive, non-extractable data key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sm4KeyOptions {
    /// `CKA_EXTRACTABLE`: may be wrapped out of the token.
    pub extractable: bool,
    /// `CKA_WRAP`/`CKA_UNWRAP`: a key-encryption key. It then has `CKA_ENCRYPT` and
    /// `CKA_DECRYPT` false: a key that wraps and decrypts decrypts what it wrapped, so every
    /// extractable key would come out in clear. A key is either for data or for keys.
    pub wrapping: bool,
    /// `CKA_TOKEN` false: gone when the session closes.
    pub session_only: bool,
}

/// A connection to one token through one profile: a session pool, the login, and every
/// operation gmchain needs. `Send + Sync`; clone the handles it gives out freely.
#[derive(Clone)]
pub struct Hsm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hsm(profile {:?}, token {:?})",
            self.inner.profile.name(),
            self.inner.token.label
        )
    }
}

// Every handle is shared across threads (the node signs from many at once).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Hsm>();
    send_sync::<HsmSigner>();
    send_sync::<HsmSm4Key>();
    send_sync::<HsmHasher>();
    send_sync::<HsmRandom>();
    send_sync::<HsmVerifier>();
    send_sync::<HsmEncrypter>();
};

pub(crate) struct Inner {
    pub(crate) profile: Profile,
    pub(crate) pool: Pool,
    pub(crate) token: TokenDescription,
}

fn bool_attr(v: Option<Vec<u8>>) -> Option<bool> {
    v.and_then(|b| b.first().map(|x| *x != 0))
}

fn ulong_attr(v: Option<Vec<u8>>) -> Option<u64> {
    let b = v?;
    let arr: [u8; size_of::<CK_ULONG>()] = b.as_slice().try_into().ok()?;
    Some(u64::from(CK_ULONG::from_ne_bytes(arr)))
}

fn is_stale_handle(c: &CallError) -> bool {
    c.is(CKR_KEY_HANDLE_INVALID) || c.is(CKR_OBJECT_HANDLE_INVALID)
}

/// A key object found by label and ID, with its handle cached per pool generation.
#[derive(Debug)]
pub(crate) struct KeyRef {
    label: String,
    id: Vec<u8>,
    class: CK_OBJECT_CLASS,
    key_type: u64,
    uri: String,
    cache: Mutex<Option<(u64, ObjectHandle)>>,
}

impl KeyRef {
    fn new(label: &str, id: &[u8], class: CK_OBJECT_CLASS, key_type: u64, uri: String) -> Self {
        Self {
            label: label.to_string(),
            id: id.to_vec(),
            class,
            key_type,
            uri,
            cache: Mutex::new(None),
        }
    }

    fn template(&self) -> Vec<Attr> {
        let mut t = vec![
            Attr::ulong(CKA_CLASS, u64::from(self.class)),
            Attr::ulong(CKA_KEY_TYPE, self.key_type),
        ];
        if !self.label.is_empty() {
            t.push(Attr::bytes(CKA_LABEL, self.label.as_bytes()));
        }
        if !self.id.is_empty() {
            t.push(Attr::bytes(CKA_ID, &self.id));
        }
        t
    }

    pub(crate) fn lookup(&self, ctx: &Ctx<'_>) -> Result<ObjectHandle, OpError> {
        let cached = *self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((generation, h)) = cached
            && generation == ctx.generation
        {
            return Ok(h);
        }
        let found = ctx.raw.find_objects(ctx.handle(), &self.template())?;
        if found.is_empty() && self.class != CKO_PUBLIC_KEY {
            ctx.check_login("C_FindObjects")?;
        }
        match found.as_slice() {
            [h] => {
                *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((ctx.generation, *h));
                Ok(*h)
            }
            [] => Err(HsmError::KeyNotFound {
                uri: self.uri.clone(),
            }
            .into()),
            many => Err(HsmError::KeyAmbiguous {
                uri: self.uri.clone(),
                count: many.len(),
            }
            .into()),
        }
    }

    /// Runs `f` with the key's handle; a handle the module calls invalid is looked up once more.
    pub(crate) fn with_handle<T>(
        &self,
        ctx: &Ctx<'_>,
        mut f: impl FnMut(ObjectHandle) -> Result<T, CallError>,
    ) -> Result<T, OpError> {
        let h = self.lookup(ctx)?;
        match f(h) {
            Err(c) if is_stale_handle(&c) => {
                *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let h = self.lookup(ctx)?;
                Ok(f(h)?)
            }
            other => Ok(other?),
        }
    }
}

impl Hsm {
    /// Opens a connection to the token labelled `token_label` in the profile's module, with a
    /// pool of up to `pool_size` sessions plus one anchor session, and logs in with `pin` (no
    /// login when `None`: only public objects are then visible).
    pub fn open(
        profile: &Profile,
        token_label: &str,
        pin: Option<Secret>,
        pool_size: usize,
    ) -> Result<Hsm, HsmError> {
        if pool_size == 0 {
            return Err(HsmError::InvalidInput {
                reason: "the session pool needs at least one session".into(),
            });
        }
        let module = Module::for_profile(profile)?;
        let token = module.find_token(token_label, None)?;
        let description = TokenDescription {
            label: token.info.label().to_string(),
            manufacturer: token.info.manufacturer_id().to_string(),
            model: token.info.model().to_string(),
            serial: token.info.serial_number().to_string(),
            slot: token.slot.id(),
        };
        let pool = Pool::open(
            module,
            token.slot,
            description.label.clone(),
            description.serial.clone(),
            pin,
            pool_size,
            profile.exclusive_object_writes(),
        )?;
        Ok(Hsm {
            inner: Arc::new(Inner {
                profile: profile.clone(),
                pool,
                token: description,
            }),
        })
    }

    /// Returns the profile.
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// Returns the token's self-description.
    pub fn token(&self) -> &TokenDescription {
        &self.inner.token
    }

    /// Returns the slot the token is in now (slot numbers can change when a module is
    /// re-initialised; the pool finds the token again by label and serial).
    pub fn slot_id(&self) -> u64 {
        self.inner.pool.slot().id()
    }

    /// Returns the module library path in use.
    pub fn module_path(&self) -> &std::path::Path {
        &self.inner.pool.module().path
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Initialises (erasing) a token: `C_InitToken` with the security officer PIN and a label of
    /// at most 32 bytes.
    pub fn init_token(
        profile: &Profile,
        slot: TokenSlot,
        so_pin: &Secret,
        label: &str,
    ) -> Result<(), HsmError> {
        if label.is_empty() || label.len() > 32 {
            return Err(HsmError::InvalidInput {
                reason: format!(
                    "a token label is 1 to 32 bytes, {label:?} has {}",
                    label.len()
                ),
            });
        }
        let module = Module::for_profile(profile)?;
        let tokens = module.tokens().map_err(|c| module.unreachable_or(c))?;
        let target = match &slot {
            TokenSlot::Id(id) => tokens.iter().find(|t| t.slot.id() == *id),
            TokenSlot::Label(l) => tokens
                .iter()
                .find(|t| t.info.token_initialized() && t.info.label() == l),
            TokenSlot::FirstUninitialized => tokens.iter().find(|t| !t.info.token_initialized()),
        }
        .ok_or_else(|| match &slot {
            TokenSlot::Label(l) => HsmError::TokenNotFound {
                label: l.clone(),
                available: tokens.iter().map(|t| t.info.label().to_string()).collect(),
            },
            other => HsmError::InvalidInput {
                reason: format!(
                    "no slot matches {other:?}; slots with tokens: {}",
                    tokens
                        .iter()
                        .map(|t| format!("{} ({:?})", t.slot.id(), t.info.label()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        })?;
        let pin = utf8_pin(so_pin, "security officer PIN")?;
        module.ck.init_token(target.slot, &pin, label).map_err(|e| {
            let c = CallError::from_cryptoki("C_InitToken", &e);
            if c.is(CKR_PIN_INCORRECT) {
                HsmError::PinIncorrect
            } else if c.is(CKR_PIN_LOCKED) {
                HsmError::PinLocked
            } else {
                module.unreachable_or(c)
            }
        })
    }

    /// Sets the user PIN of a token (`C_InitPIN` in a security officer session).
    pub fn init_pin(
        profile: &Profile,
        token_label: &str,
        so_pin: &Secret,
        user_pin: &Secret,
    ) -> Result<(), HsmError> {
        let module = Module::for_profile(profile)?;
        let token = module.find_token(token_label, None)?;
        let session = module
            .ck
            .open_rw_session(token.slot)
            .map_err(|e| module.unreachable_or(CallError::from_cryptoki("C_OpenSession", &e)))?;
        let so = RawAuthPin::new(Box::new(so_pin.expose().to_vec()));
        session.login_with_raw(UserType::So, &so).map_err(|e| {
            let c = CallError::from_cryptoki("C_Login", &e);
            if c.is(CKR_PIN_INCORRECT) {
                HsmError::PinIncorrect
            } else if c.is(CKR_PIN_LOCKED) {
                HsmError::PinLocked
            } else {
                module.unreachable_or(c)
            }
        })?;
        let user = utf8_pin(user_pin, "user PIN")?;
        let result = session
            .init_pin(&user)
            .map_err(|e| module.unreachable_or(CallError::from_cryptoki("C_InitPIN", &e)));
        if result.is_ok() {
            module.forget_login(token.info.serial_number(), token.info.label());
        }
        let _ = session.logout();
        result
    }

    fn unsupported(&self, operation: &'static str) -> HsmError {
        HsmError::Unsupported {
            operation,
            profile: self.inner.profile.name().to_string(),
        }
    }

    fn mechanism(&self, op: Operation) -> Result<u64, HsmError> {
        self.inner
            .profile
            .mechanisms()
            .get(op)
            .ok_or_else(|| self.unsupported(op.description()))
    }

    fn check_token(&self, uri: &KeyUri) -> Result<(), HsmError> {
        let t = &self.inner.token;
        for (what, want, have) in [
            ("token", &uri.token, &t.label),
            ("manufacturer", &uri.manufacturer, &t.manufacturer),
            ("serial", &uri.serial, &t.serial),
            ("model", &uri.model, &t.model),
        ] {
            if let Some(want) = want
                && want != have
            {
                return Err(HsmError::Uri {
                    uri: uri.to_string(),
                    reason: format!(
                        "names {what} {want:?}, but this connection is to token {:?} ({what} {have:?})",
                        t.label
                    ),
                });
            }
        }
        Ok(())
    }

    fn sm2_template(&self, class: CK_OBJECT_CLASS, uri: &KeyUri) -> Vec<Attr> {
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

    fn key_uri(&self, label: &str, id: &[u8], ty: ObjectType) -> KeyUri {
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
    fn key_info(&self, ctx: &Ctx<'_>, private: ObjectHandle) -> Result<KeyInfo, OpError> {
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
        let signing = usage == KeyUsage::Signing;
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

    fn public_ref(&self, uri: &KeyUri) -> Result<(KeyRef, PublicKey), HsmError> {
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

    /// Prepares the signing input per profile: (data, parameter bytes).
    fn signing_input(
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

    /// Returns a [`crypto::Verifier`] that verifies through the token with any public key
    /// (imported as a temporary session object for each verification).
    pub fn verifier(&self) -> Result<HsmVerifier, HsmError> {
        self.mechanism(Operation::Sm2Sign)?;
        Ok(HsmVerifier { hsm: self.clone() })
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

    /// Decrypts with the private key the URI names.
    pub fn decrypt(
        &self,
        uri: &KeyUri,
        ciphertext: &[u8],
        format: CipherFormat,
    ) -> Result<Secret, HsmError> {
        self.signer(uri)?.decrypt_ciphertext(ciphertext, format)
    }

    /// SM3 of `data`, computed by the token.
    pub fn sm3(&self, data: &[u8]) -> Result<Digest, HsmError> {
        let mech = self.mechanism(Operation::Sm3Digest)?;
        let out = self.inner.pool.run("SM3 digest", |ctx| {
            Ok(ctx
                .raw
                .digest(ctx.handle(), &Mech::new(mech, Param::None), data)?)
        })?;
        let arr: [u8; 32] = out
            .as_slice()
            .try_into()
            .map_err(|_| HsmError::InvalidInput {
                reason: format!("the token returned a {}-byte SM3 digest", out.len()),
            })?;
        Ok(Digest(arr))
    }

    /// Returns an SM3 [`Hasher`] that computes through the token.
    pub fn hasher(&self) -> Result<HsmHasher, HsmError> {
        self.mechanism(Operation::Sm3Digest)?;
        Ok(HsmHasher {
            hsm: self.clone(),
            fallbacks: Arc::new(AtomicU64::new(0)),
        })
    }

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

    /// Random bytes from the token's generator.
    pub fn random(&self, n: usize) -> Result<Vec<u8>, HsmError> {
        let mut out = vec![0u8; n];
        self.fill_random(&mut out)?;
        Ok(out)
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HsmError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.inner.pool.run("random generation", |ctx| {
            ctx.session
                .generate_random_slice(buf)
                .map_err(|e| OpError::Call(CallError::from_cryptoki("C_GenerateRandom", &e)))
        })
    }

    /// Returns a [`RandomSource`] drawing from the token.
    pub fn rng(&self) -> HsmRandom {
        HsmRandom { hsm: self.clone() }
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

/// `CKR_SIGNATURE_INVALID`/`CKR_SIGNATURE_LEN_RANGE` are answers, not failures.
fn signature_invalid(c: CallError) -> OpError {
    if c.is(CKR_SIGNATURE_INVALID) || c.is(CKR_SIGNATURE_LEN_RANGE) {
        OpError::Hsm(HsmError::Crypto(CryptoError::SignatureInvalid))
    } else {
        OpError::Call(c)
    }
}

/// SM2 verification through the token, for any public key, as a [`Verifier`].
#[derive(Clone, Debug)]
pub struct HsmVerifier {
    hsm: Hsm,
}

impl Verifier for HsmVerifier {
    fn verify(
        &self,
        key: &PublicKey,
        id: &UserId,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CryptoError> {
        Ok(self.hsm.verify_with_key(key, id, msg, sig)?)
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

fn utf8_pin(pin: &Secret, what: &str) -> Result<AuthPin, HsmError> {
    let s = std::str::from_utf8(pin.expose()).map_err(|_| HsmError::InvalidInput {
        reason: format!("the {what} must be UTF-8 text"),
    })?;
    Ok(AuthPin::from(s.to_string()))
}

/// An SM2 private key in the token, as a [`Signer`] and [`Decrypter`]. A handle, never bytes.
pub struct HsmSigner {
    hsm: Hsm,
    key: KeyRef,
    info: KeyInfo,
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

/// SM3 through the token, as a [`Hasher`].
///
/// [`Hasher`] cannot fail, a token can. When the token fails (unreachable, session lost twice)
/// this hasher returns SM3 computed in software, which is byte-for-byte the same function of
/// public input and involves no key, and counts the event in [`HsmHasher::software_fallbacks`].
/// Callers that must know use [`Hsm::sm3`], which never falls back.
#[derive(Clone)]
pub struct HsmHasher {
    hsm: Hsm,
    fallbacks: Arc<AtomicU64>,
}

impl std::fmt::Debug for HsmHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmHasher({:?})", self.hsm)
    }
}

impl HsmHasher {
    /// Returns how many digests were computed in software because the token failed.
    pub fn software_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn digest(hsm: &Hsm, fallbacks: &AtomicU64, data: &[u8]) -> Digest {
        match hsm.sm3(data) {
            Ok(d) => d,
            Err(_) => {
                fallbacks.fetch_add(1, Ordering::Relaxed);
                crypto_sm::sm3::sm3(data)
            }
        }
    }
}

impl Hasher for HsmHasher {
    fn sm3(&self, data: &[u8]) -> Digest {
        Self::digest(&self.hsm, &self.fallbacks, data)
    }

    fn start(&self) -> Box<dyn HashContext> {
        Box::new(HsmHashContext {
            hsm: self.hsm.clone(),
            fallbacks: self.fallbacks.clone(),
            buf: Vec::new(),
        })
    }
}

/// Buffers input and digests it in one token call at `finish`, so that no pooled session is
/// held between updates.
struct HsmHashContext {
    hsm: Hsm,
    fallbacks: Arc<AtomicU64>,
    buf: Vec<u8>,
}

impl HashContext for HsmHashContext {
    fn update(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn finish(self: Box<Self>) -> Digest {
        HsmHasher::digest(&self.hsm, &self.fallbacks, &self.buf)
    }
}

/// The token's random number generator as a [`RandomSource`].
#[derive(Clone, Debug)]
pub struct HsmRandom {
    hsm: Hsm,
}

impl RandomSource for HsmRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        self.hsm.fill_random(buf).map_err(|_| CryptoError::Entropy)
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
