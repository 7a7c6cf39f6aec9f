//! The Supervision service (issue 16, docs/audit.md): the chain's supervisor reads traces from
//! the indexes the executor keeps in the state (`audit/` namespace), with state proofs, and
//! the certified headers a report needs. Only auditors of the supervising organisation (as the
//! tip's state names it) are answered; everyone else gets `NODE_NOT_SUPERVISOR`.
//!
//! A trace is served from the state alone: the subject's counter at the start and at the end
//! of the range, then its entries between them, each one state read — time proportional to the
//! page, not to the chain.

use std::sync::Arc;

use crate::error::NodeError;
use crate::local::LocalNode;
use crate::service::{coded_status, internal, peer_of};
use api::v1::supervision_server::Supervision;
use api::v1::{
    CertifiedHeaderResponse, Freeze, GetCertifiedHeaderRequest, GetSupervisionRequest,
    ProveStateRequest, ProveStateResponse, ProvenValue, SupervisionResponse, TraceRequest,
    TraceResponse, WatchAlert, WatchAlertsRequest,
};
use execution::keys::{self, AUDIT, SUPERVISION};
use execution::{FreezeKind, StateRead, TraceKind};
use pki::Role;
use tonic::{Request, Response, Status};
use types::{Encode, Height};

/// The most entries one trace page holds (each entry: one block's transactions of the subject,
/// at most 256).
pub const MAX_TRACE_PAGE: u32 = 100;
/// The most keys one `ProveState` call proves.
pub const MAX_PROVE_KEYS: usize = 64;
/// The longest key `ProveState` proves, in bytes.
pub const MAX_PROVE_KEY: usize = 1024;
/// The longest subject ID a trace names, in bytes.
pub const MAX_TRACE_ID: usize = 512;

/// One page of a trace.
#[derive(Clone, Debug)]
pub struct TracePage {
    /// The range's first height.
    pub from: Height,
    /// The range's last height.
    pub to: Height,
    /// The subject's counter in the state of `from - 1`.
    pub start_count: u64,
    /// The subject's counter in the state of `to`.
    pub end_count: u64,
    /// The entries of the page: number, canonical bytes, proof under `to`'s state root.
    pub entries: Vec<(u64, Vec<u8>, Option<state::Proof>)>,
    /// The counters' proofs (under `from - 1`'s and `to`'s state roots).
    pub count_proofs: Option<(state::Proof, state::Proof)>,
    /// Whether entries of the range follow the page.
    pub more: bool,
}

/// Why a trace was refused.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The request is not one the index can answer.
    #[error("{0}")]
    Request(String),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<ledger::LedgerError> for TraceError {
    fn from(e: ledger::LedgerError) -> Self {
        TraceError::Node(e.into())
    }
}

impl From<execution::ExecError> for TraceError {
    fn from(e: execution::ExecError) -> Self {
        TraceError::Node(e.into())
    }
}

fn count_of(view: &dyn StateRead, key: &[u8]) -> Result<u64, TraceError> {
    match view.read(key)? {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| TraceError::Node(NodeError::Missing("a trace counter of 8 bytes"))),
    }
}

impl LocalNode {
    /// Returns the heights whose blocks' timestamps fall in `from_ms..=to_ms` (block
    /// timestamps rise with the height), or `None` when no committed block does.
    pub fn heights_in_time(
        &self,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Option<(Height, Height)>, NodeError> {
        let tip = self.tip().0.height.0;
        let stamp = |h: u64| -> Result<u64, NodeError> {
            Ok(self
                .store()
                .header(Height(h))?
                .ok_or(NodeError::Missing("header of a committed height"))?
                .timestamp
                .0)
        };
        // A node initialised from a snapshot holds the headers from its base: a range that
        // may start at or below it (the base's block is not after from_ms) reaches heights
        // whose traces it cannot give (a trace reads the state before its first height).
        let mut first_searched = 1u64;
        if let Some(base) = self.ledger().snapshot_base()? {
            if stamp(base.0)? >= from_ms {
                return Err(NodeError::Pruned {
                    height: base,
                    lowest: Height(base.0 + 1),
                });
            }
            first_searched = base.0 + 1;
        }
        // The first height with a timestamp at or after from_ms.
        let (mut lo, mut hi) = (first_searched, tip.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if stamp(mid)? < from_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let first = lo;
        // The first height with a timestamp after to_ms.
        let (mut lo, mut hi) = (first, tip.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if stamp(mid)? <= to_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo <= first {
            return Ok(None);
        }
        Ok(Some((Height(first), Height(lo - 1))))
    }

    /// Returns a page of the trace of `id` of `kind` over `from..=to` (heights, `from` ≥ 1,
    /// `to` at most the tip): the counters at both ends and the entries numbered from
    /// `start_count + offset`, at most `limit`, with their state proofs when `proofs`.
    #[allow(clippy::too_many_arguments, reason = "a trace request's fields")]
    pub fn trace(
        &self,
        kind: TraceKind,
        id: &str,
        from: Height,
        to: Height,
        offset: u64,
        limit: u32,
        proofs: bool,
    ) -> Result<TracePage, TraceError> {
        let tip = self.tip().0.height;
        kind.check_id(id).map_err(TraceError::Request)?;
        if id.is_empty() || id.len() > MAX_TRACE_ID {
            return Err(TraceError::Request(format!(
                "the subject ID is {} bytes; give 1 to {MAX_TRACE_ID}",
                id.len()
            )));
        }
        if from.0 == 0 || from > to || to > tip {
            return Err(TraceError::Request(format!(
                "range {}..={} is not within 1..={} (the committed heights)",
                from.0, to.0, tip.0
            )));
        }
        let limit = limit.clamp(1, MAX_TRACE_PAGE);
        let count_key = keys::full(AUDIT, &keys::audit::count(kind.as_str(), id));
        let before = Height(from.0 - 1);
        let (start_count, start_proof) =
            self.ledger()
                .with_state_at(before, |v| -> Result<_, TraceError> {
                    let n = count_of(v, &count_key)?;
                    let p = if proofs {
                        Some(v.prove(&count_key)?)
                    } else {
                        None
                    };
                    Ok((n, p))
                })??;
        let page = self
            .ledger()
            .with_state_at(to, |v| -> Result<_, TraceError> {
                let end_count = count_of(v, &count_key)?;
                let end_proof = if proofs {
                    Some(v.prove(&count_key)?)
                } else {
                    None
                };
                let first = start_count.saturating_add(offset);
                let last = end_count.min(first.saturating_add(u64::from(limit)));
                let mut entries = Vec::new();
                for seq in first..last {
                    let key = keys::full(AUDIT, &keys::audit::entry(kind.as_str(), id, seq));
                    let bytes = v
                        .read(&key)?
                        .ok_or(NodeError::Missing("a trace entry below its counter"))?;
                    let proof = if proofs { Some(v.prove(&key)?) } else { None };
                    entries.push((seq, bytes, proof));
                }
                Ok((end_count, end_proof, entries, last < end_count))
            })??;
        let (end_count, end_proof, entries, more) = page;
        if end_count < start_count {
            return Err(TraceError::Node(NodeError::Missing(
                "a trace counter that did not shrink",
            )));
        }
        Ok(TracePage {
            from,
            to,
            start_count,
            end_count,
            entries,
            count_proofs: start_proof.zip(end_proof),
            more,
        })
    }
}

/// The most freezes [`LocalNode::supervision`] looks through (the latest ones) for those in
/// force.
pub const MAX_FREEZES_SCANNED: u64 = 100_000;

impl LocalNode {
    /// The chain's supervisor, its policy, the escrow and the supervisor's freezes in force at
    /// the tip: each target of the chain's list of freezes made (`supervision/freeze-log`, the
    /// last [`MAX_FREEZES_SCANNED`]; by an auditor or by a governance vote) whose freeze record
    /// is still in the state.
    pub fn supervision(&self) -> Result<SupervisionResponse, NodeError> {
        let height = self.tip().0.height;
        let (sup, escrow, logged) = self.with_state(|v| -> Result<_, NodeError> {
            let sup = execution::supervisor(v)?;
            let escrow = execution::data::escrow_recipients(v)?;
            let count_key = keys::full(SUPERVISION, &keys::supervision::freeze_count());
            let n = match v.read(&count_key)? {
                None => 0,
                Some(b) => <[u8; 8]>::try_from(b.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| NodeError::Missing("a freeze counter of 8 bytes"))?,
            };
            let mut logged = Vec::new();
            for seq in n.saturating_sub(MAX_FREEZES_SCANNED)..n {
                let key = keys::full(SUPERVISION, &keys::supervision::freeze_log(seq));
                if let Some(b) = v.read(&key)? {
                    logged.push(String::from_utf8_lossy(&b).into_owned());
                }
            }
            Ok((sup, escrow, logged))
        })??;
        // Each target once, in the order of its first freeze.
        let mut seen = std::collections::HashSet::new();
        let mut targets: Vec<(FreezeKind, String)> = Vec::new();
        for l in logged {
            let Some((kind, target)) = l
                .split_once('/')
                .and_then(|(k, t)| Some((FreezeKind::parse(k)?, t.to_string())))
            else {
                continue;
            };
            if seen.insert(l.clone()) {
                targets.push((kind, target));
            }
        }
        let mut freezes = Vec::new();
        for (kind, target) in targets {
            if let Some(f) =
                self.with_state(|v| execution::supervisor_freeze(v, kind, &target))??
            {
                freezes.push(Freeze {
                    kind: kind.as_str().to_string(),
                    target,
                    reason: f.reason,
                    height: f.height.0,
                    tx_id: f.tx_id.0.to_vec(),
                    by: f.by.0.to_vec(),
                });
            }
        }
        Ok(SupervisionResponse {
            supervisor: sup
                .as_ref()
                .map(|s| s.organisation.clone())
                .unwrap_or_default(),
            freeze_policy: sup
                .map(|s| s.policy.as_str().to_string())
                .unwrap_or_default(),
            freezes,
            height: height.0,
            escrow: escrow.iter().map(|e| e.id.0.to_vec()).collect(),
        })
    }
}

/// Anchors the node's audit-log head on the chain every `every` while it moves: a
/// `supervision.anchor_log` transaction signed with the node's key (its node-sign certificate
/// is the log's signer), submitted to this node's pool. A head once anchored can only grow:
/// a later truncation or rewrite of the log is visible to anyone reading the chain
/// (`gmchain node audit-verify --node`), without the operator's `--expect-head`.
pub async fn anchor_log_heads(
    core: Arc<LocalNode>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The first anchor one interval after the start, not at once.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<u64> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some((seq, head)) = core.audit().head() else {
            continue;
        };
        if last.is_some_and(|l| l >= seq) {
            continue;
        }
        let core2 = core.clone();
        let sent = tokio::task::spawn_blocking(move || submit_anchor(&core2, seq, &head)).await;
        let (id, rx) = match sent {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::warn!(seq, "audit log head not anchored: {e}");
                continue;
            }
            Err(e) => {
                tracing::warn!("audit log anchoring task failed: {e}");
                continue;
            }
        };
        // Counted as anchored only once committed with a successful receipt: a refused or
        // failed anchor (a head behind the one anchored before: a restored log) is said in
        // the log and tried again when the head moves.
        match tokio::time::timeout(every.max(std::time::Duration::from_secs(30)), rx).await {
            Ok(Ok(crate::pool::Outcome::Committed {
                receipt, height, ..
            })) if receipt.status == types::Status::Success => {
                tracing::info!(seq, tx = %id, height = height.0, "audit log head anchored");
                last = Some(seq);
            }
            Ok(Ok(crate::pool::Outcome::Committed { receipt, .. })) => {
                tracing::warn!(seq, tx = %id, status = ?receipt.status, "audit log head anchor failed on the chain");
                core.audit().record(
                    "supervision.anchor-failed",
                    auditlog::Outcome::Refused,
                    &format!("entry {seq}: {:?}", receipt.status),
                );
                last = Some(seq);
            }
            other => {
                tracing::warn!(seq, tx = %id, "audit log head anchor not committed: {other:?}")
            }
        }
    }
}

type Waiting = (
    types::TxId,
    tokio::sync::oneshot::Receiver<crate::pool::Outcome>,
);

fn submit_anchor(core: &LocalNode, seq: u64, head_hex: &str) -> Result<Waiting, String> {
    let head = hex::decode(head_hex)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| format!("the log's head {head_hex:?} is not 32 bytes of hex"))?;
    let (tip, _) = core.tip();
    let window = core
        .ledger()
        .params()
        .map_err(|e| e.to_string())?
        .params
        .expiry_window;
    let me = core.validator();
    let mut seed = seq.to_be_bytes().to_vec();
    seed.extend_from_slice(&core.now_ms().to_be_bytes());
    seed.extend_from_slice(&head);
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&crypto_sm::sm3::sm3(&seed).0[..16]);
    let body = types::Transaction {
        chain_id: core.genesis().chain_id.clone(),
        salt,
        expiry: Height(tip.height.0.saturating_add(window.max(1))),
        fuel_limit: None,
        sender: types::Sender::Certificate(me.der().to_vec()),
        call: types::Call {
            contract: SUPERVISION.into(),
            method: "anchor_log".into(),
            args: vec![
                me.fingerprint().0.to_vec(),
                seq.to_be_bytes().to_vec(),
                head,
            ],
        },
    };
    let signer = core.validator_signer();
    let signed = types::SignedTx::sign(body, signer.as_ref(), &crypto::UserId::default())
        .map_err(|e| format!("cannot sign the anchor: {e}"))?;
    match core.submit(&signed.to_bytes(), true) {
        Ok((id, Some(rx))) => Ok((id, rx)),
        Ok((id, None)) => Err(format!("no commit receiver for the anchor {id}")),
        Err(r) => Err(r.to_string()),
    }
}

/// The gRPC service.
#[derive(Clone)]
pub struct SupervisionService {
    core: Arc<LocalNode>,
}

impl core::fmt::Debug for SupervisionService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SupervisionService").finish_non_exhaustive()
    }
}

impl SupervisionService {
    /// A service over `core`.
    pub fn new(core: Arc<LocalNode>) -> Self {
        SupervisionService { core }
    }

    /// The caller is an auditor of the supervising organisation the tip's state names. Every
    /// call is in the node's audit log: an answered one as an entry naming the auditor, a
    /// refused one in the per-peer per-minute refusal sums.
    fn admit<T>(&self, request: &Request<T>, method: &str) -> Result<(), Status> {
        let r = self.judge(request, method);
        let peer = peer_of(request);
        let action = format!("supervision.{method}");
        match (&r, &peer.identity) {
            (Ok(()), Some(who)) => self.core.audit().record_by(
                &who.subject,
                &action,
                auditlog::Outcome::Done,
                "answered",
            ),
            (Err(_), _) => self.core.audit().refused(
                "supervision-api",
                &peer
                    .identity
                    .as_ref()
                    .map(|w| w.subject.clone())
                    .or(peer.remote.map(|a| a.to_string()))
                    .unwrap_or_default(),
                "NODE_NOT_SUPERVISOR",
            ),
            _ => {}
        }
        r
    }

    fn judge<T>(&self, request: &Request<T>, method: &str) -> Result<(), Status> {
        let peer = peer_of(request);
        let refuse = |why: String| {
            coded_status(
                &codes::NODE_NOT_SUPERVISOR,
                format!("NODE_NOT_SUPERVISOR: Supervision.{method}: {why}"),
            )
        };
        let Some(who) = peer.identity else {
            return Err(refuse("the caller presented no certificate".into()));
        };
        if who.role != Role::Auditor {
            return Err(refuse(format!(
                "{} has role {}, not auditor",
                who.subject, who.role
            )));
        }
        let sup = self
            .core
            .with_state(|v| execution::supervisor(v))
            .and_then(|r| r.map_err(NodeError::from))
            .map_err(internal)?;
        match sup {
            Some(s) if s.organisation == who.organisation => Ok(()),
            Some(s) => Err(refuse(format!(
                "{:?} is not the supervising organisation ({:?} is)",
                who.organisation, s.organisation
            ))),
            None => Err(refuse("the chain names no supervisor".into())),
        }
    }
}

fn trace_status(e: TraceError) -> Status {
    match e {
        TraceError::Request(m) => coded_status(
            &codes::NODE_TRACE_REQUEST,
            format!("NODE_TRACE_REQUEST: {m}"),
        ),
        TraceError::Node(e) => internal(e),
    }
}

#[tonic::async_trait]
impl Supervision for SupervisionService {
    async fn get_supervision(
        &self,
        request: Request<GetSupervisionRequest>,
    ) -> Result<Response<SupervisionResponse>, Status> {
        self.admit(&request, "GetSupervision")?;
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.supervision())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
            .map_err(internal)
    }

    async fn trace(
        &self,
        request: Request<TraceRequest>,
    ) -> Result<Response<TraceResponse>, Status> {
        self.admit(&request, "Trace")?;
        let r = request.into_inner();
        let kind = TraceKind::parse(&r.kind).ok_or_else(|| {
            trace_status(TraceError::Request(format!(
                "kind {:?} is not cert, org, contract, dataset or lifecycle",
                r.kind
            )))
        })?;
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || -> Result<TraceResponse, TraceError> {
            let tip = core.tip().0.height;
            let (from, to) = if r.from_height == 0 && (r.from_time_ms != 0 || r.to_time_ms != 0) {
                let to_ms = if r.to_time_ms == 0 {
                    u64::MAX
                } else {
                    r.to_time_ms
                };
                match core.heights_in_time(r.from_time_ms, to_ms)? {
                    Some(range) => range,
                    None => {
                        return Err(TraceError::Request(format!(
                            "no committed block has a timestamp in {}..={} ms",
                            r.from_time_ms, to_ms
                        )));
                    }
                }
            } else {
                let to = if r.to_height == 0 {
                    tip
                } else {
                    Height(r.to_height)
                };
                (Height(r.from_height.max(1)), to)
            };
            let page = core.trace(kind, &r.id, from, to, r.offset, r.limit, r.proofs)?;
            let (start_proof, end_proof) = page
                .count_proofs
                .map(|(a, b)| (a.encode(), b.encode()))
                .unwrap_or_default();
            Ok(TraceResponse {
                from_height: page.from.0,
                to_height: page.to.0,
                start_count: page.start_count,
                end_count: page.end_count,
                entries: page
                    .entries
                    .into_iter()
                    .map(|(seq, entry, proof)| api::v1::TraceEntry {
                        seq,
                        entry,
                        proof: proof.map(|p| p.encode()).unwrap_or_default(),
                    })
                    .collect(),
                start_proof,
                end_proof,
                more: page.more,
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map(Response::new)
        .map_err(trace_status)
    }

    async fn get_certified_header(
        &self,
        request: Request<GetCertifiedHeaderRequest>,
    ) -> Result<Response<CertifiedHeaderResponse>, Status> {
        self.admit(&request, "GetCertifiedHeader")?;
        let height = Height(request.into_inner().height);
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || -> Result<CertifiedHeaderResponse, TraceError> {
            let tip = core.tip().0.height;
            if height > tip {
                return Err(TraceError::Request(format!(
                    "height {} is above the tip {}",
                    height.0, tip.0
                )));
            }
            if height.0 == 0 {
                // A node initialised from a snapshot holds no block 0.
                if let Some(base) = core.ledger().snapshot_base().map_err(NodeError::from)? {
                    return Err(TraceError::Node(NodeError::Pruned {
                        height,
                        lowest: base,
                    }));
                }
                let header = core
                    .store()
                    .header(height)
                    .map_err(NodeError::from)?
                    .ok_or(NodeError::Missing("the genesis header"))?;
                return Ok(CertifiedHeaderResponse {
                    header: header.to_bytes(),
                    certified_json: String::new(),
                });
            }
            let (header, certificate) = core.ledger().certified_header(height)?;
            let set_changes = core.ledger().set_changes(height)?;
            let certified = receipt::CertifiedHeader {
                header: header.clone(),
                certificate,
                set_changes,
            };
            Ok(CertifiedHeaderResponse {
                header: header.to_bytes(),
                certified_json: certified.to_json_value().to_string(),
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map(Response::new)
        .map_err(trace_status)
    }

    async fn prove_state(
        &self,
        request: Request<ProveStateRequest>,
    ) -> Result<Response<ProveStateResponse>, Status> {
        self.admit(&request, "ProveState")?;
        let r = request.into_inner();
        if r.keys.len() > MAX_PROVE_KEYS
            || r.keys
                .iter()
                .any(|k| k.is_empty() || k.len() > MAX_PROVE_KEY)
        {
            return Err(trace_status(TraceError::Request(format!(
                "ProveState takes 1 to {MAX_PROVE_KEYS} keys of 1 to {MAX_PROVE_KEY} bytes"
            ))));
        }
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || -> Result<ProveStateResponse, TraceError> {
            let height = Height(r.height);
            let tip = core.tip().0.height;
            if height > tip {
                return Err(TraceError::Request(format!(
                    "height {} is above the tip {}",
                    height.0, tip.0
                )));
            }
            let values = core
                .ledger()
                .with_state_at(height, |v| -> Result<_, TraceError> {
                    let mut out = Vec::with_capacity(r.keys.len());
                    for key in &r.keys {
                        out.push(ProvenValue {
                            key: key.clone(),
                            value: v.read(key)?,
                            proof: v.prove(key)?.encode(),
                        });
                    }
                    Ok(out)
                })??;
            Ok(ProveStateResponse { values })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map(Response::new)
        .map_err(trace_status)
    }

    type WatchAlertsStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<WatchAlert, Status>> + Send>>;

    async fn watch_alerts(
        &self,
        request: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        self.admit(&request, "WatchAlerts")?;
        let Some(watcher) = self.core.watcher() else {
            return Err(coded_status(
                &codes::NODE_TRACE_REQUEST,
                "NODE_TRACE_REQUEST: this node runs no watch rules (configure [[watch.rule]])"
                    .into(),
            ));
        };
        let mut rx = watcher.subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let alert = match rx.recv().await {
                    Ok(a) => WatchAlert {
                        rule: a.rule,
                        kind: a.kind.to_string(),
                        subject: a.subject,
                        height: a.height,
                        count: a.count,
                        window_blocks: a.window_blocks,
                        detail: a.detail,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => WatchAlert {
                        rule: "lagged".into(),
                        kind: "lagged".into(),
                        subject: String::new(),
                        height: 0,
                        count: n,
                        window_blocks: 0,
                        detail: format!("{n} alerts were raised while this stream was behind"),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(Ok(alert)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }
}
