//! Audit logs (GB/T 39786 §8.3 e, integrity of logs): one JSON line per event, SM3
//! hash-chained and signed with SM2, for the CA (`ca`, every entry signed) and the node
//! (`node::audit`, signed checkpoints). One implementation, so both are verified by the
//! same code.
//!
//! hash_n = SM3(domain ‖ hash_{n-1} ‖ seq ‖ time ‖ len‖operator ‖ len‖action ‖ len‖outcome ‖
//! len‖detail), with hash_0 = 32 zero bytes, seq and time 8-byte and lengths 4-byte
//! big-endian; a signature is SM2 (default user ID) over hash_n. The domain names the kind of
//! log ([`Kind`]: `gmchain-ca-audit-v1`, `gmchain-node-audit-v1`), so an entry moved from one
//! kind of log to the other breaks its hash. Editing an entry breaks its hash; removing or
//! reordering entries breaks the next link; cutting the tail off is caught by comparing the
//! last hash with a head recorded elsewhere (`--expect-head`).
//!
//! A signature covers the chain up to its entry. Which entries are signed is the kind's rule:
//! the CA signs every entry but a refusal recorded when its key could not be opened; the node
//! signs only checkpoints ([`CHECKPOINT`], every N entries or T seconds and at stop), because
//! signing each entry in a token would let a flood of refused connections exhaust it. The
//! entries after the last signed one are the log's unsigned tail: anyone who can write the file
//! could have forged them, so verification reports the last signed head and
//! [`UnsignedTail::Refuse`] fails on such a tail.
//!
//! [`Refusals`] and [`KeyUse`] sum what a flood would otherwise write entry by entry: refused
//! connections per peer per minute, key use per purpose per checkpoint interval.
//!
//! What it refuses to do: read a line longer than [`MAX_LINE`] or without its newline; append
//! past a damaged line; sign anything but an entry's hash. It takes no clock (times are
//! arguments) and opens no key (a `crypto::Signer` is passed in).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod aggregate;
mod error;
mod log;
mod writer;

pub use aggregate::{
    CountingDecrypter, CountingSigner, KeyUse, MAX_PEERS_PER_MINUTE, MAX_REASON_LEN, MAX_REASONS,
    OTHER_PEERS, Purpose, RefusalSummary, Refusals,
};
pub use error::AuditError;
pub use log::{
    AuditReport, CA, CHECKPOINT, Entry, Kind, Log, MAX_LINE, NODE, Outcome, SignedHead,
    UnsignedTail,
};
pub use writer::Writer;

#[cfg(test)]
mod tests;
