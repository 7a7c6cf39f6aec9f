//! The `Exchange` gRPC service (`proto/gmchain/v1/exchange.proto`, docs/exchange.md): the
//! custodian's blob service and the reads of the `exchange` contract's records.
//!
//! A custodian holds its organisation's payloads in a [`BlobStore`] and a node-enc key (in the
//! token) that custodian envelopes are wrapped to. A fetch is judged on the tip's state
//! (a live grant, or the owner's own member or a message's recipient with their own encryption
//! certificate), recorded on the chain by an `exchange.record_fetch` transaction the node signs
//! (served or refused), and served as a header and payload chunks with, only once that record
//! is committed, one key part carrying the data key wrapped to the caller's encryption
//! certificate (between two chunks as soon as it commits, or after the last).
//! The data key is in the node's memory (zeroizing) only between the token's unwrap and the
//! SM2 wrap to the caller.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::v1 as pb;
use api::v1::exchange_server::Exchange;
use blobstore::{BlobError, BlobId, BlobStore};
use crypto::{CipherFormat, Decrypter, Digest, RandomSource, UserId};
use execution::data::{self, AccessRequest, FetchObject, Payload};
use execution::{RejectCode, Rejection};
use pki::{Certificate, Role};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use types::{Call, Encode, Height, Sender, SignedTx, Transaction};

use crate::disk::DiskGuard;
use crate::error::NodeError;
use crate::local::LocalNode;
use crate::pool::Outcome;
use crate::service::{
    blocking, coded_status, digest, internal, member_of, peer_of, refusal_status,
};

/// The largest data part of an upload or fetch message.
pub const CHUNK: usize = 1 << 20;

/// The Exchange service's message limit: a chunk and its framing (apart from the Chain
/// service's, which is sized for one transaction).
pub const MESSAGE_LIMIT: usize = CHUNK + 64 * 1024;

/// Fetch chunks in flight between the blob reader and the network (bounded memory:
/// `FETCH_QUEUE` × [`CHUNK`] per fetch).
const FETCH_QUEUE: usize = 4;

/// The most fetches a custodian serves at once (memory: this × (`FETCH_QUEUE` + 1) MiB).
pub const MAX_FETCHES: usize = 16;

/// The most fetches one requester is served at once, so that one grantee cannot take every
/// slot.
pub const MAX_FETCHES_PER_REQUESTER: usize = 4;

/// How long a fetch may leave a chunk unaccepted before the custodian ends it: a client that
/// stops reading cannot hold a fetch slot (or a thread) for ever.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an upload may send nothing before the custodian ends it (and discards what it
/// received): a stalled client cannot hold its staging file, its reservation of free space
/// (`crate::disk`) or a task for ever.
const UPLOAD_IDLE: std::time::Duration = STALL;

/// How long a fetch waits for its record's block: past it, the fetch ends without its key
/// (a stalled chain cannot hold the custodian's fetch slots).
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What makes a node a custodian: its blob store and its node-enc key.
pub struct Custodian {
    blobs: BlobStore,
    key: Arc<dyn Decrypter>,
    enc_cert: Certificate,
    enc_id: Digest,
    rng: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for Custodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custodian")
            .field("enc_cert", &self.enc_cert.subject())
            .finish_non_exhaustive()
    }
}

impl Custodian {
    /// Returns the blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// A custodian for the node whose signing certificate is `node_cert`: `enc_cert` must be
    /// the node-enc certificate of the same node (O and CN) and `key` its key.
    pub fn new(
        node_cert: &Certificate,
        blobs: BlobStore,
        key: Arc<dyn Decrypter>,
        enc_cert: Certificate,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, NodeError> {
        let bad = |why: String| NodeError::Custodian(format!("exchange.key: {why}"));
        if enc_cert.role() != Some(Role::NodeEnc) {
            return Err(bad(format!(
                "{} is not a node-enc certificate",
                enc_cert.subject()
            )));
        }
        if enc_cert.organisation() != node_cert.organisation()
            || enc_cert.common_name() != node_cert.common_name()
        {
            return Err(bad(format!(
                "the node-enc certificate {} is not this node's ({})",
                enc_cert.subject(),
                node_cert.subject()
            )));
        }
        if key.public_key() != enc_cert.public_key() {
            return Err(bad(
                "the key is not the node-enc certificate's (public keys differ)".into(),
            ));
        }
        Ok(Custodian {
            blobs,
            key,
            enc_id: enc_cert.fingerprint(),
            enc_cert,
            rng,
        })
    }
}

/// The service.
#[derive(Debug, Clone)]
pub struct ExchangeService {
    core: Arc<LocalNode>,
    custodian: Option<Arc<Custodian>>,
    salt: Arc<AtomicU64>,
    // Fetches being served (at most MAX_FETCHES).
    fetching: Arc<tokio::sync::Semaphore>,
    // Fetches being served per requester (at most MAX_FETCHES_PER_REQUESTER).
    per_requester: Arc<std::sync::Mutex<std::collections::HashMap<Digest, usize>>>,
    // Requesters whose refused fetch is being recorded: one record in flight each, so that a
    // member repeating refused fetches cannot fill blocks and the pool with refusals.
    refusing: Arc<std::sync::Mutex<std::collections::HashSet<Digest>>>,
}

impl ExchangeService {
    /// Serves the catalogue of `core` and, with a custodian, its blobs.
    pub fn new(core: Arc<LocalNode>, custodian: Option<Arc<Custodian>>) -> Self {
        ExchangeService {
            core,
            custodian,
            salt: Arc::default(),
            fetching: Arc::new(tokio::sync::Semaphore::new(MAX_FETCHES)),
            per_requester: Arc::default(),
            refusing: Arc::default(),
        }
    }

    fn member<T>(&self, request: &Request<T>) -> Result<Arc<gmtls::PeerIdentity>, Status> {
        member_of(request)
    }

    fn custodian(&self) -> Result<Arc<Custodian>, Status> {
        self.custodian.clone().ok_or_else(|| {
            code(
                &codes::EXCHANGE_NOT_CUSTODIAN,
                format!(
                    "node {:?} holds no blobs (no [exchange] section in its configuration)",
                    self.core.validator().common_name().unwrap_or_default()
                ),
            )
        })
    }

    /// Signs and submits `exchange.record_fetch`; returns its ID and the receiver of its
    /// outcome ([`committed`]).
    fn record(
        &self,
        fetch: &Judged,
        requester: &Digest,
        outcome: u32,
        envelope_sm3: Vec<u8>,
        enc_cert: Vec<u8>,
    ) -> Result<(types::TxId, tokio::sync::oneshot::Receiver<Outcome>), Status> {
        let core = &self.core;
        let (tip, _) = core.tip();
        let window = core
            .ledger()
            .params()
            .map_err(|e| internal(NodeError::from(e)))?
            .params
            .expiry_window;
        let (kind, object) = match &fetch.object {
            FetchObject::Dataset(id) => (data::OBJECT_DATASET, id.as_bytes().to_vec()),
            FetchObject::Message(id) => (data::OBJECT_MESSAGE, id.0.to_vec()),
        };
        // The salt only has to make the transaction unique: this node's counter and clock
        // with the fetch's fields.
        let n = self.salt.fetch_add(1, Ordering::Relaxed);
        let mut seed = Vec::new();
        seed.extend_from_slice(&n.to_be_bytes());
        seed.extend_from_slice(&core.now_ms().to_be_bytes());
        seed.extend_from_slice(requester.as_bytes());
        seed.extend_from_slice(&object);
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&crypto_sm::sm3::sm3(&seed).0[..16]);
        let body = Transaction {
            chain_id: core.genesis().chain_id.clone(),
            salt,
            expiry: Height(tip.height.0.saturating_add(window.max(1))),
            fuel_limit: None,
            sender: Sender::Certificate(core.validator().der().to_vec()),
            call: Call {
                contract: "exchange".into(),
                method: "record_fetch".into(),
                args: vec![
                    vec![kind],
                    object,
                    fetch.version.to_be_bytes().to_vec(),
                    requester.0.to_vec(),
                    fetch.request.0.to_vec(),
                    outcome.to_be_bytes().to_vec(),
                    envelope_sm3,
                    enc_cert,
                ],
            },
        };
        let signer = core.validator_signer();
        let signed = SignedTx::sign(body, signer.as_ref(), &UserId::default()).map_err(|e| {
            coded_status(
                &codes::EXCHANGE_KEY_UNAVAILABLE,
                format!("EXCHANGE_KEY_UNAVAILABLE: cannot sign the fetch record: {e}"),
            )
        })?;
        match core.submit(&signed.to_bytes(), true) {
            Ok((id, Some(rx))) => Ok((id, rx)),
            Ok((id, None)) => Err(Status::internal(format!(
                "no commit receiver for the fetch record {id}"
            ))),
            Err(r) => Err(refusal_status(&r)),
        }
    }
}

/// Waits (at most [`COMMIT_WAIT`]) for a fetch record's block: its height when the record is
/// committed with a successful receipt; otherwise why not, as the status to answer with.
async fn committed(
    id: types::TxId,
    rx: tokio::sync::oneshot::Receiver<Outcome>,
) -> Result<Height, Status> {
    match tokio::time::timeout(COMMIT_WAIT, rx).await {
        // A committed record that failed (a grant revoked or expired since the check) counts
        // as no record.
        Ok(Ok(Outcome::Committed {
            height, receipt, ..
        })) if receipt.status != types::Status::Success => Err(code(
            &codes::EXCHANGE_NO_GRANT,
            format!(
                "the fetch record {id} failed at height {}: {:?}",
                height.0, receipt.status
            ),
        )),
        Ok(Ok(Outcome::Committed { height, .. })) => Ok(height),
        Ok(Ok(Outcome::Dropped(r))) => Err(refusal_status(&r)),
        Ok(Err(_)) => Err(Status::unavailable(format!(
            "the node stopped before the fetch record {id} was committed"
        ))),
        Err(_) => Err(Status::unavailable(format!(
            "the fetch record {id} was not committed within {} s",
            COMMIT_WAIT.as_secs()
        ))),
    }
}

/// A fetch as judged on the tip's state.
struct Judged {
    object: FetchObject,
    version: u64,
    record: Vec<u8>,
    payload: Payload,
    request: Digest,
}

/// A refused fetch: recorded on the chain with its registry code as the outcome, then
/// returned. (A fetch of an unknown object or of another custodian's is not this custodian's
/// to record: it is answered with a status only.)
struct Refusal(&'static codes::Code, String);

fn code(c: &'static codes::Code, why: String) -> Status {
    coded_status(c, format!("{}: {why}", c.name))
}

/// Receives an upload's messages from `stream` into `blobs` and commits it: the first message
/// names the payload (SM3 and length), every message carries at most [`CHUNK`] bytes. With a
/// free-space guard, the announced length is reserved first ([`DiskGuard::reserve`]: an upload
/// that would take the blob store's filesystem below the threshold is refused before its first
/// byte) and the free space is read again before each chunk is written: low, the upload stops
/// (`NODE_STORAGE_LOW`) and nothing of it is kept. A stream that sends nothing for `idle` is
/// ended (`NODE_UPLOAD_IDLE`), nothing kept either.
async fn receive_upload<S>(
    disk: Option<Arc<DiskGuard>>,
    blobs: BlobStore,
    mut stream: S,
    idle: std::time::Duration,
) -> Result<blobstore::BlobInfo, Status>
where
    S: Stream<Item = Result<pb::UploadChunk, Status>> + Unpin,
{
    let first = next_upload_message(&mut stream, idle, 0)
        .await?
        .ok_or_else(|| Status::invalid_argument("an empty upload"))?;
    let id = BlobId::from(digest("payload_sm3", &first.payload_sm3)?);
    let len = first.payload_len;
    let mut reservation = match &disk {
        Some(d) => Some(
            d.reserve(blobs.dir(), len)
                .map_err(|r| refusal_status(&r))?,
        ),
        None => None,
    };
    let mut upload = blocking(move || blobs.begin(id, len).map_err(blob_status)).await?;
    let mut data = first.data;
    loop {
        if data.len() > CHUNK {
            return Err(Status::invalid_argument(format!(
                "an upload message carries at most {CHUNK} bytes, got {}",
                data.len()
            )));
        }
        if !data.is_empty() {
            let n = data.len() as u64;
            let guard = disk.clone();
            upload = blocking(move || {
                // A fresh reading before each chunk: low (whatever else took the space), the
                // upload stops here and its staging file goes with it.
                if let Some(d) = &guard
                    && d.check().low
                {
                    return Err(refusal_status(&Rejection::new(
                        RejectCode::StorageLow,
                        format!(
                            "the upload of blob {id} was stopped after {} of {len} bytes and nothing of it is kept: {}",
                            upload.received(),
                            d.reason()
                        ),
                    )));
                }
                upload.write(&data).map_err(blob_status)?;
                Ok(upload)
            })
            .await?;
            if let Some(r) = reservation.as_mut() {
                r.wrote(n);
            }
        }
        match next_upload_message(&mut stream, idle, upload.received()).await? {
            Some(m) => {
                if !m.payload_sm3.is_empty() || m.payload_len != 0 {
                    return Err(Status::invalid_argument(
                        "payload_sm3 and payload_len belong in the first message only",
                    ));
                }
                data = m.data;
            }
            None => break,
        }
    }
    let info = blocking(move || upload.commit().map_err(blob_status)).await?;
    drop(reservation);
    Ok(info)
}

/// The next message of an upload, or its end; `NODE_UPLOAD_IDLE` if none comes within `idle`.
async fn next_upload_message<S>(
    stream: &mut S,
    idle: std::time::Duration,
    received: u64,
) -> Result<Option<pb::UploadChunk>, Status>
where
    S: Stream<Item = Result<pb::UploadChunk, Status>> + Unpin,
{
    match tokio::time::timeout(idle, tokio_stream::StreamExt::next(stream)).await {
        Err(_) => Err(code(
            &codes::NODE_UPLOAD_IDLE,
            format!(
                "the upload sent nothing for {} s after {received} bytes: it is ended and nothing of it is kept; upload again",
                idle.as_secs()
            ),
        )),
        Ok(None) => Ok(None),
        Ok(Some(m)) => m.map(Some),
    }
}

/// Whether `e` is the filesystem's "no space left" (or "quota exceeded").
fn out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

fn blob_status(e: BlobError) -> Status {
    match e {
        // The space ran out under the write (something else took it): the same refusal as
        // the guard's, not an internal error (docs/ops/disk.md).
        BlobError::Io { ref source, .. } if out_of_space(source) => {
            code(&codes::NODE_STORAGE_LOW, e.to_string())
        }
        BlobError::NotFound { .. } => code(&codes::EXCHANGE_BLOB_MISSING, e.to_string()),
        BlobError::TooLarge { .. }
        | BlobError::ImpossibleLength { .. }
        | BlobError::NotAPayload { .. }
        | BlobError::UnsupportedVersion { .. }
        | BlobError::LongerThanExpected { .. }
        | BlobError::ShorterThanExpected { .. }
        | BlobError::DigestMismatch { .. } => code(&codes::EXCHANGE_BLOB_REFUSED, e.to_string()),
        e => internal(NodeError::Custodian(e.to_string())),
    }
}

/// Checks that `der` is the caller's own encryption certificate, valid now.
fn own_enc_cert(
    core: &LocalNode,
    caller: &gmtls::PeerIdentity,
    common_name: &str,
    der: &[u8],
) -> Result<Certificate, Refusal> {
    let refuse = |why: String| Refusal(&codes::EXCHANGE_ENC_CERT_INVALID, why);
    if der.is_empty() {
        return Err(refuse(
            "give your encryption certificate (enc_cert): the data key is wrapped to it".into(),
        ));
    }
    let cert = Certificate::from_der(der)
        .map_err(|e| refuse(format!("the encryption certificate does not parse: {e}")))?;
    let want = caller.role.encryption_pair();
    if want.is_none()
        || cert.role() != want
        || cert.organisation().as_deref() != Some(caller.organisation.as_str())
        || cert.common_name().as_deref() != Some(common_name)
    {
        return Err(refuse(format!(
            "{} is not the encryption certificate of {common_name:?} of {:?}",
            cert.subject(),
            caller.organisation
        )));
    }
    core.authenticate(&cert)
        .map_err(|e| refuse(format!("the encryption certificate is refused: {e}")))?;
    Ok(cert)
}

impl ExchangeService {
    /// Judges a fetch on the tip's state: what, which version, whether this node holds it,
    /// and whether the caller may have it (and the encryption certificate to wrap to).
    fn judge(
        &self,
        caller: &gmtls::PeerIdentity,
        common_name: &str,
        req: &pb::FetchRequest,
    ) -> Result<(Judged, Result<Certificate, Refusal>), Status> {
        let core = &self.core;
        let me = core.validator();
        let (my_org, my_cn) = (
            me.organisation().unwrap_or_default(),
            me.common_name().unwrap_or_default(),
        );
        let tip = core.tip().0.height;
        let mid = if req.message_id.is_empty() {
            None
        } else {
            Some(digest("message_id", &req.message_id)?)
        };
        let looked = core
            .with_state(|v| -> Result<_, execution::ExecError> {
                // The supervisor's auditors read every dataset and message (docs/audit.md §4),
                // each fetch on the chain like any other.
                let supervising = caller.role == Role::Auditor
                    && execution::supervisor(v)?
                        .is_some_and(|s| s.organisation == caller.organisation);
                if let Some(mid) = mid {
                    return Ok(data::message(v, &mid)?.map(|m| {
                        let owner = m.organisation.clone();
                        let allowed = m.recipients.contains(&caller.organisation)
                            || caller.organisation == m.organisation
                            || supervising;
                        (
                            FetchObject::Message(mid),
                            0,
                            m.encode(),
                            m.payload,
                            owner,
                            Rule::Recipient(allowed),
                        )
                    }));
                }
                let Some(ds) = data::dataset(v, &req.dataset)? else {
                    return Ok(None);
                };
                let n = if req.version == 0 {
                    ds.versions
                } else {
                    req.version
                };
                let Some(ver) = data::version(v, &req.dataset, n)? else {
                    return Ok(None);
                };
                let rule = if caller.organisation == ds.organisation || supervising {
                    Rule::OwnMember
                } else {
                    Rule::Grantee(
                        data::latest_request(v, &caller.cert_id, &req.dataset)?.map(Box::new),
                    )
                };
                Ok(Some((
                    FetchObject::Dataset(req.dataset.clone()),
                    n,
                    ver.encode(),
                    ver.payload,
                    ds.organisation,
                    rule,
                )))
            })
            .map_err(internal)?;
        let (object, version, record, payload, owner, rule) = match looked {
            Ok(Some(x)) => x,
            Ok(None) => {
                return Err(code(
                    &codes::EXCHANGE_DATASET_UNKNOWN,
                    if req.message_id.is_empty() {
                        format!(
                            "no dataset {:?} with version {} in the catalogue",
                            req.dataset, req.version
                        )
                    } else {
                        "no such message".into()
                    },
                ));
            }
            Err(e) => return Err(internal(NodeError::from(e))),
        };
        if owner != my_org || payload.custodian != my_cn {
            return Err(code(
                &codes::EXCHANGE_NOT_CUSTODIAN,
                format!(
                    "node {my_cn:?} of {my_org:?} is not the custodian; {:?} of {owner:?} is (its endpoint is on the chain)",
                    payload.custodian
                ),
            ));
        }
        let mut judged = Judged {
            object,
            version,
            record,
            payload,
            request: Digest([0; 32]),
        };
        let verdict = match rule {
            Rule::Recipient(false) => Err(Refusal(
                &codes::EXCHANGE_NO_GRANT,
                format!(
                    "{:?} is not a recipient of this message",
                    caller.organisation
                ),
            )),
            Rule::Recipient(true) | Rule::OwnMember => {
                own_enc_cert(core, caller, common_name, &req.enc_cert)
            }
            Rule::Grantee(None) => Err(Refusal(
                &codes::EXCHANGE_NO_GRANT,
                format!(
                    "{:?} has not requested dataset {:?}",
                    caller.subject, req.dataset
                ),
            )),
            Rule::Grantee(Some(r)) => {
                judged.request = r.id;
                // The record lands in a later block: the grant must hold in the next one.
                grant_verdict(core, &r, Height(tip.0.saturating_add(1)))
            }
        };
        Ok((judged, verdict))
    }
}

/// Who may fetch what the tip's state says was asked for.
enum Rule {
    /// A message: whether the caller's organisation is its sender or a recipient.
    Recipient(bool),
    /// A dataset of the caller's own organisation, or any dataset for an auditor of the
    /// chain's supervisor.
    OwnMember,
    /// Another organisation's dataset: the caller's latest request for it, if any.
    Grantee(Option<Box<AccessRequest>>),
}

fn grant_verdict(core: &LocalNode, r: &AccessRequest, tip: Height) -> Result<Certificate, Refusal> {
    if r.status != data::RequestStatus::Granted {
        return Err(Refusal(
            &codes::EXCHANGE_NO_GRANT,
            format!("request {} is {}", r.id, r.status.as_str()),
        ));
    }
    if !r.live_at(tip) {
        return Err(Refusal(
            &codes::EXCHANGE_GRANT_EXPIRED,
            format!(
                "the grant of request {} expired at height {} (tip {})",
                r.id, r.expiry.0, tip.0
            ),
        ));
    }
    let cert = Certificate::from_der(&r.enc_cert).map_err(|e| {
        Refusal(
            &codes::EXCHANGE_ENC_CERT_INVALID,
            format!("the recorded encryption certificate does not parse: {e}"),
        )
    })?;
    core.authenticate(&cert).map_err(|e| {
        Refusal(
            &codes::EXCHANGE_ENC_CERT_INVALID,
            format!("the grantee's encryption certificate is refused now: {e}"),
        )
    })?;
    Ok(cert)
}

type FetchStream = Pin<Box<dyn Stream<Item = Result<pb::FetchChunk, Status>> + Send>>;

/// A requester's share of the fetch slots, given back when its fetch ends.
struct RequesterSlot(
    Arc<std::sync::Mutex<std::collections::HashMap<Digest, usize>>>,
    Digest,
);

impl RequesterSlot {
    fn take(
        map: &Arc<std::sync::Mutex<std::collections::HashMap<Digest, usize>>>,
        who: Digest,
    ) -> Option<Self> {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(who).or_insert(0);
        if *n >= MAX_FETCHES_PER_REQUESTER {
            return None;
        }
        *n += 1;
        Some(RequesterSlot(map.clone(), who))
    }
}

impl Drop for RequesterSlot {
    fn drop(&mut self) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// What a fetch holds until its stream is dropped or its deadline passes: its slots (one of
/// [`MAX_FETCHES`] and one of its requester's [`MAX_FETCHES_PER_REQUESTER`]) and the queue of
/// its chunks.
type Slots = (tokio::sync::OwnedSemaphorePermit, RequesterSlot);
type Hold = Arc<
    std::sync::Mutex<
        Option<(
            Slots,
            tokio_stream::wrappers::ReceiverStream<Result<pb::FetchChunk, Status>>,
        )>,
    >,
>;

/// A fetch's response stream. It holds the fetch's slots and its queued chunks until it is
/// dropped (the client read it to the end or went away), not merely until the last chunk was
/// queued, so that chunks queued for a client that stops reading count; and at the fetch's
/// deadline both are dropped regardless ([`hold`]: the stream then ends), because the HTTP/2
/// layer keeps a stream it cannot send on for as long as the connection lives (keepalive pings
/// keep it alive) — holding at most the one chunk it already took.
struct Held {
    held: Hold,
    timer: tokio::task::AbortHandle,
}

impl Stream for Held {
    type Item = Result<pb::FetchChunk, Status>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some((_, rx)) => Pin::new(rx).poll_next(cx),
            None => std::task::Poll::Ready(None),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.timer.abort();
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The response stream over `rx`, holding `slots` and `rx` until it is dropped or `deadline`
/// passes; its timer is cancelled when it is dropped.
fn hold(
    rx: tokio::sync::mpsc::Receiver<Result<pb::FetchChunk, Status>>,
    slots: Slots,
    deadline: tokio::time::Instant,
) -> Held {
    let held: Hold = Arc::new(std::sync::Mutex::new(Some((
        slots,
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))));
    let expiry = Arc::downgrade(&held);
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        if let Some(h) = expiry.upgrade() {
            h.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    })
    .abort_handle();
    Held { held, timer }
}

/// Frees a requester's refusal slot when its refusal is answered.
struct RefusalSlot(
    Arc<std::sync::Mutex<std::collections::HashSet<Digest>>>,
    Digest,
);

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

fn chunk(part: pb::fetch_chunk::Part) -> pb::FetchChunk {
    pb::FetchChunk { part: Some(part) }
}

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let caller = self.member(&request)?;
        let custodian = self.custodian()?;
        let me = self.core.validator();
        let my_org = me.organisation().unwrap_or_default();
        if caller.organisation != my_org || !matches!(caller.role, Role::Admin | Role::User) {
            return Err(code(
                &codes::EXCHANGE_UPLOAD_DENIED,
                format!(
                    "{} ({}) may not upload to a custodian of {my_org:?}: admins and users of the organisation only",
                    caller.subject, caller.role
                ),
            ));
        }
        // Low on space (`crate::disk`): a payload is a write like a block.
        if let Some(r) = self.core.storage_refusal() {
            return Err(refusal_status(&r));
        }
        let info = receive_upload(
            self.core.disk().cloned(),
            custodian.blobs.clone(),
            request.into_inner(),
            UPLOAD_IDLE,
        )
        .await?;
        tracing::info!(blob = %info.id, len = info.len, by = %caller.subject, "blob stored");
        Ok(Response::new(pb::UploadResponse {
            payload_sm3: Digest::from(info.id).0.to_vec(),
            payload_len: info.len,
            custodian: me.common_name().unwrap_or_default(),
        }))
    }

    type FetchStream = FetchStream;

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let caller = self.member(&request)?;
        let common_name = peer_of(&request).common_name.unwrap_or_default();
        let custodian = self.custodian()?;
        let permit = Arc::clone(&self.fetching)
            .try_acquire_owned()
            .map_err(|_| {
                code(
                    &codes::EXCHANGE_BUSY,
                    format!(
                        "this custodian serves {MAX_FETCHES} fetches at once; retry in a moment"
                    ),
                )
            })?;
        let mine = RequesterSlot::take(&self.per_requester, caller.cert_id).ok_or_else(|| {
            code(
                &codes::EXCHANGE_BUSY,
                format!(
                    "you are being served {MAX_FETCHES_PER_REQUESTER} fetches already; retry when one ends"
                ),
            )
        })?;
        let req = request.into_inner();
        let this = self.clone();
        let (caller2, cn) = (caller.clone(), common_name.clone());
        let judged = blocking(move || this.judge(&caller2, &cn, &req)).await?;
        let (judged, verdict) = judged;
        let grantee = match verdict {
            Ok(cert) => cert,
            Err(Refusal(c, why)) => {
                let requester = caller.cert_id;
                let first = self
                    .refusing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(requester);
                if !first {
                    tracing::info!(by = %caller.subject, code = c.name, "fetch refused, not recorded (a refusal of this requester is being recorded): {why}");
                    return Err(code(
                        &codes::EXCHANGE_BUSY,
                        format!(
                            "{}: {why}; not recorded: your previous refused fetch is still being recorded, retry in a moment",
                            c.name
                        ),
                    ));
                }
                let slot = RefusalSlot(self.refusing.clone(), requester);
                let this = self.clone();
                let number = c.number;
                // Recorded in a task of its own, which keeps the requester's slot until the
                // record is committed even if the caller goes away.
                let recording = tokio::spawn(async move {
                    let _slot = slot;
                    let recorded = blocking(move || {
                        this.record(&judged, &requester, number, Vec::new(), Vec::new())
                    })
                    .await;
                    let committed = match recorded {
                        Ok((id, rx)) => committed(id, rx).await.map(|h| (id, h)),
                        Err(e) => Err(e),
                    };
                    match committed {
                        Ok((id, height)) => format!(
                            "; the refusal is recorded by transaction {id} at height {}",
                            height.0
                        ),
                        Err(e) => {
                            tracing::error!("a refused fetch was not recorded: {}", e.message());
                            format!("; recording the refusal failed: {}", e.message())
                        }
                    }
                });
                let suffix = recording
                    .await
                    .unwrap_or_else(|e| format!("; recording the refusal failed: {e}"));
                tracing::info!(by = %caller.subject, code = c.name, "fetch refused: {why}");
                return Err(code(c, format!("{why}{suffix}")));
            }
        };
        let id = BlobId::from(judged.payload.payload_sm3);
        let grantee_der = grantee.der().to_vec();
        // Unwrap in the token, wrap to the caller: the key lives only in this closure.
        let (c2, env_in) = (custodian.clone(), judged.payload.custodian_envelope.clone());
        let envelope = blocking(move || {
            if !c2.blobs.contains(&id).map_err(blob_status)? {
                return Err(code(
                    &codes::EXCHANGE_BLOB_MISSING,
                    format!("this custodian does not hold blob {id}"),
                ));
            }
            if env_in.recipient != c2.enc_id {
                return Err(code(
                    &codes::EXCHANGE_KEY_UNAVAILABLE,
                    format!(
                        "the version's key is wrapped to encryption certificate {}, this node's is {}",
                        env_in.recipient, c2.enc_id
                    ),
                ));
            }
            let key = c2.key.decrypt(&env_in.cipher, CipherFormat::Der).map_err(|e| {
                code(
                    &codes::EXCHANGE_KEY_UNAVAILABLE,
                    format!("the token could not unwrap the data key: {e}"),
                )
            })?;
            crypto_sm::sm2::encrypt(
                &grantee.public_key(),
                key.expose(),
                CipherFormat::Der,
                c2.rng.as_ref(),
            )
            .map_err(|e| {
                code(
                    &codes::EXCHANGE_KEY_UNAVAILABLE,
                    format!("cannot wrap the data key to the caller: {e}"),
                )
            })
        })
        .await?;
        let this = self.clone();
        let requester = caller.cert_id;
        // A served fetch without a grant names the certificate its key went to, so that the
        // chain can check its organisation (the owner's, a recipient's).
        let enc_cert = if judged.request == Digest([0; 32]) {
            grantee_der
        } else {
            Vec::new()
        };
        // The record names the envelope by its SM3 only: the envelope itself travels in the
        // key part, after the record committed with a successful receipt, so a record that fails
        // (a revocation landing first) leaves no key on the chain or in the pool.
        let (j, env) = (judged, crypto_sm::sm3::sm3(&envelope).0.to_vec());
        let (record_id, record_rx, judged) = blocking(move || {
            let (id, rx) = this.record(&j, &requester, 0, env, enc_cert)?;
            Ok((id, rx, j))
        })
        .await?;
        tracing::info!(by = %caller.subject, record = %record_id, "fetch served");
        let reader = {
            let blobs = custodian.blobs.clone();
            blocking(move || blobs.open_read(&id).map_err(blob_status)).await?
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::FetchChunk, Status>>(FETCH_QUEUE);
        let payload_len = judged.payload.payload_len;
        let header = pb::FetchHeader {
            record: judged.record,
            version: judged.version,
            request_id: if judged.request == Digest([0; 32]) {
                Vec::new()
            } else {
                judged.request.0.to_vec()
            },
            record_tx_id: record_id.as_bytes().to_vec(),
        };
        // A whole fetch has a deadline too: a minute plus a second per MiB of payload, so that
        // a client taking a chunk just before each stall limit cannot hold its slot for ever.
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(60 + payload_len / (1 << 20));
        tokio::spawn(async move {
            // Each send waits at most STALL for the client to take the chunk; the blob is read
            // a chunk at a time on the blocking pool, which is never held while waiting.
            let send = |c: Result<pb::FetchChunk, Status>| {
                let tx = tx.clone();
                async move {
                    let limit =
                        STALL.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    matches!(tokio::time::timeout(limit, tx.send(c)).await, Ok(Ok(())))
                }
            };
            if !send(Ok(chunk(pb::fetch_chunk::Part::Header(header)))).await {
                return;
            }
            // The key only after its fetch record is committed with a successful receipt; the
            // data streams meanwhile, and the key goes out between two chunks as soon as the
            // record commits, so that the client decrypts while the rest arrives.
            let (key_tx, mut key_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let key = committed(record_id, record_rx).await.map(|height| {
                    chunk(pb::fetch_chunk::Part::Key(pb::FetchKey {
                        envelope,
                        recorded_at: height.0,
                    }))
                });
                let _ = key_tx.send(key);
            });
            let mut key_sent = false;
            let mut reader = reader;
            loop {
                if !key_sent && let Ok(key) = key_rx.try_recv() {
                    let failed = key.is_err();
                    if !send(key).await || failed {
                        return;
                    }
                    key_sent = true;
                }
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; CHUNK];
                    let n = exchange::payload::read_full(&mut reader, &mut buf).map_err(|e| {
                        internal(NodeError::io(
                            std::path::Path::new(&format!("blob {id}")),
                            e,
                        ))
                    })?;
                    buf.truncate(n);
                    Ok((reader, buf))
                })
                .await;
                match read {
                    Ok(Ok((r, buf))) => {
                        if buf.is_empty() {
                            break;
                        }
                        reader = r;
                        if !send(Ok(chunk(pb::fetch_chunk::Part::Data(buf)))).await {
                            tracing::info!(blob = %id, "fetch ended: the client stopped reading");
                            return;
                        }
                    }
                    Ok(Err(s)) => {
                        let _ = send(Err(s)).await;
                        return;
                    }
                    Err(e) => {
                        let _ = send(Err(Status::internal(format!("reader failed: {e}")))).await;
                        return;
                    }
                }
            }
            if !key_sent {
                let key = key_rx
                    .await
                    .unwrap_or_else(|_| Err(Status::internal("the commit wait ended")));
                let _ = send(key).await;
            }
        });
        Ok(Response::new(Box::pin(hold(rx, (permit, mine), deadline))))
    }

    async fn get_dataset(
        &self,
        request: Request<pb::GetDatasetRequest>,
    ) -> Result<Response<pb::DatasetResponse>, Status> {
        self.member(&request)?;
        let req = request.into_inner();
        let limit = page(req.limit);
        let id = req.dataset.clone();
        let (found, height) = read_tip(&self.core, move |v| {
            let Some(ds) = data::dataset(v, &id)? else {
                return Ok(None);
            };
            let versions = (1..=ds.versions)
                .filter_map(|n| data::version(v, &id, n).transpose())
                .map(|r| r.map(|ver| ver.encode()))
                .collect::<Result<Vec<_>, _>>()?;
            let requests = data::requests(v, &ds, req.requests_from, limit)?
                .into_iter()
                .map(|r| r.encode())
                .collect();
            Ok(Some((ds.encode(), versions, requests)))
        })
        .await?;
        let (dataset, versions, requests) = found.ok_or_else(|| {
            code(
                &codes::EXCHANGE_DATASET_UNKNOWN,
                format!("no dataset {:?} in the catalogue", req.dataset),
            )
        })?;
        Ok(Response::new(pb::DatasetResponse {
            dataset,
            versions,
            requests,
            height,
        }))
    }

    async fn list_datasets(
        &self,
        request: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        self.member(&request)?;
        let req = request.into_inner();
        let (datasets, height) = read_tip(&self.core, move |v| {
            data::datasets(v, req.from, page(req.limit))
        })
        .await?;
        Ok(Response::new(pb::ListDatasetsResponse { datasets, height }))
    }

    async fn get_access_request(
        &self,
        request: Request<pb::GetAccessRequestRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        self.member(&request)?;
        let id = digest("request_id", &request.into_inner().request_id)?;
        let (r, height) = read_tip(&self.core, move |v| data::request(v, &id)).await?;
        let r = r.ok_or_else(|| {
            code(
                &codes::EXCHANGE_REQUEST_UNKNOWN,
                format!("no access request {id}"),
            )
        })?;
        Ok(Response::new(pb::RecordResponse {
            record: r.encode(),
            height,
        }))
    }

    async fn get_fetch_log(
        &self,
        request: Request<pb::GetFetchLogRequest>,
    ) -> Result<Response<pb::FetchLogResponse>, Status> {
        self.member(&request)?;
        let req = request.into_inner();
        let object = if req.message_id.is_empty() {
            FetchObject::Dataset(req.dataset)
        } else {
            FetchObject::Message(digest("message_id", &req.message_id)?)
        };
        let ((records, total), height) = read_tip(&self.core, move |v| {
            data::fetch_log(v, &object, req.from, page(req.limit))
        })
        .await?;
        Ok(Response::new(pb::FetchLogResponse {
            records: records.iter().map(|r| r.encode()).collect(),
            total,
            height,
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::MessageResponse>, Status> {
        self.member(&request)?;
        let id = digest("message_id", &request.into_inner().message_id)?;
        let (found, height) = read_tip(&self.core, move |v| {
            let Some(m) = data::message(v, &id)? else {
                return Ok(None);
            };
            let acknowledgements = m
                .recipients
                .iter()
                .filter_map(|org| data::acknowledgement(v, &id, org).transpose())
                .map(|r| r.map(|a| a.encode()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((m.encode(), acknowledgements)))
        })
        .await?;
        let (message, acknowledgements) = found
            .ok_or_else(|| code(&codes::EXCHANGE_MESSAGE_UNKNOWN, format!("no message {id}")))?;
        Ok(Response::new(pb::MessageResponse {
            message,
            acknowledgements,
            height,
        }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        self.member(&request)?;
        let req = request.into_inner();
        let (ids, height) = read_tip(&self.core, move |v| {
            let list = if req.sent { data::outbox } else { data::inbox };
            list(v, &req.organisation, req.from, page(req.limit))
        })
        .await?;
        Ok(Response::new(pb::ListMessagesResponse {
            message_ids: ids.iter().map(|d| d.0.to_vec()).collect(),
            height,
        }))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        self.member(&request)?;
        let req = request.into_inner();
        let (org, node) = (req.organisation.clone(), req.node.clone());
        let (e, height) = read_tip(&self.core, move |v| data::endpoint(v, &org, &node)).await?;
        let e = e.ok_or_else(|| {
            code(
                &codes::EXCHANGE_ENDPOINT_UNKNOWN,
                format!(
                    "node {:?} of {:?} has recorded no endpoint",
                    req.node, req.organisation
                ),
            )
        })?;
        Ok(Response::new(pb::RecordResponse {
            record: e.encode(),
            height,
        }))
    }

    async fn get_escrow(
        &self,
        request: Request<pb::GetEscrowRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        self.member(&request)?;
        let (list, height) = read_tip(&self.core, |v| data::escrow_recipients(v)).await?;
        Ok(Response::new(pb::RecordResponse {
            record: if list.is_empty() {
                Vec::new()
            } else {
                data::encode_escrow(&list)
            },
            height,
        }))
    }
}

/// A listing's page size: `limit`, or 100 when 0.
fn page(limit: u32) -> u32 {
    if limit == 0 { 100 } else { limit }
}

/// Runs `f` on the tip's state on the blocking pool; returns its answer and the tip's height.
async fn read_tip<T: Send + 'static>(
    core: &Arc<LocalNode>,
    f: impl FnOnce(&dyn execution::StateRead) -> Result<T, execution::ExecError> + Send + 'static,
) -> Result<(T, u64), Status> {
    let core = core.clone();
    blocking(move || {
        let height = core.tip().0.height.0;
        let answer = core
            .with_state(|v| f(v))
            .map_err(internal)?
            .map_err(|e| internal(NodeError::from(e)))?;
        Ok((answer, height))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requester of these tests.
    const WHO: Digest = Digest([7; 32]);

    /// One fetch's slots taken from a node with a single fetch slot: the node's semaphore and
    /// per-requester map (to watch), the slots, and the fetch's queue.
    #[allow(clippy::type_complexity)]
    fn one_fetch() -> (
        Arc<tokio::sync::Semaphore>,
        Arc<std::sync::Mutex<std::collections::HashMap<Digest, usize>>>,
        Slots,
        tokio::sync::mpsc::Sender<Result<pb::FetchChunk, Status>>,
        tokio::sync::mpsc::Receiver<Result<pb::FetchChunk, Status>>,
    ) {
        let fetching = Arc::new(tokio::sync::Semaphore::new(1));
        let per = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let permit = fetching.clone().try_acquire_owned().unwrap();
        let slot = RequesterSlot::take(&per, WHO).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(FETCH_QUEUE);
        (fetching, per, (permit, slot), tx, rx)
    }

    /// review14c finding 6: the slots were given back when the sending task had queued its
    /// last chunk, while up to FETCH_QUEUE chunks stayed held for a client that stopped
    /// reading. Now the response stream holds them until it is dropped.
    #[test]
    fn a_fetchs_slots_are_held_until_its_stream_is_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (fetching, per, slots, tx, rx) = one_fetch();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            let mut held = hold(rx, slots, deadline);
            // The sender queues its chunks and ends; nothing has been read.
            for _ in 0..FETCH_QUEUE {
                tx.send(Ok(chunk(pb::fetch_chunk::Part::Data(vec![1; 8]))))
                    .await
                    .unwrap();
            }
            drop(tx);
            assert_eq!(fetching.available_permits(), 0, "the global slot is held");
            assert_eq!(
                per.lock().unwrap().get(&WHO),
                Some(&1),
                "the requester's too"
            );
            // Reading to the end does not give them back either; dropping the stream does.
            while tokio_stream::StreamExt::next(&mut held).await.is_some() {}
            assert_eq!(fetching.available_permits(), 0);
            drop(held);
            assert_eq!(fetching.available_permits(), 1);
            assert_eq!(per.lock().unwrap().get(&WHO), None);
        });
    }

    /// review15 finding 2: a client that stops reading (while answering keepalive pings) kept
    /// its stream, and with it the slots, for as long as the connection lived. The fetch's
    /// deadline gives them back though the stream is still held.
    #[test]
    fn a_fetchs_deadline_gives_its_slots_back_though_its_stream_is_held() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (fetching, per, slots, tx, rx) = one_fetch();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
            let held = hold(rx, slots, deadline);
            tx.send(Ok(chunk(pb::fetch_chunk::Part::Data(vec![1; 8]))))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            assert_eq!(fetching.available_permits(), 0, "held before the deadline");
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            assert_eq!(
                fetching.available_permits(),
                1,
                "given back at the deadline"
            );
            assert_eq!(per.lock().unwrap().get(&WHO), None);
            drop(held);
            assert_eq!(fetching.available_permits(), 1);
        });
    }

    /// review16 finding 1: the deadline gives the slots back but not the chunks queued for a
    /// client that stopped reading: the stream (FETCH_QUEUE MiB) stays held for as long as the
    /// connection lives, so fetches opened one deadline after another pin memory without any
    /// slot bounding it (MAX_FETCHES × (FETCH_QUEUE + 1) MiB no longer holds).
    #[test]
    fn review16_a_fetchs_deadline_releases_its_queued_chunks_with_its_slots() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (fetching, _per, slots, tx, rx) = one_fetch();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
            let held = hold(rx, slots, deadline);
            for _ in 0..FETCH_QUEUE {
                tx.send(Ok(chunk(pb::fetch_chunk::Part::Data(vec![1; CHUNK]))))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            assert_eq!(fetching.available_permits(), 1, "the slot was given back");
            // The client never read and its connection lives: the stream is still held.
            assert!(
                tx.is_closed() && tx.capacity() == FETCH_QUEUE,
                "{FETCH_QUEUE} MiB of chunks still queued for a fetch whose slot is reused"
            );
            drop(held);
        });
    }

    /// review16 finding 2: each fetch spawns a timer task that sleeps until the fetch's
    /// deadline (60 s plus a second per MiB: days for a large payload) even when its stream
    /// was dropped at once; nothing cancels it.
    #[test]
    fn review16_a_dropped_fetch_stream_leaves_no_timer_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_fetching, _per, slots, _tx, rx) = one_fetch();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            drop(hold(rx, slots, deadline));
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                0,
                "the stream was dropped; its timer still sleeps for an hour"
            );
        });
    }

    /// The messages of an upload of a GMCP-shaped payload of `chunks` full chunks and a last
    /// one of 16 bytes (the digest is not checked before the commit; these never reach it):
    /// its length, and messages of at most [`CHUNK`] bytes.
    fn upload_messages(chunks: usize) -> (u64, Vec<pb::UploadChunk>) {
        let len = 13 + chunks * ((1 << 20) + 16) + 16;
        let mut bytes = vec![0x5a; len];
        bytes[..5].copy_from_slice(b"GMCP\x01");
        let mut out: Vec<pb::UploadChunk> = bytes
            .chunks(CHUNK)
            .map(|c| pb::UploadChunk {
                data: c.to_vec(),
                ..Default::default()
            })
            .collect();
        out[0].payload_sm3 = vec![0x11; 32];
        out[0].payload_len = len as u64;
        (len as u64, out)
    }

    fn blob_store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        (dir, blobs)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn code_of(s: &Status) -> &str {
        s.metadata()
            .get(api::CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Review r1 H1: an upload was judged against the free-space guard once, before its first
    /// message, and then wrote on whatever the guard said. The space runs out after its first
    /// chunk here (the guard's path now reads /proc: 0 bytes free): the upload stops before its
    /// second chunk with NODE_STORAGE_LOW, its staging file is gone and its reservation
    /// released.
    #[test]
    fn review_r1_an_upload_stops_at_the_chunk_where_the_space_ran_out() {
        let flip = crate::disk::testing::Flip::new();
        let guard = flip.guard(Arc::new(crate::metrics::Metrics::default()));
        let (_dir, blobs) = blob_store();
        let before = test_support::dir_entries(blobs.dir());
        let (len, messages) = upload_messages(3);
        let fill = Arc::new(flip);
        let filler = fill.clone();
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::iter(messages.into_iter().enumerate()),
            move |(i, m)| {
                // The second message is asked for once the first chunk is written.
                if i == 1 {
                    filler.fill();
                }
                Ok(m)
            },
        );
        let e = rt()
            .block_on(receive_upload(
                Some(guard.clone()),
                blobs.clone(),
                stream,
                UPLOAD_IDLE,
            ))
            .unwrap_err();
        assert_eq!(code_of(&e), "NODE_STORAGE_LOW", "{e:?}");
        assert!(
            e.message().contains(&format!(
                "was stopped after {CHUNK} of {len} bytes and nothing of it is kept"
            )),
            "{e:?}"
        );
        assert_eq!(
            test_support::dir_entries(blobs.dir()),
            before,
            "staging file left"
        );
        assert_eq!(guard.reserved(), 0, "reservation not released");
    }

    /// Review r1 H1: an upload whose announced length would take the blob store's filesystem
    /// below the threshold is refused before its first byte is written (NODE_STORAGE_LOW, no
    /// staging file), though the node is not low.
    #[test]
    fn review_r1_an_upload_longer_than_the_room_above_the_threshold_is_refused_up_front() {
        let (_dir, blobs) = blob_store();
        let free = crate::disk::free_bytes(blobs.dir()).unwrap();
        // 512 MiB above the threshold; the payload announces 999 MiB and more.
        let cfg = crate::config::StorageConfig {
            min_free_mib: (free >> 20).saturating_sub(512).max(1),
            resume_margin_mib: 1,
        };
        assert!(free >> 20 > 1024, "premise: 1 GiB free for the test");
        let guard = Arc::new(
            crate::disk::DiskGuard::new(
                &[("blob store", blobs.dir().to_path_buf())],
                cfg,
                Arc::new(crate::metrics::Metrics::default()),
                Default::default(),
            )
            .unwrap(),
        );
        assert!(!guard.is_low());
        let len: u64 = 13 + 999 * ((1 << 20) + 16) + 16;
        let first = pb::UploadChunk {
            payload_sm3: vec![0x11; 32],
            payload_len: len,
            data: b"GMCP\x01".to_vec(),
        };
        let before = test_support::dir_entries(blobs.dir());
        let e = rt()
            .block_on(receive_upload(
                Some(guard.clone()),
                blobs.clone(),
                tokio_stream::iter(vec![Ok(first)]),
                UPLOAD_IDLE,
            ))
            .unwrap_err();
        assert_eq!(code_of(&e), "NODE_STORAGE_LOW", "{e:?}");
        assert!(
            e.message()
                .contains(&format!("an upload of {len} bytes would leave ")),
            "{e:?}"
        );
        assert_eq!(test_support::dir_entries(blobs.dir()), before);
        assert_eq!(guard.reserved(), 0);
    }

    /// Review r1 H1: the upload stream had no idle limit (only fetches had one): a client that
    /// stops sending held its staging file (and now its reservation) for as long as its
    /// connection lived. One that sends nothing for the idle limit is ended, nothing kept.
    #[test]
    fn review_r1_an_idle_upload_is_ended_and_nothing_is_kept() {
        let (_dir, blobs) = blob_store();
        let before = test_support::dir_entries(blobs.dir());
        let (_, mut messages) = upload_messages(2);
        messages.truncate(1);
        // The first chunk, then nothing, for ever.
        let stream = tokio_stream::StreamExt::chain(
            tokio_stream::iter(messages.into_iter().map(Ok)),
            tokio_stream::pending(),
        );
        let e = rt()
            .block_on(receive_upload(
                None,
                blobs.clone(),
                stream,
                std::time::Duration::from_millis(200),
            ))
            .unwrap_err();
        assert_eq!(code_of(&e), "NODE_UPLOAD_IDLE", "{e:?}");
        assert!(
            e.message().contains(&format!("after {CHUNK} bytes")),
            "{e:?}"
        );
        assert_eq!(test_support::dir_entries(blobs.dir()), before);
    }

    /// Review r1 H1: a write that failed for lack of space (ENOSPC, EDQUOT) reached the client
    /// as NODE_CUSTODIAN (INTERNAL, exit 2); it is NODE_STORAGE_LOW (UNAVAILABLE, exit 3), like
    /// the guard's refusal. Other I/O failures stay internal.
    #[test]
    fn review_r1_a_write_out_of_space_is_storage_low_not_internal() {
        let io = |errno: i32| BlobError::Io {
            step: "write",
            path: "/srv/blobs/x.blob.tmp".into(),
            source: std::io::Error::from_raw_os_error(errno),
        };
        // ENOSPC, EDQUOT (Linux).
        for errno in [28, 122] {
            let s = blob_status(io(errno));
            assert_eq!(code_of(&s), "NODE_STORAGE_LOW", "{s:?}");
            assert_eq!(s.code(), tonic::Code::Unavailable);
        }
        // EIO.
        assert_eq!(code_of(&blob_status(io(5))), "NODE_CUSTODIAN");
    }
}
