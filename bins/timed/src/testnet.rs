//! `timed testnet`: a local network of N masternodes on 127.0.0.1, one `timed` process per node.
//!
//! The first run creates the directory: fresh keys, a genesis with funded accounts and N validators,
//! and a data dir with a config per node. A later run on the same directory finds `genesis.toml` and
//! resumes that chain with the same keys and ports. The genesis is written last, so a run cut short
//! leaves a directory that the next run refuses rather than half-reuses.
//!
//! The children run in their own process group, so a terminal's Ctrl-C reaches only this supervisor,
//! which forwards one SIGTERM to each (a second Ctrl-C forwards another, which forces them).

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use rustix::process::{Pid, Signal, kill_process};
use timecoin_crypto::{Address, Network, PublicKey, SecretKey};
use timecoin_types::{Amount, ChainParams, Genesis, GenesisValidator, Tier, TxOut};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{self, LogFormat, NetworkName, Overrides, Source};
use crate::genesis_file;
use crate::init::{self, GENESIS_FILE, NODE_KEY_FILE, OPERATOR_KEY_FILE};

/// Most nodes one machine runs as a testnet.
const MAX_NODES: usize = 64;
/// Most funded accounts in a generated genesis.
const MAX_ACCOUNTS: usize = 100;
/// What each funded account holds, in TIME.
const ACCOUNT_BALANCE_TIME: u64 = 1_000_000;
/// Each node's log, in its data dir.
pub(crate) const LOG_FILE: &str = "timed.log";
/// How long the children may take to stop after SIGTERM: their own bound (10 s) and some slack.
const STOP_BOUND: Duration = Duration::from_secs(20);
/// How often the supervisor looks at its children.
const POLL: Duration = Duration::from_millis(200);

#[derive(Args)]
pub(crate) struct TestnetArgs {
    /// Masternodes, one process each (1..=64).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// The network's directory; a second run on it resumes the same chain.
    #[arg(long, default_value = "timecoin-testnet")]
    dir: PathBuf,
    /// Funded accounts in a new genesis (1..=100), each holding 1,000,000 TIME.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// The nodes' log format.
    #[arg(long, value_enum, default_value = "plain")]
    log_format: LogFormat,
    /// Only create (or check) the directory; start no node.
    #[arg(long)]
    setup_only: bool,
}

/// One node of the testnet as its config describes it.
struct NodeDir {
    dir: PathBuf,
    p2p: SocketAddr,
    rpc: SocketAddr,
}

pub(crate) fn run(args: &TestnetArgs) -> Result<ExitCode> {
    if !(1..=MAX_NODES).contains(&args.nodes) {
        bail!("--nodes must be in 1..={MAX_NODES}");
    }
    if !(1..=MAX_ACCOUNTS).contains(&args.accounts) {
        bail!("--accounts must be in 1..={MAX_ACCOUNTS}");
    }
    let resumed = args.dir.join(GENESIS_FILE).exists();
    if !resumed {
        create(args)?;
    }
    let nodes = check(args)?;
    describe(args, &nodes, resumed)?;
    if args.setup_only {
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(supervise(args, &nodes))
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node{i}"))
}

fn account_key(dir: &Path, i: usize) -> PathBuf {
    dir.join("accounts").join(format!("account-{i}.key"))
}

fn create(args: &TestnetArgs) -> Result<()> {
    let dir = &args.dir;
    if node_dir(dir, 0).exists() {
        bail!(
            "{} holds node directories but no {GENESIS_FILE}: an earlier setup was cut short; remove \
             the directory and run again",
            dir.display()
        );
    }
    init::create_private_dir(&dir.join("accounts"))?;
    let mut allocations = Vec::new();
    let balance = Amount::from_time(ACCOUNT_BALANCE_TIME)
        .context("the account balance does not fit an amount")?;
    for i in 0..args.accounts {
        let public = init::new_key(&account_key(dir, i))?;
        allocations.push(TxOut {
            amount: balance,
            address: Address::from_public_key(&public),
        });
    }

    let ports = free_ports(3 * args.nodes)?;
    let mut operators = Vec::new();
    let mut peers = Vec::new();
    for i in 0..args.nodes {
        let node = node_dir(dir, i);
        init::create_private_dir(&node)?;
        let node_key = init::new_key(&node.join(NODE_KEY_FILE))?;
        operators.push(init::new_key(&node.join(OPERATOR_KEY_FILE))?);
        let p2p = port(&ports, 3 * i)?;
        peers.push(format!("{}@127.0.0.1:{p2p}", node_key.to_hex()));
    }
    for i in 0..args.nodes {
        let seeds: Vec<String> = peers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| format!("\"{p}\""))
            .collect();
        let text = node_config(
            port(&ports, 3 * i)?,
            port(&ports, 3 * i + 1)?,
            port(&ports, 3 * i + 2)?,
            &seeds,
        )?;
        init::write_new(&node_dir(dir, i).join(config::CONFIG_FILE), text.as_bytes())?;
    }

    let genesis = Genesis {
        params: ChainParams::for_network(Network::Local),
        timestamp_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
        allocations,
        validators: operators
            .iter()
            .map(|key: &PublicKey| GenesisValidator {
                operator_key: *key,
                tier: Tier::Bronze,
                owner: Address::from_public_key(key),
            })
            .collect(),
    };
    let note = format!(
        "A local testnet of {} masternodes, made by `timed testnet`.\nThe funded accounts' secret keys \
         are in accounts/.\nGenesis block hash: {} (every node logs it at start).",
        args.nodes,
        genesis.block().hash()
    );
    // Last: its presence marks a complete directory.
    init::write_new(
        &dir.join(GENESIS_FILE),
        genesis_file::render(&genesis, &note).as_bytes(),
    )
}

fn port(ports: &[u16], i: usize) -> Result<u16> {
    ports
        .get(i)
        .copied()
        .context("fewer free ports than asked for")
}

/// `n` distinct ports that were free a moment ago: all bound at once, so none repeats, then released.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The shipped local config, pointed at this node's ports, its peers and the shared genesis.
fn node_config(p2p: u16, rpc: u16, metrics: u16, seeds: &[String]) -> Result<String> {
    let local = NetworkName::Local;
    let mut text = init::with_operator_key(init::config_template(local));
    let edits = [
        (
            "genesis = \"genesis.toml\"".to_string(),
            format!("genesis = \"../{GENESIS_FILE}\""),
        ),
        (
            format!("listen = \"0.0.0.0:{}\"", local.p2p_port()),
            format!("listen = \"127.0.0.1:{p2p}\""),
        ),
        (
            "seeds = []".to_string(),
            format!("seeds = [{}]", seeds.join(", ")),
        ),
        (
            format!("listen = \"127.0.0.1:{}\"", local.rpc_port()),
            format!("listen = \"127.0.0.1:{rpc}\""),
        ),
        (
            format!("listen = \"127.0.0.1:{}\"", local.metrics_port()),
            format!("listen = \"127.0.0.1:{metrics}\""),
        ),
    ];
    for (old, new) in edits {
        if text.matches(&old).count() != 1 {
            bail!("the local config template no longer has exactly one `{old}`");
        }
        text = text.replacen(&old, &new, 1);
    }
    Ok(format!(
        "# A node of a local testnet made by `timed testnet`; edit freely, a later run keeps it.\n{text}"
    ))
}

/// Checks that the directory holds an N-node testnet and reads each node's ports.
fn check(args: &TestnetArgs) -> Result<Vec<NodeDir>> {
    let genesis = genesis_file::load(&args.dir.join(GENESIS_FILE))?.genesis;
    if genesis.validators.len() != args.nodes {
        bail!(
            "{} holds a testnet of {} nodes; pass --nodes {} or choose another --dir",
            args.dir.display(),
            genesis.validators.len(),
            genesis.validators.len()
        );
    }
    (0..args.nodes)
        .map(|i| {
            let dir = node_dir(&args.dir, i);
            let source = Source {
                config: None,
                datadir: Some(dir.clone()),
            };
            let settings = config::load(&source, &Overrides::default())
                .with_context(|| format!("node {i}"))?;
            for key in [&settings.node_key, &dir.join(OPERATOR_KEY_FILE)] {
                if !key.exists() {
                    bail!("node {i}: {} is missing", key.display());
                }
            }
            Ok(NodeDir {
                dir,
                p2p: settings.p2p.listen,
                rpc: settings.rpc.listen,
            })
        })
        .collect()
}

fn describe(args: &TestnetArgs, nodes: &[NodeDir], resumed: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let verb = if resumed { "resuming" } else { "created" };
    writeln!(
        out,
        "{verb} a local testnet of {} nodes in {}",
        nodes.len(),
        args.dir.display()
    )?;
    for (i, node) in nodes.iter().enumerate() {
        writeln!(
            out,
            "  node{i}: p2p {}  rpc {}  log {}",
            node.p2p,
            node.rpc,
            node.dir.join(LOG_FILE).display()
        )?;
    }
    writeln!(
        out,
        "funded accounts ({ACCOUNT_BALANCE_TIME} TIME each at genesis; secret keys, mode 0600):"
    )?;
    for i in 0..MAX_ACCOUNTS {
        let path = account_key(&args.dir, i);
        if !path.exists() {
            break;
        }
        let key = SecretKey::load(&path).with_context(|| format!("reading {}", path.display()))?;
        let address = Address::from_public_key(&key.public_key()).encode(Network::Local);
        writeln!(out, "  {}  {address}", path.display())?;
    }
    writeln!(
        out,
        "a wallet spends them with the key file, e.g. `time-cli address --key {} --network local`\n\
         shows its address, and `time-cli send --from {} ADDRESS AMOUNT` pays through a node's RPC port",
        account_key(&args.dir, 0).display(),
        account_key(&args.dir, 0).display()
    )?;
    if !args.setup_only {
        writeln!(
            out,
            "Ctrl-C stops every node cleanly; a second Ctrl-C forces them."
        )?;
    }
    Ok(())
}

fn spawn_node(node: &NodeDir, format: LogFormat) -> Result<Child> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let log_path = node.dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let format = match format {
        LogFormat::Plain => "plain",
        LogFormat::Json => "json",
    };
    Command::new(exe)
        .arg("--datadir")
        .arg(&node.dir)
        .arg("--log-format")
        .arg(format)
        .arg("--exit-with-parent")
        // The node reads its own config; a variable meant for another node must not reach it.
        .env_remove("TIMED_CONFIG")
        .env_remove("TIMED_DATADIR")
        // Under systemd, readiness is the supervisor's to report, not each node's.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a terminal's Ctrl-C reaches the supervisor only, which forwards it once.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting the node in {}", node.dir.display()))
}

fn send(child: &Child, signal: Signal) {
    // The child may have exited already; then there is nothing to signal.
    let _ = kill_process(Pid::from_child(child), signal);
}

async fn supervise(args: &TestnetArgs, nodes: &[NodeDir]) -> Result<ExitCode> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut children: Vec<Option<Child>> = Vec::new();
    for node in nodes {
        match spawn_node(node, args.log_format) {
            Ok(child) => children.push(Some(child)),
            Err(e) => {
                for child in children.iter().flatten() {
                    send(child, Signal::TERM);
                }
                return Err(e);
            }
        }
    }
    let mut failed = false;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(POLL) => {
                failed |= reap(&mut children, nodes, "exited on its own");
                if children.iter().all(Option::is_none) {
                    eprintln!("every node has exited");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    eprintln!("stopping {} nodes", children.iter().flatten().count());
    for child in children.iter().flatten() {
        send(child, Signal::TERM);
    }
    let deadline = Instant::now() + STOP_BOUND;
    while children.iter().any(Option::is_some) {
        if Instant::now() >= deadline {
            eprintln!("nodes still running after {STOP_BOUND:?}; killing them");
            for child in children.iter().flatten() {
                send(child, Signal::KILL);
            }
            let _ = reap(&mut children, nodes, "was killed");
            return Ok(ExitCode::FAILURE);
        }
        tokio::select! {
            _ = interrupt.recv() => forward_again(&children),
            _ = terminate.recv() => forward_again(&children),
            () = tokio::time::sleep(POLL) => failed |= reap(&mut children, nodes, "stopped"),
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn forward_again(children: &[Option<Child>]) {
    eprintln!("second signal: forcing the nodes to exit");
    for child in children.iter().flatten() {
        send(child, Signal::TERM);
    }
}

/// Collects the children that exited, reporting each; returns whether any exited unsuccessfully.
fn reap(children: &mut [Option<Child>], nodes: &[NodeDir], what: &str) -> bool {
    let mut failed = false;
    for (i, slot) in children.iter_mut().enumerate() {
        let Some(child) = slot else { continue };
        match child.try_wait() {
            Ok(Some(status)) => {
                let log = nodes
                    .get(i)
                    .map(|n| n.dir.join(LOG_FILE).display().to_string())
                    .unwrap_or_default();
                eprintln!("node{i} {what}: {status} (log: {log})");
                failed |= !status.success();
                *slot = None;
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("node{i}: cannot wait for it: {e}");
                failed = true;
                *slot = None;
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SeedSpec;

    fn seeds_of(text: &str) -> Vec<SeedSpec> {
        let value: toml::Value = toml::from_str(text).unwrap();
        value["p2p"]["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn a_node_config_names_its_ports_and_pinned_peers() {
        let key = SecretKey::from_seed(&[3; 32]).public_key();
        let seed = format!("\"{}@127.0.0.1:4000\"", key.to_hex());
        let text = node_config(4100, 4101, 4102, &[seed]).unwrap();
        config::check_text(&text).unwrap();
        assert!(text.contains("listen = \"127.0.0.1:4100\""));
        assert!(text.contains("listen = \"127.0.0.1:4101\""));
        assert!(text.contains("listen = \"127.0.0.1:4102\""));
        assert!(text.contains("\noperator_key = \"operator.key\""));
        let seeds = seeds_of(&text);
        assert_eq!(seeds.len(), 1);
        assert_eq!(seeds[0].0.key, Some(timecoin_net::PeerId::from(key)));
    }
}
