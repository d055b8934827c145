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

/// This test binary re-run as a child on `test_name` (with `child_env` set to `dir`), its stdout handed
/// to the caller to parse and its stderr collected, so a child that dies by itself can say why.
#[cfg(unix)]
pub struct Child {
    child: std::process::Child,
    errors: std::thread::JoinHandle<String>,
}

#[cfg(unix)]
impl Child {
    /// Starts the child; returns it and its stdout.
    pub fn spawn(
        test_name: &str,
        child_env: &str,
        dir: &std::path::Path,
    ) -> (Self, std::process::ChildStdout) {
        use std::io::Read;
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(child_env, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        (Child { child, errors }, stdout)
    }

    /// Kills the child with SIGKILL, asserts it was still running, and returns what `reader` (the thread
    /// parsing its stdout) made of it.
    pub fn kill<T>(mut self, reader: std::thread::JoinHandle<T>) -> T {
        use std::os::unix::process::ExitStatusExt;
        let exited_early = self.child.try_wait().unwrap();
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        let run = reader.join().unwrap();
        let stderr = self.errors.join().unwrap();
        assert!(
            exited_early.is_none() && status.signal() == Some(9),
            "child ended by itself ({status:?}) instead of being killed:\n{stderr}"
        );
        run
    }
}

/// The words of a child's stdout line from the first of `keywords` on: libtest may print its own
/// "test … … " prefix on the same line as the child's first words.
pub fn child_words<'a>(line: &'a str, keywords: &[&str]) -> std::str::SplitWhitespace<'a> {
    let start = keywords
        .iter()
        .filter_map(|w| line.find(w))
        .min()
        .unwrap_or(line.len());
    line.get(start..).unwrap_or("").split_whitespace()
}
