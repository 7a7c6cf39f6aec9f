//! Reading a profile: the TOML file format as serde reads it, mechanism and key type codes, and
//! the validation that turns the raw form into a [`Profile`].

use super::mechanisms::Mechanisms;
use super::{
    Certification, CiphertextFormat, CtrParameter, IdParameter, PROFILE_FORMAT, PointEncoding,
    Profile, PublicKeyAttribute, SignInput, SignatureFormat, Sm2KeyType, Sm2Options, Sm4Options,
    WrapParameter,
};
use crate::HsmError;
use cryptoki_sys::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

impl Profile {
    /// Reads and validates a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, HsmError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| HsmError::Profile {
            file: path.to_path_buf(),
            field: "-".into(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates profile text; `file` is where it came from (messages name it, and a
    /// relative `library` is resolved against its directory).
    pub fn from_toml(text: &str, file: impl AsRef<Path>) -> Result<Profile, HsmError> {
        let file = file.as_ref().to_path_buf();
        let raw: RawProfile = toml::from_str(text).map_err(|e| HsmError::Profile {
            file: file.clone(),
            field: error_field(text, &e),
            reason: e.message().to_string(),
        })?;
        Validator { file }.profile(raw)
    }
}

/// Names the key on the line where TOML parsing failed, so the error can say which field.
fn error_field(text: &str, err: &toml::de::Error) -> String {
    let Some(span) = err.span() else {
        return "-".into();
    };
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => {
            // The table the key is in: the last `[header]` above it.
            let table = text[..start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('[') && l.ends_with(']'))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            match table {
                Some(t) => format!("{t}.{}", key.trim()),
                None => key.trim().to_string(),
            }
        }
        _ => "-".into(),
    }
}

// ---- The file format, as serde reads it. -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    format: u32,
    name: String,
    description: Option<String>,
    library: String,
    development: bool,
    certification: Option<RawCertification>,
    #[serde(default)]
    quirks: Vec<String>,
    #[serde(default)]
    exclusive_object_writes: bool,
    sm2: RawSm2,
    sm4: Option<RawSm4>,
    #[serde(default)]
    mechanisms: RawMechanisms,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertification {
    // Required, but optional here so that a missing one is named with its table.
    certificate: Option<String>,
    issuer: Option<String>,
    model: Option<String>,
    manufacturer: Option<String>,
    firmware: Option<String>,
    level: Option<String>,
    valid_until: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSm2 {
    key_type: Code,
    public_key: RawPublicKey,
    keygen_ec_params: Option<bool>,
    sign_input: Option<RawSignInput>,
    id_parameter: Option<RawIdParameter>,
    signature: Option<RawSignature>,
    ciphertext: Option<RawCiphertext>,
    unwrap_ciphertext: Option<RawCiphertext>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPublicKey {
    Named(String),
    Vendor(RawVendorPoint),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVendorPoint {
    attribute: Code,
    encoding: RawPointEncoding,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawPointEncoding {
    Raw,
    Xy,
    Der,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawSignInput {
    Digest,
    MessageWithId,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawIdParameter {
    Raw,
    None,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawSignature {
    Raw,
    Der,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawCiphertext {
    C1c3c2,
    C1c2c3,
    Der,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSm4 {
    key_type: Option<Code>,
    ctr_parameter: Option<RawCtrParameter>,
    wrap_parameter: Option<RawWrapParameter>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawCtrParameter {
    CounterBlock,
    AesCtrParams,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawWrapParameter {
    None,
    Iv16,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMechanisms {
    sm2_keygen: Option<Code>,
    sm2_sign: Option<Code>,
    sm2_encrypt: Option<Code>,
    sm3_digest: Option<Code>,
    sm4_keygen: Option<Code>,
    sm4_cbc_pad: Option<Code>,
    sm4_gcm: Option<Code>,
    sm4_ctr: Option<Code>,
    wrap: Option<Code>,
    sm2_unwrap: Option<Code>,
    sm4_ecb_unwrap: Option<Code>,
}

/// A code as written: a TOML integer (`0x80474D11`) or a string (`"0x80474D11"`,
/// `"CKM_VENDOR_DEFINED + 0x4D11"`, `"CKM_EC_KEY_PAIR_GEN"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Code {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Code;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a code: an integer such as 0x80474D11, or a string such as \"CKM_VENDOR_DEFINED + 0x4D11\" or \"CKM_EC_KEY_PAIR_GEN\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Code, E> {
                Ok(Code::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Code, E> {
                i64::try_from(v)
                    .map(Code::Int)
                    .map_err(|_| E::custom("code out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Code, E> {
                Ok(Code::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which family of names a code field accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeKind {
    Mechanism,
    KeyType,
    Attribute,
}

impl CodeKind {
    fn prefix(self) -> &'static str {
        match self {
            CodeKind::Mechanism => "CKM_",
            CodeKind::KeyType => "CKK_",
            CodeKind::Attribute => "CKA_",
        }
    }

    fn names(self) -> &'static [(&'static str, CK_ULONG)] {
        match self {
            CodeKind::Mechanism => &[
                ("CKM_VENDOR_DEFINED", CKM_VENDOR_DEFINED),
                ("CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN),
                ("CKM_ECDSA", CKM_ECDSA),
                ("CKM_GENERIC_SECRET_KEY_GEN", CKM_GENERIC_SECRET_KEY_GEN),
                ("CKM_AES_KEY_GEN", CKM_AES_KEY_GEN),
                ("CKM_AES_ECB", CKM_AES_ECB),
                ("CKM_AES_CBC", CKM_AES_CBC),
                ("CKM_AES_CBC_PAD", CKM_AES_CBC_PAD),
                ("CKM_AES_CTR", CKM_AES_CTR),
                ("CKM_AES_GCM", CKM_AES_GCM),
                ("CKM_AES_KEY_WRAP", CKM_AES_KEY_WRAP),
                ("CKM_AES_KEY_WRAP_PAD", CKM_AES_KEY_WRAP_PAD),
            ],
            CodeKind::KeyType => &[
                ("CKK_VENDOR_DEFINED", CKK_VENDOR_DEFINED),
                ("CKK_EC", CKK_EC),
                ("CKK_ECDSA", CKK_EC),
                ("CKK_GENERIC_SECRET", CKK_GENERIC_SECRET),
                ("CKK_AES", CKK_AES),
            ],
            CodeKind::Attribute => &[
                ("CKA_VENDOR_DEFINED", CKA_VENDOR_DEFINED),
                ("CKA_EC_POINT", CKA_EC_POINT),
                ("CKA_VALUE", CKA_VALUE),
            ],
        }
    }
}

fn parse_int(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<u64>().ok()
    }
}

/// Parses a code: an integer, or `NAME`, `NAME + int` or `NAME | int` with a known `NAME`.
pub(super) fn parse_code(code: &Code, kind: CodeKind) -> Result<u64, String> {
    let value = match code {
        Code::Int(v) => u64::try_from(*v).map_err(|_| "a code cannot be negative".to_string())?,
        Code::Text(text) => {
            let text = text.trim();
            if let Some(v) = parse_int(text) {
                v
            } else {
                let (name, offset) = match text.find(['+', '|']) {
                    Some(i) => {
                        let off = parse_int(&text[i + 1..]).ok_or_else(|| {
                            format!(
                                "{:?} after the operator is not an integer",
                                text[i + 1..].trim()
                            )
                        })?;
                        (text[..i].trim(), Some(off))
                    }
                    None => (text, None),
                };
                if !name.starts_with(kind.prefix()) {
                    return Err(format!(
                        "{name:?} is not a {} name (they start with {})",
                        match kind {
                            CodeKind::Mechanism => "mechanism",
                            CodeKind::KeyType => "key type",
                            CodeKind::Attribute => "attribute",
                        },
                        kind.prefix()
                    ));
                }
                let base = kind
                    .names()
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| u64::from(*v))
                    .ok_or_else(|| {
                        format!(
                            "unknown name {name:?}; write the code as a hex integer, or one of: {}",
                            kind.names()
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                match offset {
                    // `NAME + x` and `NAME | x` agree for vendor bases (x < 2^31); `+` is what
                    // vendor headers write.
                    Some(off) => base
                        .checked_add(off)
                        .ok_or_else(|| "code overflows".to_string())?,
                    None => base,
                }
            }
        }
    };
    if value > u64::from(u32::MAX) {
        return Err(format!(
            "0x{value:X} does not fit in 32 bits; PKCS#11 codes are CK_ULONG values below 2^32 on every platform"
        ));
    }
    Ok(value)
}

struct Validator {
    file: PathBuf,
}

impl Validator {
    fn err(&self, field: &str, reason: impl Into<String>) -> HsmError {
        HsmError::Profile {
            file: self.file.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn code(&self, field: &str, code: &Code, kind: CodeKind) -> Result<u64, HsmError> {
        parse_code(code, kind).map_err(|r| self.err(field, r))
    }

    fn opt_mech(&self, name: &str, code: &Option<Code>) -> Result<Option<u64>, HsmError> {
        code.as_ref()
            .map(|c| self.code(&format!("mechanisms.{name}"), c, CodeKind::Mechanism))
            .transpose()
    }

    fn text(&self, field: &str, value: &str, max: usize) -> Result<(), HsmError> {
        if value.trim().is_empty() {
            return Err(self.err(field, "must not be empty"));
        }
        if value.len() > max {
            return Err(self.err(field, format!("longer than {max} bytes")));
        }
        if value.chars().any(char::is_control) {
            return Err(self.err(field, "contains control characters"));
        }
        Ok(())
    }

    /// A value compared exactly with what a token reports: text as [`Self::text`], without the
    /// surrounding blanks PKCS#11 pads with (they are trimmed from the token's answer).
    fn reported_text(&self, field: &str, value: &str, max: usize) -> Result<(), HsmError> {
        self.text(field, value, max)?;
        if value.trim() != value {
            return Err(self.err(
                field,
                "has leading or trailing blanks; write the value as the token reports it, without the padding",
            ));
        }
        Ok(())
    }

    /// A `CK_VERSION` written `major.minor`, each 0-255 in decimal (`C_GetTokenInfo` reports
    /// firmware 2.1 as major 2, minor 1).
    fn version(&self, field: &str, value: &str) -> Result<(), HsmError> {
        let ok = value.split_once('.').is_some_and(|(major, minor)| {
            [major, minor].iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p.len() == 1 || !p.starts_with('0'))
                    && p.parse::<u16>().is_ok_and(|v| v <= 255)
            })
        });
        if ok {
            Ok(())
        } else {
            Err(self.err(
                field,
                format!(
                    "{value:?} is not a PKCS#11 version: write major.minor in decimal, each 0-255, as C_GetTokenInfo's firmwareVersion (e.g. \"2.1\")"
                ),
            ))
        }
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile, HsmError> {
        if raw.format != PROFILE_FORMAT {
            return Err(self.err(
                "format",
                format!(
                    "profile format {} is not known; this gmchain reads format {PROFILE_FORMAT}",
                    raw.format
                ),
            ));
        }
        if raw.name.is_empty()
            || raw.name.len() > 64
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(self.err("name", "use 1 to 64 characters from A-Z a-z 0-9 . _ -"));
        }
        if let Some(d) = &raw.description {
            self.text("description", d, 1024)?;
        }
        self.text("library", &raw.library, 4096)?;
        for (i, q) in raw.quirks.iter().enumerate() {
            self.text(&format!("quirks[{i}]"), q, 4096)?;
        }
        let certification = match (raw.development, raw.certification) {
            (true, Some(_)) => {
                return Err(self.err(
                    "certification",
                    "a development token has no certification; remove [certification] or set development = false",
                ));
            }
            (false, None) => {
                return Err(self.err(
                    "certification",
                    "a profile for a production device declares its certification ([certification] certificate, issuer, model, manufacturer, firmware); set development = true for a token without one",
                ));
            }
            (_, Some(c)) => {
                let required = |field: &str, v: Option<String>| {
                    v.ok_or_else(|| {
                        self.err(
                            field,
                            "required: a declared certification names the certificate, its issuer, and the model, manufacturer and firmware the token reports (C_GetTokenInfo), so that they can be compared with the token",
                        )
                    })
                };
                let certificate = required("certification.certificate", c.certificate)?;
                let issuer = required("certification.issuer", c.issuer)?;
                let model = required("certification.model", c.model)?;
                let manufacturer = required("certification.manufacturer", c.manufacturer)?;
                let firmware = required("certification.firmware", c.firmware)?;
                self.text("certification.certificate", &certificate, 256)?;
                self.text("certification.issuer", &issuer, 256)?;
                // PKCS#11 gives the token's manufacturerID and model 32 and 16 bytes.
                self.reported_text("certification.model", &model, 16)?;
                self.reported_text("certification.manufacturer", &manufacturer, 32)?;
                self.version("certification.firmware", &firmware)?;
                for (f, v) in [
                    ("certification.level", &c.level),
                    ("certification.valid_until", &c.valid_until),
                ] {
                    if let Some(v) = v {
                        self.text(f, v, 256)?;
                    }
                }
                Some(Certification {
                    certificate,
                    issuer,
                    model,
                    manufacturer,
                    firmware,
                    level: c.level,
                    valid_until: c.valid_until,
                })
            }
            (true, None) => None,
        };

        let m = &raw.mechanisms;
        let mechanisms = Mechanisms {
            sm2_keygen: self.opt_mech("sm2_keygen", &m.sm2_keygen)?,
            sm2_sign: self.opt_mech("sm2_sign", &m.sm2_sign)?,
            sm2_encrypt: self.opt_mech("sm2_encrypt", &m.sm2_encrypt)?,
            sm3_digest: self.opt_mech("sm3_digest", &m.sm3_digest)?,
            sm4_keygen: self.opt_mech("sm4_keygen", &m.sm4_keygen)?,
            sm4_cbc_pad: self.opt_mech("sm4_cbc_pad", &m.sm4_cbc_pad)?,
            sm4_gcm: self.opt_mech("sm4_gcm", &m.sm4_gcm)?,
            sm4_ctr: self.opt_mech("sm4_ctr", &m.sm4_ctr)?,
            wrap: self.opt_mech("wrap", &m.wrap)?,
            sm2_unwrap: self.opt_mech("sm2_unwrap", &m.sm2_unwrap)?,
            sm4_ecb_unwrap: self.opt_mech("sm4_ecb_unwrap", &m.sm4_ecb_unwrap)?,
        };

        let sm2 = self.sm2(&raw.sm2, &mechanisms)?;
        let sm4 = self.sm4(raw.sm4.as_ref(), &mechanisms)?;
        Ok(Profile {
            file: self.file.clone(),
            name: raw.name,
            description: raw.description,
            library: raw.library,
            library_override: None,
            development: raw.development,
            certification,
            quirks: raw.quirks,
            exclusive_object_writes: raw.exclusive_object_writes,
            sm2,
            sm4,
            mechanisms,
        })
    }

    fn sm2(&self, raw: &RawSm2, mechs: &Mechanisms) -> Result<Sm2Options, HsmError> {
        let key_type = match self.code("sm2.key_type", &raw.key_type, CodeKind::KeyType)? {
            code if code == u64::from(CKK_EC) => Sm2KeyType::Ec,
            code if code < u64::from(CKK_VENDOR_DEFINED) && code <= 0x50 => {
                return Err(self.err(
                    "sm2.key_type",
                    format!("0x{code:X} is a standard PKCS#11 key type other than CKK_EC; SM2 keys are CKK_EC or a vendor code"),
                ));
            }
            code => Sm2KeyType::Vendor(code),
        };
        let public_key = match &raw.public_key {
            RawPublicKey::Named(n) => match n.as_str() {
                "ec-point-der" => PublicKeyAttribute::EcPointDer,
                "ec-point-raw" => PublicKeyAttribute::EcPointRaw,
                other => {
                    return Err(self.err(
                        "sm2.public_key",
                        format!("{other:?} is not one of \"ec-point-der\", \"ec-point-raw\" or {{ attribute = 0x..., encoding = \"raw\" | \"xy\" | \"der\" }}"),
                    ));
                }
            },
            RawPublicKey::Vendor(v) => PublicKeyAttribute::Vendor {
                attribute: self.code(
                    "sm2.public_key.attribute",
                    &v.attribute,
                    CodeKind::Attribute,
                )?,
                encoding: match v.encoding {
                    RawPointEncoding::Raw => PointEncoding::Raw,
                    RawPointEncoding::Xy => PointEncoding::Xy,
                    RawPointEncoding::Der => PointEncoding::Der,
                },
            },
        };
        let sign_input = raw.sign_input.map(|s| match s {
            RawSignInput::Digest => SignInput::Digest,
            RawSignInput::MessageWithId => SignInput::MessageWithId,
        });
        let signature = raw.signature.map(|s| match s {
            RawSignature::Raw => SignatureFormat::Raw,
            RawSignature::Der => SignatureFormat::Der,
        });
        let format = |c| match c {
            RawCiphertext::C1c3c2 => CiphertextFormat::C1C3C2,
            RawCiphertext::C1c2c3 => CiphertextFormat::C1C2C3,
            RawCiphertext::Der => CiphertextFormat::Der,
        };
        let ciphertext = raw.ciphertext.map(format);
        let unwrap_ciphertext = raw.unwrap_ciphertext.map(format);
        if mechs.sm2_unwrap.is_some() && unwrap_ciphertext.is_none() {
            return Err(self.err(
                "sm2.unwrap_ciphertext",
                "mechanisms.sm2_unwrap is set, so say how the wrapped key's SM2 ciphertext is encoded: \"c1c3c2\", \"c1c2c3\" or \"der\"",
            ));
        }
        if mechs.sm2_unwrap.is_some() != mechs.sm4_ecb_unwrap.is_some() {
            return Err(self.err(
                "mechanisms.sm2_unwrap",
                "a GM/T 0009 envelope unwraps in two steps: name both mechanisms.sm2_unwrap and mechanisms.sm4_ecb_unwrap, or neither",
            ));
        }
        if mechs.sm2_sign.is_some() {
            if sign_input.is_none() {
                return Err(self.err(
                    "sm2.sign_input",
                    "mechanisms.sm2_sign is set, so say what it signs: \"digest\" (gmchain passes e = SM3(ZA‖M)) or \"message-with-id\" (the token computes ZA)",
                ));
            }
            if signature.is_none() {
                return Err(self.err(
                    "sm2.signature",
                    "mechanisms.sm2_sign is set, so say how signatures are encoded: \"raw\" (r‖s) or \"der\"",
                ));
            }
        }
        let id_parameter = match (sign_input, raw.id_parameter) {
            (Some(SignInput::MessageWithId), None) => {
                return Err(self.err(
                    "sm2.id_parameter",
                    "sign_input = \"message-with-id\" needs id_parameter = \"raw\" (the ID bytes are the mechanism parameter) or \"none\"",
                ));
            }
            (Some(SignInput::MessageWithId), Some(RawIdParameter::Raw)) => IdParameter::Raw,
            (_, Some(RawIdParameter::Raw)) => {
                return Err(self.err(
                    "sm2.id_parameter",
                    "an ID parameter only applies to sign_input = \"message-with-id\"",
                ));
            }
            (_, _) => IdParameter::None,
        };
        if mechs.sm2_encrypt.is_some() && ciphertext.is_none() {
            return Err(self.err(
                "sm2.ciphertext",
                "mechanisms.sm2_encrypt is set, so say how ciphertexts are encoded: \"c1c3c2\", \"c1c2c3\" or \"der\"",
            ));
        }
        Ok(Sm2Options {
            key_type,
            public_key,
            keygen_ec_params: raw.keygen_ec_params.unwrap_or(true),
            sign_input: if mechs.sm2_sign.is_some() {
                sign_input
            } else {
                None
            },
            id_parameter,
            signature: if mechs.sm2_sign.is_some() {
                signature
            } else {
                None
            },
            ciphertext: if mechs.sm2_encrypt.is_some() {
                ciphertext
            } else {
                None
            },
            unwrap_ciphertext: if mechs.sm2_unwrap.is_some() {
                unwrap_ciphertext
            } else {
                None
            },
        })
    }

    fn sm4(&self, raw: Option<&RawSm4>, mechs: &Mechanisms) -> Result<Sm4Options, HsmError> {
        let key_type = raw
            .and_then(|r| r.key_type.as_ref())
            .map(|c| self.code("sm4.key_type", c, CodeKind::KeyType))
            .transpose()?;
        let uses_sm4 = [
            mechs.sm4_keygen,
            mechs.sm4_cbc_pad,
            mechs.sm4_gcm,
            mechs.sm4_ctr,
            mechs.wrap,
            mechs.sm2_unwrap,
            mechs.sm4_ecb_unwrap,
        ]
        .iter()
        .any(Option::is_some);
        if uses_sm4 && key_type.is_none() {
            return Err(self.err(
                "sm4.key_type",
                "the profile names SM4 mechanisms, so give the SM4 key type code ([sm4] key_type)",
            ));
        }
        let ctr_parameter = raw.and_then(|r| r.ctr_parameter).map(|c| match c {
            RawCtrParameter::CounterBlock => CtrParameter::CounterBlock,
            RawCtrParameter::AesCtrParams => CtrParameter::AesCtrParams,
        });
        if mechs.sm4_ctr.is_some() && ctr_parameter.is_none() {
            return Err(self.err(
                "sm4.ctr_parameter",
                "mechanisms.sm4_ctr is set, so say how the counter block is passed: \"counter-block\" or \"aes-ctr-params\"",
            ));
        }
        let wrap_parameter = raw.and_then(|r| r.wrap_parameter).map(|w| match w {
            RawWrapParameter::None => WrapParameter::None,
            RawWrapParameter::Iv16 => WrapParameter::Iv16,
        });
        if mechs.wrap.is_some() && wrap_parameter.is_none() {
            return Err(self.err(
                "sm4.wrap_parameter",
                "mechanisms.wrap is set, so say what parameter it takes: \"none\" or \"iv16\"",
            ));
        }
        Ok(Sm4Options {
            key_type,
            ctr_parameter,
            wrap_parameter,
        })
    }
}
