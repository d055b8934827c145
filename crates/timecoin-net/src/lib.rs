//! TimeCoin's network: the boundary the node engine talks to, and the authenticated, encrypted and
//! bounded TCP transport that implements it.
//!
//! A node talks to peers on a few [`Channel`]s. Each has a priority (consensus first, so a flood of
//! transactions never delays a vote) and a size limit, checked by whoever receives bytes from a socket
//! before anything is decoded. A peer is named by its [`PeerId`], the node key the transport verified
//! during its handshake, so the engine never acts on an identity that was only claimed.
//!
//! - [`Network`] is how the engine's host sends: [`send`](Network::send) to one peer,
//!   [`broadcast`](Network::broadcast) to all.
//! - [`NetEvent`] is what a network delivers: a peer joined (with its verified key and, if it is a
//!   masternode, its operator key), left, or sent bytes on a channel.
//!
//! [`TcpNetwork`] implements them over TCP: a Noise XX handshake bound to the node's Ed25519 key
//! ([`handshake`]), length-prefixed frames with per-channel limits ([`frame`]), connection slots counted
//! with atomics ([`limits`]), per-channel rate limits, bounded priority queues, scores and bans
//! ([`peers`], [`bans`]), gossip de-duplication ([`gossip`]), and messages and bytes counted by channel
//! ([`Traffic`]). It runs on any [`Transport`], so tests drive the same session code over a simulated
//! network. The simulator in `timecoin-sim` implements the boundary over its seeded runtime instead. The engine in `timecoin-node` sees only the boundary, so
//! either can be swapped without touching what decides. The wire protocol is in `docs/NETWORK.md`.
//!
//! # Examples
//! Two nodes on loopback: the second dials the first, checking it reached the key it meant to, and
//! sends it a vote.
//! ```
//! use std::net::SocketAddr;
//! use bytes::Bytes;
//! use timecoin_crypto::{ChainId, Hash, SecretKey};
//! use timecoin_net::{Channel, NetConfig, NetEvent, Network, NodeIdentity, SeedPeer, TcpNetwork};
//!
//! # async fn two_nodes() -> Result<(), Box<dyn std::error::Error>> {
//! let (chain, genesis) = (ChainId(7), Hash::from_bytes([1; 32]));
//! // One address for both nodes, so allow more than the public default of one connection per IP.
//! let local = NetConfig {
//!     listen: SocketAddr::from(([127, 0, 0, 1], 0)),
//!     max_per_ip: 4,
//!     ..NetConfig::default()
//! };
//! let alice_key = NodeIdentity::new(SecretKey::from_seed(&[1; 32]), chain, genesis);
//! let alice_id = alice_key.peer_id();
//! let (alice, mut alice_events) = TcpNetwork::bind(local.clone(), alice_key).await?;
//!
//! let seeds = vec![SeedPeer { addr: alice.local_addr()?, key: Some(alice_id) }];
//! let bob_key = NodeIdentity::new(SecretKey::from_seed(&[2; 32]), chain, genesis);
//! let (bob, mut bob_events) = TcpNetwork::bind(NetConfig { seeds, ..local }, bob_key).await?;
//!
//! // Bob has joined once his side of the handshake is done; then he can send.
//! while !matches!(bob_events.recv().await, Some(NetEvent::Joined { .. })) {}
//! bob.send(&alice_id, Channel::Consensus, Bytes::from_static(b"vote"))?;
//! loop {
//!     if let Some(NetEvent::Message { channel, bytes, .. }) = alice_events.recv().await {
//!         assert_eq!((channel, &bytes[..]), (Channel::Consensus, &b"vote"[..]));
//!         break;
//!     }
//! }
//! # alice.shutdown();
//! # bob.shutdown();
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new()?.block_on(two_nodes())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A network that records what it was asked to send, as a test double:
//! ```
//! use std::sync::Mutex;
//! use bytes::Bytes;
//! use timecoin_net::{Channel, NetError, Network, PeerId};
//! use timecoin_types::Genesis;
//!
//! #[derive(Default)]
//! struct Recorder(Mutex<Vec<(Option<PeerId>, Channel, Bytes)>>);
//!
//! impl Network for Recorder {
//!     fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
//!         channel.check_len(message.len())?;
//!         self.0.lock().unwrap().push((Some(*to), channel, message));
//!         Ok(())
//!     }
//!     fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
//!         channel.check_len(message.len())?;
//!         self.0.lock().unwrap().push((None, channel, message));
//!         Ok(())
//!     }
//! }
//!
//! let net = Recorder::default();
//! let peer = PeerId::from(Genesis::local_validator_key(1).public_key());
//! net.send(&peer, Channel::Consensus, Bytes::from_static(b"vote"))?;
//! // Too big for its channel: refused before it reaches a socket.
//! let huge = Bytes::from(vec![0u8; Channel::Transactions.max_message_bytes() + 1]);
//! assert!(net.broadcast(Channel::Transactions, huge).is_err());
//! assert_eq!(net.0.lock().unwrap().len(), 1);
//! # Ok::<(), NetError>(())
//! ```
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

use std::fmt;

use bytes::Bytes;
use timecoin_crypto::PublicKey;
use timecoin_types::{MAX_BLOCK_BYTES, MAX_MESSAGE_BYTES, MAX_TX_BYTES};

mod addresses;
pub mod bans;
mod cipher;
pub mod compress;
mod config;
pub mod discovery;
mod error;
pub mod frame;
pub mod gossip;
pub mod handshake;
pub mod limits;
#[cfg(test)]
mod loopback_tests;
mod network;
pub mod peers;
mod session;
mod traffic;
mod transport;

pub use config::{ChannelRate, DEFAULT_PORT, NetConfig, SeedPeer};
pub use error::{NetError, PeerError};
pub use handshake::NodeIdentity;
pub use network::{BOOK_SAVE_INTERVAL, NetStats, OWN_RECORD_REFRESH, PeerNetwork, TcpNetwork};
pub use traffic::{ChannelTraffic, Traffic};
pub use transport::{TcpTransport, Transport};

/// A peer's identity: the node key its transport authenticated during the handshake.
///
/// Distinct from a masternode's operator key (a node may run without one), which a peer proves
/// separately ([`NetEvent::Joined::masternode`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// The node key's 32 bytes (kept unparsed: an id is compared and logged, never verified against).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PeerId {
    /// An id from its 32 bytes (as stored in a ban list).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PeerId(bytes)
    }
}

impl From<PublicKey> for PeerId {
    fn from(key: PublicKey) -> Self {
        PeerId(*key.as_bytes())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 bytes are plenty to tell peers apart in a log line.
        let bytes = &self.0;
        for b in bytes.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// Room a frame of the sync channel leaves around one certified block: the certificate (at most
/// [`timecoin_types::MAX_VALIDATORS`] signatures of 96 bytes would not fit, but a certificate needs only
/// a quorum of a set that fits in a block-sized message) and the message's own envelope.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// A logical stream between two nodes. The order of the variants is the priority order: when a link is
/// busy, a transport sends pending consensus messages before sync traffic and sync before transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Proposals and votes. A proposal carries a whole block.
    Consensus,
    /// Certified blocks and sync requests.
    Sync,
    /// Transactions being gossiped.
    Transactions,
    /// Peer discovery (`GetAddresses`, `Addresses`). The network speaks it itself: its messages are
    /// never delivered as [`NetEvent::Message`], and [`TcpNetwork`] refuses to send on it for the engine.
    Discovery,
}

impl Channel {
    /// Every channel, highest priority first.
    pub const ALL: [Channel; 4] = [
        Channel::Consensus,
        Channel::Sync,
        Channel::Transactions,
        Channel::Discovery,
    ];

    /// The channels the engine sends and receives on: all but [`Channel::Discovery`], which the
    /// network keeps to itself.
    pub const ENGINE: [Channel; 3] = [Channel::Consensus, Channel::Sync, Channel::Transactions];

    /// The largest message a peer may send on this channel. Anything longer is refused before it is
    /// decoded (and counts against the sender).
    ///
    /// Consensus and sync carry one block each plus a proof or a certificate; transactions carry one
    /// transaction. All stay under the seed's 10 MB frame ([`MAX_MESSAGE_BYTES`]).
    pub const fn max_message_bytes(self) -> usize {
        match self {
            Channel::Consensus | Channel::Sync => {
                let limit = MAX_BLOCK_BYTES + 2 * 1024 * 1024 + ENVELOPE_BYTES;
                if limit < MAX_MESSAGE_BYTES {
                    limit
                } else {
                    MAX_MESSAGE_BYTES
                }
            }
            Channel::Transactions => MAX_TX_BYTES + 64,
            Channel::Discovery => discovery::MAX_ADDRESS_MESSAGE_BYTES,
        }
    }

    /// Its priority: 0 is served first.
    pub const fn priority(self) -> u8 {
        match self {
            Channel::Consensus => 0,
            Channel::Sync => 1,
            Channel::Transactions => 2,
            Channel::Discovery => 3,
        }
    }

    /// A one-byte tag for framing.
    pub const fn tag(self) -> u8 {
        self.priority()
    }

    /// The channel a framing tag names.
    pub const fn from_tag(tag: u8) -> Option<Channel> {
        match tag {
            0 => Some(Channel::Consensus),
            1 => Some(Channel::Sync),
            2 => Some(Channel::Transactions),
            3 => Some(Channel::Discovery),
            _ => None,
        }
    }

    /// Its lower-case name, as logs and metric labels show it.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Consensus => "consensus",
            Channel::Sync => "sync",
            Channel::Transactions => "transactions",
            Channel::Discovery => "discovery",
        }
    }

    /// Refuses a message longer than [`max_message_bytes`](Self::max_message_bytes).
    pub fn check_len(self, len: usize) -> Result<(), NetError> {
        let max = self.max_message_bytes();
        if len > max {
            return Err(NetError::TooLarge {
                channel: self,
                len,
                max,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a network tells its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A peer completed the handshake.
    Joined {
        /// Its verified node key.
        peer: PeerId,
        /// The masternode operator key it proved to hold, if any.
        masternode: Option<PublicKey>,
    },
    /// A peer disconnected or was dropped.
    Left(PeerId),
    /// A peer sent a message. The bytes are undecoded and untrusted; the transport only checked that
    /// they fit the channel's limit.
    Message {
        /// The verified sender.
        from: PeerId,
        /// The channel it came on.
        channel: Channel,
        /// The message.
        bytes: Bytes,
    },
}

/// How a node sends. Both methods queue and return at once: a send never blocks on a slow peer. A
/// transport bounds its queues and drops (with [`NetError::QueueFull`]) rather than grow.
pub trait Network: Send + Sync {
    /// Queues `message` for `to` on `channel`.
    fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError>;

    /// Queues `message` for every connected peer on `channel`.
    fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError>;

    /// Tells the network that `peer` misbehaved, so it can score, disconnect or ban it. A network
    /// without scores may ignore it (the default).
    fn report(&self, peer: &PeerId, offence: Misbehavior) {
        let _ = (peer, offence);
    }

    /// Tells the network which masternode operator keys decide the next height, so it can keep slots
    /// for them. A network without reserved slots may ignore it (the default).
    fn set_validators(&self, operators: &[PublicKey]) {
        let _ = operators;
    }
}

/// How bad a peer's behaviour was: a transport turns these into a score and disconnects or bans a peer
/// whose score crosses its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Misbehavior {
    /// Bytes that did not decode, or a message over its channel's limit.
    Malformed,
    /// A decodable message whose signature, membership or certificate check failed.
    Invalid,
    /// A sync answer that did not fit what was asked (wrong height, a block not on our chain).
    BadSync,
    /// The peer reported a tip height lower than one it reported before.
    HeightRegressed,
    /// Repeats of a message it already sent, past what retransmission explains.
    Spam,
}

impl Misbehavior {
    /// Score points the offence costs; a transport bans at a threshold it chooses (the default transport:
    /// 100).
    pub const fn penalty(self) -> u32 {
        match self {
            Misbehavior::Malformed | Misbehavior::Invalid => 20,
            Misbehavior::BadSync => 10,
            Misbehavior::HeightRegressed => 5,
            Misbehavior::Spam => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Channel, NetError};

    #[test]
    fn channel_limits_fit_a_frame_and_tags_round_trip() {
        for channel in Channel::ALL {
            assert!(channel.max_message_bytes() <= timecoin_types::MAX_MESSAGE_BYTES);
            assert_eq!(Channel::from_tag(channel.tag()), Some(channel));
        }
        assert!(
            Channel::Consensus.max_message_bytes() > timecoin_types::MAX_BLOCK_BYTES,
            "a proposal carries a whole block"
        );
        assert_eq!(Channel::from_tag(4), None);
        assert!(
            Channel::Discovery.max_message_bytes() >= crate::discovery::MAX_ADDRESS_MESSAGE_BYTES,
            "a full Addresses message fits"
        );
        assert!(matches!(
            Channel::Transactions.check_len(timecoin_types::MAX_TX_BYTES + 65),
            Err(NetError::TooLarge { .. })
        ));
        assert!(Channel::Consensus < Channel::Sync && Channel::Sync < Channel::Transactions);
        assert!(Channel::Transactions < Channel::Discovery);
    }
}
