//! `gmchain bench admission`: what a refused request costs the node against an accepted one.
//! Makes a development chain with many founding organisations, starts a node process, and
//! sends, each phase for a fixed time, (1) valid attestations from one user, (2) one crafted
//! transaction replayed, whose sender certificate names an issuer the chain does not know,
//! (3) such crafted transactions, each with a fresh certificate. The node's own CPU time
//! (user + system, from /proc) divided by the requests answered gives the cost per request;
//! the load generator's CPU does not count. Issue 9's bound: refused ÷ accepted ≤ 1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::v1 as pb;
use crypto::{Signer, UserId};
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use pki::{IssueRequest, Role, Serial, UnixTime, Validity};
use types::{ChainId, Encode, Height, Sender, SignedTx, Transaction};

use crate::Failure;
use crate::bench_node::{start_node, stop_node, tempdir, wait_for_node};

/// Settings of the admission-cost benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct AdmissionBenchArgs {
    /// Founding organisations of the chain (each a self-signed root).
    #[arg(long, default_value_t = 31)]
    pub orgs: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Keep the chain here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench admission: {what}: {e}"))
}

/// The node process's CPU time (user + system) in seconds, from /proc/PID/stat.
fn process_cpu_seconds(pid: u32, ticks_per_s: f64) -> Result<f64, Failure> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| fail("reading /proc/PID/stat", e))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| fail("/proc/PID/stat", "no command field"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| -> Result<f64, Failure> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| fail("/proc/PID/stat", "no utime/stime"))
    };
    Ok((tick(11)? + tick(12)?) / ticks_per_s)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One phase's outcome.
struct Phase {
    requests: usize,
    cpu_s: f64,
    wall_s: f64,
    outcomes: std::collections::BTreeMap<String, usize>,
}

impl Phase {
    fn ms_per_request(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.cpu_s * 1000.0 / self.requests as f64
    }

    fn json(&self) -> String {
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        format!(
            "{{ \"requests\": {}, \"wall_s\": {:.2}, \"node_cpu_s\": {:.2}, \"node_cpu_ms_per_request\": {:.3}, \"outcomes\": {{ {} }} }}",
            self.requests,
            self.wall_s,
            self.cpu_s,
            self.ms_per_request(),
            outcomes.join(", ")
        )
    }
}

type Client = pb::chain_client::ChainClient<tonic::transport::Channel>;

/// Sends transactions from `next` (until it returns `None` or `seconds` pass) with
/// `concurrency` in flight, and measures the node's CPU over the phase.
async fn phase(
    client: &Client,
    pid: u32,
    ticks: f64,
    concurrency: usize,
    seconds: f64,
    wait: bool,
    next: Arc<dyn Fn(usize) -> Option<Vec<u8>> + Send + Sync>,
) -> Result<Phase, Failure> {
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let cpu0 = process_cpu_seconds(pid, ticks)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let mut c = client.clone();
        let counter = counter.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(tx) = next(i) else { break };
                let r = c
                    .submit_transaction(pb::SubmitTransactionRequest {
                        signed_tx: tx,
                        wait_for_commit: wait,
                    })
                    .await;
                let key = match r {
                    Ok(resp) if resp.get_ref().committed || !wait => "accepted".to_string(),
                    Ok(_) => "not committed".to_string(),
                    Err(s) => s
                        .metadata()
                        .get("gmchain-code")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{:?}", s.code())),
                };
                *outcomes.entry(key).or_default() += 1;
                n += 1;
            }
            (n, outcomes)
        }));
    }
    let mut requests = 0;
    let mut outcomes = std::collections::BTreeMap::new();
    for t in tasks {
        let (n, o) = t.await.map_err(|e| fail("task", e))?;
        requests += n;
        for (k, v) in o {
            *outcomes.entry(k).or_default() += v;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    // Let the node finish what it was doing for these requests (block commits).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_s = process_cpu_seconds(pid, ticks)? - cpu0;
    Ok(Phase {
        requests,
        cpu_s,
        wall_s,
        outcomes,
    })
}

/// A user certificate for `key` issued by a throwaway CA that no organisation of the chain
/// knows ("Nowhere CA"), and a transaction it signs.
fn crafted_tx(
    chain_id: &ChainId,
    expiry: Height,
    salt: u64,
    provider: &SoftwareProvider,
) -> Result<Vec<u8>, Failure> {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let validity = Validity {
        not_before: UnixTime(t.saturating_sub(3600)),
        not_after: UnixTime(t + 86400),
    };
    let serial = || Serial::random(&SystemRandom).map_err(|e| fail("serial", e));
    let ca_key = provider.generate().map_err(|e| fail("key", e))?;
    let ca = pki::issue_root("Nowhere CA", "Nowhere", serial()?, validity, &ca_key)
        .map_err(|e| fail("root", e))?;
    let key = provider.generate().map_err(|e| fail("key", e))?;
    let cert = pki::issue(
        &ca,
        &ca_key,
        &IssueRequest {
            role: Role::User,
            common_name: "mallory",
            organisation: "Nowhere",
            public_key: &key.public_key(),
            serial: serial()?,
            validity,
        },
    )
    .map_err(|e| fail("certificate", e))?;
    sign_anchor(chain_id, expiry, salt, &key, cert.der())
}

fn sign_anchor(
    chain_id: &ChainId,
    expiry: Height,
    salt: u64,
    key: &dyn Signer,
    cert_der: &[u8],
) -> Result<Vec<u8>, Failure> {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&salt.to_be_bytes());
    let digest = crypto_sm::sm3::sm3(&s);
    let tx = Transaction {
        fuel_limit: None,
        chain_id: chain_id.clone(),
        salt: s,
        expiry,
        sender: Sender::Certificate(cert_der.to_vec()),
        call: gmchain_sdk::anchor_call(&digest, "bench", "", Vec::new()),
    };
    Ok(SignedTx::sign(tx, key, &UserId::default())
        .map_err(|e| fail("sign", e))?
        .to_bytes())
}

pub(crate) fn run(args: &AdmissionBenchArgs) -> Result<(), Failure> {
    let tmp;
    let dir: &Path = match &args.dir {
        Some(d) => d,
        None => {
            tmp = tempdir()?;
            &tmp
        }
    };
    eprintln!(
        "preparing a development chain with {} organisations in {} …",
        args.orgs,
        dir.display()
    );
    let chain = crate::devchain::prepare(dir, 1, 2000, 100, args.orgs.max(1))?;
    let (mut node_proc, url, _) = start_node(&chain.config, dir)?;
    let pid = node_proc.0.id();
    let ticks = clock_ticks();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    let provider = SoftwareProvider::new(Arc::new(SystemRandom));
    let (user_key, user_cert) = chain
        .clients
        .into_iter()
        .next()
        .ok_or_else(|| fail("dev chain", "no client"))?;
    let report = rt.block_on(async {
        let client = wait_for_node(&url, dir).await?;
        let status = client
            .clone()
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|s| crate::cli_tx::status_failure("status", s))?
            .into_inner();
        let chain_id = ChainId::new(&status.chain_id).map_err(|e| fail("chain id", e))?;
        let expiry = Height(status.height + 900);
        let seconds = args.seconds;
        let conc = args.concurrency;

        eprintln!("pre-signing valid transactions …");
        let valid: Vec<Vec<u8>> = (0..20_000u64)
            .map(|i| sign_anchor(&chain_id, expiry, i, &user_key, user_cert.der()))
            .collect::<Result<_, _>>()?;
        let valid = Arc::new(valid);
        eprintln!("phase 1: valid attestations for {seconds} s …");
        let v = valid.clone();
        let accepted = phase(&client, pid, ticks, conc, seconds, true, Arc::new(move |i| v.get(i).cloned())).await?;

        let one = crafted_tx(&chain_id, expiry, 1, &provider)?;
        eprintln!("phase 2: one crafted transaction (unknown issuer) replayed for {seconds} s …");
        let replayed = phase(&client, pid, ticks, conc, seconds, false, Arc::new(move |_| Some(one.clone()))).await?;

        eprintln!("pre-signing crafted transactions, each with its own certificate …");
        let fresh: Vec<Vec<u8>> = (0..5_000u64)
            .map(|i| crafted_tx(&chain_id, expiry, 100 + i, &provider))
            .collect::<Result<_, _>>()?;
        let fresh = Arc::new(fresh);
        eprintln!("phase 3: crafted transactions with fresh certificates for {seconds} s …");
        let f = fresh.clone();
        let fresh_phase = phase(&client, pid, ticks, conc, seconds, false, Arc::new(move |i| f.get(i).cloned())).await?;

        let ratio = |p: &Phase| {
            if accepted.ms_per_request() > 0.0 {
                p.ms_per_request() / accepted.ms_per_request()
            } else {
                0.0
            }
        };
        Ok::<_, Failure>(format!(
            "{{\n  \"organisations\": {},\n  \"accepted\": {},\n  \"refused_replayed\": {},\n  \"refused_fresh\": {},\n  \"ratio_refused_replayed_to_accepted\": {:.3},\n  \"ratio_refused_fresh_to_accepted\": {:.3},\n  \"target_ratio_at_most\": 1.0\n}}\n",
            args.orgs,
            accepted.json(),
            replayed.json(),
            fresh_phase.json(),
            ratio(&replayed),
            ratio(&fresh_phase),
        ))
    })?;
    stop_node(&mut node_proc);
    print!("{report}");
    Ok(())
}
