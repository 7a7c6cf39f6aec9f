#!/usr/bin/env python3
"""A second, zero-build RFC 8998 peer: the libssl inside PyPI's tongsuopy wheel (BabaSSL 8.3 on
OpenSSL 1.1.1), driven with ctypes as a TLS 1.3 client in strict SM mode with mutual
authentication. Not a supported API of tongsuopy: its _tongsuo.abi3.so merely exports libssl.

Usage: babassl_client.py SO HOST PORT SUITE CHAIN_PEM KEY_PEM CA_PEM
Prints "version <text>", "cipher 0x00c6", "tls TLSv1.3", "peer_cert <sha-free hex length>",
"received <line>" and exits 0; or prints "error <step>: <OpenSSL error queue>" and exits 1.
"""
import ctypes
import socket
import sys

SSL_CTRL_SET_GROUPS_LIST = 92
SSL_CTRL_SET_SIGALGS_LIST = 98
SSL_CTRL_SET_MIN_PROTO_VERSION = 123
SSL_CTRL_SET_MAX_PROTO_VERSION = 124
TLS1_3_VERSION = 0x0304
SSL_FILETYPE_PEM = 1
SSL_VERIFY_PEER = 1


def main(so, host, port, suite, chain, key, ca):
    lib = ctypes.CDLL(so)
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sig = {
        "OpenSSL_version": (S, [I]),
        "TLS_method": (P, []),
        "SSL_CTX_new": (P, [P]),
        "SSL_CTX_ctrl": (ctypes.c_long, [P, I, ctypes.c_long, P]),
        "SSL_CTX_set_ciphersuites": (I, [P, S]),
        "SSL_CTX_enable_sm_tls13_strict": (None, [P]),
        "SSL_CTX_use_certificate_chain_file": (I, [P, S]),
        "SSL_CTX_use_PrivateKey_file": (I, [P, S, I]),
        "SSL_CTX_check_private_key": (I, [P]),
        "SSL_CTX_load_verify_locations": (I, [P, S, S]),
        "SSL_CTX_set_verify": (None, [P, I, P]),
        "SSL_new": (P, [P]),
        "SSL_set_fd": (I, [P, I]),
        "SSL_connect": (I, [P]),
        "SSL_get_error": (I, [P, I]),
        "SSL_write": (I, [P, ctypes.c_char_p, I]),
        "SSL_read": (I, [P, ctypes.c_char_p, I]),
        "SSL_get_current_cipher": (P, [P]),
        "SSL_CIPHER_get_protocol_id": (ctypes.c_uint16, [P]),
        "SSL_get_version": (S, [P]),
        "SSL_get_peer_certificate": (P, [P]),
        "i2d_X509": (I, [P, P]),
        "SSL_shutdown": (I, [P]),
        "ERR_get_error": (ctypes.c_ulong, []),
        "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args

    def fail(step):
        errs = []
        while True:
            e = lib.ERR_get_error()
            if not e:
                break
            buf = ctypes.create_string_buffer(256)
            lib.ERR_error_string_n(e, buf, 256)
            errs.append(buf.value.decode())
        print(f"error {step}: {'; '.join(errs) or 'no OpenSSL error queued'}")
        sys.exit(1)

    # BabaSSL 8.3's crypto.h: OpenSSL_version(BABASSL_VERSION = 6).
    print(f"version {lib.OpenSSL_version(6).decode()} ({lib.OpenSSL_version(0).decode()})")
    ctx = lib.SSL_CTX_new(lib.TLS_method())
    ok = (lib.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_3_VERSION, None) == 1
          and lib.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_3_VERSION, None) == 1)
    if not ok:
        fail("protocol versions")
    if lib.SSL_CTX_set_ciphersuites(ctx, suite.encode()) != 1:
        fail("ciphersuites")
    if lib.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.c_char_p(b"SM2")) != 1:
        fail("groups")
    if lib.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_SIGALGS_LIST, 0, ctypes.c_char_p(b"sm2sig_sm3")) != 1:
        fail("sigalgs")
    lib.SSL_CTX_enable_sm_tls13_strict(ctx)
    if lib.SSL_CTX_use_certificate_chain_file(ctx, chain.encode()) != 1:
        fail("certificate chain")
    if lib.SSL_CTX_use_PrivateKey_file(ctx, key.encode(), SSL_FILETYPE_PEM) != 1:
        fail("private key")
    if lib.SSL_CTX_check_private_key(ctx) != 1:
        fail("key/certificate match")
    if lib.SSL_CTX_load_verify_locations(ctx, ca.encode(), None) != 1:
        fail("trust store")
    lib.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, None)

    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.settimeout(None)  # a Python timeout makes the fd non-blocking; libssl wants blocking
    ssl = lib.SSL_new(ctx)
    lib.SSL_set_fd(ssl, sock.fileno())
    if lib.SSL_connect(ssl) != 1:
        fail("handshake")
    line = b"ping from babassl\n"
    if lib.SSL_write(ssl, line, len(line)) != len(line):
        fail("write")
    buf = ctypes.create_string_buffer(256)
    n = lib.SSL_read(ssl, buf, 256)
    if n <= 0:
        fail("read")
    cipher = lib.SSL_CIPHER_get_protocol_id(lib.SSL_get_current_cipher(ssl))
    print(f"cipher 0x{cipher:04x}")
    print(f"tls {lib.SSL_get_version(ssl).decode()}")
    peer = lib.SSL_get_peer_certificate(ssl)
    if peer:
        der_len = lib.i2d_X509(peer, None)
        out = ctypes.create_string_buffer(der_len)
        pp = ctypes.c_void_p(ctypes.addressof(out))
        lib.i2d_X509(peer, ctypes.byref(pp))
        print(f"peer_cert {out.raw.hex()}")
    print(f"received {buf.raw[:n].decode().strip()}")
    lib.SSL_shutdown(ssl)
    sock.close()


if __name__ == "__main__":
    if len(sys.argv) != 8:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
