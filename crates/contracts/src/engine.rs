//! The chain's limits on contracts and the one deterministic interpreter configuration.

use wasmi::{CompilationMode, Config, CustomFuelCosts, OperatorCost};

/// Size of a WebAssembly page in bytes.
pub const PAGE_BYTES: u64 = 65_536;

/// The fuel of the `call` and `call_indirect` operators (every other operator costs wasmi's
/// default, 0 or 1): the frame and the zeroing of up to [`Limits::max_locals`] locals.
pub const CALL_FUEL: u8 = 10;

/// The limits every node applies to contracts. They are consensus parameters: two nodes with
/// different limits can judge the same module or run differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest module accepted at deployment, in bytes.
    pub max_code_size: usize,
    /// The most 64 KiB pages a memory may declare or grow to.
    pub max_memory_pages: u32,
    /// The most elements a table may declare or grow to.
    pub max_table_elements: u32,
    /// The deepest chain of nested WebAssembly calls; one more traps as stack exhaustion.
    pub max_call_depth: u32,
    /// The most bytes of the interpreter's value stack one run may use.
    pub max_value_stack_bytes: u32,
    /// The most functions a module may define. The interpreter keeps every compiled function
    /// in its engine until the engine is dropped; the cap bounds what one module adds (the
    /// example contracts define about 200).
    pub max_functions: u32,
    /// The most locals, parameters included, one function may have. The interpreter zeroes a
    /// function's locals on every call, and `call` costs a fixed fuel ([`CALL_FUEL`]), so the
    /// cap bounds the work one call does for its fuel (the example contracts, built by rustc
    /// 1.63 with opt-level z, use at most 31).
    pub max_locals: u32,
}

impl Default for Limits {
    /// Returns the defaults: 256 KiB of code, 64 pages (4 MiB) of memory, 1024 table
    /// elements, call depth 256, 1 MiB of value stack, 10 000 functions per module, 256
    /// locals per function.
    fn default() -> Limits {
        Limits {
            max_code_size: 256 * 1024,
            max_memory_pages: 64,
            max_table_elements: 1024,
            max_call_depth: 256,
            max_value_stack_bytes: 1024 * 1024,
            max_functions: 10_000,
            max_locals: 256,
        }
    }
}

/// Returns wasmi's configuration for contracts under `limits`. Every line is a consensus rule;
/// the crate documentation's fuel table is the published form of the two cost lines.
pub(crate) fn deterministic_config(limits: &Limits) -> Config {
    let mut config = Config::default();
    // Compile every function when the module is loaded. wasmi's default (lazy translation)
    // charges fuel for translating a function on its first call, so a node whose cache is cold
    // would charge more than a warm one and the chain would fork on fuel used.
    config.compilation_mode(CompilationMode::Eager);
    // Meter fuel; a run starts with its fuel limit and traps when it is used up.
    config.consume_fuel(true);
    // The published operator table: wasmi 2.0.0's default costs, set explicitly so that a
    // change of wasmi's defaults cannot change ours unseen (the fuel known-answer test pins
    // them too), except `call` and `call_indirect`: a call sets up a frame and zeroes the
    // callee's locals (at most `max_locals`), measured at about 17 ns with no locals and 34 ns
    // with 256; at 1.4 ns per fuel that is CALL_FUEL (docs/contracts.md §3).
    config.operator_cost(OperatorCost {
        call: CALL_FUEL,
        call_indirect: CALL_FUEL,
        ..OperatorCost::default()
    });
    // The published dynamic costs: 1 fuel per 64 bytes copied, filled or grown; the two
    // translation costs apply only to lazy modes and are never charged under eager compilation.
    config.fuel_cost(CustomFuelCosts {
        bytes_copied_per_fuel: 64,
        fuel_per_bytes_translated: 7,
        fuel_per_bytes_validated: 2,
    });
    // Call depth and value stack: exceeding either traps (StackOverflow), never the host.
    config.set_max_recursion_depth(limits.max_call_depth as usize);
    config.set_max_stack_height(limits.max_value_stack_bytes as usize);
    // Proposals: the MVP plus exactly these four.
    config.wasm_mutable_global(true);
    config.wasm_sign_extension(true);
    config.wasm_bulk_memory(true);
    config.wasm_multi_value(true);
    // Every other proposal wasmi knows is off (memory64 and SIMD are not compiled in: the
    // crate builds wasmi without its `memory64` and `simd` features).
    config.wasm_saturating_float_to_int(false);
    config.wasm_multi_memory(false);
    config.wasm_reference_types(false);
    config.wasm_tail_call(false);
    config.wasm_extended_const(false);
    config.wasm_custom_page_sizes(false);
    config.wasm_wide_arithmetic(false);
    // No floating point: no f32/f64 types or instructions (deployment refuses them first).
    config.floats(false);
    // No start function: instantiation never runs contract code outside a metered call.
    config.allow_start_fn(false);
    config
}
