//! Connection slots: how many peers, from where, and how many handshakes, counted with atomics.
//!
//! Every limit is taken with a compare-and-swap on its own counter and given back by a guard's `Drop`,
//! so no lock is held across connections and a task that dies cannot leak a slot. The only maps are
//! per IP address, sharded (`DashMap`), and bounded by the number of connections they count.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::{NetConfig, PeerError};

/// Most IP addresses the per-IP handshake rate limiter remembers. Past it, addresses not seen recently
/// are forgotten; if all are recent (an address-spraying flood), new inbound handshakes are refused
/// until some age out, while established peers and our own dials are unaffected.
pub const MAX_HANDSHAKE_RATE_ADDRESSES: usize = 4_096;

/// Whether we dialed the peer or it dialed us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// It dialed us.
    Inbound,
    /// We dialed it.
    Outbound,
}

/// The connection counters of one network.
pub struct ConnectionLimits {
    max_inbound: usize,
    max_inbound_ordinary: usize,
    max_outbound: usize,
    max_per_ip: usize,
    max_handshakes: usize,
    inbound: AtomicUsize,
    outbound: AtomicUsize,
    handshakes: AtomicUsize,
    /// Connections (and handshakes in progress) per address. Bound: one entry per live connection or
    /// handshake (entries are removed at zero), so at most `max_peers + max_concurrent_handshakes`.
    per_ip: DashMap<IpAddr, usize>,
    /// Inbound handshakes started per address per minute. Bound: [`MAX_HANDSHAKE_RATE_ADDRESSES`].
    handshake_rate: DefaultKeyedRateLimiter<IpAddr>,
}

impl ConnectionLimits {
    /// Counters for `config`'s limits.
    pub fn new(config: &NetConfig) -> Arc<Self> {
        let per_minute =
            NonZeroU32::new(config.handshakes_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        Arc::new(ConnectionLimits {
            max_inbound: config.max_inbound(),
            max_inbound_ordinary: config.max_inbound_ordinary(),
            max_outbound: config.max_outbound,
            max_per_ip: config.max_per_ip,
            max_handshakes: config.max_concurrent_handshakes,
            inbound: AtomicUsize::new(0),
            outbound: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            handshake_rate: DefaultKeyedRateLimiter::dashmap(Quota::per_minute(per_minute)),
        })
    }

    /// Admits a new inbound connection from `ip` to its handshake: within the per-IP limit, the
    /// concurrent handshake limit and the per-IP handshake rate.
    pub fn start_inbound_handshake(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<HandshakeSlot, PeerError> {
        if self.handshake_rate.len() >= MAX_HANDSHAKE_RATE_ADDRESSES {
            self.handshake_rate.retain_recent();
            self.handshake_rate.shrink_to_fit();
            if self.handshake_rate.len() >= MAX_HANDSHAKE_RATE_ADDRESSES {
                return Err(PeerError::LimitReached(
                    "addresses tracked for handshake rate",
                ));
            }
        }
        if self.handshake_rate.check_key(&ip).is_err() {
            return Err(PeerError::LimitReached("handshakes per address per minute"));
        }
        let address = self.take_address(ip)?;
        if !try_increment(&self.handshakes, self.max_handshakes) {
            return Err(PeerError::LimitReached("concurrent handshakes"));
        }
        Ok(HandshakeSlot {
            limits: Arc::clone(self),
            address: Some(address),
        })
    }

    /// Admits a dial to `ip` (our own dials skip the handshake counters: we choose them).
    pub fn start_outbound(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, PeerError> {
        self.take_address(ip)
    }

    /// Turns a finished handshake's address slot into a peer slot, if one is free for `direction`.
    /// A masternode of the current set may take the reserved inbound slots.
    pub fn admit(
        self: &Arc<Self>,
        address: AddressSlot,
        direction: Direction,
        current_masternode: bool,
    ) -> Result<PeerSlot, PeerError> {
        let ok = match direction {
            Direction::Outbound => try_increment(&self.outbound, self.max_outbound),
            Direction::Inbound => {
                let cap = if current_masternode {
                    self.max_inbound
                } else {
                    self.max_inbound_ordinary
                };
                try_increment(&self.inbound, cap)
            }
        };
        if !ok {
            return Err(PeerError::LimitReached(match direction {
                Direction::Outbound => "outbound peers",
                Direction::Inbound => "inbound peers",
            }));
        }
        Ok(PeerSlot {
            limits: Arc::clone(self),
            direction,
            _address: address,
        })
    }

    /// Inbound and outbound peers now.
    pub fn peers(&self) -> (usize, usize) {
        (
            self.inbound.load(Ordering::Acquire),
            self.outbound.load(Ordering::Acquire),
        )
    }

    /// Handshakes in progress now.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Acquire)
    }

    fn take_address(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, PeerError> {
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            let fresh_entry = *count == 0;
            drop(count);
            if fresh_entry {
                self.per_ip.remove_if(&ip, |_, c| *c == 0);
            }
            return Err(PeerError::LimitReached("connections per address"));
        }
        *count += 1;
        Ok(AddressSlot {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// Increments `counter` unless it is at `cap`.
fn try_increment(counter: &AtomicUsize, cap: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_ok()
}

/// One connection counted against its IP address.
pub struct AddressSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(mut count) = self.limits.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
        }
        self.limits.per_ip.remove_if(&self.ip, |_, c| *c == 0);
    }
}

/// An inbound handshake in progress.
pub struct HandshakeSlot {
    limits: Arc<ConnectionLimits>,
    address: Option<AddressSlot>,
}

impl HandshakeSlot {
    /// Ends the handshake and keeps the address slot for the peer it admitted.
    pub fn finish(mut self) -> Option<AddressSlot> {
        self.address.take()
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.limits.handshakes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connected peer's slot, given back when the session ends.
pub struct PeerSlot {
    limits: Arc<ConnectionLimits>,
    direction: Direction,
    _address: AddressSlot,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let counter = match self.direction {
            Direction::Inbound => &self.limits.inbound,
            Direction::Outbound => &self.limits.outbound,
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetConfig {
        NetConfig {
            max_peers: 4,
            max_outbound: 1,
            masternode_slots: 1,
            max_per_ip: 2,
            max_concurrent_handshakes: 2,
            handshakes_per_ip_per_minute: 100,
            ..NetConfig::default()
        }
    }

    #[test]
    fn inbound_peers_cannot_take_outbound_or_masternode_slots() {
        let limits = ConnectionLimits::new(&config());
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let mut held = Vec::new();
        for n in 1..=2 {
            let hs = limits.start_inbound_handshake(ip(n)).unwrap();
            held.push(
                limits
                    .admit(hs.finish().unwrap(), Direction::Inbound, false)
                    .unwrap(),
            );
        }
        // Ordinary inbound: 4 peers - 1 outbound - 1 reserved = 2, all taken.
        let hs = limits.start_inbound_handshake(ip(3)).unwrap();
        let refused = limits.admit(hs.finish().unwrap(), Direction::Inbound, false);
        assert!(matches!(
            refused,
            Err(PeerError::LimitReached("inbound peers"))
        ));
        // A current masternode still gets in, and the outbound slot is still ours.
        let hs = limits.start_inbound_handshake(ip(4)).unwrap();
        held.push(
            limits
                .admit(hs.finish().unwrap(), Direction::Inbound, true)
                .unwrap(),
        );
        let out = limits.start_outbound(ip(5)).unwrap();
        held.push(limits.admit(out, Direction::Outbound, false).unwrap());
        assert_eq!(limits.peers(), (3, 1));
        drop(held);
        assert_eq!(limits.peers(), (0, 0));
        assert!(limits.per_ip.is_empty());
    }

    #[test]
    fn per_address_and_concurrent_handshake_limits_hold_and_are_given_back() {
        let limits = ConnectionLimits::new(&config());
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = limits.start_inbound_handshake(a).unwrap();
        let second = limits.start_inbound_handshake(a).unwrap();
        assert!(matches!(
            limits.start_inbound_handshake(a),
            Err(PeerError::LimitReached("connections per address"))
        ));
        assert!(matches!(
            limits.start_inbound_handshake(b),
            Err(PeerError::LimitReached("concurrent handshakes"))
        ));
        drop(first);
        assert_eq!(limits.handshakes(), 1);
        assert!(limits.start_inbound_handshake(b).is_ok());
        drop(second);
        assert_eq!(limits.handshakes(), 0);
    }

    #[test]
    fn handshakes_per_address_are_rate_limited() {
        let limits = ConnectionLimits::new(&NetConfig {
            handshakes_per_ip_per_minute: 3,
            max_per_ip: 10,
            ..config()
        });
        let ip = IpAddr::from([10, 0, 0, 9]);
        for _ in 0..3 {
            drop(limits.start_inbound_handshake(ip).unwrap());
        }
        assert!(matches!(
            limits.start_inbound_handshake(ip),
            Err(PeerError::LimitReached("handshakes per address per minute"))
        ));
        assert!(
            limits
                .start_inbound_handshake(IpAddr::from([10, 0, 0, 8]))
                .is_ok()
        );
    }
}
