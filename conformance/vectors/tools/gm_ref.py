"""Small, readable pure-Python reference for the GM algorithms used to derive
and cross-check gmchain's known-answer vectors.

This is test tooling only (slow, not constant time).  It is written from the
standards, not from any other implementation:

* SM3 compression: taken from PyPI ``gmssl`` (pure Python) -- see ``sm3``.
* SM4 block cipher: taken from PyPI ``gmssl`` (pure Python) -- see ``Sm4``;
  the modes of operation (CBC, CTR, GCM, CCM) are implemented here.
* SM2 (GB/T 32918.1-.5): field/point arithmetic, Z_A, signature,
  encryption, key exchange, KDF are implemented here.
* A minimal strict DER codec for the GM/T 0009 structures.
"""

from gmssl.sm3 import sm3_hash as _gmssl_sm3_hash
from gmssl.sm4 import CryptSM4 as _CryptSM4, SM4_ENCRYPT as _SM4_ENC, SM4_DECRYPT as _SM4_DEC

# ---------------------------------------------------------------------------
# SM3 and the SM2 KDF
# ---------------------------------------------------------------------------


def sm3(data: bytes) -> bytes:
    """SM3 via the pure-Python gmssl implementation."""
    return bytes.fromhex(_gmssl_sm3_hash(list(data)))


def hmac_sm3(key: bytes, msg: bytes) -> bytes:
    """HMAC (RFC 2104) over SM3, block size 64 bytes."""
    if len(key) > 64:
        key = sm3(key)
    key = key.ljust(64, b"\x00")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return sm3(opad + sm3(ipad + msg))


def kdf(z: bytes, klen: int) -> bytes:
    """GB/T 32918.4-2016 5.4.3: Ha_i = SM3(Z || ct), ct 32-bit BE from 1."""
    out = b""
    ct = 1
    while len(out) < klen:
        out += sm3(z + ct.to_bytes(4, "big"))
        ct += 1
    return out[:klen]


# ---------------------------------------------------------------------------
# SM2 curve sm2p256v1 (GB/T 32918.5-2017 clause 4)
# ---------------------------------------------------------------------------

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
H = 1
G = (GX, GY)
INF = None  # point at infinity


def i2b(x: int, n: int = 32) -> bytes:
    return x.to_bytes(n, "big")


def b2i(b: bytes) -> int:
    return int.from_bytes(b, "big")


def on_curve(pt) -> bool:
    if pt is INF:
        return False
    x, y = pt
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def point_neg(pt):
    if pt is INF:
        return INF
    return (pt[0], (-pt[1]) % P)


def point_add(p1, p2):
    if p1 is INF:
        return p2
    if p2 is INF:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return INF
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    y3 = (lam * (x1 - x3) - y1) % P
    return (x3, y3)


def point_mul(k: int, pt):
    """Left-to-right double-and-add."""
    r = INF
    for bit in bin(k)[2:] if k > 0 else "":
        r = point_add(r, r)
        if bit == "1":
            r = point_add(r, pt)
    return r


def encode_point(pt, compressed: bool = False, hybrid: bool = False) -> bytes:
    """GB/T 32918.1-2016 4.2.9: 04||x||y; compressed 02/03||x; hybrid 06/07||x||y, where the
    prefix's low bit is the parity of y."""
    x, y = pt
    if compressed:
        return bytes([2 | (y & 1)]) + i2b(x)
    if hybrid:
        return bytes([6 | (y & 1)]) + i2b(x) + i2b(y)
    return b"\x04" + i2b(x) + i2b(y)


def sqrt_mod_p(a: int):
    """p = 3 (mod 4), so a square root is a^((p+1)/4)."""
    r = pow(a, (P + 1) // 4, P)
    return r if r * r % P == a % P else None


def decode_point(data: bytes):
    """Strict decoding of the three forms of GB/T 32918.1-2016 4.2.10 (uncompressed, compressed,
    hybrid); raises ValueError on anything invalid."""
    if len(data) == 65 and data[0] in (4, 6, 7):
        x, y = b2i(data[1:33]), b2i(data[33:])
        if x >= P or y >= P:
            raise ValueError("coordinate >= p")
        if data[0] != 4 and (y & 1) != (data[0] & 1):
            raise ValueError("hybrid prefix disagrees with the parity of y")
        if not on_curve((x, y)):
            raise ValueError("not on curve")
        return (x, y)
    if len(data) == 33 and data[0] in (2, 3):
        x = b2i(data[1:])
        if x >= P:
            raise ValueError("x >= p")
        y = sqrt_mod_p((x * x * x + A * x + B) % P)
        if y is None:
            raise ValueError("no square root")
        if (y & 1) != (data[0] & 1):
            y = P - y
        return (x, y)
    raise ValueError("bad encoding / length / prefix")


def pubkey_of(d: int):
    return point_mul(d, G)


def valid_privkey(d: int) -> bool:
    """GB/T 32918.1-2016 6.1: d in [1, n-2]."""
    return 1 <= d <= N - 2


def za(user_id: bytes, pub) -> bytes:
    """GB/T 32918.2-2016 5.5: Z_A = H256(ENTL_A||ID_A||a||b||xG||yG||xA||yA)."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    return sm3(entl + user_id + i2b(A) + i2b(B) + i2b(GX) + i2b(GY) + i2b(pub[0]) + i2b(pub[1]))


def sign_with_k(d: int, user_id: bytes, msg: bytes, k: int):
    """GB/T 32918.2-2016 6.1 with an explicit k. Returns dict of values."""
    pub = pubkey_of(d)
    z = za(user_id, pub)
    e = sm3(z + msg)
    x1, _ = point_mul(k, G)
    r = (b2i(e) + x1) % N
    if r == 0 or r + k == N:
        raise ValueError("bad k (r)")
    s = (pow(1 + d, -1, N) * (k - r * d)) % N
    if s == 0:
        raise ValueError("bad k (s)")
    return {"za": z, "e": e, "x1": x1, "r": r, "s": s}


def verify(pub, user_id: bytes, msg: bytes, r: int, s: int) -> bool:
    """GB/T 32918.2-2016 7.1."""
    if not on_curve(pub):
        return False
    if not (1 <= r <= N - 1 and 1 <= s <= N - 1):
        return False
    e = b2i(sm3(za(user_id, pub) + msg))
    t = (r + s) % N
    if t == 0:
        return False
    pt = point_add(point_mul(s, G), point_mul(t, pub))
    if pt is INF:
        return False
    return (e + pt[0]) % N == r


def encrypt_with_k(pub, msg: bytes, k: int):
    """GB/T 32918.4-2016 6.1, output C1||C3||C2 (C1 uncompressed)."""
    c1 = point_mul(k, G)
    if point_mul(H, pub) is INF:
        raise ValueError("S = [h]PB is infinity")
    x2, y2 = point_mul(k, pub)
    t = kdf(i2b(x2) + i2b(y2), len(msg))
    if not any(t):
        raise ValueError("t all zero")
    c2 = bytes(a ^ b for a, b in zip(msg, t))
    c3 = sm3(i2b(x2) + msg + i2b(y2))
    return {"c1": encode_point(c1), "c2": c2, "c3": c3, "x2": x2, "y2": y2, "t": t,
            "c1c3c2": encode_point(c1) + c3 + c2}


def decrypt(d: int, c1c3c2: bytes) -> bytes:
    """GB/T 32918.4-2016 7.1 for C1(65 bytes, uncompressed)||C3||C2.
    Raises ValueError on every failure."""
    if len(c1c3c2) < 65 + 32 + 1:
        raise ValueError("too short")
    c1 = decode_point(c1c3c2[:65])
    if point_mul(H, c1) is INF:
        raise ValueError("[h]C1 is infinity")
    c3 = c1c3c2[65:97]
    c2 = c1c3c2[97:]
    x2, y2 = point_mul(d, c1)
    t = kdf(i2b(x2) + i2b(y2), len(c2))
    if not any(t):
        raise ValueError("t all zero")
    m = bytes(a ^ b for a, b in zip(c2, t))
    if sm3(i2b(x2) + m + i2b(y2)) != c3:
        raise ValueError("C3 mismatch")
    return m


W = 127  # ceil(ceil(log2 n)/2) - 1 for the 256-bit n


def xbar(x: int) -> int:
    return (1 << W) + (x & ((1 << W) - 1))


def key_exchange(dA, dB, idA, idB, rA, rB, klen):
    """GB/T 32918.3-2016 6.1/6.2, both sides; returns all values."""
    PA, PB = pubkey_of(dA), pubkey_of(dB)
    RA, RB = pubkey_of(rA), pubkey_of(rB)
    ZA, ZB = za(idA, PA), za(idB, PB)
    x1, y1 = RA
    x2, y2 = RB
    # responder B (steps B1-B9)
    tB = (dB + xbar(x2) * rB) % N
    V = point_mul(H * tB, point_add(PA, point_mul(xbar(x1), RA)))
    if V is INF:
        raise ValueError("V infinity")
    xV, yV = V
    KB = kdf(i2b(xV) + i2b(yV) + ZA + ZB, klen)
    inner_B = sm3(i2b(xV) + ZA + ZB + i2b(x1) + i2b(y1) + i2b(x2) + i2b(y2))
    SB = sm3(b"\x02" + i2b(yV) + inner_B)
    S2 = sm3(b"\x03" + i2b(yV) + inner_B)
    # initiator A (steps A1-A10)
    tA = (dA + xbar(x1) * rA) % N
    U = point_mul(H * tA, point_add(PB, point_mul(xbar(x2), RB)))
    if U is INF:
        raise ValueError("U infinity")
    xU, yU = U
    KA = kdf(i2b(xU) + i2b(yU) + ZA + ZB, klen)
    inner_A = sm3(i2b(xU) + ZA + ZB + i2b(x1) + i2b(y1) + i2b(x2) + i2b(y2))
    S1 = sm3(b"\x02" + i2b(yU) + inner_A)
    SA = sm3(b"\x03" + i2b(yU) + inner_A)
    if not (U == V and KA == KB and S1 == SB and SA == S2):
        raise AssertionError("key exchange sides disagree")
    return {"PA": PA, "PB": PB, "RA": RA, "RB": RB, "ZA": ZA, "ZB": ZB,
            "x1bar": xbar(x1), "x2bar": xbar(x2), "tA": tA, "tB": tB,
            "U": U, "V": V, "KA": KA, "KB": KB, "S1": S1, "SB": SB, "SA": SA, "S2": S2,
            "inner": inner_A}


# ---------------------------------------------------------------------------
# SM4 block (gmssl) and modes (here)
# ---------------------------------------------------------------------------


class Sm4:
    def __init__(self, key: bytes):
        self._e = _CryptSM4()
        self._e.set_key(key, _SM4_ENC)
        self._d = _CryptSM4()
        self._d.set_key(key, _SM4_DEC)

    def enc(self, block: bytes) -> bytes:
        return bytes(self._e.one_round(self._e.sk, list(block)))

    def dec(self, block: bytes) -> bytes:
        return bytes(self._d.one_round(self._d.sk, list(block)))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def pkcs7_pad(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def cbc_encrypt(key, iv, pt, padding="none"):
    c = Sm4(key)
    if padding == "pkcs7":
        pt = pkcs7_pad(pt)
    assert len(pt) % 16 == 0
    out, prev = b"", iv
    for i in range(0, len(pt), 16):
        prev = c.enc(_xor(pt[i:i + 16], prev))
        out += prev
    return out


def cbc_decrypt(key, iv, ct, padding="none"):
    c = Sm4(key)
    assert len(ct) % 16 == 0
    out, prev = b"", iv
    for i in range(0, len(ct), 16):
        out += _xor(c.dec(ct[i:i + 16]), prev)
        prev = ct[i:i + 16]
    if padding == "pkcs7":
        n = out[-1]
        if not (1 <= n <= 16) or out[-n:] != bytes([n]) * n:
            raise ValueError("bad padding")
        out = out[:-n]
    return out


def ctr_crypt(key, iv, data):
    """CTR with the whole 128-bit block incremented as a big-endian integer
    (NIST SP 800-38A B.1 standard incrementing function over 128 bits, which is
    what OpenSSL's and GmSSL's SM4-CTR do)."""
    c = Sm4(key)
    ctr = b2i(iv)
    out = b""
    for i in range(0, len(data), 16):
        ks = c.enc(i2b(ctr, 16))
        out += _xor(data[i:i + 16], ks)
        ctr = (ctr + 1) % (1 << 128)
    return out


def _gf_mul(x: int, y: int) -> int:
    R = 0xE1 << 120
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ R if v & 1 else v >> 1
    return z


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    def blocks(b):
        b = b + b"\x00" * (-len(b) % 16)
        return [b2i(b[i:i + 16]) for i in range(0, len(b), 16)]
    y = 0
    for blk in blocks(aad) + blocks(ct) + [((len(aad) * 8) << 64) | (len(ct) * 8)]:
        y = _gf_mul(y ^ blk, h)
    return y


def _inc32(block: bytes) -> bytes:
    return block[:12] + i2b((b2i(block[12:]) + 1) & 0xFFFFFFFF, 4)


def gcm_encrypt(key, nonce, aad, pt, tag_len=16):
    """NIST SP 800-38D GCM with SM4, 96-bit IV only."""
    assert len(nonce) == 12
    c = Sm4(key)
    h = b2i(c.enc(b"\x00" * 16))
    j0 = nonce + b"\x00\x00\x00\x01"
    cb, ct = j0, b""
    for i in range(0, len(pt), 16):
        cb = _inc32(cb)
        ct += _xor(pt[i:i + 16], c.enc(cb))
    s = _ghash(h, aad, ct)
    tag = _xor(c.enc(j0), i2b(s, 16))[:tag_len]
    return ct, tag


def gcm_decrypt(key, nonce, aad, ct, tag):
    pt_guess, _ = gcm_encrypt(key, nonce, b"", ct)  # CTR part is an involution
    _, exp_tag = gcm_encrypt(key, nonce, aad, pt_guess, len(tag))
    if exp_tag != tag:
        raise ValueError("GCM tag mismatch")
    return pt_guess


def ccm_encrypt(key, nonce, aad, pt, tag_len=16):
    """NIST SP 800-38C / RFC 3610 CCM with SM4 (the RFC 8998 A.2 parameters:
    12-byte nonce -> L = 3, 16-byte tag)."""
    c = Sm4(key)
    L = 15 - len(nonce)
    assert 2 <= L <= 8 and tag_len in (4, 6, 8, 10, 12, 14, 16)
    flags = (0x40 if aad else 0) | (((tag_len - 2) // 2) << 3) | (L - 1)
    b0 = bytes([flags]) + nonce + i2b(len(pt), L)
    blocks = b0
    if aad:
        if len(aad) < 0xFF00:
            a = i2b(len(aad), 2) + aad
        elif len(aad) < (1 << 32):
            a = b"\xff\xfe" + i2b(len(aad), 4) + aad
        else:
            a = b"\xff\xff" + i2b(len(aad), 8) + aad
        blocks += a + b"\x00" * (-len(a) % 16)
    blocks += pt + b"\x00" * (-len(pt) % 16)
    mac = b"\x00" * 16
    for i in range(0, len(blocks), 16):
        mac = c.enc(_xor(mac, blocks[i:i + 16]))

    def ctr_block(i):
        return bytes([L - 1]) + nonce + i2b(i, L)
    ct = b""
    for j, i in enumerate(range(0, len(pt), 16)):
        ct += _xor(pt[i:i + 16], c.enc(ctr_block(j + 1)))
    tag = _xor(mac[:tag_len], c.enc(ctr_block(0)))
    return ct, tag


def ccm_decrypt(key, nonce, aad, ct, tag):
    c = Sm4(key)
    L = 15 - len(nonce)
    pt = b""
    for j, i in enumerate(range(0, len(ct), 16)):
        pt += _xor(ct[i:i + 16], c.enc(bytes([L - 1]) + nonce + i2b(j + 1, L)))
    _, exp_tag = ccm_encrypt(key, nonce, aad, pt, len(tag))
    if exp_tag != tag:
        raise ValueError("CCM tag mismatch")
    return pt


# ---------------------------------------------------------------------------
# Minimal DER (GM/T 0009-2012 SM2Signature / SM2Cipher)
# ---------------------------------------------------------------------------


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = i2b(n, (n.bit_length() + 7) // 8)
    return bytes([0x80 | len(b)]) + b


def der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_len(len(content)) + content


def der_int(v: int) -> bytes:
    assert v >= 0
    b = i2b(v, max(1, (v.bit_length() + 7) // 8))
    if b[0] & 0x80:
        b = b"\x00" + b
    return der_tlv(0x02, b)


def der_sig(r: int, s: int) -> bytes:
    return der_tlv(0x30, der_int(r) + der_int(s))


def der_cipher(c1c3c2: bytes) -> bytes:
    x, y = b2i(c1c3c2[1:33]), b2i(c1c3c2[33:65])
    c3, c2 = c1c3c2[65:97], c1c3c2[97:]
    return der_tlv(0x30, der_int(x) + der_int(y) + der_tlv(0x04, c3) + der_tlv(0x04, c2))


class DerError(ValueError):
    pass


def _read_tlv(buf: bytes, pos: int):
    if pos + 2 > len(buf):
        raise DerError("truncated header")
    tag = buf[pos]
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length")
    else:
        nbytes = first & 0x7F
        if nbytes > 4 or pos + nbytes > len(buf):
            raise DerError("bad long-form length")
        lb = buf[pos:pos + nbytes]
        if lb[0] == 0:
            raise DerError("non-minimal length (leading zero)")
        length = b2i(lb)
        if length < 0x80:
            raise DerError("long-form used for short length")
        pos += nbytes
    if pos + length > len(buf):
        raise DerError("content truncated")
    return tag, buf[pos:pos + length], pos + length


def _parse_uint(content: bytes, max_len: int = 32) -> int:
    if len(content) == 0:
        raise DerError("empty INTEGER")
    if content[0] & 0x80:
        raise DerError("negative INTEGER")
    if len(content) > 1 and content[0] == 0 and not (content[1] & 0x80):
        raise DerError("non-minimal INTEGER")
    v = b2i(content)
    if v.bit_length() > 8 * max_len:
        raise DerError("INTEGER longer than 32 bytes")
    return v


def parse_der_sig(der: bytes):
    tag, body, end = _read_tlv(der, 0)
    if tag != 0x30:
        raise DerError("not a SEQUENCE")
    if end != len(der):
        raise DerError("trailing bytes")
    t1, c1, p = _read_tlv(body, 0)
    if t1 != 0x02:
        raise DerError("r not INTEGER")
    t2, c2, p = _read_tlv(body, p)
    if t2 != 0x02:
        raise DerError("s not INTEGER")
    if p != len(body):
        raise DerError("extra elements in SEQUENCE")
    return _parse_uint(c1), _parse_uint(c2)


def parse_der_cipher(der: bytes) -> bytes:
    """Returns C1||C3||C2 (C1 uncompressed). Strict."""
    tag, body, end = _read_tlv(der, 0)
    if tag != 0x30:
        raise DerError("not a SEQUENCE")
    if end != len(der):
        raise DerError("trailing bytes")
    p = 0
    fields = []
    for want in (0x02, 0x02, 0x04, 0x04):
        t, c, p = _read_tlv(body, p)
        if t != want:
            raise DerError("wrong tag in SM2Cipher")
        fields.append(c)
    if p != len(body):
        raise DerError("extra elements in SM2Cipher")
    x, y = _parse_uint(fields[0]), _parse_uint(fields[1])
    if len(fields[2]) != 32:
        raise DerError("HASH is not 32 bytes")
    return b"\x04" + i2b(x) + i2b(y) + fields[2] + fields[3]
