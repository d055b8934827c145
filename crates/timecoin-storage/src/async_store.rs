//! [`AsyncChainStore`]: the blocking store, callable from async code without blocking the runtime.

use std::sync::Arc;

use timecoin_types::{BlockHash, CommitCertificate, Height, OutPoint, TxOut, WellFormedBlock};

use crate::{
    ChainStore, ChainTip, ConsensusStateStore, StorageError, StoredBlock, UtxoPage, UtxoState,
};

/// A cheap, cloneable async handle to a store. Every call runs on tokio's blocking pool
/// (`spawn_blocking`), so sled's disk I/O and fsyncs never stall an async worker.
///
/// Calls must be made inside a tokio runtime; outside one they fail with [`StorageError::TaskFailed`].
/// Like the store, a call that returns `Ok` after writing has made the write durable.
#[derive(Debug)]
pub struct AsyncChainStore<S> {
    inner: Arc<S>,
}

impl<S> Clone for AsyncChainStore<S> {
    fn clone(&self) -> Self {
        AsyncChainStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Send + Sync + 'static> AsyncChainStore<S> {
    /// Wraps a store.
    pub fn new(store: Arc<S>) -> Self {
        AsyncChainStore { inner: store }
    }

    /// The blocking store, for synchronous callers (a CPU-pool validator, a test).
    pub fn blocking(&self) -> &Arc<S> {
        &self.inner
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&S) -> Result<T, StorageError> + Send + 'static,
    {
        let handle =
            tokio::runtime::Handle::try_current().map_err(|e| StorageError::TaskFailed {
                reason: format!("no tokio runtime: {e}"),
            })?;
        let store = Arc::clone(&self.inner);
        handle
            .spawn_blocking(move || work(&store))
            .await
            .map_err(|e| StorageError::TaskFailed {
                reason: e.to_string(),
            })?
    }
}

impl<S: ChainStore + 'static> AsyncChainStore<S> {
    /// [`ChainStore::apply_finalized`]: resolves once the block is durable.
    pub async fn apply_finalized(
        &self,
        block: Arc<WellFormedBlock>,
        certificate: CommitCertificate,
    ) -> Result<(), StorageError> {
        self.run(move |s| s.apply_finalized(&block, &certificate))
            .await
    }

    /// [`BlockStore::tip`](crate::BlockStore::tip).
    pub async fn tip(&self) -> Result<ChainTip, StorageError> {
        self.run(|s| s.tip()).await
    }

    /// [`BlockStore::base_height`](crate::BlockStore::base_height).
    pub async fn base_height(&self) -> Result<Height, StorageError> {
        self.run(|s| s.base_height()).await
    }

    /// [`BlockStore::block`](crate::BlockStore::block).
    pub async fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        self.run(move |s| s.block(height)).await
    }

    /// [`BlockStore::block_by_hash`](crate::BlockStore::block_by_hash).
    pub async fn block_by_hash(
        &self,
        hash: BlockHash,
    ) -> Result<Option<StoredBlock>, StorageError> {
        self.run(move |s| s.block_by_hash(&hash)).await
    }

    /// [`ChainStore::utxo`].
    pub async fn utxo(&self, outpoint: OutPoint) -> Result<Option<TxOut>, StorageError> {
        self.run(move |s| s.utxo(&outpoint)).await
    }

    /// [`ChainStore::utxo_state`].
    pub async fn utxo_state(&self) -> Result<UtxoState, StorageError> {
        self.run(|s| s.utxo_state()).await
    }

    /// [`ChainStore::utxo_page`].
    pub async fn utxo_page(
        &self,
        after: Option<OutPoint>,
        limit: usize,
    ) -> Result<UtxoPage, StorageError> {
        self.run(move |s| s.utxo_page(after.as_ref(), limit)).await
    }
}

impl<S: ConsensusStateStore + 'static> AsyncChainStore<S> {
    /// [`ConsensusStateStore::save_signed`]: resolves once the record is durable.
    pub async fn save_signed(&self, state: Vec<u8>) -> Result<(), StorageError> {
        self.run(move |s| s.save_signed(&state)).await
    }

    /// [`ConsensusStateStore::last_signed`].
    pub async fn last_signed(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.run(|s| s.last_signed()).await
    }

    /// [`ConsensusStateStore::append_wal`]: resolves once the entry is durable.
    pub async fn append_wal(&self, height: Height, entry: Vec<u8>) -> Result<(), StorageError> {
        self.run(move |s| s.append_wal(height, &entry)).await
    }

    /// [`ConsensusStateStore::replay`].
    pub async fn replay(&self, from_height: Height) -> Result<Vec<Vec<u8>>, StorageError> {
        self.run(move |s| s.replay(from_height)).await
    }

    /// [`ConsensusStateStore::prune_below`].
    pub async fn prune_below(&self, height: Height) -> Result<(), StorageError> {
        self.run(move |s| s.prune_below(height)).await
    }
}
