//! Key-log agreement: for one handshake, Tongsuo's keylog callback and gmtls's rustls `KeyLog`
//! log the same client random and the same CLIENT/SERVER_HANDSHAKE_TRAFFIC_SECRET and
//! CLIENT/SERVER_TRAFFIC_SECRET_0; and gmtls's keyschedule.py (stdlib, SM3:
//! crates/gmtls/tests/keyschedule.py) recomputes every one of them from the ECDHE shared secret (recorded by a wrapper around gmtls's curveSM2) and the
//! handshake messages (captured by a recording proxy; the server's encrypted flight decrypted
//! with the logged server handshake secret).
use interop_tongsuo::*;
use pki::Role;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const LABELS: [&str; 4] = [
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
];

fn gm_suite(s: Suite) -> gmtls::Suite {
    match s {
        Suite::Sm4GcmSm3 => gmtls::Suite::Sm4GcmSm3,
        Suite::Sm4CcmSm3 => gmtls::Suite::Sm4CcmSm3,
    }
}

/// LABEL → (client_random hex, secret hex); a label logged twice must not differ.
fn parse(lines: &[String]) -> BTreeMap<String, (String, String)> {
    let mut m = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 3, "keylog line {l}");
        let v = (f[1].to_lowercase(), f[2].to_lowercase());
        if let Some(old) = m.insert(f[0].to_string(), v.clone()) {
            assert_eq!(old, v, "{} logged twice with different values", f[0]);
        }
    }
    m
}

fn run(suite: Suite, gmtls_is_server: bool) {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    let t_lines: KeyLogLines = Arc::new(Mutex::new(Vec::new()));
    let g_lines: KeyLogLines = Arc::new(Mutex::new(Vec::new()));
    let (provider, secrets) = recording_provider(&[gm_suite(suite)]);
    let keylog = Arc::new(CollectingKeyLog(g_lines.clone()));
    let (c2s, s2c) = if gmtls_is_server {
        let mut cfg = (*gm_server_config(&pki, &node, provider)).clone();
        cfg.key_log = keylog;
        let (addr, h) = gmtls_server(Arc::new(cfg));
        let proxy = RecordingProxy::start(addr);
        let mut t = TongsuoConfig::strict(suite, Some(&alice), &pki.ca_pem());
        t.keylog = Some(t_lines.clone());
        tongsuo_client(&t.build(false), proxy.addr).unwrap();
        h.join().unwrap().unwrap();
        proxy.finish()
    } else {
        let mut t = TongsuoConfig::strict(suite, Some(&node), &pki.ca_pem());
        t.keylog = Some(t_lines.clone());
        let (addr, h) = tongsuo_server(t.build(true));
        let proxy = RecordingProxy::start(addr);
        let mut cfg = (*gm_client_config(&pki, &alice, provider)).clone();
        cfg.key_log = keylog;
        gmtls_client(Arc::new(cfg), proxy.addr).unwrap();
        h.join().unwrap().unwrap();
        proxy.finish()
    };
    let what = format!(
        "{suite:?}, gmtls {}",
        if gmtls_is_server { "server" } else { "client" }
    );
    let tongsuo = parse(&t_lines.lock().unwrap());
    let gm = parse(&g_lines.lock().unwrap());
    let ch = handshake_messages(&c2s).remove(0);
    let sh = handshake_messages(&s2c).remove(0);
    assert!(!is_hrr(&sh), "{what}: unexpected HRR");
    let client_random = hex::encode(&ch[6..38]);
    for label in LABELS {
        let t = tongsuo
            .get(label)
            .unwrap_or_else(|| panic!("{what}: Tongsuo logged no {label}: {tongsuo:?}"));
        let g = gm
            .get(label)
            .unwrap_or_else(|| panic!("{what}: gmtls logged no {label}: {gm:?}"));
        assert_eq!(t, g, "{what}: {label} differs between Tongsuo and gmtls");
        assert_eq!(t.0, client_random, "{what}: {label}'s client random");
    }
    let shared = secrets.lock().unwrap().clone();
    assert_eq!(shared.len(), 1, "{what}: one ECDHE on the gmtls side");
    let s_hs = hex::decode(&tongsuo["SERVER_HANDSHAKE_TRAFFIC_SECRET"].1).unwrap();
    let flight = decrypt_server_flight(&s2c, &s_hs, suite);
    // The reference: gmtls's stdlib key schedule with SM3 (crates/gmtls/tests/keyschedule.py:
    // `name hex` lines in, every derived secret out), the one reference both test suites use.
    let Some(python) = python3() else { return };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/gmtls/tests/keyschedule.py"
    );
    let input = format!(
        "shared_secret {}\nclient_hello {}\nserver_hello {}\nserver_flight {}\n",
        hex::encode(&shared[0]),
        hex::encode(&ch),
        hex::encode(&sh),
        hex::encode(&flight),
    );
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: keyschedule.py failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let derived: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
    for label in LABELS {
        assert_eq!(
            derived.get(label).copied(),
            Some(tongsuo[label].1.as_str()),
            "{what}: {label}: the reference derives another value than both logged"
        );
    }
    // The server's Finished (the flight's last 32 bytes) is the reference's verify_data.
    assert_eq!(
        derived.get("server_finished").copied(),
        Some(hex::encode(&flight[flight.len() - 32..]).as_str()),
        "{what}: server Finished verify_data"
    );
}

#[test]
fn keylogs_agree_and_match_the_reference_gcm_gmtls_server() {
    run(Suite::Sm4GcmSm3, true);
}

#[test]
fn keylogs_agree_and_match_the_reference_ccm_gmtls_server() {
    run(Suite::Sm4CcmSm3, true);
}

#[test]
fn keylogs_agree_and_match_the_reference_gcm_gmtls_client() {
    run(Suite::Sm4GcmSm3, false);
}

#[test]
fn keylogs_agree_and_match_the_reference_ccm_gmtls_client() {
    run(Suite::Sm4CcmSm3, false);
}
