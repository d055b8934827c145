//! Two nodes on 127.0.0.1 over the real TCP + Noise transport: the second dials the first (checking it
//! reached the key it meant to), both authenticate, and each sends the other a message on every channel.
//! The first node is a masternode, so the second learns its operator key when it joins.
//!
//! Run: `cargo run -p timecoin-examples --example two_nodes_tcp`
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use timecoin_crypto::{ChainId, SecretKey};
use timecoin_net::{Channel, NetConfig, NetEvent, Network, NodeIdentity, SeedPeer, TcpNetwork};
use timecoin_types::Genesis;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let genesis = Genesis::local(4);
    let chain: ChainId = genesis.params.chain_id;
    let genesis_hash = genesis.block().hash().0;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    // Both nodes share 127.0.0.1, so allow more than the public default of one connection per address.
    let local = NetConfig {
        listen: loopback,
        max_per_ip: 8,
        ..NetConfig::default()
    };

    let first = NodeIdentity::new(SecretKey::generate_os(), chain, genesis_hash)
        .with_operator(Genesis::local_validator_key(0));
    let first_id = first.peer_id();
    let (alice, mut alice_events) = TcpNetwork::bind(local.clone(), first).await?;

    let second = NodeIdentity::new(SecretKey::generate_os(), chain, genesis_hash);
    let seeds = vec![SeedPeer {
        addr: alice.local_addr()?,
        key: Some(first_id),
    }];
    let (bob, mut bob_events) = TcpNetwork::bind(NetConfig { seeds, ..local }, second).await?;

    let mut heard = 0;
    let wanted = 2 * Channel::ENGINE.len();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while heard < wanted {
        let (who, event) = tokio::select! {
            Some(e) = alice_events.recv() => ("alice", e),
            Some(e) = bob_events.recv() => ("bob", e),
            () = &mut deadline => return Err("the nodes did not finish talking within 10 s".into()),
        };
        match event {
            NetEvent::Joined { peer, masternode } => {
                println!("{who}: {peer} joined (masternode operator: {masternode:?})");
                let net = if who == "alice" { &alice } else { &bob };
                for channel in Channel::ENGINE {
                    net.send(
                        &peer,
                        channel,
                        Bytes::from(format!("hello from {who} on {channel}")),
                    )?;
                }
            }
            NetEvent::Message {
                from,
                channel,
                bytes,
            } => {
                println!(
                    "{who}: {from} on {channel}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                heard += 1;
            }
            NetEvent::Left(peer) => println!("{who}: {peer} left"),
        }
    }
    alice.shutdown();
    bob.shutdown();
    Ok(())
}
