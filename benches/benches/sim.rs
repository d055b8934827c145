//! Simulator throughput: events (message deliveries and timer firings) processed per second of wall time,
//! with every event doing the real work of a validator — decoding, signature checks at the door, the
//! consensus core, the ledger building and checking blocks of signed transfers — and the invariant
//! checker run after each. Run with `cargo bench -p timecoin-benches --bench sim`; figures are recorded
//! in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use timecoin_sim::runtime::NetworkConfig;
use timecoin_sim::{Behavior, SimConfig, Simulation};

/// One run: `heights` heights finalized by `validators` nodes; returns the events processed.
fn run(config: &SimConfig, heights: u64) -> u64 {
    let mut sim = Simulation::new(config.clone()).unwrap();
    sim.run_until_height(heights, 600_000).unwrap();
    sim.events()
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    let healthy = |n| SimConfig::new(1, n);
    let lossy = |n| {
        let mut config = SimConfig::new(1, n);
        config.network = NetworkConfig {
            loss_ppm: 300_000,
            ..NetworkConfig::default()
        };
        config
    };
    let byzantine = |n| SimConfig::new(1, n).with_behavior(0, Behavior::DoubleVoter);
    let cases: [(&str, usize, SimConfig); 4] = [
        ("healthy", 4, healthy(4)),
        ("healthy", 7, healthy(7)),
        ("loss_30pct", 4, lossy(4)),
        ("double_voter", 4, byzantine(4)),
    ];
    const HEIGHTS: u64 = 10;
    for (name, n, config) in cases {
        // Runs are deterministic, so one run tells how many events every run processes.
        let events = run(&config, HEIGHTS);
        group.throughput(Throughput::Elements(events));
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_{HEIGHTS}_heights"), n),
            &config,
            |b, config| b.iter(|| black_box(run(config, HEIGHTS))),
        );
    }
    group.finish();
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 3); throughput);
