//! The node's local services: the JSON-RPC server (`[rpc]`) and the metrics endpoint (`[metrics]`),
//! started after the engine and stopped before it, so no request reaches a node that is going away.
//! The RPC `stop` method takes the same path as a signal: it triggers the graceful shutdown.

use std::sync::Arc;

use anyhow::{Context, Result};
use timecoin_net::TcpNetwork;
use timecoin_node::metrics::{self, MetricsConfig, MetricsServer, NodeMetrics};
use timecoin_node::rpc::{self, NodeContext, RpcConfig, RpcServer};
use timecoin_node::runner::NodeHandle;
use timecoin_types::Genesis;
use tracing::info;

use crate::config::Settings;
use crate::shutdown::ShutdownTrigger;

/// The running services; [`Services::stop`] ends them before the engine stops.
#[derive(Debug)]
pub(crate) struct Services {
    rpc: Option<RpcServer>,
    metrics: Option<MetricsServer>,
    stop_watch: Option<tokio::task::JoinHandle<()>>,
}

/// The metrics registry when `[metrics]` is on, reading `network`'s traffic by channel. It is made
/// before the node, so the node's store can feed its commit timer from the first block.
pub(crate) fn metrics_registry(settings: &Settings, network: &TcpNetwork) -> Option<NodeMetrics> {
    settings
        .metrics
        .enabled
        .then(|| NodeMetrics::new().with_traffic(network.traffic()))
}

/// Starts what `[rpc]` and `[metrics]` enable, with everything they are handed: the node, its chain,
/// its network (peer listings), the shutdown trigger (RPC `stop`) and the metrics registry
/// ([`metrics_registry`]; `None` when `[metrics]` is off).
pub(crate) async fn start(
    settings: &Settings,
    node: &NodeHandle,
    genesis: &Genesis,
    network: &TcpNetwork,
    shutdown: &ShutdownTrigger,
    registry: Option<NodeMetrics>,
) -> Result<Services> {
    let context = NodeContext {
        genesis: Arc::new(genesis.clone()),
        peers: Some(Arc::new(network.clone())),
        storage_dir: Some(settings.chain_dir()),
    };
    let mut services = Services {
        rpc: None,
        metrics: None,
        stop_watch: None,
    };
    if settings.rpc.enabled {
        let config = RpcConfig {
            listen: settings.rpc.listen,
            cookie_dir: settings.rpc.cookie.then(|| settings.datadir.clone()),
            user: settings.rpc.user.clone(),
            password: settings.rpc.password.clone(),
            ..RpcConfig::default()
        };
        let server = rpc::start(&config, node.clone(), context.clone())
            .await
            .with_context(|| format!("starting the JSON-RPC server on {}", config.listen))?;
        info!(listen = %server.local_addr(), cookie = ?server.cookie_path(), "JSON-RPC listening");
        let mut stop = server.stop_signal();
        let trigger = shutdown.clone();
        services.stop_watch = Some(tokio::spawn(async move {
            stop.wait().await;
            trigger.request("RPC stop");
        }));
        services.rpc = Some(server);
    }
    if let Some(registry) = registry {
        let config = MetricsConfig {
            enabled: true,
            listen: settings.metrics.listen,
            ..MetricsConfig::default()
        };
        let server = metrics::start_with(&config, registry, node.clone(), context)
            .await
            .with_context(|| format!("starting the metrics endpoint on {}", config.listen))?;
        if let Some(server) = &server {
            info!(listen = %server.local_addr(), "metrics listening");
        }
        services.metrics = server;
    }
    Ok(services)
}

impl Services {
    /// Stops accepting requests (and deletes the cookie); the first step of a graceful shutdown.
    pub(crate) async fn stop(self) {
        if let Some(watch) = self.stop_watch {
            watch.abort();
        }
        if let Some(server) = self.rpc {
            server.stop().await;
        }
        if let Some(server) = self.metrics {
            server.stop().await;
        }
    }
}
