//! Benchmarks of `timecoin-node`'s engine: a validator taking a block of 1000 two-in/two-out
//! transactions from the leader's proposal to durable finality on sled (transactions unseen, and all
//! already pooled), the pieces that time is made of, the signature-bound limit measured in the same run,
//! and the engine's own cost per consensus message when no signature is checked and nothing is stored.
//! Run with `cargo bench -p timecoin-benches --bench node`; figures are recorded in docs/BENCHMARKS.md.
//!
//! Block benchmarks report `Throughput::Elements(1000)`, so criterion prints transactions per second.
//! Everything other validators send (the proposal, their Prepares and Commits) is built and signed
//! outside the timed section; verifying it is the engine's work and is timed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use timecoin_benches::{metered, process_cpu};
use timecoin_consensus::{Message, ValidatorSet, WalEntry};
use timecoin_crypto::{BatchItem, SigDomain, verify_batch_parallel};
use timecoin_net::{Channel, NetEvent, PeerId};
use timecoin_node::{Effect, Event, Node, NodeBuilder, NodeConfig, TimerId};
use timecoin_storage::testing::BlockFactory;
use timecoin_storage::{
    BackendKind, BlockStore, ChainDb, ChainStore, ConsensusStateStore, KvEngine, SledEngine,
    StorageConfig,
};
use timecoin_types::{
    BlockHash, ChainId, ChainParams, Genesis, Height, LockProof, OutPoint, Proposal, PublicKey,
    SecretKey, Transaction, TxOut, Vote, VotePhase, WellFormedBlock, Wire, check_block,
    check_block_with, check_tx_context, signature_messages,
};

const TXS: usize = 1000;
const VALIDATORS: usize = 4;
/// `check_block`'s chunk of signatures per rayon task (`BLOCK_BATCH_CHUNK` in timecoin-types).
const BLOCK_CHUNK: usize = 256;

fn sled_store(dir: &std::path::Path, genesis: &Genesis) -> Arc<ChainDb<SledEngine>> {
    let config = StorageConfig {
        backend: BackendKind::Sled { path: dir.into() },
        ..StorageConfig::default()
    };
    Arc::new(ChainDb::open(SledEngine::open(dir, &config).unwrap(), &config, genesis).unwrap())
}

/// Splits the genesis coins into the 2000 outputs a block of 1000 two-in/two-out transactions spends.
fn prime<E: KvEngine>(store: &ChainDb<E>, factory: &BlockFactory) {
    let (block, cert) = factory.next_block(store, TXS).unwrap();
    store.apply_finalized(&block, &cert).unwrap();
}

/// `block` without its transactions: asking the store for its commitment replaces the store's memo of
/// `block`'s, so a validator meeting `block` for the first time does the lookups and hashing itself.
fn empty_like(block: &WellFormedBlock) -> WellFormedBlock {
    let mut empty = block.clone().into_block();
    empty.transactions.clear();
    empty.seal()
}

/// A block of `transactions` on `store`'s tip with `leader` as its proposer (the factory's own blocks
/// name another validator), committing to the UTXO set it leaves.
fn proposed_block(
    factory: &BlockFactory,
    store: &impl ChainStore,
    transactions: Vec<timecoin_types::Transaction>,
    leader: PublicKey,
) -> WellFormedBlock {
    let mut block = factory.unsealed_block(store, transactions).unwrap();
    block.header.proposer = leader;
    let unsealed = block.seal();
    let commitment = store.utxo_commitment_after(&unsealed).unwrap();
    let mut block = unsealed.into_block();
    block.header.utxo_commitment = commitment;
    block.seal()
}

/// Local validator `me` over `store`, with heights it leads started by the bench's heartbeat rather than
/// after 600 s.
fn validator_node<E: KvEngine>(store: &Arc<ChainDb<E>>, genesis: &Genesis, me: usize) -> Node {
    let mut config = NodeConfig::new(genesis);
    config.engine.empty_block_interval = Duration::ZERO;
    NodeBuilder::new(config, genesis.clone())
        .store(
            store.clone() as Arc<dyn ChainStore>,
            store.clone() as Arc<dyn ConsensusStateStore>,
        )
        .signer(Arc::new(Genesis::local_validator_key(me)))
        .build()
        .unwrap()
}

fn consensus_event(from: PeerId, message: &Message) -> Event {
    Event::Net(NetEvent::Message {
        from,
        channel: Channel::Consensus,
        bytes: message.encode().into(),
    })
}

fn finalized(effects: &[Effect], height: Height) -> Option<usize> {
    effects.iter().find_map(|e| match e {
        Effect::Finalized {
            height: h,
            transactions,
            ..
        } if *h == height => Some(*transactions),
        _ => None,
    })
}

/// One validator's node on its own sled store, and the keys of the other validators so the bench can
/// speak for them.
struct Validator {
    node: Node,
    store: Arc<ChainDb<SledEngine>>,
    factory: BlockFactory,
    keys: Vec<SecretKey>,
    set: ValidatorSet,
    me: PublicKey,
    chain: ChainId,
    now_ms: u64,
    /// Wall and CPU time spent on timed heights' proposals, Prepares and Commits, and how many heights.
    stages: [(Duration, Duration); 3],
    heights: u32,
    _dir: tempfile::TempDir,
}

impl Validator {
    /// Validator `me` of `Genesis::local(VALIDATORS)`, its store holding the 2000 outputs to spend.
    fn new(me: usize) -> Self {
        // Rewards off: the factory's blocks carry no payout, which the engine would demand every
        // `reward_interval` heights.
        let factory = BlockFactory::local(VALIDATORS).with_params(|p| p.reward_interval = 0);
        let genesis = factory.genesis().clone();
        let dir = tempfile::tempdir().unwrap();
        let store = sled_store(dir.path(), &genesis);
        prime(&store, &factory);
        let keys: Vec<SecretKey> = (0..VALIDATORS).map(Genesis::local_validator_key).collect();
        let mut node = validator_node(&store, &genesis, me);
        let now_ms = genesis.timestamp_ms;
        node.handle(now_ms, Event::Start);
        Validator {
            node,
            store,
            factory,
            set: ValidatorSet::from_genesis(&genesis).unwrap(),
            me: keys[me].public_key(),
            keys,
            chain: genesis.params.chain_id,
            now_ms,
            stages: [(Duration::ZERO, Duration::ZERO); 3],
            heights: 0,
            _dir: dir,
        }
    }

    fn next_height(&self) -> Height {
        self.node.engine().finalized_height() + 1
    }

    fn key_of(&self, key: &PublicKey) -> &SecretKey {
        self.keys.iter().find(|k| k.public_key() == *key).unwrap()
    }

    /// Every other validator's `phase` vote for `hash` at `height`, view 0.
    fn votes(&self, phase: VotePhase, height: Height, hash: BlockHash) -> Vec<Event> {
        self.keys
            .iter()
            .filter(|k| k.public_key() != self.me)
            .map(|k| {
                let vote = Vote::sign(k, self.chain, phase, height, 0, Some(hash));
                consensus_event(k.public_key().into(), &Message::Vote(vote))
            })
            .collect()
    }

    /// Hands `events` to the node in order and returns how long each took (wall clock, and CPU time
    /// of all threads), up to the one after which `height` was reported final; what comes after it is
    /// still handed over, like late votes.
    fn until_finalized(
        &mut self,
        height: Height,
        events: Vec<Event>,
        txs: usize,
    ) -> Vec<(Duration, Duration)> {
        self.now_ms += 1;
        let mut took = Vec::with_capacity(events.len());
        let mut done = false;
        for event in events {
            let cpu = process_cpu();
            let start = Instant::now();
            let effects = self.node.handle(self.now_ms, event);
            let elapsed = start.elapsed();
            if !done {
                took.push((elapsed, process_cpu().saturating_sub(cpu)));
                if let Some(n) = finalized(&effects, height) {
                    assert_eq!(n, txs);
                    done = true;
                }
            }
        }
        assert_eq!(self.node.engine().failure(), None);
        assert!(done, "height {height} was not finalized");
        took
    }

    /// Decides, untimed, the heights this node leads (empty blocks from its empty pool), so that the
    /// next height is one where it validates someone else's proposal.
    fn skip_own_heights(&mut self) {
        loop {
            let height = self.next_height();
            if *self.set.leader(height, 0) != self.me {
                return;
            }
            self.now_ms += 1;
            self.node
                .handle(self.now_ms, Event::Timer(TimerId::Heartbeat));
            // The core persists what it broadcasts, so the node's WAL holds its proposal.
            let hash = self
                .node
                .engine()
                .wal()
                .replay(height)
                .unwrap()
                .iter()
                .find_map(|bytes| match WalEntry::decode(bytes).ok()?.into_message() {
                    Message::Proposal(p) => Some(p.block.hash()),
                    Message::Vote(_) => None,
                })
                .expect("the leader proposed");
            let mut events = self.votes(VotePhase::Prepare, height, hash);
            events.extend(self.votes(VotePhase::Commit, height, hash));
            self.until_finalized(height, events, 0);
        }
    }

    /// A fresh block of `TXS` transfers on the tip, proposed by `leader`, with the store's memo of its
    /// commitment dropped.
    fn fresh_block(&self, leader: PublicKey) -> WellFormedBlock {
        let (draft, _) = self.factory.next_block(&*self.store, TXS).unwrap();
        let block = proposed_block(
            &self.factory,
            &*self.store,
            draft.into_block().transactions,
            leader,
        );
        assert_eq!(block.transactions.len(), TXS);
        self.store
            .utxo_commitment_after(&empty_like(&block))
            .unwrap();
        block
    }

    /// One height as a non-leading validator sees it: the leader's proposal of a fresh block, then the
    /// others' Prepares, then their Commits; timed until the block is final and durable. With `pooled`,
    /// the node's mempool admitted every transaction of the block beforehand (untimed).
    fn timed_height(&mut self, pooled: bool) -> Duration {
        self.skip_own_heights();
        let height = self.next_height();
        let leader = *self.set.leader(height, 0);
        let block = self.fresh_block(leader);
        // This bench's blocks spend outputs of only a few keys. Unseen, every key counts as new to the
        // node (the memo of decoded keys is off), as in a block of many distinct senders; pooled, the
        // memo holds what decoding the gossiped transactions put there, and nothing else.
        timecoin_crypto::key_cache::set_enabled(pooled);
        timecoin_crypto::key_cache::clear();
        if pooled {
            let mempool = self.node.engine().mempool();
            let gossiped: Vec<_> = block
                .transactions
                .iter()
                .map(|tx| Transaction::decode(&tx.encode()).unwrap())
                .collect();
            let admitted = mempool.insert_batch(gossiped);
            assert!(admitted.iter().all(Result::is_ok), "{admitted:?}");
            assert!(
                block
                    .transactions
                    .iter()
                    .all(|tx| mempool.holds_verified(tx))
            );
        }
        let hash = block.hash();
        let proposal = Proposal::sign(self.key_of(&leader), self.chain, height, 0, None, block);
        let mut events = vec![consensus_event(leader.into(), &Message::Proposal(proposal))];
        let prepares = self.votes(VotePhase::Prepare, height, hash);
        let first_commit = 1 + prepares.len();
        events.extend(prepares);
        events.extend(self.votes(VotePhase::Commit, height, hash));
        let took = self.until_finalized(height, events, TXS);
        for (i, (wall, cpu)) in took.iter().enumerate() {
            let stage = match i {
                0 => 0,
                i if i < first_commit => 1,
                _ => 2,
            };
            self.stages[stage].0 += *wall;
            self.stages[stage].1 += *cpu;
        }
        self.heights += 1;
        took.iter().map(|(wall, _)| *wall).sum()
    }

    /// Where this node's timed heights spent their time, by the message being handled: wall clock and
    /// CPU time of all threads, means per height.
    fn report(&self, name: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.heights.max(1));
        let [(pw, pc), (vw, vc), (cw, cc)] = self.stages.map(|(w, c)| (ms(w), ms(c)));
        eprintln!(
            "{name}: {} heights, mean ms per height (wall / CPU of all threads): proposal \
             {pw:.2} / {pc:.2} (decode, signatures, validity, own Prepare); Prepares {vw:.2} / \
             {vc:.2} (own Commit with its lock); Commits {cw:.2} / {cc:.2} (decision, durable \
             apply, WAL prune)",
            self.heights
        );
    }
}

/// A validator that does not lead height 2 (the priming block is height 1), so the first timed height
/// needs no filler.
fn validator() -> Validator {
    let genesis = Genesis::local(VALIDATORS);
    let set = ValidatorSet::from_genesis(&genesis).unwrap();
    let leader = *set.leader(2, 0);
    let me = (0..VALIDATORS)
        .find(|i| Genesis::local_validator_key(*i).public_key() != leader)
        .unwrap();
    Validator::new(me)
}

fn engine_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("node_block_1000x2in2out");
    group.throughput(Throughput::Elements(TXS as u64));
    // Each engine benchmark gets a fresh node and store, so none runs on a database grown by the other.
    let mut unseen = validator();
    group.bench_function("engine_unseen", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| unseen.timed_height(false)).sum())
    });
    unseen.report("engine_unseen");
    drop(unseen);
    let mut pooled = validator();
    group.bench_function("engine_pooled", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| pooled.timed_height(true)).sum())
    });
    pooled.report("engine_pooled");
    group.finish();
}

/// The block's 2000 signature checks, as `check_block` composes them.
struct Signatures {
    messages: Vec<Vec<[u8; timecoin_types::INPUT_MESSAGE_LEN]>>,
}

impl Signatures {
    fn of(block: &WellFormedBlock, view: &HashMap<OutPoint, TxOut>, params: &ChainParams) -> Self {
        let messages = block
            .transactions
            .iter()
            .map(|tx| signature_messages(tx, &check_tx_context(tx, view, params).unwrap().spent))
            .collect();
        Signatures { messages }
    }

    fn items<'a>(&'a self, block: &'a WellFormedBlock, chain: ChainId) -> Vec<BatchItem<'a>> {
        block
            .transactions
            .iter()
            .zip(&self.messages)
            .flat_map(|(tx, msgs)| {
                tx.inputs
                    .iter()
                    .zip(msgs)
                    .map(move |(input, msg)| BatchItem {
                        key: &input.public_key,
                        domain: SigDomain::TxInput,
                        chain,
                        message: msg,
                        signature: &input.signature,
                    })
            })
            .collect()
    }
}

fn all_utxos(store: &impl ChainStore) -> HashMap<OutPoint, TxOut> {
    let mut set = HashMap::new();
    let mut cursor = None;
    loop {
        let page = store.utxo_page(cursor.as_ref(), 0).unwrap();
        set.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return set,
        }
    }
}

/// The parts of the engine's work on a block, each on its own, and the limit: the same block's
/// signatures, and all of `check_block`, against an in-memory set.
fn block_parts(c: &mut Criterion) {
    // The parts are measured as for a block whose every key is new to the node (see `timed_height`).
    timecoin_crypto::key_cache::set_enabled(false);
    let factory = BlockFactory::local(VALIDATORS);
    let genesis = factory.genesis().clone();
    let params = genesis.params.clone();
    let chain = params.chain_id;
    let dir = tempfile::tempdir().unwrap();
    let store = sled_store(dir.path(), &genesis);
    prime(&store, &factory);
    let (block, _) = factory.next_block(&*store, TXS).unwrap();
    let memory_set = all_utxos(&*store);
    assert_eq!(memory_set.len(), 2 * TXS);
    let signatures = Signatures::of(&block, &memory_set, &params);
    let items = signatures.items(&block, chain);
    assert_eq!(items.len(), 2 * TXS);
    let leader = Genesis::local_validator_key(0);
    let proposal = Message::Proposal(Proposal::sign(
        &leader,
        chain,
        block.header.height,
        0,
        None,
        block.clone(),
    ))
    .encode();

    let mut meters = Vec::new();
    let mut group = c.benchmark_group("node_block_1000x2in2out");
    group.throughput(Throughput::Elements(TXS as u64));
    let g = &mut group;
    metered(
        g,
        &mut meters,
        "limit_signatures_2x1000",
        || (),
        |()| verify_batch_parallel(black_box(&items), TXS).unwrap(),
    );
    metered(
        g,
        &mut meters,
        "limit_check_block_in_memory_set",
        || (),
        |()| {
            check_block(black_box(&block), &memory_set, &params).unwrap();
        },
    );
    metered(
        g,
        &mut meters,
        "part_signatures_256_chunks",
        || (),
        |()| verify_batch_parallel(black_box(&items), BLOCK_CHUNK).unwrap(),
    );
    metered(
        g,
        &mut meters,
        "part_decode_proposal",
        || (),
        |()| {
            black_box(timecoin_node::wire::decode_consensus(black_box(&proposal)).unwrap());
        },
    );
    metered(
        g,
        &mut meters,
        "part_rules_without_signatures",
        || (),
        |()| {
            check_block_with(black_box(&block), &*store, &params, None, |_| true).unwrap();
        },
    );
    metered(
        g,
        &mut meters,
        "part_commitment_cold",
        || store.utxo_commitment_after(&empty_like(&block)).unwrap(),
        |_| {
            black_box(store.utxo_commitment_after(&block).unwrap());
        },
    );
    // The engine asks for the commitment while validating, so the apply reuses that memo, as here: the
    // factory's sealing leaves it in place.
    metered(
        g,
        &mut meters,
        "part_apply_durable",
        || factory.next_block(&*store, TXS).unwrap(),
        |(block, cert)| store.apply_finalized(&block, &cert).unwrap(),
    );
    group.finish();

    // What a non-leading validator writes to its WAL per height, each entry durable before the vote it
    // records is sent: its Prepare, then its Commit, which the core records as a lock carrying the
    // whole block and the Prepare quorum (so a restarted node can re-propose it); then the prune once
    // the height is final.
    let mut group = c.benchmark_group("node_wal");
    group.throughput(Throughput::Elements(1));
    let keys: Vec<SecretKey> = (0..VALIDATORS).map(Genesis::local_validator_key).collect();
    let (at, hash) = (block.header.height, block.hash());
    let prepare = |k: &SecretKey| Vote::sign(k, chain, VotePhase::Prepare, at, 0, Some(hash));
    let mut signatures: Vec<_> = keys[..3]
        .iter()
        .map(|k| {
            let v = prepare(k);
            (v.voter, v.signature)
        })
        .collect();
    signatures.sort_by_key(|(voter, _)| *voter);
    let voted = WalEntry::Voted(prepare(&keys[0])).encode();
    let locked = WalEntry::Locked {
        commit: Vote::sign(&keys[0], chain, VotePhase::Commit, at, 0, Some(hash)),
        block: block.clone(),
        proof: LockProof { signatures },
    }
    .encode();
    eprintln!("locked Commit WAL entry: {} bytes", locked.len());
    let height = std::cell::Cell::new(store.tip().unwrap().height + 1);
    let g = &mut group;
    metered(
        g,
        &mut meters,
        "prepare_locked_commit_prune_per_height",
        || (),
        |()| {
            store.append_wal(height.get(), &voted).unwrap();
            store.append_wal(height.get(), &locked).unwrap();
            height.set(height.get() + 1);
            store.prune_below(height.get()).unwrap();
        },
    );
    // The prune of the previous iteration's entry is done untimed, before the append.
    metered(
        g,
        &mut meters,
        "append_locked_commit",
        || {
            height.set(height.get() + 1);
            store.prune_below(height.get()).unwrap();
        },
        |()| store.append_wal(height.get(), &locked).unwrap(),
    );
    group.finish();
    for (name, meter) in &meters {
        meter.report(name);
    }
    timecoin_crypto::key_cache::set_enabled(true);
}

/// A node of 4 validators (memory store: nothing below is stored) that has finalized height 1 and
/// validated height 2's proposal, with the messages whose repeats the benchmarks hand it.
struct Repeats {
    node: Node,
    now_ms: u64,
    current: Event,
    past: Event,
    far_future: Event,
}

fn repeats() -> Repeats {
    let factory = BlockFactory::local(VALIDATORS);
    let genesis = factory.genesis().clone();
    let chain = genesis.params.chain_id;
    let set = ValidatorSet::from_genesis(&genesis).unwrap();
    let keys: Vec<SecretKey> = (0..VALIDATORS).map(Genesis::local_validator_key).collect();
    // Not the leader of either height, so both start with a proposal from outside.
    let me = keys
        .iter()
        .position(|k| ![1, 2].iter().any(|h| *set.leader(*h, 0) == k.public_key()))
        .unwrap();
    let others: Vec<&SecretKey> = keys
        .iter()
        .filter(|k| k.public_key() != keys[me].public_key())
        .collect();
    let store = Arc::new(ChainDb::memory(&genesis).unwrap());
    let mut node = validator_node(&store, &genesis, me);
    let now_ms = genesis.timestamp_ms + 10;
    node.handle(now_ms, Event::Start);
    // Connected peers, so the sync bookkeeping a message from another height touches is there.
    for k in &others {
        node.handle(
            now_ms,
            Event::Net(NetEvent::Joined {
                peer: k.public_key().into(),
                masternode: None,
            }),
        );
    }
    let vote = |k: &SecretKey, phase, height, hash| {
        let vote = Vote::sign(k, chain, phase, height, 0, Some(hash));
        consensus_event(k.public_key().into(), &Message::Vote(vote))
    };
    let propose = |node: &mut Node, height| {
        let leader = *set.leader(height, 0);
        let block = proposed_block(&factory, &*store, Vec::new(), leader);
        let hash = block.hash();
        let key = keys.iter().find(|k| k.public_key() == leader).unwrap();
        let proposal = Proposal::sign(key, chain, height, 0, None, block);
        node.handle(
            now_ms,
            consensus_event(leader.into(), &Message::Proposal(proposal)),
        );
        hash
    };

    let first = propose(&mut node, 1);
    for k in &others {
        node.handle(now_ms, vote(k, VotePhase::Prepare, 1, first));
    }
    // Two Commits besides its own decide the height; the third arrives late.
    for k in &others[..2] {
        node.handle(now_ms, vote(k, VotePhase::Commit, 1, first));
    }
    assert_eq!(node.engine().finalized_height(), 1);
    let past = vote(others[2], VotePhase::Commit, 1, first);

    let second = propose(&mut node, 2);
    // One Prepare besides its own: short of the quorum, so repeats change nothing.
    let current = vote(others[0], VotePhase::Prepare, 2, second);
    let far_future = vote(others[0], VotePhase::Prepare, 1_000, second);
    // The first delivery of each is verified and its verdict cached; the benchmarks time repeats.
    for event in [&current, &past, &far_future] {
        node.handle(now_ms, event.clone());
    }
    assert_eq!(node.engine().finalized_height(), 1);
    assert_eq!(node.engine().core().height(), Some(2));
    Repeats {
        node,
        now_ms,
        current,
        past,
        far_future,
    }
}

fn engine_messages(c: &mut Criterion) {
    let mut r = repeats();
    let before = r.node.engine().stats();
    let mut group = c.benchmark_group("node_message");
    group.throughput(Throughput::Elements(1));
    for (name, event) in [
        ("repeat_vote_current_height", r.current.clone()),
        ("repeat_vote_finalized_height", r.past.clone()),
        ("repeat_vote_far_future_height", r.far_future.clone()),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || event.clone(),
                |e| r.node.handle(r.now_ms, e),
                BatchSize::SmallInput,
            )
        });
    }
    // The part of each repeat that is decoding: the vote's canonical decode, most of it turning the
    // voter's key into a curve point (`PublicKey::from_bytes` decompresses and checks it).
    let Event::Net(NetEvent::Message { bytes, .. }) = &r.current else {
        unreachable!("a consensus message")
    };
    group.bench_function("part_decode_vote", |b| {
        b.iter(|| timecoin_node::wire::decode_consensus(black_box(bytes)).unwrap())
    });
    let key = *Genesis::local_validator_key(1).public_key().as_bytes();
    group.bench_function("part_public_key_from_bytes_remembered", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(&key)).unwrap())
    });
    timecoin_crypto::key_cache::set_enabled(false);
    group.bench_function("part_public_key_from_bytes", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(&key)).unwrap())
    });
    group.bench_function("part_decode_vote_new_key", |b| {
        b.iter(|| timecoin_node::wire::decode_consensus(black_box(bytes)).unwrap())
    });
    timecoin_crypto::key_cache::set_enabled(true);
    group.finish();
    let after = r.node.engine().stats();
    // Every timed message was answered from the seen-cache, and none caused a write.
    assert_eq!(
        after.duplicates - before.duplicates,
        after.received - before.received
    );
    assert_eq!(after.persists, before.persists);
    assert_eq!(after.rejected_signature, before.rejected_signature);
}

timecoin_benches::bench_main!(timecoin_benches::config(10, 1, 5); engine_messages, block_parts, engine_block);
