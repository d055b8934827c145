//! The vote keeper of one height: weighted tallies per (view, phase, value), each validator counted once
//! per (view, phase), and equivocation detection.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use timecoin_crypto::PublicKey;
use timecoin_types::{BlockHash, CommitCertificate, Height, LockProof, View, Vote, VotePhase};

use crate::{Evidence, ValidatorSet};

/// What adding a vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddOutcome {
    /// Counted.
    Counted,
    /// The same vote again (or the voter is not a member): nothing changed.
    Ignored,
    /// A second, different vote for a slot the voter already voted in: not counted, reported once.
    Equivocation(Evidence),
    /// A further conflicting vote for a slot already reported.
    Repeated,
}

/// The votes of one phase of one view.
///
/// Holds at most one vote per validator (the first; a conflicting second becomes evidence), so at most
/// `n` votes for a set of `n` validators.
#[derive(Debug, Default)]
struct Tally {
    votes: BTreeMap<PublicKey, Vote>,
    weight_by_value: BTreeMap<Option<BlockHash>, u64>,
    weight_any: u64,
    /// The value (a block or nil) that holds more than 2/3 of the weight, once one does. At most one can:
    /// each validator's weight counts once.
    quorum: Option<Option<BlockHash>>,
    equivocators: BTreeSet<PublicKey>,
}

impl Tally {
    fn add(&mut self, vote: Vote, weight: u64, validators: &ValidatorSet) -> AddOutcome {
        if let Some(first) = self.votes.get(&vote.voter) {
            if first.block_hash == vote.block_hash {
                return AddOutcome::Ignored;
            }
            if !self.equivocators.insert(vote.voter) {
                return AddOutcome::Repeated;
            }
            return AddOutcome::Equivocation(Evidence::DoubleVote {
                first: first.clone(),
                second: vote,
            });
        }
        let value = vote.block_hash;
        self.votes.insert(vote.voter, vote);
        self.weight_any += weight;
        let for_value = self.weight_by_value.entry(value).or_default();
        *for_value += weight;
        if self.quorum.is_none() && validators.is_quorum(*for_value) {
            self.quorum = Some(value);
        }
        AddOutcome::Counted
    }
}

/// The votes of one view.
#[derive(Debug)]
struct ViewVotes {
    /// When the first message of this view arrived (host milliseconds), for the TTL.
    created_ms: u64,
    prepare: Tally,
    commit: Tally,
}

/// Tallies of one height.
///
/// Bounds: the driver keeps only views within `[view − max_past_views, view + max_future_views]` and
/// at most [`MAX_PINNED_VIEWS`](crate::MAX_PINNED_VIEWS) pinned ones below, each holding at most `2·n`
/// votes, so at most `2·n·(max_past_views + max_future_views + 1 + MAX_PINNED_VIEWS)` votes; and one
/// highest-view entry per validator for the skip rule.
#[derive(Debug)]
pub(crate) struct VoteKeeper {
    height: Height,
    validators: Arc<ValidatorSet>,
    views: BTreeMap<View, ViewVotes>,
    /// The highest view each validator sent anything for (L55 counts these, so a message far ahead still
    /// counts without being stored).
    highest_view: BTreeMap<PublicKey, View>,
    /// Set when some validator's highest view rose; the skip target is recomputed only then.
    skip_dirty: bool,
}

impl VoteKeeper {
    pub(crate) fn new(height: Height, validators: Arc<ValidatorSet>) -> Self {
        VoteKeeper {
            height,
            validators,
            views: BTreeMap::new(),
            highest_view: BTreeMap::new(),
            skip_dirty: false,
        }
    }

    /// Records that `key` (a member) sent a message for `view` while this node is in `current`.
    pub(crate) fn note_view(&mut self, key: PublicKey, view: View, current: View) {
        let entry = self.highest_view.entry(key).or_insert(view);
        if view >= *entry {
            *entry = view;
            // Only a message ahead of this node can make the skip rule fire.
            if view > current {
                self.skip_dirty = true;
            }
        }
    }

    /// Adds a vote of this height from a member.
    pub(crate) fn add(&mut self, vote: Vote, now_ms: u64) -> AddOutcome {
        let Some(weight) = self.validators.weight_of(&vote.voter) else {
            return AddOutcome::Ignored;
        };
        if vote.height != self.height {
            return AddOutcome::Ignored;
        }
        let view = self.views.entry(vote.view).or_insert_with(|| ViewVotes {
            created_ms: now_ms,
            prepare: Tally::default(),
            commit: Tally::default(),
        });
        let tally = match vote.phase {
            VotePhase::Prepare => &mut view.prepare,
            VotePhase::Commit => &mut view.commit,
        };
        tally.add(vote, weight, &self.validators)
    }

    fn tally(&self, view: View, phase: VotePhase) -> Option<&Tally> {
        self.views.get(&view).map(|v| match phase {
            VotePhase::Prepare => &v.prepare,
            VotePhase::Commit => &v.commit,
        })
    }

    /// The value (block or nil) with more than 2/3 of the weight in `(view, phase)`, if any.
    pub(crate) fn quorum(&self, view: View, phase: VotePhase) -> Option<Option<BlockHash>> {
        self.tally(view, phase).and_then(|t| t.quorum)
    }

    /// More than 2/3 of the weight voted in `(view, phase)`, for anything.
    pub(crate) fn quorum_any(&self, view: View, phase: VotePhase) -> bool {
        self.tally(view, phase)
            .is_some_and(|t| self.validators.is_quorum(t.weight_any))
    }

    /// Views whose Commits hold a quorum for a block (not nil), in view order.
    pub(crate) fn commit_quorums(&self) -> impl Iterator<Item = (View, BlockHash)> + '_ {
        self.views
            .iter()
            .filter_map(|(view, v)| v.commit.quorum.flatten().map(|h| (*view, h)))
    }

    /// L55: the highest view above `current` that validators with more than 1/3 of the weight have all
    /// reached (each sent a message for it or a later view). Honest validators only send messages for
    /// their own view, so at least one honest validator is there.
    pub(crate) fn skip_target(&mut self, current: View) -> Option<View> {
        if !self.skip_dirty {
            return None;
        }
        self.skip_dirty = false;
        let mut ahead: Vec<(View, u64)> = self
            .highest_view
            .iter()
            .filter(|(_, v)| **v > current)
            .filter_map(|(k, v)| self.validators.weight_of(k).map(|w| (*v, w)))
            .collect();
        ahead.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let mut weight = 0u64;
        for (view, w) in ahead {
            weight += w;
            if self.validators.is_one_third(weight) {
                return Some(view);
            }
        }
        None
    }

    /// The Prepares for `block_hash` in `view` as a proof of lock (voters sorted by key), if they hold
    /// more than 2/3 of the weight.
    pub(crate) fn lock_proof(&self, view: View, block_hash: BlockHash) -> Option<LockProof> {
        let tally = self.tally(view, VotePhase::Prepare)?;
        let weight = tally
            .weight_by_value
            .get(&Some(block_hash))
            .copied()
            .unwrap_or(0);
        if !self.validators.is_quorum(weight) {
            return None;
        }
        let signatures = tally
            .votes
            .values()
            .filter(|v| v.block_hash == Some(block_hash))
            .map(|v| (v.voter, v.signature))
            .collect();
        Some(LockProof { signatures })
    }

    /// The Commit votes for `block_hash` in `view`, as a certificate (voters sorted by key).
    pub(crate) fn certificate(&self, view: View, block_hash: BlockHash) -> CommitCertificate {
        let signatures = self
            .tally(view, VotePhase::Commit)
            .map(|t| {
                t.votes
                    .values()
                    .filter(|v| v.block_hash == Some(block_hash))
                    .map(|v| (v.voter, v.signature))
                    .collect()
            })
            .unwrap_or_default();
        CommitCertificate {
            height: self.height,
            view,
            block_hash,
            signatures,
        }
    }

    /// Drops views outside `[low, high]`, and views below `current` whose first message is older than
    /// `expired_before_ms`, except the `pinned` ones.
    pub(crate) fn retain_views(
        &mut self,
        low: View,
        high: View,
        current: View,
        expired_before_ms: u64,
        pinned: &[View],
    ) {
        self.views.retain(|view, v| {
            pinned.contains(view)
                || (*view >= low
                    && *view <= high
                    && (*view >= current || v.created_ms >= expired_before_ms))
        });
    }

    /// Votes held.
    pub(crate) fn votes_held(&self) -> usize {
        self.views
            .values()
            .map(|v| v.prepare.votes.len() + v.commit.votes.len())
            .sum()
    }
}
