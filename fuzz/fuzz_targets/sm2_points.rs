//! SM2 point decoding (all forms): no panic, and an accepted point round-trips through the
//! uncompressed form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pk) = crypto_sm::sm2::parse_public_key(data) {
        let again = crypto_sm::sm2::parse_public_key(pk.as_bytes()).expect("valid point re-parses");
        assert_eq!(again, pk);
    }
});
