//! What the checks share: building, signing and submitting the identity's transactions,
//! expecting a refusal, and showing that nothing refused was committed.

use super::error::NodeCheckError;
use super::{NodeProbe, NodeStatus, Submission};
use crate::checks::Evidence;
use crypto::{Digest, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::{SoftSigner, SoftwareProvider};
use std::sync::Arc;
use types::{
    Block, Call, ChainId, Decode, Encode, Height, Limits, Receipt, Sender, SignedTx, Status,
    Transaction,
};

/// A case's result: a note on what was shown, or why it failed.
pub(super) type Case = Result<String, NodeCheckError>;

/// The evidence of a case: the note, or the one-line why of its error.
pub(super) fn ev(case: &str, source: &str, r: Case) -> Evidence {
    let pass = r.is_ok();
    Evidence {
        case: case.to_string(),
        source: source.to_string(),
        pass,
        detail: match r {
            Ok(note) => note,
            Err(e) => e.why(),
        },
    }
}

pub(super) fn random<const N: usize>(p: &dyn NodeProbe) -> Result<[u8; N], NodeCheckError> {
    let mut b = [0u8; N];
    p.random()
        .fill(&mut b)
        .map_err(|source| NodeCheckError::Randomness { source })?;
    Ok(b)
}

pub(super) fn anchor(digest: &Digest, metadata: &str) -> Call {
    Call {
        contract: "attestation".into(),
        method: "anchor".into(),
        args: vec![
            digest.as_bytes().to_vec(),
            b"document".to_vec(),
            metadata.as_bytes().to_vec(),
            Vec::new(),
        ],
    }
}

/// A transaction from the identity for the node's chain, expiring at the end of the window.
pub(super) fn body(
    p: &dyn NodeProbe,
    st: &NodeStatus,
    call: Call,
) -> Result<Transaction, NodeCheckError> {
    Ok(Transaction {
        fuel_limit: None,
        chain_id: ChainId::new(&st.chain_id).map_err(|source| NodeCheckError::NodeChainId {
            chain_id: st.chain_id.clone(),
            source,
        })?,
        salt: random(p)?,
        expiry: Height(st.height.saturating_add(st.expiry_window.max(1))),
        sender: Sender::Certificate(p.certificate().to_vec()),
        call,
    })
}

pub(super) fn sign(p: &dyn NodeProbe, tx: Transaction) -> Result<SignedTx, NodeCheckError> {
    SignedTx::sign(tx, p.signer(), &UserId::default())
        .map_err(|source| NodeCheckError::Signing { source })
}

pub(super) fn hex32(b: &[u8]) -> String {
    hex::encode(b)
}

/// A committed transaction: its id, height, position and decoded receipt.
pub(super) struct Committed {
    pub(super) id: [u8; 32],
    pub(super) height: u64,
    pub(super) position: u32,
    pub(super) receipt: Receipt,
    pub(super) signed: SignedTx,
}

/// Anchors a fresh random digest signed by the identity and waits for the commit.
pub(super) fn commit_anchor(
    p: &dyn NodeProbe,
    metadata: &str,
) -> Result<(Committed, Vec<u8>), NodeCheckError> {
    let st = p.status()?;
    let doc: [u8; 32] = random(p)?;
    let signed = sign(
        p,
        body(p, &st, anchor(&crypto_sm::sm3::sm3(&doc), metadata))?,
    )?;
    commit(p, signed).map(|c| (c, doc.to_vec()))
}

pub(super) fn commit(p: &dyn NodeProbe, signed: SignedTx) -> Result<Committed, NodeCheckError> {
    match p.submit(&signed.to_bytes())? {
        Submission::Committed {
            tx_id,
            height,
            position,
            receipt,
        } => {
            let receipt = Receipt::from_bytes(&receipt, &Limits::default())
                .map_err(|source| NodeCheckError::UnreadableReceipt { height, source })?;
            if let Status::Failed { code, message } = &receipt.status {
                return Err(NodeCheckError::CommittedButFailed {
                    height,
                    code: *code,
                    message: message.clone(),
                });
            }
            let id: [u8; 32] = tx_id
                .as_slice()
                .try_into()
                .map_err(|_| NodeCheckError::TxIdLength { len: tx_id.len() })?;
            Ok(Committed {
                id,
                height,
                position,
                receipt,
                signed,
            })
        }
        Submission::NotCommitted { tx_id } => Err(NodeCheckError::NotReportedCommitted { tx_id }),
        Submission::Refused { code, message } => Err(NodeCheckError::Refused { code, message }),
    }
}

/// Submits `bytes` and expects the refusal `code`.
pub(super) fn refused(p: &dyn NodeProbe, bytes: &[u8], code: &str) -> Case {
    match p.submit(bytes)? {
        Submission::Refused { code: c, message } if c == code => Ok(if message.starts_with(&c) {
            message
        } else {
            format!("{c}: {message}")
        }),
        Submission::Refused { code: got, message } => Err(NodeCheckError::WrongRefusal {
            got,
            message,
            expected: code.to_string(),
        }),
        Submission::Committed { height, .. } => Err(NodeCheckError::AcceptedCommitted {
            height,
            expected: code.to_string(),
        }),
        Submission::NotCommitted { .. } => Err(NodeCheckError::Accepted {
            expected: code.to_string(),
        }),
    }
}

/// No refused transaction is committed: the node does not know them, and no block committed
/// while they were submitted holds them.
pub(super) fn none_committed(p: &dyn NodeProbe, ids: &[[u8; 32]], before: u64) -> Case {
    if ids.is_empty() {
        return Err(NodeCheckError::NoRefusedTx);
    }
    for id in ids {
        if let Some(at) = p.transaction(id)? {
            return Err(NodeCheckError::RefusedTxCommitted {
                tx: *id,
                height: at.height,
            });
        }
    }
    let after = p.status()?.height;
    for h in before.saturating_add(1)..=after {
        let b = p.block(h)?;
        let block = Block::from_bytes(&b.block, &Limits::default())
            .map_err(|source| NodeCheckError::BlockUndecodable { height: h, source })?;
        if let Some(t) = block.txs.iter().find(|t| ids.contains(&t.tx_id().0.0)) {
            return Err(NodeCheckError::BlockHoldsRefused {
                height: h,
                tx: t.tx_id(),
            });
        }
    }
    Ok(format!(
        "{} transactions unknown to GetTransaction; height {before} before, {after} after{}",
        ids.len(),
        if after > before {
            " (blocks in between hold none of them)"
        } else {
            ""
        }
    ))
}

/// A software key from the probe's randomness, for identities the chain must not trust.
pub(super) fn throwaway_signer(p: &dyn NodeProbe) -> Result<SoftSigner, NodeCheckError> {
    for _ in 0..8 {
        let d: [u8; 32] = random(p)?;
        if let Ok(k) = PrivateKey::from_bytes(&d) {
            let seed = u64::from_be_bytes(random(p)?);
            return Ok(SoftwareProvider::new(Arc::new(SeededRandom::new(seed))).signer(k));
        }
    }
    Err(NodeCheckError::NoThrowawayKey)
}
