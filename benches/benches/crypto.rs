//! Benchmarks of `timecoin-crypto`: signing, single and batch verification, hashing, Merkle roots and the
//! UTXO multiset hash. Run with `cargo bench -p timecoin-benches --bench crypto`; figures are recorded in
//! docs/BENCHMARKS.md.
//!
//! Every benchmark reports `Throughput::Elements`, so criterion prints signatures (or hashes, leaves,
//! inserts) per second next to the time per iteration.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use timecoin_crypto::{
    BatchItem, ChainId, Hash, HashDomain, LtHash, PublicKey, SecretKey, SigDomain, Signature, hash,
    merkle_root, verify, verify_batch, verify_batch_parallel,
};

const CHAIN: ChainId = ChainId(1);
const DOMAIN: SigDomain = SigDomain::TxInput;
/// The goal for parallel batch verification is stated for two threads, the size of our reference machine.
const THREADS: usize = 2;

/// `n` signatures by `n` distinct keys over 32-byte messages (a sighash is a 32-byte digest), the shape of
/// a block's inputs: distinct keys matter because the batch cannot share work between equal keys then.
struct Fixture {
    keys: Vec<PublicKey>,
    messages: Vec<[u8; 32]>,
    signatures: Vec<Signature>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let mut keys = Vec::with_capacity(n);
        let mut messages = Vec::with_capacity(n);
        let mut signatures = Vec::with_capacity(n);
        for i in 0..n {
            let mut seed = [0x5au8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let sk = SecretKey::from_seed(&seed);
            let message = *hash(HashDomain::Custom("timecoin bench message"), &seed).as_bytes();
            signatures.push(sk.sign(DOMAIN, CHAIN, &message));
            keys.push(sk.public_key());
            messages.push(message);
        }
        Fixture {
            keys,
            messages,
            signatures,
        }
    }

    fn items(&self) -> Vec<BatchItem<'_>> {
        self.keys
            .iter()
            .zip(&self.messages)
            .zip(&self.signatures)
            .map(|((key, message), signature)| BatchItem {
                key,
                domain: DOMAIN,
                chain: CHAIN,
                message,
                signature,
            })
            .collect()
    }
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));

    let sk = SecretKey::from_seed(&[7; 32]);
    let message = [0x42u8; 32];
    g.bench_function("sign", |b| {
        b.iter(|| sk.sign(DOMAIN, CHAIN, black_box(&message)))
    });

    let pk = sk.public_key();
    let sig = sk.sign(DOMAIN, CHAIN, &message);
    assert!(verify(&pk, DOMAIN, CHAIN, &message, &sig).is_ok());
    g.bench_function("verify_single", |b| {
        b.iter(|| verify(&pk, DOMAIN, CHAIN, black_box(&message), black_box(&sig)))
    });

    for n in [64usize, 256, 1024] {
        let fixture = Fixture::new(n);
        let items = fixture.items();
        assert!(verify_batch(&items).is_ok());
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("verify_batch", n), &items, |b, items| {
            b.iter(|| verify_batch(black_box(items)))
        });
    }

    match rayon::ThreadPoolBuilder::new().num_threads(THREADS).build() {
        Ok(pool) => {
            let n = 1024usize;
            let fixture = Fixture::new(n);
            let items = fixture.items();
            // 1024 items over 2 threads makes 512-item chunks; the 256 floor only bites on smaller batches.
            let min_chunk = 256;
            assert!(
                pool.install(|| verify_batch_parallel(&items, min_chunk))
                    .is_ok()
            );
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("verify_batch_parallel_{THREADS}_threads"), n),
                &items,
                |b, items| {
                    b.iter(|| pool.install(|| verify_batch_parallel(black_box(items), min_chunk)))
                },
            );
        }
        Err(e) => eprintln!("skipping parallel batch benchmark: no rayon pool: {e}"),
    }
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(1));

    // 32 bytes is one txid (a Merkle leaf's input); about 160 bytes is an unsigned one-input,
    // two-output transaction, what a txid is computed over.
    for len in [32usize, 160] {
        let data = vec![0xabu8; len];
        g.bench_with_input(BenchmarkId::new("blake3_txid", len), &data, |b, data| {
            b.iter(|| hash(HashDomain::TxId, black_box(data)))
        });
    }

    let leaves: Vec<Hash> = (0u32..1000)
        .map(|i| hash(HashDomain::TxId, &i.to_le_bytes()))
        .collect();
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("merkle_root", leaves.len()),
        &leaves,
        |b, leaves| b.iter(|| merkle_root(black_box(leaves))),
    );

    // About the size of an outpoint (36 bytes) plus an output (amount and address).
    let element = [0x17u8; 80];
    let mut set = LtHash::new();
    g.throughput(Throughput::Elements(1));
    g.bench_function("lthash_insert", |b| {
        b.iter(|| set.insert(black_box(&element)))
    });
    g.finish();
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 3); signatures, hashing);
