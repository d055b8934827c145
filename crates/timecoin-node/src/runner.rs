//! The loop that owns a [`Node`] in a real process: network events, local requests and timers in; the
//! engine's effects carried out on a tokio runtime.
//!
//! The engine blocks (it writes the WAL and applies blocks durably, and verifies signatures on rayon),
//! so it runs on a thread of its own and never on a tokio worker. Everything reaches that thread through
//! one bounded inbox, and everything it asks for (a timer, a reply) is handed back to the runtime. The
//! shape follows an actor: [`NodeHandle`] is the mailbox, [`spawn`] starts the loop, and the state
//! machine it drives is the [`Engine`](crate::Engine) the simulator tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use timecoin_net::NetEvent;
use timecoin_types::{BlockHash, Height, Transaction, TxId, View};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::{Effect, Event, Node, NodeError, NodeStatus, RequestId, TimerId};

/// Messages waiting for the engine thread, from the network, timers and local callers together. When
/// it is full, network events wait in the network's own bounded queue (back-pressure), and a local
/// caller waits for room.
pub const INBOX_CAPACITY: usize = 4096;

/// Most messages the engine takes in one batch: consensus messages in one batch have their signatures
/// checked together.
pub const MAX_BATCH: usize = 256;

/// Finalized-block notices buffered per subscriber. A subscriber that falls further behind skips the
/// oldest ones and is told how many it missed (`RecvError::Lagged`), so a slow reader never holds the
/// engine back; it can read the blocks it missed from the store.
pub const FINALIZED_CAPACITY: usize = 1024;

/// A block that became final and durable, as announced to [`NodeHandle::subscribe_finalized`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
    /// Transactions it holds.
    pub transactions: usize,
    /// From the moment this node started deciding the height (consensus was given the height) to the
    /// moment the block was durable. A height that started and ended within one batch of events (a
    /// lone validator's, a synced one) is timed from the start of that batch.
    pub latency: Duration,
}

/// Counters the loop keeps about consensus, readable without a round trip to the engine thread.
#[derive(Debug)]
pub struct LoopStats {
    started: Instant,
    view_changes: AtomicU64,
    last_finality_latency_us: AtomicU64,
    batches: AtomicU64,
}

impl LoopStats {
    fn new() -> Self {
        LoopStats {
            started: Instant::now(),
            view_changes: AtomicU64::new(0),
            last_finality_latency_us: AtomicU64::new(u64::MAX),
            batches: AtomicU64::new(0),
        }
    }

    /// When the loop started (the node's uptime counts from here).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Views this node moved past without deciding, over all heights since the loop started.
    pub fn view_changes(&self) -> u64 {
        self.view_changes.load(Ordering::Relaxed)
    }

    /// The latency of the last block this node saw from start to finality (see
    /// [`FinalizedBlock::latency`]).
    pub fn last_finality_latency(&self) -> Option<Duration> {
        match self.last_finality_latency_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Batches of events the engine handled.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

/// A question answered on the engine thread, between batches.
type Query = Box<dyn FnOnce(&Node) + Send>;

/// What a caller can ask of a running node.
enum Command {
    Submit {
        tx: Transaction,
        reply: oneshot::Sender<Result<TxId, String>>,
    },
    Status(oneshot::Sender<NodeStatus>),
    Query(Query),
    Stop,
}

enum Incoming {
    Net(NetEvent),
    Timer(TimerId),
    Command(Command),
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    inbox: mpsc::Sender<Incoming>,
    finalized: broadcast::Sender<FinalizedBlock>,
    stats: Arc<LoopStats>,
    latest: watch::Receiver<NodeStatus>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Incoming::Net(_) => "Net",
            Incoming::Timer(_) => "Timer",
            Incoming::Command(_) => "Command",
        })
    }
}

impl NodeHandle {
    /// Submits a transaction; answers with its id once the mempool holds it, or why it was refused.
    pub async fn submit(&self, tx: Transaction) -> Result<TxId, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Submit { tx, reply }).await?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(NodeError::Refused)
    }

    /// The node's status now.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Status(reply)).await?;
        answer.await.map_err(|_| stopped())
    }

    /// Runs `f` on the engine thread after the events queued before it, and returns its answer. `f`
    /// holds the engine up while it runs, so it should only read what the engine holds in memory
    /// (its status, counters, the consensus round, the validator registry) or clone the `Arc`s of the
    /// store and the mempool and return them: reading the store is for a blocking task
    /// (`spawn_blocking`), not for the engine thread and never for a tokio worker.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Node) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        let (reply, answer) = oneshot::channel();
        let query: Query = Box::new(move |node| {
            let _ = reply.send(f(node));
        });
        self.send(Command::Query(query)).await?;
        answer.await.map_err(|_| stopped())
    }

    /// Notices of every block finalized from now on, in height order; see [`FINALIZED_CAPACITY`] for
    /// what a slow subscriber misses.
    pub fn subscribe_finalized(&self) -> broadcast::Receiver<FinalizedBlock> {
        self.finalized.subscribe()
    }

    /// The status as of the end of the last batch of events, without a round trip to the engine
    /// thread: for hot paths (a check per submitted transaction) that can take a status a batch old,
    /// and that must not split the engine's batches the way [`status`](Self::status) does.
    pub fn latest_status(&self) -> NodeStatus {
        self.latest.borrow().clone()
    }

    /// The loop's own counters (uptime, view changes, the last finality latency).
    pub fn loop_stats(&self) -> &LoopStats {
        &self.stats
    }

    /// Whether the engine thread has ended (stopped, halted, or every other handle dropped).
    pub fn is_stopped(&self) -> bool {
        self.inbox.is_closed()
    }

    /// Asks the node to stop after the events already queued; the thread [`spawn`] returned then ends.
    pub async fn stop(&self) -> Result<(), NodeError> {
        self.send(Command::Stop).await
    }

    async fn send(&self, command: Command) -> Result<(), NodeError> {
        self.inbox
            .send(Incoming::Command(command))
            .await
            .map_err(|_| stopped())
    }
}

fn stopped() -> NodeError {
    NodeError::Halted("the node has stopped".into())
}

/// Milliseconds since the Unix epoch: the daemon's clock for the engine.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts `node` on a thread of its own, fed by `events` (the network's receiver) and by the returned
/// handle; timers run on `runtime`. The thread ends when [`NodeHandle::stop`] is called, when every
/// handle is dropped, or when the engine halts.
pub fn spawn(
    node: Node,
    mut events: mpsc::Receiver<NetEvent>,
    runtime: tokio::runtime::Handle,
) -> Result<(NodeHandle, JoinHandle<()>), NodeError> {
    let (inbox, mut queue) = mpsc::channel(INBOX_CAPACITY);
    let (finalized, _) = broadcast::channel(FINALIZED_CAPACITY);
    let stats = Arc::new(LoopStats::new());
    let (status, latest) = watch::channel(node.engine().status());
    let handle = NodeHandle {
        inbox: inbox.clone(),
        finalized: finalized.clone(),
        stats: stats.clone(),
        latest,
    };
    // The network's events join the inbox; awaiting room there is the back-pressure.
    let forward = inbox.downgrade();
    runtime.spawn(async move {
        while let Some(event) = events.recv().await {
            let Some(inbox) = forward.upgrade() else {
                return;
            };
            if inbox.send(Incoming::Net(event)).await.is_err() {
                return;
            }
        }
    });
    let timers = inbox.downgrade();
    let thread = std::thread::Builder::new()
        .name("timecoin-engine".into())
        .spawn(move || {
            let mut out = Outlet {
                replies: BTreeMap::new(),
                timers,
                runtime,
                finalized,
                stats,
                status,
                round: None,
                batch_started: Instant::now(),
            };
            run(node, &mut queue, &mut out);
        })
        .map_err(|e| NodeError::Halted(format!("cannot start the engine thread: {e}")))?;
    Ok((handle, thread))
}

/// Where the loop sends what the engine leaves to the host, and what it remembers between batches to
/// report consensus progress.
struct Outlet {
    /// Every submission is answered in the same call that handled it, so this holds at most one
    /// batch's submissions.
    replies: BTreeMap<RequestId, oneshot::Sender<Result<TxId, String>>>,
    timers: mpsc::WeakSender<Incoming>,
    runtime: tokio::runtime::Handle,
    finalized: broadcast::Sender<FinalizedBlock>,
    stats: Arc<LoopStats>,
    /// Where [`NodeHandle::latest_status`] reads from.
    status: watch::Sender<NodeStatus>,
    /// The height and view consensus was on after the last batch, and when this node started the
    /// height.
    round: Option<(Height, View, Instant)>,
    /// When the batch being handled began.
    batch_started: Instant,
}

fn run(mut node: Node, queue: &mut mpsc::Receiver<Incoming>, out: &mut Outlet) {
    let mut next_request: RequestId = 0;
    let effects = node.handle(now_ms(), Event::Start);
    out.carry_out(effects, &node);
    info!(height = node.engine().finalized_height(), "engine started");
    while let Some(first) = queue.blocking_recv() {
        out.batch_started = Instant::now();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        let mut stop = false;
        for incoming in batch {
            match incoming {
                Incoming::Net(event) => events.push(Event::Net(event)),
                Incoming::Timer(timer) => events.push(Event::Timer(timer)),
                Incoming::Command(Command::Submit { tx, reply }) => {
                    next_request += 1;
                    out.replies.insert(next_request, reply);
                    events.push(Event::Submit {
                        request: next_request,
                        tx,
                    });
                }
                Incoming::Command(Command::Status(reply)) => {
                    // Answered after the events before it in this batch have been handled.
                    let effects = node.handle_batch(now_ms(), std::mem::take(&mut events));
                    out.carry_out(effects, &node);
                    let _ = reply.send(node.engine().status());
                }
                Incoming::Command(Command::Query(query)) => {
                    let effects = node.handle_batch(now_ms(), std::mem::take(&mut events));
                    out.carry_out(effects, &node);
                    query(&node);
                }
                Incoming::Command(Command::Stop) => stop = true,
            }
        }
        let effects = node.handle_batch(now_ms(), events);
        out.carry_out(effects, &node);
        out.stats.batches.fetch_add(1, Ordering::Relaxed);
        out.status.send_replace(node.engine().status());
        if let Some(reason) = node.engine().failure() {
            warn!(%reason, "engine halted");
            break;
        }
        if stop {
            info!(height = node.engine().finalized_height(), "engine stopping");
            break;
        }
    }
}

impl Outlet {
    /// Carries out what [`Node::handle`] leaves to the host, then notes where consensus is.
    fn carry_out(&mut self, effects: Vec<Effect>, node: &Node) {
        for effect in effects {
            match effect {
                Effect::SetTimer { timer, after } => {
                    // Weak while it sleeps, so pending timers do not keep a node alive that every
                    // handle has let go of.
                    let inbox = self.timers.clone();
                    self.runtime.spawn(async move {
                        tokio::time::sleep(after.max(Duration::from_millis(1))).await;
                        if let Some(inbox) = inbox.upgrade() {
                            let _ = inbox.send(Incoming::Timer(timer)).await;
                        }
                    });
                }
                Effect::Reply { request, result } => {
                    if let Some(reply) = self.replies.remove(&request) {
                        let _ = reply.send(result);
                    }
                }
                Effect::Finalized {
                    height,
                    hash,
                    transactions,
                } => {
                    debug!(height, %hash, transactions, "final");
                    let since = match self.round {
                        Some((h, _, since)) if h == height => since,
                        _ => self.batch_started,
                    };
                    let latency = since.elapsed();
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX - 1);
                    self.stats
                        .last_finality_latency_us
                        .store(us, Ordering::Relaxed);
                    // Nobody listening is not an error: notices are for whoever subscribed.
                    let _ = self.finalized.send(FinalizedBlock {
                        height,
                        hash,
                        transactions,
                        latency,
                    });
                }
                Effect::Penalize { peer, misbehavior } => {
                    debug!(%peer, ?misbehavior, "peer penalized");
                }
                // `Node` sends these itself.
                Effect::Send { .. } | Effect::Broadcast { .. } => {}
            }
        }
        self.note_round(node);
    }

    /// Remembers when a height started and counts the views it moved past.
    fn note_round(&mut self, node: &Node) {
        let Some(state) = node.engine().core().round_state() else {
            return;
        };
        let (height, view) = (state.height, state.view);
        match self.round {
            Some((h, v, since)) if h == height => {
                if view > v {
                    self.stats
                        .view_changes
                        .fetch_add(u64::from(view - v), Ordering::Relaxed);
                    self.round = Some((h, view, since));
                }
            }
            _ => self.round = Some((height, view, Instant::now())),
        }
    }
}
