use crate::rv::{CallError, Ckr};
use crypto::CryptoError;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong between gmchain and a PKCS#11 token. Each message names what
/// was wrong and, where useful, what to do; none contains a PIN or key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HsmError {
    /// A profile file that cannot be read, parsed or validated.
    #[error("HSM profile {}: field `{field}`: {reason}", file.display())]
    Profile {
        /// The profile file.
        file: PathBuf,
        /// The field (dotted TOML path) at fault, or `-` for the whole file.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The profile names a module library that is not where the resolution rule looks.
    #[error(
        "PKCS#11 module {name:?} of profile {} not found; looked in: {}; build it (for the gmchain soft token: `cargo build -p softtoken`) or set GMCHAIN_PKCS11_MODULE to its path",
        profile.display(),
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    ModuleNotFound {
        /// The profile file.
        profile: PathBuf,
        /// The library as the profile writes it.
        name: String,
        /// Every path tried, in order.
        searched: Vec<PathBuf>,
    },
    /// The module library exists but cannot be loaded or initialised.
    #[error("cannot load PKCS#11 module {}: {reason}", module.display())]
    ModuleLoad {
        /// The library path.
        module: PathBuf,
        /// The loader's or the module's answer.
        reason: String,
    },
    /// The token is gone (removed, not present) or could not be recovered: no operation was done
    /// and nothing was computed in software instead.
    #[error(
        "HSM unreachable ({module}): {reason}; check that the device is connected and powered, then retry"
    )]
    Unreachable {
        /// The module (and token) that failed.
        module: String,
        /// What happened, with the PKCS#11 return value.
        reason: String,
    },
    /// No slot holds a token with this label.
    #[error("no token labelled {label:?}; available tokens: {}", if available.is_empty() { "none".to_string() } else { available.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ") })]
    TokenNotFound {
        /// The label asked for.
        label: String,
        /// The labels of the tokens present.
        available: Vec<String>,
    },
    /// Two or more tokens carry the same label, so the label does not say which one is meant.
    #[error(
        "{count} tokens are labelled {label:?}; relabel one (`gmchain keys init-token`) so that labels are unique"
    )]
    TokenAmbiguous {
        /// The label.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// No key object matches the URI.
    #[error("no key matches {uri}; list the token's keys with `gmchain keys list`")]
    KeyNotFound {
        /// The URI, as given.
        uri: String,
    },
    /// A URI that matches several keys where one is needed.
    #[error("{count} keys match {uri}; add object= and id= to name exactly one")]
    KeyAmbiguous {
        /// The URI.
        uri: String,
        /// How many matched.
        count: usize,
    },
    /// A key label already in use on the token.
    #[error(
        "the token already holds a key labelled {label:?}; choose another label or delete that key first"
    )]
    KeyExists {
        /// The label.
        label: String,
    },
    /// The token rejected the user PIN.
    #[error(
        "the token rejected the PIN (CKR_PIN_INCORRECT); check --pass-file/--pass-env; repeated failures lock the PIN"
    )]
    PinIncorrect,
    /// The user PIN is locked after too many failures.
    #[error(
        "the token's user PIN is locked (CKR_PIN_LOCKED); the security officer must set a new one (`gmchain keys init-pin`)"
    )]
    PinLocked,
    /// An operation on private objects without a PIN.
    #[error("{operation} needs the user PIN; pass it with --pass-file or --pass-env")]
    PinRequired {
        /// What was attempted.
        operation: &'static str,
    },
    /// The profile names no mechanism for this operation. (A mechanism the profile names but the
    /// module refuses is a [`HsmError::Pkcs11`] with `CKR_MECHANISM_INVALID`: the profile is
    /// wrong for this module, and the self-check shows it.)
    #[error(
        "{operation} is not supported by HSM profile {profile:?}; nothing was computed in software instead"
    )]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// The profile's name.
        profile: String,
    },
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 {
        /// The function that failed.
        function: &'static str,
        /// What it returned.
        rv: Ckr,
    },
    /// A PKCS#11 URI that cannot be used.
    #[error("PKCS#11 URI {uri:?}: {reason}")]
    Uri {
        /// The URI as given (never contains a PIN: a pin-value URI is refused before it is stored).
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key whose public half cannot be read or decoded per the profile.
    #[error("public key of {uri}: {reason}")]
    PublicKeyUnavailable {
        /// The key's URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A request the provider refuses before reaching the token.
    #[error("invalid request: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
    /// The holder's key cannot unwrap (no `CKA_UNWRAP`, or the token does not let it).
    #[error(
        "{uri} cannot unwrap (CKA_UNWRAP is false): an envelope is opened only inside the token, by a signing key generated with `gmchain keys generate --usage sign-unwrap`; issue the dual pair again for such a key"
    )]
    KeyCannotUnwrap {
        /// The holder's key.
        uri: String,
    },
    /// The token refused an envelope: not sealed to this holder, or altered.
    #[error(
        "the token refused the envelope ({step}) with {holder}: it is not sealed to this key, or it was altered (C3 or the enveloped key does not verify); no key was made"
    )]
    EnvelopeRefused {
        /// The step refused.
        step: &'static str,
        /// The holder's key.
        holder: String,
    },
    /// A cryptographic failure (a signature that does not verify, a malformed ciphertext, a tag
    /// mismatch), reported in the vocabulary every provider shares.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl HsmError {
    /// Returns a stable code for the API edge and the logs.
    pub fn code(&self) -> &'static codes::Code {
        match self {
            HsmError::Profile { .. } => &codes::HSM_PROFILE_INVALID,
            HsmError::ModuleNotFound { .. } => &codes::HSM_MODULE_NOT_FOUND,
            HsmError::ModuleLoad { .. } => &codes::HSM_MODULE_LOAD,
            HsmError::Unreachable { .. } => &codes::HSM_UNREACHABLE,
            HsmError::TokenNotFound { .. } => &codes::HSM_TOKEN_NOT_FOUND,
            HsmError::TokenAmbiguous { .. } => &codes::HSM_TOKEN_AMBIGUOUS,
            HsmError::KeyNotFound { .. } => &codes::HSM_KEY_NOT_FOUND,
            HsmError::KeyAmbiguous { .. } => &codes::HSM_KEY_AMBIGUOUS,
            HsmError::KeyExists { .. } => &codes::HSM_KEY_EXISTS,
            HsmError::PinIncorrect => &codes::HSM_PIN_INCORRECT,
            HsmError::PinLocked => &codes::HSM_PIN_LOCKED,
            HsmError::PinRequired { .. } => &codes::HSM_PIN_REQUIRED,
            HsmError::Unsupported { .. } => &codes::HSM_UNSUPPORTED,
            HsmError::Pkcs11 { .. } => &codes::HSM_PKCS11,
            HsmError::Uri { .. } => &codes::HSM_URI_INVALID,
            HsmError::PublicKeyUnavailable { .. } => &codes::HSM_PUBLIC_KEY_UNAVAILABLE,
            HsmError::InvalidInput { .. } => &codes::HSM_INVALID_INPUT,
            HsmError::Crypto(_) => &codes::HSM_CRYPTO,
            HsmError::KeyCannotUnwrap { .. } => &codes::HSM_KEY_CANNOT_UNWRAP,
            HsmError::EnvelopeRefused { .. } => &codes::HSM_ENVELOPE_REFUSED,
        }
    }

    /// Returns whether the device is unreachable (the CLI's exit code 3).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HsmError::Unreachable { .. })
    }

    pub(crate) fn pkcs11(call: CallError) -> Self {
        HsmError::Pkcs11 {
            function: call.function,
            rv: call.rv,
        }
    }
}

impl From<HsmError> for CryptoError {
    fn from(err: HsmError) -> Self {
        match err {
            HsmError::Crypto(e) => e,
            HsmError::Unsupported { operation, .. } => CryptoError::Unsupported { what: operation },
            HsmError::KeyNotFound { uri } => CryptoError::KeyNotFound { name: uri },
            other => CryptoError::Device {
                reason: other.to_string(),
                code: other.code(),
            },
        }
    }
}

impl codes::Coded for HsmError {
    fn code(&self) -> &'static codes::Code {
        HsmError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            HsmError::Crypto(e) => codes::Coded::class(e),
            _ => self.code().class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = HsmError::TokenNotFound {
            label: "prod".into(),
            available: vec!["dev-a".into(), "dev-b".into()],
        };
        assert_eq!(
            e.to_string(),
            "no token labelled \"prod\"; available tokens: \"dev-a\", \"dev-b\""
        );
        let e = HsmError::Unsupported {
            operation: "SM2 signing",
            profile: "softhsm2".into(),
        };
        assert!(matches!(
            CryptoError::from(e),
            CryptoError::Unsupported {
                what: "SM2 signing"
            }
        ));
        let e = HsmError::Unreachable {
            module: "m".into(),
            reason: "CKR_DEVICE_REMOVED".into(),
        };
        assert!(e.is_unreachable());
        assert!(matches!(CryptoError::from(e), CryptoError::Device { .. }));
    }

    /// Issue 11: a signer's failure keeps its class through `CryptoError` (before, every device
    /// failure became `Device { reason }` and the node reported any seal failure as exit 3).
    #[test]
    fn a_token_failure_keeps_its_class_through_the_provider_neutral_error() {
        use codes::{Class, Coded};
        let gone = CryptoError::from(HsmError::Unreachable {
            module: "m".into(),
            reason: "CKR_DEVICE_REMOVED".into(),
        });
        assert_eq!(gone.class(), Class::Unavailable);
        let wrong_pin = CryptoError::from(HsmError::PinIncorrect);
        assert_eq!(wrong_pin.class(), Class::BadInput);
        assert_eq!(
            wrong_pin,
            CryptoError::Device {
                reason: HsmError::PinIncorrect.to_string(),
                code: &codes::HSM_PIN_INCORRECT,
            }
        );
        let no_key = CryptoError::from(HsmError::KeyNotFound {
            uri: "pkcs11:object=x".into(),
        });
        assert_eq!(no_key.class(), Class::BadInput);
        let bad_sig = HsmError::Crypto(CryptoError::SignatureInvalid);
        assert_eq!(bad_sig.class(), Class::NotVerified);
    }
}
