//! Benchmarks of `timecoin-types`: canonical encode/decode of a 2-in/2-out transaction and of a block of
//! 1000 of them, the txid, and the full check of one transaction (stateless rules, UTXO lookups, strict
//! signature verification). Run with `cargo bench -p timecoin-benches --bench types`; figures are recorded
//! in docs/BENCHMARKS.md.

#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use timecoin_types::{
    Address, Amount, Block, ChainParams, Genesis, Network, OutPoint, PublicKey, SecretKey,
    Transaction, TxBuilder, TxId, TxOut, WellFormedBlock, Wire, check_tx, check_tx_context,
};

/// Transactions in the block benchmarks.
const BLOCK_TXS: usize = 1000;

/// Coins, the view that holds them, and 2-in/2-out transactions spending them (each a payment plus
/// change, each input owned by its own key: the common wallet shape).
struct Fixture {
    params: ChainParams,
    view: HashMap<OutPoint, TxOut>,
    txs: Vec<Transaction>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let params = ChainParams::for_network(Network::Local);
        let key = |i: usize| {
            let mut seed = [0x3cu8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SecretKey::from_seed(&seed)
        };
        let coin_value = Amount::from_sat(2_500_000);
        let mut view = HashMap::with_capacity(2 * n);
        let mut txs = Vec::with_capacity(n);
        for t in 0..n {
            let (a, b) = (key(2 * t), key(2 * t + 1));
            let coins = [(2 * t, &a), (2 * t + 1, &b)].map(|(i, k)| {
                let mut id = [0x77u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let op = OutPoint {
                    txid: TxId(timecoin_types::Hash::from_bytes(id)),
                    vout: (i % 3) as u32,
                };
                view.insert(
                    op,
                    TxOut {
                        amount: coin_value,
                        address: Address::from_public_key(&k.public_key()),
                    },
                );
                op
            });
            let tx = TxBuilder::new(params.chain_id)
                .input(coins[0], coin_value, &a)
                .input(coins[1], coin_value, &b)
                .output(
                    Address::from_public_key(&key(usize::MAX - t).public_key()),
                    Amount::from_sat(3_000_000),
                )
                .output(
                    Address::from_public_key(&a.public_key()),
                    Amount::from_sat(1_999_000),
                )
                .sign();
            txs.push(tx);
        }
        Fixture { params, view, txs }
    }
}

fn transaction(c: &mut Criterion) {
    let fixture = Fixture::new(1);
    let tx = &fixture.txs[0];
    let bytes = tx.encode();
    assert_eq!(
        check_tx(tx, &fixture.view, &fixture.params),
        Ok(Amount::from_sat(1_000))
    );

    let mut g = c.benchmark_group("tx_2in_2out");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| black_box(tx).encode()));
    g.bench_function("decode", |b| {
        b.iter(|| Transaction::decode(black_box(&bytes)))
    });
    g.bench_function("txid", |b| b.iter(|| black_box(tx).txid()));
    // Decoding validates each input's public key (canonical, on the curve, not small order); this is that
    // step alone, to tell how much of `decode` it is.
    let key_bytes = *tx.inputs[0].public_key.as_bytes();
    g.bench_function("public_key_validation", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(&key_bytes)))
    });
    g.bench_function("check_stateless", |b| {
        b.iter(|| black_box(tx).check(&fixture.params))
    });
    g.bench_function("check_context_without_signatures", |b| {
        b.iter(|| check_tx_context(black_box(tx), &fixture.view, &fixture.params))
    });
    g.bench_function("check_tx_full", |b| {
        b.iter(|| check_tx(black_box(tx), &fixture.view, &fixture.params))
    });
    g.finish();
}

fn block(c: &mut Criterion) {
    let fixture = Fixture::new(BLOCK_TXS);
    let mut block = Genesis::local(4).block().into_block();
    block.header.height = 1;
    block.transactions = fixture.txs;
    let block = block.seal();
    let bytes = block.encode();
    assert_eq!(WellFormedBlock::decode(&bytes).as_ref(), Ok(&block));

    let mut g = c.benchmark_group(format!("block_{BLOCK_TXS}_tx"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(&block).encode()));
    g.bench_function("decode", |b| b.iter(|| Block::decode(black_box(&bytes))));
    // What the network pays per block: the canonical decode plus the check of both body roots.
    g.bench_function("decode_well_formed", |b| {
        b.iter(|| WellFormedBlock::decode(black_box(&bytes)))
    });
    g.finish();
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 3); transaction, block);
