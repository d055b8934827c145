//! The genesis document as an operator reads it: TOML with bech32 addresses and hex keys, converted to
//! and from [`Genesis`].
//!
//! Every chain parameter is written out and required when read: they are hashed into the chain's
//! identity, so a default that changed between releases must never change which chain a file names.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use timecoin_crypto::{Address, ChainId, PublicKey};
use timecoin_types::{Amount, ChainParams, Genesis, GenesisValidator, Tier, TxOut};

use crate::config::NetworkName;

/// A genesis file longer than this is refused before it is parsed (the protocol's own bound on an
/// encoded genesis is 16 MiB; text is about three times the size).
const MAX_GENESIS_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    /// Marks a file that stands in for a genesis not yet published; a node refuses to run on it.
    #[serde(default)]
    placeholder: bool,
    network: NetworkName,
    chain_id: u32,
    timestamp_ms: u64,
    params: ParamsFile,
    #[serde(default)]
    allocation: Vec<AllocationFile>,
    #[serde(default)]
    validator: Vec<ValidatorFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    min_tx_fee_sat: u64,
    min_dust_sat: u64,
    max_tx_bytes: u32,
    max_block_bytes: u32,
    validator_set_delay: u64,
    block_subsidy_sat: u64,
    reward_interval: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocationFile {
    address: String,
    amount_sat: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorFile {
    operator_key: String,
    tier: TierName,
    owner: String,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TierName {
    Free,
    Bronze,
    Silver,
    Gold,
}

impl From<TierName> for Tier {
    fn from(t: TierName) -> Tier {
        match t {
            TierName::Free => Tier::Free,
            TierName::Bronze => Tier::Bronze,
            TierName::Silver => Tier::Silver,
            TierName::Gold => Tier::Gold,
        }
    }
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "free",
        Tier::Bronze => "bronze",
        Tier::Silver => "silver",
        Tier::Gold => "gold",
    }
}

/// A genesis read from a file, and whether the file says it is a placeholder.
pub(crate) struct LoadedGenesis {
    pub(crate) genesis: Genesis,
    pub(crate) placeholder: bool,
}

/// Reads a genesis file.
pub(crate) fn load(path: &Path) -> Result<LoadedGenesis> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_GENESIS_FILE_BYTES {
        bail!("{} is too large for a genesis file", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses a genesis file's text.
pub(crate) fn parse(text: &str) -> Result<LoadedGenesis> {
    let file: GenesisFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let network = file.network.network();
    let p = file.params;
    let params = ChainParams {
        chain_id: ChainId(file.chain_id),
        network,
        min_tx_fee: Amount::from_sat(p.min_tx_fee_sat),
        min_dust: Amount::from_sat(p.min_dust_sat),
        max_tx_bytes: p.max_tx_bytes,
        max_block_bytes: p.max_block_bytes,
        validator_set_delay: p.validator_set_delay,
        block_subsidy: Amount::from_sat(p.block_subsidy_sat),
        reward_interval: p.reward_interval,
    };
    let allocations = file
        .allocation
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let address = Address::decode_for(&a.address, network)
                .with_context(|| format!("allocation {i}: address `{}`", a.address))?;
            Ok(TxOut {
                amount: Amount::from_sat(a.amount_sat),
                address,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let total = Amount::checked_sum(allocations.iter().map(|a| a.amount));
    if total.is_none() {
        bail!("the allocations add up to more than an amount can hold");
    }
    let validators = file
        .validator
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let operator_key = PublicKey::from_hex(&v.operator_key)
                .with_context(|| format!("validator {i}: operator_key"))?;
            let owner = Address::decode_for(&v.owner, network)
                .with_context(|| format!("validator {i}: owner `{}`", v.owner))?;
            Ok(GenesisValidator {
                operator_key,
                tier: v.tier.into(),
                owner,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LoadedGenesis {
        genesis: Genesis {
            params,
            timestamp_ms: file.timestamp_ms,
            allocations,
            validators,
        },
        placeholder: file.placeholder,
    })
}

/// Writes `genesis` as a genesis file; `note` becomes the opening comment.
pub(crate) fn render(genesis: &Genesis, note: &str) -> String {
    let network = genesis.params.network;
    let p = &genesis.params;
    let mut out = String::new();
    for line in note.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(
        out,
        "# Every value below is hashed into the chain's identity: change one and it is another chain."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "network = \"{}\"", network.name());
    let _ = writeln!(out, "chain_id = {}", p.chain_id.0);
    let _ = writeln!(out, "timestamp_ms = {}", genesis.timestamp_ms);
    let _ = writeln!(out);
    let _ = writeln!(out, "[params]");
    let _ = writeln!(out, "min_tx_fee_sat = {}", p.min_tx_fee.as_sat());
    let _ = writeln!(out, "min_dust_sat = {}", p.min_dust.as_sat());
    let _ = writeln!(out, "max_tx_bytes = {}", p.max_tx_bytes);
    let _ = writeln!(out, "max_block_bytes = {}", p.max_block_bytes);
    let _ = writeln!(out, "validator_set_delay = {}", p.validator_set_delay);
    let _ = writeln!(out, "block_subsidy_sat = {}", p.block_subsidy.as_sat());
    let _ = writeln!(out, "reward_interval = {}", p.reward_interval);
    for a in &genesis.allocations {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[allocation]]");
        let _ = writeln!(out, "address = \"{}\"", a.address.encode(network));
        let _ = writeln!(out, "amount_sat = {}", a.amount.as_sat());
    }
    for v in &genesis.validators {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[validator]]");
        let _ = writeln!(out, "operator_key = \"{}\"", v.operator_key.to_hex());
        let _ = writeln!(out, "tier = \"{}\"", tier_name(v.tier));
        let _ = writeln!(out, "owner = \"{}\"", v.owner.encode(network));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_genesis_reads_back_as_the_same_chain() {
        let genesis = Genesis::local(4);
        let loaded = parse(&render(&genesis, "test")).unwrap();
        assert!(!loaded.placeholder);
        assert_eq!(loaded.genesis, genesis);
        assert_eq!(loaded.genesis.block().hash(), genesis.block().hash());
    }

    #[test]
    fn an_address_of_another_network_is_refused() {
        let text = render(&Genesis::local(1), "test")
            .replace("network = \"local\"", "network = \"testnet\"");
        assert!(parse(&text).is_err());
    }
}
