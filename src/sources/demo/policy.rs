//! The demo's policy findings, as Security Hub and the clusters' PolicyReports would hold
//! them: a PodDisruptionBudget that allows no disruption on a staging cluster whose turn
//! is still to come (`pdb-maxunavailable`, which the demo rollout's plan requires to
//! pass, so the guard holds staging until the team fixes it some minutes in), deprecated
//! APIs still served on a prod-2 cluster, a run-as-non-root policy failing on 312 pods of
//! a dev cluster (one alert with a count), and privileged containers on a sandbox
//! cluster, which its PolicyReport reports with high severity.

use std::collections::BTreeMap;

use super::fleet::PROD2;
use super::hash::{between, hash, tag};
use super::{DemoFleet, Outbox};
use crate::model::{
    Ack, AckKind, Alert, AlertKey, AlertSource, AlertState, Cluster, ClusterId, PolicyCounts,
    PolicyReports, PolicyResult, SourceEvent, Timestamp,
};
use crate::sources::WriteResult;

/// The policies the demo rollout's plan requires to pass (`policies_must_pass`).
pub(super) const MUST_PASS: [&str; 1] = ["pdb-maxunavailable"];
/// Simulated minutes after the start when the staging PDB is fixed.
const FIXED_AFTER_MINUTES: i64 = 12;

/// Every policy finding of the demo fleet.
#[derive(Default)]
pub(super) struct DemoPolicies {
    /// Security Hub finding groups, as the real source's alerts.
    pub findings: Vec<Alert>,
    /// PolicyReports by cluster index.
    pub reports: BTreeMap<usize, PolicyReports>,
    /// The staging finding and the minute (since the epoch) it is fixed.
    pub fix: Option<(usize, i64)>,
}

/// One finding group on `cluster`.
fn finding(
    cluster: &Cluster,
    policy: &str,
    title: &str,
    severity_label: &str,
    resources: &[String],
    count: usize,
    since: Timestamp,
) -> Alert {
    let shown = resources
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = count.saturating_sub(3);
    let summary = if more > 0 {
        format!("{title} on {count} resources: {shown} +{more} more")
    } else {
        format!(
            "{title} on {count} resource{}: {shown}",
            if count == 1 { "" } else { "s" }
        )
    };
    let mut labels = BTreeMap::from([
        ("account".to_string(), cluster.id.account.clone()),
        ("region".to_string(), cluster.id.region.clone()),
        ("cluster".to_string(), cluster.id.name.clone()),
        ("policy".to_string(), policy.to_string()),
        ("rule".to_string(), policy.to_string()),
        ("count".to_string(), count.to_string()),
        ("product".to_string(), "Kyverno".to_string()),
        ("severity_label".to_string(), severity_label.to_string()),
        ("workflow".to_string(), "NEW".to_string()),
    ]);
    labels.extend(crate::model::resource_labels(
        resources.iter().map(String::as_str),
    ));
    Alert {
        key: AlertKey::new(AlertSource::SecurityHub, Some(&cluster.id), policy, policy),
        source: AlertSource::SecurityHub,
        cluster: Some(cluster.id.clone()),
        name: policy.to_string(),
        severity: crate::model::severity_of(severity_label),
        state: AlertState::Firing,
        first_seen: since,
        last_change: since,
        summary,
        labels,
        runbook_url: None,
        ack: None,
    }
}

/// A PolicyReport picture: `pass` passes and the failing results given.
fn reports(pass: u64, failing: Vec<PolicyResult>) -> PolicyReports {
    let mut summary = PolicyCounts {
        pass,
        ..PolicyCounts::default()
    };
    for r in &failing {
        match r.result.as_str() {
            "fail" => summary.fail += r.count as u64,
            "warn" => summary.warn += r.count as u64,
            _ => summary.error += r.count as u64,
        }
    }
    PolicyReports {
        reports: (pass as usize / 4).max(1),
        summary,
        failing,
    }
}

fn result(
    policy: &str,
    rule: &str,
    severity: &str,
    message: &str,
    resources: Vec<String>,
) -> PolicyResult {
    PolicyResult {
        policy: policy.into(),
        rule: rule.into(),
        result: "fail".into(),
        severity: Some(severity.into()),
        message: message.into(),
        count: resources.len(),
        resources,
    }
}

impl DemoPolicies {
    /// The findings as they stand at `start`, on `clusters` placed in `waves`;
    /// `held` is the staging cluster whose cell has not started.
    pub(super) fn new(
        seed: u64,
        clusters: &[Cluster],
        waves: &[Vec<usize>],
        held: Option<usize>,
        start: Timestamp,
    ) -> Self {
        let mut out = Self::default();
        let ago = |m: i64| start - chrono::TimeDelta::minutes(m);
        let pick = |k: i64, list: &[usize]| {
            (!list.is_empty())
                .then(|| list[(hash(seed, &[tag::PICK, 40 + k]) % list.len() as u64) as usize])
        };
        // Every cluster reads some passes.
        for c in 0..clusters.len() {
            let pass = between(hash(seed, &[tag::PICK, 60, c as i64]), 40, 220) as u64;
            out.reports.insert(c, reports(pass, Vec::new()));
        }
        if let Some(c) = held {
            let pdb = vec!["PodDisruptionBudget payments/api".to_string()];
            out.findings.push(finding(
                &clusters[c],
                "pdb-maxunavailable",
                "PodDisruptionBudget maxUnavailable Non-Zero",
                "HIGH",
                &pdb,
                1,
                ago(35),
            ));
            if let Some(r) = out.reports.get_mut(&c) {
                *r = reports(
                    r.summary.pass,
                    vec![result(
                        "pdb-maxunavailable",
                        "pdb-maxunavailable",
                        "high",
                        "validation error: PodDisruptionBudget maxUnavailable must be greater than 0",
                        pdb,
                    )],
                );
            }
            out.fix = Some((c, start.timestamp().div_euclid(60) + FIXED_AFTER_MINUTES));
        }
        if let Some(c) = pick(1, waves.get(PROD2).map_or(&[][..], Vec::as_slice)) {
            let apis: Vec<String> = [
                "CronJob reports/nightly-export",
                "HorizontalPodAutoscaler checkout/web",
                "PodSecurityPolicy restricted",
            ]
            .map(String::from)
            .to_vec();
            out.findings.push(finding(
                &clusters[c],
                "check-deprecated-apis",
                "Deprecated API versions still in use",
                "MEDIUM",
                &apis,
                apis.len(),
                ago(190),
            ));
        }
        if let Some(c) = pick(2, waves.get(1).map_or(&[][..], Vec::as_slice)) {
            let pods: Vec<String> = (0..312)
                .map(|i| {
                    format!(
                        "Pod batch/worker-{:05x}",
                        hash(seed, &[tag::PICK, 70, i]) & 0xfffff
                    )
                })
                .collect();
            out.findings.push(finding(
                &clusters[c],
                "require-run-as-nonroot",
                "Containers must run as non-root",
                "MEDIUM",
                &pods,
                pods.len(),
                ago(600),
            ));
        }
        if let Some(c) = pick(3, waves.first().map_or(&[][..], Vec::as_slice))
            && let Some(r) = out.reports.get_mut(&c)
        {
            *r = reports(
                r.summary.pass,
                vec![result(
                    "disallow-privileged-containers",
                    "privileged-containers",
                    "high",
                    "validation error: Privileged mode is disallowed",
                    vec![
                        "Pod observability/node-exporter-2x7lq".into(),
                        "Pod observability/node-exporter-9kf3d".into(),
                    ],
                )],
            );
        }
        out
    }

    /// Every alert: the Security Hub findings and the PolicyReports' high and critical
    /// failures, as the spokes raise them.
    pub(super) fn alerts(&self, clusters: &[Cluster], now: Timestamp) -> Vec<Alert> {
        let mut alerts = self.findings.clone();
        for (&c, report) in &self.reports {
            alerts.extend(report.alerts(&clusters[c].id, now));
        }
        alerts
    }

    /// Policies failing on each cluster, for the demo's guard: (cluster, policy).
    pub(super) fn failing(&self, clusters: &[Cluster]) -> Vec<(ClusterId, String)> {
        let mut out: Vec<(ClusterId, String)> = self
            .findings
            .iter()
            .filter_map(|a| Some((a.cluster.clone()?, a.name.clone())))
            .collect();
        for (&c, report) in &self.reports {
            out.extend(
                report
                    .failing
                    .iter()
                    .filter(|r| r.is_fail())
                    .map(|r| (clusters[c].id.clone(), r.policy.clone())),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

impl DemoFleet {
    /// The team fixes the staging PDB at its minute: the finding resolves, the report
    /// passes, and the guard runs again (it releases the wave).
    pub(super) fn fix_policies(&mut self, minute: i64, at: Timestamp, out: &mut Outbox) {
        let Some((c, when)) = self.policies.fix else {
            return;
        };
        if minute < when {
            return;
        }
        self.policies.fix = None;
        let id = self.clusters[c].id.clone();
        let policies = &mut self.policies;
        let mut resolved: Vec<Alert> = Vec::new();
        policies.findings.retain(|a| {
            let gone = a.cluster.as_ref() == Some(&id) && a.name == "pdb-maxunavailable";
            if gone {
                resolved.push(crate::sources::alert_diff::resolved(a.clone(), at));
            }
            !gone
        });
        if let Some(report) = policies.reports.get_mut(&c) {
            resolved.extend(
                report
                    .alerts(&id, at)
                    .into_iter()
                    .map(|a| crate::sources::alert_diff::resolved(a, at)),
            );
            report.summary.pass += report.summary.fail;
            report.summary.fail = 0;
            report.failing.clear();
        }
        out.alerts.extend(resolved);
        self.guard_pass(at, out);
    }

    /// Sets a demo finding's workflow status, as Security Hub would: NOTIFIED is an ack
    /// every console sees.
    pub(crate) fn update_findings(
        &mut self,
        key: &AlertKey,
        notified: bool,
        by: &str,
        note: &str,
    ) -> (WriteResult, Vec<SourceEvent>) {
        let Some(alert) = self.policies.findings.iter_mut().find(|a| &a.key == key) else {
            return (
                Err(format!(
                    "the demo's Security Hub holds no findings for {key}"
                )),
                Vec::new(),
            );
        };
        let count: usize = alert
            .labels
            .get("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let word = if notified { "NOTIFIED" } else { "NEW" };
        alert.labels.insert("workflow".into(), word.into());
        alert.ack = notified.then(|| Ack {
            by: by.to_string(),
            until: None,
            comment: format!("acknowledged by {by} in fleetdeck: {note}"),
            kind: AckKind::Notified { findings: count },
        });
        (
            Ok(format!(
                "{count} Security Hub finding{} set to {word} (demo)",
                if count == 1 { "" } else { "s" }
            )),
            vec![SourceEvent::Alerts(vec![alert.clone()])],
        )
    }

    /// The policy picture of cluster `c`, for its PolicyReports as the spoke reads them.
    pub(super) fn policy_reports(&self, c: usize) -> Option<PolicyReports> {
        self.policies.reports.get(&c).cloned()
    }
}
