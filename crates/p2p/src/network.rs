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
//! gossip message that arrived from peer S is not relayed to peer P when P's last
//! advertisement lists S and S's lists P. Why nothing is lost: S listed P, so S had the link
//! when it queued the message and queued it to P too (its own broadcast, or its relay unless
//! P and S's own source listed each other, and so on back to the author, each step earlier).
//! It can still be lost on the S–P link if that link breaks or falls silent: each node keeps
//! what it spared for 2 × `link_liveness` and, when P or S withdraws the other, sends again
//! those of S spared for P and of P spared for S. A node's advertisement only spares relays
//! between itself and the peers that list it back: a node that lies costs itself, or what it
//! could withhold anyway by not relaying.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gmtls::rustls::{ClientConfig, ServerConfig};
use gmtls::tokio_rustls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

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
    /// When a frame (any, keep-alives included) last arrived: milliseconds since the
    /// network started, written by the link's reader.
    heard: Arc<AtomicU64>,
}

/// Gossip messages not relayed to some peer because it advertised a live link to their sender,
/// kept for [`SPARED_KEPT`] × `link_liveness`: a peer that withdraws the sender (the link
/// closed, or fell silent) may have lost some of them on that link, and is sent them again
/// (its seen-cache drops what it had). Shared payloads: only the references cost memory.
#[derive(Default)]
struct Spared {
    /// Oldest first.
    messages: std::collections::VecDeque<SparedMessage>,
    bytes: usize,
}

struct SparedMessage {
    at: Instant,
    /// Whom it came from.
    from: PeerId,
    /// The peers it was not relayed to.
    spared: Vec<PeerId>,
    topic: Topic,
    payload: Arc<[u8]>,
}

/// How many `link_liveness` periods a spared message is kept: a silent link is withdrawn
/// after one, plus the advertisement's way.
const SPARED_KEPT: u32 = 2;
/// The most spared messages kept, and their most bytes, whatever their age.
const SPARED_MAX: usize = 65_536;
const SPARED_MAX_BYTES: usize = 256 << 20;

impl Spared {
    fn push(&mut self, now: Instant, keep: Duration, m: SparedMessage) {
        self.bytes += m.payload.len();
        self.messages.push_back(m);
        while let Some(front) = self.messages.front() {
            let old = now.duration_since(front.at) > keep;
            if !old && self.messages.len() <= SPARED_MAX && self.bytes <= SPARED_MAX_BYTES {
                break;
            }
            if let Some(gone) = self.messages.pop_front() {
                self.bytes -= gone.payload.len();
            }
        }
    }
}

/// A registered link, for its task.
struct Registered {
    serial: u64,
    rx: mpsc::Receiver<Outgoing>,
    cancelled: watch::Receiver<bool>,
    heard: Arc<AtomicU64>,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    link_states_in: AtomicU64,
    relays_spared: AtomicU64,
    relays_recovered: AtomicU64,
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
    /// Gossip messages whose relay was spared lately, for a peer that withdraws their sender.
    spared: Mutex<Spared>,
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
            spared: Mutex::new(Spared::default()),
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
        self.check_open()?;
        let payload = payload.into();
        self.shared.config.limits.check(topic, payload.len())?;
        if self.shared.config.relay_topics.contains(&topic) {
            let id = message_id(topic, &payload);
            lock(&self.shared.seen).insert(id);
        }
        Ok(self.shared.queue_to_all(topic, &payload, None))
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
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            links: lock(&self.shared.links).len(),
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            link_states_in: get(&c.link_states_in),
            relays_spared: get(&c.relays_spared),
            relays_recovered: get(&c.relays_recovered),
            duplicates: get(&c.duplicates),
            relayed: get(&c.relayed),
            dropped: lock(&self.shared.drops).clone(),
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

    fn admits(&self, identity: &PeerIdentity) -> bool {
        gmtls::blocking(|| (self.admit)(identity))
    }

    fn count_drop(&self, peer: PeerId, topic: Topic) {
        *lock(&self.drops).entry((peer, topic)).or_insert(0) += 1;
    }

    /// Queues a frame to every link (`from: None`, a broadcast), or relays one that arrived
    /// from `from` to every other link whose peer does not advertise a live link to `from`
    /// (the relay rule); returns how many queues took it.
    fn queue_to_all(&self, topic: Topic, payload: &Arc<[u8]>, from: Option<PeerId>) -> usize {
        let mut spared: Vec<PeerId> = Vec::new();
        let links = lock(&self.links);
        // What the sender advertised before this message (same link, in order): a peer it
        // lists was linked to it when it sent or relayed the message, so got it from it.
        let from_links: &[PeerId] = from
            .and_then(|f| links.get(&f))
            .map_or(&[], |l| &l.info.peer_links);
        let targets: Vec<(PeerId, mpsc::Sender<Outgoing>)> = links
            .iter()
            .filter(|(id, l)| match from {
                None => true,
                Some(from) if **id == from => false,
                Some(from) => {
                    let linked = self.config.spare_relays
                        && l.info.peer_links.binary_search(&from).is_ok()
                        && from_links.binary_search(id).is_ok();
                    if linked {
                        spared.push(**id);
                    }
                    !linked
                }
            })
            .map(|(id, l)| (*id, l.tx.clone()))
            .collect();
        drop(links);
        if let (Some(from), false) = (from, spared.is_empty()) {
            self.counters
                .relays_spared
                .fetch_add(spared.len() as u64, Ordering::Relaxed);
            let now = Instant::now();
            let keep = self.config.link_liveness * SPARED_KEPT;
            lock(&self.spared).push(
                now,
                keep,
                SparedMessage {
                    at: now,
                    from,
                    spared,
                    topic,
                    payload: payload.clone(),
                },
            );
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
    /// A peer W it no longer lists may have lost messages on their way between them: those of
    /// W recently spared for `peer`, and those of `peer` spared for W, are sent now.
    fn set_peer_links(&self, peer: PeerId, serial: u64, peer_links: Vec<PeerId>) {
        let (withdrawn, senders) = {
            let mut links = lock(&self.links);
            let Some(l) = links.get_mut(&peer).filter(|l| l.serial == serial) else {
                return;
            };
            let withdrawn: Vec<PeerId> = l
                .info
                .peer_links
                .iter()
                .filter(|s| peer_links.binary_search(s).is_err())
                .copied()
                .collect();
            l.info.peer_links = peer_links;
            let senders: HashMap<PeerId, mpsc::Sender<Outgoing>> = withdrawn
                .iter()
                .chain(std::iter::once(&peer))
                .filter_map(|id| links.get(id).map(|l| (*id, l.tx.clone())))
                .collect();
            (withdrawn, senders)
        };
        if withdrawn.is_empty() {
            return;
        }
        let now = Instant::now();
        let keep = self.config.link_liveness * SPARED_KEPT;
        let again: Vec<(PeerId, Topic, Arc<[u8]>)> = lock(&self.spared)
            .messages
            .iter()
            .filter(|m| now.duration_since(m.at) <= keep)
            .flat_map(|m| {
                let to_peer =
                    (withdrawn.contains(&m.from) && m.spared.contains(&peer)).then_some(peer);
                let from_peer = (m.from == peer)
                    .then(|| withdrawn.iter().filter(|w| m.spared.contains(w)).copied())
                    .into_iter()
                    .flatten();
                to_peer
                    .into_iter()
                    .chain(from_peer)
                    .map(|to| (to, m.topic, m.payload.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (to, topic, payload) in again {
            let Some(tx) = senders.get(&to) else {
                continue;
            };
            match tx.try_send((topic, payload)) {
                Ok(()) => bump(&self.counters.relays_recovered),
                Err(mpsc::error::TrySendError::Full(_)) => self.count_drop(to, topic),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
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
            return None;
        }
        Err(_) => {
            tracing::warn!(%remote, "p2p: incoming handshake timed out");
            bump(&shared.counters.refused);
            return None;
        }
    };
    let Some((identity, name)) = identity_of(tls.get_ref().1) else {
        tracing::warn!(%remote, "p2p: incoming peer without a readable identity");
        bump(&shared.counters.refused);
        return None;
    };
    let peer = PeerId(identity.cert_id);
    if peer == shared.config.local_id {
        tracing::warn!(%remote, "p2p: connection from this node's own certificate closed");
        bump(&shared.counters.refused);
        return None;
    }
    if !shared.admits(&identity) {
        tracing::warn!(%remote, peer = %identity, "p2p: incoming peer not admitted");
        bump(&shared.counters.refused);
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
            return None;
        }
    }
    let info = LinkInfo {
        peer: identity,
        name,
        peer_links: Vec::new(),
        direction: Direction::Inbound,
        remote,
    };
    let link = shared.register(info, peer)?;
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
    } = link;
    let mut link_state = shared.link_state.subscribe();
    // The current state goes first on every new link.
    link_state.mark_changed();
    let (mut r, w) = tokio::io::split(stream);
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    let limits = shared.config.limits.clone();
    let (keepalive, idle) = (shared.config.keepalive, shared.config.idle_timeout);
    let reader = async {
        loop {
            let (topic, payload) = match frame::read_frame(&mut r, &limits, Some(idle)).await {
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
            heard.store(shared.millis(), Ordering::Relaxed);
            if topic == Topic::CONTROL {
                match frame::decode_control(&payload) {
                    // A keep-alive: it only proved the peer alive.
                    Some(Control::KeepAlive) => {}
                    Some(Control::LinkState(peer_links)) => {
                        bump(&shared.counters.link_states_in);
                        shared.set_peer_links(peer, serial, peer_links);
                    }
                    None => {
                        return LinkEnd::Malformed(format!(
                            "control frame of {} bytes",
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
            if shared.config.relay_topics.contains(&topic) {
                // SM3 of a block-sized payload takes a while: off the runtime's other tasks.
                let id = if payload.len() > BLOCKING_HASH {
                    gmtls::blocking(|| message_id(topic, &payload))
                } else {
                    message_id(topic, &payload)
                };
                let fresh = lock(&shared.seen).insert(id);
                if !fresh {
                    bump(&shared.counters.duplicates);
                    continue;
                }
                let n = shared.queue_to_all(topic, &payload, Some(peer));
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
                })
                .await;
        }
    };
    let writer = async {
        // A new link-state waiting for the frames queued before it (count, state): peers
        // judge each frame by the state written before it, so a frame queued before a link
        // came up must not follow a state that lists that link's peer.
        let mut pending: Option<(usize, Arc<[u8]>)> = None;
        loop {
            if let Some((0, state)) = &pending {
                frame::write_frame(&mut w, Topic::CONTROL, state).await?;
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
                next = rx.recv() => {
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
