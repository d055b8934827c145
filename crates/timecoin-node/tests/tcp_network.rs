//! The shipping layers end to end in one process: four engines, each on its own thread behind
//! `runner::spawn`, talking over the real TCP + Noise transport on 127.0.0.1. A transfer submitted to one
//! node is gossiped, proposed, voted on and finalized by all four.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use timecoin_crypto::{Address, SecretKey};
use timecoin_net::{NetConfig, NodeIdentity, SeedPeer, TcpNetwork};
use timecoin_node::runner::{self, NodeHandle};
use timecoin_node::{NodeBuilder, NodeConfig};
use timecoin_storage::{BlockStore, ChainDb, ChainStore, ConsensusStateStore};
use timecoin_types::{Amount, Genesis, TxBuilder};

const NODES: usize = 4;

type Db = Arc<ChainDb<timecoin_storage::MemoryEngine>>;

async fn start(
    genesis: &Genesis,
) -> Vec<(NodeHandle, TcpNetwork, std::thread::JoinHandle<()>, Db)> {
    let chain = genesis.params.chain_id;
    let genesis_hash = genesis.block().hash().0;
    let mut nodes = Vec::new();
    let mut seeds: Vec<SeedPeer> = Vec::new();
    for i in 0..NODES {
        let node_key = SecretKey::from_seed(&[100 + i as u8; 32]);
        let identity = NodeIdentity::new(node_key, chain, genesis_hash)
            .with_operator(Genesis::local_validator_key(i));
        let id = identity.peer_id();
        let config = NetConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            // Every node shares 127.0.0.1.
            max_per_ip: 16,
            // Node i dials every node before it, so all four end up connected.
            seeds: seeds.clone(),
            ..NetConfig::default()
        };
        let (network, events) = TcpNetwork::bind(config, identity).await.unwrap();
        seeds.push(SeedPeer {
            addr: network.local_addr().unwrap(),
            key: Some(id),
        });
        let db: Db = Arc::new(ChainDb::memory(genesis).unwrap());
        let node = NodeBuilder::new(NodeConfig::new(genesis), genesis.clone())
            .store(
                db.clone() as Arc<dyn ChainStore>,
                db.clone() as Arc<dyn ConsensusStateStore>,
            )
            .network(Arc::new(network.clone()))
            .signer(Arc::new(Genesis::local_validator_key(i)))
            .build()
            .unwrap();
        let (handle, thread) =
            runner::spawn(node, events, tokio::runtime::Handle::current()).unwrap();
        nodes.push((handle, network, thread, db));
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_over_tcp_finalize_a_transfer_submitted_to_one_of_them() {
    let genesis = Genesis::local(NODES);
    let nodes = start(&genesis).await;
    // Wait until every node has its three peers, so the transfer's gossip reaches them all.
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if nodes
                .iter()
                .all(|(_, net, _, _)| net.peers().len() == NODES - 1)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(connected.is_ok(), "the four nodes did not all connect");

    let key = Genesis::local_validator_key(0);
    let (coin, out) = genesis.utxos()[0];
    let to = Address::from_public_key(&Genesis::local_validator_key(9).public_key());
    let pay = Amount::from_time(5).unwrap();
    let tx = TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(to, pay)
        .output(
            out.address,
            Amount::from_sat(out.amount.as_sat() - pay.as_sat() - 1_000),
        )
        .sign();
    let txid = nodes[0].0.submit(tx).await.unwrap();

    let finalized = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut statuses = Vec::new();
            for (handle, _, _, _) in &nodes {
                statuses.push(handle.status().await.unwrap());
            }
            if statuses.iter().all(|s| s.height >= 1 && s.mempool == 0) {
                return statuses;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the transfer was not final on all four nodes within 30 s");
    // One chain: every node holds the same block 1, and it carries the transfer.
    assert!(finalized.iter().all(|s| s.height >= 1));
    let blocks: Vec<_> = nodes
        .iter()
        .map(|(_, _, _, db)| db.block(1).unwrap().unwrap().block)
        .collect();
    assert!(blocks.iter().all(|b| b.hash() == blocks[0].hash()));
    assert!(blocks[0].transactions.iter().any(|t| t.txid() == txid));
    for (handle, network, thread, _) in nodes {
        handle.stop().await.unwrap();
        network.shutdown();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}
