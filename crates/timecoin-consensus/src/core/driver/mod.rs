//! The driver of one height, after Malachite's `Driver`: it owns what belongs to the height (round state,
//! vote keeper, proposals, validity verdicts, the sign log) and turns the height's inputs into round
//! events; `inputs.rs` holds what each input does, `rules.rs` the search for the next rule to fire and
//! the execution of its actions.

mod inputs;
mod rules;

use std::collections::BTreeMap;
use std::sync::Arc;

use timecoin_crypto::PublicKey;
use timecoin_types::{BlockHash, Height, LockProof, Proposal, View, WellFormedBlock};

use super::evidence::EvidenceLog;
use super::sign_log::{SignLog, Slot};
use crate::round::{LockRule, RoundState, Step, ValueAt};
use crate::votes::VoteKeeper;
use crate::{Config, Evidence, Message, Output, Signer, ValidatorSet};

/// Most views pinned at once (see `HeightDriver::pinned_views`): kept, with their votes and proposal,
/// below the view window and past the vote TTL. Room for this node's lock and valid value, the
/// proof-of-lock view of the current view's proposal, and one more for the nearest view ahead whose
/// proposal names one. So a height keeps at most `max_past_views + max_future_views + 1 +
/// MAX_PINNED_VIEWS` views (25 with the defaults), each with at most one proposal and `2·n` votes.
pub const MAX_PINNED_VIEWS: usize = 4;

/// What spans heights and the driver only borrows: the settings, the key, the clock, the lock rule, and
/// where evidence goes.
pub(super) struct Context<'a> {
    pub(super) config: &'a Config,
    pub(super) signer: &'a dyn Signer,
    pub(super) me: PublicKey,
    pub(super) now_ms: u64,
    pub(super) lock_rule: LockRule,
    pub(super) evidence: &'a mut EvidenceLog,
}

impl Context<'_> {
    fn record_evidence(&mut self, evidence: Evidence, out: &mut Vec<Output>) {
        self.evidence
            .record(evidence, self.now_ms, self.config.max_evidence, out);
    }

    /// The vote TTL's cut-off as of now.
    fn expired_before(&self) -> u64 {
        let ttl = u64::try_from(self.config.vote_ttl.as_millis()).unwrap_or(u64::MAX);
        self.now_ms.saturating_sub(ttl)
    }
}

/// What the application said about a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validity {
    Pending,
    Valid,
    Invalid,
}

/// A proposal with its block's hash, computed once (hashing a header costs more than counting a vote).
#[derive(Debug)]
struct KnownProposal {
    block_hash: BlockHash,
    proposal: Proposal,
}

impl KnownProposal {
    fn new(proposal: Proposal) -> Self {
        KnownProposal {
            block_hash: proposal.block.hash(),
            proposal,
        }
    }
}

/// The driver of the height being decided.
#[derive(Debug)]
pub(super) struct HeightDriver {
    validators: Arc<ValidatorSet>,
    round: RoundState,
    votes: VoteKeeper,
    /// The first proposal of each kept view from its leader (kept views: see [`Config::max_past_views`]).
    proposals: BTreeMap<View, KnownProposal>,
    /// Views whose leader was caught proposing twice (reported once).
    double_proposals: BTreeMap<View, ()>,
    /// Verdicts per block; entries go when no kept proposal carries the block.
    validity: BTreeMap<BlockHash, Validity>,
    /// The view for which the application was last asked for a block.
    requested_proposal: Option<View>,
    /// The locked block and its proof, restored from the WAL after a restart (the proposal that carried
    /// the block is gone then), so the node can still re-propose it.
    restored_lock: Option<(WellFormedBlock, LockProof)>,
    /// Everything this node signed at this height.
    signed: SignLog,
}

impl HeightDriver {
    /// The driver of `height`, resumed from what `signed` (a log of this height) says this node signed.
    pub(super) fn new(
        height: Height,
        validators: Arc<ValidatorSet>,
        signed: SignLog,
        now_ms: u64,
    ) -> Self {
        let mut driver = HeightDriver {
            votes: VoteKeeper::new(height, validators.clone()),
            validators,
            round: RoundState::new(height),
            proposals: BTreeMap::new(),
            double_proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            requested_proposal: None,
            restored_lock: None,
            signed,
        };
        // Resume where the WAL left off: the lock is the latest own Commit for a block.
        driver.round.locked = driver.signed.locked();
        // The locked block and its proof, if the WAL kept them: the lock is then also the valid value
        // (validRound ≥ lockedRound always holds), so as leader this node re-proposes it (L15) with its
        // proof instead of a fresh block.
        if let Some(locked) = driver.round.locked
            && let Some((block, proof)) = driver.signed.lock_of(locked)
        {
            driver.restored_lock = Some((block.clone(), proof.clone()));
            driver.validity.insert(locked.block_hash, Validity::Valid);
            driver.round.valid = Some(locked);
        }
        for (_, _, message) in driver.signed.all() {
            match message {
                Message::Vote(v) => {
                    driver.votes.note_view(v.voter, v.view, 0);
                    let _ = driver.votes.add(v.clone(), now_ms);
                }
                Message::Proposal(p) => {
                    let known = KnownProposal::new(p.clone());
                    driver.validity.insert(known.block_hash, Validity::Valid);
                    driver.proposals.insert(p.view, known);
                }
            }
        }
        driver
    }

    /// Enters the view this node last signed in (or the first), re-sends what it signed there, then
    /// takes the messages that arrived for this height before it started.
    pub(super) fn start(
        &mut self,
        buffered: Vec<Message>,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let resumed_view = self.signed.latest_view();
        self.enter_view(resumed_view.unwrap_or(0), false, cx, out);
        if let Some(view) = resumed_view {
            self.resume_signed_view(view, out);
        }
        for message in buffered {
            self.on_message(message, cx, out);
        }
        self.progress(cx, out);
    }

    /// After a restart in `view`: set the step to what was signed, and re-send it all.
    fn resume_signed_view(&mut self, view: View, out: &mut Vec<Output>) {
        for (v, slot, message) in self.signed.since(view) {
            if v != view {
                continue;
            }
            // The proposal, if any, went out again through `request_proposal` when the view started.
            match slot {
                Slot::Prepare => self.round.step = self.round.step.max(Step::Prepare),
                Slot::Commit => self.round.step = self.round.step.max(Step::Commit),
                Slot::Proposal => continue,
            }
            out.push(Output::Broadcast(message.clone()));
        }
    }

    pub(super) fn height(&self) -> Height {
        self.round.height
    }

    pub(super) fn round(&self) -> &RoundState {
        &self.round
    }

    pub(super) fn validators(&self) -> &Arc<ValidatorSet> {
        &self.validators
    }

    pub(super) fn votes_held(&self) -> usize {
        self.votes.votes_held()
    }

    pub(super) fn proposals_held(&self) -> usize {
        self.proposals.len()
    }

    /// Whether `proposal` carries a proof of lock for its block in its `valid_view` that holds more than
    /// 2/3 of this height's weight. The door checked the proof's signatures and order (against the set
    /// of the message's height, or the newest set for a height the registry did not know yet), so only
    /// the weight is counted again here, with the set of this height.
    fn proves_lock(&self, proposal: &Proposal) -> bool {
        let Some(proof) = &proposal.lock_proof else {
            return false;
        };
        let weight: u64 = proof
            .signatures
            .iter()
            .map(|(voter, _)| self.validators.weight_of(voter).unwrap_or(0))
            .sum();
        self.validators.is_quorum(weight)
    }

    fn block(&self, hash: &BlockHash) -> Option<&WellFormedBlock> {
        self.proposals
            .values()
            .find(|p| p.block_hash == *hash)
            .map(|p| &p.proposal.block)
            .or_else(|| {
                self.restored_lock
                    .as_ref()
                    .map(|(block, _)| block)
                    .filter(|block| block.hash() == *hash)
            })
    }

    /// A proof of lock for `value`: from this height's tally, or the one restored with the lock.
    fn lock_proof(&self, value: ValueAt) -> Option<LockProof> {
        self.votes
            .lock_proof(value.view, value.block_hash)
            .or_else(|| {
                self.restored_lock
                    .as_ref()
                    .filter(|(block, _)| block.hash() == value.block_hash)
                    .map(|(_, proof)| proof.clone())
            })
    }

    /// Views below the current one kept, with their votes and proposal, even below the view window and
    /// past the vote TTL, and whose votes are still accepted: the views of this node's lock and valid
    /// value, then the proof-of-lock views (`valid_view`) named by the proposals of the current view and
    /// of the views ahead in the window, nearest first; at most [`MAX_PINNED_VIEWS`]. Their Prepares are
    /// what L28 needs to accept a re-proposed locked block; dropping them with the window could stall the
    /// height for ever (simulator finding 2).
    ///
    /// Proposals of past views name nothing, since L28 only reads the current view's proposal. And since
    /// only views below the current one are pinned, the proposal kept for a pinned view lies outside the
    /// window and names nothing either: a leader cannot chain `valid_view`s past the bound (issue 11).
    fn pinned_views(&self, max_future_views: View) -> Vec<View> {
        let current = self.round.view;
        let own = [self.round.locked, self.round.valid]
            .into_iter()
            .flatten()
            .map(|v| v.view);
        let named = self
            .proposals
            .range(current..=current.saturating_add(max_future_views))
            .filter_map(|(_, p)| p.proposal.valid_view);
        let mut pinned = Vec::with_capacity(MAX_PINNED_VIEWS);
        for view in own.chain(named) {
            if pinned.len() >= MAX_PINNED_VIEWS {
                break;
            }
            if view < current && !pinned.contains(&view) {
                pinned.push(view);
            }
        }
        pinned
    }

    fn validity(&self, hash: &BlockHash) -> Validity {
        self.validity
            .get(hash)
            .copied()
            .unwrap_or(Validity::Pending)
    }

    /// Whether `view` is within the kept window of the current view.
    fn in_window(&self, view: View, config: &Config) -> bool {
        let current = self.round.view;
        (view <= current.saturating_add(config.max_future_views)
            && view >= current.saturating_sub(config.max_past_views))
            || self.pinned_views(config.max_future_views).contains(&view)
    }

    /// [`HeightDriver::prune_views`] with the vote TTL as of now: on a view change, and whenever the
    /// pinned views may have changed.
    fn prune_now(&mut self, cx: &Context<'_>) {
        self.prune_views(cx.config, cx.expired_before());
    }

    /// Drops the views outside the window, and the past views older than `expired_before_ms`, with their
    /// votes, proposals and verdicts; the pinned views stay.
    pub(super) fn prune_views(&mut self, config: &Config, expired_before_ms: u64) {
        let (past, future) = (config.max_past_views, config.max_future_views);
        let current = self.round.view;
        let low = current.saturating_sub(past);
        let high = current.saturating_add(future);
        let pinned = self.pinned_views(future);
        self.votes
            .retain_views(low, high, current, expired_before_ms, &pinned);
        // The locked and valid blocks, which may still be re-proposed or decided, stay with the proposals
        // of their views (L36 keeps the proposal of the view it locks in), which are pinned.
        self.proposals
            .retain(|view, _| (*view >= low && *view <= high) || pinned.contains(view));
        let live: Vec<BlockHash> = self.proposals.values().map(|p| p.block_hash).collect();
        self.validity.retain(|hash, _| live.contains(hash));
        self.double_proposals.retain(|view, _| *view >= low);
    }
}
