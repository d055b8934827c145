//! The driver scenarios use: builds a network of [`SimNode`]s from a [`SimConfig`], runs it with the
//! invariant checker after every event, restarts crashed nodes from their durable state, and checks
//! liveness against a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use timecoin_consensus::{Config, ValidatorSet};
use timecoin_crypto::{PublicKey, SecretKey};
use timecoin_types::{Genesis, Height, View};

use crate::SimError;
use crate::byzantine::Behavior;
use crate::checker::InvariantChecker;
use crate::node::{HostTiming, NodeSpec, SimNode, Wallet};
use crate::runtime::{Millis, NetStats, NetworkConfig, NodeId, Runtime};

/// Once the network is healed and less than a third of the weight is faulty, every honest running node
/// finalizes a new block within this much simulated time, with [`SimConfig::fast_consensus`] timeouts.
///
/// Why this is enough: with those timeouts a failed view costs at most propose + prepare + commit, each
/// capped at [`FAST_MAX_TIMEOUT`] (4 s), so 12 s; nodes that drifted apart in views during a partition
/// meet in the highest view within a message delay (the skip rule); a lagging node syncs a finished height
/// from a peer within one [`HostTiming::sync_interval_ms`] (1 s). Four consecutive failed views (faulty or
/// unlucky leaders) plus a good one fit in 60 s. The scenarios print the worst time they saw (under 2 s
/// over 1,000 seeds; see `docs/SIMULATOR.md`). This bound assumes the consensus findings listed there do
/// not occur: they stall a height for good.
pub const LIVENESS_BOUND_MS: Millis = 60_000;

/// Cap on any grown consensus timeout in [`SimConfig::fast_consensus`].
pub const FAST_MAX_TIMEOUT: Duration = Duration::from_secs(4);

/// Everything a simulation is made of.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network's randomness; with everything else equal, equal seeds give equal runs.
    pub seed: u64,
    /// The chain; its validators must be local ones ([`Genesis::local_validator_key`]), in order.
    pub genesis: Genesis,
    /// Consensus settings of every node.
    pub consensus: Config,
    /// Latency, jitter, loss, duplication.
    pub network: NetworkConfig,
    /// Host timings (sync, clock ticks).
    pub timing: HostTiming,
    /// Transfers per block.
    pub txs_per_block: usize,
    /// Behaviour of validators by index; absent means honest.
    pub behaviors: BTreeMap<usize, Behavior>,
    /// Validators that run as twins: a second node with the same key is added for each, and each twin
    /// talks only to one half of the honest nodes.
    pub twins: BTreeSet<usize>,
    /// Restart a node that halted itself (the crash-after-persist hook) this long after; `None` leaves it
    /// down until [`Simulation::restart`].
    pub auto_restart_ms: Option<Millis>,
    /// Honest nodes beyond the genesis validators, added after the twins, each with its own key
    /// ([`Genesis::local_validator_key`] of `n`, `n + 1`, …): not validators unless the chain registers
    /// them.
    pub extra_nodes: usize,
}

impl SimConfig {
    /// `validators` honest Bronze validators of [`Genesis::local`], fast timeouts, 5–25 ms latency, two
    /// transfers per block.
    pub fn new(seed: u64, validators: usize) -> Self {
        let genesis = Genesis::local(validators);
        let consensus = Self::fast_consensus(&genesis);
        SimConfig {
            seed,
            genesis,
            consensus,
            network: NetworkConfig::default(),
            timing: HostTiming::default(),
            txs_per_block: 2,
            behaviors: BTreeMap::new(),
            twins: BTreeSet::new(),
            auto_restart_ms: Some(500),
            extra_nodes: 0,
        }
    }

    /// Consensus timeouts scaled to a simulated LAN: propose 1 s, prepare and commit 500 ms, +50 % per
    /// failed view up to [`FAST_MAX_TIMEOUT`], retransmit every second.
    pub fn fast_consensus(genesis: &Genesis) -> Config {
        let mut config = Config::new(genesis.params.chain_id);
        config.propose_timeout = Duration::from_millis(1_000);
        config.prepare_timeout = Duration::from_millis(500);
        config.commit_timeout = Duration::from_millis(500);
        config.max_timeout = FAST_MAX_TIMEOUT;
        config.retransmit_interval = Duration::from_millis(1_000);
        config
    }

    /// Sets validator `index`'s behaviour.
    pub fn with_behavior(mut self, index: usize, behavior: Behavior) -> Self {
        self.behaviors.insert(index, behavior);
        self
    }

    /// Makes validator `index` run as twins.
    pub fn with_twin(mut self, index: usize) -> Self {
        self.twins.insert(index);
        self
    }
}

/// A running simulation.
pub struct Simulation {
    seed: u64,
    rt: Runtime<SimNode>,
    specs: Vec<Arc<NodeSpec>>,
    checker: InvariantChecker,
    validators: Arc<ValidatorSet>,
    validator_keys: Vec<PublicKey>,
    auto_restart_ms: Option<Millis>,
    /// Nodes to restart, with when. At most one entry per node.
    pending_restarts: BTreeMap<NodeId, Millis>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.report())
    }
}

impl Simulation {
    /// Builds the nodes and starts them at time 0.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        Self::new_with(config, |_| {})
    }

    /// Builds the nodes, lets `setup` prepare the network (e.g. [`Runtime::set_drop_filter`],
    /// [`Runtime::block_link`]) before anything is sent, then starts them at time 0.
    pub fn new_with(
        config: SimConfig,
        setup: impl FnOnce(&mut Runtime<SimNode>),
    ) -> Result<Self, SimError> {
        let n = config.genesis.validators.len();
        if n == 0 {
            return Err(SimError::Setup("no validators".into()));
        }
        let validators = Arc::new(
            ValidatorSet::from_genesis(&config.genesis)
                .map_err(|e| SimError::Setup(e.to_string()))?,
        );
        let keys: Vec<Arc<SecretKey>> = (0..n + config.extra_nodes)
            .map(|i| Arc::new(Genesis::local_validator_key(i)))
            .collect();
        for (key, v) in keys.iter().zip(&config.genesis.validators) {
            if key.public_key() != v.operator_key {
                return Err(SimError::Setup(
                    "genesis validators must be the local keys, in order".into(),
                ));
            }
        }
        if let Some(bad) = config.twins.iter().find(|i| **i >= n) {
            return Err(SimError::Setup(format!("twin of unknown validator {bad}")));
        }
        // Node ids: validators first, then one extra node per twin.
        let mut node_validator: Vec<usize> = (0..n).collect();
        node_validator.extend(config.twins.iter().copied());
        let twin_end = node_validator.len();
        node_validator.extend(n..n + config.extra_nodes);
        let nodes = node_validator.len();
        let mut behaviors: Vec<Behavior> = (0..nodes)
            .map(|id| {
                config
                    .behaviors
                    .get(&id)
                    .filter(|_| id < n)
                    .cloned()
                    .unwrap_or(Behavior::Honest)
            })
            .collect();
        if !config.twins.is_empty() {
            let honest: Vec<NodeId> = (0..n)
                .filter(|i| {
                    !config.twins.contains(i) && behaviors.get(*i).is_some_and(Behavior::is_honest)
                })
                .collect();
            let (side_a, side_b) = honest.split_at(honest.len() / 2);
            let others: Vec<NodeId> = (0..n)
                .filter(|i| !config.twins.contains(i) && !honest.contains(i))
                .collect();
            let originals: Vec<NodeId> = config.twins.iter().copied().collect();
            let copies: Vec<NodeId> = (n..twin_end).collect();
            let world_a: BTreeSet<NodeId> = side_a
                .iter()
                .chain(&others)
                .chain(&originals)
                .copied()
                .collect();
            let world_b: BTreeSet<NodeId> = side_b
                .iter()
                .chain(&others)
                .chain(&copies)
                .copied()
                .collect();
            for id in originals {
                if let Some(b) = behaviors.get_mut(id) {
                    *b = Behavior::Twin(world_a.clone());
                }
            }
            for id in copies {
                if let Some(b) = behaviors.get_mut(id) {
                    *b = Behavior::Twin(world_b.clone());
                }
            }
        }
        let genesis = Arc::new(config.genesis.clone());
        let wallet = Arc::new(Wallet::local(n));
        let peers = Arc::new((0..nodes).map(NodeSpec::peer_id).collect::<Vec<_>>());
        let mut specs = Vec::with_capacity(nodes);
        for (id, validator) in node_validator.iter().enumerate() {
            let key = keys
                .get(*validator)
                .cloned()
                .ok_or(SimError::UnknownNode(id))?;
            specs.push(Arc::new(NodeSpec {
                id,
                nodes,
                key,
                peers: peers.clone(),
                genesis: genesis.clone(),
                consensus: config.consensus.clone(),
                wallet: wallet.clone(),
                txs_per_block: config.txs_per_block,
                timing: config.timing.clone(),
                behavior: behaviors.get(id).cloned().unwrap_or(Behavior::Honest),
            }));
        }
        let honest: Vec<bool> = specs.iter().map(|s| s.behavior.is_honest()).collect();
        let honest_keys: BTreeSet<PublicKey> = specs
            .iter()
            .filter(|s| s.behavior.is_honest())
            .map(|s| s.key.public_key())
            .collect();
        let checker = InvariantChecker::new(&config.genesis, honest, honest_keys)?;
        let sim_nodes = specs
            .iter()
            .map(|s| SimNode::new(s.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rt = Runtime::new_paused(config.seed, sim_nodes, config.network.clone());
        setup(&mut rt);
        rt.start_all();
        Ok(Simulation {
            seed: config.seed,
            rt,
            specs,
            checker,
            validators,
            validator_keys: keys.iter().map(|k| k.public_key()).collect(),
            auto_restart_ms: config.auto_restart_ms,
            pending_restarts: BTreeMap::new(),
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time now.
    pub fn now(&self) -> Millis {
        self.rt.now()
    }

    /// The runtime (network controls, trace digest, nodes).
    pub fn runtime(&self) -> &Runtime<SimNode> {
        &self.rt
    }

    /// Mutable runtime, for network controls not wrapped here (e.g. [`Runtime::block_link`]).
    pub fn runtime_mut(&mut self) -> &mut Runtime<SimNode> {
        &mut self.rt
    }

    /// Node `id`.
    pub fn node(&self, id: NodeId) -> Option<&SimNode> {
        self.rt.nodes().get(id)
    }

    /// Number of nodes (validators plus twins).
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the simulation has no nodes (never, once built).
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Ids of honest nodes.
    pub fn honest_nodes(&self) -> Vec<NodeId> {
        (0..self.len())
            .filter(|i| self.checker.is_honest(*i))
            .collect()
    }

    /// Finalized height of every node, by id.
    pub fn heights(&self) -> Vec<Height> {
        self.rt
            .nodes()
            .iter()
            .map(SimNode::finalized_height)
            .collect()
    }

    /// Lowest finalized height among honest nodes.
    pub fn min_honest_height(&self) -> Height {
        self.honest_nodes()
            .iter()
            .filter_map(|i| self.node(*i).map(SimNode::finalized_height))
            .min()
            .unwrap_or(0)
    }

    /// Highest height any honest node finalized.
    pub fn agreed_height(&self) -> Height {
        self.checker.agreed_height()
    }

    /// The validator index leading `(height, view)` (with the genesis set).
    pub fn leader(&self, height: Height, view: View) -> usize {
        let key = self.validators.leader(height, view);
        self.validator_keys
            .iter()
            .position(|k| k == key)
            .unwrap_or(0)
    }

    /// The validator set of genesis.
    pub fn validators(&self) -> &Arc<ValidatorSet> {
        &self.validators
    }

    /// Trace digest so far.
    pub fn trace_digest(&self) -> [u8; 32] {
        self.rt.trace_digest()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.rt.events()
    }

    /// Network counters.
    pub fn net_stats(&self) -> NetStats {
        self.rt.stats()
    }

    /// Replaces the network settings (loss, latency) from now on.
    pub fn set_network(&mut self, network: NetworkConfig) {
        self.rt.network = network;
    }

    /// Splits the network into groups (nodes in no group are isolated).
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.rt
            .partition(groups.iter().map(|g| g.iter().copied().collect()).collect());
    }

    /// Reconnects everyone.
    pub fn heal(&mut self) {
        self.rt.heal();
    }

    /// Crashes node `id` now (no effect if it is down).
    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        if id >= self.len() {
            return Err(SimError::UnknownNode(id));
        }
        if self.rt.is_up(id) {
            self.rt.crash(id);
        }
        self.pending_restarts.remove(&id);
        Ok(())
    }

    /// Restarts a crashed node from its durable state now (no effect if it is up).
    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        let spec = self.specs.get(id).ok_or(SimError::UnknownNode(id))?.clone();
        self.pending_restarts.remove(&id);
        if self.rt.is_up(id) {
            return Ok(());
        }
        let durable = self
            .rt
            .nodes()
            .get(id)
            .map(|n| n.durable().clone())
            .ok_or(SimError::UnknownNode(id))?;
        let node = SimNode::recover(spec, durable).map_err(|e| SimError::Violation {
            at_ms: self.rt.now(),
            violation: Box::new(crate::Violation::NodeFailed {
                node: id,
                reason: e.to_string(),
            }),
        })?;
        self.rt.restart(id, node);
        self.check()
    }

    /// Restarts crashed node `id` with an empty disk: it state-syncs from its peers with `config`, then
    /// runs its engine on what it imported (a node joining with nothing, or wiped).
    pub fn restart_with_state_sync(
        &mut self,
        id: NodeId,
        config: timecoin_node::statesync::StateSyncConfig,
    ) -> Result<(), SimError> {
        let spec = self.specs.get(id).ok_or(SimError::UnknownNode(id))?.clone();
        self.pending_restarts.remove(&id);
        if self.rt.is_up(id) {
            return Ok(());
        }
        let node = SimNode::state_syncing(spec, config).map_err(|e| SimError::Violation {
            at_ms: self.rt.now(),
            violation: Box::new(crate::Violation::NodeFailed {
                node: id,
                reason: e.to_string(),
            }),
        })?;
        self.rt.restart(id, node);
        self.check()
    }

    /// Hands `tx` to node `id`'s engine now, as a wallet connected to it would (no effect if it is down).
    pub fn submit(&mut self, id: NodeId, tx: timecoin_types::Transaction) -> Result<(), SimError> {
        if id >= self.len() {
            return Err(SimError::UnknownNode(id));
        }
        self.rt.poke(id, |node, ctx| node.submit(tx, ctx));
        self.check()
    }

    /// Arms node `id`'s crash hook: it dies right after its `nth` next WAL write, before sending what it
    /// wrote; with [`SimConfig::auto_restart_ms`] it comes back that long after.
    pub fn crash_after_persist(&mut self, id: NodeId, nth: u32) -> Result<(), SimError> {
        self.rt
            .node_mut(id)
            .ok_or(SimError::UnknownNode(id))?
            .crash_after_persist(nth);
        Ok(())
    }

    fn check(&mut self) -> Result<(), SimError> {
        self.checker
            .check(&self.rt)
            .map_err(|violation| SimError::Violation {
                at_ms: self.rt.now(),
                violation: Box::new(violation),
            })
    }

    /// Runs every event up to simulated time `until`, checking the invariants after each.
    pub fn run_until(&mut self, until: Millis) -> Result<(), SimError> {
        self.run_while(until, |_| false).map(|_| ())
    }

    /// Runs for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Millis) -> Result<(), SimError> {
        self.run_until(self.now().saturating_add(duration))
    }

    /// Runs until `done` holds (checked after every event) or `until`; returns whether it held.
    pub fn run_while(
        &mut self,
        until: Millis,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, SimError> {
        loop {
            if done(self) {
                return Ok(true);
            }
            let next_event = self.rt.next_event_at();
            let next_restart = self
                .pending_restarts
                .iter()
                .min_by_key(|(id, at)| (**at, **id))
                .map(|(id, at)| (*id, *at));
            match (next_event, next_restart) {
                (_, Some((id, at))) if at <= until && next_event.is_none_or(|e| at <= e) => {
                    self.rt.advance_to(at);
                    self.restart(id)?;
                }
                (Some(at), _) if at <= until => {
                    self.rt.step();
                    self.check()?;
                    for id in self.rt.take_halted() {
                        if let Some(delay) = self.auto_restart_ms {
                            self.pending_restarts
                                .insert(id, self.rt.now().saturating_add(delay));
                        }
                    }
                }
                _ => break,
            }
        }
        self.rt.advance_to(until);
        Ok(done(self))
    }

    /// Runs until every honest node that is up has finalized `height`; fails with
    /// [`SimError::Stalled`] at `deadline`. Returns the time it took.
    pub fn run_until_height(
        &mut self,
        height: Height,
        deadline: Millis,
    ) -> Result<Millis, SimError> {
        let start = self.now();
        let honest = self.honest_nodes();
        let reached = self.run_while(deadline, |sim| {
            honest.iter().all(|i| {
                !sim.rt.is_up(*i) || sim.node(*i).is_some_and(|n| n.finalized_height() >= height)
            })
        })?;
        if reached {
            return Ok(self.now() - start);
        }
        Err(self.stalled(&honest, |_| height, deadline))
    }

    /// Liveness after a heal: every honest node that is up finalizes a block above its current height
    /// within `bound` of simulated time (a node that crashes meanwhile is excused). Returns the time it
    /// took.
    pub fn await_progress(&mut self, bound: Millis) -> Result<Millis, SimError> {
        let start = self.now();
        let deadline = start.saturating_add(bound);
        let honest: Vec<(NodeId, Height)> = self
            .honest_nodes()
            .into_iter()
            .filter(|i| self.rt.is_up(*i))
            .filter_map(|i| self.node(i).map(|n| (i, n.finalized_height() + 1)))
            .collect();
        let reached = self.run_while(deadline, |sim| {
            honest.iter().all(|(i, needed)| {
                !sim.rt.is_up(*i)
                    || sim
                        .node(*i)
                        .is_some_and(|n| n.finalized_height() >= *needed)
            })
        })?;
        if reached {
            return Ok(self.now() - start);
        }
        let ids: Vec<NodeId> = honest.iter().map(|(i, _)| *i).collect();
        let needed: BTreeMap<NodeId, Height> = honest.into_iter().collect();
        Err(self.stalled(&ids, |i| needed.get(&i).copied().unwrap_or(0), deadline))
    }

    fn stalled(
        &self,
        nodes: &[NodeId],
        needed: impl Fn(NodeId) -> Height,
        deadline: Millis,
    ) -> SimError {
        let (node, height, needed) = nodes
            .iter()
            .filter(|i| self.rt.is_up(**i))
            .filter_map(|i| {
                self.node(*i)
                    .map(|n| (*i, n.finalized_height(), needed(*i)))
            })
            .find(|(_, h, need)| h < need)
            .unwrap_or((0, 0, 0));
        SimError::Stalled {
            node,
            height,
            needed,
            deadline_ms: deadline,
        }
    }

    /// One line per node (behaviour, up or down, finalized height, round state, counters), for failure
    /// reports.
    pub fn report(&self) -> String {
        let mut out = format!(
            "seed {} at {} ms, {} events, net {:?}\n",
            self.seed,
            self.now(),
            self.events(),
            self.net_stats()
        );
        for (id, node) in self.rt.nodes().iter().enumerate() {
            let _ = writeln!(
                out,
                "  node {id} ({}, {}): finalized {}, round {:?}, {:?}",
                node.behavior().name(),
                if self.rt.is_up(id) { "up" } else { "down" },
                node.finalized_height(),
                node.core()
                    .round_state()
                    .map(|r| (r.height, r.view, r.step)),
                node.stats(),
            );
        }
        out
    }
}
