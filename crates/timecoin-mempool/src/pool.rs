//! The default [`Mempool`]: sharded maps and atomics, no global lock.
//!
//! # How an insert stays race-free
//! A transaction enters in this order: it *claims* every outpoint it spends (and its registration's
//! collateral) in the lock map with the map's entry API, then *reserves* room in the occupancy word, then
//! is put in the transaction map, then re-reads its claims in the UTXO view.
//! - Two conflicting transactions cannot both claim one outpoint: each claim is a compare-and-set on one
//!   map entry. The loser rolls back the claims it made, so it never leaves a lock behind.
//! - Room is reserved by one compare-and-swap over both counters, so the limits hold at every instant.
//! - A block finalized while a transaction was being admitted is caught by the last step: the node
//!   applies a block to the view *before* calling [`Mempool::on_finalized`], and `on_finalized` finds
//!   transactions through the lock map. Either `on_finalized` sees the new transaction's claim and removes
//!   it, or the new transaction's re-read sees the block's spends and it removes itself.
//! - A removal takes the transaction out of the map first and releases its claims after, releasing only
//!   entries that still name it; a rolled-back replacement that hands a claim back to its previous owner
//!   checks afterwards that the owner is still pooled. So no lock ever outlives its transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use rayon::prelude::*;
use timecoin_crypto::{BatchItem, CryptoError, Hash, HashDomain, SigDomain, hash};
use timecoin_types::{
    Amount, Block, ChainParams, INPUT_MESSAGE_LEN, OutPoint, Transaction, TxId, TxKind, TxOut,
    TypesError, UtxoView, Wire, check_tx_context, verify_signatures,
};
use tracing::debug;

use crate::clock::{Clock, SystemClock};
use crate::error::is_property_of_bytes;
use crate::fee_index::FeeIndex;
use crate::occupancy::{Full, Occupancy};
use crate::stats::{Counters, bump};
use crate::{Config, FeeRate, Mempool, MempoolError, MempoolStats, RejectionCache};

/// Context of the hash that keys the rejection cache: the full signed encoding.
const WIRE_ID_CONTEXT: &str = "timecoin mempool wire id v1";
/// Times an insert re-plans after losing a claim race before it reports the conflict.
const ADMIT_ATTEMPTS: usize = 3;
/// Times an insert evicts and retries its reservation when concurrent inserts take the room it made.
const ROOM_ATTEMPTS: usize = 8;

/// A transaction in the pool, with what admission learned about it.
#[derive(Debug)]
pub struct PooledTx {
    tx: Arc<Transaction>,
    txid: TxId,
    size: usize,
    fee: Amount,
    rate: FeeRate,
    claims: Vec<OutPoint>,
}

impl PooledTx {
    /// The transaction.
    pub fn tx(&self) -> &Arc<Transaction> {
        &self.tx
    }
    /// Its id.
    pub fn txid(&self) -> TxId {
        self.txid
    }
    /// Its encoded size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Its fee.
    pub fn fee(&self) -> Amount {
        self.fee
    }
    /// Its fee rate.
    pub fn fee_rate(&self) -> FeeRate {
        self.rate
    }
    /// The outpoints it locks: its inputs, then its registration's collateral if it has one.
    pub fn claims(&self) -> &[OutPoint] {
        &self.claims
    }
}

/// A transaction that passed the checks before the signature check.
struct Candidate {
    entry: PooledTx,
    wire_id: Hash,
    spent: Vec<TxOut>,
}

/// Why claiming a transaction's outpoints failed.
enum ClaimFailure {
    /// Another copy of the same transaction holds a claim.
    Duplicate,
    /// A transaction outside the planned replacements holds one.
    Conflict { outpoint: OutPoint, pooled: TxId },
}

/// The default [`Mempool`]: lock-free on the hot path (sharded [`DashMap`]s and atomics).
///
/// Bounded by [`Config`]: at most `max_transactions` transactions and `max_bytes` encoded bytes (seed:
/// 10,000 and 300 MB); the lock map holds exactly the pooled transactions' claims, the fee index exactly
/// their ranks, the rejection cache at most `rejection_cache_entries`.
///
/// # Policy
/// - **Validity** is [`check_tx_context`] plus the input signatures against the view `V`, which must be
///   the finalized UTXO set. A transaction may not spend an output of a pooled (unfinalized) one: that
///   output is not in the view, so it is rejected as a missing input, and its sender resubmits once the
///   parent is final (with instant finality, one block later).
/// - **Locks**: a pooled transaction locks the outpoints it spends and its registration's collateral.
/// - **Replacement** (fee bump): a transaction whose claims are locked by pooled transactions `C`
///   replaces all of them when (1) `|C|` ≤ [`Config::max_replacements`], (2) its fee rate is strictly
///   higher than each one's, and (3) its fee ≥ Σ fee(`C`) + [`Config::replacement_fee_rate`] × its size.
///   (2) keeps block space from getting worse; (3) makes every replacement pay for the relay of its own
///   bytes, so bumping in tiny steps costs real fees. Otherwise it is rejected and `C` stays.
/// - **Room**: when a limit would be exceeded, the cheapest pooled transactions (lowest fee rate, ties by
///   txid) go first, but only ones paying a strictly lower rate than the newcomer, and only if evicting
///   them makes enough room; otherwise the newcomer is rejected with [`MempoolError::PoolFull`] and nothing
///   is evicted.
/// - **Rejection cache**: see [`MempoolError::is_remembered`]; keyed by the hash of the full signed
///   encoding (see [`RejectionCache`]).
#[derive(Debug)]
pub struct TxPool<V> {
    config: Config,
    max_count: u64,
    max_bytes: u64,
    params: ChainParams,
    view: V,
    clock: Arc<dyn Clock>,
    txs: DashMap<TxId, Arc<PooledTx>>,
    locks: DashMap<OutPoint, TxId>,
    fee_index: FeeIndex,
    occupancy: Occupancy,
    rejections: RejectionCache,
    counters: Counters,
}

impl<V: UtxoView + Send + Sync> TxPool<V> {
    /// An empty pool for the chain of `params`, validating against `view` (the finalized UTXO set).
    pub fn new(config: Config, params: ChainParams, view: V) -> Self {
        Self::with_clock(config, params, view, Arc::new(SystemClock::new()))
    }

    /// Like [`TxPool::new`], with the clock that times rejection-cache entries.
    pub fn with_clock(config: Config, params: ChainParams, view: V, clock: Arc<dyn Clock>) -> Self {
        let (max_count, max_bytes) = config.effective_limits();
        TxPool {
            rejections: RejectionCache::new(config.rejection_cache_entries, config.rejection_ttl),
            config,
            max_count,
            max_bytes,
            params,
            view,
            clock,
            txs: DashMap::new(),
            locks: DashMap::new(),
            fee_index: FeeIndex::new(),
            occupancy: Occupancy::default(),
            counters: Counters::default(),
        }
    }

    /// The UTXO view the pool validates against.
    pub fn view(&self) -> &V {
        &self.view
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The pooled transaction `txid`, with its fee and size.
    pub fn entry(&self, txid: &TxId) -> Option<Arc<PooledTx>> {
        self.txs.get(txid).map(|e| Arc::clone(e.value()))
    }

    /// Every pooled transaction, in no particular order.
    pub fn entries(&self) -> Vec<Arc<PooledTx>> {
        self.txs.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// The pooled transaction that locks `outpoint`, if any: a wallet can tell a coin is being spent.
    pub fn lock_owner(&self, outpoint: &OutPoint) -> Option<TxId> {
        self.locks.get(outpoint).map(|owner| *owner)
    }

    /// Outpoints locked.
    pub fn lock_count(&self) -> usize {
        self.locks.len()
    }

    /// The rejection cache.
    pub fn rejection_cache(&self) -> &RejectionCache {
        &self.rejections
    }

    // ---- admission ----

    /// The checks before the signature check: rejection cache, duplicate, chain rules against the view,
    /// and whether it could get in now (conflicts, room). All cheap next to the signatures, so a flood of
    /// transactions that will not get in is turned away before the expensive part.
    fn screen(&self, tx: Transaction) -> Result<Candidate, MempoolError> {
        let encoded = tx.encode();
        let wire_id = hash(HashDomain::Custom(WIRE_ID_CONTEXT), &encoded);
        let txid = tx.txid();
        if let Some(reason) = self.rejections.check(&wire_id, self.clock.now()) {
            bump(&self.counters.rejected_recently);
            return Err(MempoolError::RecentlyRejected { txid, reason });
        }
        if self.txs.contains_key(&txid) {
            bump(&self.counters.rejected_duplicate);
            return Err(MempoolError::AlreadyPooled { txid });
        }
        let checked = check_tx_context(&tx, &self.view, &self.params)
            .map_err(|source| self.reject(wire_id, txid, source))?;
        let mut claims: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prevout).collect();
        if let TxKind::RegisterMasternode(reg) = &tx.kind
            && let Some(collateral) = reg.collateral
        {
            claims.push(collateral);
        }
        let size = encoded.len();
        let entry = PooledTx {
            rate: FeeRate::new(checked.fee, size),
            fee: checked.fee,
            size,
            claims,
            txid,
            tx: Arc::new(tx),
        };
        self.plan(&entry)?;
        Ok(Candidate {
            entry,
            wire_id,
            spent: checked.spent,
        })
    }

    /// Counts a rule failure and remembers it when it is a property of the bytes.
    fn reject(&self, wire_id: Hash, txid: TxId, source: TypesError) -> MempoolError {
        bump(&self.counters.rejected_invalid);
        if is_property_of_bytes(&source) {
            self.rejections
                .record(wire_id, source.clone(), self.clock.now());
        }
        debug!(%txid, error = %source, "transaction rejected");
        MempoolError::Invalid { txid, source }
    }

    /// Which pooled transactions `entry` would replace, if it may get in now; read-only.
    fn plan(&self, entry: &PooledTx) -> Result<Vec<Arc<PooledTx>>, MempoolError> {
        let txid = entry.txid;
        let mut conflicts: BTreeMap<TxId, Arc<PooledTx>> = BTreeMap::new();
        for outpoint in &entry.claims {
            let Some(owner) = self.locks.get(outpoint).map(|o| *o) else {
                continue;
            };
            if owner == txid {
                bump(&self.counters.rejected_duplicate);
                return Err(MempoolError::AlreadyPooled { txid });
            }
            if conflicts.contains_key(&owner) {
                continue;
            }
            match self.entry(&owner) {
                Some(pooled) => {
                    conflicts.insert(owner, pooled);
                }
                None => {
                    // Claimed but not pooled: still being admitted (or removed) by another thread.
                    bump(&self.counters.rejected_conflict);
                    return Err(MempoolError::DoubleSpend {
                        txid,
                        outpoint: *outpoint,
                        pooled: owner,
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            self.check_replacement(entry, &conflicts)?;
        }
        self.check_room(entry, &conflicts)?;
        Ok(conflicts.into_values().collect())
    }

    /// The fee-bump rule (see [`TxPool`]).
    fn check_replacement(
        &self,
        entry: &PooledTx,
        conflicts: &BTreeMap<TxId, Arc<PooledTx>>,
    ) -> Result<(), MempoolError> {
        let txid = entry.txid;
        let result = if conflicts.len() > self.config.max_replacements {
            Err(MempoolError::TooManyReplacements {
                txid,
                conflicts: conflicts.len(),
                max: self.config.max_replacements,
            })
        } else if let Some(pooled) = conflicts.values().find(|p| entry.rate <= p.rate) {
            Err(MempoolError::ReplacementFeeRateTooLow {
                txid,
                fee_rate: entry.rate,
                pooled: pooled.txid,
                pooled_fee_rate: pooled.rate,
            })
        } else {
            let replaced: u128 = conflicts.values().map(|p| u128::from(p.fee.as_sat())).sum();
            let relay = u128::from(self.config.replacement_fee_rate) * entry.size as u128;
            let required = replaced + relay;
            if u128::from(entry.fee.as_sat()) < required {
                Err(MempoolError::ReplacementFeeTooLow {
                    txid,
                    fee: entry.fee,
                    required: Amount::from_sat(u64::try_from(required).unwrap_or(u64::MAX)),
                    replaced: conflicts.len(),
                })
            } else {
                Ok(())
            }
        };
        if result.is_err() {
            bump(&self.counters.rejected_conflict);
        }
        result
    }

    /// Whether `entry` would fit once `replacing` is gone, evicting only cheaper transactions.
    fn check_room(
        &self,
        entry: &PooledTx,
        replacing: &BTreeMap<TxId, Arc<PooledTx>>,
    ) -> Result<(), MempoolError> {
        let (count, bytes) = self.occupancy.load();
        let freed_bytes: u64 = replacing.values().map(|p| p.size as u64).sum();
        let count_after = (count + 1).saturating_sub(replacing.len() as u64);
        let bytes_after = (bytes + entry.size as u64).saturating_sub(freed_bytes);
        let need_count = count_after.saturating_sub(self.max_count);
        let need_bytes = bytes_after.saturating_sub(self.max_bytes);
        let coverable = self
            .fee_index
            .cheapest_covering(entry.rate, need_count, need_bytes, |t| {
                replacing.contains_key(t)
            })
            .is_some();
        if coverable {
            Ok(())
        } else {
            Err(self.full(entry))
        }
    }

    fn full(&self, entry: &PooledTx) -> MempoolError {
        bump(&self.counters.rejected_full);
        let (transactions, bytes) = self.occupancy.load();
        MempoolError::PoolFull {
            txid: entry.txid,
            fee_rate: entry.rate,
            lowest_fee_rate: self.fee_index.lowest().map(|(rate, _)| rate),
            transactions,
            max_transactions: self.max_count,
            bytes,
            max_bytes: self.max_bytes,
        }
    }

    /// Puts a screened, signature-checked transaction in the pool.
    fn admit(&self, candidate: Candidate) -> Result<TxId, MempoolError> {
        let entry = Arc::new(candidate.entry);
        let txid = entry.txid;
        let mut lost_race = None;
        for _ in 0..ADMIT_ATTEMPTS {
            let replace = self.plan(&entry)?;
            let claimed = match self.claim(&entry, &replace) {
                Ok(claimed) => claimed,
                Err(ClaimFailure::Duplicate) => {
                    bump(&self.counters.rejected_duplicate);
                    return Err(MempoolError::AlreadyPooled { txid });
                }
                Err(ClaimFailure::Conflict { outpoint, pooled }) => {
                    lost_race = Some((outpoint, pooled));
                    continue;
                }
            };
            for old in &replace {
                if self.remove(old.txid).is_some() {
                    bump(&self.counters.replaced);
                    debug!(replaced = %old.txid, by = %txid, "transaction replaced");
                }
            }
            if let Err(e) = self.make_room(&entry) {
                self.rollback(txid, claimed);
                return Err(e);
            }
            let inserted = match self.txs.entry(txid) {
                Entry::Vacant(slot) => {
                    // Indexed while the map shard is held, so a concurrent removal (map first, index
                    // second) cannot slip between the two and leave a stale rank behind.
                    self.fee_index.insert(entry.rate, txid);
                    slot.insert(Arc::clone(&entry));
                    true
                }
                // Unreachable while this thread holds the claims, which any copy would need too.
                Entry::Occupied(_) => false,
            };
            if !inserted {
                self.occupancy.release(entry.size as u64);
                self.rollback(txid, claimed);
                bump(&self.counters.rejected_duplicate);
                return Err(MempoolError::AlreadyPooled { txid });
            }
            if let Err(source) = self.recheck_view(&entry) {
                self.remove(txid);
                bump(&self.counters.rejected_invalid);
                return Err(MempoolError::Invalid { txid, source });
            }
            bump(&self.counters.accepted);
            return Ok(txid);
        }
        bump(&self.counters.rejected_conflict);
        let (outpoint, pooled) = lost_race.unwrap_or_default();
        Err(MempoolError::DoubleSpend {
            txid,
            outpoint,
            pooled,
        })
    }

    /// Claims every outpoint of `entry`, taking over those held by `replace`; on failure, none stay claimed.
    /// Returns each claimed outpoint with its previous owner.
    #[allow(clippy::type_complexity)]
    fn claim(
        &self,
        entry: &PooledTx,
        replace: &[Arc<PooledTx>],
    ) -> Result<Vec<(OutPoint, Option<TxId>)>, ClaimFailure> {
        let txid = entry.txid;
        let mut claimed = Vec::with_capacity(entry.claims.len());
        for outpoint in &entry.claims {
            let failure = match self.locks.entry(*outpoint) {
                Entry::Vacant(slot) => {
                    slot.insert(txid);
                    claimed.push((*outpoint, None));
                    None
                }
                Entry::Occupied(mut slot) => {
                    let owner = *slot.get();
                    if owner == txid {
                        Some(ClaimFailure::Duplicate)
                    } else if replace.iter().any(|p| p.txid == owner) {
                        slot.insert(txid);
                        claimed.push((*outpoint, Some(owner)));
                        None
                    } else {
                        Some(ClaimFailure::Conflict {
                            outpoint: *outpoint,
                            pooled: owner,
                        })
                    }
                }
            };
            // The entry guard is dropped by now, so the rollback may touch any shard.
            if let Some(failure) = failure {
                self.rollback(txid, claimed);
                return Err(failure);
            }
        }
        Ok(claimed)
    }

    /// Undoes claims made by `txid`, handing taken-over ones back to their previous owner if it is still
    /// pooled.
    fn rollback(&self, txid: TxId, claimed: Vec<(OutPoint, Option<TxId>)>) {
        for (outpoint, previous) in claimed.into_iter().rev() {
            match previous {
                None => {
                    self.locks.remove_if(&outpoint, |_, owner| *owner == txid);
                }
                Some(previous) => {
                    if let Some(mut owner) = self.locks.get_mut(&outpoint)
                        && *owner == txid
                    {
                        *owner = previous;
                    }
                    // The previous owner may have been removed meanwhile; its removal released only
                    // claims naming it, so this one must not outlive it.
                    if !self.txs.contains_key(&previous) {
                        self.locks
                            .remove_if(&outpoint, |_, owner| *owner == previous);
                    }
                }
            }
        }
    }

    /// Reserves room for `entry`, evicting cheaper transactions if a limit is reached.
    fn make_room(&self, entry: &PooledTx) -> Result<(), MempoolError> {
        let size = entry.size as u64;
        for _ in 0..ROOM_ATTEMPTS {
            let Full { count, bytes } =
                match self
                    .occupancy
                    .try_reserve(size, self.max_count, self.max_bytes)
                {
                    Ok(()) => return Ok(()),
                    Err(full) => full,
                };
            let need_count = (count + 1).saturating_sub(self.max_count);
            let need_bytes = (bytes + size).saturating_sub(self.max_bytes);
            let victims = self
                .fee_index
                .cheapest_covering(entry.rate, need_count, need_bytes, |_| false)
                .ok_or_else(|| self.full(entry))?;
            for (rate, victim) in victims {
                if self.remove(victim).is_some() {
                    bump(&self.counters.evicted);
                    debug!(evicted = %victim, %rate, by = %entry.txid, "transaction evicted");
                }
            }
        }
        Err(self.full(entry))
    }

    /// Every claim of `entry` is still unspent in the view.
    fn recheck_view(&self, entry: &PooledTx) -> Result<(), TypesError> {
        let inputs = entry.tx.inputs.len();
        for (index, outpoint) in entry.claims.iter().enumerate() {
            if self.view.get_utxo(outpoint)?.is_some() {
                continue;
            }
            return Err(if index < inputs {
                TypesError::MissingInput {
                    index,
                    outpoint: *outpoint,
                }
            } else {
                TypesError::BadRegistration {
                    reason: format!("collateral {outpoint} is not an unspent output"),
                }
            });
        }
        Ok(())
    }

    /// Takes `txid` out of the pool and releases its claims and room.
    fn remove(&self, txid: TxId) -> Option<Arc<PooledTx>> {
        let (_, entry) = self.txs.remove(&txid)?;
        self.fee_index.remove(entry.rate, txid);
        for outpoint in &entry.claims {
            self.locks.remove_if(outpoint, |_, owner| *owner == txid);
        }
        self.occupancy.release(entry.size as u64);
        Some(entry)
    }

    /// The signature check of a batch: one [`timecoin_crypto::verify_batch_parallel`] over every input of
    /// every candidate; returns the positions (in `candidates`) of those with a bad signature.
    fn failed_signatures(&self, candidates: &[Result<Candidate, MempoolError>]) -> BTreeSet<usize> {
        let messages: Vec<Vec<[u8; INPUT_MESSAGE_LEN]>> = candidates
            .iter()
            .map(|c| match c {
                Ok(c) => c
                    .spent
                    .iter()
                    .enumerate()
                    .map(|(i, out)| Transaction::input_message(&c.entry.txid, i as u32, out.amount))
                    .collect(),
                Err(_) => Vec::new(),
            })
            .collect();
        let mut items = Vec::new();
        let mut owners = Vec::new();
        for (position, (candidate, messages)) in candidates.iter().zip(&messages).enumerate() {
            let Ok(candidate) = candidate else { continue };
            for (input, message) in candidate.entry.tx.inputs.iter().zip(messages) {
                items.push(BatchItem {
                    key: &input.public_key,
                    domain: SigDomain::TxInput,
                    chain: self.params.chain_id,
                    message,
                    signature: &input.signature,
                });
                owners.push(position);
            }
        }
        match timecoin_crypto::verify_batch_parallel(&items, self.config.batch_min_chunk) {
            Ok(()) => BTreeSet::new(),
            Err(CryptoError::BatchInvalid { indices }) => indices
                .iter()
                .filter_map(|i| owners.get(*i).copied())
                .collect(),
            Err(_) => owners.into_iter().collect(),
        }
    }
}

impl<V: UtxoView + Send + Sync> Mempool for TxPool<V> {
    fn insert(&self, tx: Transaction) -> Result<TxId, MempoolError> {
        let candidate = self.screen(tx)?;
        let entry = &candidate.entry;
        if let Err(source) = verify_signatures(&entry.tx, self.params.chain_id, &candidate.spent) {
            return Err(self.reject(candidate.wire_id, entry.txid, source));
        }
        self.admit(candidate)
    }

    /// Screens the transactions in parallel on the rayon pool, verifies all their signatures in one
    /// parallel batch, then admits them in order (so a later one may replace an earlier one exactly as
    /// if inserted one by one).
    fn insert_batch(&self, txs: Vec<Transaction>) -> Vec<Result<TxId, MempoolError>> {
        let candidates: Vec<Result<Candidate, MempoolError>> =
            txs.into_par_iter().map(|tx| self.screen(tx)).collect();
        let failed = self.failed_signatures(&candidates);
        candidates
            .into_iter()
            .enumerate()
            .map(|(position, candidate)| {
                let candidate = candidate?;
                if failed.contains(&position) {
                    let entry = &candidate.entry;
                    // The batch says which transaction; the single check says which input and why.
                    let source =
                        verify_signatures(&entry.tx, self.params.chain_id, &candidate.spent)
                            .err()
                            .unwrap_or(TypesError::BadSignature {
                                index: 0,
                                source: CryptoError::BadSignature,
                            });
                    return Err(self.reject(candidate.wire_id, entry.txid, source));
                }
                self.admit(candidate)
            })
            .collect()
    }

    fn contains(&self, txid: &TxId) -> bool {
        self.txs.contains_key(txid)
    }

    fn spender(&self, outpoint: &OutPoint) -> Option<TxId> {
        self.lock_owner(outpoint)
    }

    fn get(&self, txid: &TxId) -> Option<Arc<Transaction>> {
        self.txs.get(txid).map(|e| Arc::clone(&e.tx))
    }

    fn template(&self, max_bytes: usize) -> Vec<Arc<Transaction>> {
        bump(&self.counters.templates);
        let mut entries = self.entries();
        entries.sort_unstable_by(|a, b| b.rate.cmp(&a.rate).then_with(|| a.txid.cmp(&b.txid)));
        let mut used: HashSet<OutPoint> = HashSet::new();
        let mut total = 0usize;
        let mut chosen = Vec::new();
        for entry in entries {
            let Some(next) = total.checked_add(entry.size) else {
                continue;
            };
            if next > max_bytes || entry.claims.iter().any(|op| used.contains(op)) {
                continue;
            }
            // Outpoints never change once created, so presence is all a re-check needs.
            if !entry
                .claims
                .iter()
                .all(|op| matches!(self.view.get_utxo(op), Ok(Some(_))))
            {
                continue;
            }
            used.extend(entry.claims.iter().copied());
            total = next;
            chosen.push(Arc::clone(&entry.tx));
        }
        chosen
    }

    fn on_finalized(&self, block: &Block) {
        let (mut included, mut conflicting) = (0u64, 0u64);
        for tx in &block.transactions {
            if self.remove(tx.txid()).is_some() {
                included += 1;
                continue;
            }
            for input in &tx.inputs {
                let owner = self.lock_owner(&input.prevout);
                if let Some(owner) = owner
                    && self.remove(owner).is_some()
                {
                    conflicting += 1;
                }
            }
        }
        self.counters
            .finalized_included
            .fetch_add(included, std::sync::atomic::Ordering::Relaxed);
        self.counters
            .finalized_conflicting
            .fetch_add(conflicting, std::sync::atomic::Ordering::Relaxed);
        debug!(
            height = block.header.height,
            included, conflicting, "pool pruned after a finalized block"
        );
    }

    fn len(&self) -> usize {
        self.occupancy.load().0 as usize
    }

    fn bytes(&self) -> usize {
        self.occupancy.load().1 as usize
    }

    fn stats(&self) -> MempoolStats {
        let (transactions, bytes) = self.occupancy.load();
        self.counters.snapshot(transactions, bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Barrier;

    use timecoin_crypto::{Address, Network, SecretKey};
    use timecoin_types::{Amount, TxBuilder};

    use super::*;

    const THREADS: usize = 4;

    /// Rival admissions released together after screening, so they plan before any of them claims:
    /// only the atomic claim can keep two of them out.
    #[test]
    fn rival_admissions_released_together_admit_exactly_one() {
        const ROUNDS: usize = 300;
        let params = ChainParams::for_network(Network::Local);
        let key = SecretKey::from_seed(&[9; 32]);
        let address = Address::from_public_key(&key.public_key());
        let coins: Vec<OutPoint> = (0..ROUNDS)
            .map(|i| OutPoint {
                txid: TxId(hash(
                    HashDomain::Custom("claim race"),
                    &(i as u64).to_le_bytes(),
                )),
                vout: 0,
            })
            .collect();
        let amount = Amount::from_sat(1_000_000);
        let view: HashMap<OutPoint, TxOut> = coins
            .iter()
            .map(|c| (*c, TxOut { amount, address }))
            .collect();
        let pool = TxPool::new(Config::default(), params.clone(), view);
        let barrier = Barrier::new(THREADS);
        let mut wins = vec![0usize; ROUNDS];
        for (round, coin) in coins.iter().enumerate() {
            // Equal fees, different outputs: distinct rivals that cannot replace one another.
            let candidates: Vec<Candidate> = (0..THREADS)
                .map(|t| {
                    let tx = TxBuilder::new(params.chain_id)
                        .input(*coin, amount, &key)
                        .output(address, Amount::from_sat(500_000 + t as u64))
                        .output(address, Amount::from_sat(499_000 - t as u64))
                        .sign();
                    pool.screen(tx).map_err(|e| e.to_string()).unwrap()
                })
                .collect();
            wins[round] = std::thread::scope(|s| {
                let handles: Vec<_> = candidates
                    .into_iter()
                    .map(|c| {
                        let (pool, barrier) = (&pool, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            pool.admit(c).is_ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|won| *won)
                    .count()
            });
        }
        assert!(wins.iter().all(|w| *w == 1), "{wins:?}");
        assert_eq!(pool.len(), ROUNDS);
        assert_eq!(pool.lock_count(), ROUNDS);
    }
}
