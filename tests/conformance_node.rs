//! `gmchain conformance run --node` against a real node process on 127.0.0.1: the ledger
//! clauses (GM/T 0111 §8.3-8.5, GZ-5.1, GZ-6.2) are MET with evidence against the chain's own
//! genesis file, and NOT MET (exit 1) against another chain's genesis file.

use std::path::Path;
use std::process::Output;

#[path = "support/dev_node.rs"]
mod dev_node;
use dev_node::{Chain, Node, dev_chain, gm};

fn run_conformance(chain: &Chain, genesis: &Path, out: &str) -> (Output, serde_json::Value) {
    let o = gm(
        &chain.dir,
        &[
            "conformance",
            "run",
            "--node",
            &chain.grpc,
            "--genesis",
            genesis.to_str().unwrap(),
            "--key",
            "clients/0.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "clients/0.crt.pem",
            "--out-dir",
            out,
        ],
    );
    let json = std::fs::read(chain.dir.join(out).join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stdout {} stderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, serde_json::from_slice(&json).unwrap())
}

fn clause(report: &serde_json::Value, std: &str, id: &str) -> serde_json::Value {
    report["standards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str().unwrap().starts_with(std))
        .unwrap_or_else(|| panic!("no standard {std}"))["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no clause {std} {id}"))
        .clone()
}

fn check<'a>(c: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("clause {} has no check {id}", c["id"]))
}

const LEDGER: [(&str, &str); 5] = [
    ("GM/T 0111-2021", "8.3"),
    ("GM/T 0111-2021", "8.4"),
    ("GM/T 0111-2021", "8.5"),
    ("政务区块链服务平台", "GZ-5.1"),
    ("政务区块链服务平台", "GZ-6.2"),
];

#[test]
fn ledger_clauses_against_a_live_node() {
    let chain = dev_chain(2);
    let _node = Node::start(&chain);

    let (o, report) = run_conformance(&chain, Path::new("data/genesis.json"), "rep");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    // Exit 1 only for GM/T 0111 §7.1 (algorithms-inventory: non-GM algorithms reachable in
    // production), which no node check decides.
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        report["summary"]["mandatory_failed"],
        serde_json::json!(["GM/T 0111-2021 7.1"])
    );
    for (std, id) in LEDGER {
        let c = clause(&report, std, id);
        assert_eq!(c["verdict"], "MET", "{std} {id}: {c:#}");
        for o in c["checks"].as_array().unwrap() {
            assert!(o.get("not_run").is_none(), "{o:#}");
            assert_eq!(o["pass"], true, "{o:#}");
            let ev = o["evidence"].as_array().unwrap();
            assert!(!ev.is_empty(), "{o:#}");
            assert!(
                ev.iter()
                    .all(|e| e["pass"] == true && !e["source"].as_str().unwrap().is_empty())
            );
        }
    }
    // The evidence names what was checked.
    let c85 = clause(&report, "GM/T 0111-2021", "8.5");
    let walk = serde_json::to_string(check(&c85, "node-ledger-chain")).unwrap();
    assert!(walk.contains("blocks 0..="), "{walk}");
    let c84 = clause(&report, "GM/T 0111-2021", "8.4");
    let refusals = serde_json::to_string(check(&c84, "node-verify-before-commit")).unwrap();
    for code in [
        "TX_SIGNATURE_INVALID",
        "TX_CERT_INVALID",
        "TX_WRONG_CHAIN",
        "TX_MALFORMED",
        "TX_UNKNOWN_CALL",
        "TX_PERMISSION_DENIED",
    ] {
        assert!(refusals.contains(code), "{code} missing: {refusals}");
    }
    let c62 = clause(&report, "政务区块链服务平台", "GZ-6.2");
    let proof = serde_json::to_string(check(&c62, "node-attestation-proof")).unwrap();
    assert!(proof.contains("RECEIPT_DOCUMENT_MISMATCH"), "{proof}");
    assert_eq!(report["provenance"]["node"]["url"], chain.grpc.as_str());
    assert!(
        report["provenance"]["node"]["sender"]
            .as_str()
            .unwrap()
            .contains("client0")
    );
    // Without a token the device clauses stay NOT MET (not run), as without a node.
    assert_eq!(
        clause(&report, "GM/T 0111-2021", "7.4")["verdict"],
        "NOT MET"
    );

    // Another chain's genesis file: the chain and the receipts no longer verify.
    let other = dev_chain(2);
    let (o, report) = run_conformance(
        &chain,
        &other.dir.join("data/genesis.json"),
        "rep-other-genesis",
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for (std, id) in [
        ("GM/T 0111-2021", "8.5"),
        ("政务区块链服务平台", "GZ-5.1"),
        ("政务区块链服务平台", "GZ-6.2"),
    ] {
        let c = clause(&report, std, id);
        assert_eq!(c["verdict"], "NOT MET", "{std} {id}: {c:#}");
        assert_eq!(c["cause"], "check-failed");
    }
    let c85 = clause(&report, "GM/T 0111-2021", "8.5");
    assert_eq!(check(&c85, "node-ledger-chain")["pass"], false);
    assert_eq!(check(&c85, "ledger-tamper-detected")["pass"], true);
    let c62 = clause(&report, "政务区块链服务平台", "GZ-6.2");
    assert_eq!(check(&c62, "node-attestation-proof")["pass"], false);
    let failed: Vec<&str> = report["summary"]["mandatory_failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(failed.contains(&"GM/T 0111-2021 8.5"), "{failed:?}");
    // The transaction clauses do not depend on the genesis file.
    assert_eq!(clause(&report, "GM/T 0111-2021", "8.3")["verdict"], "MET");
    assert_eq!(clause(&report, "GM/T 0111-2021", "8.4")["verdict"], "MET");
}
