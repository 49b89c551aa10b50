//! What this source has reported as firing, so that alerts that stop being reported are
//! sent again as resolved (never silently dropped), and first-seen times survive polls.

use std::collections::BTreeMap;

use crate::model::{Alert, AlertKey, Timestamp};

/// Which poll raised an alert. A successful poll of one aspect settles that aspect's alerts
/// only: a failed add-on poll must not resolve the insight alerts, or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Aspect {
    /// `health.issues` of the cluster (DescribeCluster).
    Health,
    Insights,
    /// Failed updates of the cluster itself.
    Updates,
    /// Failed updates of its add-ons.
    AddonUpdates,
    Addons,
    Nodegroups,
}

/// Firing alerts by cluster name and aspect.
#[derive(Default)]
pub(super) struct AlertBook {
    firing: BTreeMap<(String, Aspect), BTreeMap<AlertKey, Alert>>,
}

impl AlertBook {
    /// Replaces what fires for `(cluster, aspect)` with `current`; returns what to send: new
    /// alerts, changed ones (keeping their first-seen time), and the ones no longer reported,
    /// resolved at `now`. Unchanged firing alerts are not sent again.
    pub(super) fn settle(
        &mut self,
        cluster: &str,
        aspect: Aspect,
        current: Vec<Alert>,
        now: Timestamp,
    ) -> Vec<Alert> {
        let previous = self
            .firing
            .remove(&(cluster.to_string(), aspect))
            .unwrap_or_default();
        let (out, next) = alert_diff::settle(previous, current, now);
        if !next.is_empty() {
            self.firing.insert((cluster.to_string(), aspect), next);
        }
        out
    }

    /// Resolves everything that fires on a cluster (it was deleted or is no longer included).
    pub(super) fn resolve_cluster(&mut self, cluster: &str, now: Timestamp) -> Vec<Alert> {
        let keys: Vec<(String, Aspect)> = self
            .firing
            .keys()
            .filter(|(c, _)| c == cluster)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.firing.remove(&k))
            .flat_map(BTreeMap::into_values)
            .map(|a| resolved(a, now))
            .collect()
    }
}

use crate::sources::alert_diff::{self, resolved};
