//! The node's health (`GET /v1/health`): storage, token and peers, each checked for real: the
//! tip block read back from RocksDB, one SM2 signature by the node's key in its token over a
//! fixed probe (never over anything a caller chose), and the live p2p links against the peers of
//! the configuration. A check runs at most once per [`CACHE`]: callers in between get the last
//! report, so anonymous callers cannot make the token sign at their pace. The free space of
//! the filesystems the node writes to (`crate::disk`) is put into the storage check of every
//! answer from the guard's last reading ([`apply_disk`]): below the threshold, storage is down
//! with the reason, at once. A validator held by its restore guard (`crate::restored`) is
//! `degraded`, with the height it waits for under `signing`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::local::LocalNode;

/// How long a report is served before the node is checked again.
pub const CACHE: Duration = Duration::from_secs(5);

/// What the token signs to show it answers: a fixed 32-byte value no transaction id, vote or
/// block hash can be (it is the SM3 of a domain string no encoding starts with).
fn probe() -> [u8; 32] {
    crypto_sm::sm3::sm3(b"gmchain-health-probe-v1\0").0
}

/// One component's state.
#[derive(Debug, Clone)]
pub struct Check {
    /// Whether it works.
    pub ok: bool,
    /// What was seen.
    pub detail: Json,
}

/// The report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The tip block read back.
    pub storage: Check,
    /// The key's token.
    pub token: Check,
    /// The p2p links (`ok` when every configured peer is linked).
    pub peers: Check,
    /// Whether the node and its linked peers are a quorum of the configured nodes.
    pub quorum: bool,
    /// While the restore guard holds this validator to following (`crate::restored`): the
    /// height the network was learned to have reached. The node is then `degraded`.
    pub restore_guard: Option<u64>,
    /// When the checks ran (Unix milliseconds).
    pub checked_ms: u64,
}

/// The verdict: `ok`; `degraded` (a peer missing, a quorum still linked); `down` (storage or
/// token failing, or fewer than a quorum linked). Nodes are counted, not voting power.
pub fn verdict(storage: bool, token: bool, links: usize, expected: usize) -> (&'static str, bool) {
    let n = expected + 1;
    let quorum = 2 * n / 3 + 1;
    if !storage || !token || links + 1 < quorum {
        ("down", false)
    } else if links < expected {
        ("degraded", true)
    } else {
        ("ok", true)
    }
}

impl Report {
    /// A report whose checks could not run.
    pub fn failed(why: String) -> Self {
        let c = Check {
            ok: false,
            detail: json!({"error": why}),
        };
        Report {
            storage: c.clone(),
            token: c.clone(),
            peers: c,
            quorum: false,
            restore_guard: None,
            checked_ms: now_ms(),
        }
    }

    /// `ok`, `degraded` or `down` ([`verdict`]).
    pub fn status(&self) -> &'static str {
        if !self.quorum || !self.storage.ok || !self.token.ok {
            "down"
        } else if !self.peers.ok || self.restore_guard.is_some() {
            "degraded"
        } else {
            "ok"
        }
    }

    /// Whether the node serves (HTTP 200): not `down`.
    pub fn serving(&self) -> bool {
        self.status() != "down"
    }

    /// The JSON of `GET /v1/health`.
    pub fn to_json(&self) -> Json {
        let part = |c: &Check| {
            let mut d = c.detail.clone();
            if let Json::Object(m) = &mut d {
                m.insert("ok".into(), Json::Bool(c.ok));
            }
            d
        };
        json!({
            "status": self.status(),
            "checked_ms": self.checked_ms,
            "storage": part(&self.storage),
            "token": part(&self.token),
            "peers": part(&self.peers),
            "signing": match self.restore_guard {
                None => json!({"ok": true, "restore_guard": false}),
                Some(h) => json!({
                    "ok": false,
                    "restore_guard": true,
                    "learned_height": h,
                    "error": "restored from a backup or a snapshot: this validator signs nothing until the chain has passed the height the network had reached (docs/ops/backup.md)",
                }),
            },
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Checks the node now (blocking: a RocksDB read and a token signature). `expected_peers`: the
/// p2p peers the node's configuration names.
pub fn report(core: &Arc<LocalNode>, expected_peers: usize) -> Report {
    let (tip, _) = core.tip();
    // A node initialised from a snapshot says whether a block after its base confirmed it.
    let snapshot = core
        .ledger()
        .snapshot_base()
        .ok()
        .flatten()
        .map(|base| json!({"base": base.0, "confirmed": tip.height > base}));
    let storage = match core.block(tip.height) {
        Ok(Some(_)) => Check {
            ok: true,
            detail: match snapshot {
                Some(s) => json!({"height": tip.height.0, "snapshot": s}),
                None => json!({"height": tip.height.0}),
            },
        },
        Ok(None) => Check {
            ok: false,
            detail: json!({"height": tip.height.0, "error": "the tip block is not in the store"}),
        },
        Err(e) => Check {
            ok: false,
            detail: json!({"height": tip.height.0, "error": e.to_string()}),
        },
    };
    let signer = core.validator_signer();
    let token = match signer.sign(&crypto::UserId::default(), &probe()) {
        Ok(_) => Check {
            ok: true,
            detail: json!({}),
        },
        Err(e) => Check {
            ok: false,
            detail: json!({"error": e.to_string()}),
        },
    };
    let (peers, links) = match core.metrics.p2p.get() {
        None => (
            Check {
                ok: true,
                detail: json!({"consensus": false}),
            },
            expected_peers,
        ),
        Some(view) => match view.stats() {
            None => (
                Check {
                    ok: false,
                    detail: json!({"consensus": true, "error": "the p2p links have stopped"}),
                },
                0,
            ),
            Some(s) => (
                Check {
                    ok: s.links >= expected_peers,
                    detail: json!({"consensus": true, "links": s.links, "expected": expected_peers}),
                },
                s.links,
            ),
        },
    };
    let (_, quorum) = verdict(true, true, links, expected_peers);
    let m = &core.metrics;
    let restore_guard =
        (m.restore_guard.load(std::sync::atomic::Ordering::Relaxed) == 1).then(|| {
            m.restore_guard_height
                .load(std::sync::atomic::Ordering::Relaxed)
        });
    Report {
        storage,
        token,
        peers,
        quorum,
        restore_guard,
        checked_ms: now_ms(),
    }
}

/// Puts the free-space guard's last reading (no system call) into `report`'s storage check:
/// `free_bytes` (the least of the filesystems the node writes to), `path` (the path on it),
/// `min_free_bytes`, `resume_bytes` and `low`; while low the check is down, its `error` the
/// reason (after the tip read's own error, if any).
pub fn apply_disk(report: &mut Report, core: &LocalNode) {
    let Some(d) = core.disk() else { return };
    let low = d.is_low();
    if let Json::Object(m) = &mut report.storage.detail {
        m.insert("free_bytes".into(), json!(d.free()));
        m.insert("min_free_bytes".into(), json!(d.min_free_bytes()));
        m.insert("resume_bytes".into(), json!(d.resume_bytes()));
        m.insert("low".into(), json!(low));
        m.insert("path".into(), json!(d.tightest().display().to_string()));
        if low {
            let why = format!("NODE_STORAGE_LOW: {}", d.reason());
            let error = match m.get("error").and_then(Json::as_str) {
                Some(tip) => format!("{tip}; {why}"),
                None => why,
            };
            m.insert("error".into(), json!(error));
        }
    }
    if low {
        report.storage.ok = false;
    }
}

/// The last report and when it was made, and the check under way: one check at a time, run
/// to its end whoever waits for it, each caller waiting at most [`WAIT`] (a hanging token or
/// store is reported down, not waited for).
#[derive(Debug)]
pub struct Cache {
    state: std::sync::Mutex<CacheState>,
    wait: Duration,
}

#[derive(Debug, Default)]
struct CacheState {
    last: Option<(Instant, Report)>,
    running: Option<tokio::sync::watch::Receiver<Option<Report>>>,
}

/// How long a caller waits for a check under way.
pub const WAIT: Duration = Duration::from_secs(3);

impl Default for Cache {
    fn default() -> Self {
        Cache::new(WAIT)
    }
}

impl Cache {
    /// A cache whose callers wait at most `wait` for a check.
    pub fn new(wait: Duration) -> Self {
        Cache {
            state: std::sync::Mutex::default(),
            wait,
        }
    }

    /// The last report if younger than [`CACHE`], else the result of the check under way, or
    /// of a new one `start` starts (it must run the check to its end on its own, e.g. a spawned
    /// task, and send the report).
    pub async fn get<F>(&self, start: F) -> Report
    where
        F: FnOnce(tokio::sync::watch::Sender<Option<Report>>),
    {
        let mut rx = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, r)) = &st.last
                && at.elapsed() < CACHE
            {
                return r.clone();
            }
            match &st.running {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    st.running = Some(rx.clone());
                    start(tx);
                    rx
                }
            }
        };
        match tokio::time::timeout(self.wait, rx.wait_for(Option::is_some)).await {
            Ok(Ok(r)) => {
                let r = r
                    .clone()
                    .unwrap_or_else(|| Report::failed("no report".into()));
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.last = Some((Instant::now(), r.clone()));
                st.running = None;
                r
            }
            Ok(Err(_)) => {
                // The check ended without a report (its task panicked): the next caller starts
                // another.
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.running = None;
                Report::failed("the health check stopped without a report".into())
            }
            Err(_) => Report::failed(format!(
                "the health check did not finish within {} s: the token or the store does not answer",
                self.wait.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_counts_a_quorum_of_nodes() {
        // Alone: ok.
        assert_eq!(verdict(true, true, 0, 0), ("ok", true));
        // Four nodes: one peer missing keeps 3 of 4 (a quorum); two missing do not.
        assert_eq!(verdict(true, true, 3, 3), ("ok", true));
        assert_eq!(verdict(true, true, 2, 3), ("degraded", true));
        assert_eq!(verdict(true, true, 1, 3), ("down", false));
        // Two nodes: the other one missing is below a quorum.
        assert_eq!(verdict(true, true, 0, 1), ("down", false));
        // Storage or token failing: down, whatever the links.
        assert_eq!(verdict(false, true, 3, 3), ("down", false));
        assert_eq!(verdict(true, false, 3, 3), ("down", false));
    }

    /// Review 19, M2: callers get the last report or wait for the one check under way; a check
    /// that hangs is one check, reported down to each caller after the wait, never restarted
    /// by callers that give up.
    #[tokio::test]
    async fn one_check_at_a_time_and_a_hanging_one_reports_down() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let cache = Cache::new(Duration::from_millis(200));
        let started = Arc::new(AtomicUsize::new(0));
        // A check that never ends.
        let mut held = Vec::new();
        for _ in 0..5 {
            let s = started.clone();
            let r = cache
                .get(|tx| {
                    s.fetch_add(1, SeqCst);
                    held.push(tx);
                })
                .await;
            assert_eq!(r.status(), "down");
        }
        assert_eq!(started.load(SeqCst), 1, "one check, however many callers");
        // It ends: the next caller takes its report, and later ones the cached one.
        let ok = Report {
            storage: Check {
                ok: true,
                detail: json!({}),
            },
            token: Check {
                ok: true,
                detail: json!({}),
            },
            peers: Check {
                ok: true,
                detail: json!({}),
            },
            quorum: true,
            restore_guard: None,
            checked_ms: 1,
        };
        // A validator held by its restore guard serves, degraded, and says why.
        let guarded = Report {
            restore_guard: Some(41),
            ..ok.clone()
        };
        assert_eq!(guarded.status(), "degraded");
        assert!(guarded.serving());
        let j = guarded.to_json();
        assert_eq!(j["signing"]["ok"], json!(false), "{j}");
        assert_eq!(j["signing"]["learned_height"], json!(41), "{j}");
        assert_eq!(ok.to_json()["signing"]["restore_guard"], json!(false));
        let _ = held[0].send(Some(ok));
        let r = cache
            .get(|_| {
                started.fetch_add(1, SeqCst);
            })
            .await;
        assert_eq!(r.status(), "ok");
        let r = cache
            .get(|_| {
                started.fetch_add(1, SeqCst);
            })
            .await;
        assert_eq!(r.status(), "ok");
        assert_eq!(started.load(SeqCst), 1, "the cached report is served");
    }
}
