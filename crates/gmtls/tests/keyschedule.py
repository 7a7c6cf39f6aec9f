#!/usr/bin/env python3
"""The TLS 1.3 key schedule (RFC 8446 §7.1, §4.4.4, §7.3) with SM3 and HKDF-SM3, as RFC 8998
uses it: an independent reference for gmtls's key schedule (tests/key_schedule.rs).

Standard library only. SM3 comes from hashlib (the system's OpenSSL 3); without it, or with
GMCHAIN_PURE_SM3=1, from the pure-Python SM3 below (GB/T 32905-2016). Either is checked
against the standard's example before use.

stdin: lines `name hex` with
  shared_secret   the (EC)DHE shared secret (curveSM2: the x coordinate)
  client_hello    the ClientHello message, with its 4-byte handshake header
  server_hello    the ServerHello message, likewise
  server_flight   (optional) the server's encrypted handshake messages, EncryptedExtensions
                  to Finished, concatenated
  client_flight   (optional) the client's handshake messages before its Finished
                  (Certificate, CertificateVerify), concatenated
stdout: lines `name hex` of every secret, key and IV derived, and the Finished verify_data
each side must send.
"""

import hashlib
import hmac
import os
import struct
import sys

# ---- SM3 ---------------------------------------------------------------------------------------


def _rotl(x, n):
    n %= 32
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def pure_sm3(msg):
    """SM3 (GB/T 32905-2016 §5)."""
    v = [0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600,
         0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E]
    bit_len = len(msg) * 8
    msg = msg + b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + struct.pack(">Q", bit_len)
    for off in range(0, len(msg), 64):
        w = list(struct.unpack(">16I", msg[off:off + 64]))
        for j in range(16, 68):
            x = w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)
            p1 = x ^ _rotl(x, 15) ^ _rotl(x, 23)
            w.append(p1 ^ _rotl(w[j - 13], 7) ^ w[j - 6])
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
            h, g, f, e = g, _rotl(f, 19), e, tt2 ^ _rotl(tt2, 9) ^ _rotl(tt2, 17)
        v = [x ^ y for x, y in zip(v, [a, b, c, d, e, f, g, h])]
    return struct.pack(">8I", *v)


def _openssl_sm3_available():
    try:
        hashlib.new("sm3")
        return True
    except ValueError:
        return False


if os.environ.get("GMCHAIN_PURE_SM3") == "1" or not _openssl_sm3_available():
    SM3_SOURCE = "pure-python"
    sm3 = pure_sm3

    def hmac_sm3(key, msg):
        # RFC 2104 with SM3's 64-byte block.
        if len(key) > 64:
            key = sm3(key)
        key = key.ljust(64, b"\x00")
        inner = sm3(bytes(k ^ 0x36 for k in key) + msg)
        return sm3(bytes(k ^ 0x5C for k in key) + inner)
else:
    SM3_SOURCE = "hashlib-openssl"

    def sm3(msg):
        return hashlib.new("sm3", msg).digest()

    def hmac_sm3(key, msg):
        return hmac.new(key, msg, lambda: hashlib.new("sm3")).digest()

# GB/T 32905-2016 Appendix A.1 and A.2.
assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"

HASH_LEN = 32

# ---- HKDF (RFC 5869) and the TLS 1.3 helpers (RFC 8446 §7.1) -----------------------------------


def hkdf_extract(salt, ikm):
    return hmac_sm3(salt, ikm)


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac_sm3(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:length]


def hkdf_expand_label(secret, label, context, length):
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return hkdf_expand(secret, info, length)


def derive_secret(secret, label, messages):
    return hkdf_expand_label(secret, label, sm3(messages), HASH_LEN)


def traffic_keys(secret):
    # RFC 8446 §7.3; RFC 8998 §3.3: SM4 keys are 16 bytes, nonces 12.
    return hkdf_expand_label(secret, b"key", b"", 16), hkdf_expand_label(secret, b"iv", b"", 12)


def finished(base_key, transcript):
    # RFC 8446 §4.4.4.
    finished_key = hkdf_expand_label(base_key, b"finished", b"", HASH_LEN)
    return hmac_sm3(finished_key, sm3(transcript))


def main():
    inp = {}
    for line in sys.stdin:
        if line.strip():
            name, value = line.split()
            inp[name] = bytes.fromhex(value)
    out = {}
    zeros = bytes(HASH_LEN)
    early = hkdf_extract(zeros, zeros)  # no PSK: salt 0, IKM 0^HashLen
    out["early_secret"] = early
    hs = hkdf_extract(derive_secret(early, b"derived", b""), inp["shared_secret"])
    out["handshake_secret"] = hs
    hello = inp["client_hello"] + inp["server_hello"]
    c_hs = derive_secret(hs, b"c hs traffic", hello)
    s_hs = derive_secret(hs, b"s hs traffic", hello)
    out["CLIENT_HANDSHAKE_TRAFFIC_SECRET"] = c_hs
    out["SERVER_HANDSHAKE_TRAFFIC_SECRET"] = s_hs
    out["client_handshake_key"], out["client_handshake_iv"] = traffic_keys(c_hs)
    out["server_handshake_key"], out["server_handshake_iv"] = traffic_keys(s_hs)
    if "server_flight" in inp:
        flight = inp["server_flight"]
        # The server's Finished is the last message: 4-byte header and 32 bytes of verify_data.
        before_fin, fin = flight[:-(4 + HASH_LEN)], flight[-(4 + HASH_LEN):]
        assert fin[:4] == bytes([20, 0, 0, HASH_LEN]), "server_flight must end with Finished"
        out["server_finished"] = finished(s_hs, hello + before_fin)
        master = hkdf_extract(derive_secret(hs, b"derived", b""), zeros)
        out["master_secret"] = master
        through_fin = hello + flight
        out["CLIENT_TRAFFIC_SECRET_0"] = derive_secret(master, b"c ap traffic", through_fin)
        out["SERVER_TRAFFIC_SECRET_0"] = derive_secret(master, b"s ap traffic", through_fin)
        out["EXPORTER_SECRET"] = derive_secret(master, b"exp master", through_fin)
        if "client_flight" in inp:
            out["client_finished"] = finished(c_hs, through_fin + inp["client_flight"])
    print("sm3_source", SM3_SOURCE.encode().hex())
    for name, value in out.items():
        print(name, value.hex())


if __name__ == "__main__":
    main()
