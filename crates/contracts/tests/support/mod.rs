//! The in-memory host of the host-API tests and the engine bench: storage per contract, events,
//! a caller, a block, and nested calls that run the callee with the same runtime (the way
//! `execution`'s host does), reverting a failed callee's writes and events.
#![allow(dead_code)] // each of the test and the bench uses part of it

use std::collections::{BTreeMap, HashMap};

use contracts::{
    CallResult, CompiledModule, EntryPoint, Host, HostError, Limits, Outcome, Runtime, validate,
};

/// Every import of host API v1 with its signature, named `$<function>`.
pub const PRELUDE: &str = r#"
    (import "gmchain" "input_len" (func $input_len (result i32)))
    (import "gmchain" "input_read" (func $input_read (param i32)))
    (import "gmchain" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
    (import "gmchain" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
    (import "gmchain" "storage_remove" (func $storage_remove (param i32 i32)))
    (import "gmchain" "caller" (func $caller (param i32 i32) (result i32)))
    (import "gmchain" "caller_contract" (func $caller_contract (param i32 i32) (result i32)))
    (import "gmchain" "block_height" (func $block_height (result i64)))
    (import "gmchain" "block_time_ms" (func $block_time_ms (result i64)))
    (import "gmchain" "tx_id" (func $tx_id (param i32)))
    (import "gmchain" "sm3" (func $sm3 (param i32 i32 i32)))
    (import "gmchain" "sm2_verify" (func $sm2_verify (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "gmchain" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
    (import "gmchain" "call" (func $call (param i32 i32 i32 i32) (result i32)))
    (import "gmchain" "return_data_len" (func $return_data_len (result i32)))
    (import "gmchain" "return_data_read" (func $return_data_read (param i32)))
    (import "gmchain" "set_return" (func $set_return (param i32 i32)))
    (import "gmchain" "abort" (func $abort (param i32 i32)))
"#;

/// A contract module: the prelude, one page of memory, `data` (segments and helper
/// functions), and the entry point `call` with `body`.
pub fn contract(data: &str, body: &str) -> String {
    format!(
        r#"(module {PRELUDE} (memory (export "memory") 1) {data} (func (export "call") {body}))"#
    )
}

/// Assembles, validates and compiles `src`.
pub fn compile(runtime: &Runtime, src: &str) -> CompiledModule {
    let code = wat::parse_str(src).unwrap_or_else(|e| panic!("does not assemble: {e}\n{src}"));
    let module = validate(&code, runtime.limits()).unwrap_or_else(|e| panic!("{e}\n{src}"));
    runtime.compile(&module).expect("compiles")
}

pub fn runtime() -> Runtime {
    Runtime::new(Limits::default(), 16 << 20)
}

/// One emitted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub contract: String,
    pub name: String,
    pub topics: Vec<Vec<u8>>,
    pub data: Vec<u8>,
}

/// The deepest nesting of contract calls (`docs/contracts.md` §2).
pub const MAX_CALL_DEPTH: u32 = 8;

/// The in-memory chain a test runs contracts on.
pub struct TestHost<'r> {
    pub runtime: &'r Runtime,
    /// Deployed contracts by name.
    pub contracts: HashMap<String, CompiledModule>,
    /// The running contract's name.
    pub contract: String,
    pub input: Vec<u8>,
    /// (contract, key) → value.
    pub storage: BTreeMap<(String, Vec<u8>), Vec<u8>>,
    pub events: Vec<Event>,
    pub caller: Vec<u8>,
    pub caller_contract: Option<String>,
    pub height: u64,
    pub time_ms: u64,
    pub tx_id: [u8; 32],
    pub read_only: bool,
    /// When set, every storage access fails as an unreadable state.
    pub state_broken: bool,
    /// 0 for the transaction's call.
    pub depth: u32,
    /// The fuel each nested call was given, in order (outermost first).
    pub fuel_given: Vec<u64>,
    /// Added to every callee's fuel used (a host that charges more than the callee ran).
    pub overcharge: u64,
}

impl<'r> TestHost<'r> {
    pub fn new(runtime: &'r Runtime) -> TestHost<'r> {
        TestHost {
            runtime,
            contracts: HashMap::new(),
            contract: "main".to_string(),
            input: Vec::new(),
            storage: BTreeMap::new(),
            events: Vec::new(),
            caller: b"signer".to_vec(),
            caller_contract: None,
            height: 7,
            time_ms: 1_700_000_000_123,
            tx_id: [0xab; 32],
            read_only: false,
            state_broken: false,
            depth: 0,
            fuel_given: Vec::new(),
            overcharge: 0,
        }
    }

    /// Deploys `src` as contract `name`.
    pub fn deploy(&mut self, name: &str, src: &str) {
        let module = compile(self.runtime, src);
        self.contracts.insert(name.to_string(), module);
    }

    /// Runs `call` of the deployed contract `self.contract`.
    pub fn run(&mut self, fuel: u64) -> Outcome {
        let module = self.contracts[&self.contract].clone();
        let runtime = self.runtime;
        runtime.run(&module, EntryPoint::Call, fuel, self)
    }

    /// Returns the value of the running contract's `key`.
    pub fn value(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.storage.get(&(self.contract.clone(), key.to_vec()))
    }

    fn check_state(&self) -> Result<(), HostError> {
        if self.state_broken {
            return Err(HostError::State("the test state is broken".to_string()));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), HostError> {
        if self.read_only {
            return Err(HostError::Failed {
                code: &codes::CONTRACT_READ_ONLY,
                message: "a read-only call cannot write".to_string(),
            });
        }
        Ok(())
    }
}

impl Host for TestHost<'_> {
    fn input(&self) -> &[u8] {
        &self.input
    }

    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        self.check_state()?;
        Ok(self.value(key).cloned())
    }

    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError> {
        self.check_state()?;
        self.check_writable()?;
        self.storage
            .insert((self.contract.clone(), key.to_vec()), value.to_vec());
        Ok(())
    }

    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError> {
        self.check_state()?;
        self.check_writable()?;
        self.storage.remove(&(self.contract.clone(), key.to_vec()));
        Ok(())
    }

    fn caller(&self) -> Vec<u8> {
        self.caller.clone()
    }

    fn caller_contract(&self) -> Option<String> {
        self.caller_contract.clone()
    }

    fn block_height(&self) -> u64 {
        self.height
    }

    fn block_time_ms(&self) -> u64 {
        self.time_ms
    }

    fn tx_id(&self) -> [u8; 32] {
        self.tx_id
    }

    fn emit(&mut self, name: &str, topics: Vec<Vec<u8>>, data: Vec<u8>) -> Result<(), HostError> {
        self.check_writable()?;
        self.events.push(Event {
            contract: self.contract.clone(),
            name: name.to_string(),
            topics,
            data,
        });
        Ok(())
    }

    fn call(&mut self, name: &str, input: &[u8], fuel: u64) -> Result<CallResult, HostError> {
        self.fuel_given.push(fuel);
        if self.depth >= MAX_CALL_DEPTH {
            return Ok(CallResult {
                ok: false,
                fuel_used: 0,
                return_data: format!(
                    "CONTRACT_CALL_DEPTH more than {MAX_CALL_DEPTH} nested contract calls"
                )
                .into_bytes(),
            });
        }
        let Some(module) = self.contracts.get(name).cloned() else {
            return Ok(CallResult {
                ok: false,
                fuel_used: 0,
                return_data: format!("NO_SUCH_CONTRACT {name}").into_bytes(),
            });
        };
        // The callee works on a copy of the state; it joins the caller's on success only.
        let mut callee = TestHost {
            runtime: self.runtime,
            contracts: self.contracts.clone(),
            contract: name.to_string(),
            input: input.to_vec(),
            storage: self.storage.clone(),
            events: self.events.clone(),
            caller: self.caller.clone(),
            caller_contract: Some(self.contract.clone()),
            height: self.height,
            time_ms: self.time_ms,
            tx_id: self.tx_id,
            read_only: self.read_only,
            state_broken: self.state_broken,
            depth: self.depth + 1,
            fuel_given: Vec::new(),
            overcharge: self.overcharge,
        };
        let outcome = self
            .runtime
            .run(&module, EntryPoint::Call, fuel, &mut callee);
        self.fuel_given.append(&mut callee.fuel_given);
        let mut result = outcome.call_result()?;
        result.fuel_used += self.overcharge;
        if result.ok {
            self.storage = callee.storage;
            self.events = callee.events;
        }
        Ok(result)
    }
}
