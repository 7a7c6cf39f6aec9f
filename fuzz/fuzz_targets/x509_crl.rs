//! v2 CRLs: parsing never panics; what parses is canonical DER that round-trips through PEM.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = pki::Crl::from_der(data) {
        assert_eq!(c.der(), data, "accepted bytes other than its own DER");
        let again = pki::Crl::from_pem(c.to_pem().as_bytes()).expect("PEM round trip");
        assert_eq!(again, c);
        let _ = (c.issuer(), c.number(), c.this_update(), c.next_update(), c.revoked());
    }
});
