//! The node's JSON-RPC server: Bitcoin's method shapes where they apply, TimeCoin's own for consensus,
//! masternodes, balances and finality receipts, over HTTP with Basic auth (`docs/RPC.md` lists every
//! method).
//!
//! The server runs on the tokio runtime and never touches the engine's state directly: it asks the
//! engine thread through [`NodeHandle`] (submissions, status, consensus state), and reads the store and
//! the mempool (thread-safe `Arc`s it is handed once at start) on the blocking pool.
//!
//! # Starting it
//! ```no_run
//! # async fn run(node: timecoin_node::runner::NodeHandle, genesis: timecoin_types::Genesis)
//! # -> Result<(), timecoin_node::NodeError> {
//! use std::sync::Arc;
//! use timecoin_node::rpc::{self, NodeContext, RpcConfig};
//!
//! let config = RpcConfig { cookie_dir: Some("/var/lib/timed".into()), ..RpcConfig::default() };
//! let context = NodeContext::new(Arc::new(genesis));
//! let server = rpc::start(&config, node, context).await?;
//! // The `stop` method only asks: the daemon decides when to shut down.
//! server.stop_signal().wait().await;
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod batch;
mod errors;
mod methods;
mod params;
pub mod receipt;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use serde::Deserialize;
use timecoin_mempool::Mempool;
use timecoin_net::{PeerNetwork, Transport};
use timecoin_storage::ChainStore;
use timecoin_types::Genesis;
use tokio::sync::watch;
use tracing::info;

use crate::NodeError;
use crate::runner::NodeHandle;

pub use auth::{COOKIE_FILE, COOKIE_USER, CookieFile};
pub use errors::codes;
pub use receipt::{FinalityReceipt, VerifiedReceipt, verify_receipt};

/// The RPC port when the config names none: one above the peer-to-peer default.
pub const DEFAULT_RPC_PORT: u16 = timecoin_net::DEFAULT_PORT + 1;

/// Settings of the RPC server. Every field has a default; a config file names only what it changes.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Where to listen (default `127.0.0.1:24101`). Only loopback unless the operator names another
    /// address: the RPC can spend nothing, but it can stop the node and submit transactions.
    pub listen: SocketAddr,
    /// The directory the cookie file ([`COOKIE_FILE`]) is written to (normally the data dir). Used
    /// when no `user`/`password` is configured; then it is required.
    pub cookie_dir: Option<PathBuf>,
    /// A configured user name; with `password`, replaces the cookie.
    pub user: Option<String>,
    /// The configured user's password. Never logged.
    pub password: Option<String>,
    /// Largest request body in bytes (default 1 MiB: a largest transaction in hex is 200 KiB).
    pub max_request_bytes: u32,
    /// Largest response body in bytes (default 32 MiB: a largest block as JSON with every
    /// transaction decoded fits).
    pub max_response_bytes: u32,
    /// Connections served at once (default 32); more wait in the kernel's backlog or are refused.
    pub max_connections: u32,
    /// Calls in one batch request (default 16); a longer batch is refused whole.
    pub max_batch_len: u32,
    /// The longest `waitfortx` may wait, in seconds (default 60); a longer timeout is cut to it.
    pub max_wait_secs: u64,
    /// Most entries one `listunspent` page returns (default 1000).
    pub max_page: usize,
    /// Most UTXO-set entries one `getbalance` or `listunspent` call reads (default 1,000,000): with no
    /// address index these scan the set, and the bound keeps one call from holding a blocking thread
    /// for long. A `getbalance` that would need more fails with −8; `listunspent` returns a cursor.
    pub max_scan: u64,
    /// Recent blocks searched for a transaction when no block hash is given (`getrawtransaction`,
    /// `gettxproof`, `waitfortx`'s first check), default 256: the store keeps no transaction index.
    pub search_depth: u64,
    /// While the node is this many blocks or more behind what its peers report (default 100),
    /// `sendrawtransaction` and `testmempoolaccept` answer −28 (warming up): a transaction checked
    /// against a set that far behind would be judged on stale coins.
    pub warmup_lag: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_RPC_PORT)),
            cookie_dir: None,
            user: None,
            password: None,
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            max_connections: 32,
            max_batch_len: 16,
            max_wait_secs: 60,
            max_page: 1000,
            max_scan: 1_000_000,
            search_depth: 256,
            warmup_lag: 100,
        }
    }
}

// Hand-written so the password never reaches a log line.
impl std::fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConfig")
            .field("listen", &self.listen)
            .field("cookie_dir", &self.cookie_dir)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_connections", &self.max_connections)
            .field("max_batch_len", &self.max_batch_len)
            .field("max_wait_secs", &self.max_wait_secs)
            .field("max_page", &self.max_page)
            .field("max_scan", &self.max_scan)
            .field("search_depth", &self.search_depth)
            .field("warmup_lag", &self.warmup_lag)
            .finish()
    }
}

impl RpcConfig {
    /// Refuses settings the server cannot run with.
    pub fn validate(&self) -> Result<(), NodeError> {
        let positive = [
            ("max_request_bytes", u64::from(self.max_request_bytes)),
            ("max_response_bytes", u64::from(self.max_response_bytes)),
            ("max_connections", u64::from(self.max_connections)),
            ("max_batch_len", u64::from(self.max_batch_len)),
            ("max_wait_secs", self.max_wait_secs),
            ("max_page", self.max_page as u64),
            ("max_scan", self.max_scan),
            ("search_depth", self.search_depth),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(NodeError::Config(format!("rpc.{name} must be positive")));
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                if user.is_empty() || user.contains(':') || password.is_empty() {
                    return Err(NodeError::Config(
                        "rpc.user must be non-empty without ':' and rpc.password non-empty".into(),
                    ));
                }
            }
            (None, None) if self.cookie_dir.is_none() => {
                return Err(NodeError::Config(
                    "the RPC needs auth: set rpc.cookie_dir, or rpc.user and rpc.password".into(),
                ));
            }
            (None, None) => {}
            _ => {
                return Err(NodeError::Config(
                    "rpc.user and rpc.password must be set together".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A summary of one connected peer, as [`PeerSource`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    /// The peer's node key (hex).
    pub id: String,
    /// Its misbehaviour score (it is banned at the network's ban score).
    pub score: Option<u32>,
}

/// Connection counts, as [`PeerSource`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Peers that dialed us.
    pub inbound: usize,
    /// Peers we dialed.
    pub outbound: usize,
    /// Bytes queued to all peers.
    pub queued_bytes: usize,
    /// Bans held.
    pub bans: usize,
}

/// What the network can tell the RPC and the metrics about its peers. The engine's
/// [`timecoin_net::Network`] trait has no peer listing, so the daemon hands its network here;
/// without one, `getpeerinfo` is empty and counts come from the engine's view of peers.
///
/// An implementation must answer quickly and without blocking (it is called on tokio workers).
pub trait PeerSource: Send + Sync {
    /// The connected peers (at most the network's peer limit).
    fn peers(&self) -> Vec<PeerSummary>;
    /// Connection counts.
    fn counts(&self) -> PeerCounts;
}

impl<T: Transport> PeerSource for PeerNetwork<T> {
    fn peers(&self) -> Vec<PeerSummary> {
        PeerNetwork::peers(self)
            .into_iter()
            .map(|id| PeerSummary {
                id: hex::encode(id.as_bytes()),
                score: self.score(&id),
            })
            .collect()
    }
    fn counts(&self) -> PeerCounts {
        let stats = self.stats();
        PeerCounts {
            inbound: stats.inbound,
            outbound: stats.outbound,
            queued_bytes: stats.queued_bytes,
            bans: stats.bans,
        }
    }
}

/// What the RPC and the metrics are told about the node besides its handle.
#[derive(Clone)]
pub struct NodeContext {
    /// The chain's genesis (its parameters check transactions; its network names addresses).
    pub genesis: Arc<Genesis>,
    /// The network, for peer listings and counts; `None` leaves them to the engine's view.
    pub peers: Option<Arc<dyn PeerSource>>,
    /// The directory the chain is stored in, for disk usage; `None` (an in-memory store) reports none.
    pub storage_dir: Option<PathBuf>,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("chain", &self.genesis.params.chain_id)
            .field("peers", &self.peers.is_some())
            .field("storage_dir", &self.storage_dir)
            .finish()
    }
}

impl NodeContext {
    /// A context with the genesis only: no peer source, no storage directory.
    pub fn new(genesis: Arc<Genesis>) -> Self {
        NodeContext {
            genesis,
            peers: None,
            storage_dir: None,
        }
    }
}

/// Most directory entries [`disk_usage`] visits, so a mistaken path (`/`) cannot make it walk forever.
pub const MAX_DISK_WALK_ENTRIES: usize = 100_000;

/// Bytes of the files under `dir` (not following symlinks), or `None` if it cannot be read or holds
/// more than [`MAX_DISK_WALK_ENTRIES`] entries. It blocks: call it on the blocking pool.
pub fn disk_usage(dir: &std::path::Path) -> Option<u64> {
    let mut total = 0u64;
    let mut visited = 0usize;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).ok()? {
            visited += 1;
            if visited > MAX_DISK_WALK_ENTRIES {
                return None;
            }
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(allocated(&meta));
            }
        }
    }
    Some(total)
}

/// What a file occupies: its allocated blocks where the platform tells (a pruned block log's holes are
/// free space), else its length.
fn allocated(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.blocks().saturating_mul(512)
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

/// Tells the embedding daemon that the `stop` method was called. Cloneable; every clone sees it.
#[derive(Clone, Debug)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Returns once `stop` has been called (at once if it already was). Also returns if the server
    /// was dropped, since nobody can call `stop` then.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether `stop` has been called.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// A running RPC server.
#[derive(Debug)]
pub struct RpcServer {
    addr: SocketAddr,
    handle: ServerHandle,
    stop: watch::Receiver<bool>,
    cookie: Option<CookieFile>,
}

impl RpcServer {
    /// The address it listens on (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the cookie file is, when the server uses one.
    pub fn cookie_path(&self) -> Option<&std::path::Path> {
        self.cookie.as_ref().map(CookieFile::path)
    }

    /// Fires when a client calls `stop`. The server itself keeps serving: the daemon awaits this next
    /// to its signal handlers and runs its own shutdown (stop the RPC, then the node).
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal(self.stop.clone())
    }

    /// Stops accepting, lets calls in flight finish, and deletes the cookie file.
    pub async fn stop(mut self) {
        let _ = self.handle.stop();
        self.handle.clone().stopped().await;
        if let Some(cookie) = self.cookie.take() {
            cookie.remove();
        }
        info!(addr = %self.addr, "rpc server stopped");
    }
}

/// What every method reaches: the node, its stores, and the settings.
pub(crate) struct RpcState {
    pub(crate) node: NodeHandle,
    pub(crate) store: Arc<dyn ChainStore>,
    pub(crate) mempool: Arc<dyn Mempool>,
    pub(crate) context: NodeContext,
    pub(crate) config: RpcConfig,
    pub(crate) stop: watch::Sender<bool>,
}

/// Starts the RPC server for `node` with `config`: writes the cookie (unless a user and password are
/// configured), binds, and serves until [`RpcServer::stop`]. Must be called inside a tokio runtime.
pub async fn start(
    config: &RpcConfig,
    node: NodeHandle,
    context: NodeContext,
) -> Result<RpcServer, NodeError> {
    config.validate()?;
    let (store, mempool) = node
        .query(|n| (n.engine().store().clone(), n.engine().mempool().clone()))
        .await?;
    let (credentials, cookie) = match (&config.user, &config.password, &config.cookie_dir) {
        (Some(user), Some(password), _) => (auth::Credentials::new(user, password), None),
        (_, _, Some(dir)) => {
            let dir = dir.clone();
            let cookie = tokio::task::spawn_blocking(move || CookieFile::create(&dir))
                .await
                .map_err(|e| NodeError::Rpc(format!("cookie writer failed: {e}")))??;
            (cookie.credentials(), Some(cookie))
        }
        _ => return Err(NodeError::Config("the RPC needs auth".into())),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = RpcState {
        node,
        store,
        mempool,
        context,
        config: config.clone(),
        stop: stop_tx,
    };
    let mut module = RpcModule::new(state);
    methods::register(&mut module)?;
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .http_only()
        .build();
    let middleware = tower::ServiceBuilder::new().layer(auth::AuthLayer::new(credentials));
    let max_response = config.max_response_bytes;
    let rpc_middleware = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .layer_fn(move |service| batch::ConcurrentBatch::new(service, max_response));
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .build(config.listen)
        .await
        .map_err(|e| NodeError::Rpc(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = server
        .local_addr()
        .map_err(|e| NodeError::Rpc(format!("no local address: {e}")))?;
    let handle = server.start(module);
    info!(%addr, cookie = cookie.is_some(), "rpc server listening");
    Ok(RpcServer {
        addr,
        handle,
        stop: stop_rx,
        cookie,
    })
}
