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
        #[arg(long, value_enum, default_value_t = UsageArg::Sign)]
        usage: UsageArg,
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
    let token = uri.token.clone().ok_or_else(|| {
        Failure::BadInput(format!(
            "--key {key}: the URI must name the token (pkcs11:token=LABEL;object=KEY)"
        ))
    })?;
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
                UsageArg::Encrypt => KeyUsage::Encryption,
            };
            let info = hsm
                .generate_sm2(&label, &id, usage)
                .map_err(|e| hsm_failure("C_GenerateKeyPair", e))?;
            println!("{}", info.uri);
            Ok(())
        }
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
