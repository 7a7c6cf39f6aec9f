//! Running the suite and rendering its report.

use crate::checks::{CheckOutcome, registry};
use crate::model::{ClauseStatus, Level, Standard, TextFidelity};
use crate::node::{NodeIdentity, NodeProbe, node_checks};
use crate::signed::SignedBy;
use crate::token::{
    CONFIRM_WITH_ISSUER, MODULE_IDENTITY, TokenIdentity, TokenProbe, certification_verdict,
    development_token_cause, token_checks,
};
use serde::{Deserialize, Serialize};
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
    /// A check ran and failed, or a check the clause needs did not run (no token or node given).
    #[serde(rename = "NOT MET")]
    NotMet,
    /// No check proves the whole clause yet (and none of the checks proving part of it failed).
    #[serde(rename = "NOT COVERED")]
    NotCovered,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    pub level: Level,
    pub text: TextFidelity,
    pub requirement: String,
    pub verdict: Verdict,
    /// For NOT MET, "check-failed" or why a check did not run; for NOT COVERED and NOT
    /// APPLICABLE, the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<u32>,
    /// What the checks prove and what they do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub checks: Vec<CheckOutcome>,
}

/// One standard's results.
#[derive(Debug, Clone, Serialize)]
pub struct StandardResult {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    pub source: String,
    pub clauses: Vec<ClauseResult>,
}

/// The whole report. The summary comes before the clauses, as the report opens with it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub provenance: Provenance,
    pub summary: Summary,
    pub standards: Vec<StandardResult>,
}

/// Clauses counted by verdict.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Counts {
    pub clauses: usize,
    pub met: usize,
    pub not_met: usize,
    pub not_covered: usize,
    pub not_applicable: usize,
    /// Clauses whose certification is only declared (see [`Verdict::Declared`]).
    pub declared: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        self.clauses += 1;
        match v {
            Verdict::Met => self.met += 1,
            Verdict::NotMet => self.not_met += 1,
            Verdict::NotCovered => self.not_covered += 1,
            Verdict::NotApplicable => self.not_applicable += 1,
            Verdict::Declared => self.declared += 1,
        }
    }

    /// "N clauses: a MET, b NOT MET, c NOT COVERED, d NOT APPLICABLE".
    pub fn line(&self) -> String {
        let declared = if self.declared > 0 {
            format!(", {} DECLARED", self.declared)
        } else {
            String::new()
        };
        format!(
            "{} clauses: {} MET, {} NOT MET, {} NOT COVERED, {} NOT APPLICABLE{declared}",
            self.clauses, self.met, self.not_met, self.not_covered, self.not_applicable
        )
    }
}

/// One standard's share of the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StandardSummary {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Clause ids of the mandatory (shall) clauses NOT MET, whatever the cause.
    pub mandatory_not_met: Vec<String>,
    /// Clause ids of the mandatory (shall) clauses NOT COVERED.
    pub mandatory_not_covered: Vec<String>,
}

/// Counts over all clauses, then per standard. Deserialize too: `verify-report` prints the
/// headline of the report it verified.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    pub checks_run: usize,
    pub cases_run: usize,
    /// Mandatory clauses ("STANDARD clause") with a check that ran and failed: any makes
    /// `gmchain conformance run` exit 1.
    pub mandatory_failed: Vec<String>,
    /// Every mandatory clause NOT MET: those above, and those NOT MET for another cause (a
    /// check that needs a token or a node not given, a device that is not certified).
    pub mandatory_not_met: Vec<String>,
    /// Every mandatory clause NOT COVERED: printed, counted, but not failing the run.
    pub mandatory_not_covered: Vec<String>,
    pub standards: Vec<StandardSummary>,
}

impl Summary {
    /// The headline: the totals; each standard's counts by verdict, with its mandatory clauses
    /// NOT MET and NOT COVERED named; then how many mandatory clauses are open and which have
    /// a check that ran and failed (those alone make the run exit 1).
    pub fn headline(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} ({} checks, {} cases)",
            self.counts.line(),
            self.checks_run,
            self.cases_run
        )];
        for s in &self.standards {
            out.push(format!("  {}: {}", s.id, s.counts.line()));
            let mut open = Vec::new();
            if !s.mandatory_not_met.is_empty() {
                open.push(format!(
                    "mandatory NOT MET: {}",
                    s.mandatory_not_met.join(", ")
                ));
            }
            if !s.mandatory_not_covered.is_empty() {
                open.push(format!(
                    "mandatory NOT COVERED: {}",
                    s.mandatory_not_covered.join(", ")
                ));
            }
            if !open.is_empty() {
                out.push(format!("      {}", open.join("; ")));
            }
        }
        out.push(format!(
            "Mandatory clauses NOT MET: {}, NOT COVERED: {}; with a check that ran and failed: {}",
            self.mandatory_not_met.len(),
            self.mandatory_not_covered.len(),
            list_or_none(&self.mandatory_failed)
        ));
        out
    }
}

impl Report {
    /// Returns "STANDARD clause" for every clause with this verdict.
    pub fn with_verdict(&self, v: Verdict) -> Vec<String> {
        self.standards
            .iter()
            .flat_map(|s| {
                s.clauses
                    .iter()
                    .filter(move |c| c.verdict == v)
                    .map(move |c| format!("{} {}", s.id, c.id))
            })
            .collect()
    }

    /// Returns "STANDARD clause" for every NOT MET clause.
    pub fn not_met(&self) -> Vec<String> {
        self.with_verdict(Verdict::NotMet)
    }

    /// Returns "STANDARD clause" for every NOT COVERED clause.
    pub fn not_covered(&self) -> Vec<String> {
        self.with_verdict(Verdict::NotCovered)
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
            // A writing check runs only if the auditor allowed it on a test chain.
            Some(n) => c.execute(n),
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
        let mut counts = Counts::default();
        let mut std_not_met = Vec::new();
        let mut std_not_covered = Vec::new();
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
            // A check that ran and failed (an unknown check, or a covered clause naming none,
            // counts as failed): the only NOT MET that fails the run. Otherwise, once every
            // check ran, every check passed.
            let mut failed = checks.iter().any(|o| o.not_run.is_none() && !o.pass)
                || checks.len() != c.checks.len()
                || (c.status == ClauseStatus::Covered && checks.is_empty());
            let (verdict, cause) = match c.status {
                ClauseStatus::NotCovered if failed => {
                    (Verdict::NotMet, Some("check-failed".to_string()))
                }
                ClauseStatus::NotCovered => (Verdict::NotCovered, c.reason.clone()),
                ClauseStatus::NotApplicable => (Verdict::NotApplicable, c.reason.clone()),
                ClauseStatus::Covered if !all_ran && !failed => (
                    Verdict::NotMet,
                    checks
                        .iter()
                        .find_map(|o| o.not_run.clone())
                        .or_else(|| Some(NEEDS_TOKEN.to_string())),
                ),
                // Certification is judged from the module's own answers beside the profile's
                // declaration: DECLARED at best, never MET.
                ClauseStatus::Covered if c.requires_certified_device && all_ran => {
                    let others_pass = checks.iter().all(|o| o.pass || o.id == MODULE_IDENTITY);
                    let v = certification_verdict(identity.as_ref(), all_pass, others_pass);
                    failed = v.failed;
                    (v.verdict, Some(v.cause))
                }
                ClauseStatus::Covered if failed => {
                    match development_token_cause(&checks, identity.as_ref()) {
                        // A device clause on a development token: NOT MET, not a failed run.
                        Some(cause) => {
                            failed = false;
                            (Verdict::NotMet, Some(cause))
                        }
                        None => (Verdict::NotMet, Some("check-failed".to_string())),
                    }
                }
                // A device clause (keys generated and kept in a certified module) passes its
                // checks only on a module whose profile declares a certification: the module's
                // behaviour was observed, its certification and random source were not. At best
                // DECLARED, never MET (found in review: a forged declaration on SoftHSM made
                // key generation MET).
                ClauseStatus::Covered if checks.iter().any(|o| o.id == MODULE_IDENTITY) => (
                    Verdict::Declared,
                    Some(format!(
                        "the checks passed on a module that declares a certification, which the suite cannot confirm (nor the module's random source): {CONFIRM_WITH_ISSUER}"
                    )),
                ),
                ClauseStatus::Covered => (Verdict::Met, None),
            };
            let name = format!("{} {}", std.id, c.id);
            if c.level == Level::Shall {
                match verdict {
                    Verdict::NotMet => {
                        if failed {
                            summary.mandatory_failed.push(name.clone());
                        }
                        summary.mandatory_not_met.push(name);
                        std_not_met.push(c.id.clone());
                    }
                    Verdict::NotCovered => {
                        summary.mandatory_not_covered.push(name);
                        std_not_covered.push(c.id.clone());
                    }
                    Verdict::Met | Verdict::NotApplicable | Verdict::Declared => {}
                }
            }
            counts.add(verdict);
            summary.counts.add(verdict);
            clauses.push(ClauseResult {
                id: c.id.clone(),
                title: c.title.clone(),
                title_zh: c.title_zh.clone(),
                level: c.level,
                text: c.text,
                requirement: c.requirement.clone(),
                verdict,
                cause,
                issue: c.issue,
                note: c.note.clone(),
                checks,
            });
        }
        summary.standards.push(StandardSummary {
            id: std.id.clone(),
            title: std.title.clone(),
            title_zh: std.title_zh.clone(),
            counts,
            mandatory_not_met: std_not_met,
            mandatory_not_covered: std_not_covered,
        });
        results.push(StandardResult {
            id: std.id.clone(),
            title: std.title.clone(),
            title_zh: std.title_zh.clone(),
            source: std.source.clone(),
            clauses,
        });
    }
    Report {
        provenance,
        summary,
        standards: results,
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

/// Renders an unsigned report as one self-contained HTML page, which says it is unsigned.
pub fn render_html(r: &Report) -> String {
    render(r, None)
}

/// Renders a signed report as one self-contained HTML page: it names the signer and says that
/// the page itself is unsigned (only report.json is).
pub fn render_signed_html(r: &Report, by: &SignedBy) -> String {
    render(r, Some(by))
}

/// What the page says about its signature, right under the title.
fn render_signature(h: &mut String, by: Option<&SignedBy>) {
    match by {
        Some(b) => h.push_str(&format!(
            "<div class=\"sig\"><p><b>Signed report.</b> report.json is signed by the auditor <code>{}</code> (certificate serial <code>{}</code>, issued by <code>{}</code>); SM3 of its signed canonical bytes: <code>{}</code>. <b>This HTML page is derived from report.json and is itself unsigned</b>: rely only on report.json as verified by <code>gmchain conformance verify-report report.json --anchor ROOT.pem --crl ROOT.crl --crl AGENCY.crl</code>.</p>\n<p lang=\"zh\">本报告的 report.json 由审计员 <code>{}</code>（证书序列号 <code>{}</code>）签名。本 HTML 页面由 report.json 生成，本身未签名：请以 <code>gmchain conformance verify-report</code> 验证通过的 report.json 为准。</p></div>\n",
            esc(&b.subject),
            esc(&b.serial),
            esc(&b.issuer),
            esc(&b.content_sm3),
            esc(&b.subject),
            esc(&b.serial),
        )),
        None => h.push_str(
            "<div class=\"sig unsigned\"><p><b>This report is unsigned</b>: nothing shows who ran it or that it is unchanged since. A report an auditor relies on is signed (<code>gmchain conformance run --sign-key KEY --sign-cert AUDITOR.pem</code>) and its report.json verified (<code>gmchain conformance verify-report</code>).</p>\n<p lang=\"zh\">本报告未签名：无法证明由谁生成、生成后是否被修改。</p></div>\n",
        ),
    }
}

fn render(r: &Report, by: Option<&SignedBy>) -> String {
    let p = &r.provenance;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gmchain conformance report</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}.MET{color:#0a0;font-weight:bold}.NOTMET{color:#c00;font-weight:bold}.NA{color:#777;font-weight:bold}.NC{color:#b60;font-weight:bold}.DECLARED{color:#a60;font-weight:bold}details{margin:.2em 0}code{font-size:.9em}.fail{color:#c00}.num{text-align:right}.sig{border:1px solid #888;padding:.2em .8em;background:#f8f8f8}.unsigned{border-color:#c00}\n</style></head><body>\n");
    h.push_str("<h1>gmchain conformance report <span lang=\"zh\">密码应用符合性报告</span></h1>\n");
    render_signature(&mut h, by);
    render_summary(&mut h, &r.summary);
    h.push_str("<h2>Provenance <span lang=\"zh\">测试对象与环境</span></h2>\n<table>\n");
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
    for std in &r.standards {
        h.push_str(&format!(
            "<h2>{} — {}{}</h2>\n<p><i>Text: {}</i></p>\n",
            esc(&std.id),
            esc(&std.title),
            zh(std.title_zh.as_deref(), "<br>"),
            esc(&std.source)
        ));
        h.push_str("<table><tr><th>clause <span lang=\"zh\">条款</span></th><th>level <span lang=\"zh\">要求</span></th><th>text <span lang=\"zh\">文本</span></th><th>requirement <span lang=\"zh\">要求内容</span></th><th>verdict <span lang=\"zh\">结论</span></th><th>checks and evidence <span lang=\"zh\">检查与证据</span></th></tr>\n");
        for c in &std.clauses {
            let class = c.verdict.css_class();
            let label = format!(
                "{}<br><span lang=\"zh\">{}</span>",
                c.verdict.label(),
                c.verdict.label_zh()
            );
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
            if let Some(note) = &c.note {
                cell.push_str(&format!("<p><b>Note:</b> {}</p>", esc(note)));
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
                "<tr><td>{}<br>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{label}</td><td>{cell}</td></tr>\n",
                esc(&c.id),
                esc(&c.title),
                zh(c.title_zh.as_deref(), "<br>"),
                level_label(c.level),
                text_label(c.text),
                esc(&c.requirement)
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

impl Verdict {
    /// The verdict as the report prints it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "MET",
            Verdict::NotMet => "NOT MET",
            Verdict::NotCovered => "NOT COVERED",
            Verdict::NotApplicable => "NOT APPLICABLE",
            Verdict::Declared => "DECLARED",
        }
    }

    /// The verdict in Chinese, as assessment reports word it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Verdict::Met => "符合",
            Verdict::NotMet => "不符合",
            Verdict::NotCovered => "未覆盖",
            Verdict::NotApplicable => "不适用",
            Verdict::Declared => "声明（待核实）",
        }
    }

    fn css_class(self) -> &'static str {
        match self {
            Verdict::Met => "MET",
            Verdict::NotMet => "NOTMET",
            Verdict::NotCovered => "NC",
            Verdict::NotApplicable => "NA",
            Verdict::Declared => "DECLARED",
        }
    }
}

fn level_label(l: Level) -> &'static str {
    match l {
        Level::Shall => "shall <span lang=\"zh\">应</span>",
        Level::Should => "should <span lang=\"zh\">宜</span>",
        Level::May => "may <span lang=\"zh\">可</span>",
    }
}

fn text_label(t: TextFidelity) -> &'static str {
    match t {
        TextFidelity::Exact => "exact",
        TextFidelity::Paraphrased => "paraphrased",
        TextFidelity::Inferred => "inferred",
    }
}

/// The Chinese title after `sep`, or nothing.
fn zh(title: Option<&str>, sep: &str) -> String {
    title
        .map(|t| format!("{sep}<span lang=\"zh\">{}</span>", esc(t)))
        .unwrap_or_default()
}

/// The summary the report opens with: counts by verdict per standard, then the mandatory
/// clauses NOT MET and NOT COVERED by name, and the rule for the exit code.
fn render_summary(h: &mut String, s: &Summary) {
    let head = [
        Verdict::Met,
        Verdict::NotMet,
        Verdict::NotCovered,
        Verdict::NotApplicable,
        Verdict::Declared,
    ]
    .map(|v| {
        format!(
            "<th class=\"{} num\">{}<br><span lang=\"zh\">{}</span></th>",
            v.css_class(),
            v.label(),
            v.label_zh()
        )
    })
    .concat();
    h.push_str(&format!(
        "<h2>Summary by standard <span lang=\"zh\">各标准结论汇总</span></h2>\n<table><tr><th>standard <span lang=\"zh\">标准</span></th><th class=\"num\">clauses<br><span lang=\"zh\">条款数</span></th>{head}<th>mandatory (shall) clauses NOT MET / NOT COVERED<br><span lang=\"zh\">“应”条款：不符合 / 未覆盖</span></th></tr>\n"
    ));
    let row = |name: String, c: &Counts, open: String| {
        format!(
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{open}</td></tr>\n",
            c.clauses, c.met, c.not_met, c.not_covered, c.not_applicable, c.declared
        )
    };
    for st in &s.standards {
        let open = format!(
            "{} / {}",
            esc(&list_or_none(&st.mandatory_not_met)),
            esc(&list_or_none(&st.mandatory_not_covered))
        );
        h.push_str(&row(
            format!(
                "<b>{}</b> {}{}",
                esc(&st.id),
                esc(&st.title),
                zh(st.title_zh.as_deref(), "<br>")
            ),
            &st.counts,
            open,
        ));
    }
    h.push_str(&row(
        "<b>all standards</b> <span lang=\"zh\">合计</span>".to_string(),
        &s.counts,
        format!(
            "{} / {}",
            s.mandatory_not_met.len(),
            s.mandatory_not_covered.len()
        ),
    ));
    h.push_str("</table>\n");
    h.push_str(&format!(
        "<p><b>Mandatory clauses NOT MET <span lang=\"zh\">不符合的“应”条款</span>: {}</b>{}</p>\n",
        s.mandatory_not_met.len(),
        if s.mandatory_not_met.is_empty() {
            String::new()
        } else {
            format!(" — {}", esc(&s.mandatory_not_met.join(", ")))
        }
    ));
    h.push_str(&format!(
        "<p>Of these, with a check that ran and failed: {}.</p>\n",
        esc(&list_or_none(&s.mandatory_failed))
    ));
    h.push_str(&format!(
        "<p><b>Mandatory clauses NOT COVERED <span lang=\"zh\">未覆盖的“应”条款</span>: {}</b>{}</p>\n",
        s.mandatory_not_covered.len(),
        if s.mandatory_not_covered.is_empty() {
            String::new()
        } else {
            format!(" — {}", esc(&s.mandatory_not_covered.join(", ")))
        }
    ));
    h.push_str(&format!(
        "<p>{} checks ran, {} cases. MET: every check mapped to the clause ran and passed. NOT MET: a check ran and failed, or a check the clause needs did not run (no token or node given), or the device is not certified. NOT COVERED: no check proves the whole clause yet (any checks shown prove part of it). <code>gmchain conformance run</code> exits 1 only when a mandatory clause has a check that ran and failed.</p>\n",
        s.checks_run, s.cases_run
    ));
}

fn list_or_none(l: &[String]) -> String {
    if l.is_empty() {
        "none".to_string()
    } else {
        l.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(toml_text: &str) -> Standard {
        toml::from_str(toml_text).unwrap()
    }

    /// A check that ran and failed makes even a partly covered clause NOT MET, and a mandatory
    /// one fails the run; the headline names each standard's open mandatory clauses.
    #[test]
    fn a_failed_check_on_a_partly_covered_clause_is_not_met_and_named() {
        // An unknown check id counts as a check that failed (load_standards refuses it; a
        // hand-built map here stands for a check that ran and failed).
        let s = standard(
            r#"
id = "TEST-C"
title = "c"
source = "test"
[[clause]]
id = "1"
title = "partly covered, its check fails"
level = "shall"
text = "inferred"
requirement = "r"
checks = ["no-such-check"]
status = "not-covered"
reason = "only part"
note = "n"
[[clause]]
id = "2"
title = "not covered"
level = "shall"
text = "inferred"
requirement = "r"
status = "not-covered"
reason = "none"
"#,
        );
        let r = run(&[s], Provenance::default(), None, None);
        assert_eq!(r.standards[0].clauses[0].verdict, Verdict::NotMet);
        assert_eq!(r.standards[0].clauses[1].verdict, Verdict::NotCovered);
        assert_eq!(r.summary.mandatory_failed, vec!["TEST-C 1".to_string()]);
        assert_eq!(r.summary.mandatory_not_met, vec!["TEST-C 1".to_string()]);
        assert_eq!(
            r.summary.mandatory_not_covered,
            vec!["TEST-C 2".to_string()]
        );
        assert_eq!(
            r.summary.headline(),
            vec![
                format!(
                    "2 clauses: 0 MET, 1 NOT MET, 1 NOT COVERED, 0 NOT APPLICABLE ({} checks, {} cases)",
                    r.summary.checks_run, r.summary.cases_run
                ),
                "  TEST-C: 2 clauses: 0 MET, 1 NOT MET, 1 NOT COVERED, 0 NOT APPLICABLE".to_string(),
                "      mandatory NOT MET: 1; mandatory NOT COVERED: 2".to_string(),
                "Mandatory clauses NOT MET: 1, NOT COVERED: 1; with a check that ran and failed: TEST-C 1"
                    .to_string(),
            ]
        );
        let html = render_html(&r);
        assert!(html.contains("with a check that ran and failed: TEST-C 1"));
        assert!(html.contains("<b>Note:</b> n"));
    }
}
