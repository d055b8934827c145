//! The application each simulated validator runs: a UTXO ledger on its decided chain that builds blocks of
//! real signed transfers and judges proposed blocks with the chain's own rules.
//!
//! Everything here is a function of the decided chain (and, for building, of the simulated time and the
//! proposer), so every honest node at one height judges a block the same way, as consensus requires.

use std::collections::BTreeMap;
use std::sync::Arc;

use timecoin_crypto::{Address, LtHash, PublicKey, SecretKey};
use timecoin_types::{
    Amount, Block, BlockHeader, ChainParams, Genesis, Height, OutPoint, TxBuilder, TxOut,
    TypesError, UtxoView, View, WellFormedBlock, apply_to_commitment, block_utxo_delta,
    check_block,
};

use crate::SimError;

/// Amount each simulated transfer pays to the next validator.
const PAYMENT: Amount = Amount::from_sat(100_000_000);
/// Fee each simulated transfer leaves (the rules ask for at least 1 sat).
const FEE: Amount = Amount::from_sat(1_000);

/// The keys whose coins the simulated transactions spend: the local validators' keys, which
/// [`Genesis::local`] funds. Shared by every node of a simulation (a simulation is its own world: any
/// leader may sign anyone's transfer). Holds one key per validator.
#[derive(Debug)]
pub struct Wallet {
    keys: Vec<SecretKey>,
    by_address: BTreeMap<Address, usize>,
}

impl Wallet {
    /// The keys of local validators `0..n`.
    pub fn local(n: usize) -> Self {
        let keys: Vec<SecretKey> = (0..n).map(Genesis::local_validator_key).collect();
        let by_address = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Address::from_public_key(&k.public_key()), i))
            .collect();
        Wallet { keys, by_address }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the wallet holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn owner(&self, address: &Address) -> Option<&SecretKey> {
        self.by_address.get(address).and_then(|i| self.keys.get(*i))
    }

    fn next_address(&self, address: &Address) -> Option<Address> {
        let i = self.by_address.get(address)?;
        let next = self.keys.get((i + 1) % self.keys.len().max(1))?;
        Some(Address::from_public_key(&next.public_key()))
    }
}

/// A UTXO set in key order, so that walking it is deterministic.
struct OrderedUtxos<'a>(&'a BTreeMap<OutPoint, TxOut>);

impl UtxoView for OrderedUtxos<'_> {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        Ok(self.0.get(outpoint).copied())
    }
}

/// The decided chain's state as the application sees it: the tip block, the UTXO set after it and the
/// set's multiset hash.
///
/// Bounded by the coins in play: each block spends at most `txs_per_block` outputs and creates two per
/// transaction, so the set grows by at most `txs_per_block` outputs per height.
#[derive(Clone, Debug)]
pub struct Ledger {
    params: ChainParams,
    genesis_time_ms: u64,
    utxos: BTreeMap<OutPoint, TxOut>,
    commitment: LtHash,
    /// `commitment.checksum()`, kept with it: the checker reads it after every event, and the checksum
    /// hashes all 1024 lanes.
    digest: timecoin_types::Hash,
    tip: WellFormedBlock,
    wallet: Arc<Wallet>,
    txs_per_block: usize,
}

impl Ledger {
    /// The state right after `genesis`; blocks built on it carry up to `txs_per_block` transfers.
    pub fn new(genesis: &Genesis, wallet: Arc<Wallet>, txs_per_block: usize) -> Self {
        Ledger {
            params: genesis.params.clone(),
            genesis_time_ms: genesis.timestamp_ms,
            utxos: genesis.utxos().into_iter().collect(),
            commitment: genesis.utxo_hash(),
            digest: genesis.utxo_hash().checksum(),
            tip: genesis.block(),
            wallet,
            txs_per_block,
        }
    }

    /// The last applied block.
    pub fn tip(&self) -> &WellFormedBlock {
        &self.tip
    }

    /// Height of the last applied block.
    pub fn height(&self) -> Height {
        self.tip.header.height
    }

    /// The commitment to the current UTXO set ([`LtHash::checksum`]), as a header after the tip carries.
    pub fn commitment(&self) -> timecoin_types::Hash {
        self.digest
    }

    /// Number of unspent outputs.
    pub fn utxo_count(&self) -> usize {
        self.utxos.len()
    }

    /// A block for `(height, view)` on the tip, proposed by `proposer` at simulated time `now_ms`: up to
    /// `txs_per_block` transfers, each spending the first (in outpoint order) wallet-owned output large
    /// enough to pay 1 TIME to the next validator plus a 1,000-sat fee and a non-dust change.
    pub fn build_block(
        &self,
        height: Height,
        view: View,
        proposer: PublicKey,
        now_ms: u64,
    ) -> Result<WellFormedBlock, SimError> {
        let minimum = PAYMENT
            .checked_add(FEE)
            .and_then(|a| a.checked_add(timecoin_types::MIN_DUST))
            .ok_or(SimError::Ledger("payment overflows".into()))?;
        let chain = self.params.chain_id;
        let mut transactions = Vec::new();
        for (outpoint, out) in &self.utxos {
            if transactions.len() >= self.txs_per_block {
                break;
            }
            if out.amount < minimum {
                continue;
            }
            let (Some(key), Some(payee)) = (
                self.wallet.owner(&out.address),
                self.wallet.next_address(&out.address),
            ) else {
                continue;
            };
            let change = out
                .amount
                .checked_sub(PAYMENT)
                .and_then(|a| a.checked_sub(FEE))
                .ok_or(SimError::Ledger("change underflows".into()))?;
            transactions.push(
                TxBuilder::new(chain)
                    .input(*outpoint, out.amount, key)
                    .output(payee, PAYMENT)
                    .output(out.address, change)
                    .sign(),
            );
        }
        let mut block = Block {
            header: BlockHeader {
                chain_id: chain,
                height,
                view,
                parent: self.tip.hash(),
                // Informational, but kept increasing so blocks of different views and proposers differ.
                timestamp_ms: self
                    .tip
                    .header
                    .timestamp_ms
                    .saturating_add(1)
                    .max(self.genesis_time_ms.saturating_add(now_ms)),
                proposer,
                tx_root: timecoin_types::Hash::ZERO,
                witness_root: timecoin_types::Hash::ZERO,
                utxo_commitment: timecoin_types::Hash::ZERO,
            },
            transactions,
        };
        block.header.utxo_commitment = self.commitment_after(&block)?.checksum();
        Ok(block.seal())
    }

    /// Whether `block` may follow the tip: right chain, height and parent, every transaction valid in order
    /// ([`check_block`], signatures included), and the header's UTXO commitment equal to the set after it.
    pub fn validate(&self, block: &WellFormedBlock) -> Result<(), SimError> {
        let header = &block.header;
        if header.height != self.height().saturating_add(1) {
            return Err(SimError::Ledger(format!(
                "block height {} does not follow tip {}",
                header.height,
                self.height()
            )));
        }
        if header.parent != self.tip.hash() {
            return Err(SimError::Ledger(format!(
                "block at {} names parent {} but the tip is {}",
                header.height,
                header.parent,
                self.tip.hash()
            )));
        }
        check_block(block, &OrderedUtxos(&self.utxos), &self.params)
            .map_err(|e| SimError::Ledger(format!("block at {}: {e}", header.height)))?;
        if self.commitment_after(block)?.checksum() != header.utxo_commitment {
            return Err(SimError::Ledger(format!(
                "block at {}: UTXO commitment mismatch",
                header.height
            )));
        }
        Ok(())
    }

    /// Applies a decided block. Fails (leaving the state unchanged) if it does not follow the tip or
    /// spends an output the set does not hold: for a decided block, a sign that agreement broke.
    pub fn apply(&mut self, block: &WellFormedBlock) -> Result<(), SimError> {
        if block.header.height != self.height().saturating_add(1)
            || block.header.parent != self.tip.hash()
        {
            return Err(SimError::Ledger(format!(
                "decided block at {} does not extend the tip at {}",
                block.header.height,
                self.height()
            )));
        }
        let (spent, created) = self.delta(block)?;
        apply_to_commitment(&mut self.commitment, &spent, &created);
        self.digest = self.commitment.checksum();
        for (op, _) in &spent {
            self.utxos.remove(op);
        }
        self.utxos.extend(created);
        self.tip = block.clone();
        Ok(())
    }

    fn delta(&self, block: &Block) -> Result<DeltaPair, SimError> {
        let delta = block_utxo_delta(block)
            .map_err(|e| SimError::Ledger(format!("block at {}: {e}", block.header.height)))?;
        let mut spent = Vec::with_capacity(delta.spent.len());
        for op in delta.spent {
            let out = self.utxos.get(&op).copied().ok_or_else(|| {
                SimError::Ledger(format!(
                    "block at {} spends a missing output",
                    block.header.height
                ))
            })?;
            spent.push((op, out));
        }
        Ok((spent, delta.created))
    }

    fn commitment_after(&self, block: &Block) -> Result<LtHash, SimError> {
        let (spent, created) = self.delta(block)?;
        let mut commitment = self.commitment.clone();
        apply_to_commitment(&mut commitment, &spent, &created);
        Ok(commitment)
    }
}

type DeltaPair = (Vec<(OutPoint, TxOut)>, Vec<(OutPoint, TxOut)>);

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (Genesis, Ledger) {
        let genesis = Genesis::local(4);
        let ledger = Ledger::new(&genesis, Arc::new(Wallet::local(4)), 2);
        (genesis, ledger)
    }

    #[test]
    fn a_built_block_is_valid_and_applies() {
        let (_, mut ledger) = ledger();
        let proposer = Genesis::local_validator_key(1).public_key();
        let block = ledger.build_block(1, 0, proposer, 10).unwrap();
        assert_eq!(block.transactions.len(), 2);
        ledger.validate(&block).unwrap();
        ledger.apply(&block).unwrap();
        assert_eq!(ledger.height(), 1);
        // The next block spends the change outputs.
        let next = ledger.build_block(2, 0, proposer, 20).unwrap();
        ledger.validate(&next).unwrap();
        ledger.apply(&next).unwrap();
        assert_eq!(ledger.utxo_count(), 4 + 2 + 2);
    }

    #[test]
    fn blocks_off_the_tip_or_with_a_wrong_commitment_are_invalid() {
        let (_, ledger) = ledger();
        let proposer = Genesis::local_validator_key(0).public_key();
        let block = ledger.build_block(1, 0, proposer, 10).unwrap().into_block();
        let mut wrong_height = block.clone();
        wrong_height.header.height = 2;
        assert!(ledger.validate(&wrong_height.seal()).is_err());
        let mut wrong_commitment = block.clone();
        wrong_commitment.header.utxo_commitment = timecoin_types::Hash::ZERO;
        assert!(ledger.validate(&wrong_commitment.seal()).is_err());
        // A bad signature under a header that commits to it (the leader itself signed garbage).
        let mut forged = block;
        forged.transactions[0].inputs[0].signature = timecoin_types::Signature::from_bytes([1; 64]);
        assert!(ledger.validate(&forged.seal()).is_err());
    }
}
