//! gmtls against Tongsuo 8.5 in strict SM mode, both directions, both RFC 8998 suites, mutual
//! authentication: each side checks the negotiated suite and group, the other's certificate,
//! and one line of application data each way.
use interop_tongsuo::*;
use pki::Role;

fn gm_suite(s: Suite) -> gmtls::Suite {
    match s {
        Suite::Sm4GcmSm3 => gmtls::Suite::Sm4GcmSm3,
        Suite::Sm4CcmSm3 => gmtls::Suite::Sm4CcmSm3,
    }
}

#[test]
fn gmtls_client_to_tongsuo_server_both_suites() {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    for suite in Suite::BOTH {
        // Tongsuo checks the gmtls client against the root and the CRLs.
        let mut t = TongsuoConfig::strict(suite, Some(&node), &pki.ca_crls_pem());
        t.crl_check = true;
        let (addr, h) = tongsuo_server(t.build(true));
        let provider = gmtls::provider_with_suites(&[gm_suite(suite)]);
        let gm = gmtls_client(gm_client_config(&pki, &alice, provider), addr)
            .unwrap_or_else(|e| panic!("{suite:?}: gmtls client: {e}"));
        let ts = h
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{suite:?}: Tongsuo server: {e}"));
        assert_eq!(gm.suite, suite.id(), "gmtls client's suite");
        assert_eq!(ts.suite, suite.id(), "Tongsuo server's suite");
        assert_eq!((gm.group, ts.group), (CURVE_SM2, CURVE_SM2));
        assert_eq!(ts.version, "TLSv1.3");
        assert_eq!(gm.peer_cert.as_deref(), Some(node.cert.der()));
        let id = gm.peer.expect("gmtls saw no peer identity");
        assert_eq!(
            (id.role, id.organisation.as_str()),
            (Role::NodeSign, "GMChain Agency A")
        );
        assert_eq!(ts.peer_cert.as_deref(), Some(alice.cert.der()));
        assert_eq!(gm.received, "pong from tongsuo\n");
        assert_eq!(ts.received, "ping from gmtls\n");
    }
}

#[test]
fn tongsuo_client_to_gmtls_server_both_suites() {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    for suite in Suite::BOTH {
        let provider = gmtls::provider_with_suites(&[gm_suite(suite)]);
        let (addr, h) = gmtls_server(gm_server_config(&pki, &node, provider));
        let mut t = TongsuoConfig::strict(suite, Some(&alice), &pki.ca_crls_pem());
        t.crl_check = true;
        let ts = tongsuo_client(&t.build(false), addr)
            .unwrap_or_else(|e| panic!("{suite:?}: Tongsuo client: {e}"));
        let gm = h
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{suite:?}: gmtls server: {e}"));
        assert_eq!(gm.suite, suite.id(), "gmtls server's suite");
        assert_eq!(ts.suite, suite.id(), "Tongsuo client's suite");
        assert_eq!((gm.group, ts.group), (CURVE_SM2, CURVE_SM2));
        assert_eq!(ts.peer_cert.as_deref(), Some(node.cert.der()));
        assert_eq!(gm.peer_cert.as_deref(), Some(alice.cert.der()));
        let id = gm.peer.expect("gmtls saw no peer identity");
        assert_eq!(id.role, Role::User);
        assert_eq!(gm.received, "ping from tongsuo\n");
        assert_eq!(ts.received, "pong from gmtls\n");
    }
}

/// The gmtls server offers both suites and honours its own order (GCM first); a Tongsuo client
/// offering both in either order gets what the server prefers, and one offering only CCM gets
/// CCM.
#[test]
fn suite_selection_with_both_offered() {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    for (offer, want) in [
        ("TLS_SM4_GCM_SM3:TLS_SM4_CCM_SM3", TLS_SM4_GCM_SM3),
        ("TLS_SM4_CCM_SM3:TLS_SM4_GCM_SM3", TLS_SM4_GCM_SM3),
        ("TLS_SM4_CCM_SM3", TLS_SM4_CCM_SM3),
    ] {
        let (addr, h) = gmtls_server(gm_server_config(&pki, &node, gmtls::provider()));
        let mut t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&alice), &pki.ca_pem());
        t.ciphersuites = offer.into();
        let ts = tongsuo_client(&t.build(false), addr).unwrap();
        let gm = h.join().unwrap().unwrap();
        assert_eq!((ts.suite, gm.suite), (want, want), "offer {offer}");
    }
}

/// HelloRetryRequest: a Tongsuo client whose first (and only) key share is X25519, listing
/// curveSM2 second. Strict mode would move curveSM2 first (so no HRR could happen), so this one
/// client is NOT strict; the suites, signature algorithms and certificates are still GM only.
/// The gmtls server must answer with an HRR for curveSM2, and the handshake completes on it.
#[test]
fn hello_retry_request_to_curve_sm2() {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    for (groups, first) in [("X25519:curveSM2", 0x001d_u16), ("P-256:curveSM2", 0x0017)] {
        for suite in Suite::BOTH {
            let provider = gmtls::provider_with_suites(&[gm_suite(suite)]);
            let (addr, h) = gmtls_server(gm_server_config(&pki, &node, provider));
            let proxy = RecordingProxy::start(addr);
            let mut t = TongsuoConfig::strict(suite, Some(&alice), &pki.ca_pem());
            t.strict = false;
            t.groups = groups.into();
            let ts = tongsuo_client(&t.build(false), proxy.addr)
                .unwrap_or_else(|e| panic!("{groups} {suite:?}: Tongsuo client: {e}"));
            let gm = h.join().unwrap().unwrap();
            let (c2s, s2c) = proxy.finish();
            let ch = handshake_messages(&c2s);
            let sh = handshake_messages(&s2c);
            assert_eq!(
                client_key_share_groups(&ch[0]),
                vec![first],
                "first ClientHello"
            );
            assert!(
                is_hrr(&sh[0]),
                "{groups}: the server's first message is not an HRR"
            );
            assert_eq!(
                client_key_share_groups(&ch[1]),
                vec![CURVE_SM2],
                "second ClientHello"
            );
            assert!(!is_hrr(&sh[1]), "the second ServerHello is another HRR");
            assert_eq!((gm.group, ts.group), (CURVE_SM2, CURVE_SM2));
            assert_eq!((gm.suite, ts.suite), (suite.id(), suite.id()));
            assert_eq!(gm.received, "ping from tongsuo\n");
            assert_eq!(ts.received, "pong from gmtls\n");
        }
    }
}
