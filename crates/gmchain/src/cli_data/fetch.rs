//! Receiving a fetch: the custodian's stream — a header, the payload in chunks, and one key
//! part once the fetch record is committed (between two chunks, or after the last) — checked,
//! hashed and decrypted while it arrives, and the plaintext released only when everything
//! verified.
//!
//! ```text
//! connection (TLS; this thread) ─pieces─▶ payload stage: SM3 of the payload; until the key
//!                                          arrives, the ciphertext waits in a nameless file
//!                                   ─ciphertext─▶ decrypt stage: SM4-GCM, chunk by chunk
//!                                                  ─plaintext─▶ output stage: SM3, write
//! ```
//!
//! Each stage is a thread, joined by queues of at most [`DEPTH`] chunks of at most
//! [`MAX_DATA_PART`] bytes each (memory: a few MiB for any size, whatever the custodian sends).
//! The plaintext goes to a nameless temporary file (unlinked at creation, so a kill leaves
//! nothing) and is copied to a staging file next to `--out` (or to standard output) only after
//! the payload's length and SM3, every chunk's tag and the plaintext's length and SM3 matched
//! the catalogue, and the custodian's record of this fetch was found in the chain's fetch log
//! ([`FetchLog`]); the staging file is then synced and renamed. On any failure nothing is in
//! `--out`'s directory and an old file at `--out` is left as it was. A custodian silent for
//! `--wait` seconds ends the fetch (exit 3).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use api::v1 as pb;
use crypto::{CipherFormat, Digest};
use crypto_sm::sm3::Sm3Context;
use crypto_sm::sm4::Sm4Secret;
use exchange::payload;
use tokio_stream::StreamExt;

use super::{anonymous_temp, refusal};
use crate::Failure;

/// Chunks in flight between two stages: with data parts of at most [`MAX_DATA_PART`], the
/// memory a fetch holds is a few MiB whatever the payload's size.
const DEPTH: usize = 4;

/// The largest data part a custodian may send (it sends 1 MiB chunks of the blob); a larger or
/// an empty one fails the fetch.
pub(super) const MAX_DATA_PART: usize = 1 << 20;

/// What the whole stream may take per MiB of payload beyond `--wait` (the custodian allows
/// itself a minute plus a second per MiB; `--wait`'s default, 90 s, exceeds the minute it may
/// take to record the fetch, sending nothing meanwhile).
const PER_MIB: std::time::Duration = std::time::Duration::from_secs(2);

/// What the chain says the fetched payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Expected {
    /// The canonical record (Version or Message) the header must carry.
    pub(super) record: Vec<u8>,
    pub(super) payload_len: u64,
    pub(super) payload_sm3: Digest,
    pub(super) plaintext_len: u64,
    pub(super) plaintext_sm3: Digest,
    /// A confidential dataset's title and description, sealed under the version's data key
    /// (empty: none).
    pub(super) sealed_metadata: Vec<u8>,
    /// The version number (0 for a message), as the fetch log records it.
    pub(super) version: u64,
}

impl Expected {
    pub(super) fn of(
        record: Vec<u8>,
        p: &execution::data::Payload,
        sealed_metadata: Vec<u8>,
        version: u64,
    ) -> Expected {
        Expected {
            record,
            payload_len: p.payload_len,
            payload_sm3: p.payload_sm3,
            plaintext_len: p.plaintext_len,
            plaintext_sm3: p.plaintext_sm3,
            sealed_metadata,
            version,
        }
    }
}

/// A confidential dataset's metadata, opened with the version's data key.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Metadata {
    pub(super) title: String,
    pub(super) description: String,
}

/// A fetch that did not verify: exit 1, and nothing at `--out`.
pub(super) fn verify_failed(what: impl std::fmt::Display) -> Failure {
    Failure::NotVerified(format!(
        "EXCHANGE_VERIFY_FAILED: {what}; nothing was written"
    ))
}

/// A verified fetch, its plaintext waiting in a nameless file until [`Fetched::release`].
#[derive(Debug)]
pub(super) struct Fetched {
    pub(super) header: pb::FetchHeader,
    /// The height of the block holding the fetch record.
    pub(super) recorded_at: u64,
    pub(super) plaintext_len: u64,
    pub(super) plaintext_sm3: Digest,
    pub(super) payload_sm3: Digest,
    /// The sealed metadata of a confidential dataset, opened.
    pub(super) metadata: Option<Metadata>,
    /// SM3 of the envelope the key came in (the fetch record on the chain names it).
    pub(super) envelope_sm3: Digest,
    /// The verified plaintext, until released.
    plain: Option<File>,
}

impl Fetched {
    /// Copies the verified plaintext to a staging file next to `out`, syncs it, renames it
    /// into place and syncs the directory; or copies it to standard output.
    pub(super) fn release(&mut self, out: Option<&Path>) -> Result<(), Failure> {
        let plain = self
            .plain
            .take()
            .ok_or_else(|| Failure::BadInput("the plaintext was released already".into()))?;
        release(plain, out)
    }
}

/// Receives `stream` and opens the data key with `key`; the plaintext, verified against
/// `expected`, waits in a nameless file for [`Fetched::release`]. The custodian's silence is
/// limited to `idle` (`--wait`), the whole stream to `idle` plus [`PER_MIB`] for each MiB of
/// payload.
pub(super) async fn receive<S>(
    stream: S,
    expected: &Expected,
    key: &dyn crypto::Decrypter,
    idle: std::time::Duration,
) -> Result<Fetched, Failure>
where
    S: tokio_stream::Stream<Item = Result<pb::FetchChunk, tonic::Status>> + Unpin,
{
    let sink = anonymous_temp()?;
    let (tx, rx) = tokio::sync::mpsc::channel(DEPTH);
    let stage = spawn("payload", move || payload_stage(rx, sink))?;
    let forwarded = forward(stream, expected, key, &tx, idle).await;
    drop(tx);
    let seen = join(stage);
    let (header, recorded_at, metadata, envelope_sm3) = match forwarded {
        Ok(h) => h,
        Err(Stop::Failed(f)) => return Err(f),
        // The payload stage stopped taking pieces: its own error says why.
        Err(Stop::StageGone) => {
            return Err(match seen {
                Err(f)
                | Ok(Seen {
                    opened: Some(Err(f)),
                    ..
                }) => f,
                Ok(_) => verify_failed("the payload stage stopped before the stream ended"),
            });
        }
    };
    let seen = seen?;
    let opened = match seen.opened {
        // The decryption stopped first (a tag, the output): its error, not a partial digest.
        Some(Err(f)) if !seen.complete => return Err(f),
        Some(o) => o,
        None => {
            return Err(verify_failed(
                "the stream ended before the key (no committed fetch record, no key)",
            ));
        }
    };
    if seen.len != expected.payload_len {
        return Err(verify_failed(format!(
            "received {} bytes of payload, the catalogue records {}",
            seen.len, expected.payload_len
        )));
    }
    if seen.sm3 != expected.payload_sm3 {
        return Err(verify_failed(format!(
            "the payload's SM3 is {}, the catalogue records {}",
            seen.sm3, expected.payload_sm3
        )));
    }
    let opened = opened?;
    if opened.len != expected.plaintext_len || opened.sm3 != expected.plaintext_sm3 {
        return Err(verify_failed(format!(
            "the plaintext ({} bytes, SM3 {}) is not the catalogue's ({} bytes, SM3 {})",
            opened.len, opened.sm3, expected.plaintext_len, expected.plaintext_sm3
        )));
    }
    Ok(Fetched {
        header,
        recorded_at,
        plaintext_len: opened.len,
        plaintext_sm3: opened.sm3,
        payload_sm3: seen.sm3,
        metadata,
        envelope_sm3,
        plain: Some(opened.sink),
    })
}

/// The fetch log's page when looking for a record from its end.
const LOG_PAGE: u64 = 32;

/// Where a fetch's record is looked for: the chain's fetch log of a dataset or a message, read
/// from the node this command is connected to (not from the custodian), each read bounded by
/// `--wait`.
pub(super) struct FetchLog<'a> {
    pub(super) ex: &'a mut api::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
    pub(super) object: &'a execution::data::FetchObject,
    pub(super) wait: std::time::Duration,
}

impl FetchLog<'_> {
    /// One read of the log: records `from` on, at most `limit`; the log's length and the node's
    /// height.
    async fn read(&mut self, from: u64, limit: u64) -> Result<pb::FetchLogResponse, Failure> {
        use execution::data::FetchObject;
        let (dataset, message_id) = match self.object {
            FetchObject::Dataset(id) => (id.clone(), Vec::new()),
            FetchObject::Message(m) => (String::new(), m.0.to_vec()),
        };
        let call = self.ex.get_fetch_log(pb::GetFetchLogRequest {
            dataset,
            message_id,
            from,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        });
        match tokio::time::timeout(self.wait, call).await {
            Err(_) => Err(Failure::Unreachable(format!(
                "the node did not answer a read of the fetch log within {} s (--wait); nothing was written",
                self.wait.as_secs()
            ))),
            Ok(Err(s)) => Err(node_failed("reading the fetch log", s)),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    /// The log's length: read before the fetch is asked, so that only a record added after it
    /// can be its trace.
    pub(super) async fn len(&mut self) -> Result<u64, Failure> {
        Ok(self.read(u64::MAX, 1).await?.total)
    }

    /// Finds this fetch's record: added after the log held `before` records, by the requester
    /// `me` (SM3 of this command's TLS certificate, when known), served, for the expected
    /// version, at the height the key part named, under the request the header named, and
    /// naming the envelope the key came in by its SM3. Without it the fetch left no trace the
    /// custodian did not merely claim: exit 1, and nothing is released. A connected node
    /// behind the custodian is waited for, up to `--wait`.
    pub(super) async fn find(
        &mut self,
        before: u64,
        me: Option<Digest>,
        expected: &Expected,
        got: &Fetched,
    ) -> Result<execution::data::FetchRecord, Failure> {
        use execution::data::FetchRecord;
        let unlogged = |why: String| {
            verify_failed(format!(
                "the custodian's record of this fetch (transaction {}, height {}) {why}",
                hex::encode(&got.header.record_tx_id),
                got.recorded_at
            ))
        };
        let request = if got.header.request_id.is_empty() {
            vec![0; 32]
        } else {
            got.header.request_id.clone()
        };
        let started = std::time::Instant::now();
        loop {
            let head = self.read(u64::MAX, 1).await?;
            // From the log's end back to the records it held before the fetch was asked.
            let mut end = head.total;
            while end > before {
                let from = end.saturating_sub(LOG_PAGE).max(before);
                let page = self.read(from, end - from).await?;
                for bytes in page.records.iter().rev() {
                    let r = FetchRecord::decode(b"Exchange.GetFetchLog", bytes).map_err(|e| {
                        verify_failed(format!(
                            "the node sent a fetch record that does not decode: {e}"
                        ))
                    })?;
                    if r.envelope_sm3 != got.envelope_sm3.0 || r.seq < before {
                        continue;
                    }
                    if r.outcome != 0
                        || r.version != expected.version
                        || r.height.0 != got.recorded_at
                        || r.request.0.to_vec() != request
                        || me.is_some_and(|me| r.requester != me)
                    {
                        return Err(unlogged(format!(
                            "is in the chain's log as fetch {} with other facts (outcome {}, version {}, height {}, request {}, requester {})",
                            r.seq, r.outcome, r.version, r.height.0, r.request, r.requester
                        )));
                    }
                    return Ok(r);
                }
                end = from;
            }
            if head.height >= got.recorded_at {
                return Err(unlogged(format!(
                    "is not among the {} records the chain's fetch log gained since the fetch was asked (read at height {})",
                    head.total.saturating_sub(before),
                    head.height
                )));
            }
            if started.elapsed() > self.wait {
                return Err(Failure::Unreachable(format!(
                    "the node is at height {}, below the fetch record's {} after {} s (--wait); nothing was written",
                    head.height,
                    got.recorded_at,
                    self.wait.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A failure status from a node: a coded refusal takes its code's class; an uncoded one is the
/// node failing (exit 3).
fn node_failed(what: &str, s: tonic::Status) -> Failure {
    if is_coded(&s) {
        refusal(what, s)
    } else {
        Failure::Unreachable(format!(
            "{what}: the node failed ({:?}): {}; nothing was written",
            s.code(),
            crate::one_line(s.message())
        ))
    }
}

/// Whether a status names a code of the registry.
fn is_coded(s: &tonic::Status) -> bool {
    s.metadata()
        .get(api::CODE_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(codes::by_name)
        .is_some()
}

/// What travels from the connection to the payload stage (the key boxed, so that only a
/// pointer moves and the one copy is zeroized when dropped).
enum Piece {
    Data(Vec<u8>),
    Key(Box<Sm4Secret>),
}

/// Why the connection side stopped early.
enum Stop {
    Failed(Failure),
    /// The payload stage is gone (it failed; its error is the one to report).
    StageGone,
}

/// Reads the stream on this thread, checks its shape against `expected` and hands the
/// payload's chunks, and the data key once its envelope opened, to the payload stage.
async fn forward<S>(
    mut stream: S,
    expected: &Expected,
    key: &dyn crypto::Decrypter,
    tx: &tokio::sync::mpsc::Sender<Piece>,
    idle: std::time::Duration,
) -> Result<(pb::FetchHeader, u64, Option<Metadata>, Digest), Stop>
where
    S: tokio_stream::Stream<Item = Result<pb::FetchChunk, tonic::Status>> + Unpin,
{
    use pb::fetch_chunk::Part;
    let fail = |what: &str| Stop::Failed(verify_failed(what));
    let mut header: Option<pb::FetchHeader> = None;
    let mut recorded_at: Option<u64> = None;
    let mut metadata: Option<Metadata> = None;
    let mut envelope_sm3 = Digest([0; 32]);
    let mut received: u64 = 0;
    // The whole stream's limit: the custodian's own is a minute plus a second per MiB.
    let whole = idle + PER_MIB * u32::try_from(expected.payload_len >> 20).unwrap_or(u32::MAX);
    let deadline = tokio::time::Instant::now() + whole;
    loop {
        let now = tokio::time::Instant::now();
        let wait = idle.min(deadline.saturating_duration_since(now));
        let Ok(next) = tokio::time::timeout(wait, stream.next()).await else {
            let why = if wait < idle {
                format!("did not finish within {} s", whole.as_secs())
            } else {
                format!("sent nothing for {} s", idle.as_secs())
            };
            return Err(Stop::Failed(Failure::Unreachable(format!(
                "the custodian {why} (after {received} of {} bytes of payload); nothing was written",
                expected.payload_len
            ))));
        };
        let Some(item) = next else { break };
        let chunk = item.map_err(|s| Stop::Failed(custodian_failed(s, header.is_some())))?;
        match (chunk.part, header.is_some()) {
            (Some(Part::Header(h)), false) => {
                if h.record != expected.record {
                    return Err(fail(
                        "the header's record is not the chain's (another version or message)",
                    ));
                }
                header = Some(h);
            }
            (Some(Part::Header(_)), true) => {
                return Err(fail("the custodian sent a second header"));
            }
            (Some(Part::Data(d)), true) => {
                if d.is_empty() || d.len() > MAX_DATA_PART {
                    return Err(Stop::Failed(verify_failed(format!(
                        "the custodian sent a data part of {} bytes (1 to {MAX_DATA_PART})",
                        d.len()
                    ))));
                }
                received += d.len() as u64;
                if received > expected.payload_len {
                    return Err(Stop::Failed(verify_failed(format!(
                        "the custodian sent more than the catalogue's {} bytes of payload",
                        expected.payload_len
                    ))));
                }
                tx.send(Piece::Data(d)).await.map_err(|_| Stop::StageGone)?;
            }
            (Some(Part::Key(k)), true) => {
                if recorded_at.is_some() {
                    return Err(fail("the custodian sent a second key"));
                }
                envelope_sm3 = crypto_sm::sm3::sm3(&k.envelope);
                let secret = key.decrypt(&k.envelope, CipherFormat::Der).map_err(|e| {
                    Stop::Failed(verify_failed(format!(
                        "the data key's envelope does not open with --enc-key: {e}"
                    )))
                })?;
                let data_key = Box::new(Sm4Secret::from_slice(secret.expose()).map_err(|e| {
                    Stop::Failed(verify_failed(format!("the envelope holds no SM4 key: {e}")))
                })?);
                drop(secret);
                if !expected.sealed_metadata.is_empty() {
                    metadata = Some(
                        open_metadata(&data_key, &expected.sealed_metadata)
                            .map_err(Stop::Failed)?,
                    );
                }
                tx.send(Piece::Key(data_key))
                    .await
                    .map_err(|_| Stop::StageGone)?;
                recorded_at = Some(k.recorded_at);
            }
            (Some(Part::Key(_)), false) => {
                return Err(fail("the custodian sent its key part before the header"));
            }
            (Some(Part::Data(_)), false) => {
                return Err(fail("the custodian sent data before the header"));
            }
            (None, _) => return Err(fail("the custodian sent an empty message")),
        }
    }
    if header.is_some() && received < expected.payload_len {
        // Ended early without an error: the custodian's time limit, or its fault.
        return Err(Stop::Failed(Failure::Unreachable(format!(
            "the custodian ended the stream after {received} of {} bytes of payload (its time limit, or a fault): retry; nothing was written",
            expected.payload_len
        ))));
    }
    match (header, recorded_at) {
        (Some(h), Some(at)) => Ok((h, at, metadata, envelope_sm3)),
        (None, _) => Err(fail("the stream ended before the header")),
        (Some(_), None) => Err(fail(
            "the stream ended before the key (no committed fetch record, no key)",
        )),
    }
}

/// Opens a confidential dataset's sealed metadata (the payload format, in memory: a JSON
/// object with its title and description) with the version's data key.
fn open_metadata(key: &Sm4Secret, sealed: &[u8]) -> Result<Metadata, Failure> {
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    payload::open(key, &mut &sealed[..], &mut *plain)
        .map_err(|e| verify_failed(format!("the version's sealed metadata does not open: {e}")))?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        title: String,
        description: String,
    }
    let f: Fields = serde_json::from_slice(&plain).map_err(|e| {
        verify_failed(format!(
            "the version's sealed metadata is not a title and description: {e}"
        ))
    })?;
    Ok(Metadata {
        title: f.title,
        description: f.description,
    })
}

/// What the payload stage saw.
struct Seen {
    len: u64,
    sm3: Digest,
    /// False when it stopped because the decrypt stage had stopped.
    complete: bool,
    /// The decrypt stage's outcome; `None` when no key came.
    opened: Option<Result<Opened, Failure>>,
}

/// The payload stage: hashes every chunk; keeps the chunks that arrive before the key in a
/// nameless temporary file, and at the key starts the decrypt stage on that file followed by
/// the chunks still to come.
fn payload_stage(mut rx: tokio::sync::mpsc::Receiver<Piece>, sink: File) -> Result<Seen, Failure> {
    let temp_failed =
        |e: io::Error| Failure::BadInput(format!("cannot write the temporary file: {e}"));
    let mut hash = Sm3Context::new();
    let mut len: u64 = 0;
    let mut early: Option<(File, u64)> = None;
    let mut sink = Some(sink);
    let mut decrypting: Option<(SyncSender<Vec<u8>>, Stage<Opened>)> = None;
    let mut complete = true;
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Data(d) => {
                hash.update(&d);
                len += d.len() as u64;
                match &decrypting {
                    Some((to, _)) => {
                        if to.send(d).is_err() {
                            complete = false;
                            break;
                        }
                    }
                    None => {
                        let (file, n) = match &mut early {
                            Some(e) => e,
                            None => early.insert((anonymous_temp()?, 0)),
                        };
                        file.write_all(&d).map_err(temp_failed)?;
                        *n += d.len() as u64;
                    }
                }
            }
            Piece::Key(key) => {
                let Some(sink) = sink.take() else {
                    // `forward` passes one key only.
                    continue;
                };
                let before: Box<dyn Read + Send> = match early.take() {
                    Some((mut file, n)) => {
                        file.seek(SeekFrom::Start(0)).map_err(temp_failed)?;
                        Box::new(io::BufReader::with_capacity(1 << 16, file).take(n))
                    }
                    None => Box::new(io::empty()),
                };
                let (to, from) = sync_channel(DEPTH);
                let input = before.chain(Incoming::new(from));
                let handle = spawn("decrypt", move || decrypt_stage(key, input, sink))?;
                decrypting = Some((to, handle));
            }
        }
    }
    let opened = decrypting.map(|(to, handle)| {
        drop(to);
        join(handle)
    });
    Ok(Seen {
        len,
        sm3: hash.finish(),
        complete,
        opened,
    })
}

/// A stage's thread.
type Stage<T> = JoinHandle<Result<T, Failure>>;

/// What the decrypt and output stages produced: the plaintext, waiting in its nameless file.
struct Opened {
    len: u64,
    sm3: Digest,
    sink: File,
}

/// The decrypt stage: opens the payload chunk by chunk (each only after its tag) into the
/// output stage.
fn decrypt_stage(key: Box<Sm4Secret>, mut input: impl Read, sink: File) -> Result<Opened, Failure> {
    let (to, from) = sync_channel(DEPTH);
    let output = spawn("output", move || output_stage(from, sink))?;
    let decrypted = {
        let mut out = Outgoing(to);
        payload::decrypt(&key, &mut input, &mut out)
    };
    drop(key);
    // The output's error first: a failed write also stops the decryption.
    let (sink, len, sm3) = join(output)?;
    decrypted.map_err(|e| verify_failed(format!("the payload does not open: {e}")))?;
    Ok(Opened { len, sm3, sink })
}

/// The output stage: hashes the plaintext and writes it to the sink.
fn output_stage(from: Receiver<Vec<u8>>, mut sink: File) -> Result<(File, u64, Digest), Failure> {
    let mut hash = Sm3Context::new();
    let mut len: u64 = 0;
    for plain in from {
        hash.update(&plain);
        len += plain.len() as u64;
        sink.write_all(&plain)
            .map_err(|e| Failure::BadInput(format!("cannot write the temporary file: {e}")))?;
    }
    Ok((sink, len, hash.finish()))
}

/// Checks before the fetch (and its record on the chain) that a file can be created next to
/// `--out` (a staging file is created and removed again).
pub(super) fn check_out(out: Option<&Path>) -> Result<(), Failure> {
    if let Some(path) = out {
        safefile::StagingFile::create(path, safefile::Mode::PRIVATE)
            .map_err(|e| Failure::BadInput(format!("--out {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Copies the verified plaintext from its nameless file to a staging file next to `--out`,
/// syncs it, renames it into place and syncs the directory; or copies it to standard output.
fn release(mut plain: File, out: Option<&Path>) -> Result<(), Failure> {
    plain
        .seek(SeekFrom::Start(0))
        .map_err(|e| Failure::BadInput(format!("cannot read the temporary file: {e}")))?;
    match out {
        Some(path) => {
            let failed = |e: &dyn std::fmt::Display| {
                Failure::BadInput(format!("--out {}: {e}", path.display()))
            };
            let mut staging = safefile::StagingFile::create(path, safefile::Mode::PRIVATE)
                .map_err(|e| failed(&e))?;
            // In 1 MiB writes (io::copy uses a BufReader's buffer), not 8 KiB ones.
            let mut from = io::BufReader::with_capacity(payload::CHUNK_LEN, &mut plain);
            io::copy(&mut from, &mut staging).map_err(|e| failed(&e))?;
            staging
                .finish()
                .map_err(|e| failed(&e))?
                .rename_into_place()
                .map_err(|e| failed(&e))?;
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            safefile::sync_dir(dir).map_err(|e| failed(&e))
        }
        None => {
            let mut so = io::stdout().lock();
            io::copy(&mut plain, &mut so)
                .and_then(|_| so.flush())
                .map_err(|e| Failure::BadInput(format!("cannot write standard output: {e}")))?;
            Ok(())
        }
    }
}

/// A failure status from the custodian: a refusal with its registry code (its class), or — a
/// status without one once the stream began — the custodian failing mid-stream (exit 3: retry
/// later or ask its operator). The message is the custodian's, made one printable line.
fn custodian_failed(s: tonic::Status, began: bool) -> Failure {
    if began && !is_coded(&s) {
        node_failed("the custodian failed mid-stream", s)
    } else {
        refusal("the custodian refused the fetch", s)
    }
}

/// The chunks the payload stage passes on, as a reader (ends when the sender is dropped).
struct Incoming {
    from: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Incoming {
    fn new(from: Receiver<Vec<u8>>) -> Incoming {
        Incoming {
            from,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.from.recv() {
                Ok(next) => {
                    self.current = next;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The decrypted chunks, passed on to the output stage.
struct Outgoing(SyncSender<Vec<u8>>);

impl Write for Outgoing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the output stage stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<Stage<T>, Failure> {
    std::thread::Builder::new()
        .name(format!("fetch-{name}"))
        .spawn(f)
        .map_err(|e| Failure::BadInput(format!("cannot start the fetch's {name} thread: {e}")))
}

fn join<T>(handle: Stage<T>) -> Result<T, Failure> {
    handle
        .join()
        .unwrap_or_else(|_| Err(verify_failed("a fetch thread panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli_data::tests::{Soft, entries, fixture, plaintext, read_all, soft_key};
    use pb::fetch_chunk::Part;

    /// `--wait`'s default.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(90);

    /// Where the key part goes in a test stream.
    #[derive(Clone, Copy, Debug)]
    enum KeyAt {
        /// Right after the header, before any data.
        First,
        /// After the first data chunk.
        Second,
        /// After the last data chunk.
        Last,
    }

    fn header(expected: &Expected) -> pb::FetchChunk {
        pb::FetchChunk {
            part: Some(Part::Header(pb::FetchHeader {
                record: expected.record.clone(),
                version: 1,
                request_id: vec![7; 32],
                record_tx_id: vec![9; 32],
            })),
        }
    }

    fn key_part(envelope: &[u8]) -> pb::FetchChunk {
        pb::FetchChunk {
            part: Some(Part::Key(pb::FetchKey {
                envelope: envelope.to_vec(),
                recorded_at: 5,
            })),
        }
    }

    /// A stream as a custodian sends it: the header, the payload in chunks of 700 KiB (not
    /// the payload's own chunking), the key where `at` says.
    fn stream(
        expected: &Expected,
        payload: &[u8],
        envelope: &[u8],
        at: KeyAt,
    ) -> Vec<pb::FetchChunk> {
        let data: Vec<pb::FetchChunk> = payload
            .chunks(700 << 10)
            .map(|c| pb::FetchChunk {
                part: Some(Part::Data(c.to_vec())),
            })
            .collect();
        let split = match at {
            KeyAt::First => 0,
            KeyAt::Second => 1.min(data.len()),
            KeyAt::Last => data.len(),
        };
        let mut v = vec![header(expected)];
        v.extend(data[..split].iter().cloned());
        v.push(key_part(envelope));
        v.extend(data[split..].iter().cloned());
        v
    }

    fn run(
        parts: Vec<pb::FetchChunk>,
        expected: &Expected,
        key: &Soft,
        out: Option<&Path>,
    ) -> Result<Fetched, Failure> {
        run_items(parts.into_iter().map(Ok).collect(), expected, key, out)
    }

    fn run_items(
        items: Vec<Result<pb::FetchChunk, tonic::Status>>,
        expected: &Expected,
        key: &Soft,
        out: Option<&Path>,
    ) -> Result<Fetched, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut fetched = receive(tokio_stream::iter(items), expected, key, WAIT).await?;
            fetched.release(out)?;
            Ok(fetched)
        })
    }

    fn verify_failure(r: Result<Fetched, Failure>) -> String {
        match r {
            Err(Failure::NotVerified(m)) => {
                assert!(m.contains("EXCHANGE_VERIFY_FAILED"), "{m}");
                m
            }
            other => panic!("expected EXCHANGE_VERIFY_FAILED (exit 1), got {other:?}"),
        }
    }

    const EVERYWHERE: [KeyAt; 3] = [KeyAt::First, KeyAt::Second, KeyAt::Last];

    #[test]
    fn a_verified_payload_is_written_at_out_wherever_the_key_arrives() {
        let holder = Soft(soft_key());
        let plain = plaintext();
        let (mut cipher, env, exp) = fixture(&plain, &holder);
        let payload = read_all(&mut cipher);
        for at in EVERYWHERE {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("plain.bin");
            let got = run(stream(&exp, &payload, &env, at), &exp, &holder, Some(&out)).unwrap();
            assert_eq!(got.recorded_at, 5, "{at:?}");
            assert_eq!(got.plaintext_sm3, crypto_sm::sm3::sm3(&plain), "{at:?}");
            assert_eq!(got.payload_sm3, crypto_sm::sm3::sm3(&payload), "{at:?}");
            assert_eq!(got.header.record_tx_id, vec![9; 32]);
            assert_eq!(std::fs::read(&out).unwrap(), plain, "{at:?}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            assert_eq!(entries(dir.path()), ["plain.bin"], "{at:?}");
        }
    }

    #[test]
    fn an_empty_plaintext_is_fetched_too() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(b"", &holder);
        let payload = read_all(&mut cipher);
        for at in EVERYWHERE {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("empty.bin");
            run(stream(&exp, &payload, &env, at), &exp, &holder, Some(&out)).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), b"", "{at:?}");
        }
    }

    #[test]
    fn a_flipped_payload_byte_is_refused_and_nothing_is_written() {
        let holder = Soft(soft_key());
        let plain = plaintext();
        let (mut cipher, env, exp) = fixture(&plain, &holder);
        let payload = read_all(&mut cipher);
        for byte in [0, 5, 13, payload.len() / 2, payload.len() - 1] {
            let mut bad = payload.clone();
            bad[byte] ^= 0x01;
            for at in EVERYWHERE {
                let dir = tempfile::tempdir().unwrap();
                let out = dir.path().join("plain.bin");
                // Against the catalogue's digests: the payload's SM3, or a tag first.
                let m =
                    verify_failure(run(stream(&exp, &bad, &env, at), &exp, &holder, Some(&out)));
                assert!(m.contains("SM3") || m.contains("does not"), "{m}");
                assert!(entries(dir.path()).is_empty(), "byte {byte} {at:?}");
                // A catalogue that recorded the altered bytes: a tag, or the header, fails.
                let mut forged = exp.clone();
                forged.payload_sm3 = crypto_sm::sm3::sm3(&bad);
                let m = verify_failure(run(
                    stream(&forged, &bad, &env, at),
                    &forged,
                    &holder,
                    Some(&out),
                ));
                assert!(m.contains("does not open"), "byte {byte} {at:?}: {m}");
                assert!(entries(dir.path()).is_empty(), "byte {byte} {at:?}");
            }
        }
    }

    #[test]
    fn a_flipped_envelope_byte_or_a_wrong_key_is_refused_and_nothing_is_written() {
        let holder = Soft(soft_key());
        let plain = plaintext();
        let (mut cipher, env, exp) = fixture(&plain, &holder);
        let payload = read_all(&mut cipher);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        for byte in [env.len() / 2, env.len() - 1] {
            let mut bad = env.clone();
            bad[byte] ^= 0x01;
            for at in EVERYWHERE {
                let m = verify_failure(run(
                    stream(&exp, &payload, &bad, at),
                    &exp,
                    &holder,
                    Some(&out),
                ));
                assert!(m.contains("envelope"), "{m}");
                assert!(entries(dir.path()).is_empty());
            }
        }
        let stranger = Soft(soft_key());
        let m = verify_failure(run(
            stream(&exp, &payload, &env, KeyAt::Second),
            &exp,
            &stranger,
            Some(&out),
        ));
        assert!(m.contains("envelope"), "{m}");
        assert!(entries(dir.path()).is_empty());
        // An old file at --out stays as it was.
        std::fs::write(&out, b"old").unwrap();
        verify_failure(run(
            stream(&exp, &payload, &env, KeyAt::Last),
            &exp,
            &stranger,
            Some(&out),
        ));
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["plain.bin"]);
    }

    #[test]
    fn a_plaintext_that_is_not_the_catalogues_is_refused() {
        let holder = Soft(soft_key());
        let (mut cipher, env, mut exp) = fixture(b"the register of licences", &holder);
        let payload = read_all(&mut cipher);
        exp.plaintext_sm3 = crypto_sm::sm3::sm3(b"another register");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        for at in EVERYWHERE {
            let m = verify_failure(run(
                stream(&exp, &payload, &env, at),
                &exp,
                &holder,
                Some(&out),
            ));
            assert!(m.contains("plaintext"), "{m}");
            assert!(entries(dir.path()).is_empty());
        }
    }

    #[test]
    fn a_stream_out_of_shape_is_refused_and_nothing_is_written() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(&plaintext(), &holder);
        let payload = read_all(&mut cipher);
        let good = stream(&exp, &payload, &env, KeyAt::Second);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        let refused = |parts: Vec<pb::FetchChunk>, says: &str| {
            let m = verify_failure(run(parts, &exp, &holder, Some(&out)));
            assert!(m.contains(says), "{says:?} not in {m}");
            assert!(entries(dir.path()).is_empty(), "{says}");
        };
        // Another record in the header.
        let mut other = good.clone();
        other[0] = pb::FetchChunk {
            part: Some(Part::Header(pb::FetchHeader {
                record: b"another version".to_vec(),
                ..Default::default()
            })),
        };
        refused(other, "record");
        // No key: nothing opens, wherever the stream stops.
        let no_key: Vec<_> = good
            .iter()
            .filter(|c| !matches!(c.part, Some(Part::Key(_))))
            .cloned()
            .collect();
        refused(no_key, "before the key");
        // Data before the header.
        let mut swapped = good.clone();
        swapped.swap(0, 1);
        refused(swapped, "before the header");
        // More bytes than the catalogue records.
        let mut long = good.clone();
        long.push(pb::FetchChunk {
            part: Some(Part::Data(vec![0])),
        });
        refused(long, "more than");
        // Fewer bytes than the catalogue records (the last data chunk left out), the stream
        // ended without an error: the custodian stopped (its time limit, or a fault), exit 3.
        let mut short = good.clone();
        short.pop();
        match run(short, &exp, &holder, Some(&out)) {
            Err(Failure::Unreachable(m)) => assert!(m.contains("ended the stream after"), "{m}"),
            other => panic!("a stream ended early is exit 3: {other:?}"),
        }
        assert!(entries(dir.path()).is_empty());
        // An empty data part, and one larger than the custodian's chunks (review13 finding 6:
        // the queues' memory bound holds only for parts of at most MAX_DATA_PART).
        let mut empty_part = good.clone();
        empty_part.insert(
            2,
            pb::FetchChunk {
                part: Some(Part::Data(Vec::new())),
            },
        );
        refused(empty_part, "data part of 0 bytes");
        let mut huge = good.clone();
        huge.insert(
            2,
            pb::FetchChunk {
                part: Some(Part::Data(vec![0; MAX_DATA_PART + 1])),
            },
        );
        refused(huge, "data part of 1048577 bytes");
        // A second key, a second header, an empty message.
        let mut twice = good.clone();
        twice.push(key_part(&env));
        refused(twice, "second key");
        let mut again = good.clone();
        again.insert(3, header(&exp));
        refused(again, "second header");
        let mut empty = good.clone();
        empty.insert(2, pb::FetchChunk { part: None });
        refused(empty, "empty message");
        // A refusal by the custodian names its code and is exit 1, mid-stream too.
        let mut meta = tonic::metadata::MetadataMap::new();
        meta.insert(api::CODE_METADATA_KEY, "EXCHANGE_NO_GRANT".parse().unwrap());
        let no_grant =
            tonic::Status::with_metadata(tonic::Code::PermissionDenied, "no live grant", meta);
        for cut in [0, 2] {
            let mut items: Vec<_> = good[..cut].iter().cloned().map(Ok).collect();
            items.push(Err(no_grant.clone()));
            match run_items(items, &exp, &holder, Some(&out)) {
                Err(Failure::NotVerified(m)) => assert!(m.contains("EXCHANGE_NO_GRANT"), "{m}"),
                other => panic!("a refusal must be exit 1 naming the code: {other:?}"),
            }
            assert!(entries(dir.path()).is_empty());
        }
    }

    /// Metadata sealed as `data publish --confidential` seals it, under `key`.
    fn sealed_metadata(key: &[u8], json: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        payload::seal(
            &Sm4Secret::from_slice(key).unwrap(),
            &[3; 8],
            &mut &json[..],
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn a_confidential_datasets_metadata_opens_with_the_versions_key_or_nothing_is_written() {
        let holder = Soft(soft_key());
        let plain = plaintext();
        let (mut cipher, env, mut exp) = fixture(&plain, &holder);
        let payload = read_all(&mut cipher);
        let data_key = crypto_sm::sm2::decrypt(&holder.0, &env, CipherFormat::Der).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        exp.sealed_metadata = sealed_metadata(
            data_key.expose(),
            br#"{"title":"Register of companies","description":"all of them"}"#,
        );
        let got = run(
            stream(&exp, &payload, &env, KeyAt::Second),
            &exp,
            &holder,
            Some(&out),
        )
        .unwrap();
        assert_eq!(
            got.metadata,
            Some(Metadata {
                title: "Register of companies".into(),
                description: "all of them".into()
            })
        );
        std::fs::remove_file(&out).unwrap();
        // Sealed under another key, or not the two fields: exit 1, nothing written.
        for (key, json, says) in [
            (
                &[1u8; 16][..],
                &br#"{"title":"x","description":"y"}"#[..],
                "does not open",
            ),
            (
                data_key.expose(),
                &br#"{"title":"x"}"#[..],
                "not a title and description",
            ),
        ] {
            exp.sealed_metadata = sealed_metadata(key, json);
            let m = verify_failure(run(
                stream(&exp, &payload, &env, KeyAt::Last),
                &exp,
                &holder,
                Some(&out),
            ));
            assert!(m.contains(says), "{says:?} not in {m}");
            assert!(entries(dir.path()).is_empty());
        }
    }

    /// Runs `receive` (silence limited to `idle`) on its own thread over `items` followed by a
    /// stream that never ends (a custodian that keeps the connection open and sends nothing
    /// more).
    fn run_then_stall(
        items: Vec<Result<pb::FetchChunk, tonic::Status>>,
        expected: &Expected,
        key: Soft,
        out: Option<std::path::PathBuf>,
        idle: std::time::Duration,
    ) -> std::sync::mpsc::Receiver<Result<Fetched, Failure>> {
        let (done, result) = std::sync::mpsc::channel();
        let expected = expected.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let stream = tokio_stream::iter(items).chain(tokio_stream::pending());
            let r = rt.block_on(async {
                let mut fetched = receive(Box::pin(stream), &expected, &key, idle).await?;
                fetched.release(out.as_deref())?;
                Ok(fetched)
            });
            let _ = done.send(r);
        });
        result
    }

    /// review13 finding 1: a custodian that stalled after the header hung `data fetch` for ever
    /// (no idle or overall deadline on the client). Now its silence is limited (90 s in use,
    /// 1 s here) and the fetch ends exit 3, naming it.
    #[test]
    fn review13_a_stalling_custodian_does_not_hang_the_client() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(&plaintext(), &holder);
        let payload = read_all(&mut cipher);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        // The header, the key, one chunk; then the connection stays open and silent.
        let items: Vec<_> = stream(&exp, &payload, &env, KeyAt::First)[..3]
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        let result = run_then_stall(
            items,
            &exp,
            holder,
            Some(out),
            std::time::Duration::from_secs(1),
        );
        match result.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(Err(Failure::Unreachable(m))) => assert!(m.contains("sent nothing for 1 s"), "{m}"),
            Ok(other) => panic!("expected exit 3 naming the silence, got {other:?}"),
            Err(_) => panic!("data fetch still waits for the custodian after 30 s"),
        }
        assert!(entries(dir.path()).is_empty());
    }

    /// review13 finding 2: the staging file (decrypted, not yet verified plaintext) sat in
    /// --out's directory for the whole transfer, and a kill or Ctrl-C left it there. Now the
    /// plaintext waits in a nameless file until everything verified.
    #[test]
    fn review13_nothing_is_in_outs_directory_while_the_payload_arrives() {
        let holder = Soft(soft_key());
        let plain = plaintext();
        let (mut cipher, env, exp) = fixture(&plain, &holder);
        let payload = read_all(&mut cipher);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        // The header, the key, two chunks of 700 KiB (one whole 1 MiB payload chunk); then the
        // custodian stalls, and the user would press Ctrl-C (SIGINT: no destructor runs).
        let items: Vec<_> = stream(&exp, &payload, &env, KeyAt::First)[..4]
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        let _pending = run_then_stall(
            items,
            &exp,
            holder,
            Some(out),
            std::time::Duration::from_secs(60),
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
        let left = entries(dir.path());
        let held: Vec<u64> = left
            .iter()
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .collect();
        assert!(
            left.is_empty(),
            "before anything verified, --out's directory holds {left:?} ({held:?} bytes of plaintext)"
        );
    }

    /// review13 finding 3: a key part before the header was reported as "data before the header".
    #[test]
    fn review13_a_key_before_the_header_is_named_as_such() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(b"records", &holder);
        let payload = read_all(&mut cipher);
        let mut parts = stream(&exp, &payload, &env, KeyAt::First);
        parts.swap(0, 1);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        let m = verify_failure(run(parts, &exp, &holder, Some(&out)));
        assert!(
            m.contains("key"),
            "the error does not name the key part: {m}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    /// review13 finding 4: a hostile custodian's status message reached the terminal verbatim
    /// (newlines, escape sequences). Now it is one printable line, and an uncoded status in the
    /// middle of the stream is the custodian failing (exit 3), not a refusal of bad input.
    #[test]
    fn review13_a_custodians_status_message_is_one_line_without_control_characters() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(b"records", &holder);
        let payload = read_all(&mut cipher);
        let good = stream(&exp, &payload, &env, KeyAt::First);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.bin");
        let hostile = tonic::Status::internal(
            "ok\ngmchain: fetched dataset verified\x1b[2K\x1b[1A\x1b]0;title\x07",
        );
        let items = vec![Ok(good[0].clone()), Ok(good[1].clone()), Err(hostile)];
        let m = match run_items(items, &exp, &holder, Some(&out)) {
            Err(Failure::Unreachable(m)) => m,
            other => panic!("a custodian failing mid-stream is exit 3: {other:?}"),
        };
        assert!(
            !m.chars().any(char::is_control),
            "the custodian's text reaches stderr verbatim: {m:?}"
        );
    }

    #[test]
    fn an_unwritable_out_fails_as_bad_input_and_leaves_nothing() {
        let holder = Soft(soft_key());
        let (mut cipher, env, exp) = fixture(b"records", &holder);
        let payload = read_all(&mut cipher);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("missing-dir").join("plain.bin");
        match run(
            stream(&exp, &payload, &env, KeyAt::Last),
            &exp,
            &holder,
            Some(&out),
        ) {
            Err(Failure::BadInput(m)) => assert!(m.contains("--out"), "{m}"),
            other => panic!("expected bad input naming --out, got {other:?}"),
        }
        assert!(entries(dir.path()).is_empty());
    }

    /// review14c finding 5: `one_line` escapes only `char::is_control`, so the Unicode bidi
    /// controls (U+202E, U+2066..U+2069, format characters, not control ones) in a
    /// custodian's status text reach stderr raw and reorder what the operator reads.
    #[test]
    fn review14c_a_custodians_status_text_cannot_reorder_the_line() {
        let hostile =
            tonic::Status::internal("reason: \u{202e}deifirev dna dehctef\u{2066}x\u{2069}");
        let m = custodian_failed(hostile, true).message().to_string();
        let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !m.chars().any(bidi),
            "bidi controls reach stderr unescaped: {m:?}"
        );
    }
}
