//! LocalStack's CloudWatch as a test fixture: started on a free loopback port with every
//! file it writes inside a temp dir, its whole process group killed on drop.
//!
//! aws-sdk-cloudwatch speaks Smithy RPC-v2 CBOR, which moto does not serve; LocalStack
//! does. The runtime is `$FLEETDECK_LOCALSTACK_PYTHON -m localstack.runtime.main`, the
//! virtualenv `scripts/test` installs (LocalStack needs Python >= 3.12). Without it the
//! tests fail and say so: a CloudWatch test that silently skips would look like a pass.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic, Tag,
};
use aws_smithy_types::DateTime;

/// How long LocalStack may take to say CloudWatch is up (a cold Python start of a large
/// package on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The account id LocalStack gives every resource when the access key is not an id.
pub const ACCOUNT_ID: &str = "000000000000";

/// Loaded by LocalStack's Python at start (through `PYTHONPATH`): LocalStack 2026.3.0
/// answers DescribeAlarms with every alarm at once, ignoring `MaxRecords` and `NextToken`
/// (`provider_v2.py`: "TODO: Pagination"). Real CloudWatch pages, so the emulator is made to
/// page as CloudWatch does, and a client's paging is exercised.
const PAGING_PATCH: &str = r#"
def _paginate_describe_alarms():
    from localstack.aws.api.cloudwatch import DescribeAlarmsOutput
    from localstack.services.cloudwatch import provider_v2

    provider = provider_v2.CloudwatchProvider
    unpaged = provider.describe_alarms

    def describe_alarms(self, context, *args, max_records=None, next_token=None, **kwargs):
        out = unpaged(self, context, *args, **kwargs)
        items = sorted(
            [("MetricAlarms", a) for a in out.get("MetricAlarms") or []]
            + [("CompositeAlarms", a) for a in out.get("CompositeAlarms") or []],
            key=lambda item: item[1]["AlarmName"],
        )
        start = int(next_token or 0)
        end = start + (max_records or 50)
        page = items[start:end]
        paged = DescribeAlarmsOutput(
            MetricAlarms=[a for kind, a in page if kind == "MetricAlarms"],
            CompositeAlarms=[a for kind, a in page if kind == "CompositeAlarms"],
        )
        if end < len(items):
            paged["NextToken"] = str(end)
        return paged

    provider.describe_alarms = describe_alarms


_paginate_describe_alarms()
"#;

/// A running LocalStack serving CloudWatch; its process group is killed when dropped.
pub struct LocalStack {
    child: Child,
    port: u16,
    /// Holds LocalStack's home, data, tmp and cache, and its log.
    dir: tempfile::TempDir,
}

/// The Python of LocalStack's virtualenv, or a message saying how to get one.
fn python() -> PathBuf {
    let Some(path) = std::env::var_os("FLEETDECK_LOCALSTACK_PYTHON").filter(|p| !p.is_empty())
    else {
        panic!(
            "FLEETDECK_LOCALSTACK_PYTHON is not set: run the tests with ./scripts/test, which \
             installs LocalStack (it needs Python >= 3.12) into a virtualenv and sets it, or set \
             it to the python of a virtualenv with localstack-core[base-runtime] installed"
        )
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "FLEETDECK_LOCALSTACK_PYTHON={} does not exist; run ./scripts/test, which installs \
         LocalStack",
        path.display()
    );
    path
}

/// A port nobody listens on right now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl LocalStack {
    /// Starts LocalStack with only CloudWatch on 127.0.0.1 and waits until its health
    /// endpoint says CloudWatch is available.
    pub fn start() -> Self {
        let python = python();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let [home, tmp, cache, volume, filesystem, patches] =
            ["home", "tmp", "cache", "volume", "filesystem", "python"].map(|d| {
                let path = root.join(d);
                std::fs::create_dir_all(&path).expect("LocalStack directory");
                path
            });
        std::fs::write(patches.join("sitecustomize.py"), PAGING_PATCH).expect("paging patch");
        let log = std::fs::File::create(root.join("localstack.log")).expect("log file");
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "localstack.runtime.main"])
            .env_clear()
            // Its own directories, so nothing is written outside the temp dir: state, certs
            // and libraries under FILESYSTEM_ROOT; Python's tempfile under TMPDIR; plugin
            // caches under XDG_CACHE_HOME; ~/.localstack (config) under HOME.
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("TMPDIR", &tmp)
            .env("XDG_CACHE_HOME", &cache)
            .env("LOCALSTACK_VOLUME_DIR", &volume)
            .env("FILESYSTEM_ROOT", &filesystem)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONPATH", &patches)
            // A container (as CI is) would otherwise make it use /var/lib/localstack.
            .env("OVERRIDE_IN_DOCKER", "0")
            .env("SERVICES", "cloudwatch")
            .env("GATEWAY_SERVER", "hypercorn")
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("DNS_ADDRESS", "0")
            .env("LOCALSTACK_CLI", "0")
            // No network but loopback: no analytics, no certificate download.
            .env("DISABLE_EVENTS", "1")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            // Its own process group, so drop can kill whatever it started too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut server = Self { child, port, dir };
        server.wait_until_up();
        server
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match self.health() {
                Ok(body) if cloudwatch_is_up(&body) => return,
                Ok(body) => body,
                Err(e) => e,
            };
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "LocalStack did not start CloudWatch on port {} ({}); last health answer: \
                     {last}\n--- LocalStack's log ---\n{}",
                    self.port,
                    exited.map_or("timed out".to_string(), |s| s.to_string()),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The body of `GET /_localstack/health`.
    fn health(&self) -> Result<String, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET /_localstack/health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        Ok(response
            .split_once("\r\n\r\n")
            .map_or(response.as_str(), |(_, body)| body)
            .to_string())
    }

    /// What LocalStack has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("localstack.log")).unwrap_or_default()
    }

    /// The temp dir holding everything LocalStack writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A CloudWatch client for `region` on this server, to set the scene.
    pub fn cloudwatch(&self, region: &str) -> Client {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        Client::from_conf(config)
    }
}

/// Whether a health answer says CloudWatch is available or running.
fn cloudwatch_is_up(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["services"]["cloudwatch"].as_str().map(str::to_string))
        .is_some_and(|s| s == "available" || s == "running")
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // The whole group: LocalStack may have started helpers of its own. Already gone is
        // fine; there is nothing else to do about a kill that fails.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ARN LocalStack gives alarm `name` in `region`.
pub fn alarm_arn(region: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{name}")
}

/// One metric alarm to create.
#[derive(Clone, Debug)]
pub struct MetricAlarmSpec<'a> {
    pub name: &'a str,
    /// An `AWS/EKS` metric name.
    pub metric: &'a str,
    /// The `ClusterName` dimension, if any.
    pub cluster: Option<&'a str>,
    /// A percentile such as `p99`: LocalStack does not evaluate such alarms, so a state set
    /// with `set_alarm_state` stays. `None` uses the `Maximum` statistic, which LocalStack
    /// re-evaluates every period.
    pub extended_statistic: Option<&'a str>,
    pub threshold: f64,
    pub description: Option<&'a str>,
    pub tags: &'a [(&'a str, &'a str)],
}

impl<'a> MetricAlarmSpec<'a> {
    /// A p99 alarm on `metric` (not evaluated by LocalStack), no cluster, no tags.
    pub fn new(name: &'a str, metric: &'a str) -> Self {
        Self {
            name,
            metric,
            cluster: None,
            extended_statistic: Some("p99"),
            threshold: 1.0,
            description: None,
            tags: &[],
        }
    }

    pub fn cluster(mut self, cluster: &'a str) -> Self {
        self.cluster = Some(cluster);
        self
    }

    pub fn tags(mut self, tags: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = tags;
        self
    }

    /// Evaluated by LocalStack every `period` (60 s) on the `Maximum` statistic.
    pub fn evaluated(mut self) -> Self {
        self.extended_statistic = None;
        self
    }

    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    pub fn description(mut self, description: &'a str) -> Self {
        self.description = Some(description);
        self
    }
}

fn tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// Creates a metric alarm in the `AWS/EKS` namespace, 1-minute period; returns its ARN.
pub async fn put_metric_alarm(cw: &Client, region: &str, spec: &MetricAlarmSpec<'_>) -> String {
    let mut req = cw
        .put_metric_alarm()
        .alarm_name(spec.name)
        .namespace("AWS/EKS")
        .metric_name(spec.metric)
        .period(60)
        .evaluation_periods(1)
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .set_alarm_description(spec.description.map(str::to_string))
        .set_tags(Some(tags(spec.tags)).filter(|t| !t.is_empty()));
    req = match spec.extended_statistic {
        Some(p) => req.extended_statistic(p),
        None => req.statistic(Statistic::Maximum),
    };
    if let Some(cluster) = spec.cluster {
        req = req.dimensions(
            Dimension::builder()
                .name("ClusterName")
                .value(cluster)
                .build(),
        );
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("put_metric_alarm {}: {e:?}", spec.name));
    alarm_arn(region, spec.name)
}

/// Creates a composite alarm with `rule` (e.g. `ALARM("a") OR ALARM("b")`); returns its ARN.
pub async fn put_composite_alarm(
    cw: &Client,
    region: &str,
    name: &str,
    rule: &str,
    tag_list: &[(&str, &str)],
) -> String {
    cw.put_composite_alarm()
        .alarm_name(name)
        .alarm_rule(rule)
        .actions_enabled(false)
        .set_tags(Some(tags(tag_list)).filter(|t| !t.is_empty()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_composite_alarm {name}: {e:?}"));
    alarm_arn(region, name)
}

/// Sets an alarm's state by hand, as `aws cloudwatch set-alarm-state` does.
pub async fn set_alarm_state(cw: &Client, name: &str, state: StateValue, reason: &str) {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .unwrap_or_else(|e| panic!("set_alarm_state {name}: {e:?}"));
}

/// Adds tags to an alarm after it was created.
pub async fn tag_resource(cw: &Client, arn: &str, tag_list: &[(&str, &str)]) {
    cw.tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags(tag_list)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("tag_resource {arn}: {e:?}"));
}

/// Publishes points of an `AWS/EKS` metric of `cluster`: `(unix seconds, value)`.
pub async fn put_metric_data(cw: &Client, cluster: &str, metric: &str, points: &[(i64, f64)]) {
    // PutMetricData takes at most 1000 data points a call.
    for chunk in points.chunks(1000) {
        let data = chunk
            .iter()
            .map(|(at, value)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        Dimension::builder()
                            .name("ClusterName")
                            .value(cluster)
                            .build(),
                    )
                    .timestamp(DateTime::from_secs(*at))
                    .value(*value)
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace("AWS/EKS")
            .set_metric_data(Some(data))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put_metric_data {metric} of {cluster}: {e:?}"));
    }
}
