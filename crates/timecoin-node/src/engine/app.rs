//! The application: what the leader proposes and what every validator accepts, both functions of the
//! finalized chain alone, so honest nodes at one height judge a block the same way.

use timecoin_types::{Block, BlockHeader, Hash, Height, View, WellFormedBlock, check_block_with};

use super::Engine;
use crate::NodeError;

/// Room left in a block for its header and the encoding's length prefixes.
const HEADER_ROOM: usize = 1024;

/// The chain store as a [`timecoin_types::UtxoView`] for the rules.
struct StoreView<'a>(&'a dyn timecoin_storage::ChainStore);

impl timecoin_types::UtxoView for StoreView<'_> {
    fn get_utxo(
        &self,
        outpoint: &timecoin_types::OutPoint,
    ) -> Result<Option<timecoin_types::TxOut>, timecoin_types::TypesError> {
        self.0.get_utxo(outpoint)
    }
}

impl Engine {
    /// The leader's block for `(height, view)`: the mempool's best transactions within the block limit,
    /// on the tip, with the UTXO commitment of the set they leave and the hash of the validator schedule
    /// after it.
    pub(super) fn build_block(
        &mut self,
        height: Height,
        view: View,
    ) -> Result<WellFormedBlock, NodeError> {
        let reward = self.reward_for(height);
        let reward_len = reward.as_ref().map_or(0, |tx| tx.encoded_len());
        let limit = self
            .params
            .block_limit()
            .saturating_sub(HEADER_ROOM)
            .saturating_sub(reward_len);
        let transactions = reward
            .into_iter()
            .chain(
                self.mempool
                    .template(limit)
                    .into_iter()
                    .map(|tx| (*tx).clone()),
            )
            .collect();
        let (_, parent, parent_time) = self.tip;
        let draft = Block {
            header: BlockHeader {
                chain_id: self.params.chain_id,
                height,
                view,
                parent,
                // Informational; kept increasing so blocks of different views and proposers differ.
                timestamp_ms: parent_time.saturating_add(1).max(self.now()),
                proposer: self.me,
                tx_root: Hash::ZERO,
                witness_root: Hash::ZERO,
                utxo_commitment: Hash::ZERO,
                validators_hash: Hash::ZERO,
            },
            transactions,
        }
        .seal();
        let commitment = self.store.utxo_commitment_after(&draft)?;
        let schedule = self.registry.prepare(&draft)?.schedule_hash();
        Ok(draft
            .with_utxo_commitment(commitment)
            .with_validators_hash(schedule))
    }

    /// Whether `block` may follow the tip: its height and parent, every transaction valid in order
    /// (signatures included), the header's UTXO commitment equal to the set after it, and its
    /// validator-schedule hash equal to the registry's after it.
    pub(super) fn validate_block(&self, block: &WellFormedBlock) -> Result<(), NodeError> {
        let header = &block.header;
        let (tip_height, tip, _) = self.tip;
        if header.height != tip_height.saturating_add(1) || header.parent != tip {
            return Err(NodeError::NotOnTip {
                height: header.height,
                parent: header.parent,
                tip_height,
                tip,
            });
        }
        // Signatures the mempool verified on admission (the same bytes) are not checked twice.
        let mempool = &self.mempool;
        let reward = self.reward_for(header.height);
        check_block_with(
            block,
            &StoreView(&*self.store),
            &self.params,
            reward.as_ref(),
            |tx| mempool.holds_verified(tx),
        )?;
        if self.store.utxo_commitment_after(block)? != header.utxo_commitment {
            return Err(NodeError::CommitmentMismatch {
                height: header.height,
            });
        }
        if self.registry.prepare(block)?.schedule_hash() != header.validators_hash {
            return Err(NodeError::ScheduleMismatch {
                height: header.height,
            });
        }
        Ok(())
    }
}
