//! The one mapping from the core's [`Output`]s to a host's actions.
//!
//! Every host of the core (the node's engine, the tests' harness, an embedder) must do the same things
//! with the same outputs in the same order: persist before anything that follows, answer a request for a
//! proposal or a validity verdict with the matching [`Input`], stop at the first failed write. [`dispatch`]
//! does that once; a host implements [`Host`] for what differs (where the WAL lives, how a message
//! leaves, what a block is).

use std::time::Duration;

use timecoin_types::{CommitCertificate, Height, View, WellFormedBlock};

use crate::{Evidence, Input, Message, Output, Timeout, WalEntry};

/// What a host does for the core.
///
/// An implementation must make [`persist`](Self::persist) durable before it returns `Ok`: the broadcast
/// that follows records a signature this node made, and must never leave without the record. It may
/// assume the outputs of one [`dispatch`] arrive in the order the core emitted them.
pub trait Host {
    /// A failure that stops the dispatch (a WAL write that did not complete, a block that could not be
    /// stored). Nothing after it is executed.
    type Error;

    /// Appends `entry` to the write-ahead log, durably.
    fn persist(&mut self, entry: WalEntry) -> Result<(), Self::Error>;

    /// Sends `message` to the other validators.
    fn broadcast(&mut self, message: Message) -> Result<(), Self::Error>;

    /// Feeds `Input::Timeout(timeout)` back after `after`.
    fn schedule(&mut self, timeout: Timeout, after: Duration);

    /// A block to propose at `(height, view)` on the current tip, or `None` to leave the request
    /// unanswered (the view's propose timeout then ends in a nil Prepare).
    fn propose(&mut self, height: Height, view: View) -> Option<WellFormedBlock>;

    /// Whether every rule of the chain accepts `block` on the current tip. Must depend on the block
    /// alone.
    fn validate(&mut self, height: Height, block: &WellFormedBlock) -> bool;

    /// Applies a final block with its certificate, atomically and durably, then starts the next height
    /// (by [`answer`](Self::answer)ing [`Input::StartHeight`], now or later).
    fn decided(
        &mut self,
        block: WellFormedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), Self::Error>;

    /// Keeps, gossips or reports evidence of equivocation.
    fn evidence(&mut self, evidence: Evidence);

    /// Queues `input` for the core, to be handled after the outputs being dispatched.
    fn answer(&mut self, input: Input);
}

/// Executes `outputs` in order on `host`, answering the core's requests through [`Host::answer`].
/// Stops at the first error, executing nothing after it.
pub fn dispatch<H: Host + ?Sized>(host: &mut H, outputs: Vec<Output>) -> Result<(), H::Error> {
    for output in outputs {
        match output {
            Output::Persist(entry) => host.persist(entry)?,
            Output::Broadcast(message) => host.broadcast(message)?,
            Output::ScheduleTimeout { timeout, after } => host.schedule(timeout, after),
            Output::RequestProposal { height, view } => {
                if let Some(block) = host.propose(height, view) {
                    host.answer(Input::ProposalValue {
                        height,
                        view,
                        block,
                    });
                }
            }
            Output::RequestValidity { height, block, .. } => {
                let valid = host.validate(height, &block);
                host.answer(Input::Validity {
                    height,
                    block_hash: block.hash(),
                    valid,
                });
            }
            Output::Decided { block, certificate } => host.decided(block, certificate)?,
            Output::Evidence(evidence) => host.evidence(evidence),
        }
    }
    Ok(())
}
