//! Issue 14: WASM contracts in execution. Deployed only by governance (two organisations vote),
//! run with the transaction's fuel limit through the host API, every failure a `Failed`
//! receipt with the run's code and no write left behind, the same results on every executor.

use super::*;
use execution::StateRead;

/// A contract exercising the host API, dispatching on the first byte of the method name:
/// `i` increments the u64 (little-endian) under key `n`, emits `inc` with topic `n` and
/// returns the new value; `f` writes `x` then traps; `l` loops forever; `g` grows memory past
/// the page limit and traps when refused; `d` recurses without end; `b` writes a value over
/// the host's bound; `r` calls itself until the depth limit, aborting when a call fails; `c`
/// writes `x`, then calls `beta.f` (which writes and traps) and succeeds anyway; `a` aborts;
/// `q` returns `n`. `$extra` is spliced into the module (an upgrade's `migrate`).
fn probe(extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "gmchain" "input_read" (func $input_read (param i32)))
  (import "gmchain" "storage_read" (func $sread (param i32 i32 i32 i32) (result i32)))
  (import "gmchain" "storage_write" (func $swrite (param i32 i32 i32 i32)))
  (import "gmchain" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "gmchain" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "gmchain" "set_return" (func $set_return (param i32 i32)))
  (import "gmchain" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1 64)
  (data (i32.const 100) "n")
  (data (i32.const 104) "x")
  (data (i32.const 108) "m")
  (data (i32.const 120) "\00\00\00\01\00\00\00\01n")
  (data (i32.const 140) "inc")
  (data (i32.const 150) "beta")
  (data (i32.const 160) "\00\00\00\01f\00\00\00\00")
  (data (i32.const 180) "\00\00\00\01r\00\00\00\00")
  (data (i32.const 200) "alpha")
  (data (i32.const 210) "too deep")
  (data (i32.const 220) "\00\00\00\01i\00\00\00\00")
  (func $deep (call $deep))
  {extra}
  (func (export "call")
    (local $m i32)
    (call $input_read (i32.const 1024))
    (local.set $m (i32.load8_u (i32.const 1028)))
    (if (i32.eq (local.get $m) (i32.const 105)) (then
      (drop (call $sread (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8)))
      (i64.store (i32.const 300) (i64.add (i64.load (i32.const 300)) (i64.const 1)))
      (call $swrite (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8))
      (call $emit (i32.const 140) (i32.const 3) (i32.const 120) (i32.const 9) (i32.const 300) (i32.const 8))
      (call $set_return (i32.const 300) (i32.const 8))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 102)) (then
      (call $swrite (i32.const 104) (i32.const 1) (i32.const 100) (i32.const 1))
      (unreachable)))
    (if (i32.eq (local.get $m) (i32.const 108)) (then (loop $l (br $l))))
    (if (i32.eq (local.get $m) (i32.const 103)) (then
      (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then (unreachable)))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 100)) (then (call $deep) (return)))
    (if (i32.eq (local.get $m) (i32.const 98)) (then
      (call $swrite (i32.const 100) (i32.const 1) (i32.const 0) (i32.const 70000))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 114)) (then
      (if (call $call (i32.const 200) (i32.const 5) (i32.const 180) (i32.const 9)) (then
        (call $abort (i32.const 210) (i32.const 8))))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 99)) (then
      (call $swrite (i32.const 104) (i32.const 1) (i32.const 100) (i32.const 1))
      (drop (call $call (i32.const 150) (i32.const 4) (i32.const 160) (i32.const 9)))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 97)) (then (call $abort (i32.const 210) (i32.const 8))))
    (if (i32.eq (local.get $m) (i32.const 113)) (then
      (drop (call $sread (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8)))
      (call $set_return (i32.const 300) (i32.const 8))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 107)) (then
      (if (call $call (i32.const 150) (i32.const 4) (i32.const 220) (i32.const 9)) (then
        (call $abort (i32.const 210) (i32.const 8))))
      (return)))
    (call $abort (i32.const 1028) (i32.const 1)))
)"#
    ))
    .unwrap()
}

/// A `migrate` that writes `m` = "m" (an upgrade's proof that it ran).
const MIGRATE: &str = r#"(func (export "migrate")
    (call $swrite (i32.const 108) (i32.const 1) (i32.const 108) (i32.const 1)))"#;

/// A `migrate` that traps: the upgrade must fail and change nothing.
const BAD_MIGRATE: &str = r#"(func (export "migrate") (unreachable))"#;

/// A version 2 transaction (with a fuel limit) of `m` calling `contract.method`.
fn call_fuel(m: &Member, salt: u8, contract: &str, method: &str, fuel: u64) -> Vec<u8> {
    tx_fuel(m, salt, contract, method, Vec::new(), fuel)
}

/// A version 2 transaction of `m` calling `contract.method(args)` with `fuel`.
fn tx_fuel(
    m: &Member,
    salt: u8,
    contract: &str,
    method: &str,
    args: Vec<Vec<u8>>,
    fuel: u64,
) -> Vec<u8> {
    let body = Transaction {
        fuel_limit: Some(fuel),
        chain_id: ChainId::new(CHAIN).unwrap(),
        salt: [salt; 16],
        expiry: Height(50),
        sender: Sender::Certificate(m.cert.der().to_vec()),
        call: Call {
            contract: contract.into(),
            method: method.into(),
            args,
        },
    };
    SignedTx::sign(body, &m.key, &UserId::default())
        .unwrap()
        .to_bytes()
}

/// The fuel limit of the tests' proposals: a proposal carrying a module pays for its checks by
/// its size (a 128 KiB module of 10 000 functions about 13.2 M).
const PROPOSAL_FUEL: u64 = 20_000_000;

/// A governance proposal of `kind` by `m` (voting until 10 blocks on), as a version 2
/// transaction of [`PROPOSAL_FUEL`]; shadows the version 1 helper of the other tests.
fn propose_org(node: &Node, m: &Member, salt: u8, kind: &str, rest: Vec<Vec<u8>>) -> Vec<u8> {
    let mut args = vec![
        kind.as_bytes().to_vec(),
        (node.height + 10).to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
    ];
    args.extend(rest);
    tx_fuel(m, salt, "governance", "propose", args, PROPOSAL_FUEL)
}

/// A yes vote on `id` naming a fuel limit (for `init` or `migrate`, which run on the executing
/// vote's fuel).
fn yes_fuel(m: &Member, salt: u8, id: &Digest, fuel: u64) -> Vec<u8> {
    tx_fuel(
        m,
        salt,
        "governance",
        "vote",
        vec![id.0.to_vec(), b"yes".to_vec()],
        fuel,
    )
}

/// The consortium of the tests: the root organisation's admin and Agency A's.
struct Two {
    w: World,
    root_admin: Member,
    node: Node,
    salt: u8,
}

impl Two {
    fn new() -> Two {
        let w = world();
        let root_admin = w.pki.leaf(&w.pki.root, Role::Admin, "root-admin");
        let node = Node::new(&w.g);
        Two {
            w,
            root_admin,
            node,
            salt: 100,
        }
    }

    /// The same consortium with "GMChain Consortium" as the supervisor (policy `supervisor`);
    /// returns its auditor `regulator` too.
    fn supervised() -> (Two, Member) {
        let w = world();
        let regulator = w.pki.leaf(&w.pki.root, Role::Auditor, "regulator");
        let mut g: serde_json::Value = serde_json::from_str(&w.g.to_json()).unwrap();
        g["format"] = serde_json::json!(3);
        g["supervision"] = serde_json::json!({
            "supervisor": "GMChain Consortium",
            "freeze_policy": "supervisor"
        });
        let genesis = Genesis::from_json(g.to_string().as_bytes()).unwrap();
        let root_admin = w.pki.leaf(&w.pki.root, Role::Admin, "root-admin");
        let x = Two {
            node: Node::new(&genesis),
            w,
            root_admin,
            salt: 100,
        };
        (x, regulator)
    }

    /// A restart of the node: a fresh executor, its module cache empty.
    fn restart(&mut self) {
        self.node.executor = Executor::new(self.w.g.chain_id.clone(), &self.w.g.params);
    }

    fn salt(&mut self) -> u8 {
        self.salt = self.salt.wrapping_add(1);
        self.salt
    }

    /// Agency A's admin proposes the contract change `kind` with `rest`; returns the proposal.
    fn propose(&mut self, kind: &str, rest: Vec<Vec<u8>>) -> (Digest, Vec<Receipt>) {
        let salt = self.salt();
        let tx = propose_org(&self.node, &self.w.admin, salt, kind, rest);
        let id = proposal_of(&tx);
        let r = self.node.run(&[tx]);
        (id, r)
    }

    /// Proposes, then the root's admin votes yes with 50 M fuel: the change executes (or
    /// fails) in that vote.
    fn pass(&mut self, kind: &str, rest: Vec<Vec<u8>>) -> Receipt {
        let (id, r) = self.propose(kind, rest);
        assert_success(&r);
        let salt = self.salt();
        let vote = yes_fuel(&self.root_admin, salt, &id, 50_000_000);
        self.node.run(&[vote]).remove(0)
    }

    fn deploy(&mut self, name: &str, code: &[u8]) {
        let r = self.pass(
            "contract-deploy",
            vec![name.as_bytes().to_vec(), code.to_vec()],
        );
        assert_eq!(r.status, Status::Success, "{r:?}");
    }

    fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.node.view().read(key.as_bytes()).unwrap()
    }

    /// Runs one call of `alpha.method` by the user with `fuel`; returns its receipt.
    fn call(&mut self, contract: &str, method: &str, fuel: u64) -> Receipt {
        let salt = self.salt();
        let tx = call_fuel(&self.w.user, salt, contract, method, fuel);
        self.node.run(&[tx]).remove(0)
    }
}

fn run_code(r: &Receipt) -> (&'static str, String) {
    match &r.status {
        Status::Failed { code, message } => (
            codes::by_number(*code).map_or("unknown", |c| c.name),
            message.clone(),
        ),
        Status::Success => ("success", String::new()),
    }
}

#[test]
fn a_contract_runs_only_after_two_organisations_vote_its_deployment() {
    let mut x = Two::new();
    let code = probe("");
    // Proposed by one organisation: not deployed; a call is refused as unknown.
    let (id, r) = x.propose(
        "contract-deploy",
        vec![
            b"alpha".to_vec(),
            code[..100].to_vec(),
            code[100..].to_vec(),
        ],
    );
    assert_success(&r);
    assert!(
        execution::contract(&x.node.view(), "alpha")
            .unwrap()
            .is_none()
    );
    let salt = x.salt();
    let early = call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000);
    assert_eq!(code_of(x.node.admit(&early)), RejectCode::UnknownCall);
    // The module (sent in two arguments) is stored under its hash when proposed.
    let hash = sm3(&code);
    assert_eq!(
        execution::contract_code(&x.node.view(), &hash).unwrap(),
        Some(code.clone())
    );
    // A second vote of the proposing organisation is refused.
    let again = yes(&x.w.admin, 7, &id);
    assert_eq!(code_of(x.node.admit(&again)), RejectCode::BadArguments);
    // The second organisation's vote deploys it.
    let vote = yes(&x.root_admin, 8, &id);
    let r = x.node.run(&[vote]);
    assert_success(&r);
    assert!(r[0].events.iter().any(|e| e.name == "contract"));
    let c = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!((c.code_hash, c.version, c.frozen), (hash, 1, false));

    // Two calls: each a receipt with its fuel, output and event; the state holds the count.
    let one = x.call("alpha", "i", 1_000_000);
    let two = x.call("alpha", "i", 1_000_000);
    assert_eq!(one.status, Status::Success, "{one:?}");
    assert_eq!(one.output, 1u64.to_le_bytes());
    assert_eq!(two.output, 2u64.to_le_bytes());
    let fuel = one.fuel_used.unwrap();
    assert!(fuel > 0 && fuel < 1_000_000, "{fuel}");
    // The first call read an absent key, the others read 8 bytes (charged per byte).
    let three = x.call("alpha", "i", 1_000_000);
    assert!(two.fuel_used > one.fuel_used);
    assert_eq!(
        three.fuel_used, two.fuel_used,
        "the same path costs the same"
    );
    assert_eq!(one.events.len(), 1);
    let e = &one.events[0];
    assert_eq!(
        (e.contract.as_str(), e.name.as_str(), e.topics.clone()),
        ("wasm/alpha", "inc", vec![b"n".to_vec()])
    );
    assert_eq!(x.read("wasm/alpha/n"), Some(3u64.to_le_bytes().to_vec()));
    // Receipts are version 2 and decode back.
    let back = Receipt::from_bytes(&two.to_bytes(), &types::Limits::default()).unwrap();
    assert_eq!(back, two);
}

#[test]
fn hostile_contracts_fail_with_their_code_and_leave_no_write() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    let cases = [
        ("l", "CONTRACT_FUEL_EXHAUSTED"),
        ("g", "CONTRACT_TRAP"),
        ("d", "CONTRACT_STACK_EXHAUSTED"),
        ("b", "CONTRACT_HOST_BOUNDS"),
        ("f", "CONTRACT_TRAP"),
        ("r", "CONTRACT_ABORTED"),
        ("a", "CONTRACT_ABORTED"),
        ("z", "CONTRACT_ABORTED"),
    ];
    for (method, want) in cases {
        let r = x.call("alpha", method, 5_000_000);
        let (code, message) = run_code(&r);
        assert_eq!(code, want, "alpha.{method}: {message}");
        assert!(r.events.is_empty() && r.output.is_empty(), "{r:?}");
        // Nothing the call wrote is kept; only the signer's certificate may be recorded.
        assert_eq!(x.read("wasm/alpha/x"), None, "alpha.{method}");
    }
    // The endless loop used exactly its limit.
    let r = x.call("alpha", "l", 2_000_000);
    assert_eq!(r.fuel_used, Some(2_000_000));
    // The re-entry failed at the depth limit, reported through the contract's own abort.
    let r = x.call("alpha", "r", 50_000_000);
    let (code, message) = run_code(&r);
    assert_eq!(code, "CONTRACT_ABORTED");
    assert!(message.ends_with("too deep"), "{message}");
    // And the node goes on: the next call succeeds.
    let ok = x.call("alpha", "i", 1_000_000);
    assert_eq!(ok.status, Status::Success, "{ok:?}");
}

#[test]
fn a_callee_that_traps_after_writing_leaves_nothing_and_its_caller_goes_on() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    x.deploy("beta", &probe(""));
    let r = x.call("alpha", "c", 5_000_000);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(x.read("wasm/alpha/x"), Some(b"n".to_vec()));
    assert_eq!(
        x.read("wasm/beta/x"),
        None,
        "the failed callee's write was kept"
    );
    // The callee's fuel counts: more than a call that makes no nested call.
    let plain = x.call("alpha", "q", 5_000_000);
    assert!(r.fuel_used.unwrap() > plain.fuel_used.unwrap());
}

#[test]
fn admission_checks_the_fuel_limit_the_contract_and_the_role() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    // A version 1 transaction (no fuel limit) cannot call a WASM contract.
    let v1 = call(&x.w.user, 41, "alpha", "i", Vec::new());
    assert_eq!(code_of(x.node.admit(&v1)), RejectCode::FuelLimitMissing);
    // Above the chain's max_fuel_per_tx (default 10^8).
    let big = call_fuel(
        &x.w.user,
        42,
        "alpha",
        "i",
        execution::DEFAULT_MAX_FUEL_PER_TX + 1,
    );
    let r = x.node.admit(&big).unwrap_err();
    assert_eq!(r.code, RejectCode::FuelLimitTooHigh, "{r}");
    assert!(r.message.contains("100000000"), "{r}");
    // An auditor sends no transactions to contracts.
    let audit = call_fuel(&x.w.auditor, 43, "alpha", "i", 1_000_000);
    assert_eq!(code_of(x.node.admit(&audit)), RejectCode::PermissionDenied);
    // An unknown contract.
    let none = call_fuel(&x.w.user, 44, "gamma", "i", 1_000_000);
    assert_eq!(code_of(x.node.admit(&none)), RejectCode::UnknownCall);
    // A built-in call may name a fuel limit too; below its fixed cost it fails, charged nothing.
    let cheap = build_tx_fuel(&x.w.user, 45, 999);
    let r = x.node.run(&[cheap]).remove(0);
    assert_eq!(failed(&r), Some(FailureCode::CostExceeded), "{r:?}");
    assert_eq!(r.fuel_used, Some(0));
    let enough = build_tx_fuel(&x.w.user, 46, execution::BUILTIN_CALL_COST);
    let r = x.node.run(&[enough]).remove(0);
    assert_eq!(
        (r.status.clone(), r.fuel_used),
        (Status::Success, Some(execution::BUILTIN_CALL_COST))
    );
}

/// An `attestation.anchor` with a fuel limit.
fn build_tx_fuel(m: &Member, salt: u8, fuel: u64) -> Vec<u8> {
    let body = Transaction {
        fuel_limit: Some(fuel),
        chain_id: ChainId::new(CHAIN).unwrap(),
        salt: [salt; 16],
        expiry: Height(50),
        sender: Sender::Certificate(m.cert.der().to_vec()),
        call: Call {
            contract: "attestation".into(),
            method: "anchor".into(),
            args: anchor_args(&sm3(&[salt]), "doc"),
        },
    };
    SignedTx::sign(body, &m.key, &UserId::default())
        .unwrap()
        .to_bytes()
}

#[test]
fn a_frozen_contract_refuses_calls_until_unfrozen_and_an_upgrade_keeps_its_state() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    assert_eq!(x.call("alpha", "i", 1_000_000).status, Status::Success);
    // A transaction admitted before the freeze fails in execution after it.
    let salt = x.salt();
    let before = x
        .node
        .must_admit(&call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000));
    let r = x.pass("contract-freeze", vec![b"alpha".to_vec()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(
        code_of(x.node.recheck(&before).map(|()| before.clone())),
        RejectCode::ContractFrozen
    );
    let r = x.node.commit(std::slice::from_ref(&before)).remove(0);
    assert_eq!(failed(&r), Some(FailureCode::ContractFrozen), "{r:?}");
    let salt = x.salt();
    let tx = call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000);
    assert_eq!(code_of(x.node.admit(&tx)), RejectCode::ContractFrozen);
    // Freezing twice is refused when proposed.
    let salt = x.salt();
    let twice = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-freeze",
        vec![b"alpha".to_vec()],
    );
    let e = x.node.admit(&twice).unwrap_err();
    assert!(e.message.contains("already frozen"), "{e}");
    let r = x.pass("contract-unfreeze", vec![b"alpha".to_vec()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(x.call("alpha", "i", 1_000_000).output, 2u64.to_le_bytes());

    // An upgrade whose migrate traps fails the vote: the old code and state stay.
    let bad = probe(BAD_MIGRATE);
    let r = x.pass("contract-upgrade", vec![b"alpha".to_vec(), bad.clone()]);
    assert_eq!(run_code(&r).0, "CONTRACT_TRAP", "{r:?}");
    let c = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!((c.version, c.code_hash), (1, sm3(&probe(""))));
    // An upgrade with a working migrate: version 2, migrate ran, the count kept.
    let good = probe(MIGRATE);
    let r = x.pass("contract-upgrade", vec![b"alpha".to_vec(), good.clone()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    let c = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!((c.version, c.code_hash), (2, sm3(&good)));
    assert_eq!(x.read("wasm/alpha/m"), Some(b"m".to_vec()));
    assert_eq!(x.call("alpha", "i", 1_000_000).output, 3u64.to_le_bytes());
}

#[test]
fn deployments_are_refused_with_the_module_rule_and_the_name_rule() {
    let mut x = Two::new();
    let float = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "call") (drop (f32.add (f32.const 1) (f32.const 2)))))"#,
    )
    .unwrap();
    let import = wat::parse_str(
        r#"(module (import "env" "clock" (func)) (memory (export "memory") 1)
            (func (export "call")))"#,
    )
    .unwrap();
    for (name, code, want) in [
        ("alpha", float, "CONTRACT_FLOAT"),
        ("alpha", import, "CONTRACT_IMPORT_NOT_ALLOWED"),
        ("alpha", b"not wasm".to_vec(), "CONTRACT_INVALID_WASM"),
        ("identity", probe(""), "reserved"),
        ("Alpha", probe(""), "is not 1 to 32"),
    ] {
        let salt = x.salt();
        let tx = propose_org(
            &x.node,
            &x.w.admin,
            salt,
            "contract-deploy",
            vec![name.as_bytes().to_vec(), code],
        );
        let e = x.node.admit(&tx).unwrap_err();
        assert_eq!(e.code, RejectCode::BadArguments, "{e}");
        assert!(e.message.contains(want), "{name}: {e}");
    }
    // A name already deployed.
    x.deploy("alpha", &probe(""));
    let salt = x.salt();
    let tx = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-deploy",
        vec![b"alpha".to_vec(), probe(MIGRATE)],
    );
    let e = x.node.admit(&tx).unwrap_err();
    assert!(e.message.contains("already deployed"), "{e}");
}

#[test]
fn two_executors_give_the_same_roots_receipts_and_fuel() {
    let mut x = Two::new();
    let mut other = Node::new(&x.w.g);
    let mut blocks: Vec<Vec<VerifiedTx>> = Vec::new();
    let mut run = |x: &mut Two, txs: Vec<Vec<u8>>| -> Vec<Receipt> {
        let v: Vec<VerifiedTx> = txs.iter().map(|b| x.node.must_admit(b)).collect();
        blocks.push(v.clone());
        x.node.commit(&v)
    };
    let code = probe("");
    let p = propose_org(
        &x.node,
        &x.w.admin,
        1,
        "contract-deploy",
        vec![b"alpha".to_vec(), code],
    );
    let id = proposal_of(&p);
    run(&mut x, vec![p]);
    let v = yes(&x.root_admin, 2, &id);
    run(&mut x, vec![v]);
    let calls: Vec<Vec<u8>> = ["i", "l", "i", "f", "r", "q"]
        .iter()
        .enumerate()
        .map(|(i, m)| call_fuel(&x.w.user, 10 + i as u8, "alpha", m, 3_000_000))
        .collect();
    let mine = run(&mut x, calls);
    // The other executor, a cold runtime with its own module cache, runs the same blocks.
    let mut theirs = Vec::new();
    for b in &blocks {
        theirs = other.commit(b);
    }
    assert_eq!(other.root, x.node.root);
    assert_eq!(theirs, mine);
    assert!(mine.iter().all(|r| r.fuel_used.is_some()));
}

#[test]
fn a_block_naming_more_fuel_than_the_chain_allows_is_refused_whole() {
    let x = Two::new();
    let txs: Vec<VerifiedTx> = (0..21)
        .map(|i| {
            x.node.must_admit(&build_tx_fuel(
                &x.w.user,
                i,
                execution::DEFAULT_MAX_FUEL_PER_TX,
            ))
        })
        .collect();
    let err = x
        .node
        .executor
        .execute_block(&x.node.store, x.node.root, &x.node.block_ctx(), &txs)
        .unwrap_err();
    assert!(
        matches!(
            err,
            execution::ExecError::FuelBudget {
                total: 2_100_000_000,
                max: 2_000_000_000
            }
        ),
        "{err}"
    );
    // Twenty fit.
    x.node
        .executor
        .execute_block(&x.node.store, x.node.root, &x.node.block_ctx(), &txs[..20])
        .unwrap();
}

#[test]
fn a_query_reads_without_a_transaction_and_may_not_write() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    assert_eq!(x.call("alpha", "i", 1_000_000).status, Status::Success);
    let caller = execution::SignerInfo {
        cert_id: x.w.auditor.id(),
        organisation: "Agency A".into(),
        common_name: "audit".into(),
        role: Role::Auditor,
    };
    let q = |x: &Two, method: &str| {
        x.node.executor.query(
            &x.node.store,
            x.node.root,
            &x.node.block_ctx(),
            &caller,
            "alpha",
            method,
            &[],
            1_000_000,
        )
    };
    let a = q(&x, "q").unwrap();
    assert_eq!(a.output, 1u64.to_le_bytes());
    assert!(a.fuel_used > 0);
    // A query that writes fails with CONTRACT_READ_ONLY, and the state is unchanged.
    let root = x.node.root;
    match q(&x, "i") {
        Err(execution::ContractError::Run { code, message }) => {
            assert_eq!(code.name, "CONTRACT_READ_ONLY", "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(x.node.root, root);
    // A frozen contract still answers queries; an unknown one does not.
    x.pass("contract-freeze", vec![b"alpha".to_vec()]);
    assert_eq!(q(&x, "q").unwrap().output, 1u64.to_le_bytes());
    let unknown = x.node.executor.query(
        &x.node.store,
        x.node.root,
        &x.node.block_ctx(),
        &caller,
        "gamma",
        "q",
        &[],
        1_000,
    );
    assert!(unknown.is_err());
    // The executor's module cache was used: the same code hit after its first compile.
    let stats = x.node.executor.module_cache();
    assert!(stats.hits > 0 && stats.len >= 1, "{stats:?}");
}

// Review findings (issue 14 hostile review). Each test states what the code should do and
// fails on the current code; it is ignored so the branch stays green.

/// An `init` that counts down from 4 000 000 (about 5 fuel per iteration: 20 M fuel) and
/// returns: it succeeds within `max_fuel_per_tx` (10^8).
const BURNING_INIT: &str = r#"(func (export "init") (local $i i32)
    (local.set $i (i32.const 4000000))
    (loop $l
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $l (local.get $i))))"#;

/// Review finding 1 (fixed): `init` and `migrate` run on the executing vote's own fuel, which
/// its receipt reports and the block's fuel budget counts. The reviewer's case had a version 1
/// vote (counted 1 000) run a 20 M-fuel `init`: such a vote now has no fuel for it.
#[test]
fn review_init_fuel_counts_in_the_vote_that_runs_it() {
    let mut x = Two::new();
    // A version 1 vote (1 000 fuel, all of it the vote's own cost): the init cannot run, the
    // deployment fails and nothing is deployed; the receipt names the fuel and what to do.
    let (id, r) = x.propose(
        "contract-deploy",
        vec![b"burner".to_vec(), probe(BURNING_INIT)],
    );
    assert_success(&r);
    let r = x.node.run(&[yes(&x.root_admin, 9, &id)]).remove(0);
    let (code, message) = run_code(&r);
    assert_eq!(code, "CONTRACT_FUEL_EXHAUSTED", "{message}");
    assert!(message.contains("vote with a fuel limit"), "{message}");
    assert_eq!(r.fuel_used, Some(execution::BUILTIN_CALL_COST));
    assert!(
        execution::contract(&x.node.view(), "burner")
            .unwrap()
            .is_none()
    );
    // A vote naming 50 M fuel runs it: its receipt reports init's ~20 M.
    let r = x
        .node
        .run(&[yes_fuel(&x.root_admin, 10, &id, 50_000_000)])
        .remove(0);
    assert_eq!(r.status, Status::Success, "{r:?}");
    let used = r.fuel_used.unwrap();
    assert!(
        (20_000_000..50_000_000).contains(&used),
        "the vote ran init's ~20 M fuel but its receipt reports {used}"
    );
    // A deployment without init needs no fuel beyond the vote's own.
    let (id, r) = x.propose("contract-deploy", vec![b"plain".to_vec(), probe("")]);
    assert_success(&r);
    let r = x.node.run(&[yes(&x.root_admin, 11, &id)]).remove(0);
    assert_eq!(r.status, Status::Success, "{r:?}");
}

/// Review finding 2 (fixed): admission refuses a call naming less than MIN_CALL_FUEL, so no
/// call that cannot pay for loading a module makes a node load it; each admitted call counts
/// its limit (at least MIN_CALL_FUEL) in the block's budget.
#[test]
fn review_a_call_that_cannot_pay_does_not_compile_the_module() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    x.restart();
    let before = x.node.executor.module_cache();
    for fuel in [0, execution::MIN_CALL_FUEL - 1] {
        let salt = x.salt();
        let tx = call_fuel(&x.w.user, salt, "alpha", "i", fuel);
        let r = x.node.admit(&tx).unwrap_err();
        assert_eq!(r.code, RejectCode::FuelLimitTooLow, "{r}");
        assert!(r.message.contains("10000"), "{r}");
    }
    assert_eq!(
        x.node.executor.module_cache(),
        before,
        "admission loaded the module"
    );
    let ok = x.call("alpha", "q", execution::MIN_CALL_FUEL * 10);
    assert_eq!(ok.status, Status::Success, "{ok:?}");
}

/// Review finding 3 (fixed for rejection): a proposal's module is counted as referenced while
/// the proposal is open and by the contract it deploys; a rejection drops its reference, and
/// the last reference takes the module. (The module of a proposal that expires undecided stays:
/// nothing runs when a deadline passes.)
#[test]
fn review_the_code_of_a_rejected_deployment_is_not_kept() {
    let mut x = Two::new();
    let code = probe(MIGRATE);
    let (id, r) = x.propose("contract-deploy", vec![b"alpha".to_vec(), code.clone()]);
    assert_success(&r);
    // The other organisation votes no: with two organisations the majority is 2, so the
    // proposal is rejected.
    let salt = x.salt();
    let no = call(
        &x.root_admin,
        salt,
        "governance",
        "vote",
        vec![id.0.to_vec(), b"no".to_vec()],
    );
    assert_success(&x.node.run(&[no]));
    let p = execution::read_proposal(&x.node.view(), &id)
        .unwrap()
        .unwrap();
    assert!(
        matches!(p.status, execution::ProposalStatus::Rejected(_)),
        "{:?}",
        p.status
    );
    let kept = execution::contract_code(&x.node.view(), &sm3(&code)).unwrap();
    assert!(
        kept.is_none(),
        "the {} bytes of a rejected proposal's module stay in the state for ever",
        kept.map_or(0, |c| c.len())
    );
}

/// Review finding 4 (fixed): a contract change is made against the contract's last change
/// (`since`); when executed after another change it fails, so a stale upgrade or unfreeze
/// cannot undo a later one.
#[test]
fn review_a_stale_upgrade_does_not_replace_a_later_one() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    // Two upgrades proposed against version 1: to B, and to C (say, C fixes a flaw in B).
    let b = probe(MIGRATE);
    let c = probe(r#"(func (export "migrate"))"#);
    let (to_b, r) = x.propose("contract-upgrade", vec![b"alpha".to_vec(), b.clone()]);
    assert_success(&r);
    let (to_c, r) = x.propose("contract-upgrade", vec![b"alpha".to_vec(), c.clone()]);
    assert_success(&r);
    let salt = x.salt();
    assert_success(
        &x.node
            .run(&[yes_fuel(&x.root_admin, salt, &to_c, 50_000_000)]),
    );
    let now = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!((now.version, now.code_hash), (2, sm3(&c)));
    // A late vote on the stale proposal: it still executes, replacing C by B and running
    // B's migrate (written for version 1's state) on version 2's state.
    let salt = x.salt();
    let r = x
        .node
        .run(&[yes_fuel(&x.root_admin, salt, &to_b, 50_000_000)])
        .remove(0);
    let after = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!(
        after.code_hash,
        sm3(&c),
        "a proposal voted for version 1 replaced version 2: {r:?}"
    );
    let (code, message) = run_code(&r);
    assert_eq!(code, "GOVERNANCE_CONTRACT_INVALID", "{message}");
    assert!(message.contains("propose again"), "{message}");
    // The same holds for freeze and unfreeze: an unfreeze proposed while frozen, then a
    // re-freeze after an unfreeze, and the stale unfreeze no longer applies.
    let r = x.pass("contract-freeze", vec![b"alpha".to_vec()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    let (stale, r) = x.propose("contract-unfreeze", vec![b"alpha".to_vec()]);
    assert_success(&r);
    assert_eq!(
        x.pass("contract-unfreeze", vec![b"alpha".to_vec()]).status,
        Status::Success
    );
    assert_eq!(
        x.pass("contract-freeze", vec![b"alpha".to_vec()]).status,
        Status::Success
    );
    let salt = x.salt();
    let r = x.node.run(&[yes(&x.root_admin, salt, &stale)]).remove(0);
    assert_eq!(run_code(&r).0, "GOVERNANCE_CONTRACT_INVALID", "{r:?}");
    assert!(
        execution::contract(&x.node.view(), "alpha")
            .unwrap()
            .unwrap()
            .frozen
    );
}

/// Review finding 9 (fixed in the fuel table): bytes every node keeps (events, output, state)
/// cost 128 fuel each, so a block's fuel budget buys at most about a block's size of receipts.
#[test]
fn review_the_receipts_a_block_can_buy_stay_within_a_block_size() {
    let mut x = Two::new();
    // Emits 32 events of 16 384 bytes of data (the most) each: about 67 M fuel at 128 per
    // stored byte (64 such events would need more than max_fuel_per_tx).
    let emitter = wat::parse_str(
        r#"(module
  (import "gmchain" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "e")
  (func (export "call") (local $i i32)
    (local.set $i (i32.const 32))
    (loop $l
      (call $emit (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 4) (i32.const 16) (i32.const 16384))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $l (local.get $i)))))"#,
    )
    .unwrap();
    x.deploy("emitter", &emitter);
    let r = x.call("emitter", "go", execution::DEFAULT_MAX_FUEL_PER_TX);
    assert_eq!(r.status, Status::Success, "{r:?}");
    let fuel = r.fuel_used.unwrap();
    let bytes = r.to_bytes().len() as u64;
    // What one block's fuel budget buys: this transaction, as often as the budget allows.
    let per_block = execution::DEFAULT_MAX_FUEL_PER_BLOCK / fuel * bytes;
    let max_block = types::Limits::default().max_block_size as u64;
    assert!(
        per_block <= max_block,
        "one transaction's {fuel} fuel buys a receipt of {bytes} bytes: a block within its fuel \
         budget writes {per_block} bytes of receipts every node keeps ({}x max_block_size)",
        per_block / max_block
    );
}

// Second review (review2). Each test fails on the current code and is ignored so the branch
// stays green; the ignore reason names the finding.

/// Review2 finding 1: `since` is a block height, so it cannot tell apart two changes of one
/// contract executed in the same block. An upgrade proposed in a block after one change and
/// before another of that block records the same `since` as the last change, and a late vote
/// on it replaces the later upgrade (the stale-change protection of finding 4 is bypassed).
/// Here the later change of the block executes at its proposal because a policy change of the
/// same block lets one organisation pass contract changes; every transaction of the block is
/// admissible at its parent's state.
#[test]
// Review2 finding 1 (fixed): since is a height; changes in one block share it, a stale upgrade still executes.
fn review2_a_stale_upgrade_proposed_in_the_same_block_does_not_execute() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    let (b, c, d) = (probe("(func $b)"), probe("(func $c)"), probe("(func $d)"));
    // Open before the block: an upgrade to B, and a policy change letting one organisation
    // pass contract changes.
    let (to_b, r) = x.propose("contract-upgrade", vec![b"alpha".to_vec(), b.clone()]);
    assert_success(&r);
    let (one_org, r) = x.propose(
        "policy",
        vec![b"contracts".to_vec(), b"at-least:1".to_vec()],
    );
    assert_success(&r);
    // One block: the upgrade to B passes; an upgrade to D is proposed (against B, still needing
    // a majority: it stays open); the policy passes; an upgrade to C passes at its proposal.
    let mut next = x.salt;
    let mut salt = || {
        next = next.wrapping_add(1);
        next
    };
    let to_d = propose_org(
        &x.node,
        &x.w.admin,
        salt(),
        "contract-upgrade",
        vec![b"alpha".to_vec(), d.clone()],
    );
    let stale = proposal_of(&to_d);
    let txs = vec![
        yes(&x.root_admin, salt(), &to_b),
        to_d,
        yes(&x.root_admin, salt(), &one_org),
        propose_org(
            &x.node,
            &x.w.admin,
            salt(),
            "contract-upgrade",
            vec![b"alpha".to_vec(), c.clone()],
        ),
    ];
    x.salt = next;
    assert_success(&x.node.run(&txs));
    let now = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!((now.version, now.code_hash), (3, sm3(&c)), "{now:?}");
    // A later vote on the upgrade to D, proposed against version 2: it must not replace
    // version 3.
    let salt = x.salt();
    let r = x.node.run(&[yes(&x.root_admin, salt, &stale)]).remove(0);
    let after = execution::contract(&x.node.view(), "alpha")
        .unwrap()
        .unwrap();
    assert_eq!(
        after.code_hash,
        sm3(&c),
        "an upgrade proposed against version 2 replaced version 3 (both changes at height {}): {r:?}",
        now.updated.0
    );
}

/// Review2 finding 4: genesis refuses `max_fuel_per_tx` above `max_fuel_per_block` ("no block
/// could hold such a transaction"), but a parameter change is checked value by value and the
/// merged result is not: governance can put the chain in the state genesis refuses. Admission
/// then takes the smaller value, but `QueryContract` (crates/node/src/service.rs) lets a query
/// run `max_fuel_per_tx` (here 10^8 fuel where a whole block may spend 10 000), and a genesis
/// file of the chain's parameters in force would be refused.
#[test]
// Review2 finding 4 (fixed): a params change may leave max_fuel_per_tx above max_fuel_per_block, which genesis refuses.
fn review2_a_params_change_keeps_max_fuel_per_tx_within_max_fuel_per_block() {
    let x = Two::new();
    // Only max_fuel_per_block = 10 000: the merged parameters would put max_fuel_per_tx (10^8)
    // above it. The proposal is refused when proposed, naming both values.
    let mut args = params_args(5, 7, [vec![], vec![], vec![]]);
    args.push(Vec::new());
    args.push(10_000u64.to_be_bytes().to_vec());
    let propose = call(&x.w.admin, 77, "governance", "propose", args);
    let e = x.node.admit(&propose).unwrap_err();
    assert_eq!(e.code, RejectCode::BadArguments, "{e}");
    assert!(
        e.message
            .contains("max_fuel_per_tx 100000000 above max_fuel_per_block 10000"),
        "{e}"
    );
    let p = execution::params_in_force(&x.node.view()).unwrap().params;
    assert!(p.max_fuel_per_tx <= p.max_fuel_per_block);
}

/// Review2 finding 5: a vote that would execute a deployment or upgrade validates (compiles,
/// with a throwaway engine) the whole module to learn whether it exports `init`/`migrate`, and
/// on a cache miss validates and compiles it again, before any of its fuel is charged; a
/// version 1 vote (1 000 fuel) then fails for want of fuel, is not recorded, and the same admin
/// may send it again, block after block (up to max_txs_per_block of them each). The work grows
/// with the module's size, the fuel does not. Fixed: a failing vote never loads the module
/// (the executor's module cache counts no hit and no miss for it), on a 75-byte module and on a
/// 110 KiB one alike; the votes' times are printed for comparison.
#[test]
// Review2 finding 5 (fixed): a failing executing vote compiles the module uncharged and can be repeated; its fuel does not grow with the module.
fn review2_a_failing_executing_vote_pays_for_the_module_it_compiles() {
    /// Proposes `code` as contract `name`, then sends 30 version 1 yes votes in one block: the
    /// time per vote and the fuel each paid.
    fn votes_on(x: &mut Two, name: &str, code: &[u8]) -> (std::time::Duration, u64) {
        let mut rest = vec![name.as_bytes().to_vec()];
        rest.extend(code.chunks(60_000).map(<[u8]>::to_vec));
        let (id, r) = x.propose("contract-deploy", rest);
        assert_success(&r);
        const VOTES: u32 = 30;
        let votes: Vec<Vec<u8>> = (0..VOTES)
            .map(|_| {
                let salt = x.salt();
                yes(&x.root_admin, salt, &id)
            })
            .collect();
        let cache = x.node.executor.module_cache();
        let started = std::time::Instant::now();
        let receipts = x.node.run(&votes);
        let per_vote = started.elapsed() / VOTES;
        for r in &receipts {
            assert_eq!(run_code(r).0, "CONTRACT_FUEL_EXHAUSTED", "{r:?}");
        }
        // The mechanism, free of timing noise: no failing vote loaded (or compiled) the module.
        let after = x.node.executor.module_cache();
        assert_eq!(
            (after.hits, after.misses),
            (cache.hits, cache.misses),
            "failing votes on {name} loaded its module"
        );
        (per_vote, receipts[0].fuel_used.unwrap())
    }
    let module = |reps: usize| {
        let mut src = String::from(
            r#"(module (memory (export "memory") 1) (func (export "call")) (func (export "init")) (func (param i32 i32) "#,
        );
        for _ in 0..reps {
            src.push_str("(local.set 0 (i32.add (local.get 0) (local.get 1)))");
        }
        src.push_str("))");
        wat::parse_str(&src).unwrap()
    };
    let mut x = Two::new();
    let (small, big) = (module(1), module(16_000));
    let (small_time, small_fuel) = votes_on(&mut x, "small", &small);
    let (big_time, big_fuel) = votes_on(&mut x, "big", &big);
    eprintln!(
        "a failing vote: {small_time:?} and {small_fuel} fuel on {} bytes, {big_time:?} and \
         {big_fuel} fuel on {} bytes",
        small.len(),
        big.len()
    );
    // The cache assertions in `votes_on` are the check: no failing vote loads or compiles the
    // module. What a failing vote still does with the module's size is read it from the state
    // (unmetered reads, as every read); the times above are reported, not asserted: a timed
    // assertion failed here under a parallel benchmark (817 µs against 441 µs with 0 fuel
    // more, the module never loaded).
}

/// A module of about `size` bytes, distinct for each `tag`: one page per 64 KiB of a data
/// segment holding `tag` and filler, and an empty `call`.
fn data_module(tag: usize, size: usize) -> Vec<u8> {
    let pages = size.div_ceil(65_536).max(1);
    let filler = "a".repeat(size.saturating_sub(100));
    wat::parse_str(format!(
        r#"(module (memory (export "memory") {pages}) (data (i32.const 0) "{tag:08}{filler}") (func (export "call")))"#
    ))
    .unwrap()
}

impl Two {
    /// Proposes each `(name, code)` deployment (at most MAX_OPEN_MODULE_PROPOSALS), the
    /// proposals in one block, then the root's admin votes yes on each in the next: every
    /// deployment executes in that block.
    fn deploy_all(&mut self, modules: &[(String, Vec<u8>)]) {
        let proposals: Vec<Vec<u8>> = modules
            .iter()
            .map(|(name, code)| {
                let mut rest = vec![name.as_bytes().to_vec()];
                rest.extend(code.chunks(60_000).map(<[u8]>::to_vec));
                let salt = self.salt();
                propose_org(&self.node, &self.w.admin, salt, "contract-deploy", rest)
            })
            .collect();
        assert_success(&self.node.run(&proposals));
        let votes: Vec<Vec<u8>> = proposals
            .iter()
            .map(|p| {
                let salt = self.salt();
                yes_fuel(&self.root_admin, salt, &proposal_of(p), 10_000_000)
            })
            .collect();
        assert_success(&self.node.run(&votes));
    }
}

/// Review2 finding 3 (fixed): a cache miss compiles a module and charges nothing, so calls
/// rotating over more deployed contracts than the node's cache held (64 modules) made every
/// validator compile a module on every call. Every node now keeps all the code deployed
/// contracts run compiled (the chain caps it at MAX_DEPLOYED_CODE_BYTES): a rotation over 70
/// contracts compiles each module once, however often it goes round.
#[test]
fn review2_calls_rotating_over_many_contracts_compile_each_module_once() {
    let mut x = Two::new();
    const CONTRACTS: usize = 70;
    let modules: Vec<(String, Vec<u8>)> = (0..CONTRACTS)
        .map(|i| {
            let extra = format!("(func (export \"v{i}\"))");
            (format!("c{i:02}"), probe(&extra))
        })
        .collect();
    for batch in modules.chunks(execution::MAX_OPEN_MODULE_PROPOSALS) {
        x.deploy_all(batch);
    }
    let round = |x: &mut Two| {
        let calls: Vec<Vec<u8>> = modules
            .iter()
            .map(|(name, _)| {
                let salt = x.salt();
                call_fuel(&x.w.user, salt, name, "i", 1_000_000)
            })
            .collect();
        assert_success(&x.node.run(&calls));
    };
    x.restart();
    round(&mut x);
    let first = x.node.executor.module_cache();
    assert_eq!(first.misses, CONTRACTS as u64, "{first:?}");
    for _ in 0..3 {
        round(&mut x);
    }
    let after = x.node.executor.module_cache();
    assert_eq!(
        after.misses, first.misses,
        "calls rotating over {CONTRACTS} contracts compiled again: {after:?}"
    );
    assert_eq!(after.hits, first.hits + 3 * CONTRACTS as u64, "{after:?}");
    assert_eq!(after.engine_renewals, 0);
}

/// The deployed code is capped at MAX_DEPLOYED_CODE_BYTES (every node keeps all of it
/// compiled): a deployment past it is refused when proposed, naming the sizes; an upgrade to
/// smaller code frees room, and the replaced module no longer counts.
#[test]
fn deployed_code_is_capped_and_an_upgrade_frees_the_room_of_the_code_it_replaces() {
    let mut x = Two::new();
    const SIZE: usize = 120_000;
    let cap = execution::MAX_DEPLOYED_CODE_BYTES as usize;
    let modules: Vec<(String, Vec<u8>)> = (0..cap / SIZE + 1)
        .map(|i| (format!("big{i:03}"), data_module(i, SIZE)))
        .collect();
    let fit = {
        let mut total = 0;
        modules
            .iter()
            .take_while(|(_, code)| {
                total += code.len();
                total <= cap
            })
            .count()
    };
    assert!(fit < modules.len(), "the modules must overflow the cap");
    for batch in modules[..fit].chunks(execution::MAX_OPEN_MODULE_PROPOSALS) {
        x.deploy_all(batch);
    }
    let deployed: usize = modules[..fit].iter().map(|(_, c)| c.len()).sum();
    assert_eq!(
        execution::deployed_code_bytes(&x.node.view()).unwrap(),
        deployed as u64
    );
    // One more is refused when proposed, with the code and the sizes.
    let (name, code) = &modules[fit];
    let mut rest = vec![name.as_bytes().to_vec()];
    rest.extend(code.chunks(60_000).map(<[u8]>::to_vec));
    let salt = x.salt();
    let tx = propose_org(&x.node, &x.w.admin, salt, "contract-deploy", rest.clone());
    let refusal = x.node.admit(&tx).unwrap_err();
    assert_eq!(refusal.code, RejectCode::BadArguments, "{refusal}");
    assert!(
        refusal.message.contains(&deployed.to_string())
            && refusal.message.contains(&cap.to_string()),
        "{refusal}"
    );
    // A contract upgraded to the small probe frees its old module's bytes.
    let upgrade = x.pass("contract-upgrade", vec![b"big000".to_vec(), probe("")]);
    assert_eq!(upgrade.status, Status::Success, "{upgrade:?}");
    let now = deployed - modules[0].1.len() + probe("").len();
    assert_eq!(
        execution::deployed_code_bytes(&x.node.view()).unwrap(),
        now as u64
    );
    x.deploy_all(&modules[fit..fit + 1]);
    assert_eq!(
        execution::deployed_code_bytes(&x.node.view()).unwrap(),
        (now + code.len()) as u64
    );
    // A second contract running code already deployed adds nothing.
    x.deploy_all(&[("again".to_string(), probe(""))]);
    assert_eq!(
        execution::deployed_code_bytes(&x.node.view()).unwrap(),
        (now + code.len()) as u64
    );
}

// Sixth review (review6): the module cache and the cap on deployed code. Each test fails on
// the current code and is ignored so the branch stays green; the ignore reason names the
// finding.

/// Review6 finding 2: a transaction must name MIN_CALL_FUEL before a node loads a module
/// (`review_a_call_that_cannot_pay_does_not_compile_the_module`), but a query of 0 fuel loads
/// and compiles it (unpaid, on the RPC's blocking threads), then fails for want of fuel: the
/// free vector of finding 1 (concurrent misses). A query that cannot pay for starting a module
/// must not load it.
#[test]
// Review6 finding 2 (fixed): a query below MIN_CALL_FUEL fails before loading the module.
fn review6_a_query_that_cannot_pay_does_not_compile_the_module() {
    let mut x = Two::new();
    x.deploy("alpha", &probe(""));
    x.restart();
    let before = x.node.executor.module_cache();
    let caller = execution::SignerInfo {
        cert_id: x.w.user.id(),
        organisation: "Agency A".into(),
        common_name: "user".into(),
        role: Role::User,
    };
    let answer = x.node.executor.query(
        &x.node.store,
        x.node.root,
        &x.node.block_ctx(),
        &caller,
        "alpha",
        "q",
        &[],
        0,
    );
    assert!(answer.is_err(), "a query of 0 fuel answered: {answer:?}");
    let after = x.node.executor.module_cache();
    assert_eq!(
        after, before,
        "a query of 0 fuel loaded the module (it failed with {answer:?})"
    );
}

/// Review6 finding 3: the room check of a deployment or upgrade adds the new module to the
/// deployed code before the upgrade's old module leaves it (at proposal and at execution), so
/// once the deployed code is within one module's size of MAX_DEPLOYED_CODE_BYTES no contract
/// can be upgraded to new code at all, not even to smaller code (a security fix), although
/// the refusal says "upgrade a contract to smaller code first". An upgrade that leaves the
/// deployed code within the cap must be accepted.
#[test]
// Review6 finding 3 (fixed): the room check counts off the module an upgrade replaces.
fn review6_an_upgrade_to_smaller_code_is_accepted_at_the_cap() {
    let mut x = Two::new();
    const SIZE: usize = 120_000;
    let cap = execution::MAX_DEPLOYED_CODE_BYTES as usize;
    let mut modules: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0;
    for i in 0.. {
        let code = data_module(i, SIZE);
        if total + code.len() > cap {
            break;
        }
        total += code.len();
        modules.push((format!("big{i:03}"), code));
    }
    // A last module filling the cap to within a few bytes: a smaller size until it fits.
    let slack = cap - total;
    let mut size = slack;
    let filler = loop {
        let code = data_module(999, size);
        if code.len() <= slack {
            break code;
        }
        size -= code.len() - slack;
    };
    total += filler.len();
    modules.push(("filler".to_string(), filler));
    for batch in modules.chunks(execution::MAX_OPEN_MODULE_PROPOSALS) {
        x.deploy_all(batch);
    }
    assert_eq!(
        execution::deployed_code_bytes(&x.node.view()).unwrap(),
        total as u64
    );
    // big000 (~120 KB) upgraded to the probe (under 1 KB): the deployed code shrinks by ~119 KB.
    let fix = probe("");
    assert!(
        cap - total < fix.len(),
        "the cap must be within {} bytes",
        fix.len()
    );
    let after = total - modules[0].1.len() + fix.len();
    assert!(after < cap);
    let salt = x.salt();
    let tx = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-upgrade",
        vec![b"big000".to_vec(), fix.clone()],
    );
    let admitted = x.node.admit(&tx);
    assert!(
        admitted.is_ok(),
        "an upgrade of big000 to {} bytes (leaving {after} of the cap's {cap} bytes) is refused: {:?}",
        fix.len(),
        admitted.err().map(|r| r.to_string())
    );
}

/// Review6 finding 4: a proposal's module is validated, including a compile by a throwaway
/// engine, at admission (`check_args` and `authorize`) and again in the block (`check_args`,
/// `authorize`, `propose`): five parses, three wasmparser passes, a Debug rendering of every
/// operator and a compile each, for a flat BUILTIN_CALL_COST (1 000 fuel). The check is
/// deterministic (it does not depend on a cache), so it can be charged; one organisation's
/// admin may send max_txs_per_block such proposals a block, each open proposal holding its
/// module. The work grows with the module's size, the fuel must too: compared with the same
/// proposals of a small module, the extra time per proposal of a ~110 KB module must be paid at
/// the calibrated 1.4 ns per fuel (10x margin).
#[test]
// Review6 finding 4 (fixed): a proposal pays contracts::fuel::module_check for its module.
fn review6_a_proposal_pays_for_validating_its_module() {
    // Eight proposals of each organisation (the most it may have open).
    fn proposals_of(x: &mut Two, root: bool, tag: &str, code: &[u8]) -> (std::time::Duration, u64) {
        const PROPOSALS: usize = 8;
        let txs: Vec<Vec<u8>> = (0..PROPOSALS)
            .map(|i| {
                let mut rest = vec![format!("{tag}{i:02}").into_bytes()];
                rest.extend(code.chunks(60_000).map(<[u8]>::to_vec));
                let salt = x.salt();
                let who = if root { &x.root_admin } else { &x.w.admin };
                propose_org(&x.node, who, salt, "contract-deploy", rest)
            })
            .collect();
        let started = std::time::Instant::now();
        let receipts = x.node.run(&txs);
        let per = started.elapsed() / PROPOSALS as u32;
        assert_success(&receipts);
        (per, receipts[0].fuel_used.unwrap_or(0))
    }
    let module = |reps: usize| {
        let mut src = String::from(
            r#"(module (memory (export "memory") 1) (func (export "call")) (func (param i32 i32) "#,
        );
        for _ in 0..reps {
            src.push_str("(local.set 0 (i32.add (local.get 0) (local.get 1)))");
        }
        src.push_str("))");
        wat::parse_str(&src).unwrap()
    };
    let mut x = Two::new();
    let (small, big) = (module(1), module(16_000));
    let (small_time, small_fuel) = proposals_of(&mut x, false, "small", &small);
    let (big_time, big_fuel) = proposals_of(&mut x, true, "big", &big);
    let extra_ns = big_time.saturating_sub(small_time).as_nanos();
    let extra_fuel = big_fuel.saturating_sub(small_fuel);
    eprintln!(
        "a proposal: {small_time:?} and {small_fuel} fuel on {} bytes, {big_time:?} and \
         {big_fuel} fuel on {} bytes",
        small.len(),
        big.len()
    );
    assert!(
        extra_ns <= 10 * u128::from(extra_fuel) * 14 / 10 + small_time.as_nanos() / 10,
        "a proposal of a {}-byte module took {big_time:?} against {small_time:?} for a \
         {}-byte one, and paid {extra_fuel} fuel more: its validation is unpaid",
        big.len(),
        small.len()
    );
}

/// Review6 finding 5: the module of a proposal that expires undecided stays in the state for
/// ever (docs/contracts.md §4 says so), with its reference count: one organisation's admin
/// stores up to a transaction's size of code on every node, permanently, per proposal, for
/// 1 000 fuel, without any other organisation's vote. Nothing takes an expired proposal's
/// module: once the deadline has passed, the module no open proposal or contract references
/// must not stay (or must be reclaimable by a transaction).
#[test]
// Review6 finding 5 (fixed): the organisation's next proposal carrying a module takes it.
fn review6_the_code_of_an_expired_proposal_does_not_stay() {
    let mut x = Two::new();
    let code = probe("(func (export \"expired\"))");
    let (id, r) = x.propose("contract-deploy", vec![b"alpha".to_vec(), code.clone()]);
    assert_success(&r);
    let p = execution::read_proposal(&x.node.view(), &id)
        .unwrap()
        .unwrap();
    while x.node.height <= p.deadline.0 + 1 {
        x.node.run(&[]);
    }
    // Any later transaction (here another deployment) could take it: none does.
    x.deploy("beta", &probe(""));
    let kept = execution::contract_code(&x.node.view(), &sm3(&code)).unwrap();
    assert!(
        kept.is_none(),
        "the {} bytes of proposal {}'s module stay in the state after its deadline {} \
         (height {})",
        kept.map_or(0, |c| c.len()),
        id.to_hex(),
        p.deadline.0,
        x.node.height
    );
}

/// A proposal carrying a module pays for the module's checks by its size: without a fuel limit
/// it is refused (TX_FUEL_LIMIT_MISSING), with too low a one too (TX_FUEL_LIMIT_TOO_LOW, naming
/// the figure), and its receipt charges exactly the call's cost plus the published figure.
#[test]
fn a_proposal_carrying_a_module_pays_for_its_checks() {
    let mut x = Two::new();
    let code = probe("");
    let module = contracts::validate(&code, &contracts::Limits::default()).unwrap();
    let need = contracts::fuel::module_check(code.len() as u64, module.functions());
    assert_eq!(
        need,
        code.len() as u64 * 40 + u64::from(module.functions()) * 800
    );
    let rest = vec![b"alpha".to_vec(), code.clone()];
    let salt = x.salt();
    let v1 = super::propose_org(&x.node, &x.w.admin, salt, "contract-deploy", rest.clone());
    let e = x.node.admit(&v1).unwrap_err();
    assert_eq!(e.code, RejectCode::FuelLimitMissing, "{e}");
    let total = need + 1_000;
    assert!(e.message.contains(&total.to_string()), "{e}");
    let mut args = vec![
        b"contract-deploy".to_vec(),
        (x.node.height + 10).to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
    ];
    args.extend(rest);
    let salt = x.salt();
    let low = tx_fuel(
        &x.w.admin,
        salt,
        "governance",
        "propose",
        args.clone(),
        total - 1,
    );
    let e = x.node.admit(&low).unwrap_err();
    assert_eq!(e.code, RejectCode::FuelLimitTooLow, "{e}");
    let salt = x.salt();
    let enough = tx_fuel(&x.w.admin, salt, "governance", "propose", args, total);
    let r = x.node.run(&[enough]).remove(0);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(r.fuel_used, Some(total));
    // A proposal without a module pays the call's cost alone, as before.
    let salt = x.salt();
    let freeze = super::propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-freeze",
        vec![b"beta".to_vec()],
    );
    assert_eq!(
        x.node.admit(&freeze).unwrap_err().code,
        RejectCode::BadArguments,
        "no contract beta: refused on its arguments, not its fuel"
    );
}

/// An organisation may have at most MAX_OPEN_MODULE_PROPOSALS proposals carrying a module open:
/// one more is refused when proposed, naming them; once their deadlines pass they no longer
/// count, and the organisation's next such proposal takes their modules.
#[test]
fn an_organisation_has_at_most_eight_open_proposals_carrying_a_module() {
    let mut x = Two::new();
    assert_eq!(execution::MAX_OPEN_MODULE_PROPOSALS, 8);
    let codes: Vec<Vec<u8>> = (0..9)
        .map(|i| probe(&format!("(func (export \"m{i}\"))")))
        .collect();
    let mut deadline = 0;
    for (i, code) in codes[..8].iter().enumerate() {
        let (id, r) = x.propose(
            "contract-deploy",
            vec![format!("c{i}").into_bytes(), code.clone()],
        );
        assert_success(&r);
        deadline = execution::read_proposal(&x.node.view(), &id)
            .unwrap()
            .unwrap()
            .deadline
            .0;
    }
    let salt = x.salt();
    let ninth = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-deploy",
        vec![b"c8".to_vec(), codes[8].clone()],
    );
    let e = x.node.admit(&ninth).unwrap_err();
    assert_eq!(e.code, RejectCode::BadArguments, "{e}");
    assert!(
        e.message.contains("8 open proposals carrying a module"),
        "{e}"
    );
    // The other organisation is not held back by Agency A's proposals.
    let salt = x.salt();
    let other = propose_org(
        &x.node,
        &x.root_admin,
        salt,
        "contract-deploy",
        vec![b"rooted".to_vec(), probe("(func (export \"root\"))")],
    );
    x.node
        .admit(&other)
        .expect("another organisation's proposal");
    // Past the deadlines: the ninth is admitted, and its proposal takes the eight modules.
    while x.node.height <= deadline {
        x.node.run(&[]);
    }
    for code in &codes[..8] {
        assert!(
            execution::contract_code(&x.node.view(), &sm3(code))
                .unwrap()
                .is_some()
        );
    }
    let (_, r) = x.propose("contract-deploy", vec![b"c8".to_vec(), codes[8].clone()]);
    assert_success(&r);
    for code in &codes[..8] {
        assert!(
            execution::contract_code(&x.node.view(), &sm3(code))
                .unwrap()
                .is_none(),
            "an expired proposal's module stayed"
        );
    }
    assert!(
        execution::contract_code(&x.node.view(), &sm3(&codes[8]))
            .unwrap()
            .is_some()
    );
}

// Seventh review (review7): the module checks' fuel, the open-proposal cap and its sweep. Each
// test fails on the current code and is ignored so the branch stays green; the ignore reason
// names the finding.

/// Review7 finding 1: admission validates a proposal's module (three parses, the module rules
/// and a compile by a throwaway engine) in `resolve_call` and `check_args` before it verifies
/// the transaction's signature or even resolves its signer. The module-check fuel is a charge
/// no one pays at admission: a transaction with a forged signature makes every node it reaches
/// run the whole check (the memo only helps for identical bytes; one changed byte defeats it).
/// A forged transaction must be refused for its signature before its module is looked at.
#[test]
// Review7 finding 1 (fixed).
fn review7_admission_checks_the_signature_before_the_module() {
    let x = Two::new();
    let code = probe("(func (export \"forged\"))");
    let body = Transaction {
        // Below what the module's checks cost: only validating the module can tell.
        fuel_limit: Some(2_000),
        chain_id: ChainId::new(CHAIN).unwrap(),
        salt: [7; 16],
        expiry: Height(50),
        sender: Sender::Certificate(x.w.admin.cert.der().to_vec()),
        call: Call {
            contract: "governance".into(),
            method: "propose".into(),
            args: vec![
                b"contract-deploy".to_vec(),
                (x.node.height + 10).to_be_bytes().to_vec(),
                0u64.to_be_bytes().to_vec(),
                b"forged".to_vec(),
                code,
            ],
        },
    };
    // Signed with another member's key: the admin's certificate does not verify it.
    let forged = SignedTx::sign(body, &x.w.user.key, &UserId::default())
        .unwrap()
        .to_bytes();
    let e = x.node.admit(&forged).unwrap_err();
    assert_eq!(
        e.code,
        RejectCode::SignatureInvalid,
        "a forged proposal was judged on its module first: {e}"
    );
}

/// Review7 finding 2: a proposal carrying a module pays for its checks only in `propose`, but
/// every node runs the checks before that, in `check_args` and `authorize`. Admission judges a
/// proposal against the committed state, not the pool, so an organisation's admin may have
/// any number of module proposals admitted at once; in the block, those past the 8 open (or
/// past MAX_DEPLOYED_CODE_BYTES) are refused in `authorize` with 0 fuel used, after every
/// validator validated and compiled their modules. A proposal refused in its block must still
/// pay the checks its module cost.
#[test]
// Review7 finding 2 (fixed).
fn review7_a_module_proposal_refused_in_its_block_pays_for_its_checks() {
    let mut x = Two::new();
    let codes: Vec<Vec<u8>> = (0..=execution::MAX_OPEN_MODULE_PROPOSALS)
        .map(|i| probe(&format!("(func (export \"n{i}\"))")))
        .collect();
    let txs: Vec<Vec<u8>> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let salt = x.salt();
            propose_org(
                &x.node,
                &x.w.admin,
                salt,
                "contract-deploy",
                vec![format!("n{i}").into_bytes(), code.clone()],
            )
        })
        .collect();
    // All nine are admitted against the same state.
    let receipts = x.node.run(&txs);
    let last = receipts.last().unwrap();
    let (code, message) = run_code(last);
    assert_eq!(code, "GOVERNANCE_SCHEDULE", "{message}");
    let module = contracts::validate(codes.last().unwrap(), &contracts::Limits::default()).unwrap();
    let need = contracts::fuel::module_check(module.code().len() as u64, module.functions());
    assert!(
        last.fuel_used.unwrap_or(0) >= need,
        "the ninth proposal was refused in its block after its module was checked, and paid {:?} \
         fuel of the {need} the checks cost",
        last.fuel_used
    );
}

/// Review7 finding 3: an organisation's expired module proposals are swept only by its own next
/// proposal carrying a module. A removed organisation never proposes again, so the modules of
/// its proposals that expire undecided (up to 8 of a transaction's size each) stay in the
/// state for ever, with their reference counts. Once the deadline has passed, a later proposal
/// carrying a module (here the remaining organisation's) must be able to take them.
#[test]
// Review7 finding 3 (fixed).
fn review7_a_removed_organisations_expired_modules_do_not_stay() {
    let mut x = Two::new();
    let code = probe("(func (export \"orphan\"))");
    let salt = x.salt();
    let tx = propose_org(
        &x.node,
        &x.root_admin,
        salt,
        "contract-deploy",
        vec![b"orphan".to_vec(), code.clone()],
    );
    let id = proposal_of(&tx);
    assert_success(&x.node.run(&[tx]));
    // Agency A proposes to remove the root organisation; the root agrees.
    let (remove, r) = x.propose("org-remove", vec![b"GMChain Consortium".to_vec()]);
    assert_success(&r);
    let salt = x.salt();
    let vote = yes_fuel(&x.root_admin, salt, &remove, 1_000_000);
    assert_success(&x.node.run(&[vote]));
    let removed = x
        .node
        .view()
        .organisation("GMChain Consortium")
        .unwrap()
        .unwrap();
    assert!(removed.removed_at.is_some());
    let p = execution::read_proposal(&x.node.view(), &id)
        .unwrap()
        .unwrap();
    while x.node.height <= p.deadline.0 + 1 {
        x.node.run(&[]);
    }
    let (_, r) = x.propose(
        "contract-deploy",
        vec![b"later".to_vec(), probe("(func (export \"later\"))")],
    );
    assert_success(&r);
    let kept = execution::contract_code(&x.node.view(), &sm3(&code)).unwrap();
    assert!(
        kept.is_none(),
        "the removed organisation's expired proposal {} keeps its {} bytes of module for ever",
        id.to_hex(),
        kept.map_or(0, |c| c.len())
    );
}

/// Issue 16: a supervisor's freeze of a contract is its own flag with its own codes; a
/// governance unfreeze does not lift it, nor the supervisor's unfreeze a governance freeze;
/// every step is in the contract's lifecycle trace.
#[test]
fn a_supervisor_freeze_of_a_contract_is_its_own_flag_lifted_only_by_the_supervisor() {
    let (mut x, regulator) = Two::supervised();
    x.deploy("alpha", &probe(""));
    assert_eq!(x.call("alpha", "i", 1_000_000).status, Status::Success);
    let sup = |freeze: bool, salt: u8| {
        call(
            &regulator,
            salt,
            "supervision",
            if freeze { "freeze" } else { "unfreeze" },
            vec![b"contract".to_vec(), b"alpha".to_vec(), b"audit".to_vec()],
        )
    };
    // Admitted before the freeze: fails in execution with the supervisor's code.
    let salt = x.salt();
    let before = x
        .node
        .must_admit(&call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000));
    assert_success(&x.node.run(&[sup(true, 1)]));
    let r = x.node.commit(std::slice::from_ref(&before)).remove(0);
    assert_eq!(
        failed(&r),
        Some(FailureCode::ContractFrozenBySupervisor),
        "{r:?}"
    );
    let salt = x.salt();
    let tx = call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000);
    assert_eq!(
        code_of(x.node.admit(&tx)),
        RejectCode::ContractFrozenBySupervisor
    );
    // Governance cannot lift it: the contract is not frozen by governance.
    let salt = x.salt();
    let unfreeze = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-unfreeze",
        vec![b"alpha".to_vec()],
    );
    let e = x.node.admit(&unfreeze).unwrap_err();
    assert!(e.message.contains("not frozen"), "{e}");
    // Both flags: governance freezes too; the supervisor's unfreeze leaves governance's.
    let r = x.pass("contract-freeze", vec![b"alpha".to_vec()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_success(&x.node.run(&[sup(false, 2)]));
    let salt = x.salt();
    let tx = call_fuel(&x.w.user, salt, "alpha", "i", 1_000_000);
    assert_eq!(code_of(x.node.admit(&tx)), RejectCode::ContractFrozen);
    let r = x.pass("contract-unfreeze", vec![b"alpha".to_vec()]);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(x.call("alpha", "i", 1_000_000).output, 2u64.to_le_bytes());
    // The lifecycle trace: deployment proposal and vote, the supervisor's freeze, the
    // governance freeze's proposal and vote, the supervisor's unfreeze, the governance
    // unfreeze's proposal and vote.
    let count = x
        .node
        .view()
        .read(&execution::keys::full(
            execution::keys::AUDIT,
            &execution::keys::audit::count("lifecycle", "alpha"),
        ))
        .unwrap()
        .map(|b| u64::from_be_bytes(b.try_into().unwrap()));
    assert_eq!(count, Some(8));
}

/// Review 18, finding 1: a contract the supervisor froze is refused as a callee too (its code
/// does not run behind another contract's call), and a nested call that ran is in the
/// callee's contract trace.
#[test]
fn review18_a_supervisor_frozen_contract_is_refused_as_a_callee_and_a_nested_call_is_traced() {
    let (mut x, regulator) = Two::supervised();
    x.deploy("alpha", &probe(""));
    x.deploy("beta", &probe(""));
    let beta_count = |x: &Two| {
        x.node
            .view()
            .read(&execution::keys::full(
                execution::keys::AUDIT,
                &execution::keys::audit::count("contract", "beta"),
            ))
            .unwrap()
            .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()))
    };
    // alpha.k calls beta.i: beta's counter moves and the call is in beta's trace.
    let before = beta_count(&x);
    let r = x.call("alpha", "k", 5_000_000);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(x.read("wasm/beta/n"), Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(
        beta_count(&x),
        before + 1,
        "the nested call is not in beta's trace"
    );
    // An upgrade of beta proposed now, to pass after the freeze.
    let (upgrade, r) = x.propose("contract-upgrade", vec![b"beta".to_vec(), probe(MIGRATE)]);
    assert_success(&r);
    // The supervisor freezes beta: alpha.k's nested call is refused, beta's code does not run.
    assert_success(&x.node.run(&[call(
        &regulator,
        1,
        "supervision",
        "freeze",
        vec![b"contract".to_vec(), b"beta".to_vec(), b"audit".to_vec()],
    )]));
    let traced = beta_count(&x);
    let r = x.call("alpha", "k", 5_000_000);
    let (code, message) = run_code(&r);
    assert_eq!(code, "CONTRACT_ABORTED", "{message}");
    assert_eq!(x.read("wasm/beta/n"), Some(1u64.to_le_bytes().to_vec()));
    // A caller that ignores its callee's failure succeeds; the refused callee is not traced.
    let r = x.call("alpha", "c", 5_000_000);
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(beta_count(&x), traced);
    // No new code runs in it either: a new upgrade proposal is refused at admission, and the
    // one proposed before the freeze fails when its vote passes (its migrate never runs).
    let salt = x.salt();
    let again = propose_org(
        &x.node,
        &x.w.admin,
        salt,
        "contract-upgrade",
        vec![b"beta".to_vec(), probe(MIGRATE)],
    );
    let e = x.node.admit(&again).unwrap_err();
    assert_eq!(e.code, RejectCode::ContractFrozenBySupervisor, "{e}");
    let salt = x.salt();
    let vote = yes_fuel(&x.root_admin, salt, &upgrade, 50_000_000);
    let r = x.node.run(&[vote]).remove(0);
    assert_eq!(
        failed(&r),
        Some(FailureCode::ContractFrozenBySupervisor),
        "{r:?}"
    );
    assert_eq!(x.read("wasm/beta/m"), None, "the upgrade's migrate ran");
}
