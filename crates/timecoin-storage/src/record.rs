//! The on-disk layout: one ordered keyspace with a one-byte prefix per record kind, and every value sealed
//! with a checksum over its key and payload.
//!
//! One keyspace (rather than a tree per kind) because sled makes a batch atomic only within one tree, and a
//! block's UTXO changes, body, certificate and tip must land together.
//!
//! | key | value |
//! | --- | --- |
//! | `u` ‖ txid ‖ vout (BE) | the unspent [`TxOut`] |
//! | `b` ‖ height (BE) | the [`Block`] |
//! | `c` ‖ height (BE) | its [`CommitCertificate`] (absent for genesis) |
//! | `h` ‖ block hash | its height |
//! | `m` `t` | the [`TipRecord`]: genesis, tip, UTXO count and multiset-hash state |
//! | `s` | the last-signed consensus state (opaque) |
//! | `w` ‖ height (BE) ‖ sequence (BE) | one consensus WAL entry (opaque) |
//!
//! Big-endian numbers make key order equal numeric order, so a UTXO scan walks outpoints in `Ord` order
//! and a WAL scan walks heights, then arrival order.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{Hash, HashDomain, Hasher};
use timecoin_types::codec::{decode_bounded, encode};
use timecoin_types::{Block, BlockHash, CommitCertificate, Height, OutPoint, TxId, TxOut, Wire};

use crate::StorageError;

pub(crate) const UTXO: u8 = b'u';
pub(crate) const BLOCK: u8 = b'b';
pub(crate) const CERTIFICATE: u8 = b'c';
pub(crate) const HASH_INDEX: u8 = b'h';
pub(crate) const WAL: u8 = b'w';
pub(crate) const TIP_KEY: &[u8] = b"mt";
pub(crate) const SIGNED_KEY: &[u8] = b"s";

/// Bytes of checksum appended to every value: 64 bits make an undetected random corruption a 2⁻⁶⁴ event.
pub(crate) const CHECKSUM_LEN: usize = 8;
/// An encoded [`TxOut`] is 8 + 32 bytes at most plus varint slack.
const MAX_TXOUT_BYTES: usize = 64;
/// The tip record holds a 2 KiB multiset-hash state plus a few fixed fields.
const MAX_TIP_BYTES: usize = 4096;

pub(crate) fn utxo_key(op: &OutPoint) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 32 + 4);
    k.push(UTXO);
    k.extend_from_slice(op.txid.0.as_bytes());
    k.extend_from_slice(&op.vout.to_be_bytes());
    k
}

pub(crate) fn outpoint_from_key(key: &[u8]) -> Result<OutPoint, StorageError> {
    let bad = || StorageError::Corruption {
        what: "UTXO key",
        detail: format!("{} bytes, expected 37", key.len()),
    };
    let (prefix, rest) = key.split_first().ok_or_else(bad)?;
    if *prefix != UTXO || rest.len() != 36 {
        return Err(bad());
    }
    let (txid, vout) = rest.split_at(32);
    let txid: [u8; 32] = txid.try_into().map_err(|_| bad())?;
    let vout: [u8; 4] = vout.try_into().map_err(|_| bad())?;
    Ok(OutPoint {
        txid: TxId(Hash::from_bytes(txid)),
        vout: u32::from_be_bytes(vout),
    })
}

/// First key of the UTXO range, and the key just past it.
pub(crate) fn utxo_range() -> ([u8; 1], [u8; 1]) {
    ([UTXO], [UTXO + 1])
}

pub(crate) fn height_key(prefix: u8, height: Height) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(prefix);
    k.extend_from_slice(&height.to_be_bytes());
    k
}

pub(crate) fn hash_index_key(hash: &BlockHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(HASH_INDEX);
    k.extend_from_slice(hash.0.as_bytes());
    k
}

pub(crate) fn wal_key(height: Height, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(WAL);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn wal_seq_from_key(key: &[u8]) -> Result<u64, StorageError> {
    key.get(9..17)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corruption {
            what: "WAL key",
            detail: format!("{} bytes, expected 17", key.len()),
        })
}

fn checksum(key: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Hasher::new(HashDomain::Custom("timecoin storage record v1"))
        .update(&(key.len() as u64).to_le_bytes())
        .update(key)
        .update(payload)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest.as_bytes()[..CHECKSUM_LEN]);
    out
}

/// `payload ‖ checksum(key, payload)`. The key is covered so a value moved to another key is caught too.
pub(crate) fn seal(key: &[u8], mut payload: Vec<u8>) -> Vec<u8> {
    let sum = checksum(key, &payload);
    payload.extend_from_slice(&sum);
    payload
}

/// Checks the checksum and returns the payload, or [`StorageError::Corruption`].
pub(crate) fn open<'v>(
    what: &'static str,
    key: &[u8],
    value: &'v [u8],
) -> Result<&'v [u8], StorageError> {
    let split = value
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| StorageError::Corruption {
            what,
            detail: format!("{} bytes, shorter than its checksum", value.len()),
        })?;
    let (payload, sum) = value.split_at(split);
    if sum != checksum(key, payload) {
        return Err(StorageError::Corruption {
            what,
            detail: "checksum mismatch".into(),
        });
    }
    Ok(payload)
}

pub(crate) fn seal_txout(key: &[u8], out: &TxOut) -> Vec<u8> {
    seal(key, encode(out))
}

pub(crate) fn open_txout(key: &[u8], value: &[u8]) -> Result<TxOut, StorageError> {
    let payload = open("UTXO", key, value)?;
    decode_bounded(payload, "UTXO", MAX_TXOUT_BYTES)
        .map_err(|e| StorageError::undecodable("UTXO", e))
}

pub(crate) fn open_block(key: &[u8], value: &[u8]) -> Result<Block, StorageError> {
    let payload = open("block", key, value)?;
    Block::decode(payload).map_err(|e| StorageError::undecodable("block", e))
}

pub(crate) fn open_certificate(
    key: &[u8],
    value: &[u8],
) -> Result<CommitCertificate, StorageError> {
    let payload = open("certificate", key, value)?;
    CommitCertificate::decode(payload).map_err(|e| StorageError::undecodable("certificate", e))
}

pub(crate) fn open_height(key: &[u8], value: &[u8]) -> Result<Height, StorageError> {
    let payload = open("block hash index", key, value)?;
    let bytes: [u8; 8] = payload.try_into().map_err(|_| StorageError::Corruption {
        what: "block hash index",
        detail: format!("{} bytes, expected 8", payload.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// What the store knows about its chain as a whole, rewritten with every block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TipRecord {
    /// Hash of block 0: a store opened with another genesis is refused.
    pub(crate) genesis: BlockHash,
    /// Height of the last applied block.
    pub(crate) height: Height,
    /// Its hash.
    pub(crate) hash: BlockHash,
    /// Unspent outputs in the set.
    pub(crate) utxo_count: u64,
    /// [`timecoin_crypto::LtHash::to_bytes`] of the set.
    pub(crate) utxo_hash: Vec<u8>,
}

pub(crate) fn seal_tip(tip: &TipRecord) -> Vec<u8> {
    seal(TIP_KEY, encode(tip))
}

pub(crate) fn open_tip(value: &[u8]) -> Result<TipRecord, StorageError> {
    let payload = open("tip record", TIP_KEY, value)?;
    decode_bounded(payload, "tip record", MAX_TIP_BYTES)
        .map_err(|e| StorageError::undecodable("tip record", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_anywhere_is_corruption() {
        let key = b"k1".to_vec();
        let sealed = seal(&key, b"payload".to_vec());
        assert_eq!(open("test", &key, &sealed).unwrap(), b"payload");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(matches!(
                open("test", &key, &bad),
                Err(StorageError::Corruption { .. })
            ));
        }
        assert!(matches!(
            open("test", b"k2", &sealed),
            Err(StorageError::Corruption { .. })
        ));
        assert!(matches!(
            open("test", &key, &[1, 2]),
            Err(StorageError::Corruption { .. })
        ));
    }

    #[test]
    fn utxo_keys_sort_like_outpoints() {
        let a = OutPoint {
            txid: TxId(Hash::from_bytes([1; 32])),
            vout: 255,
        };
        let b = OutPoint {
            txid: TxId(Hash::from_bytes([1; 32])),
            vout: 256,
        };
        let c = OutPoint {
            txid: TxId(Hash::from_bytes([2; 32])),
            vout: 0,
        };
        assert!(a < b && b < c);
        assert!(utxo_key(&a) < utxo_key(&b) && utxo_key(&b) < utxo_key(&c));
        assert_eq!(outpoint_from_key(&utxo_key(&b)).unwrap(), b);
    }
}
