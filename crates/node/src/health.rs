//! The node's health (`GET /v1/health`): storage, token and peers, each checked for real: the
//! tip block read back from RocksDB, one SM2 signature by the node's key in its token over a
//! fixed probe (never over anything a caller chose), and the live p2p links against the peers of
//! the configuration. A check runs at most once per [`CACHE`]: callers in between get the last
//! report, so anonymous callers cannot make the token sign at their pace.

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
            checked_ms: now_ms(),
        }
    }

    /// `ok`, `degraded` or `down` ([`verdict`]).
    pub fn status(&self) -> &'static str {
        if !self.quorum || !self.storage.ok || !self.token.ok {
            "down"
        } else if !self.peers.ok {
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
    let storage = match core.block(tip.height) {
        Ok(Some(_)) => Check {
            ok: true,
            detail: json!({"height": tip.height.0}),
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
    Report {
        storage,
        token,
        peers,
        quorum,
        checked_ms: now_ms(),
    }
}

/// The last report and when it was made; one check at a time.
#[derive(Debug, Default)]
pub struct Cache(tokio::sync::Mutex<Option<(Instant, Report)>>);

impl Cache {
    /// The last report if younger than [`CACHE`] at `now`, else the one `check` makes (callers
    /// arriving meanwhile wait for it rather than checking again).
    pub async fn get<F, Fut>(&self, now: Instant, check: F) -> Report
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Report>,
    {
        let mut last = self.0.lock().await;
        if let Some((at, r)) = last.as_ref()
            && now.saturating_duration_since(*at) < CACHE
        {
            return r.clone();
        }
        let r = check().await;
        *last = Some((now, r.clone()));
        r
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

    /// Review 19, M2: callers within the cache time get the last report; the token signs once.
    #[tokio::test]
    async fn a_report_is_reused_within_the_cache_time() {
        let cache = Cache::default();
        let checks = std::sync::atomic::AtomicUsize::new(0);
        let check = || async {
            checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Report::failed("test".into())
        };
        let t0 = Instant::now();
        for i in 0..50 {
            cache.get(t0 + Duration::from_millis(i * 10), check).await;
        }
        assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache
            .get(t0 + CACHE + Duration::from_millis(1), check)
            .await;
        assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
