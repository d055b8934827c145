//! `timed init`: a new data dir with a commented config, the network's genesis and fresh keys.
//!
//! It never overwrites: if any file it would write exists, it writes nothing. Keys are written with mode
//! 0600 by `SecretKey::save`, which also refuses an existing file, so a race cannot clobber one either.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use timecoin_crypto::{Address, SecretKey};

use crate::config::{CONFIG_FILE, NetworkName};
use crate::genesis_file;

/// The genesis file a data dir holds.
pub(crate) const GENESIS_FILE: &str = "genesis.toml";
/// The node key: the identity peers authenticate.
pub(crate) const NODE_KEY_FILE: &str = "node.key";
/// The masternode operator key: signs votes.
pub(crate) const OPERATOR_KEY_FILE: &str = "operator.key";

/// The line of the shipped configs that names the operator key, commented out.
const OPERATOR_KEY_COMMENTED: &str = "# operator_key = \"operator.key\"";

#[derive(Args)]
pub(crate) struct InitArgs {
    /// Which chain the node joins.
    #[arg(long, value_enum)]
    network: NetworkName,
    /// The new data dir (created if missing).
    #[arg(long)]
    datadir: PathBuf,
    /// Also write a masternode operator key and name it in the config.
    #[arg(long)]
    masternode: bool,
}

/// The shipped example config of `network` (the files in `config/`).
pub(crate) fn config_template(network: NetworkName) -> &'static str {
    match network {
        NetworkName::Local => include_str!("../../../config/local.toml"),
        NetworkName::Testnet => include_str!("../../../config/testnet.toml"),
        NetworkName::Mainnet => include_str!("../../../config/mainnet.toml"),
    }
}

/// The shipped genesis of `network`.
pub(crate) fn genesis_text(network: NetworkName) -> &'static str {
    match network {
        NetworkName::Local => include_str!("../../../config/local.genesis.toml"),
        NetworkName::Testnet => include_str!("../../../config/testnet.genesis.toml"),
        NetworkName::Mainnet => include_str!("../../../config/mainnet.genesis.toml"),
    }
}

/// `template` with the operator key line switched on.
pub(crate) fn with_operator_key(template: &str) -> String {
    template.replacen(
        OPERATOR_KEY_COMMENTED,
        &format!("operator_key = \"{OPERATOR_KEY_FILE}\""),
        1,
    )
}

pub(crate) fn run(args: &InitArgs) -> Result<()> {
    let dir = &args.datadir;
    let mut files = vec![CONFIG_FILE, GENESIS_FILE, NODE_KEY_FILE];
    if args.masternode {
        files.push(OPERATOR_KEY_FILE);
    }
    for name in &files {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} exists; init never overwrites (move it away or choose another data dir)",
                path.display()
            );
        }
    }
    create_private_dir(dir)?;

    let template = config_template(args.network);
    let config = if args.masternode {
        with_operator_key(template)
    } else {
        template.to_string()
    };
    let genesis = genesis_text(args.network);
    let loaded = genesis_file::parse(genesis).context("the shipped genesis")?;
    write_new(&dir.join(CONFIG_FILE), config.as_bytes())?;
    write_new(&dir.join(GENESIS_FILE), genesis.as_bytes())?;
    let node_key = new_key(&dir.join(NODE_KEY_FILE))?;
    let operator = if args.masternode {
        Some(new_key(&dir.join(OPERATOR_KEY_FILE))?)
    } else {
        None
    };

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "initialized a {} node in {}",
        args.network,
        dir.display()
    )?;
    writeln!(out, "  config    {}", dir.join(CONFIG_FILE).display())?;
    writeln!(out, "  genesis   {}", dir.join(GENESIS_FILE).display())?;
    writeln!(
        out,
        "  node key  {} (public {})",
        dir.join(NODE_KEY_FILE).display(),
        node_key
    )?;
    if let Some(public) = operator {
        let address = Address::from_public_key(&public).encode(args.network.network());
        writeln!(
            out,
            "  operator  {} (public {public}, address {address})",
            dir.join(OPERATOR_KEY_FILE).display()
        )?;
        writeln!(
            out,
            "  The node votes once the chain registers this operator key as a masternode."
        )?;
    }
    if loaded.placeholder {
        writeln!(
            out,
            "  note: the {} genesis is a placeholder until it is published; the node will not start \
             on it",
            args.network
        )?;
    }
    writeln!(out, "run it with: timed --datadir {}", dir.display())?;
    Ok(())
}

/// A fresh key saved to `path`; returns its public half.
pub(crate) fn new_key(path: &Path) -> Result<timecoin_crypto::PublicKey> {
    let key = SecretKey::generate_os();
    key.save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key.public_key())
}

/// Writes a new file; an existing one is an error.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates `dir` (and its parents); a new data dir is readable by its owner only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn the_shipped_configs_parse_and_the_operator_line_switches_on() {
        for network in [
            NetworkName::Local,
            NetworkName::Testnet,
            NetworkName::Mainnet,
        ] {
            let template = config_template(network);
            config::check_text(template).unwrap();
            assert!(template.contains(OPERATOR_KEY_COMMENTED), "{network}");
            let masternode = with_operator_key(template);
            assert!(masternode.contains("\noperator_key = \"operator.key\""));
            config::check_text(&masternode).unwrap();
        }
    }

    #[test]
    fn the_shipped_genesis_files_match_their_networks() {
        let local = genesis_file::parse(genesis_text(NetworkName::Local)).unwrap();
        assert!(!local.placeholder);
        assert_eq!(local.genesis, timecoin_types::Genesis::local(4));
        for network in [NetworkName::Testnet, NetworkName::Mainnet] {
            let loaded = genesis_file::parse(genesis_text(network)).unwrap();
            assert!(loaded.placeholder, "{network} is not published yet");
            assert_eq!(loaded.genesis.params.network, network.network());
        }
    }
}
