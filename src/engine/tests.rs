use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::model::{Cluster, ClusterStatus, Environment};
use crate::sources::ClusterTarget;

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid time")
}

fn cluster(name: &str) -> Cluster {
    Cluster {
        id: ClusterId::new("acct", "eu-west-1", name),
        arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
        version: "1.31".into(),
        platform_version: "eks.1".into(),
        described: crate::model::Described::Yes,
        status: ClusterStatus::Active,
        environment: Environment::from_tag("prod"),
        team: None,
        health_issues: vec![],
        insights: vec![],
        updates: vec![],
        addons: vec![],
        support: None,
        endpoint: Some(format!("https://{name}.example")),
        certificate_authority: None,
    }
}

/// A source that only records the commands it is sent; tests answer for it.
struct FakeSource {
    commands: mpsc::Receiver<SourceCommand>,
}

fn fake(name: &str) -> (SourceHandle, FakeSource) {
    let (tx, rx) = mpsc::channel(16);
    (
        SourceHandle {
            name: name.into(),
            commands: tx,
        },
        FakeSource { commands: rx },
    )
}

impl FakeSource {
    /// The `Targets` sent so far: (seq, fleet names, interest names).
    fn targets(&mut self) -> Vec<(u64, Vec<String>, Vec<String>)> {
        let mut out = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            if let SourceCommand::Targets {
                seq,
                fleet,
                interest,
            } = command
            {
                out.push((
                    seq,
                    fleet
                        .iter()
                        .map(|t: &ClusterTarget| t.id.name.clone())
                        .collect(),
                    interest.iter().map(|c| c.name.clone()).collect(),
                ));
            }
        }
        out
    }
}

fn engine(sources: Vec<SourceHandle>) -> (Engine, mpsc::Sender<SourceEvent>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut setup = Setup::for_demo(dir.path(), Mode::Operator, Default::default()).expect("setup");
    setup.demo_mode = false;
    let (tx, rx) = mpsc::channel(64);
    (
        Engine::new(&setup, Clock::Frozen(t0()), sources, rx),
        tx,
        dir,
    )
}

fn ready(source: &str) -> SourceEvent {
    SourceEvent::Ready {
        source: source.into(),
    }
}

fn answer(source: &str, seq: u64) -> SourceEvent {
    SourceEvent::Targeted {
        source: source.into(),
        seq,
    }
}

#[tokio::test]
async fn sources_are_told_the_fleet_another_source_listed() {
    let (eks, _eks_rx) = fake("eks:acct/eu-west-1");
    let (hub, mut hub_rx) = fake("argocd:hub");
    let (mut engine, tx, _dir) = engine(vec![eks, hub]);
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:acct/eu-west-1".into(),
        clusters: vec![cluster("prod-a"), cluster("prod-b")],
    })
    .await
    .expect("send");
    engine.recv(64).await.expect("an event");
    let told = hub_rx.targets();
    let last = told.last().expect("the hub source was told the fleet");
    assert_eq!(last.1, ["prod-a", "prod-b"]);
    // Nothing changed: nothing is sent again.
    engine.tick();
    assert!(hub_rx.targets().is_empty());
}

#[tokio::test]
async fn the_picture_is_whole_only_once_every_source_applied_the_fleet() {
    let (eks, _eks_rx) = fake("eks:acct/eu-west-1");
    let (hub, mut hub_rx) = fake("argocd:hub");
    let (mut engine, tx, _dir) = engine(vec![eks, hub]);
    for event in [
        ready("argocd:hub"),
        SourceEvent::ClusterInventory {
            source: "eks:acct/eu-west-1".into(),
            clusters: vec![cluster("prod-a")],
        },
        ready("eks:acct/eu-west-1"),
    ] {
        tx.send(event).await.expect("send");
    }
    while engine.drain() > 0 {}
    let seq = hub_rx.targets().last().expect("told").0;
    // Both listed, but the hub has not yet tied its applications to prod-a.
    assert!(engine.store().is_ready(&engine.source_names()));
    assert!(!engine.is_ready());
    tx.send(answer("argocd:hub", seq)).await.expect("send");
    engine.drain();
    assert!(!engine.is_ready(), "the EKS source has not answered yet");
    tx.send(answer("eks:acct/eu-west-1", seq))
        .await
        .expect("send");
    engine.drain();
    assert!(engine.is_ready());
}

#[tokio::test]
async fn an_answer_to_older_targets_does_not_complete_the_picture() {
    let (hub, mut hub_rx) = fake("argocd:hub");
    let (mut engine, tx, _dir) = engine(vec![hub]);
    engine.tick();
    let first = hub_rx.targets().last().expect("told the empty fleet").0;
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:acct/eu-west-1".into(),
        clusters: vec![cluster("prod-a")],
    })
    .await
    .expect("send");
    tx.send(ready("argocd:hub")).await.expect("send");
    engine.recv(64).await.expect("events");
    let second = hub_rx.targets().last().expect("told prod-a").0;
    assert!(second > first);
    tx.send(answer("argocd:hub", first)).await.expect("send");
    engine.drain();
    assert!(!engine.is_ready(), "answered only the fleet without prod-a");
    tx.send(answer("argocd:hub", second)).await.expect("send");
    engine.drain();
    assert!(engine.is_ready());
}

#[tokio::test]
async fn a_silent_source_is_named_and_marked_failing_and_the_rest_is_kept() {
    let (eks, _eks_rx) = fake("eks:acct/eu-west-1");
    let (hub, _hub_rx) = fake("argocd:hub");
    let (mut engine, tx, _dir) = engine(vec![eks, hub]);
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:acct/eu-west-1".into(),
        clusters: vec![cluster("prod-a")],
    })
    .await
    .expect("send");
    tx.send(ready("eks:acct/eu-west-1")).await.expect("send");
    let unready = engine
        .until_ready(Duration::from_millis(200))
        .await
        .expect_err("the hub never answers");
    assert_eq!(unready.silent, ["argocd:hub"]);
    assert_eq!(unready.behind, ["eks:acct/eu-west-1"]);
    let hub = engine
        .store()
        .sources()
        .find(|s| s.name == "argocd:hub")
        .expect("reported");
    assert_eq!(
        hub.last_error.as_deref(),
        Some("no complete picture within 0s")
    );
    assert_eq!(engine.store().clusters().len(), 1);
}

#[tokio::test]
async fn the_cluster_on_screen_is_of_interest_and_sources_hear_of_it() {
    let (kube, mut kube_rx) = fake("kubernetes");
    let (mut engine, tx, _dir) = engine(vec![kube]);
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:acct/eu-west-1".into(),
        clusters: vec![cluster("prod-a"), cluster("prod-b")],
    })
    .await
    .expect("send");
    engine.recv(64).await.expect("events");
    assert!(kube_rx.targets().last().expect("told").2.is_empty());
    engine.set_focus(Some(ClusterId::new("acct", "eu-west-1", "prod-b")));
    let mut focus = None;
    let mut interest = None;
    while let Ok(command) = kube_rx.commands.try_recv() {
        match command {
            SourceCommand::Focus(id) => focus = id,
            SourceCommand::Targets { interest: i, .. } => interest = Some(i),
            _ => {}
        }
    }
    assert_eq!(focus.map(|c| c.name), Some("prod-b".into()));
    let interest: Vec<String> = interest
        .expect("targets re-sent")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(interest, ["prod-b"]);
}

#[tokio::test]
async fn a_stopped_source_does_not_hold_the_picture_back() {
    let (eks, _eks_rx) = fake("eks:acct/eu-west-1");
    let (gone, gone_rx) = fake("kubernetes");
    drop(gone_rx);
    let (mut engine, tx, _dir) = engine(vec![eks, gone]);
    for event in [ready("eks:acct/eu-west-1"), ready("kubernetes")] {
        tx.send(event).await.expect("send");
    }
    engine.recv(64).await.expect("events");
    tx.send(answer("eks:acct/eu-west-1", 1))
        .await
        .expect("send");
    engine.drain();
    assert!(engine.is_ready());
}

/// Sources that cannot serve every cluster of interest at once (EKS describing a big
/// fleet, Kubernetes with a bounded pool) serve them in the order they are told: the one
/// on screen, then those with firing alerts, then those of a started wave.
#[test]
fn interest_is_ordered_focus_then_firing_then_wave() {
    use crate::model::{
        Alert, AlertKey, AlertSource, AlertState, Cell, CellPhase, Rollout, Severity, Wave,
        WaveState,
    };
    let mut store = Store::new();
    let names = [
        "a-wave", "b-firing", "c-both", "d-quiet", "e-focus", "f-firing",
    ];
    store.apply(
        SourceEvent::ClusterInventory {
            source: "eks:acct/eu-west-1".into(),
            clusters: names.iter().map(|n| cluster(n)).collect(),
        },
        t0(),
    );
    let id = |n: &str| ClusterId::new("acct", "eu-west-1", n);
    let firing = |n: &str| Alert {
        key: AlertKey::new(AlertSource::Cloudwatch, Some(&id(n)), "boom", ""),
        source: AlertSource::Cloudwatch,
        cluster: Some(id(n)),
        name: "boom".into(),
        severity: Severity::Warning,
        state: AlertState::Firing,
        first_seen: t0(),
        last_change: t0(),
        summary: String::new(),
        labels: Default::default(),
        runbook_url: None,
        ack: None,
    };
    store.apply(
        SourceEvent::Alerts(vec![
            firing("f-firing"),
            firing("c-both"),
            firing("b-firing"),
        ]),
        t0(),
    );
    let cell = |n: &str| Cell {
        cluster: id(n),
        app: None,
        phase: CellPhase::Updating,
        since: t0(),
        message: String::new(),
    };
    store.apply(
        SourceEvent::Rollout(Rollout {
            name: "upgrade".into(),
            source: "demo".into(),
            description: String::new(),
            waves: vec![Wave {
                name: "prod-1".into(),
                environment: Environment::Prod,
                cells: vec![cell("c-both"), cell("a-wave"), cell("e-focus")],
                state: WaveState::Running,
                soak_secs: 600,
                max_parallel: 1,
                holds: vec![],
                soak_from: None,
            }],
            gates: vec![],
            unmatched: vec![],
        }),
        t0(),
    );
    // Another rollout's wave is next to start: its clusters are read before it does.
    store.apply(
        SourceEvent::Rollout(Rollout {
            name: "addons".into(),
            source: "demo".into(),
            description: String::new(),
            waves: vec![Wave {
                name: "staging".into(),
                environment: Environment::Staging,
                cells: vec![Cell {
                    phase: CellPhase::Pending,
                    ..cell("d-quiet")
                }],
                state: WaveState::Pending,
                soak_secs: 600,
                max_parallel: 1,
                holds: vec![],
                soak_from: None,
            }],
            gates: vec![],
            unmatched: vec![],
        }),
        t0(),
    );
    let order: Vec<String> = interest(&store, Some(&id("e-focus")))
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        order,
        [
            "e-focus", "b-firing", "c-both", "f-firing", "a-wave", "d-quiet"
        ]
    );
    let order: Vec<String> = interest(&store, None).into_iter().map(|c| c.name).collect();
    assert_eq!(
        order,
        [
            "b-firing", "c-both", "f-firing", "a-wave", "d-quiet", "e-focus"
        ]
    );
}

/// An engine following source changes, and the sender of those changes.
fn with_changes(engine: &mut Engine) -> mpsc::Sender<SourceChange> {
    let (tx, rx) = mpsc::channel(crate::sources::CHANGE_CHANNEL_CAPACITY);
    engine.follow_source_changes(rx);
    tx
}

fn health(source: &str) -> SourceEvent {
    SourceEvent::Health(SourceHealth::new(source, 60))
}

#[tokio::test]
async fn accounts_found_by_the_first_listing_are_told_the_fleet_and_awaited() {
    let (org, _org_rx) = fake("organizations");
    let (mut engine, tx, _dir) = engine(vec![org]);
    let changes = with_changes(&mut engine);
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:acct/eu-west-1".into(),
        clusters: vec![cluster("prod-a")],
    })
    .await
    .expect("send");
    engine.recv(64).await.expect("events");
    // The first listing: one account's EKS source starts, then the listing is ready.
    let (eks, mut eks_rx) = fake("eks:member/us-east-1");
    changes
        .send(SourceChange::Started(vec![eks]))
        .await
        .expect("change");
    for event in [SourceEvent::SourcesChanged, ready("organizations")] {
        tx.send(event).await.expect("send");
    }
    while engine.drain() > 0 {}
    assert_eq!(
        engine.source_names(),
        ["organizations", "eks:member/us-east-1"]
    );
    let told = eks_rx.targets();
    let (seq, fleet, _) = told.last().expect("the newcomer was told the fleet");
    assert_eq!(fleet, &["prod-a"]);
    assert!(
        engine
            .store()
            .sources()
            .any(|s| s.name == "eks:member/us-east-1" && engine.store().is_loading(s)),
        "listed as loading"
    );
    tx.send(answer("organizations", *seq)).await.expect("send");
    engine.drain();
    assert!(!engine.is_ready(), "the new account has no picture yet");
    for event in [
        ready("eks:member/us-east-1"),
        answer("eks:member/us-east-1", *seq),
    ] {
        tx.send(event).await.expect("send");
    }
    engine.drain();
    assert!(engine.is_ready());
}

#[tokio::test]
async fn an_account_found_later_loads_without_unmaking_the_picture() {
    let (org, _org_rx) = fake("organizations");
    let (mut engine, tx, _dir) = engine(vec![org]);
    let changes = with_changes(&mut engine);
    engine.tick();
    for event in [ready("organizations"), answer("organizations", 1)] {
        tx.send(event).await.expect("send");
    }
    while engine.drain() > 0 {}
    assert!(engine.is_ready());
    let (eks, _eks_rx) = fake("eks:late/us-east-1");
    changes
        .send(SourceChange::Started(vec![eks]))
        .await
        .expect("change");
    tx.send(SourceEvent::SourcesChanged).await.expect("send");
    engine.drain();
    assert_eq!(engine.source_names().len(), 2);
    assert!(engine.is_ready(), "the first complete picture stays whole");
}

#[tokio::test]
async fn a_stopped_source_goes_with_its_clusters_after_what_it_sent_before() {
    let (eks, _eks_rx) = fake("eks:gone/eu-west-1");
    let (mut engine, tx, _dir) = engine(vec![eks]);
    let changes = with_changes(&mut engine);
    let mut gone = cluster("gone-a");
    gone.id = ClusterId::new("gone", "eu-west-1", "gone-a");
    // Sent before the account left; folded in before it is forgotten.
    tx.send(SourceEvent::ClusterInventory {
        source: "eks:gone/eu-west-1".into(),
        clusters: vec![gone],
    })
    .await
    .expect("send");
    tx.send(health("eks:gone/eu-west-1")).await.expect("send");
    changes
        .send(SourceChange::Stopped(vec!["eks:gone/eu-west-1".into()]))
        .await
        .expect("change");
    tx.send(SourceEvent::SourcesChanged).await.expect("send");
    while engine.drain() > 0 {}
    assert!(engine.store().clusters().is_empty());
    assert_eq!(engine.store().sources().count(), 0, "no row left behind");
    assert!(engine.source_names().is_empty());
}

/// An organization's warm start: the picture is kept for the config's own sources (the
/// discovery source), so the next start shows it although the accounts' sources are only
/// found again later; what an account that left meanwhile drew goes at the first complete
/// picture, what the accounts still there drew stays until they say it again.
#[tokio::test]
async fn an_organizations_picture_is_shown_at_start_and_a_departed_account_leaves_it() {
    let member = |account: &str, name: &str| Cluster {
        id: ClusterId::new(account, "us-east-1", name),
        ..cluster(name)
    };
    // Yesterday: two accounts discovered and read.
    let (org, mut org_rx) = fake("organizations");
    let (mut first, tx, dir) = engine(vec![org]);
    let path = dir.path().join("picture.json.gz");
    first.use_cache(path.clone(), true);
    let changes = with_changes(&mut first);
    let (stays, _stays_rx) = fake("eks:stays/us-east-1");
    let (leaves, _leaves_rx) = fake("eks:leaves/us-east-1");
    changes
        .send(SourceChange::Started(vec![stays, leaves]))
        .await
        .expect("change");
    for event in [
        SourceEvent::SourcesChanged,
        SourceEvent::ClusterInventory {
            source: "eks:stays/us-east-1".into(),
            clusters: vec![member("stays", "api-01")],
        },
        SourceEvent::ClusterInventory {
            source: "eks:leaves/us-east-1".into(),
            clusters: vec![member("leaves", "old-01")],
        },
        ready("organizations"),
        ready("eks:stays/us-east-1"),
        ready("eks:leaves/us-east-1"),
    ] {
        tx.send(event).await.expect("send");
    }
    while first.drain() > 0 {}
    let (seq, _, _) = *org_rx.targets().last().expect("told the fleet");
    for name in [
        "organizations",
        "eks:stays/us-east-1",
        "eks:leaves/us-east-1",
    ] {
        tx.send(answer(name, seq)).await.expect("send");
    }
    while first.drain() > 0 {}
    assert!(first.is_ready());
    first.write_cache(true);

    // Today: only the discovery source runs at start; the picture is shown at once.
    let (org, mut org_rx) = fake("organizations");
    let (mut second, tx, _dir) = engine(vec![org]);
    second.use_cache(path, true);
    let names = |e: &Engine| -> Vec<String> {
        let mut n: Vec<String> = e
            .store()
            .clusters()
            .iter()
            .map(|c| c.id.to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&second),
        ["leaves/us-east-1/old-01", "stays/us-east-1/api-01"]
    );
    assert!(second.store().cached_since().is_some());
    // The listing finds only the account that stayed; its source is not ready yet.
    let changes = with_changes(&mut second);
    let (stays, _stays_rx) = fake("eks:stays/us-east-1");
    changes
        .send(SourceChange::Started(vec![stays]))
        .await
        .expect("change");
    for event in [SourceEvent::SourcesChanged, ready("organizations")] {
        tx.send(event).await.expect("send");
    }
    while second.drain() > 0 {}
    assert!(!second.is_ready());
    assert_eq!(
        names(&second).len(),
        2,
        "nothing dropped before the picture is whole"
    );
    let (seq, _, _) = *org_rx.targets().last().expect("told the fleet");
    for event in [
        ready("eks:stays/us-east-1"),
        answer("organizations", seq),
        answer("eks:stays/us-east-1", seq),
    ] {
        tx.send(event).await.expect("send");
    }
    while second.drain() > 0 {}
    assert!(second.is_ready());
    // The departed account's cluster is gone; the remaining one is still remembered
    // (its source listed nothing yet) until its source says it again.
    assert_eq!(names(&second), ["stays/us-east-1/api-01"]);
    assert!(second.store().is_cached_cluster(0));
}
