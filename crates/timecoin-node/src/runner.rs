//! The loop that owns a [`Node`] in a real process: network events, local requests and timers in; the
//! engine's effects carried out on a tokio runtime.
//!
//! The engine blocks (it writes the WAL and applies blocks durably, and verifies signatures on rayon),
//! so it runs on a thread of its own and never on a tokio worker. Everything reaches that thread through
//! one bounded inbox, and everything it asks for (a timer, a reply) is handed back to the runtime. The
//! shape follows an actor: [`NodeHandle`] is the mailbox, [`spawn`] starts the loop, and the state
//! machine it drives is the [`Engine`](crate::Engine) the simulator tests.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timecoin_net::NetEvent;
use timecoin_types::{Transaction, TxId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{Effect, Event, Node, NodeError, NodeStatus, RequestId, TimerId};

/// Messages waiting for the engine thread, from the network, timers and local callers together. When
/// it is full, network events wait in the network's own bounded queue (back-pressure), and a local
/// caller waits for room.
pub const INBOX_CAPACITY: usize = 4096;

/// Most messages the engine takes in one batch: consensus messages in one batch have their signatures
/// checked together.
pub const MAX_BATCH: usize = 256;

/// What a caller can ask of a running node.
enum Command {
    Submit {
        tx: Transaction,
        reply: oneshot::Sender<Result<TxId, String>>,
    },
    Status(oneshot::Sender<NodeStatus>),
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
    let handle = NodeHandle {
        inbox: inbox.clone(),
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
        .spawn(move || run(node, &mut queue, &timers, &runtime))
        .map_err(|e| NodeError::Halted(format!("cannot start the engine thread: {e}")))?;
    Ok((handle, thread))
}

fn run(
    mut node: Node,
    queue: &mut mpsc::Receiver<Incoming>,
    timers: &mpsc::WeakSender<Incoming>,
    runtime: &tokio::runtime::Handle,
) {
    let mut replies: BTreeMap<RequestId, oneshot::Sender<Result<TxId, String>>> = BTreeMap::new();
    let mut next_request: RequestId = 0;
    let effects = node.handle(now_ms(), Event::Start);
    carry_out(effects, &mut replies, timers, runtime);
    info!(height = node.engine().finalized_height(), "engine started");
    while let Some(first) = queue.blocking_recv() {
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
                    replies.insert(next_request, reply);
                    events.push(Event::Submit {
                        request: next_request,
                        tx,
                    });
                }
                Incoming::Command(Command::Status(reply)) => {
                    // Answered after the events before it in this batch have been handled.
                    let effects = node.handle_batch(now_ms(), std::mem::take(&mut events));
                    carry_out(effects, &mut replies, timers, runtime);
                    let _ = reply.send(node.engine().status());
                }
                Incoming::Command(Command::Stop) => stop = true,
            }
        }
        let effects = node.handle_batch(now_ms(), events);
        carry_out(effects, &mut replies, timers, runtime);
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

/// Carries out what [`Node::handle`] leaves to the host. Every submission is answered in the same call
/// that handled it, so `replies` holds at most one batch's submissions.
fn carry_out(
    effects: Vec<Effect>,
    replies: &mut BTreeMap<RequestId, oneshot::Sender<Result<TxId, String>>>,
    timers: &mpsc::WeakSender<Incoming>,
    runtime: &tokio::runtime::Handle,
) {
    for effect in effects {
        match effect {
            Effect::SetTimer { timer, after } => {
                // Weak while it sleeps, so pending timers do not keep a node alive that every handle
                // has let go of.
                let inbox = timers.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(after.max(Duration::from_millis(1))).await;
                    if let Some(inbox) = inbox.upgrade() {
                        let _ = inbox.send(Incoming::Timer(timer)).await;
                    }
                });
            }
            Effect::Reply { request, result } => {
                if let Some(reply) = replies.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Effect::Finalized {
                height,
                hash,
                transactions,
            } => debug!(height, %hash, transactions, "final"),
            Effect::Penalize { peer, misbehavior } => {
                debug!(%peer, ?misbehavior, "peer penalized");
            }
            // `Node` sends these itself.
            Effect::Send { .. } | Effect::Broadcast { .. } => {}
        }
    }
}
