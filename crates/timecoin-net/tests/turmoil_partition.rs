//! The shipping session code over turmoil's simulated TCP: a partition, and the heal after it, in
//! simulated time (so the test takes milliseconds of wall time whatever the timeouts).

#![allow(clippy::unwrap_used)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use timecoin_crypto::{ChainId, Hash, SecretKey};
use timecoin_net::{
    Channel, NetConfig, NetEvent, Network, NodeIdentity, PeerId, PeerNetwork, SeedPeer, Transport,
};

const PORT: u16 = 24_100;

/// Turmoil's TCP behind our transport trait.
struct SimTransport {
    listener: turmoil::net::TcpListener,
}

impl Transport for SimTransport {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.listener.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn identity(seed: u8) -> NodeIdentity {
    NodeIdentity::new(
        SecretKey::from_seed(&[seed; 32]),
        ChainId(7),
        Hash::from_bytes([1; 32]),
    )
}

fn id(seed: u8) -> PeerId {
    identity(seed).peer_id()
}

type Log = Arc<Mutex<Vec<NetEvent>>>;

/// A node that broadcasts a numbered consensus message every 100 ms and logs what it receives.
async fn run_node(seed: u8, seeds: Vec<SeedPeer>, log: Log) -> turmoil::Result {
    let listener =
        turmoil::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
            .await?;
    let config = NetConfig {
        seeds,
        idle_timeout: Duration::from_secs(1),
        keepalive_interval: Duration::from_millis(200),
        handshake_timeout: Duration::from_millis(500),
        redial_interval: Duration::from_millis(300),
        ..NetConfig::default()
    };
    let (net, mut events) = PeerNetwork::start(config, identity(seed), SimTransport { listener })?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u32;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => log.lock().map_err(|_| "poisoned")?.push(event),
                None => return Ok(()),
            },
            _ = tick.tick() => {
                n += 1;
                net.broadcast(Channel::Consensus, Bytes::from(format!("{seed}:{n}")))?;
            }
        }
    }
}

fn count(log: &Log, pick: impl Fn(&NetEvent) -> bool) -> usize {
    log.lock().unwrap().iter().filter(|e| pick(e)).count()
}

#[test]
fn a_partition_past_the_idle_timeout_closes_the_link_and_the_heal_redials_it() {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(30))
        .build();
    let (log_a, log_b): (Log, Log) = Default::default();

    let log = Arc::clone(&log_a);
    sim.host("a", move || run_node(1, Vec::new(), Arc::clone(&log)));
    let log = Arc::clone(&log_b);
    sim.host("b", move || {
        let seeds = vec![SeedPeer {
            addr: SocketAddr::new(turmoil::lookup("a"), PORT),
            key: Some(id(1)),
        }];
        run_node(2, seeds, Arc::clone(&log))
    });

    let (a, b) = (Arc::clone(&log_a), Arc::clone(&log_b));
    sim.client("driver", async move {
        let joined = |log: &Log, peer: PeerId| {
            count(
                log,
                |e| matches!(e, NetEvent::Joined { peer: p, .. } if *p == peer),
            )
        };
        let left = |log: &Log, peer: PeerId| count(log, |e| *e == NetEvent::Left(peer));
        let heard = |log: &Log, from: PeerId| {
            count(
                log,
                |e| matches!(e, NetEvent::Message { from: f, .. } if *f == from),
            )
        };

        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!((joined(&a, id(2)), joined(&b, id(1))), (1, 1));
        assert!(heard(&a, id(2)) > 5 && heard(&b, id(1)) > 5);

        // Nothing crosses, not even keepalives: both ends give up after the idle timeout.
        turmoil::partition("a", "b");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!((left(&a, id(2)), left(&b, id(1))), (1, 1));
        let heard_before_heal = heard(&a, id(2));

        // The dialer keeps redialing its seed; once the link heals, it is back. Each failed dial
        // during the partition doubled the seed's backoff (1 s, 2 s, 4 s, jittered), so the redial
        // may come a few seconds after the heal.
        turmoil::repair("a", "b");
        let mut waited = Duration::ZERO;
        while (joined(&a, id(2)), joined(&b, id(1))) != (2, 2) {
            assert!(
                waited < Duration::from_secs(12),
                "the link did not come back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(heard(&a, id(2)) > heard_before_heal + 5);
        Ok(())
    });
    sim.run().unwrap();
}
