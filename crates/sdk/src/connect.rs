//! Reaching a node: its mutual GM TLS API (RFC 8998, through `gmtls`, with the client's key
//! behind any `crypto::Signer`), or a public read-only listener over plain HTTP/2.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gmtls::net::{Confirmed, ConnectError, connect_named};
use gmtls::rustls::{ClientConfig, ClientConnection};
use gmtls::tokio_rustls::client::TlsStream;
use pki::{Certificate, Crl};
use tokio::net::TcpStream;
use tonic::transport::Channel;

use crate::SdkError;

/// How long a connection and its handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest gRPC message a client decodes (a block, a receipt bundle).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Reads the certificates of a file: every PEM certificate in order (a leaf may be followed by
/// its CAs), or one DER certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, SdkError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(bytes);
    if !text.contains(BEGIN) {
        return Ok(vec![Certificate::from_der(bytes)?]);
    }
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = rest.find(BEGIN) {
        let end = rest[start..].find(END).ok_or(SdkError::PemWithoutEnd)? + start + END.len();
        out.push(Certificate::from_pem(&rest.as_bytes()[start..end])?);
        rest = &rest[end..];
    }
    Ok(out)
}

/// Resolves `addr` (`HOST:PORT`) to its first socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, SdkError> {
    let bad = |reason: String| SdkError::BadAddress {
        address: addr.to_string(),
        reason,
    };
    addr.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

/// The nodes a client accepts: certified (node-sign role) under one of `anchors`, with a
/// current CRL of every CA on the path (revocation fails closed), and, with `organisation`,
/// members of that organisation only.
pub fn node_authority(
    anchors: Vec<Certificate>,
    crls: Vec<Crl>,
    organisation: Option<String>,
) -> Result<Arc<dyn gmtls::Authority>, SdkError> {
    let authority: Arc<dyn gmtls::Authority> = Arc::new(gmtls::StaticAuthority::new(
        anchors,
        crls,
        gmtls::SERVER_ROLES,
    )?);
    Ok(match organisation {
        Some(org) => gmtls::OrganisationPolicy::new(authority, org),
        None => authority,
    })
}

/// The client's TLS identity and the nodes it trusts.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    node_name: Option<String>,
}

impl TlsClient {
    /// A client presenting `creds` (its key stays behind its `Signer`: a token handle or a
    /// keystore key) to nodes `authority` accepts; with `node_name` (the node certificate's
    /// common name), only that node. Resumption and 0-RTT are off (gmtls's client rules).
    pub fn new(
        creds: &gmtls::Credentials,
        authority: Arc<dyn gmtls::Authority>,
        node_name: Option<String>,
    ) -> Result<TlsClient, SdkError> {
        Ok(TlsClient {
            config: gmtls::client_config(creds, authority, gmtls::provider())?,
            node_name,
        })
    }

    /// This client offering the ALPN protocol `protocol` (`b"http/1.1"`: the node serves the
    /// connection as HTTP/1.1, REST and the console; none, or `b"h2"`: HTTP/2, where the node
    /// speaks first, which `open`'s confirmation waits for).
    pub fn with_alpn(&self, protocol: &[u8]) -> TlsClient {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![protocol.to_vec()];
        TlsClient {
            config: Arc::new(config),
            node_name: self.node_name.clone(),
        }
    }

    /// Opens one TLS connection to `addr`; with `confirm`, waits for the node's first bytes
    /// so that a refused certificate is reported with its alert.
    pub async fn open(
        &self,
        addr: SocketAddr,
        confirm: bool,
    ) -> Result<Confirmed<TlsStream<TcpStream>>, ConnectError> {
        connect_named(
            addr,
            self.node_name.as_deref(),
            self.config.clone(),
            CONNECT_TIMEOUT,
            confirm.then_some(CONNECT_TIMEOUT),
        )
        .await
    }

    /// A gRPC channel to `addr` (for any of the node's services) and what its first
    /// connection is. The first connection is made here, so that a refusal is reported with its
    /// alert; the channel reconnects (after an idle close) the same way.
    pub async fn channel(&self, addr: SocketAddr) -> Result<(Channel, Connection), SdkError> {
        let first = self.open(addr, true).await?;
        let info = Connection::of(first.get_ref().get_ref().1);
        let first = Arc::new(Mutex::new(Some(first)));
        let this = self.clone();
        let connector = tower::service_fn(move |_uri: tonic::transport::Uri| {
            let first = first.clone();
            let this = this.clone();
            async move {
                let ready = first.lock().unwrap_or_else(|e| e.into_inner()).take();
                let stream = match ready {
                    Some(s) => s,
                    None => this.open(addr, false).await?,
                };
                Ok::<_, ConnectError>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| SdkError::BadAddress {
                address: addr.to_string(),
                reason: e.to_string(),
            })?
            .connect_with_connector(connector)
            .await
            .map_err(|source| SdkError::Channel { addr, source })?;
        Ok((channel, info))
    }
}

/// A gRPC channel to a node's public read-only listener (`http://HOST:PORT`): no client
/// certificate, reads only, outside GB/T 39786 §8.2.
pub async fn public_channel(url: &str) -> Result<Channel, SdkError> {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| SdkError::BadAddress {
            address: url.to_string(),
            reason: e.to_string(),
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|source| SdkError::Unreachable {
            url: url.to_string(),
            source,
        })
}

/// What a TLS connection is: the protocol, the RFC 8998 suite and group, the node's
/// certificate.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The TLS version (`TLSv1_3`).
    pub protocol: Option<String>,
    /// The RFC 8998 suite (`TLS_SM4_GCM_SM3`).
    pub cipher_suite: Option<&'static str>,
    /// The key exchange group (`curveSM2`).
    pub key_exchange: Option<String>,
    /// The node's certificate.
    pub node_certificate: Option<Certificate>,
}

impl Connection {
    /// Describes `conn`.
    pub fn of(conn: &ClientConnection) -> Connection {
        Connection {
            protocol: conn.protocol_version().map(|v| format!("{v:?}")),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .and_then(|s| gmtls::Suite::from_rustls(s.suite()))
                .map(|s| s.name()),
            key_exchange: conn
                .negotiated_key_exchange_group()
                .map(|g| match g.name() {
                    gmtls::rustls::NamedGroup::Unknown(gmtls::CURVE_SM2) => "curveSM2".to_string(),
                    other => format!("{other:?}"),
                }),
            node_certificate: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|d| Certificate::from_der(d.as_ref()).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_file_without_its_end_line_and_a_bad_address_are_refused() {
        let e = parse_certificates(b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert_eq!(e.to_string(), "a PEM certificate without its END line");
        assert!(parse_certificates(b"not DER").is_err());
        assert!(matches!(
            resolve("no port here"),
            Err(SdkError::BadAddress { .. })
        ));
    }
}
