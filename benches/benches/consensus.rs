//! Consensus core: per-vote processing and whole-height finalization. Every message is signed and
//! wrapped as `Verified` before the timed loop, so no signature check is timed (the core's own two
//! signatures per height are, in `finalize_height`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use timecoin_consensus::{Config, Core, Input, Output, Verified};
use timecoin_crypto::SecretKey;
use timecoin_types::{Genesis, Proposal, Vote, VotePhase};

/// The height every consensus bench runs (see `timecoin_benches::LocalHeight`).
type Setup = timecoin_benches::LocalHeight;

fn setup(n: usize) -> Setup {
    Setup::new(n)
}

fn signed_votes(s: &Setup, phase: VotePhase, skip_first: bool) -> Vec<Input> {
    s.keys
        .iter()
        .skip(usize::from(skip_first))
        .map(|k| {
            Input::Vote(Verified::assume_verified(Vote::sign(
                k,
                s.chain,
                phase,
                s.height,
                0,
                Some(s.block.hash()),
            )))
        })
        .collect()
}

fn proposal(s: &Setup) -> Input {
    let leader = s
        .keys
        .iter()
        .find(|k| k.public_key() == *s.validators.leader(s.height, 0))
        .unwrap();
    Input::Proposal(Verified::assume_verified(Proposal::sign(
        leader,
        s.chain,
        s.height,
        0,
        None,
        s.block.clone(),
    )))
}

/// A core (an observer, so it signs nothing) that has started the height and accepted the proposal.
fn ready_observer(s: &Setup) -> Core {
    let mut core = Core::new(Config::new(s.chain), SecretKey::from_seed(&[200; 32]));
    core.handle(Input::StartHeight {
        height: s.height,
        validators: s.validators.clone(),
    });
    core.handle(proposal(s));
    core.handle(Input::Validity {
        height: s.height,
        block_hash: s.block.hash(),
        valid: true,
    });
    core
}

/// Per-vote cost: n Prepares then n Commits from distinct validators into a core, quorum checks,
/// state transitions and the decision included; signature checks excluded.
fn vote_processing(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus/vote");
    for n in [4usize, 100] {
        let s = setup(n);
        let mut votes = signed_votes(&s, VotePhase::Prepare, false);
        votes.extend(signed_votes(&s, VotePhase::Commit, false));
        group.throughput(Throughput::Elements(votes.len() as u64));
        group.bench_with_input(BenchmarkId::new("process", n), &n, |b, _| {
            b.iter_batched(
                || (ready_observer(&s), votes.clone()),
                |(mut core, votes)| {
                    let mut decided = 0;
                    for v in votes {
                        decided += core
                            .handle(v)
                            .iter()
                            .filter(|o| matches!(o, Output::Decided { .. }))
                            .count();
                    }
                    assert_eq!(decided, 1);
                    core
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// One height from StartHeight to Decided for validator 0: the proposal, the application's verdict,
/// everyone else's Prepares and Commits, and validator 0 signing its own two votes.
fn finalize_height(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus/finalize_height");
    for n in [4usize, 7, 21, 100] {
        let s = setup(n);
        let prepares = signed_votes(&s, VotePhase::Prepare, true);
        let commits = signed_votes(&s, VotePhase::Commit, true);
        let proposal = proposal(&s);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || {
                    (
                        Core::new(Config::new(s.chain), Genesis::local_validator_key(0)),
                        proposal.clone(),
                        prepares.clone(),
                        commits.clone(),
                    )
                },
                |(mut core, proposal, prepares, commits)| {
                    core.handle(Input::StartHeight {
                        height: s.height,
                        validators: s.validators.clone(),
                    });
                    core.handle(proposal);
                    core.handle(Input::Validity {
                        height: s.height,
                        block_hash: s.block.hash(),
                        valid: true,
                    });
                    let mut decided = false;
                    for v in prepares.into_iter().chain(commits) {
                        decided |= core
                            .handle(v)
                            .iter()
                            .any(|o| matches!(o, Output::Decided { .. }));
                    }
                    assert!(decided);
                    core
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, vote_processing, finalize_height);
criterion_main!(benches);
