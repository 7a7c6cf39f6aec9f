//! PKCS#11 URIs (RFC 7512) naming a key: `pkcs11:token=gmchain-dev;object=node-1;id=%01%02;type=private`.

use crate::HsmError;
use std::fmt;
use std::path::PathBuf;

/// The object classes a URI can ask for (RFC 7512 §2.3 `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`: a private key.
    Private,
    /// `type=public`: a public key.
    Public,
    /// `type=secret-key`: a secret (SM4) key.
    SecretKey,
    /// `type=cert`: a certificate.
    Cert,
    /// `type=data`: a data object.
    Data,
}

impl ObjectType {
    fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "private" => ObjectType::Private,
            "public" => ObjectType::Public,
            "secret-key" => ObjectType::SecretKey,
            "cert" => ObjectType::Cert,
            "data" => ObjectType::Data,
            _ => return None,
        })
    }

    /// Returns the URI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Cert => "cert",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed PKCS#11 URI. Absent attributes match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUri {
    /// Token label.
    pub token: Option<String>,
    /// Token manufacturer ID.
    pub manufacturer: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
    /// Token model.
    pub model: Option<String>,
    /// Object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// Object ID (`CKA_ID`), bytes.
    pub id: Option<Vec<u8>>,
    /// Object class.
    pub object_type: Option<ObjectType>,
    /// `pin-source` query attribute: a file holding the PIN.
    pub pin_source: Option<PathBuf>,
    /// Attributes that were accepted but have no effect, each with the reason.
    pub notes: Vec<String>,
}

const PATH_ATTRS: &[&str] = &[
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
];
const IGNORED_PATH_ATTRS: &[&str] = &[
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
];

impl KeyUri {
    /// Parses a `pkcs11:` URI. `pin-value` is refused (PINs come from `--pass-file` or
    /// `--pass-env`); `module-path`/`module-name` and the library/slot attributes are accepted
    /// and ignored, with a note, because the profile names the module and the token label
    /// selects the slot.
    pub fn parse(uri: &str) -> Result<KeyUri, HsmError> {
        // Never keep a URI that might carry a PIN in an error message.
        let shown = || {
            if uri.contains("pin-value") {
                "pkcs11:…(redacted)".to_string()
            } else {
                uri.to_string()
            }
        };
        let err = |reason: String| HsmError::Uri {
            uri: shown(),
            reason,
        };
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| err("a PKCS#11 URI starts with \"pkcs11:\"".into()))?;
        if rest.contains('#') {
            return Err(err("a PKCS#11 URI has no fragment ('#')".into()));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = KeyUri::default();
        let mut seen: Vec<String> = Vec::new();
        let mut check_dup = |name: &str| -> Result<(), HsmError> {
            if seen.iter().any(|s| s == name) {
                return Err(err(format!("attribute {name:?} appears twice")));
            }
            seen.push(name.to_string());
            Ok(())
        };

        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("path attribute {part:?} has no '='")))?;
            check_dup(name)?;
            let bytes = percent_decode(value).map_err(|r| err(format!("{name}: {r}")))?;
            let text = || {
                String::from_utf8(bytes.clone())
                    .map_err(|_| err(format!("{name}: value is not UTF-8 after percent-decoding")))
            };
            match name {
                "token" => out.token = Some(text()?),
                "manufacturer" => out.manufacturer = Some(text()?),
                "serial" => out.serial = Some(text()?),
                "model" => out.model = Some(text()?),
                "object" => out.object = Some(text()?),
                "id" => out.id = Some(bytes),
                "type" => {
                    let t = text()?;
                    out.object_type = Some(ObjectType::parse(&t).ok_or_else(|| {
                        err(format!(
                            "type={t:?} is not one of private, public, secret-key, cert, data"
                        ))
                    })?);
                }
                n if IGNORED_PATH_ATTRS.contains(&n) => out.notes.push(format!(
                    "{n} ignored: the profile names the module and the token label selects the slot"
                )),
                n if n.starts_with("x-") => {
                    return Err(err(format!(
                        "vendor attribute {n:?} is not understood by gmchain"
                    )));
                }
                n => {
                    return Err(err(format!(
                        "unknown path attribute {n:?}; gmchain understands {}",
                        PATH_ATTRS.join(", ")
                    )));
                }
            }
        }

        if let Some(query) = query {
            for part in query.split('&').filter(|p| !p.is_empty()) {
                let (name, value) = part
                    .split_once('=')
                    .ok_or_else(|| err(format!("query attribute {part:?} has no '='")))?;
                check_dup(name)?;
                match name {
                    "pin-value" => {
                        return Err(err(
                            "pin-value is refused: a PIN in a URI ends up in shell history, logs and process lists; PINs come from --pass-file or --pass-env".into(),
                        ));
                    }
                    "pin-source" => {
                        let bytes =
                            percent_decode(value).map_err(|r| err(format!("{name}: {r}")))?;
                        let text = String::from_utf8(bytes)
                            .map_err(|_| err("pin-source is not UTF-8".into()))?;
                        let path = text.strip_prefix("file:").unwrap_or(&text);
                        let path = path.strip_prefix("//").map_or(path, |p| {
                            // file://host/path: only the local host is meaningful.
                            p.strip_prefix("localhost").unwrap_or(p)
                        });
                        if path.is_empty() {
                            return Err(err("pin-source names no file".into()));
                        }
                        out.pin_source = Some(PathBuf::from(path));
                    }
                    "module-path" | "module-name" => out
                        .notes
                        .push(format!("{name} ignored: the HSM profile names the module")),
                    n => {
                        return Err(err(format!(
                            "unknown query attribute {n:?}; gmchain understands pin-source (and ignores module-name, module-path)"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Returns a URI naming one key object on a token. An empty label or ID is left out (an
    /// object without one cannot be matched on it).
    pub fn for_key(token: &str, label: &str, id: &[u8], object_type: ObjectType) -> KeyUri {
        KeyUri {
            token: Some(token.to_string()),
            object: (!label.is_empty()).then(|| label.to_string()),
            id: (!id.is_empty()).then(|| id.to_vec()),
            object_type: Some(object_type),
            ..KeyUri::default()
        }
    }

    /// Returns this URI with `type` replaced.
    pub fn with_type(&self, object_type: ObjectType) -> KeyUri {
        KeyUri {
            object_type: Some(object_type),
            ..self.clone()
        }
    }

    /// Returns whether the URI names an object (by label or ID) rather than "everything".
    pub fn names_an_object(&self) -> bool {
        self.object.is_some() || self.id.is_some()
    }
}

impl fmt::Display for KeyUri {
    /// Writes the canonical form: path attributes in RFC 7512 order, values percent-encoded
    /// where needed, `id` always fully percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let mut text = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={}", percent_encode(v.as_bytes(), false)));
            }
        };
        text("token", &self.token);
        text("manufacturer", &self.manufacturer);
        text("serial", &self.serial);
        text("model", &self.model);
        text("object", &self.object);
        if let Some(id) = &self.id {
            parts.push(format!("id={}", percent_encode(id, true)));
        }
        if let Some(t) = self.object_type {
            parts.push(format!("type={}", t.as_str()));
        }
        write!(f, "pkcs11:{}", parts.join(";"))?;
        if let Some(p) = &self.pin_source {
            write!(
                f,
                "?pin-source={}",
                percent_encode(p.to_string_lossy().as_bytes(), false)
            )?;
        }
        Ok(())
    }
}

fn percent_decode(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape at byte {i} (need %XX)"))?;
                out.push(hex);
                i += 3;
            }
            c if c.is_ascii_control() || c == b' ' => {
                return Err(format!(
                    "byte {i} is a space or control character; percent-encode it"
                ));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn percent_encode(bytes: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        // RFC 7512 pchar minus ';' (path separator), '?', '&', '#' and '%'.
        let plain = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b':'
                    | b'['
                    | b']'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b'/'
            );
        if plain && !all {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: HsmError) -> String {
        match e {
            HsmError::Uri { reason, .. } => reason,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn parses_the_example() {
        let u =
            KeyUri::parse("pkcs11:token=gmchain-dev;object=node-1;id=%01%02;type=private").unwrap();
        assert_eq!(u.token.as_deref(), Some("gmchain-dev"));
        assert_eq!(u.object.as_deref(), Some("node-1"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert!(u.notes.is_empty());
        assert_eq!(
            u.to_string(),
            "pkcs11:token=gmchain-dev;object=node-1;id=%01%02;type=private"
        );
        assert_eq!(KeyUri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn percent_decoding_and_encoding() {
        let u =
            KeyUri::parse("pkcs11:object=my%20key%3bx;manufacturer=%E5%9B%BD%E5%AF%86").unwrap();
        assert_eq!(u.object.as_deref(), Some("my key;x"));
        assert_eq!(u.manufacturer.as_deref(), Some("国密"));
        let back = KeyUri::parse(&u.to_string()).unwrap();
        assert_eq!(back, u);
        assert!(reason(KeyUri::parse("pkcs11:object=a%2").unwrap_err()).contains("percent-escape"));
        assert!(
            reason(KeyUri::parse("pkcs11:object=a%zz").unwrap_err()).contains("percent-escape")
        );
        assert!(reason(KeyUri::parse("pkcs11:object=%ff").unwrap_err()).contains("UTF-8"));
        // id is bytes: non-UTF-8 is fine
        assert_eq!(
            KeyUri::parse("pkcs11:id=%ff%00").unwrap().id,
            Some(vec![0xff, 0])
        );
        assert_eq!(KeyUri::parse("pkcs11:").unwrap(), KeyUri::default());
    }

    #[test]
    fn refuses_pin_value_and_names_problems() {
        let e = KeyUri::parse("pkcs11:token=t?pin-value=1234").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("--pass-file"), "{msg}");
        assert!(!msg.contains("1234"), "the PIN must not be echoed: {msg}");

        assert!(reason(KeyUri::parse("http://x").unwrap_err()).contains("pkcs11:"));
        assert!(reason(KeyUri::parse("pkcs11:colour=red").unwrap_err()).contains("\"colour\""));
        assert!(reason(KeyUri::parse("pkcs11:type=secret").unwrap_err()).contains("secret"));
        assert!(reason(KeyUri::parse("pkcs11:object=a;object=b").unwrap_err()).contains("twice"));
        assert!(reason(KeyUri::parse("pkcs11:object").unwrap_err()).contains("'='"));
        assert!(reason(KeyUri::parse("pkcs11:object=a?foo=b").unwrap_err()).contains("\"foo\""));
        assert!(reason(KeyUri::parse("pkcs11:x-vendor=1").unwrap_err()).contains("x-vendor"));
    }

    #[test]
    fn pin_source_and_ignored_attributes() {
        let u = KeyUri::parse(
            "pkcs11:token=t;slot-id=3?pin-source=file:/run/secrets/pin&module-path=/usr/lib/x.so",
        )
        .unwrap();
        assert_eq!(u.pin_source, Some(PathBuf::from("/run/secrets/pin")));
        assert_eq!(u.notes.len(), 2);
        assert!(u.notes.iter().any(|n| n.starts_with("slot-id ignored")));
        assert!(u.notes.iter().any(|n| n.starts_with("module-path ignored")));
        let u = KeyUri::parse("pkcs11:?pin-source=%2Fetc%2Fpin").unwrap();
        assert_eq!(u.pin_source, Some(PathBuf::from("/etc/pin")));
        let u = KeyUri::parse("pkcs11:?pin-source=file:///etc/pin").unwrap();
        assert_eq!(u.pin_source, Some(PathBuf::from("/etc/pin")));
    }
}
