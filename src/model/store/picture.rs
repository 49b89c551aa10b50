//! The whole picture as events: what the store holds, said as the events that build it
//! again. `fleetdeck serve` sends it to a console that connects (and to one that fell
//! behind), which folds it into its own store as it folds any source's events; so a remote
//! console is the same program with a different source, not a second UI.
//!
//! What is only remembered from the last session (the warm start) is left out, as in the
//! picture kept on disk: a remote console never sees a remembered thing as fresh.

use std::collections::BTreeMap;

use super::Store;
use crate::model::{Cluster, MetricName, MetricRing, MetricRun, SourceEvent};

impl Store {
    /// Events that, folded into an empty store, give this store's picture: sources (as
    /// started, then their health), clusters by source, metric points, what the API servers
    /// and the Argo CD hub said, rollouts, local acks, alerts, and last the sources that
    /// have delivered their first complete picture.
    pub fn picture(&self) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        for name in &self.started {
            let poll_interval_secs = self.sources.get(name).map_or(60, |h| h.poll_interval_secs);
            events.push(SourceEvent::Expected {
                source: name.clone(),
                poll_interval_secs,
            });
        }
        // A placeholder (listed as loading, no health of its own yet) comes back from its
        // `Expected`; anything else is said as the source said it.
        for health in self.sources.values() {
            if !self.placeholders.contains(&health.name) {
                events.push(SourceEvent::Health(health.clone()));
            }
        }
        let mut inventories: BTreeMap<&str, Vec<Cluster>> = BTreeMap::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if !self.is_cached_cluster(i) {
                inventories
                    .entry(self.slots[i].source.as_str())
                    .or_default()
                    .push(cluster.clone());
            }
        }
        for (source, clusters) in inventories {
            events.push(SourceEvent::ClusterInventory {
                source: source.to_string(),
                clusters,
            });
        }
        for (i, cluster) in self.clusters.iter().enumerate() {
            if self.is_cached_cluster(i) {
                continue;
            }
            // One run per metric, from its first point held to its last: a value per
            // minute is a tenth of the bytes of a sample per point.
            let mut runs = Vec::new();
            for metric in MetricName::ALL {
                if let Some(ring) = &self.slots[i].metrics[metric.index()]
                    && let Some(end) = ring.end_minute()
                {
                    let points: Vec<(i64, f32)> = ring
                        .window(end, MetricRing::CAPACITY)
                        .into_iter()
                        .filter(|(_, v)| v.is_finite())
                        .collect();
                    let Some(&(start, _)) = points.first() else {
                        continue;
                    };
                    let mut values = vec![None; (end - start + 1) as usize];
                    for (minute, value) in points {
                        values[(minute - start) as usize] = Some(value);
                    }
                    runs.push(MetricRun {
                        metric,
                        start,
                        values,
                    });
                }
            }
            if !runs.is_empty() {
                events.push(SourceEvent::MetricRuns {
                    cluster: cluster.id.clone(),
                    runs,
                });
            }
        }
        for (cluster, signals) in &self.kube {
            events.push(SourceEvent::KubeSignals {
                cluster: cluster.clone(),
                signals: Box::new(signals.clone()),
            });
        }
        for ((source, cluster), checks) in &self.permissions {
            events.push(SourceEvent::Permissions {
                source: source.clone(),
                cluster: cluster.clone(),
                checks: checks.clone(),
            });
        }
        for (source, apps) in &self.apps {
            events.push(SourceEvent::Applications {
                source: source.clone(),
                apps: apps.clone(),
            });
        }
        for (source, sets) in &self.app_sets {
            events.push(SourceEvent::ApplicationSets {
                source: source.clone(),
                sets: sets.clone(),
            });
        }
        // Rollouts built from ApplicationSets come back from the sets; the rest (the
        // demo's) are sent whole.
        for rollout in &self.rollouts {
            if !self.is_built_rollout(rollout) {
                events.push(SourceEvent::Rollout(rollout.clone()));
            }
        }
        for (key, ack) in &self.local_acks {
            events.push(SourceEvent::LocalAck {
                alert: key.clone(),
                ack: Some(ack.clone()),
            });
        }
        let alerts: Vec<_> = self
            .alerts
            .values()
            .filter(|a| !self.is_cached_alert(&a.key))
            .cloned()
            .collect();
        if !alerts.is_empty() {
            events.push(SourceEvent::Alerts(alerts));
        }
        for source in &self.ready {
            events.push(SourceEvent::Ready {
                source: source.clone(),
            });
        }
        events
    }

    /// The names of every source the store knows of (started, reporting health, or
    /// having clusters or Argo CD objects): what a resynced picture is compared against.
    pub fn source_names_known(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> = self.started.iter().cloned().collect();
        names.extend(self.sources.keys().cloned());
        names.extend(self.slots.iter().map(|s| s.source.clone()));
        names.extend(self.apps.keys().cloned());
        names.extend(self.app_sets.keys().cloned());
        names.remove("");
        names
    }
}
