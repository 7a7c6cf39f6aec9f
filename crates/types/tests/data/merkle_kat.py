#!/usr/bin/env python3
"""Independent RFC 6962 §2.1 Merkle Tree Hash with SM3, for the known-answer roots in
crates/types/tests/types.rs (merkle_roots_match_independent_implementation).

It shares no code with the Rust crate: SM3 is the pure-Python one of the PyPI package `gmssl`,
and the tree follows the RFC's recursive definition literally.

    python3 -m venv /tmp/typesenv && /tmp/typesenv/bin/pip install gmssl
    /tmp/typesenv/bin/python crates/types/tests/data/merkle_kat.py

Leaves are the ASCII strings b"leaf-0", b"leaf-1", ... (the data entries, not their hashes).
It also recomputes the KAT IDs and hashes of tests/types.rs from the pinned encodings
(SM3(domain tag || encoding), docs/formats.md §4), including the signed-transaction entry hash
(SM3("GMCHAIN-SIGNED-TX-V1\0" || signed tx)) and the one-transaction block's root over it.
"""
from gmssl import func, sm3


def h(data: bytes) -> bytes:
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def mth(entries):
    n = len(entries)
    if n == 0:
        return h(b"")  # MTH({}) = HASH()
    if n == 1:
        return h(b"\x00" + entries[0])  # MTH({d0}) = HASH(0x00 || d0)
    k = 1
    while k * 2 < n:  # the largest power of two smaller than n
        k *= 2
    return h(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


if __name__ == "__main__":
    assert h(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    for n in (0, 1, 2, 3, 4, 5, 7, 8):
        leaves = [b"leaf-%d" % i for i in range(n)]
        print('(%d, "%s"),' % (n, mth(leaves).hex()))

    tx = bytes.fromhex(
        "010100000008676f762d626a2d313031323334353637383961626364656600000000000003e802"
        + "11" * 32
        + "0000000872656769737472790000000370757400000003000000036b65790000000000000001ff"
    )
    tx_id = h(b"GMCHAIN-TX-V1\0" + tx)
    print("TX_ID_HEX", tx_id.hex())
    # The signed transaction of the KAT block: version 01, type 02 | the transaction above
    # | signature DER 71 bytes (u32 length) | signer user ID "1234567812345678" (u32 length)
    sig_der = bytes.fromhex("3045" + "022100" + "80" + "22" * 31 + "0220" + "33" * 32)
    uid = b"1234567812345678"
    signed_tx = (
        bytes.fromhex("0102") + tx
        + len(sig_der).to_bytes(4, "big") + sig_der
        + len(uid).to_bytes(4, "big") + uid
    )
    print("SIGNED_TX_HEX", signed_tx.hex())
    # The transactions root's data entries are the signed-transaction entry hashes, not the IDs.
    entry = h(b"GMCHAIN-SIGNED-TX-V1\0" + signed_tx)
    print("SIGNED_TX_ENTRY_HASH_HEX", entry.hex())
    print("BLOCK_TX_ROOT_HEX", mth([entry]).hex())
    # One byte of the signature changed (the last byte of s): the root must change.
    at = 2 + len(tx) + 4 + len(sig_der) - 1
    tampered = signed_tx[:at] + bytes([signed_tx[at] ^ 0x01]) + signed_tx[at + 1:]
    print("TAMPERED_SIG_BLOCK_TX_ROOT_HEX",
          mth([h(b"GMCHAIN-SIGNED-TX-V1\0" + tampered)]).hex())
    # version 01, type 03 | chain_id "gov-bj-1" | height 7 (u64) | tx_count 1 (u32, the one
    # transaction of the KAT block) | parent | tx_root | state_root | receipts_root
    # | timestamp 1700000000000 ms (u64) | proposer
    header = bytes.fromhex(
        "0103" + "00000008" + b"gov-bj-1".hex() + "%016x" % 7
        + "%08x" % 1
        + "aa" * 32 + "bb" * 32 + "cc" * 32 + "dd" * 32
        + "0000018bcfe56800"
        + "ee" * 32
    )
    print("HEADER_HEX", header.hex())
    print("HEADER_HASH_HEX", h(b"GMCHAIN-HEADER-V1\0" + header).hex())
    receipt = bytes.fromhex(
        "0105" + "44" * 32
        + "01000000070000000c" + "余额不足".encode().hex()
        + "000000010000000872656769737472790000000350757400000003010203"
    )
    print("RECEIPT_HASH_HEX", h(b"GMCHAIN-RECEIPT-V1\0" + receipt).hex())
