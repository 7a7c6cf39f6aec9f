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
        use gmchain_sdk::SdkError;
        if let Some(path) = &self.pass_file {
            return gmchain_sdk::secret_from_file(path)
                .map(Some)
                .map_err(|e| match e {
                    SdkError::Read { source, .. } => Failure::BadInput(format!(
                        "cannot read --pass-file {}: {source}",
                        path.display()
                    )),
                    _ => Failure::BadInput(format!("--pass-file {} is empty", path.display())),
                });
        }
        if let Some(var) = &self.pass_env {
            return gmchain_sdk::secret_from_env(var)
                .map(Some)
                .map_err(|e| match e {
                    SdkError::NoSecret { .. } => {
                        Failure::BadInput(format!("--pass-env {var}: the variable is not set"))
                    }
                    _ => Failure::BadInput(format!("--pass-env {var}: the variable is empty")),
                });
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

/// Writes a file atomically (temporary file with an unpredictable name, fsync, rename, fsync of
/// the directory); `secret` files are created with mode 0600, others 0644.
pub(crate) fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), Failure> {
    if path.file_name().is_none() {
        return Err(Failure::BadInput(format!(
            "--out {} is not a file name",
            path.display()
        )));
    }
    let mode = if secret {
        safefile::Mode::PRIVATE
    } else {
        safefile::Mode::PUBLIC
    };
    safefile::write_atomic(path, data, mode).map_err(|e| {
        let (_, _, source) = e.into_parts();
        Failure::BadInput(format!("cannot write {}: {source}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two writes of one output at once (threads of one process share a process id, which
    /// made the temporary name) both succeed and leave no temporary file.
    #[test]
    fn concurrent_writes_of_one_file_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.pem");
        for result in test_support::concurrently(2, |i| {
            (0..200).try_for_each(|_| write_file(&out, &[b'a' + i as u8; 8192], false))
        }) {
            if let Err(Failure::BadInput(e)) = result {
                panic!("{e}");
            }
        }
        assert_eq!(test_support::dir_entries(dir.path()), ["out.pem"]);
    }

    #[cfg(unix)]
    #[test]
    fn secret_outputs_are_owner_only_and_failures_name_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("node.key.pem");
        write_file(&key, b"k", true).unwrap();
        assert_eq!(mode(&key), 0o600);
        let cert = dir.path().join("ca.pem");
        write_file(&cert, b"c", false).unwrap();
        assert_eq!(mode(&cert) & 0o600, 0o600);
        match write_file(dir.path(), b"x", false) {
            Err(Failure::BadInput(msg)) => assert!(
                msg.starts_with(&format!("cannot write {}: ", dir.path().display())),
                "{msg}"
            ),
            _ => panic!("writing over a directory must fail"),
        }
    }
}
