//! Running a [`StateSync`] over a real network before the node starts: the daemon's side of what the
//! simulator does in its own event loop.
//!
//! The machine decides everything; this loop only carries its sends and penalties to the
//! [`Network`], feeds it the network's events and a clock, and steps it on tokio's blocking pool (an
//! import writes pages to the store, which must not block a runtime worker). Peers that joined while it
//! ran are handed back, so the engine built afterwards learns about them as if they had just joined.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timecoin_crypto::PublicKey;
use timecoin_net::{NetEvent, Network, PeerId};
use timecoin_storage::{ChainDb, KvEngine, StorageConfig, StoreContents};
use timecoin_types::Genesis;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::statesync::{StateSync, StateSyncOutcome, StateSyncStats};
use crate::{Effect, NodeError};

/// How often the machine is given the clock.
pub const TICK: Duration = Duration::from_millis(100);

/// What a state sync over the network left.
#[derive(Debug)]
pub struct Bootstrapped<E: KvEngine> {
    /// The imported chain, or the empty engine to open from genesis.
    pub outcome: StateSyncOutcome<E>,
    /// Counters of the sync.
    pub stats: StateSyncStats,
    /// Peers still connected when it ended, with the operator key each proved, in the order they
    /// joined.
    pub peers: Vec<(PeerId, Option<PublicKey>)>,
}

impl<E: KvEngine> Bootstrapped<E> {
    /// The network's receiver, preceded by a `Joined` for every peer still connected: what to hand
    /// [`crate::runner::spawn`] so the engine starts knowing its peers. The first `peers.len()` events
    /// are queued at once; the rest are forwarded by a task on the current runtime.
    pub fn events_for_engine(
        &self,
        mut events: mpsc::Receiver<NetEvent>,
        capacity: usize,
    ) -> mpsc::Receiver<NetEvent> {
        let (tx, rx) = mpsc::channel(capacity.max(self.peers.len()).max(1));
        for (peer, masternode) in &self.peers {
            // Room was made for every one of them above.
            let _ = tx.try_send(NetEvent::Joined {
                peer: *peer,
                masternode: *masternode,
            });
        }
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// A store engine made ready for a node: a chain to build on, or an empty engine to state-sync into.
#[derive(Debug)]
pub enum PreparedStore<E: KvEngine> {
    /// The chain the engine holds (or, with state sync off, a chain opened from genesis).
    Chain(ChainDb<E>),
    /// Empty, and state sync is on: run [`run_state_sync`] into it.
    Empty(E),
}

/// Opens `engine` for a node. A chain is opened. An unfinished snapshot import is discarded: the sync
/// that wrote it is gone with its verified header walk, and a new one starts from the peers' tips of
/// now. An empty engine is handed back for a state sync when `state_sync` is on, else opened from
/// genesis.
pub fn prepare_store<E: KvEngine>(
    engine: E,
    config: &StorageConfig,
    genesis: &Genesis,
    state_sync: bool,
) -> Result<PreparedStore<E>, NodeError> {
    let engine = match StoreContents::of(&engine)? {
        StoreContents::Chain | StoreContents::Unknown => {
            // `open` takes a chain, and names what is wrong with anything else.
            return Ok(PreparedStore::Chain(ChainDb::open(
                engine, config, genesis,
            )?));
        }
        StoreContents::UnfinishedImport => {
            warn!("discarding an unfinished snapshot import; state sync starts over");
            ChainDb::resume_import(engine, config, genesis)?.discard()?
        }
        StoreContents::Empty => engine,
    };
    if state_sync {
        Ok(PreparedStore::Empty(engine))
    } else {
        Ok(PreparedStore::Chain(ChainDb::open(
            engine, config, genesis,
        )?))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `sync` until it ends, over `network` and its `events`. `known` are peers that joined before
/// (their `Joined` events already taken from `events`).
pub async fn run_state_sync<E: KvEngine + Send + 'static>(
    sync: StateSync<E>,
    network: Arc<dyn Network>,
    events: &mut mpsc::Receiver<NetEvent>,
    known: Vec<(PeerId, Option<PublicKey>)>,
) -> Result<Bootstrapped<E>, NodeError> {
    let mut sync = Some(sync);
    let mut peers: BTreeMap<PeerId, (u64, Option<PublicKey>)> = BTreeMap::new();
    let mut joined = 0u64;
    let mut pending: Vec<NetEvent> = known
        .into_iter()
        .map(|(peer, masternode)| NetEvent::Joined { peer, masternode })
        .collect();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let step: Option<NetEvent> = if let Some(event) = pending.pop() {
            Some(event)
        } else {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => Some(event),
                    None => return Err(NodeError::Halted("the network closed during state sync".into())),
                },
                _ = tick.tick() => None,
            }
        };
        if let Some(event) = &step {
            match event {
                NetEvent::Joined { peer, masternode } => {
                    joined += 1;
                    peers.insert(*peer, (joined, *masternode));
                }
                NetEvent::Left(peer) => {
                    peers.remove(peer);
                }
                NetEvent::Message { .. } => {}
            }
        }
        let mut machine = sync
            .take()
            .ok_or_else(|| NodeError::Halted("state sync lost its machine".into()))?;
        let (machine, effects) = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let effects = match step {
                Some(event) => machine.on_net(now, event),
                None => machine.on_tick(now),
            };
            (machine, effects)
        })
        .await
        .map_err(|e| NodeError::Halted(format!("state sync step failed: {e}")))?;
        for effect in effects {
            match effect {
                Effect::Send { to, channel, bytes } => {
                    if let Err(e) = network.send(&to, channel, bytes) {
                        debug!(%to, %e, "state sync send failed");
                    }
                }
                Effect::Penalize { peer, misbehavior } => network.report(&peer, misbehavior),
                _ => {}
            }
        }
        let mut machine = machine;
        if machine.is_done() {
            let stats = machine.stats();
            let outcome = machine
                .take_outcome()
                .ok_or_else(|| NodeError::Halted("state sync ended without a store".into()))?;
            let mut peers: Vec<(u64, PeerId, Option<PublicKey>)> = peers
                .into_iter()
                .map(|(peer, (order, key))| (order, peer, key))
                .collect();
            peers.sort_unstable_by_key(|(order, _, _)| *order);
            return Ok(Bootstrapped {
                outcome,
                stats,
                peers: peers.into_iter().map(|(_, p, k)| (p, k)).collect(),
            });
        }
        sync = Some(machine);
    }
}
