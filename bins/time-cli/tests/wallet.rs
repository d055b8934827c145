//! The `time-cli` binary against a real node over HTTP: a payment from key to receipt, the exit codes
//! of bad input, and a short load run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{TestNode, assert_exit, json, stderr, stdout};
use serde_json::Value;
use timecoin_types::COIN;

#[test]
fn a_payment_goes_from_a_new_key_to_a_receipt_verified_offline() {
    let node = TestNode::start();
    let dir = node.dir.path();
    let funded = node.funded_key();

    let alice_key = dir.join("alice.key");
    let made = json(&node.cli(&["--json", "keygen", "--out", alice_key.to_str().unwrap()]));
    let alice = made["address"].as_str().unwrap().to_string();
    let empty = json(&node.cli(&["--json", "balance", &alice]));
    assert_eq!(empty["balance_sat"], 0);

    let sent = json(&node.cli(&[
        "--json",
        "send",
        "--from",
        funded.to_str().unwrap(),
        &alice,
        "5",
    ]));
    let txid = sent["txid"].as_str().unwrap().to_string();
    assert_eq!(sent["amount_sat"], 5 * COIN);
    // The default fee is 1 sat per byte of the signed transaction.
    assert_eq!(sent["fee_sat"], sent["size"]);
    assert!(sent["change_sat"].as_u64().unwrap() > 0);

    let done = json(&node.cli(&["--json", "wait-final", &txid, "--timeout", "30"]));
    assert_eq!(done["final"], true);
    let table = node.cli(&["balance", &alice]);
    assert_exit(&table, 0);
    assert!(
        stdout(&table).contains("5.00000000 TIME"),
        "{}",
        stdout(&table)
    );

    // The receipt checks out offline against the genesis set, and against a saved validator set.
    let receipt = node.cli(&["receipt", &txid]);
    assert_exit(&receipt, 0);
    let receipt_file = dir.join("receipt.json");
    std::fs::write(&receipt_file, &receipt.stdout).unwrap();
    let genesis_file = dir.join("genesis.toml");
    node.write_genesis_toml(&genesis_file);
    let verified = json(&node.cli(&[
        "--json",
        "verify-receipt",
        receipt_file.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]));
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["txid"], Value::String(txid.clone()));
    assert_eq!(verified["height"], done["height"]);
    let validators = node.cli(&["validators"]);
    assert_exit(&validators, 0);
    let validators_file = dir.join("validators.json");
    std::fs::write(&validators_file, &validators.stdout).unwrap();
    let again = node.cli(&[
        "verify-receipt",
        receipt_file.to_str().unwrap(),
        "--validators",
        validators_file.to_str().unwrap(),
    ]);
    assert_exit(&again, 0);
    assert!(stdout(&again).contains("valid"));

    // A receipt whose transaction was swapped, or checked against strangers, does not verify.
    let mut forged: Value = serde_json::from_slice(&receipt.stdout).unwrap();
    forged["index"] = Value::from(1);
    let forged_file = dir.join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let refused = node.cli(&[
        "verify-receipt",
        forged_file.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert_exit(&refused, 5);
    assert!(stderr(&refused).contains("Merkle"), "{}", stderr(&refused));
    let strangers: Value = serde_json::json!({
        "chain_id": node.genesis.params.chain_id.0,
        "validators": [{
            "operator_key": timecoin_types::Genesis::local_validator_key(7).public_key().to_hex(),
            "tier": "bronze",
            "owner": alice,
        }],
    });
    let strangers_file = dir.join("strangers.json");
    std::fs::write(&strangers_file, strangers.to_string()).unwrap();
    let refused = node.cli(&[
        "verify-receipt",
        receipt_file.to_str().unwrap(),
        "--validators",
        strangers_file.to_str().unwrap(),
    ]);
    assert_exit(&refused, 5);

    // Alice pays back from her one coin, with change, and waits for it in the same command.
    let back = json(&node.cli(&[
        "--json",
        "send",
        "--from",
        alice_key.to_str().unwrap(),
        &node.funded_address(),
        "1.5",
        "--fee",
        "1000sat",
        "--wait",
        "--timeout",
        "30",
    ]));
    assert_eq!(back["fee_sat"], 1000);
    assert_eq!(back["final"]["final"], true);
    let left = json(&node.cli(&["--json", "balance", &alice]));
    assert_eq!(left["balance_sat"], 5 * COIN - 150_000_000 - 1000);
    node.stop();
}

#[test]
fn bad_input_and_unreachable_nodes_get_their_documented_exit_codes() {
    let node = TestNode::start();
    let funded = node.funded_key();
    let from = funded.to_str().unwrap();
    let to = node.funded_address();

    // 1: usage and input.
    assert_exit(
        &node.cli(&["send", "--from", from, "ltime1notanaddress", "1"]),
        1,
    );
    assert_exit(&node.cli(&["send", "--from", from, &to, "abc"]), 1);
    assert_exit(&node.cli(&["send", "--from", from, &to, "500sat"]), 1);
    let rich = node.cli(&["send", "--from", from, &to, "99999999"]);
    assert_exit(&rich, 1);
    assert!(
        stderr(&rich).contains("insufficient funds"),
        "{}",
        stderr(&rich)
    );
    assert_exit(
        &node.cli(&["send", "--from", "/nonexistent.key", &to, "1"]),
        1,
    );
    assert_exit(&node.cli(&["wait-final", "zz"]), 1);
    assert_exit(&node.cli(&["--no-such-flag"]), 1);
    assert_exit(&node.cli(&["verify-receipt", "receipt.json"]), 1);

    // 3: the node's own refusal, with its code and message.
    let unknown = "00".repeat(32);
    let missing = node.cli(&["receipt", &unknown]);
    assert_exit(&missing, 3);
    assert!(
        stderr(&missing).contains("error -5"),
        "{}",
        stderr(&missing)
    );
    assert_exit(&node.cli(&["balance", "ltime1qqqq"]), 1);
    let foreign = timecoin_crypto::Address::from_public_key(
        &timecoin_types::Genesis::local_validator_key(3).public_key(),
    )
    .encode(timecoin_crypto::Network::Mainnet);
    let refused = node.cli(&["balance", &foreign]);
    assert_exit(&refused, 3);
    assert!(
        stderr(&refused).contains("error -8"),
        "{}",
        stderr(&refused)
    );

    // 4: not final in time.
    let late = node.cli(&["wait-final", &unknown, "--timeout", "1"]);
    assert_exit(&late, 4);
    assert!(stderr(&late).contains("not final"), "{}", stderr(&late));

    // 2: nobody listening, wrong password, no cookie.
    let cli = || std::process::Command::new(env!("CARGO_BIN_EXE_time-cli"));
    let down = cli()
        .args([
            "--rpc",
            "http://127.0.0.1:1",
            "--rpc-user",
            "u",
            "--rpc-password",
            "p",
        ])
        .args(["balance", &to])
        .output()
        .unwrap();
    assert_exit(&down, 2);
    let wrong = cli()
        .args([
            "--rpc",
            &node.url,
            "--rpc-user",
            "u",
            "--rpc-password",
            "hunter2",
        ])
        .args(["balance", &to])
        .output()
        .unwrap();
    assert_exit(&wrong, 2);
    assert!(!stderr(&wrong).contains("hunter2"));
    let nocookie = cli()
        .args(["--rpc", &node.url, "--datadir", "/nonexistent"])
        .args(["balance", &to])
        .output()
        .unwrap();
    assert_exit(&nocookie, 2);
    assert!(
        stderr(&nocookie).contains(".cookie"),
        "{}",
        stderr(&nocookie)
    );

    // --help documents the codes.
    let help = cli().arg("--help").output().unwrap();
    assert_exit(&help, 0);
    assert!(stdout(&help).contains("Exit codes"));
    node.stop();
}

#[test]
fn a_short_load_run_finalizes_transfers_and_reports_latency() {
    let node = TestNode::start();
    let funded = node.funded_key();
    let report = json(&node.cli(&[
        "--json",
        "loadgen",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--from",
        funded.to_str().unwrap(),
        "--settle",
        "15s",
    ]));
    eprintln!("{report}");
    assert_eq!(report["scheduled"], 100, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert!(report["finalized"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["finalized_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let p50 = report["latency_ms"]["p50"].as_f64().unwrap();
    let max = report["latency_ms"]["max"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= max, "{report}");

    // The live view's one-shot form sees the blocks the run made.
    let top = json(&node.cli(&["--json", "top", "--once"]));
    assert_eq!(top["nodes"][0]["state"], "up", "{top}");
    assert!(top["nodes"][0]["height"].as_u64().unwrap() >= 2, "{top}");
    assert!(!top["blocks"].as_array().unwrap().is_empty(), "{top}");
    // Two nodes, one of them down: the screen says so and why, and the command still succeeds.
    let text = node.cli(&[
        "--rpc",
        "http://127.0.0.1:1",
        "--datadir",
        node.dir.path().to_str().unwrap(),
        "top",
        "--once",
    ]);
    assert_exit(&text, 0);
    let screen = stdout(&text);
    assert!(screen.contains("1/2 nodes up"), "{screen}");
    assert!(screen.contains("down — unreachable"), "{screen}");
    assert!(screen.contains("last blocks"), "{screen}");
    node.stop();
}

#[test]
fn a_split_past_one_transaction_goes_through_parent_coins() {
    let node = TestNode::start();
    let funded = node.funded_key();
    // 1,200 coins need two split transactions of at most 999 outputs, funded by one parent each.
    let report = json(&node.cli(&[
        "--json",
        "loadgen",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--coins",
        "1200",
        "--from",
        funded.to_str().unwrap(),
    ]));
    assert_eq!(report["coins"], 1200, "{report}");
    assert_eq!(report["finalized"], 100, "{report}");
    let bad = node.cli(&[
        "loadgen",
        "--rate",
        "0",
        "--duration",
        "1s",
        "--from",
        funded.to_str().unwrap(),
    ]);
    assert_exit(&bad, 1);
    node.stop();
}

#[test]
fn a_batch_answers_each_call_in_order_and_a_refusal_stays_with_its_call() {
    use time_cli::rpc::{Credentials, Endpoint, RpcClient, RpcError};
    let node = TestNode::start();
    let client = RpcClient::new(Endpoint {
        name: "node".into(),
        url: node.url.clone(),
        credentials: Credentials::Cookie(node.dir.path().join(".cookie")),
    });
    let genesis = node.genesis.block().hash().to_string();
    let answers = client
        .batch(
            "getblockhash",
            &[
                serde_json::json!([0]),
                serde_json::json!([99]),
                serde_json::json!([0]),
            ],
        )
        .unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(
        answers[0].as_ref().unwrap(),
        &Value::String(genesis.clone())
    );
    assert!(matches!(&answers[1], Err(RpcError::Node { code: -8, .. })));
    assert_eq!(answers[2].as_ref().unwrap(), &Value::String(genesis));
    // Over the node's batch limit is refused before anything is sent.
    let many = vec![serde_json::json!([0]); time_cli::rpc::MAX_BATCH + 1];
    assert!(client.batch("getblockhash", &many).is_err());
    node.stop();
}

/// A coin that a pooled payment already spends is left out of the next one: with nothing final, a
/// second payment finds no funds rather than signing a conflicting spend.
#[test]
fn a_coin_spent_by_a_pooled_payment_is_not_chosen_again() {
    let node = TestNode::start_in_set_of(2);
    let key = node.funded_key();
    let key = key.to_str().unwrap();
    let to = node.funded_address();
    let first = node.cli(&["send", "--from", key, &to, "1"]);
    assert_exit(&first, 0);
    let second = node.cli(&["send", "--from", key, &to, "1"]);
    assert_exit(&second, 1);
    assert!(
        stderr(&second).contains("insufficient funds"),
        "{}",
        stderr(&second)
    );
    node.stop();
}
