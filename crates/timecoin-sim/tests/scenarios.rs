//! Many-node scenarios over many seeds: Byzantine strategies, partitions, loss, crashes and restarts,
//! weighted validator sets, and a negative control proving the invariant checker catches a split.
//!
//! Each scenario runs `SIM_SEEDS` seeds (default 100). A failure prints the seed, the error, the state of
//! every node and the command that replays just that seed:
//! `SIM_SEED=<seed> cargo test -p timecoin-sim --test scenarios <scenario> -- --exact`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::BTreeSet;

use timecoin_consensus::ValidatorSet;
use timecoin_crypto::Address;
use timecoin_mempool::Mempool;
use timecoin_sim::runtime::{Millis, NetworkConfig, NodeId};
use timecoin_sim::{Behavior, LIVENESS_BOUND_MS, SimConfig, SimError, Simulation, Violation};
use timecoin_types::{
    Amount, Genesis, Height, MasternodeRegistration, OutPoint, Tier, Transaction, TxBuilder, TxId,
    TxKind,
};

/// The seeds to run: `SIM_SEED` alone if set, else `0..SIM_SEEDS` (default 100).
fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        return vec![seed.parse().expect("SIM_SEED must be a number")];
    }
    let count = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    (0..count).collect()
}

/// A failed seed: the error with the state of every node.
struct Failure(String);

fn fail(sim: &Simulation, error: impl std::fmt::Display) -> Failure {
    Failure(format!("{error}\n{}", sim.report()))
}

fn ensure(condition: bool, sim: &Simulation, what: &str) -> Result<(), Failure> {
    if condition {
        Ok(())
    } else {
        Err(fail(sim, what))
    }
}

/// Runs `scenario` for every seed and panics with every failed seed and the command replaying it (`test`
/// is the test function's name; `label` adds the variant, such as the network size). Each run returns a
/// duration it measured (e.g. the time to progress after a heal); the worst is printed.
fn over_seeds(
    test: &str,
    label: &str,
    scenario: impl Fn(u64) -> Result<Millis, Failure>,
) -> Millis {
    let name = format!("{test}{label}");
    let seeds = seeds();
    let mut failures = Vec::new();
    let mut worst = 0;
    // Wall time, for the report only; the runs themselves never read a clock.
    let started = std::time::Instant::now();
    for &seed in &seeds {
        match scenario(seed) {
            Ok(measured) => worst = worst.max(measured),
            Err(Failure(why)) => failures.push((seed, why)),
        }
    }
    println!(
        "{name}: {} seeds, {} failed, worst measured {worst} ms (simulated), {:.1} s wall",
        seeds.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some((seed, why)) = failures.first() {
        let all: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
        panic!(
            "{name} failed for {} of {} seeds {all:?}\nfirst failure, seed {seed}: {why}\nreplay: SIM_SEED={seed} cargo test -p timecoin-sim --test scenarios {test} -- --exact",
            failures.len(),
            seeds.len()
        );
    }
    worst
}

fn new_sim(config: SimConfig) -> Result<Simulation, Failure> {
    Simulation::new(config).map_err(|e| Failure(format!("setup: {e}")))
}

/// `f` distinct validators that lead early heights (starting at a seed-dependent height), so Byzantine
/// leaders actually lead.
fn early_leaders(n: usize, f: usize, seed: u64) -> Vec<usize> {
    let genesis = Genesis::local(n);
    let set = ValidatorSet::from_genesis(&genesis).unwrap();
    let keys: Vec<_> = (0..n)
        .map(|i| Genesis::local_validator_key(i).public_key())
        .collect();
    let mut chosen = Vec::new();
    let mut height = 1 + seed % 3;
    while chosen.len() < f {
        let leader = keys
            .iter()
            .position(|k| k == set.leader(height, 0))
            .unwrap();
        if !chosen.contains(&leader) {
            chosen.push(leader);
        }
        height += 1;
    }
    chosen
}

const HEIGHTS: Height = 3;
const DEADLINE: Millis = 120_000;

/// `f = (n − 1) / 3` validators of `behavior` among `n`; honest nodes must finalize [`HEIGHTS`] heights
/// in agreement. Returns the time it took.
fn byzantine_run(seed: u64, n: usize, behavior: &Behavior) -> Result<Millis, Failure> {
    let f = (n - 1) / 3;
    let mut config = SimConfig::new(seed, n);
    for index in early_leaders(n, f, seed) {
        config = config.with_behavior(index, behavior.clone());
    }
    let mut sim = new_sim(config)?;
    let took = sim
        .run_until_height(HEIGHTS, DEADLINE)
        .map_err(|e| fail(&sim, e))?;
    let honest = sim.honest_nodes();
    let total = |stat: fn(&timecoin_sim::NodeStats) -> u64| -> u64 {
        honest
            .iter()
            .map(|i| stat(&sim.node(*i).unwrap().stats()))
            .sum()
    };
    match behavior {
        Behavior::BadSigner => ensure(
            total(|s| s.rejected_signature) > 0,
            &sim,
            "bad signatures must be refused at the door",
        )?,
        Behavior::DoubleVoter => ensure(
            total(|s| s.evidence) > 0,
            &sim,
            "double votes must produce evidence",
        )?,
        Behavior::BodySwapper => ensure(
            total(|s| s.malformed) > 0,
            &sim,
            "proposals with swapped bodies must be refused at decoding",
        )?,
        _ => {}
    }
    Ok(took)
}

fn byzantine_scenario(name: &str, behavior: Behavior) {
    for n in [4, 7] {
        over_seeds(name, &format!(" (n={n})"), |seed| {
            byzantine_run(seed, n, &behavior)
        });
    }
}

#[test]
fn silent_validators_cannot_stop_finality() {
    byzantine_scenario("silent_validators_cannot_stop_finality", Behavior::Silent);
}

#[test]
fn equivocating_leaders_never_split_honest_nodes() {
    byzantine_scenario(
        "equivocating_leaders_never_split_honest_nodes",
        Behavior::EquivocatingLeader,
    );
}

#[test]
fn double_voters_are_caught_and_never_split_honest_nodes() {
    byzantine_scenario(
        "double_voters_are_caught_and_never_split_honest_nodes",
        Behavior::DoubleVoter,
    );
}

/// The exact runs that stalled for good before re-proposals carried their proof of lock (finding 3:
/// honest nodes still at height 1 after 120 s); kept as regression tests whatever `SIM_SEEDS` says.
#[test]
fn double_voter_seeds_555_and_672_that_once_stalled_now_finish() {
    for seed in [555, 672] {
        if let Err(Failure(why)) = byzantine_run(seed, 4, &Behavior::DoubleVoter) {
            panic!("double voter, n=4, seed {seed}: {why}");
        }
    }
}

/// The targeted adversary of issue 8: each view, every Byzantine validator shows its block votes to one
/// honest node only and nil to the rest, to split proofs of lock as far as its keys can.
#[test]
fn lock_splitters_cannot_hide_a_proof_of_lock() {
    byzantine_scenario(
        "lock_splitters_cannot_hide_a_proof_of_lock",
        Behavior::LockSplitter,
    );
}

#[test]
fn vote_withholders_cannot_stop_finality() {
    byzantine_scenario(
        "vote_withholders_cannot_stop_finality",
        Behavior::VoteWithholder,
    );
}

#[test]
fn replayed_old_messages_are_harmless() {
    byzantine_scenario("replayed_old_messages_are_harmless", Behavior::Replayer);
}

#[test]
fn bad_signatures_are_refused_before_the_core() {
    byzantine_scenario(
        "bad_signatures_are_refused_before_the_core",
        Behavior::BadSigner,
    );
}

#[test]
fn body_swapping_relays_never_split_honest_state() {
    byzantine_scenario(
        "body_swapping_relays_never_split_honest_state",
        Behavior::BodySwapper,
    );
}

/// A restarted node whose only reachable peer is a body-swapping relay gets nothing but forged synced
/// blocks: it must refuse every one (so it stays where it was, with the state it had) and catch up from
/// honest peers once it reaches them.
#[test]
fn a_node_syncing_from_a_body_swapper_refuses_every_forged_block_then_catches_up() {
    over_seeds(
        "a_node_syncing_from_a_body_swapper_refuses_every_forged_block_then_catches_up",
        "",
        |seed| {
            let swapper = (seed % 4) as NodeId;
            let laggard = ((seed + 1) % 4) as NodeId;
            let mut config = SimConfig::new(seed, 4).with_behavior(swapper, Behavior::BodySwapper);
            config.auto_restart_ms = None;
            let mut sim = new_sim(config)?;
            sim.crash(laggard).map_err(|e| fail(&sim, e))?;
            let target = 3;
            let reached = sim
                .run_while(DEADLINE, |s| {
                    (0..4)
                        .filter(|i| *i != laggard)
                        .all(|i| s.heights()[i] >= target)
                })
                .map_err(|e| fail(&sim, e))?;
            ensure(
                reached,
                &sim,
                "three nodes did not finalize without the laggard",
            )?;
            let stuck_at = sim.heights()[laggard];
            let others: Vec<NodeId> = (0..4).filter(|i| *i != laggard && *i != swapper).collect();
            sim.partition(&[&[laggard, swapper], &others]);
            sim.restart(laggard).map_err(|e| fail(&sim, e))?;
            sim.run_for(5_000).map_err(|e| fail(&sim, e))?;
            let laggard_stats = sim.node(laggard).unwrap().stats();
            ensure(
                laggard_stats.malformed > 0,
                &sim,
                "the swapper served no forged block",
            )?;
            ensure(
                sim.heights()[laggard] == stuck_at && laggard_stats.synced == 0,
                &sim,
                "a forged synced block was applied",
            )?;
            sim.heal();
            let heal = sim.now();
            let caught_up = sim
                .run_while(heal + LIVENESS_BOUND_MS, |s| s.heights()[laggard] >= target)
                .map_err(|e| fail(&sim, e))?;
            ensure(
                caught_up,
                &sim,
                "the laggard did not catch up after the heal",
            )?;
            Ok(sim.now() - heal)
        },
    );
}

#[test]
fn twins_sharing_a_key_never_split_honest_nodes() {
    for n in [4, 7] {
        over_seeds(
            "twins_sharing_a_key_never_split_honest_nodes",
            &format!(" (n={n})"),
            |seed| {
                let f = (n - 1) / 3;
                let mut config = SimConfig::new(seed, n);
                for index in early_leaders(n, f, seed) {
                    config = config.with_twin(index);
                }
                let mut sim = new_sim(config)?;
                sim.run_until_height(HEIGHTS, DEADLINE)
                    .map_err(|e| fail(&sim, e))
            },
        );
    }
}

#[test]
fn two_two_partition_neither_progresses_nor_diverges_then_heals() {
    let worst = over_seeds(
        "two_two_partition_neither_progresses_nor_diverges_then_heals",
        "",
        |seed| {
            let mut sim = new_sim(SimConfig::new(seed, 4))?;
            sim.run_until_height(1, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            sim.partition(&[&[0, 1], &[2, 3]]);
            // Messages already on the wire still land; after that nobody may finalize anything.
            sim.run_for(1_000).map_err(|e| fail(&sim, e))?;
            let frozen = sim.heights();
            sim.run_for(10_000 + seed % 5_000)
                .map_err(|e| fail(&sim, e))?;
            ensure(
                sim.heights() == frozen,
                &sim,
                "a half with half the weight finalized",
            )?;
            sim.heal();
            sim.await_progress(LIVENESS_BOUND_MS)
                .map_err(|e| fail(&sim, e))
        },
    );
    assert!(worst <= LIVENESS_BOUND_MS);
}

#[test]
fn three_one_partition_lets_three_progress_and_the_one_catch_up() {
    over_seeds(
        "three_one_partition_lets_three_progress_and_the_one_catch_up",
        "",
        |seed| {
            let mut sim = new_sim(SimConfig::new(seed, 4))?;
            sim.run_until_height(1, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let alone = (seed % 4) as NodeId;
            let rest: Vec<NodeId> = (0..4).filter(|i| *i != alone).collect();
            sim.partition(&[&rest, &[alone]]);
            sim.run_for(1_000).map_err(|e| fail(&sim, e))?;
            let stuck_at = sim.heights()[alone];
            let target = sim.agreed_height() + 3;
            let start = sim.now();
            sim.run_while(start + DEADLINE, |s| {
                rest.iter().all(|i| s.heights()[*i] >= target)
            })
            .map_err(|e| fail(&sim, e))?;
            ensure(
                rest.iter().all(|i| sim.heights()[*i] >= target),
                &sim,
                "the three did not progress",
            )?;
            ensure(
                sim.heights()[alone] == stuck_at,
                &sim,
                "the isolated node finalized alone",
            )?;
            sim.heal();
            let heal = sim.now();
            let caught_up = sim
                .run_while(heal + LIVENESS_BOUND_MS, |s| s.heights()[alone] >= target)
                .map_err(|e| fail(&sim, e))?;
            ensure(caught_up, &sim, "the isolated node did not catch up")?;
            Ok(sim.now() - heal)
        },
    );
}

#[test]
fn thirty_percent_loss_keeps_agreement_and_progress() {
    for n in [4, 7] {
        over_seeds(
            "thirty_percent_loss_keeps_agreement_and_progress",
            &format!(" (n={n})"),
            |seed| {
                let mut config = SimConfig::new(seed, n);
                config.network = NetworkConfig {
                    loss_ppm: 300_000,
                    duplicate_ppm: 20_000,
                    ..NetworkConfig::default()
                };
                let mut sim = new_sim(config)?;
                sim.run_until_height(HEIGHTS, DEADLINE)
                    .map_err(|e| fail(&sim, e))
            },
        );
    }
}

#[test]
fn a_crashed_leader_is_replaced_and_catches_up_after_restart() {
    over_seeds(
        "a_crashed_leader_is_replaced_and_catches_up_after_restart",
        "",
        |seed| {
            let mut config = SimConfig::new(seed, 4);
            config.auto_restart_ms = None;
            let mut sim = new_sim(config)?;
            sim.run_until_height(1, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let next = sim.agreed_height() + 1;
            let leader = sim.leader(next, 0);
            if seed.is_multiple_of(2) {
                sim.crash(leader).map_err(|e| fail(&sim, e))?;
            } else {
                // Dies right after writing its next message, before sending it.
                sim.crash_after_persist(leader, 1)
                    .map_err(|e| fail(&sim, e))?;
            }
            let took = sim
                .await_progress(LIVENESS_BOUND_MS)
                .map_err(|e| fail(&sim, e))?;
            sim.run_for(seed % 3_000).map_err(|e| fail(&sim, e))?;
            if sim.runtime().is_up(leader) {
                sim.crash(leader).map_err(|e| fail(&sim, e))?;
            }
            sim.restart(leader).map_err(|e| fail(&sim, e))?;
            let target = sim.agreed_height() + 1;
            sim.run_until_height(target, sim.now() + LIVENESS_BOUND_MS)
                .map_err(|e| fail(&sim, e))?;
            Ok(took)
        },
    );
}

#[test]
fn rolling_restarts_keep_agreement_and_progress() {
    over_seeds("rolling_restarts_keep_agreement_and_progress", "", |seed| {
        let mut sim = new_sim(SimConfig::new(seed, 4))?;
        let mut worst = 0;
        for node in 0..4 {
            let target = sim.agreed_height() + 1;
            if (seed + node as u64).is_multiple_of(2) {
                sim.crash(node).map_err(|e| fail(&sim, e))?;
                sim.run_for(200 + seed % 800).map_err(|e| fail(&sim, e))?;
                sim.restart(node).map_err(|e| fail(&sim, e))?;
            } else {
                // Crash between a WAL write and its broadcast; restarted 500 ms later by the driver.
                sim.crash_after_persist(node, 1 + (seed % 3) as u32)
                    .map_err(|e| fail(&sim, e))?;
            }
            let took = sim
                .run_until_height(target, sim.now() + LIVENESS_BOUND_MS)
                .map_err(|e| fail(&sim, e))?;
            worst = worst.max(took);
        }
        let all = sim.agreed_height();
        sim.run_until_height(all, sim.now() + LIVENESS_BOUND_MS)
            .map_err(|e| fail(&sim, e))?;
        let restarts: u32 = (0..4)
            .map(|i| sim.node(i).unwrap().durable().restarts)
            .sum();
        ensure(restarts >= 1, &sim, "no node was restarted")?;
        Ok(worst)
    });
}

#[test]
fn crashes_between_persist_and_broadcast_never_make_honest_nodes_equivocate() {
    over_seeds(
        "crashes_between_persist_and_broadcast_never_make_honest_nodes_equivocate",
        "",
        |seed| {
            let mut config = SimConfig::new(seed, 4);
            config.network.loss_ppm = 50_000;
            let mut sim = new_sim(config)?;
            // Every 700 ms, arm one node to die after one of its next few WAL writes; the driver brings
            // it back 500 ms after it dies. One node down at a time keeps the faulty weight below 1/3.
            let mut round = 0u64;
            while sim.min_honest_height() < 4 && sim.now() < DEADLINE {
                let node = ((seed + round) % 4) as NodeId;
                let any_down = (0..4).any(|i| !sim.runtime().is_up(i));
                if !any_down {
                    sim.crash_after_persist(node, 1 + ((seed + round) % 4) as u32)
                        .map_err(|e| fail(&sim, e))?;
                }
                sim.run_for(700).map_err(|e| fail(&sim, e))?;
                round += 1;
            }
            sim.run_until_height(4, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            // A node that died just before height 4 comes back 500 ms later: let it, and let the chain
            // go on with it, so the check below sees every crash that fired (seed 917 reached height 4
            // with node 1 still down).
            sim.run_for(1_000).map_err(|e| fail(&sim, e))?;
            let next = sim.min_honest_height() + 1;
            sim.run_until_height(next, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let restarts: u32 = (0..4)
                .map(|i| sim.node(i).unwrap().durable().restarts)
                .sum();
            ensure(restarts >= 1, &sim, "the crash hook never fired")?;
            Ok(sim.now())
        },
    );
}

/// Gold (50) + 4 Bronze (10 each): 90 in all, a quorum needs more than 60.
fn gold_and_bronze(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed, 5);
    config.genesis.validators[0].tier = Tier::Gold;
    config.consensus = SimConfig::fast_consensus(&config.genesis);
    config
}

#[test]
fn weighted_set_needs_gold_plus_two_bronze() {
    over_seeds("weighted_set_needs_gold_plus_two_bronze", "", |seed| {
        // Without Gold, the four Bronze hold 40 of 90: no quorum, nothing final, ever.
        let mut sim = new_sim(gold_and_bronze(seed))?;
        sim.crash(0).map_err(|e| fail(&sim, e))?;
        sim.run_for(15_000).map_err(|e| fail(&sim, e))?;
        ensure(
            sim.agreed_height() == 0,
            &sim,
            "four Bronze finalized without Gold",
        )?;
        // Gold back: 90 of 90, progress within the bound.
        sim.restart(0).map_err(|e| fail(&sim, e))?;
        let took = sim
            .await_progress(LIVENESS_BOUND_MS)
            .map_err(|e| fail(&sim, e))?;

        // Gold + 1 Bronze = 60: exactly two thirds, not a quorum.
        let mut sim = new_sim(gold_and_bronze(seed))?;
        for bronze in 2..5 {
            sim.crash(bronze).map_err(|e| fail(&sim, e))?;
        }
        sim.run_for(15_000).map_err(|e| fail(&sim, e))?;
        ensure(
            sim.agreed_height() == 0,
            &sim,
            "Gold and one Bronze finalized",
        )?;

        // Gold + 2 Bronze = 70 > 60: finalizes with two Bronze down.
        let mut sim = new_sim(gold_and_bronze(seed))?;
        sim.crash(3).map_err(|e| fail(&sim, e))?;
        sim.crash(4).map_err(|e| fail(&sim, e))?;
        sim.run_until_height(HEIGHTS, DEADLINE)
            .map_err(|e| fail(&sim, e))?;
        let certificate = &sim.node(0).unwrap().durable().finalized(1).unwrap().1;
        ensure(
            certificate.signatures.len() == 3,
            &sim,
            "a certificate of Gold + 2 Bronze has three signatures",
        )?;
        Ok(took)
    });
}

#[test]
fn same_seed_replays_the_same_trace_and_other_seeds_differ() {
    let run = |seed: u64| {
        let mut config = SimConfig::new(seed, 4).with_behavior(1, Behavior::Replayer);
        config.network = NetworkConfig {
            loss_ppm: 100_000,
            duplicate_ppm: 50_000,
            ..NetworkConfig::default()
        };
        let mut sim = Simulation::new(config).unwrap();
        sim.crash_after_persist(2, 3).unwrap();
        sim.run_until_height(4, DEADLINE).unwrap();
        (sim.trace_digest(), sim.events(), sim.heights())
    };
    let mut digests = BTreeSet::new();
    for seed in seeds().into_iter().take(10) {
        let first = run(seed);
        assert_eq!(
            first,
            run(seed),
            "seed {seed} did not replay (SIM_SEED={seed} cargo test -p timecoin-sim --test scenarios same_seed_replays_the_same_trace_and_other_seeds_differ -- --exact)"
        );
        digests.insert(first.0);
    }
    let runs = seeds().len().min(10);
    assert_eq!(digests.len(), runs, "different seeds gave the same trace");
}

/// Negative control: with two twin pairs among four validators (faulty weight 1/2, above the 1/3 the
/// protocol tolerates) and the two honest nodes cut off from each other, each honest node lives in a
/// world where it and two faulty keys form a quorum. The checker must catch the resulting split.
#[test]
fn the_checker_catches_a_split_when_more_than_a_third_equivocates() {
    let seeds = seeds();
    let mut caught = 0;
    for &seed in &seeds {
        let config = SimConfig::new(seed, 4);
        let faulty = early_leaders(4, 2, seed);
        let mut config = faulty
            .iter()
            .fold(config, |config, index| config.with_twin(*index));
        config.auto_restart_ms = None;
        let mut sim = Simulation::new(config).unwrap();
        let honest = sim.honest_nodes();
        assert_eq!(honest.len(), 2);
        sim.runtime_mut().block_link(honest[0], honest[1]);
        sim.runtime_mut().block_link(honest[1], honest[0]);
        match sim.run_until_height(3, 30_000) {
            Err(SimError::Violation { violation, .. }) => {
                assert!(
                    matches!(*violation, Violation::ConflictingBlocks { .. }),
                    "seed {seed}: {violation}"
                );
                caught += 1;
            }
            Err(SimError::Stalled { .. }) | Ok(_) => {}
            Err(other) => panic!("seed {seed}: {other}"),
        }
    }
    println!(
        "negative control: the checker caught a split in {caught} of {} seeds",
        seeds.len()
    );
    assert!(
        caught >= 1,
        "no seed produced a violation: the checker would miss a split"
    );
}

// ---------------------------------------------------------------------------------------------------
// Workloads of real wallet transactions, membership changes and late joiners, all through the engine.

/// The genesis coin of local validator `owner` and a transfer of all but `fee` of it, minus 5 TIME of
/// change back to the owner, paid to `payee`'s address.
fn genesis_transfer(genesis: &Genesis, owner: usize, payee: usize, fee: u64) -> Transaction {
    let key = Genesis::local_validator_key(owner);
    let (coin, out) = genesis.utxos()[owner];
    let change = Amount::from_time(5).unwrap();
    TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(
            local_address(payee),
            Amount::from_sat(out.amount.as_sat() - change.as_sat() - fee),
        )
        .output(out.address, change)
        .sign()
}

fn local_address(i: usize) -> Address {
    Address::from_public_key(&Genesis::local_validator_key(i).public_key())
}

/// The height at which node `id`'s chain holds `txid`, if it does.
fn included_at(sim: &Simulation, id: NodeId, txid: &TxId) -> Option<Height> {
    let node = sim.node(id)?;
    (1..=node.finalized_height()).find(|h| {
        node.durable()
            .finalized(*h)
            .is_some_and(|(block, _)| block.transactions.iter().any(|tx| tx.txid() == *txid))
    })
}

/// Submits `tx` to node `to` and runs until every honest node's chain holds it; returns its height.
fn submit_and_finalize(
    sim: &mut Simulation,
    to: NodeId,
    tx: Transaction,
) -> Result<Height, Failure> {
    let txid = tx.txid();
    sim.submit(to, tx).map_err(|e| fail(sim, e))?;
    let honest = sim.honest_nodes();
    let deadline = sim.now() + DEADLINE;
    let done = sim
        .run_while(deadline, |sim| {
            honest.iter().all(|i| included_at(sim, *i, &txid).is_some())
        })
        .map_err(|e| fail(sim, e))?;
    ensure(done, sim, "a submitted transaction was never finalized")?;
    included_at(sim, 0, &txid).ok_or_else(|| fail(sim, "lost the transaction"))
}

/// Two spends of one coin, paying different addresses, handed to two different nodes at the same
/// instant: the chain takes exactly one, every pool forgets the other, and the honest nodes agree.
#[test]
fn conflicting_spends_sent_to_two_nodes_at_once_finalize_exactly_one() {
    over_seeds(
        "conflicting_spends_sent_to_two_nodes_at_once_finalize_exactly_one",
        "",
        |seed| {
            let mut config = SimConfig::new(seed, 4);
            config.txs_per_block = 0;
            let genesis = config.genesis.clone();
            let mut sim = new_sim(config)?;
            sim.run_until_height(1, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let first = genesis_transfer(&genesis, 0, 5, 1_000);
            let second = genesis_transfer(&genesis, 0, 6, 1_000);
            ensure(
                first.txid() != second.txid(),
                &sim,
                "the spends must differ",
            )?;
            let started = sim.now();
            sim.submit(0, first.clone()).map_err(|e| fail(&sim, e))?;
            sim.submit(2, second.clone()).map_err(|e| fail(&sim, e))?;
            let honest = sim.honest_nodes();
            let deadline = sim.now() + DEADLINE;
            let (a, b) = (first.txid(), second.txid());
            let settled = sim
                .run_while(deadline, |sim| {
                    honest.iter().all(|i| {
                        included_at(sim, *i, &a).is_some() || included_at(sim, *i, &b).is_some()
                    })
                })
                .map_err(|e| fail(&sim, e))?;
            ensure(settled, &sim, "neither spend was finalized")?;
            // A few more heights: the loser must never follow the winner.
            let target = sim.min_honest_height() + 3;
            sim.run_until_height(target, sim.now() + DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            for i in &honest {
                let node = sim.node(*i).unwrap();
                let both = [a, b]
                    .iter()
                    .filter(|t| included_at(&sim, *i, t).is_some())
                    .count();
                ensure(
                    both == 1,
                    &sim,
                    "exactly one of the two spends is in the chain",
                )?;
                ensure(
                    !node.pool().contains(&a) && !node.pool().contains(&b),
                    &sim,
                    "every pool forgot both spends once one was final",
                )?;
            }
            Ok(sim.now() - started)
        },
    );
}

/// A collateral output, then a registration naming node 4's key: after the validator-set delay node 4
/// is in every node's set and signs certificates. Returns the simulation and the registration's height.
fn register_node_four(seed: u64) -> Result<(Simulation, Transaction, Height), Failure> {
    let mut config = SimConfig::new(seed, 4);
    config.txs_per_block = 0;
    config.extra_nodes = 1;
    register_node_four_in(config)
}

/// [`register_node_four`] in a simulation of `config` (which must have node 4 as an extra node).
fn register_node_four_in(config: SimConfig) -> Result<(Simulation, Transaction, Height), Failure> {
    let genesis = config.genesis.clone();
    let chain = genesis.params.chain_id;
    let owner = Genesis::local_validator_key(0);
    let mut sim = new_sim(config)?;
    let (coin, out) = genesis.utxos()[0];
    let collateral = Tier::Bronze.collateral();
    let fee = Amount::from_sat(1_000);
    let change = Amount::from_sat(out.amount.as_sat() - collateral.as_sat() - fee.as_sat());
    let lock = TxBuilder::new(chain)
        .input(coin, out.amount, &owner)
        .output(out.address, collateral)
        .output(out.address, change)
        .sign();
    let lock_id = lock.txid();
    submit_and_finalize(&mut sim, 0, lock)?;
    let register = TxBuilder::new(chain)
        .input(
            OutPoint {
                txid: lock_id,
                vout: 1,
            },
            change,
            &owner,
        )
        .output(
            out.address,
            Amount::from_sat(change.as_sat() - fee.as_sat()),
        )
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Bronze,
            collateral: Some(OutPoint {
                txid: lock_id,
                vout: 0,
            }),
            operator_key: Genesis::local_validator_key(4).public_key(),
        }))
        .sign();
    let at = submit_and_finalize(&mut sim, 1, register.clone())?;
    Ok((sim, register, at))
}

/// Whether node `id`'s certificate of `height` carries `key`'s Commit.
fn signed_by(
    sim: &Simulation,
    id: NodeId,
    height: Height,
    key: &timecoin_crypto::PublicKey,
) -> bool {
    sim.node(id)
        .and_then(|n| n.durable().finalized(height))
        .is_some_and(|(_, c)| c.signatures.iter().any(|(k, _)| k == key))
}

#[test]
fn a_masternode_registered_mid_run_joins_the_set_and_votes() {
    over_seeds(
        "a_masternode_registered_mid_run_joins_the_set_and_votes",
        "",
        |seed| {
            let (mut sim, _, at) = register_node_four(seed)?;
            let started = sim.now();
            let delay = Genesis::local(4).params.validator_set_delay.max(1);
            let effective = at + delay;
            let key = Genesis::local_validator_key(4).public_key();
            sim.run_until_height(effective + 4, sim.now() + DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            for i in sim.honest_nodes() {
                let registry = sim.node(i).unwrap().engine().registry();
                ensure(
                    registry
                        .set_for(effective - 1)
                        .is_none_or(|s| !s.contains(&key)),
                    &sim,
                    "the new key must not count before the delay",
                )?;
                ensure(
                    registry
                        .set_for(effective + 4)
                        .is_some_and(|s| s.contains(&key)),
                    &sim,
                    "every node has the new masternode in its set after the delay",
                )?;
            }
            // It signs (and so persists) votes only as a member; a certificate holds the first quorum
            // of Commits to arrive, which may or may not include its own.
            ensure(
                sim.node(4).unwrap().stats().persists > 0,
                &sim,
                "the new masternode votes once it is in the set",
            )?;
            let in_certificates = sim
                .honest_nodes()
                .iter()
                .any(|i| (effective..=effective + 4).any(|h| signed_by(&sim, *i, h, &key)));
            if !in_certificates {
                println!(
                    "seed {seed}: the new masternode voted but was in no certificate's first quorum"
                );
            }
            Ok(sim.now() - started)
        },
    );
}

#[test]
fn a_deregistered_masternode_leaves_the_set_and_the_chain_goes_on() {
    over_seeds(
        "a_deregistered_masternode_leaves_the_set_and_the_chain_goes_on",
        "",
        |seed| {
            let (mut sim, register, at) = register_node_four(seed)?;
            let genesis = Genesis::local(4);
            let delay = genesis.params.validator_set_delay.max(1);
            let key = Genesis::local_validator_key(4).public_key();
            sim.run_until_height(at + delay + 1, sim.now() + DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let started = sim.now();
            let owner = Genesis::local_validator_key(0);
            let coin = OutPoint {
                txid: register.txid(),
                vout: 0,
            };
            let amount = register.outputs[0].amount;
            let leave = TxBuilder::new(genesis.params.chain_id)
                .input(coin, amount, &owner)
                .output(
                    register.outputs[0].address,
                    Amount::from_sat(amount.as_sat() - 1_000),
                )
                .kind(TxKind::DeregisterMasternode { operator_key: key })
                .sign();
            let gone = submit_and_finalize(&mut sim, 2, leave)?;
            let effective = gone + delay;
            sim.run_until_height(effective + 3, sim.now() + DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            for i in sim.honest_nodes() {
                let registry = sim.node(i).unwrap().engine().registry();
                ensure(
                    registry
                        .set_for(effective + 3)
                        .is_some_and(|s| !s.contains(&key) && s.len() == 4),
                    &sim,
                    "the deregistered key is out of every node's set after the delay",
                )?;
                ensure(
                    !signed_by(&sim, i, effective + 3, &key),
                    &sim,
                    "a deregistered key no longer signs certificates",
                )?;
            }
            Ok(sim.now() - started)
        },
    );
}

/// A node that joins after the others finalized several heights starts from genesis and catches up by
/// sync alone, verifying every certificate.
#[test]
fn a_node_joining_late_syncs_to_the_tip() {
    over_seeds("a_node_joining_late_syncs_to_the_tip", "", |seed| {
        let mut config = SimConfig::new(seed, 4);
        config.extra_nodes = 1;
        let mut sim = new_sim(config)?;
        sim.crash(4).map_err(|e| fail(&sim, e))?;
        sim.run_until_height(8, DEADLINE)
            .map_err(|e| fail(&sim, e))?;
        sim.restart(4).map_err(|e| fail(&sim, e))?;
        let started = sim.now();
        let target = sim.agreed_height() + 2;
        sim.run_until_height(target, sim.now() + DEADLINE)
            .map_err(|e| fail(&sim, e))?;
        let late = sim.node(4).unwrap();
        ensure(
            late.stats().synced >= 8,
            &sim,
            "the late node decided its first heights from synced certificates",
        )?;
        Ok(sim.now() - started)
    });
}

/// Fees and the local chain's subsidy accrue; every `reward_interval` heights the block starts with the
/// reward that pays them to the four owners by weight, and nowhere else. The checker verifies after every
/// height that every node's UTXO total plus its unpaid pool is genesis plus the subsidies.
#[test]
fn rewards_are_paid_every_interval_and_supply_is_conserved() {
    over_seeds(
        "rewards_are_paid_every_interval_and_supply_is_conserved",
        "",
        |seed| {
            let config = SimConfig::new(seed, 4);
            let interval = config.genesis.params.reward_interval;
            let mut sim = new_sim(config)?;
            let target = 2 * interval + 1;
            let took = sim
                .run_until_height(target, DEADLINE)
                .map_err(|e| fail(&sim, e))?;
            let node = sim.node(1).unwrap();
            for height in 1..=target {
                let (block, _) = node.durable().finalized(height).unwrap();
                let rewards: Vec<_> = block
                    .transactions
                    .iter()
                    .enumerate()
                    .filter(|(_, tx)| matches!(tx.kind, TxKind::Reward { .. }))
                    .collect();
                if height.is_multiple_of(interval) {
                    ensure(
                        rewards.len() == 1 && rewards[0].0 == 0,
                        &sim,
                        "a reward height starts with its reward",
                    )?;
                    let paid = &rewards[0].1.outputs;
                    ensure(paid.len() == 4, &sim, "four equal owners are each paid")?;
                    ensure(
                        paid.iter().all(|o| o.amount == paid[0].amount),
                        &sim,
                        "equal weights earn equal shares",
                    )?;
                } else {
                    ensure(rewards.is_empty(), &sim, "no reward between payouts")?;
                }
            }
            // The payout at 2·interval paid what blocks up to 2·interval − 1 accrued; blocks 2·interval and
            // 2·interval + 1 each added a subsidy and at most a few thousand satoshis of fees since.
            let pool = node.engine().reward_pool().as_sat();
            let subsidy = Genesis::local(4).params.block_subsidy.as_sat();
            ensure(
                pool >= 2 * subsidy && pool < 2 * subsidy + 100_000,
                &sim,
                "after a payout only the rounding remainder and the later blocks' accrual remain",
            )?;
            Ok(took)
        },
    );
}

/// A node that joins with an empty disk after the chain has grown state-syncs instead of replaying it:
/// it walks the certified headers (one peer serves headers with a withheld body or a broken certificate,
/// and is penalised at the first), imports the UTXO set in pages from several peers, one of which serves
/// pages with an amount raised (pages that keep every rule a page alone can be checked by). The forged
/// set fails the commitment check, the import starts again from one peer, the liar is found by the
/// page that differs and penalised, and the node ends with exactly the honest state (the checker
/// compares its UTXO commitment, supply and chain with everyone's), then follows the chain by block
/// sync and consensus. Run once on a clean network and once losing 10 % of the messages.
#[test]
fn a_late_node_state_syncs_past_a_lying_peer_and_ends_with_the_honest_state() {
    over_seeds(
        "a_late_node_state_syncs_past_a_lying_peer_and_ends_with_the_honest_state",
        "",
        |seed| {
            let mut worst = 0;
            for lossy in [false, true] {
                worst = worst.max(late_node_state_sync(seed, lossy)?);
            }
            Ok(worst)
        },
    );
}

/// Restarts crashed node `id` with an empty disk and state sync (one-output pages, `header_batch`
/// headers per request, short timeouts), runs until the sync is over, and returns what it did.
fn state_sync_node(
    sim: &mut Simulation,
    id: NodeId,
    min_lag: u64,
    header_batch: u32,
    max_restarts: u32,
) -> Result<timecoin_sim::StateSyncReport, Failure> {
    let config = timecoin_node::statesync::StateSyncConfig {
        min_lag,
        status_wait: std::time::Duration::from_millis(300),
        request_timeout: std::time::Duration::from_millis(1_000),
        page_size: 1,
        header_batch,
        max_restarts,
        max_peers: 8,
    };
    sim.restart_with_state_sync(id, config)
        .map_err(|e| fail(sim, e))?;
    let deadline = sim.now() + DEADLINE;
    let synced = sim
        .run_while(deadline, |sim| {
            sim.node(id).is_some_and(|n| !n.is_state_syncing())
        })
        .map_err(|e| fail(sim, e))?;
    ensure(synced, sim, "the state sync never ended")?;
    Ok(sim.node(id).unwrap().state_sync().cloned().unwrap())
}

/// One run of the scenario above; `lossy` loses 10 % and duplicates 2 % of the messages while the node
/// syncs and follows.
fn late_node_state_sync(seed: u64, lossy: bool) -> Result<Millis, Failure> {
    let mut config = SimConfig::new(seed, 4)
        .with_behavior(2, Behavior::HeaderLiar)
        .with_behavior(3, Behavior::SnapshotLiar);
    config.extra_nodes = 1;
    config.txs_per_block = 0;
    // The chain idles between blocks, as a real one does (the seed's block time is 600 s); a
    // page can only be served at the server's tip.
    config.timing.empty_block_interval_ms = 3_000;
    let genesis = config.genesis.clone();
    let mut sim = new_sim(config)?;
    sim.crash(4).map_err(|e| fail(&sim, e))?;
    // Transfers split the genesis coins, so the set spans several pages.
    for owner in 0..3 {
        let tx = genesis_transfer(&genesis, owner, owner + 1, 1_000);
        let txid = tx.txid();
        sim.submit(owner, tx).map_err(|e| fail(&sim, e))?;
        let deadline = sim.now() + DEADLINE;
        let done = sim
            .run_while(deadline, |sim| included_at(sim, 0, &txid).is_some())
            .map_err(|e| fail(&sim, e))?;
        ensure(done, &sim, "a transfer was never finalized")?;
    }
    sim.run_until_height(6, sim.now() + DEADLINE)
        .map_err(|e| fail(&sim, e))?;
    let started = sim.now();
    if lossy {
        sim.set_network(NetworkConfig {
            loss_ppm: 100_000,
            duplicate_ppm: 20_000,
            ..NetworkConfig::default()
        });
    }
    let report = state_sync_node(&mut sim, 4, 3, 1, 20)?;
    if std::env::var("SIM_VERBOSE").is_ok() {
        println!("seed {seed}: {report:?}");
    }
    match report.imported_at {
        Some(base) => ensure(
            report.stats.headers == base && report.stats.pages >= 3,
            &sim,
            "the walk covered every height and the set came in several pages",
        )?,
        // With loss, enough lost answers in a row make it give up and block-sync: allowed.
        None => ensure(
            lossy,
            &sim,
            &format!("no snapshot was imported: {report:?}"),
        )?,
    }
    let mut penalised = report.penalised.clone();
    penalised.sort_unstable();
    ensure(
        penalised.iter().all(|p| [2, 3].contains(p)),
        &sim,
        "an honest peer was penalised",
    )?;
    // Without loss, header requests (one header each) rotate over the four peers, so the header
    // liar answers one and is penalised at once; pages rotate over the three left, so the snapshot
    // liar serves one of the first attempt's pages: that attempt fails, and it is found and
    // penalised. With loss, rotation skips whoever a lost answer left unheard.
    ensure(
        lossy || (report.stats.mismatches >= 1 && penalised == vec![2, 3]),
        &sim,
        "a forgery went unnoticed",
    )?;
    // From the base on, the node follows the chain like any other.
    let target = sim.agreed_height() + 2;
    sim.run_until_height(target, sim.now() + DEADLINE)
        .map_err(|e| fail(&sim, e))?;
    ensure(
        sim.node(4).unwrap().finalized_height() >= target,
        &sim,
        "the synced node did not follow the chain",
    )?;
    Ok(sim.now() - started)
}

/// Validators that prune their block bodies keep finalizing, keep every header and certificate and the
/// bodies where the validator schedule moved (a masternode registers mid-run), and still serve a late
/// node's state sync from genesis, which then follows the chain.
#[test]
fn pruning_validators_keep_every_header_and_still_serve_state_sync() {
    over_seeds(
        "pruning_validators_keep_every_header_and_still_serve_state_sync",
        "",
        pruned_chain_state_sync,
    );
}

fn pruned_chain_state_sync(seed: u64) -> Result<Millis, Failure> {
    const KEEP: u64 = 32;
    let mut config = SimConfig::new(seed, 4);
    config.txs_per_block = 0;
    config.extra_nodes = 2;
    config.timing.prune_keep_blocks = KEEP;
    // Pages are served at the tip only: the chain idles between blocks, as a real one does.
    config.timing.empty_block_interval_ms = 3_000;
    let late = 5;
    let genesis_schedule = config.genesis.block().header.validators_hash;
    let (mut sim, _, _) = register_node_four_in(config)?;
    sim.crash(late).map_err(|e| fail(&sim, e))?;
    let started = sim.now();
    sim.run_until_height(3 * KEEP, sim.now() + 10 * DEADLINE)
        .map_err(|e| fail(&sim, e))?;
    let tip = sim.agreed_height();
    let durable = sim.node(0).unwrap().durable();
    let moved: Vec<Height> = (1..=tip)
        .filter(|h| {
            let header = |h| {
                durable
                    .finalized_header(h)
                    .map(|(hd, _)| hd.validators_hash)
            };
            match h.checked_sub(1) {
                Some(0) => header(*h) != Some(genesis_schedule),
                Some(p) => header(*h) != header(p),
                None => false,
            }
        })
        .collect();
    ensure(
        !moved.is_empty(),
        &sim,
        "the registration moved the schedule",
    )?;
    for i in 0..4 {
        let node = sim.node(i).unwrap();
        let db = node.durable().db();
        let floor = timecoin_storage::BlockStore::body_floor(&**db).unwrap();
        ensure(
            floor + 2 * KEEP >= tip
                && floor + KEEP <= tip
                && node.engine().stats().pruned_bodies > 0,
            &sim,
            &format!("node {i} prunes: floor {floor} at tip {tip}"),
        )?;
        for h in 1..tip {
            let header = node.durable().finalized_header(h);
            let body = node.durable().finalized(h);
            ensure(
                header.is_some(),
                &sim,
                "every header and certificate is kept",
            )?;
            ensure(
                body.is_some() == (h >= floor || moved.contains(&h)),
                &sim,
                &format!(
                    "node {i}: body {h} held exactly where kept (floor {floor}, moved {moved:?})"
                ),
            )?;
        }
    }
    let report = state_sync_node(&mut sim, late, 3, 16, 20)?;
    if std::env::var("SIM_VERBOSE").is_ok() {
        println!("seed {seed}: {report:?}");
    }
    let base = report.imported_at.ok_or_else(|| {
        fail(
            &sim,
            format!("no snapshot was imported from pruned peers: {report:?}"),
        )
    })?;
    ensure(
        report.stats.headers == base && report.penalised.is_empty(),
        &sim,
        "the walk covered every height and nobody was blamed",
    )?;
    let target = sim.agreed_height() + 2;
    sim.run_until_height(target, sim.now() + DEADLINE)
        .map_err(|e| fail(&sim, e))?;
    ensure(
        sim.node(late).unwrap().finalized_height() >= target,
        &sim,
        "the synced node did not follow the chain",
    )?;
    Ok(sim.now() - started)
}

/// State sync where it cannot or need not import: a chain shorter than `min_lag` (the node falls back
/// to block sync from genesis), and a chain that never idles (every page request races the next block;
/// the node walks on to each new tip and, past its restart budget, falls back). Either way it ends on
/// the honest chain and follows it.
#[test]
fn state_sync_falls_back_to_block_sync_when_the_chain_is_short_or_never_idles() {
    over_seeds(
        "state_sync_falls_back_to_block_sync_when_the_chain_is_short_or_never_idles",
        "",
        |seed| {
            let mut worst = 0;
            for busy in [false, true] {
                let mut config = SimConfig::new(seed, 4);
                config.extra_nodes = 1;
                if !busy {
                    config.txs_per_block = 0;
                    config.timing.empty_block_interval_ms = 3_000;
                }
                let mut sim = new_sim(config)?;
                sim.crash(4).map_err(|e| fail(&sim, e))?;
                sim.run_until_height(6, DEADLINE)
                    .map_err(|e| fail(&sim, e))?;
                let started = sim.now();
                // Short: nobody is 100 ahead. Busy: import from 3, with little patience.
                let min_lag = if busy { 3 } else { 100 };
                let report = state_sync_node(&mut sim, 4, min_lag, 4, 2)?;
                if std::env::var("SIM_VERBOSE").is_ok() {
                    println!("seed {seed} busy {busy}: {report:?}");
                }
                ensure(
                    report.penalised.is_empty(),
                    &sim,
                    "an honest peer was penalised",
                )?;
                if !busy {
                    ensure(
                        report.imported_at.is_none() && report.stats.headers == 0,
                        &sim,
                        "a short chain was state-synced",
                    )?;
                }
                let target = sim.agreed_height() + 2;
                sim.run_until_height(target, sim.now() + DEADLINE)
                    .map_err(|e| fail(&sim, e))?;
                worst = worst.max(sim.now() - started);
            }
            Ok(worst)
        },
    );
}
