//! Many threads at once: conflicting inserts never both get in, and inserts racing evictions,
//! replacements, templates and finalized blocks leave the pool consistent.
//!
//! `MEMPOOL_STRESS_SEEDS` sets how many seeds the stress test runs (default 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Chain, SharedView};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use timecoin_mempool::{Config, Mempool, MempoolError, TxPool};
use timecoin_types::{OutPoint, Transaction, TxId, check_tx};

const THREADS: usize = 4;

/// Everything that must hold once the threads are done.
fn assert_consistent(pool: &TxPool<SharedView>, chain: &Chain) {
    let config = pool.config();
    let entries = pool.entries();
    assert_eq!(pool.len(), entries.len(), "count matches the map");
    assert_eq!(
        pool.bytes(),
        entries.iter().map(|e| e.size()).sum::<usize>(),
        "bytes match the map"
    );
    assert!(pool.len() <= config.max_transactions);
    assert!(pool.bytes() <= config.max_bytes);
    let mut owners: HashMap<OutPoint, TxId> = HashMap::new();
    for e in &entries {
        for claim in e.claims() {
            assert!(
                owners.insert(*claim, e.txid()).is_none(),
                "two pooled transactions spend {claim}"
            );
        }
        check_tx(e.tx(), &chain.view, &chain.params)
            .unwrap_or_else(|err| panic!("pooled {} is invalid: {err}", e.txid()));
    }
    assert_eq!(
        pool.lock_count(),
        owners.len(),
        "a lock outlived its transaction"
    );
    for (op, owner) in &owners {
        assert_eq!(pool.lock_owner(op), Some(*owner));
    }
}

#[test]
fn conflicting_inserts_racing_on_four_threads_never_both_get_in() {
    const ROUNDS: usize = 150;
    let chain = Chain::new(ROUNDS);
    // Equal fees: none can replace another (a replacement must add its own size in fees), so exactly
    // one per coin may win.
    let rivals: Vec<Vec<Transaction>> = (0..ROUNDS)
        .map(|coin| {
            (1..=THREADS)
                .map(|outputs| chain.pay(&[coin], 5_000, outputs))
                .collect()
        })
        .collect();
    let (pool, _) = chain.pool(Config::default());
    let barrier = Barrier::new(THREADS);
    let winners: Vec<Vec<Option<TxId>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, barrier, rivals) = (&pool, &barrier, &rivals);
                s.spawn(move || {
                    rivals
                        .iter()
                        .map(|round| {
                            barrier.wait();
                            match pool.insert(round[t].clone()) {
                                Ok(id) => Some(id),
                                Err(
                                    MempoolError::DoubleSpend { .. }
                                    | MempoolError::ReplacementFeeRateTooLow { .. }
                                    | MempoolError::ReplacementFeeTooLow { .. },
                                ) => None,
                                Err(other) => panic!("unexpected rejection: {other}"),
                            }
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for round in 0..ROUNDS {
        let won: Vec<TxId> = winners.iter().filter_map(|w| w[round]).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} inserts succeeded",
            won.len()
        );
        assert_eq!(pool.lock_owner(&chain.coins[round].outpoint), Some(won[0]));
    }
    assert_eq!(pool.len(), ROUNDS);
    assert_consistent(&pool, &chain);
}

#[test]
fn racing_fee_bumps_leave_exactly_one_spend_per_coin() {
    const ROUNDS: usize = 100;
    let chain = Chain::new(ROUNDS);
    // Each thread's fee is ten times the previous one's: any of them may replace the cheaper ones,
    // depending on who gets there first.
    let rivals: Vec<Vec<Transaction>> = (0..ROUNDS)
        .map(|coin| {
            (0..THREADS)
                .map(|t| chain.pay(&[coin], 1_000 * 10u64.pow(t as u32), 1))
                .collect()
        })
        .collect();
    let (pool, _) = chain.pool(Config::default());
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, barrier, rivals) = (&pool, &barrier, &rivals);
            s.spawn(move || {
                for round in rivals {
                    barrier.wait();
                    let _ = pool.insert(round[t].clone());
                }
            });
        }
    });
    for (coin, round) in rivals.iter().enumerate() {
        let pooled: Vec<&Transaction> = round.iter().filter(|t| pool.contains(&t.txid())).collect();
        assert_eq!(pooled.len(), 1, "coin {coin}");
        assert_eq!(
            pool.lock_owner(&chain.coins[coin].outpoint),
            Some(pooled[0].txid())
        );
    }
    assert_consistent(&pool, &chain);
}

/// Inserters (single and batched) race a block producer that takes templates and finalizes them, in a
/// pool small enough that eviction never stops.
fn stress(seed: u64) {
    eprintln!("stress seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    const COINS: usize = 300;
    let chain = Chain::new(COINS);
    let mut universe: Vec<Transaction> = Vec::new();
    for coin in 0..COINS {
        for _ in 0..2 {
            let fee = rng.gen_range(1_000..50_000);
            let outputs = rng.gen_range(1..4);
            universe.push(chain.pay(&[coin], fee, outputs));
        }
    }
    for _ in 0..150 {
        let a = rng.gen_range(0..COINS);
        let b = (a + rng.gen_range(1..COINS)) % COINS;
        universe.push(chain.pay(&[a, b], rng.gen_range(2_000..200_000), 1));
    }
    universe.shuffle(&mut rng);
    let config = Config {
        max_transactions: 25,
        max_bytes: 25 * 200,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config);
    let inserting = AtomicBool::new(true);
    let shares: Vec<Vec<Transaction>> = (0..3)
        .map(|t| universe.iter().skip(t).step_by(3).cloned().collect())
        .collect();
    let mut producer_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    std::thread::scope(|s| {
        let inserters: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(t, share)| {
                let pool = &pool;
                s.spawn(move || {
                    if t == 0 {
                        for chunk in share.chunks(7) {
                            let _ = pool.insert_batch(chunk.to_vec());
                        }
                    } else {
                        for tx in share {
                            let _ = pool.insert(tx.clone());
                        }
                    }
                })
            })
            .collect();
        let (pool, chain, inserting, universe) = (&pool, &chain, &inserting, &universe);
        let producer = s.spawn(move || {
            let mut height = 0u64;
            while inserting.load(Ordering::Acquire) {
                let max_bytes = producer_rng.gen_range(200..2_000);
                let mut txs: Vec<Transaction> = pool
                    .template(max_bytes)
                    .iter()
                    .map(|t| (**t).clone())
                    .collect();
                // Every third block also carries transactions the pool never saw (another node's),
                // which may conflict with pooled ones.
                if height.is_multiple_of(3) {
                    for _ in 0..3 {
                        let tx = universe.choose(&mut producer_rng).unwrap();
                        let spent: Vec<OutPoint> = txs
                            .iter()
                            .flat_map(|t| t.inputs.iter().map(|i| i.prevout))
                            .collect();
                        let fresh = tx.inputs.iter().all(|i| !spent.contains(&i.prevout));
                        if fresh && !pool.contains(&tx.txid()) {
                            txs.push(tx.clone());
                        }
                    }
                }
                height += 1;
                // Only this thread changes the view, so every transaction is still valid here.
                for tx in &txs {
                    if check_tx(tx, &chain.view, &chain.params).is_err() {
                        assert!(
                            !pool
                                .template(usize::MAX)
                                .iter()
                                .any(|t| t.txid() == tx.txid()),
                            "template offered an invalid transaction"
                        );
                    }
                }
                txs.retain(|tx| check_tx(tx, &chain.view, &chain.params).is_ok());
                chain.finalize(pool, &chain.block(height, txs));
                std::thread::yield_now();
            }
        });
        for h in inserters {
            h.join().unwrap();
        }
        inserting.store(false, Ordering::Release);
        producer.join().unwrap();
    });
    assert_consistent(&pool, &chain);
    let stats = pool.stats();
    eprintln!("{stats:?}");
    assert!(stats.accepted > 0 && stats.evicted > 0, "{stats:?}");
}

#[test]
fn inserts_evictions_replacements_and_finalization_racing_keep_the_pool_consistent() {
    let seeds: u64 = std::env::var("MEMPOOL_STRESS_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        stress(seed);
    }
}
