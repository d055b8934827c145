//! The write-ahead log entries that make a restarted node unable to equivocate.

use serde::{Deserialize, Serialize};
use timecoin_crypto::PublicKey;
use timecoin_types::{Height, Proposal, View, Vote, Wire};

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
}

impl Wire for WalEntry {
    const NAME: &'static str = "consensus WAL entry";
    const MAX_ENCODED_LEN: usize = Proposal::MAX_ENCODED_LEN + 16;
}

impl WalEntry {
    /// Height of the signed message.
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Proposed(p) => p.height,
            WalEntry::Voted(v) => v.height,
        }
    }

    /// View of the signed message.
    pub fn view(&self) -> View {
        match self {
            WalEntry::Proposed(p) => p.view,
            WalEntry::Voted(v) => v.view,
        }
    }

    /// The key that signed it.
    pub fn signer(&self) -> PublicKey {
        match self {
            WalEntry::Proposed(p) => p.proposer,
            WalEntry::Voted(v) => v.voter,
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
