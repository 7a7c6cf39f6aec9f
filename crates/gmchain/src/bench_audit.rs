//! `gmchain bench audit` (issue 16): trace queries against the chain's length, and the trace
//! indexes' share of commit time.
//!
//! Everything runs in this process, through the node's own code: a chain in a temporary
//! directory (RocksDB, as a node keeps it) with one validator and four organisations, filled
//! block by block with signed attestations that go through admission (`LocalNode::submit`), the
//! pool and the single-validator engine (`LocalNode::produce_block`: the ledger's propose,
//! the validator's precommit, the ledger's commit in one synced batch). The chain grows to each
//! size in turn (10⁴, 10⁵, …); at each size the traces are asked of `LocalNode::trace`, the
//! method behind the Supervision API's `Trace`, against the tip's state, with proofs:
//! (a) the rare signer's whole trace (10 entries), (b) a page of 100 entries of the hot signer,
//! (c) the hot signer's entries in one block. The claim: time(10⁶) / time(10⁴) stays near 1
//! for (a) and (b) (the state tree's depth grows with log n), not 100.
//!
//! The index cost: the same blocks (the same admitted transactions) proposed and committed by
//! two ledgers, each over its own RocksDB store, one with the executor of every node and one
//! with the benchmark-only executor that writes no trace index, alternating which goes first;
//! ratio = (with − without) ÷ with. Issue 16's bound: ≤ 10 %.
//!
//! Who signs what is a function of the transaction's number ([`who`]): one hot signer (every
//! tenth transaction), one rare signer (exactly 10 transactions, spread over the first size),
//! the rest round-robin over many signers of three organisations of different sizes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crypto::{Digest, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use execution::{Genesis, TraceEntry, TraceKind, VerifiedTx};
use pki::{Certificate, IssueRequest, Role, Serial, UnixTime, Validity};
use storage::ChainStore;
use storage_rocksdb::RocksBackend;
use types::{
    ChainId, CommitCertificate, Encode, Height, Sender, SignedTx, Transaction, Vote, VoteKind,
};

use crate::Failure;

/// Settings of the audit benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditBenchArgs {
    /// Chain lengths (transactions) at which the traces are measured, ascending; one chain
    /// grows through them. The first holds the rare signer's 10 transactions.
    #[arg(long, default_value = "10000,100000", value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Transactions per block.
    #[arg(long, default_value_t = 1000)]
    pub block_txs: u64,
    /// Repetitions of each query; the median is reported.
    #[arg(long, default_value_t = 200)]
    pub reps: usize,
    /// Signers besides the hot and the rare one.
    #[arg(long, default_value_t = 48)]
    pub signers: usize,
    /// Blocks of the index-cost comparison (each executed and committed by both ledgers);
    /// 0 skips it.
    #[arg(long, default_value_t = 60)]
    pub commit_blocks: u64,
    /// Keep the chains here instead of a temporary directory (removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench audit: {what}: {e}"))
}

/// 2026-01-01T00:00:00Z: the fixture's virtual time (certificates, block timestamps).
const T0: u64 = 1_767_225_600;
const CHAIN: &str = "audit-bench";
/// The genesis block's time; block `h` is stamped one second per height after it.
const GENESIS_MS: u64 = (T0 + 86_400) * 1000;
/// The organisations: the hot signer and the validator are in the first, the rare signer in
/// the second; the many signers go to the first, third and fourth, in shares 3:2:1.
const ORGS: [&str; 4] = ["Org A", "Org B", "Org C", "Org D"];

/// Who signs transaction number `i` (from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// The hot signer: every tenth transaction (`i % 10 == 3`).
    Hot,
    /// The rare signer: the middles of the ten tenths of the first size.
    Rare,
    /// Signer `j` of the many (round-robin).
    Many(usize),
}

/// Who signs transaction `i` when the first measured size is `first` and there are `many`
/// other signers.
pub(crate) fn who(i: u64, first: u64, many: usize) -> Who {
    let step = (first / 10).max(1);
    if i < step * 10 && i % step == step / 2 {
        Who::Rare
    } else if i % 10 == 3 {
        Who::Hot
    } else {
        Who::Many((i % many.max(1) as u64) as usize)
    }
}

/// The organisation (index into [`ORGS`]) of many-signer `j`.
fn org_of_many(j: usize) -> usize {
    match j % 6 {
        0..=2 => 0,
        3 | 4 => 2,
        _ => 3,
    }
}

/// How many of transactions `range` `pick` selects.
pub(crate) fn count_of(range: std::ops::Range<u64>, first: u64, many: usize, pick: Who) -> u64 {
    range.filter(|i| who(*i, first, many) == pick).count() as u64
}

/// A signing identity of the fixture.
struct Identity {
    key: Arc<SoftSigner>,
    cert: Certificate,
}

/// The fixture's identities and genesis.
struct World {
    genesis: Genesis,
    validator: Identity,
    hot: Identity,
    rare: Identity,
    many: Vec<Identity>,
}

fn world(signers: usize) -> Result<World, Failure> {
    // Deterministic keys: the same run makes the same chain.
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(16)));
    let validity = |days: u64| Validity {
        not_before: UnixTime(T0),
        not_after: UnixTime(T0 + days * 86_400),
    };
    let mut roots = Vec::new();
    for (i, name) in ORGS.iter().enumerate() {
        let key = p.generate().map_err(|e| fail("key", e))?;
        let serial = Serial::from_bytes(&[i as u8 + 1]).map_err(|e| fail("serial", e))?;
        let ca = pki::issue_root(&format!("{name} CA"), name, serial, validity(3650), &key)
            .map_err(|e| fail("root", e))?;
        let crl = pki::issue_crl(&ca, &key, 1, UnixTime(T0), UnixTime(T0 + 365 * 86_400), &[])
            .map_err(|e| fail("crl", e))?;
        roots.push((key, ca, crl));
    }
    let mut serial = 0x100u32;
    let mut leaf = |org: usize, role: Role, cn: &str| -> Result<Identity, Failure> {
        serial += 1;
        let key = p.generate().map_err(|e| fail("key", e))?;
        let (ca_key, ca, _) = &roots[org];
        let cert = pki::issue(
            ca,
            ca_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: ORGS[org],
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&serial.to_be_bytes()).map_err(|e| fail("serial", e))?,
                validity: validity(365),
            },
        )
        .map_err(|e| fail(cn, e))?;
        Ok(Identity {
            key: Arc::new(key),
            cert,
        })
    };
    let validator = leaf(0, Role::NodeSign, "validator")?;
    let hot = leaf(0, Role::User, "hot")?;
    let rare = leaf(1, Role::User, "rare")?;
    let many = (0..signers.max(1))
        .map(|j| leaf(org_of_many(j), Role::User, &format!("user{j}")))
        .collect::<Result<Vec<_>, _>>()?;
    let json = serde_json::json!({
        "format": 3,
        "chain_id": CHAIN,
        "test_chain": true,
        "timestamp_ms": GENESIS_MS,
        "params": { "expiry_window": 1000, "max_txs_per_block": 10000 },
        "organisations": roots.iter().zip(ORGS).map(|((_, ca, crl), name)| serde_json::json!({
            "name": name,
            "ca_cert": ca.to_pem(),
            "crl": crl.to_pem(),
        })).collect::<Vec<_>>(),
        "validators": [{ "name": "validator", "cert": validator.cert.to_pem() }],
    });
    let genesis =
        Genesis::from_json(json.to_string().as_bytes()).map_err(|e| fail("genesis", e))?;
    Ok(World {
        genesis,
        validator,
        hot,
        rare,
        many,
    })
}

impl World {
    fn signer(&self, w: Who) -> &Identity {
        match w {
            Who::Hot => &self.hot,
            Who::Rare => &self.rare,
            Who::Many(j) => &self.many[j],
        }
    }

    /// Signs transactions `range` (attestations of distinct digests; `domain` keeps two
    /// chains' digests apart from nothing but their own) expiring at `expiry`, on all cores.
    fn sign(
        &self,
        range: std::ops::Range<u64>,
        first: u64,
        expiry: Height,
        domain: u8,
    ) -> Result<Vec<Vec<u8>>, Failure> {
        let chain_id = ChainId::new(CHAIN).map_err(|e| fail("chain id", e))?;
        let ids: Vec<u64> = range.collect();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = ids.len().div_ceil(threads).max(1);
        let many = self.many.len();
        let signed: Vec<Result<Vec<Vec<u8>>, Failure>> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    let chain_id = chain_id.clone();
                    s.spawn(move || {
                        part.iter()
                            .map(|&i| {
                                let id = self.signer(who(i, first, many));
                                let mut salt = [0u8; 16];
                                salt[0] = domain;
                                salt[8..].copy_from_slice(&i.to_be_bytes());
                                let digest = crypto_sm::sm3::sm3(&salt);
                                let tx = Transaction {
                                    fuel_limit: None,
                                    chain_id: chain_id.clone(),
                                    salt,
                                    expiry,
                                    sender: Sender::Certificate(id.cert.der().to_vec()),
                                    call: gmchain_sdk::anchor_call(
                                        &digest,
                                        "bench",
                                        "",
                                        Vec::new(),
                                    ),
                                };
                                SignedTx::sign(tx, id.key.as_ref(), &UserId::default())
                                    .map(|t| t.to_bytes())
                                    .map_err(|e| fail("sign", e))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(fail("sign", "a thread panicked")))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(ids.len());
        for part in signed {
            out.extend(part?);
        }
        Ok(out)
    }
}

/// Runs `f` on `items` split over all cores, in order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Result<Vec<R>, Failure> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().map_err(|_| fail("worker", "a thread panicked"))?);
        }
        Ok(out)
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Time spent building the chain, by step (seconds).
#[derive(Default, Clone, Copy)]
struct BuildTime {
    sign: f64,
    admit: f64,
    produce: f64,
}

/// The growing chain: a node over RocksDB, the clock its blocks are stamped with.
struct Chain<'w> {
    world: &'w World,
    node: node::LocalNode,
    clock: Arc<AtomicU64>,
    first: u64,
    block_txs: u64,
    built: u64,
    time: BuildTime,
}

impl Chain<'_> {
    /// Adds blocks until the chain holds `n` transactions (beyond genesis).
    fn grow_to(&mut self, n: u64) -> Result<(), Failure> {
        // Signed ten blocks at a time: enough per batch to keep both cores busy.
        while self.built < n {
            let batch_end = n.min(self.built + 10 * self.block_txs);
            let tip = self.node.tip().0.height.0;
            let t = Instant::now();
            let txs = self
                .world
                .sign(self.built..batch_end, self.first, Height(tip + 100), 0)?;
            self.time.sign += t.elapsed().as_secs_f64();
            for block in txs.chunks(self.block_txs as usize) {
                let t = Instant::now();
                let admitted = parallel(block, |b| self.node.submit(b, false).map(|_| ()))?;
                if let Some((i, Err(r))) = admitted.iter().enumerate().find(|(_, r)| r.is_err()) {
                    return Err(fail(
                        &format!("admission of transaction {}", self.built + i as u64),
                        r,
                    ));
                }
                self.time.admit += t.elapsed().as_secs_f64();
                let t = Instant::now();
                self.clock.fetch_add(1000, Ordering::Relaxed);
                let height = self
                    .node
                    .produce_block()
                    .map_err(|e| fail("produce", e))?
                    .ok_or_else(|| fail("produce", "no block was made"))?;
                self.time.produce += t.elapsed().as_secs_f64();
                let header = self.node.tip().1;
                if u64::from(header.tx_count) != block.len() as u64 || header.height != height {
                    return Err(fail(
                        "produce",
                        format!(
                            "block {} holds {} transactions, {} were submitted",
                            height.0,
                            header.tx_count,
                            block.len()
                        ),
                    ));
                }
                self.built += block.len() as u64;
            }
        }
        Ok(())
    }

    /// The counter of a trace index at the tip.
    fn count(&self, kind: TraceKind, id: &str) -> Result<u64, Failure> {
        let key = execution::keys::full(
            execution::keys::AUDIT,
            &execution::keys::audit::count(kind.as_str(), id),
        );
        let v = self
            .node
            .with_state(|v| execution::StateRead::read(v, &key))
            .map_err(|e| fail("state", e))?
            .map_err(|e| fail("state", e))?;
        Ok(v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// The transactions the subject's index holds at the tip: the rows of all its entries.
    fn transactions(&self, kind: TraceKind, id: &str) -> Result<u64, Failure> {
        let n = self.count(kind, id)?;
        let mut total = 0u64;
        for seq in 0..n {
            let key = execution::keys::full(
                execution::keys::AUDIT,
                &execution::keys::audit::entry(kind.as_str(), id, seq),
            );
            let v = self
                .node
                .with_state(|v| execution::StateRead::read(v, &key))
                .map_err(|e| fail("state", e))?
                .map_err(|e| fail("state", e))?
                .ok_or_else(|| fail("state", format!("entry {seq} below the counter")))?;
            total += TraceEntry::decode_bytes(&v)
                .map_err(|e| fail("entry", e))?
                .rows
                .len() as u64;
        }
        Ok(total)
    }
}

/// One query's measurements.
struct Query {
    entries: usize,
    transactions: u64,
    first_us: f64,
    median_us: f64,
}

impl Query {
    fn json(&self) -> String {
        format!(
            "{{ \"entries\": {}, \"transactions\": {}, \"first_us\": {:.1}, \"median_us\": {:.1} }}",
            self.entries, self.transactions, self.first_us, self.median_us
        )
    }
}

/// What was measured at one size.
struct Row {
    size: u64,
    /// Seconds spent building the chain up to this size.
    build_s: f64,
    time: BuildTime,
    /// The rare signer's whole trace, the hot signer's page of 100, its entries in one block.
    queries: [Query; 3],
}

/// Checks a page: every entry's and both counters' proofs against the state roots of the
/// range's ends, every entry decodes and names `signer` (and lies in the range).
fn check_page(
    chain: &Chain<'_>,
    page: &node::supervise::TracePage,
    kind: TraceKind,
    id: &str,
    signer: &Digest,
) -> Result<(), Failure> {
    use execution::keys::{AUDIT, audit, full};
    let root_at = |h: u64| -> Result<Digest, Failure> {
        Ok(chain
            .node
            .store()
            .header(Height(h))
            .map_err(|e| fail("header", e))?
            .ok_or_else(|| fail("header", format!("no header at {h}")))?
            .state_root)
    };
    let (start_root, end_root) = (root_at(page.from.0 - 1)?, root_at(page.to.0)?);
    let count_key = full(AUDIT, &audit::count(kind.as_str(), id));
    let (sp, ep) = page
        .count_proofs
        .as_ref()
        .ok_or_else(|| fail("trace", "no counter proofs"))?;
    let be = |n: u64| (n > 0).then(|| n.to_be_bytes().to_vec());
    state::verify_proof(start_root, &count_key, be(page.start_count).as_deref(), sp)
        .map_err(|e| fail("start counter proof", e))?;
    state::verify_proof(end_root, &count_key, be(page.end_count).as_deref(), ep)
        .map_err(|e| fail("end counter proof", e))?;
    for (seq, bytes, proof) in &page.entries {
        let key = full(AUDIT, &audit::entry(kind.as_str(), id, *seq));
        let proof = proof
            .as_ref()
            .ok_or_else(|| fail("trace", "an entry without its proof"))?;
        state::verify_proof(end_root, &key, Some(bytes), proof)
            .map_err(|e| fail("entry proof", e))?;
        let e = TraceEntry::decode(&key, bytes).map_err(|e| fail("entry", e))?;
        if e.rows.iter().any(|r| r.signer != *signer) || e.height < page.from || e.height > page.to
        {
            return Err(fail(
                "trace",
                format!("entry {seq} names another signer or lies outside the range"),
            ));
        }
    }
    Ok(())
}

/// The transactions a page's entries hold.
fn rows_of(p: &node::supervise::TracePage) -> Result<u64, Failure> {
    let mut n = 0u64;
    for (_, bytes, _) in &p.entries {
        n += TraceEntry::decode_bytes(bytes)
            .map_err(|e| fail("entry", e))?
            .rows
            .len() as u64;
    }
    Ok(n)
}

/// Measures `ask` `reps` times; checks the first answer with `check`.
fn measure(
    reps: usize,
    ask: impl Fn() -> Result<node::supervise::TracePage, Failure>,
    check: impl Fn(&node::supervise::TracePage) -> Result<(), Failure>,
) -> Result<Query, Failure> {
    let t = Instant::now();
    let page = ask()?;
    let first_us = t.elapsed().as_secs_f64() * 1e6;
    check(&page)?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let p = ask()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if p.entries.len() != page.entries.len() {
            return Err(fail("trace", "a repeated query answered differently"));
        }
    }
    Ok(Query {
        entries: page.entries.len(),
        transactions: rows_of(&page)?,
        first_us,
        median_us: median(times),
    })
}

/// The three queries at the tip of `chain`.
fn queries(chain: &Chain<'_>, reps: usize) -> Result<[Query; 3], Failure> {
    let node = &chain.node;
    let tip = node.tip().0.height;
    let many = chain.world.many.len();
    let rare_cert = chain.world.rare.cert.fingerprint();
    let hot_cert = chain.world.hot.cert.fingerprint();
    let (rare, hot) = (rare_cert.to_hex(), hot_cert.to_hex());
    let trace = |id: &str, from: u64, to: u64, offset: u64, limit: u32| {
        node.trace(
            TraceKind::Cert,
            id,
            Height(from),
            Height(to),
            offset,
            limit,
            true,
        )
        .map_err(|e| fail("trace", e))
    };
    // (a) The rare signer's whole trace: its 10 transactions.
    let a = measure(
        reps,
        || trace(&rare, 1, tip.0, 0, 100),
        |p| {
            if rows_of(p)? != 10 || p.more {
                return Err(fail(
                    "trace",
                    format!(
                        "the rare signer's trace holds {} transactions, not 10",
                        rows_of(p)?
                    ),
                ));
            }
            check_page(chain, p, TraceKind::Cert, &rare, &rare_cert)
        },
    )?;
    // (b) A page of 10 entries (10 blocks' worth of the hot signer's transactions, about 100
    // each) from the middle of its trace.
    let hot_total = chain.count(TraceKind::Cert, &hot)?;
    let page = hot_total.min(10);
    let offset = (hot_total / 2).min(hot_total - page);
    let b = measure(
        reps,
        || trace(&hot, 1, tip.0, offset, 10),
        |p| {
            if p.entries.len() as u64 != page || p.end_count != hot_total {
                return Err(fail(
                    "trace",
                    format!("the hot signer's page is not {page} entries"),
                ));
            }
            check_page(chain, p, TraceKind::Cert, &hot, &hot_cert)
        },
    )?;
    // (c) The hot signer's entries in the middle block.
    let h = (tip.0 / 2).max(1);
    let bt = chain.block_txs;
    let expected = count_of((h - 1) * bt..h * bt, chain.first, many, Who::Hot);
    let c = measure(
        reps,
        || trace(&hot, h, h, 0, 100),
        |p| {
            if rows_of(p)? != expected || p.more {
                return Err(fail(
                    "trace",
                    format!(
                        "block {h} holds {} of the hot signer's transactions, the trace {}",
                        expected,
                        rows_of(p)?
                    ),
                ));
            }
            check_page(chain, p, TraceKind::Cert, &hot, &hot_cert)
        },
    )?;
    Ok([a, b, c])
}

/// The index-cost comparison: per-block times of the two ledgers.
#[derive(Default)]
struct CommitCost {
    blocks: u64,
    // Sums over the blocks (seconds): propose (re-check, execution, state apply) and commit
    // (certificate check, the synced batch), with and without the trace indexes.
    propose_with: f64,
    commit_with: f64,
    propose_without: f64,
    commit_without: f64,
    // Per-block (with − without) ÷ with, for the median.
    ratios: Vec<f64>,
    // Bytes of the two stores' state at the end (RocksDB files).
    bytes_with: u64,
    bytes_without: u64,
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn commit_cost(world: &World, dir: &Path, args: &AuditBenchArgs) -> Result<CommitCost, Failure> {
    let open = |name: &str, indexes: bool| -> Result<ledger::Ledger<RocksBackend>, Failure> {
        let path = dir.join(name);
        let backend = RocksBackend::open(&path, true).map_err(|e| fail("store", e))?;
        let store = ChainStore::new(backend, types::Limits::default());
        ledger::init(&store, &world.genesis).map_err(|e| fail("init", e))?;
        if indexes {
            ledger::Ledger::open(store, world.genesis.clone())
        } else {
            ledger::Ledger::open_without_trace_indexes_for_bench(store, world.genesis.clone())
        }
        .map_err(|e| fail("open", e))
    };
    let with = open("with-indexes", true)?;
    let without = open("without-indexes", false)?;
    let validator = world.validator.cert.fingerprint();
    let first = args.sizes.first().copied().unwrap_or(10_000);
    let bt = args.block_txs;
    let mut cost = CommitCost::default();
    let step = |l: &ledger::Ledger<RocksBackend>,
                txs: Vec<VerifiedTx>,
                ms: u64|
     -> Result<(f64, f64), Failure> {
        let t = Instant::now();
        let proposed = l
            .propose(txs, validator, ms)
            .map_err(|e| fail("propose", e))?;
        let propose = t.elapsed().as_secs_f64();
        if !proposed.dropped.is_empty() || !proposed.left_out.is_empty() {
            return Err(fail("propose", "a transaction was refused or left out"));
        }
        let executed = proposed.executed;
        let (height, hash) = (executed.height(), executed.hash());
        // The validator's signature is the node's HSM's business: outside the timing.
        let precommit = Vote {
            chain_id: world.genesis.chain_id.clone(),
            height,
            round: 0,
            kind: VoteKind::Precommit,
            block: Some(hash),
            validator,
        }
        .sign(world.validator.key.as_ref())
        .map_err(|e| fail("precommit", e))?;
        let certificate = CommitCertificate::from_votes(height, 0, hash, [&precommit]);
        let t = Instant::now();
        l.commit(executed, certificate)
            .map_err(|e| fail("commit", e))?;
        Ok((propose, t.elapsed().as_secs_f64()))
    };
    for b in 0..args.commit_blocks {
        let tip = with.head().tip.height.0;
        let ms = GENESIS_MS + (b + 1) * 1000;
        let bytes = world.sign(b * bt..(b + 1) * bt, first, Height(tip + 100), 1)?;
        let now = UnixTime(ms / 1000);
        let admitted = parallel(&bytes, |x| with.admit(x, now, &|_| false))?;
        let txs = admitted
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| fail("admission", r))?;
        // Alternate which ledger goes first, so neither always meets a warmer cache.
        let (w, wo) = if b % 2 == 0 {
            let w = step(&with, txs.clone(), ms)?;
            (w, step(&without, txs, ms)?)
        } else {
            let wo = step(&without, txs.clone(), ms)?;
            (step(&with, txs, ms)?, wo)
        };
        cost.blocks += 1;
        cost.propose_with += w.0;
        cost.commit_with += w.1;
        cost.propose_without += wo.0;
        cost.commit_without += wo.1;
        let (tw, two) = (w.0 + w.1, wo.0 + wo.1);
        cost.ratios.push((tw - two) / tw);
        if (b + 1) % 10 == 0 {
            eprintln!(
                "  index cost: {} blocks, ratio so far {:.3}",
                b + 1,
                median(cost.ratios.clone())
            );
        }
    }
    drop(with);
    drop(without);
    cost.bytes_with = dir_bytes(&dir.join("with-indexes"));
    cost.bytes_without = dir_bytes(&dir.join("without-indexes"));
    Ok(cost)
}

impl CommitCost {
    fn json(&self) -> String {
        let per = |s: f64| s * 1000.0 / self.blocks.max(1) as f64;
        let with = self.propose_with + self.commit_with;
        let without = self.propose_without + self.commit_without;
        let ratio = if with > 0.0 {
            (with - without) / with
        } else {
            0.0
        };
        let exec_ratio = if self.propose_with > 0.0 {
            (self.propose_with - self.propose_without) / self.propose_with
        } else {
            0.0
        };
        format!(
            "{{\n    \"blocks\": {},\n    \"with_indexes_ms_per_block\": {{ \"propose\": {:.2}, \"commit\": {:.2}, \"total\": {:.2} }},\n    \"without_indexes_ms_per_block\": {{ \"propose\": {:.2}, \"commit\": {:.2}, \"total\": {:.2} }},\n    \"ratio\": {:.3},\n    \"ratio_median_of_blocks\": {:.3},\n    \"ratio_propose_only\": {:.3},\n    \"store_bytes_with\": {},\n    \"store_bytes_without\": {},\n    \"target_ratio_at_most\": 0.10\n  }}",
            self.blocks,
            per(self.propose_with),
            per(self.commit_with),
            per(with),
            per(self.propose_without),
            per(self.commit_without),
            per(without),
            ratio,
            median(self.ratios.clone()),
            exec_ratio,
            self.bytes_with,
            self.bytes_without,
        )
    }
}

fn check_sizes(args: &AuditBenchArgs) -> Result<(), Failure> {
    if args.sizes.is_empty() || args.sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Failure::BadInput(format!(
            "bench audit: --sizes {:?} must be ascending and distinct",
            args.sizes
        )));
    }
    let bt = args.block_txs;
    if bt == 0 || bt > 10_000 {
        return Err(Failure::BadInput(format!(
            "bench audit: --block-txs {bt}: give 1 to 10000"
        )));
    }
    if let Some(s) = args.sizes.iter().find(|s| **s % bt != 0 || **s < 10 * bt) {
        return Err(Failure::BadInput(format!(
            "bench audit: size {s} must be a multiple of --block-txs {bt} and hold 10 blocks or more"
        )));
    }
    Ok(())
}

pub(crate) fn run(args: &AuditBenchArgs) -> Result<(), Failure> {
    check_sizes(args)?;
    let tmp;
    let dir: &Path = match &args.dir {
        Some(d) => d,
        None => {
            tmp = std::env::temp_dir().join(format!("gmchain-bench-audit-{}", std::process::id()));
            &tmp
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("directory", e))?;
    let report = run_in(args, dir);
    // The stores are large (gigabytes at 10⁶ transactions): never left behind.
    let _ = std::fs::remove_dir_all(dir);
    let report = report?;
    if let Some(out) = &args.out {
        std::fs::write(out, &report).map_err(|e| fail("--out", e))?;
    }
    print!("{report}");
    Ok(())
}

fn run_in(args: &AuditBenchArgs, dir: &Path) -> Result<String, Failure> {
    let world = world(args.signers)?;
    let first = args.sizes[0];
    let cost = if args.commit_blocks > 0 {
        eprintln!(
            "index cost: {} blocks of {} transactions, with and without the trace indexes …",
            args.commit_blocks, args.block_txs
        );
        Some(commit_cost(&world, dir, args)?)
    } else {
        None
    };
    let data = dir.join("node");
    node::init(&data, &world.genesis).map_err(|e| fail("init", e))?;
    let clock = Arc::new(AtomicU64::new(GENESIS_MS));
    let c = clock.clone();
    let validator = node::Validator {
        signer: world.validator.key.clone(),
        certificate: world.validator.cert.clone(),
    };
    let node = node::LocalNode::open(
        &data,
        validator,
        node::config::BlockConfig {
            interval_ms: 1000,
            max_txs: args.block_txs as u32,
            max_pool: 2 * args.block_txs as usize,
        },
        Arc::new(move || c.load(Ordering::Relaxed)),
    )
    .map_err(|e| fail("open", e))?;
    let mut chain = Chain {
        world: &world,
        node,
        clock,
        first,
        block_txs: args.block_txs,
        built: 0,
        time: BuildTime::default(),
    };
    let many = world.many.len();
    let mut rows: Vec<Row> = Vec::new();
    // The build's time so far (not the queries').
    let mut build_s = 0.0;
    for &size in &args.sizes {
        eprintln!("building the chain to {size} transactions …");
        let started = Instant::now();
        chain.grow_to(size)?;
        build_s += started.elapsed().as_secs_f64();
        // The fixture holds what was built: the counters at the tip against the plan.
        let hot = chain.transactions(TraceKind::Cert, &world.hot.cert.fingerprint().to_hex())?;
        let total = chain.transactions(TraceKind::Contract, "attestation")?;
        let want_hot = count_of(0..size, first, many, Who::Hot);
        if hot != want_hot || total != size {
            return Err(Failure::NotVerified(format!(
                "bench audit: at {size} transactions the indexes count {hot} hot and {total} in all, the plan {want_hot} and {size}"
            )));
        }
        eprintln!("  built in {build_s:.1} s; querying …");
        let [a, b, c] = queries(&chain, args.reps)?;
        eprintln!(
            "  rare {:.1} µs, hot page {:.1} µs, hot block {:.1} µs",
            a.median_us, b.median_us, c.median_us
        );
        rows.push(Row {
            size,
            build_s,
            time: chain.time,
            queries: [a, b, c],
        });
    }
    let rows_json: Vec<String> = rows
        .iter()
        .map(|r| {
            let (size, build_s, t) = (r.size, r.build_s, r.time);
            let [a, b, c] = &r.queries;
            format!(
                "    {{ \"transactions\": {size}, \"blocks\": {}, \"build_s\": {build_s:.1}, \"build_sign_s\": {:.1}, \"build_admit_s\": {:.1}, \"build_produce_s\": {:.1},\n      \"rare_whole_trace\": {},\n      \"hot_page_10_entries\": {},\n      \"hot_one_block\": {} }}",
                size / args.block_txs,
                t.sign,
                t.admit,
                t.produce,
                a.json(),
                b.json(),
                c.json()
            )
        })
        .collect();
    let growth = |q: usize| match (rows.first(), rows.last()) {
        (Some(f), Some(l)) if f.queries[q].median_us > 0.0 => {
            l.queries[q].median_us / f.queries[q].median_us
        }
        _ => 0.0,
    };
    Ok(format!(
        "{{\n  \"block_txs\": {},\n  \"signers\": {},\n  \"reps\": {},\n  \"sizes\": [\n{}\n  ],\n  \"growth_last_over_first\": {{ \"rare_whole_trace\": {:.2}, \"hot_page_10_entries\": {:.2}, \"hot_one_block\": {:.2}, \"chain\": {:.0} }},\n  \"index_cost\": {}\n}}\n",
        args.block_txs,
        many + 2,
        args.reps,
        rows_json.join(",\n"),
        growth(0),
        growth(1),
        growth(2),
        args.sizes.last().copied().unwrap_or(0) as f64 / first as f64,
        cost.map_or_else(|| "null".to_string(), |c| c.json()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_ten_rare_transactions_at_every_size_and_a_tenth_hot() {
        let (first, many) = (10_000, 48);
        for size in [10_000u64, 100_000] {
            assert_eq!(count_of(0..size, first, many, Who::Rare), 10, "{size}");
            let hot = count_of(0..size, first, many, Who::Hot);
            assert!(hot.abs_diff(size / 10) <= 10, "{size}: {hot}");
        }
        // Spread over the first size: one in each tenth.
        let rare: Vec<u64> = (0..first)
            .filter(|i| who(*i, first, many) == Who::Rare)
            .collect();
        for (k, i) in rare.iter().enumerate() {
            assert_eq!(i / 1000, k as u64, "{rare:?}");
        }
        // Every many-signer signs, and the organisations differ in size.
        let mut by_org = [0u64; 4];
        for i in 0..first {
            if let Who::Many(j) = who(i, first, many) {
                by_org[org_of_many(j)] += 1;
            }
        }
        assert!(by_org[0] > by_org[2] && by_org[2] > by_org[3] && by_org[1] == 0);
    }

    #[test]
    fn sizes_are_checked() {
        let args = |sizes: Vec<u64>, block_txs| AuditBenchArgs {
            sizes,
            block_txs,
            reps: 1,
            signers: 4,
            commit_blocks: 0,
            dir: None,
            out: None,
        };
        assert!(check_sizes(&args(vec![10_000, 100_000], 1000)).is_ok());
        assert!(check_sizes(&args(vec![100_000, 10_000], 1000)).is_err());
        assert!(check_sizes(&args(vec![10_500], 1000)).is_err());
        assert!(check_sizes(&args(vec![5_000], 1000)).is_err());
        assert!(check_sizes(&args(vec![10_000], 0)).is_err());
    }

    /// A small chain through the node's code: the counters hold what was built, and the rare
    /// signer's trace returns exactly its 10 entries, with proofs, at both sizes.
    #[test]
    fn a_small_chain_traces_exactly_what_was_built() {
        let dir = tempfile::tempdir().unwrap();
        let args = AuditBenchArgs {
            sizes: vec![1000, 2000],
            block_txs: 100,
            reps: 2,
            signers: 6,
            commit_blocks: 2,
            dir: None,
            out: None,
        };
        let report = run_in(&args, dir.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        for (row, size) in v["sizes"].as_array().unwrap().iter().zip([1000, 2000]) {
            assert_eq!(row["transactions"], size);
            assert_eq!(row["rare_whole_trace"]["transactions"], 10);
            assert_eq!(row["hot_page_10_entries"]["entries"], 10);
        }
        assert_eq!(v["index_cost"]["blocks"], 2);
        assert!(v["index_cost"]["store_bytes_with"].as_u64().unwrap() > 0);
    }
}
