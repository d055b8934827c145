//! The pool's limits and policies, with the seed's defaults.

use std::time::Duration;

/// Default most transactions in the pool (seed: 10,000).
pub const DEFAULT_MAX_TRANSACTIONS: usize = 10_000;
/// Default most encoded bytes in the pool (seed: 300 MB, decimal).
pub const DEFAULT_MAX_BYTES: usize = 300_000_000;
/// Default rejection-cache capacity (seed: 1000 entries).
pub const DEFAULT_REJECTION_CACHE_ENTRIES: usize = 1_000;
/// Default time a rejection is remembered (seed: 1 hour).
pub const DEFAULT_REJECTION_TTL: Duration = Duration::from_secs(60 * 60);
/// Default extra fee, per byte of the replacement, that a replacement pays on top of what it replaces.
pub const DEFAULT_REPLACEMENT_FEE_RATE: u64 = 1;
/// Default most pooled transactions one replacement may evict.
pub const DEFAULT_MAX_REPLACEMENTS: usize = 100;
/// Default smallest chunk of signatures one rayon task verifies in a batch insert.
pub const DEFAULT_BATCH_MIN_CHUNK: usize = 128;

/// Hard ceiling on [`Config::max_transactions`]: the pool counts transactions and bytes in one atomic
/// word (24 bits of count), so a reservation checks both limits at once.
pub const MAX_TRANSACTIONS_CEILING: usize = (1 << 24) - 1;
/// Hard ceiling on [`Config::max_bytes`] (40 bits of bytes in the same word, about 1 TB).
pub const MAX_BYTES_CEILING: usize = (1 << 40) - 1;

/// Limits and policies of a [`TxPool`](crate::TxPool). Every field has the seed's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most transactions pooled at once. Default [`DEFAULT_MAX_TRANSACTIONS`]; values above
    /// [`MAX_TRANSACTIONS_CEILING`] are capped to it.
    pub max_transactions: usize,
    /// Most encoded transaction bytes pooled at once (the wire size; the in-memory overhead per
    /// transaction is a few hundred bytes on top). Default [`DEFAULT_MAX_BYTES`]; values above
    /// [`MAX_BYTES_CEILING`] are capped to it.
    pub max_bytes: usize,
    /// Entries in the rejection cache; 0 disables it. Default [`DEFAULT_REJECTION_CACHE_ENTRIES`].
    pub rejection_cache_entries: usize,
    /// How long a rejection is remembered. Default [`DEFAULT_REJECTION_TTL`].
    pub rejection_ttl: Duration,
    /// Satoshis per byte of its own size that a replacement must pay on top of the fees of everything it
    /// replaces (the relay cost of the replacement itself). Default [`DEFAULT_REPLACEMENT_FEE_RATE`].
    pub replacement_fee_rate: u64,
    /// Most pooled transactions a single replacement may evict; more makes it a plain conflict. Bounds
    /// the work one incoming transaction can cause. Default [`DEFAULT_MAX_REPLACEMENTS`].
    pub max_replacements: usize,
    /// Smallest number of signatures a rayon task verifies in a batch insert; the batch equation's
    /// speed-up shrinks with small chunks. Default [`DEFAULT_BATCH_MIN_CHUNK`].
    pub batch_min_chunk: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            max_bytes: DEFAULT_MAX_BYTES,
            rejection_cache_entries: DEFAULT_REJECTION_CACHE_ENTRIES,
            rejection_ttl: DEFAULT_REJECTION_TTL,
            replacement_fee_rate: DEFAULT_REPLACEMENT_FEE_RATE,
            max_replacements: DEFAULT_MAX_REPLACEMENTS,
            batch_min_chunk: DEFAULT_BATCH_MIN_CHUNK,
        }
    }
}

impl Config {
    /// The limits as the pool applies them (capped to the ceilings).
    pub(crate) fn effective_limits(&self) -> (u64, u64) {
        (
            self.max_transactions.min(MAX_TRANSACTIONS_CEILING) as u64,
            self.max_bytes.min(MAX_BYTES_CEILING) as u64,
        )
    }
}
