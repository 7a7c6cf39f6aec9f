//! The gRPC service (`proto/gmchain/v1/chain.proto`) over the [`LocalNode`]. Blocking work (SM2
//! verification, RocksDB reads) runs on tokio's blocking pool, so concurrent submissions are
//! verified in parallel on every core.

use std::pin::Pin;
use std::sync::Arc;

use api::v1 as pb;
use api::v1::chain_server::Chain;
use crypto::Digest;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use types::{Encode, Height, TxId};

use crate::error::NodeError;
use crate::local::{LocalNode, certificate_bytes};
use crate::pool::Outcome;
use execution::Rejection;

/// Who a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Consortium members authenticated by mutual TLS: reads and writes (writes are still
    /// authorised by each transaction's signature).
    Members,
    /// Anyone, reads only: the plain public listener, enabled only by `api.public_listen`.
    PublicReadOnly,
    /// The plain REST listener in gateway mode (`[rest] mode = "gateway"`), behind the
    /// operator's HTTPS/TLCP gateway: reads, and transactions (each authorised by its own
    /// signature); no certificate identity, so identity-bound calls are refused.
    Gateway,
}

/// The service.
#[derive(Debug, Clone)]
pub struct ChainService {
    core: Arc<LocalNode>,
    access: Access,
    // Admissions running at once: one per core. More only adds threads that take turns on
    // the same cores (hundreds of in-flight submissions would otherwise each get a thread).
    admitting: Arc<tokio::sync::Semaphore>,
    // Contract queries running at once: half the cores (at least one). A query may run up to
    // max_fuel_per_tx of contract code; the others wait their turn, so that queries cannot take
    // every core from admission and block execution.
    querying: Arc<tokio::sync::Semaphore>,
    // Open SubscribeBlocks streams, over all connections (api.max_subscriptions) and per peer
    // address (api.max_subscriptions_per_peer).
    subscriptions: Arc<tokio::sync::Semaphore>,
    max_subscriptions: usize,
    per_peer: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    max_per_peer: usize,
    // Transactions in one batch submission at most (api.max_batch_txs).
    max_batch_txs: usize,
    // The admission slots there are (one per core): a batch is cut into as many chunks.
    cores: usize,
}

/// How long a block subscription may leave a block unread before it is dropped (freeing its
/// slot): a client that never reads cannot hold a slot for ever.
const SUBSCRIBER_LAG: std::time::Duration = std::time::Duration::from_secs(30);

impl ChainService {
    /// Serves `core` to `access` under the subscription limits of `limits`.
    pub fn new(core: Arc<LocalNode>, limits: &crate::config::ApiLimits, access: Access) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            core,
            access,
            admitting: Arc::new(tokio::sync::Semaphore::new(cores)),
            querying: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
            subscriptions: Arc::new(tokio::sync::Semaphore::new(limits.max_subscriptions)),
            max_subscriptions: limits.max_subscriptions,
            per_peer: Arc::default(),
            max_per_peer: limits.max_subscriptions_per_peer,
            max_batch_txs: limits.max_batch_txs,
            cores,
        }
    }
}

/// Holds a subscription slot, its peer's count and the gauge for as long as the stream's task
/// runs.
struct SubscriptionSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<crate::metrics::Metrics>,
    peer: Option<std::net::IpAddr>,
    per_peer: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.metrics
            .subscriptions
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(peer) = self.peer {
            let mut m = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(&peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&peer);
                }
            }
        }
    }
}

fn subscriptions_full(why: String) -> Status {
    coded_status(
        &codes::NODE_SUBSCRIPTIONS_FULL,
        format!("NODE_SUBSCRIPTIONS_FULL: {why}; retry later"),
    )
}

/// The connection facts of a request: its remote address and authenticated member.
/// The subject of the member who sent `request` if it is an admin or an auditor: their
/// submissions go into the node's audit log (admitted: one entry each, naming the call;
/// refused: in the per-peer sums).
fn privileged_subject<T>(request: &Request<T>) -> Option<String> {
    peer_of(request)
        .identity
        .filter(|w| matches!(w.role, pki::Role::Admin | pki::Role::Auditor))
        .map(|w| w.subject.clone())
}

pub(crate) fn peer_of<T>(request: &Request<T>) -> crate::tls::Peer {
    if let Some(p) = request.extensions().get::<crate::tls::Peer>() {
        return p.clone();
    }
    match request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
    {
        Some(info) => crate::tls::plain_peer(info),
        None => crate::tls::Peer {
            remote: None,
            identity: None,
            common_name: None,
        },
    }
}

impl ChainService {
    /// A read: members, or anyone on the public listener.
    fn admit_read<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match self.access {
            Access::PublicReadOnly | Access::Gateway => Ok(()),
            Access::Members => self.member(request).map(|_| ()),
        }
    }

    /// A write: members, or the gateway listener; never the public listener.
    fn admit_write<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match self.access {
            Access::PublicReadOnly => Err(coded_status(
                &codes::NODE_READ_ONLY,
                "NODE_READ_ONLY: the public read-only listener accepts no transactions; submit over the mutual-TLS API".into(),
            )),
            Access::Members => self.member(request).map(|_| ()),
            Access::Gateway => Ok(()),
        }
    }

    /// Takes a subscription slot for a stream from `peer` (SubscribeBlocks, SubscribeEvents),
    /// or refuses it when the node's or the peer's limit is reached.
    fn subscription_slot(
        &self,
        peer: Option<std::net::IpAddr>,
    ) -> Result<SubscriptionSlot, Status> {
        use std::sync::atomic::Ordering::Relaxed;
        let metrics = self.core.metrics.clone();
        if let Some(p) = peer {
            let mut m = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(p).or_default();
            if *n >= self.max_per_peer {
                metrics.subscriptions_refused.fetch_add(1, Relaxed);
                return Err(subscriptions_full(format!(
                    "{p} holds its maximum of {} subscriptions (api.max_subscriptions_per_peer)",
                    self.max_per_peer
                )));
            }
            *n += 1;
        }
        // Once built, the slot's drop gives the peer's count back, whatever happens.
        let permit = match self.subscriptions.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(p) = peer {
                    let mut m = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(n) = m.get_mut(&p) {
                        *n = n.saturating_sub(1);
                    }
                }
                metrics.subscriptions_refused.fetch_add(1, Relaxed);
                return Err(subscriptions_full(format!(
                    "the node serves at most {} subscriptions (api.max_subscriptions)",
                    self.max_subscriptions
                )));
            }
        };
        metrics.subscriptions.fetch_add(1, Relaxed);
        Ok(SubscriptionSlot {
            _permit: permit,
            metrics,
            peer,
            per_peer: self.per_peer.clone(),
        })
    }

    fn member<T>(&self, request: &Request<T>) -> Result<Arc<gmtls::PeerIdentity>, Status> {
        member_of(request)
    }
}

/// The authenticated member of a request's connection (mutual TLS), or `NODE_UNAUTHENTICATED`.
pub(crate) fn member_of<T>(request: &Request<T>) -> Result<Arc<gmtls::PeerIdentity>, Status> {
    peer_of(request).identity.ok_or_else(|| {
        coded_status(
            &codes::NODE_UNAUTHENTICATED,
            "NODE_UNAUTHENTICATED: no authenticated consortium member on this connection".into(),
        )
    })
}

pub(crate) fn refusal_status(r: &Rejection) -> Status {
    coded_status(r.code.code(), r.to_string())
}

/// A status with the registry's gRPC code for `code` and its name in the metadata.
pub(crate) fn coded_status(code: &'static codes::Code, message: String) -> Status {
    let mut s = Status::new(grpc_code(code.grpc), message);
    s.metadata_mut().insert(
        api::CODE_METADATA_KEY,
        tonic::metadata::MetadataValue::from_static(code.name),
    );
    s
}

/// The registry's gRPC status as tonic's.
pub(crate) fn grpc_code(g: codes::Grpc) -> tonic::Code {
    match g {
        codes::Grpc::InvalidArgument => tonic::Code::InvalidArgument,
        codes::Grpc::NotFound => tonic::Code::NotFound,
        codes::Grpc::AlreadyExists => tonic::Code::AlreadyExists,
        codes::Grpc::PermissionDenied => tonic::Code::PermissionDenied,
        codes::Grpc::ResourceExhausted => tonic::Code::ResourceExhausted,
        codes::Grpc::FailedPrecondition => tonic::Code::FailedPrecondition,
        codes::Grpc::Unimplemented => tonic::Code::Unimplemented,
        codes::Grpc::Internal => tonic::Code::Internal,
        codes::Grpc::Unavailable => tonic::Code::Unavailable,
        codes::Grpc::DataLoss => tonic::Code::DataLoss,
        codes::Grpc::Unauthenticated => tonic::Code::Unauthenticated,
    }
}

/// A node failure while serving a request: the registry's gRPC status for its code (a store
/// missing what it should hold is DATA_LOSS, an unreadable state INTERNAL), with the code's name
/// in the metadata so that a client maps it to its exit class.
pub(crate) fn internal(e: NodeError) -> Status {
    // A request below what this node holds is the client's to redirect, not a node failure.
    if matches!(e, NodeError::Pruned { .. } | NodeError::NotIndexed { .. }) {
        tracing::debug!("{e}");
    } else {
        tracing::error!("{e}");
    }
    coded_status(e.code(), e.to_string())
}

fn tx_id(bytes: &[u8]) -> Result<TxId, Status> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("tx_id: {} bytes, expected 32", bytes.len()))
    })?;
    Ok(TxId(Digest(arr)))
}

pub(crate) fn digest(field: &str, bytes: &[u8]) -> Result<Digest, Status> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("{field}: {} bytes, expected 32", bytes.len()))
    })?;
    Ok(Digest(arr))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
}

fn attestation(a: execution::Attestation) -> pb::Attestation {
    pb::Attestation {
        id: a.id.as_bytes().to_vec(),
        digest: a.digest.as_bytes().to_vec(),
        kind: a.kind,
        owner: a.owner,
        metadata: a.metadata,
        pointer: a.pointer,
        height: a.height.0,
        timestamp_ms: a.timestamp_ms,
        signer: a.signer.as_bytes().to_vec(),
    }
}

fn block_response(core: &LocalNode, height: Height) -> Result<Option<pb::BlockResponse>, Status> {
    Ok(core
        .block(height)
        .map_err(internal)?
        .map(|(b, s)| pb::BlockResponse {
            block: b.to_bytes(),
            certificate: certificate_bytes(&s),
        }))
}

/// Most epochs a `GetValidators` answer lists (the last ones; `epoch_count` gives the total).
const MAX_EPOCHS_LISTED: usize = 1000;

fn validator(
    v: &execution::ValidatorRecord,
    set: &types::ValidatorSet,
) -> Result<pb::Validator, Status> {
    let id = v.cert.fingerprint();
    let power = set
        .validators()
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.power)
        .ok_or_else(|| {
            internal(NodeError::Missing(
                "a recorded validator in the ledger's validator set of its height",
            ))
        })?;
    Ok(pb::Validator {
        name: v.name.clone(),
        certificate: v.cert.der().to_vec(),
        id: id.as_bytes().to_vec(),
        power,
        not_after: v.cert.validity().not_after.0,
    })
}

fn change_kind(c: &execution::ValidatorChange) -> &'static str {
    match c {
        execution::ValidatorChange::Add(_) => "validator-add",
        execution::ValidatorChange::Remove(_) => "validator-remove",
        execution::ValidatorChange::Rotate { .. } => "validator-rotate",
    }
}

/// The validators of `height` (at most the tip's next) with the epochs and the pending
/// change, from the tip's state.
fn validators_response(
    core: &LocalNode,
    height: Option<u64>,
) -> Result<pb::ValidatorsResponse, Status> {
    let tip = core.tip().0.height.0;
    let next = tip.saturating_add(1);
    let h = height.unwrap_or(next);
    if h == 0 {
        return Err(Status::invalid_argument(
            "height 0 is the genesis block, which no validator set decides; heights start at 1",
        ));
    }
    if h > next {
        return Err(Status::not_found(format!(
            "the validator set of height {h} is not decided yet: the tip is {tip}, the last known set is height {next}'s"
        )));
    }
    let (epochs, pending) = core
        .with_state(|v| -> Result<_, execution::ExecError> {
            Ok((execution::epochs(v)?, execution::pending(v)?))
        })
        .map_err(internal)?
        .map_err(|e| internal(NodeError::from(e)))?;
    // The tip may have moved on since it was read: epochs from a later height are not this
    // height's.
    let mut records = match epochs.iter().rev().find(|e| e.from.0 <= h) {
        Some(e) => e.validators.clone(),
        None => core
            .genesis()
            .validators
            .iter()
            .map(|g| execution::ValidatorRecord {
                name: g.name.clone(),
                cert: g.cert.clone(),
            })
            .collect(),
    };
    records.sort_by_key(|v| v.cert.fingerprint().0);
    let set = core.ledger().validator_set(Height(h));
    if set.len() != records.len() {
        return Err(internal(NodeError::Missing(
            "the recorded validators of a height in the ledger's validator set",
        )));
    }
    let validators = records
        .iter()
        .map(|v| validator(v, &set))
        .collect::<Result<Vec<_>, _>>()?;
    let genesis_epoch = pb::Epoch {
        from_height: 1,
        reason: "genesis".into(),
        causes: Vec::new(),
        validators: u32::try_from(core.genesis().validators.len()).unwrap_or(u32::MAX),
    };
    let epoch_count = epochs.len() as u64 + 1;
    let listed = std::iter::once(genesis_epoch)
        .chain(epochs.iter().map(|e| pb::Epoch {
            from_height: e.from.0,
            reason: e.reason.clone(),
            causes: e.causes.iter().map(|c| c.as_bytes().to_vec()).collect(),
            validators: u32::try_from(e.validators.len()).unwrap_or(u32::MAX),
        }))
        .collect::<Vec<_>>();
    let skip = listed.len().saturating_sub(MAX_EPOCHS_LISTED);
    let pending = pending.map(|p| {
        let (validator_id, certificate) = match &p.change {
            execution::ValidatorChange::Add(v) => (Vec::new(), v.cert.der().to_vec()),
            execution::ValidatorChange::Remove(id) => (id.as_bytes().to_vec(), Vec::new()),
            execution::ValidatorChange::Rotate { old, new } => {
                (old.as_bytes().to_vec(), new.der().to_vec())
            }
        };
        pb::PendingValidatorChange {
            effective: p.effective.0,
            kind: change_kind(&p.change).into(),
            validator_id,
            certificate,
            proposal_id: p.proposal.as_bytes().to_vec(),
            tx_id: p.tx.as_bytes().to_vec(),
        }
    });
    Ok(pb::ValidatorsResponse {
        height: h,
        tip,
        validators,
        epochs: listed.into_iter().skip(skip).collect(),
        epoch_count,
        pending,
    })
}

/// A proposal record as its API message; `tip` judges whether an open one has expired.
fn proposal_response(p: execution::ProposalRecord, tip: u64) -> pb::ProposalResponse {
    use execution::{ProposalKind, ProposalStatus, ValidatorChange};
    use pb::proposal_response::Change;
    let (kind, change) = match p.kind {
        ProposalKind::Validators(c) => match *c {
            ValidatorChange::Add(v) => (
                "validator-add",
                Change::ValidatorAdd(pb::ValidatorAddProposal {
                    name: v.name,
                    certificate: v.cert.der().to_vec(),
                }),
            ),
            ValidatorChange::Remove(id) => (
                "validator-remove",
                Change::ValidatorRemove(pb::ValidatorRemoveProposal {
                    validator_id: id.as_bytes().to_vec(),
                }),
            ),
            ValidatorChange::Rotate { old, new } => (
                "validator-rotate",
                Change::ValidatorRotate(pb::ValidatorRotateProposal {
                    current_id: old.as_bytes().to_vec(),
                    certificate: new.der().to_vec(),
                }),
            ),
        },
        ProposalKind::Params(u) => (
            "params",
            Change::ParamsChange(pb::ParamsProposal {
                expiry_window: u.expiry_window,
                max_txs_per_block: u.max_txs_per_block,
                max_tx_size: u.max_tx_size.map(|s| u64::try_from(s).unwrap_or(u64::MAX)),
                max_fuel_per_tx: u.max_fuel_per_tx,
                max_fuel_per_block: u.max_fuel_per_block,
            }),
        ),
        ProposalKind::Contract(c) => {
            let (kind, code_hash) = match &c {
                execution::ContractChange::Deploy { code_hash, .. } => {
                    ("contract-deploy", code_hash.as_bytes().to_vec())
                }
                execution::ContractChange::Upgrade { code_hash, .. } => {
                    ("contract-upgrade", code_hash.as_bytes().to_vec())
                }
                execution::ContractChange::Freeze { .. } => ("contract-freeze", Vec::new()),
                execution::ContractChange::Unfreeze { .. } => ("contract-unfreeze", Vec::new()),
            };
            (
                kind,
                Change::ContractChange(pb::ContractProposal {
                    name: c.name().to_string(),
                    code_hash,
                }),
            )
        }
        ProposalKind::OrgRegister { ca, crl } => (
            "org-register",
            Change::OrgRegister(pb::OrgRegisterProposal {
                organisation: ca.organisation().unwrap_or_default(),
                ca_certificate: ca.der().to_vec(),
                crl: crl.der().to_vec(),
            }),
        ),
        ProposalKind::OrgRemove { name } => (
            "org-remove",
            Change::OrgRemove(pb::OrgRemoveProposal { organisation: name }),
        ),
        ProposalKind::Policy { kind, policy } => (
            "policy",
            Change::PolicyChange(pb::PolicyProposal {
                kind,
                policy: policy.text(),
            }),
        ),
        ProposalKind::Supervisor {
            organisation,
            policy,
        } => (
            "supervisor",
            Change::Supervisor(pb::SupervisorProposal {
                organisation,
                freeze_policy: policy.as_str().to_string(),
            }),
        ),
        ProposalKind::SupervisionFreeze {
            freeze,
            kind,
            target,
            reason,
        } => (
            if freeze {
                "supervision-freeze"
            } else {
                "supervision-unfreeze"
            },
            Change::SupervisionFreeze(pb::SupervisionFreezeProposal {
                freeze,
                kind: kind.as_str().to_string(),
                target,
                reason,
            }),
        ),
    };
    let (status, status_height) = match p.status {
        // Votes count up to the deadline's block: once the tip reached it, none can.
        ProposalStatus::Open if tip >= p.deadline.0 => ("expired", 0),
        ProposalStatus::Open => ("open", 0),
        ProposalStatus::Executed(h) => ("executed", h.0),
        ProposalStatus::Rejected(h) => ("rejected", h.0),
    };
    pb::ProposalResponse {
        id: p.id.as_bytes().to_vec(),
        kind: kind.into(),
        change: Some(change),
        proposer: p.proposer,
        created: p.created.0,
        deadline: p.deadline.0,
        effective: p.effective.0,
        electorate: p.electorate,
        votes: p
            .votes
            .into_iter()
            .map(|(organisation, yes)| pb::ProposalVote { organisation, yes })
            .collect(),
        policy: p.policy.text(),
        status: status.into(),
        status_height,
        tip,
    }
}

/// The most blocks one `QueryEvents` or `ListProposals` request scans.
pub const MAX_SCAN_BLOCKS: u64 = 10_000;
/// The most receipts one `QueryEvents` request reads: past it the scan stops at the end of a
/// block (`truncated`), whatever the range.
const MAX_SCAN_RECEIPTS: u64 = 200_000;
/// The most events one `QueryEvents` answer holds (and its default).
const MAX_EVENTS: u32 = 10_000;
const DEFAULT_EVENTS: u32 = 1000;
/// The blocks `ListProposals` scans by default.
const DEFAULT_PROPOSAL_BLOCKS: u64 = 1000;

/// A contract query's or call's failure as a status: the registry's status for its code with
/// the code's name in the metadata; a state that could not be read is the node's failure.
fn contract_status(e: execution::ContractError) -> Status {
    use execution::ContractError as E;
    match e {
        E::State(e) => internal(NodeError::from(e)),
        E::Failed { code, message } => {
            let c = code.code();
            coded_status(c, format!("{}: {message}", c.name))
        }
        E::Run { code, message } => coded_status(code, format!("{}: {message}", code.name)),
        e @ E::ReadOnly { .. } => coded_status(
            &codes::CONTRACT_READ_ONLY,
            format!("CONTRACT_READ_ONLY: {e}"),
        ),
        e @ E::CostExceeded { .. } => coded_status(
            &codes::CONTRACT_FUEL_EXHAUSTED,
            format!("CONTRACT_FUEL_EXHAUSTED: {e}"),
        ),
        e => Status::internal(e.to_string()),
    }
}

/// An event filter, checked: each field present must match.
#[derive(Clone, Debug, Default)]
struct Filter {
    contract: Option<String>,
    name: Option<String>,
    topic: Option<Vec<u8>>,
}

impl Filter {
    fn new(f: Option<pb::EventFilter>) -> Result<Filter, Status> {
        let f = f.unwrap_or_default();
        let limits = types::Limits::default();
        if let Some(t) = &f.topic
            && (t.is_empty() || t.len() > limits.max_topic_len)
        {
            return Err(Status::invalid_argument(format!(
                "topic: {} bytes, a topic has 1 to {} bytes",
                t.len(),
                limits.max_topic_len
            )));
        }
        Ok(Filter {
            contract: f.contract,
            name: f.name,
            topic: f.topic,
        })
    }

    /// Whether `e` matches. A WASM contract's events name its namespace (`wasm/<name>`): the
    /// filter's contract matches it by the contract's name or by the namespace.
    fn matches(&self, e: &types::Event) -> bool {
        self.contract.as_ref().is_none_or(|c| {
            *c == e.contract || e.contract.strip_prefix("wasm/") == Some(c.as_str())
        }) && self.name.as_ref().is_none_or(|n| *n == e.name)
            && self.topic.as_ref().is_none_or(|t| e.topics.contains(t))
    }
}

/// The events of block `height` that match `filter`, at most `room` of them, and the block's
/// transaction count (`None` when there is no such block).
fn block_events(
    core: &LocalNode,
    height: Height,
    filter: &Filter,
    room: usize,
) -> Result<Option<(Vec<pb::ContractEvent>, u32)>, Status> {
    let store = core.store();
    // Below what this node holds (a snapshot's base, pruned receipts): the code, so the
    // client asks an archive node, never a half answer.
    core.held(height).map_err(internal)?;
    let Some(header) = store
        .header(height)
        .map_err(|e| internal(NodeError::from(e)))?
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for position in 0..header.tx_count {
        if out.len() >= room {
            break;
        }
        let loc = storage::TxLocation { height, position };
        let Some(receipt) = store
            .receipt_at(loc)
            .map_err(|e| internal(NodeError::from(e)))?
        else {
            // Pruned between the check and the read: the code, not a node failure.
            core.held(height).map_err(internal)?;
            return Err(internal(NodeError::Missing(
                "a receipt of a committed block",
            )));
        };
        for (index, e) in receipt.events.iter().enumerate() {
            if out.len() >= room {
                break;
            }
            if filter.matches(e) {
                out.push(pb::ContractEvent {
                    height: height.0,
                    tx_id: receipt.tx_id.as_bytes().to_vec(),
                    position,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    contract: e.contract.clone(),
                    name: e.name.clone(),
                    topics: e.topics.clone(),
                    data: e.data.clone(),
                });
            }
        }
    }
    Ok(Some((out, header.tx_count)))
}

/// The events of blocks `from..=to` matching the request's filter.
fn query_events(
    core: &LocalNode,
    req: pb::QueryEventsRequest,
) -> Result<pb::QueryEventsResponse, Status> {
    let filter = Filter::new(req.filter)?;
    let tip = core.tip().0.height.0;
    let from = req.from_height.max(1);
    let to = req.to_height.unwrap_or(tip);
    if to < from {
        return Err(Status::invalid_argument(format!(
            "to_height {to} is below from_height {from}"
        )));
    }
    let span = to - from + 1;
    if span > MAX_SCAN_BLOCKS {
        return Err(Status::invalid_argument(format!(
            "blocks {from} to {to} are {span} blocks: one request scans at most {MAX_SCAN_BLOCKS}; ask for a narrower range"
        )));
    }
    if to > tip {
        return Err(Status::invalid_argument(format!(
            "to_height {to} is beyond the tip {tip}"
        )));
    }
    if req.limit > MAX_EVENTS {
        return Err(Status::invalid_argument(format!(
            "limit {} is above {MAX_EVENTS}",
            req.limit
        )));
    }
    let limit = if req.limit == 0 {
        DEFAULT_EVENTS
    } else {
        req.limit
    } as usize;
    let mut events = Vec::new();
    let mut scanned_to = from.saturating_sub(1);
    let mut truncated = false;
    let mut receipts = 0u64;
    for h in from..=to {
        // The receipts' budget: a range of full blocks stops early (at a block's end).
        if receipts >= MAX_SCAN_RECEIPTS {
            truncated = true;
            break;
        }
        let room = limit - events.len();
        let (found, txs) = block_events(core, Height(h), &filter, room)?
            .ok_or_else(|| internal(NodeError::Missing("a header below the tip")))?;
        events.extend(found);
        receipts += u64::from(txs);
        scanned_to = h;
        if events.len() >= limit {
            truncated = true;
            break;
        }
    }
    Ok(pb::QueryEventsResponse {
        events,
        scanned_to,
        truncated,
        tip,
    })
}

/// The governance proposals made in the last `blocks` blocks up to the tip, newest first.
fn list_proposals(
    core: &LocalNode,
    req: pb::ListProposalsRequest,
) -> Result<pb::ListProposalsResponse, Status> {
    const STATUSES: &[&str] = &["open", "executed", "rejected", "expired"];
    if !req.status.is_empty() && !STATUSES.contains(&req.status.as_str()) {
        return Err(Status::invalid_argument(format!(
            "status {:?}: one of {}",
            req.status,
            STATUSES.join(", ")
        )));
    }
    if req.blocks > MAX_SCAN_BLOCKS {
        return Err(Status::invalid_argument(format!(
            "blocks {}: one request scans at most {MAX_SCAN_BLOCKS} blocks",
            req.blocks
        )));
    }
    let blocks = if req.blocks == 0 {
        DEFAULT_PROPOSAL_BLOCKS
    } else {
        req.blocks
    };
    let tip = core.tip().0.height.0;
    // Only the blocks this node holds (a snapshot's base, the pruning mark).
    let lowest = core
        .store()
        .lowest_held()
        .map_err(|e| internal(NodeError::from(e)))?
        .0;
    let from = tip.saturating_sub(blocks - 1).max(1).max(lowest);
    let mut ids = Vec::new();
    for h in (from..=tip).rev() {
        let (block, _) = core
            .block(Height(h))
            .map_err(internal)?
            .ok_or_else(|| internal(NodeError::Missing("a block below the tip")))?;
        for tx in block.txs.iter().rev() {
            let call = &tx.tx.call;
            if call.contract == "governance" && call.method == "propose" {
                ids.push(tx.tx_id());
            }
        }
    }
    let mut proposals = Vec::new();
    for id in ids {
        // A proposal whose transaction failed was never recorded.
        let record = core
            .with_state(|v| execution::read_proposal(v, &id.0))
            .map_err(internal)?
            .map_err(|e| internal(NodeError::from(e)))?;
        if let Some(p) = record {
            let p = proposal_response(p, tip);
            if req.status.is_empty() || p.status == req.status {
                proposals.push(p);
            }
        }
    }
    Ok(pb::ListProposalsResponse {
        proposals,
        from_height: from,
        tip,
    })
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<pb::BlockResponse, Status>> + Send>>;
type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ContractEvent, Status>> + Send>>;

/// Batch submissions being read, decoded or admitted at once, node-wide. Each holds up to
/// `api.max_batch_bytes` in its request and about as much again decoded and in admission, so
/// this bounds what batches take (about 8 × 3 × 16 MiB at the defaults) whatever the number of
/// connections and streams. A batch that finds no slot free is refused at once
/// (`TX_BATCH_BUSY`): it is never left unread, because an unread HTTP/2 stream keeps the
/// connection's receive window that the reading streams need (a wait would deadlock them).
pub(crate) const BATCH_SLOTS: usize = 8;
/// Slots one peer address may hold at once, so that one client cannot take them all.
pub(crate) const BATCH_SLOTS_PER_PEER: usize = 2;
/// How long a batch may take to arrive and decode once it holds a slot; past it the call is
/// refused (`DEADLINE_EXCEEDED`) and the slot freed, so a client that trickles its body (or
/// stops) cannot hold a slot.
pub(crate) const BATCH_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who a batch's slot is counted against: the member's certificate on the mutual-TLS
/// listener, else the client's address (an IPv6 address by its /64, which one host holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    Member(Digest),
    Addr(std::net::IpAddr),
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerKey::Member(id) => write!(f, "the member with certificate {}", id.to_hex()),
            PeerKey::Addr(ip) => write!(f, "{ip}"),
        }
    }
}

type PeerCounts = Arc<std::sync::Mutex<std::collections::HashMap<PeerKey, usize>>>;

/// The node's batch slots and who holds them.
#[derive(Clone, Debug)]
pub(crate) struct BatchGate {
    slots: Arc<tokio::sync::Semaphore>,
    per_peer: PeerCounts,
}

impl BatchGate {
    pub(crate) fn new() -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(BATCH_SLOTS)),
            per_peer: Arc::default(),
        }
    }

    /// Takes a slot for a batch from `peer` now, or the status that refuses it.
    pub(crate) fn try_take(&self, peer: Option<PeerKey>) -> Result<BatchSlot, Status> {
        let busy = |why: String| {
            coded_status(
                &codes::TX_BATCH_BUSY,
                format!("TX_BATCH_BUSY: {why}; retry the batch shortly (nothing of it was read)"),
            )
        };
        if let Some(key) = peer {
            let mut m = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(key).or_default();
            if *n >= BATCH_SLOTS_PER_PEER {
                return Err(busy(format!(
                    "{key} already has {BATCH_SLOTS_PER_PEER} batches being read or admitted"
                )));
            }
            *n += 1;
        }
        let mut held = SlotHeld {
            peer,
            per_peer: self.per_peer.clone(),
            _permit: None,
        };
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                held._permit = Some(permit);
                Ok(BatchSlot {
                    _held: Arc::new(held),
                    claimed: Arc::new(tokio::sync::Notify::new()),
                })
            }
            // Dropping `held` gives the peer's count back.
            Err(_) => Err(busy(format!(
                "the node is reading or admitting its maximum of {BATCH_SLOTS} batches"
            ))),
        }
    }
}

/// A slot and the peer's count, given back when the last [`BatchSlot`] clone is dropped.
#[derive(Debug)]
struct SlotHeld {
    peer: Option<PeerKey>,
    per_peer: PeerCounts,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for SlotHeld {
    fn drop(&mut self) {
        if let Some(key) = self.peer {
            let mut m = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&key);
                }
            }
        }
    }
}

/// A batch's slot, travelling in the request's extensions to the handler, which claims it
/// once the request is decoded (ending the read deadline) and drops it once admitted.
#[derive(Clone, Debug)]
pub(crate) struct BatchSlot {
    /// Given back when the last clone is dropped.
    _held: Arc<SlotHeld>,
    claimed: Arc<tokio::sync::Notify>,
}

impl BatchSlot {
    /// The request arrived and decoded: the read deadline no longer applies.
    fn claim(&self) {
        self.claimed.notify_one();
    }
}

/// Who a request's batch slot counts against (see [`PeerKey`]); `None` when nothing tells.
pub(crate) fn peer_key(ext: &http::Extensions) -> Option<PeerKey> {
    let ip = if let Some(p) = ext.get::<crate::tls::Peer>() {
        if let Some(id) = &p.identity {
            return Some(PeerKey::Member(id.cert_id));
        }
        p.remote.map(|a| a.ip())
    } else {
        ext.get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|i| i.remote_addr())
            .map(|a| a.ip())
    };
    ip.map(|ip| match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut o = v6.octets();
            o[8..].fill(0);
            PeerKey::Addr(std::net::IpAddr::from(o))
        }
        other => PeerKey::Addr(other.to_canonical()),
    })
}

/// The Batch service behind the node's [`BatchGate`].
#[derive(Clone)]
pub(crate) struct BatchSlots<S> {
    inner: S,
    gate: BatchGate,
    read_timeout: std::time::Duration,
}

impl<S> BatchSlots<S> {
    /// `inner` behind `gate`, with [`BATCH_READ_TIMEOUT`].
    pub(crate) fn new(inner: S, gate: BatchGate) -> Self {
        Self {
            inner,
            gate,
            read_timeout: BATCH_READ_TIMEOUT,
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for BatchSlots<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for BatchSlots<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The ready service answers this call; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The REST gateway takes the slot before it reads its body and passes it on.
        let slot = match req.extensions().get::<BatchSlot>() {
            Some(s) => s.clone(),
            None => match self.gate.try_take(peer_key(req.extensions())) {
                Ok(s) => {
                    req.extensions_mut().insert(s.clone());
                    s
                }
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            },
        };
        let claimed = slot.claimed.clone();
        let read_timeout = self.read_timeout;
        // Only the request carries the slot from here on.
        drop(slot);
        Box::pin(async move {
            let call = inner.call(req);
            tokio::pin!(call);
            tokio::select! {
                biased;
                answer = &mut call => return answer,
                () = claimed.notified() => {}
                () = tokio::time::sleep(read_timeout) => {
                    // Dropping the call drops the request and its slot.
                    return Ok(Status::deadline_exceeded(format!(
                        "the batch did not arrive within {} ms of taking its slot",
                        read_timeout.as_millis()
                    ))
                    .into_http());
                }
            }
            call.await
        })
    }
}

/// What admission made of one transaction of a batch: the admission, or the refusal with the
/// transaction's id if its bytes decode (the bytes themselves are not kept).
type Admitted =
    Result<(TxId, Option<tokio::sync::oneshot::Receiver<Outcome>>), (Vec<u8>, Rejection)>;

impl ChainService {
    /// Admits `txs` over the node's cores: in as many consecutive chunks as there are
    /// admission slots (one per core), each chunk on a blocking thread once it holds a slot
    /// (taking turns with single submissions); the results in the order of `txs`. An admin's or auditor's admissions (`who`)
    /// are written to the audit log by the worker itself, one entry per chunk, so that a
    /// client that goes away mid-batch cannot leave an admitted transaction unaudited.
    async fn admit_batch(
        &self,
        txs: Vec<Vec<u8>>,
        wait: bool,
        who: Option<String>,
    ) -> Result<Vec<Admitted>, Status> {
        let chunks = self.cores.max(1).min(txs.len().max(1));
        let per = txs.len().div_ceil(chunks).max(1);
        let mut txs = txs.into_iter();
        let mut tasks = Vec::with_capacity(chunks);
        loop {
            let chunk: Vec<Vec<u8>> = txs.by_ref().take(per).collect();
            if chunk.is_empty() {
                break;
            }
            let slot = self
                .admitting
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Status::unavailable("the node is shutting down"))?;
            let core = self.core.clone();
            let who = who.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                let mut audited = Vec::new();
                let out: Vec<Admitted> = chunk
                    .into_iter()
                    .map(|tx| match core.submit(&tx, wait) {
                        Ok((id, rx)) => {
                            if who.is_some() {
                                audited.push(format!("{} {id}", call_of(&tx)));
                            }
                            Ok((id, rx))
                        }
                        Err(r) => Err((tx_id_of(&tx), r)),
                    })
                    .collect();
                drop(slot);
                if let Some(who) = &who {
                    let refused = out.iter().filter(|a| a.is_err()).count();
                    core.audit().record_by(
                        who,
                        "api.submit",
                        auditlog::Outcome::Done,
                        &format!(
                            "a batch's {} transactions admitted ({refused} refused): {}",
                            audited.len(),
                            audited.join(", ")
                        ),
                    );
                }
                out
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.extend(
                t.await
                    .map_err(|e| Status::internal(format!("worker failed: {e}")))?,
            );
        }
        Ok(out)
    }
}

/// Why a waiting client gets no outcome: the node stopped first.
const STOPPED: &str = "the node stopped before the transaction was committed; query it by id later";

/// Where an admitted transaction was committed, as both submissions answer it.
struct Placed {
    height: u64,
    position: u32,
    receipt: Vec<u8>,
}

/// Waits for an admitted transaction's outcome: where it was committed, the refusal that
/// dropped it from the pool (`Err(Some)`), or `Err(None)` when the node stopped first.
async fn placed(rx: tokio::sync::oneshot::Receiver<Outcome>) -> Result<Placed, Option<Rejection>> {
    match rx.await {
        Ok(Outcome::Committed {
            height,
            position,
            receipt,
        }) => Ok(Placed {
            height: height.0,
            position,
            receipt: receipt.to_bytes(),
        }),
        Ok(Outcome::Dropped(r)) => Err(Some(r)),
        Err(_) => Err(None),
    }
}

/// The id of `bytes` if they decode as a transaction (a refused one's, for its result).
fn tx_id_of(bytes: &[u8]) -> Vec<u8> {
    <types::SignedTx as types::Decode>::from_bytes(bytes, &types::Limits::default())
        .map(|t| t.tx_id().as_bytes().to_vec())
        .unwrap_or_default()
}

/// "contract.method" of a transaction, for the audit log.
fn call_of(bytes: &[u8]) -> String {
    <types::SignedTx as types::Decode>::from_bytes(bytes, &types::Limits::default())
        .map(|t| format!("{}.{}", t.tx.call.contract, t.tx.call.method))
        .unwrap_or_else(|_| "an undecodable transaction".into())
}

#[tonic::async_trait]
impl pb::batch_server::Batch for ChainService {
    async fn submit_transactions(
        &self,
        mut request: Request<pb::SubmitTransactionsRequest>,
    ) -> Result<Response<pb::SubmitTransactionsResponse>, Status> {
        let slot = request.extensions_mut().remove::<BatchSlot>();
        if let Some(s) = &slot {
            s.claim();
        }
        self.admit_write(&request)?;
        let privileged = privileged_subject(&request);
        let req = request.into_inner();
        let n = req.signed_txs.len();
        if n == 0 || n > self.max_batch_txs {
            return Err(coded_status(
                &codes::TX_BATCH_INVALID,
                format!(
                    "TX_BATCH_INVALID: the batch holds {n} transactions; send 1 to {} (api.max_batch_txs); none was admitted",
                    self.max_batch_txs
                ),
            ));
        }
        let wait = req.wait_for_commit;
        let admitted = self.admit_batch(req.signed_txs, wait, privileged).await?;
        // Admitted, and no transaction's bytes kept: the slot is free for the next batch
        // while this one waits for its commits.
        drop(slot);
        self.core.metrics.batch_submitted(n);
        let mut results = Vec::with_capacity(n);
        for a in admitted {
            let r = match a {
                Err((tx_id, r)) => pb::SubmitResult {
                    tx_id,
                    code: r.code.as_str().to_string(),
                    message: r.to_string(),
                    ..Default::default()
                },
                Ok((id, rx)) => {
                    let mut r = pb::SubmitResult {
                        tx_id: id.as_bytes().to_vec(),
                        admitted: true,
                        ..Default::default()
                    };
                    if let Some(rx) = rx {
                        match placed(rx).await {
                            Ok(p) => {
                                r.committed = true;
                                (r.height, r.position, r.receipt) =
                                    (p.height, p.position, p.receipt);
                            }
                            Err(Some(d)) => {
                                r.code = d.code.as_str().to_string();
                                r.message = d.to_string();
                            }
                            // Admitted, not refused: no code.
                            Err(None) => r.message = STOPPED.into(),
                        }
                    }
                    r
                }
            };
            results.push(r);
        }
        Ok(Response::new(pb::SubmitTransactionsResponse { results }))
    }
}

#[tonic::async_trait]
impl Chain for ChainService {
    async fn submit_transaction(
        &self,
        request: Request<pb::SubmitTransactionRequest>,
    ) -> Result<Response<pb::SubmitTransactionResponse>, Status> {
        self.admit_write(&request)?;
        let privileged = privileged_subject(&request);
        let req = request.into_inner();
        let call = privileged.as_ref().map(|_| {
            <types::SignedTx as types::Decode>::from_bytes(
                &req.signed_tx,
                &types::Limits::default(),
            )
            .map(|t| format!("{}.{}", t.tx.call.contract, t.tx.call.method))
            .unwrap_or_else(|_| "an undecodable transaction".into())
        });
        let core = self.core.clone();
        let wait = req.wait_for_commit;
        let slot = self
            .admitting
            .acquire()
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        let admitted = blocking(move || {
            core.submit(&req.signed_tx, wait)
                .map_err(|r| refusal_status(&r))
        })
        .await;
        // Free the slot before waiting for the commit.
        drop(slot);
        if let (Some(who), Some(call)) = (&privileged, &call) {
            match &admitted {
                Ok((id, _)) => self.core.audit().record_by(
                    who,
                    "api.submit",
                    auditlog::Outcome::Done,
                    &format!("{call} transaction {id} admitted"),
                ),
                Err(s) => self.core.audit().refused("api-submit", who, s.message()),
            }
        }
        let (id, rx) = admitted?;
        let mut resp = pb::SubmitTransactionResponse {
            tx_id: id.as_bytes().to_vec(),
            ..Default::default()
        };
        if let Some(rx) = rx {
            match placed(rx).await {
                Ok(p) => {
                    resp.committed = true;
                    (resp.height, resp.position, resp.receipt) = (p.height, p.position, p.receipt);
                }
                Err(Some(r)) => return Err(refusal_status(&r)),
                Err(None) => return Err(Status::unavailable(STOPPED)),
            }
        }
        Ok(Response::new(resp))
    }

    async fn get_transaction(
        &self,
        request: Request<pb::TxIdRequest>,
    ) -> Result<Response<pb::TransactionResponse>, Status> {
        self.admit_read(&request)?;
        let id = tx_id(&request.into_inner().tx_id)?;
        let core = self.core.clone();
        let found = blocking(move || core.transaction(&id).map_err(internal)).await?;
        let (tx, loc) =
            found.ok_or_else(|| Status::not_found(format!("transaction {id} is not committed")))?;
        Ok(Response::new(pb::TransactionResponse {
            signed_tx: tx.to_bytes(),
            height: loc.height.0,
            position: loc.position,
        }))
    }

    async fn get_receipt(
        &self,
        request: Request<pb::TxIdRequest>,
    ) -> Result<Response<pb::ReceiptResponse>, Status> {
        self.admit_read(&request)?;
        let id = tx_id(&request.into_inner().tx_id)?;
        let core = self.core.clone();
        let found = blocking(move || core.receipt(&id).map_err(internal)).await?;
        let (r, loc) =
            found.ok_or_else(|| Status::not_found(format!("transaction {id} is not committed")))?;
        Ok(Response::new(pb::ReceiptResponse {
            receipt: r.to_bytes(),
            height: loc.height.0,
            position: loc.position,
        }))
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::BlockResponse>, Status> {
        self.admit_read(&request)?;
        let req = request.into_inner();
        let core = self.core.clone();
        let resp = blocking(move || {
            let height = match req.height {
                Some(h) => Height(h),
                None => core.tip().0.height,
            };
            block_response(&core, height)?
                .ok_or_else(|| Status::not_found(format!("no block at height {height}")))
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn get_attestation(
        &self,
        request: Request<pb::GetAttestationRequest>,
    ) -> Result<Response<pb::AttestationResponse>, Status> {
        self.admit_read(&request)?;
        let key = request
            .into_inner()
            .key
            .ok_or_else(|| Status::invalid_argument("give a digest or an id"))?;
        let core = self.core.clone();
        let found = blocking(move || {
            let r = match key {
                pb::get_attestation_request::Key::Digest(d) => {
                    let d = digest("digest", &d)?;
                    core.with_state(|v| v.attestation_by_digest(&d))
                }
                pb::get_attestation_request::Key::Id(i) => {
                    let i = digest("id", &i)?;
                    core.with_state(|v| v.attestation(&i))
                }
            };
            r.map_err(internal)?
                .map_err(|e| internal(NodeError::from(e)))
        })
        .await?;
        let a = found.ok_or_else(|| Status::not_found("no such attestation"))?;
        Ok(Response::new(pb::AttestationResponse {
            attestation: Some(attestation(a)),
        }))
    }

    async fn list_attestations(
        &self,
        request: Request<pb::ListAttestationsRequest>,
    ) -> Result<Response<pb::ListAttestationsResponse>, Status> {
        self.admit_read(&request)?;
        let req = request.into_inner();
        if req.limit > 1000 {
            return Err(Status::invalid_argument(format!(
                "limit {} is above 1000",
                req.limit
            )));
        }
        let limit = if req.limit == 0 { 100 } else { req.limit };
        let core = self.core.clone();
        let list = blocking(move || {
            core.with_state(|v| v.attestations_by_owner(&req.owner, req.start, limit))
                .map_err(internal)?
                .map_err(|e| internal(NodeError::from(e)))
        })
        .await?;
        Ok(Response::new(pb::ListAttestationsResponse {
            attestations: list.into_iter().map(attestation).collect(),
        }))
    }

    async fn get_receipt_proof(
        &self,
        request: Request<pb::TxIdRequest>,
    ) -> Result<Response<pb::ReceiptProofResponse>, Status> {
        self.admit_read(&request)?;
        let id = tx_id(&request.into_inner().tx_id)?;
        let core = self.core.clone();
        let bundle = blocking(move || core.receipt_bundle(&id).map_err(internal)).await?;
        let bundle = bundle
            .ok_or_else(|| Status::not_found(format!("transaction {id} is not committed")))?;
        Ok(Response::new(pb::ReceiptProofResponse {
            receipt_json: bundle.to_json(),
        }))
    }

    type SubscribeBlocksStream = BlockStream;

    async fn subscribe_blocks(
        &self,
        request: Request<pb::SubscribeBlocksRequest>,
    ) -> Result<Response<Self::SubscribeBlocksStream>, Status> {
        self.admit_read(&request)?;
        let peer = peer_of(&request).remote.map(|a| a.ip());
        let from = Height(request.into_inner().from_height);
        let core = self.core.clone();
        let slot = self.subscription_slot(peer)?;
        let mut heights = core.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            // Released when the client goes away (a send fails) or the node stops.
            let _slot = slot;
            let mut next = from;
            loop {
                // Send everything committed up to the tip, then wait for a new block.
                let tip = core.tip().0.height;
                while next <= tip {
                    let c = core.clone();
                    let h = next;
                    let item = blocking(move || block_response(&c, h)).await;
                    let item = match item {
                        Ok(Some(b)) => Ok(b),
                        Ok(None) => Err(Status::not_found(format!("no block at height {h}"))),
                        Err(s) => Err(s),
                    };
                    // A client that leaves a block unread for SUBSCRIBER_LAG is dropped.
                    if tx.send_timeout(item, SUBSCRIBER_LAG).await.is_err() {
                        return;
                    }
                    match next.next() {
                        Some(n) => next = n,
                        None => return,
                    }
                }
                // Wait for a new block, or for the client to go away (which frees its slot).
                if !next_block(&mut heights, &tx).await {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.admit_read(&request)?;
        let core = self.core.clone();
        let (tip, _) = core.tip();
        let c = &self.core;
        // The parameters in force after the tip (cached by the ledger per state root).
        let params = c.ledger().params().map_err(|e| {
            Status::unavailable(format!("the chain parameters could not be read: {e}"))
        })?;
        Ok(Response::new(pb::StatusResponse {
            chain_id: c.genesis().chain_id.to_string(),
            height: tip.height.0,
            tip_hash: tip.hash.as_bytes().to_vec(),
            genesis_hash: c.genesis_hash().as_bytes().to_vec(),
            pool_size: c.pool_size() as u64,
            validator: c.validator().subject(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            committed_txs: c
                .metrics
                .txs_committed
                .load(std::sync::atomic::Ordering::Relaxed),
            expiry_window: params.params.expiry_window,
            max_txs_per_block: params.params.max_txs_per_block,
            max_tx_size: u64::try_from(params.params.max_tx_size).unwrap_or(u64::MAX),
            params_since: params.since.0,
            max_fuel_per_tx: params.params.max_fuel_per_tx,
            max_fuel_per_block: params.params.max_fuel_per_block,
        }))
    }
    async fn get_validators(
        &self,
        request: Request<pb::GetValidatorsRequest>,
    ) -> Result<Response<pb::ValidatorsResponse>, Status> {
        self.admit_read(&request)?;
        let height = request.into_inner().height;
        let core = self.core.clone();
        let resp = blocking(move || validators_response(&core, height)).await?;
        Ok(Response::new(resp))
    }

    async fn get_proposal(
        &self,
        request: Request<pb::GetProposalRequest>,
    ) -> Result<Response<pb::ProposalResponse>, Status> {
        self.admit_read(&request)?;
        let id = digest("id", &request.into_inner().id)?;
        let core = self.core.clone();
        let found = blocking(move || {
            let tip = core.tip().0.height.0;
            let p = core
                .with_state(|v| execution::read_proposal(v, &id))
                .map_err(internal)?
                .map_err(|e| internal(NodeError::from(e)))?;
            Ok(p.map(|p| proposal_response(p, tip)))
        })
        .await?;
        let p = found.ok_or_else(|| Status::not_found(format!("no proposal {}", id.to_hex())))?;
        Ok(Response::new(p))
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Result<Response<pb::ListProposalsResponse>, Status> {
        self.admit_read(&request)?;
        let req = request.into_inner();
        let core = self.core.clone();
        let resp = blocking(move || list_proposals(&core, req)).await?;
        Ok(Response::new(resp))
    }

    async fn query_contract(
        &self,
        request: Request<pb::QueryContractRequest>,
    ) -> Result<Response<pb::QueryContractResponse>, Status> {
        // The caller a contract sees is the client's certificate identity: none on the public
        // listener, which therefore answers no contract query.
        if self.access == Access::PublicReadOnly {
            return Err(coded_status(
                &codes::NODE_UNAUTHENTICATED,
                "NODE_UNAUTHENTICATED: a contract query runs as the client's certificate identity; the public read-only listener has none: query over the mutual-TLS API".into(),
            ));
        }
        let identity = self.member(&request)?;
        let common_name = peer_of(&request).common_name.unwrap_or_default();
        let caller = execution::SignerInfo {
            cert_id: identity.cert_id,
            organisation: identity.organisation.clone(),
            common_name,
            role: identity.role,
        };
        let req = request.into_inner();
        let core = self.core.clone();
        let permit = Arc::clone(&self.querying)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        let resp = blocking(move || {
            let _permit = permit;
            let params = core.ledger().params().map_err(|e| {
                Status::unavailable(format!("the chain parameters could not be read: {e}"))
            })?;
            // A query spends at most what a transaction may (and a block's budget).
            let max = params
                .params
                .max_fuel_per_tx
                .min(params.params.max_fuel_per_block);
            let fuel = req.fuel.unwrap_or(max);
            if fuel > max {
                return Err(coded_status(
                    &codes::TX_FUEL_LIMIT_TOO_HIGH,
                    format!(
                        "TX_FUEL_LIMIT_TOO_HIGH: fuel {fuel} is above the chain's max_fuel_per_tx {max}"
                    ),
                ));
            }
            let answer = core.query_contract(&caller, &req.contract, &req.method, &req.args, fuel);
            let (answer, height) = answer.map_err(contract_status)?;
            Ok(pb::QueryContractResponse {
                output: answer.output,
                fuel_used: answer.fuel_used,
                height: height.0,
            })
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn get_contract(
        &self,
        request: Request<pb::GetContractRequest>,
    ) -> Result<Response<pb::ContractResponse>, Status> {
        self.admit_read(&request)?;
        let name = request.into_inner().name;
        let core = self.core.clone();
        let found = blocking(move || {
            let tip = core.tip().0.height.0;
            let r = core
                .with_state(|v| -> Result<_, execution::ExecError> {
                    let Some(record) = execution::contract(v, &name)? else {
                        return Ok(None);
                    };
                    let size = execution::contract_code(v, &record.code_hash)?.map(|c| c.len());
                    Ok(Some((record, size)))
                })
                .map_err(internal)?
                .map_err(|e| internal(NodeError::from(e)))?;
            match r {
                None => Err(Status::not_found(format!(
                    "no deployed contract named {name:?}"
                ))),
                Some((_, None)) => Err(internal(NodeError::Missing("a deployed contract's code"))),
                Some((c, Some(size))) => Ok(pb::ContractResponse {
                    name: c.name,
                    code_hash: c.code_hash.as_bytes().to_vec(),
                    version: c.version,
                    frozen: c.frozen,
                    deployed: c.deployed.0,
                    updated: c.updated.0,
                    proposal_id: c.proposal.as_bytes().to_vec(),
                    code_size: size as u64,
                    tip,
                }),
            }
        })
        .await?;
        Ok(Response::new(found))
    }

    async fn get_log_head(
        &self,
        request: Request<pb::GetLogHeadRequest>,
    ) -> Result<Response<pb::LogHeadResponse>, Status> {
        self.admit_read(&request)?;
        let log = <[u8; 32]>::try_from(request.into_inner().log.as_slice())
            .map(crypto::Digest)
            .map_err(|_| Status::invalid_argument("log: 32 bytes (SM3 of the certificate)"))?;
        let core = self.core.clone();
        let found = blocking(move || {
            let tip = core.tip().0.height.0;
            let h = core
                .with_state(|v| execution::log_head(v, &log))
                .map_err(internal)?
                .map_err(|e| internal(NodeError::from(e)))?;
            Ok(match h {
                None => pb::LogHeadResponse {
                    tip,
                    ..Default::default()
                },
                Some(h) => pb::LogHeadResponse {
                    anchored: true,
                    seq: h.seq,
                    head: h.head.0.to_vec(),
                    height: h.height.0,
                    timestamp_ms: h.timestamp_ms,
                    tip,
                },
            })
        })
        .await?;
        Ok(Response::new(found))
    }

    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        self.admit_read(&request)?;
        let req = request.into_inner();
        let core = self.core.clone();
        let resp = blocking(move || query_events(&core, req)).await?;
        Ok(Response::new(resp))
    }

    type SubscribeEventsStream = EventStream;

    async fn subscribe_events(
        &self,
        request: Request<pb::SubscribeEventsRequest>,
    ) -> Result<Response<Self::SubscribeEventsStream>, Status> {
        self.admit_read(&request)?;
        let peer = peer_of(&request).remote.map(|a| a.ip());
        let filter = Filter::new(request.into_inner().filter)?;
        let core = self.core.clone();
        let slot = self.subscription_slot(peer)?;
        // Subscribed before the tip is read: no block committed from here on is missed.
        let mut heights = core.subscribe();
        let mut next = core.tip().0.height.0.saturating_add(1);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let _slot = slot;
            loop {
                let tip = core.tip().0.height.0;
                while next <= tip {
                    let (c, f, h) = (core.clone(), filter.clone(), Height(next));
                    let found = blocking(move || block_events(&c, h, &f, usize::MAX)).await;
                    let items = match found {
                        Ok(Some((events, _))) => events.into_iter().map(Ok).collect(),
                        Ok(None) => vec![Err(Status::not_found(format!("no block at height {h}")))],
                        Err(s) => vec![Err(s)],
                    };
                    for item in items {
                        let failed = item.is_err();
                        if tx.send_timeout(item, SUBSCRIBER_LAG).await.is_err() || failed {
                            return;
                        }
                    }
                    next += 1;
                }
                if !next_block(&mut heights, &tx).await {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Waits until a new block is committed (a lagging receiver only missed heights it re-reads)
/// or the subscriber goes away; `false` when the stream is to end: the client left or the node
/// stops publishing.
async fn next_block<T, H: Clone>(
    heights: &mut tokio::sync::broadcast::Receiver<H>,
    tx: &tokio::sync::mpsc::Sender<T>,
) -> bool {
    let next = tokio::select! {
        r = heights.recv() => r,
        () = tx.closed() => return false,
    };
    !matches!(next, Err(tokio::sync::broadcast::error::RecvError::Closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> Option<PeerKey> {
        Some(PeerKey::Addr(std::net::IpAddr::from([10, 0, 0, last])))
    }

    fn busy(s: &Status) -> bool {
        s.code() == tonic::Code::ResourceExhausted
            && s.metadata()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok())
                == Some("TX_BATCH_BUSY")
    }

    /// Review i19-node H1: a batch that finds no slot is refused at once (never left unread,
    /// which would hold the connection's HTTP/2 window); one address holds at most 2 slots,
    /// the node at most 8; a dropped slot is free again, for its address too.
    #[test]
    fn batch_slots_are_refused_at_once_when_taken_per_address_and_node_wide() {
        let gate = BatchGate::new();
        let a1 = gate.try_take(peer(1)).unwrap();
        let a2 = gate.try_take(peer(1)).unwrap();
        let e = gate.try_take(peer(1)).unwrap_err();
        assert!(busy(&e), "{e:?}");
        assert!(e.message().contains("10.0.0.1"), "{}", e.message());
        let mut others: Vec<BatchSlot> = (2..8).map(|i| gate.try_take(peer(i)).unwrap()).collect();
        let e = gate.try_take(peer(9)).unwrap_err();
        assert!(
            busy(&e) && e.message().contains("maximum of 8"),
            "{}",
            e.message()
        );
        // A refused address's count was not kept: once a slot frees, it gets one.
        drop(others.pop());
        let nine = gate.try_take(peer(9)).unwrap();
        drop(a1);
        let ten = gate.try_take(peer(10)).expect("the freed slot");
        assert!(
            busy(&gate.try_take(peer(1)).unwrap_err()),
            "node-wide full again"
        );
        drop((a2, nine, ten, others));
        assert!(gate.per_peer.lock().unwrap().is_empty());
    }

    /// Review i19-node-r2 N1: a member is counted by its certificate whatever its addresses;
    /// an IPv6 client by its /64; an IPv4-mapped address as its IPv4 address.
    #[test]
    fn batch_slots_count_a_member_by_certificate_and_ipv6_by_its_64() {
        let mut ext = http::Extensions::new();
        let v6 = |last: u16| std::net::SocketAddr::from(([0x2001, 0xdb8, 0, 1, 0, 0, 0, last], 1));
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(v6(1)),
        });
        let a = peer_key(&ext);
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(v6(0xbeef)),
        });
        assert_eq!(peer_key(&ext), a, "the same /64");
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(std::net::SocketAddr::from((
                std::net::Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped(),
                1,
            ))),
        });
        assert_eq!(peer_key(&ext), peer(7), "IPv4-mapped");
        let gate = BatchGate::new();
        let first = gate.try_take(a).unwrap();
        let second = gate.try_take(a).unwrap();
        assert!(
            busy(&gate.try_take(a).unwrap_err()),
            "a third from the same /64"
        );
        drop((first, second));
    }

    /// The wrapper: no slot free → answered at once with TX_BATCH_BUSY, the inner service not
    /// called; a request that holds a slot but is not decoded (claimed) within the read
    /// timeout is answered DEADLINE_EXCEEDED and its slot freed; a claimed one runs to its end.
    #[tokio::test]
    async fn the_batch_wrapper_refuses_at_once_and_frees_a_slot_whose_request_does_not_arrive() {
        use tower::Service as _;
        let called = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = called.clone();
        // Claims when the request says so (as the handler does once decoded), else hangs as
        // a request whose body never arrives.
        let inner = tower::service_fn(move |req: http::Request<bool>| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let slot = req.extensions().get::<BatchSlot>().cloned();
                if *req.body() {
                    if let Some(s) = &slot {
                        s.claim();
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        tonic::body::Body::empty(),
                    ))
                } else {
                    std::future::pending().await
                }
            }
        });
        let gate = BatchGate::new();
        let mut svc = BatchSlots {
            inner,
            gate: gate.clone(),
            read_timeout: std::time::Duration::from_millis(100),
        };
        // Every slot taken elsewhere: refused without calling the service.
        let held: Vec<BatchSlot> = (1..=8).map(|i| gate.try_take(peer(i)).unwrap()).collect();
        let resp = svc.call(http::Request::new(true)).await.unwrap();
        assert_eq!(
            resp.headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()),
            Some("8"),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(
            resp.headers()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("TX_BATCH_BUSY")
        );
        assert_eq!(called.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(held);
        // A request that never arrives: deadline exceeded, its slot given back.
        let resp = svc.call(http::Request::new(false)).await.unwrap();
        assert_eq!(
            resp.headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()),
            Some("4"),
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(gate.slots.available_permits(), BATCH_SLOTS);
        // One that arrives (claims) in time runs past the read timeout to its answer.
        let resp = svc.call(http::Request::new(true)).await.unwrap();
        assert!(
            resp.headers().get("grpc-status").is_none(),
            "{:?}",
            resp.headers()
        );
        assert_eq!(gate.slots.available_permits(), BATCH_SLOTS);
    }

    /// Review finding on issue 11: a node failure while serving was INTERNAL with no code, so a
    /// client could not tell a store missing data (DATA_LOSS, did not verify) from a bad request.
    #[test]
    fn a_node_failure_is_sent_with_its_registry_status_and_code() {
        let s = internal(NodeError::Missing("receipt"));
        assert_eq!(s.code(), tonic::Code::DataLoss);
        assert_eq!(
            s.metadata()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("NODE_MISSING")
        );
        let r = refusal_status(&Rejection::new(
            execution::RejectCode::StateUnavailable,
            "x",
        ));
        assert_eq!(r.code(), tonic::Code::Unavailable);
        let r = refusal_status(&Rejection::new(execution::RejectCode::PoolFull, "x"));
        assert_eq!(r.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            r.metadata()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("TX_POOL_FULL")
        );
    }

    fn record(status: execution::ProposalStatus) -> execution::ProposalRecord {
        execution::ProposalRecord {
            id: Digest([7; 32]),
            kind: execution::ProposalKind::Validators(Box::new(
                execution::ValidatorChange::Remove(Digest([9; 32])),
            )),
            proposer: "A".into(),
            created: Height(3),
            deadline: Height(10),
            effective: Height(20),
            electorate: vec!["A".into(), "B".into(), "C".into()],
            votes: [("A".to_string(), true), ("B".to_string(), false)].into(),
            policy: execution::Policy::Majority,
            status,
        }
    }

    /// An open proposal is reported expired once the tip reached its deadline (no later
    /// block may count a vote); a decided one keeps its status and block.
    #[test]
    fn a_proposal_is_reported_with_its_change_votes_and_standing() {
        use execution::ProposalStatus;
        let open = proposal_response(record(ProposalStatus::Open), 9);
        assert_eq!((open.status.as_str(), open.status_height), ("open", 0));
        assert_eq!(open.kind, "validator-remove");
        assert_eq!(
            open.change,
            Some(pb::proposal_response::Change::ValidatorRemove(
                pb::ValidatorRemoveProposal {
                    validator_id: vec![9; 32]
                }
            ))
        );
        assert_eq!(open.votes.len(), 2);
        assert!(open.votes[0].yes && !open.votes[1].yes);
        assert_eq!(open.policy, "majority");
        let expired = proposal_response(record(ProposalStatus::Open), 10);
        assert_eq!(expired.status, "expired");
        let done = proposal_response(record(ProposalStatus::Executed(Height(8))), 30);
        assert_eq!((done.status.as_str(), done.status_height), ("executed", 8));
        let no = proposal_response(record(ProposalStatus::Rejected(Height(6))), 30);
        assert_eq!((no.status.as_str(), no.status_height), ("rejected", 6));
    }

    /// An event filter matches on each field given; a topic matches any of the event's.
    #[test]
    fn an_event_filter_matches_on_every_field_it_names() {
        let e = types::Event {
            contract: "counter".into(),
            name: "added".into(),
            topics: vec![b"total".to_vec(), b"x".to_vec()],
            data: vec![1],
        };
        let f = |contract: Option<&str>, name: Option<&str>, topic: Option<&[u8]>| {
            Filter::new(Some(pb::EventFilter {
                contract: contract.map(str::to_string),
                name: name.map(str::to_string),
                topic: topic.map(<[u8]>::to_vec),
            }))
            .unwrap()
        };
        assert!(Filter::new(None).unwrap().matches(&e));
        let wasm = types::Event {
            contract: "wasm/counter".into(),
            ..e.clone()
        };
        assert!(f(Some("counter"), None, None).matches(&wasm));
        assert!(f(Some("wasm/counter"), None, None).matches(&wasm));
        assert!(!f(Some("wasm"), None, None).matches(&wasm));
        assert!(f(Some("counter"), Some("added"), Some(b"x")).matches(&e));
        assert!(!f(Some("other"), None, None).matches(&e));
        assert!(!f(None, Some("removed"), None).matches(&e));
        assert!(!f(None, None, Some(b"tota")).matches(&e));
        let empty = Filter::new(Some(pb::EventFilter {
            topic: Some(Vec::new()),
            ..Default::default()
        }));
        assert_eq!(empty.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    /// A query's failure is sent with its registry status and code name.
    #[test]
    fn a_contract_failure_is_sent_with_its_code() {
        let s = contract_status(execution::ContractError::Run {
            code: &codes::CONTRACT_TRAP,
            message: "unreachable".into(),
        });
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert_eq!(s.message(), "CONTRACT_TRAP: unreachable");
        assert_eq!(
            s.metadata()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("CONTRACT_TRAP")
        );
        let s = contract_status(execution::ContractError::failed(
            execution::FailureCode::UnknownCall,
            "no deployed contract \"x\"",
        ));
        assert_eq!(
            s.metadata()
                .get(api::CODE_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some(execution::FailureCode::UnknownCall.code().name)
        );
    }
}
