//! Several cores talking through an in-process router: agreement, liveness without timeouts on a
//! healthy network, view changes, weights, seeded reordering with loss, and a targeted schedule that
//! only the lock rule keeps safe (with its negative control under the `fault-injection` feature).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeSet;

use common::{Net, key, next_random};
use timecoin_consensus::{Config, Evidence, Message};
use timecoin_types::{BlockHash, Genesis, Tier, Vote, VotePhase};

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
                let slot = match e.clone().into_message() {
                    Message::Proposal(p) => (p.height, p.view, 0u8),
                    Message::Vote(v) => (v.height, v.view, 1 + v.phase as u8),
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

/// The roles of the lock-rule schedule on four validators (quorum: 3 of 4): `z` leads view 1 of height 1
/// and `x` view 0; `d` and `y` are the other two.
#[derive(Clone, Copy)]
struct LockSplit {
    d: usize,
    x: usize,
    y: usize,
    z: usize,
}

impl LockSplit {
    fn new(net: &Net) -> LockSplit {
        let index = |view| {
            (0..4)
                .find(|i| key(*i).public_key() == *net.validators.leader(1, view))
                .unwrap()
        };
        let (x, z) = (index(0), index(1));
        assert_ne!(
            x, z,
            "precondition: views 0 and 1 of height 1 have different leaders"
        );
        let mut rest = (0..4).filter(|i| *i != x && *i != z);
        let (d, y) = (rest.next().unwrap(), rest.next().unwrap());
        LockSplit { d, x, y, z }
    }

    /// Whether a Commit for a block in view 0 of height 1 from `from` reaches `to`. Only `d` ever holds a
    /// Commit quorum: it gets `x`'s and `y`'s; `x` and `y` get `d`'s but not each other's, two each; `z`
    /// gets `x`'s and `y`'s but never holds the block. Some such Commit must reach `z`: `z` needs three
    /// Commits of anything (L47) to leave view 0, and since `x`, `y` and `z` must make a quorum without
    /// `d`, `z` and `d` alone cannot.
    fn commit_reaches(&self, from: usize, to: usize) -> bool {
        if from == self.d {
            to == self.x || to == self.y
        } else {
            to == self.d || to == self.z
        }
    }

    /// The distinct blocks decided at height 1, over all nodes.
    fn decided_at_1(net: &Net) -> BTreeSet<BlockHash> {
        net.nodes
            .iter()
            .filter_map(|n| n.decided.first().map(|(b, _)| b.hash()))
            .collect()
    }
}

/// A targeted schedule that only the lock rule (L23, L29) keeps safe. View 0: `x` proposes A, which
/// never reaches `z`; `d`, `x`, `y` Prepare A, lock on it and Commit it, `z` Prepares and Commits nil
/// after its timers; `d` alone receives a Commit quorum and decides A. View 1: `z`, never locked, leads
/// and proposes a fresh block B, which only `x`'s and `y`'s locks can refuse. Host-level sync is off, so
/// `d` never hands its certificate to the others. Runs until `x`, `y` and `z` have each decided height
/// 1 or left view 1, checking after every delivery that no two nodes decided different blocks unless
/// `split_expected`.
fn lock_split_schedule(config: Config, split_expected: bool) -> (Net, LockSplit) {
    let genesis = Genesis::local(4);
    let mut net = Net::with_config(genesis, config);
    let roles = LockSplit::new(&net);
    let LockSplit { d, x, y, z } = roles;
    net.sync = false;
    net.drop = Box::new(move |from, to, m| match m {
        Message::Proposal(p) => p.height == 1 && p.view == 0 && to == z,
        Message::Vote(v) => {
            v.height == 1
                && v.view == 0
                && v.phase == VotePhase::Commit
                && v.block_hash.is_some()
                && !roles.commit_reaches(from, to)
        }
    });
    net.start();
    let done = net.run_until(200, |n| {
        assert!(
            split_expected || LockSplit::decided_at_1(n).len() <= 1,
            "two blocks decided at height 1"
        );
        [x, y, z].iter().all(|i| {
            let node = &n.nodes[*i];
            !node.decided.is_empty() || node.core.round_state().is_some_and(|r| r.view >= 2)
        })
    });
    assert!(done, "the schedule did not play out");
    // It played out as designed: `d` decided A in view 0, `z` proposed another block in view 1.
    let (a, certificate) = net.nodes[d].decided.first().cloned().expect("d decided");
    assert_eq!((a.header.view, certificate.view), (0, 0));
    let b = net.nodes[z]
        .sent
        .iter()
        .find_map(|m| match m {
            Message::Proposal(p) if p.height == 1 && p.view == 1 => Some(p.block.hash()),
            _ => None,
        })
        .expect("z proposed in view 1");
    assert_ne!(b, a.hash(), "z proposes a fresh block");
    (net, roles)
}

/// With the lock rule, the schedule stays safe: `x` and `y`, locked on A, Prepare nil for B; and the
/// height still finishes, on A, for every node, through later views (a re-proposal of A with its proof
/// of lock from view 0), with the same losses and no sync.
#[test]
fn the_lock_rule_keeps_a_targeted_split_schedule_safe_and_it_still_decides() {
    let genesis = Genesis::local(4);
    let config = Config::new(genesis.params.chain_id);
    let (mut net, roles) = lock_split_schedule(config, false);
    let a = net.nodes[roles.d].decided[0].0.hash();
    for i in [roles.x, roles.y] {
        assert!(
            net.nodes[i].decided.is_empty(),
            "node {i} saw no Commit quorum"
        );
        let locked = net.nodes[i].core.round_state().and_then(|r| r.locked);
        assert_eq!(locked.map(|l| (l.view, l.block_hash)), Some((0, a)));
        let prepare_1 = net.nodes[i].sent.iter().find_map(|m| match m {
            Message::Vote(v) if v.height == 1 && v.view == 1 && v.phase == VotePhase::Prepare => {
                Some(v.block_hash)
            }
            _ => None,
        });
        assert_eq!(
            prepare_1,
            Some(None),
            "node {i} is locked on A: nil for B (L23)"
        );
    }
    assert_eq!(
        LockSplit::decided_at_1(&net)
            .into_iter()
            .collect::<Vec<_>>(),
        vec![a]
    );
    let finished = net.run_until(500, |n| {
        assert!(
            LockSplit::decided_at_1(n).len() <= 1,
            "two blocks decided at height 1"
        );
        n.min_decided() >= 2
    });
    assert!(finished, "the height never finished after the schedule");
    net.assert_agreement();
    assert!(net.nodes.iter().all(|n| n.decided[0].0.hash() == a));
    for i in [roles.x, roles.y, roles.z] {
        assert!(
            net.nodes[i].decided[0].1.view >= 2,
            "node {i} decided A in a later view"
        );
    }
}

/// The negative control: the same schedule with the lock rule switched off splits the network. `x` and
/// `y` forget their lock and Prepare B with `z`, which makes a quorum without `d`: they decide B at the
/// height where `d` decided A.
#[cfg(feature = "fault-injection")]
#[test]
fn without_the_lock_rule_the_targeted_schedule_decides_two_blocks_at_one_height() {
    let genesis = Genesis::local(4);
    let mut config = Config::new(genesis.params.chain_id);
    config.faults.ignore_lock = true;
    let (net, roles) = lock_split_schedule(config, true);
    let a = net.nodes[roles.d].decided[0].0.hash();
    let decided = LockSplit::decided_at_1(&net);
    assert_eq!(decided.len(), 2, "a split: two blocks decided at height 1");
    for i in [roles.x, roles.y, roles.z] {
        let (block, certificate) = &net.nodes[i].decided[0];
        assert_ne!(block.hash(), a, "node {i} decided B");
        assert_eq!((block.header.height, certificate.view), (1, 1));
    }
}
