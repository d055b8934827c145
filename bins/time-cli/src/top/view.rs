//! The `top` screen as a pure function of a [`Snapshot`]: the live loop, `top --once` and the tests
//! all draw through [`render`].

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::snapshot::{NodeState, Snapshot};

/// Bounds of the nodes table's first column, which fits the longest name between them.
const NAME_WIDTH: (u16, u16) = (6, 24);

/// Draws `snapshot` over the whole frame.
pub fn render(frame: &mut Frame<'_>, snapshot: &Snapshot) {
    draw(frame.area(), frame.buffer_mut(), snapshot);
}

/// Draws `snapshot` into `area` of `buf`.
pub fn draw(area: Rect, buf: &mut Buffer, snapshot: &Snapshot) {
    use ratatui::widgets::Widget as _;
    let node_rows = u16::try_from(snapshot.nodes.len()).unwrap_or(u16::MAX);
    let name_width = snapshot
        .nodes
        .iter()
        .map(|n| u16::try_from(n.name.chars().count()).unwrap_or(u16::MAX))
        .max()
        .unwrap_or(0)
        .clamp(NAME_WIDTH.0, NAME_WIDTH.1);
    let [title, nodes, blocks, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(node_rows.saturating_add(3)),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);

    let up = snapshot
        .nodes
        .iter()
        .filter(|n| matches!(n.state, NodeState::Up(_)))
        .count();
    let rate = snapshot
        .tx_per_sec
        .map_or("-".to_string(), |r| format!("{r:.1}"));
    Paragraph::new(Line::from(format!(
        "TimeCoin top — {up}/{} nodes up — {rate} tx/s over the last blocks",
        snapshot.nodes.len()
    )))
    .style(Style::default().add_modifier(Modifier::BOLD))
    .render(title, buf);

    let header = Row::new([
        "node", "height", "view", "phase", "peers", "mempool", "finality", "views+", "role",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = snapshot.nodes.iter().map(|n| match &n.state {
        NodeState::Up(s) => Row::new([
            n.name.clone(),
            s.height.to_string(),
            s.view.map_or("-".into(), |v| v.to_string()),
            s.phase.clone().unwrap_or_else(|| "idle".into()),
            s.peers.to_string(),
            format!("{} tx {}", s.mempool_txs, kib(s.mempool_bytes)),
            s.finality_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
            s.view_changes.to_string(),
            if s.validator { "validator" } else { "follower" }.into(),
        ]),
        NodeState::Down { .. } => {
            Row::new([n.name.clone(), "down".into()]).style(Style::default().fg(Color::Red))
        }
    });
    Table::new(
        rows,
        [
            Constraint::Length(name_width),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(18),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Min(9),
        ],
    )
    .header(header)
    .block(Block::bordered().title(" nodes "))
    .render(nodes, buf);
    // A table cell cannot span columns, so a down node's reason is drawn over the rest of its row.
    let reason_x = nodes
        .x
        .saturating_add(1)
        .saturating_add(name_width)
        .saturating_add(1);
    let reason_width = nodes.right().saturating_sub(1).saturating_sub(reason_x);
    for (i, n) in snapshot.nodes.iter().enumerate() {
        let NodeState::Down { reason } = &n.state else {
            continue;
        };
        let y = nodes
            .y
            .saturating_add(2)
            .saturating_add(u16::try_from(i).unwrap_or(u16::MAX));
        if y >= nodes.bottom().saturating_sub(1) || reason_width == 0 {
            continue;
        }
        Paragraph::new(format!("down — {reason}"))
            .style(Style::default().fg(Color::Red))
            .render(Rect::new(reason_x, y, reason_width, 1), buf);
    }

    let newest = snapshot.blocks.first().map_or(0, |b| b.timestamp_ms);
    let block_rows = snapshot.blocks.iter().map(|b| {
        let age = newest.saturating_sub(b.timestamp_ms);
        Row::new([
            b.height.to_string(),
            b.hash.chars().take(16).collect::<String>(),
            b.txs.to_string(),
            b.view.to_string(),
            format!("-{:.3} s", age as f64 / 1000.0),
        ])
    });
    Table::new(
        block_rows,
        [
            Constraint::Length(8),
            Constraint::Length(18),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["height", "hash", "txs", "view", "vs newest"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(" last blocks "))
    .render(blocks, buf);

    Paragraph::new("q or Esc quits")
        .style(Style::default().fg(Color::DarkGray))
        .render(footer, buf);
}

fn kib(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The buffer's text, one line per row, trailing spaces trimmed (for `top --once` and tests).
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut text = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell((x, y)) {
                line.push_str(cell.symbol());
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `snapshot` drawn on a `width` × `height` canvas, as text.
pub fn render_text(snapshot: &Snapshot, width: u16, height: u16) -> String {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    draw(area, &mut buf, snapshot);
    buffer_text(&buf)
}
