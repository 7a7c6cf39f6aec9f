//! The host API v1 (`docs/contracts.md` §2, import module `gmchain`) as plain Rust functions.
//!
//! On `wasm32` these call the chain's imports. On every other target (the SDK's and the
//! examples' native unit tests) they work on an in-memory host of this thread, set up and read
//! through [`crate::testing`]; the host functions that need the chain's cryptography or other
//! contracts (`sm3`, `sm2_verify`, `call`) panic there, naming themselves.

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

/// Bytes read from a host function that returns a length and copies at most a capacity: one
/// call when the value fits the first buffer, a second with the exact size when it does not.
#[cfg(target_arch = "wasm32")]
fn read_sized(mut read: impl FnMut(*mut u8, i32) -> i32) -> Option<Vec<u8>> {
    const FIRST: usize = 256;
    let mut buf = vec![0u8; FIRST];
    let n = read(buf.as_mut_ptr(), FIRST as i32);
    if n < 0 {
        return None;
    }
    let n = n as usize;
    if n > FIRST {
        buf = vec![0u8; n];
        read(buf.as_mut_ptr(), n as i32);
    }
    buf.truncate(n);
    Some(buf)
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    // Exact signatures of §2: every integer is i32 except the i64 results of block_height and
    // block_time_ms; pointers are offsets into the exported memory.
    #[link(wasm_import_module = "gmchain")]
    extern "C" {
        fn input_len() -> i32;
        fn input_read(ptr: *mut u8);
        fn storage_read(key_ptr: *const u8, key_len: i32, val_ptr: *mut u8, val_cap: i32) -> i32;
        fn storage_write(key_ptr: *const u8, key_len: i32, val_ptr: *const u8, val_len: i32);
        fn storage_remove(key_ptr: *const u8, key_len: i32);
        fn caller(ptr: *mut u8, cap: i32) -> i32;
        fn caller_contract(ptr: *mut u8, cap: i32) -> i32;
        fn block_height() -> i64;
        fn block_time_ms() -> i64;
        fn tx_id(ptr: *mut u8);
        fn sm3(ptr: *const u8, len: i32, out_ptr: *mut u8);
        #[allow(clippy::too_many_arguments)]
        fn sm2_verify(
            key_ptr: *const u8,
            key_len: i32,
            id_ptr: *const u8,
            id_len: i32,
            msg_ptr: *const u8,
            msg_len: i32,
            sig_ptr: *const u8,
            sig_len: i32,
        ) -> i32;
        fn emit(
            name_ptr: *const u8,
            name_len: i32,
            topics_ptr: *const u8,
            topics_len: i32,
            data_ptr: *const u8,
            data_len: i32,
        );
        // The import is `call`; the Rust name differs so that it cannot be confused with the
        // contract's exported entry point `call`.
        #[link_name = "call"]
        fn call_contract(
            name_ptr: *const u8,
            name_len: i32,
            input_ptr: *const u8,
            input_len: i32,
        ) -> i32;
        fn return_data_len() -> i32;
        fn return_data_read(ptr: *mut u8);
        fn set_return(ptr: *const u8, len: i32);
        fn abort(msg_ptr: *const u8, msg_len: i32);
    }

    fn len(bytes: &[u8]) -> i32 {
        bytes.len() as i32
    }

    pub(crate) fn host_input() -> Vec<u8> {
        unsafe {
            let n = input_len().max(0) as usize;
            let mut buf = vec![0u8; n];
            if n > 0 {
                input_read(buf.as_mut_ptr());
            }
            buf
        }
    }

    pub(crate) fn host_storage_read(key: &[u8]) -> Option<Vec<u8>> {
        super::read_sized(|ptr, cap| unsafe { storage_read(key.as_ptr(), len(key), ptr, cap) })
    }

    pub(crate) fn host_storage_write(key: &[u8], value: &[u8]) {
        unsafe { storage_write(key.as_ptr(), len(key), value.as_ptr(), len(value)) }
    }

    pub(crate) fn host_storage_remove(key: &[u8]) {
        unsafe { storage_remove(key.as_ptr(), len(key)) }
    }

    pub(crate) fn host_caller() -> Vec<u8> {
        super::read_sized(|ptr, cap| unsafe { caller(ptr, cap) }).unwrap_or_default()
    }

    pub(crate) fn host_caller_contract() -> Vec<u8> {
        super::read_sized(|ptr, cap| unsafe { caller_contract(ptr, cap) }).unwrap_or_default()
    }

    pub(crate) fn host_block_height() -> i64 {
        unsafe { block_height() }
    }

    pub(crate) fn host_block_time_ms() -> i64 {
        unsafe { block_time_ms() }
    }

    pub(crate) fn host_tx_id() -> [u8; 32] {
        let mut out = [0u8; 32];
        unsafe { tx_id(out.as_mut_ptr()) };
        out
    }

    pub(crate) fn host_sm3(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        unsafe { sm3(data.as_ptr(), len(data), out.as_mut_ptr()) };
        out
    }

    pub(crate) fn host_sm2_verify(key: &[u8], id: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let r = unsafe {
            sm2_verify(
                key.as_ptr(),
                len(key),
                id.as_ptr(),
                len(id),
                msg.as_ptr(),
                len(msg),
                sig.as_ptr(),
                len(sig),
            )
        };
        r == 1
    }

    pub(crate) fn host_emit(name: &[u8], topics: &[u8], data: &[u8]) {
        unsafe {
            emit(
                name.as_ptr(),
                len(name),
                topics.as_ptr(),
                len(topics),
                data.as_ptr(),
                len(data),
            )
        }
    }

    pub(crate) fn host_call(name: &[u8], input: &[u8]) -> (bool, Vec<u8>) {
        unsafe {
            let status = call_contract(name.as_ptr(), len(name), input.as_ptr(), len(input));
            let n = return_data_len().max(0) as usize;
            let mut data = vec![0u8; n];
            if n > 0 {
                return_data_read(data.as_mut_ptr());
            }
            (status == 0, data)
        }
    }

    pub(crate) fn host_set_return(data: &[u8]) {
        unsafe { set_return(data.as_ptr(), len(data)) }
    }

    pub(crate) fn host_abort(msg: &[u8]) -> ! {
        unsafe {
            abort(msg.as_ptr(), len(msg));
            // The host ends the run inside `abort`; this is never reached.
            core::arch::wasm32::unreachable()
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// The in-memory host of one thread (see [`crate::testing`]).
    #[derive(Debug, Default)]
    pub(crate) struct MockHost {
        pub(crate) input: Vec<u8>,
        pub(crate) storage: BTreeMap<Vec<u8>, Vec<u8>>,
        pub(crate) caller: Vec<u8>,
        pub(crate) caller_contract: Vec<u8>,
        pub(crate) height: i64,
        pub(crate) time_ms: i64,
        pub(crate) tx_id: [u8; 32],
        pub(crate) events: Vec<(String, Vec<u8>, Vec<u8>)>,
        pub(crate) returned: Option<Vec<u8>>,
        pub(crate) read_only: bool,
    }

    thread_local! {
        pub(crate) static HOST: RefCell<MockHost> = RefCell::new(MockHost::default());
    }

    fn with<R>(f: impl FnOnce(&mut MockHost) -> R) -> R {
        HOST.with(|h| f(&mut h.borrow_mut()))
    }

    fn writable(function: &str) {
        if with(|h| h.read_only) {
            panic!("CONTRACT_READ_ONLY {function} in a read-only call");
        }
    }

    pub(crate) fn host_input() -> Vec<u8> {
        with(|h| h.input.clone())
    }

    pub(crate) fn host_storage_read(key: &[u8]) -> Option<Vec<u8>> {
        with(|h| h.storage.get(key).cloned())
    }

    pub(crate) fn host_storage_write(key: &[u8], value: &[u8]) {
        writable("storage_write");
        with(|h| h.storage.insert(key.to_vec(), value.to_vec()));
    }

    pub(crate) fn host_storage_remove(key: &[u8]) {
        writable("storage_remove");
        with(|h| h.storage.remove(key));
    }

    pub(crate) fn host_caller() -> Vec<u8> {
        with(|h| h.caller.clone())
    }

    pub(crate) fn host_caller_contract() -> Vec<u8> {
        with(|h| h.caller_contract.clone())
    }

    pub(crate) fn host_block_height() -> i64 {
        with(|h| h.height)
    }

    pub(crate) fn host_block_time_ms() -> i64 {
        with(|h| h.time_ms)
    }

    pub(crate) fn host_tx_id() -> [u8; 32] {
        with(|h| h.tx_id)
    }

    pub(crate) fn host_sm3(_data: &[u8]) -> [u8; 32] {
        panic!("sm3 is computed by the chain; the native test host does not provide it")
    }

    pub(crate) fn host_sm2_verify(_key: &[u8], _id: &[u8], _msg: &[u8], _sig: &[u8]) -> bool {
        panic!("sm2_verify is computed by the chain; the native test host does not provide it")
    }

    pub(crate) fn host_emit(name: &[u8], topics: &[u8], data: &[u8]) {
        writable("emit");
        let name = String::from_utf8_lossy(name).into_owned();
        with(|h| h.events.push((name, topics.to_vec(), data.to_vec())));
    }

    pub(crate) fn host_call(_name: &[u8], _input: &[u8]) -> (bool, Vec<u8>) {
        panic!("call runs another deployed contract; the native test host has none")
    }

    pub(crate) fn host_set_return(data: &[u8]) {
        with(|h| h.returned = Some(data.to_vec()));
    }

    pub(crate) fn host_abort(msg: &[u8]) -> ! {
        panic!("CONTRACT_ABORTED {}", String::from_utf8_lossy(msg))
    }
}
