//! [`Module`]: signing and verification.

use super::{
    Module, OutSpace, Role, Step, active, finish, need_of, not_permitted, type_inconsistent,
};
use crate::error::{Result, ck};
use crate::mechanism::Mechanism;
use crate::object::{KeyType, Material, ObjectClass, Plain};
use crate::ops::{Job, Need, SIGNATURE_LEN, SignInput, SignOp, VerifyOp};
use cryptoki_sys::*;

impl Module {
    /// Checks that the login an operation started under still holds.
    pub(super) fn check_need(&self, slot: usize, need: Need) -> Result<()> {
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
}
