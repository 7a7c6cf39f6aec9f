//! The token's error type. Every error carries the PKCS#11 return value the caller sees; storage
//! and entropy failures map to `CKR_DEVICE_ERROR` and keep their details for the log, and so do
//! the refusals of the key-protection rules (what an attempt to get a key out looks like).
#![forbid(unsafe_code)]

use cryptoki_sys::*;
use std::path::PathBuf;

/// Everything that can go wrong inside the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PKCS#11 condition: the return value and what caused it.
    #[error("{reason} ({})", rv_name(*rv))]
    Pkcs11 {
        /// The `CKR_*` value returned to the caller.
        rv: CK_RV,
        /// Why, for logs and tests; never contains secret material.
        reason: &'static str,
    },
    /// A request the key-protection rules refuse (a key that would wrap and decrypt, an unwrapped
    /// key that would not be sensitive…): the return value and the rule. Unlike the ordinary
    /// PKCS#11 outcomes it gets a line in the log.
    #[error("refused: {reason} ({})", rv_name(*rv))]
    Refused {
        /// The `CKR_*` value returned to the caller.
        rv: CK_RV,
        /// The rule, in one line; never contains secret material.
        reason: &'static str,
    },
    /// A file operation on the token directory failed.
    #[error("token storage: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A token file that does not parse or whose contents are inconsistent.
    #[error("token storage: {} is not a valid token file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("the random number source failed")]
    Entropy,
}

/// Shorthand for a PKCS#11 condition.
pub(crate) fn ck(rv: CK_RV, reason: &'static str) -> Error {
    Error::Pkcs11 { rv, reason }
}

impl Error {
    /// Returns the `CKR_*` value for this error.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::Pkcs11 { rv, .. } | Error::Refused { rv, .. } => *rv,
            Error::Io { .. } | Error::Corrupt { .. } => CKR_DEVICE_ERROR,
            Error::Entropy => CKR_DEVICE_ERROR,
        }
    }

    /// Returns whether the error is a device failure (storage or entropy).
    pub fn is_device_failure(&self) -> bool {
        !matches!(self, Error::Pkcs11 { .. } | Error::Refused { .. })
    }

    /// Returns whether the error is worth a line in the log: device failures and refusals by
    /// the key-protection rules are, the normal PKCS#11 outcomes (wrong PIN, buffer too small…)
    /// are not.
    pub fn is_logged(&self) -> bool {
        !matches!(self, Error::Pkcs11 { .. })
    }
}

impl From<crypto::CryptoError> for Error {
    fn from(e: crypto::CryptoError) -> Self {
        match e {
            crypto::CryptoError::Entropy => Error::Entropy,
            _ => ck(CKR_FUNCTION_FAILED, "cryptographic operation failed"),
        }
    }
}

/// Shorthand for a refusal by a key-protection rule (logged, see [`Error::Refused`]).
pub(crate) fn refuse(rv: CK_RV, reason: &'static str) -> Error {
    Error::Refused { rv, reason }
}

/// The result type of the token.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns the symbolic name of the return values this token produces.
pub fn rv_name(rv: CK_RV) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_ACTION_PROHIBITED => "CKR_ACTION_PROHIBITED",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_ATTRIBUTE_READ_ONLY => "CKR_ATTRIBUTE_READ_ONLY",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_VALUE_INVALID => "CKR_ATTRIBUTE_VALUE_INVALID",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_CANT_LOCK => "CKR_CANT_LOCK",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        CKR_ENCRYPTED_DATA_LEN_RANGE => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_FUNCTION_NOT_PARALLEL => "CKR_FUNCTION_NOT_PARALLEL",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_NOT_WRAPPABLE => "CKR_KEY_NOT_WRAPPABLE",
        CKR_KEY_SIZE_RANGE => "CKR_KEY_SIZE_RANGE",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_KEY_UNEXTRACTABLE => "CKR_KEY_UNEXTRACTABLE",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_RANDOM_SEED_NOT_SUPPORTED => "CKR_RANDOM_SEED_NOT_SUPPORTED",
        CKR_SESSION_EXISTS => "CKR_SESSION_EXISTS",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SESSION_PARALLEL_NOT_SUPPORTED => "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        CKR_SESSION_READ_ONLY => "CKR_SESSION_READ_ONLY",
        CKR_SESSION_READ_ONLY_EXISTS => "CKR_SESSION_READ_ONLY_EXISTS",
        CKR_SIGNATURE_INVALID => "CKR_SIGNATURE_INVALID",
        CKR_SIGNATURE_LEN_RANGE => "CKR_SIGNATURE_LEN_RANGE",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_TEMPLATE_INCOMPLETE => "CKR_TEMPLATE_INCOMPLETE",
        CKR_TEMPLATE_INCONSISTENT => "CKR_TEMPLATE_INCONSISTENT",
        CKR_TOKEN_NOT_RECOGNIZED => "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN => "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_PIN_NOT_INITIALIZED => "CKR_USER_PIN_NOT_INITIALIZED",
        CKR_USER_TYPE_INVALID => "CKR_USER_TYPE_INVALID",
        CKR_WRAPPED_KEY_INVALID => "CKR_WRAPPED_KEY_INVALID",
        CKR_WRAPPED_KEY_LEN_RANGE => "CKR_WRAPPED_KEY_LEN_RANGE",
        CKR_WRAPPING_KEY_HANDLE_INVALID => "CKR_WRAPPING_KEY_HANDLE_INVALID",
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT => "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        CKR_UNWRAPPING_KEY_HANDLE_INVALID => "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT => "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        _ => "CKR_(other)",
    }
}
