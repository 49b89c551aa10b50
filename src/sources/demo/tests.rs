use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::fleet::{PROD1, PROD2, STAGING};
use super::*;
use crate::model::{
    AlertKey, AlertSource, AlertState, CellPhase, ClusterStatus, ETCD_QUOTA_BYTES, Environment,
    GateStatus, Severity, Store, WaveState,
};

const FIVE_XX: &str = "eks-apiserver-5xx-high";
const ROLLOUT: &str = "eks-1-31-upgrade";

/// A start that is not on a minute boundary, to keep the boundary arithmetic honest.
fn start() -> Timestamp {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_768_467_623)
}

fn at(minutes: f64) -> Timestamp {
    start() + TimeDelta::milliseconds((minutes * 60_000.0) as i64)
}

fn fleet() -> DemoFleet {
    DemoFleet::new(&DemoOptions::default(), start())
}

/// Advances in `step_secs` steps from the fleet's now to `until`, like the task does.
fn run(fleet: &mut DemoFleet, until: Timestamp, step_secs: i64) -> Vec<(Timestamp, SourceEvent)> {
    let mut events = Vec::new();
    let mut now = fleet.now;
    while now < until {
        now = (now + TimeDelta::seconds(step_secs)).min(until);
        events.extend(fleet.advance_to(now).into_iter().map(|e| (now, e)));
    }
    events
}

fn minutes_since_start(t: Timestamp) -> f64 {
    (t - start()).num_milliseconds() as f64 / 60_000.0
}

fn rollouts(events: &[(Timestamp, SourceEvent)]) -> Vec<(Timestamp, &Rollout)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            SourceEvent::Rollout(r) => Some((*t, r)),
            _ => None,
        })
        .collect()
}

fn alerts(events: &[(Timestamp, SourceEvent)]) -> Vec<&Alert> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            SourceEvent::Alerts(a) => Some(a),
            _ => None,
        })
        .flatten()
        .collect()
}

fn initial_rollout(events: &[SourceEvent]) -> &Rollout {
    events
        .iter()
        .find_map(|e| match e {
            SourceEvent::Rollout(r) => Some(r),
            _ => None,
        })
        .expect("the initial events carry the rollout")
}

fn inventory(events: &[SourceEvent]) -> &[Cluster] {
    events
        .iter()
        .find_map(|e| match e {
            SourceEvent::ClusterInventory { clusters, .. } => Some(clusters.as_slice()),
            _ => None,
        })
        .expect("the initial events carry the inventory")
}

#[test]
fn same_seed_same_events_different_seed_different_fleet() {
    let mut a = fleet();
    let mut b = fleet();
    assert_eq!(a.initial_events(), b.initial_events());
    let ea = run(&mut a, at(150.0), 30);
    let eb = run(&mut b, at(150.0), 30);
    assert_eq!(ea, eb);

    let mut other = DemoFleet::new(
        &DemoOptions {
            seed: 8,
            ..DemoOptions::default()
        },
        start(),
    );
    let first = a.initial_events();
    let second = other.initial_events();
    assert_ne!(inventory(&first), inventory(&second));
}

#[test]
fn the_outcome_does_not_depend_on_how_often_the_demo_is_polled() {
    let mut fine = fleet();
    let mut coarse = fleet();
    let fine_events = run(&mut fine, at(200.0), 7);
    let coarse_events = run(&mut coarse, at(200.0), 600);
    assert_eq!(fine.rollout, coarse.rollout);
    assert_eq!(fine.clusters, coarse.clusters);
    assert_eq!(fine.firing, coarse.firing);
    let changes = |events: &[(Timestamp, SourceEvent)]| -> BTreeSet<String> {
        alerts(events)
            .iter()
            .map(|a| format!("{} {:?} {}", a.key, a.state, a.last_change))
            .collect()
    };
    assert_eq!(changes(&fine_events), changes(&coarse_events));
}

#[test]
fn initial_state_matches_the_plan() {
    let mut demo = fleet();
    let events = demo.initial_events();
    assert!(matches!(events[0], SourceEvent::ClusterInventory { .. }));
    assert!(matches!(events[1], SourceEvent::Alerts(_)));
    assert!(matches!(events[2], SourceEvent::Rollout(_)));
    assert!(matches!(events[events.len() - 2], SourceEvent::Health(_)));
    assert_eq!(
        events.last(),
        Some(&SourceEvent::Ready {
            source: SOURCE_NAME.into()
        })
    );

    let clusters = inventory(&events);
    assert_eq!(clusters.len(), 48);
    let accounts: BTreeSet<&str> = clusters.iter().map(|c| c.id.account.as_str()).collect();
    let regions: BTreeSet<&str> = clusters.iter().map(|c| c.id.region.as_str()).collect();
    let pairs: BTreeSet<(&str, &str)> = clusters
        .iter()
        .map(|c| (c.id.account.as_str(), c.id.region.as_str()))
        .collect();
    let envs: BTreeSet<&Environment> = clusters.iter().map(|c| &c.environment).collect();
    assert_eq!(accounts.len(), 4, "{accounts:?}");
    assert_eq!(
        regions,
        BTreeSet::from(["ap-southeast-2", "eu-west-1", "us-east-1"])
    );
    assert_eq!(pairs.len(), 12, "every account x region pair has a cluster");
    assert_eq!(envs.len(), 4);
    let names: BTreeSet<&str> = clusters.iter().map(|c| c.id.name.as_str()).collect();
    assert_eq!(names.len(), 48, "names are unique");
    for c in clusters {
        assert!(
            ["1.29", "1.30", "1.31"].contains(&c.version.as_str()),
            "{}",
            c.version
        );
        let account_id = c.arn.split(':').nth(4).expect("arn has an account");
        assert_eq!(account_id.len(), 12);
        assert_eq!(
            c.arn,
            format!(
                "arn:aws:eks:{}:{account_id}:cluster/{}",
                c.id.region, c.id.name
            )
        );
        assert!(c.platform_version.starts_with("eks."));
        assert!(c.team.is_some());
        assert!(
            c.addons
                .iter()
                .any(|a| a.name == "kube-proxy"
                    && a.version.starts_with(&format!("v{}.", c.version)))
        );
        assert!(c.insights.iter().all(|i| i.category == "UPGRADE_READINESS"));
    }
    assert!(clusters.iter().any(|c| c.id.name.starts_with("prod-euw1-")));

    let rollout = initial_rollout(&events);
    assert_eq!(rollout.name, ROLLOUT);
    assert_eq!(
        rollout.description,
        "Upgrade EKS control planes to Kubernetes 1.31"
    );
    let sizes: Vec<usize> = rollout.waves.iter().map(|w| w.cells.len()).collect();
    assert_eq!(sizes, vec![1, 4, 8, 15, 20]);
    let names: Vec<&str> = rollout.waves.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["sandbox", "dev", "staging", "prod-1", "prod-2"]);
    let states: Vec<&WaveState> = rollout.waves.iter().map(|w| &w.state).collect();
    assert_eq!(states[0], &WaveState::Done);
    assert_eq!(states[1], &WaveState::Done);
    assert_eq!(states[2], &WaveState::Running);
    assert_eq!(states[3], &WaveState::Pending);
    assert_eq!(states[4], &WaveState::Pending);
    let staging = &rollout.waves[STAGING];
    assert!(staging.cells_done() > 0, "some staging cells updated");
    assert!(staging.cells_in_flight() > 0, "some in flight");
    assert!(staging.cells_in_flight() <= staging.max_parallel);
    assert!(staging.cells.iter().any(|c| c.phase == CellPhase::Pending));
    assert!(rollout.waves.iter().all(|w| !w.state.is_held()));
    let soaks: Vec<i64> = rollout.waves.iter().map(|w| w.soak_secs / 60).collect();
    assert!(
        soaks.windows(2).all(|w| w[0] > w[1]),
        "soak shrinks: {soaks:?}"
    );
    let gates: Vec<&str> = rollout.gates.iter().map(|g| g.alarm.as_str()).collect();
    assert_eq!(gates, vec![FIVE_XX, "eks-apiserver-p99-latency-high"]);
    assert!(rollout.gates.iter().all(|g| g.status == GateStatus::Ok));
    // Updated clusters are on 1.31; a cluster updating says so.
    for (w, wave) in rollout.waves.iter().enumerate() {
        for cell in &wave.cells {
            let cluster = clusters
                .iter()
                .find(|c| c.id == cell.cluster)
                .expect("every cell is a known cluster");
            if cell.phase.is_updated() {
                assert_eq!(cluster.version, "1.31", "wave {w}");
            }
            if cell.phase == CellPhase::Updating {
                assert_eq!(cluster.status, ClusterStatus::Updating);
                assert!(cell.message.starts_with("updating control plane"));
            }
            if w >= PROD1 {
                assert_ne!(cluster.version, "1.31");
            }
        }
    }
}

#[test]
fn a_handful_of_alerts_fire_at_start_from_every_kind_of_source() {
    let mut demo = fleet();
    let events = demo.initial_events();
    let SourceEvent::Alerts(alerts) = &events[1] else {
        panic!("alerts second");
    };
    assert!(alerts.iter().all(|a| a.state == AlertState::Firing));
    let clusters: BTreeSet<&ClusterId> = alerts.iter().filter_map(|a| a.cluster.as_ref()).collect();
    assert!(
        (4..=16).contains(&clusters.len()),
        "a handful of clusters alerting, not all: {}",
        clusters.len()
    );
    let by_source = |s| alerts.iter().filter(|a| a.source == s).count();
    assert!(by_source(AlertSource::Cloudwatch) >= 3);
    assert!(by_source(AlertSource::EksHealth) >= 1);
    assert_eq!(
        by_source(AlertSource::EksInsight),
        2,
        "a couple of insights in prod-2"
    );
    let prod2: Vec<&ClusterId> = demo.rollout.waves[PROD2]
        .cells
        .iter()
        .map(|c| &c.cluster)
        .collect();
    for a in alerts
        .iter()
        .filter(|a| a.source == AlertSource::EksInsight)
    {
        assert!(prod2.contains(&a.cluster.as_ref().expect("insights are per cluster")));
    }
    for a in alerts
        .iter()
        .filter(|a| a.source == AlertSource::Cloudwatch)
    {
        assert_eq!(
            a.key,
            AlertKey::new(AlertSource::Cloudwatch, a.cluster.as_ref(), &a.name, "")
        );
        assert_eq!(a.labels.get("alarm_name"), Some(&a.name));
        assert_eq!(
            a.labels.get("namespace").map(String::as_str),
            Some("AWS/EKS")
        );
        assert!(a.first_seen <= start(), "fired before the demo started");
    }
    let etcd: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.name == "eks-etcd-storage-high")
        .collect();
    assert_eq!(etcd.len(), 2, "two clusters over 80% of the etcd quota");
    assert!(etcd.iter().any(|a| a.severity == Severity::Critical));
    assert!(
        etcd.iter()
            .all(|a| a.summary.contains("of its 8 GiB quota"))
    );
    let latency = alerts
        .iter()
        .find(|a| a.name == "eks-apiserver-p99-latency-high")
        .expect("a gate alarm is firing at start on a prod-2 cluster");
    assert!(prod2.contains(&latency.cluster.as_ref().expect("per cluster")));
    assert!(
        latency.summary.contains("(threshold 1 s)"),
        "{}",
        latency.summary
    );
}

#[test]
fn summary_metrics_for_every_cluster_and_all_metrics_for_the_focused_one() {
    let mut demo = fleet();
    let events = demo.initial_events();
    let metrics: Vec<(&ClusterId, &Vec<MetricSample>)> = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Metrics { cluster, samples } => Some((cluster, samples)),
            _ => None,
        })
        .collect();
    assert_eq!(metrics.len(), 48);
    let last = start().timestamp().div_euclid(60) - 1;
    for (_, samples) in &metrics {
        assert_eq!(samples.len(), 60 * MetricName::SUMMARY.len());
        for metric in MetricName::SUMMARY {
            let minutes: BTreeSet<i64> = samples
                .iter()
                .filter(|s| s.metric == metric)
                .map(|s| s.minute)
                .collect();
            assert_eq!(minutes, (last - 59..=last).collect());
        }
        for s in samples.iter() {
            assert!(s.value.is_finite() && s.value >= 0.0);
            if s.metric == MetricName::StorageSizeBytes {
                assert!(f64::from(s.value) < ETCD_QUOTA_BYTES, "etcd below quota");
            }
        }
    }

    let target = demo.clusters[20].id.clone();
    let focused = demo.focus(Some(target.clone()), at(0.5));
    let samples = focused
        .iter()
        .find_map(|e| match e {
            SourceEvent::Metrics { cluster, samples } if *cluster == target => Some(samples),
            _ => None,
        })
        .expect("focus backfills the cluster");
    for metric in MetricName::ALL {
        assert_eq!(
            samples.iter().filter(|s| s.metric == metric).count(),
            60,
            "{metric}"
        );
    }
    // The next minute: everything for the focused cluster, the summary for the rest.
    let next = demo.advance_to(at(1.5));
    for e in &next {
        if let SourceEvent::Metrics { cluster, samples } = e {
            let want = if *cluster == target {
                MetricName::COUNT
            } else {
                MetricName::SUMMARY.len()
            };
            assert_eq!(samples.len(), want, "{cluster}");
            assert!(samples.iter().all(|s| s.minute == last + 1));
        }
    }
    // A backfilled point equals the live one computed later.
    let live = demo.focus(Some(target.clone()), at(2.5));
    let again: Vec<MetricSample> = live
        .iter()
        .find_map(|e| match e {
            SourceEvent::Metrics { cluster, samples } if *cluster == target => {
                Some(samples.clone())
            }
            _ => None,
        })
        .expect("refocus backfills again");
    for s in samples {
        if let Some(same) = again
            .iter()
            .find(|x| x.metric == s.metric && x.minute == s.minute)
        {
            assert_eq!(same.value.to_bits(), s.value.to_bits());
        }
    }
    // Unfocused: back to the summary only.
    demo.focus(None, at(3.0));
    for e in demo.advance_to(at(4.0)) {
        if let SourceEvent::Metrics { samples, .. } = e {
            assert_eq!(samples.len(), MetricName::SUMMARY.len());
        }
    }
}

/// The story's milestones, in minutes since the start.
#[derive(Debug, Default)]
struct Timeline {
    staging_done: Option<f64>,
    prod1_started: Option<f64>,
    prod1_updated: Option<f64>,
    tripped: Option<(f64, String, ClusterId)>,
    cleared: Option<f64>,
}

fn timeline(demo: &DemoFleet, events: &[(Timestamp, SourceEvent)]) -> Timeline {
    let mut t = Timeline::default();
    for (_, r) in rollouts(events) {
        let staging = &r.waves[STAGING];
        let prod1 = &r.waves[PROD1];
        if t.staging_done.is_none() && staging.state == WaveState::Done {
            t.staging_done = staging
                .cells
                .iter()
                .map(|c| c.since)
                .max()
                .map(minutes_since_start);
        }
        if t.prod1_started.is_none() && prod1.cells.iter().any(|c| c.phase != CellPhase::Pending) {
            t.prod1_started = prod1
                .cells
                .iter()
                .filter(|c| c.phase != CellPhase::Pending)
                .map(|c| c.since)
                .min()
                .map(minutes_since_start);
        }
        if t.prod1_updated.is_none() && prod1.cells.iter().all(|c| c.phase.is_updated()) {
            t.prod1_updated = prod1
                .cells
                .iter()
                .map(|c| c.since)
                .max()
                .map(minutes_since_start);
        }
        if let (None, WaveState::Halted { alarm, cluster, at }) = (&t.tripped, &prod1.state) {
            t.tripped = Some((minutes_since_start(*at), alarm.clone(), cluster.clone()));
        }
    }
    if let Some((_, alarm, cluster)) = &t.tripped {
        t.cleared = alerts(events)
            .iter()
            .find(|a| {
                a.name == *alarm
                    && a.cluster.as_ref() == Some(cluster)
                    && a.state == AlertState::Resolved
            })
            .map(|a| minutes_since_start(a.last_change));
    }
    let _ = demo;
    t
}

#[test]
fn the_circuit_breaker_halts_prod_1_and_prod_2_never_starts_while_halted() {
    let mut demo = fleet();
    demo.initial_events();
    let events = run(&mut demo, at(180.0), 30);
    let story = timeline(&demo, &events);
    eprintln!("timeline (sim minutes after start): {story:#?}");

    let (tripped, alarm, cluster) = story
        .tripped
        .clone()
        .expect("the breaker trips within 3 hours");
    assert_eq!(alarm, FIVE_XX);
    let prod1: Vec<&ClusterId> = demo.rollout.waves[PROD1]
        .cells
        .iter()
        .map(|c| &c.cluster)
        .collect();
    assert!(prod1.contains(&&cluster), "{cluster} is a prod-1 cluster");
    assert!((90.0..=120.0).contains(&tripped), "tripped at {tripped}");
    let updated = story.prod1_updated.expect("prod-1 updated before the trip");
    assert!(
        tripped > updated && tripped < updated + 20.0,
        "during prod-1's soak"
    );
    let cleared = story.cleared.expect("the alarm clears");
    assert!(
        (cleared - tripped - 15.0).abs() <= 1.0,
        "clears ~15 minutes later"
    );

    // Halted ever since (nobody resumed), and prod-2 never started.
    for (t, r) in rollouts(&events) {
        assert!(
            r.waves[PROD2]
                .cells
                .iter()
                .all(|c| c.phase == CellPhase::Pending),
            "at {t}"
        );
        if minutes_since_start(t) >= tripped {
            assert!(matches!(r.waves[PROD1].state, WaveState::Halted { .. }));
        }
    }
    assert_eq!(demo.rollout.current_wave(), Some(PROD1));
    match &demo.rollout.waves[PROD1].state {
        WaveState::Halted {
            alarm, cluster: c, ..
        } => {
            assert_eq!(alarm, FIVE_XX);
            assert_eq!(c, &cluster);
        }
        other => panic!("prod-1 is {other:?}"),
    }
    assert!(
        demo.rollout.waves[PROD1]
            .state
            .reason()
            .is_some_and(|r| r.contains(&cluster.name))
    );
    // While firing the gate showed it; cleared now.
    assert!(rollouts(&events).iter().any(|(_, r)| r.gates[0].status
        == GateStatus::Firing {
            cluster: cluster.clone()
        }));
    assert_eq!(demo.rollout.gates[0].status, GateStatus::Ok);
}

#[test]
fn gate_alarms_on_a_wave_not_yet_started_do_not_trip() {
    let mut demo = fleet();
    demo.initial_events();
    let events = run(&mut demo, at(80.0), 30);
    let prod2: BTreeSet<ClusterId> = demo.rollout.waves[PROD2]
        .cells
        .iter()
        .map(|c| c.cluster.clone())
        .collect();
    let all = alerts(&events);
    let gate_alarms_on_prod2: Vec<&&Alert> = all
        .iter()
        .filter(|a| {
            a.name == FIVE_XX
                && a.state == AlertState::Firing
                && a.cluster.as_ref().is_some_and(|c| prod2.contains(c))
        })
        .collect();
    assert_eq!(
        gate_alarms_on_prod2.len(),
        1,
        "a 5xx burst on a prod-2 cluster"
    );
    assert!(gate_alarms_on_prod2[0].summary.starts_with("5xx at "));
    for (_, r) in rollouts(&events) {
        assert!(r.waves.iter().all(|w| !w.state.is_held()), "nothing halted");
        assert!(r.gates.iter().all(|g| g.status == GateStatus::Ok));
    }
}

#[test]
fn resume_after_the_alarm_clears_lets_the_rollout_finish() {
    let mut demo = fleet();
    demo.initial_events();
    let events = run(&mut demo, at(180.0), 30);
    let story = timeline(&demo, &events);
    let (tripped, _, cluster) = story.tripped.expect("tripped");
    let cleared = story.cleared.expect("cleared");

    // Refused while the alarm fires.
    let mut early = fleet();
    early.initial_events();
    run(&mut early, at(tripped + 2.0), 30);
    let err = early
        .resume_wave(ROLLOUT, PROD1, "alice", at(tripped + 2.0))
        .expect_err("still firing");
    assert_eq!(
        err.to_string(),
        format!(
            "gate alarm {FIVE_XX} is still firing on {}; resume when it clears",
            cluster.name
        )
    );
    assert!(matches!(
        early.rollout.waves[PROD1].state,
        WaveState::Halted { .. }
    ));

    // Allowed after it cleared. The alarm fired during prod-1's soak, so the soak starts
    // over at the resume: prod-2 waits for it.
    assert!(cleared < 180.0);
    let resumed = demo
        .resume_wave(ROLLOUT, PROD1, "alice", at(180.0))
        .expect("resume");
    let rollout = resumed
        .iter()
        .find_map(|e| match e {
            SourceEvent::Rollout(r) => Some(r),
            _ => None,
        })
        .expect("resume sends the rollout");
    let soak = chrono::TimeDelta::seconds(rollout.waves[PROD1].soak_secs);
    assert_eq!(
        rollout.waves[PROD1].state,
        WaveState::Soaking {
            until: at(180.0) + soak
        }
    );
    assert_eq!(rollout.waves[PROD2].state, WaveState::Pending);
    let after_soak = run(
        &mut demo,
        at(180.0) + soak + chrono::TimeDelta::seconds(90),
        60,
    );
    drop(after_soak);
    assert_eq!(demo.rollout.waves[PROD1].state, WaveState::Done);
    assert_eq!(demo.rollout.waves[PROD2].state, WaveState::Running);

    let later = run(&mut demo, at(330.0), 60);
    assert!(
        demo.rollout
            .waves
            .iter()
            .all(|w| w.state == WaveState::Done),
        "{:?}",
        demo.rollout
            .waves
            .iter()
            .map(|w| w.state.name())
            .collect::<Vec<_>>()
    );
    assert!(demo.clusters.iter().all(|c| c.version == "1.31"));
    assert!(
        demo.clusters
            .iter()
            .all(|c| c.status == ClusterStatus::Active)
    );
    let changed: Vec<&Cluster> = later
        .iter()
        .filter_map(|(_, e)| match e {
            SourceEvent::ClusterChanged(c) => Some(c.as_ref()),
            _ => None,
        })
        .collect();
    assert!(changed.iter().any(|c| c.status == ClusterStatus::Updating));
    assert!(
        changed.iter().any(|c| c.version == "1.30"),
        "a two-hop cluster's first hop"
    );
    let messages: BTreeSet<String> = rollouts(&later)
        .iter()
        .flat_map(|(_, r)| r.waves[PROD2].cells.iter().map(|c| c.message.clone()))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("hop 1 of 2")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("hop 2 of 2")));
}

#[test]
fn pausing_a_wave_stops_new_cells_and_lets_in_flight_ones_finish() {
    let mut demo = fleet();
    demo.initial_events();
    let before = demo.rollout.waves[STAGING].clone();
    let pending: Vec<usize> = (0..before.cells.len())
        .filter(|&i| before.cells[i].phase == CellPhase::Pending)
        .collect();
    let in_flight: Vec<usize> = (0..before.cells.len())
        .filter(|&i| before.cells[i].phase.is_in_flight())
        .collect();

    let events = demo
        .pause_wave(
            ROLLOUT,
            STAGING,
            "alice",
            "checking a noisy 429 alarm",
            at(0.5),
        )
        .expect("pause");
    let paused = initial_rollout(&events);
    assert_eq!(paused.waves[STAGING].paused_by(), Some("alice"));

    run(&mut demo, at(60.0), 30);
    let staging = &demo.rollout.waves[STAGING];
    assert!(matches!(staging.state, WaveState::Paused { .. }));
    for i in &in_flight {
        assert_eq!(
            staging.cells[*i].phase,
            CellPhase::Soaking,
            "in-flight cell {i} finished"
        );
    }
    for i in &pending {
        assert_eq!(
            staging.cells[*i].phase,
            CellPhase::Pending,
            "pending cell {i} held"
        );
    }
    assert!(
        demo.rollout.waves[PROD1]
            .cells
            .iter()
            .all(|c| c.phase == CellPhase::Pending)
    );

    // Pausing twice says who holds it.
    let err = demo
        .pause_wave(ROLLOUT, STAGING, "bob", "me too", at(60.0))
        .expect_err("already paused");
    assert_eq!(
        err.to_string(),
        "wave staging is already paused by alice (checking a noisy 429 alarm)"
    );

    demo.resume_wave(ROLLOUT, STAGING, "alice", at(61.0))
        .expect("resume");
    for i in &pending {
        assert_ne!(
            demo.rollout.waves[STAGING].cells[*i].phase,
            CellPhase::Pending
        );
    }
    run(&mut demo, at(120.0), 30);
    assert_eq!(demo.rollout.waves[STAGING].state, WaveState::Done);
    assert!(
        demo.rollout.waves[PROD1]
            .cells
            .iter()
            .any(|c| c.phase != CellPhase::Pending)
    );
}

#[test]
fn refused_commands_say_why_and_lose_no_events() {
    let mut demo = fleet();
    demo.initial_events();
    assert_eq!(
        demo.pause_wave("nope", 0, "alice", "x", at(0.1))
            .expect_err("unknown rollout")
            .to_string(),
        "no rollout named nope"
    );
    assert_eq!(
        demo.pause_wave(ROLLOUT, 0, "alice", "x", at(0.2))
            .expect_err("done")
            .to_string(),
        "wave sandbox is already done; there is nothing to pause"
    );
    assert_eq!(
        demo.pause_wave(ROLLOUT, 9, "alice", "x", at(0.3))
            .expect_err("no wave")
            .to_string(),
        "rollout eks-1-31-upgrade has no wave 9"
    );
    assert_eq!(
        demo.resume_wave(ROLLOUT, STAGING, "alice", at(0.4))
            .expect_err("not held")
            .to_string(),
        "wave staging is not paused or halted"
    );
    // The refused call at 10 minutes caught up with time; its events come with the next.
    demo.pause_wave(ROLLOUT, 0, "alice", "x", at(10.0))
        .expect_err("done");
    let next = demo.advance_to(at(10.0));
    let metrics = next
        .iter()
        .filter(|e| matches!(e, SourceEvent::Metrics { .. }))
        .count();
    assert_eq!(
        metrics, 48,
        "the minutes passed during the refused call are not lost"
    );
}

#[test]
fn health_counts_every_call() {
    let mut demo = fleet();
    demo.initial_events();
    let mut last = None;
    for i in 1..=3 {
        for e in demo.advance_to(at(f64::from(i))) {
            if let SourceEvent::Health(h) = e {
                last = Some(h);
            }
        }
    }
    let health = last.expect("every advance reports health");
    assert_eq!(health.name, SOURCE_NAME);
    assert_eq!(health.poll_interval_secs, 60);
    assert_eq!(health.calls, 4);
    assert_eq!(health.last_ok, Some(at(3.0)));
    assert!(health.is_healthy(at(3.0)));
}

#[test]
fn extremes_of_fleet_size_work() {
    for clusters in [1, 2, 5, 10_000] {
        let options = DemoOptions {
            clusters,
            ..DemoOptions::default()
        };
        let begun = std::time::Instant::now();
        let mut demo = DemoFleet::new(&options, start());
        let events = demo.initial_events();
        eprintln!(
            "{clusters} clusters: new + initial_events in {:?}",
            begun.elapsed()
        );
        assert_eq!(inventory(&events).len(), clusters);
        let rollout = initial_rollout(&events);
        assert_eq!(rollout.cells_total(), clusters);
        assert_eq!(
            rollout.waves[0].cells.len().max(1),
            rollout.waves[0].cells.len(),
            "sandbox has at least one"
        );
        let minutes = if clusters > 1_000 { 3.0 } else { 240.0 };
        let later = run(&mut demo, at(minutes), 60);
        assert!(
            later
                .iter()
                .any(|(_, e)| matches!(e, SourceEvent::Metrics { .. }))
        );
        if clusters == 1 {
            assert!(
                demo.rollout
                    .waves
                    .iter()
                    .all(|w| w.state == WaveState::Done)
            );
        }
        if clusters == 10_000 {
            // The 48-cluster plan (1/4/8/15/20) scaled, within rounding.
            for (wave, planned) in rollout.waves.iter().zip([1.0, 4.0, 8.0, 15.0, 20.0]) {
                let want = planned * clusters as f64 / 48.0;
                assert!(
                    (wave.cells.len() as f64 - want).abs() <= 1.0,
                    "{}",
                    wave.name
                );
            }
        }
    }
}

#[test]
fn feeding_the_events_into_the_store_gives_a_consistent_picture() {
    let mut demo = fleet();
    let mut store = Store::new();
    for e in demo.initial_events() {
        store.apply(e, start());
    }
    let check = |store: &Store, demo: &DemoFleet, now: Timestamp| {
        let summary = store.summary(chrono::DateTime::UNIX_EPOCH);
        assert_eq!(summary.clusters, 48);
        let firing_clusters = demo.firing.len()
            + demo.eks_alerts.len()
            + demo.prometheus.alerts.len()
            + demo.policies.alerts(&demo.clusters, now).len();
        assert_eq!(
            summary.firing_critical + summary.firing_warning + summary.firing_info,
            firing_clusters
        );
        assert_eq!(
            summary.healthy + summary.warning + summary.critical + summary.unknown,
            48
        );
        assert!(summary.healthy > 24, "most clusters healthy: {summary:?}");
        assert_eq!(summary.rollout_percent, Some(demo.rollout.percent()));
        assert_eq!(store.rollouts(), std::slice::from_ref(&demo.rollout));
        for (i, c) in store.clusters().iter().enumerate() {
            assert_eq!(Some(c), demo.clusters.iter().find(|d| d.id == c.id));
            assert!(store.request_rate(i).is_some_and(|r| r > 0.0));
            assert!(store.etcd_percent(i).is_some_and(|p| p < 100.0));
            let cell = store.cell_of(&c.id).map(|(_, cell)| cell.phase);
            assert!(cell.is_some(), "every cluster is in the rollout");
        }
        let _ = now;
    };
    check(&store, &demo, start());
    assert!(store.is_ready(&[SOURCE_NAME.to_string()]));
    for (t, e) in run(&mut demo, at(130.0), 30) {
        store.apply(e, t);
    }
    check(&store, &demo, at(130.0));
    let halted: BTreeMap<&str, &str> = store
        .rollouts()
        .iter()
        .flat_map(|r| r.waves.iter())
        .map(|w| (w.name.as_str(), w.state.name()))
        .collect();
    assert_eq!(halted.get("prod-1"), Some(&"halted"));
    assert_eq!(store.error_percent(0).map(|p| p < 1.0), Some(true));
}

#[tokio::test]
async fn the_task_pauses_a_wave_on_command_and_reports_it() {
    use crate::clock::Clock;
    use crate::sources::{EVENT_CHANNEL_CAPACITY, SourceCommand};
    use tokio::sync::{mpsc, oneshot};

    let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let handle = spawn(DemoOptions::default(), Clock::Frozen(start()), tx);
    assert_eq!(handle.name, SOURCE_NAME);
    // The first picture arrives in full.
    let mut ready = false;
    while !ready {
        let event = rx.recv().await.expect("the task sends its initial events");
        ready = matches!(event, SourceEvent::Ready { .. });
    }
    let (reply, answer) = oneshot::channel();
    handle
        .commands
        .send(SourceCommand::PauseWave {
            rollout: ROLLOUT.into(),
            wave: STAGING,
            by: "alice".into(),
            reason: "watching 429s".into(),
            reply,
        })
        .await
        .expect("the task takes commands");
    assert_eq!(
        answer.await.expect("a reply"),
        Ok("wave staging paused".to_string())
    );
    let paused = loop {
        match rx.recv().await.expect("events keep coming") {
            SourceEvent::Rollout(r) => break r,
            _ => continue,
        }
    };
    assert_eq!(
        paused.waves[STAGING].state,
        WaveState::Paused {
            by: "alice".into(),
            reason: "watching 429s".into(),
            at: start()
        }
    );

    let (reply, answer) = oneshot::channel();
    handle
        .commands
        .send(SourceCommand::PauseWave {
            rollout: ROLLOUT.into(),
            wave: 0,
            by: "alice".into(),
            reason: "x".into(),
            reply,
        })
        .await
        .expect("the task takes commands");
    assert_eq!(
        answer.await.expect("a reply"),
        Err("wave sandbox is already done; there is nothing to pause".to_string())
    );
    // Closing the events channel ends the task, which drops its command receiver.
    drop(rx);
    tokio::time::timeout(std::time::Duration::from_secs(5), handle.commands.closed())
        .await
        .expect("the task exits when nobody listens");
}

#[test]
fn a_failing_policy_holds_staging_until_the_team_fixes_it() {
    let mut demo = fleet();
    let initial = demo.initial_events();
    let policy_hold = |r: &Rollout| {
        r.waves[STAGING].holds.iter().find_map(|h| match &h.kind {
            crate::model::HoldKind::Policy { cluster, policy } => {
                Some((cluster.clone(), policy.clone()))
            }
            _ => None,
        })
    };
    let (cluster, policy) = policy_hold(&demo.rollout).expect("staging held by a policy at start");
    assert_eq!(policy, "pdb-maxunavailable");
    let findings: Vec<&Alert> = initial
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Alerts(a) => Some(a),
            _ => None,
        })
        .flatten()
        .filter(|a| {
            matches!(
                a.source,
                AlertSource::SecurityHub | AlertSource::PolicyReport
            )
        })
        .collect();
    assert!(
        findings.iter().any(|a| a.name == "pdb-maxunavailable"
            && a.cluster.as_ref().is_some_and(|c| c.name == cluster)),
        "the finding behind the hold is an alert: {findings:?}"
    );
    let nonroot = findings
        .iter()
        .find(|a| a.name == "require-run-as-nonroot")
        .expect("a policy failing on many pods");
    assert_eq!(nonroot.labels["count"], "312", "one alert with a count");
    assert!(
        findings
            .iter()
            .any(|a| a.source == AlertSource::PolicyReport)
    );

    // Held: the pending staging cells do not start while the policy fails.
    let events = run(&mut demo, at(11.0), 30);
    assert!(policy_hold(&demo.rollout).is_some());
    assert!(
        demo.rollout.waves[STAGING]
            .cells
            .iter()
            .any(|c| c.cluster.name == cluster && c.phase == CellPhase::Pending),
        "the failing cluster did not start"
    );
    assert!(
        alerts(&events)
            .iter()
            .all(|a| a.name != "pdb-maxunavailable")
    );

    // Fixed 12 minutes in: the finding resolves and the guard lets staging go on.
    let events = run(&mut demo, at(14.0), 30);
    assert_eq!(policy_hold(&demo.rollout), None);
    assert!(
        alerts(&events)
            .iter()
            .any(|a| a.name == "pdb-maxunavailable" && a.state == AlertState::Resolved),
        "resolved, not dropped"
    );
}

#[test]
fn acking_a_demo_finding_marks_it_notified_for_everyone() {
    let mut demo = fleet();
    let initial = demo.initial_events();
    let key = initial
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Alerts(a) => Some(a),
            _ => None,
        })
        .flatten()
        .find(|a| a.name == "check-deprecated-apis")
        .map(|a| a.key.clone())
        .expect("a deprecated-API finding");
    let (result, events) = demo.update_findings(&key, true, "alice", "migrating the CronJob");
    assert_eq!(
        result,
        Ok("3 Security Hub findings set to NOTIFIED (demo)".to_string())
    );
    let SourceEvent::Alerts(acked) = &events[0] else {
        panic!("{events:?}");
    };
    let ack = acked[0].ack.as_ref().expect("acked");
    assert_eq!(ack.by, "alice");
    assert_eq!(ack.kind, crate::model::AckKind::Notified { findings: 3 });
    let (result, _) = demo.update_findings(&AlertKey("nope".into()), true, "alice", "");
    assert!(result.is_err());
}
