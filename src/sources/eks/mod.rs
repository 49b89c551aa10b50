//! The EKS source: one task per account and region, reading clusters, their health,
//! insights, updates, add-ons and node groups, and turning what is wrong into alerts.
//!
//! ## What each poll calls
//!
//! - **Inventory**, every 60 s (or, for a fleet that takes longer, as soon as the last
//!   one is described): `ListClusters` (every page through `call`), keep the clusters
//!   `[clusters].include` matches, and send them at once as the complete
//!   `ClusterInventory`: names first, the clusters not described yet as
//!   `Described::Pending`, the others with their last picture. Then `DescribeCluster`
//!   each (status, versions, tags, `health.issues`, upgrade policy), one at a time through
//!   the budget, in this order: the cluster on screen, the clusters of interest in the
//!   engine's order (firing alerts, then a started wave: `SourceCommand::Targets`), those
//!   never described, then the rest; commands are heard between two descriptions, so a
//!   change of focus or interest reorders what is left. Descriptions go out in batches
//!   (`ClustersChanged`, at most every second or 250 clusters, at once for the cluster on
//!   screen) with the health-issue alerts that changed and `Health`. `Ready` goes with the
//!   last description of the first inventory (every listed cluster described, or failed
//!   and said so), or at once when the listing failed or listed nothing.
//!   `DescribeClusterVersions` at most once an hour per region tells which versions are
//!   in extended support. DescribeCluster runs for every cluster every inventory: it is
//!   the only way to see a status change, and it is one call each.
//! - **Detail**, per described cluster every 5 minutes (every minute for the focused one):
//!   `ListInsights` (upgrade readiness and misconfiguration), `ListAddons` +
//!   `DescribeAddon`, `ListUpdates` (+ `DescribeUpdate`) for the cluster and for the
//!   add-ons worth it, `ListNodegroups` + `DescribeNodegroup`. Sends `ClusterChanged`, the
//!   alerts that changed, and `Health`. Clusters found together have their first detail
//!   polls spread over the first minute (so alerts show up quickly), and their later ones
//!   spread over the whole 5 minutes, so the calls trickle instead of bursting.
//! - **Focus** on one of our clusters: its description at once if this inventory has not
//!   described it yet, its detail poll at once, plus `DescribeInsight` for its insights
//!   that are not passing; then every minute while it stays in focus.
//!
//! ## Not calling more than needed
//!
//! - An update in a final state (Successful, Failed, Cancelled) never changes: it is
//!   described once and remembered.
//! - An add-on's updates are listed only when the add-on is not ACTIVE or was modified in
//!   the last 24 hours: otherwise nothing can be in flight and no recent update can have
//!   failed.
//! - An insight's `DescribeInsight` is kept while its `lastRefreshTime` is unchanged.
//! - Every call shares the account and region's `RequestBudget`, so a big fleet slows the
//!   cadence down rather than getting throttled.
//!
//! ## Failures
//!
//! - `ListClusters` failing: no inventory is sent (the last one stands and goes stale),
//!   `Health` carries the error (`eks:ListClusters: AccessDeniedException: ...`), and the
//!   next cycle tries again.
//! - `DescribeCluster` failing on one cluster: that cluster keeps its last picture (or shows
//!   as not described, `Described::Failed`, if never read); the others are unaffected. A failing detail aspect keeps its
//!   previous picture and alerts. Both show as the source's `last_error`, naming the
//!   cluster, while the source stays healthy (its inventory is current). If *no* cluster
//!   can be described (ListClusters allowed, DescribeCluster denied), the source is
//!   unhealthy, though the clusters still show.
//! - An endpoint that does not serve an operation at all (a bare HTTP 404, as moto answers
//!   for insights, updates, add-ons and cluster versions): logged once, not reported as the
//!   source's error, and tried again an hour later. Without `DescribeClusterVersions` no
//!   cluster is flagged as in extended support (a later failure keeps what was known).
//!
//! ## Alerts
//!
//! | alert | source | fingerprint | severity |
//! |---|---|---|---|
//! | `eks-cluster-health` | eks-health | issue code | critical |
//! | insight name | eks-insight | insight id | ERROR critical, WARNING warning |
//! | `eks-update-failed` | eks-health | update id | critical (failed in the last 24 h) |
//! | `eks-addon-degraded` | eks-health | add-on | DEGRADED warning, *_FAILED critical |
//! | `eks-nodegroup-degraded` | eks-health | node group | DEGRADED / issues warning, *_FAILED critical |
//!
//! An alert no longer reported (insight passing again, add-on healthy, cluster deleted) is
//! sent once more as resolved. `first_seen` is AWS's own time where there is one (a failed
//! update's `createdAt`, an insight's `lastTransitionTime`), else when this source first
//! saw the alert; it is kept across polls.

pub mod addon_update;
mod alerts;
mod api;
mod map;
mod poller;
mod task;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use task::spawn;

use crate::sources::aws::AwsScope;

/// Inventory and DescribeCluster cadence, also the `poll_interval_secs` in `Health`.
const POLL_INTERVAL_SECS: u64 = 60;
const POLL_INTERVAL: Duration = Duration::from_secs(POLL_INTERVAL_SECS);
/// Insights, updates, add-ons and node groups of each cluster.
const DETAIL_INTERVAL: Duration = Duration::from_secs(300);
/// The same for the cluster on screen.
const FOCUS_DETAIL_INTERVAL: Duration = Duration::from_secs(60);
/// Newly found clusters get their first detail poll within this window.
const FIRST_DETAIL_WINDOW: Duration = Duration::from_secs(60);
/// Which versions are in extended support changes a few times a year.
const VERSIONS_TTL: Duration = Duration::from_secs(3600);
/// How long an operation the endpoint does not serve is left alone.
const UNSUPPORTED_RETRY: Duration = Duration::from_secs(3600);
/// Descriptions go out in batches at most this often (the console draws new source data
/// about once a second), so thousands of clusters fill the screen without one event each.
const BATCH_WINDOW: Duration = Duration::from_secs(1);
/// ... and at most this many clusters to a batch, when the budget allows more.
const BATCH_MAX: usize = 250;

/// The source's name in `Health`, inventories and `Ready`: `eks:{account}/{region}`.
pub fn source_name(scope: &AwsScope) -> String {
    format!("eks:{}", scope.label())
}
