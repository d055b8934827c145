//! State sync over real sockets: four validators build a chain over TCP + Noise on 127.0.0.1; a fifth
//! node with an empty store walks their certified headers, imports the UTXO set page by page from them
//! (`timecoin_node::bootstrap::run_state_sync`, the machine the simulator runs), then starts its engine
//! on the imported chain and follows the next block.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::needless_range_loop
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{local_net, start, stop, transfer, wait_connected, wait_height};
use timecoin_crypto::SecretKey;
use timecoin_net::{NodeIdentity, TcpNetwork};
use timecoin_node::bootstrap::run_state_sync;
use timecoin_node::runner;
use timecoin_node::statesync::{StateSync, StateSyncConfig, StateSyncOutcome};
use timecoin_node::{NodeBuilder, NodeConfig};
use timecoin_storage::{BlockStore, ChainStore, ConsensusStateStore, MemoryEngine, StorageConfig};
use timecoin_types::Genesis;

const NODES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_state_syncs_over_tcp_then_follows_the_chain() {
    let genesis = Genesis::local(NODES);
    let (nodes, seeds) = start(&genesis, NODES).await;
    wait_connected(&nodes, NODES - 1).await;
    let handles: Vec<_> = nodes.iter().map(|n| &n.handle).collect();
    // Three transfers, one block each: the chain is at 3 and idles (no empty blocks for 600 s).
    for owner in 0..3 {
        nodes[owner]
            .handle
            .submit(transfer(&genesis, owner))
            .await
            .unwrap();
        wait_height(&handles, owner as u64 + 1).await;
    }

    let identity = NodeIdentity::new(
        SecretKey::from_seed(&[200; 32]),
        genesis.params.chain_id,
        genesis.block().hash().0,
    );
    let (network, mut events) = TcpNetwork::bind(local_net(seeds), identity).await.unwrap();
    let sync = StateSync::new(
        StateSyncConfig {
            min_lag: 2,
            status_wait: Duration::from_millis(1_500),
            request_timeout: Duration::from_secs(2),
            page_size: 2,
            header_batch: 2,
            ..StateSyncConfig::default()
        },
        StorageConfig::memory(),
        genesis.clone(),
        MemoryEngine::new(),
    )
    .unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        run_state_sync(sync, Arc::new(network.clone()), &mut events, Vec::new()),
    )
    .await
    .expect("state sync did not end within 30 s")
    .unwrap();
    // The engine will start knowing the peers the sync met.
    let events = done.events_for_engine(events, runner::INBOX_CAPACITY);
    assert_eq!(done.peers.len(), NODES);
    let StateSyncOutcome::Imported(db) = done.outcome else {
        panic!("no snapshot was imported: {:?}", done.stats);
    };
    assert_eq!(db.base_height().unwrap(), 3);
    assert_eq!(done.stats.headers, 3);
    assert!(done.stats.pages >= 3, "{:?}", done.stats);
    let honest = nodes[0].db.utxo_state().unwrap();
    assert_eq!(
        db.utxo_state().unwrap().hash.checksum(),
        honest.hash.checksum()
    );
    assert_eq!(db.tip().unwrap(), nodes[0].db.tip().unwrap());

    // The engine starts on the imported chain and follows block 4.
    let db = Arc::new(db);
    let node = NodeBuilder::new(NodeConfig::new(&genesis), genesis.clone())
        .store(
            db.clone() as Arc<dyn ChainStore>,
            db.clone() as Arc<dyn ConsensusStateStore>,
        )
        .network(Arc::new(network.clone()))
        .build()
        .unwrap();
    let (late, thread) = runner::spawn(node, events, tokio::runtime::Handle::current()).unwrap();
    nodes[3].handle.submit(transfer(&genesis, 3)).await.unwrap();
    let mut all = handles.clone();
    all.push(&late);
    wait_height(&all, 4).await;
    assert_eq!(
        db.block(4).unwrap().unwrap().block.hash(),
        nodes[0].db.block(4).unwrap().unwrap().block.hash()
    );
    late.stop().await.unwrap();
    network.shutdown();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    stop(nodes).await;
}
