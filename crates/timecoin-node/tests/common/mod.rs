//! Shared by the TCP tests: a local chain of validators, each an engine behind `runner::spawn` on the real
//! TCP + Noise transport on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unused_imports,
    unreachable_pub
)]

use std::time::Duration;

use timecoin_crypto::Address;
use timecoin_net::SeedPeer;
use timecoin_node::NodeStatus;
use timecoin_node::runner::NodeHandle;
use timecoin_types::{Amount, Genesis, Transaction, TxBuilder};

pub use timecoin_node::testing::{LocalValidator as Running, loopback_net as local_net};

/// Starts the `n` validators of `genesis` (which must be `Genesis::local(n)`); node `i` dials every
/// node before it, so all end up connected. Returns them with seeds naming each.
pub async fn start(genesis: &Genesis, n: usize) -> (Vec<Running>, Vec<SeedPeer>) {
    timecoin_node::testing::start_local_validators(genesis, n, 100)
        .await
        .unwrap()
}

/// Waits until every node has `peers` peers.
pub async fn wait_connected(nodes: &[Running], peers: usize) {
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if nodes.iter().all(|n| n.network.peers().len() >= peers) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(connected.is_ok(), "the nodes did not all connect");
}

/// A transfer of 5 TIME from genesis coin `owner` (a local validator's) to a key outside the set.
pub fn transfer(genesis: &Genesis, owner: usize) -> Transaction {
    let key = Genesis::local_validator_key(owner);
    let (coin, out) = genesis.utxos()[owner];
    let to = Address::from_public_key(&Genesis::local_validator_key(90 + owner).public_key());
    let pay = Amount::from_time(5).unwrap();
    TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(to, pay)
        .output(
            out.address,
            Amount::from_sat(out.amount.as_sat() - pay.as_sat() - 1_000),
        )
        .sign()
}

/// Waits until every handle reports at least `height` with an empty pool; returns the statuses.
pub async fn wait_height(handles: &[&NodeHandle], height: u64) -> Vec<NodeStatus> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut statuses = Vec::new();
            for handle in handles {
                statuses.push(handle.status().await.unwrap());
            }
            if statuses
                .iter()
                .all(|s| s.height >= height && s.mempool == 0)
            {
                return statuses;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("height {height} was not final on every node within 30 s"))
}

/// Stops every node and joins its engine thread.
pub async fn stop(nodes: Vec<Running>) {
    for node in nodes {
        node.handle.stop().await.unwrap();
        node.network.shutdown();
        tokio::task::spawn_blocking(move || node.thread.join().unwrap())
            .await
            .unwrap();
    }
}
