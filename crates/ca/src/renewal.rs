//! Which issuances and renewals the CA refuses, and which certificates a key compromise takes
//! down with it.
//!
//! Every certification, first issuance (`issue`, `intermediate`, both halves of a dual pair,
//! a key the CA generates) or renewal, must never certify a key the CA has recorded as
//! compromised (RFC 5280 §5.3.1 keyCompromise and cACompromise; GM/T 0111 key lifecycle: a
//! revoked key is not re-certified), and a CA that recorded the compromise of its own key
//! certifies nothing more. The rule, in order (rules 1 and 2 concern renewal only):
//!
//! 1. A revoked certificate (any reason) is never renewed: `CA_RENEW_REVOKED`. The holder
//!    gets a new certificate through `issue`, with the checks of a first issuance.
//! 2. A certificate already renewed is not renewed again: `CA_RENEW_ALREADY_RENEWED`.
//! 3. The key to certify (for a renewal the old one, or the new CSR's) must differ from every
//!    key the CA recorded as compromised: the key of any certificate revoked for
//!    `key-compromise`, and of any CA certificate (`root-ca`, `agency-ca`) revoked for
//!    `ca-compromise` (there the reason speaks of the certified CA's own key):
//!    `CA_KEY_COMPROMISED` for an issuance ([`check_issuance`]), `CA_RENEW_KEY_COMPROMISED`
//!    for a renewal ([`check_renewal`]).
//! 4. If the CA recorded a compromise of its own key (a non-CA certificate revoked for
//!    `ca-compromise`), it certifies nothing more, whatever the key: `CA_COMPROMISED`. Whoever
//!    holds its key can sign the same certificates, so nothing it signs from then on proves
//!    anything; the way out is a new CA key and certificate (re-keying the CA). Revocations and
//!    CRLs remain possible, so verifiers still learn of the compromise.
//!
//! The index does not hold public keys; the caller reads them from the certificates through
//! `key_of`, and a key that cannot be read refuses the certification (fail closed). The index
//! holds only this CA's certificates: a key recorded as compromised by another CA is not seen.

use crate::CaError;
use crate::index::{Index, IndexEntry, Status};
use crypto::PublicKey;

/// The reason string of a key compromise in the index (`pki::RevocationReason::as_str`).
pub const KEY_COMPROMISE: &str = "key-compromise";
/// The reason string of a CA compromise in the index.
pub const CA_COMPROMISE: &str = "ca-compromise";

/// The key a renewal would certify.
#[derive(Clone, Copy, Debug)]
pub enum RenewalKey<'a> {
    /// The old certificate's key, kept (no CSR).
    Reused,
    /// The key of a new CSR whose proof of possession the caller checked.
    New(&'a PublicKey),
}

fn is_ca_role(role: &str) -> bool {
    matches!(role, "root-ca" | "agency-ca")
}

fn revocation_reason(e: &IndexEntry) -> Option<&str> {
    match &e.status {
        Status::Revoked { reason, .. } => Some(reason),
        Status::Valid => None,
    }
}

/// Returns whether the revocation of `e` says that the key `e` certifies is compromised.
fn compromises_own_key(e: &IndexEntry) -> bool {
    match revocation_reason(e) {
        Some(KEY_COMPROMISE) => true,
        Some(CA_COMPROMISE) => is_ca_role(&e.role),
        _ => false,
    }
}

/// Returns the revoked entry that recorded `key` as compromised (rule 3), if any.
fn compromise_of<'i, F>(
    index: &'i Index,
    key: &PublicKey,
    mut key_of: F,
) -> Result<Option<&'i IndexEntry>, CaError>
where
    F: FnMut(&IndexEntry) -> Result<PublicKey, CaError>,
{
    for e in index.revoked().filter(|e| compromises_own_key(e)) {
        if key_of(e)? == *key {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Returns the entry by which this CA recorded the compromise of its own key (rule 4): a
/// non-CA certificate it revoked for `ca-compromise`.
pub fn own_compromise(index: &Index) -> Option<&IndexEntry> {
    index
        .revoked()
        .find(|e| revocation_reason(e) == Some(CA_COMPROMISE) && !is_ca_role(&e.role))
}

/// Checks rule 3 for a first issuance: `key` is not a key the CA recorded as compromised.
/// `key_of` returns the public key a certificate of the index certifies.
pub fn check_key_not_compromised<F>(
    index: &Index,
    key: &PublicKey,
    key_of: F,
) -> Result<(), CaError>
where
    F: FnMut(&IndexEntry) -> Result<PublicKey, CaError>,
{
    match compromise_of(index, key, key_of)? {
        Some(e) => Err(CaError::KeyCompromised {
            revoked: e.serial.clone(),
            reason: revocation_reason(e).unwrap_or_default().to_string(),
        }),
        None => Ok(()),
    }
}

/// Checks rule 4: the CA did not record the compromise of its own key.
pub fn check_ca_not_compromised(index: &Index) -> Result<(), CaError> {
    match own_compromise(index) {
        Some(e) => Err(CaError::CaCompromised {
            compromise: e.serial.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks that a first issuance may certify `key` (rules 3 and 4), whether the key comes
/// from a CSR or the CA generated it: every issuance calls it, under the CA lock, on the index
/// it then adds the certificate to. A compromised key is reported before a compromised CA, so
/// the audit log names the attempt to certify it.
pub fn check_issuance<F>(index: &Index, key: &PublicKey, key_of: F) -> Result<(), CaError>
where
    F: FnMut(&IndexEntry) -> Result<PublicKey, CaError>,
{
    check_key_not_compromised(index, key, key_of)?;
    check_ca_not_compromised(index)
}

/// Checks rules 1 and 2 (the certificate itself, whatever the key): lets the caller refuse
/// before it reads a CSR. Returns the certificate's entry.
pub fn check_renewable<'i>(index: &'i Index, serial: &str) -> Result<&'i IndexEntry, CaError> {
    let old = index.get(serial)?;
    // 1.
    if let Some(reason) = revocation_reason(old) {
        return Err(CaError::RenewRevoked {
            serial: old.serial.clone(),
            reason: reason.to_string(),
        });
    }
    // 2.
    if let Some(by) = &old.renewed_by {
        return Err(CaError::AlreadyRenewed {
            serial: old.serial.clone(),
            by: by.clone(),
        });
    }
    Ok(old)
}

/// Checks that the certificate `serial` may be renewed with `key` (the whole rule of the
/// module documentation). `key_of` returns the public key a certificate of the index certifies.
pub fn check_renewal<F>(
    index: &Index,
    serial: &str,
    key: RenewalKey<'_>,
    mut key_of: F,
) -> Result<(), CaError>
where
    F: FnMut(&IndexEntry) -> Result<PublicKey, CaError>,
{
    let old = check_renewable(index, serial)?;
    // 3.
    let certified = match key {
        RenewalKey::Reused => key_of(old)?,
        RenewalKey::New(k) => *k,
    };
    if let Some(e) = compromise_of(index, &certified, &mut key_of)? {
        return Err(CaError::RenewKeyCompromised {
            serial: old.serial.clone(),
            revoked: e.serial.clone(),
            reason: revocation_reason(e).unwrap_or_default().to_string(),
            new_key: matches!(key, RenewalKey::New(_)),
        });
    }
    // 4.
    check_ca_not_compromised(index)
}

/// Returns the valid certificates that certify the same key as `serial`: revoking `serial`
/// for a compromise of its key must revoke them too (a renewal that kept the key, or any
/// other certificate of it), or they would keep the compromised key valid.
pub fn sharing_key<F>(index: &Index, serial: &str, mut key_of: F) -> Result<Vec<String>, CaError>
where
    F: FnMut(&IndexEntry) -> Result<PublicKey, CaError>,
{
    let target = index.get(serial)?;
    let key = key_of(target)?;
    let mut out = Vec::new();
    for e in &index.entries {
        if e.serial != target.serial && e.status == Status::Valid && key_of(e)? == key {
            out.push(e.serial.clone());
        }
    }
    Ok(out)
}

/// Returns whether revoking a certificate of `role` for `reason` declares its key compromised
/// (and so takes the certificates of the same key down with it, see [`sharing_key`]).
pub fn reason_compromises_key(role: &str, reason: &str) -> bool {
    reason == KEY_COMPROMISE || (reason == CA_COMPROMISE && is_ca_role(role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn key(seed: u64) -> PublicKey {
        crypto::Signer::public_key(
            &SoftwareProvider::new(Arc::new(SeededRandom::new(seed)))
                .generate()
                .unwrap(),
        )
    }

    fn entry(serial: &str, role: &str, revoked: Option<&str>) -> IndexEntry {
        IndexEntry {
            serial: serial.into(),
            subject: format!("CN={serial}"),
            role: role.into(),
            not_before: 0,
            not_after: 1,
            fingerprint: String::new(),
            status: match revoked {
                Some(r) => Status::Revoked {
                    at: 5,
                    reason: r.into(),
                },
                None => Status::Valid,
            },
            renews: None,
            renewed_by: None,
            pair: None,
        }
    }

    /// An index and the keys of its certificates.
    struct Ca {
        index: Index,
        keys: HashMap<String, PublicKey>,
    }

    impl Ca {
        fn new(certs: &[(&str, &str, Option<&str>, u64)]) -> Self {
            let mut index = Index::default();
            let mut keys = HashMap::new();
            for (serial, role, revoked, k) in certs {
                index.add(entry(serial, role, *revoked)).unwrap();
                keys.insert(serial.to_string(), key(*k));
            }
            Ca { index, keys }
        }

        fn check(&self, serial: &str, new_key: Option<&PublicKey>) -> Result<(), CaError> {
            let k = new_key.map_or(RenewalKey::Reused, RenewalKey::New);
            check_renewal(&self.index, serial, k, |e| {
                self.keys
                    .get(&e.serial)
                    .copied()
                    .ok_or(CaError::UnknownSerial {
                        serial: e.serial.clone(),
                    })
            })
        }
    }

    impl Ca {
        fn issue(&self, k: &PublicKey) -> Result<(), CaError> {
            check_issuance(&self.index, k, |e| {
                self.keys
                    .get(&e.serial)
                    .copied()
                    .ok_or(CaError::UnknownSerial {
                        serial: e.serial.clone(),
                    })
            })
        }
    }

    #[test]
    fn revoked_certificate_is_never_renewed_whatever_the_reason_or_key() {
        for reason in [KEY_COMPROMISE, "superseded", "unspecified", CA_COMPROMISE] {
            let ca = Ca::new(&[("01", "user", Some(reason), 1)]);
            for new_key in [None, Some(&key(9))] {
                let e = ca.check("01", new_key).unwrap_err();
                assert!(
                    matches!(&e, CaError::RenewRevoked { serial, reason: r } if serial == "01" && r == reason),
                    "{e:?}"
                );
                assert_eq!(e.code(), "CA_RENEW_REVOKED");
                let msg = e.to_string();
                assert!(msg.contains("01") && msg.contains(reason) && !msg.contains('\n'));
            }
        }
    }

    #[test]
    fn compromised_key_is_not_certified_again_even_through_another_certificate() {
        // 01 and 02 certify key 1 (02 renewed 01 before the compromise and was not revoked);
        // 03 is another holder with key 3.
        let ca = Ca::new(&[
            ("01", "user", Some(KEY_COMPROMISE), 1),
            ("02", "user", None, 1),
            ("03", "user", None, 3),
        ]);
        let e = ca.check("02", None).unwrap_err();
        assert!(
            matches!(&e, CaError::RenewKeyCompromised { serial, revoked, .. } if serial == "02" && revoked == "01"),
            "{e:?}"
        );
        assert_eq!(e.code(), "CA_RENEW_KEY_COMPROMISED");
        // A new CSR carrying the compromised key is refused too.
        assert!(matches!(
            ca.check("03", Some(&key(1))),
            Err(CaError::RenewKeyCompromised { .. })
        ));
        // A new key that was never compromised: allowed, as is the untouched holder.
        ca.check("02", Some(&key(7))).unwrap();
        ca.check("03", None).unwrap();
    }

    #[test]
    fn ca_compromise_of_a_ca_certificate_compromises_that_ca_key_only() {
        let ca = Ca::new(&[
            ("0a", "agency-ca", Some(CA_COMPROMISE), 1),
            ("0b", "agency-ca", None, 1),
            ("0c", "agency-ca", None, 2),
        ]);
        assert!(matches!(
            ca.check("0b", None),
            Err(CaError::RenewKeyCompromised { .. })
        ));
        ca.check("0b", Some(&key(5))).unwrap();
        // Not a compromise of this (root) CA: other renewals may keep their key.
        ca.check("0c", None).unwrap();
    }

    #[test]
    fn after_this_ca_recorded_its_own_compromise_it_renews_nothing() {
        let ca = Ca::new(&[
            ("01", "user", Some(CA_COMPROMISE), 1),
            ("02", "node-sign", None, 2),
        ]);
        for new_key in [None, Some(&key(8))] {
            let e = ca.check("02", new_key).unwrap_err();
            assert!(
                matches!(&e, CaError::CaCompromised { compromise } if compromise == "01"),
                "{e:?}"
            );
            assert_eq!(e.code(), "CA_COMPROMISED");
            let msg = e.to_string();
            assert!(msg.contains("01") && msg.contains("re-key") && !msg.contains('\n'));
        }
    }

    // The defect: only renewal applied rules 3 and 4; a first issuance certified a key revoked
    // for key-compromise.
    #[test]
    fn issuance_refuses_a_key_recorded_as_compromised_by_any_certificate() {
        let ca = Ca::new(&[
            ("01", "user", Some(KEY_COMPROMISE), 1),
            ("0a", "agency-ca", Some(CA_COMPROMISE), 2),
            ("03", "user", Some("superseded"), 3),
            ("04", "admin", None, 4),
        ]);
        for (k, revoked, reason) in [(1, "01", KEY_COMPROMISE), (2, "0a", CA_COMPROMISE)] {
            let e = ca.issue(&key(k)).unwrap_err();
            assert!(
                matches!(&e, CaError::KeyCompromised { revoked: r, reason: why } if r == revoked && why == reason),
                "{e:?}"
            );
            assert_eq!(e.code(), "CA_KEY_COMPROMISED");
            let msg = e.to_string();
            assert!(msg.contains(revoked) && msg.contains(reason) && !msg.contains('\n'));
            assert!(matches!(
                check_key_not_compromised(&ca.index, &key(k), |e| Ok(ca.keys[&e.serial])),
                Err(CaError::KeyCompromised { .. })
            ));
        }
        // A key revoked for another reason, one still in use, and a new key: issued (a holder
        // may hold several certificates of one key; only a compromise bars it).
        for k in [3, 4, 9] {
            ca.issue(&key(k)).unwrap();
        }
        // The CA did not record its own compromise: a ca-compromise of a CA certificate is
        // the compromise of that CA's key (rule 3), not of this CA.
        assert!(own_compromise(&ca.index).is_none());
        check_ca_not_compromised(&ca.index).unwrap();
    }

    #[test]
    fn after_this_ca_recorded_its_own_compromise_it_issues_nothing() {
        let ca = Ca::new(&[
            ("01", "user", Some(CA_COMPROMISE), 1),
            ("02", "user", Some(KEY_COMPROMISE), 2),
            ("03", "node-sign", None, 3),
        ]);
        assert_eq!(
            own_compromise(&ca.index).map(|e| e.serial.as_str()),
            Some("01")
        );
        for k in [1, 3, 9] {
            let e = ca.issue(&key(k)).unwrap_err();
            assert!(
                matches!(&e, CaError::CaCompromised { compromise } if compromise == "01"),
                "key {k}: {e:?}"
            );
        }
        // A compromised key is named first: the audit log records the attempt to certify it.
        assert!(matches!(
            ca.issue(&key(2)),
            Err(CaError::KeyCompromised { revoked, .. }) if revoked == "02"
        ));
    }

    #[test]
    fn issuance_fails_closed_on_an_unreadable_key() {
        let ca = Ca::new(&[("01", "user", Some(KEY_COMPROMISE), 1)]);
        let r = check_issuance(&ca.index, &key(5), |_| {
            Err(CaError::Corrupt {
                path: "certs/01.pem".into(),
                reason: "not PEM".into(),
            })
        });
        assert!(matches!(r, Err(CaError::Corrupt { .. })), "{r:?}");
    }

    #[test]
    fn other_revocations_do_not_block_other_holders_and_renewal_happens_once() {
        let mut ca = Ca::new(&[
            ("01", "user", Some("superseded"), 1),
            ("02", "user", Some("affiliation-changed"), 2),
            ("03", "user", None, 1),
        ]);
        ca.check("03", None).unwrap();
        ca.index.get_mut("03").unwrap().renewed_by = Some("04".into());
        let e = ca.check("03", None).unwrap_err();
        assert!(matches!(e, CaError::AlreadyRenewed { .. }), "{e:?}");
        assert!(matches!(
            ca.check("ff", None),
            Err(CaError::UnknownSerial { .. })
        ));
    }

    #[test]
    fn unreadable_key_refuses() {
        let ca = Ca::new(&[
            ("01", "user", Some(KEY_COMPROMISE), 1),
            ("02", "user", None, 2),
        ]);
        let r = check_renewal(&ca.index, "02", RenewalKey::Reused, |e| {
            if e.serial == "01" {
                Err(CaError::Corrupt {
                    path: "certs/01.pem".into(),
                    reason: "not PEM".into(),
                })
            } else {
                Ok(key(2))
            }
        });
        assert!(matches!(r, Err(CaError::Corrupt { .. })));
    }

    #[test]
    fn compromise_finds_every_valid_certificate_of_the_key() {
        let ca = Ca::new(&[
            ("01", "user", None, 1),
            ("02", "user", None, 1),
            ("03", "user", Some("superseded"), 1),
            ("04", "user", None, 4),
        ]);
        let found = sharing_key(&ca.index, "01", |e| Ok(ca.keys[&e.serial])).unwrap();
        assert_eq!(found, vec!["02".to_string()]);
        assert!(reason_compromises_key("user", KEY_COMPROMISE));
        assert!(reason_compromises_key("agency-ca", CA_COMPROMISE));
        assert!(!reason_compromises_key("user", CA_COMPROMISE));
        assert!(!reason_compromises_key("user", "superseded"));
    }
}
