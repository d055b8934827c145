//! Blocks, the UTXO set and balances.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use timecoin_crypto::Address;
use timecoin_storage::{ChainStore, StoredBlock};
use timecoin_types::{Amount, Block, BlockHash, Height, OutPoint, TxId, TxOut, Wire};

use super::shapes::{amount_json, encode_address, header_json, tx_json};
use super::{RpcResult, State, status, store_err, with_store};
use crate::SyncStatus;
use crate::rpc::disk_usage;
use crate::rpc::errors::{codes, node_error, rpc_error};
use crate::rpc::params::{Args, parse_block_hash, parse_outpoint, parse_txid};

/// The height of the finalized block with this hash; −5 if unknown.
fn height_of_block(store: &dyn ChainStore, hash: &BlockHash) -> Result<Height, ErrorObjectOwned> {
    store
        .height_of(hash)
        .map_err(store_err)?
        .ok_or_else(|| rpc_error(codes::NOT_FOUND, "Block not found"))
}

/// The hash of the block after `height`, if it is final.
fn next_hash(
    store: &dyn ChainStore,
    height: Height,
    tip: Height,
) -> Result<Option<BlockHash>, ErrorObjectOwned> {
    match height.checked_add(1) {
        Some(h) if h <= tip => Ok(store
            .header(h)
            .map_err(store_err)?
            .map(|stored| stored.header.hash())),
        _ => Ok(None),
    }
}

/// The stored block with this hash, with the tip height and the next block's hash; −5 if unknown, −1
/// (Bitcoin's words) if its body was pruned.
pub(super) fn block_by_hash(
    store: &dyn ChainStore,
    hash: BlockHash,
) -> Result<(StoredBlock, Height, Option<BlockHash>), ErrorObjectOwned> {
    let height = height_of_block(store, &hash)?;
    let stored = store
        .block_by_hash(&hash)
        .map_err(store_err)?
        .ok_or_else(|| {
            rpc_error(
                codes::MISC,
                format!("Block not available (pruned data): block {height}'s body was deleted"),
            )
        })?;
    let tip = store.tip().map_err(store_err)?.height;
    let next = next_hash(store, height, tip)?;
    Ok((stored, tip, next))
}

/// The position of `txid` in `block`.
pub(super) fn position(block: &Block, txid: &TxId) -> Option<usize> {
    block.transactions.iter().position(|tx| tx.txid() == *txid)
}

/// Searches the `depth` most recent blocks for `txid`.
pub(super) fn search_recent(
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
pub(super) fn find_tx(
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

pub(super) async fn getblockchaininfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let status = status(&state).await?;
    let dir = state.context.storage_dir.clone();
    let (utxo, floor, size) = with_store(&state, move |store| {
        let utxo = store.utxo_state().map_err(store_err)?;
        let floor = store.body_floor().map_err(store_err)?;
        // The directory's allocated bytes (a pruned log's holes count as free), as the metric reports;
        // the store's own figure where there is no directory.
        let size = match dir.as_deref().and_then(disk_usage) {
            Some(size) => Some(size),
            None => store.size_on_disk().map_err(store_err)?,
        };
        Ok((utxo, floor, size))
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
        // Blocks below the floor lack their bodies (a snapshot's base, or pruning), bar the few
        // pruning keeps where the validator schedule changed.
        "pruned": floor > 0,
        "pruneheight": floor,
        "warnings": warnings,
    }))
}

pub(super) async fn getblockcount(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(status(&state).await?.height))
}

pub(super) async fn getbestblockhash(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(status(&state).await?.tip.to_string()))
}

pub(super) async fn getblockhash(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let height: i64 = args.required(0, "height")?;
    let height = u64::try_from(height)
        .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))?;
    with_store(&state, move |store| {
        let stored = store
            .header(height)
            .map_err(store_err)?
            .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))?;
        Ok(json!(stored.header.hash().to_string()))
    })
    .await
}

pub(super) async fn getblock(params: Params<'static>, state: State) -> RpcResult {
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
        let mut v = header_json(&block.header, tip, next, Some(block.transactions.len()));
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

pub(super) async fn getblockheader(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 2)?;
    let hash = parse_block_hash(&args.required::<String>(0, "blockhash")?)?;
    let verbose = args.optional::<bool>(1, "verbose")?.unwrap_or(true);
    with_store(&state, move |store| {
        let height = height_of_block(store, &hash)?;
        // The body when it is held (for `nTx`), else the header kept for a pruned block.
        let (header, ntx) = match store.block(height).map_err(store_err)? {
            Some(stored) => (stored.block.header, Some(stored.block.transactions.len())),
            None => (
                store
                    .header(height)
                    .map_err(store_err)?
                    .ok_or_else(|| rpc_error(codes::NOT_FOUND, "Block not found"))?
                    .header,
                None,
            ),
        };
        let tip = store.tip().map_err(store_err)?.height;
        let next = next_hash(store, height, tip)?;
        if verbose {
            Ok(header_json(&header, tip, next, ntx))
        } else {
            Ok(json!(hex::encode(header.encode())))
        }
    })
    .await
}

pub(super) async fn gettxout(params: Params<'static>, state: State) -> RpcResult {
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

pub(super) async fn gettxoutsetinfo(params: Params<'static>, state: State) -> RpcResult {
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

/// Scans started again when a block lands mid-scan, before the caller is told to retry.
const SCAN_ATTEMPTS: usize = 5;

/// [`scan_once`], started again while blocks land mid-scan (a busy chain finalizes several a second,
/// and a scan of a large set spans pages), so a caller sees one tip's answer or, after
/// [`SCAN_ATTEMPTS`], an error.
fn scan(
    store: &dyn ChainStore,
    address: Address,
    after: Option<OutPoint>,
    keep: usize,
    max_scan: u64,
) -> Result<Scan, ErrorObjectOwned> {
    for _ in 0..SCAN_ATTEMPTS {
        if let Some(scan) = scan_once(store, address, after, keep, max_scan)? {
            return Ok(scan);
        }
    }
    Err(rpc_error(
        codes::MISC,
        format!("the tip moved during each of {SCAN_ATTEMPTS} scans; try again"),
    ))
}

/// One pass over the UTXO set for `address`, from `after`, reading at most `max_scan` entries and
/// keeping at most `keep` matches; `None` if the tip moved during it.
fn scan_once(
    store: &dyn ChainStore,
    address: Address,
    mut after: Option<OutPoint>,
    keep: usize,
    max_scan: u64,
) -> Result<Option<Scan>, ErrorObjectOwned> {
    let mut found = Vec::new();
    let mut scanned = 0u64;
    let mut tip = None;
    loop {
        let page = store.utxo_page(after.as_ref(), 0).map_err(store_err)?;
        match tip {
            None => tip = Some(page.tip),
            Some(t) if t != page.tip => return Ok(None),
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
                return Ok(Some(stop(found, after, scanned)));
            }
            scanned += 1;
            after = Some(outpoint);
            if out.address == address {
                found.push((outpoint, out));
            }
        }
        match page.next {
            None => return Ok(Some(stop(found, None, scanned))),
            Some(next) => after = Some(next),
        }
    }
}

pub(super) async fn getbalance(params: Params<'static>, state: State) -> RpcResult {
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

pub(super) async fn listunspent(params: Params<'static>, state: State) -> RpcResult {
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
    let mempool = std::sync::Arc::clone(&state.mempool);
    with_store(&state, move |store| {
        let Scan {
            found,
            next,
            scanned,
            tip,
        } = scan(store, address, after, limit as usize, max_scan)?;
        Ok(json!({
            // A coin a pooled transaction already spends is listed (it is final and unspent) and
            // names that transaction, so a wallet leaves it out of its next payment.
            "utxos": found.iter().map(|(op, out)| json!({
                "txid": op.txid.to_string(),
                "vout": op.vout,
                "value": amount_json(out.amount),
                "value_sat": out.amount.as_sat(),
                "pending_spend": mempool.spender(op).map(|t| t.to_string()),
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
