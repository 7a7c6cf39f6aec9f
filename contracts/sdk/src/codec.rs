//! Typed arguments and results: the encoding of `docs/contracts.md` §2.
//!
//! - `u64`/`i64`: 8 bytes, `u32`/`i32`: 4 bytes, big-endian, two's complement;
//! - `bool`: one byte, 0 or 1 (any other byte is refused);
//! - `str` ([`String`]): UTF-8 bytes (invalid UTF-8 is refused);
//! - `bytes` ([`Bytes`]): the bytes as they are;
//! - `digest` (`[u8; 32]`): exactly 32 bytes;
//! - a tuple or a [`record!`](crate::record): `bytes(value)` of each value (a u32 length, then
//!   the value), nothing after the last;
//! - a list (`Vec<T>`): `u32 count ‖ bytes(item) × count`.
//!
//! Decoding never panics and never trusts a count: a list's count is checked against the bytes
//! that are left before anything is allocated. The known answers are `contracts/sdk/args.kat`,
//! which `crates/types` (the CLI's side of the same encoding) reads too.

use std::fmt;

/// Why bytes did not decode as a typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where inside the value, outermost first (`field 2`, `item 0`); empty at the top.
    pub path: Vec<String>,
    /// What was wrong there.
    pub reason: Reason,
}

/// What was wrong with the bytes of one value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A fixed-size value (an integer, a digest) had another length.
    Length {
        /// The type's name (`u64`, `digest`).
        ty: &'static str,
        /// The length the type has.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A `bool` byte other than 0 or 1.
    Bool(u8),
    /// Invalid UTF-8 in a `str`.
    Utf8,
    /// A u32 length or count, or the bytes it announces, run past the end.
    Truncated {
        /// What was being read (`the length of field 2`).
        what: String,
    },
    /// A well-formed value that is not one of those allowed (a role that does not exist).
    Invalid {
        /// What was wrong.
        what: String,
    },
    /// Bytes after the last field or item.
    Trailing {
        /// How many bytes are left over.
        extra: usize,
    },
}

impl DecodeError {
    fn new(reason: Reason) -> Self {
        DecodeError {
            path: Vec::new(),
            reason,
        }
    }

    /// Returns the error with `step` (`field 2`, `item 0`) put in front of its path.
    pub fn within(mut self, step: String) -> Self {
        self.path.insert(0, step);
        self
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Length { ty, expected, got } => {
                write!(f, "a {ty} is {expected} bytes, got {got}")
            }
            Reason::Bool(b) => write!(f, "a bool is the byte 0 or 1, got 0x{b:02x}"),
            Reason::Utf8 => f.write_str("a str must be valid UTF-8"),
            Reason::Truncated { what } => write!(f, "{what} runs past the end"),
            Reason::Invalid { what } => f.write_str(what),
            Reason::Trailing { extra } => {
                write!(f, "{extra} bytes left after the last value")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.path {
            write!(f, "{step}: ")?;
        }
        self.reason.fmt(f)
    }
}

impl std::error::Error for DecodeError {}

/// A value with a typed-argument encoding: a method's argument, a result, a stored value.
pub trait Arg: Sized {
    /// Returns the type's name as `gmchain contract call --arg` spells it (`u64`,
    /// `list<str>`, `(u64,str)`).
    fn type_name() -> String;

    /// Appends the encoding to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// Decodes the whole of `bytes`: nothing may be left over.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// Returns the encoding.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// The `bytes` type: a byte string taken as it is. (`u8` has no typed encoding of its own, so a
/// `Vec<u8>` is not an [`Arg`]; byte strings have this type.)
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

/// Appends `bytes(x)`: a u32 big-endian length, then `x`.
pub fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    out.extend_from_slice(chunk);
}

/// Appends `bytes(encoding of value)` without building the encoding twice.
pub fn put_arg<T: Arg>(out: &mut Vec<u8>, value: &T) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    value.encode_to(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// "the length of `what`", formatted only when shown.
struct LengthOf<'w, W: fmt::Display>(&'w W);

impl<W: fmt::Display> fmt::Display for LengthOf<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the length of {}", self.0)
    }
}

/// "`what` `n`" (`item 3`, `argument 0`), formatted only when shown.
pub struct Nth(pub &'static str, pub usize);

impl fmt::Display for Nth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// Reads length-prefixed chunks from the front of a byte string.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts at the front of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Returns how many bytes are left.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Reads a u32 big-endian; `what` names it in the error. The names are formatted only on
    /// an error: formatting costs a contract thousands of instructions of fuel.
    pub fn u32(&mut self, what: impl fmt::Display) -> Result<u32, DecodeError> {
        if self.rest.len() < 4 {
            return Err(DecodeError::new(Reason::Truncated {
                what: what.to_string(),
            }));
        }
        let (head, tail) = self.rest.split_at(4);
        self.rest = tail;
        Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
    }

    /// Reads `n` bytes; `what` names them in the error.
    pub fn take(&mut self, n: usize, what: impl fmt::Display) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::new(Reason::Truncated {
                what: what.to_string(),
            }));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads `bytes(x)` and returns `x`; `what` names it in the error.
    pub fn chunk(&mut self, what: impl fmt::Display) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(LengthOf(&what))? as usize;
        self.take(len, what)
    }

    /// Reads `bytes(x)` and decodes `x` as a `T`; `what` names it in the error.
    pub fn arg<T: Arg>(&mut self, what: impl fmt::Display) -> Result<T, DecodeError> {
        let chunk = self.chunk(&what)?;
        T::decode(chunk).map_err(|e| e.within(what.to_string()))
    }

    /// Succeeds when nothing is left.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(Reason::Trailing {
                extra: self.rest.len(),
            }))
        }
    }
}

fn fixed<const N: usize>(ty: &'static str, bytes: &[u8]) -> Result<[u8; N], DecodeError> {
    if bytes.len() != N {
        return Err(DecodeError::new(Reason::Length {
            ty,
            expected: N,
            got: bytes.len(),
        }));
    }
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

macro_rules! integer {
    ($($t:ty => $name:literal),*) => {$(
        impl Arg for $t {
            fn type_name() -> String {
                $name.to_string()
            }
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                fixed($name, bytes).map(<$t>::from_be_bytes)
            }
        }
    )*};
}

integer!(u64 => "u64", i64 => "i64", u32 => "u32", i32 => "i32");

impl Arg for bool {
    fn type_name() -> String {
        "bool".to_string()
    }
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match fixed::<1>("bool", bytes)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::new(Reason::Bool(b))),
        }
    }
}

impl Arg for String {
    fn type_name() -> String {
        "str".to_string()
    }
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::new(Reason::Utf8))
    }
}

impl Arg for Bytes {
    fn type_name() -> String {
        "bytes".to_string()
    }
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Bytes(bytes.to_vec()))
    }
}

impl Arg for [u8; 32] {
    fn type_name() -> String {
        "digest".to_string()
    }
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        fixed("digest", bytes)
    }
}

impl<T: Arg> Arg for Vec<T> {
    fn type_name() -> String {
        format!("list<{}>", T::type_name())
    }
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        for item in self {
            put_arg(out, item);
        }
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.u32("the list's count")? as usize;
        // Each item takes at least its 4-byte length: a count the bytes cannot hold is refused
        // before anything is allocated.
        if count > r.remaining() / 4 {
            return Err(DecodeError::new(Reason::Truncated {
                what: format!("a list of {count} items"),
            }));
        }
        let mut items = Vec::with_capacity(count);
        for i in 0..count {
            items.push(r.arg(Nth("item", i))?);
        }
        r.finish()?;
        Ok(items)
    }
}

macro_rules! tuple {
    ($($name:ident : $idx:tt),+) => {
        impl<$($name: Arg),+> Arg for ($($name,)+) {
            fn type_name() -> String {
                let names: Vec<String> = vec![$($name::type_name()),+];
                format!("({})", names.join(","))
            }
            fn encode_to(&self, out: &mut Vec<u8>) {
                $(put_arg(out, &self.$idx);)+
            }
            fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(bytes);
                let value = ($(r.arg::<$name>(concat!("field ", stringify!($idx)))?,)+);
                r.finish()?;
                Ok(value)
            }
        }
    };
}

tuple!(A: 0, B: 1);
tuple!(A: 0, B: 1, C: 2);
tuple!(A: 0, B: 1, C: 2, D: 3);
tuple!(A: 0, B: 1, C: 2, D: 3, E: 4);
tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);

/// Defines a struct whose typed encoding is a record: `bytes(field)` of each field in order,
/// the same bytes as the tuple of its field types (`gmchain contract call` shows it as one).
///
/// ```
/// gmchain_sdk::record! {
///     /// A licence as `check` returns it.
///     pub struct Licence {
///         pub holder: String,
///         pub valid_until_ms: u64,
///     }
/// }
/// ```
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty),+
        }

        impl $crate::Arg for $name {
            fn type_name() -> String {
                let names: Vec<String> = vec![$(<$ty as $crate::Arg>::type_name()),+];
                format!("({})", names.join(","))
            }
            fn encode_to(&self, out: &mut Vec<u8>) {
                $($crate::codec::put_arg(out, &self.$field);)+
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::DecodeError> {
                let mut r = $crate::codec::Reader::new(bytes);
                $(let $field = r.arg::<$ty>(concat!("field `", stringify!($field), "`"))?;)+
                r.finish()?;
                Ok($name { $($field),+ })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn integers_are_big_endian_twos_complement() {
        assert_eq!(hex(&5u64.encode()), "0000000000000005");
        assert_eq!(hex(&(-3i64).encode()), "fffffffffffffffd");
        assert_eq!(hex(&(-1i32).encode()), "ffffffff");
        assert_eq!(u32::decode(&[0, 0, 1, 0]), Ok(256));
    }

    #[test]
    fn wrong_lengths_are_refused_with_the_type() {
        let e = u64::decode(&[1, 2, 3]).unwrap_err();
        assert_eq!(e.to_string(), "a u64 is 8 bytes, got 3");
        let e = <[u8; 32]>::decode(&[0; 31]).unwrap_err();
        assert_eq!(e.to_string(), "a digest is 32 bytes, got 31");
    }

    #[test]
    fn bool_refuses_other_bytes() {
        assert_eq!(bool::decode(&[1]), Ok(true));
        assert_eq!(bool::decode(&[0]), Ok(false));
        assert_eq!(bool::decode(&[2]).unwrap_err().reason, Reason::Bool(2));
        assert!(bool::decode(&[]).is_err());
    }

    #[test]
    fn str_refuses_invalid_utf8() {
        assert_eq!(String::decode(&[0xff]).unwrap_err().reason, Reason::Utf8);
    }

    #[test]
    fn nested_errors_name_the_place() {
        // (u64, list<bool>) with a bad bool in item 1 of field 1.
        let value = (7u64, vec![true, false]);
        let mut bytes = value.encode();
        let last = bytes.len() - 1;
        bytes[last] = 9;
        let e = <(u64, Vec<bool>)>::decode(&bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field 1: item 1: a bool is the byte 0 or 1, got 0x09"
        );
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let e = Vec::<u64>::decode(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap_err();
        assert!(e.to_string().contains("4294967295 items"), "{e}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = (1u32, String::from("a")).encode();
        bytes.push(0);
        let e = <(u32, String)>::decode(&bytes).unwrap_err();
        assert_eq!(e.reason, Reason::Trailing { extra: 1 });
    }

    crate::record! {
        struct Entry {
            height: u64,
            note: String,
        }
    }

    #[test]
    fn a_record_encodes_as_the_tuple_of_its_fields() {
        let entry = Entry {
            height: 3,
            note: "ok".to_string(),
        };
        assert_eq!(entry.encode(), (3u64, String::from("ok")).encode());
        assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
        assert_eq!(Entry::type_name(), "(u64,str)");
        let e = Entry::decode(&[0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(e.to_string(), "field `height`: a u64 is 8 bytes, got 1");
    }
}
