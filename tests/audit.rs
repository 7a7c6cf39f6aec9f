//! Supervision and audit end to end (issue 16) with real node processes: a dev chain of three
//! organisations whose third, `Agency 03`, supervises (`gmchain node dev-chain --orgs 3
//! --supervisor`). Everything goes through `gmchain audit` as a supervisor would use it, or
//! through the raw Supervision gRPC service where the CLI would refuse before asking the node:
//! - traces return exactly the records built from what the test itself submitted (a failing
//!   transaction included), over height and time ranges, byte for byte the same after a restart;
//! - a frozen certificate or organisation is refused with its own code until the supervisor
//!   unfreezes it, and a frozen certificate's live TLS session is cut;
//! - only the supervisor's auditors reach the Supervision API, and only they freeze;
//! - a signed report verifies offline, and every tampering (re-signed by the same auditor, so
//!   that the checks behind the signature are reached) is named.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use api::v1 as pb;
use api::v1::supervision_client::SupervisionClient;
use crypto::Signer;
use pki::Role;
use serde_json::{Value, json};

use crate::dev_node::{self, Chain, Node, dev_chain_supervised, identity};

/// The supervisor's auditor (of `Agency 03`), as files in the chain's directory.
const AUDITOR: &str = "orgs/3.auditor";

/// Runs `gmchain` in `dir` with no client profile from the environment: every command names
/// its session (`--client-profile`) itself.
fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .env_remove("GMCHAIN_CLIENT_PROFILE")
        .args(args)
        .output()
        .expect("run gmchain")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `gmchain`, expects exit 0, returns stdout.
fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let o = cli(dir, args);
    assert_eq!(o.status.code(), Some(0), "gmchain {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `gmchain`, expects exit `code` and `needle` in stderr; returns stderr.
fn cli_fails(dir: &Path, args: &[&str], code: i32, needle: &str) -> String {
    let o = cli(dir, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "gmchain {args:?}: {err}");
    assert!(
        err.contains(needle),
        "gmchain {args:?}: expected {needle:?} in {err}"
    );
    err
}

/// The word (hex or decimal) after `marker` in `text`.
fn word_after<'t>(text: &'t str, marker: &str) -> &'t str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {text}"))
        + marker.len();
    text[at..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap()
}

/// The session flags of identity `who` (`clients/0`, `orgs/2.user`): its own client profile.
fn own_session(who: &str) -> String {
    format!("{who}.profile.toml")
}

/// The session flags of the chain admin's profile, with identity `who` as the TLS client.
fn session_as(who: &str) -> Vec<String> {
    [
        "--client-profile",
        "client.toml",
        "--tls-key",
        &format!("{who}.key.pem"),
        "--tls-pass-file",
        "pass",
        "--tls-cert",
        &format!("{who}.crt.pem"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `gmchain tx attest <doc>` signed by `who`, sent over the session of the client profile
/// `session`.
fn attest_args(doc: &str, who: &str, session: &str) -> Vec<String> {
    [
        "tx",
        "attest",
        doc,
        "--client-profile",
        session,
        "--key",
        &format!("{who}.key.pem"),
        "--cert",
        &format!("{who}.crt.pem"),
        "--pass-file",
        "pass",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Writes a document and anchors it as `who` over its own session; returns gmchain's output.
fn attest(chain: &Chain, doc: &str, body: &str, who: &str) -> Output {
    std::fs::write(chain.dir.join(doc), body).unwrap();
    cli(&chain.dir, &strs(&attest_args(doc, who, &own_session(who))))
}

/// A transaction the test submitted, as the CLI reported it.
#[derive(Clone, Debug)]
struct Sent {
    tx: String,
    height: u64,
    /// `success` or the failure's code name.
    outcome: String,
    organisation: &'static str,
    who: &'static str,
}

/// Anchors `doc` (content `body`) as `who` of `organisation`, expecting `outcome`: a success
/// (exit 0, "anchored … in tx … at height …") or a committed failure (exit 1, "transaction …
/// was committed at height … but failed: <outcome>").
fn submit(
    chain: &Chain,
    doc: &str,
    body: &str,
    who: &'static str,
    organisation: &'static str,
    outcome: &str,
) -> Sent {
    let o = attest(chain, doc, body, who);
    let err = stderr(&o);
    let (tx, height) = if outcome == "success" {
        assert_eq!(o.status.code(), Some(0), "{who} anchors {doc}: {err}");
        (word_after(&err, " in tx "), word_after(&err, " at height "))
    } else {
        assert_eq!(o.status.code(), Some(1), "{who} anchors {doc}: {err}");
        assert!(err.contains(&format!("but failed: {outcome} (")), "{err}");
        (
            word_after(&err, "transaction "),
            word_after(&err, "committed at height "),
        )
    };
    assert_eq!(tx.len(), 64, "{err}");
    Sent {
        tx: tx.to_string(),
        height: height.parse().unwrap(),
        outcome: outcome.to_string(),
        organisation,
        who,
    }
}

/// `gmchain audit trace` as the supervisor's auditor: the raw JSON and its value.
fn trace(chain: &Chain, args: &[&str]) -> (String, Value) {
    let mut a = vec!["audit", "trace"];
    a.extend_from_slice(args);
    let profile = own_session(AUDITOR);
    a.extend(["--client-profile", &profile]);
    let out = cli_ok(&chain.dir, &a);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (out, v)
}

/// A trace's entries as (tx id, height, outcome, organisation).
fn rows(v: &Value) -> Vec<(String, u64, String, String)> {
    v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {v}"))
        .iter()
        .map(|e| {
            (
                e["tx_id"].as_str().unwrap().to_string(),
                e["height"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().to_string(),
                e["organisation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expect<'s>(sent: impl IntoIterator<Item = &'s Sent>) -> Vec<(String, u64, String, String)> {
    sent.into_iter()
        .map(|s| {
            (
                s.tx.clone(),
                s.height,
                s.outcome.clone(),
                s.organisation.to_string(),
            )
        })
        .collect()
}

/// The SM3 ID (64 hex) of the certificate of the dev-chain identity `who`.
fn cert_id(chain: &Chain, who: &str) -> String {
    identity(&chain.dir, who).1.fingerprint().to_hex()
}

#[test]
fn a_supervisor_traces_three_organisations_and_the_answers_survive_a_restart() {
    let started = Instant::now();
    let chain = dev_chain_supervised(2, 3);
    let mut node = Node::start(&chain);
    let (bureau, a02, a03) = ("Dev Bureau", "Agency 02", "Agency 03");
    let failed = "ATTESTATION_DIGEST_EXISTS";
    // One transaction a block: each command waits for its commit before the next is sent.
    let sent = vec![
        submit(&chain, "a.txt", "alpha", "clients/0", bureau, "success"),
        submit(&chain, "b.txt", "bravo", "orgs/2.user", a02, "success"),
        submit(&chain, "c.txt", "charlie", "clients/1", bureau, "success"),
        submit(&chain, "d.txt", "delta", "orgs/3.user", a03, "success"),
        // The same document again: committed, failed.
        submit(&chain, "a2.txt", "alpha", "clients/0", bureau, failed),
        submit(&chain, "e.txt", "echo", "orgs/2.user", a02, "success"),
        submit(&chain, "f.txt", "foxtrot", "clients/0", bureau, "success"),
        // Agency 03's user anchors what Agency 02 anchored: failed too.
        submit(&chain, "b2.txt", "bravo", "orgs/3.user", a03, failed),
        submit(&chain, "g.txt", "golf", "clients/1", bureau, "success"),
    ];
    let heights: Vec<u64> = sent.iter().map(|s| s.height).collect();
    assert!(
        heights.windows(2).all(|w| w[0] < w[1]),
        "one block each: {heights:?}"
    );
    let tip = *heights.last().unwrap();

    let client0 = chain.dir.join("clients/0.crt.pem");
    let client0 = client0.to_str().unwrap();
    let queries: Vec<(Vec<String>, Vec<&Sent>)> = vec![
        (
            vec!["--org".into(), bureau.into()],
            sent.iter().filter(|s| s.organisation == bureau).collect(),
        ),
        (
            vec!["--org".into(), a02.into()],
            sent.iter().filter(|s| s.organisation == a02).collect(),
        ),
        (
            vec!["--org".into(), a03.into()],
            sent.iter().filter(|s| s.organisation == a03).collect(),
        ),
        (
            vec!["--cert".into(), client0.into()],
            sent.iter().filter(|s| s.who == "clients/0").collect(),
        ),
        (
            vec!["--contract".into(), "attestation".into()],
            sent.iter().collect(),
        ),
    ];
    // The heights in the middle: the sub-list by heights, and by the blocks' times.
    let (mid_from, mid_to) = (heights[2], heights[6]);
    let middle = |s: &&Sent| (mid_from..=mid_to).contains(&s.height);
    let mut answers: Vec<(Vec<String>, String)> = Vec::new();
    // A query of the middle heights (by `bounds`: heights or times) lists exactly the
    // submitted transactions of those heights, and says so; returns the query and its answer.
    let middle_trace = |args: &Vec<String>, want: &Vec<&Sent>, bounds: &[String]| {
        let mut ranged = args.clone();
        ranged.extend(bounds.iter().cloned());
        let (raw, v) = trace(&chain, &strs(&ranged));
        let sub: Vec<&Sent> = want.iter().copied().filter(middle).collect();
        assert_eq!(
            rows(&v),
            expect(sub.iter().copied()),
            "trace {ranged:?}: {raw}"
        );
        assert_eq!(
            (v["from"].as_u64(), v["to"].as_u64()),
            (Some(mid_from), Some(mid_to)),
            "{raw}"
        );
        (ranged, raw)
    };
    for (args, want) in &queries {
        let (raw, v) = trace(&chain, &strs(args));
        assert_eq!(
            rows(&v),
            expect(want.iter().copied()),
            "trace {args:?}: {raw}"
        );
        assert_eq!(
            (
                v["from"].as_u64(),
                v["to"].as_u64(),
                v["start_count"].as_u64()
            ),
            (Some(1), Some(tip), Some(0)),
            "trace {args:?}: {raw}"
        );
        assert_eq!(v["end_count"].as_u64(), Some(want.len() as u64), "{raw}");
        answers.push((args.clone(), raw));
        let bounds =
            ["--from", &mid_from.to_string(), "--to", &mid_to.to_string()].map(String::from);
        answers.push(middle_trace(args, want, &bounds));
    }
    let (_, contract) = trace(&chain, &["--contract", "attestation"]);
    let failures: Vec<&Value> = contract["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == json!(3001))
        .collect();
    assert_eq!(failures.len(), 2, "{contract}");

    // A time range: the blocks' timestamps, as `gmchain query block` shows them.
    let stamp = |h: u64| -> u64 {
        let out = cli_ok(
            &chain.dir,
            &[
                "query",
                "block",
                &h.to_string(),
                "--client-profile",
                "client.toml",
            ],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        v["timestamp_ms"].as_u64().unwrap()
    };
    let (since, until) = (stamp(mid_from), stamp(mid_to));
    for e in contract["entries"].as_array().unwrap() {
        if e["height"].as_u64() == Some(mid_from) {
            assert_eq!(e["timestamp_ms"].as_u64(), Some(since), "{e}");
        }
    }
    for (args, want) in &queries {
        let bounds =
            ["--since", &since.to_string(), "--until", &until.to_string()].map(String::from);
        answers.push(middle_trace(args, want, &bounds));
    }
    // A time just after the first middle block and just before the last leaves both out.
    let (raw, v) = trace(
        &chain,
        &[
            "--contract",
            "attestation",
            "--since",
            &(since + 1).to_string(),
            "--until",
            &(until - 1).to_string(),
        ],
    );
    let inner: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.height > mid_from && s.height < mid_to)
        .collect();
    assert_eq!(rows(&v), expect(inner), "{raw}");

    // Stop (SIGTERM) and start again: the same questions, the same bytes.
    let status = node.signal("-TERM");
    assert!(status.success(), "the node's exit on SIGTERM: {status:?}");
    drop(node);
    let _node = Node::start(&chain);
    for (args, before) in &answers {
        let (after, _) = trace(&chain, &strs(args));
        assert_eq!(&after, before, "trace {args:?} after the restart");
    }
    // Time is reported, not asserted: speed is what benchmarks measure.
    eprintln!("took {:?}", started.elapsed());
}

/// `gmchain audit freeze|unfreeze` of `kind` `target` by the supervisor's auditor.
fn supervise_args(freeze: bool, kind: &str, target: &str, reason: &str) -> Vec<String> {
    [
        "audit",
        if freeze { "freeze" } else { "unfreeze" },
        "--kind",
        kind,
        "--target",
        target,
        "--reason",
        reason,
        "--key",
        &format!("{AUDITOR}.key.pem"),
        "--cert",
        &format!("{AUDITOR}.crt.pem"),
        "--pass-file",
        "pass",
        "--client-profile",
        &own_session(AUDITOR),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn supervise(chain: &Chain, freeze: bool, kind: &str, target: &str, reason: &str) -> String {
    cli_ok(
        &chain.dir,
        &strs(&supervise_args(freeze, kind, target, reason)),
    )
}

/// `gmchain audit show` as the supervisor's auditor.
fn show(chain: &Chain) -> Value {
    let profile = own_session(AUDITOR);
    let out = cli_ok(&chain.dir, &["audit", "show", "--client-profile", &profile]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The freezes `audit show` lists, as (kind, target, reason).
fn freezes(chain: &Chain) -> Vec<(String, String, String)> {
    let v = show(chain);
    assert_eq!(v["supervisor"], "Agency 03", "{v}");
    v["freezes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["target"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Anchors `doc` signed by `who` over the admin's session (`client.toml`): the node, not the
/// TLS handshake, judges the signer.
fn attest_over_admin(chain: &Chain, doc: &str, who: &str) -> Vec<String> {
    std::fs::write(chain.dir.join(doc), format!("{doc} by {who}")).unwrap();
    attest_args(doc, who, "client.toml")
}

#[test]
fn a_frozen_user_is_refused_until_the_supervisor_unfreezes() {
    let started = Instant::now();
    let chain = dev_chain_supervised(2, 3);
    let _node = Node::start(&chain);
    let dir = &chain.dir;
    let ok = |doc: &str, who: &str| {
        let o = attest(&chain, doc, &format!("{doc} by {who}"), who);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{who} anchors {doc}: {}",
            stderr(&o)
        );
    };
    ok("a.txt", "clients/0");
    assert_eq!(freezes(&chain), vec![]);
    // client0 holds a live session (a block subscription) when the freeze lands.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut live = rt.block_on(async {
        let mut c = dev_node::client_as(&chain, "clients/0").await.unwrap();
        c.subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 0 })
            .await
            .unwrap()
            .into_inner()
    });

    // The supervisor freezes client0's certificate.
    let client0 = cert_id(&chain, "clients/0");
    let out = supervise(&chain, true, "cert", "clients/0.crt.pem", "unusual volume");
    let frozen_at = Instant::now();
    assert!(out.contains(&format!("froze cert \"{client0}\"")), "{out}");
    // Its live session is cut: the stream ends within a second or two of the commit (the
    // node rechecks live sessions at every block).
    let ended = rt.block_on(async {
        // (Made inside the runtime: the timer needs its reactor.)
        let until_cut = async {
            loop {
                match live.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return "ended".to_string(),
                    Err(status) => return format!("{:?}: {}", status.code(), status.message()),
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), until_cut).await
    });
    let ended = ended.expect("the frozen certificate's live session was not cut within 5 s");
    let cut = frozen_at.elapsed();
    assert!(
        cut <= std::time::Duration::from_secs(5),
        "cut after {cut:?} ({ended})"
    );
    // The node's audit log names the auditor's submission and the freeze it applied.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dir.join("data/audit.log")).unwrap_or_default();
        let submitted = log.lines().any(|l| {
            l.contains("\"action\":\"api.submit\"")
                && l.contains("O=Agency 03")
                && l.contains("supervision.freeze transaction")
        });
        let served = log
            .lines()
            .any(|l| l.contains("supervision.freeze-served") && l.contains("unusual volume"));
        if submitted && served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node's audit log lacks the auditor's submission ({submitted}) or the freeze ({served}):\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Its own session is refused at the handshake (exit 1)…
    let o = attest(&chain, "b.txt", "b by client0", "clients/0");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the connection"), "{err}");
    // …and its signature over another member's session is refused with the freeze's code.
    let err = cli_fails(
        dir,
        &strs(&attest_over_admin(&chain, "c.txt", "clients/0")),
        2,
        "TX_SIGNER_FROZEN",
    );
    assert!(err.contains("unusual volume"), "{err}");
    // Others still transact.
    ok("d.txt", "clients/1");
    ok("e.txt", "orgs/2.user");
    assert_eq!(
        freezes(&chain),
        vec![("cert".into(), client0.clone(), "unusual volume".into())]
    );
    let out = supervise(&chain, false, "cert", &client0, "explained");
    assert!(out.contains("unfroze cert"), "{out}");
    // Nothing left to lift: a second unfreeze is committed and fails.
    cli_fails(
        dir,
        &strs(&supervise_args(false, "cert", &client0, "again")),
        1,
        "SUPERVISION_NOT_FROZEN",
    );
    ok("b.txt", "clients/0");
    assert_eq!(freezes(&chain), vec![]);

    // The supervising organisation is never frozen as a whole (only its people could lift it):
    // refused at admission, whose codes are the TX_ ones (the message names the reason).
    cli_fails(
        dir,
        &strs(&supervise_args(true, "org", "Agency 03", "self")),
        2,
        "is the supervising organisation",
    );
    // The supervisor freezes the people of Agency 02.
    supervise(&chain, true, "org", "Agency 02", "inquiry 7");
    let o = attest(&chain, "f.txt", "f by agency 2", "orgs/2.user");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused the connection"),
        "{}",
        stderr(&o)
    );
    let err = cli_fails(
        dir,
        &strs(&attest_over_admin(&chain, "g.txt", "orgs/2.user")),
        2,
        "TX_ORG_FROZEN",
    );
    assert!(err.contains("inquiry 7"), "{err}");
    // Its admin is one of its people too.
    cli_fails(
        dir,
        &strs(&attest_over_admin(&chain, "h.txt", "orgs/2.admin")),
        2,
        "TX_ORG_FROZEN",
    );
    // Dev Bureau and Agency 03 still work.
    ok("i.txt", "clients/1");
    ok("j.txt", "clients/0");
    ok("k.txt", "orgs/3.user");
    assert_eq!(
        freezes(&chain),
        vec![("org".into(), "Agency 02".into(), "inquiry 7".into())]
    );
    supervise(&chain, false, "org", "Agency 02", "closed");
    ok("f.txt", "orgs/2.user");
    cli_ok(
        dir,
        &strs(&attest_over_admin(&chain, "l.txt", "orgs/2.admin")),
    );
    assert_eq!(freezes(&chain), vec![]);
    // The freezes and unfreezes are on the chain: the certificate's trace shows them.
    let (raw, v) = trace(&chain, &["--cert", &client0]);
    let calls: Vec<(&str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["call"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("attestation.anchor", "success"),
            ("supervision.freeze", "success"),
            ("supervision.unfreeze", "success"),
            ("attestation.anchor", "success"),
            ("attestation.anchor", "success"),
        ],
        "{raw}"
    );
    // Time is reported, not asserted: speed is what benchmarks measure.
    eprintln!("took {:?}", started.elapsed());
}

/// Issues `cn` with `role` under Dev Bureau's root (`ca.key.pem` of the dev chain), certifying
/// organisation `org` (Dev Bureau itself, or one it does not sponsor); written as `file`.
fn issue_by_dev_root(chain: &Chain, role: Role, org: &str, cn: &str, file: &str) {
    crate::data::issue(&chain.dir, "ca", role, org, cn, file);
}

/// Two auditors the supervision API and a report must refuse: `bureau-auditor`, of Dev Bureau
/// (a member that does not supervise), and `forged-auditor`, an auditor "of Agency 03" that
/// Dev Bureau's root certified though it does not sponsor Agency 03.
fn issue_outside_auditors(chain: &Chain) {
    issue_by_dev_root(
        chain,
        Role::Auditor,
        "Dev Bureau",
        "bureau-auditor",
        "bureau-auditor",
    );
    issue_by_dev_root(
        chain,
        Role::Auditor,
        "Agency 03",
        "forged",
        "forged-auditor",
    );
}

/// Calls each Supervision method over a raw gRPC channel as identity `who`: the outcome of
/// GetSupervision, Trace, GetCertifiedHeader and ProveState, by name.
fn raw_calls(chain: &Chain, who: &str) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = dev_node::channel_at(&chain.dir, &chain.grpc, who)
            .await
            .unwrap_or_else(|e| panic!("{who} connects: {e}"));
        let mut c = SupervisionClient::new(channel);
        let supervisor_key = execution::keys::full(
            execution::keys::SUPERVISION,
            &execution::keys::supervision::supervisor(),
        );
        vec![
            (
                "GetSupervision",
                c.get_supervision(pb::GetSupervisionRequest {})
                    .await
                    .map(|_| ()),
            ),
            (
                "Trace",
                c.trace(pb::TraceRequest {
                    kind: "contract".into(),
                    id: "attestation".into(),
                    from_height: 1,
                    to_height: 1,
                    proofs: true,
                    ..Default::default()
                })
                .await
                .map(|r| assert_eq!(r.into_inner().entries.len(), 1)),
            ),
            (
                "GetCertifiedHeader",
                c.get_certified_header(pb::GetCertifiedHeaderRequest { height: 1 })
                    .await
                    .map(|r| assert!(!r.into_inner().certified_json.is_empty())),
            ),
            (
                "ProveState",
                c.prove_state(pb::ProveStateRequest {
                    height: 1,
                    keys: vec![supervisor_key],
                })
                .await
                .map(|r| {
                    let values = r.into_inner().values;
                    let record = execution::SupervisorRecord::decode_bytes(
                        values[0].value.as_deref().expect("the supervisor record"),
                    )
                    .unwrap();
                    assert_eq!(record.organisation, "Agency 03");
                }),
            ),
        ]
    })
}

#[test]
fn only_the_supervisors_auditors_reach_the_supervision_api() {
    let started = Instant::now();
    let chain = dev_chain_supervised(1, 3);
    let _node = Node::start(&chain);
    let dir = &chain.dir;
    let o = attest(&chain, "a.txt", "alpha", "clients/0");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    issue_outside_auditors(&chain);

    let report_args = |who: &str| -> Vec<String> {
        report_args(
            &["--contract", "attestation", "--from", "1", "--to", "1"],
            &format!("report-{}.json", who.replace('/', "-")),
            &session_as(who),
        )
    };
    let cli_calls = |who: &str| -> Vec<Vec<String>> {
        let with = |a: &[&str]| {
            let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            v.extend(session_as(who));
            v
        };
        vec![
            with(&["audit", "show"]),
            with(&["audit", "trace", "--contract", "attestation"]),
            report_args(who),
        ]
    };

    // The supervisor's auditor is answered, by the CLI and by each raw method.
    for args in cli_calls(AUDITOR) {
        cli_ok(dir, &strs(&args));
    }
    for (method, r) in raw_calls(&chain, AUDITOR) {
        r.unwrap_or_else(|s| panic!("{method} as the supervisor's auditor: {s:?}"));
    }
    // A user, users and the admin of the supervising organisation, an auditor of another.
    for (who, why) in [
        ("clients/0", "has role user, not auditor"),
        ("orgs/3.user", "has role user, not auditor"),
        ("orgs/3.admin", "has role admin, not auditor"),
        (
            "bureau-auditor",
            "\"Dev Bureau\" is not the supervising organisation",
        ),
    ] {
        for args in cli_calls(who) {
            let err = cli_fails(dir, &strs(&args), 2, "NODE_NOT_SUPERVISOR");
            assert!(err.contains(why), "{who} {args:?}: {err}");
        }
        assert!(
            !dir.join(format!("report-{}.json", who.replace('/', "-")))
                .exists(),
            "{who}: a refused report was written"
        );
        for (method, r) in raw_calls(&chain, who) {
            let s = r.expect_err(&format!("{method} answered {who}"));
            assert_eq!(
                s.code(),
                tonic::Code::PermissionDenied,
                "{who} {method}: {s:?}"
            );
            assert!(
                s.message().contains("NODE_NOT_SUPERVISOR")
                    && s.message().contains(&format!("Supervision.{method}"))
                    && s.message().contains(why),
                "{who} {method}: {s:?}"
            );
        }
    }
    // The forged auditor does not get past the handshake.
    let err = cli_fails(
        dir,
        &strs(&cli_calls("forged-auditor")[0]),
        1,
        "refused the connection",
    );
    assert!(!err.contains("NODE_NOT_SUPERVISOR"), "{err}");

    // Only the supervisor's auditors freeze or unfreeze.
    let freeze_as = |who: &str, on: bool| -> Vec<String> {
        let mut a = supervise_args(on, "cert", "clients/0.crt.pem", "tried");
        let at = a.iter().position(|x| x == "--key").unwrap();
        a[at + 1] = format!("{who}.key.pem");
        a[at + 3] = format!("{who}.crt.pem");
        let at = a.iter().position(|x| x == "--client-profile").unwrap();
        a[at + 1] = "client.toml".into();
        a
    };
    for who in [
        "clients/0",
        "orgs/3.user",
        "orgs/3.admin",
        "admin",
        "bureau-auditor",
    ] {
        let err = cli_fails(dir, &strs(&freeze_as(who, true)), 2, "TX_PERMISSION_DENIED");
        assert!(
            err.contains("supervision.freeze") || err.contains("supervisor"),
            "{who}: {err}"
        );
    }
    supervise(&chain, true, "cert", "clients/0.crt.pem", "held");
    for who in ["admin", "orgs/3.admin", "bureau-auditor"] {
        cli_fails(
            dir,
            &strs(&freeze_as(who, false)),
            2,
            "TX_PERMISSION_DENIED",
        );
    }
    assert_eq!(freezes(&chain).len(), 1);
    supervise(&chain, false, "cert", "clients/0.crt.pem", "released");
    assert_eq!(freezes(&chain), vec![]);
    // Time is reported, not asserted: speed is what benchmarks measure.
    eprintln!("took {:?}", started.elapsed());
}

/// `gmchain audit report` of the subject and range `what`, signed by the supervisor's auditor,
/// written to `out`, then `extra` (a session, an HTML page).
fn report_args(what: &[&str], out: &str, extra: &[String]) -> Vec<String> {
    let mut a: Vec<String> = ["audit", "report"].iter().map(|s| s.to_string()).collect();
    a.extend(what.iter().map(|s| s.to_string()));
    a.extend(
        [
            "--key",
            &format!("{AUDITOR}.key.pem"),
            "--pass-file",
            "pass",
            "--sign-cert",
            &format!("{AUDITOR}.crt.pem"),
            "--genesis",
            "data/genesis.json",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a.extend(extra.iter().cloned());
    a
}

/// A report value without its `signature` member, as signed.
fn unsigned(report: &Value) -> Value {
    let mut v = report.clone();
    v.as_object_mut().unwrap().remove("signature");
    v
}

/// Signs `value` again with the key and certificate of the dev-chain identity `who` under the
/// report scheme, as `gmchain audit report` signs: the edit is no longer caught by the
/// signature, so the checks behind it are reached.
fn resign(chain: &Chain, value: Value, who: &str) -> Vec<u8> {
    let (key, cert) = identity(&chain.dir, who);
    conformance::sign_value(value, &key, &cert, &[])
        .unwrap_or_else(|e| panic!("re-signing as {who}: {e}"))
        .json
}

/// Signs `value` with any key under the report scheme (`conformance::sign_value` signs only
/// with an auditor's certificate; a forger need not use it).
fn sign_as_anyone(chain: &Chain, mut value: Value, who: &str) -> Vec<u8> {
    let (key, cert) = identity(&chain.dir, who);
    let bytes = conformance::canonical_bytes(&value).unwrap();
    let sig = key.sign(&crypto::UserId::default(), &bytes).unwrap();
    let signature = conformance::ReportSignature {
        scheme: conformance::SIGNATURE_SCHEME.into(),
        content_sm3: crypto_sm::sm3::sm3(&bytes).to_hex(),
        certificate: cert.to_pem(),
        chain: vec![],
        signature: hex::encode(crypto::gmt0009::encode_signature(&sig)),
    };
    value["signature"] = serde_json::to_value(signature).unwrap();
    serde_json::to_vec_pretty(&value).unwrap()
}

/// `gmchain audit verify-report <name> --genesis genesis.json` in `dir` (holding only reports
/// and the genesis file).
fn verify(dir: &Path, name: &str, bytes: &[u8]) -> Output {
    std::fs::write(dir.join(name), bytes).unwrap();
    cli(
        dir,
        &["audit", "verify-report", name, "--genesis", "genesis.json"],
    )
}

/// Expects the verifier to refuse `bytes` with `code`, naming `needle`.
fn refused(dir: &Path, name: &str, bytes: &[u8], code: i32, needle: &str) {
    let o = verify(dir, name, bytes);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{name}: {err}");
    assert!(err.contains(needle), "{name}: expected {needle:?} in {err}");
}

/// The signer-state keys a report for a signer with certificate `cert` (issued by the root
/// `issuer`) proves at its end height: as `gmchain audit report` asks them.
fn signer_keys(cert: &pki::Certificate, issuer: &pki::Certificate) -> Vec<Vec<u8>> {
    use execution::keys::{self, IDENTITY, SUPERVISION};
    let id = cert.fingerprint();
    vec![
        keys::full(IDENTITY, &keys::identity::crl(&issuer.fingerprint())),
        keys::full(SUPERVISION, &keys::supervision::supervisor()),
        keys::full(IDENTITY, &keys::identity::suspended(&id)),
        keys::full(
            SUPERVISION,
            &keys::supervision::frozen("cert", &id.to_hex()),
        ),
        keys::full(
            SUPERVISION,
            &keys::supervision::frozen("org", &cert.organisation().unwrap_or_default()),
        ),
    ]
}

/// The chain's proofs of `keys` at `height`, asked by the supervisor's auditor, as a report's
/// `signer_state`.
fn prove(chain: &Chain, height: u64, keys: Vec<Vec<u8>>) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = dev_node::channel_at(&chain.dir, &chain.grpc, AUDITOR)
            .await
            .unwrap();
        let values = SupervisionClient::new(channel)
            .prove_state(pb::ProveStateRequest { height, keys })
            .await
            .unwrap()
            .into_inner()
            .values;
        Value::Array(
            values
                .iter()
                .map(|v| {
                    json!({
                        "key": hex::encode(&v.key),
                        "value": v.value.as_ref().map(hex::encode),
                        "proof": hex::encode(&v.proof),
                    })
                })
                .collect(),
        )
    })
}

#[test]
fn a_report_verifies_offline_and_every_tampering_is_named() {
    let started = Instant::now();
    let chain = dev_chain_supervised(2, 3);
    let node = Node::start(&chain);
    let dir = &chain.dir;
    let (bureau, a02) = ("Dev Bureau", "Agency 02");
    let sent = [
        submit(&chain, "a.txt", "alpha", "clients/0", bureau, "success"),
        submit(&chain, "b.txt", "bravo", "clients/1", bureau, "success"),
        submit(&chain, "c.txt", "charlie", "orgs/2.user", a02, "success"),
        submit(&chain, "d.txt", "delta", "clients/0", bureau, "success"),
        submit(
            &chain,
            "a2.txt",
            "alpha",
            "clients/1",
            bureau,
            "ATTESTATION_DIGEST_EXISTS",
        ),
        submit(&chain, "e.txt", "echo", "clients/1", bureau, "success"),
    ];
    let (from, to) = (sent[1].height, sent[4].height);
    let listed: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.organisation == bureau && (from..=to).contains(&s.height))
        .collect();
    assert_eq!(listed.len(), 3);
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let auditor_profile = own_session(AUDITOR);
    let session = ["--client-profile".to_string(), auditor_profile.clone()];
    let html_and_session = [
        ["--html".to_string(), "r.html".to_string()].as_slice(),
        &session,
    ]
    .concat();
    cli_ok(
        dir,
        &strs(&report_args(
            &["--org", bureau, "--from", &from_s, "--to", &to_s],
            "r.json",
            &html_and_session,
        )),
    );
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    for s in &listed {
        assert!(html.contains(&s.tx), "{} not in the page", s.tx);
    }
    // The chain's proofs of what a report signed by the forger would need.
    issue_outside_auditors(&chain);
    let dev_root = identity(dir, "ca").1;
    // The report judges its signer at the tip when it was made: the forger's proofs are of
    // that height.
    let made: Value = serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    let forged_state = prove(
        &chain,
        made["signer"]["height"].as_u64().unwrap(),
        signer_keys(&identity(dir, "forged-auditor").1, &dev_root),
    );
    // The same blocks asked by time: from the first block's time to the last's (review 18:
    // a time range is proven exact, so a node cannot narrow it). The chain has a block after
    // `to` (e.txt's), so the report carries it.
    let time_of = |i: usize| {
        made["entries"][i]["decoded"]["timestamp_ms"]
            .as_u64()
            .unwrap()
    };
    let (since, until) = (time_of(0), time_of(2));
    cli_ok(
        dir,
        &strs(&report_args(
            &[
                "--org",
                bureau,
                "--since",
                &since.to_string(),
                "--until",
                &until.to_string(),
            ],
            "r-time.json",
            &session,
        )),
    );
    drop(node);

    // Offline: another directory holding only the report and the genesis file.
    let away = tempfile::tempdir().unwrap();
    let away = away.path();
    std::fs::copy(dir.join("data/genesis.json"), away.join("genesis.json")).unwrap();
    let bytes = std::fs::read(dir.join("r.json")).unwrap();
    let o = verify(away, "r.json", &bytes);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.contains(&format!("heights {from}..={to}: 3 entries, complete")),
        "{out}"
    );
    assert!(
        out.contains("auditor of the supervisor \"Agency 03\""),
        "{out}"
    );
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    let listed_ids: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decoded"]["transactions"][0]["tx_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed_ids,
        listed.iter().map(|s| s.tx.as_str()).collect::<Vec<_>>()
    );
    // The time report: the same heights and entries, and each way of moving its bounds
    // against the proven block times is named.
    let timed_bytes = std::fs::read(dir.join("r-time.json")).unwrap();
    let o = verify(away, "r-time.json", &timed_bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let timed: Value = serde_json::from_slice(&timed_bytes).unwrap();
    assert_eq!(timed["range"]["from"], json!(from));
    assert_eq!(timed["range"]["to"], json!(to));
    assert_eq!(timed["entries"], report["entries"]);
    assert!(
        timed["range"]["time"]["after_header"].is_object(),
        "{}",
        timed["range"]
    );
    type TimeEdit = Box<dyn Fn(&mut Value)>;
    let set = |since: Option<u64>, until: Option<Option<u64>>| -> TimeEdit {
        Box::new(move |v: &mut Value| {
            if let Some(s) = since {
                v["range"]["time"]["since_ms"] = json!(s);
            }
            if let Some(u) = until {
                v["range"]["time"]["until_ms"] = json!(u);
            }
        })
    };
    let time_edits: Vec<(&str, TimeEdit, &str)> = vec![
        (
            "time-earlier-start",
            set(Some(0), None),
            "the range starts at height",
        ),
        (
            "time-later-end",
            set(None, Some(Some(u64::MAX / 2))),
            "the range ends at height",
        ),
        (
            "time-later-start",
            set(Some(since + 1), None),
            "outside the report's time range",
        ),
        (
            "time-earlier-end",
            set(None, Some(Some(until - 1))),
            "is after the time range's end",
        ),
        (
            "time-no-after-header",
            Box::new(|v: &mut Value| v["range"]["time"]["after_header"] = Value::Null),
            "range.time.after_header",
        ),
        (
            "time-after-header-without-end",
            set(None, Some(None)),
            "after_header is set for a time range without an end",
        ),
        (
            "time-after-header-of-another-height",
            Box::new(|v: &mut Value| {
                v["range"]["time"]["after_header"] = v["end"]["certified_header"].clone()
            }),
            "range.time.after_header is of height",
        ),
    ];
    for (name, edit, needle) in time_edits {
        let mut v = unsigned(&timed);
        edit(&mut v);
        let bytes = resign(&chain, v, AUDITOR);
        refused(away, &format!("{name}.json"), &bytes, 1, needle);
    }

    // Re-signing the untouched content by the same auditor verifies: the edits below are
    // caught by the checks behind the signature, not by the re-signing.
    let same = resign(&chain, unsigned(&report), AUDITOR);
    assert_eq!(verify(away, "same.json", &same).status.code(), Some(0));

    // Any edit of the signed content, not signed again.
    let mut v = report.clone();
    v["entries"][2]["decoded"]["transactions"][0]["outcome"] = json!("success");
    let edited = serde_json::to_vec_pretty(&v).unwrap();
    refused(
        away,
        "edited-unsigned.json",
        &edited,
        1,
        "changed after signing",
    );
    // No signature at all; not a report at all.
    let bare = serde_json::to_vec(&unsigned(&report)).unwrap();
    refused(away, "unsigned.json", &bare, 1, "the report is unsigned");
    refused(away, "garbage.json", b"\x00not json{", 2, "not a report");
    refused(away, "array.json", b"[1, 2]", 2, "not a report");

    // Each edit below is re-signed by the auditor; (name, edit, what the message names).
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "removed",
            Box::new(|v| {
                v["entries"].as_array_mut().unwrap().remove(1);
            }),
            "the report lists 2 entries; the index holds 3 in the range (entries 1..4): entries were removed",
        ),
        (
            // The last one: only the counters show it is missing.
            "removed-last",
            Box::new(|v| {
                v["entries"].as_array_mut().unwrap().pop();
            }),
            "the report lists 2 entries; the index holds 3 in the range (entries 1..4): entries were removed",
        ),
        (
            "added",
            Box::new(|v| {
                let e = v["entries"][1].clone();
                v["entries"].as_array_mut().unwrap().insert(2, e);
            }),
            "the report lists 4 entries; the index holds 3 in the range (entries 1..4): entries were added",
        ),
        (
            "reordered",
            Box::new(|v| v["entries"].as_array_mut().unwrap().swap(0, 1)),
            "removed, added or reordered",
        ),
        (
            // The failed transaction shown as a success: the entry's bytes say code 0 (the
            // closing u32 of its one transaction), its decoded fields agree.
            "edited",
            Box::new(|v| {
                let e = &mut v["entries"][2];
                let mut bytes = hex::decode(e["entry"].as_str().unwrap()).unwrap();
                let n = bytes.len();
                assert_eq!(bytes[n - 4..n], 3001u32.to_be_bytes());
                bytes[n - 4..n].copy_from_slice(&0u32.to_be_bytes());
                e["entry"] = json!(hex::encode(bytes));
                e["decoded"]["transactions"][0]["code"] = json!(0);
                e["decoded"]["transactions"][0]["outcome"] = json!("success");
            }),
            "entries[2] (entry 3) is not the index's entry at height",
        ),
        (
            "decoded",
            Box::new(|v| {
                v["entries"][0]["decoded"]["transactions"][0]["organisation"] = json!("Agency 02")
            }),
            "entries[0].decoded differs from the proven entry's fields",
        ),
        (
            "range-to",
            Box::new(move |v| v["range"]["to"] = json!(to + 1)),
            "the counters are not read at heights",
        ),
        (
            "range-from",
            Box::new(move |v| v["range"]["from"] = json!(from + 1)),
            "the counters are not read at heights",
        ),
        (
            "end-count",
            Box::new(|v| {
                let n = v["end"]["count"].as_u64().unwrap();
                v["end"]["count"] = json!(n + 1);
            }),
            "end.count 5 is not the index's counter at height",
        ),
        (
            "start-count",
            Box::new(|v| v["start"]["count"] = json!(0)),
            "start.count 0 is not the index's counter at height",
        ),
        (
            "header-swapped",
            Box::new(|v| v["end"]["certified_header"] = v["start"]["certified_header"].clone()),
            "end.certified_header is of height",
        ),
        (
            "other-subject",
            Box::new(|v| v["index"]["id"] = json!("Agency 02")),
            "is not the index's counter at height",
        ),
        (
            "other-genesis-hash",
            Box::new(|v| v["genesis_sm3"] = json!("00".repeat(32))),
            "the report names another genesis file",
        ),
        (
            "other-chain",
            Box::new(|v| v["chain_id"] = json!("another-chain")),
            "the report is of chain \"another-chain\"",
        ),
        (
            "signer-crl-dropped",
            Box::new(|v| {
                v["signer_state"].as_array_mut().unwrap().retain(|p| {
                    !hex::decode(p["key"].as_str().unwrap())
                        .unwrap()
                        .starts_with(b"identity/crl/")
                });
            }),
            "was not a valid auditor at height",
        ),
        (
            "signer-state-dropped",
            Box::new(|v| v["signer_state"] = json!([])),
            "signer_state does not prove",
        ),
        (
            "signer-state-forged",
            Box::new(|v| {
                let p = &mut v["signer_state"].as_array_mut().unwrap()[0];
                let mut value = hex::decode(p["value"].as_str().unwrap()).unwrap();
                value[10] ^= 1;
                p["value"] = json!(hex::encode(value));
            }),
            "signer_state[0] is not the chain's state at height",
        ),
    ];
    assert_eq!(report["end"]["count"], json!(4), "{}", report["end"]);
    assert_eq!(report["start"]["count"], json!(1), "{}", report["start"]);
    for (name, edit, needle) in &edits {
        let mut v = unsigned(&report);
        edit(&mut v);
        assert_ne!(v, unsigned(&report), "{name} changed nothing");
        refused(
            away,
            &format!("{name}.json"),
            &resign(&chain, v, AUDITOR),
            1,
            needle,
        );
    }
    // The same content signed by others: a user, an auditor of another organisation, and an
    // auditor "of Agency 03" that Agency 03 never certified (with the chain's proofs of its
    // state, so that the check of its certificate is reached).
    refused(
        away,
        "by-user.json",
        &sign_as_anyone(&chain, unsigned(&report), "clients/0"),
        1,
        "whose role is user, not auditor",
    );
    refused(
        away,
        "by-bureau-auditor.json",
        &resign(&chain, unsigned(&report), "bureau-auditor"),
        1,
        "is of \"Dev Bureau\", not of the supervisor \"Agency 03\"",
    );
    let mut v = unsigned(&report);
    v["signer_state"] = forged_state;
    refused(
        away,
        "by-forger.json",
        &resign(&chain, v, "forged-auditor"),
        1,
        "was not a valid auditor at height",
    );

    // A report of another chain's genesis: a second dev chain, never started.
    let other = tempfile::tempdir().unwrap();
    cli_ok(
        other.path(),
        &[
            "node",
            "dev-chain",
            "--dir",
            other.path().join("c").to_str().unwrap(),
            "--orgs",
            "3",
            "--supervisor",
        ],
    );
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(
        other.path().join("c/data/genesis.json"),
        elsewhere.path().join("genesis.json"),
    )
    .unwrap();
    refused(
        elsewhere.path(),
        "r.json",
        &bytes,
        1,
        "the report names another genesis file",
    );
    // Time is reported, not asserted: speed is what benchmarks measure.
    eprintln!("took {:?}", started.elapsed());
}

/// The node anchors its audit log's head on the chain (`[audit] anchor_secs`); a copy of the
/// log cut before the anchored entry is caught by `node audit-verify --anchored` without
/// `--expect-head`, as is a copy whose anchored entry was rewritten; the intact log passes.
#[test]
fn the_nodes_audit_log_head_is_anchored_and_a_truncation_is_caught_from_the_chain() {
    let chain = dev_chain_supervised(1, 3);
    let dir = &chain.dir;
    let mut config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    config.push_str("\n[audit]\nanchor_secs = 1\ncheckpoint_secs = 1\n");
    std::fs::write(dir.join("node.toml"), config).unwrap();
    let _node = Node::start(&chain);
    // Traffic moves the log (API refusals, key use); wait for an anchor that covers it.
    let o = attest(&chain, "a.txt", "alpha", "clients/0");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let verify = |data: &str| {
        cli(
            dir,
            &[
                "node",
                "audit-verify",
                "--data-dir",
                data,
                "--cert",
                "node.crt.pem",
                "--anchored",
                "--client-profile",
                "client.toml",
            ],
        )
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let anchored_seq = loop {
        let o = verify("data");
        if o.status.code() == Some(0) {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            break word_after(&out, "anchored head OK: entry ")
                .parse::<u64>()
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no anchored head within 20 s: {}",
            stderr(&o)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    // The anchor is a transaction of the node, in its certificate's trace.
    let node_id = pki::Certificate::from_pem(&std::fs::read(dir.join("node.crt.pem")).unwrap())
        .unwrap()
        .fingerprint()
        .to_hex();
    let (_, t) = trace(&chain, &["--cert", &node_id]);
    assert!(
        t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["call"] == "supervision.anchor_log" && e["outcome"] == "success"),
        "{t}"
    );
    // A copy cut before the anchored entry: its own chain of hashes is intact, the chain's
    // anchor is not in it.
    let log = std::fs::read_to_string(dir.join("data/audit.log")).unwrap();
    let keep: Vec<&str> = log
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
                < anchored_seq
        })
        .collect();
    std::fs::create_dir_all(dir.join("cut")).unwrap();
    std::fs::write(dir.join("cut/audit.log"), keep.join("\n") + "\n").unwrap();
    let o = verify("cut");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("was truncated"), "{}", stderr(&o));
    // The same without --anchored passes: only the chain shows the cut.
    let o = cli(
        dir,
        &[
            "node",
            "audit-verify",
            "--data-dir",
            "cut",
            "--cert",
            "node.crt.pem",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The supervisor reads shared data: its auditor fetches a conditional dataset of another
/// organisation without a grant (with its auditor-enc certificate, the custodian records the
/// fetch on the chain), while another organisation's user without a grant is refused.
#[test]
fn the_supervisor_fetches_any_dataset_and_each_fetch_is_on_the_chain() {
    let chain = dev_chain_supervised(1, 3);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let admin = [
        "--client-profile",
        "client.toml",
        "--key",
        "admin.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "admin.crt.pem",
    ];
    let addr = chain.grpc.clone();
    let mut a = vec![
        "data",
        "endpoint",
        "--address",
        &addr,
        "--enc-cert",
        "node.enc.crt.pem",
    ];
    a.extend(admin);
    cli_ok(dir, &a);
    let doc: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("lic.bin"), &doc).unwrap();
    let mut a = vec![
        "data",
        "publish",
        "lic.bin",
        "--name",
        "licences",
        "--title",
        "Licences",
        "--class",
        "conditional",
    ];
    a.extend(admin);
    cli_ok(dir, &a);
    let fetch = |who: &str, out: &str| {
        cli(
            dir,
            &[
                "data",
                "fetch",
                "Dev Bureau/licences",
                "--enc-key",
                &format!("{who}.enc.key.pem"),
                "--enc-pass-file",
                "pass",
                "--enc-cert",
                &format!("{who}.enc.crt.pem"),
                "--out",
                out,
                "--client-profile",
                &own_session(who),
            ],
        )
    };
    let o = fetch(AUDITOR, "got.bin");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("got.bin")).unwrap(), doc);
    // On the chain's fetch log, with the auditor as requester and no request.
    let auditor_id =
        pki::Certificate::from_pem(&std::fs::read(dir.join(format!("{AUDITOR}.crt.pem"))).unwrap())
            .unwrap()
            .fingerprint()
            .to_hex();
    let log = cli_ok(
        dir,
        &[
            "data",
            "log",
            "Dev Bureau/licences",
            "--client-profile",
            "client.toml",
        ],
    );
    assert!(log.contains(&auditor_id) && log.contains("served"), "{log}");
    // Another organisation's user, without a grant, is refused.
    let o = fetch("orgs/2.user", "no.bin");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!dir.join("no.bin").exists());
}

/// review17 finding 2: the verifier takes `index.id` as it is. A report on the certificate
/// of `clients/0` (which signed two transactions in the range) with the ID in upper-case hex
/// names the same certificate to a reader, yet its counter key is another one, absent: the
/// report "proves" 0 entries, complete, and verifies.
#[test]
fn review17_a_report_on_a_non_canonical_cert_id_is_refused() {
    use execution::keys::{self, AUDIT};
    let chain = dev_chain_supervised(2, 3);
    let node = Node::start(&chain);
    let dir = &chain.dir;
    let bureau = "Dev Bureau";
    let a = submit(&chain, "a.txt", "alpha", "clients/0", bureau, "success");
    let b = submit(&chain, "b.txt", "bravo", "clients/0", bureau, "success");
    let (from, to) = (a.height, b.height);
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let id = cert_id(&chain, "clients/0");
    let auditor_profile = own_session(AUDITOR);
    cli_ok(
        dir,
        &strs(&report_args(
            &["--cert", &id, "--from", &from_s, "--to", &to_s],
            "r.json",
            &["--client-profile".to_string(), auditor_profile],
        )),
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["entries"].as_array().unwrap().len(), 2);
    let upper = id.to_uppercase();
    let key = keys::full(AUDIT, &keys::audit::count("cert", &upper));
    let start = prove(&chain, from - 1, vec![key.clone()]);
    let end = prove(&chain, to, vec![key]);
    drop(node);
    let mut v = unsigned(&report);
    v["index"]["id"] = json!(upper);
    v["start"]["count"] = json!(0);
    v["start"]["proof"] = start[0]["proof"].clone();
    v["end"]["count"] = json!(0);
    v["end"]["proof"] = end[0]["proof"].clone();
    v["entries"] = json!([]);
    let away = tempfile::tempdir().unwrap();
    let away = away.path();
    std::fs::copy(dir.join("data/genesis.json"), away.join("genesis.json")).unwrap();
    let o = verify(away, "upper.json", &resign(&chain, v, AUDITOR));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a report claiming 0 entries for {upper} (the certificate that signed {} and {}) verified: {}",
        a.tx,
        b.tx,
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        stderr(&o).contains("is not how a cert is named on the chain"),
        "{}",
        stderr(&o)
    );
}
