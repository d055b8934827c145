//! Which nodes a command talks to: `--rpc` URLs, `--datadir`s (for the cookie and, when no URL is
//! given, the port in the data dir's `config.toml`), or every node of a `timed testnet` directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::exit::Failure;
use crate::rpc::{Credentials, DEFAULT_RPC_URL, Endpoint};

/// The cookie file's name in a data dir (`timecoin_node::rpc::COOKIE_FILE`).
pub const COOKIE_FILE: &str = timecoin_node::rpc::COOKIE_FILE;
/// A node's config file in its data dir, as `timed init` and `timed testnet` write it.
pub const CONFIG_FILE: &str = "config.toml";
/// Most nodes read from a testnet directory (`timed testnet` runs at most 64).
pub const MAX_TESTNET_NODES: usize = 64;
/// A config file longer than this is not a node's config.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What the user said about where the nodes are.
#[derive(Clone, Debug, Default)]
pub struct NodeArgs {
    /// `--rpc` URLs, in order.
    pub rpc: Vec<String>,
    /// `--datadir`s, in order; the i-th pairs with the i-th URL.
    pub datadir: Vec<PathBuf>,
    /// `--rpc-user`.
    pub user: Option<String>,
    /// `--rpc-password` (or its environment variable).
    pub password: Option<String>,
    /// `--testnet DIR`.
    pub testnet: Option<PathBuf>,
}

impl NodeArgs {
    /// Every node named, in order; at least one.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let mut datadirs = self.datadir.clone();
        if let Some(dir) = &self.testnet {
            datadirs.extend(testnet_datadirs(dir)?);
        }
        let count = self.rpc.len().max(datadirs.len()).max(1);
        if !self.rpc.is_empty() && !datadirs.is_empty() && datadirs.len() != self.rpc.len() {
            return Err(Failure::Usage.wrap(format!(
                "{} --rpc URLs but {} data dirs: give one --datadir per --rpc, or --rpc-user and \
                 --rpc-password for all",
                self.rpc.len(),
                datadirs.len()
            )));
        }
        let credentials_for =
            |dir: Option<&PathBuf>| -> Result<Credentials> {
                match (&self.user, &self.password, dir) {
                (Some(user), Some(password), _) => Ok(Credentials::UserPassword {
                    user: user.clone(),
                    password: password.clone(),
                }),
                (Some(_), None, _) | (None, Some(_), _) => Err(Failure::Usage
                    .wrap("--rpc-user and --rpc-password go together".to_string())),
                (None, None, Some(dir)) => Ok(Credentials::Cookie(dir.join(COOKIE_FILE))),
                (None, None, None) => Err(Failure::Usage.wrap(
                    "no credentials: give --datadir DIR (the node's data dir, for its .cookie) or \
                     --rpc-user with --rpc-password"
                        .to_string(),
                )),
            }
            };
        (0..count)
            .map(|i| {
                let dir = datadirs.get(i);
                let url = match (self.rpc.get(i), dir) {
                    (Some(url), _) => url.clone(),
                    (None, Some(dir)) => rpc_url_of_datadir(dir)?,
                    (None, None) => DEFAULT_RPC_URL.to_string(),
                };
                let name = match (self.testnet.is_some(), dir) {
                    (true, Some(dir)) => dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| url.clone()),
                    _ => url.trim_start_matches("http://").to_string(),
                };
                Ok(Endpoint {
                    name,
                    url,
                    credentials: credentials_for(dir)?,
                })
            })
            .collect()
    }

    /// The first node named: the one wallet commands talk to.
    pub fn first(&self) -> Result<Endpoint> {
        self.endpoints()?
            .into_iter()
            .next()
            .context("no node to talk to")
    }
}

/// The data dirs of a `timed testnet` directory: `DIR/node0`, `DIR/node1`, … in number order.
pub fn testnet_datadirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::Usage.wrap(format!("reading the testnet dir {}: {e}", dir.display()))
    })?;
    let mut nodes: Vec<(u32, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("node")
            .and_then(|n| n.parse::<u32>().ok())
            && entry.path().is_dir()
        {
            nodes.push((n, entry.path()));
        }
    }
    if nodes.is_empty() {
        return Err(Failure::Usage.wrap(format!(
            "{} holds no node0, node1, … directories: is it a `timed testnet` directory?",
            dir.display()
        )));
    }
    if nodes.len() > MAX_TESTNET_NODES {
        bail!(
            "{} holds {} node directories, over {MAX_TESTNET_NODES}",
            dir.display(),
            nodes.len()
        );
    }
    nodes.sort();
    Ok(nodes.into_iter().map(|(_, p)| p).collect())
}

/// The RPC URL a data dir's `config.toml` names (`[rpc] listen`), or the default when it names none.
/// A wildcard listen address is reached on loopback.
pub fn rpc_url_of_datadir(dir: &Path) -> Result<String> {
    let path = dir.join(CONFIG_FILE);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(DEFAULT_RPC_URL.to_string());
    };
    if meta.len() > MAX_CONFIG_BYTES {
        bail!("{} is over {MAX_CONFIG_BYTES} bytes", path.display());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e| Failure::Usage.wrap(format!("{}: {e}", path.display())))?;
    let listen = value
        .get("rpc")
        .and_then(|rpc| rpc.get("listen"))
        .and_then(toml::Value::as_str);
    Ok(match listen {
        Some(addr) => {
            let addr = addr
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace("[::]:", "[::1]:");
            format!("http://{addr}")
        }
        None => DEFAULT_RPC_URL.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn testnet(nodes: &[(&str, Option<&str>)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, listen) in nodes {
            let node = dir.path().join(name);
            std::fs::create_dir(&node).unwrap();
            if let Some(listen) = listen {
                let config =
                    format!("[p2p]\nlisten = \"127.0.0.1:1\"\n[rpc]\nlisten = \"{listen}\"\n");
                std::fs::write(node.join(CONFIG_FILE), config).unwrap();
            }
        }
        std::fs::create_dir(dir.path().join("accounts")).unwrap();
        dir
    }

    #[test]
    fn a_testnet_dir_gives_every_node_in_number_order_with_its_cookie_and_port() {
        let dir = testnet(&[
            ("node10", Some("127.0.0.1:4010")),
            ("node2", Some("0.0.0.0:4002")),
            ("node0", None),
        ]);
        let args = NodeArgs {
            testnet: Some(dir.path().to_path_buf()),
            ..NodeArgs::default()
        };
        let endpoints = args.endpoints().unwrap();
        let names: Vec<_> = endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["node0", "node2", "node10"]);
        assert_eq!(endpoints[0].url, DEFAULT_RPC_URL);
        assert_eq!(endpoints[1].url, "http://127.0.0.1:4002");
        assert_eq!(endpoints[2].url, "http://127.0.0.1:4010");
        assert!(matches!(
            &endpoints[2].credentials,
            Credentials::Cookie(p) if p == &dir.path().join("node10").join(COOKIE_FILE)
        ));
    }

    #[test]
    fn credentials_are_required_and_paired() {
        let none = NodeArgs::default();
        assert!(none.endpoints().is_err());
        let half = NodeArgs {
            user: Some("u".into()),
            ..NodeArgs::default()
        };
        assert!(half.endpoints().is_err());
        let both = NodeArgs {
            user: Some("u".into()),
            password: Some("p".into()),
            rpc: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            ..NodeArgs::default()
        };
        assert_eq!(both.endpoints().unwrap().len(), 2);
        let mismatched = NodeArgs {
            rpc: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            datadir: vec!["a".into(), "b".into(), "c".into()],
            ..NodeArgs::default()
        };
        assert!(mismatched.endpoints().is_err());
    }
}
