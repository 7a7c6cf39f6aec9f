//! State records and their canonical encoding (docs/execution.md §3): the `types` codec
//! (big-endian integers, u32-length-prefixed byte strings), opened by the format version and a
//! record tag. Decoding is bounded, rejects trailing bytes and never panics; a record that does
//! not decode is an [`ExecError::CorruptRecord`], never a transaction failure.

use crate::error::ExecError;
use crate::params::{ChainParams, ParamsUpdate};
use crypto::Digest;
use pki::Certificate;
use types::codec::{Reader, Writer};
use types::{DecodeError, DecodeReason, Height};

/// Record tags: the second byte of each record (the first is the format version, 1).
pub(crate) mod tag {
    pub const ORG: u8 = 0x81;
    pub const ATTESTATION: u8 = 0x82;
    pub const PARAMS: u8 = 0x83;
    pub const VALIDATOR: u8 = 0x84;
    pub const SUSPENSION: u8 = 0x85;
    pub const EPOCH: u8 = 0x86;
    pub const PENDING_CHANGE: u8 = 0x87;
    pub const PROPOSAL: u8 = 0x88;
    pub const PENDING_PARAMS: u8 = 0x89;
    pub const PARAMS_CHANGE: u8 = 0x8a;
    pub const ANCHORS: u8 = 0x8b;
    pub const CONTRACT: u8 = 0x8c;
    pub const MODULE_PROPOSALS: u8 = 0x8d;
}

/// A deployed WASM contract (`contracts/deployed/<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractRecord {
    /// Its name (also its namespace `wasm/<name>`).
    pub name: String,
    /// SM3 of the code it runs (`contracts/code/<hash>`).
    pub code_hash: Digest,
    /// 1 when deployed, one more per upgrade.
    pub version: u32,
    /// Whether governance froze it: calls are refused, queries still answer.
    pub frozen: bool,
    /// The height of its deployment.
    pub deployed: Height,
    /// The height of its last lifecycle change (deployment, upgrade, freeze, unfreeze).
    pub updated: Height,
    /// The proposal that made the last change.
    pub proposal: Digest,
}

impl ContractRecord {
    /// The canonical encoding (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::CONTRACT);
        w.bytes(self.name.as_bytes());
        w.fixed(self.code_hash.as_bytes());
        w.u32(self.version);
        w.u8(u8::from(self.frozen));
        w.u64(self.deployed.0);
        w.u64(self.updated.0);
        w.fixed(self.proposal.as_bytes());
        w.into_bytes()
    }

    /// Decodes a record read under `key`.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("contract.header", tag::CONTRACT).map_err(c)?;
            let name = text(
                "contract.name",
                r.bytes("contract.name", MAX_NAME_BYTES).map_err(c)?,
            )
            .map_err(c)?;
            let code_hash = Digest(r.array("contract.code_hash").map_err(c)?);
            let version = r.u32("contract.version").map_err(c)?;
            let frozen = match r.u8("contract.frozen").map_err(c)? {
                0 => false,
                1 => true,
                got => return Err(ExecError::corrupt(key, format!("contract.frozen {got}"))),
            };
            let deployed = Height(r.u64("contract.deployed").map_err(c)?);
            let updated = Height(r.u64("contract.updated").map_err(c)?);
            let proposal = Digest(r.array("contract.proposal").map_err(c)?);
            Ok(ContractRecord {
                name,
                code_hash,
                version,
                frozen,
                deployed,
                updated,
                proposal,
            })
        })
    }
}

/// Longest attestation kind, in bytes.
pub const MAX_KIND_LEN: usize = 64;
/// Longest attestation metadata, in bytes.
pub const MAX_METADATA_LEN: usize = 4096;
/// Longest attestation pointer, in bytes.
pub const MAX_POINTER_LEN: usize = 4096;

/// Longest organisation or validator name (64 characters of up to 4 UTF-8 bytes).
const MAX_NAME_BYTES: usize = 256;
/// Longest owner: organisation, '/', common name.
const MAX_OWNER_BYTES: usize = 2 * MAX_NAME_BYTES + 1;

/// The ID of an attestation: the ID of the transaction that anchored it. An alias, not a
/// newtype, because [`Attestation::id`] and the query API carry it as a plain digest.
pub type AttestationId = Digest;

/// A registered organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRecord {
    /// The organisation's name: its CA certificate's O.
    pub name: String,
    /// Its CA certificate, under which its members' certificates are issued: a trust anchor
    /// for a founding organisation, an intermediate validated up to one for any other.
    pub ca_cert: Certificate,
    /// The height of the block that registered it (0 for genesis), or that last replaced its CA.
    pub registered_at: Height,
    /// The organisation whose CA issued this one's: the only one whose admins may deregister it
    /// or replace its CA. `None` for a founding organisation (removable only by governance).
    pub sponsor: Option<String>,
    /// The height of the block that deregistered it; its members are refused from the next.
    pub removed_at: Option<Height>,
    /// Its earlier CAs, most recent last (at most [`MAX_FORMER_CAS`]): a certificate issued
    /// under one is still found and judged (and refused as `TX_CA_REPLACED`), so a fresh
    /// validation answers as a cached one does.
    pub former_cas: Vec<Certificate>,
}

/// The most former CAs an organisation record keeps; the oldest goes first.
pub const MAX_FORMER_CAS: usize = 8;

impl OrgRecord {
    /// Returns whether the organisation was registered at genesis.
    pub fn is_founding(&self) -> bool {
        self.sponsor.is_none()
    }

    /// Returns whether it is registered and not deregistered.
    pub fn is_active(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// An anchored digest (存证).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The ID: the anchoring transaction's ID.
    pub id: Digest,
    /// The anchored SM3 digest.
    pub digest: Digest,
    /// The kind: 1..=64 bytes of `[A-Za-z0-9._-]`.
    pub kind: String,
    /// `<organisation>/<common name>` of the signer.
    pub owner: String,
    /// Free UTF-8 metadata, at most 4096 bytes.
    pub metadata: String,
    /// An opaque (usually SM4-encrypted) pointer to the document; empty = none.
    pub pointer: Vec<u8>,
    /// The height of the anchoring block.
    pub height: Height,
    /// The anchoring block's timestamp (ms).
    pub timestamp_ms: u64,
    /// SM3 of the signer's certificate.
    pub signer: Digest,
}

/// A suspension of a certificate by an admin of its organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspensionRecord {
    /// The height of the suspending block.
    pub height: Height,
    /// SM3 of the suspending admin's certificate.
    pub by: Digest,
}

/// A genesis validator as recorded in state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorRecord {
    /// Its name in the genesis file.
    pub name: String,
    /// Its node-signing certificate.
    pub cert: Certificate,
}

pub(crate) fn text(field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| DecodeError::new(field, DecodeReason::InvalidText { expected: "UTF-8" }))
}

fn decode<T>(
    key: &[u8],
    bytes: &[u8],
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, ExecError>,
) -> Result<T, ExecError> {
    let mut r = Reader::new(bytes);
    let v = f(&mut r)?;
    r.finish().map_err(|e| ExecError::corrupt(key, e))?;
    Ok(v)
}

fn cert(key: &[u8], der: &[u8]) -> Result<Certificate, ExecError> {
    Certificate::from_der(der).map_err(|e| ExecError::corrupt(key, e))
}

impl OrgRecord {
    /// The canonical encoding stored under `identity/org/<name>` (docs/execution.md §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::ORG);
        w.bytes(self.name.as_bytes());
        w.bytes(self.ca_cert.der());
        w.u64(self.registered_at.0);
        // Genesis format 2: the sponsor (empty = founding) and the removal height (0 = none;
        // no organisation is removed at genesis).
        w.bytes(self.sponsor.as_deref().unwrap_or("").as_bytes());
        w.u64(self.removed_at.map_or(0, |h| h.0));
        w.len(self.former_cas.len());
        for c in &self.former_cas {
            w.bytes(c.der());
        }
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("org.header", tag::ORG).map_err(c)?;
            let name =
                text("org.name", r.bytes("org.name", MAX_NAME_BYTES).map_err(c)?).map_err(c)?;
            let ca_cert = cert(key, r.bytes("org.ca_cert", pki::MAX_CERT_LEN).map_err(c)?)?;
            let registered_at = Height(r.u64("org.registered_at").map_err(c)?);
            let sponsor = text(
                "org.sponsor",
                r.bytes("org.sponsor", MAX_NAME_BYTES).map_err(c)?,
            )
            .map_err(c)?;
            let removed_at = r.u64("org.removed_at").map_err(c)?;
            let n = r.len("org.former_cas", MAX_FORMER_CAS).map_err(c)?;
            let mut former_cas = Vec::with_capacity(n);
            for _ in 0..n {
                former_cas.push(cert(
                    key,
                    r.bytes("org.former_cas", pki::MAX_CERT_LEN).map_err(c)?,
                )?);
            }
            Ok(OrgRecord {
                name,
                ca_cert,
                registered_at,
                sponsor: (!sponsor.is_empty()).then_some(sponsor),
                removed_at: (removed_at != 0).then_some(Height(removed_at)),
                former_cas,
            })
        })
    }
}

impl Attestation {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::ATTESTATION);
        w.fixed(self.id.as_bytes());
        w.fixed(self.digest.as_bytes());
        w.bytes(self.kind.as_bytes());
        w.bytes(self.owner.as_bytes());
        w.bytes(self.metadata.as_bytes());
        w.bytes(&self.pointer);
        w.u64(self.height.0);
        w.u64(self.timestamp_ms);
        w.fixed(self.signer.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("attestation.header", tag::ATTESTATION)
                .map_err(c)?;
            let id = Digest(r.array("attestation.id").map_err(c)?);
            let digest = Digest(r.array("attestation.digest").map_err(c)?);
            let kind = text(
                "attestation.kind",
                r.bytes("attestation.kind", MAX_KIND_LEN).map_err(c)?,
            )
            .map_err(c)?;
            let owner = text(
                "attestation.owner",
                r.bytes("attestation.owner", MAX_OWNER_BYTES).map_err(c)?,
            )
            .map_err(c)?;
            let metadata = text(
                "attestation.metadata",
                r.bytes("attestation.metadata", MAX_METADATA_LEN)
                    .map_err(c)?,
            )
            .map_err(c)?;
            let pointer = r
                .bytes("attestation.pointer", MAX_POINTER_LEN)
                .map_err(c)?
                .to_vec();
            let height = Height(r.u64("attestation.height").map_err(c)?);
            let timestamp_ms = r.u64("attestation.timestamp_ms").map_err(c)?;
            let signer = Digest(r.array("attestation.signer").map_err(c)?);
            Ok(Attestation {
                id,
                digest,
                kind,
                owner,
                metadata,
                pointer,
                height,
                timestamp_ms,
                signer,
            })
        })
    }
}

impl SuspensionRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::SUSPENSION);
        w.u64(self.height.0);
        w.fixed(self.by.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("suspension.header", tag::SUSPENSION).map_err(c)?;
            let height = Height(r.u64("suspension.height").map_err(c)?);
            let by = Digest(r.array("suspension.by").map_err(c)?);
            Ok(SuspensionRecord { height, by })
        })
    }
}

impl ValidatorRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::VALIDATOR);
        w.bytes(self.name.as_bytes());
        w.bytes(self.cert.der());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("validator.header", tag::VALIDATOR).map_err(c)?;
            let name = text(
                "validator.name",
                r.bytes("validator.name", MAX_NAME_BYTES).map_err(c)?,
            )
            .map_err(c)?;
            let cert = cert(
                key,
                r.bytes("validator.cert", pki::MAX_CERT_LEN).map_err(c)?,
            )?;
            Ok(ValidatorRecord { name, cert })
        })
    }
}

/// A validator set from a height on (`chain/epoch/<seq>`): what the chain's validator rule
/// (the `validators` module) records when the set of the next height differs from the
/// current one. Epoch 0 is implicit: the genesis validators from height 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRecord {
    /// The first height this set decides.
    pub from: Height,
    /// The validators (name, certificate), ordered by certificate ID.
    pub validators: Vec<ValidatorRecord>,
    /// The transactions of the change: the governance vote that executed a set change, or
    /// the transactions of the block that revoked, suspended or deregistered a validator.
    pub causes: Vec<types::TxId>,
    /// Why the set changed, in words (for operators and receipts).
    pub reason: String,
}

/// Most validators in a recorded set.
pub(crate) const MAX_EPOCH_VALIDATORS: usize = types::MAX_VALIDATORS;
/// Most causes recorded for one change.
pub(crate) const MAX_CAUSES: usize = 4096;
/// Longest reason text.
pub(crate) const MAX_REASON_LEN: usize = 1024;

impl EpochRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::EPOCH);
        w.u64(self.from.0);
        w.len(self.validators.len());
        for v in &self.validators {
            w.bytes(v.name.as_bytes());
            w.bytes(v.cert.der());
        }
        w.len(self.causes.len());
        for c in &self.causes {
            w.fixed(c.as_bytes());
        }
        w.bytes(self.reason.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("epoch.header", tag::EPOCH).map_err(c)?;
            let from = Height(r.u64("epoch.from").map_err(c)?);
            let n = r.len("epoch.validators", MAX_EPOCH_VALIDATORS).map_err(c)?;
            let mut validators = Vec::with_capacity(n);
            for _ in 0..n {
                let name = text(
                    "epoch.validators[].name",
                    r.bytes("epoch.validators[].name", MAX_NAME_BYTES)
                        .map_err(c)?,
                )
                .map_err(c)?;
                let cert = cert(
                    key,
                    r.bytes("epoch.validators[].cert", pki::MAX_CERT_LEN)
                        .map_err(c)?,
                )?;
                validators.push(ValidatorRecord { name, cert });
            }
            let n = r.len("epoch.causes", MAX_CAUSES).map_err(c)?;
            let mut causes = Vec::with_capacity(n);
            for _ in 0..n {
                causes.push(types::TxId(Digest(r.array("epoch.causes[]").map_err(c)?)));
            }
            let reason = text(
                "epoch.reason",
                r.bytes("epoch.reason", MAX_REASON_LEN).map_err(c)?,
            )
            .map_err(c)?;
            Ok(EpochRecord {
                from,
                validators,
                causes,
                reason,
            })
        })
    }
}

/// A change of the validator set that governance decided and that takes effect at a later
/// height (`governance/pending-validators`); at most one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    /// The first height the changed set decides.
    pub effective: Height,
    /// What changes.
    pub change: ValidatorChange,
    /// The proposal.
    pub proposal: Digest,
    /// The transaction that executed it (the vote that reached the threshold).
    pub tx: types::TxId,
}

/// One change of the validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidatorChange {
    /// A new validator (name, node-signing certificate).
    Add(ValidatorRecord),
    /// The validator with this certificate ID leaves.
    Remove(Digest),
    /// The validator with this certificate ID continues under a new key and certificate.
    Rotate {
        /// The certificate ID of the current key.
        old: Digest,
        /// The new certificate (same organisation, role node-sign).
        new: Certificate,
    },
}

impl ValidatorChange {
    pub(crate) fn encode_to(&self, w: &mut Writer) {
        match self {
            ValidatorChange::Add(v) => {
                w.u8(1);
                w.bytes(v.name.as_bytes());
                w.bytes(v.cert.der());
            }
            ValidatorChange::Remove(id) => {
                w.u8(2);
                w.fixed(id.as_bytes());
            }
            ValidatorChange::Rotate { old, new } => {
                w.u8(3);
                w.fixed(old.as_bytes());
                w.bytes(new.der());
            }
        }
    }

    pub(crate) fn decode_from(key: &[u8], r: &mut Reader<'_>) -> Result<Self, ExecError> {
        let c = |e| ExecError::corrupt(key, e);
        match r.u8("change.kind").map_err(c)? {
            1 => {
                let name = text(
                    "change.name",
                    r.bytes("change.name", MAX_NAME_BYTES).map_err(c)?,
                )
                .map_err(c)?;
                let cert = cert(key, r.bytes("change.cert", pki::MAX_CERT_LEN).map_err(c)?)?;
                Ok(ValidatorChange::Add(ValidatorRecord { name, cert }))
            }
            2 => Ok(ValidatorChange::Remove(Digest(
                r.array("change.id").map_err(c)?,
            ))),
            3 => {
                let old = Digest(r.array("change.old").map_err(c)?);
                let new = cert(key, r.bytes("change.new", pki::MAX_CERT_LEN).map_err(c)?)?;
                Ok(ValidatorChange::Rotate { old, new })
            }
            got => Err(ExecError::corrupt(
                key,
                format!("unknown validator change kind {got}"),
            )),
        }
    }
}

impl PendingChange {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::PENDING_CHANGE);
        w.u64(self.effective.0);
        self.change.encode_to(&mut w);
        w.fixed(self.proposal.as_bytes());
        w.fixed(self.tx.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("pending.header", tag::PENDING_CHANGE).map_err(c)?;
            let effective = Height(r.u64("pending.effective").map_err(c)?);
            let change = ValidatorChange::decode_from(key, r)?;
            let proposal = Digest(r.array("pending.proposal").map_err(c)?);
            let tx = types::TxId(Digest(r.array("pending.tx").map_err(c)?));
            Ok(PendingChange {
                effective,
                change,
                proposal,
                tx,
            })
        })
    }
}

/// A change of the chain parameters that governance decided and that takes effect at a later
/// height (`governance/pending-params`); at most one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingParams {
    /// The first height the changed parameters apply to.
    pub effective: Height,
    /// What changes.
    pub update: ParamsUpdate,
    /// The proposal.
    pub proposal: Digest,
    /// The transaction that executed it (the vote that reached the threshold).
    pub tx: types::TxId,
}

/// A parameter change that took effect (`chain/params-change/<seq>`): the parameters in force
/// from `from` until the next change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamsChange {
    /// The first height these parameters apply to.
    pub from: Height,
    /// The parameters in force from then (all three, the unchanged ones included).
    pub params: ChainParams,
    /// The proposal that decided it.
    pub proposal: Digest,
    /// The transaction that executed it.
    pub tx: types::TxId,
}

impl ParamsUpdate {
    pub(crate) fn encode_to(&self, w: &mut Writer) {
        let mut field = |v: Option<u64>| match v {
            Some(v) => {
                w.u8(1);
                w.u64(v);
            }
            None => w.u8(0),
        };
        field(self.expiry_window);
        field(self.max_txs_per_block.map(u64::from));
        field(
            self.max_tx_size
                .map(|s| u64::try_from(s).unwrap_or(u64::MAX)),
        );
        field(self.max_fuel_per_tx);
        field(self.max_fuel_per_block);
    }

    pub(crate) fn decode_from(key: &[u8], r: &mut Reader<'_>) -> Result<Self, ExecError> {
        let c = |e| ExecError::corrupt(key, e);
        let mut field = |name: &'static str| -> Result<Option<u64>, ExecError> {
            match r.u8(name).map_err(c)? {
                0 => Ok(None),
                1 => Ok(Some(r.u64(name).map_err(c)?)),
                got => Err(ExecError::corrupt(
                    key,
                    format!("{name}: presence flag {got}"),
                )),
            }
        };
        let expiry_window = field("params_update.expiry_window")?;
        let max_txs_per_block = field("params_update.max_txs_per_block")?
            .map(u32::try_from)
            .transpose()
            .map_err(|_| ExecError::corrupt(key, "max_txs_per_block above 2^32 - 1"))?;
        let max_tx_size = field("params_update.max_tx_size")?
            .map(usize::try_from)
            .transpose()
            .map_err(|_| ExecError::corrupt(key, "max_tx_size does not fit in usize"))?;
        let max_fuel_per_tx = field("params_update.max_fuel_per_tx")?;
        let max_fuel_per_block = field("params_update.max_fuel_per_block")?;
        Ok(ParamsUpdate {
            expiry_window,
            max_txs_per_block,
            max_tx_size,
            max_fuel_per_tx,
            max_fuel_per_block,
        })
    }
}

impl PendingParams {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::PENDING_PARAMS);
        w.u64(self.effective.0);
        self.update.encode_to(&mut w);
        w.fixed(self.proposal.as_bytes());
        w.fixed(self.tx.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("pending_params.header", tag::PENDING_PARAMS)
                .map_err(c)?;
            let effective = Height(r.u64("pending_params.effective").map_err(c)?);
            let update = ParamsUpdate::decode_from(key, r)?;
            let proposal = Digest(r.array("pending_params.proposal").map_err(c)?);
            let tx = types::TxId(Digest(r.array("pending_params.tx").map_err(c)?));
            Ok(PendingParams {
                effective,
                update,
                proposal,
                tx,
            })
        })
    }
}

impl ParamsChange {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(tag::PARAMS_CHANGE);
        w.u64(self.from.0);
        params_to(&mut w, &self.params);
        w.fixed(self.proposal.as_bytes());
        w.fixed(self.tx.as_bytes());
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        decode(key, bytes, |r| {
            let c = |e| ExecError::corrupt(key, e);
            r.header("params_change.header", tag::PARAMS_CHANGE)
                .map_err(c)?;
            let from = Height(r.u64("params_change.from").map_err(c)?);
            let params = params_from(key, r)?;
            let proposal = Digest(r.array("params_change.proposal").map_err(c)?);
            let tx = types::TxId(Digest(r.array("params_change.tx").map_err(c)?));
            Ok(ParamsChange {
                from,
                params,
                proposal,
                tx,
            })
        })
    }
}

fn params_to(w: &mut Writer, p: &ChainParams) {
    w.u64(p.expiry_window);
    w.u32(p.max_txs_per_block);
    w.u64(u64::try_from(p.max_tx_size).unwrap_or(u64::MAX));
    w.u64(p.max_fuel_per_tx);
    w.u64(p.max_fuel_per_block);
}

fn params_from(key: &[u8], r: &mut Reader<'_>) -> Result<ChainParams, ExecError> {
    let c = |e| ExecError::corrupt(key, e);
    let expiry_window = r.u64("params.expiry_window").map_err(c)?;
    let max_txs_per_block = r.u32("params.max_txs_per_block").map_err(c)?;
    let max_tx_size = usize::try_from(r.u64("params.max_tx_size").map_err(c)?)
        .map_err(|_| ExecError::corrupt(key, "max_tx_size does not fit in usize"))?;
    let max_fuel_per_tx = r.u64("params.max_fuel_per_tx").map_err(c)?;
    let max_fuel_per_block = r.u64("params.max_fuel_per_block").map_err(c)?;
    Ok(ChainParams {
        expiry_window,
        max_txs_per_block,
        max_tx_size,
        max_fuel_per_tx,
        max_fuel_per_block,
    })
}

pub(crate) fn encode_params(p: &ChainParams) -> Vec<u8> {
    let mut w = Writer::new();
    w.header(tag::PARAMS);
    params_to(&mut w, p);
    w.into_bytes()
}

pub(crate) fn decode_params(key: &[u8], bytes: &[u8]) -> Result<ChainParams, ExecError> {
    decode(key, bytes, |r| {
        let c = |e| ExecError::corrupt(key, e);
        r.header("params.header", tag::PARAMS).map_err(c)?;
        params_from(key, r)
    })
}

/// The most founding organisations (trust anchors) a chain has at once.
pub const MAX_ANCHORS: usize = 1024;

/// The names of the active founding organisations, in registration order
/// (`identity/anchors`): written whenever governance registers or removes a founding
/// organisation, absent while the anchors are genesis's. Admission keys its cache of the
/// chain's trust anchors by these bytes.
pub(crate) fn encode_anchors(names: &[String]) -> Vec<u8> {
    let mut w = Writer::new();
    w.header(tag::ANCHORS);
    w.len(names.len());
    for n in names {
        w.bytes(n.as_bytes());
    }
    w.into_bytes()
}

pub(crate) fn decode_anchors(key: &[u8], bytes: &[u8]) -> Result<Vec<String>, ExecError> {
    decode(key, bytes, |r| {
        let c = |e| ExecError::corrupt(key, e);
        r.header("anchors.header", tag::ANCHORS).map_err(c)?;
        let n = r.len("anchors", MAX_ANCHORS).map_err(c)?;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            names.push(
                text(
                    "anchors[]",
                    r.bytes("anchors[]", MAX_NAME_BYTES).map_err(c)?,
                )
                .map_err(c)?,
            );
        }
        Ok(names)
    })
}

/// A u64 counter: 8 bytes big-endian; absent = 0.
pub(crate) fn decode_u64(key: &[u8], bytes: Option<&[u8]>) -> Result<u64, ExecError> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b)
            .map(u64::from_be_bytes)
            .map_err(|_| ExecError::corrupt(key, format!("counter of {} bytes, not 8", b.len()))),
    }
}

/// A 32-byte digest value.
pub(crate) fn decode_digest(key: &[u8], bytes: &[u8]) -> Result<Digest, ExecError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| ExecError::corrupt(key, format!("digest of {} bytes, not 32", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_round_trip_and_pinned_prefix() {
        let a = Attestation {
            id: Digest([1; 32]),
            digest: Digest([2; 32]),
            kind: "contract.pdf".into(),
            owner: "Agency A/alice".into(),
            metadata: "合同".into(),
            pointer: vec![9, 9],
            height: Height(7),
            timestamp_ms: 1000,
            signer: Digest([3; 32]),
        };
        let bytes = a.encode();
        assert_eq!(&bytes[..2], &[1, tag::ATTESTATION]);
        assert_eq!(Attestation::decode(b"k", &bytes).unwrap(), a);
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Attestation::decode(b"k", &long),
            Err(ExecError::CorruptRecord { .. })
        ));
        assert!(Attestation::decode(b"k", &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn known_answer_encodings() {
        // Pins the record formats of docs/execution.md §3: changing these bytes is a state
        // format change, not a test update.
        let p = ChainParams {
            expiry_window: 100,
            max_txs_per_block: 2000,
            max_tx_size: 131_072,
            max_fuel_per_tx: 0x0102,
            max_fuel_per_block: 0x0304,
        };
        assert_eq!(
            hex::encode(encode_params(&p)),
            "01830000000000000064000007d00000000000020000\
             00000000000001020000000000000304"
        );
        assert_eq!(decode_params(b"k", &encode_params(&p)).unwrap(), p);
        let s = SuspensionRecord {
            height: Height(5),
            by: Digest([0xaa; 32]),
        };
        assert_eq!(
            hex::encode(s.encode()),
            format!("01850000000000000005{}", "aa".repeat(32))
        );
        assert_eq!(SuspensionRecord::decode(b"k", &s.encode()).unwrap(), s);
    }

    #[test]
    fn parameter_change_records_are_pinned() {
        // docs/execution.md §3: PendingParams (0x89) and ParamsChange (0x8a).
        let pending = PendingParams {
            effective: Height(9),
            update: ParamsUpdate {
                expiry_window: None,
                max_txs_per_block: Some(2),
                max_tx_size: Some(8192),
                max_fuel_per_tx: None,
                max_fuel_per_block: Some(0x10000),
            },
            proposal: Digest([0x11; 32]),
            tx: types::TxId(Digest([0x22; 32])),
        };
        assert_eq!(
            hex::encode(pending.encode()),
            format!(
                "0189{}{}{}{}{}{}{}{}",
                "0000000000000009",
                "00",
                "010000000000000002",
                "010000000000002000",
                "00",
                "010000000000010000",
                "11".repeat(32),
                "22".repeat(32)
            )
        );
        assert_eq!(
            PendingParams::decode(b"k", &pending.encode()).unwrap(),
            pending
        );
        let change = ParamsChange {
            from: Height(9),
            params: ChainParams {
                expiry_window: 100,
                max_txs_per_block: 2,
                max_tx_size: 8192,
                max_fuel_per_tx: 10_000,
                max_fuel_per_block: 20_000,
            },
            proposal: Digest([0x11; 32]),
            tx: types::TxId(Digest([0x22; 32])),
        };
        assert_eq!(
            hex::encode(change.encode()),
            format!(
                "018a{}{}{}{}{}{}{}{}",
                "0000000000000009",
                "0000000000000064",
                "00000002",
                "0000000000002000",
                "0000000000002710",
                "0000000000004e20",
                "11".repeat(32),
                "22".repeat(32)
            )
        );
        assert_eq!(
            ParamsChange::decode(b"k", &change.encode()).unwrap(),
            change
        );
        // A presence flag other than 0 or 1 is a corrupt record, not a default.
        let mut bad = pending.encode();
        bad[10] = 2;
        assert!(PendingParams::decode(b"k", &bad).is_err());
        let mut long = change.encode();
        long.push(0);
        assert!(ParamsChange::decode(b"k", &long).is_err());
    }

    #[test]
    fn org_record_round_trip_and_pinned_tail() {
        // The organisation record of genesis format 2: name, CA, registration height, then
        // the sponsor (empty = founding), the removal height (0 = active) and the former CAs.
        let p = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(
            crypto_sm::rng::SeededRandom::new(7),
        ));
        let key = p.generate().unwrap();
        let ca = pki::issue_root(
            "R",
            "Org R",
            pki::Serial::from_hex("01").unwrap(),
            pki::Validity {
                not_before: pki::UnixTime(0),
                not_after: pki::UnixTime(1 << 32),
            },
            &key,
        )
        .unwrap();
        let founding = OrgRecord {
            name: "Org R".into(),
            ca_cert: ca.clone(),
            registered_at: Height(0),
            sponsor: None,
            removed_at: None,
            former_cas: vec![],
        };
        let bytes = founding.encode();
        assert_eq!(&bytes[..2], &[1, tag::ORG]);
        // ... ‖ registered_at ‖ sponsor "" ‖ removed_at 0 ‖ no former CAs.
        assert_eq!(
            hex::encode(&bytes[bytes.len() - 24..]),
            "000000000000000000000000000000000000000000000000"
        );
        assert_eq!(OrgRecord::decode(b"k", &bytes).unwrap(), founding);
        let removed = OrgRecord {
            sponsor: Some("Org S".into()),
            removed_at: Some(Height(9)),
            former_cas: vec![ca.clone()],
            ..founding.clone()
        };
        let bytes = removed.encode();
        assert_eq!(OrgRecord::decode(b"k", &bytes).unwrap(), removed);
        let mut long = bytes.clone();
        long.push(0);
        assert!(OrgRecord::decode(b"k", &long).is_err());
    }

    #[test]
    fn anchors_round_trip_and_pinned() {
        let names = vec!["Org A".to_string(), "B".to_string()];
        let bytes = encode_anchors(&names);
        assert_eq!(
            hex::encode(&bytes),
            "018b00000002000000054f726720410000000142"
        );
        assert_eq!(decode_anchors(b"k", &bytes).unwrap(), names);
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_anchors(b"k", &long).is_err());
        assert!(decode_anchors(b"k", &bytes[..bytes.len() - 1]).is_err());
    }

    /// Two records with one tag would decode as each other's (a merge once gave two 0x89).
    #[test]
    fn record_tags_are_distinct() {
        let tags = [
            tag::ORG,
            tag::ATTESTATION,
            tag::PARAMS,
            tag::VALIDATOR,
            tag::SUSPENSION,
            tag::EPOCH,
            tag::PENDING_CHANGE,
            tag::PROPOSAL,
            tag::PENDING_PARAMS,
            tag::PARAMS_CHANGE,
            tag::ANCHORS,
        ];
        let distinct: std::collections::BTreeSet<u8> = tags.iter().copied().collect();
        assert_eq!(distinct.len(), tags.len(), "{tags:02x?}");
    }

    #[test]
    fn counters() {
        assert_eq!(decode_u64(b"k", None).unwrap(), 0);
        assert_eq!(decode_u64(b"k", Some(&5u64.to_be_bytes())).unwrap(), 5);
        assert!(decode_u64(b"k", Some(&[1, 2])).is_err());
    }
}
