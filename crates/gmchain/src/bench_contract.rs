//! `gmchain bench node --workload workflow|both`: WASM contract calls on a node (issue 14,
//! Performance). The workflow example (`contracts/examples/workflow`) is deployed through
//! governance on a fresh development chain, a kind of case with `--steps` steps is defined
//! and `--txs / --steps` cases are opened (measured too, as `open`); the measured load is
//! then `--txs` pre-signed version 2 transactions calling `approve` on those cases, `--steps`
//! approvals per case in any order, from `--clients` keys with `--concurrency` in flight,
//! exactly as the attestation load. `approve` is what an agency does most: a case is opened
//! once and approved at each of its steps, by a different office each time.
//!
//! After the load: the fuel of a sample of receipts fetched with `GetReceipt`, the node's
//! module cache counters when it exports them, and the cost of a storage write at the node
//! level: a second contract (`store`, WAT below) whose call writes `--write-keys` keys, run
//! against the same contract writing none.

use std::path::{Path, PathBuf};

use api::v1 as pb;
use crypto::{Signer, UserId};
use serde_json::{Value, json};
use types::{
    Call, ChainId, Decode, Encode, Height, Receipt, Sender, SignedTx, Status, Transaction,
};

use crate::Failure;
use crate::bench_node::{
    Client, NodeBenchArgs, Workload, attest_phase, client_and_status, closed_loop_checked,
    connections, cpu_per_tx, cpu_seconds, metric, percentile, presign_calls, scrape,
    start_bench_chain, stop_node,
};
use crate::cli_tx::status_failure;

/// Settings of the contract workloads.
#[derive(Debug, clap::Args)]
pub(crate) struct ContractBenchArgs {
    /// The workflow module to deploy [default: built from `--contract-src` with `gmchain
    /// contract build`].
    #[arg(long, value_name = "FILE.wasm")]
    pub contract: Option<PathBuf>,
    /// The workflow example's crate, built when `--contract` is not given.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "contracts/examples/workflow"
    )]
    pub contract_src: PathBuf,
    /// The fuel limit of every contract call. The chain's block fuel budget (default 2·10⁹)
    /// bounds a block to budget / limit calls, so keep it near what a call uses.
    #[arg(long, default_value_t = 1_000_000)]
    pub fuel_limit: u64,
    /// Steps of the benchmark's kind of case: the `--txs` approvals go to `--txs / --steps`
    /// cases.
    #[arg(long, default_value_t = 4)]
    pub steps: u64,
    /// Keys one call of the storage-write probe writes (0: no probe).
    #[arg(long, default_value_t = 16)]
    pub write_keys: u32,
    /// With `--workload both`: how many times attest then workflow run, alternating.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench node: {what}: {e}"))
}

/// The name the workflow is deployed under.
const WORKFLOW: &str = "workflow";

/// The name the storage-write probe is deployed under.
const STORE: &str = "store";

/// The kind of case the benchmark defines.
const KIND: &str = "bench";

/// Receipts fetched with `GetReceipt` for the fuel figures.
const RECEIPT_SAMPLE: usize = 64;

/// The storage-write probe: `w(k: u32)` writes `k` keys `tx_id ‖ i` (36 bytes) of 32-byte
/// values; `k` = 0 is the same call writing nothing. The input is `bytes("w") ‖ u32 1 ‖
/// bytes(k)`, so `k`'s 4 big-endian bytes start at offset 13 (`docs/contracts.md` §2).
const STORE_WAT: &str = r#"(module
  (import "gmchain" "input_read" (func $input_read (param i32)))
  (import "gmchain" "tx_id" (func $tx_id (param i32)))
  (import "gmchain" "storage_write" (func $swrite (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "call") (local $k i32) (local $i i32)
    (call $input_read (i32.const 1024))
    (local.set $k (i32.or
      (i32.or (i32.shl (i32.load8_u (i32.const 1037)) (i32.const 24))
              (i32.shl (i32.load8_u (i32.const 1038)) (i32.const 16)))
      (i32.or (i32.shl (i32.load8_u (i32.const 1039)) (i32.const 8))
              (i32.load8_u (i32.const 1040)))))
    (call $tx_id (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
        (i32.store (i32.const 32) (local.get $i))
        (call $swrite (i32.const 0) (i32.const 36) (i32.const 0) (i32.const 32))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))"#;

/// Runs `--workload workflow` or `both` and prints the JSON report.
pub(crate) fn run(
    args: &NodeBenchArgs,
    dir: &Path,
    per_core: f64,
    cores: usize,
) -> Result<(), Failure> {
    let c = &args.contract;
    if c.steps == 0 || c.steps > 16 {
        return Err(fail(
            "--steps",
            format!("the workflow allows 1 to 16 steps, got {}", c.steps),
        ));
    }
    if c.fuel_limit == 0 || c.fuel_limit > execution::DEFAULT_MAX_FUEL_PER_TX {
        return Err(fail(
            "--fuel-limit",
            format!(
                "must be 1 to the chain's max_fuel_per_tx {}, got {}",
                execution::DEFAULT_MAX_FUEL_PER_TX,
                c.fuel_limit
            ),
        ));
    }
    let module = workflow_module(c, dir)?;
    eprintln!(
        "workflow module: {} bytes, SM3 {}",
        module.len(),
        crypto_sm::sm3::sm3(&module).to_hex()
    );
    let store = wat::parse_str(STORE_WAT).map_err(|e| fail("store probe", e))?;
    let rounds = if args.workload == Workload::Both {
        c.rounds.max(1)
    } else {
        1
    };
    let mut out = Vec::new();
    let (mut attest_tps, mut workflow_tps) = (Vec::new(), Vec::new());
    let (mut attest_cpu, mut workflow_cpu) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let mut round = serde_json::Map::new();
        if args.workload == Workload::Both {
            let report = attest_phase(args, &dir.join(format!("attest-{r}")), per_core, cores)?;
            let v: Value = serde_json::from_str(&report).map_err(|e| fail("attest report", e))?;
            attest_tps.push(v["committed_tx_per_s"].as_f64().unwrap_or(0.0));
            attest_cpu.push(v["node_cpu_ms_per_tx"].as_f64().unwrap_or(0.0));
            round.insert("attest".into(), v);
        }
        // The storage-write probe runs in the last round only: it adds minutes, not figures.
        let probe = (r + 1 == rounds && c.write_keys > 0).then_some(store.as_slice());
        let v = workflow_phase(args, &dir.join(format!("workflow-{r}")), &module, probe)?;
        workflow_tps.push(v["approve"]["committed_tx_per_s"].as_f64().unwrap_or(0.0));
        workflow_cpu.push(v["approve"]["node_cpu_ms_per_tx"].as_f64().unwrap_or(0.0));
        round.insert("workflow".into(), v);
        out.push(Value::Object(round));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut report = json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "txs": args.txs,
        "clients": args.clients,
        "concurrency": args.concurrency,
        "connections": args.connections,
        "fuel_limit": c.fuel_limit,
        "steps": c.steps,
        "module_bytes": module.len(),
        "rounds": out,
    });
    if args.workload == Workload::Both {
        let ratios: Vec<f64> = attest_tps
            .iter()
            .zip(&workflow_tps)
            .map(|(a, w)| if *a > 0.0 { w / a } else { 0.0 })
            .collect();
        report["workflow_tx_per_s_mean"] = json!(mean(&workflow_tps).round());
        report["attest_tx_per_s_mean"] = json!(mean(&attest_tps).round());
        report["workflow_over_attest_per_round"] = json!(ratios);
        report["workflow_over_attest"] = json!(if mean(&attest_tps) > 0.0 {
            mean(&workflow_tps) / mean(&attest_tps)
        } else {
            0.0
        });
        report["target_ratio"] = json!(0.6);
        // What the ratio would be if the node's CPU were the bottleneck (on this machine the
        // load generator shares the cores, and the node may not be saturated).
        report["node_cpu_ms_per_tx"] = json!({
            "attest": mean(&attest_cpu),
            "workflow": mean(&workflow_cpu),
            "attest_over_workflow": if mean(&workflow_cpu) > 0.0 {
                mean(&attest_cpu) / mean(&workflow_cpu)
            } else {
                0.0
            },
        });
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| fail("report", e))?
    );
    Ok(())
}

/// The module: `--contract`, or built from `--contract-src` by this executable's `contract
/// build` into `dir`.
fn workflow_module(c: &ContractBenchArgs, dir: &Path) -> Result<Vec<u8>, Failure> {
    let path = match &c.contract {
        Some(p) => p.clone(),
        None => {
            std::fs::create_dir_all(dir).map_err(|e| fail("mkdir", e))?;
            let out = dir.join("workflow.wasm");
            eprintln!(
                "building the workflow module from {} …",
                c.contract_src.display()
            );
            let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
            let status = std::process::Command::new(exe)
                .args(["contract", "build", "--path"])
                .arg(&c.contract_src)
                .arg("--out")
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| fail("contract build", e))?;
            if !status.success() {
                return Err(fail(
                    "contract build",
                    format!(
                        "building {} failed ({status}); give a module with --contract FILE.wasm",
                        c.contract_src.display()
                    ),
                ));
            }
            out
        }
    };
    std::fs::read(&path).map_err(|e| fail(&format!("reading {}", path.display()), e))
}

/// One identity's signed transaction.
struct Signed<'a> {
    key: &'a crypto_sm::SoftSigner,
    cert: &'a pki::Certificate,
    chain_id: &'a ChainId,
    expiry: Height,
}

impl Signed<'_> {
    fn tx(&self, salt: u64, fuel: u64, call: Call) -> Result<Vec<u8>, Failure> {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&salt.to_be_bytes());
        s[8] = 0xAD; // setup transactions: never a salt of the loads
        let tx = Transaction {
            fuel_limit: Some(fuel),
            chain_id: self.chain_id.clone(),
            salt: s,
            expiry: self.expiry,
            sender: Sender::Certificate(self.cert.der().to_vec()),
            call,
        };
        Ok(
            SignedTx::sign(tx, self.key as &dyn Signer, &UserId::default())
                .map_err(|e| fail("sign", e))?
                .to_bytes(),
        )
    }
}

/// Submits a setup transaction and waits for it; its receipt, which must be `Success`.
async fn setup(client: &mut Client, what: &str, tx: Vec<u8>) -> Result<Receipt, Failure> {
    let resp = client
        .submit_transaction(pb::SubmitTransactionRequest {
            signed_tx: tx,
            wait_for_commit: true,
        })
        .await
        .map_err(|s| status_failure(what, s))?
        .into_inner();
    if !resp.committed {
        return Err(fail(what, "not committed"));
    }
    let r =
        Receipt::from_bytes(&resp.receipt, &types::Limits::default()).map_err(|e| fail(what, e))?;
    match &r.status {
        Status::Success => Ok(r),
        Status::Failed { code, message } => Err(fail(what, format!("failed ({code}): {message}"))),
    }
}

/// A governance deployment of `code` as `name`, by the chain's only founding organisation:
/// the proposal passes on its own vote (a majority of one).
fn deploy_call(name: &str, code: &[u8], height: u64) -> Call {
    let mut args = vec![
        b"contract-deploy".to_vec(),
        (height + 100).to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
        name.as_bytes().to_vec(),
    ];
    // The module in arguments of at most 64 KiB (the governance contract joins them).
    args.extend(code.chunks(60 * 1024).map(<[u8]>::to_vec));
    Call {
        contract: "governance".into(),
        method: "propose".into(),
        args,
    }
}

/// What one measured load gave.
fn load_json(load: &crate::bench_node::Load, receipts_failed: usize) -> (Value, f64) {
    let committed = load.latencies.len();
    let tps = committed as f64 / load.elapsed.as_secs_f64();
    (
        json!({
            "committed": committed,
            "failed": load.failed,
            "failed_receipts": receipts_failed,
            "seconds": (load.elapsed.as_secs_f64() * 100.0).round() / 100.0,
            "committed_tx_per_s": tps.round(),
            "latency_p50_ms": percentile(&load.latencies, 0.5).as_secs_f64() * 1000.0,
            "latency_p99_ms": percentile(&load.latencies, 0.99).as_secs_f64() * 1000.0,
        }),
        tps,
    )
}

/// Fetches the receipts of `sample` of `txs` with `GetReceipt`; returns their fuel used.
async fn fuel_of(client: &mut Client, txs: &[Vec<u8>]) -> Result<Vec<u64>, Failure> {
    let step = (txs.len() / RECEIPT_SAMPLE).max(1);
    let mut fuel = Vec::new();
    for tx in txs.iter().step_by(step).take(RECEIPT_SAMPLE) {
        let id = SignedTx::from_bytes(tx, &types::Limits::default())
            .map_err(|e| fail("sample", e))?
            .tx_id();
        let resp = client
            .get_receipt(pb::TxIdRequest {
                tx_id: id.0.0.to_vec(),
            })
            .await
            .map_err(|s| status_failure("GetReceipt", s))?
            .into_inner();
        let r = Receipt::from_bytes(&resp.receipt, &types::Limits::default())
            .map_err(|e| fail("receipt", e))?;
        if r.status != Status::Success {
            return Err(fail("sample", format!("a sampled call failed: {r:?}")));
        }
        fuel.push(
            r.fuel_used
                .ok_or_else(|| fail("sample", "a contract call's receipt has no fuel"))?,
        );
    }
    Ok(fuel)
}

fn fuel_json(fuel: &[u64]) -> Value {
    let n = fuel.len().max(1) as f64;
    json!({
        "sampled": fuel.len(),
        "mean": (fuel.iter().sum::<u64>() as f64 / n).round(),
        "min": fuel.iter().min(),
        "max": fuel.iter().max(),
    })
}

/// Deploys the workflow (and the storage probe, when given) on a fresh chain in `dir`, opens
/// the cases, measures the approvals.
fn workflow_phase(
    args: &NodeBenchArgs,
    dir: &Path,
    module: &[u8],
    probe: Option<&[u8]>,
) -> Result<Value, Failure> {
    let c = &args.contract;
    let (chain, mut node_proc, url, metrics_addr, rt) = start_bench_chain(args, dir)?;
    let node_pid = node_proc.0.id();
    let report = rt.block_on(async {
        let (mut client, status, chain_id) = client_and_status(&url, dir).await?;
        let expiry = Height(status.height + 900);
        let conns = connections(&url, dir, args.connections).await?;
        let admin = Signed {
            key: &chain.admin.0,
            cert: &chain.admin.1,
            chain_id: &chain_id,
            expiry,
        };
        // Governance: the deployment runs in the proposal's own transaction.
        let setup_fuel = execution::DEFAULT_MAX_FUEL_PER_TX;
        let r = setup(
            &mut client,
            "deploy workflow",
            admin.tx(1, setup_fuel, deploy_call(WORKFLOW, module, status.height))?,
        )
        .await?;
        if !r.events.iter().any(|e| e.name == "executed") {
            return Err(fail(
                "deploy workflow",
                "the proposal did not execute on its own vote",
            ));
        }
        let steps: Vec<String> = (0..c.steps)
            .map(|i| {
                format!(
                    "(\"step{i}\",\"{}\",\"user\",1000000)",
                    crate::devchain::ORG
                )
            })
            .collect();
        let steps =
            types::args::parse_arg(&format!("list<(str,str,str,u64)>:[{}]", steps.join(",")))
                .map_err(|e| fail("steps", e))?;
        setup(
            &mut client,
            "define",
            admin.tx(
                2,
                c.fuel_limit,
                Call {
                    contract: WORKFLOW.into(),
                    method: "define".into(),
                    args: vec![KIND.as_bytes().to_vec(), steps],
                },
            )?,
        )
        .await?;

        // Opening the cases (measured too); case numbers run from 1.
        let cases = args.txs.div_ceil(c.steps as usize).max(1);
        eprintln!("opening {cases} cases …");
        let opens = presign_calls(
            &chain_id,
            expiry,
            &chain.clients,
            1 << 40,
            cases,
            Some(c.fuel_limit),
            &|i| Call {
                contract: WORKFLOW.into(),
                method: "open".into(),
                args: vec![KIND.as_bytes().to_vec(), format!("case {i}").into_bytes()],
            },
        )?;
        let open_sample = opens.clone();
        let (load, bad) = closed_loop_checked(&conns, opens, args.concurrency, None).await?;
        let (open, _) = load_json(&load, bad);
        if load.latencies.len() != cases || bad != 0 {
            return Err(fail(
                "open",
                format!(
                    "{cases} cases to open, {} committed, {bad} failed",
                    load.latencies.len()
                ),
            ));
        }
        let open_fuel = fuel_of(&mut client, &open_sample).await?;

        // The measured load: every case approved at each of its steps.
        eprintln!("pre-signing {} approvals …", args.txs);
        let approvals = presign_calls(
            &chain_id,
            expiry,
            &chain.clients,
            2 << 40,
            args.txs,
            Some(c.fuel_limit),
            &|i| Call {
                contract: WORKFLOW.into(),
                method: "approve".into(),
                args: vec![
                    ((i % cases) as u64 + 1).to_be_bytes().to_vec(),
                    b"checked".to_vec(),
                ],
            },
        )?;
        let sample = approvals.clone();
        let before = scrape(&metrics_addr).await?;
        let cpu_before = cpu_seconds(node_pid);
        eprintln!("submitting with {} in flight …", args.concurrency);
        let (load, bad) = closed_loop_checked(&conns, approvals, args.concurrency, None).await?;
        let cpu_ms = cpu_per_tx(cpu_before, cpu_seconds(node_pid), load.latencies.len());
        let after = scrape(&metrics_addr).await?;
        let (mut approve, _) = load_json(&load, bad);
        approve["node_cpu_ms_per_tx"] = json!(cpu_ms);
        let delta =
            |name: &str| metric(&after, name).unwrap_or(0.0) - metric(&before, name).unwrap_or(0.0);
        let per = |name: &str| {
            let count = delta(&format!("{name}_count"));
            if count > 0.0 {
                delta(&format!("{name}_sum")) / count * 1000.0
            } else {
                0.0
            }
        };
        approve["blocks"] = json!(delta("gmchain_blocks_committed_total"));
        approve["node_admission_ms_per_tx"] = json!(per("gmchain_tx_verify_seconds"));
        approve["node_execute_ms_per_block"] = json!(per("gmchain_block_execute_seconds"));
        approve["node_commit_ms_per_block"] = json!(per("gmchain_block_commit_seconds"));
        approve["fuel_per_tx"] = fuel_json(&fuel_of(&mut client, &sample).await?);
        let hits = "gmchain_contract_module_cache_hits_total";
        let misses = "gmchain_contract_module_cache_misses_total";
        let cache = match (metric(&after, hits), metric(&after, misses)) {
            (Some(h), Some(m)) => json!({
                "hits": h, "misses": m,
                "hit_rate": if h + m > 0.0 { h / (h + m) } else { 0.0 },
                "during_load": { "hits": delta(hits), "misses": delta(misses) },
            }),
            _ => json!("not exported by this node's /metrics"),
        };

        let storage = match probe {
            Some(code) => {
                storage_probe(
                    args,
                    &mut client,
                    &conns,
                    node_pid,
                    &chain,
                    &chain_id,
                    expiry,
                    &admin,
                    code,
                    status.height,
                )
                .await?
            }
            None => Value::Null,
        };
        Ok::<_, Failure>(json!({
            "cases": cases,
            "open": { "load": open, "fuel_per_tx": fuel_json(&open_fuel) },
            "approve": approve,
            "module_cache": cache,
            "storage_write": storage,
        }))
    });
    stop_node(&mut node_proc);
    report
}

/// Deploys the storage probe and runs `w(0)` then `w(k)` loads of a quarter of `--txs`
/// (at least 200) each; the difference per key is the node-level cost of a write.
#[allow(clippy::too_many_arguments)] // one caller; the pieces of one phase
async fn storage_probe(
    args: &NodeBenchArgs,
    client: &mut Client,
    conns: &[Client],
    node_pid: u32,
    chain: &crate::devchain::DevChain,
    chain_id: &ChainId,
    expiry: Height,
    admin: &Signed<'_>,
    code: &[u8],
    height: u64,
) -> Result<Value, Failure> {
    let k = args.contract.write_keys;
    setup(
        client,
        "deploy store",
        admin.tx(
            3,
            execution::DEFAULT_MAX_FUEL_PER_TX,
            deploy_call(STORE, code, height),
        )?,
    )
    .await?;
    let n = (args.txs / 4).max(200);
    let mut runs = Vec::new();
    for (round, keys) in [(3u64, 0u32), (4, k)] {
        eprintln!("storage probe: {n} calls writing {keys} keys …");
        let txs = presign_calls(
            chain_id,
            expiry,
            &chain.clients,
            round << 40,
            n,
            Some(args.contract.fuel_limit),
            &|_| Call {
                contract: STORE.into(),
                method: "w".into(),
                args: vec![keys.to_be_bytes().to_vec()],
            },
        )?;
        let sample = txs.clone();
        let cpu_before = cpu_seconds(node_pid);
        let (load, bad) = closed_loop_checked(conns, txs, args.concurrency, None).await?;
        let mut j = load_json(&load, bad).0;
        let tps = j["committed_tx_per_s"].as_f64().unwrap_or(0.0);
        let cpu = cpu_per_tx(cpu_before, cpu_seconds(node_pid), load.latencies.len());
        j["node_cpu_ms_per_tx"] = json!(cpu);
        let fuel = fuel_of(client, &sample).await?;
        let mean = fuel.iter().sum::<u64>() as f64 / fuel.len().max(1) as f64;
        runs.push((keys, j, tps, mean, cpu));
    }
    let (_, j0, tps0, fuel0, cpu0) = &runs[0];
    let (_, jk, tpsk, fuelk, cpuk) = &runs[1];
    let per_key_us = if *tps0 > 0.0 && *tpsk > 0.0 && k > 0 {
        (1.0 / tpsk - 1.0 / tps0) / f64::from(k) * 1e6
    } else {
        0.0
    };
    Ok(json!({
        "keys": k,
        "value_bytes": 32,
        "key_bytes": 36,
        "zero_keys": { "load": j0, "fuel_per_tx": fuel0 },
        "k_keys": { "load": jk, "fuel_per_tx": fuelk },
        "fuel_per_key": (fuelk - fuel0) / f64::from(k.max(1)),
        "node_wall_us_per_key": (per_key_us * 10.0).round() / 10.0,
        "node_cpu_us_per_key": ((cpuk - cpu0) * 1000.0 / f64::from(k.max(1)) * 10.0).round() / 10.0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_probe_is_a_valid_contract() {
        let code = wat::parse_str(STORE_WAT).unwrap_or_else(|e| panic!("{e}"));
        contracts::validate(&code, &contracts::Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_deployment_splits_the_module_into_arguments_the_chain_accepts() {
        let code = vec![7u8; 130 * 1024];
        let call = deploy_call("workflow", &code, 5);
        assert_eq!(call.args[0], b"contract-deploy");
        assert_eq!(call.args[1], 105u64.to_be_bytes());
        assert_eq!(call.args[3], b"workflow");
        assert_eq!(call.args[4..].concat(), code);
        let limits = types::Limits::default();
        assert!(call.args.iter().all(|a| a.len() <= limits.max_arg_size));
    }
}
