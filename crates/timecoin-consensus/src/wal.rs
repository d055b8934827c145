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
