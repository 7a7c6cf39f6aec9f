//! The runtime: one deterministic engine, the compiled-module cache, and metered runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crypto::Digest;
use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi::{Engine, Linker, Module, Store, StoreLimitsBuilder, TrapCode};

use crate::abi::{self, RunState, Stop};

use crate::engine::{Limits, PAGE_BYTES, deterministic_config};
use crate::error::{DeployError, RunError, TrapKind};
use crate::host::{CallResult, Host, HostError};
use crate::validate::{EntryPoint, ValidatedModule};

/// A module compiled by a [`Runtime`]'s engine, with its code hash and the fuel a run pays to
/// instantiate it. Cheap to clone. It keeps the engine that compiled it alive, so it still
/// runs after its runtime renewed its engine.
#[derive(Clone, Debug)]
pub struct CompiledModule {
    hash: Digest,
    module: Module,
    instantiation_fuel: u64,
    runtime: u64,
}

impl CompiledModule {
    /// Returns SM3 of the module's bytes.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// Returns the fuel a run pays before instantiating the module
    /// ([`ValidatedModule::instantiation_fuel`]).
    pub fn instantiation_fuel(&self) -> u64 {
        self.instantiation_fuel
    }
}

/// The result of a run: the fuel it used (charged whether or not it succeeded), whether it
/// succeeded and its return data. A failed run's fuel is still charged; for
/// [`RunError::FuelExhausted`] it is the whole limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Fuel used, at most the run's limit.
    pub fuel_used: u64,
    /// `Ok` if the entry point returned, else why not.
    pub result: Result<(), RunError>,
    /// What the contract's last `set_return` set; empty on failure.
    pub return_data: Vec<u8>,
}

impl Outcome {
    /// Returns the outcome as a nested call's result for [`Host::call`]: a failed callee's
    /// return data is `"<code name> <message>"` in UTF-8 (`CONTRACT_TRAP the contract trapped:
    /// unreachable`). A callee that failed because the node could not read its state is not
    /// a result but [`HostError::State`]: it stops the caller's run too.
    pub fn call_result(self) -> Result<CallResult, HostError> {
        match self.result {
            Ok(()) => Ok(CallResult {
                ok: true,
                fuel_used: self.fuel_used,
                return_data: self.return_data,
            }),
            Err(RunError::HostState { message }) => Err(HostError::State(message)),
            Err(error) => Ok(CallResult {
                ok: false,
                fuel_used: self.fuel_used,
                return_data: format!("{} {error}", codes::Coded::code(&error).name).into_bytes(),
            }),
        }
    }
}

/// The cache's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups that found the module compiled.
    pub hits: u64,
    /// Lookups that did not (a compile followed, or the caller must load the code).
    pub misses: u64,
    /// Modules held now.
    pub len: usize,
    /// Bytes of code (the modules' WebAssembly) held now.
    pub bytes: usize,
    /// The most bytes of code held; the least recently used modules are dropped for a new one.
    pub capacity_bytes: usize,
    /// How many times the engine was replaced by a fresh one (each time emptying the cache)
    /// because the code it had compiled and the cache no longer held reached
    /// [`ENGINE_RENEWAL_DEAD_BYTES`] or [`ENGINE_RENEWAL_DEAD_FUNCTIONS`].
    pub engine_renewals: u64,
}

/// A cached module: compiled, its instantiation fuel, its code's length and when it was last
/// used.
#[derive(Debug)]
struct Entry {
    module: Module,
    instantiation_fuel: u64,
    code_bytes: usize,
    functions: u64,
    used: u64,
}

/// Compiled modules keyed by the SM3 hash of their code, at most `capacity_bytes` of code,
/// least recently used dropped first, and the engine that compiles them. The cache changes
/// only speed: compilation is eager and charges no fuel, and the instantiation fuel was fixed
/// at validation, so a hit and a miss run identically.
#[derive(Debug)]
struct ModuleCache {
    entries: HashMap<Digest, Entry>,
    capacity_bytes: usize,
    /// Bytes of code held by `entries`.
    held_bytes: usize,
    /// Functions held by `entries`.
    held_functions: u64,
    clock: u64,
    hits: u64,
    misses: u64,
    /// The engine new modules are compiled by.
    engine: Engine,
    /// Bytes of code and functions compiled by `engine` so far (wasmi keeps each compiled
    /// function until the engine is dropped): those the cache holds are live, the rest dead.
    compiled_bytes: u64,
    compiled_functions: u64,
    /// Engines replaced by fresh ones so far.
    renewals: u64,
    /// The compiles under way, one per module: a run that misses a module being compiled waits
    /// for it.
    compiling: HashMap<Digest, Arc<OnceLock<Result<Module, String>>>>,
}

impl ModuleCache {
    fn lookup(&mut self, hash: &Digest) -> Option<(Module, u64)> {
        self.clock += 1;
        match self.entries.get_mut(hash) {
            Some(entry) => {
                entry.used = self.clock;
                self.hits += 1;
                Some((entry.module.clone(), entry.instantiation_fuel))
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Caches `entry` unless its code alone is over the capacity, dropping the least recently
    /// used modules until it fits.
    fn insert(&mut self, hash: Digest, entry: Entry) {
        if entry.code_bytes > self.capacity_bytes || self.entries.contains_key(&hash) {
            return;
        }
        while self.held_bytes + entry.code_bytes > self.capacity_bytes {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(h, _)| *h);
            match oldest.and_then(|h| self.entries.remove(&h)) {
                Some(dropped) => {
                    self.held_bytes -= dropped.code_bytes;
                    self.held_functions -= dropped.functions;
                }
                None => break,
            }
        }
        self.held_bytes += entry.code_bytes;
        self.held_functions += entry.functions;
        self.entries.insert(hash, entry);
    }

    /// Whether the engine's dead code (compiled, no longer cached) calls for a fresh engine.
    fn needs_renewal(&self) -> bool {
        self.compiled_bytes.saturating_sub(self.held_bytes as u64) >= ENGINE_RENEWAL_DEAD_BYTES
            || self.compiled_functions.saturating_sub(self.held_functions)
                >= ENGINE_RENEWAL_DEAD_FUNCTIONS
    }
}

/// Bytes of code an engine may have compiled that its cache no longer holds before the
/// runtime replaces it with a fresh one. wasmi 2.0.0 keeps every compiled function in its
/// engine's append-only code map until the engine is dropped (about 2.2 bytes of memory per
/// byte of code); renewing bounds that memory to what the cache holds plus about this much
/// code. A module compiled by a replaced engine keeps that engine alive until the module is
/// dropped.
pub const ENGINE_RENEWAL_DEAD_BYTES: u64 = 16 * 1024 * 1024;

/// Functions an engine may have compiled that its cache no longer holds before the runtime
/// replaces it (wasmi panics past 10⁸ functions in one engine).
pub const ENGINE_RENEWAL_DEAD_FUNCTIONS: u64 = 1_000_000;

/// The source of [`Runtime`] identities (a module runs only on the runtime that compiled it).
static RUNTIMES: AtomicU64 = AtomicU64::new(0);

/// The contract runtime of one node: the deterministic engine of [`Limits`], the cache of
/// compiled modules, and metered runs of entry points. It holds no chain state.
///
/// Every method takes `&self`, and the runtime is `Send + Sync`: a host's [`Host::call`] runs
/// the callee with the same runtime while the caller's run is suspended in the host function.
/// The cache is behind a mutex held only for a lookup or an insertion, never while a module
/// compiles or a contract runs.
///
/// The runtime counts the code and functions its engine has compiled that the cache no longer
/// holds; past [`ENGINE_RENEWAL_DEAD_BYTES`] or [`ENGINE_RENEWAL_DEAD_FUNCTIONS`] it replaces the
/// engine with a fresh one of the same configuration and empties the cache. Nothing observable
/// changes (compilation charges no fuel); the memory wasmi never frees is returned.
#[derive(Debug)]
pub struct Runtime {
    id: u64,
    limits: Limits,
    cache: Mutex<ModuleCache>,
}

impl Runtime {
    /// Returns a runtime with the engine configured for `limits` and a cache of compiled
    /// modules whose code comes to at most `cache_capacity_bytes` (0: no caching).
    pub fn new(limits: Limits, cache_capacity_bytes: usize) -> Runtime {
        Runtime {
            id: RUNTIMES.fetch_add(1, Ordering::Relaxed),
            cache: Mutex::new(ModuleCache {
                entries: HashMap::new(),
                capacity_bytes: cache_capacity_bytes,
                held_bytes: 0,
                held_functions: 0,
                clock: 0,
                hits: 0,
                misses: 0,
                engine: Engine::new(&deterministic_config(&limits)),
                compiled_bytes: 0,
                compiled_functions: 0,
                renewals: 0,
                compiling: HashMap::new(),
            }),
            limits,
        }
    }

    /// Returns the cache, even if a thread panicked while holding it (the cache is only ever
    /// left consistent: each operation completes under the lock or does not start).
    fn cache(&self) -> MutexGuard<'_, ModuleCache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Returns the cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        let cache = self.cache();
        CacheStats {
            hits: cache.hits,
            misses: cache.misses,
            len: cache.entries.len(),
            bytes: cache.held_bytes,
            capacity_bytes: cache.capacity_bytes,
            engine_renewals: cache.renewals,
        }
    }

    /// Returns the compiled module with this code hash if the cache holds it (a hit), else
    /// `None` (a miss: load the code, [`crate::validate`] it and call [`Runtime::compile`]).
    pub fn cached(&self, hash: &Digest) -> Option<CompiledModule> {
        self.cache()
            .lookup(hash)
            .map(|(module, instantiation_fuel)| CompiledModule {
                hash: *hash,
                module,
                instantiation_fuel,
                runtime: self.id,
            })
    }

    /// Returns `module` compiled: from the cache on a hit, else compiled eagerly (every
    /// function) and cached. The cache is not locked while the module compiles; a run that
    /// misses a module another run is compiling waits for that compile. When the engine's dead
    /// code (compiled, no longer cached) reaches [`ENGINE_RENEWAL_DEAD_BYTES`] or
    /// [`ENGINE_RENEWAL_DEAD_FUNCTIONS`] it is replaced by a fresh one and the cache emptied; the module just compiled is then not cached (it keeps the old engine alive
    /// until it is dropped).
    pub fn compile(&self, module: &ValidatedModule) -> Result<CompiledModule, DeployError> {
        match self.cached(&module.hash()) {
            Some(compiled) => Ok(compiled),
            None => self.compile_missed(module),
        }
    }

    /// Compiles `module` and caches it, as [`Runtime::compile`] does on a miss, without looking
    /// the cache up: for a caller whose [`Runtime::cached`] just missed (a second lookup would
    /// count a second miss).
    pub fn compile_missed(&self, module: &ValidatedModule) -> Result<CompiledModule, DeployError> {
        let hash = module.hash();
        let instantiation_fuel = module.instantiation_fuel();
        let done = |module: Module| CompiledModule {
            hash,
            module,
            instantiation_fuel,
            runtime: self.id,
        };
        // One compile per module at a time: a run missing a module another run is compiling
        // waits for that compile instead of compiling a duplicate (which wasmi would keep as
        // dead code until the engine is renewed).
        let (cell, engine) = {
            let mut cache = self.cache();
            let clock = cache.clock;
            if let Some(entry) = cache.entries.get_mut(&hash) {
                // Compiled since the caller's lookup missed (the miss is counted already).
                entry.used = clock;
                return Ok(done(entry.module.clone()));
            }
            let cell = Arc::clone(cache.compiling.entry(hash).or_default());
            (cell, cache.engine.clone())
        };
        let mut compiled_here = false;
        let result = cell
            .get_or_init(|| {
                compiled_here = true;
                Module::new(&engine, module.code()).map_err(|e| e.to_string())
            })
            .clone();
        if compiled_here {
            let mut cache = self.cache();
            cache.compiling.remove(&hash);
            // Another thread may have renewed the engine meanwhile: the module still runs, but
            // it is neither counted against nor cached with the new engine.
            if let Ok(compiled) = &result
                && Engine::same(&cache.engine, &engine)
            {
                let functions = u64::from(module.functions());
                cache.compiled_bytes += module.code().len() as u64;
                cache.compiled_functions += functions;
                let used = cache.clock;
                cache.insert(
                    hash,
                    Entry {
                        module: compiled.clone(),
                        instantiation_fuel,
                        code_bytes: module.code().len(),
                        functions,
                        used,
                    },
                );
                if cache.needs_renewal() {
                    cache.engine = Engine::new(&deterministic_config(&self.limits));
                    cache.compiled_bytes = 0;
                    cache.compiled_functions = 0;
                    cache.held_bytes = 0;
                    cache.held_functions = 0;
                    cache.renewals += 1;
                    cache.entries.clear();
                }
            }
        }
        result
            .map(done)
            .map_err(|reason| DeployError::Compile { reason })
    }

    /// Runs `entry` of `module` in a fresh instance with `fuel_limit` fuel and host API v1
    /// (`docs/contracts.md` §2) served by `host`. Every failure is an [`Outcome`] with a
    /// [`RunError`]; the node's own process is never at stake. Re-entrant: `host` may run other
    /// contracts with this runtime from inside a host function.
    pub fn run(
        &self,
        module: &CompiledModule,
        entry: EntryPoint,
        fuel_limit: u64,
        host: &mut dyn Host,
    ) -> Outcome {
        let fail = |fuel_used, error| Outcome {
            fuel_used,
            result: Err(error),
            return_data: Vec::new(),
        };
        if module.runtime != self.id {
            return fail(
                0,
                RunError::Instantiation {
                    reason: "the module was compiled by another runtime".to_string(),
                },
            );
        }
        let page_bytes = u64::from(self.limits.max_memory_pages) * PAGE_BYTES;
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(page_bytes).unwrap_or(usize::MAX))
            .table_elements(self.limits.max_table_elements as usize)
            .instances(1)
            .memories(1)
            .tables(1)
            // memory.grow past the limit returns -1, as the WebAssembly spec allows; the
            // contract decides what to do (a Rust allocator aborts, which traps).
            .trap_on_grow_failure(false)
            .build();
        // The module's own engine: the runtime's current one, or the one it replaced if the
        // module was compiled before the renewal.
        let engine = module.module.engine();
        let mut store = Store::new(
            engine,
            RunState {
                limits,
                host,
                memory: None,
                fuel_limit,
                return_data: Vec::new(),
                call_return: Vec::new(),
            },
        );
        store.limiter(|state| &mut state.limits);
        let used =
            |store: &Store<RunState>| fuel_limit.saturating_sub(store.get_fuel().unwrap_or(0));
        // Instantiation (the initial memory, the data segments, the instance) is paid first, at
        // the figure fixed at validation: a run that cannot pay does nothing else. The fuel is
        // set before instantiation so that anything wasmi charges there counts too.
        if module.instantiation_fuel > fuel_limit {
            return fail(fuel_limit, RunError::FuelExhausted { limit: fuel_limit });
        }
        if let Err(e) = store.set_fuel(fuel_limit - module.instantiation_fuel) {
            return fail(
                0,
                RunError::Instantiation {
                    reason: e.to_string(),
                },
            );
        }
        let mut linker = Linker::<RunState>::new(engine);
        if let Err(e) = abi::link(&mut linker) {
            return fail(
                0,
                RunError::Instantiation {
                    reason: e.to_string(),
                },
            );
        }
        let instance = match linker.instantiate_and_start(&mut store, &module.module) {
            Ok(instance) => instance,
            Err(e) => {
                let error = match e.kind() {
                    ErrorKind::Instantiation(
                        InstantiationError::FailedToInstantiateMemory(_)
                        | InstantiationError::FailedToInstantiateTable(_),
                    ) => RunError::MemoryLimit {
                        limit: self.limits.max_memory_pages,
                    },
                    _ => {
                        self.run_error(&e, fuel_limit)
                            .unwrap_or_else(|| RunError::Instantiation {
                                reason: e.to_string(),
                            })
                    }
                };
                return fail(used(&store), error);
            }
        };
        store.data_mut().memory = instance.get_memory(&store, crate::validate::MEMORY_EXPORT);
        let Ok(func) = instance.get_typed_func::<(), ()>(&store, entry.name()) else {
            return fail(
                used(&store),
                RunError::NoEntryPoint {
                    name: entry.name().to_string(),
                },
            );
        };
        match func.call(&mut store, ()) {
            Ok(()) => Outcome {
                fuel_used: used(&store),
                result: Ok(()),
                return_data: core::mem::take(&mut store.data_mut().return_data),
            },
            Err(e) => {
                let error = match e.downcast_ref::<Stop>() {
                    Some(Stop(error)) => error.clone(),
                    None => self.run_error(&e, fuel_limit).unwrap_or(RunError::Trap {
                        kind: TrapKind::Other,
                    }),
                };
                let fuel_used = match error {
                    RunError::FuelExhausted { .. } => fuel_limit,
                    _ => used(&store),
                };
                fail(fuel_used, error)
            }
        }
    }

    /// Maps an interpreter error with a trap code to the run's failure.
    fn run_error(&self, e: &wasmi::Error, fuel_limit: u64) -> Option<RunError> {
        let trap = |kind| RunError::Trap { kind };
        Some(match e.as_trap_code()? {
            TrapCode::OutOfFuel => RunError::FuelExhausted { limit: fuel_limit },
            TrapCode::StackOverflow => RunError::StackExhausted {
                depth_limit: self.limits.max_call_depth,
            },
            TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory => {
                RunError::MemoryLimit {
                    limit: self.limits.max_memory_pages,
                }
            }
            TrapCode::UnreachableCodeReached => trap(TrapKind::Unreachable),
            TrapCode::MemoryOutOfBounds => trap(TrapKind::MemoryOutOfBounds),
            TrapCode::TableOutOfBounds => trap(TrapKind::TableOutOfBounds),
            TrapCode::IndirectCallToNull => trap(TrapKind::IndirectCallToNull),
            TrapCode::BadSignature => trap(TrapKind::IndirectCallBadSignature),
            TrapCode::IntegerDivisionByZero => trap(TrapKind::IntegerDivisionByZero),
            TrapCode::IntegerOverflow => trap(TrapKind::IntegerOverflow),
            _ => trap(TrapKind::Other),
        })
    }
}
