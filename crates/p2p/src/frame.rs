//! The wire format of a link: frames of `u32` big-endian payload length, one topic byte, and
//! the payload. The length is checked against the topic's limit before anything is allocated,
//! so a peer announcing 4 GiB costs nothing but the link.
//!
//! Control frames (topic 0) are the link's own. An empty one is a hello (the first frame each
//! way) or a keep-alive. A non-empty one is a kind byte, a `u16` big-endian count, then that
//! many 32-byte values in strictly ascending order, nothing after them ([`decode_control`]):
//! - kind 1, a link-state advertisement: the peer ids the sender holds live links to (0 to
//!   [`MAX_ADVERTISED_LINKS`]);
//! - kind 2, an announce: ids of gossip messages (SM3 of topic and payload, the seen-cache
//!   key) the sender has and did not relay here (1 to [`MAX_IDS_PER_FRAME`]);
//! - kind 3, a want: ids of announced messages the sender asks for (1 to
//!   [`MAX_IDS_PER_FRAME`]).
//!
//! Anything else (another kind, a count that does not match the length, values out of order
//! or repeated, an empty announce or want) closes the link.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crypto::Digest;

use crate::{P2pError, PeerId};

/// The bytes before a payload: its length (`u32`, big-endian) and its topic.
pub const HEADER_LEN: usize = 5;

/// The most peers one link-state advertisement lists. A node with more live links advertises
/// the first ones in id order: listing fewer only means more relays to it, never fewer.
pub const MAX_ADVERTISED_LINKS: usize = 1024;

/// The most message ids one announce or want carries; more are sent in several frames.
pub const MAX_IDS_PER_FRAME: usize = 1024;

/// The kind byte of a link-state advertisement.
const LINK_STATE: u8 = 1;
/// The kind byte of an announce.
const ANNOUNCE: u8 = 2;
/// The kind byte of a want.
const WANT: u8 = 3;

/// The largest control payload: a link-state advertisement of [`MAX_ADVERTISED_LINKS`] peers
/// (an announce or a want of [`MAX_IDS_PER_FRAME`] ids is as long).
pub const MAX_CONTROL_PAYLOAD: u32 = (3 + 32 * MAX_ADVERTISED_LINKS) as u32;

/// What a frame carries. The crate does not read payloads; the topic says which queue of the
/// node they go to, whether they are relayed, and which size limit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(u8);

impl Topic {
    /// The link's own control frames: the hellos that open a link, keep-alives (both empty),
    /// link-state advertisements, announces and wants. Never delivered to the node.
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
/// the frame being read). `progress` runs after every read that brought bytes: a peer
/// trickling a large frame is alive while it does.
async fn read_full<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
    progress: &mut impl FnMut(),
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
        progress();
    }
    Ok(())
}

/// Reads one frame. The payload is allocated only once its length passed the topic's limit.
/// `progress` runs after every read that brought bytes (see [`read_full`]).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
    idle: Option<Duration>,
    progress: &mut impl FnMut(),
) -> Result<(Topic, Vec<u8>), ReadError> {
    let mut header = [0u8; HEADER_LEN];
    read_full(r, &mut header, idle, progress).await?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let topic = Topic(header[4]);
    let max = limits.max_for(topic);
    if len > max {
        return Err(ReadError::Oversized { topic, len, max });
    }
    let mut payload = vec![0u8; len as usize];
    read_full(r, &mut payload, idle, progress).await?;
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
    /// Gossip messages the sender has and did not relay here, ascending ids.
    Announce(Vec<Digest>),
    /// Announced messages the sender asks for, ascending ids.
    Want(Vec<Digest>),
}

/// Encodes a control frame of `kind` with `values` (sorted and deduplicated here; beyond
/// `max` the highest are left out).
fn encode_values(kind: u8, values: &[[u8; 32]], max: usize) -> Vec<u8> {
    let mut values = values.to_vec();
    values.sort_unstable();
    values.dedup();
    values.truncate(max);
    let mut out = Vec::with_capacity(3 + 32 * values.len());
    out.push(kind);
    // At most 1024 values (both maxima): the count fits a u16.
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    for v in &values {
        out.extend_from_slice(v);
    }
    out
}

/// Encodes a link-state advertisement of `peers` (sorted and deduplicated here; beyond
/// [`MAX_ADVERTISED_LINKS`] the highest ids are left out).
pub(crate) fn encode_link_state(peers: &[PeerId]) -> Vec<u8> {
    let values: Vec<[u8; 32]> = peers.iter().map(|p| *p.0.as_bytes()).collect();
    encode_values(LINK_STATE, &values, MAX_ADVERTISED_LINKS)
}

/// Encodes announces of `ids` (sorted and deduplicated): one frame per
/// [`MAX_IDS_PER_FRAME`] ids, none for no id.
pub(crate) fn encode_announces(ids: &[Digest]) -> Vec<Vec<u8>> {
    encode_id_frames(ANNOUNCE, ids)
}

/// Encodes wants of `ids` (sorted and deduplicated): one frame per [`MAX_IDS_PER_FRAME`]
/// ids, none for no id.
pub(crate) fn encode_wants(ids: &[Digest]) -> Vec<Vec<u8>> {
    encode_id_frames(WANT, ids)
}

fn encode_id_frames(kind: u8, ids: &[Digest]) -> Vec<Vec<u8>> {
    let mut values: Vec<[u8; 32]> = ids.iter().map(|d| *d.as_bytes()).collect();
    values.sort_unstable();
    values.dedup();
    values
        .chunks(MAX_IDS_PER_FRAME)
        .map(|c| encode_values(kind, c, MAX_IDS_PER_FRAME))
        .collect()
}

/// Decodes a control frame's payload, or says what is wrong with it: an unknown kind, a count
/// that does not match the length or is over its kind's maximum, values out of order or
/// repeated, an announce or want of no id.
pub(crate) fn decode_control(payload: &[u8]) -> Result<Control, &'static str> {
    let Some((&kind, rest)) = payload.split_first() else {
        return Ok(Control::KeepAlive);
    };
    let (min, max) = match kind {
        LINK_STATE => (0, MAX_ADVERTISED_LINKS),
        ANNOUNCE | WANT => (1, MAX_IDS_PER_FRAME),
        _ => return Err("unknown control kind"),
    };
    if rest.len() < 2 {
        return Err("count cut short");
    }
    let count = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let body = &rest[2..];
    if count < min || count > max {
        return Err("count out of range for its kind");
    }
    if body.len() != count * 32 {
        return Err("count does not match the length");
    }
    let mut values: Vec<[u8; 32]> = Vec::with_capacity(count);
    for chunk in body.chunks_exact(32) {
        let mut v = [0u8; 32];
        v.copy_from_slice(chunk);
        // Strictly ascending: one encoding per set, so a peer cannot pad or repeat.
        if values.last().is_some_and(|last| *last >= v) {
            return Err("values not strictly ascending");
        }
        values.push(v);
    }
    Ok(match kind {
        LINK_STATE => Control::LinkState(values.into_iter().map(|v| PeerId(Digest(v))).collect()),
        ANNOUNCE => Control::Announce(values.into_iter().map(Digest).collect()),
        _ => Control::Want(values.into_iter().map(Digest).collect()),
    })
}

/// Reads the acceptor's hello: an empty control frame.
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
) -> Result<(), ReadError> {
    match read_frame(r, limits, None, &mut || {}).await? {
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
        read_frame(&mut r, &limits(), None, &mut || {}).await
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
            read_frame(&mut near, &limits(), Some(d), &mut || {}).await,
            Err(ReadError::Idle(_))
        ));
        // A frame arriving in pieces, each within the idle limit, is read whole, and each
        // piece is reported as it arrives (the link's liveness is stamped on each).
        let (mut near, mut far) = tokio::io::duplex(64);
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut progress = || {
                let _ = seen_tx.send(());
            };
            read_frame(
                &mut near,
                &limits(),
                Some(Duration::from_millis(200)),
                &mut progress,
            )
            .await
        });
        for (i, piece) in [&[0u8, 0, 0][..], &[2, 3], &[8], &[9]].iter().enumerate() {
            far.write_all(piece).await.unwrap();
            // The piece was reported before the frame is complete.
            tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("piece {i} not reported"))
                .unwrap();
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
            Ok(Control::LinkState(vec![id(2), id(9)]))
        );
        assert_eq!(encode_link_state(&[]), [1, 0, 0]);
        assert_eq!(decode_control(&[1, 0, 0]), Ok(Control::LinkState(vec![])));
        assert_eq!(decode_control(&[]), Ok(Control::KeepAlive));
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
            Ok(Control::LinkState(p)) => assert_eq!(p, many[..MAX_ADVERTISED_LINKS]),
            other => panic!("{other:?}"),
        }
    }

    fn digest(n: u32) -> Digest {
        let mut d = [0x5a; 32];
        d[..4].copy_from_slice(&n.to_be_bytes());
        Digest(d)
    }

    /// Announce and want bytes are pinned: kind 2 or 3, count, ids ascending; batches of at
    /// most 1024 ids per frame, none for no id.
    #[test]
    fn announces_and_wants_are_kind_count_and_ascending_ids() {
        let (a, b) = (Digest([3; 32]), Digest([1; 32]));
        let frames = encode_announces(&[a, b, a]);
        assert_eq!(
            frames,
            vec![[&[2u8, 0, 2][..], &[1; 32], &[3; 32]].concat()]
        );
        assert_eq!(
            decode_control(&frames[0]),
            Ok(Control::Announce(vec![b, a]))
        );
        let frames = encode_wants(&[a]);
        assert_eq!(frames, vec![[&[3u8, 0, 1][..], &[3; 32]].concat()]);
        assert_eq!(decode_control(&frames[0]), Ok(Control::Want(vec![a])));
        assert!(encode_announces(&[]).is_empty());
        assert!(encode_wants(&[]).is_empty());
        // 2500 ids: three frames of 1024, 1024 and 452, ascending across them, all decoded.
        let ids: Vec<Digest> = (0..2500u32).rev().map(digest).collect();
        let frames = encode_announces(&ids);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].len(), MAX_CONTROL_PAYLOAD as usize);
        let mut back = Vec::new();
        for f in &frames {
            match decode_control(f) {
                Ok(Control::Announce(v)) => back.extend(v),
                other => panic!("{other:?}"),
            }
        }
        let mut want = ids.clone();
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn a_malformed_control_payload_is_refused() {
        let two = [&[1u8, 0, 2][..], &[2; 32], &[9; 32]].concat();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown kind", [&[4u8][..], &two[1..]].concat()),
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
            assert!(decode_control(&bytes).is_err(), "{what}");
        }
        // The reason names what was wrong.
        assert_eq!(decode_control(&[9]), Err("unknown control kind"));
        assert_eq!(
            decode_control(&[1, 0, 1]),
            Err("count does not match the length")
        );
    }

    #[test]
    fn a_malformed_announce_or_want_is_refused() {
        let one = |kind: u8| [&[kind, 0, 1][..], &[4; 32]].concat();
        for kind in [2u8, 3] {
            assert!(decode_control(&one(kind)).is_ok(), "kind {kind}");
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("no id", vec![kind, 0, 0]),
                ("count cut short", vec![kind, 0]),
                (
                    "count above the ids",
                    [&[kind, 0, 2][..], &[4; 32]].concat(),
                ),
                ("trailing byte", [&one(kind)[..], &[0]].concat()),
                ("short id", [&[kind, 0, 1][..], &[4; 31]].concat()),
                ("repeated", [&[kind, 0, 2][..], &[4; 32], &[4; 32]].concat()),
                (
                    "descending",
                    [&[kind, 0, 2][..], &[5; 32], &[4; 32]].concat(),
                ),
                ("count over the maximum", {
                    let n = MAX_IDS_PER_FRAME + 1;
                    let mut v = vec![kind];
                    v.extend_from_slice(&(n as u16).to_be_bytes());
                    for i in 0..n as u32 {
                        v.extend_from_slice(digest(i).as_bytes());
                    }
                    v
                }),
            ];
            for (what, bytes) in cases {
                assert!(decode_control(&bytes).is_err(), "kind {kind}: {what}");
            }
        }
        assert_eq!(
            decode_control(&[2, 0, 0]),
            Err("count out of range for its kind")
        );
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
