//! GM/T 0009 SM2Cipher: decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = crypto::gmt0009::decode_ciphertext(data) {
        let again = crypto::gmt0009::encode_ciphertext(&raw).expect("a decoded ciphertext re-encodes");
        assert_eq!(again, data, "accepted a non-canonical encoding");
    }
});
