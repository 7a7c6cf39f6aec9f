//! `gmchain audit …`: the supervisor's view of the chain (issue 16, docs/audit.md).
//!
//! - `show`: the supervisor, its freeze policy, the escrow and the freezes in force.
//! - `freeze`, `unfreeze`: a supervisor's freeze of a certificate, an organisation's people or
//!   a WASM contract, with a reason (a transaction signed by an auditor of the supervisor).
//! - `trace`: every transaction of a subject over a height or time range, from the indexes the
//!   chain keeps in its state.
//! - `report`: the same as a signed JSON report (and an unsigned HTML page derived from it)
//!   holding every entry's state proof, the counters at both ends of the range with theirs,
//!   the certified headers of both ends, and the proofs of what made the signer a supervisor's
//!   auditor at the end height; checked before it is written.
//! - `verify-report`: checks a report offline against the genesis file: exit 0 when every
//!   check passes, 1 naming the first that fails.

use std::path::{Path, PathBuf};

use api::v1 as pb;
use api::v1::supervision_client::SupervisionClient;
use clap::{Subcommand, ValueEnum};
use execution::keys::{self, AUDIT, IDENTITY, SUPERVISION};
use execution::{Genesis, SupervisorRecord, TraceEntry, TraceKind, TraceRow};
use pki::{Certificate, Crl, Role, UnixTime};
use serde_json::{Value, json};
use tonic::transport::Channel;
use types::{BlockHeader, Call, Height, Limits};

use crate::cli_crypto::KeyArgs;
use crate::cli_tx::{NodeArgs, SenderArgs, connect, print_json, runtime, send, status_failure};
use crate::io::{read_cert, read_named, write_output};
use crate::{CmdResult, Failure};

/// The report file's `format`.
pub(crate) const REPORT_FORMAT: &str = "gmchain-audit-report";
/// The report file's `version`.
pub(crate) const REPORT_VERSION: u64 = 1;
/// The most entries one report holds (each one block's transactions of the subject, at most
/// 256; a larger range: several reports).
pub(crate) const MAX_REPORT_ENTRIES: u64 = 10_000;

/// What `audit freeze` and `audit unfreeze` take.
#[derive(Debug, clap::Args)]
pub(crate) struct FreezeArgs {
    #[command(flatten)]
    target: FreezeTarget,
    /// Why (1 to 512 bytes of text, recorded on the chain).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    sender: SenderArgs,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process from the command line; boxing would only complicate clap"
)]
pub(crate) enum AuditCommand {
    /// The chain's supervisor, its freeze policy, the supervision escrow and the freezes in
    /// force (JSON). Auditors of the supervising organisation only.
    Show {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Freezes a certificate, an organisation's people (its users, admins and auditors; its
    /// nodes keep running) or a WASM contract, from the next block on. Signed by an auditor of
    /// the supervising organisation (`--key`, `--cert`); the reason is on the chain.
    Freeze(FreezeArgs),
    /// Lifts the supervisor's freeze (not an admin's suspension, nor a governance freeze).
    Unfreeze(FreezeArgs),
    /// The node's watch-rule alerts as they fire, one JSON line each (until interrupted, or
    /// `--count` alerts).
    Alerts {
        /// Stop after this many alerts.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Every transaction of a subject over a range (JSON): from the chain's trace index, with
    /// the counters at both ends of the range.
    Trace {
        #[command(flatten)]
        subject: Subject,
        #[command(flatten)]
        range: Range,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A signed audit report of a subject over a range: JSON signed with the auditor's key
    /// (`--key`, `--sign-cert`), every entry with its state proof, and the proof that the range
    /// is complete; checked against the genesis file before it is written.
    Report {
        #[command(flatten)]
        subject: Subject,
        #[command(flatten)]
        range: Range,
        #[command(flatten)]
        key: KeyArgs,
        /// The auditor's certificate (role auditor, of the supervising organisation).
        #[arg(long, value_name = "FILE")]
        sign_cert: PathBuf,
        /// Certificates between the auditor's and its organisation's founding CA, issuer first.
        #[arg(long, value_name = "FILE")]
        sign_chain: Vec<PathBuf>,
        /// The chain's genesis file.
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
        /// Where to write the JSON report (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also write a readable HTML page derived from the report (unsigned).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Checks a report offline against the genesis file: its signature, that the signer held
    /// the auditor role of the supervising organisation at the report's end height, both
    /// certified headers, every entry's proof and the completeness of the range.
    VerifyReport {
        /// The report (JSON).
        report: PathBuf,
        /// The chain's genesis file.
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
}

/// The kind of a freeze's target.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FreezeKindArg {
    Cert,
    Org,
    Contract,
}

/// What a freeze names.
#[derive(Debug, clap::Args)]
pub(crate) struct FreezeTarget {
    /// cert, org or contract.
    #[arg(long)]
    kind: FreezeKindArg,
    /// A certificate (a file, or the 64 hex of its SM3 ID), an organisation's name, or a
    /// deployed contract's name.
    #[arg(long)]
    target: String,
}

/// The subject of a trace or report: exactly one.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Subject {
    /// Transactions signed by a certificate (a file, or the 64 hex of its SM3 ID).
    #[arg(long, value_name = "CERT")]
    cert: Option<String>,
    /// Transactions signed by certificates of an organisation.
    #[arg(long, value_name = "NAME")]
    org: Option<String>,
    /// Transactions calling a contract (built-in or WASM).
    #[arg(long, value_name = "NAME")]
    contract: Option<String>,
    /// The life of a dataset (`organisation/name`): registration, versions, requests,
    /// decisions, fetches.
    #[arg(long, value_name = "ID")]
    dataset: Option<String>,
    /// A WASM contract's lifecycle: proposals, votes, deployment, upgrades, freezes.
    #[arg(long, value_name = "NAME")]
    lifecycle: Option<String>,
}

/// A height range or a time range.
#[derive(Debug, clap::Args)]
pub(crate) struct Range {
    /// The first height (default 1).
    #[arg(long, value_name = "H", conflicts_with_all = ["since", "until"])]
    from: Option<u64>,
    /// The last height (default: the tip).
    #[arg(long, value_name = "H", conflicts_with_all = ["since", "until"])]
    to: Option<u64>,
    /// The blocks from this time: RFC 3339 UTC (`2026-12-05T08:00:00Z`) or ms since the epoch.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// The blocks up to this time (default: now).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

fn cert_id(option: &str, s: &str) -> Result<String, Failure> {
    let hex_id = s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex_id {
        return Ok(s.to_string());
    }
    let path = Path::new(s);
    if !path.exists() {
        return Err(Failure::BadInput(format!(
            "{option} {s:?}: neither a certificate file nor the 64 lower-case hex of a certificate's SM3 ID"
        )));
    }
    Ok(read_cert(option, path)?.fingerprint().to_hex())
}

impl Subject {
    fn resolve(&self) -> Result<(TraceKind, String), Failure> {
        let pick = [
            (TraceKind::Org, &self.org),
            (TraceKind::Contract, &self.contract),
            (TraceKind::Dataset, &self.dataset),
            (TraceKind::Lifecycle, &self.lifecycle),
        ];
        if let Some(c) = &self.cert {
            return Ok((TraceKind::Cert, cert_id("--cert", c)?));
        }
        for (kind, v) in pick {
            if let Some(v) = v {
                let v = v.clone();
                kind.check_id(&v)
                    .map_err(|e| Failure::BadInput(format!("--{kind}: {e}")))?;
                return Ok((kind, v));
            }
        }
        Err(Failure::BadInput(
            "name one subject: --cert, --org, --contract, --dataset or --lifecycle (an attestation's one transaction: gmchain query attestation, and its receipt)"
                .into(),
        ))
    }
}

/// Parses RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`) or ms since the epoch.
fn parse_time(option: &str, s: &str) -> Result<u64, Failure> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || {
        Failure::BadInput(format!(
            "{option} {s:?}: not RFC 3339 UTC (2026-12-05T08:00:00Z) or ms since the epoch"
        ))
    };
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u64>().map_err(|_| bad());
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days * 86_400 + h * 3600 + mi * 60 + se) * 1000)
}

impl Range {
    fn request(&self, kind: TraceKind, id: &str) -> Result<pb::TraceRequest, Failure> {
        let mut r = pb::TraceRequest {
            kind: kind.as_str().to_string(),
            id: id.to_string(),
            ..Default::default()
        };
        if self.since.is_some() || self.until.is_some() {
            r.from_time_ms = match &self.since {
                Some(t) => parse_time("--since", t)?.max(1),
                None => 1,
            };
            r.to_time_ms = match &self.until {
                Some(t) => parse_time("--until", t)?,
                None => 0,
            };
        } else {
            r.from_height = self.from.unwrap_or(1);
            if r.from_height == 0 {
                return Err(Failure::BadInput(
                    "--from 0: traces start at height 1 (block 0 holds no transaction)".into(),
                ));
            }
            r.to_height = self.to.unwrap_or(0);
            if self.to.is_some_and(|t| t < r.from_height) {
                return Err(Failure::BadInput(format!(
                    "--to {} is below --from {}",
                    r.to_height, r.from_height
                )));
            }
        }
        Ok(r)
    }
}

async fn supervision_client(node: &NodeArgs) -> Result<SupervisionClient<Channel>, Failure> {
    let (channel, _) = crate::client::channel_with_info(node).await?;
    Ok(SupervisionClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
}

/// A whole trace: the first page's range and counters, every entry of the range.
struct FullTrace {
    first: pb::TraceResponse,
    entries: Vec<pb::TraceEntry>,
}

/// The most bytes of entries and proofs one trace downloads (a report's JSON is about three
/// times that, and a report file may be 64 MiB): a larger range is refused before it is
/// signed, naming the way out.
pub(crate) const MAX_TRACE_BYTES: u64 = 16 << 20;

/// The entries a page asks for.
const PAGE: u32 = 100;

async fn full_trace(
    client: &mut SupervisionClient<Channel>,
    mut request: pb::TraceRequest,
    proofs: bool,
) -> Result<FullTrace, Failure> {
    request.proofs = proofs;
    request.limit = PAGE;
    let mut entries: Vec<pb::TraceEntry> = Vec::new();
    let mut first: Option<pb::TraceResponse> = None;
    let mut bytes = 0u64;
    loop {
        let page = client
            .trace(request.clone())
            .await
            .map_err(|s| status_failure("trace", s))?
            .into_inner();
        if let Some(f) = &first {
            // Later pages read the same fixed range.
            if (
                page.from_height,
                page.to_height,
                page.start_count,
                page.end_count,
            ) != (f.from_height, f.to_height, f.start_count, f.end_count)
            {
                return Err(Failure::NotVerified(
                    "the node answered the pages of one range with different counters".into(),
                ));
            }
        } else {
            // Later pages name the range the first one resolved (a time range or "to the
            // tip" could move while paging).
            request.from_height = page.from_height;
            request.to_height = page.to_height;
            request.from_time_ms = 0;
            request.to_time_ms = 0;
            let n = page
                .end_count
                .checked_sub(page.start_count)
                .ok_or_else(|| {
                    Failure::NotVerified(format!(
                        "the node's counters go backwards ({} at the start, {} at the end)",
                        page.start_count, page.end_count
                    ))
                })?;
            if n > MAX_REPORT_ENTRIES {
                return Err(Failure::BadInput(format!(
                    "the range holds {n} entries, more than {MAX_REPORT_ENTRIES}: split it (--from/--to)"
                )));
            }
        }
        let f = first.as_ref().unwrap_or(&page);
        let n = f.end_count - f.start_count;
        // Each page continues where the last one ended, never past the range's last entry
        // and never longer than asked: a node cannot make this loop run or grow without end.
        if page.entries.len() > PAGE as usize {
            return Err(Failure::NotVerified(format!(
                "the node sent {} entries in a page of at most {PAGE}",
                page.entries.len()
            )));
        }
        for e in &page.entries {
            let want = f.start_count + entries.len() as u64;
            if entries.len() as u64 >= n || e.seq != want {
                return Err(Failure::NotVerified(format!(
                    "the node sent entry {} where the range's entries are {} to {} and {want} was next",
                    e.seq,
                    f.start_count,
                    f.end_count.saturating_sub(1)
                )));
            }
            bytes = bytes.saturating_add((e.entry.len() + e.proof.len()) as u64);
            if bytes > MAX_TRACE_BYTES {
                return Err(Failure::BadInput(format!(
                    "the range's entries and proofs pass {} MiB by entry {}: split it (--from/--to)",
                    MAX_TRACE_BYTES >> 20,
                    e.seq
                )));
            }
            entries.push(e.clone());
        }
        let got = page.entries.len() as u64;
        let more = page.more;
        if first.is_none() {
            first = Some(page);
        }
        if entries.len() as u64 >= n || !more || got == 0 {
            break;
        }
        request.offset = request.offset.saturating_add(got);
    }
    let first = first.ok_or_else(|| Failure::BadInput("the node sent no trace".into()))?;
    let n = first.end_count - first.start_count;
    if entries.len() as u64 != n {
        return Err(Failure::NotVerified(format!(
            "the node sent {} of the range's {n} entries (its counters {} and {})",
            entries.len(),
            first.start_count,
            first.end_count
        )));
    }
    Ok(FullTrace { first, entries })
}

/// One transaction of an entry, as JSON (with its block's height and time).
fn row_json(e: &TraceEntry, r: &TraceRow) -> Value {
    json!({
        "height": e.height.0,
        "position": r.position,
        "tx_id": r.tx_id.to_hex(),
        "signer": r.signer.to_hex(),
        "organisation": r.organisation,
        "call": format!("{}.{}", r.contract, r.method),
        "code": r.code,
        "outcome": if r.code == 0 { "success" } else { crate::cli_tx::failure_name(r.code) },
        "timestamp_ms": e.timestamp_ms,
    })
}

/// An entry as JSON: its block and its transactions.
fn entry_json(e: &TraceEntry) -> Value {
    json!({
        "height": e.height.0,
        "timestamp_ms": e.timestamp_ms,
        "transactions": e.rows.iter().map(|r| row_json(e, r)).collect::<Vec<_>>(),
    })
}

fn decode_entry(seq: u64, bytes: &[u8]) -> Result<TraceEntry, Failure> {
    TraceEntry::decode_bytes(bytes)
        .map_err(|e| Failure::NotVerified(format!("entry {seq} does not decode: {e}")))
}

pub(crate) fn run(cmd: AuditCommand) -> CmdResult {
    match cmd {
        AuditCommand::Show { node } => {
            let rt = runtime()?;
            rt.block_on(async {
                let mut c = supervision_client(&node).await?;
                let s = c
                    .get_supervision(pb::GetSupervisionRequest {})
                    .await
                    .map_err(|s| status_failure("supervision", s))?
                    .into_inner();
                print_json(&json!({
                    "height": s.height,
                    "supervisor": s.supervisor,
                    "freeze_policy": s.freeze_policy,
                    "escrow": s.escrow.iter().map(hex::encode).collect::<Vec<_>>(),
                    "freezes": s.freezes.iter().map(|f| json!({
                        "kind": f.kind,
                        "target": f.target,
                        "reason": f.reason,
                        "height": f.height,
                        "tx_id": hex::encode(&f.tx_id),
                        "by": hex::encode(&f.by),
                    })).collect::<Vec<_>>(),
                }))
            })
        }
        AuditCommand::Alerts { count, node } => {
            let rt = runtime()?;
            rt.block_on(async {
                let mut c = supervision_client(&node).await?;
                let mut stream = c
                    .watch_alerts(pb::WatchAlertsRequest {})
                    .await
                    .map_err(|s| status_failure("alerts", s))?
                    .into_inner();
                let mut seen = 0u64;
                while count.is_none_or(|n| seen < n) {
                    let Some(a) = stream
                        .message()
                        .await
                        .map_err(|s| status_failure("alerts", s))?
                    else {
                        return Err(Failure::Unreachable(
                            "the node ended the alert stream".into(),
                        ));
                    };
                    println!(
                        "{}",
                        json!({
                            "rule": a.rule,
                            "kind": a.kind,
                            "subject": a.subject,
                            "height": a.height,
                            "count": a.count,
                            "window_blocks": a.window_blocks,
                            "detail": a.detail,
                        })
                    );
                    seen += 1;
                }
                Ok(())
            })
        }
        AuditCommand::Freeze(a) => freeze(true, &a),
        AuditCommand::Unfreeze(a) => freeze(false, &a),
        AuditCommand::Trace {
            subject,
            range,
            node,
        } => {
            let (kind, id) = subject.resolve()?;
            let request = range.request(kind, &id)?;
            let rt = runtime()?;
            rt.block_on(async {
                let mut c = supervision_client(&node).await?;
                let t = full_trace(&mut c, request, false).await?;
                // One line per transaction, with the number of the entry (block) holding it.
                let mut entries = Vec::with_capacity(t.entries.len());
                for e in &t.entries {
                    let entry = decode_entry(e.seq, &e.entry)?;
                    for r in &entry.rows {
                        let mut v = row_json(&entry, r);
                        v["seq"] = json!(e.seq);
                        entries.push(v);
                    }
                }
                print_json(&json!({
                    "kind": kind.as_str(),
                    "id": id,
                    "from": t.first.from_height,
                    "to": t.first.to_height,
                    "start_count": t.first.start_count,
                    "end_count": t.first.end_count,
                    "entries": entries,
                }))
            })
        }
        AuditCommand::Report {
            subject,
            range,
            key,
            sign_cert,
            sign_chain,
            genesis,
            out,
            html,
            node,
        } => {
            let (kind, id) = subject.resolve()?;
            let request = range.request(kind, &id)?;
            let g = node::read_genesis(&genesis).map_err(|e| Failure::BadInput(e.to_string()))?;
            let cert = read_cert("--sign-cert", &sign_cert)?;
            let mut chain = Vec::new();
            for p in &sign_chain {
                chain.push(read_cert("--sign-chain", p)?);
            }
            if cert.role() != Some(Role::Auditor) {
                return Err(Failure::BadInput(format!(
                    "--sign-cert {} is {}, not an auditor: audit reports are signed by an auditor of the supervising organisation",
                    cert.subject(),
                    cert.role().map_or("no gmchain role", Role::as_str)
                )));
            }
            let signer = key.signer()?;
            let rt = runtime()?;
            let value = rt.block_on(build_report(&node, request, &g, &cert, &chain))?;
            let signed = conformance::sign_value(value, signer.as_ref(), &cert, &chain)
                .map_err(|e| Failure::BadInput(format!("cannot sign the report: {e}")))?;
            // A report that would not verify is not written.
            let checked = verify_report(&signed.json, &g)?;
            write_output(out.as_deref(), &signed.json)?;
            if out.is_none() {
                write_output(None, b"\n")?;
            }
            if let Some(h) = html {
                let page = report_html(&signed.json)?;
                safefile::write_atomic(&h, page.as_bytes(), safefile::Mode::PUBLIC).map_err(
                    |e| Failure::BadInput(format!("cannot write --html {}: {e}", h.display())),
                )?;
            }
            eprintln!(
                "report of {} {:?}, heights {}..={}: {} entr{} (complete: counters {} → {}), signed by {}",
                kind.as_str(),
                id,
                checked.from,
                checked.to,
                checked.entries,
                if checked.entries == 1 { "y" } else { "ies" },
                checked.start_count,
                checked.end_count,
                checked.signer
            );
            Ok(())
        }
        AuditCommand::VerifyReport { report, genesis } => {
            let g = node::read_genesis(&genesis).map_err(|e| Failure::BadInput(e.to_string()))?;
            let bytes = read_named("REPORT", &report)?;
            let v = verify_report(&bytes, &g).map_err(|e| prefix(&report, e))?;
            println!(
                "report verified against genesis {} (chain {})",
                g.hash(),
                g.chain_id
            );
            println!("  subject {} {:?}", v.kind, v.id);
            match v.time {
                Some((since, Some(until))) => println!(
                    "  time {since} ms to {until} ms: the heights below are exactly the blocks of that time (proven by the blocks around them)"
                ),
                Some((since, None)) => println!(
                    "  time from {since} ms, open: the heights below start at the first block of that time (proven by the block before); blocks after the last height are not covered"
                ),
                None => {}
            }
            println!(
                "  heights {}..={}: {} entr{}, complete (the index held {} entries before the range and {} at its end)",
                v.from,
                v.to,
                v.entries,
                if v.entries == 1 { "y" } else { "ies" },
                v.start_count,
                v.end_count
            );
            println!(
                "  signed by {}, auditor of the supervisor {:?} at height {} (when the report was made)",
                v.signer, v.supervisor, v.signed_at
            );
            Ok(())
        }
    }
}

fn prefix(path: &Path, f: Failure) -> Failure {
    match f {
        Failure::NotVerified(m) => Failure::NotVerified(format!("{}: {m}", path.display())),
        Failure::BadInput(m) => Failure::BadInput(format!("{}: {m}", path.display())),
        Failure::Unreachable(m) => Failure::Unreachable(m),
    }
}

fn freeze(on: bool, a: &FreezeArgs) -> CmdResult {
    let FreezeArgs {
        target,
        reason,
        sender,
        node,
    } = a;
    let (kind, t) = match target.kind {
        FreezeKindArg::Cert => ("cert", cert_id("--target", &target.target)?),
        FreezeKindArg::Org => ("org", target.target.clone()),
        FreezeKindArg::Contract => ("contract", target.target.clone()),
    };
    let mut args = vec![
        kind.as_bytes().to_vec(),
        t.as_bytes().to_vec(),
        reason.as_bytes().to_vec(),
    ];
    // A certificate given as a file goes along, for one the chain has not recorded yet.
    if on && matches!(target.kind, FreezeKindArg::Cert) && Path::new(&target.target).is_file() {
        args.push(
            read_cert("--target", Path::new(&target.target))?
                .der()
                .to_vec(),
        );
    }
    let call = Call {
        contract: "supervision".into(),
        method: if on { "freeze" } else { "unfreeze" }.into(),
        args,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = connect(node).await?;
        let (id, _, height) = send(&mut client, sender, call).await?;
        println!(
            "{} {kind} {t:?} at height {height} (transaction {id}); in force from the next block",
            if on { "froze" } else { "unfroze" }
        );
        Ok(())
    })
}

/// The full state key of a subject's counter and of its entry `seq`.
fn count_key(kind: TraceKind, id: &str) -> Vec<u8> {
    keys::full(AUDIT, &keys::audit::count(kind.as_str(), id))
}

fn entry_key(kind: TraceKind, id: &str, seq: u64) -> Vec<u8> {
    keys::full(AUDIT, &keys::audit::entry(kind.as_str(), id, seq))
}

/// The certificate among `candidates` whose subject is `cert`'s issuer.
fn issuer_of<'c>(cert: &Certificate, candidates: &'c [Certificate]) -> Option<&'c Certificate> {
    candidates
        .iter()
        .find(|c| c.subject() == cert.issuer() && *c != cert)
}

/// The keys proving who the signer was at the end height: the CRL of each issuer on its path,
/// the supervisor record, its suspension and the supervisor's freezes of it and of its
/// organisation (absent, for an auditor who may act).
fn signer_keys(cert: &Certificate, chain: &[Certificate], g: &Genesis) -> Vec<Vec<u8>> {
    let mut candidates: Vec<Certificate> = chain.to_vec();
    candidates.extend(g.organisations.iter().map(|o| o.ca_cert.clone()));
    let mut keys_out = Vec::new();
    let mut at = cert.clone();
    for _ in 0..=chain.len() {
        let Some(issuer) = issuer_of(&at, &candidates) else {
            break;
        };
        keys_out.push(keys::full(
            IDENTITY,
            &keys::identity::crl(&issuer.fingerprint()),
        ));
        if issuer.is_self_issued() {
            break;
        }
        at = issuer.clone();
    }
    let id = cert.fingerprint();
    keys_out.push(keys::full(SUPERVISION, &keys::supervision::supervisor()));
    keys_out.push(keys::full(IDENTITY, &keys::identity::suspended(&id)));
    keys_out.push(keys::full(
        SUPERVISION,
        &keys::supervision::frozen("cert", &id.to_hex()),
    ));
    keys_out.push(keys::full(
        SUPERVISION,
        &keys::supervision::frozen("org", &cert.organisation().unwrap_or_default()),
    ));
    keys_out
}

async fn certified(client: &mut SupervisionClient<Channel>, height: u64) -> Result<Value, Failure> {
    let r = client
        .get_certified_header(pb::GetCertifiedHeaderRequest { height })
        .await
        .map_err(|s| status_failure("certified header", s))?
        .into_inner();
    if height == 0 {
        return Ok(Value::Null);
    }
    serde_json::from_str(&r.certified_json).map_err(|e| {
        Failure::NotVerified(format!(
            "the node's certified header of height {height} is not JSON: {e}"
        ))
    })
}

async fn build_report(
    node: &NodeArgs,
    request: pb::TraceRequest,
    g: &Genesis,
    cert: &Certificate,
    chain: &[Certificate],
) -> Result<Value, Failure> {
    let (kind, id) = (request.kind.clone(), request.id.clone());
    let asked = request.clone();
    let mut c = supervision_client(node).await?;
    let mut chain_client = connect(node).await?;
    let status = |s| status_failure("status", s);
    // The tip before the trace: a range "to the tip" must reach at least this far.
    let tip_before = chain_client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(status)?
        .into_inner()
        .height;
    let t = full_trace(&mut c, request, true).await?;
    let from = t.first.from_height;
    let to = t.first.to_height;
    // The node resolved the range: it must be the one asked for (a node that narrows it would
    // otherwise get a smaller report signed), and a range of heights from 1.
    if from == 0 || from > to {
        return Err(Failure::NotVerified(format!(
            "the node answered the range {from}..={to}, not a range of heights from 1"
        )));
    }
    if asked.from_height != 0
        && (from != asked.from_height || (asked.to_height != 0 && to != asked.to_height))
    {
        return Err(Failure::NotVerified(format!(
            "the node answered heights {from}..={to} for the range {}..={} asked",
            asked.from_height,
            if asked.to_height == 0 {
                "tip".to_string()
            } else {
                asked.to_height.to_string()
            }
        )));
    }
    // An open end ("to the tip", or a time range without --until) must reach the tip the
    // chain had before the trace: a node cannot end it early unnoticed.
    let open_end = if asked.from_height != 0 {
        asked.to_height == 0
    } else {
        asked.to_time_ms == 0
    };
    if open_end && to < tip_before {
        return Err(Failure::NotVerified(format!(
            "the node ended the range at height {to}, below the tip {tip_before} it had before the trace"
        )));
    }
    let start_header = certified(&mut c, from - 1).await?;
    let end_header = certified(&mut c, to).await?;
    // The signer is judged at the chain's tip when the report is made (not at the range's
    // end): an auditor revoked, suspended or frozen since cannot sign a report that verifies.
    let tip = chain_client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(status)?
        .into_inner()
        .height
        .max(to);
    // A time range carries its bounds, and the block after its end when the chain has one:
    // the verifier proves from the certified headers that the heights are exactly the blocks
    // of that time (docs/audit.md §5).
    let time = if asked.from_height == 0 {
        let until = (asked.to_time_ms != 0).then_some(asked.to_time_ms);
        let after = match until {
            Some(u) if to < tip => {
                let after = certified(&mut c, to + 1).await?;
                // A block of the range may have been committed since the trace: then the
                // range moved, not the node's answer; ask again.
                let next = receipt::CertifiedHeader::from_json_value(&after, &Limits::default())
                    .map_err(|e| {
                        Failure::NotVerified(format!(
                            "the node's certified header of height {}: {e}",
                            to + 1
                        ))
                    })?;
                if next.header.timestamp.0 <= u {
                    return Err(Failure::BadInput(format!(
                        "block {} (time {} ms), within --until {u} ms, was committed while the report was made: run it again",
                        to + 1,
                        next.header.timestamp.0
                    )));
                }
                after
            }
            // Only a later block proves where the range ends.
            Some(u) => {
                return Err(Failure::BadInput(format!(
                    "the chain has no block after height {to} yet, so nothing proves that no block up to --until {u} ms is missing: make the report once a later block exists, or name the heights (--from/--to)"
                )));
            }
            None => Value::Null,
        };
        json!({ "since_ms": asked.from_time_ms, "until_ms": until, "after_header": after })
    } else {
        Value::Null
    };
    let signer_header = certified(&mut c, tip).await?;
    let proven = c
        .prove_state(pb::ProveStateRequest {
            height: tip,
            keys: signer_keys(cert, chain, g),
        })
        .await
        .map_err(|s| status_failure("state proofs", s))?
        .into_inner();
    let mut entries = Vec::with_capacity(t.entries.len());
    for e in &t.entries {
        let decoded = decode_entry(e.seq, &e.entry)?;
        entries.push(json!({
            "seq": e.seq,
            "entry": hex::encode(&e.entry),
            "proof": hex::encode(&e.proof),
            "decoded": entry_json(&decoded),
        }));
    }
    Ok(json!({
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "chain_id": g.chain_id.as_str(),
        "genesis_sm3": g.hash().to_hex(),
        "index": { "kind": kind, "id": id },
        "range": { "from": from, "to": to, "time": time },
        "start": {
            "height": from - 1,
            "count": t.first.start_count,
            "proof": hex::encode(&t.first.start_proof),
            "certified_header": start_header,
        },
        "end": {
            "height": to,
            "count": t.first.end_count,
            "proof": hex::encode(&t.first.end_proof),
            "certified_header": end_header,
        },
        "entries": entries,
        "signer": { "height": tip, "certified_header": signer_header },
        "signer_state": proven.values.iter().map(|v| json!({
            "key": hex::encode(&v.key),
            "value": v.value.as_ref().map(hex::encode),
            "proof": hex::encode(&v.proof),
        })).collect::<Vec<_>>(),
    }))
}

/// What a verified report says.
pub(crate) struct CheckedReport {
    /// The time range the heights were proven to be, for a report asked by time.
    time: Option<(u64, Option<u64>)>,
    kind: String,
    id: String,
    from: u64,
    to: u64,
    start_count: u64,
    end_count: u64,
    entries: u64,
    signer: String,
    supervisor: String,
    signed_at: u64,
}

fn bad(m: impl Into<String>) -> Failure {
    Failure::NotVerified(m.into())
}

fn field<'v>(v: &'v Value, path: &str) -> Result<&'v Value, Failure> {
    let mut at = v;
    for p in path.split('.') {
        at = at
            .get(p)
            .ok_or_else(|| bad(format!("the report has no {path}")))?;
    }
    Ok(at)
}

fn uint(v: &Value, path: &str) -> Result<u64, Failure> {
    field(v, path)?
        .as_u64()
        .ok_or_else(|| bad(format!("{path} is not an unsigned integer")))
}

fn text<'v>(v: &'v Value, path: &str) -> Result<&'v str, Failure> {
    field(v, path)?
        .as_str()
        .ok_or_else(|| bad(format!("{path} is not a string")))
}

fn hex_of(v: &Value, path: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(text(v, path)?).map_err(|e| bad(format!("{path} is not hex: {e}")))
}

fn proof_of(v: &Value, path: &str) -> Result<state::Proof, Failure> {
    state::Proof::decode(&hex_of(v, path)?)
        .map_err(|e| bad(format!("{path} is not a state proof: {e}")))
}

/// The header the report's `start`/`end` certifies, checked: height 0 is the genesis block
/// rebuilt from the genesis file; any other height's certificate must be a quorum of the
/// validator set of that height, followed from genesis.
fn check_header(
    report: &Value,
    part: &str,
    height: u64,
    g: &Genesis,
    trust: &receipt::TrustContext,
) -> Result<BlockHeader, Failure> {
    let v = field(report, &format!("{part}.certified_header"))?;
    if height == 0 {
        if !v.is_null() {
            return Err(bad(format!(
                "{part}.certified_header: height 0 is the genesis block, rebuilt from the genesis file; the report must not carry one"
            )));
        }
        let block = g.build(&state::MemStore::new()).map_err(|e| {
            Failure::BadInput(format!("cannot rebuild block 0 from the genesis file: {e}"))
        })?;
        return Ok(block.block.header);
    }
    check_header_at(report, &format!("{part}.certified_header"), height, trust)
}

/// Checks the certified header at `path` (of a height above 0) and returns its header.
fn check_header_at(
    report: &Value,
    path: &str,
    height: u64,
    trust: &receipt::TrustContext,
) -> Result<BlockHeader, Failure> {
    let v = field(report, path)?;
    let ch = receipt::CertifiedHeader::from_json_value(v, &Limits::default())
        .map_err(|e| bad(format!("{path}: {e}")))?;
    if ch.header.height != Height(height) {
        return Err(bad(format!(
            "{path} is of height {}, not {height}",
            ch.header.height.0
        )));
    }
    ch.verify(trust)
        .map_err(|e| bad(format!("{path} (height {height}): {e}")))?;
    Ok(ch.header)
}

/// A report's time range, if it has one: `(since, until)` in ms. Checks that the range's
/// first height is the first block at or after `since` (the block before it is earlier), and
/// that its last block is not after `until`; the caller checks the block after the end
/// (`after_header`, required when there is an end) and each entry's time.
fn time_range(
    r: &Value,
    from: u64,
    to: u64,
    start: &BlockHeader,
    end: &BlockHeader,
) -> Result<Option<(u64, Option<u64>)>, Failure> {
    let t = match r.get("range").and_then(|v| v.get("time")) {
        None | Some(Value::Null) => return Ok(None),
        Some(t) => t,
    };
    let since = t
        .get("since_ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("range.time.since_ms is not an unsigned integer"))?;
    let until = match t.get("until_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("range.time.until_ms is not an unsigned integer or null"))?,
        ),
    };
    if until.is_some_and(|u| u < since) {
        return Err(bad(format!(
            "range.time ends ({} ms) before it starts ({since} ms)",
            until.unwrap_or_default()
        )));
    }
    if from > 1 && start.timestamp.0 >= since {
        return Err(bad(format!(
            "block {} (time {} ms) is within the time range that starts at {since} ms, but the range starts at height {from}: it was narrowed",
            from - 1,
            start.timestamp.0
        )));
    }
    if let Some(u) = until
        && end.timestamp.0 > u
    {
        return Err(bad(format!(
            "the range's last block {to} (time {} ms) is after the time range's end {u} ms",
            end.timestamp.0
        )));
    }
    if let Some(after) = t.get("after_header")
        && !after.is_null()
        && until.is_none()
    {
        return Err(bad(
            "range.time.after_header is set for a time range without an end",
        ));
    }
    Ok(Some((since, until)))
}

fn check_count(
    report: &Value,
    part: &str,
    header: &BlockHeader,
    key: &[u8],
) -> Result<u64, Failure> {
    let count = uint(report, &format!("{part}.count"))?;
    let proof = proof_of(report, &format!("{part}.proof"))?;
    let value = (count != 0).then(|| count.to_be_bytes());
    state::verify_proof(
        header.state_root,
        key,
        value.as_ref().map(|v| &v[..]),
        &proof,
    )
    .map_err(|e| {
        bad(format!(
            "{part}.count {count} is not the index's counter at height {}: {e}",
            header.height.0
        ))
    })?;
    Ok(count)
}

/// Checks a report offline against genesis `g` (docs/audit.md §3).
pub(crate) fn verify_report(bytes: &[u8], g: &Genesis) -> Result<CheckedReport, Failure> {
    let file = conformance::ReportFile::parse(bytes).map_err(|e| {
        if e.is_unreadable() {
            Failure::BadInput(format!("not a report: {e}"))
        } else {
            bad(e.to_string())
        }
    })?;
    let sig = file.verify_signature().map_err(|e| bad(e.to_string()))?;
    let r = file.report();
    if text(r, "format")? != REPORT_FORMAT || uint(r, "version")? != REPORT_VERSION {
        return Err(bad(format!(
            "not a {REPORT_FORMAT} version {REPORT_VERSION} report"
        )));
    }
    if text(r, "chain_id")? != g.chain_id.as_str() {
        return Err(bad(format!(
            "the report is of chain {:?}, the genesis file of {:?}",
            text(r, "chain_id")?,
            g.chain_id.as_str()
        )));
    }
    if text(r, "genesis_sm3")? != g.hash().to_hex() {
        return Err(bad(
            "the report names another genesis file (genesis_sm3 differs)".to_string(),
        ));
    }
    let kind_text = text(r, "index.kind")?;
    let kind = TraceKind::parse(kind_text)
        .ok_or_else(|| bad(format!("index.kind {kind_text:?} is not a trace kind")))?;
    let id = text(r, "index.id")?.to_string();
    kind.check_id(&id)
        .map_err(|e| bad(format!("index.id: {e}")))?;
    let (from, to) = (uint(r, "range.from")?, uint(r, "range.to")?);
    if from == 0 || from > to {
        return Err(bad(format!(
            "range {from}..={to} is not a range of heights from 1"
        )));
    }
    if uint(r, "start.height")? != from - 1 || uint(r, "end.height")? != to {
        return Err(bad(format!(
            "the counters are not read at heights {} and {to} (the range {from}..={to})",
            from - 1
        )));
    }
    let trust =
        gmchain_sdk::trust_context(g).map_err(|e| Failure::BadInput(format!("genesis: {e}")))?;
    let start_header = check_header(r, "start", from - 1, g, &trust)?;
    let end_header = check_header(r, "end", to, g, &trust)?;
    let time = time_range(r, from, to, &start_header, &end_header)?;
    let ck = count_key(kind, &id);
    let start_count = check_count(r, "start", &start_header, &ck)?;
    let end_count = check_count(r, "end", &end_header, &ck)?;
    if end_count < start_count {
        return Err(bad(format!(
            "the counter fell from {start_count} to {end_count}"
        )));
    }
    // Completeness: exactly the entries start_count .. end_count - 1, in order.
    let entries = field(r, "entries")?
        .as_array()
        .ok_or_else(|| bad("entries is not an array"))?;
    let expected = end_count - start_count;
    if entries.len() as u64 != expected {
        return Err(bad(format!(
            "the report lists {} entries; the index holds {expected} in the range (entries {start_count}..{end_count}): entries were {}",
            entries.len(),
            if (entries.len() as u64) < expected {
                "removed"
            } else {
                "added"
            }
        )));
    }
    for (i, e) in entries.iter().enumerate() {
        let seq = start_count + i as u64;
        let at = format!("entries[{i}]");
        let got = uint(e, "seq").map_err(|_| bad(format!("{at}.seq is missing")))?;
        if got != seq {
            return Err(bad(format!(
                "{at} is entry {got}, expected entry {seq}: entries were removed, added or reordered"
            )));
        }
        let bytes = hex_of(e, "entry").map_err(|f| bad(format!("{at}: {}", f.message())))?;
        let proof = proof_of(e, "proof").map_err(|f| bad(format!("{at}: {}", f.message())))?;
        state::verify_proof(
            end_header.state_root,
            &entry_key(kind, &id, seq),
            Some(&bytes),
            &proof,
        )
        .map_err(|err| {
            bad(format!(
                "{at} (entry {seq}) is not the index's entry at height {to}: it was edited ({err})"
            ))
        })?;
        let decoded = decode_entry(seq, &bytes)?;
        if decoded.height.0 < from || decoded.height.0 > to {
            return Err(bad(format!(
                "{at} (entry {seq}) is of height {}, outside the range {from}..={to}",
                decoded.height.0
            )));
        }
        if let Some((since, until)) = time {
            let ms = decoded.timestamp_ms;
            if ms < since || until.is_some_and(|u| ms > u) {
                return Err(bad(format!(
                    "{at} (entry {seq}) is of block time {ms} ms, outside the report's time range"
                )));
            }
        }
        if field(e, "decoded")? != &entry_json(&decoded) {
            return Err(bad(format!(
                "{at}.decoded differs from the proven entry's fields"
            )));
        }
    }
    // The signer: an auditor of the supervising organisation at the height the report was made
    // (the tip then, at least the range's end), its chain valid then under the CRLs the chain
    // had recorded, neither suspended nor frozen.
    let signed_at = uint(r, "signer.height")?;
    if signed_at < to {
        return Err(bad(format!(
            "signer.height {signed_at} is before the range's end {to}: the signer must be judged when the report was made"
        )));
    }
    let signer_header = check_header(r, "signer", signed_at, g, &trust)?;
    if let Some((_, Some(until))) = time {
        let next = to
            .checked_add(1)
            .ok_or_else(|| bad(format!("range.to {to} is not a height")))?;
        let after = check_header_at(r, "range.time.after_header", next, &trust)?;
        if after.timestamp.0 <= until {
            return Err(bad(format!(
                "block {next} (time {} ms) is within the time range that ends at {until} ms, but the range ends at height {to}: it was narrowed",
                after.timestamp.0
            )));
        }
    }
    let leaf = sig.certificate();
    if leaf.role() != Some(Role::Auditor) {
        return Err(bad(format!(
            "the report is signed by {}, whose role is {}, not auditor",
            leaf.subject(),
            leaf.role().map_or("none", Role::as_str)
        )));
    }
    let proven = field(r, "signer_state")?
        .as_array()
        .ok_or_else(|| bad("signer_state is not an array"))?;
    let mut values: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for (i, p) in proven.iter().enumerate() {
        let at = format!("signer_state[{i}]");
        let key = hex_of(p, "key").map_err(|_| bad(format!("{at}.key is not hex")))?;
        let value = match p.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(hex::decode(s).map_err(|_| bad(format!("{at}.value is not hex")))?)
            }
            Some(_) => return Err(bad(format!("{at}.value is not hex or null"))),
        };
        let proof =
            proof_of(p, "proof").map_err(|_| bad(format!("{at}.proof is not a state proof")))?;
        state::verify_proof(signer_header.state_root, &key, value.as_deref(), &proof).map_err(
            |e| {
                bad(format!(
                    "{at} is not the chain's state at height {signed_at}: {e}"
                ))
            },
        )?;
        values.push((key, value));
    }
    let value_of = |key: &[u8]| -> Result<Option<Vec<u8>>, Failure> {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                bad(format!(
                    "signer_state does not prove {}",
                    String::from_utf8_lossy(key)
                ))
            })
    };
    let sup_key = keys::full(SUPERVISION, &keys::supervision::supervisor());
    let sup = value_of(&sup_key)?.ok_or_else(|| {
        bad(format!(
            "the chain named no supervisor at height {signed_at}"
        ))
    })?;
    let sup = SupervisorRecord::decode_bytes(&sup)
        .map_err(|e| bad(format!("the supervisor record does not decode: {e}")))?;
    let org = leaf.organisation().unwrap_or_default();
    if sup.organisation != org {
        return Err(bad(format!(
            "the signer {} is of {org:?}, not of the supervisor {:?} at height {signed_at}",
            leaf.subject(),
            sup.organisation
        )));
    }
    let id_leaf = leaf.fingerprint();
    for (key, what) in [
        (
            keys::full(IDENTITY, &keys::identity::suspended(&id_leaf)),
            "suspended by its organisation",
        ),
        (
            keys::full(
                SUPERVISION,
                &keys::supervision::frozen("cert", &id_leaf.to_hex()),
            ),
            "frozen by the supervisor",
        ),
        (
            keys::full(SUPERVISION, &keys::supervision::frozen("org", &org)),
            "frozen with its organisation's people",
        ),
    ] {
        if value_of(&key)?.is_some() {
            return Err(bad(format!(
                "the signer {} was {what} at height {signed_at}",
                leaf.subject()
            )));
        }
    }
    let mut crls: Vec<Crl> = Vec::new();
    for (key, value) in &values {
        if key.starts_with(b"identity/crl/")
            && let Some(v) = value
        {
            crls.push(
                Crl::from_der(v).map_err(|e| bad(format!("a proven CRL does not parse: {e}")))?,
            );
        }
    }
    let at = UnixTime(signer_header.timestamp.0 / 1000);
    trust
        .consortium
        .validate(leaf, sig.chain(), &crls, at, Role::Auditor)
        .map_err(|e| {
            bad(format!(
                "the signer {} was not a valid auditor at height {signed_at} (time {} s) under the CRLs the chain had recorded: {e}",
                leaf.subject(),
                at.0
            ))
        })?;
    Ok(CheckedReport {
        time,
        kind: kind.as_str().to_string(),
        id,
        from,
        to,
        start_count,
        end_count,
        entries: expected,
        signer: leaf.subject(),
        supervisor: sup.organisation,
        signed_at,
    })
}

/// Checks that the audit log at `path` (of `kind`, signed by `log_cert`) holds the entry whose
/// head the chain anchored last for that certificate, with that hash: exit 1 naming a
/// truncation or a rewrite since the anchor.
pub(crate) fn check_anchored_head(
    path: &Path,
    kind: &'static auditlog::Kind,
    log_cert: &Certificate,
    node: &NodeArgs,
) -> CmdResult {
    let rt = runtime()?;
    let anchored = rt.block_on(async {
        let mut c = connect(node).await?;
        c.get_log_head(pb::GetLogHeadRequest {
            log: log_cert.fingerprint().0.to_vec(),
        })
        .await
        .map_err(|s| status_failure("log head", s))
        .map(tonic::Response::into_inner)
    })?;
    if !anchored.anchored {
        return Err(Failure::NotVerified(format!(
            "the chain holds no anchored head of the audit log {} signs (tip {}): nothing to compare",
            log_cert.subject(),
            anchored.tip
        )));
    }
    let entries = auditlog::Log::new(path, kind)
        .read()
        .map_err(|e| Failure::NotVerified(format!("{}: {e}", path.display())))?;
    let head = hex::encode(&anchored.head);
    match entries.iter().find(|e| e.seq == anchored.seq) {
        Some(e) if e.hash == head => {
            println!(
                "anchored head OK: entry {} hash {head}, anchored at height {}",
                anchored.seq, anchored.height
            );
            Ok(())
        }
        Some(e) => Err(Failure::NotVerified(format!(
            "{}: entry {} has hash {}, but the chain anchored {head} for it at height {}: the log was rewritten",
            path.display(),
            anchored.seq,
            e.hash,
            anchored.height
        ))),
        None => Err(Failure::NotVerified(format!(
            "{}: the log ends before entry {}, which the chain anchored (hash {head}) at height {}: the log was truncated",
            path.display(),
            anchored.seq,
            anchored.height
        ))),
    }
}

/// Anchors the head of the audit log at `path` (of `kind`, signed by `log_cert`, whose key
/// `log_signer` signs the anchor statement) on the chain with a `supervision.anchor_log`
/// transaction of `sender`.
pub(crate) fn anchor_head(
    path: &Path,
    kind: &'static auditlog::Kind,
    log_cert: &Certificate,
    log_signer: &dyn crypto::Signer,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    let entries = auditlog::Log::new(path, kind)
        .read()
        .map_err(|e| Failure::NotVerified(format!("{}: {e}", path.display())))?;
    let Some(last) = entries.last() else {
        return Err(Failure::BadInput(format!(
            "{}: the audit log is empty: nothing to anchor",
            path.display()
        )));
    };
    let head = hex::decode(&last.hash)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| {
            Failure::NotVerified(format!(
                "{}: entry {} has a hash that is not 32 bytes of hex",
                path.display(),
                last.seq
            ))
        })?;
    let log = log_cert.fingerprint();
    let head_digest = crypto::Digest(<[u8; 32]>::try_from(head.as_slice()).unwrap_or([0; 32]));
    let statement = execution::log_anchor_statement(&log, last.seq, &head_digest);
    let sig = log_signer
        .sign(&crypto::UserId::default(), &statement)
        .map_err(|e| Failure::coded(&e, format!("cannot sign the anchor with the CA key: {e}")))?;
    let call = Call {
        contract: "supervision".into(),
        method: "anchor_log".into(),
        args: vec![
            log.0.to_vec(),
            last.seq.to_be_bytes().to_vec(),
            head,
            crypto::gmt0009::encode_signature(&sig),
        ],
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = connect(node).await?;
        let (id, _, height) = send(&mut client, sender, call).await?;
        println!(
            "anchored entry {} hash {} of {} at height {height} (transaction {id})",
            last.seq,
            last.hash,
            path.display()
        );
        Ok(())
    })
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A readable page derived from a report's JSON. It is not signed: the JSON is the report.
fn report_html(json_bytes: &[u8]) -> Result<String, Failure> {
    let v: Value = serde_json::from_slice(json_bytes)
        .map_err(|e| Failure::BadInput(format!("the report is not JSON: {e}")))?;
    let s = |p: &str| {
        field(&v, p)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let mut rows = String::new();
    if let Some(entries) = v.get("entries").and_then(Value::as_array) {
        for e in entries {
            let txs = e["decoded"]["transactions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for d in &txs {
                let cell = |k: &str| {
                    escape_html(&match &d[k] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                };
                rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape_html(&e["seq"].to_string()),
                    cell("height"),
                    cell("timestamp_ms"),
                    cell("tx_id"),
                    cell("organisation"),
                    cell("call"),
                    cell("outcome"),
                ));
            }
        }
    }
    let signer = v
        .get("signature")
        .and_then(|x| x.get("certificate"))
        .and_then(Value::as_str)
        .and_then(|p| Certificate::from_pem(p.as_bytes()).ok())
        .map(|c| c.subject())
        .unwrap_or_default();
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gmchain audit report: {kind} {id}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px 8px;font-size:90%}}.note{{color:#a00}}</style></head>
<body>
<h1>Audit report: {kind} {id}</h1>
<p class="note">This page is derived from the signed JSON report and is not signed itself. Check the JSON with <code>gmchain audit verify-report REPORT --genesis genesis.json</code>.</p>
<p>Chain <b>{chain}</b>, heights {from} to {to}. The index held {start} entries (one per block that touched the subject) before the range and {end} at its end: {n} entries, all listed below transaction by transaction, with their state proofs in the JSON.</p>
<p>Signed by {signer}.</p>
<table><tr><th>entry</th><th>height</th><th>time (ms)</th><th>transaction</th><th>organisation</th><th>call</th><th>outcome</th></tr>
{rows}</table>
</body></html>
"#,
        kind = escape_html(&s("index.kind")),
        id = escape_html(&s("index.id")),
        chain = escape_html(&s("chain_id")),
        from = escape_html(&s("range.from")),
        to = escape_html(&s("range.to")),
        start = escape_html(&s("start.count")),
        end = escape_html(&s("end.count")),
        n = v
            .get("entries")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        signer = escape_html(&signer),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("--since", "1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("--since", "2026-12-05T08:00:00Z").unwrap(),
            1_796_457_600_000
        );
        assert_eq!(parse_time("--since", "1234").unwrap(), 1234);
        assert!(parse_time("--since", "2026-13-05T08:00:00Z").is_err());
        assert!(parse_time("--since", "yesterday").is_err());
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        assert_eq!(escape_html("<a&\"'>"), "&lt;a&amp;&quot;&#39;&gt;");
    }
}
