//! The accept loop of the node's API listener: at most `max_connections` open connections, and
//! at most `max_per_peer` from one IP address, each holding a permit until it closes; a
//! connection over a limit is accepted and closed at once (counted in
//! `gmchain_api_connections_refused_total`), so a flood of idle connections cannot exhaust the
//! node's file descriptors or memory, and one peer cannot take every slot. A connection that
//! has not sent the 24-byte HTTP/2 preface within `preface_timeout` is closed (a silent
//! connection would otherwise hold its slot for ever; after the preface, HTTP/2 keep-alive
//! pings find dead peers). Stream and subscription limits sit beside it (`run`,
//! `ChainService`). The TLS listener of the mutual-TLS issue wraps the same [`LimitedStream`]s,
//! so the limits hold there too.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::metrics::Metrics;

/// The bytes of the HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one IP address at most.
    pub max_per_peer: usize,
    /// Time a new connection has to send the HTTP/2 preface.
    pub preface_timeout: Duration,
}

type PeerCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A connection accepted within the limits; its permit and its peer's count are released when
/// it is dropped.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
    peer: IpAddr,
    peers: PeerCounts,
    /// Preface bytes still expected, and the deadline for them.
    preface_left: usize,
    preface_deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.metrics.api_connections.fetch_sub(1, Ordering::Relaxed);
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = peers.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.preface_left > 0 {
            match &r {
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len() - before;
                    self.preface_left = self.preface_left.saturating_sub(n);
                }
                Poll::Pending => {
                    if self.preface_deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no HTTP/2 preface within the preface timeout",
                        )));
                    }
                }
                Poll::Ready(Err(_)) => {}
            }
        }
        r
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepts connections from `listener` until the returned stream is dropped, admitting at most
/// `limits.max_connections` at once and `limits.max_per_peer` per IP address; the others are
/// closed on accept and counted.
pub fn limited_incoming(
    listener: TcpListener,
    limits: ListenerLimits,
    metrics: Arc<Metrics>,
    audit: crate::audit::NodeAudit,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<LimitedStream>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let peers: PeerCounts = Arc::default();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                // The server stopped listening.
                () = tx.closed() => return,
            };
            let (stream, addr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Per-connection errors (a peer that reset before accept, EMFILE): log and
                    // go on; the listener itself stays usable.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let peer = addr.ip();
            let peer_full = {
                let mut p = peers.lock().unwrap_or_else(|e| e.into_inner());
                let n = p.entry(peer).or_default();
                if *n >= limits.max_per_peer {
                    true
                } else {
                    *n += 1;
                    false
                }
            };
            if peer_full {
                metrics
                    .api_connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, max = limits.max_per_peer, "connection refused: the peer holds its maximum of connections");
                audit.refused(
                    crate::audit::API_REFUSED,
                    &peer.to_string(),
                    "the peer holds its maximum of connections",
                );
                drop(stream);
                continue;
            }
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    metrics.api_connections.fetch_add(1, Ordering::Relaxed);
                    let conn = LimitedStream {
                        inner: stream,
                        _permit: permit,
                        metrics: metrics.clone(),
                        peer,
                        peers: peers.clone(),
                        preface_left: PREFACE_LEN,
                        preface_deadline: Box::pin(tokio::time::sleep(limits.preface_timeout)),
                    };
                    if tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    {
                        let mut p = peers.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(n) = p.get_mut(&peer) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                p.remove(&peer);
                            }
                        }
                    }
                    metrics
                        .api_connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        max = limits.max_connections,
                        "connection refused: the API holds its maximum of connections"
                    );
                    audit.refused(
                        crate::audit::API_REFUSED,
                        &peer.to_string(),
                        "the API holds its maximum of connections",
                    );
                    drop(stream);
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_and_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let limits = ListenerLimits {
            max_connections: 2,
            max_per_peer: 10,
            preface_timeout: Duration::from_secs(60),
        };
        let mut incoming = limited_incoming(listener, limits, metrics.clone(), Default::default());
        let c1 = TcpStream::connect(addr).await.unwrap();
        let s1 = incoming.next().await.unwrap().unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let _s2 = incoming.next().await.unwrap().unwrap();
        assert_eq!(metrics.api_connections.load(Ordering::Relaxed), 2);
        // The third is accepted and closed at once: the client reads end of stream.
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c3.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(metrics.api_connections_refused.load(Ordering::Relaxed), 1);
        // When one closes, a new connection is admitted.
        drop(s1);
        drop(c1);
        assert_eq!(metrics.api_connections.load(Ordering::Relaxed), 1);
        let _c4 = TcpStream::connect(addr).await.unwrap();
        let s4 = tokio::time::timeout(std::time::Duration::from_secs(5), incoming.next())
            .await
            .unwrap();
        assert!(matches!(s4, Some(Ok(_))));
        assert_eq!(metrics.api_connections.load(Ordering::Relaxed), 2);
        assert_eq!(metrics.api_connections_refused.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn one_peer_cannot_take_every_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let limits = ListenerLimits {
            max_connections: 10,
            max_per_peer: 2,
            preface_timeout: Duration::from_secs(60),
        };
        let mut incoming = limited_incoming(listener, limits, metrics.clone(), Default::default());
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _s1 = incoming.next().await.unwrap().unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let s2 = incoming.next().await.unwrap().unwrap();
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c3.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the third connection from one peer is closed");
        assert_eq!(metrics.api_connections_refused.load(Ordering::Relaxed), 1);
        drop(s2);
        let _c4 = TcpStream::connect(addr).await.unwrap();
        let s4 = tokio::time::timeout(Duration::from_secs(5), incoming.next())
            .await
            .unwrap();
        assert!(matches!(s4, Some(Ok(_))));
    }

    #[tokio::test]
    async fn a_connection_without_a_preface_is_closed() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let limits = ListenerLimits {
            max_connections: 10,
            max_per_peer: 10,
            preface_timeout: Duration::from_millis(200),
        };
        let mut incoming = limited_incoming(listener, limits, metrics.clone(), Default::default());
        // Silent: the server's read fails once the timeout has passed.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let mut s = incoming.next().await.unwrap().unwrap();
        let mut buf = [0u8; 64];
        let e = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // Half a preface, then silence: the same.
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let mut s = incoming.next().await.unwrap().unwrap();
        let mut got = 0;
        let e = loop {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .unwrap()
            {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 14);
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // A whole preface in time: reads go on past the deadline.
        let mut ok = TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut s = incoming.next().await.unwrap().unwrap();
        let mut got = 0;
        while got < PREFACE_LEN {
            got += s.read(&mut buf).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        ok.write_all(b"x").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(n, 1);
    }
}
