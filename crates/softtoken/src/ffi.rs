//! The C boundary, and the only module with `unsafe` code.
//!
//! Every exported function does three things: convert the C arguments with the helpers below
//! (each helper states what it assumes of the caller's pointers), call one safe method of
//! [`Module`] under the global lock, and convert the result back. Each body runs inside
//! `catch_unwind`, so a panic becomes `CKR_GENERAL_ERROR` instead of unwinding into C.
//!
//! What the helpers cannot check, PKCS#11 makes the caller's duty: a non-NULL pointer points
//! at as many valid bytes as its length says, for the duration of the call. NULL pointers and
//! absurd lengths are checked and answered with `CKR_ARGUMENTS_BAD`.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use crate::attr::{Attr, MAX_ATTRIBUTE_LEN, MAX_TEMPLATE_LEN, Template};
use crate::config::Config;
use crate::error::{Error, Result, ck};
use crate::mechanism::{GcmParamsRef, Mechanism, RawParam, takes_gcm_params};
use crate::module::{Module, OutSpace, Step};
use crate::object::AttrRead;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use zeroize::Zeroizing;

/// The module state. `None` before `C_Initialize` and after `C_Finalize`.
static MODULE: Mutex<Option<Module>> = Mutex::new(None);

/// Whether the missing-configuration message was printed (once per process is enough).
static CONFIG_WARNED: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, Option<Module>> {
    // A panic while the lock was held (caught by `guard`) poisons it; the state is still the
    // best there is, and refusing every later call would turn one bug into an outage.
    MODULE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn log(msg: &str) {
    // Printing is the only channel a PKCS#11 module has to explain a configuration or storage
    // failure that surfaces as a bare CKR_GENERAL_ERROR / CKR_DEVICE_ERROR, or which rule a
    // refused CKR_TEMPLATE_INCONSISTENT broke.
    eprintln!("gmchain-softtoken: {msg}");
}

/// Runs an exported function's body: panics become `CKR_GENERAL_ERROR`, errors their `CKR_*`.
fn guard(body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            if e.is_logged() {
                log(&e.to_string());
            }
            e.rv()
        }
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Runs `f` on the initialised module, unless fault 2 (device removed) is on.
fn with_module<R>(f: impl FnOnce(&mut Module) -> Result<R>) -> Result<R> {
    let mut g = state();
    let m = g
        .as_mut()
        .ok_or(ck(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize first"))?;
    m.check_device()?;
    f(m)
}

fn bad_args(reason: &'static str) -> Error {
    ck(CKR_ARGUMENTS_BAD, reason)
}

fn to_usize(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| bad_args("length does not fit in memory"))
}

fn to_ulong(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

// ---- helpers: the only places that dereference caller pointers --------------------------

/// Borrows `len` bytes at `p`. NULL is accepted only with length 0.
///
/// Safety: a non-NULL `p` must point at `len` readable bytes that stay valid and unchanged for
/// the returned lifetime (the duration of the PKCS#11 call).
unsafe fn bytes_in<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = to_usize(len)?;
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(bad_args("NULL buffer with a non-zero length"))
        };
    }
    if len > isize::MAX as usize {
        return Err(bad_args("length too large"));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` valid bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Copies a PIN into zeroizing memory.
///
/// Safety: as [`bytes_in`].
unsafe fn pin_in(p: *const CK_UTF8CHAR, len: CK_ULONG) -> Result<Zeroizing<Vec<u8>>> {
    if p.is_null() {
        // No protected authentication path: a PIN must be given.
        return Err(bad_args(
            "a PIN is required (no protected authentication path)",
        ));
    }
    // SAFETY: forwarded caller guarantee.
    let b = unsafe { bytes_in(p, len)? };
    Ok(Zeroizing::new(b.to_vec()))
}

/// Writes one value through an out-pointer.
///
/// Safety: a non-NULL `p` must be valid for writing one `T`.
unsafe fn write_out<T>(p: *mut T, v: T) -> Result<()> {
    if p.is_null() {
        return Err(bad_args("NULL output pointer"));
    }
    // SAFETY: non-NULL and valid for a write by the caller's guarantee; unaligned-tolerant.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// Reads the output space of the length-query convention: NULL buffer → query.
///
/// Safety: `len` must be NULL or valid for reading a `CK_ULONG`.
unsafe fn out_space(buf: *const u8, len: *const CK_ULONG) -> Result<OutSpace> {
    if len.is_null() {
        return Err(bad_args("NULL length pointer"));
    }
    if buf.is_null() {
        return Ok(OutSpace::Query);
    }
    // SAFETY: non-NULL, caller guarantees it is readable.
    let cap = unsafe { len.read_unaligned() };
    Ok(OutSpace::Capacity(to_usize(cap).unwrap_or(usize::MAX)))
}

/// Delivers output under the PKCS#11 length convention: a query answers the length with
/// `CKR_OK`; a short buffer gets the length and `CKR_BUFFER_TOO_SMALL`; otherwise the bytes are
/// copied and the length set. A job is run here, after the module lock was released.
///
/// Safety: `len` valid for reading and writing a `CK_ULONG`; a non-NULL `buf` valid for
/// writing `*len` bytes.
unsafe fn emit(step: Step<'_>, buf: *mut u8, len: *mut CK_ULONG) -> Result<()> {
    let bytes = match step {
        Step::Length(n) => return unsafe { write_out(len, to_ulong(n)) },
        Step::TooSmall(n) => {
            unsafe { write_out(len, to_ulong(n))? };
            return Err(ck(CKR_BUFFER_TOO_SMALL, "output buffer too small"));
        }
        Step::Run(job) => job.run()?,
        Step::Done(b) => b,
    };
    // SAFETY: caller guarantees `len` is readable/writable and `buf` holds `*len` bytes.
    unsafe {
        let cap = match out_space(buf, len)? {
            OutSpace::Capacity(c) => c,
            OutSpace::Query => return write_out(len, to_ulong(bytes.len())),
        };
        if cap < bytes.len() {
            // Only reachable if an upper bound was wrong; the operation is already over.
            write_out(len, to_ulong(bytes.len()))?;
            return Err(ck(CKR_BUFFER_TOO_SMALL, "output buffer too small"));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        write_out(len, to_ulong(bytes.len()))
    }
}

/// Borrows the caller's attribute array.
///
/// Safety: a non-NULL `p` must point at `n` valid `CK_ATTRIBUTE`s, exclusively ours for the call.
unsafe fn attrs_mut<'a>(p: *mut CK_ATTRIBUTE, n: CK_ULONG) -> Result<&'a mut [CK_ATTRIBUTE]> {
    let n = to_usize(n)?;
    if n > MAX_TEMPLATE_LEN {
        return Err(bad_args("template has too many attributes"));
    }
    if p.is_null() {
        return if n == 0 {
            Ok(&mut [])
        } else {
            Err(bad_args("NULL template with a non-zero count"))
        };
    }
    // SAFETY: non-NULL, `n` elements valid per the caller's guarantee.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// Copies a template out of the caller's memory.
///
/// Safety: as [`attrs_mut`], and every `pValue` valid for `ulValueLen` bytes.
unsafe fn template_in(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Template> {
    // SAFETY: forwarded; we only read through the slice.
    let attrs = unsafe { attrs_mut(p as *mut CK_ATTRIBUTE, n)? };
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs.iter() {
        let len = to_usize(a.ulValueLen)?;
        if len > MAX_ATTRIBUTE_LEN {
            return Err(ck(CKR_ATTRIBUTE_VALUE_INVALID, "attribute value too long"));
        }
        // SAFETY: forwarded caller guarantee for pValue/ulValueLen.
        let v = unsafe { bytes_in(a.pValue as *const u8, a.ulValueLen)? };
        out.push(Attr::new(a.type_, v.to_vec()));
    }
    Template::new(out)
}

/// Reads and validates a mechanism and its parameter.
///
/// Safety: a non-NULL `p` must point at a valid `CK_MECHANISM` whose parameter is valid for
/// `ulParameterLen` bytes; for GCM, the `CK_GCM_PARAMS` pointers valid for their lengths.
unsafe fn mechanism_in(p: *const CK_MECHANISM) -> Result<Mechanism> {
    if p.is_null() {
        return Err(bad_args("NULL mechanism"));
    }
    // SAFETY: non-NULL and valid per the caller.
    let m = unsafe { p.read_unaligned() };
    if takes_gcm_params(m.mechanism) {
        if m.pParameter.is_null() || to_usize(m.ulParameterLen)? != size_of::<CK_GCM_PARAMS>() {
            return Err(ck(
                CKR_MECHANISM_PARAM_INVALID,
                "SM4-GCM takes a CK_GCM_PARAMS",
            ));
        }
        // SAFETY: the parameter is a CK_GCM_PARAMS of the right size (checked above).
        let g = unsafe { (m.pParameter as *const CK_GCM_PARAMS).read_unaligned() };
        if to_usize(g.ulIvLen)? > 256 || to_usize(g.ulAADLen)? > MAX_ATTRIBUTE_LEN {
            return Err(ck(CKR_MECHANISM_PARAM_INVALID, "GCM IV or AAD too long"));
        }
        // SAFETY: the caller guarantees pIv/pAAD valid for their lengths.
        let (iv, aad) = unsafe {
            (
                bytes_in(g.pIv, g.ulIvLen)
                    .map_err(|_| ck(CKR_MECHANISM_PARAM_INVALID, "GCM IV"))?,
                bytes_in(g.pAAD, g.ulAADLen)
                    .map_err(|_| ck(CKR_MECHANISM_PARAM_INVALID, "GCM AAD"))?,
            )
        };
        return Mechanism::parse(
            m.mechanism,
            RawParam::Gcm(GcmParamsRef {
                iv,
                iv_bits: g.ulIvBits,
                aad,
                tag_bits: g.ulTagBits,
            }),
        );
    }
    if to_usize(m.ulParameterLen)? > MAX_ATTRIBUTE_LEN {
        return Err(ck(
            CKR_MECHANISM_PARAM_INVALID,
            "mechanism parameter too long",
        ));
    }
    // SAFETY: the caller guarantees the parameter bytes.
    let param = unsafe { bytes_in(m.pParameter as *const u8, m.ulParameterLen) }
        .map_err(|_| ck(CKR_MECHANISM_PARAM_INVALID, "NULL parameter with a length"))?;
    Mechanism::parse(m.mechanism, RawParam::Bytes(param))
}

/// Writes a list under the length convention (`C_GetSlotList`, `C_GetMechanismList`).
///
/// Safety: `count` valid for reading and writing; a non-NULL `list` valid for `*count` items.
unsafe fn list_out<T: Copy>(items: &[T], list: *mut T, count: *mut CK_ULONG) -> Result<()> {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        match out_space(list as *const u8, count)? {
            OutSpace::Query => write_out(count, to_ulong(items.len())),
            OutSpace::Capacity(c) if c < items.len() => {
                write_out(count, to_ulong(items.len()))?;
                Err(ck(CKR_BUFFER_TOO_SMALL, "list buffer too small"))
            }
            OutSpace::Capacity(_) => {
                for (i, v) in items.iter().enumerate() {
                    list.add(i).write_unaligned(*v);
                }
                write_out(count, to_ulong(items.len()))
            }
        }
    }
}

fn padded<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s[..n]);
    out
}

const VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

// ---- general purpose ------------------------------------------------------------------

unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    guard(|| {
        if !pInitArgs.is_null() {
            // SAFETY: a non-NULL argument is a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let args = unsafe { (pInitArgs as *const CK_C_INITIALIZE_ARGS).read_unaligned() };
            if !args.pReserved.is_null() {
                return Err(bad_args("pReserved must be NULL"));
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(bad_args("give all four mutex functions or none"));
            }
            // We lock with the OS primitives; caller mutexes are fine only if we may use ours.
            if given[0] && args.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(ck(CKR_CANT_LOCK, "this module only uses OS locking"));
            }
        }
        let mut g = state();
        if g.is_some() {
            return Err(ck(CKR_CRYPTOKI_ALREADY_INITIALIZED, "already initialised"));
        }
        let config = Config::from_env(|k| std::env::var_os(k)).map_err(|msg| {
            if !CONFIG_WARNED.swap(true, Ordering::Relaxed) {
                log(&msg);
            }
            ck(CKR_GENERAL_ERROR, "configuration missing")
        })?;
        let rng: Arc<dyn crypto::RandomSource> = Arc::new(crypto_sm::rng::SystemRandom);
        *g = Some(Module::new(&config, rng)?);
        Ok(())
    })
}

unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !pReserved.is_null() {
            return Err(bad_args("pReserved must be NULL"));
        }
        let mut g = state();
        // Dropping the module drops every session, login and cached key (all zeroized).
        g.take()
            .map(|_| ())
            .ok_or(ck(CKR_CRYPTOKI_NOT_INITIALIZED, "not initialised"))
    })
}

unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    guard(|| {
        if state().is_none() {
            return Err(ck(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize first"));
        }
        let info = CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: padded(b"gmchain"),
            flags: 0,
            libraryDescription: padded(b"gmchain softtoken (development)"),
            libraryVersion: VERSION,
        };
        // SAFETY: caller provides a CK_INFO to fill.
        unsafe { write_out(pInfo, info) }
    })
}

/// Returns the module's function list (PKCS#11 v2.40). This is the one symbol a PKCS#11
/// client needs.
///
/// # Safety
/// `ppFunctionList` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        // The list is never written through this pointer (PKCS#11 forbids it); the cast only
        // matches the C signature.
        let p = &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        // SAFETY: caller provides a pointer slot.
        unsafe { write_out(ppFunctionList, p) }
    })
}

// ---- slots and tokens -----------------------------------------------------------------

unsafe extern "C" fn C_GetSlotList(
    _tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let slots = with_module(|m| Ok(m.slot_list()))?;
        // SAFETY: caller guarantees per the length convention.
        unsafe { list_out(&slots, pSlotList, pulCount) }
    })
}

unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        with_module(|m| m.check_slot(slotID))?;
        let info = CK_SLOT_INFO {
            slotDescription: padded(format!("gmchain softtoken slot {slotID}").as_bytes()),
            manufacturerID: padded(b"gmchain"),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
        };
        // SAFETY: caller provides a CK_SLOT_INFO.
        unsafe { write_out(pInfo, info) }
    })
}

unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let t = with_module(|m| m.token_info(slotID))?;
        let info = CK_TOKEN_INFO {
            label: t.label,
            manufacturerID: padded(b"gmchain"),
            model: padded(b"softtoken"),
            serialNumber: t.serial,
            flags: t.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: to_ulong(t.sessions),
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: to_ulong(t.rw_sessions),
            ulMaxPinLen: to_ulong(crate::token::MAX_PIN_LEN),
            ulMinPinLen: to_ulong(crate::token::MIN_PIN_LEN),
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
            utcTime: [b' '; 16],
        };
        // SAFETY: caller provides a CK_TOKEN_INFO.
        unsafe { write_out(pInfo, info) }
    })
}

unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let list = with_module(|m| m.mechanism_list(slotID))?;
        // SAFETY: length convention, caller guarantees.
        unsafe { list_out(&list, pMechanismList, pulCount) }
    })
}

unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        let i = with_module(|m| m.mechanism_info(slotID, type_))?;
        let info = CK_MECHANISM_INFO {
            ulMinKeySize: i.min_key_size,
            ulMaxKeySize: i.max_key_size,
            flags: i.flags,
        };
        // SAFETY: caller provides a CK_MECHANISM_INFO.
        unsafe { write_out(pInfo, info) }
    })
}

unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard(|| {
        // SAFETY: PIN bytes per the caller; the label is 32 bytes (PKCS#11 §5.6).
        let (pin, label) = unsafe {
            if pLabel.is_null() {
                return Err(bad_args("NULL label"));
            }
            (pin_in(pPin, ulPinLen)?, bytes_in(pLabel, 32)?)
        };
        let mut l = [0u8; 32];
        l.copy_from_slice(label);
        with_module(|m| m.init_token(slotID, &pin, &l))
    })
}

unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PIN bytes per the caller.
        let pin = unsafe { pin_in(pPin, ulPinLen)? };
        with_module(|m| m.init_pin(hSession, &pin))
    })
}

unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PIN bytes per the caller.
        let (old, new) = unsafe { (pin_in(pOldPin, ulOldLen)?, pin_in(pNewPin, ulNewLen)?) };
        with_module(|m| m.set_pin(hSession, &old, &new))
    })
}

// ---- sessions -------------------------------------------------------------------------

unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: *mut c_void,
    _Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        if phSession.is_null() {
            return Err(bad_args("NULL session handle pointer"));
        }
        let h = with_module(|m| m.open_session(slotID, flags))?;
        // SAFETY: non-NULL, caller provides the slot for the handle.
        unsafe { write_out(phSession, h) }
    })
}

unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.close_session(hSession)))
}

unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard(|| with_module(|m| m.close_all_sessions(slotID)))
}

unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard(|| {
        let i = with_module(|m| m.session_info(hSession))?;
        let info = CK_SESSION_INFO {
            slotID: i.slot,
            state: i.state,
            flags: i.flags,
            ulDeviceError: 0,
        };
        // SAFETY: caller provides a CK_SESSION_INFO.
        unsafe { write_out(pInfo, info) }
    })
}

unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PIN bytes per the caller.
        let pin = unsafe { pin_in(pPin, ulPinLen)? };
        with_module(|m| m.login(hSession, userType, &pin))
    })
}

unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.logout(hSession)))
}

// ---- objects --------------------------------------------------------------------------

unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if phObject.is_null() {
            return Err(bad_args("NULL object handle pointer"));
        }
        // SAFETY: template per the caller.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        let h = with_module(|m| m.create_object(hSession, &t))?;
        // SAFETY: non-NULL out-pointer.
        unsafe { write_out(phObject, h) }
    })
}

unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| with_module(|m| m.destroy_object(hSession, hObject)))
}

unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's attribute array, ours for the call.
        let attrs = unsafe { attrs_mut(pTemplate, ulCount)? };
        let kinds: Vec<CK_ATTRIBUTE_TYPE> = attrs.iter().map(|a| a.type_).collect();
        let reads = with_module(|m| m.get_attributes(hSession, hObject, &kinds))?;
        // PKCS#11 §5.7 C_GetAttributeValue: every attribute is processed; the problems are
        // reported per attribute (ulValueLen = CK_UNAVAILABLE_INFORMATION) and in the result.
        let (mut sensitive, mut invalid, mut small) = (false, false, false);
        for (a, r) in attrs.iter_mut().zip(reads) {
            match r {
                AttrRead::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = to_ulong(v.len());
                    } else if to_usize(a.ulValueLen).unwrap_or(usize::MAX) >= v.len() {
                        // SAFETY: pValue holds ulValueLen ≥ v.len() writable bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = to_ulong(v.len());
                    } else {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        small = true;
                    }
                }
                AttrRead::Sensitive | AttrRead::NeedsLogin => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    sensitive = true;
                }
                AttrRead::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    invalid = true;
                }
            }
        }
        if sensitive {
            Err(ck(
                CKR_ATTRIBUTE_SENSITIVE,
                "a requested value is sensitive",
            ))
        } else if invalid {
            Err(ck(
                CKR_ATTRIBUTE_TYPE_INVALID,
                "a requested attribute is not on this object",
            ))
        } else if small {
            Err(ck(CKR_BUFFER_TOO_SMALL, "an attribute buffer is too small"))
        } else {
            Ok(())
        }
    })
}

unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: template per the caller.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        with_module(|m| m.set_attributes(hSession, hObject, &t))
    })
}

unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: template per the caller.
        let t = unsafe { template_in(pTemplate, ulCount)? };
        with_module(|m| m.find_init(hSession, &t))
    })
}

unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount > 0) {
            return Err(bad_args("NULL output pointer"));
        }
        let max = to_usize(ulMaxObjectCount)?;
        let found = with_module(|m| m.find(hSession, max))?;
        // SAFETY: phObject holds ulMaxObjectCount ≥ found.len() handles.
        unsafe {
            for (i, h) in found.iter().enumerate() {
                phObject.add(i).write_unaligned(*h);
            }
            write_out(pulObjectCount, to_ulong(found.len()))
        }
    })
}

unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.find_final(hSession)))
}

// ---- encryption and decryption ----------------------------------------------------------

unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism per the caller.
        let mech = unsafe { mechanism_in(pMechanism)? };
        with_module(|m| m.encrypt_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pEncryptedData: *mut CK_BYTE,
    pulEncryptedDataLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input bytes and output per the caller.
        unsafe {
            let data = bytes_in(pData, ulDataLen)?;
            let space = out_space(pEncryptedData, pulEncryptedDataLen)?;
            let step = with_module(|m| m.encrypt(hSession, data, space))?;
            emit(step, pEncryptedData, pulEncryptedDataLen)
        }
    })
}

/// `*Update` of a buffered cipher: absorbs input, produces no output yet (the output comes
/// with `*Final`). A NULL output buffer is a length query: it answers 0 and consumes nothing,
/// since clients (cryptoki among them) repeat the call with a buffer.
///
/// Safety: as [`bytes_in`] for the input; `out_len` NULL or writable.
unsafe fn cipher_update(
    h: CK_SESSION_HANDLE,
    data: *const u8,
    len: CK_ULONG,
    out: *const u8,
    out_len: *mut CK_ULONG,
    encrypt: bool,
) -> Result<()> {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        if out_len.is_null() {
            return Err(bad_args("NULL output length pointer"));
        }
        let data = bytes_in(data, len)?;
        if out.is_null() {
            with_module(|m| m.cipher_checked(h, encrypt))?;
        } else {
            with_module(|m| m.cipher_update(h, data, encrypt))?;
        }
        write_out(out_len, 0)
    }
}

unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
    pEncryptedPart: *mut CK_BYTE,
    pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: forwarded.
    guard(|| unsafe {
        cipher_update(
            hSession,
            pPart,
            ulPartLen,
            pEncryptedPart,
            pulEncryptedPartLen,
            true,
        )
    })
}

unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: *mut CK_BYTE,
    pulLastEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: output per the caller.
        unsafe {
            let space = out_space(pLastEncryptedPart, pulLastEncryptedPartLen)?;
            let step = with_module(|m| m.encrypt(hSession, &[], space))?;
            emit(step, pLastEncryptedPart, pulLastEncryptedPartLen)
        }
    })
}

unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism per the caller.
        let mech = unsafe { mechanism_in(pMechanism)? };
        with_module(|m| m.decrypt_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: *mut CK_BYTE,
    ulEncryptedDataLen: CK_ULONG,
    pData: *mut CK_BYTE,
    pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input bytes and output per the caller.
        unsafe {
            let data = bytes_in(pEncryptedData, ulEncryptedDataLen)?;
            let space = out_space(pData, pulDataLen)?;
            let step = with_module(|m| m.decrypt(hSession, data, space))?;
            emit(step, pData, pulDataLen)
        }
    })
}

unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: *mut CK_BYTE,
    ulEncryptedPartLen: CK_ULONG,
    pPart: *mut CK_BYTE,
    pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: forwarded.
    guard(|| unsafe {
        cipher_update(
            hSession,
            pEncryptedPart,
            ulEncryptedPartLen,
            pPart,
            pulPartLen,
            false,
        )
    })
}

unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: *mut CK_BYTE,
    pulLastPartLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: output per the caller.
        unsafe {
            let space = out_space(pLastPart, pulLastPartLen)?;
            let step = with_module(|m| m.decrypt(hSession, &[], space))?;
            emit(step, pLastPart, pulLastPartLen)
        }
    })
}

// ---- digests --------------------------------------------------------------------------

unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism per the caller.
        let mech = unsafe { mechanism_in(pMechanism)? };
        with_module(|m| m.digest_init(hSession, &mech))
    })
}

unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input and output per the caller.
        unsafe {
            let data = bytes_in(pData, ulDataLen)?;
            let space = out_space(pDigest, pulDigestLen)?;
            let step = with_module(|m| m.digest(hSession, data, space))?;
            emit(step, pDigest, pulDigestLen)
        }
    })
}

unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input per the caller.
        let data = unsafe { bytes_in(pPart, ulPartLen)? };
        with_module(|m| m.digest_update(hSession, data))
    })
}

unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: output per the caller.
        unsafe {
            let space = out_space(pDigest, pulDigestLen)?;
            let step = with_module(|m| m.digest(hSession, &[], space))?;
            emit(step, pDigest, pulDigestLen)
        }
    })
}

// ---- signatures -----------------------------------------------------------------------

unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism per the caller.
        let mech = unsafe { mechanism_in(pMechanism)? };
        with_module(|m| m.sign_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input and output per the caller.
        unsafe {
            let data = bytes_in(pData, ulDataLen)?;
            let space = out_space(pSignature, pulSignatureLen)?;
            let step = with_module(|m| m.sign(hSession, data, space))?;
            emit(step, pSignature, pulSignatureLen)
        }
    })
}

unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input per the caller.
        let data = unsafe { bytes_in(pPart, ulPartLen)? };
        with_module(|m| m.sign_update(hSession, data))
    })
}

unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: output per the caller.
        unsafe {
            let space = out_space(pSignature, pulSignatureLen)?;
            let step = with_module(|m| m.sign_final(hSession, space))?;
            emit(step, pSignature, pulSignatureLen)
        }
    })
}

unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism per the caller.
        let mech = unsafe { mechanism_in(pMechanism)? };
        with_module(|m| m.verify_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input bytes per the caller.
        let (data, sig) = unsafe {
            (
                bytes_in(pData, ulDataLen)?,
                bytes_in(pSignature, ulSignatureLen)?,
            )
        };
        let job = with_module(|m| m.verify(hSession, data, sig))?;
        job.run().map(|_| ())
    })
}

unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input per the caller.
        let data = unsafe { bytes_in(pPart, ulPartLen)? };
        with_module(|m| m.verify_update(hSession, data))
    })
}

unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: input per the caller.
        let sig = unsafe { bytes_in(pSignature, ulSignatureLen)? };
        let job = with_module(|m| m.verify(hSession, &[], sig))?;
        job.run().map(|_| ())
    })
}

// ---- keys -----------------------------------------------------------------------------

unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if phKey.is_null() {
            return Err(bad_args("NULL key handle pointer"));
        }
        // SAFETY: mechanism and template per the caller.
        let (mech, t) = unsafe { (mechanism_in(pMechanism)?, template_in(pTemplate, ulCount)?) };
        let h = with_module(|m| m.generate_key(hSession, &mech, &t))?;
        // SAFETY: non-NULL out-pointer.
        unsafe { write_out(phKey, h) }
    })
}

unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(bad_args("NULL key handle pointer"));
        }
        // SAFETY: mechanism and templates per the caller.
        let (mech, pubt, privt) = unsafe {
            (
                mechanism_in(pMechanism)?,
                template_in(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template_in(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        let (hp, hs) = with_module(|m| m.generate_key_pair(hSession, &mech, &pubt, &privt))?;
        // SAFETY: non-NULL out-pointers.
        unsafe {
            write_out(phPublicKey, hp)?;
            write_out(phPrivateKey, hs)
        }
    })
}

unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: mechanism and output per the caller.
        unsafe {
            let mech = mechanism_in(pMechanism)?;
            let space = out_space(pWrappedKey, pulWrappedKeyLen)?;
            let (step, nonce) =
                with_module(|m| m.wrap_key(hSession, &mech, hWrappingKey, hKey, space))?;
            emit(step, pWrappedKey, pulWrappedKeyLen)?;
            if let Some(nonce) = nonce {
                // The token drew the GCM nonce; the caller needs it to unwrap. `mechanism_in`
                // checked that pParameter is a CK_GCM_PARAMS whose pIv holds 12 bytes.
                let g = (*pMechanism).pParameter as *const CK_GCM_PARAMS;
                let iv = g.read_unaligned().pIv;
                std::ptr::copy_nonoverlapping(nonce.as_ptr(), iv, nonce.len());
            }
            Ok(())
        }
    })
}

unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if phKey.is_null() {
            return Err(bad_args("NULL key handle pointer"));
        }
        // SAFETY: mechanism, input and template per the caller.
        let (mech, wrapped, t) = unsafe {
            (
                mechanism_in(pMechanism)?,
                bytes_in(pWrappedKey, ulWrappedKeyLen)?,
                template_in(pTemplate, ulAttributeCount)?,
            )
        };
        let h = with_module(|m| m.unwrap_key(hSession, &mech, hUnwrappingKey, wrapped, &t))?;
        // SAFETY: non-NULL out-pointer.
        unsafe { write_out(phKey, h) }
    })
}

unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    _pSeed: *mut CK_BYTE,
    _ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        with_module(|m| m.check_session(hSession))?;
        Err(ck(
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            "the OS random source takes no seed",
        ))
    })
}

unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let len = to_usize(ulRandomLen)?;
        if RandomData.is_null() && len > 0 {
            return Err(bad_args("NULL output buffer"));
        }
        // Fill the caller's buffer in bounded chunks: a huge ulRandomLen costs time, never an
        // allocation the process cannot make.
        let mut chunk = Zeroizing::new([0u8; 4096]);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            with_module(|m| m.generate_random(hSession, &mut chunk[..n]))?;
            // SAFETY: RandomData holds ulRandomLen writable bytes; done + n <= len.
            unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), RandomData.add(done), n) };
            done += n;
        }
        if len == 0 {
            with_module(|m| m.generate_random(hSession, &mut []))?;
        }
        Ok(())
    })
}

// ---- not supported --------------------------------------------------------------------

fn not_supported() -> CK_RV {
    guard(|| {
        with_module(|_| Ok(()))?;
        Err(ck(
            CKR_FUNCTION_NOT_SUPPORTED,
            "not supported by this token",
        ))
    })
}

unsafe extern "C" fn C_GetOperationState(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_SetOperationState(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: CK_OBJECT_HANDLE,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_CopyObject(
    _: CK_SESSION_HANDLE,
    _: CK_OBJECT_HANDLE,
    _: *mut CK_ATTRIBUTE,
    _: CK_ULONG,
    _: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_GetObjectSize(
    _: CK_SESSION_HANDLE,
    _: CK_OBJECT_HANDLE,
    _: *mut CK_ULONG,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_DigestKey(_: CK_SESSION_HANDLE, _: CK_OBJECT_HANDLE) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_SignRecoverInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_VerifyRecoverInit(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn data_in_out_not_supported(
    _: CK_SESSION_HANDLE,
    _: *mut CK_BYTE,
    _: CK_ULONG,
    _: *mut CK_BYTE,
    _: *mut CK_ULONG,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_DeriveKey(
    _: CK_SESSION_HANDLE,
    _: *mut CK_MECHANISM,
    _: CK_OBJECT_HANDLE,
    _: *mut CK_ATTRIBUTE,
    _: CK_ULONG,
    _: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}
unsafe extern "C" fn C_GetFunctionStatus(_: CK_SESSION_HANDLE) -> CK_RV {
    // PKCS#11 §5.16: legacy function; every module answers CKR_FUNCTION_NOT_PARALLEL.
    guard(|| {
        with_module(|_| Ok(()))?;
        Err(ck(CKR_FUNCTION_NOT_PARALLEL, "legacy function"))
    })
}
unsafe extern "C" fn C_CancelFunction(_: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        with_module(|_| Ok(()))?;
        Err(ck(CKR_FUNCTION_NOT_PARALLEL, "legacy function"))
    })
}
unsafe extern "C" fn C_WaitForSlotEvent(_: CK_FLAGS, _: *mut CK_SLOT_ID, _: *mut c_void) -> CK_RV {
    not_supported()
}

/// Test-only fault switch (see the crate documentation): 0 off, 1 invalidate all open
/// sessions, 2 device removed until 0, 3 log the application out. Works only if
/// `GMCHAIN_SOFTTOKEN_FAULTS=1` was set at `C_Initialize`; otherwise `CKR_FUNCTION_NOT_SUPPORTED`.
#[unsafe(no_mangle)]
pub extern "C" fn gmchain_softtoken_set_fault(kind: u32) -> CK_RV {
    guard(|| {
        let mut g = state();
        let m = g
            .as_mut()
            .ok_or(ck(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize first"))?;
        m.set_fault(kind)
    })
}

/// The function list (PKCS#11 v2.40 layout).
static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(data_in_out_not_supported),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(data_in_out_not_supported),
    C_DigestEncryptUpdate: Some(data_in_out_not_supported),
    C_DecryptDigestUpdate: Some(data_in_out_not_supported),
    C_SignEncryptUpdate: Some(data_in_out_not_supported),
    C_DecryptVerifyUpdate: Some(data_in_out_not_supported),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};
