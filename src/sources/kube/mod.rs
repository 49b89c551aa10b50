//! The Kubernetes source: connections to the API servers of the clusters that matter now,
//! and the watchers inside them.
//!
//! ## What it does
//!
//! - Follows `SourceCommand::Targets` (the fleet with endpoints and CAs, and the clusters
//!   of interest) and `Focus` (the focused cluster is always of interest, and first).
//! - For each cluster of interest, takes a slot in the [`pool::Pool`] (at most
//!   `pool_size`), and connects: through a kubeconfig context when one maps to the cluster
//!   ([`contexts`]), else natively when `native_auth` is on and EKS gave an endpoint and CA
//!   and the account's AWS credentials are at hand ([`connect`], [`token`]); else reports
//!   `Unavailable: no kubeconfig context and no EKS endpoint for it`.
//! - A connection is proved with `GET /version`, then one `SelfSubjectAccessReview` per
//!   write fleetdeck offers on a spoke ([`permissions`]) gives `Permissions`, and
//!   [`spoke::watch`] runs until stopped.
//! - A cluster that is no longer of interest keeps its watchers for `idle_secs`, then they
//!   stop and it is reported `Idle`.
//! - A failed connection is reported `Unavailable` with what failed and where, and that
//!   cluster is not tried again for 30 s (network, 5xx) or 2 min (credentials, RBAC,
//!   config), doubling up to 10 min, with jitter: no retry storm when a VPN drops.
//! - `Ready` at once (it has nothing to wait for); `Health` every minute and after every
//!   connection attempt: calls are the requests connecting made (`/version`, reviews),
//!   errors the failed connections. One failing cluster is the last error, not a failing
//!   source; the source fails only when every wanted cluster fails.
//! - Exits when the events channel closes, stopping every watcher.

pub mod actions;
mod dial;
mod task;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub mod connect;
pub mod contexts;
pub mod permissions;
pub mod pool;
pub mod spoke;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use dial::{Dial, Dialer, NO_ROUTE, Route};

use crate::clock::Clock;
use crate::model::SourceEvent;
use crate::sources::SourceHandle;

/// The name this source reports `Health`, `Ready` and `Permissions` under.
pub const SOURCE_NAME: &str = "kubernetes";

/// Commands are rare (a key press, a new target list); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// Spawns the Kubernetes source. `aws` holds the SDK config of every account name and
/// region, whose credentials sign native EKS tokens. Exits when `events` closes.
pub fn spawn(
    settings: crate::config::Kubernetes,
    aws: crate::sources::aws::AccountCredentials,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    tokio::spawn(async move {
        let path = settings.kubeconfig.clone();
        // Reading a small file, but off the runtime's threads all the same.
        let loaded =
            tokio::task::spawn_blocking(move || contexts::load_kubeconfig(path.as_deref())).await;
        let (kubeconfig, problem) = match loaded {
            Ok(Ok(kubeconfig)) => (kubeconfig, None),
            Ok(Err(e)) => (Default::default(), Some(format!("kubeconfig: {e}"))),
            Err(e) => (Default::default(), Some(format!("kubeconfig: {e}"))),
        };
        let contexts = contexts::Contexts::new(kubeconfig, &settings.contexts);
        let dialer = Dialer::new(contexts, settings.native_auth, aws);
        let mut source = task::Source::new(
            Arc::new(dialer),
            settings.pool_size,
            Duration::from_secs(settings.idle_secs),
            clock,
            events,
        );
        if let Some(problem) = problem {
            tracing::warn!(%problem, "continuing without kubeconfig contexts");
            source.note_error(problem);
        }
        source.run(inbox).await;
    });
    SourceHandle {
        name: SOURCE_NAME.into(),
        commands,
    }
}

/// [`spawn`] with the dialer given, for tests.
#[cfg(test)]
fn spawn_with<D: Dial>(
    dial: Arc<D>,
    settings: &crate::config::Kubernetes,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let source = task::Source::new(
        dial,
        settings.pool_size,
        Duration::from_secs(settings.idle_secs),
        clock,
        events,
    );
    tokio::spawn(source.run(inbox));
    SourceHandle {
        name: SOURCE_NAME.into(),
        commands,
    }
}
