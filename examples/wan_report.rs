//! Simulated finality latency and throughput on a wide-area network, for 4, 21 and 100 validators: the
//! shipping engine in every node, over the simulator's WAN model (20–150 ms one way: a fixed delay per
//! pair of nodes plus per-message jitter). Every figure is simulated time, not a measurement of a real
//! network; the CPU cost of signatures is not in it.
//!
//! Run: `cargo run --release -p timecoin-examples --example wan_report [-- --heights H --seed S]`
#![allow(clippy::print_stdout)]

use std::error::Error;

use timecoin_sim::runtime::NetworkConfig;
use timecoin_sim::{SimConfig, Simulation};

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = (sorted.len() - 1) * p / 100;
    sorted.get(index).copied().unwrap_or(0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut heights = 20u64;
    let mut seed = 1u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or("usage: --heights H --seed S")?;
        match flag.as_str() {
            "--heights" => heights = value.parse()?,
            "--seed" => seed = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    println!(
        "| validators | heights | finality per height, median | p90 | max | transactions | tx/s (simulated) | messages |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in [4usize, 21, 100] {
        let mut config = SimConfig::new(seed, n);
        config.network = NetworkConfig::wan();
        // Every validator's wallet client offers a transfer of its own coin per height.
        config.txs_per_block = n;
        let mut sim = Simulation::new(config)?;
        // Height 1 includes start-up; the report starts after it.
        sim.run_until_height(1, 120_000)?;
        let start = sim.now();
        sim.run_until_height(heights + 1, start + heights * 60_000)?;
        let node = sim.node(0).ok_or("no node 0")?;
        let at = node.finalized_at();
        let mut deltas: Vec<u64> = (2..=heights + 1)
            .filter_map(|h| Some(at.get(&h)? - at.get(&(h - 1))?))
            .collect();
        deltas.sort_unstable();
        let transactions: usize = (2..=heights + 1)
            .filter_map(|h| node.durable().finalized(h))
            .map(|(block, _)| block.transactions.len())
            .sum();
        let elapsed = at
            .get(&(heights + 1))
            .copied()
            .unwrap_or(sim.now())
            .saturating_sub(at.get(&1).copied().unwrap_or(start));
        let tps = transactions as f64 * 1000.0 / elapsed.max(1) as f64;
        println!(
            "| {n} | {heights} | {} ms | {} ms | {} ms | {transactions} | {tps:.0} | {} |",
            percentile(&deltas, 50),
            percentile(&deltas, 90),
            deltas.last().copied().unwrap_or(0),
            sim.net_stats().delivered,
        );
    }
    Ok(())
}
