//! Every RPC method: parameters in, the node asked (the engine thread through the handle, the stores on
//! the blocking pool), JSON out. This file registers them and holds what they share; the methods live
//! by subject in `chain`, `transactions` and `node`, their JSON shapes in `shapes`.

mod chain;
mod node;
mod shapes;
mod transactions;

use std::sync::Arc;

use jsonrpsee::Extensions;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;
use timecoin_storage::ChainStore;
use timecoin_types::{Transaction, Wire};

use super::RpcState;
use super::errors::{codes, join_error, node_error, rpc_error};
use super::params::parse_hex;
use crate::NodeError;

pub(super) type RpcResult = Result<Value, ErrorObjectOwned>;
pub(super) type State = Arc<RpcState>;

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
        ($name:literal, $($f:ident)::+) => {
            module
                .register_async_method(
                    $name,
                    |params: Params<'static>, state: State, _: Extensions| async move {
                        $($f)::+(params, state).await
                    },
                )
                .map_err(|e| NodeError::Rpc(format!("cannot register {}: {e}", $name)))?;
        };
    }
    method!("getblockchaininfo", chain::getblockchaininfo);
    method!("getblockcount", chain::getblockcount);
    method!("getbestblockhash", chain::getbestblockhash);
    method!("getblockhash", chain::getblockhash);
    method!("getblock", chain::getblock);
    method!("getblockheader", chain::getblockheader);
    method!("getrawtransaction", transactions::getrawtransaction);
    method!("decoderawtransaction", transactions::decoderawtransaction);
    method!("sendrawtransaction", transactions::sendrawtransaction);
    method!("testmempoolaccept", transactions::testmempoolaccept);
    method!("gettxout", chain::gettxout);
    method!("gettxoutsetinfo", chain::gettxoutsetinfo);
    method!("getmempoolinfo", transactions::getmempoolinfo);
    method!("getrawmempool", transactions::getrawmempool);
    method!("getpeerinfo", node::getpeerinfo);
    method!("getnetworkinfo", node::getnetworkinfo);
    method!("getconnectioncount", node::getconnectioncount);
    method!("uptime", node::uptime);
    method!("stop", node::stop);
    method!("help", node::help);
    method!("getconsensusinfo", node::getconsensusinfo);
    method!("masternodelist", node::masternodelist);
    method!("masternodestatus", node::masternodestatus);
    method!("getbalance", chain::getbalance);
    method!("listunspent", chain::listunspent);
    method!("waitfortx", transactions::waitfortx);
    method!("gettxproof", transactions::gettxproof);
    Ok(())
}

/// Runs `f` with the store on the blocking pool: store reads block, and must not stall a worker.
pub(super) async fn with_store<R: Send + 'static>(
    state: &State,
    f: impl FnOnce(&dyn ChainStore) -> Result<R, ErrorObjectOwned> + Send + 'static,
) -> Result<R, ErrorObjectOwned> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(join_error)?
}

/// The node's status now (a round trip to the engine thread).
pub(super) async fn status(state: &State) -> Result<crate::NodeStatus, ErrorObjectOwned> {
    state.node.status().await.map_err(node_error)
}

/// A transaction from hex; −22 if it is not hex or not a canonical encoding.
pub(super) fn decode_tx(hex_text: &str) -> Result<Transaction, ErrorObjectOwned> {
    let bytes = parse_hex(hex_text, "hexstring")?;
    Transaction::decode(&bytes)
        .map_err(|e| rpc_error(codes::DESERIALIZATION, format!("TX decode failed: {e}")))
}

/// A store failure, as −1.
pub(super) fn store_err(e: timecoin_storage::StorageError) -> ErrorObjectOwned {
    node_error(e)
}
