//! [`Module`]: slots and tokens (the slot list, token and mechanism information, `C_InitToken`).

use super::{Module, TokenInfo};
use crate::error::{Result, ck};
use crate::mechanism::{MechanismInfo, mechanism_info};
use cryptoki_sys::*;

impl Module {
    pub(super) fn slot_index(&self, slot: CK_SLOT_ID) -> Result<usize> {
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
}
