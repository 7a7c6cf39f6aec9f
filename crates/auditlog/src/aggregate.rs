//! What a flood must not turn into one entry per event: refused connections (summed per
//! peer per minute) and key use (summed per purpose per checkpoint interval).

use crypto::{
    CipherFormat, CryptoError, Decrypter, Digest, PublicKey, Secret, Signature, Signer, UserId,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinct peers summed separately in one minute and channel; refusals of further peers are
/// summed under [`OTHER_PEERS`], so a flood from many addresses adds at most this many + 1
/// entries per minute.
pub const MAX_PEERS_PER_MINUTE: usize = 1024;
/// Distinct reasons named per peer and minute; further ones are counted as "other".
pub const MAX_REASONS: usize = 4;
/// The longest reason kept (in bytes, cut at a character boundary).
pub const MAX_REASON_LEN: usize = 160;
/// The peer name of refusals beyond [`MAX_PEERS_PER_MINUTE`].
pub const OTHER_PEERS: &str = "(other peers)";

/// One summed minute of refusals of one peer on one channel: becomes one log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalSummary {
    /// The channel's action name (`p2p-link-refused`, `api-connection-refused`).
    pub action: &'static str,
    pub peer: String,
    /// Minutes since the epoch.
    pub minute: u64,
    pub count: u64,
    /// Up to [`MAX_REASONS`] reasons and how often each was given.
    pub reasons: Vec<(String, u64)>,
    /// Refusals for reasons beyond those.
    pub other_reasons: u64,
}

impl RefusalSummary {
    /// Returns the entry's detail: `refused 10000 times in minute 29000000 (…): reason ×n; …`.
    pub fn detail(&self) -> String {
        let mut reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{r} x{n}"))
            .collect();
        if self.other_reasons > 0 {
            reasons.push(format!("other reasons x{}", self.other_reasons));
        }
        format!(
            "peer {} refused {} time{} in minute {} (from {} s): {}",
            self.peer,
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.minute,
            self.minute.saturating_mul(60),
            reasons.join("; ")
        )
    }
}

#[derive(Debug, Default)]
struct Bucket {
    count: u64,
    reasons: Vec<(String, u64)>,
    other: u64,
}

/// Refusals summed per (minute, channel, peer), with bounded memory.
#[derive(Debug, Default)]
pub struct Refusals {
    buckets: BTreeMap<(u64, &'static str, String), Bucket>,
    /// Distinct peers per (minute, channel).
    peers: BTreeMap<(u64, &'static str), usize>,
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Refusals {
    /// Counts one refusal of `peer` on channel `action` at `time` (seconds since the epoch).
    pub fn add(&mut self, time: u64, action: &'static str, peer: &str, reason: &str) {
        let minute = time / 60;
        let reason = cut(reason, MAX_REASON_LEN);
        let peer = cut(peer, MAX_REASON_LEN);
        let key = (minute, action, peer.to_string());
        let bucket = if self.buckets.contains_key(&key) {
            self.buckets.get_mut(&key)
        } else {
            let peers = self.peers.entry((minute, action)).or_default();
            let key = if *peers < MAX_PEERS_PER_MINUTE {
                *peers += 1;
                key
            } else {
                (minute, action, OTHER_PEERS.to_string())
            };
            Some(self.buckets.entry(key).or_default())
        };
        let Some(bucket) = bucket else { return };
        bucket.count += 1;
        if let Some((_, n)) = bucket.reasons.iter_mut().find(|(r, _)| r == reason) {
            *n += 1;
        } else if bucket.reasons.len() < MAX_REASONS {
            bucket.reasons.push((reason.to_string(), 1));
        } else {
            bucket.other += 1;
        }
    }

    /// Removes and returns the summaries of minutes before `minute` (all of them with
    /// `u64::MAX`), oldest first.
    pub fn drain_before(&mut self, minute: u64) -> Vec<RefusalSummary> {
        let keep = self.buckets.split_off(&(minute, "", String::new()));
        let done = std::mem::replace(&mut self.buckets, keep);
        self.peers = self.peers.split_off(&(minute, ""));
        done.into_iter()
            .map(|((minute, action, peer), b)| RefusalSummary {
                action,
                peer,
                minute,
                count: b.count,
                reasons: b.reasons,
                other_reasons: b.other,
            })
            .collect()
    }

    /// Removes and returns every summary.
    pub fn drain_all(&mut self) -> Vec<RefusalSummary> {
        self.drain_before(u64::MAX)
    }

    /// Returns whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// What a node's key is used for, as its log counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// Block headers (single validator) and consensus votes and proposals (BFT).
    BlockAndVoteSigning,
    /// TLS handshakes, of the API and of p2p links.
    TlsHandshake,
    /// Custodian decryption of data keys (node-enc).
    CustodianDecryption,
}

impl Purpose {
    /// Every purpose, in the order an entry lists them.
    pub const ALL: [Purpose; 3] = [
        Purpose::BlockAndVoteSigning,
        Purpose::TlsHandshake,
        Purpose::CustodianDecryption,
    ];

    /// Returns the name an entry gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::BlockAndVoteSigning => "block-and-vote-signing",
            Purpose::TlsHandshake => "tls-handshake",
            Purpose::CustodianDecryption => "custodian-decryption",
        }
    }

    fn index(self) -> usize {
        match self {
            Purpose::BlockAndVoteSigning => 0,
            Purpose::TlsHandshake => 1,
            Purpose::CustodianDecryption => 2,
        }
    }
}

/// Key use counted per purpose: one atomic add per use, drained at each checkpoint. The
/// checkpoints' own signatures are not counted: each is an entry of the log already, and
/// counting them would make an idle node write a key-use entry and a checkpoint forever.
#[derive(Debug, Default)]
pub struct KeyUse {
    counts: [AtomicU64; 3],
}

impl KeyUse {
    /// Counts one use.
    pub fn add(&self, purpose: Purpose) {
        self.counts[purpose.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the counts since the last call (zero ones left out) and resets them.
    pub fn take(&self) -> Vec<(Purpose, u64)> {
        Purpose::ALL
            .iter()
            .filter_map(|&p| {
                let n = self.counts[p.index()].swap(0, Ordering::Relaxed);
                (n > 0).then_some((p, n))
            })
            .collect()
    }

    /// Returns an entry's detail for `counts` (from [`KeyUse::take`]).
    pub fn detail(counts: &[(Purpose, u64)]) -> String {
        let parts: Vec<String> = counts
            .iter()
            .map(|(p, n)| format!("{} {n}", p.as_str()))
            .collect();
        format!("since the last checkpoint: {}", parts.join(", "))
    }
}

/// A signer that counts its signatures for one purpose in a [`KeyUse`].
#[derive(Clone)]
pub struct CountingSigner {
    inner: Arc<dyn Signer>,
    purpose: Purpose,
    uses: Arc<KeyUse>,
}

impl std::fmt::Debug for CountingSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingSigner")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl CountingSigner {
    pub fn new(inner: Arc<dyn Signer>, purpose: Purpose, uses: Arc<KeyUse>) -> Self {
        Self {
            inner,
            purpose,
            uses,
        }
    }
}

impl Signer for CountingSigner {
    fn public_key(&self) -> PublicKey {
        self.inner.public_key()
    }

    fn sign(&self, id: &UserId, msg: &[u8]) -> Result<Signature, CryptoError> {
        self.uses.add(self.purpose);
        self.inner.sign(id, msg)
    }

    fn sign_digest(&self, e: &Digest) -> Result<Signature, CryptoError> {
        self.uses.add(self.purpose);
        self.inner.sign_digest(e)
    }
}

/// A decrypter that counts its decryptions for one purpose in a [`KeyUse`].
pub struct CountingDecrypter {
    inner: Arc<dyn Decrypter>,
    purpose: Purpose,
    uses: Arc<KeyUse>,
}

impl std::fmt::Debug for CountingDecrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingDecrypter")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl CountingDecrypter {
    pub fn new(inner: Arc<dyn Decrypter>, purpose: Purpose, uses: Arc<KeyUse>) -> Self {
        Self {
            inner,
            purpose,
            uses,
        }
    }
}

impl Decrypter for CountingDecrypter {
    fn public_key(&self) -> PublicKey {
        self.inner.public_key()
    }

    fn decrypt(&self, ciphertext: &[u8], format: CipherFormat) -> Result<Secret, CryptoError> {
        self.uses.add(self.purpose);
        self.inner.decrypt(ciphertext, format)
    }
}
