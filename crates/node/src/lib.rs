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

pub mod admin;
pub mod audit;
pub mod backup;
pub mod bft;
pub mod config;
pub mod console;
pub mod disk;
mod error;
pub mod exchange;
pub mod health;
pub mod listener;
mod local;
pub mod metrics;
pub mod pool;
pub mod rest;
pub mod restored;
mod service;
pub mod snapshot;
pub mod supervise;
pub mod tls;
pub mod watch;

pub use crate::local::{
    Clock, Engine, Gossip, LocalNode, Validator, init, read_genesis, read_node_genesis,
    write_atomic,
};
pub use config::{
    ApiLimits, ConfigError, ConsensusConfig, LogFormat, Mode, NodeConfig, OrgDefinition,
    PeerConfig, StorageConfig,
};
pub use error::NodeError;
pub use service::{Access, ChainService};

use std::sync::Arc;

/// The gRPC decode limit of the transaction service: one transaction of `max_tx_size` bytes
/// plus the request's framing (field tags, lengths, the wait flag: well under 64 bytes).
pub fn submit_message_limit(max_tx_size: usize) -> usize {
    max_tx_size.saturating_add(64)
}

/// How the node obtains its TLS identity: called at start and again on SIGHUP, so that a
/// renewed certificate (and its key) takes effect without a restart.
pub type TlsSource = Arc<dyn Fn() -> Result<gmtls::Credentials, String> + Send + Sync>;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often live sessions are rechecked besides after every block (expiry, a CRL's update).
const RECHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);
/// The node warns this long before its TLS certificate expires.
pub const EXPIRY_WARNING: u64 = 30 * 86_400;

/// Reads the TLS identity from `source` and checks it against the chain: the certificate
/// must be a node-sign certificate that the chain itself accepts now (a node that presents a
/// certificate its peers refuse would only fail every handshake). Adds the issuing CA when it
/// is a registered organisation's (not in genesis), so clients that trust the root can build
/// the path.
fn tls_identity(
    core: &Arc<LocalNode>,
    source: &TlsSource,
) -> Result<gmtls::Credentials, NodeError> {
    use gmtls::Authority as _;
    let creds = source().map_err(NodeError::Tls)?;
    let leaf = creds.leaf().clone();
    let authority = tls::ChainAuthority::new(core.clone(), gmtls::LINK_ROLES);
    authority
        .authenticate(&leaf, &[], core.now())
        .map_err(|r| {
            NodeError::Tls(format!(
                "the node's TLS certificate {} is refused by its own chain: {}",
                leaf.subject(),
                r.detail
            ))
        })?;
    let mut chain = creds.chain().to_vec();
    if chain.len() == 1
        && let Some(ca) = core.registered_issuer(&leaf)
    {
        chain.push(ca);
        return gmtls::Credentials::new(chain, creds.signer())
            .map_err(|e| NodeError::Tls(e.to_string()));
    }
    Ok(creds)
}

/// Publishes the certificate's expiry and warns from [`EXPIRY_WARNING`] before it.
fn watch_expiry(core: &LocalNode, leaf: &pki::Certificate) {
    use std::sync::atomic::Ordering::Relaxed;
    let not_after = leaf.validity().not_after.0;
    let now = core.now().0;
    core.metrics
        .tls_certificate_not_after
        .store(not_after, Relaxed);
    let expiring = not_after.saturating_sub(now) <= EXPIRY_WARNING;
    core.metrics
        .tls_certificate_expiring
        .store(u64::from(expiring), Relaxed);
    if expiring {
        tracing::warn!(
            certificate = %leaf.subject(),
            days_left = not_after.saturating_sub(now) / 86_400,
            "the node's TLS certificate expires within 30 days: renew it and send SIGHUP"
        );
    }
}

/// Runs the node until SIGTERM or SIGINT: binds the API (mutual GM TLS), metrics and, if
/// configured, public read-only addresses, starts the producer thread and serves. SIGHUP
/// reloads the TLS certificate. On a signal it stops accepting requests, lets the producer
/// commit what the pool holds, and returns.
pub async fn run(
    config: &NodeConfig,
    core: Arc<LocalNode>,
    tls_source: TlsSource,
    custodian: Option<Arc<exchange::Custodian>>,
) -> Result<(), NodeError> {
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Listen { addr, source })
    };
    let grpc = bind(config.listen).await?;
    let metrics_listener = bind(config.metrics_listen).await?;
    let public = match config.public_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let rest_listener = match config.rest.listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    core.set_watcher(Arc::new(watch::Watcher::new(
        &config.watch,
        core.metrics.clone(),
    )));
    let creds = tls_identity(&core, &tls_source)?;
    watch_expiry(&core, creds.leaf());
    let server_cert = gmtls::ServerCertificate::new(&creds);
    let clients: Arc<dyn gmtls::Authority> = Arc::new(tls::ChainAuthority::new(
        core.clone(),
        gmtls::API_CLIENT_ROLES,
    ));
    let tls_config = gmtls::server_config(server_cert.clone(), clients.clone(), gmtls::provider())
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    // ALPN: a client naming `http/1.1` (the tunnel for curl and browsers, the conformance
    // probe) is served HTTP/1.1; every other connection HTTP/2 only, where the node speaks first
    // (the clients' connection check waits for that).
    let tls_config = {
        let mut c = (*tls_config).clone();
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(c)
    };
    // The free-space guard, before anything that writes starts (docs/ops/disk.md).
    let disk = Arc::new(disk::DiskGuard::new(
        &config.storage_paths(),
        config.storage,
        core.metrics.clone(),
        core.audit().clone(),
    )?);
    core.set_disk(disk.clone());
    // Stopped when `run` returns (dropped).
    let _disk_monitor = disk.spawn_monitor()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // The control channel (`gmchain node backup`). A node that cannot make it (a data
    // directory path longer than a socket address takes, say) still decides blocks: it says
    // so, and `gmchain node backup` then reports NODE_ADMIN_UNREACHABLE.
    let admin_task = match admin::bind(&config.data_dir) {
        Ok((listener, path)) => Some(tokio::spawn(admin::serve(
            listener,
            path,
            Arc::new(admin::Admin::new(
                core.clone(),
                config.genesis_path(),
                custodian.as_ref().map(|c| c.blobs().clone()),
            )),
            stop_rx.clone(),
        ))),
        Err(e) => {
            tracing::error!("no admin socket, so no online backup: {e}");
            None
        }
    };
    // The engine: the single-validator producer, or BFT consensus over p2p links.
    let producer = match (&config.consensus, core.engine()) {
        (None, Engine::Single) => {
            let producer_core = core.clone();
            let producer_stop = stop_tx.clone();
            Some(
                std::thread::Builder::new()
                    .name("producer".into())
                    .spawn(move || {
                        let r = producer_core.run_producer();
                        if let Err(e) = &r {
                            // Fail-stop: a validator that cannot store or seal blocks stops
                            // serving.
                            tracing::error!("block production failed: {e}; stopping the node");
                            let _ = producer_stop.send(true);
                        }
                        r
                    })
                    .map_err(|e| {
                        NodeError::Server(format!("cannot start the producer thread: {e}"))
                    })?,
            )
        }
        _ => None,
    };
    let bft = match &config.consensus {
        Some(cc) => {
            let fail_stop = stop_tx.clone();
            Some(
                bft::start_with_links(
                    core.clone(),
                    cc,
                    &creds,
                    server_cert.clone(),
                    Box::new(move || {
                        let _ = fail_stop.send(true);
                    }),
                )
                .await?,
            )
        }
        None => None,
    };
    if let Some((_, net)) = &bft {
        let _ = core.metrics.p2p.set(net.stats_view());
    }
    let metrics_task = tokio::spawn(metrics::serve(
        metrics_listener,
        core.metrics.clone(),
        stop_rx.clone(),
    ));
    let sessions = Arc::new(tls::Sessions::default());
    let recheck_task = tokio::spawn(tls::recheck_sessions(
        core.clone(),
        clients.clone(),
        sessions.clone(),
        RECHECK_PERIOD,
        stop_rx.clone(),
    ));
    // The audit log's head, anchored on the chain now and then (docs/audit.md §6).
    let anchor_task = config.audit.anchor_interval.map(|every| {
        tokio::spawn(supervise::anchor_log_heads(
            core.clone(),
            every,
            stop_rx.clone(),
        ))
    });
    // SIGHUP: the renewed certificate (and its key) for the next handshakes; the daily
    // expiry check rides on the same task.
    let reload_task = {
        let (core, server_cert, tls_source, mut stop) = (
            core.clone(),
            server_cert.clone(),
            tls_source.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("SIGHUP reload unavailable: {e}");
                        return;
                    }
                };
            let mut daily = tokio::time::interval(std::time::Duration::from_secs(86_400));
            daily.tick().await;
            loop {
                #[cfg(unix)]
                let reload = tokio::select! {
                    _ = hup.recv() => true,
                    _ = daily.tick() => false,
                    _ = stop.changed() => return,
                };
                #[cfg(not(unix))]
                let reload = tokio::select! {
                    _ = daily.tick() => false,
                    _ = stop.changed() => return,
                };
                if reload {
                    let c = core.clone();
                    let s = tls_source.clone();
                    match tokio::task::spawn_blocking(move || tls_identity(&c, &s)).await {
                        Ok(Ok(creds)) => {
                            server_cert.replace(&creds);
                            tracing::info!(
                                certificate = %creds.leaf().subject(),
                                serial = %creds.leaf().serial(),
                                "TLS certificate reloaded"
                            );
                        }
                        Ok(Err(e)) => {
                            tracing::error!("TLS certificate not reloaded, the old one stays: {e}")
                        }
                        Err(e) => tracing::error!("TLS certificate not reloaded: {e}"),
                    }
                }
                watch_expiry(&core, &server_cert.leaf());
            }
        })
    };
    tracing::info!(
        grpc = %config.listen,
        metrics = %config.metrics_listen,
        public = ?config.public_listen,
        rest = ?config.rest.listen,
        chain = %core.genesis().chain_id,
        tls = %creds.leaf().subject(),
        "node started (API: mutual GM TLS 1.3, RFC 8998)"
    );
    // The transaction service decodes at most one transaction and its framing: the largest
    // max_tx_size the chain's parameters may take (governance may raise it up to the ceiling
    // while the node runs), never the 4 MiB default (docs/execution.md, "API limits");
    // admission refuses what exceeds the max_tx_size in force.
    let limits = config.api_limits;
    let submit_limit = submit_message_limit(types::Limits::default().max_tx_size);
    let m = &core.metrics.limits;
    use std::sync::atomic::Ordering::Relaxed;
    m.max_connections
        .store(limits.max_connections as u64, Relaxed);
    m.max_streams_per_connection
        .store(u64::from(limits.max_streams_per_connection), Relaxed);
    m.max_subscriptions
        .store(limits.max_subscriptions as u64, Relaxed);
    m.max_submit_message.store(submit_limit as u64, Relaxed);
    let listener_limits = listener::ListenerLimits {
        max_connections: limits.max_connections,
        max_per_peer: limits.max_connections_per_peer,
        preface_timeout: std::time::Duration::from_secs(10),
    };
    let builder = || {
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(limits.max_streams_per_connection))
            // Peers that stop answering pings are cut, freeing their connection slot.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
    };
    let service = |access| {
        api::v1::chain_server::ChainServer::new(ChainService::new(core.clone(), &limits, access))
            .max_decoding_message_size(submit_limit)
    };
    // The batch submission beside it, sharing its admission slots, with its own message
    // limit (api.max_batch_bytes).
    let batch_gate = service::BatchGate::new();
    let services = |access| {
        let chain = ChainService::new(core.clone(), &limits, access);
        (
            api::v1::chain_server::ChainServer::new(chain.clone())
                .max_decoding_message_size(submit_limit),
            service::BatchSlots::new(
                api::v1::batch_server::BatchServer::new(chain)
                    .max_decoding_message_size(limits.max_batch_bytes),
                batch_gate.clone(),
            ),
        )
    };
    let incoming = tls::tls_incoming(
        listener::limited_incoming(
            grpc,
            listener_limits,
            core.metrics.clone(),
            core.audit().clone(),
        ),
        tls_config,
        clients,
        sessions,
        core.metrics.clone(),
        HANDSHAKE_TIMEOUT,
        core.audit().clone(),
    );
    let mut stop_signal = stop_rx.clone();
    // The Exchange service has its own message limit (a payload chunk and its framing) and
    // is served to members only: its reads show requests and fetch logs, its fetches need a
    // certificate identity.
    let exchange_service = || {
        api::v1::exchange_server::ExchangeServer::new(exchange::ExchangeService::new(
            core.clone(),
            custodian.clone(),
        ))
        .max_decoding_message_size(exchange::MESSAGE_LIMIT)
        .max_encoding_message_size(exchange::MESSAGE_LIMIT)
    };
    // The Supervision service: auditors of the supervising organisation only (each call is
    // judged against the tip's state); on the plain REST listener it finds no auditor.
    let supervision_service = || {
        api::v1::supervision_server::SupervisionServer::new(supervise::SupervisionService::new(
            core.clone(),
        ))
    };
    // REST beside gRPC on every listener that serves it (docs/rest.md): the gateway calls the
    // same services in process.
    let genesis_file = std::fs::read(config.genesis_path()).map_err(|e| {
        NodeError::Server(format!(
            "cannot read {} for GET /v1/genesis: {e}",
            config.genesis_path().display()
        ))
    })?;
    let genesis_file = bytes::Bytes::from(genesis_file);
    let upload_limit = config
        .exchange
        .as_ref()
        .map(|x| x.max_blob_bytes)
        .unwrap_or(exchange::MESSAGE_LIMIT as u64);
    let expected_peers = config.consensus.as_ref().map_or(0, |c| c.peers.len());
    let rest_facts = rest::NodeFacts {
        config: config.rest.clone(),
        core: core.clone(),
        genesis: genesis_file,
        submit_message_limit: submit_limit,
        batch_message_limit: limits.max_batch_bytes,
        batch_gate: batch_gate.clone(),
        upload_limit,
        expected_peers,
        health: Arc::default(),
    };
    let rest_router =
        |grpc: axum::Router, listener: rest::Listener| rest::router(grpc, listener, &rest_facts);
    let tls_routes = rest_router(
        rest::grpc_router(
            services(Access::Members),
            exchange_service(),
            supervision_service(),
        ),
        rest::Listener::Tls,
    );
    let (h1_tx, h1_rx) = tokio::sync::mpsc::channel(16);
    let (h2_tx, h2_rx) = tokio::sync::mpsc::channel(16);
    let split_task = tokio::spawn(async move {
        use tokio_stream::StreamExt as _;
        let mut incoming = incoming;
        while let Some(conn) = incoming.next().await {
            let to = match &conn {
                Ok(s) if s.http1 => &h1_tx,
                _ => &h2_tx,
            };
            if to.send(conn).await.is_err() {
                return;
            }
        }
    });
    let server = builder()
        .add_routes(tonic::service::Routes::from(tls_routes.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(h2_rx),
            async move {
                let _ = stop_signal.changed().await;
            },
        );
    let http1_task = {
        let mut stop_signal = stop_rx.clone();
        tokio::spawn(
            builder()
                .accept_http1(true)
                .add_routes(tonic::service::Routes::from(tls_routes))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::ReceiverStream::new(h1_rx),
                    async move {
                        let _ = stop_signal.changed().await;
                    },
                ),
        )
    };
    let public_task = public.map(|l| {
        let incoming = listener::limited_incoming(
            l,
            listener_limits,
            core.metrics.clone(),
            core.audit().clone(),
        );
        let mut stop_signal = stop_rx.clone();
        tokio::spawn(
            builder()
                .add_service(service(Access::PublicReadOnly))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_signal.changed().await;
                }),
        )
    });
    // The plain REST listener: REST and the console, no gRPC.
    let rest_task = rest_listener.map(|l| {
        let incoming = listener::limited_incoming(
            l,
            listener_limits,
            core.metrics.clone(),
            core.audit().clone(),
        );
        let access = match config.rest.mode {
            rest::RestMode::Gateway => Access::Gateway,
            rest::RestMode::Public => Access::PublicReadOnly,
        };
        let routes = rest_router(
            rest::grpc_router(services(access), exchange_service(), supervision_service()),
            rest::Listener::Plain(config.rest.mode),
        );
        let mut stop_signal = stop_rx.clone();
        tokio::spawn(
            builder()
                .accept_http1(true)
                .add_routes(tonic::service::Routes::from(routes))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_signal.changed().await;
                }),
        )
    });
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
            // Low on space, the pool is not committed before the node stops: its waiting
            // clients are answered now (their requests would hold the server's shutdown for
            // ever), and the producer stops without waiting for space (docs/ops/disk.md).
            if core.answer_waiters_when_stopping_low() > 0 {
                core.stop();
            }
            (&mut server).await.map_err(|e| NodeError::Server(e.to_string()))
        }
    };
    let _ = stop_tx.send(true);
    core.stop();
    if let Some(producer) = producer {
        let produced = tokio::task::spawn_blocking(move || producer.join())
            .await
            .map_err(|e| NodeError::Server(e.to_string()))?;
        match produced {
            Ok(r) => r?,
            Err(_) => return Err(NodeError::Server("the producer thread panicked".into())),
        }
    }
    let mut engine_result = Ok(());
    if let Some((engine, net)) = bft {
        engine_result = tokio::task::spawn_blocking(move || engine.stop())
            .await
            .map_err(|e| NodeError::Server(e.to_string()))?;
        net.shutdown().await;
    }
    let _ = metrics_task.await;
    let _ = recheck_task.await;
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    if let Some(t) = anchor_task {
        let _ = t.await;
    }
    reload_task.abort();
    split_task.abort();
    for (what, task) in [
        ("public", public_task),
        ("REST", rest_task),
        ("HTTP/1.1 API", Some(http1_task)),
    ] {
        if let Some(t) = task {
            match t.await {
                Ok(Err(e)) => tracing::error!("the {what} listener failed: {e}"),
                Err(e) => tracing::error!("the {what} listener failed: {e}"),
                Ok(Ok(())) => {}
            }
        }
    }
    tracing::info!("node stopped");
    result.and(engine_result)
}
