//! The in-memory host of native (non-`wasm32`) builds, for contracts' unit tests: set the
//! input, the caller and the block, run an entry point, then read storage, events and the
//! return data. Each test thread has its own host; call [`reset`] at the start of a test.
//!
//! An abort panics with `CONTRACT_ABORTED <message>` (use `#[should_panic(expected = …)]` or
//! [`run`]); a write, removal or event in a [`read_only`] call panics with `CONTRACT_READ_ONLY`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Once;

use crate::host::HOST;
use crate::{Caller, Input, Role};

/// An event as the contract emitted it: name, topics (decoded), data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event's name.
    pub name: String,
    /// Its topics.
    pub topics: Vec<Vec<u8>>,
    /// Its data.
    pub data: Vec<u8>,
}

/// Clears everything: storage, events, input, return data, caller; height 1, time 0.
pub fn reset() {
    HOST.with(|h| {
        *h.borrow_mut() = Default::default();
        h.borrow_mut().height = 1;
    });
}

/// Sets the input of the next entry point: `method` and its encoded arguments.
pub fn set_input(method: &str, args: Vec<Vec<u8>>) {
    let bytes = Input {
        method: method.to_string(),
        args,
    }
    .encode();
    set_raw_input(bytes);
}

/// Sets the input's bytes as they are (to test malformed input).
pub fn set_raw_input(bytes: Vec<u8>) {
    HOST.with(|h| h.borrow_mut().input = bytes);
}

/// Sets the signer: an organisation, a common name and a role (the certificate ID is SM3-free:
/// the common name's bytes, zero-padded).
pub fn set_caller(organisation: &str, common_name: &str, role: Role) {
    let mut cert_id = [0u8; 32];
    for (d, s) in cert_id.iter_mut().zip(common_name.bytes()) {
        *d = s;
    }
    let caller = Caller {
        cert_id,
        organisation: organisation.to_string(),
        common_name: common_name.to_string(),
        role,
    };
    HOST.with(|h| h.borrow_mut().caller = caller.encode());
}

/// Sets the block's height and time.
pub fn set_block(height: u64, time_ms: u64) {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        h.height = height as i64;
        h.time_ms = time_ms as i64;
    });
}

/// Makes the next calls read-only (a query) or not.
pub fn read_only(on: bool) {
    HOST.with(|h| h.borrow_mut().read_only = on);
}

/// Returns the contract's storage.
pub fn storage() -> BTreeMap<Vec<u8>, Vec<u8>> {
    HOST.with(|h| h.borrow().storage.clone())
}

/// Returns the events emitted so far, and forgets them.
pub fn take_events() -> Vec<Event> {
    HOST.with(|h| std::mem::take(&mut h.borrow_mut().events))
        .into_iter()
        .map(|(name, topics, data)| Event {
            name,
            topics: decode_topics(&topics),
            data,
        })
        .collect()
}

fn decode_topics(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut r = crate::codec::Reader::new(bytes);
    let count = r.u32("the topic count").expect("topics: count");
    let topics = (0..count)
        .map(|i| r.chunk(&format!("topic {i}")).expect("topics").to_vec())
        .collect();
    r.finish().expect("topics: trailing bytes");
    topics
}

/// Returns the return data set by the last entry point, and forgets it.
pub fn take_return() -> Option<Vec<u8>> {
    HOST.with(|h| h.borrow_mut().returned.take())
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that keeps quiet about the expected panics (aborts)
/// inside [`run`] on this thread and reports every other panic as before. (Swapping the hook
/// around each run would race between test threads.)
fn quiet_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// Runs `entry` (an entry point such as `__gmchain_entry::call`) and returns the abort message
/// (or panic message) when it failed; storage written before a failure is restored, as the
/// chain discards a failed run's writes and events.
pub fn run(entry: fn()) -> Result<(), String> {
    let saved = HOST.with(|h| {
        let h = h.borrow();
        (h.storage.clone(), h.events.len())
    });
    quiet_panics();
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(entry);
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.storage = saved.0;
            h.events.truncate(saved.1);
            h.returned = None;
        });
        if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else {
            "a panic without a message".to_string()
        }
    })
}
