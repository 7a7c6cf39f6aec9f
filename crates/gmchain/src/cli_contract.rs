//! `gmchain contract …` and `gmchain query events`: WASM contracts on the chain.
//!
//! - `deploy`, `upgrade`, `freeze`, `unfreeze`: a `governance.propose` of the contract kind
//!   (docs/contracts.md; nothing runs on the chain until the organisations vote it). A module
//!   is checked here first exactly as the chain checks it (`contracts::validate`, the default
//!   limits), and refused with the rule's code (`CONTRACT_FLOAT`, ...) and exit 2 before
//!   anything is sent; it travels split into arguments of at most [`CODE_CHUNK`] bytes.
//! - `call`: a version 2 transaction with a fuel limit; prints the receipt as JSON; exit 1 when
//!   it failed.
//! - `query`: a read-only run at the node's tip (no transaction), as the client's certificate.
//! - `show`: the contract's record.
//!
//! Arguments are typed (`--arg u64:5`, `--arg str:hello`, docs/contracts.md §2); `--returns`
//! decodes the output by a type list.

use std::path::{Path, PathBuf};

use api::v1 as pb;
use clap::Subcommand;
use types::{Call, Status};

use crate::cli_governance::{Schedule, check_kind_args, submit_proposal};
use crate::cli_tx::{
    NodeArgs, SenderArgs, connect, event_fields, event_json, failure_name, print_json, runtime,
    status_failure, submit,
};
use crate::io::read_named;
use crate::{CmdResult, Failure};

/// The fuel limit of `gmchain contract call` without `--fuel`: 10⁷, a tenth of the default
/// `max_fuel_per_tx` and far more than the example contracts use per call.
pub(crate) const DEFAULT_CALL_FUEL: u64 = 10_000_000;

/// The most module bytes in one argument of a deployment or upgrade (the chain takes up to
/// 64 KiB per argument).
pub(crate) const CODE_CHUNK: usize = 60_000;

/// When voting on a contract proposal ends.
#[derive(Debug, clap::Args)]
pub(crate) struct ProposalDeadline {
    /// The last height at which votes count.
    #[arg(long, value_name = "H", conflicts_with = "deadline_in")]
    deadline: Option<u64>,
    /// The deadline as blocks after the node's tip (default 100).
    #[arg(long, value_name = "N")]
    deadline_in: Option<u64>,
}

impl ProposalDeadline {
    fn schedule(&self) -> Schedule {
        match (self.deadline, self.deadline_in) {
            (None, None) => Schedule::deadline_only(None, Some(100)),
            (d, n) => Schedule::deadline_only(d, n),
        }
    }
}

/// A call's method and typed arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CallArgs {
    /// The contract's name.
    name: String,
    /// The method.
    method: String,
    /// An argument as TYPE:VALUE (u64:5, i64:-3, u32:7, bool:true, str:hello, bytes:0a0b,
    /// digest:<64 hex>), in order; repeat for each.
    #[arg(long = "arg", value_name = "TYPE:VALUE")]
    args: Vec<String>,
    /// Decode the output as these types, comma-separated (one type: the whole output; several:
    /// a tuple, each value length-prefixed).
    #[arg(long, value_name = "TYPE,...")]
    returns: Option<String>,
}

impl CallArgs {
    /// The arguments' bytes and the result types, checked before anything is sent.
    fn parse(&self) -> Result<(Vec<Vec<u8>>, Option<Returns>), Failure> {
        let args = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                typed::parse_arg(a).map_err(|e| Failure::BadInput(format!("--arg {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let returns = self
            .returns
            .as_deref()
            .map(Returns::parse)
            .transpose()
            .map_err(|e| Failure::BadInput(format!("--returns: {e}")))?;
        Ok((args, returns))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContractCommand {
    /// Proposes deploying a WASM module as contract NAME (kind contract-deploy; sent by an
    /// admin, whose vote is a yes). The module is checked here as the chain will check it.
    Deploy {
        /// The contract's name (1-32 of a-z, 0-9, '-', '_', starting with a letter).
        name: String,
        /// The module (.wasm).
        #[arg(long, value_name = "FILE")]
        code: PathBuf,
        #[command(flatten)]
        deadline: ProposalDeadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Proposes replacing contract NAME's code (kind contract-upgrade; its state stays; the new
    /// code's `migrate`, if exported, runs in the executing vote).
    Upgrade {
        /// The contract's name.
        name: String,
        /// The new module (.wasm).
        #[arg(long, value_name = "FILE")]
        code: PathBuf,
        #[command(flatten)]
        deadline: ProposalDeadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Proposes freezing contract NAME: calls are refused, queries still answer.
    Freeze {
        /// The contract's name.
        name: String,
        #[command(flatten)]
        deadline: ProposalDeadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Proposes unfreezing contract NAME.
    Unfreeze {
        /// The contract's name.
        name: String,
        #[command(flatten)]
        deadline: ProposalDeadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Calls a method in a transaction (version 2, with a fuel limit), waits for the commit
    /// and prints the receipt (JSON: status, fuel used, output, events). Exit 1 when the
    /// receipt says Failed.
    Call {
        #[command(flatten)]
        call: CallArgs,
        /// The transaction's fuel limit (at most the chain's max_fuel_per_tx).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_CALL_FUEL)]
        fuel: u64,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Runs a method read-only at the node's tip, as your certificate (no transaction,
    /// nothing written); prints the output (JSON).
    Query {
        #[command(flatten)]
        call: CallArgs,
        /// The most fuel the query may use (default: the chain's max_fuel_per_tx).
        #[arg(long, value_name = "N")]
        fuel: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A deployed contract's record: code hash and size, version, frozen, heights (JSON).
    Show {
        /// The contract's name.
        name: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// The arguments of `gmchain query events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Only events of this contract.
    #[arg(long)]
    contract: Option<String>,
    /// Only events with this name.
    #[arg(long)]
    name: Option<String>,
    /// Only events with this topic, typed like an argument (str:case-1, u64:5, bytes:0a0b).
    #[arg(long, value_name = "TYPE:VALUE")]
    topic: Option<String>,
    /// The first block (default 1).
    #[arg(long, value_name = "H", default_value_t = 1)]
    from: u64,
    /// The last block (default the tip); at most 10000 blocks in one request.
    #[arg(long, value_name = "H")]
    to: Option<u64>,
    /// The most events printed from the range (the node's default 1000, at most 10000).
    #[arg(long, value_name = "N", default_value_t = 0)]
    limit: u32,
    /// After the range, print each matching event of the blocks committed from now on, one
    /// JSON object per line, until interrupted.
    #[arg(long, conflicts_with = "to")]
    follow: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Reads and checks a module as the chain will at deployment; returns its bytes.
fn module(path: &Path) -> Result<Vec<u8>, Failure> {
    let code = read_named("--code", path)?;
    contracts::validate(&code, &contracts::Limits::default()).map_err(|e| {
        Failure::BadInput(format!(
            "--code {}: {}: {e}",
            path.display(),
            codes::Coded::code(&e).name
        ))
    })?;
    Ok(code)
}

/// A deployment's or upgrade's arguments: the name, then the module in chunks.
fn code_args(name: &str, code: &[u8]) -> Vec<Vec<u8>> {
    let mut args = vec![name.as_bytes().to_vec()];
    args.extend(code.chunks(CODE_CHUNK).map(<[u8]>::to_vec));
    args
}

pub(crate) fn run(cmd: ContractCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            ContractCommand::Deploy {
                name,
                code,
                deadline,
                sender,
                node,
            } => lifecycle("contract-deploy", &name, Some(&code), &deadline, &sender, &node).await,
            ContractCommand::Upgrade {
                name,
                code,
                deadline,
                sender,
                node,
            } => lifecycle("contract-upgrade", &name, Some(&code), &deadline, &sender, &node).await,
            ContractCommand::Freeze {
                name,
                deadline,
                sender,
                node,
            } => lifecycle("contract-freeze", &name, None, &deadline, &sender, &node).await,
            ContractCommand::Unfreeze {
                name,
                deadline,
                sender,
                node,
            } => lifecycle("contract-unfreeze", &name, None, &deadline, &sender, &node).await,
            ContractCommand::Call {
                call,
                fuel,
                sender,
                node,
            } => contract_call(&call, fuel, &sender, &node).await,
            ContractCommand::Query { call, fuel, node } => query(&call, fuel, &node).await,
            ContractCommand::Show { name, node } => show(&name, &node).await,
        }
    })
}

/// Proposes the lifecycle change `kind` of contract `name` (with the module at `code` for a
/// deployment or an upgrade).
async fn lifecycle(
    kind: &str,
    name: &str,
    code: Option<&Path>,
    deadline: &ProposalDeadline,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    execution::check_contract_name(name).map_err(Failure::BadInput)?;
    let args = match code {
        Some(path) => {
            let code = module(path)?;
            println!(
                "module {}: {} bytes, SM3 {} (checked as the chain will)",
                path.display(),
                code.len(),
                crypto_sm::sm3::sm3(&code)
            );
            code_args(name, &code)
        }
        None => vec![name.as_bytes().to_vec()],
    };
    check_kind_args(kind, &args, "NAME/--code")?;
    submit_proposal(kind, args, deadline.schedule(), sender, node).await
}

async fn contract_call(
    call: &CallArgs,
    fuel: u64,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    let (args, returns) = call.parse()?;
    let mut client = connect(node).await?;
    let committed = submit(
        &mut client,
        sender,
        Call {
            contract: call.name.clone(),
            method: call.method.clone(),
            args,
        },
        Some(fuel),
    )
    .await?;
    let r = &committed.receipt;
    let (status, code, message) = match &r.status {
        Status::Success => ("success", None, None),
        Status::Failed { code, message } => ("failed", Some(failure_name(*code)), Some(message)),
    };
    let decoded = match (&returns, &r.status) {
        (Some(t), Status::Success) => Some(t.decode(&r.output)),
        _ => None,
    };
    print_json(&serde_json::json!({
        "tx_id": committed.id.to_string(),
        "height": committed.height,
        "position": committed.position,
        "call": format!("{}.{}", call.name, call.method),
        "status": status,
        "code": code,
        "code_number": match &r.status {
            Status::Failed { code, .. } => Some(*code),
            Status::Success => None,
        },
        "message": message,
        "fuel_limit": fuel,
        "fuel_used": r.fuel_used,
        "output": hex::encode(&r.output),
        "returns": decoded,
        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
    }))?;
    if let Status::Failed { code, message } = &r.status {
        return Err(Failure::NotVerified(format!(
            "transaction {} was committed at height {} but failed: {} ({code}): {message}",
            committed.id,
            committed.height,
            failure_name(*code)
        )));
    }
    Ok(())
}

async fn query(call: &CallArgs, fuel: Option<u64>, node: &NodeArgs) -> CmdResult {
    let (args, returns) = call.parse()?;
    let mut client = connect(node).await?;
    let a = client
        .query_contract(pb::QueryContractRequest {
            contract: call.name.clone(),
            method: call.method.clone(),
            args,
            fuel,
        })
        .await
        .map_err(|s| status_failure("query", s))?
        .into_inner();
    print_json(&serde_json::json!({
        "call": format!("{}.{}", call.name, call.method),
        "height": a.height,
        "fuel_used": a.fuel_used,
        "output": hex::encode(&a.output),
        "returns": returns.map(|t| t.decode(&a.output)),
    }))
}

async fn show(name: &str, node: &NodeArgs) -> CmdResult {
    let mut client = connect(node).await?;
    let c = client
        .get_contract(pb::GetContractRequest {
            name: name.to_string(),
        })
        .await
        .map_err(|s| status_failure("contract", s))?
        .into_inner();
    print_json(&serde_json::json!({
        "name": c.name,
        "code_hash": hex::encode(&c.code_hash),
        "code_size": c.code_size,
        "version": c.version,
        "frozen": c.frozen,
        "deployed": c.deployed,
        "updated": c.updated,
        "proposal": hex::encode(&c.proposal_id),
        "tip": c.tip,
    }))
}

fn contract_event_json(e: &pb::ContractEvent) -> serde_json::Value {
    let mut j = event_fields(&e.contract, &e.name, &e.topics, &e.data);
    if let Some(o) = j.as_object_mut() {
        o.insert("height".into(), e.height.into());
        o.insert("tx_id".into(), hex::encode(&e.tx_id).into());
        o.insert("position".into(), e.position.into());
        o.insert("index".into(), e.index.into());
    }
    j
}

/// `gmchain query events`.
pub(crate) async fn events(a: EventsArgs) -> CmdResult {
    let topic = a
        .topic
        .as_deref()
        .map(typed::parse_arg)
        .transpose()
        .map_err(|e| Failure::BadInput(format!("--topic: {e}")))?;
    let filter = pb::EventFilter {
        contract: a.contract.clone(),
        name: a.name.clone(),
        topic,
    };
    {
        let mut client = connect(&a.node).await?;
        // Subscribed before the range is read, so that no block between the two is missed;
        // the stream's events of blocks the range covered are skipped.
        let stream = if a.follow {
            Some(
                client
                    .subscribe_events(pb::SubscribeEventsRequest {
                        filter: Some(filter.clone()),
                    })
                    .await
                    .map_err(|s| status_failure("event subscription", s))?
                    .into_inner(),
            )
        } else {
            None
        };
        let r = client
            .query_events(pb::QueryEventsRequest {
                filter: Some(filter),
                from_height: a.from,
                to_height: a.to,
                limit: a.limit,
            })
            .await
            .map_err(|s| status_failure("events", s))?
            .into_inner();
        let Some(mut stream) = stream else {
            return print_json(&serde_json::json!({
                "from_height": a.from.max(1),
                "scanned_to": r.scanned_to,
                "truncated": r.truncated,
                "tip": r.tip,
                "events": r.events.iter().map(contract_event_json).collect::<Vec<_>>(),
            }));
        };
        let line = |e: &pb::ContractEvent| -> CmdResult {
            let text = serde_json::to_string(&contract_event_json(e))
                .map_err(|e| Failure::BadInput(format!("cannot render JSON: {e}")))?;
            println!("{text}");
            Ok(())
        };
        for e in &r.events {
            line(e)?;
        }
        if r.truncated {
            eprintln!(
                "gmchain: more than {} events in the range; following from block {}",
                r.events.len(),
                r.tip + 1
            );
        }
        loop {
            match stream.message().await {
                Ok(Some(e)) if e.height <= r.scanned_to => {}
                Ok(Some(e)) => line(&e)?,
                Ok(None) => {
                    return Err(Failure::Unreachable(
                        "the node ended the event stream".into(),
                    ));
                }
                Err(s) => return Err(status_failure("event stream", s)),
            }
        }
    }
}

/// Result types of `--returns`.
#[derive(Debug)]
struct Returns(Vec<typed::Type>);

impl Returns {
    fn parse(text: &str) -> Result<Returns, String> {
        text.split(',')
            .map(|t| t.trim().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(Returns)
    }

    /// The output decoded: one value for one type, a list for several (each value
    /// length-prefixed); an output that does not decode is reported in place.
    fn decode(&self, output: &[u8]) -> serde_json::Value {
        let r = if let [one] = self.0.as_slice() {
            one.decode(output).map(serde_json::Value::String)
        } else {
            typed::split(output, self.0.len()).and_then(|parts| {
                self.0
                    .iter()
                    .zip(parts)
                    .map(|(t, p)| t.decode(p).map(serde_json::Value::String))
                    .collect::<Result<Vec<_>, _>>()
                    .map(serde_json::Value::Array)
            })
        };
        r.unwrap_or_else(|e| serde_json::json!({ "undecodable": e }))
    }
}

/// Typed arguments and results (docs/contracts.md §2, "Typed arguments and results"): the
/// scalar types, each `TYPE:VALUE`.
mod typed {
    use std::str::FromStr;

    /// A scalar type.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Type {
        U64,
        I64,
        U32,
        I32,
        Bool,
        Str,
        Bytes,
        Digest,
    }

    impl FromStr for Type {
        type Err = String;

        fn from_str(s: &str) -> Result<Type, String> {
            Ok(match s {
                "u64" => Type::U64,
                "i64" => Type::I64,
                "u32" => Type::U32,
                "i32" => Type::I32,
                "bool" => Type::Bool,
                "str" => Type::Str,
                "bytes" => Type::Bytes,
                "digest" => Type::Digest,
                other => {
                    return Err(format!(
                        "`{other}` is not a type (u64, i64, u32, i32, bool, str, bytes, digest)"
                    ));
                }
            })
        }
    }

    impl Type {
        fn encode(self, value: &str) -> Result<Vec<u8>, String> {
            let int = |what: &str| format!("`{value}` is not a {what}");
            Ok(match self {
                Type::U64 => value
                    .parse::<u64>()
                    .map_err(|_| int("u64"))?
                    .to_be_bytes()
                    .to_vec(),
                Type::I64 => value
                    .parse::<i64>()
                    .map_err(|_| int("i64"))?
                    .to_be_bytes()
                    .to_vec(),
                Type::U32 => value
                    .parse::<u32>()
                    .map_err(|_| int("u32"))?
                    .to_be_bytes()
                    .to_vec(),
                Type::I32 => value
                    .parse::<i32>()
                    .map_err(|_| int("i32"))?
                    .to_be_bytes()
                    .to_vec(),
                Type::Bool => match value {
                    "true" => vec![1],
                    "false" => vec![0],
                    _ => return Err(int("bool (true or false)")),
                },
                Type::Str => value.as_bytes().to_vec(),
                Type::Bytes | Type::Digest => {
                    let b = hex::decode(value.strip_prefix("0x").unwrap_or(value))
                        .map_err(|e| format!("`{value}` is not hex: {e}"))?;
                    if self == Type::Digest && b.len() != 32 {
                        return Err(format!("a digest is 32 bytes, got {}", b.len()));
                    }
                    b
                }
            })
        }

        /// Shows `bytes` as a value of this type.
        pub(super) fn decode(self, b: &[u8]) -> Result<String, String> {
            let fixed = |n: usize, what: &str| -> Result<(), String> {
                if b.len() == n {
                    Ok(())
                } else {
                    Err(format!("a {what} is {n} bytes, got {}", b.len()))
                }
            };
            Ok(match self {
                Type::U64 => {
                    fixed(8, "u64")?;
                    u64::from_be_bytes(b.try_into().map_err(|_| "u64")?).to_string()
                }
                Type::I64 => {
                    fixed(8, "i64")?;
                    i64::from_be_bytes(b.try_into().map_err(|_| "i64")?).to_string()
                }
                Type::U32 => {
                    fixed(4, "u32")?;
                    u32::from_be_bytes(b.try_into().map_err(|_| "u32")?).to_string()
                }
                Type::I32 => {
                    fixed(4, "i32")?;
                    i32::from_be_bytes(b.try_into().map_err(|_| "i32")?).to_string()
                }
                Type::Bool => match b {
                    [0] => "false".into(),
                    [1] => "true".into(),
                    _ => return Err("a bool is one byte, 0 or 1".into()),
                },
                Type::Str => std::str::from_utf8(b)
                    .map_err(|e| format!("not UTF-8: {e}"))?
                    .to_string(),
                Type::Bytes => hex::encode(b),
                Type::Digest => {
                    fixed(32, "digest")?;
                    hex::encode(b)
                }
            })
        }
    }

    /// Parses `TYPE:VALUE` into the argument's bytes.
    pub(super) fn parse_arg(spec: &str) -> Result<Vec<u8>, String> {
        let (ty, value) = spec.split_once(':').ok_or_else(|| {
            format!("`{spec}` is not TYPE:VALUE (for example u64:5, str:hello, bytes:0a0b)")
        })?;
        ty.parse::<Type>()?.encode(value)
    }

    /// Splits a tuple's encoding into its `n` length-prefixed values.
    pub(super) fn split(mut b: &[u8], n: usize) -> Result<Vec<&[u8]>, String> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (len, rest) = b
                .split_first_chunk::<4>()
                .ok_or_else(|| format!("value {i}: no length"))?;
            let len = u32::from_be_bytes(*len) as usize;
            if rest.len() < len {
                return Err(format!("value {i}: {len} bytes, {} left", rest.len()));
            }
            let (v, rest) = rest.split_at(len);
            out.push(v);
            b = rest;
        }
        if !b.is_empty() {
            return Err(format!("{} bytes after the last value", b.len()));
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn arguments_encode_as_the_contract_abi_says() {
            assert_eq!(parse_arg("u64:5").unwrap(), [0, 0, 0, 0, 0, 0, 0, 5]);
            assert_eq!(parse_arg("i32:-2").unwrap(), [0xff, 0xff, 0xff, 0xfe]);
            assert_eq!(parse_arg("bool:true").unwrap(), [1]);
            assert_eq!(parse_arg("str:a:b").unwrap(), b"a:b");
            assert_eq!(parse_arg("bytes:0a0b").unwrap(), [10, 11]);
            for bad in ["5", "u64:x", "u8:1", "bool:yes", "digest:00", "bytes:0g"] {
                assert!(parse_arg(bad).is_err(), "{bad}");
            }
            assert_eq!(Type::U64.decode(&[0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), "256");
            assert!(Type::U64.decode(&[1]).is_err());
            let parts = split(&[0, 0, 0, 1, 7, 0, 0, 0, 0], 2).unwrap();
            assert_eq!(parts, [&[7u8][..], &[][..]]);
            assert!(split(&[0, 0, 0, 2, 7], 1).is_err());
            assert!(split(&[0, 0, 0, 0, 9], 1).is_err());
        }
    }
}
