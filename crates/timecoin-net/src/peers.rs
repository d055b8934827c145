//! The connected peers: a sharded table of links, their send queues, their scores, bans, and the gossip
//! de-duplication that sits between the sockets and the engine.
//!
//! Nothing here takes a lock over the whole table: the table is a `DashMap` (sharded), counters are
//! atomics, and each link's known-message set has its own small mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use timecoin_crypto::PublicKey;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::addresses::Discovery;
use crate::bans::{BanList, BanTarget};
use crate::gossip::{BoundedSet, Digester, KNOWN_PER_PEER, SEEN_TRANSACTIONS};
use crate::limits::{ConnectionLimits, Direction};
use crate::{Channel, Misbehavior, NetConfig, NetError, NetEvent, PeerId, Traffic};

/// The score at which a peer is disconnected and banned.
pub const BAN_SCORE: u32 = 100;

/// Messages queued to one peer on each channel, highest priority first. With
/// [`MAX_QUEUED_BYTES_PER_PEER`] this bounds what a slow peer can make us hold.
/// Discovery sends a handful of small messages per session, so its queue is short.
pub const QUEUE_MESSAGES: [usize; 4] = [1_024, 256, 4_096, 16];

/// Bytes queued to one peer over all channels: room for a few full blocks, and no more however slow it
/// reads. Past it, sends to that peer fail with [`NetError::QueueFull`] and others are untouched.
pub const MAX_QUEUED_BYTES_PER_PEER: usize = 32 * 1024 * 1024;

/// Bytes queued to all peers together: without it, 256 slow peers could make a node hold 256 times the
/// per-peer bound (8 GiB). Past it, sends fail with [`NetError::QueueFull`] until writers drain. A
/// broadcast counts once per peer, so this overstates what a broadcast really holds (its buffer is
/// shared), never understates.
pub const MAX_QUEUED_BYTES_TOTAL: usize = 512 * 1024 * 1024;

/// What a transport does with a message over its channel's rate quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverQuota {
    /// Stop reading from the peer until the quota refills: its socket buffers fill and TCP slows the
    /// sender. Nothing is lost, which is what votes and sync answers need.
    BackPressure,
    /// Drop the message and score it as spam: a transaction flood costs the flooder, not us.
    Drop,
}

/// The over-quota behaviour of each channel.
pub const fn over_quota(channel: Channel) -> OverQuota {
    match channel {
        Channel::Consensus | Channel::Sync => OverQuota::BackPressure,
        Channel::Transactions | Channel::Discovery => OverQuota::Drop,
    }
}

/// One connected peer, as the rest of the network sees it.
pub struct PeerLink {
    /// Its verified node key.
    pub id: PeerId,
    /// Where its connection comes from or goes to.
    pub addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// Its proven operator key, if any.
    pub masternode: Option<PublicKey>,
    /// Tells this connection from a later one to the same peer.
    connection: u64,
    queues: [mpsc::Sender<Bytes>; 4],
    queued_bytes: AtomicUsize,
    /// Bytes queued to every peer of the network, shared by all links.
    total_queued: Arc<AtomicUsize>,
    /// The network's messages and bytes by channel, shared by all links.
    traffic: Arc<Traffic>,
    score: AtomicU32,
    /// Digests this peer is known to hold. Bound: [`KNOWN_PER_PEER`].
    known: Mutex<BoundedSet>,
    /// Cancelled to close the connection (a ban, a shutdown).
    close: CancellationToken,
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        // What was still queued when the connection ended leaves the network's total with the link.
        let left = *self.queued_bytes.get_mut();
        self.total_queued.fetch_sub(left, Ordering::AcqRel);
    }
}

/// What every link of one network adds to: the bytes queued to all peers (bound:
/// [`MAX_QUEUED_BYTES_TOTAL`]) and the traffic by channel.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetworkCounters {
    queued: Arc<AtomicUsize>,
    traffic: Arc<Traffic>,
}

/// The receiving ends of a link's queues, owned by its writer.
pub struct Outbox {
    pub(crate) queues: [mpsc::Receiver<Bytes>; 4],
}

impl PeerLink {
    /// A link and the outbox its writer drains.
    pub(crate) fn new(
        id: PeerId,
        addr: SocketAddr,
        direction: Direction,
        masternode: Option<PublicKey>,
        connection: u64,
        close: CancellationToken,
        counters: NetworkCounters,
    ) -> (Arc<Self>, Outbox) {
        let [c, s, t, d] = QUEUE_MESSAGES;
        let (c_tx, c_rx) = mpsc::channel(c);
        let (s_tx, s_rx) = mpsc::channel(s);
        let (t_tx, t_rx) = mpsc::channel(t);
        let (d_tx, d_rx) = mpsc::channel(d);
        let link = PeerLink {
            id,
            addr,
            direction,
            masternode,
            connection,
            queues: [c_tx, s_tx, t_tx, d_tx],
            queued_bytes: AtomicUsize::new(0),
            total_queued: counters.queued,
            traffic: counters.traffic,
            score: AtomicU32::new(0),
            known: Mutex::new(BoundedSet::new(KNOWN_PER_PEER)),
            close,
        };
        (
            Arc::new(link),
            Outbox {
                queues: [c_rx, s_rx, t_rx, d_rx],
            },
        )
    }

    /// Queues `message` without waiting; a full queue drops it, and the drop is counted by channel
    /// ([`ChannelTraffic::sends_dropped`](crate::ChannelTraffic::sends_dropped)).
    pub fn enqueue(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        let queued = self.try_enqueue(channel, message);
        if queued.is_err() {
            self.traffic.send_dropped(channel);
        }
        queued
    }

    fn try_enqueue(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        let full = NetError::QueueFull {
            peer: self.id,
            channel,
        };
        let len = message.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > MAX_QUEUED_BYTES_PER_PEER {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(full);
        }
        let before_total = self.total_queued.fetch_add(len, Ordering::AcqRel);
        if before_total.saturating_add(len) > MAX_QUEUED_BYTES_TOTAL {
            self.release(len);
            return Err(full);
        }
        let Some(queue) = self.queues.get(usize::from(channel.priority())) else {
            self.release(len);
            return Err(NetError::Closed);
        };
        match queue.try_send(message) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.release(len);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => full,
                    mpsc::error::TrySendError::Closed(_) => NetError::NotConnected(self.id),
                })
            }
        }
    }

    /// The writer took `len` bytes off the queues.
    pub(crate) fn dequeued(&self, len: usize) {
        self.release(len);
    }

    /// The network's traffic counters.
    pub(crate) fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn release(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.total_queued.fetch_sub(len, Ordering::AcqRel);
    }

    /// Asks the session to close.
    pub fn close(&self) {
        self.close.cancel();
    }

    /// Resolves once the session is asked to close.
    pub(crate) async fn closing(&self) {
        self.close.cancelled().await;
    }

    /// Bytes waiting to be written to this peer.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Its misbehaviour score.
    pub fn score(&self) -> u32 {
        self.score.load(Ordering::Acquire)
    }

    /// Records that the peer holds `digest`; false if it was already recorded.
    pub(crate) fn learn(&self, digest: u64) -> bool {
        self.known.lock().insert(digest)
    }
}

/// The shared state of one network's peers.
pub struct Peers {
    config: NetConfig,
    limits: Arc<ConnectionLimits>,
    bans: Arc<BanList>,
    /// Connected peers. Bound: one entry per admitted connection, so the slot limits
    /// ([`NetConfig::max_peers`]).
    table: DashMap<PeerId, Arc<PeerLink>>,
    /// Operator keys of the current masternode set, for the reserved slots.
    masternodes: ArcSwap<BTreeSet<PublicKey>>,
    digester: Digester,
    /// Transactions already delivered to the engine. Bound: [`SEEN_TRANSACTIONS`].
    seen_transactions: Mutex<BoundedSet>,
    events: mpsc::Sender<NetEvent>,
    /// Cancelled when the network shuts down; every link's token is a child of it.
    shutdown: CancellationToken,
    /// The address book, dial schedule and our own record.
    discovery: Discovery,
    /// Bytes queued to all peers and traffic by channel, shared with every link.
    counters: NetworkCounters,
}

impl Peers {
    /// Peers for `config`, delivering events to `events`.
    pub(crate) fn new(
        config: NetConfig,
        bans: BanList,
        events: mpsc::Sender<NetEvent>,
        discovery: Discovery,
    ) -> Arc<Self> {
        Arc::new(Peers {
            limits: ConnectionLimits::new(&config),
            config,
            bans: Arc::new(bans),
            table: DashMap::new(),
            masternodes: ArcSwap::from_pointee(BTreeSet::new()),
            digester: Digester::new(),
            seen_transactions: Mutex::new(BoundedSet::new(SEEN_TRANSACTIONS)),
            events,
            shutdown: CancellationToken::new(),
            discovery,
            counters: NetworkCounters::default(),
        })
    }

    /// The discovery state.
    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The connection slots.
    pub fn limits(&self) -> &Arc<ConnectionLimits> {
        &self.limits
    }

    /// The ban list.
    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    /// Hands an event to the engine, waiting while its queue is full; false once the engine is gone.
    pub(crate) async fn deliver(&self, event: NetEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// Stops everything: every link closes, and no more are accepted or dialed.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Whether [`shut_down`](Self::shut_down) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Resolves once the network shuts down.
    pub(crate) async fn shutting_down(&self) {
        self.shutdown.cancelled().await;
    }

    /// A token for a new link, cancelled with the network.
    pub(crate) fn link_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// Whether `operator` is in the current masternode set.
    pub fn is_current_masternode(&self, operator: &PublicKey) -> bool {
        self.masternodes.load().contains(operator)
    }

    /// Replaces the current masternode set.
    pub fn set_masternodes(&self, operators: BTreeSet<PublicKey>) {
        self.masternodes.store(Arc::new(operators));
    }

    /// Adds a link; refuses a second connection to a peer already connected.
    pub(crate) fn insert(&self, link: Arc<PeerLink>) -> Result<(), crate::PeerError> {
        match self.table.entry(link.id) {
            dashmap::Entry::Occupied(_) => Err(crate::PeerError::AlreadyConnected),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(link);
                Ok(())
            }
        }
    }

    /// Removes a link, if the table still holds this connection (not a newer one).
    pub(crate) fn remove(&self, link: &PeerLink) {
        self.table
            .remove_if(&link.id, |_, l| l.connection == link.connection);
    }

    /// The link to `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<Arc<PeerLink>> {
        self.table.get(peer).map(|l| Arc::clone(l.value()))
    }

    /// The connected peers.
    pub fn ids(&self) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> = self.table.iter().map(|e| *e.key()).collect();
        ids.sort();
        ids
    }

    /// Where each connected peer's connection goes to or comes from.
    pub fn addresses(&self) -> BTreeMap<PeerId, SocketAddr> {
        self.table
            .iter()
            .map(|e| (*e.key(), e.value().addr))
            .collect()
    }

    /// Bytes queued to all peers.
    pub fn queued_bytes(&self) -> usize {
        self.counters.queued.load(Ordering::Acquire)
    }

    /// Messages and bytes by channel, over all peers.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.counters.traffic
    }

    /// The shared counters a new link adds to.
    pub(crate) fn link_counters(&self) -> NetworkCounters {
        self.counters.clone()
    }

    /// Queues `message` to one peer.
    pub fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        if self.is_shut_down() {
            return Err(NetError::Closed);
        }
        let link = self.get(to).ok_or(NetError::NotConnected(*to))?;
        link.enqueue(channel, message)
    }

    /// Queues `message` to every peer not known to hold it already (in particular, never back to the
    /// peer it came from). A full queue drops the message for that peer only.
    pub fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        if self.is_shut_down() {
            return Err(NetError::Closed);
        }
        let digest = self.digester.digest(channel, &message);
        let links: Vec<Arc<PeerLink>> = self.table.iter().map(|e| Arc::clone(e.value())).collect();
        for link in links {
            if !link.learn(digest) {
                continue;
            }
            if let Err(e) = link.enqueue(channel, message.clone()) {
                tracing::debug!(peer = %link.id, %e, "broadcast dropped for one peer");
            }
        }
        Ok(())
    }

    /// Decides what happens to a message a peer sent: whether it is a repeat, and whether the engine
    /// should see it. Returns the event to deliver, if any.
    pub(crate) fn receive(
        &self,
        link: &PeerLink,
        channel: Channel,
        bytes: Bytes,
    ) -> Option<NetEvent> {
        if channel == Channel::Discovery {
            // The network answers discovery itself; the engine never sees it.
            return None;
        }
        let digest = self.digester.digest(channel, &bytes);
        let first_from_this_peer = link.learn(digest);
        if channel == Channel::Transactions {
            // A transaction is idempotent and pure gossip: a copy the engine already has is news to no
            // one. Not scored: the known set also holds what we sent the peer, and two honest nodes
            // that relay one transaction to each other at the same moment each see the other's copy as
            // a repeat (a load test at 3,250 tx/s got every validator banned by its peers that way).
            // A peer that repeats itself on purpose is bounded by the channel's rate limit.
            if !first_from_this_peer {
                return None;
            }
            if !self.seen_transactions.lock().insert(digest) {
                return None;
            }
        }
        // Consensus and sync messages always reach the engine: a vote sent again after a view change,
        // or a sync request asked twice, is a retransmission the engine may need.
        Some(NetEvent::Message {
            from: link.id,
            channel,
            bytes,
        })
    }

    /// Adds `offence` to the peer's score; at [`BAN_SCORE`], bans it and closes its connection.
    pub fn penalize(&self, link: &PeerLink, offence: Misbehavior) {
        let penalty = offence.penalty();
        let before = link.score.fetch_add(penalty, Ordering::AcqRel);
        let after = before.saturating_add(penalty);
        if before < BAN_SCORE && after >= BAN_SCORE {
            tracing::warn!(peer = %link.id, addr = %link.addr, score = after, ?offence, "banning peer");
            let mut targets = vec![BanTarget::Node(link.id)];
            if self.config.ban_ip_addresses {
                targets.push(BanTarget::Ip(link.addr.ip()));
            }
            self.bans.ban(&targets, self.config.ban_duration);
            link.close();
        } else {
            tracing::debug!(peer = %link.id, score = after, ?offence, "peer misbehaved");
        }
    }

    /// [`penalize`](Self::penalize) by id, for offences the engine finds.
    pub fn report(&self, peer: &PeerId, offence: Misbehavior) {
        if let Some(link) = self.get(peer) {
            self.penalize(&link, offence);
        } else {
            tracing::debug!(%peer, ?offence, "offence reported for a peer no longer connected");
        }
    }

    /// Whether `peer` (or its address, when address bans are on) is banned.
    pub fn is_banned(&self, peer: Option<&PeerId>, addr: &SocketAddr) -> bool {
        if self.config.ban_ip_addresses && self.bans.is_banned(&BanTarget::Ip(addr.ip())) {
            return true;
        }
        peer.is_some_and(|p| self.bans.is_banned(&BanTarget::Node(*p)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn link(n: u8, budget: &Arc<AtomicUsize>) -> (Arc<PeerLink>, Outbox) {
        let key = timecoin_crypto::SecretKey::from_seed(&[n; 32]).public_key();
        PeerLink::new(
            PeerId::from(key),
            SocketAddr::from(([127, 0, 0, 1], 9000 + u16::from(n))),
            Direction::Inbound,
            None,
            u64::from(n),
            CancellationToken::new(),
            NetworkCounters {
                queued: Arc::clone(budget),
                traffic: Arc::default(),
            },
        )
    }

    #[test]
    fn slow_peers_together_hold_at_most_the_total_bound_and_a_closed_link_gives_its_bytes_back() {
        let budget = Arc::new(AtomicUsize::new(0));
        // One shared 1 MiB buffer: queuing it does not copy it, so the test holds 1 MiB, not 544.
        let mib = Bytes::from(vec![0u8; 1024 * 1024]);
        let per_peer = MAX_QUEUED_BYTES_PER_PEER / mib.len();
        let peers = MAX_QUEUED_BYTES_TOTAL / MAX_QUEUED_BYTES_PER_PEER + 1;
        let mut links = Vec::new();
        let mut refused = 0;
        for n in 0..peers {
            let (link, outbox) = link(n as u8, &budget);
            for _ in 0..per_peer {
                if link.enqueue(Channel::Consensus, mib.clone()).is_err() {
                    refused += 1;
                }
                assert!(budget.load(Ordering::Acquire) <= MAX_QUEUED_BYTES_TOTAL);
            }
            links.push((link, outbox));
        }
        assert_eq!(budget.load(Ordering::Acquire), MAX_QUEUED_BYTES_TOTAL);
        assert_eq!(
            refused, per_peer,
            "the last peer's sends found the total full"
        );
        // A peer's connection ends with its queue full: its bytes leave the total with it.
        let (first, outbox) = links.remove(0);
        assert_eq!(first.queued_bytes(), MAX_QUEUED_BYTES_PER_PEER);
        drop((first, outbox));
        assert_eq!(
            budget.load(Ordering::Acquire),
            MAX_QUEUED_BYTES_TOTAL - MAX_QUEUED_BYTES_PER_PEER
        );
        let (last, _) = links.last().unwrap();
        assert!(last.enqueue(Channel::Consensus, mib.clone()).is_ok());
    }
}
