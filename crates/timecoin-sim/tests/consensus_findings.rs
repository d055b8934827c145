//! Liveness problems of `timecoin-consensus` found by the simulator, each reduced to one exact,
//! deterministic run (no randomness: zero jitter, one targeted loss), with less than a third of the weight
//! faulty, so the protocol owes progress.
//!
//! All three are fixed in the core and their runs now pass as regression tests; one more shows what the
//! simulator's host does about the first finding. See `docs/SIMULATOR.md`, "Consensus findings".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use timecoin_consensus::Message;
use timecoin_sim::runtime::{Millis, NetworkConfig, NodeId};
use timecoin_sim::{Behavior, Packet, SimConfig, Simulation};
use timecoin_types::{Height, View, VotePhase};

/// Every message travels in exactly 5 ms, so the order of delivery is the order of sending.
fn no_jitter(mut config: SimConfig) -> SimConfig {
    config.network = NetworkConfig {
        min_latency_ms: 5,
        jitter_ms: 0,
        link_spread_ms: 0,
        loss_ppm: 0,
        duplicate_ppm: 0,
    };
    config
}

fn decode(packet: &Packet) -> Option<Message> {
    packet.message()
}

fn is_proposal(m: &Message, height: Height, view: View) -> bool {
    matches!(m, Message::Proposal(p) if p.height == height && p.view == view)
}

fn is_prepare(m: &Message, height: Height, view: View) -> bool {
    matches!(m, Message::Vote(v) if v.phase == VotePhase::Prepare && v.height == height && v.view == view)
}

/// The layout of the first two findings, on four Bronze validators (quorum: 3 of 4). Leader `a` of
/// (1, 0) proposes X. `d` never gets the proposal and Prepares nil after its propose timeout; `a`, `b`,
/// `c` Prepare X. `a`'s Prepare to `c` and `d` is lost until `lost_until_ms`. So `a` and `b` see three
/// Prepares for X and lock on it in view 0, while `c` and `d` see X twice and nil once, Commit nil, and
/// the view ends. From then on `a` and `b` only Prepare X, `c` and `d` accept X only with the proof of
/// lock (three view-0 Prepares for X), and without both halves there is no quorum.
struct LostProofOfLock {
    a: NodeId,
    c: NodeId,
    d: NodeId,
}

impl LostProofOfLock {
    /// Builds the simulation with the targeted losses in place before anything is sent.
    fn simulation(config: SimConfig, lost_until_ms: Millis) -> (Simulation, Self) {
        let a = Simulation::new(config.clone()).unwrap().leader(1, 0);
        let others: Vec<NodeId> = (0..4).filter(|i| *i != a).collect();
        let (c, d) = (others[1], others[2]);
        let sim = Simulation::new_with(config, |rt| {
            rt.set_drop_filter(Some(Box::new(move |now, from, to, packet| {
                let Some(m) = decode(packet) else {
                    return false;
                };
                (to == d && is_proposal(&m, 1, 0))
                    || (now < lost_until_ms
                        && from == a
                        && (to == c || to == d)
                        && is_prepare(&m, 1, 0))
            })));
        })
        .unwrap();
        (sim, LostProofOfLock { a, c, d })
    }

    /// Runs until `c` and `d` have left view 0, then checks the split: `a` locked in view 0, `c` and
    /// `d` not. (Checked then: with the proof of lock in re-proposals, the height may finish soon after.)
    fn run_to_split_locks(&self, sim: &mut Simulation) {
        let (c, d) = (self.c, self.d);
        let left_view_0 = sim
            .run_while(10_000, |s| {
                [c, d].iter().all(|i| {
                    s.node(*i)
                        .unwrap()
                        .core()
                        .round_state()
                        .is_some_and(|r| r.view >= 1)
                })
            })
            .unwrap();
        assert!(left_view_0, "{}", sim.report());
        let locked = |i: NodeId| sim.node(i).unwrap().core().round_state().unwrap().locked;
        assert!(
            locked(self.a).is_some_and(|l| l.view == 0),
            "{}",
            sim.report()
        );
        assert!(
            locked(self.c).is_none() && locked(self.d).is_none(),
            "{}",
            sim.report()
        );
    }
}

/// Finding 1: the core's retransmit re-sends only the current view's messages, so a Prepare lost in
/// view 0 is never sent again once the view is over, and the nodes locked in view 0 can never convince
/// the others. Nothing is final after a minute, with every node honest and the network lossless from 3 s.
#[test]
fn a_prepare_lost_in_an_earlier_view_is_eventually_delivered() {
    let mut config = no_jitter(SimConfig::new(0, 4));
    config.timing.resend_interval_ms = None; // only the core's own retransmission
    let (mut sim, layout) = LostProofOfLock::simulation(config, 3_000);
    layout.run_to_split_locks(&mut sim);
    let result = sim.run_until_height(1, 60_000);
    assert!(result.is_ok(), "{result:?}\n{}", sim.report());
}

/// The simulator's host works around finding 1 by re-broadcasting its WAL of the current height while
/// the height is stuck; with that, the same run finalizes.
#[test]
fn resending_the_wal_recovers_a_proof_of_lock_lost_in_an_earlier_view() {
    let config = no_jitter(SimConfig::new(0, 4));
    assert!(config.timing.resend_interval_ms.is_some());
    let (mut sim, layout) = LostProofOfLock::simulation(config, 3_000);
    layout.run_to_split_locks(&mut sim);
    let took = sim.run_until_height(1, 60_000).unwrap();
    println!("finalized height 1 after {took} ms");
}

/// Finding 2: votes of views more than `max_past_views` (10) below the current one used to be dropped,
/// the Prepares that prove a lock included, so when `a`'s lost Prepare arrived after 150 s the proof could
/// no longer be assembled and the height never finished. Pinning proof-of-lock views fixed that; since the
/// leader's re-proposal now carries the proof itself, the height no longer waits for the lost Prepare at
/// all: it finishes long before the loss ends.
#[test]
fn a_proof_of_lock_lost_for_150_s_does_not_hold_the_height_up() {
    let config = no_jitter(SimConfig::new(0, 4));
    let (mut sim, layout) = LostProofOfLock::simulation(config, 150_000);
    layout.run_to_split_locks(&mut sim);
    let took = sim.run_until_height(1, 60_000);
    assert!(took.is_ok(), "{took:?}\n{}", sim.report());
}

/// Finding 3: the vote keeper counts only a validator's first vote per (view, phase). One double voter
/// (f = 1 of 4) that Prepares X to one honest node and nil to the other two (nil first) makes the first
/// node lock on X in view 0 while the others, having counted the double voter's nil, can never assemble
/// the proof of lock for X, however often it is re-sent. Fixed: a re-proposal carries its proof of lock
/// (the Prepare quorum of its `valid_view`), so the others accept it without ever counting those votes.
#[test]
fn a_double_voter_cannot_hide_a_proof_of_lock() {
    let probe = Simulation::new(SimConfig::new(0, 4)).unwrap();
    let leader = probe.leader(1, 0);
    // The double voter's peers, in id order, are split [first] | [rest]: it Prepares X to the first
    // (and nil after), nil to the rest (and X after). Pick it so that the first peer is honest and
    // not the node that misses the proposal.
    let double_voter = (0..4).find(|i| *i != leader && *i != 0).unwrap_or(1);
    let first_peer = (0..4).find(|i| *i != double_voter).unwrap();
    let blind = (0..4)
        .find(|i| *i != leader && *i != double_voter && *i != first_peer)
        .unwrap();
    let config = no_jitter(SimConfig::new(0, 4)).with_behavior(double_voter, Behavior::DoubleVoter);
    let mut sim = Simulation::new_with(config, |rt| {
        rt.set_drop_filter(Some(Box::new(move |_, _, to, packet| {
            to == blind && decode(packet).is_some_and(|m| is_proposal(&m, 1, 0))
        })));
    })
    .unwrap();
    // The split, checked when the two unlocked nodes leave view 0 of height 1.
    let left_view_0 = sim
        .run_while(5_000, |s| {
            [leader, blind].iter().all(|i| {
                s.node(*i)
                    .unwrap()
                    .core()
                    .round_state()
                    .is_some_and(|r| r.height == 1 && r.view >= 1)
            })
        })
        .unwrap();
    assert!(left_view_0, "{}", sim.report());
    let locked = |i: NodeId| sim.node(i).unwrap().core().round_state().unwrap().locked;
    assert!(locked(first_peer).is_some(), "{}", sim.report());
    assert!(
        locked(leader).is_none() && locked(blind).is_none(),
        "{}",
        sim.report()
    );
    let result = sim.run_until_height(1, 120_000);
    assert!(result.is_ok(), "{result:?}\n{}", sim.report());
}
