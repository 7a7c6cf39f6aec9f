//! The figures behind the fuel table (`docs/contracts.md` §3): how fast the interpreter burns
//! fuel on compute-heavy code, what a host function costs with the in-memory test host, and
//! the native costs (SM3 per KiB, SM2 verify, a run's setup) the host functions' fuel must
//! follow.
//!
//! Run: `cargo bench -p contracts --bench engine -- --warm-up-time 1 --measurement-time 3`.
//! The throughput of `interpreter/*` is fuel per second; of `host/*`, host calls per second.

use std::hint::black_box;

use contracts::{EntryPoint, Runtime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crypto::{Signature, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;

#[path = "../tests/support/mod.rs"]
mod support;

use support::{TestHost, compile, contract, runtime};

/// A compute-heavy loop: `n` rounds of i64 load, multiply, xor, rotate, add and store over
/// 4 KiB of memory.
fn mix_loop(n: u32) -> String {
    contract(
        "",
        &format!(
            r#"(local $i i32) (local $x i64) (local $a i32)
            (local.set $i (i32.const {n}))
            (local.set $x (i64.const 0x9e3779b97f4a7c15))
            (loop $l
                (local.set $a (i32.and (i32.shl (local.get $i) (i32.const 3)) (i32.const 4095)))
                (local.set $x (i64.xor (i64.mul (local.get $x) (i64.const 0x2545f4914f6cdd1d))
                                       (i64.load (local.get $a))))
                (local.set $x (i64.add (i64.rotl (local.get $x) (i64.const 23)) (local.get $x)))
                (i64.store (local.get $a) (local.get $x))
                (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))"#
        ),
    )
}

/// A loop of `n` calls of `call` (an expression with no result) in a contract with `data`.
fn host_loop(n: u32, data: &str, call: &str) -> String {
    contract(
        data,
        &format!(
            r#"(local $i i32) (local.set $i (i32.const {n}))
            (loop $l {call} (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))"#
        ),
    )
}

/// Runs `src` once with `fuel` and the test host, and returns the fuel it used.
fn fuel_of(rt: &Runtime, src: &str, fuel: u64) -> u64 {
    let mut host = TestHost::new(rt);
    host.deploy("main", src);
    let out = host.run(fuel);
    assert_eq!(out.result, Ok(()), "{src}");
    out.fuel_used
}

fn bench_interpreter(c: &mut Criterion) {
    let rt = runtime();
    let src = mix_loop(100_000);
    let fuel = fuel_of(&rt, &src, u64::MAX);
    let module = compile(&rt, &src);
    let mut group = c.benchmark_group("interpreter");
    group.throughput(Throughput::Elements(fuel));
    group.bench_function("mix_loop_100k", |b| {
        b.iter(|| {
            let mut host = TestHost::new(&rt);
            black_box(rt.run(&module, EntryPoint::Call, u64::MAX, &mut host))
        })
    });
    group.finish();
}

fn bench_host(c: &mut Criterion) {
    let rt = runtime();
    let n = 1_000;
    let cases = [
        (
            "block_height",
            host_loop(n, "", "(drop (call $block_height))"),
        ),
        (
            "storage_write_8b_32b",
            host_loop(
                n,
                "",
                "(call $storage_write (i32.const 0) (i32.const 8) (i32.const 64) (i32.const 32))",
            ),
        ),
        (
            "storage_read_8b_32b",
            host_loop(
                n,
                "",
                "(drop (call $storage_read (i32.const 0) (i32.const 8) (i32.const 64) (i32.const 32)))",
            ),
        ),
        (
            "sm3_1k",
            host_loop(
                n,
                "",
                "(call $sm3 (i32.const 0) (i32.const 1024) (i32.const 2048))",
            ),
        ),
        (
            "set_return_1k",
            host_loop(n, "", "(call $set_return (i32.const 0) (i32.const 1024))"),
        ),
        (
            "emit_16b",
            host_loop(
                n,
                r#"(data (i32.const 0) "event") (data (i32.const 16) "\00\00\00\00")"#,
                "(call $emit (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 16))",
            ),
        ),
    ];
    let mut group = c.benchmark_group("host");
    group.throughput(Throughput::Elements(u64::from(n)));
    for (name, src) in &cases {
        let module = compile(&rt, src);
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut host = TestHost::new(&rt);
                let out = rt.run(&module, EntryPoint::Call, u64::MAX, &mut host);
                assert_eq!(out.result, Ok(()));
                black_box(out)
            })
        });
    }
    // A nested call of a contract that does nothing: the callee's instantiation and run.
    let calls = 100;
    let mut caller = TestHost::new(&rt);
    caller.deploy(
        "main",
        &host_loop(
            calls,
            r#"(data (i32.const 0) "noop")"#,
            "(drop (call $call (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0)))",
        ),
    );
    caller.deploy("noop", &contract("", ""));
    group.throughput(Throughput::Elements(u64::from(calls)));
    group.bench_function("call_noop", |b| {
        b.iter(|| {
            let out = caller.run(u64::MAX);
            assert_eq!(out.result, Ok(()));
            black_box(out)
        })
    });
    group.finish();
}

fn bench_native(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("native");
    let data = vec![0x5au8; 1024];
    group.bench_function("sm3_1k", |b| {
        b.iter(|| black_box(crypto_sm::sm3::sm3(black_box(&data))))
    });
    let rng = SeededRandom::new(7);
    let key = PrivateKey::generate(&rng).expect("key");
    let public = key.public_key();
    let id = UserId::default();
    let msg = [0x11u8; 32];
    let der = key.sign(&id, &msg, &rng).expect("sign").to_der();
    group.bench_function("sm2_verify_der", |b| {
        b.iter(|| {
            let sig = Signature::from_der(black_box(&der)).expect("der");
            black_box(crypto_sm::sm2::verify(&public, &id, &msg, &sig)).expect("verifies")
        })
    });
    // A whole run of the smallest contract: the store, the linker, instantiation.
    let empty = compile(&rt, &contract("", ""));
    group.bench_function("run_empty_contract", |b| {
        b.iter(|| {
            let mut host = TestHost::new(&rt);
            // The limit covers the instantiation's fuel (6 024): a run that cannot pay it
            // stops before instantiating and would measure nothing.
            let out = rt.run(&empty, EntryPoint::Call, 1_000_000, &mut host);
            assert_eq!(out.result, Ok(()));
            black_box(out)
        })
    });
    group.finish();
}

/// Module shapes for the compile bench, each close to the 256 KiB a module may have: one huge
/// function; the most functions a module may define, each small; and functions of a typical
/// size (about 2 KiB, as in the examples) with locals, loops and calls.
fn compile_shapes() -> Vec<(&'static str, Vec<u8>)> {
    let mut big = String::from(
        r#"(module (memory (export "memory") 1) (func (export "call")) (func (param i32 i32) "#,
    );
    for _ in 0..35_000 {
        big.push_str("(local.set 0 (i32.add (local.get 0) (local.get 1)))");
    }
    big.push_str("))");
    let mut many = String::from(r#"(module (memory (export "memory") 1) (func (export "call"))"#);
    for i in 0..9_999 {
        many.push_str(&format!("(func (result i32) (i32.const {i}))"));
    }
    many.push(')');
    let mut typical =
        String::from(r#"(module (memory (export "memory") 1) (func (export "call"))"#);
    for f in 0..110 {
        typical.push_str("(func (param i32 i32) (result i32) (local i32 i64 i32 i32)");
        for k in 0..40 {
            typical.push_str(&format!(
                "(block (loop (br_if 1 (i32.eqz (local.get 1))) \
                   (local.set 2 (i32.add (i32.load (local.get 0)) (i32.const {k}))) \
                   (local.set 3 (i64.extend_i32_u (local.get 2))) \
                   (i32.store (local.get 0) (i32.wrap_i64 (i64.mul (local.get 3) (i64.const {f})))) \
                   (local.set 1 (i32.sub (local.get 1) (i32.const 1))) (br 0)))"
            ));
        }
        typical.push_str("(local.get 2))");
    }
    typical.push(')');
    [
        ("one_big_function", big),
        ("max_small_functions", many),
        ("typical", typical),
    ]
    .into_iter()
    .map(|(name, src)| (name, wat::parse_str(&src).expect("assembles")))
    .collect()
}

/// Compilation on a cache miss, per byte of code: the work a node's cache of all deployed code
/// spares it (`docs/contracts.md` §1). The runtime has no cache, so every compile is a miss.
fn bench_compile(c: &mut Criterion) {
    let limits = contracts::Limits::default();
    let rt = Runtime::new(limits, 0);
    let mut group = c.benchmark_group("compile");
    for (name, code) in compile_shapes() {
        let module = contracts::validate(&code, &limits).expect("validates");
        group.throughput(Throughput::Bytes(code.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(rt.compile(&module).expect("compiles")))
        });
    }
    group.finish();
    // The checks of a module before its compile (`validate_stored`: rules 1-10; `validate`
    // adds a compile, the figure above): with it, what a proposal's fuel per byte of module
    // pays for.
    let mut group = c.benchmark_group("validate_stored");
    for (name, code) in compile_shapes() {
        group.throughput(Throughput::Bytes(code.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(contracts::validate_stored(&code, &limits).expect("validates")))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_interpreter,
    bench_host,
    bench_native,
    bench_compile
);
criterion_main!(benches);
