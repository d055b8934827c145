//! The host state machine: events in, effects out, with the consensus core, the application, the door
//! and the sync policy inside.
//!
//! The engine is synchronous and owns no thread, socket or clock. It calls the store and the mempool
//! directly (they are traits, so the simulator plugs in memory versions), because what it must do with
//! them is ordered by consensus: a WAL entry must be durable before the vote it records is sent, and a
//! block before it is reported final. Running those through effects would make every host re-implement
//! that ordering. The daemon runs the engine on a thread of its own, so its blocking calls never stall
//! an async worker; see `docs/ARCHITECTURE.md`.

mod app;
mod door;
pub(crate) mod rewards;
mod sync;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use timecoin_consensus::{
    Core, Input, Message, Output, Signer, Timeout, ValidatorRegistry, ValidatorSet, WalEntry,
};
use timecoin_crypto::{ChainId, PublicKey, SigDomain, Signature};
use timecoin_mempool::{Mempool, MempoolError};
use timecoin_net::{Channel, Misbehavior, NetEvent, PeerId};
use timecoin_storage::{ChainStore, ConsensusStateStore, HostRecord};
use timecoin_types::TypesError;
use timecoin_types::{
    BlockHash, ChainParams, CommitCertificate, Genesis, Height, Transaction, TxId, WellFormedBlock,
    Wire,
};
use tracing::{debug, info, warn};

use crate::{EngineConfig, NodeError};

pub use door::Door;
pub use rewards::utxo_total;
pub use sync::SyncStatus;

/// Identifies a local request, so its answer can be routed back (an RPC call, a test).
pub type RequestId = u64;

/// A timer the engine asked for. The host fires it back as [`Event::Timer`] after the delay; a timer
/// that is no longer wanted is ignored when it fires, so the host never needs to cancel one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerId {
    /// A consensus timeout (the token maps to the core's [`Timeout`]).
    Consensus(u64),
    /// The sync round: ask a peer for blocks, retry a timed-out request.
    Sync,
    /// Give the core the clock.
    Tick,
    /// Re-broadcast this node's messages of a stuck height.
    Resend,
    /// Start the next height with an empty block if nothing arrived meanwhile.
    Heartbeat,
}

/// What happens to the engine.
#[derive(Clone, Debug)]
pub enum Event {
    /// The host is running: set the periodic timers and start the height after the stored tip. Send it
    /// once, first.
    Start,
    /// Something from the network.
    Net(NetEvent),
    /// A transaction submitted locally (RPC, wallet); answered with [`Effect::Reply`].
    Submit {
        /// Routes the answer.
        request: RequestId,
        /// The transaction.
        tx: Transaction,
    },
    /// A timer fired.
    Timer(TimerId),
}

/// What the engine asks its host to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send to one peer.
    Send {
        /// The peer.
        to: PeerId,
        /// The channel.
        channel: Channel,
        /// The encoded message.
        bytes: Bytes,
    },
    /// Send to every connected peer.
    Broadcast {
        /// The channel.
        channel: Channel,
        /// The encoded message.
        bytes: Bytes,
    },
    /// Fire [`Event::Timer`] after `after`.
    SetTimer {
        /// Which timer.
        timer: TimerId,
        /// How long from now.
        after: Duration,
    },
    /// The answer to an [`Event::Submit`].
    Reply {
        /// The request.
        request: RequestId,
        /// The pooled transaction's id, or why it was refused.
        result: Result<TxId, String>,
    },
    /// A peer sent something it should not have; the network turns this into a score.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// What it did.
        misbehavior: Misbehavior,
    },
    /// A block is final and durable (for `waitfortx`, metrics, logs).
    Finalized {
        /// Its height.
        height: Height,
        /// Its hash.
        hash: BlockHash,
        /// Transactions it holds.
        transactions: usize,
    },
}

/// Counters of what the engine did, for metrics and assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Consensus messages received.
    pub received: u64,
    /// Messages that did not decode (any channel).
    pub malformed: u64,
    /// Consensus messages refused by signature or membership checks, before the core saw them.
    pub rejected_signature: u64,
    /// Consensus messages whose verdict came from the seen-cache.
    pub duplicates: u64,
    /// Synced blocks refused (bad certificate, wrong parent).
    pub rejected_sync: u64,
    /// Heights decided from a synced certificate.
    pub synced: u64,
    /// Sync requests sent.
    pub sync_requests: u64,
    /// Sync requests that timed out and were retried elsewhere.
    pub sync_timeouts: u64,
    /// Certified headers served to peers walking the chain (state sync).
    pub served_headers: u64,
    /// UTXO pages served to peers importing a snapshot.
    pub served_pages: u64,
    /// State-sync answers received, which a running engine never asks for (ignored).
    pub unsolicited_sync: u64,
    /// WAL entries written.
    pub persists: u64,
    /// Evidence items the core reported.
    pub evidence: u64,
    /// Transactions received (gossip and local).
    pub txs_received: u64,
    /// Transactions the mempool admitted.
    pub txs_admitted: u64,
    /// Gossiped transactions held back because an input was not final here yet, and admitted once it
    /// was.
    pub orphans_admitted: u64,
    /// Blocks this node built as leader.
    pub proposed: u64,
    /// Blocks finalized.
    pub finalized: u64,
    /// Penalties reported.
    pub penalties: u64,
    /// Stored blocks replayed at startup to rebuild the registry and the reward pool: 0 when the store
    /// holds the records the engine writes with every block, the tip height for an older store.
    pub replayed_blocks: u64,
    /// Block bodies deleted by pruning ([`EngineConfig::prune_keep_blocks`]).
    pub pruned_bodies: u64,
    /// Their bytes.
    pub pruned_bytes: u64,
}

/// What a host asks about a running engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The finalized tip's height.
    pub height: Height,
    /// The finalized tip's hash.
    pub tip: BlockHash,
    /// The height being decided, if consensus runs.
    pub deciding: Option<Height>,
    /// Whether peers report heights above ours (catching up).
    pub sync: SyncStatus,
    /// Peers known.
    pub peers: usize,
    /// Transactions pooled.
    pub mempool: usize,
    /// Whether this node's key is in the validator set of the height being decided.
    pub validator: bool,
}

/// The signer the core is given: shared, so a host can keep a handle (a remote signer, twins in a test).
pub(crate) struct SharedSigner(pub(crate) Arc<dyn Signer>);

impl Signer for SharedSigner {
    fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }
    fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature {
        self.0.sign(domain, chain, message)
    }
}

/// The parts an engine is made of; [`crate::NodeBuilder`] fills them in.
pub struct Parts {
    /// Settings.
    pub config: EngineConfig,
    /// Consensus settings.
    pub consensus: timecoin_consensus::Config,
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// Finalized blocks and the UTXO set.
    pub store: Arc<dyn ChainStore>,
    /// The consensus write-ahead log.
    pub wal: Arc<dyn ConsensusStateStore>,
    /// Pending transactions, validated against `store`.
    pub mempool: Arc<dyn Mempool>,
    /// Signs this node's consensus messages.
    pub signer: Arc<dyn Signer>,
}

/// The node's host state machine. See the module docs.
///
/// Bounds: pending consensus timers (a handful per view; those of finished heights are dropped when a
/// height starts), the input queue (what one event leads to), the seen-cache
/// ([`EngineConfig::seen_cache`]), the digests of this height's persisted messages (three per view the
/// node signed in), the sync state ([`EngineConfig::sync_window`] blocks, [`EngineConfig::max_peers`]
/// peers) and [`EngineConfig::max_offenders`] offenders. The core, the mempool and the store bound their
/// own memory.
pub struct Engine {
    config: EngineConfig,
    params: ChainParams,
    /// Fees and subsidies accrued since the last reward payout, as of the tip.
    pool: timecoin_types::Amount,
    genesis_total: timecoin_types::Amount,
    core: Core,
    me: PublicKey,
    store: Arc<dyn ChainStore>,
    wal: Arc<dyn ConsensusStateStore>,
    mempool: Arc<dyn Mempool>,
    registry: ValidatorRegistry,
    door: Door,
    sync: sync::SyncState,
    /// The last finalized block's height, hash and timestamp.
    tip: (Height, BlockHash, u64),
    now_ms: u64,
    inputs: VecDeque<Input>,
    effects: Vec<Effect>,
    timers: BTreeMap<u64, Timeout>,
    next_token: u64,
    /// The height waiting to start (nothing to propose yet), with when the previous one was finalized.
    pending_start: Option<(Height, u64)>,
    /// Digests of the messages persisted at the current height: the core must persist what it broadcasts,
    /// and the engine refuses to send anything else.
    persisted: BTreeSet<[u8; 32]>,
    resend_height: Option<Height>,
    feeding: bool,
    admitted_in_batch: bool,
    /// Gossiped transactions refused only because an input is not in the finalized set here yet: the
    /// block that creates it is final elsewhere but not applied here. The network delivers a
    /// transaction to the engine once, so without this a leader that was one block behind when the
    /// gossip arrived would never propose it. Retried after each finalized block, for
    /// [`ORPHAN_HEIGHTS`] blocks; at most [`MAX_ORPHANS`]. Kept as the bytes that were gossiped (and
    /// are relayed on admission), decoded again at each retry.
    orphans: std::collections::VecDeque<(Height, Bytes)>,
    offenders: Vec<PublicKey>,
    failure: Option<String>,
    stats: EngineStats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.me)
            .field("tip", &self.tip.0)
            .field("core", &self.core)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `parts`, resumed from what the stores hold: the tip from the chain store, the
    /// validator registry by replaying the stored blocks, the core from the WAL.
    pub fn new(parts: Parts) -> Result<Self, NodeError> {
        let Parts {
            config,
            consensus,
            genesis,
            store,
            wal,
            mempool,
            signer,
        } = parts;
        config.validate()?;
        if consensus.chain_id != genesis.params.chain_id {
            return Err(NodeError::Config(format!(
                "consensus chain id {} is not the genesis's {}",
                consensus.chain_id.0, genesis.params.chain_id.0
            )));
        }
        let tip = store.tip()?;
        let genesis_total = rewards::genesis_total(&genesis)?;
        let mut stats = EngineStats::default();
        let (registry, pool) = match resume_from_records(&*store, &genesis, tip.height)? {
            Some(resumed) => resumed,
            None => {
                stats.replayed_blocks = tip.height;
                replay_chain(&*store, &genesis, genesis_total, tip.height)?
            }
        };
        let tip_time = match tip.height {
            0 => genesis.timestamp_ms,
            h => {
                store
                    .header(h)?
                    .ok_or_else(|| NodeError::Config(format!("the store lacks its tip block {h}")))?
                    .header
                    .timestamp_ms
            }
        };
        let entries = wal.replay(tip.height.saturating_add(1))?;
        let mut restored = Vec::with_capacity(entries.len());
        for bytes in &entries {
            match WalEntry::decode(bytes) {
                Ok(entry) => restored.push(entry),
                // A torn last write is the only way an entry fails to decode; the vote it recorded was
                // never sent, so dropping it is safe.
                Err(e) => warn!(%e, "skipping a WAL entry that does not decode"),
            }
        }
        let persisted = restored
            .iter()
            .map(|e| digest(&e.clone().into_message()))
            .collect();
        let me = signer.public_key();
        let core = Core::restore(consensus, SharedSigner(signer), restored)?;
        let door = Door::new(config.seen_cache);
        let sync = sync::SyncState::new(&config);
        Ok(Engine {
            params: genesis.params.clone(),
            pool,
            genesis_total,
            config,
            core,
            me,
            store,
            wal,
            mempool,
            registry,
            door,
            sync,
            tip: (tip.height, tip.hash, tip_time),
            now_ms: 0,
            inputs: VecDeque::new(),
            effects: Vec::new(),
            timers: BTreeMap::new(),
            next_token: 0,
            pending_start: None,
            persisted,
            resend_height: None,
            feeding: false,
            admitted_in_batch: false,
            orphans: std::collections::VecDeque::new(),
            offenders: Vec::new(),
            failure: None,
            stats,
        })
    }

    /// Handles one event at `now_ms` (milliseconds on the host's clock, for the daemon the Unix epoch's;
    /// a value below an earlier one is taken as the earlier one) and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Effect> {
        self.handle_batch(now_ms, vec![event])
    }

    /// Handles several events that arrived together. Consensus messages among them have their
    /// signatures checked in one batch on the rayon pool before any is acted on; otherwise the same as
    /// handling them one by one, in order.
    pub fn handle_batch(&mut self, now_ms: u64, events: Vec<Event>) -> Vec<Effect> {
        self.now_ms = self.now_ms.max(now_ms);
        if self.failure.is_some() {
            return Vec::new();
        }
        let checked = self.door.check_batch(&events, &self.registry, self.chain());
        let mut events = events.into_iter().zip(checked).peekable();
        while let Some((event, verdict)) = events.next() {
            if self.failure.is_some() {
                break;
            }
            if !is_transaction(&event) {
                self.on_event(event, verdict);
                continue;
            }
            let mut run = vec![event];
            while run.len() < MAX_TX_BATCH {
                match events.next_if(|(next, _)| is_transaction(next)) {
                    Some((next, _)) => run.push(next),
                    None => break,
                }
            }
            self.on_transactions(run);
        }
        if std::mem::take(&mut self.admitted_in_batch) && self.failure.is_none() {
            self.maybe_start(false);
        }
        std::mem::take(&mut self.effects)
    }

    fn on_event(&mut self, event: Event, verdict: Option<door::Verdict>) {
        match event {
            Event::Start => self.on_start(),
            Event::Net(NetEvent::Joined { peer, .. }) => self.sync.joined(peer),
            Event::Net(NetEvent::Left(peer)) => self.sync.left(&peer),
            Event::Net(NetEvent::Message {
                from,
                channel,
                bytes,
            }) => match channel {
                Channel::Consensus => self.on_consensus(from, verdict),
                Channel::Transactions => {
                    let _ = self.on_transaction(Some(from), &bytes);
                }
                Channel::Sync => self.on_sync(from, &bytes),
                // The network answers discovery itself and never delivers it; nothing to do if a
                // network (a test double) does.
                Channel::Discovery => {}
            },
            Event::Submit { request, tx } => {
                let result = self.submit(tx);
                self.effects.push(Effect::Reply {
                    request,
                    result: result.map_err(|e| e.to_string()),
                });
            }
            Event::Timer(timer) => self.on_timer(timer),
        }
    }

    /// This node's consensus key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    /// The finalized tip's height.
    pub fn finalized_height(&self) -> Height {
        self.tip.0
    }

    /// The consensus core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The chain store.
    pub fn store(&self) -> &Arc<dyn ChainStore> {
        &self.store
    }

    /// The WAL store.
    pub fn wal(&self) -> &Arc<dyn ConsensusStateStore> {
        &self.wal
    }

    /// The mempool.
    pub fn mempool(&self) -> &Arc<dyn Mempool> {
        &self.mempool
    }

    /// The validator registry.
    pub fn registry(&self) -> &ValidatorRegistry {
        &self.registry
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Keys named by evidence this engine's core reported (at most [`EngineConfig::max_offenders`]).
    pub fn offenders(&self) -> &[PublicKey] {
        &self.offenders
    }

    /// Why the engine stopped, if it did. A stopped engine ignores every event.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The node's state, for RPC and metrics.
    pub fn status(&self) -> NodeStatus {
        let deciding = self.core.height();
        NodeStatus {
            height: self.tip.0,
            tip: self.tip.1,
            deciding,
            sync: self.sync.status(self.tip.0),
            peers: self.sync.peer_count(),
            mempool: self.mempool.len(),
            validator: self
                .core
                .validators()
                .is_some_and(|set| set.contains(&self.me)),
        }
    }

    fn chain(&self) -> ChainId {
        self.params.chain_id
    }

    fn now(&self) -> u64 {
        self.now_ms
    }

    fn on_start(&mut self) {
        self.set_timer(TimerId::Sync, self.config.sync_interval);
        self.set_timer(TimerId::Tick, self.config.tick_interval);
        if let Some(every) = self.config.resend_interval {
            self.set_timer(TimerId::Resend, every);
        }
        let next = self.tip.0.saturating_add(1);
        // A node restarted in the middle of a height it had voted in goes straight back to it.
        let resume = !self.persisted.is_empty();
        self.pending_start = Some((next, self.now()));
        if resume {
            self.start_pending();
        } else {
            self.maybe_start(false);
        }
    }

    fn set_timer(&mut self, timer: TimerId, after: Duration) {
        self.effects.push(Effect::SetTimer { timer, after });
    }

    fn penalize(&mut self, peer: PeerId, misbehavior: Misbehavior) {
        self.stats.penalties += 1;
        self.effects.push(Effect::Penalize { peer, misbehavior });
    }

    fn fail(&mut self, reason: String) {
        warn!(%reason, "engine halted");
        self.failure = Some(reason);
        self.inputs.clear();
    }

    /// Starts the pending height if transactions wait, or (when the heartbeat timer fired) if the
    /// empty-block interval has passed; otherwise arms the heartbeat. An empty block is only ever
    /// started from the timer, never within the event that finalized the previous one, so a lone
    /// validator with a zero interval makes one block per timer, not an endless cascade.
    fn maybe_start(&mut self, heartbeat: bool) {
        let Some((height, since)) = self.pending_start else {
            return;
        };
        let due = since.saturating_add(duration_ms(self.config.empty_block_interval));
        if !self.mempool.is_empty() || (heartbeat && self.now() >= due) {
            self.start_pending();
        } else {
            debug!(height, "waiting for transactions or the heartbeat");
            self.set_timer(
                TimerId::Heartbeat,
                Duration::from_millis(due.saturating_sub(self.now())),
            );
        }
    }

    fn start_pending(&mut self) {
        let Some((height, _)) = self.pending_start.take() else {
            return;
        };
        let validators = self.validators_for(height);
        // Timers of finished heights can only be ignored by the core; forgetting them bounds the map.
        self.timers.retain(|_, t| t.height >= height);
        self.feed(Input::StartHeight { height, validators });
    }

    fn validators_for(&self, height: Height) -> Arc<ValidatorSet> {
        self.registry
            .set_for(height)
            .unwrap_or_else(|| self.registry.current())
    }

    /// Feeds `input` and everything it leads to (the application's answers, the next height, synced
    /// blocks), executing outputs in order.
    fn feed(&mut self, input: Input) {
        self.inputs.push_back(input);
        // Outputs may lead to more inputs (the next height, a synced block): queued, not recursed into.
        if self.feeding {
            return;
        }
        self.feeding = true;
        self.drain_inputs();
        self.feeding = false;
    }

    fn drain_inputs(&mut self) {
        loop {
            while let Some(input) = self.inputs.pop_front() {
                if self.failure.is_some() {
                    return;
                }
                let outputs = self.core.handle(input);
                self.execute(outputs);
            }
            match self.next_synced() {
                Some(input) => self.inputs.push_back(input),
                None => return,
            }
        }
    }

    fn execute(&mut self, outputs: Vec<Output>) {
        // A failure is already recorded in `self.failure`, which stops the engine.
        let _ = timecoin_consensus::dispatch(&mut EngineHost(self), outputs);
    }

    /// Applies a decided block durably, then tells the mempool and the registry, then moves on.
    fn apply_decided(&mut self, block: WellFormedBlock, certificate: CommitCertificate) {
        let height = block.header.height;
        let pool = match self.pool_after(&block) {
            Ok(pool) => pool,
            Err(e) => {
                self.fail(format!("cannot account decided block {height}: {e}"));
                return;
            }
        };
        // The registry's and the pool's next states are written with the block, so a restart reads them
        // instead of replaying the chain; the registry is published only once they are durable.
        let update = match self.registry.prepare(&block) {
            Ok(update) => update,
            Err(e) => {
                self.fail(format!("registry refused decided block {height}: {e}"));
                return;
            }
        };
        let snapshot = update.snapshot().map(|s| s.encode());
        let pool_bytes = pool.as_sat().to_le_bytes();
        let mut records = vec![HostRecord {
            name: REWARD_POOL_RECORD,
            value: &pool_bytes,
        }];
        if let Some(snapshot) = &snapshot {
            records.push(HostRecord {
                name: REGISTRY_RECORD,
                value: snapshot,
            });
        }
        if let Err(e) = self
            .store
            .apply_finalized_with(&block, &certificate, &records)
        {
            self.fail(format!("cannot apply decided block {height}: {e}"));
            return;
        }
        self.mempool.on_finalized(&block);
        self.registry.commit(update);
        let next = height.saturating_add(1);
        if let Err(e) = self.wal.prune_below(next) {
            // Stale entries only cost space; the next prune takes them.
            warn!(%e, "WAL prune failed");
        }
        self.prune_bodies(height);
        let hash = block.hash();
        self.pool = pool;
        self.tip = (height, hash, block.header.timestamp_ms);
        self.persisted.clear();
        self.stats.finalized += 1;
        info!(height, %hash, transactions = block.transactions.len(), "finalized");
        self.effects.push(Effect::Finalized {
            height,
            hash,
            transactions: block.transactions.len(),
        });
        self.continue_sync();
        self.retry_orphans();
        self.pending_start = Some((next, self.now()));
        if self.sync.has_buffered(next) {
            self.start_pending();
        } else {
            self.maybe_start(false);
        }
    }

    /// Deletes bodies older than the retention, a round of at most [`PRUNE_ROUND`] once that many (or
    /// half the retention, if less) are due, so the cost is spread over blocks rather than paid in one
    /// long stall. A body is kept where the header's schedule hash differs from its parent's: state
    /// sync serves it with the header, and a walker needs it to follow the validator set.
    fn prune_bodies(&mut self, tip: Height) {
        let keep = self.config.prune_keep_blocks;
        if keep == 0 {
            return;
        }
        let below = tip.saturating_add(1).saturating_sub(keep);
        let floor = match self.store.body_floor() {
            Ok(floor) => floor,
            Err(e) => {
                warn!(%e, "cannot read the body floor; pruning skipped");
                return;
            }
        };
        // A round once a batch is due: a full one, or half the retention for a short one.
        let due = (PRUNE_ROUND as u64).min(keep / 2).max(1);
        if below < floor.saturating_add(due) {
            return;
        }
        let schedule_moved =
            |header: &timecoin_types::BlockHeader, parent: Option<&timecoin_types::BlockHeader>| {
                parent.is_none_or(|p| p.validators_hash != header.validators_hash)
            };
        match self.store.prune_bodies(below, PRUNE_ROUND, &schedule_moved) {
            // The store logs each round.
            Ok(report) => {
                self.stats.pruned_bodies += report.pruned;
                self.stats.pruned_bytes += report.bytes;
            }
            // The bodies stay; the next block tries again. A store that can no longer write halts
            // itself, and the next apply reports that.
            Err(e) => warn!(%e, "pruning block bodies failed"),
        }
    }

    fn on_consensus(&mut self, from: PeerId, verdict: Option<door::Verdict>) {
        self.stats.received += 1;
        let message = match verdict {
            Some(door::Verdict::Valid { message, duplicate }) => {
                self.stats.duplicates += u64::from(duplicate);
                message
            }
            Some(door::Verdict::Malformed) | None => {
                self.stats.malformed += 1;
                self.penalize(from, Misbehavior::Malformed);
                return;
            }
            Some(door::Verdict::Invalid { duplicate }) => {
                self.stats.rejected_signature += 1;
                self.stats.duplicates += u64::from(duplicate);
                // A repeat of a message already judged bad costs the sender once, not every time.
                if !duplicate {
                    self.penalize(from, Misbehavior::Invalid);
                }
                return;
            }
        };
        let height = message.height();
        let current = self.core.height().unwrap_or(self.tip.0.saturating_add(1));
        if height > current {
            self.sync.heard_ahead(from, height);
            self.request_sync_from(from);
        } else if height <= self.tip.0 {
            self.push_finalized(from, height);
        }
        // A peer already works on the height this node waits to start: join it.
        if self.pending_start.is_some_and(|(h, _)| h == height) {
            self.start_pending();
        }
        self.feed(Input::from(message));
    }

    /// A transaction from a peer (`Some`) or a local submission (`None`); on admission it is gossiped.
    fn on_transaction(&mut self, from: Option<PeerId>, bytes: &Bytes) -> Result<TxId, NodeError> {
        self.stats.txs_received += 1;
        let tx = self.decode_transaction(from, bytes)?;
        let result = self.mempool.insert(tx);
        self.settle(from, bytes.clone(), result)
    }

    fn decode_transaction(
        &mut self,
        from: Option<PeerId>,
        bytes: &[u8],
    ) -> Result<Transaction, NodeError> {
        crate::wire::decode_transaction(bytes).map_err(|e| {
            self.stats.malformed += 1;
            if let Some(peer) = from {
                self.penalize(peer, Misbehavior::Malformed);
            }
            e.into()
        })
    }

    /// Transactions that arrived together, gossiped or submitted: decoded, then admitted with all their
    /// signatures checked in one batch (about half the cost of checking them one by one), in order. The
    /// same as handling them one by one, except that each is screened against the pool as it was
    /// before the run (see [`Mempool::insert_batch`]); a repeat within the run is handled after the rest.
    fn on_transactions(&mut self, run: Vec<Event>) {
        if run.len() == 1 {
            for event in run {
                self.on_event(event, None);
            }
            return;
        }
        let mut firsts = Vec::with_capacity(run.len());
        let mut repeats = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(run.len());
        for event in run {
            let (origin, tx, bytes) = match event {
                Event::Net(NetEvent::Message { from, bytes, .. }) => {
                    self.stats.txs_received += 1;
                    match self.decode_transaction(Some(from), &bytes) {
                        Ok(tx) => (Origin::Peer(from), tx, bytes),
                        Err(_) => continue,
                    }
                }
                Event::Submit { request, tx } => {
                    self.stats.txs_received += 1;
                    let bytes = Bytes::from(tx.encode());
                    (Origin::Local(request), tx, bytes)
                }
                // Runs hold transactions only (`is_transaction`).
                other => {
                    self.on_event(other, None);
                    continue;
                }
            };
            if seen.insert(tx.txid()) {
                firsts.push((origin, tx, bytes));
            } else {
                repeats.push((origin, tx, bytes));
            }
        }
        let (pending, txs): (Vec<_>, Vec<_>) = firsts
            .into_iter()
            .map(|(origin, tx, bytes)| ((origin, bytes), tx))
            .unzip();
        let results = self.mempool.insert_batch(txs);
        for ((origin, bytes), result) in pending.into_iter().zip(results) {
            self.settle_from(origin, bytes, result);
        }
        for (origin, tx, bytes) in repeats {
            let result = self.mempool.insert(tx);
            self.settle_from(origin, bytes, result);
        }
    }

    fn settle_from(&mut self, origin: Origin, bytes: Bytes, result: Result<TxId, MempoolError>) {
        match origin {
            Origin::Peer(peer) => {
                let _ = self.settle(Some(peer), bytes, result);
            }
            Origin::Local(request) => {
                let result = self.settle(None, bytes, result);
                self.effects.push(Effect::Reply {
                    request,
                    result: result.map_err(|e| e.to_string()),
                });
            }
        }
    }

    /// What follows the mempool's verdict: an admitted transaction is relayed and may start a height;
    /// one from a peer spending an output not final here yet is held (see `retry_orphans`), since the
    /// network hands each transaction over once.
    fn settle(
        &mut self,
        from: Option<PeerId>,
        bytes: Bytes,
        result: Result<TxId, MempoolError>,
    ) -> Result<TxId, NodeError> {
        match result {
            Ok(txid) => {
                self.stats.txs_admitted += 1;
                self.effects.push(Effect::Broadcast {
                    channel: Channel::Transactions,
                    bytes,
                });
                // Checked once the whole batch is in, so transactions that arrive together go into one
                // block.
                self.admitted_in_batch = true;
                Ok(txid)
            }
            Err(MempoolError::Invalid {
                txid,
                source: TypesError::MissingInput { .. },
            }) if from.is_some() => {
                if self.orphans.len() >= MAX_ORPHANS {
                    self.orphans.pop_front();
                }
                self.orphans.push_back((self.tip.0, bytes));
                Err(NodeError::Refused(format!(
                    "transaction {txid} spends an output not final here yet; held for {ORPHAN_HEIGHTS} blocks"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a block: admits the held transactions whose inputs it created, forgets those held too
    /// long or refused for another reason.
    fn retry_orphans(&mut self) {
        let tip = self.tip.0;
        for (held_at, bytes) in std::mem::take(&mut self.orphans) {
            if tip.saturating_sub(held_at) > ORPHAN_HEIGHTS {
                continue;
            }
            // It decoded when it arrived; the bytes have not changed.
            let Ok(tx) = crate::wire::decode_transaction(&bytes) else {
                continue;
            };
            match self.mempool.insert(tx) {
                Err(MempoolError::Invalid {
                    source: TypesError::MissingInput { .. },
                    ..
                }) => self.orphans.push_back((held_at, bytes)),
                result => {
                    if self.settle(None, bytes, result).is_ok() {
                        self.stats.orphans_admitted += 1;
                    }
                }
            }
        }
    }

    fn submit(&mut self, tx: Transaction) -> Result<TxId, NodeError> {
        self.stats.txs_received += 1;
        let bytes = Bytes::from(tx.encode());
        self.admit(tx, bytes)
    }

    fn admit(&mut self, tx: Transaction, bytes: Bytes) -> Result<TxId, NodeError> {
        // Judged against the finalized set, so a conflicting spend of a coin is refused here or replaced
        // by fee; whichever a leader proposes, every node checks the block against its chain alone.
        let result = self.mempool.insert(tx);
        self.settle(None, bytes, result)
    }

    fn on_timer(&mut self, timer: TimerId) {
        match timer {
            TimerId::Consensus(token) => {
                if let Some(timeout) = self.timers.remove(&token) {
                    self.feed(Input::Timeout(timeout));
                }
            }
            TimerId::Sync => {
                self.set_timer(TimerId::Sync, self.config.sync_interval);
                self.sync_round();
            }
            TimerId::Tick => {
                self.set_timer(TimerId::Tick, self.config.tick_interval);
                self.feed(Input::Tick { now_ms: self.now() });
            }
            TimerId::Resend => {
                if let Some(every) = self.config.resend_interval {
                    self.set_timer(TimerId::Resend, every);
                }
                let height = self.core.height();
                if height.is_some() && height == self.resend_height {
                    self.resend_wal();
                }
                self.resend_height = height;
            }
            TimerId::Heartbeat => self.maybe_start(true),
        }
    }

    /// Re-broadcasts what the WAL holds for heights above the tip: only messages this node already
    /// signed and persisted, so never anything new.
    fn resend_wal(&mut self) {
        let entries = match self.wal.replay(self.tip.0.saturating_add(1)) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(%e, "cannot read the WAL to resend");
                return;
            }
        };
        for bytes in entries {
            if let Ok(entry) = WalEntry::decode(&bytes) {
                self.effects.push(Effect::Broadcast {
                    channel: Channel::Consensus,
                    bytes: entry.into_message().encode().into(),
                });
            }
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn blake3_digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The engine as the core's host: the one place its outputs turn into WAL writes, broadcasts, timers,
/// blocks and verdicts. A wrapper, so these stay private to the engine.
struct EngineHost<'a>(&'a mut Engine);

// An engine with a failure recorded takes no events (`handle_batch`, `drain_inputs`), and every
// failure here is recorded and returned as `Err`, which ends the dispatch: so no method needs to check
// for an earlier failure itself.
impl timecoin_consensus::Host for EngineHost<'_> {
    /// Why the engine stopped; it is also recorded in [`Engine::failure`].
    type Error = ();

    fn persist(&mut self, entry: WalEntry) -> Result<(), ()> {
        let engine = &mut *self.0;
        let height = entry.height();
        if let Err(e) = engine.wal.append_wal(height, &entry.encode()) {
            // Without the record, the vote must never leave: stop here.
            engine.fail(format!("WAL write failed: {e}"));
            return Err(());
        }
        engine.persisted.insert(digest(&entry.into_message()));
        engine.stats.persists += 1;
        Ok(())
    }

    fn broadcast(&mut self, message: Message) -> Result<(), ()> {
        let engine = &mut *self.0;
        let bytes = message.encode();
        if !engine.persisted.contains(&blake3_digest(&bytes)) {
            engine.fail(format!(
                "the core broadcast a message it never asked to persist: {message:?}"
            ));
            return Err(());
        }
        engine.effects.push(Effect::Broadcast {
            channel: Channel::Consensus,
            bytes: bytes.into(),
        });
        Ok(())
    }

    fn schedule(&mut self, timeout: Timeout, after: Duration) {
        let engine = &mut *self.0;
        let token = engine.next_token;
        engine.next_token += 1;
        engine.timers.insert(token, timeout);
        engine.set_timer(TimerId::Consensus(token), after);
    }

    fn propose(&mut self, height: Height, view: timecoin_types::View) -> Option<WellFormedBlock> {
        let engine = &mut *self.0;
        match engine.build_block(height, view) {
            Ok(block) => {
                engine.stats.proposed += 1;
                Some(block)
            }
            Err(e) => {
                warn!(%e, height, view, "could not build a block");
                None
            }
        }
    }

    fn validate(&mut self, height: Height, block: &WellFormedBlock) -> bool {
        match self.0.validate_block(block) {
            Ok(()) => true,
            Err(e) => {
                debug!(%e, height, "proposed block refused");
                false
            }
        }
    }

    fn decided(
        &mut self,
        block: WellFormedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), ()> {
        let engine = &mut *self.0;
        engine.apply_decided(block, certificate);
        match engine.failure {
            Some(_) => Err(()),
            None => Ok(()),
        }
    }

    fn evidence(&mut self, evidence: timecoin_consensus::Evidence) {
        let engine = &mut *self.0;
        engine.stats.evidence += 1;
        let offender = evidence.offender();
        warn!(%offender, "equivocation evidence");
        if engine.offenders.len() < engine.config.max_offenders {
            engine.offenders.push(offender);
        }
    }

    fn answer(&mut self, input: Input) {
        self.0.inputs.push_back(input);
    }
}

/// The host record holding the reward pool after each block (8 bytes, little-endian satoshis).
pub(crate) const REWARD_POOL_RECORD: &str = "node/reward-pool";

/// Most gossiped transactions held while an input is not final here yet (see `Engine::orphans`).
pub const MAX_ORPHANS: usize = 1_000;

/// Blocks a held transaction is retried for before it is forgotten.
pub const ORPHAN_HEIGHTS: Height = 3;
/// The host record holding the validator registry's snapshot after the last block that changed a set.
pub(crate) const REGISTRY_RECORD: &str = "node/registry";

/// Most transactions admitted as one signature batch: the batch equation's gain flattens past a few
/// hundred signatures, and the bound keeps one batch's pause short.
pub(crate) const MAX_TX_BATCH: usize = 256;

/// Where a transaction came from, for its answer.
#[derive(Clone, Copy, Debug)]
enum Origin {
    Peer(PeerId),
    Local(RequestId),
}

fn is_transaction(event: &Event) -> bool {
    matches!(
        event,
        Event::Submit { .. }
            | Event::Net(NetEvent::Message {
                channel: Channel::Transactions,
                ..
            })
    )
}

/// Bodies pruned per round: a round reads each body once and commits one batch, a few milliseconds.
pub const PRUNE_ROUND: usize = 100;

/// The registry and the reward pool at `tip`, read from the records the engine writes with every block;
/// `None` for a store without them (one written before they existed), which is then replayed.
fn resume_from_records(
    store: &dyn ChainStore,
    genesis: &Genesis,
    tip: Height,
) -> Result<Option<(ValidatorRegistry, timecoin_types::Amount)>, NodeError> {
    if tip == 0 {
        return Ok(None);
    }
    let Some((at, pool)) = store.host_record(REWARD_POOL_RECORD)? else {
        return Ok(None);
    };
    if at != tip {
        warn!(
            at,
            tip, "reward pool record is not the tip's; replaying the chain"
        );
        return Ok(None);
    }
    let pool = <[u8; 8]>::try_from(pool.as_slice())
        .map(|b| timecoin_types::Amount::from_sat(u64::from_le_bytes(b)))
        .map_err(|_| NodeError::Config("the reward pool record is not 8 bytes".into()))?;
    let delay = genesis.params.validator_set_delay;
    let registry = match store.host_record(REGISTRY_RECORD)? {
        Some((_, bytes)) => {
            let snapshot = timecoin_consensus::RegistrySnapshot::decode(&bytes)?;
            ValidatorRegistry::restore(snapshot, tip, delay)?
        }
        None => ValidatorRegistry::new(ValidatorSet::from_genesis(genesis)?, tip, delay),
    };
    Ok(Some((registry, pool)))
}

/// The registry and the reward pool at `tip`, rebuilt by replaying every stored block: the registry is
/// derived from finalized blocks only, and the pool is what the supply identity leaves.
fn replay_chain(
    store: &dyn ChainStore,
    genesis: &Genesis,
    genesis_total: timecoin_types::Amount,
    tip: Height,
) -> Result<(ValidatorRegistry, timecoin_types::Amount), NodeError> {
    let registry = ValidatorRegistry::from_genesis(genesis)?;
    for height in 1..=tip {
        let stored = store.block(height)?.ok_or_else(|| {
            NodeError::Config(format!(
                "the store lacks block {height} below its tip (pruned, and no registry record to \
                 resume from: restore from a backup or state-sync into an empty store)"
            ))
        })?;
        let block = WellFormedBlock::check(stored.block)?;
        registry.on_finalized(&block)?;
    }
    let minted = rewards::supply_at(genesis_total, genesis.params.block_subsidy, tip)
        .ok_or_else(|| NodeError::Config("the supply overflows".into()))?;
    let pool = minted
        .checked_sub(rewards::utxo_total(store)?)
        .ok_or_else(|| NodeError::Config("the UTXO set holds more than was ever minted".into()))?;
    Ok((registry, pool))
}

fn digest(message: &Message) -> [u8; 32] {
    blake3_digest(&message.encode())
}
