//! Configuration from the environment, read once at `C_Initialize`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;

/// The storage directory (required).
pub const ENV_DIR: &str = "GMCHAIN_SOFTTOKEN_DIR";
/// The number of slots (default 2).
pub const ENV_SLOTS: &str = "GMCHAIN_SOFTTOKEN_SLOTS";
/// `1` enables the test-only fault switch.
pub const ENV_FAULTS: &str = "GMCHAIN_SOFTTOKEN_FAULTS";
/// The default number of slots.
pub const DEFAULT_SLOTS: usize = 2;
/// The most slots.
pub const MAX_SLOTS: usize = 64;

/// The module's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The storage directory; slot N lives in `<dir>/slot<N>`.
    pub dir: PathBuf,
    /// Number of slots, ids 0..slots.
    pub slots: usize,
    /// Whether `gmchain_softtoken_set_fault` works.
    pub faults: bool,
}

impl Config {
    /// Reads the configuration through `get` (the environment, or a map in tests). The error
    /// is one line naming the variable and what to do.
    pub fn from_env(get: impl Fn(&str) -> Option<OsString>) -> Result<Self, String> {
        let dir = get(ENV_DIR).filter(|d| !d.is_empty()).ok_or_else(|| {
            format!(
                "{ENV_DIR} is not set: set it to the token storage directory (created if missing)"
            )
        })?;
        let slots = match get(ENV_SLOTS) {
            None => DEFAULT_SLOTS,
            Some(v) => v
                .to_str()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|n| (1..=MAX_SLOTS).contains(n))
                .ok_or_else(|| format!("{ENV_SLOTS} must be a number from 1 to {MAX_SLOTS}"))?,
        };
        let faults = get(ENV_FAULTS).is_some_and(|v| v == "1");
        Ok(Self {
            dir: PathBuf::from(dir),
            slots,
            faults,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn env_rules() {
        assert!(cfg(&[]).unwrap_err().contains(ENV_DIR));
        let c = cfg(&[(ENV_DIR, "/tmp/x")]).unwrap();
        assert_eq!((c.slots, c.faults), (2, false));
        let c = cfg(&[(ENV_DIR, "/tmp/x"), (ENV_SLOTS, "3"), (ENV_FAULTS, "1")]).unwrap();
        assert_eq!((c.slots, c.faults), (3, true));
        assert!(cfg(&[(ENV_DIR, "/tmp/x"), (ENV_SLOTS, "0")]).is_err());
        assert!(cfg(&[(ENV_DIR, "/tmp/x"), (ENV_SLOTS, "two")]).is_err());
    }
}
