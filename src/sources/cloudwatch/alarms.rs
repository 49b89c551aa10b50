//! CloudWatch alarms as fleetdeck alerts: which cluster an alarm is about, how urgent it
//! is, where its runbook is, and what changed since the last poll. Pure: no I/O here.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_cloudwatch::types::{CompositeAlarm, Dimension, Metric, MetricAlarm, StateValue};
use chrono::TimeDelta;

use crate::config::Cloudwatch;
use crate::model::{Alert, AlertKey, AlertSource, AlertState, ClusterId, Severity, Timestamp};

/// The metric dimension the EKS control plane and Container Insights name a cluster by.
pub(super) const CLUSTER_DIMENSION: &str = "ClusterName";
/// The alarm tag holding a link to its runbook.
const RUNBOOK_TAG: &str = "runbook_url";
/// Tags rarely change; reading them once an hour keeps thousands of alarms from eating
/// the account's request budget every minute.
pub(super) const TAG_REFRESH: TimeDelta = TimeDelta::hours(1);
/// A failed tag lookup is tried again after this long rather than on every poll.
pub(super) const TAG_RETRY: TimeDelta = TimeDelta::minutes(10);
/// Tag lookups per poll, so the first poll of a large account (one call per alarm) cannot
/// hold up the alarms themselves for minutes; the rest follow in later polls. 100 a poll
/// also keeps up with the hourly refresh of up to 6,000 alarms.
pub(super) const TAG_LOOKUPS_PER_POLL: usize = 100;

/// Which of the two alarm kinds fleetdeck lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AlarmKind {
    Metric,
    Composite,
}

impl AlarmKind {
    /// The name CloudWatch uses (`AlarmTypes`), shown as the `alarm_type` label.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Metric => "MetricAlarm",
            Self::Composite => "CompositeAlarm",
        }
    }
}

/// One alarm of either kind, reduced to what an alert needs.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AlarmRecord {
    pub name: String,
    pub arn: String,
    pub kind: AlarmKind,
    pub description: Option<String>,
    pub state: AlertState,
    pub reason: String,
    pub updated: Option<Timestamp>,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// The cluster named by a `ClusterName` dimension, if the alarm's metric has one.
    pub cluster_dimension: Option<String>,
}

impl AlarmRecord {
    /// A metric alarm: single-metric ones name their metric at the top level, metric-math
    /// ones inside `Metrics[].MetricStat.Metric`. `None` for an alarm without a name.
    pub(super) fn from_metric(alarm: &MetricAlarm) -> Option<Self> {
        let name = alarm.alarm_name()?.to_string();
        let stats: Vec<&Metric> = alarm
            .metrics()
            .iter()
            .filter_map(|q| q.metric_stat()?.metric())
            .collect();
        let cluster_dimension = cluster_in(alarm.namespace(), alarm.dimensions()).or_else(|| {
            stats
                .iter()
                .find_map(|m| cluster_in(m.namespace(), m.dimensions()))
        });
        let first = stats.first();
        Some(Self {
            arn: alarm.alarm_arn().unwrap_or(&name).to_string(),
            kind: AlarmKind::Metric,
            description: alarm.alarm_description().map(str::to_string),
            state: alert_state(alarm.state_value()),
            reason: alarm.state_reason().unwrap_or_default().to_string(),
            updated: alarm.state_updated_timestamp().and_then(to_timestamp),
            namespace: alarm
                .namespace()
                .or_else(|| first.and_then(|m| m.namespace()))
                .map(str::to_string),
            metric_name: alarm
                .metric_name()
                .or_else(|| first.and_then(|m| m.metric_name()))
                .map(str::to_string),
            cluster_dimension,
            name,
        })
    }

    /// A composite alarm: it has no metric, so only a tag can tie it to a cluster.
    pub(super) fn from_composite(alarm: &CompositeAlarm) -> Option<Self> {
        let name = alarm.alarm_name()?.to_string();
        Some(Self {
            arn: alarm.alarm_arn().unwrap_or(&name).to_string(),
            kind: AlarmKind::Composite,
            description: alarm.alarm_description().map(str::to_string),
            state: alert_state(alarm.state_value()),
            reason: alarm.state_reason().unwrap_or_default().to_string(),
            updated: alarm.state_updated_timestamp().and_then(to_timestamp),
            namespace: None,
            metric_name: None,
            cluster_dimension: None,
            name,
        })
    }

    /// The alert for this alarm, given its tags (empty when not read yet).
    pub(super) fn to_alert(
        &self,
        tags: &HashMap<String, String>,
        settings: &Cloudwatch,
        account: &str,
        region: &str,
        now: Timestamp,
    ) -> Alert {
        let cluster = self
            .cluster_dimension
            .as_deref()
            .or_else(|| {
                tags.get(&settings.cluster_tag)
                    .and_then(|v| cluster_from_tag(v))
            })
            .map(|name| ClusterId::new(account, region, name));
        let severity = tags
            .get(&settings.severity_tag)
            .and_then(|v| parse_severity(v))
            .unwrap_or(Severity::Warning);
        let runbook_url = tags
            .get(RUNBOOK_TAG)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| self.description.as_deref().and_then(url_in));
        let mut labels = BTreeMap::from([
            ("alarm_name".to_string(), self.name.clone()),
            ("alarm_arn".to_string(), self.arn.clone()),
            ("alarm_type".to_string(), self.kind.as_str().to_string()),
        ]);
        if let Some(ns) = &self.namespace {
            labels.insert("namespace".into(), ns.clone());
        }
        if let Some(metric) = &self.metric_name {
            labels.insert("metric_name".into(), metric.clone());
        }
        // CloudWatch only says when the state last changed; that is also the best
        // "first seen" it offers.
        let changed = self.updated.unwrap_or(now);
        Alert {
            key: AlertKey::new(
                AlertSource::Cloudwatch,
                cluster.as_ref(),
                &self.name,
                &self.arn,
            ),
            source: AlertSource::Cloudwatch,
            cluster,
            name: self.name.clone(),
            severity,
            state: self.state,
            first_seen: changed,
            last_change: changed,
            summary: self.reason.clone(),
            labels,
            runbook_url,
            ack: None,
        }
    }
}

/// The `ClusterName` dimension's value. ECS also names its clusters `ClusterName`
/// (`AWS/ECS`, `ECS/ContainerInsights`); tying those to an EKS cluster of the same name
/// would trip that cluster's circuit breaker, so they are left to the tag.
fn cluster_in(namespace: Option<&str>, dimensions: &[Dimension]) -> Option<String> {
    if namespace.is_some_and(|ns| ns.starts_with("AWS/ECS") || ns.starts_with("ECS/")) {
        return None;
    }
    dimensions
        .iter()
        .find(|d| d.name() == Some(CLUSTER_DIMENSION))
        .and_then(Dimension::value)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A cluster tag's value: the name, or an EKS cluster ARN (`...:cluster/<name>`).
fn cluster_from_tag(value: &str) -> Option<&str> {
    let value = value.trim();
    let name = match value.strip_prefix("arn:") {
        Some(rest) => rest.rsplit_once(":cluster/").map(|(_, name)| name)?,
        None => value,
    };
    (!name.is_empty()).then_some(name)
}

fn alert_state(state: Option<&StateValue>) -> AlertState {
    match state {
        Some(StateValue::Alarm) => AlertState::Firing,
        Some(StateValue::Ok) => AlertState::Resolved,
        // INSUFFICIENT_DATA, and any state CloudWatch adds later.
        _ => AlertState::Unknown,
    }
}

/// `critical`, `warning`, `info` (any case), with the usual short spellings.
fn parse_severity(value: &str) -> Option<Severity> {
    match value.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" => Some(Severity::Critical),
        "warning" | "warn" => Some(Severity::Warning),
        "info" | "informational" => Some(Severity::Info),
        _ => None,
    }
}

/// The first http(s) URL in free text, without the punctuation around it (markdown
/// links, Slack's `<url|text>`, a full stop ending the sentence).
pub(super) fn url_in(text: &str) -> Option<String> {
    let start = [text.find("https://"), text.find("http://")]
        .into_iter()
        .flatten()
        .min()?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || "<>\"'()[]|`".contains(c))
        .unwrap_or(rest.len());
    let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
    (url.len() > "https://".len()).then(|| url.to_string())
}

fn to_timestamp(t: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// One alarm's tags as last read.
#[derive(Clone, Debug)]
struct TagEntry {
    checked: Timestamp,
    /// Whether the last read worked; if not, `tags` are from an earlier read (or empty).
    ok: bool,
    tags: HashMap<String, String>,
}

/// Alarm tags by alarm ARN, read through `ListTagsForResource` at most hourly.
#[derive(Debug, Default)]
pub(super) struct TagCache {
    entries: HashMap<String, TagEntry>,
}

impl TagCache {
    /// The tags held for `arn` (possibly stale), if it was ever read.
    pub(super) fn get(&self, arn: &str) -> Option<&HashMap<String, String>> {
        self.entries.get(arn).map(|e| &e.tags)
    }

    /// The ARNs to read this poll, most useful first: never read (firing alarms, then
    /// alarms no dimension maps), then the longest out of date. At most `limit`.
    pub(super) fn due(&self, alarms: &[AlarmRecord], now: Timestamp, limit: usize) -> Vec<String> {
        let mut due: Vec<(bool, bool, bool, Timestamp, &str)> = alarms
            .iter()
            .filter_map(|a| {
                let entry = self.entries.get(&a.arn);
                let is_due = entry.is_none_or(|e| {
                    let age = now - e.checked;
                    if e.ok {
                        age >= TAG_REFRESH
                    } else {
                        age >= TAG_RETRY
                    }
                });
                is_due.then(|| {
                    (
                        entry.is_some(),
                        a.state != AlertState::Firing,
                        a.cluster_dimension.is_some(),
                        entry.map_or(Timestamp::MIN_UTC, |e| e.checked),
                        a.arn.as_str(),
                    )
                })
            })
            .collect();
        due.sort();
        due.dedup_by(|a, b| a.4 == b.4);
        due.into_iter()
            .take(limit)
            .map(|d| d.4.to_string())
            .collect()
    }

    /// Records a successful read.
    pub(super) fn store(&mut self, arn: String, tags: HashMap<String, String>, now: Timestamp) {
        self.entries.insert(
            arn,
            TagEntry {
                checked: now,
                ok: true,
                tags,
            },
        );
    }

    /// Records a failed read: what was held stays, and the read is retried later.
    pub(super) fn failed(&mut self, arn: &str, now: Timestamp) {
        let entry = self.entries.entry(arn.to_string()).or_insert(TagEntry {
            checked: now,
            ok: false,
            tags: HashMap::new(),
        });
        entry.checked = now;
        entry.ok = false;
    }

    /// Forgets alarms that no longer exist.
    pub(super) fn retain(&mut self, arns: &HashSet<&str>) {
        self.entries.retain(|arn, _| arns.contains(arn.as_str()));
    }
}

/// The alerts last sent, so a poll sends only what changed and names what disappeared.
#[derive(Debug, Default)]
pub(super) struct SentAlerts {
    sent: HashMap<AlertKey, Alert>,
}

impl SentAlerts {
    /// Folds in this poll's alerts: returns those new or changed, and the keys no longer
    /// present. Keys are only declared gone when `complete` (every page was read): a
    /// failed page must not make alarms vanish.
    pub(super) fn reconcile(
        &mut self,
        alerts: Vec<Alert>,
        complete: bool,
    ) -> (Vec<Alert>, Vec<AlertKey>) {
        let mut gone = Vec::new();
        if complete {
            let present: HashSet<&AlertKey> = alerts.iter().map(|a| &a.key).collect();
            gone = self
                .sent
                .keys()
                .filter(|k| !present.contains(k))
                .cloned()
                .collect();
            gone.sort();
            for key in &gone {
                self.sent.remove(key);
            }
        }
        let mut changed = Vec::new();
        for alert in alerts {
            if self.sent.get(&alert.key) != Some(&alert) {
                self.sent.insert(alert.key.clone(), alert.clone());
                changed.push(alert);
            }
        }
        (changed, gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_urls_in_descriptions() {
        assert_eq!(
            url_in("See https://runbooks.example.com/etcd.md."),
            Some("https://runbooks.example.com/etcd.md".into())
        );
        assert_eq!(
            url_in("[runbook](http://wiki/x?y=1) or https://other"),
            Some("http://wiki/x?y=1".into())
        );
        assert_eq!(
            url_in("<https://a.example/b|runbook>"),
            Some("https://a.example/b".into())
        );
        assert_eq!(url_in("no link, just https:// text"), None);
        assert_eq!(url_in(""), None);
    }

    #[test]
    fn severities_and_cluster_tags() {
        assert_eq!(parse_severity(" Critical "), Some(Severity::Critical));
        assert_eq!(parse_severity("WARN"), Some(Severity::Warning));
        assert_eq!(parse_severity("info"), Some(Severity::Info));
        assert_eq!(parse_severity("sev1"), None);
        assert_eq!(cluster_from_tag("prod-a"), Some("prod-a"));
        assert_eq!(
            cluster_from_tag("arn:aws:eks:us-east-1:123456789012:cluster/prod-b"),
            Some("prod-b")
        );
        assert_eq!(cluster_from_tag("arn:aws:sns:us-east-1:1:topic"), None);
        assert_eq!(cluster_from_tag("  "), None);
    }

    #[test]
    fn ecs_cluster_dimensions_do_not_map_to_eks_clusters() {
        let dims = [Dimension::builder()
            .name(CLUSTER_DIMENSION)
            .value("payments")
            .build()];
        assert_eq!(cluster_in(Some("AWS/ECS"), &dims), None);
        assert_eq!(cluster_in(Some("ECS/ContainerInsights"), &dims), None);
        assert_eq!(
            cluster_in(Some("ContainerInsights"), &dims),
            Some("payments".into())
        );
        assert_eq!(cluster_in(Some("AWS/EKS"), &dims), Some("payments".into()));
    }
}
