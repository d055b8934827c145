//! What the SIGKILL crash tests share: how many kills to run and the seed of their delays, from the
//! environment, so a failing run can be replayed.
#![allow(dead_code, unreachable_pub)]

/// `(iterations, seed)`: iterations from `iterations_var` (else `default_iterations`), the seed from
/// `TIMECOIN_CRASH_SEED` (else the clock). Prints the line that replays the delays.
pub fn kill_plan(what: &str, iterations_var: &str, default_iterations: usize) -> (usize, u64) {
    let iterations: usize = std::env::var(iterations_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_iterations);
    let seed: u64 = std::env::var("TIMECOIN_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
    println!(
        "{what}: {iterations} kills, seed {seed} (TIMECOIN_CRASH_SEED={seed} to replay the delays)"
    );
    (iterations, seed)
}
