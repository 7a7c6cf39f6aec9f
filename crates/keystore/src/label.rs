use crate::KeystoreError;
use core::fmt;

/// A key's name in the keystore: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with
/// `.`. Every label is therefore a plain file name component (no `/`, no `..`, never hidden), so
/// `<label>.key.pem` cannot point outside the keystore directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

impl Label {
    /// The longest label, in characters.
    pub const MAX_LEN: usize = 64;

    /// Parses a label, refusing anything outside the alphabet or the length.
    pub fn new(label: &str) -> Result<Self, KeystoreError> {
        let invalid = |reason| KeystoreError::InvalidLabel {
            label: label.to_string(),
            reason,
        };
        if label.is_empty() {
            return Err(invalid("is empty"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid("holds a character outside A-Z a-z 0-9 . _ -"));
        }
        // All allowed characters are ASCII, so bytes and characters agree from here on.
        if label.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 64 characters"));
        }
        if label.starts_with('.') {
            // A leading dot would hide the files and makes "." and ".." possible.
            return Err(invalid("starts with '.'"));
        }
        Ok(Self(label.to_string()))
    }

    /// Returns the label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(label: &str) -> &'static str {
        match Label::new(label) {
            Err(KeystoreError::InvalidLabel { label: l, reason }) => {
                assert_eq!(l, label, "the error names the label");
                reason
            }
            other => panic!("{label:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_alphabet_up_to_64() {
        for ok in ["a", "A-z_0.9", "node-1.sign", "a..b", "x.", "-", "_"] {
            assert_eq!(Label::new(ok).unwrap().as_str(), ok);
        }
        let max = "k".repeat(64);
        assert_eq!(Label::new(&max).unwrap().as_str(), max);
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(reason(""), "is empty");
        assert_eq!(reason(&"k".repeat(65)), "is longer than 64 characters");
        assert_eq!(reason("."), "starts with '.'");
        assert_eq!(reason(".."), "starts with '.'");
        assert_eq!(reason(".hidden"), "starts with '.'");
        for bad in [
            "../x", "a/b", "/abs", "a\\b", "a b", "a\0b", "a\nb", "ä", "key:1", "~x", "*",
        ] {
            assert_eq!(
                reason(bad),
                "holds a character outside A-Z a-z 0-9 . _ -",
                "{bad:?}"
            );
        }
        // 64 characters, but 65 bytes: refused for the character, not the length.
        assert_eq!(
            reason(&format!("{}é", "k".repeat(62))),
            "holds a character outside A-Z a-z 0-9 . _ -"
        );
    }

    #[test]
    fn message_names_the_label_and_the_rule() {
        let msg = Label::new("../x").unwrap_err().to_string();
        assert!(msg.contains("\"../x\""), "{msg}");
        assert!(msg.contains("A-Z a-z 0-9 . _ -"), "{msg}");
    }
}
