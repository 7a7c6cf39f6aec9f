//! The commands that only read: `list`, `show`, `verify` and `audit-verify`.

use super::{ca_failure, now, pki_err, role};
use crate::io::{read_named, write_output};
use crate::{CmdResult, Failure};
use ca::{CaDir, Status, UnsignedTail};
use pki::{Certificate, Crl, Role, TrustAnchor, UnixTime};
use std::path::{Path, PathBuf};

/// `ca list`: every certificate issued.
pub(super) fn list(dir: &Path) -> CmdResult {
    let ca = CaDir::open(dir, false).map_err(ca_failure)?;
    let index = ca.read_index().map_err(ca_failure)?;
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

/// `ca show`: one certificate's index entry and PEM.
pub(super) fn show(dir: &Path, serial: &str) -> CmdResult {
    let ca = CaDir::open(dir, false).map_err(ca_failure)?;
    let index = ca.read_index().map_err(ca_failure)?;
    let e = index.get(serial).map_err(ca_failure)?;
    println!(
        "{}",
        serde_json::to_string_pretty(e).map_err(|x| Failure::BadInput(x.to_string()))?
    );
    let pem = ca
        .read_file(&format!("certs/{}.pem", e.serial))
        .map_err(ca_failure)?;
    write_output(None, &pem)
}

/// `ca verify`: a certificate's chain and revocation status, for a role.
pub(super) fn verify(
    anchor: &[PathBuf],
    untrusted: &[PathBuf],
    crl: &[PathBuf],
    r: &str,
    at: Option<u64>,
    cert: &Path,
) -> CmdResult {
    let r = role(r)?;
    let leaf =
        Certificate::from_pem(&read_named("certificate", cert)?).map_err(pki_err("certificate"))?;
    match validate_chain_files(
        &leaf,
        &[],
        anchor,
        untrusted,
        crl,
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

/// `ca audit-verify`: the audit log's hash chain and signatures, its head, its unsigned tail.
/// The CA directory's audit log file and the CA certificate that signs it.
pub(super) fn audit_log_of(dir: &Path) -> Result<(std::path::PathBuf, Certificate), Failure> {
    let ca = CaDir::open(dir, false).map_err(ca_failure)?;
    let cert = Certificate::from_pem(&ca.read_file("ca.pem").map_err(ca_failure)?)
        .map_err(pki_err("ca.pem"))?;
    Ok((dir.join("audit.log"), cert))
}

pub(super) fn audit_verify(dir: &Path, expect_head: Option<&str>, strict: bool) -> CmdResult {
    let ca = CaDir::open(dir, false).map_err(ca_failure)?;
    let cert = Certificate::from_pem(&ca.read_file("ca.pem").map_err(ca_failure)?)
        .map_err(pki_err("ca.pem"))?;
    let tail = if strict {
        UnsignedTail::Refuse
    } else {
        UnsignedTail::Allow
    };
    match ca.audit().verify(&cert.public_key(), expect_head, tail) {
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
