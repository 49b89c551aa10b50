//! The adapter against ApplicationSet and Application bodies shaped like Argo CD's own
//! (field names as the v1alpha1 CRDs and the progressive-sync controller write them).

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::model::{HoldKind, Timestamp};
use crate::rollout::{pause, resume};
use crate::sources::argocd::parse;

fn t(minute: i64) -> Timestamp {
    DateTime::<Utc>::from_timestamp(1_795_000_000, 0).unwrap() + TimeDelta::minutes(minute)
}

fn rfc(minute: i64) -> String {
    t(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Three steps: dev (all at once), staging (`maxUpdate: 1`), prod (`maxUpdate: "25%"`).
fn set_json(application_status: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": "platform-addons",
            "namespace": "argocd",
            "resourceVersion": "48213",
            "uid": "8f0c1f5e-3d59-4c1b-9d0b-1f2e3d4c5b6a",
            "generation": 7,
            "annotations": annotations,
        },
        "spec": {
            "goTemplate": true,
            "generators": [{"clusters": {"selector": {"matchLabels": {"fleet": "eks"}}}}],
            "strategy": {
                "type": "RollingSync",
                "rollingSync": {"steps": [
                    {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
                    {"matchExpressions": [{"key": "env", "operator": "In", "values": ["staging"]}],
                     "maxUpdate": 1},
                    {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
                     "maxUpdate": "25%"},
                ]},
            },
            "template": {
                "metadata": {"name": "addons-{{.name}}", "labels": {"env": "{{.metadata.labels.env}}"}},
                "spec": {"project": "platform", "source": {"repoURL": "https://git.example.com/addons.git",
                         "path": "addons", "targetRevision": "HEAD"},
                         "destination": {"server": "{{.server}}", "namespace": "kube-system"}},
            },
        },
        "status": {
            "conditions": [{"type": "ResourcesUpToDate", "status": "True",
                            "reason": "ApplicationSetUpToDate", "message": "All applications have been generated successfully",
                            "lastTransitionTime": rfc(-300)}],
            "applicationStatus": application_status,
        },
    })
}

fn status(app: &str, status: &str, step: &str, minute: i64) -> Value {
    json!({
        "application": app,
        "status": status,
        "step": step,
        "message": format!("Application resource became {status}, updating status"),
        "lastTransitionTime": rfc(minute),
        "targetRevisions": ["4f3c2e1d"],
    })
}

fn app_json(name: &str, env: &str, sync: &str, health: &str, operation: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": "argocd",
            "labels": {"env": env},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                 "name": "platform-addons", "uid": "8f0c1f5e-3d59-4c1b-9d0b-1f2e3d4c5b6a",
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"project": "platform",
                 "destination": {"server": format!("https://{name}.eks.amazonaws.com"), "namespace": "kube-system"}},
        "status": {
            "sync": {"status": sync, "revision": "4f3c2e1d"},
            "health": {"status": health},
            "operationState": {"phase": operation, "message": "successfully synced (all tasks run)"},
        },
    })
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("a Kubernetes object")
}

fn parse_set(value: &Value) -> ApplicationSet {
    parse::application_set(&object(value.clone()), "argocd").expect("parses")
}

fn parse_app(value: Value) -> ArgoApp {
    let mut app = parse::application(&object(value), "argocd")
        .expect("parses")
        .app;
    app.cluster = Some(ClusterId::new(
        "111122223333",
        "us-east-1",
        app.name.clone(),
    ));
    app
}

/// dev-1 healthy for 40 min; staging-1 healthy 10 min ago, staging-2 progressing;
/// prod-1..prod-8 waiting; one app labelled for no step.
fn fleet() -> (Value, Vec<ArgoApp>) {
    let mut statuses = vec![
        status("addons-dev-1", "Healthy", "1", -40),
        status("addons-staging-1", "Healthy", "2", -10),
        status("addons-staging-2", "Progressing", "2", -3),
    ];
    let mut apps = vec![
        parse_app(app_json(
            "addons-dev-1",
            "dev",
            "Synced",
            "Healthy",
            "Succeeded",
        )),
        parse_app(app_json(
            "addons-staging-1",
            "staging",
            "Synced",
            "Healthy",
            "Succeeded",
        )),
        parse_app(app_json(
            "addons-staging-2",
            "staging",
            "OutOfSync",
            "Progressing",
            "Running",
        )),
    ];
    for i in 1..=8 {
        let name = format!("addons-prod-{i}");
        statuses.push(status(&name, "Waiting", "3", -60));
        apps.push(parse_app(app_json(
            &name,
            "prod",
            "OutOfSync",
            "Healthy",
            "Succeeded",
        )));
    }
    statuses.push(status("addons-lab-1", "Waiting", "-1", -60));
    apps.push(parse_app(app_json(
        "addons-lab-1",
        "lab",
        "OutOfSync",
        "Healthy",
        "Succeeded",
    )));
    (set_json(Value::Array(statuses), json!({})), apps)
}

fn build(set: &Value, apps: &[ArgoApp], now: Timestamp) -> (Rollout, Vec<String>) {
    let plan = Plan::with_soak(20 * 60);
    let built = rollout(
        "argocd:hub",
        &parse_set(set),
        apps,
        Some(&plan),
        |_| None,
        now,
    );
    (built.rollout, built.warnings)
}

#[test]
fn a_rolling_sync_set_becomes_waves_of_cells() {
    let (set, apps) = fleet();
    let (r, warnings) = build(&set, &apps, t(0));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(r.name, "platform-addons");
    assert_eq!(r.source, "argocd:hub");
    let names: Vec<&str> = r.waves.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["env In [dev]", "env In [staging]", "env In [prod]"]);
    assert_eq!(r.waves[2].environment, Environment::Prod);
    assert_eq!(
        r.waves[0].state,
        WaveState::Done,
        "healthy 40 min > 20 min soak"
    );
    assert_eq!(r.waves[1].state, WaveState::Running);
    assert_eq!(r.waves[2].state, WaveState::Pending);
    assert_eq!(r.waves[1].max_parallel, 1);
    assert_eq!(r.waves[2].max_parallel, 2, "25% of 8 apps");
    assert_eq!(
        max_parallel(Some("10%"), 8),
        1,
        "rounded down, at least one above 0%"
    );
    assert_eq!(max_parallel(Some("0%"), 8), 0);
    assert_eq!(max_parallel(Some("0"), 8), 0, "Argo CD: 0 updates none");
    assert_eq!(max_parallel(None, 8), 8, "unset: 100%");
    assert_eq!(r.waves[0].max_parallel, 1, "unset: all of one app at once");
    let staging: Vec<(Option<&str>, CellPhase)> = r.waves[1]
        .cells
        .iter()
        .map(|c| (c.app.as_deref(), c.phase))
        .collect();
    assert_eq!(
        staging,
        [
            (Some("addons-staging-1"), CellPhase::Soaking),
            (Some("addons-staging-2"), CellPhase::Updating),
        ]
    );
    let cell = &r.waves[1].cells[1];
    assert_eq!(cell.since, t(-3), "the transition time Argo CD recorded");
    assert!(
        cell.message
            .starts_with("OutOfSync/Progressing, sync Running: Application resource"),
        "{}",
        cell.message
    );
    assert_eq!(r.unmatched.len(), 1, "step -1: no step matches it");
    assert_eq!(r.unmatched[0].app.as_deref(), Some("addons-lab-1"));
    assert_eq!(r.cells_total(), 11);
}

#[test]
fn phases_join_the_step_status_with_the_application() {
    let cases = [
        ("Waiting", "Healthy", "Succeeded", CellPhase::Pending),
        ("Pending", "Healthy", "Succeeded", CellPhase::PreCheck),
        ("Progressing", "Progressing", "Running", CellPhase::Updating),
        ("Progressing", "Degraded", "Running", CellPhase::Failed),
        ("Healthy", "Healthy", "Succeeded", CellPhase::Soaking),
        ("Healthy", "Healthy", "Failed", CellPhase::Failed),
        ("Progressing", "Progressing", "Error", CellPhase::Failed),
    ];
    for (step_status, health, operation, want) in cases {
        let set = set_json(
            json!([status("addons-staging-1", step_status, "2", -1)]),
            json!({}),
        );
        let apps = [parse_app(app_json(
            "addons-staging-1",
            "staging",
            "Synced",
            health,
            operation,
        ))];
        let (r, _) = build(&set, &apps, t(0));
        assert_eq!(
            r.waves[1].cells[0].phase, want,
            "{step_status} + {health} + {operation}"
        );
    }
}

#[test]
fn without_status_apps_are_placed_by_their_labels() {
    let set = json!({
        "metadata": {"name": "platform-addons", "namespace": "argocd", "resourceVersion": "1"},
        "spec": {"strategy": {"type": "RollingSync", "rollingSync": {"steps": [
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]},
                                  {"key": "tier", "operator": "Exists"}]},
        ]}}},
    });
    let mut tiered = app_json("addons-prod-1", "prod", "OutOfSync", "Healthy", "Succeeded");
    tiered["metadata"]["labels"]["tier"] = json!("1");
    let apps = [
        parse_app(app_json(
            "addons-dev-1",
            "dev",
            "OutOfSync",
            "Missing",
            "Succeeded",
        )),
        parse_app(tiered),
        parse_app(app_json(
            "addons-prod-2",
            "prod",
            "OutOfSync",
            "Healthy",
            "Succeeded",
        )),
    ];
    let (r, warnings) = build(&set, &apps, t(0));
    assert!(warnings.is_empty());
    assert_eq!(r.waves[0].cells[0].app.as_deref(), Some("addons-dev-1"));
    assert_eq!(r.waves[0].cells[0].phase, CellPhase::Pending);
    assert!(
        r.waves[0].cells[0]
            .message
            .starts_with("no progressive-sync status yet"),
        "{}",
        r.waves[0].cells[0].message
    );
    assert_eq!(r.waves[1].cells[0].app.as_deref(), Some("addons-prod-1"));
    assert_eq!(r.waves[1].name, "env NotIn [dev], tier Exists");
    assert_eq!(r.unmatched[0].app.as_deref(), Some("addons-prod-2"));
}

#[test]
fn wave_names_come_from_the_annotation_and_bad_annotations_are_named() {
    let (mut set, apps) = fleet();
    set["metadata"]["annotations"] = json!({WAVE_NAMES: "canary, staging, prod"});
    let (r, warnings) = build(&set, &apps, t(0));
    assert!(warnings.is_empty());
    assert_eq!(r.waves[0].name, "canary");
    set["metadata"]["annotations"] = json!({
        WAVE_NAMES: "[\"canary\"]",
        PAUSED_STEPS: "{not json",
        PLAN: "soak: soonish",
    });
    let (r, warnings) = build(&set, &apps, t(0));
    assert_eq!(r.waves[0].name, "canary");
    assert_eq!(
        r.waves[1].name, "env In [staging]",
        "the rest keep their default"
    );
    let joined = warnings.join("\n");
    assert!(
        joined.contains("names 1 waves but the set has 3 steps"),
        "{joined}"
    );
    assert!(
        joined.contains("annotation fleetdeck.io/paused-steps is not valid"),
        "{joined}"
    );
    assert!(
        joined
            .contains("ApplicationSet argocd/platform-addons annotation fleetdeck.io/plan: soak:"),
        "{joined}"
    );
}

#[test]
fn the_plan_annotation_sets_soak_and_gates() {
    let (mut set, apps) = fleet();
    set["metadata"]["annotations"] = json!({
        PLAN: "soak: 5m\nsoak_by_wave: { \"2\": 1h }\ngates: [eks-apiserver-5xx-*]\n",
    });
    let (r, _) = build(&set, &apps, t(0));
    assert_eq!(r.waves[0].soak_secs, 300);
    assert_eq!(r.waves[1].soak_secs, 3600);
    assert_eq!(r.gates[0].alarm, "eks-apiserver-5xx-*");
    assert!(r.gates[0].covers("eks-apiserver-5xx-high"));
}

/// RFC 7386 JSON merge patch, as the API server applies `application/merge-patch+json`.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let object = target.as_object_mut().unwrap();
            for (key, value) in fields {
                if value.is_null() {
                    object.remove(key);
                } else {
                    merge(object.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[test]
fn pause_writes_max_update_zero_and_resume_restores_exactly() {
    let (mut set, apps) = fleet();
    let (mut r, _) = build(&set, &apps, t(0));
    pause(&mut r, 2, "alice", "INC-4411: 5xx in us-east-1", t(1)).unwrap();
    pause(&mut r, 0, "bob", "dev freeze", t(1)).unwrap_err();
    let patch = holds_patch(&set, &r).unwrap();
    assert_eq!(
        patch["metadata"]["resourceVersion"], "48213",
        "optimistic concurrency"
    );
    let steps = &patch["spec"]["strategy"]["rollingSync"]["steps"];
    assert_eq!(steps[2]["maxUpdate"], 0);
    assert_eq!(steps[1]["maxUpdate"], 1, "other steps untouched");
    assert_eq!(steps[2]["matchExpressions"][0]["values"][0], "prod");
    let record: Value = serde_json::from_str(
        patch["metadata"]["annotations"][PAUSED_STEPS]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        record["3"]["maxUpdate"], "25%",
        "the original value is kept"
    );
    assert_eq!(record["3"]["holds"][0]["kind"], "operator");
    assert_eq!(record["3"]["holds"][0]["by"], "alice");
    assert_eq!(
        record["3"]["holds"][0]["reason"],
        "INC-4411: 5xx in us-east-1"
    );
    assert!(
        record["3"]["holds"][0]["at"]
            .as_str()
            .unwrap()
            .starts_with("2026")
    );

    // Another console reads the patched set and sees it paused by alice.
    merge(&mut set, &patch);
    let (mut seen, _) = build(&set, &apps, t(2));
    assert_eq!(seen.waves[2].paused_by(), Some("alice"));
    assert_eq!(
        seen.waves[2].max_parallel, 2,
        "shown with its real maxUpdate"
    );

    // Pausing again, written twice, keeps the first original value.
    seen.waves[2].holds.push(Hold {
        kind: HoldKind::Soak {
            after: "env In [staging]".into(),
        },
        by: "fleetdeck-guard".into(),
        at: t(2),
    });
    let again = holds_patch(&set, &seen).unwrap();
    let record: Value = serde_json::from_str(
        again["metadata"]["annotations"][PAUSED_STEPS]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["3"]["maxUpdate"], "25%");
    assert_eq!(record["3"]["holds"].as_array().unwrap().len(), 2);

    resume(&mut seen, 2, t(3), &[]).unwrap();
    seen.waves[2].holds.clear();
    let patch = holds_patch(&set, &seen).unwrap();
    merge(&mut set, &patch);
    assert_eq!(
        set["spec"]["strategy"]["rollingSync"]["steps"][2]["maxUpdate"], "25%",
        "restored exactly"
    );
    assert!(
        set["metadata"]["annotations"].get(PAUSED_STEPS).is_none(),
        "the annotation is removed when nothing is held"
    );
}

#[test]
fn an_unset_max_update_is_unset_again_on_resume() {
    let (mut set, apps) = fleet();
    let (mut r, _) = build(&set, &apps, t(0));
    pause(&mut r, 0, "alice", "x", t(1)).unwrap_err(); // dev is done
    pause(&mut r, 1, "alice", "hold staging", t(1)).unwrap();
    let hold = r.waves[1].holds[0].clone();
    r.waves[0].holds.push(hold);
    let patch = holds_patch(&set, &r).unwrap();
    assert_eq!(
        patch["spec"]["strategy"]["rollingSync"]["steps"][0]["maxUpdate"],
        0
    );
    merge(&mut set, &patch);
    let (mut r, _) = build(&set, &apps, t(2));
    for w in &mut r.waves {
        w.holds.clear();
    }
    let patch = holds_patch(&set, &r).unwrap();
    merge(&mut set, &patch);
    let steps = &set["spec"]["strategy"]["rollingSync"]["steps"];
    assert!(steps[0].get("maxUpdate").is_none(), "{steps}");
    assert_eq!(steps[1]["maxUpdate"], 1);
}

#[test]
fn a_set_whose_steps_changed_is_not_written_blind() {
    let (set, apps) = fleet();
    let (r, _) = build(&set, &apps, t(0));
    let mut changed = set.clone();
    changed["spec"]["strategy"]["rollingSync"]["steps"]
        .as_array_mut()
        .unwrap()
        .pop();
    let e = holds_patch(&changed, &r).unwrap_err();
    assert!(e.contains("now has 2 steps, not 3"), "{e}");
}

#[test]
fn a_breaker_resume_records_the_soak_restart_for_every_console() {
    let (mut set, apps) = fleet();
    let (mut r, _) = build(&set, &apps, t(0));
    r.gates.push(crate::model::Gate {
        alarm: "eks-apiserver-5xx-*".into(),
        status: crate::model::GateStatus::Ok,
    });
    let staging1 = r.waves[1].cells[0].cluster.clone();
    crate::rollout::trip_breaker(&mut r, "eks-apiserver-5xx-high", &staging1, t(1)).unwrap();
    assert!(
        r.waves[2]
            .holds
            .iter()
            .any(|h| matches!(h.kind, HoldKind::Breaker { .. }))
    );
    let patch = holds_patch(&set, &r).unwrap();
    merge(&mut set, &patch);
    let (mut r, _) = build(&set, &apps, t(2));
    assert!(matches!(r.waves[1].state, WaveState::Halted { .. }));
    assert!(
        matches!(r.waves[2].state, WaveState::Halted { .. }),
        "later steps held too"
    );
    resume(&mut r, 1, t(5), &[]).unwrap();
    assert_eq!(
        r.waves[1].soak_from,
        Some(t(5)),
        "staging-1 was soaking: it starts over"
    );
    assert_eq!(
        r.waves[2].holds,
        vec![],
        "the breaker's later holds are lifted too"
    );
    let patch = holds_patch(&set, &r).unwrap();
    merge(&mut set, &patch);
    let (seen, _) = build(&set, &apps, t(6));
    assert_eq!(
        seen.waves[1].soak_from,
        Some(t(5)),
        "every console counts from the restart"
    );
    assert_eq!(seen.waves[1].state, WaveState::Running);
    assert!(set["metadata"]["annotations"].get(PAUSED_STEPS).is_none());
}
