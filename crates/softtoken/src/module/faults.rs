//! [`Module`]: fault injection (`gmchain_softtoken_set_fault`, tests of callers' recovery only).

use super::Module;
use crate::error::{Result, ck};
use cryptoki_sys::*;

impl Module {
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
