//! Which renewals the CA refuses, and which certificates a key compromise takes down with it.
//!
//! Renewal certifies a key again under a new serial, so it must never certify a key the CA
//! has recorded as compromised (RFC 5280 §5.3.1 keyCompromise and cACompromise; GM/T 0111 key
//! lifecycle: a revoked key is not re-certified). The rule, in order:
//!
//! 1. A revoked certificate (any reason) is never renewed: `CA_RENEW_REVOKED`. The holder
//!    gets a new certificate through `issue`, with the checks of a first issuance.
//! 2. A certificate already renewed is not renewed again: `CA_RENEW_ALREADY_RENEWED`.
//! 3. The key to certify (the old one, or the new CSR's) must differ from every key the CA
//!    recorded as compromised: the key of any certificate revoked for `key-compromise`, and
//!    of any CA certificate (`root-ca`, `agency-ca`) revoked for `ca-compromise` (there the
//!    reason speaks of the certified CA's own key): `CA_RENEW_KEY_COMPROMISED`.
//! 4. If the CA recorded a compromise of its own key (a non-CA certificate revoked for
//!    `ca-compromise`), no key it certified before can be taken on the record alone, so a
//!    renewal needs a new CSR (proof of possession, new key): `CA_RENEW_NEEDS_CSR`.
//!
//! The index does not hold public keys; the caller reads them from the certificates through
//! `key_of`, and a key that cannot be read refuses the renewal (fail closed).

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
    for e in index.revoked().filter(|e| compromises_own_key(e)) {
        if key_of(e)? == certified {
            return Err(CaError::RenewKeyCompromised {
                serial: old.serial.clone(),
                revoked: e.serial.clone(),
                reason: revocation_reason(e).unwrap_or_default().to_string(),
                new_key: matches!(key, RenewalKey::New(_)),
            });
        }
    }
    // 4.
    if let RenewalKey::Reused = key
        && let Some(e) = index
            .revoked()
            .find(|e| revocation_reason(e) == Some(CA_COMPROMISE) && !is_ca_role(&e.role))
    {
        return Err(CaError::RenewNeedsCsr {
            serial: old.serial.clone(),
            compromise: e.serial.clone(),
        });
    }
    Ok(())
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
    fn after_this_ca_recorded_its_own_compromise_renewal_needs_a_new_key() {
        let ca = Ca::new(&[
            ("01", "user", Some(CA_COMPROMISE), 1),
            ("02", "node-sign", None, 2),
        ]);
        let e = ca.check("02", None).unwrap_err();
        assert!(
            matches!(&e, CaError::RenewNeedsCsr { serial, compromise } if serial == "02" && compromise == "01"),
            "{e:?}"
        );
        assert_eq!(e.code(), "CA_RENEW_NEEDS_CSR");
        ca.check("02", Some(&key(8))).unwrap();
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
