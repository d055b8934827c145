//! A bounded memo of decompressed public keys.
//!
//! Turning 32 bytes into a curve point and checking it (what [`PublicKey::from_bytes`] does) costs a
//! field square root, about as much as a third of a signature check. A node decodes the same few keys
//! over and over: every vote names one of the validators, and a block's transactions were usually
//! decoded once already when they reached the mempool. The memo maps a valid key's bytes to its point,
//! so a key is decompressed once while it is in use.
//!
//! It is a memo of a pure function: a hit returns exactly the point a miss computes, and only keys that
//! passed every check are stored, so it changes how fast a key is decoded, never whether it is accepted.
//! Bound: [`SHARDS`] × [`SHARD_CAPACITY`] keys (about 13 MiB); a full shard is emptied and refills with
//! the keys in use, which keeps the bound without bookkeeping on every hit.
//!
//! [`PublicKey::from_bytes`]: crate::PublicKey::from_bytes

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use curve25519_dalek::edwards::EdwardsPoint;

/// Independent locks, so threads decoding different keys rarely wait for each other.
pub const SHARDS: usize = 16;
/// Keys kept per shard.
pub const SHARD_CAPACITY: usize = 4096;

type Shard = Mutex<HashMap<[u8; 32], EdwardsPoint>>;

fn shards() -> &'static [Shard; SHARDS] {
    static CACHE: OnceLock<[Shard; SHARDS]> = OnceLock::new();
    CACHE.get_or_init(|| std::array::from_fn(|_| Mutex::new(HashMap::new())))
}

/// Off only in benchmarks that measure decoding keys never seen before.
static ENABLED: AtomicBool = AtomicBool::new(true);

fn shard(bytes: &[u8; 32]) -> Option<&'static Shard> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    // The low byte of y is uniform over keys, so shards fill evenly.
    shards().get(usize::from(bytes[0]) % SHARDS)
}

/// The point of a key decoded before, if it is still remembered.
pub(crate) fn get(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    // A poisoned lock only means another thread panicked mid-insert; the memo is then skipped.
    shard(bytes)?.lock().ok()?.get(bytes).copied()
}

/// Remembers the point of a key that passed every check.
pub(crate) fn insert(bytes: [u8; 32], point: EdwardsPoint) {
    let Some(mut map) = shard(&bytes).and_then(|s| s.lock().ok()) else {
        return;
    };
    if map.len() >= SHARD_CAPACITY {
        map.clear();
    }
    map.insert(bytes, point);
}

/// Turns the memo on or off for the whole process (it starts on). Benchmarks turn it off to measure
/// blocks whose every key is new to the node; a node has no reason to.
#[doc(hidden)]
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Forgets every key. Benchmarks call it to measure decoding keys never seen before; a node has no
/// reason to.
#[doc(hidden)]
pub fn clear() {
    for shard in shards() {
        if let Ok(mut map) = shard.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::{CryptoError, PublicKey, SecretKey, SigDomain};

    #[test]
    fn a_remembered_key_verifies_as_a_fresh_one_and_bad_keys_are_never_remembered() {
        let secret = SecretKey::from_seed(&[42; 32]);
        let bytes = *secret.public_key().as_bytes();
        super::clear();
        let fresh = PublicKey::from_bytes(&bytes).unwrap();
        assert_eq!(super::get(&bytes), Some(*fresh.point()));
        let remembered = PublicKey::from_bytes(&bytes).unwrap();
        assert_eq!(remembered.point(), fresh.point());
        let chain = crate::ChainId(7);
        let signature = secret.sign(SigDomain::Vote, chain, b"m");
        assert_eq!(
            remembered.verify(SigDomain::Vote, chain, b"m", &signature),
            Ok(())
        );
        // The identity (small order) is refused every time and never stored.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert_eq!(
                PublicKey::from_bytes(&identity),
                Err(CryptoError::SmallOrderKey)
            );
            assert_eq!(super::get(&identity), None);
        }
    }

    #[test]
    fn a_full_shard_is_emptied_so_the_memo_stays_bounded() {
        for i in 0..(super::SHARD_CAPACITY as u32 + 10) {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let key = SecretKey::from_seed(&seed).public_key();
            super::insert(*key.as_bytes(), *key.point());
        }
        for shard in super::shards() {
            assert!(shard.lock().unwrap().len() <= super::SHARD_CAPACITY);
        }
    }
}
