//! The gmchain node: its validated configuration, the transaction pool, single-validator block
//! production (until the BFT issue replaces it), RocksDB storage, the gRPC API and the
//! Prometheus metrics endpoint.
//!
//! # Data flow of a transaction
//!
//! gRPC `SubmitTransaction` → [`LocalNode::submit`] (on the blocking pool: decode under limits,
//! chain id, expiry, duplicate, signer chain and revocation, signature, permissions →
//! `execution::VerifiedTx`) → [`pool::Pool`] → the producer thread takes up to a block of
//! transactions, re-checks revocation, expiry, duplicates and permissions, executes them,
//! signs the header with the validator key (in the token) and commits block, receipts, state
//! nodes, index and seal in one synced RocksDB batch → only then are waiting clients told
//! "committed".
//!
//! # What it refuses to do
//!
//! Run on a store whose tip fails its check or whose block 0 is not its genesis file; seal
//! with a key that is not a genesis validator's; listen beyond loopback unless configured;
//! acknowledge a transaction before its block's write has synced.

pub mod cache;
pub mod config;
mod error;
pub mod listener;
mod local;
pub mod metrics;
pub mod pool;
mod service;

pub use crate::local::{
    Clock, LocalNode, Refusal, Validator, init, read_genesis, read_node_genesis, write_atomic,
};
pub use config::{ApiLimits, ConfigError, LogFormat, Mode, NodeConfig, OrgDefinition};
pub use error::NodeError;
pub use service::ChainService;

use std::sync::Arc;

/// The gRPC decode limit of the transaction service: one transaction of `max_tx_size` bytes
/// plus the request's framing (field tags, lengths, the wait flag: well under 64 bytes).
pub fn submit_message_limit(max_tx_size: usize) -> usize {
    max_tx_size.saturating_add(64)
}

/// Runs the node until SIGTERM or SIGINT: binds the gRPC and metrics addresses, starts the
/// producer thread and serves. On a signal it stops accepting requests, lets the producer
/// commit what the pool holds, and returns.
pub async fn run(config: &NodeConfig, core: Arc<LocalNode>) -> Result<(), NodeError> {
    let grpc = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.metrics_listen,
            source,
        })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let producer_core = core.clone();
    let producer_stop = stop_tx.clone();
    let producer = std::thread::Builder::new()
        .name("producer".into())
        .spawn(move || {
            let r = producer_core.run_producer();
            if let Err(e) = &r {
                // Fail-stop: a validator that cannot store or seal blocks stops serving.
                tracing::error!("block production failed: {e}; stopping the node");
                let _ = producer_stop.send(true);
            }
            r
        })
        .map_err(|e| NodeError::Server(format!("cannot start the producer thread: {e}")))?;
    let metrics_task = tokio::spawn(metrics::serve(
        metrics_listener,
        core.metrics.clone(),
        stop_rx.clone(),
    ));
    tracing::info!(
        grpc = %config.listen,
        metrics = %config.metrics_listen,
        chain = %core.genesis().chain_id,
        "node started"
    );
    let mut shutdown_rx = stop_rx;
    let signal = async move {
        let _ = shutdown_rx.changed().await;
    };
    // The transaction service decodes at most one transaction and its framing: the chain's
    // max_tx_size, never the 4 MiB default (docs/execution.md, "API limits").
    let limits = config.api_limits;
    let submit_limit = submit_message_limit(core.genesis().params.limits().max_tx_size);
    let m = &core.metrics.limits;
    use std::sync::atomic::Ordering::Relaxed;
    m.max_connections
        .store(limits.max_connections as u64, Relaxed);
    m.max_streams_per_connection
        .store(u64::from(limits.max_streams_per_connection), Relaxed);
    m.max_subscriptions
        .store(limits.max_subscriptions as u64, Relaxed);
    m.max_submit_message.store(submit_limit as u64, Relaxed);
    let service = api::v1::chain_server::ChainServer::new(ChainService::new(core.clone(), &limits))
        .max_decoding_message_size(submit_limit);
    let incoming = listener::limited_incoming(
        grpc,
        listener::ListenerLimits {
            max_connections: limits.max_connections,
            max_per_peer: limits.max_connections_per_peer,
            preface_timeout: std::time::Duration::from_secs(10),
        },
        core.metrics.clone(),
    );
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(limits.max_streams_per_connection))
        // Peers that stop answering pings are cut, freeing their connection slot.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, signal);
    let signals = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(|e| NodeError::Server(e.to_string())),
        _ = signals => {
            let _ = stop_tx.send(true);
            (&mut server).await.map_err(|e| NodeError::Server(e.to_string()))
        }
    };
    let _ = stop_tx.send(true);
    core.stop();
    let produced = tokio::task::spawn_blocking(move || producer.join())
        .await
        .map_err(|e| NodeError::Server(e.to_string()))?;
    match produced {
        Ok(r) => r?,
        Err(_) => return Err(NodeError::Server("the producer thread panicked".into())),
    }
    let _ = metrics_task.await;
    tracing::info!("node stopped");
    result
}
