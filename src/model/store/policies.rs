//! Policy failures per cluster, read from Security Hub's alerts and the cluster's
//! PolicyReports together: the fleet's POL column, the `policy:` filter, the snapshot and
//! the guard's `policies_must_pass` all read this one place.

use std::collections::BTreeMap;

use super::Store;
use crate::model::{AlertSource, ClusterId, PolicyFailure};

impl Store {
    /// The policies failing on `cluster`, most severe and most failing first. Security
    /// Hub findings count while firing (NEW or NOTIFIED); PolicyReport results come from
    /// the cluster's reports when its API server is read, else from their alerts (high and
    /// critical only). A policy both report counts once, with the larger count.
    pub fn policy_failures(&self, cluster: &ClusterId) -> Vec<PolicyFailure> {
        let mut by_policy: BTreeMap<String, PolicyFailure> = BTreeMap::new();
        let mut add = |policy: &str, failing: usize, severity, source| {
            by_policy
                .entry(policy.to_string())
                .or_insert_with(|| PolicyFailure {
                    policy: policy.to_string(),
                    failing: 0,
                    severity,
                    sources: Vec::new(),
                })
                .merge(failing, severity, source);
        };
        let reports = self
            .kube_signals(cluster)
            .and_then(|s| s.policy_reports.as_ref());
        for alert in self.alerts_for(cluster) {
            let from_reports = alert.source == AlertSource::PolicyReport;
            if !alert.is_firing()
                || !(alert.source == AlertSource::SecurityHub || from_reports)
                || (from_reports && reports.is_some())
            {
                continue;
            }
            let policy = alert.labels.get("policy").unwrap_or(&alert.name);
            let count = alert
                .labels
                .get("count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            add(policy, count, alert.severity, alert.source.as_str());
        }
        for result in reports.iter().flat_map(|r| &r.failing) {
            if result.is_fail() {
                add(
                    &result.policy,
                    result.count,
                    result.alert_severity(),
                    AlertSource::PolicyReport.as_str(),
                );
            }
        }
        let mut failures: Vec<PolicyFailure> = by_policy.into_values().collect();
        failures.sort_by(|a, b| {
            (a.severity, std::cmp::Reverse(a.failing), &a.policy).cmp(&(
                b.severity,
                std::cmp::Reverse(b.failing),
                &b.policy,
            ))
        });
        failures
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::model::store::{ClusterFilter, SortKey};
    use crate::model::{
        Alert, AlertKey, AlertSource, AlertState, Cluster, ClusterId, ClusterStatus, Connection,
        Described, Environment, KubeSignals, PolicyReports, PolicyResult, Severity, SourceEvent,
        Store, Timestamp,
    };

    fn t() -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid time")
    }

    fn id(name: &str) -> ClusterId {
        ClusterId::new("prod", "us-east-1", name)
    }

    fn cluster(name: &str) -> Cluster {
        Cluster {
            id: id(name),
            arn: format!("arn:aws:eks:us-east-1:111122223333:cluster/{name}"),
            version: "1.31".into(),
            platform_version: "eks.1".into(),
            described: Described::Yes,
            status: ClusterStatus::Active,
            environment: Environment::Prod,
            team: None,
            health_issues: vec![],
            insights: vec![],
            updates: vec![],
            addons: vec![],
            support: None,
            endpoint: None,
            certificate_authority: None,
        }
    }

    fn finding(cluster: &str, policy: &str, count: usize, severity: Severity) -> Alert {
        Alert {
            key: AlertKey::new(AlertSource::SecurityHub, Some(&id(cluster)), policy, policy),
            source: AlertSource::SecurityHub,
            cluster: Some(id(cluster)),
            name: policy.into(),
            severity,
            state: AlertState::Firing,
            first_seen: t(),
            last_change: t(),
            summary: String::new(),
            labels: BTreeMap::from([
                ("policy".to_string(), policy.to_string()),
                ("count".to_string(), count.to_string()),
            ]),
            runbook_url: None,
            ack: None,
        }
    }

    fn reports(failing: Vec<(&str, usize, &str)>) -> KubeSignals {
        KubeSignals {
            connection: Connection::Connected,
            nodes_total: 3,
            not_ready_nodes: vec![],
            crashing_pods: vec![],
            warning_events: vec![],
            blocking_pdbs: vec![],
            single_replica: vec![],
            policy_reports: Some(PolicyReports {
                reports: failing.len(),
                summary: Default::default(),
                failing: failing
                    .into_iter()
                    .map(|(policy, count, severity)| PolicyResult {
                        policy: policy.into(),
                        rule: "r".into(),
                        result: "fail".into(),
                        severity: Some(severity.into()),
                        message: String::new(),
                        count,
                        resources: vec![],
                    })
                    .collect(),
            }),
            updated: t(),
        }
    }

    /// Resources failing a policy on `cluster`, as the POL column sums them.
    fn failing_count(s: &Store, cluster: &ClusterId) -> usize {
        s.policy_failures(cluster).iter().map(|f| f.failing).sum()
    }

    fn store() -> Store {
        let mut s = Store::new();
        s.apply(
            SourceEvent::ClusterInventory {
                source: "eks:prod/us-east-1".into(),
                clusters: vec![cluster("api"), cluster("web"), cluster("db")],
            },
            t(),
        );
        s.apply(
            SourceEvent::Alerts(vec![
                finding("api", "pdb-maxunavailable", 1, Severity::Critical),
                finding("api", "require-run-as-nonroot", 300, Severity::Warning),
                finding("web", "check-deprecated-apis", 3, Severity::Warning),
            ]),
            t(),
        );
        // api's reports say the PDB policy too (Policy Reporter sent them to Security
        // Hub), and one more only they know.
        s.apply(
            SourceEvent::KubeSignals {
                cluster: id("api"),
                signals: Box::new(reports(vec![
                    ("pdb-maxunavailable", 1, "high"),
                    ("disallow-latest-tag", 2, "medium"),
                ])),
            },
            t(),
        );
        s
    }

    #[test]
    fn security_hub_and_policy_reports_count_once_per_policy() {
        let s = store();
        let failures = s.policy_failures(&id("api"));
        let read: Vec<(&str, usize, Severity, Vec<&str>)> = failures
            .iter()
            .map(|f| (f.policy.as_str(), f.failing, f.severity, f.sources.clone()))
            .collect();
        assert_eq!(
            read,
            [
                (
                    "pdb-maxunavailable",
                    1,
                    Severity::Critical,
                    vec!["policyreport", "securityhub"]
                ),
                (
                    "require-run-as-nonroot",
                    300,
                    Severity::Warning,
                    vec!["securityhub"]
                ),
                (
                    "disallow-latest-tag",
                    2,
                    Severity::Warning,
                    vec!["policyreport"]
                ),
            ]
        );
        assert_eq!(failing_count(&s, &id("api")), 303, "the PDB counted once");
        assert_eq!(failing_count(&s, &id("web")), 3);
        assert_eq!(failing_count(&s, &id("db")), 0);
    }

    #[test]
    fn a_resolved_finding_no_longer_fails() {
        let mut s = store();
        let mut gone = finding("web", "check-deprecated-apis", 3, Severity::Warning);
        gone.state = AlertState::Resolved;
        s.apply(SourceEvent::Alerts(vec![gone]), t());
        assert_eq!(failing_count(&s, &id("web")), 0);
    }

    #[test]
    fn the_policy_filter_finds_the_clusters_failing_a_policy() {
        let s = store();
        let names = |text: &str| -> Vec<String> {
            s.cluster_rows(&ClusterFilter::parse(text), SortKey::Name, false)
                .into_iter()
                .map(|i| s.clusters()[i].id.name.clone())
                .collect()
        };
        assert_eq!(names("policy:deprecated"), ["web"]);
        assert_eq!(names("policy:PDB-max"), ["api"], "any case, substring");
        assert_eq!(names("policy:latest-tag"), ["api"], "PolicyReports too");
        assert_eq!(names("policy:"), ["api", "web"], "any failing policy");
        assert!(names("policy:nothing-fails-this").is_empty());
    }
}
