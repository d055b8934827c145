//! What can go wrong in a simulation: a broken invariant, a stalled network, or a misused driver.

use timecoin_types::{BlockHash, Height, PublicKey, View};

use crate::runtime::{Millis, NodeId};

/// A safety invariant that failed; see [`crate::InvariantChecker`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Two honest nodes finalized different blocks at one height (which also means their chains are not
    /// prefixes of each other).
    #[error(
        "honest nodes {first_node} and {second_node} finalized different blocks at height {height}: {first} vs {second}"
    )]
    ConflictingBlocks {
        /// The height.
        height: Height,
        /// The node whose block was seen first.
        first_node: NodeId,
        /// Its block.
        first: BlockHash,
        /// The node that disagrees.
        second_node: NodeId,
        /// Its block.
        second: BlockHash,
    },
    /// A finalized block's certificate is not valid for the validator set of its height, or does not
    /// name the block.
    #[error("node {node}: certificate of height {height} is invalid: {reason}")]
    BadCertificate {
        /// The node that stored it.
        node: NodeId,
        /// The height.
        height: Height,
        /// Why.
        reason: String,
    },
    /// A node's finalized chain skips a height or does not link each block to its parent.
    #[error("node {node}: finalized chain breaks at height {height}")]
    BrokenChain {
        /// The node.
        node: NodeId,
        /// The first height that does not follow.
        height: Height,
    },
    /// Two honest nodes hold different UTXO sets at one height, or a node's set differs from the one its
    /// own tip header commits to: the same block ids over different bodies would show up here.
    #[error(
        "honest nodes {first_node} and {second_node} hold different UTXO sets at height {height}: {first} vs {second}"
    )]
    DivergentState {
        /// The height.
        height: Height,
        /// The node whose set was seen first (or the node itself, against its header).
        first_node: NodeId,
        /// Its commitment.
        first: timecoin_crypto::Hash,
        /// The node that disagrees.
        second_node: NodeId,
        /// Its commitment.
        second: timecoin_crypto::Hash,
    },
    /// A node's coins do not add up: its UTXO total plus its reward pool is not genesis plus subsidies.
    #[error(
        "node {node} at height {height}: UTXO total {utxos} + reward pool {pool} != supply {supply}"
    )]
    SupplyMismatch {
        /// The node.
        node: NodeId,
        /// Its height.
        height: Height,
        /// The sum of its unspent outputs.
        utxos: timecoin_types::Amount,
        /// Its accrued, unpaid rewards.
        pool: timecoin_types::Amount,
        /// Genesis plus one subsidy per block.
        supply: timecoin_types::Amount,
    },
    /// Two honest nodes at one height disagree on the unpaid reward pool (so on the next payout).
    #[error(
        "nodes {first_node} and {second_node} hold reward pools {first} and {second} at height {height}"
    )]
    DivergentPool {
        /// The height.
        height: Height,
        /// The node seen first.
        first_node: NodeId,
        /// Its pool.
        first: timecoin_types::Amount,
        /// The node that disagrees.
        second_node: NodeId,
        /// Its pool.
        second: timecoin_types::Amount,
    },
    /// The agreed chain spends one output twice.
    #[error("the block at height {height} spends {outpoint}, which an earlier block already spent")]
    DoubleSpend {
        /// The height of the second spend.
        height: Height,
        /// The output.
        outpoint: timecoin_types::OutPoint,
    },
    /// Evidence shows an honest validator signed two conflicting messages.
    #[error("node {node} holds evidence that honest validator {offender} equivocated")]
    HonestEquivocation {
        /// The node holding the evidence.
        node: NodeId,
        /// The honest key named in it.
        offender: Box<PublicKey>,
    },
    /// An honest node's WAL holds two different messages for one signing slot: it signed twice where the
    /// protocol allows once (seen in its own log, even if no peer ever received both).
    #[error(
        "honest node {node} signed two different {slot} messages at height {height}, view {view}"
    )]
    DoubleSigned {
        /// The node.
        node: NodeId,
        /// Height of the slot.
        height: Height,
        /// View of the slot.
        view: View,
        /// "proposal", "Prepare" or "Commit".
        slot: &'static str,
    },
    /// An honest node could not go on (for example its ledger refused a decided block).
    #[error("honest node {node} failed: {reason}")]
    NodeFailed {
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
}

/// The crate's error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// A safety invariant failed after an event.
    #[error("safety violation at {at_ms} ms: {violation}")]
    Violation {
        /// Simulated time of the event after which it was found.
        at_ms: Millis,
        /// What failed.
        violation: Box<Violation>,
    },
    /// An honest, running node did not finalize what it had to in time.
    #[error(
        "liveness: honest node {node} is at height {height} at {deadline_ms} ms, needed at least {needed}"
    )]
    Stalled {
        /// The node.
        node: NodeId,
        /// Its finalized height at the deadline.
        height: Height,
        /// The height it had to reach.
        needed: Height,
        /// The deadline, in simulated time.
        deadline_ms: Millis,
    },
    /// A driver call named a node that does not exist.
    #[error("no node {0}")]
    UnknownNode(NodeId),
    /// The configuration cannot be run (for example an empty validator set).
    #[error("bad simulation setup: {0}")]
    Setup(String),
    /// The application refused to build or apply a block.
    #[error("ledger: {0}")]
    Ledger(String),
}

impl SimError {
    /// The safety violation, if this is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            SimError::Violation { violation, .. } => Some(violation),
            _ => None,
        }
    }
}
