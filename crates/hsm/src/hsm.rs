//! [`Hsm`]: one token through one profile, and the key handles it gives out.
//!
//! This file holds the connection (opening, token set-up, the profile's mechanisms) and the key
//! references the handles share; the operations are in one submodule per kind: `keys` (SM2 key
//! pairs and [`crypto::KeyStore`]), `sign` ([`HsmSigner`]), `public` ([`HsmEncrypter`],
//! verification with any key), `sm3`, `sm4` ([`HsmSm4Key`], wrapping) and `random`
//! ([`HsmRandom`]). The session pool is `crate::pool`.

use crate::HsmError;
use crate::ffi::{Attr, ObjectHandle};
use crate::module::Module;
use crate::pool::{Ctx, OpError, Pool};
use crate::profile::{Operation, Profile};
use crate::rv::CallError;
use crate::uri::KeyUri;
use crypto::{PublicKey, Secret};
use cryptoki::session::UserType;
use cryptoki::types::{AuthPin, RawAuthPin};
use cryptoki_sys::*;
use std::sync::{Arc, Mutex};

mod envelope;
mod keys;
mod public;
mod random;
mod sign;
mod sm3;
mod sm4;

pub use envelope::EnvelopedKey;
pub use public::HsmEncrypter;
pub use random::HsmRandom;
pub use sign::HsmSigner;
pub use sm4::HsmSm4Key;

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
    /// As [`KeyUsage::Signing`], plus `CKA_UNWRAP` on the private key: the holder's key of a
    /// dual pair, which unwraps inside the token the GM/T 0009 envelope of its encryption key
    /// (`Hsm::import_envelope`). It never decrypts: decrypting the envelope's SM2Cipher would
    /// put the envelope's key, and with it the encryption private key, in host memory.
    SigningAndUnwrap,
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
    send_sync::<HsmRandom>();
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
}

fn utf8_pin(pin: &Secret, what: &str) -> Result<AuthPin, HsmError> {
    let s = std::str::from_utf8(pin.expose()).map_err(|_| HsmError::InvalidInput {
        reason: format!("the {what} must be UTF-8 text"),
    })?;
    Ok(AuthPin::from(s.to_string()))
}
