//! The smallest gmchain contract, for the README's tutorial: one stored greeting, a method to
//! set it (which emits `greeting_set` with the greeting as data) and a query to read it.

use gmchain_sdk::Value;

const GREETING: Value<String> = Value::new("greeting");

/// Stores `greeting` and emits `greeting_set` (no topics; data: the greeting's UTF-8).
fn set(greeting: String) {
    GREETING.set(&greeting);
    gmchain_sdk::emit("greeting_set", &[], greeting.as_bytes());
}

/// Returns the greeting (`str`), empty until one is set.
fn get() -> String {
    GREETING.get().unwrap_or_default()
}

gmchain_sdk::contract! {
    fn set(greeting: String);
    fn get() -> String;
}

#[cfg(test)]
mod tests {
    use gmchain_sdk::{testing, Arg};

    use super::__gmchain_entry::call;

    #[test]
    fn set_then_get() {
        testing::reset();
        testing::set_input("get", vec![]);
        testing::run(call).unwrap();
        assert_eq!(testing::take_return(), Some(String::new().encode()));

        testing::set_input("set", vec!["你好, gmchain".to_string().encode()]);
        testing::run(call).unwrap();
        let events = testing::take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "greeting_set");
        assert_eq!(events[0].data, "你好, gmchain".as_bytes());

        testing::set_input("get", vec![]);
        testing::run(call).unwrap();
        assert_eq!(
            testing::take_return(),
            Some("你好, gmchain".to_string().encode())
        );
    }

    #[test]
    fn bad_calls_abort_naming_what_was_wrong() {
        testing::reset();
        testing::set_input("sett", vec![]);
        let e = testing::run(call).unwrap_err();
        assert_eq!(
            e,
            "CONTRACT_ABORTED unknown method `sett` (this contract has: set, get)"
        );
        testing::set_input("set", vec![]);
        let e = testing::run(call).unwrap_err();
        assert!(e.contains("method `set` takes 1 arguments, got 0"), "{e}");
        testing::set_input("set", vec![vec![0xff]]);
        let e = testing::run(call).unwrap_err();
        assert!(
            e.contains("method `set`: argument 0 (`greeting`: str): a str must be valid UTF-8"),
            "{e}"
        );
        assert!(testing::storage().is_empty());
    }

    #[test]
    fn a_query_cannot_set() {
        testing::reset();
        testing::read_only(true);
        testing::set_input("set", vec!["hi".to_string().encode()]);
        let e = testing::run(call).unwrap_err();
        assert!(e.contains("CONTRACT_READ_ONLY"), "{e}");
    }
}
