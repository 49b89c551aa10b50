//! The CloudWatch source against the SDK's own mocks (`aws-smithy-mocks`): faults and edge
//! cases an emulator cannot stage (throttling, denied tags, failed pages, odd answers). The
//! same paths against LocalStack's CloudWatch: `tests/cloudwatch_localstack.rs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::operation::describe_alarms::{DescribeAlarmsError, DescribeAlarmsOutput};
use aws_sdk_cloudwatch::operation::get_metric_data::{
    GetMetricDataError, GetMetricDataInput, GetMetricDataOutput,
};
use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_cloudwatch::types::{
    AlarmType, CompositeAlarm, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricDataResult,
    MetricStat, StateValue, StatusCode, Tag,
};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use chrono::TimeZone;
use tokio::sync::{mpsc, watch};

use super::poller::Poller;
use super::*;
use crate::config::{Account, Clusters};
use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, MetricName, MetricSample, Severity, SourceHealth,
    Timestamp,
};
use crate::sources::aws::RequestBudget;

const ACCOUNT: &str = "prod";
const REGION: &str = "us-east-1";

/// 12:00:30: mid-minute, as a real poll would be.
fn t0() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2025, 6, 1, 12, 0, 30)
        .single()
        .expect("valid time")
}

fn minute_of(t: Timestamp) -> i64 {
    t.timestamp().div_euclid(60)
}

fn scope() -> AwsScope {
    AwsScope {
        account: Account {
            name: ACCOUNT.into(),
            profile: None,
            regions: vec![REGION.into()],
            role_arn: None,
            endpoint_url: None,
            endpoints: Default::default(),
        },
        region: REGION.into(),
        sdk: aws_config::SdkConfig::builder().build(),
        // Generous, so tests exercise the source, not the budget.
        budget: Arc::new(RequestBudget::new(1000.0)),
        clusters: Clusters::default(),
        clock: Clock::Frozen(t0()),
    }
}

/// A mocked client; the SDK's own retries are off, as in `aws::sdk_config`, so every
/// attempt goes through `call` and is counted.
fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn poller(rules: &[&Rule]) -> Poller {
    Poller::new(client(rules), &scope(), Cloudwatch::default())
}

fn cluster(name: &str) -> ClusterId {
    ClusterId::new(ACCOUNT, REGION, name)
}

fn arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:123456789012:alarm:{name}")
}

fn aws_error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn changed_at() -> DateTime {
    DateTime::from_secs(t0().timestamp() - 600)
}

fn cluster_dimension(name: &str) -> Dimension {
    Dimension::builder().name("ClusterName").value(name).build()
}

/// A single-metric EKS alarm, on `cluster` if given.
fn metric_alarm(name: &str, state: StateValue, cluster: Option<&str>) -> MetricAlarm {
    let mut alarm = MetricAlarm::builder()
        .alarm_name(name)
        .alarm_arn(arn(name))
        .namespace("AWS/EKS")
        .metric_name("apiserver_request_total_5XX")
        .state_value(state)
        .state_reason(format!("{name}: threshold crossed"))
        .state_updated_timestamp(changed_at());
    if let Some(c) = cluster {
        alarm = alarm.dimensions(cluster_dimension(c));
    }
    alarm.build()
}

/// A metric-math alarm whose cluster is only inside `Metrics[].MetricStat.Metric`.
fn math_alarm(name: &str, cluster: &str) -> MetricAlarm {
    let stat = |id: &str, metric: &str| {
        MetricDataQuery::builder()
            .id(id)
            .return_data(false)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/EKS")
                            .metric_name(metric)
                            .dimensions(cluster_dimension(cluster))
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .build()
    };
    MetricAlarm::builder()
        .alarm_name(name)
        .alarm_arn(arn(name))
        .alarm_description("5xx ratio high. Runbook: https://runbooks.example.com/5xx.md.")
        .state_value(StateValue::Alarm)
        .state_reason("ratio above 5%")
        .state_updated_timestamp(changed_at())
        .metrics(stat("errors", "apiserver_request_total_5XX"))
        .metrics(stat("total", "apiserver_request_total"))
        .metrics(
            MetricDataQuery::builder()
                .id("ratio")
                .expression("errors / total")
                .return_data(true)
                .build(),
        )
        .build()
}

fn composite_alarm(name: &str, state: StateValue) -> CompositeAlarm {
    CompositeAlarm::builder()
        .alarm_name(name)
        .alarm_arn(arn(name))
        .alarm_rule("ALARM(a) OR ALARM(b)")
        .state_value(state)
        .state_reason("child alarms firing")
        .state_updated_timestamp(changed_at())
        .build()
}

fn page(metric: Vec<MetricAlarm>, composite: Vec<CompositeAlarm>) -> DescribeAlarmsOutput {
    DescribeAlarmsOutput::builder()
        .set_metric_alarms(Some(metric))
        .set_composite_alarms(Some(composite))
        .build()
}

/// Tags by alarm ARN, any number of calls.
fn tags_rule(by_alarm: &'static [(&'static str, &'static [(&'static str, &'static str)])]) -> Rule {
    mock!(Client::list_tags_for_resource).then_compute_output(move |req| {
        let tags = by_alarm
            .iter()
            .find(|(name, _)| req.resource_arn() == Some(arn(name).as_str()))
            .map_or(&[][..], |(_, tags)| *tags);
        ListTagsForResourceOutput::builder()
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    })
}

fn alerts_in(events: &[SourceEvent]) -> Vec<Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Alerts(a) => Some(a.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn gone_in(events: &[SourceEvent]) -> Vec<AlertKey> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::AlertsGone(k) => Some(k.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn health_in(events: &[SourceEvent]) -> SourceHealth {
    match events.last() {
        Some(SourceEvent::Health(h)) => h.clone(),
        other => panic!("a poll ends with its health report, got {other:?}"),
    }
}

fn alert<'a>(alerts: &'a [Alert], name: &str) -> &'a Alert {
    alerts
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no alert {name} in {alerts:#?}"))
}

fn requests_both_alarm_types(
    req: &aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsInput,
) -> bool {
    let types = req.alarm_types();
    types.contains(&AlarmType::MetricAlarm) && types.contains(&AlarmType::CompositeAlarm)
}

// ---- alarms ----

#[tokio::test(start_paused = true)]
async fn describe_alarms_follows_next_token_and_asks_for_composite_alarms() {
    let first = mock!(Client::describe_alarms)
        .match_requests(|r| r.next_token().is_none() && requests_both_alarm_types(r))
        .then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(metric_alarm("etcd-size", StateValue::Alarm, Some("prod-a")))
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::describe_alarms)
        .match_requests(|r| r.next_token() == Some("page-2") && requests_both_alarm_types(r))
        .then_output(|| {
            page(
                vec![metric_alarm("5xx", StateValue::Ok, Some("prod-b"))],
                vec![composite_alarm("api-degraded", StateValue::Alarm)],
            )
        });
    let tags = tags_rule(&[]);
    let mut p = poller(&[&first, &second, &tags]);

    let events = p.poll_alarms(t0()).await;

    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    let alerts = alerts_in(&events);
    let mut names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["5xx", "api-degraded", "etcd-size"]);
    let composite = alert(&alerts, "api-degraded");
    assert_eq!(composite.labels["alarm_type"], "CompositeAlarm");
    assert_eq!(composite.state, AlertState::Firing);
    assert!(!composite.labels.contains_key("namespace"));
    let health = health_in(&events);
    assert_eq!(health.last_ok, Some(t0()));
    assert_eq!(health.last_error, None);
    assert_eq!(health.name, "cloudwatch:prod/us-east-1");
    assert_eq!(health.poll_interval_secs, 60);
}

#[tokio::test(start_paused = true)]
async fn alarms_map_to_clusters_by_dimension_math_metric_and_tag_and_tags_are_cached() {
    let listing = mock!(Client::describe_alarms).then_output(|| {
        page(
            vec![
                metric_alarm("by-dimension", StateValue::Alarm, Some("prod-a")),
                math_alarm("by-math", "prod-b"),
                metric_alarm("unmapped", StateValue::Alarm, None),
            ],
            vec![composite_alarm("by-tag", StateValue::Alarm)],
        )
    });
    let tags = tags_rule(&[
        (
            "by-tag",
            &[
                ("eks:cluster-name", "prod-c"),
                ("severity", "critical"),
                ("runbook_url", "https://runbooks.example.com/api.md"),
            ],
        ),
        // A dimension wins over a tag; the tag still sets severity.
        (
            "by-dimension",
            &[("eks:cluster-name", "elsewhere"), ("severity", "Info")],
        ),
        ("unmapped", &[("team", "platform")]),
    ]);
    let mut p = poller(&[&listing, &tags]);

    let events = p.poll_alarms(t0()).await;
    let alerts = alerts_in(&events);
    assert_eq!(alerts.len(), 4);

    let a = alert(&alerts, "by-dimension");
    assert_eq!(a.cluster, Some(cluster("prod-a")));
    assert_eq!(a.severity, Severity::Info);
    assert_eq!(
        a.key,
        AlertKey::new(
            AlertSource::Cloudwatch,
            Some(&cluster("prod-a")),
            "by-dimension",
            &arn("by-dimension")
        )
    );
    let b = alert(&alerts, "by-math");
    assert_eq!(b.cluster, Some(cluster("prod-b")));
    assert_eq!(b.severity, Severity::Warning, "no severity tag: warning");
    assert_eq!(
        b.runbook_url.as_deref(),
        Some("https://runbooks.example.com/5xx.md"),
        "a URL in the description"
    );
    assert_eq!(b.labels["namespace"], "AWS/EKS");
    assert_eq!(b.labels["metric_name"], "apiserver_request_total_5XX");
    let c = alert(&alerts, "by-tag");
    assert_eq!(c.cluster, Some(cluster("prod-c")));
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(
        c.runbook_url.as_deref(),
        Some("https://runbooks.example.com/api.md")
    );
    let u = alert(&alerts, "unmapped");
    assert_eq!(
        u.cluster, None,
        "an alarm no cluster claims is still an alert"
    );
    assert!(u.is_firing());
    assert_eq!(
        u.key,
        AlertKey::new(AlertSource::Cloudwatch, None, "unmapped", &arn("unmapped"))
    );
    assert_eq!(tags.num_calls(), 4, "one tag read per alarm");

    // A minute later: tags come from the cache, and nothing changed, so nothing is sent.
    let events = p.poll_alarms(t0() + chrono::TimeDelta::seconds(60)).await;
    assert_eq!(
        tags.num_calls(),
        4,
        "tags are not read again within the hour"
    );
    assert_eq!(listing.num_calls(), 2);
    assert!(alerts_in(&events).is_empty(), "{events:#?}");
    assert!(gone_in(&events).is_empty());

    // After an hour they are refreshed, once each.
    p.poll_alarms(t0() + chrono::TimeDelta::minutes(61)).await;
    assert_eq!(tags.num_calls(), 8);
}

#[tokio::test(start_paused = true)]
async fn alarm_states_map_to_alert_states_with_reason_time_and_labels() {
    let listing = mock!(Client::describe_alarms).then_output(|| {
        page(
            vec![
                metric_alarm("firing", StateValue::Alarm, Some("prod-a")),
                metric_alarm("ok", StateValue::Ok, Some("prod-a")),
                metric_alarm("no-data", StateValue::InsufficientData, Some("prod-a")),
            ],
            vec![],
        )
    });
    let tags = tags_rule(&[]);
    let mut p = poller(&[&listing, &tags]);

    let alerts = alerts_in(&p.poll_alarms(t0()).await);

    assert_eq!(alert(&alerts, "firing").state, AlertState::Firing);
    assert_eq!(alert(&alerts, "ok").state, AlertState::Resolved);
    assert_eq!(alert(&alerts, "no-data").state, AlertState::Unknown);
    let a = alert(&alerts, "firing");
    assert_eq!(a.summary, "firing: threshold crossed");
    let changed = t0() - chrono::TimeDelta::seconds(600);
    assert_eq!((a.first_seen, a.last_change), (changed, changed));
    assert_eq!(a.source, AlertSource::Cloudwatch);
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alarm_arn", arn("firing").as_str()),
            ("alarm_name", "firing"),
            ("alarm_type", "MetricAlarm"),
            ("metric_name", "apiserver_request_total_5XX"),
            ("namespace", "AWS/EKS"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_alarm_is_gone_and_a_failed_listing_removes_nothing() {
    let listing = mock!(Client::describe_alarms)
        .sequence()
        .output(|| {
            page(
                vec![
                    metric_alarm("stays", StateValue::Alarm, Some("prod-a")),
                    metric_alarm("deleted", StateValue::Alarm, Some("prod-a")),
                ],
                vec![],
            )
        })
        .error(|| DescribeAlarmsError::generic(aws_error("AccessDenied")))
        .output(|| {
            page(
                vec![metric_alarm("stays", StateValue::Alarm, Some("prod-a"))],
                vec![],
            )
        })
        .build();
    let tags = tags_rule(&[]);
    let mut p = poller(&[&listing, &tags]);

    assert_eq!(alerts_in(&p.poll_alarms(t0()).await).len(), 2);

    let failed = p.poll_alarms(t0() + chrono::TimeDelta::seconds(60)).await;
    assert!(
        gone_in(&failed).is_empty(),
        "a failed poll keeps what was had"
    );
    assert!(alerts_in(&failed).is_empty());
    let health = health_in(&failed);
    assert_eq!(health.last_ok, Some(t0()));
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("AccessDenied"))
    );

    let recovered = p.poll_alarms(t0() + chrono::TimeDelta::seconds(120)).await;
    let deleted = AlertKey::new(
        AlertSource::Cloudwatch,
        Some(&cluster("prod-a")),
        "deleted",
        &arn("deleted"),
    );
    assert_eq!(gone_in(&recovered), [deleted]);
    assert!(alerts_in(&recovered).is_empty(), "'stays' did not change");
    assert_eq!(
        health_in(&recovered).last_ok,
        Some(t0() + chrono::TimeDelta::seconds(120))
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_and_counted() {
    let listing = mock!(Client::describe_alarms)
        .sequence()
        .error(|| DescribeAlarmsError::generic(aws_error("Throttling")))
        .output(|| page(vec![], vec![]))
        .build();
    let mut p = poller(&[&listing]);

    let events = p.poll_alarms(t0()).await;

    assert_eq!(listing.num_calls(), 2);
    let health = health_in(&events);
    assert_eq!((health.calls, health.throttles, health.errors), (2, 1, 0));
    assert_eq!(health.last_ok, Some(t0()));
    assert_eq!(health.last_error, None);
    assert_eq!(p.stats().throttles, 1);
}

#[tokio::test(start_paused = true)]
async fn access_denied_is_reported_and_ready_is_still_sent() {
    let listing = mock!(Client::describe_alarms)
        .then_error(|| DescribeAlarmsError::generic(aws_error("AccessDenied")));
    let (tx, mut rx) = mpsc::channel(64);
    let (_clusters_tx, clusters_rx) = watch::channel(Vec::new());
    let handle = spawn_with_client(
        client(&[&listing]),
        scope(),
        Cloudwatch::default(),
        tx,
        clusters_rx,
    );
    assert_eq!(handle.name, "cloudwatch:prod/us-east-1");

    let mut seen = Vec::new();
    while !seen.iter().any(|e| matches!(e, SourceEvent::Ready { .. })) {
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the source answers")
            .expect("the source is running");
        seen.push(event);
    }
    let health = seen
        .iter()
        .find_map(|e| match e {
            SourceEvent::Health(h) => Some(h),
            _ => None,
        })
        .expect("health before Ready");
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("cloudwatch:DescribeAlarms: AccessDenied")),
        "{health:?}"
    );
    assert_eq!(health.last_ok, None);
    assert_eq!(health.errors, 1);
    assert_eq!(listing.num_calls(), 1, "permission errors are not retried");
    assert_eq!(
        seen.last(),
        Some(&SourceEvent::Ready {
            source: "cloudwatch:prod/us-east-1".into()
        })
    );
}

// ---- metrics ----

/// Answers every query with one point per minute in `minutes` (value = the minute).
fn answer(req: &GetMetricDataInput, minutes: std::ops::Range<i64>) -> GetMetricDataOutput {
    let results = req
        .metric_data_queries()
        .iter()
        .map(|q| {
            MetricDataResult::builder()
                .id(q.id().unwrap_or_default())
                .set_timestamps(Some(
                    minutes
                        .clone()
                        .map(|m| DateTime::from_secs(m * 60))
                        .collect(),
                ))
                .set_values(Some(minutes.clone().map(|m| m as f64).collect()))
                .status_code(StatusCode::Complete)
                .build()
        })
        .collect();
    GetMetricDataOutput::builder()
        .set_metric_data_results(Some(results))
        .build()
}

/// A GetMetricData rule recording every request; answers with the minutes from the
/// request's start to `last_minute`.
fn recording_rule(last_minute: i64) -> (Rule, Arc<Mutex<Vec<GetMetricDataInput>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let rule = mock!(Client::get_metric_data).then_compute_output(move |req| {
        log.lock().expect("not poisoned").push(req.clone());
        let start = req.start_time().map_or(0, |t| t.secs() / 60);
        answer(req, start..last_minute + 1)
    });
    (rule, seen)
}

fn queried_clusters(req: &GetMetricDataInput) -> Vec<(String, String)> {
    req.metric_data_queries()
        .iter()
        .filter_map(|q| {
            let metric = q.metric_stat()?.metric()?;
            let dim = metric.dimensions().first()?;
            assert_eq!(dim.name(), Some("ClusterName"));
            assert_eq!(metric.namespace(), Some("AWS/EKS"));
            Some((dim.value()?.to_string(), metric.metric_name()?.to_string()))
        })
        .collect()
}

fn fleet(n: usize) -> Vec<ClusterId> {
    (0..n).map(|i| cluster(&format!("c{i:04}"))).collect()
}

#[tokio::test(start_paused = true)]
async fn a_fleet_of_1200_clusters_needs_exactly_12_calls_and_says_what_it_costs() {
    let (rule, seen) = recording_rule(minute_of(t0()));
    let mut p = poller(&[&rule]);
    p.replace_clusters(fleet(1200));

    let events = p.poll_summary(t0()).await;

    assert_eq!(rule.num_calls(), 12);
    let requests = seen.lock().expect("not poisoned").clone();
    let mut all = HashSet::new();
    for req in &requests {
        let queries = req.metric_data_queries();
        assert_eq!(queries.len(), 500);
        let ids: HashSet<&str> = queries.iter().filter_map(|q| q.id()).collect();
        assert_eq!(ids.len(), 500, "ids unique within a call");
        for q in queries {
            let stat = q.metric_stat().expect("a metric query");
            assert_eq!(stat.period(), Some(60));
            let name = stat
                .metric()
                .and_then(|m| m.metric_name())
                .unwrap_or_default();
            let metric = MetricName::SUMMARY
                .into_iter()
                .find(|m| m.cloudwatch_name() == name)
                .expect("a summary metric");
            assert_eq!(stat.stat(), Some(metric.statistic()));
        }
        all.extend(queried_clusters(req));
    }
    assert_eq!(all.len(), 6000, "every cluster's 5 summary metrics, once");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, SourceEvent::Metrics { .. }))
            .count(),
        1200
    );
    assert_eq!(p.metrics_requested(), 6000);
    // 6,000 metrics every 5 minutes = 72,000 an hour, at $0.01 per 1,000.
    let health = health_in(&events);
    let cost = health.cost_usd_per_hour.expect("cost reported");
    assert!((cost - 0.72).abs() < 1e-9, "{cost}");
    assert_eq!(health.last_ok, Some(t0()));
}

#[tokio::test(start_paused = true)]
async fn get_metric_data_pages_are_followed_and_billed_again() {
    let now_minute = minute_of(t0());
    let first = mock!(Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_compute_output(move |req| {
            let mut out = answer(req, now_minute - 60..now_minute - 30);
            out.next_token = Some("page-2".into());
            out
        });
    let second = mock!(Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_compute_output(move |req| answer(req, now_minute - 30..now_minute + 1));
    let mut p = poller(&[&first, &second]);
    p.replace_clusters(vec![cluster("prod-a")]);

    let events = p.poll_summary(t0()).await;

    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    let samples: Vec<&MetricSample> = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Metrics {
                cluster: c,
                samples,
            } => {
                assert_eq!(c, &cluster("prod-a"));
                Some(samples)
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(samples.len(), 5 * 61, "both pages' points");
    let storage: Vec<i64> = samples
        .iter()
        .filter(|s| s.metric == MetricName::StorageSizeBytes)
        .map(|s| s.minute)
        .collect();
    assert_eq!(storage, (now_minute - 60..=now_minute).collect::<Vec<_>>());
    assert_eq!(
        p.metrics_requested(),
        10,
        "each page bills its 5 metrics again"
    );
    // Projected: 5 metrics x 2 pages x 12 polls an hour.
    let cost = health_in(&events).cost_usd_per_hour.expect("cost reported");
    assert!((cost - 120.0 * 0.01 / 1000.0).abs() < 1e-12, "{cost}");
}

#[tokio::test(start_paused = true)]
async fn the_next_poll_asks_only_for_minutes_not_held() {
    let now_minute = minute_of(t0());
    // CloudWatch has points up to the minute before the current one.
    let (rule, seen) = recording_rule(now_minute - 1);
    let mut p = poller(&[&rule]);
    p.replace_clusters(vec![cluster("prod-a"), cluster("prod-b")]);

    p.poll_summary(t0()).await;
    let later = t0() + chrono::TimeDelta::minutes(5);
    p.poll_summary(later).await;

    let requests = seen.lock().expect("not poisoned").clone();
    assert_eq!(requests.len(), 2);
    let times = |r: &GetMetricDataInput| {
        (
            r.start_time().map(DateTime::secs),
            r.end_time().map(DateTime::secs),
        )
    };
    assert_eq!(
        times(&requests[0]),
        (Some((now_minute - 60) * 60), Some((now_minute + 1) * 60)),
        "first time: the last hour"
    );
    assert_eq!(
        times(&requests[1]),
        (Some((now_minute - 1) * 60), Some((now_minute + 6) * 60)),
        "then from the newest minute held (it may have been partial)"
    );
}

#[tokio::test(start_paused = true)]
async fn lookback_is_capped_at_90_minutes() {
    let now_minute = minute_of(t0());
    let (rule, seen) = recording_rule(now_minute - 1);
    let mut p = poller(&[&rule]);
    p.replace_clusters(vec![cluster("prod-a")]);

    p.poll_summary(t0()).await;
    p.poll_summary(t0() + chrono::TimeDelta::hours(3)).await;

    let requests = seen.lock().expect("not poisoned").clone();
    let start = requests[1].start_time().map(DateTime::secs);
    assert_eq!(start, Some((now_minute + 180 - 90) * 60));
}

#[tokio::test(start_paused = true)]
async fn focus_fetches_every_metric_of_that_cluster_only_and_adds_its_cost() {
    let now_minute = minute_of(t0());
    let (rule, seen) = recording_rule(now_minute);
    let mut p = poller(&[&rule]);
    p.replace_clusters(vec![
        cluster("prod-a"),
        cluster("prod-b"),
        cluster("prod-c"),
    ]);

    let events = p.set_focus(Some(cluster("prod-b")), t0()).await;

    assert_eq!(rule.num_calls(), 1);
    let req = seen.lock().expect("not poisoned")[0].clone();
    let asked = queried_clusters(&req);
    assert_eq!(asked.len(), 16);
    assert!(asked.iter().all(|(c, _)| c == "prod-b"), "{asked:?}");
    let names: HashSet<&str> = asked.iter().map(|(_, m)| m.as_str()).collect();
    let all: HashSet<&str> = MetricName::ALL
        .iter()
        .map(|m| m.cloudwatch_name())
        .collect();
    assert_eq!(names, all);
    assert_eq!(
        req.start_time().map(DateTime::secs),
        Some((now_minute - 60) * 60),
        "the last hour at once"
    );
    assert!(
        matches!(&events[0], SourceEvent::Metrics { cluster: c, .. } if c == &cluster("prod-b"))
    );
    // Two other clusters' summaries every 5 minutes, plus 16 metrics every minute.
    let cost = health_in(&events).cost_usd_per_hour.expect("cost reported");
    let per_hour = 2.0 * 5.0 * 12.0 + 16.0 * 60.0;
    assert!((cost - per_hour * 0.01 / 1000.0).abs() < 1e-12, "{cost}");

    // The same focus again, or one in another region, fetches nothing new.
    p.set_focus(Some(cluster("prod-b")), t0()).await;
    assert_eq!(rule.num_calls(), 1);

    // The summary poll leaves the focused cluster to the focus poll.
    p.poll_summary(t0()).await;
    let req = seen.lock().expect("not poisoned")[1].clone();
    let asked: HashSet<String> = queried_clusters(&req).into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        asked,
        HashSet::from(["prod-a".to_string(), "prod-c".to_string()])
    );

    let elsewhere = ClusterId::new(ACCOUNT, "eu-west-1", "prod-b");
    let events = p.set_focus(Some(elsewhere), t0()).await;
    assert_eq!(
        rule.num_calls(),
        2,
        "another region's cluster is not ours to fetch"
    );
    assert_eq!(p.focus(), None);
    let cost = health_in(&events).cost_usd_per_hour.expect("cost reported");
    assert!(
        (cost - 3.0 * 5.0 * 12.0 * 0.01 / 1000.0).abs() < 1e-12,
        "{cost}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_batch_does_not_drop_the_others_and_is_asked_again() {
    let now_minute = minute_of(t0());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let rule = mock!(Client::get_metric_data).then_compute_response(move |req| {
        log.lock().expect("not poisoned").push(req.clone());
        if req.metric_data_queries().len() == 500 {
            MockResponse::Error(GetMetricDataError::generic(aws_error("AccessDenied")))
        } else {
            MockResponse::Output(answer(req, now_minute - 60..now_minute + 1))
        }
    });
    let mut p = poller(&[&rule]);
    // 101 clusters: one full batch of 500 and one of 5 (the last cluster by name).
    p.replace_clusters(fleet(101));

    let events = p.poll_summary(t0()).await;

    assert_eq!(rule.num_calls(), 2);
    let got: Vec<&ClusterId> = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Metrics { cluster, .. } => Some(cluster),
            _ => None,
        })
        .collect();
    assert_eq!(got, [&cluster("c0100")]);
    let health = health_in(&events);
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("GetMetricData: AccessDenied")),
        "{health:?}"
    );
    assert_eq!(health.last_ok, None, "a partial poll is not a success");

    // Five minutes on: the failed batch's minutes were never claimed, so it asks for the
    // last hour again; the batch that worked asks only from its newest minute.
    p.poll_summary(t0() + chrono::TimeDelta::minutes(5)).await;
    let requests = seen.lock().expect("not poisoned").clone();
    let starts: Vec<(usize, Option<i64>)> = requests[2..]
        .iter()
        .map(|r| {
            (
                r.metric_data_queries().len(),
                r.start_time().map(DateTime::secs),
            )
        })
        .collect();
    assert_eq!(
        starts,
        [
            (500, Some((now_minute + 5 - 60) * 60)),
            (5, Some(now_minute * 60)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn new_clusters_get_their_summary_at_once_and_the_task_stops_with_the_channel() {
    let now_minute = minute_of(t0());
    let listing = mock!(Client::describe_alarms).then_output(|| page(vec![], vec![]));
    let (metrics, seen) = recording_rule(now_minute);
    let (tx, mut rx) = mpsc::channel(64);
    let (clusters_tx, clusters_rx) = watch::channel(Vec::new());
    let handle = spawn_with_client(
        client(&[&listing, &metrics]),
        scope(),
        Cloudwatch::default(),
        tx,
        clusters_rx,
    );
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the source answers")
            .expect("the source is running")
    };
    while !matches!(next().await, SourceEvent::Ready { .. }) {}

    clusters_tx
        .send(vec![cluster("new-a")])
        .expect("the source watches");
    loop {
        if let SourceEvent::Metrics {
            cluster: c,
            samples,
        } = next().await
        {
            assert_eq!(c, cluster("new-a"));
            assert_eq!(samples.len(), 5 * 61);
            break;
        }
    }
    assert_eq!(metrics.num_calls(), 1, "long before the next summary poll");
    assert_eq!(
        seen.lock().expect("not poisoned")[0]
            .metric_data_queries()
            .len(),
        5
    );

    handle
        .commands
        .send(SourceCommand::Focus(Some(cluster("new-a"))))
        .await
        .expect("the source takes commands");
    loop {
        if let SourceEvent::Metrics { samples, .. } = next().await {
            assert!(samples.iter().any(|s| s.metric == MetricName::P99Delete));
            break;
        }
    }
    assert_eq!(metrics.num_calls(), 2);
    assert_eq!(
        seen.lock().expect("not poisoned")[1]
            .metric_data_queries()
            .len(),
        16
    );

    drop(rx);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(
        handle.commands.is_closed(),
        "the task ended once nobody listened"
    );
}

// ---- faults: each one shown, what was had kept, recovery by itself ----

fn at(minutes: i64) -> Timestamp {
    t0() + chrono::TimeDelta::minutes(minutes)
}

fn is_failing(h: &SourceHealth) -> bool {
    h.last_error_at.is_some() && (h.last_ok.is_none() || h.last_error_at > h.last_ok)
}

fn is_ok_at(h: &SourceHealth, now: Timestamp) -> bool {
    !is_failing(h) && h.status(now) == crate::model::SourceStatus::Ok
}

/// What a fault does to one attempt of `DescribeAlarms`.
#[derive(Clone, Copy)]
enum Fault {
    Error(fn() -> DescribeAlarmsError),
    Http(fn() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse),
}

fn http(
    status: u16,
    body: &'static [u8],
) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    let mut r = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("valid status"),
        aws_smithy_types::body::SdkBody::from(body),
    );
    r.headers_mut().insert("smithy-protocol", "rpc-v2-cbor");
    r.headers_mut().insert("content-type", "application/cbor");
    r
}

/// A good listing (one firing alarm), then `fault` for `attempts` answers, then a good
/// listing with a second alarm: the fault is shown, the firing alarm is neither dropped nor
/// resolved, and the next listing brings both. Returns the health while failing.
async fn alarms_survive(fault: Fault, attempts: usize, error: &str) -> SourceHealth {
    let mut listing = mock!(Client::describe_alarms).sequence().output(|| {
        page(
            vec![metric_alarm(
                "etcd-db-size",
                StateValue::Alarm,
                Some("prod-a"),
            )],
            vec![],
        )
    });
    for _ in 0..attempts {
        listing = match fault {
            Fault::Error(e) => listing.error(e),
            Fault::Http(r) => listing.http_response(r),
        };
    }
    let listing = listing
        .output(|| {
            page(
                vec![
                    metric_alarm("etcd-db-size", StateValue::Alarm, Some("prod-a")),
                    metric_alarm("apiserver-5xx", StateValue::Alarm, Some("prod-b")),
                ],
                vec![],
            )
        })
        .build();
    let tags = tags_rule(&[]);
    let mut p = poller(&[&listing, &tags]);
    let first = p.poll_alarms(at(0)).await;
    assert_eq!(alerts_in(&first).len(), 1);
    let before = health_in(&first);

    let failed = p.poll_alarms(at(1)).await;
    assert!(gone_in(&failed).is_empty(), "nothing dropped");
    assert!(alerts_in(&failed).is_empty(), "nothing resolved or changed");
    let h = health_in(&failed);
    assert_eq!(h.last_error.as_deref(), Some(error));
    assert!(is_failing(&h), "{h:?}");
    assert_eq!(h.errors, before.errors + 1);
    assert_eq!(h.calls, before.calls + attempts as u64);

    let recovered = p.poll_alarms(at(2)).await;
    let fresh = alerts_in(&recovered);
    assert_eq!(fresh.len(), 1, "the new alarm, and only it: {fresh:#?}");
    assert_eq!(fresh[0].name, "apiserver-5xx");
    assert!(is_ok_at(&health_in(&recovered), at(2)));
    h
}

#[tokio::test(start_paused = true)]
async fn fault_alarms_throttled_past_every_retry_are_kept_and_recover() {
    let h = alarms_survive(
        Fault::Error(|| DescribeAlarmsError::generic(aws_error("Throttling"))),
        4,
        "cloudwatch:DescribeAlarms: Throttling: Throttling (mocked)",
    )
    .await;
    assert_eq!(h.throttles, 4);
    // Each throttle halved the rate the account and region allows (its EKS source too).
    let pace = h.pace.expect("an AWS source says its pace");
    assert_eq!((pace.cuts, pace.ceiling), (4, 1000.0));
    assert!(pace.is_cut() && pace.cut_at.is_some(), "{pace:?}");
}

#[tokio::test(start_paused = true)]
async fn fault_alarms_5xx_is_retried_kept_and_recovers() {
    let h = alarms_survive(
        Fault::Http(|| http(503, b"")),
        4,
        "cloudwatch:DescribeAlarms: HTTP 503",
    )
    .await;
    assert_eq!(h.throttles, 0);
}

#[tokio::test(start_paused = true)]
async fn fault_alarms_malformed_body_is_unreadable_kept_and_recovers() {
    // 0xbf opens an indefinite map that never ends.
    let listing = mock!(Client::describe_alarms)
        .sequence()
        .http_response(|| http(200, b"\xbf\x6cMetricAlarms"))
        .times(4)
        .output(|| page(vec![], vec![]))
        .build();
    let mut p = poller(&[&listing]);
    let h = health_in(&p.poll_alarms(at(0)).await);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("cloudwatch:DescribeAlarms: unreadable response (HTTP 200): "),
        "{error}"
    );
    assert!(is_failing(&h));
    assert_eq!(listing.num_calls(), 4);
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(1)).await), at(1)));
}

#[tokio::test(start_paused = true)]
async fn fault_alarms_expired_token_is_not_retried_kept_and_recovers() {
    alarms_survive(
        Fault::Error(|| DescribeAlarmsError::generic(aws_error("ExpiredToken"))),
        1,
        "cloudwatch:DescribeAlarms: ExpiredToken: ExpiredToken (mocked)",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_metrics_throttled_past_every_retry_are_asked_again_and_recover() {
    let now_minute = minute_of(t0());
    let rule = mock!(Client::get_metric_data)
        .sequence()
        .error(|| GetMetricDataError::generic(aws_error("Throttling")))
        .times(4)
        .output(move || {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("q0")
                        .timestamps(DateTime::from_secs(now_minute * 60))
                        .values(1.0)
                        .status_code(StatusCode::Complete)
                        .build(),
                )
                .build()
        })
        .build();
    let mut p = poller(&[&rule]);
    p.replace_clusters(vec![cluster("prod-a")]);
    let failed = p.poll_summary(t0()).await;
    assert!(
        !failed
            .iter()
            .any(|e| matches!(e, SourceEvent::Metrics { .. })),
        "no points from a failed poll"
    );
    let h = health_in(&failed);
    assert_eq!(
        h.last_error.as_deref(),
        Some("cloudwatch:GetMetricData: Throttling: Throttling (mocked)")
    );
    assert_eq!((h.throttles, h.errors), (4, 1));
    assert!(is_failing(&h));

    let recovered = p.poll_summary(t0() + chrono::TimeDelta::minutes(1)).await;
    assert!(
        recovered.iter().any(
            |e| matches!(e, SourceEvent::Metrics { cluster: c, .. } if *c == cluster("prod-a"))
        ),
        "fresh points: {recovered:?}"
    );
    assert!(is_ok_at(
        &health_in(&recovered),
        t0() + chrono::TimeDelta::minutes(1)
    ));
}

// -- the real SDK stack over loopback: timeouts, DNS, refused connections, credentials --

/// An empty `DescribeAlarms` answer in RPC-v2 CBOR (an empty map).
fn no_alarms(_: &crate::sources::faults::Seen) -> crate::sources::faults::Reply {
    (
        200,
        vec![
            ("smithy-protocol".into(), "rpc-v2-cbor".into()),
            ("content-type".into(), "application/cbor".into()),
        ],
        vec![0xa0],
    )
}

/// A poller whose client is built as `sdk_config` builds it, against `endpoint`.
async fn networked(
    endpoint: &str,
    credentials: crate::sources::faults::FlakyCredentials,
) -> Poller {
    let mut s = scope();
    s.account.endpoint_url = Some(endpoint.to_string());
    let sdk = crate::sources::aws::loader(&s.account, &s.region)
        .credentials_provider(credentials)
        .identity_cache(aws_sdk_cloudwatch::config::IdentityCache::no_cache())
        .load()
        .await;
    Poller::new(Client::new(&sdk), &s, Cloudwatch::default())
}

#[tokio::test]
async fn fault_a_hung_endpoint_times_out_and_recovers() {
    use crate::sources::faults::{FaultServer, FlakyCredentials, Mode};
    let server = FaultServer::start(no_alarms).await;
    let mut p = networked(&server.url, FlakyCredentials::default()).await;
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(0)).await), at(0)));

    // Virtual time only while the server hangs: a paused clock jumps ahead whenever the
    // runtime waits, so a real server's answer would lose the race to the timeouts.
    tokio::time::pause();
    server.set(Mode::Hang);
    let started = tokio::time::Instant::now();
    let h = health_in(&p.poll_alarms(at(1)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(90),
        "{waited:?}"
    );
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("cloudwatch:DescribeAlarms: timed out"),
        "{error}"
    );
    assert!(is_failing(&h));
    assert_eq!((h.calls, h.errors), (1 + 4, 1));

    tokio::time::resume();
    server.set(Mode::Answer);
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(2)).await), at(2)));
}

#[tokio::test]
async fn fault_a_name_that_does_not_resolve_is_shown() {
    use crate::sources::faults::{FlakyCredentials, UNRESOLVABLE_HOST};
    let mut p = networked(
        &format!("http://{UNRESOLVABLE_HOST}"),
        FlakyCredentials::default(),
    )
    .await;
    let h = health_in(&p.poll_alarms(at(0)).await);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("cloudwatch:DescribeAlarms: ") && error.contains("dns error"),
        "{error}"
    );
    assert!(is_failing(&h));
    assert_eq!((h.calls, h.errors), (4, 1));
}

#[tokio::test]
async fn fault_a_refused_connection_is_shown_and_recovers_when_the_endpoint_is_back() {
    use crate::sources::faults::{FaultServer, FlakyCredentials, refused_port};
    let port = refused_port();
    let mut p = networked(
        &format!("http://127.0.0.1:{port}"),
        FlakyCredentials::default(),
    )
    .await;
    let h = health_in(&p.poll_alarms(at(0)).await);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("cloudwatch:DescribeAlarms: connection failed: ")
            && error.to_lowercase().contains("refused"),
        "{error}"
    );
    assert!(is_failing(&h));

    let _server = FaultServer::start_on(port, no_alarms).await;
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(1)).await), at(1)));
}

#[tokio::test]
async fn fault_credentials_expiring_mid_run_are_shown_not_hammered_and_recover() {
    use crate::sources::faults::{FaultServer, FlakyCredentials};
    let server = FaultServer::start(no_alarms).await;
    let credentials = FlakyCredentials::default();
    let mut p = networked(&server.url, credentials.clone()).await;
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(0)).await), at(0)));
    let sent = server.seen().len();

    credentials.fail(true);
    let asked = credentials.calls();
    let h = health_in(&p.poll_alarms(at(1)).await);
    assert_eq!(
        h.last_error.as_deref(),
        Some(
            "cloudwatch:DescribeAlarms: no AWS credentials: the credential provider was not enabled: the SSO session has expired"
        )
    );
    assert!(is_failing(&h));
    assert_eq!(credentials.calls() - asked, 1, "not retried");
    assert_eq!(server.seen().len(), sent, "nothing sent unsigned");

    credentials.fail(false);
    assert!(is_ok_at(&health_in(&p.poll_alarms(at(2)).await), at(2)));
}
