//! Criterion benchmarks for the TimeCoin crates; run with `cargo bench -p timecoin-benches` (one file:
//! `--bench NAME`). Figures, with the command and machine that produced them, are in docs/BENCHMARKS.md.
//!
//! This library holds what the bench files share: the run lengths, the `main` they expand to, and a
//! meter of the CPU time of all threads around a timed section.

pub use criterion;

/// A criterion configuration with short runs, so a whole bench file finishes in minutes on a 2-core
/// machine; `samples` of `measure_s` seconds still give confidence intervals of a few percent.
pub fn config(samples: usize, warm_up_s: u64, measure_s: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(samples)
        .warm_up_time(std::time::Duration::from_secs(warm_up_s))
        .measurement_time(std::time::Duration::from_secs(measure_s))
}

/// Expands to a bench `main` that runs each group with `config`. Used instead of `criterion_group!`,
/// whose generated function has no doc comment and trips the workspace's `missing_docs` lint.
#[macro_export]
macro_rules! bench_main {
    ($config:expr; $($group:path),+ $(,)?) => {
        /// Runs this file's benchmark groups.
        fn main() {
            let mut c = $config.configure_from_args();
            $($group(&mut c);)+
            c.final_summary();
        }
    };
}

/// CPU time used so far by every thread of this process (Linux's per-thread schedstat, in
/// nanoseconds), so a stage's on-CPU time can be told from its waiting (on the disk, or on other
/// threads); zero elsewhere.
pub fn process_cpu() -> std::time::Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return std::time::Duration::ZERO;
    };
    let nanos: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    std::time::Duration::from_nanos(nanos)
}

/// Wall and CPU time of one benchmark's timed sections, over every iteration criterion ran (warm-up
/// included).
#[derive(Debug, Default)]
pub struct Meter {
    /// Timed sections measured.
    pub runs: u32,
    /// Their wall-clock time.
    pub wall: std::time::Duration,
    /// The CPU time of all threads of the process during them.
    pub cpu: std::time::Duration,
}

impl Meter {
    /// Prints the means per run to stderr (criterion prints its own figures to stdout).
    pub fn report(&self, name: &str) {
        if self.runs == 0 {
            return;
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / f64::from(self.runs);
        eprintln!(
            "{name}: {} runs, mean {:.3} ms wall, {:.3} ms CPU of all threads",
            self.runs,
            ms(self.wall),
            ms(self.cpu)
        );
    }
}

/// Benchmarks `work` on what `prepare` returns, preparing untimed before every run, and keeps the
/// runs' wall and CPU time in `meters` under `name`.
pub fn metered<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    meters: &mut Vec<(String, Meter)>,
    name: &str,
    mut prepare: impl FnMut() -> T,
    mut work: impl FnMut(T),
) {
    let mut meter = Meter::default();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let input = prepare();
                let cpu = process_cpu();
                let start = std::time::Instant::now();
                work(input);
                let wall = start.elapsed();
                meter.cpu += process_cpu().saturating_sub(cpu);
                meter.wall += wall;
                meter.runs += 1;
                total += wall;
            }
            total
        })
    });
    meters.push((name.to_owned(), meter));
}

/// One height of `Genesis::local(n)` that validator 0 does not lead, with an empty block proposed by its
/// view-0 leader: what the consensus benches feed a core.
pub struct LocalHeight {
    /// The chain.
    pub chain: timecoin_crypto::ChainId,
    /// Every validator's key; validator 0 is the core under test.
    pub keys: Vec<timecoin_crypto::SecretKey>,
    /// The genesis set.
    pub validators: std::sync::Arc<timecoin_consensus::ValidatorSet>,
    /// The height.
    pub height: timecoin_types::Height,
    /// An empty block on genesis at that height, by its view-0 leader.
    pub block: timecoin_types::WellFormedBlock,
    /// Index in `keys` of the block's proposer.
    pub leader: usize,
}

impl LocalHeight {
    /// The first such height of `Genesis::local(n)`.
    ///
    /// # Panics
    /// On a set where validator 0 leads every height (one validator).
    #[allow(clippy::expect_used, clippy::indexing_slicing)]
    pub fn new(n: usize) -> Self {
        use timecoin_types::{Block, BlockHeader, Genesis, Hash};
        let genesis = Genesis::local(n);
        let chain = genesis.params.chain_id;
        let keys: Vec<_> = (0..n).map(Genesis::local_validator_key).collect();
        let validators = std::sync::Arc::new(
            timecoin_consensus::ValidatorSet::from_genesis(&genesis).expect("a local set"),
        );
        let me = keys[0].public_key();
        let height = (1..)
            .take(10_000)
            .find(|h| *validators.leader(*h, 0) != me)
            .expect("another validator leads some height");
        let leader = keys
            .iter()
            .position(|k| k.public_key() == *validators.leader(height, 0))
            .expect("the leader is a member");
        let block = Block {
            header: BlockHeader {
                chain_id: chain,
                height,
                view: 0,
                parent: genesis.block().hash(),
                timestamp_ms: 1,
                proposer: keys[leader].public_key(),
                tx_root: Hash::ZERO,
                witness_root: Hash::ZERO,
                utxo_commitment: Hash::ZERO,
                validators_hash: Hash::ZERO,
            },
            transactions: vec![],
        }
        .seal();
        LocalHeight {
            chain,
            keys,
            validators,
            height,
            block,
            leader,
        }
    }
}
