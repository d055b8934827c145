//! De-duplication of gossip: message digests and bounded sets of them.
//!
//! A digest is a 64-bit SipHash of the channel and the bytes under a key drawn at random when the
//! network starts. Peers cannot predict the key, so they cannot craft two messages with one digest to
//! make us suppress the second. A real collision is a one-in-2^64 event whose cost is one message not
//! forwarded on one link, which gossip over the other links repairs.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use crate::Channel;

/// Digests each peer is remembered to hold (it sent us the message, or we sent it). Bound per peer, so
/// 256 peers hold at most 256 × 8,192 digests (~ 16 MB with the set's overhead).
pub const KNOWN_PER_PEER: usize = 8_192;

/// Digests of transactions already delivered to the engine, so the same transaction arriving from
/// several peers reaches the engine once.
pub const SEEN_TRANSACTIONS: usize = 32_768;

/// The keyed digest function of one network.
#[derive(Clone, Debug, Default)]
pub struct Digester(RandomState);

impl Digester {
    /// A digester with a fresh random key.
    pub fn new() -> Self {
        Digester(RandomState::new())
    }

    /// The digest of `bytes` on `channel` (the same bytes on two channels are two messages).
    pub fn digest(&self, channel: Channel, bytes: &[u8]) -> u64 {
        self.0.hash_one((channel.tag(), bytes))
    }
}

/// A set of digests that forgets the oldest past its capacity.
#[derive(Debug)]
pub struct BoundedSet {
    capacity: usize,
    members: HashSet<u64>,
    order: VecDeque<u64>,
}

impl BoundedSet {
    /// An empty set holding at most `capacity` digests.
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            capacity,
            members: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `digest` is held.
    pub fn contains(&self, digest: u64) -> bool {
        self.members.contains(&digest)
    }

    /// Adds `digest`; returns false if it was already held.
    pub fn insert(&mut self, digest: u64) -> bool {
        if !self.members.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.members.remove(&old);
            }
        }
        true
    }

    /// Digests held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_forgets_the_oldest_past_its_capacity() {
        let mut set = BoundedSet::new(3);
        for d in 0..5 {
            assert!(set.insert(d));
        }
        assert!(!set.insert(4));
        assert_eq!(set.len(), 3);
        assert!(!set.contains(0) && !set.contains(1) && set.contains(2));
    }

    #[test]
    fn a_message_on_another_channel_is_another_message() {
        let d = Digester::new();
        assert_eq!(d.digest(Channel::Sync, b"x"), d.digest(Channel::Sync, b"x"));
        assert_ne!(
            d.digest(Channel::Sync, b"x"),
            d.digest(Channel::Consensus, b"x")
        );
    }
}
