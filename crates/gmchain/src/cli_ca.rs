//! `gmchain ca …`: the certificate authority for CA admins.
//!
//! Every command that changes the CA holds the CA directory's exclusive lock, appends an entry
//! naming the operator to the signed audit log (also when it refuses), and prints the log's new
//! head so `audit-verify --expect-head` can later detect a truncated log.

use crate::cli_keys::{TokenArgs, hsm_failure, load_profile, parse_uri};
use crate::io::{PassArgs, read_named, write_file, write_output};
use crate::{CmdResult, Failure};
use ca::renewal::{self, RenewalKey, check_renewal};
use ca::{CaDir, CaKind, CaMeta, IndexEntry, KeyLocation, Outcome, Status, UnsignedTail};
use clap::Subcommand;
use crypto::{Secret, Signer};
use crypto_sm::rng::SystemRandom;
use pki::{
    Certificate, Crl, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, TrustAnchor,
    UnixTime, Validity,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DAY: u64 = 86_400;

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
    pass: PassArgs,
}

/// Who runs the command (recorded in the audit log).
#[derive(Debug, clap::Args)]
pub(crate) struct OperatorArgs {
    /// The operator's name; default: $GMCHAIN_OPERATOR, then $USER.
    #[arg(long)]
    operator: Option<String>,
}

impl OperatorArgs {
    fn name(&self) -> Result<String, Failure> {
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

/// The subject of an issuance, resolved.
struct Holder {
    cn: String,
    public_key: crypto::PublicKey,
    generated: Option<(crypto_sm::sm2::PrivateKey, PathBuf, Secret)>,
}

fn holder(
    h: &HolderArgs,
    g: &GeneratedKeyArgs,
    r: Role,
    organisation: &str,
) -> Result<Holder, Failure> {
    if let Some(path) = &h.csr {
        let req = pki::csr::verify(&read_named("--csr", path)?).map_err(pki_err("--csr"))?;
        let cn = pki::csr::check_for_issuance(&req, r, organisation).map_err(pki_err("--csr"))?;
        return Ok(Holder {
            cn,
            public_key: req.public_key,
            generated: None,
        });
    }
    let (Some(name), Some(out), Some(pass_file)) = (&g.name, &g.key_out, &g.key_pass_file) else {
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
    let key = crypto_sm::sm2::PrivateKey::generate(&SystemRandom)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(Holder {
        cn: name.clone(),
        public_key: key.public_key(),
        generated: Some((key, out.clone(), pass)),
    })
}

/// Writes a generated key, encrypted, once its certificate exists.
fn deliver(h: Holder) -> Result<(), Failure> {
    if let Some((key, path, pass)) = h.generated {
        let pem = crypto_sm::keys::encode_encrypted_pkcs8_pem(
            &key,
            pass.expose(),
            crypto_sm::keys::DEFAULT_ITERATIONS,
            &SystemRandom,
        )
        .map_err(|e| Failure::BadInput(format!("--key-out: {e}")))?;
        write_file(&path, pem.as_bytes(), true)?;
    }
    Ok(())
}

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
        /// node-sign, node-enc, admin, user, auditor.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        holder: HolderArgs,
        #[command(flatten)]
        generated: GeneratedKeyArgs,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
        /// With a node-sign role: also issue the encryption certificate of a dual pair, whose key
        /// the CA generates and delivers as a GM/T 0009 enveloped key to the holder's signing key.
        #[arg(long)]
        dual: bool,
        /// Escrow passphrase for the encryption key of --dual (the escrow copy is encrypted PKCS#8).
        #[arg(long, value_name = "FILE")]
        escrow_pass_file: Option<PathBuf>,
        /// Output: the certificate (and, for --dual, FILE.enc.pem and FILE.envelope.der beside it).
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
    },
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn pki_err(context: &str) -> impl FnOnce(pki::PkiError) -> Failure + '_ {
    move |e| Failure::BadInput(format!("{context}: {e}"))
}

fn ca_err(e: ca::CaError) -> Failure {
    Failure::BadInput(e.to_string())
}

/// A refusal by one of the CA's rules: the message starts with its code, so the audit entry
/// records it (`CA_RENEW_REVOKED: …`).
fn coded(e: ca::CaError) -> Failure {
    Failure::BadInput(format!("{}: {e}", e.code()))
}

/// Reads a certificate the CA issued, checking it is the one the index recorded.
fn stored_cert(ca: &CaDir, e: &IndexEntry) -> Result<Certificate, ca::CaError> {
    let name = format!("certs/{}.pem", e.serial);
    let corrupt = |reason: String| ca::CaError::Corrupt {
        path: ca.path().join(&name),
        reason,
    };
    let cert = Certificate::from_pem(&ca.read_file(&name)?).map_err(|x| corrupt(x.to_string()))?;
    if cert.fingerprint().to_hex() != e.fingerprint {
        return Err(corrupt(format!(
            "not the certificate the index recorded for serial {}",
            e.serial
        )));
    }
    Ok(cert)
}

fn role(s: &str) -> Result<Role, Failure> {
    s.parse::<Role>().map_err(|_| {
        Failure::BadInput(format!("--role {s:?} is not a role: root-ca, agency-ca, node-sign, node-enc, admin, user, auditor"))
    })
}

/// Opens the CA key as a signer.
fn open_signer(dir: &Path, loc: &KeyLocation, pass: &PassArgs) -> Result<Box<dyn Signer>, Failure> {
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

/// Runs a state-changing command under the CA lock with its audit entry: `Done` with the
/// command's detail, or `Refused` with the reason.
fn audited(
    dir: &Path,
    op: &OperatorArgs,
    pass: &PassArgs,
    action: &str,
    f: impl FnOnce(&CaDir, &dyn Signer) -> Result<String, Failure>,
) -> CmdResult {
    let operator = op.name()?;
    let ca = CaDir::open(dir, true).map_err(ca_err)?;
    let signer = match open_signer(dir, &ca.meta().key.clone(), pass) {
        Ok(s) => s,
        Err(e) => {
            // Recorded unsigned: the key that would sign the entry is what failed.
            let head = ca
                .audit()
                .append(
                    now(),
                    &operator,
                    action,
                    Outcome::Refused,
                    &format!(
                        "{}: the CA key could not be opened: {}",
                        ca::KEY_UNAVAILABLE,
                        failure_text(&e)
                    ),
                    None,
                )
                .map_err(ca_err)?;
            eprintln!("audit head: {head}");
            return Err(e);
        }
    };
    let result = f(&ca, signer.as_ref());
    let (outcome, detail) = match &result {
        Ok(d) => (Outcome::Done, d.clone()),
        Err(e) => (Outcome::Refused, failure_text(e)),
    };
    let head = ca
        .audit()
        .append(
            now(),
            &operator,
            action,
            outcome,
            &detail,
            Some(signer.as_ref()),
        )
        .map_err(ca_err)?;
    eprintln!("audit head: {head}");
    result.map(|_| ())
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::NotVerified(m) | Failure::BadInput(m) | Failure::Unreachable(m) => m.clone(),
    }
}

fn ca_cert(ca: &CaDir) -> Result<Certificate, Failure> {
    Certificate::from_pem(&ca.read_file("ca.pem").map_err(ca_err)?).map_err(pki_err("ca.pem"))
}

fn fresh_serial(index: &ca::Index) -> Result<Serial, Failure> {
    for _ in 0..8 {
        let s = Serial::random(&SystemRandom).map_err(pki_err("serial"))?;
        if !index.contains(&s.to_hex()) {
            return Ok(s);
        }
    }
    Err(Failure::BadInput("could not draw an unused serial".into()))
}

fn record(
    ca: &CaDir,
    index: &mut ca::Index,
    cert: &Certificate,
    role: Role,
) -> Result<(), Failure> {
    let v = cert.validity();
    let serial = cert.serial().to_hex();
    ca.write_cert(&serial, cert.to_pem().as_bytes())
        .map_err(ca_err)?;
    index
        .add(IndexEntry {
            serial,
            subject: cert.subject(),
            role: role.as_str().to_string(),
            not_before: v.not_before.0,
            not_after: v.not_after.0,
            fingerprint: cert.fingerprint().to_hex(),
            status: Status::Valid,
            renews: None,
            renewed_by: None,
            pair: None,
        })
        .map_err(ca_err)
}

fn validity(days: u64, issuer: Option<&Certificate>) -> Result<Validity, Failure> {
    if days == 0 {
        return Err(Failure::BadInput(
            "--validity-days must be at least 1".into(),
        ));
    }
    let start = now().saturating_sub(300); // tolerate small clock skew between machines
    let mut end = start + days * DAY;
    if let Some(i) = issuer {
        // Never outlive the issuer.
        end = end.min(i.validity().not_after.0);
    }
    Ok(Validity {
        not_before: UnixTime(start),
        not_after: UnixTime(end),
    })
}

/// Applies the CA's rule for a first issuance of `key` (`ca::renewal::check_issuance`: not a
/// key this CA recorded as compromised, and not after the CA recorded its own compromise) to
/// the index the certificate then goes into.
fn check_issuance(ca: &CaDir, index: &ca::Index, key: &crypto::PublicKey) -> Result<(), Failure> {
    renewal::check_issuance(index, key, |e| stored_cert(ca, e).map(|c| c.public_key()))
        .map_err(coded)
}

fn issue_for(
    ca: &CaDir,
    signer: &dyn Signer,
    holder: &Holder,
    r: Role,
    organisation: &str,
    days: u64,
) -> Result<Certificate, Failure> {
    let issuer = ca_cert(ca)?;
    let cn = holder.cn.clone();
    let mut index = ca.read_index().map_err(ca_err)?;
    check_issuance(ca, &index, &holder.public_key)?;
    let serial = fresh_serial(&index)?;
    let cert = pki::issue(
        &issuer,
        signer,
        &IssueRequest {
            role: r,
            common_name: &cn,
            organisation,
            public_key: &holder.public_key,
            serial,
            validity: validity(days, Some(&issuer))?,
        },
    )
    .map_err(pki_err("issue"))?;
    record(ca, &mut index, &cert, r)?;
    ca.write_index(&index).map_err(ca_err)?;
    Ok(cert)
}

/// Validates `leaf` for `role` against the anchors, intermediates and CRLs in these files (plus
/// `carried` intermediates, untrusted like the files): what `gmchain ca verify` does, shared with
/// `gmchain conformance verify-report`. Unreadable files are bad input; the chain's own verdict
/// is returned for the caller to word.
pub(crate) fn validate_chain_files(
    leaf: &Certificate,
    carried: &[Certificate],
    anchor: &[PathBuf],
    untrusted: &[PathBuf],
    crl: &[PathBuf],
    at: UnixTime,
    role: Role,
) -> Result<Result<pki::ValidatedChain, pki::ChainError>, Failure> {
    let load_cert = |p: &PathBuf| {
        Certificate::from_pem(&read_named("certificate", p)?)
            .map_err(pki_err(&p.display().to_string()))
    };
    let anchors = anchor
        .iter()
        .map(|p| {
            load_cert(p).map(|c| TrustAnchor {
                cert: c,
                user_id: crypto::UserId::default(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut inter = untrusted
        .iter()
        .map(&load_cert)
        .collect::<Result<Vec<_>, _>>()?;
    inter.extend_from_slice(carried);
    let crls = crl
        .iter()
        .map(|p| Crl::from_pem(&read_named("--crl", p)?).map_err(pki_err(&p.display().to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pki::validate_chain(leaf, &inter, &anchors, &crls, at, role))
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
        } => init(&dir, &name, &org, validity_days, cert, chain, &key, &op),
        CaCommand::Intermediate {
            dir,
            holder: h,
            generated,
            org,
            validity_days,
            out,
            key,
            op,
        } => audited(&dir, &op, &key.pass, "intermediate", |ca, signer| {
            if ca.meta().kind != CaKind::Root {
                return Err(Failure::BadInput(
                    "only a root CA issues agency CA certificates".into(),
                ));
            }
            let hold = holder(&h, &generated, Role::AgencyCa, &org)?;
            let cert = issue_for(ca, signer, &hold, Role::AgencyCa, &org, validity_days)?;
            deliver(hold)?;
            write_output(out.as_deref(), cert.to_pem().as_bytes())?;
            Ok(format!(
                "agency CA {} serial {}",
                cert.subject(),
                cert.serial()
            ))
        }),
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
            audited(&dir, &op, &key.pass, "issue", |ca, signer| {
                let r = role(&r)?;
                if matches!(r, Role::RootCa | Role::AgencyCa) {
                    return Err(Failure::BadInput(
                        "CA certificates come from `gmchain ca init` and `gmchain ca intermediate`"
                            .into(),
                    ));
                }
                if dual && r != Role::NodeSign {
                    return Err(Failure::BadInput("--dual issues a node-sign certificate plus its node-enc pair: use --role node-sign".into()));
                }
                // Checked before anything is issued, so a refusal leaves nothing behind.
                let escrow = match (dual, &escrow_pass_file) {
                    (true, None) => return Err(Failure::BadInput(
                        "--dual needs --escrow-pass-file for the escrow copy of the encryption key"
                            .into(),
                    )),
                    (true, Some(f)) => Some(f),
                    (false, _) => None,
                };
                let org = ca.meta().organisation.clone();
                let hold = holder(&h, &generated, r, &org)?;
                let cert = issue_for(ca, signer, &hold, r, &org, validity_days)?;
                deliver(hold)?;
                let mut detail =
                    format!("{} {} serial {}", r.as_str(), cert.subject(), cert.serial());
                if let Some(escrow) = escrow {
                    let enc = issue_dual(ca, signer, &cert, escrow, validity_days)?;
                    detail.push_str(&format!("; node-enc serial {}", enc.0.serial()));
                    if let Some(o) = &out {
                        write_file(
                            &o.with_extension("enc.pem"),
                            enc.0.to_pem().as_bytes(),
                            false,
                        )?;
                        write_file(&o.with_extension("envelope.der"), &enc.1, false)?;
                    }
                }
                write_output(out.as_deref(), cert.to_pem().as_bytes())?;
                Ok(detail)
            })
        }
        CaCommand::Renew {
            dir,
            serial,
            csr,
            validity_days,
            out,
            key,
            op,
        } => audited(&dir, &op, &key.pass, "renew", |ca, signer| {
            let mut index = ca.read_index().map_err(ca_err)?;
            let old_entry = index.get(&serial).map_err(ca_err)?.clone();
            renewal::check_renewable(&index, &serial).map_err(coded)?;
            let old = stored_cert(ca, &old_entry).map_err(ca_err)?;
            let r = old
                .role()
                .ok_or_else(|| Failure::BadInput(format!("serial {serial} has no gmchain role")))?;
            let public_key = match &csr {
                Some(path) => {
                    let req =
                        pki::csr::verify(&read_named("--csr", path)?).map_err(pki_err("--csr"))?;
                    let cn = pki::csr::check_for_issuance(&req, r, &ca.meta().organisation)
                        .map_err(pki_err("--csr"))?;
                    if Some(cn.clone()) != old.common_name() {
                        return Err(Failure::BadInput(format!(
                            "the CSR names {cn:?}; renewal keeps the subject {:?}",
                            old.common_name().unwrap_or_default()
                        )));
                    }
                    req.public_key
                }
                None => old.public_key(),
            };
            let renewal_key = if csr.is_some() {
                RenewalKey::New(&public_key)
            } else {
                RenewalKey::Reused
            };
            check_renewal(&index, &old_entry.serial, renewal_key, |e| {
                stored_cert(ca, e).map(|c| c.public_key())
            })
            .map_err(coded)?;
            let issuer = ca_cert(ca)?;
            let new_serial = fresh_serial(&index)?;
            let cn = old.common_name().unwrap_or_default();
            let org = old.organisation().unwrap_or_default();
            let cert = pki::issue(
                &issuer,
                signer,
                &IssueRequest {
                    role: r,
                    common_name: &cn,
                    organisation: &org,
                    public_key: &public_key,
                    serial: new_serial,
                    validity: validity(validity_days, Some(&issuer))?,
                },
            )
            .map_err(pki_err("renew"))?;
            record(ca, &mut index, &cert, r)?;
            let new_hex = cert.serial().to_hex();
            index.get_mut(&new_hex).map_err(ca_err)?.renews = Some(old_entry.serial.clone());
            index.get_mut(&old_entry.serial).map_err(ca_err)?.renewed_by = Some(new_hex.clone());
            ca.write_index(&index).map_err(ca_err)?;
            write_output(out.as_deref(), cert.to_pem().as_bytes())?;
            Ok(format!(
                "renewed {} as {new_hex}{}",
                old_entry.serial,
                if csr.is_some() { " with a new key" } else { "" }
            ))
        }),
        CaCommand::Revoke {
            dir,
            serial,
            reason,
            key,
            op,
        } => audited(&dir, &op, &key.pass, "revoke", |ca, _signer| {
            let why: RevocationReason = reason.parse().map_err(|_| Failure::BadInput(format!("--reason {reason:?} is not a CRL reason (e.g. key-compromise, superseded, cessation-of-operation)")))?;
            let mut index = ca.read_index().map_err(ca_err)?;
            let e = index.get_mut(&serial).map_err(ca_err)?;
            if let Status::Revoked { .. } = e.status {
                return Err(Failure::BadInput(format!(
                    "serial {} is already revoked",
                    e.serial
                )));
            }
            let status = Status::Revoked {
                at: now(),
                reason: why.as_str().to_string(),
            };
            e.status = status.clone();
            let mut detail = format!(
                "revoked {} ({}) reason {}",
                e.serial,
                e.subject,
                why.as_str()
            );
            let target = e.serial.clone();
            if renewal::reason_compromises_key(&e.role, why.as_str()) {
                // The key is compromised, not just this certificate: every other certificate
                // of the key goes with it (RFC 5280 §5.3.1 keyCompromise).
                let same_key = renewal::sharing_key(&index, &target, |e| {
                    stored_cert(ca, e).map(|c| c.public_key())
                })
                .map_err(ca_err)?;
                for s in &same_key {
                    index.get_mut(s).map_err(ca_err)?.status = status.clone();
                }
                if !same_key.is_empty() {
                    detail.push_str(&format!(
                        "; also revoked {} (same key)",
                        same_key.join(", ")
                    ));
                }
            }
            ca.write_index(&index).map_err(ca_err)?;
            println!("{detail}; publish a CRL with `gmchain ca crl` for verifiers to see it");
            Ok(detail)
        }),
        CaCommand::Crl {
            dir,
            next_update_hours,
            out,
            key,
            op,
        } => audited(&dir, &op, &key.pass, "crl", |ca, signer| {
            if next_update_hours == 0 {
                return Err(Failure::BadInput(
                    "--next-update-hours must be at least 1".into(),
                ));
            }
            let issuer = ca_cert(ca)?;
            let mut index = ca.read_index().map_err(ca_err)?;
            let revoked = index
                .revoked()
                .map(|e| {
                    let (at, reason) = match &e.status {
                        Status::Revoked { at, reason } => (*at, reason.clone()),
                        Status::Valid => (0, String::new()),
                    };
                    Ok(RevokedEntry {
                        serial: Serial::from_hex(&e.serial).map_err(pki_err("index serial"))?,
                        revoked_at: UnixTime(at),
                        reason: reason.parse().unwrap_or(RevocationReason::Unspecified),
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let number = index.crl_number + 1;
            let t = now();
            let crl = pki::issue_crl(
                &issuer,
                signer,
                number,
                UnixTime(t),
                UnixTime(t + next_update_hours * 3600),
                &revoked,
            )
            .map_err(pki_err("crl"))?;
            ca.write_file("crl.pem", crl.to_pem().as_bytes())
                .map_err(ca_err)?;
            index.crl_number = number;
            ca.write_index(&index).map_err(ca_err)?;
            write_output(out.as_deref(), crl.to_pem().as_bytes())?;
            Ok(format!(
                "CRL number {number} with {} revoked certificate(s)",
                revoked.len()
            ))
        }),
        CaCommand::List { dir } => {
            let ca = CaDir::open(&dir, false).map_err(ca_err)?;
            let index = ca.read_index().map_err(ca_err)?;
            println!(
                "{:<34} {:<10} {:<8} {:<20} SUBJECT",
                "SERIAL", "ROLE", "STATUS", "NOT AFTER (unix)"
            );
            for e in &index.entries {
                let status = match &e.status {
                    Status::Valid => "valid".to_string(),
                    Status::Revoked { .. } => "revoked".to_string(),
                };
                println!(
                    "{:<34} {:<10} {:<8} {:<20} {}",
                    e.serial, e.role, status, e.not_after, e.subject
                );
            }
            Ok(())
        }
        CaCommand::Show { dir, serial } => {
            let ca = CaDir::open(&dir, false).map_err(ca_err)?;
            let index = ca.read_index().map_err(ca_err)?;
            let e = index.get(&serial).map_err(ca_err)?;
            println!(
                "{}",
                serde_json::to_string_pretty(e).map_err(|x| Failure::BadInput(x.to_string()))?
            );
            let pem = ca
                .read_file(&format!("certs/{}.pem", e.serial))
                .map_err(ca_err)?;
            write_output(None, &pem)
        }
        CaCommand::Verify {
            anchor,
            untrusted,
            crl,
            role: r,
            at,
            cert,
        } => {
            let r = role(&r)?;
            let leaf = Certificate::from_pem(&read_named("certificate", &cert)?)
                .map_err(pki_err("certificate"))?;
            match validate_chain_files(
                &leaf,
                &[],
                &anchor,
                &untrusted,
                &crl,
                UnixTime(at.unwrap_or_else(now)),
                r,
            )? {
                Ok(v) => {
                    println!(
                        "OK: {} is valid as {} (organisation {:?}; chain of {} anchored by {:?})",
                        v.leaf().subject(),
                        v.role().as_str(),
                        v.leaf().organisation().unwrap_or_default(),
                        v.path().len(),
                        v.organisation()
                    );
                    Ok(())
                }
                Err(e) => Err(Failure::NotVerified(format!("{} ({})", e, e.code()))),
            }
        }
        CaCommand::AuditVerify {
            dir,
            expect_head,
            strict,
        } => {
            let ca = CaDir::open(&dir, false).map_err(ca_err)?;
            let cert = ca_cert(&ca)?;
            let tail = if strict {
                UnsignedTail::Refuse
            } else {
                UnsignedTail::Allow
            };
            match ca
                .audit()
                .verify(&cert.public_key(), expect_head.as_deref(), tail)
            {
                Ok(r) => {
                    let signed = match &r.last_signed {
                        Some(s) => format!("last signed entry {} hash {}", s.seq, s.hash),
                        None => "no signed entry".to_string(),
                    };
                    println!(
                        "audit log OK: {} entries, head {}; {signed}",
                        r.entries, r.head
                    );
                    let covered: Vec<u64> = r
                        .unsigned
                        .iter()
                        .copied()
                        .filter(|n| !r.unsigned_tail.contains(n))
                        .collect();
                    if !covered.is_empty() {
                        println!(
                            "unsigned entries (CA key unavailable when recorded), covered by a later signature: {covered:?}"
                        );
                    }
                    if !r.unsigned_tail.is_empty() {
                        println!(
                            "unsigned tail (CA key unavailable when recorded), covered by no signature: {:?}; --strict fails on it",
                            r.unsigned_tail
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(Failure::NotVerified(e.to_string())),
            }
        }
    }
}

/// The encryption half of a dual pair: the CA generates the key pair, certifies it as node-enc
/// for the holder of `sign_cert`, seals the private key to the holder's signing key (GM/T 0009
/// SM2EnvelopedKey), and keeps an escrow copy as encrypted PKCS#8.
fn issue_dual(
    ca: &CaDir,
    signer: &dyn Signer,
    sign_cert: &Certificate,
    escrow_pass: &Path,
    days: u64,
) -> Result<(Certificate, Vec<u8>), Failure> {
    let issuer = ca_cert(ca)?;
    let enc_key = crypto_sm::sm2::PrivateKey::generate(&SystemRandom)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut index = ca.read_index().map_err(ca_err)?;
    let enc_pub = enc_key.public_key();
    check_issuance(ca, &index, &enc_pub)?;
    let serial = fresh_serial(&index)?;
    let cn = sign_cert.common_name().unwrap_or_default();
    let org = sign_cert.organisation().unwrap_or_default();
    let cert = pki::issue(
        &issuer,
        signer,
        &IssueRequest {
            role: Role::NodeEnc,
            common_name: &cn,
            organisation: &org,
            public_key: &enc_pub,
            serial,
            validity: validity(days, Some(&issuer))?,
        },
    )
    .map_err(pki_err("issue node-enc"))?;
    let envelope = pki::envelope::seal(
        &enc_key.to_bytes(),
        &enc_pub,
        &sign_cert.public_key(),
        &SystemRandom,
    )
    .map_err(pki_err("envelope"))?;
    let pass = PassArgs {
        pass_file: Some(escrow_pass.to_path_buf()),
        pass_env: None,
    }
    .passphrase()?
    .ok_or_else(|| Failure::BadInput("--escrow-pass-file is empty".into()))?;
    let escrow = crypto_sm::keys::encode_encrypted_pkcs8_pem(
        &enc_key,
        pass.expose(),
        crypto_sm::keys::DEFAULT_ITERATIONS,
        &SystemRandom,
    )
    .map_err(|e| Failure::BadInput(format!("escrow: {e}")))?;
    let enc_hex = cert.serial().to_hex();
    let sign_hex = sign_cert.serial().to_hex();
    std::fs::create_dir_all(ca.path().join("escrow"))
        .map_err(|e| Failure::BadInput(format!("escrow directory: {e}")))?;
    write_file(
        &ca.path().join(format!("escrow/{enc_hex}.pem")),
        escrow.as_bytes(),
        true,
    )?;
    record(ca, &mut index, &cert, Role::NodeEnc)?;
    index.get_mut(&enc_hex).map_err(ca_err)?.pair = Some(sign_hex.clone());
    index.get_mut(&sign_hex).map_err(ca_err)?.pair = Some(enc_hex);
    ca.write_index(&index).map_err(ca_err)?;
    Ok((cert, envelope))
}

#[allow(clippy::too_many_arguments)]
fn init(
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
    // The key: in a token (generated there if absent), or a new keystore in the CA directory.
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
    let (kind, ca_pem, chain_pem) = match (cert, chain) {
        (Some(cert_path), Some(chain_path)) => {
            let c = Certificate::from_pem(&read_named("--cert", &cert_path)?)
                .map_err(pki_err("--cert"))?;
            let root = Certificate::from_pem(&read_named("--chain", &chain_path)?)
                .map_err(pki_err("--chain"))?;
            if c.public_key() != signer.public_key() {
                return Err(Failure::BadInput(
                    "--cert was issued for another key than the CA key given".into(),
                ));
            }
            if c.role() != Some(Role::AgencyCa) {
                return Err(Failure::BadInput(
                    "--cert is not an agency CA certificate".into(),
                ));
            }
            c.verify_signed_by(&root.public_key(), &crypto::UserId::default())
                .map_err(pki_err("--cert is not signed by --chain"))?;
            (CaKind::Agency, c.to_pem(), Some(root.to_pem()))
        }
        _ => {
            let root = pki::issue_root(
                name,
                org,
                Serial::random(&SystemRandom).map_err(pki_err("serial"))?,
                validity(days, None)?,
                signer.as_ref(),
            )
            .map_err(pki_err("root"))?;
            (CaKind::Root, root.to_pem(), None)
        }
    };
    let ca = CaDir::create(dir, CaMeta::new(kind, name, org, location)).map_err(ca_err)?;
    ca.write_file("ca.pem", ca_pem.as_bytes()).map_err(ca_err)?;
    if let Some(c) = chain_pem {
        ca.write_file("chain.pem", c.as_bytes()).map_err(ca_err)?;
    }
    let detail = format!(
        "{} CA {name:?} of {org:?}",
        if kind == CaKind::Root {
            "root"
        } else {
            "agency"
        }
    );
    let head = ca
        .audit()
        .append(
            now(),
            &operator,
            "init",
            Outcome::Done,
            &detail,
            Some(signer.as_ref()),
        )
        .map_err(ca_err)?;
    println!("{}", ca_pem.trim_end());
    eprintln!("audit head: {head}");
    Ok(())
}
