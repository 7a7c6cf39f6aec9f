//! The contracts crate against hand-written modules (WAT): every deployment refusal with its
//! code, hostile runs, and determinism of fuel between fresh, cached, cold and warm engines.

use codes::Coded;
use contracts::{
    CallResult, DeployError, EntryPoint, Host, HostError, Limits, Outcome, RunError, Runtime,
    TrapKind, ValidatedModule, validate,
};

fn wasm(src: &str) -> Vec<u8> {
    wat::parse_str(src).unwrap_or_else(|e| panic!("test module does not assemble: {e}\n{src}"))
}

fn refused(src: &str) -> DeployError {
    refused_under(src, &Limits::default())
}

fn refused_under(src: &str, limits: &Limits) -> DeployError {
    match validate(&wasm(src), limits) {
        Ok(_) => panic!("accepted a module that must be refused:\n{src}"),
        Err(e) => e,
    }
}

/// Asserts the refusal's code is `name`, registered in the codes table.
fn assert_code(e: &impl Coded, name: &str) {
    assert_eq!(e.code().name, name);
    assert!(
        codes::by_name(name).is_some(),
        "{name} is not in crates/codes"
    );
}

/// The smallest module the ABI accepts.
const MINIMAL: &str = r#"(module (memory (export "memory") 1) (func (export "call")))"#;

/// Validates, compiles and runs `call` of `src` with `fuel`.
fn run(runtime: &Runtime, src: &str, fuel: u64) -> Outcome {
    let module = validate(&wasm(src), runtime.limits()).expect("module validates");
    let compiled = runtime.compile(&module).expect("module compiles");
    runtime.run(&compiled, EntryPoint::Call, fuel, &mut NoHost)
}

/// A host for modules that import nothing: no input, no state, no caller (the host API's own
/// tests are `tests/host.rs`).
struct NoHost;

impl Host for NoHost {
    fn input(&self) -> &[u8] {
        &[]
    }
    fn storage_read(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
    fn storage_write(&mut self, _: &[u8], _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn storage_remove(&mut self, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn caller(&self) -> Vec<u8> {
        Vec::new()
    }
    fn caller_contract(&self) -> Option<String> {
        None
    }
    fn block_height(&self) -> u64 {
        0
    }
    fn block_time_ms(&self) -> u64 {
        0
    }
    fn tx_id(&self) -> [u8; 32] {
        [0; 32]
    }
    fn emit(&mut self, _: &str, _: Vec<Vec<u8>>, _: Vec<u8>) -> Result<(), HostError> {
        Ok(())
    }
    fn call(&mut self, _: &str, _: &[u8], _: u64) -> Result<CallResult, HostError> {
        Err(HostError::State("no contracts".to_string()))
    }
}

fn fresh() -> Runtime {
    Runtime::new(Limits::default(), 8 << 20)
}

// ---------------------------------------------------------------- deployment

#[test]
fn the_minimal_module_and_the_allowed_proposals_are_accepted() {
    let m = validate(&wasm(MINIMAL), &Limits::default()).expect("minimal module");
    assert!(m.exports(EntryPoint::Call));
    assert!(!m.exports(EntryPoint::Init));
    assert_eq!(m.hash(), crypto_sm::sm3::sm3(&wasm(MINIMAL)));
    // sign-ext, bulk-memory, multi-value, mutable-global, gmchain function imports, optional
    // entry points, other exports, a table within the limit, a memory at the page limit.
    let src = r#"(module
        (import "gmchain" "abort" (func (param i32 i32)))
        (memory (export "memory") 64 64)
        (table 4 funcref)
        (global $g (export "__heap_base") (mut i32) (i32.const 0))
        (func $pair (result i32 i64) (i32.const 1) (i64.const 2))
        (func (export "call")
            (drop (i32.extend8_s (i32.const 255)))
            (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
            (call $pair) (drop) (drop)
            (global.set $g (i32.const 1)))
        (func (export "init"))
        (func (export "migrate")))"#;
    let m = validate(&wasm(src), &Limits::default()).expect("allowed proposals");
    assert!(m.exports(EntryPoint::Init) && m.exports(EntryPoint::Migrate));
}

#[test]
fn invalid_bytes_are_refused() {
    for bytes in [&b"hello"[..], b"", b"\0asm\x01\0\0\0\x01\xff"] {
        let e = validate(bytes, &Limits::default()).expect_err("not wasm");
        assert!(matches!(e, DeployError::InvalidWasm { .. }), "{e:?}");
        assert_code(&e, "CONTRACT_INVALID_WASM");
    }
    // A valid header with an ill-typed body.
    let e = refused(
        r#"(module (memory (export "memory") 1) (func (export "call") (result i32) (i64.const 1)))"#,
    );
    assert!(matches!(e, DeployError::InvalidWasm { .. }), "{e:?}");
}

#[test]
fn a_float_instruction_is_refused_naming_the_function_and_operator() {
    let e = refused(
        r#"(module (memory (export "memory") 1)
            (func (export "call"))
            (func (result i32) (i32.trunc_f64_s (f64.sqrt (f64.const 2)))))"#,
    );
    match &e {
        DeployError::FloatInstruction { function, operator } => {
            assert_eq!(*function, 1);
            assert!(operator.starts_with("F64Const"), "{operator}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("function 1"), "{e}");
    assert_code(&e, "CONTRACT_FLOAT");
    // With an import first, the index counts it; a conversion alone is found too.
    let e = refused(
        r#"(module (import "gmchain" "f" (func)) (memory (export "memory") 1)
            (func (export "call"))
            (func (param i64) (result i32) (i32.reinterpret_f32 (f32.convert_i64_u (local.get 0)))))"#,
    );
    assert!(
        matches!(&e, DeployError::FloatInstruction { function: 2, operator } if operator.starts_with("F32ConvertI64U")),
        "{e:?}"
    );
}

#[test]
fn float_types_are_refused_in_signatures_locals_and_globals() {
    let e = refused(
        r#"(module (memory (export "memory") 1) (func (export "call")) (func (param f32)))"#,
    );
    assert!(
        matches!(&e, DeployError::FloatType { place } if place.contains("type")),
        "{e:?}"
    );
    assert_code(&e, "CONTRACT_FLOAT");
    let e = refused(r#"(module (memory (export "memory") 1) (func (export "call") (local f64)))"#);
    assert!(
        matches!(&e, DeployError::FloatType { place } if place == "function 0 (a local)"),
        "{e:?}"
    );
    let e = refused(
        r#"(module (memory (export "memory") 1) (global f64 (f64.const 0)) (func (export "call")))"#,
    );
    assert!(
        matches!(&e, DeployError::FloatType { place } if place == "global 0"),
        "{e:?}"
    );
}

#[test]
fn imports_outside_the_gmchain_namespace_or_not_functions_are_refused() {
    for (import, module, name) in [
        (r#"(import "env" "abort" (func))"#, "env", "abort"),
        (
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1",
            "fd_write",
        ),
    ] {
        let e = refused(&format!(
            r#"(module {import} (memory (export "memory") 1) (func (export "call")))"#
        ));
        match &e {
            DeployError::ImportNotAllowed {
                module: m, name: n, ..
            } => {
                assert_eq!((m.as_str(), n.as_str()), (module, name));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains(&format!("{module}.{name}")), "{e}");
        assert_code(&e, "CONTRACT_IMPORT_NOT_ALLOWED");
    }
    let e = refused(
        r#"(module (import "gmchain" "memory" (memory 1)) (export "memory" (memory 0)) (func (export "call")))"#,
    );
    assert!(
        matches!(&e, DeployError::ImportNotAllowed { why, .. } if why.contains("only functions")),
        "{e:?}"
    );
}

#[test]
fn missing_or_mistyped_exports_are_refused() {
    let e = refused(r#"(module (memory (export "memory") 1) (func (export "run")))"#);
    assert_eq!(e, DeployError::MissingExport { name: "call" });
    assert_code(&e, "CONTRACT_MISSING_EXPORT");
    let e = refused(r#"(module (memory 1) (func (export "call")))"#);
    assert_eq!(e, DeployError::MissingExport { name: "memory" });
    let e = refused(r#"(module (memory (export "memory") 1) (func (export "call") (param i32)))"#);
    assert!(
        matches!(&e, DeployError::ExportWrongType { name, .. } if name == "call"),
        "{e:?}"
    );
    assert_code(&e, "CONTRACT_EXPORT_WRONG_TYPE");
    let e = refused(
        r#"(module (memory (export "memory") 1) (func (export "call")) (func (export "init") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(&e, DeployError::ExportWrongType { name, .. } if name == "init"),
        "{e:?}"
    );
    let e = refused(
        r#"(module (memory 1) (global (export "memory") i32 (i32.const 0)) (func (export "call")))"#,
    );
    assert!(
        matches!(&e, DeployError::ExportWrongType { name, .. } if name == "memory"),
        "{e:?}"
    );
}

#[test]
fn a_start_function_is_refused() {
    let e = refused(
        r#"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "call")))"#,
    );
    assert_eq!(e, DeployError::StartFunction { function: 0 });
    assert_code(&e, "CONTRACT_START_FUNCTION");
}

#[test]
fn a_module_over_the_size_cap_is_refused_and_one_at_the_cap_accepted() {
    let code = wasm(MINIMAL);
    let at_cap = Limits {
        max_code_size: code.len(),
        ..Limits::default()
    };
    validate(&code, &at_cap).expect("a module exactly at the cap");
    let below = Limits {
        max_code_size: code.len() - 1,
        ..Limits::default()
    };
    let e = validate(&code, &below).expect_err("over the cap");
    assert_eq!(
        e,
        DeployError::TooLarge {
            size: code.len(),
            limit: code.len() - 1
        }
    );
    assert_code(&e, "CONTRACT_TOO_LARGE");
}

#[test]
fn memory_or_tables_over_the_limits_are_refused() {
    let e = refused(r#"(module (memory (export "memory") 65) (func (export "call")))"#);
    assert_eq!(
        e,
        DeployError::TooManyPages {
            declared: 65,
            which: "minimum",
            limit: 64
        }
    );
    assert_code(&e, "CONTRACT_TOO_MANY_PAGES");
    let e = refused(r#"(module (memory (export "memory") 1 100) (func (export "call")))"#);
    assert!(
        matches!(
            e,
            DeployError::TooManyPages {
                declared: 100,
                which: "maximum",
                ..
            }
        ),
        "{e:?}"
    );
    // The limit is configurable.
    let small = Limits {
        max_memory_pages: 2,
        ..Limits::default()
    };
    let e = refused_under(
        r#"(module (memory (export "memory") 3) (func (export "call")))"#,
        &small,
    );
    assert!(
        matches!(e, DeployError::TooManyPages { limit: 2, .. }),
        "{e:?}"
    );
    let e = refused(
        r#"(module (memory (export "memory") 1) (table 2000 funcref) (func (export "call")))"#,
    );
    assert!(
        matches!(e, DeployError::TableTooLarge { declared: 2000, .. }),
        "{e:?}"
    );
    assert_code(&e, "CONTRACT_TABLE_TOO_LARGE");
}

#[test]
fn disabled_proposals_are_refused() {
    let cases = [
        (
            "reference-types",
            r#"(module (memory (export "memory") 1) (func (export "call") (drop (ref.null extern))))"#,
        ),
        (
            "simd",
            r#"(module (memory (export "memory") 1) (func (export "call") (drop (i32x4.add (v128.const i64x2 1 2) (v128.const i64x2 3 4)))))"#,
        ),
        (
            "tail-call",
            r#"(module (memory (export "memory") 1) (func $f) (func (export "call") (return_call $f)))"#,
        ),
        (
            "threads",
            r#"(module (memory (export "memory") 1 1 shared) (func (export "call")))"#,
        ),
        (
            "multi-memory",
            r#"(module (memory (export "memory") 1) (memory 1) (func (export "call")))"#,
        ),
        (
            "memory64",
            r#"(module (memory (export "memory") i64 1) (func (export "call")))"#,
        ),
        (
            "extended-const",
            r#"(module (memory (export "memory") 1) (global i32 (i32.add (i32.const 1) (i32.const 2))) (func (export "call")))"#,
        ),
    ];
    for (proposal, src) in cases {
        let e = refused(src);
        assert!(
            matches!(e, DeployError::FeatureNotAllowed { .. }),
            "{proposal}: {e:?}"
        );
        assert_code(&e, "CONTRACT_FEATURE_NOT_ALLOWED");
    }
}

// ---------------------------------------------------------------- hostile runs

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let rt = fresh();
    let out = run(
        &rt,
        r#"(module (memory (export "memory") 1) (func (export "call") (loop (br 0))))"#,
        100_000,
    );
    assert_eq!(
        out,
        Outcome {
            fuel_used: 100_000,
            result: Err(RunError::FuelExhausted { limit: 100_000 }),
            return_data: Vec::new(),
        }
    );
    assert_code(out.result.as_ref().unwrap_err(), "CONTRACT_FUEL_EXHAUSTED");
}

/// Grows memory by `delta` pages and traps (unreachable) if `memory.grow` returned -1.
fn grow_module(initial: u32, delta: u32) -> String {
    format!(
        r#"(module (memory (export "memory") {initial})
            (func (export "call")
                (if (i32.eq (memory.grow (i32.const {delta})) (i32.const -1))
                    (then unreachable))))"#
    )
}

#[test]
fn memory_grow_past_the_limit_returns_minus_one() {
    // 1 + 63 = 64 pages: within the limit, the grow succeeds (and costs 1024 fuel a page).
    let rt = fresh();
    let within = run(&rt, &grow_module(1, 63), 1_000_000);
    assert_eq!(within.result, Ok(()));
    let none = run(&rt, &grow_module(1, 0), 1_000_000);
    assert_eq!(within.fuel_used - none.fuel_used, 63 * 1024);
    // 1 + 64 = 65 pages: memory.grow returns -1 (no trap of its own); the module's check traps.
    let past = run(&rt, &grow_module(1, 64), 1_000_000);
    assert_eq!(
        past.result,
        Err(RunError::Trap {
            kind: TrapKind::Unreachable
        })
    );
    assert_code(past.result.as_ref().unwrap_err(), "CONTRACT_TRAP");
    // After the failed grow the memory is unchanged and the run continues normally.
    let rt = fresh();
    let out = run(
        &rt,
        r#"(module (memory (export "memory") 1)
            (func (export "call")
                (drop (memory.grow (i32.const 1000)))
                (if (i32.ne (memory.size) (i32.const 1)) (then unreachable))))"#,
        1_000_000,
    );
    assert_eq!(out.result, Ok(()));
    // A smaller configured limit moves the boundary.
    let small = Runtime::new(
        Limits {
            max_memory_pages: 2,
            ..Limits::default()
        },
        4 << 20,
    );
    assert_eq!(run(&small, &grow_module(1, 1), 1_000_000).result, Ok(()));
    assert!(run(&small, &grow_module(1, 2), 1_000_000).result.is_err());
}

#[test]
fn a_module_declaring_more_memory_than_the_engine_allows_fails_with_memory_limit() {
    // Deployed under the default limit, later run on an engine whose limit was lowered.
    let code = wasm(r#"(module (memory (export "memory") 4) (func (export "call")))"#);
    let module = validate(&code, &Limits::default()).expect("4 pages are within 64");
    let rt = Runtime::new(
        Limits {
            max_memory_pages: 2,
            ..Limits::default()
        },
        4 << 20,
    );
    let compiled = rt.compile(&module).expect("compiles");
    let out = rt.run(&compiled, EntryPoint::Call, 100_000, &mut NoHost);
    assert_eq!(out.result, Err(RunError::MemoryLimit { limit: 2 }));
    assert_code(out.result.as_ref().unwrap_err(), "CONTRACT_MEMORY_LIMIT");
}

/// A module whose `call` recurses `depth` calls deep through `$rec`.
fn recursion_module(depth: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
            (func $rec (param i32)
                (if (i32.gt_u (local.get 0) (i32.const 1))
                    (then (call $rec (i32.sub (local.get 0) (i32.const 1))))))
            (func (export "call") (call $rec (i32.const {depth}))))"#
    )
}

#[test]
fn deep_recursion_exhausts_the_stack_at_the_configured_depth() {
    let rt = fresh();
    let endless = run(
        &rt,
        r#"(module (memory (export "memory") 1) (func $f (export "call") (call $f)))"#,
        10_000_000,
    );
    assert_eq!(
        endless.result,
        Err(RunError::StackExhausted { depth_limit: 256 })
    );
    assert_code(
        endless.result.as_ref().unwrap_err(),
        "CONTRACT_STACK_EXHAUSTED",
    );
    // `call` is one frame: 255 more fit under the limit of 256, 256 more do not.
    assert_eq!(run(&rt, &recursion_module(255), 10_000_000).result, Ok(()));
    assert_eq!(
        run(&rt, &recursion_module(256), 10_000_000).result,
        Err(RunError::StackExhausted { depth_limit: 256 })
    );
}

#[test]
fn traps_name_their_kind() {
    let rt = fresh();
    for (body, kind) in [
        (
            "(drop (i32.div_u (i32.const 1) (i32.const 0)))",
            TrapKind::IntegerDivisionByZero,
        ),
        (
            "(drop (i32.div_s (i32.const -2147483648) (i32.const -1)))",
            TrapKind::IntegerOverflow,
        ),
        (
            "(drop (i32.load (i32.const 65535)))",
            TrapKind::MemoryOutOfBounds,
        ),
        ("unreachable", TrapKind::Unreachable),
    ] {
        let src = format!(r#"(module (memory (export "memory") 1) (func (export "call") {body}))"#);
        assert_eq!(
            run(&rt, &src, 100_000).result,
            Err(RunError::Trap { kind }),
            "{body}"
        );
    }
}

#[test]
fn an_unprovided_host_import_or_entry_point_fails_without_panic() {
    let rt = fresh();
    let out = run(
        &rt,
        r#"(module (import "gmchain" "storage_get" (func)) (memory (export "memory") 1) (func (export "call")))"#,
        100_000,
    );
    assert!(
        matches!(&out.result, Err(RunError::Instantiation { reason }) if reason.contains("storage_get")),
        "{out:?}"
    );
    assert_code(
        out.result.as_ref().unwrap_err(),
        "CONTRACT_INSTANTIATION_FAILED",
    );
    let module = validate(&wasm(MINIMAL), rt.limits()).expect("minimal");
    let compiled = rt.compile(&module).expect("compiles");
    let out = rt.run(&compiled, EntryPoint::Init, 100_000, &mut NoHost);
    assert_eq!(
        out.result,
        Err(RunError::NoEntryPoint {
            name: "init".to_string()
        })
    );
    assert_code(out.result.as_ref().unwrap_err(), "CONTRACT_NO_ENTRY_POINT");
    // A module compiled by another runtime is refused, not a panic of wasmi's engine check.
    let other = fresh().compile(&module).expect("compiles");
    assert!(matches!(
        rt.run(&other, EntryPoint::Call, 100_000, &mut NoHost)
            .result,
        Err(RunError::Instantiation { .. })
    ));
}

#[test]
fn no_single_bit_flip_of_a_module_panics_validation_or_a_run() {
    let src = r#"(module (memory (export "memory") 1)
        (func $rec (param i32) (result i32)
            (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
                (else (i32.add (i32.load8_u (local.get 0)) (call $rec (i32.sub (local.get 0) (i32.const 1)))))))
        (func (export "call") (drop (call $rec (i32.const 100))) (drop (memory.grow (i32.const 2)))))"#;
    let code = wasm(src);
    let rt = fresh();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..code.len() * 8 {
        let mut m = code.clone();
        m[i / 8] ^= 1 << (i % 8);
        match validate(&m, rt.limits()) {
            Ok(v) => {
                accepted += 1;
                if let Ok(c) = rt.compile(&v) {
                    let _ = rt.run(&c, EntryPoint::Call, 10_000, &mut NoHost);
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

// ---------------------------------------------------------------- fuel and determinism

/// A loop of `n` iterations.
fn counting_loop(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
            (func (export "call") (local i32)
                (local.set 0 (i32.const {n}))
                (loop
                    (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))"#
    )
}

/// The fuel every run of a module with one page of memory and no data pays before it is
/// instantiated: 5 000 for the instance, 1 024 for the page (docs/contracts.md §3).
const INSTANTIATE_ONE_PAGE: u64 = 5_000 + 1_024;

/// Fuel of `call` with `body`, on a module with one i32 local and one page of memory, less
/// the instantiation's [`INSTANTIATE_ONE_PAGE`].
fn body_fuel(rt: &Runtime, body: &str) -> u64 {
    let src = format!(
        r#"(module (memory (export "memory") 1) (func $empty) (func (export "call") (local i32) {body}))"#
    );
    let out = run(rt, &src, 100_000);
    assert_eq!(out.result, Ok(()), "{body}");
    out.fuel_used - INSTANTIATE_ONE_PAGE
}

#[test]
fn fuel_known_answers_follow_the_published_table() {
    let rt = fresh();
    // Entering the function body: 1. nop, drop, block and end: 0. A constant, a local.set: 1.
    assert_eq!(body_fuel(&rt, ""), 1);
    assert_eq!(body_fuel(&rt, "(nop) (block (drop (i32.const 7)))"), 2);
    assert_eq!(body_fuel(&rt, "(local.set 0 (i32.const 5))"), 3);
    // call: 10 (the frame and the zeroing of the callee's locals), plus 1 for entering the
    // callee's body.
    assert_eq!(contracts::CALL_FUEL, 10);
    assert_eq!(body_fuel(&rt, "(call $empty)"), 12);
    // if: local.get 1 + if 1; entering the arm taken: 1 more.
    assert_eq!(body_fuel(&rt, "(if (local.get 0) (then (nop)))"), 3);
    assert_eq!(
        body_fuel(
            &rt,
            "(local.set 0 (i32.const 1)) (if (local.get 0) (then (nop)))"
        ),
        6
    );
    assert_eq!(
        body_fuel(&rt, "(if (local.get 0) (then (nop)) (else (nop)))"),
        4
    );
    // memory.fill of 640 bytes: 3 constants + the fill (1) + 640/64.
    assert_eq!(
        body_fuel(
            &rt,
            "(memory.fill (i32.const 0) (i32.const 1) (i32.const 640))"
        ),
        1 + 3 + 1 + 10
    );
    // A loop: 1 for the body, 2 for the prologue, and per iteration 1 for entering the loop
    // plus local.get, i32.const, i32.sub, local.tee, br_if.
    for n in [1u32, 2, 10, 1000] {
        let out = run(&rt, &counting_loop(n), 1_000_000);
        assert_eq!(out.result, Ok(()));
        assert_eq!(
            out.fuel_used,
            INSTANTIATE_ONE_PAGE + 3 + 6 * u64::from(n),
            "n = {n}"
        );
    }
    // The exact limit suffices; one less runs out.
    let need = INSTANTIATE_ONE_PAGE + 3 + 6 * 10;
    assert_eq!(run(&rt, &counting_loop(10), need).result, Ok(()));
    assert_eq!(
        run(&rt, &counting_loop(10), need - 1).result,
        Err(RunError::FuelExhausted { limit: need - 1 })
    );
}

#[test]
fn a_fresh_engine_and_a_cached_module_use_the_same_fuel() {
    let src = recursion_module(200);
    let code = wasm(&src);
    let a = fresh();
    let module = validate(&code, a.limits()).expect("validates");
    let first = a.compile(&module).expect("compiles");
    assert_eq!(a.cache_stats().misses, 1);
    assert_eq!(a.cache_stats().hits, 0);
    let cold = a.run(&first, EntryPoint::Call, 1_000_000, &mut NoHost);
    let cached = a.compile(&module).expect("from the cache");
    assert_eq!(a.cache_stats().hits, 1);
    assert_eq!(cached.hash(), module.hash());
    let warm = a.run(&cached, EntryPoint::Call, 1_000_000, &mut NoHost);
    let by_hash = a.cached(&module.hash()).expect("cached by hash");
    let again = a.run(&by_hash, EntryPoint::Call, 1_000_000, &mut NoHost);
    let b = fresh();
    let other = b.compile(&module).expect("compiles");
    let fresh_run = b.run(&other, EntryPoint::Call, 1_000_000, &mut NoHost);
    assert_eq!(cold.result, Ok(()));
    assert!(cold.fuel_used > 200);
    assert_eq!(cold, warm);
    assert_eq!(cold, again);
    assert_eq!(cold, fresh_run);
}

#[test]
fn a_cold_and_a_warm_cache_give_identical_outcomes() {
    let modules = [
        counting_loop(300),
        recursion_module(100),
        recursion_module(300),
        grow_module(1, 10),
        grow_module(1, 64),
        r#"(module (memory (export "memory") 1) (func (export "call") (loop (br 0))))"#.to_string(),
    ];
    let cold = Runtime::new(Limits::default(), 0);
    let warm = Runtime::new(Limits::default(), 16 << 20);
    for src in &modules {
        run(&warm, src, 50_000); // fill the cache
    }
    let hits_before = warm.cache_stats().hits;
    for src in &modules {
        assert_eq!(run(&cold, src, 50_000), run(&warm, src, 50_000), "{src}");
    }
    assert_eq!(warm.cache_stats().hits, hits_before + modules.len() as u64);
    assert_eq!(cold.cache_stats().hits, 0);
    assert_eq!(cold.cache_stats().len, 0);
}

#[test]
fn the_cache_is_bounded_and_drops_the_least_recently_used() {
    let [a, b, c] =
        [1u32, 2, 3].map(|n| validate(&wasm(&counting_loop(n)), &Limits::default()).expect("v"));
    // Room for the code of two of the three modules (of one length).
    assert!(a.code().len() == b.code().len() && b.code().len() == c.code().len());
    let rt = Runtime::new(Limits::default(), 2 * a.code().len());
    rt.compile(&a).expect("a");
    rt.compile(&b).expect("b");
    rt.compile(&a)
        .expect("a again: a hit, a is now the most recent");
    rt.compile(&c).expect("c evicts b");
    let s = rt.cache_stats();
    assert_eq!(
        (s.hits, s.misses, s.len, s.bytes, s.capacity_bytes),
        (1, 3, 2, 2 * a.code().len(), 2 * a.code().len())
    );
    assert!(rt.cached(&a.hash()).is_some());
    assert!(rt.cached(&c.hash()).is_some());
    assert!(rt.cached(&b.hash()).is_none());
}

/// A module of `n` empty functions besides `call`: about 4 bytes each.
fn many_functions(n: usize) -> Vec<u8> {
    let mut src = String::from(r#"(module (memory (export "memory") 1) (func (export "call"))"#);
    for _ in 0..n {
        src.push_str("(func)");
    }
    src.push(')');
    wasm(&src)
}

/// The process's resident memory in KiB, where Linux's /proc tells it.
fn resident_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[test]
fn review_recompiling_on_cache_misses_neither_leaks_nor_panics() {
    // Review finding 5. The reviewer's module, 64 001 functions in 256 KiB, is now refused at
    // deployment: a module defines at most `max_functions` (10 000).
    let limits = Limits::default();
    let refused = validate(&many_functions(64_000), &limits).expect_err("64 001 functions");
    assert_eq!(
        refused,
        DeployError::TooManyFunctions {
            count: 64_001,
            limit: 10_000
        }
    );
    assert_code(&refused, "CONTRACT_TOO_MANY_FUNCTIONS");
    // The largest module of functions still accepted, compiled on every run as by a runtime
    // whose cache never holds it, until its engine has compiled past wasmi's 10^8 functions.
    const FUNCTIONS: usize = 10_000;
    let code = many_functions(FUNCTIONS - 1);
    let module = validate(&code, &limits).expect("10 000 functions validate");
    assert_eq!(module.functions(), 10_000);
    let runtime = Runtime::new(limits, 0);
    // A module compiled before the engine is renewed still runs afterwards (on its engine).
    let early = runtime.compile(&module).expect("compiles");
    let compiles = 100_000_000 / FUNCTIONS + 1;
    // In a debug build a hundredth of the loop (a renewal after 100 compiles) shows the same.
    let compiles = if cfg!(debug_assertions) {
        201
    } else {
        compiles
    };
    let started = std::time::Instant::now();
    let before = resident_kib();
    let mut after_first_renewal = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for i in 1..compiles {
            drop(runtime.compile(&module).expect("compiles"));
            if i == 200 {
                after_first_renewal = resident_kib();
            }
        }
    }));
    let after = resident_kib();
    eprintln!(
        "{compiles} compiles of {} bytes ({FUNCTIONS} functions): {:?}, {} engine renewals, \
         resident memory {before:?} KiB before, {after_first_renewal:?} after 200 compiles, \
         {after:?} after",
        code.len(),
        started.elapsed(),
        runtime.cache_stats().engine_renewals,
    );
    assert!(result.is_ok(), "compiling {compiles} times panicked");
    assert_eq!(
        runtime.cache_stats().engine_renewals,
        (compiles as u64 * FUNCTIONS as u64) / 1_000_000
    );
    assert_eq!(
        runtime
            .run(&early, EntryPoint::Call, 100_000, &mut NoHost)
            .result,
        Ok(())
    );
    // Bounded memory: after the first renewals the resident memory no longer grows with the
    // number of compiles (wasmi's code map of 10^8 functions would hold gigabytes).
    if let (Some(first), Some(last)) = (after_first_renewal, after) {
        assert!(
            last <= first + 256 * 1024,
            "resident memory grew from {first} KiB to {last} KiB"
        );
    }
}

#[test]
fn review_a_run_pays_for_its_initial_memory_and_data_at_the_published_rates() {
    // 64 pages of initial memory and 192 KiB of active data: what `memory.grow` and
    // `memory.init` would charge 64 * 1 024 + 3 072 fuel for, instantiation gives for free.
    let data = "\\01".repeat(192 * 1024);
    let src = format!(
        r#"(module (memory (export "memory") 64 64) (data (i32.const 0) "{data}")
            (func (export "call")))"#
    );
    let code = wasm(&src);
    let runtime = Runtime::new(Limits::default(), 4 << 20);
    let module = validate(&code, runtime.limits()).expect("validates");
    let compiled = runtime.compile(&module).expect("compiles");
    let runs = 2_000u32;
    let started = std::time::Instant::now();
    let mut fuel = 0;
    for _ in 0..runs {
        let out = runtime.run(&compiled, EntryPoint::Call, 1_000_000, &mut NoHost);
        assert_eq!(out.result, Ok(()));
        fuel = out.fuel_used;
    }
    let per_run = started.elapsed() / runs;
    let published = 64 * 1_024 + (192 * 1_024) / 64;
    assert!(
        fuel >= published,
        "a run that allocated 4 MiB and copied 192 KiB was charged {fuel} fuel ({per_run:?} \
         per run; at the calibrated 1.4 ns per fuel that is {} fuel)",
        per_run.as_nanos() * 10 / 14
    );
    // The figure fixed at validation: the instance, 64 pages, one segment of 192 KiB.
    assert_eq!(module.instantiation_fuel(), 5_000 + 64 * 1_024 + 1 + 3_072);
    assert_eq!(compiled.instantiation_fuel(), module.instantiation_fuel());
    eprintln!("instantiating 64 pages and 192 KiB: {per_run:?} per run, {fuel} fuel");
    // A run that cannot pay for the instantiation fails out of fuel having done nothing.
    let limit = module.instantiation_fuel() - 1;
    let short = runtime.run(&compiled, EntryPoint::Call, limit, &mut NoHost);
    assert_eq!(short.result, Err(RunError::FuelExhausted { limit }));
    assert_eq!(short.fuel_used, limit);
    // A cache hit charges what the miss charged.
    let hit = runtime.cached(&module.hash()).expect("cached");
    assert_eq!(
        runtime.run(&hit, EntryPoint::Call, 1_000_000, &mut NoHost),
        runtime.run(&compiled, EntryPoint::Call, 1_000_000, &mut NoHost)
    );
}

/// A module whose `call` calls `$big`, a function of `locals` i64 locals, `calls` times.
fn calls_with_locals(locals: u32, calls: u32) -> String {
    let locals = " i64".repeat(locals as usize);
    format!(
        r#"(module (memory (export "memory") 1)
            (func $big (local{locals}))
            (func (export "call") (local $i i32)
              (local.set $i (i32.const {calls}))
              (loop $l
                (call $big)
                (local.set $i (i32.sub (local.get $i) (i32.const 1)))
                (br_if $l (local.get $i)))))"#
    )
}

#[test]
fn review_calling_a_function_with_many_locals_pays_for_them() {
    // Review finding 7. The reviewer's $big of 29 000 locals (232 000 bytes zeroed on every
    // call) is now refused at deployment: a function has at most `max_locals` (256) locals.
    let runtime = Runtime::new(Limits::default(), 4 << 20);
    let big = validate(&wasm(&calls_with_locals(29_000, 2_000)), runtime.limits())
        .expect_err("29 000 locals");
    assert_eq!(
        big,
        DeployError::TooManyLocals {
            function: 0,
            count: 29_000,
            limit: 256
        }
    );
    assert_code(&big, "CONTRACT_TOO_MANY_LOCALS");
    // Parameters count: 200 parameters and 57 locals are 257.
    let params = " i32".repeat(200);
    let with_params = refused(&format!(
        r#"(module (memory (export "memory") 1) (func (param{params}) (local{})) (func (export "call")))"#,
        " i32".repeat(57)
    ));
    assert!(matches!(
        with_params,
        DeployError::TooManyLocals { count: 257, .. }
    ));
    // The worst case allowed: a loop calling a function of 256 locals. Each iteration is
    // charged 18 (loop 1, call 10, the callee's body 1, six operators 1 each); its time must be
    // within twice its fuel's time, at the machine's fuel rate measured alongside on the
    // compute loop of the calibration (1.4 ns per fuel on an idle machine; a loaded one is
    // slower at both, so the two are timed in turn).
    let calls = 200_000;
    let module = validate(&wasm(&calls_with_locals(256, calls)), runtime.limits())
        .expect("256 locals are allowed");
    let compiled = runtime.compile(&module).expect("compiles");
    let reference = validate(&wasm(&mix_loop(100_000)), runtime.limits()).expect("validates");
    let reference = runtime.compile(&reference).expect("compiles");
    let time = |compiled: &contracts::CompiledModule| {
        let started = std::time::Instant::now();
        let out = runtime.run(compiled, EntryPoint::Call, 100_000_000, &mut NoHost);
        assert_eq!(out.result, Ok(()));
        (started.elapsed(), out.fuel_used)
    };
    let (mut best, mut best_reference) = (std::time::Duration::MAX, std::time::Duration::MAX);
    let (mut fuel, mut reference_fuel) = (0, 0);
    for _ in 0..7 {
        let (took, used) = time(&compiled);
        (best, fuel) = (best.min(took), used);
        let (took, used) = time(&reference);
        (best_reference, reference_fuel) = (best_reference.min(took), used);
    }
    assert_eq!(fuel, INSTANTIATE_ONE_PAGE + 3 + 18 * u64::from(calls));
    let ns_per_call = best.as_nanos() as f64 / f64::from(calls);
    let ns_per_fuel = best_reference.as_nanos() as f64 / reference_fuel as f64;
    eprintln!(
        "a call of a function of 256 locals: {ns_per_call:.1} ns, charged 18 fuel ({:.1} ns at \
         1.4 ns per fuel; {:.1} ns at the {ns_per_fuel:.2} ns per fuel measured now)",
        18.0 * 1.4,
        18.0 * ns_per_fuel
    );
    // Timing means nothing in a debug build; the release run checks it.
    if !cfg!(debug_assertions) {
        assert!(
            ns_per_call <= 2.0 * 18.0 * ns_per_fuel,
            "a call of a function of 256 locals took {ns_per_call:.1} ns, charged 18 fuel \
             ({ns_per_fuel:.2} ns per fuel measured now)"
        );
    }
}

/// The calibration's compute loop (`benches/engine.rs`): `n` rounds of i64 load, multiply,
/// xor, rotate, add and store over 4 KiB of memory.
fn mix_loop(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1) (func (export "call")
            (local $i i32) (local $x i64) (local $a i32)
            (local.set $i (i32.const {n}))
            (local.set $x (i64.const 0x9e3779b97f4a7c15))
            (loop $l
                (local.set $a (i32.and (i32.shl (local.get $i) (i32.const 3)) (i32.const 4095)))
                (local.set $x (i64.xor (i64.mul (local.get $x) (i64.const 0x2545f4914f6cdd1d))
                                       (i64.load (local.get $a))))
                (local.set $x (i64.add (i64.rotl (local.get $x) (i64.const 23)) (local.get $x)))
                (i64.store (local.get $a) (local.get $x))
                (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))))"#
    )
}

#[test]
fn review_a_module_that_validates_also_compiles() {
    let locals = " i32".repeat(30_001);
    let src =
        format!(r#"(module (memory (export "memory") 1) (func (export "call") (local{locals})))"#);
    let code = wasm(&src);
    // Review finding 8. Under the default limits the locals cap refuses it first; under a
    // locals cap above wasmi's own 30 000, validate's compile check refuses it.
    let runtime = Runtime::new(Limits::default(), 4 << 20);
    assert_code(
        &validate(&code, runtime.limits()).expect_err("30 001 locals"),
        "CONTRACT_TOO_MANY_LOCALS",
    );
    let loose = Limits {
        max_locals: 50_000,
        ..Limits::default()
    };
    let refused = validate(&code, &loose).expect_err("wasmi does not compile 30 001 locals");
    assert!(
        matches!(&refused, DeployError::Compile { reason } if !reason.is_empty()),
        "{refused:?}"
    );
    assert_code(&refused, "CONTRACT_COMPILE_FAILED");
    let runtime = Runtime::new(loose, 4 << 20);
    if let Ok(module) = validate(&code, runtime.limits()) {
        let compiled = runtime.compile(&module);
        assert!(
            compiled.is_ok(),
            "validate accepted a module (proposal admitted, code stored, votes taken) that \
             every node then fails to compile: {:?}",
            compiled.err()
        );
    }
}

// Second review (review2). Each test fails on the current code and is ignored so the branch
// stays green; the ignore reason names the finding.

/// A module of one function (besides `call`) whose body fills most of the 256 KiB a module
/// may have: `reps` times `local.set 0 (i32.add (local.get 0) (local.get 1))`.
fn one_big_function(reps: usize) -> Vec<u8> {
    let mut src = String::from(
        r#"(module (memory (export "memory") 1) (func (export "call")) (func (param i32 i32) "#,
    );
    for _ in 0..reps {
        src.push_str("(local.set 0 (i32.add (local.get 0) (local.get 1)))");
    }
    src.push_str("))");
    wasm(&src)
}

/// Review2 finding 2 (fixed): the engine renewal counted functions, not compiled code. A module
/// of two functions, one of them ~250 KiB of code, compiled on every cache miss went into the
/// engine's append-only code map, and the engine was renewed only after 1 000 000 functions
/// (500 000 such compiles), so the node's memory grew by the compiled module on every miss.
/// The runtime now renews its engine once the code it compiled and no longer caches reaches
/// ENGINE_RENEWAL_DEAD_BYTES (16 MiB).
#[test]
fn review2_recompiling_a_large_function_on_cache_misses_does_not_leak() {
    // Resident memory is the process's: measured in a child process running only this test,
    // so that the other tests' allocations do not count.
    const CHILD: &str = "GMCHAIN_TEST_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "review2_recompiling_a_large_function_on_cache_misses_does_not_leak",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .expect("runs the test binary");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
        eprintln!("{text}");
        return;
    }
    let limits = Limits::default();
    let code = one_big_function(35_000);
    assert!(code.len() <= limits.max_code_size, "{} bytes", code.len());
    let module = validate(&code, &limits).expect("validates");
    let runtime = Runtime::new(limits, 0);
    const COMPILES: usize = 200;
    drop(runtime.compile(&module).expect("compiles"));
    let before = resident_kib();
    for _ in 0..COMPILES {
        drop(runtime.compile(&module).expect("compiles"));
    }
    let after = resident_kib();
    let renewals = runtime.cache_stats().engine_renewals;
    eprintln!(
        "{COMPILES} compiles of {} bytes: resident {before:?} KiB -> {after:?} KiB, {renewals} renewals",
        code.len(),
    );
    // Every compile is dead code (no cache): a renewal each 16 MiB of it.
    let dead = (COMPILES as u64 + 1) * code.len() as u64;
    assert_eq!(renewals, dead / contracts::ENGINE_RENEWAL_DEAD_BYTES);
    if let (Some(before), Some(after)) = (before, after) {
        // Bounded memory: 200 compiles of a 250 KiB module (about 110 MiB of compiled code)
        // must not keep more than 64 MiB.
        assert!(
            after <= before + 64 * 1024,
            "resident memory grew from {before} KiB to {after} KiB over {COMPILES} compiles of one \
             {}-byte module ({} KiB per compile), with {renewals} engine renewals",
            code.len(),
            (after - before) / COMPILES as u64,
        );
    }
}

/// Review2 finding 3, in the runtime: a miss compiles the module uncharged, so a node's cache
/// must hold every module the chain's deployed contracts run (`execution` sizes it to the
/// chain's cap on deployed code; its test `review2_calls_rotating_over_many_contracts_compile_each_module_once`
/// runs the rotation through the executor). Here: modules whose code fits the capacity are
/// each compiled once however a rotation over them goes, and the least recently used goes
/// first only when the code no longer fits.
#[test]
fn review2_a_cache_holding_the_deployed_code_compiles_each_module_once() {
    let limits = Limits::default();
    let modules: Vec<ValidatedModule> = (0..100)
        .map(|i| validate(&wasm(&counting_loop(1000 + i)), &limits).expect("validates"))
        .collect();
    let total: usize = modules.iter().map(|m| m.code().len()).sum();
    let runtime = Runtime::new(limits, total);
    for _ in 0..3 {
        for m in &modules {
            runtime.compile(m).expect("compiles");
        }
    }
    let s = runtime.cache_stats();
    assert_eq!(
        (s.misses, s.hits, s.len, s.bytes),
        (100, 200, 100, total),
        "{s:?}"
    );
    // One byte less: a rotation over all of them misses every time (least recently used).
    let short = Runtime::new(Limits::default(), total - 1);
    for _ in 0..2 {
        for m in &modules {
            short.compile(m).expect("compiles");
        }
    }
    assert_eq!(short.cache_stats().misses, 200);
}

// Sixth review (review6). Each test fails on the current code and is ignored so the branch
// stays green; the ignore reason names the finding.

/// Review6 finding 1: two runs that miss the same module at once both compile it; only one
/// compile is cached and every other one is counted as the engine's dead code. A node's
/// queries run concurrently (one blocking thread each, `spawn_blocking`) and a query naming 0
/// fuel still loads the module, so a client sweeping bursts of concurrent queries over the
/// deployed contracts (after a start, or after any renewal) adds a module's size of dead code
/// per duplicate: past 16 MiB the engine is renewed and the whole cache emptied, so the next
/// sweep misses every module again, and so on. Here 40 modules of ~245 KB (10 MB, well within
/// the 24 MiB cache), each hit by a burst of 80 concurrent compiles: they must stay cached,
/// with no renewal (each compiled once per process, as docs/contracts.md §1 promises).
#[test]
// Review6 finding 1 (fixed): concurrent misses of one module wait for one compile.
fn review6_concurrent_misses_of_one_module_do_not_renew_the_engine() {
    let limits = Limits::default();
    const MODULES: usize = 40;
    const THREADS: usize = 80;
    let modules: Vec<ValidatedModule> = (0..MODULES)
        .map(|i| validate(&one_big_function(35_000 - i), &limits).expect("validates"))
        .collect();
    let total: usize = modules.iter().map(|m| m.code().len()).sum();
    // The node's cache: 24 MiB of code (execution::MODULE_CACHE_BYTES).
    let runtime = Runtime::new(limits, 24 * 1024 * 1024);
    assert!(total < 24 * 1024 * 1024);
    let burst = |module: &ValidatedModule| {
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    barrier.wait();
                    drop(runtime.compile(module).expect("compiles"));
                });
            }
        });
    };
    for m in &modules {
        burst(m);
    }
    let s = runtime.cache_stats();
    let held = modules
        .iter()
        .filter(|m| runtime.cached(&m.hash()).is_some())
        .count();
    eprintln!(
        "{MODULES} modules ({total} bytes), {THREADS} concurrent compiles each: {s:?}, {held} held"
    );
    assert_eq!(
        (s.engine_renewals, held),
        (0, MODULES),
        "bursts of concurrent misses over {MODULES} modules ({total} bytes of code, within the \
         cache) made {} misses (compiles) and renewed the engine {} times (the duplicates \
         count as dead code), emptying the cache: {s:?}",
        s.misses,
        s.engine_renewals
    );
}
