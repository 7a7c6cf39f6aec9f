//! The whole module as safe Rust: slots and tokens, sessions, object handles, and one method
//! per PKCS#11 function. The FFI layer converts C arguments into these calls and results back;
//! nothing here touches a raw pointer.
#![forbid(unsafe_code)]

use crate::attr::Template;
use crate::config::Config;
use crate::error::{Error, Result, ck, refuse};
use crate::keywrap::{KeyBytes, Sealed};
use crate::mechanism::{Mechanism, MechanismInfo, Sm4Cipher, mechanism_info};
use crate::object::{AttrRead, KeyType, Material, Object, ObjectClass, ObjectId, Origin, Plain};
use crate::ops::{
    CipherKey, CipherMech, CipherOp, DigestOp, Job, Need, SIGNATURE_LEN, SignInput, SignOp,
    VerifyOp,
};
use crate::storage::SlotStore;
use crate::token::{Token, UserKind};
use crate::vendor::{CKM_GM_SM2_KEY_PAIR_GEN, CKM_GM_SM4_KEY_GEN, ec_point_from_attribute};
use crypto::RandomSource;
use crypto_sm::sm2::PrivateKey;
use cryptoki_sys::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where the caller wants output: a length query (NULL buffer) or a buffer of some capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutSpace {
    /// NULL buffer: report the length, keep the operation.
    Query,
    /// A buffer of this many bytes.
    Capacity(usize),
}

/// What a finishing call produced.
#[derive(Debug)]
pub enum Step<'a> {
    /// Answer to a length query; the operation stays active.
    Length(usize),
    /// The buffer is too small for this many bytes; the operation stays active.
    TooSmall(usize),
    /// Run this job outside the lock; its output goes to the buffer.
    Run(Job<'a>),
    /// The output, ready.
    Done(Zeroizing<Vec<u8>>),
}

/// `CK_TOKEN_INFO`, minus the constant fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Label, blank padded.
    pub label: [u8; 32],
    /// Serial number, blank padded.
    pub serial: [u8; 16],
    /// `CKF_*` flags.
    pub flags: CK_FLAGS,
    /// Sessions of this process on the token.
    pub sessions: usize,
    /// Of which read-write.
    pub rw_sessions: usize,
}

/// `CK_SESSION_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The slot.
    pub slot: CK_SLOT_ID,
    /// `CKS_*`.
    pub state: CK_STATE,
    /// `CKF_SERIAL_SESSION`, plus `CKF_RW_SESSION` for a read-write session.
    pub flags: CK_FLAGS,
}

#[derive(Debug, Default)]
struct Session {
    slot: usize,
    rw: bool,
    find: Option<Vec<CK_OBJECT_HANDLE>>,
    digest: Option<DigestOp>,
    sign: Option<SignOp>,
    verify: Option<VerifyOp>,
    encrypt: Option<CipherOp>,
    decrypt: Option<CipherOp>,
}

#[derive(Debug)]
struct SessionObject {
    slot: usize,
    owner: CK_SESSION_HANDLE,
    object: Object,
}

/// The module state of one process.
pub struct Module {
    rng: Arc<dyn RandomSource>,
    faults_enabled: bool,
    device_removed: bool,
    tokens: Vec<Token>,
    sessions: BTreeMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    handles: HashMap<CK_OBJECT_HANDLE, (usize, ObjectId)>,
    handle_of: HashMap<(usize, ObjectId), CK_OBJECT_HANDLE>,
    next_object: CK_OBJECT_HANDLE,
    session_objects: HashMap<ObjectId, SessionObject>,
    /// Test hook: runs in `C_SetAttributeValue` between reading a token object and writing it
    /// back, where another process could write the same object.
    #[cfg(test)]
    before_token_write: Option<Box<dyn FnMut() + Send>>,
}

impl core::fmt::Debug for Module {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Module")
            .field("tokens", &self.tokens)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Which handle error a lookup reports.
#[derive(Clone, Copy)]
enum Role {
    Object,
    Key,
    WrappingKey,
    UnwrappingKey,
}

impl Role {
    fn invalid(self) -> Error {
        match self {
            Role::Object => ck(CKR_OBJECT_HANDLE_INVALID, "no such object"),
            Role::Key => ck(CKR_KEY_HANDLE_INVALID, "no such key"),
            Role::WrappingKey => ck(CKR_WRAPPING_KEY_HANDLE_INVALID, "no such wrapping key"),
            Role::UnwrappingKey => ck(CKR_UNWRAPPING_KEY_HANDLE_INVALID, "no such unwrapping key"),
        }
    }
}

fn not_permitted() -> Error {
    ck(
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        "the key's usage attributes do not allow this operation",
    )
}

/// SM2 private keys are wrapped and unwrapped only with an authenticating mechanism (GCM).
/// Under CBC-PAD anyone can alter a blob, and whether an altered blob unwraps (a valid d lies
/// in [1, n-2]) would tell the range of the altered d: an oracle on the key, bit by bit.
fn sm2_needs_gcm(rv: CK_RV) -> Error {
    ck(
        rv,
        "SM2 private keys are wrapped and unwrapped only with CKM_GM_SM4_GCM",
    )
}

fn type_inconsistent() -> Error {
    ck(
        CKR_KEY_TYPE_INCONSISTENT,
        "the key does not fit the mechanism",
    )
}

fn finish<'a, T>(
    slot: &mut Option<T>,
    space: OutSpace,
    needed: Result<usize>,
    job: impl FnOnce(T) -> Job<'a>,
) -> Result<Step<'a>> {
    // PKCS#11 §5.2: any error except CKR_BUFFER_TOO_SMALL ends the operation.
    let needed = match needed {
        Ok(n) => n,
        Err(e) => {
            *slot = None;
            return Err(e);
        }
    };
    match space {
        OutSpace::Query => Ok(Step::Length(needed)),
        OutSpace::Capacity(c) if c < needed => Ok(Step::TooSmall(needed)),
        OutSpace::Capacity(_) => match slot.take() {
            Some(op) => Ok(Step::Run(job(op))),
            None => Err(ck(CKR_OPERATION_NOT_INITIALIZED, "no operation")),
        },
    }
}

fn active<T>(slot: &Option<T>) -> Result<()> {
    if slot.is_some() {
        Err(ck(
            CKR_OPERATION_ACTIVE,
            "an operation of this kind is already active",
        ))
    } else {
        Ok(())
    }
}

fn need_of(obj: &Object) -> Need {
    if obj.private {
        Need::User
    } else if matches!(obj.material, Material::Sealed(_)) {
        Need::AnyLogin
    } else {
        Need::Nobody
    }
}

impl Module {
    /// Builds the module: one token per slot directory (created if missing). Nothing is read
    /// from the directories until first use.
    pub fn new(config: &Config, rng: Arc<dyn RandomSource>) -> Result<Self> {
        let tokens = (0..config.slots)
            .map(|i| SlotStore::create(config.dir.join(format!("slot{i}"))).map(Token::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            rng,
            faults_enabled: config.faults,
            device_removed: false,
            tokens,
            sessions: BTreeMap::new(),
            next_session: 1,
            handles: HashMap::new(),
            handle_of: HashMap::new(),
            next_object: 1,
            session_objects: HashMap::new(),
            #[cfg(test)]
            before_token_write: None,
        })
    }

    /// Returns `CKR_DEVICE_REMOVED` while fault 2 is on.
    pub fn check_device(&self) -> Result<()> {
        if self.device_removed {
            Err(ck(CKR_DEVICE_REMOVED, "fault injection: device removed"))
        } else {
            Ok(())
        }
    }

    /// Returns the random source.
    pub fn rng(&self) -> Arc<dyn RandomSource> {
        self.rng.clone()
    }

    // ---- slots and tokens --------------------------------------------------------------

    fn slot_index(&self, slot: CK_SLOT_ID) -> Result<usize> {
        usize::try_from(slot)
            .ok()
            .filter(|i| *i < self.tokens.len())
            .ok_or(ck(CKR_SLOT_ID_INVALID, "no such slot"))
    }

    /// `C_GetSlotList`: every slot has a token present.
    pub fn slot_list(&self) -> Vec<CK_SLOT_ID> {
        (0..self.tokens.len() as CK_SLOT_ID).collect()
    }

    /// Checks a slot id (`C_GetSlotInfo`).
    pub fn check_slot(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.slot_index(slot).map(|_| ())
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&mut self, slot: CK_SLOT_ID) -> Result<TokenInfo> {
        let i = self.slot_index(slot)?;
        self.tokens[i].refresh()?;
        let t = &self.tokens[i];
        let (sessions, rw_sessions) = self
            .sessions
            .values()
            .filter(|s| s.slot == i)
            .fold((0, 0), |(n, rw), s| (n + 1, rw + usize::from(s.rw)));
        Ok(TokenInfo {
            label: t.record().map(|r| r.label).unwrap_or([b' '; 32]),
            serial: t.serial(),
            flags: t.flags(),
            sessions,
            rw_sessions,
        })
    }

    /// `C_GetMechanismList`.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.slot_index(slot)?;
        Ok(crate::mechanism::MECHANISMS
            .iter()
            .map(|(m, _)| *m)
            .collect())
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(&self, slot: CK_SLOT_ID, m: CK_MECHANISM_TYPE) -> Result<MechanismInfo> {
        self.slot_index(slot)?;
        mechanism_info(m)
    }

    /// `C_InitToken`: refused while this process has sessions on the token.
    pub fn init_token(&mut self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        let i = self.slot_index(slot)?;
        if self.sessions.values().any(|s| s.slot == i) {
            return Err(ck(CKR_SESSION_EXISTS, "close the token's sessions first"));
        }
        let rng = self.rng.clone();
        self.tokens[i].init_token(so_pin, label, rng.as_ref())?;
        self.forget_handles(i);
        Ok(())
    }

    fn forget_handles(&mut self, slot: usize) {
        self.handles.retain(|_, (s, _)| *s != slot);
        self.handle_of.retain(|(s, _), _| *s != slot);
    }

    // ---- sessions ----------------------------------------------------------------------

    fn session(&self, sh: CK_SESSION_HANDLE) -> Result<&Session> {
        self.sessions
            .get(&sh)
            .ok_or(ck(CKR_SESSION_HANDLE_INVALID, "no such session"))
    }

    fn session_mut(&mut self, sh: CK_SESSION_HANDLE) -> Result<&mut Session> {
        self.sessions
            .get_mut(&sh)
            .ok_or(ck(CKR_SESSION_HANDLE_INVALID, "no such session"))
    }

    /// Checks a session handle (for functions that only need a valid session).
    pub fn check_session(&self, sh: CK_SESSION_HANDLE) -> Result<()> {
        self.session(sh).map(|_| ())
    }

    /// `C_OpenSession`.
    pub fn open_session(&mut self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        let i = self.slot_index(slot)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(ck(
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                "CKF_SERIAL_SESSION is required",
            ));
        }
        let t = &mut self.tokens[i];
        t.refresh()?;
        if t.record().is_none() {
            return Err(ck(CKR_TOKEN_NOT_RECOGNIZED, "initialise the token first"));
        }
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && t.login_kind() == Some(UserKind::So) {
            return Err(ck(
                CKR_SESSION_READ_WRITE_SO_EXISTS,
                "the SO is logged in; only read-write sessions may be opened",
            ));
        }
        let sh = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            sh,
            Session {
                slot: i,
                rw,
                ..Session::default()
            },
        );
        Ok(sh)
    }

    /// `C_CloseSession`: its session objects die; closing the token's last session logs out.
    pub fn close_session(&mut self, sh: CK_SESSION_HANDLE) -> Result<()> {
        let s = self
            .sessions
            .remove(&sh)
            .ok_or(ck(CKR_SESSION_HANDLE_INVALID, "no such session"))?;
        let dead: Vec<ObjectId> = self
            .session_objects
            .iter()
            .filter(|(_, o)| o.owner == sh)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.drop_session_object(id);
        }
        if !self.sessions.values().any(|o| o.slot == s.slot) {
            self.tokens[s.slot].logout();
        }
        Ok(())
    }

    fn drop_session_object(&mut self, id: ObjectId) {
        if let Some(o) = self.session_objects.remove(&id)
            && let Some(h) = self.handle_of.remove(&(o.slot, id))
        {
            self.handles.remove(&h);
        }
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&mut self, slot: CK_SLOT_ID) -> Result<()> {
        let i = self.slot_index(slot)?;
        self.close_slot_sessions(i);
        Ok(())
    }

    fn close_slot_sessions(&mut self, slot: usize) {
        let handles: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.slot == slot)
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            let _ = self.close_session(h);
        }
        self.tokens[slot].logout();
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, sh: CK_SESSION_HANDLE) -> Result<SessionInfo> {
        let s = self.session(sh)?;
        let state = match (self.tokens[s.slot].login_kind(), s.rw) {
            (Some(UserKind::So), _) => CKS_RW_SO_FUNCTIONS,
            (Some(UserKind::User), true) => CKS_RW_USER_FUNCTIONS,
            (Some(UserKind::User), false) => CKS_RO_USER_FUNCTIONS,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (None, false) => CKS_RO_PUBLIC_SESSION,
        };
        let flags = CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 };
        Ok(SessionInfo {
            slot: s.slot as CK_SLOT_ID,
            state,
            flags,
        })
    }

    /// `C_Login`.
    pub fn login(&mut self, sh: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let slot = self.session(sh)?.slot;
        let kind = match user {
            CKU_SO => UserKind::So,
            CKU_USER => UserKind::User,
            CKU_CONTEXT_SPECIFIC => {
                return Err(ck(
                    CKR_OPERATION_NOT_INITIALIZED,
                    "no key of this token needs re-authentication",
                ));
            }
            _ => return Err(ck(CKR_USER_TYPE_INVALID, "unknown user type")),
        };
        self.tokens[slot].refresh()?;
        match self.tokens[slot].login_kind() {
            Some(k) if k == kind => {
                return Err(ck(CKR_USER_ALREADY_LOGGED_IN, "already logged in"));
            }
            Some(_) => {
                return Err(ck(
                    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
                    "the other user type is logged in",
                ));
            }
            None => {}
        }
        if kind == UserKind::So && self.sessions.values().any(|s| s.slot == slot && !s.rw) {
            return Err(ck(
                CKR_SESSION_READ_ONLY_EXISTS,
                "the SO cannot log in while a read-only session is open",
            ));
        }
        self.tokens[slot].login(kind, pin)
    }

    /// `C_Logout`: the token key and decrypted keys are zeroized, private session objects die.
    pub fn logout(&mut self, sh: CK_SESSION_HANDLE) -> Result<()> {
        let slot = self.session(sh)?.slot;
        if self.tokens[slot].login_kind().is_none() {
            return Err(ck(CKR_USER_NOT_LOGGED_IN, "nobody is logged in"));
        }
        self.logout_slot(slot);
        Ok(())
    }

    fn logout_slot(&mut self, slot: usize) {
        self.tokens[slot].logout();
        // PKCS#11 §5.6 C_Logout: private session objects are destroyed.
        let dead: Vec<ObjectId> = self
            .session_objects
            .iter()
            .filter(|(_, o)| o.slot == slot && o.object.private)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.drop_session_object(id);
        }
    }

    /// `C_InitPIN` (SO, read-write session).
    pub fn init_pin(&mut self, sh: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let s = self.session(sh)?;
        let slot = s.slot;
        if !s.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "C_InitPIN needs a read-write session",
            ));
        }
        let rng = self.rng.clone();
        self.tokens[slot].init_pin(pin, rng.as_ref())
    }

    /// `C_SetPIN`: the SO's PIN in an SO session, the user's otherwise.
    pub fn set_pin(&mut self, sh: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let s = self.session(sh)?;
        let slot = s.slot;
        if !s.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "C_SetPIN needs a read-write session",
            ));
        }
        let kind = match self.tokens[slot].login_kind() {
            Some(UserKind::So) => UserKind::So,
            _ => UserKind::User,
        };
        let rng = self.rng.clone();
        self.tokens[slot].set_pin(kind, old, new, rng.as_ref())
    }

    // ---- objects -----------------------------------------------------------------------

    fn handle_for(&mut self, slot: usize, id: ObjectId) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.handle_of.get(&(slot, id)) {
            return *h;
        }
        let h = self.next_object;
        self.next_object += 1;
        self.handles.insert(h, (slot, id));
        self.handle_of.insert((slot, id), h);
        h
    }

    /// Looks an object up for a session: the handle must belong to the session's slot, the
    /// object must still exist, and a private object needs the user logged in.
    fn lookup(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        role: Role,
    ) -> Result<(usize, Object)> {
        let slot = self.session(sh)?.slot;
        let (hslot, id) = *self.handles.get(&oh).ok_or(role.invalid())?;
        if hslot != slot {
            return Err(role.invalid());
        }
        let obj = match self.session_objects.get(&id) {
            Some(so) => so.object.clone(),
            None => {
                self.tokens[slot].refresh()?;
                self.tokens[slot]
                    .object(id)
                    .cloned()
                    .ok_or(role.invalid())?
            }
        };
        if obj.private && !self.tokens[slot].user_logged_in() {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "a private object needs the user logged in",
            ));
        }
        Ok((slot, obj))
    }

    /// Checks that a session may store these new objects: token objects need a read-write
    /// session, private objects a logged-in user.
    fn check_store(&self, sh: CK_SESSION_HANDLE, objects: &[&Object]) -> Result<()> {
        let s = self.session(sh)?;
        if objects.iter().any(|o| o.token) && !s.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "token objects need a read-write session",
            ));
        }
        if objects.iter().any(|o| o.private) && !self.tokens[s.slot].user_logged_in() {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "private objects need the user logged in",
            ));
        }
        Ok(())
    }

    /// Stores new objects for a session: token objects are sealed and written in one update,
    /// session objects stay in memory. Returns their handles in order.
    fn store_new(
        &mut self,
        sh: CK_SESSION_HANDLE,
        objects: Vec<Object>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.check_store(sh, &objects.iter().collect::<Vec<_>>())?;
        let slot = self.session(sh)?.slot;
        let t = &self.tokens[slot];
        let mut to_token = Vec::new();
        for o in &objects {
            if !o.token {
                continue;
            }
            let mut stored = o.clone();
            if let Material::Plain(p) = &o.material {
                stored.material = Material::Sealed(t.seal(o, p, self.rng.as_ref())?);
            }
            to_token.push(stored);
        }
        if !to_token.is_empty() {
            self.tokens[slot].insert_objects(to_token)?;
        }
        let mut handles = Vec::with_capacity(objects.len());
        for o in objects {
            let id = o.id;
            if !o.token {
                self.session_objects.insert(
                    id,
                    SessionObject {
                        slot,
                        owner: sh,
                        object: o,
                    },
                );
            }
            handles.push(self.handle_for(slot, id));
        }
        Ok(handles)
    }

    fn new_id(&self) -> Result<ObjectId> {
        let mut id = [0u8; 16];
        self.rng.fill(&mut id).map_err(|_| Error::Entropy)?;
        Ok(ObjectId(id))
    }

    /// `C_CreateObject`: SM4 secret keys, SM2 public keys and SM2 private keys by value. A key
    /// created by value was known outside the token, so it is never `CKA_LOCAL`,
    /// `CKA_ALWAYS_SENSITIVE` or `CKA_NEVER_EXTRACTABLE`.
    pub fn create_object(
        &mut self,
        sh: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.session(sh)?;
        let class = template
            .ulong(CKA_CLASS)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;
        let key_type = template
            .ulong(CKA_KEY_TYPE)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))?;
        let class = ObjectClass::from_ck(class)?;
        let key_type = KeyType::from_ck(key_type)?;
        let value = |kind| {
            template
                .get(kind)
                .map(|a| a.value.clone())
                .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "the key value is required"))
        };
        let bad_value = || ck(CKR_ATTRIBUTE_VALUE_INVALID, "the key value is invalid");
        let (material, consumed) = match (class, key_type) {
            (ObjectClass::PublicKey, KeyType::Sm2) => {
                let v = value(CKA_EC_POINT)?;
                let point = ec_point_from_attribute(&v).ok_or_else(bad_value)?;
                let pk = crypto_sm::sm2::parse_public_key(point).map_err(|_| bad_value())?;
                (Material::Public(pk), CKA_EC_POINT)
            }
            (ObjectClass::PrivateKey, KeyType::Sm2) => {
                let d = PrivateKey::from_bytes(&value(CKA_VALUE)?).map_err(|_| bad_value())?;
                (Material::Plain(Arc::new(Plain::Sm2(d))), CKA_VALUE)
            }
            (ObjectClass::SecretKey, KeyType::Sm4) => {
                let k = KeyBytes::from_slice(&value(CKA_VALUE)?).ok_or_else(bad_value)?;
                (Material::Plain(Arc::new(Plain::Sm4(k))), CKA_VALUE)
            }
            _ => {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "SM2 keys are public or private keys, SM4 keys are secret keys",
                ));
            }
        };
        let mut obj = Object::with_defaults(self.new_id()?, class, key_type, material);
        obj.apply_creation_template(template, Origin::Imported, &[consumed])?;
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&mut self, sh: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<()> {
        let (slot, obj) = self.lookup(sh, oh, Role::Object)?;
        if !obj.destroyable {
            return Err(ck(CKR_ACTION_PROHIBITED, "the object is not destroyable"));
        }
        if obj.token {
            if !self.session(sh)?.rw {
                return Err(ck(
                    CKR_SESSION_READ_ONLY,
                    "token objects need a read-write session",
                ));
            }
            self.tokens[slot].remove_object(obj.id)?;
            if let Some(h) = self.handle_of.remove(&(slot, obj.id)) {
                self.handles.remove(&h);
            }
        } else {
            self.drop_session_object(obj.id);
        }
        Ok(())
    }

    /// `C_GetAttributeValue`: one result per requested type.
    pub fn get_attributes(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrRead>> {
        let (slot, obj) = self.lookup(sh, oh, Role::Object)?;
        let mut out = Vec::with_capacity(kinds.len());
        for &k in kinds {
            let r = match obj.read(k, None) {
                AttrRead::NeedsLogin => match self.tokens[slot].plain(&obj) {
                    Ok(p) => obj.read(k, Some(&p)),
                    Err(_) => AttrRead::Sensitive,
                },
                r => r,
            };
            out.push(r);
        }
        Ok(out)
    }

    /// `C_SetAttributeValue`.
    pub fn set_attributes(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<()> {
        let (slot, mut obj) = self.lookup(sh, oh, Role::Object)?;
        if obj.token && !self.session(sh)?.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "token objects need a read-write session",
            ));
        }
        // Checked on this copy first (for session objects, this is the change); a token object
        // is changed on its fresh stored state, under the slot lock.
        obj.apply_modification(template)?;
        if obj.token {
            #[cfg(test)]
            if let Some(hook) = self.before_token_write.as_mut() {
                hook();
            }
            self.tokens[slot].replace_object(obj.id, template)
        } else {
            match self.session_objects.get_mut(&obj.id) {
                Some(so) => {
                    so.object = obj;
                    Ok(())
                }
                None => Err(Role::Object.invalid()),
            }
        }
    }

    /// `C_FindObjectsInit`: the result set is fixed now (a snapshot).
    pub fn find_init(&mut self, sh: CK_SESSION_HANDLE, template: &Template) -> Result<()> {
        let s = self.session(sh)?;
        active(&s.find)?;
        let slot = s.slot;
        self.tokens[slot].refresh()?;
        let user = self.tokens[slot].user_logged_in();
        let visible = |o: &Object| (!o.private || user) && o.matches(template);
        let mut ids: Vec<ObjectId> = self.tokens[slot]
            .state()
            .objects
            .iter()
            .filter(|o| visible(o))
            .map(|o| o.id)
            .collect();
        let mut session_ids: Vec<(CK_OBJECT_HANDLE, ObjectId)> = self
            .session_objects
            .iter()
            .filter(|(_, so)| so.slot == slot && visible(&so.object))
            .map(|(id, _)| (self.handle_of.get(&(slot, *id)).copied().unwrap_or(0), *id))
            .collect();
        session_ids.sort();
        ids.extend(session_ids.into_iter().map(|(_, id)| id));
        let mut handles: Vec<CK_OBJECT_HANDLE> = ids
            .into_iter()
            .map(|id| self.handle_for(slot, id))
            .collect();
        handles.reverse();
        self.session_mut(sh)?.find = Some(handles);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` handles.
    pub fn find(&mut self, sh: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let s = self.session_mut(sh)?;
        let found = s
            .find
            .as_mut()
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "C_FindObjectsInit first"))?;
        let n = max.min(found.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some(h) = found.pop() {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, sh: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session_mut(sh)?;
        s.find
            .take()
            .map(|_| ())
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "no search is active"))
    }

    // ---- key generation, wrapping ------------------------------------------------------

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
        let cipher = Self::wrap_cipher(mech, CKF_UNWRAP)?;
        let (slot, uk) = self.lookup(sh, unwrapping, Role::UnwrappingKey)?;
        if (uk.class, uk.key_type) != (ObjectClass::SecretKey, KeyType::Sm4) {
            return Err(ck(
                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
                "the unwrapping key must be an SM4 key",
            ));
        }
        if !uk.usage.unwrap {
            return Err(not_permitted());
        }
        let class = template
            .ulong(CKA_CLASS)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;
        let key_type = template
            .ulong(CKA_KEY_TYPE)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))?;
        let class = ObjectClass::from_ck(class)?;
        let key_type = KeyType::from_ck(key_type)?;
        let value_len = match (class, key_type) {
            (ObjectClass::SecretKey, KeyType::Sm4) => 16,
            (ObjectClass::PrivateKey, KeyType::Sm2) if cipher.authenticates() => 32,
            (ObjectClass::PrivateKey, KeyType::Sm2) => {
                return Err(sm2_needs_gcm(CKR_MECHANISM_INVALID));
            }
            _ => {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "unwrap makes SM4 secret keys or SM2 private keys",
                ));
            }
        };
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
        obj.apply_creation_template(template, Origin::Unwrapped, &[])?;
        self.check_store(sh, &[&obj])?;
        let uplain = self.tokens[slot].plain(&uk)?;
        let Plain::Sm4(ukey) = uplain.as_ref() else {
            return Err(type_inconsistent());
        };
        let value = cipher.unwrap_value(&ukey.sm4()?, wrapped, value_len)?;
        let invalid = || ck(CKR_WRAPPED_KEY_INVALID, "the wrapped key is not valid");
        let material = match key_type {
            KeyType::Sm4 => Plain::Sm4(KeyBytes::from_slice(&value).ok_or_else(invalid)?),
            KeyType::Sm2 => Plain::Sm2(PrivateKey::from_bytes(&value).map_err(|_| invalid())?),
        };
        obj.material = Material::Plain(Arc::new(material));
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_GenerateRandom`.
    pub fn generate_random(&self, sh: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(sh)?;
        self.rng.fill(out).map_err(|_| Error::Entropy)
    }

    // ---- signatures --------------------------------------------------------------------

    /// Checks that the login an operation started under still holds.
    fn check_need(&self, slot: usize, need: Need) -> Result<()> {
        let t = &self.tokens[slot];
        let ok = match need {
            Need::Nobody => true,
            Need::AnyLogin => t.login_kind().is_some(),
            Need::User => t.user_logged_in(),
        };
        if ok {
            Ok(())
        } else {
            Err(ck(CKR_USER_NOT_LOGGED_IN, "the user logged out"))
        }
    }

    /// `C_SignInit`.
    pub fn sign_init(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        active(&self.session(sh)?.sign)?;
        let id = match mech {
            Mechanism::Sm2Sign => None,
            Mechanism::Sm2Sm3Sign(id) => Some(id.clone()),
            _ => return Err(ck(CKR_MECHANISM_INVALID, "not a signature mechanism")),
        };
        let (slot, obj) = self.lookup(sh, key, Role::Key)?;
        if (obj.class, obj.key_type) != (ObjectClass::PrivateKey, KeyType::Sm2) {
            return Err(type_inconsistent());
        }
        if !obj.usage.sign {
            return Err(not_permitted());
        }
        let plain = self.tokens[slot].plain(&obj)?;
        let Plain::Sm2(d) = plain.as_ref() else {
            return Err(type_inconsistent());
        };
        let input = SignInput::new(id.as_ref(), &d.public_key());
        self.session_mut(sh)?.sign = Some(SignOp {
            slot,
            need: need_of(&obj),
            key: plain,
            input,
        });
        Ok(())
    }

    fn sign_op_checked(&mut self, sh: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session(sh)?;
        let Some(op) = &s.sign else {
            return Err(ck(CKR_OPERATION_NOT_INITIALIZED, "C_SignInit first"));
        };
        if let Err(e) = self.check_need(op.slot, op.need) {
            self.session_mut(sh)?.sign = None;
            return Err(e);
        }
        Ok(())
    }

    /// `C_Sign`.
    pub fn sign<'a>(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &'a [u8],
        space: OutSpace,
    ) -> Result<Step<'a>> {
        self.sign_op_checked(sh)?;
        let rng = self.rng.clone();
        let s = self.session_mut(sh)?;
        let needed = match &s.sign {
            Some(op) if !op.input.len_ok(data.len()) => {
                Err(ck(CKR_DATA_LEN_RANGE, "CKM_GM_SM2_SIGN signs a 32-byte e"))
            }
            _ => Ok(SIGNATURE_LEN),
        };
        finish(&mut s.sign, space, needed, |op| Job::Sign { op, data, rng })
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&mut self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.sign_op_checked(sh)?;
        let s = self.session_mut(sh)?;
        if let Some(op) = &mut s.sign
            && let Err(e) = op.input.update(data)
        {
            s.sign = None;
            return Err(e);
        }
        Ok(())
    }

    /// `C_SignFinal`.
    pub fn sign_final(&mut self, sh: CK_SESSION_HANDLE, space: OutSpace) -> Result<Step<'static>> {
        self.sign(sh, &[], space)
    }

    /// `C_VerifyInit`.
    pub fn verify_init(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        active(&self.session(sh)?.verify)?;
        let id = match mech {
            Mechanism::Sm2Sign => None,
            Mechanism::Sm2Sm3Sign(id) => Some(id.clone()),
            _ => return Err(ck(CKR_MECHANISM_INVALID, "not a signature mechanism")),
        };
        let (_, obj) = self.lookup(sh, key, Role::Key)?;
        let (ObjectClass::PublicKey, KeyType::Sm2, Material::Public(pk)) =
            (obj.class, obj.key_type, &obj.material)
        else {
            return Err(type_inconsistent());
        };
        if !obj.usage.verify {
            return Err(not_permitted());
        }
        let input = SignInput::new(id.as_ref(), pk);
        self.session_mut(sh)?.verify = Some(VerifyOp { key: *pk, input });
        Ok(())
    }

    /// `C_Verify` (and `C_VerifyFinal` with empty `data`).
    pub fn verify<'a>(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &'a [u8],
        signature: &'a [u8],
    ) -> Result<Job<'a>> {
        let s = self.session_mut(sh)?;
        let op = s
            .verify
            .take()
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "C_VerifyInit first"))?;
        Ok(Job::Verify {
            op,
            data,
            signature,
        })
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&mut self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let s = self.session_mut(sh)?;
        let op = s
            .verify
            .as_mut()
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "C_VerifyInit first"))?;
        if let Err(e) = op.input.update(data) {
            s.verify = None;
            return Err(e);
        }
        Ok(())
    }

    // ---- encryption --------------------------------------------------------------------

    fn cipher_init(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
        encrypt: bool,
    ) -> Result<CipherOp> {
        let s = self.session(sh)?;
        active(if encrypt { &s.encrypt } else { &s.decrypt })?;
        let cmech = match mech {
            Mechanism::Sm2Encrypt => CipherMech::Sm2,
            Mechanism::Sm4(c) => CipherMech::Sm4(c.clone()),
            _ => return Err(ck(CKR_MECHANISM_INVALID, "not a cipher mechanism")),
        };
        let (slot, obj) = self.lookup(sh, key, Role::Key)?;
        // A key stored before wrap and decrypt or encrypt (unwrap and encrypt) became exclusive
        // may hold both; it keeps its key-encryption role and loses the data role, so it can
        // never decrypt what it wrapped or give the keystream of a wrap.
        let conflicts = obj.usage_conflicts();
        let allowed = if encrypt {
            obj.usage.encrypt && !conflicts.unwrap_encrypt && !conflicts.wrap_encrypt
        } else {
            obj.usage.decrypt && !conflicts.wrap_decrypt
        };
        let key = match (&cmech, obj.class, obj.key_type, &obj.material) {
            (CipherMech::Sm2, ObjectClass::PublicKey, KeyType::Sm2, Material::Public(pk))
                if encrypt =>
            {
                CipherKey::Sm2Public(*pk)
            }
            (CipherMech::Sm2, ObjectClass::PrivateKey, KeyType::Sm2, _) if !encrypt => {
                if !allowed {
                    return Err(not_permitted());
                }
                CipherKey::Secret(self.tokens[slot].plain(&obj)?)
            }
            (CipherMech::Sm4(_), ObjectClass::SecretKey, KeyType::Sm4, _) => {
                if !allowed {
                    return Err(not_permitted());
                }
                CipherKey::Secret(self.tokens[slot].plain(&obj)?)
            }
            _ => return Err(type_inconsistent()),
        };
        if !allowed {
            return Err(not_permitted());
        }
        Ok(CipherOp {
            slot,
            need: need_of(&obj),
            mech: cmech,
            key,
            buf: Zeroizing::new(Vec::new()),
        })
    }

    /// `C_EncryptInit`.
    pub fn encrypt_init(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let op = self.cipher_init(sh, mech, key, true)?;
        self.session_mut(sh)?.encrypt = Some(op);
        Ok(())
    }

    /// `C_DecryptInit`.
    pub fn decrypt_init(
        &mut self,
        sh: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let op = self.cipher_init(sh, mech, key, false)?;
        self.session_mut(sh)?.decrypt = Some(op);
        Ok(())
    }

    /// Checks that a cipher operation is active and its login still holds.
    pub fn cipher_checked(&mut self, sh: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let s = self.session(sh)?;
        let op = if encrypt { &s.encrypt } else { &s.decrypt };
        let Some(op) = op else {
            return Err(ck(
                CKR_OPERATION_NOT_INITIALIZED,
                "no cipher operation is active",
            ));
        };
        if let Err(e) = self.check_need(op.slot, op.need) {
            let s = self.session_mut(sh)?;
            if encrypt {
                s.encrypt = None;
            } else {
                s.decrypt = None;
            }
            return Err(e);
        }
        Ok(())
    }

    /// `C_Encrypt` (and `C_EncryptFinal` with empty `data`).
    pub fn encrypt<'a>(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &'a [u8],
        space: OutSpace,
    ) -> Result<Step<'a>> {
        self.cipher_checked(sh, true)?;
        let rng = self.rng.clone();
        let s = self.session_mut(sh)?;
        let needed = s
            .encrypt
            .as_ref()
            .map_or(Ok(0), |op| op.encrypted_len(data.len()));
        finish(&mut s.encrypt, space, needed, |op| Job::Encrypt {
            op,
            data,
            rng,
        })
    }

    /// `C_Decrypt` (and `C_DecryptFinal` with empty `data`).
    pub fn decrypt<'a>(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &'a [u8],
        space: OutSpace,
    ) -> Result<Step<'a>> {
        self.cipher_checked(sh, false)?;
        let s = self.session_mut(sh)?;
        let needed = s
            .decrypt
            .as_ref()
            .map_or(Ok(0), |op| op.decrypted_len(data.len()));
        finish(&mut s.decrypt, space, needed, |op| Job::Decrypt {
            op,
            data,
        })
    }

    /// `C_EncryptUpdate` / `C_DecryptUpdate`: input is buffered; no output until the final call.
    pub fn cipher_update(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &[u8],
        encrypt: bool,
    ) -> Result<()> {
        self.cipher_checked(sh, encrypt)?;
        let s = self.session_mut(sh)?;
        let slot = if encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        if let Some(op) = slot
            && let Err(e) = op.update(data)
        {
            *slot = None;
            return Err(e);
        }
        Ok(())
    }

    // ---- digests -----------------------------------------------------------------------

    /// `C_DigestInit`.
    pub fn digest_init(&mut self, sh: CK_SESSION_HANDLE, mech: &Mechanism) -> Result<()> {
        let s = self.session_mut(sh)?;
        active(&s.digest)?;
        if *mech != Mechanism::Sm3 {
            return Err(ck(CKR_MECHANISM_INVALID, "C_DigestInit takes CKM_GM_SM3"));
        }
        s.digest = Some(DigestOp::default());
        Ok(())
    }

    /// `C_Digest` (and `C_DigestFinal` with empty `data`).
    pub fn digest<'a>(
        &mut self,
        sh: CK_SESSION_HANDLE,
        data: &'a [u8],
        space: OutSpace,
    ) -> Result<Step<'a>> {
        let s = self.session_mut(sh)?;
        if s.digest.is_none() {
            return Err(ck(CKR_OPERATION_NOT_INITIALIZED, "C_DigestInit first"));
        }
        finish(&mut s.digest, space, Ok(32), |op| Job::Digest { op, data })
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&mut self, sh: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let s = self.session_mut(sh)?;
        let op = s
            .digest
            .as_mut()
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "C_DigestInit first"))?;
        op.ctx.update(data);
        Ok(())
    }

    // ---- fault injection (tests only) --------------------------------------------------

    /// `gmchain_softtoken_set_fault`: see the crate documentation for the kinds.
    pub fn set_fault(&mut self, kind: u32) -> Result<()> {
        if !self.faults_enabled {
            return Err(ck(
                CKR_FUNCTION_NOT_SUPPORTED,
                "fault injection needs GMCHAIN_SOFTTOKEN_FAULTS=1 at C_Initialize",
            ));
        }
        match kind {
            0 => self.device_removed = false,
            1 => self.close_everything(),
            2 => {
                self.device_removed = true;
                self.close_everything();
            }
            3 => {
                for slot in 0..self.tokens.len() {
                    self.logout_slot(slot);
                }
            }
            _ => return Err(ck(CKR_ARGUMENTS_BAD, "fault kinds are 0 to 3")),
        }
        Ok(())
    }

    fn close_everything(&mut self) {
        for slot in 0..self.tokens.len() {
            self.close_slot_sessions(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Attr;
    use crate::mechanism::RawParam;
    use crate::vendor::*;
    use crypto_sm::rng::SeededRandom;
    use std::path::Path;

    const SO: &[u8] = b"so-pin-1234";
    const USER: &[u8] = b"user-pin-1234";

    fn module(dir: &Path) -> Module {
        let config = Config {
            dir: dir.to_path_buf(),
            slots: 2,
            faults: true,
        };
        Module::new(&config, Arc::new(SeededRandom::new(7))).unwrap()
    }

    fn t(attrs: Vec<Attr>) -> Template {
        Template::new(attrs).unwrap()
    }

    fn mech(m: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism::parse(m, RawParam::Bytes(&[])).unwrap()
    }

    fn rv<T: core::fmt::Debug>(r: Result<T>) -> CK_RV {
        r.map(|_| CKR_OK).unwrap_or_else(|e| e.rv())
    }

    fn run(step: Step<'_>) -> Vec<u8> {
        match step {
            Step::Run(job) => job.run().unwrap().to_vec(),
            Step::Done(b) => b.to_vec(),
            other => panic!("expected output, got {other:?}"),
        }
    }

    /// Initialises slot 0 with the SO and user PINs and returns a logged-in RW session.
    fn ready(m: &mut Module) -> CK_SESSION_HANDLE {
        m.init_token(0, SO, &crate::token::pad_label(b"test"))
            .unwrap();
        let s = m
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        m.login(s, CKU_SO, SO).unwrap();
        m.init_pin(s, USER).unwrap();
        m.logout(s).unwrap();
        m.login(s, CKU_USER, USER).unwrap();
        s
    }

    fn keypair(
        m: &mut Module,
        s: CK_SESSION_HANDLE,
        token: bool,
        private_extra: Vec<Attr>,
    ) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut privt = vec![
            Attr::bool(CKA_TOKEN, token),
            Attr::new(CKA_LABEL, b"k".to_vec()),
        ];
        privt.extend(private_extra);
        m.generate_key_pair(
            s,
            &mech(CKM_GM_SM2_KEY_PAIR_GEN),
            &t(vec![
                Attr::bool(CKA_TOKEN, token),
                Attr::bool(CKA_ENCRYPT, true),
            ]),
            &t(privt),
        )
        .unwrap()
    }

    fn files_contain(dir: &Path, needle: &[u8]) -> bool {
        let hex_lower = hex::encode(needle);
        let hex_upper = hex_lower.to_uppercase();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let bytes = std::fs::read(&p).unwrap();
                let has = |n: &[u8]| bytes.windows(n.len()).any(|w| w == n);
                if has(needle) || has(hex_lower.as_bytes()) || has(hex_upper.as_bytes()) {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn token_init_and_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let info = m.token_info(0).unwrap();
        assert_eq!(info.flags & CKF_TOKEN_INITIALIZED, 0);
        assert_eq!(
            rv(m.open_session(0, CKF_SERIAL_SESSION)),
            CKR_TOKEN_NOT_RECOGNIZED
        );
        assert_eq!(
            rv(m.open_session(9, CKF_SERIAL_SESSION)),
            CKR_SLOT_ID_INVALID
        );
        m.init_token(0, SO, &crate::token::pad_label(b"t")).unwrap();
        let info = m.token_info(0).unwrap();
        assert_ne!(info.flags & CKF_TOKEN_INITIALIZED, 0);
        assert_eq!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
        assert_eq!(&info.label[..2], b"t ");
        assert!(info.serial.iter().all(u8::is_ascii_hexdigit));

        assert_eq!(
            rv(m.open_session(0, CKF_RW_SESSION)),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        let ro = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        assert_eq!(m.session_info(ro).unwrap().state, CKS_RO_PUBLIC_SESSION);
        // No SO login while a read-only session exists; no re-init while sessions exist.
        assert_eq!(rv(m.login(ro, CKU_SO, SO)), CKR_SESSION_READ_ONLY_EXISTS);
        assert_eq!(rv(m.init_token(0, SO, &[b' '; 32])), CKR_SESSION_EXISTS);
        assert_eq!(
            rv(m.login(ro, CKU_USER, USER)),
            CKR_USER_PIN_NOT_INITIALIZED
        );
        m.close_session(ro).unwrap();
        assert_eq!(rv(m.session_info(ro)), CKR_SESSION_HANDLE_INVALID);

        let rw = m
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        m.login(rw, CKU_SO, SO).unwrap();
        assert_eq!(m.session_info(rw).unwrap().state, CKS_RW_SO_FUNCTIONS);
        assert_eq!(rv(m.login(rw, CKU_SO, SO)), CKR_USER_ALREADY_LOGGED_IN);
        assert_eq!(
            rv(m.login(rw, CKU_USER, USER)),
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN
        );
        assert_eq!(
            rv(m.open_session(0, CKF_SERIAL_SESSION)),
            CKR_SESSION_READ_WRITE_SO_EXISTS
        );
        assert_eq!(rv(m.init_pin(rw, b"abc")), CKR_PIN_LEN_RANGE);
        m.init_pin(rw, USER).unwrap();
        m.logout(rw).unwrap();
        assert_eq!(rv(m.logout(rw)), CKR_USER_NOT_LOGGED_IN);
        m.login(rw, CKU_USER, USER).unwrap();
        assert_eq!(m.session_info(rw).unwrap().state, CKS_RW_USER_FUNCTIONS);
        // Login is per token: a new session is logged in too; closing the last one logs out.
        let ro2 = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        assert_eq!(m.session_info(ro2).unwrap().state, CKS_RO_USER_FUNCTIONS);
        m.close_session(rw).unwrap();
        m.close_session(ro2).unwrap();
        let again = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        assert_eq!(m.session_info(again).unwrap().state, CKS_RO_PUBLIC_SESSION);

        // Re-initialising needs the SO PIN and wipes everything.
        m.close_all_sessions(0).unwrap();
        let before = m.token_info(0).unwrap().serial;
        assert_eq!(
            rv(m.init_token(0, b"wrong-so", &[b' '; 32])),
            CKR_PIN_INCORRECT
        );
        m.init_token(0, SO, &crate::token::pad_label(b"again"))
            .unwrap();
        let after = m.token_info(0).unwrap();
        assert_ne!(after.serial, before);
        assert_eq!(after.flags & CKF_USER_PIN_INITIALIZED, 0);
    }

    #[test]
    fn pin_attempt_is_counted_on_disk_before_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        m.logout(s).unwrap();
        // Simulate a crash right after the count was written: even a correct PIN leaves the
        // counter at 1 on disk, so killing the process cannot make a guess free.
        m.tokens[0].crash_after_count = true;
        assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_GENERAL_ERROR);
        m.tokens[0].crash_after_count = false;
        let on_disk = SlotStore::create(dir.path().join("slot0"))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(on_disk.record.unwrap().user_failures, 1);
        // A successful login resets it.
        m.login(s, CKU_USER, USER).unwrap();
        let on_disk = SlotStore::create(dir.path().join("slot0"))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(on_disk.record.unwrap().user_failures, 0);
    }

    #[test]
    fn user_pin_lockout_and_so_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (_, private) = keypair(&mut m, s, true, vec![]);
        m.logout(s).unwrap();
        assert_eq!(rv(m.login(s, CKU_USER, b"xy")), CKR_PIN_LEN_RANGE);
        for i in 1..=4 {
            assert_eq!(
                rv(m.login(s, CKU_USER, b"wrong-pin")),
                CKR_PIN_INCORRECT,
                "attempt {i}"
            );
            let f = m.token_info(0).unwrap().flags;
            assert_ne!(f & CKF_USER_PIN_COUNT_LOW, 0);
            assert_eq!(f & CKF_USER_PIN_FINAL_TRY != 0, i == 4);
        }
        assert_eq!(rv(m.login(s, CKU_USER, b"wrong-pin")), CKR_PIN_LOCKED);
        assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_LOCKED);
        assert_ne!(m.token_info(0).unwrap().flags & CKF_USER_PIN_LOCKED, 0);

        // The lock survives a new module (a new process) over the same directory.
        drop(m);
        let mut m = module(dir.path());
        let s = m
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_LOCKED);

        // The SO sets a new user PIN, which unlocks; the keys are still usable.
        m.login(s, CKU_SO, SO).unwrap();
        m.init_pin(s, b"new-user-pin").unwrap();
        m.logout(s).unwrap();
        assert_eq!(m.token_info(0).unwrap().flags & CKF_USER_PIN_LOCKED, 0);
        m.login(s, CKU_USER, b"new-user-pin").unwrap();
        // Handles are per process: find the key again in this "process".
        let _ = private;
        m.find_init(s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
            .unwrap();
        let found = m.find(s, 10).unwrap();
        assert_eq!(found.len(), 1);
        let private = found[0];
        m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
        assert_eq!(
            run(m.sign(s, &[5u8; 32], OutSpace::Capacity(64)).unwrap()).len(),
            64
        );
    }

    #[test]
    fn set_pin_rewraps_and_counts_the_old_pin() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (_, private) = keypair(&mut m, s, true, vec![]);
        assert_eq!(
            rv(m.set_pin(s, b"not-the-pin", b"next-pin")),
            CKR_PIN_INCORRECT
        );
        assert_eq!(
            m.token_info(0).unwrap().flags & CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_COUNT_LOW
        );
        m.set_pin(s, USER, b"next-pin").unwrap();
        m.logout(s).unwrap();
        assert_eq!(rv(m.login(s, CKU_USER, USER)), CKR_PIN_INCORRECT);
        m.login(s, CKU_USER, b"next-pin").unwrap();
        m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
        assert_eq!(
            run(m.sign(s, &[1u8; 32], OutSpace::Capacity(64)).unwrap()).len(),
            64
        );
        let ro = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        assert_eq!(
            rv(m.set_pin(ro, b"next-pin", b"other-pin")),
            CKR_SESSION_READ_ONLY
        );
    }

    #[test]
    fn no_plaintext_secret_reaches_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (_, private) = keypair(&mut m, s, true, vec![]);
        let sm4 = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![Attr::bool(CKA_TOKEN, true)]),
            )
            .unwrap();
        let imported = m
            .create_object(
                s,
                &t(vec![
                    Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
                    Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
                    Attr::bool(CKA_TOKEN, true),
                    Attr::new(CKA_VALUE, vec![0x5a; 16]),
                ]),
            )
            .unwrap();
        let mut secrets = Vec::new();
        for h in [private, sm4, imported] {
            let (slot, obj) = m.lookup(s, h, Role::Key).unwrap();
            assert!(matches!(obj.material, Material::Sealed(_)));
            secrets.push(m.tokens[slot].plain(&obj).unwrap().bytes().to_vec());
        }
        assert_eq!(secrets[0].len(), 32);
        assert_eq!(secrets[2], vec![0x5a; 16]);
        for secret in &secrets {
            assert!(
                !files_contain(dir.path(), secret),
                "a secret value is on disk"
            );
        }
        // Nor the token key, nor the PINs.
        assert!(!files_contain(dir.path(), USER));
        assert!(!files_contain(dir.path(), SO));
    }

    #[test]
    fn a_tampered_token_file_is_a_device_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        keypair(&mut m, s, true, vec![]);
        drop(m);
        let path = dir.path().join("slot0").join("token.json");
        let text = std::fs::read_to_string(&path).unwrap();
        // Flip one hex digit of the sealed private key.
        let at = text.find("\"sealed\"").unwrap();
        let at = at + text[at..].find("\"ciphertext\": \"").unwrap() + 15;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        std::fs::write(&path, &bytes).unwrap();
        let mut m = module(dir.path());
        let s = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        m.login(s, CKU_USER, USER).unwrap();
        m.find_init(s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
            .unwrap();
        let private = m.find(s, 1).unwrap()[0];
        assert_eq!(
            rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private)),
            CKR_DEVICE_ERROR
        );
        // A file that does not parse is an error naming the file.
        std::fs::write(&path, b"{\"format\": 1}").unwrap();
        let mut m = module(dir.path());
        let err = m.token_info(0).unwrap_err();
        assert_eq!(err.rv(), CKR_DEVICE_ERROR);
        assert!(err.to_string().contains("token.json"), "{err}");
    }

    #[test]
    fn attributes_of_generated_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (public, private) = keypair(&mut m, s, true, vec![Attr::new(CKA_ID, vec![7])]);
        let r = m
            .get_attributes(
                s,
                private,
                &[
                    CKA_LOCAL,
                    CKA_ALWAYS_SENSITIVE,
                    CKA_NEVER_EXTRACTABLE,
                    CKA_VALUE,
                    0x7fff_fff0,
                    CKA_EC_PARAMS,
                    CKA_ID,
                ],
            )
            .unwrap();
        let yes = AttrRead::Value(Zeroizing::new(vec![1]));
        assert_eq!(r[0], yes);
        assert_eq!(r[1], yes);
        assert_eq!(r[2], yes);
        assert_eq!(r[3], AttrRead::Sensitive);
        assert_eq!(r[4], AttrRead::Invalid);
        assert_eq!(
            r[5],
            AttrRead::Value(Zeroizing::new(SM2_EC_PARAMS.to_vec()))
        );
        assert_eq!(r[6], AttrRead::Value(Zeroizing::new(vec![7])));
        let r = m
            .get_attributes(s, public, &[CKA_EC_POINT, CKA_VALUE])
            .unwrap();
        let AttrRead::Value(p) = &r[0] else { panic!() };
        assert_eq!((p.len(), p[0], p[1], p[2]), (67, 0x04, 65, 0x04));
        assert_eq!(r[1], AttrRead::Invalid);
        // Search: by class, by id; private objects vanish on logout.
        let find = |m: &mut Module, tpl: Vec<Attr>| {
            m.find_init(s, &t(tpl)).unwrap();
            let h = m.find(s, 100).unwrap();
            m.find_final(s).unwrap();
            h
        };
        assert_eq!(
            find(&mut m, vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]),
            vec![private]
        );
        assert_eq!(
            find(&mut m, vec![Attr::new(CKA_ID, vec![7])]),
            vec![private]
        );
        assert_eq!(find(&mut m, vec![]).len(), 2);
        m.logout(s).unwrap();
        assert_eq!(find(&mut m, vec![]), vec![public]);
        assert_eq!(
            rv(m.get_attributes(s, private, &[CKA_LABEL])),
            CKR_USER_NOT_LOGGED_IN
        );
    }

    #[test]
    fn key_usage_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (public, private) = keypair(&mut m, s, false, vec![Attr::bool(CKA_DECRYPT, false)]);
        assert_eq!(
            rv(m.decrypt_init(s, &mech(CKM_GM_SM2_ENCRYPT), private)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        assert_eq!(
            rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), public)),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            rv(m.sign_init(s, &mech(CKM_GM_SM3), private)),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), 9999)),
            CKR_KEY_HANDLE_INVALID
        );
        let sm4 = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![Attr::bool(CKA_ENCRYPT, false)]),
            )
            .unwrap();
        let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[0; 16])).unwrap();
        assert_eq!(
            rv(m.encrypt_init(s, &cbc, sm4)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        assert_eq!(
            rv(m.wrap_key(s, &cbc, sm4, sm4, OutSpace::Query)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        m.decrypt_init(s, &cbc, sm4).unwrap();
        assert_eq!(rv(m.decrypt_init(s, &cbc, sm4)), CKR_OPERATION_ACTIVE);
        assert_eq!(
            rv(m.sign(s, b"x", OutSpace::Query)),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Signing: length query keeps the operation, a wrong e length ends it.
        m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
        assert!(matches!(
            m.sign(s, &[0; 32], OutSpace::Query).unwrap(),
            Step::Length(64)
        ));
        assert!(matches!(
            m.sign(s, &[0; 32], OutSpace::Capacity(10)).unwrap(),
            Step::TooSmall(64)
        ));
        assert_eq!(
            rv(m.sign(s, &[0; 31], OutSpace::Capacity(64))),
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(m.sign(s, &[0; 32], OutSpace::Capacity(64))),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // A key made unextractable cannot be wrapped.
        let w = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![Attr::bool(CKA_WRAP, true)]),
            )
            .unwrap();
        assert_eq!(
            rv(m.wrap_key(s, &cbc, w, sm4, OutSpace::Query)),
            CKR_KEY_UNEXTRACTABLE
        );
        assert_eq!(
            rv(m.wrap_key(s, &cbc, w, public, OutSpace::Query)),
            CKR_KEY_NOT_WRAPPABLE
        );
    }

    #[test]
    fn logout_stops_private_key_operations() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let (_, private) = keypair(&mut m, s, true, vec![]);
        m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
        m.set_fault(3).unwrap();
        assert_eq!(
            rv(m.sign(s, &[0; 32], OutSpace::Capacity(64))),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(
            rv(m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private)),
            CKR_USER_NOT_LOGGED_IN
        );
        m.login(s, CKU_USER, USER).unwrap();
        m.sign_init(s, &mech(CKM_GM_SM2_SIGN), private).unwrap();
        assert_eq!(
            run(m.sign(s, &[0; 32], OutSpace::Capacity(64)).unwrap()).len(),
            64
        );
        // Fault 1 closes every session; fault 2 removes the device until cleared.
        m.set_fault(1).unwrap();
        assert_eq!(rv(m.session_info(s)), CKR_SESSION_HANDLE_INVALID);
        let s2 = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        m.set_fault(2).unwrap();
        assert_eq!(rv(m.check_device()), CKR_DEVICE_REMOVED);
        assert_eq!(rv(m.session_info(s2)), CKR_SESSION_HANDLE_INVALID);
        m.set_fault(0).unwrap();
        assert_eq!(rv(m.check_device()), CKR_OK);
        assert_eq!(rv(m.set_fault(4)), CKR_ARGUMENTS_BAD);
    }

    #[test]
    fn session_objects_die_with_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let other = m.open_session(0, CKF_SERIAL_SESSION).unwrap();
        let k = m
            .generate_key(s, &mech(CKM_GM_SM4_KEY_GEN), &t(vec![]))
            .unwrap();
        // Visible from the other session of the application...
        assert_eq!(rv(m.get_attributes(other, k, &[CKA_CLASS])), CKR_OK);
        // ... until its session closes.
        m.close_session(s).unwrap();
        assert_eq!(
            rv(m.get_attributes(other, k, &[CKA_CLASS])),
            CKR_OBJECT_HANDLE_INVALID
        );
        // Token objects need a read-write session (the user is still logged in: one session is
        // left).
        assert_eq!(m.session_info(other).unwrap().state, CKS_RO_USER_FUNCTIONS);
        let r = m.generate_key(
            other,
            &mech(CKM_GM_SM4_KEY_GEN),
            &t(vec![Attr::bool(CKA_TOKEN, true)]),
        );
        assert_eq!(rv(r), CKR_SESSION_READ_ONLY);
    }

    #[test]
    fn two_modules_share_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = module(dir.path());
        let sa = ready(&mut a);
        let mut b = module(dir.path());
        let sb = b
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        b.login(sb, CKU_USER, USER).unwrap();
        // Interleaved writes from both land; each sees the other's objects.
        let threads: Vec<_> = [(a, sa), (b, sb)]
            .into_iter()
            .map(|(mut m, s)| {
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        keypair(&mut m, s, true, vec![]);
                    }
                    (m, s)
                })
            })
            .collect();
        let mut back: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        for (m, s) in &mut back {
            m.find_init(*s, &t(vec![Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY)]))
                .unwrap();
            assert_eq!(m.find(*s, 100).unwrap().len(), 10);
            m.find_final(*s).unwrap();
        }
    }

    #[test]
    fn set_attribute_value_keeps_another_process_sensitive_change() {
        // Process A reads a token key (not sensitive, extractable) for C_SetAttributeValue;
        // before A writes it back, process B makes it sensitive and unextractable. A's write
        // must not undo B's change (PKCS#11 §4.9: once sensitive, always sensitive).
        let dir = tempfile::tempdir().unwrap();
        let mut a = module(dir.path());
        let sa = ready(&mut a);
        let k = a
            .generate_key(
                sa,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![
                    Attr::bool(CKA_TOKEN, true),
                    Attr::bool(CKA_SENSITIVE, false),
                    Attr::bool(CKA_EXTRACTABLE, true),
                    Attr::new(CKA_LABEL, b"k".to_vec()),
                ]),
            )
            .unwrap();
        let mut b = module(dir.path());
        let sb = b
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        b.login(sb, CKU_USER, USER).unwrap();
        b.find_init(sb, &t(vec![Attr::new(CKA_LABEL, b"k".to_vec())]))
            .unwrap();
        let kb = b.find(sb, 10).unwrap()[0];
        b.find_final(sb).unwrap();
        let b = std::sync::Arc::new(std::sync::Mutex::new(Some((b, sb, kb))));
        let hook_b = b.clone();
        a.before_token_write = Some(Box::new(move || {
            if let Some((mut b, sb, kb)) = hook_b.lock().unwrap().take() {
                b.set_attributes(
                    sb,
                    kb,
                    &t(vec![
                        Attr::bool(CKA_SENSITIVE, true),
                        Attr::bool(CKA_EXTRACTABLE, false),
                    ]),
                )
                .unwrap();
            }
        }));
        // A changes only the label; B's change must survive it.
        a.set_attributes(sa, k, &t(vec![Attr::new(CKA_LABEL, b"k2".to_vec())]))
            .unwrap();
        a.before_token_write = None;
        let r = a
            .get_attributes(
                sa,
                k,
                &[CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_VALUE, CKA_LABEL],
            )
            .unwrap();
        assert_eq!(r[0], AttrRead::Value(Zeroizing::new(vec![CK_TRUE])));
        assert_eq!(r[1], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
        assert_eq!(r[2], AttrRead::Sensitive);
        assert_eq!(r[3], AttrRead::Value(Zeroizing::new(b"k2".to_vec())));
    }

    #[test]
    fn set_attribute_value_checks_usage_separation_on_the_stored_object() {
        // Process A asks for CKA_WRAP on a key that neither encrypts nor decrypts (harmless on
        // A's copy); before A writes, process B gives the key CKA_DECRYPT (harmless on its own).
        // Applied to the stored key, A's change would make a key that wraps and decrypts: it
        // must be refused there, not only checked on A's stale copy.
        let dir = tempfile::tempdir().unwrap();
        let mut a = module(dir.path());
        let sa = ready(&mut a);
        let k = a
            .generate_key(
                sa,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![
                    Attr::bool(CKA_TOKEN, true),
                    Attr::bool(CKA_ENCRYPT, false),
                    Attr::bool(CKA_DECRYPT, false),
                    Attr::new(CKA_LABEL, b"k".to_vec()),
                ]),
            )
            .unwrap();
        let mut b = module(dir.path());
        let sb = b
            .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .unwrap();
        b.login(sb, CKU_USER, USER).unwrap();
        b.find_init(sb, &t(vec![Attr::new(CKA_LABEL, b"k".to_vec())]))
            .unwrap();
        let kb = b.find(sb, 10).unwrap()[0];
        b.find_final(sb).unwrap();
        let b = std::sync::Arc::new(std::sync::Mutex::new(Some((b, sb, kb))));
        let hook_b = b.clone();
        a.before_token_write = Some(Box::new(move || {
            if let Some((mut b, sb, kb)) = hook_b.lock().unwrap().take() {
                b.set_attributes(sb, kb, &t(vec![Attr::bool(CKA_DECRYPT, true)]))
                    .unwrap();
            }
        }));
        let r = a.set_attributes(sa, k, &t(vec![Attr::bool(CKA_WRAP, true)]));
        a.before_token_write = None;
        assert_eq!(rv(r), CKR_TEMPLATE_INCONSISTENT);
        let r = a
            .get_attributes(sa, k, &[CKA_WRAP, CKA_DECRYPT, CKA_ENCRYPT])
            .unwrap();
        assert_eq!(r[0], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
        assert_eq!(r[1], AttrRead::Value(Zeroizing::new(vec![CK_TRUE])));
        assert_eq!(r[2], AttrRead::Value(Zeroizing::new(vec![CK_FALSE])));
    }

    #[test]
    fn a_stored_wrapping_key_whose_value_may_be_known_no_longer_wraps() {
        // Token files written before the rule may hold a wrapping key made by value (gmchain's
        // `import_sm4` with the wrapping template made them) or once extractable: anything it
        // wraps, whoever knows its value reads. It keeps unwrapping (blobs made under it stay
        // usable) but wraps nothing more; it keeps CKA_WRAP (one-way), so it never turns into a
        // data key that could open what it wrapped.
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[3; 16])).unwrap();
        let target = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![Attr::bool(CKA_EXTRACTABLE, true)]),
            )
            .unwrap();
        for (what, forge) in [
            (
                "made by value",
                (|o: &mut Object| o.local = false) as fn(&mut Object),
            ),
            ("once extractable", |o: &mut Object| {
                o.never_extractable = false
            }),
            ("once non-sensitive", |o: &mut Object| {
                o.always_sensitive = false
            }),
        ] {
            let kek = m
                .generate_key(
                    s,
                    &mech(CKM_GM_SM4_KEY_GEN),
                    &t(vec![
                        Attr::bool(CKA_TOKEN, true),
                        Attr::bool(CKA_WRAP, true),
                        Attr::bool(CKA_UNWRAP, true),
                    ]),
                )
                .unwrap();
            let wrapped = run(m
                .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
                .unwrap()
                .0);
            let id = m.handles[&kek].1;
            m.tokens[0]
                .update(|st| {
                    forge(st.objects.iter_mut().find(|o| o.id == id).unwrap());
                    Ok(())
                })
                .unwrap();
            let r = m.wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64));
            let e = r.map(|_| ()).unwrap_err();
            assert_eq!(e.rv(), CKR_KEY_FUNCTION_NOT_PERMITTED, "{what}");
            assert!(e.is_logged(), "{what}");
            let sm4 = t(vec![
                Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
                Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
            ]);
            m.unwrap_key(s, &cbc, kek, &wrapped, &sm4).unwrap();
            m.set_attributes(s, kek, &t(vec![Attr::new(CKA_LABEL, b"old".to_vec())]))
                .unwrap();
            assert_eq!(
                rv(m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_WRAP, false)]))),
                CKR_ATTRIBUTE_READ_ONLY,
                "{what}"
            );
        }
    }

    #[test]
    fn a_stored_key_that_wraps_and_decrypts_no_longer_decrypts() {
        // Token files written before the rule may hold keys that wrap and decrypt (gmchain's
        // own wrapping-key template made them). Such a key keeps wrapping and unwrapping, but
        // no longer decrypts or encrypts data, so it cannot decrypt what it wrapped; clearing
        // the conflicting attribute is allowed, and changes that keep the conflict as it was
        // (a label) are too.
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let s = ready(&mut m);
        let kek = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![
                    Attr::bool(CKA_TOKEN, true),
                    Attr::bool(CKA_WRAP, true),
                    Attr::bool(CKA_UNWRAP, true),
                    Attr::new(CKA_LABEL, b"legacy".to_vec()),
                ]),
            )
            .unwrap();
        let id = m.handles[&kek].1;
        m.tokens[0]
            .update(|st| {
                let o = st.objects.iter_mut().find(|o| o.id == id).unwrap();
                o.usage.encrypt = true;
                o.usage.decrypt = true;
                Ok(())
            })
            .unwrap();
        let target = m
            .generate_key(
                s,
                &mech(CKM_GM_SM4_KEY_GEN),
                &t(vec![Attr::bool(CKA_EXTRACTABLE, true)]),
            )
            .unwrap();
        let cbc = Mechanism::parse(CKM_GM_SM4_CBC_PAD, RawParam::Bytes(&[3; 16])).unwrap();
        let wrapped = run(m
            .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
            .unwrap()
            .0);
        assert_eq!(wrapped.len(), 32);
        assert_eq!(
            rv(m.decrypt_init(s, &cbc, kek)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        assert_eq!(
            rv(m.encrypt_init(s, &cbc, kek)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        m.set_attributes(s, kek, &t(vec![Attr::new(CKA_LABEL, b"old".to_vec())]))
            .unwrap();
        // Clearing one conflict while keeping the other is allowed, re-adding one is not.
        m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_DECRYPT, false)]))
            .unwrap();
        assert_eq!(
            rv(m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_DECRYPT, true)]))),
            CKR_TEMPLATE_INCONSISTENT
        );
        m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_ENCRYPT, false)]))
            .unwrap();
        // Now a plain key-encryption key: it unwraps what it wrapped.
        let sm4 = t(vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_GM_SM4),
        ]);
        m.unwrap_key(s, &cbc, kek, &wrapped, &sm4).unwrap();

        // A stored key that wraps and encrypts (allowed by the first version of the rule) no
        // longer encrypts: SM4-CTR under it would give the keystream of its GCM wraps.
        m.set_attributes(s, kek, &t(vec![Attr::bool(CKA_UNWRAP, false)]))
            .unwrap();
        m.tokens[0]
            .update(|st| {
                let o = st.objects.iter_mut().find(|o| o.id == id).unwrap();
                o.usage.encrypt = true;
                Ok(())
            })
            .unwrap();
        let ctr = Mechanism::parse(CKM_GM_SM4_CTR, RawParam::Bytes(&[0; 16])).unwrap();
        assert_eq!(
            rv(m.encrypt_init(s, &ctr, kek)),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        run(m
            .wrap_key(s, &cbc, kek, target, OutSpace::Capacity(64))
            .unwrap()
            .0);
    }
}
