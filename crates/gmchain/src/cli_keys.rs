//! `gmchain keys …`: keys inside a PKCS#11 token, through a module profile.

use crate::cli_crypto::{IdArgs, SigFormat};
use crate::io::{PassArgs, read_input, read_named, write_output};
use crate::{CmdResult, Failure};
use clap::{Subcommand, ValueEnum};
use crypto::{Secret, Signature, Signer};
use hsm::{Hsm, HsmError, KeyUri, KeyUsage, Profile, TokenSlot};
use std::path::{Path, PathBuf};

/// The module profile and the user PIN.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The PKCS#11 module profile (hsm-profiles/*.toml).
    #[arg(long, value_name = "FILE")]
    pub hsm_profile: PathBuf,
    /// The user PIN.
    #[command(flatten)]
    pub pin: PassArgs,
    /// Sessions in the pool.
    #[arg(long, default_value_t = 4)]
    pub sessions: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Initialises (erases) a token and sets its user PIN. SO PIN from --so-pass-file/--so-pass-env,
    /// user PIN from --pass-file/--pass-env.
    InitToken {
        #[arg(long, value_name = "FILE")]
        hsm_profile: PathBuf,
        /// The new token label (at most 32 bytes).
        #[arg(long)]
        label: String,
        /// Slot to initialise; default: the first uninitialised token.
        #[arg(long)]
        slot: Option<u64>,
        /// Re-initialise the token that currently has this label (erases its keys).
        #[arg(long, conflicts_with = "slot")]
        reinit: Option<String>,
        /// Security officer PIN file.
        #[arg(long, value_name = "FILE", conflicts_with = "so_pass_env")]
        so_pass_file: Option<PathBuf>,
        /// Security officer PIN environment variable.
        #[arg(long, value_name = "VAR")]
        so_pass_env: Option<String>,
        #[command(flatten)]
        pin: PassArgs,
    },
    /// Generates an SM2 key pair inside the token (sensitive, never extractable).
    Generate {
        #[command(flatten)]
        token: TokenArgs,
        /// Token label.
        #[arg(long)]
        token_label: String,
        /// Key label.
        #[arg(long)]
        label: String,
        /// Key id (CKA_ID), hex; default: SM3 of the public key's first 8 bytes is not used, an id is random.
        #[arg(long)]
        id: Option<String>,
        /// What the key is for; a signing key cannot decrypt and an encryption key cannot sign.
        /// `sign-unwrap`: a signing key that also unwraps (CKA_UNWRAP, never CKA_DECRYPT), the
        /// holder's key of a dual pair, which opens its encryption key's GM/T 0009 envelope
        /// inside the token (`keys import-envelope`).
        #[arg(long, value_enum, default_value_t = UsageArg::Sign)]
        usage: UsageArg,
    },
    /// Imports the encryption key of a dual pair (`gmchain ca issue --dual`): the GM/T 0009
    /// envelope is unwrapped inside the token with the holder's signing key (generated with
    /// `--usage sign-unwrap`), so the encryption private key never exists in host memory. The
    /// key made decrypts only, is sensitive and never extractable, and is checked against the
    /// encryption certificate before success is reported. A token whose profile names no
    /// envelope mechanisms (`mechanisms.sm2_unwrap`, `sm4_ecb_unwrap`) is refused: gmchain never
    /// opens an envelope in software to import it.
    ImportEnvelope {
        #[command(flatten)]
        token: TokenArgs,
        /// The token's label; optional when --key names it (token=…), and must agree with it.
        #[arg(long, value_name = "LABEL")]
        token_label: Option<String>,
        /// The holder's signing key, as a pkcs11: URI (object=…).
        #[arg(long)]
        key: String,
        /// The envelope (DER SM2EnvelopedKey, FILE.envelope.der of `ca issue --dual`).
        #[arg(long, value_name = "FILE")]
        envelope: PathBuf,
        /// The encryption certificate (PEM or DER, FILE.enc.pem of `ca issue --dual`).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Label of the imported key.
        #[arg(long)]
        label: String,
        /// Key id (CKA_ID), hex; default random.
        #[arg(long)]
        id: Option<String>,
    },
    /// Lists the SM2 keys in the token.
    List {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        token_label: String,
    },
    /// Prints a key's public key (SPKI PEM).
    Pubkey {
        #[command(flatten)]
        token: TokenArgs,
        /// The key, as a pkcs11: URI (token=…;object=…).
        #[arg(long)]
        key: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Signs FILE inside the token.
    Sign {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        key: String,
        #[command(flatten)]
        id: IdArgs,
        #[arg(long, value_enum, default_value_t = SigFormat::Der)]
        format: SigFormat,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verifies a signature on FILE inside the token. Exit 1 if it does not verify.
    Verify {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        key: String,
        #[arg(long, value_name = "FILE")]
        sig: PathBuf,
        #[command(flatten)]
        id: IdArgs,
        #[arg(long, value_enum, default_value_t = SigFormat::Der)]
        format: SigFormat,
        file: Option<PathBuf>,
    },
    /// Writes a PKCS#10 request for the key, signed inside the token, for the CA.
    Csr {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        key: String,
        /// RFC 4514 subject, e.g. "CN=node-1,OU=node,O=Agency A" (the CA's profile decides O and OU).
        #[arg(long)]
        subject: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Destroys the key (private and public objects).
    Delete {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        key: String,
    },
    /// Checks the module, the mechanisms the profile names, and every private key's protection
    /// attributes; prints a table. Exit 1 if a row fails.
    Check {
        #[command(flatten)]
        token: TokenArgs,
        #[arg(long)]
        token_label: String,
        /// Check only this key.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum UsageArg {
    Sign,
    SignUnwrap,
    Encrypt,
}

/// Maps a token error to its registry class: an unreachable token or a module that cannot be
/// loaded 3, a token's failed verification 1, anything else bad input 2.
pub(crate) fn hsm_failure(context: &str, e: HsmError) -> Failure {
    Failure::coded(&e, format!("{context}: {e}"))
}

pub(crate) fn load_profile(path: &Path) -> Result<Profile, Failure> {
    Profile::load(path)
        .map_err(|e| Failure::BadInput(format!("--hsm-profile {}: {e}", path.display())))
}

pub(crate) fn parse_uri(s: &str) -> Result<KeyUri, Failure> {
    KeyUri::parse(s).map_err(|e| Failure::BadInput(format!("--key {s}: {e}")))
}

fn pin_source(args: &PassArgs, uri: Option<&KeyUri>) -> Result<Option<Secret>, Failure> {
    if let Some(p) = args.passphrase()? {
        return Ok(Some(p));
    }
    // RFC 7512 pin-source=FILE is accepted; pin-value never is (the URI parser refuses it).
    if let Some(path) = uri.and_then(|u| u.pin_source.clone()) {
        let pa = PassArgs {
            pass_file: Some(path),
            pass_env: None,
        };
        return pa.passphrase();
    }
    Ok(None)
}

pub(crate) fn open(
    args: &TokenArgs,
    token_label: &str,
    uri: Option<&KeyUri>,
) -> Result<Hsm, Failure> {
    let profile = load_profile(&args.hsm_profile)?;
    let pin = pin_source(&args.pin, uri)?;
    Hsm::open(&profile, token_label, pin, args.sessions)
        .map_err(|e| hsm_failure(&format!("token {token_label:?}"), e))
}

pub(crate) fn open_for_key(args: &TokenArgs, key: &str) -> Result<(Hsm, KeyUri), Failure> {
    let uri = parse_uri(key)?;
    let token = gmchain_sdk::token_label(&uri)
        .map_err(|_| {
            Failure::BadInput(format!(
                "--key {key}: the URI must name the token (pkcs11:token=LABEL;object=KEY)"
            ))
        })?
        .to_string();
    let hsm = open(args, &token, Some(&uri))?;
    Ok((hsm, uri))
}

fn so_pin(file: &Option<PathBuf>, env: &Option<String>) -> Result<Secret, Failure> {
    let pa = PassArgs {
        pass_file: file.clone(),
        pass_env: env.clone(),
    };
    pa.passphrase()?.ok_or_else(|| {
        Failure::BadInput("init-token needs the SO PIN: --so-pass-file or --so-pass-env".into())
    })
}

pub(crate) fn run(cmd: KeysCommand) -> CmdResult {
    match cmd {
        KeysCommand::InitToken {
            hsm_profile,
            label,
            slot,
            reinit,
            so_pass_file,
            so_pass_env,
            pin,
        } => {
            let profile = load_profile(&hsm_profile)?;
            let so = so_pin(&so_pass_file, &so_pass_env)?;
            let user = pin.passphrase()?.ok_or_else(|| {
                Failure::BadInput("init-token needs the user PIN: --pass-file or --pass-env".into())
            })?;
            let target = match (slot, reinit) {
                (Some(s), _) => TokenSlot::Id(s),
                (None, Some(l)) => TokenSlot::Label(l),
                (None, None) => TokenSlot::FirstUninitialized,
            };
            Hsm::init_token(&profile, target, &so, &label)
                .map_err(|e| hsm_failure("C_InitToken", e))?;
            Hsm::init_pin(&profile, &label, &so, &user).map_err(|e| hsm_failure("C_InitPIN", e))?;
            println!("token {label:?} initialised; user PIN set");
            Ok(())
        }
        KeysCommand::Generate {
            token,
            token_label,
            label,
            id,
            usage,
        } => {
            let hsm = open(&token, &token_label, None)?;
            let id = match id {
                Some(h) => crate::io::hex_arg("--id", &h)?,
                None => hsm
                    .random(8)
                    .map_err(|e| hsm_failure("C_GenerateRandom", e))?,
            };
            let usage = match usage {
                UsageArg::Sign => KeyUsage::Signing,
                UsageArg::SignUnwrap => KeyUsage::SigningAndUnwrap,
                UsageArg::Encrypt => KeyUsage::Encryption,
            };
            let info = hsm
                .generate_sm2(&label, &id, usage)
                .map_err(|e| hsm_failure("C_GenerateKeyPair", e))?;
            println!("{}", info.uri);
            Ok(())
        }
        KeysCommand::ImportEnvelope {
            token,
            token_label,
            key,
            envelope,
            cert,
            label,
            id,
        } => import_envelope(&token, token_label, &key, &envelope, &cert, &label, id),
        KeysCommand::List { token, token_label } => {
            let hsm = open(&token, &token_label, None)?;
            let keys = hsm.list().map_err(|e| hsm_failure("C_FindObjects", e))?;
            println!("{:<24} {:<18} {:<8} URI", "LABEL", "ID", "USAGE");
            for k in keys {
                let usage = match (k.sign, k.decrypt) {
                    (true, false) => "sign",
                    (false, true) => "encrypt",
                    (true, true) => "sign+dec",
                    (false, false) => "none",
                };
                println!(
                    "{:<24} {:<18} {:<8} {}",
                    k.label,
                    hex::encode(&k.id),
                    usage,
                    k.uri
                );
            }
            Ok(())
        }
        KeysCommand::Pubkey { token, key, out } => {
            let (hsm, uri) = open_for_key(&token, &key)?;
            let pk = hsm.public_key(&uri).map_err(|e| hsm_failure(&key, e))?;
            let pem = crypto_sm::keys::encode_public_key_pem(&pk)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            write_output(out.as_deref(), pem.as_bytes())
        }
        KeysCommand::Sign {
            token,
            key,
            id,
            format,
            file,
            out,
        } => {
            let (hsm, uri) = open_for_key(&token, &key)?;
            let signer = hsm.signer(&uri).map_err(|e| hsm_failure(&key, e))?;
            let data = read_input(file.as_deref())?;
            let sig = signer
                .sign(&id.user_id()?, &data)
                .map_err(|e| Failure::coded(&e, format!("{key}: {e}")))?;
            let bytes = match format {
                SigFormat::Der => sig.to_der(),
                SigFormat::Raw => sig.to_raw().to_vec(),
            };
            write_output(out.as_deref(), &bytes)
        }
        KeysCommand::Verify {
            token,
            key,
            sig,
            id,
            format,
            file,
        } => {
            let (hsm, uri) = open_for_key(&token, &key)?;
            let raw = read_named("--sig", &sig)?;
            let signature = match format {
                SigFormat::Der => Signature::from_der(&raw),
                SigFormat::Raw => Signature::from_raw(&raw),
            }
            .map_err(|e| Failure::BadInput(format!("--sig {}: {e}", sig.display())))?;
            let data = read_input(file.as_deref())?;
            match hsm.verify(&uri, &id.user_id()?, &data, &signature) {
                Ok(()) => {
                    println!("Signature OK");
                    Ok(())
                }
                Err(HsmError::Crypto(crypto::CryptoError::SignatureInvalid)) => Err(Failure::NotVerified(
                    "the token says the SM2 signature does not verify; check the user ID (default 1234567812345678)".into(),
                )),
                Err(e) => Err(hsm_failure(&key, e)),
            }
        }
        KeysCommand::Csr {
            token,
            key,
            subject,
            out,
        } => {
            let (hsm, uri) = open_for_key(&token, &key)?;
            let signer = hsm.signer(&uri).map_err(|e| hsm_failure(&key, e))?;
            let pem = pki::csr::build(&subject, &signer)
                .map_err(|e| Failure::coded(&e, e.to_string()))?;
            write_output(out.as_deref(), pem.as_bytes())
        }
        KeysCommand::Delete { token, key } => {
            let (hsm, uri) = open_for_key(&token, &key)?;
            let n = hsm.delete(&uri).map_err(|e| hsm_failure(&key, e))?;
            println!("destroyed {n} object(s)");
            Ok(())
        }
        KeysCommand::Check {
            token,
            token_label,
            key,
        } => {
            let uri = key.as_deref().map(parse_uri).transpose()?;
            let hsm = open(&token, &token_label, uri.as_ref())?;
            let check = hsm
                .self_check(uri.as_ref())
                .map_err(|e| hsm_failure("self-check", e))?;
            println!(
                "profile: {}   module: {}   token: {}",
                check.profile, check.module, check.token
            );
            println!("assurance: {}", check.assurance());
            let w_item = check
                .rows
                .iter()
                .map(|r| r.item.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let w_exp = check
                .rows
                .iter()
                .map(|r| r.expected.len())
                .max()
                .unwrap_or(8)
                .clamp(8, 48);
            println!(
                "{:<4} {:<w_item$} {:<w_exp$} OBSERVED",
                "OK", "ITEM", "EXPECTED"
            );
            for r in &check.rows {
                println!(
                    "{:<4} {:<w_item$} {:<w_exp$} {}",
                    if r.ok { "ok" } else { "FAIL" },
                    r.item,
                    r.expected,
                    r.observed
                );
            }
            if check.passed() {
                Ok(())
            } else {
                Err(Failure::NotVerified(format!(
                    "{} self-check row(s) failed",
                    check.failures().count()
                )))
            }
        }
    }
}

fn import_envelope(
    token: &TokenArgs,
    token_label: Option<String>,
    key: &str,
    envelope: &Path,
    cert: &Path,
    label: &str,
    id: Option<String>,
) -> CmdResult {
    let mut uri = parse_uri(key)?;
    match (&uri.token, token_label) {
        (Some(t), Some(l)) if *t != l => {
            return Err(Failure::BadInput(format!(
                "--key names token {t:?} but --token-label is {l:?}"
            )));
        }
        (None, Some(l)) => uri.token = Some(l),
        (None, None) => {
            return Err(Failure::BadInput(format!(
                "--key {key}: name the token (token=LABEL in the URI, or --token-label)"
            )));
        }
        _ => {}
    }
    let enc_cert = crate::io::read_cert("--cert", cert)?;
    if !enc_cert.role().is_some_and(|r| r.is_encryption()) {
        return Err(Failure::BadInput(format!(
            "--cert {}: {} is a {} certificate, not the encryption half of a dual pair (node-enc, user-enc, admin-enc or auditor-enc)",
            cert.display(),
            enc_cert.subject(),
            enc_cert.role().map_or("role-less", |r| r.as_str())
        )));
    }
    let der = read_named("--envelope", envelope)?;
    let parts = pki::envelope::parse(&der)
        .map_err(|e| Failure::BadInput(format!("--envelope {}: {e}", envelope.display())))?;
    let token_name = uri.token.clone().unwrap_or_default();
    let hsm = open(token, &token_name, Some(&uri))?;
    let id = match id {
        Some(h) => crate::io::hex_arg("--id", &h)?,
        None => hsm
            .random(8)
            .map_err(|e| hsm_failure("C_GenerateRandom", e))?,
    };
    let info = hsm
        .import_envelope(
            &uri,
            &hsm::EnvelopedKey {
                sym_encrypted: &parts.sym_encrypted,
                public_key: parts.public_key,
                encrypted_private_key: &parts.encrypted_private_key,
            },
            &enc_cert.public_key(),
            label,
            &id,
        )
        .map_err(|e| hsm_failure("import-envelope", e))?;
    println!("{}", info.uri);
    Ok(())
}
