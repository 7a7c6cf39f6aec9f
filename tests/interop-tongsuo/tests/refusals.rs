//! Refusals with Tongsuo as the peer: what gmtls refuses, and the alert Tongsuo receives for it
//! (Tongsuo's error queue names it: "tlsv1 alert unknown ca", "tlsv13 alert certificate
//! required", ...).
use interop_tongsuo::*;
use pki::{Role, UnixTime, Validity};
use variant_ssl::ssl::SslVersion;

struct Case {
    pki: TestPki,
    node: Leaf,
    alice: Leaf,
}

fn case() -> Case {
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    Case { pki, node, alice }
}

/// Runs a Tongsuo client configured by `t` against a gmtls server presenting `c.node`; both
/// must fail. Returns (gmtls server's error, Tongsuo client's error).
fn refused_by_gmtls_server(c: &Case, t: &TongsuoConfig) -> (String, String) {
    let (addr, h) = gmtls_server(gm_server_config(&c.pki, &c.node, gmtls::provider()));
    let ts = tongsuo_client(&t.build(false), addr);
    let gm = h.join().unwrap();
    let gm = match gm {
        Err(e) => e.0,
        Ok(s) => panic!("gmtls server accepted: {s:?}"),
    };
    let ts = match ts {
        Err(e) => e.0,
        Ok(s) => panic!("Tongsuo client completed: {s:?} (gmtls: {gm})"),
    };
    println!("gmtls server: {gm}\nTongsuo client: {ts}");
    (gm, ts)
}

fn assert_has(hay: &str, needle: &str, who: &str) {
    assert!(
        hay.to_lowercase().contains(&needle.to_lowercase()),
        "{who}: expected \"{needle}\" in: {hay}"
    );
}

#[test]
fn client_without_certificate() {
    let c = case();
    let t = TongsuoConfig::strict(Suite::Sm4GcmSm3, None, &c.pki.ca_pem());
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "peer sent no certificates", "gmtls server");
    assert_has(&ts, "alert certificate required", "Tongsuo client");
}

#[test]
fn client_certificate_from_outside_the_consortium() {
    let c = case();
    let outsider = TestPki::new("Outsider");
    let mallory = outsider.leaf(Role::User, "mallory");
    // Mallory trusts our root, so only gmtls's check of her certificate can fail.
    let t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&mallory), &c.pki.ca_pem());
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "UnknownIssuer", "gmtls server");
    assert_has(&ts, "alert unknown ca", "Tongsuo client");
}

#[test]
fn revoked_client_certificate() {
    let c = case();
    c.pki.revoke(&c.alice);
    let t = TongsuoConfig::strict(Suite::Sm4CcmSm3, Some(&c.alice), &c.pki.ca_pem());
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "Revoked", "gmtls server");
    assert_has(&ts, "alert certificate revoked", "Tongsuo client");
}

#[test]
fn expired_client_certificate() {
    let c = case();
    let t0 = now().0;
    let old = c.pki.leaf_valid(
        Role::User,
        "old",
        Validity {
            not_before: UnixTime(t0 - 100 * 86_400),
            not_after: UnixTime(t0 - 86_400),
        },
    );
    let t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&old), &c.pki.ca_pem());
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "Expired", "gmtls server");
    assert_has(&ts, "alert certificate expired", "Tongsuo client");
}

#[test]
fn client_certificate_of_a_role_the_api_does_not_accept() {
    let c = case();
    let other_node = c.pki.leaf(Role::NodeSign, "node2");
    let t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&other_node), &c.pki.ca_pem());
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "InvalidPurpose", "gmtls server");
    assert_has(&ts, "alert unsupported certificate", "Tongsuo client");
}

#[test]
fn client_offering_only_tls12() {
    let c = case();
    let mut t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&c.alice), &c.pki.ca_pem());
    t.versions = (SslVersion::TLS1_2, SslVersion::TLS1_2);
    t.strict = false;
    t.groups = "curveSM2:X25519:P-256".into();
    t.sigalgs = "sm2sig_sm3:ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256".into();
    let (gm, ts) = refused_by_gmtls_server(&c, &t);
    assert_has(&gm, "SupportedVersionsExtensionRequired", "gmtls server");
    assert_has(&ts, "alert protocol version", "Tongsuo client");
}

/// Non-GM offers: each must end in handshake_failure (or insufficient_security), as the issue
/// maps "non-GM offer" (a plain OpenSSL client, for one). The Tongsuo client is not strict here
/// (strict mode would refuse to offer these).
/// - only TLS_AES_128_GCM_SHA256, with curveSM2 and sm2sig_sm3;
/// - only TLS_AES_128_GCM_SHA256, X25519/P-256, ECDSA/RSA-PSS (a plain non-GM client);
/// - the GM suite, curveSM2, but only ECDSA/RSA-PSS signature algorithms;
/// - the GM suite, sm2sig_sm3, but only X25519/P-256 groups.
#[test]
fn client_offering_only_non_gm_algorithms() {
    let c = case();
    let plain_groups = "X25519:P-256";
    let plain_sigalgs = "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256";
    let mut wrong = Vec::new();
    for (suites, groups, sigalgs, gm_error) in [
        (
            "TLS_AES_128_GCM_SHA256",
            "curveSM2",
            "sm2sig_sm3",
            "NoCipherSuitesInCommon",
        ),
        (
            "TLS_AES_128_GCM_SHA256",
            plain_groups,
            plain_sigalgs,
            "NoKxGroupsInCommon",
        ),
        (
            "TLS_SM4_GCM_SM3",
            "curveSM2",
            plain_sigalgs,
            "NoSignatureSchemesInCommon",
        ),
        (
            "TLS_SM4_GCM_SM3",
            plain_groups,
            "sm2sig_sm3",
            "NoKxGroupsInCommon",
        ),
    ] {
        let mut t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&c.alice), &c.pki.ca_pem());
        t.ciphersuites = suites.into();
        t.groups = groups.into();
        t.sigalgs = sigalgs.into();
        t.strict = false;
        let what = format!("offer {suites} / {groups} / {sigalgs}");
        let (gm, ts) = refused_by_gmtls_server(&c, &t);
        if !gm.contains(gm_error) {
            wrong.push(format!(
                "gmtls server, {what}: expected {gm_error}, got: {gm}"
            ));
        }
        if !(ts.contains("alert handshake failure") || ts.contains("alert insufficient security")) {
            wrong.push(format!(
                "Tongsuo client, {what}: expected alert handshake_failure or insufficient_security, got: {ts}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The other direction: a Tongsuo server outside the consortium is refused by the gmtls client
/// with unknown_ca, and a revoked gmtls client is refused by Tongsuo's own CRL check.
#[test]
fn tongsuo_server_outside_the_consortium() {
    let c = case();
    let outsider = TestPki::new("Outsider");
    let evil = outsider.leaf(Role::NodeSign, "evil-node");
    let t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&evil), &c.pki.ca_pem());
    let (addr, h) = tongsuo_server(t.build(true));
    let gm = gmtls_client(gm_client_config(&c.pki, &c.alice, gmtls::provider()), addr)
        .expect_err("gmtls client accepted an outsider server");
    let ts = h.join().unwrap().expect_err("Tongsuo server completed");
    println!("gmtls client: {gm}\nTongsuo server: {ts}");
    assert_has(&gm.0, "UnknownIssuer", "gmtls client");
    assert_has(&ts.0, "alert unknown ca", "Tongsuo server");
}

#[test]
fn tongsuo_server_refuses_revoked_gmtls_client() {
    let c = case();
    c.pki.revoke(&c.alice);
    let mut t = TongsuoConfig::strict(Suite::Sm4GcmSm3, Some(&c.node), &c.pki.ca_crls_pem());
    t.crl_check = true;
    let (addr, h) = tongsuo_server(t.build(true));
    let gm = gmtls_client(gm_client_config(&c.pki, &c.alice, gmtls::provider()), addr)
        .expect_err("revoked gmtls client accepted by Tongsuo");
    let ts = h.join().unwrap().expect_err("Tongsuo server completed");
    println!("gmtls client: {gm}\nTongsuo server: {ts}");
    assert_has(&ts.0, "certificate revoked", "Tongsuo server");
    assert_has(&gm.0, "CertificateRevoked", "gmtls client");
}
