//! Positional parameters, Bitcoin-style: `[a, b]`, with `null` or a missing tail for optional ones.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use serde_json::Value;
use timecoin_crypto::Hash;
use timecoin_types::{BlockHash, OutPoint, TxId};

use super::errors::{codes, rpc_error};

/// A call's parameters, checked for shape once.
pub(crate) struct Args {
    values: Vec<Value>,
}

impl Args {
    /// Reads `params` as a positional list of at most `max` values.
    pub(crate) fn parse(params: &Params<'_>, max: usize) -> Result<Args, ErrorObjectOwned> {
        let values = match params.as_str() {
            None => Vec::new(),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Array(values)) => values,
                Ok(Value::Null) => Vec::new(),
                Ok(Value::Object(_)) => {
                    return Err(rpc_error(
                        codes::INVALID_PARAMS,
                        "named parameters are not supported; pass them in order, as a list",
                    ));
                }
                Ok(_) | Err(_) => {
                    return Err(rpc_error(codes::INVALID_PARAMS, "params must be a list"));
                }
            },
        };
        if values.len() > max {
            return Err(rpc_error(
                codes::INVALID_PARAMS,
                format!("at most {max} parameters, got {}", values.len()),
            ));
        }
        Ok(Args { values })
    }

    /// Parameter `index`, which must be present.
    pub(crate) fn required<T: DeserializeOwned>(
        &self,
        index: usize,
        name: &str,
    ) -> Result<T, ErrorObjectOwned> {
        self.optional(index, name)?.ok_or_else(|| {
            rpc_error(
                codes::INVALID_PARAMS,
                format!("missing parameter {} ({name})", index + 1),
            )
        })
    }

    /// Parameter `index`, `None` when missing or `null`.
    pub(crate) fn optional<T: DeserializeOwned>(
        &self,
        index: usize,
        name: &str,
    ) -> Result<Option<T>, ErrorObjectOwned> {
        match self.values.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| {
                    rpc_error(
                        codes::INVALID_PARAMS,
                        format!("parameter {} ({name}): {e}", index + 1),
                    )
                }),
        }
    }
}

/// 64 hex characters as a hash; −8 otherwise.
pub(crate) fn parse_hash(text: &str, name: &str) -> Result<Hash, ErrorObjectOwned> {
    Hash::from_hex(text).map_err(|_| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("{name} must be 64 hex characters, got {:?}", truncate(text)),
        )
    })
}

/// A block hash parameter.
pub(crate) fn parse_block_hash(text: &str) -> Result<BlockHash, ErrorObjectOwned> {
    parse_hash(text, "blockhash").map(BlockHash)
}

/// A txid parameter.
pub(crate) fn parse_txid(text: &str) -> Result<TxId, ErrorObjectOwned> {
    parse_hash(text, "txid").map(TxId)
}

/// `txid:vout`, the form `listunspent` returns as its cursor.
pub(crate) fn parse_outpoint(text: &str) -> Result<OutPoint, ErrorObjectOwned> {
    let bad = || {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("expected txid:vout, got {:?}", truncate(text)),
        )
    };
    let (txid, vout) = text.split_once(':').ok_or_else(bad)?;
    Ok(OutPoint {
        txid: parse_txid(txid)?,
        vout: vout.parse().map_err(|_| bad())?,
    })
}

/// Hex bytes; −22 otherwise (the bytes were meant to decode into something).
pub(crate) fn parse_hex(text: &str, name: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    hex::decode(text)
        .map_err(|e| rpc_error(codes::DESERIALIZATION, format!("{name} is not hex: {e}")))
}

/// At most 80 characters of untrusted text, for an error message.
fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}
