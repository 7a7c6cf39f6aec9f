//! Ledger encodings (transactions, signed transactions, headers, blocks, receipts, Merkle
//! proofs, block seals): decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use types::{Block, BlockHeader, BlockSeal, Decode, Encode, Limits, Receipt, SignedTx, Transaction};

fn round_trip<T: Decode + Encode>(data: &[u8], limits: &Limits) {
    if let Ok(v) = T::from_bytes(data, limits) {
        assert_eq!(v.to_bytes(), data, "accepted a non-canonical encoding");
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    round_trip::<Transaction>(data, &limits);
    round_trip::<SignedTx>(data, &limits);
    round_trip::<BlockHeader>(data, &limits);
    round_trip::<Block>(data, &limits);
    round_trip::<Receipt>(data, &limits);
    round_trip::<types::merkle::InclusionProof>(data, &limits);
    round_trip::<BlockSeal>(data, &limits);
});
