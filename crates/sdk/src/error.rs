//! The SDK's one error type.

use std::path::PathBuf;

use codes::{Class, Code, Coded};

/// Why an SDK call failed. Each variant has a registry code ([`Coded::code`]) and an exit
/// class ([`Coded::class`]): not verified, bad input, or unavailable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The node answered `what` (a request: "status", "block", "the node refused the
    /// transaction") with a gRPC error; `code` is the registry code it named in the
    /// `gmchain-code` metadata, if it named one.
    #[error("{what}: {}", .status.message())]
    Node {
        /// What was asked.
        what: &'static str,
        /// The registry code the node sent, if any.
        code: Option<&'static Code>,
        /// The node's status (its message is the node's text, not ours: show it as one line).
        status: Box<tonic::Status>,
    },
    /// The TLS connection to the node failed (unreachable, a refused certificate on either
    /// side, no common algorithm).
    #[error(transparent)]
    Connect(#[from] gmtls::net::ConnectError),
    /// The TLS identity or trust could not be made into a configuration.
    #[error(transparent)]
    Tls(#[from] gmtls::TlsError),
    /// An address that is not a usable node address or URL.
    #[error("{address}: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why it is not usable.
        reason: String,
    },
    /// A public listener that could not be reached.
    #[error("node {url} unreachable: {source}")]
    Unreachable {
        /// The listener's URL.
        url: String,
        /// The transport's failure.
        #[source]
        source: tonic::transport::Error,
    },
    /// The gRPC channel over a TLS connection failed.
    #[error("node {addr}: the gRPC channel failed: {source}")]
    Channel {
        /// The node's address.
        addr: std::net::SocketAddr,
        /// The transport's failure.
        #[source]
        source: tonic::transport::Error,
    },
    /// The node's answer could not be read as `what`.
    #[error("the node sent an unreadable {what}: {reason}")]
    Unreadable {
        /// What was expected ("receipt", "block").
        what: &'static str,
        /// Why it is unreadable.
        reason: String,
    },
    /// The node answered an attestation query with none.
    #[error("the node sent no attestation")]
    NoAttestation,
    /// The node reports a chain id that is not one.
    #[error("node reports chain id {chain_id:?}: {reason}")]
    ChainId {
        /// What the node reported.
        chain_id: String,
        /// Why it is not a chain id.
        reason: String,
    },
    /// The signer's key is not the key of the sender certificate.
    #[error("the signer's key is not the key of the certificate of {subject}")]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// No randomness for the transaction's salt.
    #[error("no randomness for the salt: {0}")]
    Salt(#[source] crypto::CryptoError),
    /// The transaction could not be signed.
    #[error("cannot sign: {0}")]
    Sign(#[source] types::TxError),
    /// The transaction was submitted but not committed within `waited`; it may still commit.
    #[error(
        "transaction {id} was submitted but not committed within {} s (is a quorum of validators reachable?); it may still commit",
        .waited.as_secs()
    )]
    CommitTimeout {
        /// The transaction's id.
        id: types::TxId,
        /// How long the client waited.
        waited: std::time::Duration,
    },
    /// A genesis file that cannot be read or is not a genesis.
    #[error("{}: {reason}", .path.display())]
    Genesis {
        /// The file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// A receipt that is malformed or does not verify.
    #[error(transparent)]
    Receipt(#[from] receipt::ReceiptError),
    /// A key in a token could not be opened or used.
    #[error("{context}: {source}")]
    Token {
        /// Which key or token ("token \"dev\"", the key's URI).
        context: String,
        /// The module's failure.
        #[source]
        source: hsm::HsmError,
    },
    /// A key file or secret could not be read or decoded.
    #[error("{}: {source}", .path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crypto::CryptoError,
    },
    /// A certificate that cannot be decoded.
    #[error(transparent)]
    Certificate(#[from] pki::PkiError),
    /// A PEM certificate that does not end.
    #[error("a PEM certificate without its END line")]
    PemWithoutEnd,
    /// A PIN or passphrase source (a file, an environment variable) that is empty.
    #[error("{source_name} is empty")]
    EmptySecret {
        /// The file or variable.
        source_name: String,
    },
    /// An environment variable meant to hold a PIN or passphrase that is not set.
    #[error("the environment variable {var} is not set")]
    NoSecret {
        /// The variable.
        var: String,
    },
    /// A file the caller named could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl SdkError {
    /// The error for a gRPC status answering `what`: the registry code the node named in the
    /// `gmchain-code` metadata, if any.
    pub fn from_status(what: &'static str, status: tonic::Status) -> SdkError {
        SdkError::Node {
            what,
            code: status_code(&status),
            status: Box::new(status),
        }
    }

    /// The registry code the node sent, when this is a node's answer that named one.
    pub fn node_code(&self) -> Option<&'static Code> {
        match self {
            SdkError::Node { code, .. } => *code,
            _ => None,
        }
    }
}

/// The registry code a gRPC status names in its `gmchain-code` metadata.
pub fn status_code(status: &tonic::Status) -> Option<&'static Code> {
    status
        .metadata()
        .get(api::CODE_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(codes::by_name)
}

/// The class of a node's gRPC status: the class of the registry code it names; otherwise an
/// unreachable node (unavailable, deadline exceeded, unknown: a broken connection) is
/// unavailable and anything else bad input.
pub fn status_class(status: &tonic::Status) -> Class {
    if let Some(code) = status_code(status) {
        return code.class;
    }
    if is_unreachable(status.code()) {
        Class::Unavailable
    } else {
        Class::BadInput
    }
}

/// Whether a gRPC status code without a registry code says the node could not be reached or
/// could not answer (unavailable, deadline exceeded, unknown: a connection that broke), rather
/// than that it answered with a refusal.
pub fn is_unreachable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
    )
}

impl Coded for SdkError {
    fn code(&self) -> &'static Code {
        match self {
            SdkError::Node { code, .. } => code.unwrap_or(&codes::SDK_NODE_STATUS),
            SdkError::Connect(e) => e.code(),
            SdkError::Tls(e) => e.code(),
            SdkError::BadAddress { .. } => &codes::SDK_BAD_ADDRESS,
            SdkError::Unreachable { .. } | SdkError::Channel { .. } => &codes::SDK_UNREACHABLE,
            SdkError::Unreadable { .. } | SdkError::NoAttestation | SdkError::ChainId { .. } => {
                &codes::SDK_UNREADABLE_ANSWER
            }
            SdkError::KeyMismatch { .. } => &codes::SDK_KEY_CERT_MISMATCH,
            SdkError::Salt(e) | SdkError::KeyFile { source: e, .. } => e.code(),
            SdkError::Sign(e) => match e {
                types::TxError::Signing(e) => e.code(),
                types::TxError::SignatureInvalid(_) => &codes::TX_SIGNATURE_INVALID,
                types::TxError::Expired { .. } => &codes::TX_EXPIRED,
                types::TxError::ExpiryTooFar { .. } => &codes::TX_EXPIRY_TOO_FAR,
                _ => &codes::TX_MALFORMED,
            },
            SdkError::CommitTimeout { .. } => &codes::SDK_COMMIT_TIMEOUT,
            SdkError::Genesis { .. } => &codes::NODE_GENESIS_INVALID,
            SdkError::Receipt(e) => e.code(),
            SdkError::Token { source, .. } => source.code(),
            SdkError::Certificate(e) => e.code(),
            SdkError::PemWithoutEnd => &codes::PKI_DECODE,
            SdkError::EmptySecret { .. } | SdkError::NoSecret { .. } => {
                &codes::CRYPTO_INVALID_INPUT
            }
            SdkError::Read { .. } => &codes::NODE_IO,
        }
    }

    fn class(&self) -> Class {
        match self {
            SdkError::Node { status, .. } => status_class(status),
            SdkError::Connect(e) => e.class(),
            SdkError::Tls(e) => e.class(),
            SdkError::Salt(e) | SdkError::KeyFile { source: e, .. } => e.class(),
            SdkError::Sign(types::TxError::Signing(e)) => e.class(),
            SdkError::Receipt(e) => e.class(),
            SdkError::Certificate(e) => e.class(),
            SdkError::Token { source, .. } => source.class(),
            _ => self.code().class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_status_takes_its_codes_class_and_falls_back_on_the_grpc_code() {
        let mut s = tonic::Status::already_exists("transaction x was already submitted");
        s.metadata_mut().insert(
            api::CODE_METADATA_KEY,
            tonic::metadata::MetadataValue::from_static("TX_DUPLICATE"),
        );
        let e = SdkError::from_status("the node refused the transaction", s);
        assert_eq!(e.node_code(), Some(&codes::TX_DUPLICATE));
        assert_eq!(e.code(), &codes::TX_DUPLICATE);
        assert_eq!(e.class(), Class::BadInput);
        assert_eq!(
            e.to_string(),
            "the node refused the transaction: transaction x was already submitted"
        );
        // No code: unavailable is the node's trouble, anything else bad input.
        let e = SdkError::from_status("status", tonic::Status::unavailable("stopping"));
        assert_eq!(e.node_code(), None);
        assert_eq!(e.code(), &codes::SDK_NODE_STATUS);
        assert_eq!(e.class(), Class::Unavailable);
        let e = SdkError::from_status("block", tonic::Status::not_found("no block 9"));
        assert_eq!(e.class(), Class::BadInput);
        // A code name the registry does not know is no code.
        let mut s = tonic::Status::internal("x");
        s.metadata_mut().insert(
            api::CODE_METADATA_KEY,
            tonic::metadata::MetadataValue::from_static("NOT_A_CODE"),
        );
        assert_eq!(status_code(&s), None);
    }
}
