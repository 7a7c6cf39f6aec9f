//! The clause maps.

use serde::{Deserialize, Serialize};

/// How binding a clause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 应 / shall: mandatory.
    Shall,
    /// 宜 / should.
    Should,
    /// 可 / may.
    May,
}

/// How faithfully the clause text is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFidelity {
    /// From the standard's full text.
    Exact,
    /// Rephrased from the text or a table of contents.
    Paraphrased,
    /// Inferred from the title and related standards; the text was not available.
    Inferred,
}

/// Whether the suite covers a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClauseStatus {
    /// Checks exist and decide the verdict.
    #[default]
    Covered,
    /// No check yet: reported as NOT MET, with the reason and the issue that will cover it.
    NotCovered,
    /// Does not apply to gmchain (e.g. a worked example on a test curve).
    NotApplicable,
}

/// One clause of a standard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// The standard's own clause number, or a descriptive id where the number is unknown.
    pub id: String,
    pub title: String,
    pub level: Level,
    pub text: TextFidelity,
    /// The requirement in one line.
    pub requirement: String,
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub status: ClauseStatus,
    /// Why the clause is not covered or not applicable.
    #[serde(default)]
    pub reason: Option<String>,
    /// The issue that will cover a not-covered clause.
    #[serde(default)]
    pub issue: Option<u32>,
    /// MET only when the token under test is a certified device (its profile names the
    /// certificate); a development token leaves the clause NOT MET.
    #[serde(default)]
    pub requires_certified_device: bool,
}

/// A standard and its clauses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standard {
    /// E.g. "GB/T 32905-2016".
    pub id: String,
    pub title: String,
    /// Where the text came from and how complete it is.
    pub source: String,
    #[serde(rename = "clause")]
    pub clauses: Vec<Clause>,
}

macro_rules! clause_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../conformance/clauses/", $name)))),*]
    };
}

/// The clause maps compiled into this build.
const CLAUSE_FILES: &[(&str, &str)] = clause_files![
    "gbt32905.toml",
    "gbt32907.toml",
    "gbt32918-1.toml",
    "gbt32918-2.toml",
    "gbt32918-3.toml",
    "gbt32918-4.toml",
    "gbt32918-5.toml",
    "gmt0009.toml",
    "gmt0015.toml",
    "rfc8998.toml",
    "gmt0111.toml",
    "gbt39786.toml",
    "gzbc-platform.toml",
];

/// Parses every compiled-in clause map and checks that each clause is well-formed: covered
/// clauses name at least one known check; others give a reason (and not-covered an issue).
pub fn load_standards() -> Result<Vec<Standard>, String> {
    let mut known: Vec<&str> = crate::checks::registry().iter().map(|c| c.id).collect();
    known.extend(crate::token::token_checks().iter().map(|c| c.id));
    known.extend(crate::node::node_checks().iter().map(|c| c.id));
    let mut out = Vec::new();
    for (name, text) in CLAUSE_FILES {
        let std: Standard = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        for c in &std.clauses {
            let at = format!("{name}: clause {}", c.id);
            match c.status {
                ClauseStatus::Covered => {
                    if c.checks.is_empty() {
                        return Err(format!("{at} is covered but names no check"));
                    }
                    if let Some(unknown) = c.checks.iter().find(|id| !known.contains(&id.as_str()))
                    {
                        return Err(format!("{at} names unknown check {unknown:?}"));
                    }
                }
                ClauseStatus::NotCovered => {
                    if c.reason.is_none() || c.issue.is_none() {
                        return Err(format!(
                            "{at} is not-covered but lacks a reason or an issue"
                        ));
                    }
                }
                ClauseStatus::NotApplicable => {
                    if c.reason.is_none() {
                        return Err(format!("{at} is not-applicable but gives no reason"));
                    }
                }
            }
        }
        out.push(std);
    }
    Ok(out)
}
