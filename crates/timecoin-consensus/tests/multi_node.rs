//! Several cores talking through an in-process router: agreement, liveness without timeouts on a
//! healthy network, view changes, weights, and seeded reordering with loss.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Net, key, next_random};
use timecoin_consensus::{Evidence, Message, WalEntry};
use timecoin_types::{Genesis, Tier, Vote};

#[test]
fn four_validators_finalize_five_heights_without_any_timeout() {
    let mut net = Net::new(4);
    net.start();
    assert!(net.run_until(1_000, |n| n.min_decided() >= 5));
    net.assert_agreement();
    assert_eq!(
        net.view_timeouts_fired(),
        0,
        "a healthy network never waits for a timer"
    );
    for node in &net.nodes {
        for (i, (block, cert)) in node.decided.iter().enumerate() {
            assert_eq!(block.header.height, i as u64 + 1);
            assert_eq!(cert.view, 0);
        }
    }
}

#[test]
fn seven_validators_agree_and_chain_each_block_on_the_last() {
    let mut net = Net::new(7);
    net.start();
    assert!(net.run_until(1_000, |n| n.min_decided() >= 3));
    net.assert_agreement();
    let chain = &net.nodes[0].decided;
    assert_eq!(chain[0].0.header.parent, net.genesis.block().hash());
    for pair in chain.windows(2) {
        assert_eq!(pair[1].0.header.parent, pair[0].0.hash());
    }
}

#[test]
fn a_silent_leader_is_replaced_after_its_view_times_out() {
    let mut net = Net::new(4);
    let leader = *net.validators.leader(1, 0);
    let silent = (0..4)
        .find(|i| common::key(*i).public_key() == leader)
        .unwrap();
    net.nodes[silent].up = false;
    net.start();
    assert!(net.run_until(1_000, |n| n.min_decided() >= 1));
    net.assert_agreement();
    let (block, cert) = &net.nodes[(silent + 1) % 4].decided[0];
    assert!(cert.view >= 1, "view 0 had no live leader");
    assert_ne!(block.header.proposer, leader);
    assert!(net.view_timeouts_fired() > 0);
}

#[test]
fn one_gold_and_three_bronze_need_the_gold_validator() {
    // Gold (50) + 3 Bronze (30) = 80: the three Bronze alone hold 30/80 < 2/3, Gold alone 50/80 < 2/3.
    let mut genesis = Genesis::local(4);
    genesis.validators[0].tier = Tier::Gold;
    let config = timecoin_consensus::Config::new(genesis.params.chain_id);
    let mut net = Net::with_config(genesis.clone(), config.clone());
    net.nodes[0].up = false;
    net.start();
    assert!(
        !net.run_until(50, |n| n.min_decided() >= 1),
        "without Gold no quorum"
    );

    let mut net = Net::with_config(genesis, config);
    net.nodes[3].up = false;
    net.start();
    assert!(
        net.run_until(1_000, |n| n.min_decided() >= 2),
        "Gold + 2 Bronze = 70/80"
    );
    net.assert_agreement();
}

#[test]
fn two_of_four_down_never_decides_and_never_disagrees() {
    let mut net = Net::new(4);
    net.nodes[2].up = false;
    net.nodes[3].up = false;
    net.start();
    assert!(!net.run_until(60, |n| n.min_decided() >= 1));
    assert!(net.nodes.iter().all(|n| n.decided.is_empty()));
}

/// Seeds for the reorder-and-loss scenario; `CONSENSUS_SEEDS` raises the count.
fn seeds() -> u64 {
    std::env::var("CONSENSUS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

#[test]
fn reordered_and_lossy_delivery_keeps_agreement_and_progress() {
    for seed in 0..seeds() {
        let mut net = Net::new(4);
        net.shuffle = Some(seed);
        let mut loss = seed ^ 0xDEAD_BEEF;
        net.drop = Box::new(move |_, _, _m: &Message| next_random(&mut loss) % 100 < 20);
        net.start();
        let ok = net.run_until(5_000, |n| n.min_decided() >= 3);
        net.assert_agreement();
        if !ok {
            for n in &net.nodes {
                eprintln!(
                    "node {}: decided {} round {:?} held {}",
                    n.index,
                    n.decided.len(),
                    n.core.round_state(),
                    n.core.votes_held()
                );
            }
        }
        assert!(
            ok,
            "seed {seed}: no progress under 20% loss (replay: CONSENSUS_SEEDS={} cargo test -p timecoin-consensus --test multi_node)",
            seed + 1
        );
    }
}

#[test]
fn validators_crashing_mid_height_restart_from_their_wal_and_the_network_agrees() {
    for seed in 0..seeds() {
        let mut net = Net::new(4);
        net.shuffle = Some(seed);
        net.start();
        let mut rng = seed.wrapping_mul(31) + 7;
        // Crash a random node after a random number of deliveries, ten times.
        for _ in 0..10 {
            let steps = next_random(&mut rng) % 40;
            let target = net.delivered + steps;
            net.run_until(1_000, |n| n.delivered >= target);
            let victim = (next_random(&mut rng) % 4) as usize;
            net.crash_and_restart(victim);
        }
        let ok = net.run_until(5_000, |n| n.min_decided() >= 4);
        net.assert_agreement();
        assert!(ok, "seed {seed}: no progress after restarts");
        // Every node's WAL shows one message per slot.
        for node in &net.nodes {
            let mut slots = std::collections::BTreeMap::new();
            for e in &node.wal {
                let slot = match e {
                    WalEntry::Proposed(p) => (p.height, p.view, 0u8),
                    WalEntry::Voted(v) => (v.height, v.view, 1 + v.phase as u8),
                };
                if let Some(previous) = slots.insert(slot, e.clone()) {
                    assert_eq!(
                        &previous, e,
                        "seed {seed}: node {} signed twice",
                        node.index
                    );
                }
            }
        }
    }
}

#[test]
fn a_double_voter_is_caught_and_the_honest_validators_still_agree() {
    let mut net = Net::new(4);
    let chain = net.chain;
    // Validator 3 sends its real votes, and to validator 0 also a conflicting nil vote.
    net.rewrite = Box::new(move |from, to, m| match (&m, from, to) {
        (Message::Vote(v), 3, 0) if v.block_hash.is_some() => {
            let twin = Vote::sign(&key(3), chain, v.phase, v.height, v.view, None);
            vec![m.clone(), Message::Vote(twin)]
        }
        _ => vec![m],
    });
    net.start();
    assert!(net.run_until(1_000, |n| n.min_decided() >= 3));
    net.assert_agreement();
    let evidence = &net.nodes[0].evidence;
    assert!(!evidence.is_empty());
    for e in evidence {
        assert!(matches!(e, Evidence::DoubleVote { .. }));
        assert_eq!(e.offender(), key(3).public_key());
        e.verify(chain).unwrap();
    }
    assert!(
        net.nodes[1].evidence.is_empty(),
        "validator 1 saw one vote per slot"
    );
}
