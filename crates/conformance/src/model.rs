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
    /// Rephrased from the standard's published wording of the clause.
    Paraphrased,
    /// Inferred from the clause title (a table of contents) and related standards; the clause's
    /// own wording was not available.
    Inferred,
}

/// Whether the suite covers a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClauseStatus {
    /// Checks exist and decide the verdict.
    #[default]
    Covered,
    /// No check proves the whole clause: reported as NOT COVERED with the reason (and the issue
    /// that will cover it, if one is planned). Checks it names prove part of it: their evidence
    /// is shown, and one that runs and fails makes the clause NOT MET.
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
    /// The standard's own Chinese title of the clause, where known (never our translation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
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
    /// The issue that will cover a not-covered clause; none when no planned work covers it
    /// (for example a clause on the operator's premises or organisation).
    #[serde(default)]
    pub issue: Option<u32>,
    /// What the mapped checks prove and what they do not, shown beside the verdict: required
    /// on a not-covered clause that names checks (they prove only part of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
    /// The standard's own Chinese title, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
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

/// Parses every compiled-in clause map and checks that each clause is well-formed: ids are
/// unique within a standard; every check named is known; covered clauses name at least one
/// check; others give a reason, and a not-covered clause that names checks says in a note what
/// they leave unproved.
pub fn load_standards() -> Result<Vec<Standard>, String> {
    let mut known: Vec<&str> = crate::checks::registry().iter().map(|c| c.id).collect();
    known.extend(crate::token::token_checks().iter().map(|c| c.id));
    known.extend(crate::node::node_checks().iter().map(|c| c.id));
    let mut out = Vec::new();
    for (name, text) in CLAUSE_FILES {
        let std: Standard = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &std.clauses {
            let at = format!("{name}: clause {}", c.id);
            if !seen.insert(c.id.as_str()) {
                return Err(format!("{at} is listed twice"));
            }
            if c.title_zh.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(format!("{at} has an empty title_zh (leave it out instead)"));
            }
            if let Some(unknown) = c.checks.iter().find(|id| !known.contains(&id.as_str())) {
                return Err(format!("{at} names unknown check {unknown:?}"));
            }
            match c.status {
                ClauseStatus::Covered => {
                    if c.checks.is_empty() {
                        return Err(format!("{at} is covered but names no check"));
                    }
                }
                ClauseStatus::NotCovered => {
                    if c.reason.is_none() {
                        return Err(format!("{at} is not-covered but gives no reason"));
                    }
                    if !c.checks.is_empty() && c.note.is_none() {
                        return Err(format!(
                            "{at} is not-covered but names checks: add a note saying what they leave unproved"
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
