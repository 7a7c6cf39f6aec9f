//! The certificate authority: its rules, and the directory a CA admin's commands read and
//! write.
//!
//! - `Authority` (module `authority`): issuance by role, agency CA certificates, dual pairs,
//!   renewal, revocation and CRLs, with serial drawing, validity capping and the audit wrapper
//!   (`CaDir::audited`), over the CA directory; the key (`crypto::Signer`), the randomness and
//!   the clock are passed in;
//! - `CA`: the CA's metadata (name, organisation, where its key lives);
//! - `index.json`: every certificate issued, its status, renewal links, and the CRL number;
//! - `certs/<serial>.pem`, `crl.pem`, `ca.pem`, `chain.pem`;
//! - `audit.log`: one JSON line per action or refused action, hash-chained with SM3 and signed
//!   by the CA key, so an edited, removed or (given the last head) truncated entry is detected;
//!   only a refusal because the CA key could not be opened may be unsigned.
//!
//! It also holds the CA's rules that need only the index (`renewal`): which issuances and
//! renewals are refused (a revoked certificate, a key recorded as compromised, any
//! certification once the CA recorded its own compromise) and which certificates a key
//! compromise revokes together.
//!
//! Every command holds an exclusive lock on `.lock` while it works, so two admins never
//! interleave; every file is written by temp file, fsync, rename and directory fsync, and the
//! index is the commit point, so a crash mid-command leaves either the old state or the new
//! one: new certificate files and then the action's `done` audit entry (write-ahead) are
//! written just before it, after every step that can refuse, and `crl.pem` just after it (the
//! number is recorded before a CRL carries it, so a failure skips a CRL number and never
//! reuses one).
//! This crate writes no private key: the CA key is a `crypto::Signer` the caller opens, and the
//! escrow copy of an encryption key the CA generates for a dual pair goes, encrypted, to the
//! caller's `EscrowStore` (the `gmchain` binary's is the directory's `escrow/`, mode 0600).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod audit;
mod authority;
mod dir;
mod error;
mod index;
pub mod renewal;

pub use audit::{AuditEntry, AuditLog, AuditReport, Outcome, SignedHead, UnsignedTail};
pub use authority::{
    Action, AuditDetail, Audited, Authority, Clock, Context, EncryptionHalf, Escrow, EscrowStore,
    Holder, Initialised, Issued, NewCa, PublishedCrl, Renewed, Revoked, SERIAL_DRAWS, init_agency,
    init_root, stored_certificate,
};
pub use dir::{CaDir, CaKind, CaMeta, KeyLocation};
pub use error::{CaError, PkiStep};
pub use index::{Index, IndexEntry, Status};
