//! Fleet-scale benches: store ingest, view render and filter/sort at 5,000 clusters.
//!
//! `cargo bench --bench fleet`. Targets (issue [7/7]): render median <= 2 ms per frame at
//! 200x60 with 5,000 clusters and 50,000 alerts; filter and sort of 5,000 clusters per
//! keystroke <= 1 ms; ingest >= 1M events/s.

use std::hint::black_box;

use chrono::TimeDelta;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::actions::Mode;
use fleetdeck::app::{App, Setup};
use fleetdeck::clock::Clock;
use fleetdeck::engine::{Engine, cache};
use fleetdeck::model::{
    Alert, AlertKey, AlertSource, AlertState, ClusterFilter, ClusterId, MetricName, MetricSample,
    Severity, SortKey, SourceEvent, Store, Timestamp,
};
use fleetdeck::sources::demo::{DemoFleet, DemoOptions};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const CLUSTERS: usize = 5_000;
const ALERTS: usize = 50_000;
const BURST: usize = 100_000;

fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

fn options() -> DemoOptions {
    DemoOptions {
        seed: 7,
        clusters: CLUSTERS,
        speed: 10.0,
    }
}

/// The demo fleet's first picture at 5,000 clusters.
fn demo_events() -> Vec<SourceEvent> {
    DemoFleet::new(&options(), t0()).initial_events()
}

const NAMES: [&str; 10] = [
    "eks-apiserver-5xx-high",
    "eks-apiserver-p99-latency-high",
    "etcd-db-size-near-quota",
    "KubePodCrashLooping",
    "KubeNodeNotReady",
    "CoreDNSErrorsHigh",
    "KubeAPIErrorBudgetBurn",
    "KubeletTooManyPods",
    "TargetDown",
    "KubeDeploymentReplicasMismatch",
];

/// `n` alerts spread over the clusters: ten names per cluster, a third resolved.
fn alerts(ids: &[ClusterId], n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let cluster = &ids[i % ids.len()];
            let name = NAMES[(i / ids.len()) % NAMES.len()];
            Alert {
                key: AlertKey::new(
                    AlertSource::Alertmanager,
                    Some(cluster),
                    name,
                    &i.to_string(),
                ),
                source: AlertSource::Alertmanager,
                cluster: Some(cluster.clone()),
                name: name.to_string(),
                severity: [Severity::Critical, Severity::Warning, Severity::Info][i % 3],
                state: if i % 3 == 0 {
                    AlertState::Resolved
                } else {
                    AlertState::Firing
                },
                first_seen: t0() - TimeDelta::minutes((i % 600) as i64),
                last_change: t0() - TimeDelta::minutes((i % 60) as i64),
                summary: format!("{name} on {} for {} minutes", cluster.name, i % 90),
                labels: [
                    ("alertname".to_string(), name.to_string()),
                    ("cluster".to_string(), cluster.name.clone()),
                    ("namespace".to_string(), "kube-system".to_string()),
                ]
                .into(),
                runbook_url: None,
                ack: None,
            }
        })
        .collect()
}

fn cluster_ids(events: &[SourceEvent]) -> Vec<ClusterId> {
    events
        .iter()
        .find_map(|e| match e {
            SourceEvent::ClusterInventory { clusters, .. } => {
                Some(clusters.iter().map(|c| c.id.clone()).collect())
            }
            _ => None,
        })
        .expect("the demo sends an inventory")
}

/// A burst of alert and metric events, half each, one alert or sample per event.
fn burst(ids: &[ClusterId]) -> Vec<SourceEvent> {
    let alerts = alerts(ids, BURST / 2);
    let minute = t0().timestamp() / 60;
    let mut events = Vec::with_capacity(BURST);
    for (i, alert) in alerts.into_iter().enumerate() {
        events.push(SourceEvent::Alerts(vec![alert]));
        events.push(SourceEvent::Metrics {
            cluster: ids[i % ids.len()].clone(),
            samples: vec![MetricSample {
                metric: MetricName::SUMMARY[i % MetricName::SUMMARY.len()],
                minute: minute - (i % 60) as i64,
                value: (i % 1000) as f32,
            }],
        });
    }
    events
}

fn ingest(c: &mut Criterion) {
    let events = demo_events();
    let ids = cluster_ids(&events);
    let mut base = Store::new();
    for e in events {
        base.apply(e, t0());
    }
    let burst = burst(&ids);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BURST as u64));
    group.sample_size(20);
    group.bench_function("100k alert and metric events, 5000 clusters", |b| {
        b.iter_batched(
            || {
                // The inventory first, as sources send it (not timed); then the burst.
                let mut store = Store::new();
                for cluster in base.clusters() {
                    store.apply(SourceEvent::ClusterChanged(Box::new(cluster.clone())), t0());
                }
                (store, burst.clone())
            },
            |(mut store, events)| {
                for e in events {
                    store.apply(e, t0());
                }
                store
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// An app holding the 5,000-cluster demo picture and 50,000 alerts.
fn loaded_app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::for_demo(dir.path(), Mode::Operator, options()).expect("setup");
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let engine = Engine::without_sources(&setup, Clock::Frozen(t0()));
    let mut app = App::new(setup, engine, tx);
    let events = demo_events();
    let ids = cluster_ids(&events);
    for e in events {
        app.apply(e);
    }
    app.apply(SourceEvent::Alerts(alerts(&ids, ALERTS)));
    (app, dir)
}

fn render(c: &mut Criterion) {
    let (mut app, _dir) = loaded_app();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut group = c.benchmark_group("render 200x60, 5000 clusters, 50k alerts");
    for (key, view) in [
        ('1', "fleet"),
        ('2', "alerts"),
        ('3', "rollouts"),
        ('4', "runbooks"),
        ('5', "audit"),
        ('6', "sources"),
    ] {
        app.on_key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE));
        group.bench_function(view, |b| {
            b.iter(|| terminal.draw(|f| app.render(f)).expect("draw").area)
        });
    }
    // The fleet view keeps its rows until the store changes; the worst frame is the one
    // after a change, which filters and sorts the fleet again.
    app.on_key(KeyEvent::new(KeyCode::Char('1'), KeyModifiers::NONE));
    let ids: Vec<ClusterId> = app
        .store()
        .clusters()
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let minute = t0().timestamp() / 60;
    let mut n = 0usize;
    group.bench_function("fleet, after a change", |b| {
        b.iter_batched(
            || {
                n += 1;
                SourceEvent::Metrics {
                    cluster: ids[n % ids.len()].clone(),
                    samples: vec![MetricSample {
                        metric: MetricName::RequestTotal,
                        minute,
                        value: (n % 5000) as f32,
                    }],
                }
            },
            |event| {
                app.apply(event);
                terminal.draw(|f| app.render(f)).expect("draw").area
            },
            BatchSize::SmallInput,
        )
    });
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    group.bench_function("cluster", |b| {
        b.iter(|| terminal.draw(|f| app.render(f)).expect("draw").area)
    });
    group.finish();
}

fn filter_sort(c: &mut Criterion) {
    let (app, _dir) = loaded_app();
    let store = app.store();
    let mut group = c.benchmark_group("filter and sort 5000 clusters");
    // What typing `env:prod 1.3` produces, one keystroke at a time.
    let typed = "env:prod 1.3";
    group.bench_function("per keystroke", |b| {
        let mut i = 0;
        b.iter(|| {
            i = i % typed.len() + 1;
            let filter = ClusterFilter::parse(&typed[..i]);
            black_box(store.cluster_rows(&filter, SortKey::Errors5xx, true).len())
        })
    });
    group.bench_function("sort by name, no filter", |b| {
        let all = ClusterFilter::parse("");
        b.iter(|| black_box(store.cluster_rows(&all, SortKey::Name, false).len()))
    });
    group.finish();
}

/// The warm start at 5,000 clusters and 50,000 alerts: read the kept picture, fold it into
/// an empty store and draw the first frame (target: within 150 ms). Prints what the
/// picture weighs.
fn warm_start(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("picture.json");
    let (app, _app_dir) = loaded_app();
    let bytes = cache::write(&path, &cache::Picture::of(app.store(), &[], t0())).expect("written");
    eprintln!(
        "picture at {CLUSTERS} clusters and {ALERTS} alerts: {bytes} bytes ({:.1} MiB)",
        bytes as f64 / (1024.0 * 1024.0)
    );
    let mut group = c.benchmark_group("warm start, 5000 clusters, 50k alerts");
    group.sample_size(10);
    group.bench_function("read + restore + first frame", |b| {
        b.iter(|| {
            let setup = Setup::for_demo(dir.path(), Mode::Operator, options()).expect("setup");
            let mut engine = Engine::without_sources(&setup, Clock::Frozen(t0()));
            engine.use_cache(path.clone(), true);
            let (tx, _rx) = tokio::sync::mpsc::channel(8);
            let app = App::new(setup, engine, tx);
            let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
            terminal.draw(|f| app.render(f)).expect("draw").area
        })
    });
    group.finish();
}

criterion_group!(benches, ingest, render, filter_sort, warm_start);
criterion_main!(benches);
