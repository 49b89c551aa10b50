//! The CloudWatch source against LocalStack's CloudWatch on 127.0.0.1, through the entry
//! point the app uses (`sources::cloudwatch::spawn` on an SDK config from
//! `sources::aws::loader`). The scene is set with the real `aws-sdk-cloudwatch` client, as a
//! user would set it with the AWS CLI.
//!
//! LocalStack re-evaluates metric alarms every period, which overwrites a state set by
//! hand; it does not evaluate alarms on a percentile (`ExtendedStatistic`), so those hold
//! the state a test sets. Faults (throttling, denied tags, failed pages) stay with the
//! SDK-mock tests in `src/sources/cloudwatch/tests.rs`.

mod common;
mod localstack;
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::config::Credentials;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use fleetdeck::clock::Clock;
use fleetdeck::config::{Account, Cloudwatch, Clusters};
use fleetdeck::model::{
    Alert, AlertState, ClusterId, MetricName, Severity, SourceEvent, SourceHealth,
};
use fleetdeck::sources::aws::{AwsScope, RequestBudget, load, loader};
use fleetdeck::sources::{EVENT_CHANNEL_CAPACITY, SourceCommand, SourceHandle, cloudwatch};
use tokio::sync::{mpsc, watch};

use moto::{ClusterSpec, MotoServer, create_clusters};
use serde_json::Value;

use localstack::{
    LocalStack, MetricAlarmSpec, alarm_arn, put_composite_alarm, put_metric_alarm, put_metric_data,
    set_alarm_state, tag_resource,
};

const ACCOUNT: &str = "prod";
const REGION: &str = "us-east-1";
/// How long the source may take to its first complete picture here.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The source lists alarms every 60 s: a change is seen within one more poll.
const NEXT_POLL_TIMEOUT: Duration = Duration::from_secs(100);

fn cluster(name: &str) -> ClusterId {
    ClusterId::new(ACCOUNT, REGION, name)
}

/// The SDK config the app builds (`sources::aws::sdk_config`) for an account whose
/// `endpoint_url` is LocalStack, with test credentials given directly rather than through
/// the environment.
async fn scope(server: &LocalStack) -> AwsScope {
    let account = Account {
        name: ACCOUNT.into(),
        profile: None,
        regions: vec![REGION.into()],
        role_arn: None,
        endpoint_url: Some(server.endpoint()),
        endpoints: Default::default(),
    };
    let credentials = Credentials::new("test", "test", None, None, "test");
    let sdk = load(
        &account,
        REGION,
        loader(&account, REGION).credentials_provider(credentials),
    )
    .await;
    AwsScope {
        account,
        region: REGION.into(),
        sdk,
        budget: Arc::new(RequestBudget::default()),
        clusters: Clusters::default(),
        clock: Clock::Wall,
    }
}

/// What the source has told the app so far, as the app would hold it.
#[derive(Default)]
struct Seen {
    /// The latest version of each alert, by alarm name.
    alerts: BTreeMap<String, Alert>,
    /// Alarm names the source said are gone.
    gone: BTreeSet<String>,
    /// Every point received, by cluster and metric, then by minute.
    metrics: BTreeMap<(ClusterId, MetricName), BTreeMap<i64, f32>>,
    health: Option<SourceHealth>,
    ready: bool,
}

impl Seen {
    fn absorb(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Alerts(alerts) => {
                for alert in alerts {
                    self.gone.remove(&alert.name);
                    self.alerts.insert(alert.name.clone(), alert);
                }
            }
            SourceEvent::AlertsGone(keys) => {
                let names: Vec<String> = self
                    .alerts
                    .values()
                    .filter(|a| keys.contains(&a.key))
                    .map(|a| a.name.clone())
                    .collect();
                for name in names {
                    self.alerts.remove(&name);
                    self.gone.insert(name);
                }
            }
            SourceEvent::Metrics { cluster, samples } => {
                for s in samples {
                    self.metrics
                        .entry((cluster.clone(), s.metric))
                        .or_default()
                        .insert(s.minute, s.value);
                }
            }
            SourceEvent::Health(h) => self.health = Some(h),
            SourceEvent::Ready { .. } => self.ready = true,
            _ => {}
        }
    }

    fn alert(&self, name: &str) -> &Alert {
        self.alerts
            .get(name)
            .unwrap_or_else(|| panic!("no alert {name}; have {:?}", self.alerts.keys()))
    }

    /// The metrics received for `cluster`.
    fn metrics_of(&self, cluster: &ClusterId) -> BTreeSet<MetricName> {
        self.metrics
            .keys()
            .filter(|(c, _)| c == cluster)
            .map(|(_, m)| *m)
            .collect()
    }
}

/// One CloudWatch source on LocalStack, and what it sent.
struct Running {
    handle: SourceHandle,
    events: mpsc::Receiver<SourceEvent>,
    /// The EKS source's cluster list, as the app hands it over.
    _clusters: watch::Sender<Vec<ClusterId>>,
    seen: Seen,
}

impl Running {
    async fn start(server: &LocalStack, clusters: Vec<ClusterId>) -> Self {
        let (tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (clusters_tx, clusters_rx) = watch::channel(clusters);
        let handle = cloudwatch::spawn(scope(server).await, Cloudwatch::default(), tx, clusters_rx);
        Self {
            handle,
            events,
            _clusters: clusters_tx,
            seen: Seen::default(),
        }
    }

    /// Takes events until `done` holds, or fails saying `what` was awaited.
    async fn until(&mut self, what: &str, timeout: Duration, done: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&self.seen) {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{what}: not within {timeout:?}; alerts {:?}, health {:?}",
                        self.seen
                            .alerts
                            .values()
                            .map(|a| (&a.name, a.state))
                            .collect::<Vec<_>>(),
                        self.seen.health
                    )
                })
                .expect("the source runs");
            self.seen.absorb(event);
        }
    }

    async fn focus(&self, cluster: Option<ClusterId>) {
        self.handle
            .commands
            .send(SourceCommand::Focus(cluster))
            .await
            .expect("the source takes commands");
    }
}

/// A metric-math alarm whose cluster is named only inside `Metrics[].MetricStat`: the
/// 5xx share of all requests of `cluster`.
async fn put_math_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, cluster: &str) -> String {
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
                            .dimensions(
                                Dimension::builder()
                                    .name("ClusterName")
                                    .value(cluster)
                                    .build(),
                            )
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .build()
    };
    cw.put_metric_alarm()
        .alarm_name(name)
        .evaluation_periods(1)
        .threshold(0.05)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .metrics(stat("errors", "apiserver_request_total_5XX"))
        .metrics(stat("total", "apiserver_request_total"))
        .metrics(
            MetricDataQuery::builder()
                .id("share")
                .expression("errors / total")
                .return_data(true)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_metric_alarm {name}: {e:?}"));
    alarm_arn(REGION, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_become_alerts_on_their_cluster_with_severity_and_state() {
    let server = LocalStack::start();
    let cw = server.cloudwatch(REGION);
    // A metric alarm on a cluster's dimension, tagged critical, firing.
    let spec = MetricAlarmSpec::new("prod-a-5xx", "apiserver_request_total_5XX")
        .cluster("prod-a")
        .tags(&[
            ("severity", "critical"),
            ("runbook_url", "https://runbooks.example.com/5xx.md"),
        ]);
    put_metric_alarm(&cw, REGION, &spec).await;
    set_alarm_state(
        &cw,
        "prod-a-5xx",
        StateValue::Alarm,
        "5xx above 1% for 1 minute",
    )
    .await;
    // No dimension: the cluster tag (an EKS ARN) names the cluster; resolved.
    let spec = MetricAlarmSpec::new(
        "prod-b-latency",
        "apiserver_request_duration_seconds_GET_P99",
    )
    .tags(&[
        (
            "eks:cluster-name",
            "arn:aws:eks:us-east-1:000000000000:cluster/prod-b",
        ),
        ("severity", "info"),
    ]);
    put_metric_alarm(&cw, REGION, &spec).await;
    set_alarm_state(
        &cw,
        "prod-b-latency",
        StateValue::Ok,
        "latency back under 1 s",
    )
    .await;
    // Never evaluated: INSUFFICIENT_DATA; no severity tag; the runbook in the description.
    let spec = MetricAlarmSpec::new("prod-c-etcd", "apiserver_storage_size_bytes")
        .cluster("prod-c")
        .description("etcd near its quota. Runbook: https://runbooks.example.com/etcd.md.");
    put_metric_alarm(&cw, REGION, &spec).await;
    // A composite alarm has no metric: only its tag ties it to a cluster.
    put_composite_alarm(
        &cw,
        REGION,
        "prod-a-control-plane",
        r#"ALARM("prod-a-5xx") OR ALARM("prod-b-latency")"#,
        &[("eks:cluster-name", "prod-a"), ("severity", "WARN")],
    )
    .await;
    set_alarm_state(
        &cw,
        "prod-a-control-plane",
        StateValue::Alarm,
        "prod-a-5xx firing",
    )
    .await;
    // Metric math: the cluster is inside Metrics[]; tagged after it was created.
    let math = put_math_alarm(&cw, "prod-d-5xx-share", "prod-d").await;
    tag_resource(&cw, &math, &[("severity", "critical")]).await;
    // Nothing ties this one to a cluster: an account-wide alert.
    put_metric_alarm(
        &cw,
        REGION,
        &MetricAlarmSpec::new(
            "account-webhooks",
            "apiserver_admission_webhook_rejection_count",
        ),
    )
    .await;

    let mut source = Running::start(&server, vec![]).await;
    source
        .until("the first alarm poll", READY_TIMEOUT, |s| {
            s.ready && s.alerts.len() == 6
        })
        .await;
    let seen = &source.seen;

    let a = seen.alert("prod-a-5xx");
    assert_eq!(a.cluster, Some(cluster("prod-a")));
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.summary, "5xx above 1% for 1 minute");
    assert_eq!(
        a.runbook_url.as_deref(),
        Some("https://runbooks.example.com/5xx.md")
    );
    assert_eq!(a.labels["alarm_type"], "MetricAlarm");
    assert_eq!(a.labels["namespace"], "AWS/EKS");
    assert_eq!(a.labels["metric_name"], "apiserver_request_total_5XX");
    assert_eq!(a.labels["alarm_arn"], alarm_arn(REGION, "prod-a-5xx"));

    let b = seen.alert("prod-b-latency");
    assert_eq!(b.cluster, Some(cluster("prod-b")));
    assert_eq!(b.severity, Severity::Info);
    assert_eq!(b.state, AlertState::Resolved);

    let c = seen.alert("prod-c-etcd");
    assert_eq!(c.cluster, Some(cluster("prod-c")));
    assert_eq!(c.severity, Severity::Warning, "the default severity");
    assert_eq!(c.state, AlertState::Unknown, "INSUFFICIENT_DATA");
    assert_eq!(
        c.runbook_url.as_deref(),
        Some("https://runbooks.example.com/etcd.md")
    );

    let composite = seen.alert("prod-a-control-plane");
    assert_eq!(composite.cluster, Some(cluster("prod-a")));
    assert_eq!(composite.severity, Severity::Warning);
    assert_eq!(composite.state, AlertState::Firing);
    assert_eq!(composite.labels["alarm_type"], "CompositeAlarm");

    let share = seen.alert("prod-d-5xx-share");
    assert_eq!(share.cluster, Some(cluster("prod-d")));
    assert_eq!(share.severity, Severity::Critical);
    assert_eq!(share.labels["metric_name"], "apiserver_request_total_5XX");

    let account_wide = seen.alert("account-webhooks");
    assert_eq!(account_wide.cluster, None);
    assert_eq!(account_wide.severity, Severity::Warning);

    let health = seen.health.as_ref().expect("a health report");
    assert_eq!(health.name, format!("cloudwatch:{ACCOUNT}/{REGION}"));
    assert!(health.last_ok.is_some(), "{health:?}");
    assert_eq!(health.last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_alarms_is_listed() {
    let server = LocalStack::start();
    let cw = server.cloudwatch(REGION);
    const ALARMS: usize = 230;
    for i in 0..ALARMS {
        let name = format!("c{i:03}-5xx");
        let cluster_name = format!("c{i:03}");
        let spec =
            MetricAlarmSpec::new(&name, "apiserver_request_total_5XX").cluster(&cluster_name);
        put_metric_alarm(&cw, REGION, &spec).await;
    }
    // The scene really is three pages of 100 at most, as CloudWatch pages.
    let first = cw
        .describe_alarms()
        .max_records(100)
        .send()
        .await
        .expect("describe_alarms");
    assert_eq!(first.metric_alarms().len(), 100);
    assert!(first.next_token().is_some(), "a second page follows");

    let mut source = Running::start(&server, vec![]).await;
    source
        .until("the first alarm poll", READY_TIMEOUT, |s| s.ready)
        .await;
    let seen = &source.seen;
    assert_eq!(seen.alerts.len(), ALARMS, "every alarm of every page");
    for i in [0, 99, 100, 199, 200, ALARMS - 1] {
        let alert = seen.alert(&format!("c{i:03}-5xx"));
        assert_eq!(alert.cluster, Some(cluster(&format!("c{i:03}"))));
        assert_eq!(alert.state, AlertState::Unknown);
    }
    let health = seen.health.as_ref().expect("a health report");
    assert_eq!(health.last_error, None);
    assert!(health.calls >= 3, "three DescribeAlarms pages: {health:?}");
}

/// Two points a minute for two minutes of every metric of `cluster`: `base` and `base + 1`,
/// so a `Sum` (`2 * base + 1`) and a `Maximum` (`base + 1`) tell apart.
async fn publish_every_metric(cw: &aws_sdk_cloudwatch::Client, cluster: &str, minutes: &[i64]) {
    for (i, metric) in MetricName::ALL.iter().enumerate() {
        let base = base_value(i);
        let points: Vec<(i64, f64)> = minutes
            .iter()
            .flat_map(|m| [(m * 60 + 5, base), (m * 60 + 35, base + 1.0)])
            .collect();
        put_metric_data(cw, cluster, metric.cloudwatch_name(), &points).await;
    }
}

fn base_value(metric_index: usize) -> f64 {
    (metric_index as f64 + 1.0) * 10.0
}

/// What the source should report for one minute of `publish_every_metric`.
fn expected_value(metric: MetricName) -> f32 {
    let base = base_value(metric.index());
    match metric.statistic() {
        "Sum" => (2.0 * base + 1.0) as f32,
        _ => (base + 1.0) as f32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_metrics_for_every_cluster_and_every_metric_for_the_one_on_screen() {
    let server = LocalStack::start();
    let cw = server.cloudwatch(REGION);
    let now_minute = chrono::Utc::now().timestamp().div_euclid(60);
    let minutes = [now_minute - 3, now_minute - 2];
    publish_every_metric(&cw, "prod-a", &minutes).await;
    publish_every_metric(&cw, "prod-b", &minutes).await;

    let (a, b) = (cluster("prod-a"), cluster("prod-b"));
    let mut source = Running::start(&server, vec![a.clone(), b.clone()]).await;
    let summary: BTreeSet<MetricName> = MetricName::SUMMARY.into_iter().collect();
    source
        .until("the summary metrics of both clusters", READY_TIMEOUT, |s| {
            s.metrics_of(&a) == summary && s.metrics_of(&b) == summary
        })
        .await;
    for id in [&a, &b] {
        for metric in MetricName::SUMMARY {
            let points = &source.seen.metrics[&(id.clone(), metric)];
            let expected: BTreeMap<i64, f32> = minutes
                .iter()
                .map(|m| (*m, expected_value(metric)))
                .collect();
            assert_eq!(points, &expected, "{metric} of {id}");
        }
    }

    // The cluster on screen: every metric, at once.
    source.focus(Some(a.clone())).await;
    let all: BTreeSet<MetricName> = MetricName::ALL.into_iter().collect();
    source
        .until("every metric of the focused cluster", READY_TIMEOUT, |s| {
            s.metrics_of(&a) == all
        })
        .await;
    for metric in MetricName::ALL {
        let points = &source.seen.metrics[&(a.clone(), metric)];
        for m in minutes {
            assert_eq!(points.get(&m), Some(&expected_value(metric)), "{metric}");
        }
    }
    assert_eq!(
        source.seen.metrics_of(&b),
        summary,
        "the cluster not on screen keeps only its summary"
    );
    let health = source.seen.health.as_ref().expect("a health report");
    assert_eq!(health.last_error, None);
    let cost = health.cost_usd_per_hour.expect("GetMetricData cost shown");
    assert!(cost > 0.0, "{cost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_changes_state_between_two_polls_is_sent_again() {
    let server = LocalStack::start();
    let cw = server.cloudwatch(REGION);
    put_metric_alarm(
        &cw,
        REGION,
        &MetricAlarmSpec::new("prod-a-5xx", "apiserver_request_total_5XX").cluster("prod-a"),
    )
    .await;
    set_alarm_state(&cw, "prod-a-5xx", StateValue::Ok, "all quiet").await;
    put_metric_alarm(
        &cw,
        REGION,
        &MetricAlarmSpec::new("prod-a-old", "scheduler_pending_pods").cluster("prod-a"),
    )
    .await;

    let mut source = Running::start(&server, vec![]).await;
    source
        .until("the first alarm poll", READY_TIMEOUT, |s| {
            s.ready && s.alerts.len() == 2
        })
        .await;
    let before = source.seen.alert("prod-a-5xx").clone();
    assert_eq!(before.state, AlertState::Resolved);

    set_alarm_state(&cw, "prod-a-5xx", StateValue::Alarm, "5xx above 5%").await;
    cw.delete_alarms()
        .alarm_names("prod-a-old")
        .send()
        .await
        .expect("delete_alarms");
    source
        .until("the next alarm poll", NEXT_POLL_TIMEOUT, |s| {
            s.alerts
                .get("prod-a-5xx")
                .is_some_and(|a| a.state == AlertState::Firing)
                && s.gone.contains("prod-a-old")
        })
        .await;
    let after = source.seen.alert("prod-a-5xx");
    assert_eq!(after.cluster, Some(cluster("prod-a")));
    assert_eq!(after.summary, "5xx above 5%");
    assert!(after.last_change >= before.last_change);
    assert_eq!(after.key, before.key, "the same alert, not a new one");
}

// ---- the binary: each service of one account at its own endpoint ----

/// A closed port: connections to it are refused at once.
const REFUSED: &str = "http://127.0.0.1:1";

/// Clusters in moto (EKS) and alarms in LocalStack (CloudWatch): the two halves of one
/// account, each on its own loopback endpoint.
async fn split_scene() -> (MotoServer, LocalStack) {
    let eks = MotoServer::start();
    create_clusters(
        &eks,
        REGION,
        &[ClusterSpec {
            name: "prod-a",
            version: "1.31",
            tags: &[("env", "prod")],
        }],
    )
    .await;
    let cloudwatch = LocalStack::start();
    let cw = cloudwatch.cloudwatch(REGION);
    let spec = MetricAlarmSpec::new("prod-a-5xx", "apiserver_request_total_5XX")
        .cluster("prod-a")
        .tags(&[("severity", "critical")]);
    put_metric_alarm(&cw, REGION, &spec).await;
    set_alarm_state(&cw, "prod-a-5xx", StateValue::Alarm, "5xx above 1%").await;
    (eks, cloudwatch)
}

/// The isolated binary with test credentials and no instance metadata.
fn fleetdeck(home: &Path) -> assert_cmd::Command {
    let mut cmd = common::binary(home);
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(120));
    cmd
}

fn write_config(home: &Path, account_extra: &str) -> PathBuf {
    let path = home.join("fleet.toml");
    let text =
        format!("[[accounts]]\nname = \"{ACCOUNT}\"\nregions = [\"{REGION}\"]\n{account_extra}\n");
    std::fs::write(&path, text).expect("config written");
    path
}

/// `fleetdeck snapshot --format json` as `cmd` runs it, in a blocking thread.
async fn snapshot(mut cmd: assert_cmd::Command, config: PathBuf) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        cmd.args(["snapshot", "--format", "json", "--config"])
            .arg(&config)
            .output()
            .expect("snapshot ran")
    })
    .await
    .expect("snapshot thread");
    assert!(
        out.status.success(),
        "snapshot failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// The clusters; the alerts (name, cluster, severity, state); the AWS sources (name,
/// healthy, last error).
type Picture = (
    Vec<String>,
    Vec<[String; 4]>,
    Vec<(String, bool, Option<String>)>,
);

/// What a user reads in the snapshot.
fn picture(doc: &Value) -> Picture {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let clusters = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| text(&c["name"]))
        .collect();
    let alerts = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            [
                text(&a["name"]),
                text(&a["cluster"]),
                text(&a["severity"]),
                text(&a["state"]),
            ]
        })
        .collect();
    let sources = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("eks:") || n.starts_with("cloudwatch:"))
        })
        .map(|s| {
            (
                text(&s["name"]),
                s["healthy"].as_bool().unwrap_or(false),
                s["last_error"].as_str().map(str::to_string),
            )
        })
        .collect();
    (clusters, alerts, sources)
}

fn assert_both_halves(doc: &Value) {
    let (clusters, alerts, sources) = picture(doc);
    assert_eq!(clusters, ["prod-a"], "EKS read from moto: {doc:#}");
    assert_eq!(
        alerts,
        [["prod-a-5xx", "prod-a", "critical", "firing"].map(String::from)],
        "CloudWatch read from LocalStack: {doc:#}"
    );
    assert_eq!(
        sources,
        [
            (format!("cloudwatch:{ACCOUNT}/{REGION}"), true, None),
            (format!("eks:{ACCOUNT}/{REGION}"), true, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_per_service_endpoint_variables_are_honoured() {
    let (eks, cloudwatch) = split_scene().await;
    let home = tempfile::tempdir().expect("tempdir");
    // The config names no endpoint: the environment's per-service ones must be used.
    let config = write_config(home.path(), "");
    let mut cmd = fleetdeck(home.path());
    cmd.env("AWS_ENDPOINT_URL_EKS", eks.endpoint())
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.endpoint());
    assert_both_halves(&snapshot(cmd, config).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_sends_each_service_of_an_account_to_its_own_endpoint() {
    let (eks, cloudwatch) = split_scene().await;
    let home = tempfile::tempdir().expect("tempdir");
    // Per-service endpoints beat the account's `endpoint_url` and the environment.
    let config = write_config(
        home.path(),
        &format!(
            "endpoint_url = \"{REFUSED}\"\n[accounts.endpoints]\neks = \"{}\"\ncloudwatch = \"{}\"",
            eks.endpoint(),
            cloudwatch.endpoint()
        ),
    );
    let mut cmd = fleetdeck(home.path());
    cmd.env("AWS_ENDPOINT_URL_EKS", REFUSED)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", REFUSED);
    assert_both_halves(&snapshot(cmd, config).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_the_config_leaves_out_still_follows_the_environment() {
    let (eks, cloudwatch) = split_scene().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        home.path(),
        &format!(
            "[accounts.endpoints]\ncloudwatch = \"{}\"",
            cloudwatch.endpoint()
        ),
    );
    let mut cmd = fleetdeck(home.path());
    cmd.env("AWS_ENDPOINT_URL_EKS", eks.endpoint());
    assert_both_halves(&snapshot(cmd, config).await);
}
