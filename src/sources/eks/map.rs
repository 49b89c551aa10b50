//! Pure conversions from EKS API shapes to the domain model, and the alerts they raise.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_eks::types as eks;

use crate::model::{
    Addon, Alert, AlertKey, AlertSource, AlertState, Cluster, ClusterId, ClusterStatus,
    Deprecation, Described, EksUpdate, Environment, HealthIssue, Insight, InsightDetail,
    InsightStatus, Severity, Support, Timestamp,
};

/// Where AWS explains insights; the insight alerts link to it.
pub(super) const INSIGHTS_DOC: &str =
    "https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html";
/// The environment of a cluster without the environment tag.
pub(super) const UNTAGGED: &str = "untagged";
/// The tag naming the team that owns a cluster.
const TEAM_TAG: &str = "team";

/// An SDK timestamp as a domain one.
pub(super) fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    let t = t?;
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub(super) fn cluster_status(status: Option<&eks::ClusterStatus>) -> ClusterStatus {
    match status {
        Some(eks::ClusterStatus::Active) => ClusterStatus::Active,
        Some(eks::ClusterStatus::Creating) => ClusterStatus::Creating,
        Some(eks::ClusterStatus::Updating) => ClusterStatus::Updating,
        Some(eks::ClusterStatus::Deleting) => ClusterStatus::Deleting,
        Some(eks::ClusterStatus::Failed) => ClusterStatus::Failed,
        Some(eks::ClusterStatus::Pending) => ClusterStatus::Pending,
        // A status added to the API after this SDK was built.
        _ => ClusterStatus::Unknown,
    }
}

/// Whether a version is past standard support and billed as extended support. `status` is
/// the older, deprecated spelling of `versionStatus`; either is believed.
pub(super) fn is_extended(info: &eks::ClusterVersionInformation) -> bool {
    matches!(
        info.version_status,
        Some(eks::VersionStatus::ExtendedSupport)
    ) || matches!(
        info.status,
        Some(eks::ClusterVersionStatus::ExtendedSupport)
    )
}

/// Support status from the cluster's upgrade policy and the region's extended versions
/// (`None` when `DescribeClusterVersions` could not be read). `None` when neither is known.
pub(super) fn support(c: &eks::Cluster, extended: Option<&HashSet<String>>) -> Option<Support> {
    let policy = c
        .upgrade_policy
        .as_ref()
        .and_then(|p| p.support_type.as_ref())
        .map(|t| t.as_str().to_string());
    if policy.is_none() && extended.is_none() {
        return None;
    }
    let in_extended = match (extended, c.version.as_deref()) {
        (Some(set), Some(v)) => set.contains(v),
        _ => false,
    };
    Some(Support {
        policy: policy.unwrap_or_else(|| "UNKNOWN".into()),
        in_extended,
        extra_usd_per_hour: if in_extended {
            Support::EXTENDED_EXTRA_USD_PER_HOUR
        } else {
            0.0
        },
    })
}

/// The cluster as `DescribeCluster` tells it; insights, updates and add-ons are left empty
/// (the detail poll fills them).
pub(super) fn cluster(
    id: ClusterId,
    c: &eks::Cluster,
    environment_tag: &str,
    extended: Option<&HashSet<String>>,
) -> Cluster {
    let tag = |k: &str| c.tags.as_ref().and_then(|t| t.get(k));
    Cluster {
        described: Described::Yes,
        arn: c.arn.clone().unwrap_or_default(),
        version: c.version.clone().unwrap_or_default(),
        platform_version: c.platform_version.clone().unwrap_or_default(),
        status: cluster_status(c.status.as_ref()),
        environment: tag(environment_tag)
            .map(|v| Environment::from_tag(v))
            .unwrap_or_else(|| Environment::Other(UNTAGGED.into())),
        team: tag(TEAM_TAG).cloned(),
        health_issues: c
            .health
            .as_ref()
            .map(|h| h.issues())
            .unwrap_or_default()
            .iter()
            .map(|i| HealthIssue {
                code: i
                    .code
                    .as_ref()
                    .map(|c| c.as_str())
                    .unwrap_or("Unknown")
                    .into(),
                message: i.message.clone().unwrap_or_default(),
            })
            .collect(),
        support: support(c, extended),
        endpoint: c.endpoint.clone(),
        certificate_authority: c
            .certificate_authority
            .as_ref()
            .and_then(|ca| ca.data.clone()),
        id,
        insights: Vec::new(),
        updates: Vec::new(),
        addons: Vec::new(),
    }
}

/// A cluster `ListClusters` names and `DescribeCluster` has not read (yet): shown at once,
/// as `Described::Pending`, with status UNKNOWN and no environment, rather than hidden
/// until described.
pub(super) fn placeholder(id: ClusterId) -> Cluster {
    Cluster {
        id,
        described: Described::Pending,
        arn: String::new(),
        version: String::new(),
        platform_version: String::new(),
        status: ClusterStatus::Unknown,
        // Not "untagged": its tags have not been read.
        environment: Environment::Other(String::new()),
        team: None,
        health_issues: Vec::new(),
        insights: Vec::new(),
        updates: Vec::new(),
        addons: Vec::new(),
        support: None,
        endpoint: None,
        certificate_authority: None,
    }
}

/// The SDK names the model's UNKNOWN `UnknownValue`; `Unknown(_)` is a status added later.
pub(super) fn insight_status(status: Option<&eks::InsightStatusValue>) -> InsightStatus {
    match status {
        Some(eks::InsightStatusValue::Passing) => InsightStatus::Passing,
        Some(eks::InsightStatusValue::Warning) => InsightStatus::Warning,
        Some(eks::InsightStatusValue::Error) => InsightStatus::Error,
        _ => InsightStatus::Unknown,
    }
}

pub(super) fn insight(s: &eks::InsightSummary) -> Insight {
    let status = s.insight_status.as_ref();
    Insight {
        id: s.id.clone().unwrap_or_default(),
        name: s.name.clone().unwrap_or_default(),
        category: s
            .category
            .as_ref()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        status: insight_status(status.and_then(|s| s.status.as_ref())),
        reason: status.and_then(|s| s.reason.clone()).unwrap_or_default(),
        detail: None,
    }
}

pub(super) fn insight_detail(i: &eks::Insight) -> InsightDetail {
    let deprecations = i
        .category_specific_summary
        .as_ref()
        .map(|s| s.deprecation_details())
        .unwrap_or_default()
        .iter()
        .map(|d| Deprecation {
            usage: d.usage.clone().unwrap_or_default(),
            replaced_with: d.replaced_with.clone(),
            stop_serving_version: d.stop_serving_version.clone(),
            clients: d
                .client_stats()
                .iter()
                .map(|c| {
                    (
                        c.user_agent.clone().unwrap_or_default(),
                        i64::from(c.number_of_requests_last30_days),
                        time(c.last_request_time.as_ref()),
                    )
                })
                .collect(),
        })
        .collect();
    InsightDetail {
        description: i.description.clone().unwrap_or_default(),
        recommendation: i.recommendation.clone().unwrap_or_default(),
        deprecations,
    }
}

pub(super) fn addon(a: &eks::Addon) -> Addon {
    Addon {
        name: a.addon_name.clone().unwrap_or_default(),
        version: a.addon_version.clone().unwrap_or_default(),
        status: a
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into()),
    }
}

/// `Version=1.31, PlatformVersion=eks.5`, prefixed by the add-on for add-on updates.
fn update_detail(u: &eks::Update, addon: Option<&str>) -> String {
    let params = u
        .params()
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p.r#type.as_ref().map(|t| t.as_str()).unwrap_or("?"),
                p.value.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    match addon {
        Some(a) if params.is_empty() => a.to_string(),
        Some(a) => format!("{a}: {params}"),
        None => params,
    }
}

pub(super) fn update_status(u: &eks::Update) -> &str {
    u.status.as_ref().map(|s| s.as_str()).unwrap_or("Unknown")
}

pub(super) fn eks_update(u: &eks::Update, addon: Option<&str>, now: Timestamp) -> EksUpdate {
    EksUpdate {
        id: u.id.clone().unwrap_or_default(),
        kind: u
            .r#type
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        status: update_status(u).to_string(),
        started: time(u.created_at.as_ref()).unwrap_or(now),
        detail: update_detail(u, addon),
    }
}

/// The labels every EKS alert carries, as the demo fleet's do.
fn labels(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster.alert_labels()
}

/// A firing alert on `cluster`, first seen at `since`.
#[allow(clippy::too_many_arguments)]
fn alert(
    cluster: &Cluster,
    source: AlertSource,
    name: &str,
    fingerprint: &str,
    severity: Severity,
    summary: String,
    since: Timestamp,
    extra: &[(&str, &str)],
) -> Alert {
    let mut labels = labels(cluster);
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Alert {
        key: AlertKey::new(source, Some(&cluster.id), name, fingerprint),
        source,
        cluster: Some(cluster.id.clone()),
        name: name.into(),
        severity,
        state: AlertState::Firing,
        first_seen: since,
        last_change: since,
        summary,
        labels,
        runbook_url: None,
        ack: None,
    }
}

/// One critical alert per cluster health issue code.
pub(super) fn health_alerts(cluster: &Cluster, now: Timestamp) -> Vec<Alert> {
    let mut by_code: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for issue in &cluster.health_issues {
        by_code
            .entry(&issue.code)
            .or_default()
            .push(issue.message.as_str());
    }
    by_code
        .into_iter()
        .map(|(code, messages)| {
            alert(
                cluster,
                AlertSource::EksHealth,
                "eks-cluster-health",
                code,
                Severity::Critical,
                format!("{code}: {}", messages.join("; ")),
                now,
                &[("issue_code", code)],
            )
        })
        .collect()
}

/// Insights in ERROR (critical) or WARNING (warning), first seen when AWS says the insight
/// last changed status (`since`, by insight id), else `now`.
pub(super) fn insight_alerts(
    cluster: &Cluster,
    since: &HashMap<String, Timestamp>,
    now: Timestamp,
) -> Vec<Alert> {
    cluster
        .insights
        .iter()
        .filter_map(|i| {
            let severity = match i.status {
                InsightStatus::Error => Severity::Critical,
                InsightStatus::Warning => Severity::Warning,
                InsightStatus::Passing | InsightStatus::Unknown => return None,
            };
            let mut a = alert(
                cluster,
                AlertSource::EksInsight,
                &i.name,
                &i.id,
                severity,
                format!("{}: {}", i.status.as_str(), i.reason),
                since.get(&i.id).copied().unwrap_or(now),
                &[
                    ("category", &i.category),
                    ("insight_id", &i.id),
                    ("status", i.status.as_str()),
                ],
            );
            a.runbook_url = Some(INSIGHTS_DOC.into());
            Some(a)
        })
        .collect()
}

/// `code: message; code: message`.
fn issues_text<'a>(issues: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    issues
        .map(|(code, message)| format!("{code}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// DEGRADED is a warning; a failed create, update or delete is critical.
pub(super) fn addon_alert(cluster: &Cluster, a: &eks::Addon, now: Timestamp) -> Option<Alert> {
    let severity = match a.status.as_ref()? {
        eks::AddonStatus::Degraded => Severity::Warning,
        eks::AddonStatus::CreateFailed
        | eks::AddonStatus::UpdateFailed
        | eks::AddonStatus::DeleteFailed => Severity::Critical,
        _ => return None,
    };
    let name = a.addon_name.as_deref().unwrap_or_default();
    let status = a.status.as_ref().map(|s| s.as_str()).unwrap_or_default();
    let issues = a.health.as_ref().map(|h| h.issues()).unwrap_or_default();
    let text = issues_text(issues.iter().map(|i| {
        (
            i.code.as_ref().map(|c| c.as_str()).unwrap_or("Unknown"),
            i.message.as_deref().unwrap_or_default(),
        )
    }));
    let summary = if text.is_empty() {
        format!("{name} is {status}")
    } else {
        format!("{name} is {status}: {text}")
    };
    let first_code = issues
        .first()
        .and_then(|i| i.code.as_ref())
        .map(|c| c.as_str())
        .unwrap_or_default();
    Some(alert(
        cluster,
        AlertSource::EksHealth,
        "eks-addon-degraded",
        name,
        severity,
        summary,
        now,
        &[
            ("addon", name),
            ("status", status),
            ("issue_code", first_code),
        ],
    ))
}

/// DEGRADED, a failed state, or health issues on an otherwise fine node group.
pub(super) fn nodegroup_alert(
    cluster: &Cluster,
    ng: &eks::Nodegroup,
    now: Timestamp,
) -> Option<Alert> {
    let status = ng.status.as_ref().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    let issues = ng.health.as_ref().map(|h| h.issues()).unwrap_or_default();
    let failed = status.ends_with("_FAILED");
    if !failed && status != "DEGRADED" && issues.is_empty() {
        return None;
    }
    let name = ng.nodegroup_name.as_deref().unwrap_or_default();
    let text = issues_text(issues.iter().map(|i| {
        (
            i.code.as_ref().map(|c| c.as_str()).unwrap_or("Unknown"),
            i.message.as_deref().unwrap_or_default(),
        )
    }));
    let summary = if text.is_empty() {
        format!("node group {name} is {status}")
    } else {
        format!("node group {name} is {status}: {text}")
    };
    Some(alert(
        cluster,
        AlertSource::EksHealth,
        "eks-nodegroup-degraded",
        name,
        if failed {
            Severity::Critical
        } else {
            Severity::Warning
        },
        summary,
        now,
        &[("nodegroup", name), ("status", status)],
    ))
}

/// A failed update: critical, first seen when AWS created the update.
pub(super) fn failed_update_alert(
    cluster: &Cluster,
    u: &eks::Update,
    addon: Option<&str>,
    now: Timestamp,
) -> Alert {
    let update = eks_update(u, addon, now);
    let errors = u
        .errors()
        .iter()
        .map(|e| {
            let code = e.error_code.as_ref().map(|c| c.as_str()).unwrap_or("Error");
            format!("{code}: {}", e.error_message.as_deref().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("; ");
    let what = if update.detail.is_empty() {
        update.kind.clone()
    } else {
        format!("{} ({})", update.kind, update.detail)
    };
    let summary = if errors.is_empty() {
        format!("{what} failed")
    } else {
        format!("{what} failed: {errors}")
    };
    let mut extra = vec![
        ("update_id", update.id.as_str()),
        ("update_type", update.kind.as_str()),
    ];
    if let Some(a) = addon {
        extra.push(("addon", a));
    }
    alert(
        cluster,
        AlertSource::EksHealth,
        "eks-update-failed",
        &update.id,
        Severity::Critical,
        summary,
        update.started,
        &extra,
    )
}
