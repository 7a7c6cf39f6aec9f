"""Independent implementations used to cross-check every vector.

* ``ossl_*``  -- the ``openssl`` command-line tool (OpenSSL 3.0.x), via subprocess.
* ``pyx_*``   -- PyPI ``gmssl-pyx`` (binding of the GmSSL C library).
* ``gm_*``    -- PyPI ``gmssl`` (pure Python) high-level functions.

The reference arithmetic of our own lives in gm_ref.py.
"""

import atexit
import os
import shutil
import subprocess
import tempfile

import gmssl
import gmssl_pyx
from gmssl import sm3 as _gm_sm3
from gmssl.sm2 import CryptSM2 as _CryptSM2
from gmssl.sm4 import CryptSM4 as _CryptSM4, SM4_ENCRYPT, SM4_DECRYPT

import gm_ref as ref

SM2_OID = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
EC_PUBKEY_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1

_TMP = tempfile.mkdtemp(prefix="gmvec-")
atexit.register(shutil.rmtree, _TMP, True)


def _path(name):
    return os.path.join(_TMP, name)


def _write(name, data: bytes):
    p = _path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def _run(args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True)


def openssl_version() -> str:
    return _run(["openssl", "version"]).stdout.decode().strip()


def package_versions() -> dict:
    from importlib.metadata import version
    return {"gmssl": version("gmssl"), "gmssl-pyx": version("gmssl-pyx"),
            "pycryptodomex": version("pycryptodomex"), "cryptography": version("cryptography")}


# ---------------------------------------------------------------- OpenSSL CLI

def ossl_sm3(data: bytes) -> bytes:
    p = _run(["openssl", "dgst", "-sm3", "-binary"], stdin=data)
    assert p.returncode == 0, p.stderr
    return p.stdout


def ossl_hmac_sm3(key: bytes, msg: bytes) -> bytes:
    f = _write("hmac.in", msg)
    keyopt = ("hexkey:" + key.hex()) if key else "key:"
    args = ["openssl", "mac", "-digest", "SM3", "-macopt", keyopt, "-in", f, "-binary", "HMAC"]
    p = _run(args)
    assert p.returncode == 0, p.stderr
    return p.stdout


def ossl_kdf(z: bytes, klen: int) -> bytes:
    """ANSI X9.63 KDF with SM3 and empty SharedInfo == GB/T 32918.4 5.4.3 KDF."""
    p = _run(["openssl", "kdf", "-binary", "-keylen", str(klen), "-kdfopt", "digest:SM3",
              "-kdfopt", "hexsecret:" + z.hex(), "X963KDF"])
    assert p.returncode == 0, p.stderr
    return p.stdout


def ossl_sm4(mode: str, key: bytes, iv, data: bytes, pad: bool = False, decrypt: bool = False):
    f = _write("sm4.in", data)
    args = ["openssl", "enc", "-sm4-" + mode, "-K", key.hex(), "-in", f]
    if iv is not None:
        args += ["-iv", iv.hex()]
    if not pad:
        args.append("-nopad")
    if decrypt:
        args.append("-d")
    p = _run(args)
    if p.returncode != 0:
        return None
    return p.stdout


def sec1_privkey_der(d: int, with_pub: bool = False) -> bytes:
    body = ref.der_tlv(0x02, b"\x01") + ref.der_tlv(0x04, ref.i2b(d)) + ref.der_tlv(0xA0, SM2_OID)
    if with_pub:
        body += ref.der_tlv(0xA1, ref.der_tlv(0x03, b"\x00" + ref.encode_point(ref.pubkey_of(d))))
    return ref.der_tlv(0x30, body)


def spki_der(point_bytes: bytes) -> bytes:
    alg = ref.der_tlv(0x30, EC_PUBKEY_OID + SM2_OID)
    return ref.der_tlv(0x30, alg + ref.der_tlv(0x03, b"\x00" + point_bytes))


def ossl_spki_from_d(d: int) -> bytes:
    """OpenSSL derives the public key itself (the SEC1 structure carries d only)."""
    f = _write("d.der", sec1_privkey_der(d))
    p = _run(["openssl", "pkey", "-inform", "DER", "-in", f, "-pubout", "-outform", "DER"])
    assert p.returncode == 0, p.stderr
    return p.stdout


def ossl_point_from_d(d: int):
    spki = ossl_spki_from_d(d)
    pt = spki[-65:]
    assert pt[0] == 4
    return (ref.b2i(pt[1:33]), ref.b2i(pt[33:]))


def ossl_convert_spki(spki: bytes, form: str):
    """Let OpenSSL parse an SPKI (with a point in any form) and re-emit it with the point in
    `form` (uncompressed, compressed or hybrid); returns DER bytes or None if OpenSSL rejects
    the key."""
    f = _write("pubc.der", spki)
    p = _run(["openssl", "ec", "-pubin", "-inform", "DER", "-in", f, "-pubout", "-outform", "DER",
              "-conv_form", form])
    if p.returncode != 0:
        return None
    return p.stdout


def ossl_uncompress_spki(spki: bytes):
    """Let OpenSSL parse an SPKI (e.g. with a compressed point) and re-emit it
    uncompressed; returns DER bytes or None if OpenSSL rejects the key."""
    return ossl_convert_spki(spki, "uncompressed")


def ossl_pubkey_accepts(point_bytes: bytes) -> bool:
    """Does OpenSSL accept an SPKI with this point encoding (and the key check)?"""
    f = _write("pubx.der", spki_der(point_bytes))
    p = _run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", f, "-pubcheck", "-noout"])
    return p.returncode == 0


def ossl_sm2_verify(pub, user_id: bytes, msg: bytes, sig_der: bytes) -> bool:
    pf = _write("pub.der", spki_der(ref.encode_point(pub)))
    mf = _write("msg.bin", msg)
    sf = _write("sig.der", sig_der)
    p = _run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", pf,
              "-rawin", "-digest", "sm3", "-in", mf, "-sigfile", sf,
              "-pkeyopt", "hexdistid:" + user_id.hex()])
    out = p.stdout.decode()
    if p.returncode == 0:
        assert "Verified Successfully" in out, out
        return True
    return False


def ossl_sm2_decrypt(d: int, cipher_der: bytes):
    kf = _write("k.der", sec1_privkey_der(d, with_pub=True))
    cf = _write("c.der", cipher_der)
    p = _run(["openssl", "pkeyutl", "-decrypt", "-keyform", "DER", "-inkey", kf, "-in", cf])
    if p.returncode != 0:
        return None
    return p.stdout


def ossl_asn1parse_ok(der: bytes) -> bool:
    f = _write("a.der", der)
    p = _run(["openssl", "asn1parse", "-inform", "DER", "-in", f])
    return p.returncode == 0


# ---------------------------------------------------------------- gmssl-pyx (GmSSL C)

def pyx_sm3(data: bytes) -> bytes:
    return gmssl_pyx.sm3_hash(data)


def pyx_hmac(key: bytes, msg: bytes) -> bytes:
    return gmssl_pyx.sm3_hmac(key, msg)


def pyx_kdf(z: bytes, klen: int) -> bytes:
    return gmssl_pyx.sm3_kdf(z, klen)


def pyx_cbc_pkcs7(key, iv, pt):
    return gmssl_pyx.sm4_cbc_padding_encrypt(key, iv, pt)


def pyx_cbc_pkcs7_dec(key, iv, ct):
    return gmssl_pyx.sm4_cbc_padding_decrypt(key, iv, ct)


def pyx_cbc_nopad(key, iv, pt):
    """CBC is prefix-consistent: CBC-PKCS7 of a block-aligned input is the
    unpadded CBC ciphertext followed by one padding block."""
    assert len(pt) % 16 == 0
    return gmssl_pyx.sm4_cbc_padding_encrypt(key, iv, pt)[:len(pt)]


def pyx_ctr(key, iv, data):
    return gmssl_pyx.sm4_ctr_encrypt(key, iv, data)


def pyx_gcm_encrypt(key, nonce, aad, pt):
    return gmssl_pyx.sm4_gcm_encrypt(key, nonce, aad, pt)


def pyx_gcm_decrypt(key, nonce, aad, ct, tag):
    try:
        return gmssl_pyx.sm4_gcm_decrypt(key, nonce, aad, ct, tag)
    except Exception:
        return None


def pyx_sm2_verify(pub, user_id: bytes, msg: bytes, sig_der: bytes):
    """True / False; None when GmSSL cannot be asked (it refuses an empty ID)."""
    if not user_id:
        return None
    try:
        return bool(gmssl_pyx.sm2_verify(ref.encode_point(pub)[1:], msg, sig_der, user_id))
    except Exception:
        return False


def pyx_sm2_decrypt(d: int, cipher_der: bytes):
    try:
        return gmssl_pyx.sm2_decrypt(ref.i2b(d), cipher_der)
    except Exception:
        return None


# ---------------------------------------------------------------- gmssl (pure Python)

def gm_sm3(data: bytes) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_hash(list(data)))


def gm_kdf(z: bytes, klen: int) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_kdf(z.hex().encode(), klen))


def gm_sm4_block(key, block, decrypt=False):
    c = _CryptSM4()
    c.set_key(key, SM4_DECRYPT if decrypt else SM4_ENCRYPT)
    return bytes(c.one_round(c.sk, list(block)))


def gm_sm4_iterate(key, block, n):
    c = _CryptSM4()
    c.set_key(key, SM4_ENCRYPT)
    b = list(block)
    for _ in range(n):
        b = c.one_round(c.sk, b)
    return bytes(b)


def gm_cbc_pkcs7(key, iv, pt):
    c = _CryptSM4()
    c.set_key(key, SM4_ENCRYPT)
    return c.crypt_cbc(iv, pt)


def _gm_sm2(d_hex="00" * 32):
    # public key unused by the operations we call; pass a dummy without "04"
    return _CryptSM2(private_key=d_hex, public_key="11" * 64, mode=1)


def gm_sm2_sign_e(d: int, e: bytes, k: int):
    """gmssl's own SM2 signing core over a precomputed e, with explicit k."""
    sig = _gm_sm2(ref.i2b(d).hex()).sign(e, "%064x" % k)
    return int(sig[:64], 16), int(sig[64:], 16)


def gm_point_mul(k: int, pt):
    c = _gm_sm2()
    out = c._kg(k, "%064x%064x" % pt)
    return (int(out[:64], 16), int(out[64:], 16))


def gm_point_add(p1, p2):
    c = _gm_sm2()
    j = c._add_point("%064x%064x1" % p1, "%064x%064x" % p2)
    out = c._convert_jacb_to_nor(j)
    return (int(out[:64], 16), int(out[64:], 16))


def gm_sm2_decrypt_c1c3c2(d: int, c1c3c2: bytes) -> bytes:
    """gmssl mode=1 expects C1(64 bytes, no 04 prefix)||C3||C2 and does NOT
    check C3 -- we compare C3 ourselves."""
    return _gm_sm2(ref.i2b(d).hex()).decrypt(c1c3c2[1:])


# ---------------------------------------------------------------- pyca/cryptography (bundled OpenSSL)

def crypto_version() -> str:
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend
    return "cryptography %s (PyPI, bundled %s)" % (cryptography.__version__, backend.openssl_version_text())


def crypto_gcm_encrypt(key, nonce, aad, pt):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    e = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        e.authenticate_additional_data(aad)
    ct = e.update(pt) + e.finalize()
    return ct, e.tag


def crypto_gcm_decrypt(key, nonce, aad, ct, tag):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    try:
        d = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        if aad:
            d.authenticate_additional_data(aad)
        return d.update(ct) + d.finalize()
    except (InvalidTag, ValueError):
        return None


def ossl_privkey_check(d: int) -> bool:
    """`openssl pkey -check` on a SEC1 SM2 private key carrying only d."""
    f = _write("chk.der", sec1_privkey_der(d))
    p = _run(["openssl", "pkey", "-inform", "DER", "-in", f, "-check", "-noout"])
    return p.returncode == 0


def ossl_encrypted_pkcs8(d: int, passphrase: bytes, prf: str, iterations: int) -> bytes:
    """`openssl pkcs8 -topk8 -v2 sm4-cbc -v2prf PRF`: an encrypted PKCS#8 PEM of the SM2 key d,
    as OpenSSL writes it (random salt and IV)."""
    kf = _write("k.der", sec1_privkey_der(d, with_pub=True))
    pf = _write("pass", passphrase)
    p = _run(["openssl", "pkcs8", "-topk8", "-inform", "DER", "-in", kf, "-v2", "sm4-cbc", "-v2prf", prf,
              "-iter", str(iterations), "-passout", "file:" + pf])
    assert p.returncode == 0, p.stderr
    return p.stdout


def ossl_read_encrypted_pkcs8(pem: bytes, passphrase: bytes):
    """The d OpenSSL decrypts from an encrypted PKCS#8 PEM, or None if it refuses it."""
    kf = _write("k.pem", pem)
    pf = _write("pass", passphrase)
    p = _run(["openssl", "pkey", "-in", kf, "-passin", "file:" + pf, "-outform", "DER", "-traditional"])
    if p.returncode != 0:
        return None
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING d, ... }
    der = p.stdout
    assert der[0] == 0x30 and der[2:5] == b"\x02\x01\x01" and der[5] == 0x04 and der[6] == 32, der.hex()
    return ref.b2i(der[7:39])
