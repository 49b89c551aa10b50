//! The Argo CD hub source: watches the hub's Applications and ApplicationSets, ties each
//! Application to the spoke cluster it deploys to, raises alerts for Degraded or failed
//! Applications, and checks whether this user may pause and resume waves.
//!
//! ## What it calls
//!
//! - **Watches**, not repeated lists: one kube-runtime `watcher` per kind
//!   (`applications.argoproj.io` and `applicationsets.argoproj.io`, `argoproj.io/v1alpha1`,
//!   in the hub's Argo CD namespace). A watcher lists once, then follows changes; it
//!   re-lists only when the API server says the watch is too old (`410 Gone`). Watch calls
//!   end after [`WATCH_TIMEOUT_SECS`] and are resumed at once, so a quiet hub still shows
//!   fresh: the source's health counts the hub as answering whenever a call succeeds.
//! - **Permissions** on connect and every [`PERMISSION_RECHECK`]: one
//!   `SelfSubjectAccessReview` for `patch applicationsets.argoproj.io` in the namespace,
//!   which is what pausing or resuming a wave does (`maxUpdate` on a RollingSync step), sent
//!   as the `pause-wave` and `resume-wave` checks.
//!
//! ## What it sends
//!
//! - `Applications` and `ApplicationSets`: always complete sets, never more than about one
//!   of each a second however fast the hub changes ([`FLUSH_INTERVAL`]), and only once that
//!   kind has been listed (an empty set before that would claim there are none).
//! - `Alerts` (`argocd-app-degraded`) and `AlertsGone`, see `alerts`.
//! - `Health`, named [`source_name`], with a 60 s poll interval for staleness.
//! - `Ready` once each kind has been listed or has failed, so a broken hub never holds up
//!   `snapshot`.
//! - `Permissions` for the hub (`cluster: None`).
//!
//! ## Parsing
//!
//! Objects are read as `DynamicObject`s and picked apart field by field (see `parse`):
//! missing `status`, missing or unknown fields never fail a list. An object whose shape is
//! wrong where it matters (`spec` not an object, a RollingSync step that is not an object)
//! is skipped, logged by name and shown as the source's last error; the others still show.
//!
//! ## Failures
//!
//! A failing list or watch keeps the last picture (it goes stale) and is retried with
//! backoff up to [`RETRY_MAX`]. A 404 on the collection means the Argo CD CRDs are not
//! installed on the hub: the error says so and the source retries every [`CRD_RETRY`].

mod alerts;
pub mod app_actions;
mod fleet;
mod meter;
/// Public only so the fuzz targets (`fuzz/`) and `tests/fuzz_parsers.rs` can reach it.
#[doc(hidden)]
pub mod parse;
mod permissions;
mod task;
#[cfg(test)]
mod tests;
pub(crate) mod waves;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::Hub;
use crate::model::SourceEvent;
use crate::rollout::plan::Plan;
use crate::sources::SourceHandle;

/// The staleness interval reported in `Health`: data older than three of these is stale.
const POLL_INTERVAL_SECS: u64 = 60;
/// Server-side timeout of each watch call. Well under three poll intervals, so that even a
/// hub where nothing changes is seen answering often enough not to look stale.
const WATCH_TIMEOUT_SECS: u32 = 55;
/// Watch calls on one collection start at least this far apart. A watch normally lasts
/// [`WATCH_TIMEOUT_SECS`]; one that a proxy or an overloaded hub ends at once would
/// otherwise be re-opened in a tight loop (hundreds of calls a second).
const WATCH_SPACING: Duration = Duration::from_secs(1);
/// At most one `Applications` and one `ApplicationSets` event per this interval.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often health is recomputed when nothing else happens (watch reconnections).
const HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// RBAC changes are rare; ten minutes keeps the pause/resume hints honest.
const PERMISSION_RECHECK: Duration = Duration::from_secs(600);
/// First and largest wait after a failed list or watch.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// A hub without the Argo CD CRDs will not grow them in a second.
const CRD_RETRY: Duration = Duration::from_secs(300);

/// The source's name in `Health`, `Ready`, `Applications`...: `argocd:{context}`.
pub fn source_name(hub: &Hub) -> String {
    format!("argocd:{}", hub.context)
}

/// Starts the hub source on `client` (a client for the hub cluster). Exits when `events`
/// closes. The handle takes `SourceCommand::Targets` to map Applications to clusters.
pub fn spawn(
    client: kube::Client,
    hub: Hub,
    plans: BTreeMap<String, Plan>,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    task::spawn(client, hub, plans, clock, events, Tuning::default())
}

/// The source's timings, shortened by tests.
#[derive(Clone, Debug)]
pub(crate) struct Tuning {
    pub flush_interval: Duration,
    pub health_interval: Duration,
    pub permission_recheck: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub crd_retry: Duration,
    pub watch_timeout_secs: u32,
    pub watch_spacing: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            flush_interval: FLUSH_INTERVAL,
            health_interval: HEALTH_INTERVAL,
            permission_recheck: PERMISSION_RECHECK,
            retry_min: RETRY_MIN,
            retry_max: RETRY_MAX,
            crd_retry: CRD_RETRY,
            watch_timeout_secs: WATCH_TIMEOUT_SECS,
            watch_spacing: WATCH_SPACING,
        }
    }
}
