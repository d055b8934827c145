//! The rules: which one fires next, and what its actions do (sign, persist, broadcast, schedule).

use super::*;

impl Core {
    // ---- the rules ----

    /// Fires every rule whose condition holds, until none does.
    pub(super) fn progress(&mut self, out: &mut Vec<Output>) {
        for _ in 0..MAX_TRANSITIONS_PER_INPUT {
            let Some((event, transition)) = self.next_event() else {
                return;
            };
            self.apply(event, transition, out);
        }
        warn!("transition limit reached in one input; state machine did not settle");
    }

    /// The first rule, in the paper's priority, whose condition holds and whose guard passes, with the
    /// transition it makes (computed once, here).
    pub(super) fn next_event(&mut self) -> Option<(RoundEvent, Transition)> {
        let me = self.me;
        let lock_rule = self.lock_rule;
        let state = self.current.as_mut()?;
        if state.round.step == Step::Finalized || !state.round.started {
            return None;
        }
        let (height, view) = (state.round.height, state.round.view);
        let skip = state.votes.skip_target(view);
        let state = &*state;
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
    pub(super) fn fire(&mut self, event: RoundEvent, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        if let Some(transition) = round::apply_with(&state.round, event, self.lock_rule) {
            self.apply(event, transition, out);
        }
    }

    /// Makes `transition` (of `event`) the round state and executes its actions.
    pub(super) fn apply(
        &mut self,
        event: RoundEvent,
        transition: Transition,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        debug!(?event, view = transition.state.view, step = ?transition.state.step, "transition");
        let entered_view = transition.state.view != state.round.view || !state.round.started;
        let repinned = transition.state.locked != state.round.locked
            || transition.state.valid != state.round.valid;
        state.round = transition.state;
        if entered_view {
            self.after_view_change(out);
        } else if repinned {
            // The old lock's or valid value's view is no longer pinned.
            self.prune_now();
        }
        for action in transition.actions {
            self.execute(action, out);
        }
    }

    /// StartRound for `view` (L11), computing whether this node leads it.
    pub(super) fn enter_view(&mut self, view: View, skip: bool, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        let is_leader = *state.validators.leader(state.round.height, view) == self.me;
        let event = if skip {
            RoundEvent::SkipToView { view, is_leader }
        } else {
            RoundEvent::StartView { view, is_leader }
        };
        self.fire(event, out);
    }

    /// Housekeeping when the view changes: the retransmit timer, and dropping views out of the window.
    pub(super) fn after_view_change(&mut self, out: &mut Vec<Output>) {
        self.schedule(TimeoutKind::Retransmit, out);
        self.prune_now();
    }

    /// [`Core::prune_views`] with the vote TTL as of now: on a view change, and whenever the pinned views
    /// may have changed.
    pub(super) fn prune_now(&mut self) {
        let ttl = u64::try_from(self.config.vote_ttl.as_millis()).unwrap_or(u64::MAX);
        self.prune_views(self.now_ms.saturating_sub(ttl));
    }

    pub(super) fn prune_views(&mut self, expired_before_ms: u64) {
        let (past, future) = (self.config.max_past_views, self.config.max_future_views);
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let current = state.round.view;
        let low = current.saturating_sub(past);
        let high = current.saturating_add(future);
        let pinned = state.pinned_views(future);
        state
            .votes
            .retain_views(low, high, current, expired_before_ms, &pinned);
        // The locked and valid blocks, which may still be re-proposed or decided, stay with the proposals
        // of their views (L36 keeps the proposal of the view it locks in), which are pinned.
        state
            .proposals
            .retain(|view, _| (*view >= low && *view <= high) || pinned.contains(view));
        let live: Vec<BlockHash> = state.proposals.values().map(|p| p.block_hash).collect();
        state.validity.retain(|hash, _| live.contains(hash));
        state.double_proposals.retain(|view, _| *view >= low);
    }

    pub(super) fn schedule(&self, kind: TimeoutKind, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        let view = state.round.view;
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                height: state.round.height,
                view,
                kind,
            },
            after: self.config.timeout(kind, view),
        });
    }

    pub(super) fn execute(&mut self, action: RoundAction, out: &mut Vec<Output>) {
        let member = self
            .current
            .as_ref()
            .is_some_and(|s| s.validators.contains(&self.me));
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
                let found = self.current.as_ref().and_then(|s| {
                    s.block(&valid.block_hash).cloned().map(|b| {
                        // The Prepares that made the value valid travel with it (L28 for nodes that
                        // never saw them: a double voter may have shown them to this node alone).
                        let proof = s.lock_proof(valid);
                        (s.round.view, b, proof)
                    })
                });
                match found {
                    Some((view, block, proof)) => {
                        self.sign_proposal(view, Some(valid.view), block, proof, out)
                    }
                    // The valid block is gone (only after a restart): a fresh block is as safe, if slower
                    // to agree on.
                    None => self.request_proposal(out),
                }
            }
            RoundAction::Prepare(value) => self.sign_vote(VotePhase::Prepare, value, out),
            RoundAction::Commit(value) => self.sign_vote(VotePhase::Commit, value, out),
            RoundAction::ScheduleTimeout(kind) => self.schedule(kind, out),
            RoundAction::EnterView(view) => self.enter_view(view, false, out),
            RoundAction::Decide(value) => self.decide(value, out),
        }
    }

    pub(super) fn request_proposal(&mut self, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let (height, view) = (state.round.height, state.round.view);
        if let Some(existing) = self.signed.signed.get(&(view, Slot::Proposal)) {
            // Signed before a restart: send exactly that again.
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        if state.requested_proposal == Some(view) {
            return;
        }
        state.requested_proposal = Some(view);
        out.push(Output::RequestProposal { height, view });
    }

    pub(super) fn sign_proposal(
        &mut self,
        view: View,
        valid_view: Option<View>,
        block: WellFormedBlock,
        lock_proof: Option<LockProof>,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let height = state.round.height;
        if let Some(existing) = self.signed.signed.get(&(view, Slot::Proposal)) {
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        let block_hash = block.hash();
        let mut proposal = Proposal::sign(
            &*self.signer,
            self.config.chain_id,
            height,
            view,
            valid_view,
            block,
        );
        proposal.lock_proof = lock_proof;
        self.signed
            .signed
            .insert((view, Slot::Proposal), Message::Proposal(proposal.clone()));
        out.push(Output::Persist(WalEntry::Proposed(proposal.clone())));
        out.push(Output::Broadcast(Message::Proposal(proposal.clone())));
        // The application built (or already judged) the block; it is valid for us.
        state.validity.insert(block_hash, Validity::Valid);
        state.votes.note_view(self.me, view, view);
        state.proposals.entry(view).or_insert(KnownProposal {
            block_hash,
            proposal,
        });
    }

    pub(super) fn sign_vote(
        &mut self,
        phase: VotePhase,
        block_hash: Option<BlockHash>,
        out: &mut Vec<Output>,
    ) {
        let now = self.now_ms;
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let (height, view) = (state.round.height, state.round.view);
        if let Some(existing) = self.signed.signed.get(&(view, Slot::from(phase))) {
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
            &*self.signer,
            self.config.chain_id,
            phase,
            height,
            view,
            block_hash,
        );
        self.signed
            .signed
            .insert((view, Slot::from(phase)), Message::Vote(vote.clone()));
        // A Commit for a block is a lock (L36–L38): record the block and its Prepare quorum with it, so
        // a restart can re-propose the locked block rather than a fresh one.
        let lock = match (phase, block_hash) {
            (VotePhase::Commit, Some(hash)) => {
                state.block(&hash).cloned().zip(state.lock_proof(ValueAt {
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
        state.votes.note_view(self.me, view, view);
        let _ = state.votes.add(vote, now);
    }

    pub(super) fn decide(&mut self, value: ValueAt, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        let Some(block) = state.block(&value.block_hash).cloned() else {
            // `next_event` only fires L49 with the block at hand.
            warn!(?value, "decision without its block");
            return;
        };
        let certificate = state.votes.certificate(value.view, value.block_hash);
        info!(height = state.round.height, view = value.view, block = %value.block_hash, "decided");
        out.push(Output::Decided { block, certificate });
    }

    pub(super) fn record_evidence(&mut self, evidence: Evidence, out: &mut Vec<Output>) {
        warn!(offender = %evidence.offender(), height = evidence.height(), view = evidence.view(), "equivocation");
        if self.config.max_evidence == 0 {
            out.push(Output::Evidence(evidence));
            return;
        }
        while self.evidence.len() >= self.config.max_evidence {
            self.evidence.pop_front();
        }
        self.evidence.push_back((self.now_ms, evidence.clone()));
        out.push(Output::Evidence(evidence));
    }
}
