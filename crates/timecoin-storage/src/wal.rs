//! What the chain store keeps in memory about its consensus WAL, counted once when the store opens.

use timecoin_types::Height;

use crate::StorageError;
use crate::engine::KvEngine;
use crate::record;
use crate::scan::for_each_in_range;

/// What the WAL holds, so its bounds are checked without a scan.
pub(crate) struct WalState {
    pub(crate) next_seq: u64,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    /// The highest height a prune has deleted below: pieces under it that lack their entry's first
    /// piece are what a prune interrupted by a crash left, not damage.
    pub(crate) pruned_below: Height,
}

/// Walks the WAL once at open: its entries, payload bytes and the next sequence number.
pub(crate) fn count_wal<E: KvEngine>(engine: &E) -> Result<WalState, StorageError> {
    let mut wal = WalState {
        next_seq: 0,
        entries: 0,
        bytes: 0,
        pruned_below: match engine.get(record::WAL_PRUNED_KEY)? {
            Some(value) => record::open_wal_pruned(&value)?,
            None => 0,
        },
    };
    for_each_in_range(engine, &[record::WAL], &[record::WAL + 1], |key, value| {
        let (seq, first) = record::wal_piece(&key)?;
        wal.next_seq = wal.next_seq.max(seq + 1);
        wal.bytes += record::wal_piece_payload_len(&value, first);
        if first {
            wal.entries += 1;
        }
        Ok(())
    })?;
    Ok(wal)
}
