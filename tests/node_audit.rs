//! The node's own audit log with a real node process: start, configuration, refused API
//! connections summed, key use, stop and its checkpoint; a restart continues the chain; and
//! `gmchain node audit-verify` detects an edited byte, a removed line and (with
//! `--expect-head`) a cut tail, and refuses bad input with exit 2.

use crate::dev_node::{self, Chain, Node, dev_chain, fails, gm, log_of};
use std::io::Write;
use std::path::Path;

fn entries(chain: &Chain) -> Vec<serde_json::Value> {
    std::fs::read_to_string(chain.dir.join("data/audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The head the node printed when it stopped (the last one, after a restart).
fn printed_head(chain: &Chain) -> String {
    log_of(chain)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("audit log head: entry "))
        .and_then(|l| l.split(" hash ").nth(1))
        .expect("the node prints its audit head at stop")
        .to_string()
}

fn run_and_stop(chain: &Chain, refused: usize) {
    let mut node = Node::start(chain);
    // Connections that are not TLS: each a refused handshake, summed into one entry.
    for _ in 0..refused {
        let mut s = std::net::TcpStream::connect(&chain.grpc).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n");
        let _ = std::io::Read::read(&mut s, &mut [0u8; 64]);
    }
    // The refusals are counted on the node's tasks: give the last one a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = node.signal("-TERM");
    assert!(st.success(), "SIGTERM exit: {st:?}; log: {}", log_of(chain));
}

fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "node",
        "audit-verify",
        "--data-dir",
        "data",
        "--cert",
        "node.crt.pem",
    ];
    args.extend_from_slice(extra);
    gm(dir, &args)
}

fn put(chain: &Chain, lines: &[&str]) {
    std::fs::write(
        chain.dir.join("data/audit.log"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn node_audit_log_records_start_refusals_and_stop_and_audit_verify_detects_tampering() {
    let chain = dev_chain(1);
    let d = &chain.dir;
    run_and_stop(&chain, 50);
    let first_head = printed_head(&chain);
    let log = entries(&chain);
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[..2], ["start", "config-loaded"], "{actions:?}");
    assert_eq!(actions[actions.len() - 1], "checkpoint", "{actions:?}");
    assert!(actions.contains(&"stop"), "{actions:?}");
    // The configuration's hash is the SM3 of node.toml's bytes.
    let sm3 = hex::encode(crypto_sm::sm3::sm3(&std::fs::read(d.join("node.toml")).unwrap()).0);
    assert!(
        log[0]["detail"].as_str().unwrap().contains(&sm3),
        "{}",
        log[0]
    );
    // 50 refused handshakes from one address: at most one entry per minute (two if the
    // test ran across a minute's end), summing all of them.
    let refused: Vec<&serde_json::Value> = log
        .iter()
        .filter(|e| e["action"] == "api-connection-refused")
        .collect();
    assert!(
        (1..=2).contains(&refused.len()),
        "{refused:?}; log: {actions:?}"
    );
    let total: u64 = refused
        .iter()
        .map(|e| {
            let d = e["detail"].as_str().unwrap();
            d.split(" refused ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(total >= 50, "{refused:?}");
    // The TLS handshakes of the start-up probe used the node's key: counted, not listed.
    let key_use = log
        .iter()
        .find(|e| e["action"] == "key-use")
        .expect("a key-use entry");
    assert!(
        key_use["detail"]
            .as_str()
            .unwrap()
            .contains("tls-handshake"),
        "{key_use}"
    );
    // Only the checkpoint is signed.
    assert_eq!(log.iter().filter(|e| !e["sig"].is_null()).count(), 1);

    // A restart continues the same chain; the first run's head stays an entry of it.
    run_and_stop(&chain, 0);
    let head = printed_head(&chain);
    assert_ne!(head, first_head);
    let log = entries(&chain);
    assert!(log.iter().any(|e| e["hash"] == first_head.as_str()));
    assert_eq!(log.iter().filter(|e| e["action"] == "start").count(), 2);

    // Intact: exit 0, strictly and against the printed head.
    let out = String::from_utf8_lossy(&verify(d, &["--strict", "--expect-head", &head]).stdout)
        .into_owned();
    assert!(out.contains("audit log OK"), "{out}");
    assert!(out.contains(&head), "{out}");
    let o = verify(d, &["--strict"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let text = std::fs::read_to_string(d.join("data/audit.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    let check = |extra: &[&str], code: i32, needle: &str| {
        let o = verify(d, extra);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {err}");
        assert!(
            err.contains(needle),
            "{extra:?}: expected {needle:?} in {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    };

    // An edited byte (a digit of the configuration hash in entry 0).
    let edited = lines[0].replacen(&sm3[..8], &format!("{:08x}", 0xdead_beef_u32), 1);
    assert_ne!(edited, lines[0]);
    let mut l = lines.clone();
    l[0] = &edited;
    put(&chain, &l);
    check(&[], 1, "entry 0: its content does not match its hash");

    // A removed line.
    let mut l = lines.clone();
    l.remove(2);
    put(&chain, &l);
    check(&[], 1, "entry 2");

    // A forged checkpoint signature: the first run's checkpoint signature on the last one.
    let first_cp = lines
        .iter()
        .position(|l| l.contains("\"action\":\"checkpoint\""))
        .unwrap();
    assert!(first_cp < n - 1);
    let sig_of = |l: &str| l.split("\"sig\":").nth(1).unwrap().to_string();
    let forged = lines[n - 1].replace(&sig_of(lines[n - 1]), &sig_of(lines[first_cp]));
    let mut l = lines.clone();
    l[n - 1] = &forged;
    put(&chain, &l);
    check(
        &[],
        1,
        &format!(
            "entry {}: signature does not verify with the node key",
            n - 1
        ),
    );

    // The tail cut off after the first run's checkpoint: consistent alone, caught by the
    // head the node printed.
    put(&chain, &lines[..=first_cp]);
    let o = verify(d, &["--strict"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check(&["--expect-head", &head], 1, "truncated");
    // Cut inside the second run: an unsigned tail, refused by --strict only.
    put(&chain, &lines[..n - 1]);
    let o = verify(d, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unsigned tail"));
    check(&["--strict"], 1, "unsigned");
    // Started again on that log, the node marks the entries no checkpoint signed; the mark is
    // listed, and --strict refuses it even once a later checkpoint covers the chain.
    run_and_stop(&chain, 0);
    let o = verify(d, &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("marked: entry {} (unsigned-at-open)", n - 1)),
        "{out}"
    );
    check(&["--strict"], 1, "--strict refuses a log with such a mark");

    // Bad input: exit 2.
    put(&chain, &lines);
    check(&["--expect-head", "xyz"], 2, "--expect-head");
    fails(
        d,
        &[
            "node",
            "audit-verify",
            "--data-dir",
            "data",
            "--cert",
            "admin.crt.pem",
        ],
        2,
        "not a node-sign certificate",
    );
    fails(
        d,
        &[
            "node",
            "audit-verify",
            "--data-dir",
            "nowhere",
            "--cert",
            "node.crt.pem",
        ],
        2,
        "no audit log",
    );
    // Another node's certificate does not verify the checkpoints.
    let other = dev_node::dev_chain(1);
    std::fs::copy(other.dir.join("node.crt.pem"), d.join("other.crt.pem")).unwrap();
    fails(
        d,
        &[
            "node",
            "audit-verify",
            "--data-dir",
            "data",
            "--cert",
            "other.crt.pem",
        ],
        1,
        "signature does not verify with the node key",
    );
}
