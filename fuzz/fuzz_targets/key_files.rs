//! Key files (PEM/DER PKCS#8, SEC1, SPKI, encrypted PKCS#8): no input panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = crypto_sm::keys::decode_private_key(data, None);
    // A passphrase makes the encrypted path run; iteration counts are bounded by the decoder.
    if crypto_sm::keys::is_encrypted(data) {
        if let Ok(p) = crypto_sm::keys::encrypted_params(data) {
            if p.iterations > 64 {
                return; // keep the fuzzer fast; the bound itself is unit-tested
            }
        }
        let _ = crypto_sm::keys::decode_private_key(data, Some(b"fuzz"));
    }
    let _ = crypto_sm::keys::decode_public_key(data);
});
