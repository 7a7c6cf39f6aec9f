//! Why a module is refused at deployment ([`DeployError`]) and why a run failed ([`RunError`]),
//! each with a stable code of `crates/codes` (range 3200–3299).

use thiserror::Error;

/// Why a module was refused at deployment (or, for [`DeployError::Compile`], by the compiler
/// after it passed validation). Every variant has a stable code ([`codes::Coded`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The module is larger than the size cap.
    #[error("the module is {size} bytes, over the cap of {limit} bytes")]
    TooLarge {
        /// The module's size in bytes.
        size: usize,
        /// The cap in bytes.
        limit: usize,
    },
    /// The bytes do not parse or validate as WebAssembly (with every proposal enabled).
    #[error("not a valid WebAssembly module: {reason}")]
    InvalidWasm {
        /// The parser's error, with its byte offset.
        reason: String,
    },
    /// The module is valid WebAssembly but uses a proposal the chain does not allow.
    #[error("uses a WebAssembly feature the chain does not allow: {reason}")]
    FeatureNotAllowed {
        /// The validator's error, with its byte offset.
        reason: String,
    },
    /// A function body contains a floating-point instruction.
    #[error("function {function} uses the floating-point operator {operator}")]
    FloatInstruction {
        /// The function's index in the module's function index space (imports first).
        function: u32,
        /// The operator's name as wasmparser spells it (`F32Add`, `I32TruncF64S`).
        operator: String,
    },
    /// A type, local, global or block type is `f32` or `f64`.
    #[error("floating-point type in {place}")]
    FloatType {
        /// Where: `type 0 (a function signature)`, `function 3 (a local)`, `global 1`.
        place: String,
    },
    /// An import outside the `gmchain` namespace, or an import that is not a function.
    #[error("import {module}.{name} is not allowed: {why}")]
    ImportNotAllowed {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The module declares a start function.
    #[error("the module declares a start function (function {function})")]
    StartFunction {
        /// The start function's index.
        function: u32,
    },
    /// The memory's declared minimum or maximum is over the page limit.
    #[error("the memory declares {declared} pages ({which}), over the limit of {limit}")]
    TooManyPages {
        /// The declared number of 64 KiB pages.
        declared: u64,
        /// `minimum` or `maximum`.
        which: &'static str,
        /// The page limit.
        limit: u32,
    },
    /// A table's declared minimum or maximum is over the table limit.
    #[error("table {table} declares {declared} elements ({which}), over the limit of {limit}")]
    TableTooLarge {
        /// The table's index.
        table: u32,
        /// The declared number of elements.
        declared: u64,
        /// `minimum` or `maximum`.
        which: &'static str,
        /// The element limit.
        limit: u32,
    },
    /// An export the ABI requires is missing.
    #[error("the module does not export `{name}` (the contract ABI v1 requires it)")]
    MissingExport {
        /// The missing export's name.
        name: &'static str,
    },
    /// An export the ABI names has the wrong kind or signature.
    #[error("export `{name}` must be {expected}")]
    ExportWrongType {
        /// The export's name.
        name: String,
        /// What the ABI requires.
        expected: &'static str,
    },
    /// The module defines more functions than [`crate::Limits::max_functions`].
    #[error("the module defines {count} functions, over the limit of {limit}")]
    TooManyFunctions {
        /// The number of functions the module defines (imports not counted).
        count: u32,
        /// The limit.
        limit: u32,
    },
    /// A function has more locals (parameters included) than [`crate::Limits::max_locals`].
    #[error(
        "function {function} has {count} locals (parameters included), over the limit of {limit}"
    )]
    TooManyLocals {
        /// The function's index in the module's function index space (imports first).
        function: u32,
        /// Its number of locals, parameters included.
        count: u64,
        /// The limit.
        limit: u32,
    },
    /// The interpreter refused to compile a module that passed the scan of [`crate::validate`]
    /// (validation compiles every module it accepts, so this is a deployment refusal).
    #[error("the interpreter could not compile the module: {reason}")]
    Compile {
        /// The interpreter's error.
        reason: String,
    },
}

impl codes::Coded for DeployError {
    fn code(&self) -> &'static codes::Code {
        match self {
            DeployError::TooLarge { .. } => &codes::CONTRACT_TOO_LARGE,
            DeployError::InvalidWasm { .. } => &codes::CONTRACT_INVALID_WASM,
            DeployError::FeatureNotAllowed { .. } => &codes::CONTRACT_FEATURE_NOT_ALLOWED,
            DeployError::FloatInstruction { .. } | DeployError::FloatType { .. } => {
                &codes::CONTRACT_FLOAT
            }
            DeployError::ImportNotAllowed { .. } => &codes::CONTRACT_IMPORT_NOT_ALLOWED,
            DeployError::StartFunction { .. } => &codes::CONTRACT_START_FUNCTION,
            DeployError::TooManyPages { .. } => &codes::CONTRACT_TOO_MANY_PAGES,
            DeployError::TableTooLarge { .. } => &codes::CONTRACT_TABLE_TOO_LARGE,
            DeployError::MissingExport { .. } => &codes::CONTRACT_MISSING_EXPORT,
            DeployError::ExportWrongType { .. } => &codes::CONTRACT_EXPORT_WRONG_TYPE,
            DeployError::TooManyFunctions { .. } => &codes::CONTRACT_TOO_MANY_FUNCTIONS,
            DeployError::TooManyLocals { .. } => &codes::CONTRACT_TOO_MANY_LOCALS,
            DeployError::Compile { .. } => &codes::CONTRACT_COMPILE_FAILED,
        }
    }
}

/// The kind of a WebAssembly trap that is neither fuel nor stack exhaustion. These are the
/// spec's trap conditions; the run's code is `CONTRACT_TRAP` and the kind is its detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// `unreachable` executed (a Rust contract's panic or abort lands here).
    Unreachable,
    /// A load, store or bulk-memory operation outside the memory.
    MemoryOutOfBounds,
    /// A table access outside the table.
    TableOutOfBounds,
    /// `call_indirect` to an empty table slot.
    IndirectCallToNull,
    /// `call_indirect` to a function of another signature.
    IndirectCallBadSignature,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// Signed integer division overflow (`i32::MIN / -1`).
    IntegerOverflow,
    /// Any other trap the interpreter reports (the name is its message).
    Other,
}

impl TrapKind {
    /// Returns the stable name carried with `CONTRACT_TRAP`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::Unreachable => "unreachable",
            TrapKind::MemoryOutOfBounds => "memory-out-of-bounds",
            TrapKind::TableOutOfBounds => "table-out-of-bounds",
            TrapKind::IndirectCallToNull => "indirect-call-to-null",
            TrapKind::IndirectCallBadSignature => "indirect-call-bad-signature",
            TrapKind::IntegerDivisionByZero => "integer-division-by-zero",
            TrapKind::IntegerOverflow => "integer-overflow",
            TrapKind::Other => "other",
        }
    }
}

impl core::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run failed. Each variant is deterministic: the same module, entry point and fuel
/// limit fail the same way on every node. Every variant has a stable code ([`codes::Coded`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The run used all of its fuel limit.
    #[error("out of fuel: the limit of {limit} was used up")]
    FuelExhausted {
        /// The fuel limit of the run.
        limit: u64,
    },
    /// The contract trapped.
    #[error("the contract trapped: {kind}")]
    Trap {
        /// The trap's kind.
        kind: TrapKind,
    },
    /// The module's memory could not be allocated within the page limit (the module declares
    /// more than the engine's current limit; validation under the same limit prevents this).
    #[error("the module's memory does not fit the page limit of {limit}")]
    MemoryLimit {
        /// The engine's page limit.
        limit: u32,
    },
    /// The call depth or the value stack went over its limit.
    #[error("call stack exhausted (call depth limit {depth_limit})")]
    StackExhausted {
        /// The engine's call-depth limit.
        depth_limit: u32,
    },
    /// The entry point is not exported as a function taking and returning nothing.
    #[error("the contract has no entry point `{name}` of type [] -> []")]
    NoEntryPoint {
        /// The entry point asked for.
        name: String,
    },
    /// The module could not be instantiated (an import the host API does not provide, or one
    /// with another signature).
    #[error("the contract could not be instantiated: {reason}")]
    Instantiation {
        /// The interpreter's error.
        reason: String,
    },
    /// The contract called `abort`.
    #[error("the contract aborted: {message}")]
    Aborted {
        /// The contract's message (at most 1 024 bytes of it, invalid UTF-8 replaced).
        message: String,
    },
    /// A host function's length argument is over its bound, or a pointer range lies outside
    /// the memory. The host read and wrote nothing.
    #[error("{}", bounds_message(function, argument, *len, *bound))]
    HostBounds {
        /// The host function (`storage_write`).
        function: &'static str,
        /// The argument (`val_len`; a pointer argument such as `val_ptr` when its range lies
        /// outside the memory).
        argument: &'static str,
        /// The length given (for a pointer: the end of its range).
        len: u64,
        /// The bound (for a pointer: the memory's size in bytes).
        bound: u64,
    },
    /// A host function's argument is within its length bound but not of the required form (an
    /// event name with a space, a malformed topic list, a contract name not UTF-8). It has the
    /// code of [`RunError::HostBounds`].
    #[error("gmchain.{function}: argument {argument} {reason}")]
    HostArgument {
        /// The host function.
        function: &'static str,
        /// The argument.
        argument: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host refused what a host function asked (a write in a read-only call, too many
    /// events); the run fails with the host's code.
    #[error("{message}")]
    Host {
        /// The host's code.
        code: &'static codes::Code,
        /// The host's message.
        message: String,
    },
    /// The host could not read the state. Not the contract's fault: the executor stops the
    /// block instead of judging the transaction.
    #[error("the node could not read its state: {message}")]
    HostState {
        /// The host's message.
        message: String,
    },
}

/// The message of [`RunError::HostBounds`]: a pointer argument ends past the memory, any other
/// is over its bound.
fn bounds_message(function: &str, argument: &str, len: u64, bound: u64) -> String {
    if argument.ends_with("ptr") {
        format!(
            "gmchain.{function}: the range at argument {argument} ends at byte {len}, outside the memory of {bound} bytes"
        )
    } else {
        format!("gmchain.{function}: argument {argument} is {len}, over its bound of {bound}")
    }
}

impl RunError {
    /// Returns whether the run failed because the node could not read its state (not the
    /// contract's fault: the executor stops the block instead of judging the transaction).
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, RunError::HostState { .. })
    }
}

impl codes::Coded for RunError {
    fn code(&self) -> &'static codes::Code {
        match self {
            RunError::FuelExhausted { .. } => &codes::CONTRACT_FUEL_EXHAUSTED,
            RunError::Trap { .. } => &codes::CONTRACT_TRAP,
            RunError::MemoryLimit { .. } => &codes::CONTRACT_MEMORY_LIMIT,
            RunError::StackExhausted { .. } => &codes::CONTRACT_STACK_EXHAUSTED,
            RunError::NoEntryPoint { .. } => &codes::CONTRACT_NO_ENTRY_POINT,
            RunError::Instantiation { .. } => &codes::CONTRACT_INSTANTIATION_FAILED,
            RunError::Aborted { .. } => &codes::CONTRACT_ABORTED,
            RunError::HostBounds { .. } | RunError::HostArgument { .. } => {
                &codes::CONTRACT_HOST_BOUNDS
            }
            RunError::Host { code, .. } => code,
            RunError::HostState { .. } => &codes::CONTRACT_HOST_STATE,
        }
    }
}
