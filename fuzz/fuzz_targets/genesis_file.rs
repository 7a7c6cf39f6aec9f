//! The genesis file (docs/execution.md §2): parsing outside JSON never panics, and a genesis
//! that parses writes back to one that parses to the same value with the same hash.
#![no_main]
use execution::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Genesis::from_json(data) {
        let again = Genesis::from_json(g.to_json().as_bytes()).expect("a parsed genesis writes back parseable");
        assert_eq!(again.hash(), g.hash());
        assert_eq!(again, g);
    }
});
