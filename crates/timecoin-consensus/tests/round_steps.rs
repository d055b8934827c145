//! Step tables for the round state machine: each row is a description, a starting state, one event, the
//! expected actions and the expected new state (or "no transition"). Rows name the paper line they check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use timecoin_consensus::round::{LockRule, RoundAction, RoundEvent, RoundState, apply, apply_with};
use timecoin_consensus::{Step, TimeoutKind, ValueAt};
use timecoin_types::{BlockHash, Hash};

fn block(n: u8) -> BlockHash {
    BlockHash(Hash::from_bytes([n; 32]))
}

/// A started state at `view` and `step`, optionally locked/valid.
fn at(view: u32, step: Step) -> RoundState {
    let mut s = RoundState::new(1);
    s.started = true;
    s.view = view;
    s.step = step;
    s
}

fn locked(mut s: RoundState, view: u32, b: u8) -> RoundState {
    s.locked = Some(ValueAt {
        view,
        block_hash: block(b),
    });
    s.valid = s.locked;
    s
}

struct Row {
    what: &'static str,
    state: RoundState,
    event: RoundEvent,
    /// `None`: the guard must refuse the event.
    expect: Option<(Vec<RoundAction>, RoundState)>,
}

fn with(mut s: RoundState, f: impl FnOnce(&mut RoundState)) -> RoundState {
    f(&mut s);
    s
}

fn check(rows: Vec<Row>) {
    for row in rows {
        let got = apply(&row.state, row.event);
        match (&got, &row.expect) {
            (None, None) => {}
            (Some(t), Some((actions, state))) => {
                assert_eq!(&t.actions, actions, "{}: actions", row.what);
                assert_eq!(&t.state, state, "{}: state", row.what);
            }
            _ => panic!(
                "{}: expected {:?}, got {:?}",
                row.what,
                row.expect.as_ref().map(|e| &e.0),
                got.map(|t| t.actions)
            ),
        }
    }
}

#[test]
fn start_view_rules() {
    let fresh = RoundState::new(1);
    check(vec![
        Row {
            what: "L11/L18: first view, leader without a valid value asks the application",
            state: fresh.clone(),
            event: RoundEvent::StartView {
                view: 0,
                is_leader: true,
            },
            expect: Some((
                vec![
                    RoundAction::RequestProposal,
                    RoundAction::ScheduleTimeout(TimeoutKind::Propose),
                ],
                with(fresh.clone(), |s| s.started = true),
            )),
        },
        Row {
            what: "L21: a follower schedules the propose timeout",
            state: fresh.clone(),
            event: RoundEvent::StartView {
                view: 0,
                is_leader: false,
            },
            expect: Some((
                vec![RoundAction::ScheduleTimeout(TimeoutKind::Propose)],
                with(fresh.clone(), |s| s.started = true),
            )),
        },
        Row {
            what: "L15-L16: a leader with a valid value re-proposes it with its view",
            state: locked(at(2, Step::Commit), 1, 7),
            event: RoundEvent::StartView {
                view: 3,
                is_leader: true,
            },
            expect: Some((
                vec![
                    RoundAction::Repropose(ValueAt {
                        view: 1,
                        block_hash: block(7),
                    }),
                    RoundAction::ScheduleTimeout(TimeoutKind::Propose),
                ],
                with(locked(at(3, Step::PrePrepare), 1, 7), |_| {}),
            )),
        },
        Row {
            what: "a view never goes back",
            state: at(4, Step::Prepare),
            event: RoundEvent::StartView {
                view: 3,
                is_leader: false,
            },
            expect: None,
        },
        Row {
            what: "the same view does not restart",
            state: at(4, Step::Prepare),
            event: RoundEvent::StartView {
                view: 4,
                is_leader: true,
            },
            expect: None,
        },
        Row {
            what: "L55: skipping forward resets the per-view guards",
            state: with(at(1, Step::Commit), |s| {
                s.prepare_timeout_scheduled = true;
                s.commit_timeout_scheduled = true;
                s.prepare_quorum_seen = true;
            }),
            event: RoundEvent::SkipToView {
                view: 5,
                is_leader: false,
            },
            expect: Some((
                vec![RoundAction::ScheduleTimeout(TimeoutKind::Propose)],
                at(5, Step::PrePrepare),
            )),
        },
        Row {
            what: "L55 needs a higher view",
            state: at(5, Step::PrePrepare),
            event: RoundEvent::SkipToView {
                view: 5,
                is_leader: false,
            },
            expect: None,
        },
        Row {
            what: "nothing but StartView before the first view",
            state: fresh.clone(),
            event: RoundEvent::PrepareAny,
            expect: None,
        },
    ]);
}

#[test]
fn proposal_rules() {
    check(vec![
        Row {
            what: "L22-L24: unlocked, valid proposal: Prepare it",
            state: at(0, Step::PrePrepare),
            event: RoundEvent::Proposal {
                block_hash: block(1),
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(Some(block(1)))],
                at(0, Step::Prepare),
            )),
        },
        Row {
            what: "L22-L26: invalid proposal: Prepare nil",
            state: at(0, Step::PrePrepare),
            event: RoundEvent::Proposal {
                block_hash: block(1),
                valid: false,
            },
            expect: Some((vec![RoundAction::Prepare(None)], at(0, Step::Prepare))),
        },
        Row {
            what: "L23: locked on another block: Prepare nil",
            state: locked(at(2, Step::PrePrepare), 1, 9),
            event: RoundEvent::Proposal {
                block_hash: block(1),
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(None)],
                locked(at(2, Step::Prepare), 1, 9),
            )),
        },
        Row {
            what: "L23: locked on this very block: Prepare it",
            state: locked(at(2, Step::PrePrepare), 1, 1),
            event: RoundEvent::Proposal {
                block_hash: block(1),
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(Some(block(1)))],
                locked(at(2, Step::Prepare), 1, 1),
            )),
        },
        Row {
            what: "L22 only while in PrePrepare",
            state: at(0, Step::Prepare),
            event: RoundEvent::Proposal {
                block_hash: block(1),
                valid: true,
            },
            expect: None,
        },
        Row {
            what: "L28-L30: locked in an older view than the proof of lock: unlock and Prepare",
            state: locked(at(3, Step::PrePrepare), 1, 9),
            event: RoundEvent::ProposalWithPrepareQuorum {
                block_hash: block(1),
                valid_view: 2,
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(Some(block(1)))],
                locked(at(3, Step::Prepare), 1, 9),
            )),
        },
        Row {
            what: "L29: lock equal to the proof-of-lock view still allows it",
            state: locked(at(3, Step::PrePrepare), 2, 9),
            event: RoundEvent::ProposalWithPrepareQuorum {
                block_hash: block(1),
                valid_view: 2,
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(Some(block(1)))],
                locked(at(3, Step::Prepare), 2, 9),
            )),
        },
        Row {
            what: "L29-L32: locked later than the proof of lock on another block: Prepare nil",
            state: locked(at(4, Step::PrePrepare), 3, 9),
            event: RoundEvent::ProposalWithPrepareQuorum {
                block_hash: block(1),
                valid_view: 2,
                valid: true,
            },
            expect: Some((
                vec![RoundAction::Prepare(None)],
                locked(at(4, Step::Prepare), 3, 9),
            )),
        },
        Row {
            what: "L28: the proof-of-lock view must be below the current view",
            state: at(2, Step::PrePrepare),
            event: RoundEvent::ProposalWithPrepareQuorum {
                block_hash: block(1),
                valid_view: 2,
                valid: true,
            },
            expect: None,
        },
    ]);
}

#[test]
fn prepare_and_commit_quorum_rules() {
    let value = |v: u32, b: u8| ValueAt {
        view: v,
        block_hash: block(b),
    };
    check(vec![
        Row {
            what: "L34-L35: first quorum of any Prepares schedules the prepare timeout",
            state: at(0, Step::Prepare),
            event: RoundEvent::PrepareAny,
            expect: Some((
                vec![RoundAction::ScheduleTimeout(TimeoutKind::Prepare)],
                with(at(0, Step::Prepare), |s| s.prepare_timeout_scheduled = true),
            )),
        },
        Row {
            what: "L34: only the first time",
            state: with(at(0, Step::Prepare), |s| s.prepare_timeout_scheduled = true),
            event: RoundEvent::PrepareAny,
            expect: None,
        },
        Row {
            what: "L36-L43: in Prepare, lock and Commit, and record the valid value",
            state: at(2, Step::Prepare),
            event: RoundEvent::ProposalAndPrepareQuorum {
                block_hash: block(5),
            },
            expect: Some((
                vec![RoundAction::Commit(Some(block(5)))],
                with(at(2, Step::Commit), |s| {
                    s.locked = Some(value(2, 5));
                    s.valid = Some(value(2, 5));
                    s.prepare_quorum_seen = true;
                }),
            )),
        },
        Row {
            what: "L36/L42: already in Commit, only the valid value moves",
            state: locked(at(2, Step::Commit), 1, 9),
            event: RoundEvent::ProposalAndPrepareQuorum {
                block_hash: block(5),
            },
            expect: Some((
                vec![],
                with(at(2, Step::Commit), |s| {
                    s.locked = Some(value(1, 9));
                    s.valid = Some(value(2, 5));
                    s.prepare_quorum_seen = true;
                }),
            )),
        },
        Row {
            what: "L36: not before Prepare",
            state: at(2, Step::PrePrepare),
            event: RoundEvent::ProposalAndPrepareQuorum {
                block_hash: block(5),
            },
            expect: None,
        },
        Row {
            what: "L44-L46: a nil quorum Commits nil",
            state: at(0, Step::Prepare),
            event: RoundEvent::PrepareNil,
            expect: Some((vec![RoundAction::Commit(None)], at(0, Step::Commit))),
        },
        Row {
            what: "L47-L48: first Commit quorum of anything schedules the commit timeout, in any step",
            state: at(0, Step::PrePrepare),
            event: RoundEvent::CommitAny,
            expect: Some((
                vec![RoundAction::ScheduleTimeout(TimeoutKind::Commit)],
                with(at(0, Step::PrePrepare), |s| {
                    s.commit_timeout_scheduled = true
                }),
            )),
        },
        Row {
            what: "L49-L51: a Commit quorum on a valid proposal decides, from any view",
            state: at(3, Step::Prepare),
            event: RoundEvent::ProposalAndCommitQuorum {
                view: 1,
                block_hash: block(4),
            },
            expect: Some((
                vec![RoundAction::Decide(value(1, 4))],
                with(at(3, Step::Finalized), |s| s.decision = Some(value(1, 4))),
            )),
        },
        Row {
            what: "after the decision nothing applies",
            state: with(at(3, Step::Finalized), |s| s.decision = Some(value(1, 4))),
            event: RoundEvent::ProposalAndCommitQuorum {
                view: 2,
                block_hash: block(5),
            },
            expect: None,
        },
    ]);
}

#[test]
fn timeout_rules() {
    check(vec![
        Row {
            what: "L57-L60: propose timeout in PrePrepare: Prepare nil",
            state: at(1, Step::PrePrepare),
            event: RoundEvent::Timeout {
                view: 1,
                kind: TimeoutKind::Propose,
            },
            expect: Some((vec![RoundAction::Prepare(None)], at(1, Step::Prepare))),
        },
        Row {
            what: "L58: a propose timeout after Preparing does nothing",
            state: at(1, Step::Prepare),
            event: RoundEvent::Timeout {
                view: 1,
                kind: TimeoutKind::Propose,
            },
            expect: None,
        },
        Row {
            what: "L61-L64: prepare timeout in Prepare: Commit nil",
            state: at(1, Step::Prepare),
            event: RoundEvent::Timeout {
                view: 1,
                kind: TimeoutKind::Prepare,
            },
            expect: Some((vec![RoundAction::Commit(None)], at(1, Step::Commit))),
        },
        Row {
            what: "L65-L67: commit timeout moves to the next view",
            state: at(1, Step::Commit),
            event: RoundEvent::Timeout {
                view: 1,
                kind: TimeoutKind::Commit,
            },
            expect: Some((vec![RoundAction::EnterView(2)], at(1, Step::Commit))),
        },
        Row {
            what: "L58/L62/L66: a timer of another view is stale",
            state: at(2, Step::PrePrepare),
            event: RoundEvent::Timeout {
                view: 1,
                kind: TimeoutKind::Propose,
            },
            expect: None,
        },
    ]);
}

#[test]
fn ignoring_the_lock_is_what_the_fault_switch_changes() {
    let s = locked(at(2, Step::PrePrepare), 1, 9);
    let e = RoundEvent::Proposal {
        block_hash: block(1),
        valid: true,
    };
    assert_eq!(
        apply(&s, e).unwrap().actions,
        vec![RoundAction::Prepare(None)]
    );
    assert_eq!(
        apply_with(&s, e, LockRule::Ignore).unwrap().actions,
        vec![RoundAction::Prepare(Some(block(1)))]
    );
}
