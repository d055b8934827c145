//! The pool's transactions ordered by fee rate, for choosing whom to evict.

use std::collections::BTreeSet;

use parking_lot::Mutex;
use timecoin_types::TxId;

use crate::FeeRate;

/// Shards; a power of two at least the core count keeps two inserting threads on different mutexes.
const SHARDS: usize = 16;

/// A position in the eviction order: lowest fee rate first, ties by txid so the order is total and the
/// same on every node.
pub(crate) type Ranked = (FeeRate, TxId);

/// Every pooled transaction's (fee rate, txid), split into shards by txid, each a sorted set behind its
/// own mutex. Inserting or removing locks one shard for one B-tree operation; finding the cheapest
/// transactions looks at the low end of every shard in turn, never holding two locks.
///
/// Bounded by the pool: it holds exactly the pooled transactions.
#[derive(Debug)]
pub(crate) struct FeeIndex {
    shards: Vec<Mutex<BTreeSet<Ranked>>>,
}

impl FeeIndex {
    pub(crate) fn new() -> Self {
        FeeIndex {
            shards: (0..SHARDS).map(|_| Mutex::new(BTreeSet::new())).collect(),
        }
    }

    fn shard(&self, txid: &TxId) -> Option<&Mutex<BTreeSet<Ranked>>> {
        let byte = txid.0.as_bytes().first().copied().unwrap_or(0);
        self.shards.get(usize::from(byte) % SHARDS)
    }

    pub(crate) fn insert(&self, rate: FeeRate, txid: TxId) {
        if let Some(shard) = self.shard(&txid) {
            shard.lock().insert((rate, txid));
        }
    }

    pub(crate) fn remove(&self, rate: FeeRate, txid: TxId) {
        if let Some(shard) = self.shard(&txid) {
            shard.lock().remove(&(rate, txid));
        }
    }

    /// The lowest-ranked transaction, if any.
    pub(crate) fn lowest(&self) -> Option<Ranked> {
        self.shards
            .iter()
            .filter_map(|s| s.lock().first().copied())
            .min()
    }

    /// The shortest prefix of the global eviction order, among transactions with a rate strictly below
    /// `below` and not `excluded`, that frees at least `count` transactions and `bytes` bytes; `None` if
    /// all of them together do not.
    ///
    /// Each shard contributes its own cheapest entries until they alone would cover the need, so the
    /// global prefix is always among the contributions.
    pub(crate) fn cheapest_covering(
        &self,
        below: FeeRate,
        count: u64,
        bytes: u64,
        excluded: impl Fn(&TxId) -> bool,
    ) -> Option<Vec<Ranked>> {
        if count == 0 && bytes == 0 {
            return Some(Vec::new());
        }
        let mut candidates: Vec<Ranked> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock();
            let (mut n, mut b) = (0u64, 0u64);
            for ranked in shard.iter() {
                if n >= count && b >= bytes {
                    break;
                }
                if ranked.0 >= below {
                    break;
                }
                if excluded(&ranked.1) {
                    continue;
                }
                n += 1;
                b = b.saturating_add(ranked.0.size());
                candidates.push(*ranked);
            }
        }
        candidates.sort_unstable();
        let (mut n, mut b) = (0u64, 0u64);
        let mut chosen = Vec::new();
        for ranked in candidates {
            if n >= count && b >= bytes {
                break;
            }
            n += 1;
            b = b.saturating_add(ranked.0.size());
            chosen.push(ranked);
        }
        (n >= count && b >= bytes).then_some(chosen)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::{HashDomain, hash};
    use timecoin_types::Amount;

    fn txid(i: u32) -> TxId {
        TxId(hash(HashDomain::Custom("fee index test"), &i.to_le_bytes()))
    }

    fn rate(fee: u64, size: usize) -> FeeRate {
        FeeRate::new(Amount::from_sat(fee), size)
    }

    #[test]
    fn picks_the_globally_cheapest_prefix_across_shards() {
        let index = FeeIndex::new();
        // 64 transactions of 100 bytes paying 1..=64 sat: spread over every shard.
        for i in 0..64u32 {
            index.insert(rate(u64::from(i) + 1, 100), txid(i));
        }
        assert_eq!(index.len(), 64);
        assert_eq!(index.lowest().map(|r| r.1), Some(txid(0)));
        let chosen = index
            .cheapest_covering(rate(1000, 100), 3, 250, |_| false)
            .unwrap();
        let ids: Vec<TxId> = chosen.iter().map(|r| r.1).collect();
        assert_eq!(ids, vec![txid(0), txid(1), txid(2)]);
        // Bytes can demand more than the count does.
        let chosen = index
            .cheapest_covering(rate(1000, 100), 1, 401, |_| false)
            .unwrap();
        assert_eq!(chosen.len(), 5);
    }

    #[test]
    fn never_picks_a_rate_at_or_above_the_newcomer_nor_an_excluded_one() {
        let index = FeeIndex::new();
        for i in 0..10u32 {
            index.insert(rate(u64::from(i) * 10, 100), txid(i));
        }
        // Rates 0, 10, 20 are below 25; only two of them may go if txid(0) is excluded.
        assert!(
            index
                .cheapest_covering(rate(25, 100), 3, 0, |t| *t == txid(0))
                .is_none()
        );
        let chosen = index
            .cheapest_covering(rate(25, 100), 2, 0, |t| *t == txid(0))
            .unwrap();
        assert_eq!(
            chosen.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![txid(1), txid(2)]
        );
        // Equal rate is not enough to evict.
        assert!(
            index
                .cheapest_covering(rate(0, 100), 1, 0, |_| false)
                .is_none()
        );
        index.remove(rate(0, 100), txid(0));
        assert_eq!(index.len(), 9);
    }
}
