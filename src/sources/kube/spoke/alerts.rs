//! The alerts a cluster's summaries raise, and the book of what fires, so that an alert
//! that stops firing is sent again as resolved, never silently dropped.

use std::collections::BTreeMap;

use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, BlockingPdb, ClusterId, CrashingPod, Severity,
    Timestamp, WorkloadRef,
};

use super::summary::NodeTrouble;

/// Pods or deployments a summary names before saying how many more there are.
const NAMED_IN_SUMMARY: usize = 3;

/// Builds the alerts of one cluster.
pub(super) struct AlertFactory<'a> {
    pub cluster: &'a ClusterId,
    pub now: Timestamp,
}

impl AlertFactory<'_> {
    fn alert(
        &self,
        name: &str,
        fingerprint: &str,
        severity: Severity,
        summary: String,
        first_seen: Timestamp,
        extra: &[(&str, String)],
    ) -> Alert {
        let mut labels = BTreeMap::from([
            ("account".to_string(), self.cluster.account.clone()),
            ("region".to_string(), self.cluster.region.clone()),
            ("cluster".to_string(), self.cluster.name.clone()),
        ]);
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Alert {
            key: AlertKey::new(
                AlertSource::Kubernetes,
                Some(self.cluster),
                name,
                fingerprint,
            ),
            source: AlertSource::Kubernetes,
            cluster: Some(self.cluster.clone()),
            name: name.into(),
            severity,
            state: AlertState::Firing,
            first_seen,
            last_change: first_seen,
            summary,
            labels,
            runbook_url: None,
            ack: None,
        }
    }

    /// One `node-not-ready` per node: critical when at least 3 nodes, or 10% of them,
    /// are NotReady (a zone or a node group is going, not one node).
    pub(super) fn nodes(&self, not_ready: &[&NodeTrouble], total: usize) -> Vec<Alert> {
        let count = not_ready.len();
        let severity = if count >= 3 || count * 10 >= total {
            Severity::Critical
        } else {
            Severity::Warning
        };
        not_ready
            .iter()
            .map(|t| {
                let n = &t.node;
                let since = n.since.filter(|s| *s <= self.now);
                let how_long = since
                    .map(|s| format!(" for {}", age(self.now - s)))
                    .unwrap_or_default();
                let detail = if t.message.is_empty() {
                    n.reason.clone()
                } else {
                    format!("{}: {}", n.reason, t.message)
                };
                self.alert(
                    "node-not-ready",
                    &n.name,
                    severity,
                    format!("node {} NotReady{how_long} ({detail})", n.name),
                    since.unwrap_or(self.now),
                    &[("node", n.name.clone()), ("reason", n.reason.clone())],
                )
            })
            .collect()
    }

    /// One alert per namespace and reason: `pod-crashloopbackoff`, or
    /// `pod-imagepullbackoff` for ImagePullBackOff and ErrImagePull alike (a pull
    /// alternates between the two; separate alerts would flap).
    pub(super) fn pods(&self, pods: &[&CrashingPod]) -> Vec<Alert> {
        let mut groups: BTreeMap<(&str, &str), Vec<&CrashingPod>> = BTreeMap::new();
        for pod in pods {
            let reason = match pod.reason.as_str() {
                "CrashLoopBackOff" => "CrashLoopBackOff",
                _ => "ImagePullBackOff",
            };
            groups
                .entry((pod.namespace.as_str(), reason))
                .or_default()
                .push(pod);
        }
        groups
            .into_iter()
            .map(|((namespace, reason), mut pods)| {
                // The pods that restarted most say the most.
                pods.sort_by(|a, b| b.restarts.cmp(&a.restarts).then(a.name.cmp(&b.name)));
                let names = named(pods.iter().map(|p| {
                    if p.restarts > 0 {
                        format!("{} ({} restarts)", p.name, p.restarts)
                    } else {
                        p.name.clone()
                    }
                }));
                let count = pods.len();
                let noun = if count == 1 { "pod" } else { "pods" };
                self.alert(
                    &format!("pod-{}", reason.to_lowercase()),
                    namespace,
                    Severity::Warning,
                    format!("{count} {noun} in {reason} in {namespace}: {names}"),
                    self.now,
                    &[
                        ("namespace", namespace.to_string()),
                        ("reason", reason.to_string()),
                        ("pods", count.to_string()),
                    ],
                )
            })
            .collect()
    }

    /// One `pdb-blocks-disruption` per PDB.
    pub(super) fn pdbs(&self, pdbs: &[&BlockingPdb]) -> Vec<Alert> {
        pdbs.iter()
            .map(|p| {
                self.alert(
                    "pdb-blocks-disruption",
                    &format!("{}/{}", p.namespace, p.name),
                    Severity::Warning,
                    format!(
                        "PDB {}/{} allows 0 disruptions: node drains and upgrades will hang",
                        p.namespace, p.name
                    ),
                    self.now,
                    &[
                        ("namespace", p.namespace.clone()),
                        ("pdb", p.name.clone()),
                        ("current_healthy", p.current_healthy.to_string()),
                        ("desired_healthy", p.desired_healthy.to_string()),
                    ],
                )
            })
            .collect()
    }

    /// One alert per policy failing with high or critical severity in the reports.
    pub(super) fn policies(&self, reports: &crate::model::PolicyReports) -> Vec<Alert> {
        reports.alerts(self.cluster, self.now)
    }

    /// One `single-replica-deployment` per namespace.
    pub(super) fn single_replica(&self, workloads: &[&WorkloadRef]) -> Vec<Alert> {
        let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for w in workloads {
            by_namespace.entry(&w.namespace).or_default().push(&w.name);
        }
        by_namespace
            .into_iter()
            .map(|(namespace, mut names)| {
                names.sort();
                let count = names.len();
                let noun = if count == 1 {
                    "deployment runs"
                } else {
                    "deployments run"
                };
                self.alert(
                    "single-replica-deployment",
                    namespace,
                    Severity::Info,
                    format!(
                        "{count} {noun} a single replica in {namespace}: {}",
                        named(names.into_iter().map(str::to_string))
                    ),
                    self.now,
                    &[
                        ("namespace", namespace.to_string()),
                        ("deployments", count.to_string()),
                    ],
                )
            })
            .collect()
    }
}

/// The first few names, then how many more.
fn named(names: impl ExactSizeIterator<Item = String>) -> String {
    let total = names.len();
    let mut shown: Vec<String> = names.take(NAMED_IN_SUMMARY).collect();
    if total > NAMED_IN_SUMMARY {
        shown.push(format!("+{} more", total - NAMED_IN_SUMMARY));
    }
    shown.join(", ")
}

/// `14m`, `3h12m`, `2d4h`: to the minute, so a summary changes at most once a minute.
fn age(d: chrono::TimeDelta) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes {
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h{}m", m / 60, m % 60),
        m => format!("{}d{}h", m / (24 * 60), m / 60 % 24),
    }
}

/// What fires now, by key.
#[derive(Default)]
pub(super) struct AlertBook {
    firing: BTreeMap<AlertKey, Alert>,
}

impl AlertBook {
    /// Replaces what fires with `current`; returns what to send: new alerts, changed ones
    /// (keeping first-seen, and last-change unless the severity moved), and those no
    /// longer raised, resolved at `now`. Unchanged alerts are not sent again.
    pub(super) fn settle(&mut self, current: Vec<Alert>, now: Timestamp) -> Vec<Alert> {
        let (send, firing) =
            crate::sources::alert_diff::settle(std::mem::take(&mut self.firing), current, now);
        self.firing = firing;
        send
    }

    /// The keys of everything firing, when the watch ends.
    pub(super) fn keys(&self) -> Vec<AlertKey> {
        self.firing.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_human_wrote_them() {
        assert_eq!(age(chrono::TimeDelta::minutes(14)), "14m");
        assert_eq!(age(chrono::TimeDelta::minutes(192)), "3h12m");
        assert_eq!(age(chrono::TimeDelta::minutes(3 * 24 * 60 + 65)), "3d1h");
    }

    #[test]
    fn summaries_name_three_then_count() {
        let names = ["a", "b", "c", "d", "e"].map(String::from);
        assert_eq!(named(names.into_iter()), "a, b, c, +2 more");
    }
}
