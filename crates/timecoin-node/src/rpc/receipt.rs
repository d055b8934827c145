//! Finality receipts: a transaction, its Merkle path to a block header's `tx_root`, the header and the
//! block's commit certificate. Anyone holding the validator set of that height can check one offline
//! with [`verify_receipt`]; nothing in it needs trusting the node that served it.

use serde::{Deserialize, Serialize};
use timecoin_consensus::ValidatorSet;
use timecoin_crypto::{ChainId, Hash, HashDomain, Hasher, hash};
use timecoin_types::{BlockHash, BlockHeader, CommitCertificate, Height, Transaction, TxId, Wire};

use crate::NodeError;

/// Most Merkle path entries a receipt may carry: a block holds far fewer than 2^32 transactions.
pub const MAX_PATH_LEN: usize = 32;

/// A proof that a transaction is final, as `gettxproof` returns it. Binary fields are lower-case hex
/// of the canonical encodings, so the receipt survives any JSON tool unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityReceipt {
    /// The transaction's id (informational: the verifier recomputes it from `tx`).
    pub txid: String,
    /// The transaction, encoded.
    pub tx: String,
    /// The transaction's position in its block.
    pub index: u32,
    /// Transactions in the block (the Merkle tree's leaves).
    pub leaves: u32,
    /// The sibling hashes from the leaf up, skipping levels where the node is carried up unpaired.
    pub path: Vec<String>,
    /// The block header, encoded.
    pub header: String,
    /// The block's commit certificate, encoded.
    pub certificate: String,
    /// The block's height (informational).
    pub height: Height,
    /// The block's hash (informational).
    pub blockhash: String,
}

/// What a receipt proves once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The transaction.
    pub tx: Transaction,
    /// Its id.
    pub txid: TxId,
    /// The height of the block that holds it.
    pub height: Height,
    /// That block's hash.
    pub block_hash: BlockHash,
}

impl FinalityReceipt {
    /// A receipt for transaction `index` of a block whose transaction ids are `txids`.
    pub fn new(
        tx: &Transaction,
        index: usize,
        txids: &[TxId],
        header: &BlockHeader,
        certificate: &CommitCertificate,
    ) -> Option<FinalityReceipt> {
        let leaves: Vec<Hash> = txids.iter().map(|id| id.0).collect();
        let path = merkle_path(&leaves, index)?;
        Some(FinalityReceipt {
            txid: tx.txid().to_string(),
            tx: hex::encode(tx.encode()),
            index: u32::try_from(index).ok()?,
            leaves: u32::try_from(leaves.len()).ok()?,
            path: path.iter().map(Hash::to_hex).collect(),
            header: hex::encode(header.encode()),
            certificate: hex::encode(certificate.encode()),
            height: header.height,
            blockhash: header.hash().to_string(),
        })
    }
}

/// Checks `receipt` against `validators`, the validator set of the receipt's height on chain
/// `chain`: the transaction's id is a leaf of the header's `tx_root` at `index`, the header is on
/// `chain`, and the certificate carries Commit signatures of more than 2/3 of the set's weight for
/// that header. The informational fields must agree with what is proven.
pub fn verify_receipt(
    receipt: &FinalityReceipt,
    validators: &ValidatorSet,
    chain: ChainId,
) -> Result<VerifiedReceipt, NodeError> {
    let bad = |reason: String| NodeError::InvalidReceipt(reason);
    let tx = Transaction::decode(&unhex(&receipt.tx, "tx")?)
        .map_err(|e| bad(format!("the transaction does not decode: {e}")))?;
    let header = BlockHeader::decode(&unhex(&receipt.header, "header")?)
        .map_err(|e| bad(format!("the header does not decode: {e}")))?;
    let certificate = CommitCertificate::decode(&unhex(&receipt.certificate, "certificate")?)
        .map_err(|e| bad(format!("the certificate does not decode: {e}")))?;
    if receipt.path.len() > MAX_PATH_LEN {
        return Err(bad(format!(
            "the Merkle path has {} entries, over {MAX_PATH_LEN}",
            receipt.path.len()
        )));
    }
    let path = receipt
        .path
        .iter()
        .map(|h| Hash::from_hex(h).map_err(|_| bad("a Merkle path entry is not a hash".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let txid = tx.txid();
    if receipt.txid != txid.to_string() {
        return Err(bad("the txid field is not the transaction's id".into()));
    }
    let root = merkle_root_from_path(
        &txid.0,
        receipt.index as usize,
        receipt.leaves as usize,
        &path,
    )
    .ok_or_else(|| bad("the Merkle path does not fit the index and leaf count".into()))?;
    if root != header.tx_root {
        return Err(bad(
            "the Merkle path does not lead to the header's tx_root".into()
        ));
    }
    if header.chain_id != chain {
        return Err(bad(format!(
            "the header is for chain {}, not {}",
            header.chain_id.0, chain.0
        )));
    }
    let block_hash = header.hash();
    if receipt.blockhash != block_hash.to_string() || receipt.height != header.height {
        return Err(bad(
            "the blockhash or height field is not the header's".into()
        ));
    }
    if certificate.block_hash != block_hash || certificate.height != header.height {
        return Err(bad("the certificate is for another block".into()));
    }
    validators
        .verify_certificate(&certificate, chain)
        .map_err(|e| bad(format!("the certificate does not verify: {e}")))?;
    Ok(VerifiedReceipt {
        tx,
        txid,
        height: header.height,
        block_hash,
    })
}

fn unhex(text: &str, name: &str) -> Result<Vec<u8>, NodeError> {
    hex::decode(text).map_err(|e| NodeError::InvalidReceipt(format!("{name} is not hex: {e}")))
}

fn leaf(id: &Hash) -> Hash {
    hash(HashDomain::MerkleLeaf, id.as_bytes())
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Hasher::new(HashDomain::MerkleNode);
    h.update(left.as_bytes()).update(right.as_bytes());
    h.finalize()
}

/// The sibling hashes from leaf `index` up to the root of [`timecoin_crypto::merkle_root`]'s tree
/// over `leaves` (bottom-up pairing, an odd last node carried up unpaired, which adds no entry).
/// `None` if `index` is out of range.
pub fn merkle_path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut level: Vec<Hash> = leaves.iter().map(leaf).collect();
    let mut index = index;
    let mut path = Vec::new();
    while level.len() > 1 {
        let sibling = if index % 2 == 1 {
            level.get(index - 1)
        } else {
            level.get(index + 1)
        };
        if let Some(sibling) = sibling {
            path.push(*sibling);
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node(l, r),
                [odd] => *odd,
                _ => Hash::ZERO,
            })
            .collect();
        index /= 2;
    }
    Some(path)
}

/// The root that `path` leads to from leaf `id` at `index` in a tree of `leaves` leaves, or `None`
/// if the path is too short or too long for that position.
pub fn merkle_root_from_path(
    id: &Hash,
    index: usize,
    leaves: usize,
    path: &[Hash],
) -> Option<Hash> {
    if index >= leaves {
        return None;
    }
    let mut current = leaf(id);
    let (mut index, mut width) = (index, leaves);
    let mut siblings = path.iter();
    while width > 1 {
        if index % 2 == 1 {
            current = node(siblings.next()?, &current);
        } else if index + 1 < width {
            current = node(&current, siblings.next()?);
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    match siblings.next() {
        None => Some(current),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use timecoin_crypto::merkle_root;

    #[test]
    fn every_leaf_of_every_tree_size_proves_against_the_block_root() {
        for n in 1..40u8 {
            let leaves: Vec<Hash> = (0..n).map(|i| hash(HashDomain::TxId, &[i])).collect();
            let root = merkle_root(&leaves);
            for (i, id) in leaves.iter().enumerate() {
                let path = merkle_path(&leaves, i).unwrap();
                assert_eq!(
                    merkle_root_from_path(id, i, leaves.len(), &path),
                    Some(root),
                    "n = {n}, i = {i}"
                );
                // Another leaf, another position, or a trimmed path does not reach the root.
                let other = hash(HashDomain::TxId, b"other");
                assert_ne!(
                    merkle_root_from_path(&other, i, leaves.len(), &path),
                    Some(root)
                );
                if n > 1 {
                    let j = (i + 1) % leaves.len();
                    assert_ne!(
                        merkle_root_from_path(id, j, leaves.len(), &path),
                        Some(root)
                    );
                    assert_ne!(
                        merkle_root_from_path(id, i, leaves.len(), &path[..path.len() - 1]),
                        Some(root)
                    );
                }
            }
        }
    }
}
