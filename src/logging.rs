//! Logs go to a file in the state directory, never to the terminal the UI draws on.
//! `FLEETDECK_LOG` sets the filter (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts logging to `<state_dir>/fleetdeck.log`. Keep the guard alive until exit so
/// buffered lines are flushed.
pub fn init(state_dir: &Path) -> std::io::Result<WorkerGuard> {
    std::fs::create_dir_all(state_dir)?;
    let appender = tracing_appender::rolling::never(state_dir, "fleetdeck.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("FLEETDECK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
