//! Criterion benchmarks; run with `cargo bench -p timecoin-benches`. Figures are recorded in docs/BENCHMARKS.md.
