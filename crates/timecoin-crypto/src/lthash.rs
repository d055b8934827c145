//! A homomorphic multiset hash for the UTXO set.
//!
//! `LtHash` (Bellare–Micciancio's "lattice hash", in the 16-bit × 1024-lane form of Lewi et al., *Securing
//! Update Propagation with Homomorphic Hashing*, 2019) maps each element to 1024 lanes of 16 bits with
//! BLAKE3's extendable output, and a set to the lane-wise sum modulo 2¹⁶. Adding an output to the UTXO set
//! adds its lanes; spending it subtracts them. So a block changes the commitment in O(changes), never by
//! rehashing the set, and two nodes that applied the same blocks in any grouping hold the same value.
//! The header carries [`LtHash::checksum`], a 32-byte digest of the 2 KiB state.

use crate::{CryptoError, Hash, HashDomain, Hasher};

/// Number of 16-bit lanes.
pub const LTHASH_LANES: usize = 1024;
/// Size of the serialized state.
pub const LTHASH_BYTES: usize = LTHASH_LANES * 2;

/// The multiset hash state; the empty set is all zeros.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash {
    lanes: Box<[u16; LTHASH_LANES]>,
}

impl Default for LtHash {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({:?})", self.checksum())
    }
}

impl LtHash {
    /// The hash of the empty set.
    pub fn new() -> Self {
        LtHash {
            lanes: Box::new([0; LTHASH_LANES]),
        }
    }

    fn expand(element: &[u8]) -> [u16; LTHASH_LANES] {
        let mut bytes = [0u8; LTHASH_BYTES];
        Hasher::new(HashDomain::UtxoElement)
            .update(element)
            .finalize_xof()
            .fill(&mut bytes);
        let mut lanes = [0u16; LTHASH_LANES];
        for (lane, pair) in lanes.iter_mut().zip(bytes.as_chunks::<2>().0) {
            *lane = u16::from_le_bytes(*pair);
        }
        lanes
    }

    /// Adds one element (the canonical encoding of an unspent output with its outpoint).
    pub fn insert(&mut self, element: &[u8]) {
        let e = Self::expand(element);
        for (a, b) in self.lanes.iter_mut().zip(e.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Removes one element previously inserted.
    pub fn remove(&mut self, element: &[u8]) {
        let e = Self::expand(element);
        for (a, b) in self.lanes.iter_mut().zip(e.iter()) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// Adds every element of another multiset.
    pub fn combine(&mut self, other: &LtHash) {
        for (a, b) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Removes every element of another multiset.
    pub fn subtract(&mut self, other: &LtHash) {
        for (a, b) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// The 32-byte commitment written into block headers.
    pub fn checksum(&self) -> Hash {
        Hasher::new(HashDomain::UtxoCommitment)
            .update(&self.to_bytes())
            .finalize()
    }

    /// The full state, 2048 bytes little-endian, for persistence.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    /// Reads a state written by [`LtHash::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != LTHASH_BYTES {
            return Err(CryptoError::InvalidLtHashLength {
                expected: LTHASH_BYTES,
                found: bytes.len(),
            });
        }
        let mut lanes = Box::new([0u16; LTHASH_LANES]);
        for (lane, pair) in lanes.iter_mut().zip(bytes.as_chunks::<2>().0) {
            *lane = u16::from_le_bytes(*pair);
        }
        Ok(LtHash { lanes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insert_then_remove_is_identity() {
        let mut h = LtHash::new();
        h.insert(b"a");
        h.insert(b"b");
        h.remove(b"a");
        h.remove(b"b");
        assert_eq!(h, LtHash::new());
    }

    #[test]
    fn multiplicity_counts() {
        let mut once = LtHash::new();
        once.insert(b"a");
        let mut twice = once.clone();
        twice.insert(b"a");
        assert_ne!(once.checksum(), twice.checksum());
    }

    proptest! {
        #[test]
        fn order_and_grouping_do_not_matter(elems in proptest::collection::vec(any::<Vec<u8>>(), 0..20), split in 0usize..20) {
            let mut all = LtHash::new();
            for e in &elems { all.insert(e); }
            let split = split.min(elems.len());
            let (a, b) = elems.split_at(split);
            let mut ha = LtHash::new();
            for e in a.iter().rev() { ha.insert(e); }
            let mut hb = LtHash::new();
            for e in b { hb.insert(e); }
            ha.combine(&hb);
            prop_assert_eq!(&ha, &all);
            ha.subtract(&hb);
            let mut only_a = LtHash::new();
            for e in a { only_a.insert(e); }
            prop_assert_eq!(ha, only_a);
            prop_assert_eq!(LtHash::from_bytes(&all.to_bytes()).ok(), Some(all));
        }
    }
}
