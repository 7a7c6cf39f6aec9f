//! [`Module`]: encryption and decryption.

use super::{
    Module, OutSpace, Role, Step, active, finish, need_of, not_permitted, type_inconsistent,
};
use crate::error::{Result, ck};
use crate::mechanism::Mechanism;
use crate::object::{KeyType, Material, ObjectClass};
use crate::ops::{CipherKey, CipherMech, CipherOp, Job};
use cryptoki_sys::*;
use zeroize::Zeroizing;

impl Module {
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
        // A key stored before wrap or unwrap and decrypt or encrypt became exclusive may hold
        // both; it keeps its key-encryption role and loses the data role, so it can never
        // decrypt what it wrapped (or is to unwrap) or give the keystream of a wrap.
        let conflicts = obj.usage_conflicts();
        let allowed = if encrypt {
            obj.usage.encrypt && !conflicts.unwrap_encrypt && !conflicts.wrap_encrypt
        } else {
            obj.usage.decrypt && !conflicts.wrap_decrypt && !conflicts.unwrap_decrypt
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
}
