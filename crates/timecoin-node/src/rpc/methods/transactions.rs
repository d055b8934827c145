//! Transactions: decoding, submitting, testing, the mempool, waiting for finality, receipts.

use std::time::Duration;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use timecoin_types::{
    Amount, Block, BlockHeader, Height, OutPoint, Transaction, TxId, TypesError, Wire, check_tx,
};
use tokio::sync::broadcast::error::RecvError;

use super::chain::{find_tx, position, search_recent};
use super::shapes::{amount_json, tx_json};
use super::{RpcResult, State, decode_tx, status, store_err, with_store};
use crate::rpc::RpcState;
use crate::rpc::errors::{codes, join_error, node_error, rpc_error};
use crate::rpc::params::{Args, parse_block_hash, parse_txid};
use crate::rpc::receipt::FinalityReceipt;
use crate::{NodeError, StoreView, SyncStatus};

/// Most transactions one `testmempoolaccept` call checks (Bitcoin's package limit).
pub(crate) const MAX_TEST_ACCEPT: usize = 25;

pub(super) async fn getrawtransaction(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 3)?;
    let txid = parse_txid(&args.required::<String>(0, "txid")?)?;
    let verbose = match args.optional::<Value>(1, "verbose")? {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_u64().is_some_and(|v| v > 0),
        Some(_) => {
            return Err(rpc_error(
                codes::INVALID_PARAMS,
                "verbose must be a boolean",
            ));
        }
    };
    let hash = args
        .optional::<String>(2, "blockhash")?
        .map(|h| parse_block_hash(&h))
        .transpose()?;
    let render = |tx: &Transaction, block: Option<(&BlockHeader, Height)>| {
        if !verbose {
            return json!(hex::encode(tx.encode()));
        }
        let mut v = tx_json(&state, tx);
        if let (Some(map), Some((header, tip))) = (v.as_object_mut(), block) {
            map.insert("blockhash".into(), json!(header.hash().to_string()));
            map.insert("height".into(), json!(header.height));
            map.insert(
                "confirmations".into(),
                json!(tip.saturating_sub(header.height).saturating_add(1)),
            );
            map.insert("final".into(), json!(true));
        }
        v
    };
    if hash.is_none()
        && let Some(tx) = state.mempool.get(&txid)
    {
        return Ok(render(&tx, None));
    }
    let depth = state.config.search_depth;
    let found = with_store(&state, move |store| {
        let tip = store.tip().map_err(store_err)?.height;
        Ok(find_tx(store, &txid, hash, depth)?.map(|found| (found, tip)))
    })
    .await?;
    match found {
        Some(((stored, i), tip)) => match stored.block.transactions.get(i) {
            Some(tx) => Ok(render(tx, Some((&stored.block.header, tip)))),
            None => Err(rpc_error(codes::MISC, "the block changed under the search")),
        },
        None if hash.is_some() => Err(rpc_error(
            codes::NOT_FOUND,
            "No such transaction found in the provided block",
        )),
        None => Err(rpc_error(
            codes::NOT_FOUND,
            format!(
                "No such mempool transaction, and none in the last {depth} blocks; the node keeps no \
                 transaction index, so pass the block hash"
            ),
        )),
    }
}

pub(super) async fn decoderawtransaction(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let tx = decode_tx(&args.required::<String>(0, "hexstring")?)?;
    Ok(tx_json(&state, &tx))
}

/// What the chain says about a transaction the pool refused or might refuse.
enum Verdict {
    /// It passes every chain rule now, paying this fee.
    Valid(Amount),
    /// Already pooled.
    Pooled,
    /// An output of it is unspent in the chain: it is final.
    InChain,
    /// It breaks a rule.
    Broken(TypesError),
}

fn judge(state: &RpcState, tx: &Transaction) -> Result<Verdict, ErrorObjectOwned> {
    let txid = tx.txid();
    if state.mempool.contains(&txid) {
        return Ok(Verdict::Pooled);
    }
    for vout in 0..tx.outputs.len() {
        let outpoint = OutPoint {
            txid,
            vout: u32::try_from(vout).unwrap_or(u32::MAX),
        };
        if state
            .store
            .get_utxo(&outpoint)
            .map_err(node_error)?
            .is_some()
        {
            return Ok(Verdict::InChain);
        }
    }
    match check_tx(
        tx,
        &StoreView(state.store.clone()),
        &state.context.genesis.params,
    ) {
        Ok(fee) => Ok(Verdict::Valid(fee)),
        Err(e) => Ok(Verdict::Broken(e)),
    }
}

fn rejection(e: &TypesError) -> ErrorObjectOwned {
    match e {
        TypesError::MissingInput { .. } => rpc_error(
            codes::VERIFY,
            format!("bad-txns-inputs-missingorspent: {e}"),
        ),
        _ => rpc_error(codes::VERIFY_REJECTED, format!("rejected: {e}")),
    }
}

/// −28 while the node is [`RpcConfig::warmup_lag`](super::RpcConfig) blocks or more behind.
async fn refuse_while_behind(state: &State) -> Result<(), ErrorObjectOwned> {
    // A batch old at most, and no round trip: this runs for every submitted transaction.
    let status = state.node.latest_status();
    if let SyncStatus::Syncing { target } = status.sync
        && target.saturating_sub(status.height) >= state.config.warmup_lag
    {
        return Err(rpc_error(
            codes::WARMING_UP,
            format!(
                "catching up: at height {} of {target}; try again once synced",
                status.height
            ),
        ));
    }
    Ok(())
}

pub(super) async fn sendrawtransaction(params: Params<'static>, state: State) -> RpcResult {
    // Bitcoin's second parameter (maxfeerate) is accepted and ignored: fees here are rule-bound.
    let args = Args::parse(&params, 2)?;
    let tx = decode_tx(&args.required::<String>(0, "hexstring")?)?;
    refuse_while_behind(&state).await?;
    let txid = tx.txid();
    match state.node.submit(tx.clone()).await {
        Ok(txid) => Ok(json!(txid.to_string())),
        Err(NodeError::Refused(reason)) => {
            // Refusals are rare: only then is the transaction checked again, here, to say which code
            // applies; the happy path verifies its signatures once, in the mempool.
            let state2 = state.clone();
            let verdict = tokio::task::spawn_blocking(move || judge(&state2, &tx))
                .await
                .map_err(join_error)??;
            match verdict {
                // Bitcoin answers a transaction it already holds with its txid.
                Verdict::Pooled => Ok(json!(txid.to_string())),
                Verdict::InChain => Err(rpc_error(
                    codes::ALREADY_IN_CHAIN,
                    "Transaction already in block chain",
                )),
                Verdict::Broken(e) => Err(rejection(&e)),
                Verdict::Valid(_) => Err(rpc_error(codes::VERIFY_REJECTED, reason)),
            }
        }
        Err(e) => Err(node_error(e)),
    }
}

pub(super) async fn testmempoolaccept(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let raw: Vec<String> = args.required(0, "rawtxs")?;
    if raw.is_empty() || raw.len() > MAX_TEST_ACCEPT {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("rawtxs must hold 1 to {MAX_TEST_ACCEPT} transactions"),
        ));
    }
    let txs = raw
        .iter()
        .map(|h| decode_tx(h))
        .collect::<Result<Vec<_>, _>>()?;
    refuse_while_behind(&state).await?;
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut results = Vec::with_capacity(txs.len());
        for tx in &txs {
            let txid = tx.txid();
            let mut v = json!({
                "txid": txid.to_string(),
                "wtxid": tx.witness_hash(&txid).to_hex(),
            });
            let (allowed, extra) = match judge(&state2, tx)? {
                Verdict::Valid(fee) => (
                    true,
                    json!({ "vsize": tx.encoded_len(), "fees": { "base": amount_json(fee), "base_sat": fee.as_sat() } }),
                ),
                Verdict::Pooled => (false, json!({ "reject-reason": "txn-already-in-mempool" })),
                Verdict::InChain => (false, json!({ "reject-reason": "txn-already-known" })),
                Verdict::Broken(e) => (false, json!({ "reject-reason": e.to_string() })),
            };
            if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), extra) {
                map.insert("allowed".into(), json!(allowed));
                map.extend(extra);
            }
            results.push(v);
        }
        Ok(json!(results))
    })
    .await
    .map_err(join_error)?
}

pub(super) async fn getmempoolinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let s = state.mempool.stats();
    Ok(json!({
        "loaded": true,
        "size": s.transactions,
        "bytes": s.bytes,
        "accepted": s.accepted,
        "rejected_invalid": s.rejected_invalid,
        "rejected_recently": s.rejected_recently,
        "rejected_duplicate": s.rejected_duplicate,
        "rejected_conflict": s.rejected_conflict,
        "rejected_full": s.rejected_full,
        "evicted": s.evicted,
        "replaced": s.replaced,
        "minrelaytxfee_sat": state.context.genesis.params.min_tx_fee.as_sat(),
    }))
}

pub(super) async fn getrawmempool(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let verbose = args.optional::<bool>(0, "verbose")?.unwrap_or(false);
    let mempool = state.mempool.clone();
    // The pool has no listing of its own; a template with no byte limit is every pooled transaction
    // (each spends only finalized coins, and no two conflict). It costs a sort, so off the workers.
    let txs = tokio::task::spawn_blocking(move || mempool.template(usize::MAX))
        .await
        .map_err(join_error)?;
    if verbose {
        let map: serde_json::Map<String, Value> = txs
            .iter()
            .map(|tx| (tx.txid().to_string(), json!({ "vsize": tx.encoded_len() })))
            .collect();
        Ok(Value::Object(map))
    } else {
        Ok(json!(
            txs.iter()
                .map(|tx| tx.txid().to_string())
                .collect::<Vec<_>>()
        ))
    }
}

/// Where a transaction was found final.
fn final_json(txid: &TxId, block: &Block) -> Value {
    json!({
        "txid": txid.to_string(),
        "final": true,
        "height": block.header.height,
        "blockhash": block.hash().to_string(),
    })
}

pub(super) async fn waitfortx(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let txid = parse_txid(&args.required::<String>(0, "txid")?)?;
    let max = state.config.max_wait_secs;
    let timeout = args
        .optional::<f64>(1, "timeout_secs")?
        .unwrap_or(max as f64);
    if !timeout.is_finite() || timeout < 0.0 {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            "timeout_secs must be a non-negative number",
        ));
    }
    let timeout = Duration::try_from_secs_f64(timeout.min(max as f64))
        .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "timeout_secs is out of range"))?;
    // Subscribed before the first look, so a block finalized in between is not missed.
    let mut finalized = state.node.subscribe_finalized();
    let depth = state.config.search_depth;
    // A pooled transaction is not final yet (the pool forgets it only once its block is durable,
    // before the notice goes out), so only one the pool lacks needs the search of recent blocks.
    if !state.mempool.contains(&txid) {
        let found = with_store(&state, move |store| {
            Ok(search_recent(store, &txid, depth)?.map(|(b, _)| final_json(&txid, &b.block)))
        })
        .await?;
        if let Some(v) = found {
            return Ok(v);
        }
    }
    let wait = async {
        loop {
            let range = match finalized.recv().await {
                Ok(block) => (block.height, block.height),
                // Missed notices: look at every block since the last one seen, from the store.
                Err(RecvError::Lagged(missed)) => {
                    let tip = status(&state).await?.height;
                    (tip.saturating_sub(missed.min(depth)), tip)
                }
                Err(RecvError::Closed) => {
                    return Err(rpc_error(codes::MISC, "the node stopped"));
                }
            };
            let found = with_store(&state, move |store| {
                for height in range.0..=range.1 {
                    if let Some(stored) = store.block(height).map_err(store_err)?
                        && position(&stored.block, &txid).is_some()
                    {
                        return Ok(Some(final_json(&txid, &stored.block)));
                    }
                }
                Ok(None)
            })
            .await?;
            if let Some(v) = found {
                return Ok(v);
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => Ok(json!({
            "txid": txid.to_string(),
            "final": false,
            "inmempool": state.mempool.contains(&txid),
        })),
    }
}

pub(super) async fn gettxproof(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let txid = parse_txid(&args.required::<String>(0, "txid")?)?;
    let hash = args
        .optional::<String>(1, "blockhash")?
        .map(|h| parse_block_hash(&h))
        .transpose()?;
    let depth = state.config.search_depth;
    with_store(&state, move |store| {
        let (stored, index) = find_tx(store, &txid, hash, depth)?.ok_or_else(|| {
            rpc_error(
                codes::NOT_FOUND,
                format!(
                    "Transaction not found in {}; the node keeps no transaction index, so pass the \
                     block hash waitfortx returned",
                    if hash.is_some() {
                        "that block".to_string()
                    } else {
                        format!("the last {depth} blocks")
                    }
                ),
            )
        })?;
        let certificate = stored.certificate.as_ref().ok_or_else(|| {
            rpc_error(
                codes::INVALID_PARAMETER,
                "genesis outputs are final by definition and have no certificate",
            )
        })?;
        let txids: Vec<TxId> = stored
            .block
            .transactions
            .iter()
            .map(Transaction::txid)
            .collect();
        let tx = stored
            .block
            .transactions
            .get(index)
            .ok_or_else(|| rpc_error(codes::MISC, "the block changed under the search"))?;
        let receipt = FinalityReceipt::new(tx, index, &txids, &stored.block.header, certificate)
            .ok_or_else(|| rpc_error(codes::MISC, "cannot build the Merkle path"))?;
        serde_json::to_value(receipt).map_err(|e| rpc_error(codes::MISC, e.to_string()))
    })
    .await
}
