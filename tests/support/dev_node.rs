//! Shared by the multi-process tests: the `gmchain` binary, a throwaway development chain
//! (`gmchain node dev-chain`) and a node process on 127.0.0.1 that is killed on drop. The
//! node's API is mutual GM TLS: commands run in a chain's directory use its admin's client
//! profile (`client.toml`, through GMCHAIN_CLIENT_PROFILE, as a user would), and [`client`]
//! opens a gRPC client over gmtls with a dev-chain identity.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use api::v1::chain_client::ChainClient;
use std::sync::{Arc, Mutex};

pub fn gm(dir: &Path, args: &[&str]) -> Output {
    gm_with(Path::new(env!("CARGO_BIN_EXE_gmchain")), dir, args)
}

/// [`gm`] with the `gmchain` at `bin` (another release's, for the upgrade test).
pub fn gm_with(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir).args(args);
    let profile = dir.join("client.toml");
    if profile.exists() {
        cmd.env("GMCHAIN_CLIENT_PROFILE", profile);
    }
    cmd.output().expect("run gmchain")
}

/// A TLS client configuration for the dev-chain identity `name` (`admin`, `clients/3`):
/// its key and certificate, the chain's root and CRL as trust.
pub fn tls_config(dir: &Path, name: &str) -> Arc<gmtls::rustls::ClientConfig> {
    let pem = std::fs::read(dir.join(format!("{name}.key.pem"))).unwrap();
    let key = crypto_sm::keys::decode_private_key(&pem, Some(PASS)).unwrap();
    let signer =
        crypto_sm::SoftwareProvider::new(Arc::new(crypto_sm::rng::SystemRandom)).signer(key);
    let cert =
        pki::Certificate::from_pem(&std::fs::read(dir.join(format!("{name}.crt.pem"))).unwrap())
            .unwrap();
    let creds = gmtls::Credentials::new(vec![cert], Arc::new(signer)).unwrap();
    let root = pki::Certificate::from_pem(&std::fs::read(dir.join("ca.crt.pem")).unwrap()).unwrap();
    let crl = pki::Crl::from_pem(&std::fs::read(dir.join("ca.crl.pem")).unwrap()).unwrap();
    let servers = gmtls::StaticAuthority::new(vec![root], vec![crl], gmtls::SERVER_ROLES).unwrap();
    gmtls::client_config(&creds, Arc::new(servers), gmtls::provider()).unwrap()
}

/// A gRPC client to the chain's node over mutual GM TLS as identity `name`.
pub async fn client_as(
    chain: &Chain,
    name: &str,
) -> Result<ChainClient<tonic::transport::Channel>, String> {
    client_at(&chain.dir, &chain.grpc, name).await
}

/// A gRPC client to the node at `addr` (any node of the chain in `dir`) as identity `name`.
pub async fn client_at(
    dir: &Path,
    addr: &str,
    name: &str,
) -> Result<ChainClient<tonic::transport::Channel>, String> {
    let channel = channel_at(dir, addr, name).await?;
    Ok(ChainClient::new(channel).max_decoding_message_size(64 << 20))
}

/// A gRPC channel to the node at `addr` over mutual GM TLS as identity `name`, for any of the
/// node's services (`ChainClient`, `SupervisionClient`, …).
pub async fn channel_at(
    dir: &Path,
    addr: &str,
    name: &str,
) -> Result<tonic::transport::Channel, String> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let config = tls_config(dir, name);
    let first = gmtls::net::connect(
        addr,
        config.clone(),
        Duration::from_secs(5),
        Some(Duration::from_secs(5)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let first = Arc::new(Mutex::new(Some(first)));
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let (first, config) = (first.clone(), config.clone());
        async move {
            let ready = first.lock().unwrap().take();
            let s = match ready {
                Some(s) => s,
                None => gmtls::net::connect(addr, config, Duration::from_secs(5), None).await?,
            };
            Ok::<_, gmtls::net::ConnectError>(hyper_util::rt::TokioIo::new(s))
        }
    });
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector(connector)
        .await
        .map_err(|e| e.to_string())
}

/// A gRPC client to the chain's node as its admin.
pub async fn client(chain: &Chain) -> ChainClient<tonic::transport::Channel> {
    client_as(chain, "admin").await.unwrap()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    ok_with(Path::new(env!("CARGO_BIN_EXE_gmchain")), dir, args)
}

/// [`ok`] with the `gmchain` at `bin`.
pub fn ok_with(bin: &Path, dir: &Path, args: &[&str]) -> String {
    let o = gm_with(bin, dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{} {args:?}: {}",
        bin.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn fails(dir: &Path, args: &[&str], code: i32, needle: &str) -> String {
    let o = gm(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "gmchain {args:?}: {err}");
    assert!(
        err.contains(needle),
        "gmchain {args:?}: expected {needle:?} in {err}"
    );
    err
}

pub struct Chain {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub grpc: String,
    pub metrics: String,
}

pub fn dev_chain(clients: usize) -> Chain {
    dev_chain_orgs(clients, 1)
}

/// A dev chain of `orgs` founding organisations: the first holds the node, the admin, the CA
/// and the clients; organisation i ≥ 2 (`Agency 0i`) has its root and an admin,
/// `orgs/{i}.admin.key.pem` and `orgs/{i}.admin.crt.pem`.
pub fn dev_chain_orgs(clients: usize, orgs: usize) -> Chain {
    dev_chain_made(clients, orgs, false)
}

/// [`dev_chain_orgs`] with a supervisor (`--supervisor`): the last organisation (`Agency 0{orgs}`)
/// supervises the chain and has an auditor, `orgs/{orgs}.auditor.key.pem` and
/// `orgs/{orgs}.auditor.crt.pem`, with its client profile `orgs/{orgs}.auditor.profile.toml`.
pub fn dev_chain_supervised(clients: usize, orgs: usize) -> Chain {
    dev_chain_made(clients, orgs, true)
}

fn dev_chain_made(clients: usize, orgs: usize, supervisor: bool) -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (clients, orgs) = (clients.to_string(), orgs.to_string());
    let mut args = vec![
        "node",
        "dev-chain",
        "--dir",
        dir.to_str().unwrap(),
        "--clients",
        &clients,
        "--interval-ms",
        "50",
    ];
    if orgs != "1" {
        args.extend(["--orgs", &orgs]);
    }
    if supervisor {
        args.push("--supervisor");
    }
    ok(&dir, &args);
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    let find = |key: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap()
    };
    Chain {
        grpc: find("listen = "),
        metrics: find("metrics_listen = "),
        dir,
        _tmp: tmp,
    }
}

pub struct Node(pub Child);

impl Node {
    pub fn start(chain: &Chain) -> Node {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(chain.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(&chain.dir)
            .args(["node", "start", "--config", "node.toml"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = Node(child);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = rt.block_on(async {
                let mut c = client_as(chain, "admin").await.ok()?;
                c.get_status(api::v1::GetStatusRequest {}).await.ok()
            });
            if up.is_some() {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node did not start: {}",
                log_of(chain)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.0.wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn log_of(chain: &Chain) -> String {
    std::fs::read_to_string(chain.dir.join("node.log")).unwrap_or_default()
}

/// The plain REST listener (`[rest] listen`) of the node configuration file `config`, which
/// `gmchain node dev-chain` writes for every node.
pub fn rest_listen_of(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    let rest = text
        .split("[rest]")
        .nth(1)
        .unwrap_or_else(|| panic!("{}: no [rest] section", config.display()));
    rest.lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{}: no [rest] listen", config.display()))
}

/// The node's metrics page.
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The dev-chain passphrase of every key file `dev-chain` writes.
pub const PASS: &[u8] = b"dev-chain-passphrase";

/// The key and certificate of the dev-chain identity `name` (`admin`, `ca`, `clients/3`).
pub fn identity(dir: &Path, name: &str) -> (crypto_sm::SoftSigner, pki::Certificate) {
    let pem = std::fs::read(dir.join(format!("{name}.key.pem"))).unwrap();
    let key = crypto_sm::keys::decode_private_key(&pem, Some(PASS)).unwrap();
    let signer =
        crypto_sm::SoftwareProvider::new(Arc::new(crypto_sm::rng::SystemRandom)).signer(key);
    let cert =
        pki::Certificate::from_pem(&std::fs::read(dir.join(format!("{name}.crt.pem"))).unwrap())
            .unwrap();
    (signer, cert)
}

/// The system clock in Unix seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes `name.key.pem` (encrypted with [`PASS`]) and `name.crt.pem` in `dir`.
pub fn write_key(dir: &Path, name: &str, key: &crypto_sm::SoftSigner, cert: &pki::Certificate) {
    let pem = crypto_sm::keys::encode_encrypted_pkcs8_pem(
        key.private_key(),
        PASS,
        crypto_sm::keys::MIN_ITERATIONS,
        &crypto_sm::rng::SystemRandom,
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.key.pem")), pem).unwrap();
    std::fs::write(dir.join(format!("{name}.crt.pem")), cert.to_pem()).unwrap();
}

/// A free loopback port for a listener a test configures and a process binds later, chosen as
/// `gmchain node dev-chain` chooses its ports: below the kernel's ephemeral range (from 10000,
/// a random start), where no outgoing connection or port-0 bind can take it meanwhile.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let high: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let span = u64::from(high.saturating_sub(10000).max(1024));
    let start = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % span;
    (0..span)
        .map(|k| 10000 + ((start + k) % span) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}
