//! Independent re-implementations of the ledger's hashes, written from docs/formats.md and
//! never calling `types`' encoders or Merkle code: the checks compare gmchain's values with
//! these, so a bug shared by the encoder and its hash would still show.

use crypto_sm::sm3::sm3;
use types::{Sender, SignedTx, Transaction};

/// docs/formats.md §4: the transaction id domain tag.
pub(crate) const TX_DOMAIN: &[u8] = b"GMCHAIN-TX-V1\0";
/// docs/formats.md §4: the signed-transaction entry hash domain tag.
pub(crate) const SIGNED_TX_DOMAIN: &[u8] = b"GMCHAIN-SIGNED-TX-V1\0";
/// docs/formats.md §4: the block hash domain tag of a v1 header.
pub(crate) const HEADER_DOMAIN: &[u8] = b"GMCHAIN-HEADER-V1\0";
/// docs/formats.md §4: the block hash domain tag of a v2 header.
pub(crate) const HEADER_V2_DOMAIN: &[u8] = b"GMCHAIN-HEADER-V2\0";

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // `bytes`: u32 big-endian length, then the bytes (docs/formats.md §1).
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

/// The unsigned transaction encoding, per docs/formats.md §3 "Transaction (0x01)": version 1,
/// or version 2 with the fuel limit (u64) after the expiry (issue 14).
pub(crate) fn tx_encoding(tx: &Transaction) -> Vec<u8> {
    let version = if tx.fuel_limit.is_some() { 0x02 } else { 0x01 };
    let mut out = vec![version, 0x01]; // format version, type Transaction
    put_bytes(&mut out, tx.chain_id.as_str().as_bytes());
    out.extend_from_slice(&tx.salt);
    out.extend_from_slice(&tx.expiry.0.to_be_bytes());
    if let Some(fuel) = tx.fuel_limit {
        out.extend_from_slice(&fuel.to_be_bytes());
    }
    match &tx.sender {
        Sender::Certificate(der) => {
            out.push(0x01);
            put_bytes(&mut out, der);
        }
        Sender::Registered(d) => {
            out.push(0x02);
            out.extend_from_slice(d.as_bytes());
        }
    }
    put_bytes(&mut out, tx.call.contract.as_bytes());
    put_bytes(&mut out, tx.call.method.as_bytes());
    out.extend_from_slice(
        &u32::try_from(tx.call.args.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for a in &tx.call.args {
        put_bytes(&mut out, a);
    }
    out
}

/// The transaction id: SM3(`GMCHAIN-TX-V1\0` ‖ encoding) (GB/T 32905 via crypto_sm::sm3).
pub(crate) fn tx_id(tx: &Transaction) -> [u8; 32] {
    let mut m = TX_DOMAIN.to_vec();
    m.extend_from_slice(&tx_encoding(tx));
    sm3(&m).0
}

/// The signed encoding, per docs/formats.md §3 "SignedTx (0x02)".
pub(crate) fn signed_encoding(s: &SignedTx) -> Vec<u8> {
    let mut out = vec![0x01, 0x02];
    out.extend_from_slice(&tx_encoding(&s.tx));
    put_bytes(&mut out, &s.signature.to_der());
    put_bytes(&mut out, s.signer_user_id.as_bytes());
    out
}

/// The entry hash of a signed transaction (the data entry of the transactions root).
pub(crate) fn entry_hash(s: &SignedTx) -> [u8; 32] {
    let mut m = SIGNED_TX_DOMAIN.to_vec();
    m.extend_from_slice(&signed_encoding(s));
    sm3(&m).0
}

/// RFC 6962 §2.1 Merkle Tree Hash with SM3 (docs/formats.md §6).
pub(crate) fn merkle_root(entries: &[[u8; 32]]) -> [u8; 32] {
    fn mth(d: &[[u8; 32]]) -> [u8; 32] {
        match d.len() {
            0 => sm3(b"").0,
            1 => {
                let mut m = vec![0x00];
                m.extend_from_slice(&d[0]);
                sm3(&m).0
            }
            n => {
                // k: the largest power of two smaller than n.
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut m = vec![0x01];
                m.extend_from_slice(&mth(&d[..k]));
                m.extend_from_slice(&mth(&d[k..]));
                sm3(&m).0
            }
        }
    }
    mth(entries)
}

/// The block hash, per docs/formats.md §3-4: SM3(`GMCHAIN-HEADER-V2\0` ‖ v2 header encoding,
/// type `0x0E`, with the validator-set, next-validator-set and last-commit digests at the
/// end), or for a v1
/// header SM3(`GMCHAIN-HEADER-V1\0` ‖ v1 encoding, type `0x03`).
pub(crate) fn header_hash(h: &types::BlockHeader) -> [u8; 32] {
    let (domain, tag) = match h.consensus {
        Some(_) => (HEADER_V2_DOMAIN, 0x0E),
        None => (HEADER_DOMAIN, 0x03),
    };
    let mut out = domain.to_vec();
    out.extend_from_slice(&[0x01, tag]);
    put_bytes(&mut out, h.chain_id.as_str().as_bytes());
    out.extend_from_slice(&h.height.0.to_be_bytes());
    out.extend_from_slice(&h.tx_count.to_be_bytes());
    out.extend_from_slice(h.parent.as_bytes());
    out.extend_from_slice(h.tx_root.as_bytes());
    out.extend_from_slice(h.state_root.as_bytes());
    out.extend_from_slice(h.receipts_root.as_bytes());
    out.extend_from_slice(&h.timestamp.0.to_be_bytes());
    out.extend_from_slice(h.proposer.as_bytes());
    if let Some(c) = &h.consensus {
        out.extend_from_slice(c.validator_set.as_bytes());
        out.extend_from_slice(c.next_validator_set.as_bytes());
        out.extend_from_slice(c.last_commit.as_bytes());
    }
    sm3(&out).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::UserId;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use std::sync::Arc;
    use types::{Call, ChainId, Encode, Height};

    /// A transaction naming a fuel limit (version 2, issue 14) gets the same id and entry hash
    /// from this reference as from `types`. Before the reference knew version 2, a block holding
    /// a contract call failed node-ledger-chain's transactions root.
    #[test]
    fn version_2_transactions_hash_as_the_ledger_hashes_them() {
        let key = SoftwareProvider::new(Arc::new(SeededRandom::new(3)))
            .generate()
            .unwrap();
        for fuel_limit in [None, Some(1_000_000)] {
            let tx = Transaction {
                chain_id: ChainId::new("ref-chain").unwrap(),
                salt: [9; 16],
                expiry: Height(77),
                fuel_limit,
                sender: Sender::Registered(crypto::Digest([5; 32])),
                call: Call {
                    contract: "alpha".into(),
                    method: "inc".into(),
                    args: vec![b"x".to_vec()],
                },
            };
            assert_eq!(tx_encoding(&tx), tx.to_bytes(), "{fuel_limit:?}");
            assert_eq!(tx_id(&tx), tx.tx_id().0.0, "{fuel_limit:?}");
            let signed = SignedTx::sign(tx, &key, &UserId::default()).unwrap();
            assert_eq!(entry_hash(&signed), signed.entry_hash().0, "{fuel_limit:?}");
        }
    }
}
