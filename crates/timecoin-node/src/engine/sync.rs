//! The sync policy: ask peers for certified blocks above the tip, check each certificate against the
//! validator set of its height before it is applied, retry a request that timed out on another peer,
//! push finalized blocks to a peer still voting on a height we finished, and penalise peers that serve
//! bad certificates or whose reported height goes down.

use std::collections::BTreeMap;

use bytes::Bytes;
use timecoin_consensus::{CertifiedBlock, Input, Verified};
use timecoin_net::{Channel, Misbehavior, PeerId};
use timecoin_types::{Height, OutPoint, Wire};
use tracing::debug;

use super::{Effect, Engine, duration_ms};
use crate::EngineConfig;
use crate::wire::{
    HEADERS_ANSWER_BUDGET, MAX_HEADERS_PER_MESSAGE, SnapshotPage, SyncMessage, SyncedHeader,
};

/// Whether the node is catching up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// No peer reports a tip more than one height above ours.
    Synced,
    /// Peers report tips above ours; blocks are being fetched.
    Syncing {
        /// The highest tip a peer reported.
        target: Height,
    },
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    peer: PeerId,
    sent_at: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    /// The tip it last reported (a Status) or a height it was seen voting in minus one.
    reported: Option<Height>,
    /// The last height pushed to it and when (at most one push of a height per backoff).
    pushed: Option<(Height, u64)>,
}

/// Sync bookkeeping.
///
/// Bounds: at most [`EngineConfig::max_peers`] peers; the buffer holds at most
/// [`EngineConfig::sync_window`] blocks, all above the tip.
#[derive(Debug)]
pub(crate) struct SyncState {
    peers: BTreeMap<PeerId, PeerState>,
    max_peers: usize,
    outstanding: Option<Outstanding>,
    buffer: BTreeMap<Height, (PeerId, CertifiedBlock)>,
    window: u64,
    batch: u32,
    backoff_ms: u64,
    timeout_ms: u64,
    last_triggered: Option<u64>,
    cursor: usize,
}

impl SyncState {
    pub(crate) fn new(config: &EngineConfig) -> Self {
        SyncState {
            peers: BTreeMap::new(),
            max_peers: config.max_peers,
            outstanding: None,
            buffer: BTreeMap::new(),
            window: u64::from(config.sync_window),
            batch: config.sync_batch,
            backoff_ms: duration_ms(config.sync_backoff),
            timeout_ms: duration_ms(config.sync_request_timeout),
            last_triggered: None,
            cursor: 0,
        }
    }

    pub(crate) fn joined(&mut self, peer: PeerId) {
        if self.peers.len() < self.max_peers || self.peers.contains_key(&peer) {
            self.peers.entry(peer).or_default();
        }
    }

    pub(crate) fn left(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        if self.outstanding.is_some_and(|o| o.peer == *peer) {
            self.outstanding = None;
        }
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// A validator signed a message of `height`, so its tip is at least `height − 1`.
    pub(crate) fn heard_ahead(&mut self, peer: PeerId, height: Height) {
        if let Some(state) = self.peers.get_mut(&peer) {
            let seen = height.saturating_sub(1);
            state.reported = Some(state.reported.map_or(seen, |r| r.max(seen)));
        }
    }

    pub(crate) fn has_buffered(&self, height: Height) -> bool {
        self.buffer.contains_key(&height)
    }

    fn best_reported(&self) -> Option<Height> {
        self.peers.values().filter_map(|p| p.reported).max()
    }

    pub(crate) fn status(&self, tip: Height) -> SyncStatus {
        match self.best_reported() {
            Some(target) if target > tip.saturating_add(1) => SyncStatus::Syncing { target },
            _ => SyncStatus::Synced,
        }
    }

    /// The peer to ask next: one reporting the highest tip above ours, else the next in turn (so a
    /// node that knows nothing about its peers still discovers who is ahead), never `avoid`.
    fn pick(&mut self, tip: Height, avoid: Option<PeerId>) -> Option<PeerId> {
        let ahead = self
            .peers
            .iter()
            .filter(|(p, s)| Some(**p) != avoid && s.reported.is_some_and(|r| r > tip))
            .max_by_key(|(p, s)| (s.reported, std::cmp::Reverse(**p)))
            .map(|(p, _)| *p);
        if ahead.is_some() {
            return ahead;
        }
        let candidates: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|p| Some(**p) != avoid)
            .copied()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        self.cursor = (self.cursor + 1) % candidates.len();
        candidates.get(self.cursor).copied()
    }
}

impl Engine {
    /// The periodic round: retry a timed-out request elsewhere, else ask the next peer.
    pub(super) fn sync_round(&mut self) {
        let now = self.now();
        let mut avoid = None;
        if let Some(out) = self.sync.outstanding {
            if now < out.sent_at.saturating_add(self.sync.timeout_ms) {
                return;
            }
            debug!(peer = %out.peer, "sync request timed out; asking another peer");
            self.stats.sync_timeouts += 1;
            self.sync.outstanding = None;
            avoid = Some(out.peer);
        }
        let tip = self.tip.0;
        if let Some(peer) = self.sync.pick(tip, avoid) {
            self.send_request(peer);
        }
    }

    fn send_request(&mut self, peer: PeerId) {
        self.stats.sync_requests += 1;
        self.sync.outstanding = Some(Outstanding {
            peer,
            sent_at: self.now(),
        });
        let request = SyncMessage::Request {
            from: self.tip.0.saturating_add(1),
            count: self.sync.batch,
        };
        self.effects.push(Effect::Send {
            to: peer,
            channel: Channel::Sync,
            bytes: request.encode().into(),
        });
    }

    /// A peer is ahead: ask it now, unless a request is out or one was triggered within the backoff.
    pub(super) fn request_sync_from(&mut self, peer: PeerId) {
        let now = self.now();
        if self.sync.outstanding.is_some()
            || self
                .sync
                .last_triggered
                .is_some_and(|at| now < at.saturating_add(self.sync.backoff_ms))
        {
            return;
        }
        self.sync.last_triggered = Some(now);
        self.send_request(peer);
    }

    /// A peer still votes on a height we finalized: send it the certified blocks from there.
    pub(super) fn push_finalized(&mut self, peer: PeerId, height: Height) {
        let now = self.now();
        let backoff = self.sync.backoff_ms;
        let Some(state) = self.sync.peers.get_mut(&peer) else {
            return;
        };
        if let Some((h, at)) = state.pushed
            && h == height
            && now < at.saturating_add(backoff)
        {
            return;
        }
        state.pushed = Some((height, now));
        self.serve(peer, height, self.sync.batch);
    }

    /// Sends our tip, then up to `count` (capped at the batch size) certified blocks from `from`.
    fn serve(&mut self, peer: PeerId, from: Height, count: u32) {
        let status = SyncMessage::Status { height: self.tip.0 };
        self.effects.push(Effect::Send {
            to: peer,
            channel: Channel::Sync,
            bytes: status.encode().into(),
        });
        let count = u64::from(count.min(self.sync.batch));
        let end = from.saturating_add(count).min(self.tip.0.saturating_add(1));
        for height in from.max(1)..end {
            let stored = match self.store.block(height) {
                Ok(Some(stored)) => stored,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%e, height, "cannot read a block to serve");
                    break;
                }
            };
            let Some(certificate) = stored.certificate else {
                break;
            };
            // Stored blocks were well-formed when applied; sealing recomputes the same roots.
            let certified = CertifiedBlock {
                block: stored.block.seal(),
                certificate,
            };
            self.effects.push(Effect::Send {
                to: peer,
                channel: Channel::Sync,
                bytes: Bytes::from(SyncMessage::Block(certified).encode()),
            });
        }
    }

    pub(super) fn on_sync(&mut self, from: PeerId, bytes: &[u8]) {
        let message = match SyncMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                debug!(%from, %e, "undecodable sync message");
                self.stats.malformed += 1;
                self.penalize(from, Misbehavior::Malformed);
                return;
            }
        };
        match message {
            SyncMessage::Status { height } => self.on_status(from, height),
            SyncMessage::Request { from: start, count } => self.serve(from, start, count),
            SyncMessage::Block(certified) => self.on_synced_block(from, certified),
            SyncMessage::HeadersRequest { from: start, count } => {
                self.serve_headers(from, start, count);
            }
            SyncMessage::PageRequest {
                height,
                after,
                limit,
            } => self.serve_page(from, height, after, limit),
            // Answers to a state sync, which a running engine never asks for.
            SyncMessage::Headers(_)
            | SyncMessage::Page { .. }
            | SyncMessage::PageUnavailable { .. } => {
                self.stats.unsolicited_sync += 1;
            }
        }
    }

    /// Certified headers from `from` on, each with its body when its schedule hash differs from its
    /// parent's (or the parent is below this store's base, where we cannot tell).
    fn serve_headers(&mut self, peer: PeerId, from: Height, count: u32) {
        let count = u64::from(count.min(MAX_HEADERS_PER_MESSAGE));
        let end = from.saturating_add(count).min(self.tip.0.saturating_add(1));
        let start = from.max(1);
        // Headers outlive pruned bodies; a body is read only where the schedule moved, and pruning
        // keeps exactly those.
        let mut previous = match start.checked_sub(1).map(|h| self.store.header(h)) {
            Some(Ok(Some(stored))) => Some(stored.header.validators_hash),
            _ => None,
        };
        let mut headers = Vec::new();
        let mut bytes = 0usize;
        for height in start..end {
            let stored = match self.store.header(height) {
                Ok(Some(stored)) => stored,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%e, height, "cannot read a header to serve");
                    break;
                }
            };
            let Some(certificate) = stored.certificate else {
                break;
            };
            let moved = previous != Some(stored.header.validators_hash);
            previous = Some(stored.header.validators_hash);
            let body = if moved {
                match self.store.block(height) {
                    Ok(Some(block)) => Some(block.block),
                    // Without the body the walker cannot follow the set: stop where it still can.
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%e, height, "cannot read a body to serve");
                        break;
                    }
                }
            } else {
                None
            };
            let header = SyncedHeader {
                header: stored.header,
                certificate,
                body,
            };
            bytes = bytes.saturating_add(timecoin_types::codec::encoded_len(&header));
            if bytes > HEADERS_ANSWER_BUDGET && !headers.is_empty() {
                break;
            }
            headers.push(header);
        }
        self.stats.served_headers += headers.len() as u64;
        self.effects.push(Effect::Send {
            to: peer,
            channel: Channel::Sync,
            bytes: Bytes::from(SyncMessage::Headers(headers).encode()),
        });
    }

    /// A page of the UTXO set if `height` is our tip, else where our tip is.
    fn serve_page(&mut self, peer: PeerId, height: Height, after: Option<OutPoint>, limit: u32) {
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .clamp(1, timecoin_storage::MAX_UTXO_PAGE);
        let page = if height == self.tip.0 {
            match self.store.utxo_page(after.as_ref(), limit) {
                Ok(page) if page.tip.height == height => Some(page),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(%e, height, "cannot read a UTXO page to serve");
                    None
                }
            }
        } else {
            None
        };
        let message = match page {
            Some(page) => {
                self.stats.served_pages += 1;
                SnapshotPage {
                    height,
                    hash: page.tip.hash,
                    after,
                    entries: page.entries,
                    next: page.next,
                }
                .to_message()
            }
            None => SyncMessage::PageUnavailable { tip: self.tip.0 },
        };
        self.effects.push(Effect::Send {
            to: peer,
            channel: Channel::Sync,
            bytes: Bytes::from(message.encode()),
        });
    }

    fn on_status(&mut self, from: PeerId, height: Height) {
        let regressed = {
            let Some(state) = self.sync.peers.get_mut(&from) else {
                return;
            };
            let regressed = state.reported.is_some_and(|r| height < r);
            state.reported = Some(state.reported.map_or(height, |r| r.max(height)));
            regressed
        };
        if regressed {
            self.penalize(from, Misbehavior::HeightRegressed);
        }
        if self.sync.outstanding.is_some_and(|o| o.peer == from) && height <= self.tip.0 {
            // It has nothing for us: the request is answered.
            self.sync.outstanding = None;
        }
    }

    fn on_synced_block(&mut self, from: PeerId, certified: CertifiedBlock) {
        let height = certified.height();
        if self.sync.outstanding.is_some_and(|o| o.peer == from) {
            self.sync.outstanding = None;
        }
        let current = self.tip.0.saturating_add(1);
        if height < current || height >= current.saturating_add(self.sync.window) {
            return;
        }
        self.sync.buffer.entry(height).or_insert((from, certified));
        if height == current {
            if self.pending_start.is_some_and(|(h, _)| h == height) {
                // Starting the height lets `feed` take the block.
                self.start_pending();
            } else if let Some(input) = self.next_synced() {
                self.feed(input);
            }
        }
    }

    /// After a height is final: if peers are still ahead and nothing is buffered or asked for, ask the
    /// best of them now rather than at the next round.
    pub(super) fn continue_sync(&mut self) {
        let tip = self.tip.0;
        if self.sync.outstanding.is_none()
            && !self.sync.has_buffered(tip.saturating_add(1))
            && self.sync.best_reported().is_some_and(|h| h > tip)
            && let Some(peer) = self.sync.pick(tip, None)
        {
            self.send_request(peer);
        }
    }

    /// The synced block for the height being decided, once it checks out against the validator set of
    /// that height and the tip.
    pub(super) fn next_synced(&mut self) -> Option<Input> {
        let current = self.core.height()?;
        while let Some(entry) = self.sync.buffer.first_entry() {
            if *entry.key() >= current {
                break;
            }
            entry.remove();
        }
        let (peer, certified) = self.sync.buffer.remove(&current)?;
        let validators = self.registry.set_for(current)?;
        if certified.block.header.parent != self.tip.1 {
            self.stats.rejected_sync += 1;
            self.penalize(peer, Misbehavior::BadSync);
            return None;
        }
        match Verified::<CertifiedBlock>::verify(certified, self.chain(), &validators) {
            Ok(verified) => {
                self.stats.synced += 1;
                Some(Input::Certified(verified))
            }
            Err(e) => {
                debug!(%peer, %e, "synced block refused");
                self.stats.rejected_sync += 1;
                self.penalize(peer, Misbehavior::Invalid);
                None
            }
        }
    }
}
