//! One suite of scenarios, run against every backend: each scenario is a generic function over a
//! [`Backend`] that can open (and reopen) a store, and the macro at the bottom instantiates it per backend.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use timecoin_crypto::Hash;
use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{
    AsyncChainStore, BlockStore, CertifiedBase, ChainDb, ChainStore, ConsensusStateStore,
    HostRecord, KvEngine, KvPair, MAX_HOST_RECORD_NAME, MAX_UTXO_PAGE, MemoryEngine, SledEngine,
    SnapshotImport, StorageConfig, StorageError, StoreContents, UtxoPage, UtxoSyncCheck,
    WriteBatch,
};
use timecoin_types::{
    Amount, Block, BlockDelta, BlockHash, CommitCertificate, Genesis, OutPoint, Transaction,
    TxBuilder, TxId, TxKind, TxOut, WellFormedBlock, block_utxo_delta,
};

/// Opens stores of one kind; a second `open` sees what the first one wrote.
trait Backend {
    type Engine: KvEngine;
    /// Damages one byte of the block log, as bit rot would.
    fn flip_log_byte(&self, store: &ChainDb<Self::Engine>, offset: u64);
    /// Bytes the block log occupies on disk, for a backend that has one.
    fn log_allocated(&self) -> Option<u64>;
    fn open_with(
        &mut self,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<ChainDb<Self::Engine>, StorageError>;
    /// The raw engine over the same storage a later `open_with` sees, with the config to open it with
    /// (for a snapshot import, which starts from an engine rather than a store).
    fn engine(&mut self) -> (Self::Engine, StorageConfig);
}

struct Memory {
    engine: Arc<MemoryEngine>,
}

impl Memory {
    fn new() -> Self {
        Memory {
            engine: Arc::new(MemoryEngine::new()),
        }
    }
}

impl Backend for Memory {
    type Engine = Arc<MemoryEngine>;
    fn flip_log_byte(&self, store: &ChainDb<Self::Engine>, offset: u64) {
        store.engine().flip_log_byte(offset);
    }
    fn log_allocated(&self) -> Option<u64> {
        None
    }
    fn open_with(
        &mut self,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<ChainDb<Self::Engine>, StorageError> {
        ChainDb::open(Arc::clone(&self.engine), config, genesis)
    }
    fn engine(&mut self) -> (Self::Engine, StorageConfig) {
        (Arc::clone(&self.engine), test_config())
    }
}

struct Sled {
    dir: tempfile::TempDir,
}

impl Sled {
    fn new() -> Self {
        Sled {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Sled {
    type Engine = SledEngine;
    fn log_allocated(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let path = self
            .dir
            .path()
            .join(timecoin_storage::engine::BLOCK_LOG_FILE);
        Some(std::fs::metadata(path).unwrap().blocks() * 512)
    }
    fn flip_log_byte(&self, _store: &ChainDb<Self::Engine>, offset: u64) {
        use std::os::unix::fs::FileExt;
        let path = self
            .dir
            .path()
            .join(timecoin_storage::engine::BLOCK_LOG_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offset).unwrap();
        file.write_all_at(&[byte[0] ^ 0x01], offset).unwrap();
    }
    fn open_with(
        &mut self,
        config: &StorageConfig,
        genesis: &Genesis,
    ) -> Result<ChainDb<Self::Engine>, StorageError> {
        let config = StorageConfig {
            backend: timecoin_storage::BackendKind::Sled {
                path: self.dir.path().into(),
            },
            ..config.clone()
        };
        ChainDb::open(
            SledEngine::open(self.dir.path(), &config)?,
            &config,
            genesis,
        )
    }
    fn engine(&mut self) -> (Self::Engine, StorageConfig) {
        let config = StorageConfig {
            backend: timecoin_storage::BackendKind::Sled {
                path: self.dir.path().into(),
            },
            ..test_config()
        };
        (SledEngine::open(self.dir.path(), &config).unwrap(), config)
    }
}

/// A modest cache: tests should not reserve the default 256 MiB of cache each.
fn test_config() -> StorageConfig {
    StorageConfig {
        cache_bytes: 32 * 1024 * 1024,
        ..StorageConfig::memory()
    }
}

fn open<B: Backend>(b: &mut B, factory: &BlockFactory) -> ChainDb<B::Engine> {
    b.open_with(&test_config(), factory.genesis()).unwrap()
}

/// The UTXO set applied block by block to a plain map: the reference the stores are compared with.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model(BTreeMap<OutPoint, TxOut>);

impl Model {
    fn at_genesis(genesis: &Genesis) -> Self {
        Model(genesis.utxos().into_iter().collect())
    }
    fn apply(&mut self, block: &Block) {
        let BlockDelta { spent, created } = block_utxo_delta(block).unwrap();
        for op in spent {
            assert!(
                self.0.remove(&op).is_some(),
                "model: {op} spent but not unspent"
            );
        }
        self.0.extend(created);
    }
}

fn apply_blocks<E: KvEngine>(
    store: &ChainDb<E>,
    factory: &BlockFactory,
    model: &mut Model,
    blocks: usize,
    txs: usize,
) -> Vec<WellFormedBlock> {
    let mut applied = Vec::new();
    for _ in 0..blocks {
        let (block, cert) = factory.next_block(store, txs).unwrap();
        store.apply_finalized(&block, &cert).unwrap();
        model.apply(&block);
        applied.push(block);
    }
    applied
}

fn all_utxos(store: &impl ChainStore, page: usize) -> Vec<(OutPoint, TxOut)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p: UtxoPage = store.utxo_page(cursor.as_ref(), page).unwrap();
        out.extend(p.entries);
        match p.next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
}

fn assert_matches_model<E: KvEngine>(store: &ChainDb<E>, model: &Model) {
    let stored: Vec<_> = all_utxos(store, 0);
    let expected: Vec<_> = model.0.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(stored, expected, "stored UTXO set differs from the model");
    for (op, out) in &model.0 {
        assert_eq!(store.utxo(op).unwrap(), Some(*out));
    }
    assert_eq!(store.utxo_state().unwrap().count, model.0.len() as u64);
    let report = store.verify_integrity().unwrap();
    assert_eq!(report.utxos, model.0.len() as u64);
}

fn missing_outpoint(tag: u8) -> OutPoint {
    OutPoint {
        txid: TxId(Hash::from_bytes([tag; 32])),
        vout: 7,
    }
}

// ---------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------

fn genesis_store_holds_block_zero_its_outputs_and_commitment<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let genesis = factory.genesis();
    let store = open(b, &factory);
    let tip = store.tip().unwrap();
    assert_eq!(tip.height, 0);
    assert_eq!(tip.hash, genesis.block().hash());
    let zero = store.block(0).unwrap().unwrap();
    assert_eq!(zero.block, *genesis.block());
    assert_eq!(zero.certificate, None, "genesis is final without votes");
    assert_eq!(store.block_by_hash(&tip.hash).unwrap().unwrap(), zero);
    assert_eq!(store.block(1).unwrap(), None);
    let state = store.utxo_state().unwrap();
    assert_eq!(state.hash, genesis.utxo_hash());
    assert_eq!(state.hash.checksum(), zero.block.header.utxo_commitment);
    assert_matches_model(&store, &Model::at_genesis(genesis));
}

fn applied_blocks_move_the_tip_spend_inputs_and_add_outputs<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let store = open(b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    // Block 1 splits the four genesis coins; blocks 2.. are two-in/two-out transfers.
    let blocks = apply_blocks(&store, &factory, &mut model, 5, 6);
    for (i, block) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        let stored = store.block(height).unwrap().unwrap();
        assert_eq!(&stored.block, block.block());
        let cert = stored.certificate.unwrap();
        assert_eq!((cert.height, cert.block_hash), (height, block.hash()));
        assert_eq!(store.height_of(&block.hash()).unwrap(), Some(height));
        assert_eq!(
            store.block_by_hash(&block.hash()).unwrap().unwrap().block,
            **block
        );
        let BlockDelta { spent, created } = block_utxo_delta(block).unwrap();
        for op in spent {
            assert_eq!(store.utxo(&op).unwrap(), None, "{op} was spent at {height}");
        }
        for (op, out) in created {
            if model.0.contains_key(&op) {
                assert_eq!(store.utxo(&op).unwrap(), Some(out));
            }
        }
    }
    let last = blocks.last().unwrap();
    assert!(
        last.transactions
            .iter()
            .all(|t| t.inputs.len() == 2 && t.outputs.len() == 2)
    );
    assert_eq!(store.tip().unwrap().hash, last.hash());
    assert_eq!(
        store.utxo_state().unwrap().hash.checksum(),
        last.header.utxo_commitment
    );
    assert_matches_model(&store, &model);
}

fn blocks_that_do_not_extend_the_tip_are_refused_without_change<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let store = open(b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    let applied = apply_blocks(&store, &factory, &mut model, 2, 4);
    let before = (store.tip().unwrap(), store.utxo_state().unwrap());

    // Re-applying a finalized block.
    let old = &applied[1];
    let err = store
        .apply_finalized(old, &factory.certify(old))
        .unwrap_err();
    assert!(matches!(err, StorageError::NotNextBlock { .. }), "{err}");

    // A certificate for another block.
    let (block, _) = factory.next_block(&store, 4).unwrap();
    let err = store
        .apply_finalized(&block, &factory.certify(old))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::CertificateMismatch { .. }),
        "{err}"
    );

    // A header committing to a set the block does not produce.
    let mut lying = block.clone().into_block();
    lying.header.utxo_commitment = Hash::from_bytes([9; 32]);
    let lying = lying.seal();
    let err = store
        .apply_finalized(&lying, &factory.certify(&lying))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::CommitmentMismatch { .. }),
        "{err}"
    );

    // An input the set does not hold.
    let key = Genesis::local_validator_key(0);
    let spender = |inputs: &[OutPoint]| {
        let mut builder = TxBuilder::new(factory.genesis().params.chain_id);
        for op in inputs {
            builder = builder.input(*op, Amount::from_sat(10_000), &key);
        }
        builder
            .output(
                timecoin_crypto::Address::from_public_key(&key.public_key()),
                Amount::from_sat(5_000),
            )
            .sign()
    };
    let mut missing = block.clone().into_block();
    missing.transactions = vec![spender(&[missing_outpoint(1)])];
    let missing = missing.seal();
    let err = store
        .apply_finalized(&missing, &factory.certify(&missing))
        .unwrap_err();
    assert!(matches!(err, StorageError::MissingInput { .. }), "{err}");

    // Two transactions spending one output.
    let coin = model.0.keys().next().copied().unwrap();
    let mut double = block.clone().into_block();
    double.transactions = vec![spender(&[coin]), spender(&[coin, missing_outpoint(2)])];
    let double = double.seal();
    let err = store
        .apply_finalized(&double, &factory.certify(&double))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::DoubleSpendInBlock { .. }),
        "{err}"
    );

    assert_eq!((store.tip().unwrap(), store.utxo_state().unwrap()), before);
    assert_matches_model(&store, &model);
    // The store is still usable: the honest block applies.
    store
        .apply_finalized(&block, &factory.certify(&block))
        .unwrap();
    model.apply(&block);
    assert_matches_model(&store, &model);
}

fn utxo_pages_resume_from_their_cursor_and_verify_against_the_header<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let store = open(b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    apply_blocks(&store, &factory, &mut model, 3, 20);
    let expected: Vec<_> = model.0.iter().map(|(k, v)| (*k, *v)).collect();
    assert!(expected.len() > 40);
    let header = store
        .block(store.tip().unwrap().height)
        .unwrap()
        .unwrap()
        .block
        .header;

    for page_size in [1, 7, 40, expected.len(), expected.len() + 1] {
        let mut check = UtxoSyncCheck::new();
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.utxo_page(cursor.as_ref(), page_size).unwrap();
            assert!(page.entries.len() <= page_size);
            check.add_page(&page).unwrap();
            got.extend(page.entries.iter().copied());
            match page.next {
                Some(next) => {
                    assert_eq!(
                        Some(next),
                        page.entries.last().map(|e| e.0),
                        "cursor = last outpoint"
                    );
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(got, expected, "page size {page_size}");
        assert_eq!(check.finish(&header).unwrap(), expected.len() as u64);
    }

    // Resuming from an arbitrary outpoint continues strictly after it.
    let middle = expected[expected.len() / 2].0;
    let rest = store.utxo_page(Some(&middle), 0).unwrap();
    assert_eq!(rest.entries.first(), expected.get(expected.len() / 2 + 1));

    // A page served twice, a dropped page, a tampered output: each is caught.
    let first = store.utxo_page(None, 10).unwrap();
    let second = store.utxo_page(first.next.as_ref(), 10_000).unwrap();
    let mut repeated = UtxoSyncCheck::new();
    repeated.add_page(&first).unwrap();
    assert!(matches!(
        repeated.add_page(&first),
        Err(StorageError::BadSyncPage { .. })
    ));
    let mut truncated = UtxoSyncCheck::new();
    truncated
        .add_page(&UtxoPage {
            next: None,
            ..first.clone()
        })
        .unwrap();
    assert!(matches!(
        truncated.finish(&header),
        Err(StorageError::CommitmentMismatch { .. })
    ));
    let mut tampered = UtxoSyncCheck::new();
    let mut bad = second.clone();
    bad.entries[0].1.amount = Amount::from_sat(bad.entries[0].1.amount.as_sat() + 1);
    tampered.add_page(&first).unwrap();
    tampered.add_page(&bad).unwrap();
    assert!(matches!(
        tampered.finish(&header),
        Err(StorageError::CommitmentMismatch { .. })
    ));
    let mut honest = UtxoSyncCheck::new();
    honest.add_page(&first).unwrap();
    honest.add_page(&second).unwrap();
    assert_eq!(honest.finish(&header).unwrap(), expected.len() as u64);
    // Pages from two tips do not mix.
    let (block, cert) = factory.next_block(&store, 2).unwrap();
    store.apply_finalized(&block, &cert).unwrap();
    let later = store.utxo_page(first.next.as_ref(), 10_000).unwrap();
    let mut mixed = UtxoSyncCheck::new();
    mixed.add_page(&first).unwrap();
    assert!(matches!(
        mixed.add_page(&later),
        Err(StorageError::BadSyncPage { .. })
    ));
}

fn host_records_land_with_their_block_and_survive_reopen<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let mut model = Model::at_genesis(factory.genesis());
    {
        let store = open(b, &factory);
        assert_eq!(store.host_record("pool").unwrap(), None);
        let (block, cert) = factory.next_block(&store, 2).unwrap();
        let records = [
            HostRecord {
                name: "pool",
                value: b"one",
            },
            HostRecord {
                name: "registry",
                value: b"sets",
            },
        ];
        store.apply_finalized_with(&block, &cert, &records).unwrap();
        model.apply(&block);
        // A later block replaces one record and leaves the other as it was.
        let (block, cert) = factory.next_block(&store, 2).unwrap();
        let pool = [HostRecord {
            name: "pool",
            value: b"two",
        }];
        store.apply_finalized_with(&block, &cert, &pool).unwrap();
        model.apply(&block);
        // A record over its bounds refuses the whole block, which is not applied.
        let (block, cert) = factory.next_block(&store, 2).unwrap();
        let long = "n".repeat(MAX_HOST_RECORD_NAME + 1);
        let bad = [HostRecord {
            name: &long,
            value: b"x",
        }];
        let refused = store.apply_finalized_with(&block, &cert, &bad);
        assert!(matches!(refused, Err(StorageError::TooLarge { .. })));
        assert_eq!(store.tip().unwrap().height, 2);
    }
    let store = open(b, &factory);
    assert_eq!(
        store.host_record("pool").unwrap(),
        Some((2, b"two".to_vec()))
    );
    assert_eq!(
        store.host_record("registry").unwrap(),
        Some((1, b"sets".to_vec()))
    );
    assert_matches_model(&store, &model);
    assert!(store.verify_integrity().is_ok());
}

fn a_reopened_store_has_the_same_chain_and_utxo_set<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let mut model = Model::at_genesis(factory.genesis());
    let (tip, state) = {
        let store = open(b, &factory);
        apply_blocks(&store, &factory, &mut model, 4, 8);
        (store.tip().unwrap(), store.utxo_state().unwrap())
    };
    // Bytes an interrupted apply left in the log past the tip's body are cut at the next open.
    let store = open(b, &factory);
    let log_end = store.engine().log_len().unwrap();
    store
        .engine()
        .append_log(b"a body whose batch never committed")
        .unwrap();
    drop(store);
    let store = open(b, &factory);
    assert_eq!(store.engine().log_len().unwrap(), log_end);
    assert_eq!(store.tip().unwrap(), tip);
    assert_eq!(store.utxo_state().unwrap(), state);
    assert_matches_model(&store, &model);
    // And it carries on from there.
    apply_blocks(&store, &factory, &mut model, 2, 8);
    drop(store);
    let store = open(b, &factory);
    assert_matches_model(&store, &model);
}

fn flipped_bytes_in_stored_values_are_reported_as_corruption<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let mut model = Model::at_genesis(factory.genesis());
    {
        let store = open(b, &factory);
        apply_blocks(&store, &factory, &mut model, 3, 4);
    }
    let flip = |engine: &dyn KvEngine, key: &[u8], at: usize| {
        let mut value = engine.get(key).unwrap().unwrap();
        let at = at.min(value.len() - 1);
        value[at] ^= 0x01;
        let mut batch = WriteBatch::new();
        batch.put(key.to_vec(), value);
        engine.commit(batch).unwrap();
    };
    let store = open(b, &factory);

    // A block's reference into the log: reading it fails loudly, as does the integrity check.
    let block_key = [&[b'b'][..], &2u64.to_be_bytes()].concat();
    flip(store.engine(), &block_key, 3);
    assert!(matches!(
        store.block(2),
        Err(StorageError::Corruption { .. })
    ));
    assert!(
        matches!(store.block_by_hash(&store.tip().unwrap().hash), Ok(Some(_))),
        "other blocks still read"
    );
    assert!(matches!(
        store.verify_integrity(),
        Err(StorageError::Corruption { .. })
    ));
    flip(store.engine(), &block_key, 3);
    store.verify_integrity().unwrap();

    // A block body in the log: whichever block holds the byte fails to read.
    let middle = store.engine().log_len().unwrap() / 2;
    b.flip_log_byte(&store, middle);
    let damaged: Vec<_> = (0..=3).filter(|h| store.block(*h).is_err()).collect();
    assert_eq!(
        damaged.len(),
        1,
        "exactly one block is damaged: {damaged:?}"
    );
    assert!(matches!(
        store.block(damaged[0]),
        Err(StorageError::Corruption { .. })
    ));
    assert!(matches!(
        store.verify_integrity(),
        Err(StorageError::Corruption { .. })
    ));
    b.flip_log_byte(&store, middle);
    store.verify_integrity().unwrap();

    // A certificate.
    let cert_key = [&[b'c'][..], &1u64.to_be_bytes()].concat();
    flip(store.engine(), &cert_key, 3);
    assert!(matches!(
        store.block(1),
        Err(StorageError::Corruption { .. })
    ));
    flip(store.engine(), &cert_key, 3);

    // An unspent output: served from the cache while open, caught when the set is read back.
    let (utxo_key, _) = store.engine().scan(b"u", b"v", 1).unwrap().remove(0);
    flip(store.engine(), &utxo_key, 0);
    assert!(matches!(
        store.verify_integrity(),
        Err(StorageError::Corruption { .. })
    ));
    assert!(matches!(
        store.utxo_page(None, 0),
        Err(StorageError::Corruption { .. })
    ));
    drop(store);
    let reopened = b.open_with(&test_config(), factory.genesis());
    assert!(
        matches!(reopened, Err(StorageError::Corruption { .. })),
        "open must refuse a damaged UTXO set"
    );
    drop(reopened);

    // With a cache too small for the set, a lookup reads the disk and reports the damage.
    let tiny = StorageConfig {
        cache_bytes: 0,
        ..test_config()
    };
    let store = b.open_with(&tiny, factory.genesis()).unwrap();
    let outpoint = all_utxos_raw_first(&store);
    assert!(matches!(
        store.utxo(&outpoint),
        Err(StorageError::Corruption { .. })
    ));
    flip(store.engine(), &utxo_key, 0);
    assert!(store.utxo(&outpoint).unwrap().is_some());

    // The tip record: the store refuses to open.
    flip(store.engine(), b"mt", 40);
    drop(store);
    assert!(matches!(
        b.open_with(&test_config(), factory.genesis()),
        Err(StorageError::Corruption { .. })
    ));
}

fn a_hash_index_entry_above_the_tip_reads_as_not_found<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    // A second store on the same chain runs one block ahead; the factory is deterministic, so both
    // build the same block 1, and the ahead store's index entry for block 2 is the one a commit of
    // block 2 would write.
    let ahead = ChainDb::memory(factory.genesis()).unwrap();
    let mut ahead_model = Model::at_genesis(factory.genesis());
    let ahead_blocks = apply_blocks(&ahead, &factory, &mut ahead_model, 2, 3);
    let next = &ahead_blocks[1];
    let index_key = [&[b'h'][..], next.hash().0.as_bytes()].concat();
    let index_value = ahead.engine().get(&index_key).unwrap().unwrap();

    let store = open(b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    let applied = apply_blocks(&store, &factory, &mut model, 1, 3);
    assert_eq!(applied[0].hash(), ahead_blocks[0].hash());
    // The entry lands in the engine as an applied but not yet durable (or crashed) commit leaves it:
    // without the block, its certificate or the tip that would make it final.
    let mut batch = WriteBatch::new();
    batch.put(index_key, index_value);
    store.engine().commit(batch).unwrap();

    assert_eq!(store.height_of(&next.hash()).unwrap(), None);
    assert_eq!(store.block_by_hash(&next.hash()).unwrap(), None);
    assert_eq!(store.height_of(&applied[0].hash()).unwrap(), Some(1));
    // Once block 2 is applied for real, the same entry is its index.
    store.apply_finalized(next, &factory.certify(next)).unwrap();
    assert_eq!(store.height_of(&next.hash()).unwrap(), Some(2));
    assert_eq!(
        store.block_by_hash(&next.hash()).unwrap().unwrap().block,
        **next
    );
    model.apply(next);
    assert_matches_model(&store, &model);
}

fn a_refused_sync_page_leaves_the_check_as_it_was_and_an_empty_page_must_end_the_set<B: Backend>(
    b: &mut B,
) {
    let factory = BlockFactory::local(4);
    let store = open(b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    apply_blocks(&store, &factory, &mut model, 2, 10);
    let tip = store.tip().unwrap();
    let header = store.block(tip.height).unwrap().unwrap().block.header;
    let first = store.utxo_page(None, 5).unwrap();
    let second = store.utxo_page(first.next.as_ref(), 5).unwrap();
    let rest = store.utxo_page(second.next.as_ref(), 0).unwrap();
    assert!(second.next.is_some() && rest.next.is_none() && !rest.entries.is_empty());

    // A lying peer's pages, each refused: a cursor that skips ahead, outputs out of order, a first page
    // claiming another tip.
    let mut skipping = second.clone();
    skipping.next = rest.entries.last().map(|(op, _)| *op);
    let mut reordered = second.clone();
    reordered.entries.swap(0, 1);
    let mut elsewhere = first.clone();
    elsewhere.tip.height += 1;
    elsewhere.entries.reverse();

    let mut check = UtxoSyncCheck::new();
    let err = check.add_page(&elsewhere).unwrap_err();
    assert!(matches!(err, StorageError::BadSyncPage { .. }), "{err}");
    // The honest pages, fetched again from another peer, are taken as if nothing had happened.
    check.add_page(&first).unwrap();
    for forged in [&skipping, &reordered] {
        let err = check.add_page(forged).unwrap_err();
        assert!(matches!(err, StorageError::BadSyncPage { .. }), "{err}");
    }
    check.add_page(&second).unwrap();

    // An empty page that names a next cursor would have the client ask again forever.
    let stalling = UtxoPage {
        tip,
        entries: Vec::new(),
        next: second.next,
    };
    let err = check.add_page(&stalling).unwrap_err();
    assert!(matches!(err, StorageError::BadSyncPage { .. }), "{err}");
    check.add_page(&rest).unwrap();
    assert_eq!(check.finish(&header).unwrap(), model.0.len() as u64);

    // An empty page that ends the set is the end of it: the empty tail of a set, or an empty set.
    let mut ends = UtxoSyncCheck::new();
    ends.add_page(&UtxoPage {
        next: None,
        ..stalling
    })
    .unwrap();
    assert!(matches!(
        ends.add_page(&first),
        Err(StorageError::BadSyncPage { .. })
    ));
}

/// An engine that dies after a number of commits: every later commit fails without writing anything,
/// as the process would if it had been killed before it.
struct DiesAfterCommits {
    inner: Arc<MemoryEngine>,
    commits_left: std::sync::atomic::AtomicU64,
}

impl KvEngine for DiesAfterCommits {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        self.commits_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| StorageError::Backend {
                reason: "the process died".into(),
            })?;
        self.inner.commit(batch)
    }
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StorageError> {
        self.inner.scan(from, to, limit)
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
    fn append_log(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        self.inner.append_log(bytes)
    }
    fn read_log(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.inner.read_log(offset, len)
    }
    fn log_len(&self) -> Result<u64, StorageError> {
        self.inner.log_len()
    }
    fn truncate_log(&self, len: u64) -> Result<(), StorageError> {
        self.inner.truncate_log(len)
    }
    fn discard_log(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        // A dead process gives nothing back either.
        if self.commits_left.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(StorageError::Backend {
                reason: "the process died".into(),
            });
        }
        self.inner.discard_log(offset, len)
    }
}

#[test]
fn replay_skips_the_tail_of_an_entry_that_a_crashed_prune_left_below_its_height() {
    let factory = BlockFactory::local(4);
    let memory = Arc::new(MemoryEngine::new());
    let engine = Arc::new(DiesAfterCommits {
        inner: Arc::clone(&memory),
        commits_left: std::sync::atomic::AtomicU64::new(u64::MAX),
    });
    let store = ChainDb::open(Arc::clone(&engine), &test_config(), factory.genesis()).unwrap();
    // Three 6 MiB proposals at height 3 are 4608 pieces: more than one prune batch (4096 pieces), so
    // the batch boundary falls inside the third.
    let proposal = |tag: u8| vec![tag; 6 * 1024 * 1024];
    for tag in 1..=3 {
        store.append_wal(3, &proposal(tag)).unwrap();
    }
    store.append_wal(7, b"kept").unwrap();
    // The process dies after the prune's first batch is durable.
    engine
        .commits_left
        .store(1, std::sync::atomic::Ordering::SeqCst);
    assert!(store.prune_below(5).is_err());
    drop(store);
    let pieces_at_3 = memory
        .scan(b"w", &[&b"w"[..], &4u64.to_be_bytes()].concat(), usize::MAX)
        .unwrap()
        .len();
    assert!(
        pieces_at_3 > 0 && pieces_at_3 < 1536,
        "{pieces_at_3} pieces of the third proposal are left"
    );

    let store = ChainDb::open(Arc::clone(&memory), &test_config(), factory.genesis()).unwrap();
    assert_eq!(store.replay(0).unwrap(), vec![b"kept".to_vec()]);
    assert_eq!(store.replay(3).unwrap(), vec![b"kept".to_vec()]);
    // Pruning again finishes the job.
    store.prune_below(5).unwrap();
    assert_eq!(memory.scan(b"w", b"x", usize::MAX).unwrap().len(), 1);
    assert_eq!(store.replay(0).unwrap(), vec![b"kept".to_vec()]);

    // Above the prune floor a missing first piece is still damage, never skipped.
    store.append_wal(8, &proposal(4)).unwrap();
    let first_piece = [
        &b"w"[..],
        &8u64.to_be_bytes(),
        &4u64.to_be_bytes(),
        &0u32.to_be_bytes(),
    ]
    .concat();
    assert!(memory.get(&first_piece).unwrap().is_some());
    let mut batch = WriteBatch::new();
    batch.delete(first_piece);
    memory.commit(batch).unwrap();
    assert!(matches!(
        store.replay(0),
        Err(StorageError::Corruption {
            what: "WAL entry",
            ..
        })
    ));
}

/// Pruning deletes old bodies, keeps every header, certificate and hash index entry, keeps the bodies
/// its rule names and the tip's, survives a reopen, and gives the space back.
fn pruning_deletes_old_bodies_and_keeps_headers_certificates_and_chosen_bodies<B: Backend>(
    b: &mut B,
) {
    let factory = BlockFactory::local(4);
    let mut model = Model::at_genesis(factory.genesis());
    let store = open(b, &factory);
    let blocks = apply_blocks(&store, &factory, &mut model, 40, 40);
    let allocated_before = b.log_allocated();
    let keep = |header: &timecoin_types::BlockHeader,
                parent: Option<&timecoin_types::BlockHeader>| {
        assert_eq!(parent.map(|p| p.height + 1), Some(header.height));
        header.height.is_multiple_of(10)
    };
    // A round is bounded: 25 bodies looked at, from the floor (0) up.
    let report = store.prune_bodies(30, 25, &keep).unwrap();
    assert_eq!(report.floor, 25);
    // Genesis and 10 and 20 kept.
    assert_eq!((report.pruned, report.kept), (22, 3));
    let report = store.prune_bodies(30, 1000, &keep).unwrap();
    assert_eq!((report.pruned, report.kept, report.floor), (5, 0, 30));
    assert_eq!(store.body_floor().unwrap(), 30);
    // Nothing left below 30: a repeat does nothing.
    assert_eq!(
        store.prune_bodies(30, 1000, &keep).unwrap().pruned,
        0,
        "a second round over the same range"
    );
    let check = |store: &ChainDb<B::Engine>| {
        for block in &blocks {
            let height = block.header.height;
            let header = store.header(height).unwrap().unwrap();
            assert_eq!(header.header.hash(), block.hash(), "header {height}");
            assert_eq!(header.certificate.unwrap().block_hash, block.hash());
            assert_eq!(store.height_of(&block.hash()).unwrap(), Some(height));
            let body = store.block(height).unwrap();
            let held = height >= 30 || height.is_multiple_of(10);
            assert_eq!(body.is_some(), held, "body {height}");
            assert_eq!(store.block_by_hash(&block.hash()).unwrap().is_some(), held);
        }
        assert!(store.block(0).unwrap().is_some());
        assert!(store.header(0).unwrap().unwrap().certificate.is_none());
        assert_matches_model(store, &model);
    };
    check(&store);
    if let (Some(before), Some(after)) = (allocated_before, b.log_allocated()) {
        // 27 bodies of 40 transactions are over 200 KiB; whole file-system blocks inside them are freed.
        assert!(
            after + 150 * 1024 < before,
            "log occupies {after} bytes after pruning, {before} before"
        );
    }
    drop(store);
    let store = open(b, &factory);
    assert_eq!(store.body_floor().unwrap(), 30);
    check(&store);
    // The tip's body is never pruned, whatever the caller asks.
    let tip = store.tip().unwrap().height;
    let report = store.prune_bodies(u64::MAX, 1000, &|_, _| false).unwrap();
    assert_eq!(report.floor, tip);
    assert!(store.block(tip).unwrap().is_some());
    assert!(store.block(tip - 1).unwrap().is_none());
    // And the chain goes on from there.
    apply_blocks(&store, &factory, &mut model, 2, 5);
    assert_matches_model(&store, &model);
}

/// Whether an error is the refusal a case expects.
type Refusal = fn(&StorageError) -> bool;

/// Every record and the block log's length: what "the store is exactly as it was" compares.
fn raw_contents<E: KvEngine>(store: &ChainDb<E>) -> (Vec<KvPair>, u64) {
    let records = store.engine().scan(&[], &[0xff; 8], usize::MAX).unwrap();
    (records, store.engine().log_len().unwrap())
}

fn a_block_whose_utxo_changes_do_not_add_up_is_refused_and_the_store_is_untouched<B: Backend>(
    b: &mut B,
) {
    let factory = BlockFactory::local(4);
    let genesis_coins = factory.genesis().utxos();
    let mut model = Model::at_genesis(factory.genesis());
    let store = open(b, &factory);
    // Transactions without inputs: no valid chain has one, but storage does not run the rules, and
    // these are the ones whose repetition spends nothing twice.
    let mint = |out: TxOut| Transaction {
        version: timecoin_types::TX_VERSION,
        inputs: Vec::new(),
        outputs: vec![out],
        kind: TxKind::Transfer,
    };
    // Block 1 pays genesis coin 0 into two outputs and mints one; all three stay unspent.
    let paid = factory.transfer(&genesis_coins[..1], 2).unwrap();
    let minted_before = mint(paid.outputs[0]);
    let (block, cert) = factory
        .seal_block(&store, vec![paid.clone(), minted_before.clone()])
        .unwrap();
    store.apply_finalized(&block, &cert).unwrap();
    model.apply(&block);

    // A spends genesis coin 1; B and C are two different spends of A's first output.
    let a = factory.transfer(&genesis_coins[1..2], 2).unwrap();
    let a_first = (
        OutPoint {
            txid: a.txid(),
            vout: 0,
        },
        a.outputs[0],
    );
    let b_tx = factory.transfer(&[a_first], 1).unwrap();
    let c_tx = factory.transfer(&[a_first], 2).unwrap();
    let minted = mint(a.outputs[1]);
    let mut lying = factory
        .seal_block(&store, vec![a.clone(), b_tx.clone()])
        .unwrap()
        .0
        .into_block();
    lying.header.utxo_commitment = Hash::from_bytes([9; 32]);

    let before = raw_contents(&store);
    let tip = store.tip().unwrap();
    let cases: Vec<(&str, Block, Refusal)> = vec![
        (
            "[A, B, B]: one transaction twice spends A's output twice",
            factory
                .unsealed_block(&store, vec![a.clone(), b_tx.clone(), b_tx.clone()])
                .unwrap(),
            |e| matches!(e, StorageError::DoubleSpendInBlock { .. }),
        ),
        (
            "[A, M, M]: one transaction twice, without inputs",
            factory
                .unsealed_block(&store, vec![a.clone(), minted.clone(), minted])
                .unwrap(),
            |e| matches!(e, StorageError::DuplicateTxInBlock { .. }),
        ),
        (
            "[A, B, C]: B and C both spend the output A created",
            factory
                .unsealed_block(&store, vec![a.clone(), b_tx.clone(), c_tx])
                .unwrap(),
            |e| matches!(e, StorageError::DoubleSpendInBlock { .. }),
        ),
        (
            "block 1's transfer again, its outputs still unspent",
            factory.unsealed_block(&store, vec![paid]).unwrap(),
            |e| matches!(e, StorageError::OutputExists { .. }),
        ),
        (
            "block 1's minted output minted again",
            factory.unsealed_block(&store, vec![minted_before]).unwrap(),
            |e| matches!(e, StorageError::OutputExists { .. }),
        ),
        (
            "an input the set does not hold",
            factory.unsealed_block(&store, vec![b_tx.clone()]).unwrap(),
            |e| matches!(e, StorageError::MissingInput { .. }),
        ),
        ("a header committing to another set", lying, |e| {
            matches!(e, StorageError::CommitmentMismatch { .. })
        }),
    ];
    for (case, block, expected) in cases {
        let block = block.seal();
        if !case.starts_with("a header") {
            // The leader asking for the commitment gets the same refusal as the apply.
            let err = store.utxo_commitment_after(&block).unwrap_err();
            assert!(expected(&err), "{case}: utxo_commitment_after said {err}");
        }
        let err = store
            .apply_finalized(&block, &factory.certify(&block))
            .unwrap_err();
        assert!(expected(&err), "{case}: refused with {err}");
        assert_eq!(raw_contents(&store), before, "{case}: the store changed");
        assert_eq!(store.tip().unwrap(), tip, "{case}");
    }
    store.verify_integrity().unwrap();
    drop(store);

    // Still openable, still whole, and the honest block applies.
    let store = open(b, &factory);
    assert_eq!(store.tip().unwrap(), tip);
    assert_matches_model(&store, &model);
    let (block, cert) = factory.seal_block(&store, vec![a, b_tx]).unwrap();
    store.apply_finalized(&block, &cert).unwrap();
    model.apply(&block);
    assert_matches_model(&store, &model);
}

/// The outpoint of the first UTXO record, decoded from its key (`u` ‖ txid ‖ vout BE).
fn all_utxos_raw_first<E: KvEngine>(store: &ChainDb<E>) -> OutPoint {
    let (key, _) = store.engine().scan(b"u", b"v", 1).unwrap().remove(0);
    OutPoint {
        txid: TxId(Hash::from_bytes(key[1..33].try_into().unwrap())),
        vout: u32::from_be_bytes(key[33..37].try_into().unwrap()),
    }
}

fn consensus_wal_replays_in_order_prunes_below_and_survives_reopen<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    {
        let store = open(b, &factory);
        assert_eq!(store.last_signed().unwrap(), None);
        assert!(store.replay(0).unwrap().is_empty());
        store.save_signed(b"h=5 v=0 prepare").unwrap();
        store.save_signed(b"h=5 v=1 commit").unwrap();
        for (h, msg) in [(5u64, "5a"), (6, "6a"), (5, "5b"), (7, "7a"), (6, "6b")] {
            store.append_wal(h, msg.as_bytes()).unwrap();
        }
        // A proposal-sized entry is stored in pieces and comes back whole, in its place.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        store.append_wal(4, &big).unwrap();
        assert_eq!(store.replay(4).unwrap()[0], big);
        store.prune_below(5).unwrap();
        let all: Vec<Vec<u8>> = ["5a", "5b", "6a", "6b", "7a"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(store.replay(0).unwrap(), all);
        assert_eq!(store.replay(6).unwrap(), all[2..].to_vec());
    }
    let store = open(b, &factory);
    assert_eq!(
        store.last_signed().unwrap().as_deref(),
        Some(&b"h=5 v=1 commit"[..])
    );
    store.prune_below(6).unwrap();
    assert_eq!(
        store.replay(0).unwrap(),
        vec![b"6a".to_vec(), b"6b".to_vec(), b"7a".to_vec()]
    );
    // Appends after a reopen stay after the entries already logged for the same height.
    store.append_wal(6, b"6c").unwrap();
    assert_eq!(
        store.replay(6).unwrap(),
        vec![
            b"6a".to_vec(),
            b"6b".to_vec(),
            b"6c".to_vec(),
            b"7a".to_vec()
        ]
    );
    store.prune_below(u64::MAX).unwrap();
    assert!(store.replay(0).unwrap().is_empty());
    assert!(matches!(
        store.save_signed(&vec![0; timecoin_storage::MAX_SIGNED_STATE_BYTES + 1]),
        Err(StorageError::TooLarge { .. })
    ));
}

fn wal_refuses_entries_past_its_bound<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let config = StorageConfig {
        wal_max_entries: 3,
        wal_max_bytes: 100,
        ..test_config()
    };
    let store = b.open_with(&config, factory.genesis()).unwrap();
    for i in 0..3u8 {
        store.append_wal(1, &[i; 10]).unwrap();
    }
    assert!(matches!(
        store.append_wal(2, b"x"),
        Err(StorageError::WalFull { .. })
    ));
    store.prune_below(2).unwrap();
    store.append_wal(2, &[7; 100]).unwrap();
    assert!(
        matches!(store.append_wal(2, b"y"), Err(StorageError::WalFull { .. })),
        "byte bound"
    );
    assert_eq!(store.replay(0).unwrap(), vec![vec![7; 100]]);
}

fn a_cache_smaller_than_the_set_still_answers_every_read<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    // Room for 8 outputs: the set quickly outgrows it.
    let config = StorageConfig {
        cache_bytes: 8 * 2 * timecoin_storage::UTXO_CACHE_ENTRY_BYTES,
        ..test_config()
    };
    let mut model = Model::at_genesis(factory.genesis());
    {
        let store = b.open_with(&config, factory.genesis()).unwrap();
        apply_blocks(&store, &factory, &mut model, 4, 10);
        assert_eq!(store.cache_usage(), (8, 8));
        assert_matches_model(&store, &model);
        assert_eq!(store.utxo(&missing_outpoint(3)).unwrap(), None);
    }
    let store = b.open_with(&config, factory.genesis()).unwrap();
    assert_eq!(store.cache_usage(), (8, 8));
    assert_matches_model(&store, &model);
}

fn a_store_refuses_another_chains_genesis<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    drop(open(b, &factory));
    let other = Genesis::local(5);
    assert!(matches!(
        b.open_with(&test_config(), &other),
        Err(StorageError::GenesisMismatch { .. })
    ));
    // A store whose tip record is gone is not re-initialised over its remaining records.
    let store = open(b, &factory);
    let mut batch = WriteBatch::new();
    batch.delete(b"mt".to_vec());
    store.engine().commit(batch).unwrap();
    drop(store);
    assert!(matches!(
        b.open_with(&test_config(), factory.genesis()),
        Err(StorageError::Corruption { .. })
    ));
}

fn async_handle_applies_and_reads_on_the_blocking_pool<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let store = Arc::new(open(b, &factory));
    let handle = AsyncChainStore::new(Arc::clone(&store));
    let (block, cert) = factory.next_block(&*store, 2).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        handle
            .apply_finalized(Arc::new(block.clone()), cert)
            .await
            .unwrap();
        assert_eq!(handle.tip().await.unwrap().hash, block.hash());
        assert_eq!(handle.block(1).await.unwrap().unwrap().block, *block);
        assert_eq!(handle.base_height().await.unwrap(), 0);
        let page = handle.utxo_page(None, 0).await.unwrap();
        assert_eq!(page.tip.height, 1);
        handle.append_wal(2, b"vote".to_vec()).await.unwrap();
        assert_eq!(handle.replay(2).await.unwrap(), vec![b"vote".to_vec()]);
    });
    // Outside a runtime the handle reports an error instead of panicking.
    let outside = poll_without_runtime(handle.tip());
    assert!(matches!(outside, Err(StorageError::TaskFailed { .. })));
}

/// Polls a future to completion on this thread, which has no tokio runtime.
fn poll_without_runtime<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// sled 0.34 puts log items over ~128 KiB (large values, or tree nodes holding several large values) in
/// blob files that it never fsyncs; block bodies go to the store's own fsynced log and WAL entries are
/// split into small pieces, so nothing lands there.
#[test]
fn large_values_stay_out_of_sleds_unsynced_blob_files() {
    let factory = BlockFactory::local(4);
    let mut b = Sled::new();
    let store = open(&mut b, &factory);
    let mut model = Model::at_genesis(factory.genesis());
    let blocks = apply_blocks(&store, &factory, &mut model, 4, 600);
    let encoded = timecoin_types::codec::encoded_len(&blocks[1]);
    assert!(
        encoded > 192 * 1024,
        "the block must be over sled's blob threshold, is {encoded} bytes"
    );
    let proposal: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    store.append_wal(5, &proposal).unwrap();
    let blobs = b.dir.path().join("blobs");
    let files = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "sled wrote {files} blob files");
    drop(store);
    let store = open(&mut b, &factory);
    assert_eq!(store.block(2).unwrap().unwrap().block, *blocks[1]);
    assert_eq!(store.replay(0).unwrap(), vec![proposal]);
    assert_matches_model(&store, &model);
}

// ---------------------------------------------------------------------------------------------------
// Snapshot import
// ---------------------------------------------------------------------------------------------------

/// A chain of `blocks` blocks of 20 transactions on the memory engine (a peer that serves its UTXO set),
/// and its tip as the base of a snapshot.
fn source_chain(factory: &BlockFactory, blocks: usize) -> (ChainDb<MemoryEngine>, CertifiedBase) {
    let source = ChainDb::memory(factory.genesis()).unwrap();
    let mut model = Model::at_genesis(factory.genesis());
    apply_blocks(&source, factory, &mut model, blocks, 20);
    let base = certified_tip(&source);
    (source, base)
}

fn certified_tip(store: &impl BlockStore) -> CertifiedBase {
    let tip = store.tip().unwrap();
    let stored = store.block(tip.height).unwrap().unwrap();
    CertifiedBase {
        block: WellFormedBlock::try_from(stored.block).unwrap(),
        certificate: stored.certificate.unwrap(),
    }
}

/// Every page of `source`'s set, `size` outputs each.
fn all_pages(source: &impl ChainStore, size: usize) -> Vec<UtxoPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = source.utxo_page(cursor.as_ref(), size).unwrap();
        cursor = page.next;
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

/// Imports the rest of `source`'s set, from the import's cursor on.
fn import_rest<E: KvEngine>(import: &mut SnapshotImport<E>, source: &impl ChainStore, size: usize) {
    while !import.is_complete() {
        let page = source.utxo_page(import.cursor().as_ref(), size).unwrap();
        import.add_page(&page).unwrap();
    }
}

/// The same tip, UTXO set, count and multiset hash, and a store whose own records agree.
fn assert_same_state<E: KvEngine>(store: &ChainDb<E>, source: &impl ChainStore) {
    assert_eq!(store.utxo_state().unwrap(), source.utxo_state().unwrap());
    assert_eq!(all_utxos(store, 0), all_utxos(source, 0));
    let report = store.verify_integrity().unwrap();
    assert_eq!(report.utxos, source.utxo_state().unwrap().count);
    assert_eq!(report.tip, source.tip().unwrap());
}

fn a_snapshot_imported_page_by_page_becomes_a_chain_that_takes_the_next_blocks<B: Backend>(
    b: &mut B,
) {
    let factory = BlockFactory::local(4);
    let (source, base) = source_chain(&factory, 4);
    let h = base.block.header.height;
    let (engine, config) = b.engine();
    let mut import = ChainDb::import_snapshot(engine, &config, factory.genesis(), &base).unwrap();
    assert_eq!(import.base(), source.tip().unwrap());
    assert_eq!(import.cursor(), None);
    let mut pages = 0;
    while !import.is_complete() {
        let page = source.utxo_page(import.cursor().as_ref(), 7).unwrap();
        import.add_page(&page).unwrap();
        assert_eq!(import.cursor(), page.entries.last().map(|(op, _)| *op));
        pages += 1;
    }
    assert!(pages > 5, "{pages} pages");
    assert_eq!(import.count(), source.utxo_state().unwrap().count);
    // The host's own state at the base lands with the chain.
    let store = import
        .finish_with(&[HostRecord {
            name: "host/state",
            value: b"at the base",
        }])
        .unwrap();

    assert_same_state(&store, &source);
    assert_eq!(
        store.host_record("host/state").unwrap(),
        Some((h, b"at the base".to_vec()))
    );
    assert_eq!(store.base_height().unwrap(), h);
    assert_eq!(source.base_height().unwrap(), 0);
    assert_eq!(store.block(h).unwrap(), source.block(h).unwrap());
    for below in [0, 1, h - 1] {
        assert_eq!(store.block(below).unwrap(), None, "block {below}");
    }
    assert_eq!(store.block_by_hash(&source.genesis_hash()).unwrap(), None);
    assert_eq!(store.height_of(&base.block.hash()).unwrap(), Some(h));
    assert_eq!(store.verify_integrity().unwrap().blocks, 1);

    // Block sync carries on from the base: the next blocks of the source apply on top.
    for _ in 0..3 {
        let (block, cert) = factory.next_block(&source, 15).unwrap();
        source.apply_finalized(&block, &cert).unwrap();
        store.apply_finalized(&block, &cert).unwrap();
    }
    assert_same_state(&store, &source);
    assert_eq!(store.verify_integrity().unwrap().blocks, 4);

    drop(store);
    let store = open(b, &factory);
    assert_eq!(store.base_height().unwrap(), h);
    assert_same_state(&store, &source);
    for height in h..=h + 3 {
        assert_eq!(store.block(height).unwrap(), source.block(height).unwrap());
    }
    assert_eq!(store.block(h - 1).unwrap(), None);
}

fn forged_snapshot_pages_are_refused_and_the_honest_set_is_then_accepted<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let (source, base) = source_chain(&factory, 3);
    let genesis = factory.genesis();
    let honest = all_pages(&source, 10);
    assert!(honest.len() > 4);
    let (engine, config) = b.engine();
    let mut import = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap();
    import.add_page(&honest[0]).unwrap();

    // Pages that break a rule are refused at once and change nothing.
    let second = &honest[1];
    let mut reordered = second.clone();
    reordered.entries.swap(0, 1);
    let mut skipping = second.clone();
    skipping.next = honest[2].next;
    let mut elsewhere = second.clone();
    elsewhere.tip.height -= 1;
    let oversized = UtxoPage {
        entries: (0..=MAX_UTXO_PAGE as u32)
            .map(|vout| {
                let op = OutPoint {
                    txid: TxId(Hash::from_bytes([0xfe; 32])),
                    vout,
                };
                (op, second.entries[0].1)
            })
            .collect(),
        next: None,
        tip: second.tip,
    };
    for forged in [&honest[0], &reordered, &skipping, &elsewhere, &oversized] {
        let err = import.add_page(forged).unwrap_err();
        assert!(matches!(err, StorageError::BadSyncPage { .. }), "{err}");
        assert_eq!(import.cursor(), honest[0].next);
        assert_eq!(import.count(), 10);
    }
    // The honest copy, fetched again from another peer, is taken.
    import.add_page(second).unwrap();
    // Finishing before the last page is refused, and the import comes back to carry on with.
    let refused = import.finish().unwrap_err();
    assert!(
        matches!(refused.error, StorageError::BadSyncPage { .. }),
        "{}",
        refused.error
    );
    let mut import = refused.import;
    assert_eq!(import.cursor(), second.next);
    for page in &honest[2..] {
        import.add_page(page).unwrap();
    }
    let engine = import.discard().unwrap();
    drop(engine);

    // Pages whose outputs were altered keep every rule a page can be checked by alone (the multiset
    // hash covers only the whole set): `finish` refuses them, and the store is no chain.
    type Forgery = fn(&mut Vec<UtxoPage>);
    let forgeries: [(&str, Forgery); 3] = [
        ("an output changed", |pages| {
            let out = &mut pages[2].entries[3].1;
            out.amount = Amount::from_sat(out.amount.as_sat() + 1);
        }),
        ("an output dropped", |pages| {
            pages[2].entries.remove(3);
        }),
        ("the set cut short", |pages| {
            pages.truncate(3);
            pages[2].next = None;
        }),
    ];
    for (what, forge) in forgeries {
        let mut pages = honest.clone();
        forge(&mut pages);
        let (engine, config) = b.engine();
        let mut import = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap();
        for page in &pages {
            import.add_page(page).unwrap();
        }
        assert!(import.is_complete(), "{what}");
        let refused = import.finish().unwrap_err();
        assert!(
            matches!(refused.error, StorageError::CommitmentMismatch { .. }),
            "{what}: {}",
            refused.error
        );
        drop(refused.import.into_engine());
        let err = b.open_with(&test_config(), genesis).unwrap_err();
        assert!(
            matches!(err, StorageError::ImportIncomplete { .. }),
            "{what}: {err}"
        );
        let (engine, config) = b.engine();
        let import = ChainDb::resume_import(engine, &config, genesis).unwrap();
        let refused = import.finish().unwrap_err();
        assert!(
            matches!(refused.error, StorageError::CommitmentMismatch { .. }),
            "{what} after reopening: {}",
            refused.error
        );
        drop(refused.import.discard().unwrap());
    }

    // The honest set, from scratch on the discarded store.
    let (engine, config) = b.engine();
    let mut import = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap();
    for page in &honest {
        import.add_page(page).unwrap();
    }
    let store = import.finish().unwrap();
    assert_same_state(&store, &source);
}

fn an_interrupted_import_is_no_chain_and_resumes_at_its_cursor<B: Backend>(b: &mut B) {
    let factory = BlockFactory::local(4);
    let genesis = factory.genesis();
    let (source, base) = source_chain(&factory, 3);
    let h = base.block.header.height;

    // Bases a store cannot be built on.
    let other_block = CertifiedBase {
        certificate: CommitCertificate {
            block_hash: BlockHash(Hash::from_bytes([9; 32])),
            ..base.certificate.clone()
        },
        ..base.clone()
    };
    let (engine, config) = b.engine();
    let err = ChainDb::import_snapshot(engine, &config, genesis, &other_block).unwrap_err();
    assert!(
        matches!(err, StorageError::CertificateMismatch { .. }),
        "{err}"
    );
    let at_genesis = CertifiedBase {
        block: genesis.block(),
        certificate: factory.certify(&genesis.block()),
    };
    let (engine, config) = b.engine();
    let err = ChainDb::import_snapshot(engine, &config, genesis, &at_genesis).unwrap_err();
    assert!(matches!(err, StorageError::BadImportBase { .. }), "{err}");

    let (engine, config) = b.engine();
    let mut import = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap();
    for _ in 0..3 {
        let page = source.utxo_page(import.cursor().as_ref(), 10).unwrap();
        import.add_page(&page).unwrap();
    }
    let (cursor, count) = (import.cursor(), import.count());
    assert_eq!(count, 30);
    drop(import);

    // Reopened, the half-imported store is not taken for a chain, nor for a fresh store.
    match b.open_with(&test_config(), genesis) {
        Err(StorageError::ImportIncomplete {
            base_height,
            cursor: at,
        }) => assert_eq!((base_height, at), (h, cursor)),
        other => panic!("expected ImportIncomplete, got {other:?}"),
    }
    let (engine, config) = b.engine();
    let err = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap_err();
    assert!(matches!(err, StorageError::NotAFreshStore { .. }), "{err}");

    let (engine, config) = b.engine();
    let mut import = ChainDb::resume_import(engine, &config, genesis).unwrap();
    assert_eq!(
        (import.base(), import.cursor(), import.count()),
        (source.tip().unwrap(), cursor, count)
    );
    import_rest(&mut import, &source, 10);
    let store = import.finish().unwrap();
    assert_same_state(&store, &source);

    drop(store);
    let store = open(b, &factory);
    assert_same_state(&store, &source);
    assert_eq!(store.base_height().unwrap(), h);
    drop(store);
    let (engine, config) = b.engine();
    let err = ChainDb::resume_import(engine, &config, genesis).unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    let (engine, config) = b.engine();
    let err = ChainDb::import_snapshot(engine, &config, genesis, &base).unwrap_err();
    assert!(matches!(err, StorageError::NotAFreshStore { .. }), "{err}");
}

/// Every commit an import makes, in turn, is the one the process dies before: reopened, the store is an
/// unfinished import that resumes and finishes into the source's state, or the finished chain, or (dead
/// before the first commit) empty. Never a chain with part of the set.
#[test]
fn an_import_killed_before_any_of_its_commits_reopens_unfinished_or_complete() {
    let factory = BlockFactory::local(4);
    let genesis = factory.genesis();
    let (source, base) = source_chain(&factory, 2);
    let pages = all_pages(&source, 10);
    let commits = pages.len() as u64 + 2;
    let (mut unfinished, mut complete) = (0, 0);
    for dies_after in 0..=commits {
        let memory = Arc::new(MemoryEngine::new());
        let engine = DiesAfterCommits {
            inner: Arc::clone(&memory),
            commits_left: std::sync::atomic::AtomicU64::new(dies_after),
        };
        let run = || -> Result<(), StorageError> {
            let mut import = ChainDb::import_snapshot(engine, &test_config(), genesis, &base)?;
            for page in &pages {
                import.add_page(page)?;
            }
            import.finish()?;
            Ok(())
        };
        let finished = run().is_ok();
        assert_eq!(finished, dies_after == commits, "dies after {dies_after}");
        match ChainDb::resume_import(Arc::clone(&memory), &test_config(), genesis) {
            Ok(mut import) => {
                unfinished += 1;
                let done = dies_after.saturating_sub(1).min(pages.len() as u64) as usize;
                let written: u64 = pages[..done].iter().map(|p| p.entries.len() as u64).sum();
                assert_eq!(import.count(), written, "dies after {dies_after}");
                import_rest(&mut import, &source, 10);
                assert_same_state(&import.finish().unwrap(), &source);
            }
            Err(StorageError::NotFound { .. }) if dies_after == 0 => {
                assert!(memory.scan(&[], &[0xff; 8], 1).unwrap().is_empty());
            }
            Err(StorageError::NotFound { .. }) => {
                complete += 1;
                let store = ChainDb::open(Arc::clone(&memory), &test_config(), genesis).unwrap();
                assert_same_state(&store, &source);
            }
            Err(e) => panic!("dies after {dies_after}: {e}"),
        }
    }
    assert_eq!((unfinished, complete), (commits as usize - 1, 1));
}

/// A discard killed part-way is finished by whoever opens the engine next, never read as a set.
#[test]
fn a_discard_killed_part_way_is_finished_by_the_next_open() {
    let factory = BlockFactory::local(4);
    let genesis = factory.genesis();
    let (source, base) = source_chain(&factory, 2);
    for dies_after in 0..3u64 {
        let memory = Arc::new(MemoryEngine::new());
        let mut import =
            ChainDb::import_snapshot(Arc::clone(&memory), &test_config(), genesis, &base).unwrap();
        import_rest(&mut import, &source, 10);
        drop(import);
        let engine = DiesAfterCommits {
            inner: Arc::clone(&memory),
            commits_left: std::sync::atomic::AtomicU64::new(dies_after),
        };
        let import = ChainDb::resume_import(engine, &test_config(), genesis).unwrap();
        assert!(import.discard().is_err(), "dies after {dies_after}");
        match ChainDb::open(Arc::clone(&memory), &test_config(), genesis) {
            // Died before the discard was marked: the import is intact.
            Err(StorageError::ImportIncomplete { .. }) if dies_after == 0 => {}
            Ok(store) => {
                assert!(dies_after > 0);
                assert_eq!(store.tip().unwrap().height, 0);
                assert_eq!(store.base_height().unwrap(), 0);
                assert_matches_model(&store, &Model::at_genesis(genesis));
            }
            other => panic!("dies after {dies_after}: {other:?}"),
        }
    }
}

/// A prune killed before its batch commits changes nothing; one killed after it, before the bytes are
/// given back, is finished by the next open: references, headers and floor are as the batch left them,
/// and the bytes are gone.
#[test]
fn a_prune_killed_around_its_commit_is_all_or_nothing_and_the_next_open_finishes_it() {
    let factory = BlockFactory::local(4);
    for dies_after in 0..2u64 {
        let memory = Arc::new(MemoryEngine::new());
        let mut model = Model::at_genesis(factory.genesis());
        let store = ChainDb::open(Arc::clone(&memory), &test_config(), factory.genesis()).unwrap();
        let blocks = apply_blocks(&store, &factory, &mut model, 12, 10);
        drop(store);
        let engine = DiesAfterCommits {
            inner: Arc::clone(&memory),
            commits_left: std::sync::atomic::AtomicU64::new(dies_after),
        };
        let store = ChainDb::open(engine, &test_config(), factory.genesis()).unwrap();
        let first_body = store.engine().inner.read_log(0, 1).unwrap();
        assert!(store.prune_bodies(10, 100, &|_, _| false).is_err());
        drop(store);
        let pending = memory.get(b"mq").unwrap().is_some();
        assert_eq!(pending, dies_after == 1, "dies after {dies_after}");
        let store = ChainDb::open(Arc::clone(&memory), &test_config(), factory.genesis()).unwrap();
        assert!(memory.get(b"mq").unwrap().is_none(), "the open finished it");
        let floor = if dies_after == 0 { 0 } else { 10 };
        assert_eq!(store.body_floor().unwrap(), floor);
        for block in &blocks {
            let height = block.header.height;
            assert_eq!(
                store.block(height).unwrap().is_some(),
                height >= floor,
                "dies after {dies_after}: body {height}"
            );
            assert_eq!(store.header(height).unwrap().unwrap().header, block.header);
        }
        // Genesis's body is the first in the log and is never pruned.
        assert_eq!(memory.read_log(0, 1).unwrap(), first_body);
        assert_matches_model(&store, &model);
    }
}

macro_rules! backend_suite {
    ($backend:ident, $new:expr) => {
        mod $backend {
            use super::*;
            #[test]
            fn a_snapshot_imported_page_by_page_becomes_a_chain_that_takes_the_next_blocks() {
                super::a_snapshot_imported_page_by_page_becomes_a_chain_that_takes_the_next_blocks(&mut $new);
            }
            #[test]
            fn forged_snapshot_pages_are_refused_and_the_honest_set_is_then_accepted() {
                super::forged_snapshot_pages_are_refused_and_the_honest_set_is_then_accepted(&mut $new);
            }
            #[test]
            fn an_interrupted_import_is_no_chain_and_resumes_at_its_cursor() {
                super::an_interrupted_import_is_no_chain_and_resumes_at_its_cursor(&mut $new);
            }
            #[test]
            fn genesis_store_holds_block_zero_its_outputs_and_commitment() {
                super::genesis_store_holds_block_zero_its_outputs_and_commitment(&mut $new);
            }
            #[test]
            fn applied_blocks_move_the_tip_spend_inputs_and_add_outputs() {
                super::applied_blocks_move_the_tip_spend_inputs_and_add_outputs(&mut $new);
            }
            #[test]
            fn blocks_that_do_not_extend_the_tip_are_refused_without_change() {
                super::blocks_that_do_not_extend_the_tip_are_refused_without_change(&mut $new);
            }
            #[test]
            fn a_block_whose_utxo_changes_do_not_add_up_is_refused_and_the_store_is_untouched() {
                super::a_block_whose_utxo_changes_do_not_add_up_is_refused_and_the_store_is_untouched(&mut $new);
            }
            #[test]
            fn a_hash_index_entry_above_the_tip_reads_as_not_found() {
                super::a_hash_index_entry_above_the_tip_reads_as_not_found(&mut $new);
            }
            #[test]
            fn a_refused_sync_page_leaves_the_check_as_it_was_and_an_empty_page_must_end_the_set() {
                super::a_refused_sync_page_leaves_the_check_as_it_was_and_an_empty_page_must_end_the_set(&mut $new);
            }
            #[test]
            fn utxo_pages_resume_from_their_cursor_and_verify_against_the_header() {
                super::utxo_pages_resume_from_their_cursor_and_verify_against_the_header(&mut $new);
            }
            #[test]
            fn a_reopened_store_has_the_same_chain_and_utxo_set() {
                super::a_reopened_store_has_the_same_chain_and_utxo_set(&mut $new);
            }
            #[test]
            fn flipped_bytes_in_stored_values_are_reported_as_corruption() {
                super::flipped_bytes_in_stored_values_are_reported_as_corruption(&mut $new);
            }
            #[test]
            fn consensus_wal_replays_in_order_prunes_below_and_survives_reopen() {
                super::consensus_wal_replays_in_order_prunes_below_and_survives_reopen(&mut $new);
            }
            #[test]
            fn wal_refuses_entries_past_its_bound() {
                super::wal_refuses_entries_past_its_bound(&mut $new);
            }
            #[test]
            fn a_cache_smaller_than_the_set_still_answers_every_read() {
                super::a_cache_smaller_than_the_set_still_answers_every_read(&mut $new);
            }
            #[test]
            fn host_records_land_with_their_block_and_survive_reopen() {
                super::host_records_land_with_their_block_and_survive_reopen(&mut $new);
            }
            #[test]
            fn a_store_refuses_another_chains_genesis() {
                super::a_store_refuses_another_chains_genesis(&mut $new);
            }
            #[test]
            fn pruning_deletes_old_bodies_and_keeps_headers_certificates_and_chosen_bodies() {
                super::pruning_deletes_old_bodies_and_keeps_headers_certificates_and_chosen_bodies(&mut $new);
            }
            #[test]
            fn async_handle_applies_and_reads_on_the_blocking_pool() {
                super::async_handle_applies_and_reads_on_the_blocking_pool(&mut $new);
            }
        }
    };
}

backend_suite!(memory, Memory::new());
backend_suite!(sled, Sled::new());

/// A host decides between opening a chain and state-syncing from what the engine holds, read without
/// changing it.
#[test]
fn store_contents_tell_an_empty_engine_a_chain_and_an_unfinished_import_apart() {
    let factory = BlockFactory::local(4);
    let (source, base) = source_chain(&factory, 4);
    let config = StorageConfig::memory();
    let engine = MemoryEngine::new();
    assert_eq!(StoreContents::of(&engine).unwrap(), StoreContents::Empty);
    let mut import = ChainDb::import_snapshot(engine, &config, factory.genesis(), &base).unwrap();
    import
        .add_page(&source.utxo_page(None, 7).unwrap())
        .unwrap();
    let engine = import.into_engine();
    assert_eq!(
        StoreContents::of(&engine).unwrap(),
        StoreContents::UnfinishedImport
    );
    let engine = ChainDb::resume_import(engine, &config, factory.genesis())
        .unwrap()
        .discard()
        .unwrap();
    assert_eq!(StoreContents::of(&engine).unwrap(), StoreContents::Empty);
    let db = ChainDb::open(engine, &config, factory.genesis()).unwrap();
    assert_eq!(
        StoreContents::of(db.engine()).unwrap(),
        StoreContents::Chain
    );
}
