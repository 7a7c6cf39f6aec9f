//! Watch rules (`[[watch.rule]]`, issue 16 item 4): patterns the node looks for in what it
//! commits and in what admission refuses, each raising an [`Alert`] when a subject crosses its
//! threshold within a window of blocks.
//!
//! - `refused-signer`: admission refused a transaction with one of the rule's codes (by
//!   default the codes of a revoked, suspended, unregistered or removed identity), per signer;
//! - `fetch-rate`: `exchange.record_fetch` records (served or refused) per requester, per
//!   dataset or per both;
//! - `failed-rate`: committed transactions whose receipt carries a failure code, for the whole
//!   chain or per signer;
//! - `missed-rounds`: a validator of a height whose precommit is not in that height's commit
//!   certificate.
//!
//! An alert goes to three places: the [`Watcher::subscribe`] channel, the counter
//! `gmchain_watch_alerts_total{rule}` and one `warn` log line. A rule fires at most once per
//! subject per window: after an alert at height `h` the subject is quiet until `h + window`.
//!
//! # Cost, and what is deliberately absent
//!
//! Rules see only what is already in memory at commit (the block, its receipts, its
//! certificate and the height's validator set) or at a refusal (the refused bytes, decoded
//! only when a rule watches the code): no state read, no scan of earlier blocks. Each subject
//! keeps at most one entry per height of its window, and each rule tracks at most
//! `watch.max_subjects` subjects. At that cap the rule first forgets the subjects with nothing
//! in their window (at most one sweep per height); if it is still full, a new subject's events
//! are counted under the one subject [`OVERFLOW_SUBJECT`] (and in
//! `gmchain_watch_untracked_events_total`), so a flood of new subjects is still seen as a rate,
//! but no longer attributed. Alerts are not stored: a subscriber that lags more than
//! [`CHANNEL_CAPACITY`] alerts loses the oldest (the counter and the log keep them). Rule state
//! is not persisted: after a restart the windows start empty.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crypto::Digest;
use execution::RejectCode;
use serde::Deserialize;
use tokio::sync::broadcast;
use types::{Block, CommitCertificate, Receipt, Sender, Status, ValidatorSet};

use crate::metrics::Metrics;

/// The subject that counts the events of new subjects once a rule tracks `max_subjects`.
pub const OVERFLOW_SUBJECT: &str = "(untracked subjects)";

/// Alerts kept for a subscriber that has not read them yet.
pub const CHANNEL_CAPACITY: usize = 1024;

/// The refusal codes a `refused-signer` rule watches unless it lists its own: a signer the
/// chain does not (or no longer) accept. The supervisor's freeze codes join this list when
/// they exist.
pub const REFUSED_SIGNER_CODES: &[RejectCode] = &[
    RejectCode::SignerRevoked,
    RejectCode::SignerSuspended,
    RejectCode::UnknownSender,
    RejectCode::OrgRemoved,
    RejectCode::CaReplaced,
    RejectCode::SignerFrozen,
    RejectCode::OrgFrozen,
];

const MAX_WINDOW_BLOCKS: u64 = 1_000_000;
const MAX_RULES: usize = 64;
const DEFAULT_MAX_SUBJECTS: usize = 10_000;
const DEFAULT_WINDOW_BLOCKS: u64 = 100;

/// What a `fetch-rate` rule counts per.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPer {
    /// The requesting certificate (SM3 id).
    Requester,
    /// The dataset (`organisation/name`) or message (`m/<id>`).
    Dataset,
    /// The pair of both.
    RequesterDataset,
}

impl FetchPer {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "requester" => Some(FetchPer::Requester),
            "dataset" => Some(FetchPer::Dataset),
            "requester-dataset" => Some(FetchPer::RequesterDataset),
            _ => None,
        }
    }
}

/// A rule's kind, with what is particular to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Admission refusals with one of `codes` (registry names), per signer.
    RefusedSigner {
        /// The refusal codes counted.
        codes: Vec<&'static str>,
    },
    /// `exchange.record_fetch` records, per `per`.
    FetchRate {
        /// The subject of the count.
        per: FetchPer,
    },
    /// Failed committed transactions, per signer or for the whole chain.
    FailedRate {
        /// Count per signer (else one subject, `chain`).
        per_signer: bool,
    },
    /// Missing precommits of a validator in the commit certificates.
    MissedRounds,
}

impl RuleKind {
    /// The kind's name in the configuration and in alerts.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::RefusedSigner { .. } => "refused-signer",
            RuleKind::FetchRate { .. } => "fetch-rate",
            RuleKind::FailedRate { .. } => "failed-rate",
            RuleKind::MissedRounds => "missed-rounds",
        }
    }
}

/// One validated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its name (`[a-z0-9_-]`, 1..=64), the metric's label.
    pub name: String,
    /// What it counts.
    pub kind: RuleKind,
    /// It fires when a subject's count in the window is above this (`max`; for
    /// `missed-rounds`, `missed - 1`).
    pub above: u64,
    /// The window, in blocks.
    pub window_blocks: u64,
}

/// `[watch]`: the rules and the cap of subjects each tracks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// Subjects tracked per rule at most (default 10 000).
    pub max_subjects: usize,
    /// The rules, in configuration order.
    pub rules: Vec<Rule>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            max_subjects: DEFAULT_MAX_SUBJECTS,
            rules: Vec::new(),
        }
    }
}

/// `[watch]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWatch {
    max_subjects: Option<usize>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// `[[watch.rule]]` as written: every field any kind takes; [`parse`] refuses the ones the
/// rule's kind does not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    name: String,
    kind: String,
    window_blocks: Option<u64>,
    max: Option<u64>,
    missed: Option<u64>,
    codes: Option<Vec<String>>,
    per: Option<String>,
    per_signer: Option<bool>,
}

/// Validates `[watch]`; an error names the field (`watch.rule[1].max`) and the problem.
pub(crate) fn parse(raw: Option<&RawWatch>) -> Result<WatchConfig, (String, String)> {
    let Some(raw) = raw else {
        return Ok(WatchConfig::default());
    };
    let max_subjects = raw.max_subjects.unwrap_or(DEFAULT_MAX_SUBJECTS);
    if !(1..=1_000_000).contains(&max_subjects) {
        return Err((
            "watch.max_subjects".into(),
            format!("{max_subjects} is outside 1..=1000000"),
        ));
    }
    if raw.rule.len() > MAX_RULES {
        return Err((
            "watch.rule".into(),
            format!("{} rules, at most {MAX_RULES}", raw.rule.len()),
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
    for (i, r) in raw.rule.iter().enumerate() {
        let field = |f: &str| format!("watch.rule[{i}].{f}");
        let valid_name = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err((
                field("name"),
                format!(
                    "{:?} must be 1..=64 characters of [a-z0-9_-] (it labels the metric)",
                    r.name
                ),
            ));
        }
        if rules.iter().any(|o| o.name == r.name) {
            return Err((
                field("name"),
                format!("{:?} names an earlier rule too", r.name),
            ));
        }
        let window_blocks = r.window_blocks.unwrap_or(DEFAULT_WINDOW_BLOCKS);
        if !(1..=MAX_WINDOW_BLOCKS).contains(&window_blocks) {
            return Err((
                field("window_blocks"),
                format!("{window_blocks} is outside 1..={MAX_WINDOW_BLOCKS}"),
            ));
        }
        // Each kind takes its own fields; another kind's field is a mistake worth naming.
        let refuse = |name: &str, present: bool, kind: &str| -> Result<(), (String, String)> {
            if present {
                Err((field(name), format!("a {kind} rule does not take {name}")))
            } else {
                Ok(())
            }
        };
        let (kind, above) = match r.kind.as_str() {
            "refused-signer" => {
                refuse("missed", r.missed.is_some(), &r.kind)?;
                refuse("per", r.per.is_some(), &r.kind)?;
                refuse("per_signer", r.per_signer.is_some(), &r.kind)?;
                let codes = match &r.codes {
                    None => REFUSED_SIGNER_CODES.iter().map(|c| c.as_str()).collect(),
                    Some(list) => {
                        if list.is_empty() {
                            return Err((field("codes"), "lists no code".into()));
                        }
                        let mut codes = Vec::with_capacity(list.len());
                        for name in list {
                            // A refusal code of admission, by its registry name.
                            let Some(c) = RejectCode::ALL.iter().find(|c| c.as_str() == name)
                            else {
                                return Err((
                                    field("codes"),
                                    format!(
                                        "{name:?} is not an admission refusal code (docs/error-codes.md, TX_…)"
                                    ),
                                ));
                            };
                            codes.push(c.as_str());
                        }
                        codes
                    }
                };
                (RuleKind::RefusedSigner { codes }, r.max.unwrap_or(0))
            }
            "fetch-rate" | "failed-rate" => {
                refuse("missed", r.missed.is_some(), &r.kind)?;
                refuse("codes", r.codes.is_some(), &r.kind)?;
                let Some(max) = r.max else {
                    return Err((
                        field("max"),
                        format!("a {} rule needs max (it fires above it)", r.kind),
                    ));
                };
                let kind = if r.kind == "fetch-rate" {
                    refuse("per_signer", r.per_signer.is_some(), &r.kind)?;
                    let per = match r.per.as_deref() {
                        None => FetchPer::Requester,
                        Some(p) => FetchPer::parse(p).ok_or_else(|| {
                            (
                                field("per"),
                                format!("{p:?}: one of requester, dataset, requester-dataset"),
                            )
                        })?,
                    };
                    RuleKind::FetchRate { per }
                } else {
                    refuse("per", r.per.is_some(), &r.kind)?;
                    RuleKind::FailedRate {
                        per_signer: r.per_signer.unwrap_or(false),
                    }
                };
                (kind, max)
            }
            "missed-rounds" => {
                refuse("max", r.max.is_some(), &r.kind)?;
                refuse("codes", r.codes.is_some(), &r.kind)?;
                refuse("per", r.per.is_some(), &r.kind)?;
                refuse("per_signer", r.per_signer.is_some(), &r.kind)?;
                let Some(missed) = r.missed else {
                    return Err((
                        field("missed"),
                        "a missed-rounds rule needs missed (M of the last window_blocks certificates)".into(),
                    ));
                };
                if missed == 0 || missed > window_blocks {
                    return Err((
                        field("missed"),
                        format!("{missed} is outside 1..=window_blocks ({window_blocks})"),
                    ));
                }
                (RuleKind::MissedRounds, missed - 1)
            }
            other => {
                return Err((
                    field("kind"),
                    format!(
                        "{other:?}: one of refused-signer, fetch-rate, failed-rate, missed-rounds"
                    ),
                ));
            }
        };
        rules.push(Rule {
            name: r.name.clone(),
            kind,
            above,
            window_blocks,
        });
    }
    Ok(WatchConfig {
        max_subjects,
        rules,
    })
}

/// A rule fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// The rule's kind (`refused-signer`, …).
    pub kind: &'static str,
    /// What crossed the threshold: a certificate or validator id (hex), a dataset, `chain`.
    pub subject: String,
    /// The height it fired at (for a refusal, the next height).
    pub height: u64,
    /// The subject's count in the window.
    pub count: u64,
    /// The window, in blocks.
    pub window_blocks: u64,
    /// For a person: what was counted, and the latest instance.
    pub detail: String,
}

/// A fetch record of a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFact {
    /// The requester's certificate id (hex).
    pub requester: String,
    /// The dataset (`organisation/name`) or message (`m/<id>`).
    pub object: String,
    /// Whether the custodian served it (else it recorded a refusal).
    pub served: bool,
}

/// A failed transaction of a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedFact {
    /// The signer's certificate id (hex).
    pub signer: String,
    /// The failure code.
    pub code: u32,
    /// The call (`contract.method`).
    pub call: String,
}

/// What the rules look at in one committed block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFacts {
    /// Its height.
    pub height: u64,
    /// The fetch records it holds.
    pub fetches: Vec<FetchFact>,
    /// Its failed transactions.
    pub failed: Vec<FailedFact>,
    /// The validators of the height (ids, hex) whose precommit is not in its certificate.
    pub missing: Vec<String>,
}

impl BlockFacts {
    /// Reads the facts of a committed block: `set` is the validator set that decided it.
    pub fn of(
        block: &Block,
        receipts: &[Receipt],
        certificate: &CommitCertificate,
        set: &ValidatorSet,
    ) -> Self {
        let mut facts = BlockFacts {
            height: block.header.height.0,
            ..BlockFacts::default()
        };
        for (tx, receipt) in block.txs.iter().zip(receipts) {
            let call = &tx.tx.call;
            match &receipt.status {
                Status::Failed { code, .. } => facts.failed.push(FailedFact {
                    signer: signer_id(&tx.tx.sender).to_hex(),
                    code: *code,
                    call: format!("{}.{}", call.contract, call.method),
                }),
                Status::Success => {
                    if call.contract == execution::keys::EXCHANGE
                        && call.method == "record_fetch"
                        && let Some(f) = fetch_fact(&call.args)
                    {
                        facts.fetches.push(f);
                    }
                }
            }
        }
        for v in set.validators() {
            if !certificate.signatures.iter().any(|(id, _)| *id == v.id) {
                facts.missing.push(v.id.to_hex());
            }
        }
        facts
    }
}

/// The signer's certificate id: SM3 of the certificate a first transaction carries, or the
/// registered id.
pub fn signer_id(sender: &Sender) -> Digest {
    match sender {
        Sender::Certificate(der) => crypto_sm::sm3::sm3(der),
        Sender::Registered(id) => *id,
    }
}

/// The fetch a successful `record_fetch` call recorded (its arguments were checked by the
/// contract: kind, object, version, requester, request, outcome, …).
fn fetch_fact(args: &[Vec<u8>]) -> Option<FetchFact> {
    let object = match args.first()?.as_slice() {
        [execution::data::OBJECT_DATASET] => String::from_utf8(args.get(1)?.clone()).ok()?,
        [execution::data::OBJECT_MESSAGE] => format!("m/{}", hex::encode(args.get(1)?)),
        _ => return None,
    };
    let requester = hex::encode(args.get(3)?);
    let served = args.get(5)?.iter().all(|b| *b == 0);
    Some(FetchFact {
        requester,
        object,
        served,
    })
}

/// One subject's events in its window: at most one entry per height.
#[derive(Debug, Default)]
struct Track {
    events: VecDeque<(u64, u64)>,
    total: u64,
    /// No alert for this subject before this height (debounce).
    quiet_until: u64,
}

impl Track {
    /// Drops what is outside the window ending at `height`.
    fn expire(&mut self, height: u64, window: u64) {
        while let Some(&(h, n)) = self.events.front() {
            if h.saturating_add(window) <= height {
                self.events.pop_front();
                self.total -= n;
            } else {
                break;
            }
        }
    }

    fn add(&mut self, height: u64, n: u64) {
        match self.events.back_mut() {
            // Refusals between two blocks share the next height.
            Some((h, m)) if *h >= height => *m += n,
            _ => self.events.push_back((height, n)),
        }
        self.total += n;
    }

    fn idle(&self, height: u64, window: u64) -> bool {
        self.quiet_until <= height
            && self
                .events
                .back()
                .is_none_or(|(h, _)| h.saturating_add(window) <= height)
    }
}

/// One rule's windows.
#[derive(Debug)]
struct RuleState {
    rule: Rule,
    subjects: HashMap<String, Track>,
    overflow: Track,
    swept_at: Option<u64>,
}

/// The rule engine without I/O: facts in, alerts out. [`Watcher`] wraps it for the node.
#[derive(Debug)]
pub struct Rules {
    max_subjects: usize,
    rules: Vec<RuleState>,
    /// Events counted under [`OVERFLOW_SUBJECT`].
    untracked: u64,
}

impl Rules {
    /// The engine of `config`, every window empty.
    pub fn new(config: &WatchConfig) -> Self {
        Rules {
            max_subjects: config.max_subjects,
            rules: config
                .rules
                .iter()
                .map(|rule| RuleState {
                    rule: rule.clone(),
                    subjects: HashMap::new(),
                    overflow: Track::default(),
                    swept_at: None,
                })
                .collect(),
            untracked: 0,
        }
    }

    /// Returns the events counted under [`OVERFLOW_SUBJECT`] so far.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Returns whether some rule counts refusals with `code`.
    pub fn watches_code(&self, code: &str) -> bool {
        self.rules.iter().any(|r| match &r.rule.kind {
            RuleKind::RefusedSigner { codes } => codes.contains(&code),
            _ => false,
        })
    }

    /// Whether any rule looks at committed blocks.
    pub fn watches_blocks(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !matches!(r.rule.kind, RuleKind::RefusedSigner { .. }))
    }

    /// Admission refused a transaction of `signer` (hex id, or `unknown` when the bytes do not
    /// decode) with `code`, while the chain's next height is `height`.
    pub fn refused(&mut self, height: u64, code: &str, signer: &str, detail: &str) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let max_subjects = self.max_subjects;
        for r in &mut self.rules {
            if let RuleKind::RefusedSigner { codes } = &r.rule.kind
                && codes.contains(&code)
            {
                let d = format!("admission refused a transaction with {code}: {detail}");
                alerts.extend(r.count(max_subjects, &mut self.untracked, height, signer, 1, &d));
            }
        }
        alerts
    }

    /// A block was committed.
    pub fn block(&mut self, facts: &BlockFacts) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let h = facts.height;
        let max_subjects = self.max_subjects;
        for r in &mut self.rules {
            let untracked = &mut self.untracked;
            if matches!(r.rule.kind, RuleKind::RefusedSigner { .. }) {
                continue;
            }
            // The other kinds are small copies (the rule's state is borrowed mutably below).
            match r.rule.kind.clone() {
                RuleKind::RefusedSigner { .. } => {}
                RuleKind::FetchRate { per } => {
                    // One count per subject per block, then one check.
                    let mut per_subject: Vec<(String, u64, &FetchFact)> = Vec::new();
                    for f in &facts.fetches {
                        let subject = match per {
                            FetchPer::Requester => f.requester.clone(),
                            FetchPer::Dataset => f.object.clone(),
                            FetchPer::RequesterDataset => format!("{} {}", f.requester, f.object),
                        };
                        match per_subject.iter_mut().find(|(s, _, _)| *s == subject) {
                            Some((_, n, last)) => {
                                *n += 1;
                                *last = f;
                            }
                            None => per_subject.push((subject, 1, f)),
                        }
                    }
                    for (subject, n, f) in per_subject {
                        let d = format!(
                            "exchange fetch records; latest: {} of {} by {}",
                            if f.served { "served" } else { "refused" },
                            f.object,
                            f.requester
                        );
                        alerts.extend(r.count(max_subjects, untracked, h, &subject, n, &d));
                    }
                }
                RuleKind::FailedRate { per_signer } => {
                    let mut per_subject: Vec<(String, u64, &FailedFact)> = Vec::new();
                    for f in &facts.failed {
                        let subject = if per_signer {
                            f.signer.clone()
                        } else {
                            "chain".to_string()
                        };
                        match per_subject.iter_mut().find(|(s, _, _)| *s == subject) {
                            Some((_, n, last)) => {
                                *n += 1;
                                *last = f;
                            }
                            None => per_subject.push((subject, 1, f)),
                        }
                    }
                    for (subject, n, f) in per_subject {
                        let d = format!(
                            "failed transactions; latest: {} by {} failed with code {}",
                            f.call, f.signer, f.code
                        );
                        alerts.extend(r.count(max_subjects, untracked, h, &subject, n, &d));
                    }
                }
                RuleKind::MissedRounds => {
                    for v in &facts.missing {
                        let d = "commit certificates without this validator's precommit";
                        alerts.extend(r.count(max_subjects, untracked, h, v, 1, d));
                    }
                }
            }
        }
        alerts
    }
}

impl RuleState {
    /// Adds `n` events of `subject` at `height`; returns the alert if the subject crossed the
    /// threshold and is not quiet.
    fn count(
        &mut self,
        max_subjects: usize,
        untracked: &mut u64,
        height: u64,
        subject: &str,
        n: u64,
        detail: &str,
    ) -> Option<Alert> {
        let window = self.rule.window_blocks;
        if !self.subjects.contains_key(subject)
            && self.subjects.len() >= max_subjects
            && self.swept_at != Some(height)
        {
            // At the cap: forget the subjects with nothing left in their window, once a height.
            self.swept_at = Some(height);
            self.subjects.retain(|_, t| !t.idle(height, window));
        }
        let (track, subject) =
            if self.subjects.contains_key(subject) || self.subjects.len() < max_subjects {
                let t = self.subjects.entry(subject.to_string()).or_default();
                (t, subject)
            } else {
                *untracked += n;
                (&mut self.overflow, OVERFLOW_SUBJECT)
            };
        track.expire(height, window);
        track.add(height, n);
        if track.total <= self.rule.above || height < track.quiet_until {
            return None;
        }
        track.quiet_until = height.saturating_add(window);
        Some(Alert {
            rule: self.rule.name.clone(),
            kind: self.rule.kind.name(),
            subject: subject.to_string(),
            height,
            count: track.total,
            window_blocks: window,
            detail: detail.to_string(),
        })
    }
}

/// The node's watch: the rules, the alert channel and the metrics they count in.
pub struct Watcher {
    rules: Mutex<Rules>,
    alerts: broadcast::Sender<Alert>,
    metrics: Arc<Metrics>,
    refusals: bool,
    blocks: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher of `config`'s rules counting in `metrics` (each rule's counter starts at 0).
    pub fn new(config: &WatchConfig, metrics: Arc<Metrics>) -> Self {
        for r in &config.rules {
            metrics.watch_rule(&r.name);
        }
        let rules = Rules::new(config);
        let (alerts, _) = broadcast::channel(CHANNEL_CAPACITY);
        Watcher {
            refusals: config
                .rules
                .iter()
                .any(|r| matches!(r.kind, RuleKind::RefusedSigner { .. })),
            blocks: rules.watches_blocks(),
            rules: Mutex::new(rules),
            alerts,
            metrics,
        }
    }

    /// Returns a receiver of the alerts raised from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.alerts.subscribe()
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a refusal with `code` interests a rule (the caller decodes the signer only then).
    pub fn watches_code(&self, code: &str) -> bool {
        self.refusals && self.rules().watches_code(code)
    }

    /// Whether any rule looks at committed blocks (the caller reads their facts only then).
    pub fn watches_blocks(&self) -> bool {
        self.blocks
    }

    /// Admission refused a transaction of `signer` with `code` while `height` was next.
    pub fn refused(&self, height: u64, code: &str, signer: &str, detail: &str) {
        if !self.refusals {
            return;
        }
        let (alerts, untracked) = {
            let mut rules = self.rules();
            (
                rules.refused(height, code, signer, detail),
                rules.untracked(),
            )
        };
        self.publish(alerts, untracked);
    }

    /// A block was committed.
    pub fn committed(&self, facts: &BlockFacts) {
        if !self.blocks {
            return;
        }
        let (alerts, untracked) = {
            let mut rules = self.rules();
            (rules.block(facts), rules.untracked())
        };
        self.publish(alerts, untracked);
    }

    fn publish(&self, alerts: Vec<Alert>, untracked: u64) {
        self.metrics
            .watch_untracked
            .store(untracked, std::sync::atomic::Ordering::Relaxed);
        for a in alerts {
            self.metrics.watch_alert(&a.rule);
            tracing::warn!(
                rule = %a.rule,
                kind = a.kind,
                subject = %a.subject,
                height = a.height,
                count = a.count,
                window_blocks = a.window_blocks,
                "watch rule fired: {}",
                a.detail
            );
            // Nobody subscribed is fine.
            let _ = self.alerts.send(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, kind: RuleKind, above: u64, window_blocks: u64) -> Rule {
        Rule {
            name: name.into(),
            kind,
            above,
            window_blocks,
        }
    }

    fn engine(rules: Vec<Rule>) -> Rules {
        Rules::new(&WatchConfig {
            max_subjects: 100,
            rules,
        })
    }

    fn fetch(requester: &str, object: &str) -> FetchFact {
        FetchFact {
            requester: requester.into(),
            object: object.into(),
            served: true,
        }
    }

    fn failed(signer: &str) -> FailedFact {
        FailedFact {
            signer: signer.into(),
            code: 301,
            call: "exchange.grant".into(),
        }
    }

    fn refused_rule() -> Rule {
        rule(
            "refused",
            RuleKind::RefusedSigner {
                codes: REFUSED_SIGNER_CODES.iter().map(|c| c.as_str()).collect(),
            },
            0,
            10,
        )
    }

    #[test]
    fn refused_signer_fires_on_a_suspended_signer_and_not_on_ordinary_refusals() {
        let mut e = engine(vec![refused_rule()]);
        // Ordinary refusals: a duplicate, an expired transaction, a full pool.
        for code in [
            "TX_DUPLICATE",
            "TX_EXPIRED",
            "TX_POOL_FULL",
            "TX_SIGNATURE_INVALID",
        ] {
            assert!(e.refused(5, code, "aa", "x").is_empty(), "{code}");
        }
        let a = e.refused(5, "TX_SIGNER_SUSPENDED", "aa", "suspended");
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].rule.as_str(), a[0].kind, a[0].subject.as_str()),
            ("refused", "refused-signer", "aa")
        );
        assert_eq!((a[0].height, a[0].count, a[0].window_blocks), (5, 1, 10));
        assert!(
            a[0].detail.contains("TX_SIGNER_SUSPENDED"),
            "{}",
            a[0].detail
        );
        // Debounced: the same signer again within the window raises nothing…
        assert!(e.refused(6, "TX_SIGNER_REVOKED", "aa", "x").is_empty());
        assert!(e.refused(14, "TX_SIGNER_REVOKED", "aa", "x").is_empty());
        // …another signer does, and so does the first once its window has passed.
        assert_eq!(e.refused(14, "TX_UNKNOWN_SENDER", "bb", "x").len(), 1);
        let again = e.refused(15, "TX_ORG_REMOVED", "aa", "x");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].count, 3, "heights 6, 14 and 15 are in the window");
    }

    #[test]
    fn fetch_rate_fires_above_max_in_the_window_per_requester_and_per_dataset() {
        let mut e = engine(vec![
            rule(
                "by-requester",
                RuleKind::FetchRate {
                    per: FetchPer::Requester,
                },
                3,
                5,
            ),
            rule(
                "by-dataset",
                RuleKind::FetchRate {
                    per: FetchPer::Dataset,
                },
                4,
                5,
            ),
        ]);
        // Ordinary traffic: three fetches every 5 blocks, of different datasets.
        for h in 1..=29u64 {
            let fetches = if h % 5 == 0 {
                vec![fetch("r1", "A/x"), fetch("r1", "A/y"), fetch("r2", "A/z")]
            } else {
                vec![]
            };
            let facts = BlockFacts {
                height: h,
                fetches,
                ..Default::default()
            };
            assert!(e.block(&facts).is_empty(), "height {h}");
        }
        // r1 fetches A/x twice a block: above 3 in 5 blocks at the second block.
        let burst = |h| BlockFacts {
            height: h,
            fetches: vec![fetch("r1", "A/x"), fetch("r1", "A/x")],
            ..Default::default()
        };
        assert!(e.block(&burst(31)).is_empty());
        let a = e.block(&burst(32));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].rule.as_str(), a[0].subject.as_str()),
            ("by-requester", "r1")
        );
        assert_eq!(a[0].count, 4);
        // The dataset crosses 4 at the third block; the requester stays quiet (debounced).
        let a = e.block(&burst(33));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].rule.as_str(), a[0].subject.as_str()),
            ("by-dataset", "A/x")
        );
        assert_eq!(a[0].count, 6);
    }

    #[test]
    fn failed_rate_fires_on_a_burst_of_failures_and_not_on_a_steady_trickle() {
        let mut e = engine(vec![
            rule("failing", RuleKind::FailedRate { per_signer: false }, 2, 4),
            rule(
                "failing-signer",
                RuleKind::FailedRate { per_signer: true },
                1,
                4,
            ),
        ]);
        // One failure every 4 blocks, by different signers: never above 2 (or 1 per signer).
        for h in 1..=40u64 {
            let failed = if h % 4 == 0 {
                vec![failed(&format!("s{h}"))]
            } else {
                vec![]
            };
            let facts = BlockFacts {
                height: h,
                failed,
                ..Default::default()
            };
            assert!(e.block(&facts).is_empty(), "height {h}");
        }
        let a = e.block(&BlockFacts {
            height: 41,
            failed: vec![failed("s9"), failed("s9"), failed("s8")],
            ..Default::default()
        });
        let mut got: Vec<(&str, &str, u64)> = a
            .iter()
            .map(|a| (a.rule.as_str(), a.subject.as_str(), a.count))
            .collect();
        got.sort();
        // The chain counts 4 (s40's at 40 and these three); s9 counts 2.
        assert_eq!(got, [("failing", "chain", 4), ("failing-signer", "s9", 2)]);
    }

    #[test]
    fn missed_rounds_fires_at_m_of_the_last_w_certificates() {
        let mut e = engine(vec![rule("absent", RuleKind::MissedRounds, 2, 10)]);
        let block = |h, missing: &[&str]| BlockFacts {
            height: h,
            missing: missing.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        // v2 misses one round in ten, now and then: never 3 in 10.
        for h in 1..=50u64 {
            let missing: &[&str] = if h % 6 == 0 { &["v2"] } else { &[] };
            assert!(e.block(&block(h, missing)).is_empty(), "height {h}");
        }
        // v3 goes silent: its third missing precommit fires, once for the window.
        assert!(e.block(&block(51, &["v3"])).is_empty());
        assert!(e.block(&block(52, &["v3"])).is_empty());
        let a = e.block(&block(53, &["v3"]));
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].subject.as_str(), a[0].count), ("v3", 3));
        for h in 54..63 {
            assert!(e.block(&block(h, &["v3"])).is_empty(), "debounced at {h}");
        }
        assert_eq!(e.block(&block(63, &["v3"])).len(), 1, "the next window");
    }

    #[test]
    fn at_the_cap_idle_subjects_are_forgotten_and_new_ones_counted_together() {
        let mut e = Rules::new(&WatchConfig {
            max_subjects: 2,
            rules: vec![rule(
                "fetches",
                RuleKind::FetchRate {
                    per: FetchPer::Requester,
                },
                2,
                10,
            )],
        });
        let block = |h, who: &[&str]| BlockFacts {
            height: h,
            fetches: who.iter().map(|r| fetch(r, "A/x")).collect(),
            ..Default::default()
        };
        assert!(e.block(&block(1, &["a", "b"])).is_empty());
        // The table is full: c, d and e go to the overflow subject, which crosses 2 together.
        assert!(e.block(&block(2, &["c", "d"])).is_empty());
        let a = e.block(&block(3, &["e"]));
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].subject.as_str(), a[0].count), (OVERFLOW_SUBJECT, 3));
        assert_eq!(e.untracked(), 3);
        // Once a and b have nothing left in their window, a new subject takes their place.
        assert!(e.block(&block(11, &["f"])).is_empty());
        assert_eq!(e.untracked(), 3, "f is tracked by name");
        assert!(e.rules[0].subjects.contains_key("f"));
        assert!(e.rules[0].subjects.len() <= 2);
    }

    fn parse_toml(text: &str) -> Result<WatchConfig, (String, String)> {
        #[derive(Deserialize)]
        struct W {
            watch: RawWatch,
        }
        let w: W = toml::from_str(text).map_err(|e| ("(toml)".into(), e.to_string()))?;
        parse(Some(&w.watch))
    }

    #[test]
    fn a_configuration_parses_with_defaults() {
        let c = parse_toml(
            r#"
[watch]
[[watch.rule]]
name = "refused"
kind = "refused-signer"
[[watch.rule]]
name = "fetches"
kind = "fetch-rate"
per = "dataset"
max = 50
window_blocks = 20
[[watch.rule]]
name = "absent"
kind = "missed-rounds"
missed = 5
window_blocks = 20
[[watch.rule]]
name = "failing"
kind = "failed-rate"
max = 10
per_signer = true
"#,
        )
        .unwrap();
        assert_eq!(c.max_subjects, DEFAULT_MAX_SUBJECTS);
        assert_eq!(c.rules.len(), 4);
        assert_eq!(
            c.rules[0].kind,
            RuleKind::RefusedSigner {
                codes: vec![
                    "TX_SIGNER_REVOKED",
                    "TX_SIGNER_SUSPENDED",
                    "TX_UNKNOWN_SENDER",
                    "TX_ORG_REMOVED",
                    "TX_CA_REPLACED",
                    "TX_SIGNER_FROZEN",
                    "TX_ORG_FROZEN"
                ]
            }
        );
        assert_eq!(
            (c.rules[0].above, c.rules[0].window_blocks),
            (0, DEFAULT_WINDOW_BLOCKS)
        );
        assert_eq!(
            c.rules[1].kind,
            RuleKind::FetchRate {
                per: FetchPer::Dataset
            }
        );
        assert_eq!((c.rules[1].above, c.rules[1].window_blocks), (50, 20));
        assert_eq!(
            (c.rules[2].kind.clone(), c.rules[2].above),
            (RuleKind::MissedRounds, 4)
        );
        assert_eq!(c.rules[3].kind, RuleKind::FailedRate { per_signer: true });
        assert_eq!(parse(None).unwrap(), WatchConfig::default());
    }

    #[test]
    fn bad_rules_name_their_field() {
        let rule = |body: &str| format!("[watch]\n[[watch.rule]]\nname = \"r\"\n{body}\n");
        let cases: Vec<(String, &str, &str)> = vec![
            (rule("kind = \"loud\""), "watch.rule[0].kind", "one of"),
            (
                rule("kind = \"fetch-rate\""),
                "watch.rule[0].max",
                "needs max",
            ),
            (
                rule("kind = \"fetch-rate\"\nmax = 3\nper = \"org\""),
                "watch.rule[0].per",
                "requester",
            ),
            (
                rule("kind = \"failed-rate\"\nmax = 3\nwindow_blocks = 0"),
                "watch.rule[0].window_blocks",
                "outside",
            ),
            (
                rule("kind = \"missed-rounds\"\nmissed = 11\nwindow_blocks = 10"),
                "watch.rule[0].missed",
                "outside",
            ),
            (
                rule("kind = \"missed-rounds\""),
                "watch.rule[0].missed",
                "needs missed",
            ),
            (
                rule("kind = \"missed-rounds\"\nmissed = 1\nmax = 2"),
                "watch.rule[0].max",
                "does not take max",
            ),
            (
                rule("kind = \"refused-signer\"\ncodes = [\"TX_SIGNER_REVOKD\"]"),
                "watch.rule[0].codes",
                "TX_SIGNER_REVOKD",
            ),
            (
                rule("kind = \"refused-signer\"\ncodes = []"),
                "watch.rule[0].codes",
                "no code",
            ),
            (
                rule("kind = \"refused-signer\"\nper_signer = true"),
                "watch.rule[0].per_signer",
                "does not take",
            ),
            (
                "[watch]\n[[watch.rule]]\nname = \"Loud Rule\"\nkind = \"refused-signer\"\n".into(),
                "watch.rule[0].name",
                "[a-z0-9_-]",
            ),
            (
                format!(
                    "{}[[watch.rule]]\nname = \"r\"\nkind = \"refused-signer\"\n",
                    rule("kind = \"refused-signer\"")
                ),
                "watch.rule[1].name",
                "earlier rule",
            ),
            (
                "[watch]\nmax_subjects = 0\n".into(),
                "watch.max_subjects",
                "outside",
            ),
            (
                rule("kind = \"refused-signer\"\nthreshold = 3"),
                "(toml)",
                "threshold",
            ),
        ];
        for (text, field, needle) in cases {
            let (f, problem) = parse_toml(&text).unwrap_err();
            assert_eq!(f, field, "{text}: {problem}");
            assert!(problem.contains(needle), "{text}: {problem}");
        }
    }
}
