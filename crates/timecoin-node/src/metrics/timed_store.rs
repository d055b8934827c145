//! [`TimedStore`]: a chain store that times each block commit into the `storage_commit_seconds`
//! histogram.
//!
//! The engine applies blocks but reads no clock (it is sans-I/O, and the simulator runs the same code on
//! simulated time), so the time is taken here, around the store the engine is given.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use timecoin_crypto::Hash;
use timecoin_storage::{
    BlockStore, ChainStore, ChainTip, HostRecord, PruneReport, StorageError, StoredBlock,
    StoredHeader, UtxoPage, UtxoState,
};
use timecoin_types::{
    BlockHash, BlockHeader, CommitCertificate, Height, OutPoint, TxOut, TypesError, UtxoView,
    WellFormedBlock,
};

/// A [`ChainStore`] that forwards every call to the store it wraps and observes how long each
/// successful block commit took, in seconds.
///
/// Every method is forwarded by hand, the traits' defaulted ones included: left to its default, a
/// method would answer for this wrapper instead of the inner store (a store built from a snapshot
/// would report a base height of 0). The compiler flags a new required method but not a new defaulted
/// one, so a method added to [`BlockStore`], [`ChainStore`] or [`UtxoView`] must be forwarded here too.
pub struct TimedStore {
    inner: Arc<dyn ChainStore>,
    commits: Histogram,
}

impl TimedStore {
    /// Wraps `inner`, observing its commit times into `commits`.
    pub fn new(inner: Arc<dyn ChainStore>, commits: Histogram) -> Self {
        TimedStore { inner, commits }
    }

    /// Only commits that succeed are observed, so the count matches the blocks applied; a refused
    /// block returns before any durable write and would only blur the distribution.
    fn timed(&self, commit: impl FnOnce() -> Result<(), StorageError>) -> Result<(), StorageError> {
        let start = Instant::now();
        commit()?;
        self.commits.observe(start.elapsed().as_secs_f64());
        Ok(())
    }
}

impl std::fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStore").finish_non_exhaustive()
    }
}

impl UtxoView for TimedStore {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        self.inner.get_utxo(outpoint)
    }
}

impl BlockStore for TimedStore {
    fn tip(&self) -> Result<ChainTip, StorageError> {
        self.inner.tip()
    }

    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        self.inner.block(height)
    }

    fn header(&self, height: Height) -> Result<Option<StoredHeader>, StorageError> {
        self.inner.header(height)
    }

    fn body_floor(&self) -> Result<Height, StorageError> {
        self.inner.body_floor()
    }

    fn base_height(&self) -> Result<Height, StorageError> {
        self.inner.base_height()
    }

    fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StorageError> {
        self.inner.block_by_hash(hash)
    }

    fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>, StorageError> {
        self.inner.height_of(hash)
    }
}

impl ChainStore for TimedStore {
    fn apply_finalized(
        &self,
        block: &WellFormedBlock,
        certificate: &CommitCertificate,
    ) -> Result<(), StorageError> {
        self.timed(|| self.inner.apply_finalized(block, certificate))
    }

    fn apply_finalized_with(
        &self,
        block: &WellFormedBlock,
        certificate: &CommitCertificate,
        records: &[HostRecord<'_>],
    ) -> Result<(), StorageError> {
        self.timed(|| self.inner.apply_finalized_with(block, certificate, records))
    }

    fn host_record(&self, name: &str) -> Result<Option<(Height, Vec<u8>)>, StorageError> {
        self.inner.host_record(name)
    }

    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, StorageError> {
        self.inner.utxo(outpoint)
    }

    fn utxo_state(&self) -> Result<UtxoState, StorageError> {
        self.inner.utxo_state()
    }

    fn utxo_commitment_after(&self, block: &WellFormedBlock) -> Result<Hash, StorageError> {
        self.inner.utxo_commitment_after(block)
    }

    fn utxo_page(&self, after: Option<&OutPoint>, limit: usize) -> Result<UtxoPage, StorageError> {
        self.inner.utxo_page(after, limit)
    }

    fn prune_bodies(
        &self,
        below: Height,
        max_blocks: usize,
        keep: &dyn Fn(&BlockHeader, Option<&BlockHeader>) -> bool,
    ) -> Result<PruneReport, StorageError> {
        self.inner.prune_bodies(below, max_blocks, keep)
    }

    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        self.inner.size_on_disk()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use timecoin_storage::ChainDb;
    use timecoin_storage::testing::BlockFactory;

    use super::*;
    use crate::metrics::NodeMetrics;

    fn samples(metrics: &NodeMetrics) -> String {
        let text = metrics.encode().unwrap();
        text.lines()
            .find(|l| l.starts_with("timecoin_storage_commit_seconds_count "))
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn a_block_applied_through_the_wrapper_is_one_sample_and_a_refused_one_none() {
        let factory = BlockFactory::local(1);
        let db: Arc<dyn ChainStore> = Arc::new(ChainDb::memory(factory.genesis()).unwrap());
        let metrics = NodeMetrics::new();
        let store = TimedStore::new(Arc::clone(&db), metrics.commit_seconds());
        assert_eq!(samples(&metrics), "timecoin_storage_commit_seconds_count 0");

        let (block, certificate) = factory.next_block(&store, 1).unwrap();
        store
            .apply_finalized_with(&block, &certificate, &[])
            .unwrap();
        assert_eq!(samples(&metrics), "timecoin_storage_commit_seconds_count 1");
        // Reads reach the inner store: the wrapper sees the block it applied.
        assert_eq!(store.tip().unwrap(), db.tip().unwrap());
        assert_eq!(store.tip().unwrap().height, 1);

        // The same block again no longer extends the tip: refused, and not a commit.
        assert!(store.apply_finalized(&block, &certificate).is_err());
        assert_eq!(samples(&metrics), "timecoin_storage_commit_seconds_count 1");
    }
}
