//! gmchain's Rust SDK, for programs that use a chain: connect to a node's mutual GM TLS API
//! (RFC 8998) with a key in a PKCS#11 token or a development key file behind
//! `crypto::Signer`, or to a public read-only listener; build and sign transactions (an
//! attestation anchor, any contract call) for the chain the node reports; submit and wait for
//! the commit; query status, blocks, transactions, receipts, attestations and offline receipts;
//! verify an offline receipt against the genesis file without asking any node.
//!
//! A shell crate: it owns sockets (through `gmtls` and tonic) and reads the files its caller
//! names. It implements no rule of its own that another crate has: TLS is `gmtls`'s client
//! configuration, transactions are `types`'s canonical encoding, receipts are verified by the
//! `receipt` crate, error codes come from the `codes` registry. The `gmchain` command's
//! client side is built on it. It never prints, reads no PIN from an argument, and does not
//! retry on its own.
//!
//! ```no_run
//! # async fn run() -> Result<(), gmchain_sdk::SdkError> {
//! use std::path::Path;
//! use std::sync::Arc;
//! use gmchain_sdk::{Client, Sender, TlsClient};
//!
//! let signer = gmchain_sdk::key_file_signer(
//!     Path::new("admin.key.pem"),
//!     Some(&gmchain_sdk::secret_from_env("GMCHAIN_PASS")?),
//! )?;
//! let chain = gmchain_sdk::parse_certificates(&std::fs::read("admin.crt.pem").unwrap())?;
//! let creds = gmtls::Credentials::new(chain.clone(), signer.clone())?;
//! let anchors = gmchain_sdk::parse_certificates(&std::fs::read("ca.crt.pem").unwrap())?;
//! let crl = pki::Crl::from_pem(&std::fs::read("ca.crl.pem").unwrap())?;
//! let trust = gmchain_sdk::node_authority(anchors, vec![crl], None)?;
//! let tls = TlsClient::new(&creds, trust, None)?;
//! let mut client = Client::connect(gmchain_sdk::resolve("127.0.0.1:7050")?, &tls).await?;
//! let sender = Sender::new(signer, chain[0].clone())?;
//! let digest = crypto_sm::sm3::sm3(b"the document");
//! let call = gmchain_sdk::anchor_call(&digest, "document", "", Vec::new());
//! let committed = client.send(&sender, call).await?.into_committed();
//! let receipt = client.receipt_proof(&committed.id).await?;
//! let v = gmchain_sdk::verify_receipt_offline(
//!     receipt.as_bytes(),
//!     Path::new("genesis.json"),
//!     Some(b"the document"),
//! )?;
//! assert_eq!(v.verified.height.0, committed.height);
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod client;
mod connect;
mod error;
mod keys;
mod tx;
mod verify;

pub use client::{
    AttestationKey, COMMIT_WAIT, CertifiedBlock, Client, Committed, StoredTx, Submission,
};
pub use connect::{
    CONNECT_TIMEOUT, Connection, MAX_MESSAGE, TlsClient, node_authority, parse_certificates,
    public_channel, resolve,
};
pub use error::{SdkError, is_unreachable, status_class, status_code};
pub use keys::{key_file_signer, secret_from_env, secret_from_file, token_label, token_signer};
pub use tx::{Sender, TxBuilder, anchor_call, contract_call};
pub use verify::{Verified, trust_context, verify_receipt, verify_receipt_offline};
