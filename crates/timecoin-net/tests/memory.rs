//! Memory under load, measured in a process of its own (so no other test's allocations show): resident
//! memory per connected peer, and what a peer that never reads can make a node hold while it is sent
//! far more than its queue takes. Run with `--nocapture` to see the figures; the assertions catch an
//! unbounded buffer, with room for allocator slack.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use timecoin_crypto::{Hash, SecretKey};
use timecoin_net::peers::MAX_QUEUED_BYTES_PER_PEER;
use timecoin_net::{Channel, NetConfig, NetEvent, Network, NodeIdentity, SeedPeer, TcpNetwork};
use timecoin_types::ChainId;
use tokio::sync::mpsc::Receiver;

const MIB: usize = 1024 * 1024;

fn identity(seed: u8) -> NodeIdentity {
    NodeIdentity::new(
        SecretKey::from_seed(&[seed; 32]),
        ChainId(7),
        Hash::from_bytes([1; 32]),
    )
}

fn config(seeds: Vec<SeedPeer>) -> NetConfig {
    NetConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_per_ip: 256,
        handshakes_per_ip_per_minute: 10_000,
        ban_ip_addresses: false,
        seeds,
        ..NetConfig::default()
    }
}

/// The process's resident memory, from /proc (0 where that is missing).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_peer_and_under_a_reader_that_never_reads_stays_bounded() {
    let (hub, _hub_events) = TcpNetwork::bind(config(Vec::new()), identity(1))
        .await
        .unwrap();
    let seed = SeedPeer {
        addr: hub.local_addr().unwrap(),
        key: Some(identity(1).peer_id()),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 64 peers dial the hub. Both ends live in this process, so the figure is a link's cost at both
    // ends together.
    const PEERS: usize = 64;
    let before = resident_bytes();
    let mut peers: Vec<(TcpNetwork, Receiver<NetEvent>)> = Vec::new();
    for i in 0..PEERS {
        peers.push(
            TcpNetwork::bind(config(vec![seed.clone()]), identity(10 + i as u8))
                .await
                .unwrap(),
        );
    }
    until("every peer joined", || hub.peers().len() == PEERS).await;
    let per_link = resident_bytes().saturating_sub(before) / PEERS;
    println!(
        "resident memory per link (both ends, two networks): {} KiB",
        per_link / 1024
    );

    // One of them stops reading: its event queue fills, its socket stops being drained, and what the
    // hub sends it piles up in the hub's queue for it, which refuses past its bound.
    let (slow, slow_events) = peers.pop().unwrap();
    let slow_id = identity(10 + PEERS as u8 - 1).peer_id();
    let before = resident_bytes();
    let message = Bytes::from(vec![7u8; MIB]);
    let mut accepted = 0usize;
    let mut refused = 0usize;
    for _ in 0..512 {
        match hub.send(&slow_id, Channel::Sync, message.clone()) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued = hub.stats().queued_bytes;
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "to a peer that never reads, 512 MiB offered: {accepted} MiB accepted, {refused} refused, {} MiB \
         queued at the hub, resident memory +{} MiB",
        queued / MIB,
        grown / MIB
    );
    assert!(refused > 0, "the queue took everything");
    assert!(queued <= MAX_QUEUED_BYTES_PER_PEER, "{queued} bytes queued");
    // The hub's queue, plus what sits in the reader's bounded event queue and the sockets' buffers.
    assert!(
        grown < 4 * MAX_QUEUED_BYTES_PER_PEER,
        "resident memory grew by {grown} bytes"
    );
    drop(slow_events);
    slow.shutdown();
    hub.shutdown();
    for (peer, _) in peers {
        peer.shutdown();
    }
}
