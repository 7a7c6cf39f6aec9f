//! Reading the state at one root: [`StateView`], used by admission and the node's query API.

use crate::error::ExecError;
use crate::keys::{self, ATTESTATION, CHAIN, IDENTITY, full};
use crate::params::ChainParams;
use crate::records::{
    self, Attestation, AttestationId, OrgRecord, SuspensionRecord, ValidatorRecord,
};
use crypto::Digest;
use pki::{Certificate, Crl};
use state::NodeStore;

/// The most attestations one [`StateView::attestations_by_owner`] call returns.
pub const MAX_PAGE: u32 = 1000;

/// Read access to state by full key: the state at a root, or the executor's overlay of it.
pub trait StateRead {
    /// Returns the value under `key`, or `None`.
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError>;
}

/// The record of the chain's trust anchors (`identity/anchors`), written when governance
/// registers or removes a founding organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorList {
    /// The record's bytes (admission caches the anchors by them).
    pub bytes: Vec<u8>,
    /// The active founding organisations, in registration order.
    pub names: Vec<String>,
}

/// The state at one root, read through a node store. Cheap to create; holds no cache.
pub struct StateView<'a, S: NodeStore + ?Sized> {
    store: &'a S,
    root: Digest,
}

impl<S: NodeStore + ?Sized> core::fmt::Debug for StateView<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StateView(root {})", self.root)
    }
}

impl<S: NodeStore + ?Sized> StateRead for StateView<'_, S> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
        Ok(state::get(self.store, self.root, key)?)
    }
}

impl<'a, S: NodeStore + ?Sized> StateView<'a, S> {
    /// Returns a view of the state at `root` in `store`.
    pub fn new(store: &'a S, root: Digest) -> Self {
        StateView { store, root }
    }

    /// Returns the state root.
    pub fn root(&self) -> Digest {
        self.root
    }

    /// Returns the raw value under a full key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
        self.read(key)
    }

    /// Returns a proof of the value (or absence) under a full key, for a light client.
    pub fn prove(&self, key: &[u8]) -> Result<state::Proof, ExecError> {
        Ok(state::prove(self.store, self.root, key)?)
    }

    /// Returns the registered organisation `name`.
    pub fn organisation(&self, name: &str) -> Result<Option<OrgRecord>, ExecError> {
        organisation(self, name)
    }

    /// Returns every registered organisation, in registration order.
    pub fn organisations(&self) -> Result<Vec<OrgRecord>, ExecError> {
        organisations(self)
    }

    /// Returns the recorded CRL of each registered CA that has one, in registration order.
    pub fn crls(&self) -> Result<Vec<Crl>, ExecError> {
        let mut out = Vec::new();
        for org in self.organisations()? {
            if let Some(crl) = self.crl(&org.ca_cert.fingerprint())? {
                out.push(crl);
            }
        }
        Ok(out)
    }

    /// Returns the CRL recorded for the CA whose certificate has SM3 `issuer_fingerprint`.
    pub fn crl(&self, issuer_fingerprint: &Digest) -> Result<Option<Crl>, ExecError> {
        crl(self, issuer_fingerprint)
    }

    /// Returns the certificate recorded under its SM3 `id`.
    pub fn certificate(&self, id: &Digest) -> Result<Option<Certificate>, ExecError> {
        let key = full(IDENTITY, &keys::identity::cert(id));
        self.read(&key)?
            .map(|v| Certificate::from_der(&v).map_err(|e| ExecError::corrupt(&key, e)))
            .transpose()
    }

    /// Returns whether the certificate `id` is suspended.
    pub fn is_suspended(&self, id: &Digest) -> Result<bool, ExecError> {
        Ok(self.suspension(id)?.is_some())
    }

    /// Returns the suspension of the certificate `id`, if it is suspended.
    pub fn suspension(&self, id: &Digest) -> Result<Option<SuspensionRecord>, ExecError> {
        suspension(self, id)
    }

    /// Returns the attestation `id`.
    pub fn attestation(&self, id: &AttestationId) -> Result<Option<Attestation>, ExecError> {
        let key = self.state_key_for_attestation(id);
        self.read(&key)?
            .map(|v| Attestation::decode(&key, &v))
            .transpose()
    }

    /// Returns the attestation that anchored `digest`.
    pub fn attestation_by_digest(&self, digest: &Digest) -> Result<Option<Attestation>, ExecError> {
        let key = full(ATTESTATION, &keys::attestation::digest(digest));
        match self.read(&key)? {
            None => Ok(None),
            Some(v) => {
                let id = records::decode_digest(&key, &v)?;
                let att = self
                    .attestation(&id)?
                    .ok_or_else(|| ExecError::corrupt(&key, "digest index names no attestation"))?;
                Ok(Some(att))
            }
        }
    }

    /// Returns how many attestations `owner` (`"<organisation>/<common name>"`) anchored.
    pub fn attestation_count(&self, owner: &str) -> Result<u64, ExecError> {
        let key = full(ATTESTATION, &keys::attestation::owner_count(owner));
        records::decode_u64(&key, self.read(&key)?.as_deref())
    }

    /// Returns up to `limit` (at most [`MAX_PAGE`]) of `owner`'s attestations, in anchoring
    /// order, starting with the `start`-th (0-based).
    pub fn attestations_by_owner(
        &self,
        owner: &str,
        start: u64,
        limit: u32,
    ) -> Result<Vec<Attestation>, ExecError> {
        let count = self.attestation_count(owner)?;
        let end = start
            .saturating_add(u64::from(limit.min(MAX_PAGE)))
            .min(count);
        let mut out = Vec::new();
        for seq in start..end {
            let key = full(ATTESTATION, &keys::attestation::owner(owner, seq));
            let v = self
                .read(&key)?
                .ok_or_else(|| ExecError::corrupt(&key, "owner index entry missing"))?;
            let id = records::decode_digest(&key, &v)?;
            let att = self
                .attestation(&id)?
                .ok_or_else(|| ExecError::corrupt(&key, "owner index names no attestation"))?;
            out.push(att);
        }
        Ok(out)
    }

    /// Returns the full state key of attestation `id` (to produce a state proof with
    /// [`StateView::prove`]).
    pub fn state_key_for_attestation(&self, id: &AttestationId) -> Vec<u8> {
        keys::attestation_record(id)
    }

    /// Returns the record of the chain's trust anchors once governance changed them, or
    /// `None` while the genesis organisations are the anchors.
    pub fn anchor_list(&self) -> Result<Option<AnchorList>, ExecError> {
        let key = full(IDENTITY, &keys::identity::anchors());
        match self.read(&key)? {
            None => Ok(None),
            Some(bytes) => {
                let names = records::decode_anchors(&key, &bytes)?;
                Ok(Some(AnchorList { bytes, names }))
            }
        }
    }

    /// Returns the chain parameters in force for the block after this state: the genesis
    /// file's until a governance change applied (docs/execution.md §7.3).
    pub fn params(&self) -> Result<Option<ChainParams>, ExecError> {
        let key = full(CHAIN, &keys::chain::params());
        self.read(&key)?
            .map(|v| records::decode_params(&key, &v))
            .transpose()
    }

    /// Returns the genesis hash recorded at genesis.
    pub fn genesis_hash(&self) -> Result<Option<Digest>, ExecError> {
        let key = full(CHAIN, &keys::chain::genesis());
        self.read(&key)?
            .map(|v| records::decode_digest(&key, &v))
            .transpose()
    }

    /// Returns the validator whose certificate has SM3 `id`, as recorded at genesis.
    pub fn validator(&self, id: &Digest) -> Result<Option<ValidatorRecord>, ExecError> {
        genesis_validator(self, id)
    }

    /// Returns the validators recorded at genesis, in genesis order.
    pub fn validators(&self) -> Result<Vec<ValidatorRecord>, ExecError> {
        genesis_validators(self)
    }
}

// Reads shared by [`StateView`] and the chain's own rules, on any [`StateRead`].

/// Returns the registered organisation `name`.
pub(crate) fn organisation(
    r: &(impl StateRead + ?Sized),
    name: &str,
) -> Result<Option<OrgRecord>, ExecError> {
    let key = full(IDENTITY, &keys::identity::org(name));
    r.read(&key)?
        .map(|v| OrgRecord::decode(&key, &v))
        .transpose()
}

/// Returns every registered organisation, in registration order.
pub(crate) fn organisations(r: &(impl StateRead + ?Sized)) -> Result<Vec<OrgRecord>, ExecError> {
    let count_key = full(IDENTITY, &keys::identity::org_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    let mut out = Vec::new();
    for seq in 0..count {
        let key = full(IDENTITY, &keys::identity::org_index(seq));
        let name = r
            .read(&key)?
            .ok_or_else(|| ExecError::corrupt(&key, "organisation index entry missing"))?;
        let name = String::from_utf8(name)
            .map_err(|_| ExecError::corrupt(&key, "organisation name is not UTF-8"))?;
        let org = organisation(r, &name)?
            .ok_or_else(|| ExecError::corrupt(&key, "indexed organisation missing"))?;
        out.push(org);
    }
    Ok(out)
}

/// Returns the CRL recorded for the CA whose certificate has SM3 `issuer_fingerprint`.
pub(crate) fn crl(
    r: &(impl StateRead + ?Sized),
    issuer_fingerprint: &Digest,
) -> Result<Option<Crl>, ExecError> {
    let key = full(IDENTITY, &keys::identity::crl(issuer_fingerprint));
    r.read(&key)?
        .map(|v| Crl::from_der(&v).map_err(|e| ExecError::corrupt(&key, e)))
        .transpose()
}

/// Returns the suspension of the certificate `id`, if it is suspended.
pub(crate) fn suspension(
    r: &(impl StateRead + ?Sized),
    id: &Digest,
) -> Result<Option<SuspensionRecord>, ExecError> {
    let key = full(IDENTITY, &keys::identity::suspended(id));
    r.read(&key)?
        .map(|v| SuspensionRecord::decode(&key, &v))
        .transpose()
}

/// Returns the validator whose certificate has SM3 `id`.
pub(crate) fn genesis_validator(
    r: &(impl StateRead + ?Sized),
    id: &Digest,
) -> Result<Option<ValidatorRecord>, ExecError> {
    let key = full(CHAIN, &keys::chain::validator(id));
    r.read(&key)?
        .map(|v| ValidatorRecord::decode(&key, &v))
        .transpose()
}

/// Returns the validators recorded at genesis, in genesis order.
pub(crate) fn genesis_validators(
    r: &(impl StateRead + ?Sized),
) -> Result<Vec<ValidatorRecord>, ExecError> {
    let key = full(CHAIN, &keys::chain::validators());
    let Some(v) = r.read(&key)? else {
        return Ok(Vec::new());
    };
    if v.len() < 4 || (v.len() - 4) % 32 != 0 {
        return Err(ExecError::corrupt(&key, "validator list length"));
    }
    let mut out = Vec::new();
    for chunk in v[4..].chunks_exact(32) {
        let id = records::decode_digest(&key, chunk)?;
        let rec = genesis_validator(r, &id)?
            .ok_or_else(|| ExecError::corrupt(&key, "listed validator missing"))?;
        out.push(rec);
    }
    Ok(out)
}
