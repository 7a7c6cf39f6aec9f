#!/usr/bin/env python3
"""Reference TLS 1.3 key schedule with SM3 (RFC 8446 §7.1 with HKDF-SM3, RFC 8998), stdlib only.

Reads the JSON file an interop test wrote (tests/keylog.rs) and recomputes, from the ECDHE
shared secret and the plaintext handshake messages:

  early_secret     = HKDF-Extract(0^32, 0^32)            (no PSK)
  handshake_secret = HKDF-Extract(Derive-Secret(early_secret, "derived", ""), shared_secret)
  c/s hs traffic   = Derive-Secret(handshake_secret, "c hs traffic" / "s hs traffic", CH..SH)
  server Finished  = HMAC(HKDF-Expand-Label(s_hs_traffic, "finished", "", 32), H(CH..CV))
  master_secret    = HKDF-Extract(Derive-Secret(handshake_secret, "derived", ""), 0^32)
  c/s ap traffic 0 = Derive-Secret(master_secret, "c ap traffic" / "s ap traffic", CH..server Fin)
  exporter         = Derive-Secret(master_secret, "exp master", CH..server Fin)

and compares each with what both implementations logged (NSS key log labels). The handshake
traffic secrets need only ClientHello and ServerHello; the rest needs the server's encrypted
flight (EncryptedExtensions .. Finished), which the test decrypted with the logged server
handshake secret (a wrong secret could not have decrypted it: the AEAD tag would fail).

SM3 is hashlib's 'sm3' when the system OpenSSL has it, else the pure-Python one below; both are
checked against the GB/T 32905 vector first. Exit status 0 and one "OK" line per value, or 1
and a line naming the first mismatch.

Usage: keyschedule.py FILE.json
"""
import hashlib
import hmac
import json
import struct
import sys

# --- SM3 (GB/T 32905-2016), pure Python, for systems whose OpenSSL has no SM3 ---------------

_IV = [0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600,
       0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E]


def _rotl(x, n):
    n %= 32
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def _p0(x):
    return x ^ _rotl(x, 9) ^ _rotl(x, 17)


def _p1(x):
    return x ^ _rotl(x, 15) ^ _rotl(x, 23)


def _compress(v, block):
    w = list(struct.unpack(">16I", block))
    for j in range(16, 68):
        w.append(_p1(w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)) ^ _rotl(w[j - 13], 7) ^ w[j - 6])
    w1 = [w[j] ^ w[j + 4] for j in range(64)]
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        t = 0x79CC4519 if j < 16 else 0x7A879D8A
        ss1 = _rotl((_rotl(a, 12) + e + _rotl(t, j)) & 0xFFFFFFFF, 7)
        ss2 = ss1 ^ _rotl(a, 12)
        if j < 16:
            ff, gg = a ^ b ^ c, e ^ f ^ g
        else:
            ff = (a & b) | (a & c) | (b & c)
            gg = (e & f) | (~e & g)
        tt1 = (ff + d + ss2 + w1[j]) & 0xFFFFFFFF
        tt2 = (gg + h + ss1 + w[j]) & 0xFFFFFFFF
        d, c, b, a = c, _rotl(b, 9), a, tt1
        h, g, f, e = g, _rotl(f, 19), e, _p0(tt2)
    return [x ^ y for x, y in zip(v, [a, b, c, d, e, f, g, h])]


class PureSm3:
    """hashlib-style SM3 object (enough for hmac)."""
    digest_size = 32
    block_size = 64
    name = "sm3"

    def __init__(self, data=b""):
        self._buf = b""
        self._v = list(_IV)
        self._len = 0
        self.update(data)

    def update(self, data):
        self._len += len(data)
        data = self._buf + bytes(data)
        n = len(data) // 64 * 64
        for i in range(0, n, 64):
            self._v = _compress(self._v, data[i:i + 64])
        self._buf = data[n:]

    def copy(self):
        c = PureSm3()
        c._buf, c._v, c._len = self._buf, list(self._v), self._len
        return c

    def digest(self):
        bits = self._len * 8
        pad = b"\x80" + b"\x00" * ((55 - self._len) % 64) + struct.pack(">Q", bits)
        v = list(self._v)
        data = self._buf + pad
        for i in range(0, len(data), 64):
            v = _compress(v, data[i:i + 64])
        return struct.pack(">8I", *v)

    def hexdigest(self):
        return self.digest().hex()


def _pick_sm3():
    abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert PureSm3(b"abc").hexdigest() == abc, "pure-Python SM3 fails the GB/T 32905 vector"
    try:
        hashlib.new("sm3", b"abc")
    except ValueError:
        return PureSm3, "pure-Python SM3 (this OpenSSL has none)"
    assert hashlib.new("sm3", b"abc").hexdigest() == abc
    long = bytes(range(256)) * 5
    assert hashlib.new("sm3", long).hexdigest() == PureSm3(long).hexdigest()
    return (lambda d=b"": hashlib.new("sm3", d)), "hashlib sm3 (system OpenSSL), cross-checked"


SM3, SM3_SOURCE = _pick_sm3()
HASH_LEN = 32


def h(data):
    return SM3(data).digest()


# --- HKDF-SM3 and the TLS 1.3 helpers (RFC 5869, RFC 8446 §7.1) ----------------------------

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, SM3).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), SM3).digest()
        out += t
        i += 1
    return out[:length]


def hkdf_expand_label(secret, label, context, length):
    full = b"tls13 " + label.encode()
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return hkdf_expand(secret, info, length)


def derive_secret(secret, label, messages):
    return hkdf_expand_label(secret, label, h(messages), HASH_LEN)


def split_handshake(data):
    """Handshake messages (with their 4-byte headers) of a byte string."""
    out, i = [], 0
    while i + 4 <= len(data):
        n = int.from_bytes(data[i + 1:i + 4], "big")
        out.append(data[i:i + 4 + n])
        i += 4 + n
    if i != len(data):
        raise ValueError("truncated handshake message")
    return out


def compare(got, logs, client_random, skip=()):
    """Each recomputed secret against each implementation's logged one."""
    for label, secret in got.items():
        if label in skip:
            continue
        for who, log in logs.items():
            if label not in log:
                if label == "EXPORTER_SECRET":
                    continue
                raise SystemExit(f"FAIL: {who} logged no {label}")
            cr, s = log[label]
            if cr != client_random:
                raise SystemExit(f"FAIL: {who} {label}: client_random {cr} != ClientHello's "
                                 f"{client_random}")
            if s != secret.hex():
                raise SystemExit(f"FAIL: {who} {label}: logged {s}, recomputed {secret.hex()}")
        print(f"OK {label} {secret.hex()} ({', '.join(sorted(logs))})")


def main(path):
    with open(path) as f:
        d = json.load(f)
    shared = bytes.fromhex(d["shared_secret"])
    ch = bytes.fromhex(d["client_hello"])
    sh = bytes.fromhex(d["server_hello"])
    assert ch[0] == 1 and sh[0] == 2, "not a ClientHello / ServerHello"
    client_random = ch[6:38].hex()
    logs = d["logged"]  # {"tongsuo": {...}, "gmtls": {...}}: LABEL -> [client_random, secret]

    zero = bytes(HASH_LEN)
    early = hkdf_extract(zero, zero)
    hs = hkdf_extract(derive_secret(early, "derived", b""), shared)
    got = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET": derive_secret(hs, "c hs traffic", ch + sh),
        "SERVER_HANDSHAKE_TRAFFIC_SECRET": derive_secret(hs, "s hs traffic", ch + sh),
    }
    compare(got, logs, client_random)
    checked = set(got)
    flight = bytes.fromhex(d.get("server_flight", ""))
    if flight:
        msgs = split_handshake(flight)
        kinds = [m[0] for m in msgs]
        if kinds[-1] != 20 or 15 not in kinds:
            raise SystemExit(f"FAIL: server flight types {kinds}: no CertificateVerify/Finished")
        before_fin = ch + sh + b"".join(msgs[:-1])
        fin_key = hkdf_expand_label(got["SERVER_HANDSHAKE_TRAFFIC_SECRET"], "finished", b"",
                                    HASH_LEN)
        verify_data = hmac.new(fin_key, h(before_fin), SM3).digest()
        if verify_data != msgs[-1][4:]:
            raise SystemExit("FAIL: server Finished verify_data differs from the recomputed one")
        print(f"OK server Finished verify_data {verify_data.hex()}")
        through_fin = before_fin + msgs[-1]
        master = hkdf_extract(derive_secret(hs, "derived", b""), zero)
        got["CLIENT_TRAFFIC_SECRET_0"] = derive_secret(master, "c ap traffic", through_fin)
        got["SERVER_TRAFFIC_SECRET_0"] = derive_secret(master, "s ap traffic", through_fin)
        got["EXPORTER_SECRET"] = derive_secret(master, "exp master", through_fin)
    compare(got, logs, client_random, skip=checked)
    print(f"OK key schedule with {SM3_SOURCE}: {len(got)} secrets match")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
