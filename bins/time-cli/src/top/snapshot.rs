//! What `top` shows, gathered from the nodes' RPC: a plain struct the view renders.

use std::collections::BTreeMap;

use crate::output::at;
use serde::Serialize;
use serde_json::{Value, json};

use crate::rpc::{RpcClient, RpcError};

/// Blocks listed under the nodes (and the most cached).
pub const RECENT_BLOCKS: usize = 10;

/// Everything one frame shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// One row per node, in the order given.
    pub nodes: Vec<NodeRow>,
    /// The latest blocks of the first node that answered, newest first.
    pub blocks: Vec<BlockRow>,
    /// Transactions per second over the listed blocks (by their timestamps), if there are two.
    pub tx_per_sec: Option<f64>,
}

/// One node's line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeRow {
    /// Its display name.
    pub name: String,
    /// Its RPC URL.
    pub url: String,
    /// What it said, or why it said nothing.
    #[serde(flatten)]
    pub state: NodeState,
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum NodeState {
    /// It answered.
    Up(NodeStatus),
    /// It did not; the reason.
    Down {
        /// Why.
        reason: String,
    },
}

/// What a node that answered reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeStatus {
    /// Finalized tip.
    pub height: u64,
    /// The height being decided, if any.
    pub deciding: Option<u64>,
    /// Its view.
    pub view: Option<u64>,
    /// Its phase (`preprepare`, `prepare`, `commit`, `finalized`).
    pub phase: Option<String>,
    /// Connected peers.
    pub peers: u64,
    /// Pooled transactions.
    pub mempool_txs: u64,
    /// Pooled bytes.
    pub mempool_bytes: u64,
    /// The last height's finality latency on this node, ms.
    pub finality_ms: Option<f64>,
    /// Views moved past without a decision.
    pub view_changes: u64,
    /// Whether this node is in the validator set.
    pub validator: bool,
}

/// One block's line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BlockRow {
    /// Height.
    pub height: u64,
    /// Hash (hex).
    pub hash: String,
    /// Transactions in it.
    pub txs: u64,
    /// The view it was decided in.
    pub view: u64,
    /// Its timestamp, ms since the epoch.
    pub timestamp_ms: u64,
}

/// Gathers snapshots, remembering headers already fetched (at most [`RECENT_BLOCKS`]).
#[derive(Default)]
pub struct Poller {
    blocks: BTreeMap<u64, BlockRow>,
}

impl Poller {
    /// Asks every node and returns what they said.
    pub fn poll(&mut self, clients: &[RpcClient]) -> Snapshot {
        let nodes: Vec<NodeRow> = clients
            .iter()
            .map(|c| NodeRow {
                name: c.endpoint().name.clone(),
                url: c.endpoint().url.clone(),
                state: match node_status(c) {
                    Ok(s) => NodeState::Up(s),
                    Err(e) => NodeState::Down {
                        reason: short_reason(&e),
                    },
                },
            })
            .collect();
        let source = clients
            .iter()
            .zip(&nodes)
            .find_map(|(c, n)| match &n.state {
                NodeState::Up(s) => Some((c, s.height)),
                NodeState::Down { .. } => None,
            });
        if let Some((client, height)) = source {
            self.refresh_blocks(client, height);
        }
        let blocks: Vec<BlockRow> = self.blocks.values().rev().cloned().collect();
        Snapshot {
            tx_per_sec: tx_rate(&blocks),
            nodes,
            blocks,
        }
    }

    fn refresh_blocks(&mut self, client: &RpcClient, tip: u64) {
        let first = tip.saturating_sub(RECENT_BLOCKS as u64 - 1).max(1);
        self.blocks.retain(|h, _| *h >= first && *h <= tip);
        for height in first..=tip {
            if self.blocks.contains_key(&height) {
                continue;
            }
            match block_row(client, height) {
                Ok(row) => {
                    self.blocks.insert(height, row);
                }
                Err(_) => break,
            }
        }
    }
}

/// The reason a node is down, without the URL its row already shows.
fn short_reason(e: &RpcError) -> String {
    match e {
        RpcError::Unreachable { reason, .. } => format!("unreachable: {reason}"),
        RpcError::Auth { reason, .. } => format!("auth: {reason}"),
        RpcError::Timeout { .. } => "no answer in time".into(),
        RpcError::Node { code, message, .. } => format!("error {code}: {message}"),
        RpcError::Protocol { reason, .. } => format!("bad answer: {reason}"),
    }
}

fn node_status(c: &RpcClient) -> Result<NodeStatus, RpcError> {
    let consensus = c.call("getconsensusinfo", json!([]))?;
    let peers = c.call("getconnectioncount", json!([]))?;
    let pool = c.call("getmempoolinfo", json!([]))?;
    Ok(NodeStatus {
        height: at(&consensus, "height").as_u64().unwrap_or(0),
        deciding: at(&consensus, "deciding").as_u64(),
        view: at(&consensus, "view").as_u64(),
        phase: at(&consensus, "phase").as_str().map(str::to_string),
        peers: peers.as_u64().unwrap_or(0),
        mempool_txs: at(&pool, "size").as_u64().unwrap_or(0),
        mempool_bytes: at(&pool, "bytes").as_u64().unwrap_or(0),
        finality_ms: at(&consensus, "last_finality_latency_ms").as_f64(),
        view_changes: at(&consensus, "view_changes").as_u64().unwrap_or(0),
        validator: at(&consensus, "validator").as_bool().unwrap_or(false),
    })
}

fn block_row(c: &RpcClient, height: u64) -> Result<BlockRow, RpcError> {
    let hash = c.call("getblockhash", json!([height]))?;
    let header = c.call("getblockheader", json!([hash, true]))?;
    Ok(BlockRow {
        height,
        hash: hash.as_str().unwrap_or_default().to_string(),
        txs: at(&header, "nTx").as_u64().unwrap_or(0),
        view: at(&header, "view").as_u64().unwrap_or(0),
        timestamp_ms: at(&header, "timestamp_ms").as_u64().unwrap_or(0),
    })
}

/// Transactions per second over `blocks` (newest first): the transactions after the oldest block
/// over the time between the oldest and the newest.
pub fn tx_rate(blocks: &[BlockRow]) -> Option<f64> {
    let (newest, oldest) = (blocks.first()?, blocks.last()?);
    let span_ms = newest.timestamp_ms.checked_sub(oldest.timestamp_ms)?;
    if span_ms == 0 {
        return None;
    }
    let txs: u64 = blocks
        .iter()
        .take(blocks.len().saturating_sub(1))
        .map(|b| b.txs)
        .sum();
    Some(txs as f64 * 1000.0 / span_ms as f64)
}

/// The snapshot as JSON (for `top --once --json`).
pub fn to_json(snapshot: &Snapshot) -> Value {
    serde_json::to_value(snapshot).unwrap_or(Value::Null)
}
