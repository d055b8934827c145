//! Consensus messages: the leader's proposal (PrePrepare), Prepare and Commit votes, and the commit
//! certificate that finalizes a block. Each signature binds chain id, height, view, phase and block hash.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{ChainId, CryptoError, PublicKey, SigDomain, Signature, Signer};

use crate::{BlockHash, Height, View, WellFormedBlock, Wire, codec};

/// The voting phases after the proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VotePhase {
    /// First vote (Tendermint's prevote).
    Prepare,
    /// Second vote (Tendermint's precommit); >2/3 of weight finalizes.
    Commit,
}

/// A Prepare or Commit vote. `block_hash: None` is a vote for nothing (nil) in this view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// Phase.
    pub phase: VotePhase,
    /// Height.
    pub height: Height,
    /// View.
    pub view: View,
    /// The block voted for, or nil.
    pub block_hash: Option<BlockHash>,
    /// Voter's operator key.
    pub voter: PublicKey,
    /// Over [`Vote::signing_message`].
    pub signature: Signature,
}

impl Wire for Vote {
    const NAME: &'static str = "vote";
    const MAX_ENCODED_LEN: usize = 256;
}

impl Vote {
    /// What a vote signs (the chain id is added by the signature domain).
    pub fn signing_message(
        phase: VotePhase,
        height: Height,
        view: View,
        block_hash: Option<BlockHash>,
    ) -> Vec<u8> {
        codec::encode(&(phase, height, view, block_hash))
    }

    /// Creates and signs a vote with `key` (a [`timecoin_crypto::SecretKey`] or any other [`Signer`]).
    pub fn sign(
        key: &(impl Signer + ?Sized),
        chain: ChainId,
        phase: VotePhase,
        height: Height,
        view: View,
        block_hash: Option<BlockHash>,
    ) -> Vote {
        let msg = Self::signing_message(phase, height, view, block_hash);
        Vote {
            phase,
            height,
            view,
            block_hash,
            voter: key.public_key(),
            signature: key.sign(SigDomain::Vote, chain, &msg),
        }
    }

    /// Checks the signature.
    pub fn verify(&self, chain: ChainId) -> Result<(), CryptoError> {
        let msg = Self::signing_message(self.phase, self.height, self.view, self.block_hash);
        self.voter
            .verify(SigDomain::Vote, chain, &msg, &self.signature)
    }
}

/// A leader's proposal of a block for (height, view). `valid_view` is Tendermint's `validRound`: the view
/// in which this block gathered >2/3 Prepare, when the leader re-proposes it (`None` for a fresh block).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// View.
    pub view: View,
    /// Proof-of-lock view, if re-proposing.
    pub valid_view: Option<View>,
    /// The block; decoding refuses one whose body does not match its header, so the signature over the
    /// block's hash covers the transactions and their signatures.
    pub block: WellFormedBlock,
    /// Leader's key.
    pub proposer: PublicKey,
    /// Over [`Proposal::signing_message`].
    pub signature: Signature,
    /// With a `valid_view`: the Prepares of more than 2/3 of the weight for this block in that view, so
    /// a node that never received them (a double voter may have shown them to one node only) can still
    /// accept the re-proposal (Tendermint L28). Self-authenticating, so outside the leader's signature.
    pub lock_proof: Option<LockProof>,
}

impl Wire for Proposal {
    const NAME: &'static str = "proposal";
    const MAX_ENCODED_LEN: usize =
        crate::MAX_BLOCK_BYTES + 1024 + crate::MAX_VALIDATORS * LOCK_PROOF_BYTES_PER_SIGNER;
}

/// Encoded bytes one signer adds to a [`LockProof`] (a key and a signature).
pub const LOCK_PROOF_BYTES_PER_SIGNER: usize = 96;

/// A proof of lock: the `(voter, signature)` pairs of Prepare votes for one block in one view, sorted by
/// voter, no voter twice. The height, view and block come from the proposal that carries it; each
/// signature signs [`Vote::signing_message`] of a Prepare for them. Checking the weight needs the
/// validator set, which lives in `timecoin-consensus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockProof {
    /// `(voter, signature)` pairs.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl Proposal {
    /// What a proposal signs: the block's hash stands for the block, header and body (the header commits
    /// to the body through `tx_root` and `witness_root`).
    pub fn signing_message(
        height: Height,
        view: View,
        valid_view: Option<View>,
        block_hash: &BlockHash,
    ) -> Vec<u8> {
        codec::encode(&(height, view, valid_view, block_hash))
    }

    /// Creates and signs a proposal with `key` (a [`timecoin_crypto::SecretKey`] or any other
    /// [`Signer`]).
    pub fn sign(
        key: &(impl Signer + ?Sized),
        chain: ChainId,
        height: Height,
        view: View,
        valid_view: Option<View>,
        block: WellFormedBlock,
    ) -> Proposal {
        let msg = Self::signing_message(height, view, valid_view, &block.hash());
        Proposal {
            height,
            view,
            valid_view,
            block,
            proposer: key.public_key(),
            signature: key.sign(SigDomain::Proposal, chain, &msg),
            lock_proof: None,
        }
    }

    /// The same proposal carrying `proof` for its `valid_view` (the leader's signature is unchanged: the
    /// proof stands on its own signatures).
    pub fn with_lock_proof(mut self, proof: LockProof) -> Proposal {
        self.lock_proof = Some(proof);
        self
    }

    /// Checks the signature (over the block's actual hash).
    pub fn verify(&self, chain: ChainId) -> Result<(), CryptoError> {
        let msg =
            Self::signing_message(self.height, self.view, self.valid_view, &self.block.hash());
        self.proposer
            .verify(SigDomain::Proposal, chain, &msg, &self.signature)
    }
}

/// The Commit signatures of more than 2/3 of the validator set's weight for one block: proof that the
/// block is final. Checking the weight needs the validator set, which lives in `timecoin-consensus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height.
    pub height: Height,
    /// View in which the Commits were cast.
    pub view: View,
    /// The finalized block.
    pub block_hash: BlockHash,
    /// `(voter, signature)` pairs, sorted by voter, no voter twice.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl Wire for CommitCertificate {
    const NAME: &'static str = "commit certificate";
    const MAX_ENCODED_LEN: usize = 64 + crate::MAX_VALIDATORS * 96;
}

impl CommitCertificate {
    /// The message each signature in the certificate signed.
    pub fn signing_message(&self) -> Vec<u8> {
        Vote::signing_message(
            VotePhase::Commit,
            self.height,
            self.view,
            Some(self.block_hash),
        )
    }
}
