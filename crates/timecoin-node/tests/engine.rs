//! The engine on its own: one validator holding all the weight, driven event by event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use timecoin_crypto::Address;
use timecoin_node::{Effect, Event, Node, NodeBuilder, NodeConfig, TimerId};
use timecoin_storage::ChainDb;
use timecoin_types::{Amount, Genesis, Transaction, TxBuilder};

fn node(interval: Duration) -> (Node, Genesis) {
    let genesis = Genesis::local(1);
    let mut config = NodeConfig::new(&genesis);
    config.engine.empty_block_interval = interval;
    let node = NodeBuilder::new(config, genesis.clone())
        .chain_db(ChainDb::memory(&genesis).unwrap())
        .signer(Arc::new(Genesis::local_validator_key(0)))
        .build()
        .unwrap();
    (node, genesis)
}

fn transfer(genesis: &Genesis) -> Transaction {
    let key = Genesis::local_validator_key(0);
    let (coin, out) = genesis.utxos()[0];
    let to = Address::from_public_key(&Genesis::local_validator_key(9).public_key());
    let pay = Amount::from_time(5).unwrap();
    TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(to, pay)
        .output(
            out.address,
            Amount::from_sat(out.amount.as_sat() - pay.as_sat() - 1_000),
        )
        .sign()
}

fn finalized(effects: &[Effect]) -> Vec<(u64, usize)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Finalized {
                height,
                transactions,
                ..
            } => Some((*height, *transactions)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lone_validator_waits_for_transactions_then_finalizes_them_at_once() {
    let (mut node, genesis) = node(Duration::from_secs(600));
    let effects = node.handle(1_000, Event::Start);
    assert!(finalized(&effects).is_empty(), "nothing to propose yet");
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: TimerId::Heartbeat,
            after
        } if *after == Duration::from_secs(600)
    )));
    let tx = transfer(&genesis);
    let txid = tx.txid();
    let effects = node.handle(2_000, Event::Submit { request: 7, tx });
    assert!(effects.contains(&Effect::Reply {
        request: 7,
        result: Ok(txid)
    }));
    assert_eq!(finalized(&effects), vec![(1, 1)]);
    let engine = node.engine();
    assert_eq!(engine.finalized_height(), 1);
    assert!(
        engine.mempool().is_empty(),
        "the pool forgot what was final"
    );
    let stored = engine.store().block(1).unwrap().unwrap();
    assert_eq!(stored.block.transactions[0].txid(), txid);
    // Submitting the same coin again is refused: it is spent now.
    let again = node.handle(
        3_000,
        Event::Submit {
            request: 8,
            tx: transfer(&genesis),
        },
    );
    assert!(
        matches!(
            &again[..],
            [Effect::Reply {
                request: 8,
                result: Err(_)
            }]
        ),
        "{again:?}"
    );
}

#[test]
fn with_an_empty_pool_the_heartbeat_makes_an_empty_block() {
    let (mut node, _) = node(Duration::from_secs(600));
    node.handle(0, Event::Start);
    // Too early: the timer is re-armed for the rest.
    let early = node.handle(100_000, Event::Timer(TimerId::Heartbeat));
    assert!(finalized(&early).is_empty());
    let effects = node.handle(600_000, Event::Timer(TimerId::Heartbeat));
    assert_eq!(finalized(&effects), vec![(1, 0)]);
}

/// Validator 0 with heartbeats every time, over a `ChainDb` on `disk` (kept across restarts).
fn on_disk(genesis: &Genesis, disk: &Arc<timecoin_storage::MemoryEngine>) -> Node {
    let mut config = NodeConfig::new(genesis);
    config.engine.empty_block_interval = Duration::ZERO;
    let db = ChainDb::open(
        disk.clone(),
        &timecoin_storage::StorageConfig::memory(),
        genesis,
    )
    .unwrap();
    NodeBuilder::new(config, genesis.clone())
        .chain_db(db)
        .signer(Arc::new(Genesis::local_validator_key(0)))
        .build()
        .unwrap()
}

#[test]
fn a_restarted_engine_resumes_from_its_store() {
    let genesis = Genesis::local(1);
    let engine_store = Arc::new(timecoin_storage::MemoryEngine::new());
    let build = || on_disk(&genesis, &engine_store);
    let mut first = build();
    assert!(finalized(&first.handle(0, Event::Start)).is_empty());
    let effects = first.handle(0, Event::Timer(TimerId::Heartbeat));
    assert_eq!(
        finalized(&effects),
        vec![(1, 0)],
        "an interval of 0: the first heartbeat"
    );
    drop(first);
    let mut second = build();
    assert_eq!(second.engine().finalized_height(), 1);
    second.handle(10, Event::Start);
    let effects = second.handle(10, Event::Timer(TimerId::Heartbeat));
    assert_eq!(finalized(&effects), vec![(2, 0)]);
}

/// A lone validator's chain in which key 4 registers as a masternode, restarted on the same disk:
/// the registry and the reward pool come back from the records written with the blocks (no block is
/// replayed) and equal what a replay of the chain gives.
#[test]
fn a_restart_reads_the_registry_and_pool_from_their_records_and_matches_a_replay() {
    use timecoin_storage::{KvEngine, WriteBatch};
    use timecoin_types::{MasternodeRegistration, OutPoint, Tier, TxKind};

    let genesis = Genesis::local(1);
    let chain = genesis.params.chain_id;
    let disk = Arc::new(timecoin_storage::MemoryEngine::new());
    let build = || on_disk(&genesis, &disk);
    let mut node = build();
    let mut now = 0;
    node.handle(now, Event::Start);
    let owner = Genesis::local_validator_key(0);
    let (coin, out) = genesis.utxos()[0];
    let collateral = Tier::Bronze.collateral();
    let fee = Amount::from_sat(1_000);
    let change = Amount::from_sat(out.amount.as_sat() - collateral.as_sat() - fee.as_sat());
    let lock = TxBuilder::new(chain)
        .input(coin, out.amount, &owner)
        .output(out.address, collateral)
        .output(out.address, change)
        .sign();
    let register = TxBuilder::new(chain)
        .input(
            OutPoint {
                txid: lock.txid(),
                vout: 1,
            },
            change,
            &owner,
        )
        .output(
            out.address,
            Amount::from_sat(change.as_sat() - fee.as_sat()),
        )
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            // Free (weight 1), so validator 0 (Bronze, 10) keeps more than 2/3 and the chain goes on.
            tier: Tier::Free,
            collateral: None,
            operator_key: Genesis::local_validator_key(4).public_key(),
        }))
        .sign();
    for (request, tx) in [lock, register].into_iter().enumerate() {
        now += 10;
        let effects = node.handle(
            now,
            Event::Submit {
                request: request as u64,
                tx,
            },
        );
        assert_eq!(
            finalized(&effects).len(),
            1,
            "one block per transaction: {effects:?}"
        );
    }
    // Empty heartbeat blocks past the delay and past a reward payout. Key 4 leads some views and is not
    // running, so the consensus timers the engine asks for are fired too (view changes).
    let mut timers: Vec<(u64, TimerId)> = vec![(now, TimerId::Heartbeat)];
    for _ in 0..10_000 {
        if node.engine().finalized_height() >= 15 {
            break;
        }
        timers.sort();
        let (due, timer) = timers.remove(0);
        now = now.max(due);
        for effect in node.handle(now, Event::Timer(timer)) {
            if let Effect::SetTimer { timer, after } = effect {
                timers.push((now + after.as_millis() as u64, timer));
            }
        }
    }
    assert_eq!(node.engine().failure(), None);
    assert!(
        node.engine().finalized_height() >= 15,
        "heartbeats finalize"
    );
    let key = Genesis::local_validator_key(4).public_key();
    let tip = node.engine().finalized_height();
    let answers = |n: &Node| -> Vec<_> {
        (0..=tip + 3)
            .map(|h| n.engine().registry().set_for(h))
            .collect()
    };
    assert!(node.engine().registry().current().contains(&key));
    let live = answers(&node);
    let live_tip = (node.engine().status().height, node.engine().status().tip);
    drop(node);

    let resumed = build();
    assert_eq!(
        resumed.engine().stats().replayed_blocks,
        0,
        "nothing replayed"
    );
    assert_eq!(answers(&resumed), live);
    let status = resumed.engine().status();
    assert_eq!((status.height, status.tip), live_tip);
    let resumed_pool = resumed.engine().reward_pool();
    assert!(resumed_pool.as_sat() > 0, "fees and subsidies accrued");
    drop(resumed);

    // Without the records (a store written before they existed), the chain is replayed to the same state.
    let mut batch = WriteBatch::default();
    for name in ["node/reward-pool", "node/registry"] {
        batch.delete([b"mx".as_slice(), name.as_bytes()].concat());
    }
    disk.commit(batch).unwrap();
    let replayed = build();
    assert_eq!(replayed.engine().stats().replayed_blocks, tip);
    assert_eq!(answers(&replayed), live);
    assert_eq!(replayed.engine().reward_pool(), resumed_pool);
}

/// Validator 0 of four, with the other three as peers.
fn member_of_four() -> (Node, Genesis, Vec<timecoin_net::PeerId>) {
    let genesis = Genesis::local(4);
    let mut config = NodeConfig::new(&genesis);
    config.engine.empty_block_interval = Duration::ZERO;
    let mut node = NodeBuilder::new(config, genesis.clone())
        .chain_db(ChainDb::memory(&genesis).unwrap())
        .signer(Arc::new(Genesis::local_validator_key(0)))
        .build()
        .unwrap();
    let peers: Vec<timecoin_net::PeerId> = (1..4)
        .map(|i| timecoin_net::PeerId::from(Genesis::local_validator_key(i).public_key()))
        .collect();
    for peer in &peers {
        node.handle(
            0,
            Event::Net(timecoin_net::NetEvent::Joined {
                peer: *peer,
                masternode: None,
            }),
        );
    }
    node.handle(0, Event::Start);
    (node, genesis, peers)
}

fn message(from: timecoin_net::PeerId, channel: timecoin_net::Channel, bytes: Vec<u8>) -> Event {
    Event::Net(timecoin_net::NetEvent::Message {
        from,
        channel,
        bytes: bytes.into(),
    })
}

fn penalties(effects: &[Effect]) -> Vec<timecoin_net::Misbehavior> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Penalize { misbehavior, .. } => Some(*misbehavior),
            _ => None,
        })
        .collect()
}

#[test]
fn the_door_penalizes_garbage_and_forgeries_and_verifies_a_repeat_only_once() {
    use timecoin_consensus::Message;
    use timecoin_net::{Channel, Misbehavior};
    use timecoin_types::{VotePhase, Wire};
    let (mut node, genesis, peers) = member_of_four();
    let chain = genesis.params.chain_id;
    // Bytes that do not decode.
    let effects = node.handle(10, message(peers[0], Channel::Consensus, vec![0xff; 40]));
    assert_eq!(penalties(&effects), vec![Misbehavior::Malformed]);
    // A vote in validator 2's name signed by validator 1's key.
    let mut forged = timecoin_types::Vote::sign(
        &Genesis::local_validator_key(1),
        chain,
        VotePhase::Prepare,
        1,
        0,
        None,
    );
    forged.voter = Genesis::local_validator_key(2).public_key();
    let bytes = Message::Vote(forged).encode();
    let effects = node.handle(20, message(peers[0], Channel::Consensus, bytes.clone()));
    assert_eq!(penalties(&effects), vec![Misbehavior::Invalid]);
    // The same forgery again: answered from the seen-cache, and not charged twice.
    let effects = node.handle(30, message(peers[0], Channel::Consensus, bytes));
    assert!(penalties(&effects).is_empty());
    // A genuine vote, twice: accepted, the second time without a second verification.
    let genuine = Message::Vote(timecoin_types::Vote::sign(
        &Genesis::local_validator_key(1),
        chain,
        VotePhase::Prepare,
        1,
        0,
        None,
    ))
    .encode();
    node.handle(40, message(peers[0], Channel::Consensus, genuine.clone()));
    node.handle(50, message(peers[0], Channel::Consensus, genuine));
    let stats = node.engine().stats();
    assert_eq!(stats.malformed, 1);
    assert_eq!(stats.rejected_signature, 2);
    assert_eq!(stats.duplicates, 2, "one repeat of each");
    // A transaction that does not decode, on its own channel.
    let effects = node.handle(60, message(peers[1], Channel::Transactions, vec![1, 2, 3]));
    assert_eq!(penalties(&effects), vec![Misbehavior::Malformed]);
}

#[test]
fn sync_penalizes_a_falling_height_and_a_block_whose_certificate_does_not_verify() {
    use timecoin_consensus::CertifiedBlock;
    use timecoin_net::{Channel, Misbehavior};
    use timecoin_node::wire::SyncMessage;
    use timecoin_types::{Block, BlockHeader, CommitCertificate, Hash, Wire};
    let (mut node, genesis, peers) = member_of_four();
    let status = |height| SyncMessage::Status { height }.encode();
    assert!(penalties(&node.handle(10, message(peers[2], Channel::Sync, status(5)))).is_empty());
    let effects = node.handle(20, message(peers[2], Channel::Sync, status(3)));
    assert_eq!(penalties(&effects), vec![Misbehavior::HeightRegressed]);
    // A block for height 1 on our tip, with a certificate nobody signed.
    let block = Block {
        header: BlockHeader {
            chain_id: genesis.params.chain_id,
            height: 1,
            view: 0,
            parent: genesis.block().hash(),
            timestamp_ms: 1,
            proposer: Genesis::local_validator_key(1).public_key(),
            tx_root: Hash::ZERO,
            witness_root: Hash::ZERO,
            utxo_commitment: genesis.utxo_hash().checksum(),
            validators_hash: Hash::ZERO,
        },
        transactions: Vec::new(),
    }
    .seal();
    let certified = CertifiedBlock {
        certificate: CommitCertificate {
            height: 1,
            view: 0,
            block_hash: block.hash(),
            signatures: Vec::new(),
        },
        block,
    };
    let bytes = SyncMessage::Block(certified).encode();
    let effects = node.handle(30, message(peers[1], Channel::Sync, bytes));
    assert_eq!(penalties(&effects), vec![Misbehavior::Invalid]);
    assert_eq!(node.engine().finalized_height(), 0);
    assert_eq!(node.engine().stats().rejected_sync, 1);
    // A peer reported height 5 while we are at 0: the status says so.
    assert_eq!(
        node.engine().status().sync,
        timecoin_node::SyncStatus::Syncing { target: 5 }
    );
}

/// A transaction gossiped before the block that creates its input is final here is not lost: the
/// network hands it over once, so the engine holds it and admits it once the block is applied (a
/// leader one block behind once left such a transaction waiting for its 1 s heartbeat).
#[test]
fn a_gossiped_transaction_whose_input_is_not_final_here_yet_is_held_then_admitted() {
    use timecoin_consensus::CertifiedBlock;
    use timecoin_net::Channel;
    use timecoin_node::wire::SyncMessage;
    use timecoin_storage::ChainStore;
    use timecoin_storage::testing::BlockFactory;
    use timecoin_types::{OutPoint, Wire};
    let (mut node, genesis, peers) = member_of_four();
    let factory = BlockFactory::local(4);
    assert_eq!(factory.genesis(), &genesis);
    // Block 1, final elsewhere: a transfer of genesis coin 0.
    let elsewhere = ChainDb::memory(&genesis).unwrap();
    let parent = factory.transfer(&[genesis.utxos()[0]], 2).unwrap();
    let (block, certificate) = factory
        .seal_block(&elsewhere, vec![parent.clone()])
        .unwrap();
    elsewhere.apply_finalized(&block, &certificate).unwrap();
    // Its child arrives first.
    let output = OutPoint {
        txid: parent.txid(),
        vout: 0,
    };
    let child = factory.transfer(&[(output, parent.outputs[0])], 1).unwrap();
    node.handle(10, message(peers[0], Channel::Transactions, child.encode()));
    assert_eq!(node.engine().mempool().len(), 0);
    // Block 1 arrives by sync; once it is applied the child is admitted.
    let status = SyncMessage::Status { height: 1 }.encode();
    node.handle(20, message(peers[1], Channel::Sync, status));
    let certified = SyncMessage::Block(CertifiedBlock { block, certificate });
    node.handle(30, message(peers[1], Channel::Sync, certified.encode()));
    assert_eq!(node.engine().finalized_height(), 1);
    assert_eq!(node.engine().stats().orphans_admitted, 1);
    assert!(node.engine().mempool().contains(&child.txid()));
}

/// Transactions that arrive together are admitted as one signature batch, with the outcome of handling
/// them one by one: a repeat admitted once, a forged signature refused, garbage penalised, a local
/// submission answered.
#[test]
fn transactions_arriving_together_are_admitted_in_one_batch_as_if_one_by_one() {
    use timecoin_net::{Channel, Misbehavior};
    use timecoin_storage::testing::BlockFactory;
    use timecoin_types::Wire;
    let factory = BlockFactory::local(4);
    let (_, genesis, peers) = member_of_four();
    let coins = genesis.utxos();
    let a = factory.transfer(&[coins[0]], 2).unwrap();
    let mut forged = factory.transfer(&[coins[1]], 2).unwrap();
    // A well-formed signature, over another transaction's input.
    forged.inputs[0].signature = a.inputs[0].signature;
    let c = factory.transfer(&[coins[2]], 2).unwrap();
    let events = || {
        vec![
            message(peers[0], Channel::Transactions, a.encode()),
            message(peers[1], Channel::Transactions, a.encode()),
            message(peers[2], Channel::Transactions, forged.encode()),
            message(peers[0], Channel::Transactions, vec![0xff; 40]),
            Event::Submit {
                request: 9,
                tx: c.clone(),
            },
        ]
    };
    // The node hands relays to its network; what it admitted is what it relays.
    let outcome = |node: &Node, effects: &[Effect]| {
        let pool = node.engine().mempool();
        (
            pool.contains(&a.txid()),
            pool.contains(&forged.txid()),
            pool.contains(&c.txid()),
            penalties(effects),
            effects.contains(&Effect::Reply {
                request: 9,
                result: Ok(c.txid()),
            }),
            node.engine().stats().txs_received,
            node.engine().stats().txs_admitted,
        )
    };
    let (mut batched, _, _) = member_of_four();
    let effects = batched.handle_batch(10, events());
    let together = outcome(&batched, &effects);
    assert_eq!(
        together,
        (true, false, true, vec![Misbehavior::Malformed], true, 5, 2)
    );
    let (mut single, _, _) = member_of_four();
    let mut effects = Vec::new();
    for event in events() {
        effects.extend(single.handle(10, event));
    }
    assert_eq!(outcome(&single, &effects), together);
}
