//! The guard's passes end to end against a fake hub API server, with a frozen clock:
//! Lease, ApplicationSet read, merge patch, Event, audit records; soak then release,
//! the circuit breaker, a blind alert source, a follower and a leader that lapsed.

#![allow(clippy::unwrap_used)]

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::testing::{Log, at, client, lines, status_json};
use super::*;
use crate::actions::read_audit;
use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, ClusterId, Severity, SourceEvent, SourceHealth,
};
use crate::sources::argocd::parse;

const HUB: &str = "argocd:hub";
const CLOUDWATCH: &str = "cloudwatch:111122223333/us-east-1";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/argocd/leases";
const SET: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/platform-addons";
const EVENTS: &str = "/api/v1/namespaces/argocd/events?&fieldManager=fleetdeck";
const UID: &str = "8f0c1f5e-3d59-4c1b-9d0b-1f2e3d4c5b6a";

/// A three-step RollingSync set as the API server returns it: dev Healthy since 02:00
/// (soaking 30 minutes, until 02:30), staging and prod Waiting.
fn set(rv: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "platform-addons", "namespace": "argocd", "resourceVersion": rv,
                     "uid": UID, "generation": 4,
                     "annotations": {
                         "fleetdeck.io/wave-names": "dev,staging,prod",
                         "fleetdeck.io/plan": "soak: 30m\ngates:\n  - eks-apiserver-5xx-*\n",
                     }},
        "spec": {
            "generators": [{"clusters": {}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["staging"]}],
                 "maxUpdate": 1},
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
                 "maxUpdate": "25%"},
            ]}},
            "template": {"metadata": {"name": "addons-{{name}}"}, "spec": {"project": "platform"}},
        },
        "status": {"applicationStatus": [
            {"application": "addons-dev-1", "status": "Healthy", "step": "1",
             "message": "Application resource became Healthy", "lastTransitionTime": "2026-11-21T02:00:00Z"},
            {"application": "addons-staging-1", "status": "Waiting", "step": "2",
             "message": "Application is waiting for a previous step", "lastTransitionTime": "2026-11-21T01:50:00Z"},
            {"application": "addons-prod-1", "status": "Waiting", "step": "3",
             "message": "Application is waiting for a previous step", "lastTransitionTime": "2026-11-21T01:50:00Z"},
        ]},
    })
}

fn cluster(env: &str) -> ClusterId {
    ClusterId::new("111122223333", "us-east-1", format!("{env}-1"))
}

fn apps() -> Vec<ArgoApp> {
    ["dev", "staging", "prod"]
        .iter()
        .map(|env| ArgoApp {
            name: format!("addons-{env}-1"),
            namespace: "argocd".into(),
            project: "platform".into(),
            cluster: Some(cluster(env)),
            destination: format!("https://{env}-1.eks.amazonaws.com"),
            sync: if *env == "dev" { "Synced" } else { "OutOfSync" }.into(),
            health: "Healthy".into(),
            operation_phase: None,
            message: None,
            labels: [("env".to_string(), env.to_string())].into(),
            app_set: Some("platform-addons".into()),
        })
        .collect()
}

/// RFC 7386: what the API server does with a merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// The store as the sources leave it: the hub listed with `set`, CloudWatch answering.
fn store(set: &Value, now: Timestamp) -> Store {
    let mut store = Store::new();
    feed_set(&mut store, set, now);
    store.apply(
        SourceEvent::Applications {
            source: HUB.into(),
            apps: apps(),
        },
        now,
    );
    store.apply(SourceEvent::Ready { source: HUB.into() }, now);
    cloudwatch_ok(&mut store, now);
    store.apply(
        SourceEvent::Ready {
            source: CLOUDWATCH.into(),
        },
        now,
    );
    store.expire(now);
    store
}

fn feed_set(store: &mut Store, set: &Value, now: Timestamp) {
    let object: DynamicObject = serde_json::from_value(set.clone()).unwrap();
    let sets = vec![parse::application_set(&object, "argocd").unwrap()];
    store.apply(
        SourceEvent::ApplicationSets {
            source: HUB.into(),
            sets,
        },
        now,
    );
    store.expire(now);
}

fn cloudwatch_ok(store: &mut Store, now: Timestamp) {
    let mut health = SourceHealth::new(CLOUDWATCH, 60);
    health.last_ok = Some(now);
    health.calls = 3;
    store.apply(SourceEvent::Health(health), now);
}

fn new_guard(client: kube::Client, dir: &std::path::Path) -> Guard {
    guard_watching(client, dir, &[HUB, CLOUDWATCH])
}

/// A guard whose passes trust what `watched` sources say.
fn guard_watching(client: kube::Client, dir: &std::path::Path, watched: &[&str]) -> Guard {
    let audit = AuditLog::open(&dir.join("audit.jsonl")).unwrap();
    Guard::new(
        client,
        HUB,
        "argocd",
        "guard-7f9c-abcde",
        audit,
        BTreeMap::new(),
        "fleetdeck",
        watched.iter().map(|s| s.to_string()).collect(),
    )
}

fn not_found() -> Value {
    status_json(
        404,
        "NotFound",
        "leases.coordination.k8s.io \"fleetdeck-guard\" not found",
    )
}

fn lease(holder: &str, renewed: &str, rv: &str) -> Value {
    json!({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "fleetdeck-guard", "namespace": "argocd", "resourceVersion": rv,
                     "uid": "2b0c6a3e-5f7d-4c1e-9a8b-7c6d5e4f3a21",
                     "creationTimestamp": "2026-11-21T01:00:00Z"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
                 "acquireTime": "2026-11-21T01:00:00.000000Z", "renewTime": renewed,
                 "leaseTransitions": 1},
    })
}

fn event_reply(n: u32) -> Value {
    json!({"kind": "Event", "apiVersion": "v1",
           "metadata": {"name": format!("platform-addons.18a9c3e2f1b4d5a{n}"), "namespace": "argocd",
                        "resourceVersion": format!("{}", 52000 + n)},
           "involvedObject": {"kind": "ApplicationSet", "namespace": "argocd", "name": "platform-addons"}})
}

fn seen(log: &Log, i: usize) -> Value {
    log.lock().unwrap()[i].body.clone()
}

fn steps(patch: &Value) -> Vec<Value> {
    patch["spec"]["strategy"]["rollingSync"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("maxUpdate").cloned().unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn the_leader_holds_the_next_waves_for_soak_then_releases_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = set("100");
    let (hub, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:10:00.000000Z", "1"),
        ),
        (200, first.clone()),
        (200, set("101")),
        (201, event_reply(1)),
        (201, event_reply(2)),
    ]);
    let mut guard = new_guard(hub, dir.path());
    let store0 = store(&first, at(0));

    assert!(matches!(
        guard.elect(at(0)).await.unwrap(),
        Term::Leading { .. }
    ));
    let report = guard.pass(&store0, &Clock::Frozen(at(0))).await;
    assert_eq!(report.failed, Vec::<String>::new());
    assert_eq!(
        lines(&log),
        [
            format!("GET {LEASE}/fleetdeck-guard"),
            format!("POST {LEASE}?&fieldManager=fleetdeck"),
            format!("GET {SET}"),
            format!("PATCH {SET}?&fieldManager=fleetdeck"),
            format!("POST {EVENTS}"),
            format!("POST {EVENTS}"),
        ]
    );
    let patch = seen(&log, 3);
    assert_eq!(patch["metadata"]["resourceVersion"], "100");
    assert_eq!(
        steps(&patch),
        [Value::Null, json!(0), json!(0)],
        "staging and prod held"
    );
    let record: Value = serde_json::from_str(
        patch["metadata"]["annotations"]["fleetdeck.io/paused-steps"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["2"]["maxUpdate"], 1, "staging's own value kept");
    assert_eq!(record["2"]["holds"][0]["kind"], "soak");
    assert_eq!(record["2"]["holds"][0]["after"], "dev");
    assert_eq!(record["3"]["maxUpdate"], "25%");

    let event = seen(&log, 4);
    assert_eq!(event["reason"], "FleetdeckHold");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["message"], "held wave staging: until dev has soaked");
    assert_eq!(event["involvedObject"]["uid"], UID);
    assert_eq!(event["reportingInstance"], "guard-7f9c-abcde");
    assert_eq!(
        seen(&log, 5)["message"],
        "held wave prod: until staging has soaked"
    );

    let (entries, bad) = read_audit(&dir.path().join("audit.jsonl")).unwrap();
    assert!(bad.is_empty());
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        assert_eq!(entry.identity, "guard-7f9c-abcde");
        assert!(matches!(entry.action, Action::GuardHold { .. }));
        assert!(entry.outcome.as_ref().unwrap().ok, "{entry:?}");
    }

    // 02:31: dev has been Healthy for 31 minutes. The set now carries the holds.
    merge(&mut first, &patch);
    first["metadata"]["resourceVersion"] = json!("101");
    let later = at(21 * 60);
    let (hub, log) = client(vec![
        (
            200,
            lease("guard-7f9c-abcde", "2026-11-21T02:30:50.000000Z", "5"),
        ),
        (
            200,
            lease("guard-7f9c-abcde", "2026-11-21T02:31:00.000000Z", "6"),
        ),
        (200, first.clone()),
        (200, first.clone()),
        (201, event_reply(3)),
    ]);
    let mut guard = new_guard(hub, dir.path());
    let store1 = store(&first, later);
    guard.elect(later).await.unwrap();
    let report = guard.pass(&store1, &Clock::Frozen(later)).await;
    assert_eq!(report.written.len(), 1, "{report:?}");
    let patch = seen(&log, 3);
    assert_eq!(patch["metadata"]["resourceVersion"], "101");
    assert_eq!(
        steps(&patch),
        [Value::Null, json!(1), json!(0)],
        "staging restored to its own maxUpdate, prod still held"
    );
    let event = seen(&log, 4);
    assert_eq!(event["reason"], "FleetdeckRelease");
    assert_eq!(event["message"], "released wave staging: dev has soaked");
    let (entries, _) = read_audit(&dir.path().join("audit.jsonl")).unwrap();
    assert!(matches!(entries[0].action, Action::GuardRelease { .. }));
    assert!(entries[0].outcome.as_ref().unwrap().ok);
}

/// The set after the first pass: staging and prod held for soak.
fn soak_held(rv: &str) -> Value {
    let mut set = set(rv);
    let holds = json!({
        "2": {"maxUpdate": 1, "holds": [{"kind": "soak", "after": "dev", "by": "fleetdeck-guard", "at": "2026-11-21T02:10:00Z"}]},
        "3": {"maxUpdate": "25%", "holds": [{"kind": "soak", "after": "staging", "by": "fleetdeck-guard", "at": "2026-11-21T02:10:00Z"}]},
    });
    set["metadata"]["annotations"]["fleetdeck.io/paused-steps"] = json!(holds.to_string());
    set["spec"]["strategy"]["rollingSync"]["steps"][1]["maxUpdate"] = json!(0);
    set["spec"]["strategy"]["rollingSync"]["steps"][2]["maxUpdate"] = json!(0);
    set
}

fn firing(name: &str, on: ClusterId) -> Alert {
    Alert {
        key: AlertKey(format!("cloudwatch/{}/{name}", on.name)),
        source: AlertSource::Cloudwatch,
        cluster: Some(on),
        name: name.into(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        first_seen: at(-60),
        last_change: at(-60),
        summary: "5xx above 1% for 5 minutes".into(),
        labels: Default::default(),
        runbook_url: None,
        ack: None,
    }
}

#[tokio::test]
async fn a_gate_alarm_holds_the_current_and_later_waves_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let held = soak_held("200");
    let (client, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:15:00.000000Z", "1"),
        ),
        (200, held.clone()),
        (200, held.clone()),
        (201, event_reply(1)),
        (201, event_reply(2)),
        (201, event_reply(3)),
    ]);
    let mut guard = new_guard(client, dir.path());
    let mut store = store(&held, at(300));
    store.apply(
        SourceEvent::Alerts(vec![firing("eks-apiserver-5xx-high", cluster("dev"))]),
        at(300),
    );
    store.expire(at(300));
    guard.elect(at(300)).await.unwrap();
    let report = guard.pass(&store, &Clock::Frozen(at(300))).await;
    assert_eq!(report.written.len(), 3, "{report:?}");

    let patch = seen(&log, 3);
    assert_eq!(
        steps(&patch),
        [json!(0), json!(0), json!(0)],
        "dev (current) and every later wave held"
    );
    let record: Value = serde_json::from_str(
        patch["metadata"]["annotations"]["fleetdeck.io/paused-steps"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["1"]["holds"][0]["kind"], "breaker");
    assert_eq!(record["1"]["holds"][0]["alarm"], "eks-apiserver-5xx-high");
    assert_eq!(record["1"]["maxUpdate"], Value::Null, "dev had none");
    for i in 4..7 {
        let event = seen(&log, i);
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "FleetdeckHold");
        let message = event["message"].as_str().unwrap();
        assert!(
            message.contains("circuit breaker: alarm eks-apiserver-5xx-high fired on dev-1"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_failing_alert_source_never_releases_a_soak_hold() {
    let dir = tempfile::tempdir().unwrap();
    let held = soak_held("300");
    let later = at(21 * 60);
    let (client, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:31:00.000000Z", "1"),
        ),
        (200, held.clone()),
    ]);
    let mut guard = new_guard(client, dir.path());
    let mut store = store(&held, later);
    let mut health = SourceHealth::new(CLOUDWATCH, 60);
    health.last_ok = Some(later - chrono::Duration::seconds(120));
    health.last_error = Some("DescribeAlarms: connection failed".into());
    health.last_error_at = Some(later);
    store.apply(SourceEvent::Health(health), later);
    store.expire(later);
    assert!(
        !store.guard_next("platform-addons").is_empty(),
        "the console's preview would release staging"
    );

    guard.elect(later).await.unwrap();
    let report = guard.pass(&store, &Clock::Frozen(later)).await;
    assert_eq!(
        lines(&log)[2..],
        [format!("GET {SET}")],
        "read, but nothing written"
    );
    assert!(report.written.is_empty());
    assert_eq!(report.withheld.len(), 1, "{report:?}");
    let (_, why) = &report.withheld[0];
    assert!(why.contains("NOT releasing"), "{why}");
    assert!(
        why.contains(
            "cloudwatch:111122223333/us-east-1 is failing: DescribeAlarms: connection failed"
        ),
        "{why}"
    );
    let (entries, _) = read_audit(&dir.path().join("audit.jsonl")).unwrap();
    assert!(entries.is_empty(), "nothing done, nothing audited");
}

#[tokio::test]
async fn a_follower_reads_the_lease_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (client, log) = client(vec![(
        200,
        lease("guard-0-other", "2026-11-21T02:09:55.000000Z", "9"),
    )]);
    let mut guard = new_guard(client, dir.path());
    let store = store(&set("1"), at(0));
    assert_eq!(
        guard.elect(at(0)).await.unwrap(),
        Term::Following {
            holder: Some("guard-0-other".into())
        }
    );
    let report = guard.pass(&store, &Clock::Frozen(at(0))).await;
    assert_eq!(report.skipped.as_deref(), Some("not the leader"));
    assert_eq!(lines(&log), [format!("GET {LEASE}/fleetdeck-guard")]);
}

#[tokio::test]
async fn a_leader_that_could_not_renew_stops_acting_before_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let forbidden = status_json(
        403,
        "Forbidden",
        "leases.coordination.k8s.io \"fleetdeck-guard\" is forbidden",
    );
    let (client, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:10:00.000000Z", "1"),
        ),
        (403, forbidden),
    ]);
    let mut guard = new_guard(client, dir.path());
    let store = store(&set("1"), at(0));
    guard.elect(at(0)).await.unwrap();
    assert!(guard.elect(at(10)).await.is_err(), "the renewal failed");
    assert!(
        guard.leading(at(19)),
        "still inside the window of the last renewal"
    );
    // 20 s after the last renewal, 10 s before the Lease could be taken over.
    let report = guard.pass(&store, &Clock::Frozen(at(20))).await;
    assert_eq!(report.skipped.as_deref(), Some("not the leader"));
    assert_eq!(lines(&log).len(), 3, "no ApplicationSet read or written");
}

#[tokio::test]
async fn a_failed_write_is_audited_as_failed_and_retried_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let forbidden = "applicationsets.argoproj.io \"platform-addons\" is forbidden: User \"system:serviceaccount:argocd:fleetdeck-guard\" cannot patch resource \"applicationsets\" in API group \"argoproj.io\" in the namespace \"argocd\"";
    let (client, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:10:00.000000Z", "1"),
        ),
        (200, set("100")),
        (403, status_json(403, "Forbidden", forbidden)),
    ]);
    let mut guard = new_guard(client, dir.path());
    let store = store(&set("100"), at(0));
    guard.elect(at(0)).await.unwrap();
    let report = guard.pass(&store, &Clock::Frozen(at(0))).await;
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].contains("(403); retrying next pass"),
        "{:?}",
        report.failed
    );
    assert_eq!(lines(&log).len(), 4, "no Event for a write that failed");
    let (entries, _) = read_audit(&dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(entries.len(), 2, "the intents were written before the call");
    for entry in entries {
        let outcome = entry.outcome.unwrap();
        assert!(!outcome.ok);
        assert!(outcome.message.contains("forbidden"), "{}", outcome.message);
    }
}

#[test]
fn guard_actions_are_denied_to_viewers_like_every_write() {
    let action = audit_action(
        "platform-addons",
        &GuardAction {
            wave: 1,
            wave_name: "staging".into(),
            placed: true,
            hold: crate::model::Hold {
                kind: crate::model::HoldKind::Soak {
                    after: "dev".into(),
                },
                by: "fleetdeck-guard".into(),
                at: at(0),
            },
        },
    );
    assert_eq!(action.kind(), "guard-hold");
    assert_eq!(action.target(), "platform-addons/staging");
    assert_eq!(
        action.reason(),
        Some("held wave staging: until dev has soaked")
    );
    let denied = authorize(Mode::Viewer, None, action).unwrap_err();
    assert!(denied.reason.contains("read-only viewer mode"), "{denied}");
}

const SECURITYHUB: &str = "securityhub:111122223333/us-east-1";

/// `soak_held`, whose plan also requires `pdb-*` policies to pass.
fn policy_plan_held(rv: &str) -> Value {
    let mut set = soak_held(rv);
    set["metadata"]["annotations"]["fleetdeck.io/plan"] =
        json!("soak: 30m\npolicies_must_pass:\n  - pdb-*\n");
    set
}

/// A Security Hub finding group failing `policy` on `on`.
fn finding(policy: &str, on: ClusterId) -> Alert {
    Alert {
        key: AlertKey::new(AlertSource::SecurityHub, Some(&on), policy, policy),
        source: AlertSource::SecurityHub,
        cluster: Some(on),
        name: policy.into(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        first_seen: at(-600),
        last_change: at(-600),
        summary: "PodDisruptionBudget maxUnavailable Non-Zero on 1 resource".into(),
        labels: [
            ("policy".to_string(), policy.to_string()),
            ("count".to_string(), "1".to_string()),
        ]
        .into(),
        runbook_url: None,
        ack: None,
    }
}

fn securityhub(store: &mut Store, now: Timestamp, error: Option<&str>) {
    let mut health = SourceHealth::new(SECURITYHUB, 300);
    health.last_ok = Some(now - chrono::Duration::seconds(60));
    if let Some(e) = error {
        health.last_error = Some(e.into());
        health.last_error_at = Some(now);
    }
    store.apply(SourceEvent::Health(health), now);
    store.apply(
        SourceEvent::Ready {
            source: SECURITYHUB.into(),
        },
        now,
    );
}

fn policy_guard(client: kube::Client, dir: &std::path::Path) -> Guard {
    guard_watching(client, dir, &[HUB, CLOUDWATCH, SECURITYHUB])
}

#[tokio::test]
async fn a_failing_policy_holds_the_wave_whose_turn_has_come_and_a_blind_hub_never_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    // 02:31: dev has soaked, so staging's soak hold goes; but staging-1 fails pdb-*.
    let later = at(21 * 60);
    let held = policy_plan_held("300");
    let (hub, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease("guard-7f9c-abcde", "2026-11-21T02:31:00.000000Z", "1"),
        ),
        (200, held.clone()),
        (200, held.clone()),
        (201, event_reply(1)),
        (201, event_reply(2)),
    ]);
    let mut guard = policy_guard(hub, dir.path());
    let mut first = store(&held, later);
    securityhub(&mut first, later, None);
    first.apply(
        SourceEvent::Alerts(vec![finding("pdb-maxunavailable", cluster("staging"))]),
        later,
    );
    first.expire(later);
    guard.elect(later).await.unwrap();
    let report = guard.pass(&first, &Clock::Frozen(later)).await;
    assert_eq!(report.written.len(), 2, "{report:?}");
    let patch = seen(&log, 3);
    assert_eq!(
        steps(&patch),
        [Value::Null, json!(0), json!(0)],
        "staging still held, now by the policy"
    );
    let record: Value = serde_json::from_str(
        patch["metadata"]["annotations"]["fleetdeck.io/paused-steps"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["2"]["holds"][0]["kind"], "policy");
    assert_eq!(record["2"]["holds"][0]["policy"], "pdb-maxunavailable");
    assert_eq!(record["2"]["holds"][0]["cluster"], "staging-1");
    let messages: Vec<String> = (4..6)
        .map(|i| seen(&log, i)["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        messages.contains(
            &"held wave staging: held: policy pdb-maxunavailable fails on staging-1".to_string()
        ),
        "{messages:?}"
    );

    // The finding is gone, but Security Hub is failing now: it might just not be saying.
    let mut now_held = held.clone();
    merge(&mut now_held, &patch);
    now_held["metadata"]["resourceVersion"] = json!("301");
    let (hub, log) = client(vec![
        (
            200,
            lease("guard-7f9c-abcde", "2026-11-21T02:31:00.000000Z", "2"),
        ),
        (
            200,
            lease("guard-7f9c-abcde", "2026-11-21T02:32:00.000000Z", "3"),
        ),
        (200, now_held.clone()),
    ]);
    let mut guard = policy_guard(hub, dir.path());
    let later = at(22 * 60);
    let mut second = store(&now_held, later);
    securityhub(
        &mut second,
        later,
        Some("securityhub:GetFindings: connection refused"),
    );
    second.expire(later);
    assert!(
        !second.guard_next("platform-addons").is_empty(),
        "the console's preview would release staging"
    );
    guard.elect(later).await.unwrap();
    let report = guard.pass(&second, &Clock::Frozen(later)).await;
    assert!(report.written.is_empty(), "{report:?}");
    assert_eq!(
        lines(&log)[2..],
        [format!("GET {SET}")],
        "read, nothing written"
    );
    let (_, why) = &report.withheld[0];
    assert!(
        why.contains("securityhub:111122223333/us-east-1 is failing: securityhub:GetFindings: connection refused"),
        "{why}"
    );
}
