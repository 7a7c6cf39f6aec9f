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
}

impl Receipt {
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
        w.header(tag::RECEIPT);
        w.fixed(self.tx_id.as_bytes());
        match &self.status {
            Status::Success => w.u8(STATUS_SUCCESS),
            Status::Failed { code, message } => {
                w.u8(STATUS_FAILED);
                w.u32(*code);
                w.bytes(message.as_bytes());
            }
        }
        w.len(self.events.len());
        for e in &self.events {
            w.bytes(e.contract.as_bytes());
            w.bytes(e.name.as_bytes());
            w.bytes(&e.data);
        }
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("receipt.header", tag::RECEIPT)?;
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
            let data = r
                .bytes("receipt.events[].data", limits.max_event_data)?
                .to_vec();
            events.push(Event {
                contract,
                name,
                data,
            });
        }
        Ok(Receipt {
            tx_id,
            status,
            events,
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
