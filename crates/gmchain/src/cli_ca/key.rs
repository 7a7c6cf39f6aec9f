//! The CA key and who uses it: the operator's name, opening the CA key (a token key or the CA
//! directory's keystore), and `ca init`, which creates the key and the CA directory.

use super::{SystemClock, ca_failure, pki_err};
use crate::cli_keys::{TokenArgs, hsm_failure, load_profile, parse_uri};
use crate::io::{PassArgs, read_named};
use crate::{CmdResult, Failure};
use ca::{Context, KeyLocation, NewCa};
use crypto::{Secret, Signer};
use crypto_sm::rng::SystemRandom;
use pki::Certificate;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the CA key is: a token key (pkcs11: URI with a profile) or the CA directory's
/// encrypted keystore.
#[derive(Debug, clap::Args)]
pub(crate) struct CaKeyArgs {
    /// The CA key in a token, as a pkcs11: URI (generated there if the token has no such key).
    #[arg(long, value_name = "URI", requires = "hsm_profile")]
    key: Option<String>,
    /// The PKCS#11 module profile for --key.
    #[arg(long, value_name = "FILE")]
    hsm_profile: Option<PathBuf>,
    /// The token PIN, or the keystore passphrase.
    #[command(flatten)]
    pub(super) pass: PassArgs,
}

/// Who runs the command (recorded in the audit log).
#[derive(Debug, clap::Args)]
pub(crate) struct OperatorArgs {
    /// The operator's name; default: $GMCHAIN_OPERATOR, then $USER.
    #[arg(long)]
    operator: Option<String>,
}

impl OperatorArgs {
    pub(super) fn name(&self) -> Result<String, Failure> {
        let name = self
            .operator
            .clone()
            .or_else(|| std::env::var("GMCHAIN_OPERATOR").ok())
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .unwrap_or_default();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(Failure::BadInput(
                "name the operator with --operator (recorded in the CA audit log)".into(),
            ));
        }
        Ok(name)
    }
}

/// Opens the CA key as a signer.
pub(super) fn open_signer(
    dir: &Path,
    loc: &KeyLocation,
    pass: &PassArgs,
) -> Result<Box<dyn Signer>, Failure> {
    match loc {
        KeyLocation::Pkcs11 { uri, profile } => {
            let args = TokenArgs {
                hsm_profile: profile.clone(),
                pin: pass.clone(),
                sessions: 1,
            };
            let (hsm, uri) = crate::cli_keys::open_for_key(&args, uri)?;
            Ok(Box::new(
                hsm.signer(&uri).map_err(|e| hsm_failure("CA key", e))?,
            ))
        }
        KeyLocation::Keystore { label } => {
            let store = keystore::DirKeyStore::open(
                &dir.join("keys"),
                passphrase(pass)?,
                Arc::new(SystemRandom),
            )
            .map_err(|e| Failure::BadInput(format!("CA keystore: {e}")))?;
            Ok(Box::new(
                store
                    .signer(label)
                    .map_err(|e| Failure::BadInput(format!("CA key: {e}")))?,
            ))
        }
    }
}

fn passphrase(pass: &PassArgs) -> Result<Secret, Failure> {
    pass.passphrase()?.ok_or_else(|| {
        Failure::BadInput(
            "the CA key needs its PIN or passphrase: --pass-file or --pass-env".into(),
        )
    })
}

/// `ca init`: the CA key (in a token, generated there if absent; or a new keystore in the CA
/// directory), then the CA directory with its certificate: self-signed for a root, or the one
/// the root issued (`--cert`, `--chain`) for an agency.
#[allow(clippy::too_many_arguments)]
pub(super) fn init(
    dir: &Path,
    name: &str,
    org: &str,
    days: u64,
    cert: Option<PathBuf>,
    chain: Option<PathBuf>,
    key: &CaKeyArgs,
    op: &OperatorArgs,
) -> CmdResult {
    let operator = op.name()?;
    let (location, signer): (KeyLocation, Box<dyn Signer>) = match (&key.key, &key.hsm_profile) {
        (Some(uri_text), Some(profile_path)) => {
            let uri = parse_uri(uri_text)?;
            let profile = load_profile(profile_path)?;
            let args = TokenArgs {
                hsm_profile: profile_path.clone(),
                pin: key.pass.clone(),
                sessions: 1,
            };
            let token = uri.token.clone().ok_or_else(|| {
                Failure::BadInput(format!(
                    "--key {uri_text}: name the token (pkcs11:token=…;object=…)"
                ))
            })?;
            let hsm = crate::cli_keys::open(&args, &token, Some(&uri))?;
            if hsm
                .find(&uri)
                .map_err(|e| hsm_failure(uri_text, e))?
                .is_empty()
            {
                let label = uri.object.clone().ok_or_else(|| {
                    Failure::BadInput(format!("--key {uri_text}: name the key with object="))
                })?;
                let id = hsm
                    .random(8)
                    .map_err(|e| hsm_failure("C_GenerateRandom", e))?;
                hsm.generate_sm2(&label, &id, hsm::KeyUsage::Signing)
                    .map_err(|e| hsm_failure("C_GenerateKeyPair", e))?;
            }
            let _ = profile;
            let abs = std::fs::canonicalize(profile_path).unwrap_or_else(|_| profile_path.clone());
            (
                KeyLocation::Pkcs11 {
                    uri: uri_text.clone(),
                    profile: abs,
                },
                Box::new(hsm.signer(&uri).map_err(|e| hsm_failure(uri_text, e))?),
            )
        }
        _ => {
            let pass = passphrase(&key.pass)?;
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::BadInput(format!("{}: {e}", dir.display())))?;
            if std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
            {
                return Err(Failure::BadInput(format!(
                    "{} already exists and is not empty; choose a new directory",
                    dir.display()
                )));
            }
            let store =
                keystore::DirKeyStore::create(&dir.join("keys"), pass, Arc::new(SystemRandom))
                    .map_err(|e| Failure::BadInput(format!("CA keystore: {e}")))?;
            store
                .generate("ca")
                .map_err(|e| Failure::BadInput(format!("CA key: {e}")))?;
            let signer = store
                .signer("ca")
                .map_err(|e| Failure::BadInput(format!("CA key: {e}")))?;
            (
                KeyLocation::Keystore { label: "ca".into() },
                Box::new(signer),
            )
        }
    };
    let cx = Context {
        signer: signer.as_ref(),
        rng: &SystemRandom,
        clock: &SystemClock,
        operator: &operator,
    };
    let new = NewCa {
        dir,
        name,
        organisation: org,
    };
    let created = match (cert, chain) {
        (Some(cert_path), Some(chain_path)) => {
            let c = Certificate::from_pem(&read_named("--cert", &cert_path)?)
                .map_err(pki_err("--cert"))?;
            let root = Certificate::from_pem(&read_named("--chain", &chain_path)?)
                .map_err(pki_err("--chain"))?;
            ca::init_agency(new, location, c, &root, &cx)
        }
        _ => ca::init_root(new, location, days, &cx),
    }
    .map_err(ca_failure)?;
    println!("{}", created.certificate.to_pem().trim_end());
    eprintln!("audit head: {}", created.head);
    Ok(())
}
