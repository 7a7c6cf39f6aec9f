//! Running the suite and rendering its report.

use crate::checks::{CheckOutcome, registry};
use crate::model::{ClauseStatus, Level, Standard, TextFidelity};
use crate::node::{NodeIdentity, NodeProbe, node_checks};
use crate::token::{
    TokenIdentity, TokenProbe, certification_verdict, development_token_cause, token_checks,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// What was tested, with what, by which build. Filled by the caller (the binary), since this
/// crate reads no environment.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Provenance {
    pub gmchain_version: String,
    pub git_commit: String,
    /// SM3 of the Cargo.lock the binary was built from.
    pub cargo_lock_sm3: String,
    pub rustc: String,
    /// `openssl version` on the machine that ran the suite, if present.
    pub openssl: Option<String>,
    /// The GmSSL binding version, if present.
    pub gmssl: Option<String>,
    /// What was tested, e.g. "software provider crypto-sm".
    pub target: String,
    /// When the run started (RFC 3339, UTC).
    pub generated_at: String,
    /// The token the live checks ran against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenIdentity>,
    /// The node the live ledger checks ran against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeIdentity>,
}

/// The verdict on a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every check passed.
    #[serde(rename = "MET")]
    Met,
    /// A check failed, or the clause is not covered yet.
    #[serde(rename = "NOT MET")]
    NotMet,
    /// The clause does not apply.
    #[serde(rename = "NOT APPLICABLE")]
    NotApplicable,
    /// A certification the token's profile declares, matching what the token reports, with
    /// every check passed: for the auditor to confirm with the issuing body. Never MET, since
    /// nothing the suite can observe proves a certificate.
    #[serde(rename = "DECLARED")]
    Declared,
}

/// One clause's result.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseResult {
    pub id: String,
    pub title: String,
    pub level: Level,
    pub text: TextFidelity,
    pub requirement: String,
    pub verdict: Verdict,
    /// "check-failed" or "not-covered" for NOT MET; the reason for NOT APPLICABLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<u32>,
    pub checks: Vec<CheckOutcome>,
}

/// One standard's results.
#[derive(Debug, Clone, Serialize)]
pub struct StandardResult {
    pub id: String,
    pub title: String,
    pub source: String,
    pub clauses: Vec<ClauseResult>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub provenance: Provenance,
    pub standards: Vec<StandardResult>,
    pub summary: Summary,
}

/// Counts over all clauses.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub clauses: usize,
    pub met: usize,
    pub not_met: usize,
    pub not_applicable: usize,
    /// Clauses whose certification is only declared (see [`Verdict::Declared`]).
    pub declared: usize,
    pub checks_run: usize,
    pub cases_run: usize,
    /// Mandatory clauses whose checks failed: any makes `run` exit non-zero.
    pub mandatory_failed: Vec<String>,
}

impl Report {
    /// Returns "STANDARD clause" for every NOT MET clause.
    pub fn not_met(&self) -> Vec<String> {
        self.standards
            .iter()
            .flat_map(|s| {
                s.clauses
                    .iter()
                    .filter(|c| c.verdict == Verdict::NotMet)
                    .map(move |c| format!("{} {}", s.id, c.id))
            })
            .collect()
    }
}

/// Why a token check did not run.
const NEEDS_TOKEN: &str =
    "not run: needs a live token (gmchain conformance run --hsm-profile PROFILE --token LABEL)";

/// Why a node check did not run.
const NEEDS_NODE: &str = "not run: needs a live node (gmchain conformance run --node URL --genesis FILE --key KEY --cert CERT)";

/// Runs every check once (the token checks only if `token` is given, the node checks only if
/// `node` is given) and judges every clause of `standards`.
pub fn run(
    standards: &[Standard],
    mut provenance: Provenance,
    token: Option<&dyn TokenProbe>,
    node: Option<&dyn NodeProbe>,
) -> Report {
    let mut outcomes: BTreeMap<&str, CheckOutcome> =
        registry().iter().map(|c| (c.id, c.execute())).collect();
    for c in token_checks() {
        let outcome = match token {
            Some(t) => CheckOutcome::from_evidence(c.id, c.title, (c.run)(t)),
            None => CheckOutcome {
                id: c.id.to_string(),
                title: c.title.to_string(),
                pass: false,
                cases: 0,
                evidence: Vec::new(),
                not_run: Some(NEEDS_TOKEN.to_string()),
            },
        };
        outcomes.insert(c.id, outcome);
    }
    for c in node_checks() {
        let outcome = match node {
            Some(n) => CheckOutcome::from_evidence(c.id, c.title, (c.run)(n)),
            None => CheckOutcome {
                id: c.id.to_string(),
                title: c.title.to_string(),
                pass: false,
                cases: 0,
                evidence: Vec::new(),
                not_run: Some(NEEDS_NODE.to_string()),
            },
        };
        outcomes.insert(c.id, outcome);
    }
    provenance.node = node.map(|n| n.identity());
    let identity = token.map(|t| t.identity());
    provenance.token = identity.clone();
    let ran: Vec<&CheckOutcome> = outcomes.values().filter(|o| o.not_run.is_none()).collect();
    let mut summary = Summary {
        checks_run: ran.len(),
        cases_run: ran.iter().map(|o| o.cases).sum(),
        ..Summary::default()
    };
    let mut results = Vec::new();
    for std in standards {
        let mut clauses = Vec::new();
        for c in &std.clauses {
            let checks: Vec<CheckOutcome> = c
                .checks
                .iter()
                .filter_map(|id| outcomes.get(id.as_str()).cloned())
                .collect();
            let all_ran = checks.iter().all(|o| o.not_run.is_none());
            let all_pass = !checks.is_empty()
                && checks.len() == c.checks.len()
                && checks.iter().all(|o| o.pass);
            let (verdict, cause) = match c.status {
                ClauseStatus::NotCovered => (
                    Verdict::NotMet,
                    Some(format!(
                        "not-covered: {}",
                        c.reason.clone().unwrap_or_default()
                    )),
                ),
                ClauseStatus::NotApplicable => (Verdict::NotApplicable, c.reason.clone()),
                ClauseStatus::Covered if !all_ran => (
                    Verdict::NotMet,
                    checks
                        .iter()
                        .find_map(|o| o.not_run.clone())
                        .or_else(|| Some(NEEDS_TOKEN.to_string())),
                ),
                // Certification is judged from the module's own answers beside the profile's
                // declaration: DECLARED at best, never MET.
                ClauseStatus::Covered if c.requires_certified_device => {
                    let v = certification_verdict(identity.as_ref(), all_pass);
                    if v.failed && c.level == Level::Shall {
                        summary
                            .mandatory_failed
                            .push(format!("{} {}", std.id, c.id));
                    }
                    (v.verdict, Some(v.cause))
                }
                ClauseStatus::Covered if all_pass => (Verdict::Met, None),
                ClauseStatus::Covered => {
                    match development_token_cause(&checks, identity.as_ref()) {
                        // A device clause on a development token: NOT MET, not a failed run.
                        Some(cause) => (Verdict::NotMet, Some(cause)),
                        None => {
                            if c.level == Level::Shall {
                                summary
                                    .mandatory_failed
                                    .push(format!("{} {}", std.id, c.id));
                            }
                            (Verdict::NotMet, Some("check-failed".to_string()))
                        }
                    }
                }
            };
            match verdict {
                Verdict::Met => summary.met += 1,
                Verdict::NotMet => summary.not_met += 1,
                Verdict::NotApplicable => summary.not_applicable += 1,
                Verdict::Declared => summary.declared += 1,
            }
            summary.clauses += 1;
            clauses.push(ClauseResult {
                id: c.id.clone(),
                title: c.title.clone(),
                level: c.level,
                text: c.text,
                requirement: c.requirement.clone(),
                verdict,
                cause,
                issue: c.issue,
                checks,
            });
        }
        results.push(StandardResult {
            id: std.id.clone(),
            title: std.title.clone(),
            source: std.source.clone(),
            clauses,
        });
    }
    Report {
        provenance,
        standards: results,
        summary,
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report as one self-contained HTML page.
pub fn render_html(r: &Report) -> String {
    let p = &r.provenance;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gmchain conformance report</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}.MET{color:#0a0;font-weight:bold}.NOTMET{color:#c00;font-weight:bold}.NA{color:#777;font-weight:bold}.DECLARED{color:#a60;font-weight:bold}details{margin:.2em 0}code{font-size:.9em}.fail{color:#c00}\n</style></head><body>\n");
    h.push_str("<h1>gmchain conformance report</h1>\n<table>\n");
    let prov = [
        ("gmchain", p.gmchain_version.clone()),
        ("commit", p.git_commit.clone()),
        ("Cargo.lock SM3", p.cargo_lock_sm3.clone()),
        ("rustc", p.rustc.clone()),
        (
            "OpenSSL on this machine",
            p.openssl.clone().unwrap_or_else(|| "not found".into()),
        ),
        (
            "GmSSL on this machine",
            p.gmssl.clone().unwrap_or_else(|| "not found".into()),
        ),
        ("target", p.target.clone()),
        (
            "token",
            p.token
                .as_ref()
                .map(|t| {
                    format!(
                        "{} {} serial {} label {} via {} ({}){}",
                        t.manufacturer,
                        t.model,
                        t.serial,
                        t.label,
                        t.module,
                        t.profile,
                        if t.development {
                            ": development token, not certified".to_string()
                        } else {
                            t.certification
                                .as_ref()
                                .map(|c| {
                                    format!(
                                        ": declares certificate {} ({}) for {} {} firmware {}, not confirmed",
                                        c.certificate, c.issuer, c.manufacturer, c.model, c.firmware
                                    )
                                })
                                .unwrap_or_default()
                        }
                    )
                })
                .unwrap_or_else(|| "none tested".into()),
        ),
        ("generated", p.generated_at.clone()),
    ];
    for (k, v) in prov {
        h.push_str(&format!(
            "<tr><th>{}</th><td><code>{}</code></td></tr>\n",
            esc(k),
            esc(&v)
        ));
    }
    h.push_str("</table>\n");
    let s = &r.summary;
    h.push_str(&format!(
        "<p><b>{}</b> clauses: <span class=\"MET\">{} MET</span>, <span class=\"NOTMET\">{} NOT MET</span>, <span class=\"NA\">{} NOT APPLICABLE</span>; {} checks, {} cases. Mandatory clauses failed: {}.</p>\n",
        s.clauses,
        s.met,
        s.not_met,
        s.not_applicable,
        s.checks_run,
        s.cases_run,
        if s.mandatory_failed.is_empty() { "none".to_string() } else { esc(&s.mandatory_failed.join(", ")) }
    ));
    for std in &r.standards {
        h.push_str(&format!(
            "<h2>{} — {}</h2>\n<p><i>Text: {}</i></p>\n",
            esc(&std.id),
            esc(&std.title),
            esc(&std.source)
        ));
        h.push_str("<table><tr><th>clause</th><th>level</th><th>text</th><th>requirement</th><th>verdict</th><th>checks and evidence</th></tr>\n");
        for c in &std.clauses {
            let (class, label) = match c.verdict {
                Verdict::Met => ("MET", "MET"),
                Verdict::NotMet => ("NOTMET", "NOT MET"),
                Verdict::NotApplicable => ("NA", "NOT APPLICABLE"),
                Verdict::Declared => ("DECLARED", "DECLARED"),
            };
            let mut cell = String::new();
            if let Some(cause) = &c.cause {
                cell.push_str(&format!(
                    "<p>{}{}</p>",
                    esc(cause),
                    c.issue
                        .map(|i| format!(" (issue #{i})"))
                        .unwrap_or_default()
                ));
            }
            for o in &c.checks {
                if let Some(why) = &o.not_run {
                    cell.push_str(&format!(
                        "<p><code>{}</code> {} — {}</p>",
                        esc(&o.id),
                        esc(&o.title),
                        esc(why)
                    ));
                    continue;
                }
                cell.push_str(&format!(
                    "<details><summary><code>{}</code> {} — {} ({} cases)</summary><ul>",
                    esc(&o.id),
                    esc(&o.title),
                    if o.pass {
                        "pass"
                    } else {
                        "<span class=\"fail\">FAIL</span>"
                    },
                    o.cases
                ));
                for e in &o.evidence {
                    cell.push_str(&format!(
                        "<li>{} <code>{}</code> — {}{}</li>",
                        if e.pass {
                            "✔"
                        } else {
                            "<span class=\"fail\">✘</span>"
                        },
                        esc(&e.case),
                        esc(&e.source),
                        if e.detail.is_empty() {
                            String::new()
                        } else if e.pass {
                            format!(": {}", esc(&e.detail))
                        } else {
                            format!(": <span class=\"fail\">{}</span>", esc(&e.detail))
                        }
                    ));
                }
                cell.push_str("</ul></details>");
            }
            h.push_str(&format!(
                "<tr><td>{}<br>{}</td><td>{:?}</td><td>{:?}</td><td>{}</td><td class=\"{class}\">{label}</td><td>{cell}</td></tr>\n",
                esc(&c.id),
                esc(&c.title),
                c.level,
                c.text,
                esc(&c.requirement)
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}
