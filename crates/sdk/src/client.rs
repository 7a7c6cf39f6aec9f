//! A connected client: submit and wait, and the queries.

use std::net::SocketAddr;
use std::time::Duration;

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use crypto::{Digest, RandomSource};
use tonic::transport::Channel;
use types::{Block, Call, CommitCertificate, Decode, Encode, Limits, Receipt, SignedTx, TxId};

use crate::SdkError;
use crate::connect::{Connection, MAX_MESSAGE, TlsClient, public_channel};
use crate::tx::{Sender, TxBuilder};

/// How long [`Client::send`] waits for its transaction's commit by default.
pub const COMMIT_WAIT: Duration = Duration::from_secs(120);

/// How often a resubmitted transaction still waiting in the pool is looked for in the chain.
const POLL: Duration = Duration::from_millis(200);

/// A committed transaction: its id, receipt, block and position.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The transaction id.
    pub id: TxId,
    /// Its receipt (success, or the failure's code and message).
    pub receipt: Receipt,
    /// The height of its block.
    pub height: u64,
    /// Its position in the block.
    pub position: u32,
}

/// What a submission came to. Resubmitting a transaction the node has seen is not an error:
/// the node refuses the copy (`TX_DUPLICATE`), and the client then reads the outcome of the
/// first, waiting for it within the same bound if it is still in the pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Submission {
    /// This submission was committed.
    Committed(Committed),
    /// The transaction had already been committed (an earlier submission of the same bytes,
    /// a retry after a lost answer); this is its outcome.
    AlreadyCommitted(Committed),
}

impl Submission {
    /// The committed transaction, whichever submission committed it.
    pub fn committed(&self) -> &Committed {
        match self {
            Submission::Committed(c) | Submission::AlreadyCommitted(c) => c,
        }
    }

    /// The committed transaction, whichever submission committed it.
    pub fn into_committed(self) -> Committed {
        match self {
            Submission::Committed(c) | Submission::AlreadyCommitted(c) => c,
        }
    }
}

/// A committed transaction as the node stores it.
#[derive(Debug, Clone)]
pub struct StoredTx {
    /// The signed transaction.
    pub tx: SignedTx,
    /// The height of its block.
    pub height: u64,
    /// Its position in the block.
    pub position: u32,
}

/// A block and, when the node has it, the commit certificate that finalised it.
#[derive(Debug, Clone)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate (absent for block 0).
    pub certificate: Option<CommitCertificate>,
}

/// How an attestation is looked up.
#[derive(Debug, Clone, Copy)]
pub enum AttestationKey {
    /// By the anchored SM3 digest.
    Digest(Digest),
    /// By its id (the anchoring transaction's id).
    Id(Digest),
}

/// A client of one node's gRPC API.
#[derive(Debug, Clone)]
pub struct Client {
    grpc: ChainClient<Channel>,
    connection: Option<Connection>,
}

fn unreadable(what: &'static str) -> impl FnOnce(types::DecodeError) -> SdkError {
    move |e| SdkError::Unreadable {
        what,
        reason: e.to_string(),
    }
}

impl Client {
    /// Connects to the node's mutual GM TLS API at `addr` as `tls`'s identity.
    pub async fn connect(addr: SocketAddr, tls: &TlsClient) -> Result<Client, SdkError> {
        let (channel, connection) = tls.channel(addr).await?;
        let mut client = Client::from_channel(channel);
        client.connection = Some(connection);
        Ok(client)
    }

    /// Connects to a node's public read-only listener (`http://HOST:PORT`): reads only.
    pub async fn connect_public(url: &str) -> Result<Client, SdkError> {
        Ok(Client::from_channel(public_channel(url).await?))
    }

    /// A client over a channel made elsewhere.
    pub fn from_channel(channel: Channel) -> Client {
        Client::from_grpc(ChainClient::new(channel).max_decoding_message_size(MAX_MESSAGE))
    }

    /// A client over a generated gRPC client.
    pub fn from_grpc(grpc: ChainClient<Channel>) -> Client {
        Client {
            grpc,
            connection: None,
        }
    }

    /// The generated gRPC client, for the calls this SDK does not wrap.
    pub fn grpc(&mut self) -> &mut ChainClient<Channel> {
        &mut self.grpc
    }

    /// What the TLS connection is (`None` over a public listener or a channel made
    /// elsewhere).
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// The node's status: chain id, height, tip, pool, chain parameters.
    pub async fn status(&mut self) -> Result<pb::StatusResponse, SdkError> {
        Ok(self
            .grpc
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|s| SdkError::from_status("status", s))?
            .into_inner())
    }

    /// A transaction builder for the node's chain, from its status.
    pub async fn builder(&mut self) -> Result<TxBuilder, SdkError> {
        TxBuilder::from_status(&self.status().await?)
    }

    /// Submits `tx` and waits up to `wait` for its commit. A committed transaction is returned
    /// whether its execution succeeded or failed (see its receipt's status); one the node
    /// already committed is [`Submission::AlreadyCommitted`].
    pub async fn submit_and_wait(
        &mut self,
        tx: &SignedTx,
        wait: Duration,
    ) -> Result<Submission, SdkError> {
        let id = tx.tx_id();
        let deadline = tokio::time::Instant::now() + wait;
        // A node that cannot reach a quorum of validators keeps the transaction waiting: the
        // client gives up after a bound rather than hang (it may still commit later).
        let answer = tokio::time::timeout_at(
            deadline,
            self.grpc.submit_transaction(pb::SubmitTransactionRequest {
                signed_tx: tx.to_bytes(),
                wait_for_commit: true,
            }),
        )
        .await
        .map_err(|_| SdkError::CommitTimeout { id, waited: wait })?;
        let resp = match answer {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let e = SdkError::from_status("the node refused the transaction", status);
                if e.node_code() != Some(&codes::TX_DUPLICATE) {
                    return Err(e);
                }
                // Seen before: committed, then this is its outcome; or still waiting in the
                // pool (a retry after a lost answer), then its outcome is awaited as this
                // submission's would have been.
                return self.existing_outcome(&id, deadline, wait).await;
            }
        };
        let receipt = Receipt::from_bytes(&resp.receipt, &Limits::default())
            .map_err(unreadable("receipt"))?;
        Ok(Submission::Committed(Committed {
            id,
            receipt,
            height: resp.height,
            position: resp.position,
        }))
    }

    /// The outcome of a transaction the node refused as a duplicate: its receipt once
    /// committed, read every [`POLL`] until `deadline`.
    async fn existing_outcome(
        &mut self,
        id: &TxId,
        deadline: tokio::time::Instant,
        wait: Duration,
    ) -> Result<Submission, SdkError> {
        loop {
            match self.receipt(id).await {
                Ok(c) => return Ok(Submission::AlreadyCommitted(c)),
                Err(SdkError::Node { ref status, .. })
                    if status.code() == tonic::Code::NotFound => {}
                Err(other) => return Err(other),
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return Err(SdkError::CommitTimeout {
                    id: *id,
                    waited: wait,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Builds `call` for the node's chain (expiry: its window), signs it as `sender` with a
    /// salt from the system's random source, submits it and waits up to [`COMMIT_WAIT`].
    pub async fn send(&mut self, sender: &Sender, call: Call) -> Result<Submission, SdkError> {
        let tx = self
            .builder()
            .await?
            .sign(sender, call, &crypto_sm::rng::SystemRandom)?;
        self.submit_and_wait(&tx, COMMIT_WAIT).await
    }

    /// As [`send`](Self::send) with a random source of the caller's.
    pub async fn send_with(
        &mut self,
        builder: &TxBuilder,
        sender: &Sender,
        call: Call,
        rng: &dyn RandomSource,
    ) -> Result<Submission, SdkError> {
        let tx = builder.sign(sender, call, rng)?;
        self.submit_and_wait(&tx, COMMIT_WAIT).await
    }

    /// A committed transaction by id.
    pub async fn transaction(&mut self, id: &TxId) -> Result<StoredTx, SdkError> {
        let t = self
            .grpc
            .get_transaction(pb::TxIdRequest {
                tx_id: id.as_bytes().to_vec(),
            })
            .await
            .map_err(|s| SdkError::from_status("transaction", s))?
            .into_inner();
        Ok(StoredTx {
            tx: SignedTx::from_bytes(&t.signed_tx, &Limits::default())
                .map_err(unreadable("transaction"))?,
            height: t.height,
            position: t.position,
        })
    }

    /// The receipt of a committed transaction.
    pub async fn receipt(&mut self, id: &TxId) -> Result<Committed, SdkError> {
        let r = self
            .grpc
            .get_receipt(pb::TxIdRequest {
                tx_id: id.as_bytes().to_vec(),
            })
            .await
            .map_err(|s| SdkError::from_status("receipt", s))?
            .into_inner();
        Ok(Committed {
            id: *id,
            receipt: Receipt::from_bytes(&r.receipt, &Limits::default())
                .map_err(unreadable("receipt"))?,
            height: r.height,
            position: r.position,
        })
    }

    /// The offline receipt (JSON, docs/formats.md) of a committed transaction: verify it with
    /// [`verify_receipt_offline`](crate::verify_receipt_offline).
    pub async fn receipt_proof(&mut self, id: &TxId) -> Result<String, SdkError> {
        Ok(self
            .grpc
            .get_receipt_proof(pb::TxIdRequest {
                tx_id: id.as_bytes().to_vec(),
            })
            .await
            .map_err(|s| SdkError::from_status("receipt", s))?
            .into_inner()
            .receipt_json)
    }

    /// A block by height (the tip for `None`) with its commit certificate.
    pub async fn block(&mut self, height: Option<u64>) -> Result<CertifiedBlock, SdkError> {
        let b = self
            .grpc
            .get_block(pb::GetBlockRequest { height })
            .await
            .map_err(|s| SdkError::from_status("block", s))?
            .into_inner();
        let block = Block::from_bytes(&b.block, &Limits::default()).map_err(unreadable("block"))?;
        let certificate = if b.certificate.is_empty() {
            None
        } else {
            Some(
                CommitCertificate::from_bytes(&b.certificate, &Limits::default())
                    .map_err(unreadable("commit certificate"))?,
            )
        };
        Ok(CertifiedBlock { block, certificate })
    }

    /// An attestation by digest or id.
    pub async fn attestation(&mut self, key: AttestationKey) -> Result<pb::Attestation, SdkError> {
        let key = match key {
            AttestationKey::Digest(d) => {
                pb::get_attestation_request::Key::Digest(d.as_bytes().to_vec())
            }
            AttestationKey::Id(i) => pb::get_attestation_request::Key::Id(i.as_bytes().to_vec()),
        };
        self.grpc
            .get_attestation(pb::GetAttestationRequest { key: Some(key) })
            .await
            .map_err(|s| SdkError::from_status("attestation", s))?
            .into_inner()
            .attestation
            .ok_or(SdkError::NoAttestation)
    }
}
