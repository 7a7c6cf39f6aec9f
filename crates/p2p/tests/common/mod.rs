//! A consortium made for the tests and benches, valid around the real clock (rustls verifies
//! at the system time): a root, one agency CA ("Agency A"), current CRLs, and leaves issued
//! on demand.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use gmtls::{Authority, Credentials};
use pki::{Certificate, Crl, IssueRequest, Role, Serial, UnixTime, Validity};

pub const DAY: u64 = 86_400;
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn validity(days_back: u64, days_ahead: u64) -> Validity {
    Validity {
        not_before: UnixTime(now() - days_back * DAY),
        not_after: UnixTime(now() + days_ahead * DAY),
    }
}

/// A consortium root, one agency CA ("Agency A") and current CRLs; leaves issued on demand.
pub struct Pki {
    p: SoftwareProvider,
    root_key: crypto_sm::SoftSigner,
    root: Certificate,
    agency_key: crypto_sm::SoftSigner,
    agency: Certificate,
    serial: std::sync::atomic::AtomicU8,
}

impl Pki {
    pub fn new(seed: u64) -> Pki {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let root_key = p.generate().unwrap();
        let root = pki::issue_root(
            "Consortium Root CA",
            "Consortium",
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
            serial: std::sync::atomic::AtomicU8::new(0x10),
        }
    }

    pub fn creds(&self, role: Role, cn: &str) -> Credentials {
        let key = self.p.generate().unwrap();
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let cert = pki::issue(
            &self.agency,
            &self.agency_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Agency A",
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&[serial]).unwrap(),
                validity: validity(1, 365),
            },
        )
        .unwrap();
        Credentials::new(vec![cert, self.agency.clone()], Arc::new(key)).unwrap()
    }

    pub fn crls(&self) -> Vec<Crl> {
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
                1,
                UnixTime(n - DAY),
                UnixTime(n + 30 * DAY),
                &[],
            )
            .unwrap(),
        ]
    }

    /// Accepts every role: the link configurations must be what restricts links to node-sign.
    pub fn authority(&self) -> Arc<dyn Authority> {
        Arc::new(
            gmtls::StaticAuthority::new(
                vec![self.root.clone()],
                self.crls(),
                &[Role::NodeSign, Role::User, Role::Admin],
            )
            .unwrap(),
        )
    }
}
