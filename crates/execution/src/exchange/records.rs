//! The `exchange` contract's records and their canonical encoding (docs/execution.md §3, the
//! `types` codec, record tags 0x90-0x96), and the reads the node's serving path makes.

use crate::error::ExecError;
use crate::keys::{EXCHANGE, exchange as k, full};
use crate::records::text;
use crate::view::StateRead;
use crypto::Digest;
use types::codec::{Reader, Writer};
use types::{DecodeError, DecodeReason, Height};

pub(crate) mod tag {
    pub const DATASET: u8 = 0x90;
    pub const VERSION: u8 = 0x91;
    pub const REQUEST: u8 = 0x92;
    pub const ENDPOINT: u8 = 0x93;
    pub const MESSAGE: u8 = 0x94;
    pub const ACK: u8 = 0x95;
    pub const FETCH: u8 = 0x96;
    pub const ESCROW: u8 = 0x97;
}

/// The longest dataset name.
pub const MAX_DATASET_NAME_LEN: usize = 64;
/// The longest content type (a MIME type or a schema name).
pub const MAX_CONTENT_TYPE_LEN: usize = 128;
/// The longest title or message subject (bytes of UTF-8).
pub const MAX_TITLE_LEN: usize = 256;
/// The longest description (bytes of UTF-8).
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// The longest purpose of a request, or reason of a decision (bytes of UTF-8).
pub const MAX_PURPOSE_LEN: usize = 1024;
/// The longest node address (`host:port`).
pub const MAX_ADDRESS_LEN: usize = 256;
/// The longest SM2 key envelope (GM/T 0009 `SM2Cipher` DER of a 16-byte key is ~125 bytes).
pub const MAX_ENVELOPE_LEN: usize = 512;
/// The most escrow recipients.
pub const MAX_ESCROW: usize = 16;
/// The longest sealed confidential metadata (a GMCP payload).
pub const MAX_SEALED_METADATA_LEN: usize = 16 * 1024;
/// The most recipients of one message.
pub const MAX_RECIPIENTS: usize = 64;
/// The longest grant, in blocks.
pub const MAX_GRANT_BLOCKS: u64 = 10_000_000;
/// The most entries one listing read returns.
pub const MAX_LIST: u32 = 1000;

const MAX_NAME_BYTES: usize = 256;
const MAX_ID_BYTES: usize = MAX_NAME_BYTES + 1 + MAX_DATASET_NAME_LEN;

/// The sharing class of a dataset (the three classes of China's government data sharing
/// rules: 无条件共享, 有条件共享, 不予共享).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharingClass {
    /// Granted automatically to any registered organisation that asks.
    Unconditional,
    /// Granted by the owner's admin, request by request.
    Conditional,
    /// Never granted.
    NotShared,
}

impl SharingClass {
    /// The encoding: 1, 2, 3.
    pub fn to_u8(self) -> u8 {
        match self {
            SharingClass::Unconditional => 1,
            SharingClass::Conditional => 2,
            SharingClass::NotShared => 3,
        }
    }

    /// The class of an encoded byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(SharingClass::Unconditional),
            2 => Some(SharingClass::Conditional),
            3 => Some(SharingClass::NotShared),
            _ => None,
        }
    }

    /// The name the CLI and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            SharingClass::Unconditional => "unconditional",
            SharingClass::Conditional => "conditional",
            SharingClass::NotShared => "not-shared",
        }
    }

    /// The class of a name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            SharingClass::Unconditional,
            SharingClass::Conditional,
            SharingClass::NotShared,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A dataset of the catalogue (`exchange/dataset/<org>/<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// The owning organisation.
    pub organisation: String,
    /// The name, unique within the organisation.
    pub name: String,
    /// The sharing class.
    pub class: SharingClass,
    /// The content type or schema (public).
    pub content_type: String,
    /// The title (empty when confidential: each version carries it sealed).
    pub title: String,
    /// The description (empty when confidential).
    pub description: String,
    /// Whether the title and description are sealed in each version.
    pub confidential: bool,
    /// Who registered it (SM3 of the certificate).
    pub creator: Digest,
    /// The height of registration.
    pub height: Height,
    /// How many versions were published.
    pub versions: u64,
    /// How many access requests were made.
    pub requests: u64,
}

impl Dataset {
    /// `<organisation>/<name>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.organisation, self.name)
    }
}

/// A recipient's copy of a data key: SM2 to its encryption certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// SM3 of the recipient's encryption certificate (DER).
    pub recipient: Digest,
    /// GM/T 0009 `SM2Cipher` DER of the 16-byte SM4 data key.
    pub cipher: Vec<u8>,
}

/// Where a payload lives and who holds its key: shared by versions and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// SM3 of the plaintext.
    pub plaintext_sm3: Digest,
    /// SM3 of the payload (the blob's ID on the custodian node).
    pub payload_sm3: Digest,
    /// Bytes of plaintext.
    pub plaintext_len: u64,
    /// Bytes of payload.
    pub payload_len: u64,
    /// The common name of the owner's node that holds the blob and the key.
    pub custodian: String,
    /// The data key wrapped to the custodian's node-enc certificate.
    pub custodian_envelope: Envelope,
    /// The data key wrapped to each escrow recipient of the chain.
    pub escrow: Vec<Envelope>,
}

/// A published version (`exchange/version/<dataset>/<n>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Its number, from 1.
    pub number: u64,
    /// The payload.
    pub payload: Payload,
    /// The title and description sealed under the version's key (confidential datasets).
    pub sealed_metadata: Vec<u8>,
    /// Who published it.
    pub publisher: Digest,
    /// The height of publication.
    pub height: Height,
    /// The block's timestamp (ms).
    pub timestamp_ms: u64,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Waiting for the owner's admin.
    Pending,
    /// Granted until `expiry`.
    Granted,
    /// Denied by the owner's admin.
    Denied,
    /// Revoked by the owner's admin after a grant.
    Revoked,
}

impl RequestStatus {
    fn to_u8(self) -> u8 {
        match self {
            RequestStatus::Pending => 1,
            RequestStatus::Granted => 2,
            RequestStatus::Denied => 3,
            RequestStatus::Revoked => 4,
        }
    }

    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(RequestStatus::Pending),
            2 => Some(RequestStatus::Granted),
            3 => Some(RequestStatus::Denied),
            4 => Some(RequestStatus::Revoked),
            _ => None,
        }
    }

    /// `pending`, `granted`, `denied`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Granted => "granted",
            RequestStatus::Denied => "denied",
            RequestStatus::Revoked => "revoked",
        }
    }
}

/// An access request and, once decided, its grant (`exchange/request/<id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    /// The requesting transaction's ID.
    pub id: Digest,
    /// The dataset's ID.
    pub dataset: String,
    /// The requester's organisation.
    pub organisation: String,
    /// The requester's common name.
    pub common_name: String,
    /// SM3 of the requester's signing certificate: the identity a fetch must present.
    pub requester: Digest,
    /// The requester's encryption certificate (DER), which data keys are wrapped to.
    pub enc_cert: Vec<u8>,
    /// Why the data is wanted.
    pub purpose: String,
    /// How many blocks the grant is asked for.
    pub duration: u64,
    /// Where it stands.
    pub status: RequestStatus,
    /// The last height at which the grant is live (0 until granted).
    pub expiry: Height,
    /// The height of the request.
    pub height: Height,
    /// The height of the last decision (0 while pending).
    pub decided_at: Height,
    /// Who decided (zero for an automatic grant and while pending).
    pub decided_by: Digest,
    /// The reason of a denial or a revocation.
    pub reason: String,
}

impl AccessRequest {
    /// Whether the grant is live at `height`.
    pub fn live_at(&self, height: Height) -> bool {
        self.status == RequestStatus::Granted && height <= self.expiry
    }
}

/// An organisation's node as the exchange knows it (`exchange/endpoint/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The organisation.
    pub organisation: String,
    /// The node's common name.
    pub node: String,
    /// The address of its API (`host:port`), which `gmchain data fetch` connects to.
    pub address: String,
    /// The node's encryption certificate (DER): custodian envelopes are wrapped to it.
    pub enc_cert: Vec<u8>,
    /// The height it was recorded.
    pub height: Height,
}

/// A file sent to named organisations (`exchange/message/<id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sending transaction's ID.
    pub id: Digest,
    /// The sender's organisation.
    pub organisation: String,
    /// The sender's common name.
    pub common_name: String,
    /// SM3 of the sender's certificate.
    pub sender: Digest,
    /// The subject.
    pub subject: String,
    /// The content type.
    pub content_type: String,
    /// The recipient organisations.
    pub recipients: Vec<String>,
    /// The payload.
    pub payload: Payload,
    /// The height it was sent.
    pub height: Height,
    /// The block's timestamp (ms).
    pub timestamp_ms: u64,
}

/// A recipient organisation's delivery receipt (`exchange/ack/<message>/<org>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The acknowledging organisation.
    pub organisation: String,
    /// The common name of who acknowledged.
    pub common_name: String,
    /// SM3 of their certificate.
    pub signer: Digest,
    /// The height.
    pub height: Height,
    /// The block's timestamp (ms).
    pub timestamp_ms: u64,
}

/// What a fetch asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchObject {
    /// A version of a dataset.
    Dataset(String),
    /// A message.
    Message(Digest),
}

impl FetchObject {
    /// The object's part of its log keys: `d/<dataset ID>` or `m/<hex>`.
    pub fn log_name(&self) -> String {
        match self {
            FetchObject::Dataset(id) => format!("d/{id}"),
            FetchObject::Message(id) => format!("m/{}", id.to_hex()),
        }
    }
}

/// One served or refused fetch, recorded by the custodian node (`exchange/fetch/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRecord {
    /// Its number in the object's log, from 0.
    pub seq: u64,
    /// What was asked for.
    pub object: FetchObject,
    /// The version (0 for a message).
    pub version: u64,
    /// SM3 of the requester's certificate (the TLS identity).
    pub requester: Digest,
    /// The request whose grant was used or checked (zero when none).
    pub request: Digest,
    /// 0 when served, else the registry number of the refusal.
    pub outcome: u32,
    /// The SM3 of the envelope released to the requester (served fetches; empty when refused):
    /// the envelope itself travels only in the fetch's key part, after this record committed.
    pub envelope_sm3: Vec<u8>,
    /// SM3 of the recording node's certificate.
    pub node: Digest,
    /// The height it was recorded.
    pub height: Height,
    /// The block's timestamp (ms).
    pub timestamp_ms: u64,
}

/// An escrow recipient of the chain: an encryption certificate every data key is also
/// wrapped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowRecipient {
    /// SM3 of the certificate.
    pub id: Digest,
    /// The certificate (DER).
    pub cert: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn decode<T>(
    key: &[u8],
    bytes: &[u8],
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, ExecError> {
    let mut r = Reader::new(bytes);
    let v = f(&mut r).map_err(|e| ExecError::corrupt(key, e))?;
    r.finish().map_err(|e| ExecError::corrupt(key, e))?;
    Ok(v)
}

fn read_text(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    text(field, r.bytes(field, max)?)
}

fn bad(field: &'static str) -> DecodeError {
    DecodeError::new(
        field,
        DecodeReason::InvalidText {
            expected: "a known value",
        },
    )
}

fn write_envelope(w: &mut Writer, e: &Envelope) {
    w.fixed(e.recipient.as_bytes());
    w.bytes(&e.cipher);
}

fn read_envelope(r: &mut Reader<'_>) -> Result<Envelope, DecodeError> {
    Ok(Envelope {
        recipient: Digest(r.array("envelope.recipient")?),
        cipher: r.bytes("envelope.cipher", MAX_ENVELOPE_LEN)?.to_vec(),
    })
}

/// The encoding of a list of envelopes (also the `escrow` argument of `publish` and `send`).
pub fn encode_envelopes(list: &[Envelope]) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(list.len());
    for e in list {
        write_envelope(&mut w, e);
    }
    w.into_bytes()
}

pub(crate) fn read_envelopes(r: &mut Reader<'_>) -> Result<Vec<Envelope>, DecodeError> {
    let n = r.len("escrow", MAX_ESCROW)?;
    (0..n).map(|_| read_envelope(r)).collect()
}

fn write_payload(w: &mut Writer, p: &Payload) {
    w.fixed(p.plaintext_sm3.as_bytes());
    w.fixed(p.payload_sm3.as_bytes());
    w.u64(p.plaintext_len);
    w.u64(p.payload_len);
    w.bytes(p.custodian.as_bytes());
    write_envelope(w, &p.custodian_envelope);
    w.len(p.escrow.len());
    for e in &p.escrow {
        write_envelope(w, e);
    }
}

fn read_payload(r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
    Ok(Payload {
        plaintext_sm3: Digest(r.array("payload.plaintext_sm3")?),
        payload_sm3: Digest(r.array("payload.payload_sm3")?),
        plaintext_len: r.u64("payload.plaintext_len")?,
        payload_len: r.u64("payload.payload_len")?,
        custodian: read_text(r, "payload.custodian", MAX_NAME_BYTES)?,
        custodian_envelope: read_envelope(r)?,
        escrow: read_envelopes(r)?,
    })
}

impl Dataset {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::DATASET);
        w.bytes(self.organisation.as_bytes());
        w.bytes(self.name.as_bytes());
        w.u8(self.class.to_u8());
        w.bytes(self.content_type.as_bytes());
        w.bytes(self.title.as_bytes());
        w.bytes(self.description.as_bytes());
        w.u8(u8::from(self.confidential));
        w.fixed(self.creator.as_bytes());
        w.u64(self.height.0);
        w.u64(self.versions);
        w.u64(self.requests);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("dataset.header", tag::DATASET)?;
            Ok(Dataset {
                organisation: read_text(r, "dataset.organisation", MAX_NAME_BYTES)?,
                name: read_text(r, "dataset.name", MAX_DATASET_NAME_LEN)?,
                class: SharingClass::from_u8(r.u8("dataset.class")?)
                    .ok_or_else(|| bad("dataset.class"))?,
                content_type: read_text(r, "dataset.content_type", MAX_CONTENT_TYPE_LEN)?,
                title: read_text(r, "dataset.title", MAX_TITLE_LEN)?,
                description: read_text(r, "dataset.description", MAX_DESCRIPTION_LEN)?,
                confidential: match r.u8("dataset.confidential")? {
                    0 => false,
                    1 => true,
                    _ => return Err(bad("dataset.confidential")),
                },
                creator: Digest(r.array("dataset.creator")?),
                height: Height(r.u64("dataset.height")?),
                versions: r.u64("dataset.versions")?,
                requests: r.u64("dataset.requests")?,
            })
        })
    }
}

impl Version {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::VERSION);
        w.u64(self.number);
        write_payload(&mut w, &self.payload);
        w.bytes(&self.sealed_metadata);
        w.fixed(self.publisher.as_bytes());
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("version.header", tag::VERSION)?;
            Ok(Version {
                number: r.u64("version.number")?,
                payload: read_payload(r)?,
                sealed_metadata: r
                    .bytes("version.sealed_metadata", MAX_SEALED_METADATA_LEN)?
                    .to_vec(),
                publisher: Digest(r.array("version.publisher")?),
                height: Height(r.u64("version.height")?),
                timestamp_ms: r.u64("version.timestamp_ms")?,
            })
        })
    }
}

impl AccessRequest {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::REQUEST);
        w.fixed(self.id.as_bytes());
        w.bytes(self.dataset.as_bytes());
        w.bytes(self.organisation.as_bytes());
        w.bytes(self.common_name.as_bytes());
        w.fixed(self.requester.as_bytes());
        w.bytes(&self.enc_cert);
        w.bytes(self.purpose.as_bytes());
        w.u64(self.duration);
        w.u8(self.status.to_u8());
        w.u64(self.expiry.0);
        w.u64(self.height.0);
        w.u64(self.decided_at.0);
        w.fixed(self.decided_by.as_bytes());
        w.bytes(self.reason.as_bytes());
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("request.header", tag::REQUEST)?;
            Ok(AccessRequest {
                id: Digest(r.array("request.id")?),
                dataset: read_text(r, "request.dataset", MAX_ID_BYTES)?,
                organisation: read_text(r, "request.organisation", MAX_NAME_BYTES)?,
                common_name: read_text(r, "request.common_name", MAX_NAME_BYTES)?,
                requester: Digest(r.array("request.requester")?),
                enc_cert: r.bytes("request.enc_cert", pki::MAX_CERT_LEN)?.to_vec(),
                purpose: read_text(r, "request.purpose", MAX_PURPOSE_LEN)?,
                duration: r.u64("request.duration")?,
                status: RequestStatus::from_u8(r.u8("request.status")?)
                    .ok_or_else(|| bad("request.status"))?,
                expiry: Height(r.u64("request.expiry")?),
                height: Height(r.u64("request.height")?),
                decided_at: Height(r.u64("request.decided_at")?),
                decided_by: Digest(r.array("request.decided_by")?),
                reason: read_text(r, "request.reason", MAX_PURPOSE_LEN)?,
            })
        })
    }
}

impl Endpoint {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::ENDPOINT);
        w.bytes(self.organisation.as_bytes());
        w.bytes(self.node.as_bytes());
        w.bytes(self.address.as_bytes());
        w.bytes(&self.enc_cert);
        w.u64(self.height.0);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("endpoint.header", tag::ENDPOINT)?;
            Ok(Endpoint {
                organisation: read_text(r, "endpoint.organisation", MAX_NAME_BYTES)?,
                node: read_text(r, "endpoint.node", MAX_NAME_BYTES)?,
                address: read_text(r, "endpoint.address", MAX_ADDRESS_LEN)?,
                enc_cert: r.bytes("endpoint.enc_cert", pki::MAX_CERT_LEN)?.to_vec(),
                height: Height(r.u64("endpoint.height")?),
            })
        })
    }
}

impl Message {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::MESSAGE);
        w.fixed(self.id.as_bytes());
        w.bytes(self.organisation.as_bytes());
        w.bytes(self.common_name.as_bytes());
        w.fixed(self.sender.as_bytes());
        w.bytes(self.subject.as_bytes());
        w.bytes(self.content_type.as_bytes());
        w.len(self.recipients.len());
        for o in &self.recipients {
            w.bytes(o.as_bytes());
        }
        write_payload(&mut w, &self.payload);
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("message.header", tag::MESSAGE)?;
            let id = Digest(r.array("message.id")?);
            let organisation = read_text(r, "message.organisation", MAX_NAME_BYTES)?;
            let common_name = read_text(r, "message.common_name", MAX_NAME_BYTES)?;
            let sender = Digest(r.array("message.sender")?);
            let subject = read_text(r, "message.subject", MAX_TITLE_LEN)?;
            let content_type = read_text(r, "message.content_type", MAX_CONTENT_TYPE_LEN)?;
            let n = r.len("message.recipients", MAX_RECIPIENTS)?;
            let recipients = (0..n)
                .map(|_| read_text(r, "message.recipients", MAX_NAME_BYTES))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Message {
                id,
                organisation,
                common_name,
                sender,
                subject,
                content_type,
                recipients,
                payload: read_payload(r)?,
                height: Height(r.u64("message.height")?),
                timestamp_ms: r.u64("message.timestamp_ms")?,
            })
        })
    }
}

impl Acknowledgement {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::ACK);
        w.bytes(self.organisation.as_bytes());
        w.bytes(self.common_name.as_bytes());
        w.fixed(self.signer.as_bytes());
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("ack.header", tag::ACK)?;
            Ok(Acknowledgement {
                organisation: read_text(r, "ack.organisation", MAX_NAME_BYTES)?,
                common_name: read_text(r, "ack.common_name", MAX_NAME_BYTES)?,
                signer: Digest(r.array("ack.signer")?),
                height: Height(r.u64("ack.height")?),
                timestamp_ms: r.u64("ack.timestamp_ms")?,
            })
        })
    }
}

impl FetchRecord {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::FETCH);
        w.u64(self.seq);
        match &self.object {
            FetchObject::Dataset(id) => {
                w.u8(1);
                w.bytes(id.as_bytes());
            }
            FetchObject::Message(id) => {
                w.u8(2);
                w.bytes(id.as_bytes());
            }
        }
        w.u64(self.version);
        w.fixed(self.requester.as_bytes());
        w.fixed(self.request.as_bytes());
        w.u32(self.outcome);
        w.bytes(&self.envelope_sm3);
        w.fixed(self.node.as_bytes());
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes (`key` names it in errors).
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            r.header("fetch.header", tag::FETCH)?;
            let seq = r.u64("fetch.seq")?;
            let object = match r.u8("fetch.object")? {
                1 => FetchObject::Dataset(read_text(r, "fetch.object", MAX_ID_BYTES)?),
                2 => FetchObject::Message(Digest(
                    <[u8; 32]>::try_from(r.bytes("fetch.object", 32)?)
                        .map_err(|_| bad("fetch.object"))?,
                )),
                _ => return Err(bad("fetch.object")),
            };
            Ok(FetchRecord {
                seq,
                object,
                version: r.u64("fetch.version")?,
                requester: Digest(r.array("fetch.requester")?),
                request: Digest(r.array("fetch.request")?),
                outcome: r.u32("fetch.outcome")?,
                envelope_sm3: r.bytes("fetch.envelope_sm3", 32)?.to_vec(),
                node: Digest(r.array("fetch.node")?),
                height: Height(r.u64("fetch.height")?),
                timestamp_ms: r.u64("fetch.timestamp_ms")?,
            })
        })
    }
}

/// The encoding of the chain's escrow recipients (`exchange/escrow`).
pub fn encode_escrow(list: &[EscrowRecipient]) -> Vec<u8> {
    let mut w = Writer::new();
    w.header(tag::ESCROW);
    w.len(list.len());
    for e in list {
        w.fixed(e.id.as_bytes());
        w.bytes(&e.cert);
    }
    w.into_bytes()
}

/// Decodes the chain's escrow recipients (`exchange/escrow`).
pub fn decode_escrow(key: &[u8], bytes: &[u8]) -> Result<Vec<EscrowRecipient>, ExecError> {
    decode(key, bytes, |r| {
        r.header("escrow.header", tag::ESCROW)?;
        let n = r.len("escrow", MAX_ESCROW)?;
        (0..n)
            .map(|_| {
                Ok(EscrowRecipient {
                    id: Digest(r.array("escrow.id")?),
                    cert: r.bytes("escrow.cert", pki::MAX_CERT_LEN)?.to_vec(),
                })
            })
            .collect()
    })
}

pub(crate) fn decode_u64(key: &[u8], bytes: Option<&[u8]>) -> Result<u64, ExecError> {
    crate::records::decode_u64(key, bytes)
}

// ---------------------------------------------------------------------------------------------
// Reads for the node's serving path, the CLI's queries and the supervisor's indexes

fn read<T>(
    view: &dyn StateRead,
    relative: Vec<u8>,
    dec: impl FnOnce(&[u8], &[u8]) -> Result<T, ExecError>,
) -> Result<Option<T>, ExecError> {
    let key = full(EXCHANGE, &relative);
    view.read(&key)?.map(|b| dec(&key, &b)).transpose()
}

fn count(view: &dyn StateRead, relative: Vec<u8>) -> Result<u64, ExecError> {
    let key = full(EXCHANGE, &relative);
    decode_u64(&key, view.read(&key)?.as_deref())
}

/// Entries `from..` (at most `limit`, itself at most [`MAX_LIST`]) of a numbered index of
/// `total` entries, each under `key_of(seq)`.
fn page<T>(
    view: &dyn StateRead,
    total: u64,
    from: u64,
    limit: u32,
    key_of: impl Fn(u64) -> Vec<u8>,
    dec: impl Fn(&[u8], &[u8]) -> Result<T, ExecError>,
) -> Result<Vec<T>, ExecError> {
    let end = total.min(from.saturating_add(u64::from(limit.min(MAX_LIST))));
    (from..end)
        .filter_map(|seq| read(view, key_of(seq), &dec).transpose())
        .collect()
}

fn utf8_value(key: &[u8], bytes: &[u8]) -> Result<String, ExecError> {
    text("index", bytes).map_err(|e| ExecError::corrupt(key, e))
}

/// The dataset `id` (`<organisation>/<name>`).
pub fn dataset(view: &dyn StateRead, id: &str) -> Result<Option<Dataset>, ExecError> {
    read(view, k::dataset(id), Dataset::decode)
}

/// Dataset IDs in registration order, from `from`, at most `limit` (≤ [`MAX_LIST`]).
pub fn datasets(view: &dyn StateRead, from: u64, limit: u32) -> Result<Vec<String>, ExecError> {
    let total = count(view, k::dataset_count())?;
    page(view, total, from, limit, k::dataset_index, utf8_value)
}

/// Version `n` of the dataset `id`.
pub fn version(view: &dyn StateRead, id: &str, n: u64) -> Result<Option<Version>, ExecError> {
    read(view, k::version(id, n), Version::decode)
}

/// The access request `id`.
pub fn request(view: &dyn StateRead, id: &Digest) -> Result<Option<AccessRequest>, ExecError> {
    read(view, k::request(id), AccessRequest::decode)
}

/// The requests of a dataset in arrival order, from `from`, at most `limit`.
pub fn requests(
    view: &dyn StateRead,
    dataset: &Dataset,
    from: u64,
    limit: u32,
) -> Result<Vec<AccessRequest>, ExecError> {
    let id = dataset.id();
    let ids = page(
        view,
        dataset.requests,
        from,
        limit,
        |seq| k::request_index(&id, seq),
        crate::records::decode_digest,
    )?;
    ids.iter()
        .filter_map(|rid| request(view, rid).transpose())
        .collect()
}

/// The latest request of the signer `requester` for the dataset, which a fetch checks.
pub fn latest_request(
    view: &dyn StateRead,
    requester: &Digest,
    dataset: &str,
) -> Result<Option<AccessRequest>, ExecError> {
    match read(
        view,
        k::grantee(requester, dataset),
        crate::records::decode_digest,
    )? {
        None => Ok(None),
        Some(rid) => request(view, &rid),
    }
}

/// The recorded endpoint of an organisation's node.
pub fn endpoint(
    view: &dyn StateRead,
    organisation: &str,
    node: &str,
) -> Result<Option<Endpoint>, ExecError> {
    read(view, k::endpoint(organisation, node), Endpoint::decode)
}

/// The message `id`.
pub fn message(view: &dyn StateRead, id: &Digest) -> Result<Option<Message>, ExecError> {
    read(view, k::message(id), Message::decode)
}

/// An organisation's acknowledgement of a message.
pub fn acknowledgement(
    view: &dyn StateRead,
    message: &Digest,
    organisation: &str,
) -> Result<Option<Acknowledgement>, ExecError> {
    read(view, k::ack(message, organisation), Acknowledgement::decode)
}

/// The IDs of messages sent to an organisation, from `from`, at most `limit`.
pub fn inbox(
    view: &dyn StateRead,
    organisation: &str,
    from: u64,
    limit: u32,
) -> Result<Vec<Digest>, ExecError> {
    let total = count(view, k::inbox_count(organisation))?;
    page(
        view,
        total,
        from,
        limit,
        |s| k::inbox(organisation, s),
        crate::records::decode_digest,
    )
}

/// The IDs of messages an organisation sent, from `from`, at most `limit`.
pub fn outbox(
    view: &dyn StateRead,
    organisation: &str,
    from: u64,
    limit: u32,
) -> Result<Vec<Digest>, ExecError> {
    let total = count(view, k::outbox_count(organisation))?;
    page(
        view,
        total,
        from,
        limit,
        |s| k::outbox(organisation, s),
        crate::records::decode_digest,
    )
}

/// The fetch log of an object, from `from`, at most `limit`; and its total length.
pub fn fetch_log(
    view: &dyn StateRead,
    object: &FetchObject,
    from: u64,
    limit: u32,
) -> Result<(Vec<FetchRecord>, u64), ExecError> {
    let name = object.log_name();
    let total = count(view, k::fetch_count(&name))?;
    let records = page(
        view,
        total,
        from,
        limit,
        |seq| k::fetch(&name, seq),
        FetchRecord::decode,
    )?;
    Ok((records, total))
}

/// The chain's escrow recipients (none when absent).
pub fn escrow_recipients(view: &dyn StateRead) -> Result<Vec<EscrowRecipient>, ExecError> {
    Ok(read(view, k::escrow(), decode_escrow)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: u8) -> Digest {
        Digest([b; 32])
    }

    fn payload() -> Payload {
        Payload {
            plaintext_sm3: d(1),
            payload_sm3: d(2),
            plaintext_len: 5,
            payload_len: 34,
            custodian: "node0".into(),
            custodian_envelope: Envelope {
                recipient: d(3),
                cipher: vec![0x30, 0x01],
            },
            escrow: vec![Envelope {
                recipient: d(4),
                cipher: vec![0x30],
            }],
        }
    }

    #[test]
    fn records_round_trip_and_the_dataset_is_pinned() {
        let ds = Dataset {
            organisation: "A".into(),
            name: "n".into(),
            class: SharingClass::Conditional,
            content_type: "t".into(),
            title: "T".into(),
            description: String::new(),
            confidential: false,
            creator: d(9),
            height: Height(7),
            versions: 1,
            requests: 2,
        };
        let bytes = ds.encode();
        // version 1, tag 0x90, then the fields in order (docs/execution.md §3).
        let mut want = vec![
            0x01, 0x90, 0, 0, 0, 1, b'A', 0, 0, 0, 1, b'n', 2, 0, 0, 0, 1, b't',
        ];
        want.extend_from_slice(&[0, 0, 0, 1, b'T', 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(bytes, want);
        assert_eq!(Dataset::decode(b"k", &bytes).unwrap(), ds);
        // A trailing byte, an unknown class or a truncation is a corrupt record.
        let mut long = bytes.clone();
        long.push(0);
        assert!(Dataset::decode(b"k", &long).is_err());
        let mut bad = bytes.clone();
        bad[12] = 9;
        assert!(Dataset::decode(b"k", &bad).is_err());
        assert!(Dataset::decode(b"k", &bytes[..bytes.len() - 1]).is_err());

        let v = Version {
            number: 1,
            payload: payload(),
            sealed_metadata: vec![1, 2],
            publisher: d(5),
            height: Height(3),
            timestamp_ms: 4,
        };
        assert_eq!(Version::decode(b"k", &v.encode()).unwrap(), v);
        let r = AccessRequest {
            id: d(1),
            dataset: "A/n".into(),
            organisation: "B".into(),
            common_name: "b".into(),
            requester: d(2),
            enc_cert: vec![0x30],
            purpose: "p".into(),
            duration: 10,
            status: RequestStatus::Revoked,
            expiry: Height(20),
            height: Height(5),
            decided_at: Height(6),
            decided_by: d(3),
            reason: "r".into(),
        };
        assert_eq!(AccessRequest::decode(b"k", &r.encode()).unwrap(), r);
        let m = Message {
            id: d(1),
            organisation: "A".into(),
            common_name: "a".into(),
            sender: d(2),
            subject: "s".into(),
            content_type: "t".into(),
            recipients: vec!["B".into(), "C".into()],
            payload: payload(),
            height: Height(1),
            timestamp_ms: 2,
        };
        assert_eq!(Message::decode(b"k", &m.encode()).unwrap(), m);
        for object in [
            FetchObject::Dataset("A/n".into()),
            FetchObject::Message(d(8)),
        ] {
            let f = FetchRecord {
                seq: 3,
                object,
                version: 1,
                requester: d(1),
                request: d(2),
                outcome: 3320,
                envelope_sm3: Vec::new(),
                node: d(3),
                height: Height(4),
                timestamp_ms: 5,
            };
            assert_eq!(FetchRecord::decode(b"k", &f.encode()).unwrap(), f);
        }
        let e = Endpoint {
            organisation: "A".into(),
            node: "node0".into(),
            address: "127.0.0.1:1".into(),
            enc_cert: vec![0x30],
            height: Height(1),
        };
        assert_eq!(Endpoint::decode(b"k", &e.encode()).unwrap(), e);
        let a = Acknowledgement {
            organisation: "B".into(),
            common_name: "b".into(),
            signer: d(1),
            height: Height(2),
            timestamp_ms: 3,
        };
        assert_eq!(Acknowledgement::decode(b"k", &a.encode()).unwrap(), a);
        let list = vec![EscrowRecipient {
            id: d(1),
            cert: vec![0x30],
        }];
        assert_eq!(decode_escrow(b"k", &encode_escrow(&list)).unwrap(), list);
    }
}
