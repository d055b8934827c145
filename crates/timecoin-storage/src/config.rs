//! Storage configuration, with the seed's defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::StorageError;

/// Seed default for the memory the store may use for caching: 512 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 512 * 1024 * 1024;
/// Seed default for the backend's background flush: every second.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Seed default for a state-sync page: 1000 unspent outputs.
pub const DEFAULT_UTXO_PAGE: usize = 1_000;
/// Largest state-sync page served, whatever a caller asks for: bounds one response's memory and size.
pub const MAX_UTXO_PAGE: usize = 10_000;
/// The cache never takes more than this fraction (1/N) of the machine's memory.
pub const MEMORY_SHARE_DIVISOR: u64 = 4;
/// Estimated memory per cached unspent output: the key (36 B) and value (40 B) in a hash map with its
/// control bytes and load factor, plus its slot in the insertion-order index. Measured layouts put it near
/// 160 B; the estimate rounds up so the bound holds.
pub const UTXO_CACHE_ENTRY_BYTES: u64 = 192;
/// Default bound on the consensus write-ahead log, in entries.
pub const DEFAULT_WAL_MAX_ENTRIES: u64 = 100_000;
/// Default bound on the consensus write-ahead log, in bytes of payload.
pub const DEFAULT_WAL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Which on-disk engine backs the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// Nothing on disk: for tests, simulations and embedders that keep state elsewhere.
    Memory,
    /// sled 0.34 in the directory `path` (created if missing). The default.
    Sled {
        /// Database directory.
        path: PathBuf,
    },
}

/// sled's trade-off between write speed and disk space (the seed runs `HighThroughput`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThroughputMode {
    /// Favour write speed; files may hold more garbage before compaction.
    #[default]
    HighThroughput,
    /// Favour disk space; compacts more eagerly.
    LowSpace,
}

/// How a store is opened. Every field has the seed's default and may be overridden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The engine and, for disk engines, where the data lives.
    pub backend: BackendKind,
    /// Memory budget for caching, in bytes (default 512 MiB). Half goes to the UTXO cache in front of the
    /// engine, half to the engine's own page cache. The effective budget is capped at
    /// 1/[`MEMORY_SHARE_DIVISOR`] of the machine's memory ([`StorageConfig::total_memory_bytes`]).
    pub cache_bytes: u64,
    /// Interval of the engine's background flush (default 1 s). Blocks and consensus state never wait for
    /// it: each such write is flushed before it is acknowledged. `None` disables the background flush.
    pub flush_interval: Option<Duration>,
    /// Write-speed versus disk-space trade-off (default [`ThroughputMode::HighThroughput`]).
    pub mode: ThroughputMode,
    /// The machine's memory, in bytes, for the cache cap. `None` (default) reads `MemTotal` from
    /// `/proc/meminfo`; where that is unavailable the cap is not applied.
    pub total_memory_bytes: Option<u64>,
    /// Bound on entries in the consensus write-ahead log (default 100,000).
    pub wal_max_entries: u64,
    /// Bound on payload bytes in the consensus write-ahead log (default 256 MiB).
    pub wal_max_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: BackendKind::Sled {
                path: PathBuf::from("timecoin-data"),
            },
            cache_bytes: DEFAULT_CACHE_BYTES,
            flush_interval: Some(DEFAULT_FLUSH_INTERVAL),
            mode: ThroughputMode::HighThroughput,
            total_memory_bytes: None,
            wal_max_entries: DEFAULT_WAL_MAX_ENTRIES,
            wal_max_bytes: DEFAULT_WAL_MAX_BYTES,
        }
    }
}

impl StorageConfig {
    /// Defaults, in memory.
    pub fn memory() -> Self {
        StorageConfig {
            backend: BackendKind::Memory,
            ..Self::default()
        }
    }

    /// Defaults, with sled in `path`.
    pub fn sled(path: impl Into<PathBuf>) -> Self {
        StorageConfig {
            backend: BackendKind::Sled { path: path.into() },
            ..Self::default()
        }
    }

    /// The cache budget actually used: [`cache_bytes`](Self::cache_bytes), capped at a quarter of the
    /// machine's memory.
    pub fn effective_cache_bytes(&self) -> u64 {
        let total = self.total_memory_bytes.or_else(read_mem_total);
        match total {
            Some(total) => self.cache_bytes.min(total / MEMORY_SHARE_DIVISOR),
            None => self.cache_bytes,
        }
    }

    /// Most unspent outputs the UTXO cache holds: its half of the budget over
    /// [`UTXO_CACHE_ENTRY_BYTES`]. Default on a machine with ≥ 2 GiB: 1,398,101.
    pub fn utxo_cache_entries(&self) -> usize {
        let entries = self.effective_cache_bytes() / 2 / UTXO_CACHE_ENTRY_BYTES;
        usize::try_from(entries).unwrap_or(usize::MAX)
    }

    /// The engine's page-cache share of the budget.
    pub fn engine_cache_bytes(&self) -> u64 {
        self.effective_cache_bytes() / 2
    }

    /// Rejects values that would make the store useless or unbounded.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.wal_max_entries == 0 || self.wal_max_bytes == 0 {
            return Err(StorageError::InvalidConfig {
                reason: "wal_max_entries and wal_max_bytes must be positive".into(),
            });
        }
        if let Some(interval) = self.flush_interval
            && interval.is_zero()
        {
            return Err(StorageError::InvalidConfig {
                reason: "flush_interval must be positive (use None to disable it)".into(),
            });
        }
        Ok(())
    }
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn read_mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults() {
        let c = StorageConfig::default();
        assert_eq!(c.cache_bytes, 512 * 1024 * 1024);
        assert_eq!(c.flush_interval, Some(Duration::from_secs(1)));
        assert_eq!(c.mode, ThroughputMode::HighThroughput);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn cache_is_capped_at_a_quarter_of_memory() {
        let small_machine = StorageConfig {
            total_memory_bytes: Some(1024 * 1024 * 1024),
            ..StorageConfig::memory()
        };
        assert_eq!(small_machine.effective_cache_bytes(), 256 * 1024 * 1024);
        let big_machine = StorageConfig {
            total_memory_bytes: Some(64 * 1024 * 1024 * 1024),
            ..StorageConfig::memory()
        };
        assert_eq!(big_machine.effective_cache_bytes(), DEFAULT_CACHE_BYTES);
        assert_eq!(big_machine.utxo_cache_entries(), 1_398_101);
    }

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       24684000 kB\nMemFree:        23000000 kB\n";
        assert_eq!(parse_mem_total(text), Some(24_684_000 * 1024));
        assert_eq!(parse_mem_total("garbage"), None);
    }

    #[test]
    fn zero_bounds_are_rejected() {
        let c = StorageConfig {
            wal_max_entries: 0,
            ..StorageConfig::memory()
        };
        assert!(matches!(
            c.validate(),
            Err(StorageError::InvalidConfig { .. })
        ));
    }
}
