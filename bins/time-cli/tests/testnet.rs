//! The `time-cli` binary against three validators over TCP, found the way `--testnet DIR` finds the
//! nodes of `timed testnet`: the ports in each node's `config.toml`, the cookie in its data dir.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{TestNet, assert_exit, json, stdout};
use timecoin_crypto::Address;
use timecoin_types::Genesis;

#[test]
fn a_testnet_dir_names_every_node_for_top_send_receipt_and_loadgen() {
    let net = TestNet::start(3);
    let dir = net.dir.path();
    let key = dir.join("v0.key");
    Genesis::local_validator_key(0).save(&key).unwrap();
    let key = key.to_str().unwrap();
    let to = Address::from_public_key(&Genesis::local_validator_key(2).public_key())
        .encode(net.genesis.params.network);

    // Every node, each with its two peers.
    let top = json(&net.cli(&["--json", "top", "--once"]));
    let names: Vec<_> = top["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["node0", "node1", "node2"], "{top}");
    for node in top["nodes"].as_array().unwrap() {
        assert_eq!(node["state"], "up", "{top}");
        assert_eq!(node["peers"], 2, "{top}");
    }

    // A payment through node0 (the wallet's node), final once all three signed.
    let sent = json(&net.cli(&["--json", "send", "--from", key, &to, "3", "--wait"]));
    let txid = sent["txid"].as_str().unwrap().to_string();
    assert_eq!(sent["final"]["final"], true, "{sent}");
    let receipt = net.cli(&["receipt", &txid]);
    assert_exit(&receipt, 0);
    let receipt_file = dir.join("receipt.json");
    std::fs::write(&receipt_file, &receipt.stdout).unwrap();
    let genesis_file = dir.join("genesis.toml");
    std::fs::write(&genesis_file, common::TestNode::genesis_toml(&net.genesis)).unwrap();
    let verified = net.cli(&[
        "verify-receipt",
        receipt_file.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert_exit(&verified, 0);
    assert!(stdout(&verified).contains(&txid));

    // Load spread over all three nodes, tracked on node0.
    let report = json(&net.cli(&[
        "--json",
        "loadgen",
        "--rate",
        "60",
        "--duration",
        "1s",
        "--from",
        key,
    ]));
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(report["finalized"], report["submitted"], "{report}");
    assert!(report["finalized"].as_u64().unwrap() >= 60, "{report}");
    net.stop();
}
