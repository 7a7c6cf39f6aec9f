//! Opening a client's key: a handle in a PKCS#11 token (through `hsm` and a module profile),
//! or a development key file (encrypted PKCS#8). Secrets come from files or the environment,
//! never from arguments on a command line.

use std::path::Path;
use std::sync::Arc;

use crypto::{Secret, Signer};

use crate::SdkError;

/// Reads a PIN or passphrase from the first line of `path` (a trailing `\r` dropped); an
/// empty first line is refused.
pub fn secret_from_file(path: &Path) -> Result<Secret, SdkError> {
    let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| SdkError::Read {
        path: path.to_path_buf(),
        source,
    })?);
    let line = raw.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(SdkError::EmptySecret {
            source_name: path.display().to_string(),
        });
    }
    Ok(Secret::new(line.to_vec()))
}

/// Reads a PIN or passphrase from the environment variable `var`; unset or empty is refused.
pub fn secret_from_env(var: &str) -> Result<Secret, SdkError> {
    let v = std::env::var_os(var).ok_or_else(|| SdkError::NoSecret {
        var: var.to_string(),
    })?;
    let v = zeroize::Zeroizing::new(v.into_encoded_bytes());
    if v.is_empty() {
        return Err(SdkError::EmptySecret {
            source_name: var.to_string(),
        });
    }
    Ok(Secret::new(v.to_vec()))
}

/// The signing key `uri` (`pkcs11:token=LABEL;object=KEY`) in the token the module profile
/// `profile` drives, logged in with `pin`. The key never leaves the token.
pub fn token_signer(profile: &Path, uri: &str, pin: Secret) -> Result<Arc<dyn Signer>, SdkError> {
    let token_err = |context: String| move |source| SdkError::Token { context, source };
    let profile = hsm::Profile::load(profile).map_err(token_err(profile.display().to_string()))?;
    let key = hsm::KeyUri::parse(uri).map_err(token_err("key URI".into()))?;
    let label = token_label(&key)?;
    let hsm = hsm::Hsm::open(&profile, label, Some(pin), 1)
        .map_err(token_err(format!("token {label:?}")))?;
    let signer = hsm.signer(&key).map_err(token_err(key.to_string()))?;
    Ok(Arc::new(signer))
}

/// The label of the token a key URI names; a URI that names none is refused (a key is looked
/// up in one token, never in whichever token holds an object of that name).
pub fn token_label(uri: &hsm::KeyUri) -> Result<&str, SdkError> {
    uri.token.as_deref().ok_or_else(|| SdkError::Token {
        context: "key URI".into(),
        source: hsm::HsmError::InvalidInput {
            reason: "the URI must name the token (pkcs11:token=LABEL;object=KEY)".into(),
        },
    })
}

/// The key in the key file `path` (PKCS#8, SEC1 or encrypted PKCS#8 with `passphrase`),
/// signing in software with the system's random source: for development keys.
pub fn key_file_signer(
    path: &Path,
    passphrase: Option<&Secret>,
) -> Result<Arc<dyn Signer>, SdkError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| SdkError::Read {
        path: path.to_path_buf(),
        source,
    })?);
    let key = crypto_sm::keys::decode_private_key(&bytes, passphrase.map(|p| p.expose())).map_err(
        |source| SdkError::KeyFile {
            path: path.to_path_buf(),
            source,
        },
    )?;
    let provider = crypto_sm::SoftwareProvider::new(Arc::new(crypto_sm::rng::SystemRandom));
    Ok(Arc::new(provider.signer(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_the_first_line_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, b"1234\r\nsecond line\n").unwrap();
        assert_eq!(secret_from_file(&f).unwrap().expose(), b"1234");
        std::fs::write(&f, b"\nx").unwrap();
        assert!(matches!(
            secret_from_file(&f),
            Err(SdkError::EmptySecret { .. })
        ));
        assert!(matches!(
            secret_from_file(&dir.path().join("absent")),
            Err(SdkError::Read { .. })
        ));
        assert!(matches!(
            secret_from_env("GMCHAIN_SDK_TEST_SURELY_UNSET"),
            Err(SdkError::NoSecret { .. })
        ));
    }
}
