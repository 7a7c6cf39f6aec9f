//! Revocation and CRLs.

use super::{AuditDetail, Authority, pki};
use crate::error::{CaError, PkiStep};
use crate::index::Status;
use crate::renewal;
use pki::{Crl, RevocationReason, RevokedEntry, Serial, UnixTime};

/// What a revocation changed.
#[derive(Debug)]
pub struct Revoked {
    /// The serial revoked.
    pub serial: String,
    /// The other certificates of the same key, revoked with it because the reason declares the
    /// key compromised.
    pub same_key: Vec<String>,
    detail: String,
}

impl AuditDetail for Revoked {
    fn audit_detail(&self) -> String {
        self.detail.clone()
    }
}

/// A CRL just published (written to `crl.pem`).
#[derive(Debug)]
pub struct PublishedCrl {
    pub crl: Crl,
    /// How many certificates it lists.
    pub revoked: usize,
    detail: String,
}

impl AuditDetail for PublishedCrl {
    fn audit_detail(&self) -> String {
        self.detail.clone()
    }
}

impl Authority<'_> {
    /// Revokes `serial` for `reason`, now. A reason that declares the key compromised
    /// (key-compromise, or ca-compromise of a CA certificate) revokes every other valid
    /// certificate of the same key with it, for the same reason (RFC 5280 §5.3.1
    /// keyCompromise). Verifiers learn of it from the next CRL.
    pub fn revoke(&self, serial: &str, reason: RevocationReason) -> Result<Revoked, CaError> {
        let mut index = self.dir.read_index()?;
        let e = index.get_mut(serial)?;
        if let Status::Revoked { .. } = e.status {
            return Err(CaError::AlreadyRevoked {
                serial: e.serial.clone(),
            });
        }
        let status = Status::Revoked {
            at: self.cx.clock.now().0,
            reason: reason.as_str().to_string(),
        };
        e.status = status.clone();
        let mut detail = format!(
            "revoked {} ({}) reason {}",
            e.serial,
            e.subject,
            reason.as_str()
        );
        let target = e.serial.clone();
        let mut same_key = Vec::new();
        if renewal::reason_compromises_key(&e.role, reason.as_str()) {
            // The key is compromised, not just this certificate: every other certificate
            // of the key goes with it.
            same_key =
                renewal::sharing_key(&index, &target, |e| self.stored(e).map(|c| c.public_key()))?;
            for s in &same_key {
                index.get_mut(s)?.status = status.clone();
            }
            if !same_key.is_empty() {
                detail.push_str(&format!(
                    "; also revoked {} (same key)",
                    same_key.join(", ")
                ));
            }
        }
        self.commit(&index, &[], &detail)?;
        Ok(Revoked {
            serial: target,
            same_key,
            detail,
        })
    }

    /// Publishes a CRL of every revocation, valid from now for `next_update_hours`, numbered
    /// one more than the last number the index recorded (RFC 5280 §5.2.3: CRL numbers
    /// increase), to `crl.pem`. The index records the number first, so a CRL that failed to
    /// reach `crl.pem` leaves its number unused, never reused.
    pub fn publish_crl(&self, next_update_hours: u64) -> Result<PublishedCrl, CaError> {
        if next_update_hours == 0 {
            return Err(CaError::ZeroCrlPeriod);
        }
        let issuer = self.certificate()?;
        let mut index = self.dir.read_index()?;
        let revoked = index
            .revoked()
            .map(|e| {
                let (at, reason) = match &e.status {
                    Status::Revoked { at, reason } => (*at, reason.clone()),
                    Status::Valid => (0, String::new()),
                };
                Ok(RevokedEntry {
                    serial: Serial::from_hex(&e.serial).map_err(pki(PkiStep::IndexSerial))?,
                    revoked_at: UnixTime(at),
                    reason: reason.parse().unwrap_or(RevocationReason::Unspecified),
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let number = index.crl_number + 1;
        let t = self.cx.clock.now().0;
        let crl = pki::issue_crl(
            &issuer,
            self.cx.signer,
            number,
            UnixTime(t),
            UnixTime(t.saturating_add(next_update_hours.saturating_mul(3600))),
            &revoked,
        )
        .map_err(pki(PkiStep::Crl))?;
        // The index records the number before any CRL carries it: a failure or a crash after
        // this leaves a number skipped, never one that the next CRL reuses (RFC 5280 §5.2.3).
        index.crl_number = number;
        let detail = format!(
            "CRL number {number} with {} revoked certificate(s)",
            revoked.len()
        );
        self.commit(&index, &[], &detail)?;
        self.dir.write_file("crl.pem", crl.to_pem().as_bytes())?;
        Ok(PublishedCrl {
            detail,
            revoked: revoked.len(),
            crl,
        })
    }
}
