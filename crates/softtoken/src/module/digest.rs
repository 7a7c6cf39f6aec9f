//! [`Module`]: digests.

use super::{Module, OutSpace, Step, active, finish};
use crate::error::{Result, ck};
use crate::mechanism::Mechanism;
use crate::ops::{DigestOp, Job};
use cryptoki_sys::*;

impl Module {
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
}
