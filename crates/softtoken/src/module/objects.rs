//! [`Module`]: objects (handles, creation, destruction, attributes, search).

use super::{Module, Role, SessionObject, active};
use crate::attr::Template;
use crate::error::{Error, Result, ck};
use crate::keywrap::KeyBytes;
use crate::object::{AttrRead, KeyType, Material, Object, ObjectClass, ObjectId, Origin, Plain};
use crate::vendor::ec_point_from_attribute;
use crypto_sm::sm2::PrivateKey;
use cryptoki_sys::*;
use std::sync::Arc;

impl Module {
    fn handle_for(&mut self, slot: usize, id: ObjectId) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.handle_of.get(&(slot, id)) {
            return *h;
        }
        let h = self.next_object;
        self.next_object += 1;
        self.handles.insert(h, (slot, id));
        self.handle_of.insert((slot, id), h);
        h
    }

    /// Looks an object up for a session: the handle must belong to the session's slot, the
    /// object must still exist, and a private object needs the user logged in.
    pub(super) fn lookup(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        role: Role,
    ) -> Result<(usize, Object)> {
        let slot = self.session(sh)?.slot;
        let (hslot, id) = *self.handles.get(&oh).ok_or(role.invalid())?;
        if hslot != slot {
            return Err(role.invalid());
        }
        let obj = match self.session_objects.get(&id) {
            Some(so) => so.object.clone(),
            None => {
                self.tokens[slot].refresh()?;
                self.tokens[slot]
                    .object(id)
                    .cloned()
                    .ok_or(role.invalid())?
            }
        };
        if obj.private && !self.tokens[slot].user_logged_in() {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "a private object needs the user logged in",
            ));
        }
        Ok((slot, obj))
    }

    /// Checks that a session may store these new objects: token objects need a read-write
    /// session, private objects a logged-in user.
    pub(super) fn check_store(&self, sh: CK_SESSION_HANDLE, objects: &[&Object]) -> Result<()> {
        let s = self.session(sh)?;
        if objects.iter().any(|o| o.token) && !s.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "token objects need a read-write session",
            ));
        }
        if objects.iter().any(|o| o.private) && !self.tokens[s.slot].user_logged_in() {
            return Err(ck(
                CKR_USER_NOT_LOGGED_IN,
                "private objects need the user logged in",
            ));
        }
        Ok(())
    }

    /// Stores new objects for a session: token objects are sealed and written in one update,
    /// session objects stay in memory. Returns their handles in order.
    pub(super) fn store_new(
        &mut self,
        sh: CK_SESSION_HANDLE,
        objects: Vec<Object>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.check_store(sh, &objects.iter().collect::<Vec<_>>())?;
        let slot = self.session(sh)?.slot;
        let t = &self.tokens[slot];
        let mut to_token = Vec::new();
        for o in &objects {
            if !o.token {
                continue;
            }
            let mut stored = o.clone();
            if let Material::Plain(p) = &o.material {
                stored.material = Material::Sealed(t.seal(o, p, self.rng.as_ref())?);
            }
            to_token.push(stored);
        }
        if !to_token.is_empty() {
            self.tokens[slot].insert_objects(to_token)?;
        }
        let mut handles = Vec::with_capacity(objects.len());
        for o in objects {
            let id = o.id;
            if !o.token {
                self.session_objects.insert(
                    id,
                    SessionObject {
                        slot,
                        owner: sh,
                        object: o,
                    },
                );
            }
            handles.push(self.handle_for(slot, id));
        }
        Ok(handles)
    }

    pub(super) fn new_id(&self) -> Result<ObjectId> {
        let mut id = [0u8; 16];
        self.rng.fill(&mut id).map_err(|_| Error::Entropy)?;
        Ok(ObjectId(id))
    }

    /// `C_CreateObject`: SM4 secret keys, SM2 public keys and SM2 private keys by value. A key
    /// created by value was known outside the token, so it is never `CKA_LOCAL`,
    /// `CKA_ALWAYS_SENSITIVE` or `CKA_NEVER_EXTRACTABLE`.
    pub fn create_object(
        &mut self,
        sh: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.session(sh)?;
        let class = template
            .ulong(CKA_CLASS)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;
        let key_type = template
            .ulong(CKA_KEY_TYPE)?
            .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))?;
        let class = ObjectClass::from_ck(class)?;
        let key_type = KeyType::from_ck(key_type)?;
        let value = |kind| {
            template
                .get(kind)
                .map(|a| a.value.clone())
                .ok_or(ck(CKR_TEMPLATE_INCOMPLETE, "the key value is required"))
        };
        let bad_value = || ck(CKR_ATTRIBUTE_VALUE_INVALID, "the key value is invalid");
        let (material, consumed) = match (class, key_type) {
            (ObjectClass::PublicKey, KeyType::Sm2) => {
                let v = value(CKA_EC_POINT)?;
                let point = ec_point_from_attribute(&v).ok_or_else(bad_value)?;
                let pk = crypto_sm::sm2::parse_public_key(point).map_err(|_| bad_value())?;
                (Material::Public(pk), CKA_EC_POINT)
            }
            (ObjectClass::PrivateKey, KeyType::Sm2) => {
                let d = PrivateKey::from_bytes(&value(CKA_VALUE)?).map_err(|_| bad_value())?;
                (Material::Plain(Arc::new(Plain::Sm2(d))), CKA_VALUE)
            }
            (ObjectClass::SecretKey, KeyType::Sm4) => {
                let k = KeyBytes::from_slice(&value(CKA_VALUE)?).ok_or_else(bad_value)?;
                (Material::Plain(Arc::new(Plain::Sm4(k))), CKA_VALUE)
            }
            _ => {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "SM2 keys are public or private keys, SM4 keys are secret keys",
                ));
            }
        };
        let mut obj = Object::with_defaults(self.new_id()?, class, key_type, material);
        obj.apply_creation_template(template, Origin::Imported, &[consumed])?;
        Ok(self.store_new(sh, vec![obj])?[0])
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&mut self, sh: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<()> {
        let (slot, obj) = self.lookup(sh, oh, Role::Object)?;
        if !obj.destroyable {
            return Err(ck(CKR_ACTION_PROHIBITED, "the object is not destroyable"));
        }
        if obj.token {
            if !self.session(sh)?.rw {
                return Err(ck(
                    CKR_SESSION_READ_ONLY,
                    "token objects need a read-write session",
                ));
            }
            self.tokens[slot].remove_object(obj.id)?;
            if let Some(h) = self.handle_of.remove(&(slot, obj.id)) {
                self.handles.remove(&h);
            }
        } else {
            self.drop_session_object(obj.id);
        }
        Ok(())
    }

    /// `C_GetAttributeValue`: one result per requested type.
    pub fn get_attributes(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrRead>> {
        let (slot, obj) = self.lookup(sh, oh, Role::Object)?;
        let mut out = Vec::with_capacity(kinds.len());
        for &k in kinds {
            let r = match obj.read(k, None) {
                AttrRead::NeedsLogin => match self.tokens[slot].plain(&obj) {
                    Ok(p) => obj.read(k, Some(&p)),
                    Err(_) => AttrRead::Sensitive,
                },
                r => r,
            };
            out.push(r);
        }
        Ok(out)
    }

    /// `C_SetAttributeValue`.
    pub fn set_attributes(
        &mut self,
        sh: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<()> {
        let (slot, mut obj) = self.lookup(sh, oh, Role::Object)?;
        if obj.token && !self.session(sh)?.rw {
            return Err(ck(
                CKR_SESSION_READ_ONLY,
                "token objects need a read-write session",
            ));
        }
        // Checked on this copy first (for session objects, this is the change); a token object
        // is changed on its fresh stored state, under the slot lock.
        obj.apply_modification(template)?;
        if obj.token {
            #[cfg(test)]
            if let Some(hook) = self.before_token_write.as_mut() {
                hook();
            }
            self.tokens[slot].replace_object(obj.id, template)
        } else {
            match self.session_objects.get_mut(&obj.id) {
                Some(so) => {
                    so.object = obj;
                    Ok(())
                }
                None => Err(Role::Object.invalid()),
            }
        }
    }

    /// `C_FindObjectsInit`: the result set is fixed now (a snapshot).
    pub fn find_init(&mut self, sh: CK_SESSION_HANDLE, template: &Template) -> Result<()> {
        let s = self.session(sh)?;
        active(&s.find)?;
        let slot = s.slot;
        self.tokens[slot].refresh()?;
        let user = self.tokens[slot].user_logged_in();
        let visible = |o: &Object| (!o.private || user) && o.matches(template);
        let mut ids: Vec<ObjectId> = self.tokens[slot]
            .state()
            .objects
            .iter()
            .filter(|o| visible(o))
            .map(|o| o.id)
            .collect();
        let mut session_ids: Vec<(CK_OBJECT_HANDLE, ObjectId)> = self
            .session_objects
            .iter()
            .filter(|(_, so)| so.slot == slot && visible(&so.object))
            .map(|(id, _)| (self.handle_of.get(&(slot, *id)).copied().unwrap_or(0), *id))
            .collect();
        session_ids.sort();
        ids.extend(session_ids.into_iter().map(|(_, id)| id));
        let mut handles: Vec<CK_OBJECT_HANDLE> = ids
            .into_iter()
            .map(|id| self.handle_for(slot, id))
            .collect();
        handles.reverse();
        self.session_mut(sh)?.find = Some(handles);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` handles.
    pub fn find(&mut self, sh: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let s = self.session_mut(sh)?;
        let found = s
            .find
            .as_mut()
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "C_FindObjectsInit first"))?;
        let n = max.min(found.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some(h) = found.pop() {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, sh: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session_mut(sh)?;
        s.find
            .take()
            .map(|_| ())
            .ok_or(ck(CKR_OPERATION_NOT_INITIALIZED, "no search is active"))
    }
}
