//! The node crate's one error type.

use timecoin_types::{BlockHash, Height};

/// Why the engine refused something or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed or refused.
    #[error("storage: {0}")]
    Storage(#[from] timecoin_storage::StorageError),
    /// Consensus refused (restoring the core, the validator registry).
    #[error("consensus: {0}")]
    Consensus(#[from] timecoin_consensus::ConsensusError),
    /// A chain rule failed.
    #[error("chain rules: {0}")]
    Rules(#[from] timecoin_types::TypesError),
    /// The mempool refused a transaction.
    #[error("mempool: {0}")]
    Mempool(#[from] timecoin_mempool::MempoolError),
    /// A block does not extend the tip.
    #[error(
        "block at height {height} with parent {parent} does not extend the tip {tip_height} ({tip})"
    )]
    NotOnTip {
        /// The block's height.
        height: Height,
        /// The block's parent.
        parent: BlockHash,
        /// The tip's height.
        tip_height: Height,
        /// The tip's hash.
        tip: BlockHash,
    },
    /// A block's header names a UTXO commitment other than the set its transactions leave.
    #[error(
        "block at height {height}: the header's UTXO commitment is not the set the block leaves"
    )]
    CommitmentMismatch {
        /// The block's height.
        height: Height,
    },
    /// A block's header names a validator schedule other than the one the block leaves.
    #[error(
        "block at height {height}: the header's validators hash is not the schedule the block leaves"
    )]
    ScheduleMismatch {
        /// The block's height.
        height: Height,
    },
    /// The configuration is not usable.
    #[error("config: {0}")]
    Config(String),
    /// The engine stopped after a fatal error and takes no more events.
    #[error("the engine halted: {0}")]
    Halted(String),
    /// A submitted transaction was refused; the reason names the rule it broke.
    #[error("transaction refused: {0}")]
    Refused(String),
    /// The RPC or metrics server could not start (the address is taken, the cookie cannot be
    /// written, the auth settings are unusable).
    #[error("rpc: {0}")]
    Rpc(String),
    /// A finality receipt does not prove what it claims; the reason names the check that failed.
    #[error("the finality receipt does not verify: {0}")]
    InvalidReceipt(String),
}
