//! The wallet commands that talk to a node: balance, send, wait-final, receipt.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::output::at;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use timecoin_crypto::{Address, ChainId, Hash, Network, SecretKey};
use timecoin_types::{Amount, ChainParams, OutPoint, TxId, TxOut, Wire};

use crate::exit::Failure;
use crate::output;
use crate::payment::{self, Coin, FeePolicy};
use crate::rpc::{CALL_TIMEOUT, RpcClient};

/// Entries asked for per `listunspent` page (the node's default `max_page`).
pub const UNSPENT_PAGE: u64 = 1000;
/// Most coins read for one payment: more than one transaction can spend, and a bound on the listing.
pub const MAX_LISTED_COINS: usize = 100_000;
/// The longest one `waitfortx` call is asked to wait (the node's default `max_wait_secs`); a longer
/// `--timeout` is several calls.
pub const WAIT_CALL_SECS: u64 = 60;

/// What the wallet needs to know about the chain a node follows.
#[derive(Clone, Debug)]
pub struct ChainInfo {
    /// Bound into every signature.
    pub chain_id: ChainId,
    /// The address form.
    pub network: Network,
    /// The rules a transaction is built to: the network's defaults with the node's chain id and
    /// minimum fee (the RPC does not report the dust threshold, so it is the network's default).
    pub params: ChainParams,
    /// The finalized tip.
    pub height: u64,
}

/// Asks the node which chain it follows.
pub fn chain_info(rpc: &RpcClient) -> Result<ChainInfo> {
    let info = rpc.call("getblockchaininfo", json!([]))?;
    let network_name = at(&info, "chain").as_str().unwrap_or_default();
    let network = [Network::Mainnet, Network::Testnet, Network::Local]
        .into_iter()
        .find(|n| n.name() == network_name)
        .with_context(|| format!("the node names an unknown network `{network_name}`"))?;
    let chain_id = at(&info, "chain_id")
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .map(ChainId)
        .context("the node reports no chain_id")?;
    let mut params = ChainParams::for_network(network);
    params.chain_id = chain_id;
    if let Ok(pool) = rpc.call("getmempoolinfo", json!([]))
        && let Some(min_fee) = at(&pool, "minrelaytxfee_sat").as_u64()
    {
        params.min_tx_fee = Amount::from_sat(min_fee);
    }
    Ok(ChainInfo {
        chain_id,
        network,
        params,
        height: at(&info, "blocks").as_u64().unwrap_or(0),
    })
}

/// Reads a secret key file; the error names the file, never its contents.
pub fn load_key(path: &Path) -> Result<SecretKey> {
    SecretKey::load(path)
        .map_err(|e| Failure::Usage.wrap(format!("reading the key {}: {e}", path.display())))
}

/// Parses an address and checks it is for `network`.
pub fn parse_address(text: &str, network: Network) -> Result<Address> {
    let (found, address) =
        Address::decode(text).map_err(|e| Failure::Usage.wrap(format!("address `{text}`: {e}")))?;
    if found != network {
        return Err(Failure::Usage.wrap(format!(
            "address `{text}` is for {found}, but the node follows {network}"
        )));
    }
    Ok(address)
}

/// Parses a txid (64 hex characters).
pub fn parse_txid(text: &str) -> Result<TxId> {
    Hash::from_hex(text)
        .map(TxId)
        .map_err(|_| Failure::Usage.wrap(format!("txid `{text}` is not 64 hex characters")))
}

/// Every finalized coin of `address` the node lists and no pooled transaction spends yet, up to
/// [`MAX_LISTED_COINS`].
pub fn list_coins(rpc: &RpcClient, address: &str) -> Result<Vec<Coin>> {
    let mut coins = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let params = match &after {
            Some(a) => json!([address, UNSPENT_PAGE, a]),
            None => json!([address, UNSPENT_PAGE]),
        };
        let page = rpc.call("listunspent", params)?;
        for utxo in at(&page, "utxos")
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            // Already spent by a transaction in the node's pool: paying with it again would conflict.
            if !at(utxo, "pending_spend").is_null() {
                continue;
            }
            let txid = at(utxo, "txid")
                .as_str()
                .and_then(|t| Hash::from_hex(t).ok())
                .context("listunspent gave a bad txid")?;
            let vout = at(utxo, "vout")
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .context("listunspent gave a bad vout")?;
            let sat = at(utxo, "value_sat")
                .as_u64()
                .context("listunspent gave no value_sat")?;
            coins.push(Coin {
                outpoint: OutPoint {
                    txid: TxId(txid),
                    vout,
                },
                amount: Amount::from_sat(sat),
            });
        }
        match at(&page, "next").as_str() {
            Some(next) if coins.len() < MAX_LISTED_COINS => after = Some(next.to_string()),
            _ => return Ok(coins),
        }
    }
}

/// `balance ADDRESS`.
pub fn balance(rpc: &RpcClient, address: &str, as_json: bool) -> Result<()> {
    // The checksum is checked here so a typo is an input error (exit 1); the network is the node's to
    // check, as only it knows which one it follows.
    Address::decode(address)
        .map_err(|e| Failure::Usage.wrap(format!("address `{address}`: {e}")))?;
    let b = rpc.call("getbalance", json!([address]))?;
    output::either(
        as_json,
        &b,
        &[
            ("address", text(at(&b, "address"))),
            ("balance", format!("{} TIME", text(at(&b, "balance")))),
            ("coins", text(at(&b, "utxos"))),
            ("height", text(at(&b, "height"))),
        ],
    )
}

/// What `send` was asked to do.
pub struct SendRequest<'a> {
    /// The sender's key file.
    pub from: &'a Path,
    /// The recipient's address text.
    pub to: &'a str,
    /// The amount text.
    pub amount: &'a str,
    /// The fee policy.
    pub fee: FeePolicy,
    /// Wait for finality this long after submitting, if set.
    pub wait: Option<Duration>,
}

/// `send --from KEY ADDRESS AMOUNT`.
pub fn send(rpc: &RpcClient, request: &SendRequest<'_>, as_json: bool) -> Result<()> {
    let key = load_key(request.from)?;
    let amount = payment::parse_amount(request.amount)?;
    let chain = chain_info(rpc)?;
    let to = parse_address(request.to, chain.network)?;
    let me = Address::from_public_key(&key.public_key());
    let me_text = me.encode(chain.network);
    let coins = list_coins(rpc, &me_text)?;
    let payment = payment::build_payment(
        &key,
        chain.chain_id,
        &chain.params,
        &coins,
        &[TxOut {
            address: to,
            amount,
        }],
        me,
        request.fee,
    )?;
    let txid = rpc
        .call(
            "sendrawtransaction",
            json!([hex::encode(payment.tx.encode())]),
        )?
        .as_str()
        .context("sendrawtransaction answered no txid")?
        .to_string();
    let mut report = json!({
        "txid": txid,
        "from": me_text,
        "to": request.to,
        "amount": payment::format_amount(amount),
        "amount_sat": amount.as_sat(),
        "fee_sat": payment.fee.as_sat(),
        "change_sat": payment.change.map(Amount::as_sat),
        "inputs": payment.spent.len(),
        "size": payment.tx.encoded_len(),
    });
    let mut rows = vec![
        ("txid", txid.clone()),
        ("from", me_text),
        ("to", request.to.to_string()),
        ("amount", format!("{} TIME", payment::format_amount(amount))),
        ("fee", format!("{} sat", payment.fee.as_sat())),
        (
            "change",
            payment.change.map_or("none".into(), |c| {
                format!("{} TIME", payment::format_amount(c))
            }),
        ),
        ("inputs", payment.spent.len().to_string()),
    ];
    let mut outcome = Ok(());
    if let Some(timeout) = request.wait {
        match wait_for(rpc, &txid, timeout) {
            Ok(done) => {
                rows.push(("final", format!("height {}", text(at(&done, "height")))));
                rows.push(("blockhash", text(at(&done, "blockhash"))));
                if let Some(obj) = report.as_object_mut() {
                    obj.insert("final".into(), done);
                }
            }
            Err(e) => outcome = Err(e),
        }
    }
    output::either(as_json, &report, &rows)?;
    outcome
}

/// Waits until `txid` is final, at most `timeout`, in calls of at most [`WAIT_CALL_SECS`]. Returns
/// `waitfortx`'s final answer; a [`Failure::Timeout`] if not final in time.
pub fn wait_for(rpc: &RpcClient, txid: &str, timeout: Duration) -> Result<Value> {
    parse_txid(txid)?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let secs = left.as_secs_f64().ceil().clamp(1.0, WAIT_CALL_SECS as f64) as u64;
        let answer = rpc.call_with_timeout(
            "waitfortx",
            json!([txid, secs]),
            Duration::from_secs(secs) + CALL_TIMEOUT,
        )?;
        if at(&answer, "final").as_bool() == Some(true) {
            return Ok(answer);
        }
        if Instant::now() >= deadline {
            let pooled = at(&answer, "inmempool").as_bool() == Some(true);
            return Err(Failure::Timeout.wrap(format!(
                "{txid} not final after {} s ({})",
                timeout.as_secs(),
                if pooled {
                    "still in the node's mempool"
                } else {
                    "not in the node's mempool"
                }
            )));
        }
    }
}

/// `wait-final TXID`.
pub fn wait_final(rpc: &RpcClient, txid: &str, timeout: Duration, as_json: bool) -> Result<()> {
    let done = wait_for(rpc, txid, timeout)?;
    output::either(
        as_json,
        &done,
        &[
            ("txid", text(at(&done, "txid"))),
            ("final", "yes".into()),
            ("height", text(at(&done, "height"))),
            ("blockhash", text(at(&done, "blockhash"))),
        ],
    )
}

/// `receipt TXID`: the node's finality receipt, as JSON on stdout (for `> file`).
pub fn receipt(rpc: &RpcClient, txid: &str, blockhash: Option<&str>) -> Result<()> {
    parse_txid(txid)?;
    let params = match blockhash {
        Some(b) => json!([txid, b]),
        None => json!([txid]),
    };
    let receipt = rpc.call("gettxproof", params)?;
    output::json(&receipt)
}

/// A JSON value as plain text: strings without quotes, null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
