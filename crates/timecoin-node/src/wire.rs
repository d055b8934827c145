//! What the engine sends on each [`Channel`]: consensus messages ([`Message`]), transactions
//! ([`Transaction`]) and the sync protocol ([`SyncMessage`]), each in the canonical encoding and
//! decoded with the channel's limit.

use serde::{Deserialize, Serialize};
use timecoin_consensus::{CertifiedBlock, Message};
use timecoin_net::Channel;
use timecoin_net::compress::{compress, decompress_bounded};
use timecoin_types::{
    Block, BlockHash, BlockHeader, CommitCertificate, Height, OutPoint, Transaction, TxOut,
    TypesError, Wire,
};

/// Most headers one [`SyncMessage::Headers`] answer carries.
pub const MAX_HEADERS_PER_MESSAGE: u32 = 100;

/// Bytes of headers (with the bodies they carry) one answer stops at, well inside the sync channel's
/// limit: the answer ends early rather than growing past it.
pub const HEADERS_ANSWER_BUDGET: usize = 2 * 1024 * 1024;

/// The sync protocol.
///
/// - Block sync: a [`Request`](SyncMessage::Request) is answered with the server's
///   [`Status`](SyncMessage::Status) and then up to `count` [`Block`](SyncMessage::Block)s, one per
///   message, so a frame never holds more than one block.
/// - State sync (a new node, see [`crate::statesync`]): [`HeadersRequest`](SyncMessage::HeadersRequest)
///   → [`Headers`](SyncMessage::Headers) to walk certified headers from genesis, then
///   [`PageRequest`](SyncMessage::PageRequest) → [`Page`](SyncMessage::Page) (or
///   [`PageUnavailable`](SyncMessage::PageUnavailable)) for the UTXO set at the server's tip.
///
/// New variants are only ever appended: the variant index is the first byte on the wire.
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
    /// "Send me the certified headers from this height on."
    HeadersRequest {
        /// First height wanted.
        from: Height,
        /// How many (the server caps it at [`MAX_HEADERS_PER_MESSAGE`] and [`HEADERS_ANSWER_BUDGET`]).
        count: u32,
    },
    /// Consecutive certified headers, ascending, from the height asked for (empty: the server has none
    /// there).
    Headers(Vec<SyncedHeader>),
    /// "Send me a page of your UTXO set at this height, after this outpoint."
    PageRequest {
        /// The height the set must be read at (the server's tip, or it answers
        /// [`PageUnavailable`](SyncMessage::PageUnavailable)).
        height: Height,
        /// The cursor: outputs strictly after it (`None`: from the start).
        after: Option<OutPoint>,
        /// Outputs wanted (capped at the store's `MAX_UTXO_PAGE`).
        limit: u32,
    },
    /// A page of the UTXO set: an lz4-compressed [`SnapshotPage`] (inflated only up to its limit).
    Page {
        /// The compressed page.
        compressed: Vec<u8>,
    },
    /// "My tip is not the height you asked a page at."
    PageUnavailable {
        /// The server's tip.
        tip: Height,
    },
}

/// A finalized header with its commit certificate and, when the header's `validators_hash` differs
/// from its parent's, the block's body, from which the client recomputes the validator schedule
/// (a body whose roots do not match the header is refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its certificate.
    pub certificate: CommitCertificate,
    /// The body, when the schedule hash moved at this header.
    pub body: Option<Block>,
}

/// One page of a UTXO set, as [`SyncMessage::Page`] carries it (compressed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage {
    /// The height the page was read at.
    pub height: Height,
    /// The hash of that block.
    pub hash: BlockHash,
    /// The cursor it was asked with, echoed so a late or duplicated answer is told from the current one.
    pub after: Option<OutPoint>,
    /// Outputs, ascending, all after the cursor asked with.
    pub entries: Vec<(OutPoint, TxOut)>,
    /// The last outpoint of the page while more follow; `None` when it reached the end of the set.
    pub next: Option<OutPoint>,
}

impl Wire for SnapshotPage {
    const NAME: &'static str = "UTXO snapshot page";
    // At most `MAX_UTXO_PAGE` outputs of at most 128 encoded bytes each, and the fixed fields.
    const MAX_ENCODED_LEN: usize = timecoin_storage::MAX_UTXO_PAGE * 128 + 256;
}

impl SnapshotPage {
    /// The page as [`SyncMessage::Page`] carries it.
    pub fn to_message(&self) -> SyncMessage {
        SyncMessage::Page {
            compressed: compress(&self.encode()),
        }
    }

    /// Inflates (never past [`SnapshotPage::MAX_ENCODED_LEN`]) and decodes a page.
    pub fn from_compressed(compressed: &[u8]) -> Result<Self, TypesError> {
        let bytes = decompress_bounded(compressed, Self::MAX_ENCODED_LEN).map_err(|e| {
            TypesError::Malformed {
                what: Self::NAME,
                reason: e.to_string(),
            }
        })?;
        Self::decode(&bytes)
    }
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
