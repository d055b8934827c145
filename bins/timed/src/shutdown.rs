//! One way to ask the node to stop, whoever asks: SIGINT, SIGTERM, or (once it is wired) the RPC's
//! `stop`, which holds a [`ShutdownTrigger`]. A signal that arrives while a shutdown is under way (the
//! second Ctrl-C) does not wait for the graceful path.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info};

/// Exit code when a second signal cuts a shutdown short (128 + SIGINT, as shells report Ctrl-C).
pub(crate) const EXIT_FORCED: i32 = 130;

/// Asks the node to stop; cheap to clone and hand to whoever may ask (the RPC's `stop`).
#[derive(Clone, Debug)]
pub(crate) struct ShutdownTrigger(watch::Sender<Option<&'static str>>);

impl ShutdownTrigger {
    /// Starts the graceful shutdown; `why` is logged. Later requests are ignored.
    pub(crate) fn request(&self, why: &'static str) {
        self.0.send_if_modified(|reason| {
            if reason.is_none() {
                *reason = Some(why);
                true
            } else {
                false
            }
        });
    }
}

/// Waits for a stop request.
pub(crate) struct ShutdownSignal(watch::Receiver<Option<&'static str>>);

impl ShutdownSignal {
    /// Returns why the node was asked to stop, once it is.
    pub(crate) async fn requested(&mut self) -> &'static str {
        match self.0.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or("stop requested"),
            // Every trigger is gone, so nobody can ask any more: treat it as a request.
            Err(_) => "every shutdown trigger was dropped",
        }
    }
}

/// A trigger and its signal, with SIGINT and SIGTERM wired to the trigger. Must run inside a runtime.
pub(crate) fn install() -> std::io::Result<(ShutdownTrigger, ShutdownSignal)> {
    let (tx, rx) = watch::channel(None);
    let trigger = ShutdownTrigger(tx);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let on_signal = trigger.clone();
    let under_way = rx.clone();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            // A signal during a shutdown (whoever started it) means the operator will not wait.
            if under_way.borrow().is_some() {
                // Blocks and consensus state are flushed before they are acknowledged, so this is no
                // worse than a crash, which the store recovers from.
                error!(
                    signal = received,
                    "signal during shutdown: exiting now without finishing it"
                );
                std::process::exit(EXIT_FORCED);
            }
            info!(
                signal = received,
                "stopping; send the signal again to exit at once"
            );
            on_signal.request(received);
        }
    });
    Ok((trigger, ShutdownSignal(rx)))
}
