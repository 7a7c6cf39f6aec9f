//! The `gmchain` command. This binary is the only place with `anyhow`: it turns library errors
//! into one-line messages and the exit codes of DEVELOPERS.md (0 success, 1 did not verify,
//! 2 bad input or usage, 3 token or node unreachable).

mod bench;
mod bench_admission;
mod bench_audit;
mod bench_backup;
mod bench_consortium;
mod bench_contract;
mod bench_exchange;
mod bench_node;
mod bench_rest;
mod bench_snapshot;
mod cli_audit;
mod cli_backup;
mod cli_ca;
mod cli_conformance;
mod cli_contract;
mod cli_crypto;
mod cli_data;
mod cli_devnet;
mod cli_governance;
mod cli_keys;
mod cli_node;
mod cli_tx;
mod client;
mod devchain;
mod io;
mod node_probe;
mod tls_probe;
mod token_probe;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What `gmchain --version` prints after the name: the release and the commit built
/// (docs/releases.md; `-dirty` for a tree with uncommitted changes).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GMCHAIN_GIT_COMMIT"),
    ")"
);

/// gmchain: a permissioned blockchain node with SM2/SM3/SM4 cryptography.
#[derive(Debug, Parser)]
#[command(name = "gmchain", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// SM2/SM3/SM4 toolbox, file-compatible with OpenSSL 3 (PEM keys, DER signatures and ciphertexts).
    #[command(subcommand)]
    Crypto(cli_crypto::CryptoCommand),
    /// The certificate authority: root and agency CAs, issuance, renewal, revocation, CRLs, audit.
    #[command(subcommand)]
    Ca(cli_ca::CaCommand),
    /// Keys inside a PKCS#11 token (HSM), through a module profile.
    #[command(subcommand)]
    Keys(cli_keys::KeysCommand),
    /// The conformance suite: clause maps of the standards and the checks that prove them.
    #[command(subcommand)]
    Conformance(cli_conformance::ConformanceCommand),
    /// The node: init (genesis and store), start, verify-store.
    #[command(subcommand)]
    Node(cli_node::NodeCommand),
    /// Signed transactions to a node: attest a document, identity actions.
    #[command(subcommand)]
    Tx(cli_tx::TxCommand),
    /// WASM contracts: build one with the contract SDK (checked as a deployment would check
    /// it); deploy, upgrade, freeze and unfreeze by governance proposal; call (a transaction),
    /// query (read-only, no transaction), show.
    #[command(subcommand)]
    Contract(cli_contract::ContractCommand),
    /// Governance (alias `gov`): propose and vote on validator-set changes, parameters,
    /// organisations, policies and contracts; list and show proposals.
    #[command(subcommand, visible_alias = "gov")]
    Governance(cli_governance::GovernanceCommand),
    /// Sharing data between agencies: publish a dataset, request and grant access, fetch and
    /// decrypt with both digests checked, the fetch log; send files with delivery receipts.
    #[command(subcommand)]
    Data(cli_data::DataCommand),
    /// Read a node's chain: status, transactions, blocks, attestations, receipts.
    #[command(subcommand)]
    Query(cli_tx::QueryCommand),
    /// Forwards local plain HTTP (gRPC) to a node over mutual GM TLS with your certificate, for
    /// tools and browsers that do not speak RFC 8998.
    Tunnel(client::TunnelArgs),
    /// Supervision and audit: the supervisor's freezes, traces of a certificate, an
    /// organisation, a contract, a dataset or an attestation, signed audit reports and their
    /// offline verification.
    #[command(subcommand)]
    Audit(cli_audit::AuditCommand),
    /// Offline receipts: verify one against the genesis file.
    #[command(subcommand)]
    Receipt(cli_tx::ReceiptCommand),
    /// Benchmarks against `openssl speed`, as ratios measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A demo consortium on this machine: N agencies, each with its CA, its soft-token slot and
    /// its validator node on 127.0.0.x (up, status, down).
    #[command(subcommand)]
    Devnet(cli_devnet::DevnetCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// SM2 sign/verify, SM3, SM4-CTR and SM4-GCM against OpenSSL 3 on one core.
    Crypto {
        /// Interleaved rounds; ratios are judged on the median.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Seconds per operation per round.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// The openssl executable.
        #[arg(long, default_value = "openssl")]
        openssl: String,
    },
    /// The load generator: a development chain, a node process, pre-signed transactions from
    /// many client keys over gRPC; committed tx/s and latency against B = cores × SM2 verify/s.
    Node(bench_node::NodeBenchArgs),
    /// The same load generator against a consortium of validator processes deciding by BFT
    /// consensus here: peak tx/s and finality latency against B = cores × SM2 verify/s ÷
    /// validators, p99 at half the peak rate, validator-key signatures per block.
    Consortium(bench_consortium::ConsortiumBenchArgs),
    /// What a refused request costs the node against an accepted one (node CPU from /proc),
    /// on a chain with many organisations: valid attestations, a crafted transaction whose
    /// certificate names an unknown issuer (replayed, and with fresh certificates).
    Admission(bench_admission::AdmissionBenchArgs),
    /// Data exchange (issue 15): fetch throughput of 1 MiB and 64 MiB versions over the node
    /// API against SM4-GCM decryption, and the peak memory of publishing 64 MiB.
    Exchange(bench_exchange::ExchangeBenchArgs),
    /// Supervision (issue 16): trace query times as the chain grows (10⁴, 10⁵, 10⁶
    /// transactions, built in process through the node's admission, engine and ledger), and
    /// the trace indexes' share of commit time, measured in one run.
    Audit(bench_audit::AuditBenchArgs),
    /// The REST gateway (issue 17): submit-and-wait tx/s over REST against gRPC on the same
    /// node, rounds alternating which goes first, the ratio of the medians (target ≥ 0.8).
    Rest(bench_rest::RestBenchArgs),
    /// Backup and restore (issue 18): the time of an online backup and of its verified
    /// restore of the bench chain, and the node's submit-and-commit tx/s with backups running
    /// against without, the ratio of the medians (target ≥ 0.8).
    Backup(bench_backup::BackupBenchArgs),
    /// State snapshots (issue 18): a new node's join from a snapshot (import and catch-up)
    /// against replaying the same chain from genesis through sync, interleaved rounds, the
    /// ratio of the medians (target ≤ 0.1 on a large chain), and the export time.
    Snapshot(bench_snapshot::SnapshotBenchArgs),
}

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Something did not verify (exit 1).
    NotVerified(String),
    /// Bad input or usage (exit 2).
    BadInput(String),
    /// A token or node could not be reached (exit 3).
    Unreachable(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::NotVerified(_) => 1,
            Failure::BadInput(_) => 2,
            Failure::Unreachable(_) => 3,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::NotVerified(m) | Failure::BadInput(m) | Failure::Unreachable(m) => m,
        }
    }
}

impl Failure {
    /// A failure with `message` whose exit status is the class the error-code registry gives
    /// `e` (a wrapped signer's failure takes the signer's class: a wrong PIN is 2, a token that
    /// is gone 3).
    pub(crate) fn coded(e: &(impl codes::Coded + ?Sized), message: String) -> Failure {
        Failure::of_class(e.class(), message)
    }

    /// A failure with `message` and the exit status of `class`.
    pub(crate) fn of_class(class: codes::Class, message: String) -> Failure {
        match class {
            codes::Class::NotVerified => Failure::NotVerified(message),
            codes::Class::BadInput => Failure::BadInput(message),
            codes::Class::Unavailable => Failure::Unreachable(message),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        // One line: the context chain joined with ": ".
        Failure::BadInput(format!("{e:#}"))
    }
}

pub(crate) type CmdResult = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crypto(c) => cli_crypto::run(c),
        Command::Ca(c) => cli_ca::run(c),
        Command::Keys(c) => cli_keys::run(c),
        Command::Conformance(c) => cli_conformance::run(c),
        Command::Node(c) => cli_node::run(c),
        Command::Tunnel(a) => client::tunnel(a),
        Command::Tx(c) => cli_tx::run_tx(c),
        Command::Contract(c) => cli_contract::run(c),
        Command::Governance(c) => cli_governance::run(c),
        Command::Data(c) => cli_data::run(c),
        Command::Audit(c) => cli_audit::run(c),
        Command::Query(c) => cli_tx::run_query(c),
        Command::Receipt(c) => cli_tx::run_receipt(c),
        Command::Devnet(c) => cli_devnet::run(c),
        Command::Bench(BenchCommand::Crypto {
            runs,
            seconds,
            openssl,
        }) => {
            let args = bench::BenchArgs {
                runs,
                seconds,
                openssl,
            };
            let mut stdout = std::io::stdout();
            bench::run(&args, &mut stdout)
                .map(|_| ())
                .map_err(Failure::from)
        }
        Command::Bench(BenchCommand::Node(args)) => bench_node::run(&args),
        Command::Bench(BenchCommand::Consortium(args)) => bench_consortium::run(&args),
        Command::Bench(BenchCommand::Admission(args)) => bench_admission::run(&args),
        Command::Bench(BenchCommand::Exchange(args)) => bench_exchange::run(&args),
        Command::Bench(BenchCommand::Audit(args)) => bench_audit::run(&args),
        Command::Bench(BenchCommand::Rest(args)) => bench_rest::run(&args),
        Command::Bench(BenchCommand::Backup(args)) => bench_backup::run(&args),
        Command::Bench(BenchCommand::Snapshot(args)) => bench_snapshot::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("gmchain: {}", one_line(f.message()));
            ExitCode::from(f.code())
        }
    }
}

/// The longest error line printed (a node's or custodian's message included).
const MAX_ERROR_LINE: usize = 2000;

/// An error as one printable line: a newline becomes a space, any other control character
/// (an escape sequence from a hostile node's status text, say) and any bidirectional
/// formatting character (which could reorder what is read) is shown escaped, and the line is
/// cut at [`MAX_ERROR_LINE`] characters.
pub(crate) fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_ERROR_LINE));
    for (n, c) in msg.chars().enumerate() {
        if n == MAX_ERROR_LINE {
            out.push_str(" …(cut)");
            break;
        }
        match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_control() || is_bidi_format(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// The Unicode bidirectional formatting characters (embeddings, overrides, isolates, marks).
fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod one_line_tests {
    #[test]
    fn an_error_is_one_printable_line() {
        let hostile = "refused\nfetched Org/x: verified\r\u{1b}]0;title\u{7}\u{1b}[2Kok";
        let line = super::one_line(hostile);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.starts_with("refused fetched Org/x: verified "),
            "{line:?}"
        );
        assert!(line.contains("\\u{1b}"), "{line:?}");
        let long = "x".repeat(5000);
        assert_eq!(
            super::one_line(&long).chars().count(),
            super::MAX_ERROR_LINE + 7
        );
        assert_eq!(super::one_line("plain 中文"), "plain 中文");
    }
}

#[cfg(test)]
mod cli_definition {
    /// clap checks a command's definition (unique argument names, valid conflicts) only when
    /// that command is parsed in a debug build: check every command at once, so that a
    /// clash (a subcommand's `--version` against the propagated one) fails here, not in use.
    #[test]
    fn every_command_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
