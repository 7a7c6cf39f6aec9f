//! HSM profiles: one TOML file per PKCS#11 module, saying which codes the module uses for SM2,
//! SM3 and SM4, how it handles ZA, and which encodings it speaks. `hsm-profiles/README.md`
//! describes every field and how to fill one in from a vendor's header file.

use crate::HsmError;
use cryptoki_sys::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

/// The profile format this crate reads.
pub const PROFILE_FORMAT: u32 = 1;

/// The environment variable that, when set and not empty, names the module library for every
/// profile (it wins over the profile's `library`).
pub const MODULE_ENV: &str = "GMCHAIN_PKCS11_MODULE";

/// DER of the SM2 curve OID 1.2.156.10197.1.301 (sm2p256v1), the value of `CKA_EC_PARAMS`.
pub const SM2_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

/// A validated profile.
#[derive(Clone, Debug)]
pub struct Profile {
    file: PathBuf,
    name: String,
    description: Option<String>,
    library: String,
    library_override: Option<PathBuf>,
    development: bool,
    certification: Option<Certification>,
    quirks: Vec<String>,
    exclusive_object_writes: bool,
    sm2: Sm2Options,
    sm4: Sm4Options,
    mechanisms: Mechanisms,
}

/// The certification a profile declares for a production device, as printed on its
/// certificate. A declaration, not a proof: the conformance suite compares `manufacturer`,
/// `model` and `firmware` exactly with what the token reports (`C_GetTokenInfo`) and leaves the
/// certificate itself for the auditor to confirm with the issuing body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certification {
    /// The certificate number.
    pub certificate: String,
    /// The issuing body (for commercial cryptographic products, the GM certification body).
    pub issuer: String,
    /// The product model as on the certificate; the token's `C_GetTokenInfo` `model`.
    pub model: String,
    /// The manufacturer as the token reports it (`C_GetTokenInfo` `manufacturerID`).
    pub manufacturer: String,
    /// The certified firmware version, `major.minor` (`C_GetTokenInfo` `firmwareVersion`).
    pub firmware: String,
    /// Security level, if recorded.
    pub level: Option<String>,
    /// Expiry as written on the certificate, if recorded.
    pub valid_until: Option<String>,
}

/// How SM2 keys are represented in the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sm2KeyType {
    /// `CKK_EC` with `CKA_EC_PARAMS` = the SM2 curve OID.
    Ec,
    /// A vendor key type code (`CKK_SM2` of some header).
    Vendor(u64),
}

impl Sm2KeyType {
    /// Returns the `CKA_KEY_TYPE` value.
    pub fn code(self) -> u64 {
        match self {
            Sm2KeyType::Ec => u64::from(CKK_EC),
            Sm2KeyType::Vendor(code) => code,
        }
    }
}

/// Where the public point of an SM2 key is found and how it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKeyAttribute {
    /// `CKA_EC_POINT` holding DER `OCTET STRING(04‖x‖y)` (PKCS#11 as written).
    EcPointDer,
    /// `CKA_EC_POINT` holding the bare point `04‖x‖y`.
    EcPointRaw,
    /// A vendor attribute.
    Vendor {
        /// The attribute type code.
        attribute: u64,
        /// Its encoding.
        encoding: PointEncoding,
    },
}

impl PublicKeyAttribute {
    /// Returns the attribute type holding the point.
    pub fn attribute(self) -> u64 {
        match self {
            PublicKeyAttribute::EcPointDer | PublicKeyAttribute::EcPointRaw => {
                u64::from(CKA_EC_POINT)
            }
            PublicKeyAttribute::Vendor { attribute, .. } => attribute,
        }
    }

    /// Returns the encoding of the attribute's value.
    pub fn encoding(self) -> PointEncoding {
        match self {
            PublicKeyAttribute::EcPointDer => PointEncoding::Der,
            PublicKeyAttribute::EcPointRaw => PointEncoding::Raw,
            PublicKeyAttribute::Vendor { encoding, .. } => encoding,
        }
    }
}

/// Encodings of an SM2 public point in an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointEncoding {
    /// `04‖x‖y`.
    Raw,
    /// `x‖y`, 64 bytes.
    Xy,
    /// DER `OCTET STRING(04‖x‖y)`.
    Der,
}

/// What the signing mechanism takes as input (GB/T 32918.2 §6.1 A1-A2 are done by whom).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInput {
    /// The caller passes e = SM3(ZA‖M); the token does A3-A7 only.
    Digest,
    /// The caller passes M; the token computes ZA from the ID in the mechanism parameter.
    MessageWithId,
}

/// How the user ID reaches a `message-with-id` mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdParameter {
    /// The ID bytes are the mechanism parameter.
    Raw,
    /// No parameter: the token always uses its built-in ID (gmchain then refuses other IDs).
    None,
}

/// Signature encodings a token returns and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFormat {
    /// `r‖s`, 64 bytes.
    Raw,
    /// GM/T 0009 `SM2Signature` DER.
    Der,
}

/// SM2 ciphertext encodings a token returns and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiphertextFormat {
    /// `C1‖C3‖C2` (GB/T 32918.4-2016).
    C1C3C2,
    /// `C1‖C2‖C3` (the 2012 draft order some devices still use).
    C1C2C3,
    /// GM/T 0009 `SM2Cipher` DER.
    Der,
}

/// How an SM4-CTR mechanism takes its counter block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrParameter {
    /// The 16-byte initial counter block as the parameter.
    CounterBlock,
    /// `CK_AES_CTR_PARAMS { ulCounterBits = 128, cb }`, as for `CKM_AES_CTR`.
    AesCtrParams,
}

/// The parameter of the wrapping mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapParameter {
    /// No parameter (an ECB-style or key-wrap mechanism).
    None,
    /// A 16-byte IV; gmchain draws it from the token and prepends it to the wrapped key.
    Iv16,
}

/// SM2 behaviour of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm2Options {
    /// Key representation.
    pub key_type: Sm2KeyType,
    /// Public point location and encoding.
    pub public_key: PublicKeyAttribute,
    /// Whether key generation templates carry `CKA_EC_PARAMS` (the SM2 OID).
    pub keygen_ec_params: bool,
    /// Signing input, when the profile names a signing mechanism.
    pub sign_input: Option<SignInput>,
    /// ID parameter for `message-with-id`.
    pub id_parameter: IdParameter,
    /// Signature encoding, when the profile names a signing mechanism.
    pub signature: Option<SignatureFormat>,
    /// Ciphertext encoding, when the profile names an encryption mechanism.
    pub ciphertext: Option<CiphertextFormat>,
}

/// SM4 behaviour of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm4Options {
    /// `CKA_KEY_TYPE` of SM4 keys.
    pub key_type: Option<u64>,
    /// CTR parameter form.
    pub ctr_parameter: Option<CtrParameter>,
    /// Wrap mechanism parameter form.
    pub wrap_parameter: Option<WrapParameter>,
}

/// The mechanism code for each operation; `None` means unsupported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mechanisms {
    /// SM2 key pair generation.
    pub sm2_keygen: Option<u64>,
    /// SM2 signing and verification.
    pub sm2_sign: Option<u64>,
    /// SM2 encryption and decryption.
    pub sm2_encrypt: Option<u64>,
    /// SM3.
    pub sm3_digest: Option<u64>,
    /// SM4 key generation.
    pub sm4_keygen: Option<u64>,
    /// SM4-CBC with PKCS#7 padding.
    pub sm4_cbc_pad: Option<u64>,
    /// SM4-GCM.
    pub sm4_gcm: Option<u64>,
    /// SM4-CTR.
    pub sm4_ctr: Option<u64>,
    /// Key wrapping with an SM4 key.
    pub wrap: Option<u64>,
}

/// The operations a profile can name a mechanism for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// SM2 key pair generation.
    Sm2Keygen,
    /// SM2 signing and verification.
    Sm2Sign,
    /// SM2 encryption and decryption.
    Sm2Encrypt,
    /// SM3.
    Sm3Digest,
    /// SM4 key generation.
    Sm4Keygen,
    /// SM4-CBC-PAD.
    Sm4CbcPad,
    /// SM4-GCM.
    Sm4Gcm,
    /// SM4-CTR.
    Sm4Ctr,
    /// Key wrapping.
    Wrap,
}

impl Operation {
    /// Every operation, in profile order.
    pub const ALL: [Operation; 9] = [
        Operation::Sm2Keygen,
        Operation::Sm2Sign,
        Operation::Sm2Encrypt,
        Operation::Sm3Digest,
        Operation::Sm4Keygen,
        Operation::Sm4CbcPad,
        Operation::Sm4Gcm,
        Operation::Sm4Ctr,
        Operation::Wrap,
    ];

    /// Returns the profile field name (`mechanisms.<name>`).
    pub fn field(self) -> &'static str {
        match self {
            Operation::Sm2Keygen => "sm2_keygen",
            Operation::Sm2Sign => "sm2_sign",
            Operation::Sm2Encrypt => "sm2_encrypt",
            Operation::Sm3Digest => "sm3_digest",
            Operation::Sm4Keygen => "sm4_keygen",
            Operation::Sm4CbcPad => "sm4_cbc_pad",
            Operation::Sm4Gcm => "sm4_gcm",
            Operation::Sm4Ctr => "sm4_ctr",
            Operation::Wrap => "wrap",
        }
    }

    /// Returns a human name for messages.
    pub fn description(self) -> &'static str {
        match self {
            Operation::Sm2Keygen => "SM2 key generation",
            Operation::Sm2Sign => "SM2 signing",
            Operation::Sm2Encrypt => "SM2 encryption",
            Operation::Sm3Digest => "SM3 digest",
            Operation::Sm4Keygen => "SM4 key generation",
            Operation::Sm4CbcPad => "SM4-CBC",
            Operation::Sm4Gcm => "SM4-GCM",
            Operation::Sm4Ctr => "SM4-CTR",
            Operation::Wrap => "key wrapping",
        }
    }

    /// Returns the `CKF_` flags a module must report for the mechanism to serve the operation.
    pub fn required_flags(self) -> u64 {
        u64::from(match self {
            Operation::Sm2Keygen => CKF_GENERATE_KEY_PAIR,
            Operation::Sm2Sign => CKF_SIGN | CKF_VERIFY,
            Operation::Sm2Encrypt
            | Operation::Sm4CbcPad
            | Operation::Sm4Gcm
            | Operation::Sm4Ctr => CKF_ENCRYPT | CKF_DECRYPT,
            Operation::Sm3Digest => CKF_DIGEST,
            Operation::Sm4Keygen => CKF_GENERATE,
            Operation::Wrap => CKF_WRAP | CKF_UNWRAP,
        })
    }
}

impl Mechanisms {
    /// Returns the code for `op`.
    pub fn get(&self, op: Operation) -> Option<u64> {
        match op {
            Operation::Sm2Keygen => self.sm2_keygen,
            Operation::Sm2Sign => self.sm2_sign,
            Operation::Sm2Encrypt => self.sm2_encrypt,
            Operation::Sm3Digest => self.sm3_digest,
            Operation::Sm4Keygen => self.sm4_keygen,
            Operation::Sm4CbcPad => self.sm4_cbc_pad,
            Operation::Sm4Gcm => self.sm4_gcm,
            Operation::Sm4Ctr => self.sm4_ctr,
            Operation::Wrap => self.wrap,
        }
    }
}

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

    /// Returns the file the profile was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Returns the profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the free-text description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Returns the module library as written in the profile.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// Returns whether this is a development token.
    pub fn development(&self) -> bool {
        self.development
    }

    /// Returns the device certification, if recorded.
    pub fn certification(&self) -> Option<&Certification> {
        self.certification.as_ref()
    }

    /// Returns the label results made with this profile carry. A certification is the
    /// profile's declaration, and the label says so.
    pub fn assurance(&self) -> String {
        match (&self.certification, self.development) {
            (_, true) => "development token, not certified".to_string(),
            (Some(c), false) => format!(
                "declared certified device (not confirmed): model {}, certificate {} ({})",
                c.model, c.certificate, c.issuer
            ),
            (None, false) => "no certification recorded".to_string(),
        }
    }

    /// Returns the free-text quirks.
    pub fn quirks(&self) -> &[String] {
        &self.quirks
    }

    /// Returns whether creating or destroying objects must exclude every other operation on
    /// the module in this process (a module whose object store breaks when objects are read
    /// while one is written, as SoftHSM 2.6 does).
    pub fn exclusive_object_writes(&self) -> bool {
        self.exclusive_object_writes
    }

    /// Returns the SM2 options.
    pub fn sm2(&self) -> &Sm2Options {
        &self.sm2
    }

    /// Returns the SM4 options.
    pub fn sm4(&self) -> &Sm4Options {
        &self.sm4
    }

    /// Returns the mechanism table.
    pub fn mechanisms(&self) -> &Mechanisms {
        &self.mechanisms
    }

    /// Returns this profile with the module library fixed to `path` (tests, and callers that
    /// located the module themselves); the resolution rule is then skipped.
    pub fn with_library(mut self, path: impl Into<PathBuf>) -> Profile {
        self.library_override = Some(path.into());
        self
    }

    /// Resolves the module library (rule in `hsm-profiles/README.md`):
    /// 1. a path set with [`Profile::with_library`];
    /// 2. `$GMCHAIN_PKCS11_MODULE`, when set and not empty;
    /// 3. `${VAR}` in `library` is expanded; an absolute path is used as is, and a path with a `/`
    ///    is taken relative to the profile's directory;
    /// 4. a bare file name is looked for in the profile's directory, `$CARGO_TARGET_DIR/{debug,
    ///    release}`, `./target/{debug,release}`, then `<profile dir>/../target/{debug,release}`;
    ///    the first existing file wins, and if none exists the bare name goes to the dynamic
    ///    loader's search path.
    pub fn resolve_library(&self) -> Result<LibraryPath, HsmError> {
        if let Some(path) = &self.library_override {
            return Ok(LibraryPath::File(path.clone()));
        }
        if let Some(path) = std::env::var_os(MODULE_ENV).filter(|v| !v.is_empty()) {
            return Ok(LibraryPath::File(PathBuf::from(path)));
        }
        let expanded = expand_env(&self.library).map_err(|reason| HsmError::Profile {
            file: self.file.clone(),
            field: "library".into(),
            reason,
        })?;
        let lib = PathBuf::from(&expanded);
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if lib.is_absolute() {
            return Ok(LibraryPath::File(lib));
        }
        if expanded.contains('/') {
            return Ok(LibraryPath::File(dir.join(lib)));
        }
        let candidates = self.search_path(&expanded);
        match candidates.iter().find(|p| p.is_file()) {
            Some(found) => Ok(LibraryPath::File(found.clone())),
            None => Ok(LibraryPath::Search {
                name: expanded,
                tried: candidates,
            }),
        }
    }

    fn search_path(&self, name: &str) -> Vec<PathBuf> {
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut out = vec![dir.join(name)];
        let profiles = ["debug", "release"];
        if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
            let target = PathBuf::from(target);
            out.extend(profiles.iter().map(|p| target.join(p).join(name)));
        }
        out.extend(
            profiles
                .iter()
                .map(|p| PathBuf::from("target").join(p).join(name)),
        );
        let parent = if dir.as_os_str().is_empty() {
            PathBuf::from("..")
        } else {
            dir.join("..")
        };
        out.extend(
            profiles
                .iter()
                .map(|p| parent.join("target").join(p).join(name)),
        );
        out
    }
}

/// Where the module library is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibraryPath {
    /// A file path.
    File(PathBuf),
    /// A bare name none of the search directories held: left to the dynamic loader.
    Search {
        /// The name.
        name: String,
        /// The paths tried first.
        tried: Vec<PathBuf>,
    },
}

impl LibraryPath {
    /// Returns the path (or name) handed to the loader.
    pub fn as_path(&self) -> &Path {
        match self {
            LibraryPath::File(p) => p,
            LibraryPath::Search { name, .. } => Path::new(name),
        }
    }
}

/// Expands `${NAME}` from the environment. `$` not followed by `{` is kept.
fn expand_env(input: &str) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {input:?}"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not an environment variable name"));
        }
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable {name} (used as ${{{name}}}) is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
}

/// A code as written: a TOML integer (`0x80474D11`) or a string (`"0x80474D11"`,
/// `"CKM_VENDOR_DEFINED + 0x4D11"`, `"CKM_EC_KEY_PAIR_GEN"`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Code {
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
enum CodeKind {
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
fn parse_code(code: &Code, kind: CodeKind) -> Result<u64, String> {
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
        let ciphertext = raw.ciphertext.map(|c| match c {
            RawCiphertext::C1c3c2 => CiphertextFormat::C1C3C2,
            RawCiphertext::C1c2c3 => CiphertextFormat::C1C2C3,
            RawCiphertext::Der => CiphertextFormat::Der,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    const SOFTTOKEN: &str = include_str!("../../../hsm-profiles/gmchain-softtoken.toml");
    const SOFTHSM: &str = include_str!("../../../hsm-profiles/softhsm2.toml");

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
                    assert!(
                        tried.contains(&PathBuf::from("target/debug/libnowhere-gmchain-test.so"))
                    );
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
}
