//! WebAssembly smart contracts for gmchain on the `wasmi` interpreter: the one deterministic
//! engine configuration, validation of a module at deployment, a cache of compiled modules
//! keyed by the SM3 code hash, and metered runs of a contract's entry points.
//!
//! What it refuses to do: read a clock, a file, a socket or an entropy source; compile lazily
//! (lazy translation charges fuel on a function's first call, so a cold cache would charge
//! differently and fork the chain); run floating point, SIMD, threads, reference types or any
//! proposal beyond MVP + mutable-global + sign-ext + bulk-memory + multi-value; offer WASI; run
//! a start function; let a contract's failure become a panic of the node. It holds no chain
//! state: a run reaches the chain only through the [`Host`] it is given (host API v1, the
//! `gmchain` imports), which `execution` implements over the state. The module rules are
//! `docs/contracts.md` §1, the host API §2, the host functions' fuel §3 ([`fuel`]).
//!
//! # Use
//!
//! [`validate`] a module's bytes at deployment (it checks the rules, then compiles the module
//! with a throwaway engine, and returns a [`ValidatedModule`], which nothing else constructs),
//! [`Runtime::compile`] it (cached by [`ValidatedModule::hash`]),
//! then [`Runtime::run`] an [`EntryPoint`] with a fuel limit and a [`Host`]: the [`Outcome`]
//! has the fuel used, `Ok` or a [`RunError`] with a stable code, and the return data. The
//! runtime is `Send + Sync` and re-entrant: a host's [`Host::call`] runs the callee with the
//! same runtime while the caller waits in the host function ([`Outcome::call_result`] turns the
//! callee's outcome into the caller's answer).
//!
//! # Fuel table (published; a consensus rule)
//!
//! Fuel is what wasmi 2.0.0 charges with the costs below, set explicitly in the engine
//! configuration and pinned by the known-answer test `fuel_known_answers_follow_the_published_table`.
//! wasmi sums the costs of a fuel block's operators at compile time and charges the sum when
//! the block is entered, so a run that cannot pay for a block stops before it. Compilation
//! may fold constant conditions; the charge is that of the compiled form, identical on every
//! node because wasmi is pinned exactly (`=2.0.0`): upgrading it is a consensus change.
//! Host functions add their own costs: the table of [`fuel`] (`docs/contracts.md` §3).
//!
//! | what | fuel |
//! |---|---|
//! | instantiating the module, before anything else (fixed at validation: [`fuel::instantiation`]) | 5 000 + 1 024 per page of initial memory + per active data segment 1 + ⌈n / 64⌉ |
//! | entering a fuel block: a function body (each call), a `loop` (each iteration), the arm of an `if` taken | 1 |
//! | `nop`, `drop`, `block`, `loop`, `else`, `end`, `return`, `unreachable` | 0 |
//! | `call`, `call_indirect` (the frame, and zeroing the callee's locals: at most [`Limits::max_locals`]) | [`CALL_FUEL`] = 10 |
//! | every other operator: `br`, `br_if`, `br_table`, `if`, `select`, `local.*`, `global.*`, `i32.*`/`i64.*` constants, arithmetic and comparisons, loads, stores, `memory.size`, `memory.grow`, `memory.copy`, `memory.fill` | 1 |
//! | in addition, `memory.grow` by n pages (when it succeeds) | n × 65 536 / 64 = 1 024 per page |
//! | in addition, `memory.copy`, `memory.fill`, `memory.init` of n bytes | ⌊n / 64⌋ |
//! | compiling a module (eager, when loaded) | 0 |
//!
//! For example a loop of n iterations of `local.get`, `i32.const`, `i32.sub`, `local.tee`,
//! `br_if` after a two-operator prologue, in a module of one page and no data, costs
//! 6 024 + 1 + 2 + 6n.
//!
//! # Limits
//!
//! [`Limits`] (defaults: 256 KiB of code, 64 pages of memory, 1 024 table elements, call depth
//! 256, 1 MiB of value stack, 10 000 functions per module, 256 locals per function) bind both
//! [`validate`] and the [`Runtime`]. `memory.grow` past the
//! page limit returns −1 (the WebAssembly spec's failure value); it does not trap.
//!
//! wasmi's engine keeps every function it compiled until it is dropped; the [`Runtime`]
//! replaces its engine by a fresh one after 1 000 000 compiled functions (and empties its
//! cache), so a node that compiles on every cache miss neither grows without bound nor reaches
//! wasmi's panic at 10⁸ functions. Nothing observable changes: compilation charges no fuel.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod abi;
mod engine;
mod error;
pub mod fuel;
mod host;
mod runtime;
mod validate;

pub use abi::{HOST_FUNCTIONS, bounds};
pub use engine::{CALL_FUEL, Limits, PAGE_BYTES};
pub use error::{DeployError, RunError, TrapKind};
pub use host::{CallResult, Host, HostError};
pub use runtime::{
    CacheStats, CompiledModule, ENGINE_RENEWAL_DEAD_BYTES, ENGINE_RENEWAL_DEAD_FUNCTIONS, Outcome,
    Runtime,
};
pub use validate::{
    EntryPoint, HOST_NAMESPACE, MEMORY_EXPORT, ValidatedModule, validate, validate_stored,
};
