//! Criterion benchmarks for the TimeCoin crates; run with `cargo bench -p timecoin-benches` (one file:
//! `--bench NAME`). Figures, with the command and machine that produced them, are in docs/BENCHMARKS.md.
//!
//! This library holds what every bench file shares: the run lengths and the `main` they expand to.

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
