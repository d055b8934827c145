//! The crate's one error type.

use timecoin_crypto::{CryptoError, PublicKey};
use timecoin_types::{BlockHash, Height, TypesError};

use crate::sync::SafetyViolation;

/// Everything that can go wrong in `timecoin-consensus`. Each variant names the rule that was broken.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A validator set must have at least one member with positive weight.
    #[error("validator set is empty")]
    EmptyValidatorSet,
    /// A validator set lists one key twice.
    #[error("validator {key} appears twice in the set")]
    DuplicateValidator {
        /// The repeated key.
        key: Box<PublicKey>,
    },
    /// A validator set with more members than the protocol allows.
    #[error("validator set has {count} members, over the limit of {max}")]
    TooManyValidators {
        /// Members.
        count: usize,
        /// [`timecoin_types::MAX_VALIDATORS`].
        max: usize,
    },
    /// A message or certificate signed by a key outside the validator set of its height.
    #[error("{key} is not a validator at this height")]
    NotAValidator {
        /// The signer.
        key: Box<PublicKey>,
    },
    /// A signature did not verify.
    #[error("bad signature: {0}")]
    BadSignature(#[from] CryptoError),
    /// A re-proposal's proof of lock is malformed (its Prepares are checked like a certificate's).
    #[error("invalid proof of lock: {reason}")]
    InvalidLockProof {
        /// The rule it broke.
        reason: &'static str,
    },
    /// A certificate's signatures are not sorted by voter, or a voter signs twice.
    #[error("certificate signatures are not strictly sorted by voter")]
    CertificateNotSorted,
    /// A certificate without more than 2/3 of the set's weight.
    #[error("certificate carries weight {have} of {total}; more than 2/3 is needed")]
    InsufficientWeight {
        /// Weight of the (member) signers.
        have: u64,
        /// Total weight of the set.
        total: u64,
    },
    /// A certified block whose hash or height differs from its certificate's.
    #[error(
        "block {block_hash:?} at height {block_height} does not match its certificate ({cert_hash:?} at {cert_height})"
    )]
    CertificateMismatch {
        /// The block's hash.
        block_hash: BlockHash,
        /// The block's height.
        block_height: Height,
        /// The certificate's block hash.
        cert_hash: BlockHash,
        /// The certificate's height.
        cert_height: Height,
    },
    /// A certified block for another height than the one being resolved.
    #[error("expected height {expected}, got {got}")]
    WrongHeight {
        /// Height asked for.
        expected: Height,
        /// Height offered.
        got: Height,
    },
    /// A certified block whose parent is not the local tip: the peer's chain left ours below this height.
    #[error("block at height {height} builds on {parent:?}, not on the local tip {tip:?}")]
    ParentMismatch {
        /// Height of the offered block.
        height: Height,
        /// The parent it names.
        parent: BlockHash,
        /// The local tip.
        tip: BlockHash,
    },
    /// A block of another chain.
    #[error("block belongs to chain {got}, not {expected}")]
    WrongChain {
        /// Our chain.
        expected: u32,
        /// The block's chain.
        got: u32,
    },
    /// Two valid commit certificates for different blocks at one height: more than 1/3 of the weight
    /// signed both, so the chain's safety assumption is broken. Never resolved by choosing one.
    #[error("safety violation at height {}: two valid certificates for different blocks", .0.height)]
    SafetyViolation(Box<SafetyViolation>),
    /// Evidence whose two messages are not a conflict (different slots, different signers, or equal).
    #[error("evidence does not show two conflicting messages for one slot")]
    NotAConflict,
    /// A WAL entry signed by another key than the restoring node's: the WAL belongs to another node.
    #[error("WAL entry signed by {found}, but this node signs as {expected}")]
    ForeignWal {
        /// This node's key.
        expected: Box<PublicKey>,
        /// The entry's signer.
        found: Box<PublicKey>,
    },
    /// A persisted structure did not decode.
    #[error("decoding: {0}")]
    Decode(#[from] TypesError),
    /// A validator-registry update out of order.
    #[error("registry expected finalized height {expected}, got {got}")]
    RegistryOutOfOrder {
        /// The next height the registry expects.
        expected: Height,
        /// The height given.
        got: Height,
    },
    /// A persisted registry snapshot that cannot be the state of a registry.
    #[error("invalid registry snapshot: {0}")]
    InvalidRegistrySnapshot(&'static str),
}
