#!/usr/bin/env python3
"""Regenerate gmchain's known-answer vectors (sm3.json, sm4.json, sm2.json,
gmt0009.json) in the parent directory.

Every value written is either
  (a) a published value (standard / RFC annex) that is re-computed here and
      asserted equal, or
  (b) derived here and computed by at least two independent implementations
      (OpenSSL CLI, GmSSL via gmssl-pyx, gmssl pure Python, and our own
      gm_ref.py arithmetic), asserted equal.
Negative vectors are constructed here and checked to be rejected by gm_ref.py;
how OpenSSL / GmSSL react is recorded in an "observed" field.

Usage:
    python3 -m venv /tmp/vecenv
    /tmp/vecenv/bin/pip install gmssl==3.2.2 gmssl-pyx==2.1.0 cryptography==50.0.2
    /tmp/vecenv/bin/python make_vectors.py          # needs `openssl` 3.0.x on PATH
Runtime: a few minutes (SM3 of 10^6 bytes and 10^6 SM4 iterations in pure Python).
"""

import hmac as std_hmac
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gm_ref as ref  # noqa: E402
import backends as be  # noqa: E402

OUT_DIR = os.path.dirname(HERE)

OSSL = "openssl-" + be.openssl_version().split()[1]
VERS = be.package_versions()
GMSSL = "gmssl-" + VERS["gmssl"]
PYX = "gmssl-pyx-" + VERS["gmssl-pyx"]
REF = "gm_ref.py"
CRYPTO = "cryptography-" + VERS["cryptography"]

OSSL_TXT = "OpenSSL " + be.openssl_version().split()[1]
GMSSL_TXT = "gmssl %s (PyPI, pure Python)" % VERS["gmssl"]
PYX_TXT = "gmssl-pyx %s (PyPI, GmSSL C library)" % VERS["gmssl-pyx"]


def derived(*impls):
    return "gmchain-derived: computed with " + ", ".join(impls) + "; all agree"


def negative(how):
    return "gmchain-derived: negative case constructed by tools/make_vectors.py (" + how + ")"


def h(b: bytes) -> str:
    return b.hex()


def hx(v: int, n: int = 32) -> str:
    return ref.i2b(v, n).hex()


def same(label, *vals):
    first = vals[0]
    for v in vals[1:]:
        if v != first:
            raise AssertionError("%s: implementations disagree: %r" % (label, vals))
    return first


def rejected(flag) -> str:
    if flag is None:
        return "not tested (implementation refuses this input class, e.g. gmssl-pyx and an empty ID)"
    return "rejected" if not flag else "accepted"


def kstream(label: str, modulus: int = ref.N) -> int:
    """Deterministic 'chosen' scalars in [1, modulus-1]."""
    return ref.b2i(ref.sm3(b"gmchain-kat/" + label.encode())) % (modulus - 1) + 1


def write(name, algorithm, vectors):
    ids = [v["id"] for v in vectors]
    assert len(ids) == len(set(ids)), "duplicate ids in " + name
    for i in ids:
        assert i == i.lower() and " " not in i and "_" not in i, i
    path = os.path.join(OUT_DIR, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"algorithm": algorithm, "vectors": vectors}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    counts = {}
    for v in vectors:
        counts[v["kind"]] = counts.get(v["kind"], 0) + 1
    print("wrote %s: %s" % (name, counts))


class GmSm3ForStdHmac:
    """hashlib-style wrapper so that Python's stdlib `hmac` can run over
    gmssl's pure-Python SM3."""
    digest_size = 32
    block_size = 64
    name = "sm3"

    def __init__(self, data=b""):
        self._buf = bytes(data)

    def update(self, data):
        self._buf += bytes(data)

    def digest(self):
        return be.gm_sm3(self._buf)

    def copy(self):
        return GmSm3ForStdHmac(self._buf)


# =========================================================================== SM3

def sm3_vectors():
    vecs = []

    def digest_vec(vid, source, msg, expected=None, repeat=None):
        d_ossl = be.ossl_sm3(msg)
        d_pyx = be.pyx_sm3(msg)
        d_gm = be.gm_sm3(msg)
        d = same(vid, d_ossl, d_pyx, d_gm)
        if expected is not None:
            same(vid + " (published)", d, bytes.fromhex(expected))
        v = {"id": vid, "source": source, "kind": "digest"}
        if repeat:
            v["msg_repeat"] = {"hex": repeat[0], "count": repeat[1]}
        else:
            v["msg"] = h(msg)
        v["digest"] = h(d)
        v["checked_with"] = [OSSL, PYX, GMSSL]
        vecs.append(v)

    digest_vec("gbt32905-a1", "GB/T 32905-2016 Annex A.1 (example 1, message \"abc\")", b"abc",
               "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    digest_vec("gbt32905-a2", "GB/T 32905-2016 Annex A.2 (example 2, \"abcd\" x 16)", b"abcd" * 16,
               "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
    src = derived("`openssl dgst -sm3` (" + OSSL_TXT + ")", PYX_TXT, GMSSL_TXT)
    for n in (0, 55, 56, 63, 64, 65, 119, 120):
        digest_vec("sm3-a-x%d" % n, src, b"a" * n)
    digest_vec("sm3-a-x1000000", src, b"a" * 1000000, repeat=("61", 1000000))
    digest_vec("sm3-bytes-00-ff", src, bytes(range(256)))

    # ------------------------------------------------------------- HMAC-SM3
    def hmac_vec(vid, source, key, msg, expected=None, note=None):
        outs = [be.ossl_hmac_sm3(key, msg), ref.hmac_sm3(key, msg),
                std_hmac.new(key, msg, digestmod=GmSm3ForStdHmac).digest()]
        impls = [OSSL, "python-stdlib-hmac+" + GMSSL, REF]
        if key:  # gmssl-pyx refuses an empty key
            outs.append(be.pyx_hmac(key, msg))
            impls.append(PYX)
        m = same(vid, *outs)
        if expected is not None:
            same(vid + " (published)", m, bytes.fromhex(expected))
        v = {"id": vid, "source": source, "kind": "hmac", "key": h(key), "msg": h(msg), "mac": h(m)}
        if note:
            v["note"] = note
        v["checked_with"] = impls
        vecs.append(v)

    k32 = bytes(range(1, 33))
    k37 = bytes(range(1, 38))
    hmac_vec("gmt0042-d3-1", "GM/T 0042-2015 Appendix D.3 (HMAC-SM3 example 1)", k32,
             b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2,
             "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a")
    hmac_vec("gmt0042-d3-2", "GM/T 0042-2015 Appendix D.3 (HMAC-SM3 example 2)", k37, b"\xcd" * 50,
             "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae")
    hmac_vec("gmt0042-d3-3", "GM/T 0042-2015 Appendix D.3 (HMAC-SM3 example 3)", b"\x0b" * 32, b"Hi There",
             "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e")
    hmac_vec("gmt0042-d3-4", "GM/T 0042-2015 Appendix D.3 (HMAC-SM3 example 4)", b"Jefe",
             b"what do ya want for nothing?",
             "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882")
    hmac_vec("libxcrypt-hmac-sm3-long-key",
             "libxcrypt test/alg-sm3-hmac.c, custom vector (128-byte key > SM3 block size); not from a standard",
             b"It's complicated to explain, but we need some text that clearly exceeds sixtyfour "
             b"bytes of data for the key to test coverage....",
             b"What is the purpose of this test???",
             "d3dec863e316596238090eace661e6d3c4cbae43dcf0060c71f0e4e5dc5ff7d3")
    src = derived("`openssl mac -digest SM3 HMAC` (" + OSSL_TXT + ")", PYX_TXT,
                  "Python stdlib hmac over " + GMSSL_TXT)
    hmac_vec("hmac-sm3-key64", src, bytes(range(64)), b"key exactly one SM3 block (64 bytes)",
             note="key length == block size: used as is, not hashed")
    hmac_vec("hmac-sm3-key65", src, bytes(range(65)), b"key one byte longer than the SM3 block",
             note="key length 65 > 64: key is replaced by SM3(key)")
    hmac_vec("hmac-sm3-key200", src, bytes((i * 7 + 3) & 0xFF for i in range(200)), bytes(range(256)),
             note="key length 200 > 64: key is replaced by SM3(key)")
    hmac_vec("hmac-sm3-empty-key-empty-msg",
             derived("`openssl mac -digest SM3 -macopt key: HMAC` (" + OSSL_TXT + ")",
                     "Python stdlib hmac over " + GMSSL_TXT, REF), b"", b"",
             note="empty key (gmssl-pyx refuses empty keys, so it is not among the checkers)")
    hmac_vec("hmac-sm3-key1-msg1000", src, b"\x01", b"a" * 1000)

    # ------------------------------------------------------------- KDF
    def kdf_vec(vid, source, z, klen, expected=None, note=None, extra=None):
        outs = [ref.kdf(z, klen), be.gm_kdf(z, klen)]
        impls = [REF, GMSSL]
        if z:  # neither gmssl-pyx nor the openssl CLI take an empty secret
            outs += [be.pyx_kdf(z, klen), be.ossl_kdf(z, klen)]
            impls += [PYX, OSSL + " X963KDF(SM3)"]
        else:
            nblk = (klen + 31) // 32
            outs.append(b"".join(be.ossl_sm3(z + i.to_bytes(4, "big")) for i in range(1, nblk + 1))[:klen])
            impls.append(OSSL + " dgst -sm3 of Z||ct blocks")
        out = same(vid, *outs)
        if expected is not None:
            same(vid + " (published)", out, bytes.fromhex(expected))
        v = {"id": vid, "source": source, "kind": "kdf", "z": h(z), "klen": klen, "out": h(out)}
        if extra:
            v.update(extra)
        if note:
            v["note"] = note
        v["checked_with"] = impls
        vecs.append(v)

    kdf_vec("gbt32918-4-annex-a-kdf",
            "GB/T 32918.4-2016 Annex A (encryption example on the Fp-256 test curve), step t = KDF(x2||y2, 152)",
            bytes.fromhex("64d20d27d0632957f8028c1e024f6b02edf23102a566c932ae8bd613a8e865fe"
                          "58d225eca784ae300a81a2d48281a828e1cedf11c4219099840265375077bf78"),
            19, "006e30dae231b071dfad8aa379e90264491603",
            note="the KDF itself is curve independent, so this test-curve intermediate is a valid SM3-KDF vector")
    m = b"encryption standard"
    c2 = bytes.fromhex("21886ca989ca9c7d58087307ca93092d651efa")
    t_annex_c = bytes(a ^ b for a, b in zip(m, c2))
    kdf_vec("gbt32918-5-annex-c-kdf",
            "GB/T 32918.5-2017 Annex C (encryption example on sm2p256v1): z = x2||y2, t = KDF(z, 152)",
            bytes.fromhex("335e18d751e51f040e27d468138b7ab1dc86ad7f981d7d416222fd6ab3ed230d"
                          "ab743ebcfb22d64f7b6ab791f70658f25b48fa93e54064fdbfbed3f0bd847ac9"),
            19, t_annex_c.hex(),
            note="x2, y2 as published; t equals C2 XOR M of the published ciphertext")
    kdf_vec("gbt32918-5-annex-b-kdf",
            "GB/T 32918.5-2017 Annex B (key exchange example on sm2p256v1): KA = KDF(xV||yV||ZA||ZB, 128)",
            bytes.fromhex("c558b44bee5301d9f52b44d939bb59584d75b9034dd6a9fc826872109a65739f"
                          "3252b35b191d8ae01cd122c025204334c5eacf68a0cb4854c6a7d367ecad4de7"
                          "3b85a57179e11e7e513aa622991f2ca74d1807a0bd4d4b38f90987a17ac245b1"
                          "79c988d63229d97ef19fe02ca1056e01e6a7411ed24694aa8f834f4a4ab022f7"),
            16, "6c89347354de2484c60b4ab1fde4c6e5")
    src = derived(REF + " (SM3 from " + GMSSL_TXT + ")", PYX_TXT + " sm3_kdf", GMSSL_TXT + " sm3_kdf",
                  "`openssl kdf ... X963KDF` with digest SM3 (" + OSSL_TXT + ")")
    z64 = bytes(range(64))
    for klen in (1, 16, 31, 32, 33, 64, 65, 129):
        kdf_vec("kdf-z64-klen%d" % klen, src, z64, klen)
    kdf_vec("kdf-zff32-klen100", src, b"\xff" * 32, 100)
    kdf_vec("kdf-z1-klen32", src, b"\x00", 32)
    kdf_vec("kdf-empty-z-klen40", derived(REF, GMSSL_TXT + " sm3_kdf",
                                          "`openssl dgst -sm3` of 00000001 and 00000002 (" + OSSL_TXT + ")"), b"", 40,
            note="empty Z: out = SM3(00000001) || SM3(00000002)[0..8]")
    return vecs


# =========================================================================== SM4

K1 = bytes.fromhex("0123456789abcdeffedcba9876543210")
IV1 = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def sm4_vectors():
    vecs = []

    def block_vec(vid, source, key, pt, expected=None):
        c_ossl = be.ossl_sm4("ecb", key, None, pt)
        c_gm = be.gm_sm4_block(key, pt)
        c_pyx = be.pyx_cbc_nopad(key, b"\x00" * 16, pt)
        ct = same(vid, c_ossl, c_gm, c_pyx, ref.Sm4(key).enc(pt))
        same(vid + " decrypt", pt, be.ossl_sm4("ecb", key, None, ct, decrypt=True),
             be.gm_sm4_block(key, ct, decrypt=True), ref.Sm4(key).dec(ct))
        if expected:
            same(vid + " (published)", ct, bytes.fromhex(expected))
        vecs.append({"id": vid, "source": source, "kind": "block", "key": h(key), "pt": h(pt), "ct": h(ct),
                     "checked_with": [OSSL + " sm4-ecb", GMSSL, PYX + " (cbc, iv=0)"]})

    block_vec("gbt32907-a1", "GB/T 32907-2016 Annex A.1 (example 1, single encryption)", K1, K1,
              "681edf34d206965e86b3e94f536e4246")
    src = derived("`openssl enc -sm4-ecb -nopad` (" + OSSL_TXT + ")", GMSSL_TXT, PYX_TXT)
    block_vec("sm4-block-zero", src, b"\x00" * 16, b"\x00" * 16)
    block_vec("sm4-block-ff", src, b"\xff" * 16, b"\xff" * 16)

    # A.2: 10^6 iterations. With CBC and IV = 0, encrypting pt || 0^(16*(N-1))
    # yields E^N(pt) as the last block (c_i = E(0 xor c_{i-1})).
    n_it = 1000000
    data = K1 + b"\x00" * (16 * (n_it - 1))
    it_ossl = be.ossl_sm4("cbc", K1, b"\x00" * 16, data)[-16:]
    it_pyx = be.pyx_cbc_nopad(K1, b"\x00" * 16, data)[-16:]
    it_gm = be.gm_sm4_iterate(K1, K1, n_it)
    ct = same("gbt32907-a2", it_ossl, it_pyx, it_gm, bytes.fromhex("595298c7c6fd271f0402f804c33d3f66"))
    vecs.append({"id": "gbt32907-a2", "source": "GB/T 32907-2016 Annex A.2 (example 2, 1 000 000 iterations)",
                 "kind": "block-iterated", "key": h(K1), "pt": h(K1), "iterations": n_it, "ct": h(ct),
                 "checked_with": [OSSL + " (cbc trick)", PYX + " (cbc trick)", GMSSL + " (loop)"]})

    # ---------------------------------------------------------------- CBC
    src = derived("`openssl enc -sm4-cbc` (" + OSSL_TXT + ")", PYX_TXT, GMSSL_TXT, REF)

    def cbc_vec(vid, key, iv, pt, padding):
        outs = [be.ossl_sm4("cbc", key, iv, pt, pad=(padding == "pkcs7")),
                ref.cbc_encrypt(key, iv, pt, padding)]
        impls = [OSSL, REF]
        use_pyx = len(pt) > 0  # gmssl-pyx refuses an empty plaintext
        if padding == "pkcs7":
            outs.append(be.gm_cbc_pkcs7(key, iv, pt))
            impls.append(GMSSL)
            if use_pyx:
                outs.append(be.pyx_cbc_pkcs7(key, iv, pt))
                impls.append(PYX)
        else:
            outs.append(be.pyx_cbc_nopad(key, iv, pt))
            impls.append(PYX)
        ct = same(vid, *outs)
        same(vid + " decrypt", pt, be.ossl_sm4("cbc", key, iv, ct, pad=(padding == "pkcs7"), decrypt=True),
             ref.cbc_decrypt(key, iv, ct, padding),
             *([be.pyx_cbc_pkcs7_dec(key, iv, ct)] if padding == "pkcs7" and use_pyx else []))
        v = {"id": vid, "source": src, "kind": "cbc", "key": h(key), "iv": h(iv), "pt": h(pt),
             "ct": h(ct), "padding": padding}
        if not pt:
            v["note"] = "empty plaintext: one full padding block (gmssl-pyx refuses empty input)"
        v["checked_with"] = impls
        vecs.append(v)

    cbc_vec("sm4-cbc-nopad-1block", K1, IV1, bytes.fromhex("00112233445566778899aabbccddeeff"), "none")
    cbc_vec("sm4-cbc-nopad-4blocks", K1, IV1, bytes(range(64)), "none")
    for n in (0, 1, 15, 16, 17, 31, 32):
        cbc_vec("sm4-cbc-pkcs7-len%d" % n, K1, IV1, bytes((0xA0 + i) & 0xFF for i in range(n)), "pkcs7")

    # ---------------------------------------------------------------- CTR
    src = derived("`openssl enc -sm4-ctr` (" + OSSL_TXT + ")", PYX_TXT, REF)
    ctr_note = ("counter block = iv, incremented as one 128-bit big-endian integer per block "
                "(carry propagates past the low 32 bits, wraps mod 2^128)")

    def ctr_vec(vid, key, iv, pt, note=ctr_note):
        ct = same(vid, be.ossl_sm4("ctr", key, iv, pt), be.pyx_ctr(key, iv, pt), ref.ctr_crypt(key, iv, pt))
        same(vid + " decrypt", pt, be.ossl_sm4("ctr", key, iv, ct, decrypt=True), ref.ctr_crypt(key, iv, ct))
        vecs.append({"id": vid, "source": src, "kind": "ctr", "key": h(key), "iv": h(iv), "pt": h(pt),
                     "ct": h(ct), "note": note, "checked_with": [OSSL, PYX, REF]})

    ivc = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    ctr_vec("sm4-ctr-len1", K1, ivc, b"\x5a")
    ctr_vec("sm4-ctr-len16", K1, ivc, bytes(range(16)))
    ctr_vec("sm4-ctr-len17", K1, ivc, bytes(range(17)))
    ctr_vec("sm4-ctr-len100", K1, ivc, bytes((3 * i) & 0xFF for i in range(100)))
    ctr_vec("sm4-ctr-wrap32", K1, bytes.fromhex("000102030405060708090a0bfffffffe"), bytes(64),
            note=ctr_note + "; low 32 bits go fffffffe, ffffffff, then 00000000 with carry into byte 11 (0b -> 0c)")
    ctr_vec("sm4-ctr-wrap128", K1, b"\xff" * 16, bytes(48),
            note=ctr_note + "; iv = 2^128-1, so the second counter block is all zero")

    # ---------------------------------------------------------------- GCM
    rfc_pt = bytes.fromhex("aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
                           "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa")
    rfc_aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    rfc_nonce = bytes.fromhex("00001234567800000000abcd")

    def gcm_vec(vid, source, key, nonce, aad, pt, exp_ct=None, exp_tag=None):
        res = [ref.gcm_encrypt(key, nonce, aad, pt), be.crypto_gcm_encrypt(key, nonce, aad, pt)]
        impls = [REF, CRYPTO]
        if pt:  # gmssl-pyx refuses an empty plaintext
            res.append(be.pyx_gcm_encrypt(key, nonce, aad, pt))
            impls.append(PYX)
        ct = same(vid + " ct", *[r[0] for r in res])
        tag = same(vid + " tag", *[r[1] for r in res])
        if exp_ct is not None:
            same(vid + " (published ct)", ct, bytes.fromhex(exp_ct))
            same(vid + " (published tag)", tag, bytes.fromhex(exp_tag))
        same(vid + " decrypt", pt, ref.gcm_decrypt(key, nonce, aad, ct, tag),
             be.crypto_gcm_decrypt(key, nonce, aad, ct, tag),
             *([be.pyx_gcm_decrypt(key, nonce, aad, ct, tag)] if pt else []))
        vecs.append({"id": vid, "source": source, "kind": "gcm", "key": h(key), "nonce": h(nonce),
                     "aad": h(aad), "pt": h(pt), "ct": h(ct), "tag": h(tag), "checked_with": impls})
        return ct, tag

    gcm_ct, gcm_tag = gcm_vec(
        "rfc8998-a1", "RFC 8998 Appendix A.1 (SM4-GCM test vector)", K1, rfc_nonce, rfc_aad, rfc_pt,
        "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
        "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d",
        "83de3541e4c2b58177e065a9bf7b62ec")
    src = derived(REF + " (GCM per NIST SP 800-38D over the " + GMSSL_TXT + " SM4 block)", PYX_TXT + " (non-empty pt)",
                  be.crypto_version())
    n2 = bytes.fromhex("cafebabefacedbaddecaf888")
    gcm_vec("sm4-gcm-empty", src, K1, n2, b"", b"")
    gcm_vec("sm4-gcm-aad-only", src, K1, n2, rfc_aad, b"")
    gcm_vec("sm4-gcm-pt1", src, K1, n2, b"", b"\x01")
    gcm_vec("sm4-gcm-pt60-aad20", src, K1, n2, rfc_aad, bytes(range(60)))

    # ---------------------------------------------------------------- CCM
    ccm_ct, ccm_tag = ref.ccm_encrypt(K1, rfc_nonce, rfc_aad, rfc_pt)
    same("rfc8998-a2 ct", ccm_ct, bytes.fromhex(
        "48af93501fa62adbcd414cce6034d895dda1bf8f132f042098661572e7483094"
        "fd12e518ce062c98acee28d95df4416bed31a2f04476c18bb40c84a74b97dc5b"))
    same("rfc8998-a2 tag", ccm_tag, bytes.fromhex("16842d4fa186f56ab33256971fa110f4"))
    same("rfc8998-a2 decrypt", rfc_pt, ref.ccm_decrypt(K1, rfc_nonce, rfc_aad, ccm_ct, ccm_tag))
    vecs.append({"id": "rfc8998-a2", "source": "RFC 8998 Appendix A.2 (SM4-CCM test vector)", "kind": "ccm",
                 "key": h(K1), "nonce": h(rfc_nonce), "aad": h(rfc_aad), "pt": h(rfc_pt), "ct": h(ccm_ct),
                 "tag": h(ccm_tag),
                 "note": "CCM parameters: 12-byte nonce (L = 3), 16-byte tag (M = 16)",
                 "checked_with": [REF + " (CCM per NIST SP 800-38C over the gmssl SM4 block)"]})

    # ---------------------------------------------------------------- AEAD negatives
    def flip(b: bytes, i: int) -> bytes:
        b = bytearray(b)
        b[i] ^= 0x01
        return bytes(b)

    for mode, base_ct, base_tag in (("gcm", gcm_ct, gcm_tag), ("ccm", ccm_ct, ccm_tag)):
        cases = [
            ("tag", "tag: first byte xor 0x01", K1, rfc_nonce, rfc_aad, base_ct, flip(base_tag, 0)),
            ("tag-last", "tag: last byte xor 0x01", K1, rfc_nonce, rfc_aad, base_ct, flip(base_tag, 15)),
            ("aad", "aad: last byte xor 0x01", K1, rfc_nonce, flip(rfc_aad, len(rfc_aad) - 1), base_ct, base_tag),
            ("ct", "ct: byte 31 xor 0x01", K1, rfc_nonce, rfc_aad, flip(base_ct, 31), base_tag),
            ("nonce", "nonce: last byte xor 0x01", K1, flip(rfc_nonce, 11), rfc_aad, base_ct, base_tag),
        ]
        for short, what, key, nonce, aad, ct, tag in cases:
            dec = ref.gcm_decrypt if mode == "gcm" else ref.ccm_decrypt
            try:
                dec(key, nonce, aad, ct, tag)
                raise AssertionError("negative accepted by ref: " + mode + short)
            except ValueError:
                pass
            v = {"id": "rfc8998-%s-bad-%s" % ("a1" if mode == "gcm" else "a2", short),
                 "source": negative("from RFC 8998 Appendix %s with one byte changed" %
                                    ("A.1" if mode == "gcm" else "A.2")),
                 "kind": mode + "-bad-tag", "what": what, "key": h(key), "nonce": h(nonce), "aad": h(aad),
                 "pt": h(rfc_pt), "ct": h(ct), "tag": h(tag), "expected": "reject",
                 "note": "pt is the RFC plaintext; decryption must fail and release no plaintext"}
            if mode == "gcm":
                v["observed"] = {PYX: rejected(be.pyx_gcm_decrypt(key, nonce, aad, ct, tag) is not None),
                                 CRYPTO: rejected(be.crypto_gcm_decrypt(key, nonce, aad, ct, tag) is not None),
                                 REF: "rejected"}
            else:
                v["observed"] = {REF: "rejected"}
            vecs.append(v)
    return vecs


# =========================================================================== SM2

D_ANNEX = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
K_ANNEX = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
DEFAULT_ID = b"1234567812345678"
TLS_ID = b"TLSv1.3+GM+Cipher+Suite"
BIN_ID = bytes.fromhex("ff00fe80c328a0a1f5")  # not valid UTF-8
D_A_KEX = 0x81EB26E941BB5AF16DF116495F90695272AE2CD63D6C4AE1678418BE48230029
D_B_KEX = 0x785129917D45A9EA5437A59356B82338EAADDA6CEB199088F14AE10DEFA229B5
R_A_KEX = 0xD4DE15474DB74D06491C440D305E012400990F3E390C7E87153C12DB2EA60BB3
R_B_KEX = 0x7E07124814B309489125EAED101113164EBF0F3458C5BD88335C1F9D596243D6
D_R = kstream("sm2-key-r")
D_S = kstream("sm2-key-s")

SIGS = {}      # id -> dict(pub, user_id, msg, r, s) for gmt0009
ENCS = {}      # id -> dict(d, c1c3c2, msg)


def pub_checked(d):
    pub = ref.pubkey_of(d)
    same("pub(d=%x)" % d, pub, be.ossl_point_from_d(d), be.gm_point_mul(d, ref.G))
    return pub


def sm2_vectors():
    vecs = []
    vecs.append({"id": "sm2p256v1-params", "source": "GB/T 32918.5-2017 clause 4 (recommended curve parameters)",
                 "kind": "curve", "name": "sm2p256v1", "p": hx(ref.P), "a": hx(ref.A), "b": hx(ref.B),
                 "n": hx(ref.N), "gx": hx(ref.GX), "gy": hx(ref.GY), "h": 1})
    assert ref.on_curve(ref.G) and ref.point_mul(ref.N, ref.G) is ref.INF

    # ---------------------------------------------------------------- ZA
    def za_vec(vid, source, user_id, pub, expected=None, note=None):
        z = ref.za(user_id, pub)
        z2 = be.pyx_sm3((len(user_id) * 8).to_bytes(2, "big") + user_id + bytes.fromhex(
            hx(ref.A) + hx(ref.B) + hx(ref.GX) + hx(ref.GY)) + ref.encode_point(pub)[1:])
        same(vid, z, z2)
        if expected:
            same(vid + " (published)", z, bytes.fromhex(expected))
        # a signature made with this ZA must verify in OpenSSL and GmSSL
        v = {"id": vid, "source": source, "kind": "za", "user_id": h(user_id),
             "pubkey": h(ref.encode_point(pub)), "za": h(z)}
        if note:
            v["note"] = note
        v["checked_with"] = [REF, PYX + " sm3", OSSL + " verify"] + ([PYX + " sm2_verify"] if user_id else [])
        vecs.append(v)
        return z

    pubA = pub_checked(D_ANNEX)
    za_vec("gbt32918-5-annex-a-za", "GB/T 32918.5-2017 Annex A (signature example on sm2p256v1), Z_A",
           DEFAULT_ID, pubA, "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3")
    za_vec("gbt32918-5-annex-b-za", "GB/T 32918.5-2017 Annex B (key exchange example on sm2p256v1), Z_A",
           DEFAULT_ID, pub_checked(D_A_KEX), "3b85a57179e11e7e513aa622991f2ca74d1807a0bd4d4b38f90987a17ac245b1")
    za_vec("gbt32918-5-annex-b-zb", "GB/T 32918.5-2017 Annex B (key exchange example on sm2p256v1), Z_B",
           DEFAULT_ID, pub_checked(D_B_KEX), "79c988d63229d97ef19fe02ca1056e01e6a7411ed24694aa8f834f4a4ab022f7")
    za_src = derived(REF, "SM3 of the assembled input with " + PYX_TXT,
                     "a signature using this ID verified by " + OSSL_TXT + " (hexdistid) and GmSSL")
    za_ids = [
        ("za-empty-id", b"", "ENTL = 0000; note: OpenSSL 3.0 uses an EMPTY id when no distid is given"),
        ("za-tls13-id", TLS_ID, "RFC 8998 section 3.2.1 TLS 1.3 SM2 signature ID, ENTL = 00b8"),
        ("za-binary-id", BIN_ID, "non-UTF-8 binary ID, ENTL = 0048"),
        ("za-id40", bytes(range(0x30, 0x58)), "40-byte ID, ENTL = 0140 (high byte of ENTL non-zero)"),
        ("za-id8190", bytes((i * 13 + 1) & 0xFF for i in range(8190)),
         "8190-byte ID, ENTL = fff0 (the largest ID OpenSSL 3.0 accepts)"),
        ("za-id8191", bytes((i * 13 + 1) & 0xFF for i in range(8191)),
         "8191-byte ID, ENTL = fff8, the largest ID whose bit length fits ENTL's 16 bits. "
         "OpenSSL 3.0 refuses IDs of >= 8191 bytes (ossl_sm2_compute_z_digest: id_len >= UINT16_MAX/8); "
         "GmSSL accepts it; checked here without OpenSSL"),
    ]
    for vid, uid, note in za_ids:
        # prove the ZA by sign/verify with OpenSSL and GmSSL
        sg = ref.sign_with_k(D_ANNEX, uid, b"za check", kstream(vid))
        der = ref.der_sig(sg["r"], sg["s"])
        ok_ossl = be.ossl_sm2_verify(pubA, uid, b"za check", der)
        assert ok_ossl or len(uid) >= 8191, vid
        assert be.pyx_sm2_verify(pubA, uid, b"za check", der) in (True, None), vid
        za_vec(vid, za_src, uid, pubA, note=note)
        if not ok_ossl:
            vecs[-1]["checked_with"].remove(OSSL + " verify")

    # ---------------------------------------------------------------- sign
    def sign_vec(vid, source, d, user_id, msg, k, expected=None, note=None, expected_x1y1=None):
        pub = pub_checked(d)
        sg = ref.sign_with_k(d, user_id, msg, k)
        r_gm, s_gm = be.gm_sm2_sign_e(d, sg["e"], k)
        same(vid + " r", sg["r"], r_gm)
        same(vid + " s", sg["s"], s_gm)
        same(vid + " e", sg["e"], be.pyx_sm3(sg["za"] + msg))
        der = ref.der_sig(sg["r"], sg["s"])
        assert be.ossl_sm2_verify(pub, user_id, msg, der), vid + " openssl verify"
        assert be.pyx_sm2_verify(pub, user_id, msg, der) in (True, None), vid + " gmssl verify"
        assert ref.verify(pub, user_id, msg, sg["r"], sg["s"])
        if expected:
            for key, val in expected.items():
                same(vid + " published " + key, {"e": h(sg["e"]), "r": hx(sg["r"]), "s": hx(sg["s"]),
                                                 "za": h(sg["za"])}[key], val)
        v = {"id": vid, "source": source, "kind": "sign", "privkey": hx(d), "pubkey": h(ref.encode_point(pub)),
             "user_id": h(user_id), "msg": h(msg), "k": hx(k), "za": h(sg["za"]), "e": h(sg["e"]),
             "r": hx(sg["r"]), "s": hx(sg["s"])}
        x1, y1 = be.gm_point_mul(k, ref.G)
        same(vid + " x1", x1, sg["x1"])
        v["intermediate"] = {"x1": hx(x1), "y1": hx(y1)}
        if expected_x1y1:
            same(vid + " (published x1||y1)", hx(x1) + hx(y1), expected_x1y1)
        if note:
            v["note"] = note
        v["checked_with"] = [REF, GMSSL + " sign core with fixed k", OSSL + " pkeyutl -verify"] + \
            ([PYX + " sm2_verify"] if user_id else [])
        vecs.append(v)
        SIGS[vid] = {"pub": pub, "user_id": user_id, "msg": msg, "r": sg["r"], "s": sg["s"], "d": d}
        return sg

    sign_vec("gbt32918-5-annex-a-sign", "GB/T 32918.5-2017 Annex A (digital signature example on sm2p256v1)",
             D_ANNEX, DEFAULT_ID, b"message digest", K_ANNEX,
             expected={"za": "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3",
                       "e": "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640",
                       "r": "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3",
                       "s": "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"},
             expected_x1y1="04ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73"
                           "e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0",
             note="published values reproduced: public key, Z_A, e, (x1, y1) = [k]G, r, s")
    src = derived(REF + " (k fixed)", GMSSL_TXT + " signing core with the same k",
                  "verified with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt hexdistid:` (" + OSSL_TXT + ")",
                  PYX_TXT + " sm2_verify")
    sign_vec("sm2-sign-alice-id", src, D_ANNEX, b"ALICE123@YAHOO.COM", b"message digest", kstream("sign-alice"))
    sign_vec("sm2-sign-d1-empty-msg", src, 1, DEFAULT_ID, b"", kstream("sign-d1"),
             note="d = 1 (smallest valid private key, pubkey = G), empty message")
    sign_vec("sm2-sign-dmax", src, ref.N - 2, DEFAULT_ID, b"abc", kstream("sign-dmax"),
             note="d = n-2 (largest valid private key per GB/T 32918.1 6.1)")
    sign_vec("sm2-sign-tls13-id", src, D_R, TLS_ID, bytes(range(256)), kstream("sign-tls"))
    sign_vec("sm2-sign-binary-id", src, D_R, BIN_ID, b"a" * 1000, kstream("sign-bin"))
    sign_vec("sm2-sign-empty-id", src, D_R, b"", b"message digest", kstream("sign-empty-id"))
    # search k so that r (then s) has a leading zero byte -> short DER INTEGER
    for which in ("r", "s"):
        i = 0
        while True:
            k = kstream("short-%s-%d" % (which, i))
            sg = ref.sign_with_k(D_S, DEFAULT_ID, b"short " + which.encode(), k)
            if sg[which] < (1 << 248):
                break
            i += 1
        sign_vec("sm2-sign-short-" + which, src, D_S, DEFAULT_ID, b"short " + which.encode(), k,
                 note="%s < 2^248: its 32-byte big-endian form starts with 00 and its DER INTEGER is short" % which)

    # ---------------------------------------------------------------- verify-fail
    a = SIGS["gbt32918-5-annex-a-sign"]
    N = ref.N

    def vf(vid, what, pub, uid, msg, r, s, rlen=32, slen=32):
        assert not ref.verify(pub, uid, msg, r, s), vid
        der = ref.der_sig(r, s)
        v = {"id": vid, "source": negative("from GB/T 32918.5-2017 Annex A signature"), "kind": "verify-fail",
             "what": what, "pubkey": h(ref.encode_point(pub)), "user_id": h(uid), "msg": h(msg),
             "r": hx(r, rlen), "s": hx(s, slen), "expected": "reject",
             "observed": {OSSL: rejected(be.ossl_sm2_verify(pub, uid, msg, der)),
                          PYX: rejected(be.pyx_sm2_verify(pub, uid, msg, der)), REF: "rejected"}}
        vecs.append(v)

    P_, U_, M_, R_, S_ = a["pub"], a["user_id"], a["msg"], a["r"], a["s"]
    vf("sm2-vf-wrong-id", "signed with ID 1234567812345678, verified with ID 1234567812345679", P_,
       b"1234567812345679", M_, R_, S_)
    vf("sm2-vf-empty-id", "signed with the default ID 1234567812345678, verified with the empty ID", P_, b"", M_, R_, S_)
    vf("sm2-vf-tampered-msg", "message changed: last byte 't' -> 'T'", P_, U_, b"message digesT", R_, S_)
    vf("sm2-vf-wrong-pubkey", "verified against another public key (the GB/T 32918.5 Annex B P_A)",
       ref.pubkey_of(D_A_KEX), U_, M_, R_, S_)
    vf("sm2-vf-r-zero", "r = 0", P_, U_, M_, 0, S_)
    vf("sm2-vf-s-zero", "s = 0", P_, U_, M_, R_, 0)
    vf("sm2-vf-r-n", "r = n", P_, U_, M_, N, S_)
    vf("sm2-vf-s-n", "s = n", P_, U_, M_, R_, N)
    vf("sm2-vf-r-plus-n", "r + n instead of r (33-byte big-endian; congruent to the valid r mod n)",
       P_, U_, M_, R_ + N, S_, rlen=33)
    vf("sm2-vf-s-plus-n", "s + n instead of s (33-byte big-endian; congruent to the valid s mod n)",
       P_, U_, M_, R_, S_ + N, slen=33)
    vf("sm2-vf-t-zero", "s = n - r so t = (r + s) mod n = 0 (r is the valid r)", P_, U_, M_, R_, N - R_)
    vf("sm2-vf-swapped", "r and s swapped", P_, U_, M_, S_, R_)
    vf("sm2-vf-r-plus-1", "r + 1", P_, U_, M_, R_ + 1, S_)
    vf("sm2-vf-r-max", "r = 2^256 - 1 (> n)", P_, U_, M_, (1 << 256) - 1, S_)

    # ---------------------------------------------------------------- public keys
    # a point with a small x, so that x + p still fits in 32 bytes
    y0 = ref.sqrt_mod_p(ref.B)  # (0, y0) is on the curve
    assert y0 is not None and ref.on_curve((0, y0))
    x = 1
    while True:
        y = ref.sqrt_mod_p((x ** 3 + ref.A * x + ref.B) % ref.P)
        if y is not None:
            break
        x += 1
    small = (x, y)
    assert ref.on_curve(small) and x + ref.P < (1 << 256)
    # an x with no square root of x^3 + ax + b
    xb = 0
    while ref.sqrt_mod_p((xb ** 3 + ref.A * xb + ref.B) % ref.P) is not None:
        xb += 1
    unc = ref.encode_point(pubA)

    def pk_bad(vid, what, enc):
        try:
            ref.decode_point(enc)
            raise AssertionError("ref accepted " + vid)
        except ValueError:
            pass
        vecs.append({"id": vid, "source": negative("pubkey encodings"), "kind": "pubkey-invalid", "what": what,
                     "pubkey": h(enc), "expected": "reject",
                     "observed": {OSSL + " (SPKI + pkey -pubcheck)": rejected(be.ossl_pubkey_accepts(enc)),
                                  REF: "rejected"}})

    pk_bad("sm2-pk-not-on-curve", "uncompressed point with y + 1 (not on the curve)",
           b"\x04" + ref.i2b(pubA[0]) + ref.i2b(pubA[1] + 1))
    pk_bad("sm2-pk-x-ge-p", "x encoded as x + p (>= p); (x mod p, y) is on the curve (x = %d)" % x,
           b"\x04" + ref.i2b(x + ref.P) + ref.i2b(y))
    pk_bad("sm2-pk-x-eq-p", "x = p (>= p); (p mod p, y) = (0, y) is on the curve",
           b"\x04" + ref.i2b(ref.P) + ref.i2b(y0))
    pk_bad("sm2-pk-zero-point", "04 || 0^32 || 0^32 (all-zero coordinates, not on the curve)", b"\x04" + bytes(64))
    pk_bad("sm2-pk-prefix-05", "valid coordinates with prefix 05", b"\x05" + unc[1:])
    pk_bad("sm2-pk-no-prefix", "64 bytes x||y without the 04 prefix", unc[1:])
    pk_bad("sm2-pk-len66", "valid uncompressed encoding with one extra trailing byte (66 bytes)", unc + b"\x00")
    pk_bad("sm2-pk-len64-truncated", "uncompressed encoding missing its last byte (64 bytes)", unc[:-1])
    pk_bad("sm2-pk-identity", "single byte 00 (SEC1 point at infinity)", b"\x00")
    pk_bad("sm2-pk-empty", "empty encoding", b"")
    pk_bad("sm2-pk-compressed-no-sqrt", "02 || x where x^3 + ax + b is a non-residue (x = %d)" % xb,
           b"\x02" + ref.i2b(xb))
    pk_bad("sm2-pk-compressed-x-ge-p", "02 || (x + p) with x = %d a valid abscissa" % x,
           b"\x02" + ref.i2b(x + ref.P))
    pk_bad("sm2-pk-compressed-len32", "compressed prefix 02 with a 31-byte x (32 bytes in all)",
           b"\x02" + ref.i2b(pubA[0])[1:])
    hybA = ref.encode_point(pubA, hybrid=True)
    pk_bad("sm2-pk-hybrid-not-on-curve", "hybrid point with y + 2 (parity kept, not on the curve)",
           hybA[:1] + ref.i2b(pubA[0]) + ref.i2b(pubA[1] + 2))
    pk_bad("sm2-pk-hybrid-x-ge-p", "hybrid point with x encoded as x + p (>= p); (x mod p, y) is on the curve (x = %d)"
           % x, bytes([6 | (y & 1)]) + ref.i2b(x + ref.P) + ref.i2b(y))
    pk_bad("sm2-pk-hybrid-len33", "hybrid prefix with x only (33 bytes)", hybA[:33])
    pk_bad("sm2-pk-hybrid-len66", "valid hybrid encoding with one extra trailing byte (66 bytes)", hybA + b"\x00")

    def pk_good(vid, source, d):
        pub = pub_checked(d)
        for comp, hyb in ((True, False), (False, False), (False, True)):
            enc = ref.encode_point(pub, comp, hyb)
            same(vid, ref.decode_point(enc), pub)
        comp = ref.encode_point(pub, True)
        unc = ref.encode_point(pub)
        hyb = ref.encode_point(pub, hybrid=True)
        ossl_unc = be.ossl_uncompress_spki(be.spki_der(comp))
        same(vid + " openssl uncompress", ossl_unc, be.spki_der(unc))
        # OpenSSL writes the hybrid form itself, and reads ours back to the same point.
        same(vid + " openssl hybrid", be.ossl_convert_spki(be.spki_der(unc), "hybrid"), be.spki_der(hyb))
        same(vid + " openssl reads hybrid", be.ossl_uncompress_spki(be.spki_der(hyb)), be.spki_der(unc))
        vecs.append({"id": vid, "source": source, "kind": "pubkey-valid", "privkey": hx(d),
                     "compressed": h(comp), "uncompressed": h(unc), "hybrid": h(hyb),
                     "checked_with": [REF, OSSL + " ec -conv_form uncompressed|hybrid", GMSSL + " [d]G"]})
        return comp[0]

    pk_src = derived(REF, "`openssl ec -conv_form uncompressed|hybrid` (" + OSSL_TXT + ")", GMSSL_TXT + " [d]G")
    prefixes = set()
    prefixes.add(pk_good("sm2-pk-valid-annex-a", pk_src + "; key of GB/T 32918.5-2017 Annex A", D_ANNEX))
    prefixes.add(pk_good("sm2-pk-valid-annex-b-pa", pk_src + "; P_A of GB/T 32918.5-2017 Annex B", D_A_KEX))
    prefixes.add(pk_good("sm2-pk-valid-annex-b-pb", pk_src + "; P_B of GB/T 32918.5-2017 Annex B", D_B_KEX))
    prefixes.add(pk_good("sm2-pk-valid-generator", pk_src + "; d = 1, the point is G", 1))
    prefixes.add(pk_good("sm2-pk-valid-dr", pk_src, D_R))
    assert prefixes == {2, 3}, prefixes

    # The parity bit of y (GB/T 32918.1-2016 4.2.10): a compressed point names y only by its
    # parity, so the other prefix is another valid point, -P = (x, p - y), never P; a hybrid point
    # carries y and its parity, and must be rejected when they disagree.
    def point_parity(vid, source, d):
        pub = pub_checked(d)
        neg = (pub[0], ref.P - pub[1])
        assert ref.on_curve(neg) and neg != pub
        flipped = bytes([ref.encode_point(pub, True)[0] ^ 1]) + ref.i2b(pub[0])
        same(vid + " flipped", ref.decode_point(flipped), neg)
        same(vid + " openssl flipped", be.ossl_uncompress_spki(be.spki_der(flipped)),
             be.spki_der(ref.encode_point(neg)))
        hyb_bad = bytes([ref.encode_point(pub, hybrid=True)[0] ^ 1]) + ref.i2b(pub[0]) + ref.i2b(pub[1])
        try:
            ref.decode_point(hyb_bad)
            raise AssertionError("ref accepted " + vid + " hybrid")
        except ValueError:
            pass
        vecs.append({"id": vid, "source": source, "kind": "point-parity", "privkey": hx(d),
                     "what": "y is %s: compressed prefix %02x names -P; hybrid prefix %02x contradicts y"
                             % ("odd" if pub[1] & 1 else "even", flipped[0], hyb_bad[0]),
                     "uncompressed": h(ref.encode_point(pub)), "compressed_flipped": h(flipped),
                     "negated": h(ref.encode_point(neg)), "hybrid_flipped": h(hyb_bad), "expected": "reject",
                     "observed": {OSSL + " (SPKI + pkey -pubcheck) hybrid_flipped":
                                  rejected(be.ossl_pubkey_accepts(hyb_bad)), REF: "rejected"},
                     "checked_with": [REF, OSSL + " ec -conv_form uncompressed (compressed_flipped -> negated)"]})
        return pub[1] & 1

    par_src = negative("point encodings: the y parity bit, GB/T 32918.1-2016 4.2.10")
    parities = set()
    parities.add(point_parity("sm2-pt-parity-annex-a", par_src + "; key of GB/T 32918.5-2017 Annex A", D_ANNEX))
    parities.add(point_parity("sm2-pt-parity-generator", par_src + "; d = 1, the point is G", 1))
    parities.add(point_parity("sm2-pt-parity-annex-b-pa", par_src + "; P_A of GB/T 32918.5-2017 Annex B", D_A_KEX))
    assert parities == {0, 1}, parities

    # ---------------------------------------------------------------- private keys
    for vid, d, what in (("sm2-sk-zero", 0, "d = 0"), ("sm2-sk-n-minus-1", N - 1, "d = n-1 (1 + d = n has no inverse mod n)"),
                         ("sm2-sk-n", N, "d = n"), ("sm2-sk-n-plus-1", N + 1, "d = n+1 (> n)"),
                         ("sm2-sk-max", (1 << 256) - 1, "d = 2^256 - 1")):
        assert not ref.valid_privkey(d)
        vecs.append({"id": vid, "source": negative("GB/T 32918.1-2016 6.1 requires d in [1, n-2]"),
                     "kind": "privkey-invalid", "d": hx(d), "what": what, "expected": "reject",
                     "observed": {OSSL + " pkey -check": rejected(be.ossl_privkey_check(d)), REF: "rejected"}})
    assert ref.valid_privkey(N - 2) and be.ossl_privkey_check(N - 2) and be.ossl_privkey_check(1)

    # ---------------------------------------------------------------- encrypt
    def enc_vec(vid, source, d, msg, k, expected=None, note=None, expected_x2y2=None):
        pub = pub_checked(d)
        e = ref.encrypt_with_k(pub, msg, k)
        ct = e["c1c3c2"]
        der = ref.der_cipher(ct)
        same(vid + " decrypt", msg, ref.decrypt(d, ct), be.ossl_sm2_decrypt(d, der), be.pyx_sm2_decrypt(d, der),
             be.gm_sm2_decrypt_c1c3c2(d, ct))
        # gmssl does not check C3: check C1 and C3 independently
        same(vid + " C1", ct[:65], ref.encode_point(be.gm_point_mul(k, ref.G)))
        x2, y2 = be.gm_point_mul(k, pub)
        same(vid + " C3", ct[65:97], be.pyx_sm3(ref.i2b(x2) + msg + ref.i2b(y2)))
        if expected:
            same(vid + " (published)", h(ct), expected)
        if expected_x2y2:
            same(vid + " (published x2||y2)", hx(e["x2"]) + hx(e["y2"]), expected_x2y2)
        v = {"id": vid, "source": source, "kind": "encrypt", "privkey": hx(d), "pubkey": h(ref.encode_point(pub)),
             "msg": h(msg), "k": hx(k), "c1c3c2": h(ct),
             "intermediate": {"x2": hx(e["x2"]), "y2": hx(e["y2"]), "t": h(e["t"])}}
        if note:
            v["note"] = note
        v["checked_with"] = [REF, OSSL + " pkeyutl -decrypt (DER)", PYX + " sm2_decrypt (DER)",
                             GMSSL + " decrypt (mode=1, C1C3C2)"]
        vecs.append(v)
        ENCS[vid] = {"d": d, "c1c3c2": ct, "msg": msg}
        return e

    enc_vec("gbt32918-5-annex-c-encrypt",
            "GB/T 32918.5-2017 Annex C (message encryption example on sm2p256v1), ciphertext as C1||C3||C2",
            D_ANNEX, b"encryption standard", K_ANNEX,
            expected="04" "04ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73"
                     "e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0"
                     "59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766"
                     "21886ca989ca9c7d58087307ca93092d651efa",
            expected_x2y2="335e18d751e51f040e27d468138b7ab1dc86ad7f981d7d416222fd6ab3ed230d"
                          "ab743ebcfb22d64f7b6ab791f70658f25b48fa93e54064fdbfbed3f0bd847ac9",
            note="C1, C3 and C2 are the published annex values, concatenated here as C1||C3||C2 "
                 "(GB/T 32918.4-2016 ordering); the intermediate x2, y2 are also as published")
    src = derived(REF + " (k fixed)", "decrypted by `openssl pkeyutl -decrypt` (" + OSSL_TXT + ")",
                  PYX_TXT + " sm2_decrypt", GMSSL_TXT + " decrypt and [k]G, [k]P_B")
    enc_vec("sm2-enc-len1", src, D_R, b"\x00", kstream("enc-1"))
    enc_vec("sm2-enc-len32", src, D_R, bytes(range(32)), kstream("enc-32"), note="|M| = 32: exactly one KDF block")
    enc_vec("sm2-enc-len33", src, D_R, bytes(range(33)), kstream("enc-33"), note="|M| = 33: two KDF blocks")
    enc_vec("sm2-enc-len100", src, D_R, b"gmchain " * 12 + b"sm2!", kstream("enc-100"))
    i = 0
    while True:
        k = kstream("enc-short-x1-%d" % i)
        if ref.point_mul(k, ref.G)[0] < (1 << 248):
            break
        i += 1
    enc_vec("sm2-enc-short-x1", src, D_R, b"short x1", k,
            note="x1 < 2^248: C1's x starts with 00, its DER INTEGER in SM2Cipher is short")

    # ---------------------------------------------------------------- decrypt-fail
    base = ENCS["gbt32918-5-annex-c-encrypt"]["c1c3c2"]

    def flip(b, i):
        b = bytearray(b)
        b[i] ^= 0x01
        return bytes(b)

    def df(vid, what, d, ct, der_ok=True):
        try:
            ref.decrypt(d, ct)
            raise AssertionError("ref accepted " + vid)
        except ValueError:
            pass
        obs = {REF: "rejected"}
        if der_ok:
            der = ref.der_cipher(ct)
            obs[OSSL + " (DER form)"] = rejected(be.ossl_sm2_decrypt(d, der) is not None)
            obs[PYX + " (DER form)"] = rejected(be.pyx_sm2_decrypt(d, der) is not None)
        vecs.append({"id": vid, "source": negative("from GB/T 32918.5-2017 Annex C ciphertext"),
                     "kind": "decrypt-fail", "what": what, "privkey": hx(d), "ciphertext": h(ct),
                     "expected": "reject", "observed": obs})

    df("sm2-df-c3-flipped", "C3 byte 0 xor 0x01", D_ANNEX, flip(base, 65))
    df("sm2-df-c2-flipped", "C2 byte 0 xor 0x01 (C3 check fails)", D_ANNEX, flip(base, 97))
    df("sm2-df-c1-not-on-curve", "C1 y + 1 (not on the curve)", D_ANNEX,
       base[:33] + ref.i2b(ref.b2i(base[33:65]) + 1) + base[65:])
    df("sm2-df-c1-zero", "C1 = 04 || 0^64 (all-zero coordinates)", D_ANNEX, b"\x04" + bytes(64) + base[65:])
    df("sm2-df-c1-infinity", "C1 = 00 (SEC1 encoding of the point at infinity) followed by C3||C2",
       D_ANNEX, b"\x00" + base[65:], der_ok=False)
    df("sm2-df-c1-prefix-05", "C1 prefix 05 instead of 04", D_ANNEX, b"\x05" + base[1:], der_ok=False)
    df("sm2-df-truncated-c2", "last byte of C2 removed", D_ANNEX, base[:-1])
    df("sm2-df-truncated-96", "only C1 and 31 bytes of C3 (96 bytes)", D_ANNEX, base[:96], der_ok=False)
    df("sm2-df-no-c2", "C1||C3 only, empty C2 (97 bytes)", D_ANNEX, base[:97], der_ok=False)
    df("sm2-df-wrong-key", "decrypted with another private key (d_A of Annex B)", D_A_KEX, base)
    df("sm2-df-c1c2c3-order", "the same ciphertext in C1||C2||C3 order", D_ANNEX,
       base[:65] + base[97:] + base[65:97])

    # ---------------------------------------------------------------- key exchange
    def kex_vec(vid, source, dA, dB, idA, idB, rA, rB, klen, expected=None, note=None):
        kx = ref.key_exchange(dA, dB, idA, idB, rA, rB, klen)
        # cross-checks of the building blocks
        for nm, d in (("PA", dA), ("PB", dB), ("RA", rA), ("RB", rB)):
            same(vid + " " + nm, kx[nm], be.ossl_point_from_d(d), be.gm_point_mul(d, ref.G))
        V = be.gm_point_mul(kx["tB"], be.gm_point_add(kx["PA"], be.gm_point_mul(kx["x1bar"], kx["RA"])))
        U = be.gm_point_mul(kx["tA"], be.gm_point_add(kx["PB"], be.gm_point_mul(kx["x2bar"], kx["RB"])))
        same(vid + " V", kx["V"], V, U)
        xV, yV = ref.i2b(V[0]), ref.i2b(V[1])
        same(vid + " K", kx["KA"], be.ossl_kdf(xV + yV + kx["ZA"] + kx["ZB"], klen),
             be.pyx_kdf(xV + yV + kx["ZA"] + kx["ZB"], klen))
        inner = be.pyx_sm3(xV + kx["ZA"] + kx["ZB"] + ref.encode_point(kx["RA"])[1:] + ref.encode_point(kx["RB"])[1:])
        same(vid + " SB", kx["SB"], be.pyx_sm3(b"\x02" + yV + inner))
        same(vid + " SA", kx["SA"], be.pyx_sm3(b"\x03" + yV + inner))
        got = {"za": h(kx["ZA"]), "zb": h(kx["ZB"]), "k": h(kx["KA"]), "sb": h(kx["SB"]), "sa": h(kx["SA"]),
               "xv": hx(kx["V"][0]), "yv": hx(kx["V"][1]), "inner_hash": h(kx["inner"]),
               "ra": h(ref.encode_point(kx["RA"])), "rb": h(ref.encode_point(kx["RB"])),
               "pa": h(ref.encode_point(kx["PA"])), "pb": h(ref.encode_point(kx["PB"]))}
        if expected:
            for key, val in expected.items():
                same(vid + " published " + key, got[key], val)
        v = {"id": vid, "source": source, "kind": "kex",
             "da": hx(dA), "pa": got["pa"], "db": hx(dB), "pb": got["pb"],
             "ida": h(idA), "idb": h(idB), "ra_priv": hx(rA), "ra": got["ra"], "rb_priv": hx(rB), "rb": got["rb"],
             "klen": klen, "za": got["za"], "zb": got["zb"],
             "xv": got["xv"], "yv": got["yv"], "ka": got["k"], "kb": got["k"],
             "s1": got["sb"], "sb": got["sb"], "s2": got["sa"], "sa": got["sa"],
             "intermediate": {"x1bar": hx(kx["x1bar"], 16), "x2bar": hx(kx["x2bar"], 16), "ta": hx(kx["tA"]),
                              "tb": hx(kx["tB"]),
                              "inner_hash": got["inner_hash"],
                              "note": "inner_hash = SM3(xV||ZA||ZB||x1||y1||x2||y2); "
                                      "S1 = SB = SM3(02||yV||inner_hash); S2 = SA = SM3(03||yV||inner_hash); "
                                      "U = V, KA = KB"}}
        if note:
            v["note"] = note
        v["checked_with"] = [REF + " (GB/T 32918.3-2016 6.1, both roles)",
                             GMSSL + " EC arithmetic for P, R, U, V",
                             OSSL + " [d]G and X963KDF(SM3)", PYX + " sm3 / sm3_kdf"]
        vecs.append(v)

    kex_vec("gbt32918-5-annex-b-kex",
            "GB/T 32918.5-2017 Annex B (key exchange example on sm2p256v1); A = initiator, klen = 128 bits",
            D_A_KEX, D_B_KEX, DEFAULT_ID, DEFAULT_ID, R_A_KEX, R_B_KEX, 16,
            expected={"pa": "04160e12897df4edb61dd812feb96748fbd3ccf4ffe26aa6f6db9540af49c94232"
                            "4a7dad08bb9a459531694beb20aa489d6649975e1bfcf8c4741b78b4b223007f",
                      "pb": "046ae848c57c53c7b1b5fa99eb2286af078ba64c64591b8b566f7357d576f16dfb"
                            "ee489d771621a27b36c5c7992062e9cd09a9264386f3fbea54dff69305621c4d",
                      "ra": "0464ced1bdbc99d590049b434d0fd73428cf608a5db8fe5ce07f15026940bae40e"
                            "376629c7ab21e7db260922499ddb118f07ce8eaae3e7720afef6a5cc062070c0",
                      "rb": "04acc27688a6f7b706098bc91ff3ad1bff7dc2802cdb14ccccdb0a90471f9bd707"
                            "2fedac0494b2ffc4d6853876c79b8f301c6573ad0aa50f39fc87181e1a1b46fe",
                      "za": "3b85a57179e11e7e513aa622991f2ca74d1807a0bd4d4b38f90987a17ac245b1",
                      "zb": "79c988d63229d97ef19fe02ca1056e01e6a7411ed24694aa8f834f4a4ab022f7",
                      "xv": "c558b44bee5301d9f52b44d939bb59584d75b9034dd6a9fc826872109a65739f",
                      "yv": "3252b35b191d8ae01cd122c025204334c5eacf68a0cb4854c6a7d367ecad4de7",
                      "k": "6c89347354de2484c60b4ab1fde4c6e5",
                      "sb": "d3a0fe15dee185ceae907a6b595cc32a266ed7b3367e9983a896dc32fa20f8eb",
                      "sa": "18c7894b3816df16cf07b05c5ec0bef5d655d58f779cc1b400a4f3884644db88",
                      "inner_hash": "90e2a628e4f57abd78339ea33f967d11a154117bea442f7b627d4f4dd047b7f6"},
            note="published values reproduced: P_A, P_B, R_A, R_B, Z_A, Z_B, (xV, yV), K, S_B, S_A; "
                 "the intermediate block is recomputed, not compared with the annex print")
    kex_vec("sm2-kex-derived-klen48",
            derived(REF + " (protocol logic: single implementation)",
                    "EC points cross-checked with " + GMSSL_TXT + " and " + OSSL_TXT,
                    "KDF with OpenSSL X963KDF(SM3) and GmSSL sm3_kdf", "hashes with GmSSL sm3"),
            D_R, D_S, b"ALICE123@YAHOO.COM", b"BILL456@YAHOO.COM", kstream("kex-ra"), kstream("kex-rb"), 48,
            note="single implementation of the GB/T 32918.3 protocol composition (no second SM2 key-exchange "
                 "implementation was available in gmssl / gmssl-pyx); every building block is cross-checked")

    # ---------------------------------------------------------------- not applicable
    for vid, src in (
            ("gbt32918-2-annex-a-fp256", "GB/T 32918.2-2016 Annex A, digital signature example over the Fp-256 test curve"),
            ("gbt32918-2-annex-a-f2m257", "GB/T 32918.2-2016 Annex A, digital signature example over the F2m-257 test curve"),
            ("gbt32918-3-annex-a-fp256", "GB/T 32918.3-2016 Annex A, key exchange example over the Fp-256 test curve"),
            ("gbt32918-3-annex-a-f2m257", "GB/T 32918.3-2016 Annex A, key exchange example over the F2m-257 test curve"),
            ("gbt32918-4-annex-a-fp256", "GB/T 32918.4-2016 Annex A, encryption example over the Fp-256 test curve "
                                         "(its KDF step is used in sm3.json gbt32918-4-annex-a-kdf)"),
            ("gbt32918-4-annex-a-f2m257", "GB/T 32918.4-2016 Annex A, encryption example over the F2m-257 test curve")):
        vecs.append({"id": vid, "source": src, "kind": "not-applicable", "reason": "test curve, not sm2p256v1"})
    return vecs


# =========================================================================== GM/T 0009

def gmt0009_vectors():
    vecs = []
    a = SIGS["gbt32918-5-annex-a-sign"]

    def sig_der_vec(vid, source, r, s, ctx=None, note=None):
        der = ref.der_sig(r, s)
        assert ref.parse_der_sig(der) == (r, s)
        assert be.ossl_asn1parse_ok(der)
        v = {"id": vid, "source": source, "kind": "signature-der", "r": hx(r), "s": hx(s), "der": h(der)}
        chk = [REF + " encode/strict-decode", OSSL + " asn1parse"]
        if ctx:
            assert be.ossl_sm2_verify(ctx["pub"], ctx["user_id"], ctx["msg"], der)
            assert be.pyx_sm2_verify(ctx["pub"], ctx["user_id"], ctx["msg"], der)
            v.update({"pubkey": h(ref.encode_point(ctx["pub"])), "user_id": h(ctx["user_id"]), "msg": h(ctx["msg"])})
            chk += [OSSL + " verify", PYX + " verify"]
        if note:
            v["note"] = note
        v["checked_with"] = chk
        vecs.append(v)

    sig_der_vec("gmt0009-sig-annex-a", "GB/T 32918.5-2017 Annex A signature (r, s) in GM/T 0009-2012 SM2Signature DER",
                a["r"], a["s"], a, note="r and s both have the top bit set: 33-byte INTEGERs with a leading 00")
    for sid in ("sm2-sign-short-r", "sm2-sign-short-s", "sm2-sign-alice-id"):
        sg = SIGS[sid]
        sig_der_vec("gmt0009-sig-" + sid[len("sm2-sign-"):], derived(REF, OSSL_TXT, PYX_TXT) + "; from sm2.json " + sid,
                    sg["r"], sg["s"], sg)
    sig_der_vec("gmt0009-sig-small", derived(REF, OSSL_TXT + " asn1parse") + "; encoding only", 1, 0x80,
                note="r = 1 -> 020101; s = 0x80 -> 02020080 (encoding-only vector, not a valid signature)")

    # invalid encodings, built from the Annex A signature
    r_b, s_b = ref.i2b(a["r"]), ref.i2b(a["s"])
    ri, si = ref.der_int(a["r"]), ref.der_int(a["s"])
    sr = SIGS["sm2-sign-short-r"]
    good = ref.der_sig(a["r"], a["s"])
    bad = [
        ("non-minimal-integer", "r INTEGER with an extra leading 00 (00 00 f5...)",
         ref.der_tlv(0x30, ref.der_tlv(0x02, b"\x00\x00" + r_b) + si), a),
        ("non-minimal-integer-short-r", "r < 2^248 written as a full 32-byte INTEGER (leading 00, next byte < 0x80)",
         ref.der_tlv(0x30, ref.der_tlv(0x02, ref.i2b(sr["r"])) + ref.der_int(sr["s"])), sr),
        ("negative-integer", "r INTEGER without its 00 pad: top bit set, i.e. negative",
         ref.der_tlv(0x30, ref.der_tlv(0x02, r_b) + si), a),
        ("trailing-bytes", "valid SEQUENCE followed by one 00 byte", good + b"\x00", a),
        ("wrong-outer-tag", "outer tag 31 (SET) instead of 30", b"\x31" + good[1:], a),
        ("wrong-inner-tag", "r as OCTET STRING (tag 04) instead of INTEGER",
         ref.der_tlv(0x30, ref.der_tlv(0x04, b"\x00" + r_b) + si), a),
        ("indefinite-length", "BER indefinite length 30 80 ... 00 00", b"\x30\x80" + ri + si + b"\x00\x00", a),
        ("long-form-length", "SEQUENCE length 0x46 written in long form 81 46", b"\x30\x81" + good[1:], a),
        ("integer-33-bytes", "r INTEGER of 33 significant bytes (01 || r, value r + 2^256)",
         ref.der_tlv(0x30, ref.der_tlv(0x02, b"\x01" + r_b) + si), a),
        ("missing-s", "SEQUENCE with only r", ref.der_tlv(0x30, ri), a),
        ("extra-integer", "SEQUENCE with a third INTEGER", ref.der_tlv(0x30, ri + si + ref.der_int(1)), a),
        ("length-overrun", "SEQUENCE length one larger than the data", b"\x30" + bytes([good[1] + 1]) + good[2:], a),
        ("empty-sequence", "30 00", b"\x30\x00", a),
        ("empty-integer", "r INTEGER with zero-length content", ref.der_tlv(0x30, b"\x02\x00" + si), a),
    ]
    for short, what, der, ctx in bad:
        try:
            ref.parse_der_sig(der)
            raise AssertionError("strict DER accepted " + short)
        except ref.DerError:
            pass
        vecs.append({"id": "gmt0009-sig-bad-" + short,
                     "source": negative("SM2Signature DER mutations of the GB/T 32918.5-2017 Annex A signature"
                                        if ctx is a else "SM2Signature DER mutation of sm2.json sm2-sign-short-r"),
                     "kind": "signature-der-invalid", "what": what, "der": h(der),
                     "pubkey": h(ref.encode_point(ctx["pub"])), "user_id": h(ctx["user_id"]), "msg": h(ctx["msg"]),
                     "expected": "reject",
                     "observed": {OSSL + " verify": rejected(be.ossl_sm2_verify(ctx["pub"], ctx["user_id"], ctx["msg"], der)),
                                  PYX + " verify": rejected(be.pyx_sm2_verify(ctx["pub"], ctx["user_id"], ctx["msg"], der)),
                                  REF + " strict DER": "rejected"}})

    # ---------------------------------------------------------------- ciphertexts
    for eid, src in (("gbt32918-5-annex-c-encrypt", "GB/T 32918.5-2017 Annex C ciphertext in GM/T 0009-2012 SM2Cipher DER"),
                     ("sm2-enc-short-x1", None), ("sm2-enc-len33", None)):
        e = ENCS[eid]
        der = ref.der_cipher(e["c1c3c2"])
        same(eid + " der roundtrip", ref.parse_der_cipher(der), e["c1c3c2"])
        same(eid + " der decrypt", e["msg"], be.ossl_sm2_decrypt(e["d"], der), be.pyx_sm2_decrypt(e["d"], der))
        vecs.append({"id": "gmt0009-ct-" + eid.replace("gbt32918-5-annex-c-encrypt", "annex-c").replace("sm2-enc-", ""),
                     "source": src or (derived(REF, OSSL_TXT + " decrypt", PYX_TXT + " decrypt") + "; from sm2.json " + eid),
                     "kind": "ciphertext-der", "privkey": hx(e["d"]), "msg": h(e["msg"]),
                     "c1c3c2": h(e["c1c3c2"]), "der": h(der),
                     "note": "SM2Cipher ::= SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET STRING (32), "
                             "CipherText OCTET STRING }",
                     "checked_with": [REF, OSSL + " pkeyutl -decrypt", PYX + " sm2_decrypt"]})

    e = ENCS["gbt32918-5-annex-c-encrypt"]
    ct = e["c1c3c2"]
    X, Y, C3, C2 = ref.b2i(ct[1:33]), ref.b2i(ct[33:65]), ct[65:97], ct[97:]
    xi, yi = ref.der_int(X), ref.der_int(Y)
    o3, o2 = ref.der_tlv(0x04, C3), ref.der_tlv(0x04, C2)
    good = ref.der_cipher(ct)
    bad = [
        ("hash-ciphertext-swapped", "HASH and CipherText fields swapped (C1C2C3 order)", ref.der_tlv(0x30, xi + yi + o2 + o3)),
        ("hash-31-bytes", "HASH OCTET STRING of 31 bytes", ref.der_tlv(0x30, xi + yi + ref.der_tlv(0x04, C3[:31]) + o2)),
        ("hash-33-bytes", "HASH OCTET STRING of 33 bytes", ref.der_tlv(0x30, xi + yi + ref.der_tlv(0x04, C3 + b"\x00") + o2)),
        ("trailing-bytes", "valid SEQUENCE followed by one 00 byte", good + b"\x00"),
        ("missing-ciphertext", "SEQUENCE without CipherText", ref.der_tlv(0x30, xi + yi + o3)),
        ("non-minimal-x", "XCoordinate INTEGER with an extra leading 00", ref.der_tlv(0x30, ref.der_tlv(0x02, b"\x00" + ref.i2b(X)) + yi + o3 + o2)),
        ("negative-y", "YCoordinate INTEGER without its 00 pad (negative)", ref.der_tlv(0x30, xi + ref.der_tlv(0x02, ref.i2b(Y)) + o3 + o2)),
        ("x-33-bytes", "XCoordinate of 33 significant bytes (01 || x)", ref.der_tlv(0x30, ref.der_tlv(0x02, b"\x01" + ref.i2b(X)) + yi + o3 + o2)),
        ("indefinite-length", "BER indefinite length 30 80 ... 00 00", b"\x30\x80" + xi + yi + o3 + o2 + b"\x00\x00"),
        ("wrong-outer-tag", "outer tag 31 (SET) instead of 30", b"\x31" + good[1:]),
        ("point-not-on-curve", "well-formed DER, (x, y + 1) not on the curve", ref.der_tlv(0x30, xi + ref.der_int(Y + 1) + o3 + o2)),
        ("x-ge-p", "well-formed DER, XCoordinate = p (>= p)",
         ref.der_tlv(0x30, ref.der_int(ref.P) + yi + o3 + o2)),
        ("ciphertext-bitstring", "CipherText as BIT STRING (tag 03) instead of OCTET STRING",
         ref.der_tlv(0x30, xi + yi + o3 + ref.der_tlv(0x03, b"\x00" + C2))),
    ]
    for short, what, der in bad:
        strict_ok = True
        try:
            c = ref.parse_der_cipher(der)
            ref.decrypt(e["d"], c)
        except ValueError:
            strict_ok = False
        assert not strict_ok, short
        vecs.append({"id": "gmt0009-ct-bad-" + short,
                     "source": negative("SM2Cipher DER mutations of the GB/T 32918.5-2017 Annex C ciphertext"),
                     "kind": "ciphertext-der-invalid", "what": what, "privkey": hx(e["d"]), "der": h(der),
                     "expected": "reject",
                     "observed": {OSSL + " pkeyutl -decrypt": rejected(be.ossl_sm2_decrypt(e["d"], der) is not None),
                                  PYX + " sm2_decrypt": rejected(be.pyx_sm2_decrypt(e["d"], der) is not None),
                                  REF + " strict DER + decrypt": "rejected"}})

    # ---------------------------------------------------------------- SPKI
    for vid, d, src in (("gmt0009-spki-annex-a", D_ANNEX, "key of GB/T 32918.5-2017 Annex A"),
                        ("gmt0009-spki-annex-b-pa", D_A_KEX, "P_A of GB/T 32918.5-2017 Annex B"),
                        ("gmt0009-spki-annex-b-pb", D_B_KEX, "P_B of GB/T 32918.5-2017 Annex B")):
        spki = be.ossl_spki_from_d(d)
        pub = ref.pubkey_of(d)
        same(vid, spki, be.spki_der(ref.encode_point(pub)))
        vecs.append({"id": vid,
                     "source": "`openssl pkey -pubout -outform DER` (" + OSSL_TXT + ") of the " + src +
                               "; matches gm_ref.py encoding",
                     "kind": "pubkey-spki", "privkey": hx(d), "point": h(ref.encode_point(pub)), "spki_der": h(spki),
                     "note": "SubjectPublicKeyInfo { AlgorithmIdentifier { id-ecPublicKey 1.2.840.10045.2.1, "
                             "sm2p256v1 1.2.156.10197.1.301 }, BIT STRING 04||x||y }",
                     "checked_with": [OSSL, REF]})
    return vecs


def keyfile_vectors():
    """Encrypted PKCS#8 files as OpenSSL 3 writes them (PBES2 + SM4-CBC with its PBKDF2 PRFs):
    what gmchain's key-file reader meets from outside. The salt and IV are random, so each run
    writes new files; OpenSSL reads every one back to its d."""
    vecs = []
    d = kstream("keyfile")
    pw = b"gmchain-vector-passphrase"
    for vid, prf, role in (
            ("keyfile-openssl-hmacwithsha256", "hmacWithSHA256",
             "OpenSSL 3's default PRF, not a GM algorithm: read only for interoperability, refused by a "
             "production node (PBKDF2-HMAC-SM3 is the GM PRF)"),
            ("keyfile-openssl-hmacwithsha1", "hmacWithSHA1",
             "not a GM algorithm and not read by gmchain at all")):
        pem = be.ossl_encrypted_pkcs8(d, pw, prf, 10000)
        same(vid + " openssl reads it back", be.ossl_read_encrypted_pkcs8(pem, pw), d)
        vecs.append({"id": vid,
                     "source": "written by `openssl pkcs8 -topk8 -v2 sm4-cbc -v2prf %s -iter 10000` (%s); "
                               "read back to d by `openssl pkey`" % (prf, OSSL_TXT),
                     "kind": "pbes2-keyfile", "prf": prf, "note": role, "pem": h(pem), "passphrase": h(pw),
                     "privkey": hx(d), "checked_with": [OSSL]})
    return vecs


def main():
    print("OpenSSL:", be.openssl_version(), "| packages:", VERS)
    # GMVEC_ONLY=sm2,gmt0009 regenerates a subset (development aid)
    # keyfiles.json is written only on request (GMVEC_ONLY=keyfiles): its salts and IVs are
    # OpenSSL's random ones, so a rewrite changes the file without changing what it shows.
    only = set(filter(None, os.environ.get("GMVEC_ONLY", "sm3,sm4,sm2,gmt0009").split(",")))
    if "sm3" in only:
        write("sm3.json", "SM3 (GB/T 32905-2016), HMAC-SM3, SM2 KDF (GB/T 32918.4-2016 5.4.3)", sm3_vectors())
    if "sm4" in only:
        write("sm4.json", "SM4 (GB/T 32907-2016) block cipher and modes CBC, CTR, GCM, CCM", sm4_vectors())
    if "sm2" in only or "gmt0009" in only:
        sm2 = sm2_vectors()  # also fills SIGS / ENCS used by gmt0009
        if "sm2" in only:
            write("sm2.json", "SM2 (GB/T 32918.1-5) on sm2p256v1 (GB/T 32918.5-2017)", sm2)
    if "keyfiles" in only:
        write("keyfiles.json", "Encrypted PKCS#8 key files (PBES2, SM4-CBC) as other tools write them",
              keyfile_vectors())
    if "gmt0009" in only:
        write("gmt0009.json", "GM/T 0009-2012 SM2 encodings (SM2Signature, SM2Cipher, SubjectPublicKeyInfo)",
              gmt0009_vectors())


if __name__ == "__main__":
    main()
