//! A throwaway development chain in a directory, for the load generator and the multi-process
//! tests: a root CA with its CRL, a validator key (encrypted PKCS#8, development mode) and
//! certificate, client keys (encrypted with the passphrase in `pass`) and certificates, a node configuration and an initialised store.
//! Software keys only: never use it for anything but tests and benchmarks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto::Signer;
use crypto_sm::keys;
use crypto_sm::rng::SystemRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::{Certificate, IssueRequest, Role, Serial, UnixTime, Validity};

use crate::Failure;
use crate::io::write_file;

/// The organisation every development identity belongs to.
pub(crate) const ORG: &str = "Dev Bureau";

/// The organisations the development root may sponsor (register later by transaction).
pub(crate) const SPONSORED: &[&str] = &["Second Bureau", "Third Bureau"];

/// What `prepare` made.
pub(crate) struct DevChain {
    /// The node configuration file.
    pub config: PathBuf,
    /// Client keys and their certificates (role user), in memory.
    pub clients: Vec<(SoftSigner, Certificate)>,
    /// The admin of [`ORG`] (also written to `admin.key.pem`, `admin.crt.pem`), in memory.
    pub admin: (SoftSigner, Certificate),
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("dev chain: {what}: {e}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Free loopback port (bound then released; good enough for tests).
pub(crate) fn free_port() -> Result<u16, Failure> {
    Ok(free_ports(1)?[0])
}

/// The lowest port the kernel hands out to sockets bound to port 0 and to outgoing
/// connections (`net.ipv4.ip_local_port_range`; 32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// The first port `free_ports` may hand out.
const LOWEST_PORT: u16 = 10000;

/// `n` distinct free loopback ports for a chain's listeners, chosen below the kernel's
/// ephemeral range from a random start, every one held until all are chosen.
///
/// A port taken from the ephemeral range (binding port 0) is only free until the node binds
/// it: any outgoing connection on the machine may get it as its local port meanwhile, and CI
/// once saw a node fail to listen on such a port. Below the range the kernel hands out no port
/// by itself, so only another chain chosen at the same moment could take it; a random start
/// makes that unlikely. Held ports are never handed out twice.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, Failure> {
    use std::hash::{BuildHasher, Hasher};
    let high = ephemeral_low().max(LOWEST_PORT + 1024);
    let span = u32::from(high - LOWEST_PORT);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let start = (h.finish() % u64::from(span)) as u32;
    let mut held = Vec::with_capacity(n);
    for k in 0..span {
        if held.len() == n {
            break;
        }
        let port = LOWEST_PORT + ((start + k) % span) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    if held.len() < n {
        return Err(fail(
            "port",
            format!(
                "only {} of {n} loopback ports below {high} are free",
                held.len()
            ),
        ));
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| fail("port", e))
        })
        .collect()
}

/// Makes a development chain in `dir` with `clients` user identities, writes the files (CA,
/// CRL, validator key/cert, each node's node-enc key/cert `node.enc.*` / `node{i}.enc.*` for
/// data-exchange custody, clients/<i>.key.pem and .crt.pem, node.toml, client profiles) and runs `node init`
/// in-process. `orgs` founding organisations: the first is [`ORG`], which holds every
/// identity; the others (`Agency 02`, …) are roots with their CRLs in `orgs/` (`orgs/{i}.crt.pem`,
/// `orgs/{i}.crl.pem`), one admin and one user each (`orgs/{i}.admin.key.pem`, encrypted like
/// every dev key, `orgs/{i}.admin.crt.pem`, `orgs/{i}.user.*`, the encryption halves
/// `orgs/{i}.admin.enc.*` and `orgs/{i}.user.enc.*`, and client profiles
/// `orgs/{i}.{admin,user}.profile.toml`), for benchmarks that need a consortium of that size and
/// tests whose governance policy needs other organisations' votes. Returns the identities.
pub(crate) fn prepare(
    dir: &Path,
    clients: usize,
    block_max_txs: u32,
    interval_ms: u64,
    orgs: usize,
) -> Result<DevChain, Failure> {
    prepare_consortium(dir, clients, block_max_txs, interval_ms, orgs, 1)
}

/// [`prepare`] with `validators` validator nodes (`node0`…; `validators` > 1: BFT over
/// loopback). Node 0 keeps the single-validator layout (`node.toml`, `data/`,
/// `node.key.pem`); node i > 0 has `node{i}.toml`, `data{i}/`, `node{i}.key.pem`. Every node
/// has a `[consensus]` section naming all the others, and one genesis (node 0's, copied).
pub(crate) fn prepare_consortium(
    dir: &Path,
    clients: usize,
    block_max_txs: u32,
    interval_ms: u64,
    orgs: usize,
    validators: usize,
) -> Result<DevChain, Failure> {
    prepare_network(
        dir,
        clients,
        block_max_txs,
        interval_ms,
        orgs,
        validators,
        0,
        false,
    )
}

/// [`prepare_consortium`] with `followers` more nodes (`node{validators}`…): node-sign
/// certificates that are not in the validator set, whose `[consensus]` dials the validators.
/// With `supervisor` (and `orgs` ≥ 2) the last organisation is the chain's supervisor: it has
/// an auditor with its dual pair (`orgs/{orgs}.auditor.*`, `orgs/{orgs}.auditor.enc.*`, a client
/// profile `orgs/{orgs}.auditor.profile.toml`), and genesis names it with the auditor's
/// encryption certificate as the supervision escrow.
#[allow(
    clippy::too_many_arguments,
    reason = "the dev chain's shape, one value each"
)]
pub(crate) fn prepare_network(
    dir: &Path,
    clients: usize,
    block_max_txs: u32,
    interval_ms: u64,
    orgs: usize,
    validators: usize,
    followers: usize,
    supervisor: bool,
) -> Result<DevChain, Failure> {
    prepare_network_with_window(
        dir,
        clients,
        block_max_txs,
        interval_ms,
        orgs,
        validators,
        followers,
        supervisor,
        DEV_EXPIRY_WINDOW,
    )
}

/// The development chain's expiry window (heights a transaction may name beyond the tip).
pub(crate) const DEV_EXPIRY_WINDOW: u64 = 1000;

/// [`prepare_network`] with the chain's `expiry_window` (`gmchain bench snapshot` makes a
/// chain longer than its window, so that a snapshot carries a window, not the whole chain).
#[allow(
    clippy::too_many_arguments,
    reason = "the dev chain's shape, one value each"
)]
pub(crate) fn prepare_network_with_window(
    dir: &Path,
    clients: usize,
    block_max_txs: u32,
    interval_ms: u64,
    orgs: usize,
    validators: usize,
    followers: usize,
    supervisor: bool,
    expiry_window: u64,
) -> Result<DevChain, Failure> {
    let validators = validators.max(1);
    if supervisor && orgs < 2 {
        return Err(Failure::BadInput(
            "--supervisor needs --orgs 2 or more: the last organisation supervises the others"
                .into(),
        ));
    }
    std::fs::create_dir_all(dir.join("clients")).map_err(|e| fail("mkdir", e))?;
    let provider = SoftwareProvider::new(Arc::new(SystemRandom));
    let t = now();
    let validity = Validity {
        not_before: UnixTime(t.saturating_sub(3600)),
        not_after: UnixTime(t + 10 * 365 * 86400),
    };
    let leaf_validity = Validity {
        not_before: UnixTime(t.saturating_sub(3600)),
        not_after: UnixTime(t + 365 * 86400),
    };
    let serial = || Serial::random(&SystemRandom).map_err(|e| fail("serial", e));
    // A self-signed root of organisation `org`, its key and its first CRL.
    let root = |cn: &str, org: &str| -> Result<(SoftSigner, Certificate, pki::Crl), Failure> {
        let key = provider.generate().map_err(|e| fail("key", e))?;
        let ca =
            pki::issue_root(cn, org, serial()?, validity, &key).map_err(|e| fail("root", e))?;
        let crl = pki::issue_crl(
            &ca,
            &key,
            1,
            UnixTime(t.saturating_sub(60)),
            UnixTime(t + 30 * 86400),
            &[],
        )
        .map_err(|e| fail("crl", e))?;
        Ok((key, ca, crl))
    };
    let (ca_key, ca, crl) = root("Dev Root CA", ORG)?;
    let issue = |role: Role, cn: &str, key: &SoftSigner| -> Result<Certificate, Failure> {
        pki::issue(
            &ca,
            &ca_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: ORG,
                public_key: &key.public_key(),
                serial: serial()?,
                validity: leaf_validity,
            },
        )
        .map_err(|e| fail(cn, e))
    };
    let mut nodes = Vec::with_capacity(validators);
    for i in 0..validators + followers {
        let key = provider.generate().map_err(|e| fail("key", e))?;
        let cert = issue(Role::NodeSign, &format!("node{i}"), &key)?;
        nodes.push((key, cert));
    }
    let (node_key, node_cert) = (&nodes[0].0, &nodes[0].1);
    let admin_key = provider.generate().map_err(|e| fail("key", e))?;
    let admin_cert = issue(Role::Admin, "admin", &admin_key)?;
    write_file(&dir.join("ca.crt.pem"), ca.to_pem().as_bytes(), false)?;
    write_file(&dir.join("ca.crl.pem"), crl.to_pem().as_bytes(), false)?;
    write_file(
        &dir.join("node.crt.pem"),
        node_cert.to_pem().as_bytes(),
        false,
    )?;
    write_file(&dir.join("pass"), b"dev-chain-passphrase\n", true)?;
    let enc = keys::encode_encrypted_pkcs8_pem(
        node_key.private_key(),
        b"dev-chain-passphrase",
        keys::MIN_ITERATIONS,
        &SystemRandom,
    )
    .map_err(|e| fail("key file", e))?;
    write_file(&dir.join("node.key.pem"), enc.as_bytes(), true)?;
    let write_identity =
        |name: &str, key: &SoftSigner, cert: &Certificate| -> Result<(), Failure> {
            let pem = keys::encode_encrypted_pkcs8_pem(
                key.private_key(),
                b"dev-chain-passphrase",
                keys::MIN_ITERATIONS,
                &SystemRandom,
            )
            .map_err(|e| fail("key file", e))?;
            write_file(&dir.join(format!("{name}.key.pem")), pem.as_bytes(), true)?;
            write_file(
                &dir.join(format!("{name}.crt.pem")),
                cert.to_pem().as_bytes(),
                false,
            )
        };
    write_identity("admin", &admin_key, &admin_cert)?;
    for (i, (key, cert)) in nodes.iter().enumerate().skip(1) {
        write_identity(&format!("node{i}"), key, cert)?;
    }
    // Each node's encryption certificate, for data exchange custody (`[exchange]`): custodian
    // envelopes are wrapped to it.
    for i in 0..nodes.len() {
        let key = provider.generate().map_err(|e| fail("key", e))?;
        let cert = issue(Role::NodeEnc, &format!("node{i}"), &key)?;
        let name = if i == 0 {
            "node.enc".to_string()
        } else {
            format!("node{i}.enc")
        };
        write_identity(&name, &key, &cert)?;
    }
    write_identity("ca", &ca_key, &ca)?;
    // The encryption halves of the people's dual pairs (data exchange: keys are wrapped to
    // them). A real CA generates them and hands them over enveloped (`ca issue --dual`).
    let enc_key = provider.generate().map_err(|e| fail("key", e))?;
    write_identity(
        "admin.enc",
        &enc_key,
        &issue(Role::AdminEnc, "admin", &enc_key)?,
    )?;
    let mut out = Vec::with_capacity(clients);
    for i in 0..clients {
        let key = provider.generate().map_err(|e| fail("key", e))?;
        let cert = issue(Role::User, &format!("client{i}"), &key)?;
        write_identity(&format!("clients/{i}"), &key, &cert)?;
        let enc_key = provider.generate().map_err(|e| fail("key", e))?;
        let enc = issue(Role::UserEnc, &format!("client{i}"), &enc_key)?;
        write_identity(&format!("clients/{i}.enc"), &enc_key, &enc)?;
        out.push((key, cert));
    }
    let mut extra_orgs = String::new();
    let mut supervision = String::new();
    if orgs > 1 {
        std::fs::create_dir_all(dir.join("orgs")).map_err(|e| fail("mkdir", e))?;
    }
    for i in 2..=orgs {
        let name = format!("Agency {i:02}");
        let (org_key, org_root, crl) = root(&format!("{name} Root CA"), &name)?;
        // The organisation's admin, for tests whose governance policy needs its vote; the
        // root's key is not kept.
        let org_admin_key = provider.generate().map_err(|e| fail("key", e))?;
        let org_admin = pki::issue(
            &org_root,
            &org_key,
            &IssueRequest {
                role: Role::Admin,
                common_name: "admin",
                organisation: &name,
                public_key: &org_admin_key.public_key(),
                serial: serial()?,
                validity: leaf_validity,
            },
        )
        .map_err(|e| fail(&format!("{name} admin"), e))?;
        write_identity(&format!("orgs/{i}.admin"), &org_admin_key, &org_admin)?;
        // A user of the organisation with its dual pair (data exchange between agencies).
        let org_leaf = |role: Role, cn: &str, key: &SoftSigner| -> Result<Certificate, Failure> {
            pki::issue(
                &org_root,
                &org_key,
                &IssueRequest {
                    role,
                    common_name: cn,
                    organisation: &name,
                    public_key: &key.public_key(),
                    serial: serial()?,
                    validity: leaf_validity,
                },
            )
            .map_err(|e| fail(&format!("{name} {cn}"), e))
        };
        let mut people = vec![
            ("admin.enc", None, Role::AdminEnc, "admin"),
            ("user", Some(Role::User), Role::UserEnc, "user"),
        ];
        if supervisor && i == orgs {
            people.push(("auditor", Some(Role::Auditor), Role::AuditorEnc, "auditor"));
            supervision = format!(
                "\n[chain.supervision]\nsupervisor = \"{name}\"\nfreeze_policy = \"supervisor\"\nescrow = [\"orgs/{i}.auditor.enc.crt.pem\"]\n"
            );
        }
        for (label, role, enc_role, cn) in people {
            if let Some(role) = role {
                let key = provider.generate().map_err(|e| fail("key", e))?;
                write_identity(
                    &format!("orgs/{i}.{label}"),
                    &key,
                    &org_leaf(role, cn, &key)?,
                )?;
            }
            let key = provider.generate().map_err(|e| fail("key", e))?;
            let enc_label = if role.is_some() {
                format!("orgs/{i}.{label}.enc")
            } else {
                format!("orgs/{i}.{label}")
            };
            write_identity(&enc_label, &key, &org_leaf(enc_role, cn, &key)?)?;
        }
        write_file(
            &dir.join(format!("orgs/{i}.crt.pem")),
            org_root.to_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join(format!("orgs/{i}.crl.pem")),
            crl.to_pem().as_bytes(),
            false,
        )?;
        extra_orgs.push_str(&format!(
            "\n[[organisations]]\nname = \"{name}\"\nca_cert = \"orgs/{i}.crt.pem\"\ncrl = \"orgs/{i}.crl.pem\"\n"
        ));
    }
    let sponsored = SPONSORED
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let n = nodes.len();
    let free = free_ports(4 * n)?;
    let ports: Vec<(u16, u16, u16, u16)> = free
        .chunks_exact(4)
        .map(|c| (c[0], c[1], c[2], c[3]))
        .collect();
    let validators_toml: String = (0..validators)
        .map(|i| {
            let cert = if i == 0 {
                "node.crt.pem".to_string()
            } else {
                format!("node{i}.crt.pem")
            };
            format!("\n[[validators]]\nname = \"node{i}\"\ncert = \"{cert}\"\n")
        })
        .collect();
    let node_config = |i: usize| -> String {
        let (grpc, metrics, p2p, rest) = ports[i];
        let (key, data) = if i == 0 {
            ("node".to_string(), "data".to_string())
        } else {
            (format!("node{i}"), format!("data{i}"))
        };
        let consensus = if n > 1 {
            // Validators dial the other validators; followers dial the validators.
            let mut c = format!(
                "\n[consensus]\nlisten = \"127.0.0.1:{p2p}\"\ntimeout_propose_ms = 1500\ntimeout_prevote_ms = 500\ntimeout_precommit_ms = 500\n"
            );
            for (j, (_, _, peer, _)) in ports.iter().enumerate().take(validators) {
                if j != i {
                    c.push_str(&format!(
                        "\n[[consensus.peers]]\naddress = \"127.0.0.1:{peer}\"\nname = \"node{j}\"\norganisation = \"{ORG}\"\n"
                    ));
                }
            }
            c
        } else {
            String::new()
        };
        format!(
            r#"mode = "development"
data_dir = "{data}"

[key]
key = "{key}.key.pem"
pass_file = "pass"
certificate = "{key}.crt.pem"

[exchange.key]
key = "{key}.enc.key.pem"
pass_file = "pass"
certificate = "{key}.enc.crt.pem"

[api]
listen = "127.0.0.1:{grpc}"
metrics_listen = "127.0.0.1:{metrics}"

[rest]
listen = "127.0.0.1:{rest}"

[block]
interval_ms = {interval_ms}
max_txs = {block_max_txs}

[log]
level = "warn"
{consensus}
[chain]
chain_id = "dev-chain"
test_chain = true
expiry_window = {expiry_window}
max_txs_per_block = {block_max_txs}
{supervision}
[[organisations]]
name = "{ORG}"
ca_cert = "ca.crt.pem"
crl = "ca.crl.pem"
sponsors = [{sponsored}]

{extra_orgs}{validators_toml}"#
        )
    };
    let config = node_config(0);
    let grpc = ports[0].0;
    let config_path = dir.join("node.toml");
    write_file(&config_path, config.as_bytes(), false)?;
    // Client profiles (gmchain --client-profile, GMCHAIN_CLIENT_PROFILE): `client.toml` for the
    // admin, `clients/<i>.profile.toml` for each user; each trusts the root and its CRL.
    let profile = |key: &str, up: &str| {
        format!(
            "node = \"127.0.0.1:{grpc}\"\nnode_name = \"node0\"\nnode_organisation = \"{ORG}\"\ntls_key = \"{key}.key.pem\"\npass_file = \"{up}pass\"\ntls_cert = \"{key}.crt.pem\"\nca = [\"{up}ca.crt.pem\"]\ncrls = [\"{up}ca.crl.pem\"]\n"
        )
    };
    write_file(
        &dir.join("client.toml"),
        profile("admin", "").as_bytes(),
        false,
    )?;
    for i in 0..clients {
        write_file(
            &dir.join(format!("clients/{i}.profile.toml")),
            profile(&i.to_string(), "../").as_bytes(),
            false,
        )?;
    }
    for i in 2..=orgs {
        let auditor = supervisor && i == orgs;
        for who in ["admin", "user", "auditor"]
            .into_iter()
            .filter(|w| *w != "auditor" || auditor)
        {
            write_file(
                &dir.join(format!("orgs/{i}.{who}.profile.toml")),
                profile(&format!("{i}.{who}"), "../").as_bytes(),
                false,
            )?;
        }
    }
    crate::cli_node::run(crate::cli_node::NodeCommand::Init {
        config: config_path.clone(),
        genesis: None,
        snapshot: None,
        expect_hash: None,
    })?;
    // The other validators: their configurations, and the same genesis.
    for i in 1..n {
        let path = dir.join(format!("node{i}.toml"));
        write_file(&path, node_config(i).as_bytes(), false)?;
        crate::cli_node::run(crate::cli_node::NodeCommand::Init {
            config: path,
            genesis: Some(dir.join("data/genesis.json")),
            snapshot: None,
            expect_hash: None,
        })?;
    }
    Ok(DevChain {
        config: config_path,
        clients: out,
        admin: (admin_key, admin_cert),
    })
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn free_ports_are_distinct() {
        let ports = super::free_ports(64).unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    }

    /// Outgoing connections and port-0 binds take ports of the ephemeral range; a chain's
    /// ports are chosen below it, so neither can take one before its node binds it.
    #[test]
    fn free_ports_are_below_the_ephemeral_range() {
        let low = super::ephemeral_low();
        for p in super::free_ports(16).unwrap() {
            assert!(
                (super::LOWEST_PORT..low).contains(&p),
                "{p} (range starts at {low})"
            );
        }
    }
}
