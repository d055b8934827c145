//! Log output: `tracing` to stderr, plain or JSON, behind one filter.
//!
//! Secrets never reach a log: key files are read into `SecretKey`, whose `Debug` is redacted, and the
//! RPC password is only ever handed on, never formatted.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub(crate) fn init(settings: &LogSettings) -> Result<()> {
    let filter = EnvFilter::try_new(&settings.level)
        .with_context(|| format!("log level `{}`", settings.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes belong on a terminal, not in a log file or a journal.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match settings.format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}
