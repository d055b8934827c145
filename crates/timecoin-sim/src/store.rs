//! What a simulated node keeps across a crash: its finalized chain with certificates and its consensus
//! write-ahead log, both in memory but treated as a disk (written before acted on, never lost on a crash).

use timecoin_consensus::WalEntry;
use timecoin_types::{CommitCertificate, Height, WellFormedBlock, Wire};

/// A node's durable state.
///
/// The runtime keeps a crashed node's struct until it restarts, so this survives a crash exactly as
/// written: the driver builds the restarted node from it (see [`crate::SimNode::recover`]).
///
/// Bounds: `chain` holds one entry per finalized height (a simulation runs tens of heights); `wal` holds
/// only entries of heights above the tip, which [`DurableState::append_finalized`] prunes, so at most
/// three entries (proposal, Prepare, Commit) per view the node signed in at the current height.
#[derive(Clone, Debug, Default)]
pub struct DurableState {
    /// Finalized blocks with their certificates; index `i` holds height `i + 1`.
    pub chain: Vec<(WellFormedBlock, CommitCertificate)>,
    /// Encoded [`WalEntry`]s in the order the core asked for them.
    pub wal: Vec<Vec<u8>>,
    /// How many times the node was restarted from this state.
    pub restarts: u32,
    /// WAL entries ever appended (pruning does not lower it), so an observer can tell which entries of
    /// `wal` are new since it last looked: the last `wal_appended − seen` ones.
    pub wal_appended: u64,
}

impl DurableState {
    /// Height of the last finalized block (0 for genesis).
    pub fn tip_height(&self) -> Height {
        self.chain.len() as Height
    }

    /// The finalized block of `height` with its certificate.
    pub fn finalized(&self, height: Height) -> Option<&(WellFormedBlock, CommitCertificate)> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.chain.get(index)
    }

    /// Appends a WAL entry (the "sync to disk" of a real node).
    pub fn append_wal(&mut self, entry: &WalEntry) {
        self.wal.push(entry.encode());
        self.wal_appended += 1;
    }

    /// Stores a finalized block and drops the WAL entries it makes useless (heights at or below it).
    pub fn append_finalized(&mut self, block: WellFormedBlock, certificate: CommitCertificate) {
        let height = block.header.height;
        self.chain.push((block, certificate));
        self.wal
            .retain(|bytes| WalEntry::decode(bytes).map_or(true, |entry| entry.height() > height));
    }

    /// The WAL decoded, in order. An entry that does not decode is skipped and counted (it can only be
    /// a torn write, which this in-memory log never produces).
    pub fn wal_entries(&self) -> (Vec<WalEntry>, usize) {
        let mut skipped = 0;
        let entries = self
            .wal
            .iter()
            .filter_map(|bytes| {
                let entry = WalEntry::decode(bytes).ok();
                skipped += usize::from(entry.is_none());
                entry
            })
            .collect();
        (entries, skipped)
    }
}
