//! Tendermint-style BFT consensus for gmchain: Malachite's pure core
//! (`arc-malachitebft-core-consensus` 0.8.2) driven through our [`context::GmContext`], a
//! synchronous host API ([`Consensus::handle`] + [`Host`]), our own write-ahead log
//! ([`wal`]) and a double-sign guard rebuilt from it.
//!
//! What it does: decides one block hash per height among the validators of that height
//! (n ≥ 3f+1, quorum > 2/3 of power), with votes and proposals in the wire form of
//! `types::vote`, signed through the host (SM2, normally in the HSM), and hands the host a
//! `CommitCertificate` of 2f+1 precommits for each decision. A lagging host may hand it a decided
//! block with [`Input::SyncedBlock`] (its certificate is checked here); the node's host commits
//! synced blocks through its ledger instead and restarts the engine at the next height.
//!
//! What it refuses to do: I/O of any kind (no sockets, files, clock, threads, entropy, no
//! async runtime): the host carries messages, arms timers, stores the WAL durably and
//! signs. It never signs two different votes for one (height, round, kind) or two
//! different proposals for one (height, round), even across a crash: the intent to sign is
//! in the WAL before the signer is called. It does not judge blocks: the host validates them
//! (execution, parent, the timestamp rule of [`timestamp_acceptable`]).
//!
//! Threading: every [`Host`] method runs on the caller's thread inside `handle`; signing may
//! block on an HSM, so the node runs consensus on its own thread (or `spawn_blocking`),
//! never inside an async executor.
//!
//! How Malachite is used (0.8.2, facts checked in its sources):
//! - Value payload mode `ProposalAndParts`: the proposal names the block hash, the block
//!   travels beside it, and the value's validity comes only from [`Host::validate_block`]
//!   (in `ProposalOnly` mode 0.8.2 marks every received proposal's value valid itself).
//! - Liveness messages (polka, precommit-any and skip-round certificates) are carried as
//!   [`LivenessCertificate`]: without them one equivocating vote can keep honest validators
//!   from ever seeing the polka a locked validator holds (the simulation found this).
//! - Sync does not go through Malachite's `SyncValueResponse` (it needs libp2p `PeerId`s):
//!   [`Input::SyncedBlock`] checks the certificate with `CommitCertificate::verify` and
//!   decides; the host then starts the next height.
//! - Malachite's `State::reset_and_start_height` stores `Instant::now()`; it is only read
//!   when a target block time is set, which this crate never does (`None`), so decisions do
//!   not depend on the clock.
//! - Vote extensions are not used.
//!
//! Testing: `tests/simulation.rs` runs a deterministic, seeded, virtual-time simulation of
//! n validators with real SM2 keys over a lossy, reordering, partitionable network, with a
//! crashing leader, an equivocator, a silent and a skewed-clock validator; CI runs 200 seeds
//! at n = 4 and 50 at n = 7. A longer campaign is one command:
//! `GMCHAIN_SIM_SEEDS=5000 cargo test -p consensus --test simulation -- --ignored campaign`
//! (about 0.5 s per seed in the debug profile; add `--release` for long runs). The
//! simulation's own tests print the trace hashes of a repeated seed
//! (`same_seed_same_trace -- --nocapture`). `tests/quint.rs` replays ITF traces generated from
//! Malachite's Quint spec (`tests/itf/`: 10 vote-keeper and 2 round-state-machine scenario
//! traces; the spec commit, the Quint version and `scripts/quint-traces.sh`, which regenerates
//! them, are in its README) on Malachite's vote keeper and round state machine instantiated
//! with [`context::GmContext`]: SM2-signed wire votes, block hashes, our validator set. Each
//! step's output and state must equal the spec's. CI needs no npm. Not replayed: the spec's
//! multi-process driver scenarios and its random (unconstrained-input) traces (see the README).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod certificate;
pub mod context;
mod engine;
pub mod error;
pub mod wal;

pub use certificate::{CertificateKind, LivenessCertificate};
pub use engine::{
    Consensus, DEFAULT_TIMESTAMP_BOUND_MS, Decision, Equivocation, Host, HostError, Input, Params,
    ProposedBlock, timestamp_acceptable,
};
pub use error::ConsensusError;
pub use wal::{Timeout, TimeoutKind, WalEntry};
