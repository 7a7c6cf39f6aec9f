//! `gmchain data …`: sharing data between agencies (issue 15), the client of the `exchange`
//! contract (docs/execution.md §4.4) and of the node's Exchange service
//! (`crates/api/proto/gmchain/v1/exchange.proto`).
//!
//! A payload is sealed here, under a fresh SM4 data key, in the chunked SM4-GCM format of
//! docs/formats.md §8, streaming through a temporary file that has no name (created 0600 with
//! `create_new`, unlinked at once, so it is gone on every path, a crash included); only
//! the ciphertext leaves this machine, and the data key only wrapped with SM2 to the custodian
//! node's encryption certificate and to the chain's escrow recipients.
//!
//! A fetch writes nothing at `--out` unless every check passed: the header's record is the
//! chain's, the ciphertext's length and SM3 are the catalogue's, the data key's envelope opens
//! (C3), every chunk's tag verifies and the plaintext's SM3 is the catalogue's. The plaintext
//! is decrypted into a temporary file next to `--out` and renamed into place only then.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use api::v1::exchange_client::ExchangeClient;
use clap::{Subcommand, ValueEnum};
use crypto::{CipherFormat, Digest, RandomSource};
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm4::Sm4Secret;
use exchange::payload;
use execution::data::{
    self as data, AccessRequest, Dataset, Endpoint, Envelope, FetchObject, FetchRecord, Message,
    SharingClass, Version,
};
use tonic::transport::Channel;
use types::Call;
use zeroize::Zeroizing;

use crate::cli_tx::{SenderArgs, print_json, runtime, send, status_failure};
use crate::client::NodeArgs;
use crate::io::{PassArgs, read_cert};
use crate::{CmdResult, Failure};

/// The largest data part of one Upload message (the service's limit).
const UPLOAD_CHUNK: usize = 1 << 20;

/// The Exchange client's message limit: a chunk of at most 1 MiB and its framing, or a
/// catalogue read.
const EXCHANGE_MESSAGE_LIMIT: usize = 4 << 20;

/// The requests one GetDataset page asks for.
const PAGE: u32 = 100;

/// A data key: 16 bytes from the OS, zeroized on drop.
struct DataKey(Zeroizing<[u8; 16]>);

impl DataKey {
    fn fresh() -> Result<DataKey, Failure> {
        let mut k = Zeroizing::new([0u8; 16]);
        SystemRandom
            .fill(&mut k[..])
            .map_err(|e| Failure::BadInput(format!("no randomness for the data key: {e}")))?;
        Ok(DataKey(k))
    }

    fn secret(&self) -> Result<Sm4Secret, Failure> {
        Sm4Secret::from_slice(&self.0[..])
            .map_err(|e| Failure::BadInput(format!("the data key: {e}")))
    }

    /// The key wrapped with SM2 to `cert`'s public key (GM/T 0009 `SM2Cipher` DER).
    fn wrap_to(&self, what: &str, cert_der: &[u8]) -> Result<Vec<u8>, Failure> {
        let cert = pki::Certificate::from_der(cert_der)
            .map_err(|e| Failure::BadInput(format!("{what}'s certificate does not parse: {e}")))?;
        crypto_sm::sm2::encrypt(
            &cert.public_key(),
            &self.0[..],
            CipherFormat::Der,
            &SystemRandom,
        )
        .map_err(|e| Failure::BadInput(format!("cannot wrap the data key to {what}: {e}")))
    }
}

fn nonce_prefix() -> Result<[u8; 8], Failure> {
    let mut p = [0u8; 8];
    SystemRandom
        .fill(&mut p)
        .map_err(|e| Failure::BadInput(format!("no randomness for the nonce prefix: {e}")))?;
    Ok(p)
}

/// The sharing class, as the CLI names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ClassArg {
    /// Granted automatically to any registered organisation that asks.
    Unconditional,
    /// Granted by the owner's admin, request by request.
    Conditional,
    /// Never granted.
    NotShared,
}

impl ClassArg {
    fn class(self) -> SharingClass {
        match self {
            ClassArg::Unconditional => SharingClass::Unconditional,
            ClassArg::Conditional => SharingClass::Conditional,
            ClassArg::NotShared => SharingClass::NotShared,
        }
    }
}

/// The decryption key of `fetch`: the holder's encryption key.
#[derive(Debug, clap::Args)]
pub(crate) struct EncKeyArgs {
    /// Your encryption key (the `-enc` half of your dual pair): a PEM key file or a `pkcs11:`
    /// URI (the SM2 decryption then runs in the token).
    #[arg(long, value_name = "KEY")]
    enc_key: String,
    /// The PKCS#11 module profile of a `pkcs11:` --enc-key.
    #[arg(long, value_name = "FILE")]
    enc_hsm_profile: Option<PathBuf>,
    /// File holding the --enc-key's PIN or passphrase.
    #[arg(long, value_name = "FILE", conflicts_with = "enc_pass_env")]
    enc_pass_file: Option<PathBuf>,
    /// Environment variable holding the --enc-key's PIN or passphrase.
    #[arg(long, value_name = "VAR")]
    enc_pass_env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Records where your organisation's node serves payloads and its encryption certificate
    /// (admin; exchange.set_endpoint). The node is the certificate's common name.
    Endpoint {
        /// The node's API address, HOST:PORT, where `data fetch` connects.
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        /// The node's encryption certificate (node-enc; its CN names the node).
        #[arg(long, value_name = "FILE")]
        enc_cert: PathBuf,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Publishes FILE as the next version of dataset --name of your organisation (registering
    /// the dataset first if it does not exist): sealed here under a fresh SM4 key, uploaded to
    /// the node you are connected to, the key wrapped to that node and to the escrow.
    Publish {
        /// The plaintext; it is read twice never, streamed once.
        file: PathBuf,
        /// The dataset's name (1 to 64 of A-Z a-z 0-9 . _ -).
        #[arg(long)]
        name: String,
        /// The sharing class, when the dataset is registered (default: conditional). A
        /// registered dataset keeps its class: another one is refused.
        #[arg(long, value_enum)]
        class: Option<ClassArg>,
        /// The content type or schema (public), when the dataset is registered (default:
        /// application/octet-stream); a registered dataset keeps its own.
        #[arg(long)]
        content_type: Option<String>,
        /// The title (default: the name; sealed in each version with --confidential). A
        /// dataset registered in clear keeps its title: another one is refused.
        #[arg(long, default_value = "")]
        title: String,
        /// The description (sealed in each version with --confidential; a dataset registered
        /// in clear keeps its own).
        #[arg(long, default_value = "")]
        description: String,
        /// Keep the title and description off the chain in clear: each version carries them
        /// sealed under its data key.
        #[arg(long)]
        confidential: bool,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The catalogue: every dataset with its class and versions.
    List {
        /// Machine output (JSON).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A dataset: its versions (sizes, digests, custodian, height) and its access requests.
    Show {
        /// The dataset ID, ORGANISATION/NAME.
        dataset: String,
        /// Machine output (JSON).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Asks for access to another organisation's dataset (exchange.request); prints the
    /// request ID and whether it was granted at once (an unconditional dataset).
    Request {
        /// The dataset ID, ORGANISATION/NAME.
        dataset: String,
        /// Why you need it (recorded on the chain).
        #[arg(long)]
        purpose: String,
        /// Your encryption certificate, to which the custodian wraps each data key.
        #[arg(long, value_name = "FILE")]
        enc_cert: PathBuf,
        /// How many blocks an automatic grant lasts.
        #[arg(long, default_value_t = 100_000)]
        blocks: u64,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Grants a pending request (the owner's admin), for --blocks from now or until --expiry.
    Grant {
        /// The request ID (hex).
        request_id: String,
        /// Blocks from the current height.
        #[arg(long, required_unless_present = "expiry", conflicts_with = "expiry")]
        blocks: Option<u64>,
        /// The expiry height.
        #[arg(long, value_name = "H")]
        expiry: Option<u64>,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Denies a pending request (the owner's admin).
    Deny {
        /// The request ID (hex).
        request_id: String,
        /// Why (recorded on the chain).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Revokes a grant (the owner's admin): the custodian refuses to serve from then on.
    Revoke {
        /// The request ID (hex).
        request_id: String,
        /// Why (recorded on the chain).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Fetches a version of a dataset (or a message) from its custodian node, checks both
    /// digests, decrypts it with your encryption key; writes nothing unless all verified.
    Fetch(Box<FetchArgs>),
    /// The fetch log of a dataset or a message: every served and refused fetch.
    Log {
        /// The dataset ID, ORGANISATION/NAME.
        #[arg(required_unless_present = "message", conflicts_with = "message")]
        dataset: Option<String>,
        /// A message ID (hex) instead.
        #[arg(long, value_name = "ID")]
        message: Option<String>,
        /// Machine output (JSON).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Sends FILE to other organisations (sealed like a version, kept by your node); each
    /// recipient acknowledges with `data ack`.
    Send {
        /// The plaintext.
        file: PathBuf,
        /// The recipient organisations, comma-separated.
        #[arg(
            long,
            value_name = "ORG[,ORG…]",
            value_delimiter = ',',
            required = true
        )]
        to: Vec<String>,
        /// The subject (on the chain in clear).
        #[arg(long)]
        subject: String,
        /// The content type.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Messages sent to your organisation (or, with --sent, by it).
    Inbox {
        /// The outbox instead.
        #[arg(long)]
        sent: bool,
        /// The organisation (default: the O of your TLS certificate).
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        /// Machine output (JSON).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Acknowledges a message sent to your organisation (the delivery receipt).
    Ack {
        /// The message ID (hex).
        message_id: String,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// `data fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The dataset ID, ORGANISATION/NAME.
    #[arg(required_unless_present = "message", conflicts_with = "message")]
    dataset: Option<String>,
    /// The version (default: the latest). Not `--version`, which prints gmchain's.
    #[arg(
        long = "dataset-version",
        id = "dataset_version",
        value_name = "N",
        conflicts_with = "message"
    )]
    version: Option<u64>,
    /// A message ID (hex) instead of a dataset.
    #[arg(long, value_name = "ID")]
    message: Option<String>,
    #[command(flatten)]
    enc: EncKeyArgs,
    /// Your encryption certificate: needed by the owner's own members and by a message's
    /// recipients (a grantee's is the one its request recorded).
    #[arg(long, value_name = "FILE")]
    enc_cert: Option<PathBuf>,
    /// Connect to the custodian here instead of the address its endpoint records (a node
    /// behind NAT).
    #[arg(long, value_name = "HOST:PORT")]
    exchange_node: Option<String>,
    /// Where to write the plaintext (0600); stdout if absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long to wait for the custodian's answer and for each of its next messages, in
    /// seconds (it may take up to a minute to record a fetch); the whole stream may take this
    /// plus 2 s per MiB of payload. Exit 3 when exceeded.
    #[arg(long, value_name = "SECONDS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3600))]
    wait: u64,
    #[command(flatten)]
    node: NodeArgs,
}

/// The two clients of one connection.
struct Conn {
    chain: ChainClient<Channel>,
    exchange: ExchangeClient<Channel>,
}

async fn connect(node: &NodeArgs) -> Result<Conn, Failure> {
    let (channel, _) = crate::client::channel_with_info(node).await?;
    Ok(Conn {
        chain: ChainClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        exchange: exchange_client(channel),
    })
}

fn exchange_client(channel: Channel) -> ExchangeClient<Channel> {
    ExchangeClient::new(channel)
        .max_decoding_message_size(EXCHANGE_MESSAGE_LIMIT)
        .max_encoding_message_size(EXCHANGE_MESSAGE_LIMIT)
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("the node sent an unreadable {what}: {e}"))
}

/// A refusal that names a registry code (`gmchain-code`), e.g. `EXCHANGE_NO_GRANT`, with
/// the code's name in the message.
fn refusal(what: &str, s: tonic::Status) -> Failure {
    let code = s
        .metadata()
        .get(api::CODE_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match code {
        Some(c) if !s.message().contains(&c) => {
            let msg = format!("{c}: {}", s.message());
            status_failure(
                what,
                tonic::Status::with_metadata(s.code(), msg, s.metadata().clone()),
            )
        }
        _ => status_failure(what, s),
    }
}

fn is_unknown(s: &tonic::Status, code: &str) -> bool {
    s.code() == tonic::Code::NotFound
        || s.metadata()
            .get(api::CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            == Some(code)
}

fn split_dataset(id: &str) -> Result<(&str, &str), Failure> {
    match id.rsplit_once('/') {
        Some((o, n)) if !o.is_empty() && valid_name(n) => Ok((o, n)),
        _ => Err(Failure::BadInput(format!(
            "dataset {id:?}: expected ORGANISATION/NAME, the name 1 to 64 of A-Z a-z 0-9 . _ -"
        ))),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= data::MAX_DATASET_NAME_LEN
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_len(option: &str, s: &str, max: usize) -> Result<(), Failure> {
    if s.len() > max {
        return Err(Failure::BadInput(format!(
            "{option}: {} bytes, at most {max}",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Failure::BadInput(format!(
            "{option}: contains a control character"
        )));
    }
    Ok(())
}

fn check_content_type(s: &str) -> Result<(), Failure> {
    if s.is_empty()
        || s.len() > data::MAX_CONTENT_TYPE_LEN
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./+-_;=".contains(&b))
    {
        return Err(Failure::BadInput(format!(
            "--content-type {s:?}: must be 1 to {} of A-Z a-z 0-9 . / + - _ ; =",
            data::MAX_CONTENT_TYPE_LEN
        )));
    }
    Ok(())
}

fn organisation_of(flag: &str, path: &Path) -> Result<String, Failure> {
    let cert = read_cert(flag, path)?;
    cert.organisation().ok_or_else(|| {
        Failure::BadInput(format!(
            "{flag} {}: the certificate names no organisation (O)",
            path.display()
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Temporary files

/// A read-write temporary file without a name: created 0600 with `create_new` in the system's
/// temporary directory (next to nothing of ours), then unlinked while open, so that no path
/// of this process, a crash included, leaves it behind.
fn anonymous_temp() -> Result<File, Failure> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let mut r = [0u8; 8];
        SystemRandom
            .fill(&mut r)
            .map_err(|e| Failure::BadInput(format!("no randomness for a temporary name: {e}")))?;
        let path = dir.join(format!(".gmchain-data-{}", hex::encode(r)));
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(&path) {
            Ok(f) => {
                std::fs::remove_file(&path).map_err(|e| {
                    Failure::BadInput(format!(
                        "cannot unlink the temporary file {}: {e}",
                        path.display()
                    ))
                })?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Failure::BadInput(format!(
                    "cannot create a temporary file in {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(Failure::BadInput(format!(
        "cannot create a temporary file in {}: every name taken",
        dir.display()
    )))
}

// ---------------------------------------------------------------------------------------------
// Sealing and uploading

/// A sealed payload in its temporary file, with its key and summary.
struct Sealed {
    file: File,
    key: DataKey,
    summary: payload::Summary,
}

/// Seals `path` under a fresh data key into an anonymous temporary file (bounded memory).
fn seal_file(path: &Path) -> Result<Sealed, Failure> {
    let mut input = File::open(path)
        .map_err(|e| Failure::BadInput(format!("cannot read FILE {}: {e}", path.display())))?;
    let key = DataKey::fresh()?;
    let mut file = anonymous_temp()?;
    let summary = {
        let mut out = io::BufWriter::with_capacity(1 << 16, &mut file);
        payload::seal(&key.secret()?, &nonce_prefix()?, &mut input, &mut out)
            .map_err(|e| Failure::BadInput(format!("cannot seal {}: {e}", path.display())))?
    };
    Ok(Sealed { file, key, summary })
}

/// Streams the sealed payload to the node's blob store in chunks of at most 1 MiB; returns
/// the custodian's common name once the node has it durably.
async fn upload(ex: &mut ExchangeClient<Channel>, sealed: &Sealed) -> Result<String, Failure> {
    let mut file = sealed
        .file
        .try_clone()
        .map_err(|e| Failure::BadInput(format!("the sealed temporary file: {e}")))?;
    let (sm3, len) = (sealed.summary.payload_sm3, sealed.summary.payload_len);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadChunk>(2);
    let reader = tokio::task::spawn_blocking(move || -> Result<(), String> {
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let mut first = true;
        loop {
            let mut buf = vec![0u8; UPLOAD_CHUNK];
            let n = payload::read_full(&mut file, &mut buf).map_err(|e| e.to_string())?;
            if n == 0 && !first {
                return Ok(());
            }
            buf.truncate(n);
            let chunk = pb::UploadChunk {
                payload_sm3: if first { sm3.0.to_vec() } else { Vec::new() },
                payload_len: if first { len } else { 0 },
                data: buf,
            };
            first = false;
            // A closed channel: the call ended, and its status says why.
            if tx.blocking_send(chunk).is_err() || n < UPLOAD_CHUNK {
                return Ok(());
            }
        }
    });
    let resp = ex
        .upload(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let read = reader
        .await
        .map_err(|e| Failure::BadInput(format!("the upload's reader failed: {e}")))?;
    let resp = resp.map_err(|s| refusal("the node refused the upload", s))?;
    read.map_err(|e| Failure::BadInput(format!("cannot read the sealed temporary file: {e}")))?;
    let resp = resp.into_inner();
    if resp.payload_sm3 != sm3.0 || resp.payload_len != len || resp.custodian.is_empty() {
        return Err(Failure::NotVerified(format!(
            "the node acknowledged another upload (SM3 {}, {} bytes, custodian {:?}) than this payload (SM3 {sm3}, {len} bytes)",
            hex::encode(&resp.payload_sm3),
            resp.payload_len,
            resp.custodian
        )));
    }
    Ok(resp.custodian)
}

async fn endpoint(
    ex: &mut ExchangeClient<Channel>,
    organisation: &str,
    node: &str,
) -> Result<Endpoint, Failure> {
    let r = ex
        .get_endpoint(pb::GetEndpointRequest {
            organisation: organisation.to_string(),
            node: node.to_string(),
        })
        .await
        .map_err(|s| {
            if is_unknown(&s, "EXCHANGE_ENDPOINT_UNKNOWN") {
                Failure::NotVerified(format!(
                    "EXCHANGE_ENDPOINT_UNKNOWN: node {node:?} of {organisation:?} has recorded no endpoint (its admin runs `gmchain data endpoint`)"
                ))
            } else {
                refusal("GetEndpoint", s)
            }
        })?
        .into_inner();
    if r.record.is_empty() {
        return Err(Failure::NotVerified(format!(
            "EXCHANGE_ENDPOINT_UNKNOWN: node {node:?} of {organisation:?} has recorded no endpoint (its admin runs `gmchain data endpoint`)"
        )));
    }
    Endpoint::decode(b"Exchange.GetEndpoint", &r.record).map_err(|e| unreadable("endpoint", e))
}

/// The data key wrapped to the custodian and to each escrow recipient.
async fn envelopes(
    ex: &mut ExchangeClient<Channel>,
    key: &DataKey,
    organisation: &str,
    custodian: &str,
) -> Result<(Vec<u8>, Vec<Envelope>), Failure> {
    let ep = endpoint(ex, organisation, custodian).await?;
    let custodian_envelope = key.wrap_to(&format!("custodian {custodian}"), &ep.enc_cert)?;
    let r = ex
        .get_escrow(pb::GetEscrowRequest {})
        .await
        .map_err(|s| refusal("GetEscrow", s))?
        .into_inner();
    let escrow = if r.record.is_empty() {
        Vec::new()
    } else {
        data::decode_escrow(b"exchange/escrow", &r.record)
            .map_err(|e| unreadable("escrow list", e))?
    };
    let escrow = escrow
        .iter()
        .map(|e| {
            Ok(Envelope {
                recipient: e.id,
                cipher: key.wrap_to(&format!("escrow recipient {}", e.id), &e.cert)?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    Ok((custodian_envelope, escrow))
}

/// The payload arguments shared by `publish` and `send`: plaintext SM3, payload SM3,
/// plaintext length, payload length, custodian, custodian envelope, escrow envelopes.
fn payload_args(
    s: &payload::Summary,
    custodian: &str,
    custodian_envelope: Vec<u8>,
    escrow: &[Envelope],
) -> Vec<Vec<u8>> {
    vec![
        s.plaintext_sm3.0.to_vec(),
        s.payload_sm3.0.to_vec(),
        s.plaintext_len.to_be_bytes().to_vec(),
        s.payload_len.to_be_bytes().to_vec(),
        custodian.as_bytes().to_vec(),
        custodian_envelope,
        data::encode_envelopes(escrow),
    ]
}

fn exchange_call(method: &str, args: Vec<Vec<u8>>) -> Call {
    Call {
        contract: "exchange".into(),
        method: method.into(),
        args,
    }
}

// ---------------------------------------------------------------------------------------------
// Catalogue reads

/// A dataset as the node reads it: the dataset, its versions (canonical bytes with their
/// decoding) and its requests.
struct DatasetView {
    dataset: Dataset,
    versions: Vec<(Vec<u8>, Version)>,
    requests: Vec<AccessRequest>,
    height: u64,
}

async fn dataset(
    ex: &mut ExchangeClient<Channel>,
    id: &str,
) -> Result<Option<DatasetView>, Failure> {
    let mut from = 0u64;
    let mut view: Option<DatasetView> = None;
    loop {
        let r = match ex
            .get_dataset(pb::GetDatasetRequest {
                dataset: id.to_string(),
                requests_from: from,
                limit: PAGE,
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if is_unknown(&s, "EXCHANGE_DATASET_UNKNOWN") => return Ok(None),
            Err(s) => return Err(refusal("GetDataset", s)),
        };
        if r.dataset.is_empty() {
            return Ok(None);
        }
        let requests = r
            .requests
            .iter()
            .map(|b| AccessRequest::decode(b"Exchange.GetDataset", b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable("access request", e))?;
        let got = requests.len() as u64;
        match &mut view {
            Some(v) => v.requests.extend(requests),
            None => {
                let ds = Dataset::decode(b"Exchange.GetDataset", &r.dataset)
                    .map_err(|e| unreadable("dataset", e))?;
                if ds.id() != id {
                    return Err(unreadable("dataset", format!("{} for {id}", ds.id())));
                }
                let versions = r
                    .versions
                    .into_iter()
                    .map(|b| {
                        let v = Version::decode(b"Exchange.GetDataset", &b)?;
                        Ok((b, v))
                    })
                    .collect::<Result<Vec<_>, execution::ExecError>>()
                    .map_err(|e| unreadable("version", e))?;
                view = Some(DatasetView {
                    dataset: ds,
                    versions,
                    requests,
                    height: r.height,
                });
            }
        }
        from += got;
        let Some(v) = &view else { return Ok(None) };
        if got == 0 || from >= v.dataset.requests {
            return Ok(view);
        }
    }
}

async fn need_dataset(ex: &mut ExchangeClient<Channel>, id: &str) -> Result<DatasetView, Failure> {
    dataset(ex, id).await?.ok_or_else(|| {
        Failure::NotVerified(format!(
            "EXCHANGE_DATASET_UNKNOWN: no dataset {id:?} in the catalogue"
        ))
    })
}

async fn message(
    ex: &mut ExchangeClient<Channel>,
    id: &Digest,
) -> Result<(Vec<u8>, Message, Vec<data::Acknowledgement>), Failure> {
    let r = ex
        .get_message(pb::GetMessageRequest {
            message_id: id.0.to_vec(),
        })
        .await
        .map_err(|s| {
            if is_unknown(&s, "EXCHANGE_MESSAGE_UNKNOWN") {
                Failure::NotVerified(format!("EXCHANGE_MESSAGE_UNKNOWN: no message {id}"))
            } else {
                refusal("GetMessage", s)
            }
        })?
        .into_inner();
    if r.message.is_empty() {
        return Err(Failure::NotVerified(format!(
            "EXCHANGE_MESSAGE_UNKNOWN: no message {id}"
        )));
    }
    let m = Message::decode(b"Exchange.GetMessage", &r.message)
        .map_err(|e| unreadable("message", e))?;
    let acks = r
        .acknowledgements
        .iter()
        .map(|b| data::Acknowledgement::decode(b"Exchange.GetMessage", b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("acknowledgement", e))?;
    Ok((r.message, m, acks))
}

/// A UTC time of a block timestamp (ms), RFC 3339 (`pki::UnixTime`'s rendering).
fn utc(ms: u64) -> String {
    pki::UnixTime(ms / 1000).to_string()
}

fn version_json(v: &Version) -> serde_json::Value {
    serde_json::json!({
        "version": v.number,
        "plaintext_len": v.payload.plaintext_len,
        "payload_len": v.payload.payload_len,
        "plaintext_sm3": v.payload.plaintext_sm3.to_string(),
        "payload_sm3": v.payload.payload_sm3.to_string(),
        "custodian": v.payload.custodian,
        "custodian_envelope": hex::encode(&v.payload.custodian_envelope.cipher),
        "escrow_recipients": v.payload.escrow.iter().map(|e| e.recipient.to_string()).collect::<Vec<_>>(),
        "confidential_metadata": !v.sealed_metadata.is_empty(),
        "publisher": v.publisher.to_string(),
        "height": v.height.0,
        "time": utc(v.timestamp_ms),
    })
}

fn request_json(r: &AccessRequest) -> serde_json::Value {
    serde_json::json!({
        "id": r.id.to_string(),
        "dataset": r.dataset,
        "requester": format!("{}/{}", r.organisation, r.common_name),
        "requester_cert": r.requester.to_string(),
        "status": r.status.as_str(),
        "expiry": r.expiry.0,
        "purpose": r.purpose,
        "duration": r.duration,
        "height": r.height.0,
        "decided_at": r.decided_at.0,
        "reason": r.reason,
    })
}

fn dataset_json(v: &DatasetView) -> serde_json::Value {
    let d = &v.dataset;
    serde_json::json!({
        "dataset": d.id(),
        "class": d.class.as_str(),
        "content_type": d.content_type,
        "title": d.title,
        "description": d.description,
        "confidential": d.confidential,
        "creator": d.creator.to_string(),
        "height": d.height.0,
        "versions": v.versions.iter().map(|(_, v)| version_json(v)).collect::<Vec<_>>(),
        "requests": v.requests.iter().map(request_json).collect::<Vec<_>>(),
        "read_at": v.height,
    })
}

fn outcome_name(outcome: u32) -> &'static str {
    if outcome == 0 {
        "served"
    } else {
        crate::cli_tx::failure_name(outcome)
    }
}

fn fetch_json(r: &FetchRecord) -> serde_json::Value {
    serde_json::json!({
        "seq": r.seq,
        "object": match &r.object {
            FetchObject::Dataset(id) => id.clone(),
            FetchObject::Message(id) => id.to_string(),
        },
        "version": r.version,
        "requester_cert": r.requester.to_string(),
        "request": if r.request == Digest([0; 32]) { String::new() } else { r.request.to_string() },
        "outcome": outcome_name(r.outcome),
        "outcome_code": r.outcome,
        "envelope_sm3": hex::encode(&r.envelope_sm3),
        "node": r.node.to_string(),
        "height": r.height.0,
        "time": utc(r.timestamp_ms),
    })
}

/// A version of a registered dataset keeps what was registered: `publish` refuses options that
/// would say otherwise (they would be ignored), naming the registered value.
fn kept_as_registered(
    d: &data::Dataset,
    class: Option<ClassArg>,
    content_type: Option<&str>,
    title: &str,
    description: &str,
    confidential: bool,
) -> Result<(), Failure> {
    let id = d.id();
    if let Some(c) = class
        && c.class() != d.class
    {
        return Err(Failure::BadInput(format!(
            "--class: dataset {id:?} is registered as {}; a dataset's class does not change (publish under another --name)",
            d.class.as_str()
        )));
    }
    if let Some(t) = content_type
        && t != d.content_type
    {
        return Err(Failure::BadInput(format!(
            "--content-type: dataset {id:?} is registered as {:?}; its content type does not change",
            d.content_type
        )));
    }
    if confidential && !d.confidential {
        return Err(Failure::BadInput(format!(
            "--confidential: dataset {id:?} was registered with its title in clear"
        )));
    }
    if !d.confidential {
        if !title.is_empty() && title != d.title {
            return Err(Failure::BadInput(format!(
                "--title: dataset {id:?} was registered in clear with the title {:?}, which does not change",
                d.title
            )));
        }
        if !description.is_empty() && description != d.description {
            return Err(Failure::BadInput(format!(
                "--description: dataset {id:?} was registered in clear with another description, which does not change"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fetching (the stream's checks and decryption: fetch.rs)

mod fetch;

use fetch::Expected;

async fn fetch(args: FetchArgs) -> CmdResult {
    if let Some(out) = &args.out
        && (out.file_name().is_none() || out.is_dir())
    {
        return Err(Failure::BadInput(format!(
            "--out {} is not a file name",
            out.display()
        )));
    }
    let pass = PassArgs {
        pass_file: args.enc.enc_pass_file.clone(),
        pass_env: args.enc.enc_pass_env.clone(),
    };
    let key = crate::cli_crypto::load_decrypter(
        &args.enc.enc_key,
        args.enc.enc_hsm_profile.clone(),
        pass,
        false,
    )
    .map_err(|f| match f {
        Failure::BadInput(m) => Failure::BadInput(format!("--enc-key: {m}")),
        other => other,
    })?;
    let enc_cert = match &args.enc_cert {
        Some(p) => {
            let c = read_cert("--enc-cert", p)?;
            if c.public_key() != key.public_key() {
                return Err(Failure::BadInput(format!(
                    "--enc-key is not the key of --enc-cert {} ({})",
                    p.display(),
                    c.subject()
                )));
            }
            c.der().to_vec()
        }
        None => Vec::new(),
    };
    // Before anything is asked of the custodian (which records every fetch it serves).
    fetch::check_out(args.out.as_deref())?;
    let mut conn = connect(&args.node).await?;
    // What the chain says: the record, the custodian and the digests.
    let (request, expected, organisation, custodian, what, log_object) =
        match (&args.dataset, &args.message) {
            (Some(id), None) => {
                split_dataset(id)?;
                let view = need_dataset(&mut conn.exchange, id).await?;
                let (bytes, v) = match args.version {
                    Some(n) => view
                        .versions
                        .into_iter()
                        .find(|(_, v)| v.number == n)
                        .ok_or_else(|| {
                            Failure::NotVerified(format!(
                                "EXCHANGE_VERSION_UNKNOWN: dataset {id:?} has no version {n}"
                            ))
                        })?,
                    None => view
                        .versions
                        .into_iter()
                        .max_by_key(|(_, v)| v.number)
                        .ok_or_else(|| {
                            Failure::NotVerified(format!(
                                "EXCHANGE_VERSION_UNKNOWN: dataset {id:?} has no version yet"
                            ))
                        })?,
                };
                let req = pb::FetchRequest {
                    dataset: id.clone(),
                    version: v.number,
                    message_id: Vec::new(),
                    enc_cert: enc_cert.clone(),
                };
                let what = format!("{id} version {}", v.number);
                let exp = Expected::of(bytes, &v.payload, v.sealed_metadata.clone(), v.number);
                (
                    req,
                    exp,
                    view.dataset.organisation,
                    v.payload.custodian,
                    what,
                    FetchObject::Dataset(id.clone()),
                )
            }
            (None, Some(m)) => {
                let mid = crate::cli_tx::parse_digest("--message", m)?;
                let (bytes, msg, _) = message(&mut conn.exchange, &mid).await?;
                let req = pb::FetchRequest {
                    dataset: String::new(),
                    version: 0,
                    message_id: mid.0.to_vec(),
                    enc_cert: enc_cert.clone(),
                };
                let exp = Expected::of(bytes, &msg.payload, Vec::new(), 0);
                (
                    req,
                    exp,
                    msg.organisation,
                    msg.payload.custodian,
                    format!("message {mid}"),
                    FetchObject::Message(mid),
                )
            }
            _ => {
                return Err(Failure::BadInput(
                    "give a DATASET or --message ID".to_string(),
                ));
            }
        };
    // The custodian, with the same TLS settings, and only that node of that organisation.
    let address = match &args.exchange_node {
        Some(a) => a.clone(),
        None => {
            endpoint(&mut conn.exchange, &organisation, &custodian)
                .await?
                .address
        }
    };
    let mut tls = args.node.tls.clone();
    tls.node_name = Some(custodian.clone());
    tls.node_organisation = Some(organisation.clone());
    let (channel, _) = crate::client::channel_with_info(&NodeArgs::at(&address, tls)).await?;
    let mut ex = exchange_client(channel);
    // The custodian answers once it has judged the fetch and submitted its record (a refusal
    // once the refusal's record committed: up to a minute); it is not waited for longer.
    let wait = std::time::Duration::from_secs(args.wait);
    // The fetch log's length before the fetch is asked: only a record added after it can be
    // this fetch's trace (not an earlier fetch's, replayed by the custodian).
    let mut log = fetch::FetchLog {
        ex: &mut conn.exchange,
        object: &log_object,
        wait,
    };
    let before = log.len().await?;
    // The requester the record must name: this command's TLS certificate (the first of the
    // file, which may carry its chain, as the TLS identity reads it).
    let me = match crate::client::tls_cert_path(&args.node)? {
        Some(p) => crate::client::read_certs("--tls-cert", &p)?
            .first()
            .map(|c| c.fingerprint()),
        None => None,
    };
    let answered = tokio::time::timeout(wait, ex.fetch(request)).await;
    let stream = answered
        .map_err(|_| {
            Failure::Unreachable(format!(
                "the custodian {custodian} ({address}) did not answer the fetch within {} s (--wait); nothing was written",
                args.wait
            ))
        })?
        .map_err(|s| refusal("the custodian refused the fetch", s))?
        .into_inner();
    let mut got = fetch::receive(stream, &expected, key.as_ref(), wait).await?;
    // The trace: the custodian's record of this fetch must be in the chain's fetch log (read
    // from the node this command is connected to) before the plaintext is released.
    let logged = log.find(before, me, &expected, &got).await?;
    got.release(args.out.as_deref())?;
    eprintln!(
        "fetched {what} from {custodian} ({address}): {} bytes, plaintext SM3 {} and payload SM3 {} verified; logged on the chain as fetch {} of its log at height {} (transaction {}){}",
        got.plaintext_len,
        got.plaintext_sm3,
        got.payload_sm3,
        logged.seq,
        logged.height.0,
        hex::encode(&got.header.record_tx_id),
        if got.header.request_id.is_empty() {
            String::new()
        } else {
            format!(" under request {}", hex::encode(&got.header.request_id))
        }
    );
    if let Some(m) = &got.metadata {
        eprintln!(
            "confidential metadata (opened with the version's key): title {:?}, description {:?}",
            m.title, m.description
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commands

pub(crate) fn run(cmd: DataCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            DataCommand::Endpoint {
                address,
                enc_cert,
                sender,
                node,
            } => {
                let cert = read_cert("--enc-cert", &enc_cert)?;
                let cn = cert.common_name().ok_or_else(|| {
                    Failure::BadInput(format!(
                        "--enc-cert {}: no common name (it names the node)",
                        enc_cert.display()
                    ))
                })?;
                check_address(&address)?;
                let mut conn = connect(&node).await?;
                let call = exchange_call(
                    "set_endpoint",
                    vec![
                        cn.as_bytes().to_vec(),
                        address.as_bytes().to_vec(),
                        cert.der().to_vec(),
                    ],
                );
                let (id, _, height) = send(&mut conn.chain, &sender, call).await?;
                println!("endpoint of node {cn}: {address}, committed in tx {id} at height {height}");
                Ok(())
            }
            DataCommand::Publish {
                file,
                name,
                class,
                content_type,
                title,
                description,
                confidential,
                sender,
                node,
            } => {
                if !valid_name(&name) {
                    return Err(Failure::BadInput(format!(
                        "--name {name:?}: must be 1 to 64 of A-Z a-z 0-9 . _ -"
                    )));
                }
                if let Some(c) = &content_type {
                    check_content_type(c)?;
                }
                check_len("--title", &title, data::MAX_TITLE_LEN)?;
                check_len("--description", &description, data::MAX_DESCRIPTION_LEN)?;
                let org = organisation_of("--cert", sender.cert_path())?;
                let id = format!("{org}/{name}");
                let mut conn = connect(&node).await?;
                let confidential = match dataset(&mut conn.exchange, &id).await? {
                    Some(v) => {
                        kept_as_registered(
                            &v.dataset,
                            class,
                            content_type.as_deref(),
                            &title,
                            &description,
                            confidential,
                        )?;
                        v.dataset.confidential
                    }
                    None => {
                        let class = class.unwrap_or(ClassArg::Conditional);
                        let content_type = content_type
                            .unwrap_or_else(|| "application/octet-stream".to_string());
                        let (t, d) = if confidential {
                            (String::new(), String::new())
                        } else if title.is_empty() {
                            (name.clone(), description.clone())
                        } else {
                            (title.clone(), description.clone())
                        };
                        let call = exchange_call(
                            "register",
                            vec![
                                name.as_bytes().to_vec(),
                                vec![class.class().to_u8()],
                                content_type.as_bytes().to_vec(),
                                t.into_bytes(),
                                d.into_bytes(),
                                vec![u8::from(confidential)],
                            ],
                        );
                        let (tx, _, height) = send(&mut conn.chain, &sender, call).await?;
                        eprintln!(
                            "registered dataset {id} ({}) in tx {tx} at height {height}",
                            class.class().as_str()
                        );
                        confidential
                    }
                };
                let sealed = seal_file(&file)?;
                let custodian = upload(&mut conn.exchange, &sealed).await?;
                let (cust_env, escrow) =
                    envelopes(&mut conn.exchange, &sealed.key, &org, &custodian).await?;
                let sealed_metadata = if confidential {
                    let meta = Zeroizing::new(
                        serde_json::to_vec(&serde_json::json!({
                            "title": title,
                            "description": description,
                        }))
                        .map_err(|e| Failure::BadInput(format!("metadata: {e}")))?,
                    );
                    let mut out = Vec::new();
                    payload::seal(
                        &sealed.key.secret()?,
                        &nonce_prefix()?,
                        &mut &meta[..],
                        &mut out,
                    )
                    .map_err(|e| Failure::BadInput(format!("cannot seal the metadata: {e}")))?;
                    out
                } else {
                    Vec::new()
                };
                let mut args = vec![name.into_bytes()];
                args.extend(payload_args(&sealed.summary, &custodian, cust_env, &escrow));
                args.push(sealed_metadata);
                let (tx, receipt, height) =
                    send(&mut conn.chain, &sender, exchange_call("publish", args)).await?;
                let number = receipt
                    .events
                    .iter()
                    .find(|e| e.contract == "exchange" && e.name == "published")
                    .and_then(|e| <[u8; 8]>::try_from(e.data.as_slice()).ok())
                    .map(u64::from_be_bytes);
                let s = &sealed.summary;
                println!(
                    "published {id} version {}: {} bytes (payload {} bytes on {custodian}), plaintext SM3 {}, payload SM3 {}, tx {tx} at height {height}",
                    number.map_or_else(|| "?".to_string(), |n| n.to_string()),
                    s.plaintext_len,
                    s.payload_len,
                    s.plaintext_sm3,
                    s.payload_sm3
                );
                Ok(())
            }
            DataCommand::List { json, node } => {
                let mut conn = connect(&node).await?;
                let mut ids = Vec::new();
                loop {
                    let r = conn
                        .exchange
                        .list_datasets(pb::ListDatasetsRequest {
                            from: ids.len() as u64,
                            limit: PAGE,
                        })
                        .await
                        .map_err(|s| refusal("ListDatasets", s))?
                        .into_inner();
                    let n = r.datasets.len();
                    ids.extend(r.datasets);
                    if n < PAGE as usize {
                        break;
                    }
                }
                let mut all = Vec::new();
                for id in &ids {
                    if let Some(v) = dataset(&mut conn.exchange, id).await? {
                        all.push(v);
                    }
                }
                if json {
                    return print_json(&serde_json::Value::Array(
                        all.iter().map(dataset_json).collect(),
                    ));
                }
                for v in &all {
                    let d = &v.dataset;
                    println!(
                        "{}\t{}\t{} version(s)\t{} request(s)\t{}",
                        d.id(),
                        d.class.as_str(),
                        d.versions,
                        d.requests,
                        if d.confidential {
                            "(confidential)".to_string()
                        } else {
                            d.title.clone()
                        }
                    );
                }
                Ok(())
            }
            DataCommand::Show {
                dataset: id,
                json,
                node,
            } => {
                split_dataset(&id)?;
                let mut conn = connect(&node).await?;
                let v = need_dataset(&mut conn.exchange, &id).await?;
                if json {
                    return print_json(&dataset_json(&v));
                }
                let d = &v.dataset;
                println!("dataset {} ({}, {})", d.id(), d.class.as_str(), d.content_type);
                if d.confidential {
                    println!("  title and description: confidential (sealed in each version)");
                } else {
                    println!("  title: {}", d.title);
                    println!("  description: {}", d.description);
                }
                println!("  registered at height {} by {}", d.height.0, d.creator);
                for (_, ver) in &v.versions {
                    let p = &ver.payload;
                    println!(
                        "  version {}: {} bytes (payload {}), plaintext SM3 {}, payload SM3 {}, custodian {}, height {} ({})",
                        ver.number,
                        p.plaintext_len,
                        p.payload_len,
                        p.plaintext_sm3,
                        p.payload_sm3,
                        p.custodian,
                        ver.height.0,
                        utc(ver.timestamp_ms)
                    );
                }
                for r in &v.requests {
                    println!(
                        "  request {}: {}/{} {}{}, purpose {:?}{}",
                        r.id,
                        r.organisation,
                        r.common_name,
                        r.status.as_str(),
                        if r.status == data::RequestStatus::Granted {
                            format!(" until height {}", r.expiry.0)
                        } else {
                            String::new()
                        },
                        r.purpose,
                        if r.reason.is_empty() {
                            String::new()
                        } else {
                            format!(", reason {:?}", r.reason)
                        }
                    );
                }
                Ok(())
            }
            DataCommand::Request {
                dataset: id,
                purpose,
                enc_cert,
                blocks,
                sender,
                node,
            } => {
                split_dataset(&id)?;
                if purpose.is_empty() {
                    return Err(Failure::BadInput("--purpose: empty".to_string()));
                }
                check_len("--purpose", &purpose, data::MAX_PURPOSE_LEN)?;
                if blocks == 0 || blocks > data::MAX_GRANT_BLOCKS {
                    return Err(Failure::BadInput(format!(
                        "--blocks {blocks}: must be 1 to {}",
                        data::MAX_GRANT_BLOCKS
                    )));
                }
                let cert = read_cert("--enc-cert", &enc_cert)?;
                let mut conn = connect(&node).await?;
                let call = exchange_call(
                    "request",
                    vec![
                        id.as_bytes().to_vec(),
                        purpose.into_bytes(),
                        cert.der().to_vec(),
                        blocks.to_be_bytes().to_vec(),
                    ],
                );
                let (tx, _, height) = send(&mut conn.chain, &sender, call).await?;
                let r = conn
                    .exchange
                    .get_access_request(pb::GetAccessRequestRequest {
                        request_id: tx.as_bytes().to_vec(),
                    })
                    .await
                    .map_err(|s| refusal("GetAccessRequest", s))?
                    .into_inner();
                let req = AccessRequest::decode(b"Exchange.GetAccessRequest", &r.record)
                    .map_err(|e| unreadable("access request", e))?;
                match req.status {
                    data::RequestStatus::Granted => println!(
                        "request {}: granted at once until height {} (committed at height {height})",
                        req.id, req.expiry.0
                    ),
                    other => println!(
                        "request {}: {} (committed at height {height}); the owner's admin decides",
                        req.id,
                        other.as_str()
                    ),
                }
                Ok(())
            }
            DataCommand::Grant {
                request_id,
                blocks,
                expiry,
                sender,
                node,
            } => {
                let rid = crate::cli_tx::parse_digest("REQUEST_ID", &request_id)?;
                if let Some(b) = blocks
                    && (b == 0 || b > data::MAX_GRANT_BLOCKS)
                {
                    return Err(Failure::BadInput(format!(
                        "--blocks {b}: must be 1 to {}",
                        data::MAX_GRANT_BLOCKS
                    )));
                }
                let mut conn = connect(&node).await?;
                let expiry = match (blocks, expiry) {
                    (_, Some(h)) => h,
                    (Some(b), None) => {
                        let s = conn
                            .chain
                            .get_status(pb::GetStatusRequest {})
                            .await
                            .map_err(|s| status_failure("status", s))?
                            .into_inner();
                        s.height.saturating_add(b)
                    }
                    (None, None) => {
                        return Err(Failure::BadInput(
                            "give --blocks N or --expiry H".to_string(),
                        ));
                    }
                };
                let call = exchange_call(
                    "grant",
                    vec![rid.0.to_vec(), expiry.to_be_bytes().to_vec()],
                );
                let (tx, _, height) = send(&mut conn.chain, &sender, call).await?;
                println!("request {rid}: granted until height {expiry}, tx {tx} at height {height}");
                Ok(())
            }
            DataCommand::Deny {
                request_id,
                reason,
                sender,
                node,
            } => decide("deny", "denied", &request_id, &reason, &sender, &node).await,
            DataCommand::Revoke {
                request_id,
                reason,
                sender,
                node,
            } => decide("revoke", "revoked", &request_id, &reason, &sender, &node).await,
            DataCommand::Fetch(args) => fetch(*args).await,
            DataCommand::Log {
                dataset: id,
                message: mid,
                json,
                node,
            } => {
                let (dataset, message_id) = match (&id, &mid) {
                    (Some(d), None) => {
                        split_dataset(d)?;
                        (d.clone(), Vec::new())
                    }
                    (None, Some(m)) => (String::new(), crate::cli_tx::parse_digest("--message", m)?.0.to_vec()),
                    _ => {
                        return Err(Failure::BadInput(
                            "give a DATASET or --message ID".to_string(),
                        ));
                    }
                };
                let mut conn = connect(&node).await?;
                let mut records = Vec::new();
                loop {
                    let r = conn
                        .exchange
                        .get_fetch_log(pb::GetFetchLogRequest {
                            dataset: dataset.clone(),
                            message_id: message_id.clone(),
                            from: records.len() as u64,
                            limit: PAGE,
                        })
                        .await
                        .map_err(|s| refusal("GetFetchLog", s))?
                        .into_inner();
                    let n = r.records.len();
                    for b in &r.records {
                        records.push(
                            FetchRecord::decode(b"Exchange.GetFetchLog", b)
                                .map_err(|e| unreadable("fetch record", e))?,
                        );
                    }
                    if n == 0 || records.len() as u64 >= r.total {
                        break;
                    }
                }
                if json {
                    return print_json(&serde_json::Value::Array(
                        records.iter().map(fetch_json).collect(),
                    ));
                }
                for r in &records {
                    println!(
                        "{}\trequester {}\trequest {}\tversion {}\t{}\theight {}\t{}",
                        r.seq,
                        r.requester,
                        if r.request == Digest([0; 32]) {
                            "-".to_string()
                        } else {
                            r.request.to_string()
                        },
                        r.version,
                        outcome_name(r.outcome),
                        r.height.0,
                        utc(r.timestamp_ms)
                    );
                }
                Ok(())
            }
            DataCommand::Send {
                file,
                to,
                subject,
                content_type,
                sender,
                node,
            } => {
                check_len("--subject", &subject, data::MAX_TITLE_LEN)?;
                check_content_type(&content_type)?;
                if to.is_empty() || to.len() > data::MAX_RECIPIENTS {
                    return Err(Failure::BadInput(format!(
                        "--to: 1 to {} organisations",
                        data::MAX_RECIPIENTS
                    )));
                }
                for (i, o) in to.iter().enumerate() {
                    if o.is_empty() || to[..i].contains(o) {
                        return Err(Failure::BadInput(format!(
                            "--to: organisation {o:?} empty or twice"
                        )));
                    }
                }
                let org = organisation_of("--cert", sender.cert_path())?;
                let mut conn = connect(&node).await?;
                let sealed = seal_file(&file)?;
                let custodian = upload(&mut conn.exchange, &sealed).await?;
                let (cust_env, escrow) =
                    envelopes(&mut conn.exchange, &sealed.key, &org, &custodian).await?;
                let mut args = vec![
                    subject.into_bytes(),
                    data::encode_recipients(&to),
                    content_type.into_bytes(),
                ];
                args.extend(payload_args(&sealed.summary, &custodian, cust_env, &escrow));
                let (tx, _, height) =
                    send(&mut conn.chain, &sender, exchange_call("send", args)).await?;
                let s = &sealed.summary;
                println!(
                    "sent message {tx} to {}: {} bytes (payload {} bytes on {custodian}), plaintext SM3 {}, payload SM3 {}, at height {height}",
                    to.join(", "),
                    s.plaintext_len,
                    s.payload_len,
                    s.plaintext_sm3,
                    s.payload_sm3
                );
                Ok(())
            }
            DataCommand::Inbox {
                sent,
                org,
                json,
                node,
            } => {
                let org = match org {
                    Some(o) => o,
                    None => match crate::client::tls_cert_path(&node)? {
                        Some(p) => organisation_of("--tls-cert", &p)?,
                        None => {
                            return Err(Failure::BadInput(
                                "give --org, or a TLS certificate (--tls-cert or the client profile) whose O names your organisation".to_string(),
                            ));
                        }
                    },
                };
                let mut conn = connect(&node).await?;
                let mut ids = Vec::new();
                loop {
                    let r = conn
                        .exchange
                        .list_messages(pb::ListMessagesRequest {
                            organisation: org.clone(),
                            sent,
                            from: ids.len() as u64,
                            limit: PAGE,
                        })
                        .await
                        .map_err(|s| refusal("ListMessages", s))?
                        .into_inner();
                    let n = r.message_ids.len();
                    ids.extend(r.message_ids);
                    if n < PAGE as usize {
                        break;
                    }
                }
                let mut out = Vec::new();
                for raw in &ids {
                    let id = Digest(<[u8; 32]>::try_from(raw.as_slice()).map_err(|_| {
                        unreadable("message ID", format!("{} bytes", raw.len()))
                    })?);
                    let (_, m, acks) = message(&mut conn.exchange, &id).await?;
                    out.push((m, acks));
                }
                if json {
                    return print_json(&serde_json::Value::Array(
                        out.iter()
                            .map(|(m, acks)| {
                                serde_json::json!({
                                    "id": m.id.to_string(),
                                    "from": format!("{}/{}", m.organisation, m.common_name),
                                    "to": m.recipients,
                                    "subject": m.subject,
                                    "content_type": m.content_type,
                                    "plaintext_len": m.payload.plaintext_len,
                                    "plaintext_sm3": m.payload.plaintext_sm3.to_string(),
                                    "payload_sm3": m.payload.payload_sm3.to_string(),
                                    "custodian": m.payload.custodian,
                                    "height": m.height.0,
                                    "time": utc(m.timestamp_ms),
                                    "acknowledged_by": acks.iter().map(|a| a.organisation.clone()).collect::<Vec<_>>(),
                                })
                            })
                            .collect(),
                    ));
                }
                for (m, acks) in &out {
                    let acked: Vec<&str> = acks.iter().map(|a| a.organisation.as_str()).collect();
                    println!(
                        "{}\tfrom {}/{}\tto {}\t{:?}\t{} bytes\theight {}\tacknowledged by {}",
                        m.id,
                        m.organisation,
                        m.common_name,
                        m.recipients.join(","),
                        m.subject,
                        m.payload.plaintext_len,
                        m.height.0,
                        if acked.is_empty() {
                            "nobody yet".to_string()
                        } else {
                            acked.join(",")
                        }
                    );
                }
                Ok(())
            }
            DataCommand::Ack {
                message_id,
                sender,
                node,
            } => {
                let mid = crate::cli_tx::parse_digest("MESSAGE_ID", &message_id)?;
                let mut conn = connect(&node).await?;
                let (tx, _, height) = send(
                    &mut conn.chain,
                    &sender,
                    exchange_call("ack", vec![mid.0.to_vec()]),
                )
                .await?;
                println!("message {mid}: acknowledged in tx {tx} at height {height}");
                Ok(())
            }
        }
    })
}

fn check_address(address: &str) -> Result<(), Failure> {
    let ok = address.len() <= data::MAX_ADDRESS_LEN
        && address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
    if !ok {
        return Err(Failure::BadInput(format!(
            "--address {address:?}: expected HOST:PORT (at most {} bytes)",
            data::MAX_ADDRESS_LEN
        )));
    }
    Ok(())
}

async fn decide(
    method: &str,
    done: &str,
    request_id: &str,
    reason: &str,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    let rid = crate::cli_tx::parse_digest("REQUEST_ID", request_id)?;
    check_len("--reason", reason, data::MAX_PURPOSE_LEN)?;
    let mut conn = connect(node).await?;
    let call = exchange_call(method, vec![rid.0.to_vec(), reason.as_bytes().to_vec()]);
    let (tx, _, height) = send(&mut conn.chain, sender, call).await?;
    println!("request {rid}: {done}, tx {tx} at height {height}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::io::Read;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        data: DataCommand,
    }

    pub(super) fn soft_key() -> crypto_sm::sm2::PrivateKey {
        crypto_sm::sm2::PrivateKey::generate(&SystemRandom).unwrap()
    }

    /// A soft decryption key for tests.
    pub(super) struct Soft(pub(super) crypto_sm::sm2::PrivateKey);

    impl crypto::Decrypter for Soft {
        fn public_key(&self) -> crypto::PublicKey {
            self.0.public_key()
        }

        fn decrypt(
            &self,
            c: &[u8],
            f: CipherFormat,
        ) -> Result<crypto::Secret, crypto::CryptoError> {
            crypto_sm::sm2::decrypt(&self.0, c, f)
        }
    }

    /// A sealed payload of `plain` in a file, its envelope to `holder`, what the catalogue
    /// would record.
    pub(super) fn fixture(plain: &[u8], holder: &Soft) -> (File, Vec<u8>, Expected) {
        let key = DataKey::fresh().unwrap();
        let mut file = anonymous_temp().unwrap();
        let s = payload::seal(
            &key.secret().unwrap(),
            &nonce_prefix().unwrap(),
            &mut &plain[..],
            &mut file,
        )
        .unwrap();
        let env = crypto_sm::sm2::encrypt(
            &crypto::Decrypter::public_key(holder),
            &key.0[..],
            CipherFormat::Der,
            &SystemRandom,
        )
        .unwrap();
        let exp = Expected {
            record: b"record".to_vec(),
            payload_len: s.payload_len,
            payload_sm3: s.payload_sm3,
            plaintext_len: s.plaintext_len,
            plaintext_sm3: s.plaintext_sm3,
            sealed_metadata: Vec::new(),
            version: 1,
        };
        (file, env, exp)
    }

    pub(super) fn read_all(f: &mut File) -> Vec<u8> {
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    pub(super) fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// 2.5 MiB: three chunks, so a flipped byte lands in a middle one too.
    pub(super) fn plaintext() -> Vec<u8> {
        (0..(5usize << 19)).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_sealed_temporary_has_no_name_and_seals_what_opens() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.bin");
        std::fs::write(&src, plaintext()).unwrap();
        let mut sealed = seal_file(&src).unwrap();
        assert_eq!(entries(dir.path()), ["in.bin"]);
        assert_eq!(
            Some(sealed.summary.payload_len),
            payload::sealed_len(sealed.summary.plaintext_len)
        );
        let bytes = read_all(&mut sealed.file);
        assert_eq!(bytes.len() as u64, sealed.summary.payload_len);
        let mut plain = Vec::new();
        payload::open(&sealed.key.secret().unwrap(), &mut &bytes[..], &mut plain).unwrap();
        assert_eq!(plain, plaintext());
    }

    #[test]
    fn argument_errors_are_exit_2_and_name_what_was_wrong() {
        // Clap's own refusals (a missing or conflicting flag) exit 2.
        for args in [
            vec!["x", "grant", "00"],
            vec!["x", "grant", "00", "--blocks", "1", "--expiry", "2"],
            vec!["x", "publish", "f", "--name", "n", "--class", "secret"],
            vec!["x", "fetch", "o/n", "--message", "00", "--enc-key", "k"],
            vec!["x", "log"],
        ] {
            let e = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        // Ours.
        let bad = |r: Result<(), Failure>, needle: &str| match r {
            Err(Failure::BadInput(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected exit 2 naming {needle}, got {other:?}"),
        };
        bad(split_dataset("no-slash").map(|_| ()), "ORGANISATION/NAME");
        bad(
            split_dataset("Org/bad name").map(|_| ()),
            "ORGANISATION/NAME",
        );
        bad(check_address("nohost"), "--address");
        bad(check_address("h:0"), "--address");
        bad(check_content_type("a b"), "--content-type");
        bad(
            check_len("--title", &"x".repeat(257), data::MAX_TITLE_LEN),
            "--title",
        );
        bad(
            crate::cli_tx::parse_digest("REQUEST_ID", "abcd").map(|_| ()),
            "REQUEST_ID",
        );
        assert!(split_dataset("Agency 02/licences.v1").is_ok());
        assert!(check_address("127.0.0.1:7050").is_ok());
    }

    #[test]
    fn publish_refuses_options_a_registered_dataset_would_ignore() {
        let mut d = Dataset {
            organisation: "Org".into(),
            name: "licences".into(),
            class: SharingClass::Conditional,
            content_type: "text/csv".into(),
            title: "Licences".into(),
            description: "all of them".into(),
            confidential: false,
            creator: Digest([3; 32]),
            height: types::Height(1),
            versions: 1,
            requests: 0,
        };
        let bad = |r: Result<(), Failure>, says: &str| match r {
            Err(Failure::BadInput(m)) => {
                assert!(m.contains(says), "{says:?} not in {m}");
                assert!(m.contains("Org/licences"), "{m}");
            }
            other => panic!("expected bad input naming {says}, got {other:?}"),
        };
        // What was registered, or nothing said: accepted.
        kept_as_registered(&d, None, None, "", "", false).unwrap();
        kept_as_registered(
            &d,
            Some(ClassArg::Conditional),
            Some("text/csv"),
            "Licences",
            "all of them",
            false,
        )
        .unwrap();
        bad(
            kept_as_registered(&d, Some(ClassArg::Unconditional), None, "", "", false),
            "--class",
        );
        bad(
            kept_as_registered(&d, None, Some("text/plain"), "", "", false),
            "--content-type",
        );
        bad(
            kept_as_registered(&d, None, None, "Other", "", false),
            "--title",
        );
        bad(
            kept_as_registered(&d, None, None, "", "other", false),
            "--description",
        );
        bad(
            kept_as_registered(&d, None, None, "", "", true),
            "--confidential",
        );
        // A confidential dataset's title and description travel sealed in each version.
        d.confidential = true;
        d.title.clear();
        d.description.clear();
        kept_as_registered(&d, None, None, "New title", "new text", true).unwrap();
        kept_as_registered(&d, None, None, "New title", "", false).unwrap();
    }

    #[test]
    fn utc_renders_block_timestamps() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_767_225_599_999), "2025-12-31T23:59:59Z");
    }

    /// A custodian node on plain HTTP/2 (a public-listener address, so no TLS is needed here):
    /// it serves one version of `Org/licences`, altered as `fault` says, and takes uploads.
    mod custodian {
        use super::*;
        use api::v1::exchange_server::{Exchange, ExchangeServer};
        use std::sync::Mutex;
        use tonic::{Request, Response, Status};

        #[derive(Clone, Copy, PartialEq, Eq)]
        pub(super) enum Fault {
            None,
            FlipPayloadByte,
            AnotherRecord,
            NoKey,
            Refuse,
            /// Accepts the call and never answers it (no response headers, no message).
            Hang,
            /// Serves the fetch, but its record is not in the fetch log.
            Unrecorded,
            /// Serves the fetch with the envelope of an earlier fetch, whose record (the one
            /// the key part names) was in the log before this fetch was asked.
            Replayed,
            /// Serves the fetch; the fetch log is never answered (the call hangs).
            LogHangs,
        }

        pub(super) struct Mock {
            pub dataset: Vec<u8>,
            pub version: Vec<u8>,
            pub endpoint: Vec<u8>,
            pub payload: Vec<u8>,
            pub envelope: Vec<u8>,
            pub fault: Fault,
            /// The requester the fetch record names (SM3 of a TLS certificate).
            pub requester: Digest,
            /// What Upload received: message data lengths, SM3 and length announced, SM3 of data.
            pub uploads: Mutex<Vec<Upload>>,
            /// Fetch calls received (the custodian records each one on the chain).
            pub fetches: std::sync::atomic::AtomicUsize,
        }

        /// One upload as received: message data lengths, SM3 and length announced, SM3 of
        /// the data.
        pub(super) type Upload = (Vec<usize>, Vec<u8>, u64, Digest);

        type Out<T> = Result<Response<T>, Status>;

        fn unimplemented<T>() -> Out<T> {
            Err(Status::unimplemented("not in this mock"))
        }

        #[tonic::async_trait]
        impl Exchange for Mock {
            async fn upload(
                &self,
                r: Request<tonic::Streaming<pb::UploadChunk>>,
            ) -> Out<pb::UploadResponse> {
                let mut s = r.into_inner();
                let (mut sizes, mut sm3, mut len, mut h) =
                    (Vec::new(), Vec::new(), 0, crypto_sm::sm3::Sm3Context::new());
                while let Some(c) = s.message().await? {
                    if sizes.is_empty() {
                        sm3 = c.payload_sm3.clone();
                        len = c.payload_len;
                    }
                    sizes.push(c.data.len());
                    h.update(&c.data);
                }
                let got = h.finish();
                self.uploads
                    .lock()
                    .unwrap()
                    .push((sizes, sm3.clone(), len, got));
                Ok(Response::new(pb::UploadResponse {
                    payload_sm3: got.0.to_vec(),
                    payload_len: len,
                    custodian: "node0".into(),
                }))
            }

            type FetchStream =
                tokio_stream::Iter<std::vec::IntoIter<Result<pb::FetchChunk, Status>>>;

            async fn fetch(&self, r: Request<pb::FetchRequest>) -> Out<Self::FetchStream> {
                use pb::fetch_chunk::Part;
                let r = r.into_inner();
                assert_eq!((r.dataset.as_str(), r.version), ("Org/licences", 1));
                self.fetches
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if self.fault == Fault::Hang {
                    std::future::pending::<()>().await;
                }
                if self.fault == Fault::Refuse {
                    let mut meta = tonic::metadata::MetadataMap::new();
                    meta.insert(api::CODE_METADATA_KEY, "EXCHANGE_NO_GRANT".parse().unwrap());
                    return Err(Status::with_metadata(
                        tonic::Code::PermissionDenied,
                        "no live grant for Org/licences",
                        meta,
                    ));
                }
                let mut payload = self.payload.clone();
                if self.fault == Fault::FlipPayloadByte {
                    let at = payload.len() / 2;
                    payload[at] ^= 0x80;
                }
                let record = if self.fault == Fault::AnotherRecord {
                    self.dataset.clone()
                } else {
                    self.version.clone()
                };
                let mut parts = vec![Ok(pb::FetchChunk {
                    part: Some(Part::Header(pb::FetchHeader {
                        record,
                        version: 1,
                        request_id: vec![1; 32],
                        record_tx_id: vec![2; 32],
                    })),
                })];
                parts.extend(payload.chunks(1 << 20).map(|c| {
                    Ok(pb::FetchChunk {
                        part: Some(Part::Data(c.to_vec())),
                    })
                }));
                if self.fault != Fault::NoKey {
                    parts.push(Ok(pb::FetchChunk {
                        part: Some(Part::Key(pb::FetchKey {
                            envelope: self.envelope.clone(),
                            recorded_at: 9,
                        })),
                    }));
                }
                Ok(Response::new(tokio_stream::iter(parts)))
            }

            async fn get_dataset(
                &self,
                r: Request<pb::GetDatasetRequest>,
            ) -> Out<pb::DatasetResponse> {
                if r.into_inner().dataset != "Org/licences" {
                    let mut meta = tonic::metadata::MetadataMap::new();
                    meta.insert(
                        api::CODE_METADATA_KEY,
                        "EXCHANGE_DATASET_UNKNOWN".parse().unwrap(),
                    );
                    return Err(Status::with_metadata(
                        tonic::Code::NotFound,
                        "no such dataset",
                        meta,
                    ));
                }
                Ok(Response::new(pb::DatasetResponse {
                    dataset: self.dataset.clone(),
                    versions: vec![self.version.clone()],
                    requests: vec![],
                    height: 3,
                }))
            }

            async fn list_datasets(
                &self,
                _: Request<pb::ListDatasetsRequest>,
            ) -> Out<pb::ListDatasetsResponse> {
                unimplemented()
            }

            async fn get_access_request(
                &self,
                _: Request<pb::GetAccessRequestRequest>,
            ) -> Out<pb::RecordResponse> {
                unimplemented()
            }

            /// The log holds the record of the fetch served with `envelope` at height 9
            /// under request 0101…01 (what `fetch` names), unless the fault is Unrecorded.
            async fn get_fetch_log(
                &self,
                r: Request<pb::GetFetchLogRequest>,
            ) -> Out<pb::FetchLogResponse> {
                let r = r.into_inner();
                assert_eq!(r.dataset, "Org/licences");
                if self.fault == Fault::LogHangs {
                    std::future::pending::<()>().await;
                }
                let record = FetchRecord {
                    seq: 0,
                    object: FetchObject::Dataset(r.dataset.clone()),
                    version: 1,
                    requester: self.requester,
                    request: Digest([1; 32]),
                    outcome: 0,
                    envelope_sm3: crypto_sm::sm3::sm3(&self.envelope).0.to_vec(),
                    node: Digest([6; 32]),
                    height: types::Height(9),
                    timestamp_ms: 1,
                };
                // The record is in the log once the fetch was asked (a replayed one was
                // there before).
                let asked = self.fetches.load(std::sync::atomic::Ordering::SeqCst) > 0;
                let log = if self.fault == Fault::Unrecorded
                    || (!asked && self.fault != Fault::Replayed)
                {
                    Vec::new()
                } else {
                    vec![record.encode()]
                };
                let total = log.len() as u64;
                let from = r.from.min(total) as usize;
                let end = (from + r.limit as usize).min(log.len());
                Ok(Response::new(pb::FetchLogResponse {
                    records: log[from..end].to_vec(),
                    total,
                    height: 9,
                }))
            }

            async fn get_message(
                &self,
                _: Request<pb::GetMessageRequest>,
            ) -> Out<pb::MessageResponse> {
                unimplemented()
            }

            async fn list_messages(
                &self,
                _: Request<pb::ListMessagesRequest>,
            ) -> Out<pb::ListMessagesResponse> {
                unimplemented()
            }

            async fn get_endpoint(
                &self,
                r: Request<pb::GetEndpointRequest>,
            ) -> Out<pb::RecordResponse> {
                let r = r.into_inner();
                assert_eq!((r.organisation.as_str(), r.node.as_str()), ("Org", "node0"));
                Ok(Response::new(pb::RecordResponse {
                    record: self.endpoint.clone(),
                    height: 3,
                }))
            }

            async fn get_escrow(
                &self,
                _: Request<pb::GetEscrowRequest>,
            ) -> Out<pb::RecordResponse> {
                unimplemented()
            }
        }

        /// Serves `mock` on the loopback `port`; returns its `http://` address.
        pub(super) async fn serve(mock: std::sync::Arc<Mock>, port: u16) -> String {
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(ExchangeServer::from_arc(mock))
                    .serve(addr),
            );
            for _ in 0..200 {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            format!("http://{addr}")
        }
    }

    /// A custodian serving `plain` sealed under a fresh key wrapped to a key file written in
    /// `dir` (`enc.key.pem`, passphrase in `pass`), with `fault`.
    fn custodian_of(
        dir: &Path,
        plain: &[u8],
        fault: custodian::Fault,
        address: &str,
    ) -> std::sync::Arc<custodian::Mock> {
        let holder = soft_key();
        let pem = crypto_sm::keys::encode_encrypted_pkcs8_pem(
            &holder,
            b"pw",
            crypto_sm::keys::MIN_ITERATIONS,
            &SystemRandom,
        )
        .unwrap();
        std::fs::write(dir.join("enc.key.pem"), pem).unwrap();
        std::fs::write(dir.join("pass"), "pw\n").unwrap();
        let (mut file, envelope, exp) = fixture(plain, &Soft(holder));
        let payload = read_all(&mut file);
        let zero = Envelope {
            recipient: Digest([0; 32]),
            cipher: Vec::new(),
        };
        let version = Version {
            number: 1,
            payload: data::Payload {
                plaintext_sm3: exp.plaintext_sm3,
                payload_sm3: exp.payload_sm3,
                plaintext_len: exp.plaintext_len,
                payload_len: exp.payload_len,
                custodian: "node0".into(),
                custodian_envelope: zero,
                escrow: Vec::new(),
            },
            sealed_metadata: Vec::new(),
            publisher: Digest([3; 32]),
            height: types::Height(2),
            timestamp_ms: 1,
        };
        let dataset = Dataset {
            organisation: "Org".into(),
            name: "licences".into(),
            class: SharingClass::Conditional,
            content_type: "text/csv".into(),
            title: "t".into(),
            description: String::new(),
            confidential: false,
            creator: Digest([3; 32]),
            height: types::Height(1),
            versions: 1,
            requests: 0,
        };
        let endpoint = Endpoint {
            organisation: "Org".into(),
            node: "node0".into(),
            address: address.to_string(),
            enc_cert: Vec::new(),
            height: types::Height(1),
        };
        std::sync::Arc::new(custodian::Mock {
            dataset: dataset.encode(),
            version: version.encode(),
            endpoint: endpoint.encode(),
            payload,
            envelope,
            fault,
            requester: Digest([5; 32]),
            uploads: std::sync::Mutex::new(Vec::new()),
            fetches: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn fetch_cli(dir: &Path, node: &str, out: &Path) -> FetchArgs {
        let cli = Cli::try_parse_from([
            "x",
            "fetch",
            "--wait",
            "3",
            "Org/licences",
            "--enc-key",
            dir.join("enc.key.pem").to_str().unwrap(),
            "--enc-pass-file",
            dir.join("pass").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--node",
            node,
        ])
        .unwrap();
        match cli.data {
            DataCommand::Fetch(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    /// Runs `data fetch` (as [`fetch_cli`] builds it for `out`, then changed by `tweak`)
    /// against a mock custodian serving `plain` with `fault` (then changed by `adjust`), on a
    /// runtime of its own; a fetch still running after a minute fails the test.
    fn fetch_from_mock(
        dir: &Path,
        out: &Path,
        plain: &[u8],
        fault: custodian::Fault,
        adjust: impl FnOnce(&mut custodian::Mock),
        tweak: impl FnOnce(&mut FetchArgs),
    ) -> (std::sync::Arc<custodian::Mock>, Result<(), Failure>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // The endpoint names the custodian's own address: fetch connects there.
            let port = crate::devchain::free_port().unwrap();
            let addr = format!("http://127.0.0.1:{port}");
            let mut mock =
                std::sync::Arc::into_inner(custodian_of(dir, plain, fault, &addr)).unwrap();
            adjust(&mut mock);
            let mock = std::sync::Arc::new(mock);
            custodian::serve(mock.clone(), port).await;
            let mut args = fetch_cli(dir, &addr, out);
            tweak(&mut args);
            let ran = tokio::time::timeout(std::time::Duration::from_secs(60), fetch(args)).await;
            (
                mock,
                ran.unwrap_or_else(|_| panic!("data fetch still runs after a minute")),
            )
        })
    }

    /// `data fetch` against a custodian over gRPC: the catalogue read, the endpoint's address,
    /// the stream; each fault leaves nothing at --out and exits 1 with its code.
    #[test]
    fn fetch_over_grpc_writes_only_a_verified_plaintext() {
        let plain = plaintext();
        for (fault, code) in [
            (custodian::Fault::None, ""),
            (custodian::Fault::FlipPayloadByte, "EXCHANGE_VERIFY_FAILED"),
            (custodian::Fault::AnotherRecord, "EXCHANGE_VERIFY_FAILED"),
            (custodian::Fault::NoKey, "EXCHANGE_VERIFY_FAILED"),
            (custodian::Fault::Refuse, "EXCHANGE_NO_GRANT"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out").join("plain.csv");
            std::fs::create_dir(dir.path().join("out")).unwrap();
            let (_, result) = fetch_from_mock(dir.path(), &out, &plain, fault, |_| {}, |_| {});
            match (code, result) {
                ("", Ok(())) => assert_eq!(std::fs::read(&out).unwrap(), plain),
                ("", Err(f)) => panic!("a faithful custodian: {}", f.message()),
                (code, Err(Failure::NotVerified(m))) => assert!(m.contains(code), "{m}"),
                (code, other) => panic!("{code}: expected exit 1, got {other:?}"),
            }
            if !code.is_empty() {
                assert!(entries(&dir.path().join("out")).is_empty(), "{code}");
            }
        }
    }

    /// review14c finding 1: the idle limit started only once the custodian answered the call;
    /// a custodian that accepts the TLS connection and the Fetch call but never sends its
    /// response headers hung `data fetch` for ever. Now `--wait` bounds the call (3 s here).
    #[test]
    fn review14c_a_custodian_that_never_answers_the_call_ends_the_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.csv");
        let hang = custodian::Fault::Hang;
        match fetch_from_mock(dir.path(), &out, b"records", hang, |_| {}, |_| {}).1 {
            Err(Failure::Unreachable(m)) => assert!(m.contains("did not answer"), "{m}"),
            other => panic!("expected exit 3, got {other:?}"),
        }
    }

    /// review14c finding 2: --out was checked only after the Fetch call reached the custodian
    /// (which signs and submits its fetch record before it answers), so an --out that cannot
    /// be written still cost a served, recorded fetch and a released key.
    #[test]
    fn review14c_an_unwritable_out_is_refused_before_the_custodian_is_called() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("missing-dir").join("plain.csv");
        let none = custodian::Fault::None;
        let (mock, result) = fetch_from_mock(dir.path(), &out, b"records", none, |_| {}, |_| {});
        match result {
            Err(Failure::BadInput(m)) => assert!(m.contains("--out"), "{m}"),
            other => panic!("expected bad input naming --out, got {other:?}"),
        }
        assert_eq!(
            mock.fetches.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the custodian was asked to serve (and so recorded) a fetch whose --out cannot be written"
        );
    }

    /// review14c finding 3: "fetch logged by tx T at height H" was the custodian's word. Now
    /// the record must be in the chain's fetch log; here the log (the mock's, standing for the
    /// chain's) lacks it, at the height it claims.
    #[test]
    fn review14c_a_fetch_record_the_chain_does_not_hold_is_not_reported_as_logged() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.csv");
        let fault = custodian::Fault::Unrecorded;
        match fetch_from_mock(dir.path(), &out, b"records", fault, |_| {}, |_| {}).1 {
            Err(Failure::NotVerified(m)) => {
                assert!(
                    m.contains("the chain's fetch log gained since the fetch was asked"),
                    "{m}"
                )
            }
            other => panic!(
                "a fetch whose claimed record is not on the chain must fail (exit 1): {other:?}"
            ),
        }
        assert!(!out.exists(), "nothing is released without the trace");
    }

    /// review15 finding 1: any served record naming the envelope's SM3 at the claimed height
    /// passed, however old: a custodian resending an earlier fetch's envelope served again
    /// unrecorded. Now only a record the log gained after the fetch was asked counts.
    #[test]
    fn review15_a_record_logged_before_the_fetch_was_asked_is_not_its_trace() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.csv");
        let fault = custodian::Fault::Replayed;
        match fetch_from_mock(dir.path(), &out, b"records", fault, |_| {}, |_| {}).1 {
            Err(Failure::NotVerified(_)) => {}
            other => panic!(
                "a fetch whose only trace is a record logged before it was asked must fail (exit 1): {other:?}"
            ),
        }
        assert!(!out.exists(), "nothing is released without a fresh trace");
    }

    /// review15 finding 3: the fetch-log reads had no time limit: a connected node that
    /// accepts the read and never answers hung `data fetch`. Now `--wait` bounds each read.
    #[test]
    fn review15_a_fetch_log_read_that_never_answers_ends_the_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.csv");
        let fault = custodian::Fault::LogHangs;
        match fetch_from_mock(dir.path(), &out, b"records", fault, |_| {}, |_| {}).1 {
            Err(Failure::Unreachable(_)) => {}
            other => panic!("expected exit 3, got {other:?}"),
        }
        assert!(!out.exists());
    }

    /// review16 finding 3: the requester check read `--tls-cert` as a file of exactly one
    /// certificate while the TLS identity reads it as a chain, so a user whose certificate
    /// file carries its chain was refused (exit 2) after being served and recorded. And
    /// (finding 5) a record naming another requester is not this fetch's trace.
    #[test]
    fn review16_a_tls_certificate_file_with_its_chain_does_not_refuse_the_fetch() {
        use crypto::Signer;
        let provider = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(SystemRandom));
        let root_key = provider.generate().unwrap();
        let key = provider.generate().unwrap();
        let validity = pki::Validity {
            not_before: pki::UnixTime(1_700_000_000),
            not_after: pki::UnixTime(4_000_000_000),
        };
        let root = pki::issue_root(
            "Org Root",
            "Org",
            pki::Serial::random(&SystemRandom).unwrap(),
            validity,
            &root_key,
        )
        .unwrap();
        let leaf = pki::issue(
            &root,
            &root_key,
            &pki::IssueRequest {
                role: pki::Role::User,
                common_name: "alice",
                organisation: "Org",
                public_key: &key.public_key(),
                serial: pki::Serial::random(&SystemRandom).unwrap(),
                validity,
            },
        )
        .unwrap();
        // The record names `requester`; the fetch runs with `pem` as --tls-cert.
        let run = |pem: String, requester: Digest| {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("plain.csv");
            let cert = dir.path().join("cert.pem");
            std::fs::write(&cert, pem).unwrap();
            let (_, result) = fetch_from_mock(
                dir.path(),
                &out,
                b"records",
                custodian::Fault::None,
                |m| m.requester = requester,
                |a| a.node.tls.tls_cert = Some(cert.clone()),
            );
            (result, std::fs::read(&out).ok())
        };
        // The leaf alone, and the leaf with its root (what TLS takes): the record names the leaf.
        for pem in [leaf.to_pem(), format!("{}{}", leaf.to_pem(), root.to_pem())] {
            match run(pem, leaf.fingerprint()) {
                (Ok(()), Some(got)) => assert_eq!(got, b"records"),
                (other, _) => panic!("{other:?}"),
            }
        }
        match run(leaf.to_pem(), root.fingerprint()) {
            (Err(Failure::NotVerified(m)), None) => assert!(m.contains("requester"), "{m}"),
            other => panic!("a trace naming another requester must fail (exit 1): {other:?}"),
        }
    }

    /// Upload streams the sealed temporary in messages of at most 1 MiB, the first announcing
    /// the payload's SM3 and length.
    #[test]
    fn upload_streams_chunks_of_at_most_one_mebibyte() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.bin");
        std::fs::write(&src, plaintext()).unwrap();
        let sealed = seal_file(&src).unwrap();
        let mock = custodian_of(dir.path(), b"", custodian::Fault::None, "");
        let custodian = rt.block_on(async {
            let addr = custodian::serve(mock.clone(), crate::devchain::free_port().unwrap()).await;
            let node = NodeArgs::at(&addr, crate::client::TlsArgs::default());
            let (channel, _) = crate::client::channel_with_info(&node).await.unwrap();
            upload(&mut exchange_client(channel), &sealed).await
        });
        assert_eq!(custodian.unwrap(), "node0");
        let uploads = mock.uploads.lock().unwrap();
        let (sizes, sm3, len, got) = &uploads[0];
        assert_eq!(
            sizes,
            &[
                1 << 20,
                1 << 20,
                (sealed.summary.payload_len - (2 << 20)) as usize
            ]
        );
        assert_eq!(sm3, &sealed.summary.payload_sm3.0.to_vec());
        assert_eq!(*len, sealed.summary.payload_len);
        assert_eq!(*got, sealed.summary.payload_sm3);
    }
}
