//! The accept loop of the node's API listener: at most `max_connections` open connections,
//! each holding a permit until it closes; a connection over the limit is accepted and closed at
//! once (counted in `gmchain_api_connections_refused_total`), so a flood of idle connections
//! cannot exhaust the node's file descriptors or memory. HTTP/2 stream and subscription limits
//! sit beside it (`run`, `ChainService`). The TLS listener of the mutual-TLS issue wraps the
//! same [`LimitedStream`]s, so the limits hold there too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::metrics::Metrics;

/// A connection accepted within the limit; the permit is released when it is dropped.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.metrics.api_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
/// `max_connections` at once; the others are closed on accept and counted.
pub fn limited_incoming(
    listener: TcpListener,
    max_connections: usize,
    metrics: Arc<Metrics>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<LimitedStream>> {
    let permits = Arc::new(Semaphore::new(max_connections));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                // The server stopped listening.
                () = tx.closed() => return,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Per-connection errors (a peer that reset before accept, EMFILE): log and
                    // go on; the listener itself stays usable.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    metrics.api_connections.fetch_add(1, Ordering::Relaxed);
                    let conn = LimitedStream {
                        inner: stream,
                        _permit: permit,
                        metrics: metrics.clone(),
                    };
                    if tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    metrics
                        .api_connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        max = max_connections,
                        "connection refused: the API holds its maximum of connections"
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
        let mut incoming = limited_incoming(listener, 2, metrics.clone());
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
}
