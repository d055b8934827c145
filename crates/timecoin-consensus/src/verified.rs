//! [`Verified`]: proof that a message's signature and signer were checked before it reached the core;
//! and the [`Signer`] the core signs with (defined in `timecoin-crypto`, re-exported here).

use std::ops::Deref;

pub use timecoin_crypto::Signer;
use timecoin_crypto::{BatchItem, ChainId, SigDomain, verify_batch};
use timecoin_types::{Proposal, Vote};

use crate::sync::CertifiedBlock;
use crate::{ConsensusError, Message, ValidatorSet};

/// A value whose signature (and signer's membership) has been checked.
///
/// The core only accepts `Verified` messages, so signature checking happens outside it, where it can be
/// batched and run on other threads. The only ways to build one are the `verify` functions below and
/// [`Verified::assume_verified`], whose name is the warning: use it for messages the node itself signed,
/// for values read back from its own storage, and in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Wraps a value without checking it. For the node's own messages, replay of its own storage, and
    /// tests; never for bytes from the network.
    pub fn assume_verified(value: T) -> Self {
        Verified(value)
    }

    /// The checked value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Verified<Vote> {
    /// Checks that the voter is in `validators` and the signature is valid on `chain`.
    pub fn verify(
        vote: Vote,
        chain: ChainId,
        validators: &ValidatorSet,
    ) -> Result<Self, ConsensusError> {
        if !validators.contains(&vote.voter) {
            return Err(ConsensusError::NotAValidator {
                key: Box::new(vote.voter),
            });
        }
        vote.verify(chain)?;
        Ok(Verified(vote))
    }

    /// Checks many votes with one batch verification; the result has one entry per vote, in order.
    /// A bad signature costs the batch a fallback to single checks, never a wrong answer.
    pub fn verify_many(
        votes: Vec<Vote>,
        chain: ChainId,
        validators: &ValidatorSet,
    ) -> Vec<Result<Self, ConsensusError>> {
        let messages: Vec<Vec<u8>> = votes
            .iter()
            .map(|v| Vote::signing_message(v.phase, v.height, v.view, v.block_hash))
            .collect();
        let items: Vec<BatchItem<'_>> = votes
            .iter()
            .zip(&messages)
            .map(|(v, message)| BatchItem {
                key: &v.voter,
                domain: SigDomain::Vote,
                chain,
                message,
                signature: &v.signature,
            })
            .collect();
        let batch_ok = verify_batch(&items).is_ok();
        drop(items);
        votes
            .into_iter()
            .map(|vote| {
                if !validators.contains(&vote.voter) {
                    return Err(ConsensusError::NotAValidator {
                        key: Box::new(vote.voter),
                    });
                }
                if !batch_ok {
                    vote.verify(chain)?;
                }
                Ok(Verified(vote))
            })
            .collect()
    }
}

impl Verified<Proposal> {
    /// Checks that the proposer is in `validators`, the signature (over the block's actual hash) is valid
    /// on `chain`, and a proof of lock, if carried, holds more than 2/3 of the weight
    /// ([`ValidatorSet::verify_lock_proof`]). Whether the proposer leads this view is the core's check.
    pub fn verify(
        proposal: Proposal,
        chain: ChainId,
        validators: &ValidatorSet,
    ) -> Result<Self, ConsensusError> {
        if !validators.contains(&proposal.proposer) {
            return Err(ConsensusError::NotAValidator {
                key: Box::new(proposal.proposer),
            });
        }
        proposal.verify(chain)?;
        validators.verify_lock_proof(&proposal, chain)?;
        Ok(Verified(proposal))
    }
}

impl Verified<Message> {
    /// Checks a proposal or a vote (see [`Verified::<Vote>::verify`], [`Verified::<Proposal>::verify`]).
    pub fn verify(
        message: Message,
        chain: ChainId,
        validators: &ValidatorSet,
    ) -> Result<Self, ConsensusError> {
        match message {
            Message::Proposal(p) => Verified::<Proposal>::verify(p, chain, validators)
                .map(|p| Verified(Message::Proposal(p.0))),
            Message::Vote(v) => {
                Verified::<Vote>::verify(v, chain, validators).map(|v| Verified(Message::Vote(v.0)))
            }
        }
    }
}

impl Verified<CertifiedBlock> {
    /// Checks that the block matches its certificate and the certificate is valid for `validators`
    /// (see [`CertifiedBlock::check`]).
    pub fn verify(
        certified: CertifiedBlock,
        chain: ChainId,
        validators: &ValidatorSet,
    ) -> Result<Self, ConsensusError> {
        certified.check(chain, validators)?;
        Ok(Verified(certified))
    }
}
