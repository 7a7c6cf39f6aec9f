//! Operations (issue 17 part 4): the Grafana dashboard names only metrics a node exports, and
//! `GET /v1/health` reports storage, token and peers, down when a quorum of nodes is not linked.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::consortium::{Consortium, rt};
use crate::dev_node::scrape;
use crate::rest::get_json;

/// The metric names the dashboard's queries use.
fn dashboard_metrics() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/gmchain-node.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            !targets.is_empty(),
            "panel {} queries nothing",
            panel["title"]
        );
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("gmchain_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The sample names of a `/metrics` page.
fn exported(page: &str) -> Vec<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn rest_of(c: &Consortium, i: usize) -> String {
    crate::dev_node::rest_listen_of(&c.dir.join(&c.nodes[i].config))
}

#[test]
fn the_dashboard_names_exported_metrics_and_health_sees_a_peer_go() {
    let names = dashboard_metrics();
    assert!(
        names.len() >= 20,
        "the dashboard covers the node: {names:?}"
    );
    let mut c = Consortium::new(2, "ops");
    c.start(0);
    c.start(1);
    let rt = rt();
    c.wait_up(&rt, 0);
    c.wait_up(&rt, 1);
    let rest = rest_of(&c, 0);
    // Both validators decide blocks: the links and the consensus counters exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = get_json(&rest, "/v1/status");
        if s["height"].as_str().and_then(|h| h.parse::<u64>().ok()) >= Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no block decided: {}", c.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A refused transaction: the refusal counter has its first sample (per code).
    let (st, _, _) =
        crate::rest::post_json(&rest, "/v1/tx", &serde_json::json!({"signed_tx": "AAAA"}));
    assert_eq!(st, 400);
    let page = scrape(&c.nodes[0].metrics);
    let have = exported(&page);
    let missing: Vec<_> = names.iter().filter(|n| !have.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "docs/grafana/gmchain-node.json names metrics the node does not export: {missing:?}"
    );
    // Health: everything up, the one peer linked.
    let (st, h) = get_json(&rest, "/v1/health");
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["peers"]["expected"], 1, "{h}");
    assert_eq!(h["peers"]["links"], 1, "{h}");
    // The peer goes: below a quorum, 503, storage and token still fine.
    c.kill(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let h = loop {
        let (st, h) = get_json(&rest, "/v1/health");
        if st == 503 {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "health never saw the peer go: {h}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // One of two nodes is below a quorum: down (a load balancer stops sending to it).
    assert_eq!(h["status"], "down", "{h}");
    assert_eq!(h["peers"]["ok"], false, "{h}");
    assert_eq!(h["storage"]["ok"], true, "{h}");
    assert_eq!(h["token"]["ok"], true, "{h}");
}
