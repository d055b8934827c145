//! How full the pool is: transactions and bytes in one atomic word.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the word that hold the transaction count; the rest hold bytes.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Transactions and bytes pooled, packed as `bytes << 24 | count` so one compare-and-swap checks and
/// reserves both limits: they hold at every instant, not just when the pool is quiet. The limits are
/// capped (see [`crate::config::MAX_TRANSACTIONS_CEILING`]) so neither field can overflow into the other.
#[derive(Debug, Default)]
pub(crate) struct Occupancy(AtomicU64);

/// What a reservation found when it did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
}

impl Occupancy {
    /// `(transactions, bytes)` now.
    pub(crate) fn load(&self) -> (u64, u64) {
        unpack(self.0.load(Ordering::Acquire))
    }

    /// Reserves room for one transaction of `size` bytes if both limits still hold afterwards.
    pub(crate) fn try_reserve(
        &self,
        size: u64,
        max_count: u64,
        max_bytes: u64,
    ) -> Result<(), Full> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let (count, bytes) = unpack(current);
            let fits = count < max_count && bytes.saturating_add(size) <= max_bytes;
            if !fits {
                return Err(Full { count, bytes });
            }
            let next = pack(count + 1, bytes + size);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Returns the room of one transaction of `size` bytes, reserved earlier.
    pub(crate) fn release(&self, size: u64) {
        self.0.fetch_sub(pack(1, size), Ordering::AcqRel);
    }
}

fn pack(count: u64, bytes: u64) -> u64 {
    (bytes << COUNT_BITS) | (count & COUNT_MASK)
}

fn unpack(word: u64) -> (u64, u64) {
    (word & COUNT_MASK, word >> COUNT_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_respect_both_limits_and_release_restores_them() {
        let o = Occupancy::default();
        assert_eq!(o.try_reserve(600, 2, 1000), Ok(()));
        assert_eq!(
            o.try_reserve(500, 2, 1000),
            Err(Full {
                count: 1,
                bytes: 600
            })
        );
        assert_eq!(o.try_reserve(400, 2, 1000), Ok(()));
        assert_eq!(
            o.try_reserve(0, 2, 1000),
            Err(Full {
                count: 2,
                bytes: 1000
            })
        );
        o.release(600);
        assert_eq!(o.load(), (1, 400));
        o.release(400);
        assert_eq!(o.load(), (0, 0));
    }

    #[test]
    fn the_largest_configured_limits_fit_the_word() {
        let o = Occupancy::default();
        let max_count = crate::config::MAX_TRANSACTIONS_CEILING as u64;
        let max_bytes = crate::config::MAX_BYTES_CEILING as u64;
        assert_eq!(o.try_reserve(max_bytes, max_count, max_bytes), Ok(()));
        assert_eq!(o.load(), (1, max_bytes));
    }
}
