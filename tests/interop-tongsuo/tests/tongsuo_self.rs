//! The harness proven against itself: Tongsuo client ↔ Tongsuo server, strict SM mode, mutual
//! authentication with certificates made by the `pki` crate, for both RFC 8998 suites.
use interop_tongsuo::*;
use pki::Role;

#[test]
fn library_is_tongsuo_8_5() {
    let v = tongsuo_version();
    let o = variant_ssl::version::version();
    println!("{v} ({o})");
    assert!(
        v.starts_with("Tongsuo 8.5"),
        "linked library is not Tongsuo 8.5: {v} / {o}"
    );
}

#[test]
fn tongsuo_to_tongsuo_mutual_both_suites() {
    let pki = TestPki::new("GMChain");
    let server = pki.leaf(Role::NodeSign, "node1");
    let client = pki.leaf(Role::User, "alice");
    for suite in Suite::BOTH {
        let mut s = TongsuoConfig::strict(suite, Some(&server), &pki.ca_crls_pem());
        s.crl_check = true;
        let mut c = TongsuoConfig::strict(suite, Some(&client), &pki.ca_crls_pem());
        c.crl_check = true;
        let (addr, h) = tongsuo_server(s.build(true));
        let cs = tongsuo_client(&c.build(false), addr).unwrap();
        let ss = h.join().unwrap().unwrap();
        for (side, sess) in [("client", &cs), ("server", &ss)] {
            assert_eq!(sess.suite, suite.id(), "{side}");
            assert_eq!(sess.group, CURVE_SM2, "{side}");
            assert_eq!(sess.version, "TLSv1.3", "{side}");
        }
        assert_eq!(cs.peer_cert.as_deref(), Some(server.cert.der()));
        assert_eq!(ss.peer_cert.as_deref(), Some(client.cert.der()));
        assert_eq!(cs.received, "pong from tongsuo\n");
        assert_eq!(ss.received, "ping from tongsuo\n");
    }
}

/// Strict mode is on: a strict Tongsuo client listing X25519 before curveSM2 still sends its
/// one key share for curveSM2 (Tongsuo reorders it first, extensions_clnt.c), where a
/// non-strict one sends X25519's.
#[test]
fn strict_mode_is_in_force() {
    let pki = TestPki::new("GMChain");
    let server = pki.leaf(Role::NodeSign, "node1");
    let client = pki.leaf(Role::User, "alice");
    for strict in [true, false] {
        let mut s = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&server), &pki.ca_pem());
        s.groups = "curveSM2".into();
        let mut c = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&client), &pki.ca_pem());
        c.groups = "X25519:curveSM2".into();
        c.strict = strict;
        let (addr, h) = tongsuo_server(s.build(true));
        let proxy = RecordingProxy::start(addr);
        let cs = tongsuo_client(&c.build(false), proxy.addr).unwrap();
        h.join().unwrap().unwrap();
        let (c2s, s2c) = proxy.finish();
        let ch = handshake_messages(&c2s);
        let sh = handshake_messages(&s2c);
        let first_share = client_key_share_groups(&ch[0]);
        assert_eq!(cs.group, CURVE_SM2);
        if strict {
            assert_eq!(
                first_share,
                vec![CURVE_SM2],
                "strict client's first key share"
            );
            assert!(!is_hrr(&sh[0]), "strict: no HelloRetryRequest expected");
        } else {
            assert_eq!(
                first_share,
                vec![0x001d],
                "non-strict client's first key share"
            );
            assert!(is_hrr(&sh[0]), "non-strict: HelloRetryRequest expected");
        }
    }
}
