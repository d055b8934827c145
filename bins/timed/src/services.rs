//! The node's local services: the JSON-RPC server (`[rpc]`) and the metrics endpoint (`[metrics]`).
//!
//! They are built in `timecoin_node::rpc` and `timecoin_node::metrics`, which this release does not
//! have yet. This is the one place they start and stop: wiring them in means filling [`start`] (bind,
//! write the cookie, hand each the node's handle and the shutdown trigger for RPC `stop`) and
//! [`Services::stop`] (stop accepting, remove the cookie). Until then the settings are parsed and
//! validated, and an enabled service says plainly that nothing listens.

use anyhow::Result;
use timecoin_node::runner::NodeHandle;
use tracing::warn;

use crate::config::Settings;
use crate::shutdown::ShutdownTrigger;

/// The running services; [`Services::stop`] ends them before the engine stops.
#[derive(Debug)]
pub(crate) struct Services {
    _private: (),
}

/// Starts what `[rpc]` and `[metrics]` enable.
pub(crate) async fn start(
    settings: &Settings,
    _node: &NodeHandle,
    _shutdown: &ShutdownTrigger,
) -> Result<Services> {
    if settings.rpc.enabled {
        warn!(
            bind = %settings.rpc.bind,
            "[rpc] is enabled but this build has no JSON-RPC server yet; nothing listens"
        );
    }
    if settings.metrics.enabled {
        warn!(
            bind = %settings.metrics.bind,
            "[metrics] is enabled but this build has no metrics endpoint yet; nothing listens"
        );
    }
    Ok(Services { _private: () })
}

impl Services {
    /// Stops accepting requests; the first step of a graceful shutdown.
    pub(crate) async fn stop(self) {}
}
