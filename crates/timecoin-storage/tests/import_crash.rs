//! Crash safety of a snapshot import on sled, proven by killing the importer with SIGKILL at random
//! moments.
//!
//! The test re-executes its own binary as a child (selected by [`CHILD_ENV`]) that builds the same
//! source chain every time (a memory store, deterministic blocks), then resumes the import it finds in
//! the sled directory or begins one, adds the source's pages one by one printing `PAGE <count>` after
//! each `add_page` returns, finishes, and prints `FINISHED`. The parent kills it after a random delay,
//! reopens the directory and checks that it is exactly one of: empty (killed before the import began),
//! an unfinished import whose outputs on disk are exactly the source's first `count` outputs and no fewer
//! than acknowledged, or the finished chain with the source's state. A finished directory is set aside
//! and the next child starts a new import in a fresh one.
//!
//! `TIMECOIN_IMPORT_CRASH_ITERATIONS` (default 20) sets the number of kills, `TIMECOIN_CRASH_SEED`
//! replays the delays of an earlier run.

#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{
    BlockStore, CertifiedBase, ChainDb, ChainStore, KvEngine, SledEngine, StorageConfig,
    StorageError,
};
use timecoin_types::{OutPoint, TxOut, WellFormedBlock};

const CHILD_ENV: &str = "TIMECOIN_STORAGE_IMPORT_CRASH_CHILD";
const TEST_NAME: &str = "sigkill_during_a_snapshot_import_leaves_it_unfinished_or_complete";
/// A child that outlives its parent stops by itself.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
const VALIDATORS: usize = 4;
/// Outputs per page: small, so an import is many durable batches long.
const PAGE: usize = 25;

fn config(dir: &Path) -> StorageConfig {
    StorageConfig {
        cache_bytes: 16 * 1024 * 1024,
        ..StorageConfig::sled(dir)
    }
}

/// The peer's chain: the same blocks in every process, about 2000 outputs.
fn source_chain(
    factory: &BlockFactory,
) -> (ChainDb<timecoin_storage::MemoryEngine>, CertifiedBase) {
    let source = ChainDb::memory(factory.genesis()).unwrap();
    for txs in [500, 1000, 10] {
        let (block, cert) = factory.next_block(&source, txs).unwrap();
        source.apply_finalized(&block, &cert).unwrap();
    }
    let stored = source.block(source.tip().unwrap().height).unwrap().unwrap();
    let base = CertifiedBase {
        block: WellFormedBlock::try_from(stored.block).unwrap(),
        certificate: stored.certificate.unwrap(),
    };
    (source, base)
}

fn all_utxos(store: &impl ChainStore) -> Vec<(OutPoint, TxOut)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.utxo_page(cursor.as_ref(), 0).unwrap();
        out.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// Resumes or begins the import in `dir` and carries it to the end, then waits to be killed.
fn child(dir: &str) {
    let factory = BlockFactory::local(VALIDATORS);
    let genesis = factory.genesis();
    let (source, base) = source_chain(&factory);
    let dir = Path::new(dir);
    let config = config(dir);
    let mut out = std::io::stdout().lock();
    let engine = SledEngine::open(dir, &config).unwrap();
    let mut import = match ChainDb::resume_import(engine, &config, genesis) {
        Ok(import) => import,
        Err(StorageError::NotFound { .. }) => {
            let engine = SledEngine::open(dir, &config).unwrap();
            ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    writeln!(out, "READY {}", import.count()).unwrap();
    out.flush().unwrap();
    while !import.is_complete() {
        let page = source.utxo_page(import.cursor().as_ref(), PAGE).unwrap();
        import.add_page(&page).unwrap();
        writeln!(out, "PAGE {}", import.count()).unwrap();
        out.flush().unwrap();
    }
    let store = import.finish().unwrap();
    writeln!(out, "FINISHED {}", store.tip().unwrap().height).unwrap();
    out.flush().unwrap();
    std::thread::sleep(CHILD_LIFETIME);
}

#[derive(Default)]
struct Run {
    ready: bool,
    /// The highest count a `PAGE` line acknowledged.
    acked: u64,
    finished: bool,
}

/// Starts a child on `dir` and kills it `delay` after it reports ready (or, `early`, after it starts).
fn run_child_and_kill(dir: &Path, delay: Duration, early: bool) -> Run {
    let (child, stdout) = common::Child::spawn(TEST_NAME, CHILD_ENV, dir);
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut run = Run::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = common::child_words(&line, &["READY ", "PAGE ", "FINISHED "]);
            match (words.next(), words.next()) {
                (Some("READY"), Some(_)) => {
                    run.ready = true;
                    let _ = ready_tx.send(());
                }
                (Some("PAGE"), Some(count)) => run.acked = count.parse().unwrap(),
                (Some("FINISHED"), Some(_)) => run.finished = true,
                _ => {}
            }
        }
        run
    });
    if !early {
        // Building the source takes the child a moment; the delay counts from the import's start.
        let _ = ready_rx.recv_timeout(Duration::from_secs(15));
    }
    std::thread::sleep(delay);
    child.kill(reader)
}

enum Found {
    Empty,
    Unfinished(u64),
    Finished,
}

/// Reopens `dir` and checks it is empty, a consistent unfinished import, or the finished chain.
fn check(
    dir: &Path,
    factory: &BlockFactory,
    source: &ChainDb<timecoin_storage::MemoryEngine>,
    expected: &[(OutPoint, TxOut)],
    run: &Run,
    progress: u64,
) -> Found {
    let genesis = factory.genesis();
    let config = config(dir);
    let engine = SledEngine::open(dir, &config).unwrap();
    match ChainDb::resume_import(engine, &config, genesis) {
        Ok(import) => {
            assert!(!run.finished, "a finished import reopened as unfinished");
            let count = import.count();
            assert!(
                count >= run.acked.max(progress),
                "acknowledged pages lost: {count} outputs, {} acknowledged, {progress} before",
                run.acked
            );
            let last = (count as usize)
                .checked_sub(1)
                .and_then(|i| expected.get(i));
            assert_eq!(import.cursor(), last.map(|e| e.0));
            // The outputs on disk are exactly the source's first `count`, nothing more or less.
            let engine = import.into_engine();
            let raw = engine.scan(b"u", b"v", expected.len() + 1).unwrap();
            let on_disk: Vec<Vec<u8>> = raw.into_iter().map(|(key, _)| key).collect();
            let wanted: Vec<Vec<u8>> = expected[..count as usize]
                .iter()
                .map(|(op, _)| [&b"u"[..], op.txid.0.as_bytes(), &op.vout.to_be_bytes()].concat())
                .collect();
            assert_eq!(on_disk, wanted, "outputs on disk vs the source's prefix");
            let err = ChainDb::open(engine, &config, genesis).unwrap_err();
            assert!(
                matches!(err, StorageError::ImportIncomplete { .. }),
                "{err}"
            );
            Found::Unfinished(count)
        }
        Err(StorageError::NotFound { .. }) => {
            let engine = SledEngine::open(dir, &config).unwrap();
            if engine.scan(&[], &[0xff; 8], 1).unwrap().is_empty() {
                assert!(
                    run.acked == 0 && progress == 0 && !run.finished,
                    "an import that had begun is gone"
                );
                return Found::Empty;
            }
            let store = ChainDb::open(engine, &config, genesis).unwrap();
            assert_eq!(store.utxo_state().unwrap(), source.utxo_state().unwrap());
            assert_eq!(all_utxos(&store), expected);
            let tip = source.tip().unwrap();
            assert_eq!(store.base_height().unwrap(), tip.height);
            assert_eq!(store.verify_integrity().unwrap().tip, tip);
            Found::Finished
        }
        Err(e) => panic!("reopened import: {e}"),
    }
}

#[test]
fn sigkill_during_a_snapshot_import_leaves_it_unfinished_or_complete() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let (iterations, seed) =
        common::kill_plan("import crash test", "TIMECOIN_IMPORT_CRASH_ITERATIONS", 20);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let root = tempfile::tempdir().unwrap();
    let factory = BlockFactory::local(VALIDATORS);
    let (source, _) = source_chain(&factory);
    let expected = all_utxos(&source);
    let mut cycle = 0;
    let mut progress = 0;
    let (mut empty, mut unfinished, mut finished, mut before_ready) = (0, 0, 0, 0);
    let started = Instant::now();
    for i in 0..iterations {
        let dir = root.path().join(format!("import-{cycle}"));
        let early = rng.gen_bool(0.15);
        let delay = if early {
            Duration::from_millis(rng.gen_range(1..60))
        } else {
            // A whole import takes the child about 100 ms: most kills land inside one.
            Duration::from_millis(rng.gen_range(0..150))
        };
        let run = run_child_and_kill(&dir, delay, early);
        if !run.ready {
            before_ready += 1;
        }
        let found = check(&dir, &factory, &source, &expected, &run, progress);
        let what = match found {
            Found::Empty => {
                empty += 1;
                "empty".to_string()
            }
            Found::Unfinished(count) => {
                unfinished += 1;
                progress = count;
                format!("unfinished at {count} outputs")
            }
            Found::Finished => {
                finished += 1;
                cycle += 1;
                progress = 0;
                "finished".to_string()
            }
        };
        println!(
            "kill {i}: after {delay:?}{}, {} acknowledged: {what}",
            if early { " from start" } else { "" },
            run.acked
        );
    }
    println!(
        "import crash test passed in {:?}: {iterations} kills of imports of {} outputs; {unfinished} left \
         an unfinished import, {finished} a finished chain, {empty} an empty store; {before_ready} came \
         before the import was ready",
        started.elapsed(),
        expected.len()
    );
    assert!(
        unfinished > 0,
        "seed {seed}: no kill landed inside an import, so the test proved little"
    );
}
