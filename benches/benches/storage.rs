//! Benchmarks of `timecoin-storage`: UTXO lookups (cache hit, a miss the complete cache answers, a read
//! that goes to sled), applying a block of 1000 two-in/two-out transactions (in memory, and on sled with
//! the flush that makes it durable), and validating (the shared block rules, signatures in one batch, the
//! header's UTXO commitment) plus applying it. Run with `cargo bench -p timecoin-benches --bench storage`; figures are recorded in
//! docs/BENCHMARKS.md.
//!
//! Block benchmarks report `Throughput::Elements(1000)`, so criterion prints transactions per second.
//! Each iteration builds and signs a fresh block on the store's tip outside the timed section, then times
//! only the store's work on it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use timecoin_crypto::{BatchItem, SigDomain, verify_batch_parallel};
use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{ChainDb, ChainStore, KvEngine, MemoryEngine, SledEngine, StorageConfig};
use timecoin_types::{
    ChainParams, OutPoint, TxId, UtxoView, WellFormedBlock, check_block, check_tx_context,
    signature_messages,
};

const TXS: usize = 1000;
const VALIDATORS: usize = 4;

fn sled_store(
    dir: &std::path::Path,
    config: &StorageConfig,
    factory: &BlockFactory,
) -> ChainDb<SledEngine> {
    let config = StorageConfig {
        backend: timecoin_storage::BackendKind::Sled { path: dir.into() },
        ..config.clone()
    };
    ChainDb::open(
        SledEngine::open(dir, &config).unwrap(),
        &config,
        factory.genesis(),
    )
    .unwrap()
}

/// Splits the genesis coins so the set holds the 2000 outputs a block of 1000 two-in/two-out
/// transactions spends; every later block spends 2000 and creates 2000.
fn prime<E: KvEngine>(store: &ChainDb<E>, factory: &BlockFactory) {
    let (block, cert) = factory.next_block(store, TXS).unwrap();
    store.apply_finalized(&block, &cert).unwrap();
}

fn utxo_lookups(c: &mut Criterion) {
    let factory = BlockFactory::local(VALIDATORS);
    let mut group = c.benchmark_group("utxo_lookup");
    group.throughput(Throughput::Elements(1));

    let memory = ChainDb::memory(factory.genesis()).unwrap();
    prime(&memory, &factory);
    let unspent: Vec<OutPoint> = memory
        .utxo_page(None, 0)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.0)
        .collect();
    let mut i = 0;
    group.bench_function("cache_hit", |b| {
        b.iter(|| {
            i = (i + 1) % unspent.len();
            black_box(memory.utxo(&unspent[i]).unwrap())
        })
    });
    let absent = OutPoint {
        txid: TxId(timecoin_crypto::Hash::from_bytes([0xee; 32])),
        vout: 0,
    };
    group.bench_function("complete_cache_miss", |b| {
        b.iter(|| black_box(memory.utxo(&absent).unwrap()))
    });

    // A cache of zero entries sends every lookup to sled (its own page cache still holds the pages).
    let dir = tempfile::tempdir().unwrap();
    let no_cache = StorageConfig {
        cache_bytes: 0,
        ..StorageConfig::default()
    };
    let disk = sled_store(dir.path(), &no_cache, &factory);
    prime(&disk, &factory);
    let unspent: Vec<OutPoint> = disk
        .utxo_page(None, 0)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(disk.cache_usage().0, 0);
    group.bench_function("sled_read", |b| {
        b.iter(|| {
            i = (i + 1) % unspent.len();
            black_box(disk.utxo(&unspent[i]).unwrap())
        })
    });
    group.finish();
}

/// `block` without its transactions: asking the store for its commitment replaces the store's memo of
/// `block`'s (untimed), so the timed apply does the lookups and hashing itself.
fn empty_like(block: &WellFormedBlock) -> WellFormedBlock {
    let mut empty = block.clone().into_block();
    empty.transactions.clear();
    empty.seal()
}

/// Times `work` on a fresh block per iteration; building and signing the block is not timed.
fn per_block<E: KvEngine>(
    store: &ChainDb<E>,
    factory: &BlockFactory,
    iters: u64,
    mut work: impl FnMut(&ChainDb<E>, &WellFormedBlock, &timecoin_types::CommitCertificate),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (block, cert) = factory.next_block(store, TXS).unwrap();
        assert_eq!(block.transactions.len(), TXS);
        let start = Instant::now();
        work(store, &block, &cert);
        total += start.elapsed();
    }
    total
}

fn block_apply(c: &mut Criterion) {
    let factory = BlockFactory::local(VALIDATORS);
    let params = factory.genesis().params.clone();
    let mut group = c.benchmark_group("block_apply_1000x2in2out");
    group.throughput(Throughput::Elements(TXS as u64));

    let memory = ChainDb::open(
        MemoryEngine::new(),
        &StorageConfig::memory(),
        factory.genesis(),
    )
    .unwrap();
    prime(&memory, &factory);
    group.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            per_block(&memory, &factory, iters, |s, block, cert| {
                s.apply_finalized(block, cert).unwrap()
            })
        })
    });

    // Each sled benchmark gets a fresh store, so none runs on a database grown by the ones before it.
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        let store = sled_store(dir.path(), &StorageConfig::default(), &factory);
        prime(&store, &factory);
        (dir, store)
    };
    let (_dir, sled) = fresh();
    // The factory computes each block's commitment with `utxo_commitment_after`, as a validator must
    // before voting, so the store reuses that work when the block is applied.
    group.bench_function("sled_flushed", |b| {
        b.iter_custom(|iters| {
            per_block(&sled, &factory, iters, |s, block, cert| {
                s.apply_finalized(block, cert).unwrap()
            })
        })
    });
    // The same with that memo dropped first (untimed): spent outputs looked up and the multiset hash
    // updated inside the apply.
    let (_dir, sled) = fresh();
    group.bench_function("sled_flushed_cold", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (block, cert) = factory.next_block(&sled, TXS).unwrap();
                sled.utxo_commitment_after(&empty_like(&block)).unwrap();
                let start = Instant::now();
                sled.apply_finalized(&block, &cert).unwrap();
                total += start.elapsed();
            }
            total
        })
    });

    // What a node does with a block from proposal to durable: the shared block rules against the store
    // (inputs, owners, fees, every signature in one batch), the header's UTXO commitment, then the
    // durable apply.
    let (_dir, sled) = fresh();
    group.bench_function("sled_validate_and_apply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (block, cert) = factory.next_block(&sled, TXS).unwrap();
                sled.utxo_commitment_after(&empty_like(&block)).unwrap();
                let start = Instant::now();
                check_block(&block, &sled.view(), &params).unwrap();
                assert_eq!(
                    sled.utxo_commitment_after(&block).unwrap(),
                    block.header.utxo_commitment
                );
                sled.apply_finalized(&block, &cert).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    // The same, with the block's signatures verified as two half-batches on two threads
    // (`verify_batch_parallel`) instead of `check_block`'s one batch on one thread. Composed from the
    // public rules; valid for these blocks because none spends an output created in the same block.
    let (_dir, sled) = fresh();
    group.bench_function("sled_validate_parallel_signatures_and_apply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (block, cert) = factory.next_block(&sled, TXS).unwrap();
                sled.utxo_commitment_after(&empty_like(&block)).unwrap();
                let start = Instant::now();
                validate_with_parallel_signatures(&block, &sled.view(), &params);
                assert_eq!(
                    sled.utxo_commitment_after(&block).unwrap(),
                    block.header.utxo_commitment
                );
                sled.apply_finalized(&block, &cert).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// Every rule of `check_block` for a block without in-block spends, with the signature batch split
/// across rayon's pool. As for `check_block`, the body's binding to the header was checked when the
/// `WellFormedBlock` was made.
fn validate_with_parallel_signatures(
    block: &WellFormedBlock,
    view: &impl UtxoView,
    params: &ChainParams,
) {
    let mut spent = Vec::with_capacity(block.transactions.len());
    let mut seen = std::collections::HashSet::new();
    for tx in &block.transactions {
        assert!(
            tx.inputs.iter().all(|i| seen.insert(i.prevout)),
            "conflict in block"
        );
        spent.push(check_tx_context(tx, view, params).unwrap().spent);
    }
    let messages: Vec<_> = block
        .transactions
        .iter()
        .zip(&spent)
        .map(|(tx, s)| signature_messages(tx, s))
        .collect();
    let items: Vec<BatchItem<'_>> = block
        .transactions
        .iter()
        .zip(&messages)
        .flat_map(|(tx, msgs)| {
            tx.inputs.iter().zip(msgs).map(|(input, msg)| BatchItem {
                key: &input.public_key,
                domain: SigDomain::TxInput,
                chain: params.chain_id,
                message: msg,
                signature: &input.signature,
            })
        })
        .collect();
    verify_batch_parallel(&items, 64).unwrap();
}

timecoin_benches::bench_main!(timecoin_benches::config(10, 1, 5); utxo_lookups, block_apply);
