//! The checks. Each runs vectors (or derived cases) through gmchain's implementation and
//! records, per case, the vector id, its source and the result.

mod algorithms;
mod audit_logs;
mod consensus;
mod consortium;
pub(crate) mod contracts;
mod exchange;
mod gmt0009;
mod ledger;
mod pki;
mod sm2;
mod sm3;
mod sm4;
pub(crate) mod validators;

use crate::vectors::{self, Vector};
use serde::Serialize;

/// One case of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The vector id, or a description of a derived case.
    pub case: String,
    /// Where the expected value comes from.
    pub source: String,
    pub pass: bool,
    /// What failed, or a short note.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The result of running one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub id: String,
    pub title: String,
    pub pass: bool,
    pub cases: usize,
    pub evidence: Vec<Evidence>,
    /// Why the check did not run (it needs a live token and none was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
}

impl CheckOutcome {
    /// Builds an outcome from the cases a check ran. No cases means failure: a check cannot
    /// pass vacuously.
    pub fn from_evidence(id: &str, title: &str, evidence: Vec<Evidence>) -> Self {
        let pass = !evidence.is_empty() && evidence.iter().all(|e| e.pass);
        CheckOutcome {
            id: id.to_string(),
            title: title.to_string(),
            pass,
            cases: evidence.len(),
            evidence,
            not_run: None,
        }
    }
}

/// A check compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub run: fn() -> Vec<Evidence>,
}

impl Check {
    /// Runs the check.
    pub fn execute(&self) -> CheckOutcome {
        CheckOutcome::from_evidence(self.id, self.title, (self.run)())
    }
}

/// Every check in this build.
pub fn registry() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend_from_slice(sm3::CHECKS);
    all.extend_from_slice(sm4::CHECKS);
    all.extend_from_slice(sm2::CHECKS);
    all.extend_from_slice(gmt0009::CHECKS);
    all.extend_from_slice(pki::CHECKS);
    all.extend_from_slice(ledger::CHECKS);
    all.extend_from_slice(consortium::CHECKS);
    all.extend_from_slice(contracts::CHECKS);
    all.extend_from_slice(exchange::CHECKS);
    all.extend_from_slice(consensus::CHECKS);
    all.extend_from_slice(validators::CHECKS);
    all.extend_from_slice(algorithms::CHECKS);
    all.extend_from_slice(audit_logs::CHECKS);
    all
}

/// Runs `case` on every vector of `kind` in `file`.
pub(crate) fn each(
    file: &str,
    kind: &str,
    case: impl Fn(&Vector) -> Result<(), String>,
) -> Vec<Evidence> {
    vectors::of_kind(file, kind)
        .iter()
        .map(|v| {
            let r = case(v);
            Evidence {
                case: v.id.clone(),
                source: v.source.clone(),
                pass: r.is_ok(),
                detail: r.err().unwrap_or_default(),
            }
        })
        .collect()
}

/// Records a case whose expected value comes from `source`.
pub(crate) fn sourced(source: &str, case: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: case.to_string(),
        source: source.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

/// Records a derived case (no published vector).
pub(crate) fn derived(case: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: case.to_string(),
        source: "gmchain-derived (property of the algorithm)".to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

/// Compares bytes, describing a mismatch.
pub(crate) fn expect_eq(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, expected {}",
            hex::encode(got),
            hex::encode(want)
        ))
    }
}

/// Expects an error, describing an unexpected success.
pub(crate) fn expect_err<T, E: std::fmt::Display>(
    what: &str,
    r: Result<T, E>,
) -> Result<(), String> {
    match r {
        Ok(_) => Err(format!("{what}: accepted, but must be rejected")),
        Err(_) => Ok(()),
    }
}
