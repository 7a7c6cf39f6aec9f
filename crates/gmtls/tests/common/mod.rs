//! A consortium made for the test, valid around the real clock (rustls verifies at the system
//! time): root → agency CA → node-sign, user and admin leaves, with current CRLs; a second,
//! unrelated root; and helpers to run a handshake over loopback.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crypto::Signer;
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use gmtls::{Credentials, StaticAuthority};
use pki::{Certificate, Crl, IssueRequest, RevokedEntry, Role, Serial, UnixTime, Validity};

pub const DAY: u64 = 86_400;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct Pki {
    pub p: SoftwareProvider,
    pub root_key: SoftSigner,
    pub root: Certificate,
    pub agency_key: SoftSigner,
    pub agency: Certificate,
    serial: std::cell::Cell<u8>,
}

pub fn validity(from_days_ago: u64, to_days_ahead: i64) -> Validity {
    let n = now();
    Validity {
        not_before: UnixTime(n - from_days_ago * DAY),
        not_after: UnixTime((n as i64 + to_days_ahead * DAY as i64) as u64),
    }
}

impl Pki {
    pub fn new(seed: u64, name: &str) -> Pki {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let root_key = p.generate().unwrap();
        let root = pki::issue_root(
            &format!("{name} Root CA"),
            name,
            Serial::from_hex("01").unwrap(),
            validity(100, 3650),
            &root_key,
        )
        .unwrap();
        let agency_key = p.generate().unwrap();
        let agency = pki::issue(
            &root,
            &root_key,
            &IssueRequest {
                role: Role::AgencyCa,
                common_name: "Agency A CA",
                organisation: "Agency A",
                public_key: &agency_key.public_key(),
                serial: Serial::from_hex("02").unwrap(),
                validity: validity(100, 1825),
            },
        )
        .unwrap();
        Pki {
            p,
            root_key,
            root,
            agency_key,
            agency,
            serial: std::cell::Cell::new(0x10),
        }
    }

    pub fn serial(&self) -> Serial {
        let s = self.serial.get();
        self.serial.set(s + 1);
        Serial::from_bytes(&[s]).unwrap()
    }

    /// A leaf of `role` from the agency CA.
    pub fn leaf_valid(&self, role: Role, cn: &str, v: Validity) -> (Arc<SoftSigner>, Certificate) {
        let key = self.p.generate().unwrap();
        let cert = pki::issue(
            &self.agency,
            &self.agency_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Agency A",
                public_key: &key.public_key(),
                serial: self.serial(),
                validity: v,
            },
        )
        .unwrap();
        (Arc::new(key), cert)
    }

    pub fn leaf(&self, role: Role, cn: &str) -> (Arc<SoftSigner>, Certificate) {
        self.leaf_valid(role, cn, validity(1, 365))
    }

    /// Credentials for a leaf: the leaf and the agency CA.
    pub fn creds(&self, role: Role, cn: &str) -> Credentials {
        let (key, cert) = self.leaf(role, cn);
        Credentials::new(vec![cert, self.agency.clone()], key).unwrap()
    }

    pub fn crls(&self, revoked: &[RevokedEntry]) -> Vec<Crl> {
        let n = now();
        vec![
            pki::issue_crl(
                &self.root,
                &self.root_key,
                1,
                UnixTime(n - DAY),
                UnixTime(n + 30 * DAY),
                &[],
            )
            .unwrap(),
            pki::issue_crl(
                &self.agency,
                &self.agency_key,
                7,
                UnixTime(n - DAY),
                UnixTime(n + 30 * DAY),
                revoked,
            )
            .unwrap(),
        ]
    }

    pub fn authority(&self, roles: &[Role], revoked: &[RevokedEntry]) -> Arc<StaticAuthority> {
        Arc::new(StaticAuthority::new(vec![self.root.clone()], self.crls(revoked), roles).unwrap())
    }
}
