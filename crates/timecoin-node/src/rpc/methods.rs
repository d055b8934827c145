//! Every RPC method: parameters in, the node asked (the engine thread through the handle, the stores on
//! the blocking pool), JSON out.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::Extensions;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use timecoin_consensus::Step;
use timecoin_crypto::Address;
use timecoin_storage::{ChainStore, StoredBlock};
use timecoin_types::{
    Amount, Block, BlockHash, BlockHeader, Height, OutPoint, Transaction, TxId, TxKind, TxOut,
    TypesError, Wire, check_tx,
};
use tokio::sync::broadcast::error::RecvError;

use super::errors::{codes, join_error, node_error, rpc_error};
use super::params::{Args, parse_block_hash, parse_hex, parse_outpoint, parse_txid};
use super::receipt::FinalityReceipt;
use super::{RpcState, disk_usage};
use crate::{NodeError, StoreView, SyncStatus};

type RpcResult = Result<Value, ErrorObjectOwned>;
type State = Arc<RpcState>;

/// Most transactions one `testmempoolaccept` call checks (Bitcoin's package limit).
pub(crate) const MAX_TEST_ACCEPT: usize = 25;

/// Every method with its parameters and a line on what it does, for `help`.
pub(crate) const METHODS: &[(&str, &str, &str)] = &[
    (
        "getblockchaininfo",
        "",
        "chain, tip, sync state, disk usage",
    ),
    ("getblockcount", "", "the finalized tip's height"),
    ("getbestblockhash", "", "the finalized tip's hash"),
    (
        "getblockhash",
        "height",
        "the hash of the block at a height",
    ),
    (
        "getblock",
        "blockhash [verbosity=1]",
        "a block: 0 hex, 1 JSON with txids, 2 JSON with transactions",
    ),
    (
        "getblockheader",
        "blockhash [verbose=true]",
        "a block header as JSON, or hex",
    ),
    (
        "getrawtransaction",
        "txid [verbose=false] [blockhash]",
        "a pooled or finalized transaction (recent blocks are searched without a block hash)",
    ),
    (
        "decoderawtransaction",
        "hexstring",
        "a transaction's fields",
    ),
    (
        "sendrawtransaction",
        "hexstring",
        "submits a transaction; answers its txid once pooled",
    ),
    (
        "testmempoolaccept",
        "[hexstring, ...]",
        "whether transactions would pass the chain rules now, changing nothing",
    ),
    (
        "gettxout",
        "txid n [include_mempool=true]",
        "an unspent output, or null",
    ),
    (
        "gettxoutsetinfo",
        "",
        "UTXO count, total amount and commitment",
    ),
    ("getmempoolinfo", "", "pool size, bytes and counters"),
    ("getrawmempool", "[verbose=false]", "the pooled txids"),
    ("getpeerinfo", "", "connected peers"),
    (
        "getnetworkinfo",
        "",
        "version, network and connection counts",
    ),
    ("getconnectioncount", "", "connected peers"),
    ("uptime", "", "seconds since the node started"),
    ("stop", "", "asks the daemon to shut down"),
    ("help", "[command]", "this list, or one command's usage"),
    (
        "getconsensusinfo",
        "",
        "height, view, phase, leader, quorum weight, last finality latency",
    ),
    ("masternodelist", "", "the current validator set"),
    (
        "masternodestatus",
        "[operator_key]",
        "whether this node's (or the given) key is in the set",
    ),
    (
        "getbalance",
        "address",
        "the finalized balance of an address",
    ),
    (
        "listunspent",
        "address [limit] [after]",
        "an address's unspent outputs, a page at a time",
    ),
    (
        "waitfortx",
        "txid [timeout_secs]",
        "returns when the transaction is final, or at the timeout",
    ),
    (
        "gettxproof",
        "txid [blockhash]",
        "a finality receipt, verifiable offline against the validator set",
    ),
];

/// Registers every method on `module`.
pub(crate) fn register(module: &mut RpcModule<RpcState>) -> Result<(), NodeError> {
    macro_rules! method {
        ($name:literal, $f:ident) => {
            module
                .register_async_method(
                    $name,
                    |params: Params<'static>, state: State, _: Extensions| async move {
                        $f(params, state).await
                    },
                )
                .map_err(|e| NodeError::Rpc(format!("cannot register {}: {e}", $name)))?;
        };
    }
    method!("getblockchaininfo", getblockchaininfo);
    method!("getblockcount", getblockcount);
    method!("getbestblockhash", getbestblockhash);
    method!("getblockhash", getblockhash);
    method!("getblock", getblock);
    method!("getblockheader", getblockheader);
    method!("getrawtransaction", getrawtransaction);
    method!("decoderawtransaction", decoderawtransaction);
    method!("sendrawtransaction", sendrawtransaction);
    method!("testmempoolaccept", testmempoolaccept);
    method!("gettxout", gettxout);
    method!("gettxoutsetinfo", gettxoutsetinfo);
    method!("getmempoolinfo", getmempoolinfo);
    method!("getrawmempool", getrawmempool);
    method!("getpeerinfo", getpeerinfo);
    method!("getnetworkinfo", getnetworkinfo);
    method!("getconnectioncount", getconnectioncount);
    method!("uptime", uptime);
    method!("stop", stop);
    method!("help", help);
    method!("getconsensusinfo", getconsensusinfo);
    method!("masternodelist", masternodelist);
    method!("masternodestatus", masternodestatus);
    method!("getbalance", getbalance);
    method!("listunspent", listunspent);
    method!("waitfortx", waitfortx);
    method!("gettxproof", gettxproof);
    Ok(())
}

// ---- plumbing ----

/// Runs `f` with the store on the blocking pool: store reads block, and must not stall a worker.
async fn with_store<R: Send + 'static>(
    state: &State,
    f: impl FnOnce(&dyn ChainStore) -> Result<R, ErrorObjectOwned> + Send + 'static,
) -> Result<R, ErrorObjectOwned> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(join_error)?
}

async fn status(state: &State) -> Result<crate::NodeStatus, ErrorObjectOwned> {
    state.node.status().await.map_err(node_error)
}

fn amount_json(amount: Amount) -> Value {
    json!(format!(
        "{}.{:08}",
        amount.as_sat() / timecoin_types::COIN,
        amount.as_sat() % timecoin_types::COIN
    ))
}

fn encode_address(state: &State, address: &Address) -> String {
    address.encode(state.context.genesis.params.network)
}

fn output_json(state: &State, n: usize, out: &TxOut) -> Value {
    json!({
        "n": n,
        "value": amount_json(out.amount),
        "value_sat": out.amount.as_sat(),
        "address": encode_address(state, &out.address),
    })
}

fn kind_json(kind: &TxKind) -> Value {
    match kind {
        TxKind::Transfer => json!({ "type": "transfer" }),
        TxKind::RegisterMasternode(reg) => json!({
            "type": "register_masternode",
            "tier": reg.tier.name(),
            "operator_key": reg.operator_key.to_hex(),
            "collateral": reg.collateral.map(|c| c.to_string()),
        }),
        TxKind::DeregisterMasternode { operator_key } => json!({
            "type": "deregister_masternode",
            "operator_key": operator_key.to_hex(),
        }),
        TxKind::Reward { height } => json!({ "type": "reward", "height": height }),
    }
}

fn tx_json(state: &State, tx: &Transaction) -> Value {
    let txid = tx.txid();
    json!({
        "txid": txid.to_string(),
        "hash": tx.witness_hash(&txid).to_hex(),
        "version": tx.version,
        "size": tx.encoded_len(),
        "kind": kind_json(&tx.kind),
        "vin": tx.inputs.iter().map(|i| json!({
            "txid": i.prevout.txid.to_string(),
            "vout": i.prevout.vout,
            "public_key": i.public_key.to_hex(),
            "signature": hex::encode(i.signature.as_bytes()),
        })).collect::<Vec<_>>(),
        "vout": tx.outputs.iter().enumerate().map(|(n, o)| output_json(state, n, o)).collect::<Vec<_>>(),
    })
}

fn header_json(header: &BlockHeader, tip: Height, next: Option<BlockHash>, ntx: usize) -> Value {
    let mut v = json!({
        "hash": header.hash().to_string(),
        "confirmations": tip.saturating_sub(header.height).saturating_add(1),
        "height": header.height,
        "view": header.view,
        "chain_id": header.chain_id.0,
        "time": header.timestamp_ms / 1000,
        "timestamp_ms": header.timestamp_ms,
        "proposer": header.proposer.to_hex(),
        "merkleroot": header.tx_root.to_hex(),
        "witnessroot": header.witness_root.to_hex(),
        "utxocommitment": header.utxo_commitment.to_hex(),
        "nTx": ntx,
    });
    if header.height > 0
        && let Some(map) = v.as_object_mut()
    {
        map.insert("previousblockhash".into(), json!(header.parent.to_string()));
    }
    if let (Some(next), Some(map)) = (next, v.as_object_mut()) {
        map.insert("nextblockhash".into(), json!(next.to_string()));
    }
    v
}

fn decode_tx(hex_text: &str) -> Result<Transaction, ErrorObjectOwned> {
    let bytes = parse_hex(hex_text, "hexstring")?;
    Transaction::decode(&bytes)
        .map_err(|e| rpc_error(codes::DESERIALIZATION, format!("TX decode failed: {e}")))
}

fn store_err(e: timecoin_storage::StorageError) -> ErrorObjectOwned {
    node_error(e)
}

/// The stored block with this hash, with the tip height and the next block's hash; −5 if unknown.
fn block_by_hash(
    store: &dyn ChainStore,
    hash: BlockHash,
) -> Result<(StoredBlock, Height, Option<BlockHash>), ErrorObjectOwned> {
    let stored = store
        .block_by_hash(&hash)
        .map_err(store_err)?
        .ok_or_else(|| rpc_error(codes::NOT_FOUND, "Block not found"))?;
    let tip = store.tip().map_err(store_err)?.height;
    let next = match stored.block.header.height.checked_add(1) {
        Some(h) if h <= tip => store.block(h).map_err(store_err)?.map(|b| b.block.hash()),
        _ => None,
    };
    Ok((stored, tip, next))
}

/// The position of `txid` in `block`.
fn position(block: &Block, txid: &TxId) -> Option<usize> {
    block.transactions.iter().position(|tx| tx.txid() == *txid)
}

/// Searches the `depth` most recent blocks for `txid`.
fn search_recent(
    store: &dyn ChainStore,
    txid: &TxId,
    depth: u64,
) -> Result<Option<(StoredBlock, usize)>, ErrorObjectOwned> {
    let tip = store.tip().map_err(store_err)?.height;
    let lowest = tip.saturating_sub(depth.saturating_sub(1)).max(1);
    for height in (lowest..=tip).rev() {
        if let Some(stored) = store.block(height).map_err(store_err)?
            && let Some(i) = position(&stored.block, txid)
        {
            return Ok(Some((stored, i)));
        }
    }
    Ok(None)
}

/// The block holding `txid`: the one named by `hash`, or a search of recent blocks.
fn find_tx(
    store: &dyn ChainStore,
    txid: &TxId,
    hash: Option<BlockHash>,
    depth: u64,
) -> Result<Option<(StoredBlock, usize)>, ErrorObjectOwned> {
    match hash {
        Some(hash) => {
            let (stored, _, _) = block_by_hash(store, hash)?;
            Ok(position(&stored.block, txid).map(|i| (stored, i)))
        }
        None => search_recent(store, txid, depth),
    }
}

// ---- chain and blocks ----

async fn getblockchaininfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let status = status(&state).await?;
    let dir = state.context.storage_dir.clone();
    let (utxo, base, size) = with_store(&state, move |store| {
        let utxo = store.utxo_state().map_err(store_err)?;
        let base = store.base_height().map_err(store_err)?;
        Ok((utxo, base, dir.as_deref().and_then(disk_usage)))
    })
    .await?;
    let (syncing, target) = match status.sync {
        SyncStatus::Synced => (false, status.height),
        SyncStatus::Syncing { target } => (true, target),
    };
    let genesis = &state.context.genesis;
    let mut warnings = Vec::new();
    if size.is_none() {
        warnings.push(
            "size_on_disk unknown: the node keeps its chain in memory or gave no storage directory",
        );
    }
    Ok(json!({
        "chain": genesis.params.network.to_string(),
        "chain_id": genesis.params.chain_id.0,
        "genesis": genesis.block().hash().to_string(),
        "blocks": status.height,
        "headers": target.max(status.height),
        "bestblockhash": status.tip.to_string(),
        "utxocommitment": utxo.hash.checksum().to_hex(),
        "verificationprogress": if target == 0 { 1.0 } else { (status.height as f64 / target as f64).min(1.0) },
        "initialblockdownload": syncing,
        "size_on_disk": size,
        "pruned": base > 0,
        "pruneheight": base,
        "warnings": warnings,
    }))
}

async fn getblockcount(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(status(&state).await?.height))
}

async fn getbestblockhash(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(status(&state).await?.tip.to_string()))
}

async fn getblockhash(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let height: i64 = args.required(0, "height")?;
    let height = u64::try_from(height)
        .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))?;
    with_store(&state, move |store| {
        let block = store
            .block(height)
            .map_err(store_err)?
            .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))?;
        Ok(json!(block.block.hash().to_string()))
    })
    .await
}

async fn getblock(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let hash = parse_block_hash(&args.required::<String>(0, "blockhash")?)?;
    // Bitcoin accepts `true`/`false` for 1/0 too.
    let verbosity = match args.optional::<Value>(1, "verbosity")? {
        None => 1,
        Some(Value::Bool(b)) => u8::from(b),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v @ 0..=2) => v as u8,
            _ => {
                return Err(rpc_error(
                    codes::INVALID_PARAMETER,
                    "verbosity must be 0, 1 or 2",
                ));
            }
        },
        Some(_) => {
            return Err(rpc_error(
                codes::INVALID_PARAMS,
                "verbosity must be a number",
            ));
        }
    };
    let state2 = state.clone();
    with_store(&state, move |store| {
        let (stored, tip, next) = block_by_hash(store, hash)?;
        let block = &stored.block;
        if verbosity == 0 {
            return Ok(json!(hex::encode(block.encode())));
        }
        let mut v = header_json(&block.header, tip, next, block.transactions.len());
        let txs: Vec<Value> = if verbosity == 1 {
            block
                .transactions
                .iter()
                .map(|t| json!(t.txid().to_string()))
                .collect()
        } else {
            block
                .transactions
                .iter()
                .map(|t| tx_json(&state2, t))
                .collect()
        };
        if let Some(map) = v.as_object_mut() {
            map.insert(
                "size".into(),
                json!(timecoin_types::codec::encoded_len(block)),
            );
            map.insert("tx".into(), json!(txs));
            map.insert(
                "certificate".into(),
                match &stored.certificate {
                    Some(c) => json!({
                        "view": c.view,
                        "signers": c.signatures.iter().map(|(k, _)| k.to_hex()).collect::<Vec<_>>(),
                    }),
                    None => Value::Null,
                },
            );
        }
        Ok(v)
    })
    .await
}

async fn getblockheader(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let hash = parse_block_hash(&args.required::<String>(0, "blockhash")?)?;
    let verbose = args.optional::<bool>(1, "verbose")?.unwrap_or(true);
    with_store(&state, move |store| {
        let (stored, tip, next) = block_by_hash(store, hash)?;
        let header = &stored.block.header;
        if verbose {
            Ok(header_json(
                header,
                tip,
                next,
                stored.block.transactions.len(),
            ))
        } else {
            Ok(json!(hex::encode(header.encode())))
        }
    })
    .await
}

// ---- transactions ----

async fn getrawtransaction(params: Params<'static>, state: State) -> RpcResult {
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

async fn decoderawtransaction(params: Params<'static>, state: State) -> RpcResult {
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

async fn sendrawtransaction(params: Params<'static>, state: State) -> RpcResult {
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

async fn testmempoolaccept(params: Params<'static>, state: State) -> RpcResult {
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

async fn gettxout(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 3)?;
    let txid = parse_txid(&args.required::<String>(0, "txid")?)?;
    let vout: i64 = args.required(1, "n")?;
    let vout = u32::try_from(vout)
        .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "n must be 0 to 2^32-1"))?;
    let include_mempool = args.optional::<bool>(2, "include_mempool")?.unwrap_or(true);
    let outpoint = OutPoint { txid, vout };
    let (found, tip) = with_store(&state, move |store| {
        let tip = store.tip().map_err(store_err)?;
        Ok((store.utxo(&outpoint).map_err(store_err)?, tip))
    })
    .await?;
    let shape = |out: &TxOut, confirmed: bool| {
        json!({
            "bestblock": tip.hash.to_string(),
            "final": confirmed,
            "confirmations": if confirmed { Value::Null } else { json!(0) },
            "value": amount_json(out.amount),
            "value_sat": out.amount.as_sat(),
            "address": encode_address(&state, &out.address),
        })
    };
    if let Some(out) = found {
        return Ok(shape(&out, true));
    }
    if include_mempool
        && let Some(tx) = state.mempool.get(&txid)
        && let Some(out) = tx.outputs.get(vout as usize)
    {
        return Ok(shape(out, false));
    }
    Ok(Value::Null)
}

async fn gettxoutsetinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 1)?;
    with_store(&state, |store| {
        let utxo = store.utxo_state().map_err(store_err)?;
        let total = crate::utxo_total(store).map_err(node_error)?;
        // The set may have moved on while it was summed: only a total read at one tip is reported.
        let again = store.utxo_state().map_err(store_err)?;
        if again.tip != utxo.tip {
            return Err(rpc_error(
                codes::MISC,
                "the tip moved while summing; try again",
            ));
        }
        Ok(json!({
            "height": utxo.tip.height,
            "bestblock": utxo.tip.hash.to_string(),
            "txouts": utxo.count,
            "total_amount": amount_json(total),
            "total_amount_sat": total.as_sat(),
            "utxo_commitment": utxo.hash.checksum().to_hex(),
        }))
    })
    .await
}

// ---- mempool ----

async fn getmempoolinfo(params: Params<'static>, state: State) -> RpcResult {
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

async fn getrawmempool(params: Params<'static>, state: State) -> RpcResult {
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

// ---- network ----

async fn connections(state: &State) -> Result<(usize, usize, usize), ErrorObjectOwned> {
    match &state.context.peers {
        Some(peers) => {
            let c = peers.counts();
            Ok((c.inbound + c.outbound, c.inbound, c.outbound))
        }
        None => {
            let peers = status(state).await?.peers;
            Ok((peers, 0, 0))
        }
    }
}

async fn getpeerinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let peers = state
        .context
        .peers
        .as_ref()
        .map(|p| p.peers())
        .unwrap_or_default();
    Ok(json!(
        peers
            .iter()
            .map(|p| json!({ "id": p.id, "banscore": p.score }))
            .collect::<Vec<_>>()
    ))
}

async fn getnetworkinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let (total, inbound, outbound) = connections(&state).await?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "subversion": concat!("/timecoin:", env!("CARGO_PKG_VERSION"), "/"),
        "network": state.context.genesis.params.network.to_string(),
        "networkactive": true,
        "connections": total,
        "connections_in": inbound,
        "connections_out": outbound,
        "relayfee_sat": state.context.genesis.params.min_tx_fee.as_sat(),
        "warnings": if state.context.peers.is_none() { vec!["no network attached: counts are the engine's view"] } else { Vec::new() },
    }))
}

async fn getconnectioncount(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(connections(&state).await?.0))
}

// ---- control ----

async fn uptime(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(state.node.loop_stats().started().elapsed().as_secs()))
}

async fn stop(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    tracing::info!("stop requested over rpc");
    state.stop.send_replace(true);
    Ok(json!("TimeCoin server stopping"))
}

async fn help(params: Params<'static>, _state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    match args.optional::<String>(0, "command")? {
        None => Ok(json!(
            METHODS
                .iter()
                .map(|(name, params, _)| format!("{name} {params}").trim_end().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )),
        Some(command) => METHODS
            .iter()
            .find(|(name, _, _)| *name == command)
            .map(|(name, params, what)| json!(format!("{name} {params}\n\n{what}")))
            .ok_or_else(|| {
                rpc_error(
                    codes::INVALID_PARAMETER,
                    format!(
                        "help: unknown command: {}",
                        command.chars().take(64).collect::<String>()
                    ),
                )
            }),
    }
}

// ---- TimeCoin's own ----

async fn getconsensusinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let info = state
        .node
        .query(|node| {
            let engine = node.engine();
            let core = engine.core();
            let round = core.round_state().map(|r| (r.height, r.view, r.step));
            let set = core
                .validators()
                .cloned()
                .unwrap_or_else(|| engine.registry().current());
            let leader = round.map(|(h, v, _)| *set.leader(h, v));
            (
                engine.finalized_height(),
                round,
                set,
                leader,
                engine.public_key(),
            )
        })
        .await
        .map_err(node_error)?;
    let (height, round, set, leader, me) = info;
    let total = set.total_weight();
    // The least weight w with 3w > 2·total.
    let quorum = total.saturating_mul(2) / 3 + 1;
    let phase = round.map(|(_, _, step)| match step {
        Step::PrePrepare => "preprepare",
        Step::Prepare => "prepare",
        Step::Commit => "commit",
        Step::Finalized => "finalized",
    });
    let stats = state.node.loop_stats();
    Ok(json!({
        "height": height,
        "deciding": round.map(|(h, _, _)| h),
        "view": round.map(|(_, v, _)| v),
        "phase": phase,
        "leader": leader.map(|k| k.to_hex()),
        "validators": set.len(),
        "total_weight": total,
        "quorum_weight": quorum,
        "validator": set.contains(&me),
        "operator_key": me.to_hex(),
        "view_changes": stats.view_changes(),
        "last_finality_latency_ms": stats.last_finality_latency().map(|d| d.as_secs_f64() * 1000.0),
    }))
}

async fn current_set(
    state: &State,
) -> Result<
    (
        Arc<timecoin_consensus::ValidatorSet>,
        timecoin_crypto::PublicKey,
    ),
    ErrorObjectOwned,
> {
    state
        .node
        .query(|node| {
            (
                node.engine().registry().current(),
                node.engine().public_key(),
            )
        })
        .await
        .map_err(node_error)
}

async fn masternodelist(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let (set, _) = current_set(&state).await?;
    Ok(json!(
        set.members()
            .iter()
            .map(|v| json!({
                "operator_key": v.key.to_hex(),
                "tier": v.tier.name(),
                "weight": v.weight(),
                "owner": encode_address(&state, &v.owner),
                "collateral": v.collateral.map(|c| c.to_string()),
            }))
            .collect::<Vec<_>>()
    ))
}

async fn masternodestatus(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let asked = args
        .optional::<String>(0, "operator_key")?
        .map(|k| {
            timecoin_crypto::PublicKey::from_hex(&k).map_err(|_| {
                rpc_error(
                    codes::INVALID_PARAMETER,
                    "operator_key must be 64 hex characters of a public key",
                )
            })
        })
        .transpose()?;
    let (set, me) = current_set(&state).await?;
    let key = asked.unwrap_or(me);
    Ok(match set.get(&key) {
        Some(v) => json!({
            "operator_key": key.to_hex(),
            "status": "active",
            "tier": v.tier.name(),
            "weight": v.weight(),
            "share": v.weight() as f64 / set.total_weight().max(1) as f64,
            "owner": encode_address(&state, &v.owner),
            "collateral": v.collateral.map(|c| c.to_string()),
        }),
        None => {
            json!({ "operator_key": key.to_hex(), "status": "not in the current validator set" })
        }
    })
}

fn parse_address(state: &State, text: &str) -> Result<Address, ErrorObjectOwned> {
    Address::decode_for(text, state.context.genesis.params.network).map_err(|e| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("invalid address for this network: {e}"),
        )
    })
}

/// What one [`scan`] found.
struct Scan {
    /// The matches, in outpoint order.
    found: Vec<(OutPoint, TxOut)>,
    /// Where to continue (`None`: the scan reached the end of the set).
    next: Option<OutPoint>,
    /// Entries read.
    scanned: u64,
    /// The tip every page was read at.
    tip: timecoin_storage::ChainTip,
}

/// One pass over the UTXO set for `address`, from `after`, reading at most `max_scan` entries and
/// keeping at most `keep` matches.
fn scan(
    store: &dyn ChainStore,
    address: Address,
    mut after: Option<OutPoint>,
    keep: usize,
    max_scan: u64,
) -> Result<Scan, ErrorObjectOwned> {
    let mut found = Vec::new();
    let mut scanned = 0u64;
    let mut tip = None;
    loop {
        let page = store.utxo_page(after.as_ref(), 0).map_err(store_err)?;
        match tip {
            None => tip = Some(page.tip),
            Some(t) if t != page.tip => {
                return Err(rpc_error(
                    codes::MISC,
                    "the tip moved during the scan; try again",
                ));
            }
            Some(_) => {}
        }
        let stop = |found: Vec<(OutPoint, TxOut)>, next: Option<OutPoint>, scanned: u64| Scan {
            found,
            next,
            scanned,
            tip: page.tip,
        };
        for (outpoint, out) in page.entries.iter().copied() {
            if scanned >= max_scan || found.len() >= keep {
                return Ok(stop(found, after, scanned));
            }
            scanned += 1;
            after = Some(outpoint);
            if out.address == address {
                found.push((outpoint, out));
            }
        }
        match page.next {
            None => return Ok(stop(found, None, scanned)),
            Some(next) => after = Some(next),
        }
    }
}

async fn getbalance(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let address = parse_address(&state, &args.required::<String>(0, "address")?)?;
    let max_scan = state.config.max_scan;
    let state2 = state.clone();
    with_store(&state, move |store| {
        let Scan {
            found,
            next,
            scanned,
            tip,
        } = scan(store, address, None, usize::MAX, max_scan)?;
        if next.is_some() {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!(
                    "the UTXO set is larger than the {max_scan} entries one call may read (no address \
                     index); use listunspent's pages"
                ),
            ));
        }
        let total = Amount::checked_sum(found.iter().map(|(_, o)| o.amount))
            .ok_or_else(|| rpc_error(codes::MISC, "the balance overflows"))?;
        Ok(json!({
            "address": encode_address(&state2, &address),
            "balance": amount_json(total),
            "balance_sat": total.as_sat(),
            "utxos": found.len(),
            "height": tip.height,
            "scanned": scanned,
        }))
    })
    .await
}

async fn listunspent(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 3)?;
    let address = parse_address(&state, &args.required::<String>(0, "address")?)?;
    let limit = args.optional::<u64>(1, "limit")?.unwrap_or(100);
    if limit == 0 || limit > state.config.max_page as u64 {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("limit must be 1 to {}", state.config.max_page),
        ));
    }
    let after = args
        .optional::<String>(2, "after")?
        .map(|a| parse_outpoint(&a))
        .transpose()?;
    let max_scan = state.config.max_scan;
    let state2 = state.clone();
    with_store(&state, move |store| {
        let Scan {
            found,
            next,
            scanned,
            tip,
        } = scan(store, address, after, limit as usize, max_scan)?;
        Ok(json!({
            "utxos": found.iter().map(|(op, out)| json!({
                "txid": op.txid.to_string(),
                "vout": op.vout,
                "value": amount_json(out.amount),
                "value_sat": out.amount.as_sat(),
            })).collect::<Vec<_>>(),
            "next": next.map(|n| n.to_string()),
            "scanned": scanned,
            "height": tip.height,
            "bestblock": tip.hash.to_string(),
            "address": encode_address(&state2, &address),
        }))
    })
    .await
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

async fn waitfortx(params: Params<'static>, state: State) -> RpcResult {
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

async fn gettxproof(params: Params<'static>, state: State) -> RpcResult {
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
