//! The TLS 1.3 key schedule with SM3 (RFC 8446 §7.1 with HKDF-SM3, RFC 8998 §3) against the
//! Python reference `tests/keyschedule.py`: a gmtls handshake runs through a recording relay
//! with a key log on both sides and a `curveSM2` that records the ECDHE shared secret; the
//! reference recomputes every secret from (shared secret, transcript) and the test compares
//! them with what both sides logged, decrypts each side's handshake flight with the derived
//! keys and IVs, and checks both Finished messages.

mod common;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Pki;
use crypto::Sm4Mode;
use crypto_sm::sm4::{self, Sm4Secret};
use gmtls::rustls::crypto::{ActiveKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup};
use gmtls::rustls::{KeyLog, NamedGroup, ProtocolVersion};
use gmtls::{
    API_CLIENT_ROLES, KX_CURVE_SM2, SERVER_ROLES, ServerCertificate, Suite, client_config,
    server_config,
};
use pki::Role;
use wire::{APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, Record};

/// One logged secret: (label, client random, secret).
type Logged = (String, Vec<u8>, Vec<u8>);

/// Every secret a side logged.
#[derive(Debug, Default)]
struct Log(Mutex<Vec<Logged>>);

impl KeyLog for Log {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((label.to_string(), client_random.to_vec(), secret.to_vec()));
    }
}

impl Log {
    fn get(&self, label: &str) -> (Vec<u8>, Vec<u8>) {
        let v = self.0.lock().unwrap();
        let hits: Vec<_> = v.iter().filter(|(l, _, _)| l == label).collect();
        assert_eq!(hits.len(), 1, "{label} logged {} times: {v:?}", hits.len());
        (hits[0].1.clone(), hits[0].2.clone())
    }
}

/// `curveSM2` that records the shared secret of every exchange it completes.
#[derive(Debug)]
struct RecordingSm2(Arc<Mutex<Vec<Vec<u8>>>>);

struct RecordingActive(Box<dyn ActiveKeyExchange>, Arc<Mutex<Vec<Vec<u8>>>>);

impl SupportedKxGroup for RecordingSm2 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, gmtls::rustls::Error> {
        Ok(Box::new(RecordingActive(
            KX_CURVE_SM2.start()?,
            self.0.clone(),
        )))
    }
    fn name(&self) -> NamedGroup {
        KX_CURVE_SM2.name()
    }
    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        KX_CURVE_SM2.usable_for_version(version)
    }
}

impl ActiveKeyExchange for RecordingActive {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, gmtls::rustls::Error> {
        let s = self.0.complete(peer)?;
        self.1.lock().unwrap().push(s.secret_bytes().to_vec());
        Ok(s)
    }
    fn pub_key(&self) -> &[u8] {
        self.0.pub_key()
    }
    fn group(&self) -> NamedGroup {
        self.0.group()
    }
}

/// gmtls's provider with `suites`, its `curveSM2` replaced by the recording one.
fn recording_provider(suites: &[Suite], secrets: &Arc<Mutex<Vec<Vec<u8>>>>) -> Arc<CryptoProvider> {
    let kx: &'static RecordingSm2 = Box::leak(Box::new(RecordingSm2(secrets.clone())));
    let base = gmtls::provider_with_suites(suites);
    assert_eq!(base.kx_groups.len(), 1, "gmtls offers curveSM2 only");
    Arc::new(CryptoProvider {
        kx_groups: vec![kx],
        ..(*base).clone()
    })
}

/// `python3` from PATH, with test-support's skip rules: missing python3 fails the test,
/// unless GMCHAIN_ALLOW_SKIP=1 outside CI (then the test says it skipped and returns).
fn python3() -> Option<PathBuf> {
    if Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(PathBuf::from("python3"));
    }
    let ci = std::env::var("CI").ok().filter(|v| {
        !v.trim().is_empty() && v.trim() != "0" && !v.trim().eq_ignore_ascii_case("false")
    });
    if let Some(ci) = ci {
        panic!("python3 is not on PATH and CI={ci}: the key schedule reference must run in CI");
    }
    if std::env::var("GMCHAIN_ALLOW_SKIP").as_deref() == Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED key schedule check: python3 is not on PATH and GMCHAIN_ALLOW_SKIP=1 !!!!!!!!\n"
        );
        return None;
    }
    panic!(
        "python3 is not on PATH: install Python 3, or set GMCHAIN_ALLOW_SKIP=1 to skip (outside CI only)"
    );
}

/// Runs the reference on `inputs`; returns its `name → value` lines.
fn reference(python: &PathBuf, inputs: &[(&str, &[u8])], pure_sm3: bool) -> Vec<(String, Vec<u8>)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keyschedule.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if pure_sm3 {
        cmd.env("GMCHAIN_PURE_SM3", "1");
    } else {
        cmd.env_remove("GMCHAIN_PURE_SM3");
    }
    let mut child = cmd.spawn().unwrap();
    let input: String = inputs
        .iter()
        .map(|(n, v)| format!("{n} {}\n", hex::encode(v)))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "keyschedule.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), hex::decode(v).unwrap())
        })
        .collect()
}

fn value<'a>(out: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &out.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("the reference gave no {name}"))
        .1
}

/// Decrypts the protected handshake records of one direction (those after the hellos) with
/// `key`/`iv` from sequence 0 and returns the handshake messages up to and including Finished.
fn decrypt_flight(mode: Sm4Mode, key: &[u8], iv: &[u8], records: &[Record]) -> Vec<Vec<u8>> {
    let key = Sm4Secret::from_slice(key).unwrap();
    let mut plain = Vec::new();
    let mut seq = 0u64;
    for r in records {
        match r.typ {
            // RFC 8446 Appendix D.4: a compatibility ChangeCipherSpec is unprotected.
            CHANGE_CIPHER_SPEC => {
                assert_eq!(r.body, [1]);
                continue;
            }
            APPLICATION_DATA => {}
            t => {
                panic!("a record of type {t} after the hellos: handshake records must be protected")
            }
        }
        let mut nonce = iv.to_vec();
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        seq += 1;
        let inner = sm4::decrypt(&key, mode, &nonce, &r.header(), &r.body).unwrap_or_else(|e| {
            panic!("record {seq} does not open with the reference's key and IV: {e}")
        });
        let inner = inner.expose();
        let end = inner.iter().rposition(|&b| b != 0).unwrap();
        assert_eq!(inner[end], HANDSHAKE, "inner content type");
        plain.extend_from_slice(&inner[..end]);
        let msgs = wire::handshake_messages_prefix(&plain);
        if let Some(fin) = msgs.iter().position(|m| m[0] == 20) {
            return msgs[..=fin].to_vec();
        }
    }
    panic!("no Finished in the flight");
}

async fn handshake_and_check(suite: Suite, python: &PathBuf) {
    let pki = Pki::new(31 + suite.codepoint() as u64, "Consortium");
    let server_secrets = Arc::new(Mutex::new(Vec::new()));
    let client_secrets = Arc::new(Mutex::new(Vec::new()));
    let (server_log, client_log) = (Arc::new(Log::default()), Arc::new(Log::default()));

    let node = pki.creds(Role::NodeSign, "node-1");
    let mut server = (*server_config(
        ServerCertificate::new(&node),
        pki.authority(API_CLIENT_ROLES, &[]),
        recording_provider(&Suite::ALL, &server_secrets),
    )
    .unwrap())
    .clone();
    server.key_log = server_log.clone();
    let user = pki.creds(Role::User, "alice");
    let mut client = (*client_config(
        &user,
        pki.authority(SERVER_ROLES, &[]),
        recording_provider(&[suite], &client_secrets),
    )
    .unwrap())
    .clone();
    client.key_log = client_log.clone();

    let (addr, served) = wire::serve_once(Arc::new(server), b"hi").await;
    let relay = wire::Recorder::start(addr).await;
    let tls = gmtls::net::connect(
        relay.addr,
        Arc::new(client),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    drop(tls);
    let (negotiated, _) = served.await.unwrap().unwrap();
    assert_eq!(negotiated, suite.codepoint());
    let captured = relay.finish().await;

    // The shared secret both sides computed.
    let server_secrets = server_secrets.lock().unwrap().clone();
    let client_secrets = client_secrets.lock().unwrap().clone();
    assert_eq!(server_secrets.len(), 1);
    assert_eq!(
        server_secrets, client_secrets,
        "the two sides' ECDHE secrets differ"
    );
    let shared = &server_secrets[0];
    assert_eq!(
        shared.len(),
        32,
        "curveSM2's shared secret is the 32-byte x coordinate"
    );

    // The hellos as they crossed the wire.
    let c2s = wire::records(&captured.client_to_server);
    let s2c = wire::records(&captured.server_to_client);
    let ch_msgs = wire::plaintext_handshake(&c2s);
    let sh_msgs = wire::plaintext_handshake(&s2c);
    assert_eq!(ch_msgs.len(), 1, "one ClientHello");
    assert_eq!(sh_msgs.len(), 1, "one ServerHello, then protected records");
    let (ch, sh) = (&ch_msgs[0], &sh_msgs[0]);
    let client_random = wire::client_hello(ch).random;
    assert!(!wire::server_hello(sh).is_hello_retry_request());

    let mode = match suite {
        Suite::Sm4GcmSm3 => Sm4Mode::Gcm,
        Suite::Sm4CcmSm3 => Sm4Mode::Ccm,
    };
    let hellos = [
        ("shared_secret", &shared[..]),
        ("client_hello", ch),
        ("server_hello", sh),
    ];
    let first = reference(python, &hellos, false);

    // Each side's flight opens with the keys the reference derived.
    let server_flight = decrypt_flight(
        mode,
        value(&first, "server_handshake_key"),
        value(&first, "server_handshake_iv"),
        &s2c[1..],
    );
    let types: Vec<u8> = server_flight.iter().map(|m| m[0]).collect();
    // EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished.
    assert_eq!(types, [8, 13, 11, 15, 20], "the server's flight");
    let client_flight = decrypt_flight(
        mode,
        value(&first, "client_handshake_key"),
        value(&first, "client_handshake_iv"),
        &c2s[1..],
    );
    let types: Vec<u8> = client_flight.iter().map(|m| m[0]).collect();
    assert_eq!(
        types,
        [11, 15, 20],
        "the client's flight: Certificate, CertificateVerify, Finished"
    );

    let server_flight_bytes = server_flight.concat();
    let client_before_fin = client_flight[..2].concat();
    let mut inputs = hellos.to_vec();
    inputs.push(("server_flight", &server_flight_bytes));
    inputs.push(("client_flight", &client_before_fin));
    let full = reference(python, &inputs, false);
    // The pure-Python SM3 gives the same schedule (and is what runs where hashlib lacks SM3).
    let pure = reference(python, &inputs, true);
    assert_eq!(value(&pure, "sm3_source"), b"pure-python");
    assert_eq!(
        full[1..],
        pure[1..],
        "hashlib's SM3 and the pure-Python SM3 disagree"
    );

    // Both Finished messages carry the verify_data the reference computes (RFC 8446 §4.4.4).
    assert_eq!(
        hex::encode(&server_flight[4][4..]),
        hex::encode(value(&full, "server_finished")),
        "server Finished"
    );
    assert_eq!(
        hex::encode(&client_flight[2][4..]),
        hex::encode(value(&full, "client_finished")),
        "client Finished"
    );

    // Every secret either side logged is the reference's, under the ClientHello's random.
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ] {
        for (side, log) in [("client", &client_log), ("server", &server_log)] {
            let (random, secret) = log.get(label);
            assert_eq!(random, client_random, "{side} {label}: client random");
            assert_eq!(
                hex::encode(&secret),
                hex::encode(value(&full, label)),
                "{side} {label} ({suite:?})"
            );
        }
    }
    // Nothing else was logged (no early data, no TLS 1.2 secret).
    for log in [&client_log, &server_log] {
        assert_eq!(
            log.0.lock().unwrap().len(),
            5,
            "{:?}",
            log.0.lock().unwrap()
        );
    }
}

#[tokio::test]
async fn the_key_schedule_with_sm3_matches_the_python_reference() {
    let Some(python) = python3() else { return };
    for suite in Suite::ALL {
        handshake_and_check(suite, &python).await;
    }
}
