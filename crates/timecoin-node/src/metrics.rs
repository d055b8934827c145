//! Prometheus metrics and health checks for one node, served over HTTP on a port of their own.
//!
//! Each node has its own [`prometheus_client::registry::Registry`] (no global state, so several nodes
//! can run in one process). Gauges and counters are read from the engine when `/metrics` is scraped
//! (one round trip to the engine thread per scrape, plus the network's and the disk's figures); the
//! finality-latency histogram is fed as blocks are finalized, by a task subscribed to the runner's
//! finalized-block notices. The commit-time histogram is fed by a [`TimedStore`] around the engine's
//! chain store when the node is built with one
//! ([`NodeBuilder::commit_timer`](crate::NodeBuilder::commit_timer)): the engine reads no clock, so
//! the time is taken outside it. `docs/RPC.md` lists every metric.
//!
//! - `/metrics`: the registry in the OpenMetrics text format.
//! - `/health`: 200 while the process serves HTTP at all.
//! - `/ready`: 200 when the engine runs, at least one peer is connected and the node is at most
//!   [`MetricsConfig::ready_max_lag`] blocks behind what peers report; 503 with the reason otherwise.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use timecoin_net::{Channel, Traffic};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::rpc::{NodeContext, disk_usage};
use crate::runner::NodeHandle;
use crate::{EngineStats, NodeError, NodeStatus, SyncStatus};

mod timed_store;

pub use timed_store::TimedStore;

/// The metrics port when the config names none: two above the peer-to-peer default.
pub const DEFAULT_METRICS_PORT: u16 = timecoin_net::DEFAULT_PORT + 2;

/// How long one metrics connection may take, start to end: a scrape is one small request.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the metrics server.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether to serve metrics at all (default off).
    pub enabled: bool,
    /// Where to listen when on (default `127.0.0.1:24102`); only loopback unless the operator names
    /// another address.
    pub listen: SocketAddr,
    /// `/ready` fails while the node is more than this many blocks behind its peers (default 2).
    pub ready_max_lag: u64,
    /// Connections served at once (default 8); more are closed at once.
    pub max_connections: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT)),
            ready_max_lag: 2,
            max_connections: 8,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

/// A channel and a direction (`sent`, `received`): both fixed sets, so the label never grows.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: &'static str,
    direction: &'static str,
}

/// Why something was turned away; a fixed set, so the label never grows (and never names a peer).
const REASONS: [&str; 8] = [
    "malformed",
    "bad_signature",
    "sync_refused",
    "tx_invalid",
    "tx_recently_rejected",
    "tx_duplicate",
    "tx_conflict",
    "pool_full",
];

/// One node's metrics in their own registry.
pub struct NodeMetrics {
    registry: Registry,
    height: Gauge,
    deciding: Gauge,
    view: Gauge,
    view_changes: Counter,
    finalized: Counter,
    finality_latency: Histogram,
    peers: Gauge,
    connections: Family<DirectionLabel, Gauge>,
    queued_bytes: Gauge,
    bans: Gauge,
    consensus_messages: Counter,
    transactions_received: Counter,
    penalties: Counter,
    rejections: Family<ReasonLabel, Counter>,
    mempool_transactions: Gauge,
    mempool_bytes: Gauge,
    mempool_evictions: Counter,
    mempool_replaced: Counter,
    disk_bytes: Gauge,
    syncing: Gauge,
    sync_target: Gauge,
    validator: Gauge,
    up: Gauge,
    batches: Counter,
    /// Read at each scrape when given ([`NodeMetrics::with_traffic`]).
    traffic: Option<Arc<Traffic>>,
    net_messages: Family<ChannelLabel, Counter>,
    net_bytes: Family<ChannelLabel, Counter>,
    net_dropped: Family<ChannelLabel, Counter>,
    commit_seconds: Histogram,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Brings a counter up to `total`, a monotonic count read from the engine.
fn advance(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

fn set(gauge: &Gauge, value: impl TryInto<i64>) {
    gauge.set(value.try_into().unwrap_or(i64::MAX));
}

impl NodeMetrics {
    /// A fresh registry with every metric registered under the `timecoin` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("timecoin");
        let m = NodeMetrics {
            height: Gauge::default(),
            deciding: Gauge::default(),
            view: Gauge::default(),
            view_changes: Counter::default(),
            finalized: Counter::default(),
            // 1 ms to ~33 s.
            finality_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            peers: Gauge::default(),
            connections: Family::default(),
            queued_bytes: Gauge::default(),
            bans: Gauge::default(),
            consensus_messages: Counter::default(),
            transactions_received: Counter::default(),
            penalties: Counter::default(),
            rejections: Family::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            mempool_evictions: Counter::default(),
            mempool_replaced: Counter::default(),
            disk_bytes: Gauge::default(),
            syncing: Gauge::default(),
            sync_target: Gauge::default(),
            validator: Gauge::default(),
            up: Gauge::default(),
            batches: Counter::default(),
            traffic: None,
            net_messages: Family::default(),
            net_bytes: Family::default(),
            net_dropped: Family::default(),
            // 100 µs (a small block on a fast disk) to ~13 s (a full block on a disk that stalls).
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("consensus_height", "Finalized tip height", m.height.clone());
        r.register(
            "consensus_deciding_height",
            "Height being decided (0: none)",
            m.deciding.clone(),
        );
        r.register(
            "consensus_view",
            "View of the height being decided",
            m.view.clone(),
        );
        r.register(
            "consensus_view_changes",
            "Views moved past without a decision",
            m.view_changes.clone(),
        );
        r.register(
            "consensus_blocks_finalized",
            "Blocks finalized",
            m.finalized.clone(),
        );
        r.register(
            "consensus_finality_latency_seconds",
            "From a height's start on this node to its block being durable",
            m.finality_latency.clone(),
        );
        r.register(
            "consensus_messages_received",
            "Consensus messages received",
            m.consensus_messages.clone(),
        );
        r.register(
            "consensus_validator",
            "1 if this node's key is in the current set",
            m.validator.clone(),
        );
        r.register("peers", "Peers the engine knows", m.peers.clone());
        r.register(
            "net_connections",
            "Connections by direction (with a network attached)",
            m.connections.clone(),
        );
        r.register(
            "net_queued_bytes",
            "Bytes queued to all peers",
            m.queued_bytes.clone(),
        );
        r.register("net_bans", "Bans held", m.bans.clone());
        r.register(
            "net_messages",
            "Messages by channel: sent to a socket, or arrived (before rate limits and de-duplication)",
            m.net_messages.clone(),
        );
        r.register(
            "net_bytes",
            "Message payload bytes by channel (no framing, encryption or TCP overhead)",
            m.net_bytes.clone(),
        );
        r.register(
            "net_messages_dropped",
            "Messages dropped by channel: refused by a full peer queue, or arrived over the rate quota",
            m.net_dropped.clone(),
        );
        r.register(
            "peer_penalties",
            "Penalties reported against peers",
            m.penalties.clone(),
        );
        r.register(
            "transactions_received",
            "Transactions received, gossiped and local",
            m.transactions_received.clone(),
        );
        r.register(
            "rejections",
            "Messages and transactions turned away, by reason",
            m.rejections.clone(),
        );
        r.register(
            "mempool_transactions",
            "Transactions pooled",
            m.mempool_transactions.clone(),
        );
        r.register(
            "mempool_bytes",
            "Encoded bytes pooled",
            m.mempool_bytes.clone(),
        );
        r.register(
            "mempool_evictions",
            "Pooled transactions evicted for better-paying ones",
            m.mempool_evictions.clone(),
        );
        r.register(
            "mempool_replacements",
            "Pooled transactions replaced by a conflicting one",
            m.mempool_replaced.clone(),
        );
        r.register(
            "storage_disk_bytes",
            "Bytes under the storage directory (0: unknown)",
            m.disk_bytes.clone(),
        );
        r.register(
            "storage_commit_seconds",
            "Time to apply one finalized block durably",
            m.commit_seconds.clone(),
        );
        r.register(
            "sync_syncing",
            "1 while peers report heights above ours",
            m.syncing.clone(),
        );
        r.register(
            "sync_target_height",
            "Highest tip a peer reported",
            m.sync_target.clone(),
        );
        r.register("up", "1 while the engine runs", m.up.clone());
        r.register(
            "engine_batches",
            "Batches of events the engine handled",
            m.batches.clone(),
        );
        for reason in REASONS {
            // Present from the first scrape, at zero, so dashboards see every series.
            let _ = m.rejections.get_or_create(&ReasonLabel { reason });
        }
        NodeMetrics { registry, ..m }
    }

    /// The same registry, also reading `traffic` (a network's counts by channel) at each scrape.
    pub fn with_traffic(self, traffic: Arc<Traffic>) -> Self {
        NodeMetrics {
            traffic: Some(traffic),
            ..self
        }
    }

    /// The commit-time histogram (seconds), for a [`TimedStore`] to feed. A handle: clones share
    /// their samples.
    pub fn commit_seconds(&self) -> Histogram {
        self.commit_seconds.clone()
    }

    /// Records one block's finality latency.
    pub fn observe_finality(&self, latency: Duration) {
        self.finality_latency.observe(latency.as_secs_f64());
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, NodeError> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| NodeError::Rpc(format!("cannot encode metrics: {e}")))?;
        Ok(out)
    }

    fn record(&self, status: &NodeStatus, stats: &EngineStats, view: Option<u32>) {
        set(&self.height, status.height);
        set(&self.deciding, status.deciding.unwrap_or(0));
        set(&self.view, view.unwrap_or(0));
        set(&self.peers, status.peers);
        set(&self.validator, i64::from(status.validator));
        let target = match status.sync {
            SyncStatus::Synced => {
                set(&self.syncing, 0);
                status.height
            }
            SyncStatus::Syncing { target } => {
                set(&self.syncing, 1);
                target
            }
        };
        set(&self.sync_target, target);
        advance(&self.finalized, stats.finalized);
        advance(&self.consensus_messages, stats.received);
        advance(&self.transactions_received, stats.txs_received);
        advance(&self.penalties, stats.penalties);
        self.reason("malformed", stats.malformed);
        self.reason("bad_signature", stats.rejected_signature);
        self.reason("sync_refused", stats.rejected_sync);
    }

    fn record_traffic(&self, traffic: &Traffic) {
        for channel in Channel::ALL {
            let t = traffic.channel(channel);
            for (direction, messages, bytes, dropped) in [
                ("sent", t.messages_sent, t.bytes_sent, t.sends_dropped),
                (
                    "received",
                    t.messages_received,
                    t.bytes_received,
                    t.receives_dropped,
                ),
            ] {
                let label = ChannelLabel {
                    channel: channel.name(),
                    direction,
                };
                advance(&self.net_messages.get_or_create(&label), messages);
                advance(&self.net_bytes.get_or_create(&label), bytes);
                advance(&self.net_dropped.get_or_create(&label), dropped);
            }
        }
    }

    fn reason(&self, reason: &'static str, total: u64) {
        advance(
            &self.rejections.get_or_create(&ReasonLabel { reason }),
            total,
        );
    }

    /// Reads the engine, the mempool, the network and the disk into the registry.
    pub async fn refresh(&self, node: &NodeHandle, context: &NodeContext) {
        let answer = node
            .query(|n| {
                let engine = n.engine();
                (
                    engine.status(),
                    engine.stats(),
                    engine.core().round_state().map(|r| r.view),
                    engine.mempool().stats(),
                )
            })
            .await;
        let Ok((status, stats, view, pool)) = answer else {
            set(&self.up, 0);
            return;
        };
        set(&self.up, 1);
        self.record(&status, &stats, view);
        advance(&self.view_changes, node.loop_stats().view_changes());
        advance(&self.batches, node.loop_stats().batches());
        set(&self.mempool_transactions, pool.transactions);
        set(&self.mempool_bytes, pool.bytes);
        advance(&self.mempool_evictions, pool.evicted);
        advance(&self.mempool_replaced, pool.replaced);
        self.reason("tx_invalid", pool.rejected_invalid);
        self.reason("tx_recently_rejected", pool.rejected_recently);
        self.reason("tx_duplicate", pool.rejected_duplicate);
        self.reason("tx_conflict", pool.rejected_conflict);
        self.reason("pool_full", pool.rejected_full);
        if let Some(peers) = &context.peers {
            let c = peers.counts();
            set(
                &self.connections.get_or_create(&DirectionLabel {
                    direction: "inbound",
                }),
                c.inbound,
            );
            set(
                &self.connections.get_or_create(&DirectionLabel {
                    direction: "outbound",
                }),
                c.outbound,
            );
            set(&self.queued_bytes, c.queued_bytes);
            set(&self.bans, c.bans);
        }
        if let Some(traffic) = &self.traffic {
            self.record_traffic(traffic);
        }
        if let Some(dir) = context.storage_dir.clone() {
            let size = tokio::task::spawn_blocking(move || disk_usage(&dir))
                .await
                .ok()
                .flatten();
            set(&self.disk_bytes, size.unwrap_or(0));
        }
    }
}

/// Whether the node is ready to serve: `Err` says why not.
pub async fn readiness(
    node: &NodeHandle,
    context: &NodeContext,
    max_lag: u64,
) -> Result<(), String> {
    let status = node
        .status()
        .await
        .map_err(|e| format!("engine not running: {e}"))?;
    let peers = match &context.peers {
        Some(p) => {
            let c = p.counts();
            c.inbound + c.outbound
        }
        None => status.peers,
    };
    if peers == 0 {
        return Err("no peers connected".into());
    }
    if let SyncStatus::Syncing { target } = status.sync {
        let lag = target.saturating_sub(status.height);
        if lag > max_lag {
            return Err(format!(
                "syncing: {lag} blocks behind (height {} of {target})",
                status.height
            ));
        }
    }
    Ok(())
}

struct Shared {
    metrics: NodeMetrics,
    node: NodeHandle,
    context: NodeContext,
    max_lag: u64,
    /// One refresh at a time; concurrent scrapes take turns.
    refreshing: Mutex<()>,
}

/// A running metrics server.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    observer: JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends the histogram feed; connections in flight end within
    /// [`CONNECTION_TIMEOUT`].
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.accept.await;
        self.observer.abort();
        info!(addr = %self.addr, "metrics server stopped");
    }
}

/// Starts the metrics server if `config.enabled`, with a fresh registry; `Ok(None)` when it is off. Must
/// be called inside a tokio runtime.
pub async fn start(
    config: &MetricsConfig,
    node: NodeHandle,
    context: NodeContext,
) -> Result<Option<MetricsServer>, NodeError> {
    start_with(config, NodeMetrics::new(), node, context).await
}

/// [`start`] with a registry made beforehand: one whose commit timer the node's store already feeds
/// ([`NodeMetrics::commit_seconds`]), or that reads a network's traffic
/// ([`NodeMetrics::with_traffic`]).
pub async fn start_with(
    config: &MetricsConfig,
    metrics: NodeMetrics,
    node: NodeHandle,
    context: NodeContext,
) -> Result<Option<MetricsServer>, NodeError> {
    if !config.enabled {
        return Ok(None);
    }
    if config.max_connections == 0 {
        return Err(NodeError::Config(
            "metrics.max_connections must be positive".into(),
        ));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| NodeError::Rpc(format!("metrics cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Rpc(format!("metrics: no local address: {e}")))?;
    let shared = Arc::new(Shared {
        metrics,
        node,
        context,
        max_lag: config.ready_max_lag,
        refreshing: Mutex::new(()),
    });
    let observer = {
        let shared = shared.clone();
        let mut finalized = shared.node.subscribe_finalized();
        tokio::spawn(async move {
            loop {
                match finalized.recv().await {
                    Ok(block) => shared.metrics.observe_finality(block.latency),
                    // Missed notices only thin the histogram's sample.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    };
    let (shutdown, mut stopping) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let accept = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = stopping.wait_for(|s| *s) => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        debug!(%e, "metrics accept failed");
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                debug!(%peer, "metrics connection refused: all slots busy");
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(route(request, &shared).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                drop(permit);
            });
        }
    });
    info!(%addr, "metrics server listening");
    Ok(Some(MetricsServer {
        addr,
        shutdown,
        accept,
        observer,
    }))
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn route(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.method() != hyper::Method::GET {
        return respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let _turn = shared.refreshing.lock().await;
            shared.metrics.refresh(&shared.node, &shared.context).await;
            match shared.metrics.encode() {
                Ok(body) => respond(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
            }
        }
        "/health" => respond(StatusCode::OK, TEXT, "ok\n".into()),
        "/ready" => match readiness(&shared.node, &shared.context, shared.max_lag).await {
            Ok(()) => respond(StatusCode::OK, TEXT, "ready\n".into()),
            Err(reason) => respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{reason}\n")),
        },
        _ => respond(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}
