//! TimeCoin's node engine: the host state machine that turns the layers below into a blockchain, and
//! the builder that assembles it.
//!
//! [`Engine`] takes [`Event`]s (a message from a peer as undecoded bytes with the peer's verified
//! identity, a transaction submitted locally, a timer, a peer joining or leaving) and returns
//! [`Effect`]s (send, broadcast, set a timer, answer a request, penalise a peer, report a final block).
//! Inside, it composes the consensus core, the validator registry, the chain store, the WAL and the
//! mempool through their traits, so the daemon and the simulator run this same code and differ only in
//! what is plugged in. [`NodeBuilder`] builds one from a [`NodeConfig`]; the store, the mempool, the
//! network and the signer are each swapped with one call (`examples/node_builder.rs` shows every swap).
//!
//! - The door: canonical decoding (a proposal's block only as a `WellFormedBlock`), a bounded seen-cache,
//!   signatures in batches on rayon against the validator set of the message's own height, and a penalty
//!   for the sender of anything malformed or invalid. Nothing reaches the core unverified.
//! - The application: the leader proposes a mempool template with the header's UTXO commitment; a
//!   validator accepts a block that extends the tip, passes the chain rules (skipping signatures its
//!   mempool already verified) and commits to the right UTXO set; a decided block is applied durably
//!   before it is reported, then the mempool and the registry take it.
//! - Block production: a height starts once transactions wait or a peer works on it, or as an empty
//!   heartbeat block after [`EngineConfig::empty_block_interval`] (600 s by default).
//! - Sync: certified blocks are fetched from peers that are ahead, each certificate checked against the
//!   set of its height.
//!
//! # Examples
//! A lone validator (it holds all the weight) finalizes a transfer the moment it is submitted:
//! ```
//! use std::sync::Arc;
//! use timecoin_crypto::Address;
//! use timecoin_node::{Effect, Event, NodeBuilder, NodeConfig};
//! use timecoin_storage::ChainDb;
//! use timecoin_types::{Amount, Genesis, TxBuilder};
//!
//! let genesis = Genesis::local(1);
//! let key = Genesis::local_validator_key(0);
//! let mut node = NodeBuilder::new(NodeConfig::new(&genesis), genesis.clone())
//!     .chain_db(ChainDb::memory(&genesis)?)
//!     .signer(Arc::new(Genesis::local_validator_key(0)))
//!     .build()?;
//! node.handle(0, Event::Start);
//!
//! let (coin, out) = genesis.utxos()[0];
//! let bob = Address::from_public_key(&Genesis::local_validator_key(1).public_key());
//! let five = Amount::from_time(5).unwrap();
//! let tx = TxBuilder::new(genesis.params.chain_id)
//!     .input(coin, out.amount, &key)
//!     .output(bob, five)
//!     .output(out.address, Amount::from_sat(out.amount.as_sat() - five.as_sat() - 1_000))
//!     .sign();
//! let effects = node.handle(1_000, Event::Submit { request: 1, tx });
//! assert!(effects.iter().any(|e| matches!(e, Effect::Finalized { height: 1, transactions: 1, .. })));
//! assert_eq!(node.engine().finalized_height(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

pub mod bootstrap;
mod builder;
mod config;
mod engine;
mod error;
pub mod metrics;
pub mod rpc;
pub mod runner;
pub mod statesync;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod wire;

pub use builder::{Disconnected, Node, NodeBuilder, StoreView};
pub use config::{EngineConfig, NodeConfig};
pub use engine::{
    Door, Effect, Engine, EngineStats, Event, MAX_ORPHANS, NodeStatus, ORPHAN_HEIGHTS, PRUNE_ROUND,
    Parts, RequestId, SyncStatus, TimerId, utxo_total,
};
pub use error::NodeError;
