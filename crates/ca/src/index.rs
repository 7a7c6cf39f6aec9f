//! The index of issued certificates.

use crate::CaError;
use serde::{Deserialize, Serialize};

/// A certificate's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Status {
    Valid,
    Revoked { at: u64, reason: String },
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    pub subject: String,
    pub role: String,
    pub not_before: u64,
    pub not_after: u64,
    /// SM3 of the certificate's DER.
    pub fingerprint: String,
    pub status: Status,
    /// The serial this certificate renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
    /// The serial that renewed this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_by: Option<String>,
    /// For a dual pair: the serial of the other certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
}

/// Everything the CA has issued, and the last CRL number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub entries: Vec<IndexEntry>,
    pub crl_number: u64,
}

impl Index {
    /// Returns the entry with this serial.
    pub fn get(&self, serial: &str) -> Result<&IndexEntry, CaError> {
        let s = serial.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|e| e.serial == s)
            .ok_or(CaError::UnknownSerial { serial: s })
    }

    /// Returns the entry with this serial, mutably.
    pub fn get_mut(&mut self, serial: &str) -> Result<&mut IndexEntry, CaError> {
        let s = serial.to_ascii_lowercase();
        self.entries
            .iter_mut()
            .find(|e| e.serial == s)
            .ok_or(CaError::UnknownSerial { serial: s })
    }

    /// Returns whether a serial was ever issued.
    pub fn contains(&self, serial: &str) -> bool {
        let s = serial.to_ascii_lowercase();
        self.entries.iter().any(|e| e.serial == s)
    }

    /// Adds an entry, refusing a serial already used.
    pub fn add(&mut self, entry: IndexEntry) -> Result<(), CaError> {
        if self.contains(&entry.serial) {
            return Err(CaError::SerialReused {
                serial: entry.serial,
            });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Returns the revoked entries.
    pub fn revoked(&self) -> impl Iterator<Item = &IndexEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, Status::Revoked { .. }))
    }
}
