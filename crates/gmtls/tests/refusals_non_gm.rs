//! Peers that do not speak RFC 8998 meet a gmtls server: Debian's `openssl s_client`
//! (OpenSSL 3, AES suites and X25519/NIST groups; then TLS 1.2), and ClientHellos written by
//! the test offering a non-GM suite or a non-GM group. The server never negotiates anything
//! but TLS 1.3 with TLS_SM4_GCM_SM3/TLS_SM4_CCM_SM3 on curveSM2: it refuses with an alert.

mod common;
mod wire;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::Pki;
use gmtls::rustls::ServerConfig;
use gmtls::{API_CLIENT_ROLES, ServerCertificate, provider, server_config};
use pki::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::{ALERT, HANDSHAKE, Record};

const X25519: u16 = 0x001D;
const SECP256R1: u16 = 0x0017;
const TLS_AES_128_GCM_SHA256: u16 = 0x1301;
const ECDSA_SECP256R1_SHA256: u16 = 0x0403;
const RSA_PSS_RSAE_SHA256: u16 = 0x0804;
const ED25519: u16 = 0x0807;

/// Alert descriptions (RFC 8446 §6).
const HANDSHAKE_FAILURE: u8 = 40;
const INSUFFICIENT_SECURITY: u8 = 71;

fn node_server(seed: u64) -> Arc<ServerConfig> {
    let pki = Pki::new(seed, "Consortium");
    let creds = pki.creds(Role::NodeSign, "node-1");
    server_config(
        ServerCertificate::new(&creds),
        pki.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap()
}

/// Runs `openssl s_client` with `args` against `addr`; returns its exit success and output.
fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl must be installed (Debian's openssl package, OpenSSL 3)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn s_client_refused(args: &'static [&'static str], seed: u64) -> (String, String) {
    let (addr, served) = wire::serve_once(node_server(seed), b"never").await;
    let (ok, out) = tokio::task::spawn_blocking(move || s_client(addr, args))
        .await
        .unwrap();
    let server = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the server must end the connection")
        .unwrap();
    let err = server.expect_err("the server must refuse the handshake");
    assert!(!ok, "s_client must fail:\n{out}");
    assert!(
        !out.contains("Cipher is") || out.contains("Cipher is (NONE)"),
        "s_client negotiated a cipher:\n{out}"
    );
    (out, err)
}

#[tokio::test]
async fn openssl_s_client_default_offer_gets_handshake_failure() {
    let (out, server_err) = s_client_refused(&[], 41).await;
    assert!(
        out.contains("alert handshake failure") && out.contains("SSL alert number 40")
            || out.contains("alert insufficient security") && out.contains("SSL alert number 71"),
        "s_client must report handshake_failure (or insufficient_security):\n{out}"
    );
    // rustls checks the groups before the suites; neither is in common.
    assert!(
        server_err.contains("NoKxGroupsInCommon") || server_err.contains("NoCipherSuitesInCommon"),
        "server: {server_err}"
    );
}

#[tokio::test]
async fn openssl_s_client_tls12_gets_protocol_version() {
    let (out, server_err) = s_client_refused(&["-tls1_2"], 42).await;
    assert!(
        out.contains("alert protocol version") && out.contains("SSL alert number 70"),
        "s_client -tls1_2 must report protocol_version:\n{out}"
    );
    assert!(
        server_err.contains("Tls12NotOffered") || server_err.contains("SupportedVersions"),
        "server: {server_err}"
    );
}

/// A key share of `group` that is never used: bytes of the group's length (the server
/// refuses before computing with it).
fn fake_share(group: u16) -> (u16, Vec<u8>) {
    let len = match group {
        X25519 => 32,
        SECP256R1 | gmtls::CURVE_SM2 => 65,
        _ => unreachable!(),
    };
    let mut share: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(29) ^ 0x5a)
        .collect();
    if len == 65 {
        share[0] = 4;
    }
    (group, share)
}

/// A TLS 1.3 ClientHello record (RFC 8446 §4.1.2) with the given offer.
fn client_hello(
    suites: &[u16],
    groups: &[u16],
    shares: &[(u16, Vec<u8>)],
    sigalgs: &[u16],
) -> Vec<u8> {
    fn list16(items: &[u16]) -> Vec<u8> {
        let mut v = ((items.len() * 2) as u16).to_be_bytes().to_vec();
        for i in items {
            v.extend_from_slice(&i.to_be_bytes());
        }
        v
    }
    fn ext(typ: u16, body: &[u8]) -> Vec<u8> {
        [
            &typ.to_be_bytes()[..],
            &(body.len() as u16).to_be_bytes(),
            body,
        ]
        .concat()
    }
    let mut key_shares = Vec::new();
    for (g, share) in shares {
        key_shares.extend_from_slice(&g.to_be_bytes());
        key_shares.extend_from_slice(&(share.len() as u16).to_be_bytes());
        key_shares.extend_from_slice(share);
    }
    let extensions = [
        ext(wire::EXT_SUPPORTED_VERSIONS, &[2, 0x03, 0x04]),
        ext(wire::EXT_SUPPORTED_GROUPS, &list16(groups)),
        ext(wire::EXT_SIGNATURE_ALGORITHMS, &list16(sigalgs)),
        ext(
            wire::EXT_KEY_SHARE,
            &[&(key_shares.len() as u16).to_be_bytes()[..], &key_shares].concat(),
        ),
    ]
    .concat();
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // legacy_session_id
    body.extend_from_slice(&list16(suites));
    body.extend_from_slice(&[1, 0]); // legacy_compression_methods: null
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut msg = vec![wire::CLIENT_HELLO];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    Record {
        typ: HANDSHAKE,
        version: 0x0301,
        body: msg,
    }
    .bytes()
}

/// Sends `hello` to a fresh gmtls server; returns the records it answered with (until it
/// closed, or for 2 s) and the server's error.
async fn answer_to(hello: Vec<u8>, seed: u64) -> (Vec<Record>, Result<(u16, Vec<u8>), String>) {
    let (addr, served) = wire::serve_once(node_server(seed), b"never").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The parser of the test's own bytes is checked on them first.
    let parsed = wire::client_hello(&wire::records(&hello)[0].body);
    assert!(!parsed.cipher_suites.is_empty());
    tcp.write_all(&hello).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut got)).await;
    drop(tcp);
    let server = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the server must end")
        .unwrap();
    (wire::records(&got), server)
}

fn assert_fatal_alert(records: &[Record], allowed: &[u8]) -> u8 {
    assert_eq!(
        records.len(),
        1,
        "exactly one record, an alert: {records:?}"
    );
    let r = &records[0];
    assert_eq!(
        r.typ, ALERT,
        "content type 21 (alert), not a ServerHello: {r:?}"
    );
    assert_eq!(
        r.body.len(),
        2,
        "an unprotected alert: level and description"
    );
    assert_eq!(r.body[0], 2, "fatal");
    assert!(
        allowed.contains(&r.body[1]),
        "alert description {}",
        r.body[1]
    );
    r.body[1]
}

#[tokio::test]
async fn a_client_hello_with_only_an_aes_suite_and_x25519_gets_an_alert() {
    let hello = client_hello(
        &[TLS_AES_128_GCM_SHA256],
        &[X25519],
        &[fake_share(X25519)],
        &[ECDSA_SECP256R1_SHA256, RSA_PSS_RSAE_SHA256, ED25519],
    );
    let (records, server) = answer_to(hello, 43).await;
    assert_fatal_alert(&records, &[HANDSHAKE_FAILURE, INSUFFICIENT_SECURITY]);
    let err = server.expect_err("the server must refuse");
    assert!(
        err.contains("NoKxGroupsInCommon") || err.contains("NoCipherSuitesInCommon"),
        "server: {err}"
    );
}

#[tokio::test]
async fn an_sm4_suite_with_only_x25519_is_refused_never_negotiated_on_x25519() {
    // TLS_SM4_GCM_SM3 and sm2sig_sm3 offered, but supported_groups and key_share x25519 only.
    let hello = client_hello(
        &[gmtls::TLS_SM4_GCM_SM3],
        &[X25519],
        &[fake_share(X25519)],
        &[gmtls::SM2SIG_SM3],
    );
    let (records, server) = answer_to(hello, 44).await;
    assert_fatal_alert(&records, &[HANDSHAKE_FAILURE, INSUFFICIENT_SECURITY]);
    let err = server.expect_err("the server must refuse");
    assert!(err.contains("NoKxGroupsInCommon"), "server: {err}");
}

#[tokio::test]
async fn an_x25519_key_share_with_curve_sm2_supported_gets_a_retry_for_curve_sm2() {
    // supported_groups names curveSM2 too, but the only key share is x25519: the server must
    // ask for a curveSM2 share (HelloRetryRequest), not use the x25519 one.
    let hello = client_hello(
        &[TLS_AES_128_GCM_SHA256, gmtls::TLS_SM4_GCM_SM3],
        &[X25519, gmtls::CURVE_SM2],
        &[fake_share(X25519)],
        &[ED25519, gmtls::SM2SIG_SM3],
    );
    let (records, _) = answer_to(hello, 45).await;
    let hs = wire::plaintext_handshake(&records);
    assert!(!hs.is_empty(), "no handshake answer: {records:?}");
    let hrr = wire::server_hello(&hs[0]);
    assert!(hrr.is_hello_retry_request(), "{hrr:?}");
    assert_eq!(hrr.cipher_suite, gmtls::TLS_SM4_GCM_SM3);
    assert_eq!(hrr.key_share_group, Some(gmtls::CURVE_SM2));
    assert_eq!(hrr.selected_version, Some(0x0304));
}

#[tokio::test]
async fn gm_suite_and_curve_sm2_without_sm2sig_sm3_fails_with_handshake_failure() {
    // Everything GM but the signature scheme: the server's key signs with sm2sig_sm3 only, so
    // the handshake fails at CertificateVerify (handshake_failure, under the handshake keys),
    // after a ServerHello that can only name a GM suite and curveSM2.
    let eph = crypto_sm::sm2::EphemeralKey::generate(&crypto_sm::rng::SystemRandom).unwrap();
    let hello = client_hello(
        &[gmtls::TLS_SM4_GCM_SM3],
        &[gmtls::CURVE_SM2],
        &[(gmtls::CURVE_SM2, eph.public().as_bytes().to_vec())],
        &[ECDSA_SECP256R1_SHA256, ED25519],
    );
    let (records, server) = answer_to(hello, 46).await;
    let err = server.expect_err("the server must refuse");
    assert!(err.contains("NoSignatureSchemesInCommon"), "server: {err}");
    let sh = wire::server_hello(&wire::plaintext_handshake(&records)[0]);
    assert_eq!(sh.cipher_suite, gmtls::TLS_SM4_GCM_SM3);
    assert_eq!(sh.key_share_group, Some(gmtls::CURVE_SM2));
    assert!(
        records[1..]
            .iter()
            .all(|r| r.typ == wire::APPLICATION_DATA || r.typ == wire::CHANGE_CIPHER_SPEC),
        "after the ServerHello only protected records: {records:?}"
    );
}
