//! A one-validator local node with its RPC on an ephemeral loopback port, in this process (the setup
//! of `crates/timecoin-node/tests/rpc.rs`): a single validator holds all the weight, so it finalizes
//! alone, a block as soon as a transaction waits. The `time-cli` binary under test talks to it over
//! real HTTP with the cookie from the node's data dir.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use timecoin_crypto::Address;
use timecoin_net::NetEvent;
use timecoin_node::rpc::{self, NodeContext, RpcConfig, RpcServer};
use timecoin_node::runner::{self, NodeHandle};
use timecoin_node::{NodeBuilder, NodeConfig};
use timecoin_storage::ChainDb;
use timecoin_types::Genesis;
use tokio::sync::mpsc;

pub struct TestNode {
    pub genesis: Genesis,
    handle: NodeHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _events: mpsc::Sender<NetEvent>,
    server: Option<RpcServer>,
    pub dir: tempfile::TempDir,
    pub url: String,
    runtime: tokio::runtime::Runtime,
}

impl TestNode {
    pub fn start() -> TestNode {
        Self::start_in_set_of(1)
    }

    /// Validator 0 of a set of `validators`: with more than one, nothing it pools becomes final.
    pub fn start_in_set_of(validators: usize) -> TestNode {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let genesis = Genesis::local(validators);
        let dir = tempfile::tempdir().unwrap();
        let (handle, thread, events, server) = runtime.block_on(async {
            let node = NodeBuilder::new(NodeConfig::new(&genesis), genesis.clone())
                .chain_db(ChainDb::memory(&genesis).unwrap())
                .signer(Arc::new(Genesis::local_validator_key(0)))
                .build()
                .unwrap();
            let (events, receiver) = mpsc::channel(16);
            let (handle, thread) =
                runner::spawn(node, receiver, tokio::runtime::Handle::current()).unwrap();
            let config = RpcConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                cookie_dir: Some(dir.path().to_path_buf()),
                ..RpcConfig::default()
            };
            let context = NodeContext::new(Arc::new(genesis.clone()));
            let server = rpc::start(&config, handle.clone(), context).await.unwrap();
            (handle, thread, events, server)
        });
        let url = format!("http://{}", server.local_addr());
        TestNode {
            genesis,
            handle,
            thread: Some(thread),
            _events: events,
            server: Some(server),
            dir,
            url,
            runtime,
        }
    }

    /// `time-cli --rpc URL --datadir DIR ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_time-cli"))
            .arg("--rpc")
            .arg(&self.url)
            .arg("--datadir")
            .arg(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// The funded key of validator 0, written to a key file.
    pub fn funded_key(&self) -> PathBuf {
        let path = self.dir.path().join("funded.key");
        if !path.exists() {
            Genesis::local_validator_key(0).save(&path).unwrap();
        }
        path
    }

    pub fn funded_address(&self) -> String {
        Address::from_public_key(&Genesis::local_validator_key(0).public_key())
            .encode(self.genesis.params.network)
    }

    /// Writes the genesis validators as a `genesis.toml` holds them.
    pub fn write_genesis_toml(&self, path: &Path) {
        std::fs::write(path, Self::genesis_toml(&self.genesis)).unwrap();
    }

    /// The chain id and validators of `genesis` in `genesis.toml`'s form.
    pub fn genesis_toml(genesis: &Genesis) -> String {
        let mut text = format!(
            "network = \"local\"\nchain_id = {}\ntimestamp_ms = {}\n",
            genesis.params.chain_id.0, genesis.timestamp_ms
        );
        for v in &genesis.validators {
            text.push_str(&format!(
                "\n[[validator]]\noperator_key = \"{}\"\ntier = \"{}\"\nowner = \"{}\"\n",
                v.operator_key.to_hex(),
                v.tier.name(),
                v.owner.encode(genesis.params.network)
            ));
        }
        text
    }

    pub fn stop(mut self) {
        let server = self.server.take();
        let handle = self.handle.clone();
        self.runtime.block_on(async {
            if let Some(server) = server {
                server.stop().await;
            }
            handle.stop().await.unwrap();
        });
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the run exited with `code`, showing its output otherwise.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

pub fn json(out: &Output) -> serde_json::Value {
    assert_exit(out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One validator of a [`TestNet`]: its engine, network, engine thread and RPC server.
struct NetNode {
    handle: NodeHandle,
    network: timecoin_net::TcpNetwork,
    thread: std::thread::JoinHandle<()>,
    server: RpcServer,
}

/// `n` validators over TCP on loopback, each with its RPC, laid out as `timed testnet` lays out its
/// directory: `DIR/nodeI/config.toml` naming the RPC port, `DIR/nodeI/.cookie`, `DIR/genesis.toml`.
pub struct TestNet {
    pub genesis: Genesis,
    nodes: Vec<NetNode>,
    pub dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl TestNet {
    pub fn start(n: usize) -> TestNet {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let genesis = Genesis::local(n);
        let dir = tempfile::tempdir().unwrap();
        let nodes = runtime.block_on(async {
            let (validators, _) = timecoin_node::testing::start_local_validators(&genesis, n, 200)
                .await
                .unwrap();
            let mut nodes = Vec::new();
            for (i, validator) in validators.into_iter().enumerate() {
                let timecoin_node::testing::LocalValidator {
                    handle,
                    network,
                    thread,
                    ..
                } = validator;
                let datadir = dir.path().join(format!("node{i}"));
                std::fs::create_dir(&datadir).unwrap();
                let rpc_config = RpcConfig {
                    listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                    cookie_dir: Some(datadir.clone()),
                    ..RpcConfig::default()
                };
                let context = NodeContext {
                    peers: Some(Arc::new(network.clone())),
                    ..NodeContext::new(Arc::new(genesis.clone()))
                };
                let server = rpc::start(&rpc_config, handle.clone(), context)
                    .await
                    .unwrap();
                std::fs::write(
                    datadir.join("config.toml"),
                    format!(
                        "[rpc]\nlisten = \"{}\"\ncookie = true\n",
                        server.local_addr()
                    ),
                )
                .unwrap();
                nodes.push(NetNode {
                    handle,
                    network,
                    thread,
                    server,
                });
            }
            let connected = tokio::time::timeout(std::time::Duration::from_secs(20), async {
                while nodes.iter().any(|node| node.network.peers().len() != n - 1) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await;
            assert!(connected.is_ok(), "the nodes did not connect");
            nodes
        });
        TestNet {
            genesis,
            nodes,
            dir,
            runtime,
        }
    }

    /// `time-cli --testnet DIR ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_time-cli"))
            .arg("--testnet")
            .arg(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    pub fn stop(mut self) {
        let nodes = std::mem::take(&mut self.nodes);
        self.runtime.block_on(async {
            for node in nodes {
                node.server.stop().await;
                node.handle.stop().await.unwrap();
                node.network.shutdown();
                let thread = node.thread;
                tokio::task::spawn_blocking(move || thread.join().unwrap())
                    .await
                    .unwrap();
            }
        });
    }
}
