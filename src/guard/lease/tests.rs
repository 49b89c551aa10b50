//! The election's decision table with a frozen clock, and its API calls against a fake
//! API server answering as a real one does (201, 200, 404 NotFound, 409 AlreadyExists,
//! 409 Conflict).

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::guard::testing::{at, client, lines, status_json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/argocd/leases";

fn record(holder: &str, renewed: Option<Timestamp>, transitions: i32) -> Record {
    Record {
        holder: holder.into(),
        acquired: Some(at(-3600)),
        renewed,
        duration_secs: 30,
        transitions,
    }
}

#[test]
fn no_lease_is_created() {
    assert_eq!(decide(None, "guard-a", at(0)), Decision::Create);
}

#[test]
fn my_own_lease_is_renewed_even_when_it_ran_out() {
    let mine = record("guard-a", Some(at(-5)), 3);
    assert_eq!(decide(Some(&mine), "guard-a", at(0)), Decision::Renew);
    let lapsed = record("guard-a", Some(at(-300)), 3);
    assert_eq!(decide(Some(&lapsed), "guard-a", at(0)), Decision::Renew);
}

#[test]
fn a_live_lease_of_another_is_followed_until_it_expires() {
    let theirs = record("guard-b", Some(at(0)), 3);
    for now in [0, 10, 29] {
        assert_eq!(
            decide(Some(&theirs), "guard-a", at(now)),
            Decision::Follow {
                holder: "guard-b".into(),
                until: at(30)
            },
            "{now}s after its renewal"
        );
    }
    for now in [30, 31, 600] {
        assert_eq!(
            decide(Some(&theirs), "guard-a", at(now)),
            Decision::TakeOver { transitions: 4 },
            "{now}s after its renewal"
        );
    }
}

#[test]
fn a_released_or_never_renewed_lease_is_taken_at_once() {
    let released = Record {
        holder: String::new(),
        duration_secs: 1,
        ..record("", Some(at(0)), 7)
    };
    assert_eq!(
        decide(Some(&released), "guard-a", at(0)),
        Decision::TakeOver { transitions: 8 }
    );
    let never = Record {
        acquired: None,
        ..record("guard-b", None, 0)
    };
    assert_eq!(
        decide(Some(&never), "guard-a", at(0)),
        Decision::TakeOver { transitions: 1 }
    );
}

#[test]
fn the_identity_comes_from_the_flag_then_pod_name_then_hostname() {
    let env = |pod: Option<&'static str>| move |k: &str| (k == "POD_NAME").then_some(pod?.into());
    let host = || Some("bastion-1".to_string());
    assert_eq!(
        identity(Some("me"), env(Some("pod-1")), host).unwrap(),
        "me"
    );
    assert_eq!(identity(None, env(Some("pod-1")), host).unwrap(), "pod-1");
    assert_eq!(identity(None, env(None), host).unwrap(), "bastion-1");
    let e = identity(None, env(None), || None).unwrap_err();
    assert!(e.contains("--identity"), "{e}");
}

/// A Lease as the API server returns it.
fn lease(holder: Option<&str>, renewed: &str, transitions: i32, rv: &str) -> Value {
    let mut spec = json!({
        "leaseDurationSeconds": 30,
        "acquireTime": "2026-11-21T01:00:00.000000Z",
        "renewTime": renewed,
        "leaseTransitions": transitions,
    });
    if let Some(holder) = holder {
        spec["holderIdentity"] = json!(holder);
    }
    json!({
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": "fleetdeck-guard",
            "namespace": "argocd",
            "uid": "2b0c6a3e-5f7d-4c1e-9a8b-7c6d5e4f3a21",
            "resourceVersion": rv,
            "creationTimestamp": "2026-11-21T01:00:00Z",
            "managedFields": [{"manager": "fleetdeck", "operation": "Update",
                               "apiVersion": "coordination.k8s.io/v1",
                               "time": "2026-11-21T02:09:50Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:holderIdentity": {}}}}]
        },
        "spec": spec,
    })
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "leases.coordination.k8s.io \"fleetdeck-guard\" not found",
           "reason": "NotFound",
           "details": {"name": "fleetdeck-guard", "group": "coordination.k8s.io", "kind": "leases"},
           "code": 404})
}

const CONFLICT: &str = "Operation cannot be fulfilled on leases.coordination.k8s.io \"fleetdeck-guard\": the object has been modified; please apply your changes to the latest version and try again";

fn lock(client: kube::Client, me: &str) -> LeaseLock {
    LeaseLock::new(client, "argocd", me)
}

#[tokio::test]
async fn with_no_lease_the_guard_creates_one_and_leads() {
    let (client, log) = client(vec![
        (404, not_found()),
        (
            201,
            lease(Some("guard-a"), "2026-11-21T02:10:00.000000Z", 0, "900"),
        ),
    ]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(term, Term::Leading { act_until: at(20) });
    assert_eq!(
        lines(&log),
        [
            format!("GET {LEASES}/fleetdeck-guard"),
            format!("POST {LEASES}?&fieldManager=fleetdeck")
        ]
    );
    let body = &log.lock().unwrap()[1].body;
    assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(body["kind"], "Lease");
    assert_eq!(body["metadata"]["name"], "fleetdeck-guard");
    assert_eq!(
        body["spec"],
        json!({"holderIdentity": "guard-a", "leaseDurationSeconds": 30,
               "acquireTime": "2026-11-21T02:10:00.000000Z",
               "renewTime": "2026-11-21T02:10:00.000000Z", "leaseTransitions": 0})
    );
}

#[tokio::test]
async fn losing_the_race_to_create_means_following() {
    let exists = status_json(
        409,
        "AlreadyExists",
        "leases.coordination.k8s.io \"fleetdeck-guard\" already exists",
    );
    let (client, log) = client(vec![(404, not_found()), (409, exists)]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(term, Term::Following { holder: None });
    assert_eq!(lines(&log).len(), 2);
}

#[tokio::test]
async fn the_leader_renews_with_the_resource_version_it_read() {
    let (client, log) = client(vec![
        (
            200,
            lease(Some("guard-a"), "2026-11-21T02:09:50.000000Z", 2, "1234"),
        ),
        (
            200,
            lease(Some("guard-a"), "2026-11-21T02:10:00.000000Z", 2, "1235"),
        ),
    ]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(term, Term::Leading { act_until: at(20) });
    let seen = log.lock().unwrap();
    assert_eq!(
        seen[1].line(),
        format!("PUT {LEASES}/fleetdeck-guard?&fieldManager=fleetdeck")
    );
    let body = &seen[1].body;
    assert_eq!(body["metadata"]["resourceVersion"], "1234");
    assert_eq!(body["spec"]["holderIdentity"], "guard-a");
    assert_eq!(body["spec"]["renewTime"], "2026-11-21T02:10:00.000000Z");
    assert_eq!(
        body["spec"]["acquireTime"], "2026-11-21T01:00:00.000000Z",
        "renewing keeps the acquire time"
    );
    assert_eq!(body["spec"]["leaseTransitions"], 2);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_counted() {
    let (client, log) = client(vec![
        (
            200,
            lease(Some("guard-b"), "2026-11-21T02:09:00.000000Z", 2, "77"),
        ),
        (
            200,
            lease(Some("guard-a"), "2026-11-21T02:10:00.000000Z", 3, "78"),
        ),
    ]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(term, Term::Leading { act_until: at(20) });
    let body = &log.lock().unwrap()[1].body;
    assert_eq!(body["metadata"]["resourceVersion"], "77");
    assert_eq!(body["spec"]["holderIdentity"], "guard-a");
    assert_eq!(body["spec"]["leaseTransitions"], 3);
    assert_eq!(body["spec"]["acquireTime"], "2026-11-21T02:10:00.000000Z");
}

#[tokio::test]
async fn losing_the_race_to_take_over_means_following() {
    let (client, _) = client(vec![
        (
            200,
            lease(Some("guard-b"), "2026-11-21T02:09:00.000000Z", 2, "77"),
        ),
        (409, status_json(409, "Conflict", CONFLICT)),
    ]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(term, Term::Following { holder: None });
}

#[tokio::test]
async fn a_live_lease_of_another_is_only_read() {
    let (client, log) = client(vec![(
        200,
        lease(Some("guard-b"), "2026-11-21T02:09:55.000000Z", 2, "77"),
    )]);
    let term = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap();
    assert_eq!(
        term,
        Term::Following {
            holder: Some("guard-b".into())
        }
    );
    assert_eq!(lines(&log).len(), 1, "a follower writes nothing");
}

#[tokio::test]
async fn a_refusal_names_the_lease_and_the_servers_words() {
    let forbidden = "leases.coordination.k8s.io \"fleetdeck-guard\" is forbidden: User \"system:serviceaccount:argocd:fleetdeck-guard\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"argocd\"";
    let (client, _) = client(vec![(403, status_json(403, "Forbidden", forbidden))]);
    let e = lock(client, "guard-a")
        .try_acquire_or_renew(at(0))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("reading Lease argocd/fleetdeck-guard (coordination.k8s.io/v1): leases."),
        "{e}"
    );
    assert!(e.ends_with("(403)"), "{e}");
}

#[tokio::test]
async fn release_empties_the_holder_so_a_successor_takes_over_at_once() {
    let (client, log) = client(vec![
        (
            200,
            lease(Some("guard-a"), "2026-11-21T02:09:55.000000Z", 4, "90"),
        ),
        (200, lease(None, "2026-11-21T02:10:00.000000Z", 4, "91")),
    ]);
    assert!(lock(client, "guard-a").release(at(0)).await.unwrap());
    let seen = log.lock().unwrap();
    let spec = &seen[1].body["spec"];
    assert!(spec.get("holderIdentity").is_none(), "{spec}");
    assert_eq!(spec["leaseDurationSeconds"], 1);
    assert_eq!(spec["leaseTransitions"], 4);
    assert_eq!(seen[1].body["metadata"]["resourceVersion"], "90");
    // What the successor reads next: free, so it takes over without waiting.
    let released: Lease =
        serde_json::from_value(lease(None, "2026-11-21T02:10:00.000000Z", 4, "91")).unwrap();
    assert_eq!(
        decide(Some(&record_of(&released)), "guard-b", at(1)),
        Decision::TakeOver { transitions: 5 }
    );
}

#[tokio::test]
async fn release_leaves_anothers_lease_alone() {
    let (client, log) = client(vec![(
        200,
        lease(Some("guard-b"), "2026-11-21T02:09:55.000000Z", 4, "90"),
    )]);
    assert!(!lock(client, "guard-a").release(at(0)).await.unwrap());
    assert_eq!(lines(&log).len(), 1);
}
