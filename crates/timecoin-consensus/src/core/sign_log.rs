//! The double-sign guard: every message this node signed at one height, rebuilt from the WAL on restart.

use std::collections::BTreeMap;

use timecoin_types::{Height, LockProof, View, VotePhase, WellFormedBlock};

use crate::round::ValueAt;
use crate::{Message, WalEntry};

/// One signing slot of a height: a validator signs at most one message per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Slot {
    Proposal,
    Prepare,
    Commit,
}

impl From<VotePhase> for Slot {
    fn from(phase: VotePhase) -> Self {
        match phase {
            VotePhase::Prepare => Slot::Prepare,
            VotePhase::Commit => Slot::Commit,
        }
    }
}

/// Everything this node signed at one height. At most three messages per view of the height.
#[derive(Debug, Default)]
pub(super) struct SignLog {
    height: Height,
    signed: BTreeMap<(View, Slot), Message>,
    /// The latest lock recorded at this height (`WalEntry::Locked`): its view, block and proof.
    lock: Option<(View, WellFormedBlock, LockProof)>,
}

impl SignLog {
    pub(super) fn new(height: Height) -> Self {
        SignLog {
            height,
            signed: BTreeMap::new(),
            lock: None,
        }
    }

    pub(super) fn height(&self) -> Height {
        self.height
    }

    /// Replays one WAL entry (already checked to be this node's): a later height starts a fresh log, an
    /// earlier one is no longer needed.
    pub(super) fn replay(&mut self, entry: WalEntry) {
        let height = entry.height();
        if height > self.height || self.signed.is_empty() {
            *self = SignLog::new(height);
        }
        if height < self.height {
            return;
        }
        let (key, message) = match entry {
            WalEntry::Proposed(p) => ((p.view, Slot::Proposal), Message::Proposal(p)),
            WalEntry::Voted(v) => ((v.view, Slot::from(v.phase)), Message::Vote(v)),
            WalEntry::Locked {
                commit,
                block,
                proof,
            } => {
                if self.lock.as_ref().is_none_or(|(v, _, _)| commit.view > *v) {
                    self.lock = Some((commit.view, block, proof));
                }
                ((commit.view, Slot::Commit), Message::Vote(commit))
            }
        };
        // The first entry of a slot is what went out; a later different one cannot exist unless the log
        // was tampered with, and keeping the first is the safe choice.
        self.signed.entry(key).or_insert(message);
    }

    /// What was signed for `slot` of `view`, if anything.
    pub(super) fn get(&self, view: View, slot: Slot) -> Option<&Message> {
        self.signed.get(&(view, slot))
    }

    /// Records a message about to be persisted; the caller checked the slot was free.
    pub(super) fn insert(&mut self, view: View, slot: Slot, message: Message) {
        self.signed.insert((view, slot), message);
    }

    /// Everything signed, by view and slot.
    pub(super) fn all(&self) -> impl Iterator<Item = (View, Slot, &Message)> {
        self.signed
            .iter()
            .map(|((view, slot), m)| (*view, *slot, m))
    }

    /// Everything signed in views from `from` on, by view and slot.
    pub(super) fn since(&self, from: View) -> impl Iterator<Item = (View, Slot, &Message)> {
        self.signed
            .range((from, Slot::Proposal)..)
            .map(|((view, slot), m)| (*view, *slot, m))
    }

    /// The latest view signed in.
    pub(super) fn latest_view(&self) -> Option<View> {
        self.signed.keys().map(|(v, _)| *v).max()
    }

    /// The latest own Commit for a block: L38–L39 set the lock exactly when that Commit is signed.
    pub(super) fn locked(&self) -> Option<ValueAt> {
        self.signed
            .values()
            .filter_map(|m| match m {
                Message::Vote(v) if v.phase == VotePhase::Commit => {
                    v.block_hash.map(|block_hash| ValueAt {
                        view: v.view,
                        block_hash,
                    })
                }
                _ => None,
            })
            .max_by_key(|value| value.view)
    }

    /// The block and proof recorded with the lock `locked`, if the WAL kept them.
    pub(super) fn lock_of(&self, locked: ValueAt) -> Option<(&WellFormedBlock, &LockProof)> {
        self.lock
            .as_ref()
            .filter(|(view, block, _)| *view == locked.view && block.hash() == locked.block_hash)
            .map(|(_, block, proof)| (block, proof))
    }
}
