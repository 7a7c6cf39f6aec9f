//! The whole-chain walk (GM/T 0111 §8.5): every block from the genesis file's block 0 to the
//! tip, re-checked from its bytes.

use super::error::NodeCheckError;
use super::submit::{commit_anchor, ev};
use super::{LEDGER_PROGRESS_EVERY, NodeProbe, genesis};
use crate::checks::Evidence;
use crate::ledger_ref;
use pki::Certificate;
use types::{
    Block, CommitCertificate, ConsensusLinks, Decode, Encode, Sender, ValidatorEntry, ValidatorSet,
};

const SRC_LEDGER: &str = "live node; expected: docs/formats.md §3-6 and the genesis file";

/// What one pass over the blocks found: the first failure per property.
#[derive(Default)]
struct Walk {
    blocks: u64,
    txs: u64,
    decode: Option<NodeCheckError>,
    chain_id: Option<NodeCheckError>,
    links: Option<NodeCheckError>,
    tx_root: Option<NodeCheckError>,
    tx_count: Option<NodeCheckError>,
    certificates: Option<NodeCheckError>,
    tx_sigs: Option<NodeCheckError>,
    /// The heights from which a set other than the genesis one decided, as followed.
    set_changes: Vec<u64>,
}

fn first(slot: &mut Option<NodeCheckError>, e: NodeCheckError) {
    if slot.is_none() {
        *slot = Some(e);
    }
}

pub(super) fn ledger_chain(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (g, block0) = match genesis(p) {
        Ok(x) => x,
        Err(e) => return vec![ev("the genesis file", SRC_LEDGER, Err(e))],
    };
    // A chain with no block above 0 has no certificate to check: anchor one record first.
    let st = p.status().map_err(NodeCheckError::from).and_then(|st| {
        if st.height > 0 {
            return Ok(st);
        }
        commit_anchor(p, "gmchain conformance node-ledger-chain (GM/T 0111 8.5)")?;
        Ok(p.status()?)
    });
    let st = match st {
        Ok(s) => s,
        Err(e) => return vec![ev("status", SRC_LEDGER, Err(e))],
    };
    // The ceiling the chain's parameters may reach (governance may raise the genesis ones),
    // as the node's store decodes; the node's admission enforces the ones in force.
    let limits = types::Limits::default();
    out.push(ev(
        "the node's chain id and block 0 are the genesis file's",
        SRC_LEDGER,
        if st.chain_id != g.chain_id.as_str() {
            Err(NodeCheckError::ChainIdDiffers {
                node: st.chain_id.clone(),
                genesis: g.chain_id.as_str().to_string(),
            })
        } else if st.genesis_hash != block0.header.hash().as_bytes() {
            Err(NodeCheckError::Block0HashDiffers {
                node: st.genesis_hash.clone(),
                genesis: block0.header.hash(),
            })
        } else {
            p.block(0).map_err(NodeCheckError::from).and_then(|b| {
                if b.block != block0.to_bytes() {
                    return Err(NodeCheckError::Block0Differs);
                }
                if !b.certificate.is_empty() {
                    return Err(NodeCheckError::Block0Certified);
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
    // The set in force: the genesis file's, then each set a certified header announced.
    let mut set = g
        .validator_set()
        .map_err(|e| format!("the genesis validators do not form a set: {e}"));
    let mut last_commit = ConsensusLinks::NO_PARENT_CERTIFICATE;
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
            Err(source) => {
                first(
                    &mut w.decode,
                    NodeCheckError::BlockUnavailable { height: h, source },
                );
                break;
            }
        };
        let block = match Block::from_bytes(&bytes.block, &limits) {
            Ok(b) => b,
            Err(source) => {
                first(
                    &mut w.decode,
                    NodeCheckError::BlockUndecodable { height: h, source },
                );
                prev = None;
                continue;
            }
        };
        w.blocks += 1;
        let hd = &block.header;
        if hd.height.0 != h {
            first(
                &mut w.decode,
                NodeCheckError::HeightDiffers {
                    height: h,
                    says: hd.height,
                },
            );
        }
        if hd.chain_id != g.chain_id {
            first(
                &mut w.chain_id,
                NodeCheckError::WrongChain {
                    height: h,
                    chain_id: hd.chain_id.clone(),
                },
            );
        }
        let hash = ledger_ref::header_hash(hd);
        if hash != hd.hash().0.0 {
            first(
                &mut w.links,
                NodeCheckError::HeaderHashDiffers { height: h },
            );
        }
        // Parent link: to the recomputed hash of the block below (unless it did not decode).
        if h == 0 {
            if hd.parent.as_bytes() != &[0u8; 32] {
                first(&mut w.links, NodeCheckError::Block0Parent);
            }
        } else if let Some((ph, phash)) = prev.filter(|(ph, _)| ph + 1 == h)
            && hd.parent.as_bytes() != &phash
        {
            first(
                &mut w.links,
                NodeCheckError::ParentLink {
                    height: h,
                    parent: hd.parent,
                    below: ph,
                    recomputed: phash,
                },
            );
        }
        prev = Some((h, hash));
        if let Err(e) = tx_root_holds(h, &block) {
            first(&mut w.tx_root, e);
        }
        if hd.tx_count as usize != block.txs.len() {
            first(
                &mut w.tx_count,
                NodeCheckError::TxCount {
                    height: h,
                    header: hd.tx_count,
                    txs: block.txs.len(),
                },
            );
        }
        w.txs += block.txs.len() as u64;
        for t in &block.txs {
            if let Sender::Certificate(der) = &t.tx.sender {
                let ok = Certificate::from_der(der)
                    .map_err(|source| NodeCheckError::BlockTxCertificate {
                        height: h,
                        tx: t.tx_id(),
                        source,
                    })
                    .and_then(|c| {
                        t.verify_signature(&c.public_key()).map_err(|source| {
                            NodeCheckError::BlockTxSignature {
                                height: h,
                                tx: t.tx_id(),
                                source,
                            }
                        })
                    });
                if let Err(e) = ok {
                    first(&mut w.tx_sigs, e);
                }
            }
        }
        if h == 0 {
            continue;
        }
        let cert = match decode_certificate(h, &bytes.certificate, &limits) {
            Ok(c) => c,
            Err(e) => {
                first(&mut w.certificates, e);
                continue;
            }
        };
        let links_ok = match (&hd.consensus, &set) {
            (None, _) => {
                Err("a version-1 header (no validator set, no parent certificate)".to_string())
            }
            (_, Err(e)) => Err(e.clone()),
            (Some(l), Ok(set)) if l.validator_set != set.hash() => Err(format!(
                "the header names validator set {}, not {} (the set in force: {})",
                l.validator_set,
                set.hash(),
                match w.set_changes.last() {
                    None => "the genesis file's".to_string(),
                    Some(from) => format!("announced for height {from} by block {}", from - 1),
                }
            )),
            (Some(l), Ok(_)) if l.last_commit != last_commit => Err(format!(
                "the header's last_commit {} is not the hash {last_commit} of block {}'s certificate",
                l.last_commit,
                h - 1
            )),
            (Some(l), Ok(set)) => Ok((set, l.next_validator_set)),
        };
        match links_ok {
            Err(what) => first(
                &mut w.certificates,
                NodeCheckError::CertificateLinks { height: h, what },
            ),
            Ok((current, next)) => {
                if let Err(e) = verify_certificate(&g.chain_id, hd, &cert, current) {
                    first(&mut w.certificates, e);
                } else if next != current.hash() && h < tip {
                    // A certified block announces the next height's set: take the members from
                    // the node, and believe them only if they hash to the announced set.
                    match announced_set(p, h + 1, next) {
                        Ok(s) => {
                            set = Ok(s);
                            w.set_changes.push(h + 1);
                        }
                        Err(what) => first(
                            &mut w.certificates,
                            NodeCheckError::CertificateLinks { height: h, what },
                        ),
                    }
                }
            }
        }
        last_commit = cert.hash();
    }
    let summary = format!(
        "blocks 0..={tip} (the whole chain): {} blocks, {} transactions",
        w.blocks, w.txs
    );
    let followed = match w.set_changes.as_slice() {
        [] => "the genesis set decided every block".to_string(),
        changes => format!(
            "{} validator-set change(s) followed, from height(s) {}",
            changes.len(),
            changes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let blocks = w.blocks;
    let judge = |slot: Option<NodeCheckError>| match slot {
        Some(e) => Err(e),
        None if blocks == 0 => Err(NodeCheckError::NoBlockRead),
        None => Ok(summary.clone()),
    };
    out.push(ev(
        "every block decodes under the limits at its height",
        SRC_LEDGER,
        judge(w.decode.take()),
    ));
    out.push(ev(
        "every block is for the genesis chain id",
        SRC_LEDGER,
        judge(w.chain_id.take()),
    ));
    out.push(ev(
        "each parent is the SM3 hash of the block below, recomputed independently",
        SRC_LEDGER,
        judge(w.links.take()),
    ));
    out.push(ev(
        "each tx_root is the RFC 6962 SM3 Merkle root of its transactions' entry hashes, recomputed independently",
        SRC_LEDGER,
        judge(w.tx_root.take()),
    ));
    out.push(ev(
        "each tx_count is the number of transactions",
        SRC_LEDGER,
        judge(w.tx_count.take()),
    ));
    out.push(ev(
        "every block above 0 has a commit certificate: SM2 precommits over its hash, in their own signing domain, from more than two thirds of the validator set its header names, which is the genesis file's set or one announced as next_validator_set by a block certified by the set before it; each header commits to its parent's certificate",
        SRC_LEDGER,
        if tip == 0 {
            Err(NodeCheckError::NoCertificateToCheck)
        } else {
            judge(w.certificates.take()).map(|s| format!("{s}; {followed}"))
        },
    ));
    out.push(ev(
        "every transaction with a certificate sender verifies with that certificate's key",
        SRC_LEDGER,
        judge(w.tx_sigs.take()),
    ));
    out.push(ev(
        "the tip the node reported is the hash of its tip block",
        SRC_LEDGER,
        p.block(tip).map_err(NodeCheckError::from).and_then(|b| {
            let block = Block::from_bytes(&b.block, &limits).map_err(|source| {
                NodeCheckError::BlockUndecodable {
                    height: tip,
                    source,
                }
            })?;
            if block.header.hash().as_bytes() == st.tip_hash.as_slice() {
                Ok(format!("tip {} at height {tip}", block.header.hash()))
            } else {
                Err(NodeCheckError::TipDiffers {
                    status_tip: st.tip_hash.clone(),
                    height: tip,
                    hash: block.header.hash(),
                })
            }
        }),
    ));
    out
}

/// Block `height`'s commit certificate from the bytes the node returned (empty: none).
/// Shared by `node-ledger-chain` and `node-contract-deterministic`.
pub(super) fn decode_certificate(
    height: u64,
    bytes: &[u8],
    limits: &types::Limits,
) -> Result<CommitCertificate, NodeCheckError> {
    if bytes.is_empty() {
        return Err(NodeCheckError::CertificateMissing { height });
    }
    CommitCertificate::from_bytes(bytes, limits)
        .map_err(|source| NodeCheckError::CertificateUndecodable { height, source })
}

/// Checks that `cert` decides the block of header `hd` on `chain_id` under `set`: known,
/// ordered, distinct signers whose SM2 precommits verify, with a quorum of the set's power.
/// Shared by `node-ledger-chain` and `node-contract-deterministic`.
pub(super) fn verify_certificate(
    chain_id: &types::ChainId,
    hd: &types::BlockHeader,
    cert: &CommitCertificate,
    set: &ValidatorSet,
) -> Result<(), NodeCheckError> {
    cert.verify(chain_id, hd.height, &hd.hash(), set)
        .map_err(|source| NodeCheckError::CertificateInvalid {
            height: hd.height.0,
            source,
        })
}

/// The set deciding `height` as the node lists it, accepted only if it hashes to `announced`
/// (a certified header's `next_validator_set`). Ids and keys come from the certificates.
pub(super) fn announced_set(
    p: &dyn NodeProbe,
    height: u64,
    announced: crypto::Digest,
) -> Result<ValidatorSet, String> {
    let listed = p.validators(height).map_err(|e| {
        format!("the header announces validator set {announced} for height {height}, and its members could not be read: {e}")
    })?;
    let mut entries = Vec::with_capacity(listed.len());
    for (i, v) in listed.iter().enumerate() {
        let cert = Certificate::from_der(&v.certificate).map_err(|e| {
            format!("GetValidators {height}: validator {i}'s certificate does not decode: {e}")
        })?;
        entries.push(ValidatorEntry {
            id: cert.fingerprint(),
            public_key: cert.public_key(),
            power: v.power,
        });
    }
    let set = ValidatorSet::new(entries).map_err(|e| {
        format!("GetValidators {height}: the listed validators do not form a set: {e}")
    })?;
    if set.hash() != announced {
        return Err(format!(
            "the header announces validator set {announced} for height {height}, but the {} validator(s) the node lists for it hash to {}",
            set.len(),
            set.hash()
        ));
    }
    Ok(set)
}

/// Whether block `h`'s transactions are the ones its header commits to: the RFC 6962 SM3 root
/// of their entry hashes, recomputed independently (`ledger_ref`), equals the header's
/// `tx_root`.
pub(super) fn tx_root_holds(h: u64, block: &Block) -> Result<(), NodeCheckError> {
    let entries: Vec<[u8; 32]> = block.txs.iter().map(ledger_ref::entry_hash).collect();
    let root = ledger_ref::merkle_root(&entries);
    if root != block.header.tx_root.0 {
        return Err(NodeCheckError::TxRoot {
            height: h,
            header: block.header.tx_root,
            computed: root,
        });
    }
    Ok(())
}
