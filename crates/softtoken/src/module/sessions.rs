//! [`Module`]: sessions and login (open, close, session state, `C_Login`, `C_Logout`, `C_InitPIN`,
//! `C_SetPIN`).

use super::{Module, Session, SessionInfo};
use crate::error::{Result, ck};
use crate::object::ObjectId;
use crate::token::UserKind;
use cryptoki_sys::*;

impl Module {
    pub(super) fn session(&self, sh: CK_SESSION_HANDLE) -> Result<&Session> {
        self.sessions
            .get(&sh)
            .ok_or(ck(CKR_SESSION_HANDLE_INVALID, "no such session"))
    }

    pub(super) fn session_mut(&mut self, sh: CK_SESSION_HANDLE) -> Result<&mut Session> {
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

    pub(super) fn drop_session_object(&mut self, id: ObjectId) {
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

    pub(super) fn close_slot_sessions(&mut self, slot: usize) {
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

    pub(super) fn logout_slot(&mut self, slot: usize) {
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
}
