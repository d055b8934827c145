//! What validators exchange (proposals and votes), and the evidence of a validator signing two
//! conflicting messages for one slot.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{ChainId, PublicKey, SigDomain, Signature};
use timecoin_types::{BlockHash, Height, Proposal, View, Vote, VotePhase, Wire};

use crate::ConsensusError;

/// A consensus message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A leader's PrePrepare.
    Proposal(Proposal),
    /// A Prepare or Commit.
    Vote(Vote),
}

impl Wire for Message {
    const NAME: &'static str = "consensus message";
    const MAX_ENCODED_LEN: usize = Proposal::MAX_ENCODED_LEN + 16;
}

impl Message {
    /// Height the message is for.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.height,
            Message::Vote(v) => v.height,
        }
    }

    /// View the message is for.
    pub fn view(&self) -> View {
        match self {
            Message::Proposal(p) => p.view,
            Message::Vote(v) => v.view,
        }
    }

    /// The signer.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Proposal(p) => p.proposer,
            Message::Vote(v) => v.voter,
        }
    }
}

/// What a proposal's signature covers, without the block: enough to prove a double proposal without
/// keeping two blocks of up to 4 MiB each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalDigest {
    /// Height.
    pub height: Height,
    /// View.
    pub view: View,
    /// The proof-of-lock view it claimed.
    pub valid_view: Option<View>,
    /// Hash of the proposed block.
    pub block_hash: BlockHash,
    /// The leader.
    pub proposer: PublicKey,
    /// Its signature over [`Proposal::signing_message`].
    pub signature: Signature,
}

impl ProposalDigest {
    /// The digest of a proposal.
    pub fn of(proposal: &Proposal) -> Self {
        ProposalDigest {
            height: proposal.height,
            view: proposal.view,
            valid_view: proposal.valid_view,
            block_hash: proposal.block.hash(),
            proposer: proposal.proposer,
            signature: proposal.signature,
        }
    }

    /// Checks the signature.
    pub fn verify(&self, chain: ChainId) -> Result<(), ConsensusError> {
        let msg =
            Proposal::signing_message(self.height, self.view, self.valid_view, &self.block_hash);
        self.proposer
            .verify(SigDomain::Proposal, chain, &msg, &self.signature)?;
        Ok(())
    }
}

/// Proof that one validator signed two different messages for the same (height, view, phase).
///
/// Either message alone is legitimate; together they are an equivocation, which an honest validator never
/// commits. Anyone can check it with [`Evidence::verify`] and the chain id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two different Prepare (or two different Commit) votes in one view.
    DoubleVote {
        /// The vote seen first.
        first: Vote,
        /// The conflicting vote.
        second: Vote,
    },
    /// Two different proposals for one view from its leader.
    DoubleProposal {
        /// The proposal seen first.
        first: ProposalDigest,
        /// The conflicting proposal.
        second: ProposalDigest,
    },
}

impl Wire for Evidence {
    const NAME: &'static str = "evidence";
    const MAX_ENCODED_LEN: usize = 1024;
}

impl Evidence {
    /// The validator that equivocated.
    pub fn offender(&self) -> PublicKey {
        match self {
            Evidence::DoubleVote { first, .. } => first.voter,
            Evidence::DoubleProposal { first, .. } => first.proposer,
        }
    }

    /// Height of the conflicting messages.
    pub fn height(&self) -> Height {
        match self {
            Evidence::DoubleVote { first, .. } => first.height,
            Evidence::DoubleProposal { first, .. } => first.height,
        }
    }

    /// View of the conflicting messages.
    pub fn view(&self) -> View {
        match self {
            Evidence::DoubleVote { first, .. } => first.view,
            Evidence::DoubleProposal { first, .. } => first.view,
        }
    }

    /// The vote phase, or `None` for a double proposal.
    pub fn phase(&self) -> Option<VotePhase> {
        match self {
            Evidence::DoubleVote { first, .. } => Some(first.phase),
            Evidence::DoubleProposal { .. } => None,
        }
    }

    /// Checks that both messages are validly signed by one key, for one slot, and differ.
    pub fn verify(&self, chain: ChainId) -> Result<(), ConsensusError> {
        match self {
            Evidence::DoubleVote { first, second } => {
                let same_slot = first.voter == second.voter
                    && first.height == second.height
                    && first.view == second.view
                    && first.phase == second.phase;
                if !same_slot || first.block_hash == second.block_hash {
                    return Err(ConsensusError::NotAConflict);
                }
                first.verify(chain)?;
                second.verify(chain)?;
            }
            Evidence::DoubleProposal { first, second } => {
                let same_slot = first.proposer == second.proposer
                    && first.height == second.height
                    && first.view == second.view;
                let differ =
                    first.block_hash != second.block_hash || first.valid_view != second.valid_view;
                if !same_slot || !differ {
                    return Err(ConsensusError::NotAConflict);
                }
                first.verify(chain)?;
                second.verify(chain)?;
            }
        }
        Ok(())
    }
}
