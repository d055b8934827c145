//! `timed`, the TimeCoin node daemon.
//!
//! - `timed --config FILE` (or `--datadir DIR`) runs a node: the engine on its own thread, the TCP +
//!   Noise network and sled storage in the data dir, until SIGINT or SIGTERM.
//! - `timed init --network NET --datadir DIR [--masternode]` writes a commented config, the network's
//!   genesis and fresh keys.
//! - `timed testnet --nodes N [--dir DIR]` creates (or resumes) a local network of N masternodes and
//!   runs one `timed` process per node until Ctrl-C.
//!
//! Nothing here reaches outside the machine except the configured peers: no NTP, no web peer list, no
//! external IP service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod config;
mod genesis_file;
mod init;
mod logging;
mod node;
mod services;
mod shutdown;
mod testnet;

use config::{LogFormat, NetworkName, Overrides, SeedSpec, Source};

#[derive(Parser)]
#[command(
    name = "timed",
    version,
    about = "TimeCoin node daemon",
    args_conflicts_with_subcommands = true,
    after_help = "Precedence: flags > TIMED_* environment variables > config file > defaults.\n\
                  Exit codes: 0 clean stop; 1 error (bad config, startup failure, engine halted, \
                  shutdown over its bound); 2 usage; 130 forced by a second signal."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented config.toml, the network's genesis and fresh keys into a new data dir.
    Init(init::InitArgs),
    /// Create (or resume) a local network of N masternodes on 127.0.0.1 and run it until Ctrl-C.
    Testnet(testnet::TestnetArgs),
}

/// Running a node.
#[derive(Args)]
struct RunArgs {
    /// The config file; the data dir defaults to its folder.
    #[arg(long, env = "TIMED_CONFIG")]
    config: Option<PathBuf>,
    /// The data dir; its config.toml is read when --config is not given.
    #[arg(long, env = "TIMED_DATADIR")]
    datadir: Option<PathBuf>,
    /// Which chain: sets the default ports and must match the genesis.
    #[arg(long, env = "TIMED_NETWORK", value_enum)]
    network: Option<NetworkName>,
    /// Peer-to-peer listen address ([p2p] listen).
    #[arg(long, env = "TIMED_LISTEN")]
    listen: Option<SocketAddr>,
    /// The address peers can reach this node on, announced to them ([p2p] external_addr).
    #[arg(long, env = "TIMED_EXTERNAL_ADDR")]
    external_addr: Option<SocketAddr>,
    /// A seed peer, IP:PORT or NODEKEY@IP:PORT; repeat, or comma-separate in TIMED_SEEDS. Replaces
    /// [p2p] seeds.
    #[arg(long = "seed", env = "TIMED_SEEDS", value_delimiter = ',')]
    seeds: Vec<SeedSpec>,
    /// The masternode operator key file (operator_key).
    #[arg(long, env = "TIMED_OPERATOR_KEY")]
    operator_key: Option<PathBuf>,
    /// Log filter: a level or `tracing` directives ([log] level). RUST_LOG is read when neither this
    /// flag nor TIMED_LOG_LEVEL is set.
    #[arg(long, env = "TIMED_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format ([log] format).
    #[arg(long, env = "TIMED_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Block bodies kept below the tip (prune_keep_blocks); 0 keeps everything, otherwise at least
    /// 128. Headers and certificates are always kept.
    #[arg(long, env = "TIMED_PRUNE_KEEP_BLOCKS")]
    prune_keep_blocks: Option<u64>,
    /// Serve JSON-RPC ([rpc] enabled).
    #[arg(long, env = "TIMED_RPC_ENABLED")]
    rpc_enabled: Option<bool>,
    /// JSON-RPC listen address ([rpc] listen).
    #[arg(long, env = "TIMED_RPC_LISTEN")]
    rpc_listen: Option<SocketAddr>,
    /// Serve metrics ([metrics] enabled).
    #[arg(long, env = "TIMED_METRICS_ENABLED")]
    metrics_enabled: Option<bool>,
    /// Metrics listen address ([metrics] listen).
    #[arg(long, env = "TIMED_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Empty heartbeat block interval in ms ([consensus] empty_block_interval_ms).
    #[arg(long, env = "TIMED_EMPTY_BLOCK_INTERVAL_MS")]
    empty_block_interval_ms: Option<u64>,
    /// Print the effective settings (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
    /// Stop cleanly when the parent process exits (set by `timed testnet` on its nodes, so a
    /// supervisor that is killed leaves no node behind).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        // A password on the command line would show in `ps`; it comes from the environment only.
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Overrides {
            network: self.network,
            listen: self.listen,
            external_addr: self.external_addr,
            seeds: (!self.seeds.is_empty()).then(|| self.seeds.clone()),
            operator_key: self.operator_key.clone(),
            log_level: self.log_level.clone().or_else(|| env("RUST_LOG")),
            log_format: self.log_format,
            prune_keep_blocks: self.prune_keep_blocks,
            rpc_enabled: self.rpc_enabled,
            rpc_listen: self.rpc_listen,
            rpc_user: env("TIMED_RPC_USER"),
            rpc_password: env("TIMED_RPC_PASSWORD"),
            metrics_enabled: self.metrics_enabled,
            metrics_listen: self.metrics_listen,
            empty_block_interval_ms: self.empty_block_interval_ms,
        }
    }
}

/// Under load, glibc's malloc took about a fifth of a node's CPU (allocation-heavy gossip, decoding and
/// pooling); mimalloc's thread-local free lists cut that (docs/BENCHMARKS.md, "Local testnet under
/// load").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Init(args)) => init::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Testnet(args)) => testnet::run(&args),
        None => run_node(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Before logging is set up (a bad config) this is the only place the error can go.
            eprintln!("timed: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_node(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let source = Source {
        config: args.config.clone(),
        datadir: args.datadir.clone(),
    };
    let settings = config::load(&source, &args.overrides())?;
    if args.print_config {
        let text = toml::to_string(&settings)?;
        let mut out = std::io::stdout().lock();
        std::io::Write::write_all(&mut out, text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    logging::init(&settings.log)?;
    node::run(settings, args.exit_with_parent)
}
