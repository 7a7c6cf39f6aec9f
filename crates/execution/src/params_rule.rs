//! The chain's parameter rule: which chain parameters apply to each height.
//!
//! The parameters of height 1 are the genesis file's (`chain/params`). A governance `params`
//! proposal, once executed, is recorded as the pending change (`governance/pending-params`);
//! after every block the executor runs [`end_block`], which applies the change due at the next
//! height: it rewrites `chain/params` with the changed values (the others kept) and appends the
//! change to the history (`chain/params-change/<seq>`, with the proposal, the executing
//! transaction and the first height). So the parameters that apply to a block are always those
//! in the state its parent left, and admission, the executor, the proposer and a verifier read
//! them from there ([`in_force`]).
//!
//! What it refuses to do: change a parameter anywhere but at the end of a block, or apply a
//! change before its effective height.

use crate::error::ExecError;
use crate::keys::{self, CHAIN, GOVERNANCE, full};
use crate::params::ChainParams;
use crate::records::{self, ParamsChange, PendingParams};
use crate::view::StateRead;
use types::Height;

/// The chain parameters that apply to the block after a state, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamsInForce {
    /// The parameters.
    pub params: ChainParams,
    /// The first height they applied to: 0 when they are the genesis file's (from height 1).
    pub since: Height,
}

impl ParamsInForce {
    /// "since height H", or "since genesis", for messages.
    pub fn since_text(&self) -> String {
        match self.since {
            Height(0) => "since genesis".into(),
            Height(h) => format!("since height {h}"),
        }
    }
}

/// Returns the parameters that apply to the block after the state `r` (the state a block's
/// parent left applies to the block).
pub fn in_force(r: &(impl StateRead + ?Sized)) -> Result<ParamsInForce, ExecError> {
    let key = full(CHAIN, &keys::chain::params());
    in_force_or(r, None)?
        .ok_or_else(|| ExecError::corrupt(&key, "the chain parameters are missing"))
}

/// As [`in_force`]; a state without `chain/params` (one not built by `Genesis::build`, as
/// in some unit tests) gets `fallback` since genesis, or `None` without one.
pub(crate) fn in_force_or(
    r: &(impl StateRead + ?Sized),
    fallback: Option<&ChainParams>,
) -> Result<Option<ParamsInForce>, ExecError> {
    let key = full(CHAIN, &keys::chain::params());
    let params = match r.read(&key)? {
        Some(bytes) => records::decode_params(&key, &bytes)?,
        None => {
            return Ok(fallback.map(|p| ParamsInForce {
                params: *p,
                since: Height(0),
            }));
        }
    };
    let count_key = full(CHAIN, &keys::chain::params_change_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    let since = match count.checked_sub(1) {
        Some(last) => change(r, last)?.from,
        None => Height(0),
    };
    Ok(Some(ParamsInForce { params, since }))
}

fn change(r: &(impl StateRead + ?Sized), seq: u64) -> Result<ParamsChange, ExecError> {
    let key = full(CHAIN, &keys::chain::params_change(seq));
    let bytes = r
        .read(&key)?
        .ok_or_else(|| ExecError::corrupt(&key, "counted parameter change missing"))?;
    ParamsChange::decode(&key, &bytes)
}

/// Every parameter change that took effect after genesis, in order.
pub fn history(r: &(impl StateRead + ?Sized)) -> Result<Vec<ParamsChange>, ExecError> {
    let count_key = full(CHAIN, &keys::chain::params_change_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    (0..count).map(|seq| change(r, seq)).collect()
}

/// The decided parameter change not yet in effect.
pub fn pending(r: &(impl StateRead + ?Sized)) -> Result<Option<PendingParams>, ExecError> {
    let key = full(GOVERNANCE, &keys::governance::pending_params());
    r.read(&key)?
        .map(|v| PendingParams::decode(&key, &v))
        .transpose()
}

/// What the end of block `height` does to the parameters, from the state `r` the block
/// leaves: when the pending change is due at the next height, the writes that apply it
/// (`chain/params`, the history record and its count, the consumed pending record) and the
/// change; otherwise nothing.
#[allow(
    clippy::type_complexity,
    reason = "state writes are (key, value or deletion) pairs everywhere in the executor"
)]
pub fn end_block(
    r: &(impl StateRead + ?Sized),
    height: Height,
) -> Result<(Vec<(Vec<u8>, Option<Vec<u8>>)>, Option<ParamsChange>), ExecError> {
    let next_height = Height(height.0.saturating_add(1));
    let Some(p) = pending(r)?.filter(|p| p.effective <= next_height) else {
        return Ok((Vec::new(), None));
    };
    let current = in_force(r)?.params;
    let change = ParamsChange {
        from: next_height,
        params: p.update.apply_to(&current),
        proposal: p.proposal,
        tx: p.tx,
    };
    let count_key = full(CHAIN, &keys::chain::params_change_count());
    let count = records::decode_u64(&count_key, r.read(&count_key)?.as_deref())?;
    let writes = vec![
        (full(GOVERNANCE, &keys::governance::pending_params()), None),
        (
            full(CHAIN, &keys::chain::params()),
            Some(records::encode_params(&change.params)),
        ),
        (
            full(CHAIN, &keys::chain::params_change(count)),
            Some(change.encode()),
        ),
        (count_key, Some((count + 1).to_be_bytes().to_vec())),
    ];
    Ok((writes, Some(change)))
}
