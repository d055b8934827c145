//! Deterministic multi-node simulator for TimeCoin tests: a seeded discrete-event runtime that runs the
//! real consensus core on many nodes over a simulated network with latency, loss, duplication, reordering,
//! partitions, crashes and restarts.
//!
//! # Examples
//! ```
//! use timecoin_sim::runtime::{Context, NetworkConfig, NodeId, Process, Runtime};
//!
//! struct Echo(u32);
//! impl Process for Echo {
//!     type Msg = u32;
//!     fn on_start(&mut self, ctx: &mut Context<u32>) { if ctx.me() == 0 { ctx.broadcast(1) } }
//!     fn on_message(&mut self, _: NodeId, m: u32, _: &mut Context<u32>) { self.0 += m }
//!     fn on_timer(&mut self, _: u64, _: &mut Context<u32>) {}
//!     fn trace_bytes(m: &u32) -> Vec<u8> { m.to_le_bytes().to_vec() }
//! }
//!
//! let mut rt = Runtime::new(7, vec![Echo(0), Echo(0), Echo(0)], NetworkConfig::default());
//! rt.run_until(1_000, |_| Ok::<(), ()>(())).unwrap();
//! assert_eq!(rt.nodes()[1].0, 1);
//! ```
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

pub mod runtime;
