//! Updating the UTXO multiset hash for a block, on every core, and remembering the result between a
//! block's validation and its application.

use rayon::prelude::*;
use timecoin_crypto::{Hash, LtHash};
use timecoin_types::{BlockHash, OutPoint, TxOut, apply_to_commitment, utxo_element};

/// An unspent output with its outpoint.
pub(crate) type Utxo = (OutPoint, TxOut);

/// Below this many changes the work is too small to be worth sending to other threads.
const PARALLEL_THRESHOLD: usize = 256;
/// Elements hashed per task: large enough that combining partial states (2 KiB each) is noise.
const CHUNK: usize = 128;

/// A block's effect on the UTXO set: the outputs it spends (with their values, which the multiset hash
/// needs) and the outputs it creates.
#[derive(Clone, Debug, Default)]
pub(crate) struct UtxoDelta {
    pub(crate) spent: Vec<Utxo>,
    pub(crate) created: Vec<Utxo>,
}

impl UtxoDelta {
    /// Applies the delta to `state`. Each element costs a 2 KiB BLAKE3 expansion, thousands per block,
    /// so large deltas are hashed on rayon's pool; the multiset hash is a sum, so the parts add up to
    /// exactly what [`apply_to_commitment`] gives.
    pub(crate) fn apply_to(&self, state: &mut LtHash) {
        if self.spent.len() + self.created.len() < PARALLEL_THRESHOLD {
            apply_to_commitment(state, &self.spent, &self.created);
            return;
        }
        let (added, removed) = rayon::join(|| multiset(&self.created), || multiset(&self.spent));
        state.combine(&added);
        state.subtract(&removed);
    }
}

fn multiset(items: &[Utxo]) -> LtHash {
    items
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut h = LtHash::new();
            for (op, out) in chunk {
                h.insert(&utxo_element(op, out));
            }
            h
        })
        .reduce(LtHash::new, |mut a, b| {
            a.combine(&b);
            a
        })
}

/// The outcome of [`ChainStore::utxo_commitment_after`](crate::ChainStore::utxo_commitment_after),
/// kept so that applying the same block right after (the usual order: validate, vote, apply) does not
/// look up and hash its outputs again.
///
/// Keyed by the tip it was computed on and the block's transaction root recomputed from its
/// transactions: txids cover every input's outpoint and every output, so equal roots mean an equal delta,
/// whatever the header or the signatures say. Bound: one block's delta.
#[derive(Debug)]
pub(crate) struct PendingApply {
    pub(crate) parent: BlockHash,
    pub(crate) tx_root: Hash,
    pub(crate) delta: UtxoDelta,
    pub(crate) hash: LtHash,
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::Address;
    use timecoin_types::{Amount, TxId};

    fn utxo(i: u32) -> Utxo {
        (
            OutPoint {
                txid: TxId(Hash::from_bytes([(i % 251) as u8; 32])),
                vout: i,
            },
            TxOut {
                amount: Amount::from_sat(1_000 + u64::from(i)),
                address: Address::from_bytes([(i % 7) as u8; 32]),
            },
        )
    }

    #[test]
    fn parallel_hashing_equals_apply_to_commitment() {
        for (spent, created) in [(0, 3), (10, 10), (1000, 1000), (300, 0), (1, 700)] {
            let delta = UtxoDelta {
                spent: (0..spent).map(utxo).collect(),
                created: (5_000..5_000 + created).map(utxo).collect(),
            };
            let mut base = LtHash::new();
            base.insert(b"something already in the set");
            let mut expected = base.clone();
            apply_to_commitment(&mut expected, &delta.spent, &delta.created);
            let mut got = base;
            delta.apply_to(&mut got);
            assert_eq!(got, expected, "{spent} spent, {created} created");
        }
    }
}
