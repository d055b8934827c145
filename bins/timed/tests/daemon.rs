//! One node's life as systemd sees it: READY=1 once it runs, STOPPING=1 on SIGTERM, then exit 0 within
//! the shutdown bound, with the store flushed and the same height on the next start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

const TIMED: &str = env!("CARGO_BIN_EXE_timed");

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = socket
        .recv(&mut buf)
        .expect("no notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

fn run_once(datadir: &Path, socket_path: &Path, socket: &UnixDatagram) -> String {
    let log = datadir.join("run.log");
    let mut child = Command::new(TIMED)
        .env_clear()
        .env("NOTIFY_SOCKET", socket_path)
        .arg("--datadir")
        .arg(datadir)
        // A lone observer of the local devnet: it needs no peers to start and stop.
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(receive(socket).contains("READY=1"));
    kill_process(Pid::from_child(&child), Signal::TERM).unwrap();
    assert!(receive(socket).contains("STOPPING=1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within the 10 s bound");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exited with {status}");
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn a_node_notifies_systemd_and_stops_cleanly_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let datadir = root.path().join("node");
    let init = Command::new(TIMED)
        .env_clear()
        .args(["init", "--network", "local", "--datadir"])
        .arg(&datadir)
        .output()
        .unwrap();
    assert!(init.status.success());
    let socket_path = root.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let first = run_once(&datadir, &socket_path, &socket);
    assert!(first.contains("\"message\":\"stopped cleanly\""), "{first}");
    // The data dir opens again (sled's lock was released and the store flushed).
    let second = run_once(&datadir, &socket_path, &socket);
    assert!(
        second.contains("\"message\":\"stopped cleanly\""),
        "{second}"
    );
    // Nothing secret reaches the log.
    let secret = std::fs::read_to_string(datadir.join("node.key")).unwrap();
    assert!(!first.contains(secret.trim()) && !second.contains(secret.trim()));
}
