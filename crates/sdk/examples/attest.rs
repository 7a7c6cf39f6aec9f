//! Anchors a file's SM3 digest on a gmchain chain, waits for the commit, fetches the offline
//! receipt and verifies it against the genesis file, then prints the height and the signers.
//!
//! ```text
//! attest FILE --node HOST:PORT --cert CERT.pem --ca CA.pem [--crl CRL.pem]... \
//!        --key KEY (--pass-file FILE | --pass-env VAR) [--hsm-profile PROFILE.toml] \
//!        [--node-name NAME] --genesis GENESIS.json [--receipt-out FILE]
//! ```
//!
//! KEY is an encrypted key file (development), or a `pkcs11:token=…;object=…` URI of a key in a
//! PKCS#11 token with `--hsm-profile` (gmchain's soft token on a devnet, an HSM in production;
//! the key never leaves it). A PIN or passphrase comes only from a file or an environment
//! variable, never from the command line.
//!
//! `tests/sdk_example.rs` runs [`run`] against a real node: CI fails if this program breaks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gmchain_sdk::{Client, SdkError, Sender, TlsClient};

/// The example's arguments.
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// The document.
    pub file: PathBuf,
    /// The node's mutual GM TLS API, HOST:PORT.
    pub node: String,
    /// The node's certificate common name (only that node is accepted).
    pub node_name: Option<String>,
    /// The key: a key file or a `pkcs11:` URI.
    pub key: String,
    /// The module profile of a `pkcs11:` key.
    pub hsm_profile: Option<PathBuf>,
    /// The file holding the PIN or passphrase.
    pub pass_file: Option<PathBuf>,
    /// The environment variable holding the PIN or passphrase.
    pub pass_env: Option<String>,
    /// The certificate of the key (TLS client and transaction sender).
    pub cert: PathBuf,
    /// The CA certificates to trust for the node's certificate.
    pub ca: Vec<PathBuf>,
    /// CRLs of the CAs on the node's certificate path.
    pub crls: Vec<PathBuf>,
    /// The chain's genesis file.
    pub genesis: PathBuf,
    /// Where to write the receipt (JSON), if anywhere.
    pub receipt_out: Option<PathBuf>,
}

const USAGE: &str = "usage: attest FILE --node HOST:PORT --cert CERT.pem --ca CA.pem [--crl CRL.pem]... --key KEY (--pass-file FILE | --pass-env VAR) [--hsm-profile PROFILE.toml] [--node-name NAME] --genesis GENESIS.json [--receipt-out FILE]";

impl Args {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut file = None;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--node" => out.node = value()?,
                "--node-name" => out.node_name = Some(value()?),
                "--key" => out.key = value()?,
                "--hsm-profile" => out.hsm_profile = Some(value()?.into()),
                "--pass-file" => out.pass_file = Some(value()?.into()),
                "--pass-env" => out.pass_env = Some(value()?),
                "--cert" => out.cert = value()?.into(),
                "--ca" => out.ca.push(value()?.into()),
                "--crl" => out.crls.push(value()?.into()),
                "--genesis" => out.genesis = value()?.into(),
                "--receipt-out" => out.receipt_out = Some(value()?.into()),
                "--pin" | "--pass" | "--passphrase" => {
                    return Err(format!(
                        "{a}: a PIN or passphrase is never a command-line value; use --pass-file or --pass-env"
                    ));
                }
                s if s.starts_with("--") => return Err(format!("unknown option {s}")),
                s if file.is_none() => file = Some(PathBuf::from(s)),
                s => return Err(format!("unexpected argument {s}")),
            }
        }
        out.file = file.ok_or("FILE is missing")?;
        for (missing, what) in [
            (out.node.is_empty(), "--node"),
            (out.key.is_empty(), "--key"),
            (out.cert.as_os_str().is_empty(), "--cert"),
            (out.ca.is_empty(), "--ca"),
            (out.genesis.as_os_str().is_empty(), "--genesis"),
            (
                out.pass_file.is_none() && out.pass_env.is_none(),
                "--pass-file or --pass-env",
            ),
        ] {
            if missing {
                return Err(format!("{what} is missing"));
            }
        }
        Ok(out)
    }
}

/// What the example did.
#[derive(Debug)]
pub struct Report {
    /// The anchoring transaction.
    pub tx_id: types::TxId,
    /// The height of its block.
    pub height: u64,
    /// The transaction's signer (its certificate's subject) and organisation.
    pub signer: String,
    /// The validators whose precommits certify the block.
    pub certified_by: Vec<String>,
    /// The offline receipt, as fetched and verified.
    pub receipt_json: String,
}

fn read(path: &Path) -> Result<Vec<u8>, SdkError> {
    std::fs::read(path).map_err(|source| SdkError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Connects to the node as the key and certificate of `args`, and returns the client and the
/// sender (the same key signs the TLS handshake and the transaction).
pub async fn connect(args: &Args) -> Result<(Client, Sender), SdkError> {
    let secret = match (&args.pass_file, &args.pass_env) {
        (Some(f), _) => gmchain_sdk::secret_from_file(f)?,
        (None, Some(v)) => gmchain_sdk::secret_from_env(v)?,
        (None, None) => {
            return Err(SdkError::NoSecret {
                var: "--pass-file or --pass-env".into(),
            });
        }
    };
    let signer = match (&args.hsm_profile, args.key.starts_with("pkcs11:")) {
        (Some(profile), true) => gmchain_sdk::token_signer(profile, &args.key, secret)?,
        _ => gmchain_sdk::key_file_signer(Path::new(&args.key), Some(&secret))?,
    };
    let chain = gmchain_sdk::parse_certificates(&read(&args.cert)?)?;
    let leaf = chain.first().cloned().ok_or(SdkError::PemWithoutEnd)?;
    let creds = gmtls::Credentials::new(chain, signer.clone())?;
    let mut anchors = Vec::new();
    for ca in &args.ca {
        anchors.extend(gmchain_sdk::parse_certificates(&read(ca)?)?);
    }
    let mut crls = Vec::new();
    for crl in &args.crls {
        let bytes = read(crl)?;
        crls.push(pki::Crl::from_pem(&bytes).or_else(|_| pki::Crl::from_der(&bytes))?);
    }
    let trust = gmchain_sdk::node_authority(anchors, crls, None)?;
    let tls = TlsClient::new(&creds, trust, args.node_name.clone())?;
    let client = Client::connect(gmchain_sdk::resolve(&args.node)?, &tls).await?;
    Ok((client, Sender::new(signer, leaf)?))
}

/// Anchors the file's SM3, waits for the commit, fetches the receipt and verifies it offline
/// against the genesis file and the document.
pub async fn run(args: &Args) -> Result<Report, SdkError> {
    let document = read(&args.file)?;
    let (mut client, sender) = connect(args).await?;
    let digest = crypto_sm::sm3::sm3(&document);
    let call = gmchain_sdk::anchor_call(&digest, "document", "", Vec::new());
    let committed = client.send(&sender, call).await?.into_committed();
    let receipt_json = client.receipt_proof(&committed.id).await?;
    if let Some(out) = &args.receipt_out {
        std::fs::write(out, &receipt_json).map_err(|source| SdkError::Read {
            path: out.clone(),
            source,
        })?;
    }
    // No node is asked here: the receipt stands on the genesis file alone.
    let v = gmchain_sdk::verify_receipt_offline(
        receipt_json.as_bytes(),
        &args.genesis,
        Some(&document),
    )?
    .verified;
    Ok(Report {
        tx_id: v.tx_id,
        height: v.height.0,
        signer: format!("{} ({})", v.signer_subject, v.organisation),
        certified_by: v.certified_by,
        receipt_json,
    })
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("attest: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("attest: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(r) => {
            println!("anchored {} in tx {}", args.file.display(), r.tx_id);
            println!("height {}", r.height);
            println!("signed by {}", r.signer);
            println!(
                "certified by {} validator(s): {}",
                r.certified_by.len(),
                r.certified_by.join("; ")
            );
            println!(
                "receipt verified offline against {}",
                args.genesis.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            use codes::Coded;
            eprintln!("attest: {e} ({})", e.code());
            ExitCode::from(e.class().exit_status())
        }
    }
}
