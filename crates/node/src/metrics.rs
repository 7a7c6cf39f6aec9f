//! Prometheus metrics: counters and gauges in atomics, rendered in the text exposition format
//! by a small HTTP endpoint (`GET /metrics`) on the metrics address.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A sum and count of durations (a Prometheus summary without quantiles).
#[derive(Debug, Default)]
pub struct Timer {
    micros: AtomicU64,
    count: AtomicU64,
}

impl Timer {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let sum = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} summary");
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Tip height.
    pub height: AtomicU64,
    /// The highest height seen from peers (what a syncing node catches up to; a node that
    /// joined from a snapshot shows its progress as `gmchain_height` against it).
    pub sync_target: AtomicU64,
    /// The lowest height whose blocks this node holds (a snapshot's base, or the pruning mark).
    pub lowest_held: AtomicU64,
    /// 1 while a node initialised from a snapshot has committed no block after its base:
    /// nothing but the snapshot's own certificate vouches for its state yet.
    pub snapshot_unconfirmed: AtomicU64,
    /// Transactions waiting in the pool.
    pub pool_size: AtomicU64,
    /// Blocks committed since start.
    pub blocks_committed: AtomicU64,
    /// Consensus signatures the validator key made (precommits; later proposals and
    /// prevotes): the HSM signs these, never anything per transaction.
    pub hsm_signatures: AtomicU64,
    /// Transactions committed since start.
    pub txs_committed: AtomicU64,
    /// Times the consensus loop woke (an event or a deadline): about ten a second when idle.
    pub consensus_wakeups: AtomicU64,
    /// Transactions admitted since start.
    pub txs_admitted: AtomicU64,
    /// Batch submissions answered since start, and the transactions they carried.
    pub batches: AtomicU64,
    pub batch_txs: AtomicU64,
    /// Committed transactions per second over the last block interval window.
    pub tx_rate_milli: AtomicU64,
    /// RocksDB WAL syncs since the store was opened.
    pub wal_syncs: AtomicU64,
    /// Transaction signatures admission did not verify again: this node had verified the
    /// same signed transaction with the same certificate (gossip, then the block).
    pub signature_cache_hits: AtomicU64,
    /// Admission time per transaction (signature, chain, checks).
    pub verify: Timer,
    /// Time to execute a block.
    pub execute: Timer,
    /// Time to write and sync a block.
    pub commit: Timer,
    /// Open API connections.
    pub api_connections: AtomicU64,
    /// API connections closed on accept because the limit was reached.
    pub api_connections_refused: AtomicU64,
    /// Open `SubscribeBlocks` streams.
    pub subscriptions: AtomicU64,
    /// `SubscribeBlocks` calls refused because the limit was reached.
    pub subscriptions_refused: AtomicU64,
    /// The configured limits, reported beside their use.
    pub limits: ApiLimitsGauge,
    /// Mutual-TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// Mutual-TLS handshakes that failed (refused certificate, no common algorithm, timeout).
    pub tls_handshake_failures: AtomicU64,
    /// Open TLS sessions of authenticated peers.
    pub tls_sessions: AtomicU64,
    /// Live sessions cut because the peer's certificate was revoked, suspended or expired.
    pub tls_sessions_cut: AtomicU64,
    /// The last second of the node's own TLS certificate (0 before the listener starts).
    pub tls_certificate_not_after: AtomicU64,
    /// 1 while the node's own TLS certificate expires within 30 days (or has expired).
    pub tls_certificate_expiring: AtomicU64,
    /// The earliest expiry (Unix seconds) among the certificates of the next height's
    /// validators.
    pub validator_certificate_not_after: AtomicU64,
    /// How many validators of the next height have a certificate that expires within 30 days
    /// (or has expired): expiry never removes them; rotate them by governance.
    pub validators_expiring: AtomicU64,
    /// Lookups of the executor's compiled-module cache that found the module compiled.
    pub contract_module_cache_hits: AtomicU64,
    /// Lookups that did not (the module was loaded from the state and compiled).
    pub contract_module_cache_misses: AtomicU64,
    /// Fuel used by the committed transactions (those naming a fuel limit) since start.
    pub contract_fuel_used: AtomicU64,
    /// Read-only contract queries served since start.
    pub contract_queries: AtomicU64,
    /// The smallest free figure of the filesystems the node writes to, at the last good
    /// reading (`crate::disk`).
    pub storage_free_bytes: AtomicU64,
    /// `statvfs` calls of the free-space guard that failed (each counts the node as low).
    pub storage_stat_errors: AtomicU64,
    /// 1 while the free space is below `[storage] min_free_mib` (and until it is back above
    /// the resume margin): the node admits, proposes, votes and commits nothing.
    pub storage_low: AtomicU64,
    /// 1 while the store's restore marker holds this validator to following
    /// (`crate::restored`).
    pub restore_guard: AtomicU64,
    /// The highest height the network was learned to have reached, while guarded.
    pub restore_guard_height: AtomicU64,
    /// `[storage] min_free_mib`, in bytes.
    pub storage_min_free_bytes: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Watch-rule alerts raised, by rule (`crate::watch`).
    watch_alerts: Mutex<BTreeMap<String, u64>>,
    /// Events the watch rules counted under their overflow subject (a rule at its cap of
    /// tracked subjects).
    pub watch_untracked: AtomicU64,
    /// The p2p links' counters, once the consensus links run.
    pub p2p: std::sync::OnceLock<p2p::StatsView>,
    /// The node's audit log, once opened (its failure and drop counters).
    pub audit: std::sync::OnceLock<crate::audit::NodeAudit>,
}

/// The API limits in force, as gauges.
#[derive(Debug, Default)]
pub struct ApiLimitsGauge {
    /// `api.max_connections`.
    pub max_connections: AtomicU64,
    /// `api.max_streams_per_connection`.
    pub max_streams_per_connection: AtomicU64,
    /// `api.max_subscriptions`.
    pub max_subscriptions: AtomicU64,
    /// The submission service's decode limit in bytes.
    pub max_submit_message: AtomicU64,
}

impl Metrics {
    /// Counts a batch submission of `txs` transactions.
    pub fn batch_submitted(&self, txs: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_txs.fetch_add(txs as u64, Ordering::Relaxed);
    }

    /// Counts a refused transaction under its code.
    pub fn rejected(&self, code: &'static str) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    /// Shows the watch rule `rule`'s alert counter (at 0 until it fires).
    pub fn watch_rule(&self, rule: &str) {
        if let Ok(mut m) = self.watch_alerts.lock() {
            m.entry(rule.to_string()).or_default();
        }
    }

    /// Counts an alert of the watch rule `rule`.
    pub fn watch_alert(&self, rule: &str) {
        if let Ok(mut m) = self.watch_alerts.lock() {
            *m.entry(rule.to_string()).or_default() += 1;
        }
    }

    /// Returns the alerts counted for the watch rule `rule`.
    pub fn watch_alerts(&self, rule: &str) -> u64 {
        self.watch_alerts
            .lock()
            .ok()
            .and_then(|m| m.get(rule).copied())
            .unwrap_or(0)
    }

    /// Renders the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {v}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        gauge(
            &mut out,
            "gmchain_height",
            "Height of the last committed block.",
            "gauge",
            load(&self.height),
        );
        gauge(
            &mut out,
            "gmchain_sync_target_height",
            "Highest height seen from peers: the height a syncing node catches up to.",
            "gauge",
            load(&self.sync_target),
        );
        gauge(
            &mut out,
            "gmchain_lowest_held_height",
            "Lowest height whose blocks and receipts this node holds (0 on an archive node).",
            "gauge",
            load(&self.lowest_held),
        );
        gauge(
            &mut out,
            "gmchain_snapshot_unconfirmed",
            "1 while a node initialised from a snapshot has committed no block after its base (a certified block linking to the base confirms it); 0 otherwise.",
            "gauge",
            load(&self.snapshot_unconfirmed),
        );
        gauge(
            &mut out,
            "gmchain_pool_size",
            "Transactions waiting in the pool.",
            "gauge",
            load(&self.pool_size),
        );
        gauge(
            &mut out,
            "gmchain_blocks_committed_total",
            "Blocks committed since the node started.",
            "counter",
            load(&self.blocks_committed),
        );
        gauge(
            &mut out,
            "gmchain_consensus_wakeups_total",
            "Times the consensus loop woke for an event or a deadline since the node started.",
            "counter",
            load(&self.consensus_wakeups),
        );
        gauge(
            &mut out,
            "gmchain_consensus_signatures_total",
            "Votes and proposals the validator key signed in its token since the node started.",
            "counter",
            load(&self.hsm_signatures),
        );
        gauge(
            &mut out,
            "gmchain_txs_committed_total",
            "Transactions committed since the node started.",
            "counter",
            load(&self.txs_committed),
        );
        gauge(
            &mut out,
            "gmchain_txs_admitted_total",
            "Transactions admitted to the pool since the node started.",
            "counter",
            load(&self.txs_admitted),
        );
        gauge(
            &mut out,
            "gmchain_batches_total",
            "Batch submissions (Batch.SubmitTransactions) answered since the node started.",
            "counter",
            load(&self.batches),
        );
        gauge(
            &mut out,
            "gmchain_batch_txs_total",
            "Transactions the batch submissions carried (admitted or refused).",
            "counter",
            load(&self.batch_txs),
        );
        gauge(
            &mut out,
            "gmchain_tx_per_second",
            "Committed transactions per second over the last few seconds.",
            "gauge",
            format!(
                "{}",
                self.tx_rate_milli.load(Ordering::Relaxed) as f64 / 1000.0
            ),
        );
        gauge(
            &mut out,
            "gmchain_rocksdb_wal_syncs_total",
            "RocksDB WAL syncs since the store was opened (rocksdb.wal.synced).",
            "counter",
            load(&self.wal_syncs),
        );
        gauge(
            &mut out,
            "gmchain_signature_cache_hits_total",
            "Transaction signatures not verified again because this node had verified the same signed transaction with the same certificate.",
            "counter",
            load(&self.signature_cache_hits),
        );
        for (name, help, kind, v) in [
            (
                "gmchain_api_connections",
                "Open API connections.",
                "gauge",
                &self.api_connections,
            ),
            (
                "gmchain_api_connections_refused_total",
                "API connections closed on accept: api.max_connections reached.",
                "counter",
                &self.api_connections_refused,
            ),
            (
                "gmchain_api_subscriptions",
                "Open SubscribeBlocks streams.",
                "gauge",
                &self.subscriptions,
            ),
            (
                "gmchain_api_subscriptions_refused_total",
                "SubscribeBlocks calls refused: api.max_subscriptions reached.",
                "counter",
                &self.subscriptions_refused,
            ),
            (
                "gmchain_tls_handshakes_total",
                "Mutual GM TLS handshakes completed on the API listener.",
                "counter",
                &self.tls_handshakes,
            ),
            (
                "gmchain_tls_handshake_failures_total",
                "Mutual GM TLS handshakes that failed (certificate refused, no RFC 8998 suite, timeout).",
                "counter",
                &self.tls_handshake_failures,
            ),
            (
                "gmchain_tls_sessions",
                "Open TLS sessions of authenticated peers.",
                "gauge",
                &self.tls_sessions,
            ),
            (
                "gmchain_tls_sessions_cut_total",
                "Live TLS sessions cut because the peer's certificate was revoked, suspended or expired.",
                "counter",
                &self.tls_sessions_cut,
            ),
            (
                "gmchain_tls_certificate_not_after_seconds",
                "Expiry (Unix seconds) of the node's own TLS certificate; a warning is logged from 30 days before.",
                "gauge",
                &self.tls_certificate_not_after,
            ),
            (
                "gmchain_tls_certificate_expiring",
                "1 while the node's own TLS certificate expires within 30 days (or has expired): renew it and send SIGHUP.",
                "gauge",
                &self.tls_certificate_expiring,
            ),
            (
                "gmchain_validator_certificate_not_after_seconds",
                "Earliest expiry (Unix seconds) among the certificates of the next height's validators.",
                "gauge",
                &self.validator_certificate_not_after,
            ),
            (
                "gmchain_validators_expiring",
                "Validators of the next height whose certificate expires within 30 days or has expired; expiry never shrinks the set: rotate them by a governance proposal.",
                "gauge",
                &self.validators_expiring,
            ),
            (
                "gmchain_contract_module_cache_hits_total",
                "Compiled-module cache lookups of the WASM runtime that found the module (blocks, proposals and queries) since the node started.",
                "counter",
                &self.contract_module_cache_hits,
            ),
            (
                "gmchain_contract_module_cache_misses_total",
                "Compiled-module cache lookups that did not: the module was read from the state, validated and compiled.",
                "counter",
                &self.contract_module_cache_misses,
            ),
            (
                "gmchain_contract_fuel_used_total",
                "Fuel used by the committed transactions that name a fuel limit (version 2), failed ones included, since the node started.",
                "counter",
                &self.contract_fuel_used,
            ),
            (
                "gmchain_contract_queries_total",
                "Read-only contract queries (QueryContract) served, failed ones included, since the node started.",
                "counter",
                &self.contract_queries,
            ),
            (
                "gmchain_storage_free_bytes",
                "Free bytes (for an unprivileged user) on the fullest of the filesystems the node writes to (data directory, store, blob store), read every 500 ms and before each write; after a failed reading, the last good figure.",
                "gauge",
                &self.storage_free_bytes,
            ),
            (
                "gmchain_storage_stat_errors_total",
                "Readings of the free space (statvfs) that failed since the node started; while one fails the node counts as low (docs/ops/disk.md).",
                "counter",
                &self.storage_stat_errors,
            ),
            (
                "gmchain_storage_low",
                "1 while the free space is below storage.min_free_mib (until it is back above min_free_mib + resume_margin_mib): the node admits no transaction and neither proposes, votes nor commits (docs/ops/disk.md).",
                "gauge",
                &self.storage_low,
            ),
            (
                "gmchain_restore_guard",
                "1 while this validator, restored from a backup or a snapshot, signs nothing until the chain has passed the height the network had reached (docs/ops/backup.md); a chain that needs it for a quorum stays halted until an operator runs `gmchain node release-guard`.",
                "gauge",
                &self.restore_guard,
            ),
            (
                "gmchain_restore_guard_height",
                "While gmchain_restore_guard is 1: the highest height the peers showed the network at (this validator signs again after committing it).",
                "gauge",
                &self.restore_guard_height,
            ),
            (
                "gmchain_storage_min_free_bytes",
                "Configured storage.min_free_mib, in bytes.",
                "gauge",
                &self.storage_min_free_bytes,
            ),
            (
                "gmchain_api_max_connections",
                "Configured api.max_connections.",
                "gauge",
                &self.limits.max_connections,
            ),
            (
                "gmchain_api_max_streams_per_connection",
                "Configured api.max_streams_per_connection (HTTP/2 concurrent streams).",
                "gauge",
                &self.limits.max_streams_per_connection,
            ),
            (
                "gmchain_api_max_subscriptions",
                "Configured api.max_subscriptions.",
                "gauge",
                &self.limits.max_subscriptions,
            ),
            (
                "gmchain_api_max_submit_message_bytes",
                "Largest gRPC message the transaction service decodes (max_tx_size plus framing).",
                "gauge",
                &self.limits.max_submit_message,
            ),
        ] {
            gauge(&mut out, name, help, kind, load(v));
        }
        self.verify.render(
            &mut out,
            "gmchain_tx_verify_seconds",
            "Admission time per transaction.",
        );
        self.execute.render(
            &mut out,
            "gmchain_block_execute_seconds",
            "Time to execute a block.",
        );
        self.commit.render(
            &mut out,
            "gmchain_block_commit_seconds",
            "Time to write and sync a block.",
        );
        if let Some(stats) = self.p2p.get().and_then(|v| v.stats()) {
            render_p2p(&mut out, &stats);
        }
        let _ = writeln!(
            out,
            "# HELP gmchain_txs_rejected_total Transactions refused, by code."
        );
        let _ = writeln!(out, "# TYPE gmchain_txs_rejected_total counter");
        if let Ok(m) = self.rejected.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(out, "gmchain_txs_rejected_total{{code=\"{code}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP gmchain_watch_alerts_total Watch-rule alerts raised, by rule."
        );
        let _ = writeln!(out, "# TYPE gmchain_watch_alerts_total counter");
        if let Ok(m) = self.watch_alerts.lock() {
            // Rule names are [a-z0-9_-] (the configuration refuses others): no escaping.
            for (rule, n) in m.iter() {
                let _ = writeln!(out, "gmchain_watch_alerts_total{{rule=\"{rule}\"}} {n}");
            }
        }
        gauge(
            &mut out,
            "gmchain_watch_untracked_events_total",
            "Events watch rules counted under their overflow subject, at their cap of tracked subjects.",
            "counter",
            load(&self.watch_untracked),
        );
        if let Some(audit) = self.audit.get() {
            gauge(
                &mut out,
                "gmchain_audit_log_failures_total",
                "Audit-log entries the disk refused (the log fails open and counts them).",
                "counter",
                audit.failures().to_string(),
            );
            gauge(
                &mut out,
                "gmchain_audit_log_dropped_total",
                "Audit-log entries dropped on a full queue (an entries-dropped entry counts them in the log).",
                "counter",
                audit.dropped().to_string(),
            );
        }
        out
    }
}

/// The p2p links' counters (monotonic since the links started, except the link count).
fn render_p2p(out: &mut String, s: &p2p::Stats) {
    let head = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    head(
        out,
        "gmchain_p2p_links",
        "Live p2p links to other nodes.",
        "gauge",
    );
    let _ = writeln!(out, "gmchain_p2p_links {}", s.links);
    for (name, help, v) in [
        (
            "gmchain_p2p_frames_received_total",
            "Gossip and sync frames received (control frames excluded).",
            s.frames_in,
        ),
        (
            "gmchain_p2p_frames_sent_total",
            "Gossip and sync frames written (control frames excluded).",
            s.frames_out,
        ),
        (
            "gmchain_p2p_bytes_received_total",
            "Bytes of the frames received, headers included (control frames excluded).",
            s.bytes_in,
        ),
        (
            "gmchain_p2p_bytes_sent_total",
            "Bytes of the frames written, headers included (control frames excluded).",
            s.bytes_out,
        ),
        (
            "gmchain_p2p_control_frames_received_total",
            "Control frames received (hellos, keep-alives, link-states, announces, wants).",
            s.control_in,
        ),
        (
            "gmchain_p2p_duplicates_total",
            "Gossip frames received again and ignored.",
            s.duplicates,
        ),
        (
            "gmchain_p2p_relayed_total",
            "Gossip frames queued to other peers on receipt.",
            s.relayed,
        ),
        (
            "gmchain_p2p_relays_announced_total",
            "Relays replaced by an announce of the message id (the peer had it from its sender).",
            s.relays_announced,
        ),
        (
            "gmchain_p2p_announces_sent_total",
            "Message ids announced to peers.",
            s.announces_out,
        ),
        (
            "gmchain_p2p_announces_received_total",
            "Message ids announced by peers.",
            s.announces_in,
        ),
        (
            "gmchain_p2p_wants_sent_total",
            "Message ids asked of peers.",
            s.wants_out,
        ),
        (
            "gmchain_p2p_wants_received_total",
            "Message ids peers asked for.",
            s.wants_in,
        ),
        (
            "gmchain_p2p_fetched_total",
            "Messages that arrived after this node asked for them.",
            s.fetched,
        ),
        (
            "gmchain_p2p_served_total",
            "Messages sent to a peer in answer to its want.",
            s.served,
        ),
        (
            "gmchain_p2p_vouched_total",
            "Kept messages vouched for after their signature verified.",
            s.vouched,
        ),
        (
            "gmchain_p2p_wants_dropped_total",
            "Announced ids not wanted or wants not queued: a bound was reached (see docs/ARCHITECTURE.md).",
            s.wants_dropped,
        ),
        (
            "gmchain_p2p_wants_expired_total",
            "Wants given up after recent_keep without the message.",
            s.wants_expired,
        ),
        (
            "gmchain_p2p_announces_not_sent_total",
            "Announces not sent: a link had 8192 ids waiting.",
            s.announces_not_sent,
        ),
        (
            "gmchain_p2p_announcers_ignored_total",
            "Announces of a wanted id not remembered: the want lists the most announcers.",
            s.announcers_ignored,
        ),
        ("gmchain_p2p_dials_total", "Dial attempts.", s.dials),
        (
            "gmchain_p2p_reconnects_total",
            "Links re-established to a dialled peer after its previous link ended.",
            s.reconnects,
        ),
        (
            "gmchain_p2p_refused_total",
            "Peers refused: handshake failed or timed out, wrong name or organisation, not admitted, too many handshakes.",
            s.refused,
        ),
    ] {
        head(out, name, help, "counter");
        let _ = writeln!(out, "{name} {v}");
    }
    let mut labelled = |name: &str, help: &str, label: &str, values: Vec<(String, u64)>| {
        head(out, name, help, "counter");
        for (value, n) in values {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    };
    labelled(
        "gmchain_p2p_links_closed_total",
        "Links closed by this node, by reason.",
        "reason",
        [
            ("oversized", s.oversized),
            ("malformed", s.malformed),
            ("duplicate", s.duplicate_links),
            ("revoked", s.revoked),
            ("idle", s.idle),
        ]
        .map(|(r, n)| (r.to_string(), n))
        .into(),
    );
    let mut by_topic: BTreeMap<u8, (p2p::Topic, u64)> = BTreeMap::new();
    for ((_, topic), n) in &s.dropped {
        by_topic.entry(topic.number()).or_insert((*topic, 0)).1 += n;
    }
    labelled(
        "gmchain_p2p_frames_dropped_total",
        "Frames dropped because a peer's queue was full, by topic.",
        "topic",
        by_topic
            .values()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
    );
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let Ok((mut sock, _)) = accepted else { continue };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                        Ok(Ok(n)) => n,
                        _ => return,
                    };
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if req.starts_with("GET /metrics ") {
                        ("200 OK", metrics.render())
                    } else {
                        ("404 Not Found", "only GET /metrics is served here\n".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The p2p counters render as Prometheus samples: one per counter, the closes by reason,
    /// and the drops summed over peers by topic (named).
    #[test]
    fn p2p_counters_render_with_their_labels() {
        let peer = |b: u8| p2p::PeerId(crypto::Digest([b; 32]));
        let mut s = p2p::Stats {
            links: 3,
            vouched: 7,
            idle: 2,
            ..Default::default()
        };
        s.dropped.insert((peer(1), p2p::Topic::VOTE), 4);
        s.dropped.insert((peer(2), p2p::Topic::VOTE), 5);
        s.dropped.insert((peer(2), p2p::Topic::TRANSACTION), 1);
        let mut out = String::new();
        render_p2p(&mut out, &s);
        for line in [
            "gmchain_p2p_links 3",
            "gmchain_p2p_vouched_total 7",
            "gmchain_p2p_links_closed_total{reason=\"idle\"} 2",
            "gmchain_p2p_links_closed_total{reason=\"revoked\"} 0",
            "gmchain_p2p_frames_dropped_total{topic=\"vote\"} 9",
            "gmchain_p2p_frames_dropped_total{topic=\"transaction\"} 1",
            "# TYPE gmchain_p2p_frames_dropped_total counter",
        ] {
            assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
        }
    }
}
