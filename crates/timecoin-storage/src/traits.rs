//! The storage boundary: what the node, consensus and state sync ask of a store, written for whoever
//! implements one.
//!
//! [`ChainDb`](crate::ChainDb) implements all three traits over any [`KvEngine`](crate::KvEngine); a
//! third party can instead implement them directly (a remote store, a different layout) and the node
//! accepts it through `Arc<dyn ChainStore>` and `Arc<dyn ConsensusStateStore>`.

use timecoin_crypto::{Hash, LtHash};
use timecoin_types::{
    Block, BlockHash, BlockHeader, CommitCertificate, Height, OutPoint, TxOut, UtxoView,
    WellFormedBlock,
};

use crate::StorageError;

/// The last finalized block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    /// Its height (0 right after genesis).
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
}

/// A finalized block as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// The proof that it is final. `None` exactly for block 0: genesis is final by definition, nobody
    /// voted on it.
    pub certificate: Option<CommitCertificate>,
}

/// A finalized block's header with its certificate: what is left of a block whose body was pruned, and
/// all a header walk (state sync) or a certificate check needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHeader {
    /// The header; its hash is the block's.
    pub header: BlockHeader,
    /// The certificate; `None` exactly for block 0.
    pub certificate: Option<CommitCertificate>,
}

/// What one [`ChainStore::prune_bodies`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Bodies deleted.
    pub pruned: u64,
    /// Bodies the caller's rule kept.
    pub kept: u64,
    /// Bytes of bodies deleted.
    pub bytes: u64,
    /// The body floor after the call: every block from it up to the tip holds its body.
    pub floor: Height,
}

/// The UTXO set's summary at the tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtxoState {
    /// The tip the summary describes.
    pub tip: ChainTip,
    /// Unspent outputs in the set.
    pub count: u64,
    /// The multiset hash; its [`LtHash::checksum`] equals the tip header's `utxo_commitment`.
    pub hash: LtHash,
}

/// One page of the UTXO set for state sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtxoPage {
    /// The tip the page was read at. Pages read at different tips do not form one set: a syncing node
    /// that sees the tip move restarts (and [`UtxoSyncCheck`](crate::UtxoSyncCheck) refuses the mix).
    pub tip: ChainTip,
    /// Outputs in ascending outpoint order, all greater than the cursor the page was asked with.
    pub entries: Vec<(OutPoint, TxOut)>,
    /// Where the next page starts (the last outpoint of this one), or `None` when this page reached the
    /// end of the set.
    pub next: Option<OutPoint>,
}

/// Durable home of finalized blocks and their certificates.
///
/// An implementation must guarantee:
/// - headers `base_height()..=tip().height` are all present, each with its certificate (none for
///   genesis), each reachable by height and by hash, each the parent of the next; blocks below the base
///   are absent (`None`), as if never stored: a store built from a snapshot starts at the snapshot's
///   certified block, which it keeps with its certificate so it can serve it and link the next block;
/// - bodies `body_floor()..=tip().height` are all present; below the floor a block's body may have been
///   pruned ([`ChainStore::prune_bodies`]), and then [`block`](Self::block) answers `None` while
///   [`header`](Self::header) still answers;
/// - a block is visible only once its whole batch is durable (see [`ChainStore::apply_finalized`]);
/// - reads report damage as [`StorageError::Corruption`] and never return a block other than the one
///   asked for.
///
/// It may assume that blocks arrive already finalized and validated by consensus.
pub trait BlockStore: Send + Sync {
    /// The last finalized block.
    fn tip(&self) -> Result<ChainTip, StorageError>;

    /// The block at `height` with its certificate; `None` above the tip, below the base, and where the
    /// body was pruned.
    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError>;

    /// The header at `height` with its certificate, whether or not the body is still held; `None`
    /// above the tip and below the base.
    fn header(&self, height: Height) -> Result<Option<StoredHeader>, StorageError> {
        Ok(self.block(height)?.map(|stored| StoredHeader {
            header: stored.block.header,
            certificate: stored.certificate,
        }))
    }

    /// The lowest height from which every block up to the tip holds its body. The default, the base,
    /// is right for any store that never prunes.
    fn body_floor(&self) -> Result<Height, StorageError> {
        self.base_height()
    }

    /// The lowest block held: 0 for a store grown from genesis, `H` for one built from the UTXO snapshot
    /// of block `H`. It never changes once the store exists. The default, 0, is right for any store that
    /// keeps the whole chain.
    fn base_height(&self) -> Result<Height, StorageError> {
        Ok(0)
    }

    /// The block with this hash; `None` if no finalized block has it.
    fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StorageError>;

    /// The height of the finalized block with this hash.
    fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>, StorageError>;
}

/// A named record of the host's own, written with a block by
/// [`ChainStore::apply_finalized_with`]. The store keeps the bytes opaque.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRecord<'a> {
    /// Its name (at most [`MAX_HOST_RECORD_NAME`](crate::MAX_HOST_RECORD_NAME) bytes).
    pub name: &'a str,
    /// Its value (at most [`MAX_HOST_RECORD_BYTES`](crate::MAX_HOST_RECORD_BYTES) bytes).
    pub value: &'a [u8],
}

/// Durable home of the chain: its blocks and the UTXO set they leave, with the set's multiset hash.
///
/// An implementation must guarantee:
/// - **Atomicity**: [`apply_finalized`](Self::apply_finalized) spends the block's inputs, adds its
///   outputs, and writes the block, its certificate, the new tip and the new multiset hash in one batch.
///   After a crash at any moment, either all of it is visible or none of it.
/// - **Acknowledged means durable**: when `apply_finalized` returns `Ok`, the block survives a crash; the
///   caller may then report it final.
/// - **Consistency**: the set's [`LtHash`] checksum always equals the tip header's `utxo_commitment`
///   (a block whose header says otherwise is refused); [`UtxoView`] reads answer from the tip's set and
///   return `Err` (never `None`) when they cannot tell.
/// - **Determinism**: [`utxo_page`](Self::utxo_page) walks outpoints in ascending order, so two nodes at
///   one tip serve identical pages.
///
/// It may assume one caller applies blocks (the node's engine), in height order.
pub trait ChainStore: BlockStore + UtxoView {
    /// Applies a finalized block atomically and durably. Only a [`WellFormedBlock`] gets here, so the
    /// body stored is the one the header (and the certificate) commit to.
    ///
    /// Refuses, changing nothing, a block that does not extend the tip, a certificate for another block,
    /// and a block whose changes the set cannot take consistently: one spending an output the set does
    /// not hold ([`MissingInput`](StorageError::MissingInput)), one transaction twice
    /// ([`DuplicateTxInBlock`](StorageError::DuplicateTxInBlock)), one outpoint spent twice, including an
    /// output created earlier in the block ([`DoubleSpendInBlock`](StorageError::DoubleSpendInBlock)), an
    /// output created that is already unspent ([`OutputExists`](StorageError::OutputExists)), and a
    /// header whose `utxo_commitment` is not the resulting set's
    /// ([`CommitmentMismatch`](StorageError::CommitmentMismatch)). It does not check signatures or
    /// amounts: that is consensus's validation, done before the block was finalized.
    fn apply_finalized(
        &self,
        block: &WellFormedBlock,
        certificate: &CommitCertificate,
    ) -> Result<(), StorageError> {
        self.apply_finalized_with(block, certificate, &[])
    }

    /// [`apply_finalized`](Self::apply_finalized), writing the host's own `records` in the same atomic
    /// batch, so state the host derives from blocks (a validator registry, a reward pool) is durable with
    /// the block it follows from and a restart need not replay the chain to rebuild it. Each record
    /// replaces the one of the same name; a name not given keeps its last value.
    ///
    /// Refuses, changing nothing, a record whose name or value exceeds
    /// [`MAX_HOST_RECORD_NAME`](crate::MAX_HOST_RECORD_NAME) or
    /// [`MAX_HOST_RECORD_BYTES`](crate::MAX_HOST_RECORD_BYTES).
    fn apply_finalized_with(
        &self,
        block: &WellFormedBlock,
        certificate: &CommitCertificate,
        records: &[HostRecord<'_>],
    ) -> Result<(), StorageError>;

    /// The host record `name` as last written, with the height of the block it was written with.
    fn host_record(&self, name: &str) -> Result<Option<(Height, Vec<u8>)>, StorageError>;

    /// The unspent output at `outpoint`, with the storage error type.
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, StorageError>;

    /// The set's tip, size and multiset hash.
    fn utxo_state(&self) -> Result<UtxoState, StorageError>;

    /// The `utxo_commitment` a header for `block` must carry if `block` extends the tip: what a leader
    /// writes into its proposal and what a validator compares. The block's own commitment is ignored.
    /// An implementation may remember the result so that applying the same transactions on the same
    /// tip next does not redo the work ([`ChainDb`](crate::ChainDb) keeps the last one).
    /// Refuses what [`apply_finalized`](Self::apply_finalized) refuses about the UTXO changes.
    fn utxo_commitment_after(&self, block: &WellFormedBlock) -> Result<Hash, StorageError>;

    /// Up to `limit` unspent outputs (at most [`MAX_UTXO_PAGE`](crate::MAX_UTXO_PAGE); 0 means the
    /// default [`DEFAULT_UTXO_PAGE`](crate::DEFAULT_UTXO_PAGE)) with outpoints strictly after `after`,
    /// ascending, read at one tip.
    fn utxo_page(&self, after: Option<&OutPoint>, limit: usize) -> Result<UtxoPage, StorageError>;

    /// Deletes the bodies of blocks from the body floor up to (not including) `below`, at most
    /// `max_blocks` of them, oldest first, keeping every header and certificate, and keeping a body
    /// wherever `keep(header, parent_header)` says so (the parent is `None` at the base). The tip's body
    /// is never deleted, whatever `below` says. Raises the floor past the blocks it looked at.
    ///
    /// Durable and crash-safe: the deletion commits in one batch before any byte is given back, so
    /// after a crash a body is either still readable or cleanly absent, never half there.
    ///
    /// The default deletes nothing: a store that cannot prune keeps everything, which is always safe.
    fn prune_bodies(
        &self,
        below: Height,
        max_blocks: usize,
        keep: &dyn Fn(&BlockHeader, Option<&BlockHeader>) -> bool,
    ) -> Result<PruneReport, StorageError> {
        let _ = (below, max_blocks, keep);
        Ok(PruneReport {
            floor: self.body_floor()?,
            ..PruneReport::default()
        })
    }

    /// Bytes the store occupies on disk, where it can tell.
    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}

/// Durable memory of a masternode's consensus participation, so that a restarted node never signs a vote
/// that conflicts with one it signed before the restart.
///
/// Payloads are opaque bytes: the consensus crate owns their format.
///
/// An implementation must guarantee:
/// - when [`save_signed`](Self::save_signed) or [`append_wal`](Self::append_wal) returns `Ok`, the write
///   survives a crash (the caller sends the vote only after that);
/// - [`replay`](Self::replay) returns entries in height order, and within a height in the order they were
///   appended;
/// - the log is bounded; past its bound `append_wal` fails with [`StorageError::WalFull`] rather than
///   dropping anything.
///
/// It may assume one writer.
pub trait ConsensusStateStore: Send + Sync {
    /// Replaces the last-signed record (height, view, phase and what was signed, in consensus's
    /// encoding).
    fn save_signed(&self, state: &[u8]) -> Result<(), StorageError>;

    /// The last-signed record, if any was saved.
    fn last_signed(&self) -> Result<Option<Vec<u8>>, StorageError>;

    /// Appends one consensus message for `height` to the write-ahead log.
    fn append_wal(&self, height: Height, entry: &[u8]) -> Result<(), StorageError>;

    /// Every logged entry at `from_height` or above, in order.
    fn replay(&self, from_height: Height) -> Result<Vec<Vec<u8>>, StorageError>;

    /// Drops every logged entry below `height` (decided heights).
    fn prune_below(&self, height: Height) -> Result<(), StorageError>;
}
