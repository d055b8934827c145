//! [`PeerNetwork`]: the running network. It accepts and dials over a [`Transport`], authenticates every
//! connection, admits it within the slot limits, runs its session, and is the engine's [`Network`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::seq::SliceRandom;
use timecoin_crypto::PublicKey;
use tokio::sync::mpsc;

use crate::addresses::{self, Discovery};
use crate::bans::BanList;
use crate::discovery::{AddressMessage, DialCandidate};
use crate::handshake::{self, Authenticated, NodeIdentity};
use crate::limits::{AddressSlot, Direction};
use crate::peers::{PeerLink, Peers};
use crate::transport::{TcpTransport, Transport};
use crate::{
    Channel, Misbehavior, NetConfig, NetError, NetEvent, Network, PeerError, PeerId, Traffic,
};

/// How often the address book is pruned and saved to its file (it is saved at shutdown too): a crash
/// loses at most this much of what discovery learned.
pub const BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// How often our own record is signed again and announced to the connected peers: well within the
/// 3 hours after which peers stop accepting and passing it on.
pub const OWN_RECORD_REFRESH: Duration = Duration::from_secs(60 * 60);

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
    /// Our dials between the dial plan and their handshake's end: counted against the free outbound
    /// slots, so one plan cannot overfill them. Bound: `max_outbound`.
    dials_in_flight: AtomicUsize,
}

/// A snapshot of the network's counters, for metrics and for tests that check memory stays bounded.
/// Messages and bytes by channel are read from [`PeerNetwork::traffic`].
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
        let discovery = Discovery::new(identity.peer_id(), identity.chain_id(), &config, &bans);
        let shared = Arc::new(Shared {
            transport,
            identity,
            peers: Peers::new(config, bans, events, discovery),
            next_connection: AtomicU64::new(0),
            dials_in_flight: AtomicUsize::new(0),
        });
        let network = PeerNetwork { shared };
        // Signed before the first session starts, so every greeting carries it.
        sign_own_record(&network.shared);
        tokio::spawn(accept_loop(Arc::clone(&network.shared)));
        tokio::spawn(dial_loop(Arc::clone(&network.shared)));
        tokio::spawn(maintenance_loop(Arc::clone(&network.shared)));
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

    /// A connected peer's misbehaviour score.
    pub fn score(&self, peer: &PeerId) -> Option<u32> {
        self.shared.peers.get(peer).map(|link| link.score())
    }

    /// Records in the address book.
    pub fn known_addresses(&self) -> usize {
        self.shared.peers.discovery().book_len()
    }

    /// Whether the address book holds a record for `node`.
    pub fn knows_address_of(&self, node: &PeerId) -> bool {
        self.shared.peers.discovery().knows(node)
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

    /// The live counts of messages and bytes by channel, over all peers since the network started. The
    /// handle stays readable after the network shuts down, and reading it takes no lock.
    pub fn traffic(&self) -> Arc<Traffic> {
        Arc::clone(self.shared.peers.traffic())
    }

    /// Closes every connection and stops accepting and dialing; saves the address book if it has a
    /// file. The save is synchronous (a file of at most ~163 KB), so it is done when this returns.
    pub fn shutdown(&self) {
        self.shared.peers.shut_down();
        save_book(&self.shared);
    }
}

impl<T: Transport> Network for PeerNetwork<T> {
    fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
        engine_channel(channel)?;
        self.shared.peers.send(to, channel, message)
    }

    fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        engine_channel(channel)?;
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

/// Refuses the channels the network keeps to itself: discovery bytes from the engine would be answered
/// by peers as if the network had sent them.
fn engine_channel(channel: Channel) -> Result<(), NetError> {
    if channel == Channel::Discovery {
        return Err(NetError::ReservedChannel(channel));
    }
    Ok(())
}

/// Keeps the outbound slots filled: seeds first, then addresses from the book, each with its own
/// backoff. Runs every `redial_interval`, and at once when discovery learns something.
async fn dial_loop<T: Transport>(shared: Arc<Shared<T>>) {
    let interval = shared.peers.config().redial_interval;
    let reask = shared.peers.config().discovery_reask_interval;
    let mut last_ask = tokio::time::Instant::now();
    loop {
        if shared.peers.is_shut_down() {
            return;
        }
        let (want, candidates) = plan_dials(&shared);
        let short = candidates.len() < want;
        for candidate in candidates {
            shared.dials_in_flight.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(dial_candidate(Arc::clone(&shared), candidate));
        }
        if short && last_ask.elapsed() >= reask {
            ask_a_peer(&shared.peers);
            last_ask = tokio::time::Instant::now();
        }
        tokio::select! {
            () = shared.peers.shutting_down() => return,
            () = shared.peers.discovery().news() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The free outbound slots (not already being dialed), and the addresses to dial into them now.
fn plan_dials<T: Transport>(shared: &Shared<T>) -> (usize, Vec<DialCandidate>) {
    let peers = &shared.peers;
    let (_, outbound) = peers.limits().peers();
    let busy = outbound.saturating_add(shared.dials_in_flight.load(Ordering::Acquire));
    let want = peers.config().max_outbound.saturating_sub(busy);
    if want == 0 {
        return (0, Vec::new());
    }
    let bans = |node: Option<&PeerId>, addr: &SocketAddr| peers.is_banned(node, addr);
    let candidates = peers
        .discovery()
        .next_dials(&peers.addresses(), want, &bans);
    (want, candidates)
}

/// Asks one connected peer, chosen at random, for addresses: the book has too few to fill our slots.
fn ask_a_peer(peers: &Peers) {
    let ids = peers.ids();
    if let Some(link) = ids
        .choose(&mut rand::thread_rng())
        .and_then(|id| peers.get(id))
    {
        addresses::send(&link, &AddressMessage::GetAddresses);
    }
}

/// Gives back an in-flight dial's count however its task ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Dials one planned address, reports the outcome to the schedule, and runs the session if it
/// succeeded.
async fn dial_candidate<T: Transport>(shared: Arc<Shared<T>>, candidate: DialCandidate) {
    let in_flight = InFlight(&shared.dials_in_flight);
    let discovery = shared.peers.discovery();
    let addr = candidate.addr;
    let handshake = dial_handshake(&shared, addr, candidate.key).await;
    drop(in_flight);
    let (stream, address, auth) = match handshake {
        Ok(done) => done,
        Err(e) => {
            discovery.dial_failed(addr);
            tracing::debug!(%addr, seed = candidate.seed, %e, "dial failed");
            return;
        }
    };
    discovery.dial_succeeded(&addr);
    let outcome = run_peer(&shared, stream, addr, Direction::Outbound, address, auth).await;
    if let Err(e) = outcome {
        if matches!(e, PeerError::AlreadyConnected) {
            // It reached us first (a keyless seed, or a simultaneous dial): no point redialing at once.
            discovery.dial_failed(addr);
        }
        tracing::info!(%addr, %e, "outbound connection ended");
    }
}

/// Signs our record for the configured external address (a port of 0 takes the one we listen on).
fn sign_own_record<T: Transport>(shared: &Shared<T>) {
    let Some(mut addr) = shared.peers.config().external_addr else {
        return;
    };
    if addr.port() == 0 {
        match shared.transport.local_addr() {
            Ok(local) => addr.set_port(local.port()),
            Err(e) => {
                tracing::warn!(%e, "no listening port to announce");
                return;
            }
        }
    }
    let discovery = shared.peers.discovery();
    if !discovery.rules().is_dialable(&addr) {
        tracing::warn!(%addr, "the external address is not dialable; peers will refuse our record");
    }
    discovery.set_own(shared.identity.address_record(addr, addresses::now_ms()));
}

fn save_book<T: Transport>(shared: &Shared<T>) {
    let peers = &shared.peers;
    let bans = |node: Option<&PeerId>, addr: &SocketAddr| peers.is_banned(node, addr);
    peers.discovery().prune_and_save(&bans);
}

/// Re-signs and announces our record, and prunes and saves the book, on their intervals.
async fn maintenance_loop<T: Transport>(shared: Arc<Shared<T>>) {
    let start = tokio::time::Instant::now();
    let mut refresh = tokio::time::interval_at(start + OWN_RECORD_REFRESH, OWN_RECORD_REFRESH);
    let mut save = tokio::time::interval_at(start + BOOK_SAVE_INTERVAL, BOOK_SAVE_INTERVAL);
    loop {
        tokio::select! {
            () = shared.peers.shutting_down() => return,
            _ = refresh.tick() => {
                sign_own_record(&shared);
                if let Some(own) = shared.peers.discovery().own()
                    && let Ok(bytes) = AddressMessage::Addresses(vec![own]).encode()
                    && let Err(e) = shared.peers.broadcast(Channel::Discovery, Bytes::from(bytes))
                {
                    tracing::debug!(%e, "could not announce our record");
                }
            }
            _ = save.tick() => {
                // Writing and syncing the file blocks: not on an async worker.
                let shared = Arc::clone(&shared);
                if let Err(e) = tokio::task::spawn_blocking(move || save_book(&shared)).await {
                    tracing::warn!(%e, "the address book save task failed");
                }
            }
        }
    }
}

/// Dials, authenticates and runs one outbound connection until it ends.
async fn connect<T: Transport>(
    shared: &Shared<T>,
    addr: SocketAddr,
    expected: Option<PeerId>,
) -> Result<(), PeerError> {
    let (stream, address, auth) = dial_handshake(shared, addr, expected).await?;
    run_peer(shared, stream, addr, Direction::Outbound, address, auth).await
}

/// Dials and authenticates one outbound connection, within the handshake timeout.
async fn dial_handshake<T: Transport>(
    shared: &Shared<T>,
    addr: SocketAddr,
    expected: Option<PeerId>,
) -> Result<(T::Stream, AddressSlot, Authenticated), PeerError> {
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
    Ok((stream, address, auth))
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
        peers.link_counters(),
    );
    peers.insert(Arc::clone(&link))?;
    tracing::info!(peer = %id, %addr, ?direction, masternode = auth.masternode.is_some(), "peer joined");
    let joined = NetEvent::Joined {
        peer: id,
        masternode: auth.masternode,
    };
    peers.discovery().greet(&link);
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
