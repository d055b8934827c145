//! [`PeerNetwork`]: the running network. It accepts and dials over a [`Transport`], authenticates every
//! connection, admits it within the slot limits, runs its session, and is the engine's [`Network`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use timecoin_crypto::PublicKey;
use tokio::sync::mpsc;

use crate::bans::BanList;
use crate::handshake::{self, Authenticated, NodeIdentity};
use crate::limits::{AddressSlot, Direction};
use crate::peers::{PeerLink, Peers};
use crate::transport::{TcpTransport, Transport};
use crate::{
    Channel, Misbehavior, NetConfig, NetError, NetEvent, Network, PeerError, PeerId, SeedPeer,
};

/// The network over real TCP.
pub type TcpNetwork = PeerNetwork<TcpTransport>;

/// A cheap, cloneable handle to a running network. Dropping handles does not stop it; call
/// [`shutdown`](Self::shutdown).
pub struct PeerNetwork<T: Transport> {
    shared: Arc<Shared<T>>,
}

impl<T: Transport> Clone for PeerNetwork<T> {
    fn clone(&self) -> Self {
        PeerNetwork {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<T> {
    transport: T,
    identity: NodeIdentity,
    peers: Arc<Peers>,
    next_connection: AtomicU64,
}

/// A snapshot of the network's counters, for metrics and for tests that check memory stays bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetStats {
    /// Peers that dialed us.
    pub inbound: usize,
    /// Peers we dialed.
    pub outbound: usize,
    /// Inbound handshakes in progress.
    pub handshakes: usize,
    /// Bytes queued to all peers.
    pub queued_bytes: usize,
    /// Bans held.
    pub bans: usize,
}

impl TcpNetwork {
    /// Listens on `config.listen`, dials `config.seeds`, and returns the handle and the engine's
    /// events. Must be called inside a tokio runtime.
    pub async fn bind(
        config: NetConfig,
        identity: NodeIdentity,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>), NetError> {
        let transport = TcpTransport::bind(config.listen)
            .await
            .map_err(|e| NetError::Listen {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        PeerNetwork::start(config, identity, transport)
    }
}

impl<T: Transport> PeerNetwork<T> {
    /// Starts a network on `transport`: accepts peers, dials the seeds, and returns the handle and the
    /// engine's events. Must be called inside a tokio runtime.
    pub fn start(
        config: NetConfig,
        identity: NodeIdentity,
        transport: T,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>), NetError> {
        let bans = match &config.ban_file {
            Some(path) => BanList::load(path)?,
            None => BanList::in_memory(),
        };
        let (events, receiver) = mpsc::channel(config.event_queue.max(1));
        let seeds = config.seeds.clone();
        let shared = Arc::new(Shared {
            transport,
            identity,
            peers: Peers::new(config, bans, events),
            next_connection: AtomicU64::new(0),
        });
        let network = PeerNetwork { shared };
        tokio::spawn(accept_loop(Arc::clone(&network.shared)));
        for seed in seeds {
            tokio::spawn(seed_loop(Arc::clone(&network.shared), seed));
        }
        Ok((network, receiver))
    }

    /// The address peers reach us on.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.shared
            .transport
            .local_addr()
            .map_err(|e| NetError::Listen {
                addr: self.shared.peers.config().listen,
                reason: e.to_string(),
            })
    }

    /// Our own id.
    pub fn local_id(&self) -> PeerId {
        self.shared.identity.peer_id()
    }

    /// Dials `addr` once, in the background; if `expected` is set, a peer that proves another key is
    /// refused. The outcome shows up as a [`NetEvent::Joined`] (or nothing, and a log line).
    pub fn dial(&self, addr: SocketAddr, expected: Option<PeerId>) {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(e) = connect(&shared, addr, expected).await {
                tracing::info!(%addr, %e, "outbound connection ended");
            }
        });
    }

    /// The connected peers, in id order.
    pub fn peers(&self) -> Vec<PeerId> {
        self.shared.peers.ids()
    }

    /// Tells the network a peer misbehaved; at the ban score it is disconnected and banned.
    pub fn report(&self, peer: &PeerId, offence: Misbehavior) {
        self.shared.peers.report(peer, offence);
    }

    /// Replaces the set of masternode operator keys that may take the reserved inbound slots.
    pub fn set_masternodes(&self, operators: impl IntoIterator<Item = PublicKey>) {
        self.shared
            .peers
            .set_masternodes(operators.into_iter().collect::<BTreeSet<_>>());
    }

    /// The network's counters now.
    pub fn stats(&self) -> NetStats {
        let peers = &self.shared.peers;
        let (inbound, outbound) = peers.limits().peers();
        NetStats {
            inbound,
            outbound,
            handshakes: peers.limits().handshakes(),
            queued_bytes: peers.queued_bytes(),
            bans: peers.bans().len(),
        }
    }

    /// Closes every connection and stops accepting and dialing.
    pub fn shutdown(&self) {
        self.shared.peers.shut_down();
    }
}

impl<T: Transport> Network for PeerNetwork<T> {
    fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
        self.shared.peers.send(to, channel, message)
    }

    fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        self.shared.peers.broadcast(channel, message)
    }

    fn report(&self, peer: &PeerId, offence: Misbehavior) {
        self.shared.peers.report(peer, offence);
    }

    fn set_validators(&self, operators: &[PublicKey]) {
        self.set_masternodes(operators.iter().copied());
    }
}

async fn accept_loop<T: Transport>(shared: Arc<Shared<T>>) {
    let peers = Arc::clone(&shared.peers);
    loop {
        let accepted = tokio::select! {
            () = peers.shutting_down() => return,
            accepted = shared.transport.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if peers.is_banned(None, &addr) {
            tracing::debug!(%addr, "refused a banned address");
            continue;
        }
        let slot = match peers.limits().start_inbound_handshake(addr.ip()) {
            Ok(slot) => slot,
            Err(e) => {
                tracing::debug!(%addr, %e, "refused an inbound connection");
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut stream = stream;
            let timeout = shared.peers.config().handshake_timeout;
            let auth =
                tokio::time::timeout(timeout, handshake::respond(&mut stream, &shared.identity))
                    .await
                    .unwrap_or(Err(PeerError::HandshakeTimeout(timeout)));
            let address = slot.finish();
            let outcome = match (auth, address) {
                (Ok(auth), Some(address)) => {
                    run_peer(&shared, stream, addr, Direction::Inbound, address, auth).await
                }
                (Ok(_), None) => Err(PeerError::LimitReached("address slot")),
                (Err(e), _) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::info!(%addr, %e, "inbound connection ended");
            }
        });
    }
}

async fn seed_loop<T: Transport>(shared: Arc<Shared<T>>, seed: SeedPeer) {
    let interval = shared.peers.config().redial_interval;
    loop {
        if shared.peers.is_shut_down() {
            return;
        }
        let already = seed.key.is_some_and(|k| shared.peers.get(&k).is_some());
        if !already && let Err(e) = connect(&shared, seed.addr, seed.key).await {
            tracing::info!(addr = %seed.addr, %e, "seed connection ended");
        }
        tokio::select! {
            () = shared.peers.shutting_down() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Dials, authenticates and runs one outbound connection until it ends.
async fn connect<T: Transport>(
    shared: &Shared<T>,
    addr: SocketAddr,
    expected: Option<PeerId>,
) -> Result<(), PeerError> {
    let peers = &shared.peers;
    if peers.is_banned(expected.as_ref(), &addr) {
        return Err(PeerError::Banned);
    }
    let address = peers.limits().start_outbound(addr.ip())?;
    let timeout = peers.config().handshake_timeout;
    let auth = tokio::time::timeout(timeout, async {
        let mut stream = shared.transport.dial(addr).await?;
        let auth = handshake::initiate(&mut stream, &shared.identity, expected).await?;
        Ok::<_, PeerError>((stream, auth))
    })
    .await
    .unwrap_or(Err(PeerError::HandshakeTimeout(timeout)));
    let (stream, auth) = auth?;
    run_peer(shared, stream, addr, Direction::Outbound, address, auth).await
}

/// Admits an authenticated peer and runs its session; on the way out, removes it and says it left.
async fn run_peer<T: Transport>(
    shared: &Shared<T>,
    stream: T::Stream,
    addr: SocketAddr,
    direction: Direction,
    address: AddressSlot,
    auth: Authenticated,
) -> Result<(), PeerError> {
    let peers = &shared.peers;
    let id = auth.peer();
    if peers.is_banned(Some(&id), &addr) {
        return Err(PeerError::Banned);
    }
    let current_masternode = auth
        .masternode
        .is_some_and(|k| peers.is_current_masternode(&k));
    let _slot = peers
        .limits()
        .admit(address, direction, current_masternode)?;
    let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (link, outbox) = PeerLink::new(
        id,
        addr,
        direction,
        auth.masternode,
        connection,
        peers.link_token(),
    );
    peers.insert(Arc::clone(&link))?;
    tracing::info!(peer = %id, %addr, ?direction, masternode = auth.masternode.is_some(), "peer joined");
    let joined = NetEvent::Joined {
        peer: id,
        masternode: auth.masternode,
    };
    let why = if !peers.deliver(joined).await {
        PeerError::Shutdown
    } else {
        let (sealer, opener) = auth.into_keys();
        crate::session::run(
            stream,
            sealer,
            opener,
            Arc::clone(&link),
            outbox,
            Arc::clone(peers),
        )
        .await
    };
    if let Some(offence) = why.misbehavior() {
        peers.penalize(&link, offence);
    }
    peers.remove(&link);
    peers.deliver(NetEvent::Left(id)).await;
    Err(why)
}
