//! Running a node: open what blocks before the runtime starts, wire the engine to the network on it, and
//! take it down in order when asked.
//!
//! Shutdown order, bounded by `[shutdown] timeout_secs` (default 10 s): the services stop accepting, the
//! engine finishes the batch in hand and its thread is joined (a height in flight is abandoned; what the
//! node signed is already in the WAL), the network closes every connection and saves its address book,
//! and the store is flushed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sd_notify::NotifyState;
use timecoin_crypto::SecretKey;
use timecoin_net::{NodeIdentity, TcpNetwork};
use timecoin_node::NodeBuilder;
use timecoin_node::bootstrap::{PreparedStore, prepare_store, run_state_sync};
use timecoin_node::runner::{self, NodeHandle};
use timecoin_node::statesync::{StateSync, StateSyncOutcome};
use timecoin_storage::{AnyEngine, BlockStore, ChainDb, ChainStore, ConsensusStateStore};
use timecoin_types::Genesis;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use crate::{genesis_file, services};

/// How often the daemon asks the engine for its status: tip changes are logged, and an engine that
/// halted on its own is noticed.
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// What the node is made of, opened before the runtime so no worker thread waits on the disk.
struct Opened {
    genesis: Genesis,
    node_key: SecretKey,
    operator_key: Option<SecretKey>,
    store: Store,
    height: u64,
}

/// The chain to run on, or an empty store to state-sync into once the network is up.
enum Store {
    Chain(Arc<ChainDb>),
    Empty(AnyEngine),
}

/// `parent_bound`: stop when the parent process exits.
pub(crate) fn run(settings: Settings, parent_bound: bool) -> Result<ExitCode> {
    let opened = open(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("timed-worker")
        .build()
        .context("starting the tokio runtime")?;
    let parent = parent_bound.then(rustix::process::getppid);
    let code = runtime.block_on(serve(settings, opened, parent));
    // Anything still running (a stuck dial, a timer) has nothing left to protect: the store is flushed.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

fn open(settings: &Settings) -> Result<Opened> {
    let loaded = genesis_file::load(&settings.genesis).with_context(|| {
        format!(
            "loading the genesis (`timed init --network {} --datadir {}` creates a data dir)",
            settings.network,
            settings.datadir.display()
        )
    })?;
    if loaded.placeholder {
        bail!(
            "{} is a placeholder: the {} genesis is not published yet, so this node has no chain \
             to join",
            settings.genesis.display(),
            settings.network
        );
    }
    let genesis = loaded.genesis;
    if genesis.params.network != settings.network.network() {
        bail!(
            "the config says network `{}` but {} is a `{}` genesis",
            settings.network,
            settings.genesis.display(),
            genesis.params.network
        );
    }
    let node_key = SecretKey::load(&settings.node_key).with_context(|| {
        format!(
            "loading the node key (`timed init --network {} --datadir {}` creates a data dir)",
            settings.network,
            settings.datadir.display()
        )
    })?;
    let operator_key = settings
        .operator_key
        .as_ref()
        .map(|path| SecretKey::load(path).context("loading the masternode operator key"))
        .transpose()?;
    let storage = settings.storage_config();
    let what = || {
        format!(
            "opening the chain in {} (is another timed using this data dir?)",
            settings.chain_dir().display()
        )
    };
    let engine = AnyEngine::open(&storage).with_context(what)?;
    let (store, height) = match prepare_store(engine, &storage, &genesis, settings.sync.state_sync)
        .with_context(what)?
    {
        PreparedStore::Chain(db) => {
            let height = db.tip()?.height;
            (Store::Chain(Arc::new(db)), height)
        }
        PreparedStore::Empty(engine) => (Store::Empty(engine), 0),
    };
    Ok(Opened {
        genesis,
        node_key,
        operator_key,
        store,
        height,
    })
}

async fn serve(
    settings: Settings,
    opened: Opened,
    parent: Option<Option<rustix::process::Pid>>,
) -> Result<ExitCode> {
    let Opened {
        genesis,
        node_key,
        operator_key,
        store,
        height,
    } = opened;
    let (trigger, mut stop) = shutdown::install().context("installing signal handlers")?;
    let genesis_hash = genesis.block().hash();
    info!(
        network = %settings.network,
        genesis = %genesis_hash,
        datadir = %settings.datadir.display(),
        height,
        node_key = %node_key.public_key(),
        operator_key = ?operator_key.as_ref().map(|k| k.public_key().to_hex()),
        "starting"
    );

    let identity = NodeIdentity::new(node_key, genesis.params.chain_id, genesis_hash.0);
    let (identity, signer) = match operator_key {
        Some(key) => {
            // One copy proves the operator key in handshakes, the other signs votes.
            let signer = Arc::new(SecretKey::from_seed(&key.to_seed()));
            (identity.with_operator(key), Some(signer))
        }
        None => (identity, None),
    };
    let (network, events) = TcpNetwork::bind(settings.net_config(), identity).await?;
    let listen = network.local_addr()?;
    let (db, events) = match store {
        Store::Chain(db) => (db, events),
        Store::Empty(engine) => {
            let synced = tokio::select! {
                synced = state_sync(&settings, &genesis, engine, &network, events) => synced,
                why = stop.requested() => {
                    // What the import wrote is discarded at the next start.
                    info!(reason = why, "stopping during state sync");
                    let _ = tokio::task::spawn_blocking(move || network.shutdown()).await;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            match synced {
                Ok(synced) => synced,
                Err(e) => {
                    let _ = tokio::task::spawn_blocking(move || network.shutdown()).await;
                    return Err(e);
                }
            }
        }
    };

    let config = settings.node_config(&genesis);
    let services_genesis = genesis.clone();
    let registry = services::metrics_registry(&settings, &network);
    let commit_timer = registry.as_ref().map(|r| r.commit_seconds());
    let build_db = db.clone();
    let build_net = network.clone();
    let built = tokio::task::spawn_blocking(move || {
        let mut builder = NodeBuilder::new(config, genesis)
            .store(
                build_db.clone() as Arc<dyn ChainStore>,
                build_db as Arc<dyn ConsensusStateStore>,
            )
            .network(Arc::new(build_net));
        if let Some(signer) = signer {
            builder = builder.signer(signer);
        }
        if let Some(histogram) = commit_timer {
            builder = builder.commit_timer(histogram);
        }
        builder.build()
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|node| node.map_err(anyhow::Error::from))
    .and_then(|node| {
        runner::spawn(node, events, tokio::runtime::Handle::current()).map_err(anyhow::Error::from)
    });
    let (handle, engine) = match built {
        Ok(running) => running,
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || network.shutdown()).await;
            return Err(e);
        }
    };
    let bound = Duration::from_secs(settings.shutdown.timeout_secs);
    let services = match services::start(
        &settings,
        &handle,
        &services_genesis,
        &network,
        &trigger,
        registry,
    )
    .await
    {
        Ok(services) => services,
        Err(e) => {
            // The engine already runs: take it down in order before reporting why.
            let stopping = stop_all(None, handle, engine, network, db);
            if let Err(stop) = tokio::time::timeout(bound, stopping).await {
                error!(%stop, "shutdown after a failed start did not finish");
            }
            return Err(e);
        }
    };
    info!(%listen, seeds = settings.p2p.seeds.len(), "node running");
    notify(NotifyState::Ready);

    let reason = watch_until_stop(&handle, &engine, parent, &trigger, &mut stop).await;
    let halted = reason == ENGINE_HALTED;
    notify(NotifyState::Stopping);
    let graceful = stop_all(Some(services), handle, engine, network, db);
    match tokio::time::timeout(bound, graceful).await {
        Ok(Ok(height)) if !halted => {
            info!(height, "stopped cleanly");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(height)) => {
            error!(height, "stopped after the engine halted");
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(e)) => {
            error!(error = %format!("{e:#}"), "shutdown failed");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            error!(
                bound_secs = bound.as_secs(),
                "shutdown did not finish within its bound; exiting"
            );
            // The runtime would wait for the stuck blocking task; the process must not.
            std::process::exit(1);
        }
    }
}

/// The shutdown reason when the engine stopped by itself; the exit code then reports a failure.
const ENGINE_HALTED: &str = "the engine halted";

/// Logs each new tip until a stop is requested (a signal, RPC `stop`, or the engine halting by itself);
/// returns why.
async fn watch_until_stop(
    handle: &NodeHandle,
    engine: &std::thread::JoinHandle<()>,
    parent: Option<Option<rustix::process::Pid>>,
    trigger: &ShutdownTrigger,
    stop: &mut ShutdownSignal,
) -> &'static str {
    let mut last = None;
    let mut tick = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            why = stop.requested() => {
                info!(reason = why, "shutting down");
                return why;
            }
            _ = tick.tick() => {
                if engine.is_finished() {
                    error!("the engine stopped by itself (see the error above)");
                    trigger.request(ENGINE_HALTED);
                    continue;
                }
                // An orphan is adopted by another process, so its parent id changes.
                if let Some(parent) = parent
                    && rustix::process::getppid() != parent
                {
                    trigger.request("the parent process exited");
                    continue;
                }
                if let Ok(status) = handle.status().await
                    && last != Some(status.height)
                {
                    last = Some(status.height);
                    info!(
                        height = status.height,
                        tip = %status.tip,
                        peers = status.peers,
                        mempool = status.mempool,
                        validator = status.validator,
                        "tip"
                    );
                }
            }
        }
    }
}

async fn stop_all(
    services: Option<services::Services>,
    handle: NodeHandle,
    engine: std::thread::JoinHandle<()>,
    network: TcpNetwork,
    db: Arc<ChainDb>,
) -> Result<u64> {
    if let Some(services) = services {
        services.stop().await;
    }
    if handle.stop().await.is_err() {
        warn!("the engine had already stopped");
    }
    drop(handle);
    tokio::task::spawn_blocking(move || engine.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    // Saving the address book writes a file.
    tokio::task::spawn_blocking(move || network.shutdown()).await?;
    let height = tokio::task::spawn_blocking(move || -> Result<u64> {
        db.flush().context("flushing the store")?;
        Ok(db.tip()?.height)
    })
    .await??;
    Ok(height)
}

/// Fills an empty store from the peers (or, falling back, opens it from genesis), and hands back the
/// network's events with the peers the sync met announced first, for the engine.
async fn state_sync(
    settings: &Settings,
    genesis: &Genesis,
    engine: AnyEngine,
    network: &TcpNetwork,
    mut events: tokio::sync::mpsc::Receiver<timecoin_net::NetEvent>,
) -> Result<(
    Arc<ChainDb>,
    tokio::sync::mpsc::Receiver<timecoin_net::NetEvent>,
)> {
    let storage = settings.storage_config();
    info!(
        min_lag = settings.sync.state_sync_min_lag,
        "empty store: asking peers for their tips to state-sync"
    );
    let sync = StateSync::new(
        settings.state_sync_config(),
        storage.clone(),
        genesis.clone(),
        engine,
    )?;
    let done = run_state_sync(sync, Arc::new(network.clone()), &mut events, Vec::new()).await?;
    let events = done.events_for_engine(events, runner::INBOX_CAPACITY);
    let db = match done.outcome {
        StateSyncOutcome::Imported(db) => {
            info!(height = db.tip()?.height, stats = ?done.stats, "state sync imported the chain");
            db
        }
        StateSyncOutcome::Fallback(engine) => {
            info!("no snapshot: replaying the chain from genesis");
            let genesis = genesis.clone();
            tokio::task::spawn_blocking(move || ChainDb::open(engine, &storage, &genesis)).await??
        }
    };
    Ok((Arc::new(db), events))
}

fn notify(state: NotifyState<'_>) {
    // Outside systemd there is no socket and this does nothing.
    if let Err(e) = sd_notify::notify(false, &[state]) {
        warn!(%e, "sd_notify failed");
    }
}
