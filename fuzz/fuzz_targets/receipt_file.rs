//! The offline receipt file (docs/receipts.md): parsing outside JSON never panics, and a file
//! that parses writes back to a file that parses to the same bundle.
#![no_main]
use libfuzzer_sys::fuzz_target;
use receipt::ReceiptBundle;
use types::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(b) = ReceiptBundle::from_json(data, &limits) {
        let again = ReceiptBundle::from_json(b.to_json().as_bytes(), &limits)
            .expect("a parsed receipt writes back parseable");
        assert_eq!(again, b);
    }
});
