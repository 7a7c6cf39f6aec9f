//! The gmchain contract SDK: write a WebAssembly contract for gmchain in plain Rust.
//!
//! It wraps the host API v1 of `docs/contracts.md` §2 (import module `gmchain`), encodes and
//! decodes typed arguments and results ([`Arg`]: `u64`, `i64`, `u32`, `i32`, `bool`, `str`
//! as [`String`], `bytes` as [`Bytes`], `digest` as `[u8; 32]`, tuples, [`record!`]s and
//! lists as `Vec`), stores typed values ([`Value`], [`Map`], [`List`]), emits events, and
//! exports the entry points with [`contract!`]:
//!
//! ```ignore
//! use gmchain_sdk::Value;
//!
//! const GREETING: Value<String> = Value::new("greeting");
//!
//! fn set(greeting: String) {
//!     GREETING.set(&greeting);
//!     gmchain_sdk::emit("greeting_set", &[], greeting.as_bytes());
//! }
//!
//! fn get() -> String {
//!     GREETING.get().unwrap_or_default()
//! }
//!
//! gmchain_sdk::contract! {
//!     fn set(greeting: String);
//!     fn get() -> String;
//! }
//! ```
//!
//! What it refuses to do: depend on any crate (contracts build with Debian's rustc 1.63
//! offline), use floating point (the chain refuses such modules), iterate storage (v1 has no
//! host iteration), or let a panic end a run silently: the entry points install a panic hook
//! that aborts the run with the panic's message (`CONTRACT_ABORTED`).
//!
//! Build a contract with `gmchain contract build --path <crate>` (it links with a 64 KiB
//! stack so the module fits the chain's 64-page memory limit, strips custom sections and
//! validates the result as a deployment would). On targets other than `wasm32` the host is an
//! in-memory one of the test thread ([`testing`]), so contracts' logic can be unit-tested with
//! the ordinary `rustc --test`.

pub mod codec;
mod host;
#[cfg(test)]
mod kat;
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use codec::{Arg, Bytes, DecodeError};
pub use storage::{List, Map, Value};

/// The most arguments a call may carry (§2).
pub const MAX_ARGS: usize = 32;
/// The longest abort message the host keeps (bytes); longer ones are cut at a character.
pub const MAX_ABORT_LEN: usize = 1024;

/// Ends the run as failed (`CONTRACT_ABORTED`) with `message`; the transaction's writes and
/// events are discarded. The message is cut to [`MAX_ABORT_LEN`] bytes at a character boundary.
pub fn abort(message: &str) -> ! {
    let mut end = message.len().min(MAX_ABORT_LEN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    host::host_abort(&message.as_bytes()[..end])
}

/// Aborts with a formatted message unless the condition holds:
/// `ensure!(amount > 0, "amount must be positive, got {amount}")`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            $crate::abort(&format!($($msg)+))
        }
    };
}

/// A call's input: the method's name and its encoded arguments (§2: `bytes(method) ‖ u32
/// count ‖ bytes(arg) × count`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The method's name.
    pub method: String,
    /// Each argument's typed encoding.
    pub args: Vec<Vec<u8>>,
}

impl Input {
    /// Returns the encoding a host (or [`call`]) passes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        codec::put_chunk(&mut out, self.method.as_bytes());
        out.extend_from_slice(&(self.args.len() as u32).to_be_bytes());
        for arg in &self.args {
            codec::put_chunk(&mut out, arg);
        }
        out
    }

    /// Decodes an input; the error says which part was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Input, DecodeError> {
        let mut r = codec::Reader::new(bytes);
        let method = r.chunk("the method")?;
        let method = String::decode(method).map_err(|e| e.within("the method".to_string()))?;
        let count = r.u32("the argument count")? as usize;
        if count > MAX_ARGS || count > r.remaining() / 4 {
            return Err(DecodeError {
                path: Vec::new(),
                reason: codec::Reason::Truncated {
                    what: format!("an argument count of {count} (at most {MAX_ARGS})"),
                },
            });
        }
        let mut args = Vec::with_capacity(count);
        for i in 0..count {
            args.push(r.chunk(codec::Nth("argument", i))?.to_vec());
        }
        r.finish()?;
        Ok(Input { method, args })
    }
}

/// Returns this call's input; aborts when the host's bytes are not an input.
pub fn input() -> Input {
    match Input::decode(&host::host_input()) {
        Ok(input) => input,
        Err(e) => abort(&format!("the call's input does not decode: {e}")),
    }
}

/// A certificate's role in the chain's PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An organisation's administrator.
    Admin,
    /// An ordinary user.
    User,
    /// A read-only auditor.
    Auditor,
    /// A node.
    Node,
}

impl Role {
    /// Returns the role's name as certificates spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Node => "node",
        }
    }

    /// Parses `admin`, `user`, `auditor` or `node`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "auditor" => Some(Role::Auditor),
            "node" => Some(Role::Node),
            _ => None,
        }
    }
}

/// The transaction's signer (§2 "Caller").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The certificate's ID (32 bytes).
    pub cert_id: [u8; 32],
    /// The organisation that issued the certificate.
    pub organisation: String,
    /// The certificate's common name.
    pub common_name: String,
    /// The certificate's role.
    pub role: Role,
}

impl Caller {
    /// Returns the encoding of §2: `cert_id ‖ bytes(organisation) ‖ bytes(common name) ‖
    /// bytes(role)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.cert_id.to_vec();
        codec::put_chunk(&mut out, self.organisation.as_bytes());
        codec::put_chunk(&mut out, self.common_name.as_bytes());
        codec::put_chunk(&mut out, self.role.as_str().as_bytes());
        out
    }

    /// Decodes the encoding of §2.
    pub fn decode(bytes: &[u8]) -> Result<Caller, DecodeError> {
        let mut r = codec::Reader::new(bytes);
        let cert_id = <[u8; 32]>::decode(r.take(32, "the certificate ID")?)?;
        let organisation = r.arg::<String>("the organisation")?;
        let common_name = r.arg::<String>("the common name")?;
        let role = r.arg::<String>("the role")?;
        r.finish()?;
        let role = match Role::parse(&role) {
            Some(role) => role,
            None => {
                return Err(DecodeError {
                    path: vec!["the role".to_string()],
                    reason: codec::Reason::Invalid {
                        what: format!("unknown role `{role}`"),
                    },
                })
            }
        };
        Ok(Caller {
            cert_id,
            organisation,
            common_name,
            role,
        })
    }

    /// Returns whether the caller has `role` in `organisation`.
    pub fn is(&self, organisation: &str, role: Role) -> bool {
        self.organisation == organisation && self.role == role
    }
}

/// Returns the transaction's signer; aborts if the host's bytes do not decode.
pub fn caller() -> Caller {
    match Caller::decode(&host::host_caller()) {
        Ok(c) => c,
        Err(e) => abort(&format!("the caller does not decode: {e}")),
    }
}

/// Returns the name of the contract that called this one, or `None` for a transaction or a
/// query.
pub fn caller_contract() -> Option<String> {
    let name = host::host_caller_contract();
    if name.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&name).into_owned())
    }
}

/// Returns the height of the block being executed (a query: the tip's height + 1).
pub fn block_height() -> u64 {
    host::host_block_height() as u64
}

/// Returns the block's timestamp in milliseconds since the Unix epoch, as its proposer stated
/// it (never a wall clock).
pub fn block_time_ms() -> u64 {
    host::host_block_time_ms() as u64
}

/// Returns the transaction's ID (32 zero bytes in a query).
pub fn tx_id() -> [u8; 32] {
    host::host_tx_id()
}

/// Returns SM3 of `data` (at most 1 MiB), computed by the chain.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    host::host_sm3(data)
}

/// Returns whether the DER signature `sig` verifies over `msg` with the SM2 public key `key`
/// (65 bytes, `04‖x‖y`) and the user ID `id` (GB/T 32918.2, ZA applied; the common default
/// is `1234567812345678`). A malformed key or signature is `false`.
pub fn sm2_verify(key: &[u8], id: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    host::host_sm2_verify(key, id, msg, sig)
}

/// Emits an event of this contract: `name` (1–64 printable ASCII bytes, no space), at most 4
/// topics of 1–64 bytes each, and data (at most 16 384 bytes). The host enforces the bounds.
pub fn emit(name: &str, topics: &[&[u8]], data: &[u8]) {
    let mut encoded = Vec::new();
    encoded.extend_from_slice(&(topics.len() as u32).to_be_bytes());
    for topic in topics {
        codec::put_chunk(&mut encoded, topic);
    }
    host::host_emit(name.as_bytes(), &encoded, data);
}

/// Why a call into another contract failed: its code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFailure {
    /// The stable code (`CONTRACT_ABORTED`, `CONTRACT_CALL_DEPTH`…).
    pub code: String,
    /// The message.
    pub message: String,
}

/// Calls the deployed contract `contract` with `method` and encoded arguments: its return
/// data when it succeeded (its writes and events join this call's), its code and message when
/// it failed (its writes and events are discarded).
pub fn call(contract: &str, method: &str, args: Vec<Vec<u8>>) -> Result<Vec<u8>, CallFailure> {
    let input = Input {
        method: method.to_string(),
        args,
    }
    .encode();
    let (ok, data) = host::host_call(contract.as_bytes(), &input);
    if ok {
        return Ok(data);
    }
    let text = String::from_utf8_lossy(&data).into_owned();
    let (code, message) = match text.split_once(' ') {
        Some((code, message)) => (code.to_string(), message.to_string()),
        None => (text, String::new()),
    };
    Err(CallFailure { code, message })
}

/// Sets this call's return data (at most 65 536 bytes; the last one set counts).
pub fn set_return(data: &[u8]) {
    host::host_set_return(data);
}

/// Sets this call's return data to the typed encoding of `value`.
pub fn return_value<T: Arg>(value: &T) {
    set_return(&value.encode());
}

#[doc(hidden)]
pub mod __private {
    //! What [`contract!`](crate::contract) expands to; not an API.

    use super::*;

    /// Makes a panic end the run with its message instead of a bare `unreachable` trap.
    pub fn install_panic_hook() {
        #[cfg(target_arch = "wasm32")]
        std::panic::set_hook(Box::new(|info| abort(&info.to_string())));
    }

    /// The arguments of one method call, decoded in order.
    #[derive(Debug)]
    pub struct Args {
        method: &'static str,
        args: Vec<Vec<u8>>,
        next: usize,
        expected: usize,
    }

    impl Args {
        /// Checks the count before anything is decoded.
        pub fn new(method: &'static str, args: Vec<Vec<u8>>, expected: usize) -> Args {
            if args.len() != expected {
                abort(&format!(
                    "method `{method}` takes {expected} arguments, got {}",
                    args.len()
                ));
            }
            Args {
                method,
                args,
                next: 0,
                expected,
            }
        }

        /// Decodes the next argument as a `T`; aborts naming the method, the argument and
        /// its type.
        pub fn next<T: Arg>(&mut self, name: &str) -> T {
            let i = self.next;
            self.next += 1;
            match self.args.get(i).map(|bytes| T::decode(bytes)) {
                Some(Ok(v)) => v,
                Some(Err(e)) => abort(&format!(
                    "method `{}`: argument {i} (`{name}`: {}): {e}",
                    self.method,
                    T::type_name()
                )),
                None => abort(&format!(
                    "method `{}`: argument {i} (`{name}`) is missing of {}",
                    self.method, self.expected
                )),
            }
        }
    }

    /// Aborts naming a method the contract does not have.
    pub fn unknown_method(method: &str, known: &[&str]) -> ! {
        abort(&format!(
            "unknown method `{method}` (this contract has: {})",
            known.join(", ")
        ))
    }
}

/// Exports the contract's entry points.
///
/// ```ignore
/// gmchain_sdk::contract! {
///     init = setup;                 // optional: `fn setup()` runs at deployment
///     migrate = upgrade;            // optional: `fn upgrade()` runs on the new code at upgrade
///     fn set(greeting: String);     // a method: a function of this name and these arguments
///     fn get() -> String;           // a result is returned with its typed encoding
/// }
/// ```
///
/// `call` reads the input, decodes the method's arguments by their types and calls the
/// function of the same name in the module where the macro is used. An unknown method, a wrong
/// argument count or an argument that does not decode aborts with a message naming it. On
/// `wasm32` they are exported as `call`, `init` and `migrate`; on every target they are the
/// Rust functions `__gmchain_entry::call` (and `init`, `migrate`), which native tests run with
/// [`testing::run`]. The macro must be used once, at the
/// crate's root.
#[macro_export]
macro_rules! contract {
    (
        $(init = $init:ident;)?
        $(migrate = $migrate:ident;)?
        $(fn $method:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? ;)+
    ) => {
        #[doc(hidden)]
        pub mod __gmchain_entry {
            #[allow(unused_imports)]
            use super::*;

            /// The `call` entry point: dispatches the input's method.
            pub fn call() {
                $crate::__private::install_panic_hook();
                let input = $crate::input();
                match input.method.as_str() {
                    $(
                        stringify!($method) => {
                            let expected = <[&str]>::len(&[$(stringify!($arg)),*]);
                            #[allow(unused_mut, unused_variables)]
                            let mut args = $crate::__private::Args::new(
                                stringify!($method),
                                input.args,
                                expected,
                            );
                            $(let $arg: $ty = args.next::<$ty>(stringify!($arg));)*
                            #[allow(clippy::let_unit_value, unused_variables)]
                            let result = super::$method($($arg),*);
                            $($crate::return_value::<$ret>(&result);)?
                        }
                    )+
                    other => $crate::__private::unknown_method(
                        other,
                        &[$(stringify!($method)),+],
                    ),
                }
            }

            #[cfg(target_arch = "wasm32")]
            #[export_name = "call"]
            extern "C" fn export_call() {
                call()
            }

            $(
                /// The `init` entry point.
                pub fn init() {
                    $crate::__private::install_panic_hook();
                    super::$init();
                }

                #[cfg(target_arch = "wasm32")]
                #[export_name = "init"]
                extern "C" fn export_init() {
                    init()
                }
            )?

            $(
                /// The `migrate` entry point.
                pub fn migrate() {
                    $crate::__private::install_panic_hook();
                    super::$migrate();
                }

                #[cfg(target_arch = "wasm32")]
                #[export_name = "migrate"]
                extern "C" fn export_migrate() {
                    migrate()
                }
            )?
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_round_trips_and_refuses_trailing_bytes() {
        let input = Input {
            method: "approve".to_string(),
            args: vec![7u64.encode(), "ok".to_string().encode()],
        };
        let bytes = input.encode();
        assert_eq!(
            bytes[..15],
            [0, 0, 0, 7, b'a', b'p', b'p', b'r', b'o', b'v', b'e', 0, 0, 0, 2]
        );
        assert_eq!(Input::decode(&bytes), Ok(input));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Input::decode(&longer).is_err());
        assert!(Input::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn caller_round_trips_and_refuses_an_unknown_role() {
        let caller = Caller {
            cert_id: [9; 32],
            organisation: "Customs".to_string(),
            common_name: "alice".to_string(),
            role: Role::Auditor,
        };
        assert_eq!(Caller::decode(&caller.encode()), Ok(caller.clone()));
        let mut bytes = caller.encode();
        let n = bytes.len();
        bytes[n - 7..].copy_from_slice(b"auditer");
        let e = Caller::decode(&bytes).unwrap_err();
        assert!(e.to_string().contains("unknown role `auditer`"), "{e}");
    }

    mod demo {
        use crate::Value;

        const COUNT: Value<u64> = Value::new("count");

        fn setup() {
            COUNT.set(&10);
        }

        fn upgrade() {
            COUNT.set(&(COUNT.get().unwrap_or(0) * 2));
        }

        fn add(a: u64, b: u64) -> u64 {
            ensure!(a.checked_add(b).is_some(), "{a} + {b} overflows");
            COUNT.set(&(a + b));
            a + b
        }

        fn count() -> u64 {
            COUNT.get().unwrap_or(0)
        }

        crate::contract! {
            init = setup;
            migrate = upgrade;
            fn add(a: u64, b: u64) -> u64;
            fn count() -> u64;
        }
    }

    #[test]
    fn the_entry_macro_exports_init_migrate_and_dispatches_call() {
        use demo::__gmchain_entry as entry;
        testing::reset();
        testing::run(entry::init).unwrap();
        testing::set_input("count", vec![]);
        testing::run(entry::call).unwrap();
        assert_eq!(testing::take_return(), Some(10u64.encode()));
        testing::run(entry::migrate).unwrap();
        testing::set_input("add", vec![2u64.encode(), 3u64.encode()]);
        testing::run(entry::call).unwrap();
        assert_eq!(testing::take_return(), Some(5u64.encode()));
        testing::set_input("add", vec![u64::MAX.encode(), 1u64.encode()]);
        let e = testing::run(entry::call).unwrap_err();
        assert_eq!(e, "CONTRACT_ABORTED 18446744073709551615 + 1 overflows");
        // The failed call's write was discarded.
        testing::set_input("count", vec![]);
        testing::run(entry::call).unwrap();
        assert_eq!(testing::take_return(), Some(5u64.encode()));
        testing::set_input("add", vec![2u64.encode(), 3u32.encode()]);
        let e = testing::run(entry::call).unwrap_err();
        assert_eq!(
            e,
            "CONTRACT_ABORTED method `add`: argument 1 (`b`: u64): a u64 is 8 bytes, got 4"
        );
        testing::set_raw_input(vec![0, 0, 0, 9, b'a']);
        let e = testing::run(entry::call).unwrap_err();
        assert!(e.contains("the call's input does not decode"), "{e}");
    }

    #[test]
    fn abort_cuts_long_messages_at_a_character() {
        let long = "é".repeat(600); // 1200 bytes
        let r = std::panic::catch_unwind(|| abort(&long));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        let kept = msg.trim_start_matches("CONTRACT_ABORTED ");
        assert_eq!(kept.len(), 1024);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
