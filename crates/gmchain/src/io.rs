//! Reading inputs, secrets and keys; writing outputs. Secrets never come from the command line.

use crate::Failure;
use crypto::Secret;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where a passphrase, PIN or symmetric key comes from.
#[derive(Debug, Clone, clap::Args, Default)]
pub(crate) struct PassArgs {
    /// Read the passphrase from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "pass_env")]
    pub pass_file: Option<PathBuf>,
    /// Read the passphrase from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub pass_env: Option<String>,
}

impl PassArgs {
    /// Returns the passphrase, if one was named.
    pub fn passphrase(&self) -> Result<Option<Secret>, Failure> {
        if let Some(path) = &self.pass_file {
            let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
                Failure::BadInput(format!("cannot read --pass-file {}: {e}", path.display()))
            })?);
            let line = raw.split(|b| *b == b'\n').next().unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                return Err(Failure::BadInput(format!(
                    "--pass-file {} is empty",
                    path.display()
                )));
            }
            return Ok(Some(Secret::new(line.to_vec())));
        }
        if let Some(var) = &self.pass_env {
            let v = std::env::var_os(var).ok_or_else(|| {
                Failure::BadInput(format!("--pass-env {var}: the variable is not set"))
            })?;
            let v = zeroize::Zeroizing::new(v.into_encoded_bytes());
            if v.is_empty() {
                return Err(Failure::BadInput(format!(
                    "--pass-env {var}: the variable is empty"
                )));
            }
            return Ok(Some(Secret::new(v.to_vec())));
        }
        Ok(None)
    }
}

/// Reads FILE, or standard input for "-" or no file.
pub(crate) fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => std::fs::read(p)
            .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", p.display()))),
    }
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Failure::BadInput(format!("cannot read standard input: {e}")))?;
    Ok(buf)
}

/// Reads a file named by an option, naming the option in the error.
pub(crate) fn read_named(option: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::BadInput(format!("cannot read {option} {}: {e}", path.display())))
}

/// Writes to --out FILE (atomically, via a temporary file in the same directory) or stdout.
pub(crate) fn write_output(out: Option<&Path>, data: &[u8]) -> Result<(), Failure> {
    match out {
        None => {
            let mut so = std::io::stdout().lock();
            so.write_all(data)
                .and_then(|_| so.flush())
                .map_err(|e| Failure::BadInput(format!("cannot write standard output: {e}")))
        }
        Some(p) => write_file(p, data, false),
    }
}

/// Writes a file atomically; `secret` files are created with mode 0600.
pub(crate) fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), Failure> {
    let fail =
        |e: std::io::Error| Failure::BadInput(format!("cannot write {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Failure::BadInput(format!("--out {} is not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if secret { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp).map_err(fail)?;
        f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// Decodes a hex option value, naming the option on error.
pub(crate) fn hex_arg(option: &str, value: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(value.trim())
        .map_err(|e| Failure::BadInput(format!("{option} is not valid hex: {e}")))
}

/// Reads a certificate (PEM or DER) from a file named by an option or config field.
pub(crate) fn read_cert(what: &str, path: &Path) -> Result<pki::Certificate, Failure> {
    let bytes = read_named(what, path)?;
    pki::Certificate::from_pem(&bytes)
        .or_else(|_| pki::Certificate::from_der(&bytes))
        .map_err(|e| Failure::BadInput(format!("{what} {}: {e}", path.display())))
}

/// Reads a CRL (PEM or DER) from a file named by an option or config field.
pub(crate) fn read_crl(what: &str, path: &Path) -> Result<pki::Crl, Failure> {
    let bytes = read_named(what, path)?;
    pki::Crl::from_pem(&bytes)
        .or_else(|_| pki::Crl::from_der(&bytes))
        .map_err(|e| Failure::BadInput(format!("{what} {}: {e}", path.display())))
}
