//! Made-up nodes for the discovery tests: deterministic keys, public addresses and no bans.

use std::net::SocketAddr;

use timecoin_crypto::SecretKey;

use crate::PeerId;
use crate::discovery::BanCheck;

/// The current time in the tests, as Unix milliseconds.
pub(crate) const NOW: u64 = 1_800_000_000_000;

/// A ban check that bans nothing.
pub(crate) fn no_bans() -> impl BanCheck {
    |_: Option<&PeerId>, _: &SocketAddr| false
}

/// Node `n`'s key.
pub(crate) fn key(n: u16) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..2].copy_from_slice(&n.to_le_bytes());
    seed[31] = 1;
    SecretKey::from_seed(&seed)
}

/// Node `n`'s id.
pub(crate) fn id(n: u16) -> PeerId {
    PeerId::from(key(n).public_key())
}

/// Node `n`'s public address.
pub(crate) fn addr(n: u16) -> SocketAddr {
    let [hi, lo] = n.to_be_bytes();
    SocketAddr::from(([8, 1, hi, lo], 24_100))
}
