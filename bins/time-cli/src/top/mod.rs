//! `time-cli top`: a live view of one node or every node of a testnet.
//!
//! The loop polls the nodes into a [`Snapshot`] and draws it with [`view::render`], a pure function of
//! the snapshot, so tests draw on ratatui's `TestBackend` and `--once` prints the same screen as text.

pub mod snapshot;
pub mod view;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

pub use snapshot::{Poller, Snapshot};

use crate::output;
use crate::rpc::RpcClient;

/// How `--once` sizes its text screen: wide enough for every column, tall enough for the blocks.
const ONCE_WIDTH: u16 = 100;

/// Runs the live view until `q`, Esc or Ctrl-C; or, with `once`, prints one snapshot and returns.
pub fn run(clients: &[RpcClient], interval: Duration, once: bool, as_json: bool) -> Result<()> {
    let mut poller = Poller::default();
    if once {
        let snap = poller.poll(clients);
        if as_json {
            return output::json(&snapshot::to_json(&snap));
        }
        let rows = u16::try_from(snap.nodes.len() + snap.blocks.len()).unwrap_or(200);
        let text = view::render_text(&snap, ONCE_WIDTH, rows.saturating_add(10));
        return output::line(text.trim_end());
    }
    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    let result = live(&mut terminal, &mut poller, clients, interval);
    ratatui::restore();
    result
}

fn live(
    terminal: &mut ratatui::DefaultTerminal,
    poller: &mut Poller,
    clients: &[RpcClient],
    interval: Duration,
) -> Result<()> {
    loop {
        let snap = poller.poll(clients);
        terminal.draw(|frame| view::render(frame, &snap))?;
        let next = Instant::now() + interval;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if event::poll(left)?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return Ok(());
                }
            }
        }
    }
}
