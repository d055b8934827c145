//! Fee rates as exact fractions.

use std::cmp::Ordering;
use std::fmt;

use timecoin_types::Amount;

/// A fee per encoded byte, kept as the exact fraction `fee / size`.
///
/// Rates are compared by cross-multiplication in `u128` (`a.fee · b.size` against `b.fee · a.size`), never
/// through floats: every node must rank transactions identically, and a rounded quotient would tie rates
/// that differ and split ties differently across platforms. Equality is equality of the fractions, so
/// `2 sat / 100 B == 4 sat / 200 B`.
#[derive(Clone, Copy, Debug)]
pub struct FeeRate {
    fee: u64,
    size: u64,
}

impl FeeRate {
    /// The rate of `fee` paid for `size` encoded bytes. A size of 0 counts as 1 byte, so the fraction is
    /// always defined (no encoded transaction is empty).
    pub fn new(fee: Amount, size: usize) -> Self {
        FeeRate {
            fee: fee.as_sat(),
            size: u64::try_from(size).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The fee.
    pub fn fee(&self) -> Amount {
        Amount::from_sat(self.fee)
    }

    /// The size the fee pays for, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Thousandths of a satoshi per byte, rounded down: for display and metrics only, never for ranking.
    pub fn millisat_per_byte(&self) -> u128 {
        u128::from(self.fee) * 1000 / u128::from(self.size)
    }
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        let lhs = u128::from(self.fee) * u128::from(other.size);
        let rhs = u128::from(other.fee) * u128::from(self.size);
        lhs.cmp(&rhs)
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

/// `"1.234 sat/B (370 sat over 300 B)"`.
impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let milli = self.millisat_per_byte();
        write!(
            f,
            "{}.{:03} sat/B ({} sat over {} B)",
            milli / 1000,
            milli % 1000,
            self.fee,
            self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(fee: u64, size: usize) -> FeeRate {
        FeeRate::new(Amount::from_sat(fee), size)
    }

    #[test]
    fn equal_fractions_compare_equal_and_near_ones_do_not() {
        assert_eq!(rate(2, 100), rate(4, 200));
        assert!(rate(3, 100) > rate(5, 200));
        // 1/3 and 333/1000 differ by 1/3000: a float rounded to a few digits would tie them.
        assert!(rate(1, 3) > rate(333, 1000));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert!(rate(u64::MAX, 1) > rate(u64::MAX - 1, 1));
        assert!(rate(u64::MAX - 1, usize::MAX) < rate(1, 1));
        assert_eq!(rate(u64::MAX, usize::MAX), rate(1, 1));
        assert_eq!(rate(0, 0), rate(0, 1));
    }

    #[test]
    fn display_shows_the_rate_and_its_parts() {
        assert_eq!(
            rate(370, 300).to_string(),
            "1.233 sat/B (370 sat over 300 B)"
        );
    }
}
