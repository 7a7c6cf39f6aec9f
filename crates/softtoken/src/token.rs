//! One token: its stored state (cached, refreshed when the generation changes), the login
//! state of this process, the PIN operations with their persisted retry counters, and the cache
//! of decrypted keys.
#![forbid(unsafe_code)]

use crate::attr::Template;
use crate::error::{Result, ck};
use crate::keywrap::{self, KeyBytes, PinRole, Sealed};
use crate::object::{Material, Object, ObjectId, Plain};
use crate::storage::{SlotLock, SlotStore, TokenRecord, TokenState};
use crypto::RandomSource;
use crypto_sm::sm2::PrivateKey;
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The shortest PIN accepted.
pub const MIN_PIN_LEN: usize = 4;
/// The longest PIN accepted.
pub const MAX_PIN_LEN: usize = 64;
/// Consecutive wrong user PINs before the user PIN locks.
pub const USER_PIN_MAX_FAILURES: u32 = 5;
/// Consecutive wrong SO PINs before the SO PIN locks (for good: only a new token directory helps).
pub const SO_PIN_MAX_FAILURES: u32 = 10;

/// Who is logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKind {
    /// The security officer.
    So,
    /// The normal user.
    User,
}

impl UserKind {
    fn role(self) -> PinRole {
        match self {
            UserKind::So => PinRole::So,
            UserKind::User => PinRole::User,
        }
    }
}

/// The login state of this process on one token: who, the unwrapped token key, and the keys
/// decrypted so far. Dropping it zeroizes all of them.
struct Login {
    kind: UserKind,
    token_key: KeyBytes,
    cache: HashMap<ObjectId, Arc<Plain>>,
}

/// One slot's token as this process sees it.
pub struct Token {
    store: SlotStore,
    state: TokenState,
    loaded: bool,
    login: Option<Login>,
    /// Test hook: stop a PIN check right after the attempt was counted on disk, as a crash there
    /// would, to show that the count is durable before the PIN is even looked at.
    #[cfg(test)]
    pub(crate) crash_after_count: bool,
}

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Token")
            .field("dir", &self.store.dir())
            .field("generation", &self.state.generation)
            .field("login", &self.login.as_ref().map(|l| l.kind))
            .finish()
    }
}

/// Checks a PIN's length.
pub fn check_pin_len(pin: &[u8]) -> Result<()> {
    if (MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) {
        Ok(())
    } else {
        Err(ck(CKR_PIN_LEN_RANGE, "a PIN is 4 to 64 bytes"))
    }
}

/// Returns a label blank-padded to 32 bytes, as `CK_TOKEN_INFO` carries it.
pub fn pad_label(label: &[u8]) -> [u8; 32] {
    let mut out = [b' '; 32];
    let n = label.len().min(32);
    out[..n].copy_from_slice(&label[..n]);
    out
}

impl Token {
    /// Opens a token over its slot directory; nothing is read until first use.
    pub fn new(store: SlotStore) -> Self {
        Self {
            store,
            state: TokenState::default(),
            loaded: false,
            login: None,
            #[cfg(test)]
            crash_after_count: false,
        }
    }

    /// Re-reads the stored state if another process (or nobody yet) wrote a newer one.
    pub fn refresh(&mut self) -> Result<()> {
        if self.loaded {
            if let Some(g) = self.store.generation_hint() {
                if g == self.state.generation {
                    return Ok(());
                }
            } else if self.state.record.is_none() {
                // Never initialised and still no generation file: nothing to read.
                return Ok(());
            }
        }
        let st = self.store.load()?;
        self.adopt(st);
        Ok(())
    }

    /// Makes `st` the cached state. If the token was re-initialised (its identity changed),
    /// the login of this process belongs to a token that no longer exists and is dropped.
    fn adopt(&mut self, st: TokenState) {
        let old_id = self.state.record.as_ref().map(|r| r.token_id);
        let new_id = st.record.as_ref().map(|r| r.token_id);
        if self.loaded && old_id != new_id {
            self.login = None;
        }
        if let Some(login) = &mut self.login {
            login
                .cache
                .retain(|id, _| st.objects.iter().any(|o| o.id == *id));
        }
        self.state = st;
        self.loaded = true;
    }

    /// Runs a read-modify-write under the slot lock on freshly read state. On error nothing is
    /// written (but the fresh state is still adopted).
    pub fn update<R>(&mut self, f: impl FnOnce(&mut TokenState) -> Result<R>) -> Result<R> {
        let lock = self.store.lock()?;
        let mut st = self.store.load()?;
        let result = f(&mut st);
        let result = match result {
            Ok(r) => {
                st.generation += 1;
                self.store.save(&lock, &st).map(|_| r)
            }
            Err(e) => {
                // Reload so that the cache does not keep the rejected change.
                st = self.store.load()?;
                Err(e)
            }
        };
        drop(lock);
        self.adopt(st);
        result
    }

    /// Returns the cached state.
    pub fn state(&self) -> &TokenState {
        &self.state
    }

    /// Returns the record, if the token is initialised.
    pub fn record(&self) -> Option<&TokenRecord> {
        self.state.record.as_ref()
    }

    /// Returns who is logged in.
    pub fn login_kind(&self) -> Option<UserKind> {
        self.login.as_ref().map(|l| l.kind)
    }

    /// Returns whether the normal user is logged in.
    pub fn user_logged_in(&self) -> bool {
        self.login_kind() == Some(UserKind::User)
    }

    /// Logs out: the token key and every decrypted key are zeroized.
    pub fn logout(&mut self) {
        self.login = None;
    }

    /// Returns the serial number: the token id in hex (16 characters), blank before init.
    pub fn serial(&self) -> [u8; 16] {
        let mut out = [b' '; 16];
        if let Some(r) = self.record() {
            out.copy_from_slice(hex::encode(r.token_id).as_bytes());
        }
        out
    }

    /// Returns the `CK_TOKEN_INFO` flags.
    pub fn flags(&self) -> CK_FLAGS {
        let mut f = CKF_RNG | CKF_LOGIN_REQUIRED;
        let Some(r) = self.record() else {
            return f;
        };
        f |= CKF_TOKEN_INITIALIZED;
        if r.user_pin.is_some() {
            f |= CKF_USER_PIN_INITIALIZED;
        }
        let counter = |n: u32, max: u32, low, last, locked| match n {
            0 => 0,
            n if n >= max => locked,
            n if n + 1 == max => low | last,
            _ => low,
        };
        f |= counter(
            r.user_failures,
            USER_PIN_MAX_FAILURES,
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        );
        f |= counter(
            r.so_failures,
            SO_PIN_MAX_FAILURES,
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        );
        f
    }

    /// Checks a PIN against its wrap, counting the attempt on disk BEFORE checking it, so that
    /// killing the process after a wrong guess cannot undo the count. Runs under `lock` on `st`.
    fn verify_pin(
        &self,
        lock: &SlotLock,
        st: &mut TokenState,
        kind: UserKind,
        pin: &[u8],
    ) -> Result<KeyBytes> {
        let max = match kind {
            UserKind::So => SO_PIN_MAX_FAILURES,
            UserKind::User => USER_PIN_MAX_FAILURES,
        };
        let rec = st
            .record
            .as_mut()
            .ok_or(ck(CKR_TOKEN_NOT_RECOGNIZED, "the token is not initialised"))?;
        let (failures, wrap) = match kind {
            UserKind::So => (&mut rec.so_failures, Some(rec.so_pin.clone())),
            UserKind::User => (&mut rec.user_failures, rec.user_pin.clone()),
        };
        let Some(wrap) = wrap else {
            return Err(ck(CKR_USER_PIN_NOT_INITIALIZED, "no user PIN is set"));
        };
        if *failures >= max {
            return Err(ck(CKR_PIN_LOCKED, "the PIN is locked"));
        }
        *failures += 1;
        let now = *failures;
        let token_id = rec.token_id;
        st.generation += 1;
        self.store.save(lock, st)?;
        #[cfg(test)]
        if self.crash_after_count {
            return Err(ck(CKR_GENERAL_ERROR, "test hook: crashed after counting"));
        }
        match keywrap::unwrap_token_key(pin, kind.role(), &token_id, &wrap) {
            Some(k) => {
                if let Some(rec) = st.record.as_mut() {
                    match kind {
                        UserKind::So => rec.so_failures = 0,
                        UserKind::User => rec.user_failures = 0,
                    }
                }
                st.generation += 1;
                self.store.save(lock, st)?;
                Ok(k)
            }
            None if now >= max => Err(ck(
                CKR_PIN_LOCKED,
                "wrong PIN; that was the last attempt, the PIN is now locked",
            )),
            None => Err(ck(CKR_PIN_INCORRECT, "wrong PIN")),
        }
    }

    /// `C_InitToken`: creates the token, or wipes it after checking the SO PIN. A new token
    /// identity, token key and salts are drawn; every object is destroyed; no user PIN is set.
    pub fn init_token(
        &mut self,
        so_pin: &[u8],
        label: &[u8; 32],
        rng: &dyn RandomSource,
    ) -> Result<()> {
        check_pin_len(so_pin)?;
        let lock = self.store.lock()?;
        let mut st = self.store.load()?;
        if st.record.is_some()
            && let Err(e) = self.verify_pin(&lock, &mut st, UserKind::So, so_pin)
        {
            drop(lock);
            self.adopt(st);
            return Err(e);
        }
        let mut token_id = [0u8; 8];
        rng.fill(&mut token_id)
            .map_err(|_| crate::error::Error::Entropy)?;
        let token_key = KeyBytes::random(rng)?;
        let so_wrap = keywrap::wrap_token_key(so_pin, PinRole::So, &token_id, &token_key, rng)?;
        st.record = Some(TokenRecord {
            token_id,
            label: *label,
            so_failures: 0,
            user_failures: 0,
            so_pin: so_wrap,
            user_pin: None,
        });
        st.objects.clear();
        st.generation += 1;
        let saved = self.store.save(&lock, &st);
        drop(lock);
        self.login = None;
        self.adopt(st);
        saved
    }

    /// `C_Login` (the caller has checked the session rules).
    pub fn login(&mut self, kind: UserKind, pin: &[u8]) -> Result<()> {
        check_pin_len(pin)?;
        let lock = self.store.lock()?;
        let mut st = self.store.load()?;
        let result = self.verify_pin(&lock, &mut st, kind, pin);
        drop(lock);
        self.adopt(st);
        let token_key = result?;
        self.login = Some(Login {
            kind,
            token_key,
            cache: HashMap::new(),
        });
        Ok(())
    }

    /// `C_InitPIN`: the logged-in SO sets the user PIN (and so unlocks a locked user PIN). The
    /// token key comes from the SO's login, so no object is lost.
    pub fn init_pin(&mut self, pin: &[u8], rng: &dyn RandomSource) -> Result<()> {
        check_pin_len(pin)?;
        let Some(Login {
            kind: UserKind::So,
            token_key,
            ..
        }) = &self.login
        else {
            return Err(ck(CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs an SO session"));
        };
        let token_key = token_key.clone();
        let expected_id = self.record().map(|r| r.token_id);
        self.update(|st| {
            let rec = st
                .record
                .as_mut()
                .filter(|r| Some(r.token_id) == expected_id)
                .ok_or(ck(CKR_USER_NOT_LOGGED_IN, "the token was re-initialised"))?;
            rec.user_pin = Some(keywrap::wrap_token_key(
                pin,
                PinRole::User,
                &rec.token_id,
                &token_key,
                rng,
            )?);
            rec.user_failures = 0;
            Ok(())
        })
    }

    /// `C_SetPIN`: checks the old PIN (counted like a login) and rewraps the same token key
    /// under the new one, so every object stays readable.
    pub fn set_pin(
        &mut self,
        kind: UserKind,
        old: &[u8],
        new: &[u8],
        rng: &dyn RandomSource,
    ) -> Result<()> {
        check_pin_len(new)?;
        if check_pin_len(old).is_err() {
            return Err(ck(
                CKR_PIN_INCORRECT,
                "the old PIN has an impossible length",
            ));
        }
        let lock = self.store.lock()?;
        let mut st = self.store.load()?;
        let result = self
            .verify_pin(&lock, &mut st, kind, old)
            .and_then(|token_key| {
                let rec = st
                    .record
                    .as_mut()
                    .ok_or(ck(CKR_TOKEN_NOT_RECOGNIZED, "the token is not initialised"))?;
                let wrap =
                    keywrap::wrap_token_key(new, kind.role(), &rec.token_id, &token_key, rng)?;
                match kind {
                    UserKind::So => rec.so_pin = wrap,
                    UserKind::User => rec.user_pin = Some(wrap),
                }
                st.generation += 1;
                self.store.save(&lock, &st)
            });
        drop(lock);
        self.adopt(st);
        result
    }

    /// Returns an object's decrypted value: from a session object directly, or from the cache,
    /// or by opening the sealed value with the token key (then cached until logout).
    pub fn plain(&mut self, obj: &Object) -> Result<Arc<Plain>> {
        let sealed = match &obj.material {
            Material::Plain(p) => return Ok(p.clone()),
            Material::Public(_) => {
                return Err(ck(
                    CKR_KEY_TYPE_INCONSISTENT,
                    "a public key has no secret value",
                ));
            }
            Material::Sealed(s) => s,
        };
        let token_id = self
            .record()
            .map(|r| r.token_id)
            .ok_or(ck(CKR_TOKEN_NOT_RECOGNIZED, "the token is not initialised"))?;
        let Some(login) = &mut self.login else {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "the key is encrypted under the token key; log in first",
            ));
        };
        if let Some(p) = login.cache.get(&obj.id) {
            return Ok(p.clone());
        }
        let corrupt = || crate::error::Error::Corrupt {
            path: self.store.dir().join("token.json"),
            reason: format!(
                "the sealed value of object {} does not open with the token key",
                hex::encode(obj.id.0)
            ),
        };
        let bytes = keywrap::open(&login.token_key, &obj.seal_aad(&token_id), sealed)
            .ok_or_else(corrupt)?;
        let plain = match obj.key_type {
            crate::object::KeyType::Sm4 => {
                Plain::Sm4(KeyBytes::from_slice(&bytes).ok_or_else(corrupt)?)
            }
            crate::object::KeyType::Sm2 => {
                Plain::Sm2(PrivateKey::from_bytes(&bytes).map_err(|_| corrupt())?)
            }
        };
        let plain = Arc::new(plain);
        login.cache.insert(obj.id, plain.clone());
        Ok(plain)
    }

    /// Seals a value for a token object (requires a login: the token key).
    pub fn seal(&self, obj: &Object, plain: &Plain, rng: &dyn RandomSource) -> Result<Sealed> {
        let (Some(login), Some(rec)) = (&self.login, self.record()) else {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "storing a secret on the token needs the token key; log in first",
            ));
        };
        keywrap::seal(
            &login.token_key,
            &obj.seal_aad(&rec.token_id),
            &plain.bytes(),
            rng,
        )
    }

    /// Stores new token objects (all or none).
    pub fn insert_objects(&mut self, objects: Vec<Object>) -> Result<()> {
        let expected = self.record().map(|r| r.token_id);
        self.update(|st| {
            if st.record.as_ref().map(|r| r.token_id) != expected {
                return Err(ck(
                    CKR_DEVICE_REMOVED,
                    "the token was re-initialised meanwhile",
                ));
            }
            if st.objects.len() + objects.len() > crate::storage::MAX_OBJECTS {
                return Err(ck(CKR_DEVICE_MEMORY, "the token is full"));
            }
            st.objects.extend(objects);
            Ok(())
        })
    }

    /// Applies `C_SetAttributeValue` to a token object. The template is applied to the object
    /// as read under the slot lock, not to the caller's copy: another process may have changed
    /// it since (made it sensitive, say), and writing a stale copy back would undo that.
    pub fn replace_object(&mut self, id: ObjectId, template: &Template) -> Result<()> {
        self.update(|st| {
            let slot = st.objects.iter_mut().find(|o| o.id == id).ok_or(ck(
                CKR_OBJECT_HANDLE_INVALID,
                "the object was destroyed meanwhile",
            ))?;
            slot.apply_modification(template)
        })
    }

    /// Destroys a token object.
    pub fn remove_object(&mut self, id: ObjectId) -> Result<()> {
        self.update(|st| {
            let before = st.objects.len();
            st.objects.retain(|o| o.id != id);
            if st.objects.len() == before {
                return Err(ck(
                    CKR_OBJECT_HANDLE_INVALID,
                    "the object was destroyed meanwhile",
                ));
            }
            Ok(())
        })?;
        if let Some(l) = &mut self.login {
            l.cache.remove(&id);
        }
        Ok(())
    }

    /// Returns the cached token object with this id.
    pub fn object(&self, id: ObjectId) -> Option<&Object> {
        self.state.objects.iter().find(|o| o.id == id)
    }
}
