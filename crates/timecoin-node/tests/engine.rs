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

#[test]
fn a_restarted_engine_resumes_from_its_store() {
    let genesis = Genesis::local(1);
    let engine_store = Arc::new(timecoin_storage::MemoryEngine::new());
    let build = || {
        let mut config = NodeConfig::new(&genesis);
        config.engine.empty_block_interval = Duration::ZERO;
        let db = ChainDb::open(
            engine_store.clone(),
            &timecoin_storage::StorageConfig::memory(),
            &genesis,
        )
        .unwrap();
        NodeBuilder::new(config, genesis.clone())
            .chain_db(db)
            .signer(Arc::new(Genesis::local_validator_key(0)))
            .build()
            .unwrap()
    };
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
