//! The TLS checks against a fake node that answers each attempt with the bytes a wire observer
//! would capture: an honest RFC 8998 node passes every case, and each fault (a refusal
//! missing or with the wrong alert, a non-GM or TLS 1.2 negotiation, a marker in clear, a
//! record in clear, a wrong certificate) fails its case and makes its clause NOT MET.

use super::tls::{
    self, CURVE_SM2, FirstAnswer, ServerHello, TLS_SM4_CCM_SM3, TLS_SM4_GCM_SM3, TLS13,
};
use super::*;
use crypto::{RandomSource, Signer};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::{IssueRequest, Role, Serial, UnixTime, Validity};
use std::sync::Arc;
use types::ChainId;

const NOW: u64 = 1_800_000_000;

fn soft(seed: u8) -> SoftSigner {
    SoftwareProvider::new(Arc::new(SeededRandom::new(u64::from(seed))))
        .signer(PrivateKey::from_bytes(&[seed; 32]).unwrap())
}

/// What the fake node does wrong, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Fault {
    #[default]
    None,
    /// Accepts (or ignores) a record whose tag was altered.
    AcceptsTamperedRecord,
    /// Completes the handshake of a client without a certificate.
    AcceptsNoCertificate,
    /// Refuses an outsider with bad_certificate instead of unknown_ca.
    OutsiderBadCertificate,
    /// Negotiates TLS_AES_128_GCM_SHA256 with a client that offers only it.
    NegotiatesNonGm,
    /// Answers a TLS 1.2 ClientHello with a TLS 1.2 ServerHello.
    AcceptsTls12,
    /// Refuses TLS 1.2 with handshake_failure instead of protocol_version.
    Tls12WrongAlert,
    /// Picks TLS_SM4_GCM_SM3 even when only CCM is offered.
    IgnoresCcmOnly,
    /// Selects x25519 in the key share.
    WrongGroup,
    /// The request's bytes cross the wire in clear.
    MarkerInClear,
    /// Sends a handshake record in clear after its ServerHello.
    HandshakeInClear,
    /// Signs CertificateVerify with ecdsa_secp256r1_sha256.
    EcdsaCertificateVerify,
    /// Offers rsa_pss_rsae_sha256 in its CertificateRequest.
    RequestsRsaPss,
    /// Presents a user certificate.
    UserCertificate,
    /// Presents a node-sign certificate of a CA the genesis file does not name.
    ForeignCertificate,
}

struct FakeTls {
    fault: Fault,
    rng: SeededRandom,
    genesis: Vec<u8>,
    node_cert: Vec<u8>,
    user_cert: Vec<u8>,
    foreign_cert: Vec<u8>,
    user_key: SoftSigner,
}

impl FakeTls {
    fn new(fault: Fault) -> Self {
        let v = Validity {
            not_before: UnixTime(NOW - 10 * 86_400),
            not_after: UnixTime(NOW + 365 * 86_400),
        };
        let root = |seed: u8, org: &str| {
            let key = soft(seed);
            let ca = pki::issue_root(
                "Root CA",
                org,
                Serial::from_bytes(&[seed]).unwrap(),
                v,
                &key,
            )
            .unwrap();
            (key, ca)
        };
        let (ca_key, ca) = root(0x41, "Fake Bureau");
        let (other_key, other) = root(0x42, "Elsewhere");
        let crl = pki::issue_crl(
            &ca,
            &ca_key,
            1,
            UnixTime(NOW - 60),
            UnixTime(NOW + 86_400),
            &[],
        )
        .unwrap();
        let issue = |ca: &pki::Certificate, key: &SoftSigner, role, cn: &str, org: &str, s: u8| {
            pki::issue(
                ca,
                key,
                &IssueRequest {
                    role,
                    common_name: cn,
                    organisation: org,
                    public_key: &soft(s).public_key(),
                    serial: Serial::from_bytes(&[s]).unwrap(),
                    validity: v,
                },
            )
            .unwrap()
        };
        let node = issue(&ca, &ca_key, Role::NodeSign, "node0", "Fake Bureau", 0x43);
        let user = issue(&ca, &ca_key, Role::User, "client0", "Fake Bureau", 0x44);
        let foreign = issue(
            &other,
            &other_key,
            Role::NodeSign,
            "node0",
            "Elsewhere",
            0x45,
        );
        let g = execution::Genesis {
            format: execution::GENESIS_FORMAT,
            chain_id: ChainId::new("fake-chain").unwrap(),
            test_chain: true,
            timestamp_ms: NOW * 1000,
            params: execution::ChainParams::default(),
            organisations: vec![execution::GenesisOrg {
                name: "Fake Bureau".into(),
                ca_cert: ca,
                crl,
                sponsors: Vec::new(),
            }],
            validators: vec![execution::GenesisValidator {
                name: "node0".into(),
                cert: node.clone(),
            }],
            governance: Vec::new(),
            supervision: None,
        };
        FakeTls {
            fault,
            rng: SeededRandom::new(9),
            genesis: g.to_json().into_bytes(),
            node_cert: node.der().to_vec(),
            user_cert: user.der().to_vec(),
            foreign_cert: foreign.der().to_vec(),
            user_key: soft(0x44),
        }
    }
}

fn record(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![msg_type];
    h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    h.extend_from_slice(body);
    record(22, &h)
}

/// A ServerHello record: TLS 1.3 (with supported_versions) when `version` is 0x0304.
fn server_hello(version: u16, suite: u16, group: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[0x11; 32]);
    b.push(32);
    b.extend_from_slice(&[0x22; 32]);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    let mut ext = Vec::new();
    if version == TLS13 {
        ext.extend_from_slice(&[0, 43, 0, 2]);
        ext.extend_from_slice(&TLS13.to_be_bytes());
    }
    ext.extend_from_slice(&[0, 51, 0, 69]);
    ext.extend_from_slice(&group.to_be_bytes());
    ext.extend_from_slice(&[0, 65, 4]);
    ext.extend_from_slice(&[0x33; 64]);
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    handshake(2, &b)
}

fn alert(description: u8) -> Vec<u8> {
    record(21, &[2, description])
}

fn encrypted(n: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(record(
            23,
            &(0..40u8)
                .map(|j| j.wrapping_mul(7) ^ seed ^ i as u8)
                .collect::<Vec<_>>(),
        ));
    }
    out
}

impl FakeTls {
    /// An exchange that completed: the hellos, the compatibility change_cipher_spec, then
    /// encrypted records.
    fn completed(&self, offered: &str, suite: u16, marker: Option<[u8; 32]>) -> TlsObservation {
        let group = if self.fault == Fault::WrongGroup {
            0x001d
        } else {
            CURVE_SM2
        };
        let mut client = handshake(1, &[0x55; 120]);
        client.extend(record(20, &[1]));
        client.extend(encrypted(4, 1));
        if let (Some(m), Fault::MarkerInClear) = (marker, self.fault) {
            client.extend(record(23, &m));
        }
        let mut server = server_hello(TLS13, suite, group);
        server.extend(record(20, &[1]));
        if self.fault == Fault::HandshakeInClear {
            server.extend(handshake(11, &[0; 10]));
        }
        server.extend(encrypted(5, 2));
        let cert = match self.fault {
            Fault::UserCertificate => self.user_cert.clone(),
            Fault::ForeignCertificate => self.foreign_cert.clone(),
            _ => self.node_cert.clone(),
        };
        TlsObservation {
            offered: offered.into(),
            client_bytes: client,
            server_bytes: server,
            completed: true,
            server_chain: vec![cert],
            server_signature_scheme: Some(if self.fault == Fault::EcdsaCertificateVerify {
                0x0403
            } else {
                0x0708
            }),
            certificate_request_schemes: Some(if self.fault == Fault::RequestsRsaPss {
                vec![0x0708, 0x0804]
            } else {
                vec![0x0708]
            }),
            request: marker.map(|_| Ok("NotFound".into())),
            ..TlsObservation::default()
        }
    }

    /// A refusal after the client's Finished: the alert is inside the encrypted handshake.
    fn refused_late(&self, offered: &str, a: u8) -> TlsObservation {
        TlsObservation {
            offered: offered.into(),
            client_bytes: handshake(1, &[0x55; 120]),
            server_bytes: [
                server_hello(TLS13, TLS_SM4_GCM_SM3, CURVE_SM2),
                encrypted(3, 3),
            ]
            .concat(),
            alert: Some(a),
            server_chain: vec![self.node_cert.clone()],
            ..TlsObservation::default()
        }
    }

    /// A refusal of the ClientHello, in clear.
    fn refused_clear(&self, offered: &str, a: u8) -> TlsObservation {
        TlsObservation {
            offered: offered.into(),
            client_bytes: handshake(1, &[0x66; 80]),
            server_bytes: alert(a),
            alert: Some(a),
            ..TlsObservation::default()
        }
    }
}

impl NodeProbe for FakeTls {
    fn identity(&self) -> NodeIdentity {
        NodeIdentity::default()
    }
    fn genesis_json(&self) -> &[u8] {
        &self.genesis
    }
    fn certificate(&self) -> &[u8] {
        &self.user_cert
    }
    fn signer(&self) -> &dyn Signer {
        &self.user_key
    }
    fn random(&self) -> &dyn RandomSource {
        &self.rng
    }
    fn now_unix(&self) -> u64 {
        NOW
    }
    fn status(&self) -> Result<NodeStatus, ProbeError> {
        Err(ProbeError::Unsupported {
            what: "GetStatus".into(),
        })
    }
    fn submit(&self, _: &[u8]) -> Result<Submission, ProbeError> {
        Err(ProbeError::Unsupported {
            what: "SubmitTransaction".into(),
        })
    }
    fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        Ok(None)
    }
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        Err(ProbeError::Unsupported {
            what: format!("GetBlock {height}"),
        })
    }
    fn receipt_json(&self, _: &[u8; 32]) -> Result<String, ProbeError> {
        Err(ProbeError::Unsupported {
            what: "GetReceiptProof".into(),
        })
    }
    fn tls_attempt(&self, attempt: TlsAttempt) -> Result<TlsObservation, ProbeError> {
        let f = self.fault;
        Ok(match attempt {
            TlsAttempt::Member { suites, marker } => {
                let suite = match suites {
                    GmSuites::CcmOnly if f != Fault::IgnoresCcmOnly => TLS_SM4_CCM_SM3,
                    _ => TLS_SM4_GCM_SM3,
                };
                self.completed("the member's certificate", suite, marker)
            }
            TlsAttempt::NoCertificate if f == Fault::AcceptsNoCertificate => {
                self.completed("no certificate", TLS_SM4_GCM_SM3, None)
            }
            TlsAttempt::NoCertificate => {
                self.refused_late("no certificate", tls::CERTIFICATE_REQUIRED)
            }
            TlsAttempt::Outsider if f == Fault::OutsiderBadCertificate => {
                self.refused_late("an outsider", 42)
            }
            TlsAttempt::Outsider => self.refused_late("an outsider", tls::UNKNOWN_CA),
            TlsAttempt::Tls12Hello if f == Fault::AcceptsTls12 => TlsObservation {
                offered: "TLS 1.2".into(),
                client_bytes: handshake(1, &[0x66; 80]),
                server_bytes: server_hello(0x0303, 0xC02F, 0x001d),
                error: Some("the raw client stops after the ServerHello".into()),
                ..TlsObservation::default()
            },
            TlsAttempt::Tls12Hello if f == Fault::Tls12WrongAlert => {
                self.refused_clear("TLS 1.2", tls::HANDSHAKE_FAILURE)
            }
            TlsAttempt::Tls12Hello => self.refused_clear("TLS 1.2", tls::PROTOCOL_VERSION),
            TlsAttempt::NonGmHello if f == Fault::NegotiatesNonGm => TlsObservation {
                offered: "non-GM".into(),
                client_bytes: handshake(1, &[0x66; 80]),
                server_bytes: server_hello(TLS13, 0x1301, 0x001d),
                error: Some("the raw client stops after the ServerHello".into()),
                ..TlsObservation::default()
            },
            TlsAttempt::NonGmHello => self.refused_clear("non-GM", tls::HANDSHAKE_FAILURE),
            TlsAttempt::Tampered => {
                let mut o =
                    self.completed("the member, then an altered record", TLS_SM4_GCM_SM3, None);
                o.tampered = Some("bit 0 of the last byte of the client's next record".into());
                if f == Fault::AcceptsTamperedRecord {
                    o.error = Some("the node answered the altered record".into());
                } else {
                    o.alert = Some(tls::BAD_RECORD_MAC);
                }
                o
            }
        })
    }
}

fn check(id: &str) -> &'static NodeCheck {
    node_checks().iter().find(|c| c.id == id).unwrap()
}

const TLS_CHECKS: [&str; 5] = [
    "node-tls-mutual-auth",
    "node-tls-rfc8998-suites",
    "node-tls-server-certificate",
    "node-tls-confidentiality",
    "node-tls-integrity",
];

#[test]
fn an_rfc8998_node_passes_every_tls_check_and_its_clauses_are_met() {
    let p = FakeTls::new(Fault::None);
    for id in TLS_CHECKS {
        let o = check(id).execute(&p);
        assert!(o.pass && o.not_run.is_none(), "{id}: {:#?}", o.evidence);
        assert!(o.evidence.iter().all(|e| !e.detail.is_empty()), "{o:#?}");
    }
    let stds = crate::load_standards().unwrap();
    let r = crate::run(&stds, crate::Provenance::default(), None, Some(&p));
    for (std, id) in [
        ("GB/T 39786", "8.2 a"),
        ("GB/T 39786", "8.2 b"),
        ("GB/T 39786", "8.2 c"),
        ("GB/T 39786", "8.4 f"),
        ("RFC 8998", "2"),
        ("RFC 8998", "3.1"),
    ] {
        let c = r
            .standards
            .iter()
            .find(|s| s.id.starts_with(std))
            .unwrap()
            .clauses
            .iter()
            .find(|c| c.id == id)
            .unwrap();
        assert_eq!(c.verdict, crate::Verdict::Met, "{std} {id}: {c:#?}");
    }
}

/// Runs check `id` against a node with `fault`: the check fails, the failing case is the
/// one named by `case`, and its why line contains `why`.
fn fails(fault: Fault, id: &str, case: &str, why: &str) {
    let p = FakeTls::new(fault);
    let o = check(id).execute(&p);
    assert!(!o.pass, "{fault:?}: {id} passed: {:#?}", o.evidence);
    let failed: Vec<_> = o.evidence.iter().filter(|e| !e.pass).collect();
    assert!(
        failed
            .iter()
            .any(|e| e.case.contains(case) && e.detail.contains(why)),
        "{fault:?}: expected {case:?} failing with {why:?}: {failed:#?}"
    );
}

#[test]
fn each_tls_fault_fails_its_case() {
    fails(
        Fault::AcceptsTamperedRecord,
        "node-tls-integrity",
        "refuses the altered record",
        "ACCEPTED",
    );
    fails(
        Fault::AcceptsNoCertificate,
        "node-tls-mutual-auth",
        "without a certificate",
        "ACCEPTED",
    );
    fails(
        Fault::OutsiderBadCertificate,
        "node-tls-mutual-auth",
        "outside the consortium",
        "refused with bad_certificate (42), expected unknown_ca (48)",
    );
    fails(
        Fault::NegotiatesNonGm,
        "node-tls-rfc8998-suites",
        "only TLS_AES_128_GCM_SHA256",
        "ServerHello (version 0x0304, TLS_AES_128_GCM_SHA256 (0x1301))",
    );
    fails(
        Fault::AcceptsTls12,
        "node-tls-rfc8998-suites",
        "TLS 1.2 ClientHello",
        "ServerHello (version 0x0303",
    );
    fails(
        Fault::Tls12WrongAlert,
        "node-tls-rfc8998-suites",
        "TLS 1.2 ClientHello",
        "expected protocol_version (70)",
    );
    fails(
        Fault::IgnoresCcmOnly,
        "node-tls-rfc8998-suites",
        "TLS_SM4_CCM_SM3 alone",
        "cipher suite 0x00C6",
    );
    fails(
        Fault::WrongGroup,
        "node-tls-rfc8998-suites",
        "both RFC 8998 suites",
        "key share group 0x001D",
    );
    fails(
        Fault::EcdsaCertificateVerify,
        "node-tls-rfc8998-suites",
        "CertificateVerify is sm2sig_sm3",
        "CertificateVerify scheme 0x0403",
    );
    fails(
        Fault::RequestsRsaPss,
        "node-tls-rfc8998-suites",
        "CertificateVerify is sm2sig_sm3",
        "the CertificateRequest offers 0x0708, 0x0804",
    );
    fails(
        Fault::MarkerInClear,
        "node-tls-confidentiality",
        "in clear in neither direction",
        "IN CLEAR in the client's bytes",
    );
    fails(
        Fault::HandshakeInClear,
        "node-tls-confidentiality",
        "server to client",
        "record 2 after the hello has content type 22",
    );
    fails(
        Fault::UserCertificate,
        "node-tls-server-certificate",
        "role is node-sign",
        "role user",
    );
    fails(
        Fault::ForeignCertificate,
        "node-tls-server-certificate",
        "validates as node-sign",
        "does not validate as node-sign under the genesis file's CAs",
    );
}

#[test]
fn a_failed_tls_case_makes_its_clause_not_met_and_fails_the_run() {
    let stds = crate::load_standards().unwrap();
    for (fault, std, id) in [
        (Fault::AcceptsNoCertificate, "GB/T 39786-2021", "8.2 a"),
        (Fault::MarkerInClear, "GB/T 39786-2021", "8.2 c"),
        (Fault::NegotiatesNonGm, "RFC 8998", "2"),
        (Fault::AcceptsTls12, "RFC 8998", "3.1"),
    ] {
        let p = FakeTls::new(fault);
        let r = crate::run(&stds, crate::Provenance::default(), None, Some(&p));
        let name = format!("{std} {id}");
        assert!(
            r.summary.mandatory_failed.contains(&name),
            "{fault:?}: {name} not failed: {:?}",
            r.summary.mandatory_failed
        );
    }
}

#[test]
fn a_probe_without_tls_fails_the_tls_checks_saying_so() {
    struct NoTls(FakeTls);
    impl NodeProbe for NoTls {
        fn identity(&self) -> NodeIdentity {
            NodeIdentity::default()
        }
        fn genesis_json(&self) -> &[u8] {
            self.0.genesis_json()
        }
        fn certificate(&self) -> &[u8] {
            self.0.certificate()
        }
        fn signer(&self) -> &dyn Signer {
            self.0.signer()
        }
        fn random(&self) -> &dyn RandomSource {
            self.0.random()
        }
        fn now_unix(&self) -> u64 {
            NOW
        }
        fn status(&self) -> Result<NodeStatus, ProbeError> {
            self.0.status()
        }
        fn submit(&self, b: &[u8]) -> Result<Submission, ProbeError> {
            self.0.submit(b)
        }
        fn transaction(&self, id: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
            self.0.transaction(id)
        }
        fn block(&self, h: u64) -> Result<BlockBytes, ProbeError> {
            self.0.block(h)
        }
        fn receipt_json(&self, id: &[u8; 32]) -> Result<String, ProbeError> {
            self.0.receipt_json(id)
        }
    }
    let p = NoTls(FakeTls::new(Fault::None));
    for id in TLS_CHECKS {
        let o = check(id).execute(&p);
        assert!(!o.pass, "{id}");
        assert!(
            o.evidence
                .iter()
                .any(|e| e.detail == "the probe cannot make TLS connection attempts"),
            "{id}: {:#?}",
            o.evidence
        );
    }
}

#[test]
fn the_wire_parser_reads_server_hellos_and_clear_alerts() {
    let h = server_hello(TLS13, TLS_SM4_CCM_SM3, CURVE_SM2);
    assert_eq!(
        tls::first_answer(&h).unwrap(),
        FirstAnswer::Hello(ServerHello {
            version: TLS13,
            suite: TLS_SM4_CCM_SM3,
            group: Some(CURVE_SM2),
            retry: false,
        })
    );
    // A TLS 1.2 ServerHello: the legacy version is the version.
    match tls::first_answer(&server_hello(0x0303, 0xC02F, 0x0017)).unwrap() {
        FirstAnswer::Hello(h) => assert_eq!((h.version, h.suite), (0x0303, 0xC02F)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tls::first_answer(&alert(70)).unwrap(),
        FirstAnswer::Alert(70)
    );
    assert_eq!(tls::first_answer(&[]).unwrap(), FirstAnswer::Nothing);
    // A ServerHello cut short is an error, not a parse of garbage.
    let cut = &h[..h.len() - 10];
    assert!(tls::first_answer(cut).is_err());
    let mut short = h.clone();
    short[3..5].copy_from_slice(&[0, 20]);
    short.truncate(25);
    assert!(tls::first_answer(&short).unwrap_err().contains("cut short"),);
    // Records must cover every byte.
    assert!(tls::records(&[23, 3, 3, 0, 5, 1, 2]).is_err());
    assert_eq!(tls::records(&encrypted(3, 0)).unwrap().len(), 3);
    assert_eq!(tls::alert_name(116), "certificate_required (116)");
}
