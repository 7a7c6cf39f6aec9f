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
//! take a mutex for a moment or send on a channel; one thread (`audit`) appends and fsyncs.
//! A failed append is logged and counted ([`NodeAudit::failures`]), and the node goes on.

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

/// When checkpoints are signed (`[audit]` in the node configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// A checkpoint after this many unsigned entries.
    pub checkpoint_entries: u64,
    /// A checkpoint this long after the last one, if anything is unsigned.
    pub checkpoint_interval: Duration,
}

impl Default for AuditConfig {
    /// 1000 entries or 60 seconds.
    fn default() -> Self {
        AuditConfig {
            checkpoint_entries: 1000,
            checkpoint_interval: Duration::from_secs(60),
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
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    refusals: Mutex<Refusals>,
    key_use: Arc<KeyUse>,
    head: Mutex<Option<(u64, [u8; 32])>>,
    failures: AtomicU64,
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
        let path = data_dir.join(FILE);
        let writer = Writer::open(&path, &auditlog::NODE).map_err(|e| {
            NodeError::Audit(format!(
                "{}: {e}; keep the file as evidence, move it aside and start again",
                path.display()
            ))
        })?;
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            tx: Mutex::new(Some(tx)),
            refusals: Mutex::new(Refusals::default()),
            key_use,
            head: Mutex::new(writer.head()),
            failures: AtomicU64::new(0),
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
            let _ = tx.send(Msg::Record {
                time: now_secs(),
                operator: operator.to_string(),
                action: action.to_string(),
                outcome,
                detail: detail.to_string(),
            });
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

    /// Returns how many entries could not be written.
    pub fn failures(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.failures.load(Ordering::Relaxed))
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
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
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
