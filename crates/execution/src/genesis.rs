//! The genesis file (JSON, docs/execution.md §2), its hash, and block 0.

use crate::error::{ExecError, GenesisError};
use crate::identity::{check_org_name, crl_from};
use crate::keys::{self, CHAIN, IDENTITY, full};
use crate::params::ChainParams;
use crate::records::{self, OrgRecord, ValidatorRecord};
use crate::trace::{FreezePolicy, SupervisorRecord};
use crypto::Digest;
use crypto_sm::sm3::sm3_parts;
use pki::{
    Certificate, Consortium, ConsortiumAnchor, Crl, Role, Sponsorship, TrustAnchor, UnixTime,
};
use serde_json::{Map, Value, json};
use state::{EMPTY_ROOT, NodeStore, UpdateBatch};
use types::codec::Writer;
use types::{Block, BlockHash, BlockHeader, ChainId, Height, Limits, Receipt, Timestamp};

/// Domain tag hashed before the canonical genesis encoding.
pub const GENESIS_DOMAIN: &[u8] = b"GMCHAIN-GENESIS-V1\0";

/// The genesis format this build writes: 2 adds `test_chain` and each founding organisation's
/// `sponsors` (docs/execution.md §2); 3 adds the fuel parameters `max_fuel_per_tx` and
/// `max_fuel_per_block` (issue 14), which a format 2 chain has at their defaults. Format 1 files
/// (no `format` field) are still read, for verifying receipts of chains made before it; a node
/// refuses them.
pub const GENESIS_FORMAT: u8 = 3;

/// An organisation registered at genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisOrg {
    /// Its name; equal to the CA certificate's O.
    pub name: String,
    /// Its CA certificate: a trust anchor of the consortium (self-signed or not).
    pub ca_cert: Certificate,
    /// The CA's current CRL.
    pub crl: Crl,
    /// Organisations this CA may certify a CA for, to be registered later by transaction
    /// (format 2). Empty: it certifies only its own organisation. Only a self-signed CA can
    /// sponsor others.
    pub sponsors: Vec<String>,
}

/// A validator at genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisValidator {
    /// Its name.
    pub name: String,
    /// Its node-signing certificate, issued under one of the organisations' CAs.
    pub cert: Certificate,
}

/// The chain's supervision at genesis (format 3, optional; issue 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisSupervision {
    /// The supervising organisation: a founding organisation whose auditors read everything
    /// through the supervision API and freeze under [`FreezePolicy::Supervisor`].
    pub supervisor: String,
    /// How freezes are made.
    pub freeze_policy: FreezePolicy,
    /// The supervision escrow: encryption certificates (`auditor-enc`) of the supervising
    /// organisation every data key of the exchange is also wrapped to. Empty: no escrow.
    pub escrow: Vec<Certificate>,
}

/// A parsed, checked genesis file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// The format: [`GENESIS_FORMAT`] for a new chain, 1 for a file read from an older one.
    pub format: u8,
    /// The chain.
    pub chain_id: ChainId,
    /// Whether this is a test chain: only then do conformance checks that write more than a
    /// few small transactions, or change identities, run against it (`--allow-writes`).
    pub test_chain: bool,
    /// The timestamp of block 0 (ms); also the time certificates are checked at.
    pub timestamp_ms: u64,
    /// The chain parameters.
    pub params: ChainParams,
    /// The founding organisations.
    pub organisations: Vec<GenesisOrg>,
    /// The validators.
    pub validators: Vec<GenesisValidator>,
    /// The governance policies set at genesis (kind → threshold), in kind order; a kind not
    /// listed has its default (`POLICY_KINDS`). Only a proposal of all organisations changes
    /// them later. Format 2, optional: an empty list is not written, so files without it keep
    /// their hash.
    pub governance: Vec<(String, crate::governance::Policy)>,
    /// The supervisor, its freeze policy and the supervision escrow (format 3, optional: a
    /// genesis without it keeps its hash).
    pub supervision: Option<GenesisSupervision>,
}

/// Block 0 with its (empty) receipts and the state it creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisBlock {
    /// The block.
    pub block: Block,
    /// No receipts: block 0 holds no transactions.
    pub receipts: Vec<Receipt>,
    /// The genesis state: its root is the header's state root.
    pub update: UpdateBatch,
}

// ---------------------------------------------------------------------------------------------
// Strict JSON reading: every error names its field.

fn object<'v>(
    v: &'v Value,
    field: &str,
    allowed: &[&str],
) -> Result<&'v Map<String, Value>, GenesisError> {
    let m = v
        .as_object()
        .ok_or_else(|| GenesisError::field(field, "not a JSON object"))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        let path = if field.is_empty() {
            k.clone()
        } else {
            format!("{field}.{k}")
        };
        return Err(GenesisError::field(
            path,
            format!("unknown field (expected one of: {})", allowed.join(", ")),
        ));
    }
    Ok(m)
}

fn path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

fn required<'v>(
    m: &'v Map<String, Value>,
    parent: &str,
    name: &str,
) -> Result<&'v Value, GenesisError> {
    m.get(name)
        .ok_or_else(|| GenesisError::field(path(parent, name), "missing"))
}

fn string<'v>(
    m: &'v Map<String, Value>,
    parent: &str,
    name: &str,
) -> Result<&'v str, GenesisError> {
    required(m, parent, name)?
        .as_str()
        .ok_or_else(|| GenesisError::field(path(parent, name), "not a string"))
}

fn unsigned(v: &Value, field: &str) -> Result<u64, GenesisError> {
    v.as_u64()
        .ok_or_else(|| GenesisError::field(field, "not an unsigned integer"))
}

fn array<'v>(m: &'v Map<String, Value>, name: &str) -> Result<&'v Vec<Value>, GenesisError> {
    required(m, "", name)?
        .as_array()
        .ok_or_else(|| GenesisError::field(name, "not an array"))
}

fn cert_pem(m: &Map<String, Value>, parent: &str, name: &str) -> Result<Certificate, GenesisError> {
    let s = string(m, parent, name)?;
    Certificate::from_pem(s.as_bytes()).map_err(|e| {
        GenesisError::field(path(parent, name), format!("not a PEM certificate ({e})"))
    })
}

fn params_from(v: Option<&Value>, format: u8) -> Result<ChainParams, GenesisError> {
    let mut p = ChainParams::default();
    let Some(v) = v else { return Ok(p) };
    let fields: &[&str] = if format >= 3 {
        &[
            "expiry_window",
            "max_txs_per_block",
            "max_tx_size",
            "max_fuel_per_tx",
            "max_fuel_per_block",
        ]
    } else {
        &["expiry_window", "max_txs_per_block", "max_tx_size"]
    };
    let m = object(v, "params", fields)?;
    if let Some(x) = m.get("max_fuel_per_tx") {
        p.max_fuel_per_tx = unsigned(x, "params.max_fuel_per_tx")?;
    }
    if let Some(x) = m.get("max_fuel_per_block") {
        p.max_fuel_per_block = unsigned(x, "params.max_fuel_per_block")?;
    }
    if let Some(x) = m.get("expiry_window") {
        p.expiry_window = unsigned(x, "params.expiry_window")?;
    }
    if let Some(x) = m.get("max_txs_per_block") {
        p.max_txs_per_block = u32::try_from(unsigned(x, "params.max_txs_per_block")?)
            .map_err(|_| GenesisError::field("params.max_txs_per_block", "above 2^32 - 1"))?;
    }
    if let Some(x) = m.get("max_tx_size") {
        p.max_tx_size = usize::try_from(unsigned(x, "params.max_tx_size")?)
            .map_err(|_| GenesisError::field("params.max_tx_size", "too large"))?;
    }
    Ok(p)
}

fn supervision_from(v: &Value) -> Result<GenesisSupervision, GenesisError> {
    let m = object(v, "supervision", &["supervisor", "freeze_policy", "escrow"])?;
    let supervisor = string(m, "supervision", "supervisor")?.to_string();
    let freeze_policy = match m.get("freeze_policy") {
        None => {
            return Err(GenesisError::field(
                "supervision.freeze_policy",
                "missing: choose \"supervisor\" (its auditors freeze alone: the consortium trusts them not to freeze its governance) or \"governance\" (each freeze by the organisations' vote)",
            ));
        }
        Some(p) => {
            let text = p
                .as_str()
                .ok_or_else(|| GenesisError::field("supervision.freeze_policy", "not a string"))?;
            FreezePolicy::parse(text).ok_or_else(|| {
                GenesisError::field(
                    "supervision.freeze_policy",
                    format!("{text:?} is not supervisor or governance"),
                )
            })?
        }
    };
    let mut escrow = Vec::new();
    if let Some(list) = m.get("escrow") {
        let list = list
            .as_array()
            .ok_or_else(|| GenesisError::field("supervision.escrow", "not an array"))?;
        for (i, x) in list.iter().enumerate() {
            let f = format!("supervision.escrow[{i}]");
            let pem = x
                .as_str()
                .ok_or_else(|| GenesisError::field(&f, "not a string"))?;
            escrow
                .push(Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                    GenesisError::field(&f, format!("not a PEM certificate ({e})"))
                })?);
        }
    }
    Ok(GenesisSupervision {
        supervisor,
        freeze_policy,
        escrow,
    })
}

impl Genesis {
    /// Parses and checks a genesis file: strict JSON (unknown fields refused), certificates and
    /// CRLs as PEM strings. See [`Genesis::check`] for the checks.
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| GenesisError::Json {
            reason: e.to_string(),
        })?;
        let format = match v.get("format") {
            None => 1,
            Some(f) => match f.as_u64() {
                Some(2) => 2,
                Some(3) => 3,
                _ => {
                    return Err(GenesisError::field(
                        "format",
                        format!(
                            "{f} is not a genesis format this build reads (1, without the field, 2 or {GENESIS_FORMAT})"
                        ),
                    ));
                }
            },
        };
        let fields: &[&str] = if format == 1 {
            &[
                "chain_id",
                "timestamp_ms",
                "params",
                "organisations",
                "validators",
            ]
        } else {
            &[
                "format",
                "chain_id",
                "test_chain",
                "timestamp_ms",
                "params",
                "organisations",
                "validators",
                "governance",
                "supervision",
            ]
        };
        let org_fields: &[&str] = if format == 1 {
            &["name", "ca_cert", "crl"]
        } else {
            &["name", "ca_cert", "crl", "sponsors"]
        };
        let top = object(&v, "", fields)?;
        let test_chain = match top.get("test_chain") {
            None => false,
            Some(b) => b
                .as_bool()
                .ok_or_else(|| GenesisError::field("test_chain", "not true or false"))?,
        };
        let chain_id = ChainId::new(string(top, "", "chain_id")?)
            .map_err(|e| GenesisError::field("chain_id", e.to_string()))?;
        let timestamp_ms = unsigned(required(top, "", "timestamp_ms")?, "timestamp_ms")?;
        let params = params_from(top.get("params"), format)?;
        let mut organisations = Vec::new();
        for (i, o) in array(top, "organisations")?.iter().enumerate() {
            let f = format!("organisations[{i}]");
            let m = object(o, &f, org_fields)?;
            let name = string(m, &f, "name")?.to_string();
            let ca_cert = cert_pem(m, &f, "ca_cert")?;
            let crl = Crl::from_pem(string(m, &f, "crl")?.as_bytes()).map_err(|e| {
                GenesisError::field(format!("{f}.crl"), format!("not a PEM CRL ({e})"))
            })?;
            let mut sponsors = Vec::new();
            if let Some(list) = m.get("sponsors") {
                let field = format!("{f}.sponsors");
                let list = list
                    .as_array()
                    .ok_or_else(|| GenesisError::field(&field, "not an array"))?;
                for (j, x) in list.iter().enumerate() {
                    let s = x.as_str().ok_or_else(|| {
                        GenesisError::field(format!("{field}[{j}]"), "not a string")
                    })?;
                    sponsors.push(s.to_string());
                }
            }
            organisations.push(GenesisOrg {
                name,
                ca_cert,
                crl,
                sponsors,
            });
        }
        let mut validators = Vec::new();
        for (i, o) in array(top, "validators")?.iter().enumerate() {
            let f = format!("validators[{i}]");
            let m = object(o, &f, &["name", "cert"])?;
            let name = string(m, &f, "name")?.to_string();
            let cert = cert_pem(m, &f, "cert")?;
            validators.push(GenesisValidator { name, cert });
        }
        let mut governance = Vec::new();
        if let Some(g) = top.get("governance") {
            let map = g
                .as_object()
                .ok_or_else(|| GenesisError::field("governance", "not an object"))?;
            for (kind, policy) in map {
                let f = format!("governance.{kind}");
                if !crate::governance::POLICY_KINDS
                    .iter()
                    .any(|(k, _)| k == kind)
                {
                    let kinds: Vec<&str> = crate::governance::POLICY_KINDS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect();
                    return Err(GenesisError::field(
                        &f,
                        format!("no such kind of proposal; kinds: {}", kinds.join(", ")),
                    ));
                }
                let text = policy
                    .as_str()
                    .ok_or_else(|| GenesisError::field(&f, "not a string"))?;
                let p = crate::governance::Policy::parse(text)
                    .map_err(|e| GenesisError::field(&f, e))?;
                governance.push((kind.clone(), p));
            }
            governance.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let supervision = match top.get("supervision") {
            None => None,
            Some(_) if format < 3 => {
                return Err(GenesisError::field(
                    "supervision",
                    "a supervisor needs genesis format 3",
                ));
            }
            Some(v) => Some(supervision_from(v)?),
        };
        let g = Genesis {
            format,
            chain_id,
            test_chain,
            timestamp_ms,
            params,
            organisations,
            validators,
            governance,
            supervision,
        };
        g.check()?;
        Ok(g)
    }

    /// Checks the genesis: parameters at least 1; at least one organisation and one validator;
    /// organisation names unique, equal to their CA's O and without '/'; each CA certificate
    /// a CA; each CRL issued and signed by its organisation's CA; sponsored names valid,
    /// unique, not a founding organisation, and only on self-signed CAs; validator names and
    /// certificates unique; each validator certificate a node-signing certificate that
    /// validates in the consortium (its CAs, sponsorship and CRLs) at the genesis time.
    pub fn check(&self) -> Result<(), GenesisError> {
        if !(1..=GENESIS_FORMAT).contains(&self.format) {
            return Err(GenesisError::field(
                "format",
                format!("{} is not a genesis format this build knows", self.format),
            ));
        }
        let p = &self.params;
        if p.expiry_window == 0 {
            return Err(GenesisError::field(
                "params.expiry_window",
                "must be at least 1",
            ));
        }
        for (field, v, ceiling) in [
            (
                "params.max_fuel_per_tx",
                p.max_fuel_per_tx,
                crate::params::MAX_FUEL_PER_TX_CEILING,
            ),
            (
                "params.max_fuel_per_block",
                p.max_fuel_per_block,
                crate::params::MAX_FUEL_PER_BLOCK_CEILING,
            ),
        ] {
            if !(crate::params::MIN_FUEL_PARAM..=ceiling).contains(&v) {
                return Err(GenesisError::field(
                    field,
                    format!(
                        "{v} is outside {}..={ceiling}, the bounds of a fuel parameter",
                        crate::params::MIN_FUEL_PARAM
                    ),
                ));
            }
        }
        if p.max_fuel_per_tx > p.max_fuel_per_block {
            return Err(GenesisError::field(
                "params.max_fuel_per_tx",
                format!(
                    "{} is above max_fuel_per_block {}: no block could hold such a transaction",
                    p.max_fuel_per_tx, p.max_fuel_per_block
                ),
            ));
        }
        if p.max_txs_per_block == 0 {
            return Err(GenesisError::field(
                "params.max_txs_per_block",
                "must be at least 1",
            ));
        }
        // The floor a governance change must respect too: below it, an organisation could not
        // send its own registration or CRL update.
        if p.max_tx_size < crate::MIN_MAX_TX_SIZE {
            return Err(GenesisError::field(
                "params.max_tx_size",
                format!(
                    "{} bytes is below {} bytes, the least that carries an organisation's registration or CRL update",
                    p.max_tx_size,
                    crate::MIN_MAX_TX_SIZE
                ),
            ));
        }
        // One transaction of max_tx_size, with the block's header and framing, must fit the
        // max_block_size every block reader enforces.
        let fits = p.limits().largest_tx_in_block(&self.chain_id);
        if p.max_tx_size > fits {
            return Err(GenesisError::field(
                "params.max_tx_size",
                format!(
                    "{} bytes cannot fit in one block: max_block_size = {} bytes leaves at most {fits} bytes for a transaction after the block header and framing",
                    p.max_tx_size,
                    p.limits().max_block_size
                ),
            ));
        }
        // Transactions are decoded under the build's own ceiling: a larger value would be
        // accepted here but never applied (`limits()` only tightens), so it is refused.
        let ceiling = Limits::default().max_tx_size;
        if p.max_tx_size > ceiling {
            return Err(GenesisError::field(
                "params.max_tx_size",
                format!(
                    "{} bytes is above the largest transaction this build decodes ({ceiling} bytes)",
                    p.max_tx_size
                ),
            ));
        }
        if self.organisations.is_empty() {
            return Err(GenesisError::field(
                "organisations",
                "at least one organisation is required",
            ));
        }
        for (i, o) in self.organisations.iter().enumerate() {
            let f = format!("organisations[{i}]");
            check_org_name(&o.name).map_err(|e| GenesisError::field(format!("{f}.name"), e))?;
            if self.organisations[..i].iter().any(|x| x.name == o.name) {
                return Err(GenesisError::field(
                    format!("{f}.name"),
                    format!("duplicate organisation {:?}", o.name),
                ));
            }
            if !o.ca_cert.is_ca() {
                return Err(GenesisError::field(
                    format!("{f}.ca_cert"),
                    "not a CA certificate",
                ));
            }
            let o_name = o.ca_cert.organisation();
            if o_name.as_deref() != Some(o.name.as_str()) {
                return Err(GenesisError::field(
                    format!("{f}.name"),
                    format!(
                        "{:?} differs from the organisation (O) of ca_cert ({:?})",
                        o.name,
                        o_name.unwrap_or_default()
                    ),
                ));
            }
            if !crl_from(&o.crl, &o.ca_cert) {
                return Err(GenesisError::field(
                    format!("{f}.crl"),
                    format!("not issued and signed by ca_cert {:?}", o.ca_cert.subject()),
                ));
            }
            if self.format == 1 && !o.sponsors.is_empty() {
                return Err(GenesisError::field(
                    format!("{f}.sponsors"),
                    "sponsors need genesis format 2",
                ));
            }
            if !o.sponsors.is_empty() && !o.ca_cert.is_self_issued() {
                return Err(GenesisError::field(
                    format!("{f}.sponsors"),
                    "only a self-signed CA can sponsor other organisations: below an agency CA every certificate names its own organisation",
                ));
            }
            for (j, s) in o.sponsors.iter().enumerate() {
                let sf = format!("{f}.sponsors[{j}]");
                check_org_name(s).map_err(|e| GenesisError::field(&sf, e))?;
                if o.sponsors[..j].contains(s) {
                    return Err(GenesisError::field(sf, format!("duplicate {s:?}")));
                }
                if self.organisations.iter().any(|x| x.name == *s) {
                    return Err(GenesisError::field(
                        sf,
                        format!("{s:?} is a founding organisation: only its own CA certifies it"),
                    ));
                }
            }
        }
        if self.validators.is_empty() {
            return Err(GenesisError::field(
                "validators",
                "at least one validator is required",
            ));
        }
        let consortium = self.consortium()?;
        let crls: Vec<Crl> = self.organisations.iter().map(|o| o.crl.clone()).collect();
        let now = UnixTime(self.timestamp_ms / 1000);
        for (i, v) in self.validators.iter().enumerate() {
            let f = format!("validators[{i}]");
            if v.name.is_empty() {
                return Err(GenesisError::field(format!("{f}.name"), "empty"));
            }
            if self.validators[..i].iter().any(|x| x.name == v.name) {
                return Err(GenesisError::field(
                    format!("{f}.name"),
                    format!("duplicate validator {:?}", v.name),
                ));
            }
            if self.validators[..i].iter().any(|x| x.cert == v.cert) {
                return Err(GenesisError::field(
                    format!("{f}.cert"),
                    "duplicate validator certificate",
                ));
            }
            let role = v.cert.role();
            if role != Some(Role::NodeSign) {
                return Err(GenesisError::field(
                    format!("{f}.cert"),
                    format!(
                        "role is {}, not node-sign",
                        role.map(|r| r.as_str()).unwrap_or("none")
                    ),
                ));
            }
            consortium
                .validate(&v.cert, &[], &crls, now, Role::NodeSign)
                .map_err(|e| {
                    GenesisError::field(
                        format!("{f}.cert"),
                        format!("does not validate under the organisations' CAs: {e}"),
                    )
                })?;
        }
        if let Some(s) = &self.supervision {
            self.check_supervision(s, &consortium, &crls, now)?;
        }
        Ok(())
    }

    /// The supervisor is a founding organisation; each escrow certificate an `auditor-enc`
    /// certificate of it, unique, that validates in the consortium at the genesis time.
    fn check_supervision(
        &self,
        s: &GenesisSupervision,
        consortium: &Consortium,
        crls: &[Crl],
        now: UnixTime,
    ) -> Result<(), GenesisError> {
        if self.format < 3 {
            return Err(GenesisError::field(
                "supervision",
                "a supervisor needs genesis format 3",
            ));
        }
        if !self.organisations.iter().any(|o| o.name == s.supervisor) {
            return Err(GenesisError::field(
                "supervision.supervisor",
                format!("{:?} is not a founding organisation", s.supervisor),
            ));
        }
        if s.escrow.len() > crate::data::MAX_ESCROW {
            return Err(GenesisError::field(
                "supervision.escrow",
                format!(
                    "{} certificates; at most {}",
                    s.escrow.len(),
                    crate::data::MAX_ESCROW
                ),
            ));
        }
        for (i, c) in s.escrow.iter().enumerate() {
            let f = format!("supervision.escrow[{i}]");
            if s.escrow[..i].contains(c) {
                return Err(GenesisError::field(f, "duplicate certificate"));
            }
            if c.role() != Some(Role::AuditorEnc) {
                return Err(GenesisError::field(
                    f,
                    format!(
                        "role is {}, not auditor-enc (the supervisor's auditors' encryption certificate)",
                        c.role().map(|r| r.as_str()).unwrap_or("none")
                    ),
                ));
            }
            if c.organisation().as_deref() != Some(s.supervisor.as_str()) {
                return Err(GenesisError::field(
                    f,
                    format!(
                        "organisation {:?} is not the supervisor {:?}",
                        c.organisation().unwrap_or_default(),
                        s.supervisor
                    ),
                ));
            }
            consortium
                .validate(c, &[], crls, now, Role::AuditorEnc)
                .map_err(|e| {
                    GenesisError::field(
                        f,
                        format!("does not validate under the organisations' CAs: {e}"),
                    )
                })?;
        }
        Ok(())
    }

    /// Returns the genesis as JSON that [`Genesis::from_json`] reads back to an equal value.
    pub fn to_json(&self) -> String {
        let orgs: Vec<Value> = self
            .organisations
            .iter()
            .map(|o| {
                let mut m = json!({
                    "name": o.name,
                    "ca_cert": o.ca_cert.to_pem(),
                    "crl": o.crl.to_pem(),
                });
                if self.format != 1 && !o.sponsors.is_empty() {
                    m["sponsors"] = json!(o.sponsors);
                }
                m
            })
            .collect();
        let validators: Vec<Value> = self
            .validators
            .iter()
            .map(|v| json!({ "name": v.name, "cert": v.cert.to_pem() }))
            .collect();
        let mut v = json!({
            "chain_id": self.chain_id.as_str(),
            "timestamp_ms": self.timestamp_ms,
            "params": {
                "expiry_window": self.params.expiry_window,
                "max_txs_per_block": self.params.max_txs_per_block,
                "max_tx_size": self.params.max_tx_size,
            },
            "organisations": orgs,
            "validators": validators,
        });
        if self.format >= 3 {
            v["params"]["max_fuel_per_tx"] = json!(self.params.max_fuel_per_tx);
            v["params"]["max_fuel_per_block"] = json!(self.params.max_fuel_per_block);
        }
        if self.format != 1 {
            v["format"] = json!(self.format);
            v["test_chain"] = json!(self.test_chain);
        }
        if !self.governance.is_empty() {
            let m: serde_json::Map<String, Value> = self
                .governance
                .iter()
                .map(|(k, p)| (k.clone(), json!(p.text())))
                .collect();
            v["governance"] = Value::Object(m);
        }
        if let Some(s) = &self.supervision {
            let mut m = json!({
                "supervisor": s.supervisor,
                "freeze_policy": s.freeze_policy.as_str(),
            });
            if !s.escrow.is_empty() {
                m["escrow"] = json!(s.escrow.iter().map(|c| c.to_pem()).collect::<Vec<_>>());
            }
            v["supervision"] = m;
        }
        // Serialising a Value built from strings and integers cannot fail.
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Returns the canonical encoding (docs/execution.md §2.3): the format byte first; format 2
    /// adds `test_chain` after the timestamp and each organisation's sponsors after its CRL.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.format);
        w.bytes(self.chain_id.as_str().as_bytes());
        w.u64(self.timestamp_ms);
        if self.format != 1 {
            w.u8(u8::from(self.test_chain));
        }
        w.u64(self.params.expiry_window);
        w.u32(self.params.max_txs_per_block);
        w.u64(u64::try_from(self.params.max_tx_size).unwrap_or(u64::MAX));
        if self.format >= 3 {
            w.u64(self.params.max_fuel_per_tx);
            w.u64(self.params.max_fuel_per_block);
        }
        w.len(self.organisations.len());
        for o in &self.organisations {
            w.bytes(o.name.as_bytes());
            w.bytes(o.ca_cert.der());
            w.bytes(o.crl.der());
            if self.format != 1 {
                w.len(o.sponsors.len());
                for s in &o.sponsors {
                    w.bytes(s.as_bytes());
                }
            }
        }
        w.len(self.validators.len());
        for v in &self.validators {
            w.bytes(v.name.as_bytes());
            w.bytes(v.cert.der());
        }
        // Governance policies, only when set (a genesis without them keeps its hash); with a
        // supervision section the count is always written, then the section.
        if !self.governance.is_empty() || self.supervision.is_some() {
            w.len(self.governance.len());
            for (kind, policy) in &self.governance {
                w.bytes(kind.as_bytes());
                w.bytes(policy.text().as_bytes());
            }
        }
        if let Some(s) = &self.supervision {
            w.u8(1);
            w.bytes(s.supervisor.as_bytes());
            w.bytes(s.freeze_policy.as_str().as_bytes());
            w.len(s.escrow.len());
            for c in &s.escrow {
                w.bytes(c.der());
            }
        }
        w.into_bytes()
    }

    /// Returns SM3(`GENESIS_DOMAIN` ‖ canonical encoding).
    pub fn hash(&self) -> Digest {
        sm3_parts(&[GENESIS_DOMAIN, &self.canonical_bytes()])
    }

    /// Returns the consortium: the founding organisations' CA certificates as its only trust
    /// anchors (default user ID), each with the organisations it sponsors. A format-1 genesis
    /// bound no names to anchors, so for its receipts each anchor sponsors any name (the rule
    /// that chain ran under); a node refuses format 1.
    pub fn consortium(&self) -> Result<Consortium, GenesisError> {
        Consortium::new(
            self.organisations
                .iter()
                .map(|o| ConsortiumAnchor {
                    anchor: TrustAnchor::new(o.ca_cert.clone()),
                    sponsors: if self.format == 1 {
                        Sponsorship::AnyOrganisation
                    } else {
                        Sponsorship::Listed(o.sponsors.clone())
                    },
                })
                .collect(),
        )
        .map_err(|e| GenesisError::field("organisations", e.to_string()))
    }

    /// Refuses a genesis of a format this build does not run a node on (format 1: no
    /// sponsors); format 2 runs with the default fuel parameters.
    pub fn require_current_format(&self) -> Result<(), GenesisError> {
        if self.format < 2 {
            return Err(GenesisError::field(
                "format",
                format!(
                    "this genesis file is format {}, a node of this build runs formats 2 to {GENESIS_FORMAT}: re-create the chain (gmchain node init); receipts of the old chain still verify against it",
                    self.format
                ),
            ));
        }
        Ok(())
    }

    /// Returns the validator whose certificate has SM3 `id`.
    pub fn validator(&self, id: &Digest) -> Option<&GenesisValidator> {
        self.validators.iter().find(|v| v.cert.fingerprint() == *id)
    }

    /// Returns the state writes of genesis (docs/execution.md §3).
    fn state_writes(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut w: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut put = |k: Vec<u8>, v: Vec<u8>| w.push((k, Some(v)));
        for (seq, o) in (0u64..).zip(&self.organisations) {
            let rec = OrgRecord {
                name: o.name.clone(),
                ca_cert: o.ca_cert.clone(),
                registered_at: Height(0),
                sponsor: None,
                removed_at: None,
                former_cas: Vec::new(),
            };
            put(full(IDENTITY, &keys::identity::org(&o.name)), rec.encode());
            put(
                full(IDENTITY, &keys::identity::org_index(seq)),
                o.name.as_bytes().to_vec(),
            );
            put(
                full(IDENTITY, &keys::identity::crl(&o.ca_cert.fingerprint())),
                o.crl.der().to_vec(),
            );
        }
        let count = u64::try_from(self.organisations.len()).unwrap_or(u64::MAX);
        put(
            full(IDENTITY, &keys::identity::org_count()),
            count.to_be_bytes().to_vec(),
        );
        let mut list = Writer::new();
        list.len(self.validators.len());
        for v in &self.validators {
            let id = v.cert.fingerprint();
            list.fixed(id.as_bytes());
            let rec = ValidatorRecord {
                name: v.name.clone(),
                cert: v.cert.clone(),
            };
            put(full(CHAIN, &keys::chain::validator(&id)), rec.encode());
        }
        put(full(CHAIN, &keys::chain::validators()), list.into_bytes());
        put(
            full(CHAIN, &keys::chain::params()),
            records::encode_params(&self.params),
        );
        put(full(CHAIN, &keys::chain::genesis()), self.hash().0.to_vec());
        for (kind, policy) in &self.governance {
            put(
                full(keys::GOVERNANCE, &keys::governance::policy(kind)),
                policy.text().into_bytes(),
            );
        }
        if let Some(s) = &self.supervision {
            let rec = SupervisorRecord {
                organisation: s.supervisor.clone(),
                policy: s.freeze_policy,
                since: Height(0),
            };
            put(
                full(keys::SUPERVISION, &keys::supervision::supervisor()),
                rec.encode(),
            );
            if !s.escrow.is_empty() {
                let list: Vec<crate::data::EscrowRecipient> = s
                    .escrow
                    .iter()
                    .map(|c| crate::data::EscrowRecipient {
                        id: c.fingerprint(),
                        cert: c.der().to_vec(),
                    })
                    .collect();
                put(
                    full(keys::EXCHANGE, &keys::exchange::escrow()),
                    crate::data::encode_escrow(&list),
                );
            }
        }
        w
    }

    /// The validator set of height 1: every genesis validator with power 1, identified by
    /// the SM3 of its certificate.
    pub fn validator_set(&self) -> Result<types::ValidatorSet, ExecError> {
        types::ValidatorSet::new(
            self.validators
                .iter()
                .map(|v| types::ValidatorEntry {
                    id: v.cert.fingerprint(),
                    public_key: v.cert.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .map_err(ExecError::ValidatorSet)
    }

    /// Builds block 0 (a v2 header whose validator set is [`Genesis::validator_set`]): no
    /// transactions, parent [`BlockHash::GENESIS_PARENT`], proposer 32 zero
    /// bytes, timestamp `timestamp_ms`, and the state root after writing the organisations,
    /// their CRLs, the validators, the parameters and the genesis hash. The same genesis always
    /// gives the same block hash. Call it on a genesis from [`Genesis::from_json`] (or one that
    /// passed [`Genesis::check`]).
    pub fn build<S: NodeStore>(&self, store: &S) -> Result<GenesisBlock, ExecError> {
        let update = state::apply(store, EMPTY_ROOT, &self.state_writes())?;
        let mut block = Block {
            header: BlockHeader {
                chain_id: self.chain_id.clone(),
                height: Height(0),
                tx_count: 0,
                parent: BlockHash::GENESIS_PARENT,
                tx_root: Digest::default(),
                state_root: update.root,
                receipts_root: types::receipts_root(&[]),
                timestamp: Timestamp(self.timestamp_ms),
                proposer: Digest([0; 32]),
                consensus: Some(types::ConsensusLinks {
                    validator_set: self.validator_set()?.hash(),
                    next_validator_set: self.validator_set()?.hash(),
                    last_commit: types::ConsensusLinks::NO_PARENT_CERTIFICATE,
                }),
            },
            txs: Vec::new(),
        };
        block.header.tx_root = block.tx_root();
        Ok(GenesisBlock {
            block,
            receipts: Vec::new(),
            update,
        })
    }
}
