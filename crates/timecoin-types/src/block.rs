//! Blocks, headers, and the UTXO-set commitment.

use std::fmt;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use timecoin_crypto::{ChainId, Hash, HashDomain, LtHash, PublicKey, hash, merkle_root};

use crate::{OutPoint, Transaction, TxId, TxOut, TypesError, Wire, codec};

/// Height of a block; genesis is 0.
pub type Height = u64;
/// A consensus view (round) within a height; 0 first, +1 per view change.
pub type View = u32;

/// A block's id: the hash of its header.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockHash(pub Hash);

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({}…)", &self.0.to_hex()[..16])
    }
}

/// A block header. The hash of its encoding is the block's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Chain this block belongs to.
    pub chain_id: ChainId,
    /// Position in the chain.
    pub height: Height,
    /// The view in which it was proposed.
    pub view: View,
    /// The previous block's hash ([`Hash::ZERO`] for genesis).
    pub parent: BlockHash,
    /// Proposer's wall-clock time, milliseconds since the Unix epoch (informational; consensus does not
    /// trust clocks).
    pub timestamp_ms: u64,
    /// The leader that proposed it.
    pub proposer: PublicKey,
    /// Merkle root of the transaction ids (what a finality receipt proves inclusion against).
    pub tx_root: Hash,
    /// Merkle root of the transactions' witness hashes ([`Transaction::witness_hash`]): the commitment to
    /// the signatures, which the txids leave out. With `tx_root` it binds the whole body to the block's id.
    pub witness_root: Hash,
    /// [`LtHash::checksum`] of the UTXO set after this block.
    pub utxo_commitment: Hash,
    /// Hash of the validator schedule after this block: the set deciding the next height and every
    /// membership change already scheduled (`timecoin_consensus::ValidatorRegistry::schedule_hash`).
    /// Validators check it like the UTXO commitment, so a node walking certified headers learns each
    /// height's set without the bodies. [`Hash::ZERO`] in genesis, whose set the genesis document gives.
    pub validators_hash: Hash,
}

impl BlockHeader {
    /// The block id.
    pub fn hash(&self) -> BlockHash {
        BlockHash(hash(HashDomain::BlockHeader, &codec::encode(self)))
    }
}

impl Wire for BlockHeader {
    const NAME: &'static str = "block header";
    const MAX_ENCODED_LEN: usize = 512;
}

/// A header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Header.
    pub header: BlockHeader,
    /// Transactions, in the order they apply; at most [`crate::MAX_BLOCK_TXS`] are decoded.
    #[serde(deserialize_with = "bounded_transactions")]
    pub transactions: Vec<Transaction>,
}

/// Decodes a block's transaction list, refusing more than [`crate::MAX_BLOCK_TXS`] before reserving or
/// decoding them, so the memory a block costs stays proportional to its size in bytes.
fn bounded_transactions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Transaction>, D::Error> {
    struct Bounded;
    impl<'de> Visitor<'de> for Bounded {
        type Value = Vec<Transaction>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {} transactions", crate::MAX_BLOCK_TXS)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let declared = seq.size_hint().unwrap_or(0);
            if declared > crate::MAX_BLOCK_TXS {
                return Err(A::Error::invalid_length(declared, &self));
            }
            // The declared count is untrusted until the elements arrive: reserve a little, grow as they do.
            let mut txs = Vec::with_capacity(declared.min(1024));
            while let Some(tx) = seq.next_element()? {
                if txs.len() == crate::MAX_BLOCK_TXS {
                    return Err(A::Error::invalid_length(txs.len() + 1, &self));
                }
                txs.push(tx);
            }
            Ok(txs)
        }
    }
    d.deserialize_seq(Bounded)
}

impl Wire for Block {
    const NAME: &'static str = "block";
    const MAX_ENCODED_LEN: usize = crate::MAX_BLOCK_BYTES;
}

impl Block {
    /// The block id.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Merkle root of the transaction ids, as the header should carry.
    pub fn compute_tx_root(&self) -> Hash {
        self.compute_roots().tx_root
    }

    /// Both body commitments the header should carry, each txid computed once.
    pub fn compute_roots(&self) -> BodyRoots {
        self.roots_and_txids().0
    }

    /// The body commitments and the txids they were computed from, in block order.
    fn roots_and_txids(&self) -> (BodyRoots, Vec<TxId>) {
        let ids: Vec<TxId> = self.transactions.iter().map(Transaction::txid).collect();
        let witnesses: Vec<Hash> = self
            .transactions
            .iter()
            .zip(&ids)
            .map(|(tx, id)| tx.witness_hash(id))
            .collect();
        let leaves: Vec<Hash> = ids.iter().map(|id| id.0).collect();
        let roots = BodyRoots {
            tx_root: merkle_root(&leaves),
            witness_root: merkle_root(&witnesses),
        };
        (roots, ids)
    }

    /// Writes the body's commitments into the header (for whoever builds a block), then seals it.
    pub fn seal(mut self) -> WellFormedBlock {
        let (roots, txids) = self.roots_and_txids();
        self.header.tx_root = roots.tx_root;
        self.header.witness_root = roots.witness_root;
        let hash = self.header.hash();
        WellFormedBlock {
            block: self,
            hash,
            txids,
        }
    }
}

/// The two commitments a header makes to its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyRoots {
    /// Merkle root of the txids.
    pub tx_root: Hash,
    /// Merkle root of the witness hashes.
    pub witness_root: Hash,
}

/// A block whose transactions, signatures included, hash to its header's commitments, so its id (the
/// header hash) stands for the whole block.
///
/// This is the only block type that the core, the application and storage accept. The only ways to
/// make one are [`WellFormedBlock::check`] (and decoding, which runs it) and [`Block::seal`] (which
/// computes the commitments from the body): a relay that keeps a genuine header and signatures but swaps
/// the transactions produces bytes that do not decode into this type. Anything keyed by a block hash (a
/// validity verdict, a vote, a stored block) is therefore keyed by one body only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Block")]
pub struct WellFormedBlock {
    block: Block,
    /// The header's hash, computed once at the check.
    hash: BlockHash,
    /// The transactions' ids, computed for the check and kept: block validation needs them again.
    txids: Vec<TxId>,
}

impl WellFormedBlock {
    /// The same block with `commitment` as its header's UTXO commitment. The commitment is not part of
    /// the body's binding, so the body and its txids are kept and only the header hash is recomputed: a
    /// builder seals once, asks storage for the commitment, then sets it.
    pub fn with_utxo_commitment(mut self, commitment: Hash) -> Self {
        self.block.header.utxo_commitment = commitment;
        self.hash = self.block.header.hash();
        self
    }

    /// The same block with `hash` as its header's `validators_hash` (not part of the body's binding, like
    /// [`with_utxo_commitment`](Self::with_utxo_commitment)).
    pub fn with_validators_hash(mut self, hash: Hash) -> Self {
        self.block.header.validators_hash = hash;
        self.hash = self.block.header.hash();
        self
    }

    /// Checks that the body matches the header's `tx_root` and `witness_root`.
    pub fn check(block: Block) -> Result<Self, TypesError> {
        let (roots, txids) = block.roots_and_txids();
        if roots.tx_root != block.header.tx_root {
            return Err(TypesError::TxRootMismatch);
        }
        if roots.witness_root != block.header.witness_root {
            return Err(TypesError::WitnessRootMismatch);
        }
        let hash = block.header.hash();
        Ok(WellFormedBlock { block, hash, txids })
    }

    /// The block id.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The transactions' ids, in block order.
    pub fn txids(&self) -> &[TxId] {
        &self.txids
    }

    /// The checked block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Gives the block back (to change it, then [`Block::seal`] or check it again).
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl std::ops::Deref for WellFormedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.block
    }
}

impl TryFrom<Block> for WellFormedBlock {
    type Error = TypesError;
    fn try_from(block: Block) -> Result<Self, TypesError> {
        WellFormedBlock::check(block)
    }
}

impl Serialize for WellFormedBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(s)
    }
}

impl Wire for WellFormedBlock {
    const NAME: &'static str = "block";
    const MAX_ENCODED_LEN: usize = crate::MAX_BLOCK_BYTES;

    /// Decodes canonically, then checks the body against the header, naming the root that failed (the
    /// same check runs when a block is decoded inside another message, where the codec can only say that
    /// the value broke its type's rule).
    fn decode(bytes: &[u8]) -> Result<Self, TypesError> {
        WellFormedBlock::check(Block::decode(bytes)?)
    }
}

/// The bytes one unspent output contributes to the UTXO multiset hash: its outpoint and its output.
pub fn utxo_element(outpoint: &OutPoint, out: &TxOut) -> Vec<u8> {
    codec::encode(&(outpoint, out))
}

/// Applies a block's UTXO changes to a multiset hash: O(changes), never a rehash of the set.
pub fn apply_to_commitment(
    state: &mut LtHash,
    spent: &[(OutPoint, TxOut)],
    created: &[(OutPoint, TxOut)],
) {
    for (op, out) in spent {
        state.remove(&utxo_element(op, out));
    }
    for (op, out) in created {
        state.insert(&utxo_element(op, out));
    }
}
