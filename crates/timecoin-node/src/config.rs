//! The engine's settings. Every number has a default from the seed document where it names one; the
//! others are chosen here and say why.

use std::time::Duration;

use crate::NodeError;

/// Settings of the host state machine, apart from consensus's own timeouts
/// ([`timecoin_consensus::Config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// With nothing in the pool, the leader proposes an empty block this long after the previous height
    /// was finalized (seed: 600 s, the original system's block time). A local network may set it lower;
    /// 0 starts every height at once.
    pub empty_block_interval: Duration,
    /// How often the node asks a peer for blocks above its tip (and, while a request is out, checks
    /// whether it timed out).
    pub sync_interval: Duration,
    /// A sync request unanswered for this long is retried on another peer.
    pub sync_request_timeout: Duration,
    /// Least time between two sync requests triggered by messages from higher heights, and between two
    /// pushes of one height to one peer.
    pub sync_backoff: Duration,
    /// Certified blocks asked for (and served) per sync request (seed: block batch 100).
    pub sync_batch: u32,
    /// Synced blocks buffered above the height being decided; later ones are dropped and asked for again.
    pub sync_window: u32,
    /// How often the core is given the clock (drives its TTL cleanup).
    pub tick_interval: Duration,
    /// While a height stays undecided, re-broadcast this node's signed messages of that height (from the
    /// WAL) this often; `None` turns it off. The core retransmits only the views it keeps, so a message
    /// lost beyond them would otherwise never be sent again.
    pub resend_interval: Option<Duration>,
    /// Verdicts on message encodings remembered, so a duplicate is never verified twice.
    pub seen_cache: usize,
    /// Peers tracked for sync (their reported heights); more are not tracked (seed: max peers 256).
    pub max_peers: usize,
    /// Keys named by evidence that are remembered (later evidence is only counted).
    pub max_offenders: usize,
    /// Block bodies kept below the tip; older ones are deleted, except where the validator schedule
    /// changed (state sync serves those bodies with their headers). Every header and certificate is
    /// kept. 0 keeps everything (the default); otherwise at least the sync window, so a peer catching up
    /// within it finds every block it asks for here.
    pub prune_keep_blocks: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            empty_block_interval: Duration::from_secs(600),
            sync_interval: Duration::from_secs(1),
            sync_request_timeout: Duration::from_secs(5),
            sync_backoff: Duration::from_millis(200),
            sync_batch: 100,
            sync_window: 128,
            tick_interval: Duration::from_secs(5),
            resend_interval: Some(Duration::from_secs(1)),
            seen_cache: 4_096,
            max_peers: 256,
            max_offenders: 256,
            prune_keep_blocks: 0,
        }
    }
}

impl EngineConfig {
    /// The largest sync batch the engine serves or asks for.
    pub const MAX_SYNC_BATCH: u32 = 100;

    /// Refuses settings that would make the engine unbounded or stuck.
    pub fn validate(&self) -> Result<(), NodeError> {
        if self.sync_batch == 0 || self.sync_batch > Self::MAX_SYNC_BATCH {
            return Err(NodeError::Config(format!(
                "sync_batch must be 1..={}, got {}",
                Self::MAX_SYNC_BATCH,
                self.sync_batch
            )));
        }
        if self.sync_window < self.sync_batch {
            return Err(NodeError::Config(format!(
                "sync_window ({}) must hold a whole batch ({})",
                self.sync_window, self.sync_batch
            )));
        }
        if self.seen_cache == 0 || self.max_peers == 0 {
            return Err(NodeError::Config(
                "seen_cache and max_peers must be positive".into(),
            ));
        }
        if self.prune_keep_blocks != 0 && self.prune_keep_blocks < u64::from(self.sync_window) {
            return Err(NodeError::Config(format!(
                "prune_keep_blocks must be 0 (keep everything) or at least the sync window ({}), got {}",
                self.sync_window, self.prune_keep_blocks
            )));
        }
        if self.sync_interval.is_zero() || self.tick_interval.is_zero() {
            return Err(NodeError::Config(
                "sync_interval and tick_interval must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Everything a node is built from.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Consensus timeouts and limits; its chain id must be the genesis's.
    pub consensus: timecoin_consensus::Config,
    /// The engine's own settings.
    pub engine: EngineConfig,
    /// The mempool's limits.
    pub mempool: timecoin_mempool::Config,
    /// Where and how the chain is stored (used when no store is given to the builder).
    pub storage: timecoin_storage::StorageConfig,
}

impl NodeConfig {
    /// Defaults for `genesis`'s chain, with the chain kept in memory.
    pub fn new(genesis: &timecoin_types::Genesis) -> Self {
        NodeConfig {
            consensus: timecoin_consensus::Config::new(genesis.params.chain_id),
            engine: EngineConfig::default(),
            mempool: timecoin_mempool::Config::default(),
            storage: timecoin_storage::StorageConfig::memory(),
        }
    }
}
