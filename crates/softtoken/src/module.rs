//! The whole module as safe Rust: slots and tokens, sessions, object handles, and one method
//! per PKCS#11 function. The FFI layer converts C arguments into these calls and results back;
//! nothing here touches a raw pointer.
//!
//! This file holds the state ([`Module`], its sessions and session objects) and the helpers the
//! functions share; the functions are in one submodule per area: `slots`, `sessions`,
//! `objects`, `keys` (generation, wrapping, random numbers), `sign`, `cipher`, `digest` and
//! `faults`.
#![forbid(unsafe_code)]

use crate::config::Config;
use crate::error::{Error, Result, ck};
use crate::object::{Material, Object, ObjectId};
use crate::ops::{CipherOp, DigestOp, Job, Need, SignOp, VerifyOp};
use crate::storage::SlotStore;
use crate::token::Token;
use crypto::RandomSource;
use cryptoki_sys::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use zeroize::Zeroizing;

mod cipher;
mod digest;
mod faults;
mod keys;
mod objects;
mod sessions;
mod sign;
mod slots;

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
}

#[cfg(test)]
mod tests;
