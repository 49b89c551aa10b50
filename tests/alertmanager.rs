//! The Alertmanager source against real Alertmanagers (Debian's `prometheus-alertmanager`)
//! on 127.0.0.1, clustering off: alerts posted as Prometheus would, read through fleetdeck
//! into a `Store`; acks through the normal action path (authorize, audit, execute) checked
//! in Alertmanager itself; an HA pair deduplicated; a stopped Alertmanager going stale and
//! recovering; and the binary's `snapshot --format json`.

mod am_server;
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use am_server::AlertmanagerServer;
use fleetdeck::actions::{self, Action, AuditLog, ExecContext, Mode};
use fleetdeck::clock::Clock;
use fleetdeck::config::AlertmanagerConfig;
use fleetdeck::model::{AckKind, Alert, AlertSource, SourceEvent, SourceStatus, Store};
use fleetdeck::sources::SourceHandle;
use fleetdeck::sources::alertmanager::{self, Alertmanagers, Client, Member};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Polls this often here (30 s in the product), so staleness shows within seconds.
const POLL: Duration = Duration::from_millis(400);
/// How long a condition may take to show up in the store.
const WAIT: Duration = Duration::from_secs(20);

fn config(name: &str, url: &str) -> AlertmanagerConfig {
    AlertmanagerConfig {
        name: name.into(),
        url: url.into(),
        cluster_label: "cluster".into(),
        sigv4: None,
    }
}

/// The source over `servers` (named `am-0`, `am-1`...), and the events it sends.
fn source(servers: &[&AlertmanagerServer]) -> (SourceHandle, mpsc::Receiver<SourceEvent>) {
    let members = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = format!("am-{i}");
            let client = Client::new(&name, &s.url(), None).with_timeout(Duration::from_secs(2));
            Member::new(&config(&name, &s.url()), client, POLL)
        })
        .collect();
    let (tx, rx) = mpsc::channel(256);
    let handle = alertmanager::spawn_with(Alertmanagers::new(members), POLL, Clock::Wall, tx);
    (handle, rx)
}

/// Folds events into `store` until `done` holds, or fails saying what was awaited.
async fn until(
    store: &mut Store,
    events: &mut mpsc::Receiver<SourceEvent>,
    what: &str,
    done: impl Fn(&Store) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(store) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => store.apply(event, chrono::Utc::now()),
            _ => {
                let alerts: Vec<String> = store
                    .alerts()
                    .map(|a| format!("{} {:?} ack={:?}", a.key, a.state, a.ack))
                    .collect();
                let sources: Vec<String> = store
                    .sources()
                    .map(|s| format!("{} ok={:?} err={:?}", s.name, s.last_ok, s.last_error))
                    .collect();
                panic!("timed out waiting for {what}; alerts: {alerts:#?}; sources: {sources:#?}");
            }
        }
    }
}

fn firing<'a>(store: &'a Store, name: &str) -> Vec<&'a Alert> {
    store
        .alerts()
        .filter(|a| a.name == name && a.is_firing())
        .collect()
}

fn the_alert(store: &Store, name: &str) -> Alert {
    let found = firing(store, name);
    assert_eq!(found.len(), 1, "exactly one {name}: {found:#?}");
    found[0].clone()
}

/// Three alerts: a critical one with a runbook, a warning it inhibits, one elsewhere.
fn scene_alerts() -> Value {
    json!([
        {
            "labels": {"alertname": "KubeAPIErrorsHigh", "cluster": "prod-use1-checkout-01",
                       "severity": "critical", "namespace": "kube-system"},
            "annotations": {"summary": "API server 5xx above 5%",
                            "runbook_url": "https://runbooks.example.com/KubeAPIErrorsHigh"},
            "generatorURL": "http://prometheus.example.com/graph"
        },
        {
            "labels": {"alertname": "KubePodCrashLooping", "cluster": "prod-use1-checkout-01",
                       "severity": "warning", "pod": "api-7d9f"},
            "annotations": {"description": "pod api-7d9f is crash looping"}
        },
        {
            "labels": {"alertname": "NodeFilesystemAlmostFull", "cluster": "dev-euw1-edge-01",
                       "severity": "warning"},
            "annotations": {"summary": "/var is 91% full"}
        }
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_alerts_are_read_with_their_runbooks_and_inhibitions() {
    let am = AlertmanagerServer::start();
    am.post_alerts(scene_alerts()).await;
    let (_handle, mut events) = source(&[&am]);
    let mut store = Store::new();
    until(
        &mut store,
        &mut events,
        "three alerts, one inhibited",
        |s| {
            s.alerts().filter(|a| a.is_firing()).count() == 3
                && firing(s, "KubePodCrashLooping")
                    .first()
                    .is_some_and(|a| a.ack.is_some())
        },
    )
    .await;

    let api = the_alert(&store, "KubeAPIErrorsHigh");
    assert_eq!(api.source, AlertSource::Alertmanager);
    assert_eq!(api.severity.as_str(), "critical");
    assert_eq!(api.summary, "API server 5xx above 5%");
    assert_eq!(
        api.runbook_url.as_deref(),
        Some("https://runbooks.example.com/KubeAPIErrorsHigh")
    );
    assert_eq!(
        api.cluster.as_ref().map(|c| c.name.as_str()),
        Some("prod-use1-checkout-01")
    );
    assert_eq!(api.ack, None, "active, nobody acked it");

    let pod = the_alert(&store, "KubePodCrashLooping");
    assert_eq!(pod.summary, "pod api-7d9f is crash looping");
    let ack = pod.ack.expect("inhibited");
    assert!(
        matches!(ack.kind, AckKind::Inhibited { ref by } if by.len() == 1),
        "{ack:?}"
    );
    assert!(pod_dimmed(&store));

    let health: Vec<_> = store.sources().collect();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].name, "alertmanager:am-0");
    assert_eq!(health[0].status(chrono::Utc::now()), SourceStatus::Ok);
}

fn pod_dimmed(store: &Store) -> bool {
    firing(store, "KubePodCrashLooping")
        .first()
        .is_some_and(|a| a.is_suppressed(chrono::Utc::now()))
}

/// An operator's executor: audit log in `dir`, the source as its only target.
fn exec(dir: &Path, handle: &SourceHandle) -> ExecContext {
    ExecContext {
        audit: Some(Arc::new(
            AuditLog::open(&dir.join("audit.jsonl")).expect("audit log"),
        )),
        sources: vec![handle.clone()],
        mode: Mode::Operator,
        os_user: "alice".into(),
        identity: "test".into(),
        clock: Clock::Wall,
        relay: false,
        remote: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_is_a_silence_with_exact_matchers_and_its_author_and_unack_expires_it() {
    let am = AlertmanagerServer::start();
    am.post_alerts(scene_alerts()).await;
    let (handle, mut events) = source(&[&am]);
    let mut store = Store::new();
    until(&mut store, &mut events, "the filesystem alert", |s| {
        firing(s, "NodeFilesystemAlmostFull").len() == 1
    })
    .await;
    let alert = the_alert(&store, "NodeFilesystemAlmostFull");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = exec(dir.path(), &handle);

    let action = Action::ack(&alert, 90);
    let authorized = actions::authorize(Mode::Operator, None, action).expect("operator may ack");
    let before = chrono::Utc::now();
    let outcome = actions::execute(authorized, ctx.clone(), alertmanager::SOURCE_NAME).await;
    assert!(outcome.ok, "{}", outcome.message);
    assert!(
        outcome
            .message
            .starts_with("silenced in am-0 for 1h30m as "),
        "{}",
        outcome.message
    );

    // Alertmanager itself holds the silence, with the alert's labels as exact matchers.
    let silences = am.silences().await;
    assert_eq!(silences.len(), 1, "{silences:#?}");
    let s = &silences[0];
    assert_eq!(s["createdBy"], "alice");
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(
        s["comment"],
        "acknowledged in fleetdeck: NodeFilesystemAlmostFull"
    );
    let mut matchers: Vec<(String, String, bool, bool)> = s["matchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["value"].as_str().unwrap_or_default().to_string(),
                m["isRegex"].as_bool().unwrap_or(true),
                m["isEqual"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    matchers.sort();
    let want: Vec<(String, String, bool, bool)> = alert
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), false, true))
        .collect();
    assert_eq!(matchers, want);
    let ends = chrono::DateTime::parse_from_rfc3339(s["endsAt"].as_str().expect("endsAt"))
        .expect("time")
        .with_timezone(&chrono::Utc);
    let minutes = (ends - before).num_minutes();
    assert!((89..=90).contains(&minutes), "ends {minutes} minutes on");

    // The console shows it acked by alice until the silence ends; the others are untouched.
    until(&mut store, &mut events, "the ack", |s| {
        firing(s, "NodeFilesystemAlmostFull")
            .first()
            .is_some_and(|a| a.ack.as_ref().is_some_and(|k| k.by == "alice"))
    })
    .await;
    let acked = the_alert(&store, "NodeFilesystemAlmostFull");
    assert_eq!(acked.ack.as_ref().and_then(|a| a.until), Some(ends));
    assert_eq!(the_alert(&store, "KubeAPIErrorsHigh").ack, None);

    // The audit log holds the intent with its matchers, and the outcome.
    let (entries, bad) = actions::read_audit(&dir.path().join("audit.jsonl")).expect("audit");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action.kind(), "ack-alert");
    assert!(entries[0].outcome.as_ref().is_some_and(|o| o.ok));

    // Un-ack expires the silence in Alertmanager, and the alert is active again.
    let unack = actions::authorize(Mode::Operator, None, Action::unack(&acked)).expect("may");
    let outcome = actions::execute(unack, ctx, alertmanager::SOURCE_NAME).await;
    assert!(outcome.ok, "{}", outcome.message);
    let silences = am.silences().await;
    assert_eq!(silences[0]["status"]["state"], "expired", "{silences:#?}");
    until(&mut store, &mut events, "the ack withdrawn", |s| {
        firing(s, "NodeFilesystemAlmostFull")
            .first()
            .is_some_and(|a| a.ack.is_none())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_mode_cannot_silence() {
    let alert_action = Action::UnackAlert {
        alert: fleetdeck::model::AlertKey("alertmanager:-:x:f".into()),
        name: "x".into(),
        cluster: None,
        source: AlertSource::Alertmanager,
        silences: vec!["id".into()],
    };
    let denied = actions::authorize(Mode::Viewer, None, alert_action).expect_err("viewer");
    assert!(denied.reason.contains("read-only viewer mode"), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_held_by_two_alertmanagers_is_one_row() {
    let a = AlertmanagerServer::start();
    let b = AlertmanagerServer::start();
    // Prometheus sends every alert to both members of an HA pair.
    a.post_alerts(scene_alerts()).await;
    b.post_alerts(scene_alerts()).await;
    let (handle, mut events) = source(&[&a, &b]);
    let mut store = Store::new();
    until(&mut store, &mut events, "both Alertmanagers read", |s| {
        s.sources().count() == 2
            && s.sources().all(|h| h.last_ok.is_some())
            && s.alerts().filter(|a| a.is_firing()).count() == 3
    })
    .await;
    assert_eq!(store.alerts().count(), 3, "one row per alert");

    // A silence made through one is seen however the alert is held.
    let alert = the_alert(&store, "KubeAPIErrorsHigh");
    let dir = tempfile::tempdir().expect("tempdir");
    let authorized =
        actions::authorize(Mode::Operator, None, Action::ack(&alert, 60)).expect("may ack");
    let outcome = actions::execute(authorized, exec(dir.path(), &handle), "alertmanager").await;
    assert!(outcome.ok, "{}", outcome.message);
    assert_eq!(
        a.silences().await.len() + b.silences().await.len(),
        1,
        "one silence"
    );
    until(&mut store, &mut events, "the silenced row", |s| {
        firing(s, "KubeAPIErrorsHigh")
            .first()
            .is_some_and(|a| a.ack.as_ref().is_some_and(|k| k.by == "alice"))
    })
    .await;
    assert_eq!(store.alerts().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_alertmanager_goes_stale_keeps_its_alerts_and_recovers() {
    let mut a = AlertmanagerServer::start();
    let b = AlertmanagerServer::start();
    a.post_alerts(
        json!([{"labels": {"alertname": "OnlyInA", "cluster": "c1", "severity": "critical"}}]),
    )
    .await;
    b.post_alerts(json!([{"labels": {"alertname": "OnlyInB", "cluster": "c2"}}]))
        .await;
    let (_handle, mut events) = source(&[&a, &b]);
    let mut store = Store::new();
    until(&mut store, &mut events, "both alerts", |s| {
        firing(s, "OnlyInA").len() == 1 && firing(s, "OnlyInB").len() == 1
    })
    .await;

    let started = std::time::Instant::now();
    a.stop();
    let status = |s: &Store, name: &str| {
        s.sources()
            .find(|h| h.name == name)
            .map(|h| h.status(chrono::Utc::now()))
    };
    until(
        &mut store,
        &mut events,
        "am-0 failing, its alert marked stale",
        |s| {
            status(s, "alertmanager:am-0") == Some(SourceStatus::Failing)
                && firing(s, "OnlyInA")
                    .first()
                    .is_some_and(|a| a.summary.starts_with("stale: am-0 not answering"))
        },
    )
    .await;
    let health = store
        .sources()
        .find(|h| h.name == "alertmanager:am-0")
        .expect("health");
    let error = health.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "am-0: GET {}/api/v2/alerts/groups: cannot connect",
            a.url()
        )),
        "{error}"
    );
    // Its last alerts stay (stale with it); the other Alertmanager is untouched.
    assert_eq!(firing(&store, "OnlyInA").len(), 1);
    assert_eq!(firing(&store, "OnlyInB").len(), 1);
    assert_eq!(status(&store, "alertmanager:am-1"), Some(SourceStatus::Ok));
    assert_eq!(store.alert_sources_down(chrono::Utc::now()), (1, 2));

    // Back, with its alert re-sent by Prometheus: ok again.
    a.restart();
    a.post_alerts(
        json!([{"labels": {"alertname": "OnlyInA", "cluster": "c1", "severity": "critical"}}]),
    )
    .await;
    until(&mut store, &mut events, "am-0 recovered", |s| {
        status(s, "alertmanager:am-0") == Some(SourceStatus::Ok)
    })
    .await;
    until(&mut store, &mut events, "OnlyInA fresh again", |s| {
        firing(s, "OnlyInA")
            .first()
            .is_some_and(|a| a.summary == "OnlyInA")
    })
    .await;
    assert_eq!(
        firing(&store, "OnlyInB")[0].summary,
        "OnlyInB",
        "never marked"
    );
    assert_eq!(store.alert_sources_down(chrono::Utc::now()), (0, 2));
    eprintln!("stop, stale and recovery took {:?}", started.elapsed());
}

// ---- the binary: `fleetdeck snapshot --format json` ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_lists_alertmanager_alerts_with_their_silence_state() {
    let am = AlertmanagerServer::start();
    am.post_alerts(scene_alerts()).await;
    // A silence made in Alertmanager's own UI (here: its API) by someone else.
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "NodeFilesystemAlmostFull",
                      "isRegex": false, "isEqual": true}],
        "startsAt": chrono::Utc::now().to_rfc3339(),
        "endsAt": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
        "createdBy": "bob",
        "comment": "disk cleanup running"
    });
    am.client()
        .post_json(
            "/api/v2/silences",
            serde_json::to_vec(&silence).expect("json"),
        )
        .await
        .expect("silence posted");

    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[[alertmanagers]]\nname = \"prom\"\nurl = \"{}\"\n",
            am.url()
        ),
    )
    .expect("config");
    let home_path = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        common::binary(&home_path)
            .args(["snapshot", "--format", "json", "--config"])
            .arg(&config)
            .timeout(Duration::from_secs(90))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    })
    .await
    .expect("snapshot ran");
    let doc: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(
        doc["demo"], false,
        "a config naming an Alertmanager is real"
    );
    let alerts = doc["alerts"].as_array().expect("alerts");
    let by_name = |n: &str| {
        alerts
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing: {alerts:#?}"))
    };
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let fs = by_name("NodeFilesystemAlmostFull");
    assert_eq!(fs["source"], "alertmanager");
    assert_eq!(fs["cluster"], "dev-euw1-edge-01");
    assert_eq!(fs["ack"]["by"], "bob");
    assert_eq!(fs["ack"]["kind"], "silence");
    assert_eq!(fs["ack"]["comment"], "disk cleanup running");
    let pod = by_name("KubePodCrashLooping");
    assert_eq!(pod["ack"]["kind"], "inhibited");
    let api = by_name("KubeAPIErrorsHigh");
    assert_eq!(api["ack"], Value::Null);
    assert_eq!(
        api["runbook"],
        "https://runbooks.example.com/KubeAPIErrorsHigh"
    );
    let sources = doc["sources"].as_array().expect("sources");
    let prom = sources
        .iter()
        .find(|s| s["name"] == "alertmanager:prom")
        .unwrap_or_else(|| panic!("alertmanager:prom missing: {sources:#?}"));
    assert_eq!(prom["healthy"], true, "{prom}");
}

// ---- the console itself, in a pseudo-terminal: a keypress makes a silence ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_a_then_y_in_the_console_silences_the_alert_in_alertmanager() {
    use portable_pty::{PtySize, native_pty_system};
    use std::io::{Read, Write};

    let am = AlertmanagerServer::start();
    am.post_alerts(scene_alerts()).await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[[alertmanagers]]\nname = \"prom\"\nurl = \"{}\"\n[alerts]\nack_minutes = 45\n",
            am.url()
        ),
    )
    .expect("config");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 30,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = common::pty_command(home.path());
    cmd.arg("--config");
    cmd.arg(&config);
    let mut child = pair.slave.spawn_command(cmd).expect("spawn fleetdeck");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let output = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut out) = sink.lock() {
                out.extend_from_slice(&buf[..n]);
            }
        }
    });
    let mut keys = pair.master.take_writer().expect("writer");
    let deadline = std::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&output.lock().map(|o| o.clone()).unwrap_or_default())
        .contains("fleet (")
    {
        assert!(std::time::Instant::now() < deadline, "no first frame");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first poll happens at start, but a loaded machine may take a while: if the alert
    // was not listed yet, nothing happened, and the keys are tried again (an alert already
    // acked refuses a second ack, so this never makes two silences).
    while std::time::Instant::now() < deadline {
        for chunk in ["\x1b", "2", "/NodeFilesystemAlmostFull\r", "a", "y"] {
            keys.write_all(chunk.as_bytes()).expect("keys");
            keys.flush().expect("flush");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !am.silences().await.is_empty() {
            break;
        }
    }
    // A second round on the acked alert makes no second silence.
    for chunk in ["a", "y"] {
        keys.write_all(chunk.as_bytes()).expect("keys");
        keys.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let silences = am.silences().await;
    let _ = child.kill();
    assert_eq!(
        silences.len(),
        1,
        "a then y made one silence: {silences:#?}"
    );
    let s = &silences[0];
    let user = whoami::username().unwrap_or_default();
    assert_eq!(s["createdBy"], user.as_str());
    let names: Vec<&str> = s["matchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["alertname", "cluster", "severity"]);
    let starts = chrono::DateTime::parse_from_rfc3339(s["startsAt"].as_str().unwrap_or(""));
    let ends = chrono::DateTime::parse_from_rfc3339(s["endsAt"].as_str().unwrap_or(""));
    let minutes = match (starts, ends) {
        (Ok(a), Ok(b)) => (b - a).num_minutes(),
        other => panic!("bad times: {other:?}"),
    };
    assert!(
        (44..=45).contains(&minutes),
        "[alerts] ack_minutes = 45: {minutes}"
    );
    // The audit log in the data directory holds the intent and its outcome.
    let audit = home.path().join("data/fleetdeck/audit.jsonl");
    let (entries, _) = actions::read_audit(&audit).expect("audit");
    assert_eq!(entries.len(), 1, "{}", audit.display());
    assert!(entries[0].outcome.as_ref().is_some_and(|o| o.ok));
}
