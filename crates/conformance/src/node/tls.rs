//! The node's API listener as a TLS peer (GB/T 39786 §8.2, RFC 8998 §2, §3): connection
//! attempts the binary makes through a recording relay ([`NodeProbe::tls_attempt`]), judged
//! here from what crossed the wire and what the client saw. The ServerHello (version, suite,
//! key share group) and alerts sent in clear are read from the server's bytes; an alert sent
//! inside the encrypted handshake (a refused client certificate in TLS 1.3) only the client
//! can see, and the binary reports it.
//!
//! What the wire cannot show is not claimed here: the CertificateRequest, the certificates
//! and CertificateVerify travel encrypted; the server's certificate is checked as the client
//! received it.

use super::error::NodeCheckError;
use super::submit::{Case, ev, random};
use super::{GmSuites, NodeProbe, TlsAttempt, TlsObservation, genesis};
use crate::checks::Evidence;
use pki::{Certificate, Role, UnixTime};

const SRC_SUITES: &str =
    "live node through a recording relay; expected: RFC 8998 §2, §3.1, §3.3.1.2";
const SRC_SIGS: &str =
    "live node, the auditor's client (gmtls verifier); expected: RFC 8998 §3.2.1, §3.3.2, §3.3.4";
const SRC_AUTH: &str =
    "live node through a recording relay; expected: GB/T 39786 §8.2 a, issue #12 (alerts)";
const SRC_CERT: &str =
    "live node; expected: RFC 8998 §3.3.3, GM/T 0015, chained to the genesis file's CAs";
const SRC_INTEGRITY: &str = "live node through a relay that alters one bit of a record; expected: GB/T 39786 §8.2 b, RFC 8446 §5.2 (bad_record_mac)";
const SRC_CONF: &str =
    "live node through a recording relay; expected: GB/T 39786 §8.2 b, c, RFC 8446 §5";

/// `TLS_SM4_GCM_SM3` (RFC 8998 §2).
pub(crate) const TLS_SM4_GCM_SM3: u16 = 0x00C6;
/// `TLS_SM4_CCM_SM3` (RFC 8998 §2).
pub(crate) const TLS_SM4_CCM_SM3: u16 = 0x00C7;
/// The `curveSM2` named group (RFC 8998 §2).
pub(crate) const CURVE_SM2: u16 = 0x0029;
/// The `sm2sig_sm3` signature scheme (RFC 8998 §2).
pub(crate) const SM2SIG_SM3: u16 = 0x0708;
/// TLS 1.3 as the supported_versions extension names it.
pub(crate) const TLS13: u16 = 0x0304;
/// SM2-with-SM3 (GM/T 0006), the certificate signature algorithm of RFC 8998 §3.3.3.
const OID_SM2_WITH_SM3: &str = "1.2.156.10197.1.501";

// TLS record content types (RFC 8446 §5.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

// Alert descriptions (RFC 8446 §6).
pub(crate) const BAD_RECORD_MAC: u8 = 20;
pub(crate) const HANDSHAKE_FAILURE: u8 = 40;
pub(crate) const UNKNOWN_CA: u8 = 48;
pub(crate) const PROTOCOL_VERSION: u8 = 70;
pub(crate) const INSUFFICIENT_SECURITY: u8 = 71;
pub(crate) const CERTIFICATE_REQUIRED: u8 = 116;

/// An alert's name as RFC 8446 §6 spells it, with its code.
pub(crate) fn alert_name(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown alert",
    };
    format!("{name} ({code})")
}

/// A cipher suite's name, with its codepoint.
pub(crate) fn suite_name(suite: u16) -> String {
    let name = match suite {
        TLS_SM4_GCM_SM3 => "TLS_SM4_GCM_SM3",
        TLS_SM4_CCM_SM3 => "TLS_SM4_CCM_SM3",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        _ => "a suite",
    };
    format!("{name} (0x{suite:04X})")
}

// ---------------------------------------------------------------------------------------
// The wire: records, the ServerHello, alerts in clear.

/// One TLS record as it crossed the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub content_type: u8,
    pub body: &'a [u8],
}

/// Splits `bytes` into TLS records (RFC 8446 §5.1). Every byte must belong to a whole record.
pub(crate) fn records(bytes: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let [content_type, _, _, hi, lo, ..] = *rest else {
            return Err(format!(
                "{} trailing bytes after record {}: not a record header",
                rest.len(),
                out.len()
            ));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(body) = rest.get(5..5 + len) else {
            return Err(format!(
                "record {} announces {len} bytes, {} follow",
                out.len(),
                rest.len() - 5
            ));
        };
        out.push(Record { content_type, body });
        rest = &rest[5 + len..];
    }
    Ok(out)
}

/// The ServerHello as a wire observer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerHello {
    /// The selected version: supported_versions if present (TLS 1.3), else legacy_version.
    pub version: u16,
    pub suite: u16,
    /// The key_share extension's group, if present.
    pub group: Option<u16>,
    /// A HelloRetryRequest (RFC 8446 §4.1.3's special random).
    pub retry: bool,
}

/// SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// A cursor over handshake bytes that fails with what was missing.
struct Reader<'a>(&'a [u8], &'static str);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("{}: {what} cut short", self.1));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Parses a ServerHello handshake message (RFC 8446 §4.1.3) from the body of the server's
/// first handshake record.
pub(crate) fn parse_server_hello(body: &[u8]) -> Result<ServerHello, String> {
    let mut r = Reader(body, "ServerHello");
    let msg_type = r.u8("message type")?;
    if msg_type != 2 {
        return Err(format!(
            "the first handshake message is type {msg_type}, not ServerHello (2)"
        ));
    }
    let len = r.take(3, "length")?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    let mut r = Reader(r.take(len, "message")?, "ServerHello");
    let legacy_version = r.u16("legacy_version")?;
    let retry = r.take(32, "random")? == HRR_RANDOM;
    let sid = usize::from(r.u8("session id length")?);
    r.take(sid, "session id")?;
    let suite = r.u16("cipher suite")?;
    r.u8("compression method")?;
    let mut version = legacy_version;
    let mut group = None;
    if !r.0.is_empty() {
        let ext_len = usize::from(r.u16("extensions length")?);
        let mut e = Reader(r.take(ext_len, "extensions")?, "ServerHello extension");
        while !e.0.is_empty() {
            let ty = e.u16("type")?;
            let n = usize::from(e.u16("length")?);
            let mut d = Reader(e.take(n, "data")?, "ServerHello extension");
            match ty {
                43 => version = d.u16("supported_versions")?,
                51 => group = Some(d.u16("key_share group")?),
                _ => {}
            }
        }
    }
    Ok(ServerHello {
        version,
        suite,
        group,
        retry,
    })
}

/// What the server's first record says: a ServerHello, an alert in clear, or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirstAnswer {
    Hello(ServerHello),
    /// An alert record in clear (level, description).
    Alert(u8),
    /// The server sent nothing.
    Nothing,
}

pub(crate) fn first_answer(server_bytes: &[u8]) -> Result<FirstAnswer, String> {
    // Only the first record is read: a refusal may be cut (the server closes at once).
    let recs = match records(server_bytes) {
        Ok(r) => r,
        Err(_) if server_bytes.len() >= 5 => {
            let len = usize::from(u16::from_be_bytes([server_bytes[3], server_bytes[4]]));
            let body = server_bytes
                .get(5..5 + len)
                .ok_or_else(|| "the server's first record is cut short".to_string())?;
            vec![Record {
                content_type: server_bytes[0],
                body,
            }]
        }
        Err(e) => return Err(e),
    };
    match recs.first() {
        None => Ok(FirstAnswer::Nothing),
        Some(Record {
            content_type: HANDSHAKE,
            body,
        }) => parse_server_hello(body).map(FirstAnswer::Hello),
        Some(Record {
            content_type: ALERT,
            body,
        }) => match body {
            [_, d] => Ok(FirstAnswer::Alert(*d)),
            _ => Err(format!("an alert record of {} bytes", body.len())),
        },
        Some(r) => Err(format!(
            "the server's first record has content type {}",
            r.content_type
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Cases.

fn attempt(p: &dyn NodeProbe, a: TlsAttempt) -> Result<TlsObservation, NodeCheckError> {
    p.tls_attempt(a).map_err(NodeCheckError::from)
}

fn tls_err(why: impl Into<String>) -> NodeCheckError {
    NodeCheckError::TlsWire { why: why.into() }
}

/// The ServerHello of an attempt that must have one.
fn hello_of(o: &TlsObservation) -> Result<ServerHello, NodeCheckError> {
    match first_answer(&o.server_bytes).map_err(tls_err)? {
        FirstAnswer::Hello(h) => Ok(h),
        FirstAnswer::Alert(alert) => Err(NodeCheckError::TlsRefused { alert }),
        FirstAnswer::Nothing => Err(NodeCheckError::NoServerHello {
            why: o.error.clone().unwrap_or_else(|| "no bytes".into()),
        }),
    }
}

/// An attempt the node must accept: the handshake completed.
fn accepted(o: &TlsObservation) -> Result<(), NodeCheckError> {
    if o.completed {
        return Ok(());
    }
    Err(match (o.alert, &o.error) {
        (Some(alert), _) => NodeCheckError::TlsRefused { alert },
        (None, Some(why)) => NodeCheckError::TlsFailed { why: why.clone() },
        (None, None) => NodeCheckError::TlsFailed {
            why: "the handshake did not complete".into(),
        },
    })
}

/// An attempt the node must refuse with one of `expected` (alerts), before any application
/// data. `clear` also requires the refusal before a ServerHello, in clear on the wire.
fn refused(o: &TlsObservation, expected: &[u8], clear: bool) -> Case {
    let want = expected
        .iter()
        .map(|a| alert_name(*a))
        .collect::<Vec<_>>()
        .join(" or ");
    if o.completed {
        return Err(NodeCheckError::TlsAccepted { expected: want });
    }
    let wire = first_answer(&o.server_bytes).map_err(tls_err)?;
    let alert = if clear {
        match wire {
            FirstAnswer::Hello(h) => {
                return Err(NodeCheckError::ServerHelloOnRefusal {
                    version: h.version,
                    suite: h.suite,
                });
            }
            FirstAnswer::Alert(a) => Some(a),
            FirstAnswer::Nothing => o.alert,
        }
    } else {
        o.alert
    };
    match alert {
        Some(a) if expected.contains(&a) => Ok(format!(
            "offered {}: refused with {}{}",
            o.offered,
            alert_name(a),
            if clear {
                " in clear, before any ServerHello"
            } else {
                " (inside the encrypted handshake, as the client saw it)"
            }
        )),
        Some(got) => Err(NodeCheckError::TlsWrongAlert {
            got,
            expected: want,
        }),
        None => Err(NodeCheckError::TlsNoAlert {
            why: o.error.clone().unwrap_or_else(|| "no answer".into()),
            expected: want,
        }),
    }
}

/// The negotiation of an accepted attempt: TLS 1.3, a suite among `suites`, curveSM2.
fn negotiated(o: &TlsObservation, suites: &[u16]) -> Case {
    accepted(o)?;
    let h = hello_of(o)?;
    if h.retry {
        return Err(tls_err(
            "the server sent a HelloRetryRequest to a client offering a curveSM2 key share",
        ));
    }
    if h.version != TLS13 {
        return Err(NodeCheckError::TlsNegotiated {
            what: "version",
            got: h.version,
            expected: "0x0304 (TLS 1.3)".into(),
        });
    }
    if !suites.contains(&h.suite) {
        return Err(NodeCheckError::TlsNegotiated {
            what: "cipher suite",
            got: h.suite,
            expected: suites
                .iter()
                .map(|s| suite_name(*s))
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    match h.group {
        Some(CURVE_SM2) => Ok(format!(
            "offered {}: the ServerHello selects TLS 1.3 (0x0304), {}, key share curveSM2 (0x0029); the handshake completed",
            o.offered,
            suite_name(h.suite)
        )),
        Some(g) => Err(NodeCheckError::TlsNegotiated {
            what: "key share group",
            got: g,
            expected: "0x0029 (curveSM2)".into(),
        }),
        None => Err(tls_err("the ServerHello has no key_share")),
    }
}

/// The signature schemes the client saw: CertificateVerify and CertificateRequest.
fn signature_schemes(o: &TlsObservation) -> Case {
    accepted(o)?;
    match o.server_signature_scheme {
        Some(SM2SIG_SM3) => {}
        Some(got) => {
            return Err(NodeCheckError::TlsNegotiated {
                what: "CertificateVerify scheme",
                got,
                expected: "0x0708 (sm2sig_sm3)".into(),
            });
        }
        None => {
            return Err(NodeCheckError::TlsFailed {
                why: "the client saw no CertificateVerify from the node".into(),
            });
        }
    }
    match o.certificate_request_schemes.as_deref() {
        Some([SM2SIG_SM3]) => Ok(
            "CertificateVerify sm2sig_sm3 (0x0708) verified with the ID TLSv1.3+GM+Cipher+Suite; CertificateRequest signature_algorithms [0x0708]"
                .into(),
        ),
        Some(other) => Err(NodeCheckError::TlsFailed {
            why: format!(
                "the CertificateRequest offers {}",
                other
                    .iter()
                    .map(|s| format!("0x{s:04X}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        None => Err(NodeCheckError::TlsFailed {
            why: "the client saw no CertificateRequest".into(),
        }),
    }
}

fn member(suites: GmSuites) -> TlsAttempt {
    TlsAttempt::Member {
        suites,
        marker: None,
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// `node-tls-mutual-auth`: a member is accepted; no certificate and a certificate from
/// outside the consortium are refused during the handshake with their alerts.
pub(super) fn mutual_auth(p: &dyn NodeProbe) -> Vec<Evidence> {
    vec![
        ev(
            "the auditor's TLS identity (a consortium member) completes a mutual handshake",
            SRC_AUTH,
            attempt(p, member(GmSuites::Both)).and_then(|o| {
                accepted(&o)?;
                let leaf = o
                    .server_chain
                    .first()
                    .and_then(|d| Certificate::from_der(d).ok());
                Ok(format!(
                    "offered {}: accepted; the node presented {}",
                    o.offered,
                    leaf.map(|c| c.subject())
                        .unwrap_or_else(|| "no readable certificate".into())
                ))
            }),
        ),
        ev(
            "NEG: a GM TLS 1.3 client without a certificate is refused with certificate_required",
            SRC_AUTH,
            attempt(p, TlsAttempt::NoCertificate)
                .and_then(|o| refused(&o, &[CERTIFICATE_REQUIRED], false)),
        ),
        ev(
            "NEG: a certificate from a self-signed root outside the consortium is refused with unknown_ca",
            SRC_AUTH,
            attempt(p, TlsAttempt::Outsider).and_then(|o| refused(&o, &[UNKNOWN_CA], false)),
        ),
    ]
}

/// `node-tls-rfc8998-suites`: each RFC 8998 suite is negotiated over TLS 1.3 with curveSM2;
/// a non-GM offer and TLS 1.2 are refused before any ServerHello.
pub(super) fn rfc8998_suites(p: &dyn NodeProbe) -> Vec<Evidence> {
    let run = |suites: GmSuites, allowed: &[u16]| {
        attempt(p, member(suites)).and_then(|o| negotiated(&o, allowed))
    };
    vec![
        ev(
            "both RFC 8998 suites offered: TLS 1.3 with 0x00C6 or 0x00C7 and curveSM2",
            SRC_SUITES,
            run(GmSuites::Both, &[TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3]),
        ),
        ev(
            "the node's CertificateVerify is sm2sig_sm3 (0x0708), verified by the client with the RFC 8998 ID, and its CertificateRequest offers only sm2sig_sm3 (both inside the encrypted handshake, as the client saw them)",
            SRC_SIGS,
            attempt(p, member(GmSuites::Both)).and_then(|o| signature_schemes(&o)),
        ),
        ev(
            "TLS_SM4_GCM_SM3 alone is negotiated (0x00C6)",
            SRC_SUITES,
            run(GmSuites::GcmOnly, &[TLS_SM4_GCM_SM3]),
        ),
        ev(
            "TLS_SM4_CCM_SM3 alone is negotiated (0x00C7)",
            SRC_SUITES,
            run(GmSuites::CcmOnly, &[TLS_SM4_CCM_SM3]),
        ),
        ev(
            "NEG: a TLS 1.3 ClientHello offering only TLS_AES_128_GCM_SHA256 and x25519 is refused with handshake_failure or insufficient_security, in clear, before any ServerHello",
            SRC_SUITES,
            attempt(p, TlsAttempt::NonGmHello)
                .and_then(|o| refused(&o, &[HANDSHAKE_FAILURE, INSUFFICIENT_SECURITY], true)),
        ),
        ev(
            "NEG: a TLS 1.2 ClientHello is refused with protocol_version, in clear, before any ServerHello",
            SRC_SUITES,
            attempt(p, TlsAttempt::Tls12Hello).and_then(|o| refused(&o, &[PROTOCOL_VERSION], true)),
        ),
    ]
}

/// `node-tls-server-certificate`: the certificate the node presents is a node-sign
/// certificate with an SM2 key, signed with SM2-with-SM3, able to sign, and valid now under
/// the genesis file's CAs and CRLs.
pub(super) fn server_certificate(p: &dyn NodeProbe) -> Vec<Evidence> {
    let o = match attempt(p, member(GmSuites::Both)).and_then(|o| accepted(&o).map(|()| o)) {
        Ok(o) => o,
        Err(e) => {
            return vec![ev(
                "a handshake to read the node's certificate",
                SRC_CERT,
                Err(e),
            )];
        }
    };
    let parsed: Result<Vec<Certificate>, NodeCheckError> = o
        .server_chain
        .iter()
        .map(|d| {
            Certificate::from_der(d).map_err(|source| NodeCheckError::BadCertificate {
                what: "the node's TLS certificate chain",
                source,
            })
        })
        .collect();
    let chain = match parsed {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            return vec![ev(
                "the node presents a certificate",
                SRC_CERT,
                Err(NodeCheckError::NoServerCertificate),
            )];
        }
        Err(e) => return vec![ev("the node's certificate parses", SRC_CERT, Err(e))],
    };
    let leaf = &chain[0];
    let mut out = vec![ev(
        "the leaf holds an SM2 key, is signed with SM2-with-SM3 (1.2.156.10197.1.501) and has digitalSignature",
        SRC_CERT,
        {
            let alg = leaf.signature_algorithm();
            let ku = leaf.key_usages();
            if alg != OID_SM2_WITH_SM3 {
                Err(NodeCheckError::ServerCertificate {
                    subject: leaf.subject(),
                    why: format!("signature algorithm {alg}"),
                })
            } else if !ku.contains(&"digitalSignature") {
                Err(NodeCheckError::ServerCertificate {
                    subject: leaf.subject(),
                    why: format!("key usage {ku:?} lacks digitalSignature"),
                })
            } else {
                Ok(format!(
                    "{}: SM2 key (sm2p256v1), signature {alg}, key usage {}",
                    leaf.subject(),
                    ku.join(", ")
                ))
            }
        },
    )];
    out.push(ev(
        "the leaf's role is node-sign",
        SRC_CERT,
        match leaf.role() {
            Some(Role::NodeSign) => Ok(format!("{} is node-sign", leaf.subject())),
            other => Err(NodeCheckError::ServerCertificate {
                subject: leaf.subject(),
                why: format!(
                    "role {}",
                    other
                        .map(|r| r.as_str())
                        .unwrap_or("none (no gmchain role)")
                ),
            }),
        },
    ));
    out.push(ev(
        "the chain validates as node-sign to a CA of the genesis file, with the genesis file's CRLs (revocation failing closed), at the probe's time",
        SRC_CERT,
        chain_to_genesis(p, leaf, &chain[1..]),
    ));
    out
}

fn chain_to_genesis(p: &dyn NodeProbe, leaf: &Certificate, rest: &[Certificate]) -> Case {
    let (g, _) = genesis(p)?;
    let consortium = g
        .consortium()
        .map_err(|source| NodeCheckError::Consortium { source })?;
    let crls: Vec<pki::Crl> = g.organisations.iter().map(|o| o.crl.clone()).collect();
    let v = consortium
        .validate(leaf, rest, &crls, UnixTime(p.now_unix()), Role::NodeSign)
        .map_err(|source| NodeCheckError::ServerCertificateChain {
            subject: leaf.subject(),
            source: Box::new(source),
        })?;
    let validator = g
        .validators
        .iter()
        .find(|v| v.cert.der() == leaf.der())
        .map(|v| format!("; it is genesis validator {}'s certificate", v.name))
        .unwrap_or_default();
    Ok(format!(
        "{} (serial {}) of {} validates{validator}",
        leaf.subject(),
        leaf.serial(),
        v.organisation()
    ))
}

/// `node-tls-confidentiality`: a request carrying a random 32-byte marker reaches the node,
/// and the marker crosses the wire in neither direction in clear; after the hellos, every
/// record is application_data (the compatibility change_cipher_spec aside).
pub(super) fn confidentiality(p: &dyn NodeProbe) -> Vec<Evidence> {
    let marker = match random::<32>(p) {
        Ok(m) => m,
        Err(e) => return vec![ev("a random marker", SRC_CONF, Err(e))],
    };
    let o = match attempt(
        p,
        TlsAttempt::Member {
            suites: GmSuites::Both,
            marker: Some(marker),
        },
    ) {
        Ok(o) => o,
        Err(e) => return vec![ev("a handshake and a request", SRC_CONF, Err(e))],
    };
    let request = accepted(&o).and_then(|()| match &o.request {
        Some(Ok(answer)) => Ok(format!(
            "GetTransaction for marker {} answered {answer} over the connection",
            hex::encode(marker)
        )),
        Some(Err(why)) => Err(NodeCheckError::TlsFailed {
            why: format!("the request failed: {why}"),
        }),
        None => Err(NodeCheckError::TlsFailed {
            why: "the probe sent no request".into(),
        }),
    });
    vec![
        ev(
            "a GetTransaction request carrying a random 32-byte marker reaches the node over the connection",
            SRC_CONF,
            request,
        ),
        ev(
            "the marker appears in clear in neither direction of the captured bytes",
            SRC_CONF,
            in_clear(&o, &marker),
        ),
        ev(
            "client to server: after the ClientHello every record is application_data (one change_cipher_spec allowed)",
            SRC_CONF,
            protected(&o.client_bytes, 1, "ClientHello", "client"),
        ),
        ev(
            "server to client: after the ServerHello every record is application_data (one change_cipher_spec allowed)",
            SRC_CONF,
            protected(&o.server_bytes, 2, "ServerHello", "server"),
        ),
    ]
}

fn in_clear(o: &TlsObservation, marker: &[u8; 32]) -> Case {
    let found = |b: &[u8]| b.windows(marker.len()).position(|w| w == marker);
    if o.client_bytes.len() < 2 * marker.len() {
        return Err(tls_err(format!(
            "only {} bytes captured from the client: nothing to search",
            o.client_bytes.len()
        )));
    }
    for (dir, bytes) in [("client", &o.client_bytes), ("server", &o.server_bytes)] {
        if let Some(offset) = found(bytes) {
            return Err(NodeCheckError::MarkerInClear {
                direction: dir,
                offset,
            });
        }
    }
    Ok(format!(
        "marker {} not found in {} bytes from the client nor {} bytes from the server",
        hex::encode(marker),
        o.client_bytes.len(),
        o.server_bytes.len()
    ))
}

/// Every record after the first (a hello: handshake message `hello_type`) is
/// application_data, but for one change_cipher_spec of one byte; at least one is.
fn protected(bytes: &[u8], hello_type: u8, hello: &str, side: &'static str) -> Case {
    let recs = records(bytes).map_err(|why| tls_err(format!("{side}: {why}")))?;
    match recs.first() {
        Some(r) if r.content_type == HANDSHAKE && r.body.first() == Some(&hello_type) => {}
        _ => return Err(tls_err(format!("{side}: the first record is no {hello}"))),
    }
    let mut ccs = 0;
    let mut data = 0;
    for (i, r) in recs.iter().enumerate().skip(1) {
        match r.content_type {
            APPLICATION_DATA => data += 1,
            CHANGE_CIPHER_SPEC if ccs == 0 && r.body == [1] => ccs += 1,
            ty => {
                return Err(NodeCheckError::RecordInClear {
                    direction: side,
                    index: i,
                    content_type: ty,
                });
            }
        }
    }
    if data == 0 {
        return Err(tls_err(format!("{side}: no application_data record")));
    }
    Ok(format!(
        "{} records from the {side}: the {hello}, {ccs} change_cipher_spec, {data} application_data (SM4 AEAD records, RFC 8446 §5.2)",
        recs.len()
    ))
}

/// `node-tls-integrity`: a record of an established session altered in transit (one bit of
/// its tag) is refused by the node with bad_record_mac, and nothing of it is acted on.
pub(super) fn integrity(p: &dyn NodeProbe) -> Vec<Evidence> {
    let o = match attempt(p, TlsAttempt::Tampered) {
        Ok(o) => o,
        Err(e) => {
            return vec![ev(
                "a handshake and an altered record",
                SRC_INTEGRITY,
                Err(e),
            )];
        }
    };
    let altered = accepted(&o).and_then(|()| {
        o.tampered.clone().ok_or_else(|| NodeCheckError::TlsFailed {
            why: "the relay altered no record: the test did not happen".into(),
        })
    });
    let refused = match (&o.tampered, o.alert) {
        (None, _) => Err(NodeCheckError::TlsFailed {
            why: "nothing was altered".into(),
        }),
        (Some(_), Some(BAD_RECORD_MAC)) => Ok(format!(
            "the node answered with {} and closed the session",
            alert_name(BAD_RECORD_MAC)
        )),
        (Some(_), Some(a)) => Err(NodeCheckError::TlsFailed {
            why: format!(
                "refused with {}, expected {}",
                alert_name(a),
                alert_name(BAD_RECORD_MAC)
            ),
        }),
        (Some(_), None) => Err(NodeCheckError::TlsFailed {
            why: format!(
                "no alert: the altered record was ACCEPTED or ignored ({})",
                o.error.as_deref().unwrap_or("the node went on")
            ),
        }),
    };
    vec![
        ev(
            "a mutual handshake completes, then the relay flips one bit of the tag of the client's next record",
            SRC_INTEGRITY,
            altered,
        ),
        ev(
            "the node refuses the altered record with bad_record_mac",
            SRC_INTEGRITY,
            refused,
        ),
    ]
}
