//! The host functions' fuel table (`docs/contracts.md` §3; a consensus rule).
//!
//! Each host function charges [`HOST_CALL`] plus its own base cost plus per-byte costs for
//! the bytes it reads from or writes to the contract's memory, before it does the work: a call
//! that cannot pay ends the run with `CONTRACT_FUEL_EXHAUSTED` and has done nothing. Byte
//! counts are rounded up to whole units (`⌈n / 64⌉` for 64-byte units). A function whose output
//! length is known only after it asked the host (`storage_read`, `caller`, `caller_contract`)
//! charges that output after asking and before writing it. The figures are calibrated so that
//! fuel tracks time roughly as the interpreter's operator fuel does (the calibration and the
//! bench are in `docs/contracts.md` §3); the known-answer tests of `tests/host.rs` pin them.

/// Charged by every host function: the call into the host.
pub const HOST_CALL: u64 = 50;

/// Per 64 bytes (or part of them) copied between the memory and the host, unless a function
/// names its own per-byte cost.
pub const COPY_PER_64_BYTES: u64 = 1;

/// `storage_read`: the lookup in the state tree.
pub const STORAGE_READ: u64 = 2_000;

/// `storage_read`: per 64 bytes of key, and per 64 bytes of the value (all of it, whatever the
/// capacity; the value is loaded whole).
pub const STORAGE_READ_PER_64_BYTES: u64 = 4;

/// `storage_write`: the write and its share of the state tree's work at commit.
pub const STORAGE_WRITE: u64 = 20_000;

/// `storage_write`: per byte of key and value. Priced for the bytes every node keeps, not
/// for the CPU: at [`STORED_BYTE`] a block's fuel budget (2·10⁹) buys at most about 15 MiB of
/// state, under the 16 MiB block size.
pub const STORAGE_WRITE_PER_BYTE: u64 = STORED_BYTE;

/// `storage_remove`: the removal and its share of the state tree's work at commit.
pub const STORAGE_REMOVE: u64 = 20_000;

/// `storage_remove`: per byte of key.
pub const STORAGE_REMOVE_PER_BYTE: u64 = 2;

/// `sm3`: per call (the padding block and the output).
pub const SM3: u64 = 200;

/// `sm3` and the hashing in `sm2_verify`: per 64-byte block (or part of one) hashed.
pub const SM3_PER_64_BYTES: u64 = 200;

/// `sm2_verify`: the verification (a double scalar multiplication and ZA).
pub const SM2_VERIFY: u64 = 175_000;

/// `emit`: the event (kept in the receipt).
pub const EMIT: u64 = 1_000;

/// `emit`: per byte of name, topics and data (stored in the receipt by every node; see
/// [`STORED_BYTE`]).
pub const EMIT_PER_BYTE: u64 = STORED_BYTE;

/// `set_return`: per byte of the return data (the output goes into the receipt; see
/// [`STORED_BYTE`]).
pub const SET_RETURN_PER_BYTE: u64 = STORED_BYTE;

/// The price of one byte that every node keeps forever (a receipt's events and output, the
/// state's keys and values): 2·10⁹ fuel (a block's default budget) / 128 ≈ 15 MiB, so a
/// block's fuel cannot buy more stored bytes than the 16 MiB a block may carry.
pub const STORED_BYTE: u64 = 128;

/// Every run, before the module is instantiated: the store, the linker of host API v1, the
/// instance and its exports (a run of the smallest contract measured 8.2 µs, of which its one
/// page is [`INITIAL_MEMORY_PER_PAGE`]; `docs/contracts.md` §3).
pub const INSTANTIATE: u64 = 5_000;

/// Per page of the module's initial memory, before it is instantiated: the rate of
/// `memory.grow` (65 536 bytes at 1 fuel per 64 bytes).
pub const INITIAL_MEMORY_PER_PAGE: u64 = 1_024;

/// Per active data segment, before the module is instantiated: the operator cost of the
/// `memory.init` the segment stands for; its bytes are charged at [`COPY_PER_64_BYTES`].
pub const DATA_SEGMENT: u64 = 1;

/// `call`: instantiating the callee and the nested run's setup.
pub const CALL: u64 = 10_000;

/// Returns the fuel a run pays before instantiating a module whose memory starts with
/// `initial_pages` pages and whose active data segments have the lengths `data_segments`:
/// [`INSTANTIATE`] + [`INITIAL_MEMORY_PER_PAGE`] per page + for each segment
/// [`DATA_SEGMENT`] and [`COPY_PER_64_BYTES`] per 64 bytes or part of them. [`crate::validate`]
/// computes it once per module ([`crate::ValidatedModule::instantiation_fuel`]).
pub fn instantiation(initial_pages: u64, data_segments: &[u64]) -> u64 {
    data_segments.iter().fold(
        INSTANTIATE.saturating_add(initial_pages.saturating_mul(INITIAL_MEMORY_PER_PAGE)),
        |fuel, len| {
            fuel.saturating_add(DATA_SEGMENT)
                .saturating_add(per_64(*len, COPY_PER_64_BYTES))
        },
    )
}

/// Returns the fuel of `n` bytes at `per_64` fuel per 64 bytes or part of them.
pub(crate) fn per_64(n: u64, per_64: u64) -> u64 {
    n.div_ceil(64).saturating_mul(per_64)
}

/// A deployment or upgrade proposal, per byte of its module: the checks of
/// [`crate::validate`] (three validating parses, the module rules and a compile), which every
/// node runs on the proposal (`docs/contracts.md` §4). Measured in release
/// (`cargo bench -p contracts --bench engine -- 'compile|validate_stored'`): 9.1 ms for a
/// 245 KB module of one large function and 10.4 ms for 212 KB of typical functions, 37–49 ns
/// per byte, which 40 fuel (52 ns at the interpreter's 1.3 ns per fuel) covers.
pub const MODULE_CHECK_PER_BYTE: u64 = 40;

/// A deployment or upgrade proposal, per function its module defines: 10 000 of the smallest
/// functions (70 KB) take 12.6 ms to check, 0.9 µs per function beyond their bytes' share.
pub const MODULE_CHECK_PER_FUNCTION: u64 = 800;

/// Returns the fuel a deployment or upgrade proposal pays for the checks of its module of
/// `len` bytes defining `functions` functions, besides the governance call's own cost.
pub fn module_check(len: u64, functions: u32) -> u64 {
    len.saturating_mul(MODULE_CHECK_PER_BYTE)
        .saturating_add(u64::from(functions).saturating_mul(MODULE_CHECK_PER_FUNCTION))
}
