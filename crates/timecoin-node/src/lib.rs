//! TimeCoin's node engine: the host state machine that composes consensus, the mempool, storage and
//! the network boundary into a blockchain, and the builder that assembles it.
//!
//! Not documented yet.

#![forbid(unsafe_code)]

mod builder;
mod config;
mod engine;
mod error;
pub mod wire;

pub use builder::{Disconnected, Node, NodeBuilder, StoreView};
pub use config::{EngineConfig, NodeConfig};
pub use engine::{
    Door, Effect, Engine, EngineStats, Event, NodeStatus, Parts, RequestId, SyncStatus, TimerId,
};
pub use error::NodeError;
