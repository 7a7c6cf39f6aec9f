//! GM/T 0009 SM2Signature: decoding never panics, and whatever decodes re-encodes to the same bytes
//! (strict DER has one encoding per value).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = crypto::Signature::from_der(data) {
        assert_eq!(sig.to_der(), data, "accepted a non-canonical encoding");
    }
});
