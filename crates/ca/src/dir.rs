//! The CA directory, its lock and atomic file writes.

use crate::AuditLog;
use crate::error::{CaError, fs_err, io};
use crate::index::Index;
use safefile::{DirLock, LockKind, Mode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MARKER: &str = "CA";
const FORMAT: u32 = 1;
const INDEX: &str = "index.json";

/// A root CA or an agency (intermediate) CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaKind {
    Root,
    Agency,
}

/// Where the CA's private key lives. Never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeyLocation {
    /// A PKCS#11 token, through a module profile.
    Pkcs11 { uri: String, profile: PathBuf },
    /// The encrypted development keystore in `keys/` inside the CA directory.
    Keystore { label: String },
}

/// What the `CA` file records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaMeta {
    pub format: u32,
    pub kind: CaKind,
    /// The CA certificate's common name.
    pub name: String,
    /// The organisation this CA anchors.
    pub organisation: String,
    pub key: KeyLocation,
}

impl CaMeta {
    /// Describes a new CA.
    pub fn new(kind: CaKind, name: &str, organisation: &str, key: KeyLocation) -> Self {
        Self {
            format: FORMAT,
            kind,
            name: name.to_string(),
            organisation: organisation.to_string(),
            key,
        }
    }
}

/// An open CA directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct CaDir {
    path: PathBuf,
    meta: CaMeta,
    _lock: DirLock,
}

fn lock(path: &Path, exclusive: bool) -> Result<DirLock, CaError> {
    let kind = if exclusive {
        LockKind::Exclusive
    } else {
        LockKind::Shared
    };
    DirLock::acquire(path, kind, true).map_err(fs_err)
}

impl CaDir {
    /// Creates a CA directory (mode 0700) holding only the metadata, an empty index and an empty
    /// audit log, and returns it locked.
    pub fn create(path: &Path, meta: CaMeta) -> Result<Self, CaError> {
        // New or empty, except for a `keys/` keystore made for this CA just before.
        if path.exists() {
            for entry in std::fs::read_dir(path).map_err(io(path))? {
                let entry = entry.map_err(io(path))?;
                let own_keystore =
                    entry.file_name() == "keys" && matches!(meta.key, KeyLocation::Keystore { .. });
                if !own_keystore {
                    return Err(CaError::Exists {
                        path: path.to_path_buf(),
                    });
                }
            }
        }
        std::fs::create_dir_all(path.join("certs")).map_err(io(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(io(path))?;
        }
        let lock = lock(path, true)?;
        let dir = CaDir {
            path: path.to_path_buf(),
            meta,
            _lock: lock,
        };
        dir.write_json(MARKER, &dir.meta)?;
        dir.write_index(&Index::default())?;
        Ok(dir)
    }

    /// Opens an existing CA directory, with an exclusive lock for commands that change it and
    /// a shared lock for those that only read.
    pub fn open(path: &Path, exclusive: bool) -> Result<Self, CaError> {
        let marker = path.join(MARKER);
        if !marker.exists() {
            return Err(CaError::NotACa {
                path: path.to_path_buf(),
                reason: format!("no {MARKER} file (create one with `gmchain ca init`)"),
            });
        }
        let lock = lock(path, exclusive)?;
        let text = std::fs::read_to_string(&marker).map_err(io(&marker))?;
        let meta: CaMeta = serde_json::from_str(&text).map_err(|e| CaError::Corrupt {
            path: marker.clone(),
            reason: e.to_string(),
        })?;
        if meta.format != FORMAT {
            return Err(CaError::NotACa {
                path: path.to_path_buf(),
                reason: format!("format {} (this gmchain reads {FORMAT})", meta.format),
            });
        }
        Ok(CaDir {
            path: path.to_path_buf(),
            meta,
            _lock: lock,
        })
    }

    /// Returns the directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the metadata.
    pub fn meta(&self) -> &CaMeta {
        &self.meta
    }

    /// Returns the audit log.
    pub fn audit(&self) -> AuditLog {
        AuditLog::new(self.path.join("audit.log"))
    }

    /// Reads the index.
    pub fn read_index(&self) -> Result<Index, CaError> {
        let p = self.path.join(INDEX);
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        serde_json::from_str(&text).map_err(|e| CaError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Writes the index atomically: the commit point of every command.
    pub fn write_index(&self, index: &Index) -> Result<(), CaError> {
        self.write_json(INDEX, index)
    }

    /// Writes the index like [`CaDir::write_index`]; on failure, also says whether the new
    /// index is in place nonetheless (the failure came after the rename, at the directory's
    /// fsync).
    pub(crate) fn commit_index(&self, index: &Index) -> Result<(), (CaError, bool)> {
        let bytes = self.json(INDEX, index).map_err(|e| (e, false))?;
        safefile::write_atomic(&self.path.join(INDEX), &bytes, Mode::PUBLIC).map_err(|e| {
            let placed = e.step() == safefile::Step::SyncDir;
            (fs_err(e), placed)
        })
    }

    fn json<T: Serialize>(&self, name: &str, value: &T) -> Result<Vec<u8>, CaError> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| CaError::Corrupt {
            path: self.path.join(name),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), CaError> {
        let bytes = self.json(name, value)?;
        self.write_file(name, &bytes)
    }

    /// Writes `name` (relative to the directory) atomically, replacing any old version:
    /// temporary file, fsync, rename, fsync of the directory.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), CaError> {
        safefile::write_atomic(&self.path.join(name), bytes, Mode::PUBLIC).map_err(fs_err)
    }

    /// Writes a new certificate file; refuses to overwrite one (serials never repeat).
    pub fn write_cert(&self, serial_hex: &str, pem: &[u8]) -> Result<PathBuf, CaError> {
        let name = format!("certs/{serial_hex}.pem");
        if self.path.join(&name).exists() {
            return Err(CaError::SerialReused {
                serial: serial_hex.to_string(),
            });
        }
        self.write_file(&name, pem)?;
        Ok(self.path.join(name))
    }

    /// Removes a certificate file that the index does not record (written by an action that
    /// then failed).
    pub(crate) fn remove_cert(&self, serial_hex: &str) -> Result<(), CaError> {
        let p = self.path.join(format!("certs/{serial_hex}.pem"));
        std::fs::remove_file(&p).map_err(io(&p))
    }

    /// Reads a file of the directory.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, CaError> {
        let p = self.path.join(name);
        std::fs::read(&p).map_err(io(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> CaMeta {
        CaMeta::new(
            CaKind::Root,
            "Root CA",
            "Gov",
            KeyLocation::Keystore { label: "ca".into() },
        )
    }

    #[test]
    fn create_open_and_refuse_reuse() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ca");
        {
            let d = CaDir::create(&p, meta()).unwrap();
            assert_eq!(d.read_index().unwrap(), Index::default());
            d.write_cert("01ab", b"pem").unwrap();
            assert!(matches!(
                d.write_cert("01ab", b"other"),
                Err(CaError::SerialReused { .. })
            ));
        }
        assert!(matches!(
            CaDir::create(&p, meta()),
            Err(CaError::Exists { .. })
        ));
        let d = CaDir::open(&p, false).unwrap();
        assert_eq!(d.meta(), &meta());
        assert!(matches!(
            CaDir::open(t.path(), true),
            Err(CaError::NotACa { .. })
        ));
    }

    #[test]
    fn exclusive_lock_serialises_two_admins() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ca");
        drop(CaDir::create(&p, meta()).unwrap());
        let held = CaDir::open(&p, true).unwrap();
        let p2 = p.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let _d = CaDir::open(&p2, true).unwrap();
            tx.send(()).unwrap();
        });
        // The second admin waits while the first holds the lock.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        h.join().unwrap();
    }
}
