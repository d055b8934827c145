//! Deterministic multi-node simulator for TimeCoin tests: many validators, each running the real consensus
//! core with a UTXO application and an in-memory store, on one thread over a seeded simulated network
//! with latency, loss, duplication, reordering, partitions, crashes, restarts and Byzantine peers, with
//! the safety invariants checked after every event.
//!
//! - [`runtime`]: the discrete-event engine (simulated time, network, timers, crash/restart, trace digest).
//! - [`SimNode`]: one validator — [`timecoin_consensus::Core`], the [`Ledger`] application (blocks of
//!   signed transfers, judged with [`timecoin_types::check_block`]), a [`DurableState`] store (WAL and
//!   certified blocks, written before acted on), signature checks before the core, and block sync.
//! - [`byzantine`]: Byzantine behaviours as named [`Strategy`] types.
//! - [`InvariantChecker`]: agreement, certificate validity, chain prefixes, no honest equivocation.
//! - [`Simulation`]: the driver scenarios use (faults, liveness deadlines, automatic restarts).
//!
//! See `docs/SIMULATOR.md` for the scenarios and how to replay a failing seed.
//!
//! # Examples
//! Four validators finalize three heights over a lossy network, then the run is replayed exactly:
//! ```
//! use timecoin_sim::{SimConfig, Simulation};
//! use timecoin_sim::runtime::NetworkConfig;
//!
//! let run = |seed| -> Result<[u8; 32], timecoin_sim::SimError> {
//!     let mut config = SimConfig::new(seed, 4);
//!     config.network = NetworkConfig { loss_ppm: 100_000, ..NetworkConfig::default() };
//!     let mut sim = Simulation::new(config)?;
//!     // Fails with `SimError::Violation` the moment an invariant breaks, `Stalled` at the deadline.
//!     sim.run_until_height(3, 60_000)?;
//!     let (block, certificate) = sim.node(0).unwrap().durable().finalized(3).unwrap();
//!     assert_eq!(certificate.block_hash, block.hash());
//!     Ok(sim.trace_digest())
//! };
//! assert_eq!(run(7)?, run(7)?);
//! # Ok::<(), timecoin_sim::SimError>(())
//! ```
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

pub mod byzantine;
mod checker;
mod error;
mod node;
pub mod runtime;
mod simulation;

pub use byzantine::{Behavior, Strategy};
pub use checker::InvariantChecker;
pub use error::{SimError, Violation};
pub use node::{
    DurableState, HostTiming, NodeSpec, NodeStats, Packet, SimNode, StateSyncReport, Wallet,
};
pub use simulation::{FAST_MAX_TIMEOUT, LIVENESS_BOUND_MS, SimConfig, Simulation};
