//! The `top` screen drawn on ratatui's test backend, and the shell completions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use time_cli::top::snapshot::{BlockRow, NodeRow, NodeState, NodeStatus, Snapshot, tx_rate};
use time_cli::top::view::{self, buffer_text};

fn testnet_snapshot() -> Snapshot {
    let up = |name: &str, height: u64, peers: u64| NodeRow {
        name: name.into(),
        url: "http://127.0.0.1:1".into(),
        state: NodeState::Up(NodeStatus {
            height,
            deciding: Some(height + 1),
            view: Some(0),
            phase: Some("prepare".into()),
            peers,
            mempool_txs: 12,
            mempool_bytes: 2048,
            finality_ms: Some(14.25),
            view_changes: 1,
            validator: true,
        }),
    };
    let blocks: Vec<BlockRow> = (0..3)
        .map(|i| BlockRow {
            height: 42 - i,
            hash: format!("{:064x}", 0xabc0 + i),
            txs: 100,
            view: 0,
            timestamp_ms: 1_000_000 - i * 500,
        })
        .collect();
    Snapshot {
        tx_per_sec: tx_rate(&blocks),
        nodes: vec![
            up("node0", 42, 3),
            up("node1", 41, 3),
            NodeRow {
                name: "node2".into(),
                url: "http://127.0.0.1:2".into(),
                state: NodeState::Down {
                    reason: "connection refused".into(),
                },
            },
        ],
        blocks,
    }
}

#[test]
fn the_screen_shows_every_node_and_the_last_blocks() {
    let snapshot = testnet_snapshot();
    let mut terminal = Terminal::new(TestBackend::new(100, 20)).unwrap();
    terminal
        .draw(|frame| view::render(frame, &snapshot))
        .unwrap();
    let text = buffer_text(terminal.backend().buffer());
    assert!(text.contains("2/3 nodes up"), "{text}");
    // Two blocks after the oldest, 200 transactions, over one second.
    assert!(text.contains("200.0 tx/s"), "{text}");
    let node0 = text.lines().find(|l| l.contains("node0")).unwrap();
    for want in ["42", "prepare", "12 tx 2.0 KiB", "14.2 ms", "validator"] {
        assert!(node0.contains(want), "{want} missing from {node0}");
    }
    let node2 = text.lines().find(|l| l.contains("node2")).unwrap();
    assert!(
        node2.contains("down") && node2.contains("connection refused"),
        "{node2}"
    );
    let newest = text
        .lines()
        .position(|l| l.contains("000000000000"))
        .unwrap();
    assert!(
        text.lines()
            .nth(newest)
            .unwrap()
            .trim_start_matches('│')
            .trim_start()
            .starts_with("42")
    );
    assert!(text.contains("-1.000 s"), "{text}");
}

#[test]
fn a_small_terminal_and_an_empty_snapshot_still_draw() {
    let mut terminal = Terminal::new(TestBackend::new(30, 6)).unwrap();
    terminal
        .draw(|frame| view::render(frame, &testnet_snapshot()))
        .unwrap();
    terminal
        .draw(|frame| view::render(frame, &Snapshot::default()))
        .unwrap();
    let text = buffer_text(terminal.backend().buffer());
    assert!(text.contains("0/0 nodes"), "{text}");
}

#[test]
fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_time-cli"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["time-cli", "loadgen", "verify-receipt"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}
