//! Deleting old block bodies while keeping every header and certificate.
//!
//! One round reads the bodies from the floor up, deletes the references of those the caller's rule does
//! not keep, writes each one's header under `p`, raises the floor and records the log ranges to give
//! back, all in one batch. Only after that batch is durable are the ranges discarded (a hole punched in
//! the log), and then the record of them deleted. A crash before the batch leaves everything; a crash
//! after it leaves the record, and the next open or prune finishes the discard. Discarding is
//! idempotent, so doing it twice is harmless.

use std::sync::atomic::Ordering;

use timecoin_types::{BlockHeader, Height};
use tracing::debug;

use crate::chain::{ChainDb, read_body};
use crate::engine::{KvEngine, WriteBatch};
use crate::record::{self, BodyRef, MAX_DISCARD_RANGES};
use crate::{BlockStore, PruneReport, StorageError};

pub(crate) fn prune<E: KvEngine>(
    db: &ChainDb<E>,
    tip: Height,
    below: Height,
    max_blocks: usize,
    keep: &dyn Fn(&BlockHeader, Option<&BlockHeader>) -> bool,
) -> Result<PruneReport, StorageError> {
    finish_discard(&db.engine)?;
    let floor = db.body_floor();
    // The tip's body stays: the next block's checks and a restart read it.
    let end = below
        .min(tip)
        .min(floor.saturating_add(max_blocks.min(MAX_DISCARD_RANGES) as u64));
    let mut report = PruneReport {
        floor,
        ..PruneReport::default()
    };
    if end <= floor {
        return Ok(report);
    }
    let base = db.base_height()?;
    let mut parent = match floor.checked_sub(1) {
        Some(h) if h >= base => Some(db.header_at(h)?.ok_or_else(|| missing("header", h))?.header),
        _ => None,
    };
    let mut batch = WriteBatch::default();
    let mut ranges: Vec<BodyRef> = Vec::new();
    for height in floor..end {
        let key = record::height_key(record::BLOCK, height);
        // The floor and the deletions below it commit together, so a body missing above the floor is
        // damage, never a half-done round.
        let value = db
            .engine
            .get(&key)?
            .ok_or_else(|| missing("body", height))?;
        let body = record::open_body_ref(&key, &value)?;
        let header = read_body(&db.engine, height, body)?.header;
        // Genesis has no certificate to stand in for its body, and every chain's store holds it.
        if height == 0 || keep(&header, parent.as_ref()) {
            report.kept += 1;
        } else {
            batch.delete(key);
            let header_key = record::height_key(record::PRUNED_HEADER, height);
            let sealed = record::seal_pruned_header(&header_key, &header);
            batch.put(header_key, sealed);
            report.pruned += 1;
            report.bytes += body.len;
            ranges.push(body);
        }
        parent = Some(header);
    }
    batch.put(
        record::BODY_FLOOR_KEY.to_vec(),
        record::seal_body_floor(end),
    );
    let ranges = merge(ranges);
    if !ranges.is_empty() {
        batch.put(record::DISCARD_KEY.to_vec(), record::seal_discard(&ranges));
    }
    db.commit(batch)?;
    db.body_floor.store(end, Ordering::Release);
    report.floor = end;
    if !ranges.is_empty() {
        discard(&db.engine, &ranges)?;
    }
    debug!(
        pruned = report.pruned,
        kept = report.kept,
        bytes = report.bytes,
        floor = end,
        "pruned block bodies"
    );
    Ok(report)
}

/// Gives back the ranges a committed prune recorded, if any, and deletes the record.
pub(crate) fn finish_discard<E: KvEngine>(engine: &E) -> Result<(), StorageError> {
    let Some(value) = engine.get(record::DISCARD_KEY)? else {
        return Ok(());
    };
    let ranges = record::open_discard(&value)?;
    discard(engine, &ranges)
}

fn discard<E: KvEngine>(engine: &E, ranges: &[BodyRef]) -> Result<(), StorageError> {
    for r in ranges {
        engine.discard_log(r.offset, r.len)?;
    }
    let mut batch = WriteBatch::default();
    batch.delete(record::DISCARD_KEY.to_vec());
    engine.commit(batch)
}

/// Adjacent bodies as one range: a hole over both frees the blocks they share too.
fn merge(mut ranges: Vec<BodyRef>) -> Vec<BodyRef> {
    ranges.sort_by_key(|r| r.offset);
    let mut merged: Vec<BodyRef> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.offset.saturating_add(last.len) == r.offset => last.len += r.len,
            _ => merged.push(r),
        }
    }
    merged
}

fn missing(what: &str, height: Height) -> StorageError {
    StorageError::Corruption {
        what: "chain",
        detail: format!("block {height}'s {what} is missing above the body floor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_ranges_merge_and_gaps_stay() {
        let r = |offset, len| BodyRef { offset, len };
        assert_eq!(
            merge(vec![r(10, 5), r(0, 10), r(20, 5), r(25, 1)]),
            vec![r(0, 15), r(20, 6)]
        );
    }
}
