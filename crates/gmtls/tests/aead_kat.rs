//! Known-answer tests of the provider's record protection: the RFC 8998 Appendix A vectors
//! through `AEAD_SM4_GCM` / `AEAD_SM4_CCM`, and the TLS 1.3 record layer (RFC 8446 §5.2,
//! §5.3: nonce = IV XOR seq, AAD = the record header, TLSInnerPlaintext = content ‖ type)
//! checked against an independent computation with `crypto_sm::sm4::encrypt`.

use crypto::Sm4Mode;
use crypto_sm::sm4::{self, Sm4Secret};
use gmtls::rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, OutboundChunks, OutboundPlainMessage, Tls13AeadAlgorithm,
};
use gmtls::rustls::{ContentType, ProtocolVersion};
use gmtls::{AEAD_SM4_CCM, AEAD_SM4_GCM, Sm4AeadAlgorithm};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

// RFC 8998 Appendix A (A.1 SM4-GCM, A.2 SM4-CCM): the same inputs for both modes.
const KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const IV: &str = "00001234567800000000ABCD";
const AAD: &str = "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2";
const PLAINTEXT: &str = "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD
                         EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFF EEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA";
const GCM_CIPHERTEXT: &str = "17F399F08C67D5EE19D0DC9969C4BB7D 5FD46FD3756489069157B282BB200735
                              D82710CA5C22F0CCFA7CBF93D496AC15 A56834CBCF98C397B4024A2691233B8D";
const GCM_TAG: &str = "83DE3541E4C2B58177E065A9BF7B62EC";
const CCM_CIPHERTEXT: &str = "48AF93501FA62ADBCD414CCE6034D895 DDA1BF8F132F042098661572E7483094
                              FD12E518CE062C98ACEE28D95DF4416B ED31A2F04476C18BB40C84A74B97DC5B";
const CCM_TAG: &str = "16842D4FA186F56AB33256971FA110F4";

fn algorithms() -> [(
    &'static Sm4AeadAlgorithm,
    Sm4Mode,
    &'static str,
    &'static str,
); 2] {
    [
        (&AEAD_SM4_GCM, Sm4Mode::Gcm, GCM_CIPHERTEXT, GCM_TAG),
        (&AEAD_SM4_CCM, Sm4Mode::Ccm, CCM_CIPHERTEXT, CCM_TAG),
    ]
}

fn iv(bytes: &[u8]) -> Iv {
    Iv::from(<[u8; 12]>::try_from(bytes).unwrap())
}

#[test]
fn rfc8998_appendix_a_vectors_through_the_provider_aeads() {
    let (key, nonce, aad, pt) = (h(KEY), h(IV), h(AAD), h(PLAINTEXT));
    let nonce: [u8; 12] = nonce.try_into().unwrap();
    for (alg, mode, ct, tag) in algorithms() {
        let expected = [h(ct), h(tag)].concat();
        let sealed = alg.seal(&key, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            hex::encode(&expected),
            "{mode:?} seal"
        );
        assert_eq!(
            alg.open(&key, &nonce, &aad, &expected).unwrap(),
            pt,
            "{mode:?} open"
        );
        // Every flipped bit of ciphertext, tag, AAD or nonce is refused.
        for i in 0..expected.len() * 8 {
            let mut bad = expected.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                alg.open(&key, &nonce, &aad, &bad).is_err(),
                "{mode:?} bit {i}"
            );
        }
        for i in 0..aad.len() * 8 {
            let mut bad = aad.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                alg.open(&key, &nonce, &bad, &expected).is_err(),
                "{mode:?} aad bit {i}"
            );
        }
        for i in 0..96 {
            let mut bad = nonce;
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                alg.open(&key, &bad, &aad, &expected).is_err(),
                "{mode:?} nonce bit {i}"
            );
        }
        assert!(
            alg.open(&key, &nonce, &aad, &expected[..15]).is_err(),
            "short input"
        );
    }
    // The two suites' AEADs are not interchangeable.
    let gcm = AEAD_SM4_GCM.seal(&key, &nonce, &aad, &pt).unwrap();
    assert!(AEAD_SM4_CCM.open(&key, &nonce, &aad, &gcm).is_err());
}

#[test]
fn the_aead_takes_16_byte_keys_and_refuses_others() {
    assert_eq!(AEAD_SM4_GCM.key_len(), 16);
    assert_eq!(AEAD_SM4_CCM.key_len(), 16);
    let nonce = [0u8; 12];
    for len in [0usize, 15, 17, 32] {
        assert!(
            AEAD_SM4_GCM.seal(&vec![7; len], &nonce, b"", b"x").is_err(),
            "{len}"
        );
    }
    // Outside rustls an AeadKey is 32 bytes: the record layer refuses it rather than using a
    // part of it.
    let mut enc = AEAD_SM4_GCM.encrypter(AeadKey::from([7u8; 32]), Iv::from([0u8; 12]));
    let msg = OutboundPlainMessage {
        typ: ContentType::ApplicationData,
        version: ProtocolVersion::TLSv1_2,
        payload: OutboundChunks::Single(b"data"),
    };
    assert!(enc.encrypt(msg, 0).is_err());
}

/// The record the encrypter should produce, computed independently: RFC 8446 §5.2/§5.3 with
/// the one-shot AEAD of crypto-sm.
fn expected_record(
    mode: Sm4Mode,
    key: &[u8],
    iv: &[u8],
    seq: u64,
    payload: &[u8],
    typ: u8,
) -> Vec<u8> {
    let mut nonce = iv.to_vec();
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let len = payload.len() + 1 + 16;
    let aad = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
    let inner = [payload, &[typ]].concat();
    let body = sm4::encrypt(
        &Sm4Secret::from_slice(key).unwrap(),
        mode,
        &nonce,
        &aad,
        &inner,
    )
    .unwrap();
    [&aad[..], &body].concat()
}

#[test]
fn the_record_layer_matches_an_independent_computation_and_refuses_any_flipped_bit() {
    let (key, iv_bytes) = (h(KEY), h(IV));
    let seqs = [0u64, 1, 2, 255, 256, 0x0102_0304_0506_0708, u64::MAX];
    let lens = [0usize, 1, 15, 16, 17, 100, 1024, 16384];
    let types = [
        (ContentType::ApplicationData, 23u8),
        (ContentType::Handshake, 22),
        (ContentType::Alert, 21),
    ];
    for (alg, mode, _, _) in algorithms() {
        let mut enc = alg.encrypter_for_key(&key, iv(&iv_bytes));
        let mut dec = alg.decrypter_for_key(&key, iv(&iv_bytes));
        for (i, &seq) in seqs.iter().enumerate() {
            let len = lens[i % lens.len()];
            let (typ, typ_byte) = types[i % types.len()];
            let payload: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            let msg = OutboundPlainMessage {
                typ,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::Single(&payload),
            };
            let record = enc.encrypt(msg, seq).unwrap().encode();
            assert_eq!(
                hex::encode(&record),
                hex::encode(expected_record(
                    mode, &key, &iv_bytes, seq, &payload, typ_byte
                )),
                "{mode:?} seq {seq} len {len}"
            );
            assert_eq!(enc.encrypted_payload_len(len), record.len() - 5);
            // It opens at its own sequence number and gives back payload and type...
            let mut body = record[5..].to_vec();
            let m = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            );
            let plain = dec.decrypt(m, seq).unwrap();
            assert_eq!(plain.payload, &payload[..]);
            assert_eq!(plain.typ, typ);
            // ...and not at another.
            let mut body = record[5..].to_vec();
            let m = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            );
            assert!(dec.decrypt(m, seq ^ 1).is_err(), "{mode:?} wrong seq");
        }
        // Every flipped bit of one record (header length bytes included: they are the AAD) is
        // refused.
        let seq = 5;
        let payload = b"a TLS record body".to_vec();
        let msg = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(&payload),
        };
        let record = enc.encrypt(msg, seq).unwrap().encode();
        for i in 0..(record.len() - 5) * 8 {
            let mut body = record[5..].to_vec();
            body[i / 8] ^= 1 << (i % 8);
            let m = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            );
            assert!(dec.decrypt(m, seq).is_err(), "{mode:?} body bit {i}");
        }
        // A record cut short (so its header, the AAD, changes) or shorter than a tag.
        for cut in [1usize, 16, record.len() - 5] {
            let mut body = record[5..record.len() - cut].to_vec();
            let m = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            );
            assert!(dec.decrypt(m, seq).is_err(), "{mode:?} cut {cut}");
        }
        // Under another key or IV it does not open.
        let mut other_key = key.clone();
        other_key[0] ^= 0x80;
        let mut other_iv = iv_bytes.clone();
        other_iv[11] ^= 1;
        for (k, v) in [(&other_key, &iv_bytes), (&key, &other_iv)] {
            let mut dec = alg.decrypter_for_key(k, iv(v));
            let mut body = record[5..].to_vec();
            let m = InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            );
            assert!(dec.decrypt(m, seq).is_err());
        }
    }
}

#[test]
fn at_sequence_zero_the_record_nonce_is_the_iv() {
    // The Appendix A nonce used as a record layer's static IV: at seq 0 the record is the
    // Appendix A AEAD with the record header as AAD, i.e. the same function the vectors pin.
    let (key, iv_bytes, pt) = (h(KEY), h(IV), h(PLAINTEXT));
    for (alg, _, _, _) in algorithms() {
        let mut enc = alg.encrypter_for_key(&key, iv(&iv_bytes));
        let msg = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(&pt),
        };
        let record = enc.encrypt(msg, 0).unwrap().encode();
        let inner = [&pt[..], &[23]].concat();
        let nonce: [u8; 12] = iv_bytes.clone().try_into().unwrap();
        assert_eq!(
            record[5..],
            alg.seal(&key, &nonce, &record[..5], &inner).unwrap()[..]
        );
    }
}
