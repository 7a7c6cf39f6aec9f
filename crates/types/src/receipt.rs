//! Receipts and events: what executing a transaction produced.

use crate::codec::{self, Decode, DecodeError, DecodeReason, Encode, Limits, Reader, Writer, tag};
use crate::merkle;
use crate::primitives::TxId;
use crypto::Digest;
use crypto_sm::sm3::sm3_parts;

/// Domain tag hashed before the canonical receipt to form its hash (docs/formats.md §4).
pub const RECEIPT_DOMAIN: &[u8] = b"GMCHAIN-RECEIPT-V1\0";

const STATUS_SUCCESS: u8 = 0x00;
const STATUS_FAILED: u8 = 0x01;

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The call completed and its writes were applied.
    Success,
    /// The call failed; its writes were discarded.
    Failed {
        /// The contract's or the executor's error code.
        code: u32,
        /// A human-readable message (UTF-8, bounded).
        message: String,
    },
}

/// An event a contract emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The emitting contract (same alphabet as contract names).
    pub contract: String,
    /// The event name (same alphabet).
    pub name: String,
    /// Topics a reader can filter on (version 2 receipts; at most `Limits::max_topics` of
    /// 1..=`Limits::max_topic_len` bytes each). Always empty in a version 1 receipt.
    pub topics: Vec<Vec<u8>>,
    /// The payload, opaque here.
    pub data: Vec<u8>,
}

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: TxId,
    /// Success or failure.
    pub status: Status,
    /// Events, in emission order (empty on failure by the executor's convention).
    pub events: Vec<Event>,
    /// The fuel the transaction's calls used (docs/contracts.md §3). `Some` is encoded as
    /// version 2 of the receipt, which carries topics and the output too; `None` is a version 1
    /// receipt (written before contracts), which has neither: its events have no topics and its
    /// output is empty.
    pub fuel_used: Option<u64>,
    /// What the call returned (a WASM contract's `set_return`; empty for the built-ins), at
    /// most `Limits::max_output_len` bytes. Always empty in a version 1 receipt.
    pub output: Vec<u8>,
}

impl Receipt {
    /// Returns the format version of the encoding: [`codec::FORMAT_VERSION_2`] when the
    /// receipt reports fuel, else [`codec::FORMAT_VERSION`].
    pub fn version(&self) -> u8 {
        match self.fuel_used {
            Some(_) => codec::FORMAT_VERSION_2,
            None => codec::FORMAT_VERSION,
        }
    }

    /// Returns SM3(`RECEIPT_DOMAIN` ‖ canonical receipt).
    pub fn receipt_hash(&self) -> Digest {
        sm3_parts(&[RECEIPT_DOMAIN, &self.to_bytes()])
    }
}

/// Returns the receipts root: the Merkle root (RFC 6962, SM3) whose data entries are the
/// 32-byte receipt hashes in block order.
pub fn receipts_root(receipts: &[Receipt]) -> Digest {
    let hashes: Vec<[u8; 32]> = receipts.iter().map(|r| r.receipt_hash().0).collect();
    merkle::root(&hashes)
}

impl Encode for Receipt {
    fn encode_to(&self, w: &mut Writer) {
        w.header_version(self.version(), tag::RECEIPT);
        w.fixed(self.tx_id.as_bytes());
        match &self.status {
            Status::Success => w.u8(STATUS_SUCCESS),
            Status::Failed { code, message } => {
                w.u8(STATUS_FAILED);
                w.u32(*code);
                w.bytes(message.as_bytes());
            }
        }
        // Version 1 has no fuel, topics or output: a receipt without fuel carries none (the
        // executor writes version 2 only; version 1 receipts are decoded from older chains).
        debug_assert!(
            self.fuel_used.is_some()
                || (self.output.is_empty() && self.events.iter().all(|e| e.topics.is_empty()))
        );
        if let Some(fuel) = self.fuel_used {
            w.u64(fuel);
        }
        w.len(self.events.len());
        for e in &self.events {
            w.bytes(e.contract.as_bytes());
            w.bytes(e.name.as_bytes());
            if self.fuel_used.is_some() {
                w.len(e.topics.len());
                for t in &e.topics {
                    w.bytes(t);
                }
            }
            w.bytes(&e.data);
        }
        if self.fuel_used.is_some() {
            w.bytes(&self.output);
        }
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        let version = r.header_versions("receipt.header", tag::RECEIPT, codec::FORMAT_VERSION_2)?;
        let v2 = version == codec::FORMAT_VERSION_2;
        let tx_id = TxId(Digest(r.array("receipt.tx_id")?));
        let status = match r.u8("receipt.status")? {
            STATUS_SUCCESS => Status::Success,
            STATUS_FAILED => {
                let code = r.u32("receipt.status.code")?;
                let message = codec::check_text(
                    "receipt.status.message",
                    r.bytes("receipt.status.message", limits.max_message_len)?,
                    limits.max_message_len,
                )?;
                Status::Failed { code, message }
            }
            got => {
                return Err(DecodeError::new(
                    "receipt.status",
                    DecodeReason::UnknownVariant { got },
                ));
            }
        };
        let fuel_used = if v2 {
            Some(r.u64("receipt.fuel_used")?)
        } else {
            None
        };
        let count = r.len("receipt.events", limits.max_events_per_receipt)?;
        let mut events = Vec::new();
        for _ in 0..count {
            let contract = codec::check_name(
                "receipt.events[].contract",
                r.bytes("receipt.events[].contract", limits.max_name_len)?,
                limits.max_name_len,
            )?;
            let name = codec::check_name(
                "receipt.events[].name",
                r.bytes("receipt.events[].name", limits.max_name_len)?,
                limits.max_name_len,
            )?;
            let mut topics = Vec::new();
            if v2 {
                let n = r.len("receipt.events[].topics", limits.max_topics)?;
                for _ in 0..n {
                    let t = r.bytes("receipt.events[].topics[]", limits.max_topic_len)?;
                    if t.is_empty() {
                        return Err(DecodeError::new(
                            "receipt.events[].topics[]",
                            DecodeReason::TooShort { len: 0, min: 1 },
                        ));
                    }
                    topics.push(t.to_vec());
                }
            }
            let data = r
                .bytes("receipt.events[].data", limits.max_event_data)?
                .to_vec();
            events.push(Event {
                contract,
                name,
                topics,
                data,
            });
        }
        let output = if v2 {
            r.bytes("receipt.output", limits.max_output_len)?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Receipt {
            tx_id,
            status,
            events,
            fuel_used,
            output,
        })
    }

    /// Decodes a receipt that fills `bytes`, refusing more than `max_receipt_size` bytes first.
    fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        codec::check_size("receipt", bytes.len(), limits.max_receipt_size)?;
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r, limits)?;
        r.finish()?;
        Ok(value)
    }
}
