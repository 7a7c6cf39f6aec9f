//! `gmchain crypto …`: the SM2/SM3/SM4 toolbox. It is an interoperability tool: it reads the
//! key files OpenSSL writes, including encrypted PKCS#8 with PBKDF2-hmacWithSHA256 (not a GM
//! algorithm), and says so on stderr when it does; a production node refuses such files.

use crate::io::{PassArgs, hex_arg, read_input, read_named, write_file, write_output};
use crate::{CmdResult, Failure};
use clap::{Subcommand, ValueEnum};
use crypto::{CipherFormat, CryptoError, Signature, Sm4Mode, UserId};
use crypto_sm::keys;
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm2::{self, PrivateKey};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum CryptoCommand {
    /// SM3 digest of FILE (or standard input), as hex.
    Sm3 {
        /// The input; "-" or nothing reads standard input.
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// HMAC-SM3 of FILE with the raw key bytes of --key-file, as hex.
    Hmac {
        /// File holding the HMAC key (raw bytes).
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generates an SM2 key pair as PKCS#8 PEM (encrypted with PBKDF2-HMAC-SM3 + SM4-CBC with --encrypt).
    Keygen {
        /// Encrypt the key with the passphrase from --pass-file or --pass-env.
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        pass: PassArgs,
        /// PBKDF2 iterations for --encrypt.
        #[arg(long, default_value_t = keys::DEFAULT_ITERATIONS)]
        iterations: u32,
        /// Also write the public key (SPKI PEM) to this file.
        #[arg(long, value_name = "FILE")]
        pubout: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the public key (SPKI PEM) of a private key.
    Pubkey {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Signs FILE with SM2 (e = SM3(ZA ‖ M)); writes a DER (GM/T 0009) or raw r‖s signature.
    Sign {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        id: IdArgs,
        #[arg(long, value_enum, default_value_t = SigFormat::Der)]
        format: SigFormat,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verifies an SM2 signature on FILE. Exit 0 if it verifies, 1 if not.
    Verify {
        /// Public key (SPKI PEM or DER; a private key file also works).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// Signature file.
        #[arg(long, value_name = "FILE")]
        sig: PathBuf,
        #[command(flatten)]
        id: IdArgs,
        #[arg(long, value_enum, default_value_t = SigFormat::Der)]
        format: SigFormat,
        file: Option<PathBuf>,
    },
    /// Encrypts FILE to an SM2 public key (GB/T 32918.4).
    Encrypt {
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        #[arg(long, value_enum, default_value_t = CtFormat::Der)]
        format: CtFormat,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Decrypts an SM2 ciphertext. Exit 1 if C3 does not verify.
    Decrypt {
        #[command(flatten)]
        key: KeyArgs,
        /// Input format; c1c2c3-legacy reads the old GM/T 0003.4-2012 order.
        #[arg(long, value_enum, default_value_t = DecFormat::Der)]
        format: DecFormat,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Writes a PKCS#10 certification request (SM2-with-SM3) signed with the key, for the CA.
    Csr {
        #[command(flatten)]
        key: KeyArgs,
        /// RFC 4514 subject; the CA takes only the common name, its profile sets O and OU.
        #[arg(long)]
        subject: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// SM4 encryption and decryption (CBC/PKCS#7, CTR, GCM, CCM; AEAD output is ciphertext ‖ tag).
    Sm4 {
        #[arg(value_enum)]
        direction: Direction,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// File holding the 16-byte key: raw, or as 32 hex digits.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// IV (CBC, CTR: 16 bytes) or nonce (GCM, CCM: 12 bytes), hex.
        #[arg(long)]
        iv: String,
        /// Additional authenticated data for GCM/CCM, hex.
        #[arg(long)]
        aad: Option<String>,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A private key: a PEM/DER file, or (with the HSM issue) a pkcs11: URI.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArgs {
    /// Private key: a PEM/DER file (PKCS#8, SEC1 or encrypted PKCS#8), or a pkcs11: URI.
    /// OpenSSL's encrypted files (PBKDF2-hmacWithSHA256, not a GM algorithm) are read for
    /// interoperability, with a note on stderr.
    #[arg(long, value_name = "KEY")]
    key: String,
    /// The PKCS#11 module profile for a pkcs11: key.
    #[arg(long, value_name = "FILE")]
    hsm_profile: Option<PathBuf>,
    #[command(flatten)]
    pass: PassArgs,
}

/// A loaded private key: software (from a key file) or a handle in a token.
enum LoadedKey {
    Soft(PrivateKey),
    Token(Box<hsm::HsmSigner>),
}

impl LoadedKey {
    fn public_key(&self) -> crypto::PublicKey {
        match self {
            LoadedKey::Soft(k) => k.public_key(),
            LoadedKey::Token(s) => crypto::Signer::public_key(s.as_ref()),
        }
    }

    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError> {
        match self {
            LoadedKey::Soft(k) => k.sign(id, msg, &SystemRandom),
            LoadedKey::Token(s) => crypto::Signer::sign(s.as_ref(), id, msg),
        }
    }

    fn decrypt(&self, data: &[u8], format: DecFormat) -> Result<crypto::Secret, CryptoError> {
        match (self, format) {
            (LoadedKey::Soft(k), DecFormat::Der) => sm2::decrypt(k, data, CipherFormat::Der),
            (LoadedKey::Soft(k), DecFormat::C1c3c2) => sm2::decrypt(k, data, CipherFormat::C1C3C2),
            (LoadedKey::Soft(k), DecFormat::C1c2c3Legacy) => sm2::decrypt_c1c2c3_legacy(k, data),
            (LoadedKey::Token(s), DecFormat::Der) => {
                crypto::Decrypter::decrypt(s.as_ref(), data, CipherFormat::Der)
            }
            (LoadedKey::Token(s), DecFormat::C1c3c2) => {
                crypto::Decrypter::decrypt(s.as_ref(), data, CipherFormat::C1C3C2)
            }
            (LoadedKey::Token(_), DecFormat::C1c2c3Legacy) => Err(CryptoError::Unsupported {
                what: "the legacy C1C2C3 order with a token key",
            }),
        }
    }
}

impl crypto::Signer for LoadedKey {
    fn public_key(&self) -> crypto::PublicKey {
        LoadedKey::public_key(self)
    }

    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError> {
        LoadedKey::sign(self, id, msg)
    }

    fn sign_digest(&self, e: &crypto::Digest) -> Result<Signature, CryptoError> {
        match self {
            LoadedKey::Soft(k) => k.sign_digest(e, &SystemRandom),
            LoadedKey::Token(s) => crypto::Signer::sign_digest(s.as_ref(), e),
        }
    }
}

impl crypto::Decrypter for LoadedKey {
    fn public_key(&self) -> crypto::PublicKey {
        LoadedKey::public_key(self)
    }

    fn decrypt(
        &self,
        ciphertext: &[u8],
        format: CipherFormat,
    ) -> Result<crypto::Secret, CryptoError> {
        match self {
            LoadedKey::Soft(k) => sm2::decrypt(k, ciphertext, format),
            LoadedKey::Token(s) => crypto::Decrypter::decrypt(s.as_ref(), ciphertext, format),
        }
    }
}

/// Loads a signing key named the CLI way: a `pkcs11:` URI with its module profile, or a key
/// file; `require_encrypted` refuses a key file that is not encrypted PKCS#8.
pub(crate) fn load_signer(
    key: &str,
    hsm_profile: Option<PathBuf>,
    pass: PassArgs,
    require_encrypted: bool,
) -> Result<Box<dyn crypto::Signer>, Failure> {
    Ok(Box::new(
        key_args(key, hsm_profile, pass, require_encrypted)?.load()?,
    ))
}

/// The CLI's key arguments for a configured key; `require_encrypted` refuses a key file that
/// is not encrypted PKCS#8.
fn key_args(
    key: &str,
    hsm_profile: Option<PathBuf>,
    pass: PassArgs,
    require_encrypted: bool,
) -> Result<KeyArgs, Failure> {
    if require_encrypted && !key.starts_with("pkcs11:") {
        let bytes = read_named("key", Path::new(key))?;
        if !bytes
            .windows(b"ENCRYPTED PRIVATE KEY".len())
            .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        {
            return Err(Failure::BadInput(format!(
                "key {key}: not an encrypted PKCS#8 key; a key file here must be encrypted (gmchain crypto keygen --encrypt)"
            )));
        }
    }
    Ok(KeyArgs {
        key: key.to_string(),
        hsm_profile,
        pass,
    })
}

/// Loads an SM2 decryption key named the CLI way: a `pkcs11:` URI with its module profile
/// (the decryption runs in the token), or a key file; `require_encrypted` refuses a key file
/// that is not encrypted PKCS#8.
pub(crate) fn load_decrypter(
    key: &str,
    hsm_profile: Option<PathBuf>,
    pass: PassArgs,
    require_encrypted: bool,
) -> Result<std::sync::Arc<dyn crypto::Decrypter>, Failure> {
    Ok(std::sync::Arc::new(
        key_args(key, hsm_profile, pass, require_encrypted)?.load()?,
    ))
}

impl KeyArgs {
    /// Loads the key as a boxed signer.
    pub(crate) fn signer(&self) -> Result<Box<dyn crypto::Signer>, Failure> {
        Ok(Box::new(self.load()?))
    }

    fn load(&self) -> Result<LoadedKey, Failure> {
        if self.key.starts_with("pkcs11:") {
            let profile = self.hsm_profile.clone().ok_or_else(|| {
                Failure::BadInput(format!(
                    "--key {}: a pkcs11: key needs --hsm-profile FILE",
                    self.key
                ))
            })?;
            let args = crate::cli_keys::TokenArgs {
                hsm_profile: profile,
                pin: self.pass.clone(),
                sessions: 1,
            };
            let (hsm, uri) = crate::cli_keys::open_for_key(&args, &self.key)?;
            let signer = hsm
                .signer(&uri)
                .map_err(|e| crate::cli_keys::hsm_failure(&self.key, e))?;
            return Ok(LoadedKey::Token(Box::new(signer)));
        }
        let path = Path::new(&self.key);
        let bytes = zeroize::Zeroizing::new(read_named("--key", path)?);
        let pass = self.pass.passphrase()?;
        let key = keys::decode_private_key(&bytes, pass.as_ref().map(|p| p.expose()))
            .map_err(|e| Failure::BadInput(format!("--key {}: {e}", path.display())))?;
        // An interop tool may read OpenSSL's files, but says when one uses a non-GM algorithm
        // (GM/T 0111 §7.1); a production node refuses them (node::config).
        if let Some(prf) = keys::encrypted_params(&bytes)
            .ok()
            .and_then(|p| keys::Pbkdf2Prf::from_oid(&p.prf))
            .filter(|prf| !prf.is_gm())
        {
            eprintln!(
                "gmchain: note: {} is protected with PBKDF2-{} ({}), not a GM algorithm: read for interoperability only (a production node refuses it; gmchain writes PBKDF2-HMAC-SM3)",
                path.display(),
                prf.name(),
                prf.oid()
            );
        }
        Ok(LoadedKey::Soft(key))
    }
}

/// The SM2 user ID (default 1234567812345678).
#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    /// User ID as text (default 1234567812345678).
    #[arg(long, conflicts_with = "hex_id")]
    id: Option<String>,
    /// User ID as hex, for IDs that are not text.
    #[arg(long)]
    hex_id: Option<String>,
}

impl IdArgs {
    pub(crate) fn user_id(&self) -> Result<UserId, Failure> {
        let bytes = match (&self.id, &self.hex_id) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(h)) => hex_arg("--hex-id", h)?,
            (None, None) => return Ok(UserId::default()),
        };
        UserId::new(bytes).map_err(|e| Failure::BadInput(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SigFormat {
    /// GM/T 0009 SM2Signature, DER.
    Der,
    /// 64 bytes r ‖ s.
    Raw,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CtFormat {
    /// GM/T 0009 SM2Cipher, DER (what OpenSSL reads and writes).
    Der,
    /// Raw C1 ‖ C3 ‖ C2 (GB/T 32918.4-2016).
    C1c3c2,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DecFormat {
    Der,
    C1c3c2,
    /// Raw C1 ‖ C2 ‖ C3 (legacy order; read only).
    C1c2c3Legacy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Direction {
    Encrypt,
    Decrypt,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Cbc,
    Ctr,
    Gcm,
    Ccm,
}

/// A cryptographic failure with its registry class: a tag, signature or ciphertext that does not
/// verify is 1, bad input 2, a token that is gone 3.
fn bad(e: CryptoError) -> Failure {
    Failure::coded(&e, e.to_string())
}

fn read_pubkey(path: &Path) -> Result<crypto::PublicKey, Failure> {
    let bytes = read_named("--pubkey", path)?;
    keys::decode_public_key(&bytes)
        .map_err(|e| Failure::BadInput(format!("--pubkey {}: {e}", path.display())))
}

fn read_sm4_key(path: &Path) -> Result<crypto_sm::sm4::Sm4Secret, Failure> {
    let raw = zeroize::Zeroizing::new(read_named("--key-file", path)?);
    let text = core::str::from_utf8(&raw).ok().map(str::trim);
    let bytes = match text {
        Some(t) if raw.len() != 16 && t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            zeroize::Zeroizing::new(
                hex::decode(t).map_err(|e| Failure::BadInput(format!("--key-file: {e}")))?,
            )
        }
        _ => zeroize::Zeroizing::new(raw.to_vec()),
    };
    crypto_sm::sm4::Sm4Secret::from_slice(&bytes).map_err(|_| {
        Failure::BadInput(format!(
            "--key-file {}: an SM4 key is 16 raw bytes or 32 hex digits, got {} bytes",
            path.display(),
            raw.len()
        ))
    })
}

pub(crate) fn run(cmd: CryptoCommand) -> CmdResult {
    let rng = SystemRandom;
    match cmd {
        CryptoCommand::Sm3 { file, out } => {
            let data = read_input(file.as_deref())?;
            write_output(
                out.as_deref(),
                format!("{}\n", crypto_sm::sm3::sm3(&data)).as_bytes(),
            )
        }
        CryptoCommand::Hmac {
            key_file,
            file,
            out,
        } => {
            let key = zeroize::Zeroizing::new(read_named("--key-file", &key_file)?);
            let data = read_input(file.as_deref())?;
            let mac = crypto_sm::sm3::hmac_sm3(&key, &data);
            write_output(out.as_deref(), format!("{}\n", hex::encode(mac)).as_bytes())
        }
        CryptoCommand::Keygen {
            encrypt,
            pass,
            iterations,
            pubout,
            out,
        } => {
            let key = PrivateKey::generate(&rng).map_err(bad)?;
            let pem = if encrypt {
                let pass = pass.passphrase()?.ok_or_else(|| {
                    Failure::BadInput("--encrypt needs --pass-file or --pass-env".into())
                })?;
                crypto::Secret::new(
                    keys::encode_encrypted_pkcs8_pem(&key, pass.expose(), iterations, &rng)
                        .map_err(bad)?
                        .into_bytes(),
                )
            } else {
                if pass.pass_file.is_some() || pass.pass_env.is_some() {
                    return Err(Failure::BadInput(
                        "a passphrase was given without --encrypt".into(),
                    ));
                }
                eprintln!(
                    "gmchain: warning: the private key is written unencrypted; use --encrypt for anything but tests"
                );
                keys::encode_pkcs8_pem(&key).map_err(bad)?
            };
            if let Some(p) = pubout {
                let pub_pem = keys::encode_public_key_pem(&key.public_key()).map_err(bad)?;
                write_file(&p, pub_pem.as_bytes(), false)?;
            }
            match out {
                Some(p) => write_file(&p, pem.expose(), true),
                None => write_output(None, pem.expose()),
            }
        }
        CryptoCommand::Pubkey { key, out } => {
            let k = key.load()?;
            let pem = keys::encode_public_key_pem(&k.public_key()).map_err(bad)?;
            write_output(out.as_deref(), pem.as_bytes())
        }
        CryptoCommand::Sign {
            key,
            id,
            format,
            file,
            out,
        } => {
            let k = key.load()?;
            let id = id.user_id()?;
            let data = read_input(file.as_deref())?;
            let sig = k.sign(&id, &data).map_err(bad)?;
            let bytes = match format {
                SigFormat::Der => sig.to_der(),
                SigFormat::Raw => sig.to_raw().to_vec(),
            };
            write_output(out.as_deref(), &bytes)
        }
        CryptoCommand::Verify {
            pubkey,
            sig,
            id,
            format,
            file,
        } => {
            let pk = read_pubkey(&pubkey)?;
            let id = id.user_id()?;
            let sig_bytes = read_named("--sig", &sig)?;
            let signature = match format {
                SigFormat::Der => Signature::from_der(&sig_bytes),
                SigFormat::Raw => Signature::from_raw(&sig_bytes),
            }
            .map_err(|e| Failure::BadInput(format!("--sig {}: {e}", sig.display())))?;
            let data = read_input(file.as_deref())?;
            match sm2::verify(&pk, &id, &data, &signature) {
                Ok(()) => {
                    println!("Signature OK");
                    Ok(())
                }
                Err(
                    e @ (CryptoError::SignatureInvalid | CryptoError::MalformedSignature { .. }),
                ) => Err(Failure::NotVerified(format!(
                    "{e}; check the user ID (default 1234567812345678) and the public key"
                ))),
                Err(e) => Err(bad(e)),
            }
        }
        CryptoCommand::Csr { key, subject, out } => {
            let pem = match key.load()? {
                LoadedKey::Soft(k) => {
                    let signer =
                        crypto_sm::SoftwareProvider::new(std::sync::Arc::new(SystemRandom))
                            .signer(k);
                    pki::csr::build(&subject, &signer)
                }
                LoadedKey::Token(s) => pki::csr::build(&subject, s.as_ref()),
            }
            .map_err(|e| Failure::coded(&e, e.to_string()))?;
            write_output(out.as_deref(), pem.as_bytes())
        }
        CryptoCommand::Encrypt {
            pubkey,
            format,
            file,
            out,
        } => {
            let pk = read_pubkey(&pubkey)?;
            let data = read_input(file.as_deref())?;
            let fmt = match format {
                CtFormat::Der => CipherFormat::Der,
                CtFormat::C1c3c2 => CipherFormat::C1C3C2,
            };
            let ct = sm2::encrypt(&pk, &data, fmt, &rng).map_err(bad)?;
            write_output(out.as_deref(), &ct)
        }
        CryptoCommand::Decrypt {
            key,
            format,
            file,
            out,
        } => {
            let k = key.load()?;
            let data = read_input(file.as_deref())?;
            let pt = k.decrypt(&data, format);
            match pt {
                Ok(pt) => write_output(out.as_deref(), pt.expose()),
                Err(e @ CryptoError::DecryptionFailed { .. }) => {
                    Err(Failure::NotVerified(e.to_string()))
                }
                Err(e) => Err(bad(e)),
            }
        }
        CryptoCommand::Sm4 {
            direction,
            mode,
            key_file,
            iv,
            aad,
            file,
            out,
        } => {
            let key = read_sm4_key(&key_file)?;
            let iv = hex_arg("--iv", &iv)?;
            let aad = aad
                .map(|a| hex_arg("--aad", &a))
                .transpose()?
                .unwrap_or_default();
            let mode = match mode {
                ModeArg::Cbc => Sm4Mode::Cbc,
                ModeArg::Ctr => Sm4Mode::Ctr,
                ModeArg::Gcm => Sm4Mode::Gcm,
                ModeArg::Ccm => Sm4Mode::Ccm,
            };
            let data = read_input(file.as_deref())?;
            match direction {
                Direction::Encrypt => {
                    let ct = crypto_sm::sm4::encrypt(&key, mode, &iv, &aad, &data).map_err(bad)?;
                    write_output(out.as_deref(), &ct)
                }
                Direction::Decrypt => match crypto_sm::sm4::decrypt(&key, mode, &iv, &aad, &data) {
                    Ok(pt) => write_output(out.as_deref(), pt.expose()),
                    Err(e @ (CryptoError::TagMismatch | CryptoError::BadPadding { .. })) => {
                        Err(Failure::NotVerified(e.to_string()))
                    }
                    Err(e) => Err(bad(e)),
                },
            }
        }
    }
}
