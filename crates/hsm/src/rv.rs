//! PKCS#11 return values (`CK_RV`) as a printable type, and the translation of `cryptoki`'s
//! errors back to the numeric code so that every failure carries the value the module returned.

use core::fmt;
use cryptoki::error::{Error as CkError, Rv, RvError};
use cryptoki_sys::*;

/// A PKCS#11 return value (`CK_RV`), shown as its name and hex code, e.g.
/// `CKR_PIN_INCORRECT (0xA0)`. Vendor codes (≥ `CKR_VENDOR_DEFINED`) print as such.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ckr(pub u64);

impl Ckr {
    /// Returns the standard name, if the code has one.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(code, _)| u64::from(*code) == self.0)
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for Ckr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:X})", self.0),
            None if self.0 >= u64::from(CKR_VENDOR_DEFINED) => {
                write!(f, "vendor-defined CKR 0x{:X}", self.0)
            }
            None => write!(f, "unknown CKR 0x{:X}", self.0),
        }
    }
}

impl fmt::Debug for Ckr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A failed PKCS#11 call: which function, and what it returned. Internal currency of the
/// provider; the public API turns it into an [`crate::HsmError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallError {
    pub function: &'static str,
    pub rv: Ckr,
}

impl CallError {
    pub(crate) fn new(function: &'static str, rv: CK_RV) -> Self {
        Self {
            function,
            rv: Ckr(u64::from(rv)),
        }
    }

    /// Translates an error of the `cryptoki` crate. Errors that are not a return value of the
    /// module (a missing symbol, a conversion) become `CKR_GENERAL_ERROR` for that function.
    pub(crate) fn from_cryptoki(function: &'static str, err: &CkError) -> Self {
        let rv = match err {
            CkError::Pkcs11(rv, _) => code_of(*rv),
            CkError::NullFunctionPointer | CkError::MissingSymbol(_) => {
                u64::from(CKR_FUNCTION_NOT_SUPPORTED)
            }
            _ => u64::from(CKR_GENERAL_ERROR),
        };
        Self {
            function,
            rv: Ckr(rv),
        }
    }

    pub(crate) fn is(self, code: CK_RV) -> bool {
        self.rv.0 == u64::from(code)
    }
}

fn code_of(err: RvError) -> u64 {
    if let RvError::VendorDefined(code) | RvError::UnknownErrorCode(code) = err {
        return u64::from(code);
    }
    NAMES
        .iter()
        .map(|(code, _)| *code)
        .find(|code| Rv::from(*code) == Rv::Error(err))
        .map(u64::from)
        .unwrap_or(u64::from(CKR_GENERAL_ERROR))
}

/// Every return value PKCS#11 3.2 names (from the `cryptoki-sys` bindings), except `CKR_OK`.
const NAMES: &[(CK_RV, &str)] = &[
    (CKR_CANCEL, "CKR_CANCEL"),
    (CKR_HOST_MEMORY, "CKR_HOST_MEMORY"),
    (CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"),
    (CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"),
    (CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"),
    (CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"),
    (CKR_NO_EVENT, "CKR_NO_EVENT"),
    (CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS"),
    (CKR_CANT_LOCK, "CKR_CANT_LOCK"),
    (CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"),
    (CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"),
    (CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"),
    (CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"),
    (CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"),
    (CKR_DATA_INVALID, "CKR_DATA_INVALID"),
    (CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"),
    (CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"),
    (CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"),
    (CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"),
    (CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"),
    (CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"),
    (CKR_AEAD_DECRYPT_FAILED, "CKR_AEAD_DECRYPT_FAILED"),
    (CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"),
    (CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL"),
    (CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"),
    (CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"),
    (CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"),
    (CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"),
    (CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED"),
    (CKR_KEY_CHANGED, "CKR_KEY_CHANGED"),
    (CKR_KEY_NEEDED, "CKR_KEY_NEEDED"),
    (CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE"),
    (
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        "CKR_KEY_FUNCTION_NOT_PERMITTED",
    ),
    (CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"),
    (CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"),
    (CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"),
    (CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"),
    (CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"),
    (CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"),
    (
        CKR_OPERATION_NOT_INITIALIZED,
        "CKR_OPERATION_NOT_INITIALIZED",
    ),
    (CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"),
    (CKR_PIN_INVALID, "CKR_PIN_INVALID"),
    (CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"),
    (CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"),
    (CKR_PIN_LOCKED, "CKR_PIN_LOCKED"),
    (CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"),
    (CKR_SESSION_COUNT, "CKR_SESSION_COUNT"),
    (CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"),
    (
        CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
    ),
    (CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"),
    (CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"),
    (CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS"),
    (
        CKR_SESSION_READ_WRITE_SO_EXISTS,
        "CKR_SESSION_READ_WRITE_SO_EXISTS",
    ),
    (CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"),
    (CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE"),
    (CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"),
    (CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"),
    (CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"),
    (CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"),
    (CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"),
    (
        CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
    ),
    (
        CKR_UNWRAPPING_KEY_SIZE_RANGE,
        "CKR_UNWRAPPING_KEY_SIZE_RANGE",
    ),
    (
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
        "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
    ),
    (CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"),
    (CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"),
    (CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"),
    (CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"),
    (
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
    ),
    (CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES"),
    (CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"),
    (CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"),
    (
        CKR_WRAPPING_KEY_HANDLE_INVALID,
        "CKR_WRAPPING_KEY_HANDLE_INVALID",
    ),
    (CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE"),
    (
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
    ),
    (
        CKR_RANDOM_SEED_NOT_SUPPORTED,
        "CKR_RANDOM_SEED_NOT_SUPPORTED",
    ),
    (CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG"),
    (CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"),
    (CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"),
    (CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"),
    (CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID"),
    (CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE"),
    (CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE"),
    (CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"),
    (
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
        "CKR_CRYPTOKI_ALREADY_INITIALIZED",
    ),
    (CKR_MUTEX_BAD, "CKR_MUTEX_BAD"),
    (CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED"),
    (CKR_NEW_PIN_MODE, "CKR_NEW_PIN_MODE"),
    (CKR_NEXT_OTP, "CKR_NEXT_OTP"),
    (CKR_EXCEEDED_MAX_ITERATIONS, "CKR_EXCEEDED_MAX_ITERATIONS"),
    (CKR_FIPS_SELF_TEST_FAILED, "CKR_FIPS_SELF_TEST_FAILED"),
    (CKR_LIBRARY_LOAD_FAILED, "CKR_LIBRARY_LOAD_FAILED"),
    (CKR_PIN_TOO_WEAK, "CKR_PIN_TOO_WEAK"),
    (CKR_PUBLIC_KEY_INVALID, "CKR_PUBLIC_KEY_INVALID"),
    (CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"),
    (CKR_TOKEN_RESOURCE_EXCEEDED, "CKR_TOKEN_RESOURCE_EXCEEDED"),
    (CKR_OPERATION_CANCEL_FAILED, "CKR_OPERATION_CANCEL_FAILED"),
    (CKR_KEY_EXHAUSTED, "CKR_KEY_EXHAUSTED"),
    (CKR_PENDING, "CKR_PENDING"),
    (
        CKR_SESSION_ASYNC_NOT_SUPPORTED,
        "CKR_SESSION_ASYNC_NOT_SUPPORTED",
    ),
    (CKR_SEED_RANDOM_REQUIRED, "CKR_SEED_RANDOM_REQUIRED"),
    (CKR_OPERATION_NOT_VALIDATED, "CKR_OPERATION_NOT_VALIDATED"),
    (CKR_TOKEN_NOT_INITIALIZED, "CKR_TOKEN_NOT_INITIALIZED"),
    (
        CKR_PARAMETER_SET_NOT_SUPPORTED,
        "CKR_PARAMETER_SET_NOT_SUPPORTED",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_round_trip_through_cryptoki() {
        assert_eq!(
            Ckr(u64::from(CKR_PIN_INCORRECT)).to_string(),
            "CKR_PIN_INCORRECT (0xA0)"
        );
        assert_eq!(
            Ckr(0x8000_0001).to_string(),
            "vendor-defined CKR 0x80000001"
        );
        assert_eq!(code_of(RvError::VendorDefined(0x8000_0042)), 0x8000_0042);
        for (code, _) in NAMES {
            if let Rv::Error(e) = Rv::from(*code) {
                assert_eq!(code_of(e), u64::from(*code), "{e:?}");
            }
        }
    }
}
