//! The round state machine of one height: Algorithm 1 of "The latest gossip on BFT consensus" (Buchman,
//! Kwon, Milosevic, 2018), as a pure function from a state and an event to a new state and actions.
//!
//! Names follow the seed: a *view* is the paper's round, *PrePrepare* its propose step, *Prepare* its
//! prevote, *Commit* its precommit, and *Finalized* its decision. The match arms cite the paper's line
//! numbers. The [`Core`](crate::Core) (the driver) turns messages and vote tallies into [`RoundEvent`]s —
//! it checks "from proposer(h, r)", "2f + 1 ⟨PREVOTE, …⟩" and `valid(v)` — and turns [`RoundAction`]s into
//! signed messages, so this file holds only the rules.

use serde::{Deserialize, Serialize};
use timecoin_types::{BlockHash, Height, View};

/// Which timer of a view fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// No proposal acted on in time: Prepare nil (L57).
    Propose,
    /// Prepares for anything but no quorum for one value: Commit nil (L61).
    Prepare,
    /// Commits for anything but no quorum for one value: next view (L65).
    Commit,
    /// Re-broadcast this view's own messages, then reschedule.
    Retransmit,
}

/// Where a view is (the paper's `step_p`, plus the decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Waiting for the leader's proposal (`propose`).
    PrePrepare,
    /// Prepared; waiting for Prepare quorums (`prevote`).
    Prepare,
    /// Committed; waiting for Commit quorums (`precommit`).
    Commit,
    /// The height is decided.
    Finalized,
}

/// A block (by hash) together with the view in which it gathered its quorum: the paper's
/// `lockedValue/lockedRound`, `validValue/validRound` and `decision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValueAt {
    /// The view.
    pub view: View,
    /// The block.
    pub block_hash: BlockHash,
}

/// The state of one height (paper lines 2–9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundState {
    /// `h_p`.
    pub height: Height,
    /// `round_p`.
    pub view: View,
    /// `step_p`.
    pub step: Step,
    /// `lockedValue_p` / `lockedRound_p` (`None` = nil / −1).
    pub locked: Option<ValueAt>,
    /// `validValue_p` / `validRound_p` (`None` = nil / −1).
    pub valid: Option<ValueAt>,
    /// `decision_p[h_p]`.
    pub decision: Option<ValueAt>,
    /// StartRound has run at least once (L10).
    pub started: bool,
    /// L34 has fired in this view ("for the first time").
    pub prepare_timeout_scheduled: bool,
    /// L47 has fired in this view.
    pub commit_timeout_scheduled: bool,
    /// L36 has fired in this view.
    pub prepare_quorum_seen: bool,
}

impl RoundState {
    /// A height before its first view (StartRound(0) is the first event).
    pub fn new(height: Height) -> Self {
        RoundState {
            height,
            view: 0,
            step: Step::PrePrepare,
            locked: None,
            valid: None,
            decision: None,
            started: false,
            prepare_timeout_scheduled: false,
            commit_timeout_scheduled: false,
            prepare_quorum_seen: false,
        }
    }
}

/// What happened, already digested by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundEvent {
    /// StartRound(view) (L11), for the first view of the height or after L65.
    StartView {
        /// The view to enter.
        view: View,
        /// Whether this node is `proposer(h_p, view)`.
        is_leader: bool,
    },
    /// The current view's proposal from its leader, without a proof-of-lock view (L22).
    Proposal {
        /// `id(v)`.
        block_hash: BlockHash,
        /// `valid(v)`.
        valid: bool,
    },
    /// The current view's proposal re-proposing a value with proof-of-lock view `valid_view`, and more
    /// than 2/3 of the weight Prepared for it in `valid_view` (L28).
    ProposalWithPrepareQuorum {
        /// `id(v)`.
        block_hash: BlockHash,
        /// `vr`.
        valid_view: View,
        /// `valid(v)`.
        valid: bool,
    },
    /// More than 2/3 of the weight Prepared for anything in the current view (L34).
    PrepareAny,
    /// The current view's proposal, valid, with more than 2/3 of the weight Prepared for it in the
    /// current view (L36).
    ProposalAndPrepareQuorum {
        /// `id(v)`.
        block_hash: BlockHash,
    },
    /// More than 2/3 of the weight Prepared nil in the current view (L44).
    PrepareNil,
    /// More than 2/3 of the weight Committed for anything in the current view (L47).
    CommitAny,
    /// A valid proposal from the leader of `view` and more than 2/3 of the weight Committed for it in
    /// `view`, any view of this height (L49).
    ProposalAndCommitQuorum {
        /// `r`.
        view: View,
        /// `id(v)`.
        block_hash: BlockHash,
    },
    /// Messages from more than 1/3 of the weight in views above the current one (L55).
    SkipToView {
        /// The view to enter.
        view: View,
        /// Whether this node leads it.
        is_leader: bool,
    },
    /// A timer of `view` fired (L57, L61, L65).
    Timeout {
        /// The view it was set in.
        view: View,
        /// Which timer.
        kind: TimeoutKind,
    },
}

/// What the driver must do after a transition, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundAction {
    /// `getValue()` (L18): ask the application for a block to propose.
    RequestProposal,
    /// Propose `validValue_p` again with `validRound_p` (L15–L16, L19).
    Repropose(ValueAt),
    /// Broadcast a Prepare for the block, or nil.
    Prepare(Option<BlockHash>),
    /// Broadcast a Commit for the block, or nil.
    Commit(Option<BlockHash>),
    /// Schedule a timer of the current view.
    ScheduleTimeout(TimeoutKind),
    /// StartRound(view) is due (L67): the driver feeds `StartView` with the leader flag.
    EnterView(View),
    /// `decision_p[h_p] = v` (L51).
    Decide(ValueAt),
}

/// A new state and the actions it requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: RoundState,
    /// Actions, in order.
    pub actions: Vec<RoundAction>,
}

/// How the prevote rules treat the lock. Only [`LockRule::Respect`] is safe; the other exists so
/// negative-control tests can show that a checker notices its absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockRule {
    /// The paper's rule.
    #[default]
    Respect,
    /// Behave as if never locked (unsafe).
    Ignore,
}

/// Applies `event` to `state` with the paper's locking rule. `None` means the event's guard does not hold
/// in this state (nothing changes, nothing to do).
pub fn apply(state: &RoundState, event: RoundEvent) -> Option<Transition> {
    apply_with(state, event, LockRule::Respect)
}

/// [`apply`] with an explicit [`LockRule`].
pub fn apply_with(
    state: &RoundState,
    event: RoundEvent,
    lock_rule: LockRule,
) -> Option<Transition> {
    if state.step == Step::Finalized
        || (!state.started && !matches!(event, RoundEvent::StartView { .. }))
    {
        // After the decision nothing of this height matters; the host starts the next one.
        return None;
    }
    let mut next = state.clone();
    let mut actions = Vec::new();
    let locked = match lock_rule {
        LockRule::Respect => state.locked,
        LockRule::Ignore => None,
    };
    match event {
        // L11: StartRound(round); L55–L56 reach it through `SkipToView`.
        RoundEvent::StartView { view, is_leader } | RoundEvent::SkipToView { view, is_leader } => {
            let first_view = !state.started && matches!(event, RoundEvent::StartView { .. });
            if view <= state.view && !first_view {
                return None;
            }
            next.started = true;
            next.view = view; // L12
            next.step = Step::PrePrepare; // L13
            next.prepare_timeout_scheduled = false;
            next.commit_timeout_scheduled = false;
            next.prepare_quorum_seen = false;
            if is_leader {
                // L14–L19: re-propose the valid value, or ask for a new one.
                match state.valid {
                    Some(valid) => actions.push(RoundAction::Repropose(valid)),
                    None => actions.push(RoundAction::RequestProposal),
                }
            }
            // L21. The leader schedules it too: if the application never answers, the leader falls back
            // to Prepare nil like everyone else, which is always safe.
            actions.push(RoundAction::ScheduleTimeout(TimeoutKind::Propose));
        }
        // L22: ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p) while step_p = propose.
        RoundEvent::Proposal { block_hash, valid } => {
            if state.step != Step::PrePrepare {
                return None;
            }
            // L23: valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v).
            let acceptable = valid && locked.is_none_or(|l| l.block_hash == block_hash);
            // L24 / L26.
            actions.push(RoundAction::Prepare(acceptable.then_some(block_hash)));
            next.step = Step::Prepare; // L27
        }
        // L28: ⟨PROPOSAL, h_p, round_p, v, vr⟩ AND 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩, step_p = propose,
        // 0 ≤ vr < round_p.
        RoundEvent::ProposalWithPrepareQuorum {
            block_hash,
            valid_view,
            valid,
        } => {
            if state.step != Step::PrePrepare || valid_view >= state.view {
                return None;
            }
            // L29: valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v).
            let acceptable =
                valid && locked.is_none_or(|l| l.view <= valid_view || l.block_hash == block_hash);
            // L30 / L32.
            actions.push(RoundAction::Prepare(acceptable.then_some(block_hash)));
            next.step = Step::Prepare; // L33
        }
        // L34: 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote, for the first time.
        RoundEvent::PrepareAny => {
            if state.step != Step::Prepare || state.prepare_timeout_scheduled {
                return None;
            }
            next.prepare_timeout_scheduled = true;
            actions.push(RoundAction::ScheduleTimeout(TimeoutKind::Prepare)); // L35
        }
        // L36: ⟨PROPOSAL, h_p, round_p, v, ∗⟩ AND 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧
        // step_p ≥ prevote, for the first time. (The driver only sends it for a valid v.)
        RoundEvent::ProposalAndPrepareQuorum { block_hash } => {
            if state.step < Step::Prepare || state.prepare_quorum_seen {
                return None;
            }
            next.prepare_quorum_seen = true;
            let value = ValueAt {
                view: state.view,
                block_hash,
            };
            if state.step == Step::Prepare {
                // L37–L41: lock, Commit.
                next.locked = Some(value);
                actions.push(RoundAction::Commit(Some(block_hash)));
                next.step = Step::Commit;
            }
            next.valid = Some(value); // L42–L43
        }
        // L44: 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote.
        RoundEvent::PrepareNil => {
            if state.step != Step::Prepare {
                return None;
            }
            actions.push(RoundAction::Commit(None)); // L45
            next.step = Step::Commit; // L46
        }
        // L47: 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩, for the first time.
        RoundEvent::CommitAny => {
            if state.commit_timeout_scheduled {
                return None;
            }
            next.commit_timeout_scheduled = true;
            actions.push(RoundAction::ScheduleTimeout(TimeoutKind::Commit)); // L48
        }
        // L49: ⟨PROPOSAL, h_p, r, v, ∗⟩ AND 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil.
        RoundEvent::ProposalAndCommitQuorum { view, block_hash } => {
            if state.decision.is_some() {
                return None;
            }
            // L50–L51 (the driver sends it only for a valid v); L52–L54 are the host's StartHeight.
            let value = ValueAt { view, block_hash };
            next.decision = Some(value);
            next.step = Step::Finalized;
            actions.push(RoundAction::Decide(value));
        }
        RoundEvent::Timeout { view, kind } => {
            if view != state.view {
                return None;
            }
            match kind {
                // L57: OnTimeoutPropose, while step_p = propose.
                TimeoutKind::Propose => {
                    if state.step != Step::PrePrepare {
                        return None;
                    }
                    actions.push(RoundAction::Prepare(None)); // L59
                    next.step = Step::Prepare; // L60
                }
                // L61: OnTimeoutPrevote, while step_p = prevote.
                TimeoutKind::Prepare => {
                    if state.step != Step::Prepare {
                        return None;
                    }
                    actions.push(RoundAction::Commit(None)); // L63
                    next.step = Step::Commit; // L64
                }
                // L65: OnTimeoutPrecommit.
                TimeoutKind::Commit => {
                    let following = state.view.checked_add(1)?;
                    actions.push(RoundAction::EnterView(following)); // L67
                }
                TimeoutKind::Retransmit => return None,
            }
        }
    }
    Some(Transition {
        state: next,
        actions,
    })
}
