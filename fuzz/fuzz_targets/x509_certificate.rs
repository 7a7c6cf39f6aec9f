//! X.509 certificates: parsing never panics; what parses is canonical DER that round-trips through
//! PEM, and every accessor and the chain validator run on it without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = pki::Certificate::from_der(data) {
        assert_eq!(c.der(), data, "accepted bytes other than its own DER");
        let again = pki::Certificate::from_pem(c.to_pem().as_bytes()).expect("PEM round trip");
        assert_eq!(again, c);
        let _ = (c.subject(), c.issuer(), c.role(), c.validity(), c.key_usages());
        let _ = (c.common_name(), c.organisation(), c.extended_key_usages(), c.fingerprint());
        let _ = c.verify_signed_by(&c.public_key(), &crypto::UserId::default());
        let anchor = pki::TrustAnchor::new(c.clone());
        for role in pki::Role::ALL {
            let _ = pki::validate_chain(&c, &[], std::slice::from_ref(&anchor), &[], pki::UnixTime(1_800_000_000), role);
        }
    }
});
