//! What the host feeds the core ([`Input`]) and what the core asks of the host ([`Output`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timecoin_types::{BlockHash, CommitCertificate, Height, Proposal, View, Vote, WellFormedBlock};

use crate::round::TimeoutKind;
use crate::sync::CertifiedBlock;
use crate::{Evidence, Message, ValidatorSet, Verified, WalEntry};

/// A timer to fire: the host feeds it back as [`Input::Timeout`] after the scheduled duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timeout {
    /// Height it was set in.
    pub height: Height,
    /// View it was set in.
    pub view: View,
    /// Which timer.
    pub kind: TimeoutKind,
}

/// An event for the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// Begin consensus on `height` with the validators of that height. Sent once at start-up (the height
    /// after the stored tip) and then after each [`Output::Decided`] has been applied durably. A height
    /// not above the current one is ignored.
    StartHeight {
        /// The height to decide.
        height: Height,
        /// Its validator set (from [`ValidatorRegistry::set_for`](crate::ValidatorRegistry::set_for)).
        validators: Arc<ValidatorSet>,
    },
    /// A leader's proposal, signature checked.
    Proposal(Verified<Proposal>),
    /// A Prepare or Commit, signature checked.
    Vote(Verified<Vote>),
    /// The application's answer to [`Output::RequestProposal`].
    ProposalValue {
        /// As requested.
        height: Height,
        /// As requested.
        view: View,
        /// The block to propose (its header's height must be `height`).
        block: WellFormedBlock,
    },
    /// The application's answer to [`Output::RequestValidity`].
    Validity {
        /// As requested.
        height: Height,
        /// The block judged.
        block_hash: BlockHash,
        /// Whether every rule of the chain accepts the block on top of the current tip.
        valid: bool,
    },
    /// A timer set by [`Output::ScheduleTimeout`] fired. Stale timers are ignored, so the host never needs
    /// to cancel one.
    Timeout(Timeout),
    /// A block with a valid certificate for the current height, learned by sync rather than by voting
    /// (for example from a peer that already finished the height). The core decides it at once.
    Certified(Verified<CertifiedBlock>),
    /// The host's monotonic clock, in milliseconds from any fixed origin; drives the TTL cleanup. Send it
    /// now and then (every few seconds is plenty); the core never reads a clock itself.
    Tick {
        /// Milliseconds since the host's origin; must not go backwards.
        now_ms: u64,
    },
}

impl From<Verified<Message>> for Input {
    fn from(message: Verified<Message>) -> Self {
        match message.into_inner() {
            Message::Proposal(p) => Input::Proposal(Verified::assume_verified(p)),
            Message::Vote(v) => Input::Vote(Verified::assume_verified(v)),
        }
    }
}

/// Something the host must do. Execute outputs in order; a [`Output::Persist`] must be durable before
/// the next output is executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Append to the write-ahead log and sync it before executing the next output: it records a message
    /// this node signed, and the [`Output::Broadcast`] that follows must never happen without it.
    Persist(WalEntry),
    /// Send to every validator (including none back to this core: it already counted its own message).
    Broadcast(Message),
    /// Feed `Input::Timeout(timeout)` back after `after`.
    ScheduleTimeout {
        /// The timer.
        timeout: Timeout,
        /// How long from now.
        after: Duration,
    },
    /// This node leads `(height, view)`: build a block on the current tip and answer with
    /// [`Input::ProposalValue`].
    RequestProposal {
        /// Height.
        height: Height,
        /// View.
        view: View,
    },
    /// Check `block` against the chain's rules on the current tip and answer with [`Input::Validity`].
    /// Asked once per block per height. Validity must depend on the block alone (never on the view or on
    /// who re-proposes it), or honest nodes could disagree.
    RequestValidity {
        /// Height.
        height: Height,
        /// View of the proposal that carried it.
        view: View,
        /// The block.
        block: WellFormedBlock,
    },
    /// `block` is final: apply it with its certificate atomically, then send [`Input::StartHeight`] for the
    /// next height.
    Decided {
        /// The block.
        block: WellFormedBlock,
        /// Commit signatures of more than 2/3 of the weight.
        certificate: CommitCertificate,
    },
    /// A validator signed two conflicting messages; keep, gossip or report it.
    Evidence(Evidence),
}
