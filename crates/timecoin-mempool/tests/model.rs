//! Model-based test: random sequences of inserts (single and batched, valid and mangled), templates,
//! finalized blocks (our own template or another node's block) and clock jumps, run against the pool and
//! against a small reference model built on `BTreeMap`s. After every step the two must agree exactly on
//! what is pooled, and the pool's invariants must hold.
//!
//! `MEMPOOL_MODEL_CASES` sets the number of cases (default 256).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{Chain, SharedView, mangled};
use proptest::prelude::*;
use timecoin_mempool::{Config, FeeRate, Mempool, MempoolError, TxPool};
use timecoin_types::{
    OutPoint, Transaction, TxId, TypesError, Wire, check_tx, check_tx_context, verify_signatures,
};

/// Transactions the operations pick from: competing spends of eight coins, spends of two and three
/// coins at once, children of some of them (valid only once their parent is final), and a dust payment.
const COINS: usize = 8;
/// Position of the spend of coins 0, 1 and 2 in the universe.
const TRIPLE: usize = COINS * VARIANTS.len() + 10;
/// (fee, outputs) of the competing spends of each coin. 1,100 sat over one output out-rates 1,000 but
/// does not pay enough to replace it.
const VARIANTS: [(u64, usize); 6] = [
    (1_000, 1),
    (1_100, 1),
    (3_000, 2),
    (20_000, 1),
    (2_000, 12),
    (2_500, 6),
];

struct Universe {
    txs: Vec<Transaction>,
}

fn universe() -> &'static Universe {
    static UNIVERSE: OnceLock<Universe> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let chain = Chain::new(COINS);
        let mut txs = Vec::new();
        for coin in 0..COINS {
            for (fee, outputs) in VARIANTS {
                txs.push(chain.pay(&[coin], fee, outputs));
            }
        }
        for (a, b) in [(0, 1), (2, 3), (4, 5), (6, 7), (1, 2)] {
            for (fee, outputs) in [(9_000, 1), (60_000, 3)] {
                txs.push(chain.pay(&[a, b], fee, outputs));
            }
        }
        // Conflicting with up to three pooled transactions: more than a replacement may evict.
        assert_eq!(txs.len(), TRIPLE);
        txs.push(chain.pay(&[0, 1, 2], 200_000, 1));
        txs.push(chain.pay(&[3, 4, 5], 200_000, 1));
        // Children of: coin 0's first variant, coin 3's second, and the first spend of coins 2 and 3.
        let pairs = COINS * VARIANTS.len();
        for (parent, key) in [
            (0usize, 0usize),
            (3 * VARIANTS.len() + 1, 3),
            (pairs + 2, 2),
        ] {
            let outputs = chain.outputs_of(&txs[parent], key);
            txs.push(chain.spend(&[&outputs[0]], 1_500, 1));
        }
        // A dust output: a stateless failure, remembered.
        let coin = &chain.coins[7];
        txs.push(
            timecoin_types::TxBuilder::new(chain.params.chain_id)
                .input(coin.outpoint, coin.amount, &chain.keys[7])
                .output(chain.address(7), timecoin_types::Amount::from_sat(999))
                .sign(),
        );
        Universe { txs }
    })
}

fn config() -> Config {
    Config {
        max_transactions: 4,
        // About five one-input transactions: the byte limit binds when big ones are pooled.
        max_bytes: 5 * 160,
        max_replacements: 2,
        ..Config::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert { tx: usize, mangle: bool },
    Batch(Vec<(usize, bool)>),
    Template { max_bytes: usize },
    FinalizeTemplate { max_bytes: usize },
    FinalizeForeign(Vec<usize>),
    Advance { minutes: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let n = universe().txs.len();
    // Biased towards the spends of coins 0-2 and the spend of all three, so conflicts, replacements and
    // repeated rejections are common.
    let index = prop_oneof![3 => 0..n, 2 => 0..3 * VARIANTS.len(), 1 => Just(TRIPLE)];
    let pick = (index, prop::bool::weighted(0.15));
    prop_oneof![
        8 => pick.clone().prop_map(|(tx, mangle)| Op::Insert { tx, mangle }),
        3 => prop::collection::vec(pick, 1..6).prop_map(Op::Batch),
        1 => (0usize..900).prop_map(|max_bytes| Op::Template { max_bytes }),
        1 => (0usize..600).prop_map(|max_bytes| Op::FinalizeTemplate { max_bytes }),
        1 => prop::collection::vec(0..n, 1..4).prop_map(Op::FinalizeForeign),
        1 => (0u64..90).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

#[derive(Clone, Debug)]
struct Pooled {
    tx: Transaction,
    rate: FeeRate,
    fee: u64,
    size: usize,
    claims: Vec<OutPoint>,
}

/// The reference: what the pool should hold, computed the plain way.
struct Model {
    config: Config,
    pooled: BTreeMap<TxId, Pooled>,
    /// Rejected encodings and when each is forgotten.
    rejected: BTreeMap<Vec<u8>, Duration>,
    now: Duration,
}

/// An outcome's name, to compare the pool's with the model's.
fn kind(r: &Result<TxId, MempoolError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(MempoolError::Invalid { source, .. }) => {
            let s = format!("{source:?}");
            let name: String = s.chars().take_while(|c| c.is_alphanumeric()).collect();
            format!("Invalid({name})")
        }
        Err(e) => {
            let s = format!("{e:?}");
            s.chars().take_while(|c| c.is_alphanumeric()).collect()
        }
    }
}

impl Model {
    fn bytes(&self) -> usize {
        self.pooled.values().map(|p| p.size).sum()
    }

    fn conflicts(&self, claims: &[OutPoint]) -> BTreeSet<TxId> {
        self.pooled
            .iter()
            .filter(|(_, p)| p.claims.iter().any(|c| claims.contains(c)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The cheapest pooled transactions (not in `conflicts`, rate below `rate`) to evict so that `entry`
    /// fits once `conflicts` are gone; `None` if that is impossible.
    fn victims(&self, entry: &Pooled, conflicts: &BTreeSet<TxId>) -> Option<Vec<TxId>> {
        let freed: usize = conflicts.iter().map(|c| self.pooled[c].size).sum();
        let count_after = self.pooled.len() + 1 - conflicts.len();
        let bytes_after = self.bytes() + entry.size - freed;
        let mut need_count = count_after.saturating_sub(self.config.max_transactions);
        let mut need_bytes = bytes_after.saturating_sub(self.config.max_bytes);
        let mut ranked: Vec<(FeeRate, TxId, usize)> = self
            .pooled
            .iter()
            .filter(|(id, p)| !conflicts.contains(id) && p.rate < entry.rate)
            .map(|(id, p)| (p.rate, *id, p.size))
            .collect();
        ranked.sort();
        let mut chosen = Vec::new();
        for (_, id, size) in ranked {
            if need_count == 0 && need_bytes == 0 {
                break;
            }
            need_count = need_count.saturating_sub(1);
            need_bytes = need_bytes.saturating_sub(size);
            chosen.push(id);
        }
        (need_count == 0 && need_bytes == 0).then_some(chosen)
    }

    /// Conflicts, the fee-bump rule and room: `Ok(victims)` or the name of the failure.
    fn plan(&self, entry: &Pooled) -> Result<(BTreeSet<TxId>, Vec<TxId>), String> {
        let txid = entry.tx.txid();
        if self.pooled.contains_key(&txid) {
            return Err("AlreadyPooled".into());
        }
        let conflicts = self.conflicts(&entry.claims);
        if !conflicts.is_empty() {
            if conflicts.len() > self.config.max_replacements {
                return Err("TooManyReplacements".into());
            }
            if conflicts.iter().any(|c| self.pooled[c].rate >= entry.rate) {
                return Err("ReplacementFeeRateTooLow".into());
            }
            let replaced: u64 = conflicts.iter().map(|c| self.pooled[c].fee).sum();
            let required = replaced + self.config.replacement_fee_rate * entry.size as u64;
            if entry.fee < required {
                return Err("ReplacementFeeTooLow".into());
            }
        }
        let victims = self
            .victims(entry, &conflicts)
            .ok_or_else(|| "PoolFull".to_string())?;
        Ok((conflicts, victims))
    }

    fn remember(&mut self, tx: &Transaction, source: &TypesError) {
        let remembered = MempoolError::Invalid {
            txid: tx.txid(),
            source: source.clone(),
        }
        .is_remembered();
        if remembered {
            self.rejected
                .insert(tx.encode(), self.now + self.config.rejection_ttl);
        }
    }

    /// Screening: cache, duplicate, chain rules, then (against the pool as it is now) the plan.
    fn screen(&mut self, tx: &Transaction, chain: &Chain) -> Result<Pooled, String> {
        if self
            .rejected
            .get(&tx.encode())
            .is_some_and(|t| *t > self.now)
        {
            return Err("RecentlyRejected".into());
        }
        if self.pooled.contains_key(&tx.txid()) {
            return Err("AlreadyPooled".into());
        }
        let checked = match check_tx_context(tx, &chain.view, &chain.params) {
            Ok(c) => c,
            Err(e) => {
                self.remember(tx, &e);
                return Err(format!("Invalid({})", kind_of(&e)));
            }
        };
        if let Err(e) = verify_signatures(tx, chain.params.chain_id, &checked.spent) {
            // Checked after the plan below; computed here only to know the verdict.
            let entry = self.entry(tx, checked.fee.as_sat());
            self.plan(&entry)?;
            self.remember(tx, &e);
            return Err(format!("Invalid({})", kind_of(&e)));
        }
        let entry = self.entry(tx, checked.fee.as_sat());
        self.plan(&entry)?;
        Ok(entry)
    }

    fn entry(&self, tx: &Transaction, fee: u64) -> Pooled {
        let size = tx.encoded_len();
        Pooled {
            tx: tx.clone(),
            rate: FeeRate::new(timecoin_types::Amount::from_sat(fee), size),
            fee,
            size,
            claims: tx.inputs.iter().map(|i| i.prevout).collect(),
        }
    }

    fn admit(&mut self, entry: Pooled) -> Result<TxId, String> {
        let (conflicts, victims) = self.plan(&entry)?;
        for id in conflicts.iter().chain(&victims) {
            self.pooled.remove(id);
        }
        let txid = entry.tx.txid();
        self.pooled.insert(txid, entry);
        Ok(txid)
    }

    /// A batch: every transaction screened against the pool as it was, then admitted in order.
    fn insert_batch(&mut self, txs: &[Transaction], chain: &Chain) -> Vec<Result<TxId, String>> {
        let screened: Vec<Result<Pooled, String>> =
            txs.iter().map(|tx| self.screen(tx, chain)).collect();
        screened
            .into_iter()
            .map(|s| s.and_then(|entry| self.admit(entry)))
            .collect()
    }

    fn template(&self, max_bytes: usize, view: &SharedView) -> Vec<TxId> {
        let mut ranked: Vec<(&TxId, &Pooled)> = self.pooled.iter().collect();
        ranked.sort_by(|a, b| b.1.rate.cmp(&a.1.rate).then(a.0.cmp(b.0)));
        let mut used = HashSet::new();
        let mut total = 0;
        let mut chosen = Vec::new();
        for (id, p) in ranked {
            if total + p.size > max_bytes
                || p.claims.iter().any(|c| used.contains(c))
                || !p.claims.iter().all(|c| view.contains(c))
            {
                continue;
            }
            used.extend(p.claims.iter().copied());
            total += p.size;
            chosen.push(*id);
        }
        chosen
    }

    fn on_finalized(&mut self, block: &[Transaction]) {
        let included: HashSet<TxId> = block.iter().map(Transaction::txid).collect();
        let spent: HashSet<OutPoint> = block
            .iter()
            .flat_map(|t| t.inputs.iter().map(|i| i.prevout))
            .collect();
        self.pooled
            .retain(|id, p| !included.contains(id) && !p.claims.iter().any(|c| spent.contains(c)));
    }
}

fn kind_of(e: &TypesError) -> String {
    format!("{e:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect()
}

/// What must hold after every step, whatever happened.
fn check_invariants(pool: &TxPool<SharedView>, model: &Model, chain: &Chain) {
    let config = pool.config();
    assert!(pool.len() <= config.max_transactions, "count limit");
    assert!(pool.bytes() <= config.max_bytes, "byte limit");

    let entries = pool.entries();
    let pooled: BTreeSet<TxId> = entries.iter().map(|e| e.txid()).collect();
    let expected: BTreeSet<TxId> = model.pooled.keys().copied().collect();
    assert_eq!(
        pooled, expected,
        "pool and model disagree on what is pooled"
    );
    assert_eq!(pool.len(), entries.len());
    assert_eq!(
        pool.bytes(),
        entries.iter().map(|e| e.size()).sum::<usize>()
    );

    let mut owners: HashMap<OutPoint, TxId> = HashMap::new();
    for e in &entries {
        for claim in e.claims() {
            let previous = owners.insert(*claim, e.txid());
            assert!(previous.is_none(), "two pooled transactions spend {claim}");
        }
        check_tx(e.tx(), &chain.view, &chain.params)
            .unwrap_or_else(|err| panic!("pooled {} is invalid now: {err}", e.txid()));
    }
    assert_eq!(pool.lock_count(), owners.len(), "stray locks");
    for (op, owner) in &owners {
        assert_eq!(pool.lock_owner(op), Some(*owner), "lock of {op}");
    }
}

fn check_template(template: &[Arc<Transaction>], max_bytes: usize, chain: &Chain) {
    let total: usize = template.iter().map(|t| t.encoded_len()).sum();
    assert!(
        total <= max_bytes,
        "template of {total} bytes over {max_bytes}"
    );
    let mut spent = HashSet::new();
    for tx in template {
        for input in &tx.inputs {
            assert!(spent.insert(input.prevout), "template double-spends");
        }
        check_tx(tx, &chain.view, &chain.params).expect("template holds an invalid transaction");
    }
}

fn run(ops: Vec<Op>) {
    let universe = universe();
    let chain = Chain::new(COINS);
    let (pool, clock) = chain.pool(config());
    let mut model = Model {
        config: config(),
        pooled: BTreeMap::new(),
        rejected: BTreeMap::new(),
        now: Duration::ZERO,
    };
    let pick = |tx: usize, mangle: bool| {
        let tx = &universe.txs[tx];
        if mangle { mangled(tx) } else { tx.clone() }
    };
    let mut height = 0;
    for op in ops {
        match op {
            Op::Insert { tx, mangle } => {
                let tx = pick(tx, mangle);
                let expected = model.insert_batch(std::slice::from_ref(&tx), &chain);
                let got = pool.insert(tx);
                let expected = match &expected[0] {
                    Ok(_) => "Ok".to_string(),
                    Err(e) => e.clone(),
                };
                assert_eq!(kind(&got), expected, "insert outcome");
            }
            Op::Batch(picks) => {
                let txs: Vec<Transaction> = picks.iter().map(|(t, m)| pick(*t, *m)).collect();
                let expected = model.insert_batch(&txs, &chain);
                let got = pool.insert_batch(txs);
                let expected: Vec<bool> = expected.iter().map(Result::is_ok).collect();
                let got: Vec<bool> = got.iter().map(Result::is_ok).collect();
                assert_eq!(got, expected, "batch outcome");
            }
            Op::Template { max_bytes } => {
                let template = pool.template(max_bytes);
                check_template(&template, max_bytes, &chain);
                let ids: Vec<TxId> = template.iter().map(|t| t.txid()).collect();
                assert_eq!(ids, model.template(max_bytes, &chain.view), "template");
            }
            Op::FinalizeTemplate { max_bytes } => {
                let txs: Vec<Transaction> = pool
                    .template(max_bytes)
                    .iter()
                    .map(|t| (**t).clone())
                    .collect();
                height += 1;
                let block = chain.block(height, txs.clone());
                chain.finalize(&pool, &block);
                model.on_finalized(&txs);
            }
            Op::FinalizeForeign(picks) => {
                // Another node's block: the listed transactions that are valid in order.
                let mut txs: Vec<Transaction> = Vec::new();
                let mut spent = HashSet::new();
                for i in picks {
                    let tx = &universe.txs[i];
                    let fresh = tx.inputs.iter().all(|i| !spent.contains(&i.prevout));
                    if fresh && check_tx(tx, &chain.view, &chain.params).is_ok() {
                        spent.extend(tx.inputs.iter().map(|i| i.prevout));
                        txs.push(tx.clone());
                    }
                }
                height += 1;
                let block = chain.block(height, txs.clone());
                chain.finalize(&pool, &block);
                model.on_finalized(&txs);
            }
            Op::Advance { minutes } => {
                let by = Duration::from_secs(minutes * 60);
                clock.advance(by);
                model.now += by;
            }
        }
        check_invariants(&pool, &model, &chain);
    }
}

fn cases() -> u32 {
    std::env::var("MEMPOOL_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_pool_behaves_like_the_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn the_universe_has_the_sizes_the_limits_assume() {
    let sizes: Vec<usize> = universe()
        .txs
        .iter()
        .map(Transaction::encoded_len)
        .collect();
    let one_in_one_out = sizes[0];
    // The byte limit is set for ~160-byte transactions; if the encoding changes, retune `config`.
    assert!((120..=200).contains(&one_in_one_out), "{one_in_one_out}");
    // Twelve outputs make a transaction that alone takes most of the byte budget.
    assert_eq!(VARIANTS[4].1, 12);
    assert!(sizes[4] > 3 * one_in_one_out, "{}", sizes[4]);
}
