//! `gmchain tx …`, `gmchain query …` and `gmchain receipt verify`: the client side of the
//! node's gRPC API, and the offline receipt check.

use std::path::PathBuf;

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use clap::Subcommand;
use crypto::Digest;
use gmchain_sdk::{AttestationKey, SdkError};
use types::{Call, Receipt, Status};

use crate::cli_crypto::KeyArgs;
use crate::io::{read_cert, read_crl, read_named, write_output};
use crate::{CmdResult, Failure};

pub(crate) use crate::client::{NodeArgs, connect};

/// The sender: key, certificate, user ID.
#[derive(Debug, clap::Args)]
pub(crate) struct SenderArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The sender's certificate (PEM or DER), issued by an organisation's CA.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Send the certificate's SM3 id instead of the certificate (it must be registered on
    /// the chain, which happens with the sender's first successful transaction).
    #[arg(long)]
    registered: bool,
    /// Blocks from the tip until the transaction expires (at most the chain's window).
    #[arg(long)]
    expiry_blocks: Option<u64>,
}

impl SenderArgs {
    /// The sender's certificate file (`--cert`).
    pub(crate) fn cert_path(&self) -> &std::path::Path {
        &self.cert
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Anchors FILE's SM3 digest (存证), waits for the commit and writes the offline receipt.
    Attest {
        /// The document; only its SM3 digest leaves this machine.
        file: PathBuf,
        /// The attestation type (letters, digits, . _ -).
        #[arg(long, default_value = "document")]
        kind: String,
        /// Free-text metadata (UTF-8, at most 4096 bytes).
        #[arg(long, default_value = "")]
        metadata: String,
        /// An encrypted pointer to the document (opaque bytes from this file).
        #[arg(long, value_name = "FILE")]
        pointer_file: Option<PathBuf>,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
        /// Where to write the receipt (JSON); stdout if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// CA actions onto the chain.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

/// An organisation's CA certificate and its current CRL: the arguments of
/// `identity.register_org` and `identity.replace_ca`.
#[derive(Debug, clap::Args)]
pub(crate) struct OrgCaArgs {
    /// The organisation's CA certificate (its O names the organisation).
    #[arg(long, value_name = "FILE")]
    ca_cert: PathBuf,
    /// The CA's current CRL.
    #[arg(long, value_name = "FILE")]
    crl: PathBuf,
}

impl OrgCaArgs {
    /// Returns the call's arguments: [CA certificate DER, CRL DER].
    fn call_args(&self) -> Result<Vec<Vec<u8>>, Failure> {
        Ok(vec![
            read_cert("--ca-cert", &self.ca_cert)?.der().to_vec(),
            read_crl("--crl", &self.crl)?.der().to_vec(),
        ])
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Registers a new organisation with its CA certificate and CRL; sent by that
    /// organisation's admin. Its CA must be issued by a founding CA whose genesis entry
    /// sponsors the organisation's name.
    RegisterOrg {
        #[command(flatten)]
        ca: OrgCaArgs,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Records a new CRL of the sender's organisation CA: its revoked signers are refused
    /// from the next block on.
    Revoke {
        /// The CRL (from `gmchain ca crl`).
        #[arg(long, value_name = "FILE")]
        crl: PathBuf,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Suspends a certificate of the sender's organisation (it cannot send transactions).
    Suspend {
        /// The certificate to suspend.
        #[arg(long, value_name = "FILE")]
        target: PathBuf,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Lifts a suspension.
    Resume {
        /// The certificate to resume.
        #[arg(long, value_name = "FILE")]
        target: PathBuf,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Deregisters an organisation that the sender's organisation sponsors (sent by one of
    /// its admins): from the next block its members are refused (TX_ORG_REMOVED); receipts of
    /// its earlier transactions still verify. Founding organisations change only by governance.
    DeregisterOrg {
        /// The organisation's name.
        #[arg(long, value_name = "NAME")]
        org: String,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Replaces the CA of an organisation that the sender's organisation sponsors (and
    /// re-admits it if it was deregistered). The new CA must be issued by the sender's
    /// organisation's CA. No overlap: from the next block, certificates under the old CA are
    /// refused (TX_CA_REPLACED).
    ReplaceCa {
        #[command(flatten)]
        ca: OrgCaArgs,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueryCommand {
    /// Chain id, height, tip, pool.
    Status {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A committed transaction by id (hex).
    Tx {
        id: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A block by height (the tip if absent).
    Block {
        height: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// An attestation by document (--file), digest or id.
    Attestation {
        /// The document to look up by its SM3 digest.
        #[arg(long, value_name = "FILE", group = "key")]
        file: Option<PathBuf>,
        /// The digest, hex.
        #[arg(long, group = "key")]
        digest: Option<String>,
        /// The attestation id (the anchoring transaction id), hex.
        #[arg(long, group = "key")]
        id: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Attestations of an owner ("<organisation>/<common name>").
    Attestations {
        #[arg(long)]
        owner: String,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The validator set of a height (the next height if absent): names, certificates,
    /// power, expiry; the epochs since genesis and the decided change not yet in effect.
    Validators {
        #[arg(long, value_name = "H")]
        height: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Contract events of a range of blocks (at most 10000), by contract, name and topic
    /// (JSON); with --follow, then each new one as its block commits (a JSON object a line).
    Events(crate::cli_contract::EventsArgs),
    /// The offline receipt of a committed transaction.
    Receipt {
        id: String,
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReceiptCommand {
    /// Verifies RECEIPT offline against the chain's genesis file, and FILE's digest if given.
    /// Exit 1 names the part that does not verify.
    Verify {
        /// The receipt (JSON, from `gmchain tx attest` or `gmchain query receipt`).
        receipt: PathBuf,
        /// The document the receipt should anchor.
        file: Option<PathBuf>,
        /// The chain's genesis file (chain id, validators, organisation CAs).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))
}

/// A gRPC status as a CLI failure: a status naming a registry code takes the code's class
/// (refusals are bad input, 2; a node that cannot read its state 3); otherwise an unreachable
/// node is 3 and anything else 2.
pub(crate) fn status_failure(what: &str, s: tonic::Status) -> Failure {
    // A node's text, as one printable line (a hostile peer's escapes shown, not obeyed).
    let msg = format!("{what}: {}", crate::one_line(s.message()));
    Failure::of_class(gmchain_sdk::status_class(&s), msg)
}

/// An SDK failure as a CLI failure: a node's answer as [`status_failure`], anything else with
/// its message and its code's class.
pub(crate) fn sdk_failure(e: SdkError) -> Failure {
    match e {
        SdkError::Node { what, status, .. } => status_failure(what, *status),
        e => Failure::coded(&e, e.to_string()),
    }
}

/// Builds, signs and submits a call; waits for the commit; returns the transaction id and
/// its receipt. A failed execution is exit 1 with its code.
pub(crate) async fn send(
    client: &mut ChainClient<tonic::transport::Channel>,
    sender: &SenderArgs,
    call: Call,
) -> Result<(types::TxId, Receipt, u64), Failure> {
    send_fuel(client, sender, call, None).await
}

/// As [`send`], with a fuel limit (`Some`: a version 2 transaction).
pub(crate) async fn send_fuel(
    client: &mut ChainClient<tonic::transport::Channel>,
    sender: &SenderArgs,
    call: Call,
    fuel_limit: Option<u64>,
) -> Result<(types::TxId, Receipt, u64), Failure> {
    let c = submit(client, sender, call, fuel_limit).await?;
    if let Status::Failed { code, message } = &c.receipt.status {
        return Err(Failure::NotVerified(format!(
            "transaction {} was committed at height {} but failed: {} ({code}): {message}",
            c.id,
            c.height,
            failure_name(*code)
        )));
    }
    Ok((c.id, c.receipt, c.height))
}

/// The registry name of a receipt's failure code.
pub(crate) fn failure_name(code: u32) -> &'static str {
    codes::by_number(code).map_or("an unknown code", |c| c.name)
}

/// A committed transaction: its id, receipt, block and position.
pub(crate) use gmchain_sdk::Committed;

/// Builds, signs and submits a call with `fuel_limit` (`Some`: a version 2 transaction);
/// waits for the commit; returns it whether it succeeded or failed.
pub(crate) async fn submit(
    client: &mut ChainClient<tonic::transport::Channel>,
    sender: &SenderArgs,
    call: Call,
    fuel_limit: Option<u64>,
) -> Result<Committed, Failure> {
    let mut sdk = gmchain_sdk::Client::from_grpc(client.clone());
    let builder = sdk
        .builder()
        .await
        .map_err(|e| match e {
            SdkError::ChainId { .. } => Failure::BadInput(e.to_string()),
            e => sdk_failure(e),
        })?
        .expiry_blocks(sender.expiry_blocks)
        .fuel_limit(fuel_limit);
    let cert = read_cert("--cert", &sender.cert)?;
    let signer = sender.key.signer()?;
    let from = gmchain_sdk::Sender::new(std::sync::Arc::from(signer), cert.clone())
        .map_err(|_| {
            Failure::BadInput(format!(
                "--key is not the key of --cert {} ({})",
                sender.cert.display(),
                cert.subject()
            ))
        })?
        .registered(sender.registered);
    let signed = builder
        .sign(&from, call, &crypto_sm::rng::SystemRandom)
        .map_err(|e| match e {
            SdkError::Sign(types::TxError::Signing(e)) => {
                Failure::coded(&e, format!("cannot sign: {e}"))
            }
            e => Failure::BadInput(e.to_string()),
        })?;
    let submitted = sdk
        .submit_and_wait(&signed, COMMIT_WAIT)
        .await
        .map_err(|e| match e {
            SdkError::CommitTimeout { id, .. } => Failure::coded(
                &e,
                format!("{e}: query it later with `gmchain query tx {id}`"),
            ),
            SdkError::Unreadable { .. } => Failure::BadInput(e.to_string()),
            e => sdk_failure(e),
        })?;
    Ok(submitted.into_committed())
}

/// A receipt's event as JSON: topics in hex (and as text when they are printable ASCII).
pub(crate) fn event_json(e: &types::Event) -> serde_json::Value {
    event_fields(&e.contract, &e.name, &e.topics, &e.data)
}

/// An event's fields as JSON.
pub(crate) fn event_fields(
    contract: &str,
    name: &str,
    topics: &[Vec<u8>],
    data: &[u8],
) -> serde_json::Value {
    let text = |b: &Vec<u8>| {
        std::str::from_utf8(b)
            .ok()
            .filter(|t| t.bytes().all(|c| c.is_ascii_graphic() || c == b' '))
            .map(str::to_string)
    };
    serde_json::json!({
        "contract": contract,
        "name": name,
        "topics": topics.iter().map(hex::encode).collect::<Vec<_>>(),
        "topics_text": topics.iter().map(text).collect::<Vec<_>>(),
        "data": hex::encode(data),
    })
}

/// How long a client waits for its transaction's commit.
const COMMIT_WAIT: std::time::Duration = gmchain_sdk::COMMIT_WAIT;

pub(crate) fn run_tx(cmd: TxCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            TxCommand::Attest {
                file,
                kind,
                metadata,
                pointer_file,
                sender,
                node,
                out,
            } => {
                let doc = read_named("FILE", &file)?;
                let digest = crypto_sm::sm3::sm3(&doc);
                let pointer = match pointer_file {
                    Some(p) => read_named("--pointer-file", &p)?,
                    None => Vec::new(),
                };
                let mut client = connect(&node).await?;
                let call = gmchain_sdk::anchor_call(&digest, &kind, &metadata, pointer);
                let (id, _, height) = send(&mut client, &sender, call).await?;
                let proof = gmchain_sdk::Client::from_grpc(client)
                    .receipt_proof(&id)
                    .await
                    .map_err(sdk_failure)?;
                write_output(out.as_deref(), proof.as_bytes())?;
                eprintln!(
                    "anchored {} (SM3 {digest}) in tx {id} at height {height}",
                    file.display()
                );
                Ok(())
            }
            TxCommand::Identity(cmd) => {
                let (sender, node, method, args) = match cmd {
                    IdentityCommand::RegisterOrg { ca, sender, node } => {
                        (sender, node, "register_org", ca.call_args()?)
                    }
                    IdentityCommand::DeregisterOrg { org, sender, node } => {
                        (sender, node, "deregister_org", vec![org.into_bytes()])
                    }
                    IdentityCommand::ReplaceCa { ca, sender, node } => {
                        (sender, node, "replace_ca", ca.call_args()?)
                    }
                    IdentityCommand::Revoke { crl, sender, node } => {
                        let crl = read_crl("--crl", &crl)?.der().to_vec();
                        (sender, node, "update_crl", vec![crl])
                    }
                    IdentityCommand::Suspend {
                        target,
                        sender,
                        node,
                    } => {
                        let t = read_cert("--target", &target)?;
                        (
                            sender,
                            node,
                            "suspend",
                            vec![t.fingerprint().as_bytes().to_vec()],
                        )
                    }
                    IdentityCommand::Resume {
                        target,
                        sender,
                        node,
                    } => {
                        let t = read_cert("--target", &target)?;
                        (
                            sender,
                            node,
                            "resume",
                            vec![t.fingerprint().as_bytes().to_vec()],
                        )
                    }
                };
                let mut client = connect(&node).await?;
                let call = gmchain_sdk::contract_call("identity", method, args);
                let (id, _, height) = send(&mut client, &sender, call).await?;
                println!("identity.{method} committed: tx {id} at height {height}");
                Ok(())
            }
        }
    })
}

pub(crate) fn parse_digest(option: &str, s: &str) -> Result<Digest, Failure> {
    let v = crate::io::hex_arg(option, s)?;
    let arr: [u8; 32] = v
        .as_slice()
        .try_into()
        .map_err(|_| Failure::BadInput(format!("{option}: {} bytes, expected 32", v.len())))?;
    Ok(Digest(arr))
}

fn attestation_json(a: &pb::Attestation) -> serde_json::Value {
    serde_json::json!({
        "id": hex::encode(&a.id),
        "digest": hex::encode(&a.digest),
        "kind": a.kind,
        "owner": a.owner,
        "metadata": a.metadata,
        "pointer": hex::encode(&a.pointer),
        "height": a.height,
        "timestamp_ms": a.timestamp_ms,
        "signer_certificate_sm3": hex::encode(&a.signer),
    })
}

pub(crate) fn print_json(v: &serde_json::Value) -> CmdResult {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Failure::BadInput(format!("cannot render JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

pub(crate) fn run_query(cmd: QueryCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            QueryCommand::Status { node } => {
                let (c, connection) = crate::client::connect_with_info(&node).await?;
                let s = gmchain_sdk::Client::from_grpc(c)
                    .status()
                    .await
                    .map_err(sdk_failure)?;
                print_json(&serde_json::json!({
                    "chain_id": s.chain_id,
                    "height": s.height,
                    "tip_hash": hex::encode(&s.tip_hash),
                    "genesis_hash": hex::encode(&s.genesis_hash),
                    "pool_size": s.pool_size,
                    "validator": s.validator,
                    "committed_txs_since_start": s.committed_txs,
                    "expiry_window": s.expiry_window,
                    // The chain parameters in force after the tip, and since when
                    // (governance changes them; 0: the genesis file's).
                    "params": {
                        "expiry_window": s.expiry_window,
                        "max_txs_per_block": s.max_txs_per_block,
                        "max_tx_size": s.max_tx_size,
                        "max_fuel_per_tx": s.max_fuel_per_tx,
                        "max_fuel_per_block": s.max_fuel_per_block,
                        "since": s.params_since,
                    },
                    "version": s.version,
                    "connection": connection,
                }))
            }
            QueryCommand::Tx { id, node } => {
                let id = types::TxId(parse_digest("ID", &id)?);
                let mut c = gmchain_sdk::Client::from_grpc(connect(&node).await?);
                let t = c.transaction(&id).await.map_err(sdk_failure)?;
                let receipt = c.receipt(&id).await.map_err(sdk_failure)?.receipt;
                let status = match &receipt.status {
                    Status::Success => serde_json::json!("success"),
                    Status::Failed { code, message } => serde_json::json!({"failed": {
                        "code": code, "name": failure_name(*code), "message": message
                    }}),
                };
                print_json(&serde_json::json!({
                    "tx_id": id.to_string(),
                    "height": t.height,
                    "position": t.position,
                    "call": format!("{}.{}", t.tx.tx.call.contract, t.tx.tx.call.method),
                    "expiry": t.tx.tx.expiry.0,
                    "status": status,
                    "fuel_limit": t.tx.tx.fuel_limit,
                    "fuel_used": receipt.fuel_used,
                    "output": hex::encode(&receipt.output),
                    "events": receipt.events.iter().map(event_json).collect::<Vec<_>>(),
                }))
            }
            QueryCommand::Block { height, node } => {
                let b = gmchain_sdk::Client::from_grpc(connect(&node).await?)
                    .block(height)
                    .await
                    .map_err(sdk_failure)?;
                let (block, certificate) = (b.block, b.certificate);
                let h = &block.header;
                print_json(&serde_json::json!({
                    "height": h.height.0,
                    "hash": h.hash().to_string(),
                    "parent": h.parent.to_string(),
                    "tx_count": h.tx_count,
                    "tx_root": h.tx_root.to_string(),
                    "state_root": h.state_root.to_string(),
                    "receipts_root": h.receipts_root.to_string(),
                    "timestamp_ms": h.timestamp.0,
                    "proposer": h.proposer.to_string(),
                    "certificate": match certificate {
                        None => serde_json::Value::Null,
                        Some(c) => serde_json::json!({
                            "round": c.round,
                            "precommits": c.signatures.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>(),
                        }),
                    },
                    "txs": block.txs.iter().map(|t| t.tx_id().to_string()).collect::<Vec<_>>(),
                }))
            }
            QueryCommand::Attestation {
                file,
                digest,
                id,
                node,
            } => {
                let key = match (file, digest, id) {
                    (Some(f), _, _) => {
                        AttestationKey::Digest(crypto_sm::sm3::sm3(&read_named("--file", &f)?))
                    }
                    (_, Some(d), _) => AttestationKey::Digest(parse_digest("--digest", &d)?),
                    (_, _, Some(i)) => AttestationKey::Id(parse_digest("--id", &i)?),
                    _ => {
                        return Err(Failure::BadInput("give --file, --digest or --id".into()));
                    }
                };
                let a = gmchain_sdk::Client::from_grpc(connect(&node).await?)
                    .attestation(key)
                    .await
                    .map_err(|e| match e {
                        SdkError::NoAttestation => Failure::BadInput(e.to_string()),
                        e => sdk_failure(e),
                    })?;
                print_json(&attestation_json(&a))
            }
            QueryCommand::Attestations {
                owner,
                start,
                limit,
                node,
            } => {
                let mut c = connect(&node).await?;
                let l = c
                    .list_attestations(pb::ListAttestationsRequest {
                        owner,
                        start,
                        limit,
                    })
                    .await
                    .map_err(|s| status_failure("attestations", s))?
                    .into_inner();
                print_json(&serde_json::Value::Array(
                    l.attestations.iter().map(attestation_json).collect(),
                ))
            }
            QueryCommand::Validators { height, node } => {
                crate::cli_governance::validators(height, &node).await
            }
            QueryCommand::Events(a) => crate::cli_contract::events(a).await,
            QueryCommand::Receipt { id, node, out } => {
                let id = types::TxId(parse_digest("ID", &id)?);
                let p = gmchain_sdk::Client::from_grpc(connect(&node).await?)
                    .receipt_proof(&id)
                    .await
                    .map_err(sdk_failure)?;
                write_output(out.as_deref(), p.as_bytes())
            }
        }
    })
}

pub(crate) fn run_receipt(cmd: ReceiptCommand) -> CmdResult {
    match cmd {
        ReceiptCommand::Verify {
            receipt,
            file,
            genesis,
        } => {
            let g = node::read_genesis(&genesis).map_err(|e| Failure::BadInput(e.to_string()))?;
            let trust = gmchain_sdk::trust_context(&g)
                .map_err(|e| Failure::BadInput(format!("{}: {e}", genesis.display())))?;
            let bytes = read_named("RECEIPT", &receipt)?;
            let bundle = receipt::ReceiptBundle::from_json(&bytes, &types::Limits::default())
                .map_err(|e| {
                    Failure::NotVerified(format!("{}: {} ({})", receipt.display(), e, e.code()))
                })?;
            let doc = match &file {
                Some(f) => Some(read_named("FILE", f)?),
                None => None,
            };
            let v = bundle.verify(&trust, doc.as_deref()).map_err(|e| {
                Failure::NotVerified(format!("{}: {} ({})", receipt.display(), e, e.code()))
            })?;
            println!(
                "receipt verified against genesis {} (chain {})",
                g.hash(),
                g.chain_id
            );
            println!("  transaction {} ({})", v.tx_id, v.call);
            println!(
                "  block {} at height {}, time {} ms, proposed by {}",
                v.block_hash, v.height, v.timestamp_ms, v.validator
            );
            println!(
                "  final: certified by {} validator(s): {}",
                v.certified_by.len(),
                v.certified_by.join("; ")
            );
            println!("  signer {} ({})", v.signer_subject, v.organisation);
            // The receipt's fields are covered by the verified receipts root.
            let r = &bundle.receipt;
            match &r.status {
                Status::Success => println!("  status: success"),
                Status::Failed { code, message } => {
                    println!(
                        "  status: failed, {} ({code}): {message}",
                        failure_name(*code)
                    )
                }
            }
            if let (Some(f), Some(d)) = (&file, &v.document_digest) {
                println!("  document {} has SM3 {d}, as anchored", f.display());
            }
            if let Some(fuel) = v.fuel_used {
                println!("  fuel used {fuel}");
            }
            if !v.output.is_empty() {
                println!("  output {}", hex::encode(&v.output));
            }
            for e in &v.events {
                let topics: Vec<String> = e.topics.iter().map(hex::encode).collect();
                println!(
                    "  event {} {} topics [{}] data {}",
                    e.contract,
                    e.name,
                    topics.join(", "),
                    hex::encode(&e.data)
                );
            }
            Ok(())
        }
    }
}
