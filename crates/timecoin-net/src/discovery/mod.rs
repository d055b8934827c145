//! Peer discovery: how a node learns where other nodes listen, and whom to dial next.
//!
//! Pure, synchronous logic; the network's tasks own the sockets, the files' timing and the clock, and
//! call in:
//! - [`AddressRecord`]: a node's signed address, and [`RecordRules`] (chain, freshness, routability)
//!   that turn it into a [`VerifiedRecord`];
//! - [`AddressMessage`]: the gossip (`GetAddresses`, `Addresses`), bounded per message;
//! - [`AddressBook`]: verified records, one per node key, bounded, never echoed to their source, saved
//!   atomically and loaded tolerantly;
//! - [`DialSchedule`]: whom to dial next, with exponential backoff per address and seeds always retried.
//!
//! Time is always a Unix-milliseconds argument and randomness an RNG argument, so a seeded test (or the
//! simulator) replays the same choices.

mod book;
mod dialer;
mod message;
mod record;
#[cfg(test)]
mod test_nodes;

pub use book::{
    AddressBook, BanCheck, Insertion, MAX_BOOK_ENTRIES, MAX_BOOK_FILE_BYTES,
    MAX_ENTRIES_PER_SOURCE, MAX_SEEDS, write_file,
};
pub use dialer::{
    DIAL_ATTEMPT_GRACE_MS, DIAL_BACKOFF_BASE_MS, DIAL_BACKOFF_CAP_MS, DialCandidate, DialSchedule,
    MAX_DIAL_STATES, backoff_ms,
};
pub use message::{AddressMessage, MAX_ADDRESS_MESSAGE_BYTES, MAX_ADDRESSES_PER_MESSAGE};
pub use record::{
    AddressRecord, DEFAULT_MAX_RECORD_AGE_MS, DEFAULT_MAX_RECORD_SKEW_MS, RecordRules,
    VerifiedRecord,
};
