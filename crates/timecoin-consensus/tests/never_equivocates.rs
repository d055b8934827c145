//! Property: whatever a core is fed — any proposals, votes, validity answers, timers, and crashes with a
//! restart from its WAL at any point — it never signs two different messages for one slot, and every
//! message it sends was persisted first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{block_on, key, proposal, vote};
use proptest::prelude::*;
use timecoin_consensus::{
    Config, Core, Input, Message, Output, Timeout, TimeoutKind, ValidatorSet, WalEntry,
};
use timecoin_types::{Genesis, VotePhase, WellFormedBlock};

#[derive(Clone, Debug)]
enum Step {
    Propose {
        view: u32,
        block: usize,
        valid_view: Option<u32>,
    },
    Vote {
        from: usize,
        commit: bool,
        view: u32,
        block: Option<usize>,
    },
    Validity {
        block: usize,
        valid: bool,
    },
    Timer {
        view: u32,
        kind: u8,
    },
    AnswerProposal {
        view: u32,
        block: usize,
    },
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6u32, 0..3usize, proptest::option::of(0..3u32)).prop_map(
            |(view, block, valid_view)| Step::Propose {
                view,
                block,
                valid_view
            }
        ),
        (
            0..4usize,
            any::<bool>(),
            0..6u32,
            proptest::option::of(0..2usize)
        )
            .prop_map(|(from, commit, view, block)| Step::Vote {
                from,
                commit,
                view,
                block
            }),
        (0..3usize, any::<bool>()).prop_map(|(block, valid)| Step::Validity { block, valid }),
        (0..6u32, 0..4u8).prop_map(|(view, kind)| Step::Timer { view, kind }),
        (0..6u32, 0..3usize).prop_map(|(view, block)| Step::AnswerProposal { view, block }),
        Just(Step::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn a_core_never_signs_two_messages_for_one_slot_and_persists_before_sending(
        steps in proptest::collection::vec(step(), 1..200)
    ) {
        let genesis = Genesis::local(4);
        let chain = genesis.params.chain_id;
        let config = Config::new(chain);
        let validators = Arc::new(ValidatorSet::from_genesis(&genesis).unwrap());
        let height = 1;
        let blocks: Vec<WellFormedBlock> = (0..3).map(|i| block_on(&genesis.block(), height, 0, &key(1), i)).collect();
        let me = 0;
        let start = Input::StartHeight { height, validators: validators.clone() };

        let mut core = Core::new(config.clone(), key(me));
        let mut wal: Vec<WalEntry> = vec![];
        let mut signed: BTreeMap<(u32, u8), Message> = BTreeMap::new();
        let mut check = |outputs: Vec<Output>, wal: &mut Vec<WalEntry>| {
            for o in outputs {
                match o {
                    Output::Persist(e) => {
                        let m = e.clone().into_message();
                        let slot = match &m {
                            Message::Proposal(p) => (p.view, 0),
                            Message::Vote(v) => (v.view, 1 + (v.phase == VotePhase::Commit) as u8),
                        };
                        if let Some(previous) = signed.get(&slot) {
                            prop_assert_eq!(previous, &m, "two messages for slot {:?}", slot);
                        }
                        signed.insert(slot, m);
                        wal.push(e);
                    }
                    Output::Broadcast(m) => {
                        let persisted = wal.iter().any(|e| match (e.clone().into_message(), &m) {
                            (Message::Proposal(p), Message::Proposal(q)) => p == *q,
                            (Message::Vote(v), Message::Vote(w)) => v == *w,
                            _ => false,
                        });
                        prop_assert!(persisted, "sent before persisted: {:?}", m);
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        check(core.handle(start.clone()), &mut wal)?;
        for s in steps {
            // Views 3..6 stand for "the core's current view", so that rules fire often.
            let current = core.round_state().map_or(0, |r| r.view);
            let pick = |view: u32| if view >= 3 { current } else { view };
            let input = match s {
                Step::Propose { view, block, valid_view } => {
                    let view = pick(view);
                    let leader = validators.leader(height, view);
                    let leader = (0..4).find(|i| key(*i).public_key() == *leader).unwrap();
                    if leader == me {
                        continue;
                    }
                    proposal(&key(leader), chain, height, view, valid_view.filter(|v| *v < view), blocks[block].clone())
                }
                Step::Vote { from, commit, view, block } => {
                    let view = pick(view);
                    if from == me {
                        continue;
                    }
                    let phase = if commit { VotePhase::Commit } else { VotePhase::Prepare };
                    vote(&key(from), chain, phase, height, view, block.map(|b| blocks[b].hash()))
                }
                Step::Validity { block, valid } => Input::Validity { height, block_hash: blocks[block].hash(), valid },
                Step::Timer { view, kind } => {
                    let view = pick(view);
                    let kind = [TimeoutKind::Propose, TimeoutKind::Prepare, TimeoutKind::Commit, TimeoutKind::Retransmit][kind as usize];
                    Input::Timeout(Timeout { height, view, kind })
                }
                Step::AnswerProposal { view, block } => {
                    let view = pick(view);
                    Input::ProposalValue { height, view, block: blocks[block].clone() }
                }
                Step::Restart => {
                    core = Core::restore(config.clone(), key(me), wal.clone()).unwrap();
                    start.clone()
                }
            };
            check(core.handle(input), &mut wal)?;
        }
    }
}
