//! The contract layer (issue 14) without a node: WebAssembly modules written here in the text
//! format (no wasm toolchain), deployed, called, frozen and upgraded through the node's own
//! admission and executor on an in-memory state, with two founding organisations whose
//! contract policy is a majority of two. Every case expects a specific outcome (a receipt
//! code, a refusal code, a state value) that a broken rule would change.
//!
//! GZ-5.4 (contract layer), GZ-6.4 (business collaboration), GZ-6.5 (smart contracts) and
//! GM/T 0111 7.8 (smart contract security): what these prove, and what only a live node can,
//! is in the clause notes (`conformance/clauses/*.toml`).

use super::{Check, Evidence};
use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{
    Admission, AdmitContext, BlockContext, Executor, Genesis, RejectCode, StateRead, StateView,
    VerifiedTx,
};
use pki::{Certificate, IssueRequest, Role, Serial, UnixTime, Validity, issue, issue_crl};
use state::{MemStore, NodeStore};
use std::rc::Rc;
use std::sync::Arc;
use types::{
    Call, ChainId, Decode, Encode, Height, Receipt, Sender, SignedTx, Status, Transaction,
};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "contract-deterministic",
        title: "Two executors, one with a cold and one with a warm module cache, give the same state roots, receipts and fuel for the same blocks of contract calls",
        run: deterministic,
    },
    Check {
        id: "contract-hostile-isolated",
        title: "A hostile contract (endless loop, memory growth, deep recursion, oversized host length, trap after a write, a callee trapping after its write) ends in a Failed receipt with its code, leaves no write, and the executor goes on",
        run: hostile,
    },
    Check {
        id: "contract-lifecycle-governed",
        title: "A contract deploys only on the policy's votes, runs the proposed module's SM3 hash, refuses calls while frozen, keeps its state through an upgrade, and every step has its receipt and events",
        run: lifecycle,
    },
    Check {
        id: "contract-workflow-enforced",
        title: "A two-organisation approval workflow contract refuses a step by the wrong organisation and a step out of order, and records the approved steps",
        run: workflow,
    },
];

const SOURCE: &str =
    "gmchain-derived: docs/contracts.md §1-§3 (the node's admission and executor, in memory)";

fn case(name: &str, r: Result<(), String>) -> Evidence {
    Evidence {
        case: name.to_string(),
        source: SOURCE.to_string(),
        pass: r.is_ok(),
        detail: r.err().unwrap_or_default(),
    }
}

/// A case that passed, with a note on what was measured.
fn noted(name: &str, r: Result<String, String>) -> Evidence {
    match r {
        Ok(note) => Evidence {
            case: name.to_string(),
            source: SOURCE.to_string(),
            pass: true,
            detail: note,
        },
        Err(e) => case(name, Err(e)),
    }
}

type R<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}

pub(crate) const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
pub(crate) const T0: u64 = 1_767_225_600;
pub(crate) const CHAIN: &str = "conformance-contracts";
pub(crate) const ORG_A: &str = "Conformance Root";
pub(crate) const ORG_B: &str = "Other Root";
/// The fuel limit of the calls.
const FUEL: u64 = 5_000_000;

pub(crate) fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

/// A contract probing the host API and misbehaving on request, by the first byte of the
/// method: `i` adds one to the u64 under `n`, emits `inc` and returns the new value; `q`
/// returns `n`; every other method first writes `x` and then: `l` loops for ever, `g` grows
/// memory past the page limit and traps when refused, `d` recurses without end, `b` writes
/// a value over the host's bound, `f` traps, `c` calls `beta.f` (which writes and traps) and
/// then succeeds, `r` calls `beta.f` and aborts when it failed; `x` returns the value under
/// `x` (empty when absent) without writing, and `M` the value under `m`, so that a read-only
/// query shows whether a failed call's write or a migration's was kept. `{extra}` is spliced
/// in (an upgrade's `migrate`). The live check `node-contract-lifecycle` deploys it too.
pub(crate) fn probe(extra: &str) -> R<Vec<u8>> {
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
  (data (i32.const 210) "callee failed")
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
    (if (i32.eq (local.get $m) (i32.const 113)) (then
      (drop (call $sread (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8)))
      (call $set_return (i32.const 300) (i32.const 8))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 120)) (then
      (local.set $m (call $sread (i32.const 104) (i32.const 1) (i32.const 300) (i32.const 8)))
      (if (i32.lt_s (local.get $m) (i32.const 0)) (then (local.set $m (i32.const 0))))
      (if (i32.gt_u (local.get $m) (i32.const 8)) (then (local.set $m (i32.const 8))))
      (call $set_return (i32.const 300) (local.get $m))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 77)) (then
      (local.set $m (call $sread (i32.const 108) (i32.const 1) (i32.const 300) (i32.const 8)))
      (if (i32.lt_s (local.get $m) (i32.const 0)) (then (local.set $m (i32.const 0))))
      (if (i32.gt_u (local.get $m) (i32.const 8)) (then (local.set $m (i32.const 8))))
      (call $set_return (i32.const 300) (local.get $m))
      (return)))
    (call $swrite (i32.const 104) (i32.const 1) (i32.const 100) (i32.const 1))
    (if (i32.eq (local.get $m) (i32.const 108)) (then (loop $l (br $l))))
    (if (i32.eq (local.get $m) (i32.const 103)) (then
      (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then (unreachable)))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 100)) (then (call $deep) (return)))
    (if (i32.eq (local.get $m) (i32.const 98)) (then
      (call $swrite (i32.const 100) (i32.const 1) (i32.const 0) (i32.const 70000))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 99)) (then
      (drop (call $call (i32.const 150) (i32.const 4) (i32.const 160) (i32.const 9)))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 114)) (then
      (if (call $call (i32.const 150) (i32.const 4) (i32.const 160) (i32.const 9)) (then
        (call $abort (i32.const 210) (i32.const 13))))
      (return)))
    (unreachable))
)"#
    ))
    .map_err(e("probe module"))
}

/// A `migrate` that writes `m` (the upgrade's proof that it ran).
pub(crate) const MIGRATE: &str = r#"(func (export "migrate")
    (call $swrite (i32.const 108) (i32.const 1) (i32.const 108) (i32.const 1)))"#;

/// A two-step approval workflow: `approve(step: u8)` (its input `bytes("approve") ‖ u32 1 ‖
/// bytes(step)`, so the step's byte is at offset 19) moves the case from step `s` (absent:
/// 0) to `s + 1` when `step` = `s` (else `out of order`), `s` < 2 (else `case closed`), and
/// the caller belongs to the step's organisation (step 0: Conformance Root, step 1: Other
/// Root; else `wrong organisation`), emitting `approved`. The caller's organisation is read
/// from the host's caller encoding (`cert_id ‖ bytes(organisation) ‖ …`), so the length
/// prefix is compared too.
fn workflow_module() -> R<Vec<u8>> {
    wat::parse_str(
        r#"(module
  (import "gmchain" "input_read" (func $input_read (param i32)))
  (import "gmchain" "caller" (func $caller (param i32 i32) (result i32)))
  (import "gmchain" "storage_read" (func $sread (param i32 i32 i32 i32) (result i32)))
  (import "gmchain" "storage_write" (func $swrite (param i32 i32 i32 i32)))
  (import "gmchain" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "gmchain" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "s")
  (data (i32.const 16) "\00\00\00\10Conformance Root")
  (data (i32.const 48) "\00\00\00\0aOther Root")
  (data (i32.const 80) "out of order")
  (data (i32.const 100) "wrong organisation")
  (data (i32.const 120) "approved")
  (data (i32.const 130) "\00\00\00\01\00\00\00\04case")
  (data (i32.const 150) "case closed")
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  (func (export "call") (local $step i32)
    (call $input_read (i32.const 1024))
    (i32.store8 (i32.const 200) (i32.const 0))
    (drop (call $sread (i32.const 0) (i32.const 1) (i32.const 200) (i32.const 1)))
    (local.set $step (i32.load8_u (i32.const 200)))
    (if (i32.ge_u (local.get $step) (i32.const 2)) (then (call $abort (i32.const 150) (i32.const 11))))
    (if (i32.ne (i32.load8_u (i32.const 1043)) (local.get $step)) (then
      (call $abort (i32.const 80) (i32.const 12))))
    (drop (call $caller (i32.const 2048) (i32.const 512)))
    (if (i32.eqz (local.get $step))
      (then (if (i32.eqz (call $eq (i32.const 2080) (i32.const 16) (i32.const 20))) (then
        (call $abort (i32.const 100) (i32.const 18)))))
      (else (if (i32.eqz (call $eq (i32.const 2080) (i32.const 48) (i32.const 14))) (then
        (call $abort (i32.const 100) (i32.const 18))))))
    (i32.store8 (i32.const 200) (i32.add (local.get $step) (i32.const 1)))
    (call $swrite (i32.const 0) (i32.const 1) (i32.const 200) (i32.const 1))
    (call $emit (i32.const 120) (i32.const 8) (i32.const 130) (i32.const 12) (i32.const 200) (i32.const 1)))
)"#,
    )
    .map_err(e("workflow module"))
}

pub(crate) struct Member {
    pub(crate) key: SoftSigner,
    pub(crate) cert: Certificate,
}

/// Two founding organisations on the node's admission and executor, in memory (also the
/// fake node the live contract check is tested against).
pub(crate) struct World {
    pub(crate) store: MemStore,
    pub(crate) genesis: Genesis,
    pub(crate) root: Digest,
    pub(crate) height: u64,
    salt: u64,
    admission: Admission,
    pub(crate) executor: Executor,
    /// Every block committed, in order (replayed by another executor).
    pub(crate) blocks: Vec<Vec<VerifiedTx>>,
    /// Each committed block's state root and receipts.
    results: Vec<(Digest, Vec<Receipt>)>,
    pub(crate) admin_a: Rc<Member>,
    pub(crate) admin_b: Rc<Member>,
    pub(crate) user_a: Rc<Member>,
    user_b: Rc<Member>,
    /// The organisations' CAs, which issue further members (the exchange checks' nodes).
    pub(crate) ca_a: Rc<Member>,
    pub(crate) ca_b: Rc<Member>,
}

impl World {
    pub(crate) fn new(seed: u64) -> R<World> {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
        let serial = std::cell::Cell::new(0x200u64);
        let next = || -> R<Serial> {
            let s = serial.get();
            serial.set(s + 1);
            Serial::from_bytes(&s.to_be_bytes()[6..]).map_err(e("serial"))
        };
        let validity = Validity {
            not_before: t(0),
            not_after: t(3650),
        };
        let root = |cn: &str, org: &str| -> R<Member> {
            let key = p.generate().map_err(e("key"))?;
            let cert = pki::issue_root(cn, org, next()?, validity, &key).map_err(e("root"))?;
            Ok(Member { key, cert })
        };
        let ca_a = root("Conformance Root CA", ORG_A)?;
        let ca_b = root("Other Root CA", ORG_B)?;
        let leaf = |ca: &Member, role: Role, org: &str, cn: &str| -> R<Member> {
            let key = p.generate().map_err(e("key"))?;
            let cert = issue(
                &ca.cert,
                &ca.key,
                &IssueRequest {
                    role,
                    common_name: cn,
                    organisation: org,
                    public_key: &key.public_key(),
                    serial: next()?,
                    validity: Validity {
                        not_before: t(0),
                        not_after: t(365),
                    },
                },
            )
            .map_err(e("issue"))?;
            Ok(Member { key, cert })
        };
        let crl = |ca: &Member| {
            issue_crl(&ca.cert, &ca.key, 1, t(0), t(60), &[])
                .map(|c| c.to_pem())
                .map_err(e("crl"))
        };
        let node = leaf(&ca_a, Role::NodeSign, ORG_A, "node-1")?;
        let json = serde_json::json!({
            "format": 2,
            "chain_id": CHAIN,
            "test_chain": true,
            "timestamp_ms": (T0 + DAY) * 1000,
            "organisations": [
                { "name": ORG_A, "ca_cert": ca_a.cert.to_pem(), "crl": crl(&ca_a)? },
                { "name": ORG_B, "ca_cert": ca_b.cert.to_pem(), "crl": crl(&ca_b)? },
            ],
            "validators": [ { "name": "node-1", "cert": node.cert.to_pem() } ],
        });
        let genesis = Genesis::from_json(json.to_string().as_bytes()).map_err(e("genesis"))?;
        let mut store = MemStore::new();
        let gb = genesis.build(&store).map_err(e("genesis block"))?;
        let root_digest = gb.update.root;
        store.write(gb.update.nodes).map_err(e("store"))?;
        Ok(World {
            admission: Admission::new(
                genesis.chain_id.clone(),
                &genesis.params,
                genesis.consortium().map_err(e("consortium"))?,
            ),
            executor: Executor::new(genesis.chain_id.clone(), &genesis.params),
            store,
            genesis,
            root: root_digest,
            height: 0,
            salt: 0,
            blocks: Vec::new(),
            results: Vec::new(),
            admin_a: Rc::new(leaf(&ca_a, Role::Admin, ORG_A, "a-admin")?),
            admin_b: Rc::new(leaf(&ca_b, Role::Admin, ORG_B, "b-admin")?),
            user_a: Rc::new(leaf(&ca_a, Role::User, ORG_A, "a-user")?),
            user_b: Rc::new(leaf(&ca_b, Role::User, ORG_B, "b-user")?),
            ca_a: Rc::new(ca_a),
            ca_b: Rc::new(ca_b),
        })
    }

    /// A version 2 transaction (fuel limit [`FUEL`]) of `who` calling `contract.method`.
    fn tx(&mut self, who: Who, contract: &str, method: &str, args: Vec<Vec<u8>>) -> R<Vec<u8>> {
        let who = Rc::clone(self.member_rc(who));
        self.tx_as(&who, contract, method, args)
    }

    /// A version 2 transaction (fuel limit [`FUEL`]) of `who`, any member of the consortium
    /// (its certificate carried in the transaction), calling `contract.method`.
    pub(crate) fn tx_as(
        &mut self,
        who: &Member,
        contract: &str,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> R<Vec<u8>> {
        self.salt += 1;
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&self.salt.to_be_bytes());
        let body = Transaction {
            fuel_limit: Some(FUEL),
            chain_id: ChainId::new(CHAIN).map_err(e("chain id"))?,
            salt,
            expiry: Height(self.height + 50),
            sender: Sender::Certificate(who.cert.der().to_vec()),
            call: Call {
                contract: contract.into(),
                method: method.into(),
                args,
            },
        };
        Ok(SignedTx::sign(body, &who.key, &UserId::default())
            .map_err(e("sign"))?
            .to_bytes())
    }

    fn ctx(&self) -> AdmitContext {
        AdmitContext {
            tip: Height(self.height),
            now: t(10),
        }
    }

    pub(crate) fn block_ctx(&self) -> BlockContext {
        BlockContext {
            height: Height(self.height + 1),
            timestamp_ms: (T0 + 10 * DAY) * 1000 + self.height * 1000,
        }
    }

    pub(crate) fn admit(&self, bytes: &[u8]) -> Result<VerifiedTx, execution::Rejection> {
        let view = StateView::new(&self.store, self.root);
        self.admission
            .admit(&view, &self.ctx(), &|_| Ok(false), bytes)
    }

    /// Admits and commits `txs` as one block; returns the receipts, whatever their status.
    pub(crate) fn commit(&mut self, txs: &[Vec<u8>]) -> R<Vec<Receipt>> {
        let mut v = Vec::new();
        for b in txs {
            v.push(
                self.admit(b)
                    .map_err(|r| format!("admission refused: {r}"))?,
            );
        }
        let exec = self
            .executor
            .execute_block(&self.store, self.root, &self.block_ctx(), &v)
            .map_err(e("execute"))?;
        self.root = exec.update.root;
        self.store.write(exec.update.nodes).map_err(e("store"))?;
        self.height += 1;
        self.blocks.push(v);
        self.results.push((self.root, exec.receipts.clone()));
        Ok(exec.receipts)
    }

    /// Commits one transaction; its receipt.
    fn one(&mut self, tx: Vec<u8>) -> R<Receipt> {
        self.commit(&[tx])?
            .pop()
            .ok_or_else(|| "no receipt".to_string())
    }

    fn call(&mut self, who: Who, contract: &str, method: &str, args: Vec<Vec<u8>>) -> R<Receipt> {
        let tx = self.tx(who, contract, method, args)?;
        self.one(tx)
    }

    fn member_rc(&self, who: Who) -> &Rc<Member> {
        match who {
            Who::AdminA => &self.admin_a,
            Who::AdminB => &self.admin_b,
            Who::UserA => &self.user_a,
            Who::UserB => &self.user_b,
        }
    }

    /// A proposal of `kind` by `who` (voting until 10 blocks on), with `rest` after the
    /// schedule; the proposal id and its receipt.
    fn propose(&mut self, who: Who, kind: &str, rest: Vec<Vec<u8>>) -> R<(Digest, Receipt)> {
        let mut args = vec![
            kind.as_bytes().to_vec(),
            (self.height + 10).to_be_bytes().to_vec(),
            0u64.to_be_bytes().to_vec(),
        ];
        args.extend(rest);
        let tx = self.tx(who, "governance", "propose", args)?;
        let id = SignedTx::from_bytes(&tx, &types::Limits::default())
            .map_err(e("proposal"))?
            .tx_id()
            .0;
        Ok((id, self.one(tx)?))
    }

    fn vote(&mut self, who: Who, id: &Digest) -> R<Receipt> {
        self.call(
            who,
            "governance",
            "vote",
            vec![id.0.to_vec(), b"yes".to_vec()],
        )
    }

    /// Proposed by organisation B, passed by A's vote; the vote's receipt must succeed.
    fn pass(&mut self, kind: &str, rest: Vec<Vec<u8>>) -> R<Receipt> {
        let (id, r) = self.propose(Who::AdminB, kind, rest)?;
        success(&r, kind)?;
        let v = self.vote(Who::AdminA, &id)?;
        success(&v, kind)?;
        Ok(v)
    }

    pub(crate) fn read(&self, key: &str) -> R<Option<Vec<u8>>> {
        StateView::new(&self.store, self.root)
            .read(key.as_bytes())
            .map_err(e("read"))
    }

    fn record(&self, name: &str) -> R<Option<execution::ContractRecord>> {
        execution::contract(&StateView::new(&self.store, self.root), name).map_err(e("record"))
    }
}

#[derive(Clone, Copy)]
enum Who {
    AdminA,
    AdminB,
    UserA,
    UserB,
}

pub(crate) fn code_name(r: &Receipt) -> &'static str {
    match &r.status {
        Status::Success => "success",
        Status::Failed { code, .. } => codes::by_number(*code).map_or("unknown", |c| c.name),
    }
}

pub(crate) fn success(r: &Receipt, what: &str) -> R<()> {
    match &r.status {
        Status::Success => Ok(()),
        Status::Failed { code, message } => Err(format!("{what} failed ({code}): {message}")),
    }
}

fn has_event(r: &Receipt, name: &str) -> bool {
    r.events.iter().any(|ev| ev.name == name)
}

pub(crate) fn refused(w: &World, tx: &[u8], code: RejectCode) -> R<()> {
    match w.admit(tx) {
        Ok(_) => Err(format!("admitted, but must be refused with {code}")),
        Err(r) if r.code == code => Ok(()),
        Err(r) => Err(format!("refused with {r}, expected {code}")),
    }
}

fn sm3(data: &[u8]) -> Digest {
    crypto_sm::sm3::sm3(data)
}

/// A setup failure fails the check: it never passes for want of running.
fn guard(what: &str, f: fn() -> R<Vec<Evidence>>) -> Vec<Evidence> {
    match f() {
        Ok(ev) => ev,
        Err(err) => vec![case(what, Err(err))],
    }
}

fn deterministic() -> Vec<Evidence> {
    guard("set up and run the contract blocks", run_deterministic)
}

fn run_deterministic() -> R<Vec<Evidence>> {
    let mut w = World::new(0x0014_0001)?;
    w.pass("contract-deploy", vec![b"alpha".to_vec(), probe("")?])?;
    w.pass("contract-deploy", vec![b"beta".to_vec(), probe("")?])?;
    let mut calls = Vec::new();
    for m in ["i", "l", "i", "f", "c", "r", "g", "d", "b", "q"] {
        calls.push(w.tx(Who::UserA, "alpha", m, Vec::new())?);
    }
    w.commit(&calls)?;
    let mut more = Vec::new();
    for m in ["i", "q", "c"] {
        more.push(w.tx(Who::UserB, "alpha", m, Vec::new())?);
    }
    w.commit(&more)?;
    let warm_before = w.executor.module_cache();

    // Another executor with its own (cold) module cache replays every block from genesis.
    let mut store = MemStore::new();
    let gb = w.genesis.build(&store).map_err(e("genesis block"))?;
    store.write(gb.update.nodes).map_err(e("store"))?;
    let cold = Executor::new(w.genesis.chain_id.clone(), &w.genesis.params);
    let mut root = gb.update.root;
    let mut out = Vec::new();
    let mut same = Ok(());
    for (i, (block, (want_root, want))) in w.blocks.iter().zip(&w.results).enumerate() {
        let ctx = BlockContext {
            height: Height(i as u64 + 1),
            timestamp_ms: (T0 + 10 * DAY) * 1000 + i as u64 * 1000,
        };
        let exec = cold
            .execute_block(&store, root, &ctx, block)
            .map_err(e("replay"))?;
        if exec.update.root != *want_root {
            same = Err(format!("block {}: state root differs", i + 1));
        } else if exec.receipts != *want {
            same = Err(format!("block {}: receipts differ", i + 1));
        }
        root = exec.update.root;
        store.write(exec.update.nodes).map_err(e("store"))?;
        if same.is_err() {
            break;
        }
    }
    let fuel: Vec<Option<u64>> = w
        .results
        .iter()
        .flat_map(|(_, r)| r.iter().map(|x| x.fuel_used))
        .collect();
    out.push(case(
        &format!(
            "a cold executor replaying {} blocks from genesis gets the same state roots and receipts (fuel and codes included)",
            w.blocks.len()
        ),
        same.and_then(|()| {
            if fuel.iter().rev().take(13).all(Option::is_some) {
                Ok(())
            } else {
                Err("a contract call's receipt has no fuel".into())
            }
        }),
    ));
    let cold_stats = cold.module_cache();
    out.push(case(
        "the replaying executor compiled the modules itself (a cold cache: misses, then hits)",
        if cold_stats.misses > 0 && cold_stats.hits > 0 {
            Ok(())
        } else {
            Err(format!("{cold_stats:?}"))
        },
    ));

    // The first executor, its cache warm, runs the call block again from its parent state.
    let call_block = w.blocks.len() - 2;
    let parent = w.results[call_block - 1].0;
    let ctx = BlockContext {
        height: Height(call_block as u64 + 1),
        timestamp_ms: (T0 + 10 * DAY) * 1000 + call_block as u64 * 1000,
    };
    let again = w
        .executor
        .execute_block(&w.store, parent, &ctx, &w.blocks[call_block])
        .map_err(e("warm run"))?;
    let warm_after = w.executor.module_cache();
    let (want_root, want) = &w.results[call_block];
    out.push(noted(
        "the warm executor runs the call block again (cache hits only) to the same root, receipts and fuel",
        if again.update.root != *want_root || again.receipts != *want {
            Err("the warm run differs".into())
        } else if warm_after.misses != warm_before.misses || warm_after.hits <= warm_before.hits {
            Err(format!(
                "the warm run was not served from the cache: {warm_before:?} then {warm_after:?}"
            ))
        } else {
            let (h, m) = (warm_after.hits, warm_after.misses);
            Ok(format!(
                "module cache of the first executor: {h} hits, {m} misses ({:.1}% hits) over {} contract runs",
                100.0 * h as f64 / (h + m).max(1) as f64,
                h + m
            ))
        },
    ));
    Ok(out)
}

fn hostile() -> Vec<Evidence> {
    guard("set up the contracts", run_hostile)
}

fn run_hostile() -> R<Vec<Evidence>> {
    let mut w = World::new(0x0014_0002)?;
    w.pass("contract-deploy", vec![b"alpha".to_vec(), probe("")?])?;
    w.pass("contract-deploy", vec![b"beta".to_vec(), probe("")?])?;
    let mut out = Vec::new();
    for (method, what, want) in [
        ("l", "an endless loop", "CONTRACT_FUEL_EXHAUSTED"),
        (
            "g",
            "memory growth past the page limit (refused, then a trap)",
            "CONTRACT_TRAP",
        ),
        ("d", "recursion without end", "CONTRACT_STACK_EXHAUSTED"),
        (
            "b",
            "a host call with a value length over its bound",
            "CONTRACT_HOST_BOUNDS",
        ),
        ("f", "a trap after a write", "CONTRACT_TRAP"),
        (
            "r",
            "a callee that writes and traps, its caller aborting",
            "CONTRACT_ABORTED",
        ),
    ] {
        let r = w.call(Who::UserA, "alpha", method, Vec::new())?;
        let got = code_name(&r);
        let x = w.read("wasm/alpha/x")?;
        let bx = w.read("wasm/beta/x")?;
        out.push(case(
            &format!("{what}: Failed receipt {want}, no event, no output, no write kept"),
            if got != want {
                Err(format!("receipt {got}, expected {want}: {:?}", r.status))
            } else if !r.events.is_empty() || !r.output.is_empty() {
                Err(format!("the failed call left events or output: {r:?}"))
            } else if x.is_some() || bx.is_some() {
                Err("a write of the failed call is in the state".into())
            } else if method == "l" && r.fuel_used != Some(FUEL) {
                Err(format!(
                    "fuel exhaustion charged {:?}, expected the limit {FUEL}",
                    r.fuel_used
                ))
            } else {
                Ok(())
            },
        ));
    }
    // A callee that traps after writing, its caller going on: the caller's write stays.
    let r = w.call(Who::UserA, "alpha", "c", Vec::new())?;
    out.push(case(
        "a callee trapping after its write: the caller succeeds, keeps its own write, the callee's is discarded",
        success(&r, "alpha.c").and_then(|()| {
            match (w.read("wasm/alpha/x")?, w.read("wasm/beta/x")?) {
                (Some(_), None) => Ok(()),
                (a, b) => Err(format!("alpha/x {a:?}, beta/x {b:?}: expected Some, None")),
            }
        }),
    ));
    // The executor goes on: hostile calls and a good one in one block.
    let mut block = Vec::new();
    for m in ["l", "d", "i", "g"] {
        block.push(w.tx(Who::UserB, "alpha", m, Vec::new())?);
    }
    let rs = w.commit(&block)?;
    let codes: Vec<&str> = rs.iter().map(code_name).collect();
    out.push(case(
        "a block mixing hostile calls with a good one: only the good one succeeds, and its write is kept",
        if codes == ["CONTRACT_FUEL_EXHAUSTED", "CONTRACT_STACK_EXHAUSTED", "success", "CONTRACT_TRAP"]
            && w.read("wasm/alpha/n")? == Some(1u64.to_le_bytes().to_vec())
        {
            Ok(())
        } else {
            Err(format!("receipts {codes:?}, alpha/n {:?}", w.read("wasm/alpha/n")?))
        },
    ));
    Ok(out)
}

fn lifecycle() -> Vec<Evidence> {
    guard("set up the consortium", run_lifecycle)
}

fn run_lifecycle() -> R<Vec<Evidence>> {
    let mut w = World::new(0x0014_0003)?;
    let code = probe("")?;
    let mut out = Vec::new();

    // A user cannot propose.
    let args = vec![
        b"contract-deploy".to_vec(),
        10u64.to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
        b"alpha".to_vec(),
        code.clone(),
    ];
    let tx = w.tx(Who::UserA, "governance", "propose", args)?;
    out.push(case(
        "a user's deployment proposal is refused (TX_PERMISSION_DENIED)",
        refused(&w, &tx, RejectCode::PermissionDenied),
    ));

    // Proposed by one organisation of two: stored, not deployed.
    let (id, r) = w.propose(
        Who::AdminB,
        "contract-deploy",
        vec![b"alpha".to_vec(), code.clone()],
    )?;
    let early = w.tx(Who::UserA, "alpha", "i", Vec::new())?;
    out.push(case(
        "proposed by one organisation of two: a receipt with `proposed`, no contract, a call refused (TX_UNKNOWN_CALL)",
        success(&r, "propose").and_then(|()| {
            if !has_event(&r, "proposed") || has_event(&r, "executed") {
                return Err(format!("events {:?}", r.events.iter().map(|e| &e.name).collect::<Vec<_>>()));
            }
            if w.record("alpha")?.is_some() {
                return Err("deployed on one organisation's proposal".into());
            }
            refused(&w, &early, RejectCode::UnknownCall)
        }),
    ));
    // A second vote of the proposing organisation is refused.
    let again = w.tx(
        Who::AdminB,
        "governance",
        "vote",
        vec![id.0.to_vec(), b"yes".to_vec()],
    )?;
    out.push(case(
        "a second vote of the proposing organisation is refused (TX_BAD_ARGUMENTS)",
        refused(&w, &again, RejectCode::BadArguments),
    ));
    // The other organisation's vote deploys it; the record names the module's SM3.
    let v = w.vote(Who::AdminA, &id)?;
    let rec = w.record("alpha")?;
    let stored = execution::contract_code(&StateView::new(&w.store, w.root), &sm3(&code))
        .map_err(e("code"))?;
    out.push(case(
        "the second organisation's vote deploys it: `voted` and `executed` events; code hash = SM3 of the proposed module, version 1, the code stored under it",
        success(&v, "vote").and_then(|()| {
            if !has_event(&v, "voted") || !has_event(&v, "executed") {
                return Err("the vote's receipt lacks `voted` or `executed`".into());
            }
            match rec {
                Some(c) if c.code_hash == sm3(&code) && c.version == 1 && !c.frozen && stored.as_deref() == Some(&code[..]) => Ok(()),
                other => Err(format!("record {other:?}")),
            }
        }),
    ));
    let one = w.call(Who::UserA, "alpha", "i", Vec::new())?;
    out.push(case(
        "a call runs: Success, fuel in the receipt, the contract's event and output",
        success(&one, "alpha.i").and_then(|()| {
            if one.fuel_used.is_some_and(|f| f > 0 && f < FUEL)
                && one
                    .events
                    .iter()
                    .any(|ev| ev.contract == "wasm/alpha" && ev.name == "inc")
                && one.output == 1u64.to_le_bytes()
            {
                Ok(())
            } else {
                Err(format!("{one:?}"))
            }
        }),
    ));

    // Freeze: calls refused (admission, and in execution for one admitted before).
    let before = w.tx(Who::UserA, "alpha", "i", Vec::new())?;
    let pending = w
        .admit(&before)
        .map_err(|r| format!("admission refused: {r}"))?;
    let f = w.pass("contract-freeze", vec![b"alpha".to_vec()])?;
    let exec = w
        .executor
        .execute_block(&w.store, w.root, &w.block_ctx(), &[pending])
        .map_err(e("execute"))?;
    let after = w.tx(Who::UserB, "alpha", "i", Vec::new())?;
    out.push(case(
        "frozen by vote (`executed`): a call is refused (TX_CONTRACT_FROZEN), one admitted before fails in execution (CONTRACT_FROZEN), state unchanged",
        (|| {
            if !has_event(&f, "executed") || !w.record("alpha")?.is_some_and(|c| c.frozen) {
                return Err("not frozen".into());
            }
            refused(&w, &after, RejectCode::ContractFrozen)?;
            match exec.receipts.first().map(code_name) {
                Some(c) if c.contains("FROZEN") => {}
                other => return Err(format!("the pending call: {other:?}")),
            }
            if w.read("wasm/alpha/n")? != Some(1u64.to_le_bytes().to_vec()) {
                return Err("the counter changed while frozen".into());
            }
            Ok(())
        })(),
    ));
    w.pass("contract-unfreeze", vec![b"alpha".to_vec()])?;
    let two = w.call(Who::UserB, "alpha", "i", Vec::new())?;
    out.push(case(
        "unfrozen by vote: calls run again on the kept state",
        success(&two, "alpha.i").and_then(|()| {
            if two.output == 2u64.to_le_bytes() {
                Ok(())
            } else {
                Err(format!("output {:?}", two.output))
            }
        }),
    ));
    // Upgrade: version 2, the new hash, migrate ran, state kept.
    let new = probe(MIGRATE)?;
    let u = w.pass("contract-upgrade", vec![b"alpha".to_vec(), new.clone()])?;
    let three = w.call(Who::UserA, "alpha", "i", Vec::new())?;
    out.push(case(
        "upgraded by vote: version 2 with the new module's SM3, its migrate ran in the vote, the state is kept",
        (|| {
            if !has_event(&u, "executed") {
                return Err("the vote's receipt lacks `executed`".into());
            }
            match w.record("alpha")? {
                Some(c) if c.version == 2 && c.code_hash == sm3(&new) => {}
                other => return Err(format!("record {other:?}")),
            }
            if w.read("wasm/alpha/m")? != Some(b"m".to_vec()) {
                return Err("migrate did not run".into());
            }
            success(&three, "alpha.i")?;
            if three.output != 3u64.to_le_bytes() {
                return Err(format!("the counter after the upgrade: {:?}", three.output));
            }
            Ok(())
        })(),
    ));
    Ok(out)
}

fn workflow() -> Vec<Evidence> {
    guard("set up the workflow", run_workflow)
}

fn run_workflow() -> R<Vec<Evidence>> {
    let mut w = World::new(0x0014_0004)?;
    let code = workflow_module()?;
    w.pass("contract-deploy", vec![b"case".to_vec(), code])?;
    let mut out = Vec::new();
    let step = |s: u8| vec![vec![s]];
    let expect =
        |w: &mut World, what: &str, who: Who, s: u8, want: Result<u8, &str>| -> R<Evidence> {
            let r = w.call(who, "case", "approve", step(s))?;
            let state = w.read("wasm/case/s")?;
            let result = match (&r.status, want) {
                (Status::Success, Ok(after)) => {
                    if state == Some(vec![after]) && has_event(&r, "approved") {
                        Ok(())
                    } else {
                        Err(format!("state {state:?}, events {}", r.events.len()))
                    }
                }
                (Status::Failed { message, .. }, Err(why)) => {
                    if code_name(&r) == "CONTRACT_ABORTED" && message.contains(why) {
                        Ok(())
                    } else {
                        Err(format!("{}: {message}", code_name(&r)))
                    }
                }
                (s, _) => Err(format!("{s:?}")),
            };
            Ok(case(what, result))
        };
    out.push(expect(
        &mut w,
        "step 1 before step 0 is refused (out of order), the case stays at step 0",
        Who::UserB,
        1,
        Err("out of order"),
    )?);
    out.push(expect(
        &mut w,
        "step 0 by the wrong organisation is refused",
        Who::UserB,
        0,
        Err("wrong organisation"),
    )?);
    out.push(expect(
        &mut w,
        "step 0 by its organisation moves the case to step 1",
        Who::UserA,
        0,
        Ok(1),
    )?);
    out.push(expect(
        &mut w,
        "step 0 again is refused (out of order)",
        Who::UserA,
        0,
        Err("out of order"),
    )?);
    out.push(expect(
        &mut w,
        "step 1 by the first organisation is refused (wrong organisation)",
        Who::AdminA,
        1,
        Err("wrong organisation"),
    )?);
    out.push(expect(
        &mut w,
        "step 1 by its organisation completes the case",
        Who::UserB,
        1,
        Ok(2),
    )?);
    out.push(expect(
        &mut w,
        "no step after the last",
        Who::UserB,
        2,
        Err("case closed"),
    )?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_check_passes_with_evidence() {
        for c in CHECKS {
            let o = c.execute();
            assert!(o.pass && o.cases >= 3, "{}: {:#?}", c.id, o.evidence);
        }
    }

    /// The premise of the workflow check's wrong-organisation case: the host does not refuse a
    /// step by the wrong organisation by itself, so a module that ignores the organisation
    /// approves step 0 for anyone (a Success where the check expects `wrong organisation`).
    /// The check's refusal therefore comes from the module's rule, not from the host.
    #[test]
    fn a_module_without_the_organisation_rule_lets_the_wrong_organisation_approve() {
        let mut w = World::new(7).unwrap_or_else(|e| panic!("{e}"));
        let code = wat::parse_str(
            r#"(module
  (import "gmchain" "storage_write" (func $swrite (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "s\01")
  (func (export "call") (call $swrite (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 1))))"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        w.pass("contract-deploy", vec![b"case".to_vec(), code])
            .unwrap_or_else(|e| panic!("{e}"));
        let r = w
            .call(Who::UserB, "case", "approve", vec![vec![0]])
            .unwrap_or_else(|e| panic!("{e}"));
        // The lax contract accepts the wrong organisation: the check's expectation fails.
        assert_eq!(r.status, Status::Success);
    }
}
