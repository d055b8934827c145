//! Amounts in satoshis, with checked arithmetic only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TypesError;

/// Satoshis in one TIME.
pub const COIN: u64 = 100_000_000;

/// An amount of satoshis. There is no `Add` impl on purpose: every sum goes through
/// [`Amount::checked_add`], so an overflow is an error and can never wrap around and mint coins.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u64::MAX);

    /// From satoshis.
    pub const fn from_sat(sat: u64) -> Self {
        Amount(sat)
    }

    /// From whole TIME; `None` on overflow.
    pub const fn from_time(time: u64) -> Option<Self> {
        match time.checked_mul(COIN) {
            Some(s) => Some(Amount(s)),
            None => None,
        }
    }

    /// Satoshis.
    pub const fn as_sat(self) -> u64 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    #[must_use]
    pub const fn checked_add(self, rhs: Amount) -> Option<Amount> {
        match self.0.checked_add(rhs.0) {
            Some(s) => Some(Amount(s)),
            None => None,
        }
    }

    /// `self − rhs`, or `None` if it would go below zero.
    #[must_use]
    pub const fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        match self.0.checked_sub(rhs.0) {
            Some(s) => Some(Amount(s)),
            None => None,
        }
    }

    /// Sum of an iterator, or `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I) -> Option<Amount> {
        iter.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }
}

/// Shows TIME with eight decimals, e.g. `12.50000000 TIME`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:08} TIME", self.0 / COIN, self.0 % COIN)
    }
}

/// Parses `"12.5"`, `"12.5 TIME"` or `"1250000000 sat"`.
impl FromStr for Amount {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| TypesError::InvalidAmount {
            text: s.to_string(),
            reason,
        };
        let t = s.trim();
        if let Some(sat) = t.strip_suffix("sat") {
            return sat
                .trim()
                .parse::<u64>()
                .map(Amount)
                .map_err(|_| bad("not a whole number of satoshis"));
        }
        let t = t.strip_suffix("TIME").unwrap_or(t).trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("expected digits with at most one decimal point"));
        }
        if frac.len() > 8 {
            return Err(bad("more than 8 decimal places"));
        }
        let whole: u64 = whole.parse().map_err(|_| bad("too large"))?;
        let frac_sat: u64 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<8}");
            padded.parse().map_err(|_| bad("bad fraction"))?
        };
        whole
            .checked_mul(COIN)
            .and_then(|w| w.checked_add(frac_sat))
            .map(Amount)
            .ok_or_else(|| bad("too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for sat in [0, 1, 999, COIN, 12 * COIN + 50_000_000, u64::MAX] {
            let a = Amount::from_sat(sat);
            let text = a.to_string();
            assert_eq!(text.parse::<Amount>(), Ok(a), "{text}");
        }
        assert_eq!("1.5".parse::<Amount>(), Ok(Amount::from_sat(150_000_000)));
        assert_eq!("7 sat".parse::<Amount>(), Ok(Amount::from_sat(7)));
        assert!("1.123456789".parse::<Amount>().is_err());
        assert!("184467440738".parse::<Amount>().is_err());
        assert!("-1".parse::<Amount>().is_err());
        assert!("".parse::<Amount>().is_err());
    }

    #[test]
    fn sums_never_wrap() {
        assert_eq!(Amount::MAX.checked_add(Amount::from_sat(1)), None);
        assert_eq!(
            Amount::checked_sum([Amount::MAX, Amount::from_sat(1)]),
            None
        );
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_sat(1)), None);
    }
}
