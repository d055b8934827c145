//! What the sled store asks the kernel to make durable, seen at the system-call level.
//!
//! SIGKILL (tests/crash.rs) loses the process but not the page cache, so it cannot tell a write that
//! reached the disk from one that did not. This test re-executes its own binary as a writer (selected by
//! [`CHILD_ENV`]) under `strace`, tracing the calls that sync files, and checks that every acknowledged
//! write was followed by an `fdatasync` or `fsync` of sled's data file before it was acknowledged, and
//! that creating the store synced the directories that name its files.
//!
//! The writer marks each acknowledgement by fsyncing an empty file named after it, so the trace shows
//! where one operation ends and the next begins.

#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{ChainDb, ChainStore, ConsensusStateStore, SledEngine, StorageConfig};

const CHILD_ENV: &str = "TIMECOIN_STORAGE_STRACE_CHILD";
const TEST_NAME: &str = "every_acknowledged_write_syncs_sleds_data_file";
/// Blocks the writer applies.
const BLOCKS: usize = 3;

/// The store lives in `<root>/store`, which does not exist yet; markers go to `<root>/marks`.
fn child(root: &Path) {
    let dir = root.join("store");
    let marks = root.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mark = |name: &str| {
        std::fs::File::create(marks.join(name))
            .and_then(|f| f.sync_all())
            .unwrap();
    };
    mark("start");
    // No background flush: its fsyncs would land between operations at random and could hide a
    // missing one.
    let config = StorageConfig {
        cache_bytes: 16 * 1024 * 1024,
        flush_interval: None,
        ..StorageConfig::sled(&dir)
    };
    let factory = BlockFactory::local(4);
    let store = ChainDb::open(
        SledEngine::open(&dir, &config).unwrap(),
        &config,
        factory.genesis(),
    )
    .unwrap();
    mark("created");
    for i in 0..BLOCKS {
        let (block, cert) = factory.next_block(&store, 3).unwrap();
        store.apply_finalized(&block, &cert).unwrap();
        mark(&format!("block-{i}"));
    }
    store.append_wal(5, b"a vote").unwrap();
    mark("append_wal");
    store.save_signed(b"h=5 v=0 commit").unwrap();
    mark("save_signed");
    store.prune_below(6).unwrap();
    mark("prune_below");
}

/// One sync call from the trace: the call's name and the path of the file it synced.
#[derive(Debug)]
struct Sync {
    call: String,
    path: PathBuf,
}

/// Parses `strace -f -y` lines such as `123 fdatasync(7</tmp/x/store/db>) = 0` (or `… <unfinished …>`).
fn parse(trace: &str) -> Vec<Sync> {
    let mut syncs = Vec::new();
    for line in trace.lines() {
        for call in ["fdatasync", "fsync", "sync_file_range"] {
            let Some(at) = line.find(&format!("{call}(")) else {
                continue;
            };
            // `fsync(` also matches inside `fdatasync(`; take the call whose name starts a word.
            if at > 0 && line.as_bytes()[at - 1].is_ascii_alphabetic() {
                continue;
            }
            let rest = &line[at + call.len() + 1..];
            if let (Some(open), Some(close)) = (rest.find('<'), rest.find('>')) {
                syncs.push(Sync {
                    call: call.to_string(),
                    path: PathBuf::from(&rest[open + 1..close]),
                });
            }
        }
    }
    syncs
}

fn strace_available() -> bool {
    Command::new("strace").arg("-V").output().is_ok()
}

#[test]
fn every_acknowledged_write_syncs_sleds_data_file() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        child(Path::new(&root));
        return;
    }
    if !strace_available() {
        let notice = "strace is not installed: the syscall-level durability test cannot run";
        if std::env::var_os("CI").is_some() {
            panic!("{notice}, and CI must run it (install strace)");
        }
        // Written straight to stderr, which the test harness does not capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!\n!!! SKIPPED {TEST_NAME}: {notice} (CI fails here)\n!!!!!!!!\n"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // strace prints the paths the kernel resolved, so compare against a resolved root.
    let root = tmp.path().canonicalize().unwrap();
    let trace_file = root.join("trace");
    let output = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-e",
            "trace=fsync,fdatasync,sync_file_range",
            "-o",
        ])
        .arg(&trace_file)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "writer under strace failed ({:?}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let syncs = parse(&std::fs::read_to_string(&trace_file).unwrap());
    let store = root.join("store");
    let data_file = store.join("db");
    let marks = root.join("marks");
    let is_durable_sync = |s: &Sync, path: &Path| s.path == path && s.call != "sync_file_range";

    // Split the trace at the markers: each span holds what one operation synced before it returned.
    let mut spans: Vec<(String, Vec<&Sync>)> = Vec::new();
    let mut current: Vec<&Sync> = Vec::new();
    for s in &syncs {
        match s.path.strip_prefix(&marks) {
            Ok(name) => {
                spans.push((
                    name.to_string_lossy().into_owned(),
                    std::mem::take(&mut current),
                ));
            }
            Err(_) => current.push(s),
        }
    }
    let names: Vec<&str> = spans.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected = vec!["start".to_string(), "created".to_string()];
    expected.extend((0..BLOCKS).map(|i| format!("block-{i}")));
    expected.extend(["append_wal", "save_signed", "prune_below"].map(String::from));
    assert_eq!(names, expected, "markers in the trace");

    for (name, span) in spans.iter().skip(1) {
        assert!(
            span.iter().any(|s| is_durable_sync(s, &data_file)),
            "{name}: acknowledged without an fdatasync or fsync of {} (synced: {:?})",
            data_file.display(),
            span.iter()
                .map(|s| format!("{} {}", s.call, s.path.display()))
                .collect::<Vec<_>>()
        );
    }
    let (_, created) = &spans[1];
    for dir in [&store, &root] {
        assert!(
            created.iter().any(|s| is_durable_sync(s, dir)),
            "creating the store did not fsync the directory {}",
            dir.display()
        );
    }
}
