//! Transaction admission: every check once, in a fixed order, with a stable code per refusal;
//! the result is a [`VerifiedTx`] that only [`Admission`] constructs.
//!
//! Order (docs/execution.md §6): size, decoding, chain, expiry, duplicate, known call, argument
//! shape, signer (certificate, chain, revocation), suspension, signature, permission (the
//! permission table's roles, then the contract's authorisation hook, `Contract::authorize`, in
//! a read-only context on the state being admitted to). Admission names no contract or method:
//! what is particular to one is the contract's (its hook, and `Contract::introduced_ca` for a
//! call whose signer is certified by the CA it brings along).
//!
//! A signer's certificate is validated by [`pki::Consortium::validate`], the function the
//! offline receipt verifier uses too: its trust anchors are exactly the active founding
//! organisations' CAs (genesis's, and those governance registered, read from the state's
//! `identity/anchors` and cached by its bytes); the CA of an organisation registered later is an intermediate, each link
//! judged by the CRL its issuer last recorded on the chain (none recorded: refused); a founding
//! root certifies only the organisations it sponsors. Admission then requires what only the
//! chain's state knows: every CA below the anchor is the active registered CA of its
//! organisation, and the signer's organisation is active with its CA on the path.
//!
//! Validated chains are cached by the leaf's SM3 ID. A hit skips only what cannot change: path
//! building, certificate signatures, key usage, role and sponsorship. It still checks, at `now`
//! and against the state being admitted to, every certificate's validity window, the
//! registration of every CA on the path, and revocation by the recorded CRLs; suspension,
//! signature and permissions are checked on every admission. The cache never changes a result,
//! so `admit_many` returns what sequential `admit` would.
//!
//! Refusals of a certificate are remembered per state root (bounded), so a refused file sent
//! again costs a hash and a lookup; issuers are found by name and key identifier, never by
//! trying keys, so a certificate naming an unknown issuer costs no signature verification.
//!
//! Signatures this admission verified itself are remembered (bounded, [`SignatureCache`]), so
//! that a transaction admitted from gossip is not verified again when the block holding it is
//! judged. An entry names the exact encoded transaction (chain, body, sender, signature, user
//! ID) and the certificate whose key verified it; only a successful verification is stored,
//! and only by this node: nothing another node says is trusted. Every other check still runs
//! on every admission.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::codes::{RejectCode, Rejection};
use crate::context::{BlockContext, CaValidation, CallContext, CostMeter, Env, Phase, SignerInfo};
use crate::contract::{Contract, Denial};
use crate::error::ExecError;
use crate::params::ChainParams;
use crate::params_rule::{self, ParamsInForce};
use crate::registry::{Permission, Registry};
use crate::verified::{CheckedChain, VerifiedTx};
use crate::view::StateView;
use crate::wasm;
use crypto::Digest;
use crypto_sm::sm3::{sm3, sm3_parts};
use pki::{
    CertRef, Certificate, ChainError, Consortium, ConsortiumAnchor, Crl, CrlProblem, Role,
    Sponsorship, TrustAnchor, UnixTime,
};
use state::NodeStore;
use types::{ChainId, Decode, Height, Limits, Sender, SignedTx, TxError, TxId, check_expiry};

/// How many validated chains the cache holds at most; when full, an arbitrary entry goes.
pub const CERT_CACHE_CAPACITY: usize = 10_000;

/// Whether a transaction ID was already seen (in the pool or on the chain). `Err` names why
/// it could not be told (a storage read failed): admission then refuses the transaction as
/// `TX_STATE_UNAVAILABLE`, never treats it as unseen (fail closed).
pub type Seen<'a> = dyn Fn(&TxId) -> Result<bool, String> + Sync + 'a;

/// How many verified transaction signatures the signature cache remembers at most: more than
/// twice a default pool (50 000), so that a transaction gossiped into the pool is still known
/// when a block holding it arrives; about 10 MB when full.
const SIGNATURE_CACHE_CAPACITY: usize = 1 << 17;

/// How many refused certificates one state root remembers at most; when full, an arbitrary
/// entry goes (the cache only saves work).
pub const REFUSAL_CACHE_CAPACITY: usize = 4_096;

/// The longest refusal message the refusal cache keeps (longer ones are cut): with
/// [`REFUSAL_CACHE_CAPACITY`], at most about 2 MiB per state root.
const REFUSAL_MESSAGE_MAX: usize = 512;

/// The judgement's inputs besides the transaction and the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmitContext {
    /// The height the state is at; the transaction goes into tip + 1.
    pub tip: Height,
    /// The node's expected time of the next block (seconds), for certificate and CRL validity.
    pub now: UnixTime,
}

/// Why [`Admission::authenticate`] refused a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRefusal {
    /// The chain did not validate (no path to a consortium CA, revoked, expired, revocation
    /// unknown, a wrong role for the certificate's profile).
    #[error("{0}")]
    Chain(ChainError),
    /// The path runs through a CA that is not (or no longer) the active registered CA of its
    /// organisation, or the organisation was deregistered.
    #[error("{0}")]
    NotRegistered(String),
    /// The certificate is suspended on the chain.
    #[error("{0}")]
    Suspended(String),
    /// The chain's supervisor froze the certificate, or its organisation's people
    /// ([`RejectCode::SignerFrozen`] or [`RejectCode::OrgFrozen`]).
    #[error("{1}")]
    Frozen(RejectCode, String),
    /// The certificate is malformed for gmchain (no role).
    #[error("{0}")]
    Invalid(String),
    /// The state could not be read: nothing was decided.
    #[error("the chain's state could not be read: {0}")]
    Unavailable(String),
}

/// The admission checks of one chain, with the certificate cache. `Send + Sync`: share one
/// across the pool's threads.
#[derive(Debug)]
pub struct Admission {
    chain_id: ChainId,
    // The decoding limits: the ceiling `Limits::default()`, since the chain's parameters may
    // grow up to it; the parameters in force are enforced from the state being admitted to.
    limits: Limits,
    // The genesis parameters: used only on a state that holds none (`chain/params`).
    genesis_params: ChainParams,
    registry: Registry,
    cache: Mutex<HashMap<Digest, Arc<CheckedChain>>>,
    cache_hits: AtomicU64,
    refused: Mutex<RefusalCache>,
    refusal_hits: AtomicU64,
    live: LiveCache,
    signatures: SignatureCache,
}

/// What a verified signature is remembered by: exactly the inputs of the SM2 verification —
/// the signed message (the transaction ID), SM3 of the signature and the signer user ID (with
/// its length), and the SM3 ID of the certificate whose public key verified it. A hit stands
/// for the same verification with the same inputs, which is deterministic. (Hashing the whole
/// signed encoding instead, as before, cost an SM3 pass over the transaction each time.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SignatureKey {
    message: TxId,
    signature: Digest,
    certificate: Digest,
}

impl SignatureKey {
    fn new(signed: &SignedTx, id: &TxId, certificate: Digest) -> Self {
        let uid = &signed.signer_user_id;
        SignatureKey {
            message: *id,
            signature: sm3_parts(&[
                signed.signature.r(),
                signed.signature.s(),
                &uid.entl(),
                uid.as_bytes(),
            ]),
            certificate,
        }
    }
}

/// Signatures verified by this admission, in two generations of at most half the capacity
/// each: when the newer one is full, the older one is dropped and the newer takes its place, so
/// the most recent verifications stay and memory is bounded by [`SIGNATURE_CACHE_CAPACITY`].
#[derive(Debug, Default)]
struct SignatureCache {
    inner: Mutex<SignatureGenerations>,
    hits: AtomicU64,
}

#[derive(Debug, Default)]
struct SignatureGenerations {
    current: HashSet<SignatureKey>,
    previous: HashSet<SignatureKey>,
}

impl SignatureCache {
    fn contains(&self, key: &SignatureKey) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let hit = g.current.contains(key) || g.previous.contains(key);
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn insert(&self, key: SignatureKey) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.current.len() >= SIGNATURE_CACHE_CAPACITY / 2 {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key);
    }

    fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.current.len() + g.previous.len()
    }
}

/// A refusal of a signer's certificate, and whether it holds for as long as the state root
/// does (then the refusal cache may replay it).
struct Refused {
    rejection: Rejection,
    lasting: bool,
}

impl Refused {
    /// A refusal that says nothing lasting about the certificate (a state read error).
    fn passing(rejection: Rejection) -> Self {
        Refused {
            rejection,
            lasting: false,
        }
    }
}

impl From<Rejection> for Refused {
    fn from(rejection: Rejection) -> Self {
        let lasting = !matches!(rejection.code, RejectCode::StateUnavailable);
        Refused { rejection, lasting }
    }
}

/// Certificates refused at one state root: the refusal depends only on the certificate, the
/// state and (monotonically, for expiry) the time, so it is replayed until the root changes.
#[derive(Debug, Default)]
struct RefusalCache {
    root: Digest,
    entries: HashMap<Digest, Rejection>,
}

fn reject(code: RejectCode, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message)
}

fn state_err(e: ExecError) -> Rejection {
    Denial::State(e).into_rejection()
}

fn chain_rejection(e: &ChainError) -> Rejection {
    let code = match e {
        ChainError::Revoked { .. } => RejectCode::SignerRevoked,
        ChainError::RevocationUnknown { .. } => RejectCode::RevocationUnknown,
        _ => RejectCode::CertInvalid,
    };
    reject(code, format!("{e} ({})", e.code()))
}

fn cert_ref(c: &Certificate) -> CertRef {
    CertRef {
        subject: c.subject(),
        serial: c.serial(),
    }
}

/// Parsed CRLs, organisations and the registered CAs read from one state root. A root names
/// exactly one state, so entries can never be stale; when the root changes (a new block) the
/// cache starts over. It saves parsing the same CRL and CA certificate for every transaction.
///
/// It also holds the chain's trust anchors: the genesis consortium, and the consortium of the
/// last anchor list read from a state (`identity/anchors`, written only when governance
/// registers or removes a founding organisation), kept across roots while those bytes stay
/// the same, so certificates are parsed and checked again only when the anchors change. The
/// names determine the certificates: a founding organisation's CA never changes (no
/// `replace_ca` of a founding organisation) and a name, once registered, is never registered
/// again, so equal bytes mean equal anchors.
#[derive(Debug)]
struct LiveCache {
    inner: Mutex<LiveEntries>,
    genesis: Arc<Consortium>,
    anchors: Mutex<Option<(Vec<u8>, Arc<Consortium>)>>,
}

/// What admission needs of one registered organisation.
#[derive(Debug, Clone)]
struct OrgState {
    ca: Digest,
    active: bool,
}

/// The inputs of a fresh chain validation at one root: every CA of an organisation registered
/// after genesis (current or former, active or deregistered: the registration check then says
/// why such a path is refused, as it does for a cached chain) and every recorded CRL of them
/// and of the founding CAs.
#[derive(Debug, Default)]
struct Members {
    intermediates: Vec<Certificate>,
    crls: Vec<Crl>,
}

#[derive(Debug, Default)]
struct LiveEntries {
    root: Digest,
    params: Option<ParamsInForce>,
    crls: HashMap<Digest, Option<Arc<Crl>>>,
    orgs: HashMap<String, Option<OrgState>>,
    members: Option<Arc<Members>>,
    anchors: Option<Arc<Consortium>>,
    /// Signers (certificate and role, with their organisation) neither suspended nor frozen
    /// at this root: admission and the proposal's recheck ask for every transaction, and a
    /// signer sends many per block. Refusals are not kept (they are rare and their text is
    /// read fresh).
    standing: HashMap<(Digest, Role), Box<str>>,
}

/// At most this many signers in good standing are kept for one root (then the set starts
/// over): a burst of distinct signers on an idle chain cannot grow it without bound.
const STANDING_MAX: usize = 65_536;

impl LiveCache {
    fn new(genesis: Consortium) -> Self {
        LiveCache {
            inner: Mutex::new(LiveEntries::default()),
            genesis: Arc::new(genesis),
            anchors: Mutex::new(None),
        }
    }

    /// The chain's trust anchors at `view`'s root: the genesis consortium until governance
    /// changed the founding organisations, then the active founding organisations of the
    /// anchor list, each with its genesis sponsorship (an organisation registered by
    /// governance sponsors only itself).
    fn anchors<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
    ) -> Result<Arc<Consortium>, ExecError> {
        if let Some(a) = &self.entries(view).anchors {
            return Ok(a.clone());
        }
        let a = match view.anchor_list()? {
            None => self.genesis.clone(),
            Some(list) => {
                let mut cached = self.anchors.lock().unwrap_or_else(|p| p.into_inner());
                match &*cached {
                    Some((b, a)) if *b == list.bytes => a.clone(),
                    _ => {
                        let a = Arc::new(self.build_anchors(view, &list.names)?);
                        *cached = Some((list.bytes, a.clone()));
                        a
                    }
                }
            }
        };
        self.entries(view).anchors = Some(a.clone());
        Ok(a)
    }

    fn build_anchors<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        names: &[String],
    ) -> Result<Consortium, ExecError> {
        let key = crate::keys::full(crate::keys::IDENTITY, &crate::keys::identity::anchors());
        let genesis = self.genesis.entries();
        let mut anchors = Vec::with_capacity(names.len());
        for name in names {
            let org = view
                .organisation(name)?
                .filter(|o| o.is_founding() && o.is_active())
                .ok_or_else(|| {
                    ExecError::corrupt(
                        &key,
                        format!("{name:?} is not an active founding organisation"),
                    )
                })?;
            let anchor = genesis
                .iter()
                .find(|g| g.anchor.cert.der() == org.ca_cert.der())
                .cloned()
                .unwrap_or_else(|| ConsortiumAnchor {
                    anchor: TrustAnchor::new(org.ca_cert),
                    sponsors: Sponsorship::Listed(Vec::new()),
                });
            anchors.push(anchor);
        }
        Consortium::new(anchors).map_err(|e| ExecError::corrupt(&key, e.to_string()))
    }

    fn entries<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
    ) -> std::sync::MutexGuard<'_, LiveEntries> {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if e.root != view.root() {
            *e = LiveEntries {
                root: view.root(),
                ..LiveEntries::default()
            };
        }
        e
    }

    /// The chain parameters in force at the view's root (read once per root).
    fn params<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        fallback: &ChainParams,
    ) -> Result<ParamsInForce, Rejection> {
        if let Some(p) = self.entries(view).params {
            return Ok(p);
        }
        let p = params_rule::in_force_or(view, Some(fallback))
            .map_err(state_err)?
            .unwrap_or(ParamsInForce {
                params: *fallback,
                since: Height(0),
            });
        self.entries(view).params = Some(p);
        Ok(p)
    }

    fn crl<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        issuer: &Digest,
    ) -> Result<Option<Arc<Crl>>, Rejection> {
        if let Some(c) = self.entries(view).crls.get(issuer) {
            return Ok(c.clone());
        }
        let crl = view.crl(issuer).map_err(state_err)?.map(Arc::new);
        self.entries(view).crls.insert(*issuer, crl.clone());
        Ok(crl)
    }

    fn org<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        name: &str,
    ) -> Result<Option<OrgState>, Rejection> {
        if let Some(c) = self.entries(view).orgs.get(name) {
            return Ok(c.clone());
        }
        let org = view
            .organisation(name)
            .map_err(state_err)?
            .map(|o| OrgState {
                ca: o.ca_cert.fingerprint(),
                active: o.is_active(),
            });
        self.entries(view)
            .orgs
            .insert(name.to_string(), org.clone());
        Ok(org)
    }

    /// Whether `signer` was found neither suspended nor frozen at `view`'s root.
    fn in_good_standing<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        signer: &SignerInfo,
    ) -> bool {
        self.entries(view)
            .standing
            .get(&(signer.cert_id, signer.role))
            .is_some_and(|org| **org == *signer.organisation)
    }

    /// Files `signer`'s good standing under `view`'s root. The lock was dropped since the
    /// state was read, and another thread may have moved the entries to another root
    /// meanwhile: `entries(view)` takes them back to this view's root (emptied) before the
    /// insert, so a standing read at one root is never filed under another.
    fn remember_good_standing<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        signer: &SignerInfo,
    ) {
        let mut e = self.entries(view);
        if e.standing.len() >= STANDING_MAX {
            e.standing.clear();
        }
        e.standing.insert(
            (signer.cert_id, signer.role),
            signer.organisation.as_str().into(),
        );
    }

    fn members<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
    ) -> Result<Arc<Members>, ExecError> {
        if let Some(m) = &self.entries(view).members {
            return Ok(m.clone());
        }
        let mut m = Members::default();
        for org in view.organisations()? {
            let founding = org.is_founding();
            for ca in std::iter::once(org.ca_cert).chain(org.former_cas) {
                if let Some(crl) = view.crl(&ca.fingerprint())? {
                    m.crls.push(crl);
                }
                if !founding {
                    m.intermediates.push(ca);
                }
            }
        }
        let m = Arc::new(m);
        self.entries(view).members = Some(m.clone());
        Ok(m)
    }
}

/// Checks what only the chain's state knows about a validated path: every CA between the
/// signer and the anchor is the active registered CA of its organisation, and the signer's
/// organisation is registered, active, and has its CA on the path. `pending` is the CA a
/// call introduces (`Contract::introduced_ca`), registered only by that transaction.
fn check_registration<S: NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    live: &LiveCache,
    chain: &CheckedChain,
    pending: Option<&Certificate>,
) -> Result<(), Rejection> {
    let path = &chain.path;
    let top = path.len().saturating_sub(1);
    // The path ends at an anchor of this state: a cached path whose anchor's organisation
    // governance removed is refused, as a fresh validation would refuse it.
    if let Some(anchor) = path.last()
        && !live.anchors(view).map_err(state_err)?.is_anchor(anchor)
    {
        return Err(reject(
            RejectCode::OrgRemoved,
            format!(
                "organisation {:?} was removed: its CA {} is no longer a trust anchor of the chain",
                anchor.organisation().unwrap_or_default(),
                cert_ref(anchor)
            ),
        ));
    }
    let is_pending = |c: &Certificate| pending.is_some_and(|p| p.der() == c.der());
    for c in path.iter().take(top).skip(1) {
        if is_pending(c) {
            continue;
        }
        let o = c.organisation().unwrap_or_default();
        match live.org(view, &o)? {
            Some(org) if org.ca == c.fingerprint() && org.active => {}
            Some(org) if !org.active => {
                return Err(reject(
                    RejectCode::OrgRemoved,
                    format!("organisation {o:?} (CA {}) was deregistered", cert_ref(c)),
                ));
            }
            Some(_) => {
                return Err(reject(
                    RejectCode::CaReplaced,
                    format!(
                        "{} is no longer the registered CA of organisation {o:?}: its CA was replaced",
                        cert_ref(c)
                    ),
                ));
            }
            None => {
                return Err(reject(
                    RejectCode::CertInvalid,
                    format!(
                        "{} is not the CA of a registered organisation ({o:?} is not registered)",
                        cert_ref(c)
                    ),
                ));
            }
        }
    }
    if pending.is_some() {
        return Ok(());
    }
    let o = &chain.organisation;
    match live.org(view, o)? {
        Some(org) if !org.active => Err(reject(
            RejectCode::OrgRemoved,
            format!("organisation {o:?} was deregistered"),
        )),
        Some(org) if path[1..].iter().any(|c| c.fingerprint() == org.ca) => Ok(()),
        Some(_) => Err(reject(
            RejectCode::CaReplaced,
            format!(
                "{} is not certified through the registered CA of its organisation {o:?}",
                cert_ref(&path[0])
            ),
        )),
        None => Err(reject(
            RejectCode::CertInvalid,
            format!(
                "{}: organisation {o:?} is not registered on this chain",
                cert_ref(&path[0])
            ),
        )),
    }
}

/// After a failed chain validation: the refusal of a certificate whose organisation was
/// removed, naming the removal rather than the missing path (a removed founding
/// organisation's CA is no anchor any more), as the registration check names it for a cached
/// path. `None` when the organisation is registered and active, unknown, or unreadable.
fn removed_refusal<S: NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    live: &LiveCache,
    leaf: &Certificate,
) -> Option<Rejection> {
    let o = leaf.organisation()?;
    match live.org(view, &o) {
        Ok(Some(org)) if !org.active => Some(reject(
            RejectCode::OrgRemoved,
            format!(
                "organisation {o:?} was removed: {} is refused",
                cert_ref(leaf)
            ),
        )),
        _ => None,
    }
}

/// Checks what a cached chain can no longer vouch for, in the order and with the errors of a
/// fresh validation: validity windows from the anchor down, revocation from the top by the
/// recorded CRLs (or the CRL a call introduces with its CA, in `pending`), then
/// the registration of every CA on the path.
fn check_live<S: NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    live: &LiveCache,
    now: UnixTime,
    chain: &CheckedChain,
    pending: Option<&(Certificate, Crl)>,
) -> Result<(), Rejection> {
    let path = &chain.path;
    let Some(top) = path.len().checked_sub(1) else {
        return Err(reject(RejectCode::CertInvalid, "empty certificate path"));
    };
    for c in path.iter().rev() {
        let v = c.validity();
        if now < v.not_before {
            return Err(chain_rejection(&ChainError::NotYetValid {
                cert: cert_ref(c),
                not_before: v.not_before,
                now,
            }));
        }
        if now > v.not_after {
            return Err(chain_rejection(&ChainError::Expired {
                cert: cert_ref(c),
                not_after: v.not_after,
                now,
            }));
        }
    }
    for i in (0..top).rev() {
        let cert = &path[i];
        let issuer = &path[i + 1];
        let crl = match pending {
            Some((ca, x)) if ca.der() == issuer.der() => Some(Arc::new(x.clone())),
            _ => live.crl(view, &issuer.fingerprint())?,
        };
        let unknown = |problem| {
            chain_rejection(&ChainError::RevocationUnknown {
                cert: cert_ref(cert),
                problem,
            })
        };
        let Some(crl) = crl else {
            return Err(unknown(CrlProblem::Missing));
        };
        if !crl.is_current(now) {
            return Err(unknown(CrlProblem::NotCurrent {
                this_update: crl.this_update(),
                next_update: crl.next_update(),
            }));
        }
        if let Some(e) = crl.find(&cert.serial()) {
            return Err(chain_rejection(&ChainError::Revoked {
                cert: cert_ref(cert),
                reason: e.reason,
                at: e.revoked_at,
            }));
        }
    }
    check_registration(view, live, chain, pending.map(|(ca, _)| ca))
}

/// Refuses an encoding larger than the `max_tx_size` in force.
fn check_size(len: usize, p: &ParamsInForce) -> Result<(), Rejection> {
    let max = p.params.limits().max_tx_size;
    if len > max {
        return Err(reject(
            RejectCode::TooLarge,
            format!(
                "{len} bytes exceeds the chain's max_tx_size {max} in force {}",
                p.since_text()
            ),
        ));
    }
    Ok(())
}

/// Refuses an expiry below the next height or beyond the tip plus the expiry window in force.
fn check_expiry_in_force(expiry: Height, tip: Height, p: &ParamsInForce) -> Result<(), Rejection> {
    check_expiry(expiry, tip, p.params.expiry_window).map_err(|e| match e {
        TxError::ExpiryTooFar { .. } => reject(
            RejectCode::ExpiryTooFar,
            format!(
                "{e} (the chain's expiry_window {} in force {})",
                p.params.expiry_window,
                p.since_text()
            ),
        ),
        _ => reject(RejectCode::Expired, e.to_string()),
    })
}

impl Admission {
    /// Returns the admission of chain `chain_id` whose genesis parameters are `params` and
    /// whose signers are members of `consortium` (from the genesis:
    /// [`crate::Genesis::consortium`]). A transaction is judged under the parameters in force
    /// in the state it is admitted to (`chain/params`, which governance changes); `params`
    /// apply only to a state that holds none.
    pub fn new(chain_id: ChainId, params: &ChainParams, consortium: Consortium) -> Self {
        Admission {
            chain_id,
            limits: Limits::default(),
            genesis_params: *params,
            registry: Registry::builtin(),
            cache: Mutex::new(HashMap::new()),
            cache_hits: AtomicU64::new(0),
            refused: Mutex::new(RefusalCache::default()),
            refusal_hits: AtomicU64::new(0),
            live: LiveCache::new(consortium),
            signatures: SignatureCache::default(),
        }
    }

    /// Returns how many signature verifications the signature cache answered (for metrics
    /// and tests).
    pub fn signature_cache_hits(&self) -> u64 {
        self.signatures.hits.load(Ordering::Relaxed)
    }

    /// Returns how many verified signatures the signature cache holds.
    pub fn signature_cache_len(&self) -> usize {
        self.signatures.len()
    }

    /// Verifies `signed`'s signature (`id`: its transaction ID) with `leaf`'s key (`leaf_id`:
    /// its SM3 ID), unless this admission already verified the same signature over the same ID
    /// with the same certificate; remembers a success.
    fn verify_signature(
        &self,
        signed: &SignedTx,
        leaf: &Certificate,
        leaf_id: Digest,
        id: &TxId,
    ) -> Result<(), Rejection> {
        let key = SignatureKey::new(signed, id, leaf_id);
        if self.signatures.contains(&key) {
            return Ok(());
        }
        signed
            .verify_signature_with_id(id, &leaf.public_key())
            .map_err(|e| {
                reject(
                    RejectCode::SignatureInvalid,
                    format!("signature of {id} by {}: {e}", cert_ref(leaf)),
                )
            })?;
        self.signatures.insert(key);
        Ok(())
    }

    /// Returns how many refusals the refusal cache answered (for metrics and tests).
    pub fn refusal_hits(&self) -> u64 {
        self.refusal_hits.load(Ordering::Relaxed)
    }

    fn refused_get(&self, root: &Digest, id: &Digest) -> Option<Rejection> {
        let c = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if c.root != *root {
            return None;
        }
        let r = c.entries.get(id).cloned();
        if r.is_some() {
            self.refusal_hits.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn refused_put(&self, root: &Digest, id: Digest, r: &Rejection) {
        // Bounded memory: a message names certificate subjects, which a crafted certificate
        // can make long.
        let mut r = r.clone();
        if r.message.len() > REFUSAL_MESSAGE_MAX {
            let mut end = REFUSAL_MESSAGE_MAX;
            while !r.message.is_char_boundary(end) {
                end -= 1;
            }
            r.message.truncate(end);
            r.message.push('…');
        }
        let mut c = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if c.root != *root {
            c.root = *root;
            c.entries.clear();
        }
        if c.entries.len() >= REFUSAL_CACHE_CAPACITY
            && let Some(victim) = c.entries.keys().next().copied()
        {
            c.entries.remove(&victim);
        }
        c.entries.insert(id, r);
    }

    /// Returns how many validated chains are cached.
    pub fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .map(|c| c.len())
            .unwrap_or_else(|e| e.into_inner().len())
    }

    /// Returns how many signer resolutions the cache answered (for metrics and tests).
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Returns the limits transactions are decoded under: the ceiling `Limits::default()`
    /// (the size in force is checked before decoding).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Returns the chain parameters that apply to transactions admitted to `view`'s state
    /// (cached per state root).
    pub fn params<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
    ) -> Result<ParamsInForce, Rejection> {
        self.live.params(view, &self.genesis_params)
    }

    fn cache_get(&self, id: &Digest) -> Option<Arc<CheckedChain>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(id).cloned()
    }

    fn cache_remove(&self, id: &Digest) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(id);
    }

    fn cache_put(&self, id: Digest, chain: Arc<CheckedChain>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CERT_CACHE_CAPACITY && !cache.contains_key(&id) {
            // Any victim will do: the cache only saves work, it never changes a result.
            if let Some(victim) = cache.keys().next().copied() {
                cache.remove(&victim);
            }
        }
        cache.insert(id, chain);
    }

    /// Authenticates a member by its certificate alone, as admission judges a signer: the
    /// consortium's chain validation against the registered CAs and recorded CRLs of the
    /// state in `view` (revocation failing closed), the registration checks (its CA is the
    /// active registered CA of its organisation), then suspension. For the peers of the
    /// node's TLS listeners: a handshake and a transaction are judged by the same rules and
    /// the same certificate cache.
    pub fn authenticate<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        now: UnixTime,
        leaf: &Certificate,
    ) -> Result<SignerInfo, MemberRefusal> {
        let role = leaf.role().ok_or_else(|| {
            MemberRefusal::Invalid(format!("{} has no gmchain role", cert_ref(leaf)))
        })?;
        let id = leaf.fingerprint();
        let cached = self
            .cache_get(&id)
            .filter(|c| check_live(view, &self.live, now, c, None).is_ok());
        let chain = match cached {
            Some(c) => c,
            None => {
                let members = self
                    .live
                    .members(view)
                    .map_err(|e| MemberRefusal::Unavailable(e.to_string()))?;
                let validated = self
                    .live
                    .anchors(view)
                    .map_err(|e| MemberRefusal::Unavailable(e.to_string()))?
                    .validate(leaf, &members.intermediates, &members.crls, now, role)
                    .map_err(|e| match removed_refusal(view, &self.live, leaf) {
                        Some(r) => MemberRefusal::NotRegistered(r.message),
                        None => MemberRefusal::Chain(e),
                    })?;
                let chain = CheckedChain {
                    organisation: validated.organisation().to_string(),
                    role: validated.role(),
                    path: validated.path().to_vec(),
                };
                check_registration(view, &self.live, &chain, None).map_err(|r| {
                    if r.code == RejectCode::StateUnavailable {
                        MemberRefusal::Unavailable(r.message)
                    } else {
                        MemberRefusal::NotRegistered(r.message)
                    }
                })?;
                let chain = Arc::new(chain);
                self.cache_put(id, chain.clone());
                chain
            }
        };
        let signer = SignerInfo {
            cert_id: id,
            organisation: chain.organisation.clone(),
            common_name: leaf.common_name().unwrap_or_default(),
            role: chain.role,
        };
        check_suspension(view, &self.live, &signer).map_err(|r| match r.code {
            RejectCode::StateUnavailable => MemberRefusal::Unavailable(r.message),
            RejectCode::SignerFrozen | RejectCode::OrgFrozen => {
                MemberRefusal::Frozen(r.code, r.message)
            }
            _ => MemberRefusal::Suspended(r.message),
        })?;
        Ok(signer)
    }

    /// Admits one encoded signed transaction against the state in `view`. `seen` says whether
    /// an ID is already in the pool or on the chain.
    pub fn admit<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        seen: &Seen<'_>,
        bytes: &[u8],
    ) -> Result<VerifiedTx, Rejection> {
        // Size first: nothing is decoded from an oversized input.
        let params = self.params(view)?;
        check_size(bytes.len(), &params)?;
        let signed = SignedTx::from_bytes(bytes, &self.limits)
            .map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
        let tx = &signed.tx;
        if tx.chain_id != self.chain_id {
            return Err(reject(
                RejectCode::WrongChain,
                format!(
                    "transaction is for chain {:?}, this is {:?}",
                    tx.chain_id.as_str(),
                    self.chain_id.as_str()
                ),
            ));
        }
        check_expiry_in_force(tx.expiry, ctx.tip, &params)?;
        let id = signed.tx_id();
        check_unseen(seen, &id)?;
        check_fuel_limit(tx.fuel_limit, &params)?;
        let target = self.resolve_call(view, &signed)?;
        let introduced = match &target {
            Target::Builtin(contract, _) => {
                contract
                    .check_args(&tx.call.method, &tx.call.args)
                    .map_err(|e| reject(RejectCode::BadArguments, e.to_string()))?;
                contract
                    .introduced_ca(&tx.call.method, &tx.call.args)
                    .map_err(|e| reject(RejectCode::BadArguments, e.to_string()))?
            }
            Target::Wasm(_) => None,
        };

        let (chain, pending) = match introduced {
            Some((ca, crl)) => {
                let chain = self.resolve_introducing_signer(view, ctx, &signed, &ca, &crl)?;
                (chain, Some((ca, crl)))
            }
            None => (self.resolve_signer(view, ctx, &tx.sender)?, None),
        };
        let leaf = &chain.path[0];
        let signer = SignerInfo {
            cert_id: chain.path[0].fingerprint(),
            organisation: chain.organisation.clone(),
            common_name: leaf.common_name().unwrap_or_default(),
            role: chain.role,
        };
        check_suspension(view, &self.live, &signer)?;
        self.verify_signature(&signed, leaf, signer.cert_id, &id)?;
        check_module_fuel(tx)?;
        self.authorize(view, ctx, &target, &signed, id, &signer, Phase::Admission)?;
        Ok(VerifiedTx::new(
            signed,
            id,
            bytes.len(),
            signer,
            chain,
            pending,
        ))
    }

    /// Admits many transactions on all cores (SM2 has no batch verification), with the same
    /// results in the same order as calling [`Admission::admit`] on each.
    pub fn admit_many<S: NodeStore + Sync + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        seen: &Seen<'_>,
        txs: &[Vec<u8>],
    ) -> Vec<Result<VerifiedTx, Rejection>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(txs.len());
        if threads <= 1 {
            return txs.iter().map(|b| self.admit(view, ctx, seen, b)).collect();
        }
        let chunk = txs.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = txs
                .chunks(chunk)
                .map(|part| {
                    let h = s.spawn(move || {
                        part.iter()
                            .map(|b| self.admit(view, ctx, seen, b))
                            .collect::<Vec<_>>()
                    });
                    (part, h)
                })
                .collect();
            let mut out = Vec::with_capacity(txs.len());
            for (part, h) in handles {
                match h.join() {
                    Ok(results) => out.extend(results),
                    // A worker that panicked: redo its share here, so the caller sees exactly
                    // what sequential admission would have done.
                    Err(_) => out.extend(part.iter().map(|b| self.admit(view, ctx, seen, b))),
                }
            }
            out
        })
    }

    /// Checks again, before commit, what can change after admission: expiry, duplicate,
    /// the signer's chain as a new submission would be judged (through the caches: validity
    /// windows, revocation by the CRLs recorded in `view` current at `ctx.now`, registration
    /// of every CA on the path), suspension and permissions. The transaction's signature is
    /// not checked again: its signer's key cannot change.
    pub fn recheck<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        seen: &Seen<'_>,
        tx: &VerifiedTx,
    ) -> Result<(), Rejection> {
        // The parameters may have changed since admission (a governance change took effect).
        let params = self.params(view)?;
        check_size(tx.encoded_len(), &params)?;
        check_expiry_in_force(tx.expiry(), ctx.tip, &params)?;
        check_fuel_limit(tx.signed().tx.fuel_limit, &params)?;
        check_unseen(seen, &tx.id())?;
        match tx.pending() {
            // A CA the call introduced (register_org) exists only in the transaction; the
            // signer's path through it is rechecked as admitted.
            Some(pending) => check_live(view, &self.live, ctx.now, tx.chain(), Some(pending))?,
            // Everyone else is judged as a new submission would be (through the caches): the
            // path found now, not necessarily the one found at admission.
            None => {
                self.resolve_signer(view, ctx, &tx.signed().tx.sender)?;
            }
        }
        check_suspension(view, &self.live, tx.signer())?;
        let target = self.resolve_call(view, tx.signed())?;
        self.authorize(
            view,
            ctx,
            &target,
            tx.signed(),
            tx.id(),
            tx.signer(),
            Phase::Recheck,
        )
    }

    /// Finds what a call calls: a built-in method with its permission entry, else a deployed
    /// WASM contract (which needs a fuel limit and must not be frozen).
    fn resolve_call<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        signed: &SignedTx,
    ) -> Result<Target<'_>, Rejection> {
        let call = &signed.tx.call;
        if let Some((c, p)) = self.registry.resolve(&call.contract, &call.method) {
            return Ok(Target::Builtin(c, p));
        }
        let Some(record) = wasm::contract(view, &call.contract).map_err(state_err)? else {
            return Err(reject(
                RejectCode::UnknownCall,
                format!(
                    "no built-in method {}.{} and no deployed contract {:?}",
                    call.contract, call.method, call.contract
                ),
            ));
        };
        match signed.tx.fuel_limit {
            None => {
                return Err(reject(
                    RejectCode::FuelLimitMissing,
                    format!(
                        "a call to the WASM contract {:?} needs a fuel limit (a version 2 transaction)",
                        record.name
                    ),
                ));
            }
            Some(l) if l < crate::params::MIN_CALL_FUEL => {
                return Err(reject(
                    RejectCode::FuelLimitTooLow,
                    format!(
                        "fuel limit {l} is below {}, the least a call to the WASM contract {:?} needs",
                        crate::params::MIN_CALL_FUEL,
                        record.name
                    ),
                ));
            }
            Some(_) => {}
        }
        if record.frozen {
            return Err(reject(
                RejectCode::ContractFrozen,
                format!(
                    "contract {:?} was frozen by governance at height {}",
                    record.name, record.updated.0
                ),
            ));
        }
        if let Some(f) =
            crate::supervision::freeze(view, crate::trace::FreezeKind::Contract, &record.name)
                .map_err(state_err)?
        {
            return Err(reject(
                RejectCode::ContractFrozenBySupervisor,
                format!(
                    "contract {:?} was frozen by the supervisor at height {} ({})",
                    record.name, f.height.0, f.reason
                ),
            ));
        }
        Ok(Target::Wasm(record))
    }

    /// Finds and validates the signer's certificate, through the caches.
    fn resolve_signer<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        sender: &Sender,
    ) -> Result<Arc<CheckedChain>, Rejection> {
        let (id, stored) = match sender {
            Sender::Certificate(der) => (sm3(der), None),
            Sender::Registered(id) => {
                let cert = view.certificate(id).map_err(state_err)?.ok_or_else(|| {
                    reject(
                        RejectCode::UnknownSender,
                        format!("no certificate is recorded under {id}"),
                    )
                })?;
                (*id, Some(cert))
            }
        };
        if let Some(chain) = self.cache_get(&id) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            if check_live(view, &self.live, ctx.now, &chain, None).is_ok() {
                return Ok(chain);
            }
            // The cached path no longer holds, but another may (a CA re-certified with the
            // same name and key, which still verifies the leaf): a fresh validation decides, so
            // the cache never changes a result.
            self.cache_remove(&id);
        }
        let root = view.root();
        if let Some(r) = self.refused_get(&root, &id) {
            return Err(r);
        }
        match self.validate_signer(view, ctx, sender, stored) {
            Ok(chain) => {
                self.cache_put(id, chain.clone());
                Ok(chain)
            }
            Err(Refused { rejection, lasting }) => {
                if lasting {
                    self.refused_put(&root, id, &rejection);
                }
                Err(rejection)
            }
        }
    }

    /// Validates a signer's certificate not seen before: the consortium's chain validation
    /// against the registered CAs and recorded CRLs, then the registration checks.
    fn validate_signer<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        sender: &Sender,
        stored: Option<Certificate>,
    ) -> Result<Arc<CheckedChain>, Refused> {
        let leaf = match (stored, sender) {
            (Some(cert), _) => cert,
            (None, Sender::Certificate(der)) => Certificate::from_der(der)
                .map_err(|e| reject(RejectCode::CertInvalid, format!("sender certificate: {e}")))?,
            (None, Sender::Registered(_)) => {
                return Err(reject(RejectCode::UnknownSender, "no certificate").into());
            }
        };
        let role = leaf.role().ok_or_else(|| {
            reject(
                RejectCode::CertInvalid,
                format!("{} has no gmchain role", cert_ref(&leaf)),
            )
        })?;
        let members = self
            .live
            .members(view)
            .map_err(|e| Refused::passing(state_err(e)))?;
        let validated = self
            .live
            .anchors(view)
            .map_err(|e| Refused::passing(state_err(e)))?
            .validate(&leaf, &members.intermediates, &members.crls, ctx.now, role)
            .map_err(|e| Refused {
                rejection: removed_refusal(view, &self.live, &leaf)
                    .unwrap_or_else(|| chain_rejection(&e)),
                // A certificate not yet valid, or a CRL not yet current, may become valid
                // while the root stays the same (an idle chain); every other outcome is fixed
                // for this state (expiry only gets worse).
                lasting: !matches!(
                    e,
                    ChainError::NotYetValid { .. }
                        | ChainError::RevocationUnknown {
                            problem: CrlProblem::NotCurrent { .. },
                            ..
                        }
                ),
            })?;
        let chain = CheckedChain {
            organisation: validated.organisation().to_string(),
            role: validated.role(),
            path: validated.path().to_vec(),
        };
        check_registration(view, &self.live, &chain, None)?;
        Ok(Arc::new(chain))
    }

    /// A call that introduces a CA (`Contract::introduced_ca`: `identity.register_org`): the
    /// signer is certified by the new CA, which is not registered yet. The chain is validated
    /// in the consortium as leaf → new CA → … → a founding CA that sponsors the new name, with
    /// the recorded CRLs plus the new CA's CRL; the path must run through the new CA. Never
    /// cached: the new CA is not (yet) registered.
    fn resolve_introducing_signer<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        signed: &SignedTx,
        new_ca: &Certificate,
        new_crl: &Crl,
    ) -> Result<Arc<CheckedChain>, Rejection> {
        let call = &signed.tx.call;
        let leaf = match &signed.tx.sender {
            Sender::Certificate(der) => Certificate::from_der(der)
                .map_err(|e| reject(RejectCode::CertInvalid, format!("sender certificate: {e}")))?,
            Sender::Registered(id) => {
                view.certificate(id).map_err(state_err)?.ok_or_else(|| {
                    reject(
                        RejectCode::UnknownSender,
                        format!("no certificate is recorded under {id}"),
                    )
                })?
            }
        };
        let role = leaf.role().ok_or_else(|| {
            reject(
                RejectCode::CertInvalid,
                format!("{} has no gmchain role", cert_ref(&leaf)),
            )
        })?;
        let members = self.live.members(view).map_err(state_err)?;
        let mut intermediates = vec![new_ca.clone()];
        intermediates.extend(members.intermediates.iter().cloned());
        let mut crls = members.crls.clone();
        crls.push(new_crl.clone());
        let validated = self
            .live
            .anchors(view)
            .map_err(state_err)?
            .validate(&leaf, &intermediates, &crls, ctx.now, role)
            .map_err(|e| chain_rejection(&e))?;
        let path = validated.path().to_vec();
        if path.get(1).map(|c| c.der()) != Some(new_ca.der()) {
            return Err(reject(
                RejectCode::PermissionDenied,
                format!(
                    "{}.{} must be signed by an admin certified by the new CA {}; {} is not",
                    call.contract,
                    call.method,
                    cert_ref(new_ca),
                    cert_ref(&leaf)
                ),
            ));
        }
        let chain = CheckedChain {
            organisation: validated.organisation().to_string(),
            role: validated.role(),
            path,
        };
        check_registration(view, &self.live, &chain, Some(new_ca))?;
        Ok(Arc::new(chain))
    }

    /// The permission table's role check, then the contract's authorisation hook in a
    /// read-only context on `view`, at `phase` (admission or recheck), with the consortium's
    /// certificate validation. The hook sees the block the transaction is admitted for: height
    /// tip + 1 at the admission time.
    #[allow(
        clippy::too_many_arguments,
        reason = "the hook's inputs, which admit and recheck take from different places"
    )]
    fn authorize<S: NodeStore + ?Sized>(
        &self,
        view: &StateView<'_, S>,
        ctx: &AdmitContext,
        target: &Target<'_>,
        signed: &SignedTx,
        id: TxId,
        signer: &SignerInfo,
        phase: Phase,
    ) -> Result<(), Rejection> {
        let (contract, perm) = match target {
            Target::Builtin(c, p) => (*c, *p),
            // A WASM contract decides itself, when it runs, from the caller it is given.
            Target::Wasm(record) => {
                return match wasm::role_refusal(signer.role, &record.name) {
                    Some(why) => Err(reject(RejectCode::PermissionDenied, why)),
                    None => Ok(()),
                };
            }
        };
        if let Some(why) = perm.role_refusal(signer.role) {
            return Err(reject(RejectCode::PermissionDenied, why));
        }
        let cas = ConsortiumCas {
            admission: self,
            view,
            now: ctx.now,
        };
        let block = BlockContext {
            height: Height(ctx.tip.0.saturating_add(1)),
            timestamp_ms: ctx.now.0.saturating_mul(1000),
        };
        let meter = CostMeter::unlimited();
        let env = Env {
            caller: signer,
            block: &block,
            tx_id: id,
            limits: &self.limits,
            meter: &meter,
            phase,
            cas: Some(&cas),
            runtime: None,
        };
        let call = &signed.tx.call;
        contract
            .authorize(
                &CallContext::read_only(contract.name(), view, env),
                &call.method,
                &call.args,
            )
            .map_err(Denial::into_rejection)
    }
}

/// What a transaction calls.
enum Target<'r> {
    /// A built-in contract's method, with its permission entry.
    Builtin(&'r dyn Contract, &'static Permission),
    /// A deployed WASM contract.
    Wasm(crate::records::ContractRecord),
}

/// Refuses a fuel limit above the chain's `max_fuel_per_tx` or `max_fuel_per_block` in force.
fn check_fuel_limit(limit: Option<u64>, p: &ParamsInForce) -> Result<(), Rejection> {
    let Some(limit) = limit else { return Ok(()) };
    let max = p.params.max_fuel_per_tx.min(p.params.max_fuel_per_block);
    if limit > max {
        return Err(reject(
            RejectCode::FuelLimitTooHigh,
            format!(
                "fuel limit {limit} is above the chain's maximum {max} in force {} (max_fuel_per_tx {}, max_fuel_per_block {})",
                p.since_text(),
                p.params.max_fuel_per_tx,
                p.params.max_fuel_per_block
            ),
        ));
    }
    Ok(())
}

/// The consortium's validation as admission runs it, offered to authorisation hooks: the
/// registered CAs as intermediates and the recorded CRLs of the state being admitted to.
struct ConsortiumCas<'x, 'v, S: NodeStore + ?Sized> {
    admission: &'x Admission,
    view: &'x StateView<'v, S>,
    now: UnixTime,
}

impl<S: NodeStore + ?Sized> CaValidation for ConsortiumCas<'_, '_, S> {
    fn validate(
        &self,
        cert: &Certificate,
        intended: Role,
    ) -> Result<Result<Vec<Certificate>, ChainError>, ExecError> {
        let members = self.admission.live.members(self.view)?;
        Ok(self
            .admission
            .live
            .anchors(self.view)?
            .validate(
                cert,
                &members.intermediates,
                &members.crls,
                self.now,
                intended,
            )
            .map(|v| v.path().to_vec()))
    }
}

/// Refuses a transaction already seen, and one whose status cannot be read.
fn check_unseen(seen: &Seen<'_>, id: &TxId) -> Result<(), Rejection> {
    match seen(id) {
        Ok(false) => Ok(()),
        Ok(true) => Err(reject(
            RejectCode::Duplicate,
            format!("transaction {id} was already submitted"),
        )),
        Err(why) => Err(reject(
            RejectCode::StateUnavailable,
            format!("cannot tell whether transaction {id} was already submitted: {why}"),
        )),
    }
}

fn check_suspension<S: NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    live: &LiveCache,
    signer: &SignerInfo,
) -> Result<(), Rejection> {
    if live.in_good_standing(view, signer) {
        return Ok(());
    }
    check_suspension_fresh(view, signer)?;
    live.remember_good_standing(view, signer);
    Ok(())
}

/// [`check_suspension`] read from the state: the suspension flag, then the supervisor's
/// freezes.
fn check_suspension_fresh<S: NodeStore + ?Sized>(
    view: &StateView<'_, S>,
    signer: &SignerInfo,
) -> Result<(), Rejection> {
    if view.is_suspended(&signer.cert_id).map_err(state_err)? {
        return Err(reject(
            RejectCode::SignerSuspended,
            format!(
                "certificate {} ({:?} of {:?}) is suspended",
                signer.cert_id, signer.common_name, signer.organisation
            ),
        ));
    }
    // The supervisor's freezes: separate flags with their own codes.
    if let Some((code, why)) =
        crate::supervision::signer_refusal(view, &signer.cert_id, &signer.organisation, signer.role)
            .map_err(state_err)?
    {
        return Err(reject(code, why));
    }
    Ok(())
}

/// A proposal carrying a module pays for the module's checks by its size: its fuel limit must
/// cover them. Run after the signature is verified (the checks validate the module).
fn check_module_fuel(tx: &types::Transaction) -> Result<(), Rejection> {
    let Some(module) = crate::governance::proposal_module_fuel(&tx.call) else {
        return Ok(());
    };
    let need = module.saturating_add(crate::contract::BUILTIN_CALL_COST);
    match tx.fuel_limit {
        None => Err(reject(
            RejectCode::FuelLimitMissing,
            format!(
                "a proposal carrying a module pays {need} fuel for its checks: name a fuel limit of at least that (a version 2 transaction)"
            ),
        )),
        Some(l) if l < need => Err(reject(
            RejectCode::FuelLimitTooLow,
            format!(
                "fuel limit {l} is below {need}, what the checks of the proposal's module cost"
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! The signature cache's key and bound. Admission through the cache end to end (a cached
    //! transaction with another signature, user ID, sender or chain is judged afresh) is
    //! tested on a ledger: `crates/ledger/src/signature_cache_tests.rs`.
    use super::*;
    use crypto::{Signer, UserId};
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use pki::{IssueRequest, Serial, Validity, issue, issue_root};
    use types::{Call, Encode, Transaction};

    fn validity() -> Validity {
        Validity {
            not_before: UnixTime(1_767_225_600),
            not_after: UnixTime(1_767_225_600 + 365 * 86_400),
        }
    }

    /// Alice's key with two certificates, and bob's.
    struct Fx {
        alice: (crypto_sm::SoftSigner, Certificate),
        alice2: Certificate,
        bob: Certificate,
    }

    fn fixture() -> Fx {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(7)));
        let ca_key = p.generate().unwrap();
        let ca = issue_root(
            "Sig Root CA",
            "Sig Consortium",
            Serial::from_hex("01").unwrap(),
            validity(),
            &ca_key,
        )
        .unwrap();
        let leaf = |key: &dyn Signer, cn: &str, serial: u8| {
            issue(
                &ca,
                &ca_key,
                &IssueRequest {
                    role: Role::User,
                    common_name: cn,
                    organisation: "Sig Consortium",
                    public_key: &key.public_key(),
                    serial: Serial::from_bytes(&[0x10, serial]).unwrap(),
                    validity: validity(),
                },
            )
            .unwrap()
        };
        let alice_key = p.generate().unwrap();
        let bob_key = p.generate().unwrap();
        let alice = leaf(&alice_key, "alice", 1);
        let alice2 = leaf(&alice_key, "alice", 2);
        let bob = leaf(&bob_key, "bob", 3);
        Fx {
            alice: (alice_key, alice),
            alice2,
            bob,
        }
    }

    #[test]
    fn the_key_covers_every_byte_and_the_certificate() {
        let fx = fixture();
        let tx = Transaction {
            fuel_limit: None,
            chain_id: ChainId::new("sig-cache-1").unwrap(),
            salt: [3; 16],
            expiry: Height(50),
            sender: Sender::Certificate(fx.alice.1.der().to_vec()),
            call: Call {
                contract: "attestation".into(),
                method: "anchor".into(),
                args: vec![vec![3; 32], b"contract.pdf".to_vec()],
            },
        };
        let signed = SignedTx::sign(tx, &fx.alice.0, &UserId::default()).unwrap();
        let bytes = signed.to_bytes();
        let key_of =
            |s: &SignedTx, cert: &Certificate| SignatureKey::new(s, &s.tx_id(), cert.fingerprint());
        let key = key_of(&signed, &fx.alice.1);
        // Any change anywhere that still decodes (chain ID, body, sender, signature, user ID)
        // is another key: the key holds every input of the verification.
        let mut decoded = 0;
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let Ok(other) = SignedTx::from_bytes(&b, &Limits::default()) else {
                continue;
            };
            decoded += 1;
            assert_ne!(other, signed, "byte {i}: the codec is canonical");
            assert_ne!(key_of(&other, &fx.alice.1), key, "byte {i}");
        }
        assert!(decoded > bytes.len() / 2, "only {decoded} flips decoded");
        // A change of the user ID alone (another ZA) is another key.
        let mut other_uid = signed.clone();
        other_uid.signer_user_id = UserId::new(b"another user id".to_vec()).unwrap();
        assert_ne!(key_of(&other_uid, &fx.alice.1), key);
        // The same transaction verified with another certificate (even one for the same key).
        assert_ne!(key_of(&signed, &fx.alice2), key);
        assert_ne!(key_of(&signed, &fx.bob), key);
        let cache = SignatureCache::default();
        cache.insert(key);
        assert!(cache.contains(&key));
        assert!(!cache.contains(&key_of(&signed, &fx.alice2)));
    }

    #[test]
    fn the_signature_cache_is_bounded_and_keeps_the_newest() {
        let cache = SignatureCache::default();
        let key = |i: u32| {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_be_bytes());
            SignatureKey {
                message: TxId(Digest(d)),
                signature: Digest([5; 32]),
                certificate: Digest([7; 32]),
            }
        };
        let n = u32::try_from(SIGNATURE_CACHE_CAPACITY).unwrap() * 2;
        for i in 0..n {
            cache.insert(key(i));
            assert!(cache.len() <= SIGNATURE_CACHE_CAPACITY);
        }
        assert!(cache.contains(&key(n - 1)));
        assert!(cache.contains(&key(
            n - u32::try_from(SIGNATURE_CACHE_CAPACITY / 2).unwrap()
        )));
        assert!(!cache.contains(&key(0)));
    }
}
