//! Test support (feature `test-support`): a local chain of validators, each an engine behind
//! [`runner::spawn`](crate::runner::spawn) on the real TCP + Noise transport on 127.0.0.1, each over an
//! in-memory store. Shared by this crate's TCP, RPC and state-sync tests and by the CLI's tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use timecoin_crypto::SecretKey;
use timecoin_net::{NetConfig, NodeIdentity, SeedPeer, TcpNetwork};
use timecoin_storage::{ChainDb, ChainStore, ConsensusStateStore, MemoryEngine};
use timecoin_types::Genesis;

use crate::runner::{self, NodeHandle};
use crate::{NodeBuilder, NodeConfig, NodeError};

/// One running validator of [`start_local_validators`].
#[allow(missing_debug_implementations)]
pub struct LocalValidator {
    /// Its handle.
    pub handle: NodeHandle,
    /// Its network.
    pub network: TcpNetwork,
    /// Its engine thread.
    pub thread: JoinHandle<()>,
    /// Its store.
    pub db: Arc<ChainDb<MemoryEngine>>,
}

/// Loopback settings: every node shares 127.0.0.1, so more than one connection per address is allowed.
pub fn loopback_net(seeds: Vec<SeedPeer>) -> NetConfig {
    NetConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_per_ip: 16,
        seeds,
        ..NetConfig::default()
    }
}

/// Starts the `n` validators of `genesis` (which must name `Genesis::local_validator_key(0..n)`), with
/// node keys drawn from `key_seed + i`; node `i` dials every node before it, so all end up connected.
/// Returns them with a seed naming each. Must run inside a tokio runtime.
pub async fn start_local_validators(
    genesis: &Genesis,
    n: usize,
    key_seed: u8,
) -> Result<(Vec<LocalValidator>, Vec<SeedPeer>), NodeError> {
    let chain = genesis.params.chain_id;
    let genesis_hash = genesis.block().hash().0;
    let mut nodes = Vec::new();
    let mut seeds: Vec<SeedPeer> = Vec::new();
    for i in 0..n {
        let seed = key_seed.wrapping_add(u8::try_from(i).unwrap_or(u8::MAX));
        let identity = NodeIdentity::new(SecretKey::from_seed(&[seed; 32]), chain, genesis_hash)
            .with_operator(Genesis::local_validator_key(i));
        let id = identity.peer_id();
        let (network, events) = TcpNetwork::bind(loopback_net(seeds.clone()), identity)
            .await
            .map_err(|e| NodeError::Config(format!("binding node {i}: {e}")))?;
        seeds.push(SeedPeer {
            addr: network
                .local_addr()
                .map_err(|e| NodeError::Config(format!("node {i}'s address: {e}")))?,
            key: Some(id),
        });
        let db = Arc::new(ChainDb::memory(genesis)?);
        let node = NodeBuilder::new(NodeConfig::new(genesis), genesis.clone())
            .store(
                db.clone() as Arc<dyn ChainStore>,
                db.clone() as Arc<dyn ConsensusStateStore>,
            )
            .network(Arc::new(network.clone()))
            .signer(Arc::new(Genesis::local_validator_key(i)))
            .build()?;
        let (handle, thread) = runner::spawn(node, events, tokio::runtime::Handle::current())?;
        nodes.push(LocalValidator {
            handle,
            network,
            thread,
            db,
        });
    }
    Ok((nodes, seeds))
}
