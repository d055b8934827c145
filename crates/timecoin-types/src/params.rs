//! Chain parameters and the protocol's limits.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{ChainId, Network};

use crate::Amount;

/// Minimum fee of a transaction, in satoshis (seed: `MIN_TX_FEE = 1`).
pub const MIN_TX_FEE: Amount = Amount::from_sat(1);
/// Smallest output allowed, in satoshis (seed: `MIN_DUST = 1000`).
pub const MIN_DUST: Amount = Amount::from_sat(1_000);
/// Largest encoded transaction: 100 KiB, about 750 inputs.
pub const MAX_TX_BYTES: usize = 100 * 1024;
/// Most inputs in one transaction.
pub const MAX_TX_INPUTS: usize = 1_000;
/// Most outputs in one transaction.
pub const MAX_TX_OUTPUTS: usize = 1_000;
/// Largest encoded block: 4 MiB, so a block with its certificate fits in one network frame.
pub const MAX_BLOCK_BYTES: usize = 4 * 1024 * 1024;
/// Most transactions in one block, enforced while decoding. Every transaction that can pass
/// [`crate::Transaction::check`] has an input, and one input alone encodes to 129 bytes, so no valid block of
/// [`MAX_BLOCK_BYTES`] comes near this; without the bound, a block of 4-byte empty transactions would
/// decode into ~300 bytes of memory per 4 bytes of input.
pub const MAX_BLOCK_TXS: usize = 32_768;
/// Largest network message (seed: 10 MB frames).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Most signatures in a commit certificate; bounds decoding work for a certificate.
pub const MAX_VALIDATORS: usize = 10_000;
/// Largest encoded genesis document.
pub const MAX_GENESIS_BYTES: usize = 16 * 1024 * 1024;

/// Rules fixed per chain; hashed into the genesis, so two nodes with different rules never agree on a
/// chain by accident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainParams {
    /// Bound into every signature.
    pub chain_id: ChainId,
    /// Address prefix.
    pub network: Network,
    /// Minimum fee per transaction.
    pub min_tx_fee: Amount,
    /// Smallest output.
    pub min_dust: Amount,
    /// Largest transaction, bytes (≤ [`MAX_TX_BYTES`]).
    pub max_tx_bytes: u32,
    /// Largest block, bytes (≤ [`MAX_BLOCK_BYTES`]).
    pub max_block_bytes: u32,
    /// Blocks between the finalization of a masternode (de)registration and the height at which the
    /// validator set changes: every node switches at the same height, after all have seen the change.
    pub validator_set_delay: u64,
    /// New coins each block adds to the reward pool (0 allowed: then masternodes earn fees only).
    pub block_subsidy: Amount,
    /// Every this many heights the pool (fees and subsidies accrued since the last payout) is paid to the
    /// masternodes' owners in proportion to weight, by the reward transaction every node computes alike;
    /// 0 never pays. Paying per interval rather than per block keeps the UTXO set from growing with the
    /// block rate.
    pub reward_interval: u64,
}

impl ChainParams {
    /// Defaults for a network, with the seed's numbers.
    pub fn for_network(network: Network) -> Self {
        let chain_id = match network {
            Network::Mainnet => ChainId(1),
            Network::Testnet => ChainId(2),
            Network::Local => ChainId(1337),
        };
        ChainParams {
            chain_id,
            network,
            min_tx_fee: MIN_TX_FEE,
            min_dust: MIN_DUST,
            max_tx_bytes: MAX_TX_BYTES as u32,
            max_block_bytes: MAX_BLOCK_BYTES as u32,
            validator_set_delay: 2,
            // No issuance schedule is decided for the public networks yet; a local network mints a little
            // so that subsidies are exercised.
            block_subsidy: match network {
                Network::Local => Amount::from_sat(crate::COIN),
                Network::Mainnet | Network::Testnet => Amount::ZERO,
            },
            reward_interval: match network {
                Network::Local => 10,
                Network::Mainnet | Network::Testnet => 100,
            },
        }
    }

    /// Largest transaction, capped by the protocol limit whatever the params say.
    pub fn tx_limit(&self) -> usize {
        (self.max_tx_bytes as usize).min(MAX_TX_BYTES)
    }

    /// Largest block, capped by the protocol limit whatever the params say.
    pub fn block_limit(&self) -> usize {
        (self.max_block_bytes as usize).min(MAX_BLOCK_BYTES)
    }
}
