//! Scenarios on real TCP over 127.0.0.1: honest nodes talking, and each kind of hostile peer refused
//! without harming them. Inside the crate so a hostile peer can use the real handshake and then write
//! whatever bytes it likes through the real cipher.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use timecoin_crypto::{ChainId, Hash, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;

use crate::handshake::{self, Authenticated, NodeIdentity};
use crate::{
    Channel, ChannelRate, ChannelTraffic, NetConfig, NetEvent, Network, PeerId, SeedPeer,
    TcpNetwork,
};

const CHAIN: ChainId = ChainId(7);
const WAIT: Duration = Duration::from_secs(5);

fn identity(seed: u8) -> NodeIdentity {
    NodeIdentity::new(
        SecretKey::from_seed(&[seed; 32]),
        CHAIN,
        Hash::from_bytes([1; 32]),
    )
}

fn id(seed: u8) -> PeerId {
    identity(seed).peer_id()
}

/// Short timeouts, and room for every test node on one address.
fn config() -> NetConfig {
    NetConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_per_ip: 64,
        handshakes_per_ip_per_minute: 10_000,
        ban_ip_addresses: false,
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(1),
        keepalive_interval: Duration::from_millis(200),
        redial_interval: Duration::from_millis(200),
        ..NetConfig::default()
    }
}

async fn node(seed: u8, config: NetConfig) -> (TcpNetwork, Receiver<NetEvent>) {
    TcpNetwork::bind(config, identity(seed)).await.unwrap()
}

/// Waits for the first event that `pick` accepts, skipping others.
async fn expect<T>(
    events: &mut Receiver<NetEvent>,
    mut pick: impl FnMut(&NetEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("network stopped");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("event did not arrive in time")
}

async fn joined(events: &mut Receiver<NetEvent>, peer: PeerId) {
    expect(events, |e| {
        matches!(e, NetEvent::Joined { peer: p, .. } if *p == peer).then_some(())
    })
    .await;
}

async fn left(events: &mut Receiver<NetEvent>, peer: PeerId) {
    expect(events, |e| {
        matches!(e, NetEvent::Left(p) if *p == peer).then_some(())
    })
    .await;
}

async fn message(events: &mut Receiver<NetEvent>, channel: Channel) -> (PeerId, Bytes) {
    expect(events, |e| match e {
        NetEvent::Message {
            from,
            channel: c,
            bytes,
        } if *c == channel => Some((*from, bytes.clone())),
        _ => None,
    })
    .await
}

/// No message event arrives for `for_how_long` (other events are skipped).
async fn no_message(events: &mut Receiver<NetEvent>, for_how_long: Duration) {
    let quiet = tokio::time::timeout(for_how_long, async {
        loop {
            match events.recv().await {
                Some(NetEvent::Message {
                    from,
                    channel,
                    bytes,
                }) => return (from, channel, bytes),
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "unexpected message {quiet:?}");
}

/// A victim with one honest peer connected, to check each attack leaves the honest link working.
async fn victim_with_honest_peer(
    victim_config: NetConfig,
) -> (
    TcpNetwork,
    Receiver<NetEvent>,
    TcpNetwork,
    Receiver<NetEvent>,
) {
    let (victim, mut victim_events) = node(1, victim_config).await;
    let (honest, honest_events) = connected_to(2, &victim, 1, &mut victim_events).await;
    (victim, victim_events, honest, honest_events)
}

/// Node `seed` with the default config and `target` (node `target_seed`) as its seed, once both have
/// seen the other join.
async fn connected_to(
    seed: u8,
    target: &TcpNetwork,
    target_seed: u8,
    target_events: &mut Receiver<NetEvent>,
) -> (TcpNetwork, Receiver<NetEvent>) {
    let (net, mut events) = node(
        seed,
        NetConfig {
            seeds: self::seed(target, target_seed),
            ..config()
        },
    )
    .await;
    joined(target_events, id(seed)).await;
    joined(&mut events, id(target_seed)).await;
    (net, events)
}

async fn honest_link_still_works(victim: &TcpNetwork, honest_events: &mut Receiver<NetEvent>) {
    victim
        .send(
            &id(2),
            Channel::Consensus,
            Bytes::from_static(b"still here"),
        )
        .unwrap();
    let (from, bytes) = message(honest_events, Channel::Consensus).await;
    assert_eq!((from, &bytes[..]), (id(1), &b"still here"[..]));
}

/// Runs the real handshake as a dialer, then hands back the socket and its keys.
async fn handshaken_attacker(seed: u8, addr: SocketAddr) -> (TcpStream, Authenticated) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let auth = handshake::initiate(&mut stream, &identity(seed), None)
        .await
        .unwrap();
    (stream, auth)
}

/// Waits until the other end closes the socket.
async fn closed_by_peer(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the victim did not close the connection");
}

#[tokio::test]
async fn four_nodes_exchange_messages_on_every_channel_once_per_link() {
    // Node i dials every node before it: a full mesh of 4.
    let mut nodes = Vec::new();
    for seed in 1..=4u8 {
        let seeds = nodes
            .iter()
            .map(
                |(n, _, s): &(TcpNetwork, Receiver<NetEvent>, u8)| SeedPeer {
                    addr: n.local_addr().unwrap(),
                    key: Some(id(*s)),
                },
            )
            .collect();
        let (net, events) = node(seed, NetConfig { seeds, ..config() }).await;
        nodes.push((net, events, seed));
    }
    for (_, events, _) in &mut nodes {
        let mut peers = std::collections::BTreeSet::new();
        while peers.len() < 3 {
            peers.insert(
                expect(events, |e| match e {
                    NetEvent::Joined { peer, .. } => Some(*peer),
                    _ => None,
                })
                .await,
            );
        }
    }

    for channel in Channel::ENGINE {
        let payload = Bytes::from(format!("hello on {channel}"));
        nodes[0].0.broadcast(channel, payload.clone()).unwrap();
        for (_, events, _) in nodes.iter_mut().skip(1) {
            assert_eq!(message(events, channel).await, (id(1), payload.clone()));
        }
        // Point to point as well.
        nodes[3]
            .0
            .send(&id(3), channel, Bytes::from_static(b"direct"))
            .unwrap();
        assert_eq!(
            message(&mut nodes[2].1, channel).await,
            (id(4), Bytes::from_static(b"direct"))
        );
    }

    // Gossip: node 2 relays node 1's transaction. It must not go back to node 1, and nodes 3 and 4,
    // which already have it, must not see it again.
    let tx = Bytes::from_static(b"a transaction");
    nodes[0]
        .0
        .broadcast(Channel::Transactions, tx.clone())
        .unwrap();
    for (_, events, _) in nodes.iter_mut().skip(1) {
        assert_eq!(message(events, Channel::Transactions).await.1, tx);
    }
    nodes[1]
        .0
        .broadcast(Channel::Transactions, tx.clone())
        .unwrap();
    for (_, events, _) in &mut nodes {
        no_message(events, Duration::from_millis(300)).await;
    }
    for (net, _, _) in &nodes {
        assert_eq!(net.peers().len(), 3);
        assert_eq!(net.stats().queued_bytes, 0);
    }
}

/// Two honest nodes that relay the same transactions to each other at the same moment each receive the
/// other's copy after sending their own. That is gossip crossing on the wire, not spam: a load test
/// once got every validator banned by its peers this way.
#[tokio::test]
async fn transactions_relayed_both_ways_at_once_cost_neither_peer_anything() {
    let (a, mut a_events) = node(1, config()).await;
    let (b, mut b_events) = connected_to(2, &a, 1, &mut a_events).await;
    for i in 0..500u32 {
        let tx = Bytes::copy_from_slice(&i.to_le_bytes());
        a.broadcast(Channel::Transactions, tx.clone()).unwrap();
        b.broadcast(Channel::Transactions, tx).unwrap();
    }
    // Let every copy land.
    no_message_but_transactions(&mut a_events, Duration::from_millis(500)).await;
    no_message_but_transactions(&mut b_events, Duration::from_millis(500)).await;
    assert_eq!(a.score(&id(2)), Some(0), "a scored b");
    assert_eq!(b.score(&id(1)), Some(0), "b scored a");
    assert_eq!(a.stats().bans + b.stats().bans, 0);
    assert_eq!(a.peers().len(), 1);
}

/// The counts by channel move by exactly the payloads exchanged, one message per send on each side; a
/// repeated transaction is counted where it arrives although the engine never sees it.
#[tokio::test]
async fn traffic_by_channel_counts_exactly_the_messages_and_bytes_exchanged() {
    let (a, mut a_events) = node(1, config()).await;
    let (b, mut b_events) = connected_to(2, &a, 1, &mut a_events).await;
    for channel in Channel::ENGINE {
        assert_eq!(a.traffic().channel(channel), ChannelTraffic::default());
        assert_eq!(b.traffic().channel(channel), ChannelTraffic::default());
    }
    for len in [10, 20, 30] {
        a.send(&id(2), Channel::Consensus, Bytes::from(vec![1u8; len]))
            .unwrap();
        assert_eq!(
            message(&mut b_events, Channel::Consensus).await.1.len(),
            len
        );
    }
    b.send(&id(1), Channel::Sync, Bytes::from(vec![2u8; 1_000]))
        .unwrap();
    message(&mut a_events, Channel::Sync).await;
    let tx = Bytes::from_static(b"a transaction");
    a.broadcast(Channel::Transactions, tx.clone()).unwrap();
    message(&mut b_events, Channel::Transactions).await;
    a.send(&id(2), Channel::Transactions, tx.clone()).unwrap();
    eventually("the repeated transaction arrives", || {
        b.traffic().channel(Channel::Transactions).messages_received == 2
    })
    .await;
    no_message(&mut b_events, Duration::from_millis(200)).await;

    let tx_bytes = 2 * tx.len() as u64;
    let sent = |messages_sent, bytes_sent| ChannelTraffic {
        messages_sent,
        bytes_sent,
        ..ChannelTraffic::default()
    };
    let received = |messages_received, bytes_received| ChannelTraffic {
        messages_received,
        bytes_received,
        ..ChannelTraffic::default()
    };
    let (a, b) = (a.traffic(), b.traffic());
    assert_eq!(a.channel(Channel::Consensus), sent(3, 60));
    assert_eq!(b.channel(Channel::Consensus), received(3, 60));
    assert_eq!(b.channel(Channel::Sync), sent(1, 1_000));
    assert_eq!(a.channel(Channel::Sync), received(1, 1_000));
    assert_eq!(a.channel(Channel::Transactions), sent(2, tx_bytes));
    assert_eq!(b.channel(Channel::Transactions), received(2, tx_bytes));
    // The network's own channel is counted too: each side asked the other for addresses on joining.
    eventually("discovery is counted", || {
        a.channel(Channel::Discovery).messages_received > 0
            && b.channel(Channel::Discovery).messages_received > 0
    })
    .await;
}

/// Drains `events` for `for_how_long`, failing on anything but a transaction.
async fn no_message_but_transactions(events: &mut Receiver<NetEvent>, for_how_long: Duration) {
    let deadline = tokio::time::Instant::now() + for_how_long;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match event {
            NetEvent::Message {
                channel: Channel::Transactions,
                ..
            } => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_masternode_proves_its_operator_key_on_join() {
    let operator = SecretKey::from_seed(&[42; 32]);
    let (listener, mut events) = node(1, config()).await;
    let (masternode, _mn_events) = TcpNetwork::bind(
        config(),
        identity(2).with_operator(SecretKey::from_seed(&[42; 32])),
    )
    .await
    .unwrap();
    masternode.dial(listener.local_addr().unwrap(), Some(id(1)));
    let proven = expect(&mut events, |e| match e {
        NetEvent::Joined { peer, masternode } if *peer == id(2) => Some(*masternode),
        _ => None,
    })
    .await;
    assert_eq!(proven, Some(operator.public_key()));
}

#[tokio::test]
async fn peers_that_say_nothing_are_closed_and_keepalives_keep_honest_ones() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    let (mut silent, _keys) = handshaken_attacker(9, victim.local_addr().unwrap()).await;
    joined(&mut victim_events, id(9)).await;
    // The victim's idle timeout is 1 s; the honest peer's keepalives arrive every 200 ms.
    closed_by_peer(&mut silent).await;
    left(&mut victim_events, id(9)).await;
    assert_eq!(victim.peers(), vec![id(2)]);
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_only_that_peer() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    let (mut attacker, mut keys) = handshaken_attacker(9, victim.local_addr().unwrap()).await;
    joined(&mut victim_events, id(9)).await;
    // Only a header: it claims one byte more than the transactions channel allows.
    let mut plain = BytesMut::new();
    plain.put_u32((Channel::Transactions.max_message_bytes() + 1) as u32);
    plain.put_u8(Channel::Transactions.tag());
    let mut sealed = Vec::new();
    keys.seal(&plain, &mut sealed).unwrap();
    attacker.write_all(&sealed).await.unwrap();
    closed_by_peer(&mut attacker).await;
    left(&mut victim_events, id(9)).await;
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn garbage_before_or_after_the_handshake_closes_only_that_peer() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    let addr = victim.local_addr().unwrap();

    // Before: a record of noise where the first handshake message should be.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 48]).await.unwrap();
    raw.write_all(&[0xa5; 48]).await.unwrap();
    closed_by_peer(&mut raw).await;

    // After: a record that does not decrypt.
    let (mut attacker, _keys) = handshaken_attacker(9, addr).await;
    joined(&mut victim_events, id(9)).await;
    attacker.write_all(&[0, 32]).await.unwrap();
    attacker.write_all(&[0x5a; 32]).await.unwrap();
    closed_by_peer(&mut attacker).await;
    left(&mut victim_events, id(9)).await;

    honest_link_still_works(&victim, &mut honest_events).await;
    assert_eq!(victim.stats().handshakes, 0);
}

#[tokio::test]
async fn wrong_key_chain_or_genesis_are_refused_at_the_handshake() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    let addr = victim.local_addr().unwrap();

    // We dial the victim's address but expect someone else's key.
    let (dialer, mut dialer_events) = node(3, config()).await;
    dialer.dial(addr, Some(id(99)));
    // Another chain, another genesis.
    let other_chain = NodeIdentity::new(
        SecretKey::from_seed(&[4; 32]),
        ChainId(8),
        Hash::from_bytes([1; 32]),
    );
    let other_genesis = NodeIdentity::new(
        SecretKey::from_seed(&[5; 32]),
        CHAIN,
        Hash::from_bytes([2; 32]),
    );
    for stranger in [other_chain, other_genesis] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let refused = handshake::initiate(&mut stream, &stranger, None).await;
        assert!(refused.is_err());
    }
    no_message(&mut dialer_events, Duration::from_millis(300)).await;
    assert!(dialer.peers().is_empty());
    assert_eq!(victim.peers(), vec![id(2)]);
    let unexpected = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Some(NetEvent::Joined { peer, .. }) = victim_events.recv().await {
                return peer;
            }
        }
    })
    .await;
    assert!(unexpected.is_err(), "someone joined: {unexpected:?}");
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn a_slow_loris_is_dropped_at_the_handshake_timeout() {
    let (victim, _victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    let addr = victim.local_addr().unwrap();
    let started = tokio::time::Instant::now();
    let mut loris = TcpStream::connect(addr).await.unwrap();
    // Half a length prefix, then nothing.
    loris.write_all(&[0]).await.unwrap();
    closed_by_peer(&mut loris).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
    assert_eq!(victim.stats().handshakes, 0);
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn a_transaction_flood_is_dropped_scored_and_banned() {
    let rss_before = resident_bytes();
    let dir = tempfile::tempdir().unwrap();
    let ban_file = dir.path().join("bans.txt");
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(NetConfig {
            transactions_rate: ChannelRate {
                per_second: 50,
                burst: 50,
            },
            ban_file: Some(ban_file.clone()),
            ..config()
        })
        .await;
    let (flooder, _flooder_events) = connected_to(9, &victim, 1, &mut victim_events).await;
    for i in 0..2_000u32 {
        let _ = flooder.send(
            &id(1),
            Channel::Transactions,
            Bytes::copy_from_slice(&i.to_le_bytes()),
        );
    }
    left(&mut victim_events, id(9)).await;
    assert!(victim.stats().bans >= 1);
    // Every message dropped over the quota costs a spam point: the ban took this many at least.
    let dropped = victim
        .traffic()
        .channel(Channel::Transactions)
        .receives_dropped;
    let to_ban = crate::peers::BAN_SCORE / crate::Misbehavior::Spam.penalty();
    assert!(
        dropped >= u64::from(to_ban),
        "{dropped} dropped over the quota"
    );
    // At most the burst, plus what refilled meanwhile, reached the engine.
    let mut delivered = 0;
    while let Ok(event) = victim_events.try_recv() {
        if matches!(event, NetEvent::Message { from, .. } if from == id(9)) {
            delivered += 1;
        }
    }
    assert!(
        delivered <= 200,
        "{delivered} flooded messages reached the engine"
    );
    honest_link_still_works(&victim, &mut honest_events).await;

    // The ban is on disk and keeps the flooder out (it keeps redialing as a seed).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!victim.peers().contains(&id(9)));
    let saved = std::fs::read_to_string(&ban_file).unwrap();
    assert!(saved.contains(&hex::encode(id(9).as_bytes())), "{saved}");

    let stats = victim.stats();
    assert_eq!(stats.handshakes, 0);
    let grown = resident_bytes().saturating_sub(rss_before);
    // Other tests run in the same process, so this is loose: it catches an unbounded buffer, not a
    // few megabytes.
    assert!(
        grown < 256 * 1024 * 1024,
        "resident memory grew by {grown} bytes"
    );
}

/// The process's resident memory, from /proc (0 where that is missing).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[tokio::test]
async fn consensus_over_its_rate_is_slowed_not_dropped() {
    let (victim, mut victim_events, honest, _honest_events) = victim_with_honest_peer(NetConfig {
        consensus_rate: ChannelRate {
            per_second: 200,
            burst: 20,
        },
        ..config()
    })
    .await;
    for i in 0..100u32 {
        honest
            .send(
                &id(1),
                Channel::Consensus,
                Bytes::copy_from_slice(&i.to_le_bytes()),
            )
            .unwrap();
    }
    for i in 0..100u32 {
        let (_, bytes) = message(&mut victim_events, Channel::Consensus).await;
        assert_eq!(&bytes[..], &i.to_le_bytes(), "in order, none lost");
    }
    assert_eq!(victim.peers(), vec![id(2)]);
    assert_eq!(victim.stats().bans, 0);
}

#[tokio::test]
async fn a_peer_that_never_reads_fills_only_its_own_queue() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(config()).await;
    // It completes the handshake, then neither reads nor writes.
    let (_stuck, _keys) = handshaken_attacker(9, victim.local_addr().unwrap()).await;
    joined(&mut victim_events, id(9)).await;
    let block = Bytes::from(vec![0u8; 4 * 1024 * 1024]);
    let mut refused = None;
    for _ in 0..64 {
        if let Err(e) = victim.send(&id(9), Channel::Sync, block.clone()) {
            refused = Some(e);
            break;
        }
    }
    assert!(
        matches!(refused, Some(crate::NetError::QueueFull { .. })),
        "{refused:?}"
    );
    assert_eq!(victim.traffic().channel(Channel::Sync).sends_dropped, 1);
    assert!(victim.stats().queued_bytes <= crate::peers::MAX_QUEUED_BYTES_PER_PEER);
    honest_link_still_works(&victim, &mut honest_events).await;
}

/// [`config`] for discovery on one machine: records for 127.0.0.1 are accepted, and each node
/// announces itself at the port it listens on.
fn discovering() -> NetConfig {
    NetConfig {
        external_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        discovery_allow_local: true,
        ..config()
    }
}

fn seed(net: &TcpNetwork, seed: u8) -> Vec<SeedPeer> {
    vec![SeedPeer {
        addr: net.local_addr().unwrap(),
        key: Some(id(seed)),
    }]
}

/// Polls `check` until it holds, or fails the test after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `messages` to the victim as frames on the discovery channel, through the session's cipher.
async fn send_discovery(stream: &mut TcpStream, keys: &mut Authenticated, messages: &[Vec<u8>]) {
    let mut plain = BytesMut::new();
    for message in messages {
        crate::frame::encode_message(Channel::Discovery, message, &mut plain).unwrap();
    }
    let mut sealed = Vec::new();
    keys.seal(&plain, &mut sealed).unwrap();
    stream.write_all(&sealed).await.unwrap();
}

#[tokio::test]
async fn a_node_finds_peers_beyond_its_seeds_through_discovery() {
    let (a, mut a_events) = node(1, discovering()).await;
    let (b, mut b_events) = node(
        2,
        NetConfig {
            seeds: seed(&a, 1),
            ..discovering()
        },
    )
    .await;
    joined(&mut a_events, id(2)).await;
    joined(&mut b_events, id(1)).await;
    eventually("B learns A's record", || b.knows_address_of(&id(1))).await;

    // C knows only B; B's answer to C's GetAddresses carries A's record, and C dials A.
    let (c, mut c_events) = node(
        3,
        NetConfig {
            seeds: seed(&b, 2),
            ..discovering()
        },
    )
    .await;
    joined(&mut c_events, id(2)).await;
    joined(&mut c_events, id(1)).await;
    joined(&mut a_events, id(3)).await;
    assert!(c.knows_address_of(&id(1)));
    assert_eq!(c.stats().outbound, 2);

    // All of that was discovery traffic, and none of it reached an engine.
    for events in [&mut a_events, &mut b_events, &mut c_events] {
        no_message(events, Duration::from_millis(100)).await;
    }
    // The engine cannot speak discovery either; its own channels work on the found link.
    assert_eq!(
        c.send(&id(1), Channel::Discovery, Bytes::from_static(&[1])),
        Err(crate::NetError::ReservedChannel(Channel::Discovery))
    );
    c.send(&id(1), Channel::Consensus, Bytes::from_static(b"found you"))
        .unwrap();
    let (from, bytes) = message(&mut a_events, Channel::Consensus).await;
    assert_eq!((from, &bytes[..]), (id(3), &b"found you"[..]));
    for net in [a, b, c] {
        net.shutdown();
    }
}

#[tokio::test]
async fn forged_or_garbage_addresses_cost_the_sender_and_are_not_kept() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(discovering()).await;
    let addr = victim.local_addr().unwrap();
    let (mut attacker, mut keys) = handshaken_attacker(9, addr).await;
    joined(&mut victim_events, id(9)).await;

    // Node 8's record with its signature broken, then bytes that are no discovery message at all.
    let now = crate::addresses::now_ms();
    let mut forged = identity(8)
        .address_record(SocketAddr::from(([127, 0, 0, 1], 4_000)), now)
        .encode();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    let mut addresses = vec![0x02, 1];
    addresses.extend_from_slice(&forged);
    send_discovery(&mut attacker, &mut keys, &[addresses, vec![0x07, 0xff]]).await;

    let bad_signature = crate::Misbehavior::Invalid.penalty();
    let garbage = crate::Misbehavior::Malformed.penalty();
    eventually("both offences are scored", || {
        victim.score(&id(9)) == Some(bad_signature + garbage)
    })
    .await;
    assert!(!victim.knows_address_of(&id(8)));
    no_message(&mut victim_events, Duration::from_millis(100)).await;
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn a_discovery_flood_is_dropped_and_scored() {
    let (victim, mut victim_events, _honest, mut honest_events) =
        victim_with_honest_peer(NetConfig {
            discovery_per_minute: 1,
            discovery_burst: 4,
            ..discovering()
        })
        .await;
    let (mut attacker, mut keys) = handshaken_attacker(9, victim.local_addr().unwrap()).await;
    joined(&mut victim_events, id(9)).await;
    let asks = vec![vec![0x01]; 24];
    send_discovery(&mut attacker, &mut keys, &asks).await;
    // The burst is answered; each of the other 20 is dropped and costs a spam point.
    eventually("the flood is scored", || victim.score(&id(9)) >= Some(20)).await;
    no_message(&mut victim_events, Duration::from_millis(100)).await;
    honest_link_still_works(&victim, &mut honest_events).await;
}

#[tokio::test]
async fn the_address_book_is_saved_at_shutdown_and_loaded_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("addresses.bin");
    let (a, mut a_events) = node(1, discovering()).await;
    let with_book = || NetConfig {
        seeds: seed(&a, 1),
        address_book_path: Some(book.clone()),
        ..discovering()
    };
    let (b, _b_events) = node(2, with_book()).await;
    joined(&mut a_events, id(2)).await;
    eventually("B learns A's record", || b.knows_address_of(&id(1))).await;
    b.shutdown();
    assert!(book.exists());

    let (again, _again_events) = node(2, with_book()).await;
    assert!(
        again.knows_address_of(&id(1)),
        "loaded before any peer spoke"
    );
    again.shutdown();
    a.shutdown();
}

#[tokio::test]
async fn a_node_with_free_slots_asks_again_and_finds_peers_learned_later() {
    let quick = || NetConfig {
        discovery_reask_interval: Duration::from_millis(200),
        ..discovering()
    };
    let (a, mut a_events) = node(1, quick()).await;
    let (b, mut b_events) = node(2, quick()).await;
    let (c, mut c_events) = node(
        3,
        NetConfig {
            seeds: seed(&b, 2),
            ..quick()
        },
    )
    .await;
    // C's first ask finds B knowing no one.
    joined(&mut c_events, id(2)).await;
    assert!(!c.knows_address_of(&id(1)));
    // B meets A afterwards; C, its slots still free, asks B again and reaches A.
    b.dial(a.local_addr().unwrap(), Some(id(1)));
    joined(&mut b_events, id(1)).await;
    joined(&mut c_events, id(1)).await;
    joined(&mut a_events, id(3)).await;
    for net in [a, b, c] {
        net.shutdown();
    }
}
