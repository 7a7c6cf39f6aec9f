//! The wire format of a link: frames of `u32` big-endian payload length, one topic byte, and
//! the payload. The length is checked against the topic's limit before anything is allocated,
//! so a peer announcing 4 GiB costs nothing but the link.
//!
//! Control frames (topic 0) are the link's own. An empty one is a hello (the first frame each
//! way) or a keep-alive; a non-empty one is a link-state advertisement: kind byte 1, a `u16`
//! big-endian count, then that many 32-byte peer ids in strictly ascending order, nothing
//! after them ([`encode_link_state`], [`decode_control`]). Anything else closes the link.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{P2pError, PeerId};

/// The bytes before a payload: its length (`u32`, big-endian) and its topic.
pub const HEADER_LEN: usize = 5;

/// The most peers one link-state advertisement lists. A node with more live links advertises
/// the first ones in id order: listing fewer only means more relays to it, never fewer.
pub const MAX_ADVERTISED_LINKS: usize = 1024;

/// The kind byte of a link-state advertisement.
const LINK_STATE: u8 = 1;

/// The largest control payload: a link-state advertisement of [`MAX_ADVERTISED_LINKS`] peers.
pub const MAX_CONTROL_PAYLOAD: u32 = (3 + 32 * MAX_ADVERTISED_LINKS) as u32;

/// What a frame carries. The crate does not read payloads; the topic says which queue of the
/// node they go to, whether they are relayed, and which size limit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(u8);

impl Topic {
    /// The link's own control frames: the hellos that open a link, keep-alives (both empty)
    /// and link-state advertisements. Never delivered to the node.
    pub(crate) const CONTROL: Topic = Topic(0);
    /// A block proposal (carries a block: the large limit applies by default).
    pub const PROPOSAL: Topic = Topic(1);
    /// A consensus vote.
    pub const VOTE: Topic = Topic(2);
    /// A transaction.
    pub const TRANSACTION: Topic = Topic(3);
    /// A request to a peer for blocks (sync).
    pub const SYNC_REQUEST: Topic = Topic(4);
    /// A peer's answer to a sync request (carries blocks: the large limit applies by default).
    pub const SYNC_RESPONSE: Topic = Topic(5);

    /// The topic numbered `n`; 0 is reserved for the link's control frames and refused.
    pub fn new(n: u8) -> Result<Topic, P2pError> {
        if n == Self::CONTROL.0 {
            return Err(P2pError::ReservedTopic);
        }
        Ok(Topic(n))
    }

    /// Returns the topic's number on the wire.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Topic::CONTROL => f.write_str("control"),
            Topic::PROPOSAL => f.write_str("proposal"),
            Topic::VOTE => f.write_str("vote"),
            Topic::TRANSACTION => f.write_str("transaction"),
            Topic::SYNC_REQUEST => f.write_str("sync-request"),
            Topic::SYNC_RESPONSE => f.write_str("sync-response"),
            Topic(n) => write!(f, "topic-{n}"),
        }
    }
}

/// The size limits of incoming and outgoing frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload of any topic not in `large_topics`.
    pub max_payload: u32,
    /// The largest payload of a topic in `large_topics` (block-carrying topics).
    pub max_large_payload: u32,
    /// The topics that carry blocks and get `max_large_payload`.
    pub large_topics: Vec<Topic>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 4 << 20,
            max_large_payload: 64 << 20,
            large_topics: vec![Topic::PROPOSAL, Topic::SYNC_RESPONSE],
        }
    }
}

impl Limits {
    /// Returns the largest payload `topic` may carry.
    pub fn max_for(&self, topic: Topic) -> u32 {
        if topic == Topic::CONTROL {
            MAX_CONTROL_PAYLOAD
        } else if self.large_topics.contains(&topic) {
            self.max_large_payload
        } else {
            self.max_payload
        }
    }

    /// Checks an outgoing payload: what a peer would refuse (closing the link) is refused here.
    pub fn check(&self, topic: Topic, len: usize) -> Result<(), P2pError> {
        let max = self.max_for(topic);
        if len > max as usize {
            return Err(P2pError::PayloadTooLarge { topic, len, max });
        }
        Ok(())
    }
}

/// Why an incoming frame closed its link.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the link (or the connection broke).
    Closed(std::io::Error),
    /// Nothing arrived for this long (a live peer sends keep-alives).
    Idle(Duration),
    /// The announced length exceeds the topic's limit.
    Oversized { topic: Topic, len: u32, max: u32 },
    /// A control frame that is neither empty nor a well-formed link-state advertisement, or
    /// a frame out of place.
    Malformed { topic: Topic, len: u32 },
}

/// Fills `buf`, failing if no byte arrives for `idle` (a stalled link, whatever the size of
/// the frame being read).
async fn read_full<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Result<(), ReadError> {
    let mut filled = 0;
    while filled < buf.len() {
        let read = r.read(&mut buf[filled..]);
        let n = match idle {
            Some(d) => tokio::time::timeout(d, read)
                .await
                .map_err(|_| ReadError::Idle(d))?,
            None => read.await,
        }
        .map_err(ReadError::Closed)?;
        if n == 0 {
            return Err(ReadError::Closed(std::io::ErrorKind::UnexpectedEof.into()));
        }
        filled += n;
    }
    Ok(())
}

/// Reads one frame. The payload is allocated only once its length passed the topic's limit.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
    idle: Option<Duration>,
) -> Result<(Topic, Vec<u8>), ReadError> {
    let mut header = [0u8; HEADER_LEN];
    read_full(r, &mut header, idle).await?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let topic = Topic(header[4]);
    let max = limits.max_for(topic);
    if len > max {
        return Err(ReadError::Oversized { topic, len, max });
    }
    let mut payload = vec![0u8; len as usize];
    read_full(r, &mut payload, idle).await?;
    Ok((topic, payload))
}

/// Writes one frame (not flushed).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    topic: Topic,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "payload over 4 GiB"))?;
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4] = topic.0;
    w.write_all(&header).await?;
    w.write_all(payload).await
}

/// What a control frame says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// A hello or a keep-alive: the peer is there.
    KeepAlive,
    /// The peers the sender currently holds live links to, ascending.
    LinkState(Vec<PeerId>),
}

/// Encodes a link-state advertisement of `peers` (sorted and deduplicated here; beyond
/// [`MAX_ADVERTISED_LINKS`] the highest ids are left out).
pub(crate) fn encode_link_state(peers: &[PeerId]) -> Vec<u8> {
    let mut ids: Vec<PeerId> = peers.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(MAX_ADVERTISED_LINKS);
    let mut out = Vec::with_capacity(3 + 32 * ids.len());
    out.push(LINK_STATE);
    // At most MAX_ADVERTISED_LINKS (1024) ids: the count fits a u16.
    out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
    for id in &ids {
        out.extend_from_slice(id.0.as_bytes());
    }
    out
}

/// Decodes a control frame's payload; `None` if it is malformed (unknown kind, a count that
/// does not match the length, more than [`MAX_ADVERTISED_LINKS`] ids, ids out of order or
/// repeated).
pub(crate) fn decode_control(payload: &[u8]) -> Option<Control> {
    let Some((&kind, rest)) = payload.split_first() else {
        return Some(Control::KeepAlive);
    };
    if kind != LINK_STATE || rest.len() < 2 {
        return None;
    }
    let count = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let ids = &rest[2..];
    if count > MAX_ADVERTISED_LINKS || ids.len() != count * 32 {
        return None;
    }
    let mut peers: Vec<PeerId> = Vec::with_capacity(count);
    for chunk in ids.chunks_exact(32) {
        let mut id = [0u8; 32];
        id.copy_from_slice(chunk);
        let id = PeerId(crypto::Digest(id));
        // Strictly ascending: one encoding per set, so a peer cannot pad or repeat.
        if peers.last().is_some_and(|last| *last >= id) {
            return None;
        }
        peers.push(id);
    }
    Some(Control::LinkState(peers))
}

/// Reads the acceptor's hello: an empty control frame.
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
) -> Result<(), ReadError> {
    match read_frame(r, limits, None).await? {
        (Topic::CONTROL, p) if p.is_empty() => Ok(()),
        (topic, p) => Err(ReadError::Malformed {
            topic,
            len: p.len() as u32,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_payload: 16,
            max_large_payload: 64,
            large_topics: vec![Topic::PROPOSAL],
        }
    }

    async fn read(bytes: &[u8]) -> Result<(Topic, Vec<u8>), ReadError> {
        let mut r = bytes;
        read_frame(&mut r, &limits(), None).await
    }

    /// The wire format is pinned: length big-endian, then topic, then payload.
    #[tokio::test]
    async fn a_frame_is_length_topic_payload() {
        let mut out = Vec::new();
        write_frame(&mut out, Topic::VOTE, b"abc").await.unwrap();
        assert_eq!(out, [0, 0, 0, 3, 2, b'a', b'b', b'c']);
        let (t, p) = read(&out).await.unwrap();
        assert_eq!((t, p.as_slice()), (Topic::VOTE, &b"abc"[..]));
    }

    #[tokio::test]
    async fn each_topic_has_its_limit_checked_before_allocation() {
        // 16 bytes is the limit of a vote; 17 is refused from the header alone (no payload
        // follows, so a read would fail differently).
        let ok = [&[0, 0, 0, 16, 2][..], &[7u8; 16]].concat();
        assert_eq!(read(&ok).await.unwrap().1.len(), 16);
        match read(&[0, 0, 0, 17, 2]).await {
            Err(ReadError::Oversized { topic, len, max }) => {
                assert_eq!((topic, len, max), (Topic::VOTE, 17, 16));
            }
            other => panic!("{other:?}"),
        }
        // A proposal may carry up to the large limit.
        let big = [&[0, 0, 0, 64, 1][..], &[7u8; 64]].concat();
        assert_eq!(read(&big).await.unwrap().1.len(), 64);
        assert!(matches!(
            read(&[0, 0, 0, 65, 1]).await,
            Err(ReadError::Oversized { max: 64, .. })
        ));
        // 4 GiB announced: refused, nothing allocated.
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 3]).await,
            Err(ReadError::Oversized { len: u32::MAX, .. })
        ));
        // A control frame carries at most a link-state advertisement of 1024 peers.
        let max = MAX_CONTROL_PAYLOAD;
        assert_eq!(max, 3 + 32 * 1024);
        assert!(matches!(
            read(&[&max.to_be_bytes()[..], &[0]].concat()).await,
            Err(ReadError::Closed(_))
        ));
        assert!(matches!(
            read(&[&(max + 1).to_be_bytes()[..], &[0]].concat()).await,
            Err(ReadError::Oversized { len, .. }) if len == max + 1
        ));
    }

    #[tokio::test]
    async fn a_truncated_frame_is_a_closed_link() {
        assert!(matches!(read(&[0, 0, 0]).await, Err(ReadError::Closed(_))));
        assert!(matches!(
            read(&[0, 0, 0, 4, 2, 1, 2]).await,
            Err(ReadError::Closed(_))
        ));
    }

    #[tokio::test]
    async fn a_stalled_frame_is_an_idle_link() {
        let (mut near, mut far) = tokio::io::duplex(64);
        // Half a header, then nothing.
        far.write_all(&[0, 0]).await.unwrap();
        let d = Duration::from_millis(50);
        assert!(matches!(
            read_frame(&mut near, &limits(), Some(d)).await,
            Err(ReadError::Idle(_))
        ));
        // A frame arriving in pieces, each within the idle limit, is read whole.
        let (mut near, mut far) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            read_frame(&mut near, &limits(), Some(Duration::from_millis(200))).await
        });
        for piece in [&[0u8, 0, 0][..], &[2, 3], &[8], &[9]] {
            far.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(
            reader.await.unwrap().unwrap(),
            (Topic::TRANSACTION, vec![8, 9])
        );
        drop(far);
    }

    #[tokio::test]
    async fn the_hello_is_an_empty_control_frame_and_nothing_else() {
        let mut ok: &[u8] = &[0, 0, 0, 0, 0];
        read_hello(&mut ok, &limits()).await.unwrap();
        let mut vote: &[u8] = &[0, 0, 0, 0, 2];
        assert!(matches!(
            read_hello(&mut vote, &limits()).await,
            Err(ReadError::Malformed { .. })
        ));
    }

    fn id(b: u8) -> PeerId {
        PeerId(crypto::Digest([b; 32]))
    }

    /// The advertisement's bytes are pinned: kind 1, count, ids ascending.
    #[test]
    fn a_link_state_is_kind_count_and_ascending_ids() {
        let bytes = encode_link_state(&[id(9), id(2), id(9)]);
        let want = [&[1u8, 0, 2][..], &[2; 32], &[9; 32]].concat();
        assert_eq!(bytes, want);
        assert_eq!(
            decode_control(&bytes),
            Some(Control::LinkState(vec![id(2), id(9)]))
        );
        assert_eq!(encode_link_state(&[]), [1, 0, 0]);
        assert_eq!(decode_control(&[1, 0, 0]), Some(Control::LinkState(vec![])));
        assert_eq!(decode_control(&[]), Some(Control::KeepAlive));
        // Too many peers: the lowest MAX_ADVERTISED_LINKS are kept, and the result decodes.
        let many: Vec<PeerId> = (0..1100u32)
            .map(|i| {
                let mut d = [0u8; 32];
                d[..4].copy_from_slice(&i.to_be_bytes());
                PeerId(crypto::Digest(d))
            })
            .collect();
        let bytes = encode_link_state(&many);
        assert_eq!(bytes.len(), MAX_CONTROL_PAYLOAD as usize);
        match decode_control(&bytes) {
            Some(Control::LinkState(p)) => assert_eq!(p, many[..MAX_ADVERTISED_LINKS]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_malformed_control_payload_is_refused() {
        let two = [&[1u8, 0, 2][..], &[2; 32], &[9; 32]].concat();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown kind", [&[2u8][..], &two[1..]].concat()),
            ("kind only", vec![1]),
            ("count cut short", vec![1, 0]),
            ("a stray byte", vec![9]),
            (
                "count above the ids",
                [&[1u8, 0, 3][..], &two[3..]].concat(),
            ),
            (
                "count below the ids",
                [&[1u8, 0, 1][..], &two[3..]].concat(),
            ),
            ("trailing byte", [&two[..], &[0]].concat()),
            (
                "descending",
                [&[1u8, 0, 2][..], &[9; 32], &[2; 32]].concat(),
            ),
            ("repeated", [&[1u8, 0, 2][..], &[9; 32], &[9; 32]].concat()),
            ("count over the maximum", {
                let n = MAX_ADVERTISED_LINKS + 1;
                let mut v = vec![1u8];
                v.extend_from_slice(&(n as u16).to_be_bytes());
                for i in 0..n as u32 {
                    let mut d = [0u8; 32];
                    d[..4].copy_from_slice(&i.to_be_bytes());
                    v.extend_from_slice(&d);
                }
                v
            }),
        ];
        for (what, bytes) in cases {
            assert_eq!(decode_control(&bytes), None, "{what}");
        }
    }

    #[test]
    fn topic_zero_is_reserved_and_outgoing_payloads_are_checked() {
        assert!(matches!(Topic::new(0), Err(P2pError::ReservedTopic)));
        assert_eq!(Topic::new(9).unwrap().number(), 9);
        assert_eq!(Topic::new(9).unwrap().to_string(), "topic-9");
        let l = limits();
        l.check(Topic::VOTE, 16).unwrap();
        assert!(matches!(
            l.check(Topic::VOTE, 17),
            Err(P2pError::PayloadTooLarge {
                len: 17,
                max: 16,
                ..
            })
        ));
        l.check(Topic::PROPOSAL, 64).unwrap();
    }
}
