//! What the engine sends on each [`Channel`]: consensus messages ([`Message`]), transactions
//! ([`Transaction`]) and the sync protocol ([`SyncMessage`]), each in the canonical encoding and
//! decoded with the channel's limit.

use serde::{Deserialize, Serialize};
use timecoin_consensus::{CertifiedBlock, Message};
use timecoin_net::Channel;
use timecoin_types::{Height, Transaction, TypesError, Wire};

/// The sync protocol. A request is answered with the server's [`SyncMessage::Status`] and then up to
/// `count` [`SyncMessage::Block`]s, one per message, so a frame never holds more than one block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// "My finalized tip is at this height."
    Status {
        /// The sender's tip height.
        height: Height,
    },
    /// "Send me your finalized blocks from this height on."
    Request {
        /// First height wanted.
        from: Height,
        /// How many (the server caps it at its own batch size).
        count: u32,
    },
    /// One finalized block with its certificate.
    Block(CertifiedBlock),
}

impl Wire for SyncMessage {
    const NAME: &'static str = "sync message";
    const MAX_ENCODED_LEN: usize = Channel::Sync.max_message_bytes();
}

/// Decodes a consensus-channel message, within the channel's limit.
pub fn decode_consensus(bytes: &[u8]) -> Result<Message, TypesError> {
    if bytes.len() > Channel::Consensus.max_message_bytes() {
        return Err(TypesError::TooLarge {
            what: "consensus message",
            len: bytes.len(),
            max: Channel::Consensus.max_message_bytes(),
        });
    }
    Message::decode(bytes)
}

/// Decodes a transactions-channel message.
pub fn decode_transaction(bytes: &[u8]) -> Result<Transaction, TypesError> {
    Transaction::decode(bytes)
}
