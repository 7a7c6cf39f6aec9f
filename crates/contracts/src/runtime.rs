//! The runtime: one deterministic engine, the compiled-module cache, and metered runs.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crypto::Digest;
use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi::{Engine, Linker, Module, Store, StoreLimitsBuilder, TrapCode};

use crate::abi::{self, RunState, Stop};

use crate::engine::{Limits, PAGE_BYTES, deterministic_config};
use crate::error::{DeployError, RunError, TrapKind};
use crate::host::{CallResult, Host, HostError};
use crate::validate::{EntryPoint, ValidatedModule};

/// A module compiled by a [`Runtime`]'s engine, with its code hash. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CompiledModule {
    hash: Digest,
    module: Module,
}

impl CompiledModule {
    /// Returns SM3 of the module's bytes.
    pub fn hash(&self) -> Digest {
        self.hash
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
    /// The most modules held; the least recently used one is dropped for a new one.
    pub capacity: usize,
}

/// Compiled modules keyed by the SM3 hash of their code, at most `capacity` of them, least
/// recently used dropped first. The cache changes only speed: compilation is eager and charges
/// no fuel, so a hit and a miss run identically.
#[derive(Debug)]
struct ModuleCache {
    entries: HashMap<Digest, (Module, u64)>,
    capacity: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl ModuleCache {
    fn lookup(&mut self, hash: &Digest) -> Option<Module> {
        self.clock += 1;
        match self.entries.get_mut(hash) {
            Some((module, used)) => {
                *used = self.clock;
                self.hits += 1;
                Some(module.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn insert(&mut self, hash: Digest, module: Module) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&hash) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(h, _)| *h);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(hash, (module, self.clock));
    }
}

/// The contract runtime of one node: the deterministic engine of [`Limits`], the cache of
/// compiled modules, and metered runs of entry points. It holds no chain state.
///
/// Every method takes `&self`, and the runtime is `Send + Sync`: a host's [`Host::call`] runs
/// the callee with the same runtime while the caller's run is suspended in the host function.
/// The cache is behind a mutex held only for a lookup or an insertion, never while a module
/// compiles or a contract runs.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    cache: Mutex<ModuleCache>,
}

impl Runtime {
    /// Returns a runtime with the engine configured for `limits` and a cache of at most
    /// `cache_capacity` compiled modules (0: no caching).
    pub fn new(limits: Limits, cache_capacity: usize) -> Runtime {
        Runtime {
            engine: Engine::new(&deterministic_config(&limits)),
            limits,
            cache: Mutex::new(ModuleCache {
                entries: HashMap::new(),
                capacity: cache_capacity,
                clock: 0,
                hits: 0,
                misses: 0,
            }),
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
            capacity: cache.capacity,
        }
    }

    /// Returns the compiled module with this code hash if the cache holds it (a hit), else
    /// `None` (a miss: load the code, [`crate::validate`] it and call [`Runtime::compile`]).
    pub fn cached(&self, hash: &Digest) -> Option<CompiledModule> {
        self.cache().lookup(hash).map(|module| CompiledModule {
            hash: *hash,
            module,
        })
    }

    /// Returns `module` compiled: from the cache on a hit, else compiled eagerly (every
    /// function) and cached. The cache is not locked while the module compiles (two runs that
    /// miss at once may both compile it; the second insertion replaces the first).
    pub fn compile(&self, module: &ValidatedModule) -> Result<CompiledModule, DeployError> {
        let hash = module.hash();
        if let Some(compiled) = self.cached(&hash) {
            return Ok(compiled);
        }
        let compiled =
            Module::new(&self.engine, module.code()).map_err(|e| DeployError::Compile {
                reason: e.to_string(),
            })?;
        self.cache().insert(hash, compiled.clone());
        Ok(CompiledModule {
            hash,
            module: compiled,
        })
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
        if !Engine::same(module.module.engine(), &self.engine) {
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
        let mut store = Store::new(
            &self.engine,
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
        // Fuel is set before instantiation so that anything instantiation charges counts.
        if let Err(e) = store.set_fuel(fuel_limit) {
            return fail(
                0,
                RunError::Instantiation {
                    reason: e.to_string(),
                },
            );
        }
        let used =
            |store: &Store<RunState>| fuel_limit.saturating_sub(store.get_fuel().unwrap_or(0));
        let mut linker = Linker::<RunState>::new(&self.engine);
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
