//! Host API v1 (`docs/contracts.md` §2 and §3) against WAT contracts on the in-memory test
//! host: each function's normal use, every bound, pointers outside the memory, the fuel table's
//! known answers, the host's refusals and state failures, imports the API does not provide,
//! and nested calls that run the same runtime re-entrantly.

mod support;

use codes::Coded;
use contracts::{EntryPoint, HOST_FUNCTIONS, Outcome, RunError, Runtime, bounds};
use crypto::UserId;
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use support::{Event, PRELUDE, TestHost, compile, contract, runtime};

const LIMIT: u64 = 10_000_000;

/// `bytes` as a WAT string literal's contents.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Runs `call` of a contract of `data` and `body` with `fuel`, after `setup` of the host.
fn run_with<'r>(
    rt: &'r Runtime,
    data: &str,
    body: &str,
    fuel: u64,
    setup: impl FnOnce(&mut TestHost<'r>),
) -> (Outcome, TestHost<'r>) {
    let mut host = TestHost::new(rt);
    host.deploy("main", &contract(data, body));
    setup(&mut host);
    let out = host.run(fuel);
    (out, host)
}

fn run<'r>(rt: &'r Runtime, data: &str, body: &str) -> (Outcome, TestHost<'r>) {
    run_with(rt, data, body, LIMIT, |_| {})
}

/// Runs and returns the return data of a run that must succeed.
fn returned(
    rt: &Runtime,
    data: &str,
    body: &str,
    setup: impl FnOnce(&mut TestHost<'_>),
) -> Vec<u8> {
    let (out, _) = run_with(rt, data, body, LIMIT, setup);
    assert_eq!(out.result, Ok(()), "{body}");
    out.return_data
}

fn assert_bounds(out: &Outcome, function: &str, argument: &str, len: u64, bound: u64) {
    match &out.result {
        Err(
            e @ RunError::HostBounds {
                function: f,
                argument: a,
                len: l,
                bound: b,
            },
        ) => {
            assert_eq!(
                (*f, *a, *l, *b),
                (function, argument, len, bound),
                "wrong bound reported: {e}"
            );
            assert_eq!(e.code().name, "CONTRACT_HOST_BOUNDS");
            let text = e.to_string();
            assert!(
                text.contains(function) && text.contains(argument),
                "the message names neither {function} nor {argument}: {text}"
            );
        }
        other => panic!("expected HostBounds({function}, {argument}), got {other:?}"),
    }
    assert!(out.return_data.is_empty());
}

fn assert_argument(out: &Outcome, function: &str, argument: &str) {
    match &out.result {
        Err(
            e @ RunError::HostArgument {
                function: f,
                argument: a,
                ..
            },
        ) => {
            assert_eq!((*f, *a), (function, argument), "{e}");
            assert_eq!(e.code().name, "CONTRACT_HOST_BOUNDS");
        }
        other => panic!("expected HostArgument({function}, {argument}), got {other:?}"),
    }
}

// ---------------------------------------------------------------- the import table

#[test]
fn every_host_function_links_with_its_signature() {
    let rt = runtime();
    for name in HOST_FUNCTIONS {
        assert!(
            PRELUDE.contains(&format!("\"gmchain\" \"{name}\" (func ${name} ")),
            "the test prelude lacks {name}"
        );
    }
    assert_eq!(PRELUDE.matches("(import").count(), HOST_FUNCTIONS.len());
    // A module importing all of them instantiates and runs.
    let (out, _) = run(&rt, "", "");
    assert_eq!(out.result, Ok(()));
}

#[test]
fn an_unknown_import_or_a_wrong_signature_fails_instantiation() {
    let rt = runtime();
    for (import, named) in [
        (
            r#"(import "gmchain" "storage_iterate" (func))"#,
            "storage_iterate",
        ),
        (
            r#"(import "gmchain" "storage_write" (func (param i32 i32)))"#,
            "storage_write",
        ),
        (
            r#"(import "gmchain" "block_height" (func (result i32)))"#,
            "block_height",
        ),
        (
            r#"(import "gmchain" "abort" (func (param i64 i32)))"#,
            "abort",
        ),
    ] {
        let src =
            format!(r#"(module {import} (memory (export "memory") 1) (func (export "call")))"#);
        let module = compile(&rt, &src);
        let mut host = TestHost::new(&rt);
        let out = rt.run(&module, EntryPoint::Call, 100_000, &mut host);
        match &out.result {
            Err(e @ RunError::Instantiation { reason }) => {
                assert!(reason.contains(named), "{reason}");
                assert_eq!(e.code().name, "CONTRACT_INSTANTIATION_FAILED");
            }
            other => panic!("{import}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- each function

#[test]
fn input_is_read_whole() {
    let rt = runtime();
    let body =
        "(call $input_read (i32.const 100)) (call $set_return (i32.const 100) (call $input_len))";
    let input = b"\x00\x00\x00\x04mint\x00\x00\x00\x00".to_vec();
    let got = returned(&rt, "", body, |h| h.input = input.clone());
    assert_eq!(got, input);
    assert_eq!(returned(&rt, "", body, |_| {}), b"");
}

#[test]
fn storage_writes_reads_and_removes_the_contracts_own_keys() {
    let rt = runtime();
    let data =
        r#"(data (i32.const 0) "k1") (data (i32.const 16) "hello") (data (i32.const 32) "zz")"#;
    let body = r#"
        (call $storage_write (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 5))
        ;; value to 100 with room for 3 of its 5 bytes; n to 104; an absent key's -1 to 108
        (i32.store (i32.const 104) (call $storage_read (i32.const 0) (i32.const 2) (i32.const 100) (i32.const 3)))
        (i32.store (i32.const 108) (call $storage_read (i32.const 32) (i32.const 2) (i32.const 200) (i32.const 8)))
        (call $set_return (i32.const 100) (i32.const 12))"#;
    let (out, host) = run(&rt, data, body);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.return_data, b"hel\x00\x05\x00\x00\x00\xff\xff\xff\xff");
    assert_eq!(host.value(b"k1"), Some(&b"hello".to_vec()));
    // An empty value is present (0), not absent (-1); a removed key is absent.
    let body = r#"
        (call $storage_write (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 0))
        (i32.store (i32.const 100) (call $storage_read (i32.const 0) (i32.const 2) (i32.const 200) (i32.const 8)))
        (call $storage_remove (i32.const 0) (i32.const 2))
        (i32.store (i32.const 104) (call $storage_read (i32.const 0) (i32.const 2) (i32.const 200) (i32.const 8)))
        (call $set_return (i32.const 100) (i32.const 8))"#;
    let (out, host) = run(&rt, data, body);
    assert_eq!(out.return_data, b"\x00\x00\x00\x00\xff\xff\xff\xff");
    assert!(host.storage.is_empty());
}

#[test]
fn caller_block_and_transaction_come_from_the_host() {
    let rt = runtime();
    let body = r#"
        (i32.store (i32.const 0) (call $caller (i32.const 4) (i32.const 3)))
        (i32.store (i32.const 8) (call $caller_contract (i32.const 12) (i32.const 16)))
        (i64.store (i32.const 28) (call $block_height))
        (i64.store (i32.const 36) (call $block_time_ms))
        (call $tx_id (i32.const 44))
        (call $set_return (i32.const 0) (i32.const 76))"#;
    let got = returned(&rt, "", body, |h| {
        h.caller = b"cert|org|cn|user".to_vec();
        h.caller_contract = Some("token".to_string());
        h.height = 0x0102_0304_0506_0708;
        h.time_ms = 1_700_000_000_123;
        h.tx_id = core::array::from_fn(|i| i as u8);
    });
    let mut want = Vec::new();
    want.extend_from_slice(&16u32.to_le_bytes()); // the caller's length; 3 bytes copied
    want.extend_from_slice(b"cer\x00");
    want.extend_from_slice(&5u32.to_le_bytes());
    want.extend_from_slice(b"token\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    want.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    want.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
    want.extend((0..32).map(|i| i as u8));
    assert_eq!(got, want);
    // A transaction's (or query's) call has no calling contract: 0, nothing copied.
    let got = returned(&rt, r#"(data (i32.const 12) "untouched")"#, body, |h| {
        h.caller_contract = None
    });
    assert_eq!(&got[8..21], b"\x00\x00\x00\x00untouched");
}

#[test]
fn sm3_of_abc_is_the_gbt_32905_vector() {
    let rt = runtime();
    let got = returned(
        &rt,
        r#"(data (i32.const 0) "abc")"#,
        "(call $sm3 (i32.const 0) (i32.const 3) (i32.const 64)) (call $set_return (i32.const 64) (i32.const 32))",
        |_| {},
    );
    // GB/T 32905-2016 Appendix A.1.
    assert_eq!(
        hex(&got),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `sm2_verify` over (key, id, msg, der) laid out at 0, 100, 200, 300 and returns its
/// answer.
fn sm2_verify(rt: &Runtime, key: &[u8], id: &[u8], msg: &[u8], der: &[u8]) -> Vec<u8> {
    let data = format!(
        r#"(data (i32.const 0) "{}") (data (i32.const 100) "{}") (data (i32.const 200) "{}") (data (i32.const 300) "{}")"#,
        wat_bytes(key),
        wat_bytes(id),
        wat_bytes(msg),
        wat_bytes(der)
    );
    let body = format!(
        r#"(i32.store (i32.const 400) (call $sm2_verify (i32.const 0) (i32.const {}) (i32.const 100) (i32.const {})
            (i32.const 200) (i32.const {}) (i32.const 300) (i32.const {})))
        (call $set_return (i32.const 400) (i32.const 4))"#,
        key.len(),
        id.len(),
        msg.len(),
        der.len()
    );
    returned(rt, &data, &body, |_| {})
}

#[test]
fn sm2_verify_accepts_a_crypto_sm_signature_and_nothing_else() {
    let rt = runtime();
    let rng = SeededRandom::new(14);
    let key = PrivateKey::generate(&rng).expect("key");
    let public = key.public_key();
    let id = b"1234567812345678";
    let msg = b"transfer 10 to bob";
    let der = key
        .sign(&UserId::new(id.as_slice()).expect("id"), msg, &rng)
        .expect("sign")
        .to_der();
    let yes = 1u32.to_le_bytes().to_vec();
    let no = 0u32.to_le_bytes().to_vec();
    let pk = public.as_bytes();
    assert_eq!(sm2_verify(&rt, pk, id, msg, &der), yes);
    // Any flipped byte of message, ID, signature or key fails.
    let mut m = msg.to_vec();
    m[3] ^= 1;
    assert_eq!(sm2_verify(&rt, pk, id, &m, &der), no);
    assert_eq!(sm2_verify(&rt, pk, b"1234567812345679", msg, &der), no);
    let mut d = der.clone();
    let last = d.len() - 1;
    d[last] ^= 1;
    assert_eq!(sm2_verify(&rt, pk, id, msg, &d), no);
    // Malformed keys: off the curve, the wrong prefix, too short; a malformed DER.
    let mut k = *pk;
    k[64] ^= 1;
    assert_eq!(sm2_verify(&rt, &k, id, msg, &der), no);
    let mut k = *pk;
    k[0] = 0x05;
    assert_eq!(sm2_verify(&rt, &k, id, msg, &der), no);
    assert_eq!(sm2_verify(&rt, &pk[..64], id, msg, &der), no);
    assert_eq!(sm2_verify(&rt, pk, id, msg, &der[..der.len() - 1]), no);
    // The empty user ID is a user ID (ENTL 0), not the default one.
    assert_eq!(sm2_verify(&rt, pk, b"", msg, &der), no);
}

/// The canonical topic list of `topics`.
fn topic_list(topics: &[&[u8]]) -> Vec<u8> {
    let mut out = (topics.len() as u32).to_be_bytes().to_vec();
    for t in topics {
        out.extend_from_slice(&(t.len() as u32).to_be_bytes());
        out.extend_from_slice(t);
    }
    out
}

/// Runs `emit` of (name, topics, data) laid out at 0, 100, 500.
fn emit(rt: &Runtime, name: &[u8], topics: &[u8], data: &[u8]) -> (Outcome, Vec<Event>) {
    let segments = format!(
        r#"(data (i32.const 0) "{}") (data (i32.const 100) "{}") (data (i32.const 500) "{}")"#,
        wat_bytes(name),
        wat_bytes(topics),
        wat_bytes(data)
    );
    let body = format!(
        "(call $emit (i32.const 0) (i32.const {}) (i32.const 100) (i32.const {}) (i32.const 500) (i32.const {}))",
        name.len(),
        topics.len(),
        data.len()
    );
    let (out, host) = run(rt, &segments, &body);
    (out, host.events)
}

#[test]
fn emit_records_an_event_with_its_topics() {
    let rt = runtime();
    let topics = topic_list(&[b"from:alice", b"\x00\x01"]);
    let (out, events) = emit(&rt, b"Transfer", &topics, b"10");
    assert_eq!(out.result, Ok(()));
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (event.contract.as_str(), event.name.as_str()),
        ("main", "Transfer")
    );
    assert_eq!(
        event.topics,
        vec![b"from:alice".to_vec(), b"\x00\x01".to_vec()]
    );
    assert_eq!(event.data, b"10");
    // The most of everything is accepted.
    let t = [b'x'; 64];
    let max_topics = topic_list(&[&t, &t, &t, &t]);
    assert_eq!(max_topics.len() as u64, bounds::TOPICS_ENCODED);
    let (out, events) = emit(&rt, &[b'~'; 64], &max_topics, &[7; 16_384]);
    assert_eq!(out.result, Ok(()));
    assert_eq!(events[0].topics.len(), 4);
    // No topics: the count 0.
    let (out, _) = emit(&rt, b"a", &topic_list(&[]), b"");
    assert_eq!(out.result, Ok(()));
}

#[test]
fn emit_refuses_names_and_topic_lists_not_of_the_canonical_form() {
    let rt = runtime();
    let ok_topics = topic_list(&[b"t"]);
    for name in [b"has space".as_slice(), b"tab\t", b"caf\xc3\xa9", b"\x7f"] {
        let (out, events) = emit(&rt, name, &ok_topics, b"");
        assert_argument(&out, "emit", "name_ptr");
        assert!(events.is_empty());
    }
    assert_argument(&emit(&rt, b"", &ok_topics, b"").0, "emit", "name_len");
    let mut trailing = ok_topics.clone();
    trailing.push(0);
    for malformed in [
        Vec::new(),                   // no count
        vec![0, 0, 0],                // a short count
        topic_list(&[b""]),           // an empty topic
        trailing,                     // a byte after the last topic
        ok_topics[..6].to_vec(),      // ends inside a topic's length
        vec![0, 0, 0, 1, 0, 0, 0, 9], // ends inside a topic
    ] {
        assert_argument(&emit(&rt, b"e", &malformed, b"").0, "emit", "topics_ptr");
    }
    let t: &[u8] = b"t";
    assert_bounds(
        &emit(&rt, b"e", &topic_list(&[t, t, t, t, t]), b"").0,
        "emit",
        "topic count",
        5,
        4,
    );
    assert_bounds(
        &emit(&rt, b"e", &topic_list(&[&[1; 65]]), b"").0,
        "emit",
        "topic length",
        65,
        64,
    );
}

#[test]
fn set_return_twice_keeps_the_last_and_a_failed_run_returns_nothing() {
    let rt = runtime();
    let data = r#"(data (i32.const 0) "first") (data (i32.const 8) "second")"#;
    let got = returned(
        &rt,
        data,
        "(call $set_return (i32.const 0) (i32.const 5)) (call $set_return (i32.const 8) (i32.const 6))",
        |_| {},
    );
    assert_eq!(got, b"second");
    let (out, _) = run(
        &rt,
        data,
        "(call $set_return (i32.const 0) (i32.const 5)) unreachable",
    );
    assert!(matches!(out.result, Err(RunError::Trap { .. })), "{out:?}");
    assert!(out.return_data.is_empty());
}

#[test]
fn abort_fails_the_run_with_the_contracts_message() {
    let rt = runtime();
    let (out, _) = run(
        &rt,
        r#"(data (i32.const 0) "not enough balance") (data (i32.const 32) "after")"#,
        "(call $set_return (i32.const 32) (i32.const 5)) (call $abort (i32.const 0) (i32.const 18)) (call $set_return (i32.const 0) (i32.const 1))",
    );
    let Err(e) = &out.result else {
        panic!("{out:?}")
    };
    assert_eq!(
        *e,
        RunError::Aborted {
            message: "not enough balance".to_string()
        }
    );
    assert_eq!(e.code().name, "CONTRACT_ABORTED");
    assert!(out.return_data.is_empty());
    // Invalid UTF-8 is replaced, not refused.
    let (out, _) = run(
        &rt,
        r#"(data (i32.const 0) "bad \ff\fe byte")"#,
        "(call $abort (i32.const 0) (i32.const 11))",
    );
    assert_eq!(
        out.result,
        Err(RunError::Aborted {
            message: "bad \u{fffd}\u{fffd} byte".to_string()
        })
    );
    // 1 024 bytes are a message; one more is out of bounds.
    let (out, _) = run(&rt, "", "(call $abort (i32.const 0) (i32.const 1024))");
    assert_eq!(
        out.result,
        Err(RunError::Aborted {
            message: "\0".repeat(1024)
        })
    );
    let (out, _) = run(&rt, "", "(call $abort (i32.const 0) (i32.const 1025))");
    assert_bounds(&out, "abort", "msg_len", 1025, 1024);
}

// ---------------------------------------------------------------- bounds

#[test]
fn every_length_over_its_bound_ends_the_run_naming_function_and_argument() {
    let rt = runtime();
    // (call, function, argument, len, bound); memory is one page, so every range below the
    // bound + 1 fits and only the bound can refuse.
    let mib = 1 << 20;
    let cases: Vec<(String, &str, &str, u64, u64)> = vec![
        (
            "(drop (call $storage_read (i32.const 0) (i32.const 257) (i32.const 0) (i32.const 0)))".into(),
            "storage_read",
            "key_len",
            257,
            256,
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 257) (i32.const 0) (i32.const 1))".into(),
            "storage_write",
            "key_len",
            257,
            256,
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 65537))".into(),
            "storage_write",
            "val_len",
            65_537,
            65_536,
        ),
        (
            "(call $storage_remove (i32.const 0) (i32.const 257))".into(),
            "storage_remove",
            "key_len",
            257,
            256,
        ),
        (
            format!("(call $sm3 (i32.const 0) (i32.const {}) (i32.const 0))", mib + 1),
            "sm3",
            "len",
            mib + 1,
            mib,
        ),
        (
            sm2_call([0, 66, 0, 16, 0, 0, 0, 70]),
            "sm2_verify",
            "key_len",
            66,
            65,
        ),
        (
            sm2_call([0, 65, 0, 8192, 0, 0, 0, 70]),
            "sm2_verify",
            "id_len",
            8192,
            8191,
        ),
        (
            sm2_call([0, 65, 0, 16, 0, mib + 1, 0, 70]),
            "sm2_verify",
            "msg_len",
            mib + 1,
            mib,
        ),
        (
            sm2_call([0, 65, 0, 16, 0, 0, 0, 73]),
            "sm2_verify",
            "sig_len",
            73,
            72,
        ),
        (
            "(call $emit (i32.const 0) (i32.const 65) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0))".into(),
            "emit",
            "name_len",
            65,
            64,
        ),
        (
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 277) (i32.const 0) (i32.const 0))".into(),
            "emit",
            "topics_len",
            277,
            276,
        ),
        (
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 16385))".into(),
            "emit",
            "data_len",
            16_385,
            16_384,
        ),
        (
            "(drop (call $call (i32.const 0) (i32.const 65) (i32.const 0) (i32.const 0)))".into(),
            "call",
            "name_len",
            65,
            64,
        ),
        (
            "(drop (call $call (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 65537)))".into(),
            "call",
            "input_len",
            65_537,
            65_536,
        ),
        (
            "(call $set_return (i32.const 0) (i32.const 65537))".into(),
            "set_return",
            "len",
            65_537,
            65_536,
        ),
        (
            "(call $abort (i32.const 0) (i32.const 1025))".into(),
            "abort",
            "msg_len",
            1025,
            1024,
        ),
        // A negative length is a length of 2^32 - 1, not a small one.
        (
            "(call $set_return (i32.const 0) (i32.const -1))".into(),
            "set_return",
            "len",
            u64::from(u32::MAX),
            65_536,
        ),
    ];
    for (call, function, argument, len, bound) in cases {
        let (out, host) = run(&rt, "", &call);
        assert_bounds(&out, function, argument, len, bound);
        assert!(host.storage.is_empty() && host.events.is_empty() && host.fuel_given.is_empty());
        // The host function charged nothing: the run used only the fuel of its instantiation
        // (5 000 + 1 024 for its page) and of its own code.
        assert!(out.fuel_used < 6_024 + 30, "{call}: {}", out.fuel_used);
    }
    // And at each bound, the length is accepted (the pointer ranges then lie past the memory
    // for the large ones: that refusal names the pointer, not the length).
    let (out, _) = run(
        &rt,
        "",
        "(call $set_return (i32.const 0) (i32.const 65536))",
    );
    assert_eq!(out.result, Ok(()));
    let (out, _) = run(
        &rt,
        "",
        "(call $storage_write (i32.const 0) (i32.const 256) (i32.const 0) (i32.const 65536))",
    );
    assert_eq!(out.result, Ok(()));
}

fn sm2_call(args: [u64; 8]) -> String {
    let args: String = args.iter().map(|a| format!(" (i32.const {a})")).collect();
    format!("(drop (call $sm2_verify{args}))")
}

#[test]
fn a_pointer_range_outside_the_memory_ends_the_run_and_nothing_is_done() {
    let rt = runtime();
    let end = 65_536u64; // one page
    // (call, function, argument, end of the range)
    let cases: Vec<(&str, &str, &str, u64)> = vec![
        (
            "(call $input_read (i32.const 65535))",
            "input_read",
            "ptr",
            end + 1,
        ),
        (
            "(drop (call $storage_read (i32.const 65535) (i32.const 2) (i32.const 0) (i32.const 0)))",
            "storage_read",
            "key_ptr",
            end + 1,
        ),
        (
            "(drop (call $storage_read (i32.const 0) (i32.const 2) (i32.const 65530) (i32.const 10)))",
            "storage_read",
            "val_ptr",
            end + 4,
        ),
        (
            "(call $storage_write (i32.const 65535) (i32.const 2) (i32.const 0) (i32.const 1))",
            "storage_write",
            "key_ptr",
            end + 1,
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 2) (i32.const 65535) (i32.const 2))",
            "storage_write",
            "val_ptr",
            end + 1,
        ),
        (
            "(call $storage_remove (i32.const 65536) (i32.const 1))",
            "storage_remove",
            "key_ptr",
            end + 1,
        ),
        (
            "(drop (call $caller (i32.const 65535) (i32.const 2)))",
            "caller",
            "ptr",
            end + 1,
        ),
        (
            "(drop (call $caller_contract (i32.const 65537) (i32.const 0)))",
            "caller_contract",
            "ptr",
            end + 1,
        ),
        ("(call $tx_id (i32.const 65505))", "tx_id", "ptr", end + 1),
        (
            "(call $sm3 (i32.const 65535) (i32.const 2) (i32.const 0))",
            "sm3",
            "ptr",
            end + 1,
        ),
        (
            "(call $sm3 (i32.const 0) (i32.const 2) (i32.const 65535))",
            "sm3",
            "out_ptr",
            end + 31,
        ),
        (
            "(call $emit (i32.const 65535) (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0))",
            "emit",
            "name_ptr",
            end + 1,
        ),
        (
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 65535) (i32.const 4) (i32.const 0) (i32.const 0))",
            "emit",
            "topics_ptr",
            end + 3,
        ),
        (
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 65535) (i32.const 2))",
            "emit",
            "data_ptr",
            end + 1,
        ),
        (
            "(drop (call $call (i32.const 65535) (i32.const 2) (i32.const 0) (i32.const 0)))",
            "call",
            "name_ptr",
            end + 1,
        ),
        (
            "(drop (call $call (i32.const 0) (i32.const 1) (i32.const 65535) (i32.const 2)))",
            "call",
            "input_ptr",
            end + 1,
        ),
        (
            "(call $return_data_read (i32.const 65537))",
            "return_data_read",
            "ptr",
            end + 1,
        ),
        (
            "(call $set_return (i32.const 65535) (i32.const 2))",
            "set_return",
            "ptr",
            end + 1,
        ),
        (
            "(call $abort (i32.const 65535) (i32.const 2))",
            "abort",
            "msg_ptr",
            end + 1,
        ),
        // A negative pointer is an offset of at least 2^31, never a small one.
        (
            "(call $set_return (i32.const -1) (i32.const 1))",
            "set_return",
            "ptr",
            u64::from(u32::MAX) + 1,
        ),
    ];
    for (call, function, argument, range_end) in cases {
        let (out, host) = run_with(&rt, "", call, LIMIT, |h| h.input = b"in".to_vec());
        assert_bounds(&out, function, argument, range_end, end);
        assert!(host.storage.is_empty() && host.events.is_empty() && host.fuel_given.is_empty());
    }
    for (i, ptrs) in [
        [65_500, 0, 0, 0],
        [0, 65_530, 0, 0],
        [0, 0, 65_500, 0],
        [0, 0, 0, 65_500],
    ]
    .iter()
    .enumerate()
    {
        let call = format!(
            "(drop (call $sm2_verify (i32.const {}) (i32.const 65) (i32.const {}) (i32.const 16) (i32.const {}) (i32.const 100) (i32.const {}) (i32.const 70)))",
            ptrs[0], ptrs[1], ptrs[2], ptrs[3]
        );
        let (argument, range_end) = [
            ("key_ptr", 65_565),
            ("id_ptr", 65_546),
            ("msg_ptr", 65_600),
            ("sig_ptr", 65_570),
        ][i];
        assert_bounds(
            &run(&rt, "", &call).0,
            "sm2_verify",
            argument,
            range_end,
            end,
        );
    }
    // A range that ends exactly at the end of the memory is inside; so is an empty one there.
    let (out, _) = run(
        &rt,
        "",
        "(call $set_return (i32.const 65534) (i32.const 2)) (call $set_return (i32.const 65536) (i32.const 0))",
    );
    assert_eq!(out.result, Ok(()));
}

// ---------------------------------------------------------------- fuel (§3)

/// The fuel a run of the known-answer module pays before it is instantiated: 5 000 for the
/// instance, 1 024 for its page of memory, and for each of its two data segments 1 and 1 per
/// 64 bytes or part of them.
const INSTANTIATE_KAT: u64 = 5_000 + 1_024 + 2 * (1 + 1);

/// The fuel of a run whose body is one host call with `args` i32 constants: the instantiation,
/// the engine's 1 (the function's fuel block) + 1 per constant + 10 for `call` (`drop` is
/// free).
fn code_fuel(args: u64) -> u64 {
    INSTANTIATE_KAT + 1 + args + 10
}

#[test]
fn fuel_known_answers_follow_the_published_table() {
    let rt = runtime();
    let data = r#"(data (i32.const 0) "key-0001") (data (i32.const 16) "noop")"#;
    // (body, fuel): every figure is the §3 table's, spelled out.
    let cases: Vec<(&str, u64)> = vec![
        ("(drop (call $input_len))", code_fuel(0) + 50),
        // 100 bytes of input: 2 units of 64 bytes.
        ("(call $input_read (i32.const 1000))", code_fuel(1) + 50 + 2),
        // Present: key 1 unit × 4, value (100 bytes) 2 units × 4, 10 bytes copied 1.
        (
            "(drop (call $storage_read (i32.const 0) (i32.const 8) (i32.const 1000) (i32.const 10)))",
            code_fuel(4) + 50 + 2_000 + 4 + 8 + 1,
        ),
        // Absent: key only.
        (
            "(drop (call $storage_read (i32.const 16) (i32.const 4) (i32.const 1000) (i32.const 10)))",
            code_fuel(4) + 50 + 2_000 + 4,
        ),
        // 8 + 100 bytes × 128 (stored bytes).
        (
            "(call $storage_write (i32.const 0) (i32.const 8) (i32.const 1000) (i32.const 100))",
            code_fuel(4) + 50 + 20_000 + 128 * 108,
        ),
        (
            "(call $storage_remove (i32.const 0) (i32.const 8))",
            code_fuel(2) + 50 + 20_000 + 2 * 8,
        ),
        // "signer" (6 bytes) copied: 1 unit.
        (
            "(drop (call $caller (i32.const 1000) (i32.const 64)))",
            code_fuel(2) + 50 + 1,
        ),
        // None: nothing copied.
        (
            "(drop (call $caller_contract (i32.const 1000) (i32.const 64)))",
            code_fuel(2) + 50,
        ),
        ("(drop (call $block_height))", code_fuel(0) + 50),
        ("(drop (call $block_time_ms))", code_fuel(0) + 50),
        ("(call $tx_id (i32.const 1000))", code_fuel(1) + 50 + 1),
        // 3 bytes: 1 block; 1 000 bytes: 16 blocks.
        (
            "(call $sm3 (i32.const 0) (i32.const 3) (i32.const 1000))",
            code_fuel(3) + 50 + 200 + 200,
        ),
        (
            "(call $sm3 (i32.const 0) (i32.const 1000) (i32.const 2000))",
            code_fuel(3) + 50 + 200 + 16 * 200,
        ),
        // ID 16 bytes: 1 block; message 200 bytes: 4 blocks (whatever the answer).
        (
            "(drop (call $sm2_verify (i32.const 0) (i32.const 65) (i32.const 100) (i32.const 16) (i32.const 200) (i32.const 200) (i32.const 500) (i32.const 70)))",
            code_fuel(8) + 50 + 175_000 + 200 + 4 * 200,
        ),
        // name 8 + topics 4 + data 100 bytes, 128 each (stored bytes).
        (
            "(call $emit (i32.const 0) (i32.const 8) (i32.const 2000) (i32.const 4) (i32.const 1000) (i32.const 100))",
            code_fuel(6) + 50 + 1_000 + 128 * 112,
        ),
        // A callee that does nothing uses its instantiation (5 000 + 1 024 for its page) and 1
        // (its function's fuel block); name 4 bytes: 1 unit.
        (
            "(drop (call $call (i32.const 16) (i32.const 4) (i32.const 0) (i32.const 0)))",
            code_fuel(4) + 50 + 10_000 + 1 + (5_000 + 1_024 + 1),
        ),
        ("(drop (call $return_data_len))", code_fuel(0) + 50),
        (
            "(call $return_data_read (i32.const 1000))",
            code_fuel(1) + 50,
        ),
        (
            "(call $set_return (i32.const 1000) (i32.const 100))",
            code_fuel(2) + 50 + 128 * 100,
        ),
        (
            "(call $abort (i32.const 0) (i32.const 8))",
            code_fuel(2) + 50 + 1,
        ),
    ];
    for (body, fuel) in &cases {
        let (out, _) = run_with(&rt, data, body, LIMIT, |h| {
            h.input = vec![1; 100];
            h.storage
                .insert(("main".into(), b"key-0001".to_vec()), vec![2; 100]);
            h.deploy("noop", &contract("", ""));
        });
        assert!(
            out.result.is_ok() || body.contains("$abort"),
            "{body}: {:?}",
            out.result
        );
        assert_eq!(out.fuel_used, *fuel, "{body}");
        // One less fuel than the call needs: out of fuel, and the work is not done.
        let (short, host) = run_with(&rt, data, body, fuel - 1, |h| {
            h.input = vec![1; 100];
            h.storage
                .insert(("main".into(), b"key-0001".to_vec()), vec![2; 100]);
            h.deploy("noop", &contract("", ""));
        });
        if body.contains("(call $call ") {
            // The call itself is paid; the callee is given the fuel left, one less than it
            // needs (its instantiation but not its body), and fails out of fuel, which the
            // caller sees as the call's answer 1 and survives.
            assert_eq!(short.result, Ok(()), "{body}");
            assert_eq!(short.fuel_used, fuel - 1);
            assert_eq!(host.fuel_given, vec![5_000 + 1_024]);
            continue;
        }
        assert_eq!(
            short.result,
            Err(RunError::FuelExhausted { limit: fuel - 1 }),
            "{body}"
        );
        assert_eq!(short.fuel_used, fuel - 1);
        assert_eq!(host.storage.len(), 1, "{body}: the state changed");
        assert!(
            host.events.is_empty() && host.fuel_given.is_empty(),
            "{body}"
        );
    }
}

#[test]
fn the_published_constants_are_the_table() {
    use contracts::fuel::*;
    assert_eq!(
        [
            HOST_CALL,
            COPY_PER_64_BYTES,
            STORAGE_READ,
            STORAGE_READ_PER_64_BYTES,
            STORAGE_WRITE,
            STORAGE_WRITE_PER_BYTE,
            STORAGE_REMOVE,
            STORAGE_REMOVE_PER_BYTE,
            SM3,
            SM3_PER_64_BYTES,
            SM2_VERIFY,
            EMIT,
            EMIT_PER_BYTE,
            CALL,
            SET_RETURN_PER_BYTE,
            STORED_BYTE,
            INSTANTIATE,
            INITIAL_MEMORY_PER_PAGE,
            DATA_SEGMENT,
        ],
        [
            50, 1, 2_000, 4, 20_000, 128, 20_000, 2, 200, 200, 175_000, 1_000, 128, 10_000, 128,
            128, 5_000, 1_024, 1
        ]
    );
    // A block's default fuel budget buys at most 16 MiB (the block size) of stored bytes.
    const { assert!(2_000_000_000 / STORED_BYTE <= 16 << 20) };
    // The instantiation of 2 pages and segments of 0, 64 and 65 bytes (0, 1 and 2 units).
    assert_eq!(
        instantiation(2, &[0, 64, 65]),
        5_000 + 2 * 1_024 + 1 + (1 + 1) + (1 + 2)
    );
}

// ---------------------------------------------------------------- the host's refusals

#[test]
fn a_read_only_refusal_fails_the_run_with_the_hosts_code() {
    let rt = runtime();
    for body in [
        "(call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))",
        "(call $storage_remove (i32.const 0) (i32.const 1))",
        "(call $emit (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 4) (i32.const 0) (i32.const 0))",
    ] {
        let (out, host) = run_with(&rt, r#"(data (i32.const 0) "e")"#, body, LIMIT, |h| {
            h.read_only = true
        });
        match &out.result {
            Err(e @ RunError::Host { code, message }) => {
                assert_eq!(code.name, "CONTRACT_READ_ONLY");
                assert_eq!(e.code().name, "CONTRACT_READ_ONLY");
                assert!(message.contains("read-only"), "{message}");
                assert!(!e.is_infrastructure());
            }
            other => panic!("{body}: {other:?}"),
        }
        assert!(host.storage.is_empty() && host.events.is_empty());
        // The host function's fuel was charged before the host refused.
        assert!(out.fuel_used > 1_000, "{body}: {}", out.fuel_used);
    }
}

#[test]
fn an_unreadable_state_stops_the_run_as_an_infrastructure_failure() {
    let rt = runtime();
    let (out, _) = run_with(
        &rt,
        "",
        "(drop (call $storage_read (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)))",
        LIMIT,
        |h| h.state_broken = true,
    );
    let Err(e) = &out.result else {
        panic!("{out:?}")
    };
    assert_eq!(
        *e,
        RunError::HostState {
            message: "the test state is broken".to_string()
        }
    );
    assert_eq!(e.code().name, "CONTRACT_HOST_STATE");
    assert!(e.is_infrastructure());
}

// ---------------------------------------------------------------- nested calls

/// A contract that calls `name` with its own input and returns what the call returned,
/// prefixed by the call's answer (0 or 1) as one byte.
fn forwarder(name: &str) -> String {
    contract(
        &format!(r#"(data (i32.const 0) "{name}")"#),
        &format!(
            r#"(local $n i32) (local $r i32)
            (call $input_read (i32.const 100))
            (local.set $r (call $call (i32.const 0) (i32.const {}) (i32.const 100) (call $input_len)))
            (i32.store8 (i32.const 999) (local.get $r))
            (local.set $n (call $return_data_len))
            (call $return_data_read (i32.const 1000))
            (call $set_return (i32.const 999) (i32.add (local.get $n) (i32.const 1)))"#,
            name.len()
        ),
    )
}

/// A contract that writes its input under key "seen" and its caller contract under "from:",
/// and returns "got:" ‖ input.
fn recorder() -> String {
    contract(
        r#"(data (i32.const 0) "seenfrom:") (data (i32.const 100) "got:")"#,
        r#"(local $n i32)
        (local.set $n (call $input_len))
        (call $input_read (i32.const 104))
        (call $storage_write (i32.const 0) (i32.const 4) (i32.const 104) (local.get $n))
        (call $storage_write (i32.const 4) (i32.const 5) (i32.const 200)
            (call $caller_contract (i32.const 200) (i32.const 64)))
        (call $set_return (i32.const 100) (i32.add (local.get $n) (i32.const 4)))"#,
    )
}

#[test]
fn a_nested_call_runs_the_callee_on_the_same_runtime_and_joins_its_writes() {
    let rt = runtime();
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("rec"));
    host.deploy("rec", &recorder());
    host.input = b"hello".to_vec();
    let out = host.run(LIMIT);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.return_data, b"\x00got:hello");
    let seen =
        |h: &TestHost<'_>, k: &[u8]| h.storage.get(&("rec".to_string(), k.to_vec())).cloned();
    assert_eq!(seen(&host, b"seen"), Some(b"hello".to_vec()));
    assert_eq!(seen(&host, b"from:"), Some(b"main".to_vec()));
    // The caller was charged the callee's fuel: the callee alone uses `alone`.
    let mut alone = TestHost::new(&rt);
    alone.deploy("main", &recorder());
    alone.input = b"hello".to_vec();
    alone.caller_contract = Some("main".to_string());
    let callee = alone.run(LIMIT);
    assert_eq!(callee.result, Ok(()));
    let mut without = TestHost::new(&rt);
    without.deploy("main", &forwarder("none"));
    without.input = b"hello".to_vec();
    let missing = without.run(LIMIT);
    // The same caller code either way; the return data it sets differs by length only
    // ("got:hello" and "NO_SUCH_CONTRACT none", 128 fuel a byte).
    let shorter = (missing.return_data.len() - out.return_data.len()) as u64;
    assert_eq!(shorter, 12);
    assert_eq!(
        out.fuel_used + 128 * shorter,
        missing.fuel_used + callee.fuel_used
    );
    // The callee was given all the fuel the caller had left.
    assert_eq!(host.fuel_given.len(), 1);
    assert_eq!(host.fuel_given[0], without.fuel_given[0]);
    assert!(host.fuel_given[0] > LIMIT - 20_000);
}

#[test]
fn a_failing_callee_returns_1_with_its_code_and_message_and_its_writes_are_discarded() {
    let rt = runtime();
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("bad"));
    host.deploy(
        "bad",
        &contract(
            r#"(data (i32.const 0) "k") (data (i32.const 8) "no funds")"#,
            "(call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)) (call $abort (i32.const 8) (i32.const 8))",
        ),
    );
    let out = host.run(LIMIT);
    assert_eq!(out.result, Ok(()));
    assert_eq!(
        out.return_data,
        b"\x01CONTRACT_ABORTED the contract aborted: no funds"
    );
    assert!(host.storage.is_empty(), "{:?}", host.storage);
    // A callee that runs out of fuel spends all the caller had: the caller then fails too.
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("spin"));
    host.deploy("spin", &contract("", "(loop (br 0))"));
    let out = host.run(100_000);
    assert_eq!(out.result, Err(RunError::FuelExhausted { limit: 100_000 }));
    assert_eq!(out.fuel_used, 100_000);
    // A host that charges more than the caller has left: the caller runs out of fuel.
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("rec"));
    host.deploy("rec", &recorder());
    host.overcharge = LIMIT;
    let out = host.run(LIMIT);
    assert_eq!(out.result, Err(RunError::FuelExhausted { limit: LIMIT }));
}

#[test]
fn nested_calls_reenter_the_runtime_down_to_the_depth_limit() {
    let rt = runtime();
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("main"));
    let out = host.run(LIMIT);
    assert_eq!(out.result, Ok(()));
    // Depths 0..=8 each called once; the ninth call was refused with CONTRACT_CALL_DEPTH, and
    // each level passed its callee's answer up behind its own.
    assert_eq!(host.fuel_given.len(), 9);
    let mut want = vec![0u8; 8];
    want.push(1);
    want.extend_from_slice(b"CONTRACT_CALL_DEPTH more than 8 nested contract calls");
    assert_eq!(out.return_data, want);
    assert!(codes::by_name("CONTRACT_CALL_DEPTH").is_some());
    // Each level was given what its caller had left, less the call's own cost.
    assert!(host.fuel_given.windows(2).all(|w| w[1] < w[0] - 10_000));
}

#[test]
fn an_unreadable_state_in_a_callee_stops_the_caller_too() {
    let rt = runtime();
    let mut host = TestHost::new(&rt);
    host.deploy("main", &forwarder("rec"));
    host.deploy(
        "rec",
        &contract(
            "",
            "(drop (call $storage_read (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)))",
        ),
    );
    host.state_broken = true;
    let out = host.run(LIMIT);
    assert!(
        matches!(&out.result, Err(e @ RunError::HostState { .. }) if e.is_infrastructure()),
        "{out:?}"
    );
}

#[test]
fn the_runtime_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    let rt = runtime();
    let src = contract(
        r#"(data (i32.const 0) "abc")"#,
        "(call $sm3 (i32.const 0) (i32.const 3) (i32.const 64)) (call $set_return (i32.const 64) (i32.const 32))",
    );
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut host = TestHost::new(&rt);
                    host.deploy("main", &src);
                    host.run(LIMIT)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(results.iter().all(|r| r == &results[0] && r.result.is_ok()));
    assert_eq!(rt.cache_stats().len, 1);
}
