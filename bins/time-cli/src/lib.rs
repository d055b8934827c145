//! `time-cli`: the operator's and wallet's command line for TimeCoin.
//!
//! Everything a node is asked goes through its JSON-RPC ([`rpc`]); keys and signing stay in this
//! process. The binary (`main.rs`) only parses the command line and maps errors to exit codes
//! ([`exit`]); the commands live here so tests can drive their pure parts (coin selection, the `top`
//! screen) directly. `docs/CLI.md` describes every command.

pub mod cli;
pub mod endpoints;
pub mod exit;
pub mod loadgen;
pub mod output;
pub mod payment;
pub mod receipt;
pub mod rpc;
pub mod top;
pub mod wallet;

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::CommandFactory;
use serde_json::json;
use timecoin_crypto::{Address, Network, PublicKey, SecretKey};

use crate::cli::{Cli, Command, FeeFlags};
use crate::exit::Failure;
use crate::payment::{DEFAULT_FEE_RATE, FeePolicy};
use crate::rpc::RpcClient;

/// How long one `top` poll waits for a node before showing it as down.
const TOP_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let as_json = cli.json;
    let nodes = cli.node.to_args();
    let one = || -> Result<RpcClient> { Ok(RpcClient::new(nodes.first()?)) };
    match cli.command {
        Command::Keygen { out: path, network } => {
            let key = SecretKey::generate_os();
            key.save(&path)
                .map_err(|e| Failure::Usage.wrap(format!("writing {}: {e}", path.display())))?;
            print_key(&key.public_key(), network.into(), as_json)
        }
        Command::Address { key, network } => {
            let key = wallet::load_key(&key)?;
            print_key(&key.public_key(), network.into(), as_json)
        }
        Command::AddressOf {
            public_key,
            network,
        } => {
            let pk = PublicKey::from_hex(&public_key)
                .map_err(|e| Failure::Usage.wrap(format!("parsing the public key: {e}")))?;
            print_key(&pk, network.into(), as_json)
        }
        Command::CheckAddress { address, network } => {
            let (found, _) =
                Address::decode(&address).map_err(|e| Failure::Usage.wrap(format!("{e}")))?;
            if let Some(want) = network {
                let want: Network = want.into();
                if want != found {
                    return Err(Failure::Usage.wrap(format!("address is for {found}, not {want}")));
                }
            }
            output::either(
                as_json,
                &json!({ "valid": true, "network": found.name() }),
                &[("valid", format!("{found} address"))],
            )
        }
        Command::Balance { address } => wallet::balance(&one()?, &address, as_json),
        Command::Send {
            from,
            address,
            amount,
            fee,
            wait,
            timeout,
        } => {
            let request = wallet::SendRequest {
                from: &from,
                to: &address,
                amount: &amount,
                fee: fee_policy(&fee)?,
                wait: wait.then(|| Duration::from_secs(timeout)),
            };
            wallet::send(&one()?, &request, as_json)
        }
        Command::WaitFinal { txid, timeout } => {
            wallet::wait_final(&one()?, &txid, Duration::from_secs(timeout), as_json)
        }
        Command::Receipt { txid, blockhash } => {
            wallet::receipt(&one()?, &txid, blockhash.as_deref())
        }
        Command::VerifyReceipt {
            file,
            genesis,
            validators,
        } => {
            let trusted = match (genesis, validators) {
                (Some(g), _) => receipt::set_from_genesis(&g)?,
                (None, Some(v)) => receipt::set_from_file(&v)?,
                (None, None) => {
                    return Err(Failure::Usage.wrap("give --genesis or --validators".into()));
                }
            };
            receipt::verify(&file, &trusted, as_json)
        }
        Command::Validators => receipt::save_validators(&one()?),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut command, "time-cli", &mut out);
            out.flush().context("writing the completions")
        }
        Command::Top { interval, once } => {
            let clients: Vec<RpcClient> = nodes
                .endpoints()?
                .into_iter()
                .map(|e| RpcClient::with_timeout(e, TOP_CALL_TIMEOUT))
                .collect();
            top::run(
                &clients,
                interval.max(Duration::from_millis(100)),
                once,
                as_json,
            )
        }
        Command::Loadgen {
            rate,
            duration,
            from,
            coins,
            coin_value,
            fee,
            workers,
            settle,
        } => {
            let clients: Vec<RpcClient> =
                nodes.endpoints()?.into_iter().map(RpcClient::new).collect();
            let args = loadgen::LoadArgs {
                rate,
                duration,
                from,
                coins,
                coin_value: payment::parse_amount(&coin_value)?,
                fee: fee_policy(&fee)?,
                workers: workers.clamp(1, 256),
                settle,
            };
            loadgen::run(&clients, &args, as_json)
        }
    }
}

fn fee_policy(flags: &FeeFlags) -> Result<FeePolicy> {
    Ok(match (&flags.fee, flags.fee_rate) {
        (Some(flat), _) => FeePolicy::Flat(payment::parse_amount(flat)?),
        (None, Some(rate)) => FeePolicy::PerByte(rate),
        (None, None) => FeePolicy::PerByte(DEFAULT_FEE_RATE),
    })
}

fn print_key(pk: &PublicKey, network: Network, as_json: bool) -> Result<()> {
    let address = Address::from_public_key(pk).encode(network);
    if as_json {
        return output::json(&json!({ "public_key": pk.to_hex(), "address": address }));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "public_key {}", pk.to_hex())?;
    writeln!(out, "address    {address}")?;
    Ok(())
}
