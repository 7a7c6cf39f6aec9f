//! The node's own audit log, `<data dir>/audit.log` (`auditlog` kind `NODE`): start (version,
//! SM3 of the configuration file), configuration loaded, stop, incoming p2p links accepted,
//! refused p2p links and API connections, key use by purpose, and what the supervision API
//! records through [`NodeAudit::record_by`]. Entries are SM3 hash-chained; a checkpoint signed
//! with the node's key follows every `checkpoint_entries` entries, every `checkpoint_secs`
//! seconds when anything is unsigned, and the stop entry.
//!
//! What it refuses to do: write an entry per refused connection (they are summed per peer per
//! minute, so a flood adds at most one entry per peer and minute), an entry per signature (key
//! use is summed per purpose and checkpoint interval), or block a caller on the disk: callers
//! take a mutex for a moment or send on a bounded queue ([`QUEUE`] entries); one thread
//! (`audit`) appends and fsyncs. The log fails open, and says so: a failed append is logged and
//! counted ([`NodeAudit::failures`]); an entry that finds the queue full (a disk slower than
//! the callers for long) is dropped and counted ([`NodeAudit::dropped`]), and the writer then
//! appends an `entries-dropped` entry naming how many were lost, so the log itself shows the
//! gap. Both counters are metrics (`gmchain_audit_log_failures_total`,
//! `gmchain_audit_log_dropped_total`): an operator alerts on them rather than the node halting
//! block production on its log.

use auditlog::{KeyUse, Outcome, Purpose, Refusals, Writer};
use crypto::Signer;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::NodeError;

/// The file in the data directory.
pub const FILE: &str = "audit.log";

/// The action of refused p2p links and of refused API connections.
pub const P2P_REFUSED: &str = "p2p-link-refused";
pub const API_REFUSED: &str = "api-connection-refused";
/// The action of the entry that counts entries dropped on a full queue.
pub const DROPPED: &str = "entries-dropped";
/// The action of the entry that marks, at start, entries no checkpoint signed.
pub const UNSIGNED_AT_OPEN: &str = "unsigned-at-open";

/// How many entries may wait for the writer thread; beyond this, entries are dropped and
/// counted rather than blocking the caller or growing without bound.
pub const QUEUE: usize = 8192;

/// When checkpoints are signed (`[audit]` in the node configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// A checkpoint after this many unsigned entries.
    pub checkpoint_entries: u64,
    /// A checkpoint this long after the last one, if anything is unsigned.
    pub checkpoint_interval: Duration,
    /// How often the node anchors its log's head on the chain (`supervision.anchor_log`),
    /// when it moved; `None`: never.
    pub anchor_interval: Option<Duration>,
}

impl Default for AuditConfig {
    /// 1000 entries or 60 seconds.
    fn default() -> Self {
        AuditConfig {
            checkpoint_entries: 1000,
            checkpoint_interval: Duration::from_secs(60),
            anchor_interval: Some(Duration::from_secs(300)),
        }
    }
}

enum Msg {
    Record {
        time: u64,
        operator: String,
        action: String,
        outcome: Outcome,
        detail: String,
    },
    Stop {
        time: u64,
        detail: String,
        done: mpsc::Sender<Option<(u64, [u8; 32])>>,
    },
}

struct Inner {
    tx: Mutex<Option<mpsc::SyncSender<Msg>>>,
    refusals: Mutex<Refusals>,
    key_use: Arc<KeyUse>,
    head: Mutex<Option<(u64, [u8; 32])>>,
    failures: AtomicU64,
    /// Entries dropped on a full queue since the node started (the metric).
    dropped: AtomicU64,
    /// Entries dropped that no `entries-dropped` entry has counted yet, with the first and
    /// last second they were dropped in (one lock, so a count and its seconds agree).
    unlogged_drops: Mutex<Option<(u64, u64, u64)>>,
    /// The queue's capacity.
    queue: usize,
    operator: String,
    path: PathBuf,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A handle on the node's audit log, cheap to clone and to call from any thread. The default
/// handle records nothing (a node built in a test without a data directory of its own).
#[derive(Clone, Default)]
pub struct NodeAudit {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for NodeAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(i) => f
                .debug_struct("NodeAudit")
                .field("path", &i.path)
                .finish_non_exhaustive(),
            None => f.write_str("NodeAudit(disabled)"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl NodeAudit {
    /// Opens `<data_dir>/audit.log` (checking every link of what it holds: an edited or
    /// damaged log stops the node here) and starts its writer thread. `signer` signs the
    /// checkpoints (the node's key, uncounted); `operator` names the node in its entries;
    /// `key_use` is the counter the node's counting signers add to.
    pub fn open(
        data_dir: &std::path::Path,
        signer: Arc<dyn Signer>,
        operator: &str,
        key_use: Arc<KeyUse>,
        config: AuditConfig,
    ) -> Result<NodeAudit, NodeError> {
        Self::open_with_queue(data_dir, signer, operator, key_use, config, QUEUE)
    }

    fn open_with_queue(
        data_dir: &std::path::Path,
        signer: Arc<dyn Signer>,
        operator: &str,
        key_use: Arc<KeyUse>,
        config: AuditConfig,
        queue: usize,
    ) -> Result<NodeAudit, NodeError> {
        let path = data_dir.join(FILE);
        let mut writer = Writer::open(&path, &auditlog::NODE).map_err(|e| {
            NodeError::Audit(format!(
                "{}: {e}; keep the file as evidence, move it aside and start again",
                path.display()
            ))
        })?;
        // Entries after the last checkpoint of a run that stopped uncleanly: no signature covers
        // them, and this run's next checkpoint must not vouch for them unmarked (review 18).
        let unsigned = writer.unsigned_since();
        if let Some((last, _)) = writer.head()
            && unsigned > 0
        {
            let detail = format!(
                "entries {} to {last} follow the last checkpoint and were found unsigned at start: \
                 the previous run stopped without its final checkpoint, or the file was edited \
                 while the node was stopped; no signature of the run that wrote them covers them",
                last + 1 - unsigned
            );
            writer
                .append(
                    now_secs(),
                    operator,
                    UNSIGNED_AT_OPEN,
                    Outcome::Refused,
                    &detail,
                    None,
                )
                .map_err(|e| NodeError::Audit(format!("{}: {e}", path.display())))?;
        }
        let (tx, rx) = mpsc::sync_channel(queue);
        let inner = Arc::new(Inner {
            tx: Mutex::new(Some(tx)),
            refusals: Mutex::new(Refusals::default()),
            key_use,
            head: Mutex::new(writer.head()),
            failures: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unlogged_drops: Mutex::new(None),
            queue,
            operator: operator.to_string(),
            path,
            worker: Mutex::new(None),
        });
        let state = inner.clone();
        let worker = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_loop(writer, rx, &state, signer.as_ref(), config))
            .map_err(|e| NodeError::Audit(format!("cannot start the audit thread: {e}")))?;
        *lock(&inner.worker) = Some(worker);
        Ok(NodeAudit { inner: Some(inner) })
    }

    /// Records an action of the node itself.
    pub fn record(&self, action: &str, outcome: Outcome, detail: &str) {
        if let Some(i) = &self.inner {
            self.record_by(&i.operator.clone(), action, outcome, detail);
        }
    }

    /// Records an action of `operator` (a client's certificate, a peer).
    pub fn record_by(&self, operator: &str, action: &str, outcome: Outcome, detail: &str) {
        let Some(i) = &self.inner else { return };
        if let Some(tx) = lock(&i.tx).as_ref() {
            let msg = Msg::Record {
                time: now_secs(),
                operator: operator.to_string(),
                action: action.to_string(),
                outcome,
                detail: detail.to_string(),
            };
            if let Err(mpsc::TrySendError::Full(_)) = tx.try_send(msg) {
                // The first drop of a run is logged; the counters and the log's own
                // `entries-dropped` entry carry the rest.
                if i.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(
                        "audit log: queue full ({} entries waiting for the disk): entries are \
                         being dropped and counted (gmchain_audit_log_dropped_total)",
                        i.queue
                    );
                }
                let now = now_secs();
                let mut d = lock(&i.unlogged_drops);
                let (n, first, _) = d.unwrap_or((0, now, now));
                *d = Some((n + 1, first, now));
            }
        }
    }

    /// Counts a refused connection of `peer` (an address, without its port) on channel
    /// `action` ([`P2P_REFUSED`], [`API_REFUSED`]); one entry per peer and minute sums them.
    pub fn refused(&self, action: &'static str, peer: &str, reason: &str) {
        if let Some(i) = &self.inner {
            lock(&i.refusals).add(now_secs(), action, peer, reason);
        }
    }

    /// Counts one use of the node's key for `purpose`.
    pub fn key_used(&self, purpose: Purpose) {
        if let Some(i) = &self.inner {
            i.key_use.add(purpose);
        }
    }

    /// Returns the last entry written: its sequence number and hash (hex). What an anchor on
    /// the chain records, and what `gmchain node audit-verify --expect-head` takes.
    pub fn head(&self) -> Option<(u64, String)> {
        let i = self.inner.as_ref()?;
        lock(&i.head).map(|(seq, h)| (seq, hex::encode(h)))
    }

    /// Returns how many entries could not be written (the disk refused them).
    pub fn failures(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.failures.load(Ordering::Relaxed))
    }

    /// Returns how many entries were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Writes what is pending (every refusal summed so far, key use), the stop entry with
    /// `detail`, and a checkpoint, then ends the writer thread and returns the final head.
    /// Blocks on the disk: call it off the async runtime. Later calls record nothing.
    pub fn stop(&self, detail: &str) -> Option<(u64, String)> {
        let i = self.inner.as_ref()?;
        let tx = lock(&i.tx).take()?;
        let (done, wait) = mpsc::channel();
        let _ = tx.send(Msg::Stop {
            time: now_secs(),
            detail: detail.to_string(),
            done,
        });
        let head = wait.recv().ok().flatten();
        if let Some(worker) = lock(&i.worker).take() {
            let _ = worker.join();
        }
        head.map(|(seq, h)| (seq, hex::encode(h)))
    }
}

/// The writer thread: appends records as they come, each ended minute's refusals, and the
/// checkpoints.
fn write_loop(
    mut w: Writer,
    rx: mpsc::Receiver<Msg>,
    state: &Inner,
    signer: &dyn Signer,
    config: AuditConfig,
) {
    let op = state.operator.as_str();
    let mut last_checkpoint = Instant::now();
    let append = |w: &mut Writer, time, operator: &str, action: &str, outcome, detail: &str| match w
        .append(time, operator, action, outcome, detail, None)
    {
        Ok(_) => *lock(&state.head) = w.head(),
        Err(e) => {
            state.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("audit log: entry not written ({action}): {e}");
        }
    };
    let flush_refusals = |w: &mut Writer, before_minute: u64| {
        let summaries = lock(&state.refusals).drain_before(before_minute);
        for s in summaries {
            let time = (s.minute + 1).saturating_mul(60).min(now_secs());
            append(w, time, &s.peer, s.action, Outcome::Refused, &s.detail());
        }
    };
    let checkpoint = |w: &mut Writer| {
        let uses = state.key_use.take();
        if !uses.is_empty() {
            append(
                w,
                now_secs(),
                op,
                "key-use",
                Outcome::Done,
                &KeyUse::detail(&uses),
            );
        }
        if w.unsigned_since() == 0 {
            return;
        }
        match w.checkpoint(now_secs(), op, signer) {
            Ok(_) => *lock(&state.head) = w.head(),
            Err(e) => {
                state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!("audit log: checkpoint not written: {e}");
            }
        }
    };
    let note_dropped = |w: &mut Writer| {
        let drops = lock(&state.unlogged_drops).take();
        if let Some((n, first, last)) = drops {
            let detail = format!(
                "{n} entries not written between {first} and {last} (Unix seconds): the queue of {} was full",
                state.queue
            );
            append(w, now_secs(), op, DROPPED, Outcome::Refused, &detail);
        }
    };
    loop {
        let msg = rx.recv_timeout(Duration::from_secs(1));
        note_dropped(&mut w);
        match msg {
            Ok(Msg::Record {
                time,
                operator,
                action,
                outcome,
                detail,
            }) => append(&mut w, time, &operator, &action, outcome, &detail),
            Ok(Msg::Stop { time, detail, done }) => {
                flush_refusals(&mut w, u64::MAX);
                let uses = state.key_use.take();
                if !uses.is_empty() {
                    append(
                        &mut w,
                        time,
                        op,
                        "key-use",
                        Outcome::Done,
                        &KeyUse::detail(&uses),
                    );
                }
                append(&mut w, time, op, "stop", Outcome::Done, &detail);
                checkpoint(&mut w);
                let _ = done.send(w.head());
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every handle dropped without `stop`: sign what is there.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                flush_refusals(&mut w, u64::MAX);
                checkpoint(&mut w);
                return;
            }
        }
        flush_refusals(&mut w, now_secs() / 60);
        if w.unsigned_since() >= config.checkpoint_entries
            || last_checkpoint.elapsed() >= config.checkpoint_interval
        {
            checkpoint(&mut w);
            last_checkpoint = Instant::now();
        }
    }
}

/// The p2p network's observer: an entry per incoming link accepted, refusals summed.
pub fn p2p_observer(audit: NodeAudit) -> p2p::LinkObserver {
    p2p::LinkObserver(Arc::new(move |event| match event {
        p2p::LinkEvent::Accepted { remote, peer } => audit.record_by(
            &peer.to_string(),
            "p2p-link-accepted",
            Outcome::Done,
            &format!("incoming link from {remote}"),
        ),
        p2p::LinkEvent::Refused { remote, reason } => {
            audit.refused(P2P_REFUSED, &remote.ip().to_string(), reason)
        }
        _ => {}
    }))
}

/// Returns the SM3 of the configuration file's bytes, hex (what the start entry records).
pub fn config_hash(bytes: &[u8]) -> String {
    hex::encode(crypto_sm::sm3::sm3(bytes).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;

    fn open(dir: &std::path::Path, entries: u64) -> (NodeAudit, crypto::PublicKey) {
        let key = SoftwareProvider::new(Arc::new(SeededRandom::new(5)))
            .generate()
            .unwrap();
        let pk = key.public_key();
        let config = AuditConfig {
            checkpoint_entries: entries,
            checkpoint_interval: Duration::from_secs(3600),
            anchor_interval: None,
        };
        let audit = NodeAudit::open(dir, Arc::new(key), "node-1", Arc::default(), config).unwrap();
        (audit, pk)
    }

    fn read(dir: &std::path::Path) -> Vec<auditlog::Entry> {
        auditlog::Log::new(dir.join(FILE), &auditlog::NODE)
            .read()
            .unwrap()
    }

    #[test]
    fn checkpoints_every_n_entries_sums_refusals_and_key_use_and_signs_at_stop() {
        let t = tempfile::tempdir().unwrap();
        let (audit, pk) = open(t.path(), 3);
        for i in 0..7 {
            audit.record("test", Outcome::Done, &format!("event {i}"));
        }
        for _ in 0..10_000 {
            audit.refused(API_REFUSED, "10.1.1.1", "TLS handshake failed");
        }
        audit.key_used(Purpose::TlsHandshake);
        audit.key_used(Purpose::TlsHandshake);
        let (seq, head) = audit.stop("stopped cleanly").unwrap();
        // Stopped: nothing more is recorded, and stop is idempotent.
        audit.record("late", Outcome::Done, "x");
        assert_eq!(audit.stop("again"), None);
        assert_eq!(audit.head(), Some((seq, head.clone())));
        let log = read(t.path());
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        // A checkpoint after every 3 unsigned entries (4 when it writes the key-use entry
        // first: the writer thread may see the key use before or after the first
        // checkpoint), the refusals in one entry, stop and the final checkpoint.
        let mut unsigned = 0;
        for a in &actions {
            if *a == auditlog::CHECKPOINT {
                unsigned = 0;
            } else {
                unsigned += 1;
                assert!(unsigned <= 4, "{actions:?}");
            }
        }
        assert_eq!(actions.iter().filter(|a| **a == "test").count(), 7);
        assert_eq!(actions[actions.len() - 2..], ["stop", "checkpoint"]);
        let one = |action: &str| {
            let found: Vec<_> = log.iter().filter(|e| e.action == action).collect();
            assert_eq!(found.len(), 1, "{action}: {actions:?}");
            found[0].clone()
        };
        let refused = one(API_REFUSED);
        assert!(
            refused.detail.contains("refused 10000 times"),
            "{}",
            refused.detail
        );
        assert_eq!(refused.operator, "10.1.1.1");
        let key_use = one("key-use");
        assert!(
            key_use.detail.contains("tls-handshake 2"),
            "{}",
            key_use.detail
        );
        let r = auditlog::Log::new(t.path().join(FILE), &auditlog::NODE)
            .verify(&[pk], Some(&head), auditlog::UnsignedTail::Refuse)
            .unwrap();
        assert_eq!(r.entries, seq + 1);
        // A second run continues the chain.
        let (audit, _) = open(t.path(), 1000);
        assert_eq!(audit.head(), Some((seq, head)));
        audit.record("start", Outcome::Done, "again");
        audit.stop("stopped cleanly").unwrap();
        assert_eq!(read(t.path()).len() as u64, seq + 4);
    }

    #[test]
    fn a_full_queue_drops_entries_counts_them_and_the_log_says_how_many() {
        let t = tempfile::tempdir().unwrap();
        let key = SoftwareProvider::new(Arc::new(SeededRandom::new(5)))
            .generate()
            .unwrap();
        let config = AuditConfig {
            checkpoint_entries: 1000,
            checkpoint_interval: Duration::from_secs(3600),
            anchor_interval: None,
        };
        let audit =
            NodeAudit::open_with_queue(t.path(), Arc::new(key), "n", Arc::default(), config, 1)
                .unwrap();
        let inner = audit.inner.clone().unwrap();
        // The writer updates the head after each append: holding its lock stalls the writer
        // after its first entry at the latest, as a slow disk would.
        let held = lock(&inner.head);
        for i in 0..50 {
            audit.record("test", Outcome::Done, &format!("event {i}"));
        }
        let dropped = audit.dropped();
        assert!(dropped >= 47, "dropped {dropped}");
        drop(held);
        audit.stop("stopped cleanly").unwrap();
        let log = read(t.path());
        let written = log.iter().filter(|e| e.action == "test").count() as u64;
        assert_eq!(written + dropped, 50, "{log:?}");
        let counted: u64 = log
            .iter()
            .filter(|e| e.action == DROPPED)
            .map(|e| {
                assert_eq!(e.outcome, Outcome::Refused);
                e.detail.split(' ').next().unwrap().parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(counted, dropped, "{log:?}");
        let metrics = crate::metrics::Metrics::default();
        let _ = metrics.audit.set(audit.clone());
        assert!(
            metrics
                .render()
                .contains(&format!("gmchain_audit_log_dropped_total {dropped}")),
        );
    }

    #[test]
    fn entries_left_unsigned_by_an_unclean_stop_are_marked_at_the_next_start() {
        let t = tempfile::tempdir().unwrap();
        // A run that wrote two entries and died before any checkpoint.
        let mut w = Writer::open(t.path().join(FILE), &auditlog::NODE).unwrap();
        for i in 0..2 {
            w.append(
                1,
                "node-1",
                "test",
                Outcome::Done,
                &format!("event {i}"),
                None,
            )
            .unwrap();
        }
        drop(w);
        let (audit, pk) = open(t.path(), 1000);
        audit.stop("stopped cleanly").unwrap();
        let log = read(t.path());
        assert_eq!(log[2].action, UNSIGNED_AT_OPEN, "{log:?}");
        assert!(
            log[2].detail.starts_with("entries 0 to 1 "),
            "{}",
            log[2].detail
        );
        auditlog::Log::new(t.path().join(FILE), &auditlog::NODE)
            .verify(&[pk], None, auditlog::UnsignedTail::Refuse)
            .unwrap();
        // A clean log gets no such entry at its next start.
        let (audit, _) = open(t.path(), 1000);
        audit.stop("stopped cleanly").unwrap();
        let n = read(t.path())
            .iter()
            .filter(|e| e.action == UNSIGNED_AT_OPEN)
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_tampered_log_stops_the_node_at_open_and_a_default_handle_records_nothing() {
        let t = tempfile::tempdir().unwrap();
        let (audit, _) = open(t.path(), 1000);
        audit.record("start", Outcome::Done, "first");
        audit.stop("stopped cleanly").unwrap();
        let path = t.path().join(FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("first", "forged", 1)).unwrap();
        let key = SoftwareProvider::new(Arc::new(SeededRandom::new(5)))
            .generate()
            .unwrap();
        let e = NodeAudit::open(
            t.path(),
            Arc::new(key),
            "n",
            Arc::default(),
            AuditConfig::default(),
        )
        .unwrap_err();
        assert!(matches!(e, NodeError::Audit(_)), "{e}");
        assert!(e.to_string().contains("entry 0"), "{e}");
        let none = NodeAudit::default();
        none.record("x", Outcome::Done, "y");
        none.refused(P2P_REFUSED, "p", "r");
        assert_eq!(
            (none.head(), none.stop("z"), none.failures()),
            (None, None, 0)
        );
    }
}
