//! The pool's policy, one scenario at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{Chain, SharedView, mangled};
use timecoin_mempool::{
    Config, FeeRate, Mempool, MempoolError, TxPool, insert_async, insert_batch_async,
    template_async,
};
use timecoin_types::{
    Amount, MasternodeRegistration, OutPoint, Tier, Transaction, TxBuilder, TxId, TxKind,
    TypesError, check_tx,
};

fn ids(txs: &[Arc<Transaction>]) -> Vec<TxId> {
    txs.iter().map(|t| t.txid()).collect()
}

#[test]
fn a_valid_payment_is_pooled_locks_its_inputs_and_is_offered_in_a_template() {
    let chain = Chain::new(2);
    let (pool, _) = chain.pool(Config::default());
    let tx = chain.pay(&[0], 1_000, 2);
    let txid = pool.insert(tx.clone()).unwrap();
    assert_eq!(txid, tx.txid());
    assert!(pool.contains(&txid));
    assert_eq!(pool.get(&txid).as_deref(), Some(&tx));
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.bytes(), tx.encoded_len());
    assert_eq!(pool.lock_owner(&chain.coins[0].outpoint), Some(txid));
    assert_eq!(pool.lock_count(), 1);
    assert_eq!(ids(&pool.template(chain.params.block_limit())), vec![txid]);
    assert_eq!(pool.insert(tx), Err(MempoolError::AlreadyPooled { txid }));
    let stats = pool.stats();
    assert_eq!((stats.accepted, stats.rejected_duplicate), (1, 1));
}

#[test]
fn a_double_spend_paying_the_same_is_rejected_and_changes_nothing() {
    let chain = Chain::new(1);
    let (pool, _) = chain.pool(Config::default());
    let first = pool.insert(chain.pay(&[0], 1_000, 1)).unwrap();
    let rival = chain.pay(&[0], 1_000, 2);
    let err = pool.insert(rival).unwrap_err();
    assert!(
        matches!(err, MempoolError::ReplacementFeeRateTooLow { pooled, .. } if pooled == first),
        "{err}"
    );
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.lock_owner(&chain.coins[0].outpoint), Some(first));
    assert!(
        !err.is_remembered(),
        "a conflict is about the moment, not the bytes"
    );
}

#[test]
fn a_replacement_paying_the_replaced_fees_plus_its_relay_takes_over_the_locks() {
    let chain = Chain::new(1);
    let (pool, _) = chain.pool(Config::default());
    let original = chain.pay(&[0], 1_000, 2);
    let first = pool.insert(original).unwrap();

    let bump = chain.pay(&[0], 1_000 + 1, 2);
    let size = bump.encoded_len() as u64;
    assert_eq!(
        pool.insert(bump),
        Err(MempoolError::ReplacementFeeTooLow {
            txid: chain.pay(&[0], 1_001, 2).txid(),
            fee: Amount::from_sat(1_001),
            required: Amount::from_sat(1_000 + size),
            replaced: 1,
        })
    );

    let enough = chain.pay(&[0], 1_000 + size, 2);
    assert_eq!(enough.encoded_len() as u64, size);
    let second = pool.insert(enough).unwrap();
    assert!(!pool.contains(&first));
    assert!(pool.contains(&second));
    assert_eq!(pool.lock_owner(&chain.coins[0].outpoint), Some(second));
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.stats().replaced, 1);
}

#[test]
fn a_replacement_paying_more_in_total_but_less_per_byte_is_rejected() {
    let chain = Chain::new(1);
    let (pool, _) = chain.pool(Config::default());
    // Small and dear: one output at 100,000 sat.
    let small = pool.insert(chain.pay(&[0], 100_000, 1)).unwrap();
    // Forty outputs paying twice the fee: more in total, far less per byte.
    let big = chain.pay(&[0], 200_000, 40);
    let err = pool.insert(big).unwrap_err();
    match err {
        MempoolError::ReplacementFeeRateTooLow {
            pooled,
            fee_rate,
            pooled_fee_rate,
            ..
        } => {
            assert_eq!(pooled, small);
            assert!(fee_rate < pooled_fee_rate);
        }
        other => panic!("expected a fee-rate rejection, got {other}"),
    }
    assert!(pool.contains(&small));
}

#[test]
fn replacing_several_conflicts_must_pay_all_their_fees() {
    let chain = Chain::new(2);
    let (pool, _) = chain.pool(Config::default());
    // Two big, cheap-per-byte transactions, replaced by one small spend of both coins.
    let a = pool.insert(chain.pay(&[0], 5_000, 30)).unwrap();
    let b = pool.insert(chain.pay(&[1], 7_000, 30)).unwrap();
    let both = chain.pay(&[0, 1], 10_000, 1);
    let size = both.encoded_len() as u64;
    let err = pool.insert(both).unwrap_err();
    assert!(
        matches!(err, MempoolError::ReplacementFeeTooLow { required, replaced: 2, .. }
            if required == Amount::from_sat(12_000 + size)),
        "{err}"
    );
    let c = pool.insert(chain.pay(&[0, 1], 12_000 + size, 1)).unwrap();
    assert!(!pool.contains(&a) && !pool.contains(&b) && pool.contains(&c));
    assert_eq!(pool.lock_count(), 2);
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_conflict_with_more_transactions_than_a_replacement_may_evict_is_refused() {
    let chain = Chain::new(2);
    let config = Config {
        max_replacements: 1,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config);
    pool.insert(chain.pay(&[0], 1_000, 1)).unwrap();
    pool.insert(chain.pay(&[1], 1_000, 1)).unwrap();
    assert!(matches!(
        pool.insert(chain.pay(&[0, 1], 1_000_000, 1)),
        Err(MempoolError::TooManyReplacements {
            conflicts: 2,
            max: 1,
            ..
        })
    ));
    assert_eq!(pool.len(), 2);
}

#[test]
fn a_full_pool_evicts_its_cheapest_for_a_better_payer_and_frees_the_evictees_coins() {
    let chain = Chain::new(4);
    let config = Config {
        max_transactions: 3,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config);
    let cheap = pool.insert(chain.pay(&[0], 1_000, 1)).unwrap();
    let mid = pool.insert(chain.pay(&[1], 2_000, 1)).unwrap();
    let dear = pool.insert(chain.pay(&[2], 3_000, 1)).unwrap();
    let better = pool.insert(chain.pay(&[3], 1_500, 1)).unwrap();
    assert_eq!(pool.len(), 3);
    assert!(!pool.contains(&cheap));
    assert!(pool.contains(&mid) && pool.contains(&dear) && pool.contains(&better));
    assert_eq!(pool.lock_owner(&chain.coins[0].outpoint), None);
    assert_eq!(pool.stats().evicted, 1);
    // The evictee's coin is free again: a higher-paying spend of it gets in (evicting the next cheapest).
    let again = pool.insert(chain.pay(&[0], 2_500, 1)).unwrap();
    assert!(pool.contains(&again) && !pool.contains(&better));
}

#[test]
fn a_full_pool_rejects_a_payer_no_better_than_its_cheapest_with_the_numbers() {
    let chain = Chain::new(3);
    let config = Config {
        max_transactions: 2,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config);
    let a = chain.pay(&[0], 2_000, 1);
    let size = a.encoded_len();
    pool.insert(a).unwrap();
    pool.insert(chain.pay(&[1], 3_000, 1)).unwrap();
    let same_rate = chain.pay(&[2], 2_000, 1);
    let txid = same_rate.txid();
    let err = pool.insert(same_rate).unwrap_err();
    assert_eq!(
        err,
        MempoolError::PoolFull {
            txid,
            fee_rate: FeeRate::new(Amount::from_sat(2_000), size),
            lowest_fee_rate: Some(FeeRate::new(Amount::from_sat(2_000), size)),
            transactions: 2,
            max_transactions: 2,
            bytes: 2 * size as u64,
            max_bytes: Config::default().max_bytes as u64,
        }
    );
    assert!(
        err.to_string().contains("pool full (2/2 transactions"),
        "{err}"
    );
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.stats().evicted, 0);
}

#[test]
fn the_byte_limit_evicts_several_small_transactions_for_one_large_one() {
    let chain = Chain::new(4);
    let small: Vec<Transaction> = (0..3).map(|i| chain.pay(&[i], 1_000, 1)).collect();
    let small_size = small[0].encoded_len();
    let large = chain.pay(&[3], 1_000_000, 20);
    let config = Config {
        max_bytes: 3 * small_size + large.encoded_len() / 2,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config.clone());
    for tx in &small {
        pool.insert(tx.clone()).unwrap();
    }
    let big = pool.insert(large).unwrap();
    assert!(pool.contains(&big));
    assert!(pool.bytes() <= config.max_bytes);
    // It needed more than half its size freed, so at least two of the three small ones went.
    assert!(pool.len() <= 2, "{}", pool.len());
    assert!(pool.stats().evicted >= 2);
}

#[test]
fn a_transaction_larger_than_the_whole_pool_is_refused_without_evicting_anything() {
    let chain = Chain::new(2);
    let small = chain.pay(&[0], 1_000, 1);
    let config = Config {
        max_bytes: small.encoded_len() * 2,
        ..Config::default()
    };
    let (pool, _) = chain.pool(config);
    pool.insert(small).unwrap();
    let huge = chain.pay(&[1], 10_000_000, 30);
    assert!(matches!(
        pool.insert(huge),
        Err(MempoolError::PoolFull { .. })
    ));
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_bad_signature_is_remembered_by_its_bytes_so_the_real_transaction_still_gets_in() {
    let chain = Chain::new(1);
    let (pool, clock) = chain.pool(Config::default());
    let good = chain.pay(&[0], 1_000, 1);
    let bad = mangled(&good);
    assert_eq!(bad.txid(), good.txid(), "the txid ignores signatures");

    let err = pool.insert(bad.clone()).unwrap_err();
    assert!(
        matches!(
            &err,
            MempoolError::Invalid {
                source: TypesError::BadSignature { index: 0, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_remembered());
    assert!(matches!(
        pool.insert(bad.clone()),
        Err(MempoolError::RecentlyRejected {
            reason: TypesError::BadSignature { .. },
            ..
        })
    ));
    assert_eq!(pool.stats().rejected_recently, 1);

    // A front-runner's mangled copy does not censor the real one.
    pool.insert(good.clone()).unwrap();
    assert!(pool.holds_verified(&good));
    assert!(
        !pool.holds_verified(&bad),
        "same txid, other bytes: not verified"
    );

    // After the TTL the mangled bytes are checked again (and fail on the conflict now).
    clock.advance(Duration::from_secs(3600));
    assert!(!matches!(
        pool.insert(bad),
        Err(MempoolError::RecentlyRejected { .. })
    ));
}

#[test]
fn a_stateless_failure_is_remembered_until_the_ttl_passes() {
    let chain = Chain::new(1);
    let (pool, clock) = chain.pool(Config::default());
    let c = &chain.coins[0];
    let dust = TxBuilder::new(chain.params.chain_id)
        .input(c.outpoint, c.amount, &chain.keys[0])
        .output(chain.address(0), Amount::from_sat(999))
        .sign();
    assert!(matches!(
        pool.insert(dust.clone()),
        Err(MempoolError::Invalid {
            source: TypesError::DustOutput { .. },
            ..
        })
    ));
    clock.advance(Duration::from_secs(3599));
    assert!(matches!(
        pool.insert(dust.clone()),
        Err(MempoolError::RecentlyRejected { .. })
    ));
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        pool.insert(dust),
        Err(MempoolError::Invalid { .. })
    ));
    assert_eq!(pool.stats().rejected_invalid, 2);
}

#[test]
fn spending_an_unconfirmed_output_is_a_missing_input_that_is_not_remembered() {
    let chain = Chain::new(1);
    let (pool, _) = chain.pool(Config::default());
    let parent = chain.pay(&[0], 1_000, 2);
    pool.insert(parent.clone()).unwrap();
    let outputs = chain.outputs_of(&parent, 0);
    let child = chain.spend(&[&outputs[0]], 1_000, 1);
    let err = pool.insert(child.clone()).unwrap_err();
    assert!(
        matches!(
            &err,
            MempoolError::Invalid {
                source: TypesError::MissingInput { index: 0, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_remembered());

    // Once the parent is final, the child is valid and is accepted (it was not cached).
    let block = chain.block(1, vec![parent]);
    chain.finalize(&pool, &block);
    assert!(pool.is_empty());
    pool.insert(child).unwrap();
}

#[test]
fn a_template_takes_the_highest_fee_rates_that_fit_ties_broken_by_txid() {
    let chain = Chain::new(6);
    let (pool, _) = chain.pool(Config::default());
    let fees = [5_000u64, 1_000, 9_000, 3_000, 3_000, 7_000];
    let txs: Vec<Transaction> = fees
        .iter()
        .enumerate()
        .map(|(i, fee)| chain.pay(&[i], *fee, 1))
        .collect();
    let size = txs[0].encoded_len();
    assert!(txs.iter().all(|t| t.encoded_len() == size));
    for tx in &txs {
        pool.insert(tx.clone()).unwrap();
    }
    let (tie_a, tie_b) = if txs[3].txid() < txs[4].txid() {
        (txs[3].txid(), txs[4].txid())
    } else {
        (txs[4].txid(), txs[3].txid())
    };
    let all = ids(&pool.template(usize::MAX));
    assert_eq!(
        all,
        vec![
            txs[2].txid(),
            txs[5].txid(),
            txs[0].txid(),
            tie_a,
            tie_b,
            txs[1].txid()
        ]
    );
    // Four fit; the fourth is the tie winner by txid.
    let four = ids(&pool.template(4 * size + size / 2));
    assert_eq!(four, all[..4].to_vec());
    assert_eq!(ids(&pool.template(size - 1)), vec![]);
    // The same pool gives the same template every time.
    assert_eq!(ids(&pool.template(usize::MAX)), all);
}

#[test]
fn a_template_skips_a_big_transaction_that_does_not_fit_but_takes_smaller_ones_after_it() {
    let chain = Chain::new(2);
    let (pool, _) = chain.pool(Config::default());
    let big = chain.pay(&[0], 1_000_000, 30);
    let small = chain.pay(&[1], 1_000, 1);
    pool.insert(big.clone()).unwrap();
    pool.insert(small.clone()).unwrap();
    assert_eq!(
        ids(&pool.template(big.encoded_len() - 1)),
        vec![small.txid()]
    );
}

#[test]
fn a_template_skips_transactions_whose_inputs_left_the_view() {
    let chain = Chain::new(2);
    let (pool, _) = chain.pool(Config::default());
    let a = pool.insert(chain.pay(&[0], 1_000, 1)).unwrap();
    let b = pool.insert(chain.pay(&[1], 2_000, 1)).unwrap();
    // Storage spent coin 1 but the pool has not heard yet.
    chain.view.remove(&chain.coins[1].outpoint);
    assert_eq!(ids(&pool.template(usize::MAX)), vec![a]);
    assert!(pool.contains(&b));
}

#[test]
fn a_finalized_block_drops_what_it_included_and_what_now_conflicts_and_releases_their_locks() {
    let chain = Chain::new(4);
    let (pool, _) = chain.pool(Config::default());
    let included = chain.pay(&[0], 1_000, 1);
    pool.insert(included.clone()).unwrap();
    // Pooled here: spends coins 1 and 2. Elsewhere another spend of coin 1 was finalized.
    let loser = pool.insert(chain.pay(&[1, 2], 1_000, 1)).unwrap();
    let winner_elsewhere = chain.pay(&[1], 500, 2);
    let bystander = pool.insert(chain.pay(&[3], 1_000, 1)).unwrap();

    let block = chain.block(1, vec![included.clone(), winner_elsewhere]);
    chain.finalize(&pool, &block);

    assert!(!pool.contains(&included.txid()));
    assert!(!pool.contains(&loser));
    assert!(pool.contains(&bystander));
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.lock_count(), 1);
    assert_eq!(pool.lock_owner(&chain.coins[2].outpoint), None);
    let stats = pool.stats();
    assert_eq!(
        (stats.finalized_included, stats.finalized_conflicting),
        (1, 1)
    );
    // Coin 2 is unspent and unlocked again.
    pool.insert(chain.pay(&[2], 1_000, 1)).unwrap();
}

#[test]
fn a_masternode_registration_locks_its_collateral_until_a_block_spends_it() {
    // The collateral must belong to an input's key: split one 3,000 TIME coin into two of key 0.
    let chain = Chain::with_amount(1, Amount::from_time(3_000).unwrap());
    let funding = chain.pay(&[0], 1_000, 2);
    let block = chain.block(1, vec![funding.clone()]);
    chain.view.apply(&block);
    let coins = chain.outputs_of(&funding, 0);
    let (pool, _) = chain.pool(Config::default());

    let c = &coins[0];
    let reg = TxBuilder::new(chain.params.chain_id)
        .input(c.outpoint, c.amount, &chain.keys[0])
        .output(
            chain.address(0),
            Amount::from_sat(c.amount.as_sat() - 10_000),
        )
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Bronze,
            collateral: Some(coins[1].outpoint),
            operator_key: chain.keys[0].public_key(),
        }))
        .sign();
    assert!(check_tx(&reg, &chain.view, &chain.params).is_ok());
    let reg_id = pool.insert(reg).unwrap();
    assert_eq!(pool.lock_owner(&coins[1].outpoint), Some(reg_id));
    assert_eq!(pool.entry(&reg_id).unwrap().claims().len(), 2);

    // Spending the collateral conflicts with the pending registration.
    let spend_collateral = chain.spend(&[&coins[1]], 1_000, 1);
    assert!(matches!(
        pool.insert(spend_collateral.clone()),
        Err(MempoolError::ReplacementFeeRateTooLow { .. }
            | MempoolError::ReplacementFeeTooLow { .. })
    ));

    // A block elsewhere spends it: the registration can never be valid again and is dropped.
    chain.finalize(&pool, &chain.block(2, vec![spend_collateral]));
    assert!(!pool.contains(&reg_id));
    assert_eq!(pool.lock_count(), 0);
}

#[test]
fn a_batch_pools_what_one_by_one_insertion_pools() {
    let chain = Chain::new(8);
    let parent = chain.pay(&[7], 1_000, 1);
    let child = chain.spend(&[&chain.outputs_of(&parent, 7)[0]], 1_000, 1);
    let batch = vec![
        chain.pay(&[0], 1_000, 1),
        mangled(&chain.pay(&[1], 1_000, 1)),
        chain.pay(&[1], 1_000, 1),
        chain.pay(&[2], 1_000, 1),
        chain.pay(&[2], 50_000, 2), // replaces the previous one
        chain.pay(&[0], 1_000, 1),  // duplicate of the first
        chain.pay(&[3, 4], 2_000, 3),
        child, // spends an unconfirmed output
        chain.pay(&[5], 3_000, 1),
    ];
    let (one_by_one, _) = chain.pool(Config::default());
    let sequential: Vec<bool> = batch
        .iter()
        .map(|tx| one_by_one.insert(tx.clone()).is_ok())
        .collect();
    let (batched, _) = chain.pool(Config::default());
    let results = batched.insert_batch(batch.clone());
    assert_eq!(
        results.iter().map(Result::is_ok).collect::<Vec<_>>(),
        sequential
    );
    assert!(matches!(
        results[1],
        Err(MempoolError::Invalid {
            source: TypesError::BadSignature { index: 0, .. },
            ..
        })
    ));
    assert!(matches!(
        results[5],
        Err(MempoolError::AlreadyPooled { .. })
    ));
    assert!(matches!(
        results[7],
        Err(MempoolError::Invalid {
            source: TypesError::MissingInput { .. },
            ..
        })
    ));
    let pooled = |p: &TxPool<SharedView>| {
        let mut v: Vec<_> = p.entries().iter().map(|e| e.txid()).collect();
        v.sort();
        v
    };
    assert_eq!(pooled(&batched), pooled(&one_by_one));
    assert_eq!(batched.len(), 5);
    assert_eq!(batched.stats().replaced, 1);
}

#[test]
fn a_batch_with_many_bad_signatures_rejects_exactly_those() {
    let chain = Chain::new(40);
    let batch: Vec<Transaction> = (0..40)
        .map(|i| {
            let tx = chain.pay(&[i], 1_000, 2);
            if i % 7 == 3 { mangled(&tx) } else { tx }
        })
        .collect();
    let (pool, _) = chain.pool(Config {
        batch_min_chunk: 8,
        ..Config::default()
    });
    let results = pool.insert_batch(batch);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_err(), i % 7 == 3, "transaction {i}: {r:?}");
    }
    assert_eq!(pool.len(), 40 - 6);
    assert_eq!(pool.rejection_cache().len(), 6);
}

/// A pool whose batch insert waits until the test lets it go: proves where the batch runs.
struct GatedPool {
    inner: TxPool<SharedView>,
    gate: parking_lot::Mutex<mpsc::Receiver<()>>,
}

impl Mempool for GatedPool {
    fn insert(&self, tx: Transaction) -> Result<TxId, MempoolError> {
        self.inner.insert(tx)
    }
    fn insert_batch(&self, txs: Vec<Transaction>) -> Vec<Result<TxId, MempoolError>> {
        // Only a task on the runtime opens the gate; if this ran on the runtime's only thread, the
        // gate could never open, and the timeout turns the deadlock into a failure.
        self.gate
            .lock()
            .recv_timeout(Duration::from_secs(20))
            .expect("the runtime never ran while the batch was pending");
        self.inner.insert_batch(txs)
    }
    fn contains(&self, txid: &TxId) -> bool {
        self.inner.contains(txid)
    }
    fn get(&self, txid: &TxId) -> Option<Arc<Transaction>> {
        self.inner.get(txid)
    }
    fn template(&self, max_bytes: usize) -> Vec<Arc<Transaction>> {
        self.inner.template(max_bytes)
    }
    fn on_finalized(&self, block: &timecoin_types::Block) {
        self.inner.on_finalized(block)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn bytes(&self) -> usize {
        self.inner.bytes()
    }
    fn stats(&self) -> timecoin_mempool::MempoolStats {
        self.inner.stats()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_runtime_keeps_running_while_a_batch_is_verified_on_the_cpu_pool() {
    let chain = Chain::new(64);
    let batch: Vec<Transaction> = (0..64).map(|i| chain.pay(&[i], 1_000, 2)).collect();
    let (inner, _) = chain.pool(Config::default());
    let (open, gate) = mpsc::channel();
    let pool = Arc::new(GatedPool {
        inner,
        gate: parking_lot::Mutex::new(gate),
    });

    let pending = tokio::spawn(insert_batch_async(pool.clone(), batch));
    // This task runs on the runtime's only thread while the batch waits at its gate.
    tokio::task::yield_now().await;
    open.send(()).unwrap();
    let results = pending.await.unwrap();
    assert_eq!(results.len(), 64);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let pool: Arc<dyn Mempool> = pool;
    let stranger = Chain::new(65).pay(&[64], 1_000, 1);
    // A coin of the larger chain is not in this pool's view.
    assert!(matches!(
        insert_async(pool.clone(), stranger).await,
        Err(MempoolError::Invalid { .. })
    ));
    let template = template_async(pool.clone(), usize::MAX).await.unwrap();
    assert_eq!(template.len(), 64);
    let distinct: HashSet<OutPoint> = template
        .iter()
        .flat_map(|t| t.inputs.iter().map(|i| i.prevout))
        .collect();
    assert_eq!(distinct.len(), 64);
}
