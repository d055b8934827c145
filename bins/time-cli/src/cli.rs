//! The command line: every command, flag and default (`time-cli --help` prints them).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use timecoin_crypto::Network;

use crate::endpoints::NodeArgs;
use crate::exit;

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "time-cli",
    version,
    about = "TimeCoin command-line tool: keys, payments, finality receipts, a live view and a load generator",
    after_help = exit::HELP
)]
pub struct Cli {
    /// Where the nodes are and how to authenticate.
    #[command(flatten)]
    pub node: NodeFlags,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The flags naming nodes; every command accepts them.
#[derive(Args, Debug, Default)]
pub struct NodeFlags {
    /// A node's RPC URL (repeat for several nodes; default http://127.0.0.1:24101, or the port in
    /// DATADIR/config.toml).
    #[arg(long = "rpc", value_name = "URL", global = true)]
    pub rpc: Vec<String>,
    /// A node's data dir: its `.cookie` authenticates (repeat, one per --rpc).
    #[arg(long = "datadir", value_name = "DIR", global = true)]
    pub datadir: Vec<PathBuf>,
    /// Every node of a `timed testnet` directory (DIR/node0, DIR/node1, ...).
    #[arg(long, value_name = "DIR", global = true)]
    pub testnet: Option<PathBuf>,
    /// RPC user, instead of the cookie.
    #[arg(long, env = "TIMECOIN_RPC_USER", global = true)]
    pub rpc_user: Option<String>,
    /// RPC password, instead of the cookie (prefer the environment variable: a flag shows in `ps`).
    #[arg(
        long,
        env = "TIMECOIN_RPC_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub rpc_password: Option<String>,
}

impl NodeFlags {
    /// The same, as the endpoint resolver takes it.
    pub fn to_args(&self) -> NodeArgs {
        NodeArgs {
            rpc: self.rpc.clone(),
            datadir: self.datadir.clone(),
            user: self.rpc_user.clone(),
            password: self.rpc_password.clone(),
            testnet: self.testnet.clone(),
        }
    }
}

/// A network's address form.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NetworkArg {
    /// `time1...`
    Mainnet,
    /// `ttime1...`
    Testnet,
    /// `ltime1...`
    Local,
}

impl From<NetworkArg> for Network {
    fn from(n: NetworkArg) -> Self {
        match n {
            NetworkArg::Mainnet => Network::Mainnet,
            NetworkArg::Testnet => Network::Testnet,
            NetworkArg::Local => Network::Local,
        }
    }
}

/// How the fee is given on the command line.
#[derive(Args, Debug, Clone)]
#[group(multiple = false)]
pub struct FeeFlags {
    /// A flat fee for the whole transaction (e.g. 0.00001 or 500sat).
    #[arg(long, value_name = "AMOUNT")]
    pub fee: Option<String>,
    /// Satoshis per byte of the signed transaction (default 1; the chain's floor is 1 sat per
    /// transaction).
    #[arg(long, value_name = "SAT_PER_BYTE")]
    pub fee_rate: Option<u64>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a new Ed25519 key and write it to a new file (mode 0600); prints the public key and address.
    Keygen {
        /// Where to write the secret key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Network whose address form to print.
        #[arg(long, value_enum, default_value = "local")]
        network: NetworkArg,
    },
    /// Print the public key and address of a secret key file.
    Address {
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Network whose address form to print.
        #[arg(long, value_enum, default_value = "local")]
        network: NetworkArg,
    },
    /// Print the address of a hex public key.
    AddressOf {
        /// 64 hex characters.
        public_key: String,
        /// Network whose address form to print.
        #[arg(long, value_enum, default_value = "local")]
        network: NetworkArg,
    },
    /// Check an address: its checksum and, if given, its network. Exits 1 when invalid.
    CheckAddress {
        /// The address text.
        address: String,
        /// Require this network.
        #[arg(long, value_enum)]
        network: Option<NetworkArg>,
    },
    /// An address's finalized balance (RPC getbalance).
    Balance {
        /// The address.
        address: String,
    },
    /// Pay AMOUNT to ADDRESS from the coins of a key file: selects coins, adds change, signs, submits.
    Send {
        /// The sender's secret key file.
        #[arg(long, value_name = "KEYFILE")]
        from: PathBuf,
        /// The recipient.
        address: String,
        /// TIME with up to 8 decimals (1.5), or satoshis with a `sat` suffix (1500sat).
        amount: String,
        /// The fee.
        #[command(flatten)]
        fee: FeeFlags,
        /// Then wait until the transaction is final (exit 4 if not within --timeout).
        #[arg(long)]
        wait: bool,
        /// Seconds --wait waits.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Wait until a transaction is final (RPC waitfortx); exit 4 if not within --timeout.
    WaitFinal {
        /// The transaction id.
        txid: String,
        /// Seconds to wait.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Print a transaction's finality receipt as JSON (RPC gettxproof), e.g. `> receipt.json`.
    Receipt {
        /// The transaction id.
        txid: String,
        /// The block holding it (needed if it is older than the node's search depth, 256 blocks).
        #[arg(long)]
        blockhash: Option<String>,
    },
    /// Check a receipt offline against a validator set you trust; exit 5 if it does not verify.
    #[command(group(ArgGroup::new("trust").required(true).args(["genesis", "validators"])))]
    VerifyReceipt {
        /// The receipt file (from `time-cli receipt`).
        file: PathBuf,
        /// Trust the genesis validators of this genesis.toml (right until the set first changes).
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Trust the validator set in this file (from `time-cli validators`).
        #[arg(long, value_name = "FILE")]
        validators: Option<PathBuf>,
    },
    /// Print the node's current validator set as JSON, for `verify-receipt --validators`.
    Validators,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// A live view of the nodes: height, view, peers, mempool, finality latency, last blocks.
    Top {
        /// Refresh period, e.g. 1s or 500ms.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// Print one snapshot (as text, or JSON with --json) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Send signed transfers at a fixed rate and report finality throughput and latency.
    Loadgen {
        /// Transfers per second.
        #[arg(long)]
        rate: u64,
        /// How long to send, e.g. 60s, 2m, 500ms.
        #[arg(long, value_parser = parse_duration)]
        duration: Duration,
        /// The funded key.
        #[arg(long, value_name = "KEYFILE")]
        from: PathBuf,
        /// Coins to pre-split into (default: 4 s of transfers; they are recycled once final).
        #[arg(long)]
        coins: Option<usize>,
        /// Value of each pre-split coin.
        #[arg(long, default_value = "0.001")]
        coin_value: String,
        /// The fee.
        #[command(flatten)]
        fee: FeeFlags,
        /// Sending threads.
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// After sending, wait this long for the last transfers to become final.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        settle: Duration,
    },
}

/// `1.5`, `2s`, `500ms`, `2m`: a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 2s, 500ms, 1m)"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 {
        return Err(format!("`{text}` is out of range (0 to 24 h)"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}
