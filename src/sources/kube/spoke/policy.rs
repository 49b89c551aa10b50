//! PolicyReports, reduced as they arrive: `wgpolicyk8s.io/v1alpha2` PolicyReport and
//! ClusterPolicyReport (what Kyverno and the Gatekeeper adapter write) and, where served,
//! `openreports.io/v1alpha1` Report and ClusterReport (their successor, same shape).
//!
//! Each report object keeps its summary counts and its failing results only (fail, warn,
//! error: a report of passes costs a few numbers). The picture sums the counts and groups
//! the failing results by policy, rule and outcome, with the resources they are about.
//! Failing results of high or critical severity become alerts (`alerts.rs`).

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

use crate::model::{PolicyCounts, PolicyReports, PolicyResult, RESOURCES_LISTED};

/// The report resources read, each with the watch kind its problems are reported under.
pub(super) fn resources() -> [(ApiResource, super::Kind); 4] {
    let resource = |group: &str, version: &str, kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    };
    use super::Kind;
    [
        (
            resource(
                "wgpolicyk8s.io",
                "v1alpha2",
                "PolicyReport",
                "policyreports",
            ),
            Kind::PolicyReports,
        ),
        (
            resource(
                "wgpolicyk8s.io",
                "v1alpha2",
                "ClusterPolicyReport",
                "clusterpolicyreports",
            ),
            Kind::ClusterPolicyReports,
        ),
        (
            resource("openreports.io", "v1alpha1", "Report", "reports"),
            Kind::Reports,
        ),
        (
            resource(
                "openreports.io",
                "v1alpha1",
                "ClusterReport",
                "clusterreports",
            ),
            Kind::ClusterReports,
        ),
    ]
}

/// One report object, reduced.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ReportSummary {
    pub counts: PolicyCounts,
    pub failing: Vec<FailingResult>,
}

/// One result that is not a pass or a skip, on one resource.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FailingResult {
    pub policy: String,
    pub rule: String,
    pub result: String,
    pub severity: Option<String>,
    pub message: String,
    /// `Kind namespace/name`, or empty when the result names no resource.
    pub resource: String,
}

/// Reduces one report object. Every report is kept (even one of passes only), so the
/// summary counts every report read.
pub(super) fn summarize(report: &DynamicObject) -> Option<ReportSummary> {
    let data = &report.data;
    let scope = data.get("scope").map(resource_name);
    let mut out = ReportSummary::default();
    let results = data
        .get("results")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for result in results {
        let text = |key: &str| {
            result
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let outcome = text("result").to_ascii_lowercase();
        if matches!(outcome.as_str(), "pass" | "skip" | "") {
            continue;
        }
        // Older reports list resources per result; newer ones (one report per resource)
        // name it in `scope`; openreports calls them `subjects`.
        let mut named: Vec<String> = ["resources", "subjects"]
            .iter()
            .filter_map(|k| result.get(*k).and_then(Value::as_array))
            .flatten()
            .map(resource_name)
            .collect();
        if named.is_empty() {
            named.push(scope.clone().unwrap_or_default());
        }
        let severity = Some(text("severity")).filter(|s| !s.is_empty());
        for resource in named {
            out.failing.push(FailingResult {
                policy: text("policy"),
                rule: text("rule"),
                result: outcome.clone(),
                severity: severity.clone(),
                message: text("message"),
                resource,
            });
        }
    }
    out.counts = match data.get("summary") {
        Some(summary) => {
            let n = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
            PolicyCounts {
                pass: n("pass"),
                fail: n("fail"),
                warn: n("warn"),
                error: n("error"),
                skip: n("skip"),
            }
        }
        None => counted(results),
    };
    Some(out)
}

/// Counts by outcome from the results, for a report without a `summary`.
fn counted(results: &[Value]) -> PolicyCounts {
    let mut counts = PolicyCounts::default();
    for result in results {
        match result.get("result").and_then(Value::as_str) {
            Some("pass") => counts.pass += 1,
            Some("fail") => counts.fail += 1,
            Some("warn") => counts.warn += 1,
            Some("error") => counts.error += 1,
            Some("skip") => counts.skip += 1,
            _ => {}
        }
    }
    counts
}

/// `Kind namespace/name` of an object reference (`Pod default/web-0`, `Namespace prod`).
fn resource_name(reference: &Value) -> String {
    let text = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("");
    let (kind, namespace, name) = (text("kind"), text("namespace"), text("name"));
    let object = if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    match (kind.is_empty(), object.is_empty()) {
        (_, true) => String::new(),
        (true, false) => object,
        (false, false) => format!("{kind} {object}"),
    }
}

/// The cluster's picture from every report read: counts summed, failing results grouped
/// by policy, rule and outcome, most severe and most frequent first.
pub(super) fn picture<'a>(reports: impl Iterator<Item = &'a ReportSummary>) -> PolicyReports {
    let mut out = PolicyReports::default();
    let mut groups: BTreeMap<(String, String, String), PolicyResult> = BTreeMap::new();
    // The alphabetically first resources of each group, so the picture is the same
    // whatever order the reports are held in.
    let mut listed: BTreeMap<(String, String, String), std::collections::BTreeSet<String>> =
        BTreeMap::new();
    for report in reports {
        out.reports += 1;
        out.summary.add(&report.counts);
        for f in &report.failing {
            let key = (f.policy.clone(), f.rule.clone(), f.result.clone());
            if !f.resource.is_empty() {
                let names = listed.entry(key.clone()).or_default();
                names.insert(f.resource.clone());
                if names.len() > RESOURCES_LISTED {
                    names.pop_last();
                }
            }
            let group = groups.entry(key).or_insert_with(|| PolicyResult {
                policy: f.policy.clone(),
                rule: f.rule.clone(),
                result: f.result.clone(),
                severity: f.severity.clone(),
                message: f.message.clone(),
                count: 0,
                resources: Vec::new(),
            });
            group.count += 1;
            if group.severity.is_none() {
                group.severity = f.severity.clone();
            }
        }
    }
    for (key, names) in listed {
        if let Some(group) = groups.get_mut(&key) {
            group.resources = names.into_iter().collect();
        }
    }
    let mut failing: Vec<PolicyResult> = groups.into_values().collect();
    failing.sort_by(|a, b| {
        (
            a.severity_rank(),
            !a.is_fail(),
            std::cmp::Reverse(a.count),
            &a.policy,
        )
            .cmp(&(
                b.severity_rank(),
                !b.is_fail(),
                std::cmp::Reverse(b.count),
                &b.policy,
            ))
    });
    out.failing = failing;
    out
}
