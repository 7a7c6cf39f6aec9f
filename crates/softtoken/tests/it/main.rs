//! Integration tests of the built `libgmchain_softtoken.so`, loaded like a vendor module:
//! through `cryptoki` 0.12.1, through raw `C_GetFunctionList` calls, and by OpenSC's
//! `pkcs11-tool` as an independent client.
//!
//! PKCS#11 state is per process and the configuration comes from the environment, so every test
//! that loads the module runs in a child process of this test binary with its own
//! `GMCHAIN_SOFTTOKEN_DIR` (see `common::isolated`); the parent never loads the module and
//! never changes its own environment. Run `cargo build -p softtoken` first (the tests say so
//! if the library is missing).

// Raw PKCS#11 calls through the function list are FFI: the smoke tests need `unsafe` to make
// them (with NULL pointers and malformed structures on purpose).
#![allow(unsafe_code)]

mod common;
mod cryptoki_client;
mod pkcs11_tool;
mod raw;
mod sensitive_stays_sensitive;
mod wrap_separation;
