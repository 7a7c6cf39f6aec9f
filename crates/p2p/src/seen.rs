//! The gossip seen-cache: SM3 of (topic, payload) for the last `capacity` messages, oldest
//! forgotten first. A message found here is neither delivered nor relayed again.

use std::collections::{HashSet, VecDeque};

use crypto::Digest;

use crate::Topic;

/// The id of a gossiped message (its key in the seen-cache and in announces and wants): SM3
/// of the topic's number and the payload.
pub fn message_id(topic: Topic, payload: &[u8]) -> Digest {
    crypto_sm::sm3::sm3_parts(&[&[topic.number()], payload])
}

#[derive(Debug)]
pub(crate) struct SeenCache {
    set: HashSet<Digest>,
    order: VecDeque<Digest>,
    capacity: usize,
}

impl SeenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        SeenCache {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `id`; returns whether it is new.
    pub(crate) fn insert(&mut self, id: Digest) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Whether `id` is remembered.
    pub(crate) fn contains(&self, id: &Digest) -> bool {
        self.set.contains(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_new_once_until_it_is_forgotten() {
        let mut c = SeenCache::new(2);
        let a = message_id(Topic::VOTE, b"a");
        let b = message_id(Topic::VOTE, b"b");
        let c3 = message_id(Topic::VOTE, b"c");
        assert!(c.insert(a));
        assert!(!c.insert(a));
        assert!(c.insert(b));
        assert!(c.insert(c3));
        // The oldest (a) was forgotten; the cache stays bounded.
        assert_eq!(c.len(), 2);
        assert!(c.insert(a));
        assert!(!c.insert(c3));
        assert!(c.contains(&a) && c.contains(&c3) && !c.contains(&b));
    }

    #[test]
    fn the_topic_is_part_of_the_key() {
        assert_ne!(
            message_id(Topic::VOTE, b"x"),
            message_id(Topic::TRANSACTION, b"x")
        );
        // Not a plain hash of the concatenation's parts in another order.
        assert_eq!(
            message_id(Topic::VOTE, b"x"),
            crypto_sm::sm3::sm3(&[2, b'x'])
        );
    }
}
