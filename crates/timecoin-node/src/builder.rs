//! [`NodeBuilder`]: a node from a config, with each layer swappable in one call.

use std::sync::Arc;

use prometheus_client::metrics::histogram::Histogram;
use timecoin_consensus::Signer;
use timecoin_crypto::SecretKey;
use timecoin_mempool::{Clock, Mempool, SystemClock, TxPool};
use timecoin_net::{NetError, Network, PeerId};
use timecoin_storage::{ChainDb, ChainStore, ConsensusStateStore, KvEngine};
use timecoin_types::{Genesis, OutPoint, TxOut, TypesError, UtxoView};
use tracing::debug;

use crate::engine::{Effect, Engine, Event, Parts};
use crate::metrics::TimedStore;
use crate::{NodeConfig, NodeError};

/// A [`ChainStore`] shared with the mempool as its UTXO view: the pool admits against the finalized set.
#[derive(Clone)]
pub struct StoreView(pub Arc<dyn ChainStore>);

impl UtxoView for StoreView {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        self.0.get_utxo(outpoint)
    }
}

/// A network that is not connected to anything: what a node has until one is given (a single
/// validator needs no peers).
#[derive(Clone, Copy, Debug, Default)]
pub struct Disconnected;

impl Network for Disconnected {
    fn send(&self, to: &PeerId, _: timecoin_net::Channel, _: bytes::Bytes) -> Result<(), NetError> {
        Err(NetError::NotConnected(*to))
    }
    fn broadcast(&self, _: timecoin_net::Channel, _: bytes::Bytes) -> Result<(), NetError> {
        Ok(())
    }
}

/// Builds a [`Node`].
///
/// Defaults: the store [`NodeConfig::storage`] names ([`ChainDb`] on sled or memory), a [`TxPool`] over
/// it on the system clock, a fresh random signing key (an observer: it votes only if the chain makes its
/// key a masternode), no network, and block commits not timed.
pub struct NodeBuilder {
    config: NodeConfig,
    genesis: Arc<Genesis>,
    store: Option<(Arc<dyn ChainStore>, Arc<dyn ConsensusStateStore>)>,
    mempool: Option<Arc<dyn Mempool>>,
    clock: Option<Arc<dyn Clock>>,
    network: Option<Arc<dyn Network>>,
    signer: Option<Arc<dyn Signer>>,
    commit_timer: Option<Histogram>,
}

impl NodeBuilder {
    /// A builder for a node of `genesis`'s chain with `config`.
    pub fn new(config: NodeConfig, genesis: Genesis) -> Self {
        NodeBuilder {
            config,
            genesis: Arc::new(genesis),
            store: None,
            mempool: None,
            clock: None,
            network: None,
            signer: None,
            commit_timer: None,
        }
    }

    /// Uses `db` for the chain and the consensus WAL.
    pub fn chain_db<E: KvEngine>(self, db: ChainDb<E>) -> Self {
        let db = Arc::new(db);
        self.store(db.clone(), db)
    }

    /// Uses these stores (any implementations of the traits).
    pub fn store(mut self, chain: Arc<dyn ChainStore>, wal: Arc<dyn ConsensusStateStore>) -> Self {
        self.store = Some((chain, wal));
        self
    }

    /// Uses this mempool. It must validate against the same chain store the node is given.
    pub fn mempool(mut self, mempool: Arc<dyn Mempool>) -> Self {
        self.mempool = Some(mempool);
        self
    }

    /// The clock of the default mempool (its rejection TTLs); a simulator passes a manual one.
    pub fn mempool_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this network.
    pub fn network(mut self, network: Arc<dyn Network>) -> Self {
        self.network = Some(network);
        self
    }

    /// Signs with this key or remote signer.
    pub fn signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Times each block the engine applies into `histogram` (seconds), through a [`TimedStore`] around
    /// the chain store; the histogram is usually
    /// [`NodeMetrics::commit_seconds`](crate::metrics::NodeMetrics::commit_seconds). Without it the
    /// store is not wrapped, so a node without metrics pays nothing.
    pub fn commit_timer(mut self, histogram: Histogram) -> Self {
        self.commit_timer = Some(histogram);
        self
    }

    /// Opens what was not given and resumes the engine from the stores.
    pub fn build(self) -> Result<Node, NodeError> {
        let NodeBuilder {
            config,
            genesis,
            store,
            mempool,
            clock,
            network,
            signer,
            commit_timer,
        } = self;
        let (chain, wal) = match store {
            Some(pair) => pair,
            None => {
                let db = Arc::new(ChainDb::from_config(&config.storage, &genesis)?);
                (
                    db.clone() as Arc<dyn ChainStore>,
                    db as Arc<dyn ConsensusStateStore>,
                )
            }
        };
        let mempool = match mempool {
            Some(m) => m,
            None => {
                let clock = clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
                Arc::new(TxPool::with_clock(
                    config.mempool.clone(),
                    genesis.params.clone(),
                    StoreView(chain.clone()),
                    clock,
                ))
            }
        };
        let signer = signer.unwrap_or_else(|| Arc::new(SecretKey::generate_os()));
        // Only the engine commits blocks; the mempool's reads go to the store unwrapped.
        let chain = match commit_timer {
            Some(histogram) => Arc::new(TimedStore::new(chain, histogram)) as Arc<dyn ChainStore>,
            None => chain,
        };
        let engine = Engine::new(Parts {
            config: config.engine.clone(),
            consensus: config.consensus.clone(),
            genesis,
            store: chain,
            wal,
            mempool,
            signer,
        })?;
        Ok(Node {
            engine,
            network: network.unwrap_or_else(|| Arc::new(Disconnected)),
        })
    }
}

/// An engine plugged into a network: [`Node::handle`] runs an event, sends what the engine asks to send
/// and reports penalties to the network ([`Network::report`]), returning the effects only the host can
/// carry out (timers, replies, notices) and the penalties (for the host's own counters).
pub struct Node {
    engine: Engine,
    network: Arc<dyn Network>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Handles `event` at `now_ms`; see [`Engine::handle`].
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Effect> {
        self.handle_batch(now_ms, vec![event])
    }

    /// Handles events that arrived together; see [`Engine::handle_batch`].
    pub fn handle_batch(&mut self, now_ms: u64, events: Vec<Event>) -> Vec<Effect> {
        let starting = events.iter().any(|e| matches!(e, Event::Start));
        let effects = self.engine.handle_batch(now_ms, events);
        let mut rest = Vec::new();
        let finalized = effects
            .iter()
            .any(|e| matches!(e, Effect::Finalized { .. }));
        if starting || finalized {
            // The set can change only with a finalized block: keep the network's reserved slots on it.
            let operators: Vec<_> = self
                .engine
                .registry()
                .current()
                .members()
                .iter()
                .map(|v| v.key)
                .collect();
            self.network.set_validators(&operators);
        }
        for effect in effects {
            match effect {
                Effect::Send { to, channel, bytes } => {
                    if let Err(e) = self.network.send(&to, channel, bytes) {
                        // Like a lost packet: retransmission and sync recover it.
                        debug!(%e, "send dropped");
                    }
                }
                Effect::Broadcast { channel, bytes } => {
                    if let Err(e) = self.network.broadcast(channel, bytes) {
                        debug!(%e, "broadcast dropped");
                    }
                }
                Effect::Penalize { peer, misbehavior } => {
                    self.network.report(&peer, misbehavior);
                    rest.push(Effect::Penalize { peer, misbehavior });
                }
                other => rest.push(other),
            }
        }
        rest
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The network.
    pub fn network(&self) -> &Arc<dyn Network> {
        &self.network
    }
}
