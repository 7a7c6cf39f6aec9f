//! `gmchain conformance list|run|verify-report`.

use crate::io::{read_named, write_file};
use crate::{CmdResult, Failure};
use clap::Subcommand;
use conformance::{
    ClauseStatus, Provenance, ReportFile, SignedReportError, load_standards, render_html,
    render_signed_html, run as run_suite,
};
use pki::{Certificate, Role, UnixTime};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process from the command line; boxing would only complicate clap"
)]
pub(crate) enum ConformanceCommand {
    /// Lists the standards, their clauses, levels and the checks mapped to each.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Runs every check and writes report.json and report.html, printing the counts by verdict
    /// per standard and the mandatory clauses NOT MET and NOT COVERED. Exit 1 only if a
    /// mandatory clause has a check that ran and failed: checks not run (no token or node
    /// given) leave their clauses NOT MET, and clauses no check covers are NOT COVERED, both
    /// printed without failing the run.
    Run {
        /// Directory for report.json and report.html.
        #[arg(long, default_value = "conformance-report")]
        out_dir: PathBuf,
        /// The PKCS#11 module profile: with --token, also run the device checks (GM/T 0111
        /// §7.3-7.4, GB/T 39786 key lifecycle), which create and destroy test keys in the
        /// token and verify its signatures with OpenSSL 3 (`openssl` on PATH); with a pkcs11:
        /// --key, the module holding that key. A development token (gmchain's soft token)
        /// leaves the device clauses NOT MET; a certification the profile declares is reported
        /// DECLARED at best, for the auditor to confirm with the issuing body.
        #[arg(long, value_name = "FILE")]
        hsm_profile: Option<PathBuf>,
        /// The token label, with --hsm-profile.
        #[arg(long, requires = "hsm_profile")]
        token: Option<String>,
        /// The user PIN (with --token or a pkcs11: key), or the passphrase of an encrypted
        /// --key file.
        #[command(flatten)]
        pin: crate::io::PassArgs,
        /// Also run the ledger checks (GM/T 0111 §8.3-8.5, §8.7, GZ-5.1, GZ-6.2) against this
        /// node (gRPC URL). They submit a few small attestation transactions signed by --key and
        /// refused ones, and read every block from 0 to the tip (one request per block: on a
        /// long chain that takes a while; progress goes to stderr).
        #[arg(long, value_name = "ADDR", requires_all = ["genesis", "key", "cert"])]
        node: Option<String>,
        /// How to reach --node over mutual GM TLS (the auditor's TLS key and certificate, the
        /// CA to trust, its CRLs), or a client profile.
        #[command(flatten)]
        tls: crate::client::TlsArgs,
        /// The chain's genesis file, as the auditor obtained it (not from the node).
        #[arg(long, value_name = "FILE", requires = "node")]
        genesis: Option<PathBuf>,
        /// The sending identity's key (key file or pkcs11: URI), with --node.
        #[arg(long, value_name = "KEY", requires = "node")]
        key: Option<String>,
        /// The sending identity's certificate, issued by a genesis organisation (a role-user
        /// certificate exercises the permission refusal too).
        #[arg(long, value_name = "FILE", requires = "node")]
        cert: Option<PathBuf>,
        /// Also run the node checks that write more than a few small transactions or change
        /// identities (node-revocation-live: throwaway certificates issued with --ca-key,
        /// suspended and revoked with --admin-key; GM/T 0111 §8.4, §8.7; node-contract-lifecycle:
        /// a throwaway contract deployed, upgraded and frozen by --admin-key's proposals and the
        /// --voter-key votes, left frozen; GZ-5.4, GZ-6.5, GM/T 0111 §7.8). They run only if the
        /// --genesis file marks `test_chain = true` and is the node's: an auditor's run never
        /// writes to a production chain. Otherwise they are not run and their clauses NOT MET.
        #[arg(long, requires = "node")]
        allow_writes: bool,
        /// An admin of --cert's organisation (key file or pkcs11: URI), with --allow-writes.
        #[arg(long, value_name = "KEY", requires_all = ["allow_writes", "admin_cert"])]
        admin_key: Option<String>,
        /// The admin's certificate.
        #[arg(long, value_name = "FILE", requires = "admin_key")]
        admin_cert: Option<PathBuf>,
        /// The CA key of --cert's organisation (key file or pkcs11: URI), with --allow-writes.
        #[arg(long, value_name = "KEY", requires_all = ["allow_writes", "ca_cert"])]
        ca_key: Option<String>,
        /// The CA's certificate.
        #[arg(long, value_name = "FILE", requires = "ca_key")]
        ca_cert: Option<PathBuf>,
        /// An admin of another organisation whose vote the contract policy needs (key file
        /// under the same --pass-file, or pkcs11: URI), with --allow-writes; repeat for each,
        /// in the order --voter-cert gives their certificates. node-contract-lifecycle votes
        /// with them in turn until each proposal executes.
        #[arg(long, value_name = "KEY", requires_all = ["allow_writes", "admin_key"])]
        voter_key: Vec<String>,
        /// The certificate of the --voter-key of the same position.
        #[arg(long, value_name = "FILE")]
        voter_cert: Vec<PathBuf>,
        /// Sign report.json with this auditor key: an encrypted key file, or a pkcs11: URI with
        /// --hsm-profile; its passphrase or PIN from --pass-file/--pass-env (the same as the
        /// token's). The signature covers the report's canonical bytes (conformance/README.md).
        #[arg(long, value_name = "KEY", requires = "sign_cert")]
        sign_key: Option<String>,
        /// The certificate of --sign-key; its role must be auditor (gmchain ca issue --role
        /// auditor). Embedded in report.json.
        #[arg(long, value_name = "FILE", requires = "sign_key")]
        sign_cert: Option<PathBuf>,
        /// A CA certificate between the auditor's and the root (the agency CA), embedded in
        /// report.json for verifiers; repeat for several.
        #[arg(long, value_name = "FILE", requires = "sign_key")]
        sign_chain: Vec<PathBuf>,
    },
    /// Verifies a signed report.json offline: the auditor's SM2 signature over its canonical
    /// bytes, and the auditor's certificate chain (role auditor) to --anchor with a current CRL
    /// from every issuer, now. Prints the signer and the headline. Exit 0 verified; 1 unsigned,
    /// changed after signing, or signed by a certificate that does not validate (not an
    /// auditor, revoked, expired, another anchor, a CRL missing); 2 unreadable input.
    /// report.html is never verified: it is derived from report.json.
    VerifyReport {
        /// The signed report.json.
        report: PathBuf,
        /// The trusted root certificate(s).
        #[arg(long, required = true, value_name = "FILE")]
        anchor: Vec<PathBuf>,
        /// Intermediate (agency CA) certificates, besides those the report carries.
        #[arg(long, value_name = "FILE")]
        untrusted: Vec<PathBuf>,
        /// A current CRL of each issuer on the auditor's path (the root's and the agency's).
        #[arg(long, value_name = "FILE")]
        crl: Vec<PathBuf>,
    },
}

fn load_cert(option: &str, path: &Path) -> Result<Certificate, Failure> {
    Certificate::from_pem(&read_named(option, path)?)
        .map_err(|e| Failure::BadInput(format!("{option} {}: {e}", path.display())))
}

/// The auditor's key and certificate, checked before anything runs: role auditor, and the
/// certificate's key is the signing key.
struct ReportSigner {
    signer: Box<dyn crypto::Signer>,
    cert: Certificate,
    chain: Vec<Certificate>,
}

impl ReportSigner {
    fn open(
        key: &str,
        cert: &Path,
        chain: &[PathBuf],
        hsm_profile: Option<PathBuf>,
        pin: crate::io::PassArgs,
    ) -> Result<Self, Failure> {
        let cert = load_cert("--sign-cert", cert)?;
        let chain = chain
            .iter()
            .map(|p| load_cert("--sign-chain", p))
            .collect::<Result<Vec<_>, _>>()?;
        let signer = crate::cli_crypto::load_signer(key, hsm_profile, pin, true)?;
        conformance::check_signer(signer.as_ref(), &cert)
            .map_err(|e| Failure::BadInput(format!("--sign-cert: {e}")))?;
        Ok(ReportSigner {
            signer,
            cert,
            chain,
        })
    }
}

fn verify_report(
    report: &Path,
    anchor: &[PathBuf],
    untrusted: &[PathBuf],
    crl: &[PathBuf],
) -> CmdResult {
    let bytes = read_named("report", report)?;
    let as_failure = |e: SignedReportError| {
        let m = format!("{}: {e}", report.display());
        if e.is_unreadable() {
            Failure::BadInput(m)
        } else {
            Failure::NotVerified(m)
        }
    };
    let file = ReportFile::parse(&bytes).map_err(as_failure)?;
    let checked = file.verify_signature().map_err(as_failure)?;
    let by = checked.signed_by();
    match crate::cli_ca::validate_chain_files(
        checked.certificate(),
        checked.chain(),
        anchor,
        untrusted,
        crl,
        UnixTime(crate::cli_ca::now()),
        Role::Auditor,
    )? {
        Ok(chain) => {
            let summary = file.summary().map_err(as_failure)?;
            let p = file.report().get("provenance");
            let field = |k: &str| {
                p.and_then(|p| p.get(k))
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_string()
            };
            println!(
                "VERIFIED: {} is signed by the auditor {} (serial {})",
                report.display(),
                by.subject,
                by.serial
            );
            println!(
                "auditor certificate valid now, with current CRLs: {} (anchor)",
                chain
                    .path()
                    .iter()
                    .map(Certificate::subject)
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            println!("report SM3 (canonical bytes): {}", by.content_sm3);
            println!(
                "generated {} by gmchain {} (commit {}); tested: {}",
                field("generated_at"),
                field("gmchain_version"),
                field("git_commit"),
                field("target")
            );
            for line in summary.headline() {
                println!("{line}");
            }
            Ok(())
        }
        Err(e) => Err(Failure::NotVerified(format!(
            "{}: the signer {} (serial {}) is not a valid auditor here: {e} ({})",
            report.display(),
            by.subject,
            by.serial,
            e.code()
        ))),
    }
}

fn standards() -> Result<Vec<conformance::Standard>, Failure> {
    load_standards()
        .map_err(|e| Failure::BadInput(format!("the compiled-in clause map is invalid: {e}")))
}

pub(crate) fn run(cmd: ConformanceCommand) -> CmdResult {
    match cmd {
        ConformanceCommand::List { json } => {
            let stds = standards()?;
            if json {
                let s = serde_json::to_string_pretty(&stds)
                    .map_err(|e| Failure::BadInput(e.to_string()))?;
                println!("{s}");
                return Ok(());
            }
            for s in &stds {
                println!("{} — {}", s.id, s.title);
                for c in &s.clauses {
                    let what = match c.status {
                        ClauseStatus::Covered => c.checks.join(", "),
                        ClauseStatus::NotCovered => format!(
                            "NOT COVERED{}: {}{}",
                            c.issue
                                .map(|i| format!(" (issue #{i})"))
                                .unwrap_or_default(),
                            c.reason.as_deref().unwrap_or(""),
                            if c.checks.is_empty() {
                                String::new()
                            } else {
                                format!(" [in part: {}]", c.checks.join(", "))
                            }
                        ),
                        ClauseStatus::NotApplicable => {
                            format!("NOT APPLICABLE: {}", c.reason.as_deref().unwrap_or(""))
                        }
                    };
                    println!(
                        "  {:<28} {:<6} {:<11} {}",
                        c.id,
                        format!("{:?}", c.level).to_lowercase(),
                        format!("{:?}", c.text).to_lowercase(),
                        what
                    );
                }
            }
            Ok(())
        }
        ConformanceCommand::Run {
            out_dir,
            hsm_profile,
            token,
            pin,
            node,
            tls,
            genesis,
            key,
            cert,
            allow_writes,
            admin_key,
            admin_cert,
            ca_key,
            ca_cert,
            voter_key,
            voter_cert,
            sign_key,
            sign_cert,
            sign_chain,
        } => {
            let stds = standards()?;
            if hsm_profile.is_some() && token.is_none() && key.is_none() && sign_key.is_none() {
                return Err(Failure::BadInput(
                    "--hsm-profile needs --token (device checks), a pkcs11: --key (node checks) or a pkcs11: --sign-key"
                        .into(),
                ));
            }
            // The auditor's key and certificate are checked before anything runs.
            let report_signer = match (&sign_key, &sign_cert) {
                (Some(k), Some(c)) => Some(ReportSigner::open(
                    k,
                    c,
                    &sign_chain,
                    hsm_profile.clone(),
                    pin.clone(),
                )?),
                _ => None,
            };
            if voter_key.len() != voter_cert.len() {
                return Err(Failure::BadInput(format!(
                    "{} --voter-key and {} --voter-cert given: give one certificate per key, in the same order",
                    voter_key.len(),
                    voter_cert.len()
                )));
            }
            let node_probe = match (node, genesis, key, cert) {
                (Some(url), Some(genesis), Some(key), Some(cert)) => {
                    let key_desc = if key.starts_with("pkcs11:") {
                        format!("token key {key}")
                    } else {
                        format!("key file {key}")
                    };
                    let signer = crate::cli_crypto::load_signer(
                        &key,
                        hsm_profile.clone(),
                        pin.clone(),
                        false,
                    )?;
                    // The admin's and the CA's keys: files under the same --pass-file, or
                    // pkcs11: URIs in the --hsm-profile module.
                    let keyed = |key: Option<String>,
                                 cert: Option<PathBuf>,
                                 key_flag: &str,
                                 cert_flag: &str|
                     -> Result<Option<crate::node_probe::KeyedCert>, Failure> {
                        let (Some(key), Some(cert)) = (key, cert) else {
                            return Ok(None);
                        };
                        let signer = crate::cli_crypto::load_signer(
                            &key,
                            hsm_profile.clone(),
                            pin.clone(),
                            false,
                        )?;
                        crate::node_probe::KeyedCert::load(cert_flag, &cert, key_flag, signer)
                            .map(Some)
                    };
                    let mut voters = Vec::new();
                    for (k, c) in voter_key.into_iter().zip(voter_cert) {
                        voters.extend(keyed(Some(k), Some(c), "--voter-key", "--voter-cert")?);
                    }
                    let writes = crate::node_probe::Writes {
                        allow: allow_writes,
                        admin: keyed(admin_key, admin_cert, "--admin-key", "--admin-cert")?,
                        ca: keyed(ca_key, ca_cert, "--ca-key", "--ca-cert")?,
                        voters,
                    };
                    Some(crate::node_probe::GrpcProbe::open(
                        &url, &genesis, &cert, signer, key_desc, writes, tls,
                    )?)
                }
                _ => None,
            };
            let probe = match (hsm_profile, token) {
                (Some(profile), Some(token)) => {
                    let args = crate::cli_keys::TokenArgs {
                        hsm_profile: profile,
                        pin,
                        sessions: 2,
                    };
                    Some(crate::token_probe::HsmProbe {
                        hsm: crate::cli_keys::open(&args, &token, None)?,
                    })
                }
                _ => None,
            };
            let mut prov = provenance();
            prov.target = match (probe.is_some(), node_probe.is_some()) {
                (false, false) => prov.target,
                (true, false) => {
                    "software provider crypto-sm, and a live token through the PKCS#11 provider"
                        .to_string()
                }
                (false, true) => "software provider crypto-sm, and a live node over gRPC".to_string(),
                (true, true) => "software provider crypto-sm, a live token through the PKCS#11 provider, and a live node over gRPC".to_string(),
            };
            let report = run_suite(
                &stds,
                prov,
                probe.as_ref().map(|p| p as &dyn conformance::TokenProbe),
                node_probe
                    .as_ref()
                    .map(|p| p as &dyn conformance::NodeProbe),
            );
            std::fs::create_dir_all(&out_dir).map_err(|e| {
                Failure::BadInput(format!("cannot create {}: {e}", out_dir.display()))
            })?;
            // The HTML is rendered from the very report the JSON holds, and says whether and
            // by whom report.json is signed.
            let (json, html, signed_by) = match &report_signer {
                Some(s) => {
                    let signed = conformance::sign(&report, s.signer.as_ref(), &s.cert, &s.chain)
                        .map_err(|e| Failure::BadInput(format!("--sign-key: {e}")))?;
                    let html = render_signed_html(&report, &signed.signed_by);
                    (signed.json, html, Some(signed.signed_by))
                }
                None => (
                    serde_json::to_vec_pretty(&report)
                        .map_err(|e| Failure::BadInput(e.to_string()))?,
                    render_html(&report),
                    None,
                ),
            };
            let json_path = out_dir.join("report.json");
            let html_path = out_dir.join("report.html");
            write_file(&json_path, &json, false)?;
            write_file(&html_path, html.as_bytes(), false)?;
            let s = &report.summary;
            for line in s.headline() {
                println!("{line}");
            }
            for nm in report.not_met() {
                println!("  NOT MET: {nm}");
            }
            for nc in report.not_covered() {
                println!("  NOT COVERED: {nc}");
            }
            // A declared certification is neither MET nor NOT MET: say so beside the counts.
            for std in &report.standards {
                for c in std
                    .clauses
                    .iter()
                    .filter(|c| c.verdict == conformance::Verdict::Declared)
                {
                    println!(
                        "  DECLARED: {} {} (certification for the auditor to confirm with the issuing body)",
                        std.id, c.id
                    );
                }
            }
            println!(
                "report: {} and {}",
                json_path.display(),
                html_path.display()
            );
            match &signed_by {
                Some(b) => println!(
                    "report.json signed by {} (serial {}); SM3 of its canonical bytes {}; report.html is derived from it and unsigned",
                    b.subject, b.serial, b.content_sm3
                ),
                None => {
                    println!("report.json is unsigned (sign it with --sign-key and --sign-cert)")
                }
            }
            if s.mandatory_failed.is_empty() {
                Ok(())
            } else {
                Err(Failure::NotVerified(format!(
                    "mandatory clauses failed: {}",
                    s.mandatory_failed.join(", ")
                )))
            }
        }
        ConformanceCommand::VerifyReport {
            report,
            anchor,
            untrusted,
            crl,
        } => verify_report(&report, &anchor, &untrusted, &crl),
    }
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

fn provenance() -> Provenance {
    let gmssl = std::env::var("GMCHAIN_PYTHON").ok().and_then(|py| {
        first_line(
            &py,
            &[
                "-c",
                "import importlib.metadata as m; print('gmssl-pyx ' + m.version('gmssl-pyx'))",
            ],
        )
    });
    Provenance {
        gmchain_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("GMCHAIN_GIT_COMMIT").to_string(),
        cargo_lock_sm3: env!("GMCHAIN_CARGO_LOCK_SM3").to_string(),
        rustc: env!("GMCHAIN_RUSTC").to_string(),
        openssl: first_line("openssl", &["version"]),
        gmssl,
        target: "software provider crypto-sm (RustCrypto sm2/sm3/sm4); no token or node tested"
            .to_string(),
        generated_at: now_rfc3339(),
        token: None,
        node: None,
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    pki::UnixTime(secs).to_string()
}
