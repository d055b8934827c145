//! The node's local services: the JSON-RPC server (`[rpc]`) and the metrics endpoint (`[metrics]`).
//!
//! They are built in `timecoin_node::rpc` and `timecoin_node::metrics`, which the crate this binary is
//! built against does not have yet. This is the one place they start and stop. Wiring them in:
//! - [`start`]: when `settings.rpc.enabled`, `rpc::start(&RpcConfig { listen: settings.rpc.listen,
//!   cookie_dir: settings.rpc.cookie.then(|| settings.datadir.clone()), user, password, ..default },
//!   node.clone(), context)` with a `NodeContext` holding the genesis, the network as its `PeerSource`
//!   and `settings.chain_dir()`; spawn a task that awaits the server's `stop_signal()` and then calls
//!   `shutdown.request("RPC stop")`, so RPC `stop` takes the same path as a signal. Likewise
//!   `metrics::start` when `settings.metrics.enabled`. Keep both servers in [`Services`].
//! - [`Services::stop`]: stop both servers (which stops accepting and deletes the cookie).
//!
//! Until then the settings are parsed and validated, and an enabled service says plainly that nothing
//! listens.

use anyhow::Result;
use timecoin_net::TcpNetwork;
use timecoin_node::runner::NodeHandle;
use timecoin_types::Genesis;
use tracing::warn;

use crate::config::Settings;
use crate::shutdown::ShutdownTrigger;

/// The running services; [`Services::stop`] ends them before the engine stops.
#[derive(Debug)]
pub(crate) struct Services {
    _private: (),
}

/// Starts what `[rpc]` and `[metrics]` enable, with everything they will be handed: the node, its chain,
/// its network (peer listings) and the shutdown trigger (RPC `stop`).
pub(crate) async fn start(
    settings: &Settings,
    _node: &NodeHandle,
    _genesis: &Genesis,
    _network: &TcpNetwork,
    _shutdown: &ShutdownTrigger,
) -> Result<Services> {
    if settings.rpc.enabled {
        warn!(
            listen = %settings.rpc.listen,
            "[rpc] is enabled but this build has no JSON-RPC server yet; nothing listens"
        );
    }
    if settings.metrics.enabled {
        warn!(
            listen = %settings.metrics.listen,
            "[metrics] is enabled but this build has no metrics endpoint yet; nothing listens"
        );
    }
    Ok(Services { _private: () })
}

impl Services {
    /// Stops accepting requests; the first step of a graceful shutdown.
    pub(crate) async fn stop(self) {}
}
