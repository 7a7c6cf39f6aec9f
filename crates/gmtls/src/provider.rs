//! The GM-only rustls `CryptoProvider` of RFC 8998: the cipher suites `TLS_SM4_GCM_SM3`
//! (0x00C6) and `TLS_SM4_CCM_SM3` (0x00C7), the key exchange group `curveSM2` (0x0029), and
//! nothing else, so no other algorithm can be negotiated. Hashing, HMAC (and through it HKDF),
//! the AEADs and ECDHE are `crypto-sm`'s.

use std::sync::Arc;

use crypto::{RandomSource, Sm4Mode};
use crypto_sm::sm2::EphemeralKey;
use crypto_sm::sm3::{HmacSm3, Sm3Context, sm3};
use crypto_sm::sm4::{AEAD_TAG_LEN, Sm4Aead, Sm4Secret};
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter, MessageEncrypter,
    Nonce, OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload, Tls13AeadAlgorithm,
    UnsupportedOperationError, make_tls13_aad,
};
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, SharedSecret,
    SupportedKxGroup, WebPkiSupportedAlgorithms, hash, hmac,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::{
    CipherSuite, CipherSuiteCommon, ConnectionTrafficSecrets, ContentType, NamedGroup,
    ProtocolVersion, SupportedCipherSuite, Tls13CipherSuite,
};

use crate::{CURVE_SM2, TLS_SM4_CCM_SM3, TLS_SM4_GCM_SM3};

// ---------------------------------------------------------------------------------------------
// SM3 and HMAC-SM3

/// SM3 as rustls's transcript hash. `algorithm()` is an unknown value on purpose: rustls keeps
/// precomputed empty-input hashes for the algorithms it knows and computes one itself only for
/// unknown ones, so naming SM3 as any known algorithm would silently break the key schedule.
#[derive(Debug)]
struct Sm3Hash;

/// The `HashAlgorithm` codepoint rustls is given for SM3 (TLS 1.2's registry has none; 0xE0 is
/// in its private-use range and never reaches the wire in TLS 1.3).
const SM3_HASH_ALGORITHM: u8 = 0xE0;

impl hash::Hash for Sm3Hash {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(Sm3Ctx(Sm3Context::new()))
    }

    fn hash(&self, data: &[u8]) -> hash::Output {
        hash::Output::new(&sm3(data).0)
    }

    fn output_len(&self) -> usize {
        32
    }

    fn algorithm(&self) -> rustls::crypto::hash::HashAlgorithm {
        rustls::crypto::hash::HashAlgorithm::Unknown(SM3_HASH_ALGORITHM)
    }
}

struct Sm3Ctx(Sm3Context);

impl hash::Context for Sm3Ctx {
    fn fork_finish(&self) -> hash::Output {
        hash::Output::new(&self.0.clone().finish().0)
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(Sm3Ctx(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> hash::Output {
        hash::Output::new(&self.0.finish().0)
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

#[derive(Debug)]
struct HmacSm3Alg;

impl hmac::Hmac for HmacSm3Alg {
    fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
        Box::new(HmacSm3Key(HmacSm3::new(key)))
    }

    fn hash_output_len(&self) -> usize {
        32
    }
}

struct HmacSm3Key(HmacSm3);

impl hmac::Key for HmacSm3Key {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> hmac::Tag {
        let mut m = self.0.clone();
        m.update(first);
        for part in middle {
            m.update(part);
        }
        m.update(last);
        hmac::Tag::new(&m.finish())
    }

    fn tag_len(&self) -> usize {
        32
    }
}

static SM3: Sm3Hash = Sm3Hash;
static HMAC_SM3: HmacSm3Alg = HmacSm3Alg;
static HKDF_SM3: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SM3);

// ---------------------------------------------------------------------------------------------
// The AEADs (RFC 8998 §3.3: AEAD_SM4_GCM and AEAD_SM4_CCM, 16-byte key, 12-byte nonce, 16-byte tag)

/// One of the two RFC 8998 AEADs, as rustls's record protection.
#[derive(Debug)]
pub struct Sm4AeadAlgorithm(Sm4Mode);

/// `AEAD_SM4_GCM` (RFC 8998 §3.3.1), the AEAD of `TLS_SM4_GCM_SM3`.
pub static AEAD_SM4_GCM: Sm4AeadAlgorithm = Sm4AeadAlgorithm(Sm4Mode::Gcm);
/// `AEAD_SM4_CCM` (RFC 8998 §3.3.2), the AEAD of `TLS_SM4_CCM_SM3`.
pub static AEAD_SM4_CCM: Sm4AeadAlgorithm = Sm4AeadAlgorithm(Sm4Mode::Ccm);

impl Sm4AeadAlgorithm {
    fn cipher(&self, key: &[u8], iv: Iv) -> Sm4Record {
        // rustls hands over exactly key_len() bytes; a failure here would be a rustls bug, and
        // an unusable cipher then fails every record instead of using a wrong key.
        let aead = Sm4Secret::from_slice(key)
            .and_then(|k| Sm4Aead::new(&k, self.0))
            .ok();
        Sm4Record { aead, iv }
    }

    /// Test hook: the record protection [`Tls13AeadAlgorithm::encrypter`] returns, for a raw
    /// key. rustls builds `AeadKey`s of the suite's 16-byte length only inside itself (outside
    /// it an `AeadKey` is 32 bytes, which this AEAD refuses), so known-answer tests of the
    /// record layer start here.
    pub fn encrypter_for_key(&self, key: &[u8], iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(self.cipher(key, iv))
    }

    /// Test hook: the record protection [`Tls13AeadAlgorithm::decrypter`] returns, for a raw
    /// key (see [`Sm4AeadAlgorithm::encrypter_for_key`]).
    pub fn decrypter_for_key(&self, key: &[u8], iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(self.cipher(key, iv))
    }

    /// Test hook: seals `data` with any `aad` and `nonce` through the record layer's sealing
    /// code, returning ciphertext ‖ tag. The record layer fixes the AAD to the 5-byte record
    /// header and appends the content type; the RFC 8998 Appendix A vectors have a 20-byte
    /// AAD and no content type, so they are checked here.
    pub fn seal(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, rustls::Error> {
        let record = self.cipher(key, Iv::from([0u8; 12]));
        let mut buf = data.to_vec();
        let tag = record.seal(nonce, aad, &mut buf)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    /// Test hook: opens ciphertext ‖ tag with any `aad` and `nonce` through the record
    /// layer's opening code; nothing is returned unless the tag verifies.
    pub fn open(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, rustls::Error> {
        let record = self.cipher(key, Iv::from([0u8; 12]));
        let mut buf = sealed.to_vec();
        let len = record.open(nonce, aad, &mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }
}

impl Tls13AeadAlgorithm for Sm4AeadAlgorithm {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(self.cipher(key.as_ref(), iv))
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(self.cipher(key.as_ref(), iv))
    }

    fn key_len(&self) -> usize {
        16
    }

    fn extract_keys(
        &self,
        _key: AeadKey,
        _iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        // rustls 0.23 has no SM4 variant of ConnectionTrafficSecrets (kernel TLS offload).
        Err(UnsupportedOperationError)
    }
}

/// The record protection of one direction: the expanded key and the static IV.
struct Sm4Record {
    aead: Option<Sm4Aead>,
    iv: Iv,
}

impl Sm4Record {
    /// Encrypts `buf` in place; returns the tag.
    fn seal(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], rustls::Error> {
        let aead = self.aead.as_ref().ok_or(rustls::Error::EncryptError)?;
        aead.seal_in_place(nonce, aad, buf)
            .map_err(|_| rustls::Error::EncryptError)
    }

    /// Decrypts ciphertext ‖ tag in place if the tag verifies; returns the plaintext's length.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Result<usize, rustls::Error> {
        let aead = self.aead.as_ref().ok_or(rustls::Error::DecryptError)?;
        let Some(body_len) = buf.len().checked_sub(AEAD_TAG_LEN) else {
            return Err(rustls::Error::DecryptError);
        };
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&buf[body_len..]);
        aead.open_in_place(nonce, aad, &mut buf[..body_len], &tag)
            .map_err(|_| rustls::Error::DecryptError)?;
        Ok(body_len)
    }
}

impl MessageEncrypter for Sm4Record {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, rustls::Error> {
        // TLSInnerPlaintext (RFC 8446 §5.2): content ‖ type, no padding; then the tag.
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = make_tls13_aad(total_len);
        let tag = self.seal(&nonce, &aad, payload.as_mut())?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + AEAD_TAG_LEN
    }
}

impl MessageDecrypter for Sm4Record {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, rustls::Error> {
        let payload = &mut msg.payload;
        let aad = make_tls13_aad(payload.len());
        let nonce = Nonce::new(&self.iv, seq).0;
        let body_len = self.open(&nonce, &aad, payload)?;
        payload.truncate(body_len);
        msg.into_tls13_unpadded_message()
    }
}

// ---------------------------------------------------------------------------------------------
// The cipher suites (RFC 8998 §2)

/// rustls's record limit for an AEAD with a 128-bit block: 2^24.5 records, as for AES-GCM
/// (RFC 8446 §5.5); SM4 has the same block size, so the same bound holds.
const CONFIDENTIALITY_LIMIT: u64 = 1 << 23;

/// `TLS_SM4_GCM_SM3` (0x00C6).
pub static TLS13_SM4_GCM_SM3: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::Unknown(TLS_SM4_GCM_SM3),
        hash_provider: &SM3,
        confidentiality_limit: CONFIDENTIALITY_LIMIT,
    },
    hkdf_provider: &HKDF_SM3,
    aead_alg: &AEAD_SM4_GCM,
    quic: None,
};

/// `TLS_SM4_CCM_SM3` (0x00C7).
pub static TLS13_SM4_CCM_SM3: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::Unknown(TLS_SM4_CCM_SM3),
        hash_provider: &SM3,
        confidentiality_limit: CONFIDENTIALITY_LIMIT,
    },
    hkdf_provider: &HKDF_SM3,
    aead_alg: &AEAD_SM4_CCM,
    quic: None,
};

/// A cipher suite of RFC 8998.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// `TLS_SM4_GCM_SM3` (0x00C6).
    Sm4GcmSm3,
    /// `TLS_SM4_CCM_SM3` (0x00C7).
    Sm4CcmSm3,
}

impl Suite {
    /// Both, GCM first (the faster one).
    pub const ALL: [Suite; 2] = [Suite::Sm4GcmSm3, Suite::Sm4CcmSm3];

    /// Returns the IANA codepoint.
    pub fn codepoint(self) -> u16 {
        match self {
            Suite::Sm4GcmSm3 => TLS_SM4_GCM_SM3,
            Suite::Sm4CcmSm3 => TLS_SM4_CCM_SM3,
        }
    }

    /// Returns the IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Sm4GcmSm3 => "TLS_SM4_GCM_SM3",
            Suite::Sm4CcmSm3 => "TLS_SM4_CCM_SM3",
        }
    }

    /// Returns the suite negotiated as `suite`, if it is one of ours.
    pub fn from_rustls(suite: CipherSuite) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| u16::from(suite) == s.codepoint())
    }

    fn rustls(self) -> SupportedCipherSuite {
        SupportedCipherSuite::Tls13(match self {
            Suite::Sm4GcmSm3 => &TLS13_SM4_GCM_SM3,
            Suite::Sm4CcmSm3 => &TLS13_SM4_CCM_SM3,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// curveSM2 (RFC 8998 §3.1: ECDHE on sm2p256v1; key shares are uncompressed points)

/// The `curveSM2` key exchange group.
#[derive(Debug)]
pub struct CurveSm2;

/// The `curveSM2` group, for providers assembled by hand (tests wrap it to observe secrets).
pub static KX_CURVE_SM2: CurveSm2 = CurveSm2;

impl SupportedKxGroup for CurveSm2 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let key = EphemeralKey::generate(&crypto_sm::rng::SystemRandom)
            .map_err(|_| rustls::Error::FailedToGetRandomBytes)?;
        let public = key.public();
        Ok(Box::new(ActiveSm2 { key, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::Unknown(CURVE_SM2)
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        // RFC 8998 defines curveSM2 for TLS 1.3 only.
        version == ProtocolVersion::TLSv1_3
    }
}

struct ActiveSm2 {
    key: EphemeralKey,
    public: crypto::PublicKey,
}

impl ActiveKeyExchange for ActiveSm2 {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, rustls::Error> {
        // RFC 8998 §3.1 / RFC 8446 §4.2.8.2: the key share is an uncompressed point (0x04);
        // another form is refused as illegal_parameter.
        if peer_pub_key.len() != 65 || peer_pub_key[0] != 0x04 {
            return Err(rustls::PeerMisbehaved::InvalidKeyShare.into());
        }
        let x = self
            .key
            .diffie_hellman(peer_pub_key)
            .map_err(|_| rustls::Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        Ok(SharedSecret::from(&x[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::Unknown(CURVE_SM2)
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and key loading

#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        crypto_sm::rng::SystemRandom
            .fill(buf)
            .map_err(|_| GetRandomFailed)
    }
}

/// Refuses to load key bytes: every gmtls key is a `crypto::Signer` (a token handle or a
/// keystore key), given to [`crate::Credentials`], never DER handed to rustls.
#[derive(Debug)]
struct NoKeyLoading;

impl KeyProvider for NoKeyLoading {
    fn load_private_key(
        &self,
        _key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "gmtls loads no key bytes: give the key as a crypto::Signer (token or keystore)".into(),
        ))
    }
}

static OS_RANDOM: OsRandom = OsRandom;
static NO_KEY_LOADING: NoKeyLoading = NoKeyLoading;

/// Returns the GM-only provider with both suites (GCM preferred), `curveSM2`, and the system
/// RNG. Certificates and handshake signatures are verified by gmtls's own verifiers (SM2 with
/// the pki crate), so webpki's algorithm table is empty: nothing can verify through webpki.
pub fn provider() -> Arc<CryptoProvider> {
    provider_with_suites(&Suite::ALL)
}

/// Returns the provider offering only `suites`, in that order.
pub fn provider_with_suites(suites: &[Suite]) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: suites.iter().map(|s| s.rustls()).collect(),
        kx_groups: vec![&KX_CURVE_SM2],
        signature_verification_algorithms: WebPkiSupportedAlgorithms {
            all: &[],
            mapping: &[],
        },
        secure_random: &OS_RANDOM,
        key_provider: &NO_KEY_LOADING,
    })
}
