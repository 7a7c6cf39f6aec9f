//! The known-answer vectors, compiled in, each with its source.

use serde_json::Value;
use std::sync::OnceLock;

const FILES: &[(&str, &str)] = &[
    ("sm3", include_str!("../../../conformance/vectors/sm3.json")),
    ("sm4", include_str!("../../../conformance/vectors/sm4.json")),
    ("sm2", include_str!("../../../conformance/vectors/sm2.json")),
    (
        "gmt0009",
        include_str!("../../../conformance/vectors/gmt0009.json"),
    ),
];

/// One vector: its id, source and fields.
#[derive(Debug, Clone)]
pub struct Vector {
    pub id: String,
    pub source: String,
    pub fields: Value,
}

impl Vector {
    /// Returns a hex field as bytes.
    pub fn bytes(&self, field: &str) -> Result<Vec<u8>, String> {
        let s = self
            .fields
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("vector {}: missing field {field}", self.id))?;
        hex::decode(s).map_err(|e| format!("vector {}: field {field} is not hex: {e}", self.id))
    }

    /// Returns a 32-byte hex field.
    pub fn array32(&self, field: &str) -> Result<[u8; 32], String> {
        let b = self.bytes(field)?;
        b.try_into()
            .map_err(|_| format!("vector {}: field {field} is not 32 bytes", self.id))
    }

    /// Returns an integer field.
    pub fn int(&self, field: &str) -> Result<u64, String> {
        self.fields
            .get(field)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("vector {}: missing integer {field}", self.id))
    }

    /// Returns a text field.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// Returns the message: `msg` hex, or `msg_repeat {hex, count}`.
    pub fn message(&self) -> Result<Vec<u8>, String> {
        if let Some(rep) = self.fields.get("msg_repeat") {
            let h = rep
                .get("hex")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("vector {}: msg_repeat.hex", self.id))?;
            let n = rep
                .get("count")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("vector {}: msg_repeat.count", self.id))?;
            let unit = hex::decode(h).map_err(|e| format!("vector {}: {e}", self.id))?;
            return Ok(unit.repeat(n as usize));
        }
        self.bytes("msg")
    }
}

fn all() -> &'static Vec<(String, Vec<Vector>)> {
    static ALL: OnceLock<Vec<(String, Vec<Vector>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, text)| {
                let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                let list = parsed
                    .get("vectors")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| Vector {
                                id: v
                                    .get("id")
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                                    .to_string(),
                                source: v
                                    .get("source")
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                                    .to_string(),
                                fields: v.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (name.to_string(), list)
            })
            .collect()
    })
}

/// Returns the vectors of one file with the given kind.
pub fn of_kind(file: &str, kind: &str) -> Vec<Vector> {
    all()
        .iter()
        .filter(|(n, _)| n == file)
        .flat_map(|(_, v)| v.iter())
        .filter(|v| v.fields.get("kind").and_then(Value::as_str) == Some(kind))
        .cloned()
        .collect()
}

/// Returns every vector (for the integrity test: ids unique, sources present).
#[cfg(test)]
pub fn every() -> Vec<Vector> {
    all().iter().flat_map(|(_, v)| v.iter().cloned()).collect()
}

/// Returns whether every vector file parsed.
#[cfg(test)]
pub fn files_parse() -> Result<(), String> {
    for (name, text) in FILES {
        serde_json::from_str::<Value>(text)
            .map_err(|e| format!("conformance/vectors/{name}.json: {e}"))?;
    }
    Ok(())
}
