//! The transaction rules that need the UTXO set: one pure implementation that the mempool and block
//! validation both call, so a transaction accepted into a pool is valid in a block and vice versa.

use std::collections::{HashMap, HashSet};

use timecoin_crypto::{
    Address, BatchItem, ChainId, SigDomain, verify_batch, verify_batch_parallel,
};

use crate::{
    Amount, Block, ChainParams, OutPoint, Transaction, TxId, TxKind, TxOut, TypesError,
    WellFormedBlock,
};

/// Read access to unspent outputs.
///
/// An implementation must answer from one consistent state for the duration of a check, and must return
/// `Err` (never `Ok(None)`) when it cannot tell, so an I/O failure is never mistaken for a spent output.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if any.
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError>;
}

impl<V: UtxoView + ?Sized> UtxoView for &V {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        (**self).get_utxo(outpoint)
    }
}

impl UtxoView for HashMap<OutPoint, TxOut> {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        Ok(self.get(outpoint).copied())
    }
}

/// What a contextual check learned: the fee, and the outputs spent (whose amounts the signatures cover).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTx {
    /// Inputs minus outputs.
    pub fee: Amount,
    /// The output each input spends, in input order.
    pub spent: Vec<TxOut>,
}

/// Every rule except signatures: stateless rules, inputs exist and are unspent, each input's key owns the
/// output it spends, fee ≥ minimum, and masternode collateral. Signatures are left out so a caller can
/// verify many transactions' signatures in one batch ([`signature_messages`], [`verify_signatures`]).
pub fn check_tx_context(
    tx: &Transaction,
    view: &impl UtxoView,
    params: &ChainParams,
) -> Result<CheckedTx, TypesError> {
    tx.check(params)?;
    if let TxKind::Reward { .. } = tx.kind {
        // Only a block may carry one, in its first place, and only as computed (`check_block_with`).
        return Err(TypesError::BadReward {
            reason: "a reward is never relayed or pooled, only computed by the block's nodes"
                .into(),
        });
    }
    let mut spent = Vec::with_capacity(tx.inputs.len());
    for (index, input) in tx.inputs.iter().enumerate() {
        let out = view
            .get_utxo(&input.prevout)?
            .ok_or(TypesError::MissingInput {
                index,
                outpoint: input.prevout,
            })?;
        if Address::from_public_key(&input.public_key) != out.address {
            return Err(TypesError::KeyMismatch { index });
        }
        spent.push(out);
    }
    let inputs =
        Amount::checked_sum(spent.iter().map(|o| o.amount)).ok_or(TypesError::InputOverflow)?;
    let outputs = tx.output_total()?;
    let fee = inputs
        .checked_sub(outputs)
        .ok_or(TypesError::InsufficientInputs { inputs, outputs })?;
    if fee < params.min_tx_fee {
        return Err(TypesError::FeeTooLow {
            fee,
            min: params.min_tx_fee,
        });
    }
    if let TxKind::RegisterMasternode(reg) = &tx.kind
        && let Some(collateral) = &reg.collateral
    {
        let out = view
            .get_utxo(collateral)?
            .ok_or_else(|| TypesError::BadRegistration {
                reason: format!("collateral {collateral} is not an unspent output"),
            })?;
        if out.amount < reg.tier.collateral() {
            return Err(TypesError::BadRegistration {
                reason: format!(
                    "collateral holds {}, {} tier needs {}",
                    out.amount,
                    reg.tier.name(),
                    reg.tier.collateral()
                ),
            });
        }
        if !tx
            .inputs
            .iter()
            .any(|i| Address::from_public_key(&i.public_key) == out.address)
        {
            return Err(TypesError::BadRegistration {
                reason: "collateral is not owned by any input's key".to_string(),
            });
        }
        if tx.inputs.iter().any(|i| i.prevout == *collateral) {
            return Err(TypesError::BadRegistration {
                reason: "the transaction spends its own collateral".to_string(),
            });
        }
    }
    Ok(CheckedTx { fee, spent })
}

/// The message each input signs, given the outputs it spends.
pub fn signature_messages(
    tx: &Transaction,
    spent: &[TxOut],
) -> Vec<[u8; crate::tx::INPUT_MESSAGE_LEN]> {
    let txid = tx.txid();
    spent
        .iter()
        .enumerate()
        .map(|(i, out)| Transaction::input_message(&txid, i as u32, out.amount))
        .collect()
}

/// Verifies every input signature of `tx` (as one batch). `spent` holds the output each input spends, in
/// input order; an input without one is reported as missing rather than silently left unverified.
pub fn verify_signatures(
    tx: &Transaction,
    chain: ChainId,
    spent: &[TxOut],
) -> Result<(), TypesError> {
    if let Some(input) = tx.inputs.get(spent.len()) {
        return Err(TypesError::MissingInput {
            index: spent.len(),
            outpoint: input.prevout,
        });
    }
    let messages = signature_messages(tx, spent);
    let items: Vec<BatchItem<'_>> = tx
        .inputs
        .iter()
        .zip(&messages)
        .map(|(input, msg)| BatchItem {
            key: &input.public_key,
            domain: SigDomain::TxInput,
            chain,
            message: msg,
            signature: &input.signature,
        })
        .collect();
    verify_batch(&items).map_err(|e| match e {
        timecoin_crypto::CryptoError::BatchInvalid { indices } => {
            let index = indices.first().copied().unwrap_or_default();
            let source = tx
                .inputs
                .get(index)
                .zip(messages.get(index))
                .and_then(|(i, m)| {
                    i.public_key
                        .verify(SigDomain::TxInput, chain, m, &i.signature)
                        .err()
                })
                .unwrap_or(timecoin_crypto::CryptoError::BadSignature);
            TypesError::BadSignature { index, source }
        }
        other => TypesError::BadSignature {
            index: 0,
            source: other,
        },
    })
}

/// All rules for one transaction against `view`; returns the fee.
pub fn check_tx(
    tx: &Transaction,
    view: &impl UtxoView,
    params: &ChainParams,
) -> Result<Amount, TypesError> {
    let checked = check_tx_context(tx, view, params)?;
    verify_signatures(tx, params.chain_id, &checked.spent)?;
    Ok(checked.fee)
}

/// Smallest chunk of a block's signatures verified as one batch on one thread.
const BLOCK_BATCH_CHUNK: usize = 256;

/// A view of `base` with a block's earlier transactions applied, so a transaction may spend an output
/// created earlier in the same block.
struct BlockOverlay<'a, V> {
    base: &'a V,
    created: HashMap<OutPoint, TxOut>,
    spent: HashSet<OutPoint>,
}

impl<V: UtxoView> UtxoView for BlockOverlay<'_, V> {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        if self.spent.contains(outpoint) {
            return Ok(None);
        }
        if let Some(out) = self.created.get(outpoint) {
            return Ok(Some(*out));
        }
        self.base.get_utxo(outpoint)
    }
}

/// Checks a block's body against the UTXO set before it: chain id, size, no two transactions spending
/// one output, and every transaction valid in order (signatures in one batch). The body's binding to the
/// header was checked when the [`WellFormedBlock`] was made.
/// Returns the total fees. Header linkage (height, parent, proposer) is consensus's business.
pub fn check_block(
    block: &WellFormedBlock,
    view: &impl UtxoView,
    params: &ChainParams,
) -> Result<Amount, TypesError> {
    check_block_with(block, view, params, None, |_| false)
}

/// [`check_block`], with two additions a node supplies:
/// - `reward`: the reward transaction the block must start with (the node computes it from its reward
///   schedule), or `None` if the block must carry none. A reward anywhere else, or one that differs in
///   any byte, is refused. [`check_block`] passes `None`.
/// - `verified`: the signatures of transactions for which it says yes are not checked again. A node passes
///   its mempool's `holds_verified`, which answers yes only for a transaction identical, signatures
///   included, to one whose signatures it verified on admission. Everything else (inputs, amounts, fees,
///   conflicts) is checked for every transaction.
///
/// The fees returned leave out the reward (it spends nothing and pays what earlier blocks accrued).
pub fn check_block_with(
    block: &WellFormedBlock,
    view: &impl UtxoView,
    params: &ChainParams,
    reward: Option<&Transaction>,
    verified: impl Fn(&Transaction) -> bool,
) -> Result<Amount, TypesError> {
    if block.header.chain_id != params.chain_id {
        return Err(TypesError::WrongChain {
            expected: params.chain_id.0,
            found: block.header.chain_id.0,
        });
    }
    let len = crate::codec::encoded_len(block);
    if len > params.block_limit() {
        return Err(TypesError::TooLarge {
            what: "block",
            len,
            max: params.block_limit(),
        });
    }
    // The body is bound to the header by the type, which kept the txids it computed for the check.
    let txids = block.txids();
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
    };
    let mut spender: HashMap<OutPoint, usize> = HashMap::new();
    let mut fees = Amount::ZERO;
    let mut all_spent = Vec::with_capacity(block.transactions.len());
    let expected_reward = reward;
    match (block.transactions.first(), expected_reward) {
        (Some(first), Some(expected)) if first == expected => {}
        (_, Some(_)) => {
            return Err(TypesError::BadReward {
                reason: "the block does not start with the reward its height pays".into(),
            });
        }
        _ => {}
    }
    for (index, (tx, &txid)) in block.transactions.iter().zip(txids).enumerate() {
        if let TxKind::Reward { .. } = tx.kind {
            if index != 0 || expected_reward.is_none() {
                return Err(TypesError::InvalidBlockTx {
                    index,
                    source: Box::new(TypesError::BadReward {
                        reason: "a reward where none is due".into(),
                    }),
                });
            }
            // Its outputs join the block's view; it spends and signs nothing.
            tx.check(params).map_err(|e| TypesError::InvalidBlockTx {
                index,
                source: Box::new(e),
            })?;
            for (vout, out) in tx.outputs.iter().enumerate() {
                overlay.created.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    *out,
                );
            }
            all_spent.push((txid, Vec::new()));
            continue;
        }
        for input in &tx.inputs {
            // A transaction spending one output twice is its own fault (`DuplicateInput`, reported by
            // its own check below), not a conflict between two transactions.
            if let Some(first) = spender.insert(input.prevout, index)
                && first != index
            {
                return Err(TypesError::ConflictInBlock {
                    first,
                    second: index,
                    outpoint: input.prevout,
                });
            }
        }
        let wrap = |e: TypesError| TypesError::InvalidBlockTx {
            index,
            source: Box::new(e),
        };
        let checked = check_tx_context(tx, &overlay, params).map_err(wrap)?;
        fees = fees
            .checked_add(checked.fee)
            .ok_or(TypesError::InputOverflow)?;
        for input in &tx.inputs {
            overlay.created.remove(&input.prevout);
            overlay.spent.insert(input.prevout);
        }
        for (vout, out) in tx.outputs.iter().enumerate() {
            overlay.created.insert(
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                *out,
            );
        }
        all_spent.push((txid, checked.spent));
    }
    // One batch for the whole block: the expensive part, done once.
    let messages: Vec<Vec<[u8; crate::tx::INPUT_MESSAGE_LEN]>> = all_spent
        .iter()
        .map(|(txid, spent)| {
            spent
                .iter()
                .enumerate()
                .map(|(i, o)| Transaction::input_message(txid, i as u32, o.amount))
                .collect()
        })
        .collect();
    let mut items = Vec::new();
    for (tx, msgs) in block.transactions.iter().zip(&messages) {
        if verified(tx) {
            continue;
        }
        for (input, msg) in tx.inputs.iter().zip(msgs) {
            items.push(BatchItem {
                key: &input.public_key,
                domain: SigDomain::TxInput,
                chain: params.chain_id,
                message: msg,
                signature: &input.signature,
            });
        }
    }
    // Blocks carry thousands of signatures: split them over the rayon pool in chunks large enough to keep
    // most of the batch speed-up (same accept set as single verification either way).
    if verify_batch_parallel(&items, BLOCK_BATCH_CHUNK).is_err() {
        // Name the first offending transaction and input precisely.
        for (index, (tx, (_, spent))) in block.transactions.iter().zip(&all_spent).enumerate() {
            verify_signatures(tx, params.chain_id, spent).map_err(|e| {
                TypesError::InvalidBlockTx {
                    index,
                    source: Box::new(e),
                }
            })?;
        }
    }
    Ok(fees)
}

/// The UTXO-set changes a block makes, in order: outpoints it spends and outputs it creates (outputs
/// created and spent inside the same block appear in neither).
///
/// Refuses a body whose changes cannot be applied consistently, whatever the UTXO set: one outpoint
/// spent twice (by one transaction or by two, including an output created earlier in the block) and one
/// transaction twice. Storage relies on this to keep its set consistent without re-running the rules.
pub fn block_utxo_delta(block: &Block) -> Result<BlockDelta, TypesError> {
    let mut created: Vec<(OutPoint, TxOut)> = Vec::new();
    // Outpoints created in this block and not yet spent in it.
    let mut live: HashSet<OutPoint> = HashSet::new();
    let mut consumed = HashSet::new();
    let mut spender: HashMap<OutPoint, (usize, usize)> = HashMap::new();
    let mut position: HashMap<TxId, usize> = HashMap::with_capacity(block.transactions.len());
    let mut spent = Vec::new();
    for (tx_index, tx) in block.transactions.iter().enumerate() {
        for (input_index, input) in tx.inputs.iter().enumerate() {
            if let Some((first_tx, first_input)) =
                spender.insert(input.prevout, (tx_index, input_index))
            {
                return Err(if first_tx == tx_index {
                    TypesError::InvalidBlockTx {
                        index: tx_index,
                        source: Box::new(TypesError::DuplicateInput {
                            index: input_index,
                            first: first_input,
                            outpoint: input.prevout,
                        }),
                    }
                } else {
                    TypesError::ConflictInBlock {
                        first: first_tx,
                        second: tx_index,
                        outpoint: input.prevout,
                    }
                });
            }
            if live.remove(&input.prevout) {
                consumed.insert(input.prevout);
            } else {
                spent.push(input.prevout);
            }
        }
        let txid = tx.txid();
        if let Some(first) = position.insert(txid, tx_index) {
            return Err(TypesError::DuplicateTxInBlock {
                first,
                second: tx_index,
                txid,
            });
        }
        for (vout, out) in tx.outputs.iter().enumerate() {
            let op = OutPoint {
                txid,
                vout: vout as u32,
            };
            live.insert(op);
            created.push((op, *out));
        }
    }
    created.retain(|(op, _)| !consumed.contains(op));
    Ok(BlockDelta { spent, created })
}

/// What [`block_utxo_delta`] returns: a block's net effect on the UTXO set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockDelta {
    /// Outpoints from before the block that it spends, in order, each once.
    pub spent: Vec<OutPoint>,
    /// Outputs it creates and leaves unspent, in order.
    pub created: Vec<(OutPoint, TxOut)>,
}
