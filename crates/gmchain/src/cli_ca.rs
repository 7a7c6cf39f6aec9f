//! `gmchain ca …`: the certificate authority for CA admins.
//!
//! Every command that changes the CA holds the CA directory's exclusive lock, appends an entry
//! naming the operator to the signed audit log (also when it refuses), and prints the log's new
//! head so `audit-verify --expect-head` can later detect a truncated log. Its outputs (the
//! certificate, a generated key, a dual pair's envelope, the CRL) are checked writable before
//! anything changes and written after the entry says `done`; one that still fails then says
//! what was issued and how to get it.
//!
//! The CA's rules (issuance, renewal, revocation, CRLs, serials, validity, the audit entry of
//! each action) are `ca::Authority`'s. This module parses the arguments, reads requests,
//! passphrases and keys, opens the CA key, calls the library and prints; `key` opens or
//! creates the CA key, `holder` reads who a certificate is for and delivers what the CA
//! generated, `inspect` holds the commands that only read.

mod holder;
mod inspect;
mod key;

pub(crate) use inspect::validate_chain_files;

use crate::io::{PassArgs, read_named, write_file, write_output};
use crate::{CmdResult, Failure};
use ca::{Action, AuditDetail, Authority, CaDir, CaError, Context, PkiStep};
use clap::Subcommand;
use crypto_sm::rng::SystemRandom;
use holder::{EscrowDir, GeneratedKeyArgs, HolderArgs, HolderInput};
use key::{CaKeyArgs, OperatorArgs, open_signer};
use pki::{RevocationReason, Role, UnixTime};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Creates a CA directory: a root CA (self-signed), or an agency CA from a certificate the
    /// root issued (--cert, --chain).
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long)]
        name: String,
        /// The organisation this CA anchors.
        #[arg(long)]
        org: String,
        #[arg(long, default_value_t = 3650)]
        validity_days: u64,
        /// For an agency CA: its certificate, issued by `gmchain ca intermediate`.
        #[arg(long, requires = "chain")]
        cert: Option<PathBuf>,
        /// For an agency CA: the root certificate.
        #[arg(long)]
        chain: Option<PathBuf>,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Issues an agency (intermediate) CA certificate from the agency's CSR (its key stays in
    /// the agency's own token). Run on the root CA.
    ///
    /// Refused (exit 2, audited with the code) like `ca issue`: a key this CA recorded as
    /// compromised (CA_KEY_COMPROMISED), and any issuance once this CA recorded the compromise
    /// of its own key (CA_COMPROMISED).
    Intermediate {
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        holder: HolderArgs,
        #[command(flatten)]
        generated: GeneratedKeyArgs,
        /// The agency's organisation.
        #[arg(long)]
        org: String,
        #[arg(long, default_value_t = 1825)]
        validity_days: u64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Issues a certificate for a role from a CSR (proof of possession checked first).
    ///
    /// Refused (exit 2, audited with the code, naming the serial that recorded the compromise):
    /// a key that is the key of any certificate this CA revoked for key-compromise, or of a CA
    /// certificate it revoked for ca-compromise (CA_KEY_COMPROMISED: the holder needs a new
    /// key); and every issuance, whatever the key, once this CA revoked any other certificate
    /// for ca-compromise, i.e. recorded the compromise of its own key (CA_COMPROMISED). Such a
    /// CA's signature proves nothing, since whoever holds its key can sign the same
    /// certificate: re-key the CA (a new CA key and certificate in a new CA directory, for an
    /// agency from the root's `ca intermediate`). It still revokes and publishes CRLs. The
    /// same rule holds for --generate, both halves of --dual, `ca intermediate` and `ca renew`.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// node-sign, node-enc, admin, user, auditor, user-enc, admin-enc, auditor-enc.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        holder: HolderArgs,
        #[command(flatten)]
        generated: GeneratedKeyArgs,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
        /// With a signing role (node-sign, user, admin, auditor): also issue the encryption
        /// certificate of a dual pair (node-enc, user-enc, admin-enc, auditor-enc), whose key the
        /// CA generates and delivers as a GM/T 0009 enveloped key to the holder's signing key
        /// (`gmchain keys import-envelope` unwraps it inside the holder's token).
        #[arg(long)]
        dual: bool,
        /// Escrow passphrase for the encryption key of --dual (the escrow copy is encrypted PKCS#8).
        #[arg(long, value_name = "FILE")]
        escrow_pass_file: Option<PathBuf>,
        /// Output: the certificate (and, for --dual, which needs it, FILE.enc.pem and
        /// FILE.envelope.der beside it). Checked before anything is issued.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Renews a certificate: new serial, same subject and profile; a new key only with a new CSR.
    ///
    /// Refused (exit 2, audited with the code): a revoked certificate, whatever the reason
    /// (CA_RENEW_REVOKED: issue a new certificate instead); one already renewed
    /// (CA_RENEW_ALREADY_RENEWED); a renewal whose key, kept or from --csr, is the key of any
    /// certificate this CA revoked for key-compromise, or of a CA certificate it revoked for
    /// ca-compromise (CA_RENEW_KEY_COMPROMISED); and, once this CA has revoked any other
    /// certificate for ca-compromise (its own key was compromised), every renewal, with or
    /// without --csr (CA_COMPROMISED: re-key the CA; see `ca issue --help`).
    Renew {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        serial: String,
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Revokes a certificate. Takes effect for verifiers with the next CRL.
    ///
    /// A revocation for key-compromise (or for ca-compromise of a CA certificate) declares the
    /// key compromised: every other valid certificate of the same key (such as a renewal that
    /// kept it) is revoked with it, for the same reason.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        serial: String,
        /// unspecified, key-compromise, ca-compromise, affiliation-changed, superseded,
        /// cessation-of-operation, certificate-hold, privilege-withdrawn.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Publishes a CRL of every revocation (writes DIR/crl.pem, and --out).
    Crl {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 24)]
        next_update_hours: u64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key: CaKeyArgs,
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Lists issued certificates.
    List {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Prints one certificate (PEM) and its index entry.
    Show {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        serial: String,
    },
    /// Validates a certificate chain and its revocation status. Exit 1 if it does not validate.
    Verify {
        /// The trusted root certificate(s).
        #[arg(long, required = true)]
        anchor: Vec<PathBuf>,
        /// Intermediate (agency CA) certificates.
        #[arg(long)]
        untrusted: Vec<PathBuf>,
        /// CRLs of the issuers.
        #[arg(long)]
        crl: Vec<PathBuf>,
        /// The role the certificate must be valid for.
        #[arg(long)]
        role: String,
        /// Validation time (seconds since the epoch); default now.
        #[arg(long)]
        at: Option<u64>,
        /// The certificate.
        cert: PathBuf,
    },
    /// Verifies the CA audit log: hash chain and signatures; with --expect-head, no truncation.
    ///
    /// Only a refusal with code CA_KEY_UNAVAILABLE (the CA key could not be opened) may be
    /// unsigned; a later signed entry authenticates it through the hash chain. Unsigned entries
    /// after the last signed one (the unsigned tail) are authenticated by nothing: they are
    /// reported with the last signed head, and --strict fails on them.
    AuditVerify {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        expect_head: Option<String>,
        /// Fail (exit 1) if any entry after the last signed one is unsigned.
        #[arg(long)]
        strict: bool,
        /// Also check the head last anchored on the chain (`ca audit-anchor`), read from the
        /// node `--node` names: a truncation or rewrite since is caught without
        /// `--expect-head`.
        #[arg(long)]
        anchored: bool,
        #[command(flatten)]
        node: crate::client::NodeArgs,
    },
    /// Anchors the head of the CA's audit log on the chain (`supervision.anchor_log`, signed by
    /// an admin of the CA's organisation, `--key`/`--cert`): run it after each session or
    /// periodically, so that a later truncation or rewrite is visible on the chain.
    AuditAnchor {
        #[arg(long)]
        dir: PathBuf,
        /// The CA key's PIN or passphrase (it signs the anchor), from this file...
        #[arg(long, value_name = "FILE", conflicts_with = "ca_pass_env")]
        ca_pass_file: Option<PathBuf>,
        /// ... or this environment variable.
        #[arg(long, value_name = "VAR")]
        ca_pass_env: Option<String>,
        #[command(flatten)]
        sender: crate::cli_tx::SenderArgs,
        #[command(flatten)]
        node: crate::client::NodeArgs,
    },
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The system clock, for the CA.
struct SystemClock;

impl ca::Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime(now())
    }
}

fn pki_err(context: &str) -> impl FnOnce(pki::PkiError) -> Failure + '_ {
    move |e| Failure::coded(&e, format!("{context}: {e}"))
}

/// Words a CA error in one line: a refusal by the CA's certification rule starts with its code
/// (`CA_RENEW_REVOKED: …`), and what came from an option names the option. The exit status is
/// the code's class: a rule's refusal is 2, a damaged CA directory or a certificate that does
/// not verify 1, a CA key in a token that is gone 3.
fn ca_failure(e: CaError) -> Failure {
    let message = match &e {
        CaError::Pki {
            step: PkiStep::Request,
            source,
        } => format!("--csr: {source}"),
        CaError::ZeroValidity => "--validity-days must be at least 1".into(),
        CaError::ZeroCrlPeriod => "--next-update-hours must be at least 1".into(),
        CaError::AgencyKeyMismatch => {
            "--cert was issued for another key than the CA key given".into()
        }
        CaError::AgencyNotCaCertificate => "--cert is not an agency CA certificate".into(),
        CaError::AgencyNotSignedByRoot(source) => {
            format!("--cert is not signed by --chain: {source}")
        }
        _ => e.audit_detail(),
    };
    Failure::coded(&e, message)
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::NotVerified(m) | Failure::BadInput(m) | Failure::Unreachable(m) => m.clone(),
    }
}

/// A refused command is recorded with its one-line message.
impl AuditDetail for Failure {
    fn audit_detail(&self) -> String {
        failure_text(self)
    }
}

fn role(s: &str) -> Result<Role, Failure> {
    s.parse::<Role>().map_err(|_| {
        Failure::BadInput(format!("--role {s:?} is not a role: root-ca, agency-ca, node-sign, node-enc, admin, user, auditor"))
    })
}

/// Runs a state-changing command under the CA lock with its audit entry (`ca::CaDir::audited`):
/// `Done` with the command's detail, or `Refused` with the reason; a CA key that cannot be
/// opened is recorded as an unsigned `CA_KEY_UNAVAILABLE` refusal. Returns what `f` made: the
/// caller writes its outputs after the entry is recorded (checked by `f` before it changed
/// anything, see [`check_output`]), so an entry never says `refused` for what was done.
fn audited<T: AuditDetail>(
    dir: &Path,
    op: &OperatorArgs,
    pass: &PassArgs,
    action: Action,
    f: impl FnOnce(&Authority<'_>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let operator = op.name()?;
    let ca = CaDir::open(dir, true).map_err(ca_failure)?;
    let signer = match open_signer(dir, &ca.meta().key.clone(), pass) {
        Ok(s) => s,
        Err(e) => {
            // Recorded unsigned: the key that would sign the entry is what failed.
            let head = ca
                .record_key_unavailable(&SystemClock, &operator, action, &failure_text(&e))
                .map_err(ca_failure)?;
            eprintln!("audit head: {head}");
            return Err(e);
        }
    };
    let cx = Context {
        signer: signer.as_ref(),
        rng: &SystemRandom,
        clock: &SystemClock,
        operator: &operator,
    };
    let done = ca.audited(&cx, action, f).map_err(ca_failure)?;
    eprintln!("audit head: {}", done.head);
    done.result
}

/// Checks, before anything is issued, that an output file can be written: a file name whose
/// directory exists and takes a new file (a temporary file is created there and removed); the
/// file itself is not touched.
fn check_output(option: &str, path: &Path) -> Result<(), Failure> {
    if path.file_name().is_none() || path.is_dir() {
        return Err(Failure::BadInput(format!(
            "{option} {} is not a file name",
            path.display()
        )));
    }
    safefile::StagedFile::write(path, &[], safefile::Mode::PRIVATE)
        .map(drop)
        .map_err(|e| {
            let (_, _, source) = e.into_parts();
            Failure::BadInput(format!(
                "cannot write {option} {}: {source}",
                path.display()
            ))
        })
}

/// Checks every output of one command before anything is issued ([`check_output`] each), and
/// that they are distinct files outside the CA directory: two options naming one file, or an
/// output replacing one of the CA's own files (its key, its index), would lose what the command
/// made or break the CA. A generated private key never replaces an existing file.
fn check_outputs(ca_dir: &Path, outputs: &[(&str, &Path)]) -> Result<(), Failure> {
    let resolved = |path: &Path| -> Option<PathBuf> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Some(parent.canonicalize().ok()?.join(path.file_name()?))
    };
    let ca_dir = ca_dir
        .canonicalize()
        .map_err(|e| Failure::BadInput(format!("CA directory {}: {e}", ca_dir.display())))?;
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    for (option, path) in outputs {
        check_output(option, path)?;
        let Some(full) = resolved(path) else {
            return Err(Failure::BadInput(format!(
                "{option} {} is not a file name",
                path.display()
            )));
        };
        if full.starts_with(&ca_dir) {
            return Err(Failure::BadInput(format!(
                "{option} {} is inside the CA directory {}: write outputs elsewhere",
                path.display(),
                ca_dir.display()
            )));
        }
        if *option == "--key-out" && full.exists() {
            return Err(Failure::BadInput(format!(
                "--key-out {} exists: a generated key never replaces a file; choose a new name",
                path.display()
            )));
        }
        if let Some((other, _)) = seen.iter().find(|(_, p)| *p == full) {
            return Err(Failure::BadInput(format!(
                "{option} and {other} name the same file {}: each output needs its own",
                path.display()
            )));
        }
        seen.push((option, full));
    }
    Ok(())
}

/// The failure of an output written after the action was committed and recorded as done: says
/// what was made and how to get it. Exit 2, like any output that cannot be written.
fn undelivered(made: String, e: Failure) -> Failure {
    Failure::BadInput(format!("{made}, but {}", failure_text(&e)))
}

/// Writes a certificate the CA issued to --out or standard output; on failure, says that the
/// certificate `serial` was issued and recorded and how to get it.
fn deliver_certificate(
    dir: &Path,
    serial: &str,
    cert: &pki::Certificate,
    out: Option<&Path>,
) -> CmdResult {
    write_output(out, cert.to_pem().as_bytes()).map_err(|e| {
        undelivered(
            format!(
                "certificate serial {serial} was issued and recorded in the audit log (get it with \
                 `gmchain ca show --dir {} --serial {serial}`)",
                dir.display()
            ),
            e,
        )
    })
}

/// Delivers what an issuance made, after it was committed and recorded: the generated
/// private key first (it exists nowhere else), then the certificates and the envelope. On
/// failure, says what was issued and how to get it.
fn deliver_issued(
    dir: &Path,
    issued: &ca::Issued,
    input: Option<&HolderInput>,
    out: Option<&Path>,
) -> CmdResult {
    let serial = issued.certificate.serial().to_hex();
    if let Some(input) = input {
        input.deliver(issued.generated.as_ref()).map_err(|e| {
            undelivered(
                format!(
                    "certificate serial {serial} was issued and recorded in the audit log, but its \
                     private key was not delivered and is lost: revoke it (`gmchain ca revoke --dir \
                     {} --serial {serial} --reason superseded`) and issue again",
                    dir.display()
                ),
                e,
            )
        })?;
    }
    if let (Some(enc), Some(o)) = (&issued.encryption, out) {
        let enc_serial = enc.certificate.serial().to_hex();
        let roles = (
            issued.certificate.role().map_or("signing", |r| r.as_str()),
            enc.certificate.role().map_or("encryption", |r| r.as_str()),
        );
        let made = format!(
            "the dual pair ({} serial {serial}, {} serial {enc_serial}) was issued \
             and recorded in the audit log (get the certificates with `gmchain ca show --dir {} \
             --serial …`; the encryption key's escrow copy is {})",
            roles.0,
            roles.1,
            dir.display(),
            dir.join("escrow")
                .join(format!("{enc_serial}.pem"))
                .display()
        );
        write_file(
            &o.with_extension("enc.pem"),
            enc.certificate.to_pem().as_bytes(),
            false,
        )
        .map_err(|e| undelivered(made.clone(), e))?;
        write_file(&o.with_extension("envelope.der"), &enc.envelope, false)
            .map_err(|e| undelivered(made, e))?;
    }
    deliver_certificate(dir, &serial, &issued.certificate, out)
}

pub(crate) fn run(cmd: CaCommand) -> CmdResult {
    match cmd {
        CaCommand::Init {
            dir,
            name,
            org,
            validity_days,
            cert,
            chain,
            key,
            op,
        } => key::init(&dir, &name, &org, validity_days, cert, chain, &key, &op),
        CaCommand::Intermediate {
            dir,
            holder: h,
            generated,
            org,
            validity_days,
            out,
            key,
            op,
        } => {
            let mut input = None;
            let issued = audited(&dir, &op, &key.pass, Action::Intermediate, |ca| {
                if ca.dir().meta().kind != ca::CaKind::Root {
                    // Before the request is read, as the library would.
                    return Err(ca_failure(CaError::NotRoot));
                }
                let input = input.insert(HolderInput::read(&h, &generated)?);
                let mut outputs: Vec<(&str, &Path)> = Vec::new();
                if let Some(k) = input.key_out() {
                    outputs.push(("--key-out", k));
                }
                if let Some(o) = &out {
                    outputs.push(("--out", o));
                }
                check_outputs(ca.dir().path(), &outputs)?;
                ca.intermediate(input.holder(), &org, validity_days)
                    .map_err(ca_failure)
            })?;
            deliver_issued(&dir, &issued, input.as_ref(), out.as_deref())
        }
        CaCommand::Issue {
            dir,
            role: r,
            holder: h,
            generated,
            validity_days,
            dual,
            escrow_pass_file,
            out,
            key,
            op,
        } => {
            let mut input = None;
            let issued = audited(&dir, &op, &key.pass, Action::Issue, |ca| {
                let r = role(&r)?;
                if r.is_ca() {
                    return Err(Failure::BadInput(
                        "CA certificates come from `gmchain ca init` and `gmchain ca intermediate`"
                            .into(),
                    ));
                }
                if dual && r.encryption_pair().is_none() {
                    return Err(Failure::BadInput(format!(
                        "--dual issues a signing certificate plus its encryption pair (node-sign + node-enc, user + user-enc, admin + admin-enc, auditor + auditor-enc); {r} has none: use --role node-sign, user, admin or auditor"
                    )));
                }
                if dual && out.is_none() {
                    return Err(Failure::BadInput("--dual needs --out FILE: the encryption certificate and the enveloped key go to FILE.enc.pem and FILE.envelope.der beside it".into()));
                }
                // Checked before anything is issued, so a refusal leaves nothing behind.
                let escrow_pass_file = match (dual, escrow_pass_file) {
                    (true, None) => {
                        return Err(Failure::BadInput(
                            "--dual needs --escrow-pass-file for the escrow copy of the encryption key"
                                .into(),
                        ));
                    }
                    (true, Some(f)) => Some(f),
                    (false, _) => None,
                };
                let input = input.insert(HolderInput::read(&h, &generated)?);
                let (enc, envelope) = match (&out, dual) {
                    (Some(o), true) => (
                        Some(o.with_extension("enc.pem")),
                        Some(o.with_extension("envelope.der")),
                    ),
                    _ => (None, None),
                };
                let mut outputs: Vec<(&str, &Path)> = Vec::new();
                if let Some(k) = input.key_out() {
                    outputs.push(("--key-out", k));
                }
                if let Some(o) = &out {
                    outputs.push(("--out", o));
                }
                if let (Some(e), Some(v)) = (&enc, &envelope) {
                    outputs.push(("--out (its .enc.pem)", e));
                    outputs.push(("--out (its .envelope.der)", v));
                }
                check_outputs(ca.dir().path(), &outputs)?;
                match escrow_pass_file {
                    None => ca.issue(r, input.holder(), validity_days),
                    Some(f) => {
                        let passphrase = PassArgs {
                            pass_file: Some(f),
                            pass_env: None,
                        }
                        .passphrase()?
                        .ok_or_else(|| Failure::BadInput("--escrow-pass-file is empty".into()))?;
                        let store = EscrowDir(ca.dir().path().join("escrow"));
                        ca.issue_pair(
                            r,
                            input.holder(),
                            validity_days,
                            ca::Escrow {
                                passphrase: &passphrase,
                                store: &store,
                            },
                        )
                    }
                }
                .map_err(ca_failure)
            })?;
            deliver_issued(&dir, &issued, input.as_ref(), out.as_deref())
        }
        CaCommand::Renew {
            dir,
            serial,
            csr,
            validity_days,
            out,
            key,
            op,
        } => {
            let renewed = audited(&dir, &op, &key.pass, Action::Renew, |ca| {
                // A revoked or already renewed certificate is refused before the request is read.
                ca.renewable(&serial).map_err(ca_failure)?;
                let request = match &csr {
                    Some(path) => Some(read_named("--csr", path)?),
                    None => None,
                };
                if let Some(o) = &out {
                    check_outputs(ca.dir().path(), &[("--out", o)])?;
                }
                ca.renew(&serial, request.as_deref(), validity_days)
                    .map_err(ca_failure)
            })?;
            deliver_certificate(
                &dir,
                &renewed.certificate.serial().to_hex(),
                &renewed.certificate,
                out.as_deref(),
            )
        }
        CaCommand::Revoke {
            dir,
            serial,
            reason,
            key,
            op,
        } => {
            let revoked = audited(&dir, &op, &key.pass, Action::Revoke, |ca| {
                let why: RevocationReason = reason.parse().map_err(|_| Failure::BadInput(format!("--reason {reason:?} is not a CRL reason (e.g. key-compromise, superseded, cessation-of-operation)")))?;
                ca.revoke(&serial, why).map_err(ca_failure)
            })?;
            println!(
                "{}; publish a CRL with `gmchain ca crl` for verifiers to see it",
                revoked.audit_detail()
            );
            Ok(())
        }
        CaCommand::Crl {
            dir,
            next_update_hours,
            out,
            key,
            op,
        } => {
            let published = audited(&dir, &op, &key.pass, Action::Crl, |ca| {
                if let Some(o) = &out {
                    check_outputs(ca.dir().path(), &[("--out", o)])?;
                }
                ca.publish_crl(next_update_hours).map_err(ca_failure)
            })?;
            write_output(out.as_deref(), published.crl.to_pem().as_bytes()).map_err(|e| {
                undelivered(
                    format!(
                        "CRL number {} was published to {} and recorded in the audit log",
                        published.crl.number(),
                        dir.join("crl.pem").display()
                    ),
                    e,
                )
            })
        }
        CaCommand::List { dir } => inspect::list(&dir),
        CaCommand::Show { dir, serial } => inspect::show(&dir, &serial),
        CaCommand::Verify {
            anchor,
            untrusted,
            crl,
            role: r,
            at,
            cert,
        } => inspect::verify(&anchor, &untrusted, &crl, &r, at, &cert),
        CaCommand::AuditVerify {
            dir,
            expect_head,
            strict,
            anchored,
            node,
        } => {
            inspect::audit_verify(&dir, expect_head.as_deref(), strict)?;
            if anchored {
                let (path, cert) = inspect::audit_log_of(&dir)?;
                crate::cli_audit::check_anchored_head(&path, &auditlog::CA, &cert, &node)?;
            }
            Ok(())
        }
        CaCommand::AuditAnchor {
            dir,
            ca_pass_file,
            ca_pass_env,
            sender,
            node,
        } => {
            // Only an intact log is anchored, with the CA key's signature of the anchor.
            inspect::audit_verify(&dir, None, false)?;
            let (path, cert) = inspect::audit_log_of(&dir)?;
            let ca = CaDir::open(&dir, false).map_err(ca_failure)?;
            let pass = PassArgs {
                pass_file: ca_pass_file,
                pass_env: ca_pass_env,
            };
            let signer = key::open_signer(&dir, &ca.meta().key.clone(), &pass)?;
            crate::cli_audit::anchor_head(
                &path,
                &auditlog::CA,
                &cert,
                signer.as_ref(),
                &sender,
                &node,
            )
        }
    }
}
