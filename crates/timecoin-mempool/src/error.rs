use timecoin_types::{Amount, OutPoint, TxId, TypesError};

use crate::FeeRate;

/// Why a transaction was not pooled.
///
/// [`Invalid`](MempoolError::Invalid) is the only variant about the transaction's own validity; every
/// other one is about the pool's state at that moment, and the same transaction may be accepted later.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction breaks a chain rule (see [`TypesError`]). Rules that are properties of the
    /// transaction's bytes are remembered in the rejection cache; a missing input is not (see
    /// [`MempoolError::is_remembered`]).
    #[error("transaction {txid} is invalid: {source}")]
    Invalid {
        /// The transaction.
        txid: TxId,
        /// The rule it broke.
        source: TypesError,
    },
    /// These exact bytes were rejected within the rejection TTL; refused without re-validation.
    #[error("transaction {txid} was recently rejected: {reason}")]
    RecentlyRejected {
        /// The transaction.
        txid: TxId,
        /// The rule it broke then.
        reason: TypesError,
    },
    /// A transaction with this id is already pooled (or being pooled by another thread).
    #[error("transaction {txid} is already in the pool")]
    AlreadyPooled {
        /// The transaction.
        txid: TxId,
    },
    /// An outpoint the transaction spends (or holds as collateral) is already claimed by a pooled
    /// transaction that cannot be replaced now: it is still being admitted by another thread.
    #[error("transaction {txid} double-spends {outpoint}, claimed by pooled transaction {pooled}")]
    DoubleSpend {
        /// The transaction.
        txid: TxId,
        /// The contested outpoint.
        outpoint: OutPoint,
        /// The pooled transaction that claims it.
        pooled: TxId,
    },
    /// Replacing would evict more pooled transactions than [`Config::max_replacements`](crate::Config).
    #[error(
        "transaction {txid} conflicts with {conflicts} pooled transactions, more than the {max} one replacement may evict"
    )]
    TooManyReplacements {
        /// The transaction.
        txid: TxId,
        /// Pooled transactions it conflicts with.
        conflicts: usize,
        /// The limit.
        max: usize,
    },
    /// A replacement must pay the fees of everything it replaces plus
    /// [`Config::replacement_fee_rate`](crate::Config) per byte of its own size.
    #[error(
        "transaction {txid} pays {fee} but replacing {replaced} pooled transaction(s) needs at least {required}"
    )]
    ReplacementFeeTooLow {
        /// The transaction.
        txid: TxId,
        /// What it pays.
        fee: Amount,
        /// What replacing needs.
        required: Amount,
        /// How many pooled transactions it conflicts with.
        replaced: usize,
    },
    /// A replacement must pay a strictly higher fee rate than each transaction it replaces.
    #[error(
        "transaction {txid} pays {fee_rate}, not above the {pooled_fee_rate} of pooled transaction {pooled} it would replace"
    )]
    ReplacementFeeRateTooLow {
        /// The transaction.
        txid: TxId,
        /// Its fee rate.
        fee_rate: FeeRate,
        /// The pooled transaction it conflicts with.
        pooled: TxId,
        /// That transaction's fee rate.
        pooled_fee_rate: FeeRate,
    },
    /// The pool is at a limit and the transaction does not pay a higher fee rate than enough of the
    /// cheapest pooled transactions to make room.
    #[error("pool full ({transactions}/{max_transactions} transactions, {bytes}/{max_bytes} bytes): transaction {txid} pays {fee_rate}, the cheapest pooled pays {}", lowest_fee_rate.map_or_else(|| "nothing (the pool cannot hold it)".to_string(), |r| r.to_string()))]
    PoolFull {
        /// The transaction.
        txid: TxId,
        /// Its fee rate (its size is the rate's size).
        fee_rate: FeeRate,
        /// The cheapest rate pooled, if anything is pooled.
        lowest_fee_rate: Option<FeeRate>,
        /// Transactions pooled.
        transactions: u64,
        /// The transaction limit.
        max_transactions: u64,
        /// Bytes pooled.
        bytes: u64,
        /// The byte limit.
        max_bytes: u64,
    },
    /// The worker running the check failed (it panicked, or the runtime is shutting down).
    #[error("mempool worker failed: {reason}")]
    WorkerFailed {
        /// What happened.
        reason: String,
    },
}

impl MempoolError {
    /// Whether this rejection is remembered in the rejection cache.
    ///
    /// Only failures that are a property of the transaction's bytes (and of the immutable outputs it
    /// spends) are remembered: stateless rules, key mismatch, insufficient inputs, low fee, bad signature.
    /// A missing input is not (the parent may be about to arrive, or the node's view may be behind), nor a
    /// storage failure, nor a masternode-registration failure (it may be about a collateral spent now),
    /// nor anything about the pool's state (full, conflicts, duplicates).
    pub fn is_remembered(&self) -> bool {
        matches!(self, MempoolError::Invalid { source, .. } if is_property_of_bytes(source))
    }

    /// The transaction the error is about, when there is one.
    pub fn txid(&self) -> Option<TxId> {
        match self {
            MempoolError::Invalid { txid, .. }
            | MempoolError::RecentlyRejected { txid, .. }
            | MempoolError::AlreadyPooled { txid }
            | MempoolError::DoubleSpend { txid, .. }
            | MempoolError::TooManyReplacements { txid, .. }
            | MempoolError::ReplacementFeeTooLow { txid, .. }
            | MempoolError::ReplacementFeeRateTooLow { txid, .. }
            | MempoolError::PoolFull { txid, .. } => Some(*txid),
            MempoolError::WorkerFailed { .. } => None,
        }
    }
}

/// Whether a rule failure depends only on the transaction's bytes and on outputs that, once created, never
/// change (an outpoint names its creating transaction, whose id commits to its outputs).
///
/// `BadRegistration` is left out: it may mean a malformed registration or a collateral that is spent
/// now, and only the first is a property of the bytes.
pub(crate) fn is_property_of_bytes(e: &TypesError) -> bool {
    matches!(
        e,
        TypesError::TooLarge { .. }
            | TypesError::Malformed { .. }
            | TypesError::TrailingBytes { .. }
            | TypesError::NonCanonical { .. }
            | TypesError::NoInputs
            | TypesError::NoOutputs
            | TypesError::TooManyInputs { .. }
            | TypesError::TooManyOutputs { .. }
            | TypesError::DuplicateInput { .. }
            | TypesError::DustOutput { .. }
            | TypesError::OutputOverflow
            | TypesError::InputOverflow
            | TypesError::UnsupportedVersion(_)
            | TypesError::KeyMismatch { .. }
            | TypesError::InsufficientInputs { .. }
            | TypesError::FeeTooLow { .. }
            | TypesError::BadSignature { .. }
    )
}
