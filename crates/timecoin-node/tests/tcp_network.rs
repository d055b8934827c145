//! The shipping layers end to end in one process: four engines, each on its own thread behind
//! `runner::spawn`, talking over the real TCP + Noise transport on 127.0.0.1. A transfer submitted to one
//! node is gossiped, proposed, voted on and finalized by all four.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{start, stop, transfer, wait_connected, wait_height};
use timecoin_storage::BlockStore;
use timecoin_types::Genesis;

const NODES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_over_tcp_finalize_a_transfer_submitted_to_one_of_them() {
    let genesis = Genesis::local(NODES);
    let (nodes, _) = start(&genesis, NODES).await;
    // Every node has its three peers, so the transfer's gossip reaches them all.
    wait_connected(&nodes, NODES - 1).await;
    let txid = nodes[0].handle.submit(transfer(&genesis, 0)).await.unwrap();
    let handles: Vec<_> = nodes.iter().map(|n| &n.handle).collect();
    wait_height(&handles, 1).await;
    // One chain: every node holds the same block 1, and it carries the transfer.
    let blocks: Vec<_> = nodes
        .iter()
        .map(|n| n.db.block(1).unwrap().unwrap().block)
        .collect();
    assert!(blocks.iter().all(|b| b.hash() == blocks[0].hash()));
    assert!(blocks[0].transactions.iter().any(|t| t.txid() == txid));
    stop(nodes).await;
}
