//! The canonical binary codec (docs/formats.md §1): big-endian fixed-width integers, byte
//! strings with a u32 length prefix, vectors with a u32 count prefix, and a version byte and
//! type tag at the start of every top-level object.
//!
//! Canonical means one value has exactly one encoding and one encoding has at most one value:
//! there are no optional fields, no varints, no alternative forms, and every decoder consumes
//! the whole buffer. Every decoder takes [`Limits`] and checks each length and count against
//! them before allocating, so a few hostile bytes cannot ask for gigabytes.

use thiserror::Error;

/// The format version every top-level object of this release starts with, except the two that
/// have a second version: a transaction that names a fuel limit and a receipt that reports fuel,
/// topics and output ([`FORMAT_VERSION_2`]).
pub const FORMAT_VERSION: u8 = 1;

/// The second version of the transaction and receipt encodings (issue 14: contracts). Version 1
/// of both stays readable, and is still written for a transaction without a fuel limit.
pub const FORMAT_VERSION_2: u8 = 2;

/// Type tags: the second byte of each top-level object (docs/formats.md §2).
pub mod tag {
    /// An unsigned transaction body.
    pub const TRANSACTION: u8 = 0x01;
    /// A signed transaction.
    pub const SIGNED_TX: u8 = 0x02;
    /// A block header.
    pub const BLOCK_HEADER: u8 = 0x03;
    /// A block.
    pub const BLOCK: u8 = 0x04;
    /// A receipt.
    pub const RECEIPT: u8 = 0x05;
    /// A Merkle inclusion proof.
    pub const INCLUSION_PROOF: u8 = 0x06;
    /// A block seal (a validator signature over a block hash).
    pub const BLOCK_SEAL: u8 = 0x07;
    /// A validator set.
    pub const VALIDATOR_SET: u8 = 0x08;
    /// A consensus vote (prevote or precommit).
    pub const VOTE: u8 = 0x09;
    /// A signed vote.
    pub const SIGNED_VOTE: u8 = 0x0A;
    /// A block proposal.
    pub const PROPOSAL: u8 = 0x0B;
    /// A signed proposal.
    pub const SIGNED_PROPOSAL: u8 = 0x0C;
    /// A commit certificate.
    pub const COMMIT_CERTIFICATE: u8 = 0x0D;
    /// A v2 block header (with the consensus commitments).
    pub const BLOCK_HEADER_V2: u8 = 0x0E;
}

/// Upper bounds that every decoder enforces. Values from the network, from disk or from a user
/// are decoded only under limits; the node takes them from its chain configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded signed transaction, in bytes.
    pub max_tx_size: usize,
    /// Largest sender certificate (DER), in bytes.
    pub max_cert_size: usize,
    /// Most arguments in a call.
    pub max_args: usize,
    /// Largest single argument, in bytes.
    pub max_arg_size: usize,
    /// Longest contract, method or event name, in bytes.
    pub max_name_len: usize,
    /// Longest SM2 user ID in a signed transaction, in bytes (never above 8191, ENTL's bound).
    pub max_user_id_len: usize,
    /// Most transactions in a block.
    pub max_txs_per_block: usize,
    /// Largest encoded block, in bytes. Block assembly fills blocks up to
    /// [`Limits::block_tx_budget`], which is derived from it, and storage refuses a block
    /// above it, so every stored block reads back.
    pub max_block_size: usize,
    /// Most events in a receipt.
    pub max_events_per_receipt: usize,
    /// Largest event payload, in bytes.
    pub max_event_data: usize,
    /// Longest failure message in a receipt, in bytes.
    pub max_message_len: usize,
    /// Largest encoded receipt, in bytes.
    pub max_receipt_size: usize,
    /// Most hashes in an inclusion proof (64 covers any tree of up to 2^64 leaves).
    pub max_proof_len: usize,
    /// Most topics of an event (version 2 receipts).
    pub max_topics: usize,
    /// Longest topic, in bytes.
    pub max_topic_len: usize,
    /// Largest output of a call in a receipt, in bytes.
    pub max_output_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tx_size: 128 * 1024,
            max_cert_size: 8 * 1024,
            max_args: 32,
            max_arg_size: 64 * 1024,
            max_name_len: 64,
            max_user_id_len: 256,
            max_txs_per_block: 10_000,
            max_block_size: 16 * 1024 * 1024,
            max_events_per_receipt: 64,
            max_event_data: 16 * 1024,
            max_message_len: 1024,
            max_receipt_size: 2 * 1024 * 1024,
            max_proof_len: 64,
            max_topics: 4,
            max_topic_len: 64,
            max_output_len: 64 * 1024,
        }
    }
}

/// Why a decode failed, without the field (see [`DecodeError`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeReason {
    /// The buffer ended before the field did.
    #[error("input ends early: {needed} more bytes needed, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    /// A length, count or whole object over its limit.
    #[error("{len} exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
    /// A length below the field's minimum (an empty name).
    #[error("{len} is below the minimum of {min}")]
    TooShort { len: usize, min: usize },
    /// A count that disagrees with the count another field declared (a block's transactions
    /// against `header.tx_count`).
    #[error("count {count} differs from {declared_by} = {declared}")]
    CountMismatch {
        count: usize,
        declared: u32,
        declared_by: &'static str,
    },
    /// Bytes left after the object.
    #[error("{count} trailing bytes after the object")]
    TrailingBytes { count: usize },
    /// A format version this release does not read.
    #[error("unsupported format version {got} (this release reads {supported})")]
    UnsupportedVersion { got: u8, supported: u8 },
    /// The type tag of another object.
    #[error("type tag {got:#04x}, expected {expected:#04x}")]
    WrongType { got: u8, expected: u8 },
    /// An enum discriminant with no variant.
    #[error("unknown variant tag {got:#04x}")]
    UnknownVariant { got: u8 },
    /// Bytes that are not in the field's character set.
    #[error("invalid characters: {expected}")]
    InvalidText { expected: &'static str },
    /// Entries out of the one order the encoding allows (so that a value has one encoding).
    #[error("not canonical: {expected}")]
    NotCanonical { expected: &'static str },
    /// A signature that is not strict GM/T 0009 DER, or a user ID ENTL cannot describe.
    #[error("invalid cryptographic value: {0}")]
    Crypto(crypto::CryptoError),
}

/// A decode failure: which field, and why. Decoders never panic; they return this.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("cannot decode {field}: {reason}")]
pub struct DecodeError {
    /// The field being read, as named in docs/formats.md (`tx.call.args`).
    pub field: &'static str,
    /// What was wrong with it.
    pub reason: DecodeReason,
}

impl DecodeError {
    /// Returns an error for `field`.
    pub fn new(field: &'static str, reason: DecodeReason) -> Self {
        Self { field, reason }
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the canonical encoding to `w`.
    fn encode_to(&self, w: &mut Writer);

    /// Returns the canonical encoding.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_to(&mut w);
        w.into_bytes()
    }
}

/// A value decodable from outside bytes under [`Limits`].
pub trait Decode: Sized {
    /// Reads one value from `r`, leaving the rest of the buffer.
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError>;

    /// Decodes a value that must fill `bytes` exactly: trailing bytes are an error.
    fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r, limits)?;
        r.finish()?;
        Ok(value)
    }
}

/// Builds a canonical encoding.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Returns an empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes bytes with no length prefix (fixed-size fields).
    pub fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Writes a u32 length or count prefix.
    ///
    /// A length above u32::MAX cannot be encoded; it is written as u32::MAX, which no limit
    /// admits, so such a value never decodes (and no decoded value is that large).
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Writes a byte string: u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.fixed(v);
    }

    /// Writes the version byte and type tag that open a top-level object.
    pub fn header(&mut self, type_tag: u8) {
        self.header_version(FORMAT_VERSION, type_tag);
    }

    /// Writes the version byte `version` and the type tag of an object with several versions.
    pub fn header_version(&mut self, version: u8, type_tag: u8) {
        self.u8(version);
        self.u8(type_tag);
    }
}

/// Reads a canonical encoding, naming the field on every failure.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Returns how many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(
                "end",
                DecodeReason::TrailingBytes {
                    count: self.buf.len(),
                },
            ))
        }
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::new(
                field,
                DecodeReason::Truncated {
                    needed: n,
                    remaining: self.buf.len(),
                },
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a u32 length or count and checks it against `max` before anything is allocated.
    pub fn len(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = self.u32(field)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max {
            return Err(DecodeError::new(
                field,
                DecodeReason::TooLong { len: n, max },
            ));
        }
        Ok(n)
    }

    /// Reads a byte string of at most `max` bytes.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.len(field, max)?;
        self.take(field, n)
    }

    /// Reads the version byte and a type tag that must be one of `tags`, and returns the tag.
    pub fn header_of(&mut self, field: &'static str, tags: &[u8]) -> Result<u8, DecodeError> {
        let first = tags.first().copied().unwrap_or_default();
        match self.header(field, first) {
            Ok(()) => Ok(first),
            Err(DecodeError {
                reason: DecodeReason::WrongType { got, .. },
                ..
            }) if tags.contains(&got) => Ok(got),
            Err(e) => Err(e),
        }
    }

    /// Reads and checks the version byte and type tag of a top-level object.
    pub fn header(&mut self, field: &'static str, type_tag: u8) -> Result<(), DecodeError> {
        self.header_versions(field, type_tag, FORMAT_VERSION)
            .map(|_| ())
    }

    /// Reads the version byte, which must lie in `FORMAT_VERSION..=newest`, and checks the type
    /// tag; returns the version.
    pub fn header_versions(
        &mut self,
        field: &'static str,
        type_tag: u8,
        newest: u8,
    ) -> Result<u8, DecodeError> {
        let version = self.u8(field)?;
        if !(FORMAT_VERSION..=newest).contains(&version) {
            return Err(DecodeError::new(
                field,
                DecodeReason::UnsupportedVersion {
                    got: version,
                    supported: newest,
                },
            ));
        }
        let got = self.u8(field)?;
        if got != type_tag {
            return Err(DecodeError::new(
                field,
                DecodeReason::WrongType {
                    got,
                    expected: type_tag,
                },
            ));
        }
        Ok(version)
    }
}

/// Fails if a whole object is larger than `max` (checked before decoding starts).
pub(crate) fn check_size(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::new(field, DecodeReason::TooLong { len, max }));
    }
    Ok(())
}

/// Validates a name (contract, method, event): 1..=`max` bytes of printable ASCII without
/// spaces (0x21..=0x7e). Names are identifiers, so one byte sequence is one name.
pub(crate) fn check_name(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<String, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::new(
            field,
            DecodeReason::TooShort { len: 0, min: 1 },
        ));
    }
    check_size(field, bytes.len(), max)?;
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(DecodeError::new(
            field,
            DecodeReason::InvalidText {
                expected: "printable ASCII without spaces (0x21-0x7e)",
            },
        ));
    }
    // Every byte is ASCII, so this cannot fail; map the impossible error rather than unwrap.
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        DecodeError::new(
            field,
            DecodeReason::InvalidText {
                expected: "printable ASCII",
            },
        )
    })
}

/// Validates UTF-8 text of at most `max` bytes.
pub(crate) fn check_text(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<String, DecodeError> {
    check_size(field, bytes.len(), max)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| DecodeError::new(field, DecodeReason::InvalidText { expected: "UTF-8" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut w = Writer::new();
        w.u32(0x0102_0304);
        w.u64(5);
        w.bytes(b"ab");
        assert_eq!(
            w.into_bytes(),
            [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, b'a', b'b']
        );
    }

    #[test]
    fn length_over_limit_is_refused_before_reading() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        let e = r.bytes("x", 10).unwrap_err();
        assert_eq!(e.field, "x");
        assert!(matches!(e.reason, DecodeReason::TooLong { max: 10, .. }));
    }

    #[test]
    fn truncated_and_trailing() {
        let mut r = Reader::new(&[0, 0, 0, 3, 1]);
        assert!(matches!(
            r.bytes("x", 10).unwrap_err().reason,
            DecodeReason::Truncated {
                needed: 3,
                remaining: 1
            }
        ));
        let mut r = Reader::new(&[1, 2]);
        r.u8("a").unwrap();
        assert!(matches!(
            r.finish().unwrap_err().reason,
            DecodeReason::TrailingBytes { count: 1 }
        ));
    }

    #[test]
    fn header_checks_version_then_tag() {
        let e = Reader::new(&[2, 1]).header("h", 1).unwrap_err();
        assert!(matches!(
            e.reason,
            DecodeReason::UnsupportedVersion { got: 2, .. }
        ));
        let e = Reader::new(&[1, 2]).header("h", 1).unwrap_err();
        assert!(matches!(
            e.reason,
            DecodeReason::WrongType {
                got: 2,
                expected: 1
            }
        ));
    }

    #[test]
    fn names() {
        assert!(check_name("n", b"transfer", 64).is_ok());
        assert!(check_name("n", b"", 64).is_err());
        assert!(check_name("n", b"a b", 64).is_err());
        assert!(check_name("n", "转账".as_bytes(), 64).is_err());
        assert!(check_name("n", &[b'a'; 65], 64).is_err());
        assert!(check_text("m", "余额不足".as_bytes(), 64).is_ok());
        assert!(check_text("m", &[0xff], 64).is_err());
    }
}
