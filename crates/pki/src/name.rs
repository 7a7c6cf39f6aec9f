//! Distinguished names: the subject gmchain writes, and the checks on the values that go in.

use crate::PkiError;
use crate::der_util::{enc, oid};
use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Encode, Tag};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// ub-common-name and ub-organization-name (RFC 5280 Appendix A.1): 64 characters.
pub const MAX_NAME_CHARS: usize = 64;

/// RFC 4514 §2.4 characters that must be escaped in a string DN, plus `=` and `#`: a value
/// with any of them could read as extra attributes once printed, so the profile refuses them.
const SPECIALS: &[char] = &[',', '+', '=', '"', '\\', '<', '>', ';', '#'];

fn check_value(value: &str) -> Result<(), &'static str> {
    let n = value.chars().count();
    if n == 0 {
        return Err("empty");
    }
    if n > MAX_NAME_CHARS {
        return Err("longer than 64 characters");
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if value.contains(SPECIALS) {
        return Err("contains one of , + = \" \\ < > ; # (RFC 4514 specials)");
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err("leading or trailing space");
    }
    Ok(())
}

/// Checks a common name: 1..=64 characters, no control characters, no RFC 4514 specials, no
/// leading or trailing space.
pub fn check_common_name(value: &str) -> Result<(), PkiError> {
    check_value(value).map_err(|reason| PkiError::BadCommonName {
        value: value.to_string(),
        reason,
    })
}

/// Checks an organisation name with the same rules as a common name.
pub fn check_organisation(value: &str) -> Result<(), PkiError> {
    check_value(value).map_err(|reason| PkiError::BadOrganisation {
        value: value.to_string(),
        reason,
    })
}

/// Builds subjects attribute by attribute (never by parsing a string).
pub(crate) struct NameBuilder;

impl NameBuilder {
    /// Returns C=CN, O=`org`, OU=`ou`, CN=`cn` (RFC 4514 string "CN=…,OU=…,O=…,C=CN"): country
    /// as PrintableString, the others as UTF8String so Chinese names need no other type.
    pub(crate) fn profile(org: &str, ou: &str, cn: &str) -> Result<Name, PkiError> {
        let rdn = |oid: ObjectIdentifier,
                   tag: Tag,
                   v: &str|
         -> Result<RelativeDistinguishedName, PkiError> {
            let atav = AttributeTypeAndValue {
                oid,
                value: Any::new(tag, v.as_bytes()).map_err(enc)?,
            };
            RelativeDistinguishedName::try_from(vec![atav]).map_err(enc)
        };
        let seq = RdnSequence::from(vec![
            rdn(oid::C, Tag::PrintableString, "CN")?,
            rdn(oid::O, Tag::Utf8String, org)?,
            rdn(oid::OU, Tag::Utf8String, ou)?,
            rdn(oid::CN, Tag::Utf8String, cn)?,
        ]);
        Name::from_der(&seq.to_der().map_err(enc)?).map_err(enc)
    }
}

/// Returns every value of attribute `oid` in `name`, as text (values of other string types are
/// skipped).
pub(crate) fn values(name: &Name, oid: ObjectIdentifier) -> Vec<String> {
    name.iter()
        .filter(|a| a.oid == oid)
        .filter_map(|a| DirectoryString::try_from(&a.value).ok())
        .map(String::from)
        .collect()
}

/// Returns the value of attribute `oid` if `name` has exactly one.
pub(crate) fn single(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    let n = name.iter().filter(|a| a.oid == oid).count();
    if n != 1 {
        return None;
    }
    values(name, oid).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rules() {
        assert!(check_common_name("node-1").is_ok());
        assert!(check_common_name("广东省政务服务数据管理局 节点 1").is_ok());
        assert!(check_common_name(&"x".repeat(64)).is_ok());
        assert!(check_common_name(&"节".repeat(64)).is_ok());
        for bad in [
            "",
            "a,OU=admin",
            "a+OU=admin",
            "a=b",
            "a\u{0}b",
            "a\nb",
            "#41",
            " a",
            "a ",
            "a\\,b",
            "a;b",
            "a\"b",
        ] {
            assert!(check_common_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_common_name(&"x".repeat(65)).is_err());
        assert!(matches!(
            check_organisation("A,B"),
            Err(PkiError::BadOrganisation { .. })
        ));
    }

    #[test]
    fn profile_subject() {
        let n = NameBuilder::profile("Agency A", "node", "node-1").unwrap();
        assert_eq!(n.to_string(), "CN=node-1,OU=node,O=Agency A,C=CN");
        assert_eq!(single(&n, oid::O).as_deref(), Some("Agency A"));
        assert_eq!(single(&n, oid::CN).as_deref(), Some("node-1"));
    }
}
