//! Every swap `NodeBuilder` offers, each with one call: the store (a `ChainDb` on sled in a temporary
//! directory instead of the configured default), the mempool (a `TxPool` with tighter limits), the
//! network (a `Network` that counts what the node sends) and the signer (a signer that logs each
//! signature before delegating to a key). Then the node finalizes a transfer.
//!
//! Run: `cargo run -p timecoin-examples --example node_builder`
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use timecoin_consensus::Signer;
use timecoin_crypto::{Address, ChainId, PublicKey, SecretKey, SigDomain, Signature};
use timecoin_mempool::{Config as MempoolConfig, TxPool};
use timecoin_net::{Channel, NetError, Network, PeerId};
use timecoin_node::{Effect, Event, NodeBuilder, NodeConfig, StoreView};
use timecoin_storage::{ChainDb, ChainStore, SledEngine, StorageConfig};
use timecoin_types::{Amount, Genesis, TxBuilder};

/// A network that sends nothing anywhere and counts what it was given.
#[derive(Default)]
struct CountingNetwork {
    messages: AtomicU64,
}

impl Network for CountingNetwork {
    fn send(&self, _: &PeerId, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        self.messages.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn broadcast(&self, channel: Channel, message: Bytes) -> Result<(), NetError> {
        channel.check_len(message.len())?;
        self.messages.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A signer that counts signatures; a remote signer or an HSM would sit here.
struct CountingSigner {
    key: SecretKey,
    signed: AtomicU64,
}

impl Signer for CountingSigner {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
    fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature {
        self.signed.fetch_add(1, Ordering::Relaxed);
        self.key.sign(domain, chain, message)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let genesis = Genesis::local(1);
    let config = NodeConfig::new(&genesis);

    // Store: sled in a temporary directory.
    let dir = std::env::temp_dir().join(format!("timecoin-node-builder-{}", std::process::id()));
    let sled = SledEngine::open(&dir, &StorageConfig::default())?;
    let db = Arc::new(ChainDb::open(sled, &StorageConfig::default(), &genesis)?);
    // Mempool: a pool over that store, holding at most 100 transactions.
    let mempool_config = MempoolConfig {
        max_transactions: 100,
        ..MempoolConfig::default()
    };
    let chain: Arc<dyn ChainStore> = db.clone();
    let pool = Arc::new(TxPool::new(
        mempool_config,
        genesis.params.clone(),
        StoreView(chain.clone()),
    ));
    let network = Arc::new(CountingNetwork::default());
    let signer = Arc::new(CountingSigner {
        key: Genesis::local_validator_key(0),
        signed: AtomicU64::new(0),
    });

    let mut node = NodeBuilder::new(config, genesis.clone())
        .store(chain, db.clone())
        .mempool(pool)
        .network(network.clone())
        .signer(signer.clone())
        .build()?;
    node.handle(0, Event::Start);

    let key = Genesis::local_validator_key(0);
    let (coin, out) = *genesis.utxos().first().ok_or("genesis has no coins")?;
    let bob = Address::from_public_key(&Genesis::local_validator_key(1).public_key());
    let five = Amount::from_time(5).ok_or("amount")?;
    let tx = TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(bob, five)
        .output(
            out.address,
            Amount::from_sat(out.amount.as_sat() - five.as_sat() - 1_000),
        )
        .sign();
    let effects = node.handle(1_000, Event::Submit { request: 1, tx });
    let finalized = effects
        .iter()
        .any(|e| matches!(e, Effect::Finalized { height: 1, .. }));
    println!(
        "finalized height 1 on sled: {finalized}; the node signed {} messages and sent {}",
        signer.signed.load(Ordering::Relaxed),
        network.messages.load(Ordering::Relaxed)
    );
    drop(node);
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    if !finalized {
        return Err("the transfer was not finalized".into());
    }
    Ok(())
}
