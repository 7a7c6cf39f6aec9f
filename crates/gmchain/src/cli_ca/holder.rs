//! Who a certificate is for, as the command line names it: a request file, or a key pair the
//! CA generates and hands over encrypted; and where a dual pair's escrow copy goes.

use crate::Failure;
use crate::io::{PassArgs, read_named, write_file};
use ca::CaError;
use crypto::Secret;
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm2::PrivateKey;
use std::path::{Path, PathBuf};

/// Who the certificate is for: a CSR (proof of possession checked), or a key pair the CA
/// generates and hands over as an encrypted PKCS#8 file.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct HolderArgs {
    /// The holder's certification request.
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,
    /// Generate the holder's key pair (needs --name, --key-out, --key-pass-file).
    #[arg(long, requires_all = ["name", "key_out", "key_pass_file"])]
    generate: bool,
}

/// For --generate: the common name and where the encrypted private key goes.
#[derive(Debug, clap::Args)]
pub(crate) struct GeneratedKeyArgs {
    /// The holder's common name.
    #[arg(long)]
    name: Option<String>,
    /// Where to write the generated private key (encrypted PKCS#8, mode 0600).
    #[arg(long, value_name = "FILE")]
    key_out: Option<PathBuf>,
    /// Passphrase for the generated key file.
    #[arg(long, value_name = "FILE")]
    key_pass_file: Option<PathBuf>,
}

/// The holder as read from the command line: the request's bytes, or the name, file and
/// passphrase for a key pair the CA generates.
pub(super) enum HolderInput {
    Request(Vec<u8>),
    Generate {
        name: String,
        key_out: PathBuf,
        pass: Secret,
    },
}

impl HolderInput {
    /// Reads the request, or the passphrase the generated key will be encrypted under.
    pub(super) fn read(h: &HolderArgs, g: &GeneratedKeyArgs) -> Result<Self, Failure> {
        if let Some(path) = &h.csr {
            return Ok(HolderInput::Request(read_named("--csr", path)?));
        }
        let (Some(name), Some(out), Some(pass_file)) = (&g.name, &g.key_out, &g.key_pass_file)
        else {
            return Err(Failure::BadInput(
                "--generate needs --name, --key-out and --key-pass-file".into(),
            ));
        };
        let pass = PassArgs {
            pass_file: Some(pass_file.clone()),
            pass_env: None,
        }
        .passphrase()?
        .ok_or_else(|| Failure::BadInput("--key-pass-file is empty".into()))?;
        Ok(HolderInput::Generate {
            name: name.clone(),
            key_out: out.clone(),
            pass,
        })
    }

    /// Returns the holder for the CA.
    pub(super) fn holder(&self) -> ca::Holder<'_> {
        match self {
            HolderInput::Request(bytes) => ca::Holder::Request(bytes),
            HolderInput::Generate { name, .. } => ca::Holder::Generate { common_name: name },
        }
    }

    /// Returns where a generated key goes (--key-out), if the CA generates it.
    pub(super) fn key_out(&self) -> Option<&Path> {
        match self {
            HolderInput::Generate { key_out, .. } => Some(key_out),
            HolderInput::Request(_) => None,
        }
    }

    /// Writes the key the CA generated, encrypted (PKCS#8, mode 0600), once its certificate
    /// exists.
    pub(super) fn deliver(&self, key: Option<&PrivateKey>) -> Result<(), Failure> {
        if let (HolderInput::Generate { key_out, pass, .. }, Some(key)) = (self, key) {
            let pem = crypto_sm::keys::encode_encrypted_pkcs8_pem(
                key,
                pass.expose(),
                crypto_sm::keys::DEFAULT_ITERATIONS,
                &SystemRandom,
            )
            .map_err(|e| Failure::BadInput(format!("--key-out: {e}")))?;
            write_file(key_out, pem.as_bytes(), true)?;
        }
        Ok(())
    }
}

/// The CA directory's `escrow/`: one encrypted PKCS#8 file per encryption key, mode 0600.
pub(super) struct EscrowDir(pub PathBuf);

impl ca::EscrowStore for EscrowDir {
    fn deposit(&self, serial: &str, pem: &[u8]) -> Result<(), CaError> {
        let refused = |reason: String| CaError::Escrow {
            serial: serial.to_string(),
            reason,
        };
        std::fs::create_dir_all(&self.0).map_err(|e| refused(format!("escrow directory: {e}")))?;
        write_file(&self.0.join(format!("{serial}.pem")), pem, true)
            .map_err(|f| refused(super::failure_text(&f)))
    }
}
