//! How every command reaches a node: over mutual GM TLS 1.3 (RFC 8998, `gmtls`) with the
//! user's key (a PEM file or a `pkcs11:` key in a token), certificate and trusted CA, or over
//! plain HTTP to a node's public read-only listener when the address says `http://`.
//!
//! A client profile (`--client-profile FILE` or `GMCHAIN_CLIENT_PROFILE`) holds the node's
//! address and the TLS identity; flags override it. Paths in a profile are relative to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::v1::chain_client::ChainClient;
use gmchain_sdk::{SdkError, TlsClient};
use gmtls::net::ConnectError;
use pki::Certificate;
use serde::Deserialize;
use tonic::transport::Channel;

use crate::Failure;
use crate::io::{PassArgs, read_named};

/// The node's default API address.
pub(crate) const DEFAULT_NODE: &str = "127.0.0.1:7050";

/// The TLS identity and trust of a client, from flags or a profile.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TlsArgs {
    /// A client profile (TOML: node, tls_key, hsm_profile, pass_file or pass_env, tls_cert, ca,
    /// crls); flags override its fields.
    #[arg(long, value_name = "FILE", env = "GMCHAIN_CLIENT_PROFILE")]
    pub client_profile: Option<PathBuf>,
    /// The TLS client key: a PEM key file or a `pkcs11:` URI.
    #[arg(long, value_name = "KEY")]
    pub tls_key: Option<String>,
    /// The module profile of a `pkcs11:` TLS key.
    #[arg(long, value_name = "FILE")]
    pub tls_hsm_profile: Option<PathBuf>,
    /// File holding the TLS key's PIN or passphrase.
    #[arg(long, value_name = "FILE")]
    pub tls_pass_file: Option<PathBuf>,
    /// Environment variable holding the TLS key's PIN or passphrase.
    #[arg(long, value_name = "VAR")]
    pub tls_pass_env: Option<String>,
    /// The TLS client certificate (PEM; may be followed by its CA certificates).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// A CA certificate to trust for the node's certificate (the consortium root or the
    /// node's agency CA); repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// A CRL of a CA on the node's certificate path (for the TLS check); repeatable. Revocation fails closed:
    /// every CA between the trusted one and the node needs a current CRL.
    #[arg(long, value_name = "FILE")]
    pub tls_crl: Vec<PathBuf>,
    /// The node's name (its certificate's common name): any other node of the consortium at
    /// the address is refused. Without it, any node the consortium certifies is accepted.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The node's organisation: only a node certificate of this member is accepted (a CN is
    /// unique only within an organisation; give it with --node-name).
    #[arg(long, value_name = "ORG")]
    pub node_organisation: Option<String>,
}

/// The node to talk to, and how.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NodeArgs {
    /// The node: HOST:PORT (or https://HOST:PORT) for its mutual GM TLS API; http://HOST:PORT
    /// for a public read-only listener (no client certificate, reads only). Default: the
    /// profile's, else 127.0.0.1:7050.
    #[arg(long, value_name = "ADDR")]
    pub node: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl NodeArgs {
    /// The node at `addr` with no TLS settings but the environment's profile.
    pub(crate) fn at(addr: &str, tls: TlsArgs) -> NodeArgs {
        NodeArgs {
            node: Some(addr.to_string()),
            tls,
        }
    }
}

/// A client profile file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    node: Option<String>,
    node_name: Option<String>,
    node_organisation: Option<String>,
    tls_key: Option<String>,
    hsm_profile: Option<PathBuf>,
    pass_file: Option<PathBuf>,
    pass_env: Option<String>,
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    ca: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
}

fn read_profile(path: &Path) -> Result<Profile, Failure> {
    let text = String::from_utf8(read_named("--client-profile", path)?).map_err(|_| {
        Failure::BadInput(format!(
            "--client-profile {}: not UTF-8 text",
            path.display()
        ))
    })?;
    let mut p: Profile = toml::from_str(&text).map_err(|e| {
        Failure::BadInput(format!(
            "--client-profile {}: {}",
            path.display(),
            e.message()
        ))
    })?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    p.hsm_profile = p.hsm_profile.map(rel);
    p.pass_file = p.pass_file.map(rel);
    p.tls_cert = p.tls_cert.map(rel);
    p.ca = p.ca.into_iter().map(rel).collect();
    p.crls = p.crls.into_iter().map(rel).collect();
    p.tls_key = match p.tls_key {
        // A relative pin-source of a pkcs11: URI is relative to the profile, as every other
        // path in it (review finding 7 on issue 12).
        Some(k) if k.starts_with("pkcs11:") => {
            let mut uri = hsm::KeyUri::parse(&k).map_err(|e| {
                Failure::BadInput(format!("--client-profile {}: tls_key: {e}", path.display()))
            })?;
            match uri.pin_source.take() {
                Some(pin) if pin.is_relative() => {
                    uri.pin_source = Some(base.join(pin));
                    Some(uri.to_string())
                }
                _ => Some(k),
            }
        }
        Some(k) if Path::new(&k).is_absolute() => Some(k),
        Some(k) => Some(base.join(k).display().to_string()),
        None => None,
    };
    Ok(p)
}

/// Where a command connects.
enum Target {
    /// Mutual GM TLS.
    Tls { addr: SocketAddr, client: TlsClient },
    /// A public read-only listener, plain HTTP/2.
    Plain { url: String },
}

/// Reads every PEM certificate in `path` (a leaf may be followed by its CAs), or one DER.
pub(crate) fn read_certs(flag: &str, path: &Path) -> Result<Vec<Certificate>, Failure> {
    let bytes = read_named(flag, path)?;
    gmchain_sdk::parse_certificates(&bytes)
        .map_err(|e| Failure::BadInput(format!("{flag} {}: {e}", path.display())))
}

/// The address the flags and profile name, and whether it is the plain public listener.
fn address(node: &NodeArgs, profile: &Profile) -> Result<(String, bool), Failure> {
    let raw = node
        .node
        .clone()
        .or_else(|| profile.node.clone())
        .unwrap_or_else(|| DEFAULT_NODE.to_string());
    if let Some(rest) = raw.strip_prefix("http://") {
        return Ok((rest.trim_end_matches('/').to_string(), true));
    }
    let rest = raw.strip_prefix("https://").unwrap_or(&raw);
    Ok((rest.trim_end_matches('/').to_string(), false))
}

fn resolve_addr(addr: &str) -> Result<SocketAddr, Failure> {
    gmchain_sdk::resolve(addr).map_err(|e| Failure::BadInput(format!("--node {e}")))
}

fn tls_client(tls: &TlsArgs, profile: &Profile) -> Result<TlsClient, Failure> {
    let (creds, authority) = tls_identity(tls, profile)?;
    let name = tls.node_name.clone().or_else(|| profile.node_name.clone());
    TlsClient::new(&creds, authority, name).map_err(|e| Failure::coded(&e, e.to_string()))
}

/// The TLS identity (credentials) and the trust for the node's certificate that the flags and
/// profile give.
fn tls_identity(
    tls: &TlsArgs,
    profile: &Profile,
) -> Result<(gmtls::Credentials, Arc<dyn gmtls::Authority>), Failure> {
    let missing = |what: &str, flag: &str| {
        Failure::BadInput(format!(
            "the node's API is mutual GM TLS: give {what} ({flag}, or a --client-profile / GMCHAIN_CLIENT_PROFILE); an http:// address reaches a public read-only listener instead"
        ))
    };
    let key = tls
        .tls_key
        .clone()
        .or_else(|| profile.tls_key.clone())
        .ok_or_else(|| missing("your TLS key", "--tls-key"))?;
    let cert_path = tls
        .tls_cert
        .clone()
        .or_else(|| profile.tls_cert.clone())
        .ok_or_else(|| missing("your TLS certificate", "--tls-cert"))?;
    let ca_paths = if tls.ca.is_empty() {
        profile.ca.clone()
    } else {
        tls.ca.clone()
    };
    if ca_paths.is_empty() {
        return Err(missing(
            "the CA to trust for the node's certificate",
            "--ca",
        ));
    }
    let crl_paths = if tls.tls_crl.is_empty() {
        profile.crls.clone()
    } else {
        tls.tls_crl.clone()
    };
    // Flags for the key's secret override the profile's as a pair.
    let pass = if tls.tls_pass_file.is_some() || tls.tls_pass_env.is_some() {
        PassArgs {
            pass_file: tls.tls_pass_file.clone(),
            pass_env: tls.tls_pass_env.clone(),
        }
    } else {
        PassArgs {
            pass_file: profile.pass_file.clone(),
            pass_env: profile.pass_env.clone(),
        }
    };
    let hsm_profile = tls
        .tls_hsm_profile
        .clone()
        .or_else(|| profile.hsm_profile.clone());
    let signer: Arc<dyn crypto::Signer> = Arc::from(crate::cli_crypto::load_signer(
        &key,
        hsm_profile,
        pass,
        false,
    )?);
    let chain = read_certs("--tls-cert", &cert_path)?;
    let creds = gmtls::Credentials::new(chain, signer)
        .map_err(|e| Failure::coded(&e, format!("--tls-key/--tls-cert: {e}")))?;
    let mut anchors = Vec::new();
    for p in &ca_paths {
        anchors.extend(read_certs("--ca", p)?);
    }
    let crls = crl_paths
        .iter()
        .map(|p| crate::io::read_crl("--tls-crl", p))
        .collect::<Result<Vec<_>, _>>()?;
    let organisation = tls
        .node_organisation
        .clone()
        .or_else(|| profile.node_organisation.clone());
    let authority = gmchain_sdk::node_authority(anchors, crls, organisation)
        .map_err(|e| Failure::coded(&e, e.to_string()))?;
    Ok((creds, authority))
}

/// The node's TLS address with the TLS identity and trust the flags and profile give, or
/// `None` for a plain `http://` address (a public read-only listener).
pub(crate) fn tls_parts(node: &NodeArgs) -> Result<Option<crate::tls_probe::TlsTarget>, Failure> {
    let profile = match &node.tls.client_profile {
        Some(p) => read_profile(p)?,
        None => Profile::default(),
    };
    let (addr, plain) = address(node, &profile)?;
    if plain {
        return Ok(None);
    }
    let (creds, authority) = tls_identity(&node.tls, &profile)?;
    Ok(Some(crate::tls_probe::TlsTarget {
        addr: resolve_addr(&addr)?,
        creds,
        authority,
    }))
}

fn target(node: &NodeArgs) -> Result<Target, Failure> {
    let profile = match &node.tls.client_profile {
        Some(p) => read_profile(p)?,
        None => Profile::default(),
    };
    let (addr, plain) = address(node, &profile)?;
    if plain {
        return Ok(Target::Plain {
            url: format!("http://{addr}"),
        });
    }
    let client = tls_client(&node.tls, &profile)?;
    Ok(Target::Tls {
        addr: resolve_addr(&addr)?,
        client,
    })
}

/// A failed TLS connection as a CLI failure: an unreachable node is 3, a refused certificate
/// (ours or the node's) 1, no common algorithm 2; the message says what the alert means.
pub(crate) fn connect_failure(e: &ConnectError) -> Failure {
    let hint = match e {
        ConnectError::Unreachable { .. } => "; is `gmchain node start` running?",
        ConnectError::Refused { .. } => "; the node's log has the detail",
        ConnectError::PeerNotVerified { .. } => {
            "; check --ca and --tls-crl, and that the address is a node of your consortium"
        }
        ConnectError::NotANodeName { .. } => " (--node-name, or node_name in the client profile)",
        ConnectError::Handshake { .. } => "",
    };
    Failure::coded(e, format!("{e}{hint}"))
}

/// Connects a gRPC client to the node `node` names.
pub(crate) async fn connect(node: &NodeArgs) -> Result<ChainClient<Channel>, Failure> {
    Ok(connect_with_info(node).await?.0)
}

/// What the connection is: the protocol, the RFC 8998 suite and the node's certificate, or the
/// plain public listener.
pub(crate) fn describe(conn: &gmchain_sdk::Connection) -> serde_json::Value {
    let node = conn.node_certificate.as_ref();
    serde_json::json!({
        "transport": "mutual GM TLS (RFC 8998)",
        "protocol": conn.protocol,
        "cipher_suite": conn.cipher_suite,
        "key_exchange": conn.key_exchange,
        "node_certificate": node.map(|c| c.subject()),
        "node_certificate_serial": node.map(|c| c.serial().to_string()),
    })
}

/// Connects and also returns what the connection is (see [`describe`]).
pub(crate) async fn connect_with_info(
    node: &NodeArgs,
) -> Result<(ChainClient<Channel>, serde_json::Value), Failure> {
    let (channel, info) = channel_with_info(node).await?;
    Ok((
        ChainClient::new(channel).max_decoding_message_size(gmchain_sdk::MAX_MESSAGE),
        info,
    ))
}

/// The TLS certificate the flags or the client profile name (`None` for neither), for
/// commands that act for the organisation of the certificate they connect with.
pub(crate) fn tls_cert_path(node: &NodeArgs) -> Result<Option<PathBuf>, Failure> {
    if let Some(p) = &node.tls.tls_cert {
        return Ok(Some(p.clone()));
    }
    Ok(match &node.tls.client_profile {
        Some(p) => read_profile(p)?.tls_cert,
        None => None,
    })
}

/// Connects a gRPC channel (for any of the node's services) to the node `node` names, and
/// returns what the connection is (see [`describe`]).
pub(crate) async fn channel_with_info(
    node: &NodeArgs,
) -> Result<(Channel, serde_json::Value), Failure> {
    let mut info = serde_json::json!({
        "transport": "plain HTTP/2 (public read-only listener, outside GB/T 39786 §8.2)"
    });
    let channel = match target(node)? {
        Target::Plain { url } => gmchain_sdk::public_channel(&url)
            .await
            .map_err(|e| match e {
                SdkError::Unreachable { .. } => Failure::coded(
                    &e,
                    format!("{e}; is its public listener (api.public_listen) enabled?"),
                ),
                e => Failure::BadInput(format!("--node {e}")),
            })?,
        Target::Tls { addr, client } => {
            let (channel, connection) = client.channel(addr).await.map_err(|e| match e {
                SdkError::Connect(e) => connect_failure(&e),
                SdkError::BadAddress { .. } => Failure::BadInput(format!("--node {e}")),
                e => Failure::coded(&e, e.to_string()),
            })?;
            info = describe(&connection);
            channel
        }
    };
    Ok((channel, info))
}

/// `gmchain tunnel`: local plain HTTP to a node's mutual GM TLS API.
#[derive(Debug, clap::Args)]
pub(crate) struct TunnelArgs {
    /// Where to accept plain connections (loopback: whoever reaches this port acts with your
    /// certificate).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Accept connections on a non-loopback --listen address (every host that reaches it then
    /// uses your identity).
    #[arg(long)]
    allow_non_loopback: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Forwards each local connection over its own mutual GM TLS connection to the node, bytes as
/// they are (gRPC, and the REST gateway later), until SIGINT or SIGTERM. The first connection
/// is made before listening, so a refused certificate or an unreachable node fails at once.
pub(crate) fn tunnel(args: TunnelArgs) -> Result<(), Failure> {
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        return Err(Failure::BadInput(format!(
            "--listen {}: not a loopback address; the tunnel lends your certificate to whoever connects (add --allow-non-loopback if you mean it)",
            args.listen
        )));
    }
    let (addr, client) = match target(&args.node)? {
        Target::Tls { addr, client } => (addr, client),
        Target::Plain { url } => {
            return Err(Failure::BadInput(format!(
                "--node {url}: a tunnel goes to the mutual-TLS API (HOST:PORT), not a plain listener"
            )));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let probe = client
            .open(addr, true)
            .await
            .map_err(|e| connect_failure(&e))?;
        let server = probe
            .get_ref()
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|d| Certificate::from_der(d.as_ref()).ok())
            .map(|c| c.subject())
            .unwrap_or_default();
        drop(probe);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Failure::BadInput(format!("--listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::BadInput(format!("--listen: {e}")))?;
        eprintln!("tunnel: http://{local} -> {addr} over mutual GM TLS (node {server})");
        let stop = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    },
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        tokio::pin!(stop);
        loop {
            let (mut local_conn, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("tunnel: accept failed: {e}");
                        continue;
                    }
                },
                () = &mut stop => return Ok(()),
            };
            let client = client.clone();
            tokio::spawn(async move {
                let _ = local_conn.set_nodelay(true);
                // HTTP/2 (gRPC, h2c tools) or HTTP/1.1 (curl, browsers: REST and the console):
                // the node serves each by the ALPN protocol the connection names, so look at
                // what the local client sends first.
                let mut first = [0u8; 4];
                let h2 = matches!(local_conn.peek(&mut first).await, Ok(n) if first[..n].starts_with(b"PRI"));
                let client = if h2 { client.with_alpn(b"h2") } else { client.with_alpn(b"http/1.1") };
                match client.open(addr, false).await {
                    Ok(mut remote) => {
                        if let Err(e) =
                            tokio::io::copy_bidirectional(&mut local_conn, &mut remote).await
                        {
                            eprintln!("tunnel: {peer}: {e}");
                        }
                    }
                    Err(e) => eprintln!("tunnel: {peer}: {}", connect_failure(&e).message()),
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review finding 7 on issue 12: a relative `pin-source` in a profile's `pkcs11:` key was
    /// resolved against the working directory; every path of a profile is relative to it.
    #[test]
    fn a_profile_resolves_its_paths_and_pin_source_against_its_own_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alice.toml");
        std::fs::write(
            &file,
            "tls_key = \"pkcs11:token=t;object=alice?pin-source=user.pin\"\ntls_cert = \"alice.pem\"\nca = [\"root.pem\"]\n",
        )
        .unwrap();
        let p = read_profile(&file).unwrap();
        let uri = hsm::KeyUri::parse(p.tls_key.as_deref().unwrap()).unwrap();
        assert_eq!(uri.pin_source, Some(dir.path().join("user.pin")));
        assert_eq!(p.tls_cert, Some(dir.path().join("alice.pem")));
        assert_eq!(p.ca, vec![dir.path().join("root.pem")]);
        // An absolute pin-source is kept.
        std::fs::write(
            &file,
            "tls_key = \"pkcs11:token=t;object=alice?pin-source=/run/pin\"\n",
        )
        .unwrap();
        let p = read_profile(&file).unwrap();
        let uri = hsm::KeyUri::parse(p.tls_key.as_deref().unwrap()).unwrap();
        assert_eq!(uri.pin_source, Some(PathBuf::from("/run/pin")));
        // An unknown field is refused, naming it.
        std::fs::write(&file, "tls_kee = \"x\"\n").unwrap();
        let Err(Failure::BadInput(why)) = read_profile(&file) else {
            panic!("an unknown field must be refused");
        };
        assert!(why.contains("tls_kee"), "{why}");
    }
}
