//! Loaded PKCS#11 modules. A module is loaded and initialised once per process and shared by
//! every [`crate::Hsm`] that uses it: `C_Initialize`/`C_Finalize` are process-wide in PKCS#11, so
//! two independent owners of one module would finalise each other.

use crate::HsmError;
use crate::ffi::RawModule;
use crate::profile::{LibraryPath, Profile};
use crate::rv::CallError;
use crypto::Secret;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::RawAuthPin;
use cryptoki_sys::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use subtle::ConstantTimeEq;

/// One loaded module.
pub(crate) struct Module {
    pub path: PathBuf,
    pub ck: Pkcs11,
    pub raw: RawModule,
    /// Per token (serial, label): the PIN that last logged in successfully. PKCS#11 login state
    /// is per application, so a second `Hsm::open` on a token this process is already logged in
    /// to gets `CKR_USER_ALREADY_LOGGED_IN` whatever PIN it passes; this record lets us refuse a
    /// wrong PIN there too.
    logins: Mutex<Vec<((String, String), Secret)>>,
    /// Serialises C_Initialize (recovery from a re-initialised module).
    init: Mutex<()>,
    /// Object creation and destruction take this exclusively, so that "is the label free?" and
    /// "create" do not interleave in this process. With a profile's `exclusive_object_writes`,
    /// every other pooled operation takes it shared (SoftHSM 2.6 breaks when objects are read
    /// while one is written). Taken after a pooled session, released before recovery.
    pub(crate) objects: std::sync::RwLock<()>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Module({})", self.path.display())
    }
}

fn registry() -> &'static Mutex<Vec<Arc<Module>>> {
    static MODULES: OnceLock<Mutex<Vec<Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(Vec::new()))
}

/// A token as found in a slot.
#[derive(Clone, Debug)]
pub(crate) struct FoundToken {
    pub slot: Slot,
    pub info: TokenInfo,
}

impl Module {
    /// Loads (once per process) and initialises the module a profile names.
    pub(crate) fn for_profile(profile: &Profile) -> Result<Arc<Module>, HsmError> {
        let lib = profile.resolve_library()?;
        let path = match &lib {
            LibraryPath::File(p) => {
                if !p.is_file() {
                    return Err(HsmError::ModuleNotFound {
                        profile: profile.file().to_path_buf(),
                        name: profile.library().to_string(),
                        searched: vec![p.clone()],
                    });
                }
                p.canonicalize().unwrap_or_else(|_| p.clone())
            }
            LibraryPath::Search { name, .. } => PathBuf::from(name),
        };
        let module = {
            let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
            match reg.iter().find(|m| m.path == path) {
                Some(m) => m.clone(),
                None => {
                    let m = Arc::new(Self::load(&path).map_err(|reason| {
                        match &lib {
                            LibraryPath::Search { name, tried } => HsmError::ModuleNotFound {
                                profile: profile.file().to_path_buf(),
                                name: name.clone(),
                                searched: tried
                                    .iter()
                                    .cloned()
                                    .chain(std::iter::once(PathBuf::from(format!(
                                        "the dynamic loader's search path ({reason})"
                                    ))))
                                    .collect(),
                            },
                            LibraryPath::File(_) => HsmError::ModuleLoad {
                                module: path.clone(),
                                reason,
                            },
                        }
                    })?);
                    reg.push(m.clone());
                    m
                }
            }
        };
        module.initialize()?;
        Ok(module)
    }

    fn load(path: &Path) -> Result<Module, String> {
        let ck = Pkcs11::new(path).map_err(|e| e.to_string())?;
        let raw = RawModule::load(path)?;
        Ok(Module {
            path: path.to_path_buf(),
            ck,
            raw,
            logins: Mutex::new(Vec::new()),
            init: Mutex::new(()),
            objects: std::sync::RwLock::new(()),
        })
    }

    /// Returns a name for messages.
    pub(crate) fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// `C_Initialize` with OS locking; an already initialised module is fine.
    pub(crate) fn initialize(&self) -> Result<(), HsmError> {
        let _guard = self.init.lock().unwrap_or_else(|p| p.into_inner());
        match self
            .ck
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let call = CallError::from_cryptoki("C_Initialize", &e);
                if call.is(CKR_CRYPTOKI_ALREADY_INITIALIZED) {
                    Ok(())
                } else if call.is(CKR_CANT_LOCK) {
                    Err(HsmError::ModuleLoad {
                        module: self.path.clone(),
                        reason: "the module cannot use OS locking (CKR_CANT_LOCK), and gmchain calls it from several threads".into(),
                    })
                } else {
                    Err(HsmError::ModuleLoad {
                        module: self.path.clone(),
                        reason: format!("C_Initialize failed: {}", call.rv),
                    })
                }
            }
        }
    }

    /// Lists the tokens present.
    pub(crate) fn tokens(&self) -> Result<Vec<FoundToken>, CallError> {
        let slots = self
            .ck
            .get_slots_with_token()
            .map_err(|e| CallError::from_cryptoki("C_GetSlotList", &e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            match self.ck.get_token_info(slot) {
                Ok(info) => out.push(FoundToken { slot, info }),
                // A slot emptied between the two calls.
                Err(e) => {
                    let c = CallError::from_cryptoki("C_GetTokenInfo", &e);
                    if !(c.is(CKR_TOKEN_NOT_PRESENT) || c.is(CKR_SLOT_ID_INVALID)) {
                        return Err(c);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Finds the one token with `label` (and `serial`, when given).
    pub(crate) fn find_token(
        &self,
        label: &str,
        serial: Option<&str>,
    ) -> Result<FoundToken, HsmError> {
        let tokens = self.tokens().map_err(|c| self.unreachable_or(c))?;
        let matching: Vec<&FoundToken> = tokens
            .iter()
            .filter(|t| {
                t.info.label() == label && serial.is_none_or(|s| t.info.serial_number() == s)
            })
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(HsmError::TokenNotFound {
                label: label.to_string(),
                available: tokens
                    .iter()
                    .filter(|t| t.info.token_initialized())
                    .map(|t| t.info.label().to_string())
                    .collect(),
            }),
            many => Err(HsmError::TokenAmbiguous {
                label: label.to_string(),
                count: many.len(),
            }),
        }
    }

    /// Maps a failed call: a missing device is `Unreachable`, anything else `Pkcs11`.
    pub(crate) fn unreachable_or(&self, call: CallError) -> HsmError {
        if is_gone(call) {
            HsmError::Unreachable {
                module: self.display(),
                reason: format!("{} returned {}", call.function, call.rv),
            }
        } else {
            HsmError::pkcs11(call)
        }
    }

    /// Forgets the PIN recorded for a token (its user PIN was just changed).
    pub(crate) fn forget_login(&self, serial: &str, label: &str) {
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        logins.retain(|((s, l), _)| !(s == serial && l == label));
    }

    /// Logs `session` in as the user. `CKR_USER_ALREADY_LOGGED_IN` is success only if this
    /// process last logged in to the token with the same PIN (or never with another one).
    pub(crate) fn login(
        &self,
        session: &Session,
        token: (&str, &str),
        pin: &Secret,
    ) -> Result<(), HsmError> {
        let raw = RawAuthPin::new(Box::new(pin.expose().to_vec()));
        let key = (token.0.to_string(), token.1.to_string());
        match session.login_with_raw(UserType::User, &raw) {
            Ok(()) => {
                let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
                logins.retain(|(k, _)| *k != key);
                logins.push((key, pin.clone()));
                Ok(())
            }
            Err(e) => {
                let call = CallError::from_cryptoki("C_Login", &e);
                if call.is(CKR_USER_ALREADY_LOGGED_IN) {
                    let logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
                    match logins.iter().find(|(k, _)| *k == key) {
                        Some((_, known)) if !bool::from(known.expose().ct_eq(pin.expose())) => {
                            Err(HsmError::PinIncorrect)
                        }
                        _ => Ok(()),
                    }
                } else if call.is(CKR_PIN_INCORRECT)
                    || call.is(CKR_PIN_INVALID)
                    || call.is(CKR_PIN_LEN_RANGE)
                {
                    Err(HsmError::PinIncorrect)
                } else if call.is(CKR_PIN_LOCKED) {
                    Err(HsmError::PinLocked)
                } else if call.is(CKR_USER_PIN_NOT_INITIALIZED) {
                    Err(HsmError::InvalidInput {
                        reason: format!(
                            "the user PIN of token {:?} is not initialised; run `gmchain keys init-pin` first",
                            token.1
                        ),
                    })
                } else {
                    Err(self.unreachable_or(call))
                }
            }
        }
    }
}

/// Whether a return value means the device is gone.
pub(crate) fn is_gone(call: CallError) -> bool {
    call.is(CKR_DEVICE_REMOVED)
        || call.is(CKR_TOKEN_NOT_PRESENT)
        || call.is(CKR_TOKEN_NOT_RECOGNIZED)
}
