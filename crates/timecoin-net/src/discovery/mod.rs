//! Peer discovery: how a node learns where other nodes listen, and whom to dial next.
//!
//! Pure, synchronous logic; the network's tasks own the sockets, the files' timing and the clock, and
//! call in:
//! - [`AddressRecord`]: a node's signed address, and [`RecordRules`] (chain, freshness, routability)
//!   that turn it into a [`VerifiedRecord`].
//!
//! Time is always a Unix-milliseconds argument and randomness an RNG argument, so a seeded test (or the
//! simulator) replays the same choices.

mod record;

pub use record::{
    AddressRecord, DEFAULT_MAX_RECORD_AGE_MS, DEFAULT_MAX_RECORD_SKEW_MS, RecordRules,
    VerifiedRecord,
};
