//! The chain's validator rule: which validators decide each height.
//!
//! The set of height 1 is the genesis file's. After every block the executor runs
//! [`end_block`], which derives the set of the next height from the state the block leaves:
//! the current set, changed by the governance decision due at that height (if any), without
//! every validator whose certificate is revoked by its organisation's recorded CRL,
//! suspended, or no longer issued by a registered organisation's CA. When that set differs
//! from the current one it is recorded as an epoch (`chain/epoch/<seq>`, with the
//! transactions that caused it), so a node reads the set of any height from the state, and
//! the block header commits to it (`next_validator_set`).
//!
//! What it refuses to do: let a certificate's expiry change the set (an expired validator
//! keeps counting until governance rotates or removes it; the node warns 30 days ahead), or
//! leave a height without validators (a change that would empty the set is not applied: the
//! set stays as it was, and the governance contract refuses a removal of the last validator).

use crate::error::ExecError;
use crate::keys::{self, CHAIN, GOVERNANCE, full};
use crate::records::{self, EpochRecord, PendingChange, ValidatorChange, ValidatorRecord};
use crate::view::{self, StateRead};
use crypto::Digest;
use pki::Certificate;
use types::{Height, TxId, ValidatorEntry, ValidatorSet};

/// Every epoch recorded after genesis, in order.
pub fn epochs(r: &(impl StateRead + ?Sized)) -> Result<Vec<EpochRecord>, ExecError> {
    let count_key = full(CHAIN, &keys::chain::epoch_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    (0..count).map(|seq| epoch(r, seq)).collect()
}

fn epoch(r: &(impl StateRead + ?Sized), seq: u64) -> Result<EpochRecord, ExecError> {
    let key = full(CHAIN, &keys::chain::epoch(seq));
    let bytes = r
        .read(&key)?
        .ok_or_else(|| ExecError::corrupt(&key, "counted epoch missing"))?;
    EpochRecord::decode(&key, &bytes)
}

/// The validators of the height after the state's block, ordered by certificate ID: the last
/// epoch's, or the genesis validators when none was recorded.
pub fn current(r: &(impl StateRead + ?Sized)) -> Result<Vec<ValidatorRecord>, ExecError> {
    let count_key = full(CHAIN, &keys::chain::epoch_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    let mut set = match count.checked_sub(1) {
        Some(last) => epoch(r, last)?.validators,
        None => view::genesis_validators(r)?,
    };
    sort(&mut set);
    Ok(set)
}

fn sort(set: &mut [ValidatorRecord]) {
    set.sort_by_key(|v| v.cert.fingerprint().0);
}

/// The consensus form of `validators`: each identified by the SM3 of its certificate, power 1.
pub fn to_set(validators: &[ValidatorRecord]) -> Result<ValidatorSet, ExecError> {
    ValidatorSet::new(
        validators
            .iter()
            .map(|v| ValidatorEntry {
                id: v.cert.fingerprint(),
                public_key: v.cert.public_key(),
                power: 1,
            })
            .collect(),
    )
    .map_err(ExecError::ValidatorSet)
}

/// The decided validator-set change not yet in effect.
pub fn pending(r: &(impl StateRead + ?Sized)) -> Result<Option<PendingChange>, ExecError> {
    let key = full(GOVERNANCE, &keys::governance::pending_validators());
    r.read(&key)?
        .map(|v| PendingChange::decode(&key, &v))
        .transpose()
}

/// Why `cert` may no longer decide blocks, if it may not: suspended by the chain, its
/// issuing CA no longer an active organisation's registered CA, or revoked by that CA's
/// recorded CRL. Expiry is not a reason.
pub fn exclusion(
    r: &(impl StateRead + ?Sized),
    cert: &Certificate,
) -> Result<Option<String>, ExecError> {
    let id = cert.fingerprint();
    if let Some(s) = view::suspension(r, &id)? {
        return Ok(Some(format!(
            "validator certificate {} suspended at height {}",
            id.to_hex(),
            s.height.0
        )));
    }
    let issuer = view::organisations(r)?.into_iter().find(|o| {
        o.is_active()
            && o.ca_cert.subject() == cert.issuer()
            && cert
                .authority_key_id()
                .is_none_or(|aki| o.ca_cert.subject_key_id() == Some(aki))
    });
    let Some(org) = issuer else {
        return Ok(Some(format!(
            "validator certificate {} is not issued by a registered organisation's CA (organisation removed or CA replaced)",
            id.to_hex()
        )));
    };
    if let Some(crl) = view::crl(r, &org.ca_cert.fingerprint())?
        && crl.find(&cert.serial()).is_some()
    {
        return Ok(Some(format!(
            "validator certificate {} revoked by {:?}'s CRL number {}",
            id.to_hex(),
            org.name,
            crl.number()
        )));
    }
    // Up the path: an organisation registered under a sponsor's CA stands only while that
    // sponsor is active and its CRL does not revoke the organisation's CA.
    let mut below = org;
    for _ in 0..pki::MAX_PATH_LEN {
        let Some(sponsor_name) = below.sponsor.clone() else {
            return Ok(None);
        };
        let sponsor = view::organisation(r, &sponsor_name)?.filter(|s| s.is_active());
        let Some(sponsor) = sponsor else {
            return Ok(Some(format!(
                "validator certificate {}: {:?}'s sponsor {sponsor_name:?} is no longer registered",
                id.to_hex(),
                below.name
            )));
        };
        if let Some(crl) = view::crl(r, &sponsor.ca_cert.fingerprint())?
            && crl.find(&below.ca_cert.serial()).is_some()
        {
            return Ok(Some(format!(
                "validator certificate {}: {:?}'s CA is revoked by {:?}'s CRL number {}",
                id.to_hex(),
                below.name,
                sponsor.name,
                crl.number()
            )));
        }
        below = sponsor;
    }
    Ok(None)
}

/// What the end of a block does to the validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndOfBlock {
    /// The state writes (the new epoch and its count, the consumed pending change).
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The set of the next height.
    pub next: ValidatorSet,
    /// The epoch recorded, when the set changes at the next height.
    pub epoch: Option<EpochRecord>,
}

/// The state keys whose change can exclude the validator of `cert`: its suspension, and the
/// record and CRL key of each organisation on its path (the one whose CA issued it, then its
/// sponsors).
fn standing_keys(
    r: &(impl StateRead + ?Sized),
    cert: &Certificate,
) -> Result<Vec<Vec<u8>>, ExecError> {
    let id = keys::identity::suspended(&cert.fingerprint());
    let mut out = vec![full(keys::IDENTITY, &id)];
    let orgs = view::organisations(r)?;
    let mut issuer = cert.issuer();
    for _ in 0..=pki::MAX_PATH_LEN {
        let Some(o) = orgs.iter().find(|o| {
            o.ca_cert.subject() == issuer || o.former_cas.iter().any(|c| c.subject() == issuer)
        }) else {
            break;
        };
        out.push(full(keys::IDENTITY, &keys::identity::org(&o.name)));
        out.push(full(
            keys::IDENTITY,
            &keys::identity::crl(&o.ca_cert.fingerprint()),
        ));
        for c in &o.former_cas {
            out.push(full(keys::IDENTITY, &keys::identity::crl(&c.fingerprint())));
        }
        issuer = o.ca_cert.issuer();
        if o.sponsor.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Derives the validator set of the height after `height` from the state `r` that block
/// `height` leaves. `identity_txs` are the block's successful transactions that wrote a
/// CRL, a suspension or an organisation, each with those keys: only then (or when a
/// governance change is due) are the validators' certificates judged again, and a validator
/// excluded names as causes the transactions that wrote a key its standing depends on.
pub fn end_block(
    r: &(impl StateRead + ?Sized),
    height: Height,
    identity_txs: &[(TxId, Vec<Vec<u8>>)],
) -> Result<EndOfBlock, ExecError> {
    let base = current(r)?;
    let next_height = Height(height.0.saturating_add(1));
    let mut writes = Vec::new();
    let mut next = base.clone();
    let mut causes = Vec::new();
    let mut reasons = Vec::new();
    let due = pending(r)?.filter(|p| p.effective <= next_height);
    if let Some(p) = &due {
        writes.push((
            full(GOVERNANCE, &keys::governance::pending_validators()),
            None,
        ));
        let applied = apply(&mut next, &p.change);
        // The proposal (its proposing transaction) and the vote that executed it.
        causes.push(TxId(p.proposal));
        causes.push(p.tx);
        reasons.push(format!(
            "governance proposal {}: {applied}",
            p.proposal.to_hex()
        ));
    }
    if due.is_some() || !identity_txs.is_empty() {
        let mut kept = Vec::with_capacity(next.len());
        for v in next {
            match exclusion(r, &v.cert)? {
                Some(why) => {
                    reasons.push(why);
                    let keys = standing_keys(r, &v.cert)?;
                    causes.extend(
                        identity_txs
                            .iter()
                            .filter(|(_, written)| written.iter().any(|k| keys.contains(k)))
                            .map(|(id, _)| *id),
                    );
                }
                None => kept.push(v),
            }
        }
        next = kept;
    }
    sort(&mut next);
    if next.is_empty() {
        // Never a height without validators: keep the current set, say why in the log of
        // the next change.
        next = base.clone();
    }
    let same = next.len() == base.len()
        && next
            .iter()
            .zip(&base)
            .all(|(a, b)| a.cert == b.cert && a.name == b.name);
    let set = to_set(&next)?;
    if same {
        return Ok(EndOfBlock {
            writes,
            next: set,
            epoch: None,
        });
    }
    let count_key = full(CHAIN, &keys::chain::epoch_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    causes.sort_by_key(|c| c.0.0);
    causes.dedup();
    let mut reason = reasons.join("; ");
    if reason.len() > records::MAX_REASON_LEN {
        let mut end = records::MAX_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    causes.truncate(records::MAX_CAUSES);
    let epoch = EpochRecord {
        from: next_height,
        validators: next,
        causes,
        reason,
    };
    writes.push((
        full(CHAIN, &keys::chain::epoch(count)),
        Some(epoch.encode()),
    ));
    writes.push((count_key, Some((count + 1).to_be_bytes().to_vec())));
    Ok(EndOfBlock {
        writes,
        next: set,
        epoch: Some(epoch),
    })
}

/// Applies `change` to `set`; returns what it did, in words. A change that no longer fits
/// (its validator left meanwhile, or is already there) changes nothing and says so.
fn apply(set: &mut Vec<ValidatorRecord>, change: &ValidatorChange) -> String {
    let position =
        |set: &[ValidatorRecord], id: &Digest| set.iter().position(|v| v.cert.fingerprint() == *id);
    match change {
        ValidatorChange::Add(v) => {
            let id = v.cert.fingerprint();
            if position(set, &id).is_some() {
                return format!(
                    "validator {:?} ({}) already in the set",
                    v.name,
                    id.to_hex()
                );
            }
            set.push(v.clone());
            format!("validator {:?} ({}) added", v.name, id.to_hex())
        }
        ValidatorChange::Remove(id) => match position(set, id) {
            Some(i) => {
                let v = set.remove(i);
                format!("validator {:?} ({}) removed", v.name, id.to_hex())
            }
            None => format!("validator {} was no longer in the set", id.to_hex()),
        },
        ValidatorChange::Rotate { old, new } => {
            let new_id = new.fingerprint();
            match position(set, old) {
                Some(_) if position(set, &new_id).is_some() => {
                    format!("certificate {} already in the set", new_id.to_hex())
                }
                Some(i) => {
                    set[i].cert = new.clone();
                    format!(
                        "validator {:?} rotated from {} to {}",
                        set[i].name,
                        old.to_hex(),
                        new_id.to_hex()
                    )
                }
                None => format!("validator {} was no longer in the set", old.to_hex()),
            }
        }
    }
}
