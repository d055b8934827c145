//! Recently rejected transactions, refused again without re-validation.

use std::collections::VecDeque;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use timecoin_crypto::Hash;
use timecoin_types::TypesError;

/// Why a transaction was rejected, and until when that is remembered.
#[derive(Clone, Debug)]
struct Rejection {
    expires_at: Duration,
    reason: TypesError,
}

/// Remembers recently rejected transactions by the hash of their full signed encoding.
///
/// Bounded: at most `capacity` entries (seed: 1000), each kept at most `ttl` (seed: 1 hour); when full,
/// the oldest entry goes first. Lookups touch only a sharded map, so the accept path never takes a
/// global lock; recording a rejection takes a short mutex on the insertion-order queue.
///
/// The key covers the signatures on purpose. A transaction id does not (re-signing keeps the id), so a
/// cache keyed by id would let anyone front-run a valid transaction with a copy whose signature is
/// mangled, and every node would then refuse the real one for the whole TTL.
#[derive(Debug)]
pub struct RejectionCache {
    entries: DashMap<Hash, Rejection>,
    /// Insertion order, for evicting the oldest; may hold superseded duplicates, which only makes the
    /// effective capacity smaller, never larger.
    order: Mutex<VecDeque<(Hash, Duration)>>,
    capacity: usize,
    ttl: Duration,
}

impl RejectionCache {
    /// A cache of at most `capacity` entries that forgets each after `ttl`. A capacity of 0 disables it.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        RejectionCache {
            entries: DashMap::with_capacity(capacity.min(1 << 16)),
            order: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 16))),
            capacity,
            ttl,
        }
    }

    /// The reason `key` was rejected, if that was less than the TTL before `now`.
    pub fn check(&self, key: &Hash, now: Duration) -> Option<TypesError> {
        let hit = self.entries.get(key).map(|r| r.clone())?;
        if hit.expires_at > now {
            Some(hit.reason)
        } else {
            self.entries
                .remove_if(key, |_, r| r.expires_at == hit.expires_at);
            None
        }
    }

    /// Remembers that `key` was rejected for `reason` at `now`.
    pub fn record(&self, key: Hash, reason: TypesError, now: Duration) {
        if self.capacity == 0 {
            return;
        }
        let expires_at = now.saturating_add(self.ttl);
        let mut order = self.order.lock();
        // Forget what has expired, then make room; both pop from the front, which holds the oldest.
        while let Some((old, old_expiry)) = order.front().copied() {
            if old_expiry > now && order.len() < self.capacity {
                break;
            }
            order.pop_front();
            self.entries
                .remove_if(&old, |_, r| r.expires_at == old_expiry);
        }
        order.push_back((key, expires_at));
        self.entries.insert(key, Rejection { expires_at, reason });
    }

    /// Entries held, expired ones included until they are purged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::{HashDomain, hash};

    fn key(i: u32) -> Hash {
        hash(HashDomain::Custom("rejection cache test"), &i.to_le_bytes())
    }

    const REASON: TypesError = TypesError::NoInputs;
    const TTL: Duration = Duration::from_secs(3600);

    #[test]
    fn a_rejection_is_remembered_until_its_ttl_passes() {
        let cache = RejectionCache::new(10, TTL);
        cache.record(key(1), REASON, Duration::ZERO);
        assert_eq!(
            cache.check(&key(1), Duration::from_secs(3599)),
            Some(REASON)
        );
        assert_eq!(cache.check(&key(1), TTL), None);
        assert!(cache.is_empty(), "an expired hit is purged");
        assert_eq!(cache.check(&key(2), Duration::ZERO), None);
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_entry_first() {
        let cache = RejectionCache::new(3, TTL);
        for i in 0..5 {
            cache.record(key(i), REASON, Duration::from_secs(u64::from(i)));
            assert!(cache.len() <= 3);
        }
        let now = Duration::from_secs(5);
        assert_eq!(cache.check(&key(0), now), None);
        assert_eq!(cache.check(&key(1), now), None);
        for i in 2..5 {
            assert_eq!(cache.check(&key(i), now), Some(REASON), "entry {i}");
        }
    }

    #[test]
    fn re_recording_refreshes_the_expiry_and_stays_bounded() {
        let cache = RejectionCache::new(2, TTL);
        for t in 0..100u64 {
            cache.record(key(7), REASON, Duration::from_secs(t * 60));
            assert!(cache.len() <= 2);
        }
        let last = Duration::from_secs(99 * 60);
        assert_eq!(cache.check(&key(7), last + TTL / 2), Some(REASON));
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = RejectionCache::new(0, TTL);
        cache.record(key(1), REASON, Duration::ZERO);
        assert_eq!(cache.check(&key(1), Duration::ZERO), None);
    }
}
