//! Amounts as people type them, fees, and coin selection: the pure part of `send` and `loadgen`.

use std::fmt;

use anyhow::Result;
use timecoin_crypto::{Address, ChainId, SecretKey};
use timecoin_types::{
    Amount, COIN, ChainParams, MAX_TX_INPUTS, OutPoint, Transaction, TxBuilder, TxOut,
};

use crate::exit::Failure;

/// The default fee rate, satoshis per byte of the signed transaction: the chain's floor is a flat
/// 1 sat (`MIN_TX_FEE`), and a rate keeps a large transaction from paying what a small one does.
pub const DEFAULT_FEE_RATE: u64 = 1;

/// Most inputs one payment spends: 700 inputs of 129 bytes stay under the 100 KiB transaction limit
/// with room for outputs (`MAX_TX_INPUTS` alone would not).
pub const MAX_PAYMENT_INPUTS: usize = if MAX_TX_INPUTS < 700 {
    MAX_TX_INPUTS
} else {
    700
};

/// Rounds of "build, measure, raise the fee" before giving up; the size moves by a few bytes at most
/// per round, so two nearly always suffice.
const FEE_ROUNDS: usize = 8;

/// Parses an amount: decimal TIME with at most 8 places (`1.5`, `0.00001`), or satoshis with a `sat`
/// suffix (`1500sat`).
pub fn parse_amount(text: &str) -> Result<Amount> {
    let bad = |why: &str| Failure::Usage.wrap(format!("amount `{text}`: {why}"));
    let t = text.trim();
    if let Some(sat) = t.strip_suffix("sat") {
        return sat
            .trim()
            .parse::<u64>()
            .map(Amount::from_sat)
            .map_err(|_| bad("not a whole number of satoshis"));
    }
    let t = t.strip_suffix("TIME").unwrap_or(t).trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad("empty"));
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("use digits and one `.`, e.g. 1.5 or 1500sat"));
    }
    if frac.len() > 8 {
        return Err(bad("more than 8 decimal places"));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("too large"))?
    };
    let frac_sat: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<8}")
            .parse()
            .map_err(|_| bad("bad fraction"))?
    };
    whole
        .checked_mul(COIN)
        .and_then(|w| w.checked_add(frac_sat))
        .map(Amount::from_sat)
        .ok_or_else(|| bad("too large"))
}

/// `12.34500000`: TIME with 8 places, as the RPC writes amounts.
pub fn format_amount(amount: Amount) -> String {
    let sat = amount.as_sat();
    format!("{}.{:08}", sat / COIN, sat % COIN)
}

/// An unspent output the wallet may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it holds.
    pub amount: Amount,
}

/// How the fee of a transaction is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeePolicy {
    /// This many satoshis whatever the size (at least the chain's minimum).
    Flat(Amount),
    /// This many satoshis per byte of the signed, encoded transaction (at least the chain's minimum).
    PerByte(u64),
}

impl FeePolicy {
    /// The fee a transaction of `len` bytes must pay under this policy and the chain's floor.
    pub fn fee_for(&self, len: usize, params: &ChainParams) -> Amount {
        let wanted = match self {
            FeePolicy::Flat(a) => *a,
            FeePolicy::PerByte(rate) => Amount::from_sat(rate.saturating_mul(len as u64)),
        };
        wanted.max(params.min_tx_fee)
    }
}

impl fmt::Display for FeePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeePolicy::Flat(a) => write!(f, "{} sat flat", a.as_sat()),
            FeePolicy::PerByte(r) => write!(f, "{r} sat/byte"),
        }
    }
}

/// A signed payment and what went into it.
#[derive(Clone, Debug)]
pub struct Payment {
    /// The signed transaction.
    pub tx: Transaction,
    /// The coins it spends.
    pub spent: Vec<Coin>,
    /// The fee it pays (inputs − outputs): at least the policy's, more when a change below the dust
    /// threshold was left to the fee rather than created.
    pub fee: Amount,
    /// The change paid back, if any.
    pub change: Option<Amount>,
}

/// Pays `outputs` from `coins` (largest first), sending change to `change_to`, under `policy`.
///
/// A change smaller than the chain's dust threshold is not created: it goes to the fee. Fails with a
/// usage error when the coins do not cover outputs and fee, or would need more than
/// [`MAX_PAYMENT_INPUTS`] inputs, or when an output is below the dust threshold.
pub fn build_payment(
    key: &SecretKey,
    chain: ChainId,
    params: &ChainParams,
    coins: &[Coin],
    outputs: &[TxOut],
    change_to: Address,
    policy: FeePolicy,
) -> Result<Payment> {
    for (i, out) in outputs.iter().enumerate() {
        if out.amount < params.min_dust {
            return Err(Failure::Usage.wrap(format!(
                "output {i} pays {} TIME, below the chain's dust threshold of {} TIME",
                format_amount(out.amount),
                format_amount(params.min_dust)
            )));
        }
    }
    let paid = Amount::checked_sum(outputs.iter().map(|o| o.amount))
        .ok_or_else(|| Failure::Usage.wrap("the outputs overflow an amount".into()))?;
    let mut sorted: Vec<Coin> = coins.to_vec();
    sorted.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.outpoint.cmp(&b.outpoint)));
    let available = Amount::checked_sum(sorted.iter().map(|c| c.amount)).unwrap_or(Amount::MAX);

    let mut fee = policy.fee_for(0, params);
    for _ in 0..FEE_ROUNDS {
        let target = paid
            .checked_add(fee)
            .ok_or_else(|| Failure::Usage.wrap("amount plus fee overflows".into()))?;
        let mut total = Amount::ZERO;
        let mut spent = Vec::new();
        for coin in &sorted {
            if total >= target {
                break;
            }
            total = total.checked_add(coin.amount).unwrap_or(Amount::MAX);
            spent.push(*coin);
        }
        if total < target {
            return Err(Failure::Usage.wrap(format!(
                "insufficient funds: {} TIME plus a fee of at least {} TIME needed, {} TIME \
                 spendable",
                format_amount(paid),
                format_amount(fee),
                format_amount(available)
            )));
        }
        if spent.len() > MAX_PAYMENT_INPUTS {
            return Err(Failure::Usage.wrap(format!(
                "the payment would spend {} coins, over {MAX_PAYMENT_INPUTS} in one transaction: \
                 send a smaller amount first to merge coins",
                spent.len()
            )));
        }
        let rest = total.checked_sub(target).unwrap_or(Amount::ZERO);
        let change = (rest >= params.min_dust).then_some(rest);
        let mut builder = TxBuilder::new(chain);
        for coin in &spent {
            builder = builder.input(coin.outpoint, coin.amount, key);
        }
        for out in outputs {
            builder = builder.output(out.address, out.amount);
        }
        if let Some(change) = change {
            builder = builder.output(change_to, change);
        }
        let tx = builder.sign();
        let required = policy.fee_for(tx.encoded_len(), params);
        let actual = total
            .checked_sub(paid)
            .and_then(|f| f.checked_sub(change.unwrap_or(Amount::ZERO)))
            .unwrap_or(Amount::ZERO);
        if actual >= required {
            return Ok(Payment {
                tx,
                spent,
                fee: actual,
                change,
            });
        }
        fee = required;
    }
    Err(anyhow::anyhow!(
        "the fee did not settle after {FEE_ROUNDS} rounds"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use timecoin_crypto::{Hash, Network};
    use timecoin_types::TxId;

    fn coin(i: u8, sat: u64) -> Coin {
        Coin {
            outpoint: OutPoint {
                txid: TxId(Hash::from_bytes([i; 32])),
                vout: 0,
            },
            amount: Amount::from_sat(sat),
        }
    }

    fn setup() -> (SecretKey, ChainParams, Address) {
        let key = SecretKey::from_seed(&[7; 32]);
        let params = ChainParams::for_network(Network::Local);
        let me = Address::from_public_key(&key.public_key());
        (key, params, me)
    }

    #[test]
    fn amounts_parse_as_time_or_sat_and_print_with_eight_places() {
        assert_eq!(parse_amount("1.5").unwrap().as_sat(), 150_000_000);
        assert_eq!(parse_amount(".00000001").unwrap().as_sat(), 1);
        assert_eq!(parse_amount("2").unwrap().as_sat(), 2 * COIN);
        assert_eq!(parse_amount("1500sat").unwrap().as_sat(), 1500);
        assert_eq!(parse_amount("3 TIME").unwrap().as_sat(), 3 * COIN);
        for bad in [
            "",
            ".",
            "1.123456789",
            "-1",
            "1e3",
            "abc",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(format_amount(Amount::from_sat(150_000_001)), "1.50000001");
    }

    #[test]
    fn a_payment_takes_largest_coins_first_and_returns_change_above_dust() {
        let (key, params, me) = setup();
        let to = Address::from_public_key(&SecretKey::from_seed(&[8; 32]).public_key());
        let coins = [coin(1, 5_000), coin(2, 1_000_000), coin(3, 20_000)];
        let out = [TxOut {
            address: to,
            amount: Amount::from_sat(500_000),
        }];
        let p = build_payment(
            &key,
            params.chain_id,
            &params,
            &coins,
            &out,
            me,
            FeePolicy::PerByte(1),
        )
        .unwrap();
        assert_eq!(p.spent, vec![coins[1]]);
        assert!(p.fee.as_sat() >= p.tx.encoded_len() as u64);
        assert_eq!(
            p.change.unwrap().as_sat() + p.fee.as_sat() + 500_000,
            1_000_000
        );
        assert!(p.tx.check(&params).is_ok());
    }

    #[test]
    fn change_below_dust_goes_to_the_fee_and_shortfalls_are_usage_errors() {
        let (key, params, me) = setup();
        let coins = [coin(1, 10_500)];
        let out = [TxOut {
            address: me,
            amount: Amount::from_sat(10_000),
        }];
        let p = build_payment(
            &key,
            params.chain_id,
            &params,
            &coins,
            &out,
            me,
            FeePolicy::Flat(Amount::from_sat(10)),
        )
        .unwrap();
        assert_eq!(p.change, None);
        assert_eq!(p.fee.as_sat(), 500);
        let short = build_payment(
            &key,
            params.chain_id,
            &params,
            &coins,
            &[TxOut {
                address: me,
                amount: Amount::from_sat(10_500),
            }],
            me,
            FeePolicy::PerByte(1),
        )
        .unwrap_err();
        assert!(short.to_string().contains("insufficient"), "{short}");
        assert_eq!(crate::exit::code_of(&short), crate::exit::USAGE);
        let dust = build_payment(
            &key,
            params.chain_id,
            &params,
            &coins,
            &[TxOut {
                address: me,
                amount: Amount::from_sat(999),
            }],
            me,
            FeePolicy::PerByte(1),
        )
        .unwrap_err();
        assert!(dust.to_string().contains("dust"), "{dust}");
    }
}
