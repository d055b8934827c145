//! Benchmarks of `timecoin-mempool`: inserting signed two-input, two-output transactions (one thread, two
//! threads, one parallel batch) and building a block template from a full pool. Run with
//! `cargo bench -p timecoin-benches --bench mempool`; figures are recorded in docs/BENCHMARKS.md.
//!
//! Every benchmark reports `Throughput::Elements` in transactions, so criterion prints transactions per
//! second. Each transaction spends two coins of its own key (distinct keys across transactions), so every
//! insert verifies two signatures, as a node does for a typical payment with change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use timecoin_crypto::{Address, HashDomain, Network, SecretKey, hash};
use timecoin_mempool::{Config, Mempool, TxPool};
use timecoin_types::{Amount, ChainParams, OutPoint, Transaction, TxBuilder, TxId, TxOut};

/// Transactions inserted per measured iteration: large enough that thread start-up is noise, small
/// enough to stay under the default 10,000-transaction limit (no eviction in the insert benchmarks).
const CHUNK: usize = 2_000;
/// The pool size the template benchmark is asked for.
const FULL_POOL: usize = 10_000;

/// A UTXO set funding `n` keys with two coins each, and one signed 2-in/2-out spend per key.
struct Fixture {
    params: ChainParams,
    utxos: HashMap<OutPoint, TxOut>,
    txs: Vec<Transaction>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let params = ChainParams::for_network(Network::Local);
        let mut utxos = HashMap::with_capacity(2 * n);
        let mut txs = Vec::with_capacity(n);
        let coin = Amount::from_sat(50 * 100_000_000);
        for i in 0..n {
            let mut seed = [0x3cu8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = SecretKey::from_seed(&seed);
            let owner = Address::from_public_key(&key.public_key());
            let funding = TxId(hash(HashDomain::Custom("mempool bench funding"), &seed));
            let coins = [0u32, 1].map(|vout| OutPoint {
                txid: funding,
                vout,
            });
            for c in coins {
                utxos.insert(
                    c,
                    TxOut {
                        amount: coin,
                        address: owner,
                    },
                );
            }
            // Varied fees, so the template has a real ranking to do.
            let fee = 1_000 + (i as u64 * 7_919) % 50_000;
            let payee = Address::from_public_key(&SecretKey::from_seed(&[0x77; 32]).public_key());
            let paid = Amount::from_sat(30 * 100_000_000);
            let change = Amount::from_sat(2 * coin.as_sat() - paid.as_sat() - fee);
            txs.push(
                TxBuilder::new(params.chain_id)
                    .input(coins[0], coin, &key)
                    .input(coins[1], coin, &key)
                    .output(payee, paid)
                    .output(owner, change)
                    .sign(),
            );
        }
        Fixture { params, utxos, txs }
    }

    fn pool(&self) -> TxPool<&HashMap<OutPoint, TxOut>> {
        TxPool::new(Config::default(), self.params.clone(), &self.utxos)
    }
}

fn inserts(c: &mut Criterion, fixture: &Fixture) {
    let chunk = &fixture.txs[..CHUNK];
    let mut g = c.benchmark_group("mempool_insert_2in2out");
    g.throughput(Throughput::Elements(CHUNK as u64));

    g.bench_function(BenchmarkId::new("one_thread", CHUNK), |b| {
        b.iter_batched(
            || (fixture.pool(), chunk.to_vec()),
            |(pool, txs)| {
                for tx in txs {
                    pool.insert(tx).unwrap();
                }
                pool
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function(BenchmarkId::new("two_threads", CHUNK), |b| {
        b.iter_batched(
            || {
                let (a, b) = chunk.split_at(CHUNK / 2);
                (fixture.pool(), a.to_vec(), b.to_vec())
            },
            |(pool, a, b)| {
                std::thread::scope(|s| {
                    for half in [a, b] {
                        let pool = &pool;
                        s.spawn(move || {
                            for tx in half {
                                pool.insert(tx).unwrap();
                            }
                        });
                    }
                });
                pool
            },
            BatchSize::PerIteration,
        )
    });

    // One call: parallel screening, one 4,000-signature batch split over the rayon pool (2 threads).
    g.bench_function(BenchmarkId::new("batch", CHUNK), |b| {
        b.iter_batched(
            || (fixture.pool(), chunk.to_vec()),
            |(pool, txs)| {
                let results = pool.insert_batch(txs);
                assert!(results.iter().all(Result::is_ok));
                pool
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn template(c: &mut Criterion, fixture: &Fixture) {
    let pool = fixture.pool();
    let results = pool.insert_batch(fixture.txs[..FULL_POOL].to_vec());
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(pool.len(), FULL_POOL);
    let block = fixture.params.block_limit();
    // All 10,000 fit in a 4 MiB block; a 1 MB block forces the selection to stop early and skip.
    assert_eq!(pool.template(block).len(), FULL_POOL);

    let mut g = c.benchmark_group("mempool_template");
    g.throughput(Throughput::Elements(FULL_POOL as u64));
    for (name, max_bytes) in [("4MiB_block", block), ("1MB_block", 1_000_000)] {
        g.bench_with_input(
            BenchmarkId::new(format!("{FULL_POOL}_pooled"), name),
            &max_bytes,
            |b, max_bytes| b.iter(|| pool.template(black_box(*max_bytes))),
        );
    }
    g.finish();
}

/// Runs the mempool benchmarks over one shared fixture. Each insert iteration takes tens of milliseconds;
/// 10 samples of 5 s give intervals of a few percent.
fn main() {
    let mut c = timecoin_benches::config(10, 2, 5).configure_from_args();
    let fixture = Fixture::new(FULL_POOL);
    inserts(&mut c, &fixture);
    template(&mut c, &fixture);
    c.final_summary();
}
