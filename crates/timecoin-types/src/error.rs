use timecoin_crypto::CryptoError;

use crate::{Amount, OutPoint};

/// Everything that can go wrong in `timecoin-types`: decoding, and each transaction or block rule.
///
/// Every rule has its own variant naming what was broken and where, so a wallet or a peer can act on it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypesError {
    // ---- decoding ----
    /// The input is longer than the limit for its type; nothing was decoded.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The type being decoded.
        what: &'static str,
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The type being decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A value decoded but bytes were left over.
    #[error("{what} has {extra} trailing bytes")]
    TrailingBytes {
        /// The type being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A value decoded but its canonical encoding differs (e.g. a non-minimal varint): two encodings of one
    /// value would give two ids, so only the canonical one is accepted.
    #[error("{what} is not canonically encoded")]
    NonCanonical {
        /// The type being decoded.
        what: &'static str,
    },

    // ---- stateless transaction rules ----
    /// A transaction with no inputs creates money from nothing.
    #[error("transaction has no inputs")]
    NoInputs,
    /// A reward transaction outside its one place (the first transaction of a block at a reward height),
    /// or not the payout the schedule computes.
    #[error("bad reward transaction: {reason}")]
    BadReward {
        /// Which rule.
        reason: String,
    },
    /// A transaction with no outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// More inputs than the limit.
    #[error("transaction has {count} inputs, over the limit of {max}")]
    TooManyInputs {
        /// Inputs in the transaction.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More outputs than the limit.
    #[error("transaction has {count} outputs, over the limit of {max}")]
    TooManyOutputs {
        /// Outputs in the transaction.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same outpoint is spent twice within one transaction.
    #[error("input {index} spends {outpoint}, already spent by input {first}")]
    DuplicateInput {
        /// The repeated input.
        index: usize,
        /// The earlier input spending the same outpoint.
        first: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An output below the dust threshold costs more to spend than it is worth.
    #[error("output {index} is {amount}, below the dust threshold {min}")]
    DustOutput {
        /// Output position.
        index: usize,
        /// Its amount.
        amount: Amount,
        /// The threshold.
        min: Amount,
    },
    /// The outputs sum past the maximum amount.
    #[error("output amounts overflow")]
    OutputOverflow,
    /// The inputs sum past the maximum amount.
    #[error("input amounts overflow")]
    InputOverflow,
    /// The transaction version is not one this software understands.
    #[error("unsupported transaction version {0}")]
    UnsupportedVersion(u16),
    /// A masternode registration names a tier whose collateral rule it does not meet in shape.
    #[error("masternode registration: {reason}")]
    BadRegistration {
        /// What is wrong.
        reason: String,
    },

    // ---- contextual transaction rules ----
    /// An input spends an outpoint that does not exist or is already spent.
    #[error("input {index} spends {outpoint}, which is not in the UTXO set")]
    MissingInput {
        /// Input position.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An input's public key does not hash to the address of the output it spends.
    #[error("input {index}: public key does not match the address of the output it spends")]
    KeyMismatch {
        /// Input position.
        index: usize,
    },
    /// Outputs exceed inputs.
    #[error("outputs {outputs} exceed inputs {inputs}")]
    InsufficientInputs {
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// The fee is below the minimum.
    #[error("fee {fee} is below the minimum {min}")]
    FeeTooLow {
        /// Fee paid.
        fee: Amount,
        /// Required minimum.
        min: Amount,
    },
    /// An input's signature does not verify.
    #[error("input {index}: {source}")]
    BadSignature {
        /// Input position.
        index: usize,
        /// Why verification failed.
        source: CryptoError,
    },
    /// The UTXO view could not answer (a storage failure, never "not found").
    #[error("UTXO view unavailable: {reason}")]
    ViewUnavailable {
        /// The storage layer's message.
        reason: String,
    },

    // ---- block rules ----
    /// The header's transaction root does not match the transactions.
    #[error("block transaction root mismatch: the body is not the one the header commits to")]
    TxRootMismatch,
    /// The header's witness root does not match the transactions' signatures.
    #[error("block witness root mismatch: the signatures are not the ones the header commits to")]
    WitnessRootMismatch,
    /// One transaction appears twice in a block.
    #[error("transactions {first} and {second} in the block are the same transaction {txid}")]
    DuplicateTxInBlock {
        /// Earlier position.
        first: usize,
        /// Later position.
        second: usize,
        /// Its id.
        txid: crate::TxId,
    },
    /// The block is for another chain.
    #[error("block is for chain {found}, expected {expected}")]
    WrongChain {
        /// This chain.
        expected: u32,
        /// The block's chain.
        found: u32,
    },
    /// Two transactions in one block spend the same outpoint.
    #[error("transactions {first} and {second} in the block both spend {outpoint}")]
    ConflictInBlock {
        /// Earlier transaction.
        first: usize,
        /// Later transaction.
        second: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A transaction in a block failed a rule.
    #[error("transaction {index} in block: {source}")]
    InvalidBlockTx {
        /// Position in the block.
        index: usize,
        /// The rule it broke.
        source: Box<TypesError>,
    },
    /// An amount string could not be parsed.
    #[error("invalid amount {text:?}: {reason}")]
    InvalidAmount {
        /// The text.
        text: String,
        /// Why.
        reason: &'static str,
    },
}
