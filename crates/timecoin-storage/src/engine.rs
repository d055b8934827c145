//! Ordered key-value engines under the chain store: in memory and sled.
//!
//! The chain logic ([`ChainDb`](crate::ChainDb)) is written once over [`KvEngine`]; an engine only has to
//! keep ordered bytes and make a batch atomic and durable. A third party can bring its own engine by
//! implementing this trait, or its own whole store by implementing the traits in [`crate::traits`].

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::RwLock;

use crate::StorageError;
use crate::config::{BackendKind, StorageConfig, ThroughputMode};

/// A key and its value, as a scan returns them.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// One change in a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (absent keys are fine).
    Delete(Vec<u8>),
}

/// Changes that become visible, and durable, together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` changes.
    pub fn with_capacity(n: usize) -> Self {
        WriteBatch {
            ops: Vec::with_capacity(n),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put(key, value));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete(key));
    }

    /// The changes, in the order they were added (a later change to one key wins).
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no changes.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Takes the changes.
    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }
}

/// An ordered map of bytes to bytes with atomic, durable batches.
///
/// An implementation must guarantee:
/// - **Atomic batches**: after [`commit`](Self::commit) returns, every change of the batch is visible, and
///   after a crash at any moment (power loss, `SIGKILL`) either all of a batch's changes survive or none.
/// - **Durable acknowledgement**: when `commit` returns `Ok`, the batch survives a crash of the process and
///   of the machine (it has been flushed to stable storage).
/// - **Order**: `scan` orders keys lexicographically by bytes.
/// - **Errors, not guesses**: a read that cannot be served returns `Err`; a full disk is
///   [`StorageError::DiskFull`]; damage the engine detects is [`StorageError::Corruption`].
///
/// It may assume that one caller commits at a time for a given key range (the chain store serializes its
/// own writers) and that keys are shorter than 64 bytes.
pub trait KvEngine: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Applies `batch` atomically and durably.
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError>;

    /// Up to `limit` entries with `from <= key < to`, ascending.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError>;

    /// Forces everything written so far to stable storage.
    fn flush(&self) -> Result<(), StorageError>;

    /// Appends `bytes` to the engine's append-only log of large values (block bodies) and makes them
    /// durable before returning; returns the offset they start at.
    ///
    /// The log exists so that large, write-once values stay out of the ordered map: the chain store
    /// appends a body first and then commits the batch that refers to it, so a crash in between leaves
    /// only bytes past the last committed reference, which [`truncate_log`](Self::truncate_log) removes.
    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError>;

    /// `len` bytes of the log at `offset`; an out-of-range read is [`StorageError::Corruption`].
    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError>;

    /// Current length of the log.
    fn log_len(&self) -> Result<u64, StorageError>;

    /// Cuts the log to `len` bytes, durably.
    fn truncate_log(&self, len: u64) -> Result<(), StorageError>;

    /// Gives back the space of `len` bytes at `offset`, which nothing refers to any more (pruned block
    /// bodies): offsets of the bytes around them do not move, and a later read of the range returns
    /// bytes that fail their checksum. Idempotent, since a crash may repeat it.
    ///
    /// The default keeps the bytes: correct, only not smaller.
    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        let _ = (offset, len);
        Ok(())
    }

    /// Bytes the engine occupies on its medium (for a file, the blocks allocated, so a discarded range
    /// no longer counts); `None` when it cannot tell.
    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}

fn log_out_of_range(offset: u64, len: usize, log_len: u64) -> StorageError {
    StorageError::Corruption {
        what: "block log",
        detail: format!("{len} bytes at {offset} lie past its end ({log_len})"),
    }
}

/// An engine that keeps everything in a `BTreeMap` behind a lock: nothing survives the process.
///
/// Bound: it holds what the chain holds, as a disk would; the chain store's own bounds (WAL limits, page
/// sizes) apply on top.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    log: RwLock<Vec<u8>>,
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flips bits of one byte of the log, to test that damage is detected.
    #[cfg(feature = "test-support")]
    pub fn flip_log_byte(&self, offset: u64) {
        let mut log = self.log.write();
        if let Some(b) = usize::try_from(offset).ok().and_then(|i| log.get_mut(i)) {
            *b ^= 0x01;
        }
    }
}

impl KvEngine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.read().get(key).cloned())
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map.write();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put(k, v) => {
                    map.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self
            .map
            .read()
            .range::<[u8], _>((
                std::ops::Bound::Included(from),
                std::ops::Bound::Excluded(to),
            ))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        let mut log = self.log.write();
        let offset = log.len() as u64;
        log.extend_from_slice(bytes);
        Ok(offset)
    }

    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let log = self.log.read();
        usize::try_from(offset)
            .ok()
            .and_then(|start| log.get(start..start.checked_add(len)?))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| log_out_of_range(offset, len, log.len() as u64))
    }

    fn log_len(&self) -> Result<u64, StorageError> {
        Ok(self.log.read().len() as u64)
    }

    fn truncate_log(&self, len: u64) -> Result<(), StorageError> {
        let mut log = self.log.write();
        log.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }

    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        // A vector cannot give back its middle; zeroes make a stray read of the range fail as it would
        // on a file with a hole.
        let mut log = self.log.write();
        let end = offset.saturating_add(len).min(log.len() as u64);
        let (Ok(start), Ok(end)) = (usize::try_from(offset), usize::try_from(end)) else {
            return Ok(());
        };
        if let Some(range) = log.get_mut(start..end) {
            range.fill(0);
        }
        Ok(())
    }
}

/// sled panics below 256 bytes of cache (one byte per shard); a megabyte keeps its tree nodes resident.
const MIN_SLED_CACHE_BYTES: u64 = 1024 * 1024;

/// How long opening waits for another handle's lock on the database to go away.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled 0.34 on disk.
///
/// A batch is one `apply_batch` on a single tree (sled makes a batch on one tree atomic across crashes)
/// followed by sled's `flush` and then an `fdatasync` of sled's data file, [`SLED_DATA_FILE`]. sled's
/// own flush does not make the write durable on Linux: it ends in `sync_file_range`, which waits for the
/// pages to be written but persists neither the file's metadata (its length, as the log grows) nor the
/// drive's write cache. The append-only log of block bodies is a plain file, [`BLOCK_LOG_FILE`], in the
/// same directory: bodies are large and written once, which is what sled's log-structured tree handles
/// worst (measured: each 1000-transaction block's body in sled added 5–9 ms to its batch, growing with
/// the database). Calls block: from async code go through [`AsyncChainStore`](crate::AsyncChainStore),
/// which runs them on the blocking pool.
pub struct SledEngine {
    db: sled::Db,
    /// sled's data file, opened once so each durable flush costs one `fdatasync` and no `open`.
    data_file: std::fs::File,
    log: BlockLogFile,
}

impl std::fmt::Debug for SledEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEngine").finish_non_exhaustive()
    }
}

impl SledEngine {
    /// Opens (creating if missing) a database in `path` with the config's cache, flush interval and mode.
    pub fn open(path: &Path, config: &StorageConfig) -> Result<Self, StorageError> {
        let new_dir = !path.exists();
        let new_db = !path.join(SLED_DATA_FILE).exists();
        let mode = match config.mode {
            ThroughputMode::HighThroughput => sled::Mode::HighThroughput,
            ThroughputMode::LowSpace => sled::Mode::LowSpace,
        };
        let flush_ms = config
            .flush_interval
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let sled_config = sled::Config::new()
            .path(path)
            .cache_capacity(config.engine_cache_bytes().max(MIN_SLED_CACHE_BYTES))
            .flush_every_ms(flush_ms)
            .mode(mode);
        // sled's background threads keep the file (and its lock) open a moment after the last handle to
        // a database drops, so a close-then-reopen within one process may find it still locked.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled_config.open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.map_err(|e| sled_error("opening the sled database", e))?,
            }
        };
        // Read access is enough: fdatasync acts on the file, whichever descriptor names it.
        let data_file = std::fs::File::open(path.join(SLED_DATA_FILE)).map_err(|e| {
            StorageError::io(
                "opening sled's data file to sync it (sled 0.34 keeps it in <dir>/db)",
                e,
            )
        })?;
        let log = BlockLogFile::open(&path.join(BLOCK_LOG_FILE))?;
        if new_db {
            // sled syncs neither the files it creates nor the directory naming them: a power loss right
            // after creation could forget the database (and its config) while a genesis batch was
            // acknowledged.
            sync_path(&path.join(SLED_CONFIG_FILE), "syncing sled's config file")?;
            data_file
                .sync_all()
                .map_err(|e| StorageError::io("syncing sled's new data file", e))?;
            sync_path(path, "syncing the database directory")?;
        }
        if new_dir {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            sync_path(
                parent,
                "syncing the directory holding the database directory",
            )?;
        }
        Ok(SledEngine { db, data_file, log })
    }

    /// Bytes sled occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.db
            .size_on_disk()
            .map_err(|e| sled_error("measuring the database", e))
    }
}

fn sled_error(context: &'static str, err: sled::Error) -> StorageError {
    match err {
        sled::Error::Io(io) => StorageError::io(context, io),
        sled::Error::Corruption { at, .. } => StorageError::Corruption {
            what: "sled log",
            detail: format!("sled detected corruption at {at:?} while {context}"),
        },
        other => StorageError::Backend {
            reason: format!("{context}: {other}"),
        },
    }
}

impl KvEngine for SledEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| sled_error("reading", e))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut sled_batch = sled::Batch::default();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put(k, v) => sled_batch.insert(k, v),
                BatchOp::Delete(k) => sled_batch.remove(k),
            }
        }
        self.db
            .apply_batch(sled_batch)
            .map_err(|e| sled_error("applying a batch", e))?;
        self.flush()
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        self.db
            .range(from..to)
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| sled_error("scanning", e))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map_err(|e| sled_error("flushing", e))?;
        // sled's flush ends in sync_file_range on Linux (see the type's docs); this is what makes it
        // durable.
        self.data_file
            .sync_data()
            .map_err(|e| StorageError::io("syncing sled's data file", e))
    }

    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        self.log.append(bytes)
    }

    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.log.read(offset, len)
    }

    fn log_len(&self) -> Result<u64, StorageError> {
        Ok(self.log.len())
    }

    fn truncate_log(&self, len: u64) -> Result<(), StorageError> {
        self.log.truncate(len)
    }

    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.log.discard(offset, len)
    }

    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        let sled = self
            .db
            .size_on_disk()
            .map_err(|e| sled_error("measuring the database", e))?;
        Ok(Some(sled.saturating_add(self.log.allocated()?)))
    }
}

/// Name of the block log beside sled's files.
pub const BLOCK_LOG_FILE: &str = "blocks.log";

/// The file in which sled 0.34 keeps its whole log (every segment), in the database directory
/// (`sled::Config::db_path`).
pub const SLED_DATA_FILE: &str = "db";

/// The file in which sled 0.34 keeps its storage parameters, written once at creation without a sync.
const SLED_CONFIG_FILE: &str = "conf";

/// `fsync`s a file or directory by path.
fn sync_path(path: &Path, context: &'static str) -> Result<(), StorageError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(context, e))
}

/// An append-only file: appended under a lock, fsynced (`sync_data`) before an append returns, read at
/// offsets without the lock.
struct BlockLogFile {
    file: std::fs::File,
    /// Length of the file; appends and truncation change it under this lock.
    len: parking_lot::Mutex<u64>,
}

impl BlockLogFile {
    fn open(path: &Path) -> Result<Self, StorageError> {
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError::io("opening the block log", e))?;
        if !existed {
            // The file's directory entry must be durable too, or a power loss could forget the file.
            if let Some(dir) = path.parent() {
                sync_path(dir, "syncing the block log's directory")?;
            }
        }
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("reading the block log's length", e))?
            .len();
        Ok(BlockLogFile {
            file,
            len: parking_lot::Mutex::new(len),
        })
    }

    fn len(&self) -> u64 {
        *self.len.lock()
    }

    fn append(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        let mut len = self.len.lock();
        let offset = *len;
        write_all_at(&self.file, bytes, offset)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StorageError::io("appending to the block log", e))?;
        *len = offset + bytes.len() as u64;
        Ok(offset)
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let guard = self.len.lock();
        let log_len = *guard;
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > log_len)
        {
            return Err(log_out_of_range(offset, len, log_len));
        }
        // Positioned reads need no lock on unix; elsewhere the lock also guards the file's cursor.
        #[cfg(unix)]
        drop(guard);
        let mut buf = vec![0u8; len];
        read_exact_at(&self.file, &mut buf, offset)
            .map_err(|e| StorageError::io("reading the block log", e))?;
        Ok(buf)
    }

    /// Punches a hole over the range, so the file system frees its whole blocks; the bytes of partial
    /// blocks at either end read as zeroes, and the file keeps its length (`KEEP_SIZE`).
    #[cfg(target_os = "linux")]
    fn discard(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        use rustix::fs::{FallocateFlags, fallocate};
        let log_len = self.len();
        let len = len.min(log_len.saturating_sub(offset));
        if len == 0 {
            return Ok(());
        }
        match fallocate(
            &self.file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        ) {
            // The hole is metadata: synced, so the space a prune reports freed stays freed after a
            // power loss (rounds are rare, so the sync costs little).
            Ok(()) => self
                .file
                .sync_all()
                .map_err(|e| StorageError::io("syncing the block log after a discard", e)),
            // A file system without holes (some network and older ones) keeps the bytes: the prune
            // still deletes their references, it only frees no space.
            Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
            Err(e) => Err(StorageError::io(
                "discarding pruned bodies from the block log",
                std::io::Error::from(e),
            )),
        }
    }

    /// Elsewhere the bytes stay (see [`KvEngine::discard_log`]'s default).
    #[cfg(not(target_os = "linux"))]
    fn discard(&self, _offset: u64, _len: u64) -> Result<(), StorageError> {
        Ok(())
    }

    /// Bytes the file occupies: its allocated blocks where the platform tells, else its length.
    fn allocated(&self) -> Result<u64, StorageError> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| StorageError::io("reading the block log's size", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(meta.blocks().saturating_mul(512))
        }
        #[cfg(not(unix))]
        {
            Ok(meta.len())
        }
    }

    fn truncate(&self, new_len: u64) -> Result<(), StorageError> {
        let mut len = self.len.lock();
        self.file
            .set_len(new_len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| StorageError::io("truncating the block log", e))?;
        *len = new_len;
        Ok(())
    }
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

// Elsewhere, positioned I/O through the shared cursor; `BlockLogFile` holds its lock around each call.
#[cfg(not(unix))]
fn write_all_at(mut file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// The engine chosen by [`StorageConfig::backend`], for callers that pick the backend at run time.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyEngine {
    /// [`MemoryEngine`].
    Memory(MemoryEngine),
    /// [`SledEngine`].
    Sled(SledEngine),
}

impl AnyEngine {
    /// Opens the engine the config names.
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        config.validate()?;
        Ok(match &config.backend {
            BackendKind::Memory => AnyEngine::Memory(MemoryEngine::new()),
            BackendKind::Sled { path } => AnyEngine::Sled(SledEngine::open(path, config)?),
        })
    }

    fn inner(&self) -> &dyn KvEngine {
        match self {
            AnyEngine::Memory(e) => e,
            AnyEngine::Sled(e) => e,
        }
    }
}

impl KvEngine for AnyEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner().get(key)
    }
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.inner().commit(batch)
    }
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError> {
        self.inner().scan(from, to, limit)
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner().flush()
    }
    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        self.inner().append_log(bytes)
    }
    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.inner().read_log(offset, len)
    }
    fn log_len(&self) -> Result<u64, StorageError> {
        self.inner().log_len()
    }
    fn truncate_log(&self, len: u64) -> Result<(), StorageError> {
        self.inner().truncate_log(len)
    }
    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.inner().discard_log(offset, len)
    }
    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        self.inner().size_on_disk()
    }
}

/// A shared engine: several stores over time (a reopen in a test, a tool next to the node) see one map.
impl<E: KvEngine> KvEngine for std::sync::Arc<E> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get(key)
    }
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        (**self).commit(batch)
    }
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError> {
        (**self).scan(from, to, limit)
    }
    fn flush(&self) -> Result<(), StorageError> {
        (**self).flush()
    }
    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        (**self).append_log(bytes)
    }
    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        (**self).read_log(offset, len)
    }
    fn log_len(&self) -> Result<u64, StorageError> {
        (**self).log_len()
    }
    fn truncate_log(&self, len: u64) -> Result<(), StorageError> {
        (**self).truncate_log(len)
    }
    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        (**self).discard_log(offset, len)
    }
    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        (**self).size_on_disk()
    }
}
