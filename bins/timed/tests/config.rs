//! The config as an operator meets it, through the binary: precedence (flags > `TIMED_*` environment >
//! file > defaults), errors that name the file's line, and `init`'s files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const TIMED: &str = env!("CARGO_BIN_EXE_timed");

/// `timed` with a clean environment (no RUST_LOG or TIMED_* from the caller) plus `env`.
fn timed(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(TIMED);
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn effective(config: &Path, flags: &[&str], env: &[(&str, &str)]) -> toml::Value {
    let mut args = vec!["--config", config.to_str().unwrap(), "--print-config"];
    args.extend_from_slice(flags);
    let out = timed(&args, env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn flags_beat_environment_beats_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "network = \"local\"\n[log]\nlevel = \"warn\"\n[p2p]\nlisten = \"127.0.0.1:1111\"\n",
    );

    // The file over the defaults; what it leaves out keeps the network's default.
    let v = effective(&config, &[], &[]);
    assert_eq!(v["p2p"]["listen"].as_str(), Some("127.0.0.1:1111"));
    assert_eq!(v["log"]["level"].as_str(), Some("warn"));
    assert_eq!(v["rpc"]["listen"].as_str(), Some("127.0.0.1:24301"));
    assert_eq!(v["metrics"]["enabled"].as_bool(), Some(false));
    assert_eq!(v["shutdown"]["timeout_secs"].as_integer(), Some(10));
    assert_eq!(v["prune_keep_blocks"].as_integer(), Some(0));
    // The data dir is the config's folder, and paths in the file are relative to it.
    assert_eq!(v["datadir"].as_str(), dir.path().to_str());
    assert_eq!(v["node_key"].as_str(), dir.path().join("node.key").to_str());

    // The environment over the file.
    let env = [
        ("TIMED_LISTEN", "127.0.0.1:2222"),
        ("TIMED_LOG_LEVEL", "debug"),
        ("TIMED_METRICS_ENABLED", "true"),
        ("TIMED_RPC_LISTEN", "127.0.0.1:3333"),
    ];
    let v = effective(&config, &[], &env);
    assert_eq!(v["p2p"]["listen"].as_str(), Some("127.0.0.1:2222"));
    assert_eq!(v["log"]["level"].as_str(), Some("debug"));
    assert_eq!(v["metrics"]["enabled"].as_bool(), Some(true));
    assert_eq!(v["rpc"]["listen"].as_str(), Some("127.0.0.1:3333"));

    // Flags over the environment.
    let v = effective(
        &config,
        &["--listen", "127.0.0.1:4444", "--log-level", "error"],
        &env,
    );
    assert_eq!(v["p2p"]["listen"].as_str(), Some("127.0.0.1:4444"));
    assert_eq!(v["log"]["level"].as_str(), Some("error"));
    assert_eq!(v["rpc"]["listen"].as_str(), Some("127.0.0.1:3333"));

    // RUST_LOG stands in for the level when neither the flag nor TIMED_LOG_LEVEL gives one.
    let v = effective(&config, &[], &[("RUST_LOG", "trace")]);
    assert_eq!(v["log"]["level"].as_str(), Some("trace"));
}

#[test]
fn the_rpc_password_comes_from_the_environment_and_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "network = \"local\"\n");
    let v = effective(
        &config,
        &[],
        &[
            ("TIMED_RPC_USER", "alice"),
            ("TIMED_RPC_PASSWORD", "hunter2-secret"),
        ],
    );
    assert_eq!(v["rpc"]["user"].as_str(), Some("alice"));
    assert_eq!(v["rpc"]["password"].as_str(), Some("<redacted>"));
    assert!(!v.to_string().contains("hunter2-secret"));
}

/// Runs the node on `text` and returns its error output; it must fail.
fn refused(text: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), text);
    let out = timed(&["--config", config.to_str().unwrap()], env);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_wrong_key_or_value_is_an_error_naming_its_line() {
    let err = refused(
        "network = \"local\"\n\n[p2p]\nlisten = \"127.0.0.1:1\"\nmax_peer = 8\n",
        &[],
    );
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("max_peer"), "{err}");

    let err = refused(
        "network = \"local\"\n[rpc]\nenabled = true\nlisten = 8332\n",
        &[],
    );
    assert!(err.contains("line 4"), "{err}");

    let err = refused("[p2p]\nmax_peers = 0\n", &[]);
    assert!(err.contains("line 2") && err.contains("1..=4096"), "{err}");

    let err = refused("network = \"devnet\"\n", &[]);
    assert!(err.contains("line 1") && err.contains("devnet"), "{err}");

    let err = refused("[log]\nformat = \"xml\"\n", &[]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn pruning_keeps_zero_or_at_least_the_sync_window() {
    let err = refused("network = \"local\"\nprune_keep_blocks = 100\n", &[]);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("at least 128"), "{err}");
    let err = refused(
        "network = \"local\"\n",
        &[("TIMED_PRUNE_KEEP_BLOCKS", "50")],
    );
    assert!(err.contains("at least 128"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "network = \"local\"\nprune_keep_blocks = 1000\n",
    );
    let v = effective(&config, &[], &[]);
    assert_eq!(v["prune_keep_blocks"].as_integer(), Some(1000));
    let v = effective(&config, &["--prune-keep-blocks", "0"], &[]);
    assert_eq!(v["prune_keep_blocks"].as_integer(), Some(0));
}

#[test]
fn an_rpc_without_authentication_is_refused() {
    let err = refused("[rpc]\ncookie = false\n", &[]);
    assert!(err.contains("authentication"), "{err}");
    let err = refused("[rpc]\nuser = \"alice\"\n", &[]);
    assert!(err.contains("user and password"), "{err}");
    let err = refused("[rpc]\nuser = \"al:ice\"\npassword = \"x\"\n", &[]);
    assert!(err.contains("without ':'"), "{err}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_private_keys_and_never_overwrites() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    let d = dir.to_str().unwrap();
    let out = timed(
        &["init", "--network", "local", "--datadir", d, "--masternode"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir.join("node.key")), 0o600);
    assert_eq!(mode(&dir.join("operator.key")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // The secret key is in the file and nowhere in what init printed.
    let secret = std::fs::read_to_string(dir.join("node.key")).unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!printed.contains(secret.trim()));

    // The written config runs as is and names the operator key.
    let v: toml::Value = toml::from_str(
        &String::from_utf8(timed(&["--datadir", d, "--print-config"], &[]).stdout).unwrap(),
    )
    .unwrap();
    assert_eq!(v["network"].as_str(), Some("local"));
    assert_eq!(
        v["operator_key"].as_str(),
        dir.join("operator.key").to_str()
    );

    // A second init refuses and leaves every key as it was.
    let again = timed(
        &["init", "--network", "local", "--datadir", d, "--masternode"],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(
        std::fs::read_to_string(dir.join("node.key")).unwrap(),
        secret
    );
}

#[test]
fn a_node_refuses_to_run_on_a_placeholder_genesis() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    let d = dir.to_str().unwrap();
    assert!(
        timed(&["init", "--network", "mainnet", "--datadir", d], &[])
            .status
            .success()
    );
    let out = timed(&["--datadir", d], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("placeholder"));
}
