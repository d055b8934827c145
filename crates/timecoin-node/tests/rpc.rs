//! The JSON-RPC server and the metrics server over real HTTP on 127.0.0.1: a node on its own engine
//! thread (`runner::spawn`), the RPC in front of it, and a plain HTTP/1.1 client that sends exactly
//! the bytes a `curl` would, auth header included or not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use timecoin_consensus::ValidatorSet;
use timecoin_crypto::Address;
use timecoin_net::{NetEvent, PeerId};
use timecoin_node::metrics::{self, MetricsConfig, NodeMetrics};
use timecoin_node::rpc::{self, COOKIE_FILE, NodeContext, RpcConfig, RpcServer, codes};
use timecoin_node::runner::{self, NodeHandle};
use timecoin_node::{NodeBuilder, NodeConfig, NodeError};
use timecoin_storage::ChainDb;
use timecoin_types::{Amount, Genesis, Transaction, TxBuilder, Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A node of `validators` local validators, run as validator 0, with its RPC on an ephemeral port.
struct TestNode {
    genesis: Genesis,
    handle: NodeHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    events: mpsc::Sender<NetEvent>,
    server: Option<RpcServer>,
    dir: tempfile::TempDir,
    rpc: Client,
    /// The registry whose commit timer the node's store feeds, if it was started with one.
    metrics: Option<NodeMetrics>,
}

impl TestNode {
    async fn start(validators: usize) -> TestNode {
        Self::launch(validators, |_| {}, |_| {}, None).await
    }

    async fn start_with(validators: usize, tweak: impl FnOnce(&mut RpcConfig)) -> TestNode {
        Self::launch(validators, |_| {}, tweak, None).await
    }

    async fn start_configured(
        validators: usize,
        node_tweak: impl FnOnce(&mut NodeConfig),
        tweak: impl FnOnce(&mut RpcConfig),
    ) -> TestNode {
        Self::launch(validators, node_tweak, tweak, None).await
    }

    /// A node whose block commits are timed into a registry kept in [`TestNode::metrics`].
    async fn start_timed(validators: usize) -> TestNode {
        Self::launch(validators, |_| {}, |_| {}, Some(NodeMetrics::new())).await
    }

    async fn launch(
        validators: usize,
        node_tweak: impl FnOnce(&mut NodeConfig),
        tweak: impl FnOnce(&mut RpcConfig),
        metrics: Option<NodeMetrics>,
    ) -> TestNode {
        let genesis = Genesis::local(validators);
        let mut node_config = NodeConfig::new(&genesis);
        node_tweak(&mut node_config);
        let mut builder = NodeBuilder::new(node_config, genesis.clone())
            .chain_db(ChainDb::memory(&genesis).unwrap())
            .signer(Arc::new(Genesis::local_validator_key(0)));
        if let Some(metrics) = &metrics {
            builder = builder.commit_timer(metrics.commit_seconds());
        }
        let node = builder.build().unwrap();
        let (events, receiver) = mpsc::channel(16);
        let (handle, thread) =
            runner::spawn(node, receiver, tokio::runtime::Handle::current()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cookie_dir: Some(dir.path().to_path_buf()),
            ..RpcConfig::default()
        };
        tweak(&mut config);
        let server = rpc::start(&config, handle.clone(), context(&genesis, &dir))
            .await
            .unwrap();
        let credentials = match (&config.user, &config.password) {
            (Some(u), Some(p)) => format!("{u}:{p}"),
            _ => std::fs::read_to_string(dir.path().join(COOKIE_FILE)).unwrap(),
        };
        let rpc = Client {
            addr: server.local_addr(),
            auth: Some(credentials),
        };
        TestNode {
            genesis,
            handle,
            thread: Some(thread),
            events,
            server: Some(server),
            dir,
            rpc,
            metrics,
        }
    }

    fn context(&self) -> NodeContext {
        context(&self.genesis, &self.dir)
    }

    async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.handle.stop().await.unwrap();
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}

fn context(genesis: &Genesis, dir: &tempfile::TempDir) -> NodeContext {
    NodeContext {
        storage_dir: Some(dir.path().to_path_buf()),
        ..NodeContext::new(Arc::new(genesis.clone()))
    }
}

/// A JSON-RPC client over a plain HTTP/1.1 connection per call.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    /// `user:password`, or nothing to send no `Authorization` header.
    auth: Option<String>,
}

impl Client {
    /// Sends `body` and returns the HTTP status and body.
    async fn post(&self, body: &str) -> (u16, String) {
        http(self.addr, "POST", "/", self.auth.as_deref(), body).await
    }

    /// Calls `method`; `Err((code, message))` for a JSON-RPC error.
    async fn call(&self, method: &str, params: Value) -> Result<Value, (i64, String)> {
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let (status, body) = self.post(&request.to_string()).await;
        assert_eq!(status, 200, "{method}: HTTP {status}: {body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        match reply.get("error") {
            Some(error) => Err((
                error["code"].as_i64().unwrap(),
                error["message"].as_str().unwrap().to_string(),
            )),
            None => Ok(reply["result"].clone()),
        }
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        match self.call(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{method}({params}) failed: {e:?}"),
        }
    }

    /// Calls `method` expecting error `code`; returns the message.
    async fn fails(&self, method: &str, params: Value, code: i32) -> String {
        match self.call(method, params.clone()).await {
            Ok(v) => panic!("{method}({params}) answered {v}, expected error {code}"),
            Err((got, message)) => {
                assert_eq!(got, i64::from(code), "{method}({params}): {message}");
                message
            }
        }
    }
}

/// One HTTP/1.1 exchange with `Connection: close`; the body is de-chunked if need be.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(auth) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
        request.push_str(&format!("Authorization: Basic {encoded}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("the server did not answer within 30 s")
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// Validator 0 pays `pay` TIME to validator 9's address from its genesis coin, with a 1,000 sat fee.
fn transfer(genesis: &Genesis, pay: u64) -> Transaction {
    let key = Genesis::local_validator_key(0);
    let (coin, out) = genesis.utxos()[0];
    let pay = Amount::from_time(pay).unwrap();
    TxBuilder::new(genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(recipient(), pay)
        .output(
            out.address,
            Amount::from_sat(out.amount.as_sat() - pay.as_sat() - 1_000),
        )
        .sign()
}

fn recipient() -> Address {
    Address::from_public_key(&Genesis::local_validator_key(9).public_key())
}

fn address_text(genesis: &Genesis, address: &Address) -> String {
    address.encode(genesis.params.network)
}

fn hex_of(tx: &Transaction) -> String {
    hex::encode(tx.encode())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_goes_from_sendrawtransaction_to_a_receipt_verified_offline() {
    let node = TestNode::start(1).await;
    let rpc = node.rpc.clone();
    let tx = transfer(&node.genesis, 5);
    let txid = tx.txid().to_string();

    // A waiter that starts before the transaction exists sees it become final.
    let waiter = {
        let rpc = rpc.clone();
        let txid = txid.clone();
        tokio::spawn(async move { rpc.ok("waitfortx", json!([txid, 30])).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rpc.ok("sendrawtransaction", json!([hex_of(&tx)])).await,
        json!(txid)
    );
    let done = waiter.await.unwrap();
    assert_eq!(done["final"], json!(true), "{done}");
    assert_eq!(done["height"], json!(1));
    let blockhash = done["blockhash"].as_str().unwrap().to_string();
    assert_eq!(
        rpc.ok("getbestblockhash", json!([])).await,
        json!(blockhash)
    );
    // Already final: waitfortx answers at once.
    let again = rpc.ok("waitfortx", json!([txid, 1])).await;
    assert_eq!(again["blockhash"], json!(blockhash));

    // The receipt checks out offline against the validator set, and a forged one does not.
    let receipt = rpc.ok("gettxproof", json!([txid, blockhash])).await;
    let receipt: rpc::FinalityReceipt = serde_json::from_value(receipt).unwrap();
    let set = ValidatorSet::from_genesis(&node.genesis).unwrap();
    let chain = node.genesis.params.chain_id;
    let verified = rpc::verify_receipt(&receipt, &set, chain).unwrap();
    assert_eq!(verified.txid, tx.txid());
    assert_eq!(verified.height, 1);
    assert_eq!(verified.tx, tx);
    let by_search = rpc.ok("gettxproof", json!([txid])).await;
    assert_eq!(serde_json::to_value(&receipt).unwrap(), by_search);
    let mut forged = receipt.clone();
    forged.tx = hex_of(&transfer(&node.genesis, 6));
    forged.txid = transfer(&node.genesis, 6).txid().to_string();
    assert!(matches!(
        rpc::verify_receipt(&forged, &set, chain),
        Err(NodeError::InvalidReceipt(_))
    ));
    let strangers = ValidatorSet::from_genesis(&Genesis::local(4)).unwrap();
    assert!(rpc::verify_receipt(&receipt, &strangers, chain).is_err());

    // The chain shows it everywhere.
    let raw = rpc
        .ok("getrawtransaction", json!([txid, false, blockhash]))
        .await;
    assert_eq!(raw, json!(hex_of(&tx)));
    let verbose = rpc.ok("getrawtransaction", json!([txid, true])).await;
    assert_eq!(verbose["blockhash"], json!(blockhash));
    assert_eq!(verbose["confirmations"], json!(1));
    let out = rpc.ok("gettxout", json!([txid, 0])).await;
    assert_eq!(out["value_sat"], json!(5 * timecoin_types::COIN));
    assert_eq!(out["final"], json!(true));
    let to = address_text(&node.genesis, &recipient());
    let balance = rpc.ok("getbalance", json!([to])).await;
    assert_eq!(balance["balance_sat"], json!(5 * timecoin_types::COIN));
    assert_eq!(balance["balance"], json!("5.00000000"));
    let unspent = rpc.ok("listunspent", json!([to, 10])).await;
    assert_eq!(unspent["utxos"][0]["txid"], json!(txid));
    assert_eq!(unspent["next"], Value::Null);
    let block = rpc.ok("getblock", json!([blockhash, 1])).await;
    assert_eq!(block["tx"], json!([txid]));
    assert_eq!(block["height"], json!(1));
    let full = rpc.ok("getblock", json!([blockhash, 2])).await;
    assert_eq!(full["tx"][0]["txid"], json!(txid));
    assert_eq!(
        full["tx"][0]["vout"][0]["value_sat"],
        json!(5 * timecoin_types::COIN)
    );
    assert_eq!(full["certificate"]["signers"].as_array().unwrap().len(), 1);

    // Sending it again: its outputs are in the chain. Spending the same coin again: the input is gone.
    rpc.fails(
        "sendrawtransaction",
        json!([hex_of(&tx)]),
        codes::ALREADY_IN_CHAIN,
    )
    .await;
    let message = rpc
        .fails(
            "sendrawtransaction",
            json!([hex_of(&transfer(&node.genesis, 7))]),
            codes::VERIFY,
        )
        .await;
    assert!(message.contains("missingorspent"), "{message}");
    let tested = rpc
        .ok(
            "testmempoolaccept",
            json!([[hex_of(&transfer(&node.genesis, 7))]]),
        )
        .await;
    assert_eq!(tested[0]["allowed"], json!(false));
    assert!(
        tested[0]["reject-reason"]
            .as_str()
            .unwrap()
            .contains("input")
    );
    node.shutdown().await;
}

/// A node pruning its bodies still answers for every header, and says plainly which bodies are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruning_node_serves_headers_of_pruned_blocks_and_refuses_their_bodies_plainly() {
    let node = TestNode::start_configured(
        1,
        |config| {
            config.engine.empty_block_interval = std::time::Duration::ZERO;
            config.engine.prune_keep_blocks = 128;
        },
        |_| {},
    )
    .await;
    let rpc = node.rpc.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let info = loop {
        let info = rpc.ok("getblockchaininfo", json!([])).await;
        if info["pruneheight"].as_u64().unwrap_or(0) > 1 {
            break info;
        }
        assert!(std::time::Instant::now() < deadline, "never pruned: {info}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(info["pruned"], json!(true), "{info}");
    let floor = info["pruneheight"].as_u64().unwrap();
    assert!(info["blocks"].as_u64().unwrap() >= floor + 127, "{info}");
    // Block 1 is kept: its schedule hash is the first one a block commits to, unlike genesis's.
    let pruned = rpc.ok("getblockhash", json!([floor - 1])).await;
    let header = rpc.ok("getblockheader", json!([pruned.clone()])).await;
    assert_eq!(header["height"], json!(floor - 1));
    assert!(header.get("nTx").is_none(), "{header}");
    let err = rpc.fails("getblock", json!([pruned, 0]), -1).await;
    assert!(err.contains("pruned"), "{err}");
    // The bodies above the floor are all there.
    let kept = rpc.ok("getblockhash", json!([floor])).await;
    let block = rpc.ok("getblock", json!([kept, 1])).await;
    assert_eq!(block["height"], json!(floor));
    assert!(block["nTx"].as_u64().is_some(), "{block}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chain_network_and_control_method_answers() {
    let node = TestNode::start(1).await;
    let rpc = node.rpc.clone();
    let info = rpc.ok("getblockchaininfo", json!([])).await;
    assert_eq!(info["blocks"], json!(0));
    assert_eq!(
        info["chain"],
        json!(node.genesis.params.network.to_string())
    );
    assert!(info["size_on_disk"].as_u64().is_some(), "{info}");
    assert_eq!(rpc.ok("getblockcount", json!([])).await, json!(0));
    let genesis_hash = node.genesis.block().hash().to_string();
    assert_eq!(
        rpc.ok("getbestblockhash", json!([])).await,
        json!(genesis_hash)
    );
    assert_eq!(
        rpc.ok("getblockhash", json!([0])).await,
        json!(genesis_hash)
    );
    let header = rpc.ok("getblockheader", json!([genesis_hash])).await;
    assert_eq!(header["height"], json!(0));
    let header_hex = rpc.ok("getblockheader", json!([genesis_hash, false])).await;
    let decoded =
        timecoin_types::BlockHeader::decode(&hex::decode(header_hex.as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(decoded.hash().to_string(), genesis_hash);
    let block_hex = rpc.ok("getblock", json!([genesis_hash, 0])).await;
    let block =
        timecoin_types::Block::decode(&hex::decode(block_hex.as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(block.hash().to_string(), genesis_hash);
    let full = rpc.ok("getblock", json!([genesis_hash, 2])).await;
    assert_eq!(
        full["tx"].as_array().unwrap().len(),
        block.transactions.len()
    );

    let tx = transfer(&node.genesis, 5);
    let decoded = rpc.ok("decoderawtransaction", json!([hex_of(&tx)])).await;
    assert_eq!(decoded["txid"], json!(tx.txid().to_string()));
    assert_eq!(decoded["vout"][0]["value"], json!("5.00000000"));
    let tested = rpc.ok("testmempoolaccept", json!([[hex_of(&tx)]])).await;
    assert_eq!(tested[0]["allowed"], json!(true), "{tested}");
    assert_eq!(tested[0]["fees"]["base_sat"], json!(1_000));
    // Testing changed nothing.
    assert_eq!(rpc.ok("getmempoolinfo", json!([])).await["size"], json!(0));
    assert_eq!(rpc.ok("getrawmempool", json!([])).await, json!([]));

    let (coin, out) = node.genesis.utxos()[0];
    let txout = rpc
        .ok("gettxout", json!([coin.txid.to_string(), coin.vout]))
        .await;
    assert_eq!(txout["value_sat"], json!(out.amount.as_sat()));
    assert_eq!(
        rpc.ok("gettxout", json!([coin.txid.to_string(), 99])).await,
        Value::Null
    );
    let set = rpc.ok("gettxoutsetinfo", json!([])).await;
    assert_eq!(set["txouts"], json!(1));
    assert_eq!(set["total_amount_sat"], json!(out.amount.as_sat()));
    assert_eq!(
        set["utxo_commitment"],
        json!(node.genesis.block().header.utxo_commitment.to_hex())
    );

    assert_eq!(rpc.ok("getpeerinfo", json!([])).await, json!([]));
    assert_eq!(rpc.ok("getconnectioncount", json!([])).await, json!(0));
    let net = rpc.ok("getnetworkinfo", json!([])).await;
    assert_eq!(net["connections"], json!(0));
    assert!(rpc.ok("uptime", json!([])).await.as_u64().is_some());
    let help = rpc.ok("help", json!([])).await;
    for method in [
        "getblockchaininfo",
        "sendrawtransaction",
        "gettxproof",
        "waitfortx",
    ] {
        assert!(help.as_str().unwrap().contains(method), "{help}");
    }
    // Every method `help` names is served: none is unknown to the server.
    for line in help.as_str().unwrap().lines() {
        let method = line.split(' ').next().unwrap();
        if method != "stop" {
            let answer = rpc.call(method, json!([])).await;
            assert!(
                !matches!(answer, Err((code, _)) if code == i64::from(codes::METHOD_NOT_FOUND)),
                "{method} is listed but not served"
            );
        }
    }
    assert_eq!(help.as_str().unwrap().lines().count(), 27);
    let one = rpc.ok("help", json!(["getblock"])).await;
    assert!(one.as_str().unwrap().starts_with("getblock blockhash"));

    let consensus = rpc.ok("getconsensusinfo", json!([])).await;
    assert_eq!(consensus["height"], json!(0));
    assert_eq!(consensus["validators"], json!(1));
    assert_eq!(consensus["validator"], json!(true));
    assert_eq!(consensus["quorum_weight"], json!(7)); // 3·7 > 2·10
    let me = Genesis::local_validator_key(0).public_key().to_hex();
    let list = rpc.ok("masternodelist", json!([])).await;
    assert_eq!(list[0]["operator_key"], json!(me));
    assert_eq!(list[0]["tier"], json!("bronze"));
    let status = rpc.ok("masternodestatus", json!([])).await;
    assert_eq!(status["status"], json!("active"));
    let other = Genesis::local_validator_key(5).public_key().to_hex();
    let status = rpc.ok("masternodestatus", json!([other])).await;
    assert_ne!(status["status"], json!("active"));

    // Nothing for the recipient yet, and an unknown tx times out unfinal.
    let to = address_text(&node.genesis, &recipient());
    assert_eq!(
        rpc.ok("getbalance", json!([to])).await["balance_sat"],
        json!(0)
    );
    let waited = rpc
        .ok("waitfortx", json!([tx.txid().to_string(), 0.2]))
        .await;
    assert_eq!(waited["final"], json!(false));
    assert_eq!(waited["inmempool"], json!(false));

    // `stop` reaches the daemon through the stop signal; the server itself keeps answering.
    let mut signal = node.server.as_ref().unwrap().stop_signal();
    assert!(!signal.requested());
    assert_eq!(
        rpc.ok("stop", json!([])).await,
        json!("TimeCoin server stopping")
    );
    tokio::time::timeout(Duration::from_secs(5), signal.wait())
        .await
        .unwrap();
    assert!(signal.requested());
    node.shutdown().await;
}

/// Two validators with only one running: nothing finalizes, so a transfer stays pooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_transfer_shows_in_the_mempool_methods() {
    let node = TestNode::start(2).await;
    let rpc = node.rpc.clone();
    let tx = transfer(&node.genesis, 5);
    let txid = tx.txid().to_string();
    assert_eq!(
        rpc.ok("sendrawtransaction", json!([hex_of(&tx)])).await,
        json!(txid)
    );
    // Bitcoin answers a resubmission of a pooled transaction with its txid.
    assert_eq!(
        rpc.ok("sendrawtransaction", json!([hex_of(&tx)])).await,
        json!(txid)
    );
    assert_eq!(rpc.ok("getrawmempool", json!([])).await, json!([txid]));
    let verbose = rpc.ok("getrawmempool", json!([true])).await;
    assert!(verbose[&txid]["vsize"].as_u64().unwrap() > 0);
    let info = rpc.ok("getmempoolinfo", json!([])).await;
    assert_eq!(info["size"], json!(1));
    assert!(info["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        rpc.ok("getrawtransaction", json!([txid])).await,
        json!(hex_of(&tx))
    );
    let out = rpc.ok("gettxout", json!([txid, 0])).await;
    assert_eq!(out["final"], json!(false));
    assert_eq!(
        rpc.ok("gettxout", json!([txid, 0, false])).await,
        Value::Null
    );
    let tested = rpc.ok("testmempoolaccept", json!([[hex_of(&tx)]])).await;
    assert_eq!(tested[0]["reject-reason"], json!("txn-already-in-mempool"));
    // The payer's coin is still final and unspent, and names the pooled transaction spending it.
    let (coin, out) = node.genesis.utxos()[0];
    let payer = address_text(&node.genesis, &out.address);
    let listed = rpc.ok("listunspent", json!([payer])).await;
    let entry = listed["utxos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["txid"] == json!(coin.txid.to_string()) && u["vout"] == json!(coin.vout))
        .cloned()
        .unwrap();
    assert_eq!(entry["pending_spend"], json!(txid), "{listed}");
    let waited = rpc.ok("waitfortx", json!([txid, 0.3])).await;
    assert_eq!(waited["final"], json!(false));
    assert_eq!(waited["inmempool"], json!(true));
    let consensus = rpc.ok("getconsensusinfo", json!([])).await;
    assert_eq!(consensus["deciding"], json!(1), "{consensus}");
    assert!(consensus["phase"].is_string());
    assert!(consensus["leader"].is_string());
    assert_eq!(consensus["quorum_weight"], json!(14));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_params_get_their_error_codes_and_never_stall_the_node() {
    let node = TestNode::start(1).await;
    let rpc = node.rpc.clone();
    let zeros = "00".repeat(32);
    let cases: Vec<(&str, Value, i32)> = vec![
        ("getblockcount", json!([1]), codes::INVALID_PARAMS),
        ("getblockhash", json!([]), codes::INVALID_PARAMS),
        ("getblockhash", json!(["one"]), codes::INVALID_PARAMS),
        ("getblockhash", json!([-1]), codes::INVALID_PARAMETER),
        ("getblockhash", json!([99]), codes::INVALID_PARAMETER),
        (
            "getblockhash",
            json!({ "height": 0 }),
            codes::INVALID_PARAMS,
        ),
        ("getblock", json!(["xyz"]), codes::INVALID_PARAMETER),
        ("getblock", json!([zeros]), codes::NOT_FOUND),
        ("getblock", json!([zeros, 7]), codes::INVALID_PARAMETER),
        ("getblockheader", json!([zeros]), codes::NOT_FOUND),
        ("getrawtransaction", json!([zeros]), codes::NOT_FOUND),
        ("getrawtransaction", json!(["12"]), codes::INVALID_PARAMETER),
        (
            "decoderawtransaction",
            json!(["zz"]),
            codes::DESERIALIZATION,
        ),
        (
            "decoderawtransaction",
            json!(["00ff"]),
            codes::DESERIALIZATION,
        ),
        (
            "sendrawtransaction",
            json!(["00ff"]),
            codes::DESERIALIZATION,
        ),
        ("sendrawtransaction", json!([]), codes::INVALID_PARAMS),
        ("testmempoolaccept", json!([[]]), codes::INVALID_PARAMETER),
        (
            "testmempoolaccept",
            json!(["notalist"]),
            codes::INVALID_PARAMS,
        ),
        ("gettxout", json!([zeros, -1]), codes::INVALID_PARAMETER),
        ("getbalance", json!(["nope"]), codes::INVALID_PARAMETER),
        ("listunspent", json!(["nope"]), codes::INVALID_PARAMETER),
        ("waitfortx", json!([zeros, -5]), codes::INVALID_PARAMETER),
        ("gettxproof", json!([zeros]), codes::NOT_FOUND),
        ("masternodestatus", json!(["abc"]), codes::INVALID_PARAMETER),
        ("help", json!(["nosuchcommand"]), codes::INVALID_PARAMETER),
        ("nosuchmethod", json!([]), codes::METHOD_NOT_FOUND),
    ];
    for (method, params, code) in cases {
        rpc.fails(method, params, code).await;
    }
    let to = address_text(&node.genesis, &recipient());
    rpc.fails("listunspent", json!([to, 0]), codes::INVALID_PARAMETER)
        .await;
    rpc.fails(
        "listunspent",
        json!([to, 10, "x:y"]),
        codes::INVALID_PARAMETER,
    )
    .await;
    // A transaction breaking a rule says which, in words.
    let key = Genesis::local_validator_key(0);
    let (coin, out) = node.genesis.utxos()[0];
    let dust = TxBuilder::new(node.genesis.params.chain_id)
        .input(coin, out.amount, &key)
        .output(recipient(), Amount::from_sat(1))
        .sign();
    let message = rpc
        .fails(
            "sendrawtransaction",
            json!([hex_of(&dust)]),
            codes::VERIFY_REJECTED,
        )
        .await;
    assert!(
        message.contains("dust") || message.contains("below"),
        "{message}"
    );
    // Malformed JSON is a parse error, and the node still answers afterwards.
    let (status, body) = node.rpc.post("{not json").await;
    assert_eq!(status, 200);
    assert!(body.contains("-32700"), "{body}");
    assert_eq!(rpc.ok("getblockcount", json!([])).await, json!(0));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_valid_auth_get_401_and_change_nothing() {
    let node = TestNode::start(1).await;
    let cookie_path = node.dir.path().join(COOKIE_FILE);
    let cookie = std::fs::read_to_string(&cookie_path).unwrap();
    let (user, password) = cookie.split_once(':').unwrap();
    assert_eq!(user, "__cookie__");
    assert_eq!(password.len(), 64);
    assert!(password.chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cookie_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let tx = transfer(&node.genesis, 5);
    let send = json!({ "jsonrpc": "2.0", "id": 1, "method": "sendrawtransaction", "params": [hex_of(&tx)] })
        .to_string();
    let stop = json!({ "jsonrpc": "2.0", "id": 1, "method": "stop", "params": [] }).to_string();
    for auth in [
        None,
        Some("__cookie__:wrong".to_string()),
        Some(format!("someone:{password}")),
        Some(format!("{cookie}x")),
    ] {
        let stranger = Client {
            addr: node.rpc.addr,
            auth: auth.clone(),
        };
        for body in [&send, &stop] {
            let (status, _) = stranger.post(body).await;
            assert_eq!(status, 401, "auth {auth:?}");
        }
    }
    // A garbled header is refused the same way.
    let (status, _) = {
        let mut stream = tokio::net::TcpStream::connect(node.rpc.addr).await.unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Basic !!!\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{send}",
            send.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status: u16 = response.split(' ').nth(1).unwrap().parse().unwrap();
        (status, response)
    };
    assert_eq!(status, 401);
    // Nothing changed: no transaction pooled or final, no stop requested.
    assert!(!node.server.as_ref().unwrap().stop_signal().requested());
    assert_eq!(node.rpc.ok("getblockcount", json!([])).await, json!(0));
    assert_eq!(
        node.rpc.ok("getmempoolinfo", json!([])).await["size"],
        json!(0)
    );
    assert_eq!(node.handle.status().await.unwrap().height, 0);

    // Neither the server nor its config shows the secret when printed.
    let printed = format!("{:?}", node.server.as_ref().unwrap());
    assert!(!printed.contains(password), "{printed}");
    let config = RpcConfig {
        password: Some("hunter2".into()),
        ..RpcConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));
    // Stopping the server deletes its cookie.
    let mut node = node;
    node.server.take().unwrap().stop().await;
    assert!(!cookie_path.exists());
    node.shutdown().await;
}

/// A batch's calls run together, yet each answer keeps its place: a submission, bad input, a read and
/// an entry that is no call at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_every_entry_in_the_order_asked() {
    let node = TestNode::start(1).await;
    let tx = transfer(&node.genesis, 5);
    let calls = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "sendrawtransaction", "params": [hex_of(&tx)] },
        { "jsonrpc": "2.0", "id": 2, "method": "sendrawtransaction", "params": ["zz"] },
        { "jsonrpc": "2.0", "id": 3, "method": "getconnectioncount", "params": [] },
        7,
        { "jsonrpc": "2.0", "id": 5, "method": "nosuchmethod", "params": [] },
    ]);
    let (status, body) = node.rpc.post(&calls.to_string()).await;
    assert_eq!(status, 200);
    let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(answers.len(), 5, "{body}");
    assert_eq!(answers[0]["id"], json!(1));
    assert_eq!(answers[0]["result"], json!(tx.txid().to_string()));
    assert_eq!(answers[1]["id"], json!(2));
    assert_eq!(answers[1]["error"]["code"], json!(-22));
    assert_eq!(answers[2]["id"], json!(3));
    assert_eq!(answers[2]["result"], json!(0));
    assert_eq!(answers[3]["id"], Value::Null);
    assert_eq!(answers[3]["error"]["code"], json!(-32600));
    assert_eq!(answers[4]["id"], json!(5));
    assert_eq!(answers[4]["error"]["code"], json!(-32601));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_user_replaces_the_cookie_and_limits_hold() {
    let node = TestNode::start_with(1, |c| {
        c.user = Some("alice".into());
        c.password = Some("correct horse".into());
        c.max_batch_len = 2;
        c.max_request_bytes = 4096;
    })
    .await;
    assert!(!node.dir.path().join(COOKIE_FILE).exists());
    assert!(node.server.as_ref().unwrap().cookie_path().is_none());
    assert_eq!(node.rpc.ok("getblockcount", json!([])).await, json!(0));
    let wrong = Client {
        addr: node.rpc.addr,
        auth: Some("alice:wrong".into()),
    };
    assert_eq!(wrong.post("{}").await.0, 401);
    // A batch within the limit is served; a longer one is refused whole.
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": [] });
    let (status, body) = node.rpc.post(&json!([call, call]).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, body) = node.rpc.post(&json!([call, call, call]).to_string()).await;
    assert!(body.contains("error"), "{body}");
    assert!(!body.contains("\"result\""), "{body}");
    // A body over the limit is refused before it is parsed.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"decoderawtransaction\",\"params\":[\"{}\"]}}",
        "00".repeat(4096)
    );
    let (status, _) = node.rpc.post(&big).await;
    assert_eq!(status, 413);
    // Settings without auth are refused.
    let config = RpcConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RpcConfig::default()
    };
    assert!(matches!(
        rpc::start(&config, node.handle.clone(), node.context()).await,
        Err(NodeError::Config(_))
    ));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serve_their_names_health_and_readiness() {
    let mut node = TestNode::start_timed(1).await;
    let config = MetricsConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..MetricsConfig::default()
    };
    assert!(
        metrics::start(
            &MetricsConfig::default(),
            node.handle.clone(),
            node.context()
        )
        .await
        .unwrap()
        .is_none(),
        "off by default"
    );
    let registry = node.metrics.take().unwrap();
    let server = metrics::start_with(&config, registry, node.handle.clone(), node.context())
        .await
        .unwrap()
        .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    // A finalized block feeds the latency histogram.
    node.rpc
        .ok(
            "sendrawtransaction",
            json!([hex_of(&transfer(&node.genesis, 5))]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = http(addr, "GET", "/metrics", None, "").await;
    assert_eq!(status, 200);
    for name in [
        "timecoin_consensus_height 1",
        "timecoin_consensus_view ",
        "timecoin_consensus_view_changes_total ",
        "timecoin_consensus_blocks_finalized_total 1",
        "timecoin_consensus_finality_latency_seconds_count 1",
        "timecoin_consensus_finality_latency_seconds_bucket",
        "timecoin_peers 0",
        "timecoin_rejections_total{reason=\"tx_invalid\"} 0",
        "timecoin_rejections_total{reason=\"malformed\"} 0",
        "timecoin_mempool_transactions 0",
        "timecoin_mempool_bytes ",
        "timecoin_mempool_evictions_total ",
        "timecoin_storage_disk_bytes ",
        // The store applied that block, and was timed doing it.
        "timecoin_storage_commit_seconds_count 1",
        "timecoin_storage_commit_seconds_bucket{le=\"0.0001\"}",
        "timecoin_sync_syncing 0",
        "timecoin_up 1",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    assert!(!body.contains("peer=\""), "no peer ids in labels");
    assert_eq!(http(addr, "GET", "/health", None, "").await.0, 200);
    let (status, reason) = http(addr, "GET", "/ready", None, "").await;
    assert_eq!(status, 503);
    assert!(reason.contains("no peers"), "{reason}");
    // A peer joins: synced, one peer, no lag.
    node.events
        .send(NetEvent::Joined {
            peer: PeerId::from_bytes([7; 32]),
            masternode: None,
        })
        .await
        .unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if http(addr, "GET", "/ready", None, "").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "never ready with a peer");
    assert_eq!(http(addr, "GET", "/nothing", None, "").await.0, 404);
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_validators_over_tcp_list_their_peer_and_prove_a_transfer_both_signed() {
    let genesis = Genesis::local(2);
    let (validators, _) = timecoin_node::testing::start_local_validators(&genesis, 2, 200)
        .await
        .unwrap();
    let nodes: Vec<_> = validators
        .into_iter()
        .map(|v| (v.handle, v.network, v.thread))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let context = NodeContext {
        peers: Some(Arc::new(nodes[0].1.clone())),
        ..NodeContext::new(Arc::new(genesis.clone()))
    };
    let config = RpcConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cookie_dir: Some(dir.path().to_path_buf()),
        ..RpcConfig::default()
    };
    let server = rpc::start(&config, nodes[0].0.clone(), context.clone())
        .await
        .unwrap();
    let rpc = Client {
        addr: server.local_addr(),
        auth: Some(std::fs::read_to_string(dir.path().join(COOKIE_FILE)).unwrap()),
    };
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        while nodes.iter().any(|(_, net, _)| net.peers().len() != 1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(connected.is_ok(), "the two nodes did not connect");

    let peers = rpc.ok("getpeerinfo", json!([])).await;
    assert_eq!(
        peers[0]["id"],
        json!(hex::encode(nodes[1].1.local_id().as_bytes()))
    );
    assert_eq!(rpc.ok("getconnectioncount", json!([])).await, json!(1));
    let net = rpc.ok("getnetworkinfo", json!([])).await;
    assert_eq!(
        net["connections_in"].as_u64().unwrap() + net["connections_out"].as_u64().unwrap(),
        1
    );

    let metrics_config = MetricsConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..MetricsConfig::default()
    };
    let registry = NodeMetrics::new().with_traffic(nodes[0].1.traffic());
    let metrics = metrics::start_with(&metrics_config, registry, nodes[0].0.clone(), context)
        .await
        .unwrap()
        .unwrap();

    // Both validators' weight is needed: the transfer is final only once both signed.
    let tx = transfer(&genesis, 5);
    let txid = tx.txid().to_string();
    rpc.ok("sendrawtransaction", json!([hex_of(&tx)])).await;
    let done = rpc.ok("waitfortx", json!([txid, 30])).await;
    assert_eq!(done["final"], json!(true), "{done}");
    let receipt: rpc::FinalityReceipt =
        serde_json::from_value(rpc.ok("gettxproof", json!([txid, done["blockhash"]])).await)
            .unwrap();
    let set = ValidatorSet::from_genesis(&genesis).unwrap();
    let verified = rpc::verify_receipt(&receipt, &set, genesis.params.chain_id).unwrap();
    assert_eq!(verified.txid, tx.txid());
    let block = rpc.ok("getblock", json!([done["blockhash"]])).await;
    assert_eq!(block["certificate"]["signers"].as_array().unwrap().len(), 2);

    let addr = metrics.local_addr();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while http(addr, "GET", "/ready", None, "").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "a synced node with a peer is not ready");
    let (_, body) = http(addr, "GET", "/metrics", None, "").await;
    assert!(
        body.contains("timecoin_net_connections{direction=\"inbound\"}"),
        "{body}"
    );
    assert!(body.contains("timecoin_net_queued_bytes"), "{body}");
    // Every channel in both directions, at zero or more; both validators signed, so votes went
    // each way on the consensus channel.
    for family in [
        "timecoin_net_messages_total",
        "timecoin_net_bytes_total",
        "timecoin_net_messages_dropped_total",
    ] {
        for channel in ["consensus", "sync", "transactions", "discovery"] {
            for direction in ["sent", "received"] {
                let series =
                    format!("{family}{{channel=\"{channel}\",direction=\"{direction}\"}} ");
                assert!(body.contains(&series), "{series} missing from:\n{body}");
            }
        }
    }
    for direction in ["sent", "received"] {
        let series = format!(
            "timecoin_net_messages_total{{channel=\"consensus\",direction=\"{direction}\"}} "
        );
        let count: u64 = body
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(count > 0, "no consensus messages {direction}");
    }

    metrics.stop().await;
    server.stop().await;
    for (handle, network, thread) in nodes {
        handle.stop().await.unwrap();
        network.shutdown();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}

#[test]
fn configs_read_only_what_they_change_and_refuse_unknown_keys() {
    let config: RpcConfig =
        serde_json::from_value(json!({ "cookie_dir": "/tmp/x", "max_batch_len": 4 })).unwrap();
    assert_eq!(config.max_batch_len, 4);
    assert_eq!(config.listen, RpcConfig::default().listen);
    assert!(config.listen.ip().is_loopback());
    assert!(config.validate().is_ok());
    assert!(serde_json::from_value::<RpcConfig>(json!({ "cookie_dri": "/tmp/x" })).is_err());
    assert!(
        RpcConfig::default().validate().is_err(),
        "no auth configured"
    );
    let half = RpcConfig {
        user: Some("alice".into()),
        ..RpcConfig::default()
    };
    assert!(half.validate().is_err(), "a user without a password");
    let metrics: MetricsConfig = serde_json::from_value(json!({ "enabled": true })).unwrap();
    assert!(metrics.enabled && metrics.listen.ip().is_loopback());
    assert!(!MetricsConfig::default().enabled);
    assert!(serde_json::from_value::<MetricsConfig>(json!({ "enable": true })).is_err());
}
