//! The daemon's settings: the config file's schema, the overrides from flags and `TIMED_*` variables, and
//! the one resolved [`Settings`] the node is built from.
//!
//! Precedence is flags > environment > file > defaults. Clap folds the first two (each flag names its
//! variable), so resolution only lays [`Overrides`] over the file. Every bounded number is checked while
//! the file is deserialized, so a value out of range is reported with the file's line like a typo is.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize, Serializer};
use timecoin_crypto::Network;
use timecoin_net::{NetConfig, PeerId, SeedPeer};
use timecoin_storage::{BackendKind, StorageConfig, ThroughputMode};

/// The config file `timed --datadir DIR` reads.
pub(crate) const CONFIG_FILE: &str = "config.toml";
/// A config file longer than this is refused before it is parsed; a real one is a few KiB.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// A local network's heartbeat: an empty block every second, so its chain visibly moves while idle
/// (the public networks keep the seed's 600 s).
pub(crate) const LOCAL_EMPTY_BLOCK_INTERVAL_MS: u64 = 1_000;
/// A local network's wait for a proposal: on one machine a leader that has not proposed within 2 s is
/// down, and waiting the public 30 s would stall the chain on every height that leader owns.
pub(crate) const LOCAL_PROPOSE_TIMEOUT_MS: u64 = 2_000;
/// A local network's wait for a quorum on one value once a quorum voted for anything (the Prepare and
/// Commit timeouts, 5 s on a public network): loopback delivers every vote within milliseconds.
pub(crate) const LOCAL_VOTE_TIMEOUT_MS: u64 = 500;
/// Longest RPC user name or password accepted.
const MAX_CREDENTIAL_BYTES: usize = 256;
/// Most seed peers in a config; more is a mistake, not a network.
const MAX_SEEDS: usize = 256;

/// Which chain a node is on. Sets the default ports and must match the genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NetworkName {
    /// A development network on one machine.
    Local,
    /// The public test network.
    Testnet,
    /// The production network.
    Mainnet,
}

impl NetworkName {
    pub(crate) fn network(self) -> Network {
        match self {
            NetworkName::Local => Network::Local,
            NetworkName::Testnet => Network::Testnet,
            NetworkName::Mainnet => Network::Mainnet,
        }
    }

    /// The peer-to-peer port; RPC is the next port and metrics the one after.
    pub(crate) fn p2p_port(self) -> u16 {
        match self {
            NetworkName::Mainnet => timecoin_net::DEFAULT_PORT,
            NetworkName::Testnet => 24_200,
            NetworkName::Local => 24_300,
        }
    }

    pub(crate) fn rpc_port(self) -> u16 {
        self.p2p_port() + 1
    }

    pub(crate) fn metrics_port(self) -> u16 {
        self.p2p_port() + 2
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.network().name())
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// sled's trade-off between write speed and disk space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StorageMode {
    HighThroughput,
    LowSpace,
}

/// An integer that must lie in `MIN..=MAX`; checked while deserializing, so the error carries the
/// file's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
struct Ranged<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Ranged<MIN, MAX> {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Ranged(value))
        } else {
            Err(format!("must be in {MIN}..={MAX}, got {value}"))
        }
    }
}

/// `prune_keep_blocks`: 0 keeps every block; otherwise at least the engine's sync window, so a peer
/// catching up within it finds every block here (the engine refuses less too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub(crate) struct PruneKeep(u64);

impl TryFrom<u64> for PruneKeep {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        let least = u64::from(timecoin_node::EngineConfig::default().sync_window);
        if value == 0 || value >= least {
            Ok(PruneKeep(value))
        } else {
            Err(format!(
                "prune_keep_blocks = {value}: use 0 to keep every block, or keep at least {least} \
                 (the sync window: a peer catching up within it must find every block here)"
            ))
        }
    }
}

/// A seed peer as written in a config: `IP:PORT`, or `NODEKEY@IP:PORT` to also pin the key it must
/// prove (64 hex characters).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct SeedSpec(pub(crate) SeedPeer);

impl TryFrom<String> for SeedSpec {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl std::str::FromStr for SeedSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (key, addr) = match text.split_once('@') {
            Some((key, addr)) => (Some(key), addr),
            None => (None, text),
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("seed `{text}`: expected IP:PORT or NODEKEY@IP:PORT"))?;
        let key = key
            .map(|k| {
                timecoin_crypto::PublicKey::from_hex(k)
                    .map(PeerId::from)
                    .map_err(|e| format!("seed `{text}`: node key: {e}"))
            })
            .transpose()?;
        Ok(SeedSpec(SeedPeer { addr, key }))
    }
}

impl fmt::Display for SeedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.key {
            Some(key) => {
                for b in key.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "@{}", self.0.addr)
            }
            None => write!(f, "{}", self.0.addr),
        }
    }
}

impl Serialize for SeedSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---- the file's schema: every key optional, nothing unknown accepted ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    network: Option<NetworkName>,
    datadir: Option<PathBuf>,
    genesis: Option<PathBuf>,
    node_key: Option<PathBuf>,
    operator_key: Option<PathBuf>,
    prune_keep_blocks: Option<PruneKeep>,
    #[serde(default)]
    log: LogFile,
    #[serde(default)]
    p2p: P2pFile,
    #[serde(default)]
    storage: StorageFile,
    #[serde(default)]
    consensus: ConsensusFile,
    #[serde(default)]
    mempool: MempoolFile,
    #[serde(default)]
    rpc: RpcFile,
    #[serde(default)]
    metrics: MetricsFile,
    #[serde(default)]
    sync: SyncFile,
    #[serde(default)]
    shutdown: ShutdownFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    level: Option<String>,
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct P2pFile {
    listen: Option<SocketAddr>,
    external_addr: Option<SocketAddr>,
    seeds: Option<Vec<SeedSpec>>,
    max_peers: Option<Ranged<1, 4096>>,
    max_outbound: Option<Ranged<0, 256>>,
    masternode_slots: Option<Ranged<0, 1024>>,
    max_per_ip: Option<Ranged<1, 256>>,
    ban_ip_addresses: Option<bool>,
    discovery_allow_local: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFile {
    cache_mb: Option<Ranged<16, 1_048_576>>,
    flush_interval_ms: Option<Ranged<0, 60_000>>,
    mode: Option<StorageMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsensusFile {
    propose_timeout_ms: Option<Ranged<100, 600_000>>,
    prepare_timeout_ms: Option<Ranged<100, 600_000>>,
    commit_timeout_ms: Option<Ranged<100, 600_000>>,
    empty_block_interval_ms: Option<Ranged<0, 86_400_000>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MempoolFile {
    max_transactions: Option<Ranged<1, 16_777_215>>,
    max_mb: Option<Ranged<1, 1_048_575>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RpcFile {
    enabled: Option<bool>,
    listen: Option<SocketAddr>,
    cookie: Option<bool>,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    enabled: Option<bool>,
    listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncFile {
    state_sync: Option<bool>,
    state_sync_min_lag: Option<Ranged<1, 1_000_000_000>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownFile {
    timeout_secs: Option<Ranged<1, 300>>,
}

// ---- what flags and the environment may set ----

/// Values given by flags or `TIMED_*` variables (clap has already chosen the flag over the variable).
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) network: Option<NetworkName>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) external_addr: Option<SocketAddr>,
    pub(crate) seeds: Option<Vec<SeedSpec>>,
    pub(crate) operator_key: Option<PathBuf>,
    pub(crate) log_level: Option<String>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) prune_keep_blocks: Option<u64>,
    pub(crate) rpc_enabled: Option<bool>,
    pub(crate) rpc_listen: Option<SocketAddr>,
    pub(crate) rpc_user: Option<String>,
    pub(crate) rpc_password: Option<String>,
    pub(crate) metrics_enabled: Option<bool>,
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) empty_block_interval_ms: Option<u64>,
}

// ---- the resolved settings ----

/// Everything the node runs with, after precedence and validation. Paths are absolute or relative to the
/// working directory (already joined with the data dir).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Settings {
    pub(crate) network: NetworkName,
    pub(crate) datadir: PathBuf,
    pub(crate) genesis: PathBuf,
    pub(crate) node_key: PathBuf,
    pub(crate) operator_key: Option<PathBuf>,
    pub(crate) prune_keep_blocks: u64,
    pub(crate) log: LogSettings,
    pub(crate) p2p: P2pSettings,
    pub(crate) storage: StorageSettings,
    pub(crate) consensus: ConsensusSettings,
    pub(crate) mempool: MempoolSettings,
    pub(crate) rpc: RpcSettings,
    pub(crate) metrics: MetricsSettings,
    pub(crate) sync: SyncSettings,
    pub(crate) shutdown: ShutdownSettings,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct LogSettings {
    /// A `tracing` filter: a level (`info`) or directives (`info,timecoin_net=debug`).
    pub(crate) level: String,
    pub(crate) format: LogFormat,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct P2pSettings {
    pub(crate) listen: SocketAddr,
    pub(crate) external_addr: Option<SocketAddr>,
    pub(crate) seeds: Vec<SeedSpec>,
    pub(crate) max_peers: u64,
    pub(crate) max_outbound: u64,
    pub(crate) masternode_slots: u64,
    pub(crate) max_per_ip: u64,
    pub(crate) ban_ip_addresses: bool,
    pub(crate) discovery_allow_local: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct StorageSettings {
    pub(crate) cache_mb: u64,
    /// 0 turns the background flush off (blocks are flushed as they are applied either way).
    pub(crate) flush_interval_ms: u64,
    pub(crate) mode: StorageMode,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConsensusSettings {
    pub(crate) propose_timeout_ms: u64,
    pub(crate) prepare_timeout_ms: u64,
    pub(crate) commit_timeout_ms: u64,
    pub(crate) empty_block_interval_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct MempoolSettings {
    pub(crate) max_transactions: u64,
    pub(crate) max_mb: u64,
}

/// The `[rpc]` section. The JSON-RPC server is built in `timecoin_node::rpc`; this is what the daemon
/// will hand it ([`crate::services::start`]).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RpcSettings {
    pub(crate) enabled: bool,
    /// Loopback unless the config names another address.
    pub(crate) listen: SocketAddr,
    /// Write `.cookie` in the data dir (Bitcoin's `__cookie__:<hex>` scheme); on by default.
    pub(crate) cookie: bool,
    pub(crate) user: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub(crate) password: Option<String>,
}

/// The `[metrics]` section: Prometheus metrics and health, served on their own port.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MetricsSettings {
    pub(crate) enabled: bool,
    pub(crate) listen: SocketAddr,
}

/// `[sync]`: how a node with an empty store joins.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SyncSettings {
    /// An empty store state-syncs (certified headers, then the UTXO set at a peer's tip) instead of
    /// replaying every block.
    pub(crate) state_sync: bool,
    /// Only when a peer is at least this many blocks ahead; closer than that, block sync replays.
    pub(crate) state_sync_min_lag: u64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ShutdownSettings {
    /// A graceful shutdown that takes longer than this exits non-zero.
    pub(crate) timeout_secs: u64,
}

fn redacted<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

/// Where the config comes from: a file named by `--config`, or `config.toml` in `--datadir`.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) config: Option<PathBuf>,
    pub(crate) datadir: Option<PathBuf>,
}

/// Reads the config file (if any), lays the overrides over it and validates the result.
pub(crate) fn load(source: &Source, overrides: &Overrides) -> Result<Settings> {
    let path = match (&source.config, &source.datadir) {
        (Some(file), _) => Some(file.clone()),
        (None, Some(dir)) => {
            let file = dir.join(CONFIG_FILE);
            // `--datadir` alone may name a directory without a config: defaults then apply.
            file.exists().then_some(file)
        }
        (None, None) => {
            bail!("give --config FILE or --datadir DIR (or TIMED_CONFIG / TIMED_DATADIR)")
        }
    };
    let file = match &path {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    // The data dir: the flag, else the file's `datadir` (relative to the file), else the file's folder.
    let datadir = match (&source.datadir, &file.datadir, &path) {
        (Some(dir), _, _) => dir.clone(),
        (None, Some(dir), Some(path)) => parent_of(path).join(dir),
        (None, None, Some(path)) => parent_of(path).to_path_buf(),
        (None, _, None) => bail!("no data dir: give --datadir DIR"),
    };
    resolve(file, overrides, datadir)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_CONFIG_BYTES {
        bail!(
            "{} is {} bytes; a config file may hold at most {MAX_CONFIG_BYTES}",
            path.display(),
            meta.len()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses a config file's text; errors name the line and column (toml's spanned errors).
fn parse(text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Checks a config file's text without resolving it (used on the shipped examples).
#[cfg(test)]
pub(crate) fn check_text(text: &str) -> Result<()> {
    parse(text).map(|_| ())
}

fn resolve(file: FileConfig, o: &Overrides, datadir: PathBuf) -> Result<Settings> {
    let network = o.network.or(file.network).unwrap_or(NetworkName::Mainnet);
    let at = |p: PathBuf| if p.is_absolute() { p } else { datadir.join(p) };
    let genesis = at(file.genesis.unwrap_or_else(|| "genesis.toml".into()));
    let node_key = at(file.node_key.unwrap_or_else(|| "node.key".into()));
    let operator_key = o.operator_key.clone().or(file.operator_key).map(at);
    let prune_keep_blocks = match o.prune_keep_blocks {
        Some(v) => PruneKeep::try_from(v).map_err(anyhow::Error::msg)?.0,
        None => file.prune_keep_blocks.map_or(0, |p| p.0),
    };

    let level = o
        .log_level
        .clone()
        .or(file.log.level)
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::EnvFilter::try_new(&level)
        .with_context(|| format!("log level `{level}` is not a valid filter"))?;
    let log = LogSettings {
        level,
        format: o.log_format.or(file.log.format).unwrap_or(LogFormat::Plain),
    };

    // A local network shares 127.0.0.1 and moves its chain along every second; a public one does not.
    let local = network == NetworkName::Local;
    let defaults = NetConfig {
        max_per_ip: if local { 16 } else { 1 },
        ban_ip_addresses: !local,
        discovery_allow_local: local,
        ..NetConfig::default()
    };
    let num = |v: Option<u64>, d: usize| v.unwrap_or(d as u64);
    let p2p = P2pSettings {
        listen: o
            .listen
            .or(file.p2p.listen)
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], network.p2p_port()))),
        external_addr: o.external_addr.or(file.p2p.external_addr),
        seeds: o.seeds.clone().or(file.p2p.seeds).unwrap_or_default(),
        max_peers: num(file.p2p.max_peers.map(|r| r.0), defaults.max_peers),
        max_outbound: num(file.p2p.max_outbound.map(|r| r.0), defaults.max_outbound),
        masternode_slots: num(
            file.p2p.masternode_slots.map(|r| r.0),
            defaults.masternode_slots,
        ),
        max_per_ip: num(file.p2p.max_per_ip.map(|r| r.0), defaults.max_per_ip),
        ban_ip_addresses: file
            .p2p
            .ban_ip_addresses
            .unwrap_or(defaults.ban_ip_addresses),
        discovery_allow_local: file
            .p2p
            .discovery_allow_local
            .unwrap_or(defaults.discovery_allow_local),
    };
    if p2p.seeds.len() > MAX_SEEDS {
        bail!("[p2p] seeds: at most {MAX_SEEDS}, got {}", p2p.seeds.len());
    }
    if p2p.max_outbound + p2p.masternode_slots > p2p.max_peers {
        bail!(
            "[p2p] max_outbound ({}) + masternode_slots ({}) must not exceed max_peers ({})",
            p2p.max_outbound,
            p2p.masternode_slots,
            p2p.max_peers
        );
    }

    let storage_defaults = StorageConfig::default();
    let flush_default = storage_defaults
        .flush_interval
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let storage = StorageSettings {
        cache_mb: file
            .storage
            .cache_mb
            .map_or(storage_defaults.cache_bytes / (1024 * 1024), |r| r.0),
        flush_interval_ms: file
            .storage
            .flush_interval_ms
            .map_or(flush_default, |r| r.0),
        mode: file.storage.mode.unwrap_or(StorageMode::HighThroughput),
    };

    let consensus_defaults = timecoin_consensus::Config::new(timecoin_crypto::ChainId(0));
    let empty_block_interval_ms = match o.empty_block_interval_ms {
        Some(v) => {
            Ranged::<0, 86_400_000>::try_from(v)
                .map_err(|e| anyhow::anyhow!("empty block interval: {e}"))?
                .0
        }
        None => file.consensus.empty_block_interval_ms.map_or(
            if local {
                LOCAL_EMPTY_BLOCK_INTERVAL_MS
            } else {
                millis(timecoin_node::EngineConfig::default().empty_block_interval)
            },
            |r| r.0,
        ),
    };
    let consensus = ConsensusSettings {
        propose_timeout_ms: file.consensus.propose_timeout_ms.map_or(
            if local {
                LOCAL_PROPOSE_TIMEOUT_MS
            } else {
                millis(consensus_defaults.propose_timeout)
            },
            |r| r.0,
        ),
        prepare_timeout_ms: file.consensus.prepare_timeout_ms.map_or(
            if local {
                LOCAL_VOTE_TIMEOUT_MS
            } else {
                millis(consensus_defaults.prepare_timeout)
            },
            |r| r.0,
        ),
        commit_timeout_ms: file.consensus.commit_timeout_ms.map_or(
            if local {
                LOCAL_VOTE_TIMEOUT_MS
            } else {
                millis(consensus_defaults.commit_timeout)
            },
            |r| r.0,
        ),
        empty_block_interval_ms,
    };

    let mempool = MempoolSettings {
        max_transactions: file
            .mempool
            .max_transactions
            .map_or(timecoin_mempool::DEFAULT_MAX_TRANSACTIONS as u64, |r| r.0),
        max_mb: file.mempool.max_mb.map_or(
            timecoin_mempool::DEFAULT_MAX_BYTES as u64 / 1_000_000,
            |r| r.0,
        ),
    };

    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let rpc = RpcSettings {
        enabled: o.rpc_enabled.or(file.rpc.enabled).unwrap_or(true),
        listen: o
            .rpc_listen
            .or(file.rpc.listen)
            .unwrap_or(loopback(network.rpc_port())),
        cookie: file.rpc.cookie.unwrap_or(true),
        user: o.rpc_user.clone().or(file.rpc.user),
        password: o.rpc_password.clone().or(file.rpc.password),
    };
    match (&rpc.user, &rpc.password) {
        (Some(user), Some(password)) => {
            // Basic auth joins them with ':', so a user containing one could not be told apart.
            if user.is_empty() || user.contains(':') || user.len() > MAX_CREDENTIAL_BYTES {
                bail!("[rpc] user must be 1..={MAX_CREDENTIAL_BYTES} bytes without ':'");
            }
            if password.is_empty() || password.len() > MAX_CREDENTIAL_BYTES {
                bail!("[rpc] password must be 1..={MAX_CREDENTIAL_BYTES} bytes");
            }
        }
        (None, None) => {}
        _ => bail!("[rpc] user and password go together: give both or neither"),
    }
    if rpc.enabled && !rpc.cookie && rpc.user.is_none() {
        bail!(
            "[rpc] cookie = false needs a user and password: the RPC never runs without \
             authentication"
        );
    }
    let metrics = MetricsSettings {
        enabled: o.metrics_enabled.or(file.metrics.enabled).unwrap_or(false),
        listen: o
            .metrics_listen
            .or(file.metrics.listen)
            .unwrap_or(loopback(network.metrics_port())),
    };
    let sync = SyncSettings {
        state_sync: file.sync.state_sync.unwrap_or(true),
        state_sync_min_lag: file.sync.state_sync_min_lag.map_or(1_000, |r| r.0),
    };
    let shutdown = ShutdownSettings {
        timeout_secs: file.shutdown.timeout_secs.map_or(10, |r| r.0),
    };

    Ok(Settings {
        network,
        datadir,
        genesis,
        node_key,
        operator_key,
        prune_keep_blocks,
        log,
        p2p,
        storage,
        consensus,
        mempool,
        rpc,
        metrics,
        sync,
        shutdown,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

impl Settings {
    /// The state sync's settings: the seed's defaults with `[sync]` applied.
    pub(crate) fn state_sync_config(&self) -> timecoin_node::statesync::StateSyncConfig {
        timecoin_node::statesync::StateSyncConfig {
            min_lag: self.sync.state_sync_min_lag,
            ..timecoin_node::statesync::StateSyncConfig::default()
        }
    }

    /// The chain's directory inside the data dir.
    pub(crate) fn chain_dir(&self) -> PathBuf {
        self.datadir.join("chain")
    }

    /// The transport's configuration; bans and the address book are kept in the data dir.
    pub(crate) fn net_config(&self) -> NetConfig {
        let p = &self.p2p;
        NetConfig {
            listen: p.listen,
            seeds: p.seeds.iter().map(|s| s.0.clone()).collect(),
            max_peers: usize_of(p.max_peers),
            max_outbound: usize_of(p.max_outbound),
            masternode_slots: usize_of(p.masternode_slots),
            max_per_ip: usize_of(p.max_per_ip),
            ban_ip_addresses: p.ban_ip_addresses,
            ban_file: Some(self.datadir.join("bans")),
            external_addr: p.external_addr,
            discovery_allow_local: p.discovery_allow_local,
            address_book_path: Some(self.datadir.join("peers")),
            ..NetConfig::default()
        }
    }

    /// The store's configuration: sled in the data dir's `chain` folder.
    pub(crate) fn storage_config(&self) -> StorageConfig {
        let s = &self.storage;
        StorageConfig {
            backend: BackendKind::Sled {
                path: self.chain_dir(),
            },
            cache_bytes: s.cache_mb.saturating_mul(1024 * 1024),
            flush_interval: (s.flush_interval_ms > 0)
                .then(|| Duration::from_millis(s.flush_interval_ms)),
            mode: match s.mode {
                StorageMode::HighThroughput => ThroughputMode::HighThroughput,
                StorageMode::LowSpace => ThroughputMode::LowSpace,
            },
            ..StorageConfig::default()
        }
    }

    /// The engine's, consensus's and mempool's configuration for `genesis`'s chain.
    pub(crate) fn node_config(
        &self,
        genesis: &timecoin_types::Genesis,
    ) -> timecoin_node::NodeConfig {
        let mut config = timecoin_node::NodeConfig::new(genesis);
        config.consensus.propose_timeout = Duration::from_millis(self.consensus.propose_timeout_ms);
        config.consensus.prepare_timeout = Duration::from_millis(self.consensus.prepare_timeout_ms);
        config.consensus.commit_timeout = Duration::from_millis(self.consensus.commit_timeout_ms);
        config.engine.empty_block_interval =
            Duration::from_millis(self.consensus.empty_block_interval_ms);
        config.engine.prune_keep_blocks = self.prune_keep_blocks;
        config.mempool.max_transactions = usize_of(self.mempool.max_transactions);
        config.mempool.max_bytes = usize_of(self.mempool.max_mb.saturating_mul(1_000_000));
        config.storage = self.storage_config();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_names_its_line() {
        let err = parse("network = \"local\"\n\n[p2p]\nlisten = \"127.0.0.1:1\"\nmax_peer = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("max_peer"), "{err}");
    }

    #[test]
    fn an_out_of_range_value_names_its_line() {
        let err = parse("[shutdown]\ntimeout_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("1..=300"), "{err}");
    }

    #[test]
    fn the_shipped_configs_spell_out_their_networks_defaults() {
        for network in [
            NetworkName::Local,
            NetworkName::Testnet,
            NetworkName::Mainnet,
        ] {
            let dir = PathBuf::from("/data");
            let shipped = parse(crate::init::config_template(network)).unwrap();
            let shipped = resolve(shipped, &Overrides::default(), dir.clone()).unwrap();
            let bare = FileConfig {
                network: Some(network),
                ..FileConfig::default()
            };
            let bare = resolve(bare, &Overrides::default(), dir).unwrap();
            assert_eq!(
                toml::to_string(&shipped).unwrap(),
                toml::to_string(&bare).unwrap(),
                "{network}"
            );
        }
    }

    #[test]
    fn seeds_parse_with_and_without_a_key() {
        let plain: SeedSpec = "127.0.0.1:5".parse().unwrap();
        assert_eq!(plain.0.key, None);
        let key = timecoin_crypto::SecretKey::from_seed(&[1; 32]).public_key();
        let text = format!("{}@127.0.0.1:5", key.to_hex());
        let pinned: SeedSpec = text.parse().unwrap();
        assert_eq!(pinned.0.key, Some(PeerId::from(key)));
        assert_eq!(pinned.to_string(), text);
        assert!("nonsense".parse::<SeedSpec>().is_err());
    }
}
