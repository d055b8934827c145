//! `time-cli`: the operator's and wallet's command line for TimeCoin.
//!
//! Key management and addresses today; RPC commands (send, wait-final, status) arrive with the node.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use timecoin_crypto::{Address, Network, PublicKey, SecretKey};

#[derive(Parser)]
#[command(name = "time-cli", version, about = "TimeCoin command-line tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum NetworkArg {
    Mainnet,
    Testnet,
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

#[derive(Subcommand)]
enum Command {
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
    /// Check an address: its checksum and, if given, its network. Exits non-zero when invalid.
    CheckAddress {
        /// The address text.
        address: String,
        /// Require this network.
        #[arg(long, value_enum)]
        network: Option<NetworkArg>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Keygen { out: path, network } => {
            let key = SecretKey::generate_os();
            key.save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            print_key(&mut out, &key.public_key(), network.into())?;
        }
        Command::Address { key, network } => {
            let key =
                SecretKey::load(&key).with_context(|| format!("reading {}", key.display()))?;
            print_key(&mut out, &key.public_key(), network.into())?;
        }
        Command::AddressOf {
            public_key,
            network,
        } => {
            let pk = PublicKey::from_hex(&public_key).context("parsing the public key")?;
            print_key(&mut out, &pk, network.into())?;
        }
        Command::CheckAddress { address, network } => {
            let (found, _) = Address::decode(&address)?;
            if let Some(want) = network {
                let want: Network = want.into();
                if want != found {
                    bail!("address is for {found}, not {want}");
                }
            }
            writeln!(out, "valid {found} address")?;
        }
    }
    Ok(())
}

fn print_key(out: &mut impl Write, pk: &PublicKey, network: Network) -> Result<()> {
    writeln!(out, "public_key {}", pk.to_hex())?;
    writeln!(
        out,
        "address    {}",
        Address::from_public_key(pk).encode(network)
    )?;
    Ok(())
}
