//! Offline receipt checking, and the validator-set files it trusts.
//!
//! A receipt (`gettxproof`) proves a transaction final only relative to a validator set: its
//! certificate must carry Commit signatures of more than 2/3 of that set's weight. The receipt names
//! no set of its own (a set it carried would vouch for itself), so the verifier brings one, and that
//! is the one thing trusted:
//! - `--genesis FILE`: the chain's `genesis.toml` (as `timed testnet` and `timed init` write it): the
//!   genesis validators, right for every height until the set first changes;
//! - `--validators FILE`: a set saved by `time-cli validators` from a node you trusted when you saved
//!   it; right for heights governed by that set.

use std::path::Path;

use crate::output::at;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use timecoin_consensus::{Validator, ValidatorSet};
use timecoin_crypto::{Address, ChainId, PublicKey};
use timecoin_node::rpc::{FinalityReceipt, verify_receipt};
use timecoin_types::Tier;

use crate::exit::Failure;
use crate::output;
use crate::payment::format_amount;
use crate::rpc::RpcClient;
use crate::wallet::{chain_info, text};

/// A receipt or validator file larger than this is refused before parsing: a receipt holds one
/// transaction (100 KiB, twice that in hex) and a certificate of at most 10,000 signatures.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The validator set a receipt is checked against, and the chain it belongs to.
pub struct TrustedSet {
    /// The chain id signatures are bound to.
    pub chain_id: ChainId,
    /// The set.
    pub set: ValidatorSet,
    /// Where it came from, for the report.
    pub source: String,
}

#[derive(Deserialize)]
struct GenesisValidators {
    chain_id: u32,
    #[serde(default)]
    validator: Vec<MemberEntry>,
}

/// One member as `genesis.toml`, `masternodelist` and a validators file write it.
#[derive(Deserialize)]
struct MemberEntry {
    operator_key: String,
    tier: String,
    owner: String,
}

#[derive(Deserialize)]
struct ValidatorsFile {
    chain_id: u32,
    validators: Vec<MemberEntry>,
}

fn read_bounded(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::Usage.wrap(format!("reading {}: {e}", path.display())))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(Failure::Usage.wrap(format!(
            "{} is {} bytes, over {MAX_FILE_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage.wrap(format!("reading {}: {e}", path.display())))
}

fn members(entries: &[MemberEntry]) -> Result<ValidatorSet> {
    let members = entries
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let key = PublicKey::from_hex(&m.operator_key)
                .with_context(|| format!("validator {i}: operator_key"))?;
            let tier = Tier::ALL
                .into_iter()
                .find(|t| t.name().eq_ignore_ascii_case(&m.tier))
                .with_context(|| format!("validator {i}: unknown tier `{}`", m.tier))?;
            let (_, owner) =
                Address::decode(&m.owner).with_context(|| format!("validator {i}: owner"))?;
            Ok(Validator {
                key,
                tier,
                owner,
                collateral: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ValidatorSet::new(members).context("the validator set")
}

/// The genesis validators of a `genesis.toml`.
pub fn set_from_genesis(path: &Path) -> Result<TrustedSet> {
    let text = read_bounded(path)?;
    let parsed: GenesisValidators = toml::from_str(&text)
        .map_err(|e| Failure::Usage.wrap(format!("{}: {e}", path.display())))?;
    let set = members(&parsed.validator)
        .map_err(|e| Failure::Usage.wrap(format!("{}: {e:#}", path.display())))?;
    Ok(TrustedSet {
        chain_id: ChainId(parsed.chain_id),
        set,
        source: format!("genesis {}", path.display()),
    })
}

/// A set saved by `time-cli validators`.
pub fn set_from_file(path: &Path) -> Result<TrustedSet> {
    let text = read_bounded(path)?;
    let parsed: ValidatorsFile = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage.wrap(format!("{}: {e}", path.display())))?;
    let set = members(&parsed.validators)
        .map_err(|e| Failure::Usage.wrap(format!("{}: {e:#}", path.display())))?;
    Ok(TrustedSet {
        chain_id: ChainId(parsed.chain_id),
        set,
        source: format!("validators file {}", path.display()),
    })
}

/// `verify-receipt FILE`: every check of `timecoin_node::rpc::verify_receipt`, offline.
pub fn verify(file: &Path, trusted: &TrustedSet, as_json: bool) -> Result<()> {
    let text = read_bounded(file)?;
    let receipt: FinalityReceipt = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage.wrap(format!("{} is not a receipt: {e}", file.display())))?;
    let verified = verify_receipt(&receipt, &trusted.set, trusted.chain_id)
        .map_err(|e| Failure::Invalid.wrap(format!("{}: {e}", file.display())))?;
    let outputs: Vec<Value> = verified
        .tx
        .outputs
        .iter()
        .map(|o| json!({ "value": format_amount(o.amount), "value_sat": o.amount.as_sat() }))
        .collect();
    let report = json!({
        "valid": true,
        "txid": verified.txid.to_string(),
        "height": verified.height,
        "blockhash": verified.block_hash.to_string(),
        "chain_id": trusted.chain_id.0,
        "validators": trusted.set.len(),
        "trusted": trusted.source,
        "outputs": outputs,
    });
    output::either(
        as_json,
        &report,
        &[
            ("valid", "yes".into()),
            ("txid", verified.txid.to_string()),
            ("height", verified.height.to_string()),
            ("blockhash", verified.block_hash.to_string()),
            (
                "signed by",
                format!(
                    "more than 2/3 of the weight of {} validators",
                    trusted.set.len()
                ),
            ),
            ("trusted", trusted.source.clone()),
        ],
    )
}

/// `validators`: the node's current validator set as a file `verify-receipt --validators` reads.
pub fn save_validators(rpc: &RpcClient) -> Result<()> {
    let chain = chain_info(rpc)?;
    let list = rpc.call("masternodelist", json!([]))?;
    let best = rpc.call("getbestblockhash", json!([]))?;
    let validators: Vec<Value> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            json!({
                "operator_key": at(v, "operator_key"),
                "tier": at(v, "tier"),
                "owner": at(v, "owner"),
                "weight": at(v, "weight"),
            })
        })
        .collect();
    output::json(&json!({
        "chain_id": chain.chain_id.0,
        "network": chain.network.name(),
        "height": chain.height,
        "bestblockhash": text(&best),
        "note": "the validator set governing the height after `height`, as the node served it",
        "validators": validators,
    }))
}
