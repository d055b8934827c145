//! Snapshot import: a fresh store filled, page by page, with the UTXO set of a certified block, which
//! becomes a chain based at that block only once the whole set hashes to the block's commitment.
//!
//! Pages are written as ordinary `u` records as they arrive, so memory stays bounded by one page, and the
//! store's tip record is absent until [`SnapshotImport::finish`]: the import record (`mi`) stands in for
//! it, and [`ChainDb::open`] refuses such a store with [`StorageError::ImportIncomplete`]. Finishing
//! writes the tip record, writes the base record and deletes the import record in one small batch, so a
//! crash leaves either the unfinished import or the whole chain. See docs/STORAGE.md, "Snapshot import".

use timecoin_crypto::LtHash;
use timecoin_types::{BlockHeader, CommitCertificate, Genesis, OutPoint, WellFormedBlock};
use tracing::info;

use crate::chain::{append_body, cut_log_to, put_block, read_block, rehash_utxos};
use crate::config::{MAX_UTXO_PAGE, StorageConfig};
use crate::engine::{KvEngine, WriteBatch};
use crate::record::{self, ImportRecord, TipRecord};
use crate::scan::{ChunkedScan, SCAN_CHUNK};
use crate::{ChainDb, ChainTip, HostRecord, StorageError, UtxoPage, UtxoSyncCheck};

/// The block a snapshot is the state after, with its commit certificate. The caller (state sync) has
/// verified the certificate against the validator set; the store checks only that it names this block.
///
/// The whole block, not only its header, so that the store holds block `base..=tip` uniformly: it can
/// serve the base block to peers and check that the next block names it as parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBase {
    /// The block (its body checked against its header's roots).
    pub block: WellFormedBlock,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// An import of a UTXO set into a fresh store, in progress; see [`ChainDb::import_snapshot`].
///
/// Pages go in with [`add_page`](Self::add_page) in the order a peer's
/// [`utxo_page`](crate::ChainStore::utxo_page) serves them, each durable when it returns; the set becomes
/// the store's chain only in [`finish`](Self::finish). A process killed half-way leaves a store that
/// [`ChainDb::open`] refuses with [`StorageError::ImportIncomplete`] and
/// [`ChainDb::resume_import`] picks up at [`cursor`](Self::cursor).
///
/// Memory: one page's batch and one 2 KiB multiset-hash state, whatever the size of the set.
pub struct SnapshotImport<E: KvEngine> {
    engine: E,
    config: StorageConfig,
    genesis: Genesis,
    header: BlockHeader,
    /// The import record as last committed: it describes exactly the `u` records on disk.
    record: ImportRecord,
    check: UtxoSyncCheck,
    /// Set by a failed write (the disk may hold what `record` does not) or a finish that committed but
    /// whose chain did not open: nothing more may be written through this handle.
    halted: Option<String>,
}

impl<E: KvEngine> std::fmt::Debug for SnapshotImport<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotImport")
            .field("base_height", &self.record.base_height)
            .field("base_hash", &self.record.base_hash)
            .field("cursor", &self.record.last)
            .field("count", &self.record.count)
            .field("complete", &self.record.complete)
            .field("halted", &self.halted)
            .finish_non_exhaustive()
    }
}

/// A [`SnapshotImport::finish`] that did not make the store a chain, with the import handed back: the
/// caller can add the missing pages, or [`discard`](SnapshotImport::discard) it and start again from
/// other peers.
pub struct ImportRefused<E: KvEngine> {
    /// Why.
    pub error: StorageError,
    /// The import, as it was before `finish` (or halted, if the failure was a write).
    pub import: SnapshotImport<E>,
}

impl<E: KvEngine> std::fmt::Debug for ImportRefused<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRefused")
            .field("error", &self.error)
            .field("import", &self.import)
            .finish()
    }
}

impl<E: KvEngine> std::fmt::Display for ImportRefused<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snapshot import not finished: {}", self.error)
    }
}

impl<E: KvEngine> std::error::Error for ImportRefused<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<E: KvEngine> From<Box<ImportRefused<E>>> for StorageError {
    fn from(refused: Box<ImportRefused<E>>) -> Self {
        refused.error
    }
}

/// What an engine holds, read without changing it: how a host decides between opening a chain and
/// state-syncing into an empty store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreContents {
    /// Nothing (or only a discard that was cut short, which the next import or open finishes).
    Empty,
    /// A chain: [`ChainDb::open`] takes it.
    Chain,
    /// An unfinished snapshot import: [`ChainDb::resume_import`] picks it up (and can
    /// [`discard`](SnapshotImport::discard) it).
    UnfinishedImport,
    /// Records but no tip and no import record: not a store this crate wrote whole.
    Unknown,
}

impl StoreContents {
    /// Reads what `engine` holds.
    pub fn of<E: KvEngine>(engine: &E) -> Result<Self, StorageError> {
        if let Some(bytes) = engine.get(record::IMPORT_KEY)? {
            let import = record::open_import(&bytes)?;
            return Ok(if import.discarding {
                StoreContents::Empty
            } else {
                StoreContents::UnfinishedImport
            });
        }
        if engine.get(record::TIP_KEY)?.is_some() {
            return Ok(StoreContents::Chain);
        }
        if engine.scan(&[], &[0xff; 8], 1)?.is_empty() {
            Ok(StoreContents::Empty)
        } else {
            Ok(StoreContents::Unknown)
        }
    }
}

impl<E: KvEngine> SnapshotImport<E> {
    pub(crate) fn begin(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
        base: &CertifiedBase,
    ) -> Result<Self, StorageError> {
        config.validate()?;
        let header = &base.block.header;
        let hash = base.block.hash();
        if header.height == 0 {
            return Err(StorageError::BadImportBase {
                reason: "height 0 is genesis: open the store from genesis instead".into(),
            });
        }
        if header.chain_id != genesis.params.chain_id {
            return Err(StorageError::BadImportBase {
                reason: format!(
                    "block of chain {:?}, the store is for chain {:?}",
                    header.chain_id, genesis.params.chain_id
                ),
            });
        }
        let certificate = &base.certificate;
        if certificate.height != header.height || certificate.block_hash != hash {
            return Err(StorageError::CertificateMismatch {
                height: header.height,
                block: hash,
                cert_height: certificate.height,
                cert_block: certificate.block_hash,
            });
        }
        let genesis_hash = genesis.block().hash();
        if let Some(bytes) = engine.get(record::IMPORT_KEY)? {
            let existing = record::open_import(&bytes)?;
            if !existing.discarding {
                return Err(StorageError::NotAFreshStore {
                    found: "an unfinished snapshot import",
                });
            }
            finish_discard(&engine)?;
        }
        if engine.get(record::TIP_KEY)?.is_some() {
            return Err(StorageError::NotAFreshStore { found: "a chain" });
        }
        if !engine.scan(&[], &[0xff; 8], 1)?.is_empty() {
            return Err(StorageError::NotAFreshStore {
                found: "records but no tip record",
            });
        }
        // Bytes in the log of a fresh store come from a `begin` that crashed before its batch committed.
        engine.truncate_log(0)?;
        let body = append_body(&engine, header.height, &base.block)?;
        let record = ImportRecord {
            genesis: genesis_hash,
            base_height: header.height,
            base_hash: hash,
            log_end: body.offset + body.len,
            last: None,
            complete: false,
            count: 0,
            utxo_hash: LtHash::new().to_bytes(),
            discarding: false,
        };
        let mut batch = WriteBatch::with_capacity(4);
        put_block(&mut batch, &base.block, hash, body, Some(certificate));
        batch.put(record::IMPORT_KEY.to_vec(), record::seal_import(&record));
        engine.commit(batch)?;
        info!(height = header.height, base = %hash, "snapshot import begun");
        Ok(Self::from_record(
            engine,
            config,
            genesis,
            header.clone(),
            record,
            LtHash::new(),
        ))
    }

    pub(crate) fn resume(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<Self, StorageError> {
        config.validate()?;
        let Some(bytes) = engine.get(record::IMPORT_KEY)? else {
            let what = if engine.get(record::TIP_KEY)?.is_some() {
                "an import to resume (the store holds a finished chain)"
            } else {
                "an import to resume"
            };
            return Err(StorageError::NotFound { what: what.into() });
        };
        let record = record::open_import(&bytes)?;
        // `finish` deletes the import record in the batch that writes the tip record.
        if engine.get(record::TIP_KEY)?.is_some() {
            return Err(StorageError::Corruption {
                what: "import record",
                detail: "present beside a tip record".into(),
            });
        }
        let genesis_hash = genesis.block().hash();
        if record.genesis != genesis_hash {
            return Err(StorageError::GenesisMismatch {
                stored: record.genesis,
                given: genesis_hash,
            });
        }
        if record.discarding {
            finish_discard(&engine)?;
            return Err(StorageError::NotFound {
                what: "an import to resume (it was being discarded; the discard is now finished)"
                    .into(),
            });
        }
        cut_log_to(&engine, record.log_end, "the import record")?;
        let height = record.base_height;
        let block = read_block(&engine, height)?.ok_or_else(|| StorageError::Corruption {
            what: "import record",
            detail: format!("base block {height} is missing"),
        })?;
        if block.hash() != record.base_hash || block.header.height != height {
            return Err(StorageError::Corruption {
                what: "import record",
                detail: format!(
                    "base {} but block {height} is {}",
                    record.base_hash,
                    block.hash()
                ),
            });
        }
        let key = record::height_key(record::CERTIFICATE, height);
        let value = engine.get(&key)?.ok_or_else(|| StorageError::Corruption {
            what: "certificate",
            detail: format!("base block {height} has no certificate"),
        })?;
        if record::open_certificate(&key, &value)?.block_hash != record.base_hash {
            return Err(StorageError::Corruption {
                what: "certificate",
                detail: format!("certificate at height {height} is for another block"),
            });
        }
        let hash = LtHash::from_bytes(&record.utxo_hash)
            .map_err(|e| StorageError::undecodable("import record", e))?;
        info!(
            height,
            cursor = ?record.last,
            count = record.count,
            "snapshot import resumed"
        );
        Ok(Self::from_record(
            engine,
            config,
            genesis,
            block.header,
            record,
            hash,
        ))
    }

    fn from_record(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
        header: BlockHeader,
        record: ImportRecord,
        hash: LtHash,
    ) -> Self {
        let tip = ChainTip {
            height: record.base_height,
            hash: record.base_hash,
        };
        let check = UtxoSyncCheck::resumed(tip, record.last, record.complete, hash, record.count);
        SnapshotImport {
            engine,
            config: config.clone(),
            genesis: genesis.clone(),
            header,
            record,
            check,
            halted: None,
        }
    }

    /// The block whose state is being imported: pages must have been read at this tip.
    pub fn base(&self) -> ChainTip {
        ChainTip {
            height: self.record.base_height,
            hash: self.record.base_hash,
        }
    }

    /// The last outpoint imported (durably): ask the next page with it. `None` before the first output.
    pub fn cursor(&self) -> Option<OutPoint> {
        self.record.last
    }

    /// Outputs imported so far.
    pub fn count(&self) -> u64 {
        self.record.count
    }

    /// The last page of the set has been imported: [`finish`](Self::finish) can check it.
    pub fn is_complete(&self) -> bool {
        self.record.complete
    }

    /// The engine, giving up the import as it stands on disk (reopen it with
    /// [`ChainDb::resume_import`], or [`ChainDb::open`] after a finish that committed).
    pub fn into_engine(self) -> E {
        self.engine
    }

    /// Writes `page` durably, after checking that it continues the import: read at the base block, no
    /// more than [`MAX_UTXO_PAGE`] outputs, and every rule of [`UtxoSyncCheck::add_page`] (ascending
    /// outpoints after the cursor, a cursor equal to its last outpoint, nothing after the last page).
    ///
    /// A refused page changes nothing, on disk or here, so the honest copy fetched from another peer is
    /// accepted next. A page whose outputs were altered (an amount changed, an output dropped, one
    /// added) keeps these rules and cannot be told apart here: the multiset hash covers only the whole
    /// set, so [`finish`](Self::finish) refuses it.
    pub fn add_page(&mut self, page: &UtxoPage) -> Result<(), StorageError> {
        self.check_halted()?;
        let base = self.base();
        if page.tip != base {
            return Err(StorageError::BadSyncPage {
                reason: format!(
                    "page read at height {} ({}), the import is of height {} ({})",
                    page.tip.height, page.tip.hash, base.height, base.hash
                ),
            });
        }
        if page.entries.len() > MAX_UTXO_PAGE {
            return Err(StorageError::BadSyncPage {
                reason: format!(
                    "{} outputs, over the page limit of {MAX_UTXO_PAGE}",
                    page.entries.len()
                ),
            });
        }
        let mut check = self.check.clone();
        check.add_page(page)?;
        let record = ImportRecord {
            last: check.cursor(),
            complete: check.is_complete(),
            count: check.count(),
            utxo_hash: check.hash().to_bytes(),
            ..self.record.clone()
        };
        // The outputs and the record that counts them in one batch: after a crash the record describes
        // exactly the outputs on disk, so a resumed import neither repeats nor skips one.
        let mut batch = WriteBatch::with_capacity(page.entries.len() + 1);
        for (op, out) in &page.entries {
            let key = record::utxo_key(op);
            let value = record::seal_txout(&key, out);
            batch.put(key, value);
        }
        batch.put(record::IMPORT_KEY.to_vec(), record::seal_import(&record));
        if let Err(e) = self.engine.commit(batch) {
            self.halted = Some(e.to_string());
            return Err(e);
        }
        self.check = check;
        self.record = record;
        Ok(())
    }

    /// Checks the imported set and makes it the store's chain: the last page was imported, the set
    /// hashes to the base header's `utxo_commitment`, and the outputs on disk, rehashed and counted
    /// from scratch, are exactly the ones the pages carried. Then one batch writes the tip record (tip =
    /// base) and the base record and deletes the import record, and the store opens as a [`ChainDb`]
    /// whose [`base_height`](crate::BlockStore::base_height) and tip are the base's height.
    ///
    /// Refused, the import comes back unchanged in [`ImportRefused`] (halted if the failure was a
    /// write), and the store stays an unfinished import that [`ChainDb::open`] will not take for a
    /// chain. O(set) reads to rehash: once per import.
    pub fn finish(self) -> Result<ChainDb<E>, Box<ImportRefused<E>>> {
        self.finish_with(&[])
    }

    /// [`finish`](Self::finish), writing `records` as host records of the base height in the same batch
    /// (what the host keeps beside each block, such as its validator registry, which the chain it did
    /// not replay cannot give it). Records over their limits are refused before anything is written.
    pub fn finish_with(
        mut self,
        records: &[HostRecord<'_>],
    ) -> Result<ChainDb<E>, Box<ImportRefused<E>>> {
        if let Err(error) = self.commit_as_chain(records) {
            return Err(Box::new(ImportRefused {
                error,
                import: self,
            }));
        }
        match ChainDb::load(&self.engine, &self.config, &self.genesis) {
            Ok(loaded) => {
                info!(
                    height = self.record.base_height,
                    utxos = self.record.count,
                    "snapshot import finished"
                );
                Ok(ChainDb::assemble(self.engine, loaded, &self.config))
            }
            Err(error) => {
                self.halted = Some(format!("the imported chain did not open: {error}"));
                Err(Box::new(ImportRefused {
                    error,
                    import: self,
                }))
            }
        }
    }

    fn commit_as_chain(&mut self, records: &[HostRecord<'_>]) -> Result<(), StorageError> {
        self.check_halted()?;
        crate::chain::check_host_records(records)?;
        let count = self.check.finish(&self.header)?;
        let (stored_hash, stored_count) = rehash_utxos(&self.engine)?;
        if stored_count != count || stored_hash != *self.check.hash() {
            return Err(StorageError::Corruption {
                what: "UTXO set",
                detail: format!(
                    "{stored_count} outputs on disk hashing to {}; the import wrote {count} hashing to {}",
                    stored_hash.checksum(),
                    self.check.hash().checksum()
                ),
            });
        }
        let tip = TipRecord {
            genesis: self.record.genesis,
            height: self.record.base_height,
            hash: self.record.base_hash,
            utxo_count: count,
            utxo_hash: self.record.utxo_hash.clone(),
            log_end: self.record.log_end,
        };
        let mut batch = WriteBatch::with_capacity(3 + records.len());
        for r in records {
            let key = record::host_key(r.name);
            let value = record::seal_host(&key, self.record.base_height, r.value);
            batch.put(key, value);
        }
        batch.put(record::TIP_KEY.to_vec(), record::seal_tip(&tip));
        batch.put(
            record::BASE_KEY.to_vec(),
            record::seal_base(self.record.base_height),
        );
        batch.delete(record::IMPORT_KEY.to_vec());
        if let Err(e) = self.engine.commit(batch) {
            self.halted = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Deletes everything the import wrote and returns the empty engine, ready for a new import (of a
    /// newer base, from other peers) or for [`ChainDb::open`] from genesis. The discard is marked in the
    /// import record first: if it is interrupted, whoever opens the engine next finishes it rather than
    /// reading a half-deleted set. Allowed on a halted import too: deleting needs no trust in what is
    /// there.
    pub fn discard(self) -> Result<E, StorageError> {
        let record = ImportRecord {
            discarding: true,
            ..self.record
        };
        let mut batch = WriteBatch::with_capacity(1);
        batch.put(record::IMPORT_KEY.to_vec(), record::seal_import(&record));
        self.engine.commit(batch)?;
        finish_discard(&self.engine)?;
        info!(height = record.base_height, "snapshot import discarded");
        Ok(self.engine)
    }

    fn check_halted(&self) -> Result<(), StorageError> {
        match &self.halted {
            Some(reason) => Err(StorageError::Halted {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Deletes every record but the import record, a chunk per batch, then the import record and the block
/// log. The import record goes last: until then it says a discard is under way.
pub(crate) fn finish_discard<E: KvEngine>(engine: &E) -> Result<(), StorageError> {
    let end = [0xff; 8];
    let mut scan = ChunkedScan::new(engine, &[], &end);
    while let Some(chunk) = scan.next_chunk(SCAN_CHUNK)? {
        let mut batch = WriteBatch::with_capacity(chunk.len());
        for (key, _) in chunk {
            if key != record::IMPORT_KEY {
                batch.delete(key);
            }
        }
        if !batch.is_empty() {
            engine.commit(batch)?;
        }
    }
    let mut batch = WriteBatch::with_capacity(1);
    batch.delete(record::IMPORT_KEY.to_vec());
    engine.commit(batch)?;
    engine.truncate_log(0)
}
