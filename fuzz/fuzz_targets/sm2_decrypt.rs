//! SM2 decryption of arbitrary bytes in every format: no panic, and nothing decrypts unless C3
//! matches (random inputs essentially never do).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = crypto_sm::sm2::PrivateKey::from_bytes(&[0x5a; 32]).expect("fixed key");
    let _ = crypto_sm::sm2::decrypt(&key, data, crypto::CipherFormat::C1C3C2);
    let _ = crypto_sm::sm2::decrypt(&key, data, crypto::CipherFormat::Der);
    let _ = crypto_sm::sm2::decrypt_c1c2c3_legacy(&key, data);
});
