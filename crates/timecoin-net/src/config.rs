//! [`NetConfig`]: every limit of the transport, with the seed's defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Channel, PeerId};

/// A peer to dial at start and to redial while it is not connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The node key it must prove, if known. A seed that proves another key is refused.
    pub key: Option<PeerId>,
}

/// How many messages a peer may send on one channel: a steady rate and a burst on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRate {
    /// Messages per second, sustained.
    pub per_second: u32,
    /// Messages allowed at once after a quiet spell.
    pub burst: u32,
}

/// The transport's configuration. Every bound of the transport is here or is a named constant.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// Peers to dial at start and to keep dialing while disconnected.
    pub seeds: Vec<SeedPeer>,
    /// Most peers at once, inbound and outbound (seed default 256).
    pub max_peers: usize,
    /// Slots for peers we dial; inbound peers can never take them, so a flood of inbound connections
    /// cannot cut us off from the peers we chose.
    pub max_outbound: usize,
    /// Inbound slots only masternodes of the current set may take (see
    /// [`PeerNetwork::set_masternodes`](crate::PeerNetwork::set_masternodes)), so other peers cannot
    /// crowd validators out.
    pub masternode_slots: usize,
    /// Most connections (including handshakes in progress) from or to one IP address. 1 on a public
    /// network; a local network where every node shares 127.0.0.1 raises it.
    pub max_per_ip: usize,
    /// Most inbound handshakes in progress at once.
    pub max_concurrent_handshakes: usize,
    /// Most inbound handshakes one IP address may start per minute.
    pub handshakes_per_ip_per_minute: u32,
    /// A handshake not finished by then is dropped (a slow-loris peer).
    pub handshake_timeout: Duration,
    /// A peer that sends nothing, not even a keepalive, for this long is closed.
    pub idle_timeout: Duration,
    /// We send a keepalive after this long without sending anything; well under `idle_timeout`.
    pub keepalive_interval: Duration,
    /// How often the dialer looks for free outbound slots to fill (from the seeds, then the address
    /// book). It also looks at once when discovery brings news; each address backs off on its own
    /// ([`DialSchedule`](crate::discovery::DialSchedule)), so a short interval does not hammer anyone.
    pub redial_interval: Duration,
    /// How long a peer whose score reached the threshold stays banned.
    pub ban_duration: Duration,
    /// Also ban the IP address of a banned peer (a node key costs nothing to make; an address does).
    /// Off on a local network where honest nodes share an address.
    pub ban_ip_addresses: bool,
    /// Where bans are kept across restarts; `None` keeps them in memory only.
    pub ban_file: Option<PathBuf>,
    /// Per-peer rate of consensus messages (over quota: back-pressure).
    pub consensus_rate: ChannelRate,
    /// Per-peer rate of sync messages (over quota: back-pressure).
    pub sync_rate: ChannelRate,
    /// Per-peer rate of transactions (over quota: dropped, and scored as spam).
    pub transactions_rate: ChannelRate,
    /// Discovery messages one peer may send per minute, sustained (over quota: dropped, and scored as
    /// spam). Honest peers send a handful per connection.
    pub discovery_per_minute: u32,
    /// Discovery messages one peer may send at once: a new session sends up to three (`GetAddresses`,
    /// its own record, and the answer to ours).
    pub discovery_burst: u32,
    /// The address peers can reach us on, which we sign and announce. `None` (the default) announces
    /// nothing: a listen address like `0.0.0.0` says nothing about where we are reachable. A port of 0
    /// means the port we listen on.
    pub external_addr: Option<SocketAddr>,
    /// Accept discovery records for loopback and private addresses. Off on a public network; a local
    /// testnet on 127.0.0.1 turns it on.
    pub discovery_allow_local: bool,
    /// While outbound slots stay free, one connected peer is asked for more addresses this often (one
    /// ask across all peers, far inside each peer's discovery quota). Every session also asks once at
    /// its start.
    pub discovery_reask_interval: Duration,
    /// Where the address book is kept across restarts (loaded at start, saved every
    /// [`BOOK_SAVE_INTERVAL`](crate::BOOK_SAVE_INTERVAL) and at shutdown); `None` keeps it in memory.
    pub address_book_path: Option<PathBuf>,
    /// Capacity of the queue of [`NetEvent`](crate::NetEvent)s to the engine. When it is full, each
    /// peer's reader waits, which back-pressures that peer's socket.
    pub event_queue: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            seeds: Vec::new(),
            max_peers: 256,
            max_outbound: 16,
            masternode_slots: 64,
            max_per_ip: 1,
            max_concurrent_handshakes: 32,
            handshakes_per_ip_per_minute: 10,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            keepalive_interval: Duration::from_secs(30),
            redial_interval: Duration::from_secs(10),
            ban_duration: Duration::from_secs(24 * 60 * 60),
            ban_ip_addresses: true,
            ban_file: None,
            consensus_rate: ChannelRate {
                per_second: 2_000,
                burst: 4_000,
            },
            sync_rate: ChannelRate {
                per_second: 200,
                burst: 400,
            },
            // Honest gossip relays every transaction the chain takes to every peer, so the quota sits
            // well above the throughput the node is built for (6,500 tx/s on a small machine) and far
            // below what one core could verify; a load test at 3,250 tx/s with 2,000/s got honest
            // validators banned as spammers.
            transactions_rate: ChannelRate {
                per_second: 20_000,
                burst: 40_000,
            },
            discovery_per_minute: 6,
            discovery_burst: 6,
            external_addr: None,
            discovery_allow_local: false,
            discovery_reask_interval: Duration::from_secs(60),
            address_book_path: None,
            event_queue: 4_096,
        }
    }
}

/// The port a node listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 24_100;

impl NetConfig {
    /// The per-second rate limit of `channel`; `None` for [`Channel::Discovery`], which is counted per
    /// minute ([`discovery_per_minute`](Self::discovery_per_minute)).
    pub fn rate(&self, channel: Channel) -> Option<ChannelRate> {
        match channel {
            Channel::Consensus => Some(self.consensus_rate),
            Channel::Sync => Some(self.sync_rate),
            Channel::Transactions => Some(self.transactions_rate),
            Channel::Discovery => None,
        }
    }

    /// Most inbound peers: every slot but the outbound ones.
    pub fn max_inbound(&self) -> usize {
        self.max_peers.saturating_sub(self.max_outbound)
    }

    /// Most inbound peers that are not masternodes of the current set.
    pub fn max_inbound_ordinary(&self) -> usize {
        self.max_inbound().saturating_sub(self.masternode_slots)
    }
}
