//! The driver: turns inputs into round events (checking leaders, quorums and validity), runs the round
//! state machine, signs what it says to sign (persisting first), and moves across views.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use timecoin_crypto::{PublicKey, SigDomain};
use timecoin_types::{Block, BlockHash, Height, Proposal, View, Vote, VotePhase};
use tracing::{debug, info, warn};

use crate::buffer::FutureBuffer;
use crate::round::{self, LockRule, RoundAction, RoundEvent, RoundState, Step, ValueAt};
use crate::sync::CertifiedBlock;
use crate::votes::{AddOutcome, VoteKeeper};
use crate::{
    Config, ConsensusError, Evidence, Input, Message, Output, ProposalDigest, Signer, Timeout,
    TimeoutKind, ValidatorSet, WalEntry,
};

/// Upper bound on rule firings per input; each firing moves the state forward, and far fewer than this
/// are possible per input, so reaching it means a bug, which is logged rather than looped on.
const MAX_TRANSITIONS_PER_INPUT: usize = 256;

/// One signing slot of a height: a validator signs at most one message per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
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

/// Everything this node signed at one height: the double-sign guard, rebuilt from the WAL on restart.
/// At most three messages per view of the height.
#[derive(Debug, Default)]
struct SignLog {
    height: Height,
    signed: BTreeMap<(View, Slot), Message>,
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

/// The state of the height being decided.
#[derive(Debug)]
struct HeightState {
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
}

impl HeightState {
    fn block(&self, hash: &BlockHash) -> Option<&Block> {
        self.proposals
            .values()
            .find(|p| p.block_hash == *hash)
            .map(|p| &p.proposal.block)
    }

    fn validity(&self, hash: &BlockHash) -> Validity {
        self.validity
            .get(hash)
            .copied()
            .unwrap_or(Validity::Pending)
    }
}

/// The consensus core of one validator: a deterministic state machine with no I/O.
///
/// A core whose key is not in a height's validator set follows that height as an observer: it decides
/// from the others' votes and signs nothing.
///
/// Feed it [`Input`]s with [`Core::handle`] and execute the returned [`Output`]s in order (see
/// `docs/CONSENSUS_API.md`). It never reads a clock, draws a random number, or touches a disk or socket.
///
/// Memory is bounded: per height, at most `2·n·(max_past_views + max_future_views + 1)` votes and one
/// proposal per kept view; for future heights, at most `max_future_messages_per_validator` votes and
/// `max_future_proposals_per_validator` proposals per validator; at most `max_evidence` evidence items
/// (see [`Config`]). [`Core::votes_held`] reports the current count.
pub struct Core {
    config: Config,
    signer: Box<dyn Signer>,
    me: PublicKey,
    lock_rule: LockRule,
    now_ms: u64,
    current: Option<HeightState>,
    signed: SignLog,
    future: FutureBuffer,
    evidence: VecDeque<(u64, Evidence)>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("me", &self.me)
            .field("round", &self.current.as_ref().map(|c| &c.round))
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core that has signed nothing yet. It waits for [`Input::StartHeight`].
    pub fn new(config: Config, signer: impl Signer + 'static) -> Self {
        let me = signer.public_key();
        #[cfg(feature = "fault-injection")]
        let lock_rule = if config.faults.ignore_lock {
            LockRule::Ignore
        } else {
            LockRule::Respect
        };
        #[cfg(not(feature = "fault-injection"))]
        let lock_rule = LockRule::Respect;
        Core {
            config,
            signer: Box::new(signer),
            me,
            lock_rule,
            now_ms: 0,
            current: None,
            signed: SignLog::default(),
            future: FutureBuffer::default(),
            evidence: VecDeque::new(),
        }
    }

    /// A core restarted from its write-ahead log (every [`Output::Persist`] entry, in order).
    ///
    /// It remembers what it signed at the latest height in the log; when the host then starts that height
    /// again, it resumes the last view it signed in, re-sends those very messages, keeps its lock, and
    /// can never sign a different message for a slot it already signed. Fails if an entry was signed by
    /// another key.
    pub fn restore(
        config: Config,
        signer: impl Signer + 'static,
        wal: impl IntoIterator<Item = WalEntry>,
    ) -> Result<Self, ConsensusError> {
        let mut core = Core::new(config, signer);
        for entry in wal {
            if entry.signer() != core.me {
                return Err(ConsensusError::ForeignWal {
                    expected: Box::new(core.me),
                    found: Box::new(entry.signer()),
                });
            }
            let height = entry.height();
            if height > core.signed.height || core.signed.signed.is_empty() {
                core.signed = SignLog {
                    height,
                    signed: BTreeMap::new(),
                };
            }
            if height < core.signed.height {
                continue;
            }
            let (key, message) = match entry {
                WalEntry::Proposed(p) => ((p.view, Slot::Proposal), Message::Proposal(p)),
                WalEntry::Voted(v) => ((v.view, Slot::from(v.phase)), Message::Vote(v)),
            };
            // The first entry of a slot is what went out; a later different one cannot exist unless the
            // log was tampered with, and keeping the first is the safe choice.
            core.signed.signed.entry(key).or_insert(message);
        }
        Ok(core)
    }

    /// This validator's key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The height being decided (`None` before the first [`Input::StartHeight`]).
    pub fn height(&self) -> Option<Height> {
        self.current.as_ref().map(|c| c.round.height)
    }

    /// The state of the height being decided: view, step, lock, valid value, decision.
    pub fn round_state(&self) -> Option<&RoundState> {
        self.current.as_ref().map(|c| &c.round)
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> Option<&Arc<ValidatorSet>> {
        self.current.as_ref().map(|c| &c.validators)
    }

    /// Evidence collected (bounded by [`Config::max_evidence`]), oldest first.
    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.iter().map(|(_, e)| e)
    }

    /// Votes and buffered messages currently held (see the bound in the type's docs).
    pub fn votes_held(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.votes.votes_held()) + self.future.len()
    }

    /// Processes one input and returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, &mut out)
            }
            Input::Proposal(p) => self.on_proposal(p.into_inner(), &mut out),
            Input::Vote(v) => self.on_vote(v.into_inner(), &mut out),
            Input::ProposalValue {
                height,
                view,
                block,
            } => self.on_proposal_value(height, view, block, &mut out),
            Input::Validity {
                height,
                block_hash,
                valid,
            } => self.on_validity(height, block_hash, valid, &mut out),
            Input::Timeout(t) => self.on_timeout(t, &mut out),
            Input::Certified(c) => self.on_certified(c.into_inner(), &mut out),
            Input::Tick { now_ms } => self.on_tick(now_ms),
        }
        out
    }

    // ---- inputs ----

    fn start_height(
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
    fn resume_signed_view(&mut self, view: View, out: &mut Vec<Output>) {
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

    fn buffer_future(&mut self, message: Message) {
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
    fn in_window(&self, view: View) -> bool {
        let Some(state) = self.current.as_ref() else {
            return false;
        };
        let current = state.round.view;
        view <= current.saturating_add(self.config.max_future_views)
            && view >= current.saturating_sub(self.config.max_past_views)
    }

    fn on_vote(&mut self, vote: Vote, out: &mut Vec<Output>) {
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

    fn on_proposal(&mut self, proposal: Proposal, out: &mut Vec<Output>) {
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
        if let Some(first) = state.proposals.get(&proposal.view) {
            let (first, second) = (
                ProposalDigest::of(&first.proposal),
                ProposalDigest::of(&proposal),
            );
            if first != second && state.double_proposals.insert(proposal.view, ()).is_none() {
                self.record_evidence(Evidence::DoubleProposal { first, second }, out);
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
        state.proposals.insert(
            proposal.view,
            KnownProposal {
                block_hash,
                proposal,
            },
        );
        self.progress(out);
    }

    fn on_proposal_value(
        &mut self,
        height: Height,
        view: View,
        block: Block,
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
        self.sign_proposal(view, None, block, out);
        self.progress(out);
    }

    fn on_validity(
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

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Output>) {
        let Some(state) = self.current.as_ref() else {
            return;
        };
        if state.round.height != timeout.height {
            return;
        }
        if timeout.kind == TimeoutKind::Retransmit {
            if timeout.view == state.round.view && state.round.step != Step::Finalized {
                for ((view, _), message) in &self.signed.signed {
                    if *view == timeout.view {
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

    fn on_certified(&mut self, certified: CertifiedBlock, out: &mut Vec<Output>) {
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

    fn on_tick(&mut self, now_ms: u64) {
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

    // ---- the rules ----

    /// Fires every rule whose condition holds, until none does.
    fn progress(&mut self, out: &mut Vec<Output>) {
        for _ in 0..MAX_TRANSITIONS_PER_INPUT {
            let Some(event) = self.next_event() else {
                return;
            };
            self.fire(event, out);
        }
        warn!("transition limit reached in one input; state machine did not settle");
    }

    /// The first rule, in the paper's priority, whose condition holds and whose guard passes.
    fn next_event(&mut self) -> Option<RoundEvent> {
        let me = self.me;
        let lock_rule = self.lock_rule;
        let state = self.current.as_mut()?;
        if state.round.step == Step::Finalized || !state.round.started {
            return None;
        }
        let (height, view) = (state.round.height, state.round.view);
        let skip = state.votes.skip_target(view);
        let state = &*state;
        let passes =
            |event: &RoundEvent| round::apply_with(&state.round, *event, lock_rule).is_some();

        // L49, in any view of the height.
        for (r, block_hash) in state.votes.commit_quorums() {
            let event = RoundEvent::ProposalAndCommitQuorum {
                view: r,
                block_hash,
            };
            if state.validity(&block_hash) == Validity::Valid
                && state.block(&block_hash).is_some()
                && passes(&event)
            {
                return Some(event);
            }
        }
        // L55.
        if let Some(target) = skip {
            let is_leader = *state.validators.leader(height, target) == me;
            let event = RoundEvent::SkipToView {
                view: target,
                is_leader,
            };
            if passes(&event) {
                return Some(event);
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
                            && state.votes.quorum(vr, VotePhase::Prepare)
                                == Some(Some(block_hash)) =>
                    {
                        Some(RoundEvent::ProposalWithPrepareQuorum {
                            block_hash,
                            valid_view: vr,
                            valid,
                        })
                    }
                    Some(_) => None,
                };
                if let Some(event) = event
                    && passes(&event)
                {
                    return Some(event);
                }
            }
            // L36.
            let event = RoundEvent::ProposalAndPrepareQuorum { block_hash };
            if valid && prepare_quorum == Some(Some(block_hash)) && passes(&event) {
                return Some(event);
            }
        }
        // L44.
        if prepare_quorum == Some(None) && passes(&RoundEvent::PrepareNil) {
            return Some(RoundEvent::PrepareNil);
        }
        // L34.
        if state.votes.quorum_any(view, VotePhase::Prepare) && passes(&RoundEvent::PrepareAny) {
            return Some(RoundEvent::PrepareAny);
        }
        // L47.
        if state.votes.quorum_any(view, VotePhase::Commit) && passes(&RoundEvent::CommitAny) {
            return Some(RoundEvent::CommitAny);
        }
        None
    }

    /// Applies one event to the round state and executes its actions.
    fn fire(&mut self, event: RoundEvent, out: &mut Vec<Output>) {
        let lock_rule = self.lock_rule;
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let Some(transition) = round::apply_with(&state.round, event, lock_rule) else {
            return;
        };
        debug!(?event, view = transition.state.view, step = ?transition.state.step, "transition");
        let entered_view = transition.state.view != state.round.view || !state.round.started;
        state.round = transition.state;
        if entered_view {
            self.after_view_change(out);
        }
        for action in transition.actions {
            self.execute(action, out);
        }
    }

    /// StartRound for `view` (L11), computing whether this node leads it.
    fn enter_view(&mut self, view: View, skip: bool, out: &mut Vec<Output>) {
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
    fn after_view_change(&mut self, out: &mut Vec<Output>) {
        self.schedule(TimeoutKind::Retransmit, out);
        let ttl = u64::try_from(self.config.vote_ttl.as_millis()).unwrap_or(u64::MAX);
        self.prune_views(self.now_ms.saturating_sub(ttl));
    }

    fn prune_views(&mut self, expired_before_ms: u64) {
        let (past, future) = (self.config.max_past_views, self.config.max_future_views);
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let current = state.round.view;
        let low = current.saturating_sub(past);
        let high = current.saturating_add(future);
        state
            .votes
            .retain_views(low, high, current, expired_before_ms);
        // Blocks that may still be re-proposed or decided stay: the valid and locked values.
        let keep: Vec<BlockHash> = [state.round.valid, state.round.locked]
            .into_iter()
            .flatten()
            .map(|v| v.block_hash)
            .collect();
        state
            .proposals
            .retain(|view, p| (*view >= low && *view <= high) || keep.contains(&p.block_hash));
        let live: Vec<BlockHash> = state.proposals.values().map(|p| p.block_hash).collect();
        state.validity.retain(|hash, _| live.contains(hash));
        state.double_proposals.retain(|view, _| *view >= low);
    }

    fn schedule(&self, kind: TimeoutKind, out: &mut Vec<Output>) {
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

    fn execute(&mut self, action: RoundAction, out: &mut Vec<Output>) {
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
                    s.block(&valid.block_hash)
                        .cloned()
                        .map(|b| (s.round.view, b))
                });
                match found {
                    Some((view, block)) => self.sign_proposal(view, Some(valid.view), block, out),
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

    fn request_proposal(&mut self, out: &mut Vec<Output>) {
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

    fn sign_proposal(
        &mut self,
        view: View,
        valid_view: Option<View>,
        block: Block,
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
        let message = Proposal::signing_message(height, view, valid_view, &block_hash);
        let signature = self
            .signer
            .sign(SigDomain::Proposal, self.config.chain_id, &message);
        let proposal = Proposal {
            height,
            view,
            valid_view,
            block,
            proposer: self.me,
            signature,
        };
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

    fn sign_vote(
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
        let message = Vote::signing_message(phase, height, view, block_hash);
        let signature = self
            .signer
            .sign(SigDomain::Vote, self.config.chain_id, &message);
        let vote = Vote {
            phase,
            height,
            view,
            block_hash,
            voter: self.me,
            signature,
        };
        self.signed
            .signed
            .insert((view, Slot::from(phase)), Message::Vote(vote.clone()));
        out.push(Output::Persist(WalEntry::Voted(vote.clone())));
        out.push(Output::Broadcast(Message::Vote(vote.clone())));
        state.votes.note_view(self.me, view, view);
        let _ = state.votes.add(vote, now);
    }

    fn decide(&mut self, value: ValueAt, out: &mut Vec<Output>) {
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

    fn record_evidence(&mut self, evidence: Evidence, out: &mut Vec<Output>) {
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
