//! The running network: a listener, one dialler per configured peer, and one task per link.
//!
//! A link's life: TCP, the GM TLS handshake (both ends `node-sign`), the peer's identity from
//! its verified leaf, the dialled name and organisation checked, `admit`, registration (which
//! applies the one-link-per-pair rule) framed by hellos (empty control frames): the acceptor
//! sends its hello once it accepted the dialler (in TLS 1.3 the dialler's handshake ends
//! before the acceptor judged its certificate), the dialler answers with its own once it
//! accepted and registered the link, and only then does the acceptor register it. Frames then
//! go both ways until either side closes, a frame breaks a rule, `revalidate` drops it, or shutdown.
//!
//! The relay rule: every link's writer sends the node's current link-state (the peers it holds
//! live links to: up for `relay_settle`, heard from within `link_liveness`) first, then each
//! new one after the frames queued before it (a `watch`, so only the latest waits and none is
//! dropped): a peer reads each frame after the state its sender had when queueing it. A
//! gossip message that arrived fresh from peer S goes in full to every other peer P, except
//! when P's last advertisement lists S and S's lists P: S then had the link when it queued
//! the message and queued it to P too (its own broadcast, or its relay, or its announce
//! unless P and S's own source listed each other, and so on back to the author). P is then
//! sent an announce of the message's id instead (a control frame, ids batched per link).
//!
//! Announce, then fetch: a node that hears an announce of an id its seen-cache lacks records
//! a want (the id, when it was first heard, and every distinct peer that announced it, up to
//! max(64, configured peers)). If the message has not arrived `fetch_grace` later it asks one
//! announcer linked at that moment (a want frame), and after each `fetch_timeout` without the
//! message a burst twice as large (2, 4, … up to 64 distinct announcers at once): in rounds,
//! every linked announcer once per round, those that answered a want on their current link
//! first; an announcer whose link is down is skipped for the moment,
//! not dropped, and a want with no announcer linked waits. The want ends only when the
//! message arrives from anyone or after `recent_keep`. Each node keeps the relay-topic
//! messages it delivered or broadcast for `recent_keep` within `recent_bytes`, each charged
//! to every peer it arrived from until the node vouches for it (it verified that a signer
//! signed exactly those bytes: [`NetworkHandle::vouch`]), then to that signer; own
//! broadcasts are charged to this node, or to their signer when broadcast vouched
//! ([`NetworkHandle::broadcast_vouched`]). Over the bound, while vouched messages hold less
//! than half of it, the unverified origin charged the most gives up its oldest (vouched ones
//! only when no unverified origin is charged anything); from half on, the vouched origin
//! charged the most; never the message just kept. It answers a want for
//! one of them by queueing the message to the asker as a normal gossip frame (its seen-cache
//! applies), at most twice per peer and message (a serve that found the queue full does not
//! count); wants for anything else are ignored.
//!
//! Why nothing is lost: a peer spared a full copy always gets an announce, from a node that
//! holds the message. If S's copy does not come (dropped on a full queue, lost on a link
//! that broke or fell silent, or never sent: a Byzantine S that advertised P and won the
//! race to this node), P fetches it from an announcer: it asks its linked announcers in
//! doubling bursts until the message arrives, so a correct announcer is asked within
//! `fetch_grace` plus about log2(silent announcers listed or preferred before it) + 1
//! `fetch_timeout`s (64 announcers within seven asks), a lost want or answer costs another
//! `fetch_timeout`, and a link break shorter than `recent_keep` costs the break. A node that lies in its advertisement
//! only turns full relays towards itself into announces, which it must then answer. Nothing
//! is kept per spared peer, so a withdrawn link costs no scan.
//!
//! What each bound can still cost (each counted in [`crate::Stats`]):
//! - a want older than `recent_keep` is given up (`wants_expired`): its announcers were
//!   unlinked or silent, or the answers were dropped, for that long;
//! - a peer's announces of ids nobody else announced create at most 4096 waiting wants; more
//!   are refused (`wants_dropped`): only that peer's own announces, never another's, and
//!   joining a want someone else created is free, so made-up ids cost their sender only;
//! - an announcer beyond max(64, configured peers) for one want is not remembered
//!   (`announcers_ignored`): a message is missed only if all remembered ones are silent
//!   (with the default 6 s `recent_keep` and 1 s `fetch_timeout`, seven bursts ask up to 127);
//! - an announce that finds 8192 ids already waiting for a link is not sent
//!   (`announces_not_sent`): that peer gets the message only from another announcer or a
//!   full relay; a want that finds 8192 waiting is asked again after `fetch_timeout`;
//! - the recent store: a message older than `recent_keep` is not served, and a peer that
//!   floods fresh messages pushes out its own first, others' unverified ones only down to
//!   its own share, and no vouched one (a Byzantine signer's flood of validly signed
//!   messages pushes out its own first, and other signers' only down to its share).
//!   A peer can still make correct nodes relay its junk (as with full relay: each fresh
//!   message goes on), and the bounded queues drop frames under a flood (counted per peer
//!   and topic); a dropped serve is re-asked, a dropped full relay is fetched.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gmtls::rustls::{ClientConfig, ServerConfig};
use gmtls::tokio_rustls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crypto::Digest;

use crate::frame::{self, Control, ReadError};
use crate::seen::{SeenCache, message_id};
use crate::{
    Admit, Direction, Inbound, LinkInfo, NetworkConfig, P2pError, PeerAddr, PeerId, PeerIdentity,
    Stats, Topic,
};

/// A frame waiting in a peer's queue.
type Outgoing = (Topic, Arc<[u8]>);

/// Payloads larger than this are hashed for the seen-cache with the runtime told first.
const BLOCKING_HASH: usize = 256 * 1024;

/// A dialled peer's name and organisation.
type DiallerKey = (String, Option<String>);

/// Starts networks.
#[derive(Debug)]
pub struct Network;

/// The node's handle on a running network; clones share it. Dropping the last clone shuts
/// the network down (without waiting); [`NetworkHandle::shutdown`] waits for every task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    shared: Arc<Shared>,
    _guard: Arc<ShutdownOnDrop>,
}

#[derive(Debug)]
struct ShutdownOnDrop(watch::Sender<bool>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

struct Link {
    serial: u64,
    /// Its peer's identity, and (`peer_links`) the peers it advertised live links to.
    info: LinkInfo,
    /// Who opened the connection: the one-link rule keeps the one the lower id opened.
    initiator: PeerId,
    tx: mpsc::Sender<Outgoing>,
    cancel: watch::Sender<bool>,
    /// When it was registered.
    since: Instant,
    /// When bytes (of any frame, keep-alives included) last arrived: milliseconds since the
    /// network started, written by the link's reader on every read.
    heard: Arc<AtomicU64>,
    /// Announces and wants waiting for the link's writer.
    control: Arc<ControlOut>,
    /// How many of this node's wants the peer answered on this link: announcers that
    /// answered before are asked first.
    answered: u64,
}

/// Message ids waiting to be announced to, or asked of, one peer. They bypass the link's
/// frame queue (a want must not wait behind the proposals it is about) and are written in
/// batches of up to [`frame::MAX_IDS_PER_FRAME`].
#[derive(Default)]
struct ControlOut {
    pending: Mutex<PendingControl>,
    notify: Notify,
}

#[derive(Default)]
struct PendingControl {
    announces: Vec<Digest>,
    wants: Vec<Digest>,
}

/// The most ids of one kind waiting for one link's writer; more are dropped (counted).
const MAX_PENDING_IDS: usize = 8 * frame::MAX_IDS_PER_FRAME;

/// The most wants one peer's announces may create that are still waiting: more of its
/// announces of ids nobody else announced are refused (counted in `wants_dropped`), so a
/// peer cannot grow this node's memory by announcing. There is no bound in all: made-up ids
/// from some peers never refuse another peer's announce (the total is at most this many per
/// linked peer).
const MAX_WANTS_PER_PEER: usize = 4_096;
/// The fewest announcers remembered per want (the bound is the larger of this and the
/// number of configured peers); more are ignored (counted in `announcers_ignored`).
const MIN_ANNOUNCERS: usize = 64;

/// One announcer of a want.
struct Announcer {
    peer: PeerId,
    /// Whether it was asked in the current round (every linked announcer is asked once
    /// per round, then the round starts again).
    asked: bool,
}

/// An announced message this node lacks.
struct Want {
    /// When it was first announced.
    first: Instant,
    /// Whose announce created it (the peer it is charged to).
    creator: PeerId,
    /// Every distinct peer that announced it, in order (up to the bound).
    announcers: Vec<Announcer>,
    /// When it was last asked for, and of whom (the first of that burst).
    asked: Option<(Instant, PeerId)>,
    /// Bursts of asks made so far: the k-th asks up to 2^k announcers at once.
    bursts: u32,
}

impl Want {
    /// Whom to ask now among the linked announcers (`linked` gives a link's answered-wants
    /// count): one not yet asked this round, preferring one that has answered a want on its
    /// current link; once every linked one was asked, a new round starts. `None` when no
    /// announcer is linked now.
    fn choose(&mut self, linked: impl Fn(&PeerId) -> Option<u64>) -> Option<PeerId> {
        for _round in 0..2 {
            let mut best: Option<(usize, bool)> = None;
            for (i, a) in self.announcers.iter().enumerate() {
                if a.asked {
                    continue;
                }
                let Some(answered) = linked(&a.peer) else {
                    continue;
                };
                let good = answered > 0;
                if best.is_none_or(|(_, b)| good && !b) {
                    best = Some((i, good));
                }
            }
            if let Some((i, _)) = best {
                self.announcers[i].asked = true;
                return Some(self.announcers[i].peer);
            }
            // Every linked announcer was asked this round (or none is linked): a new round.
            for a in &mut self.announcers {
                a.asked = false;
            }
        }
        None
    }

    /// Whom to ask now: a burst of up to 2^k distinct linked announcers for the k-th ask
    /// (k from 0, capped at [`MAX_BURST_DOUBLINGS`]), each picked by [`Want::choose`]. One at
    /// first, as the direct copy or the first announcer usually answers; doubling after each
    /// `fetch_timeout` without the message, so silent announcers listed first (or preferred
    /// for answering cheap wants before) delay the fetch by a few timeouts, not by one
    /// timeout each: 64 announcers are all asked within seven asks.
    fn choose_burst(&mut self, linked: impl Fn(&PeerId) -> Option<u64>) -> Vec<PeerId> {
        let n = 1usize << self.bursts.min(MAX_BURST_DOUBLINGS);
        let mut burst: Vec<PeerId> = Vec::new();
        while burst.len() < n {
            match self.choose(&linked) {
                Some(p) if !burst.contains(&p) => burst.push(p),
                _ => break,
            }
        }
        if !burst.is_empty() {
            self.bursts = self.bursts.saturating_add(1);
        }
        burst
    }
}

/// The doubling cap of a want's ask bursts (2^6 = 64 announcers at once).
const MAX_BURST_DOUBLINGS: u32 = 6;

/// What became of an announce.
#[derive(Debug, PartialEq, Eq)]
enum Announced {
    /// A new want, or a new announcer of one (or one already listed).
    Recorded,
    /// The want already lists the most announcers: this one is not remembered.
    Ignored,
    /// The announcer already created [`MAX_WANTS_PER_PEER`] wants still waiting.
    Refused,
}

/// The announced messages this node lacks, bounded per announcer.
struct Wants {
    map: HashMap<Digest, Want>,
    /// How many waiting wants each peer's announces created.
    per_peer: HashMap<PeerId, usize>,
    /// The most announcers remembered per want.
    max_announcers: usize,
}

impl Wants {
    fn new(max_announcers: usize) -> Self {
        Wants {
            map: HashMap::new(),
            per_peer: HashMap::new(),
            max_announcers,
        }
    }

    /// Records that `peer` announced `id` (not seen here). Joining a want another peer
    /// created is free: only creating one counts against the peer's bound.
    fn announced(&mut self, id: Digest, peer: PeerId, now: Instant) -> Announced {
        if let Some(w) = self.map.get_mut(&id) {
            if w.announcers.iter().any(|a| a.peer == peer) {
                return Announced::Recorded;
            }
            if w.announcers.len() >= self.max_announcers {
                return Announced::Ignored;
            }
            w.announcers.push(Announcer { peer, asked: false });
            return Announced::Recorded;
        }
        let per = self.per_peer.entry(peer).or_insert(0);
        if *per >= MAX_WANTS_PER_PEER {
            return Announced::Refused;
        }
        *per += 1;
        self.map.insert(
            id,
            Want {
                first: now,
                creator: peer,
                announcers: vec![Announcer { peer, asked: false }],
                asked: None,
                bursts: 0,
            },
        );
        Announced::Recorded
    }

    /// Forgets the want for `id`; returns it.
    fn remove(&mut self, id: &Digest) -> Option<Want> {
        let w = self.map.remove(id)?;
        if let Some(n) = self.per_peer.get_mut(&w.creator) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&w.creator);
            }
        }
        Some(w)
    }
}

/// Bytes counted per message in the recent store on top of its payload (the entry and its
/// place in the order).
pub(crate) const RECENT_ENTRY_BYTES: usize = 128;
/// Bytes counted per peer a kept message was served to.
const SERVED_ENTRY_BYTES: usize = 40;
/// How many times one peer is sent one message in answer to its wants.
const MAX_SERVES_PER_PEER: u8 = 2;

/// Relay-topic messages delivered or broadcast lately, to answer wants. Payloads are shared
/// with the queues but counted in full.
///
/// Each kept message is charged to every peer it arrived from, until the node vouches for
/// it (it verified its signer's signature): then to that signer alone. This node's own
/// broadcasts are charged to it (unverified class: its clients' transactions), or to their
/// signer when broadcast as vouched (its proposals and votes). Each origin has its share.
/// Over `recent_bytes`, while vouched messages hold less than half of it, the unverified
/// origin charged the most gives up its oldest message (a message goes once no origin is
/// charged for it), and vouched ones go only once no unverified origin is charged anything;
/// from half on, the vouched origin charged the most gives up its oldest. So a flood of
/// unverified messages, from any number of peers, pushes out only unverified ones, its
/// senders' own first and others' down to their share, never a vouched one; and a signer's
/// flood of validly signed messages pushes out only vouched ones, its own first (among
/// signers the one charged with the most messages gives up its oldest, not a proposer's one
/// large block), and leaves unverified ones half of the store (less the message arriving).
#[derive(Default)]
struct Recent {
    map: HashMap<Digest, RecentMessage>,
    /// Oldest first, for the age bound.
    order: VecDeque<(Instant, Digest)>,
    /// Each origin's charged bytes and messages (oldest first; entries of messages since
    /// gone or no longer charged to it are skipped).
    origins: HashMap<Origin, Share>,
    /// The bytes counted in all (each message once, served counts included).
    bytes: usize,
}

/// Who a kept message is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// A peer it arrived from, the message unverified.
    Peer(PeerId),
    /// This node: its own broadcast, unverified class (a client's transaction).
    Local,
    /// The signer the node vouched for ([`NetworkHandle::vouch`],
    /// [`NetworkHandle::broadcast_vouched`]).
    Author(Digest),
}

impl Origin {
    fn vouched(self) -> bool {
        matches!(self, Origin::Author(_))
    }
}

#[derive(Default)]
struct Share {
    bytes: usize,
    /// The messages charged to it.
    count: usize,
    order: VecDeque<Digest>,
}

struct RecentMessage {
    at: Instant,
    topic: Topic,
    payload: Arc<[u8]>,
    /// The origins it is charged to: peers, or (once vouched) one vouched origin.
    holders: Vec<Origin>,
    /// How many times each peer was sent it.
    served: Vec<(PeerId, u8)>,
}

impl RecentMessage {
    /// What it costs each origin it is charged to.
    fn charge(&self) -> usize {
        self.payload.len() + RECENT_ENTRY_BYTES
    }
}

impl Recent {
    /// Keeps message `id` that arrived fresh from `origin`, then applies the bounds: older
    /// than `keep` goes, and over `max_bytes` the largest origin's oldest goes (never the
    /// message just kept: the configuration check makes room for two of the largest).
    #[allow(clippy::too_many_arguments)] // reason: the message, its origin, the time, two bounds
    fn insert(
        &mut self,
        id: Digest,
        topic: Topic,
        payload: &Arc<[u8]>,
        origin: Origin,
        now: Instant,
        keep: Duration,
        max_bytes: usize,
    ) {
        if !self.map.contains_key(&id) {
            let m = RecentMessage {
                at: now,
                topic,
                payload: payload.clone(),
                holders: Vec::new(),
                served: Vec::new(),
            };
            self.bytes += m.charge();
            self.map.insert(id, m);
            self.order.push_back((now, id));
        }
        self.also_from(&id, origin);
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) <= keep {
                break;
            }
            self.order.pop_front();
            if self.map.get(&old).is_some_and(|m| m.at == at) {
                self.forget(&old);
            }
        }
        self.shrink(&id, max_bytes);
    }

    /// Applies the byte bound, never removing message `keep`.
    fn shrink(&mut self, keep: &Digest, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((origin, victim)) = self.victim(keep, max_bytes) else {
                break;
            };
            self.uncharge(&victim, origin);
        }
    }

    /// Charges kept message `id` to `origin` too (it arrived from there again). A vouched
    /// message stays charged to its vouched origin alone.
    fn also_from(&mut self, id: &Digest, origin: Origin) {
        let Some(m) = self.map.get_mut(id) else {
            return;
        };
        if m.holders.contains(&origin) || m.holders.iter().any(|h| h.vouched()) {
            return;
        }
        if origin.vouched() {
            // The peers' charges go: the message is no longer theirs to lose.
            let peers = std::mem::replace(&mut m.holders, vec![origin]);
            let charge = m.charge();
            for p in peers {
                self.release(p, charge);
            }
            let share = self.origins.entry(origin).or_default();
            share.bytes += charge;
            share.count += 1;
            share.order.push_back(*id);
            return;
        }
        m.holders.push(origin);
        let share = self.origins.entry(origin).or_default();
        share.bytes += m.charge();
        share.count += 1;
        share.order.push_back(*id);
    }

    /// Charges kept message `id` to `author`, whom the node verified signed it, instead of
    /// the peers it arrived from. Returns whether it is kept.
    fn vouch(&mut self, id: &Digest, author: Digest) -> bool {
        if !self.map.contains_key(id) {
            return false;
        }
        self.also_from(id, Origin::Author(author));
        true
    }

    /// Vouches for message `id` (`topic`, `payload`) as `author`'s, keeping it again if it
    /// was pushed out before the node got to it (its only relay flooded meanwhile).
    #[allow(clippy::too_many_arguments)] // reason: the message, its signer, the time, two bounds
    fn keep_vouched(
        &mut self,
        id: Digest,
        topic: Topic,
        payload: &Arc<[u8]>,
        author: Digest,
        now: Instant,
        keep: Duration,
        max_bytes: usize,
    ) {
        if !self.vouch(&id, author) {
            let origin = Origin::Author(author);
            self.insert(id, topic, payload, origin, now, keep, max_bytes);
        }
    }

    /// Whose oldest message goes next (never `keep`): while vouched messages hold less than
    /// half of `max_bytes`, the unverified origin charged the most bytes, or if none is
    /// charged anything, the signer charged the most messages; from half on, that signer.
    fn victim(&self, keep: &Digest, max_bytes: usize) -> Option<(Origin, Digest)> {
        let kept = self.map.get(keep);
        let vouched_bytes: usize = self
            .origins
            .iter()
            .filter(|(o, _)| o.vouched())
            .map(|(_, s)| s.bytes)
            .sum();
        let vouched_first = vouched_bytes >= max_bytes / 2;
        // Unverified origins by bytes (a peer's flood is its bytes); signers by the number
        // of messages, then bytes (a proposer holds one large message a round, a flood of
        // validly signed messages many).
        let largest = |vouched: bool| {
            self.origins
                .iter()
                .filter(|(o, _)| o.vouched() == vouched)
                .map(|(o, s)| {
                    let own = kept.filter(|m| m.holders.contains(o));
                    let bytes = s.bytes.saturating_sub(own.map_or(0, |m| m.charge()));
                    let count = s.count.saturating_sub(usize::from(own.is_some()));
                    let rank = if vouched {
                        (count, bytes)
                    } else {
                        (bytes, count)
                    };
                    (o, s, bytes, rank)
                })
                .filter(|(_, _, b, _)| *b > 0)
                .max_by_key(|(_, _, _, rank)| *rank)
                .map(|(o, s, _, _)| (*o, s))
        };
        let (origin, share) = largest(vouched_first).or_else(|| largest(!vouched_first))?;
        let id = share.order.iter().find(|id| {
            *id != keep
                && self
                    .map
                    .get(id)
                    .is_some_and(|m| m.holders.contains(&origin))
        })?;
        Some((origin, *id))
    }

    /// Stops charging `id` to `origin`; the message goes once nobody is charged for it.
    fn uncharge(&mut self, id: &Digest, origin: Origin) {
        let Some(m) = self.map.get_mut(id) else {
            return;
        };
        m.holders.retain(|h| *h != origin);
        let (charge, gone) = (m.charge(), m.holders.is_empty());
        self.release(origin, charge);
        if gone && let Some(m) = self.map.remove(id) {
            self.bytes -= Self::cost(&m);
        }
    }

    /// Forgets `id` (too old), releasing every origin's charge.
    fn forget(&mut self, id: &Digest) {
        if let Some(m) = self.map.remove(id) {
            self.bytes -= Self::cost(&m);
            for h in &m.holders {
                self.release(*h, m.charge());
            }
        }
    }

    /// Takes `charge` bytes off `origin`'s share and drops the entries at its front that no
    /// longer count.
    fn release(&mut self, origin: Origin, charge: usize) {
        let Some(share) = self.origins.get_mut(&origin) else {
            return;
        };
        share.bytes = share.bytes.saturating_sub(charge);
        share.count = share.count.saturating_sub(1);
        if share.bytes == 0 {
            self.origins.remove(&origin);
            return;
        }
        while let Some(front) = share.order.front() {
            if self
                .map
                .get(front)
                .is_some_and(|m| m.holders.contains(&origin))
            {
                break;
            }
            share.order.pop_front();
        }
    }

    /// The bytes `m` is counted for in all.
    fn cost(m: &RecentMessage) -> usize {
        m.charge() + m.served.len() * SERVED_ENTRY_BYTES
    }

    /// The message `id` for `peer`, if kept, not older than `keep` and not yet sent to it
    /// [`MAX_SERVES_PER_PEER`] times. The served count is counted against `max_bytes` at
    /// once.
    fn serve(
        &mut self,
        id: &Digest,
        peer: PeerId,
        now: Instant,
        keep: Duration,
        max_bytes: usize,
    ) -> Option<(Topic, Arc<[u8]>)> {
        let m = self.map.get_mut(id)?;
        if now.duration_since(m.at) > keep {
            return None;
        }
        let (i, new_entry) = match m.served.iter().position(|(p, _)| *p == peer) {
            Some(i) => (i, false),
            None => {
                m.served.push((peer, 0));
                (m.served.len() - 1, true)
            }
        };
        if m.served[i].1 >= MAX_SERVES_PER_PEER {
            return None;
        }
        m.served[i].1 += 1;
        let out = (m.topic, m.payload.clone());
        if new_entry {
            // Counted, and the bound applied now rather than at the next arrival.
            self.bytes += SERVED_ENTRY_BYTES;
            self.shrink(id, max_bytes);
        }
        Some(out)
    }

    /// Takes back one serve of `id` to `peer` that could not be queued.
    fn unserve(&mut self, id: &Digest, peer: PeerId) {
        if let Some(m) = self.map.get_mut(id)
            && let Some((_, n)) = m.served.iter_mut().find(|(p, _)| *p == peer)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// A registered link, for its task.
struct Registered {
    serial: u64,
    rx: mpsc::Receiver<Outgoing>,
    cancelled: watch::Receiver<bool>,
    heard: Arc<AtomicU64>,
    control: Arc<ControlOut>,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    control_in: AtomicU64,
    control_out: AtomicU64,
    link_states_in: AtomicU64,
    relays_announced: AtomicU64,
    announces_out: AtomicU64,
    announces_in: AtomicU64,
    wants_out: AtomicU64,
    wants_in: AtomicU64,
    fetched: AtomicU64,
    served: AtomicU64,
    vouched: AtomicU64,
    wants_dropped: AtomicU64,
    announces_not_sent: AtomicU64,
    announcers_ignored: AtomicU64,
    wants_expired: AtomicU64,
    duplicates: AtomicU64,
    relayed: AtomicU64,
    dials: AtomicU64,
    reconnects: AtomicU64,
    refused: AtomicU64,
    oversized: AtomicU64,
    malformed: AtomicU64,
    duplicate_links: AtomicU64,
    revoked: AtomicU64,
    idle: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    config: NetworkConfig,
    local_addr: SocketAddr,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    admit: Admit,
    links: Mutex<HashMap<PeerId, Link>>,
    /// Bumped whenever a link is added or removed; diallers wait on it.
    changed: watch::Sender<u64>,
    /// This node's current link-state advertisement (an encoded control payload); every
    /// link's writer sends each new value.
    link_state: watch::Sender<Arc<[u8]>>,
    /// The origin of the links' `heard` times.
    started: Instant,
    /// Announced messages this node lacks. Lock order: `wants` before `seen`, never the
    /// other way round.
    wants: Mutex<Wants>,
    /// Messages kept to answer wants.
    recent: Mutex<Recent>,
    seen: Mutex<SeenCache>,
    inbound: mpsc::Sender<Inbound>,
    counters: Counters,
    drops: Mutex<std::collections::BTreeMap<(PeerId, Topic), u64>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    /// The stop signal of each dialled peer, by name and organisation.
    diallers: Mutex<HashMap<DiallerKey, watch::Sender<bool>>>,
    next_serial: AtomicU64,
    rng: Mutex<u64>,
    handshakes: Arc<Semaphore>,
}

impl Shared {
    fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            links: lock(&self.links).len(),
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            control_in: get(&c.control_in),
            control_out: get(&c.control_out),
            link_states_in: get(&c.link_states_in),
            relays_announced: get(&c.relays_announced),
            announces_out: get(&c.announces_out),
            announces_in: get(&c.announces_in),
            wants_out: get(&c.wants_out),
            wants_in: get(&c.wants_in),
            fetched: get(&c.fetched),
            served: get(&c.served),
            vouched: get(&c.vouched),
            wants_dropped: get(&c.wants_dropped),
            announces_not_sent: get(&c.announces_not_sent),
            announcers_ignored: get(&c.announcers_ignored),
            wants_expired: get(&c.wants_expired),
            duplicates: get(&c.duplicates),
            relayed: get(&c.relayed),
            dropped: lock(&self.drops).clone(),
            dials: get(&c.dials),
            reconnects: get(&c.reconnects),
            refused: get(&c.refused),
            oversized: get(&c.oversized),
            malformed: get(&c.malformed),
            duplicate_links: get(&c.duplicate_links),
            revoked: get(&c.revoked),
            idle: get(&c.idle),
        }
    }
}

/// A running network's counters, read without keeping it running: see
/// [`NetworkHandle::stats_view`].
#[derive(Clone, Debug)]
pub struct StatsView(std::sync::Weak<Shared>);

impl StatsView {
    /// The counters now, or `None` once the network is gone.
    pub fn stats(&self) -> Option<Stats> {
        self.0.upgrade().map(|s| s.stats())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("local_addr", &self.local_addr)
            .field("local_id", &self.config.local_id)
            .finish_non_exhaustive()
    }
}

/// Locks `m`; a panic elsewhere while holding it does not poison the network.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Network {
    /// Binds `config.listen` and starts listening and dialling `config.peers`. `server` and
    /// `client` are the node's link configurations (`gmtls::link_server_config`,
    /// `gmtls::link_client_config`); `admit` decides who may hold a link. Returns the handle
    /// and the queue of messages from peers. Must run inside a multi-threaded tokio runtime
    /// (handshakes call the signer and verifier synchronously, through `gmtls::blocking`).
    pub async fn start(
        config: NetworkConfig,
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        admit: Admit,
    ) -> Result<(NetworkHandle, mpsc::Receiver<Inbound>), P2pError> {
        config.check()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| P2pError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| P2pError::Bind {
            addr: config.listen,
            source,
        })?;
        let (inbound, rx) = mpsc::channel(config.inbound_queue);
        let (shutdown, _) = watch::channel(false);
        let seed = getrandom::u64().unwrap_or_else(|_| {
            // No OS entropy: jitter from the clock still spreads redials apart.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9e37_79b9_7f4a_7c15)
        });
        let peers = config.peers.clone();
        let shared = Arc::new(Shared {
            seen: Mutex::new(SeenCache::new(config.seen_capacity)),
            handshakes: Arc::new(Semaphore::new(config.max_pending_handshakes)),
            config,
            local_addr,
            server,
            client,
            admit,
            links: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            link_state: watch::channel(Arc::<[u8]>::from(frame::encode_link_state(&[]))).0,
            started: Instant::now(),
            wants: Mutex::new(Wants::new(MIN_ANNOUNCERS.max(peers.len()))),
            recent: Mutex::new(Recent::default()),
            inbound,
            counters: Counters::default(),
            drops: Mutex::new(Default::default()),
            shutdown: shutdown.clone(),
            tasks: Mutex::new(JoinSet::new()),
            diallers: Mutex::new(HashMap::new()),
            next_serial: AtomicU64::new(1),
            rng: Mutex::new(seed),
        });
        tracing::info!(addr = %local_addr, id = %shared.config.local_id, "p2p listening");
        shared.spawn(listen(shared.clone(), listener));
        shared.spawn(advertise(shared.clone()));
        shared.spawn(fetch(shared.clone()));
        let handle = NetworkHandle {
            shared,
            _guard: Arc::new(ShutdownOnDrop(shutdown)),
        };
        for p in peers {
            handle.add_peer(p);
        }
        Ok((handle, rx))
    }
}

impl NetworkHandle {
    /// Returns the address the network listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Returns this node's id.
    pub fn local_id(&self) -> PeerId {
        self.shared.config.local_id
    }

    /// Starts dialling `peer` (and redialling it whenever its link ends). A peer already
    /// dialled (same name and organisation) is left as it is.
    pub fn add_peer(&self, peer: PeerAddr) {
        let key = (peer.name.clone(), peer.organisation.clone());
        let mut diallers = lock(&self.shared.diallers);
        if diallers.contains_key(&key) {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        diallers.insert(key, stop);
        drop(diallers);
        self.shared
            .spawn(dial_loop(self.shared.clone(), peer, stopped));
    }

    /// Stops dialling the peer named `name` (of `organisation`); a live link to it stays until
    /// it ends or [`NetworkHandle::revalidate`] drops it. Returns whether it was dialled.
    pub fn remove_peer(&self, name: &str, organisation: Option<&str>) -> bool {
        let key = (name.to_string(), organisation.map(str::to_string));
        match lock(&self.shared.diallers).remove(&key) {
            Some(stop) => {
                stop.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// Queues `payload` to every live link; returns how many queues took it. Never waits: a
    /// full queue drops the frame (counted for that peer and topic). A relayed topic's payload
    /// is remembered so that it is not delivered back up when peers relay it.
    pub fn broadcast(
        &self,
        topic: Topic,
        payload: impl Into<Arc<[u8]>>,
    ) -> Result<usize, P2pError> {
        self.broadcast_as(topic, payload.into(), None)
    }

    fn broadcast_as(
        &self,
        topic: Topic,
        payload: Arc<[u8]>,
        author: Option<Digest>,
    ) -> Result<usize, P2pError> {
        self.check_open()?;
        self.shared.config.limits.check(topic, payload.len())?;
        if self.shared.config.relay_topics.contains(&topic) {
            let id = message_id(topic, &payload);
            lock(&self.shared.seen).insert(id);
            let origin = author.map_or(Origin::Local, Origin::Author);
            self.shared.delivered(id, topic, &payload, origin, None);
        }
        Ok(self.shared.queue_to_all(topic, &payload, None))
    }

    /// Tells the network that relay-topic message `id` ([`Inbound::id`]) with `topic` and
    /// `payload` is authentic and will be used: the node verified that `author` (a
    /// validator's key, say) signed exactly these bytes. It is then charged to that author
    /// instead of the peers it arrived from (and kept again if a flood pushed it out before
    /// the node got to it), so that a flood of unverified messages, from any number of
    /// peers, cannot push it out before `recent_keep` while peers may still want it. Vouch
    /// only for what a signer's signature covers in full, and only once it is of use: an
    /// author's vouched messages compete with each other (see [`NetworkConfig::recent_bytes`]).
    pub fn vouch(&self, id: &Digest, topic: Topic, payload: &Arc<[u8]>, author: Digest) {
        if !self.shared.config.relay_topics.contains(&topic) {
            return;
        }
        let (keep, max) = (
            self.shared.config.recent_keep,
            self.shared.config.recent_bytes,
        );
        lock(&self.shared.recent).keep_vouched(
            *id,
            topic,
            payload,
            author,
            Instant::now(),
            keep,
            max,
        );
        bump(&self.shared.counters.vouched);
    }

    /// [`NetworkHandle::broadcast`] of a message `author` signed (this node's own proposal
    /// or vote): kept to answer wants as vouched for, charged to `author`, where its
    /// clients' transactions (plain broadcasts) cannot push it out.
    pub fn broadcast_vouched(
        &self,
        topic: Topic,
        payload: impl Into<Arc<[u8]>>,
        author: Digest,
    ) -> Result<usize, P2pError> {
        self.broadcast_as(topic, payload.into(), Some(author))
    }

    /// Queues `payload` to `peer`. Never waits: a full queue drops the frame (counted) and
    /// says so.
    pub fn send(
        &self,
        peer: PeerId,
        topic: Topic,
        payload: impl Into<Arc<[u8]>>,
    ) -> Result<(), P2pError> {
        self.check_open()?;
        let payload = payload.into();
        self.shared.config.limits.check(topic, payload.len())?;
        let tx = lock(&self.shared.links)
            .get(&peer)
            .map(|l| l.tx.clone())
            .ok_or(P2pError::NoLink { peer })?;
        match tx.try_send((topic, payload)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.count_drop(peer, topic);
                Err(P2pError::QueueFull { peer, topic })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(P2pError::NoLink { peer }),
        }
    }

    /// Re-runs `admit` for every live link and closes those that fail; returns how many were
    /// closed. The node calls it after each block, so that a revoked or removed validator's
    /// links end.
    pub fn revalidate(&self) -> usize {
        let snapshot: Vec<(PeerId, u64, PeerIdentity)> = lock(&self.shared.links)
            .iter()
            .map(|(id, l)| (*id, l.serial, l.info.peer.clone()))
            .collect();
        let failing: Vec<(PeerId, u64, PeerIdentity)> = snapshot
            .into_iter()
            .filter(|(_, _, identity)| !self.shared.admits(identity))
            .collect();
        let mut closed = 0;
        for (id, serial, identity) in failing {
            if self.shared.remove_link(id, serial) {
                tracing::warn!(peer = %identity, "p2p link dropped: the peer is no longer admitted");
                bump(&self.shared.counters.revoked);
                closed += 1;
            }
        }
        closed
    }

    /// Returns the live links.
    pub fn links(&self) -> Vec<LinkInfo> {
        lock(&self.shared.links)
            .values()
            .map(|l| l.info.clone())
            .collect()
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// A view of the counters that does not keep the network running (for a metrics page
    /// that outlives it).
    pub fn stats_view(&self) -> StatsView {
        StatsView(Arc::downgrade(&self.shared))
    }

    /// Stops listening and dialling, closes every link (with a TLS close_notify where the
    /// peer still reads) and waits for every task to end.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let mut tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        while tasks.join_next().await.is_some() {}
        lock(&self.shared.links).clear();
        self.shared.changed.send_modify(|v| *v += 1);
    }

    fn check_open(&self) -> Result<(), P2pError> {
        if *self.shared.shutdown.borrow() {
            return Err(P2pError::ShutDown);
        }
        Ok(())
    }
}

impl Shared {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        if *self.shutdown.borrow() {
            return;
        }
        let mut tasks = lock(&self.tasks);
        // Finished tasks are reaped here, so a long-lived node's set stays small.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Tells the observer, if any, of a refused incoming connection.
    fn refused(&self, remote: SocketAddr, reason: &'static str) {
        if let Some(observer) = &self.config.on_link {
            (observer.0)(crate::LinkEvent::Refused { remote, reason });
        }
    }

    fn admits(&self, identity: &PeerIdentity) -> bool {
        gmtls::blocking(|| (self.admit)(identity))
    }

    fn count_drop(&self, peer: PeerId, topic: Topic) {
        *lock(&self.drops).entry((peer, topic)).or_insert(0) += 1;
    }

    /// Queues a frame to every link (`from: None`, a broadcast), or relays message `id` that
    /// arrived from `from` to every other link, announcing it instead to those whose peer
    /// advertises a live link to `from` that `from` advertises back (the relay rule); returns
    /// how many queues took it.
    fn queue_to_all(
        &self,
        topic: Topic,
        payload: &Arc<[u8]>,
        from: Option<(PeerId, Digest)>,
    ) -> usize {
        let mut announce: Vec<(PeerId, Arc<ControlOut>)> = Vec::new();
        let links = lock(&self.links);
        // What the sender advertised before this message (same link, in order): a peer it
        // lists was linked to it when it sent or relayed the message, so got it (or its
        // announce) from it.
        let from_links: &[PeerId] = from
            .and_then(|(f, _)| links.get(&f))
            .map_or(&[], |l| &l.info.peer_links);
        let targets: Vec<(PeerId, mpsc::Sender<Outgoing>)> = links
            .iter()
            .filter(|(id, l)| match from {
                None => true,
                Some((from, _)) if **id == from => false,
                Some((from, _)) => {
                    let linked = self.config.announce_relays
                        && l.info.peer_links.binary_search(&from).is_ok()
                        && from_links.binary_search(id).is_ok();
                    if linked {
                        announce.push((**id, l.control.clone()));
                    }
                    !linked
                }
            })
            .map(|(id, l)| (*id, l.tx.clone()))
            .collect();
        drop(links);
        if let Some((_, id)) = from {
            self.counters
                .relays_announced
                .fetch_add(announce.len() as u64, Ordering::Relaxed);
            for (peer, control) in announce {
                self.push_control(peer, &control, &[id], false);
            }
        }
        let mut queued = 0;
        for (peer, tx) in targets {
            match tx.try_send((topic, payload.clone())) {
                Ok(()) => queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(%peer, %topic, "p2p queue full: frame dropped");
                    self.count_drop(peer, topic);
                }
                // The link is ending; its removal is under way.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        queued
    }

    /// Hands `ids` to a link's writer as announces (`want: false`) or wants; beyond
    /// [`MAX_PENDING_IDS`] waiting they are dropped (counted).
    fn push_control(&self, peer: PeerId, control: &ControlOut, ids: &[Digest], want: bool) {
        let mut pending = lock(&control.pending);
        let list = if want {
            &mut pending.wants
        } else {
            &mut pending.announces
        };
        let room = MAX_PENDING_IDS.saturating_sub(list.len());
        let taken = ids.len().min(room);
        list.extend_from_slice(&ids[..taken]);
        drop(pending);
        if taken < ids.len() {
            tracing::debug!(%peer, want, "p2p: too many control ids waiting: some dropped");
            let counter = if want {
                // Asked again after `fetch_timeout`.
                &self.counters.wants_dropped
            } else {
                &self.counters.announces_not_sent
            };
            counter.fetch_add((ids.len() - taken) as u64, Ordering::Relaxed);
        }
        if taken > 0 {
            control.notify.notify_one();
        }
    }

    /// Records that relay-topic message `id` is here (arrived fresh, or broadcast): a want
    /// for it ends, and it is kept to answer peers' wants, charged to `origin`.
    /// `from` is the peer it arrived from (`None`: broadcast here); if this node had asked it
    /// for the message, its link is credited with an answer.
    fn delivered(
        &self,
        id: Digest,
        topic: Topic,
        payload: &Arc<[u8]>,
        origin: Origin,
        from: Option<PeerId>,
    ) {
        let want = lock(&self.wants).remove(&id);
        if let Some(w) = want
            && w.asked.is_some()
        {
            bump(&self.counters.fetched);
            if let Some(from) = from
                && w.announcers.iter().any(|a| a.peer == from && a.asked)
                && let Some(l) = lock(&self.links).get_mut(&from)
            {
                l.answered += 1;
            }
        }
        let (keep, max) = (self.config.recent_keep, self.config.recent_bytes);
        lock(&self.recent).insert(id, topic, payload, origin, Instant::now(), keep, max);
    }

    /// Records that relay-topic message `id` arrived again, from `peer`: it is charged to
    /// that peer's share too, and kept again if it was pushed out (a peer that sent it first
    /// and then flooded pushed it out of its own share before the correct copy came).
    fn arrived_again(&self, id: Digest, topic: Topic, payload: &Arc<[u8]>, peer: PeerId) {
        let (keep, max) = (self.config.recent_keep, self.config.recent_bytes);
        let origin = Origin::Peer(peer);
        lock(&self.recent).insert(id, topic, payload, origin, Instant::now(), keep, max);
    }

    /// Records `peer`'s announce of `ids`: those not seen here become wants.
    fn announced(&self, peer: PeerId, ids: Vec<Digest>) {
        let unseen: Vec<Digest> = {
            let seen = lock(&self.seen);
            ids.into_iter().filter(|id| !seen.contains(id)).collect()
        };
        if unseen.is_empty() {
            return;
        }
        let now = Instant::now();
        let (mut refused, mut ignored) = (0u64, 0u64);
        let mut wants = lock(&self.wants);
        for id in unseen {
            match wants.announced(id, peer, now) {
                Announced::Recorded => {}
                Announced::Ignored => ignored += 1,
                Announced::Refused => refused += 1,
            }
        }
        drop(wants);
        if refused > 0 {
            tracing::debug!(%peer, refused, "p2p: announces refused: too many wants of that peer");
            self.counters
                .wants_dropped
                .fetch_add(refused, Ordering::Relaxed);
        }
        if ignored > 0 {
            self.counters
                .announcers_ignored
                .fetch_add(ignored, Ordering::Relaxed);
        }
    }

    /// Answers `peer`'s want of `ids` on link `serial`: each kept message is queued to it as
    /// a normal gossip frame; unknown ids are ignored.
    fn serve(&self, peer: PeerId, serial: u64, ids: &[Digest]) {
        let now = Instant::now();
        let (keep, max) = (self.config.recent_keep, self.config.recent_bytes);
        let found: Vec<(Digest, Topic, Arc<[u8]>)> = {
            let mut recent = lock(&self.recent);
            ids.iter()
                .filter_map(|id| {
                    let (topic, payload) = recent.serve(id, peer, now, keep, max)?;
                    Some((*id, topic, payload))
                })
                .collect()
        };
        if found.is_empty() {
            return;
        }
        let Some(tx) = lock(&self.links)
            .get(&peer)
            .filter(|l| l.serial == serial)
            .map(|l| l.tx.clone())
        else {
            return;
        };
        for (id, topic, payload) in found {
            match tx.try_send((topic, payload)) {
                Ok(()) => bump(&self.counters.served),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Not sent: the peer's next want (it asks again) may still be answered.
                    self.count_drop(peer, topic);
                    lock(&self.recent).unserve(&id, peer);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    }

    /// Asks for the wants that are due: after `fetch_grace` one linked announcer, then
    /// another after each `fetch_timeout` without the message (in rounds, so every announcer
    /// is asked again while the want lasts; see [`Want::choose`]). A want whose announcers
    /// are all unlinked waits for one to come back. Gives up only on wants older than
    /// `recent_keep`, and forgets those that arrived meanwhile.
    fn ask_for_wants(&self) {
        let now = Instant::now();
        let (grace, timeout) = (self.config.fetch_grace, self.config.fetch_timeout);
        let max_age = self.config.recent_keep;
        if lock(&self.wants).map.is_empty() {
            // The usual case: nothing to look at, no link to list.
            return;
        }
        let live: HashMap<PeerId, (u64, Arc<ControlOut>)> = {
            let links = lock(&self.links);
            links
                .iter()
                .map(|(id, l)| (*id, (l.answered, l.control.clone())))
                .collect()
        };
        let mut asks: HashMap<PeerId, Vec<Digest>> = HashMap::new();
        let mut expired = 0u64;
        {
            let mut wants = lock(&self.wants);
            if wants.map.is_empty() {
                return;
            }
            let mut done: Vec<(Digest, bool)> = Vec::new();
            for (id, w) in wants.map.iter_mut() {
                if now.duration_since(w.first) > max_age {
                    done.push((*id, true));
                    continue;
                }
                let due = match w.asked {
                    None => now.duration_since(w.first) >= grace,
                    Some((at, _)) => now.duration_since(at) >= timeout,
                };
                if !due {
                    continue;
                }
                // Arrived between the announce's seen check and the want's insertion.
                if lock(&self.seen).contains(id) {
                    done.push((*id, false));
                    continue;
                }
                let burst = w.choose_burst(|p| live.get(p).map(|(answered, _)| *answered));
                if let Some(first) = burst.first() {
                    w.asked = Some((now, *first));
                }
                for a in burst {
                    asks.entry(a).or_default().push(*id);
                }
            }
            for (id, given_up) in done {
                wants.remove(&id);
                expired += u64::from(given_up);
            }
        }
        if expired > 0 {
            self.counters
                .wants_expired
                .fetch_add(expired, Ordering::Relaxed);
        }
        for (peer, ids) in asks {
            if let Some((_, control)) = live.get(&peer) {
                self.push_control(peer, control, &ids, true);
            }
        }
    }

    /// Registers a link that passed authentication and admission, applying the one-link
    /// rule. Returns its serial, queue, cancel signal and last-heard time, or `None` when the
    /// existing link to the same peer is kept.
    fn register(&self, info: LinkInfo, initiator: PeerId) -> Option<Registered> {
        let peer = info.id();
        let mut links = lock(&self.links);
        if let Some(existing) = links.get(&peer) {
            if !keep_new(existing.initiator, initiator, self.config.local_id, peer) {
                tracing::debug!(%peer, "p2p: second link to a peer closed, the first kept");
                bump(&self.counters.duplicate_links);
                return None;
            }
            if let Some(old) = links.remove(&peer) {
                tracing::debug!(%peer, "p2p: older link to a peer replaced");
                old.cancel.send_replace(true);
                bump(&self.counters.duplicate_links);
            }
        }
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.outbound_queue);
        let (cancel, cancelled) = watch::channel(false);
        let heard = Arc::new(AtomicU64::new(self.millis()));
        let control = Arc::new(ControlOut::default());
        tracing::info!(peer = %info.peer, direction = ?info.direction, remote = %info.remote, "p2p link up");
        links.insert(
            peer,
            Link {
                serial,
                info,
                initiator,
                tx,
                cancel,
                since: Instant::now(),
                heard: heard.clone(),
                control: control.clone(),
                answered: 0,
            },
        );
        drop(links);
        self.changed.send_modify(|v| *v += 1);
        self.refresh_link_state();
        Some(Registered {
            serial,
            rx,
            cancelled,
            heard,
            control,
        })
    }

    /// Milliseconds since the network started.
    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Recomputes the link-state advertisement: the links up for `relay_settle` and heard
    /// from within `link_liveness`. The links' writers send it if it changed.
    fn refresh_link_state(&self) {
        let now = Instant::now();
        let now_ms = self.millis();
        let (settle, liveness) = (self.config.relay_settle, self.config.link_liveness);
        let liveness_ms = u64::try_from(liveness.as_millis()).unwrap_or(u64::MAX);
        let live: Vec<PeerId> = lock(&self.links)
            .iter()
            .filter(|(_, l)| {
                now.duration_since(l.since) >= settle
                    && now_ms.saturating_sub(l.heard.load(Ordering::Relaxed)) <= liveness_ms
            })
            .map(|(id, _)| *id)
            .collect();
        let payload = frame::encode_link_state(&live);
        self.link_state.send_if_modified(|current| {
            if **current == *payload {
                return false;
            }
            *current = payload.into();
            true
        });
    }

    /// Records peer `peer`'s advertisement on link `serial` (if that link is still the one).
    /// Nothing is re-sent on a withdrawal: what a peer lacks it fetches after an announce.
    fn set_peer_links(&self, peer: PeerId, serial: u64, peer_links: Vec<PeerId>) {
        let mut links = lock(&self.links);
        if let Some(l) = links.get_mut(&peer).filter(|l| l.serial == serial) {
            l.info.peer_links = peer_links;
        }
    }

    /// Removes link `serial` to `peer` if it is still the registered one, and signals its
    /// task to close it. Returns whether it was.
    fn remove_link(&self, peer: PeerId, serial: u64) -> bool {
        let mut links = lock(&self.links);
        let removed = match links.get(&peer) {
            Some(l) if l.serial == serial => links.remove(&peer),
            _ => None,
        };
        drop(links);
        match removed {
            Some(l) => {
                l.cancel.send_replace(true);
                self.changed.send_modify(|v| *v += 1);
                // Withdrawn at once: peers relay its peer's messages here from now on.
                self.refresh_link_state();
                true
            }
            None => false,
        }
    }

    fn has_link_to(&self, peer: &PeerAddr) -> bool {
        lock(&self.links).values().any(|l| matches(&l.info, peer))
    }

    /// A delay drawn uniformly from `[d/2, d]`.
    fn jitter(&self, d: Duration) -> Duration {
        jitter(&mut lock(&self.rng), d)
    }
}

/// A delay drawn uniformly from `[d/2, d]` with the splitmix64 generator at `state`.
fn jitter(state: &mut u64, d: Duration) -> Duration {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let half = d / 2;
    let span = u64::try_from((d - half).as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(if span == u64::MAX { z } else { z % (span + 1) })
}

/// Whether a new connection to `peer` opened by `new` replaces the live one opened by
/// `existing`. Both ends decide alike: between connections opened by different sides, the one
/// opened by the lower id stays; a newer connection opened by the same side replaces the older
/// (the peer restarted while the old one lingered).
fn keep_new(existing: PeerId, new: PeerId, local: PeerId, peer: PeerId) -> bool {
    existing == new || new == local.min(peer)
}

fn matches(info: &LinkInfo, peer: &PeerAddr) -> bool {
    info.name.as_deref() == Some(peer.name.as_str())
        && peer
            .organisation
            .as_ref()
            .is_none_or(|o| *o == info.peer.organisation)
}

/// The identity and common name of a finished handshake's peer.
fn identity_of(conn: &gmtls::rustls::CommonState) -> Option<(PeerIdentity, Option<String>)> {
    let identity = gmtls::peer_identity(conn)?;
    let name = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|der| pki::Certificate::from_der(der.as_ref()).ok())
        .and_then(|c| c.common_name());
    Some((identity, name))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone: the network is being dropped.
    let _ = rx.wait_for(|s| *s).await;
}

/// Keeps the link-state advertisement current as links settle or fall silent (additions and
/// removals refresh it at once).
async fn advertise(shared: Arc<Shared>) {
    let tick = (shared.config.link_liveness / 4)
        .min(shared.config.relay_settle.max(Duration::from_millis(40)) / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(250));
    let stop = stopped(shared.shutdown.subscribe());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(tick) => shared.refresh_link_state(),
        }
    }
}

/// Sends the wants that are due (see [`Shared::ask_for_wants`]), a few times per grace.
async fn fetch(shared: Arc<Shared>) {
    let tick =
        (shared.config.fetch_grace / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
    let stop = stopped(shared.shutdown.subscribe());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(tick) => shared.ask_for_wants(),
        }
    }
}

async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let stop = shared.shutdown.subscribe();
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!("p2p accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "p2p: too many handshakes in progress, connection closed");
            bump(&shared.counters.refused);
            shared.refused(remote, "too many handshakes in progress");
            continue;
        };
        let s = shared.clone();
        shared.spawn(async move {
            // Shutdown interrupts a handshake; a registered link closes itself (drive).
            let stop = stopped(s.shutdown.subscribe());
            let accepted = tokio::select! {
                _ = stop => None,
                a = accept(&s, tcp, remote, permit) => a,
            };
            if let Some(Accepted { tls, peer, link }) = accepted {
                drive(s, tls, peer, link).await;
            }
        });
    }
}

/// An incoming link, authenticated, admitted and registered.
struct Accepted {
    tls: gmtls::tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerId,
    link: Registered,
}

/// Takes an incoming connection through the handshake, admission, the hellos and
/// registration; `None` if it did not get that far. The handshake permit is released on return.
async fn accept(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    remote: SocketAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
) -> Option<Accepted> {
    let _ = tcp.set_nodelay(true);
    let timeout = shared.config.handshake_timeout;
    let acceptor = TlsAcceptor::from(shared.server.clone());
    let mut tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // gmtls's verifier logged which certificate and why.
            tracing::warn!(%remote, "p2p: incoming handshake refused: {e}");
            bump(&shared.counters.refused);
            shared.refused(remote, "TLS handshake refused");
            return None;
        }
        Err(_) => {
            tracing::warn!(%remote, "p2p: incoming handshake timed out");
            bump(&shared.counters.refused);
            shared.refused(remote, "TLS handshake timed out");
            return None;
        }
    };
    let Some((identity, name)) = identity_of(tls.get_ref().1) else {
        tracing::warn!(%remote, "p2p: incoming peer without a readable identity");
        bump(&shared.counters.refused);
        shared.refused(remote, "no readable identity");
        return None;
    };
    let peer = PeerId(identity.cert_id);
    if peer == shared.config.local_id {
        tracing::warn!(%remote, "p2p: connection from this node's own certificate closed");
        bump(&shared.counters.refused);
        shared.refused(remote, "this node's own certificate");
        return None;
    }
    if !shared.admits(&identity) {
        tracing::warn!(%remote, peer = %identity, "p2p: incoming peer not admitted");
        bump(&shared.counters.refused);
        shared.refused(remote, "not admitted");
        return None;
    }
    // Our hello says we accepted the peer; its hello says it accepted us. Only then is the
    // link registered, so neither side counts a link the other refused.
    let limits = &shared.config.limits;
    let hellos = async {
        frame::write_frame(&mut tls, Topic::CONTROL, &[]).await?;
        tls.flush().await?;
        frame::read_hello(&mut tls, limits)
            .await
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
    };
    match tokio::time::timeout(timeout, hellos).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::info!(%remote, peer = %identity, "p2p: peer closed before its hello (it refused us, or kept its own link to us): {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!(%remote, peer = %identity, "p2p: no hello from the peer in time");
            bump(&shared.counters.refused);
            shared.refused(remote, "no hello in time");
            return None;
        }
    }
    // Kept for the observer only when there is one.
    let observed = shared.config.on_link.as_ref().map(|_| identity.clone());
    let info = LinkInfo {
        peer: identity,
        name,
        peer_links: Vec::new(),
        direction: Direction::Inbound,
        remote,
    };
    let link = shared.register(info, peer)?;
    if let (Some(observer), Some(peer)) = (&shared.config.on_link, &observed) {
        (observer.0)(crate::LinkEvent::Accepted { remote, peer });
    }
    Some(Accepted { tls, peer, link })
}

/// Why a dial did not produce a link.
enum DialFailure {
    /// Nobody answered (no refusal of anyone's certificate).
    Unreachable(String),
    /// The peer refused us or we refused it.
    Refused(String),
}

async fn dial_loop(shared: Arc<Shared>, peer: PeerAddr, stop_dialling: watch::Receiver<bool>) {
    let backoff = shared.config.backoff;
    let mut delay: Option<Duration> = None;
    let mut linked_before = false;
    let stop = async {
        tokio::select! {
            _ = stopped(shared.shutdown.subscribe()) => {}
            _ = stopped(stop_dialling) => {}
        }
    };
    tokio::pin!(stop);
    loop {
        // While a link to the peer lives (either direction), there is nothing to dial.
        let mut changed = shared.changed.subscribe();
        if shared.has_link_to(&peer) {
            linked_before = true;
            delay = Some(backoff.min);
            tokio::select! {
                _ = &mut stop => return,
                r = changed.changed() => if r.is_err() { return },
            }
            continue;
        }
        if let Some(d) = delay {
            let wait = shared.jitter(d);
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if shared.has_link_to(&peer) {
                continue;
            }
        }
        bump(&shared.counters.dials);
        let attempt = dial(&shared, &peer);
        let result = tokio::select! {
            _ = &mut stop => return,
            r = attempt => r,
        };
        match result {
            Ok(()) => {
                if linked_before {
                    bump(&shared.counters.reconnects);
                }
                linked_before = true;
                delay = Some(backoff.min);
            }
            Err(f) => {
                match f {
                    DialFailure::Unreachable(why) => {
                        tracing::debug!(peer = %peer.name, addr = %peer.addr, "p2p dial failed: {why}");
                    }
                    DialFailure::Refused(why) => {
                        tracing::warn!(peer = %peer.name, addr = %peer.addr, "p2p dial refused: {why}");
                        bump(&shared.counters.refused);
                    }
                }
                delay = Some(match delay {
                    None => backoff.min,
                    Some(d) => (d * 2).min(backoff.max),
                });
            }
        }
    }
}

/// Dials `peer` once; on success the link runs in its own task.
async fn dial(shared: &Arc<Shared>, peer: &PeerAddr) -> Result<(), DialFailure> {
    use gmtls::net::ConnectError;
    let timeout = shared.config.handshake_timeout;
    let mut tls = gmtls::net::connect_named(
        peer.addr,
        Some(&peer.name),
        shared.client.clone(),
        timeout,
        None,
    )
    .await
    .map_err(|e| match e {
        ConnectError::Unreachable { .. } => DialFailure::Unreachable(e.to_string()),
        _ => DialFailure::Refused(e.to_string()),
    })?;
    // In TLS 1.3 the acceptor judges our certificate after we finished: its hello says it
    // accepted us (certificate and admission).
    match tokio::time::timeout(timeout, frame::read_hello(&mut tls, &shared.config.limits)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(DialFailure::Refused(format!(
                "the peer closed the link before its hello (it refused us): {e:?}"
            )));
        }
        Err(_) => {
            return Err(DialFailure::Refused(
                "no hello from the peer in time".into(),
            ));
        }
    }
    let (identity, name) = identity_of(tls.get_ref().get_ref().1)
        .ok_or_else(|| DialFailure::Refused("the peer's identity is unreadable".into()))?;
    // The CN was checked by gmtls's verifier (connect_named); the organisation is ours to check.
    if let Some(org) = &peer.organisation
        && *org != identity.organisation
    {
        return Err(DialFailure::Refused(format!(
            "{} is a member of {:?}, not of {org:?} as configured",
            identity.subject, identity.organisation
        )));
    }
    if name.as_deref() != Some(peer.name.as_str()) {
        return Err(DialFailure::Refused(format!(
            "{} is not the node named {:?}",
            identity.subject, peer.name
        )));
    }
    if !shared.admits(&identity) {
        return Err(DialFailure::Refused(format!("{identity} is not admitted")));
    }
    let id = PeerId(identity.cert_id);
    if id == shared.config.local_id {
        return Err(DialFailure::Refused(
            "the peer presents this node's own certificate".into(),
        ));
    }
    let remote = tls.get_ref().get_ref().0.peer_addr().unwrap_or(peer.addr);
    let info = LinkInfo {
        peer: identity,
        name,
        peer_links: Vec::new(),
        direction: Direction::Outbound,
        remote,
    };
    // Kept or not, the peer is linked: `None` means its own connection to us is the one kept
    // (this one closes without our hello).
    if let Some(link) = shared.register(info, shared.config.local_id) {
        let hello = async {
            frame::write_frame(&mut tls, Topic::CONTROL, &[]).await?;
            tls.flush().await
        };
        if !matches!(tokio::time::timeout(timeout, hello).await, Ok(Ok(()))) {
            shared.remove_link(id, link.serial);
            return Err(DialFailure::Unreachable(
                "the link broke before our hello".into(),
            ));
        }
        let s = shared.clone();
        shared.spawn(drive(s, tls, id, link));
    }
    Ok(())
}

/// Why a link's reader stopped.
enum LinkEnd {
    Closed(std::io::Error),
    Idle(Duration),
    Oversized { topic: Topic, len: u32, max: u32 },
    Malformed(String),
}

/// Runs a registered link until it ends, then unregisters it.
async fn drive<S>(shared: Arc<Shared>, stream: S, peer: PeerId, link: Registered)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Registered {
        serial,
        mut rx,
        cancelled,
        heard,
        control,
    } = link;
    let mut link_state = shared.link_state.subscribe();
    // The current state goes first on every new link.
    link_state.mark_changed();
    let (mut r, w) = tokio::io::split(stream);
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    let limits = shared.config.limits.clone();
    let (keepalive, idle) = (shared.config.keepalive, shared.config.idle_timeout);
    let reader = async {
        // Stamped on every read, not once per frame: a peer sending a 64 MiB proposal slowly
        // is alive while it does.
        let mut stamp = || heard.store(shared.millis(), Ordering::Relaxed);
        loop {
            let read = frame::read_frame(&mut r, &limits, Some(idle), &mut stamp).await;
            let (topic, payload) = match read {
                Ok(f) => f,
                Err(ReadError::Closed(e)) => return LinkEnd::Closed(e),
                Err(ReadError::Idle(d)) => return LinkEnd::Idle(d),
                Err(ReadError::Oversized { topic, len, max }) => {
                    return LinkEnd::Oversized { topic, len, max };
                }
                Err(ReadError::Malformed { topic, len }) => {
                    return LinkEnd::Malformed(format!("{topic} frame of {len} bytes"));
                }
            };
            if topic == Topic::CONTROL {
                bump(&shared.counters.control_in);
                match frame::decode_control(&payload) {
                    // A keep-alive: it only proved the peer alive.
                    Ok(Control::KeepAlive) => {}
                    Ok(Control::LinkState(peer_links)) => {
                        bump(&shared.counters.link_states_in);
                        shared.set_peer_links(peer, serial, peer_links);
                    }
                    Ok(Control::Announce(ids)) => {
                        shared
                            .counters
                            .announces_in
                            .fetch_add(ids.len() as u64, Ordering::Relaxed);
                        shared.announced(peer, ids);
                    }
                    Ok(Control::Want(ids)) => {
                        shared
                            .counters
                            .wants_in
                            .fetch_add(ids.len() as u64, Ordering::Relaxed);
                        shared.serve(peer, serial, &ids);
                    }
                    Err(why) => {
                        return LinkEnd::Malformed(format!(
                            "control frame of {} bytes: {why}",
                            payload.len()
                        ));
                    }
                }
                continue;
            }
            bump(&shared.counters.frames_in);
            shared.counters.bytes_in.fetch_add(
                (frame::HEADER_LEN + payload.len()) as u64,
                Ordering::Relaxed,
            );
            let payload: Arc<[u8]> = payload.into();
            let mut id = None;
            if shared.config.relay_topics.contains(&topic) {
                // SM3 of a block-sized payload takes a while: off the runtime's other tasks.
                let digest = if payload.len() > BLOCKING_HASH {
                    gmtls::blocking(|| message_id(topic, &payload))
                } else {
                    message_id(topic, &payload)
                };
                let fresh = lock(&shared.seen).insert(digest);
                if !fresh {
                    bump(&shared.counters.duplicates);
                    shared.arrived_again(digest, topic, &payload, peer);
                    continue;
                }
                shared.delivered(digest, topic, &payload, Origin::Peer(peer), Some(peer));
                let n = shared.queue_to_all(topic, &payload, Some((peer, digest)));
                id = Some(digest);
                shared
                    .counters
                    .relayed
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            // The node's queue full: this link waits (and, the queue being shared, so does every
            // other link's reader: the node's pace bounds all of them).
            let _ = shared
                .inbound
                .send(Inbound {
                    peer,
                    topic,
                    payload,
                    id,
                })
                .await;
        }
    };
    let writer = async {
        // A new link-state waiting for the frames queued before it (count, state): peers
        // judge each frame by the state written before it, so a frame queued before a link
        // came up must not follow a state that lists that link's peer.
        let mut pending: Option<(usize, Arc<[u8]>)> = None;
        // Control batches and queued frames take turns while both wait: a steady stream of
        // announces cannot starve the queue, nor a long queue the wants.
        let mut control_turn = true;
        loop {
            if let Some((0, state)) = &pending {
                frame::write_frame(&mut w, Topic::CONTROL, state).await?;
                bump(&shared.counters.control_out);
                pending = None;
                if rx.is_empty() {
                    w.flush().await?;
                }
                continue;
            }
            tokio::select! {
                biased;
                changed = link_state.changed(), if pending.is_none() => {
                    if changed.is_err() {
                        // The network is being dropped.
                        return Ok::<(), std::io::Error>(());
                    }
                    let state = link_state.borrow_and_update().clone();
                    pending = Some((rx.len(), state));
                }
                // Announces and wants need not wait behind the whole queue (a want must not
                // wait behind the proposals it is about), and they carry no order the relay
                // rule reads.
                () = control.notify.notified(), if control_turn || rx.is_empty() => {
                    control_turn = false;
                    let PendingControl { announces, wants } =
                        std::mem::take(&mut *lock(&control.pending));
                    let frames = frame::encode_announces(&announces)
                        .into_iter()
                        .chain(frame::encode_wants(&wants));
                    for f in frames {
                        frame::write_frame(&mut w, Topic::CONTROL, &f).await?;
                        bump(&shared.counters.control_out);
                    }
                    shared
                        .counters
                        .announces_out
                        .fetch_add(announces.len() as u64, Ordering::Relaxed);
                    shared
                        .counters
                        .wants_out
                        .fetch_add(wants.len() as u64, Ordering::Relaxed);
                    if rx.is_empty() {
                        w.flush().await?;
                    }
                }
                next = rx.recv() => {
                    control_turn = true;
                    let Some((topic, payload)) = next else {
                        return Ok(());
                    };
                    if let Some((before, _)) = &mut pending {
                        *before = before.saturating_sub(1);
                    }
                    frame::write_frame(&mut w, topic, &payload).await?;
                    bump(&shared.counters.frames_out);
                    shared.counters.bytes_out.fetch_add(
                        (frame::HEADER_LEN + payload.len()) as u64,
                        Ordering::Relaxed,
                    );
                    if rx.is_empty() {
                        w.flush().await?;
                    }
                }
                // Nothing to send for a while: a keep-alive, so the peer's idle limit (and
                // liveness) holds only for a peer that is gone.
                _ = tokio::time::sleep(keepalive) => {
                    frame::write_frame(&mut w, Topic::CONTROL, &[]).await?;
                    bump(&shared.counters.control_out);
                    w.flush().await?;
                }
            }
        }
    };
    let end = tokio::select! {
        end = reader => Some(end),
        r = writer => {
            if let Err(e) = r {
                tracing::info!(%peer, "p2p link write failed: {e}");
            }
            None
        }
        _ = stopped(cancelled) => None,
        _ = stopped(shared.shutdown.subscribe()) => None,
    };
    match end {
        Some(LinkEnd::Closed(e)) => tracing::info!(%peer, "p2p link closed: {e}"),
        Some(LinkEnd::Idle(d)) => {
            tracing::warn!(%peer, "p2p link closed: nothing received for {d:?}");
            bump(&shared.counters.idle);
        }
        Some(LinkEnd::Oversized { topic, len, max }) => {
            tracing::warn!(%peer, %topic, len, max, "p2p link closed: frame over its limit");
            bump(&shared.counters.oversized);
        }
        Some(LinkEnd::Malformed(what)) => {
            tracing::warn!(%peer, "p2p link closed: malformed frame: {what}");
            bump(&shared.counters.malformed);
        }
        None => {}
    }
    shared.remove_link(peer, serial);
    // close_notify where the peer still reads; a peer that stopped reading does not hold us.
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_keep_the_connection_the_lower_id_opened() {
        let low = PeerId(crypto::Digest([1; 32]));
        let high = PeerId(crypto::Digest([2; 32]));
        // At the low node (local = low, peer = high) and at the high node, for the two
        // connections in either arrival order: the one opened by `low` survives.
        for (local, peer) in [(low, high), (high, low)] {
            // low's connection arrives second: it replaces high's.
            assert!(keep_new(high, low, local, peer));
            // high's connection arrives second: refused, low's stays.
            assert!(!keep_new(low, high, local, peer));
            // The same side again (a restart): the newer replaces the older.
            assert!(keep_new(high, high, local, peer));
            assert!(keep_new(low, low, local, peer));
        }
    }

    fn digest(n: u8) -> Digest {
        Digest([n; 32])
    }

    fn peer(n: u8) -> Origin {
        Origin::Peer(PeerId(digest(n)))
    }

    #[test]
    fn the_recent_store_is_bounded_by_age_and_bytes_and_serves_each_peer_twice() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let max = 3 * (100 + RECENT_ENTRY_BYTES);
        let mut r = Recent::default();
        let o = Origin::Peer(PeerId(digest(0xf)));
        let payload: Arc<[u8]> = vec![1u8; 100].into();
        for i in 0..3 {
            r.insert(digest(i), Topic::VOTE, &payload, o, t0, keep, max);
        }
        assert_eq!((r.map.len(), r.bytes), (3, max));
        // A fourth pushes the oldest out: the bytes, not the count, bound it.
        r.insert(digest(3), Topic::VOTE, &payload, o, t0, keep, max);
        assert_eq!(r.map.len(), 3);
        assert!(!r.map.contains_key(&digest(0)));
        // The same id again changes nothing.
        r.insert(digest(3), Topic::VOTE, &payload, o, t0, keep, max);
        assert_eq!((r.map.len(), r.bytes), (3, max));
        // Served twice per peer, then no more; another peer gets its own two.
        let (p, q) = (PeerId(digest(0xa)), PeerId(digest(0xb)));
        assert!(r.serve(&digest(1), p, t0, keep, usize::MAX).is_some());
        assert!(r.serve(&digest(1), p, t0, keep, usize::MAX).is_some());
        assert!(r.serve(&digest(1), p, t0, keep, usize::MAX).is_none());
        // A serve that could not be queued is taken back.
        r.unserve(&digest(1), p);
        assert!(r.serve(&digest(1), p, t0, keep, usize::MAX).is_some());
        assert!(r.serve(&digest(1), p, t0, keep, usize::MAX).is_none());
        assert_eq!(
            r.serve(&digest(1), q, t0, keep, usize::MAX).map(|x| x.0),
            Some(Topic::VOTE)
        );
        assert!(
            r.serve(&digest(0), p, t0, keep, usize::MAX).is_none(),
            "forgotten"
        );
        // The served counts are counted too.
        assert_eq!(r.bytes, max + 2 * SERVED_ENTRY_BYTES);
        // Too old to serve, and dropped at the next insertion.
        let late = t0 + keep + Duration::from_millis(1);
        assert!(r.serve(&digest(2), q, late, keep, usize::MAX).is_none());
        r.insert(digest(9), Topic::VOTE, &payload, o, late, keep, max);
        assert_eq!(r.map.len(), 1);
        assert_eq!(r.bytes, 100 + RECENT_ENTRY_BYTES);
        assert_eq!(r.origins.len(), 1);
        assert_eq!(r.origins[&o].bytes, 100 + RECENT_ENTRY_BYTES);
    }

    #[test]
    fn a_flood_from_one_origin_pushes_out_only_its_own_messages() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let each = 100 + RECENT_ENTRY_BYTES;
        let max = 10 * each;
        let mut r = Recent::default();
        let (c, d, f) = (peer(0xc), peer(0xd), peer(0xf));
        let payload = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        // c and d each deliver two; f delivers one that d delivers too (a duplicate).
        for (i, o) in [(0, c), (1, c), (2, d), (3, d), (4, f)] {
            r.insert(digest(i), Topic::VOTE, &payload(i), o, t0, keep, max);
        }
        r.also_from(&digest(4), d);
        assert_eq!((r.origins[&d].bytes, r.origins[&f].bytes), (3 * each, each));
        // f floods 20 fresh ones: only its own go, and f's first (d holds it too) stays.
        for i in 10..30u8 {
            r.insert(digest(i), Topic::TRANSACTION, &payload(i), f, t0, keep, max);
            assert!(r.bytes <= max);
        }
        for i in 0..5 {
            assert!(r.map.contains_key(&digest(i)), "message {i} pushed out");
        }
        assert!(r.map.contains_key(&digest(29)), "the newest is kept");
        assert!(!r.map.contains_key(&digest(10)), "f's oldest went");
        assert_eq!(r.bytes, max);
        // f's share: its five newest (message 4 is charged to d alone now).
        assert_eq!(r.origins[&f].bytes, 5 * each);
        assert_eq!(r.map[&digest(4)].holders, vec![d]);
        // Past its share, d's flood would push out d's oldest, not c's.
        for i in 40..50u8 {
            r.insert(digest(i), Topic::TRANSACTION, &payload(i), d, t0, keep, max);
        }
        assert!(r.map.contains_key(&digest(0)) && r.map.contains_key(&digest(1)));
        assert!(!r.map.contains_key(&digest(2)), "d's oldest went");
        assert!(r.bytes <= max);
    }

    #[test]
    fn a_vouched_message_outlives_floods_of_unverified_ones_from_any_number_of_peers() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let each = 100 + RECENT_ENTRY_BYTES;
        let max = 6 * each;
        let mut r = Recent::default();
        let (m1, m2, m3) = (peer(0x1), peer(0x2), peer(0x3));
        let payload = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        // m1 relays a's vote, which the node verifies; m2 relays one of its own, unverified.
        r.insert(digest(0), Topic::VOTE, &payload(0), m1, t0, keep, max);
        r.insert(digest(1), Topic::VOTE, &payload(1), m2, t0, keep, max);
        // This node's own proposal, broadcast vouched for.
        r.insert(
            digest(2),
            Topic::PROPOSAL,
            &payload(2),
            Origin::Author(digest(0xee)),
            t0,
            keep,
            max,
        );
        let a = digest(0xaa);
        assert!(r.vouch(&digest(0), a));
        assert!(!r.vouch(&digest(7), a), "not kept: nothing to vouch for");
        // m1's charge went: the vote is a's alone, and arriving again from m3 charges m3 nothing.
        assert!(!r.origins.contains_key(&m1));
        assert_eq!(r.map[&digest(0)].holders, vec![Origin::Author(a)]);
        r.insert(digest(0), Topic::VOTE, &payload(0), m3, t0, keep, max);
        assert_eq!(r.map[&digest(0)].holders, vec![Origin::Author(a)]);
        assert!(!r.origins.contains_key(&m3));
        // Three peers flood in turn, far past the bound: every unverified message goes
        // before either vouched one, the flooders' own first, m2's message last.
        for i in 10..70u8 {
            let flooder = [m1, m2, m3][usize::from(i % 3)];
            r.insert(
                digest(i),
                Topic::TRANSACTION,
                &payload(i),
                flooder,
                t0,
                keep,
                max,
            );
            assert!(r.bytes <= max);
            assert!(r.map.contains_key(&digest(0)) && r.map.contains_key(&digest(2)));
        }
        assert!(!r.map.contains_key(&digest(1)));
        // Past half the store, vouched messages compete among themselves: the signer charged
        // the most gives up its oldest, and unverified ones keep the other half.
        for i in 100..106u8 {
            r.insert(digest(i), Topic::VOTE, &payload(i), m1, t0, keep, max);
            assert!(r.vouch(&digest(i), a));
            assert!(r.bytes <= max);
        }
        assert!(!r.map.contains_key(&digest(0)), "a's oldest went");
        assert!(r.map.contains_key(&digest(2)), "this node's proposal stays");
        let unverified: usize = r
            .origins
            .iter()
            .filter(|(o, _)| !o.vouched())
            .map(|(_, s)| s.bytes)
            .sum();
        assert_eq!(
            unverified,
            3 * each,
            "unverified messages keep half the store"
        );
    }

    /// Review finding: vouched messages rank strictly above unverified ones, so one signer's
    /// flood of validly signed messages (a Byzantine validator's votes of any round or
    /// height, all vouched for by `on_message`) pushes out every other peer's unverified
    /// transaction while holding many times their share; the node never vouches for
    /// transactions, and they are never re-gossiped. Before the fix its flood pushed others
    /// only down to its share (docs/ARCHITECTURE.md still says so).
    #[test]
    fn a_signers_vouched_flood_pushes_out_others_transactions_only_down_to_its_share() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let each = 100 + RECENT_ENTRY_BYTES;
        let max = 10 * each;
        let mut r = Recent::default();
        let (h, v_link) = (peer(0x1), peer(0x2));
        let v = digest(0xbb);
        let payload = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        for i in 0..3 {
            r.insert(digest(i), Topic::TRANSACTION, &payload(i), h, t0, keep, max);
        }
        for i in 10..40u8 {
            r.insert(digest(i), Topic::VOTE, &payload(i), v_link, t0, keep, max);
            assert!(r.vouch(&digest(i), v));
            assert!(r.bytes <= max);
        }
        let v_share = r.origins.get(&Origin::Author(v)).map_or(0, |s| s.bytes);
        assert!(v_share >= 7 * each, "v holds {v_share} bytes");
        let lost: Vec<u8> = (0..3)
            .filter(|i| !r.map.contains_key(&digest(*i)))
            .collect();
        assert!(
            lost.is_empty(),
            "h's transactions {lost:?} pushed out while v holds {v_share} bytes"
        );
    }

    /// Review finding: a message is charged to its relays until the consensus thread gets to
    /// it (the links' inbound queue, the forwarder, a 1024-event channel, a signature check
    /// each: a peer lengthens the wait with certificates that cost a quorum of verifications).
    /// Its only relay floods in that window: its own oldest, the vote, goes, and the vouch
    /// finds nothing; the copy that later arrives again stays unverified (it is a duplicate,
    /// never delivered, never vouched).
    #[test]
    fn a_vote_outlives_its_only_relays_flood_until_the_node_vouches_for_it() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let each = 100 + RECENT_ENTRY_BYTES;
        let max = 4 * each;
        let mut r = Recent::default();
        let (c, m) = (peer(0xc), peer(0xd));
        let payload = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        r.insert(digest(1), Topic::TRANSACTION, &payload(1), c, t0, keep, max);
        // m relays a's vote (its only copy here), then three junk transactions.
        r.insert(digest(0), Topic::VOTE, &payload(0), m, t0, keep, max);
        for i in 10..13u8 {
            r.insert(digest(i), Topic::TRANSACTION, &payload(i), m, t0, keep, max);
        }
        // The consensus thread verifies the vote now: it was pushed out meanwhile, and is
        // kept again as vouched for.
        assert!(
            !r.map.contains_key(&digest(0)),
            "premise: m's flood pushed it out"
        );
        r.keep_vouched(
            digest(0),
            Topic::VOTE,
            &payload(0),
            digest(0xaa),
            t0,
            keep,
            max,
        );
        assert_eq!(
            r.map[&digest(0)].holders,
            vec![Origin::Author(digest(0xaa))]
        );
        // m floods on: the vouched vote stays.
        for i in 20..30u8 {
            r.insert(digest(i), Topic::TRANSACTION, &payload(i), m, t0, keep, max);
        }
        assert!(r.map.contains_key(&digest(0)), "the vouched vote went");
    }

    /// Review finding: transactions a client submits through this node's API are broadcast,
    /// so they are kept as `Local`, vouched, beside this node's proposals and votes in one
    /// share: a client's flood of valid transactions pushes out every unverified message,
    /// then this node's own proposal (Local's oldest) while another validator's vouched vote
    /// stays.
    #[test]
    fn a_clients_transactions_do_not_push_out_this_nodes_proposal() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let each = 100 + RECENT_ENTRY_BYTES;
        let max = 6 * each;
        let mut r = Recent::default();
        let payload = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        let proposal = digest(0);
        // Broadcast vouched for, as the node's consensus messages are.
        r.insert(
            proposal,
            Topic::PROPOSAL,
            &payload(0),
            Origin::Author(digest(0xee)),
            t0,
            keep,
            max,
        );
        r.insert(
            digest(1),
            Topic::VOTE,
            &payload(1),
            peer(0x1),
            t0,
            keep,
            max,
        );
        assert!(r.vouch(&digest(1), digest(0xaa)));
        for i in 10..20u8 {
            let local = Origin::Local;
            r.insert(
                digest(i),
                Topic::TRANSACTION,
                &payload(i),
                local,
                t0,
                keep,
                max,
            );
            assert!(r.bytes <= max);
        }
        assert!(r.map.contains_key(&digest(1)), "a's vote stays");
        assert!(
            r.map.contains_key(&proposal),
            "this node's proposal went under its clients' transactions"
        );
    }

    /// Review 6 finding (medium): from half the store on, the vouched origin charged the
    /// most gives up its oldest, not the one whose flood crossed the line. A peer (no key)
    /// floods valid liveness certificates made of subsets of a round's votes (each vouched
    /// for under the one certificate signer): once vouched bytes reach half, the largest
    /// vouched share is the round's proposer's, and its proposal goes while the flood,
    /// smaller, stays. The module's doc says a signer's flood pushes out "its own first".
    #[test]
    fn a_vouched_flood_crossing_half_the_store_pushes_out_its_own_first() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let max = 10_000;
        let mut r = Recent::default();
        let small = |i: u8| -> Arc<[u8]> { vec![i; 100].into() };
        // The round's proposal, vouched for as proposer a's.
        let proposal: Arc<[u8]> = vec![0; 3_000].into();
        let a = digest(0xaa);
        r.insert(
            digest(0),
            Topic::PROPOSAL,
            &proposal,
            peer(1),
            t0,
            keep,
            max,
        );
        assert!(r.vouch(&digest(0), a));
        // Transactions from peers fill the rest.
        for i in 1..40u8 {
            r.insert(
                digest(i),
                Topic::TRANSACTION,
                &small(i),
                peer(2),
                t0,
                keep,
                max,
            );
        }
        // A relay's valid certificates, vouched for under one signer.
        let c = digest(0xff);
        let certificate = Topic::new(6).unwrap();
        for i in 100..112u8 {
            r.insert(digest(i), certificate, &small(i), peer(3), t0, keep, max);
            r.keep_vouched(digest(i), certificate, &small(i), c, t0, keep, max);
            assert!(r.bytes <= max);
        }
        let (a_share, c_share) = (
            r.origins.get(&Origin::Author(a)).map_or(0, |s| s.bytes),
            r.origins[&Origin::Author(c)].bytes,
        );
        assert!(
            c_share < proposal.len(),
            "premise: the flood is the smaller share"
        );
        assert!(
            r.map.contains_key(&digest(0)),
            "a's proposal ({a_share} bytes left to a) pushed out by a flood of {c_share} bytes"
        );
    }

    /// Checks the recent store's accounting: `bytes` is every kept message's cost, each
    /// origin's share is what its held messages charge it, a vouched message has one
    /// holder, every holder finds the message in its order, and no origin is empty.
    fn check_accounting(r: &Recent) {
        let cost: usize = r.map.values().map(Recent::cost).sum();
        assert_eq!(r.bytes, cost, "bytes counted");
        for (id, m) in &r.map {
            assert!(!m.holders.is_empty(), "{id:?} kept with no holder");
            if m.holders.iter().any(|h| h.vouched()) {
                assert_eq!(m.holders.len(), 1, "{id:?} vouched and shared");
            }
            for h in &m.holders {
                assert!(
                    r.origins[h].order.contains(id),
                    "{id:?} not in {h:?}'s order"
                );
            }
        }
        for (o, share) in &r.origins {
            let held: usize = r
                .map
                .values()
                .filter(|m| m.holders.contains(o))
                .map(RecentMessage::charge)
                .sum();
            assert_eq!(share.bytes, held, "{o:?}'s share");
            let n = r.map.values().filter(|m| m.holders.contains(o)).count();
            assert_eq!(share.count, n, "{o:?}'s messages");
            assert!(share.bytes > 0, "{o:?} kept with nothing charged");
        }
    }

    /// Review check of the share accounting under arrivals, arrivals again, vouches (before
    /// and after other peers' charges), serves and age: seeded, 20 000 steps.
    #[test]
    fn the_recent_stores_accounting_holds_under_random_arrivals_vouches_and_serves() {
        let t0 = Instant::now();
        let keep = Duration::from_millis(400);
        let max = 4_000;
        let mut r = Recent::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let payload: Vec<Arc<[u8]>> = (0..4usize)
            .map(|k| vec![0u8; 100 * (k + 1)].into())
            .collect();
        for step in 0..20_000u64 {
            let now = t0 + Duration::from_millis(step / 10);
            let id = digest(next(60) as u8);
            let size = usize::from(id.0[0] % 4);
            match next(10) {
                0..=5 => {
                    let origin = match next(8) {
                        0 => Origin::Local,
                        k => peer(k as u8),
                    };
                    r.insert(id, Topic::VOTE, &payload[size], origin, now, keep, max);
                    assert!(r.bytes <= max, "step {step}: {} over {max}", r.bytes);
                }
                6 | 7 => {
                    r.vouch(&id, digest(0xa0 + next(3) as u8));
                }
                _ => {
                    if r.serve(&id, PeerId(digest(next(8) as u8)), now, keep, usize::MAX)
                        .is_some()
                        && next(2) == 0
                    {
                        r.unserve(&id, PeerId(digest(1)));
                    }
                }
            }
            check_accounting(&r);
        }
        let stale: usize = r.origins.values().map(|s| s.order.len()).sum();
        assert!(
            stale <= 4 * r.map.len() + 64,
            "{stale} order entries for {} messages",
            r.map.len()
        );
    }

    #[test]
    fn a_message_of_the_largest_size_is_kept_with_room_for_two() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(6);
        let largest = 1000;
        let max = 2 * (largest + RECENT_ENTRY_BYTES);
        let mut r = Recent::default();
        let (a, b) = (peer(0xa), peer(0xb));
        let small: Arc<[u8]> = vec![1u8; 600].into();
        r.insert(digest(1), Topic::VOTE, &small, a, t0, keep, max);
        r.insert(digest(2), Topic::VOTE, &small, b, t0, keep, max);
        // The largest from a: a is then charged the most, but the new one stays.
        let big: Arc<[u8]> = vec![2u8; largest].into();
        r.insert(digest(3), Topic::PROPOSAL, &big, a, t0, keep, max);
        assert!(r.map.contains_key(&digest(3)));
        assert!(r.bytes <= max);
        // Another of the largest, from b: still kept.
        let big2: Arc<[u8]> = vec![3u8; largest].into();
        r.insert(digest(4), Topic::PROPOSAL, &big2, b, t0, keep, max);
        assert!(r.map.contains_key(&digest(4)));
        assert!(r.bytes <= max);
    }

    #[test]
    fn wants_are_bounded_per_creating_announcer_only() {
        let now = Instant::now();
        let mut w = Wants::new(MIN_ANNOUNCERS);
        let (p, q) = (PeerId(digest(0xa)), PeerId(digest(0xb)));
        let id = |i: u32| {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_be_bytes());
            Digest(d)
        };
        for i in 0..MAX_WANTS_PER_PEER as u32 {
            assert_eq!(w.announced(id(i), p, now), Announced::Recorded);
        }
        // p is at its bound: it creates no more wants...
        assert_eq!(w.announced(id(1 << 30), p, now), Announced::Refused);
        // ...but another peer does, and p may still join it (free), as q joins p's.
        assert_eq!(w.announced(id(1 << 30), q, now), Announced::Recorded);
        assert_eq!(w.announced(id(1 << 30), p, now), Announced::Recorded);
        assert_eq!(w.announced(id(0), q, now), Announced::Recorded);
        assert_eq!((w.per_peer[&p], w.per_peer[&q]), (MAX_WANTS_PER_PEER, 1));
        // Repeating an announce is free and lists the peer once.
        assert_eq!(w.announced(id(0), p, now), Announced::Recorded);
        assert_eq!(w.map[&id(0)].announcers.len(), 2);
        // Made-up ids of many peers never refuse another peer's announce: no bound in all.
        for k in 0..8u8 {
            for i in 0..MAX_WANTS_PER_PEER as u32 {
                let r = PeerId(digest(100 + k));
                let x = 1_000_000 + u32::from(k) * 10_000 + i;
                assert_eq!(w.announced(id(x), r, now), Announced::Recorded);
            }
        }
        assert_eq!(w.announced(id(1 << 31), q, now), Announced::Recorded);
        // Up to max_announcers distinct announcers per want; more are ignored, not refused.
        for k in 0..(MIN_ANNOUNCERS as u32) {
            let r = PeerId(id(9_000_000 + k));
            let want = if k < MIN_ANNOUNCERS as u32 - 2 {
                Announced::Recorded
            } else {
                Announced::Ignored
            };
            assert_eq!(w.announced(id(0), r, now), want, "announcer {k}");
        }
        assert_eq!(w.map[&id(0)].announcers.len(), MIN_ANNOUNCERS);
        // Removing a want releases its creator's count only.
        let gone = w.remove(&id(0)).unwrap();
        assert_eq!(gone.creator, p);
        assert_eq!(
            (w.per_peer[&p], w.per_peer[&q]),
            (MAX_WANTS_PER_PEER - 1, 2)
        );
        assert_eq!(w.announced(id(1 << 29), p, now), Announced::Recorded);
    }

    /// A want announced by peers `digest(1)` … `digest(n)`, none asked yet.
    fn want_from(n: u8) -> Want {
        Want {
            first: Instant::now(),
            creator: PeerId(digest(1)),
            announcers: (1..=n)
                .map(|k| Announcer {
                    peer: PeerId(digest(k)),
                    asked: false,
                })
                .collect(),
            asked: None,
            bursts: 0,
        }
    }

    #[test]
    fn a_want_asks_every_linked_announcer_in_rounds_preferring_those_that_answered() {
        let mut w = want_from(4);
        // 1 and 2 never answered, 3 answered once, 4 is not linked.
        let linked = |p: &PeerId| match p.0.0[0] {
            1 | 2 => Some(0),
            3 => Some(1),
            _ => None,
        };
        let order: Vec<u8> = (0..7).map(|_| w.choose(linked).unwrap().0.0[0]).collect();
        assert_eq!(order, vec![3, 1, 2, 3, 1, 2, 3]);
        // Once 4 is linked again it is asked in the next round; none linked: nobody.
        let all = |_: &PeerId| Some(0);
        let order: Vec<u8> = (0..4).map(|_| w.choose(all).unwrap().0.0[0]).collect();
        assert_eq!(order, vec![1, 2, 4, 1]);
        assert_eq!(w.choose(|_| None), None);
    }

    /// Review 4, finding 1: one ask per `fetch_timeout` reached only about six announcers
    /// before `recent_keep`. Bursts double: 1, 2, 4, then everyone.
    #[test]
    fn a_want_asks_in_doubling_bursts_of_distinct_announcers() {
        let all = |_: &PeerId| Some(0);
        let mut w = want_from(8);
        let sizes: Vec<usize> = (0..4).map(|_| w.choose_burst(all).len()).collect();
        assert_eq!(sizes, vec![1, 2, 4, 8]);
        let mut w = want_from(8);
        let mut asked: Vec<PeerId> = (0..3).flat_map(|_| w.choose_burst(all)).collect();
        asked.sort_by_key(|p| p.0);
        asked.dedup();
        assert_eq!(asked.len(), 7, "three bursts ask seven distinct announcers");
        assert!(w.choose_burst(|_| None).is_empty());
    }

    #[test]
    fn jitter_spreads_delays_over_the_upper_half() {
        let mut state = 7u64;
        let d = Duration::from_millis(1000);
        let draws: Vec<Duration> = (0..1000).map(|_| jitter(&mut state, d)).collect();
        assert!(draws.iter().all(|x| *x >= d / 2 && *x <= d));
        // Spread, not a constant: both quarters of the range are hit.
        assert!(draws.iter().any(|x| *x < Duration::from_millis(625)));
        assert!(draws.iter().any(|x| *x > Duration::from_millis(875)));
        assert_eq!(jitter(&mut state, Duration::ZERO), Duration::ZERO);
    }
}
