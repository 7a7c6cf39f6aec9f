//! Links between gmchain nodes (validators and followers) over GM TLS 1.3.
//!
//! What it does:
//! - listens and dials over [`gmtls`]: both ends present and verify `node-sign` certificates
//!   (`gmtls::link_server_config` / `gmtls::link_client_config`); a dialled peer must present
//!   the configured certificate name (CN) and, if configured, organisation;
//! - admits a peer only if the node's `admit` callback accepts its identity (a registered
//!   organisation's current validator or follower) and drops live links that no longer pass
//!   ([`NetworkHandle::revalidate`], which the node calls after each block);
//! - carries opaque messages in frames of `u32` length, topic byte and payload
//!   ([`frame`]); the length is checked against the topic's limit before any allocation, and a
//!   frame over the limit or malformed closes its link (counted, logged);
//! - keeps one link per pair of nodes: when both dial each other, the connection initiated by
//!   the node with the lower certificate id is kept on both sides;
//! - queues outgoing frames per peer in bounded queues: [`NetworkHandle::send`] and
//!   [`NetworkHandle::broadcast`] never wait; what does not fit is dropped and counted per
//!   peer and topic;
//! - relays gossip topics (proposals, votes, transactions by default) once, with a bounded
//!   seen-cache keyed by SM3 of (topic, payload): each message is delivered up at most once
//!   while it is remembered;
//! - relays in full only where it is needed, and announces elsewhere (the relay rule): each
//!   node advertises to each peer, in link-state control frames, the peers it currently
//!   holds live links to; a message received from peer S goes to peer P in full unless P
//!   advertises S and S's advertisement (read before the message on S's link) lists P (S
//!   then sent or announced it to P itself): P then gets only an announce of the message's id. A peer
//!   that still lacks an announced message after [`NetworkConfig::fetch_grace`] asks one
//!   announcer for it (a want) and another after each [`NetworkConfig::fetch_timeout`], in
//!   rounds, until it arrives or [`NetworkConfig::recent_keep`] passed; each node keeps the
//!   messages it delivered lately to answer wants, charged to the peers they came from. A full mesh thus
//!   carries each payload once per link (its author's broadcast) plus small announces, and a
//!   copy dropped on a full queue or withheld by a Byzantine relay costs a round trip and
//!   the grace, never the message;
//! - opens every link with a hello each way (empty control frames: a link exists only once
//!   both ends accepted each other), sends keep-alives on quiet links and closes a link on
//!   which nothing arrived for the idle timeout (a crashed peer's half-open connection);
//! - redials configured peers after any disconnect with exponential back-off and jitter.
//!
//! What it refuses to do: read payloads (they are the node's: it verifies signatures, blocks,
//! votes), decide who is a validator (the `admit` callback does), accept a certificate another
//! way than through gmtls's verifiers, or block a caller on a slow peer. It has no peer
//! discovery: the node lists whom to dial.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod frame;
mod network;
mod seen;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crypto::Digest;
pub use frame::{Limits, Topic};
pub use gmtls::PeerIdentity;
pub use network::{Network, NetworkHandle, StatsView};
pub use seen::message_id;

/// The node's admission rule: whether a peer with this verified identity may hold a link now.
pub type Admit = Arc<dyn Fn(&PeerIdentity) -> bool + Send + Sync>;

/// What happened to an incoming connection, for the node's audit log: a link accepted
/// (authenticated, admitted, hellos exchanged, registered) or a connection refused before that.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum LinkEvent<'a> {
    /// An incoming link was registered.
    Accepted {
        remote: SocketAddr,
        peer: &'a PeerIdentity,
    },
    /// An incoming connection was refused (the reason is a fixed phrase, no peer data).
    Refused {
        remote: SocketAddr,
        reason: &'static str,
    },
}

/// Called for each [`LinkEvent`] on the network's tasks: it must return quickly (count, queue)
/// and never block on I/O.
#[derive(Clone)]
pub struct LinkObserver(pub Arc<dyn Fn(LinkEvent<'_>) + Send + Sync>);

impl std::fmt::Debug for LinkObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkObserver")
    }
}

/// A peer's id: SM3 of its certificate's DER (the id the chain records certificates under).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub Digest);

impl PeerId {
    /// The id of the node presenting `cert`.
    pub fn of(cert: &pki::Certificate) -> PeerId {
        PeerId(cert.fingerprint())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0.as_bytes()[..8]))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// A peer to dial: where, and who must answer there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    /// Its listening address.
    pub addr: SocketAddr,
    /// The common name of its `node-sign` certificate (DNS form: letters, digits, '-', '.').
    pub name: String,
    /// Its organisation (the O of its certificate); a CN is unique only within one.
    pub organisation: Option<String>,
}

/// Reconnection back-off: the delay before a redial starts at `min`, doubles after each failed
/// attempt up to `max`, and is drawn uniformly from its upper half (jitter), so peers that
/// lost each other at once do not redial in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// The network's configuration.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The address to listen on (port 0: any free port, see [`NetworkHandle::local_addr`]).
    pub listen: SocketAddr,
    /// This node's id: [`PeerId::of`] its `node-sign` certificate (the one in the TLS
    /// configurations). Both ends of a pair use the ids to agree on which link to keep.
    pub local_id: PeerId,
    /// The peers to dial.
    pub peers: Vec<PeerAddr>,
    /// Frame size limits (incoming and outgoing).
    pub limits: Limits,
    /// Frames queued per peer before further ones to it are dropped.
    pub outbound_queue: usize,
    /// Messages queued for the node before the links' readers wait (back-pressure on peers).
    pub inbound_queue: usize,
    /// Reconnection back-off.
    pub backoff: Backoff,
    /// The longest a TCP connect, TLS handshake and link hello may take.
    pub handshake_timeout: Duration,
    /// A link with nothing to send for this long sends a keep-alive (an empty control frame).
    pub keepalive: Duration,
    /// A link on which nothing arrives for this long is closed: the peer is gone (crashed,
    /// cut off) even if TCP has not noticed. Without it, a half-open link would keep the
    /// one-link rule refusing the restarted peer's new connection.
    pub idle_timeout: Duration,
    /// The topics that are relayed and deduplicated.
    pub relay_topics: Vec<Topic>,
    /// Whether a relay to a peer that advertises a live link to the message's sender (which
    /// advertises it back) is replaced by an announce of the message's id, which the peer
    /// fetches if it lacks it after `fetch_grace` (the relay rule). On by default; off, every
    /// fresh gossip message is relayed in full to every other link (about three copies per
    /// node and message in a full mesh of four).
    pub announce_relays: bool,
    /// How long a peer waits after the first announce of a message it lacks before asking an
    /// announcer for it: the direct copy usually arrives first (announces travel next to it).
    pub fetch_grace: Duration,
    /// How long a want may go unanswered before another announcer (or, after every linked
    /// one, the first again) is asked.
    pub fetch_timeout: Duration,
    /// How long a delivered or relayed gossip message is kept to answer wants, and how long
    /// a want is kept at most (its only end other than the message's arrival). Above
    /// `fetch_grace` + `fetch_timeout`.
    pub recent_keep: Duration,
    /// The most bytes kept to answer wants: each message's payload plus a fixed 128 bytes
    /// (and 40 per peer it was served to). Each kept message is charged to every peer it
    /// arrived from, or once the node vouched for it to its signer; when over, while
    /// vouched messages hold less than half, the unverified origin charged the most gives up
    /// its oldest message (vouched ones go only when no unverified origin is charged
    /// anything), and from half on the signer charged the most. At least twice the largest
    /// relayed payload plus 128 bytes, so that the largest message is kept next to another
    /// (and one of the largest size vouched for is kept against any unverified flood).
    /// Memory is held only while messages are recent.
    pub recent_bytes: usize,
    /// A link this node advertises as live must have been up this long: a link that comes
    /// and goes (a peer restarting, both ends dialling at once) does not make the
    /// advertisement flap. Correctness does not depend on it (the advertisements are read in
    /// order with the messages).
    pub relay_settle: Duration,
    /// A link on which nothing (not even a keep-alive) arrived for this long is no longer
    /// advertised as live, so peers relay its peer's messages here again well before
    /// `idle_timeout` closes it (a silent partition). Above `keepalive`.
    pub link_liveness: Duration,
    /// How many gossip messages the seen-cache remembers.
    pub seen_capacity: usize,
    /// Incoming handshakes in progress at once; more are closed unanswered.
    pub max_pending_handshakes: usize,
    /// Told of incoming links accepted and connections refused (the node's audit log).
    pub on_link: Option<LinkObserver>,
}

impl NetworkConfig {
    /// The defaults: no peers, 4 MiB frames (64 MiB for proposals and sync responses),
    /// 1024 frames per peer queue, back-off 200 ms to 30 s, 10 s handshakes, keep-alives every
    /// second, links silent for 3 s no longer advertised and for 20 s closed, links
    /// advertised after 1 s up, proposals, votes and transactions relayed (announced where
    /// the link-state allows), wants after 100 ms and the next announcer after 1 s, messages
    /// kept 6 s (2 × `link_liveness`) and 160 MiB to answer wants (two proposals of the
    /// largest size and room for others), 65 536 remembered messages.
    pub fn new(listen: SocketAddr, local_id: PeerId) -> Self {
        NetworkConfig {
            listen,
            local_id,
            peers: Vec::new(),
            limits: Limits::default(),
            outbound_queue: 1024,
            inbound_queue: 4096,
            backoff: Backoff::default(),
            handshake_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(20),
            relay_topics: vec![Topic::PROPOSAL, Topic::VOTE, Topic::TRANSACTION],
            announce_relays: true,
            fetch_grace: Duration::from_millis(100),
            fetch_timeout: Duration::from_secs(1),
            recent_keep: Duration::from_secs(6),
            recent_bytes: 160 << 20,
            relay_settle: Duration::from_secs(1),
            link_liveness: Duration::from_secs(3),
            seen_capacity: 65_536,
            max_pending_handshakes: 64,
            on_link: None,
        }
    }

    fn check(&self) -> Result<(), P2pError> {
        let bad = |field, reason: &str| {
            Err(P2pError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.outbound_queue == 0 {
            return bad("outbound_queue", "must hold at least one frame");
        }
        if self.inbound_queue == 0 {
            return bad("inbound_queue", "must hold at least one message");
        }
        if self.backoff.min.is_zero() || self.backoff.min > self.backoff.max {
            return bad("backoff", "min must be above zero and at most max");
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake_timeout", "must be above zero");
        }
        if self.keepalive.is_zero() || self.idle_timeout <= self.keepalive {
            return bad(
                "idle_timeout",
                "keepalive must be above zero and idle_timeout above keepalive",
            );
        }
        if self.link_liveness <= self.keepalive {
            // A quiet but healthy link would drop out of the advertisement between keep-alives.
            return bad("link_liveness", "must be above keepalive");
        }
        if self.max_pending_handshakes == 0 {
            return bad("max_pending_handshakes", "must be at least one");
        }
        if self.relay_topics.contains(&Topic::CONTROL) {
            return bad("relay_topics", "topic 0 is the link's own");
        }
        if self.fetch_grace.is_zero() {
            return bad("fetch_grace", "must be above zero");
        }
        if self.fetch_timeout.is_zero() {
            return bad("fetch_timeout", "must be above zero");
        }
        if self.recent_keep <= self.fetch_grace + self.fetch_timeout {
            // A message would be forgotten before its first want's answer was due.
            return bad("recent_keep", "must be above fetch_grace + fetch_timeout");
        }
        let largest = self
            .relay_topics
            .iter()
            .map(|t| self.limits.max_for(*t) as usize)
            .max()
            .unwrap_or(0);
        let two_largest = 2 * (largest + network::RECENT_ENTRY_BYTES);
        if self.recent_bytes < two_largest {
            // The largest message (and the 128 bytes counted with it) would push itself out,
            // or every other kept message with it.
            return bad(
                "recent_bytes",
                &format!(
                    "must hold at least twice the largest payload of a relayed topic plus \
                     {} bytes each: {two_largest}",
                    network::RECENT_ENTRY_BYTES
                ),
            );
        }
        Ok(())
    }
}

/// A message from a peer.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The link it came over (for a relayed message: the relaying peer, not its author).
    pub peer: PeerId,
    /// Its topic.
    pub topic: Topic,
    /// The payload, unread.
    pub payload: Arc<[u8]>,
    /// Its message id, for a relay topic (it is kept to answer peers' wants: see
    /// [`NetworkHandle::vouch`]).
    pub id: Option<crypto::Digest>,
}

/// Which side opened a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// This node dialled.
    Outbound,
    /// The peer dialled.
    Inbound,
}

/// A live link.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    /// The peer's verified identity.
    pub peer: PeerIdentity,
    /// Its certificate's common name.
    pub name: Option<String>,
    /// The peers it last advertised live links to, ascending (empty until its first
    /// link-state advertisement): messages from those of them that list it back are
    /// announced to it, not relayed in full.
    pub peer_links: Vec<PeerId>,
    /// Which side opened it.
    pub direction: Direction,
    /// The peer's socket address.
    pub remote: SocketAddr,
}

impl LinkInfo {
    /// The peer's id.
    pub fn id(&self) -> PeerId {
        PeerId(self.peer.cert_id)
    }
}

/// A snapshot of the network's counters (monotonic since start, except `links`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live links.
    pub links: usize,
    /// Frames received (control frames excluded).
    pub frames_in: u64,
    /// Frames written (control frames excluded).
    pub frames_out: u64,
    /// Bytes of the frames received, headers included (control frames excluded).
    pub bytes_in: u64,
    /// Bytes of the frames written, headers included (control frames excluded).
    pub bytes_out: u64,
    /// Control frames received (hellos, keep-alives, link-states, announces, wants).
    pub control_in: u64,
    /// Control frames written.
    pub control_out: u64,
    /// Link-state advertisements received.
    pub link_states_in: u64,
    /// Relays replaced by an announce because the peer advertised a live link to the
    /// message's sender (which sent or relayed it there itself).
    pub relays_announced: u64,
    /// Message ids announced to peers (written in announce frames).
    pub announces_out: u64,
    /// Message ids announced by peers.
    pub announces_in: u64,
    /// Message ids asked of peers (written in want frames).
    pub wants_out: u64,
    /// Message ids peers asked for.
    pub wants_in: u64,
    /// Fresh messages that arrived after this node had asked for them.
    pub fetched: u64,
    /// Messages queued to a peer in answer to its want.
    pub served: u64,
    /// Kept messages the node vouched for (verified their author's signature).
    pub vouched: u64,
    /// Announced ids not wanted because that peer's announces already created 4096 wants
    /// still waiting, plus wants not queued because a link had 8192 ids waiting (those are
    /// asked again after `fetch_timeout`).
    pub wants_dropped: u64,
    /// Announces not sent because a link had 8192 ids waiting: that peer fetches the
    /// message only if another node announces it or it arrives in full.
    pub announces_not_sent: u64,
    /// Announces of a wanted id not remembered because the want already lists the most
    /// announcers (64, or the number of configured peers if larger).
    pub announcers_ignored: u64,
    /// Wants given up: older than `recent_keep` without the message.
    pub wants_expired: u64,
    /// Gossip frames received again and ignored.
    pub duplicates: u64,
    /// Gossip frames queued to other peers on receipt.
    pub relayed: u64,
    /// Frames dropped because a peer's queue was full, by peer and topic.
    pub dropped: BTreeMap<(PeerId, Topic), u64>,
    /// Dial attempts.
    pub dials: u64,
    /// Links re-established to a dialled peer after its previous link ended.
    pub reconnects: u64,
    /// Peers refused: handshake failed, refused or timed out (no hello in time included),
    /// wrong name or organisation, not admitted, too many handshakes at once.
    pub refused: u64,
    /// Links closed because a frame exceeded its topic's limit.
    pub oversized: u64,
    /// Links closed because of a malformed frame.
    pub malformed: u64,
    /// Links closed because another link to the same peer was kept.
    pub duplicate_links: u64,
    /// Links closed by [`NetworkHandle::revalidate`].
    pub revoked: u64,
    /// Links closed because nothing (not even a keep-alive) arrived within the idle timeout.
    pub idle: u64,
}

impl Stats {
    /// Frames dropped in all.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What the network refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum P2pError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("p2p configuration {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Topic 0 is the link's own.
    #[error("topic 0 is reserved for the link's control frames")]
    ReservedTopic,
    /// A payload over its topic's limit (peers would close the link on it).
    #[error("a {topic} payload of {len} bytes exceeds its limit of {max} bytes")]
    PayloadTooLarge {
        /// The topic.
        topic: Topic,
        /// The payload's length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// No live link to the peer.
    #[error("no link to peer {peer}")]
    NoLink {
        /// The peer.
        peer: PeerId,
    },
    /// The peer's queue is full: the frame was dropped (and counted).
    #[error("the queue to peer {peer} is full: the {topic} frame was dropped")]
    QueueFull {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// The network was shut down.
    #[error("the network is shut down")]
    ShutDown,
}
