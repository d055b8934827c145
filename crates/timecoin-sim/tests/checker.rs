//! The invariant checker catches each kind of violation it claims to: states are doctored on purpose
//! (a certificate short of a quorum, two different votes in one WAL slot, evidence against a key the
//! checker was told is honest) and a fresh checker must name the broken rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;

use timecoin_consensus::{Message, WalEntry};
use timecoin_sim::{DurableState, InvariantChecker, SimConfig, SimNode, Simulation, Violation};
use timecoin_storage::ChainStore;
use timecoin_types::{Genesis, Vote, VotePhase, WellFormedBlock};

/// A checker that takes every node (and every local key) as honest.
fn all_honest(sim: &Simulation, validators: usize) -> InvariantChecker {
    let genesis = Genesis::local(validators);
    let keys: BTreeSet<_> = (0..validators)
        .map(|i| Genesis::local_validator_key(i).public_key())
        .collect();
    InvariantChecker::new(&genesis, vec![true; sim.len()], keys).unwrap()
}

/// Crashes node `id` and restarts it from `edit(its disk)`.
fn restart_doctored(
    sim: &mut Simulation,
    id: usize,
    edit: impl FnOnce(DurableState) -> DurableState,
) {
    let node = sim.node(id).unwrap();
    let spec = node.spec().clone();
    let durable = edit(node.durable().clone());
    let rt = sim.runtime_mut();
    rt.crash(id);
    rt.restart(id, SimNode::recover(spec, durable).unwrap());
}

#[test]
fn a_healthy_run_passes_a_fresh_checker() {
    let mut sim = Simulation::new(SimConfig::new(3, 4)).unwrap();
    sim.run_until_height(3, 60_000).unwrap();
    all_honest(&sim, 4).check(sim.runtime()).unwrap();
}

#[test]
fn a_certificate_short_of_a_quorum_is_caught() {
    let mut sim = Simulation::new(SimConfig::new(3, 4)).unwrap();
    sim.run_until_height(2, 60_000).unwrap();
    restart_doctored(&mut sim, 1, |durable| {
        // A disk whose block 1 carries a certificate of 20 of 40: not more than 2/3.
        let (block, mut certificate) = durable.finalized(1).unwrap();
        certificate.signatures.truncate(2);
        let genesis = Genesis::local(4);
        let doctored = DurableState::new(&genesis).unwrap();
        doctored
            .db()
            .apply_finalized(&WellFormedBlock::check(block).unwrap(), &certificate)
            .unwrap();
        doctored
    });
    let violation = all_honest(&sim, 4).check(sim.runtime()).unwrap_err();
    assert!(
        matches!(
            violation,
            Violation::BadCertificate {
                node: 1,
                height: 1,
                ..
            }
        ),
        "{violation}"
    );
}

#[test]
fn two_different_votes_in_one_wal_slot_are_caught_even_if_never_sent() {
    let mut sim = Simulation::new(SimConfig::new(3, 4)).unwrap();
    // Stop node 2 right after its next WAL write (before sending what it wrote).
    sim.crash_after_persist(2, 1).unwrap();
    sim.run_for(200).unwrap();
    let first = sim.node(2).unwrap().durable().wal_entries().0;
    // The last entry records a vote (a `Locked` entry records the Commit that locked).
    let Some(Message::Vote(vote)) = first.last().cloned().map(WalEntry::into_message) else {
        panic!("node 2's last WAL entry should be a vote: {first:?}");
    };
    let key = Genesis::local_validator_key(2);
    let chain = Genesis::local(4).params.chain_id;
    let other = Vote::sign(
        &key,
        chain,
        vote.phase,
        vote.height,
        vote.view,
        match vote.block_hash {
            Some(_) => None,
            None => Some(timecoin_types::BlockHash(timecoin_types::Hash::ZERO)),
        },
    );
    let expected_slot = match vote.phase {
        VotePhase::Prepare => "Prepare",
        VotePhase::Commit => "Commit",
    };
    let mut checker = all_honest(&sim, 4);
    checker.check(sim.runtime()).unwrap();
    restart_doctored(&mut sim, 2, |durable| {
        durable.append_wal(&WalEntry::Voted(other)).unwrap();
        durable
    });
    let violation = checker.check(sim.runtime()).unwrap_err();
    assert!(
        matches!(
            violation,
            Violation::DoubleSigned { node: 2, slot, .. } if slot == expected_slot
        ),
        "{violation}"
    );
}

#[test]
fn evidence_against_a_key_believed_honest_is_caught() {
    // Validator 0 double-votes; honest nodes collect evidence against its key.
    let config = SimConfig::new(5, 4).with_behavior(0, timecoin_sim::Behavior::DoubleVoter);
    let mut sim = Simulation::new(config).unwrap();
    sim.run_until_height(3, 60_000).unwrap();
    let evidence: u64 = sim
        .honest_nodes()
        .iter()
        .map(|i| sim.node(*i).unwrap().stats().evidence)
        .sum();
    assert!(evidence > 0, "honest nodes saw both votes");
    let violation = all_honest(&sim, 4).check(sim.runtime()).unwrap_err();
    assert!(
        matches!(violation, Violation::HonestEquivocation { .. }),
        "{violation}"
    );
}
