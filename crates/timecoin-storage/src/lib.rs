//! TimeCoin storage: finalized blocks with their certificates, the UTXO set with its multiset-hash
//! commitment, and consensus state, behind traits, in memory or on disk (sled), crash-safe.
//!
//! # Examples
//! Open an in-memory store at genesis, apply a finalized block, read the result.
//! ```
//! use timecoin_crypto::{Address, Hash};
//! use timecoin_storage::{BlockStore, ChainDb, ChainStore};
//! use timecoin_types::{
//!     Amount, Block, BlockHeader, CommitCertificate, Genesis, TxBuilder, Vote, VotePhase,
//! };
//!
//! let genesis = Genesis::local(4);
//! let store = ChainDb::memory(&genesis)?;
//! assert_eq!(store.tip()?.height, 0);
//!
//! // Validator 0 pays 5 TIME to validator 1, keeps the change, and pays 1 TIME in fees.
//! let alice = Genesis::local_validator_key(0);
//! let bob = Address::from_public_key(&Genesis::local_validator_key(1).public_key());
//! let (coin, out) = genesis.utxos()[0];
//! let change = out.amount.checked_sub(Amount::from_time(6).unwrap()).unwrap();
//! let tx = TxBuilder::new(genesis.params.chain_id)
//!     .input(coin, out.amount, &alice)
//!     .output(bob, Amount::from_time(5).unwrap())
//!     .output(out.address, change)
//!     .sign();
//!
//! // The leader seals the body into the header (transaction and witness roots), asks the store for the
//! // commitment the block leaves, writes it in, and seals again.
//! let tip = store.tip()?;
//! let draft = Block {
//!     header: BlockHeader {
//!         chain_id: genesis.params.chain_id,
//!         height: 1,
//!         view: 0,
//!         parent: tip.hash,
//!         timestamp_ms: genesis.timestamp_ms + 1_000,
//!         proposer: alice.public_key(),
//!         tx_root: Hash::ZERO,
//!         witness_root: Hash::ZERO,
//!         utxo_commitment: Hash::ZERO,
//!         validators_hash: Hash::ZERO,
//!     },
//!     transactions: vec![tx.clone()],
//! }
//! .seal();
//! let mut block = draft.clone().into_block();
//! block.header.utxo_commitment = store.utxo_commitment_after(&draft)?;
//! let block = block.seal();
//!
//! // Consensus finalizes it: Commit votes from the validators form the certificate.
//! let mut signatures: Vec<_> = (0..4)
//!     .map(|i| {
//!         let key = Genesis::local_validator_key(i);
//!         let vote = Vote::sign(&key, genesis.params.chain_id, VotePhase::Commit, 1, 0, Some(block.hash()));
//!         (vote.voter, vote.signature)
//!     })
//!     .collect();
//! signatures.sort_by_key(|(voter, _)| *voter);
//! let certificate = CommitCertificate { height: 1, view: 0, block_hash: block.hash(), signatures };
//!
//! // One atomic, durable batch: inputs spent, outputs added, block, certificate, tip, commitment.
//! store.apply_finalized(&block, &certificate)?;
//! assert_eq!(store.tip()?.height, 1);
//! assert_eq!(store.utxo(&coin)?, None);
//! let paid = timecoin_types::OutPoint { txid: tx.txid(), vout: 0 };
//! assert_eq!(store.utxo(&paid)?.map(|o| o.address), Some(bob));
//! assert_eq!(store.block_by_hash(&block.hash())?.unwrap().certificate, Some(certificate));
//! assert_eq!(store.utxo_state()?.hash.checksum(), block.header.utxo_commitment);
//! # Ok::<(), timecoin_storage::StorageError>(())
//! ```
//!
//! # Design
//! - [`BlockStore`], [`ChainStore`] and [`ConsensusStateStore`] are the boundary; [`ChainDb`] implements
//!   all three over any [`KvEngine`] ([`MemoryEngine`], [`SledEngine`], or one of yours).
//! - A block is one engine batch, flushed before `apply_finalized` returns; the in-memory UTXO cache and
//!   tip change only afterwards, so memory is never ahead of the disk.
//! - Every stored value carries a checksum over its key and bytes, and decodes canonically; anything else
//!   is [`StorageError::Corruption`].
//! - The UTXO set's [`LtHash`](timecoin_crypto::LtHash) is kept up to date block by block and checked
//!   against each header's `utxo_commitment`; [`UtxoSyncCheck`] checks a set received in pages, and
//!   [`ChainDb::import_snapshot`] writes one into a fresh store ([`SnapshotImport`]) that becomes a chain
//!   based at the snapshot's block only once the whole set checks out.
//! - Everything blocks; [`AsyncChainStore`] runs it on tokio's blocking pool.
//!
//! ## Feature flags
//! - `test-support`: `testing::BlockFactory`, which builds realistic signed, certified blocks for a
//!   store of a local chain. For tests and benches; off by default.

#![forbid(unsafe_code)]

mod async_store;
mod cache;
mod chain;
mod commitment;
mod config;
mod consensus_state;
pub mod engine;
mod error;
mod import;
mod prune;
mod record;
mod scan;
mod sync;
pub mod traits;
mod wal;

#[cfg(feature = "test-support")]
pub mod testing;

pub use async_store::AsyncChainStore;
pub use chain::{ChainDb, ChainView, IntegrityReport};
pub use config::{
    BackendKind, DEFAULT_CACHE_BYTES, DEFAULT_FLUSH_INTERVAL, DEFAULT_UTXO_PAGE,
    DEFAULT_WAL_MAX_BYTES, DEFAULT_WAL_MAX_ENTRIES, MAX_UTXO_PAGE, MEMORY_SHARE_DIVISOR,
    StorageConfig, ThroughputMode, UTXO_CACHE_ENTRY_BYTES,
};
pub use consensus_state::{MAX_SIGNED_STATE_BYTES, MAX_WAL_ENTRY_BYTES};
pub use engine::{AnyEngine, BatchOp, KvEngine, KvPair, MemoryEngine, SledEngine, WriteBatch};
pub use error::StorageError;
pub use import::{CertifiedBase, ImportRefused, SnapshotImport, StoreContents};
pub use record::{MAX_HOST_RECORD_BYTES, MAX_HOST_RECORD_NAME};
pub use sync::UtxoSyncCheck;
pub use traits::{
    BlockStore, ChainStore, ChainTip, ConsensusStateStore, HostRecord, PruneReport, StoredBlock,
    StoredHeader, UtxoPage, UtxoState,
};
