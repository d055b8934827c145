//! The bounded in-memory UTXO cache in front of the engine.

use std::collections::{BTreeMap, HashMap};

use timecoin_types::{OutPoint, TxOut};

/// What a cache lookup can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The output is unspent.
    Unspent(TxOut),
    /// The cache holds the whole set, so the output is not unspent.
    Absent,
    /// The cache cannot tell; ask the engine.
    Unknown,
}

/// Unspent outputs that are also on disk, at most `capacity` of them.
///
/// Bound: `capacity` entries (the config's [`utxo_cache_entries`](crate::StorageConfig::utxo_cache_entries),
/// about 192 bytes each). Eviction is by insertion order, oldest first: outputs created by recent blocks
/// are the ones about to be spent, while a coin that has sat unspent for long is cheap to fetch once.
///
/// Invariant: every entry is in the engine's committed UTXO set, and while `complete` holds the cache *is*
/// that set. The chain store only changes the cache after the block's batch is durable, under the same
/// lock that readers take, so the cache is never ahead of the disk.
#[derive(Debug)]
pub(crate) struct UtxoCache {
    entries: HashMap<OutPoint, (TxOut, u64)>,
    /// Insertion sequence → outpoint, oldest first: the eviction order.
    order: BTreeMap<u64, OutPoint>,
    next_seq: u64,
    capacity: usize,
    complete: bool,
}

impl UtxoCache {
    /// An empty cache for an empty set (so it is complete).
    pub(crate) fn new(capacity: usize) -> Self {
        UtxoCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity,
            complete: true,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// True while the cache holds every unspent output.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Marks that outputs exist on disk that were never loaded.
    pub(crate) fn mark_incomplete(&mut self) {
        self.complete = false;
    }

    pub(crate) fn lookup(&self, op: &OutPoint) -> Lookup {
        match self.entries.get(op) {
            Some((out, _)) => Lookup::Unspent(*out),
            None if self.complete => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    /// Adds an output known to be unspent on disk, evicting the oldest entries past the bound.
    pub(crate) fn insert(&mut self, op: OutPoint, out: TxOut) {
        if self.capacity == 0 {
            self.complete = false;
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some((_, old_seq)) = self.entries.insert(op, (out, seq)) {
            self.order.remove(&old_seq);
        }
        self.order.insert(seq, op);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.complete = false;
        }
    }

    /// Drops a spent output.
    pub(crate) fn remove(&mut self, op: &OutPoint) {
        if let Some((_, seq)) = self.entries.remove(op) {
            self.order.remove(&seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::{Address, Hash};
    use timecoin_types::{Amount, TxId};

    fn op(i: u8) -> OutPoint {
        OutPoint {
            txid: TxId(Hash::from_bytes([i; 32])),
            vout: 0,
        }
    }

    fn out(sat: u64) -> TxOut {
        TxOut {
            amount: Amount::from_sat(sat),
            address: Address::from_bytes([7; 32]),
        }
    }

    #[test]
    fn a_complete_cache_answers_misses_without_the_disk() {
        let mut c = UtxoCache::new(4);
        c.insert(op(1), out(1000));
        assert_eq!(c.lookup(&op(1)), Lookup::Unspent(out(1000)));
        assert_eq!(c.lookup(&op(2)), Lookup::Absent);
        c.remove(&op(1));
        assert_eq!(c.lookup(&op(1)), Lookup::Absent);
    }

    #[test]
    fn overflow_evicts_the_oldest_and_stops_answering_misses() {
        let mut c = UtxoCache::new(2);
        c.insert(op(1), out(1));
        c.insert(op(2), out(2));
        c.insert(op(3), out(3));
        assert_eq!(c.len(), 2);
        assert!(!c.is_complete());
        assert_eq!(c.lookup(&op(1)), Lookup::Unknown);
        assert_eq!(c.lookup(&op(3)), Lookup::Unspent(out(3)));
        assert_eq!(c.order.len(), c.entries.len());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = UtxoCache::new(0);
        c.insert(op(1), out(1));
        assert_eq!(c.lookup(&op(1)), Lookup::Unknown);
    }
}
