//! Contract determinism across validators, live (GZ-5.4, issue 14). A validator votes for a
//! block only after re-executing its transactions and finding the header's state root and
//! receipts root (crates/node `validate_block`, crates/ledger `Ledger::verify`). So a commit
//! certificate signed by two or more distinct validators on a block holding WASM contract
//! calls shows that those validators executed the calls to the same state, receipts, fuel,
//! codes and events. This check finds such blocks, from the tip backwards, and verifies their
//! certificates with the code `node-ledger-chain` uses.
//!
//! It reads only. It does not show determinism across a node's restart (a node test), and it
//! trusts a validator set other than the genesis file's only as far as GetValidators lists
//! members hashing to the set the header names: `node-ledger-chain`, in the same run, ties
//! every set to the genesis file through the certified headers that announced it.

use std::collections::BTreeMap;

use super::error::NodeCheckError;
use super::ledger::{announced_set, decode_certificate, tx_root_holds, verify_certificate};
use super::submit::ev;
use super::{NodeProbe, genesis};
use crate::checks::Evidence;
use types::{Block, BlockHeader, Decode, ValidatorSet};

const SRC: &str = "live node; expected: a validator votes only for a block it re-executed to its header's state and receipts roots (crates/node validate_block, crates/ledger Ledger::verify); certificates: docs/formats.md";

/// How many blocks below the tip (the tip included) the search reads at most.
pub const DETERMINISM_SEARCH: u64 = 10_000;
/// How many blocks with contract calls the check verifies at most.
pub const DETERMINISM_BLOCKS: usize = 16;

/// A block holding contract calls, with its header and certificate bytes.
struct Found {
    height: u64,
    block: Block,
    certificate: Vec<u8>,
    /// The calls: tx id and `contract.method`.
    calls: Vec<(String, String)>,
}

pub(super) fn contract_deterministic(p: &dyn NodeProbe) -> Vec<Evidence> {
    run(p).unwrap_or_else(|failed| vec![failed])
}

const CASE_SET: &str = "the validator set deciding the tip has more than one member";
const CASE_FIND: &str =
    "blocks holding committed calls to deployed WASM contracts, searched from the tip backwards";

/// The evidence, or the one failed case that stops the check.
fn run(p: &dyn NodeProbe) -> Result<Vec<Evidence>, Evidence> {
    let fail = |case: &str, e: NodeCheckError| ev(case, SRC, Err(e));
    let (g, _) = genesis(p).map_err(|e| fail("the genesis file", e))?;
    let genesis_set = g.validator_set().map_err(|source| {
        fail(
            "the genesis file",
            NodeCheckError::GenesisValidators { source },
        )
    })?;
    let limits = types::Limits::default();
    let st = p.status().map_err(|e| fail("status", e.into()))?;
    let tip = st.height;
    let read = |h: u64| -> Result<(Block, Vec<u8>), NodeCheckError> {
        let b = p
            .block(h)
            .map_err(|source| NodeCheckError::BlockUnavailable { height: h, source })?;
        let block = Block::from_bytes(&b.block, &limits)
            .map_err(|source| NodeCheckError::BlockUndecodable { height: h, source })?;
        // The block asked for, whose transactions are the ones its certified header commits to.
        if block.header.height.0 != h {
            return Err(NodeCheckError::HeightDiffers {
                height: h,
                says: block.header.height,
            });
        }
        tx_root_holds(h, &block)?;
        Ok((block, b.certificate))
    };
    let set_of = |hd: &BlockHeader| -> Result<(ValidatorSet, &'static str), NodeCheckError> {
        let h = hd.height.0;
        let named = match &hd.consensus {
            Some(l) => l.validator_set,
            None => {
                return Err(NodeCheckError::CertificateLinks {
                    height: h,
                    what: "a version-1 header (no validator set)".into(),
                });
            }
        };
        if named == genesis_set.hash() {
            return Ok((genesis_set.clone(), "the genesis file's set"));
        }
        announced_set(p, h, named)
            .map(|s| (s, "the set GetValidators lists for its height, hashing to the set its header names"))
            .map_err(|what| NodeCheckError::CertificateLinks { height: h, what })
    };

    let mut out = Vec::new();
    let (tip_block, tip_certificate) = read(tip).map_err(|e| fail(CASE_SET, e))?;
    let (tip_set, _) = set_of(&tip_block.header).map_err(|e| fail(CASE_SET, e))?;
    if tip_set.len() < 2 {
        return Err(fail(CASE_SET, NodeCheckError::OneValidator { height: tip }));
    }
    out.push(ev(
        CASE_SET,
        SRC,
        Ok(format!(
            "{} validators decide block {tip} (set {})",
            tip_set.len(),
            tip_set.hash()
        )),
    ));

    // From the tip backwards, at most DETERMINISM_SEARCH blocks (block 0 has no calls).
    let lowest = tip.saturating_sub(DETERMINISM_SEARCH - 1).max(1);
    let searched = tip.saturating_sub(lowest) + 1;
    // Each contract's deployment height (GetContract at the tip), or None if unknown.
    let mut deployed: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut found: Vec<Found> = Vec::new();
    let mut h = tip;
    while h >= lowest && found.len() < DETERMINISM_BLOCKS {
        let (block, certificate) = if h == tip {
            (tip_block.clone(), tip_certificate.clone())
        } else {
            read(h).map_err(|e| fail(CASE_FIND, e))?
        };
        let mut calls = Vec::new();
        for t in &block.txs {
            let c = &t.tx.call;
            // A WASM call names a fuel limit (version 2) and a contract that is no built-in
            // and that GetContract knows.
            if t.tx.fuel_limit.is_none() || execution::RESERVED_NAMES.contains(&c.contract.as_str())
            {
                continue;
            }
            let since = match deployed.get(&c.contract) {
                Some(k) => *k,
                None => {
                    let k = p
                        .contract(&c.contract)
                        .map_err(|e| fail(CASE_FIND, NodeCheckError::from(e)))?
                        .map(|info| info.deployed);
                    deployed.insert(c.contract.clone(), k);
                    k
                }
            };
            // A call counts only in a block at or above the contract's deployment.
            if since.is_some_and(|d| d <= h) {
                calls.push((
                    t.tx_id().to_string(),
                    format!("{}.{}", c.contract, c.method),
                ));
            }
        }
        if !calls.is_empty() {
            found.push(Found {
                height: h,
                block,
                certificate,
                calls,
            });
        }
        if h == lowest {
            break;
        }
        h -= 1;
    }
    if found.is_empty() {
        return Err(fail(
            CASE_FIND,
            NodeCheckError::NoContractCall {
                searched,
                from: lowest,
                to: tip,
            },
        ));
    }
    let contracts: Vec<&str> = deployed
        .iter()
        .filter(|(_, k)| k.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    out.push(ev(
        CASE_FIND,
        SRC,
        Ok(format!(
            "{} block(s) at height(s) {} (the first {DETERMINISM_BLOCKS} found at most), searching blocks {lowest}..={tip} (at most the last {DETERMINISM_SEARCH}); contracts {}",
            found.len(),
            found
                .iter()
                .map(|f| f.height.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            contracts.join(", ")
        )),
    ));
    for f in &found {
        out.push(ev(
            &format!(
                "block {}: its commit certificate is valid for the validator set of its height and signed by at least 2 distinct validators, each of which re-executed its contract calls to the header's state root and receipts root",
                f.height
            ),
            SRC,
            certified(&g.chain_id, &f.block.header, &f.certificate, &limits, &set_of).map(
                |(signers, members, whose)| {
                    format!(
                        "height {}: {} call(s) [{}]; {signers} signer(s) of {members} validators ({whose}); state root {}, receipts root {}",
                        f.height,
                        f.calls.len(),
                        f.calls
                            .iter()
                            .map(|(id, call)| format!("tx {id} {call}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        f.block.header.state_root,
                        f.block.header.receipts_root,
                    )
                },
            ),
        ));
    }
    Ok(out)
}

/// The validator set deciding a header's height, and where it came from.
type SetOf<'a> = dyn Fn(&BlockHeader) -> Result<(ValidatorSet, &'static str), NodeCheckError> + 'a;

/// Block `hd`'s certificate checked against the set its height is decided by: the number of
/// signers, the set's size and where the set came from.
fn certified(
    chain_id: &types::ChainId,
    hd: &BlockHeader,
    certificate: &[u8],
    limits: &types::Limits,
    set_of: &SetOf<'_>,
) -> Result<(usize, usize, &'static str), NodeCheckError> {
    let h = hd.height.0;
    let cert = decode_certificate(h, certificate, limits)?;
    let (set, whose) = set_of(hd)?;
    verify_certificate(chain_id, hd, &cert, &set)?;
    enough_signers(h, cert.signatures.len(), set.len())?;
    Ok((cert.signatures.len(), set.len(), whose))
}

/// At least two distinct signers (a verified certificate's signers are distinct: they are
/// strictly ordered) in a set of at least two.
pub(super) fn enough_signers(
    height: u64,
    signers: usize,
    members: usize,
) -> Result<(), NodeCheckError> {
    if members < 2 {
        return Err(NodeCheckError::OneValidator { height });
    }
    if signers < 2 {
        return Err(NodeCheckError::TooFewSigners {
            height,
            signers,
            members,
        });
    }
    Ok(())
}
