//! The rules of the height: which one fires next, and what its actions do (sign, persist, broadcast,
//! schedule).

use timecoin_types::{BlockHash, LockProof, Proposal, View, Vote, VotePhase, WellFormedBlock};
use tracing::{debug, info, warn};

use super::{Context, HeightDriver, KnownProposal, Validity};
use crate::core::sign_log::Slot;
use crate::round::{self, RoundAction, RoundEvent, Step, TimeoutKind, Transition, ValueAt};
use crate::{Message, Output, Timeout, WalEntry};

/// Upper bound on rule firings per input; each firing moves the state forward, and far fewer than this
/// are possible per input, so reaching it means a bug, which is logged rather than looped on.
const MAX_TRANSITIONS_PER_INPUT: usize = 256;

impl HeightDriver {
    /// Fires every rule whose condition holds, until none does.
    pub(super) fn progress(&mut self, cx: &mut Context<'_>, out: &mut Vec<Output>) {
        for _ in 0..MAX_TRANSITIONS_PER_INPUT {
            let Some((event, transition)) = self.next_event(cx) else {
                return;
            };
            self.apply(event, transition, cx, out);
        }
        warn!("transition limit reached in one input; state machine did not settle");
    }

    /// The first rule, in the paper's priority, whose condition holds and whose guard passes, with the
    /// transition it makes (computed once, here).
    fn next_event(&mut self, cx: &Context<'_>) -> Option<(RoundEvent, Transition)> {
        let (me, lock_rule) = (cx.me, cx.lock_rule);
        if self.round.step == Step::Finalized || !self.round.started {
            return None;
        }
        let (height, view) = (self.round.height, self.round.view);
        let skip = self.votes.skip_target(view);
        let state = &*self;
        let attempt = |event: RoundEvent| {
            round::apply_with(&state.round, event, lock_rule).map(|t| (event, t))
        };

        // L49, in any view of the height.
        for (r, block_hash) in state.votes.commit_quorums() {
            let event = RoundEvent::ProposalAndCommitQuorum {
                view: r,
                block_hash,
            };
            if state.validity(&block_hash) == Validity::Valid
                && state.block(&block_hash).is_some()
                && let Some(found) = attempt(event)
            {
                return Some(found);
            }
        }
        // L55.
        if let Some(target) = skip {
            let is_leader = *state.validators.leader(height, target) == me;
            let event = RoundEvent::SkipToView {
                view: target,
                is_leader,
            };
            if let Some(found) = attempt(event) {
                return Some(found);
            }
        }
        let prepare_quorum = state.votes.quorum(view, VotePhase::Prepare);
        if let Some(known) = state.proposals.get(&view) {
            let (block_hash, proposal) = (known.block_hash, &known.proposal);
            let verdict = state.validity(&block_hash);
            let valid = verdict == Validity::Valid;
            if verdict != Validity::Pending {
                let event = match proposal.valid_view {
                    // L22.
                    None => Some(RoundEvent::Proposal { block_hash, valid }),
                    // L28.
                    Some(vr)
                        if vr < view
                            && (state.votes.quorum(vr, VotePhase::Prepare)
                                == Some(Some(block_hash))
                                || state.proves_lock(proposal)) =>
                    {
                        Some(RoundEvent::ProposalWithPrepareQuorum {
                            block_hash,
                            valid_view: vr,
                            valid,
                        })
                    }
                    Some(_) => None,
                };
                if let Some(found) = event.and_then(attempt) {
                    return Some(found);
                }
            }
            // L36.
            let event = RoundEvent::ProposalAndPrepareQuorum { block_hash };
            if valid
                && prepare_quorum == Some(Some(block_hash))
                && let Some(found) = attempt(event)
            {
                return Some(found);
            }
        }
        // L44.
        if prepare_quorum == Some(None)
            && let Some(found) = attempt(RoundEvent::PrepareNil)
        {
            return Some(found);
        }
        // L34.
        if state.votes.quorum_any(view, VotePhase::Prepare)
            && let Some(found) = attempt(RoundEvent::PrepareAny)
        {
            return Some(found);
        }
        // L47.
        if state.votes.quorum_any(view, VotePhase::Commit)
            && let Some(found) = attempt(RoundEvent::CommitAny)
        {
            return Some(found);
        }
        None
    }

    /// Applies one event to the round state and executes its actions, if its guard passes.
    pub(super) fn fire(&mut self, event: RoundEvent, cx: &mut Context<'_>, out: &mut Vec<Output>) {
        if let Some(transition) = round::apply_with(&self.round, event, cx.lock_rule) {
            self.apply(event, transition, cx, out);
        }
    }

    /// Makes `transition` (of `event`) the round state and executes its actions.
    fn apply(
        &mut self,
        event: RoundEvent,
        transition: Transition,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        debug!(?event, view = transition.state.view, step = ?transition.state.step, "transition");
        let entered_view = transition.state.view != self.round.view || !self.round.started;
        let repinned = transition.state.locked != self.round.locked
            || transition.state.valid != self.round.valid;
        self.round = transition.state;
        if entered_view {
            self.after_view_change(cx, out);
        } else if repinned {
            // The old lock's or valid value's view is no longer pinned.
            self.prune_now(cx);
        }
        for action in transition.actions {
            self.execute(action, cx, out);
        }
    }

    /// StartRound for `view` (L11), computing whether this node leads it.
    pub(super) fn enter_view(
        &mut self,
        view: View,
        skip: bool,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let is_leader = *self.validators.leader(self.round.height, view) == cx.me;
        let event = if skip {
            RoundEvent::SkipToView { view, is_leader }
        } else {
            RoundEvent::StartView { view, is_leader }
        };
        self.fire(event, cx, out);
    }

    /// Housekeeping when the view changes: the retransmit timer, and dropping views out of the window.
    fn after_view_change(&mut self, cx: &Context<'_>, out: &mut Vec<Output>) {
        self.schedule(TimeoutKind::Retransmit, cx, out);
        self.prune_now(cx);
    }

    pub(super) fn schedule(&self, kind: TimeoutKind, cx: &Context<'_>, out: &mut Vec<Output>) {
        let view = self.round.view;
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                height: self.round.height,
                view,
                kind,
            },
            after: cx.config.timeout(kind, view),
        });
    }

    fn execute(&mut self, action: RoundAction, cx: &mut Context<'_>, out: &mut Vec<Output>) {
        let member = self.validators.contains(&cx.me);
        if !member
            && matches!(
                action,
                RoundAction::RequestProposal
                    | RoundAction::Repropose(_)
                    | RoundAction::Prepare(_)
                    | RoundAction::Commit(_)
            )
        {
            // An observer (a node outside this height's set) follows the rules to learn decisions, but
            // its messages would count for nothing, so it signs none.
            return;
        }
        match action {
            RoundAction::RequestProposal => self.request_proposal(out),
            RoundAction::Repropose(valid) => {
                let found = self.block(&valid.block_hash).cloned().map(|b| {
                    // The Prepares that made the value valid travel with it (L28 for nodes that never
                    // saw them: a double voter may have shown them to this node alone).
                    let proof = self.lock_proof(valid);
                    (self.round.view, b, proof)
                });
                match found {
                    Some((view, block, proof)) => {
                        self.sign_proposal(view, Some(valid.view), block, proof, cx, out)
                    }
                    // The valid block is gone (only after a restart): a fresh block is as safe, if slower
                    // to agree on.
                    None => self.request_proposal(out),
                }
            }
            RoundAction::Prepare(value) => self.sign_vote(VotePhase::Prepare, value, cx, out),
            RoundAction::Commit(value) => self.sign_vote(VotePhase::Commit, value, cx, out),
            RoundAction::ScheduleTimeout(kind) => self.schedule(kind, cx, out),
            RoundAction::EnterView(view) => self.enter_view(view, false, cx, out),
            RoundAction::Decide(value) => self.decide(value, out),
        }
    }

    fn request_proposal(&mut self, out: &mut Vec<Output>) {
        let (height, view) = (self.round.height, self.round.view);
        if let Some(existing) = self.signed.get(view, Slot::Proposal) {
            // Signed before a restart: send exactly that again.
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        if self.requested_proposal == Some(view) {
            return;
        }
        self.requested_proposal = Some(view);
        out.push(Output::RequestProposal { height, view });
    }

    pub(super) fn sign_proposal(
        &mut self,
        view: View,
        valid_view: Option<View>,
        block: WellFormedBlock,
        lock_proof: Option<LockProof>,
        cx: &Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let height = self.round.height;
        if let Some(existing) = self.signed.get(view, Slot::Proposal) {
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        let block_hash = block.hash();
        let mut proposal = Proposal::sign(
            cx.signer,
            cx.config.chain_id,
            height,
            view,
            valid_view,
            block,
        );
        proposal.lock_proof = lock_proof;
        self.signed
            .insert(view, Slot::Proposal, Message::Proposal(proposal.clone()));
        out.push(Output::Persist(WalEntry::Proposed(proposal.clone())));
        out.push(Output::Broadcast(Message::Proposal(proposal.clone())));
        // The application built (or already judged) the block; it is valid for us.
        self.validity.insert(block_hash, Validity::Valid);
        self.votes.note_view(cx.me, view, view);
        self.proposals.entry(view).or_insert(KnownProposal {
            block_hash,
            proposal,
        });
    }

    fn sign_vote(
        &mut self,
        phase: VotePhase,
        block_hash: Option<BlockHash>,
        cx: &Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let (height, view) = (self.round.height, self.round.view);
        if let Some(existing) = self.signed.get(view, Slot::from(phase)) {
            if let Message::Vote(v) = existing
                && v.block_hash != block_hash
            {
                warn!(
                    height,
                    view,
                    ?phase,
                    "refusing to sign a second, different vote for a slot already signed"
                );
            }
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        let vote = Vote::sign(
            cx.signer,
            cx.config.chain_id,
            phase,
            height,
            view,
            block_hash,
        );
        self.signed
            .insert(view, Slot::from(phase), Message::Vote(vote.clone()));
        // A Commit for a block is a lock (L36–L38): record the block and its Prepare quorum with it, so
        // a restart can re-propose the locked block rather than a fresh one.
        let lock = match (phase, block_hash) {
            (VotePhase::Commit, Some(hash)) => {
                self.block(&hash).cloned().zip(self.lock_proof(ValueAt {
                    view,
                    block_hash: hash,
                }))
            }
            _ => None,
        };
        let entry = match lock {
            Some((block, proof)) => WalEntry::Locked {
                commit: vote.clone(),
                block,
                proof,
            },
            None => WalEntry::Voted(vote.clone()),
        };
        out.push(Output::Persist(entry));
        out.push(Output::Broadcast(Message::Vote(vote.clone())));
        self.votes.note_view(cx.me, view, view);
        let _ = self.votes.add(vote, cx.now_ms);
    }

    fn decide(&self, value: ValueAt, out: &mut Vec<Output>) {
        let Some(block) = self.block(&value.block_hash).cloned() else {
            // `next_event` only fires L49 with the block at hand.
            warn!(?value, "decision without its block");
            return;
        };
        let certificate = self.votes.certificate(value.view, value.block_hash);
        info!(height = self.round.height, view = value.view, block = %value.block_hash, "decided");
        out.push(Output::Decided { block, certificate });
    }
}
