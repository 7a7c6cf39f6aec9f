//! `gmchain_softtoken`: a PKCS#11 v2.40 module (a `cdylib`) with SM2, SM3 and SM4 as
//! vendor-defined mechanisms, built on `crypto-sm`. It is gmchain's development token and the
//! HSM of CI: clients load it like any vendor module (`C_GetFunctionList`) and it behaves like a
//! real token: SO and user PINs with persisted retry counters, sessions, login state, token and
//! session objects, sensitive and unextractable keys, key usage enforced.
//!
//! **It is not a certified cryptographic module** and protects keys only as well as the file
//! permissions and PINs of the machine it runs on.
//!
//! What it refuses to do:
//! - write a private or secret value to disk in plaintext: every SM2 d and SM4 key is sealed
//!   with SM4-GCM under a random 16-byte token key, which is itself stored only wrapped
//!   (SM4-GCM) under PBKDF2-HMAC-SM3 of the user PIN and, separately, of the SO PIN;
//! - reveal a key value unless the key was made with `CKA_SENSITIVE` false and
//!   `CKA_EXTRACTABLE` true (the defaults are sensitive and unextractable); wrap a key that is
//!   not extractable;
//! - let one key both wrap and decrypt, both wrap and encrypt, or both unwrap and encrypt: it
//!   could decrypt what it wrapped (every extractable key in clear), give the SM4-CTR keystream
//!   of a GCM wrap (the same), or unwrap a value of the caller's choosing. Key creation,
//!   `C_UnwrapKey` and `C_SetAttributeValue` (also in two steps) refuse the pair with
//!   `CKR_TEMPLATE_INCONSISTENT`, and `CKA_WRAP` never goes back to false (a key that wrapped
//!   could otherwise take `CKA_DECRYPT` and open its blobs); a key stored with such a pair by an
//!   earlier version keeps wrapping and unwrapping but no longer encrypts or decrypts
//!   (`CKR_KEY_FUNCTION_NOT_PERMITTED`);
//! - take a GCM nonce from the caller for `C_WrapKey`: the 12-byte IV must be all zero, and the
//!   token writes the fresh random nonce it used back into `CK_GCM_PARAMS.pIv` (two wraps under
//!   one nonce, one of a key whose value the caller knows, would give the other in clear).
//!   Unwrapping, and encrypting data, use the caller's nonce;
//! - let a key wrap unless its value never left the token: `CKA_WRAP` only on a key generated
//!   here that is `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE`. A key made by value or
//!   unwrapped may have a value the caller knows, a non-sensitive one reads out, an extractable
//!   one can be wrapped out and unwrapped as a copy that decrypts: under any of them every
//!   extractable key would come out. Creation, `C_UnwrapKey` and `C_SetAttributeValue` refuse
//!   (`CKR_TEMPLATE_INCONSISTENT`); a stored wrapping key of another origin (from an earlier
//!   version) keeps unwrapping but no longer wraps (`CKR_KEY_FUNCTION_NOT_PERMITTED`).
//!   Unwrapping keys may be of any origin: what they make is no better known than a key made
//!   by value;
//! - make an unwrapped key that is not `CKA_SENSITIVE`: whatever the template omits, the key
//!   `C_UnwrapKey` makes is sensitive, and a template with `CKA_SENSITIVE` false is refused
//!   (`CKR_TEMPLATE_INCONSISTENT`), since a non-sensitive copy of a wrapped sensitive key would
//!   read in clear. It may be `CKA_EXTRACTABLE` (it came wrapped). `C_CopyObject` and
//!   `C_DeriveKey` are not offered, and `CKA_SENSITIVE` (to false) and `CKA_EXTRACTABLE` (to
//!   true) never change back. Refusals of these key-protection rules get one line on stderr
//!   (`gmchain-softtoken: refused: <rule> (CKR_…)`), naming no key material;
//! - tell one unusable wrapped key from another: length, padding, tag or content, `C_UnwrapKey`
//!   answers `CKR_WRAPPED_KEY_INVALID`, after every check that does not need the blob; and
//!   wrap or unwrap an SM2 private key with CBC-PAD (only GCM, which authenticates the blob:
//!   otherwise which altered blobs unwrap would tell the range of d);
//! - let an SM2 private key both unwrap and decrypt: it would decrypt a GM/T 0009 envelope's
//!   SM2Cipher and put the envelope's key, and the enveloped private key, in host memory. A
//!   key unwrapped under an SM2 key (`CKM_GM_SM2_ENCRYPT` in `C_UnwrapKey`, the SM2Cipher in
//!   DER) only unwraps and is never extractable; `CKM_GM_SM4_ECB` unwraps only an SM2 private
//!   key whose public key the template names (`CKA_EC_POINT`), and a d of another public key
//!   is `CKR_WRAPPED_KEY_INVALID`, so no altered ECB blob ever unwraps. `C_WrapKey` under an
//!   SM2 key is not offered (wrapping to a public key the caller made would let any extractable
//!   key out in clear);
//! - let a panic cross the C boundary (it becomes `CKR_GENERAL_ERROR`).
//!
//! # Environment (read at `C_Initialize`)
//!
//! | variable | meaning |
//! |---|---|
//! | `GMCHAIN_SOFTTOKEN_DIR` | storage directory (required; created if missing); slot N is `<dir>/slot<N>/` |
//! | `GMCHAIN_SOFTTOKEN_SLOTS` | number of slots, ids `0..N` (default 2, at most 64) |
//! | `GMCHAIN_SOFTTOKEN_FAULTS` | `1` enables the test-only fault switch below |
//!
//! Without `GMCHAIN_SOFTTOKEN_DIR`, `C_Initialize` returns `CKR_GENERAL_ERROR` and prints one
//! line naming the variable to stderr.
//!
//! # Vendor codes
//!
//! | name | value | use |
//! |---|---|---|
//! | `CKK_GM_SM2` | `0x80474D01` | SM2 key pair; `CKA_EC_PARAMS` = OID 1.2.156.10197.1.301, public key `CKA_EC_POINT` = DER OCTET STRING of `04‖x‖y` |
//! | `CKK_GM_SM4` | `0x80474D02` | SM4 key, 16 bytes |
//! | `CKM_GM_SM2_KEY_PAIR_GEN` | `0x80474D10` | `C_GenerateKeyPair` |
//! | `CKM_GM_SM2_SIGN` | `0x80474D11` | sign/verify e = SM3(ZA‖M) (32 bytes, computed by the caller); no parameter; raw r‖s |
//! | `CKM_GM_SM2_SM3_SIGN` | `0x80474D12` | sign/verify M; parameter = user ID (0..=8191 bytes; NULL/empty = `1234567812345678`); raw r‖s |
//! | `CKM_GM_SM2_ENCRYPT` | `0x80474D13` | encrypt (public key) / decrypt (private key), raw C1‖C3‖C2, C1 uncompressed; `C_UnwrapKey` of an SM4 key under an SM2 private key, the blob a GM/T 0009 SM2Cipher in DER (an envelope's `symEncryptedKey`) |
//! | `CKM_GM_SM3` | `0x80474D20` | digest |
//! | `CKM_GM_SM4_KEY_GEN` | `0x80474D30` | `C_GenerateKey` |
//! | `CKM_GM_SM4_ECB` | `0x80474D31` | no padding; `C_UnwrapKey` of an SM2 private key only (an envelope's `sm2EncryptedPrivateKey`), the template naming its public key in `CKA_EC_POINT` |
//! | `CKM_GM_SM4_CBC` | `0x80474D32` | 16-byte IV parameter, no padding |
//! | `CKM_GM_SM4_CBC_PAD` | `0x80474D33` | 16-byte IV, PKCS#7; also wrap/unwrap of SM4 keys |
//! | `CKM_GM_SM4_CTR` | `0x80474D34` | parameter = 16-byte initial counter block, 128-bit big-endian increment |
//! | `CKM_GM_SM4_GCM` | `0x80474D35` | `CK_GCM_PARAMS` (12-byte IV, `ulTagBits` 128); output ciphertext‖tag; also wrap/unwrap (the only one for SM2 private keys; to wrap, pass an all-zero IV: the token draws the nonce and writes it back) |
//!
//! Defaults when a template is silent: `CKA_TOKEN` false; `CKA_PRIVATE` true for private and
//! secret keys, false for public keys; `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false; SM2
//! private keys `CKA_SIGN` true and `CKA_DECRYPT`/`CKA_UNWRAP` false; SM2 public keys
//! `CKA_VERIFY` true and `CKA_ENCRYPT` false; SM4 keys `CKA_ENCRYPT`/`CKA_DECRYPT` true and
//! `CKA_WRAP`/`CKA_UNWRAP` false, except that a template asking for `CKA_WRAP` or `CKA_UNWRAP`
//! makes a key-encryption key, whose `CKA_ENCRYPT`/`CKA_DECRYPT` default to false.
//!
//! PINs are 4 to 64 bytes; a PIN of another length is answered `CKR_PIN_LEN_RANGE` without
//! counting an attempt (no correct PIN has that length). Each real attempt is counted on disk
//! (written and fsynced) before the PIN is checked; the fifth consecutive wrong user PIN (tenth
//! for the SO) returns `CKR_PIN_LOCKED` and locks it. `C_InitPIN` (by the SO) sets a new user
//! PIN and unlocks it; a locked SO PIN is final (make a new token directory).
//!
//! # Not supported
//!
//! `C_GetOperationState`, `C_SetOperationState`, `C_CopyObject`, `C_GetObjectSize`,
//! `C_DigestKey`, `C_SignRecoverInit`/`C_SignRecover`, `C_VerifyRecoverInit`/`C_VerifyRecover`,
//! the dual-function updates (`C_DigestEncryptUpdate`, `C_DecryptDigestUpdate`,
//! `C_SignEncryptUpdate`, `C_DecryptVerifyUpdate`), `C_DeriveKey` and `C_WaitForSlotEvent`
//! answer `CKR_FUNCTION_NOT_SUPPORTED`; `C_SeedRandom` answers `CKR_RANDOM_SEED_NOT_SUPPORTED`;
//! `C_GetFunctionStatus`/`C_CancelFunction` answer `CKR_FUNCTION_NOT_PARALLEL`. Objects other
//! than SM2/SM4 keys (certificates, data objects) cannot be created. Multi-part encryption and
//! decryption buffer their input and produce all output at `C_*Final`.
//!
//! Deliberate differences from PKCS#11 v2.40: object handles of token objects stay valid
//! across `C_Logout`/`C_Login` (the standard invalidates handles of private objects), so a
//! client that re-logs in after fault 3 keeps its handles; one active operation of each kind
//! (find, digest, sign, verify, encrypt, decrypt) is allowed per session at the same time.
//!
//! # Fault switch (tests only)
//!
//! `extern "C" fn gmchain_softtoken_set_fault(kind: u32) -> CK_RV`, exported next to
//! `C_GetFunctionList`, works only if `GMCHAIN_SOFTTOKEN_FAULTS=1` was set at `C_Initialize`
//! (otherwise `CKR_FUNCTION_NOT_SUPPORTED`):
//!
//! | kind | effect |
//! |---|---|
//! | 0 | off: clears fault 2 |
//! | 1 | every open session is closed internally: their handles answer `CKR_SESSION_HANDLE_INVALID` from now on; as with any closing of a token's last session, the application is logged out; new sessions work |
//! | 2 | device removed: every call answers `CKR_DEVICE_REMOVED` (except `C_Initialize`, `C_Finalize`, `C_GetInfo`, `C_GetFunctionList`) until kind 0; all sessions are gone afterwards |
//! | 3 | the application is logged out (as if its last session closed elsewhere): operations on private keys answer `CKR_USER_NOT_LOGGED_IN` until `C_Login`; sessions and object handles stay valid |
//!
//! # Layout
//!
//! All `unsafe` code is in [`ffi`]; every other module forbids it. [`module::Module`] is the
//! whole token as safe Rust, one method per PKCS#11 function; [`storage`] documents the files.

// This crate is an FFI boundary: a PKCS#11 module must export C functions that read and write
// through caller pointers. The workspace denies unsafe code; this crate allows it, keeps all of
// it in `ffi`, and every other module carries #![forbid(unsafe_code)].
#![allow(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod attr;
pub mod config;
pub mod error;
pub mod ffi;
pub mod keywrap;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod ops;
pub mod storage;
pub mod token;
pub mod vendor;

pub use error::{Error, Result};
pub use module::Module;
