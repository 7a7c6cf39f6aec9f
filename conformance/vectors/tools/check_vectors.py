#!/usr/bin/env python3
"""Re-read the four JSON files and re-check them from the JSON alone:
schema (ids, kinds, lowercase hex), then every positive vector against
gm_ref.py and every negative vector for rejection by gm_ref.py, plus
OpenSSL verification of every SM2 signature and decryption.

    /tmp/vecenv/bin/python check_vectors.py
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gm_ref as ref  # noqa: E402
import backends as be  # noqa: E402

DIR = os.path.dirname(HERE)
ID_RE = re.compile(r"^[a-z0-9]+(\.[0-9]+)?(-[a-z0-9]+)*$")
HEX_RE = re.compile(r"^([0-9a-f]{2})*$")
INFORMATIVE = {"id", "source", "kind", "what", "note", "checked_with", "observed", "expected", "reason", "prf",
               "algorithm", "name", "padding"}
KINDS = {
    "sm3.json": {"digest", "hmac", "kdf"},
    "sm4.json": {"block", "block-iterated", "cbc", "ctr", "gcm", "ccm", "gcm-bad-tag", "ccm-bad-tag"},
    "sm2.json": {"curve", "za", "sign", "verify-fail", "pubkey-invalid", "pubkey-valid", "point-parity", "privkey-invalid",
                 "encrypt", "decrypt-fail", "kex", "not-applicable"},
    "keyfiles.json": {"pbes2-keyfile"},
    "gmt0009.json": {"signature-der", "signature-der-invalid", "ciphertext-der", "ciphertext-der-invalid",
                     "pubkey-spki"},
}


def B(s):
    return bytes.fromhex(s)


def I(s):
    return int(s, 16)


def check_hex(obj, path):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in INFORMATIVE:
                continue
            check_hex(v, path + "." + k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_hex(v, "%s[%d]" % (path, i))
    elif isinstance(obj, str):
        assert HEX_RE.match(obj), "not lowercase even-length hex: %s = %r" % (path, obj[:40])


def pt(s):
    return ref.decode_point(B(s))


def check(v):
    k = v["kind"]
    if k == "digest":
        msg = B(v["msg_repeat"]["hex"]) * v["msg_repeat"]["count"] if "msg_repeat" in v else B(v["msg"])
        assert be.pyx_sm3(msg).hex() == v["digest"]
    elif k == "hmac":
        assert ref.hmac_sm3(B(v["key"]), B(v["msg"])).hex() == v["mac"]
    elif k == "kdf":
        assert ref.kdf(B(v["z"]), v["klen"]).hex() == v["out"]
    elif k == "block":
        c = ref.Sm4(B(v["key"]))
        assert c.enc(B(v["pt"])).hex() == v["ct"] and c.dec(B(v["ct"])).hex() == v["pt"]
    elif k == "block-iterated":
        data = B(v["pt"]) + bytes(16 * (v["iterations"] - 1))
        assert be.pyx_cbc_nopad(B(v["key"]), bytes(16), data)[-16:].hex() == v["ct"]
    elif k == "cbc":
        assert ref.cbc_encrypt(B(v["key"]), B(v["iv"]), B(v["pt"]), v["padding"]).hex() == v["ct"]
        assert ref.cbc_decrypt(B(v["key"]), B(v["iv"]), B(v["ct"]), v["padding"]).hex() == v["pt"]
    elif k == "ctr":
        assert ref.ctr_crypt(B(v["key"]), B(v["iv"]), B(v["pt"])).hex() == v["ct"]
    elif k in ("gcm", "ccm"):
        enc = ref.gcm_encrypt if k == "gcm" else ref.ccm_encrypt
        ct, tag = enc(B(v["key"]), B(v["nonce"]), B(v["aad"]), B(v["pt"]))
        assert (ct.hex(), tag.hex()) == (v["ct"], v["tag"])
    elif k in ("gcm-bad-tag", "ccm-bad-tag"):
        dec = ref.gcm_decrypt if k == "gcm-bad-tag" else ref.ccm_decrypt
        try:
            dec(B(v["key"]), B(v["nonce"]), B(v["aad"]), B(v["ct"]), B(v["tag"]))
            raise AssertionError("accepted")
        except ValueError:
            pass
    elif k == "curve":
        assert (I(v["p"]), I(v["a"]), I(v["b"]), I(v["n"]), I(v["gx"]), I(v["gy"])) == \
            (ref.P, ref.A, ref.B, ref.N, ref.GX, ref.GY)
    elif k == "za":
        assert ref.za(B(v["user_id"]), pt(v["pubkey"])).hex() == v["za"]
    elif k == "sign":
        d = I(v["privkey"])
        assert ref.encode_point(ref.pubkey_of(d)).hex() == v["pubkey"]
        sg = ref.sign_with_k(d, B(v["user_id"]), B(v["msg"]), I(v["k"]))
        assert (sg["za"].hex(), sg["e"].hex(), "%064x" % sg["r"], "%064x" % sg["s"]) == \
            (v["za"], v["e"], v["r"], v["s"])
        assert be.ossl_sm2_verify(pt(v["pubkey"]), B(v["user_id"]), B(v["msg"]), ref.der_sig(sg["r"], sg["s"]))
    elif k == "verify-fail":
        assert not ref.verify(pt(v["pubkey"]), B(v["user_id"]), B(v["msg"]), I(v["r"]), I(v["s"]))
        assert not be.ossl_sm2_verify(pt(v["pubkey"]), B(v["user_id"]), B(v["msg"]),
                                      ref.der_sig(I(v["r"]), I(v["s"])))
    elif k == "pubkey-invalid":
        try:
            ref.decode_point(B(v["pubkey"]))
            raise AssertionError("accepted")
        except ValueError:
            pass
    elif k == "pubkey-valid":
        p = ref.pubkey_of(I(v["privkey"]))
        assert pt(v["compressed"]) == p == pt(v["uncompressed"]) == pt(v["hybrid"])
        assert len(B(v["compressed"])) == 33 and len(B(v["uncompressed"])) == 65 and len(B(v["hybrid"])) == 65
        assert B(v["hybrid"])[0] in (6, 7) and be.ossl_pubkey_accepts(B(v["hybrid"]))
    elif k == "point-parity":
        p = ref.pubkey_of(I(v["privkey"]))
        assert pt(v["uncompressed"]) == p
        assert pt(v["compressed_flipped"]) == pt(v["negated"]) == (p[0], ref.P - p[1])
        try:
            ref.decode_point(B(v["hybrid_flipped"]))
            raise AssertionError("accepted")
        except ValueError:
            pass
    elif k == "privkey-invalid":
        assert not ref.valid_privkey(I(v["d"]))
    elif k == "encrypt":
        d = I(v["privkey"])
        e = ref.encrypt_with_k(ref.pubkey_of(d), B(v["msg"]), I(v["k"]))
        assert e["c1c3c2"].hex() == v["c1c3c2"]
        assert ref.decrypt(d, B(v["c1c3c2"])).hex() == v["msg"]
        assert be.ossl_sm2_decrypt(d, ref.der_cipher(B(v["c1c3c2"]))).hex() == v["msg"]
    elif k == "decrypt-fail":
        try:
            ref.decrypt(I(v["privkey"]), B(v["ciphertext"]))
            raise AssertionError("accepted")
        except ValueError:
            pass
    elif k == "kex":
        kx = ref.key_exchange(I(v["da"]), I(v["db"]), B(v["ida"]), B(v["idb"]), I(v["ra_priv"]),
                              I(v["rb_priv"]), v["klen"])
        got = {"pa": ref.encode_point(kx["PA"]).hex(), "pb": ref.encode_point(kx["PB"]).hex(),
               "ra": ref.encode_point(kx["RA"]).hex(), "rb": ref.encode_point(kx["RB"]).hex(),
               "za": kx["ZA"].hex(), "zb": kx["ZB"].hex(), "xv": "%064x" % kx["V"][0], "yv": "%064x" % kx["V"][1],
               "ka": kx["KA"].hex(), "kb": kx["KB"].hex(), "s1": kx["S1"].hex(), "sb": kx["SB"].hex(),
               "s2": kx["S2"].hex(), "sa": kx["SA"].hex()}
        for key, val in got.items():
            assert v[key] == val, key
    elif k == "not-applicable":
        assert v["reason"]
    elif k == "signature-der":
        assert ref.der_sig(I(v["r"]), I(v["s"])).hex() == v["der"]
        assert ref.parse_der_sig(B(v["der"])) == (I(v["r"]), I(v["s"]))
    elif k == "signature-der-invalid":
        try:
            ref.parse_der_sig(B(v["der"]))
            raise AssertionError("accepted")
        except ref.DerError:
            pass
        assert not be.ossl_sm2_verify(pt(v["pubkey"]), B(v["user_id"]), B(v["msg"]), B(v["der"]))
    elif k == "ciphertext-der":
        assert ref.der_cipher(B(v["c1c3c2"])).hex() == v["der"]
        assert ref.parse_der_cipher(B(v["der"])).hex() == v["c1c3c2"]
        assert be.ossl_sm2_decrypt(I(v["privkey"]), B(v["der"])).hex() == v["msg"]
    elif k == "ciphertext-der-invalid":
        try:
            ref.decrypt(I(v["privkey"]), ref.parse_der_cipher(B(v["der"])))
            raise AssertionError("accepted")
        except ValueError:
            pass
    elif k == "pubkey-spki":
        assert be.spki_der(B(v["point"])).hex() == v["spki_der"]
        assert ref.encode_point(ref.pubkey_of(I(v["privkey"]))).hex() == v["point"]
    elif k == "pbes2-keyfile":
        assert B(v["pem"]).startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert be.ossl_read_encrypted_pkcs8(B(v["pem"]), B(v["passphrase"])) == I(v["privkey"])
    else:
        raise AssertionError("unknown kind " + k)


def main():
    all_ids = set()
    total = 0
    for name, kinds in KINDS.items():
        with open(os.path.join(DIR, name), encoding="utf-8") as f:
            doc = json.load(f)
        assert set(doc) == {"algorithm", "vectors"}
        for v in doc["vectors"]:
            for field in ("id", "source", "kind"):
                assert isinstance(v.get(field), str) and v[field], (name, v.get("id"), field)
            assert ID_RE.match(v["id"]), v["id"]
            assert v["id"] not in all_ids, "duplicate id " + v["id"]
            all_ids.add(v["id"])
            assert v["kind"] in kinds, (name, v["kind"])
            check_hex(v, v["id"])
            try:
                check(v)
            except Exception as e:
                raise AssertionError("%s %s: %r" % (name, v["id"], e))
            total += 1
        print("%s: %d vectors OK" % (name, len(doc["vectors"])))
    print("all %d vectors OK (ids unique across files)" % total)


if __name__ == "__main__":
    main()
