//! A simulated validator: the node engine that ships (`timecoin_node::Node`, built with
//! `NodeBuilder`), over `ChainDb` on a memory engine kept across crashes like a disk, a `TxPool` on a
//! manual clock, and the simulated network. A Byzantine strategy wraps what leaves the node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use timecoin_consensus::{Config, Message, WalEntry};
use timecoin_crypto::{Address, HashDomain, PublicKey, SecretKey, hash};
use timecoin_mempool::{ManualClock, TxPool};
use timecoin_net::{Channel, NetError, NetEvent, Network, PeerId};
use timecoin_node::statesync::{StateSync, StateSyncConfig, StateSyncOutcome, StateSyncStats};
use timecoin_node::wire::SyncMessage;
use timecoin_node::{
    Effect, EngineConfig, EngineStats, Event, Node, NodeBuilder, NodeConfig, StoreView, TimerId,
};
use timecoin_storage::{
    BlockStore, ChainDb, ChainStore, ConsensusStateStore, MemoryEngine, StorageConfig, StorageError,
};
use timecoin_types::{
    Amount, Block, BlockHeader, CommitCertificate, Genesis, Height, MIN_DUST, TxBuilder, Wire,
};
use tracing::warn;

use crate::SimError;
use crate::byzantine::{Behavior, Outbox, Strategy};
use crate::runtime::{Context, Millis, NodeId, Process};

/// What travels on the simulated wire: one message on one channel, as bytes, so every node decodes
/// untrusted input exactly as a real one would.
#[derive(Clone, Debug)]
pub struct Packet {
    /// The channel.
    pub channel: Channel,
    /// The encoded message.
    pub bytes: Bytes,
}

impl Packet {
    /// A consensus message on the wire.
    pub fn consensus(message: &Message) -> Self {
        Packet {
            channel: Channel::Consensus,
            bytes: message.encode().into(),
        }
    }

    /// Raw bytes on the consensus channel (forgeries).
    pub fn raw_consensus(bytes: Vec<u8>) -> Self {
        Packet {
            channel: Channel::Consensus,
            bytes: bytes.into(),
        }
    }

    /// The consensus message it carries, if it is one that decodes.
    pub fn message(&self) -> Option<Message> {
        (self.channel == Channel::Consensus)
            .then(|| Message::decode(&self.bytes).ok())
            .flatten()
    }
}

/// Host timings of a simulated node (simulated milliseconds), apart from the consensus timeouts: the
/// engine's settings a simulation changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTiming {
    /// How often a node asks a peer for blocks above its tip.
    pub sync_interval_ms: Millis,
    /// Least time between two triggered sync requests, and between two pushes of one height to one peer.
    pub sync_backoff_ms: Millis,
    /// A sync request unanswered this long is retried on another peer.
    pub sync_timeout_ms: Millis,
    /// Finalized blocks sent per sync request.
    pub sync_batch: u32,
    /// Synced blocks buffered above the current height.
    pub sync_window: u32,
    /// How often the core is given the clock.
    pub tick_interval_ms: Millis,
    /// Re-broadcast a stuck height's WAL this often; `None` turns it off. See
    /// [`EngineConfig::resend_interval`].
    pub resend_interval_ms: Option<Millis>,
    /// The empty-block interval (0: a height starts as soon as the previous one is final).
    pub empty_block_interval_ms: Millis,
    /// [`EngineConfig::prune_keep_blocks`]: 0 keeps every body.
    pub prune_keep_blocks: u64,
}

impl Default for HostTiming {
    fn default() -> Self {
        HostTiming {
            sync_interval_ms: 1_000,
            sync_backoff_ms: 200,
            sync_timeout_ms: 2_000,
            sync_batch: 8,
            sync_window: 32,
            tick_interval_ms: 5_000,
            resend_interval_ms: Some(1_000),
            empty_block_interval_ms: 0,
            prune_keep_blocks: 0,
        }
    }
}

impl HostTiming {
    fn engine_config(&self) -> EngineConfig {
        let ms = std::time::Duration::from_millis;
        EngineConfig {
            empty_block_interval: ms(self.empty_block_interval_ms),
            sync_interval: ms(self.sync_interval_ms),
            sync_request_timeout: ms(self.sync_timeout_ms),
            sync_backoff: ms(self.sync_backoff_ms),
            sync_batch: self.sync_batch,
            sync_window: self.sync_window,
            tick_interval: ms(self.tick_interval_ms),
            resend_interval: self.resend_interval_ms.map(ms),
            prune_keep_blocks: self.prune_keep_blocks,
            ..EngineConfig::default()
        }
    }
}

/// The keys whose coins the simulated transfers spend: the local validators' keys, which
/// [`Genesis::local`] funds. Shared by every node of a simulation (a simulation is its own world).
#[derive(Debug)]
pub struct Wallet {
    keys: Vec<SecretKey>,
    by_address: BTreeMap<Address, usize>,
}

impl Wallet {
    /// The keys of local validators `0..n`.
    pub fn local(n: usize) -> Self {
        let keys: Vec<SecretKey> = (0..n).map(Genesis::local_validator_key).collect();
        let by_address = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Address::from_public_key(&k.public_key()), i))
            .collect();
        Wallet { keys, by_address }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the wallet holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn owner(&self, address: &Address) -> Option<&SecretKey> {
        self.by_address.get(address).and_then(|i| self.keys.get(*i))
    }

    fn next_address(&self, address: &Address) -> Option<Address> {
        let i = self.by_address.get(address)?;
        let next = self.keys.get((i + 1) % self.keys.len().max(1))?;
        Some(Address::from_public_key(&next.public_key()))
    }
}

/// The runtime timer token of the workload's deferred round (the engine's timers use tokens from 0 up).
const WORKLOAD_TOKEN: u64 = u64::MAX;
/// The timer of a state sync's clock.
const STATESYNC_TOKEN: u64 = u64::MAX - 1;
/// How often a state sync is given the clock.
const STATESYNC_TICK_MS: Millis = 100;

/// Amount each simulated transfer pays to the next wallet key.
const PAYMENT: Amount = Amount::from_sat(100_000_000);
/// Fee each simulated transfer leaves.
const FEE: Amount = Amount::from_sat(1_000);

/// Everything that defines a node and never changes, shared by its incarnations across restarts.
#[derive(Debug)]
pub struct NodeSpec {
    /// Its id in the runtime.
    pub id: NodeId,
    /// Number of nodes in the runtime.
    pub nodes: usize,
    /// The validator key it signs with (twins share one).
    pub key: Arc<SecretKey>,
    /// Every node's network identity, by node id.
    pub peers: Arc<Vec<PeerId>>,
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// Consensus settings.
    pub consensus: Config,
    /// Keys whose coins the workload spends.
    pub wallet: Arc<Wallet>,
    /// Transfers the node's wallet client submits after each finalized height.
    pub txs_per_block: usize,
    /// Host timings.
    pub timing: HostTiming,
    /// Honest or which Byzantine strategy.
    pub behavior: Behavior,
}

impl NodeSpec {
    /// The network identity of simulated node `id` (distinct from its validator key: twins share that).
    pub fn peer_id(id: NodeId) -> PeerId {
        let seed = hash(
            HashDomain::Custom("timecoin sim node key v1"),
            &(id as u64).to_le_bytes(),
        );
        PeerId::from(SecretKey::from_seed(seed.as_bytes()).public_key())
    }

    fn node_of(&self, peer: &PeerId) -> Option<NodeId> {
        self.peers.iter().position(|p| p == peer)
    }
}

/// Counters of what a node did, for assertions: the engine's.
pub type NodeStats = EngineStats;

/// What a simulated node keeps across a crash: the memory engine under its `ChainDb` (finalized blocks,
/// UTXO set, consensus WAL), treated as a disk. Cloning shares the disk.
#[derive(Clone, Debug)]
pub struct DurableState {
    engine: Arc<MemoryEngine>,
    db: Arc<ChainDb<Arc<MemoryEngine>>>,
    /// How many times the node was restarted from this disk.
    pub restarts: u32,
    appended: Arc<AtomicU64>,
}

impl DurableState {
    /// A fresh disk holding `genesis`.
    pub fn new(genesis: &Genesis) -> Result<Self, SimError> {
        let engine = Arc::new(MemoryEngine::new());
        Self::open(engine, genesis, 0, Arc::new(AtomicU64::new(0)))
    }

    fn open(
        engine: Arc<MemoryEngine>,
        genesis: &Genesis,
        restarts: u32,
        appended: Arc<AtomicU64>,
    ) -> Result<Self, SimError> {
        let db = ChainDb::open(engine.clone(), &StorageConfig::memory(), genesis)
            .map_err(|e| SimError::Setup(format!("opening the store: {e}")))?;
        Ok(DurableState {
            engine,
            db: Arc::new(db),
            restarts,
            appended,
        })
    }

    /// A disk a state sync filled: `db` is the imported chain on `engine`.
    fn imported(engine: Arc<MemoryEngine>, db: ChainDb<Arc<MemoryEngine>>) -> Self {
        DurableState {
            engine,
            db: Arc::new(db),
            restarts: 0,
            appended: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same disk reopened, as a restarted process finds it (the store's recovery runs).
    pub fn reopen(&self, genesis: &Genesis) -> Result<Self, SimError> {
        Self::open(
            self.engine.clone(),
            genesis,
            self.restarts + 1,
            self.appended.clone(),
        )
    }

    /// The store.
    pub fn db(&self) -> &Arc<ChainDb<Arc<MemoryEngine>>> {
        &self.db
    }

    /// Height of the last finalized block.
    pub fn tip_height(&self) -> Height {
        self.db.tip().map_or(0, |t| t.height)
    }

    /// The finalized block of `height` with its certificate (`None` too where its body was pruned).
    pub fn finalized(&self, height: Height) -> Option<(Block, CommitCertificate)> {
        let stored = self.db.block(height).ok()??;
        Some((stored.block, stored.certificate?))
    }

    /// The finalized header of `height` with its certificate, also where the body was pruned.
    pub fn finalized_header(&self, height: Height) -> Option<(BlockHeader, CommitCertificate)> {
        let stored = self.db.header(height).ok()??;
        Some((stored.header, stored.certificate?))
    }

    /// WAL entries ever appended through this disk (pruning does not lower it).
    pub fn wal_appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Appends a WAL entry directly (tests that doctor a disk).
    pub fn append_wal(&self, entry: &WalEntry) -> Result<(), StorageError> {
        self.appended.fetch_add(1, Ordering::Relaxed);
        self.db.append_wal(entry.height(), &entry.encode())
    }

    /// The WAL above the tip, decoded, in order, with how many entries did not decode.
    pub fn wal_entries(&self) -> (Vec<WalEntry>, usize) {
        let raw = self
            .db
            .replay(self.tip_height().saturating_add(1))
            .unwrap_or_default();
        let mut skipped = 0;
        let entries = raw
            .iter()
            .filter_map(|bytes| {
                let entry = WalEntry::decode(bytes).ok();
                skipped += usize::from(entry.is_none());
                entry
            })
            .collect();
        (entries, skipped)
    }
}

/// The WAL as the engine sees it: the disk's, counting appends, with the crash hook. When the hook
/// fires the entry is written and then the "process dies": the write returns an error, so the engine
/// stops before sending what it recorded, and the node reports a crash rather than a failure.
struct HookedWal {
    db: Arc<ChainDb<Arc<MemoryEngine>>>,
    appended: Arc<AtomicU64>,
    crash_after: Arc<Mutex<Option<u32>>>,
    crashed: Arc<AtomicBool>,
}

impl ConsensusStateStore for HookedWal {
    fn save_signed(&self, state: &[u8]) -> Result<(), StorageError> {
        self.db.save_signed(state)
    }
    fn last_signed(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.last_signed()
    }
    fn append_wal(&self, height: Height, entry: &[u8]) -> Result<(), StorageError> {
        if self.crashed.load(Ordering::Relaxed) {
            return Err(StorageError::Halted {
                reason: "simulated crash".into(),
            });
        }
        self.db.append_wal(height, entry)?;
        self.appended.fetch_add(1, Ordering::Relaxed);
        let mut hook = self.crash_after.lock().unwrap_or_else(|p| p.into_inner());
        match *hook {
            Some(n) if n <= 1 => {
                *hook = None;
                self.crashed.store(true, Ordering::Relaxed);
                Err(StorageError::Halted {
                    reason: "simulated crash right after the write".into(),
                })
            }
            Some(n) => {
                *hook = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
    fn replay(&self, from_height: Height) -> Result<Vec<Vec<u8>>, StorageError> {
        self.db.replay(from_height)
    }
    fn prune_below(&self, height: Height) -> Result<(), StorageError> {
        self.db.prune_below(height)
    }
}

/// The simulated network as the node sees it: what the engine sends is queued here and put on the
/// runtime's links (through the strategy, if any) after each event.
#[derive(Default)]
struct SimNetwork {
    outbox: Mutex<Vec<(Option<PeerId>, Packet)>>,
}

impl Network for SimNetwork {
    fn send(&self, to: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).push((
            Some(*to),
            Packet {
                channel,
                bytes: message,
            },
        ));
        Ok(())
    }
    fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).push((
            None,
            Packet {
                channel,
                bytes: message,
            },
        ));
        Ok(())
    }
}

impl SimNetwork {
    fn take(&self) -> Vec<(Option<PeerId>, Packet)> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a state sync did, kept once the node runs its engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSyncReport {
    /// Counters of the sync.
    pub stats: StateSyncStats,
    /// The height the snapshot was imported at, or `None` if the node fell back to block sync.
    pub imported_at: Option<Height>,
    /// Nodes the sync penalised.
    pub penalised: Vec<NodeId>,
}

/// A state sync in progress: the machine, and the empty disk it imports into.
struct Bootstrap {
    sync: StateSync<Arc<MemoryEngine>>,
    disk: Arc<MemoryEngine>,
}

/// One simulated validator.
///
/// Bounds: pending timers (one entry per timer the engine armed, removed when it fires); the engine,
/// the pool and the store bound the rest.
pub struct SimNode {
    spec: Arc<NodeSpec>,
    bootstrap: Option<Bootstrap>,
    state_sync: Option<StateSyncReport>,
    strategy: Option<Box<dyn Strategy>>,
    node: Node,
    net: Arc<SimNetwork>,
    pool: Arc<TxPool<StoreView>>,
    clock: Arc<ManualClock>,
    durable: DurableState,
    crash_after: Arc<Mutex<Option<u32>>>,
    crashed: Arc<AtomicBool>,
    timers: BTreeMap<u64, TimerId>,
    next_token: u64,
    clock_ms: Millis,
    halted: bool,
    finalized_at: BTreeMap<Height, Millis>,
    submitted: u64,
    in_workload: bool,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("id", &self.spec.id)
            .field("behavior", &self.spec.behavior.name())
            .field("engine", self.node.engine())
            .finish_non_exhaustive()
    }
}

impl SimNode {
    /// A node that has finalized nothing and signed nothing.
    pub fn new(spec: Arc<NodeSpec>) -> Result<Self, SimError> {
        let durable = DurableState::new(&spec.genesis)?;
        Self::build(spec, durable)
    }

    /// A node restarted from what an earlier incarnation left on its disk: the store reopens and
    /// recovers, the engine resumes from it (registry from the stored blocks, core from the WAL).
    pub fn recover(spec: Arc<NodeSpec>, durable: DurableState) -> Result<Self, SimError> {
        let durable = durable.reopen(&spec.genesis)?;
        Self::build(spec, durable)
    }

    fn build(spec: Arc<NodeSpec>, durable: DurableState) -> Result<Self, SimError> {
        let genesis = (*spec.genesis).clone();
        let mut config = NodeConfig::new(&genesis);
        config.consensus = spec.consensus.clone();
        config.engine = spec.timing.engine_config();
        let clock = Arc::new(ManualClock::new());
        let chain: Arc<dyn ChainStore> = durable.db.clone();
        let pool = Arc::new(TxPool::with_clock(
            config.mempool.clone(),
            genesis.params.clone(),
            StoreView(chain.clone()),
            clock.clone(),
        ));
        let crash_after = Arc::new(Mutex::new(None));
        let crashed = Arc::new(AtomicBool::new(false));
        let wal = Arc::new(HookedWal {
            db: durable.db.clone(),
            appended: durable.appended.clone(),
            crash_after: crash_after.clone(),
            crashed: crashed.clone(),
        });
        let net = Arc::new(SimNetwork::default());
        let node = NodeBuilder::new(config, genesis)
            .store(chain, wal)
            .mempool(pool.clone())
            .network(net.clone())
            .signer(spec.key.clone())
            .build()
            .map_err(|e| SimError::Setup(format!("node {}: {e}", spec.id)))?;
        Ok(SimNode {
            strategy: spec.behavior.strategy(),
            bootstrap: None,
            state_sync: None,
            spec,
            node,
            net,
            pool,
            clock,
            durable,
            crash_after,
            crashed,
            timers: BTreeMap::new(),
            next_token: 0,
            clock_ms: 0,
            halted: false,
            finalized_at: BTreeMap::new(),
            submitted: 0,
            in_workload: false,
        })
    }

    /// A node with an empty disk that first state-syncs from its peers, then runs its engine on what the
    /// sync imported (or, falling back, on a chain opened from genesis).
    pub fn state_syncing(spec: Arc<NodeSpec>, config: StateSyncConfig) -> Result<Self, SimError> {
        let mut node = Self::new(spec.clone())?;
        let disk = Arc::new(MemoryEngine::new());
        let sync = StateSync::new(
            config,
            StorageConfig::memory(),
            (*spec.genesis).clone(),
            disk.clone(),
        )
        .map_err(|e| SimError::Setup(format!("state sync: {e}")))?;
        node.bootstrap = Some(Bootstrap { sync, disk });
        Ok(node)
    }

    /// What the node's state sync did, once it is over (`None` for a node that did not run one).
    pub fn state_sync(&self) -> Option<&StateSyncReport> {
        self.state_sync.as_ref()
    }

    /// Whether the node is still state-syncing (its engine not yet running).
    pub fn is_state_syncing(&self) -> bool {
        self.bootstrap.is_some()
    }

    /// Carries out a state sync's effects, and once it is over builds the engine on its outcome.
    fn bootstrap_effects(&mut self, effects: Vec<Effect>, ctx: &mut Context<Packet>) {
        for effect in effects {
            if let Effect::Send { to, channel, bytes } = effect
                && let Some(id) = self.spec.node_of(&to)
            {
                ctx.send(id, Packet { channel, bytes });
            }
        }
        let Some(bootstrap) = self.bootstrap.as_mut() else {
            return;
        };
        if !bootstrap.sync.is_done() {
            return;
        }
        let stats = bootstrap.sync.stats();
        let penalised = bootstrap
            .sync
            .banned()
            .iter()
            .filter_map(|p| self.spec.node_of(p))
            .collect();
        let disk = bootstrap.disk.clone();
        let outcome = bootstrap.sync.take_outcome();
        self.bootstrap = None;
        let (durable, imported_at) = match outcome {
            Some(StateSyncOutcome::Imported(db)) => {
                let at = db.tip().map(|t| t.height).ok();
                (Ok(DurableState::imported(disk, db)), at)
            }
            Some(StateSyncOutcome::Fallback(_)) => (
                DurableState::open(disk, &self.spec.genesis, 0, Arc::new(AtomicU64::new(0))),
                None,
            ),
            None => (
                Err(SimError::Setup("the state sync lost its store".into())),
                None,
            ),
        };
        let rebuilt = durable.and_then(|d| Self::build(self.spec.clone(), d));
        match rebuilt {
            Ok(mut node) => {
                node.state_sync = Some(StateSyncReport {
                    stats,
                    imported_at,
                    penalised,
                });
                node.finalized_at = std::mem::take(&mut self.finalized_at);
                *self = node;
                self.start_engine(ctx);
            }
            Err(e) => {
                warn!(node = self.spec.id, %e, "state sync ended without a usable store");
                self.halted = true;
                ctx.halt();
            }
        }
    }

    /// Introduces the peers to the engine and starts it.
    fn start_engine(&mut self, ctx: &mut Context<Packet>) {
        let me = self.spec.id;
        let peers: Vec<PeerId> = self
            .spec
            .peers
            .iter()
            .enumerate()
            .filter(|(id, _)| *id != me)
            .map(|(_, p)| *p)
            .collect();
        for peer in peers {
            self.run(
                Event::Net(NetEvent::Joined {
                    peer,
                    masternode: None,
                }),
                ctx,
            );
        }
        self.run(Event::Start, ctx);
        self.workload(ctx);
    }

    /// Test hook: crash right after the `nth` next WAL write (1 = the next one), before the message it
    /// records is sent.
    pub fn crash_after_persist(&mut self, nth: u32) {
        *self.crash_after.lock().unwrap_or_else(|p| p.into_inner()) = Some(nth.max(1));
    }

    /// The node's fixed description.
    pub fn spec(&self) -> &Arc<NodeSpec> {
        &self.spec
    }

    /// What survives a crash.
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// Height of the last finalized block.
    pub fn finalized_height(&self) -> Height {
        self.node.engine().finalized_height()
    }

    /// The engine.
    pub fn engine(&self) -> &timecoin_node::Engine {
        self.node.engine()
    }

    /// The consensus core.
    pub fn core(&self) -> &timecoin_consensus::Core {
        self.node.engine().core()
    }

    /// The mempool.
    pub fn pool(&self) -> &Arc<TxPool<StoreView>> {
        &self.pool
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.node.engine().stats()
    }

    /// Keys named by evidence this incarnation reported.
    pub fn offenders(&self) -> &[PublicKey] {
        self.node.engine().offenders()
    }

    /// Why the node cannot go on, if it cannot (a simulated crash is not a failure).
    pub fn failure(&self) -> Option<&str> {
        if self.crashed.load(Ordering::Relaxed) {
            return None;
        }
        self.node.engine().failure()
    }

    /// Whether the crash hook fired.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Simulated time at which this incarnation finalized each height.
    pub fn finalized_at(&self) -> &BTreeMap<Height, Millis> {
        &self.finalized_at
    }

    /// Transfers its wallet client submitted.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The strategy's name, or "honest".
    pub fn behavior(&self) -> &Behavior {
        &self.spec.behavior
    }

    /// Submits `tx` to this node's engine as a local client would, now.
    pub fn submit(&mut self, tx: timecoin_types::Transaction, ctx: &mut Context<Packet>) {
        self.submitted += 1;
        self.run(Event::Submit { request: 0, tx }, ctx);
    }

    fn talks_to(&self, peer: NodeId) -> bool {
        self.strategy.as_ref().is_none_or(|s| s.talks_to(peer))
    }

    /// Runs one event through the engine and carries out what it asks.
    fn run(&mut self, event: Event, ctx: &mut Context<Packet>) {
        self.run_batch(vec![event], ctx);
    }

    /// Runs events that arrive together (a wallet's transfers) through the engine in one batch.
    fn run_batch(&mut self, events: Vec<Event>, ctx: &mut Context<Packet>) {
        if self.halted {
            return;
        }
        let now = ctx.now();
        if now > self.clock_ms {
            self.clock
                .advance(std::time::Duration::from_millis(now - self.clock_ms));
            self.clock_ms = now;
        }
        let effects = self
            .node
            .handle_batch(self.spec.genesis.timestamp_ms.saturating_add(now), events);
        let mut finalized = false;
        for effect in effects {
            match effect {
                Effect::SetTimer { timer, after } => {
                    let token = self.next_token;
                    self.next_token += 1;
                    self.timers.insert(token, timer);
                    ctx.set_timer(u64::try_from(after.as_millis()).unwrap_or(u64::MAX), token);
                }
                Effect::Finalized { height, .. } => {
                    self.finalized_at.insert(height, now);
                    finalized = true;
                }
                Effect::Reply { .. } | Effect::Penalize { .. } => {}
                Effect::Send { .. } | Effect::Broadcast { .. } => {}
            }
        }
        self.flush(ctx);
        if self.crashed.load(Ordering::Relaxed) {
            self.halted = true;
            ctx.halt();
            return;
        }
        if finalized {
            if self.in_workload {
                // A lone validator finalizes within the workload's own submission: run the next round
                // from a timer, not by recursion.
                ctx.set_timer(0, WORKLOAD_TOKEN);
            } else {
                self.workload(ctx);
            }
        }
    }

    /// Puts what the engine sent on the wire, through the strategy.
    fn flush(&mut self, ctx: &mut Context<Packet>) {
        let sends = self.net.take();
        if self.crashed.load(Ordering::Relaxed) {
            // The process died at the WAL write: nothing queued after it leaves.
            return;
        }
        for (to, packet) in sends {
            let to = match to {
                Some(peer) => match self.spec.node_of(&peer) {
                    Some(id) => Some(id),
                    None => continue,
                },
                None => None,
            };
            let Some(strategy) = self.strategy.as_mut() else {
                match to {
                    Some(id) => ctx.send(id, packet),
                    None => ctx.broadcast(packet),
                }
                continue;
            };
            let mut out = outbox(&self.spec);
            match (packet.channel, to) {
                (Channel::Consensus, None) => match packet.message() {
                    Some(message) => strategy.on_broadcast(message, &mut out),
                    None => out.sends.push((None, packet)),
                },
                (Channel::Sync, Some(id)) => match SyncMessage::decode(&packet.bytes) {
                    Ok(SyncMessage::Block(certified)) => {
                        if strategy.serves_sync() {
                            let bytes = strategy
                                .forge_sync(&certified, &out)
                                .map(sync_block_bytes)
                                .unwrap_or_else(|| packet.bytes.clone());
                            out.sends.push((
                                Some(id),
                                Packet {
                                    channel: Channel::Sync,
                                    bytes,
                                },
                            ));
                        }
                    }
                    Ok(answer) if strategy.serves_sync() => {
                        let forged = strategy.forge_sync_answer(answer);
                        out.sends.push((
                            Some(id),
                            Packet {
                                channel: Channel::Sync,
                                bytes: forged.encode().into(),
                            },
                        ));
                    }
                    _ => out.sends.push((Some(id), packet)),
                },
                _ => out.sends.push((to, packet)),
            }
            let sends = out.sends;
            for (to, packet) in sends {
                match to {
                    Some(id) if self.talks_to(id) => ctx.send(id, packet),
                    Some(_) => {}
                    None => {
                        for id in (0..self.spec.nodes).filter(|p| *p != self.spec.id) {
                            if self.talks_to(id) {
                                ctx.send(id, packet.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The node's wallet client: up to `txs_per_block` transfers of wallet coins in outpoint order, each
    /// paying 1 TIME to the next wallet key, skipping coins the pool already has a spend of. Every
    /// honest node builds the same ones (signing is deterministic), so they arrive as duplicates, not
    /// conflicts.
    fn workload(&mut self, ctx: &mut Context<Packet>) {
        if self.spec.txs_per_block == 0 {
            return;
        }
        let Some(minimum) = PAYMENT
            .checked_add(FEE)
            .and_then(|a| a.checked_add(MIN_DUST))
        else {
            return;
        };
        let page = match self.durable.db.utxo_page(None, 0) {
            Ok(page) => page,
            Err(e) => {
                warn!(node = self.spec.id, %e, "workload cannot read the UTXO set");
                return;
            }
        };
        let chain = self.spec.genesis.params.chain_id;
        let mut txs = Vec::new();
        for (outpoint, out) in page.entries {
            if txs.len() >= self.spec.txs_per_block {
                break;
            }
            if out.amount < minimum || self.pool.lock_owner(&outpoint).is_some() {
                continue;
            }
            let (Some(key), Some(payee)) = (
                self.spec.wallet.owner(&out.address),
                self.spec.wallet.next_address(&out.address),
            ) else {
                continue;
            };
            let Some(change) = out
                .amount
                .checked_sub(PAYMENT)
                .and_then(|a| a.checked_sub(FEE))
            else {
                continue;
            };
            txs.push(
                TxBuilder::new(chain)
                    .input(outpoint, out.amount, key)
                    .output(payee, PAYMENT)
                    .output(out.address, change)
                    .sign(),
            );
        }
        self.submitted += txs.len() as u64;
        let events = txs
            .into_iter()
            .map(|tx| Event::Submit { request: 0, tx })
            .collect();
        self.in_workload = true;
        self.run_batch(events, ctx);
        self.in_workload = false;
    }
}

/// An empty outbox for a strategy of the node `spec` describes.
fn outbox(spec: &NodeSpec) -> Outbox<'_> {
    Outbox {
        me: spec.id,
        nodes: spec.nodes,
        key: &spec.key,
        chain: spec.consensus.chain_id,
        sends: Vec::new(),
    }
}

/// The sync-channel encoding of a block message whose certified-block bytes are `certified` (a
/// forgery's, which no honest encoder produces): postcard writes the variant index (`Block` is the
/// third, 2) and then the payload; a test pins this against the real encoder.
pub(crate) fn sync_block_bytes(certified: Vec<u8>) -> Bytes {
    let mut bytes = Vec::with_capacity(certified.len() + 1);
    bytes.push(2);
    bytes.extend_from_slice(&certified);
    bytes.into()
}

impl Process for SimNode {
    type Msg = Packet;

    fn on_start(&mut self, ctx: &mut Context<Packet>) {
        if let Some(bootstrap) = self.bootstrap.as_mut() {
            let me = self.spec.id;
            let now = ctx.now();
            let mut effects = Vec::new();
            for (_, peer) in self
                .spec
                .peers
                .iter()
                .enumerate()
                .filter(|(id, _)| *id != me)
            {
                effects.extend(bootstrap.sync.on_net(
                    now,
                    NetEvent::Joined {
                        peer: *peer,
                        masternode: None,
                    },
                ));
            }
            ctx.set_timer(STATESYNC_TICK_MS, STATESYNC_TOKEN);
            self.bootstrap_effects(effects, ctx);
            return;
        }
        self.start_engine(ctx);
    }

    fn on_message(&mut self, from: NodeId, packet: Packet, ctx: &mut Context<Packet>) {
        if self.halted || !self.talks_to(from) {
            return;
        }
        if let Some(bootstrap) = self.bootstrap.as_mut() {
            let Some(peer) = self.spec.peers.get(from).copied() else {
                return;
            };
            let effects = bootstrap.sync.on_net(
                ctx.now(),
                NetEvent::Message {
                    from: peer,
                    channel: packet.channel,
                    bytes: packet.bytes,
                },
            );
            self.bootstrap_effects(effects, ctx);
            return;
        }
        if let Some(strategy) = self.strategy.as_mut()
            && let Some(message) = packet.message()
        {
            let mut out = outbox(&self.spec);
            strategy.on_receive(from, &message, &mut out);
            for (to, packet) in out.sends {
                match to {
                    Some(id) => ctx.send(id, packet),
                    None => ctx.broadcast(packet),
                }
            }
        }
        let Some(peer) = self.spec.peers.get(from).copied() else {
            return;
        };
        self.run(
            Event::Net(NetEvent::Message {
                from: peer,
                channel: packet.channel,
                bytes: packet.bytes,
            }),
            ctx,
        );
    }

    fn on_timer(&mut self, token: u64, ctx: &mut Context<Packet>) {
        if token == WORKLOAD_TOKEN {
            self.workload(ctx);
            return;
        }
        if token == STATESYNC_TOKEN {
            if let Some(bootstrap) = self.bootstrap.as_mut() {
                let effects = bootstrap.sync.on_tick(ctx.now());
                ctx.set_timer(STATESYNC_TICK_MS, STATESYNC_TOKEN);
                self.bootstrap_effects(effects, ctx);
            }
            return;
        }
        if let Some(timer) = self.timers.remove(&token) {
            self.run(Event::Timer(timer), ctx);
        }
    }

    fn trace_bytes(packet: &Packet) -> Vec<u8> {
        [&[packet.channel.tag()][..], &packet.bytes].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_consensus::CertifiedBlock;

    #[test]
    fn forged_sync_bytes_have_the_real_layout() {
        let genesis = Genesis::local(1);
        let certified = CertifiedBlock {
            block: genesis.block(),
            certificate: CommitCertificate {
                height: 0,
                view: 0,
                block_hash: genesis.block().hash(),
                signatures: Vec::new(),
            },
        };
        let real = SyncMessage::Block(certified.clone()).encode();
        assert_eq!(&sync_block_bytes(certified.encode())[..], &real[..]);
    }
}
