//! State sync: how a new node gets the chain's state at a recent height without replaying every block.
//!
//! A sans-I/O state machine, like the [`Engine`](crate::Engine): network events and the clock in,
//! [`Effect::Send`] and [`Effect::Penalize`] out, and a [`StateSyncOutcome`] at the end. A host runs it
//! *before* it builds the node, on an empty store engine, and then builds the node on what it returns:
//! the imported chain, or the empty engine back (open it from genesis and block-sync, the fallback when
//! no peer is far enough ahead or none serves a snapshot). The simulator and the daemon run this same
//! machine.
//!
//! The steps, each checked before anything from it is used:
//! 1. **Tips.** Ask every peer for its tip (a block request for nothing, which is answered with a
//!    status), and after [`StateSyncConfig::status_wait`] pick the highest tip `T` reported. Below
//!    [`StateSyncConfig::min_lag`], fall back.
//! 2. **Headers.** Walk certified headers from genesis to `T`. Each must extend the last (height,
//!    parent, chain), carry a certificate valid for the set the walk's registry gives for its height,
//!    and a `validators_hash` equal to the registry's schedule after it. The registry advances from the
//!    headers alone while the hash stays put; where it moves, the server attaches the body, whose roots
//!    must match the header, and the registry applies it. So the node knows every height's set without
//!    trusting anyone's word for it.
//! 3. **Base.** Fetch block `T` and check it is the header the walk certified.
//! 4. **Pages.** Import the UTXO set at `T` page by page ([`ChainDb::import_snapshot`]), rotating over the
//!    peers at `T`. A page that breaks the store's rules is refused and its server penalised; the page is
//!    asked again elsewhere. The whole set is checked against `T`'s `utxo_commitment` at the end. If it
//!    does not match, some page lied in a way no single page shows: the import is discarded and run again
//!    from one peer alone; that peer is the liar if it fails too, and otherwise every peer whose page
//!    differs from the honest one at the same cursor is.
//! 5. **Finish.** The registry the walk built and the reward pool (what the supply identity leaves) are
//!    written with the chain in the import's last batch, so the engine resumes from them as after a
//!    restart.
//!
//! A page can only be read at the server's tip (the store has no older views of the set), so a chain
//! that moves while pages are fetched makes the node walk on to the new tip and start the pages again;
//! after [`StateSyncConfig::max_restarts`] such restarts it falls back to block sync.
//!
//! Memory: the walk keeps one registry and the last header; the import one page; the page digests of
//! one failed attempt (at most [`MAX_TRACKED_PAGES`]).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use timecoin_consensus::{ConsensusError, RegistryUpdate, ValidatorRegistry};
use timecoin_crypto::{Hash, HashDomain, hash};
use timecoin_net::{Channel, Misbehavior, NetEvent, PeerId};
use timecoin_storage::{
    CertifiedBase, ChainDb, ChainTip, HostRecord, KvEngine, SnapshotImport, StorageConfig,
    StorageError, UtxoPage,
};
use timecoin_types::{
    Amount, BlockHash, BlockHeader, ChainId, CommitCertificate, Genesis, Height, OutPoint,
    WellFormedBlock, Wire,
};
use tracing::{debug, info, warn};

use crate::engine::rewards;
use crate::engine::{REGISTRY_RECORD, REWARD_POOL_RECORD};
use crate::wire::{MAX_HEADERS_PER_MESSAGE, SnapshotPage, SyncMessage, SyncedHeader};
use crate::{Effect, NodeError};

/// With no header, base or page accepted for this many request timeouts, the sync gives up and falls
/// back to block sync (every peer left, lies or stalls).
pub const STALL_TIMEOUTS: u64 = 10;

/// Timeouts in a row after which a peer is no longer asked (see `PeerState::strikes`).
pub const MAX_STRIKES: u32 = 3;

/// Pages of one failed attempt remembered to find the liar afterwards (about 48 bytes each); past it,
/// only a single-peer attempt can tell who lied.
pub const MAX_TRACKED_PAGES: usize = 100_000;

/// State sync settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSyncConfig {
    /// A snapshot is fetched only if a peer's tip is at least this high; otherwise the node block-syncs
    /// from genesis (replaying a short chain costs less than the walk and the import).
    pub min_lag: Height,
    /// How long to collect peers' tips before choosing the height to sync to.
    pub status_wait: Duration,
    /// A request unanswered for this long is asked of another peer.
    pub request_timeout: Duration,
    /// Outputs asked per page (seed: 1000).
    pub page_size: u32,
    /// Headers asked per request.
    pub header_batch: u32,
    /// Imports begun before giving up and falling back to block sync (the chain kept moving, or every
    /// peer lied).
    pub max_restarts: u32,
    /// Peers tracked; more are ignored.
    pub max_peers: usize,
}

impl Default for StateSyncConfig {
    fn default() -> Self {
        StateSyncConfig {
            min_lag: 1_000,
            status_wait: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            page_size: u32::try_from(timecoin_storage::DEFAULT_UTXO_PAGE).unwrap_or(1_000),
            header_batch: MAX_HEADERS_PER_MESSAGE,
            max_restarts: 8,
            max_peers: 256,
        }
    }
}

/// How a state sync ended.
pub enum StateSyncOutcome<E: KvEngine> {
    /// The chain at the base height, with the registry and the reward pool beside it: build the node on
    /// it and block-sync from `base + 1`.
    Imported(ChainDb<E>),
    /// No snapshot (no peer far enough ahead, or none served one): the engine, empty, to open from
    /// genesis.
    Fallback(E),
}

impl<E: KvEngine> std::fmt::Debug for StateSyncOutcome<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateSyncOutcome::Imported(db) => f
                .debug_tuple("Imported")
                .field(&timecoin_storage::BlockStore::tip(db).map(|t| t.height))
                .finish(),
            StateSyncOutcome::Fallback(_) => f.write_str("Fallback"),
        }
    }
}

/// Counters, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSyncStats {
    /// Headers verified on the walk.
    pub headers: u64,
    /// Bodies applied to the walk's registry (the schedule hash moved).
    pub bodies: u64,
    /// Pages accepted into an import.
    pub pages: u64,
    /// Pages the store refused (broke a rule).
    pub pages_refused: u64,
    /// Imports whose set did not match the commitment.
    pub mismatches: u64,
    /// Imports begun.
    pub imports: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Penalties given.
    pub penalties: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Collecting tips.
    Waiting,
    /// Walking headers to the target.
    Headers,
    /// Fetching the target block.
    Base,
    /// Importing pages.
    Pages,
    /// Over; the outcome is ready.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Headers,
    Base,
    Page,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    peer: PeerId,
    sent_at: u64,
    asked: Asked,
}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    tip: Option<Height>,
    /// Penalised: never asked again.
    banned: bool,
    /// It answered a header request with none (it started from a snapshot itself): not asked for
    /// headers again.
    no_headers: bool,
    /// When it was last asked for its tip.
    tip_asked_at: Option<u64>,
    /// Requests it let time out since it last answered one; at [`MAX_STRIKES`] it is asked nothing
    /// more and its tip no longer counts (a peer that claims a high tip and never serves it cannot hold
    /// the sync hostage).
    strikes: u32,
}

impl PeerState {
    /// Whether it may be asked, and its tip believed.
    fn usable(&self) -> bool {
        !self.banned && self.strikes < MAX_STRIKES
    }
}

/// Who served a page of an import, and what it held.
#[derive(Clone, Copy, Debug)]
struct Served {
    after: Option<OutPoint>,
    digest: Hash,
    peer: PeerId,
}

/// The walk: a registry advanced header by header from genesis, and the last certified header.
struct Walk {
    registry: ValidatorRegistry,
    height: Height,
    hash: BlockHash,
    schedule: Hash,
    last: Option<(BlockHeader, CommitCertificate)>,
}

/// The state-sync machine; see the [module docs](self).
pub struct StateSync<E: KvEngine> {
    config: StateSyncConfig,
    storage: StorageConfig,
    genesis: Genesis,
    chain: ChainId,
    genesis_total: Amount,
    started: Option<u64>,
    now: u64,
    phase: Phase,
    peers: BTreeMap<PeerId, PeerState>,
    outstanding: Option<Outstanding>,
    cursor: usize,
    walk: Walk,
    target: Height,
    engine: Option<E>,
    import: Option<SnapshotImport<E>>,
    /// The verified base block, kept to import again after a failed attempt.
    base: Option<CertifiedBase>,
    /// The running total of the outputs imported (for the reward pool).
    imported_total: Amount,
    /// Pages of the current attempt.
    served: Vec<Served>,
    /// Pages of the last attempt that failed the commitment check, to compare with an honest attempt.
    suspect: Vec<Served>,
    /// The one peer serving every page of this attempt, after a failed one.
    single: Option<PeerId>,
    restarts: u32,
    /// When the sync last moved forward (a header, the base or a page accepted).
    progress_at: u64,
    outcome: Option<StateSyncOutcome<E>>,
    stats: StateSyncStats,
    effects: Vec<Effect>,
}

impl<E: KvEngine> std::fmt::Debug for StateSync<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSync")
            .field("phase", &self.phase)
            .field("target", &self.target)
            .field("walked", &self.walk.height)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<E: KvEngine> StateSync<E> {
    /// A state sync into `engine`, which must hold nothing (the import refuses otherwise).
    pub fn new(
        config: StateSyncConfig,
        storage: StorageConfig,
        genesis: Genesis,
        engine: E,
    ) -> Result<Self, NodeError> {
        if config.page_size == 0 || config.header_batch == 0 || config.max_peers == 0 {
            return Err(NodeError::Config(
                "state sync: page size, header batch and peers must be above 0".into(),
            ));
        }
        let registry = ValidatorRegistry::from_genesis(&genesis)?;
        let genesis_block = genesis.block();
        let genesis_total = rewards::genesis_total(&genesis)?;
        Ok(StateSync {
            chain: genesis.params.chain_id,
            walk: Walk {
                registry,
                height: 0,
                hash: genesis_block.hash(),
                schedule: genesis_block.header.validators_hash,
                last: None,
            },
            config,
            storage,
            genesis,
            genesis_total,
            started: None,
            now: 0,
            phase: Phase::Waiting,
            peers: BTreeMap::new(),
            outstanding: None,
            cursor: 0,
            target: 0,
            engine: Some(engine),
            import: None,
            base: None,
            imported_total: Amount::ZERO,
            served: Vec::new(),
            suspect: Vec::new(),
            single: None,
            restarts: 0,
            progress_at: 0,
            outcome: None,
            stats: StateSyncStats::default(),
            effects: Vec::new(),
        })
    }

    /// Whether the outcome is ready ([`take_outcome`](Self::take_outcome)).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The outcome, once [`is_done`](Self::is_done).
    pub fn take_outcome(&mut self) -> Option<StateSyncOutcome<E>> {
        self.outcome.take()
    }

    /// Counters so far.
    pub fn stats(&self) -> StateSyncStats {
        self.stats
    }

    /// The height being synced to (0 until chosen).
    pub fn target(&self) -> Height {
        self.target
    }

    /// Peers penalised so far.
    pub fn banned(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, s)| s.banned)
            .map(|(p, _)| *p)
            .collect()
    }

    /// A network event (only the sync channel is read; the rest waits for the engine).
    pub fn on_net(&mut self, now_ms: u64, event: NetEvent) -> Vec<Effect> {
        self.clock(now_ms);
        match event {
            NetEvent::Joined { peer, .. } => {
                if self.peers.len() < self.config.max_peers || self.peers.contains_key(&peer) {
                    self.peers.entry(peer).or_default();
                    if self.phase != Phase::Done {
                        self.ask_tip(peer);
                    }
                }
            }
            NetEvent::Left(peer) => {
                self.peers.remove(&peer);
                if self.outstanding.is_some_and(|o| o.peer == peer) {
                    self.outstanding = None;
                    self.ask();
                }
            }
            NetEvent::Message {
                from,
                channel: Channel::Sync,
                bytes,
            } => self.on_message(from, &bytes),
            NetEvent::Message { .. } => {}
        }
        std::mem::take(&mut self.effects)
    }

    /// The clock: decides after the status wait, and retries a request that timed out.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Effect> {
        self.clock(now_ms);
        match self.phase {
            Phase::Waiting => {
                let started = self.started.unwrap_or(now_ms);
                if now_ms >= started.saturating_add(ms(self.config.status_wait)) {
                    self.decide();
                } else if self.peers.values().any(|s| s.tip.is_none()) {
                    // An ask or its answer may have been lost.
                    self.refresh_tips();
                }
            }
            Phase::Done => {}
            _ if now_ms
                >= self.progress_at.saturating_add(
                    STALL_TIMEOUTS.saturating_mul(ms(self.config.request_timeout)),
                ) =>
            {
                warn!(phase = ?self.phase, "state sync: no progress; falling back to block sync");
                self.fall_back();
            }
            _ => {
                if let Some(out) = self.outstanding
                    && now_ms >= out.sent_at.saturating_add(ms(self.config.request_timeout))
                {
                    debug!(peer = %out.peer, asked = ?out.asked, "state sync request timed out");
                    self.stats.timeouts += 1;
                    self.outstanding = None;
                    if let Some(state) = self.peers.get_mut(&out.peer) {
                        state.strikes = state.strikes.saturating_add(1);
                    }
                    // Not a penalty (it may be slow), but the next request goes elsewhere.
                    self.cursor = self.cursor.wrapping_add(1);
                    if self.single == Some(out.peer) {
                        self.single = None;
                    }
                    self.ask();
                } else if self.outstanding.is_none() {
                    self.ask();
                }
            }
        }
        std::mem::take(&mut self.effects)
    }

    fn clock(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
        if self.started.is_none() {
            self.started = Some(now_ms);
        }
    }

    /// Asks every usable peer for its tip, each at most once per quarter request timeout.
    fn refresh_tips(&mut self) {
        let retry = ms(self.config.request_timeout) / 4;
        let now = self.now;
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| {
                s.usable()
                    && s.tip_asked_at
                        .is_none_or(|at| now >= at.saturating_add(retry))
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in stale {
            self.ask_tip(peer);
        }
    }

    /// A block request for nothing: answered with the peer's status alone.
    fn ask_tip(&mut self, peer: PeerId) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.tip_asked_at = Some(self.now);
        }
        self.send(peer, &SyncMessage::Request { from: 1, count: 0 });
    }

    fn send(&mut self, to: PeerId, message: &SyncMessage) {
        self.effects.push(Effect::Send {
            to,
            channel: Channel::Sync,
            bytes: Bytes::from(message.encode()),
        });
    }

    fn penalize(&mut self, peer: PeerId, misbehavior: Misbehavior, why: &str) {
        warn!(%peer, ?misbehavior, why, "state sync: peer penalised");
        self.stats.penalties += 1;
        if let Some(state) = self.peers.get_mut(&peer) {
            state.banned = true;
        }
        if self.single == Some(peer) {
            self.single = None;
        }
        self.effects.push(Effect::Penalize { peer, misbehavior });
    }

    fn best_tip(&self) -> Option<Height> {
        self.peers
            .values()
            .filter(|s| s.usable())
            .filter_map(|s| s.tip)
            .max()
    }

    /// The highest tip of a peer that could serve the headers up to it.
    fn best_header_tip(&self) -> Option<Height> {
        self.peers
            .values()
            .filter(|s| s.usable() && !s.no_headers)
            .filter_map(|s| s.tip)
            .max()
    }

    fn decide(&mut self) {
        match self.best_tip() {
            Some(tip) if tip >= self.config.min_lag && tip > 0 => {
                info!(target = tip, "state sync: walking certified headers");
                self.target = tip;
                self.phase = Phase::Headers;
                self.progress_at = self.now;
                self.ask();
            }
            best => {
                info!(
                    ?best,
                    min = self.config.min_lag,
                    "state sync: no peer far enough ahead; block sync from genesis"
                );
                self.fall_back();
            }
        }
    }

    fn fall_back(&mut self) {
        self.outstanding = None;
        let engine = match (self.engine.take(), self.import.take()) {
            (Some(engine), _) => Some(engine),
            (None, Some(import)) => match import.discard() {
                Ok(engine) => Some(engine),
                Err(e) => {
                    warn!(%e, "state sync: cannot discard the import");
                    None
                }
            },
            (None, None) => None,
        };
        self.phase = Phase::Done;
        self.outcome = engine.map(StateSyncOutcome::Fallback);
    }

    /// A peer to ask for `asked`: the single one if set, else the next in turn among those not banned
    /// that can answer (a tip at or above what is asked; exactly the target for a page, which is read
    /// at the server's tip).
    fn pick(&mut self, asked: Asked, height: Height) -> Option<PeerId> {
        if let Some(peer) = self.single {
            return Some(peer);
        }
        let candidates: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| {
                s.usable()
                    && match asked {
                        Asked::Headers => !s.no_headers && s.tip.is_some_and(|t| t >= height),
                        Asked::Base => s.tip.is_some_and(|t| t >= height),
                        Asked::Page => s.tip == Some(height),
                    }
            })
            .map(|(p, _)| *p)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        self.cursor = self.cursor.wrapping_add(1);
        candidates.get(self.cursor % candidates.len()).copied()
    }

    /// Sends the request the phase needs next, unless one is out.
    fn ask(&mut self) {
        if self.outstanding.is_some() {
            return;
        }
        let (asked, at_least, message) = match self.phase {
            Phase::Waiting | Phase::Done => return,
            Phase::Headers => {
                let from = self.walk.height.saturating_add(1);
                let count = self.config.header_batch.min(MAX_HEADERS_PER_MESSAGE).min(
                    u32::try_from(self.target.saturating_sub(self.walk.height)).unwrap_or(u32::MAX),
                );
                (
                    Asked::Headers,
                    from,
                    SyncMessage::HeadersRequest { from, count },
                )
            }
            Phase::Base => (
                Asked::Base,
                self.target,
                SyncMessage::Request {
                    from: self.target,
                    count: 1,
                },
            ),
            Phase::Pages => {
                let after = self.import.as_ref().and_then(SnapshotImport::cursor);
                (
                    Asked::Page,
                    self.target,
                    SyncMessage::PageRequest {
                        height: self.target,
                        after,
                        limit: self.config.page_size,
                    },
                )
            }
        };
        let Some(peer) = self.pick(asked, at_least) else {
            if self.phase == Phase::Headers
                && self.walk.height >= self.config.min_lag.max(1)
                && self.best_header_tip().is_none_or(|t| t <= self.walk.height)
            {
                // Nobody serves headers past the walk (the target came from a tip claimed and never
                // served, or the peers that had it left): sync to where the walk got.
                info!(
                    claimed = self.target,
                    walked = self.walk.height,
                    "state sync: no headers past the walk; syncing to it"
                );
                self.target = self.walk.height;
                self.phase = Phase::Base;
                self.ask();
                return;
            }
            if matches!(self.phase, Phase::Pages | Phase::Base) {
                // Nobody we know of is at the target any more: if someone is past it, the chain moved on.
                self.retarget();
            }
            if self.outstanding.is_none() {
                // What we know of the peers' tips may be stale (or an answer was lost): ask again.
                debug!(phase = ?self.phase, "state sync: no peer to ask; asking for tips");
                self.refresh_tips();
            }
            return;
        };
        self.outstanding = Some(Outstanding {
            peer,
            sent_at: self.now,
            asked,
        });
        self.send(peer, &message);
    }

    fn is_asked(&self, from: PeerId, asked: Asked) -> bool {
        self.outstanding
            .is_some_and(|o| o.peer == from && o.asked == asked)
    }

    fn answered(&mut self, from: PeerId, asked: Asked) -> bool {
        if self.is_asked(from, asked) {
            if let Some(state) = self.peers.get_mut(&from) {
                state.strikes = 0;
            }
            self.outstanding = None;
            true
        } else {
            false
        }
    }

    fn on_message(&mut self, from: PeerId, bytes: &[u8]) {
        if !self.peers.contains_key(&from) || self.phase == Phase::Done {
            return;
        }
        let message = match SyncMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                debug!(%from, %e, "state sync: undecodable message");
                if self.outstanding.is_some_and(|o| o.peer == from) {
                    self.outstanding = None;
                }
                self.penalize(from, Misbehavior::Malformed, "undecodable sync message");
                self.ask();
                return;
            }
        };
        match message {
            SyncMessage::Status { height } => {
                if let Some(state) = self.peers.get_mut(&from) {
                    state.tip = Some(state.tip.map_or(height, |t| t.max(height)));
                }
                if self.outstanding.is_none() {
                    self.ask();
                }
            }
            // An answer is taken only from the peer asked and only if it answers what was asked: a late
            // or duplicated answer to an earlier request is ignored, not held against its sender.
            SyncMessage::Headers(headers) => {
                let current = headers
                    .first()
                    .is_none_or(|h| h.header.height == self.walk.height.saturating_add(1));
                if current && self.answered(from, Asked::Headers) {
                    self.on_headers(from, headers);
                }
            }
            SyncMessage::Block(certified) => {
                if certified.height() == self.target
                    && self.phase == Phase::Base
                    && self.answered(from, Asked::Base)
                {
                    self.on_base(from, certified);
                }
            }
            SyncMessage::Page { compressed } => {
                if !self.is_asked(from, Asked::Page) {
                    return;
                }
                match SnapshotPage::from_compressed(&compressed) {
                    Ok(page) => {
                        let cursor = self.import.as_ref().and_then(SnapshotImport::cursor);
                        if page.height == self.target && page.after == cursor {
                            self.outstanding = None;
                            if let Some(state) = self.peers.get_mut(&from) {
                                state.strikes = 0;
                            }
                            self.on_page(from, page, &compressed);
                        }
                    }
                    Err(e) => {
                        debug!(%from, %e, "state sync: bad page");
                        self.outstanding = None;
                        self.stats.pages_refused += 1;
                        self.penalize(from, Misbehavior::Malformed, "undecodable page");
                    }
                }
            }
            SyncMessage::PageUnavailable { tip } => {
                if self.answered(from, Asked::Page) {
                    if let Some(state) = self.peers.get_mut(&from) {
                        state.tip = Some(tip);
                    }
                    if self.single == Some(from) {
                        self.single = None;
                    }
                }
            }
            // Requests: a node without a chain serves nothing (the engine will, once built).
            SyncMessage::Request { .. }
            | SyncMessage::HeadersRequest { .. }
            | SyncMessage::PageRequest { .. } => {}
        }
        self.ask();
    }

    fn on_headers(&mut self, from: PeerId, headers: Vec<SyncedHeader>) {
        if headers.is_empty() {
            // It has no headers there (a node that itself started from a snapshot): ask another.
            if let Some(state) = self.peers.get_mut(&from) {
                state.no_headers = true;
            }
            return;
        }
        if headers.len() > MAX_HEADERS_PER_MESSAGE as usize {
            self.penalize(from, Misbehavior::BadSync, "too many headers");
            return;
        }
        for synced in headers {
            if self.walk.height >= self.target {
                break;
            }
            if let Err(why) = self.walk_one(synced) {
                debug!(%from, why, "state sync: header refused");
                self.penalize(from, Misbehavior::BadSync, why);
                return;
            }
        }
        if self.walk.height >= self.target {
            info!(
                height = self.walk.height,
                "state sync: headers verified; fetching the base block"
            );
            self.phase = Phase::Base;
        }
    }

    /// Checks one header against the walk and advances it.
    fn walk_one(&mut self, synced: SyncedHeader) -> Result<(), &'static str> {
        let SyncedHeader {
            header,
            certificate,
            body,
        } = synced;
        let height = self.walk.height.saturating_add(1);
        if header.chain_id != self.chain || header.height != height {
            return Err("header out of sequence");
        }
        if header.parent != self.walk.hash {
            return Err("header does not extend the walk");
        }
        let hash = header.hash();
        if certificate.height != height || certificate.block_hash != hash {
            return Err("certificate names another block");
        }
        let set = self
            .walk
            .registry
            .set_for(height)
            .ok_or("no validator set for the height")?;
        set.verify_certificate(&certificate, self.chain)
            .map_err(|_| "certificate does not verify")?;
        let update = self.schedule_after(&header, body)?;
        if update.schedule_hash() != header.validators_hash {
            return Err("validators hash does not match the schedule");
        }
        self.walk.registry.commit(update);
        self.walk.height = height;
        self.walk.hash = hash;
        self.walk.schedule = header.validators_hash;
        self.walk.last = Some((header, certificate));
        self.stats.headers += 1;
        self.progress_at = self.now;
        Ok(())
    }

    fn schedule_after(
        &mut self,
        header: &BlockHeader,
        body: Option<timecoin_types::Block>,
    ) -> Result<RegistryUpdate, &'static str> {
        let update: Result<RegistryUpdate, ConsensusError> = match body {
            None if header.validators_hash == self.walk.schedule => {
                self.walk.registry.prepare_unchanged(header.height)
            }
            None => return Err("the schedule moved and no body came with the header"),
            Some(block) => {
                if block.header != *header {
                    return Err("the body belongs to another header");
                }
                let block = WellFormedBlock::check(block)
                    .map_err(|_| "the body does not match its header")?;
                self.stats.bodies += 1;
                self.walk.registry.prepare(&block)
            }
        };
        update.map_err(|_| "the registry refused the block")
    }

    fn on_base(&mut self, from: PeerId, certified: timecoin_consensus::CertifiedBlock) {
        let Some((header, certificate)) = self.walk.last.clone() else {
            return;
        };
        if certified.block.hash() != header.hash() {
            self.penalize(
                from,
                Misbehavior::BadSync,
                "base block is not the certified header",
            );
            return;
        }
        let base = CertifiedBase {
            block: certified.block,
            certificate,
        };
        self.progress_at = self.now;
        self.begin_import(&base);
        self.base = Some(base);
    }

    fn begin_import(&mut self, base: &CertifiedBase) {
        let Some(engine) = self.engine.take() else {
            return;
        };
        match ChainDb::import_snapshot(engine, &self.storage, &self.genesis, base) {
            Ok(import) => {
                self.stats.imports += 1;
                self.import = Some(import);
                self.imported_total = Amount::ZERO;
                self.served.clear();
                self.phase = Phase::Pages;
                info!(height = self.target, single = ?self.single, "state sync: importing the UTXO set");
                // Pages are read at a server's tip: learn who is at the target now (tips heard while
                // choosing it may be a height behind), so the pages spread over all of them.
                self.refresh_tips();
            }
            Err(e) => {
                // The engine is gone with the refusal (it was not empty, or a write failed): nothing to
                // fall back on either.
                warn!(%e, "state sync: the store refused the import");
                self.phase = Phase::Done;
            }
        }
    }

    fn on_page(&mut self, from: PeerId, page: SnapshotPage, compressed: &[u8]) {
        let Some(import) = self.import.as_mut() else {
            return;
        };
        let base = import.base();
        if page.hash != base.hash {
            // The block of that height is certified: a page read at another block is a lie.
            self.stats.pages_refused += 1;
            self.penalize(from, Misbehavior::BadSync, "page of another block");
            return;
        }
        let after = import.cursor();
        let page_total = Amount::checked_sum(page.entries.iter().map(|(_, out)| out.amount));
        let page = UtxoPage {
            tip: ChainTip {
                height: page.height,
                hash: page.hash,
            },
            entries: page.entries,
            next: page.next,
        };
        match import.add_page(&page) {
            Ok(()) => {}
            Err(StorageError::BadSyncPage { .. }) => {
                self.stats.pages_refused += 1;
                self.penalize(from, Misbehavior::BadSync, "page breaks the set's order");
                return;
            }
            Err(e) => {
                warn!(%e, "state sync: the store failed; falling back");
                self.fall_back();
                return;
            }
        }
        self.stats.pages += 1;
        self.progress_at = self.now;
        self.imported_total = match page_total.and_then(|t| self.imported_total.checked_add(t)) {
            Some(total) => total,
            // More than money exists: the commitment check will refuse the set.
            None => Amount::MAX,
        };
        if self.served.len() < MAX_TRACKED_PAGES {
            self.served.push(Served {
                after,
                digest: hash(HashDomain::Custom("timecoin state sync page"), compressed),
                peer: from,
            });
        }
        if import.is_complete() {
            self.finish();
        }
    }

    fn finish(&mut self) {
        let Some(import) = self.import.take() else {
            return;
        };
        let records = match self.records() {
            Ok(records) => records,
            Err(e) => {
                warn!(%e, "state sync: cannot compute the records; the set is not the honest one");
                self.mismatch(import);
                return;
            }
        };
        let named: Vec<HostRecord<'_>> = records
            .iter()
            .map(|(name, value)| HostRecord {
                name,
                value: value.as_slice(),
            })
            .collect();
        match import.finish_with(&named) {
            Ok(db) => {
                self.blame_against_honest();
                info!(height = self.target, stats = ?self.stats, "state sync: snapshot imported");
                self.phase = Phase::Done;
                self.outcome = Some(StateSyncOutcome::Imported(db));
            }
            Err(refused) => {
                let refused = *refused;
                match refused.error {
                    StorageError::CommitmentMismatch { .. } | StorageError::BadSyncPage { .. } => {
                        self.mismatch(refused.import);
                    }
                    e => {
                        warn!(%e, "state sync: the import failed; falling back");
                        self.import = Some(refused.import);
                        self.fall_back();
                    }
                }
            }
        }
    }

    /// The registry and reward pool the engine reads at its tip.
    fn records(&self) -> Result<Vec<(&'static str, Vec<u8>)>, NodeError> {
        let minted = rewards::supply_at(
            self.genesis_total,
            self.genesis.params.block_subsidy,
            self.target,
        )
        .ok_or_else(|| NodeError::Config("the supply overflows".into()))?;
        let pool = minted
            .checked_sub(self.imported_total)
            .ok_or_else(|| NodeError::Config("the set holds more than was ever minted".into()))?;
        Ok(vec![
            (REGISTRY_RECORD, self.walk.registry.snapshot().encode()),
            (REWARD_POOL_RECORD, pool.as_sat().to_le_bytes().to_vec()),
        ])
    }

    /// The set did not hash to the commitment: discard, blame a lone server, and start again from one
    /// peer alone.
    fn mismatch(&mut self, import: SnapshotImport<E>) {
        self.stats.mismatches += 1;
        let servers: Vec<PeerId> = {
            let mut s: Vec<PeerId> = self.served.iter().map(|p| p.peer).collect();
            s.sort();
            s.dedup();
            s
        };
        let Some(base) = self.base.clone() else {
            self.import = Some(import);
            self.fall_back();
            return;
        };
        if !self.discard(import) {
            return;
        }
        if let [only] = servers.as_slice() {
            // One peer served the whole set and it does not hash to the certified commitment.
            self.penalize(
                *only,
                Misbehavior::BadSync,
                "its UTXO set does not match the commitment",
            );
        } else {
            self.suspect = std::mem::take(&mut self.served);
        }
        self.served.clear();
        if self.restart_budget_spent("too many failed imports") {
            return;
        }
        self.single = self.pick(Asked::Page, self.target);
        info!(single = ?self.single, "state sync: the set did not match its commitment; importing again from one peer");
        self.begin_import(&base);
    }

    /// Deletes what `import` wrote and keeps the empty engine for the next import; `false` (and the sync
    /// over, with no store to fall back on) if the delete failed.
    fn discard(&mut self, import: SnapshotImport<E>) -> bool {
        match import.discard() {
            Ok(engine) => {
                self.engine = Some(engine);
                true
            }
            Err(e) => {
                warn!(%e, "state sync: cannot discard the import");
                self.phase = Phase::Done;
                false
            }
        }
    }

    /// Counts one more import begun again; past [`StateSyncConfig::max_restarts`] it falls back and
    /// says so (`true`).
    fn restart_budget_spent(&mut self, why: &str) -> bool {
        self.restarts += 1;
        if self.restarts <= self.config.max_restarts {
            return false;
        }
        warn!(
            restarts = self.restarts,
            why, "state sync: falling back to block sync"
        );
        self.fall_back();
        true
    }

    /// After an honest import: every peer whose page of the failed attempt differs from the honest page
    /// at the same cursor lied.
    fn blame_against_honest(&mut self) {
        if self.suspect.is_empty() {
            return;
        }
        let honest: BTreeMap<Option<OutPoint>, Hash> =
            self.served.iter().map(|s| (s.after, s.digest)).collect();
        let liars: Vec<PeerId> = self
            .suspect
            .iter()
            .filter(|s| honest.get(&s.after).is_some_and(|d| *d != s.digest))
            .map(|s| s.peer)
            .collect();
        self.suspect.clear();
        for liar in liars {
            if self.peers.get(&liar).is_some_and(|s| !s.banned) {
                self.penalize(
                    liar,
                    Misbehavior::BadSync,
                    "its page differs from the honest one",
                );
            }
        }
    }

    /// The chain moved past the target while pages were fetched: walk on to the new tip, then import
    /// again.
    fn retarget(&mut self) {
        let Some(best) = self.best_header_tip() else {
            return;
        };
        if best <= self.target {
            return;
        }
        if let Some(import) = self.import.take()
            && !self.discard(import)
        {
            return;
        }
        if self.restart_budget_spent("the chain keeps moving") {
            return;
        }
        info!(
            from = self.target,
            to = best,
            "state sync: the chain moved on; walking to the new tip"
        );
        self.target = best;
        self.base = None;
        self.served.clear();
        // Pages of another height differ from the new honest ones without anyone lying.
        self.suspect.clear();
        self.single = None;
        self.phase = Phase::Headers;
        self.ask();
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
