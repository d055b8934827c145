//! [`ChainDb`]: the chain, UTXO and consensus-state store over any [`KvEngine`].

use std::collections::HashSet;
use std::sync::OnceLock;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use timecoin_crypto::{Hash, LtHash};
use timecoin_types::{
    Block, BlockDelta, BlockHash, CommitCertificate, Genesis, Height, OutPoint, TxOut, TypesError,
    UtxoView, WellFormedBlock, Wire, block_utxo_delta,
};
use tracing::{debug, error, info};

use crate::cache::{Lookup, UtxoCache};
use crate::commitment::{PendingApply, UtxoDelta};
use crate::config::{DEFAULT_UTXO_PAGE, MAX_UTXO_PAGE, StorageConfig};
use crate::engine::{AnyEngine, KvEngine, MemoryEngine, WriteBatch};
use crate::import::{CertifiedBase, SnapshotImport};
use crate::record::{self, TipRecord};
use crate::scan::{ChunkedScan, SCAN_CHUNK, for_each_in_range, successor};
use crate::wal::{WalState, count_wal};
use crate::{
    BlockStore, ChainStore, ChainTip, HostRecord, PruneReport, StorageError, StoredBlock,
    StoredHeader, UtxoPage, UtxoState,
};

/// The chain's state in memory, changed only after the engine has made the change durable.
struct ChainState {
    tip: TipRecord,
    utxo_hash: LtHash,
    cache: UtxoCache,
}

/// What [`ChainDb::load`] read and checked: a store but for its engine.
pub(crate) struct LoadedChain {
    genesis_hash: BlockHash,
    base_height: Height,
    body_floor: Height,
    state: ChainState,
    wal: WalState,
}

/// The chain store: blocks, certificates, the UTXO set with its multiset hash, and consensus state, over
/// one [`KvEngine`], with a bounded UTXO cache in front.
///
/// Reads of the UTXO set go to the cache first; while the whole set fits in the cache (it is loaded at
/// open) a miss is answered from memory too, so validation never touches the disk. Each block costs one
/// engine batch, flushed before [`apply_finalized`](ChainStore::apply_finalized) returns; the cache and
/// tip change only after that, under the lock readers take, so a reader sees the state before or after a
/// block and never the cache ahead of the disk.
///
/// Every method blocks on the engine (for sled: disk I/O). Async code uses
/// [`AsyncChainStore`](crate::AsyncChainStore).
///
/// Bounds: the UTXO cache holds at most [`StorageConfig::utxo_cache_entries`] outputs; the WAL at most
/// [`StorageConfig::wal_max_entries`] entries and [`StorageConfig::wal_max_bytes`] bytes.
pub struct ChainDb<E: KvEngine = AnyEngine> {
    pub(crate) engine: E,
    genesis_hash: BlockHash,
    /// The lowest block held: 0 for a chain grown from genesis, the snapshot's height for an imported one.
    base_height: Height,
    /// Every block from here to the tip holds its body; below it only the ones a prune kept do.
    pub(crate) body_floor: std::sync::atomic::AtomicU64,
    state: RwLock<ChainState>,
    /// Serializes block application, so the state read at its start is the state it commits on top of.
    writer: Mutex<()>,
    pub(crate) wal: Mutex<WalState>,
    pub(crate) wal_max_entries: u64,
    pub(crate) wal_max_bytes: u64,
    /// Set by the first failed write: the disk may then hold what memory does not.
    halted: OnceLock<String>,
    /// The last `utxo_commitment_after` result, reused by `apply_finalized` of the same block.
    pending: Mutex<Option<PendingApply>>,
}

impl<E: KvEngine> std::fmt::Debug for ChainDb<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.read();
        f.debug_struct("ChainDb")
            .field("tip_height", &s.tip.height)
            .field("tip_hash", &s.tip.hash)
            .field("utxos", &s.tip.utxo_count)
            .field("cached", &s.cache.len())
            .finish_non_exhaustive()
    }
}

impl ChainDb<MemoryEngine> {
    /// A new in-memory store holding `genesis`, with default config.
    pub fn memory(genesis: &Genesis) -> Result<Self, StorageError> {
        Self::open(MemoryEngine::new(), &StorageConfig::memory(), genesis)
    }
}

impl ChainDb<AnyEngine> {
    /// Opens the backend `config` names (creating and initialising it from `genesis` if empty).
    pub fn from_config(config: &StorageConfig, genesis: &Genesis) -> Result<Self, StorageError> {
        Self::open(AnyEngine::open(config)?, config, genesis)
    }
}

impl<E: KvEngine> ChainDb<E> {
    /// Opens a store on `engine`. An empty engine is initialised with `genesis` (its outputs, block 0 and
    /// the tip) in one batch; a non-empty one must hold the same genesis, and its tip record must agree
    /// with its tip block, or the open fails.
    pub fn open(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<Self, StorageError> {
        let loaded = Self::load(&engine, config, genesis)?;
        Ok(Self::assemble(engine, loaded, config))
    }

    /// Everything [`open`](Self::open) checks and reads, by reference, so a caller that must keep the
    /// engine when the open fails (a snapshot import's `finish`) can.
    pub(crate) fn load(
        engine: &E,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<LoadedChain, StorageError> {
        config.validate()?;
        let genesis_block = genesis.block();
        let genesis_hash = genesis_block.hash();
        let import = engine
            .get(record::IMPORT_KEY)?
            .map(|bytes| record::open_import(&bytes))
            .transpose()?;
        if let Some(import) = &import
            && import.genesis != genesis_hash
        {
            return Err(StorageError::GenesisMismatch {
                stored: import.genesis,
                given: genesis_hash,
            });
        }
        let tip = match engine.get(record::TIP_KEY)? {
            Some(bytes) => {
                // `finish` deletes the import record in the batch that writes the tip record.
                if import.is_some() {
                    return Err(StorageError::Corruption {
                        what: "import record",
                        detail: "present beside a tip record".into(),
                    });
                }
                let tip = record::open_tip(&bytes)?;
                if tip.genesis != genesis_hash {
                    return Err(StorageError::GenesisMismatch {
                        stored: tip.genesis,
                        given: genesis_hash,
                    });
                }
                tip
            }
            None => {
                match import {
                    Some(import) if import.discarding => crate::import::finish_discard(engine)?,
                    Some(import) => {
                        return Err(StorageError::ImportIncomplete {
                            base_height: import.base_height,
                            cursor: import.last,
                        });
                    }
                    None => {}
                }
                // Batches are atomic, so a store without a tip record (or an import record) holds
                // nothing at all; anything else is not ours (or is damaged) and must not be written over.
                if !engine.scan(&[], &[0xff; 8], 1)?.is_empty() {
                    return Err(StorageError::Corruption {
                        what: "tip record",
                        detail: "the store holds records but no tip record".into(),
                    });
                }
                Self::initialise(engine, genesis, &genesis_block)?
            }
        };
        cut_log_to(engine, tip.log_end, "the tip record")?;
        let utxo_hash = LtHash::from_bytes(&tip.utxo_hash)
            .map_err(|e| StorageError::undecodable("tip record", e))?;
        let base_height = match engine.get(record::BASE_KEY)? {
            Some(bytes) => record::open_base(&bytes)?,
            None => 0,
        };
        if base_height > tip.height {
            return Err(StorageError::Corruption {
                what: "base record",
                detail: format!("base {base_height} is above tip {}", tip.height),
            });
        }
        let tip_block =
            read_block(engine, tip.height)?.ok_or_else(|| StorageError::Corruption {
                what: "tip record",
                detail: format!("tip block {} is missing", tip.height),
            })?;
        if tip_block.hash() != tip.hash {
            return Err(StorageError::Corruption {
                what: "tip record",
                detail: format!(
                    "tip hash {} but block {} is {}",
                    tip.hash,
                    tip.height,
                    tip_block.hash()
                ),
            });
        }
        if utxo_hash.checksum() != tip_block.header.utxo_commitment {
            return Err(StorageError::Corruption {
                what: "tip record",
                detail: format!(
                    "UTXO hash state does not match the commitment of block {}",
                    tip.height
                ),
            });
        }
        let body_floor = match engine.get(record::BODY_FLOOR_KEY)? {
            Some(bytes) => record::open_body_floor(&bytes)?,
            None => base_height,
        };
        if body_floor > tip.height {
            return Err(StorageError::Corruption {
                what: "body floor",
                detail: format!("floor {body_floor} is above tip {}", tip.height),
            });
        }
        // A prune that committed but crashed before giving the bytes back finishes here.
        crate::prune::finish_discard(engine)?;
        let cache = warm_cache(engine, config.utxo_cache_entries(), tip.utxo_count)?;
        let wal = count_wal(engine)?;
        info!(
            height = tip.height,
            base = base_height,
            body_floor,
            utxos = tip.utxo_count,
            cached = cache.len(),
            complete = cache.is_complete(),
            wal_entries = wal.entries,
            "storage opened"
        );
        Ok(LoadedChain {
            genesis_hash,
            base_height,
            body_floor: body_floor.max(base_height),
            state: ChainState {
                tip,
                utxo_hash,
                cache,
            },
            wal,
        })
    }

    pub(crate) fn assemble(engine: E, loaded: LoadedChain, config: &StorageConfig) -> Self {
        ChainDb {
            engine,
            genesis_hash: loaded.genesis_hash,
            base_height: loaded.base_height,
            body_floor: std::sync::atomic::AtomicU64::new(loaded.body_floor),
            state: RwLock::new(loaded.state),
            writer: Mutex::new(()),
            wal: Mutex::new(loaded.wal),
            wal_max_entries: config.wal_max_entries,
            wal_max_bytes: config.wal_max_bytes,
            halted: OnceLock::new(),
            pending: Mutex::new(None),
        }
    }

    fn initialise(
        engine: &E,
        genesis: &Genesis,
        genesis_block: &WellFormedBlock,
    ) -> Result<TipRecord, StorageError> {
        let utxos = genesis.utxos();
        let hash = genesis_block.hash();
        // Bytes in the log without a tip record come from an initialisation that crashed before its
        // batch committed.
        engine.truncate_log(0)?;
        let body = append_body(engine, 0, genesis_block)?;
        let tip = TipRecord {
            genesis: hash,
            height: 0,
            hash,
            utxo_count: utxos.len() as u64,
            utxo_hash: genesis.utxo_hash().to_bytes(),
            log_end: body.offset + body.len,
        };
        let mut batch = WriteBatch::with_capacity(utxos.len() + 3);
        for (op, out) in &utxos {
            let key = record::utxo_key(op);
            let value = record::seal_txout(&key, out);
            batch.put(key, value);
        }
        put_block(&mut batch, genesis_block, hash, body, None);
        batch.put(record::TIP_KEY.to_vec(), record::seal_tip(&tip));
        engine.commit(batch)?;
        info!(genesis = %hash, utxos = utxos.len(), "storage initialised from genesis");
        Ok(tip)
    }

    /// Starts importing the UTXO set of `base` (a block the caller has verified against its certificate)
    /// into the fresh store on `engine`; see [`SnapshotImport`]. The base block and its certificate are
    /// written first, so the store can serve them and check the next block's parent once finished.
    ///
    /// Refuses an engine that holds anything ([`NotAFreshStore`](StorageError::NotAFreshStore); an
    /// unfinished import is resumed with [`resume_import`](Self::resume_import)), a base at height 0 (a
    /// store grown from genesis needs no import), and a certificate for another block.
    pub fn import_snapshot(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
        base: &CertifiedBase,
    ) -> Result<SnapshotImport<E>, StorageError> {
        SnapshotImport::begin(engine, config, genesis, base)
    }

    /// Picks up the unfinished import on `engine` (the one [`open`](Self::open) reported as
    /// [`ImportIncomplete`](StorageError::ImportIncomplete)) where its last durable page left it.
    pub fn resume_import(
        engine: E,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<SnapshotImport<E>, StorageError> {
        SnapshotImport::resume(engine, config, genesis)
    }

    /// The engine underneath, for tools and tests that inspect raw records.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Hash of block 0 of the chain this store holds.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// Forces everything to stable storage (blocks and consensus state already are when acknowledged).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.check_halted()?;
        self.engine.flush()
    }

    /// Unspent outputs held by the cache, and its bound.
    pub fn cache_usage(&self) -> (usize, usize) {
        let s = self.state.read();
        (s.cache.len(), s.cache.capacity())
    }

    /// A read-only view that answers every lookup from one tip: block application waits until it is
    /// dropped. Hold it for one check, not longer, and never across a call that applies a block (that
    /// would wait for itself).
    pub fn view(&self) -> ChainView<'_, E> {
        ChainView {
            db: self,
            state: self.state.read(),
        }
    }

    pub(crate) fn check_halted(&self) -> Result<(), StorageError> {
        match self.halted.get() {
            Some(reason) => Err(StorageError::Halted {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Commits a batch; on failure halts the store, since the engine may have applied part of the work
    /// (sled applies, then flushes) and memory would no longer match it.
    pub(crate) fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.engine.commit(batch).inspect_err(|e| self.halt(e))
    }

    fn halt(&self, err: &StorageError) {
        error!(error = %err, "storage write failed; halting the store");
        let _ = self.halted.set(err.to_string());
    }

    fn lookup(&self, state: &ChainState, op: &OutPoint) -> Result<Option<TxOut>, StorageError> {
        match state.cache.lookup(op) {
            Lookup::Unspent(out) => Ok(Some(out)),
            Lookup::Absent => Ok(None),
            Lookup::Unknown => {
                let key = record::utxo_key(op);
                match self.engine.get(&key)? {
                    Some(v) => record::open_txout(&key, &v).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// The spent outputs a block consumes (with their values) and the outputs it creates, refusing any
    /// block whose changes would leave the set, its count and its multiset hash disagreeing: a repeated
    /// transaction, an outpoint spent twice, an output created that is already unspent, and an input
    /// the set does not hold. Signatures and amounts are consensus's business, not checked here.
    fn resolve_delta(&self, state: &ChainState, block: &Block) -> Result<UtxoDelta, StorageError> {
        let height = block.header.height;
        let BlockDelta {
            spent: spent_ops,
            created,
        } = block_utxo_delta(block).map_err(|e| refused_delta(height, e))?;
        // Created outputs first: a transaction replayed from an earlier block is then reported as what it
        // is, rather than by the inputs its first inclusion already spent. Writing an output that is
        // already unspent would count and hash it twice: the store would not reopen.
        for (op, _) in &created {
            if self.lookup(state, op)?.is_some() {
                return Err(StorageError::OutputExists {
                    height,
                    outpoint: *op,
                });
            }
        }
        // `block_utxo_delta` promises each outpoint once; the set's consistency should not rest on another
        // crate's promise alone, and the check costs little next to the lookups.
        let mut seen = HashSet::with_capacity(spent_ops.len());
        let mut spent = Vec::with_capacity(spent_ops.len());
        for op in spent_ops {
            if !seen.insert(op) {
                return Err(StorageError::DoubleSpendInBlock {
                    height,
                    outpoint: op,
                });
            }
            let out = self.lookup(state, &op)?.ok_or(StorageError::MissingInput {
                height,
                outpoint: op,
            })?;
            spent.push((op, out));
        }
        Ok(UtxoDelta { spent, created })
    }

    /// Recomputes everything the store asserts and compares: every block's links, hash index and
    /// certificate, and the multiset hash of the UTXO set rebuilt from scratch against the tip record and
    /// the tip header. O(chain + set); for operators and tests, not the hot path.
    pub fn verify_integrity(&self) -> Result<IntegrityReport, StorageError> {
        self.check_halted()?;
        let state = self.state.read();
        let tip = state.tip.clone();
        let mut parent = BlockHash(Hash::ZERO);
        let mut tip_header = None;
        let floor = self.body_floor();
        for height in self.base_height..=tip.height {
            // Above the floor the body itself must be there; below it, a pruned body's header will do.
            let stored = if height >= floor {
                self.block_at(height)?.map(|stored| StoredHeader {
                    header: stored.block.header,
                    certificate: stored.certificate,
                })
            } else {
                self.header_at(height)?
            }
            .ok_or_else(|| StorageError::Corruption {
                what: "chain",
                detail: format!("block {height} is missing below tip {}", tip.height),
            })?;
            let hash = stored.header.hash();
            // The base block's parent lies below the base: only the blocks above it link to one held.
            let linked = height == self.base_height && height > 0 || stored.header.parent == parent;
            if stored.header.height != height || !linked {
                return Err(StorageError::Corruption {
                    what: "chain",
                    detail: format!("block {height} does not link to its parent"),
                });
            }
            if self.height_of_hash(&hash)? != Some(height) {
                return Err(StorageError::Corruption {
                    what: "block hash index",
                    detail: format!("block {height} is not indexed by its hash"),
                });
            }
            if height == 0 && hash != self.genesis_hash {
                return Err(StorageError::Corruption {
                    what: "chain",
                    detail: "block 0 is not this chain's genesis".into(),
                });
            }
            parent = hash;
            tip_header = Some(stored.header);
        }
        if parent != tip.hash {
            return Err(StorageError::Corruption {
                what: "tip record",
                detail: format!("tip hash {} but block {} is {parent}", tip.hash, tip.height),
            });
        }
        let (rebuilt, count) = rehash_utxos(&self.engine)?;
        let computed = rebuilt.checksum();
        if rebuilt != state.utxo_hash || count != tip.utxo_count {
            return Err(StorageError::Corruption {
                what: "UTXO set",
                detail: format!(
                    "{count} outputs hashing to {computed}; tip record says {} hashing to {}",
                    tip.utxo_count,
                    state.utxo_hash.checksum()
                ),
            });
        }
        let header = tip_header.ok_or_else(|| StorageError::Corruption {
            what: "chain",
            detail: "no blocks".into(),
        })?;
        if computed != header.utxo_commitment {
            return Err(StorageError::CommitmentMismatch {
                height: tip.height,
                expected: header.utxo_commitment,
                computed,
            });
        }
        Ok(IntegrityReport {
            tip: ChainTip {
                height: tip.height,
                hash: tip.hash,
            },
            blocks: tip.height - self.base_height + 1,
            utxos: count,
            commitment: computed,
        })
    }

    fn block_at(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        let Some(block) = read_block(&self.engine, height)? else {
            return Ok(None);
        };
        if block.header.height != height {
            return Err(StorageError::Corruption {
                what: "block",
                detail: format!("stored at height {height}, says {}", block.header.height),
            });
        }
        let certificate = if height == 0 {
            None
        } else {
            Some(self.certificate_of(height, &block.hash())?)
        };
        Ok(Some(StoredBlock { block, certificate }))
    }

    /// The certificate stored for `height`, checked to name the block `hash`; its absence is damage.
    fn certificate_of(
        &self,
        height: Height,
        hash: &BlockHash,
    ) -> Result<CommitCertificate, StorageError> {
        let key = record::height_key(record::CERTIFICATE, height);
        let value = self
            .engine
            .get(&key)?
            .ok_or_else(|| StorageError::Corruption {
                what: "certificate",
                detail: format!("block {height} has no certificate"),
            })?;
        let cert = record::open_certificate(&key, &value)?;
        if cert.block_hash != *hash {
            return Err(StorageError::Corruption {
                what: "certificate",
                detail: format!("certificate at height {height} is for another block"),
            });
        }
        Ok(cert)
    }

    /// The header at `height` from its body or, where the body was pruned, from the header kept for it,
    /// with its certificate checked to name it.
    pub(crate) fn header_at(&self, height: Height) -> Result<Option<StoredHeader>, StorageError> {
        if let Some(stored) = self.block_at(height)? {
            return Ok(Some(StoredHeader {
                header: stored.block.header,
                certificate: stored.certificate,
            }));
        }
        let key = record::height_key(record::PRUNED_HEADER, height);
        let Some(value) = self.engine.get(&key)? else {
            return Ok(None);
        };
        let header = record::open_pruned_header(&key, &value)?;
        if header.height != height {
            return Err(StorageError::Corruption {
                what: "pruned block's header",
                detail: format!("stored at height {height}, says {}", header.height),
            });
        }
        // Genesis is never pruned, so a pruned header always has a certificate to check it by.
        let cert = self.certificate_of(height, &header.hash())?;
        Ok(Some(StoredHeader {
            header,
            certificate: Some(cert),
        }))
    }

    pub(crate) fn body_floor(&self) -> Height {
        self.body_floor.load(std::sync::atomic::Ordering::Acquire)
    }

    fn height_of_hash(&self, hash: &BlockHash) -> Result<Option<Height>, StorageError> {
        let key = record::hash_index_key(hash);
        match self.engine.get(&key)? {
            Some(v) => record::open_height(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn page(
        &self,
        state: &ChainState,
        after: Option<&OutPoint>,
        limit: usize,
    ) -> Result<UtxoPage, StorageError> {
        let limit = match limit {
            0 => DEFAULT_UTXO_PAGE,
            n => n.min(MAX_UTXO_PAGE),
        };
        let (from, to) = record::utxo_range();
        let start = match after {
            Some(op) => successor(&record::utxo_key(op)),
            None => from.to_vec(),
        };
        // One extra entry tells whether the set goes on past this page.
        let raw = self.engine.scan(&start, &to, limit + 1)?;
        let more = raw.len() > limit;
        let mut entries = Vec::with_capacity(raw.len().min(limit));
        for (key, value) in raw.iter().take(limit) {
            entries.push((
                record::outpoint_from_key(key)?,
                record::open_txout(key, value)?,
            ));
        }
        let next = if more {
            entries.last().map(|(op, _)| *op)
        } else {
            None
        };
        Ok(UtxoPage {
            tip: ChainTip {
                height: state.tip.height,
                hash: state.tip.hash,
            },
            entries,
            next,
        })
    }
}

/// What [`ChainDb::verify_integrity`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntegrityReport {
    /// The tip.
    pub tip: ChainTip,
    /// Blocks checked: base to tip (genesis included when the base is 0).
    pub blocks: u64,
    /// Unspent outputs rehashed.
    pub utxos: u64,
    /// The UTXO commitment, equal to the tip header's.
    pub commitment: Hash,
}

/// A consistent read-only view of the UTXO set at one tip; see [`ChainDb::view`].
pub struct ChainView<'a, E: KvEngine> {
    db: &'a ChainDb<E>,
    state: RwLockReadGuard<'a, ChainState>,
}

impl<E: KvEngine> ChainView<'_, E> {
    /// The tip this view reads at.
    pub fn tip(&self) -> ChainTip {
        ChainTip {
            height: self.state.tip.height,
            hash: self.state.tip.hash,
        }
    }
}

impl<E: KvEngine> UtxoView for ChainView<'_, E> {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        self.db.check_halted()?;
        Ok(self.db.lookup(&self.state, outpoint)?)
    }
}

pub(crate) fn read_block<E: KvEngine>(
    engine: &E,
    height: Height,
) -> Result<Option<Block>, StorageError> {
    let key = record::height_key(record::BLOCK, height);
    let Some(value) = engine.get(&key)? else {
        return Ok(None);
    };
    let body = record::open_body_ref(&key, &value)?;
    read_body(engine, height, body).map(Some)
}

/// Block `height`'s body from where its reference says it lies in the log.
pub(crate) fn read_body<E: KvEngine>(
    engine: &E,
    height: Height,
    body: record::BodyRef,
) -> Result<Block, StorageError> {
    let len = usize::try_from(body.len).map_err(|_| StorageError::Corruption {
        what: "block reference",
        detail: format!("length {} does not fit in memory", body.len),
    })?;
    let bytes = engine.read_log(body.offset, len)?;
    record::open_block_body(height, &bytes)
}

/// The multiset hash and count of every output on disk, rebuilt from scratch a chunk at a time.
pub(crate) fn rehash_utxos<E: KvEngine>(engine: &E) -> Result<(LtHash, u64), StorageError> {
    let mut rebuilt = LtHash::new();
    let mut count = 0u64;
    let (from, to) = record::utxo_range();
    for_each_in_range(engine, &from, &to, |key, value| {
        let op = record::outpoint_from_key(&key)?;
        let out = record::open_txout(&key, &value)?;
        rebuilt.insert(&timecoin_types::utxo_element(&op, &out));
        count += 1;
        Ok(())
    })?;
    Ok((rebuilt, count))
}

/// Cuts the block log back to `committed_end`, the length the last committed batch (named by `whose`)
/// recorded: bytes past it are bodies whose batch never committed. A log shorter than that is damage.
pub(crate) fn cut_log_to<E: KvEngine>(
    engine: &E,
    committed_end: u64,
    whose: &str,
) -> Result<(), StorageError> {
    let log_len = engine.log_len()?;
    if log_len < committed_end {
        return Err(StorageError::Corruption {
            what: "block log",
            detail: format!("{log_len} bytes, {whose} says {committed_end}"),
        });
    }
    if log_len > committed_end {
        info!(
            discarded = log_len - committed_end,
            "cutting block bodies no committed block refers to"
        );
        engine.truncate_log(committed_end)?;
    }
    Ok(())
}

/// Appends a block's sealed body to the engine's log (durably) and returns where it is.
pub(crate) fn append_body<E: KvEngine>(
    engine: &E,
    height: Height,
    block: &Block,
) -> Result<record::BodyRef, StorageError> {
    let sealed = record::seal_block_body(height, block);
    let offset = engine.append_log(&sealed)?;
    Ok(record::BodyRef {
        offset,
        len: sealed.len() as u64,
    })
}

pub(crate) fn put_block(
    batch: &mut WriteBatch,
    block: &Block,
    hash: BlockHash,
    body: record::BodyRef,
    certificate: Option<&CommitCertificate>,
) {
    let height = block.header.height;
    let key = record::height_key(record::BLOCK, height);
    let value = record::seal_body_ref(&key, body);
    batch.put(key, value);
    if let Some(cert) = certificate {
        let key = record::height_key(record::CERTIFICATE, height);
        let value = record::seal(&key, cert.encode());
        batch.put(key, value);
    }
    let key = record::hash_index_key(&hash);
    let value = record::seal(&key, height.to_be_bytes().to_vec());
    batch.put(key, value);
}

/// Loads up to `capacity` outputs; the cache is complete when that was all of them.
fn warm_cache<E: KvEngine>(
    engine: &E,
    capacity: usize,
    expected: u64,
) -> Result<UtxoCache, StorageError> {
    let mut cache = UtxoCache::new(capacity);
    let (from, to) = record::utxo_range();
    let mut scan = ChunkedScan::new(engine, &from, &to);
    let mut loaded = 0usize;
    loop {
        let want = (capacity - loaded).min(SCAN_CHUNK);
        if want == 0 {
            // Full: the set is complete only if nothing is left on disk.
            if scan.next_chunk(1)?.is_some() {
                cache.mark_incomplete();
            }
            break;
        }
        let Some(chunk) = scan.next_chunk(want)? else {
            break;
        };
        for (key, value) in &chunk {
            cache.insert(
                record::outpoint_from_key(key)?,
                record::open_txout(key, value)?,
            );
        }
        loaded += chunk.len();
    }
    if cache.is_complete() && cache.len() as u64 != expected {
        return Err(StorageError::Corruption {
            what: "UTXO set",
            detail: format!(
                "{} outputs on disk, tip record says {expected}",
                cache.len()
            ),
        });
    }
    Ok(cache)
}

impl<E: KvEngine> BlockStore for ChainDb<E> {
    fn tip(&self) -> Result<ChainTip, StorageError> {
        self.check_halted()?;
        let s = self.state.read();
        Ok(ChainTip {
            height: s.tip.height,
            hash: s.tip.hash,
        })
    }

    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        self.check_halted()?;
        let tip = self.state.read().tip.height;
        if height > tip || height < self.base_height {
            return Ok(None);
        }
        match self.block_at(height)? {
            Some(stored) => Ok(Some(stored)),
            // Below the floor a missing body was pruned; its header says the block existed.
            None if height < self.body_floor() => Ok(None),
            None => Err(StorageError::Corruption {
                what: "chain",
                detail: format!("block {height} is missing below tip {tip}"),
            }),
        }
    }

    fn header(&self, height: Height) -> Result<Option<StoredHeader>, StorageError> {
        self.check_halted()?;
        let tip = self.state.read().tip.height;
        if height > tip || height < self.base_height {
            return Ok(None);
        }
        self.header_at(height)?
            .map(Some)
            .ok_or_else(|| StorageError::Corruption {
                what: "chain",
                detail: format!("header {height} is missing below tip {tip}"),
            })
    }

    fn body_floor(&self) -> Result<Height, StorageError> {
        self.check_halted()?;
        Ok(self.body_floor())
    }

    fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StorageError> {
        self.check_halted()?;
        let Some(height) = self.height_of(hash)? else {
            return Ok(None);
        };
        let Some(stored) = self.block(height)? else {
            // `height_of` answers only at or below the tip: the body was pruned.
            return Ok(None);
        };
        if stored.block.hash() != *hash {
            return Err(StorageError::Corruption {
                what: "block hash index",
                detail: format!("{hash} indexed at height {height}, which holds another block"),
            });
        }
        Ok(Some(stored))
    }

    fn base_height(&self) -> Result<Height, StorageError> {
        self.check_halted()?;
        Ok(self.base_height)
    }

    fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>, StorageError> {
        self.check_halted()?;
        // The tip is read first and only grows, so an entry at or below it belongs to a durable block.
        // sled shows a batch to readers as soon as it is applied, before the flush that makes it
        // durable (the tip in memory moves only after): an entry above the tip names a block that is not
        // final yet, or never will be if the flush fails.
        let tip = self.state.read().tip.height;
        Ok(self.height_of_hash(hash)?.filter(|h| *h <= tip))
    }
}

impl<E: KvEngine> UtxoView for ChainDb<E> {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        Ok(self.utxo(outpoint)?)
    }
}

/// Refuses host records over their name or size limit before anything is written.
pub(crate) fn check_host_records(records: &[HostRecord<'_>]) -> Result<(), StorageError> {
    for r in records {
        if r.name.len() > record::MAX_HOST_RECORD_NAME {
            return Err(StorageError::TooLarge {
                what: "host record name",
                len: r.name.len(),
                max: record::MAX_HOST_RECORD_NAME,
            });
        }
        if r.value.len() > record::MAX_HOST_RECORD_BYTES {
            return Err(StorageError::TooLarge {
                what: "host record",
                len: r.value.len(),
                max: record::MAX_HOST_RECORD_BYTES,
            });
        }
    }
    Ok(())
}

impl<E: KvEngine> ChainStore for ChainDb<E> {
    fn apply_finalized_with(
        &self,
        block: &WellFormedBlock,
        certificate: &CommitCertificate,
        records: &[HostRecord<'_>],
    ) -> Result<(), StorageError> {
        let _writer = self.writer.lock();
        self.check_halted()?;
        check_host_records(records)?;
        let header = &block.header;
        let hash = block.hash();
        // The type checked the root against the body, so it stands for the transactions.
        let tx_root = header.tx_root;
        let tip = self.state.read().tip.clone();
        if header.height != tip.height + 1 || header.parent != tip.hash {
            return Err(StorageError::NotNextBlock {
                tip_height: tip.height,
                tip_hash: tip.hash,
                found: header.height,
                found_parent: header.parent,
            });
        }
        if certificate.height != header.height || certificate.block_hash != hash {
            return Err(StorageError::CertificateMismatch {
                height: header.height,
                block: hash,
                cert_height: certificate.height,
                cert_block: certificate.block_hash,
            });
        }
        // The writer lock is held, so the tip cannot move: a memo computed on this tip for these
        // transactions is exactly what resolving again would give.
        let memo = self
            .pending
            .lock()
            .take()
            .filter(|p| p.parent == tip.hash && p.tx_root == tx_root);
        let (delta, utxo_hash) = match memo {
            Some(p) => (p.delta, p.hash),
            None => {
                let state = self.state.read();
                let delta = self.resolve_delta(&state, block)?;
                let mut utxo_hash = state.utxo_hash.clone();
                drop(state);
                delta.apply_to(&mut utxo_hash);
                (delta, utxo_hash)
            }
        };
        let UtxoDelta { spent, created } = delta;
        let computed = utxo_hash.checksum();
        if computed != header.utxo_commitment {
            return Err(StorageError::CommitmentMismatch {
                height: header.height,
                expected: header.utxo_commitment,
                computed,
            });
        }
        let utxo_count = (tip.utxo_count + created.len() as u64)
            .checked_sub(spent.len() as u64)
            .ok_or_else(|| StorageError::Corruption {
                what: "tip record",
                detail: format!("UTXO count {} is below the outputs spent", tip.utxo_count),
            })?;
        // The body goes to the log first: if the batch below never commits, the bytes past the tip's
        // `log_end` are cut at the next open.
        let body = append_body(&self.engine, header.height, block).inspect_err(|e| self.halt(e))?;
        let new_tip = TipRecord {
            genesis: tip.genesis,
            height: header.height,
            hash,
            utxo_count,
            utxo_hash: utxo_hash.to_bytes(),
            log_end: body.offset + body.len,
        };
        let mut batch = WriteBatch::with_capacity(spent.len() + created.len() + 4 + records.len());
        for r in records {
            let key = record::host_key(r.name);
            let value = record::seal_host(&key, header.height, r.value);
            batch.put(key, value);
        }
        for (op, _) in &spent {
            batch.delete(record::utxo_key(op));
        }
        for (op, out) in &created {
            let key = record::utxo_key(op);
            let value = record::seal_txout(&key, out);
            batch.put(key, value);
        }
        put_block(&mut batch, block, hash, body, Some(certificate));
        batch.put(record::TIP_KEY.to_vec(), record::seal_tip(&new_tip));

        let mut state = self.state.write();
        self.commit(batch)?;
        for (op, _) in &spent {
            state.cache.remove(op);
        }
        for (op, out) in created {
            state.cache.insert(op, out);
        }
        state.tip = new_tip;
        state.utxo_hash = utxo_hash;
        debug!(
            height = header.height,
            txs = block.transactions.len(),
            spent = spent.len(),
            utxos = utxo_count,
            "block applied"
        );
        Ok(())
    }

    fn host_record(&self, name: &str) -> Result<Option<(Height, Vec<u8>)>, StorageError> {
        self.check_halted()?;
        let key = record::host_key(name);
        match self.engine.get(&key)? {
            Some(value) => Ok(Some(record::open_host(&key, &value)?)),
            None => Ok(None),
        }
    }

    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, StorageError> {
        self.check_halted()?;
        let state = self.state.read();
        self.lookup(&state, outpoint)
    }

    fn utxo_state(&self) -> Result<UtxoState, StorageError> {
        self.check_halted()?;
        let s = self.state.read();
        Ok(UtxoState {
            tip: ChainTip {
                height: s.tip.height,
                hash: s.tip.hash,
            },
            count: s.tip.utxo_count,
            hash: s.utxo_hash.clone(),
        })
    }

    fn utxo_commitment_after(&self, block: &WellFormedBlock) -> Result<Hash, StorageError> {
        self.check_halted()?;
        let state = self.state.read();
        let parent = state.tip.hash;
        let delta = self.resolve_delta(&state, block)?;
        let mut hash = state.utxo_hash.clone();
        drop(state);
        delta.apply_to(&mut hash);
        let commitment = hash.checksum();
        *self.pending.lock() = Some(PendingApply {
            parent,
            tx_root: block.header.tx_root,
            delta,
            hash,
        });
        Ok(commitment)
    }

    fn prune_bodies(
        &self,
        below: Height,
        max_blocks: usize,
        keep: &dyn Fn(&timecoin_types::BlockHeader, Option<&timecoin_types::BlockHeader>) -> bool,
    ) -> Result<PruneReport, StorageError> {
        self.check_halted()?;
        // Blocks are applied under the writer lock; holding it keeps the tip still while bodies below it
        // go, and keeps two prunes from racing on the floor.
        let _writer = self.writer.lock();
        let tip = self.state.read().tip.height;
        // A failed commit halts the store (in `commit`); a failed read or discard leaves memory and disk
        // agreeing, and the next call (or open) retries the discard.
        crate::prune::prune(self, tip, below, max_blocks, keep)
    }

    fn size_on_disk(&self) -> Result<Option<u64>, StorageError> {
        self.check_halted()?;
        self.engine.size_on_disk()
    }

    fn utxo_page(&self, after: Option<&OutPoint>, limit: usize) -> Result<UtxoPage, StorageError> {
        self.check_halted()?;
        let state = self.state.read();
        self.page(&state, after, limit)
    }
}

/// Names the rule a block's body broke when its UTXO changes could not be worked out.
fn refused_delta(height: Height, err: TypesError) -> StorageError {
    match err {
        TypesError::DuplicateTxInBlock {
            first,
            second,
            txid,
        } => StorageError::DuplicateTxInBlock {
            height,
            first,
            second,
            txid,
        },
        TypesError::ConflictInBlock { outpoint, .. } => {
            StorageError::DoubleSpendInBlock { height, outpoint }
        }
        TypesError::InvalidBlockTx { index, source } => match *source {
            TypesError::DuplicateInput { outpoint, .. } => {
                StorageError::DoubleSpendInBlock { height, outpoint }
            }
            other => StorageError::InconsistentBlock {
                height,
                source: TypesError::InvalidBlockTx {
                    index,
                    source: Box::new(other),
                },
            },
        },
        other => StorageError::InconsistentBlock {
            height,
            source: other,
        },
    }
}
