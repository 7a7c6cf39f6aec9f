//! Fault injection for tests: break the module's state behind the pool's back, to show that the
//! pool recovers. Nothing here weakens key protection, but every function disturbs every user
//! of the module in this process. Never call these outside tests.
//!
//! Each fault is injected between operations: the hook waits until no pooled operation of this
//! [`Hsm`] is in flight. PKCS#11 leaves closing a session (or finalising the module) under a
//! running call undefined, and SoftHSM crashes on it; a module's own fault switch (the gmchain
//! soft token has one) is the way to break a session while a call is running.

use crate::HsmError;
use crate::hsm::Hsm;
use crate::rv::CallError;

/// `C_CloseAllSessions` on the token's slot: every session of this process on the token dies,
/// including the pool's anchor, so the application is logged out too.
pub fn close_all_sessions(hsm: &Hsm) -> Result<(), HsmError> {
    let pool = &hsm.inner().pool;
    pool.quiesced(|slot, _| pool.module().raw.close_all_sessions(slot.id()))
        .map_err(HsmError::pkcs11)
}

/// `C_Logout` on the pool's anchor session: the application is logged out, sessions stay open.
pub fn logout(hsm: &Hsm) -> Result<(), HsmError> {
    hsm.inner()
        .pool
        .quiesced(|_, anchor| anchor.map(|s| s.logout()).unwrap_or(Ok(())))
        .map_err(|e| HsmError::pkcs11(CallError::from_cryptoki("C_Logout", &e)))
}

/// `C_Finalize`: the module forgets every session and login of this process, as if another
/// component had finalised it.
pub fn finalize_module(hsm: &Hsm) -> Result<(), HsmError> {
    let pool = &hsm.inner().pool;
    pool.quiesced(|_, _| pool.module().ck.clone().finalize())
        .map_err(|e| HsmError::pkcs11(CallError::from_cryptoki("C_Finalize", &e)))
}
