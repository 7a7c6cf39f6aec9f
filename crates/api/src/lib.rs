//! The gmchain gRPC API: the generated messages, client and server of
//! `proto/gmchain/v1/chain.proto`, compiled at build time with `protox` (no system `protoc`).
//!
//! Objects travel as their canonical encodings (docs/formats.md); this crate only carries
//! them. It holds no logic: the node implements the server, the CLI uses the client.

#![allow(missing_docs, missing_debug_implementations)] // generated code

/// `gmchain.v1`.
pub mod v1 {
    tonic::include_proto!("gmchain.v1");
}

/// The encoded `FileDescriptorSet` of the API's proto files, with their comments: the REST
/// gateway reads requests and writes responses through it, and generates its OpenAPI document
/// from it.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gmchain_v1.fds"));

/// The gRPC metadata key carrying a refused transaction's stable code (`TX_SIGNATURE_INVALID`).
pub const CODE_METADATA_KEY: &str = "gmchain-code";
