//! State tree node and proof decoding: never panics; accepted bytes re-encode identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = state::Node::decode(data) {
        assert_eq!(n.encode(), data);
    }
    if let Ok(p) = state::Proof::decode(data) {
        assert_eq!(p.encode(), data);
    }
});
