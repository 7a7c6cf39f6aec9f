//! The SDK's side of the known answers in `contracts/sdk/args.kat` (`crates/types` reads the
//! same file for the CLI's side). Each answer line is checked both ways: the bytes decode to a
//! value whose text is the line's value (and whose type name is the line's type), and that
//! value encodes to the bytes again. Each refusal line must not decode.

use crate::codec::{Arg, Bytes};

const KAT: &str = include_str!("../args.kat");

/// The value syntax of the KAT file (and of `gmchain contract call --arg`).
trait Text {
    fn text(&self, nested: bool) -> String;
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Text for $t {
            fn text(&self, _nested: bool) -> String {
                self.to_string()
            }
        }
    )*};
}

plain!(u64, i64, u32, i32, bool);

fn hex(bytes: &[u8], nested: bool) -> String {
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if nested {
        format!("0x{h}")
    } else {
        h
    }
}

impl Text for String {
    fn text(&self, nested: bool) -> String {
        if nested {
            format!("\"{}\"", self.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            self.clone()
        }
    }
}

impl Text for Bytes {
    fn text(&self, nested: bool) -> String {
        hex(&self.0, nested)
    }
}

impl Text for [u8; 32] {
    fn text(&self, nested: bool) -> String {
        hex(self, nested)
    }
}

impl<T: Text> Text for Vec<T> {
    fn text(&self, _nested: bool) -> String {
        let items: Vec<String> = self.iter().map(|i| i.text(true)).collect();
        format!("[{}]", items.join(","))
    }
}

macro_rules! tuple_text {
    ($($name:ident : $idx:tt),+) => {
        impl<$($name: Text),+> Text for ($($name,)+) {
            fn text(&self, _nested: bool) -> String {
                let fields: Vec<String> = vec![$(self.$idx.text(true)),+];
                format!("({})", fields.join(","))
            }
        }
    };
}

tuple_text!(A: 0, B: 1);
tuple_text!(A: 0, B: 1, C: 2);
tuple_text!(A: 0, B: 1, C: 2, D: 3);

/// Runs `$body` with `$T` the Rust type of the KAT type `$ty`.
macro_rules! with_type {
    ($ty:expr, $T:ident => $body:expr) => {
        match $ty {
            "u64" => {
                type $T = u64;
                $body
            }
            "i64" => {
                type $T = i64;
                $body
            }
            "u32" => {
                type $T = u32;
                $body
            }
            "i32" => {
                type $T = i32;
                $body
            }
            "bool" => {
                type $T = bool;
                $body
            }
            "str" => {
                type $T = String;
                $body
            }
            "bytes" => {
                type $T = Bytes;
                $body
            }
            "digest" => {
                type $T = [u8; 32];
                $body
            }
            "list<u64>" => {
                type $T = Vec<u64>;
                $body
            }
            "list<str>" => {
                type $T = Vec<String>;
                $body
            }
            "list<list<u32>>" => {
                type $T = Vec<Vec<u32>>;
                $body
            }
            "list<(u64,str)>" => {
                type $T = Vec<(u64, String)>;
                $body
            }
            "(u64,str)" => {
                type $T = (u64, String);
                $body
            }
            "(i32,bytes)" => {
                type $T = (i32, Bytes);
                $body
            }
            "(bool,bytes,digest)" => {
                type $T = (bool, Bytes, [u8; 32]);
                $body
            }
            "(str,list<bool>)" => {
                type $T = (String, Vec<bool>);
                $body
            }
            "(str,str,str,u64)" => {
                type $T = (String, String, String, u64);
                $body
            }
            other => Err(format!(
                "the SDK's KAT test has no Rust type for `{other}`: add it"
            )),
        }
    };
}

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    assert!(text.len() % 2 == 0, "odd hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn answer<T: Arg + Text>(ty: &str, bytes: &[u8], value: &str) -> Result<(), String> {
    if T::type_name() != ty {
        return Err(format!("type name {} for {ty}", T::type_name()));
    }
    let decoded = T::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
    if decoded.text(false) != value {
        return Err(format!("decodes to {:?}", decoded.text(false)));
    }
    if decoded.encode() != bytes {
        return Err(format!("encodes to {}", hex(&decoded.encode(), false)));
    }
    Ok(())
}

fn refusal<T: Arg + Text>(bytes: &[u8]) -> Result<(), String> {
    match T::decode(bytes) {
        Ok(v) => Err(format!("decodes to {:?}", v.text(false))),
        Err(_) => Ok(()),
    }
}

#[test]
fn every_known_answer_holds_both_ways() {
    let mut answers = 0;
    let mut refusals = 0;
    let mut failures = Vec::new();
    for (n, line) in KAT.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let result = if let Some(rest) = line.strip_prefix('!') {
            let rest = rest.split("  #").next().unwrap_or(rest);
            let (h, ty) = rest.split_once(' ').expect("`!HEX TYPE`");
            refusals += 1;
            with_type!(ty.trim_end(), T => refusal::<T>(&unhex(h)))
        } else {
            let (h, spec) = line.split_once(' ').expect("`HEX TYPE:VALUE`");
            let (ty, value) = spec.split_once(':').expect("`TYPE:VALUE`");
            answers += 1;
            with_type!(ty, T => answer::<T>(ty, &unhex(h), value))
        };
        if let Err(e) = result {
            failures.push(format!("args.kat line {}: {line}: {e}", n + 1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The file is read whole: a truncated or emptied file fails here.
    assert!(
        answers >= 30 && refusals >= 20,
        "{answers} answers, {refusals} refusals"
    );
}
