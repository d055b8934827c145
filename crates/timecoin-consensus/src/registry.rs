//! The masternode registry: which validator set governs each height, derived from finalized blocks only,
//! so every node switches sets at the same height.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use timecoin_crypto::{Address, Hash, HashDomain, hash};
use timecoin_types::{
    Block, Genesis, Height, MAX_VALIDATORS, TxKind, WellFormedBlock, Wire, codec,
};
use tracing::info;

use crate::{ConsensusError, Validator, ValidatorSet};

/// Sets kept for heights below the next one to decide (for checking late messages and evidence).
pub const REGISTRY_HISTORY: usize = 8;

/// One immutable state of the registry.
#[derive(Clone, Debug)]
struct Schedule {
    /// Changes of block `f` take effect at `f + delay` (a delay of 0 counts as 1: a block cannot change
    /// the set that decides it).
    delay: u64,
    /// The highest finalized height applied.
    finalized: Height,
    /// The oldest set kept, in force from `oldest.0` on (until the first entry of `later`).
    oldest: (Height, Arc<ValidatorSet>),
    /// Later sets, keyed by the height they take effect at. Bounded: at most `delay` pending entries (one
    /// per finalized block) plus [`REGISTRY_HISTORY`] past ones.
    later: BTreeMap<Height, Arc<ValidatorSet>>,
}

impl Schedule {
    fn set_for(&self, height: Height) -> Option<Arc<ValidatorSet>> {
        if height > self.finalized.saturating_add(self.delay) || height < self.oldest.0 {
            return None;
        }
        Some(
            self.later
                .range(..=height)
                .next_back()
                .map_or(&self.oldest.1, |(_, s)| s)
                .clone(),
        )
    }

    fn latest(&self) -> &Arc<ValidatorSet> {
        self.later.values().next_back().unwrap_or(&self.oldest.1)
    }

    /// The set deciding the next height.
    fn next_set(&self) -> &Arc<ValidatorSet> {
        let next = self.finalized.saturating_add(1);
        self.later
            .range(..=next)
            .next_back()
            .map_or(&self.oldest.1, |(_, s)| s)
    }

    /// What a header at `finalized` commits to: the set deciding the next height and every later change
    /// with the height it takes effect at. Past sets and the height the current one took effect at are
    /// left out, so a node restored from this (with no history) commits to the same hash as one that
    /// replayed the chain.
    fn schedule_hash(&self) -> Hash {
        let next = self.finalized.saturating_add(1);
        let pending: Vec<(Height, &[Validator])> = self
            .later
            .range(next.saturating_add(1)..)
            .map(|(h, set)| (*h, set.members()))
            .collect();
        hash(
            HashDomain::ValidatorSchedule,
            &codec::encode(&(self.next_set().members(), pending)),
        )
    }

    fn snapshot(&self) -> RegistrySnapshot {
        let sets = std::iter::once((self.oldest.0, &self.oldest.1))
            .chain(self.later.iter().map(|(h, set)| (*h, set)))
            .map(|(h, set)| (h, set.members().to_vec()))
            .collect();
        RegistrySnapshot {
            finalized: self.finalized,
            sets,
        }
    }

    /// Forgets sets that took effect long enough ago, keeping at most [`REGISTRY_HISTORY`] at or below
    /// the next height. Depends only on `finalized`, so trimming once at a height gives what trimming at
    /// every height up to it gave.
    fn trim(&mut self) {
        let next = self.finalized.saturating_add(1);
        while self.later.range(..=next).count() >= REGISTRY_HISTORY {
            let Some((from, set)) = self.later.pop_first() else {
                break;
            };
            self.oldest = (from, set);
        }
    }
}

/// The registry's sets, as a host persists them beside the block whose finalization last changed them
/// ([`RegistryUpdate::snapshot`]), so a restart restores the registry with
/// [`ValidatorRegistry::restore`] instead of replaying the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    /// The height of the block whose finalization this state follows.
    pub finalized: Height,
    /// Every set kept, each with the height it takes effect at, ascending.
    pub sets: Vec<(Height, Vec<Validator>)>,
}

impl Wire for RegistrySnapshot {
    const NAME: &'static str = "registry snapshot";
    // Bounded by what a store keeps of one host record.
    const MAX_ENCODED_LEN: usize = 32 * 1024 * 1024;
}

/// The registry's next state after one finalized block, computed but not yet published
/// ([`ValidatorRegistry::prepare`]), so a host can persist it with the block before acting on it.
#[derive(Debug)]
pub struct RegistryUpdate {
    next: Schedule,
    changed: bool,
}

impl RegistryUpdate {
    /// The state to persist with the block, or `None` if the block changed no set (the last snapshot
    /// written, restored at a later height, still gives the exact state then).
    pub fn snapshot(&self) -> Option<RegistrySnapshot> {
        self.changed.then(|| self.next.snapshot())
    }

    /// The hash the header of the block this update follows must carry in `validators_hash`
    /// ([`ValidatorRegistry::schedule_hash`]).
    pub fn schedule_hash(&self) -> Hash {
        self.next.schedule_hash()
    }
}

/// Which validators decide which height, shared by the whole node.
///
/// Readers ([`ValidatorRegistry::current`], [`ValidatorRegistry::set_for`]) never block: the state is an
/// immutable snapshot behind an [`ArcSwap`], replaced atomically by [`ValidatorRegistry::on_finalized`]
/// (one writer: the task applying finalized blocks).
///
/// Rules, applied in block order and transaction order, identical on every node:
/// - `RegisterMasternode` adds the operator key with its tier (weight [`timecoin_types::Tier::weight`]),
///   owned by the address of the transaction's first input; a key already present is ignored.
/// - `DeregisterMasternode` removes the key if an input of the transaction is signed by its owner.
/// - A transaction spending a validator's collateral output removes that validator.
/// - Changes of the block at height `f` take effect at `f + max(validator_set_delay, 1)`.
/// - A change that would empty the set, or exceed [`MAX_VALIDATORS`], is not applied.
///
/// Whether a registration's collateral exists and is large enough is a block-validity rule checked by the
/// application before the block was finalized; the registry trusts finalized blocks.
#[derive(Debug)]
pub struct ValidatorRegistry {
    schedule: ArcSwap<Schedule>,
}

impl ValidatorRegistry {
    /// A registry whose `initial` set governs heights from `finalized + 1`, with no pending changes.
    pub fn new(initial: ValidatorSet, finalized: Height, validator_set_delay: u64) -> Self {
        ValidatorRegistry {
            schedule: ArcSwap::from_pointee(Schedule {
                delay: validator_set_delay.max(1),
                finalized,
                oldest: (0, Arc::new(initial)),
                later: BTreeMap::new(),
            }),
        }
    }

    /// The registry right after genesis (height 0 finalized).
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, ConsensusError> {
        Ok(Self::new(
            ValidatorSet::from_genesis(genesis)?,
            0,
            genesis.params.validator_set_delay,
        ))
    }

    /// The highest finalized height applied.
    pub fn finalized_height(&self) -> Height {
        self.schedule.load().finalized
    }

    /// The hash of the schedule after the finalized height: the set deciding the next height and every
    /// change already scheduled, with the heights they take effect at. Each block header carries the hash
    /// of the schedule after it (`validators_hash`), which validators check like the UTXO commitment, so
    /// a node that walks certified headers knows each height's set without the blocks' bodies.
    pub fn schedule_hash(&self) -> Hash {
        self.schedule.load().schedule_hash()
    }

    /// The whole state, as [`RegistryUpdate::snapshot`] gives it after a change (for a host that must
    /// persist a registry it did not build block by block, such as a state sync).
    pub fn snapshot(&self) -> RegistrySnapshot {
        self.schedule.load().snapshot()
    }

    /// The state after a finalized block at `height` that changes no membership: what
    /// [`prepare`](Self::prepare) gives for a block without registrations, deregistrations or collateral
    /// spends, for a host that checks headers without their bodies.
    pub fn prepare_unchanged(&self, height: Height) -> Result<RegistryUpdate, ConsensusError> {
        let old = self.schedule.load_full();
        let expected = old.finalized.saturating_add(1);
        if height != expected {
            return Err(ConsensusError::RegistryOutOfOrder {
                expected,
                got: height,
            });
        }
        let mut schedule = (*old).clone();
        schedule.finalized = height;
        schedule.trim();
        Ok(RegistryUpdate {
            next: schedule,
            changed: false,
        })
    }

    /// The set deciding the next height (`finalized_height + 1`).
    pub fn current(&self) -> Arc<ValidatorSet> {
        let schedule = self.schedule.load();
        let next = schedule.finalized.saturating_add(1);
        schedule
            .set_for(next)
            .unwrap_or_else(|| schedule.latest().clone())
    }

    /// The set of `height`, known for every height up to `finalized_height + delay` (later heights depend
    /// on blocks not yet final). Heights far below the tip may have been forgotten
    /// ([`REGISTRY_HISTORY`] sets are kept); `None` then too.
    pub fn set_for(&self, height: Height) -> Option<Arc<ValidatorSet>> {
        self.schedule.load().set_for(height)
    }

    /// A registry restored from `snapshot` at the finalized height `tip`: the state that applying every
    /// block up to `tip` gives, provided no block after `snapshot.finalized` changed a set (a host writes
    /// a snapshot with every block that does). `delay` is the chain's `validator_set_delay`.
    pub fn restore(
        snapshot: RegistrySnapshot,
        tip: Height,
        validator_set_delay: u64,
    ) -> Result<Self, ConsensusError> {
        if snapshot.finalized > tip {
            return Err(ConsensusError::InvalidRegistrySnapshot(
                "it is newer than the finalized tip",
            ));
        }
        let mut sets = snapshot.sets.into_iter();
        let (from, members) = sets
            .next()
            .ok_or(ConsensusError::InvalidRegistrySnapshot("it holds no set"))?;
        let mut later = BTreeMap::new();
        for (h, members) in sets {
            if h <= from || later.keys().next_back().is_some_and(|last| h <= *last) {
                return Err(ConsensusError::InvalidRegistrySnapshot(
                    "its sets are not in ascending order",
                ));
            }
            later.insert(h, Arc::new(ValidatorSet::new(members)?));
        }
        let mut schedule = Schedule {
            delay: validator_set_delay.max(1),
            finalized: tip,
            oldest: (from, Arc::new(ValidatorSet::new(members)?)),
            later,
        };
        schedule.trim();
        Ok(ValidatorRegistry {
            schedule: ArcSwap::from_pointee(schedule),
        })
    }

    /// Applies a finalized block (heights strictly in order: `finalized_height + 1`), scheduling its
    /// membership changes at `height + delay`, and publishes the new state atomically. Only a well-formed
    /// block is taken, so the changes are those of the body its certificate signed.
    pub fn on_finalized(&self, block: &WellFormedBlock) -> Result<(), ConsensusError> {
        let update = self.prepare(block)?;
        self.commit(update);
        Ok(())
    }

    /// The state after `block` (see [`on_finalized`](Self::on_finalized)), not yet published: a host
    /// persists [`RegistryUpdate::snapshot`] with the block, then [`commit`](Self::commit)s it.
    pub fn prepare(&self, block: &WellFormedBlock) -> Result<RegistryUpdate, ConsensusError> {
        let old = self.schedule.load_full();
        let height = block.header.height;
        let expected = old.finalized.saturating_add(1);
        if height != expected {
            return Err(ConsensusError::RegistryOutOfOrder {
                expected,
                got: height,
            });
        }
        let mut schedule = (*old).clone();
        schedule.finalized = height;
        let changed = match apply_changes(schedule.latest(), block) {
            Some(changed) => {
                let effective = height.saturating_add(schedule.delay);
                info!(
                    height,
                    effective,
                    validators = changed.len(),
                    "validator set change scheduled"
                );
                schedule.later.insert(effective, Arc::new(changed));
                true
            }
            None => false,
        };
        schedule.trim();
        Ok(RegistryUpdate {
            next: schedule,
            changed,
        })
    }

    /// Publishes a state [`prepare`](Self::prepare)d from this registry. An update for another height
    /// than the next one is ignored (it was prepared from a state that has since moved).
    pub fn commit(&self, update: RegistryUpdate) {
        let current = self.schedule.load();
        if update.next.finalized != current.finalized.saturating_add(1) {
            return;
        }
        self.schedule.store(Arc::new(update.next));
    }
}

/// The membership after `block`'s registrations, deregistrations and collateral spends, or `None` if
/// nothing changed (or the result would be empty or too large).
fn apply_changes(base: &ValidatorSet, block: &Block) -> Option<ValidatorSet> {
    let mut members: BTreeMap<_, Validator> =
        base.members().iter().map(|v| (v.key, v.clone())).collect();
    let mut changed = false;
    for tx in &block.transactions {
        // Spending a collateral withdraws its masternode.
        let spent: Vec<_> = tx.inputs.iter().map(|i| i.prevout).collect();
        let before = members.len();
        members.retain(|_, v| v.collateral.is_none_or(|c| !spent.contains(&c)));
        changed |= members.len() != before;
        match &tx.kind {
            TxKind::Transfer | TxKind::Reward { .. } => {}
            TxKind::RegisterMasternode(reg) => {
                let Some(first) = tx.inputs.first() else {
                    continue;
                };
                if members.contains_key(&reg.operator_key) || members.len() >= MAX_VALIDATORS {
                    continue;
                }
                members.insert(
                    reg.operator_key,
                    Validator {
                        key: reg.operator_key,
                        tier: reg.tier,
                        owner: Address::from_public_key(&first.public_key),
                        collateral: reg.collateral,
                    },
                );
                changed = true;
            }
            TxKind::DeregisterMasternode { operator_key } => {
                let Some(owner) = members.get(operator_key).map(|v| v.owner) else {
                    continue;
                };
                if tx
                    .inputs
                    .iter()
                    .any(|i| Address::from_public_key(&i.public_key) == owner)
                {
                    members.remove(operator_key);
                    changed = true;
                }
            }
        }
    }
    if !changed {
        return None;
    }
    ValidatorSet::new(members.into_values().collect()).ok()
}
