//! Four real `timed` processes on 127.0.0.1 from a generated genesis: they finalize heartbeat blocks,
//! survive one of them being killed, let it catch up, stop cleanly on SIGTERM and resume the chain.
//!
//! Heights are read from the nodes' JSON logs (the `tip` line each node writes when its tip moves), so
//! the test needs no RPC. Blocks come from the local network's 1 s heartbeat; transfers need the RPC
//! and are tested with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

const TIMED: &str = env!("CARGO_BIN_EXE_timed");
const NODES: usize = 4;
/// Generous: the machine may be busy building other things while CI runs this.
const WAIT: Duration = Duration::from_secs(45);
/// A node's own shutdown bound is 10 s.
const STOP: Duration = Duration::from_secs(15);

/// A child process that is killed if the test ends before it is waited for.
struct Proc {
    child: Option<Child>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc {
            child: Some(cmd.spawn().unwrap()),
        }
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().unwrap();
        kill_process(Pid::from_child(child), signal).unwrap();
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node run by the test itself, logging JSON to its own file.
fn start_node(datadir: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc::spawn(
        Command::new(TIMED)
            .env_clear()
            .arg("--datadir")
            .arg(datadir)
            .args(["--log-format", "json", "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// The JSON events of a log from byte `from` on (lines that are not JSON are skipped).
fn events(log: &Path, from: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default()).to_string();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Heights of the events with `message`.
fn heights(log: &Path, from: usize, message: &str) -> Vec<u64> {
    events(log, from)
        .iter()
        .filter(|e| e["message"] == message)
        .filter_map(|e| e["height"].as_u64())
        .collect()
}

/// Each tip a log reports: height to block hash.
fn tips(log: &Path) -> BTreeMap<u64, String> {
    events(log, 0)
        .iter()
        .filter(|e| e["message"] == "tip")
        .filter_map(|e| Some((e["height"].as_u64()?, e["tip"].as_str()?.to_string())))
        .collect()
}

/// No two logs name different blocks at one height: the nodes share one chain.
fn assert_one_chain(logs: &[PathBuf]) -> usize {
    let mut chain: BTreeMap<u64, String> = BTreeMap::new();
    for log in logs {
        for (height, hash) in tips(log) {
            let seen = chain.entry(height).or_insert_with(|| hash.clone());
            assert_eq!(*seen, hash, "two blocks at height {height}");
        }
    }
    chain.len()
}

fn tip(log: &Path, from: usize) -> u64 {
    heights(log, from, "tip").into_iter().max().unwrap_or(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{:>6.1?}  until {what}", start.elapsed());
}

/// A directory under the target dir that is removed only when the test passes, so a failure leaves the
/// nodes' logs to read.
struct Workdir(PathBuf);

impl Workdir {
    fn new(name: &str) -> Workdir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Workdir(path)
    }

    fn passed(self) {
        // TIMED_TEST_KEEP=1 keeps the logs of a passing run too.
        if std::env::var_os("TIMED_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn setup(dir: &Path) {
    let out = Command::new(TIMED)
        .env_clear()
        .args(["testnet", "--nodes", "4", "--setup-only", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node{i}"))
}

fn stop_all(nodes: &mut [Proc], logs: &[PathBuf]) -> Vec<u64> {
    for node in nodes.iter() {
        node.signal(Signal::TERM);
    }
    nodes
        .iter_mut()
        .zip(logs)
        .enumerate()
        .map(|(i, (node, log))| {
            let status = node.wait(STOP);
            assert!(status.success(), "node{i} exited with {status}");
            let stopped = heights(log, 0, "stopped cleanly");
            assert_eq!(stopped.len(), 1, "node{i} logged one clean stop");
            stopped[0]
        })
        .collect()
}

#[test]
fn four_processes_finalize_survive_a_kill_and_resume_after_sigterm() {
    let root = Workdir::new("timed-four-processes");
    let dir = root.0.as_path();
    setup(dir);
    let log = |run: &str, i: usize| dir.join(format!("{run}-node{i}.log"));

    let logs: Vec<PathBuf> = (0..NODES).map(|i| log("first", i)).collect();
    let mut nodes: Vec<Proc> = (0..NODES)
        .map(|i| start_node(&node_dir(dir, i), &logs[i]))
        .collect();
    wait_until("all four finalize height 3", || {
        logs.iter().all(|l| tip(l, 0) >= 3)
    });

    // SIGKILL one: a quorum (3 of 4 equal weights) remains, so the others keep finalizing.
    let killed = NODES - 1;
    nodes[killed].signal(Signal::KILL);
    assert!(!nodes[killed].wait(STOP).success());
    let last_seen = tip(&logs[killed], 0);
    let before = tip(&logs[0], 0);
    wait_until("the other three finalize 3 more heights", || {
        logs[..killed].iter().all(|l| tip(l, 0) >= before + 3)
    });

    // Restart it: nothing it had finalized is lost, and it catches up by itself.
    let relog = log("restarted", killed);
    nodes[killed] = start_node(&node_dir(dir, killed), &relog);
    wait_until("the restarted node says where it starts", || {
        !heights(&relog, 0, "starting").is_empty()
    });
    let resumed = heights(&relog, 0, "starting")[0];
    assert!(
        resumed >= last_seen,
        "started at {resumed}, had finalized {last_seen}"
    );
    let target = tip(&logs[0], 0);
    wait_until("the restarted node catches up", || tip(&relog, 0) >= target);

    // SIGTERM all: each exits 0 after a clean stop.
    let mut all_logs = logs.clone();
    all_logs.push(relog.clone());
    assert!(assert_one_chain(&all_logs) >= 6);
    all_logs.pop();
    all_logs[killed] = relog;
    let stopped = stop_all(&mut nodes, &all_logs);

    // A restart resumes every node at the height it stopped at, and the chain goes on.
    let logs: Vec<PathBuf> = (0..NODES).map(|i| log("second", i)).collect();
    let mut nodes: Vec<Proc> = (0..NODES)
        .map(|i| start_node(&node_dir(dir, i), &logs[i]))
        .collect();
    let highest = stopped.iter().copied().max().unwrap();
    wait_until("the chain moves past where it stopped", || {
        logs.iter().all(|l| tip(l, 0) > highest)
    });
    for (i, l) in logs.iter().enumerate() {
        let start = heights(l, 0, "starting")[0];
        assert!(
            start >= stopped[i],
            "node{i} restarted at {start}, stopped at {}",
            stopped[i]
        );
    }
    stop_all(&mut nodes, &logs);
    assert_one_chain(&logs);
    root.passed();
}

#[test]
fn the_testnet_command_stops_cleanly_on_sigterm_and_resumes_its_chain() {
    let root = Workdir::new("timed-testnet-command");
    let dir = root.0.join("net");
    let run = |out: &Path| {
        Proc::spawn(
            Command::new(TIMED)
                .env_clear()
                .args(["testnet", "--nodes", "4", "--log-format", "json", "--dir"])
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(out).unwrap())
                .stderr(Stdio::null()),
        )
    };
    let logs: Vec<PathBuf> = (0..NODES)
        .map(|i| node_dir(&dir, i).join("timed.log"))
        .collect();

    let first_out = root.0.join("first.out");
    let mut supervisor = run(&first_out);
    wait_until("all four finalize height 2", || {
        logs.iter().all(|l| tip(l, 0) >= 2)
    });
    let printed = std::fs::read_to_string(&first_out).unwrap();
    assert!(
        printed.contains("created a local testnet of 4 nodes"),
        "{printed}"
    );
    assert!(printed.contains("accounts/account-0.key"), "{printed}");
    supervisor.signal(Signal::TERM);
    let status = supervisor.wait(Duration::from_secs(25));
    assert!(status.success(), "the supervisor exited with {status}");
    let stopped: Vec<u64> = logs
        .iter()
        .map(|l| {
            let s = heights(l, 0, "stopped cleanly");
            assert_eq!(s.len(), 1);
            s[0]
        })
        .collect();

    // The same directory resumes the same chain: same keys, same genesis, heights kept.
    let offsets: Vec<usize> = logs
        .iter()
        .map(|l| std::fs::metadata(l).unwrap().len() as usize)
        .collect();
    let second_out = root.0.join("second.out");
    let mut supervisor = run(&second_out);
    let highest = stopped.iter().copied().max().unwrap();
    wait_until("the resumed chain moves past where it stopped", || {
        logs.iter()
            .zip(&offsets)
            .all(|(l, &from)| tip(l, from) > highest)
    });
    assert!(
        std::fs::read_to_string(&second_out)
            .unwrap()
            .contains("resuming")
    );
    for (i, (l, &from)) in logs.iter().zip(&offsets).enumerate() {
        assert!(heights(l, from, "starting")[0] >= stopped[i]);
    }

    // A supervisor killed outright leaves no node behind: each sees its parent go and stops cleanly.
    supervisor.signal(Signal::KILL);
    supervisor.wait(STOP);
    wait_until("every node stops after its supervisor died", || {
        logs.iter()
            .zip(&offsets)
            .all(|(l, &from)| !heights(l, from, "stopped cleanly").is_empty())
    });
    root.passed();
}

#[test]
fn a_testnet_directory_is_reused_as_it_is_and_never_resized() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("net");
    let setup = |nodes: &str| {
        Command::new(TIMED)
            .env_clear()
            .args(["testnet", "--setup-only", "--nodes", nodes, "--dir"])
            .arg(&dir)
            .output()
            .unwrap()
    };
    assert!(setup("2").status.success());
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap();
    let genesis = read(dir.join("genesis.toml"));
    let key = read(node_dir(&dir, 1).join("operator.key"));
    let account = read(dir.join("accounts").join("account-0.key"));

    let again = setup("2");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("resuming"));
    assert_eq!(read(dir.join("genesis.toml")), genesis);
    assert_eq!(read(node_dir(&dir, 1).join("operator.key")), key);
    assert_eq!(read(dir.join("accounts").join("account-0.key")), account);

    let resized = setup("3");
    assert_eq!(resized.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&resized.stderr).contains("pass --nodes 2"));
}

/// A node whose store is empty while the others are ahead does not replay the chain: it walks their
/// certified headers, imports the UTXO set at their tip, and then follows the chain with them.
#[test]
fn a_node_started_on_an_empty_store_state_syncs_from_the_others_then_follows() {
    let root = Workdir::new("timed-state-sync");
    let dir = root.0.as_path();
    setup(dir);
    // node3 joins later; it state-syncs once the others are 3 blocks ahead (the default is 1000).
    let config = node_dir(dir, 3).join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("state_sync_min_lag = 1000"));
    std::fs::write(
        &config,
        text.replace("state_sync_min_lag = 1000", "state_sync_min_lag = 3"),
    )
    .unwrap();
    let logs: Vec<PathBuf> = (0..NODES)
        .map(|i| dir.join(format!("node{i}.log")))
        .collect();
    // Three of four equal weights are a quorum.
    let mut nodes: Vec<Proc> = (0..NODES - 1)
        .map(|i| start_node(&node_dir(dir, i), &logs[i]))
        .collect();
    wait_until("three nodes finalize height 5", || {
        logs[..NODES - 1].iter().all(|l| tip(l, 0) >= 5)
    });
    nodes.push(start_node(&node_dir(dir, 3), &logs[3]));
    let imported = "state sync imported the chain";
    wait_until("the fourth imports a snapshot", || {
        !heights(&logs[3], 0, imported).is_empty()
    });
    assert!(heights(&logs[3], 0, imported)[0] >= 5);
    let target = tip(&logs[0], 0) + 2;
    wait_until("it follows the chain", || tip(&logs[3], 0) >= target);
    assert_one_chain(&logs);
    stop_all(&mut nodes, &logs);
    root.passed();
}
