//! Checking a UTXO set received page by page against a header's commitment.

use timecoin_crypto::LtHash;
use timecoin_types::{BlockHeader, OutPoint, apply_to_commitment};

use crate::{ChainTip, StorageError, UtxoPage};

/// Accumulates state-sync pages and checks the whole set against the header it claims to be the state of.
///
/// Pages must come in order, all read at one tip, each starting after the previous one's last outpoint:
/// so no output is counted twice and the multiset hash is over exactly the set served. Memory: one
/// 2 KiB hash state, whatever the set's size.
///
/// ```
/// # use timecoin_storage::{ChainDb, ChainStore, UtxoSyncCheck, BlockStore};
/// # use timecoin_types::Genesis;
/// let genesis = Genesis::local(4);
/// let store = ChainDb::memory(&genesis)?;
/// let mut check = UtxoSyncCheck::new();
/// let mut cursor = None;
/// loop {
///     let page = store.utxo_page(cursor.as_ref(), 2)?;
///     check.add_page(&page)?;
///     match page.next { Some(next) => cursor = Some(next), None => break }
/// }
/// let header = store.block(0)?.expect("genesis").block.header;
/// assert_eq!(check.finish(&header)?, 4);
/// # Ok::<(), timecoin_storage::StorageError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct UtxoSyncCheck {
    tip: Option<ChainTip>,
    last: Option<OutPoint>,
    finished: bool,
    hash: LtHash,
    count: u64,
}

impl UtxoSyncCheck {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a page, refusing one read at another tip, one that repeats or reorders outpoints, an empty
    /// page that does not end the set (a peer could otherwise stall a sync forever), and any page after
    /// the one that said it was the last.
    ///
    /// A refused page changes nothing: the checker is checked in full before it takes the page, so one
    /// forged page from a lying peer does not spoil the honest copy of it fetched from another.
    pub fn add_page(&mut self, page: &UtxoPage) -> Result<(), StorageError> {
        let reject = |reason: String| Err(StorageError::BadSyncPage { reason });
        if self.finished {
            return reject("a page arrived after the last one".into());
        }
        if let Some(tip) = self.tip
            && tip != page.tip
        {
            return reject(format!(
                "page read at height {} ({}), earlier pages at height {} ({})",
                page.tip.height, page.tip.hash, tip.height, tip.hash
            ));
        }
        let mut last = self.last;
        for (op, _) in &page.entries {
            if let Some(previous) = last
                && *op <= previous
            {
                return reject(format!("outpoint {op} does not follow {previous}"));
            }
            last = Some(*op);
        }
        match page.next {
            Some(_) if page.entries.is_empty() => {
                return reject("an empty page that does not end the set".into());
            }
            Some(next) if Some(next) != last => {
                return reject(format!("cursor {next} is not the page's last outpoint"));
            }
            _ => {}
        }
        self.tip = Some(page.tip);
        self.last = last;
        self.finished = page.next.is_none();
        apply_to_commitment(&mut self.hash, &[], &page.entries);
        self.count += page.entries.len() as u64;
        Ok(())
    }

    /// Checks that the set received is complete, is the state after `header`, and hashes to its
    /// `utxo_commitment`; returns the number of outputs. The caller must already trust `header` (its
    /// block's commit certificate).
    pub fn finish(&self, header: &BlockHeader) -> Result<u64, StorageError> {
        if !self.finished {
            return Err(StorageError::BadSyncPage {
                reason: "the set is incomplete: no page said it was the last".into(),
            });
        }
        if let Some(tip) = self.tip
            && (tip.height != header.height || tip.hash != header.hash())
        {
            return Err(StorageError::BadSyncPage {
                reason: format!(
                    "pages are the state at height {} ({}), header is height {} ({})",
                    tip.height,
                    tip.hash,
                    header.height,
                    header.hash()
                ),
            });
        }
        let computed = self.hash.checksum();
        if computed != header.utxo_commitment {
            return Err(StorageError::CommitmentMismatch {
                height: header.height,
                expected: header.utxo_commitment,
                computed,
            });
        }
        Ok(self.count)
    }

    /// A check that has already taken pages up to `last` at `tip`: how a resumed snapshot import picks
    /// up the state it wrote down with its last page.
    pub(crate) fn resumed(
        tip: ChainTip,
        last: Option<OutPoint>,
        finished: bool,
        hash: LtHash,
        count: u64,
    ) -> Self {
        UtxoSyncCheck {
            tip: Some(tip),
            last,
            finished,
            hash,
            count,
        }
    }

    /// The last outpoint received: the cursor to ask the next page with.
    pub fn cursor(&self) -> Option<OutPoint> {
        self.last
    }

    /// Outputs received so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// A page said it ended the set.
    pub fn is_complete(&self) -> bool {
        self.finished
    }

    /// The multiset hash of what was received so far.
    pub fn hash(&self) -> &LtHash {
        &self.hash
    }
}
