//! The session pool: up to `size` sessions to one token, shared by any number of threads, plus
//! one anchor session that is never lent out, because closing an application's last session
//! logs it out (PKCS#11 §5.6).
//!
//! Recovery. An operation that fails because its session is gone (`CKR_SESSION_HANDLE_INVALID`,
//! `CKR_SESSION_CLOSED`, `CKR_SLOT_ID_INVALID`), because the application was logged out
//! (`CKR_USER_NOT_LOGGED_IN`) or because the module was finalised (`CKR_CRYPTOKI_NOT_INITIALIZED`)
//! triggers one recovery and one retry. Operations hold a read lock on the pool state for their
//! whole duration; recovery takes the write lock, so it runs only when no operation is in
//! flight, discards every session of the failed generation, re-initialises if needed, finds the
//! token again by label and serial, opens a new anchor and logs in again. A session is never
//! closed while another thread may use it, and a session the module reported dead is never
//! closed at all (its handle number could already belong to a new session). A token that is
//! gone (`CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`) or that recovery cannot bring back
//! gives [`HsmError::Unreachable`]; nothing is ever computed in software instead.

use crate::HsmError;
use crate::ffi::{RawModule, SessionHandle};
use crate::module::{Module, is_gone};
use crate::rv::CallError;
use crypto::Secret;
use cryptoki::session::{Session, SessionState};
use cryptoki::slot::Slot;
use cryptoki_sys::*;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// What an operation inside the pool can fail with.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A PKCS#11 call failed; the pool classifies it.
    Call(CallError),
    /// Anything else (a format error, a refused request); passed through.
    Hsm(HsmError),
}

impl From<CallError> for OpError {
    fn from(c: CallError) -> Self {
        OpError::Call(c)
    }
}

impl From<HsmError> for OpError {
    fn from(e: HsmError) -> Self {
        OpError::Hsm(e)
    }
}

impl From<crypto::CryptoError> for OpError {
    fn from(e: crypto::CryptoError) -> Self {
        OpError::Hsm(HsmError::Crypto(e))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    SessionLost,
    LoggedOut,
    NotInitialized,
    Gone,
    /// The session may still hold an active operation: close it rather than reuse it.
    Poisoned,
    Other,
}

/// How many times one call recovers the pool before it reports the token unreachable. More than
/// one: two faults can land within one call (a session lost, then a logout while the call
/// retried), and each is a fresh event that one recovery fixes; a token that stays broken still
/// fails the call after a bounded number of attempts.
pub(crate) const MAX_RECOVERIES: u32 = 3;

/// The recoveries one call has made: the first failure (named in the error) and how many.
#[derive(Default)]
struct Recoveries {
    first: Option<CallError>,
    count: u32,
}

impl Recoveries {
    fn record(&mut self, call: CallError) {
        self.first.get_or_insert(call);
        self.count += 1;
    }

    fn exhausted(&self) -> bool {
        self.count >= MAX_RECOVERIES
    }
}

fn classify(call: CallError) -> Failure {
    if call.is(CKR_SESSION_HANDLE_INVALID)
        || call.is(CKR_SESSION_CLOSED)
        || call.is(CKR_SLOT_ID_INVALID)
    {
        Failure::SessionLost
    } else if call.is(CKR_USER_NOT_LOGGED_IN) {
        Failure::LoggedOut
    } else if call.is(CKR_CRYPTOKI_NOT_INITIALIZED) {
        Failure::NotInitialized
    } else if is_gone(call) {
        Failure::Gone
    } else if call.is(CKR_OPERATION_ACTIVE) || call.is(CKR_BUFFER_TOO_SMALL) {
        Failure::Poisoned
    } else {
        Failure::Other
    }
}

/// What an operation sees: its session and the module's raw calls.
pub(crate) struct Ctx<'a> {
    pub session: &'a Session,
    pub raw: &'a RawModule,
    has_pin: bool,
    /// The pool generation; object handles cached in an older generation must be looked up
    /// again.
    pub generation: u64,
}

impl Ctx<'_> {
    pub(crate) fn handle(&self) -> SessionHandle {
        self.session.handle()
    }

    /// A search for private objects comes back empty, without an error, when the application
    /// has been logged out. Call this when such a search found nothing: if a PIN was given and
    /// the session is no longer a user session, it reports `CKR_USER_NOT_LOGGED_IN` so that the
    /// pool logs in again and retries instead of answering "no such key".
    pub(crate) fn check_login(&self, function: &'static str) -> Result<(), CallError> {
        if !self.has_pin {
            return Ok(());
        }
        let info = self
            .session
            .get_session_info()
            .map_err(|e| CallError::from_cryptoki("C_GetSessionInfo", &e))?;
        match info.session_state() {
            SessionState::RoUser | SessionState::RwUser | SessionState::RwSecurityOfficer => Ok(()),
            SessionState::RoPublic | SessionState::RwPublic => {
                Err(CallError::new(function, CKR_USER_NOT_LOGGED_IN))
            }
        }
    }
}

struct State {
    generation: u64,
    slot: Slot,
    anchor: Mutex<Option<Session>>,
}

/// A counting semaphore bounding concurrent operations (and so open sessions) to the pool size.
struct Permits {
    free: Mutex<usize>,
    cond: Condvar,
}

struct Permit<'a>(&'a Permits);

impl Permits {
    fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cond.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.cond.notify_one();
    }
}

pub(crate) struct Pool {
    module: Arc<Module>,
    label: String,
    serial: String,
    pin: Option<Secret>,
    state: RwLock<State>,
    idle: Mutex<Vec<Session>>,
    permits: Permits,
    exclusive_writes: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({}, token {:?})", self.module.display(), self.label)
    }
}

impl Pool {
    /// Opens the anchor session on `slot` and logs in.
    pub(crate) fn open(
        module: Arc<Module>,
        slot: Slot,
        label: String,
        serial: String,
        pin: Option<Secret>,
        size: usize,
        exclusive_writes: bool,
    ) -> Result<Pool, HsmError> {
        let pool = Pool {
            module,
            label,
            serial,
            pin,
            state: RwLock::new(State {
                generation: 0,
                slot,
                anchor: Mutex::new(None),
            }),
            idle: Mutex::new(Vec::new()),
            permits: Permits {
                free: Mutex::new(size),
                cond: Condvar::new(),
            },
            exclusive_writes,
        };
        let anchor = pool
            .open_session(slot)
            .map_err(|c| pool.module.unreachable_or(c))?;
        if let Err(e) = pool.login(&anchor) {
            let _ = anchor.close();
            return Err(e);
        }
        {
            let st = pool.state.read().unwrap_or_else(|p| p.into_inner());
            *st.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(anchor);
        }
        Ok(pool)
    }

    pub(crate) fn module(&self) -> &Arc<Module> {
        &self.module
    }

    pub(crate) fn has_pin(&self) -> bool {
        self.pin.is_some()
    }

    /// Returns the current slot.
    pub(crate) fn slot(&self) -> Slot {
        self.state.read().unwrap_or_else(|p| p.into_inner()).slot
    }

    fn open_session(&self, slot: Slot) -> Result<Session, CallError> {
        self.module
            .ck
            .open_rw_session_no_drop(slot)
            .map_err(|e| CallError::from_cryptoki("C_OpenSession", &e))
    }

    fn login(&self, session: &Session) -> Result<(), HsmError> {
        match &self.pin {
            Some(pin) => self.module.login(session, (&self.serial, &self.label), pin),
            None => Ok(()),
        }
    }

    fn unreachable(&self, reason: String) -> HsmError {
        HsmError::Unreachable {
            module: format!("{}, token {:?}", self.module.display(), self.label),
            reason,
        }
    }

    /// Runs `op` on a pooled session, recovering once from a lost session, a lost login or a
    /// re-initialised module. `name` says what is being done, for messages.
    pub(crate) fn run<T>(
        &self,
        name: &'static str,
        op: impl FnMut(&Ctx<'_>) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        self.run_with(name, false, op)
    }

    /// [`Pool::run`] for an operation that creates or destroys objects: it excludes other
    /// object writers of the module in this process (and every other operation, when the
    /// profile asks for `exclusive_object_writes`).
    pub(crate) fn run_write<T>(
        &self,
        name: &'static str,
        op: impl FnMut(&Ctx<'_>) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        self.run_with(name, true, op)
    }

    fn run_with<T>(
        &self,
        name: &'static str,
        writes: bool,
        mut op: impl FnMut(&Ctx<'_>) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        let _permit = self.permits.acquire();
        let mut recovered = Recoveries::default();
        loop {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            let generation = st.generation;
            let popped = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let session = match popped {
                Some(s) => s,
                None => match self.open_session(st.slot) {
                    Ok(s) => s,
                    Err(call) => {
                        drop(st);
                        self.after_failure(name, call, generation, &mut recovered)?;
                        continue;
                    }
                },
            };
            let ctx = Ctx {
                session: &session,
                raw: &self.module.raw,
                has_pin: self.pin.is_some(),
                generation,
            };
            let result = {
                let objects = &self.module.objects;
                let _exclusive = writes.then(|| objects.write().unwrap_or_else(|p| p.into_inner()));
                let _shared = (!writes && self.exclusive_writes)
                    .then(|| objects.read().unwrap_or_else(|p| p.into_inner()));
                op(&ctx)
            };
            match result {
                Ok(v) => {
                    self.checkin(session);
                    return Ok(v);
                }
                Err(OpError::Hsm(e)) => {
                    self.checkin(session);
                    return Err(e);
                }
                Err(OpError::Call(call)) => match classify(call) {
                    // Some modules report a lost login as something else (SoftHSM: reading a
                    // private object's attributes after C_Logout gives CKR_GENERAL_ERROR). Ask
                    // the session before calling the failure final.
                    Failure::Other if ctx.check_login(call.function).is_err() => {
                        self.checkin(session);
                        drop(st);
                        let lost = CallError::new(call.function, CKR_USER_NOT_LOGGED_IN);
                        self.after_failure(name, lost, generation, &mut recovered)?;
                    }
                    Failure::Other => {
                        self.checkin(session);
                        return Err(HsmError::pkcs11(call));
                    }
                    Failure::Poisoned => {
                        // The session may still hold an operation: close it (it is alive and
                        // ours) and retry once on a fresh one. No pool-wide recovery needed.
                        let _ = session.close();
                        drop(st);
                        if recovered.exhausted() {
                            return Err(HsmError::pkcs11(call));
                        }
                        recovered.record(call);
                    }
                    Failure::LoggedOut => {
                        self.checkin(session);
                        drop(st);
                        self.after_failure(name, call, generation, &mut recovered)?;
                    }
                    Failure::SessionLost | Failure::NotInitialized | Failure::Gone => {
                        // The module says this handle is dead: forget it, never close it.
                        drop(session);
                        drop(st);
                        self.after_failure(name, call, generation, &mut recovered)?;
                    }
                },
            }
        }
    }

    fn checkin(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
    }

    /// Decides what a recoverable failure leads to: a recovery (at most [`MAX_RECOVERIES`] per
    /// call), or an error.
    fn after_failure(
        &self,
        name: &'static str,
        call: CallError,
        generation: u64,
        recovered: &mut Recoveries,
    ) -> Result<(), HsmError> {
        let failure = classify(call);
        match failure {
            Failure::Gone => {
                return Err(self.unreachable(format!(
                    "{name}: {} returned {}: the device is gone",
                    call.function, call.rv
                )));
            }
            Failure::LoggedOut if self.pin.is_none() => {
                return Err(HsmError::PinRequired { operation: name });
            }
            Failure::Other | Failure::Poisoned => return Err(HsmError::pkcs11(call)),
            _ => {}
        }
        if let Some(first) = recovered.first.filter(|_| recovered.exhausted()) {
            return Err(self.unreachable(format!(
                "{name}: {} returned {} again after recovering {MAX_RECOVERIES} times (first from {})",
                call.function, call.rv, first.rv
            )));
        }
        recovered.record(call);
        self.recover(generation, failure).map_err(|e| match e {
            e @ (HsmError::Unreachable { .. } | HsmError::PinIncorrect | HsmError::PinLocked) => e,
            other => self.unreachable(format!("{name}: recovery from {} failed: {other}", call.rv)),
        })
    }

    fn recover(&self, seen: u64, failure: Failure) -> Result<(), HsmError> {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if st.generation != seen {
            // Another thread already recovered this generation.
            return Ok(());
        }
        st.generation += 1;
        if failure == Failure::LoggedOut {
            let anchor = st.anchor.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(a) = anchor.as_ref()
                && self.login(a).is_ok()
            {
                return Ok(());
            }
        }
        self.reset(&mut st, failure == Failure::NotInitialized)
    }

    /// Discards every session, re-initialises when asked, finds the token again, opens a new
    /// anchor and logs in. Runs under the write lock: no session is in use.
    fn reset(&self, st: &mut State, reinitialize: bool) -> Result<(), HsmError> {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        let anchor = st
            .anchor
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if reinitialize {
            // Every handle died with the old initialisation; closing one could close a session
            // someone opened since. Forget them all.
            drop(idle);
            drop(anchor);
            self.module.initialize()?;
        } else {
            for s in idle.into_iter().chain(anchor) {
                // Close only sessions the module still reports alive; a dead handle's number may
                // already name another session.
                if s.get_session_info().is_ok() {
                    let _ = s.close();
                }
            }
        }
        let token = self
            .module
            .find_token(&self.label, Some(&self.serial))
            .map_err(|e| match e {
                HsmError::TokenNotFound { .. } => {
                    self.unreachable("the token is no longer present".into())
                }
                other => other,
            })?;
        st.slot = token.slot;
        let anchor = self
            .open_session(token.slot)
            .map_err(|c| self.module.unreachable_or(c))?;
        if let Err(e) = self.login(&anchor) {
            let _ = anchor.close();
            return Err(e);
        }
        *st.anchor.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(anchor);
        Ok(())
    }

    /// Runs `f` while no pooled operation is in flight (the write lock), with the current
    /// slot and anchor session: fault injection between operations.
    pub(crate) fn quiesced<T>(&self, f: impl FnOnce(Slot, Option<&Session>) -> T) -> T {
        let st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let anchor = st.anchor.lock().unwrap_or_else(|p| p.into_inner());
        f(st.slot, anchor.as_ref())
    }

    /// Runs `f` on the anchor session (administrative calls that must not race recovery).
    pub(crate) fn with_anchor<T>(&self, f: impl FnOnce(&Session) -> T) -> Option<T> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        let anchor = st.anchor.lock().unwrap_or_else(|p| p.into_inner());
        anchor.as_ref().map(f)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let anchor = st
            .anchor
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for s in idle.into_iter().chain(anchor) {
            if s.get_session_info().is_ok() {
                let _ = s.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = |rv| classify(CallError::new("C_Sign", rv));
        assert_eq!(c(CKR_SESSION_HANDLE_INVALID), Failure::SessionLost);
        assert_eq!(c(CKR_SESSION_CLOSED), Failure::SessionLost);
        assert_eq!(c(CKR_USER_NOT_LOGGED_IN), Failure::LoggedOut);
        assert_eq!(c(CKR_CRYPTOKI_NOT_INITIALIZED), Failure::NotInitialized);
        assert_eq!(c(CKR_DEVICE_REMOVED), Failure::Gone);
        assert_eq!(c(CKR_TOKEN_NOT_PRESENT), Failure::Gone);
        assert_eq!(c(CKR_OPERATION_ACTIVE), Failure::Poisoned);
        assert_eq!(c(CKR_KEY_HANDLE_INVALID), Failure::Other);
        assert_eq!(c(CKR_MECHANISM_INVALID), Failure::Other);
    }
}
