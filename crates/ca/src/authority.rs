//! The CA's rules as one type: what `gmchain ca` does once it has read its inputs.
//!
//! An [`Authority`] is an open CA directory with what it works with, all passed in so that
//! tests fix them ([`Context`]): its key (a `crypto::Signer`, so a token key or a keystore
//! key), a `RandomSource` (serials, keys the CA generates, envelopes, escrow encryption), a
//! [`Clock`] and the operator's name. It exists only inside [`CaDir::audited`], which records
//! the action in the audit log, signed with the CA key: `done` with the action's detail, or
//! `refused` with the reason (a rule's refusal starts with its stable code,
//! `CA_KEY_COMPROMISED: …`). So no change and no refusal goes unrecorded: the `done` entry of
//! an action that changes the CA is written ahead of its commit, and an action whose entry
//! cannot be written does not happen.
//!
//! The rules it applies:
//! - every certification (issuance, intermediate, both halves of a dual pair, a key the CA
//!   generates, renewal) passes [`crate::renewal`] first;
//! - a serial is 127 random bits ([`pki::Serial::random`]) drawn until it is not in the index,
//!   at most [`SERIAL_DRAWS`] times, and a certificate file is never overwritten;
//! - a validity starts five minutes before now (clock skew between machines), lasts the days
//!   asked (at least one), and never outlives the issuer's certificate;
//! - nothing is written until every step that can refuse the action has passed; then the new
//!   certificates' files, the `done` audit entry, and the index, once per action (the commit
//!   point): a failed write removes the files it wrote, a failed index write is followed by a
//!   `CA_NOT_COMMITTED` refusal naming the `done` entry, and a crash leaves the old state or
//!   the new (at worst a certificate file the index does not record and a `done` entry for
//!   it: a certificate no one received).
//!
//! What it leaves to its caller: reading request files, passphrases and keys, opening the CA
//! key, and writing outputs (a generated holder key, the certificate, the CRL).

mod issuance;
mod revocation;

pub use issuance::{EncryptionHalf, Escrow, EscrowStore, Holder, Issued, Renewed};
pub use revocation::{PublishedCrl, Revoked};

use crate::audit::Outcome;
use crate::dir::{CaDir, CaKind, CaMeta, KeyLocation};
use crate::error::{CaError, PkiStep};
use crate::index::{Index, IndexEntry, Status};
use crypto::{RandomSource, Signer};
use pki::{Certificate, Role, Serial, UnixTime, Validity};
use std::cell::Cell;
use std::fmt;
use std::path::Path;

const DAY: u64 = 86_400;
/// How far before now a validity starts: tolerates small clock skew between machines.
const SKEW: u64 = 300;
/// How many serials are drawn before giving up (a working source repeats one in 2^-127).
pub const SERIAL_DRAWS: usize = 8;

/// Where the CA reads the time: the system clock in the binary, a fixed value in tests.
pub trait Clock {
    /// Returns the current time.
    fn now(&self) -> UnixTime;
}

/// A fixed time is a clock that never moves.
impl Clock for UnixTime {
    fn now(&self) -> UnixTime {
        *self
    }
}

/// What every operation of the CA is done with: the CA key, randomness, the clock, and the
/// operator the audit log names.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The CA key: a token key or a keystore key.
    pub signer: &'a dyn Signer,
    pub rng: &'a dyn RandomSource,
    pub clock: &'a dyn Clock,
    /// Who runs the action (recorded in the audit log).
    pub operator: &'a str,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("signer", &self.signer.public_key())
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

/// The actions the audit log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Init,
    Intermediate,
    Issue,
    Renew,
    Revoke,
    Crl,
}

impl Action {
    /// Returns the name the audit log records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Init => "init",
            Action::Intermediate => "intermediate",
            Action::Issue => "issue",
            Action::Renew => "renew",
            Action::Revoke => "revoke",
            Action::Crl => "crl",
        }
    }
}

/// What the audit log records of an action: the detail of one carried out (what it made), or
/// the reason of one refused.
pub trait AuditDetail {
    /// Returns the audit entry's detail.
    fn audit_detail(&self) -> String;
}

impl AuditDetail for String {
    fn audit_detail(&self) -> String {
        self.clone()
    }
}

impl AuditDetail for CaError {
    /// A refusal by the CA's certification rule ([`crate::renewal`]) starts with its stable
    /// code (`CA_RENEW_REVOKED: …`), and so does an action recorded as done that was not
    /// carried out (`CA_NOT_COMMITTED: …`); any other error is its message.
    fn audit_detail(&self) -> String {
        match self {
            CaError::RenewRevoked { .. }
            | CaError::AlreadyRenewed { .. }
            | CaError::RenewKeyCompromised { .. }
            | CaError::KeyCompromised { .. }
            | CaError::CaCompromised { .. }
            | CaError::NotCommitted { .. } => format!("{}: {self}", self.code()),
            _ => self.to_string(),
        }
    }
}

/// What [`CaDir::audited`] returns: the action's own result and the audit log's new head.
#[derive(Debug)]
#[must_use]
pub struct Audited<T, E> {
    pub result: Result<T, E>,
    /// The head after the action's entry: `audit-verify --expect-head` detects a log cut short.
    pub head: String,
}

impl CaDir {
    /// Runs `action` on this CA (opened with its exclusive lock) and records it in the audit
    /// log, signed with the CA key: `done` or `refused`, with the [`AuditDetail`] of what `f`
    /// returned. Fails only if an entry cannot be written, whatever `f` returned.
    ///
    /// An entry that cannot be written stops the action before it changes anything: a log
    /// that cannot be appended to (a damaged line) fails before `f` runs; and an action that
    /// changes the CA writes its `done` entry ahead of its commit (write-ahead, in
    /// `Authority::commit`), so if that append fails nothing is committed. If the commit then
    /// fails, or a step after it, a `refused` entry with the reason follows the `done` one
    /// (`CA_NOT_COMMITTED` names the entry whose action did not take effect).
    pub fn audited<T: AuditDetail, E: AuditDetail>(
        &self,
        cx: &Context<'_>,
        action: Action,
        f: impl FnOnce(&Authority<'_>) -> Result<T, E>,
    ) -> Result<Audited<T, E>, CaError> {
        // Not after the action: an action whose entry cannot be written must not happen.
        let entries = self.audit().check_appendable()?;
        // `init` writes a CA's first entry; any later action finds at least that one. An empty
        // or missing log on an initialised CA was truncated or deleted: refuse rather than start
        // a new history without the CA key being needed to erase the old one.
        if entries == 0 && action != Action::Init {
            return Err(CaError::AuditBroken {
                seq: 0,
                reason: "the log is empty or missing, but this CA was initialised (its first entry is `init`): it was truncated or deleted; restore it from a backup".into(),
            });
        }
        let authority = Authority {
            dir: self,
            cx: *cx,
            action,
            recorded: Cell::new(None),
        };
        let result = f(&authority);
        let (outcome, detail) = match (authority.recorded.take(), &result) {
            // Recorded ahead of the commit.
            (Some(head), Ok(_)) => return Ok(Audited { result, head }),
            (None, Ok(d)) => (Outcome::Done, d.audit_detail()),
            (_, Err(e)) => (Outcome::Refused, e.audit_detail()),
        };
        let head = self.audit().append(
            cx.clock.now().0,
            cx.operator,
            action.as_str(),
            outcome,
            &detail,
            Some(cx.signer),
        )?;
        Ok(Audited { result, head })
    }

    /// Records that `action` was refused because the CA key could not be opened (`reason`
    /// says why): the one entry recorded unsigned, with code `CA_KEY_UNAVAILABLE`. Returns the
    /// new head.
    pub fn record_key_unavailable(
        &self,
        clock: &dyn Clock,
        operator: &str,
        action: Action,
        reason: &str,
    ) -> Result<String, CaError> {
        self.audit().append(
            clock.now().0,
            operator,
            action.as_str(),
            Outcome::Refused,
            &format!(
                "{}: the CA key could not be opened: {reason}",
                codes::CA_KEY_UNAVAILABLE
            ),
            None,
        )
    }
}

/// A new CA: where its directory goes, its names, where its key lives.
#[derive(Clone, Copy, Debug)]
pub struct NewCa<'a> {
    /// A new or empty directory (or one holding only the CA's own `keys/` keystore).
    pub dir: &'a Path,
    /// The CA certificate's common name.
    pub name: &'a str,
    pub organisation: &'a str,
}

/// A CA directory just created: its certificate and the audit log's head after `init`.
#[derive(Debug)]
pub struct Initialised {
    pub dir: CaDir,
    pub certificate: Certificate,
    pub head: String,
}

/// Creates a root CA: a self-signed certificate of `cx.signer`'s key for `validity_days`, the
/// CA directory, and its first audit entry.
pub fn init_root(
    new: NewCa<'_>,
    key: KeyLocation,
    validity_days: u64,
    cx: &Context<'_>,
) -> Result<Initialised, CaError> {
    let serial = Serial::random(cx.rng).map_err(pki(PkiStep::Serial))?;
    let root = pki::issue_root(
        new.name,
        new.organisation,
        serial,
        validity(cx.clock, validity_days, None)?,
        cx.signer,
    )
    .map_err(pki(PkiStep::Root))?;
    init(new, CaKind::Root, key, root, None, cx)
}

/// Creates an agency CA from the certificate the root issued it (`ca intermediate`): it must
/// certify `cx.signer`'s key as an agency CA and be signed by `root`.
pub fn init_agency(
    new: NewCa<'_>,
    key: KeyLocation,
    certificate: Certificate,
    root: &Certificate,
    cx: &Context<'_>,
) -> Result<Initialised, CaError> {
    if certificate.public_key() != cx.signer.public_key() {
        return Err(CaError::AgencyKeyMismatch);
    }
    if certificate.role() != Some(Role::AgencyCa) {
        return Err(CaError::AgencyNotCaCertificate);
    }
    certificate
        .verify_signed_by(&root.public_key(), &crypto::UserId::default())
        .map_err(CaError::AgencyNotSignedByRoot)?;
    init(new, CaKind::Agency, key, certificate, Some(root), cx)
}

fn init(
    new: NewCa<'_>,
    kind: CaKind,
    key: KeyLocation,
    certificate: Certificate,
    chain: Option<&Certificate>,
    cx: &Context<'_>,
) -> Result<Initialised, CaError> {
    let dir = CaDir::create(new.dir, CaMeta::new(kind, new.name, new.organisation, key))?;
    dir.write_file("ca.pem", certificate.to_pem().as_bytes())?;
    if let Some(root) = chain {
        dir.write_file("chain.pem", root.to_pem().as_bytes())?;
    }
    let detail = format!(
        "{} CA {:?} of {:?}",
        match kind {
            CaKind::Root => "root",
            CaKind::Agency => "agency",
        },
        new.name,
        new.organisation
    );
    let head = dir.audit().append(
        cx.clock.now().0,
        cx.operator,
        Action::Init.as_str(),
        Outcome::Done,
        &detail,
        Some(cx.signer),
    )?;
    Ok(Initialised {
        dir,
        certificate,
        head,
    })
}

/// An open CA with its key, randomness and clock, inside one audited action
/// ([`CaDir::audited`]).
pub struct Authority<'a> {
    dir: &'a CaDir,
    cx: Context<'a>,
    action: Action,
    /// The head after the `done` entry written ahead of the commit, once written.
    recorded: Cell<Option<String>>,
}

impl fmt::Debug for Authority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("dir", &self.dir.path())
            .field("cx", &self.cx)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl Authority<'_> {
    /// Returns the CA directory.
    pub fn dir(&self) -> &CaDir {
        self.dir
    }

    /// Returns the CA's own certificate (`ca.pem`).
    pub fn certificate(&self) -> Result<Certificate, CaError> {
        Certificate::from_pem(&self.dir.read_file("ca.pem")?).map_err(pki(PkiStep::CaCertificate))
    }

    /// Reads a certificate the CA issued, checking it is the one the index recorded.
    fn stored(&self, e: &IndexEntry) -> Result<Certificate, CaError> {
        stored_certificate(self.dir, e)
    }

    /// Draws a serial that the index does not hold.
    fn fresh_serial(&self, index: &Index) -> Result<Serial, CaError> {
        for _ in 0..SERIAL_DRAWS {
            let s = Serial::random(self.cx.rng).map_err(pki(PkiStep::Serial))?;
            if !index.contains(&s.to_hex()) {
                return Ok(s);
            }
        }
        Err(CaError::SerialsExhausted)
    }

    /// Returns a validity of `days` from now, capped at the issuer's notAfter.
    fn validity(&self, days: u64, issuer: &Certificate) -> Result<Validity, CaError> {
        validity(self.cx.clock, days, Some(issuer))
    }

    /// Adds `cert` to `index` (not yet written); its file is written by [`Authority::commit`].
    fn record(&self, index: &mut Index, cert: &Certificate, role: Role) -> Result<(), CaError> {
        let v = cert.validity();
        let serial = cert.serial().to_hex();
        index.add(IndexEntry {
            serial,
            subject: cert.subject(),
            role: role.as_str().to_string(),
            not_before: v.not_before.0,
            not_after: v.not_after.0,
            fingerprint: cert.fingerprint().to_hex(),
            status: Status::Valid,
            renews: None,
            renewed_by: None,
            pair: None,
        })
    }
}

impl Authority<'_> {
    /// The commit point of an action that changes the CA, once every step that can refuse it
    /// has passed: writes the files of the new certificates `certs` (never over another), then
    /// the action's `done` entry with `detail` (write-ahead), then `index`, which records the
    /// certificates. So a certificate file exists only if the index records it, and the index
    /// records nothing that the audit log does not: when a write fails, the files this commit
    /// wrote are removed again (unless the new index is in place: its write failed at the
    /// directory's fsync), and a failed index write after the entry is
    /// [`CaError::NotCommitted`], which [`CaDir::audited`] records.
    fn commit(&self, index: &Index, certs: &[&Certificate], detail: &str) -> Result<(), CaError> {
        let mut written = Vec::new();
        let remove = |written: &[String]| {
            for serial in written {
                // Best effort: the write's error is the one to report.
                let _ = self.dir.remove_cert(serial);
            }
        };
        for cert in certs {
            let serial = cert.serial().to_hex();
            if let Err(e) = self.dir.write_cert(&serial, cert.to_pem().as_bytes()) {
                remove(&written);
                return Err(e);
            }
            written.push(serial);
        }
        let entry = match self.dir.audit().append_entry(
            self.cx.clock.now().0,
            self.cx.operator,
            self.action.as_str(),
            Outcome::Done,
            detail,
            Some(self.cx.signer),
        ) {
            Ok(entry) => entry,
            Err(e) => {
                remove(&written);
                return Err(e);
            }
        };
        self.recorded.set(Some(entry.hash));
        match self.dir.commit_index(index) {
            Ok(()) => Ok(()),
            // In place, though perhaps not durably: the action took effect.
            Err((e, true)) => Err(e),
            Err((e, false)) => {
                remove(&written);
                Err(CaError::NotCommitted {
                    seq: entry.seq,
                    source: Box::new(e),
                })
            }
        }
    }
}

/// Reads a certificate the CA issued, checking it is the one the index recorded.
pub fn stored_certificate(dir: &CaDir, e: &IndexEntry) -> Result<Certificate, CaError> {
    let name = format!("certs/{}.pem", e.serial);
    let corrupt = |reason: String| CaError::Corrupt {
        path: dir.path().join(&name),
        reason,
    };
    let cert = Certificate::from_pem(&dir.read_file(&name)?).map_err(|x| corrupt(x.to_string()))?;
    if cert.fingerprint().to_hex() != e.fingerprint {
        return Err(corrupt(format!(
            "not the certificate the index recorded for serial {}",
            e.serial
        )));
    }
    Ok(cert)
}

/// Returns a validity of `days` from `clock`'s now (less [`SKEW`]), never past the issuer's
/// notAfter.
fn validity(
    clock: &dyn Clock,
    days: u64,
    issuer: Option<&Certificate>,
) -> Result<Validity, CaError> {
    if days == 0 {
        return Err(CaError::ZeroValidity);
    }
    let start = clock.now().0.saturating_sub(SKEW);
    let mut end = start.saturating_add(days.saturating_mul(DAY));
    if let Some(i) = issuer {
        // Never outlive the issuer.
        end = end.min(i.validity().not_after.0);
    }
    Ok(Validity {
        not_before: UnixTime(start),
        not_after: UnixTime(end),
    })
}

fn pki(step: PkiStep) -> impl FnOnce(pki::PkiError) -> CaError {
    move |source| CaError::Pki { step, source }
}
