//! Policy findings: what policy engines (Kyverno, OPA Gatekeeper...) say about a cluster,
//! from its PolicyReports and from AWS Security Hub, and how the two are read together.

use serde::{Deserialize, Serialize};

use super::Severity;

/// Results of one cluster's PolicyReports (`wgpolicyk8s.io/v1alpha2` PolicyReport and
/// ClusterPolicyReport, `openreports.io/v1alpha1` Report and ClusterReport), summed over
/// every report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReports {
    /// How many report objects were read.
    pub reports: usize,
    pub summary: PolicyCounts,
    /// Results that are not `pass` or `skip` (fail, warn, error), grouped by policy and
    /// rule, most severe first.
    pub failing: Vec<PolicyResult>,
}

/// A report's `summary`: results by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyCounts {
    pub pass: u64,
    pub fail: u64,
    pub warn: u64,
    pub error: u64,
    pub skip: u64,
}

impl PolicyCounts {
    pub fn add(&mut self, other: &PolicyCounts) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.warn += other.warn;
        self.error += other.error;
        self.skip += other.skip;
    }
}

/// The results of one policy rule with one outcome, over every resource it was checked on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub policy: String,
    pub rule: String,
    /// `fail`, `warn` or `error`.
    pub result: String,
    /// The result's own severity as written (`critical`, `high`, `medium`, `low`,
    /// `info`), if it has one.
    pub severity: Option<String>,
    /// The first result's message.
    pub message: String,
    /// How many results (one per resource).
    pub count: usize,
    /// `Kind namespace/name` of the first resources (at most [`RESOURCES_LISTED`]).
    pub resources: Vec<String>,
}

/// Resources listed per result group: the count says how many there are.
pub const RESOURCES_LISTED: usize = 20;

impl PolicyResult {
    /// Whether the result is a failure of the policy (not a warning or an engine error).
    pub fn is_fail(&self) -> bool {
        self.result == "fail"
    }

    /// Its severity as a rank, most severe first: critical, high, medium, low, info, none.
    pub fn severity_rank(&self) -> u8 {
        match self
            .severity
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("critical") => 0,
            Some("high") => 1,
            Some("medium") => 2,
            Some("low") => 3,
            Some("info" | "informational") => 4,
            _ => 5,
        }
    }

    /// The alert severity of this result: critical and high are critical, medium a
    /// warning, anything else info.
    pub fn alert_severity(&self) -> Severity {
        severity_of(self.severity.as_deref().unwrap_or(""))
    }
}

/// Labels naming what a policy alert's resources (`Kind namespace/name`) have in common,
/// for runbook steps: `namespace` when they share one, and `kind` and `name` too when there
/// is only one resource.
pub fn resource_labels<'a>(resources: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut parsed = resources.into_iter().filter(|r| !r.is_empty()).map(|r| {
        let (kind, object) = r.split_once(' ').unwrap_or(("", r));
        let (namespace, name) = object.split_once('/').unwrap_or(("", object));
        (kind, namespace, name)
    });
    let Some(first) = parsed.next() else {
        return Vec::new();
    };
    let mut one = true;
    let mut same_namespace = true;
    for other in parsed {
        one &= other == first;
        same_namespace &= other.1 == first.1;
    }
    let mut labels = Vec::new();
    if same_namespace && !first.1.is_empty() {
        labels.push(("namespace".to_string(), first.1.to_string()));
    }
    if one {
        if !first.0.is_empty() {
            labels.push(("kind".to_string(), first.0.to_string()));
        }
        labels.push(("name".to_string(), first.2.to_string()));
    }
    labels
}

/// A policy engine's severity word (`critical`, `HIGH`, `Medium`, `informational`...) as an
/// alert severity: CRITICAL and HIGH are critical, MEDIUM a warning, the rest info.
pub fn severity_of(word: &str) -> Severity {
    match word.to_ascii_lowercase().as_str() {
        "critical" | "high" => Severity::Critical,
        "medium" => Severity::Warning,
        _ => Severity::Info,
    }
}

/// One policy failing on a cluster, as the fleet, the filter, the snapshot and the guard
/// read it: Security Hub findings and PolicyReport results together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyFailure {
    pub policy: String,
    /// Resources failing it. When both Security Hub and the PolicyReports report the
    /// policy (Policy Reporter sends the reports to Security Hub), the larger count is
    /// taken rather than the sum, so one failure is not counted twice.
    pub failing: usize,
    pub severity: Severity,
    /// `securityhub`, `policyreport`, or both.
    pub sources: Vec<&'static str>,
}

impl PolicyFailure {
    /// Folds `failing` resources of `severity` from `source` into this policy's failure.
    pub fn merge(&mut self, failing: usize, severity: Severity, source: &'static str) {
        if self.sources.contains(&source) {
            self.failing += failing;
        } else {
            self.failing = self.failing.max(failing);
            self.sources.push(source);
            self.sources.sort_unstable();
        }
        self.severity = self.severity.min(severity);
    }
}

impl PolicyReports {
    /// The alerts these reports raise on `cluster`: one per policy whose `fail` results
    /// include high or critical ones (critical severity), counting the resources failing
    /// it, so a policy failing on 300 pods is one alert. `first_seen` is `now`; a source
    /// keeps the first time across readings (`alert_diff`).
    pub fn alerts(&self, cluster: &super::ClusterId, now: super::Timestamp) -> Vec<super::Alert> {
        use std::collections::BTreeMap;

        use super::{Alert, AlertKey, AlertSource, AlertState};
        let mut by_policy: BTreeMap<&str, Vec<&PolicyResult>> = BTreeMap::new();
        for result in self
            .failing
            .iter()
            .filter(|r| r.is_fail() && r.alert_severity() == Severity::Critical)
        {
            by_policy.entry(&result.policy).or_default().push(result);
        }
        by_policy
            .into_iter()
            .map(|(policy, results)| {
                let count: usize = results.iter().map(|r| r.count).sum();
                let rules: Vec<&str> = results.iter().map(|r| r.rule.as_str()).collect();
                let mut resources: Vec<&str> = results
                    .iter()
                    .flat_map(|r| &r.resources)
                    .map(String::as_str)
                    .collect();
                resources.sort_unstable();
                resources.dedup();
                let first = results[0];
                let named = resources
                    .iter()
                    .take(3)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = count.saturating_sub(resources.len().min(3));
                let noun = if count == 1 { "resource" } else { "resources" };
                let mut summary = format!("{policy} fails on {count} {noun}");
                if !named.is_empty() {
                    summary.push_str(&format!(": {named}"));
                    if more > 0 {
                        summary.push_str(&format!(" +{more} more"));
                    }
                }
                if !first.message.is_empty() {
                    summary.push_str(&format!(" ({})", first.message));
                }
                let mut labels = BTreeMap::from([
                    ("account".to_string(), cluster.account.clone()),
                    ("region".to_string(), cluster.region.clone()),
                    ("cluster".to_string(), cluster.name.clone()),
                    ("policy".to_string(), policy.to_string()),
                    ("rule".to_string(), rules.join(",")),
                    ("count".to_string(), count.to_string()),
                    (
                        "policy_severity".to_string(),
                        first.severity.clone().unwrap_or_default(),
                    ),
                ]);
                // Only when every resource is listed: a namespace seen in the first few
                // need not be every resource's.
                if resources.len() == count {
                    labels.extend(resource_labels(resources.iter().copied()));
                }
                Alert {
                    key: AlertKey::new(AlertSource::PolicyReport, Some(cluster), policy, policy),
                    source: AlertSource::PolicyReport,
                    cluster: Some(cluster.clone()),
                    name: policy.to_string(),
                    severity: Severity::Critical,
                    state: AlertState::Firing,
                    first_seen: now,
                    last_change: now,
                    summary,
                    labels,
                    runbook_url: None,
                    ack: None,
                }
            })
            .collect()
    }
}
