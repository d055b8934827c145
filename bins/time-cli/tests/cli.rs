//! End-to-end runs of the `time-cli` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_time-cli"))
}

#[test]
fn keygen_then_address_prints_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let gen_out = cli().args(["keygen", "--out"]).arg(&key).output().unwrap();
    assert!(
        gen_out.status.success(),
        "{}",
        String::from_utf8_lossy(&gen_out.stderr)
    );
    let addr_out = cli().args(["address", "--key"]).arg(&key).output().unwrap();
    assert!(addr_out.status.success());
    assert_eq!(gen_out.stdout, addr_out.stdout);
    let text = String::from_utf8(addr_out.stdout).unwrap();
    let address = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(address.starts_with("ltime1"));

    let ok = cli()
        .args(["check-address", &address, "--network", "local"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let wrong = cli()
        .args(["check-address", &address, "--network", "mainnet"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not mainnet"));
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    assert!(
        cli()
            .args(["keygen", "--out"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let before = std::fs::read(&key).unwrap();
    let again = cli().args(["keygen", "--out"]).arg(&key).output().unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn corrupted_address_is_rejected_with_a_clear_error() {
    // The identity point: a small-order key that would verify any signature.
    let identity = format!("01{}", "00".repeat(31));
    let out = cli().args(["address-of", &identity]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("small order"));
    let bad = cli()
        .args([
            "check-address",
            "ltime1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid address"));
}
