//! Watch rules and session cutting with a real node process (issue 16): a member's open block
//! stream is cut after the block that suspends its certificate, and the suspended
//! certificate's next transaction raises a `refused-signer` alert in the metrics and the log,
//! while rules that ordinary traffic does not match stay at 0.

use std::time::{Duration, Instant};

use api::v1 as pb;

use crate::dev_node::{self, Node, dev_chain, fails, log_of, ok, scrape};

/// The rules appended to the dev chain's node.toml.
const RULES: &str = r#"
[[watch.rule]]
name = "refused"
kind = "refused-signer"
window_blocks = 20

[[watch.rule]]
name = "failing"
kind = "failed-rate"
max = 0
window_blocks = 20

[[watch.rule]]
name = "absent"
kind = "missed-rounds"
missed = 1
window_blocks = 5
"#;

/// The value of `gmchain_watch_alerts_total{rule="<rule>"}`, if the page has it.
fn alerts(page: &str, rule: &str) -> Option<u64> {
    let prefix = format!("gmchain_watch_alerts_total{{rule=\"{rule}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn attest(chain: &dev_node::Chain, file: &str, who: &str) -> Vec<String> {
    std::fs::write(chain.dir.join(file), file.as_bytes()).unwrap();
    [
        "tx",
        "attest",
        file,
        "--key",
        &format!("{who}.key.pem"),
        "--pass-file",
        "pass",
        "--cert",
        &format!("{who}.crt.pem"),
        "--node",
        &chain.grpc,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_suspended_member_loses_its_stream_and_its_next_transaction_raises_an_alert() {
    let chain = dev_chain(3);
    let dir = &chain.dir;
    let config = dir.join("node.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(RULES);
    std::fs::write(&config, text).unwrap();
    let _node = Node::start(&chain);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Ordinary traffic: clients/2 attests (the chain records its certificate), clients/1 too.
    for (file, who) in [("a.txt", "clients/2"), ("b.txt", "clients/1")] {
        let args = attest(&chain, file, who);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(dir, &args);
    }
    let page = scrape(&chain.metrics);
    for rule in ["refused", "failing", "absent"] {
        assert_eq!(
            alerts(&page, rule),
            Some(0),
            "{rule} after ordinary traffic: {page}"
        );
    }
    // clients/2 holds a block stream open.
    let mut stream = rt.block_on(async {
        let mut c = dev_node::client_as(&chain, "clients/2").await.unwrap();
        c.subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 0 })
            .await
            .unwrap()
            .into_inner()
    });
    ok(
        dir,
        &[
            "tx",
            "identity",
            "suspend",
            "--target",
            "clients/2.crt.pem",
            "--key",
            "admin.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "admin.crt.pem",
            "--node",
            &chain.grpc,
        ],
    );
    let suspended_at = Instant::now();
    // The stream ends (or fails) within a second of the suspending block's commit.
    let cut = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return suspended_at.elapsed(),
                Err(_) => panic!("the stream was not cut within 2 s of the suspension"),
            }
        }
    });
    assert!(cut <= Duration::from_secs(2), "cut after {cut:?}");
    // The suspended certificate signs a transaction, sent over the admin's session.
    let args = attest(&chain, "c.txt", "clients/2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(dir, &args, 2, "TX_SIGNER_SUSPENDED");
    let page = scrape(&chain.metrics);
    assert_eq!(alerts(&page, "refused"), Some(1), "{page}");
    assert_eq!(alerts(&page, "failing"), Some(0), "{page}");
    assert_eq!(alerts(&page, "absent"), Some(0), "{page}");
    assert!(page.contains("gmchain_tls_sessions_cut_total 1"), "{page}");
    // One warn line names the rule, the kind and the refusal.
    let log = log_of(&chain);
    let fired: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("watch rule fired"))
        .collect();
    assert_eq!(fired.len(), 1, "{log}");
    assert!(
        fired[0].contains("refused-signer") && fired[0].contains("TX_SIGNER_SUSPENDED"),
        "{}",
        fired[0]
    );
    // A second attempt within the window is counted, not alerted again.
    let args = attest(&chain, "d.txt", "clients/2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(dir, &args, 2, "TX_SIGNER_SUSPENDED");
    assert_eq!(alerts(&scrape(&chain.metrics), "refused"), Some(1));
}
