//! Masternode tiers, their collateral and their voting weight.

use serde::{Deserialize, Serialize};
use timecoin_crypto::PublicKey;

use crate::{Amount, OutPoint, TypesError};

/// A masternode's tier. Collateral and weight follow the original TimeCoin system.
///
/// | tier   | collateral    | weight |
/// |--------|---------------|--------|
/// | Free   | none          | 1      |
/// | Bronze | 1,000 TIME    | 10     |
/// | Silver | 10,000 TIME   | 25     |
/// | Gold   | 100,000 TIME  | 50     |
///
/// This table is the one place weights are defined; consensus sums [`Tier::weight`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// No collateral.
    Free,
    /// 1,000 TIME.
    Bronze,
    /// 10,000 TIME.
    Silver,
    /// 100,000 TIME.
    Gold,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Bronze, Tier::Silver, Tier::Gold];

    /// The collateral an output must hold for this tier.
    pub const fn collateral(self) -> Amount {
        let time = match self {
            Tier::Free => 0,
            Tier::Bronze => 1_000,
            Tier::Silver => 10_000,
            Tier::Gold => 100_000,
        };
        Amount::from_sat(time * crate::COIN)
    }

    /// Voting weight in consensus.
    pub const fn weight(self) -> u64 {
        match self {
            Tier::Free => 1,
            Tier::Bronze => 10,
            Tier::Silver => 25,
            Tier::Gold => 50,
        }
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| TypesError::BadRegistration {
                reason: format!("unknown tier {s:?}"),
            })
    }
}

/// The payload of a masternode registration transaction.
///
/// Ownership is proven without a second signature: the collateral output must pay to the address of one
/// of the transaction's own (signed) inputs. The collateral stays an unspent output; spending it later
/// deregisters the masternode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasternodeRegistration {
    /// Claimed tier.
    pub tier: Tier,
    /// The output locked as collateral; `None` exactly for [`Tier::Free`].
    pub collateral: Option<OutPoint>,
    /// The key the masternode signs consensus messages with.
    pub operator_key: PublicKey,
}

impl MasternodeRegistration {
    /// Shape rules that need no state.
    pub fn check(&self) -> Result<(), TypesError> {
        match (self.tier, &self.collateral) {
            (Tier::Free, Some(_)) => Err(TypesError::BadRegistration {
                reason: "free tier takes no collateral".to_string(),
            }),
            (Tier::Free, None) => Ok(()),
            (tier, None) => Err(TypesError::BadRegistration {
                reason: format!(
                    "{} tier needs a collateral output of {}",
                    tier.name(),
                    tier.collateral()
                ),
            }),
            (_, Some(_)) => Ok(()),
        }
    }
}
