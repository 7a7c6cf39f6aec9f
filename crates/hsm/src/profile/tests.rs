//! Unit tests of profile parsing, validation and library resolution.

use super::library::expand_env;
use super::parse::{Code, CodeKind, parse_code};
use super::*;
use crate::HsmError;

const SOFTTOKEN: &str = include_str!("../../../../hsm-profiles/gmchain-softtoken.toml");
const SOFTHSM: &str = include_str!("../../../../hsm-profiles/softhsm2.toml");

fn parse(text: &str) -> Result<Profile, HsmError> {
    Profile::from_toml(text, "/profiles/test.toml")
}

fn field_of(err: HsmError) -> String {
    match err {
        HsmError::Profile { field, .. } => field,
        other => panic!("not a profile error: {other}"),
    }
}

#[test]
fn shipped_profiles_parse() {
    let p = parse(SOFTTOKEN).unwrap();
    assert_eq!(p.name(), "gmchain-softtoken");
    assert!(p.development());
    assert_eq!(p.assurance(), "development token, not certified");
    assert_eq!(p.sm2().key_type, Sm2KeyType::Vendor(0x80474D01));
    assert_eq!(p.mechanisms().sm2_sign, Some(0x80474D11));
    assert_eq!(p.sm2().sign_input, Some(SignInput::Digest));
    assert_eq!(p.sm2().signature, Some(SignatureFormat::Raw));
    assert_eq!(p.sm2().ciphertext, Some(CiphertextFormat::C1C3C2));
    assert_eq!(p.sm2().public_key, PublicKeyAttribute::EcPointDer);
    assert_eq!(p.sm4().key_type, Some(0x80474D02));
    assert_eq!(p.mechanisms().sm4_gcm, Some(0x80474D35));

    let s = parse(SOFTHSM).unwrap();
    assert!(s.exclusive_object_writes());
    assert!(!p.exclusive_object_writes());
    assert_eq!(s.sm2().key_type, Sm2KeyType::Ec);
    assert_eq!(
        s.mechanisms().sm2_keygen,
        Some(u64::from(CKM_EC_KEY_PAIR_GEN))
    );
    for op in Operation::ALL.into_iter().skip(1) {
        assert_eq!(s.mechanisms().get(op), None, "{op:?}");
    }
}

#[test]
fn code_syntaxes() {
    let m = CodeKind::Mechanism;
    assert_eq!(parse_code(&Code::Int(0x80474D11), m), Ok(0x80474D11));
    assert_eq!(
        parse_code(&Code::Text("0x80474d11".into()), m),
        Ok(0x80474D11)
    );
    assert_eq!(
        parse_code(&Code::Text("CKM_VENDOR_DEFINED + 0x474D11".into()), m),
        Ok(0x80474D11)
    );
    assert_eq!(
        parse_code(&Code::Text("CKM_VENDOR_DEFINED|0x10004".into()), m),
        Ok(0x80010004)
    );
    assert_eq!(
        parse_code(&Code::Text("CKM_EC_KEY_PAIR_GEN".into()), m),
        Ok(0x1040)
    );
    assert_eq!(parse_code(&Code::Text("0x00010004".into()), m), Ok(0x10004));
    assert!(
        parse_code(&Code::Text("CKK_EC".into()), m)
            .unwrap_err()
            .contains("CKM_")
    );
    assert!(
        parse_code(&Code::Text("CKM_SM2_SIGN".into()), m)
            .unwrap_err()
            .contains("unknown name")
    );
    assert!(parse_code(&Code::Int(-1), m).is_err());
    assert!(parse_code(&Code::Int(0x1_0000_0000), m).is_err());
    assert_eq!(
        parse_code(&Code::Text("CKK_EC".into()), CodeKind::KeyType),
        Ok(3)
    );
}

#[test]
fn errors_name_the_field() {
    let bad = SOFTTOKEN.replace("sign_input = \"digest\"", "sign_input = \"hash\"");
    assert_eq!(field_of(parse(&bad).unwrap_err()), "sm2.sign_input");

    let bad = SOFTTOKEN.replace("sm2_sign = 0x80474D11", "sm2_sign = \"CKK_EC\"");
    assert_eq!(field_of(parse(&bad).unwrap_err()), "mechanisms.sm2_sign");

    let bad = SOFTTOKEN.replace("[sm2]", "[sm2]\nsurprise = 1");
    let err = parse(&bad).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
    assert!(err.to_string().contains("/profiles/test.toml"), "{err}");

    let bad: String = SOFTTOKEN
        .lines()
        .filter(|l| !l.starts_with("sign_input"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(field_of(parse(&bad).unwrap_err()), "sm2.sign_input");

    let bad = SOFTTOKEN.replace("development = true", "development = false");
    assert_eq!(field_of(parse(&bad).unwrap_err()), "certification");

    let bad = SOFTTOKEN.replace("format = 1", "format = 2");
    assert_eq!(field_of(parse(&bad).unwrap_err()), "format");

    let bad = SOFTTOKEN.replace(
        "sign_input = \"digest\"",
        "sign_input = \"message-with-id\"",
    );
    assert_eq!(field_of(parse(&bad).unwrap_err()), "sm2.id_parameter");

    let bad = SOFTHSM.replace("key_type = \"CKK_EC\"", "key_type = \"CKK_AES\"");
    assert_eq!(field_of(parse(&bad).unwrap_err()), "sm2.key_type");
}

#[test]
fn message_with_id_variant() {
    let text = SOFTTOKEN
        .replace(
            "sign_input = \"digest\"",
            "sign_input = \"message-with-id\"\nid_parameter = \"raw\"",
        )
        .replace("sm2_sign = 0x80474D11", "sm2_sign = 0x80474D12");
    let p = parse(&text).unwrap();
    assert_eq!(p.sm2().sign_input, Some(SignInput::MessageWithId));
    assert_eq!(p.sm2().id_parameter, IdParameter::Raw);
}

/// The declared certification is structured so that the conformance suite can compare it
/// exactly with what the token reports: every identifying field is required, and a value
/// that could never equal a token's answer is refused at load, naming the field.
#[test]
fn certification_fields_are_required_and_exact() {
    let production = SOFTTOKEN.replace("development = true", "development = false");
    let full = [
        ("certificate", "\"CERT-1\""),
        ("issuer", "\"ISSUER\""),
        ("model", "\"MODEL-1\""),
        ("manufacturer", "\"Vendor X\""),
        ("firmware", "\"2.1\""),
    ];
    let with = |fields: &[(&str, &str)]| {
        let mut t = production.clone();
        t.push_str("\n[certification]\n");
        for (k, v) in fields {
            t.push_str(&format!("{k} = {v}\n"));
        }
        t
    };
    assert!(parse(&with(&full)).is_ok());
    for missing in ["certificate", "issuer", "model", "manufacturer", "firmware"] {
        let fields: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        assert_eq!(
            field_of(parse(&with(&fields)).unwrap_err()),
            format!("certification.{missing}")
        );
    }
    for (field, bad) in [
        ("firmware", "\"2\""),
        ("firmware", "\"v2.1\""),
        ("firmware", "\"2.256\""),
        ("firmware", "\"02.1\""),
        ("model", "\" MODEL-1\""),
        ("model", "\"A MODEL LONGER THAN 16\""),
        ("manufacturer", "\"Vendor X \""),
        ("issuer", "\"\""),
    ] {
        let fields: Vec<_> = full
            .iter()
            .map(|&(k, v)| if k == field { (k, bad) } else { (k, v) })
            .collect();
        assert_eq!(
            field_of(parse(&with(&fields)).unwrap_err()),
            format!("certification.{field}"),
            "{field} = {bad}"
        );
    }
}

#[test]
fn production_profile_with_certification() {
    let text = r#"
format = 1
name = "vendor-x"
library = "/opt/vendor/lib/libpkcs11.so"
development = false
quirks = ["PIN must be 8 digits"]
[certification]
certificate = "CERT-PLACEHOLDER"
issuer = "ISSUER-PLACEHOLDER"
model = "MODEL-X1"
manufacturer = "Vendor X"
firmware = "2.1"
[sm2]
key_type = "CKK_VENDOR_DEFINED + 0x10001"
public_key = { attribute = "CKA_VENDOR_DEFINED + 0x102", encoding = "xy" }
sign_input = "message-with-id"
id_parameter = "none"
signature = "der"
[mechanisms]
sm2_sign = "CKM_VENDOR_DEFINED + 0x10004"
"#;
    let p = parse(text).unwrap();
    assert!(!p.development());
    assert_eq!(
        p.assurance(),
        "declared certified device (not confirmed): model MODEL-X1, certificate CERT-PLACEHOLDER (ISSUER-PLACEHOLDER)"
    );
    let c = p.certification().unwrap();
    assert_eq!(
        (c.manufacturer.as_str(), c.firmware.as_str()),
        ("Vendor X", "2.1")
    );
    assert_eq!(p.sm2().key_type, Sm2KeyType::Vendor(0x80010001));
    assert_eq!(
        p.sm2().public_key,
        PublicKeyAttribute::Vendor {
            attribute: 0x80000102,
            encoding: PointEncoding::Xy
        }
    );
    assert_eq!(p.sm2().id_parameter, IdParameter::None);
    assert_eq!(
        p.resolve_library().unwrap(),
        LibraryPath::File(PathBuf::from("/opt/vendor/lib/libpkcs11.so"))
    );
}

#[test]
fn library_resolution() {
    // A path with a slash is relative to the profile's directory.
    let text = SOFTHSM.replace(
        "library = \"/usr/lib/softhsm/libsofthsm2.so\"",
        "library = \"lib/x.so\"",
    );
    let p = parse(&text).unwrap();
    if std::env::var_os(MODULE_ENV).is_none() {
        assert_eq!(
            p.resolve_library().unwrap(),
            LibraryPath::File(PathBuf::from("/profiles/lib/x.so"))
        );
    }
    // A bare name that exists nowhere is left to the loader, after the documented search.
    let text = SOFTHSM.replace(
        "library = \"/usr/lib/softhsm/libsofthsm2.so\"",
        "library = \"libnowhere-gmchain-test.so\"",
    );
    let p = parse(&text).unwrap();
    if std::env::var_os(MODULE_ENV).is_none() {
        match p.resolve_library().unwrap() {
            LibraryPath::Search { name, tried } => {
                assert_eq!(name, "libnowhere-gmchain-test.so");
                assert_eq!(
                    tried[0],
                    PathBuf::from("/profiles/libnowhere-gmchain-test.so")
                );
                assert!(tried.contains(&PathBuf::from("target/debug/libnowhere-gmchain-test.so")));
                assert!(tried.contains(&PathBuf::from(
                    "/profiles/../target/release/libnowhere-gmchain-test.so"
                )));
            }
            other => panic!("{other:?}"),
        }
    }
    // The override wins.
    let p = p.with_library("/tmp/m.so");
    assert_eq!(
        p.resolve_library().unwrap(),
        LibraryPath::File(PathBuf::from("/tmp/m.so"))
    );
}

#[test]
fn env_expansion() {
    assert_eq!(expand_env("plain").unwrap(), "plain");
    assert!(
        expand_env("${GMCHAIN_SURELY_UNSET_VAR_1}")
            .unwrap_err()
            .contains("not set")
    );
    assert!(expand_env("${bad name}").is_err());
    assert!(expand_env("${OPEN").is_err());
    let home = std::env::var("PATH").unwrap();
    assert_eq!(expand_env("${PATH}/x").unwrap(), format!("{home}/x"));
}
