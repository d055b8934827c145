//! Crash safety of the sled store, proven by killing a writer with SIGKILL at random moments.
//!
//! The test re-executes its own binary as a child (selected by [`CHILD_ENV`]) that applies blocks (1 to
//! 24 transactions, every 40th 600) to a
//! sled store forever, printing `ACK <height> <hash>` after each `apply_finalized` returns. The parent
//! kills it after a random delay, reopens the store and checks that every acknowledged block is there,
//! that the chain links up, and that the UTXO set, its stored multiset hash and the tip header's
//! commitment all agree — then lets a new child carry on from the recovered tip.
//!
//! The child also prunes block bodies below the height the parent has already replayed (read from
//! [`PRUNE_FILE`] at its start), a round of up to 16 bodies after each block, keeping every 7th: kills
//! land in prunes too, and the parent checks that below the body floor exactly the kept bodies remain,
//! every header still matches its acknowledged hash, and above the floor every body is there.
//!
//! `TIMECOIN_CRASH_ITERATIONS` (default 30) sets the number of kills, `TIMECOIN_CRASH_SEED` replays the
//! delays of an earlier run (the seed is printed; the child's speed still varies between runs).

#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{BlockStore, ChainDb, ChainStore, KvEngine, SledEngine, StorageConfig};

use timecoin_types::{BlockDelta, OutPoint, TxOut, block_utxo_delta};

const CHILD_ENV: &str = "TIMECOIN_STORAGE_CRASH_CHILD";
const TEST_NAME: &str = "sigkill_at_random_points_never_loses_an_acknowledged_block";
/// A child that outlives its parent stops by itself.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
const VALIDATORS: usize = 4;
/// The file in the store's directory naming the height the child may prune below.
const PRUNE_FILE: &str = "prune-below";

/// The pruning rule of the child: keep every 7th body.
fn kept(height: u64) -> bool {
    height.is_multiple_of(7)
}

fn config(dir: &Path) -> StorageConfig {
    StorageConfig {
        cache_bytes: 16 * 1024 * 1024,
        ..StorageConfig::sled(dir)
    }
}

fn open(dir: &Path, factory: &BlockFactory) -> ChainDb<SledEngine> {
    let config = config(dir);
    let engine = SledEngine::open(dir, &config).unwrap();
    ChainDb::open(engine, &config, factory.genesis()).unwrap()
}

/// Applies blocks until killed: 1 to 24 transactions each, so batches of many sizes are in flight.
fn child(dir: &str) {
    let factory = BlockFactory::local(VALIDATORS);
    let store = open(Path::new(dir), &factory);
    let mut out = std::io::stdout().lock();
    writeln!(out, "OPEN {}", store.tip().unwrap().height).unwrap();
    let prune_below: u64 = std::fs::read_to_string(Path::new(dir).join(PRUNE_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + CHILD_LIFETIME;
    while Instant::now() < deadline {
        let height = store.tip().unwrap().height + 1;
        // Every 40th block is large (over 128 KiB), the size sled would put in a blob file.
        let txs = if height.is_multiple_of(40) {
            600
        } else {
            1 + (height as usize * 7) % 24
        };
        let (block, cert) = factory.next_block(&store, txs).unwrap();
        store.apply_finalized(&block, &cert).unwrap();
        writeln!(out, "ACK {height} {}", block.hash().0.to_hex()).unwrap();
        out.flush().unwrap();
        store
            .prune_bodies(prune_below, 16, &|header, _| kept(header.height))
            .unwrap();
    }
}

struct Run {
    acks: Vec<(u64, String)>,
    opened_at: Option<u64>,
}

fn run_child_and_kill(dir: &Path, delay: Duration) -> Run {
    let (child, stdout) = common::Child::spawn(TEST_NAME, CHILD_ENV, dir);
    let reader = std::thread::spawn(move || {
        let mut run = Run {
            acks: Vec::new(),
            opened_at: None,
        };
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = common::child_words(&line, &["ACK ", "OPEN "]);
            match (words.next(), words.next(), words.next()) {
                (Some("ACK"), Some(h), Some(hash)) => {
                    run.acks.push((h.parse().unwrap(), hash.to_string()));
                }
                (Some("OPEN"), Some(h), None) => run.opened_at = Some(h.parse().unwrap()),
                _ => {}
            }
        }
        run
    });
    std::thread::sleep(delay);
    child.kill(reader)
}

/// What the parent knows about the chain so far: every block hash it has seen (acknowledged by a child,
/// or found durable after a kill), and the UTXO set replayed from those blocks.
struct Verifier {
    /// Kills that landed between a body's append to the block log and its batch's commit.
    orphan_bodies_cut: usize,
    known: BTreeMap<u64, String>,
    model: BTreeMap<OutPoint, TxOut>,
    replayed_to: u64,
    /// The height the running child may prune below.
    prune_allowed: u64,
    /// The body floor found at the last check.
    prune_floor: u64,
}

impl Verifier {
    fn new(factory: &BlockFactory) -> Self {
        Verifier {
            orphan_bodies_cut: 0,
            known: BTreeMap::new(),
            model: factory.genesis().utxos().into_iter().collect(),
            replayed_to: 0,
            prune_allowed: 0,
            prune_floor: 0,
        }
    }

    /// Reopens the store and checks it against everything known: no known block lost or changed, the
    /// UTXO set equal to the replay of its blocks. `full` also walks the whole chain and rehashes the set
    /// from scratch ([`ChainDb::verify_integrity`]); otherwise only the new blocks are read.
    fn check(
        &mut self,
        dir: &Path,
        factory: &BlockFactory,
        acks: &[(u64, String)],
        full: bool,
    ) -> u64 {
        let log = dir.join(timecoin_storage::engine::BLOCK_LOG_FILE);
        let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let store = open(dir, factory);
        if store.engine().log_len().unwrap() < log_before {
            self.orphan_bodies_cut += 1;
        }
        let tip = store.tip().unwrap();
        for (height, hash) in acks {
            if let Some(previous) = self.known.insert(*height, hash.clone()) {
                assert_eq!(
                    &previous, hash,
                    "height {height} acknowledged with a different block than before"
                );
            }
        }
        if let Some((&highest, _)) = self.known.last_key_value() {
            assert!(
                tip.height >= highest,
                "known block {highest} lost: tip is {}",
                tip.height
            );
        }
        for (height, hash) in &self.known {
            let hash = timecoin_crypto::Hash::from_hex(hash).unwrap();
            assert_eq!(
                store.height_of(&timecoin_types::BlockHash(hash)).unwrap(),
                Some(*height),
                "known block {height} is no longer indexed"
            );
        }
        for height in self.replayed_to + 1..=tip.height {
            let block = store.block(height).unwrap().unwrap().block;
            let BlockDelta { spent, created } = block_utxo_delta(&block).unwrap();
            for op in spent {
                assert!(
                    self.model.remove(&op).is_some(),
                    "block {height} spends {op}, not unspent in the replay"
                );
            }
            self.model.extend(created);
            self.known.insert(height, block.hash().0.to_hex());
        }
        self.replayed_to = tip.height;
        let mut stored = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.utxo_page(cursor.as_ref(), 0).unwrap();
            stored.extend(page.entries);
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let replayed: Vec<_> = self.model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            stored, replayed,
            "UTXO set differs from the one its blocks produce"
        );
        let state = store.utxo_state().unwrap();
        let header = store.block(tip.height).unwrap().unwrap().block.header;
        assert_eq!(
            state.hash.checksum(),
            header.utxo_commitment,
            "stored hash state vs tip header"
        );
        let mut rehashed = timecoin_crypto::LtHash::new();
        timecoin_types::apply_to_commitment(&mut rehashed, &[], &replayed);
        assert_eq!(
            rehashed, state.hash,
            "UTXO set rehashed from scratch vs stored hash state"
        );
        let floor = store.body_floor().unwrap();
        assert!(
            floor <= self.prune_allowed,
            "body floor {floor} above the {} the child was allowed",
            self.prune_allowed
        );
        if full {
            assert_eq!(store.verify_integrity().unwrap().tip, tip);
            for height in 1..=tip.height {
                let header = store.header(height).unwrap().unwrap().header;
                assert_eq!(
                    Some(&header.hash().0.to_hex()),
                    self.known.get(&height),
                    "header {height} differs from the block acknowledged"
                );
                let held = store.block(height).unwrap().is_some();
                assert_eq!(
                    held,
                    height >= floor || kept(height),
                    "body {height} (floor {floor})"
                );
            }
        }
        self.prune_floor = floor;
        // The next child may prune what this check has replayed.
        self.prune_allowed = self.replayed_to;
        std::fs::write(dir.join(PRUNE_FILE), self.prune_allowed.to_string()).unwrap();
        tip.height
    }
}

#[test]
fn sigkill_at_random_points_never_loses_an_acknowledged_block() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let (iterations, seed) = common::kill_plan("crash test", "TIMECOIN_CRASH_ITERATIONS", 30);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let factory = BlockFactory::local(VALIDATORS);
    let mut verifier = Verifier::new(&factory);
    let mut last_ack = 0;
    let mut acks = 0;
    let mut durable_unacked = 0;
    let mut before_open = 0;
    let mut check_time = Duration::ZERO;
    for i in 0..iterations {
        // Some kills land while the child starts up: during genesis initialisation on the first run,
        // during sled's recovery on later ones.
        let delay = if i == 0 || rng.gen_bool(0.15) {
            Duration::from_millis(rng.gen_range(1..40))
        } else {
            Duration::from_millis(rng.gen_range(5..400))
        };
        let run = run_child_and_kill(dir.path(), delay);
        if run.opened_at.is_none() {
            before_open += 1;
        }
        acks += run.acks.len();
        last_ack = run.acks.last().map(|(h, _)| *h).unwrap_or(last_ack);
        let started = Instant::now();
        let full = i % 10 == 9 || i + 1 == iterations;
        let tip = verifier.check(dir.path(), &factory, &run.acks, full);
        check_time += started.elapsed();
        if tip > last_ack {
            durable_unacked += 1;
        }
        println!(
            "kill {i}: after {delay:?}, {} acks this run, tip {tip}, last ack {last_ack}",
            run.acks.len()
        );
    }
    let blocks = acks;
    println!("body floor at the end: {}", verifier.prune_floor);
    println!(
        "crash test passed: {iterations} kills, {blocks} blocks acknowledged, {durable_unacked} kills left a \
         durable block not yet acknowledged, {before_open} kills came before the store opened, {} kills left a body appended but not committed (cut at \
         reopen); checks took {check_time:?}",
        verifier.orphan_bodies_cut
    );
    assert!(
        blocks >= iterations,
        "seed {seed}: too few blocks acknowledged ({blocks}) for the test to mean much"
    );
}
