//! Masternode rewards. Every block adds the chain's subsidy and its fees to a pool; every
//! `reward_interval` heights the block starts with a reward transaction that pays the pool to the
//! validators' owners in proportion to weight. Each share is rounded down, shares below the dust limit
//! are not paid, and what is left stays in the pool for the next payout. Everything is a function of the
//! finalized chain and the validator set of the height, so every node computes the same transaction and
//! refuses a block that pays anything else.
//!
//! Supply: at every height `h`, `UTXO total + pool = genesis total + subsidy × h`, which is how the
//! pool is recovered after a restart and what the simulator checks on every node.

use timecoin_consensus::ValidatorSet;
use timecoin_storage::ChainStore;
use timecoin_types::{
    Amount, Block, Genesis, Height, TX_VERSION, Transaction, TxKind, TxOut, block_utxo_delta,
};

use super::Engine;
use crate::NodeError;

/// The reward transaction for `height` paying `pool` over `set`, or `None` if nothing is due.
pub(crate) fn payout(
    pool: Amount,
    set: &ValidatorSet,
    min_dust: Amount,
    height: Height,
) -> Option<Transaction> {
    let total = u128::from(set.total_weight());
    if total == 0 {
        return None;
    }
    let outputs: Vec<TxOut> = set
        .members()
        .iter()
        .filter_map(|v| {
            let share = u128::from(pool.as_sat()) * u128::from(v.weight()) / total;
            let amount = Amount::from_sat(u64::try_from(share).ok()?);
            (amount >= min_dust).then_some(TxOut {
                amount,
                address: v.owner,
            })
        })
        .collect();
    if outputs.is_empty() {
        return None;
    }
    Some(Transaction {
        version: TX_VERSION,
        inputs: Vec::new(),
        outputs,
        kind: TxKind::Reward { height },
    })
}

/// Everything genesis allocated.
pub(crate) fn genesis_total(genesis: &Genesis) -> Result<Amount, NodeError> {
    Amount::checked_sum(genesis.allocations.iter().map(|o| o.amount))
        .ok_or_else(|| NodeError::Config("genesis allocations overflow".into()))
}

/// The sum of every unspent output in `store`, walked page by page (O(set): for a restart or a check,
/// never per block).
pub fn utxo_total(store: &dyn ChainStore) -> Result<Amount, NodeError> {
    let mut total = Amount::ZERO;
    let mut after = None;
    loop {
        let page = store.utxo_page(after.as_ref(), 0)?;
        for (_, out) in &page.entries {
            total = total
                .checked_add(out.amount)
                .ok_or_else(|| NodeError::Config("the UTXO set's total overflows".into()))?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

/// Coins minted up to and including `height`: genesis plus one subsidy per block.
pub(crate) fn supply_at(genesis_total: Amount, subsidy: Amount, height: Height) -> Option<Amount> {
    let minted = u128::from(subsidy.as_sat()) * u128::from(height);
    let total = u128::from(genesis_total.as_sat()) + minted;
    u64::try_from(total).ok().map(Amount::from_sat)
}

impl Engine {
    /// The reward the block at `height` (the one after the tip) must start with.
    pub(super) fn reward_for(&self, height: Height) -> Option<Transaction> {
        let interval = self.params.reward_interval;
        if interval == 0 || !height.is_multiple_of(interval) {
            return None;
        }
        payout(
            self.pool,
            &self.validators_for(height),
            self.params.min_dust,
            height,
        )
    }

    /// The pool after `block` (read before it is applied: the outputs it spends are still in the store).
    pub(super) fn pool_after(&self, block: &Block) -> Result<Amount, NodeError> {
        let delta = block_utxo_delta(block)?;
        let mut spent = Amount::ZERO;
        for outpoint in &delta.spent {
            let out = self.store.utxo(outpoint)?.ok_or_else(|| {
                NodeError::Config(format!(
                    "a decided block spends {outpoint}, which is not unspent"
                ))
            })?;
            spent = spent
                .checked_add(out.amount)
                .ok_or_else(|| NodeError::Config("spent amounts overflow".into()))?;
        }
        let created = Amount::checked_sum(delta.created.iter().map(|(_, o)| o.amount))
            .ok_or_else(|| NodeError::Config("created amounts overflow".into()))?;
        // What left the UTXO set went to fees (the pool); what entered it beyond that came from the pool.
        self.pool
            .checked_add(self.params.block_subsidy)
            .and_then(|p| p.checked_add(spent))
            .and_then(|p| p.checked_sub(created))
            .ok_or_else(|| {
                NodeError::Config(format!(
                    "block {} pays out more than the reward pool holds",
                    block.header.height
                ))
            })
    }

    /// Fees and subsidies accrued and not yet paid, as of the tip.
    pub fn reward_pool(&self) -> Amount {
        self.pool
    }

    /// Coins in existence at `height` (genesis plus subsidies); the same on every node.
    pub fn supply_at(&self, height: Height) -> Option<Amount> {
        supply_at(self.genesis_total, self.params.block_subsidy, height)
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use timecoin_consensus::ValidatorSet;
    use timecoin_types::{Amount, Genesis, Tier};

    use super::payout;

    #[test]
    fn shares_follow_weight_round_down_and_skip_dust() {
        let mut genesis = Genesis::local(3);
        genesis.validators[0].tier = Tier::Gold;
        let set = ValidatorSet::from_genesis(&genesis).unwrap_or_else(|e| panic!("{e}"));
        // Weights 50, 10, 10 of 70.
        let Some(tx) = payout(Amount::from_sat(70_001), &set, Amount::from_sat(1_000), 10) else {
            panic!("a reward is due");
        };
        let paid: Vec<u64> = tx.outputs.iter().map(|o| o.amount.as_sat()).collect();
        let total: u64 = paid.iter().sum();
        assert_eq!(total, 70_000, "1 sat of rounding stays in the pool");
        assert!(paid.contains(&50_000) && paid.iter().filter(|a| **a == 10_000).count() == 2);
        // A pool too small to pay anyone above dust pays nothing.
        assert!(payout(Amount::from_sat(600), &set, Amount::from_sat(1_000), 10).is_none());
    }
}
