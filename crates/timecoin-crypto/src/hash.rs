//! BLAKE3 hashing with domain separation, and a Merkle root over transaction ids.
//!
//! Why BLAKE3 rather than double SHA-256: BLAKE3 has no length-extension weakness (so the "double" in
//! double SHA-256 buys nothing), has a key-derivation mode that gives each purpose its own hash function
//! for free, is several times faster than SHA-256 on machines without SHA extensions, and offers an
//! extendable output that the UTXO multiset hash ([`crate::LtHash`]) needs.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CryptoError, HashDomain};

/// Length of every hash in TimeCoin.
pub const HASH_LEN: usize = 32;

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash, used as the parent of the genesis block.
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        crate::bytes::from_hex(s, "hash").map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight bytes are enough to tell hashes apart in logs and test failures.
        write!(f, "Hash({}…)", hex::encode(&self.0[..8]))
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::bytes::deserialize(d).map(Hash)
    }
}

/// One hasher template per built-in domain: deriving the context key costs a compression, cloning a
/// prepared hasher does not.
static TEMPLATES: LazyLock<[(HashDomain, blake3::Hasher); 11]> = LazyLock::new(|| {
    [
        HashDomain::TxId,
        HashDomain::BlockHeader,
        HashDomain::TxWitness,
        HashDomain::MerkleLeaf,
        HashDomain::MerkleNode,
        HashDomain::MerkleEmpty,
        HashDomain::UtxoElement,
        HashDomain::UtxoCommitment,
        HashDomain::Address,
        HashDomain::Consensus,
        HashDomain::GenesisAllocations,
    ]
    .map(|d| (d, blake3::Hasher::new_derive_key(d.context())))
});

/// An incremental hasher bound to one [`HashDomain`].
#[derive(Clone)]
pub struct Hasher(blake3::Hasher);

impl Hasher {
    /// Starts a hash in `domain`.
    pub fn new(domain: HashDomain) -> Self {
        match TEMPLATES.iter().find(|(d, _)| *d == domain) {
            Some((_, h)) => Hasher(h.clone()),
            None => Hasher(blake3::Hasher::new_derive_key(domain.context())),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The 32-byte digest.
    pub fn finalize(&self) -> Hash {
        Hash(*self.0.finalize().as_bytes())
    }

    /// An extendable-output reader, for callers that need more than 32 bytes.
    pub fn finalize_xof(&self) -> blake3::OutputReader {
        self.0.finalize_xof()
    }
}

/// Hashes `data` in `domain`.
pub fn hash(domain: HashDomain, data: &[u8]) -> Hash {
    Hasher::new(domain).update(data).finalize()
}

/// The Merkle root of an ordered list of leaves (transaction ids), in the shape of RFC 6962 §2.1.
///
/// Leaves and inner nodes are hashed in different domains, and an odd node is carried up unchanged
/// (the tree splits at the largest power of two below the size) rather than paired with a copy of itself.
/// That removes both ambiguities of Bitcoin's tree: `[a, b, c]` and `[a, b, c, c]` have different roots,
/// and no inner node can be passed off as a leaf.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return hash(HashDomain::MerkleEmpty, &[]);
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|l| hash(HashDomain::MerkleLeaf, l.as_bytes()))
        .collect();
    // Bottom-up pairing with the last odd node promoted gives exactly RFC 6962's split-at-power-of-two
    // tree, without recursion.
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => {
                    let mut h = Hasher::new(HashDomain::MerkleNode);
                    h.update(l.as_bytes()).update(r.as_bytes());
                    next.push(h.finalize());
                }
                [odd] => next.push(*odd),
                _ => {}
            }
        }
        level = next;
    }
    level.first().copied().unwrap_or(Hash::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Hash> {
        (0..n).map(|i| hash(HashDomain::TxId, &[i])).collect()
    }

    /// The recursive definition from RFC 6962, to check the iterative one against.
    fn reference(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => hash(HashDomain::MerkleEmpty, &[]),
            1 => hash(HashDomain::MerkleLeaf, leaves[0].as_bytes()),
            n => {
                // The largest power of two strictly below n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                let (l, r) = leaves.split_at(k);
                let mut h = Hasher::new(HashDomain::MerkleNode);
                h.update(reference(l).as_bytes())
                    .update(reference(r).as_bytes());
                h.finalize()
            }
        }
    }

    #[test]
    fn iterative_root_matches_rfc6962_recursion() {
        for n in 0..40 {
            let l = leaves(n);
            assert_eq!(merkle_root(&l), reference(&l), "n = {n}");
        }
    }

    #[test]
    fn duplicated_last_leaf_changes_the_root() {
        let mut l = leaves(3);
        let root3 = merkle_root(&l);
        l.push(l[2]);
        assert_ne!(root3, merkle_root(&l));
    }

    #[test]
    fn a_leaf_is_never_an_inner_node() {
        let l = leaves(2);
        let root = merkle_root(&l);
        // Claiming the root itself as a single leaf must not reproduce the root.
        assert_ne!(merkle_root(&[root]), root);
    }

    #[test]
    fn domains_separate_equal_inputs() {
        assert_ne!(
            hash(HashDomain::TxId, b"x"),
            hash(HashDomain::BlockHeader, b"x")
        );
        assert_eq!(
            hash(HashDomain::Custom("a test ctx"), b"x"),
            hash(HashDomain::Custom("a test ctx"), b"x")
        );
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_length() {
        let h = hash(HashDomain::TxId, b"abc");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert!(Hash::from_hex("abcd").is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
    }
}
