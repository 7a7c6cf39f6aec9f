//! What crosses the wire between two TLS endpoints, for tests that look at the bytes: a TCP
//! relay that keeps everything it forwards both ways, a splitter of TLS records, and parsers of
//! the plaintext ClientHello and ServerHello (RFC 8446 §4.1.2, §4.1.3).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// TLS record content types (RFC 8446 §5.1).
pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;

/// Handshake message types (RFC 8446 §4).
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
pub const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// One TLS record as it crossed the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub typ: u8,
    pub version: u16,
    pub body: Vec<u8>,
}

impl Record {
    /// The 5-byte header followed by the body.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = vec![self.typ];
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&(self.body.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.body);
        v
    }

    /// The 5-byte header: the AAD of a TLS 1.3 protected record.
    pub fn header(&self) -> [u8; 5] {
        let v = self.version.to_be_bytes();
        let l = (self.body.len() as u16).to_be_bytes();
        [self.typ, v[0], v[1], l[0], l[1]]
    }
}

/// Splits a byte stream into records; a truncated last record fails the test.
pub fn records(mut stream: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        assert!(stream.len() >= 5, "truncated record header: {stream:02x?}");
        let len = u16::from_be_bytes([stream[3], stream[4]]) as usize;
        assert!(
            stream.len() >= 5 + len,
            "truncated record: header says {len} bytes, {} left",
            stream.len() - 5
        );
        out.push(Record {
            typ: stream[0],
            version: u16::from_be_bytes([stream[1], stream[2]]),
            body: stream[5..5 + len].to_vec(),
        });
        stream = &stream[5 + len..];
    }
    out
}

/// The plaintext handshake messages at the start of `records` (those of type 22 before the
/// first record of another type), each with its 4-byte header: what the transcript hash takes.
pub fn plaintext_handshake(records: &[Record]) -> Vec<Vec<u8>> {
    let bytes: Vec<u8> = records
        .iter()
        .take_while(|r| r.typ == HANDSHAKE)
        .flat_map(|r| r.body.iter().copied())
        .collect();
    handshake_messages(&bytes)
}

/// Splits concatenated handshake messages, each kept with its header.
pub fn handshake_messages(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 4, "truncated handshake header");
        let len = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize;
        assert!(bytes.len() >= 4 + len, "truncated handshake message");
        out.push(bytes[..4 + len].to_vec());
        bytes = &bytes[4 + len..];
    }
    out
}

/// The complete handshake messages at the start of `bytes` (a partial last one is left out).
pub fn handshake_messages_prefix(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + len {
            break;
        }
        out.push(bytes[..4 + len].to_vec());
        bytes = &bytes[4 + len..];
    }
    out
}

/// A cursor over a message, failing the test on truncation.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.0.len() >= n,
            "truncated: need {n}, have {}",
            self.0.len()
        );
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_be_bytes([b[0], b[1]])
    }
    fn vec8(&mut self) -> &'a [u8] {
        let n = self.u8() as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    assert!(b.len().is_multiple_of(2), "odd list of u16s");
    b.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn extensions(r: &mut Reader<'_>) -> Vec<(u16, Vec<u8>)> {
    let mut ext = Reader(r.vec16());
    let mut out = Vec::new();
    while !ext.is_empty() {
        let typ = ext.u16();
        out.push((typ, ext.vec16().to_vec()));
    }
    out
}

/// Extension codepoints (RFC 8446 §4.2).
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
pub const EXT_KEY_SHARE: u16 = 51;

/// The fields of a ClientHello the tests look at.
#[derive(Debug)]
pub struct ClientHello {
    pub random: [u8; 32],
    pub cipher_suites: Vec<u16>,
    pub supported_groups: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
    pub supported_versions: Vec<u16>,
    /// The groups of the key shares offered.
    pub key_shares: Vec<u16>,
}

/// Parses a ClientHello message (with its 4-byte header).
pub fn client_hello(msg: &[u8]) -> ClientHello {
    assert_eq!(msg[0], CLIENT_HELLO, "not a ClientHello: {:02x}", msg[0]);
    let mut r = Reader(&msg[4..]);
    assert_eq!(r.u16(), 0x0303, "legacy_version");
    let random = r.take(32).try_into().unwrap();
    r.vec8(); // legacy_session_id
    let cipher_suites = u16s(r.vec16());
    r.vec8(); // legacy_compression_methods
    let mut ch = ClientHello {
        random,
        cipher_suites,
        supported_groups: vec![],
        signature_algorithms: vec![],
        supported_versions: vec![],
        key_shares: vec![],
    };
    for (typ, body) in extensions(&mut r) {
        let mut b = Reader(&body);
        match typ {
            EXT_SUPPORTED_GROUPS => ch.supported_groups = u16s(b.vec16()),
            EXT_SIGNATURE_ALGORITHMS => ch.signature_algorithms = u16s(b.vec16()),
            EXT_SUPPORTED_VERSIONS => ch.supported_versions = u16s(b.vec8()),
            EXT_KEY_SHARE => {
                let mut shares = Reader(b.vec16());
                while !shares.is_empty() {
                    ch.key_shares.push(shares.u16());
                    shares.vec16();
                }
            }
            _ => {}
        }
    }
    assert!(r.is_empty(), "bytes after the ClientHello's extensions");
    ch
}

/// The fields of a ServerHello (or HelloRetryRequest) the tests look at.
#[derive(Debug)]
pub struct ServerHello {
    pub random: [u8; 32],
    pub cipher_suite: u16,
    pub selected_version: Option<u16>,
    /// The group of the server's key share (for a HelloRetryRequest: the group it asks for).
    pub key_share_group: Option<u16>,
}

impl ServerHello {
    pub fn is_hello_retry_request(&self) -> bool {
        self.random == HRR_RANDOM
    }
}

/// Parses a ServerHello message (with its 4-byte header).
pub fn server_hello(msg: &[u8]) -> ServerHello {
    assert_eq!(msg[0], SERVER_HELLO, "not a ServerHello: {:02x}", msg[0]);
    let mut r = Reader(&msg[4..]);
    assert_eq!(r.u16(), 0x0303, "legacy_version");
    let random = r.take(32).try_into().unwrap();
    r.vec8(); // legacy_session_id_echo
    let cipher_suite = r.u16();
    assert_eq!(r.u8(), 0, "legacy_compression_method");
    let mut sh = ServerHello {
        random,
        cipher_suite,
        selected_version: None,
        key_share_group: None,
    };
    for (typ, body) in extensions(&mut r) {
        let mut b = Reader(&body);
        match typ {
            EXT_SUPPORTED_VERSIONS => sh.selected_version = Some(b.u16()),
            EXT_KEY_SHARE => sh.key_share_group = Some(b.u16()),
            _ => {}
        }
    }
    assert!(r.is_empty(), "bytes after the ServerHello's extensions");
    sh
}

/// Everything a [`Recorder`] relayed, each direction in order.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub client_to_server: Vec<u8>,
    pub server_to_client: Vec<u8>,
}

/// A TCP relay for one connection that records every byte it forwards.
pub struct Recorder {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<Captured>,
}

impl Recorder {
    /// Listens on loopback and relays the first connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(upstream).await.unwrap();
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let c2s = Arc::new(Mutex::new(Vec::new()));
            let s2c = Arc::new(Mutex::new(Vec::new()));
            let up = tokio::spawn(relay(cr, sw, c2s.clone()));
            let down = tokio::spawn(relay(sr, cw, s2c.clone()));
            let _ = up.await;
            let _ = down.await;
            let c2s = c2s.lock().unwrap().clone();
            let s2c = s2c.lock().unwrap().clone();
            Captured {
                client_to_server: c2s,
                server_to_client: s2c,
            }
        });
        Recorder { addr, task }
    }

    /// Waits (at most 5 s) for both directions to close and returns what crossed.
    pub async fn finish(self) -> Captured {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("the recorded connection did not close within 5 s")
            .unwrap()
    }
}

/// Copies `from` to `to` until EOF (or an error), keeping the bytes; then closes `to`.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    keep: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        keep.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// What a [`serve_once`] server saw: the negotiated suite and every byte the client sent after
/// the handshake; or why the handshake failed (rustls's error).
pub type Served = Result<(u16, Vec<u8>), String>;

/// Serves one TLS connection on loopback: the handshake, then `greeting`, then reads until
/// the client closes, then echoes what it read and closes.
pub async fn serve_once(
    config: Arc<gmtls::rustls::ServerConfig>,
    greeting: &'static [u8],
) -> (SocketAddr, tokio::task::JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = gmtls::tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(|e| {
                match e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<gmtls::rustls::Error>())
                {
                    Some(r) => format!("{r:?}"),
                    None => e.to_string(),
                }
            })?;
        let suite = u16::from(tls.get_ref().1.negotiated_cipher_suite().unwrap().suite());
        tls.write_all(greeting).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        // The client ends with close_notify or a plain TCP close; both end the read.
        let _ = tls.read_to_end(&mut got).await;
        let _ = tls.write_all(&got).await;
        let _ = tls.shutdown().await;
        Ok((suite, got))
    });
    (addr, task)
}
