//! What each input does to the core.

use super::*;

impl Core {
    // ---- inputs ----

    pub(super) fn start_height(
        &mut self,
        height: Height,
        validators: Arc<ValidatorSet>,
        out: &mut Vec<Output>,
    ) {
        if self.height().is_some_and(|h| height <= h) {
            debug!(
                height,
                "start of a height not above the current one ignored"
            );
            return;
        }
        if height < self.signed.height {
            // The WAL shows this node signed at a later height: signing here again could contradict
            // messages whose record the host has since deleted.
            warn!(
                height,
                signed = self.signed.height,
                "refusing to start a height below one this node already signed at"
            );
            return;
        }
        if height > self.signed.height {
            self.signed = SignLog {
                height,
                signed: BTreeMap::new(),
                lock: None,
            };
        }
        info!(height, validators = validators.len(), "starting height");
        let mut state = HeightState {
            votes: VoteKeeper::new(height, validators.clone()),
            validators,
            round: RoundState::new(height),
            proposals: BTreeMap::new(),
            double_proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            requested_proposal: None,
            restored_lock: None,
        };
        // Resume where the WAL left off: the lock is the latest own Commit for a block (L38–L39 set it
        // exactly when that Commit is signed), and the view is the latest one signed in.
        let resumed_view = self.signed.signed.keys().map(|(v, _)| *v).max();
        state.round.locked = self
            .signed
            .signed
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
            .max_by_key(|value| value.view);
        // The locked block and its proof, if the WAL kept them: the lock is then also the valid value
        // (validRound ≥ lockedRound always holds), so as leader this node re-proposes it (L15) with its
        // proof instead of a fresh block.
        if let (Some(locked), Some((view, block, proof))) = (state.round.locked, &self.signed.lock)
            && *view == locked.view
            && block.hash() == locked.block_hash
        {
            state.validity.insert(locked.block_hash, Validity::Valid);
            state.restored_lock = Some((block.clone(), proof.clone()));
            state.round.valid = Some(locked);
        }
        for message in self.signed.signed.values() {
            match message {
                Message::Vote(v) => {
                    state.votes.note_view(v.voter, v.view, 0);
                    let _ = state.votes.add(v.clone(), self.now_ms);
                }
                Message::Proposal(p) => {
                    let known = KnownProposal::new(p.clone());
                    state.validity.insert(known.block_hash, Validity::Valid);
                    state.proposals.insert(p.view, known);
                }
            }
        }
        self.current = Some(state);
        self.enter_view(resumed_view.unwrap_or(0), false, out);
        if let Some(view) = resumed_view {
            self.resume_signed_view(view, out);
        }
        for message in self.future.take_height(height) {
            match message {
                Message::Proposal(p) => self.on_proposal(p, out),
                Message::Vote(v) => self.on_vote(v, out),
            }
        }
        self.progress(out);
    }

    /// After a restart in `view`: set the step to what was signed, and re-send it all.
    pub(super) fn resume_signed_view(&mut self, view: View, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        for ((v, slot), message) in self.signed.signed.range((view, Slot::Proposal)..) {
            if *v != view {
                continue;
            }
            // The proposal, if any, went out again through `request_proposal` when the view started.
            match slot {
                Slot::Prepare => state.round.step = state.round.step.max(Step::Prepare),
                Slot::Commit => state.round.step = state.round.step.max(Step::Commit),
                Slot::Proposal => continue,
            }
            out.push(Output::Broadcast(message.clone()));
        }
    }

    pub(super) fn buffer_future(&mut self, message: Message) {
        if let Some(current) = self.height() {
            let ahead = message.height().saturating_sub(current);
            if ahead > self.config.max_future_heights {
                debug!(height = message.height(), "message too far ahead dropped");
                return;
            }
        }
        if let Err(why) = self.future.push(
            message,
            self.now_ms,
            self.config.max_future_messages_per_validator,
            self.config.max_future_proposals_per_validator,
        ) {
            debug!(?why, "future message dropped");
        }
    }

    /// Whether `view` is within the kept window of the current view.
    pub(super) fn in_window(&self, view: View) -> bool {
        let Some(state) = self.current.as_ref() else {
            return false;
        };
        let current = state.round.view;
        (view <= current.saturating_add(self.config.max_future_views)
            && view >= current.saturating_sub(self.config.max_past_views))
            || state
                .pinned_views(self.config.max_future_views)
                .contains(&view)
    }

    pub(super) fn on_vote(&mut self, vote: Vote, out: &mut Vec<Output>) {
        let Some(height) = self.height() else {
            self.buffer_future(Message::Vote(vote));
            return;
        };
        if vote.height > height {
            self.buffer_future(Message::Vote(vote));
            return;
        }
        if vote.height < height {
            return;
        }
        let in_window = self.in_window(vote.view);
        let now = self.now_ms;
        let Some(state) = self.current.as_mut() else {
            return;
        };
        if !state.validators.contains(&vote.voter) {
            debug!(voter = %vote.voter, "vote from a non-member ignored");
            return;
        }
        state
            .votes
            .note_view(vote.voter, vote.view, state.round.view);
        if in_window {
            match state.votes.add(vote, now) {
                AddOutcome::Equivocation(evidence) => self.record_evidence(evidence, out),
                AddOutcome::Counted | AddOutcome::Ignored | AddOutcome::Repeated => {}
            }
        }
        self.progress(out);
    }

    pub(super) fn on_proposal(&mut self, proposal: Proposal, out: &mut Vec<Output>) {
        let Some(height) = self.height() else {
            self.buffer_future(Message::Proposal(proposal));
            return;
        };
        if proposal.height > height {
            self.buffer_future(Message::Proposal(proposal));
            return;
        }
        if proposal.height < height {
            return;
        }
        let in_window = self.in_window(proposal.view);
        let Some(state) = self.current.as_mut() else {
            return;
        };
        if *state.validators.leader(height, proposal.view) != proposal.proposer {
            debug!(proposer = %proposal.proposer, view = proposal.view, "proposal from a non-leader ignored");
            return;
        }
        state
            .votes
            .note_view(proposal.proposer, proposal.view, state.round.view);
        if state.round.step == Step::Finalized {
            // Decided: no block of this height needs judging any more.
            return;
        }
        if !in_window {
            self.progress(out);
            return;
        }
        if let Some(first) = state.proposals.get_mut(&proposal.view) {
            let (first_digest, second) = (
                ProposalDigest::of(&first.proposal),
                ProposalDigest::of(&proposal),
            );
            if first_digest == second {
                // The same signed proposal again: keep a proof of lock the first copy lacked (the proof
                // stands outside the leader's signature, so a copy may arrive without it).
                if first.proposal.lock_proof.is_none() && proposal.lock_proof.is_some() {
                    first.proposal.lock_proof = proposal.lock_proof;
                    self.progress(out);
                }
                return;
            }
            if state.double_proposals.insert(proposal.view, ()).is_none() {
                self.record_evidence(
                    Evidence::DoubleProposal {
                        first: first_digest,
                        second,
                    },
                    out,
                );
            }
            return;
        }
        let block_hash = proposal.block.hash();
        if let std::collections::btree_map::Entry::Vacant(entry) = state.validity.entry(block_hash)
        {
            if proposal.block.header.height != height
                || proposal.block.header.chain_id != self.config.chain_id
            {
                // Not a block of this height at all; no need to ask the application.
                entry.insert(Validity::Invalid);
            } else {
                entry.insert(Validity::Pending);
                out.push(Output::RequestValidity {
                    height,
                    view: proposal.view,
                    block: proposal.block.clone(),
                });
            }
        }
        let names_a_view = proposal.valid_view.is_some();
        state.proposals.insert(
            proposal.view,
            KnownProposal {
                block_hash,
                proposal,
            },
        );
        if names_a_view {
            // It may pin a view and push a farther one out of the pinned set: drop that one's votes now,
            // so the kept views never exceed the bound, not even between view changes.
            self.prune_now();
        }
        self.progress(out);
    }

    pub(super) fn on_proposal_value(
        &mut self,
        height: Height,
        view: View,
        block: WellFormedBlock,
        out: &mut Vec<Output>,
    ) {
        let me = self.me;
        let Some(state) = self.current.as_ref() else {
            return;
        };
        let round = &state.round;
        if round.height != height
            || round.view != view
            || round.step != Step::PrePrepare
            || *state.validators.leader(height, view) != me
            || state.proposals.contains_key(&view)
        {
            debug!(height, view, "late or unasked proposal value ignored");
            return;
        }
        if block.header.height != height {
            warn!(
                height,
                block_height = block.header.height,
                "application proposed a block of another height; ignored"
            );
            return;
        }
        self.sign_proposal(view, None, block, None, out);
        self.progress(out);
    }

    pub(super) fn on_validity(
        &mut self,
        height: Height,
        block_hash: BlockHash,
        valid: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        if state.round.height != height || state.validity(&block_hash) != Validity::Pending {
            return;
        }
        if !state.validity.contains_key(&block_hash) {
            return;
        }
        let verdict = if valid {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        state.validity.insert(block_hash, verdict);
        self.progress(out);
    }

    pub(super) fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        if state.round.height != timeout.height {
            return;
        }
        if timeout.kind == TimeoutKind::Retransmit {
            if timeout.view == state.round.view && state.round.step != Step::Finalized {
                // Earlier views too: a peer that missed this node's Prepare of an old view may need it as
                // the proof of a lock (L28/L36), and nothing else would ever resend it. The window matches
                // the views receivers keep, so the resend stays bounded.
                let oldest = timeout.view.saturating_sub(self.config.max_past_views);
                for ((view, _), message) in self.signed.signed.range((oldest, Slot::Proposal)..) {
                    if *view <= timeout.view {
                        out.push(Output::Broadcast(message.clone()));
                    }
                }
                self.schedule(TimeoutKind::Retransmit, out);
            }
            return;
        }
        self.fire(
            RoundEvent::Timeout {
                view: timeout.view,
                kind: timeout.kind,
            },
            out,
        );
        self.progress(out);
    }

    pub(super) fn on_certified(&mut self, certified: CertifiedBlock, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_mut() else {
            return;
        };
        if state.round.height != certified.height() || state.round.step == Step::Finalized {
            return;
        }
        info!(
            height = state.round.height,
            "height decided by a synced certificate"
        );
        state.round.decision = Some(ValueAt {
            view: certified.certificate.view,
            block_hash: certified.certificate.block_hash,
        });
        state.round.step = Step::Finalized;
        out.push(Output::Decided {
            block: certified.block,
            certificate: certified.certificate,
        });
    }

    pub(super) fn on_tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let ttl = u64::try_from(self.config.vote_ttl.as_millis()).unwrap_or(u64::MAX);
        let expired_before = self.now_ms.saturating_sub(ttl);
        self.future.expire(expired_before);
        while self
            .evidence
            .front()
            .is_some_and(|(at, _)| *at < expired_before)
        {
            self.evidence.pop_front();
        }
        self.prune_views(expired_before);
    }
}
