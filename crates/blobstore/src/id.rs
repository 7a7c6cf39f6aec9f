//! Blob identifiers: the SM3 of a blob's bytes.

use std::fmt;
use std::str::FromStr;

use crypto::Digest;

/// A blob's identifier: the SM3 digest of its bytes (for a dataset version, the catalogue's
/// `payload_sm3`, header included). Written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// The identifier with these digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> BlobId {
        BlobId(bytes)
    }

    /// The identifier of `bytes`: their SM3 digest.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId::from(crypto_sm::sm3::sm3(bytes))
    }

    /// Returns the digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        s
    }

    /// Parses exactly 64 lower-case hex digits (the form of file names and of
    /// [`to_hex`](Self::to_hex); upper case is refused so that one id has one name).
    pub fn from_hex(s: &str) -> Result<BlobId, ParseBlobIdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseBlobIdError);
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(ParseBlobIdError),
        };
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Ok(BlobId(out))
    }
}

impl From<Digest> for BlobId {
    fn from(d: Digest) -> BlobId {
        BlobId(d.0)
    }
}

impl From<BlobId> for Digest {
    fn from(id: BlobId) -> Digest {
        Digest(id.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = ParseBlobIdError;

    fn from_str(s: &str) -> Result<BlobId, ParseBlobIdError> {
        BlobId::from_hex(s)
    }
}

/// A string that is not 64 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a blob id: a blob id is the SM3 of the blob, 64 lower-case hex digits")]
pub struct ParseBlobIdError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_other_forms() {
        // GB/T 32905-2016 Annex A.1: SM3("abc").
        let abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        let id = BlobId::of(b"abc");
        assert_eq!(id.to_hex(), abc);
        assert_eq!(id.to_string(), abc);
        assert_eq!(format!("{id:?}"), format!("BlobId({abc})"));
        assert_eq!(abc.parse::<BlobId>(), Ok(id));
        assert_eq!(Digest::from(id), crypto_sm::sm3::sm3(b"abc"));
        for bad in [
            &abc[..63],
            &format!("{abc}0"),
            &abc.to_uppercase(),
            &abc.replacen('6', "g", 1),
            "",
        ] {
            assert_eq!(BlobId::from_hex(bad), Err(ParseBlobIdError), "{bad}");
        }
    }
}
