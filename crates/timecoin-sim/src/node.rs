//! A simulated validator: the real consensus core, the [`Ledger`] application, a [`DurableState`] store,
//! a validator registry, signature checks at the door, timers, and a small block sync, all driven by the
//! runtime's events.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use timecoin_consensus::{
    CertifiedBlock, Config, Core, Input, Message, Output, Signer, Timeout, ValidatorRegistry,
    Verified, WalEntry,
};
use timecoin_crypto::{ChainId, PublicKey, SecretKey, SigDomain, Signature};
use timecoin_types::{CommitCertificate, Genesis, Height, WellFormedBlock, Wire};
use tracing::{debug, warn};

use crate::SimError;
use crate::byzantine::{Behavior, Outbox, Strategy};
use crate::ledger::{Ledger, Wallet};
use crate::runtime::{Context, Millis, NodeId, Process};
use crate::store::DurableState;

/// What travels on the simulated wire. Consensus messages and synced blocks travel encoded, so every
/// node decodes untrusted bytes exactly as a real one would.
#[derive(Clone, Debug)]
pub enum Packet {
    /// A [`Message`], [`Wire::encode`]d.
    Consensus(Arc<[u8]>),
    /// "Send me your finalized blocks from this height on."
    SyncRequest {
        /// First height wanted.
        from_height: Height,
    },
    /// A [`CertifiedBlock`], [`Wire::encode`]d.
    SyncResponse(Arc<[u8]>),
}

impl Packet {
    /// A consensus message on the wire.
    pub fn consensus(message: &Message) -> Self {
        Packet::Consensus(message.encode().into())
    }
}

/// Host timings of a simulated node (simulated milliseconds), apart from the consensus timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTiming {
    /// How often a node asks one peer (round robin) for blocks above its tip.
    pub sync_interval_ms: Millis,
    /// Least time between two sync requests triggered by messages from higher heights, and between two
    /// pushes of the same height to one peer.
    pub sync_backoff_ms: Millis,
    /// Finalized blocks sent per sync request or push.
    pub sync_batch: u64,
    /// Synced blocks buffered above the current height; later ones are dropped (asked for again later).
    pub sync_window: u64,
    /// How often the core is given the clock ([`Input::Tick`]).
    pub tick_interval_ms: Millis,
    /// While a height stays undecided for this long, re-broadcast every message of that height in the
    /// WAL (all views, not only the current one) this often; `None` turns it off.
    ///
    /// Why the host does this: the core retransmits its own messages of the views it keeps, and a
    /// re-proposal carries its proof of lock, but a message lost beyond the kept views is re-sent by
    /// nothing else. Re-sending the whole WAL of a stuck height stands in for the gossip a real network
    /// gives. See `docs/SIMULATOR.md`, "Consensus findings".
    pub resend_interval_ms: Option<Millis>,
}

impl Default for HostTiming {
    fn default() -> Self {
        HostTiming {
            sync_interval_ms: 1_000,
            sync_backoff_ms: 200,
            sync_batch: 8,
            sync_window: 32,
            tick_interval_ms: 5_000,
            resend_interval_ms: Some(1_000),
        }
    }
}

/// Everything that defines a node and never changes, shared by its incarnations across restarts.
#[derive(Debug)]
pub struct NodeSpec {
    /// Its id in the runtime.
    pub id: NodeId,
    /// Number of nodes in the runtime.
    pub nodes: usize,
    /// The validator key it signs with (twins share one).
    pub key: Arc<SecretKey>,
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// Consensus settings.
    pub consensus: Config,
    /// Keys whose coins the application spends.
    pub wallet: Arc<Wallet>,
    /// Transfers per built block.
    pub txs_per_block: usize,
    /// Host timings.
    pub timing: HostTiming,
    /// Honest or which Byzantine strategy.
    pub behavior: Behavior,
}

/// Counters of what a node did, for assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Consensus packets received.
    pub received: u64,
    /// Packets that did not decode.
    pub malformed: u64,
    /// Messages refused by signature or membership checks, before the core saw them.
    pub rejected_signature: u64,
    /// Synced blocks refused (bad certificate, wrong parent).
    pub rejected_sync: u64,
    /// Heights decided from a synced certificate.
    pub synced: u64,
    /// Sync requests sent.
    pub sync_requests: u64,
    /// WAL entries written.
    pub persists: u64,
    /// Evidence items the core reported.
    pub evidence: u64,
}

/// Timer tokens below this are the host's own; consensus timeouts use the rest.
const FIRST_CONSENSUS_TOKEN: u64 = 3;
const SYNC_TOKEN: u64 = 0;
const TICK_TOKEN: u64 = 1;
const RESEND_TOKEN: u64 = 2;
/// Offenders remembered per node (later evidence is only counted).
const MAX_OFFENDERS_KEPT: usize = 256;
/// Digests of consensus messages whose signature this node already checked, with the verdict (oldest
/// forgotten first): retransmissions, WAL resends, duplicates, replays and repeated forgeries are then not
/// checked again, as a real node's seen-message and rejection caches would do.
const VERIFIED_CACHE: usize = 4_096;

/// The signer handed to the core: the node's key, shared with its twin if it has one.
struct SharedKey(Arc<SecretKey>);

impl Signer for SharedKey {
    fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }
    fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature {
        self.0.sign(domain, chain, message)
    }
}

/// One simulated validator.
///
/// Bounds: pending consensus timers (one entry per scheduled timeout, removed when it fires; the core
/// schedules a handful per view), the sync buffer ([`HostTiming::sync_window`] heights), one push record
/// per peer, 256 offenders, 4,096 message verdicts; the core bounds its own memory.
pub struct SimNode {
    spec: Arc<NodeSpec>,
    strategy: Option<Box<dyn Strategy>>,
    core: Core,
    ledger: Ledger,
    registry: ValidatorRegistry,
    durable: DurableState,
    timers: BTreeMap<u64, Timeout>,
    next_token: u64,
    inputs: VecDeque<Input>,
    sync_buffer: BTreeMap<Height, CertifiedBlock>,
    last_sync_request: Option<Millis>,
    sync_cursor: usize,
    pushed: BTreeMap<NodeId, (Height, Millis)>,
    /// The height seen at the last resend tick: a resend happens only if it has not changed since.
    resend_height: Option<Height>,
    /// BLAKE3 digests of message encodings already checked, with whether they passed; at most
    /// `VERIFIED_CACHE`, with the insertion order in `verified_order` for eviction.
    verified: BTreeMap<[u8; 32], bool>,
    verified_order: VecDeque<[u8; 32]>,
    /// Digests of the messages in the WAL (the current height's), to check that the core persisted
    /// everything it asks to broadcast; emptied when a height is finalized (the WAL is pruned then).
    persisted: BTreeSet<[u8; 32]>,
    crash_after_persists: Option<u32>,
    halted: bool,
    failure: Option<String>,
    offenders: Vec<PublicKey>,
    finalized_at: BTreeMap<Height, Millis>,
    stats: NodeStats,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("id", &self.spec.id)
            .field("behavior", &self.spec.behavior.name())
            .field("finalized", &self.durable.tip_height())
            .field("core", &self.core)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SimNode {
    /// A node that has finalized nothing and signed nothing.
    pub fn new(spec: Arc<NodeSpec>) -> Result<Self, SimError> {
        Self::build(spec, DurableState::default())
    }

    /// A node restarted from what an earlier incarnation persisted: the ledger and registry are rebuilt
    /// from the stored blocks, the core from the WAL ([`Core::restore`]). Fails if the stored state does
    /// not replay (which this in-memory store never causes by itself).
    pub fn recover(spec: Arc<NodeSpec>, mut durable: DurableState) -> Result<Self, SimError> {
        durable.restarts += 1;
        Self::build(spec, durable)
    }

    fn build(spec: Arc<NodeSpec>, durable: DurableState) -> Result<Self, SimError> {
        let config = spec.consensus.clone();
        let (wal, skipped) = durable.wal_entries();
        if skipped > 0 {
            return Err(SimError::Setup(format!(
                "node {}: {skipped} WAL entries did not decode",
                spec.id
            )));
        }
        let core = Core::restore(config, SharedKey(spec.key.clone()), wal)
            .map_err(|e| SimError::Setup(format!("node {}: core restore: {e}", spec.id)))?;
        let mut ledger = Ledger::new(&spec.genesis, spec.wallet.clone(), spec.txs_per_block);
        let registry = ValidatorRegistry::from_genesis(&spec.genesis)
            .map_err(|e| SimError::Setup(format!("genesis validator set: {e}")))?;
        for (block, _) in &durable.chain {
            ledger.apply(block)?;
            registry
                .on_finalized(block)
                .map_err(|e| SimError::Setup(format!("node {}: registry replay: {e}", spec.id)))?;
        }
        let persisted = wal_messages(&durable).iter().map(digest_of).collect();
        Ok(SimNode {
            strategy: spec.behavior.strategy(),
            spec,
            core,
            ledger,
            registry,
            durable,
            timers: BTreeMap::new(),
            next_token: FIRST_CONSENSUS_TOKEN,
            inputs: VecDeque::new(),
            sync_buffer: BTreeMap::new(),
            last_sync_request: None,
            sync_cursor: 0,
            pushed: BTreeMap::new(),
            resend_height: None,
            verified: BTreeMap::new(),
            verified_order: VecDeque::new(),
            persisted,
            crash_after_persists: None,
            halted: false,
            failure: None,
            offenders: Vec::new(),
            finalized_at: BTreeMap::new(),
            stats: NodeStats::default(),
        })
    }

    /// Test hook: crash right after the `nth` next WAL write (1 = the next one), before the message it
    /// records is broadcast.
    pub fn crash_after_persist(&mut self, nth: u32) {
        self.crash_after_persists = Some(nth.max(1));
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
        self.durable.tip_height()
    }

    /// The consensus core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The application state.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Keys named by evidence this incarnation's core reported (at most 256).
    pub fn offenders(&self) -> &[PublicKey] {
        &self.offenders
    }

    /// Why the node cannot go on, if it cannot.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Whether the crash hook fired.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Simulated time at which this incarnation finalized each height.
    pub fn finalized_at(&self) -> &BTreeMap<Height, Millis> {
        &self.finalized_at
    }

    /// The strategy's name, or "honest".
    pub fn behavior(&self) -> &Behavior {
        &self.spec.behavior
    }

    fn chain(&self) -> ChainId {
        self.spec.consensus.chain_id
    }

    fn talks_to(&self, peer: NodeId) -> bool {
        self.strategy.as_ref().is_none_or(|s| s.talks_to(peer))
    }

    fn send(&self, to: NodeId, packet: Packet, ctx: &mut Context<Packet>) {
        if self.talks_to(to) {
            ctx.send(to, packet);
        }
    }

    /// Feeds `input` and everything it leads to (the application's answers, the next height, synced
    /// blocks), executing outputs in order.
    fn feed(&mut self, input: Input, ctx: &mut Context<Packet>) {
        self.inputs.push_back(input);
        loop {
            while let Some(input) = self.inputs.pop_front() {
                if self.halted {
                    self.inputs.clear();
                    return;
                }
                let outputs = self.core.handle(input);
                self.execute(outputs, ctx);
            }
            match self.next_synced() {
                Some(input) => self.inputs.push_back(input),
                None => return,
            }
        }
    }

    fn execute(&mut self, outputs: Vec<Output>, ctx: &mut Context<Packet>) {
        for output in outputs {
            if self.halted {
                return;
            }
            match output {
                Output::Persist(entry) => {
                    self.durable.append_wal(&entry);
                    self.persisted.insert(digest_of(&wal_message(entry)));
                    self.stats.persists += 1;
                    match self.crash_after_persists {
                        Some(n) if n <= 1 => {
                            self.crash_after_persists = None;
                            self.halted = true;
                            ctx.halt();
                            return;
                        }
                        Some(n) => self.crash_after_persists = Some(n - 1),
                        None => {}
                    }
                }
                Output::Broadcast(message) => {
                    // The contract: what the core sends, it persisted first (the crash hook relies on it).
                    if !self.persisted.contains(&digest_of(&message)) {
                        self.fail(format!(
                            "core broadcast a message it never asked to persist: {message:?}"
                        ));
                        return;
                    }
                    self.broadcast(message, ctx)
                }
                Output::ScheduleTimeout { timeout, after } => {
                    let token = self.next_token;
                    self.next_token += 1;
                    self.timers.insert(token, timeout);
                    ctx.set_timer(u64::try_from(after.as_millis()).unwrap_or(u64::MAX), token);
                }
                Output::RequestProposal { height, view } => {
                    match self.ledger.build_block(
                        height,
                        view,
                        self.spec.key.public_key(),
                        ctx.now(),
                    ) {
                        Ok(block) => self.inputs.push_back(Input::ProposalValue {
                            height,
                            view,
                            block,
                        }),
                        // Left unanswered, the view's propose timeout ends in a nil Prepare.
                        Err(e) => warn!(node = self.spec.id, %e, "could not build a block"),
                    }
                }
                Output::RequestValidity { height, block, .. } => {
                    let valid = match self.ledger.validate(&block) {
                        Ok(()) => true,
                        Err(e) => {
                            debug!(node = self.spec.id, %e, "proposed block refused");
                            false
                        }
                    };
                    self.inputs.push_back(Input::Validity {
                        height,
                        block_hash: block.hash(),
                        valid,
                    });
                }
                Output::Decided { block, certificate } => {
                    self.apply_decided(block, certificate, ctx.now())
                }
                Output::Evidence(evidence) => {
                    self.stats.evidence += 1;
                    if self.offenders.len() < MAX_OFFENDERS_KEPT {
                        self.offenders.push(evidence.offender());
                    }
                }
            }
        }
    }

    /// Re-broadcasts what the WAL holds for the current height (entries of lower heights are pruned when
    /// a block is finalized): only messages this node already signed and persisted, so never anything new.
    fn resend_wal(&mut self, ctx: &mut Context<Packet>) {
        for message in wal_messages(&self.durable) {
            self.broadcast(message, ctx);
        }
    }

    fn broadcast(&mut self, message: Message, ctx: &mut Context<Packet>) {
        let Some(strategy) = self.strategy.as_mut() else {
            ctx.broadcast(Packet::consensus(&message));
            return;
        };
        let mut out = outbox(&self.spec);
        strategy.on_broadcast(message, &mut out);
        dispatch(out.sends, ctx);
    }

    /// Applies a decided block durably (store, then ledger and registry), then starts the next height.
    fn apply_decided(
        &mut self,
        block: WellFormedBlock,
        certificate: CommitCertificate,
        now: Millis,
    ) {
        let height = block.header.height;
        if let Err(e) = self.ledger.apply(&block) {
            self.fail(format!("cannot apply decided block {height}: {e}"));
            return;
        }
        if let Err(e) = self.registry.on_finalized(&block) {
            self.fail(format!("registry refused decided block {height}: {e}"));
            return;
        }
        self.durable.append_finalized(block, certificate);
        self.persisted.clear();
        self.finalized_at.insert(height, now);
        let next = height + 1;
        let validators = self
            .registry
            .set_for(next)
            .unwrap_or_else(|| self.registry.current());
        self.inputs.push_back(Input::StartHeight {
            height: next,
            validators,
        });
    }

    fn fail(&mut self, reason: String) {
        warn!(node = self.spec.id, %reason, "node failed");
        self.failure = Some(reason);
        self.halted = true;
    }

    /// The synced block for the height being decided, once it checks out against the validator set of
    /// that height and the tip.
    fn next_synced(&mut self) -> Option<Input> {
        let current = self.core.height()?;
        while let Some(entry) = self.sync_buffer.first_entry() {
            if *entry.key() >= current {
                break;
            }
            entry.remove();
        }
        let certified = self.sync_buffer.remove(&current)?;
        let validators = self.registry.set_for(current)?;
        if certified.block.header.parent != self.ledger.tip().hash() {
            self.stats.rejected_sync += 1;
            return None;
        }
        match Verified::<CertifiedBlock>::verify(certified, self.chain(), &validators) {
            Ok(verified) => {
                self.stats.synced += 1;
                Some(Input::Certified(verified))
            }
            Err(e) => {
                debug!(node = self.spec.id, %e, "synced block refused");
                self.stats.rejected_sync += 1;
                None
            }
        }
    }

    fn on_consensus(&mut self, from: NodeId, bytes: &[u8], ctx: &mut Context<Packet>) {
        self.stats.received += 1;
        let message = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                debug!(node = self.spec.id, from, %e, "undecodable message");
                self.stats.malformed += 1;
                return;
            }
        };
        if let Some(strategy) = self.strategy.as_mut() {
            let mut out = outbox(&self.spec);
            strategy.on_receive(from, &message, &mut out);
            dispatch(out.sends, ctx);
        }
        let height = message.height();
        let digest = *blake3::hash(bytes).as_bytes();
        let verified = match self.verified.get(&digest) {
            // These exact bytes were checked before (the set of a height never changes here).
            Some(true) => Verified::assume_verified(message),
            Some(false) => {
                self.stats.rejected_signature += 1;
                return;
            }
            None => {
                let validators = self
                    .registry
                    .set_for(height)
                    .unwrap_or_else(|| self.registry.current());
                let checked = Verified::<Message>::verify(message, self.chain(), &validators);
                self.remember_verdict(digest, checked.is_ok());
                match checked {
                    Ok(v) => v,
                    Err(e) => {
                        debug!(node = self.spec.id, from, %e, "message refused at the door");
                        self.stats.rejected_signature += 1;
                        return;
                    }
                }
            }
        };
        let current = self.core.height().unwrap_or(0);
        if height > current {
            self.request_sync(from, ctx);
        } else if height < current {
            self.push_finalized(from, height, ctx);
        }
        self.feed(Input::from(verified), ctx);
    }

    fn remember_verdict(&mut self, digest: [u8; 32], valid: bool) {
        if self.verified_order.len() >= VERIFIED_CACHE
            && let Some(oldest) = self.verified_order.pop_front()
        {
            self.verified.remove(&oldest);
        }
        if self.verified.insert(digest, valid).is_none() {
            self.verified_order.push_back(digest);
        }
    }

    /// A peer is ahead: ask it for the blocks above our tip (at most once per backoff).
    fn request_sync(&mut self, peer: NodeId, ctx: &mut Context<Packet>) {
        let now = ctx.now();
        if self
            .last_sync_request
            .is_some_and(|at| now < at + self.spec.timing.sync_backoff_ms)
        {
            return;
        }
        self.last_sync_request = Some(now);
        self.stats.sync_requests += 1;
        let from_height = self.durable.tip_height() + 1;
        self.send(peer, Packet::SyncRequest { from_height }, ctx);
    }

    /// A peer still works on a height we finalized: send it the certified blocks from there.
    fn push_finalized(&mut self, peer: NodeId, height: Height, ctx: &mut Context<Packet>) {
        let now = ctx.now();
        if let Some((h, at)) = self.pushed.get(&peer)
            && *h == height
            && now < at + self.spec.timing.sync_backoff_ms
        {
            return;
        }
        self.pushed.insert(peer, (height, now));
        self.serve_sync(peer, height, ctx);
    }

    fn serve_sync(&mut self, peer: NodeId, from_height: Height, ctx: &mut Context<Packet>) {
        if !self.strategy.as_ref().is_none_or(|s| s.serves_sync()) {
            return;
        }
        let end = from_height.saturating_add(self.spec.timing.sync_batch);
        for height in from_height..end {
            let Some((block, certificate)) = self.durable.finalized(height) else {
                break;
            };
            let certified = CertifiedBlock {
                block: block.clone(),
                certificate: certificate.clone(),
            };
            let forged = self
                .strategy
                .as_mut()
                .and_then(|s| s.forge_sync(&certified, &outbox(&self.spec)));
            let bytes = forged.unwrap_or_else(|| certified.encode());
            self.send(peer, Packet::SyncResponse(bytes.into()), ctx);
        }
    }

    fn on_sync_response(&mut self, bytes: &[u8], ctx: &mut Context<Packet>) {
        let certified = match CertifiedBlock::decode(bytes) {
            Ok(c) => c,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let Some(current) = self.core.height() else {
            return;
        };
        let height = certified.height();
        if height < current || height >= current.saturating_add(self.spec.timing.sync_window) {
            return;
        }
        self.sync_buffer.entry(height).or_insert(certified);
        if height == current
            && let Some(input) = self.next_synced()
        {
            self.feed(input, ctx);
        }
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

/// Puts a strategy's packets on the wire (`None`: every peer).
fn dispatch(sends: Vec<(Option<NodeId>, Packet)>, ctx: &mut Context<Packet>) {
    for (to, packet) in sends {
        match to {
            Some(to) => ctx.send(to, packet),
            None => ctx.broadcast(packet),
        }
    }
}

/// The message a WAL entry records.
fn wal_message(entry: WalEntry) -> Message {
    entry.into_message()
}

/// The messages of every decodable WAL entry, in order.
fn wal_messages(durable: &DurableState) -> Vec<Message> {
    durable
        .wal_entries()
        .0
        .into_iter()
        .map(wal_message)
        .collect()
}

fn digest_of(message: &Message) -> [u8; 32] {
    *blake3::hash(&message.encode()).as_bytes()
}

impl Process for SimNode {
    type Msg = Packet;

    fn on_start(&mut self, ctx: &mut Context<Packet>) {
        ctx.set_timer(self.spec.timing.sync_interval_ms, SYNC_TOKEN);
        ctx.set_timer(self.spec.timing.tick_interval_ms, TICK_TOKEN);
        if let Some(every) = self.spec.timing.resend_interval_ms {
            ctx.set_timer(every, RESEND_TOKEN);
        }
        let height = self.durable.tip_height() + 1;
        let validators = self
            .registry
            .set_for(height)
            .unwrap_or_else(|| self.registry.current());
        self.feed(Input::StartHeight { height, validators }, ctx);
    }

    fn on_message(&mut self, from: NodeId, packet: Packet, ctx: &mut Context<Packet>) {
        if self.halted || !self.talks_to(from) {
            return;
        }
        match packet {
            Packet::Consensus(bytes) => self.on_consensus(from, &bytes, ctx),
            Packet::SyncRequest { from_height } => self.serve_sync(from, from_height, ctx),
            Packet::SyncResponse(bytes) => self.on_sync_response(&bytes, ctx),
        }
    }

    fn on_timer(&mut self, token: u64, ctx: &mut Context<Packet>) {
        if self.halted {
            return;
        }
        match token {
            SYNC_TOKEN => {
                ctx.set_timer(self.spec.timing.sync_interval_ms, SYNC_TOKEN);
                let peers: Vec<NodeId> = (0..self.spec.nodes)
                    .filter(|p| *p != self.spec.id && self.talks_to(*p))
                    .collect();
                if peers.is_empty() {
                    return;
                }
                self.sync_cursor = (self.sync_cursor + 1) % peers.len();
                if let Some(peer) = peers.get(self.sync_cursor) {
                    self.stats.sync_requests += 1;
                    let from_height = self.durable.tip_height() + 1;
                    ctx.send(*peer, Packet::SyncRequest { from_height });
                }
            }
            RESEND_TOKEN => {
                if let Some(every) = self.spec.timing.resend_interval_ms {
                    ctx.set_timer(every, RESEND_TOKEN);
                }
                let height = self.core.height();
                if height.is_some() && height == self.resend_height {
                    self.resend_wal(ctx);
                }
                self.resend_height = height;
            }
            TICK_TOKEN => {
                ctx.set_timer(self.spec.timing.tick_interval_ms, TICK_TOKEN);
                self.feed(Input::Tick { now_ms: ctx.now() }, ctx);
            }
            token => {
                if let Some(timeout) = self.timers.remove(&token) {
                    self.feed(Input::Timeout(timeout), ctx);
                }
            }
        }
    }

    fn trace_bytes(packet: &Packet) -> Vec<u8> {
        match packet {
            Packet::Consensus(bytes) => [&[1u8][..], bytes].concat(),
            Packet::SyncRequest { from_height } => {
                [&[2u8][..], &from_height.to_le_bytes()].concat()
            }
            Packet::SyncResponse(bytes) => [&[3u8][..], bytes].concat(),
        }
    }
}
