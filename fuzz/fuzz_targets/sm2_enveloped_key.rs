//! GM/T 0009 SM2EnvelopedKey: opening never panics on any bytes, with a fixed holder key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn holder() -> &'static crypto_sm::SoftSigner {
    static H: OnceLock<crypto_sm::SoftSigner> = OnceLock::new();
    H.get_or_init(|| {
        let p = crypto_sm::SoftwareProvider::new(Arc::new(crypto_sm::rng::SeededRandom::new(1)));
        p.generate().expect("key")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = pki::envelope::open(data, holder());
});
