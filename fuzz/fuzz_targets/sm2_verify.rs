//! SM2 verification on arbitrary bytes, two ways in:
//! - mode 0: a public key in any point form (through the decoder), a 32-byte digest and a raw
//!   r ‖ s, all from the input;
//! - mode 1: a key d and nonce k from the input sign a message (`danger::sign_with_k`, so the
//!   signature is valid), then one input-chosen bit of r ‖ s or of the digest may be flipped.
//!
//! No panic, and the variable-time path (`verify_digest`) returns exactly what the previous
//! implementation (`verify_digest_reference`) returns; in mode 1 an unflipped signature verifies.
#![no_main]
use crypto::{Digest, Signature, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // digest (32) ‖ r ‖ s (64) ‖ point encoding (the rest)
        if data.len() < 96 {
            return;
        }
        let (head, point) = data.split_at(96);
        let Ok(key) = crypto_sm::sm2::parse_public_key(point) else {
            return;
        };
        let e = Digest(head[..32].try_into().expect("32 bytes"));
        let sig = Signature::from_raw(&head[32..96]).expect("64 bytes");
        let fast = crypto_sm::sm2::verify_digest(&key, &e, &sig);
        let reference = crypto_sm::sm2::verify_digest_reference(&key, &e, &sig);
        assert_eq!(fast, reference);
    } else {
        // d (32) ‖ k (32) ‖ flip (2) ‖ message (the rest)
        if data.len() < 66 {
            return;
        }
        let Ok(key) = crypto_sm::sm2::PrivateKey::from_bytes(&data[..32]) else {
            return;
        };
        let k: [u8; 32] = data[32..64].try_into().expect("32 bytes");
        let msg = &data[66..];
        let Ok(sig) = crypto_sm::danger::sign_with_k(&key, &UserId::default(), msg, &k) else {
            return;
        };
        let public = key.public_key();
        let mut e = crypto_sm::sm2::message_digest(&UserId::default(), &public, msg);
        let mut raw = [0u8; 64];
        raw[..32].copy_from_slice(sig.r());
        raw[32..].copy_from_slice(sig.s());
        // flip selects one of 768 bits (r ‖ s, then e) or none.
        let flip = usize::from(u16::from_be_bytes([data[64], data[65]]));
        if flip < 512 {
            raw[flip / 8] ^= 1 << (flip % 8);
        } else if flip < 768 {
            e.0[(flip - 512) / 8] ^= 1 << (flip % 8);
        }
        let sig = Signature::from_raw(&raw).expect("64 bytes");
        let fast = crypto_sm::sm2::verify_digest(&public, &e, &sig);
        let reference = crypto_sm::sm2::verify_digest_reference(&public, &e, &sig);
        assert_eq!(fast, reference);
        assert_eq!(fast.is_ok(), flip >= 768, "flip {flip}: {fast:?}");
    }
});
