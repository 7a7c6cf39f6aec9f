//! Handshakes between gmtls endpoints over loopback: both RFC 8998 suites with mutual
//! authentication, the peer identity each side sees, and every refusal with its alert.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Pki, validity};
use gmtls::net::{ConnectError, connect};
use gmtls::rustls::{AlertDescription, ClientConfig, ServerConfig};
use gmtls::tokio_rustls::TlsAcceptor;
use gmtls::{
    API_CLIENT_ROLES, Credentials, LINK_ROLES, SERVER_ROLES, ServerCertificate, StaticAuthority,
    Suite, client_config, peer_identity, provider, provider_with_suites, server_config,
};
use pki::{RevocationReason, RevokedEntry, Role, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server saw: the negotiated suite and the client's identity, or its refusal.
type ServerSide = Result<(u16, gmtls::PeerIdentity), String>;

/// Serves one connection: handshake, then "hello" and an echo of one message.
async fn serve_once(
    config: Arc<ServerConfig>,
) -> (SocketAddr, tokio::task::JoinHandle<ServerSide>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        let suite = u16::from(conn.negotiated_cipher_suite().unwrap().suite());
        let id = peer_identity(conn).ok_or("no peer identity")?;
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok((suite, id))
    });
    (addr, task)
}

/// The client's half of `serve_once`'s exchange.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) {
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    s.write_all(b"ping over SM4").await.unwrap();
    let mut echo = [0u8; 13];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping over SM4");
}

fn node_server(pki: &Pki, clients: &[Role], revoked: &[RevokedEntry]) -> Arc<ServerConfig> {
    let creds = pki.creds(Role::NodeSign, "node-1");
    server_config(
        ServerCertificate::new(&creds),
        pki.authority(clients, revoked),
        provider(),
    )
    .unwrap()
}

fn client(pki: &Pki, creds: &Credentials, suites: &[Suite]) -> Arc<ClientConfig> {
    client_config(
        creds,
        pki.authority(SERVER_ROLES, &[]),
        provider_with_suites(suites),
    )
    .unwrap()
}

async fn refused_alert(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (AlertDescription, String) {
    let (addr, task) = serve_once(server).await;
    let err = connect(
        addr,
        client,
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .expect_err("the handshake must be refused");
    let server_err = task.await.unwrap().expect_err("the server must refuse");
    match err {
        ConnectError::Refused { alert, .. } => (alert, server_err),
        other => panic!("expected an alert, got {other}"),
    }
}

#[tokio::test]
async fn mutual_handshake_on_both_suites_with_identities() {
    let pki = Pki::new(1, "Consortium");
    for suite in Suite::ALL {
        let server = node_server(&pki, API_CLIENT_ROLES, &[]);
        let user = pki.creds(Role::User, "alice");
        let (addr, task) = serve_once(server).await;
        let mut s = connect(
            addr,
            client(&pki, &user, &[suite]),
            Duration::from_secs(5),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap();
        let (_, conn) = s.get_ref().get_ref();
        assert_eq!(
            u16::from(conn.negotiated_cipher_suite().unwrap().suite()),
            suite.codepoint()
        );
        assert_eq!(
            conn.protocol_version(),
            Some(gmtls::rustls::ProtocolVersion::TLSv1_3)
        );
        let server_id = peer_identity(conn).unwrap();
        assert_eq!(server_id.role, Role::NodeSign);
        assert!(
            server_id.subject.contains("node-1"),
            "{}",
            server_id.subject
        );
        exchange(&mut s).await;
        let (negotiated, client_id) = task.await.unwrap().unwrap();
        assert_eq!(negotiated, suite.codepoint());
        assert_eq!(client_id.role, Role::User);
        assert_eq!(client_id.organisation, "Agency A");
        assert_eq!(client_id.cert_id, user.leaf().fingerprint());
    }
}

#[tokio::test]
async fn a_certificate_from_outside_the_consortium_is_unknown_ca() {
    let pki = Pki::new(2, "Consortium");
    let other = Pki::new(3, "Elsewhere");
    let stranger = other.creds(Role::User, "mallory");
    let (alert, why) = refused_alert(
        node_server(&pki, API_CLIENT_ROLES, &[]),
        client(&pki, &stranger, &Suite::ALL),
    )
    .await;
    assert_eq!(alert, AlertDescription::UnknownCA, "{why}");
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_as_revoked() {
    let pki = Pki::new(4, "Consortium");
    let user = pki.creds(Role::User, "bob");
    let revoked = [RevokedEntry {
        serial: user.leaf().serial(),
        revoked_at: UnixTime(common::now() - 3600),
        reason: RevocationReason::KeyCompromise,
    }];
    let (alert, why) = refused_alert(
        node_server(&pki, API_CLIENT_ROLES, &revoked),
        client(&pki, &user, &Suite::ALL),
    )
    .await;
    assert_eq!(alert, AlertDescription::CertificateRevoked, "{why}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    let pki = Pki::new(5, "Consortium");
    let (key, cert) = pki.leaf_valid(Role::User, "carol", validity(30, -1));
    let user = Credentials::new(vec![cert, pki.agency.clone()], key).unwrap();
    let (alert, why) = refused_alert(
        node_server(&pki, API_CLIENT_ROLES, &[]),
        client(&pki, &user, &Suite::ALL),
    )
    .await;
    assert_eq!(alert, AlertDescription::CertificateExpired, "{why}");
}

#[tokio::test]
async fn a_user_certificate_on_a_node_link_is_unsupported() {
    let pki = Pki::new(6, "Consortium");
    let user = pki.creds(Role::User, "dave");
    let (alert, why) = refused_alert(
        node_server(&pki, LINK_ROLES, &[]),
        client(&pki, &user, &Suite::ALL),
    )
    .await;
    assert_eq!(alert, AlertDescription::UnsupportedCertificate, "{why}");
    // A node certificate is what a link takes.
    let node2 = pki.creds(Role::NodeSign, "node-2");
    let (addr, task) = serve_once(node_server(&pki, LINK_ROLES, &[])).await;
    let mut s = connect(
        addr,
        client(&pki, &node2, &Suite::ALL),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    exchange(&mut s).await;
    assert_eq!(task.await.unwrap().unwrap().1.role, Role::NodeSign);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new(7, "Consortium");
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&gmtls::rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(gmtls::ServerVerifier(
            pki.authority(SERVER_ROLES, &[]),
        )))
        .with_no_client_auth();
    let (alert, why) =
        refused_alert(node_server(&pki, API_CLIENT_ROLES, &[]), Arc::new(config)).await;
    assert_eq!(alert, AlertDescription::CertificateRequired, "{why}");
}

/// A signer that signs CertificateVerify with the default SM2 ID instead of RFC 8998's: what
/// the crates that claim SM TLS do. The signature is valid SM2, over the right key, and must
/// still be refused.
struct DefaultIdSigner(Arc<crypto_sm::SoftSigner>);

impl crypto::Signer for DefaultIdSigner {
    fn public_key(&self) -> crypto::PublicKey {
        self.0.public_key()
    }
    fn sign(
        &self,
        _id: &crypto::UserId,
        msg: &[u8],
    ) -> Result<crypto::Signature, crypto::CryptoError> {
        self.0.sign(&crypto::UserId::default(), msg)
    }
    fn sign_digest(&self, e: &crypto::Digest) -> Result<crypto::Signature, crypto::CryptoError> {
        self.0.sign_digest(e)
    }
}

#[tokio::test]
async fn a_certificate_verify_with_the_wrong_user_id_is_refused() {
    let pki = Pki::new(8, "Consortium");
    let (key, cert) = pki.leaf(Role::User, "eve");
    let tampered = Credentials::new(
        vec![cert, pki.agency.clone()],
        Arc::new(DefaultIdSigner(key)),
    )
    .unwrap();
    let (alert, why) = refused_alert(
        node_server(&pki, API_CLIENT_ROLES, &[]),
        client(&pki, &tampered, &Suite::ALL),
    )
    .await;
    assert_eq!(alert, AlertDescription::DecryptError, "{why}");
}

#[tokio::test]
async fn the_client_refuses_a_server_certificate_it_cannot_verify() {
    let pki = Pki::new(9, "Consortium");
    let other = Pki::new(10, "Elsewhere");
    let rogue = other.creds(Role::NodeSign, "rogue-node");
    let server = server_config(
        ServerCertificate::new(&rogue),
        other.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap();
    let (addr, _task) = serve_once(server).await;
    let user = pki.creds(Role::User, "frank");
    let err = connect(
        addr,
        client(&pki, &user, &Suite::ALL),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::PeerNotVerified { .. }), "{err}");
    // A node presenting a user certificate is refused too (a server must be node-sign).
    let impostor = pki.creds(Role::User, "not-a-node");
    let server = server_config(
        ServerCertificate::new(&impostor),
        pki.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap();
    let (addr, _task) = serve_once(server).await;
    let err = connect(
        addr,
        client(&pki, &user, &Suite::ALL),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::PeerNotVerified { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_node_is_reported_as_such() {
    let pki = Pki::new(11, "Consortium");
    let user = pki.creds(Role::User, "gina");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let err = connect(
        addr,
        client(&pki, &user, &Suite::ALL),
        Duration::from_secs(5),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn node_links_accept_node_sign_peers_only_on_both_ends() {
    let pki = Pki::new(12, "Consortium");
    let a = pki.creds(Role::NodeSign, "node-a");
    let b = pki.creds(Role::NodeSign, "node-b");
    let peers = || -> Arc<dyn gmtls::Authority> {
        pki.authority(&[Role::NodeSign, Role::User, Role::Admin], &[])
    };
    // A link between two nodes: both sides see a node-sign peer.
    let server = gmtls::link_server_config(ServerCertificate::new(&a), peers()).unwrap();
    let (addr, task) = serve_once(server.clone()).await;
    let client = gmtls::link_client_config(&b, peers()).unwrap();
    let mut s = connect(
        addr,
        client.clone(),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    exchange(&mut s).await;
    assert_eq!(
        peer_identity(s.get_ref().get_ref().1).unwrap().subject,
        a.leaf().subject()
    );
    assert_eq!(
        task.await.unwrap().unwrap().1.cert_id,
        b.leaf().fingerprint()
    );
    // The link policy holds even over an authority that accepts users: a user is refused.
    let user = pki.creds(Role::User, "user-on-link");
    let as_user = client_config(&user, peers(), provider()).unwrap();
    let (alert, why) = refused_alert(server, as_user).await;
    assert_eq!(alert, AlertDescription::UnsupportedCertificate, "{why}");
    // Neither end can be configured with another role's certificate.
    assert!(gmtls::link_client_config(&user, peers()).is_err());
    assert!(gmtls::link_server_config(ServerCertificate::new(&user), peers()).is_err());
}

/// Review finding 2 on issue 12: the client checked the node's certificate against the
/// consortium (chain, role node-sign, revocation) but not which node it is, so any member's
/// node (or a stolen node key) at another organisation's address received that client's
/// traffic. A client that names the node (`--node-name`, a profile's `node_name`) now accepts
/// only the node certificate with that common name.
#[tokio::test]
async fn a_client_refuses_a_consortium_node_other_than_the_one_it_named() {
    let pki = Pki::new(1, "Consortium");
    // The server presents node-1's certificate; the client asked for node-2.
    let server = node_server(&pki, API_CLIENT_ROLES, &[]);
    let user = pki.creds(Role::User, "alice");
    let (addr, task) = serve_once(server).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = gmtls::rustls::pki_types::ServerName::try_from("node-2").unwrap();
    let tls = gmtls::tokio_rustls::TlsConnector::from(client(&pki, &user, &Suite::ALL))
        .connect(name, tcp)
        .await;
    let accepted = tls.is_ok();
    drop(tls);
    let _ = task.await;
    assert!(!accepted, "the client accepted node-1 when it named node-2");
    // Naming the node it is: accepted.
    let (addr, task) = serve_once(node_server(&pki, API_CLIENT_ROLES, &[])).await;
    let mut s = gmtls::net::connect_named(
        addr,
        Some("node-1"),
        client(&pki, &user, &Suite::ALL),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    exchange(&mut s).await;
    task.await.unwrap().unwrap();
}

/// Review (second pass) on issue 12: a node name that parses as an IP address became an
/// IP-address server name, which the verifier does not compare with anything, so the client
/// that named its node accepted any consortium node; a name that is no DNS-form name failed
/// as an unreachable node (exit 3). Both are bad input, refused before any connection.
#[tokio::test]
async fn a_node_name_that_is_no_dns_name_is_bad_input_not_a_bypass() {
    use codes::{Class, Coded};
    let pki = Pki::new(1, "Consortium");
    let user = pki.creds(Role::User, "alice");
    for name in ["127.0.0.1", "::1", "node 1"] {
        let (addr, task) = serve_once(node_server(&pki, API_CLIENT_ROLES, &[])).await;
        let r = gmtls::net::connect_named(
            addr,
            Some(name),
            client(&pki, &user, &Suite::ALL),
            Duration::from_secs(5),
            Some(Duration::from_secs(5)),
        )
        .await;
        task.abort();
        match r {
            Ok(_) => panic!("naming the node {name:?}, the client accepted node-1"),
            Err(e) => assert_eq!(e.class(), Class::BadInput, "{name:?}: {e}"),
        }
    }
}

/// Review (second pass) on issue 12: a client named its node by the certificate's CN alone,
/// and nothing makes a CN unique in the consortium: any member's CA issues a node-sign
/// certificate with CN `node-1` for its own organisation, and a client that named another
/// organisation's `node-1` accepted it. The named identity is now the CN and the organisation
/// (`node_name` with `node_organisation`: `OrganisationPolicy`).
#[tokio::test]
async fn a_client_naming_a_node_refuses_the_same_cn_from_another_organisation() {
    use crypto::Signer;
    let pki = Pki::new(1, "Consortium");
    let b_key = pki.p.generate().unwrap();
    let b = pki::issue(
        &pki.root,
        &pki.root_key,
        &pki::IssueRequest {
            role: Role::AgencyCa,
            common_name: "Agency B CA",
            organisation: "Agency B",
            public_key: &b_key.public_key(),
            serial: pki.serial(),
            validity: validity(1, 365),
        },
    )
    .unwrap();
    let node_key = pki.p.generate().unwrap();
    let impostor = pki::issue(
        &b,
        &b_key,
        &pki::IssueRequest {
            role: Role::NodeSign,
            common_name: "node-1",
            organisation: "Agency B",
            public_key: &node_key.public_key(),
            serial: pki.serial(),
            validity: validity(1, 365),
        },
    )
    .unwrap();
    let creds = Credentials::new(vec![impostor, b.clone()], Arc::new(node_key)).unwrap();
    let server = server_config(
        ServerCertificate::new(&creds),
        pki.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap();
    let (addr, task) = serve_once(server).await;
    let user = pki.creds(Role::User, "alice");
    // The client trusts the consortium's root with every CA's current CRL.
    let n = common::now();
    let mut crls = pki.crls(&[]);
    crls.push(
        pki::issue_crl(&b, &b_key, 1, UnixTime(n - 3600), UnixTime(n + 86_400), &[]).unwrap(),
    );
    let servers = StaticAuthority::new(vec![pki.root.clone()], crls, SERVER_ROLES).unwrap();
    let config = client_config(
        &user,
        gmtls::OrganisationPolicy::new(Arc::new(servers), "Agency A"),
        provider(),
    )
    .unwrap();
    // The client means Agency A's node-1 (its profile's node_name = "node-1",
    // node_organisation = "Agency A").
    let r = gmtls::net::connect_named(
        addr,
        Some("node-1"),
        config,
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await;
    task.abort();
    assert!(
        r.is_err(),
        "the client named Agency A's node-1 and accepted Agency B's node-1"
    );
}

/// The node's answer to a raw ClientHello (hex), fed to a server connection in memory: the
/// records it writes back.
fn answer_to(hello_hex: &str) -> (String, Vec<u8>) {
    let pki = Pki::new(8, "Consortium");
    let mut server =
        gmtls::rustls::ServerConnection::new(node_server(&pki, API_CLIENT_ROLES, &[])).unwrap();
    let hello: Vec<u8> = (0..hello_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hello_hex[i..i + 2], 16).unwrap())
        .collect();
    server.read_tls(&mut &hello[..]).unwrap();
    let err = server
        .process_new_packets()
        .expect_err("the hello must be refused");
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out).unwrap();
    }
    (err.to_string(), out)
}

/// A TLS 1.3 ClientHello offering only TLS_AES_128_GCM_SHA256 with an x25519 key share and
/// the signature schemes ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, ed25519 (what Debian's
/// `openssl s_client` offers, reduced) is refused with handshake_failure in clear: no common
/// cipher suite (issue #12: a non-GM offer gets handshake_failure or insufficient_security).
/// Found by the conformance check node-tls-rfc8998-suites: the node answered access_denied,
/// as the certificate resolver declined a hello without sm2sig_sm3 before rustls looked at
/// the suites.
#[test]
fn a_non_gm_offer_is_refused_with_handshake_failure() {
    const NON_GM: &str = "160301009401000090030307070707070707070707070707070707070707070707070707070707070707072008080808080808080808080808080808080808080808080808080808080808080002130101000045002b0003020304000a00040002001d000d00080006040308040807003300260024001d00200909090909090909090909090909090909090909090909090909090909090909";
    // The same with sm2sig_sm3 among its signature schemes: still no common suite.
    const NON_GM_SM2SIG: &str = "16030100920100008e030307070707070707070707070707070707070707070707070707070707070707072008080808080808080808080808080808080808080808080808080808080808080002130101000043002b0003020304000a00040002001d000d0006000404030708003300260024001d00200909090909090909090909090909090909090909090909090909090909090909";
    for hello in [NON_GM, NON_GM_SM2SIG] {
        let (why, wire) = answer_to(hello);
        // One alert record in clear: fatal (2), handshake_failure (40).
        assert_eq!(wire, [21, 3, 3, 0, 2, 2, 40], "{why}");
    }
}
