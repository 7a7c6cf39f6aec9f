//! The token directory on disk.
//!
//! ```text
//! <GMCHAIN_SOFTTOKEN_DIR>/slot<N>/
//!     token.json   the whole token: record (label, serial, PIN retry counters, the token key
//!                  wrapped under each PIN) and every token object; secrets only sealed
//!     generation   the generation number of token.json, a cheap "has anything changed?" probe
//!     .lock        flock'ed exclusively around every read-modify-write
//! ```
//!
//! Every change is: take the exclusive lock, read `token.json` afresh, apply, write a temporary
//! file, fsync it, rename it over `token.json`, fsync the directory, then the same for
//! `generation`. Readers need no lock: a rename is atomic, so they see the old or the new file.
//! Reading is strict: unknown fields, wrong lengths, a wrong format tag or an oversized file are
//! errors naming the file, never guesses.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::keywrap::{MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS, PinWrap, Sealed};
use crate::object::{KeyType, Material, Object, ObjectClass, ObjectId, Usage};
use cryptoki_sys::CK_MECHANISM_TYPE;
use safefile::{DirLock, Mode};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The format tag of `token.json`. Changing the format means a new tag and a reader for the old.
pub const FORMAT: &str = "gmchain-softtoken/1";
/// The largest `token.json` read.
pub const MAX_STATE_LEN: u64 = 16 * 1024 * 1024;
/// The most objects a token holds.
pub const MAX_OBJECTS: usize = 100_000;

const STATE_FILE: &str = "token.json";
const GENERATION_FILE: &str = "generation";

/// The token record: present once `C_InitToken` ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Random token identity; its hex is the serial number.
    pub token_id: [u8; 8],
    /// The label, 32 bytes blank-padded.
    pub label: [u8; 32],
    /// Consecutive failed SO PIN attempts.
    pub so_failures: u32,
    /// Consecutive failed user PIN attempts.
    pub user_failures: u32,
    /// The token key wrapped under the SO PIN.
    pub so_pin: PinWrap,
    /// The token key wrapped under the user PIN, once `C_InitPIN` ran.
    pub user_pin: Option<PinWrap>,
}

/// Everything stored for one slot.
#[derive(Clone, Debug, Default)]
pub struct TokenState {
    /// Incremented on every write; never goes back, not even when the token is re-initialised.
    pub generation: u64,
    /// The record, or `None` for a token never initialised.
    pub record: Option<TokenRecord>,
    /// The token objects (`Material::Public` or `Material::Sealed` only).
    pub objects: Vec<Object>,
}

/// An exclusive lock on a slot directory, released on drop.
#[derive(Debug)]
pub struct SlotLock {
    _lock: DirLock,
}

/// One slot's directory.
#[derive(Debug, Clone)]
pub struct SlotStore {
    dir: PathBuf,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// Maps a failed write or lock to [`Error::Io`], keeping the step and the path.
fn fs_err(e: safefile::Error) -> Error {
    let (step, path, source) = e.into_parts();
    Error::Io {
        op: step.as_str(),
        path,
        source,
    }
}

impl SlotStore {
    /// Opens (creating it, owner-only, if needed) a slot directory.
    pub fn create(dir: PathBuf) -> Result<Self> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&dir).map_err(io_err("create directory", &dir))?;
        Ok(Self { dir })
    }

    /// Returns the directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock (waiting for other processes).
    pub fn lock(&self) -> Result<SlotLock> {
        let lock = DirLock::exclusive(&self.dir).map_err(fs_err)?;
        Ok(SlotLock { _lock: lock })
    }

    /// Returns the generation the `generation` file announces, or `None` if it is absent or
    /// unreadable (the caller then reads `token.json`).
    pub fn generation_hint(&self) -> Option<u64> {
        let mut buf = [0u8; 24];
        let mut f = File::open(self.dir.join(GENERATION_FILE)).ok()?;
        let n = f.read(&mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim_end().parse().ok()
    }

    /// Reads `token.json`; an absent file is a token never initialised.
    pub fn load(&self) -> Result<TokenState> {
        let path = self.dir.join(STATE_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenState::default()),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        if bytes.len() as u64 > MAX_STATE_LEN {
            return Err(Error::Corrupt {
                path,
                reason: format!("larger than {MAX_STATE_LEN} bytes"),
            });
        }
        decode_state(&bytes).map_err(|reason| Error::Corrupt { path, reason })
    }

    /// Writes the state (the caller holds the lock and has already advanced the generation).
    pub fn save(&self, _lock: &SlotLock, state: &TokenState) -> Result<()> {
        let bytes = encode_state(state).map_err(|reason| Error::Corrupt {
            path: self.dir.join(STATE_FILE),
            reason,
        })?;
        // Temporary files a crash left behind: no other writer is between its temporary write
        // and its rename while we hold the lock.
        safefile::remove_stale_temps(&self.dir).map_err(fs_err)?;
        self.replace(STATE_FILE, &bytes)?;
        self.replace(
            GENERATION_FILE,
            format!("{}\n", state.generation).as_bytes(),
        )?;
        Ok(())
    }

    /// Crash-safe replacement of one file: temporary file, fsync, rename, fsync of the directory.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<()> {
        safefile::write_atomic(&self.dir.join(name), bytes, Mode::PRIVATE).map_err(fs_err)
    }
}

// ---- the JSON form -------------------------------------------------------------------------

mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredState {
    format: String,
    generation: u64,
    token: StoredRecord,
    objects: Vec<StoredObject>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRecord {
    #[serde(with = "hexbytes")]
    token_id: Vec<u8>,
    #[serde(with = "hexbytes")]
    label: Vec<u8>,
    so_failures: u32,
    user_failures: u32,
    so_pin: StoredPinWrap,
    user_pin: Option<StoredPinWrap>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPinWrap {
    #[serde(with = "hexbytes")]
    salt: Vec<u8>,
    iterations: u32,
    #[serde(with = "hexbytes")]
    nonce: Vec<u8>,
    #[serde(with = "hexbytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSealed {
    #[serde(with = "hexbytes")]
    nonce: Vec<u8>,
    #[serde(with = "hexbytes")]
    ciphertext: Vec<u8>,
}

// The variants are the PKCS#11 class names (CKO_PUBLIC_KEY…), "-key" suffix included.
#[allow(clippy::enum_variant_names)]
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum StoredClass {
    PublicKey,
    PrivateKey,
    SecretKey,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum StoredKeyType {
    Sm2,
    Sm4,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredUsage {
    encrypt: bool,
    decrypt: bool,
    sign: bool,
    verify: bool,
    wrap: bool,
    unwrap: bool,
    derive: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredObject {
    #[serde(with = "hexbytes")]
    id: Vec<u8>,
    class: StoredClass,
    key_type: StoredKeyType,
    private: bool,
    modifiable: bool,
    destroyable: bool,
    #[serde(with = "hexbytes")]
    label: Vec<u8>,
    #[serde(with = "hexbytes")]
    key_id: Vec<u8>,
    #[serde(with = "hexbytes")]
    subject: Vec<u8>,
    #[serde(with = "hexbytes")]
    start_date: Vec<u8>,
    #[serde(with = "hexbytes")]
    end_date: Vec<u8>,
    local: bool,
    key_gen_mechanism: Option<u64>,
    usage: StoredUsage,
    sensitive: bool,
    extractable: bool,
    always_sensitive: bool,
    never_extractable: bool,
    /// SM2 public keys: `04 ‖ x ‖ y`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_point: Option<StoredHex>,
    /// Private and secret keys: the value sealed under the token key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<StoredSealed>,
}

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct StoredHex(#[serde(with = "hexbytes")] Vec<u8>);

fn arr<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("{what} must be {N} bytes, found {}", v.len()))
}

fn pin_wrap_from(s: StoredPinWrap, what: &str) -> Result<PinWrap, String> {
    if !(MIN_PBKDF2_ITERATIONS..=MAX_PBKDF2_ITERATIONS).contains(&s.iterations) {
        return Err(format!(
            "{what}: PBKDF2 iterations {} outside {MIN_PBKDF2_ITERATIONS}..={MAX_PBKDF2_ITERATIONS}",
            s.iterations
        ));
    }
    if s.ciphertext.len() != 32 {
        return Err(format!("{what}: wrapped token key must be 32 bytes"));
    }
    Ok(PinWrap {
        salt: arr(&s.salt, "PIN salt")?,
        iterations: s.iterations,
        nonce: arr(&s.nonce, "PIN wrap nonce")?,
        ciphertext: s.ciphertext,
    })
}

fn pin_wrap_to(w: &PinWrap) -> StoredPinWrap {
    StoredPinWrap {
        salt: w.salt.to_vec(),
        iterations: w.iterations,
        nonce: w.nonce.to_vec(),
        ciphertext: w.ciphertext.clone(),
    }
}

fn object_from(s: StoredObject) -> Result<Object, String> {
    let id = ObjectId(arr(&s.id, "object id")?);
    let class = match s.class {
        StoredClass::PublicKey => ObjectClass::PublicKey,
        StoredClass::PrivateKey => ObjectClass::PrivateKey,
        StoredClass::SecretKey => ObjectClass::SecretKey,
    };
    let key_type = match s.key_type {
        StoredKeyType::Sm2 => KeyType::Sm2,
        StoredKeyType::Sm4 => KeyType::Sm4,
    };
    let material = match (class, key_type, s.public_point, s.sealed) {
        (ObjectClass::PublicKey, KeyType::Sm2, Some(p), None) => Material::Public(
            crypto_sm::sm2::parse_public_key(&p.0)
                .map_err(|e| format!("object {}: public point: {e}", hex::encode(id.0)))?,
        ),
        (ObjectClass::PrivateKey, KeyType::Sm2, None, Some(sealed))
        | (ObjectClass::SecretKey, KeyType::Sm4, None, Some(sealed)) => {
            let expected = if key_type == KeyType::Sm2 { 48 } else { 32 };
            if sealed.ciphertext.len() != expected {
                return Err(format!(
                    "object {}: sealed value must be {expected} bytes",
                    hex::encode(id.0)
                ));
            }
            Material::Sealed(Sealed {
                nonce: arr(&sealed.nonce, "sealed nonce")?,
                ciphertext: sealed.ciphertext,
            })
        }
        _ => {
            return Err(format!(
                "object {}: class, key type and value do not fit together",
                hex::encode(id.0)
            ));
        }
    };
    let bounded = |v: Vec<u8>, what: &str| {
        if v.len() > crate::attr::MAX_NAME_LEN {
            Err(format!("object {}: {what} too long", hex::encode(id.0)))
        } else {
            Ok(v)
        }
    };
    let date = |v: Vec<u8>| {
        if v.is_empty() || v.len() == 8 {
            Ok(v)
        } else {
            Err(format!(
                "object {}: a date is 0 or 8 bytes",
                hex::encode(id.0)
            ))
        }
    };
    let u = s.usage;
    Ok(Object {
        id,
        class,
        key_type,
        token: true,
        private: s.private,
        modifiable: s.modifiable,
        destroyable: s.destroyable,
        label: bounded(s.label, "label")?,
        key_id: bounded(s.key_id, "id")?,
        subject: bounded(s.subject, "subject")?,
        start_date: date(s.start_date)?,
        end_date: date(s.end_date)?,
        local: s.local,
        key_gen_mechanism: s.key_gen_mechanism.map(|m| m as CK_MECHANISM_TYPE),
        usage: Usage {
            encrypt: u.encrypt,
            decrypt: u.decrypt,
            sign: u.sign,
            verify: u.verify,
            wrap: u.wrap,
            unwrap: u.unwrap,
            derive: u.derive,
        },
        sensitive: s.sensitive,
        extractable: s.extractable,
        always_sensitive: s.always_sensitive,
        never_extractable: s.never_extractable,
        material,
    })
}

// CK_MECHANISM_TYPE is 64 bits here but 32 on some platforms; the stored form is always u64.
#[allow(clippy::useless_conversion)]
fn object_to(o: &Object) -> Result<StoredObject, String> {
    let (public_point, sealed) = match &o.material {
        Material::Public(p) => (Some(StoredHex(p.as_bytes().to_vec())), None),
        Material::Sealed(s) => (
            None,
            Some(StoredSealed {
                nonce: s.nonce.to_vec(),
                ciphertext: s.ciphertext.clone(),
            }),
        ),
        // Refused here so that no code path can ever write a plaintext secret.
        Material::Plain(_) => return Err("refusing to store an unsealed secret".into()),
    };
    let u = o.usage;
    Ok(StoredObject {
        id: o.id.0.to_vec(),
        class: match o.class {
            ObjectClass::PublicKey => StoredClass::PublicKey,
            ObjectClass::PrivateKey => StoredClass::PrivateKey,
            ObjectClass::SecretKey => StoredClass::SecretKey,
        },
        key_type: match o.key_type {
            KeyType::Sm2 => StoredKeyType::Sm2,
            KeyType::Sm4 => StoredKeyType::Sm4,
        },
        private: o.private,
        modifiable: o.modifiable,
        destroyable: o.destroyable,
        label: o.label.clone(),
        key_id: o.key_id.clone(),
        subject: o.subject.clone(),
        start_date: o.start_date.clone(),
        end_date: o.end_date.clone(),
        local: o.local,
        key_gen_mechanism: o.key_gen_mechanism.map(u64::from),
        usage: StoredUsage {
            encrypt: u.encrypt,
            decrypt: u.decrypt,
            sign: u.sign,
            verify: u.verify,
            wrap: u.wrap,
            unwrap: u.unwrap,
            derive: u.derive,
        },
        sensitive: o.sensitive,
        extractable: o.extractable,
        always_sensitive: o.always_sensitive,
        never_extractable: o.never_extractable,
        public_point,
        sealed,
    })
}

fn decode_state(bytes: &[u8]) -> Result<TokenState, String> {
    let s: StoredState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if s.format != FORMAT {
        return Err(format!("format {:?}, expected {FORMAT:?}", s.format));
    }
    if s.objects.len() > MAX_OBJECTS {
        return Err(format!("more than {MAX_OBJECTS} objects"));
    }
    let r = s.token;
    let record = TokenRecord {
        token_id: arr(&r.token_id, "token id")?,
        label: arr(&r.label, "token label")?,
        so_failures: r.so_failures,
        user_failures: r.user_failures,
        so_pin: pin_wrap_from(r.so_pin, "SO PIN")?,
        user_pin: r
            .user_pin
            .map(|w| pin_wrap_from(w, "user PIN"))
            .transpose()?,
    };
    let objects = s
        .objects
        .into_iter()
        .map(object_from)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, o) in objects.iter().enumerate() {
        if objects[..i].iter().any(|p| p.id == o.id) {
            return Err(format!("object id {} appears twice", hex::encode(o.id.0)));
        }
    }
    Ok(TokenState {
        generation: s.generation,
        record: Some(record),
        objects,
    })
}

fn encode_state(state: &TokenState) -> Result<Vec<u8>, String> {
    let Some(r) = &state.record else {
        return Err("an uninitialised token has nothing to store".into());
    };
    let stored = StoredState {
        format: FORMAT.into(),
        generation: state.generation,
        token: StoredRecord {
            token_id: r.token_id.to_vec(),
            label: r.label.to_vec(),
            so_failures: r.so_failures,
            user_failures: r.user_failures,
            so_pin: pin_wrap_to(&r.so_pin),
            user_pin: r.user_pin.as_ref().map(pin_wrap_to),
        },
        objects: state
            .objects
            .iter()
            .map(object_to)
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut out = serde_json::to_vec_pretty(&stored).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TokenRecord {
        TokenRecord {
            token_id: [1; 8],
            label: [b' '; 32],
            so_failures: 1,
            user_failures: 2,
            so_pin: PinWrap {
                salt: [3; 16],
                iterations: 10_000,
                nonce: [4; 12],
                ciphertext: vec![5; 32],
            },
            user_pin: None,
        }
    }

    #[test]
    fn round_trip_and_generation_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::create(dir.path().join("slot0")).unwrap();
        assert!(store.load().unwrap().record.is_none());
        assert_eq!(store.generation_hint(), None);
        let mut point = [0u8; 65];
        point.copy_from_slice(
            &hex::decode(concat!(
                "04",
                "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7",
                "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0"
            ))
            .unwrap(),
        );
        let mut o = Object::with_defaults(
            ObjectId([9; 16]),
            ObjectClass::PublicKey,
            KeyType::Sm2,
            Material::Public(crypto::PublicKey::from_uncompressed(&point).unwrap()),
        );
        o.token = true;
        o.label = b"gen".to_vec();
        let state = TokenState {
            generation: 7,
            record: Some(record()),
            objects: vec![o],
        };
        let lock = store.lock().unwrap();
        store.save(&lock, &state).unwrap();
        drop(lock);
        assert_eq!(store.generation_hint(), Some(7));
        let back = store.load().unwrap();
        assert_eq!(back.generation, 7);
        assert_eq!(back.record, Some(record()));
        assert_eq!(back.objects.len(), 1);
        assert_eq!(back.objects[0].label, b"gen");
        assert!(back.objects[0].token);
    }

    #[test]
    fn a_save_clears_temporary_files_a_crash_left_and_leaves_none_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::create(dir.path().join("slot0")).unwrap();
        // What a process killed between its temporary write and its rename leaves behind.
        let stale = store.dir().join(format!(
            "{}0123456789abcdef-token.json",
            safefile::TEMP_PREFIX
        ));
        fs::write(&stale, b"{").unwrap();
        let state = TokenState {
            generation: 1,
            record: Some(record()),
            objects: vec![],
        };
        let lock = store.lock().unwrap();
        store.save(&lock, &state).unwrap();
        drop(lock);
        let mut names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".lock", "generation", "token.json"]);
        assert_eq!(store.load().unwrap().generation, 1);
    }

    #[test]
    fn strict_parsing() {
        let state = TokenState {
            generation: 1,
            record: Some(record()),
            objects: vec![],
        };
        let good = String::from_utf8(encode_state(&state).unwrap()).unwrap();
        assert!(decode_state(good.as_bytes()).is_ok());
        let unknown = good.replacen("\"generation\"", "\"extra\": 1, \"generation\"", 1);
        assert!(
            decode_state(unknown.as_bytes())
                .unwrap_err()
                .contains("unknown field")
        );
        let wrong_format = good.replace(FORMAT, "gmchain-softtoken/0");
        assert!(decode_state(wrong_format.as_bytes()).is_err());
        let weak = good.replace("\"iterations\": 10000", "\"iterations\": 1000");
        assert!(
            decode_state(weak.as_bytes())
                .unwrap_err()
                .contains("iterations")
        );
        assert!(decode_state(b"{").is_err());
        let plain = TokenState {
            generation: 1,
            record: Some(record()),
            objects: vec![Object::with_defaults(
                ObjectId([1; 16]),
                ObjectClass::SecretKey,
                KeyType::Sm4,
                Material::Plain(std::sync::Arc::new(crate::object::Plain::Sm4(
                    crate::keywrap::KeyBytes::from_slice(&[0; 16]).unwrap(),
                ))),
            )],
        };
        assert!(encode_state(&plain).unwrap_err().contains("unsealed"));
    }
}
