//! Typed contract arguments and results (`docs/contracts.md` §2, "Typed arguments and
//! results"): the CLI's side of the encoding the contract SDK (`contracts/sdk`) implements for
//! contracts. [`parse_arg`] turns `u64:5`, `str:hello`, `bytes:0a0b`, `digest:<64 hex>`,
//! `bool:true`, `i64:-3`, `list<u64>:[1,2]` or `(u64,str):(5,"hi")` into an argument's bytes;
//! [`decode_text`] shows a result's bytes by its type in the same syntax.
//!
//! The encoding: `u64`/`i64` 8 bytes and `u32`/`i32` 4 bytes, big-endian, two's complement;
//! `bool` one byte 0 or 1; `str` UTF-8; `bytes` as is; `digest` exactly 32 bytes; a tuple (or
//! a contract's record) `bytes(value)` of each value, nothing after the last; a list `u32 count
//! ‖ bytes(item) × count`, where `bytes(x)` is a u32 length then `x`.
//!
//! The value syntax: integers in decimal, `true`/`false`, a top-level `str` as it is, a
//! top-level `bytes` or `digest` in hex; inside a list `[v,v]` or a tuple `(v,v)`, a `str` in
//! double quotes with `\"` and `\\` escaped and `bytes`/`digest` as `0x` then hex. Both
//! directions are pinned by the known answers of `contracts/sdk/args.kat`, which the SDK's
//! tests read too. Decoding never panics: a list's count is checked against the bytes left,
//! and a type nests at most [`MAX_TYPE_DEPTH`] deep.

use std::fmt;

use thiserror::Error;

/// How deep lists and tuples may nest in a type.
pub const MAX_TYPE_DEPTH: usize = 8;

/// The type of an argument or a result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgType {
    /// 8 bytes, big-endian.
    U64,
    /// 8 bytes, big-endian, two's complement.
    I64,
    /// 4 bytes, big-endian.
    U32,
    /// 4 bytes, big-endian, two's complement.
    I32,
    /// One byte, 0 or 1.
    Bool,
    /// UTF-8.
    Str,
    /// Bytes as they are.
    Bytes,
    /// Exactly 32 bytes.
    Digest,
    /// `list<T>`.
    List(Box<ArgType>),
    /// `(T1,T2,...)`, at least two: a tuple or a contract's record.
    Tuple(Vec<ArgType>),
}

/// Why a type, a value or a result's bytes were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgError {
    /// An argument without its type.
    #[error("argument `{spec}` is not TYPE:VALUE (for example u64:5, str:hello, bytes:0a0b)")]
    NotTyped {
        /// The argument as given.
        spec: String,
    },
    /// A type that does not parse.
    #[error(
        "`{ty}` is not an argument type ({why}, at byte {at}); types are u64, i64, u32, i32, bool, str, bytes, digest, list<T> and (T1,T2,...)"
    )]
    BadType {
        /// The type as given.
        ty: String,
        /// The byte offset where it went wrong.
        at: usize,
        /// What was wrong.
        why: &'static str,
    },
    /// A value that is not of its type.
    #[error("`{value}` is not a {ty} value: {why}")]
    BadValue {
        /// The type.
        ty: String,
        /// The value as given.
        value: String,
        /// What was wrong.
        why: String,
    },
    /// Bytes that do not decode as the type.
    #[error("the bytes are not a {ty}: {path}{why}")]
    Decode {
        /// The type.
        ty: String,
        /// Where inside the value (`item 2: field 0: `), empty at the top.
        path: String,
        /// What was wrong.
        why: String,
    },
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgType::U64 => f.write_str("u64"),
            ArgType::I64 => f.write_str("i64"),
            ArgType::U32 => f.write_str("u32"),
            ArgType::I32 => f.write_str("i32"),
            ArgType::Bool => f.write_str("bool"),
            ArgType::Str => f.write_str("str"),
            ArgType::Bytes => f.write_str("bytes"),
            ArgType::Digest => f.write_str("digest"),
            ArgType::List(item) => write!(f, "list<{item}>"),
            ArgType::Tuple(fields) => {
                f.write_str("(")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{field}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl std::str::FromStr for ArgType {
    type Err = ArgError;

    fn from_str(text: &str) -> Result<ArgType, ArgError> {
        let mut p = TypeParser { text, at: 0 };
        let ty = p.ty(0)?;
        if p.at != text.len() {
            return Err(p.fail("unexpected text after the type"));
        }
        Ok(ty)
    }
}

struct TypeParser<'a> {
    text: &'a str,
    at: usize,
}

impl TypeParser<'_> {
    fn fail(&self, why: &'static str) -> ArgError {
        ArgError::BadType {
            ty: self.text.to_string(),
            at: self.at,
            why,
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn ty(&mut self, depth: usize) -> Result<ArgType, ArgError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(self.fail("lists and tuples nest too deep"));
        }
        if self.eat("list<") {
            let item = self.ty(depth + 1)?;
            if !self.eat(">") {
                return Err(self.fail("expected `>`"));
            }
            return Ok(ArgType::List(Box::new(item)));
        }
        if self.eat("(") {
            let mut fields = vec![self.ty(depth + 1)?];
            while self.eat(",") {
                fields.push(self.ty(depth + 1)?);
            }
            if !self.eat(")") {
                return Err(self.fail("expected `,` or `)`"));
            }
            if fields.len() < 2 {
                return Err(self.fail("a tuple has at least two types"));
            }
            return Ok(ArgType::Tuple(fields));
        }
        let scalars = [
            ("u64", ArgType::U64),
            ("i64", ArgType::I64),
            ("u32", ArgType::U32),
            ("i32", ArgType::I32),
            ("bool", ArgType::Bool),
            ("str", ArgType::Str),
            ("bytes", ArgType::Bytes),
            ("digest", ArgType::Digest),
        ];
        for (name, ty) in scalars {
            let Some(after) = self.text[self.at..].strip_prefix(name) else {
                continue;
            };
            if !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                self.at += name.len();
                return Ok(ty);
            }
        }
        Err(self.fail("unknown type"))
    }
}

/// Parses `TYPE:VALUE` (`u64:5`, `str:hello`, `list<u32>:[1,2]`) into the argument's bytes.
pub fn parse_arg(spec: &str) -> Result<Vec<u8>, ArgError> {
    let Some((ty, value)) = spec.split_once(':') else {
        return Err(ArgError::NotTyped {
            spec: spec.to_string(),
        });
    };
    let ty: ArgType = ty.parse()?;
    encode_text(&ty, value)
}

/// Encodes `value`, written in the top-level syntax of `ty`.
pub fn encode_text(ty: &ArgType, value: &str) -> Result<Vec<u8>, ArgError> {
    let bad = |why: String| ArgError::BadValue {
        ty: ty.to_string(),
        value: value.to_string(),
        why,
    };
    let mut out = Vec::new();
    match ty {
        ArgType::Str => out.extend_from_slice(value.as_bytes()),
        ArgType::Bytes | ArgType::Digest => {
            let digits = value.strip_prefix("0x").unwrap_or(value);
            let bytes = hex::decode(digits).map_err(|e| bad(format!("not hex: {e}")))?;
            if *ty == ArgType::Digest && bytes.len() != 32 {
                return Err(bad(format!("a digest is 32 bytes, got {}", bytes.len())));
            }
            out = bytes;
        }
        ArgType::List(_) | ArgType::Tuple(_) => {
            let mut p = ValueParser {
                text: value,
                at: 0,
                ty,
            };
            p.value(ty, &mut out)?;
            if p.at != value.len() {
                return Err(p.fail("unexpected text after the value"));
            }
        }
        scalar => encode_scalar(scalar, value, &mut out).map_err(bad)?,
    }
    Ok(out)
}

/// Encodes an integer or a bool written as text.
fn encode_scalar(ty: &ArgType, text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let unsigned = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let signed = unsigned
        || text
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let range = |e: std::num::ParseIntError| format!("out of range ({e})");
    let bytes: Vec<u8> = match ty {
        ArgType::U64 | ArgType::U32 if !unsigned => {
            return Err("expected decimal digits".to_string());
        }
        ArgType::I64 | ArgType::I32 if !signed => {
            return Err("expected decimal digits after an optional `-`".to_string());
        }
        ArgType::U64 => text.parse::<u64>().map_err(range)?.to_be_bytes().to_vec(),
        ArgType::I64 => text.parse::<i64>().map_err(range)?.to_be_bytes().to_vec(),
        ArgType::U32 => text.parse::<u32>().map_err(range)?.to_be_bytes().to_vec(),
        ArgType::I32 => text.parse::<i32>().map_err(range)?.to_be_bytes().to_vec(),
        ArgType::Bool => match text {
            "true" => vec![1],
            "false" => vec![0],
            _ => return Err("expected true or false".to_string()),
        },
        _ => return Err("not a scalar".to_string()),
    };
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Appends `bytes(x)` for the bytes `f` appends.
fn framed(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), ArgError>,
) -> Result<(), ArgError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out)?;
    let len = u32::try_from(out.len() - at - 4).map_err(|_| ArgError::BadValue {
        ty: "value".to_string(),
        value: String::new(),
        why: "longer than 4 GiB".to_string(),
    })?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The nested value syntax (inside `[...]` and `(...)`).
struct ValueParser<'a> {
    text: &'a str,
    at: usize,
    ty: &'a ArgType,
}

impl ValueParser<'_> {
    fn fail(&self, why: &str) -> ArgError {
        ArgError::BadValue {
            ty: self.ty.to_string(),
            value: self.text.to_string(),
            why: format!("{why} at byte {}", self.at),
        }
    }

    fn eat(&mut self, token: char) -> bool {
        if self.text[self.at..].starts_with(token) {
            self.at += token.len_utf8();
            true
        } else {
            false
        }
    }

    /// Takes the characters up to the next `,`, `]` or `)`.
    fn token(&mut self) -> &str {
        let rest = &self.text[self.at..];
        let end = rest.find([',', ']', ')']).unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    fn value(&mut self, ty: &ArgType, out: &mut Vec<u8>) -> Result<(), ArgError> {
        match ty {
            ArgType::List(item) => {
                if !self.eat('[') {
                    return Err(self.fail("expected `[`"));
                }
                let count_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let mut count: u32 = 0;
                if !self.eat(']') {
                    loop {
                        framed(out, |out| self.value(item, out))?;
                        count = count.saturating_add(1);
                        if self.eat(']') {
                            break;
                        }
                        if !self.eat(',') {
                            return Err(self.fail("expected `,` or `]`"));
                        }
                    }
                }
                out[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
                Ok(())
            }
            ArgType::Tuple(fields) => {
                if !self.eat('(') {
                    return Err(self.fail("expected `(`"));
                }
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 && !self.eat(',') {
                        return Err(
                            self.fail(&format!("expected `,` and field {i} of {}", fields.len()))
                        );
                    }
                    framed(out, |out| self.value(field, out))?;
                }
                if !self.eat(')') {
                    return Err(self.fail(&format!("expected `)` after {} fields", fields.len())));
                }
                Ok(())
            }
            ArgType::Str => self.string(out),
            ArgType::Bytes | ArgType::Digest => {
                if !self.text[self.at..].starts_with("0x") {
                    return Err(self.fail("expected 0x and hex"));
                }
                self.at += 2;
                let start = self.at;
                let digits = self.token();
                let bytes = hex::decode(digits).map_err(|e| {
                    let mut err = self.fail(&format!("not hex ({e})"));
                    if let ArgError::BadValue { why, .. } = &mut err {
                        *why = format!("not hex ({e}) at byte {start}");
                    }
                    err
                })?;
                if *ty == ArgType::Digest && bytes.len() != 32 {
                    return Err(self.fail(&format!("a digest is 32 bytes, got {}", bytes.len())));
                }
                out.extend_from_slice(&bytes);
                Ok(())
            }
            scalar => {
                let start = self.at;
                let token = self.token().to_string();
                encode_scalar(scalar, &token, out).map_err(|why| ArgError::BadValue {
                    ty: self.ty.to_string(),
                    value: self.text.to_string(),
                    why: format!("{why} (`{token}` at byte {start})"),
                })
            }
        }
    }

    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), ArgError> {
        if !self.eat('"') {
            return Err(self.fail("expected a str in double quotes"));
        }
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(());
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e as u8),
                    _ => {
                        self.at += i;
                        return Err(self.fail("only \\\" and \\\\ are escapes"));
                    }
                },
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        self.at = self.text.len();
        Err(self.fail("a str without its closing quote"))
    }
}

/// Shows `bytes` as a value of `ty` in the syntax [`parse_arg`] takes (the top-level forms).
pub fn decode_text(ty: &ArgType, bytes: &[u8]) -> Result<String, ArgError> {
    let mut out = String::new();
    let mut path = Vec::new();
    write_value(ty, bytes, false, &mut out, &mut path).map_err(|why| ArgError::Decode {
        ty: ty.to_string(),
        path: path.iter().map(|p| format!("{p}: ")).collect(),
        why,
    })?;
    Ok(out)
}

/// Reads `bytes(x)` from the front of `rest`.
fn chunk<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
    let Some((len, tail)) = rest.split_first_chunk::<4>() else {
        return Err(format!("the length of {what} runs past the end"));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if tail.len() < len {
        return Err(format!("{what} runs past the end"));
    }
    let (x, tail) = tail.split_at(len);
    *rest = tail;
    Ok(x)
}

fn write_value(
    ty: &ArgType,
    bytes: &[u8],
    nested: bool,
    out: &mut String,
    path: &mut Vec<String>,
) -> Result<(), String> {
    let fixed = |n: usize| {
        if bytes.len() == n {
            Ok(())
        } else {
            Err(format!("a {ty} is {n} bytes, got {}", bytes.len()))
        }
    };
    match ty {
        ArgType::U64 | ArgType::I64 => {
            fixed(8)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            if *ty == ArgType::U64 {
                out.push_str(&u64::from_be_bytes(b).to_string());
            } else {
                out.push_str(&i64::from_be_bytes(b).to_string());
            }
        }
        ArgType::U32 | ArgType::I32 => {
            fixed(4)?;
            let mut b = [0u8; 4];
            b.copy_from_slice(bytes);
            if *ty == ArgType::U32 {
                out.push_str(&u32::from_be_bytes(b).to_string());
            } else {
                out.push_str(&i32::from_be_bytes(b).to_string());
            }
        }
        ArgType::Bool => match bytes {
            [0] => out.push_str("false"),
            [1] => out.push_str("true"),
            [b] => return Err(format!("a bool is the byte 0 or 1, got 0x{b:02x}")),
            _ => fixed(1)?,
        },
        ArgType::Str => {
            let s = std::str::from_utf8(bytes).map_err(|e| format!("a str must be UTF-8 ({e})"))?;
            if nested {
                out.push('"');
                out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            } else {
                out.push_str(s);
            }
        }
        ArgType::Bytes | ArgType::Digest => {
            if *ty == ArgType::Digest {
                fixed(32)?;
            }
            if nested {
                out.push_str("0x");
            }
            out.push_str(&hex::encode(bytes));
        }
        ArgType::List(item) => {
            let Some((count, mut rest)) = bytes.split_first_chunk::<4>() else {
                return Err("the list's count runs past the end".to_string());
            };
            let count = u32::from_be_bytes(*count) as usize;
            // Each item takes at least its 4-byte length.
            if count > rest.len() / 4 {
                return Err(format!("a list of {count} items runs past the end"));
            }
            out.push('[');
            for i in 0..count {
                if i > 0 {
                    out.push(',');
                }
                let x = chunk(&mut rest, &format!("item {i}"))?;
                path.push(format!("item {i}"));
                write_value(item, x, true, out, path)?;
                path.pop();
            }
            if !rest.is_empty() {
                return Err(format!("{} bytes after the last item", rest.len()));
            }
            out.push(']');
        }
        ArgType::Tuple(fields) => {
            let mut rest = bytes;
            out.push('(');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let x = chunk(&mut rest, &format!("field {i}"))?;
                path.push(format!("field {i}"));
                write_value(field, x, true, out, path)?;
                path.pop();
            }
            if !rest.is_empty() {
                return Err(format!("{} bytes after the last field", rest.len()));
            }
            out.push(')');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kat() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/sdk/args.kat");
        std::fs::read_to_string(path).expect("contracts/sdk/args.kat")
    }

    fn unhex(text: &str) -> Vec<u8> {
        if text == "-" {
            Vec::new()
        } else {
            hex::decode(text).expect("hex in args.kat")
        }
    }

    /// Every line of the SDK's known-answer file holds for the CLI's side too, both ways.
    #[test]
    fn the_sdk_known_answers_hold_both_ways() {
        let (mut answers, mut refusals, mut failures) = (0, 0, Vec::new());
        for (n, line) in kat().lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let result: Result<(), String> = if let Some(rest) = line.strip_prefix('!') {
                refusals += 1;
                let rest = rest.split("  #").next().unwrap_or(rest);
                let (h, ty) = rest.split_once(' ').expect("`!HEX TYPE`");
                let ty: ArgType = ty.trim_end().parse().expect("a type");
                match decode_text(&ty, &unhex(h)) {
                    Ok(v) => Err(format!("decodes to {v:?}")),
                    Err(_) => Ok(()),
                }
            } else {
                answers += 1;
                let (h, spec) = line.split_once(' ').expect("`HEX TYPE:VALUE`");
                let (ty_text, value) = spec.split_once(':').expect("`TYPE:VALUE`");
                let bytes = unhex(h);
                let ty: ArgType = ty_text.parse().expect("a type");
                (|| {
                    if ty.to_string() != ty_text {
                        return Err(format!("type shown as {ty}"));
                    }
                    let encoded = parse_arg(spec).map_err(|e| e.to_string())?;
                    if encoded != bytes {
                        return Err(format!("encodes to {}", hex::encode(encoded)));
                    }
                    let shown = decode_text(&ty, &bytes).map_err(|e| e.to_string())?;
                    if shown != value {
                        return Err(format!("decodes to {shown:?}"));
                    }
                    Ok(())
                })()
            };
            if let Err(e) = result {
                failures.push(format!("args.kat line {}: {line}: {e}", n + 1));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(
            answers >= 30 && refusals >= 20,
            "{answers} answers, {refusals} refusals"
        );
    }

    fn refused(spec: &str) -> String {
        parse_arg(spec).expect_err(spec).to_string()
    }

    #[test]
    fn bad_arguments_are_refused_naming_what_was_wrong() {
        let cases = [
            ("u64", "is not TYPE:VALUE"),
            (
                "u128:5",
                "`u128` is not an argument type (unknown type, at byte 0)",
            ),
            ("u64:-1", "`-1` is not a u64 value: expected decimal digits"),
            ("u64:+5", "`+5` is not a u64 value: expected decimal digits"),
            ("u64:18446744073709551616", "out of range"),
            ("i32:2147483648", "out of range"),
            ("i64:--3", "expected decimal digits after an optional `-`"),
            ("bool:yes", "expected true or false"),
            ("bytes:0", "not hex"),
            ("digest:00", "a digest is 32 bytes, got 1"),
            ("list<u64>:[1,]", "expected decimal digits (`` at byte 3)"),
            ("list<u64>:[1", "expected `,` or `]` at byte 2"),
            ("(u64,str):(1)", "expected `,` and field 1 of 2"),
            ("(u64,str):(1,\"a\",2)", "expected `)` after 2 fields"),
            ("(u64,str):(1,a)", "expected a str in double quotes"),
            ("list<str>:[\"a\\n\"]", "only \\\" and \\\\ are escapes"),
            ("list<str>:[\"a", "a str without its closing quote"),
            ("list<bytes>:[0a]", "expected 0x and hex"),
            ("(u64):(1)", "a tuple has at least two types"),
            ("list<u64>x:[]", "unexpected text after the type"),
            ("list<u64>:[] ", "unexpected text after the value"),
        ];
        for (spec, needle) in cases {
            let e = refused(spec);
            assert!(e.contains(needle), "{spec}: {e}");
        }
        let deep = format!("{}u64{}:[]", "list<".repeat(10), ">".repeat(10));
        assert!(refused(&deep).contains("nest too deep"));
    }

    #[test]
    fn decode_errors_name_the_place() {
        let ty: ArgType = "list<(u64,bool)>".parse().unwrap();
        let bytes = parse_arg("list<(u64,bool)>:[(1,true),(2,false)]").unwrap();
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 7;
        assert_eq!(
            decode_text(&ty, &bad).unwrap_err().to_string(),
            "the bytes are not a list<(u64,bool)>: item 1: field 1: a bool is the byte 0 or 1, got 0x07"
        );
        // A count no bytes can hold is refused before anything else.
        let e = decode_text(&ty, &[0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.to_string().contains("a list of 4294967295 items"), "{e}");
    }
}
