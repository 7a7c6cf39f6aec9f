//! A relay the test controls records every byte between a gmtls client and server that
//! exchange a transaction body: only TLS 1.3 with TLS_SM4_GCM_SM3 (0x00C6), or
//! TLS_SM4_CCM_SM3 (0x00C7) when the client offers only that, is negotiated on curveSM2;
//! everything after the hellos is protected; the transaction's bytes never cross in clear.

mod common;
mod wire;

use std::time::Duration;

use common::Pki;
use gmtls::{
    API_CLIENT_ROLES, SERVER_ROLES, ServerCertificate, Suite, client_config, provider,
    provider_with_suites, server_config,
};
use pki::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire::{APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE};

/// A fake transaction body with a marker that must never appear on the wire.
fn transaction() -> Vec<u8> {
    let mut tx = br#"{"kind":"transfer","from":"agency-a/alice","to":"agency-b/bob","memo":"GMCHAIN-PLAINTEXT-MARKER-7f3a9c","payload":""#.to_vec();
    tx.extend(std::iter::repeat_n(b'Z', 3000));
    tx.extend_from_slice(br#""}"#);
    tx
}

const MARKER: &[u8] = b"GMCHAIN-PLAINTEXT-MARKER-7f3a9c";
const GREETING: &[u8] = b"server greeting: block height 42";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn recorded_exchange(offer: &[Suite], expected: u16, seed: u64) {
    let pki = Pki::new(seed, "Consortium");
    let node = pki.creds(Role::NodeSign, "node-1");
    let server = server_config(
        ServerCertificate::new(&node),
        pki.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap();
    let user = pki.creds(Role::User, "alice");
    let client = client_config(
        &user,
        pki.authority(SERVER_ROLES, &[]),
        provider_with_suites(offer),
    )
    .unwrap();
    let (addr, served) = wire::serve_once(server, GREETING).await;
    let relay = wire::Recorder::start(addr).await;
    let mut tls = gmtls::net::connect(
        relay.addr,
        client,
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let tx = transaction();
    let mut greeting = vec![0u8; GREETING.len()];
    tls.read_exact(&mut greeting).await.unwrap();
    assert_eq!(greeting, GREETING);
    tls.write_all(&tx).await.unwrap();
    tls.shutdown().await.unwrap();
    let mut echo = Vec::new();
    tls.read_to_end(&mut echo).await.unwrap();
    drop(tls);
    // The exchange happened: the server got the transaction and echoed it.
    assert_eq!(echo, tx);
    let (negotiated, got) = served.await.unwrap().unwrap();
    assert_eq!(negotiated, expected);
    assert_eq!(got, tx);
    let captured = relay.finish().await;

    // The transaction and the greeting never crossed in clear, either way.
    for (dir, bytes) in [
        ("client→server", &captured.client_to_server),
        ("server→client", &captured.server_to_client),
    ] {
        assert!(
            !contains(bytes, MARKER),
            "{dir}: the marker crossed in clear"
        );
        assert!(
            !contains(bytes, &tx[..24]),
            "{dir}: the transaction crossed in clear"
        );
        assert!(
            !contains(bytes, &[b'Z'; 32]),
            "{dir}: the payload crossed in clear"
        );
        assert!(
            !contains(bytes, GREETING),
            "{dir}: the greeting crossed in clear"
        );
    }

    let c2s = wire::records(&captured.client_to_server);
    let s2c = wire::records(&captured.server_to_client);
    // The client offered only RFC 8998 suites, curveSM2 and sm2sig_sm3, TLS 1.3 only.
    let ch = wire::client_hello(&wire::plaintext_handshake(&c2s)[0]);
    let offered: Vec<u16> = offer.iter().map(|s| s.codepoint()).collect();
    assert_eq!(ch.cipher_suites, offered);
    assert_eq!(ch.supported_groups, [gmtls::CURVE_SM2]);
    assert_eq!(ch.key_shares, [gmtls::CURVE_SM2]);
    assert_eq!(ch.signature_algorithms, [gmtls::SM2SIG_SM3]);
    assert_eq!(ch.supported_versions, [0x0304]);

    // One ServerHello (no retry), naming the expected suite, curveSM2 and TLS 1.3.
    let server_plain = wire::plaintext_handshake(&s2c);
    assert_eq!(server_plain.len(), 1, "only the ServerHello is in clear");
    let sh = wire::server_hello(&server_plain[0]);
    assert!(!sh.is_hello_retry_request());
    assert_eq!(sh.cipher_suite, expected, "ServerHello.cipher_suite");
    assert_eq!(sh.key_share_group, Some(gmtls::CURVE_SM2));
    assert_eq!(sh.selected_version, Some(0x0304));

    // No other ServerHello anywhere, and after the hellos only protected records (and at
    // most a compatibility ChangeCipherSpec, RFC 8446 Appendix D.4).
    for (dir, records) in [("client→server", &c2s), ("server→client", &s2c)] {
        assert_eq!(records[0].typ, HANDSHAKE, "{dir}: starts with its hello");
        let rest = &records[1..];
        let ccs = rest.iter().filter(|r| r.typ == CHANGE_CIPHER_SPEC).count();
        assert!(ccs <= 1, "{dir}: {ccs} ChangeCipherSpec records");
        for r in rest {
            match r.typ {
                APPLICATION_DATA => assert!(
                    r.body.len() >= 17,
                    "{dir}: a protected record is content type + tag at least"
                ),
                CHANGE_CIPHER_SPEC => assert_eq!(r.body, [1], "{dir}: ChangeCipherSpec body"),
                t => panic!("{dir}: a record of content type {t} after the hellos"),
            }
            assert_eq!(r.version, 0x0303, "{dir}: legacy_record_version");
        }
        assert!(
            rest.iter().filter(|r| r.typ == APPLICATION_DATA).count() >= 2,
            "{dir}: the handshake flight and the data are protected records"
        );
    }
}

#[tokio::test]
async fn only_sm4_gcm_sm3_is_negotiated_and_no_plaintext_crosses() {
    recorded_exchange(&Suite::ALL, gmtls::TLS_SM4_GCM_SM3, 51).await;
}

#[tokio::test]
async fn a_client_offering_only_ccm_gets_sm4_ccm_sm3_and_no_plaintext_crosses() {
    recorded_exchange(&[Suite::Sm4CcmSm3], gmtls::TLS_SM4_CCM_SM3, 52).await;
}

#[tokio::test]
async fn the_server_prefers_gcm_whatever_the_client_order() {
    // ignore_client_order: a client listing CCM first still gets GCM.
    recorded_exchange(
        &[Suite::Sm4CcmSm3, Suite::Sm4GcmSm3],
        gmtls::TLS_SM4_GCM_SM3,
        53,
    )
    .await;
}
