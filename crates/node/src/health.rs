//! The node's health (`GET /v1/health`): storage, token and peers, each checked for real when
//! asked: the tip block read back from RocksDB, one SM2 signature by the node's key in its token
//! over a fixed probe (never over anything a caller chose), and the live p2p links against the
//! other validators.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::local::LocalNode;

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
    /// The p2p links (`ok` without consensus links: a single validator has no peers).
    pub peers: Check,
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
        }
    }

    /// Whether every component works.
    pub fn ok(&self) -> bool {
        self.storage.ok && self.token.ok && self.peers.ok
    }

    /// `ok`, `degraded` (peers missing but a quorum is connected) or `down`.
    pub fn status(&self) -> &'static str {
        if self.ok() {
            "ok"
        } else if self.storage.ok && self.token.ok {
            "degraded"
        } else {
            "down"
        }
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
            "storage": part(&self.storage),
            "token": part(&self.token),
            "peers": part(&self.peers),
        })
    }
}

/// Checks the node now (blocking: a RocksDB read and a token signature).
/// `expected_peers`: the p2p peers the node's configuration names.
pub fn report(core: &Arc<LocalNode>, expected_peers: usize) -> Report {
    let (tip, _) = core.tip();
    let started = Instant::now();
    let storage = match core.block(tip.height) {
        Ok(Some(_)) => Check {
            ok: true,
            detail: json!({"height": tip.height.0, "read_us": started.elapsed().as_micros() as u64}),
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
    let started = Instant::now();
    let signer = core.validator_signer();
    let token = match signer.sign(&crypto::UserId::default(), &probe()) {
        Ok(_) => Check {
            ok: true,
            detail: json!({"sign_us": started.elapsed().as_micros() as u64}),
        },
        Err(e) => Check {
            ok: false,
            detail: json!({"error": e.to_string()}),
        },
    };
    let peers = match core.metrics.p2p.get() {
        None => Check {
            ok: true,
            detail: json!({"consensus": false}),
        },
        Some(view) => match view.stats() {
            None => Check {
                ok: false,
                detail: json!({"consensus": true, "error": "the p2p links have stopped"}),
            },
            Some(s) => {
                let expected = expected_peers;
                Check {
                    ok: s.links >= expected,
                    detail: json!({"consensus": true, "links": s.links, "expected": expected}),
                }
            }
        },
    };
    Report {
        storage,
        token,
        peers,
    }
}
