//! The TLS attempts of `gmchain conformance run --node`: each connection to the node's API
//! listener goes through an in-process relay that records every byte both ways, and the
//! observation reports those bytes with what the client saw (the alert, the node's
//! certificate chain, the CertificateVerify scheme and the CertificateRequest's schemes,
//! which are inside the encrypted handshake). The judging is the conformance crate's.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use conformance::{GmSuites, ProbeError, Rpc, TlsAttempt, TlsObservation};
use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use gmtls::net::ConnectError;
use gmtls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use gmtls::rustls::client::{ResolvesClientCert, Resumption};
use gmtls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use gmtls::rustls::sign::CertifiedKey;
use gmtls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The node's TLS listener and the auditor's TLS identity and trust (the TLS flags or client
/// profile).
pub(crate) struct TlsTarget {
    pub addr: SocketAddr,
    pub creds: gmtls::Credentials,
    pub authority: Arc<dyn gmtls::Authority>,
}

/// One HTTP/1.1 request (Connection: close) to the REST gateway beside gRPC on the node's API
/// listener, as the auditor's identity (conformance check node-open-api).
pub(crate) async fn http(
    t: &TlsTarget,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<conformance::HttpAnswer, ProbeError> {
    let unreachable = |why: String| ProbeError::Unreachable {
        call: Rpc::Rest,
        status: "connect".into(),
        message: why,
    };
    let mut config = gmtls::client_config(&t.creds, t.authority.clone(), gmtls::provider())
        .map_err(|e| unreachable(e.to_string()))?;
    // HTTP/1.1 by ALPN: the node serves other connections as HTTP/2 only.
    Arc::make_mut(&mut config).alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut stream = gmtls::net::connect(t.addr, config, TIMEOUT, None)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        t.addr,
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        // A node that refuses a body before reading it answers and closes: the answer is
        // still read below.
        let _ = stream.write_all(body).await;
        let _ = stream.flush().await;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw).await {
            Ok(_) => Ok(raw),
            Err(_) if !raw.is_empty() => Ok(raw),
            Err(e) => Err(e),
        }
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| unreachable("no answer within 30 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    parse_http(&raw).ok_or_else(|| ProbeError::Failed {
        call: Rpc::Rest,
        status: "HTTP".into(),
        message: format!(
            "not an HTTP/1.1 answer: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ),
    })
}

/// Status, media type and body (`Content-Length` or to the end) of an HTTP/1.1 answer.
fn parse_http(raw: &[u8]) -> Option<conformance::HttpAnswer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut media_type = String::new();
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-type" => {
                media_type = v.split(';').next()?.trim().to_ascii_lowercase();
            }
            "content-length" => length = v.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = match length {
        Some(n) => rest.get(..n)?.to_vec(),
        None => rest.to_vec(),
    };
    Some(conformance::HttpAnswer {
        status,
        media_type,
        body,
    })
}

/// Makes `attempt` against the node.
pub(crate) async fn attempt(t: &TlsTarget, a: TlsAttempt) -> Result<TlsObservation, ProbeError> {
    match a {
        TlsAttempt::Member { suites, marker } => {
            let provider = match suites {
                GmSuites::Both => gmtls::provider(),
                GmSuites::GcmOnly => gmtls::provider_with_suites(&[gmtls::Suite::Sm4GcmSm3]),
                GmSuites::CcmOnly => gmtls::provider_with_suites(&[gmtls::Suite::Sm4CcmSm3]),
            };
            let names = match suites {
                GmSuites::Both => "TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3",
                GmSuites::GcmOnly => "TLS_SM4_GCM_SM3",
                GmSuites::CcmOnly => "TLS_SM4_CCM_SM3",
            };
            let offered = format!(
                "TLS 1.3, {names}, curveSM2, sm2sig_sm3, client certificate {}",
                t.creds.leaf().subject()
            );
            handshake(t, provider, Some(t.creds.certified_key()), offered, marker).await
        }
        TlsAttempt::NoCertificate => {
            let offered = "TLS 1.3, TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3, curveSM2, sm2sig_sm3, no client certificate".to_string();
            handshake(t, gmtls::provider(), None, offered, None).await
        }
        TlsAttempt::Outsider => {
            let (creds, subject) = outsider().map_err(|why| ProbeError::Failed {
                call: Rpc::Tls,
                status: "setup".into(),
                message: why,
            })?;
            let offered = format!(
                "TLS 1.3, TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3, curveSM2, sm2sig_sm3, client certificate {subject} from a self-signed root made for this attempt"
            );
            handshake(
                t,
                gmtls::provider(),
                Some(creds.certified_key()),
                offered,
                None,
            )
            .await
        }
        TlsAttempt::Tls12Hello => {
            raw(
                t.addr,
                hello::tls12(),
                "a raw TLS 1.2 ClientHello (no supported_versions): ECDHE-ECDSA/RSA-AES128-GCM-SHA256, groups x25519 and secp256r1",
            )
            .await
        }
        TlsAttempt::NonGmHello => {
            raw(
                t.addr,
                hello::tls13_non_gm(),
                "a raw TLS 1.3 ClientHello: only TLS_AES_128_GCM_SHA256 (0x1301), group and key share x25519, signature schemes ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, ed25519",
            )
            .await
        }
        TlsAttempt::Tampered => tampered(t).await,
        _ => Err(ProbeError::Unsupported {
            what: format!("{a:?}"),
        }),
    }
}

/// The member's handshake through a relay; once the node's first bytes arrived (the session
/// is up), the relay is armed to flip one bit in the tag of the client's next record, and the
/// client sends application data (an HTTP/2 PING frame) and reads the answer.
async fn tampered(t: &TlsTarget) -> Result<TlsObservation, ProbeError> {
    let config =
        gmtls::client_config(&t.creds, t.authority.clone(), gmtls::provider()).map_err(|e| {
            ProbeError::Failed {
                call: Rpc::Tls,
                status: "setup".into(),
                message: e.to_string(),
            }
        })?;
    let arm = Arc::new(Mutex::new(Tamper::Off));
    let relay = Relay::start_tampering(t.addr, Some(arm.clone())).await?;
    let mut o = TlsObservation {
        offered: format!(
            "TLS 1.3, TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3, curveSM2, sm2sig_sm3, client certificate {}; then one bit of the tag of the client's next record flipped in transit",
            t.creds.leaf().subject()
        ),
        ..TlsObservation::default()
    };
    match gmtls::net::connect(relay.addr, config, TIMEOUT, Some(TIMEOUT)).await {
        Ok(mut stream) => {
            o.completed = true;
            *lock(&arm) = Tamper::Armed;
            // An HTTP/2 PING frame (RFC 9113 §6.7): the node would answer it if the record
            // were accepted.
            let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
            let sent = async {
                stream.write_all(&ping).await?;
                stream.flush().await
            };
            if let Err(e) = sent.await {
                o.error = Some(format!("sending: {e}"));
            }
            let mut buf = [0u8; 4096];
            loop {
                match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await {
                    Ok(Ok(0)) => {
                        o.error
                            .get_or_insert("the node closed without an alert".into());
                        break;
                    }
                    // Anything the node still sends before the alert (a SETTINGS ack) is read
                    // past; an answer to the PING would show as no alert.
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => {
                        match e
                            .get_ref()
                            .and_then(|i| i.downcast_ref::<gmtls::rustls::Error>())
                        {
                            Some(gmtls::rustls::Error::AlertReceived(a)) => {
                                o.alert = Some(u8::from(*a))
                            }
                            _ => o.error = Some(format!("reading: {e}")),
                        }
                        break;
                    }
                    Err(_) => {
                        o.error = Some("no answer and no alert for 5 s".into());
                        break;
                    }
                }
            }
        }
        Err(ConnectError::Refused { alert, .. }) => o.alert = Some(u8::from(alert)),
        Err(e) => o.error = Some(e.to_string()),
    }
    if let Tamper::Done(what) = &*lock(&arm) {
        o.tampered = Some(what.clone());
    }
    (o.client_bytes, o.server_bytes) = relay.finish().await;
    Ok(o)
}

/// The relay's tampering state (client to server only).
#[derive(Debug)]
enum Tamper {
    /// Forward as it is.
    Off,
    /// Flip one bit in the tag of the next complete record.
    Armed,
    /// Done: which record was altered.
    Done(String),
}

/// A client certificate of a self-signed root made in memory: outside any consortium.
fn outsider() -> Result<(gmtls::Credentials, String), String> {
    let provider = SoftwareProvider::new(Arc::new(SystemRandom));
    let root_key = provider.generate().map_err(|e| e.to_string())?;
    let key = provider.generate().map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let validity = pki::Validity {
        not_before: pki::UnixTime(now.saturating_sub(600)),
        not_after: pki::UnixTime(now + 3600),
    };
    let serial = || pki::Serial::random(&SystemRandom).map_err(|e| e.to_string());
    let root = pki::issue_root(
        "Conformance Outsider Root",
        "Conformance Outsider",
        serial()?,
        validity,
        &root_key,
    )
    .map_err(|e| e.to_string())?;
    let leaf = pki::issue(
        &root,
        &root_key,
        &pki::IssueRequest {
            role: pki::Role::User,
            common_name: "conformance-outsider",
            organisation: "Conformance Outsider",
            public_key: &key.public_key(),
            serial: serial()?,
            validity,
        },
    )
    .map_err(|e| e.to_string())?;
    let subject = leaf.subject();
    let creds = gmtls::Credentials::new(vec![leaf], Arc::new(key)).map_err(|e| e.to_string())?;
    Ok((creds, subject))
}

/// What the client saw inside the encrypted handshake.
#[derive(Debug, Default)]
struct Seen {
    scheme: Mutex<Option<u16>>,
    request: Mutex<Option<Vec<u16>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// gmtls's server verifier, recording the CertificateVerify scheme it verified.
#[derive(Debug)]
struct RecordingVerifier(gmtls::ServerVerifier, Arc<Seen>);

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, gmtls::rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, gmtls::rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, gmtls::rustls::Error> {
        *lock(&self.1.scheme) = Some(u16::from(dss.scheme));
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The client certificate, recording the CertificateRequest's signature schemes.
#[derive(Debug)]
struct RecordingResolver(Option<Arc<CertifiedKey>>, Arc<Seen>);

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *lock(&self.1.request) = Some(sigschemes.iter().map(|s| u16::from(*s)).collect());
        let sm2 = SignatureScheme::Unknown(gmtls::SM2SIG_SM3);
        self.0.clone().filter(|_| sigschemes.contains(&sm2))
    }

    fn has_certs(&self) -> bool {
        self.0.is_some()
    }
}

/// A GM TLS 1.3 handshake through the relay, as `gmtls::client_config` makes it (the same
/// verifier and signing key, no resumption or early data), with the verifier and the
/// certificate resolver recording what they saw; then, with a marker, a GetTransaction for it.
async fn handshake(
    t: &TlsTarget,
    provider: Arc<gmtls::rustls::crypto::CryptoProvider>,
    key: Option<Arc<CertifiedKey>>,
    offered: String,
    marker: Option<[u8; 32]>,
) -> Result<TlsObservation, ProbeError> {
    let seen = Arc::new(Seen::default());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&gmtls::rustls::version::TLS13])
        .map_err(|e| ProbeError::Failed {
            call: Rpc::Tls,
            status: "setup".into(),
            message: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier(
            gmtls::ServerVerifier(t.authority.clone()),
            seen.clone(),
        )));
    let mut config = match key {
        Some(k) => {
            builder.with_client_cert_resolver(Arc::new(RecordingResolver(Some(k), seen.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    let relay = Relay::start(t.addr).await?;
    let mut o = TlsObservation {
        offered,
        ..TlsObservation::default()
    };
    match gmtls::net::connect(relay.addr, Arc::new(config), TIMEOUT, Some(TIMEOUT)).await {
        Ok(stream) => {
            o.completed = true;
            o.server_chain = stream
                .get_ref()
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
                .unwrap_or_default();
            if let Some(m) = marker {
                o.request = Some(request(stream, m).await);
            }
        }
        Err(ConnectError::Refused { alert, .. }) => o.alert = Some(u8::from(alert)),
        Err(e) => o.error = Some(e.to_string()),
    }
    o.server_signature_scheme = *lock(&seen.scheme);
    o.certificate_request_schemes = lock(&seen.request).clone();
    (o.client_bytes, o.server_bytes) = relay.finish().await;
    Ok(o)
}

/// GetTransaction for `marker` over the one connection `stream`; the gRPC status name.
async fn request(
    stream: gmtls::net::Confirmed<gmtls::tokio_rustls::client::TlsStream<TcpStream>>,
    marker: [u8; 32],
) -> Result<String, String> {
    let slot = Arc::new(Mutex::new(Some(stream)));
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let slot = slot.clone();
        async move {
            lock(&slot)
                .take()
                .map(hyper_util::rt::TokioIo::new)
                .ok_or_else(|| io::Error::other("the probe's connection is used once"))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1")
        .connect_with_connector(connector)
        .await
        .map_err(|e| format!("the gRPC channel failed: {e}"))?;
    let r = ChainClient::new(channel)
        .get_transaction(pb::TxIdRequest {
            tx_id: marker.to_vec(),
        })
        .await;
    match r {
        Ok(_) => Ok("OK (a transaction)".into()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok("NotFound".into()),
        Err(s) => Err(format!("gRPC {:?}: {}", s.code(), s.message())),
    }
}

/// A raw ClientHello over TCP: everything the server sends back until it closes (or a
/// pause), without the relay (the probe writes and reads the bytes itself).
async fn raw(
    addr: SocketAddr,
    hello: Vec<u8>,
    offered: &str,
) -> Result<TlsObservation, ProbeError> {
    let unreachable = |e: io::Error| ProbeError::Unreachable {
        call: Rpc::Tls,
        status: "connect".into(),
        message: format!("{addr}: {e}"),
    };
    let mut s = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable(io::ErrorKind::TimedOut.into()))?
        .map_err(unreachable)?;
    let mut o = TlsObservation {
        offered: offered.to_string(),
        ..TlsObservation::default()
    };
    if let Err(e) = s.write_all(&hello).await {
        o.error = Some(format!("sending the ClientHello: {e}"));
        return Ok(o);
    }
    o.client_bytes = hello;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => o.server_bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => {
                o.error = Some(format!("reading: {e}"));
                break;
            }
            Err(_) => {
                o.error = Some("the node sent nothing more for 3 s".into());
                break;
            }
        }
    }
    // An alert in clear: what the client received.
    if let [21, _, _, _, _, _, d, ..] = o.server_bytes[..] {
        o.alert = Some(d);
    }
    Ok(o)
}

/// A TCP relay on 127.0.0.1 for one connection to the node, recording both directions.
struct Relay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<(Vec<u8>, Vec<u8>)>,
}

impl Relay {
    async fn start(node: SocketAddr) -> Result<Relay, ProbeError> {
        Self::start_tampering(node, None).await
    }

    /// A relay that alters the client's next record once `tamper` is armed.
    async fn start_tampering(
        node: SocketAddr,
        tamper: Option<Arc<Mutex<Tamper>>>,
    ) -> Result<Relay, ProbeError> {
        let failed = |e: io::Error| ProbeError::Failed {
            call: Rpc::Tls,
            status: "relay".into(),
            message: e.to_string(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(failed)?;
        let addr = listener.local_addr().map_err(failed)?;
        let task = tokio::spawn(async move {
            let work = async {
                let (client, _) = listener.accept().await.ok()?;
                let server = TcpStream::connect(node).await.ok()?;
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                Some(tokio::join!(copy(cr, sw, tamper), copy(sr, cw, None)))
            };
            tokio::time::timeout(Duration::from_secs(30), work)
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
        });
        Ok(Relay { addr, task })
    }

    /// The bytes the client sent and the server sent, once both sides have closed.
    async fn finish(self) -> (Vec<u8>, Vec<u8>) {
        self.task.await.unwrap_or_default()
    }
}

/// Copies `r` to `w` until `r` ends, returning what passed (as it was read, before any
/// tampering). With `tamper` armed, the next complete TLS record is forwarded with the last
/// bit of its last byte (inside the AEAD tag) flipped; bytes are held back only while a
/// record is incomplete and tampering is armed.
async fn copy(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    tamper: Option<Arc<Mutex<Tamper>>>,
) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                pending.extend_from_slice(&buf[..n]);
                let out = match &tamper {
                    Some(t) => tamper_next(t, &mut pending, seen.len()),
                    None => std::mem::take(&mut pending),
                };
                if w.write_all(&out).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = w.write_all(&pending).await;
    let _ = w.shutdown().await;
    seen
}

/// What of `pending` can be forwarded now: all of it unless tampering is armed; when armed,
/// whole records, the first of them altered (and tampering done), the rest of an incomplete
/// record kept back.
fn tamper_next(t: &Mutex<Tamper>, pending: &mut Vec<u8>, offset_end: usize) -> Vec<u8> {
    let mut state = lock(t);
    if !matches!(*state, Tamper::Armed) {
        return std::mem::take(pending);
    }
    // A record: type, version (2), length (2), body.
    if pending.len() < 5 {
        return Vec::new();
    }
    let len = u16::from_be_bytes([pending[3], pending[4]]) as usize;
    if pending.len() < 5 + len || len == 0 {
        return Vec::new();
    }
    let last = 5 + len - 1;
    pending[last] ^= 1;
    *state = Tamper::Done(format!(
        "bit 0 of the last byte (inside the AEAD tag) of the client's record of type {} and {len} bytes, at stream offset {}",
        pending[0],
        offset_end - pending.len() + last
    ));
    std::mem::take(pending)
}

/// The two raw ClientHellos (RFC 8446 §4.1.2), used only here.
mod hello {
    use crypto::RandomSource;
    use crypto_sm::rng::SystemRandom;

    fn random<const N: usize>() -> [u8; N] {
        let mut b = [0u8; N];
        // A failed draw leaves zeros: the hello is still well formed.
        let _ = SystemRandom.fill(&mut b);
        b
    }

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn ext(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut out = ty.to_be_bytes().to_vec();
        out.extend(with_len16(body));
        out
    }

    fn client_hello(
        record_version: u16,
        suites: &[u16],
        session_id: &[u8],
        exts: &[u8],
    ) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random::<32>());
        b.push(session_id.len() as u8);
        b.extend_from_slice(session_id);
        b.extend(with_len16(&u16s(suites)));
        b.extend_from_slice(&[1, 0]);
        b.extend(with_len16(exts));
        let mut hs = vec![1];
        hs.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
        hs.extend(b);
        let mut rec = vec![22];
        rec.extend_from_slice(&record_version.to_be_bytes());
        rec.extend(with_len16(&hs));
        rec
    }

    /// TLS 1.2: no supported_versions; ECDHE suites, x25519 and secp256r1.
    pub(super) fn tls12() -> Vec<u8> {
        let mut exts = ext(10, &with_len16(&u16s(&[0x001d, 0x0017])));
        exts.extend(ext(11, &[1, 0]));
        exts.extend(ext(13, &with_len16(&u16s(&[0x0403, 0x0804, 0x0401]))));
        client_hello(0x0301, &[0xC02B, 0xC02F, 0x009C], &[], &exts)
    }

    /// TLS 1.3 with only TLS_AES_128_GCM_SHA256, x25519 and non-SM signature schemes.
    pub(super) fn tls13_non_gm() -> Vec<u8> {
        let mut exts = ext(43, &[2, 3, 4]);
        exts.extend(ext(10, &with_len16(&u16s(&[0x001d]))));
        exts.extend(ext(13, &with_len16(&u16s(&[0x0403, 0x0804, 0x0807]))));
        let mut share = 0x001du16.to_be_bytes().to_vec();
        share.extend(with_len16(&random::<32>()));
        exts.extend(ext(51, &with_len16(&share)));
        client_hello(0x0301, &[0x1301], &random::<32>(), &exts)
    }
}
