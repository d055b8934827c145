//! Domain separation for signatures and hashes.
//!
//! A signature made for one purpose must never verify for another: a transaction-input signature must not
//! pass as a consensus vote, a vote on testnet must not pass on mainnet. Every signed payload is therefore
//! `len(tag) || tag || chain_id || message`, and every hash is BLAKE3 in key-derivation mode with a context
//! string of its own.

use serde::{Deserialize, Serialize};

/// Identifies one chain (mainnet, a testnet, a local network). Bound into every signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChainId(pub u32);

impl std::fmt::Display for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a signature is for. The tag is the first thing signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigDomain {
    /// The signature on one input of a transaction.
    TxInput,
    /// A leader's block proposal (PrePrepare).
    Proposal,
    /// A Prepare or Commit vote.
    Vote,
    /// The challenge answered when two peers authenticate each other.
    PeerHandshake,
    /// A node's signed statement of the address it listens on, gossiped for peer discovery.
    PeerAddress,
}

impl SigDomain {
    /// The tag bytes; each is distinct and none is a prefix of another.
    pub const fn tag(self) -> &'static [u8] {
        match self {
            SigDomain::TxInput => b"timecoin/sig/tx-input/v1",
            SigDomain::Proposal => b"timecoin/sig/proposal/v1",
            SigDomain::Vote => b"timecoin/sig/vote/v1",
            SigDomain::PeerHandshake => b"timecoin/sig/peer-handshake/v1",
            SigDomain::PeerAddress => b"timecoin/sig/peer-address/v1",
        }
    }

    /// The prefix written before the message: `len(tag) || tag || chain_id (LE)`.
    pub(crate) fn prefix(self, chain: ChainId) -> Vec<u8> {
        let tag = self.tag();
        let mut out = Vec::with_capacity(1 + tag.len() + 4);
        // Tags are short constants, so the length always fits a byte; the length makes the prefix
        // self-delimiting, so no (tag, message) pair can collide with another.
        out.push(tag.len() as u8);
        out.extend_from_slice(tag);
        out.extend_from_slice(&chain.0.to_le_bytes());
        out
    }

    /// The exact bytes an Ed25519 signature covers for `message` in this domain on `chain`.
    pub fn signing_bytes(self, chain: ChainId, message: &[u8]) -> Vec<u8> {
        let mut out = self.prefix(chain);
        out.extend_from_slice(message);
        out
    }
}

/// What a hash is for. Each maps to a BLAKE3 key-derivation context, so equal inputs hashed for two
/// purposes give unrelated outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashDomain {
    /// Transaction id, over the unsigned transaction.
    TxId,
    /// Block hash, over the header.
    BlockHeader,
    /// A transaction's witness hash: its txid and every input signature, so a block header can commit to
    /// the signatures that the txid leaves out.
    TxWitness,
    /// A Merkle leaf.
    MerkleLeaf,
    /// An inner Merkle node.
    MerkleNode,
    /// The root of an empty Merkle tree.
    MerkleEmpty,
    /// Expansion of one UTXO into the multiset hash lanes.
    UtxoElement,
    /// The 32-byte digest of the multiset hash written into block headers.
    UtxoCommitment,
    /// An address, from a public key.
    Address,
    /// Consensus evidence, certificates and other consensus objects.
    Consensus,
    /// The pseudo transaction id that genesis allocations are spent from; apart from real txids so no
    /// transaction can ever share an id with the genesis document.
    GenesisAllocations,
    /// The validator schedule a block header commits to (the set deciding the next height and every
    /// change already scheduled), so a node that did not replay the chain can check the set it is told.
    ValidatorSchedule,
    /// Anything else a downstream crate needs; the string must be unique to its use.
    Custom(&'static str),
}

impl HashDomain {
    /// The BLAKE3 context string (see the BLAKE3 spec's guidance: globally unique, hard-coded).
    pub const fn context(self) -> &'static str {
        match self {
            HashDomain::TxId => "timecoin 2026-11 txid v1",
            HashDomain::BlockHeader => "timecoin 2026-11 block header v1",
            HashDomain::TxWitness => "timecoin 2026-12 tx witness v1",
            HashDomain::MerkleLeaf => "timecoin 2026-11 merkle leaf v1",
            HashDomain::MerkleNode => "timecoin 2026-11 merkle node v1",
            HashDomain::MerkleEmpty => "timecoin 2026-11 merkle empty v1",
            HashDomain::UtxoElement => "timecoin 2026-11 utxo lthash element v1",
            HashDomain::UtxoCommitment => "timecoin 2026-11 utxo commitment v1",
            HashDomain::Address => "timecoin 2026-11 address v1",
            HashDomain::Consensus => "timecoin 2026-11 consensus v1",
            HashDomain::GenesisAllocations => "timecoin 2026-11 genesis allocations v1",
            HashDomain::ValidatorSchedule => "timecoin 2026-12 validator schedule v1",
            HashDomain::Custom(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_tags_are_distinct_and_prefix_free() {
        let all = [
            SigDomain::TxInput,
            SigDomain::Proposal,
            SigDomain::Vote,
            SigDomain::PeerHandshake,
            SigDomain::PeerAddress,
        ];
        for a in all {
            for b in all {
                if a != b {
                    assert!(!a.tag().starts_with(b.tag()), "{a:?} starts with {b:?}");
                }
            }
        }
    }

    #[test]
    fn chain_id_changes_the_signed_bytes() {
        let m = b"same message";
        assert_ne!(
            SigDomain::Vote.signing_bytes(ChainId(1), m),
            SigDomain::Vote.signing_bytes(ChainId(2), m)
        );
        assert_ne!(
            SigDomain::Vote.signing_bytes(ChainId(1), m),
            SigDomain::Proposal.signing_bytes(ChainId(1), m)
        );
    }
}
