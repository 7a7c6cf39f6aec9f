//! Deployment validation: the module rules of `docs/contracts.md` §1, checked on the bytes,
//! then a compile check with a throwaway engine of the chain's configuration.

use std::sync::Arc;

use crypto::Digest;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures};

use crate::engine::{Limits, deterministic_config};
use crate::error::DeployError;
use crate::fuel;

/// The only import namespace a contract may use: the host API (`docs/contracts.md`).
pub const HOST_NAMESPACE: &str = "gmchain";

/// The name of the memory export the ABI requires.
pub const MEMORY_EXPORT: &str = "memory";

/// An exported function the chain calls. Each takes no parameters and returns nothing:
/// arguments, results and state go through the host API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryPoint {
    /// `call`: every transaction and query to the contract (required).
    Call,
    /// `init`: run once in the deployment's transaction (optional).
    Init,
    /// `migrate`: run in an upgrade's transaction on the new code (optional).
    Migrate,
}

impl EntryPoint {
    /// Every entry point, required first.
    pub const ALL: [EntryPoint; 3] = [EntryPoint::Call, EntryPoint::Init, EntryPoint::Migrate];

    /// Returns the export name.
    pub fn name(self) -> &'static str {
        match self {
            EntryPoint::Call => "call",
            EntryPoint::Init => "init",
            EntryPoint::Migrate => "migrate",
        }
    }

    /// Returns whether every contract must export it.
    pub fn required(self) -> bool {
        matches!(self, EntryPoint::Call)
    }
}

/// A module that passed [`validate`]: its bytes, their SM3 hash, its optional entry points, the
/// number of functions it defines and the fuel every run pays to instantiate it. Only
/// [`validate`] constructs it; the cache compiles nothing else.
#[derive(Clone, Debug)]
pub struct ValidatedModule {
    code: Arc<[u8]>,
    hash: Digest,
    exports_init: bool,
    exports_migrate: bool,
    functions: u32,
    instantiation_fuel: u64,
}

impl ValidatedModule {
    /// Returns the module's bytes.
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// Returns SM3 of the module's bytes: the code hash and the cache key.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// Returns the number of functions the module defines (imports not counted): what compiling
    /// it adds to an engine.
    pub fn functions(&self) -> u32 {
        self.functions
    }

    /// Returns the fuel every run of the module pays before it is instantiated
    /// ([`fuel::instantiation`] of its initial memory and active data segments), fixed here so
    /// that a cache hit and a miss charge the same.
    pub fn instantiation_fuel(&self) -> u64 {
        self.instantiation_fuel
    }

    /// Returns whether the module exports `entry`.
    pub fn exports(&self, entry: EntryPoint) -> bool {
        match entry {
            EntryPoint::Call => true,
            EntryPoint::Init => self.exports_init,
            EntryPoint::Migrate => self.exports_migrate,
        }
    }
}

/// Returns the proposals a contract may use: the MVP (with its floating-point part, which
/// [`validate`] refuses by its own scan so that it can name the function and operator), plus
/// mutable-global, sign-ext, bulk-memory and multi-value.
fn allowed_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::FLOATS
}

fn is_float(ty: ValType) -> bool {
    matches!(ty, ValType::F32 | ValType::F64)
}

/// Returns the rendering of an operator that touches a float, if it does. wasmparser names
/// every float instruction with `F32`/`F64` (`F32Add`, `I64TruncF64S`, `F64Const { .. }`), and
/// a float block type or typed select prints its `F32`/`F64` type, so the rendering finds all.
fn float_operator(op: &wasmparser::Operator<'_>) -> Option<String> {
    let text = format!("{op:?}");
    if text.contains("F32") || text.contains("F64") {
        let mut text = text;
        text.truncate(80);
        Some(text)
    } else {
        None
    }
}

/// Validates `code` for deployment under `limits`, in this order: size cap; parses and
/// validates as WebAssembly; only the allowed proposals; then, in section order, no float
/// types, imports only functions of `gmchain`, at most [`Limits::max_functions`] defined
/// functions, tables and memory within the limits, the ABI's exports, no start function, at
/// most [`Limits::max_locals`] locals (parameters included) and no float instruction in any
/// function body; then a float-free validation as a safety net; finally the module is compiled
/// by a throwaway engine of the chain's configuration (dropped after), so that a module that
/// validates is one every node compiles ([`DeployError::Compile`] otherwise).
pub fn validate(code: &[u8], limits: &Limits) -> Result<ValidatedModule, DeployError> {
    let hash = crypto_sm::sm3::sm3(code);
    if let Some(answer) = memo().lookup(&hash, limits) {
        return answer;
    }
    let answer = check(code, limits, true);
    memo().remember(hash, *limits, answer.clone());
    answer
}

/// [`validate`] without its compile check, for code [`validate`] accepted when it was proposed
/// and that is now loaded from the state to be compiled by a [`crate::Runtime`] (whose compile
/// refuses what does not compile): the module is compiled once, not twice, on a cache miss.
pub fn validate_stored(code: &[u8], limits: &Limits) -> Result<ValidatedModule, DeployError> {
    check(code, limits, false)
}

/// The last answers of [`validate`], by SM3 of the code and the limits: a proposal's module is
/// checked at admission and again in its block (each by several steps), and the answer is a
/// pure function of the bytes and the limits, so it is computed once.
struct Memo {
    answers: Vec<(Digest, Limits, Result<ValidatedModule, DeployError>)>,
}

/// Answers [`Memo`] keeps (the most recent first).
const MEMO_ANSWERS: usize = 16;

impl Memo {
    fn lookup(
        &self,
        hash: &Digest,
        limits: &Limits,
    ) -> Option<Result<ValidatedModule, DeployError>> {
        self.answers
            .iter()
            .find(|(h, l, _)| h == hash && l == limits)
            .map(|(_, _, a)| a.clone())
    }

    fn remember(
        &mut self,
        hash: Digest,
        limits: Limits,
        answer: Result<ValidatedModule, DeployError>,
    ) {
        self.answers
            .retain(|(h, l, _)| !(*h == hash && *l == limits));
        self.answers.insert(0, (hash, limits, answer));
        self.answers.truncate(MEMO_ANSWERS);
    }
}

fn memo() -> std::sync::MutexGuard<'static, Memo> {
    static MEMO: std::sync::Mutex<Memo> = std::sync::Mutex::new(Memo {
        answers: Vec::new(),
    });
    MEMO.lock().unwrap_or_else(|p| p.into_inner())
}

/// The checks of [`validate`]; the compile check only if `compile`.
fn check(code: &[u8], limits: &Limits, compile: bool) -> Result<ValidatedModule, DeployError> {
    if code.len() > limits.max_code_size {
        return Err(DeployError::TooLarge {
            size: code.len(),
            limit: limits.max_code_size,
        });
    }
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(code)
        .map_err(|e| DeployError::InvalidWasm {
            reason: e.to_string(),
        })?;
    Validator::new_with_features(allowed_features())
        .validate_all(code)
        .map_err(|e| DeployError::FeatureNotAllowed {
            reason: e.to_string(),
        })?;

    // Run first, its answer reported last (the safety net below): whether the module has a
    // float anywhere.
    let float_free = Validator::new_with_features(allowed_features() - WasmFeatures::FLOATS)
        .validate_all(code)
        .map(drop);
    let mut scan = Scan {
        has_floats: float_free.is_err(),
        ..Scan::default()
    };
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(|e| DeployError::InvalidWasm {
            reason: e.to_string(),
        })?;
        scan.payload(payload, limits)?;
    }
    scan.finish()?;

    // Safety net: the validator without floats must agree with the scan above.
    float_free.map_err(|e| DeployError::FloatType {
        place: e.to_string(),
    })?;

    // The compile check: wasmi has limits of its own (30 000 locals a function, among others)
    // that the scan above does not restate. The engine is dropped with the module, so the
    // check leaves nothing in any engine's code map.
    if compile {
        let engine = wasmi::Engine::new(&deterministic_config(limits));
        wasmi::Module::new(&engine, code).map_err(|e| DeployError::Compile {
            reason: e.to_string(),
        })?;
    }

    Ok(ValidatedModule {
        code: Arc::from(code),
        hash: crypto_sm::sm3::sm3(code),
        exports_init: scan.exported.contains(&EntryPoint::Init.name()),
        exports_migrate: scan.exported.contains(&EntryPoint::Migrate.name()),
        functions: scan.func_types.len() as u32 - scan.imported_funcs,
        instantiation_fuel: fuel::instantiation(scan.initial_pages, &scan.data_segments),
    })
}

/// What the section scan has seen so far.
#[derive(Default)]
struct Scan {
    /// For each type index, whether it is a function type `[] -> []`.
    types_unit: Vec<bool>,
    /// For each type index, its number of parameters.
    types_params: Vec<u32>,
    /// The type index of each function, imports first.
    func_types: Vec<u32>,
    /// The number of imported functions (the first defined function's index).
    imported_funcs: u32,
    /// The number of function bodies read so far.
    bodies: u32,
    /// The ABI names found among the exports.
    exported: Vec<&'static str>,
    /// Whether an exported memory was seen.
    memory_exported: bool,
    /// The memory's initial pages (0 until the memory section).
    initial_pages: u64,
    /// The length in bytes of each active data segment.
    data_segments: Vec<u64>,
    /// Whether the float-free validation refused the module: only then are the function
    /// bodies searched for the float instruction to name.
    has_floats: bool,
}

impl Scan {
    fn payload(&mut self, payload: Payload<'_>, limits: &Limits) -> Result<(), DeployError> {
        let invalid = |e: wasmparser::BinaryReaderError| DeployError::InvalidWasm {
            reason: e.to_string(),
        };
        match payload {
            Payload::TypeSection(reader) => {
                for (index, ty) in reader.into_iter_err_on_gc_types().enumerate() {
                    let ty = ty.map_err(invalid)?;
                    if ty.params().iter().chain(ty.results()).any(|t| is_float(*t)) {
                        return Err(DeployError::FloatType {
                            place: format!("type {index} (a function signature)"),
                        });
                    }
                    self.types_unit
                        .push(ty.params().is_empty() && ty.results().is_empty());
                    self.types_params.push(ty.params().len() as u32);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    let refuse = |why| DeployError::ImportNotAllowed {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        why,
                    };
                    if import.module != HOST_NAMESPACE {
                        return Err(refuse("only the `gmchain` namespace may be imported"));
                    }
                    match import.ty {
                        TypeRef::Func(type_index) => {
                            self.func_types.push(type_index);
                            self.imported_funcs += 1;
                        }
                        _ => return Err(refuse("only functions may be imported")),
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                if reader.count() > limits.max_functions {
                    return Err(DeployError::TooManyFunctions {
                        count: reader.count(),
                        limit: limits.max_functions,
                    });
                }
                for type_index in reader {
                    self.func_types.push(type_index.map_err(invalid)?);
                }
            }
            Payload::TableSection(reader) => {
                for (index, table) in reader.into_iter().enumerate() {
                    let ty = table.map_err(invalid)?.ty;
                    let limit = limits.max_table_elements;
                    if let Some((declared, which)) = above(ty.initial, ty.maximum, limit) {
                        return Err(DeployError::TableTooLarge {
                            table: index as u32,
                            declared,
                            which,
                            limit,
                        });
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let ty = memory.map_err(invalid)?;
                    let limit = limits.max_memory_pages;
                    if let Some((declared, which)) = above(ty.initial, ty.maximum, limit) {
                        return Err(DeployError::TooManyPages {
                            declared,
                            which,
                            limit,
                        });
                    }
                    self.initial_pages = ty.initial;
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    let data = data.map_err(invalid)?;
                    if let wasmparser::DataKind::Active { .. } = data.kind {
                        self.data_segments.push(data.data.len() as u64);
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for (index, global) in reader.into_iter().enumerate() {
                    if is_float(global.map_err(invalid)?.ty.content_type) {
                        return Err(DeployError::FloatType {
                            place: format!("global {index}"),
                        });
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    self.export(export.map_err(invalid)?)?;
                }
            }
            Payload::StartSection { func, .. } => {
                return Err(DeployError::StartFunction { function: func });
            }
            Payload::CodeSectionEntry(body) => {
                let function = self.imported_funcs + self.bodies;
                self.bodies += 1;
                // Parameters are locals too: the interpreter's frame holds both.
                let mut count = self
                    .func_types
                    .get(function as usize)
                    .and_then(|t| self.types_params.get(*t as usize))
                    .map_or(0, |p| u64::from(*p));
                let mut locals = body.get_locals_reader().map_err(invalid)?;
                for _ in 0..locals.get_count() {
                    let (n, ty) = locals.read().map_err(invalid)?;
                    if is_float(ty) {
                        return Err(DeployError::FloatType {
                            place: format!("function {function} (a local)"),
                        });
                    }
                    count += u64::from(n);
                }
                if count > u64::from(limits.max_locals) {
                    return Err(DeployError::TooManyLocals {
                        function,
                        count,
                        limit: limits.max_locals,
                    });
                }
                // Each operator is rendered only when the float-free validation already found a
                // float somewhere, to name the first float instruction.
                if self.has_floats {
                    let mut ops = body.get_operators_reader().map_err(invalid)?;
                    while !ops.eof() {
                        let op = ops.read().map_err(invalid)?;
                        if let Some(operator) = float_operator(&op) {
                            return Err(DeployError::FloatInstruction { function, operator });
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn export(&mut self, export: wasmparser::Export<'_>) -> Result<(), DeployError> {
        if export.name == MEMORY_EXPORT {
            if export.kind != ExternalKind::Memory {
                return Err(DeployError::ExportWrongType {
                    name: export.name.to_string(),
                    expected: "a memory",
                });
            }
            self.memory_exported = true;
            return Ok(());
        }
        let Some(entry) = EntryPoint::ALL.iter().find(|e| e.name() == export.name) else {
            // Other exports (a toolchain's `__heap_base`, helpers) are allowed; the chain
            // never calls them.
            return Ok(());
        };
        let unit = export.kind == ExternalKind::Func
            && self
                .func_types
                .get(export.index as usize)
                .and_then(|t| self.types_unit.get(*t as usize))
                .copied()
                .unwrap_or(false);
        if !unit {
            return Err(DeployError::ExportWrongType {
                name: export.name.to_string(),
                expected: "a function of type [] -> []",
            });
        }
        self.exported.push(entry.name());
        Ok(())
    }

    fn finish(&self) -> Result<(), DeployError> {
        if !self.memory_exported {
            return Err(DeployError::MissingExport {
                name: MEMORY_EXPORT,
            });
        }
        for entry in EntryPoint::ALL {
            if entry.required() && !self.exported.contains(&entry.name()) {
                return Err(DeployError::MissingExport { name: entry.name() });
            }
        }
        Ok(())
    }
}

/// The first of a declared minimum and maximum (of a table or memory) above `limit`, and which
/// it is.
fn above(initial: u64, maximum: Option<u64>, limit: u32) -> Option<(u64, &'static str)> {
    let limit = u64::from(limit);
    if initial > limit {
        return Some((initial, "minimum"));
    }
    maximum.filter(|m| *m > limit).map(|m| (m, "maximum"))
}
