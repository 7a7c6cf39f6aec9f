//! PKCS#10 requests: verification never panics; an accepted request is its own DER and its
//! issuance checks run without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = pki::csr::verify(data) {
        assert_eq!(req.der, data, "accepted bytes other than its own DER");
        let _ = req.common_name();
        for role in pki::Role::ALL {
            let _ = pki::csr::check_for_issuance(&req, role, "Agency A");
        }
    }
});
