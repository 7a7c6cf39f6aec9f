//! Attribute templates as the core sees them: a list of (type, bytes) pairs that the FFI layer
//! copied out of the caller's `CK_ATTRIBUTE` array, and the codecs of the PKCS#11 value types.
#![forbid(unsafe_code)]

use crate::error::{Result, ck};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The longest attribute value accepted from a caller. The largest value this token holds is a
/// 67-byte EC point; labels, IDs and subjects are bounded separately.
pub const MAX_ATTRIBUTE_LEN: usize = 64 * 1024;

/// The most attributes accepted in one template.
pub const MAX_TEMPLATE_LEN: usize = 256;

/// The longest `CKA_LABEL`, `CKA_ID` or `CKA_SUBJECT` stored on an object.
pub const MAX_NAME_LEN: usize = 1024;

/// One attribute of a template. The value may be secret (`CKA_VALUE`), so it is zeroized.
#[derive(Clone)]
pub struct Attr {
    /// The `CKA_*` type.
    pub kind: CK_ATTRIBUTE_TYPE,
    /// The value bytes.
    pub value: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Attr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Attr({:#x}, {} bytes)", self.kind, self.value.len())
    }
}

impl Attr {
    /// Builds an attribute.
    pub fn new(kind: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            value: Zeroizing::new(value.into()),
        }
    }

    /// Builds a `CK_BBOOL` attribute.
    pub fn bool(kind: CK_ATTRIBUTE_TYPE, v: bool) -> Self {
        Self::new(kind, encode_bool(v))
    }

    /// Builds a `CK_ULONG` attribute.
    pub fn ulong(kind: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Self {
        Self::new(kind, encode_ulong(v))
    }

    /// Reads a `CK_BBOOL` (one byte; any non-zero byte is true, as C code writes it).
    pub fn as_bool(&self) -> Result<bool> {
        match self.value.as_slice() {
            [b] => Ok(*b != CK_FALSE),
            _ => Err(ck(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "a CK_BBOOL attribute is one byte",
            )),
        }
    }

    /// Reads a `CK_ULONG` in the platform's size and byte order.
    pub fn as_ulong(&self) -> Result<CK_ULONG> {
        let arr: [u8; size_of::<CK_ULONG>()] = self.value.as_slice().try_into().map_err(|_| {
            ck(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "a CK_ULONG attribute has the size of an unsigned long",
            )
        })?;
        Ok(CK_ULONG::from_ne_bytes(arr))
    }

    /// Reads a bounded byte string (label, ID, subject).
    pub fn as_name(&self) -> Result<Vec<u8>> {
        if self.value.len() > MAX_NAME_LEN {
            return Err(ck(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "labels, IDs and subjects are at most 1024 bytes",
            ));
        }
        Ok(self.value.to_vec())
    }
}

/// Encodes a `CK_BBOOL`.
pub fn encode_bool(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

/// Encodes a `CK_ULONG` in the platform's size and byte order.
pub fn encode_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A checked template: no attribute type appears twice.
#[derive(Debug, Clone, Default)]
pub struct Template(Vec<Attr>);

impl Template {
    /// Checks a template: at most [`MAX_TEMPLATE_LEN`] attributes, each type once.
    pub fn new(attrs: Vec<Attr>) -> Result<Self> {
        if attrs.len() > MAX_TEMPLATE_LEN {
            return Err(ck(CKR_ARGUMENTS_BAD, "template has too many attributes"));
        }
        for (i, a) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|b| b.kind == a.kind) {
                return Err(ck(
                    CKR_TEMPLATE_INCONSISTENT,
                    "an attribute type appears twice in the template",
                ));
            }
        }
        Ok(Self(attrs))
    }

    /// Returns the attributes.
    pub fn attrs(&self) -> &[Attr] {
        &self.0
    }

    /// Returns the attribute of type `kind`, if present.
    pub fn get(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&Attr> {
        self.0.iter().find(|a| a.kind == kind)
    }

    /// Returns a `CK_ULONG` attribute, if present.
    pub fn ulong(&self, kind: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.get(kind).map(Attr::as_ulong).transpose()
    }

    /// Returns a `CK_BBOOL` attribute, if present.
    pub fn bool(&self, kind: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
        self.get(kind).map(Attr::as_bool).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_and_duplicates() {
        assert!(Attr::bool(CKA_TOKEN, true).as_bool().unwrap());
        assert!(!Attr::new(CKA_TOKEN, vec![0]).as_bool().unwrap());
        assert_eq!(
            Attr::new(CKA_TOKEN, vec![1, 0]).as_bool().unwrap_err().rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY).as_ulong().unwrap(),
            CKO_SECRET_KEY
        );
        assert!(Attr::new(CKA_CLASS, vec![1, 2, 3]).as_ulong().is_err());
        let dup = Template::new(vec![
            Attr::bool(CKA_TOKEN, true),
            Attr::bool(CKA_TOKEN, false),
        ]);
        assert_eq!(dup.unwrap_err().rv(), CKR_TEMPLATE_INCONSISTENT);
        assert!(Attr::new(CKA_LABEL, vec![0; 1025]).as_name().is_err());
    }
}
