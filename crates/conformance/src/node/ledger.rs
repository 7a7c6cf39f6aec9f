//! The whole-chain walk (GM/T 0111 §8.5): every block from the genesis file's block 0 to the
//! tip, re-checked from its bytes.

use super::submit::{commit_anchor, ev, hex32};
use super::{LEDGER_PROGRESS_EVERY, NodeProbe, genesis};
use crate::checks::Evidence;
use crate::ledger_ref;
use pki::Certificate;
use types::{Block, BlockSeal, Decode, Encode, Sender};

const SRC_LEDGER: &str = "live node; expected: docs/formats.md §3-6 and the genesis file";

/// What one pass over the blocks found: the first failure per property.
#[derive(Default)]
pub(super) struct Walk {
    blocks: u64,
    txs: u64,
    decode: Option<String>,
    chain_id: Option<String>,
    links: Option<String>,
    tx_root: Option<String>,
    tx_count: Option<String>,
    seals: Option<String>,
    tx_sigs: Option<String>,
}

pub(super) fn first(slot: &mut Option<String>, msg: String) {
    if slot.is_none() {
        *slot = Some(msg);
    }
}

pub(super) fn ledger_chain(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (g, block0) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return vec![ev("the genesis file", SRC_LEDGER, Err(e))],
    };
    // A chain with no block above 0 has no seal to check: anchor one record first.
    let st = p.status().and_then(|st| {
        if st.height > 0 {
            return Ok(st);
        }
        commit_anchor(p, "gmchain conformance node-ledger-chain (GM/T 0111 8.5)")?;
        p.status()
    });
    let st = match st {
        Ok(s) => s,
        Err(e) => return vec![ev("status", SRC_LEDGER, Err(e))],
    };
    let limits = g.params.limits();
    out.push(ev(
        "the node's chain id and block 0 are the genesis file's",
        SRC_LEDGER,
        if st.chain_id != g.chain_id.as_str() {
            Err(format!(
                "node chain {:?}, genesis file {:?}",
                st.chain_id,
                g.chain_id.as_str()
            ))
        } else if st.genesis_hash != block0.header.hash().as_bytes() {
            Err(format!(
                "node block 0 {}, genesis file gives {}",
                hex32(&st.genesis_hash),
                block0.header.hash()
            ))
        } else {
            p.block(0).and_then(|b| {
                if b.block != block0.to_bytes() {
                    return Err("the node's block 0 differs from the genesis file's".into());
                }
                if !b.seal.is_empty() {
                    return Err("block 0 carries a seal".into());
                }
                Ok(format!(
                    "chain {}, block 0 {}, genesis hash {}",
                    g.chain_id,
                    block0.header.hash(),
                    g.hash()
                ))
            })
        },
    ));

    // Every block from 0 to the tip: on a long chain this is the auditor's cost (one GetBlock
    // per block), reported as it goes.
    let tip = st.height;
    let mut w = Walk::default();
    let mut prev: Option<(u64, [u8; 32])> = None;
    if tip >= LEDGER_PROGRESS_EVERY {
        p.progress(&format!("node-ledger-chain: walking blocks 0..={tip}"));
    }
    for h in 0..=tip {
        if h > 0 && h % LEDGER_PROGRESS_EVERY == 0 {
            p.progress(&format!("node-ledger-chain: block {h} of {tip}"));
        }
        let bytes = match p.block(h) {
            Ok(b) => b,
            Err(e) => {
                first(&mut w.decode, format!("block {h}: {e}"));
                break;
            }
        };
        let block = match Block::from_bytes(&bytes.block, &limits) {
            Ok(b) => b,
            Err(e) => {
                first(&mut w.decode, format!("block {h}: {e}"));
                prev = None;
                continue;
            }
        };
        w.blocks += 1;
        let hd = &block.header;
        if hd.height.0 != h {
            first(
                &mut w.decode,
                format!("block {h} says height {}", hd.height),
            );
        }
        if hd.chain_id != g.chain_id {
            first(
                &mut w.chain_id,
                format!("block {h} is for chain {}", hd.chain_id),
            );
        }
        let hash = ledger_ref::header_hash(hd);
        if hash != hd.hash().0.0 {
            first(
                &mut w.links,
                format!("block {h}: independent header hash differs from BlockHeader::hash"),
            );
        }
        // Parent link: to the recomputed hash of the block below (unless it did not decode).
        if h == 0 {
            if hd.parent.as_bytes() != &[0u8; 32] {
                first(&mut w.links, "block 0 has a parent".into());
            }
        } else if let Some((ph, phash)) = prev.filter(|(ph, _)| ph + 1 == h)
            && hd.parent.as_bytes() != &phash
        {
            first(
                &mut w.links,
                format!(
                    "block {h}: parent {} is not the recomputed hash {} of block {ph}",
                    hd.parent,
                    hex32(&phash),
                ),
            );
        }
        prev = Some((h, hash));
        let entries: Vec<[u8; 32]> = block.txs.iter().map(ledger_ref::entry_hash).collect();
        let root = ledger_ref::merkle_root(&entries);
        if root != hd.tx_root.0 {
            first(
                &mut w.tx_root,
                format!(
                    "block {h}: tx_root {} but its transactions give {}",
                    hd.tx_root,
                    hex32(&root)
                ),
            );
        }
        if hd.tx_count as usize != block.txs.len() {
            first(
                &mut w.tx_count,
                format!(
                    "block {h}: tx_count {} for {} transactions",
                    hd.tx_count,
                    block.txs.len()
                ),
            );
        }
        w.txs += block.txs.len() as u64;
        for t in &block.txs {
            if let Sender::Certificate(der) = &t.tx.sender {
                let ok = Certificate::from_der(der)
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        t.verify_signature(&c.public_key())
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = ok {
                    first(&mut w.tx_sigs, format!("block {h} tx {}: {e}", t.tx_id()));
                }
            }
        }
        if h == 0 {
            continue;
        }
        let seal = match BlockSeal::from_bytes(&bytes.seal, &limits) {
            Ok(s) => s,
            Err(e) => {
                first(&mut w.seals, format!("block {h}: seal: {e}"));
                continue;
            }
        };
        if seal.block_hash.as_bytes() != &hash {
            first(
                &mut w.seals,
                format!("block {h}: the seal covers {}", seal.block_hash),
            );
        } else if seal.signer != hd.proposer {
            first(
                &mut w.seals,
                format!(
                    "block {h}: sealed by {} but proposer is {}",
                    seal.signer, hd.proposer
                ),
            );
        } else {
            match g.validator(&seal.signer) {
                None => first(
                    &mut w.seals,
                    format!(
                        "block {h}: sealed by {}, not a genesis validator",
                        seal.signer
                    ),
                ),
                Some(v) => {
                    if let Err(e) = seal.verify(&v.cert.public_key()) {
                        first(&mut w.seals, format!("block {h}: seal by {}: {e}", v.name));
                    }
                }
            }
        }
    }
    let summary = format!(
        "blocks 0..={tip} (the whole chain): {} blocks, {} transactions",
        w.blocks, w.txs
    );
    let judge = |slot: Option<String>| match slot {
        Some(e) => Err(e),
        None if w.blocks == 0 => Err("no block was read".into()),
        None => Ok(summary.clone()),
    };
    out.push(ev(
        "every block decodes under the genesis limits at its height",
        SRC_LEDGER,
        judge(w.decode.clone()),
    ));
    out.push(ev(
        "every block is for the genesis chain id",
        SRC_LEDGER,
        judge(w.chain_id.clone()),
    ));
    out.push(ev(
        "each parent is the SM3 hash of the block below, recomputed independently",
        SRC_LEDGER,
        judge(w.links.clone()),
    ));
    out.push(ev(
        "each tx_root is the RFC 6962 SM3 Merkle root of its transactions' entry hashes, recomputed independently",
        SRC_LEDGER,
        judge(w.tx_root.clone()),
    ));
    out.push(ev(
        "each tx_count is the number of transactions",
        SRC_LEDGER,
        judge(w.tx_count.clone()),
    ));
    out.push(ev(
        "every block above 0 is sealed over its hash by its proposer, a genesis validator, and the SM2 seal verifies",
        SRC_LEDGER,
        if tip == 0 {
            Err("the chain has no block above 0: no seal to check".into())
        } else {
            judge(w.seals.clone())
        },
    ));
    out.push(ev(
        "every transaction with a certificate sender verifies with that certificate's key",
        SRC_LEDGER,
        judge(w.tx_sigs.clone()),
    ));
    out.push(ev(
        "the tip the node reported is the hash of its tip block",
        SRC_LEDGER,
        p.block(tip).and_then(|b| {
            let block = Block::from_bytes(&b.block, &limits).map_err(|e| e.to_string())?;
            if block.header.hash().as_bytes() == st.tip_hash.as_slice() {
                Ok(format!("tip {} at height {tip}", block.header.hash()))
            } else {
                Err(format!(
                    "status tip {}, block {tip} hashes to {}",
                    hex32(&st.tip_hash),
                    block.header.hash()
                ))
            }
        }),
    ));
    out
}
