//! Supervision's records (issue 16): the supervising organisation and its freeze policy, the
//! supervisor's freezes, and the trace indexes the executor keeps in the state.
//!
//! A trace index is a counter and numbered entries per subject (a signer's certificate, an
//! organisation, a contract, a dataset, a contract's lifecycle), written by the executor at the
//! end of every block (one entry per subject the block touched, holding its transactions) (`audit/` namespace, docs/execution.md §3). Entries are only
//! appended, so the entries of a height range are exactly those numbered from the counter at
//! the start of the range to the counter at its end, and each is proven by a state proof: a
//! report needs no scan of the chain to prove it lists everything.

use crate::error::ExecError;
use crypto::Digest;
use types::Height;
use types::codec::{DecodeError, DecodeReason, Reader, Writer};

mod tag {
    pub const SUPERVISOR: u8 = 0xa0;
    pub const FREEZE: u8 = 0xa1;
    pub const TRACE_ENTRY: u8 = 0xa2;
    pub const LOG_HEAD: u8 = 0xa3;
}

/// The last anchored head of an audit log (`supervision/log-head/<log>`): a node's log, whose
/// checkpoints its node-sign certificate signs, or a CA's, signed by the CA certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHead {
    /// The head entry's sequence number.
    pub seq: u64,
    /// Its hash.
    pub head: Digest,
    /// The anchoring block.
    pub height: Height,
    /// The anchoring block's timestamp (ms).
    pub timestamp_ms: u64,
}

impl LogHead {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::LOG_HEAD);
        w.u64(self.seq);
        w.fixed(self.head.as_bytes());
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.into_bytes()
    }

    /// Decodes the record's canonical bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header("log_head.header", tag::LOG_HEAD)?;
        let seq = r.u64("log_head.seq")?;
        let head = Digest(r.array("log_head.head")?);
        let height = Height(r.u64("log_head.height")?);
        let timestamp_ms = r.u64("log_head.timestamp_ms")?;
        r.finish()?;
        Ok(LogHead {
            seq,
            head,
            height,
            timestamp_ms,
        })
    }
}

/// The longest reason a freeze or unfreeze may give, in bytes.
pub const MAX_REASON_LEN: usize = 512;

/// What a trace index is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TraceKind {
    /// Every transaction a certificate signed (ID: 64 hex of its SM3 ID).
    Cert,
    /// Every transaction signed by a certificate of an organisation (ID: its name).
    Org,
    /// Every transaction calling a contract, built-in or WASM (ID: its name).
    Contract,
    /// The life of a dataset: registration, versions, requests, grants, denials, revocations,
    /// fetches (ID: `organisation/name`).
    Dataset,
    /// A WASM contract's lifecycle: proposals, votes, deployment, upgrades, freezes (ID: its
    /// name).
    Lifecycle,
}

impl TraceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [TraceKind; 5] = [
        TraceKind::Cert,
        TraceKind::Org,
        TraceKind::Contract,
        TraceKind::Dataset,
        TraceKind::Lifecycle,
    ];

    /// The kind's name, as in the state keys and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceKind::Cert => "cert",
            TraceKind::Org => "org",
            TraceKind::Contract => "contract",
            TraceKind::Dataset => "dataset",
            TraceKind::Lifecycle => "lifecycle",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<TraceKind> {
        TraceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Checks that `id` is written as the executor writes this kind's IDs (one spelling per
    /// subject: 64 lower-case hex for a certificate, an organisation's name, a contract's name,
    /// `organisation/name` for a dataset), so that no trace, report or reader can name a
    /// subject in a spelling the index never holds and be shown an empty, "complete" history.
    /// The error says what is wrong.
    pub fn check_id(self, id: &str) -> Result<(), String> {
        let lower_hex = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let contract = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.as_bytes()[0].is_ascii_lowercase()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        let org = |s: &str| pki::check_organisation(s).is_ok() && !s.contains('/');
        let ok = match self {
            TraceKind::Cert => lower_hex(id),
            TraceKind::Org => org(id),
            TraceKind::Contract | TraceKind::Lifecycle => contract(id),
            TraceKind::Dataset => id.split_once('/').is_some_and(|(o, n)| {
                org(o)
                    && !n.is_empty()
                    && n.len() <= 64
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{id:?} is not how a {} is named on the chain ({})",
                self.as_str(),
                match self {
                    TraceKind::Cert => "64 lower-case hex characters of its SM3 ID",
                    TraceKind::Org => "an organisation's name, without '/'",
                    TraceKind::Contract | TraceKind::Lifecycle =>
                        "1 to 32 characters of a-z, 0-9, '-' and '_' starting with a letter",
                    TraceKind::Dataset =>
                        "organisation/name, the name 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                }
            ))
        }
    }
}

impl core::fmt::Display for TraceKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most transactions one trace entry holds: a subject with more in one block has several
/// entries for that block.
pub const MAX_ROWS_PER_ENTRY: usize = 256;

/// One transaction of a trace entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// The transaction's position in its block (from 0).
    pub position: u32,
    /// The transaction's ID.
    pub tx_id: Digest,
    /// SM3 of the signer's certificate.
    pub signer: Digest,
    /// The signer's organisation.
    pub organisation: String,
    /// The called contract.
    pub contract: String,
    /// The called method.
    pub method: String,
    /// 0 when the transaction succeeded, else its receipt's failure code.
    pub code: u32,
}

/// One entry of a trace index: the transactions of one block that touched the subject (at
/// most [`MAX_ROWS_PER_ENTRY`], in block order). One entry per subject per block keeps the
/// index's state writes per block to the subjects the block touched, not its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// The block.
    pub height: Height,
    /// The block's timestamp (ms).
    pub timestamp_ms: u64,
    /// Its transactions that touched the subject, in block order (1..=256).
    pub rows: Vec<TraceRow>,
}

const MAX_NAME: usize = 256;

impl TraceEntry {
    /// The canonical encoding stored under `audit/entry/<kind>/<id>/<seq>`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::TRACE_ENTRY);
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.len(self.rows.len());
        for r in &self.rows {
            w.u32(r.position);
            w.fixed(r.tx_id.as_bytes());
            w.fixed(r.signer.as_bytes());
            w.bytes(r.organisation.as_bytes());
            w.bytes(r.contract.as_bytes());
            w.bytes(r.method.as_bytes());
            w.u32(r.code);
        }
        w.into_bytes()
    }

    /// Decodes an entry read under `key`.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        Self::decode_bytes(bytes).map_err(|e| ExecError::corrupt(key, e))
    }

    /// Decodes an entry's canonical bytes (a report's verifier has no state key).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header("trace.header", tag::TRACE_ENTRY)?;
        let height = Height(r.u64("trace.height")?);
        let timestamp_ms = r.u64("trace.timestamp_ms")?;
        let n = r.len("trace.rows", MAX_ROWS_PER_ENTRY)?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let position = r.u32("trace.position")?;
            let tx_id = Digest(r.array("trace.tx_id")?);
            let signer = Digest(r.array("trace.signer")?);
            let organisation = text(
                "trace.organisation",
                r.bytes("trace.organisation", MAX_NAME)?,
            )?;
            let contract = text("trace.contract", r.bytes("trace.contract", MAX_NAME)?)?;
            let method = text("trace.method", r.bytes("trace.method", MAX_NAME)?)?;
            let code = r.u32("trace.code")?;
            rows.push(TraceRow {
                position,
                tx_id,
                signer,
                organisation,
                contract,
                method,
                code,
            });
        }
        r.finish()?;
        if rows.is_empty() {
            return Err(DecodeError::new(
                "trace.rows",
                DecodeReason::InvalidText {
                    expected: "at least one transaction",
                },
            ));
        }
        Ok(TraceEntry {
            height,
            timestamp_ms,
            rows,
        })
    }
}

fn text(field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| DecodeError::new(field, DecodeReason::InvalidText { expected: "UTF-8" }))
}

/// How the supervisor's freezes are made (genesis `supervision.freeze_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezePolicy {
    /// An auditor of the supervising organisation freezes and unfreezes by a transaction.
    Supervisor,
    /// A freeze or unfreeze is a governance proposal of the supervising organisation, in force
    /// once the organisations voted it (`supervision-freeze`, `supervision-unfreeze`).
    Governance,
}

impl FreezePolicy {
    /// The policy's name in the genesis file.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezePolicy::Supervisor => "supervisor",
            FreezePolicy::Governance => "governance",
        }
    }

    /// Parses a policy's name.
    pub fn parse(s: &str) -> Option<FreezePolicy> {
        [FreezePolicy::Supervisor, FreezePolicy::Governance]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The chain's supervisor (`supervision/supervisor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorRecord {
    /// The supervising organisation: its auditors read everything through the supervision API
    /// and (under [`FreezePolicy::Supervisor`]) freeze.
    pub organisation: String,
    /// How freezes are made.
    pub policy: FreezePolicy,
    /// The height from which this record is in force (0: genesis).
    pub since: Height,
}

impl SupervisorRecord {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::SUPERVISOR);
        w.bytes(self.organisation.as_bytes());
        w.u8(match self.policy {
            FreezePolicy::Supervisor => 1,
            FreezePolicy::Governance => 2,
        });
        w.u64(self.since.0);
        w.into_bytes()
    }

    /// Decodes the record read under `key`.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        Self::decode_bytes(bytes).map_err(|e| ExecError::corrupt(key, e))
    }

    /// Decodes the record's canonical bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header("supervisor.header", tag::SUPERVISOR)?;
        let organisation = text(
            "supervisor.organisation",
            r.bytes("supervisor.organisation", MAX_NAME)?,
        )?;
        let policy = match r.u8("supervisor.policy")? {
            1 => FreezePolicy::Supervisor,
            2 => FreezePolicy::Governance,
            _ => {
                return Err(DecodeError::new(
                    "supervisor.policy",
                    DecodeReason::InvalidText {
                        expected: "1 (supervisor) or 2 (governance)",
                    },
                ));
            }
        };
        let since = Height(r.u64("supervisor.since")?);
        r.finish()?;
        Ok(SupervisorRecord {
            organisation,
            policy,
            since,
        })
    }
}

/// A supervisor's freeze (`supervision/frozen/<kind>/<target>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeRecord {
    /// Why.
    pub reason: String,
    /// The height of the freezing block.
    pub height: Height,
    /// The freezing transaction.
    pub tx_id: Digest,
    /// SM3 of the certificate that signed it (the auditor, or the proposer under governance).
    pub by: Digest,
}

impl FreezeRecord {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::FREEZE);
        w.bytes(self.reason.as_bytes());
        w.u64(self.height.0);
        w.fixed(self.tx_id.as_bytes());
        w.fixed(self.by.as_bytes());
        w.into_bytes()
    }

    /// Decodes the record read under `key`.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        let mut r = Reader::new(bytes);
        let c = |e| ExecError::corrupt(key, e);
        r.header("freeze.header", tag::FREEZE).map_err(c)?;
        let reason = text(
            "freeze.reason",
            r.bytes("freeze.reason", MAX_REASON_LEN).map_err(c)?,
        )
        .map_err(c)?;
        let height = Height(r.u64("freeze.height").map_err(c)?);
        let tx_id = Digest(r.array("freeze.tx_id").map_err(c)?);
        let by = Digest(r.array("freeze.by").map_err(c)?);
        r.finish().map_err(c)?;
        Ok(FreezeRecord {
            reason,
            height,
            tx_id,
            by,
        })
    }
}

/// What the supervisor can freeze.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeKind {
    /// One certificate (target: 64 hex of its SM3 ID).
    Cert,
    /// The people (user, admin, auditor certificates) of an organisation; its nodes keep
    /// running (target: its name).
    Org,
    /// A deployed WASM contract (target: its name).
    Contract,
}

impl FreezeKind {
    /// The kind's name (`cert`, `org`, `contract`).
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeKind::Cert => "cert",
            FreezeKind::Org => "org",
            FreezeKind::Contract => "contract",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<FreezeKind> {
        [FreezeKind::Cert, FreezeKind::Org, FreezeKind::Contract]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_trailing_bytes() {
        let row = |p: u32| TraceRow {
            position: p,
            tx_id: Digest([1; 32]),
            signer: Digest([2; 32]),
            organisation: "Org A".into(),
            contract: "attestation".into(),
            method: "anchor".into(),
            code: 0,
        };
        let e = TraceEntry {
            height: Height(7),
            timestamp_ms: 99,
            rows: vec![row(3), row(5)],
        };
        let b = e.encode();
        assert_eq!(TraceEntry::decode_bytes(&b).unwrap(), e);
        let mut longer = b.clone();
        longer.push(0);
        assert!(TraceEntry::decode_bytes(&longer).is_err());
        let s = SupervisorRecord {
            organisation: "Regulator".into(),
            policy: FreezePolicy::Governance,
            since: Height(0),
        };
        assert_eq!(SupervisorRecord::decode_bytes(&s.encode()).unwrap(), s);
        let f = FreezeRecord {
            reason: "fraud".into(),
            height: Height(4),
            tx_id: Digest([3; 32]),
            by: Digest([4; 32]),
        };
        assert_eq!(FreezeRecord::decode(b"k", &f.encode()).unwrap(), f);
        for k in TraceKind::ALL {
            assert_eq!(TraceKind::parse(k.as_str()), Some(k));
        }
    }
}
