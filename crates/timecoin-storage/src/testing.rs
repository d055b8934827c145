//! Realistic finalized blocks for tests and benches (feature `test-support`).

use std::collections::HashMap;

use timecoin_crypto::{Address, SecretKey};
use timecoin_types::{
    Amount, Block, BlockHeader, CommitCertificate, Genesis, OutPoint, Transaction, TxBuilder,
    TxOut, Vote, VotePhase, WellFormedBlock,
};

use crate::{ChainStore, StorageError};

/// Fee each generated transaction pays.
const FEE: Amount = Amount::from_sat(1_000);
/// Most outputs of one coin-splitting transaction.
const MAX_SPLIT: usize = 500;

/// Builds the next finalized block for a store of a local chain: signed transfers spending the store's
/// own outputs, a header with the right transaction root and UTXO commitment, and a commit certificate
/// signed by every validator.
///
/// Every output it creates is paid to one of the local validators, so every output the store holds can
/// be spent by a later block. The choice of inputs depends only on the store's UTXO set, so the chain it
/// builds is a function of its starting state.
#[derive(Debug)]
pub struct BlockFactory {
    genesis: Genesis,
    validators: Vec<SecretKey>,
    owners: HashMap<Address, usize>,
}

impl BlockFactory {
    /// A factory for [`Genesis::local`]`(validators)` (at least one).
    pub fn local(validators: usize) -> Self {
        let validators = validators.max(1);
        let genesis = Genesis::local(validators);
        let keys: Vec<SecretKey> = (0..validators).map(Genesis::local_validator_key).collect();
        let owners = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Address::from_public_key(&k.public_key()), i))
            .collect();
        BlockFactory {
            genesis,
            validators: keys,
            owners,
        }
    }

    /// The same factory with its genesis's chain parameters changed by `f`: for example rewards off
    /// (`reward_interval = 0`) for a benchmark whose blocks carry no payout.
    pub fn with_params(mut self, f: impl FnOnce(&mut timecoin_types::ChainParams)) -> Self {
        f(&mut self.genesis.params);
        self
    }

    /// The chain's genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    // `local` keeps at least one validator, so the modulus is never zero and the index always exists.
    #[allow(clippy::indexing_slicing)]
    fn validator(&self, i: usize) -> &SecretKey {
        &self.validators[i % self.validators.len()]
    }

    fn address(&self, i: usize) -> Address {
        Address::from_public_key(&self.validator(i).public_key())
    }

    fn key_for(&self, out: &TxOut) -> Result<&SecretKey, StorageError> {
        self.owners
            .get(&out.address)
            .and_then(|i| self.validators.get(*i))
            .ok_or_else(|| StorageError::NotFound {
                what: format!("a key for output address {:?}", out.address),
            })
    }

    /// The next block on `store`'s tip with `txs` two-in/two-out transfers. When the set holds fewer than
    /// `2 * txs` outputs, the block instead splits coins (one input, many outputs) so a later block can.
    pub fn next_block(
        &self,
        store: &impl ChainStore,
        txs: usize,
    ) -> Result<(WellFormedBlock, CommitCertificate), StorageError> {
        let want = 2 * txs.max(1);
        let mut coins: Vec<(OutPoint, TxOut)> = Vec::with_capacity(want);
        let mut cursor = None;
        while coins.len() < want {
            let page = store.utxo_page(cursor.as_ref(), want - coins.len())?;
            coins.extend(page.entries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let chain = self.genesis.params.chain_id;
        let mut transactions = Vec::with_capacity(txs);
        if coins.len() >= want {
            for (i, pair) in coins.chunks_exact(2).take(txs).enumerate() {
                let [(op_a, a), (op_b, b)] = pair else {
                    continue;
                };
                let total = (a.amount.as_sat() + b.amount.as_sat()).saturating_sub(FEE.as_sat());
                let first = Amount::from_sat(total / 2);
                let second = Amount::from_sat(total - total / 2);
                transactions.push(
                    TxBuilder::new(chain)
                        .input(*op_a, a.amount, self.key_for(a)?)
                        .input(*op_b, b.amount, self.key_for(b)?)
                        .output(self.address(i + 1), first)
                        .output(self.address(i + 2), second)
                        .sign(),
                );
            }
        } else {
            let per_coin = (want / coins.len().max(1) + 1).min(MAX_SPLIT);
            for (i, (op, out)) in coins.iter().enumerate() {
                let share = out.amount.as_sat().saturating_sub(FEE.as_sat()) / per_coin as u64;
                let mut builder = TxBuilder::new(chain).input(*op, out.amount, self.key_for(out)?);
                for j in 0..per_coin {
                    builder = builder.output(self.address(i + j), Amount::from_sat(share));
                }
                transactions.push(builder.sign());
            }
        }
        self.seal_block(store, transactions)
    }

    /// Wraps `transactions` in a block on `store`'s tip, with the commitment the store computes, and
    /// certifies it.
    pub fn seal_block(
        &self,
        store: &impl ChainStore,
        transactions: Vec<Transaction>,
    ) -> Result<(WellFormedBlock, CommitCertificate), StorageError> {
        let draft = self.unsealed_block(store, transactions)?.seal();
        let commitment = store.utxo_commitment_after(&draft)?;
        let mut block = draft.into_block();
        block.header.utxo_commitment = commitment;
        let block = block.seal();
        let certificate = self.certify(&block);
        Ok((block, certificate))
    }

    /// A block of `transactions` on `store`'s tip whose header commits to nothing yet (zero roots and
    /// UTXO commitment): for tests that build a block the store must refuse, then [`Block::seal`] it.
    pub fn unsealed_block(
        &self,
        store: &impl ChainStore,
        transactions: Vec<Transaction>,
    ) -> Result<Block, StorageError> {
        let tip = store.tip()?;
        let height = tip.height + 1;
        let proposer = self.validator(height as usize);
        Ok(Block {
            header: BlockHeader {
                chain_id: self.genesis.params.chain_id,
                height,
                view: 0,
                parent: tip.hash,
                timestamp_ms: self.genesis.timestamp_ms + height * 1_000,
                proposer: proposer.public_key(),
                tx_root: timecoin_crypto::Hash::ZERO,
                witness_root: timecoin_crypto::Hash::ZERO,
                utxo_commitment: timecoin_crypto::Hash::ZERO,
                validators_hash: timecoin_crypto::Hash::ZERO,
            },
            transactions,
        })
    }

    /// A signed transfer of `coins` (each owned by a local validator) into `outputs` equal outputs paid
    /// to the validators, less the fee.
    pub fn transfer(
        &self,
        coins: &[(OutPoint, TxOut)],
        outputs: usize,
    ) -> Result<Transaction, StorageError> {
        let outputs = outputs.max(1);
        let total: u64 = coins.iter().map(|(_, out)| out.amount.as_sat()).sum();
        let share = total.saturating_sub(FEE.as_sat()) / outputs as u64;
        let mut builder = TxBuilder::new(self.genesis.params.chain_id);
        for (op, out) in coins {
            builder = builder.input(*op, out.amount, self.key_for(out)?);
        }
        for i in 0..outputs {
            builder = builder.output(self.address(i), Amount::from_sat(share));
        }
        Ok(builder.sign())
    }

    /// A commit certificate for `block` signed by every validator.
    pub fn certify(&self, block: &Block) -> CommitCertificate {
        let hash = block.hash();
        let chain = self.genesis.params.chain_id;
        let mut signatures: Vec<_> = self
            .validators
            .iter()
            .map(|k| {
                let vote = Vote::sign(
                    k,
                    chain,
                    VotePhase::Commit,
                    block.header.height,
                    block.header.view,
                    Some(hash),
                );
                (vote.voter, vote.signature)
            })
            .collect();
        signatures.sort_by_key(|(voter, _)| *voter);
        CommitCertificate {
            height: block.header.height,
            view: block.header.view,
            block_hash: hash,
            signatures,
        }
    }
}
