//! The crate's two error enums: [`NetError`], what the engine sees when it sends, and [`PeerError`], why
//! the transport refused or closed one connection.
//!
//! They stay apart because they answer different people: the engine acts on a `NetError` (a dropped
//! send, a shut-down network), while a `PeerError` is a logged reason and, when the peer is to blame, a
//! misbehaviour score.

use std::net::SocketAddr;
use std::time::Duration;

use timecoin_crypto::ChainId;

use crate::{Channel, Misbehavior, PeerId};

/// Errors of the network boundary.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    /// A message is larger than its channel allows.
    #[error("{len}-byte message exceeds the {channel} channel's limit of {max} bytes")]
    TooLarge {
        /// The channel.
        channel: Channel,
        /// The message's length.
        len: usize,
        /// The channel's limit.
        max: usize,
    },
    /// The peer is not connected (a send to it is dropped, as a lost packet would be).
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// The outbound queue for this peer and channel is full: the message was dropped.
    #[error("the {channel} queue to peer {peer} is full")]
    QueueFull {
        /// The peer.
        peer: PeerId,
        /// The channel.
        channel: Channel,
    },
    /// The engine asked to send on a channel the network keeps to itself ([`Channel::Discovery`]).
    #[error("the {0} channel is the network's own")]
    ReservedChannel(Channel),
    /// The network is shut down.
    #[error("the network is shut down")]
    Closed,
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address in the config.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: String,
    },
    /// The ban list file could not be read or written.
    #[error("ban list {path}: {reason}")]
    BanList {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Discovery bytes (an address record or an address gossip message) that do not decode
    /// canonically; the string names the rule they broke.
    #[error("malformed address message: {0}")]
    MalformedAddresses(&'static str),
    /// An address gossip message with more records than one message may carry.
    #[error("{count} address records in one message, the limit is {max}")]
    TooManyAddresses {
        /// Records it claimed or held.
        count: usize,
        /// The limit ([`MAX_ADDRESSES_PER_MESSAGE`](crate::discovery::MAX_ADDRESSES_PER_MESSAGE)).
        max: usize,
    },
    /// An address record signed for another chain.
    #[error("address record for chain {theirs}, ours is {ours}")]
    AddressWrongChain {
        /// Ours.
        ours: ChainId,
        /// The record's.
        theirs: ChainId,
    },
    /// An address record older than the freshness window allows.
    #[error("address record is {age_ms} ms old, the limit is {max_ms} ms")]
    AddressTooOld {
        /// How old it is.
        age_ms: u64,
        /// The most age accepted.
        max_ms: u64,
    },
    /// An address record stamped further in the future than clock skew explains.
    #[error("address record is {ahead_ms} ms in the future, the limit is {max_ms} ms")]
    AddressFromFuture {
        /// How far ahead of our clock it is.
        ahead_ms: u64,
        /// The most skew accepted.
        max_ms: u64,
    },
    /// An address nobody can be dialed at (unspecified, port 0, multicast), or a local one on a network
    /// that does not allow them.
    #[error("address {0} is not routable")]
    AddressNotRoutable(SocketAddr),
    /// An address record whose node key does not parse or whose signature does not verify.
    #[error("address record signature does not verify")]
    AddressBadSignature,
    /// The address book file could not be written.
    #[error("address book {path}: {reason}")]
    AddressBook {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl NetError {
    /// What this costs the peer that sent the offending bytes, for the errors a peer can cause. A stale,
    /// early or local address costs nothing: clocks drift and honest nodes relay what they heard.
    pub fn misbehavior(&self) -> Option<Misbehavior> {
        match self {
            NetError::MalformedAddresses(_) | NetError::TooManyAddresses { .. } => {
                Some(Misbehavior::Malformed)
            }
            NetError::AddressWrongChain { .. } | NetError::AddressBadSignature => {
                Some(Misbehavior::Invalid)
            }
            _ => None,
        }
    }
}

/// Why one connection was refused or closed. Logged with the peer's address; when the peer is to blame,
/// [`PeerError::misbehavior`] says what it costs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A handshake message longer than the handshake's fixed limit.
    #[error("{len}-byte handshake message exceeds the limit of {max} bytes")]
    HandshakeFrameTooLarge {
        /// The length prefix it sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame whose length prefix is over its channel's limit (refused before its body was read).
    #[error("{len}-byte frame exceeds the {channel} channel's limit of {max} bytes")]
    FrameTooLarge {
        /// The channel its tag named.
        channel: Channel,
        /// The length prefix it sent.
        len: usize,
        /// The channel's limit.
        max: usize,
    },
    /// A frame tag that names no channel.
    #[error("unknown frame tag {0:#04x}")]
    UnknownTag(u8),
    /// A keepalive frame that carries a body.
    #[error("keepalive frame with a {0}-byte body")]
    KeepaliveWithBody(usize),
    /// Noise refused a message: bytes that are not a handshake message, or a record that does not
    /// decrypt (garbage, tampering, or a replay within the session).
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// The socket failed or closed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake did not finish in time.
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer sent nothing (not even a keepalive) for too long.
    #[error("silent for {0:?}")]
    Idle(Duration),
    /// A handshake payload that does not decode.
    #[error("malformed handshake payload: {0}")]
    MalformedHandshake(&'static str),
    /// The peer runs another protocol version.
    #[error("protocol version {theirs}, ours is {ours}")]
    WrongVersion {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The peer is on another chain.
    #[error("chain id {theirs}, ours is {ours}")]
    WrongChain {
        /// Ours.
        ours: ChainId,
        /// Theirs.
        theirs: ChainId,
    },
    /// The peer has another genesis.
    #[error("genesis {theirs}, ours is {ours}")]
    WrongGenesis {
        /// Ours (hex).
        ours: String,
        /// Theirs (hex).
        theirs: String,
    },
    /// The dialed peer holds another node key than the one we meant to reach.
    #[error("expected node key {expected}, the peer proved {actual}")]
    UnexpectedPeer {
        /// The key we dialed for.
        expected: PeerId,
        /// The key the peer proved.
        actual: PeerId,
    },
    /// A handshake signature that does not verify over this session's handshake hash (a forgery or a
    /// proof replayed from another session).
    #[error("the {0} signature does not verify over this session")]
    BadSignature(&'static str),
    /// We reached ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// The peer or its address is banned.
    #[error("banned")]
    Banned,
    /// A connection limit is reached (named by the limit).
    #[error("limit reached: {0}")]
    LimitReached(&'static str),
    /// We already have a session with this peer.
    #[error("already connected")]
    AlreadyConnected,
    /// Its misbehaviour score crossed the ban threshold.
    #[error("misbehaviour score {0} reached the ban threshold")]
    ScoreExceeded(u32),
    /// The local network is shutting down.
    #[error("shutting down")]
    Shutdown,
}

impl PeerError {
    /// What this costs the peer, if it is the peer's fault. Socket failures, timeouts and our own limits
    /// cost nothing: a flaky link is not an offence.
    pub fn misbehavior(&self) -> Option<Misbehavior> {
        match self {
            PeerError::HandshakeFrameTooLarge { .. }
            | PeerError::FrameTooLarge { .. }
            | PeerError::UnknownTag(_)
            | PeerError::KeepaliveWithBody(_)
            | PeerError::Noise(_)
            | PeerError::MalformedHandshake(_) => Some(Misbehavior::Malformed),
            PeerError::BadSignature(_) => Some(Misbehavior::Invalid),
            _ => None,
        }
    }
}
