//! Counters for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the pool's size and of what it has done since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// Transactions pooled now.
    pub transactions: u64,
    /// Encoded bytes pooled now.
    pub bytes: u64,
    /// Transactions accepted.
    pub accepted: u64,
    /// Rejected for breaking a chain rule.
    pub rejected_invalid: u64,
    /// Refused from the rejection cache without re-validation.
    pub rejected_recently: u64,
    /// Rejected as already pooled.
    pub rejected_duplicate: u64,
    /// Rejected for conflicting with pooled transactions it could not replace.
    pub rejected_conflict: u64,
    /// Rejected because the pool was full of higher fee rates.
    pub rejected_full: u64,
    /// Evicted to make room for a higher fee rate.
    pub evicted: u64,
    /// Replaced by a conflicting transaction under the fee-bump rule.
    pub replaced: u64,
    /// Dropped because a finalized block included them.
    pub finalized_included: u64,
    /// Dropped because a finalized block spent one of their inputs.
    pub finalized_conflicting: u64,
    /// Block templates built.
    pub templates: u64,
}

/// The live counters behind [`MempoolStats`]; relaxed atomics, as metrics need no ordering.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected_invalid: AtomicU64,
    pub(crate) rejected_recently: AtomicU64,
    pub(crate) rejected_duplicate: AtomicU64,
    pub(crate) rejected_conflict: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) replaced: AtomicU64,
    pub(crate) finalized_included: AtomicU64,
    pub(crate) finalized_conflicting: AtomicU64,
    pub(crate) templates: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, transactions: u64, bytes: u64) -> MempoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MempoolStats {
            transactions,
            bytes,
            accepted: get(&self.accepted),
            rejected_invalid: get(&self.rejected_invalid),
            rejected_recently: get(&self.rejected_recently),
            rejected_duplicate: get(&self.rejected_duplicate),
            rejected_conflict: get(&self.rejected_conflict),
            rejected_full: get(&self.rejected_full),
            evicted: get(&self.evicted),
            replaced: get(&self.replaced),
            finalized_included: get(&self.finalized_included),
            finalized_conflicting: get(&self.finalized_conflicting),
            templates: get(&self.templates),
        }
    }
}
