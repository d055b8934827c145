//! The one error type of this crate.

use timecoin_crypto::Hash;
use timecoin_types::{BlockHash, Height, OutPoint, TxId, TypesError};

/// Everything that can go wrong in storage.
///
/// The variants split into three kinds a caller treats differently:
/// - the machine: [`Io`](Self::Io), [`DiskFull`](Self::DiskFull), [`Backend`](Self::Backend),
///   [`TaskFailed`](Self::TaskFailed) — retrying after an operator acts may help;
/// - the data: [`Corruption`](Self::Corruption), [`GenesisMismatch`](Self::GenesisMismatch) — the store
///   must not be trusted, never retried silently;
/// - the caller: a block that does not extend the tip, a certificate for another block, a commitment that
///   does not match — the store is unchanged and stays usable.
///
/// After a failed write the store [halts](Self::Halted): the disk may hold a batch that the in-memory
/// state does not, so it refuses every call until it is reopened from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The operating system reported an I/O error.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The disk is full (`ENOSPC`); nothing more can be written until space is freed.
    #[error("disk full while {context}")]
    DiskFull {
        /// What the store was doing.
        context: &'static str,
    },
    /// Stored bytes failed their checksum or did not decode: the data on disk is damaged.
    #[error("corrupted {what}: {detail}")]
    Corruption {
        /// The record kind (UTXO, block, tip, …).
        what: &'static str,
        /// What exactly was wrong (checksum, decoding, a broken cross-reference).
        detail: String,
    },
    /// A record that the store's own invariants say must exist is missing.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// The store was created for another chain.
    #[error("store belongs to genesis {stored}, opened with genesis {given}")]
    GenesisMismatch {
        /// The genesis block hash recorded in the store.
        stored: BlockHash,
        /// The genesis block hash it was opened with.
        given: BlockHash,
    },
    /// `apply_finalized` was given a block that does not extend the tip.
    #[error(
        "block at height {found} with parent {found_parent} does not extend tip {tip_height} ({tip_hash})"
    )]
    NotNextBlock {
        /// Current tip height.
        tip_height: Height,
        /// Current tip hash.
        tip_hash: BlockHash,
        /// The block's height.
        found: Height,
        /// The block's parent.
        found_parent: BlockHash,
    },
    /// The certificate is not for the block it came with.
    #[error(
        "certificate is for height {cert_height} block {cert_block}, not height {height} block {block}"
    )]
    CertificateMismatch {
        /// The block's height.
        height: Height,
        /// The block's hash.
        block: BlockHash,
        /// The certificate's height.
        cert_height: Height,
        /// The block the certificate finalizes.
        cert_block: BlockHash,
    },
    /// A finalized block spends an output that is not in the UTXO set. Consensus validated the block, so
    /// this means the store and the chain disagree; nothing was written.
    #[error("block at height {height} spends {outpoint}, which is not in the UTXO set")]
    MissingInput {
        /// The block's height.
        height: Height,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A finalized block spends one output twice: two of its transactions, one input repeated, or two
    /// spends of an output created earlier in the same block. Nothing was written.
    #[error("block at height {height} spends {outpoint} twice")]
    DoubleSpendInBlock {
        /// The block's height.
        height: Height,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A finalized block holds one transaction twice, which would create its outputs twice. Nothing was
    /// written.
    #[error(
        "block at height {height} holds transaction {txid} twice (positions {first} and {second})"
    )]
    DuplicateTxInBlock {
        /// The block's height.
        height: Height,
        /// Earlier position in the block.
        first: usize,
        /// Later position.
        second: usize,
        /// The transaction's id.
        txid: TxId,
    },
    /// A finalized block creates an output that is already unspent (a transaction whose id is that of one
    /// whose outputs are still in the set, such as a transaction included again), which would count it
    /// twice. Nothing was written.
    #[error("block at height {height} creates {outpoint}, which is already in the UTXO set")]
    OutputExists {
        /// The block's height.
        height: Height,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A finalized block's UTXO changes cannot be worked out for another reason `source` names. Nothing
    /// was written.
    #[error("block at height {height} cannot be applied to the UTXO set: {source}")]
    InconsistentBlock {
        /// The block's height.
        height: Height,
        /// The rule it broke.
        source: TypesError,
    },
    /// The UTXO set after the block does not hash to the commitment in its header.
    #[error(
        "UTXO commitment mismatch at height {height}: header says {expected}, set hashes to {computed}"
    )]
    CommitmentMismatch {
        /// Height checked.
        height: Height,
        /// What the header commits to.
        expected: Hash,
        /// What the UTXO set hashes to.
        computed: Hash,
    },
    /// A state-sync page does not follow the previous one: out of order, repeated, or read at another
    /// height.
    #[error("state-sync page rejected: {reason}")]
    BadSyncPage {
        /// Which rule the page broke.
        reason: String,
    },
    /// The store holds a snapshot import that has not finished: it is not a chain yet. Resume it
    /// ([`ChainDb::resume_import`](crate::ChainDb::resume_import)), then finish or discard it.
    #[error(
        "store holds an unfinished snapshot import of height {base_height}, last outpoint written: {}; resume or discard it",
        cursor.map_or_else(|| "none".to_string(), |op| op.to_string())
    )]
    ImportIncomplete {
        /// The height whose UTXO set is being imported.
        base_height: Height,
        /// The last outpoint written; the next page starts after it (`None`: from the start).
        cursor: Option<OutPoint>,
    },
    /// A snapshot import was started on a store that already holds something (a chain, or another
    /// import): an import fills a fresh store only.
    #[error("cannot import a snapshot into a store that holds {found}")]
    NotAFreshStore {
        /// What the store holds.
        found: &'static str,
    },
    /// The base given to a snapshot import is not one the store can build a chain on.
    #[error("snapshot base refused: {reason}")]
    BadImportBase {
        /// Which rule it broke.
        reason: String,
    },
    /// A value is larger than the limit for its kind; nothing was written.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The kind of value.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The consensus write-ahead log reached its bound; consensus must prune decided heights first.
    #[error(
        "consensus WAL full: {entries} entries, {bytes} bytes (limits {max_entries}, {max_bytes})"
    )]
    WalFull {
        /// Entries held.
        entries: u64,
        /// Bytes held.
        bytes: u64,
        /// Entry limit.
        max_entries: u64,
        /// Byte limit.
        max_bytes: u64,
    },
    /// A configuration value is out of range.
    #[error("invalid storage config: {reason}")]
    InvalidConfig {
        /// Which field and why.
        reason: String,
    },
    /// An earlier write failed, so memory and disk may disagree; reopen the store.
    #[error("store halted after a failed write ({reason}); reopen it")]
    Halted {
        /// The first failure.
        reason: String,
    },
    /// The backend reported a failure that is neither I/O nor corruption (an unsupported operation, a
    /// bug it reports).
    #[error("storage backend failure: {reason}")]
    Backend {
        /// The backend's message.
        reason: String,
    },
    /// A blocking storage task did not complete (it panicked or the runtime shut down).
    #[error("storage task failed: {reason}")]
    TaskFailed {
        /// Why.
        reason: String,
    },
}

impl StorageError {
    /// Maps an OS error, recognising a full disk.
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        if is_disk_full(&source) {
            StorageError::DiskFull { context }
        } else {
            StorageError::Io { context, source }
        }
    }

    /// A decoding failure of stored bytes, which is always corruption (the store wrote them canonically).
    pub(crate) fn undecodable(what: &'static str, err: impl std::fmt::Display) -> Self {
        StorageError::Corruption {
            what,
            detail: err.to_string(),
        }
    }
}

/// `ENOSPC` on Linux and the BSDs (28), `ERROR_DISK_FULL`/`ERROR_HANDLE_DISK_FULL` on Windows (112, 39).
fn is_disk_full(err: &std::io::Error) -> bool {
    if err.kind() == std::io::ErrorKind::StorageFull {
        return true;
    }
    match err.raw_os_error() {
        Some(code) if cfg!(windows) => code == 112 || code == 39,
        Some(code) => code == 28,
        None => false,
    }
}

impl From<StorageError> for TypesError {
    /// A read that failed is "cannot tell", never "not there": the transaction rules turn it into an error
    /// rather than a missing input.
    fn from(err: StorageError) -> Self {
        TypesError::ViewUnavailable {
            reason: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_disk_full() {
        let err = StorageError::io("writing a block", std::io::Error::from_raw_os_error(28));
        assert!(matches!(err, StorageError::DiskFull { .. }), "{err}");
        let err = StorageError::io("writing a block", std::io::Error::other("boom"));
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
    }

    #[test]
    fn read_failure_becomes_view_unavailable_not_missing_input() {
        let err: TypesError = StorageError::Corruption {
            what: "utxo",
            detail: "checksum".into(),
        }
        .into();
        assert!(matches!(err, TypesError::ViewUnavailable { .. }));
    }
}
