//! Walking a key range a bounded chunk at a time, so that no walk holds a whole range (the UTXO set, the
//! WAL) in memory at once.

use crate::StorageError;
use crate::engine::{KvEngine, KvPair};

/// Entries read per engine scan when walking a range (warming the cache, counting or pruning the WAL).
pub(crate) const SCAN_CHUNK: usize = 4096;

/// The smallest key greater than `key`: `key ‖ 0`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// A walk over `from <= key < to` in ascending key order, one engine scan per chunk.
///
/// A chunk starts at the [`successor`] of the previous chunk's last key: no key sorts between a key and
/// that key followed by a zero byte, so resuming there skips nothing and repeats nothing.
pub(crate) struct ChunkedScan<'a, E: KvEngine> {
    engine: &'a E,
    start: Vec<u8>,
    to: &'a [u8],
}

impl<'a, E: KvEngine> ChunkedScan<'a, E> {
    pub(crate) fn new(engine: &'a E, from: &[u8], to: &'a [u8]) -> Self {
        ChunkedScan {
            engine,
            start: from.to_vec(),
            to,
        }
    }

    /// The next up to `limit` entries (`limit` > 0), or `None` when the range holds no more.
    pub(crate) fn next_chunk(&mut self, limit: usize) -> Result<Option<Vec<KvPair>>, StorageError> {
        let chunk = self.engine.scan(&self.start, self.to, limit)?;
        let Some((last_key, _)) = chunk.last() else {
            return Ok(None);
        };
        self.start = successor(last_key);
        Ok(Some(chunk))
    }
}

/// Calls `f` with every entry of `from <= key < to`, in key order, stopping at its first error.
pub(crate) fn for_each_in_range<E: KvEngine>(
    engine: &E,
    from: &[u8],
    to: &[u8],
    mut f: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut scan = ChunkedScan::new(engine, from, to);
    while let Some(chunk) = scan.next_chunk(SCAN_CHUNK)? {
        for (key, value) in chunk {
            f(key, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ChunkedScan, SCAN_CHUNK, for_each_in_range};
    use crate::engine::{KvEngine, MemoryEngine, WriteBatch};

    fn engine_with(keys: &[&[u8]]) -> MemoryEngine {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.put(key.to_vec(), key.to_vec());
        }
        engine.commit(batch).unwrap();
        engine
    }

    // `key ‖ 0` sorts right after `key`: a chunk ending at a key must not skip the keys it prefixes.
    #[test]
    fn chunks_of_one_visit_keys_that_extend_the_last_one() {
        let engine = engine_with(&[b"a", b"b", b"b\0", b"b\0\0", b"b\x01", b"c", b"d"]);
        let mut scan = ChunkedScan::new(&engine, b"b", b"d");
        let mut seen = Vec::new();
        while let Some(chunk) = scan.next_chunk(1).unwrap() {
            assert_eq!(chunk.len(), 1);
            seen.extend(chunk.into_iter().map(|(k, _)| k));
        }
        let expected: Vec<Vec<u8>> = [&b"b"[..], b"b\0", b"b\0\0", b"b\x01", b"c"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_range_longer_than_a_chunk_is_walked_whole_and_in_order() {
        let keys: Vec<Vec<u8>> = (0..2 * SCAN_CHUNK as u32 + 7)
            .map(|i| [&b"k"[..], &i.to_be_bytes()].concat())
            .collect();
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for key in &keys {
            batch.put(key.clone(), key.clone());
        }
        batch.put(b"l".to_vec(), Vec::new());
        engine.commit(batch).unwrap();
        let mut seen = Vec::new();
        for_each_in_range(&engine, b"k", b"l", |key, value| {
            assert_eq!(key, value);
            seen.push(key);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, keys);
    }

    #[test]
    fn the_first_error_ends_the_walk() {
        let engine = engine_with(&[b"a", b"b", b"c"]);
        let mut calls = 0;
        let err = for_each_in_range(&engine, b"a", b"z", |_, _| {
            calls += 1;
            Err(crate::StorageError::Corruption {
                what: "test",
                detail: String::new(),
            })
        });
        assert!(err.is_err());
        assert_eq!(calls, 1);
    }
}
