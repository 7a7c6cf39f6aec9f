//! gmchain's end-to-end tests, as one test binary: each binary links the whole node (RocksDB
//! included), so the suites are modules of one (`cargo test -p gmchain --test gmchain ca::`).
//! - `audit`: supervision end to end with a supervising organisation: traces (the same after a
//!   restart), freezes, who reaches the Supervision API, signed reports and their tampering;
//! - `backup`: `gmchain node backup`/`restore` (issue 18): a validator backed up under load,
//!   restored and rejoining with the same state roots; a custodian's blobs; tampering refused;
//! - `ca`: `gmchain ca` as CA admins use it, against the demo PKI;
//! - `cli`: the crypto toolbox against OpenSSL, the conformance report, format tables;
//! - `console`: the web console in Debian's chromium (tests/console/run.mjs): its SM3/SM2
//!   against Rust's, then a live node's explorer and a document verified in the browser;
//! - `keys`: keys in a PKCS#11 token;
//! - `bft`: several validator processes deciding by BFT consensus over GM TLS links;
//! - `node`: real node processes on 127.0.0.1;
//! - `node_audit`: the node's own audit log and `gmchain node audit-verify`;
//! - `conformance_node`: the conformance suite against a live node;
//! - `tls`: the node's mutual GM TLS API: refusals, revocation cutting sessions, reload;
//! - `governance`: validator-set changes by proposal and by revocation, with validator processes;
//! - `devnet`: `gmchain devnet up/status/down` with an attestation and its offline receipt;
//! - `disk`: a full disk (as root): a node's data directory on a small loop filesystem fills
//!   under load; the node refuses with NODE_STORAGE_LOW, reports it, loses nothing acknowledged
//!   as committed, stops and restarts while low, stays low in the hysteresis band and resumes
//!   when space is freed (one validator, and one of four); a custodian's blob store on a loop
//!   filesystem of its own refuses an upload that would cross the threshold;
//! - `contracts`: a WASM contract deployed by two organisations' votes, called, queried, its
//!   events found, frozen, through `gmchain contract` and `gmchain query events`;
//! - `data`: sharing data between three agencies through `gmchain data` (publish, request,
//!   grant, fetch with both digests checked, revoke, expiry, the fetch log, messages);
//! - `contract_sdk`: `gmchain contract build` on the example contracts, the SDK's native tests;
//! - `ops`: the Grafana dashboard against a node's metrics, and the health endpoint;
//! - `rest`: the REST/JSON gateway against a node: externally signed transactions (OpenSSL,
//!   GmSSL), every route's problem documents, gRPC parity, SSE, public mode, the tunnel,
//!   schemathesis;
//! - `upgrade`: a rolling upgrade of four validators from the previous release
//!   (release/previous, built by scripts/build-previous-release.sh) under load, and a previous
//!   release's store refused until `gmchain node migrate`, with the rollback from its backup;
//! - `sdk_example`: the Rust SDK's example program (`crates/sdk/examples/attest.rs`, mounted
//!   here as `sdk_attest_example`) against a node, and the SDK's refusals of tampered receipts;
//! - `snapshot`: state snapshots and fast join (export, verified import, sync forward, queries
//!   below the base), pruned mode, and `gmchain node migrate` of a version-3 store;
//! - `watch`: watch rules and session cutting: a suspended member's stream cut, its next
//!   transaction raising a `refused-signer` alert.

#[path = "support/consortium.rs"]
mod consortium;
#[path = "support/demo_pki.rs"]
mod demo_pki;
#[path = "support/dev_node.rs"]
mod dev_node;
// The SDK's example program, compiled in so that `sdk_example` runs exactly its code (its
// `main` is unused here).
#[path = "../crates/sdk/examples/attest.rs"]
#[allow(dead_code)]
mod sdk_attest_example;

mod audit;
mod backup;
mod bft;
mod ca;
mod cli;
mod conformance_node;
mod console;
mod contract_sdk;
mod contracts;
mod data;
mod data_custody;
mod data_token;
mod devnet;
mod disk;
mod governance;
mod keys;
mod node;
mod node_audit;
mod ops;
mod rest;
mod sdk_example;
mod snapshot;
mod tls;
mod upgrade;
mod watch;
