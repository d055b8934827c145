//! The consensus-state half of [`ChainDb`]: the last-signed record and the write-ahead log.

use timecoin_types::Height;

use tracing::debug;

use crate::chain::ChainDb;
use crate::engine::{KvEngine, KvPair, WriteBatch};
use crate::record;
use crate::scan::{ChunkedScan, SCAN_CHUNK, for_each_in_range};
use crate::{ConsensusStateStore, StorageError};

/// Largest last-signed record accepted: a height, view, phase and a vote fit many times over.
pub const MAX_SIGNED_STATE_BYTES: usize = 64 * 1024;
/// Largest WAL entry accepted: one network message (a proposal carries a whole block).
pub const MAX_WAL_ENTRY_BYTES: usize = timecoin_types::MAX_MESSAGE_BYTES;

impl<E: KvEngine> ConsensusStateStore for ChainDb<E> {
    fn save_signed(&self, state: &[u8]) -> Result<(), StorageError> {
        self.check_halted()?;
        if state.len() > MAX_SIGNED_STATE_BYTES {
            return Err(StorageError::TooLarge {
                what: "last-signed record",
                len: state.len(),
                max: MAX_SIGNED_STATE_BYTES,
            });
        }
        let mut batch = WriteBatch::with_capacity(1);
        batch.put(
            record::SIGNED_KEY.to_vec(),
            record::seal(record::SIGNED_KEY, state.to_vec()),
        );
        self.commit(batch)
    }

    fn last_signed(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_halted()?;
        match self.engine.get(record::SIGNED_KEY)? {
            Some(v) => {
                record::open("last-signed record", record::SIGNED_KEY, &v).map(|p| Some(p.to_vec()))
            }
            None => Ok(None),
        }
    }

    fn append_wal(&self, height: Height, entry: &[u8]) -> Result<(), StorageError> {
        self.check_halted()?;
        if entry.len() > MAX_WAL_ENTRY_BYTES {
            return Err(StorageError::TooLarge {
                what: "WAL entry",
                len: entry.len(),
                max: MAX_WAL_ENTRY_BYTES,
            });
        }
        let mut wal = self.wal.lock();
        let len = entry.len() as u64;
        if wal.entries >= self.wal_max_entries || wal.bytes + len > self.wal_max_bytes {
            return Err(StorageError::WalFull {
                entries: wal.entries,
                bytes: wal.bytes,
                max_entries: self.wal_max_entries,
                max_bytes: self.wal_max_bytes,
            });
        }
        let pieces = record::seal_pieces(&record::wal_key(height, wal.next_seq), entry);
        let mut batch = WriteBatch::with_capacity(pieces.len());
        for (key, value) in pieces {
            batch.put(key, value);
        }
        self.commit(batch)?;
        wal.next_seq += 1;
        wal.entries += 1;
        wal.bytes += len;
        Ok(())
    }

    fn replay(&self, from_height: Height) -> Result<Vec<Vec<u8>>, StorageError> {
        self.check_halted()?;
        let wal = self.wal.lock();
        let pruned_below = wal.pruned_below;
        let from = record::wal_key(from_height, 0);
        let to = [record::WAL + 1];
        let mut out = Vec::new();
        // Pieces of one entry are adjacent (they share the key's first bytes); an entry may straddle
        // two chunks of the walk.
        let mut entry: Vec<KvPair> = Vec::new();
        let finish = |entry: &mut Vec<KvPair>, out: &mut Vec<Vec<u8>>| {
            let Some((first, _)) = entry.first() else {
                return Ok(());
            };
            let base = first
                .get(..record::WAL_ENTRY_KEY_LEN)
                .unwrap_or(first)
                .to_vec();
            let (_, starts_entry) = record::wal_piece(first)?;
            let height = record::wal_height(first)?;
            if !starts_entry && height < pruned_below {
                // A prune deletes pieces in key order, batch by batch: a crash between two batches
                // leaves the tail of an entry it had begun to delete. That entry was pruned.
                debug!(
                    height,
                    pieces = entry.len(),
                    "skipping the rest of a WAL entry a pruning left"
                );
            } else if let Some(bytes) = record::open_pieces("WAL entry", &base, entry)? {
                out.push(bytes);
            }
            entry.clear();
            Ok::<(), StorageError>(())
        };
        for_each_in_range(&self.engine, &from, &to, |key, value| {
            record::wal_piece(&key)?;
            let same_entry = entry.first().is_some_and(|(k, _)| {
                k.get(..record::WAL_ENTRY_KEY_LEN) == key.get(..record::WAL_ENTRY_KEY_LEN)
            });
            if !same_entry {
                finish(&mut entry, &mut out)?;
            }
            entry.push((key, value));
            Ok(())
        })?;
        finish(&mut entry, &mut out)?;
        drop(wal);
        Ok(out)
    }

    /// Deletes in batches of up to 4096 pieces. The first batch also records `height` as the prune
    /// floor, so a crash midway, which leaves a prefix pruned and possibly one entry below `height` cut
    /// short, leaves nothing that replay mistakes for damage; a repeated call finishes the job.
    fn prune_below(&self, height: Height) -> Result<(), StorageError> {
        self.check_halted()?;
        let mut wal = self.wal.lock();
        let to = record::wal_key(height, 0);
        // The WAL lock keeps appends out until the prune is done, so after a chunk is deleted nothing
        // is left below the point the walk resumes from.
        let mut scan = ChunkedScan::new(&self.engine, &[record::WAL], &to);
        while let Some(chunk) = scan.next_chunk(SCAN_CHUNK)? {
            let mut batch = WriteBatch::with_capacity(chunk.len() + 1);
            let raise_floor = height > wal.pruned_below;
            if raise_floor {
                batch.put(
                    record::WAL_PRUNED_KEY.to_vec(),
                    record::seal_wal_pruned(height),
                );
            }
            let mut freed = 0u64;
            let mut removed = 0u64;
            for (key, value) in chunk {
                let (_, first) = record::wal_piece(&key)?;
                freed += record::wal_piece_payload_len(&value, first);
                removed += u64::from(first);
                batch.delete(key);
            }
            self.commit(batch)?;
            if raise_floor {
                wal.pruned_below = height;
            }
            wal.entries = wal.entries.saturating_sub(removed);
            wal.bytes = wal.bytes.saturating_sub(freed);
        }
        Ok(())
    }
}
