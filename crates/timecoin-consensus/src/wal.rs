//! The write-ahead log entries that make a restarted node unable to equivocate.

use serde::{Deserialize, Serialize};
use timecoin_crypto::PublicKey;
use timecoin_types::{Height, LockProof, Proposal, View, Vote, WellFormedBlock, Wire};

use crate::Message;

/// A message this node signed, persisted before it is sent.
///
/// Storage keeps entries as opaque bytes ([`Wire::encode`] / [`Wire::decode`]) in append order. Entries of
/// heights below the stored tip + 1 are never needed again and may be deleted once the decided block of
/// that height is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalEntry {
    /// A proposal this node signed as leader (with its block, so it can be re-sent unchanged).
    Proposed(Proposal),
    /// A Prepare or Commit this node signed.
    Voted(Vote),
    /// A Commit for a block, which locks this node on it (L36–L38), with the block and the Prepare
    /// quorum that justified it: after a restart the node can still re-propose the locked block, with its
    /// proof, instead of a fresh one. Stands in for `Voted(commit)` of that slot.
    Locked {
        /// The Commit signed.
        commit: Vote,
        /// The block locked on.
        block: WellFormedBlock,
        /// The Prepares of more than 2/3 of the weight for it in the Commit's view.
        proof: LockProof,
    },
}

impl Wire for WalEntry {
    const NAME: &'static str = "consensus WAL entry";
    const MAX_ENCODED_LEN: usize = Proposal::MAX_ENCODED_LEN + Vote::MAX_ENCODED_LEN + 16;
}

impl WalEntry {
    /// Height of the signed message.
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Proposed(p) => p.height,
            WalEntry::Voted(v) | WalEntry::Locked { commit: v, .. } => v.height,
        }
    }

    /// View of the signed message.
    pub fn view(&self) -> View {
        match self {
            WalEntry::Proposed(p) => p.view,
            WalEntry::Voted(v) | WalEntry::Locked { commit: v, .. } => v.view,
        }
    }

    /// The message it records as signed (a `Locked` entry records its Commit).
    pub fn into_message(self) -> Message {
        match self {
            WalEntry::Proposed(p) => Message::Proposal(p),
            WalEntry::Voted(v) | WalEntry::Locked { commit: v, .. } => Message::Vote(v),
        }
    }

    /// The key that signed it.
    pub fn signer(&self) -> PublicKey {
        match self {
            WalEntry::Proposed(p) => p.proposer,
            WalEntry::Voted(v) | WalEntry::Locked { commit: v, .. } => v.voter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::{ChainId, SecretKey};
    use timecoin_types::{BlockHash, Hash, VotePhase};

    /// Freezes the WAL format: a change to the encoding of a stored entry fails here, so old WALs keep
    /// replaying (bump the hash only with a migration).
    #[test]
    fn the_wal_encoding_is_frozen() {
        let key = SecretKey::from_seed(&[3; 32]);
        let vote = Vote::sign(
            &key,
            ChainId(1337),
            VotePhase::Commit,
            42,
            3,
            Some(BlockHash(Hash::from_bytes([9; 32]))),
        );
        let entry = WalEntry::Voted(vote);
        let bytes = entry.encode();
        assert_eq!(WalEntry::decode(&bytes).unwrap(), entry);
        let digest =
            timecoin_crypto::hash(timecoin_crypto::HashDomain::Custom("test fixture"), &bytes);
        assert_eq!(
            digest.to_hex(),
            "ebfdaa03d6f0af1829e8ccc5c74e5a3ecd47837daa6c52b9f7ddffc52eec50cc"
        );
    }
}
