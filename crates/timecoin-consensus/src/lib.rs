//! TimeCoin consensus: a sans-I/O Tendermint-class BFT core (PrePrepare, Prepare, Commit, Finalized),
//! with weighted validator sets, commit certificates, equivocation evidence and fork detection for sync.
//!
//! The [`Core`] is a deterministic state machine: the host feeds it [`Input`]s (verified messages,
//! timer firings, the application's answers) and executes the [`Output`]s it returns, in order
//! (persist, broadcast, schedule a timer, ask the application, apply a decided block). See
//! `docs/CONSENSUS_API.md` for the contract, and `examples/embed_consensus.rs` for a whole toy network.
//!
//! Layers, after Malachite: [`round`] is Algorithm 1 of "The latest gossip on BFT consensus" as a pure
//! function (each arm cites its line), the vote keeper counts weight per (view, phase, value) and catches
//! equivocation, a height's driver turns its inputs into round events and signs and persists what the
//! rules say to, and the [`Core`] routes each input to the current height's driver or buffers it for a
//! later height.
//!
//! # Examples
//! One validator holding all the weight decides a block on its own:
//! ```
//! use std::sync::Arc;
//! use timecoin_consensus::{Config, Core, Input, Output, ValidatorSet};
//! use timecoin_types::{Block, BlockHeader, BlockHash, Genesis};
//!
//! let genesis = Genesis::local(1);
//! let me = Genesis::local_validator_key(0).public_key();
//! let validators = Arc::new(ValidatorSet::from_genesis(&genesis).unwrap());
//! let mut core = Core::new(Config::new(genesis.params.chain_id), Genesis::local_validator_key(0));
//!
//! let mut pending = vec![Input::StartHeight { height: 1, validators }];
//! let mut decided = None;
//! while let Some(input) = pending.pop() {
//!     for output in core.handle(input) {
//!         match output {
//!             // The application builds a block on its tip.
//!             Output::RequestProposal { height, view } => {
//!                 let mut header = genesis.block().header.clone();
//!                 header.height = height;
//!                 header.view = view;
//!                 header.parent = genesis.block().hash();
//!                 header.proposer = me;
//!                 // Sealing writes the body's commitments into the header.
//!                 let block = Block { header, transactions: vec![] }.seal();
//!                 pending.push(Input::ProposalValue { height, view, block });
//!             }
//!             Output::Decided { block, certificate } => decided = Some((block, certificate)),
//!             // A real host persists, broadcasts and schedules here.
//!             _ => {}
//!         }
//!     }
//! }
//! let (block, certificate) = decided.unwrap();
//! assert_eq!(block.header.height, 1);
//! assert_eq!(certificate.block_hash, block.hash());
//! ```
//!
//! ## Feature flags
//! - `fault-injection` (off): adds `Config::faults`, switches that make the core unsafe on purpose, so a
//!   simulator's negative-control test can show that its invariant checker catches the violation. Never
//!   enable it in a node.

#![forbid(unsafe_code)]

mod buffer;
mod config;
mod core;
mod error;
mod host;
mod io;
mod message;
mod registry;
pub mod round;
pub mod sync;
mod validators;
mod verified;
mod votes;
mod wal;

pub use config::Config;
#[cfg(feature = "fault-injection")]
pub use config::Faults;
pub use core::{Core, MAX_PINNED_VIEWS};
pub use error::ConsensusError;
pub use host::{Host, dispatch};
pub use io::{Input, Output, Timeout};
pub use message::{Evidence, Message, ProposalDigest};
pub use registry::{REGISTRY_HISTORY, RegistrySnapshot, RegistryUpdate, ValidatorRegistry};
pub use round::{Step, TimeoutKind, ValueAt};
pub use sync::{CertifiedBlock, Resolution, SafetyViolation, resolve_height};
pub use validators::{Validator, ValidatorSet};
pub use verified::{Signer, Verified};
pub use wal::WalEntry;
