//! Raw PKCS#11 calls through the module's own function list, for what the safe `cryptoki` API
//! cannot say:
//! - mechanisms with a byte-string parameter (the SM2 user ID): `VendorDefinedMechanism::new`
//!   takes `&T` with `T: Sized` and passes `size_of::<T>()`, so a slice of run-time length
//!   cannot be its parameter;
//! - mechanism, key type and attribute codes below `CKM_VENDOR_DEFINED` (some vendors define
//!   SM codes such as `0x00010004` outside the vendor range; cryptoki refuses them);
//! - `C_GetMechanismInfo`/`C_GetMechanismList` without cryptoki's filter that drops every code
//!   it does not know (all SM mechanisms);
//! - `C_CloseAllSessions`, which cryptoki does not expose (fault-injection hook).
//!
//! Every function here is a thin wrapper: it builds the C structures from borrowed Rust data
//! that outlives the call, calls one function pointer, and checks the return value. No pointer
//! returned by the module is kept.
#![allow(
    unsafe_code,
    reason = "the FFI boundary to the PKCS#11 module; each unsafe block states its invariant"
)]

use crate::rv::CallError;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::path::Path;
use std::ptr::null_mut;
use zeroize::{Zeroize, Zeroizing};

/// A session handle as the module knows it.
pub(crate) type SessionHandle = CK_SESSION_HANDLE;
/// An object handle as the module knows it.
pub(crate) type ObjectHandle = CK_OBJECT_HANDLE;

type Res<T> = Result<T, CallError>;

fn ul(v: u64) -> CK_ULONG {
    // Profile validation keeps codes below 2^32; lengths come from Rust slices. Saturate rather
    // than truncate if a 32-bit CK_ULONG ever meets a larger value: the module then refuses it.
    CK_ULONG::try_from(v).unwrap_or(CK_ULONG::MAX)
}

fn len_ul(len: usize) -> CK_ULONG {
    CK_ULONG::try_from(len).unwrap_or(CK_ULONG::MAX)
}

fn check(function: &'static str, rv: CK_RV) -> Res<()> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(CallError::new(function, rv))
    }
}

/// One attribute of a template. Values are zeroized on drop (templates may carry key bytes).
#[derive(Clone)]
pub(crate) struct Attr {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attr(0x{:X}, {} bytes)", self.ty, self.value.len())
    }
}

impl Attr {
    pub(crate) fn bool(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Self {
        Self {
            ty,
            value: Zeroizing::new(vec![if v { CK_TRUE } else { CK_FALSE }]),
        }
    }

    pub(crate) fn ulong(ty: CK_ATTRIBUTE_TYPE, v: u64) -> Self {
        Self {
            ty,
            value: Zeroizing::new(ul(v).to_ne_bytes().to_vec()),
        }
    }

    pub(crate) fn bytes(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Self {
        Self {
            ty,
            value: Zeroizing::new(v.to_vec()),
        }
    }
}

/// A C template pointing into `attrs`; valid while `attrs` is borrowed and unchanged.
fn template(attrs: &[Attr]) -> Vec<CK_ATTRIBUTE> {
    attrs
        .iter()
        .map(|a| CK_ATTRIBUTE {
            type_: a.ty,
            pValue: if a.value.is_empty() {
                null_mut()
            } else {
                a.value.as_ptr() as *mut c_void
            },
            ulValueLen: len_ul(a.value.len()),
        })
        .collect()
}

/// A mechanism parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    /// No parameter.
    None,
    /// A byte string (an IV, a user ID, a counter block).
    Bytes(&'a [u8]),
    /// `CK_GCM_PARAMS`.
    Gcm {
        iv: &'a [u8],
        aad: &'a [u8],
        tag_bits: u64,
    },
    /// `CK_AES_CTR_PARAMS` with a 128-bit counter.
    AesCtr { counter_block: [u8; 16] },
}

/// A mechanism: a code and its parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mech<'a> {
    pub code: u64,
    pub param: Param<'a>,
}

impl<'a> Mech<'a> {
    pub(crate) fn new(code: u64, param: Param<'a>) -> Self {
        Self { code, param }
    }
}

/// Builds the C mechanism for `mech` and hands a pointer to it to `f`. The parameter structs
/// live on this stack frame and point into `mech`'s borrowed slices, so everything stays valid
/// for the duration of `f`.
fn with_mechanism<R>(mech: &Mech<'_>, f: impl FnOnce(*mut CK_MECHANISM) -> R) -> R {
    let mut gcm: CK_GCM_PARAMS;
    let mut ctr: CK_AES_CTR_PARAMS;
    let (param, param_len): (*mut c_void, usize) = match mech.param {
        Param::None => (null_mut(), 0),
        Param::Bytes([]) => (null_mut(), 0),
        Param::Bytes(b) => (b.as_ptr() as *mut c_void, b.len()),
        Param::Gcm { iv, aad, tag_bits } => {
            gcm = CK_GCM_PARAMS {
                pIv: iv.as_ptr() as *mut CK_BYTE,
                ulIvLen: len_ul(iv.len()),
                ulIvBits: len_ul(iv.len() * 8),
                pAAD: if aad.is_empty() {
                    null_mut()
                } else {
                    aad.as_ptr() as *mut CK_BYTE
                },
                ulAADLen: len_ul(aad.len()),
                ulTagBits: ul(tag_bits),
            };
            (
                &mut gcm as *mut CK_GCM_PARAMS as *mut c_void,
                size_of::<CK_GCM_PARAMS>(),
            )
        }
        Param::AesCtr { counter_block } => {
            ctr = CK_AES_CTR_PARAMS {
                ulCounterBits: 128,
                cb: counter_block,
            };
            (
                &mut ctr as *mut CK_AES_CTR_PARAMS as *mut c_void,
                size_of::<CK_AES_CTR_PARAMS>(),
            )
        }
    };
    let mut m = CK_MECHANISM {
        mechanism: ul(mech.code),
        pParameter: param,
        ulParameterLen: len_ul(param_len),
    };
    f(&mut m)
}

/// Runs a single-part output call (`C_Sign`, `C_Encrypt`, ...) with a buffer of `guess` bytes,
/// growing it once if the module says `CKR_BUFFER_TOO_SMALL` (which, per PKCS#11 §5.2, leaves
/// the operation active so the call can be repeated).
fn output_call(
    function: &'static str,
    guess: usize,
    mut call: impl FnMut(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV,
) -> Res<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; guess.max(1)]);
    let mut len = len_ul(buf.len());
    let mut rv = call(buf.as_mut_ptr(), &mut len);
    if rv == CKR_BUFFER_TOO_SMALL {
        let needed = usize::try_from(len).unwrap_or(usize::MAX);
        if needed > (1 << 30) {
            return Err(CallError::new(function, CKR_GENERAL_ERROR));
        }
        // Nothing was written on CKR_BUFFER_TOO_SMALL, but wipe before letting the buffer go.
        buf.zeroize();
        *buf = vec![0u8; needed.max(1)];
        len = len_ul(buf.len());
        rv = call(buf.as_mut_ptr(), &mut len);
    }
    check(function, rv)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > buf.len() {
        // The module claims to have written past the buffer it was given.
        return Err(CallError::new(function, CKR_GENERAL_ERROR));
    }
    buf.truncate(len);
    Ok(buf)
}

/// The function list of a loaded module.
pub(crate) struct RawModule {
    // Keeps the library mapped while the copied function pointers are in use.
    _lib: cryptoki_sys::Pkcs11,
    fl: CK_FUNCTION_LIST,
}

impl std::fmt::Debug for RawModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RawModule(Cryptoki {}.{})",
            self.fl.version.major, self.fl.version.minor
        )
    }
}

// SAFETY: the struct holds the library handle (Send + Sync in libloading) and a copy of a table
// of C function pointers; PKCS#11 modules initialised with CKF_OS_LOCKING_OK are callable from
// any thread, which is how `Module` initialises them.
unsafe impl Send for RawModule {}
// SAFETY: as above; the table is never mutated after `load`.
unsafe impl Sync for RawModule {}

macro_rules! func {
    ($self:ident, $name:ident) => {
        $self.fl.$name.ok_or(CallError::new(
            stringify!($name),
            CKR_FUNCTION_NOT_SUPPORTED,
        ))?
    };
}

impl RawModule {
    /// Loads the module at `path` (already loaded by cryptoki: the loader returns the same
    /// mapping) and copies its function list.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: loading a shared library runs its initialisers; the same library is loaded by
        // cryptoki for the same purpose, and a PKCS#11 module is meant to be loaded this way.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(|e| e.to_string())?;
        let get = lib.C_GetFunctionList.as_ref().map_err(|_| {
            "the library exports no C_GetFunctionList: not a PKCS#11 module".to_string()
        })?;
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: `list` is a valid out-pointer; the function only writes it.
        let rv = unsafe { get(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(format!(
                "C_GetFunctionList failed: {}",
                crate::rv::Ckr(u64::from(rv))
            ));
        }
        // SAFETY: the module returned a non-null pointer to its (static) function list; we copy
        // the table of function pointers out of it.
        let fl = unsafe { *list };
        Ok(Self { _lib: lib, fl })
    }

    pub(crate) fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Res<()> {
        let f = func!(self, C_CloseAllSessions);
        // SAFETY: plain value argument.
        check("C_CloseAllSessions", unsafe { f(slot) })
    }

    pub(crate) fn mechanism_list(&self, slot: CK_SLOT_ID) -> Res<Vec<u64>> {
        let f = func!(self, C_GetMechanismList);
        let mut count: CK_ULONG = 0;
        // SAFETY: a NULL list asks for the count only; `count` is a valid out-pointer.
        check("C_GetMechanismList", unsafe {
            f(slot, null_mut(), &mut count)
        })?;
        let mut list: Vec<CK_MECHANISM_TYPE> =
            vec![0; usize::try_from(count).unwrap_or(0).min(1 << 16)];
        let mut count = len_ul(list.len());
        // SAFETY: `list` has room for `count` entries.
        check("C_GetMechanismList", unsafe {
            f(slot, list.as_mut_ptr(), &mut count)
        })?;
        list.truncate(usize::try_from(count).unwrap_or(0));
        Ok(list.into_iter().map(u64::from).collect())
    }

    pub(crate) fn mechanism_info(&self, slot: CK_SLOT_ID, code: u64) -> Res<CK_MECHANISM_INFO> {
        let f = func!(self, C_GetMechanismInfo);
        let mut info = CK_MECHANISM_INFO::default();
        // SAFETY: `info` is a valid out-pointer.
        check("C_GetMechanismInfo", unsafe {
            f(slot, ul(code), &mut info)
        })?;
        Ok(info)
    }

    pub(crate) fn find_objects(&self, s: SessionHandle, attrs: &[Attr]) -> Res<Vec<ObjectHandle>> {
        let init = func!(self, C_FindObjectsInit);
        let find = func!(self, C_FindObjects);
        let fin = func!(self, C_FindObjectsFinal);
        let mut t = template(attrs);
        // SAFETY: `t` points into `attrs`, both alive for the call.
        let rv = unsafe { init(s, t.as_mut_ptr(), len_ul(t.len())) };
        if rv != CKR_OK {
            // Some modules leave the search active when C_FindObjectsInit fails half-way (which
            // would poison the session with CKR_OPERATION_ACTIVE); ending it is harmless
            // otherwise.
            // SAFETY: plain value argument.
            let _ = unsafe { fin(s) };
            return Err(CallError::new("C_FindObjectsInit", rv));
        }
        let mut out = Vec::new();
        let result = loop {
            let mut batch: [CK_OBJECT_HANDLE; 64] = [0; 64];
            let mut n: CK_ULONG = 0;
            // SAFETY: `batch` has room for 64 handles; `n` is a valid out-pointer.
            let rv = unsafe { find(s, batch.as_mut_ptr(), 64, &mut n) };
            if rv != CKR_OK {
                break Err(CallError::new("C_FindObjects", rv));
            }
            let n = usize::try_from(n).unwrap_or(0).min(64);
            if n == 0 {
                break Ok(());
            }
            out.extend_from_slice(&batch[..n]);
            if out.len() > 100_000 {
                break Err(CallError::new("C_FindObjects", CKR_GENERAL_ERROR));
            }
        };
        // SAFETY: ends the search started above.
        let rv = unsafe { fin(s) };
        result?;
        check("C_FindObjectsFinal", rv)?;
        Ok(out)
    }

    /// Reads one attribute. `Ok(None)` when the object has no such attribute or it is
    /// sensitive (`CKR_ATTRIBUTE_TYPE_INVALID`, `CKR_ATTRIBUTE_SENSITIVE`, or
    /// `CK_UNAVAILABLE_INFORMATION` as length).
    pub(crate) fn attribute(
        &self,
        s: SessionHandle,
        obj: ObjectHandle,
        ty: CK_ATTRIBUTE_TYPE,
    ) -> Res<Option<Vec<u8>>> {
        let f = func!(self, C_GetAttributeValue);
        let mut a = CK_ATTRIBUTE {
            type_: ty,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        // SAFETY: a NULL value asks for the length only.
        let rv = unsafe { f(s, obj, &mut a, 1) };
        if rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE {
            return Ok(None);
        }
        check("C_GetAttributeValue", rv)?;
        if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
            return Ok(None);
        }
        let len = usize::try_from(a.ulValueLen).unwrap_or(usize::MAX);
        if len > (1 << 20) {
            return Err(CallError::new("C_GetAttributeValue", CKR_GENERAL_ERROR));
        }
        let mut buf = vec![0u8; len];
        a.pValue = if len == 0 {
            null_mut()
        } else {
            buf.as_mut_ptr() as *mut c_void
        };
        a.ulValueLen = len_ul(len);
        // SAFETY: `buf` has room for `len` bytes and `a` says so.
        let rv = unsafe { f(s, obj, &mut a, 1) };
        if rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE {
            return Ok(None);
        }
        check("C_GetAttributeValue", rv)?;
        if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
            return Ok(None);
        }
        buf.truncate(usize::try_from(a.ulValueLen).unwrap_or(0).min(len));
        Ok(Some(buf))
    }

    pub(crate) fn generate_key_pair(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        public: &[Attr],
        private: &[Attr],
    ) -> Res<(ObjectHandle, ObjectHandle)> {
        let f = func!(self, C_GenerateKeyPair);
        let mut pt = template(public);
        let mut st = template(private);
        let mut hp: CK_OBJECT_HANDLE = 0;
        let mut hs: CK_OBJECT_HANDLE = 0;
        with_mechanism(mech, |m| {
            // SAFETY: the mechanism and both templates point into data alive for the call;
            // `hp`/`hs` are valid out-pointers.
            check("C_GenerateKeyPair", unsafe {
                f(
                    s,
                    m,
                    pt.as_mut_ptr(),
                    len_ul(pt.len()),
                    st.as_mut_ptr(),
                    len_ul(st.len()),
                    &mut hp,
                    &mut hs,
                )
            })
        })?;
        Ok((hp, hs))
    }

    pub(crate) fn generate_key(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        attrs: &[Attr],
    ) -> Res<ObjectHandle> {
        let f = func!(self, C_GenerateKey);
        let mut t = template(attrs);
        let mut h: CK_OBJECT_HANDLE = 0;
        with_mechanism(mech, |m| {
            // SAFETY: as for C_GenerateKeyPair.
            check("C_GenerateKey", unsafe {
                f(s, m, t.as_mut_ptr(), len_ul(t.len()), &mut h)
            })
        })?;
        Ok(h)
    }

    pub(crate) fn create_object(&self, s: SessionHandle, attrs: &[Attr]) -> Res<ObjectHandle> {
        let f = func!(self, C_CreateObject);
        let mut t = template(attrs);
        let mut h: CK_OBJECT_HANDLE = 0;
        // SAFETY: the template points into `attrs`; `h` is a valid out-pointer.
        check("C_CreateObject", unsafe {
            f(s, t.as_mut_ptr(), len_ul(t.len()), &mut h)
        })?;
        Ok(h)
    }

    pub(crate) fn destroy_object(&self, s: SessionHandle, obj: ObjectHandle) -> Res<()> {
        let f = func!(self, C_DestroyObject);
        // SAFETY: plain value arguments.
        check("C_DestroyObject", unsafe { f(s, obj) })
    }

    pub(crate) fn sign(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        key: ObjectHandle,
        data: &[u8],
    ) -> Res<Vec<u8>> {
        let init = func!(self, C_SignInit);
        let sign = func!(self, C_Sign);
        // The parameter block stays alive until the operation ends, for modules that read it
        // late.
        let out = with_mechanism(mech, |m| {
            // SAFETY: the mechanism is valid for the call.
            check("C_SignInit", unsafe { init(s, m, key) })?;
            output_call("C_Sign", 256, |buf, len| {
                // SAFETY: `data` is readable for its length; `buf` has room for `*len` bytes.
                unsafe {
                    sign(
                        s,
                        data.as_ptr() as *mut CK_BYTE,
                        len_ul(data.len()),
                        buf,
                        len,
                    )
                }
            })
        })?;
        Ok(out.to_vec())
    }

    pub(crate) fn verify(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        key: ObjectHandle,
        data: &[u8],
        signature: &[u8],
    ) -> Res<()> {
        let init = func!(self, C_VerifyInit);
        let verify = func!(self, C_Verify);
        with_mechanism(mech, |m| {
            // SAFETY: the mechanism is valid for the call.
            check("C_VerifyInit", unsafe { init(s, m, key) })?;
            // SAFETY: both buffers are readable for their lengths.
            check("C_Verify", unsafe {
                verify(
                    s,
                    data.as_ptr() as *mut CK_BYTE,
                    len_ul(data.len()),
                    signature.as_ptr() as *mut CK_BYTE,
                    len_ul(signature.len()),
                )
            })
        })
    }

    pub(crate) fn encrypt(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        key: ObjectHandle,
        data: &[u8],
    ) -> Res<Vec<u8>> {
        let init = func!(self, C_EncryptInit);
        let enc = func!(self, C_Encrypt);
        let out = with_mechanism(mech, |m| {
            // SAFETY: the mechanism (and the IV/AAD it points to) is valid for the call.
            check("C_EncryptInit", unsafe { init(s, m, key) })?;
            output_call("C_Encrypt", data.len() + 256, |buf, len| {
                // SAFETY: `data` is readable; `buf` has room for `*len` bytes.
                unsafe {
                    enc(
                        s,
                        data.as_ptr() as *mut CK_BYTE,
                        len_ul(data.len()),
                        buf,
                        len,
                    )
                }
            })
        })?;
        Ok(out.to_vec())
    }

    pub(crate) fn decrypt(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        key: ObjectHandle,
        data: &[u8],
    ) -> Res<Zeroizing<Vec<u8>>> {
        let init = func!(self, C_DecryptInit);
        let dec = func!(self, C_Decrypt);
        with_mechanism(mech, |m| {
            // SAFETY: the mechanism is valid for the call.
            check("C_DecryptInit", unsafe { init(s, m, key) })?;
            output_call("C_Decrypt", data.len() + 16, |buf, len| {
                // SAFETY: `data` is readable; `buf` has room for `*len` bytes.
                unsafe {
                    dec(
                        s,
                        data.as_ptr() as *mut CK_BYTE,
                        len_ul(data.len()),
                        buf,
                        len,
                    )
                }
            })
        })
    }

    pub(crate) fn digest(&self, s: SessionHandle, mech: &Mech<'_>, data: &[u8]) -> Res<Vec<u8>> {
        let init = func!(self, C_DigestInit);
        let digest = func!(self, C_Digest);
        let out = with_mechanism(mech, |m| {
            // SAFETY: the mechanism is valid for the call.
            check("C_DigestInit", unsafe { init(s, m) })?;
            output_call("C_Digest", 64, |buf, len| {
                // SAFETY: `data` is readable; `buf` has room for `*len` bytes.
                unsafe {
                    digest(
                        s,
                        data.as_ptr() as *mut CK_BYTE,
                        len_ul(data.len()),
                        buf,
                        len,
                    )
                }
            })
        })?;
        Ok(out.to_vec())
    }

    pub(crate) fn wrap_key(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        wrapping: ObjectHandle,
        key: ObjectHandle,
    ) -> Res<Vec<u8>> {
        let f = func!(self, C_WrapKey);
        let out = with_mechanism(mech, |m| {
            output_call("C_WrapKey", 512, |buf, len| {
                // SAFETY: the mechanism is valid; `buf` has room for `*len` bytes.
                unsafe { f(s, m, wrapping, key, buf, len) }
            })
        })?;
        Ok(out.to_vec())
    }

    pub(crate) fn unwrap_key(
        &self,
        s: SessionHandle,
        mech: &Mech<'_>,
        unwrapping: ObjectHandle,
        wrapped: &[u8],
        attrs: &[Attr],
    ) -> Res<ObjectHandle> {
        let f = func!(self, C_UnwrapKey);
        let mut t = template(attrs);
        let mut h: CK_OBJECT_HANDLE = 0;
        with_mechanism(mech, |m| {
            // SAFETY: mechanism, wrapped bytes and template are valid for the call.
            check("C_UnwrapKey", unsafe {
                f(
                    s,
                    m,
                    unwrapping,
                    wrapped.as_ptr() as *mut CK_BYTE,
                    len_ul(wrapped.len()),
                    t.as_mut_ptr(),
                    len_ul(t.len()),
                    &mut h,
                )
            })
        })?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake single-part call: needs `out.len()` bytes, answers like a conforming module.
    fn fake(out: &'static [u8]) -> impl FnMut(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV {
        move |buf, len| {
            // SAFETY: `len` and `buf` come from `output_call`, which owns both.
            unsafe {
                if (*len as usize) < out.len() {
                    *len = out.len() as CK_ULONG;
                    return CKR_BUFFER_TOO_SMALL;
                }
                std::ptr::copy_nonoverlapping(out.as_ptr(), buf, out.len());
                *len = out.len() as CK_ULONG;
            }
            CKR_OK
        }
    }

    #[test]
    fn output_call_grows_once_and_truncates() {
        static BIG: [u8; 300] = [7; 300];
        assert_eq!(
            output_call("C_Sign", 10, fake(&BIG)).unwrap().as_slice(),
            &BIG[..]
        );
        assert_eq!(
            output_call("C_Sign", 512, fake(b"abc")).unwrap().as_slice(),
            b"abc"
        );
        // An error is passed through with the function's name.
        let e = output_call("C_Sign", 8, |_, _| CKR_KEY_FUNCTION_NOT_PERMITTED).unwrap_err();
        assert_eq!(
            (e.function, e.rv.0),
            ("C_Sign", u64::from(CKR_KEY_FUNCTION_NOT_PERMITTED))
        );
        // A module claiming to have written more than the buffer holds is refused.
        let lying = |_: *mut CK_BYTE, len: *mut CK_ULONG| {
            // SAFETY: as above.
            unsafe { *len = 1 << 20 };
            CKR_OK
        };
        assert!(output_call("C_Sign", 8, lying).is_err());
        // So is one that asks for more than 1 GiB.
        let greedy = |_: *mut CK_BYTE, len: *mut CK_ULONG| {
            // SAFETY: as above.
            unsafe { *len = CK_ULONG::MAX };
            CKR_BUFFER_TOO_SMALL
        };
        assert!(output_call("C_Sign", 8, greedy).is_err());
    }

    #[test]
    fn mechanism_parameters_are_marshalled() {
        let id = b"1234567812345678";
        with_mechanism(&Mech::new(0x8047_4D12, Param::Bytes(id)), |m| {
            // SAFETY: `m` points to the mechanism built for this call.
            let m = unsafe { &*m };
            assert_eq!(m.mechanism, 0x8047_4D12);
            assert_eq!(m.ulParameterLen, 16);
            assert_eq!(m.pParameter as *const u8, id.as_ptr());
        });
        for p in [Param::None, Param::Bytes(&[])] {
            with_mechanism(&Mech::new(1, p), |m| {
                // SAFETY: as above.
                let m = unsafe { &*m };
                assert!(m.pParameter.is_null() && m.ulParameterLen == 0);
            });
        }
        let (iv, aad) = ([1u8; 12], [2u8; 5]);
        with_mechanism(
            &Mech::new(
                0x8047_4D35,
                Param::Gcm {
                    iv: &iv,
                    aad: &aad,
                    tag_bits: 128,
                },
            ),
            |m| {
                // SAFETY: as above; the parameter is the CK_GCM_PARAMS built for this call.
                let (m, g) = unsafe { (&*m, &*((*m).pParameter as *const CK_GCM_PARAMS)) };
                assert_eq!(m.ulParameterLen as usize, size_of::<CK_GCM_PARAMS>());
                assert_eq!(
                    (g.ulIvLen, g.ulIvBits, g.ulAADLen, g.ulTagBits),
                    (12, 96, 5, 128)
                );
                assert_eq!(g.pIv as *const u8, iv.as_ptr());
                assert_eq!(g.pAAD as *const u8, aad.as_ptr());
            },
        );
        with_mechanism(
            &Mech::new(
                0x1086,
                Param::AesCtr {
                    counter_block: [9; 16],
                },
            ),
            |m| {
                // SAFETY: as above.
                let c = unsafe { &*((*m).pParameter as *const CK_AES_CTR_PARAMS) };
                assert_eq!((c.ulCounterBits, c.cb), (128, [9; 16]));
            },
        );
    }

    #[test]
    fn attribute_values() {
        assert_eq!(Attr::bool(CKA_TOKEN, true).value.as_slice(), &[CK_TRUE]);
        assert_eq!(
            Attr::ulong(CKA_CLASS, 3).value.as_slice(),
            &(3 as CK_ULONG).to_ne_bytes()[..]
        );
        let attrs = [Attr::bytes(CKA_ID, &[]), Attr::bytes(CKA_LABEL, b"k")];
        let t = template(&attrs);
        assert!(t[0].pValue.is_null() && t[0].ulValueLen == 0);
        assert_eq!((t[1].type_, t[1].ulValueLen), (CKA_LABEL, 1));
        assert_eq!(
            format!("{:?}", Attr::bytes(CKA_VALUE, b"secret")),
            "Attr(0x11, 6 bytes)"
        );
    }
}
