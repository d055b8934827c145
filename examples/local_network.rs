//! A local network in one process: the validators of `Genesis::local(N)` run the real consensus core over
//! a simulated network (5–25 ms latency), each with its own UTXO ledger; leaders put real signed transfers
//! in their blocks, every validator checks them with the chain's rules, and every finalized block carries
//! a commit certificate. Deterministic: a seed gives the same run every time.
//!
//! Run: `cargo run --release -p timecoin-examples --example local_network [-- --nodes N --heights H --seed S]`
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Instant;

use timecoin_sim::{SimConfig, Simulation};

/// Simulated time allowed per height before the run is declared stuck.
const DEADLINE_PER_HEIGHT_MS: u64 = 60_000;

struct Args {
    nodes: usize,
    heights: u64,
    seed: u64,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        nodes: 4,
        heights: 20,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| {
            format!("{flag} needs a value (usage: --nodes N --heights H --seed S)")
        })?;
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse()?,
            "--heights" => args.heights = value.parse()?,
            "--seed" => args.seed = value.parse()?,
            _ => {
                return Err(
                    format!("unknown flag {flag} (usage: --nodes N --heights H --seed S)").into(),
                );
            }
        }
    }
    if !(1..=100).contains(&args.nodes) {
        return Err("--nodes must be between 1 and 100".into());
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let wall = Instant::now();
    let mut sim = Simulation::new(SimConfig::new(args.seed, args.nodes))?;
    let total_weight = sim.validators().total_weight();
    println!(
        "local network: {} validators of Genesis::local({}), total weight {total_weight}, seed {}",
        args.nodes, args.nodes, args.seed
    );
    println!("height  block             txs  view  cert weight  finalized at (simulated)");
    let mut transactions = 0;
    for height in 1..=args.heights {
        // Fails with the broken invariant, or with the node that is stuck at the deadline.
        sim.run_until_height(height, sim.now() + DEADLINE_PER_HEIGHT_MS)?;
        let node = sim.node(0).ok_or("no node 0")?;
        let (block, certificate) = node
            .durable()
            .finalized(height)
            .ok_or("node 0 lacks a height it finalized")?;
        let weight: u64 = certificate
            .signatures
            .iter()
            .filter_map(|(key, _)| sim.validators().weight_of(key))
            .sum();
        let at = node
            .finalized_at()
            .get(&height)
            .copied()
            .unwrap_or(sim.now());
        transactions += block.transactions.len();
        println!(
            "{height:>6}  {}…  {:>3}  {:>4}  {weight:>5}/{total_weight:<5}  {at} ms",
            &block.hash().to_string()[..16],
            block.transactions.len(),
            certificate.view,
        );
    }
    let tip = sim
        .node(0)
        .and_then(|n| n.durable().finalized(args.heights))
        .map(|(b, _)| b.hash().to_string())
        .unwrap_or_default();
    let net = sim.net_stats();
    println!(
        "done: all {} validators agree on {} heights (tip {}…), {transactions} signed transactions; \
         {} ms simulated, {} events, {} messages delivered; {:.2} s wall",
        args.nodes,
        args.heights,
        tip.get(..16).unwrap_or(&tip),
        sim.now(),
        sim.events(),
        net.delivered,
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}
