//! The watch against a scripted API server: what the cluster view and the alert list
//! would show. Time is tokio's paused clock, so backoffs and timeouts take no real time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

use super::mock::{self, MockApi, Reply};
use super::*;
use crate::model::{Alert, AlertKey, AlertState, ClusterId, Connection, Severity};

const NODES: &str = "/api/v1/nodes";
const PODS: &str = "/api/v1/pods";
const EVENTS: &str = "/api/v1/events";
const PDBS: &str = "/apis/policy/v1/poddisruptionbudgets";
const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";

fn now() -> Timestamp {
    "2026-11-21T08:00:00Z".parse().expect("time")
}

fn minutes_ago(m: i64) -> String {
    (now() - chrono::TimeDelta::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn cluster() -> ClusterId {
    ClusterId::new("111122223333", "eu-west-1", "prod-eu-1")
}

fn key(name: &str, fingerprint: &str) -> AlertKey {
    AlertKey::new(
        crate::model::AlertSource::Kubernetes,
        Some(&cluster()),
        name,
        fingerprint,
    )
}

// ---- objects, shaped as the API server sends them -------------------------------------

fn node(name: &str, ready: &str, since_minutes: i64, reason: &str, message: &str) -> Value {
    json!({
        "metadata": {
            "name": name, "uid": format!("uid-{name}"), "resourceVersion": "900",
            "creationTimestamp": minutes_ago(600),
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "eu-west-1a"}
        },
        "spec": {"providerID": format!("aws:///eu-west-1a/i-{name}")},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": minutes_ago(1),
                 "lastTransitionTime": minutes_ago(600), "reason": "KubeletHasSufficientMemory",
                 "message": "kubelet has sufficient memory available"},
                {"type": "Ready", "status": ready, "lastHeartbeatTime": minutes_ago(since_minutes),
                 "lastTransitionTime": minutes_ago(since_minutes), "reason": reason, "message": message}
            ],
            "capacity": {"cpu": "4", "memory": "16069876Ki", "pods": "58"}
        }
    })
}

fn ready_node(i: usize) -> Value {
    node(
        &format!("ip-10-0-2-{i}.eu-west-1.compute.internal"),
        "True",
        600,
        "KubeletReady",
        "kubelet is posting ready status",
    )
}

fn container_status(name: &str, restarts: i32, state: Value) -> Value {
    json!({
        "name": name, "image": format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/{name}:1.4.2"),
        "imageID": "", "ready": false, "restartCount": restarts, "started": false, "state": state,
        "containerID": format!("containerd://{name}0123456789abcdef")
    })
}

fn waiting(reason: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": format!("{reason}: see kubelet")}})
}

fn pod(namespace: &str, name: &str, phase: &str, statuses: Vec<Value>, init: Vec<Value>) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "resourceVersion": "1500", "creationTimestamp": minutes_ago(30),
            "labels": {"app": name.split('-').next().unwrap_or_default()}
        },
        "spec": {"containers": [{"name": "app", "image": "app:1"}], "nodeName": "ip-10-0-2-1.eu-west-1.compute.internal"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": minutes_ago(20)}],
            "initContainerStatuses": init,
            "containerStatuses": statuses,
            "qosClass": "Burstable", "startTime": minutes_ago(30)
        }
    })
}

fn crashing(namespace: &str, name: &str, restarts: i32) -> Value {
    pod(
        namespace,
        name,
        "Running",
        vec![container_status(
            "app",
            restarts,
            waiting("CrashLoopBackOff"),
        )],
        vec![],
    )
}

fn running(namespace: &str, name: &str, restarts: i32, resource_version: &str) -> Value {
    let mut p = pod(
        namespace,
        name,
        "Running",
        vec![container_status(
            "app",
            restarts,
            json!({"running": {"startedAt": minutes_ago(0)}}),
        )],
        vec![],
    );
    p["metadata"]["resourceVersion"] = json!(resource_version);
    p
}

#[allow(clippy::too_many_arguments)]
fn warning(
    name: &str,
    namespace: &str,
    object: (&str, &str),
    reason: &str,
    message: &str,
    count: i32,
    last_minutes: i64,
) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "resourceVersion": "2001", "creationTimestamp": minutes_ago(last_minutes + 5)},
        "involvedObject": {"kind": object.0, "namespace": namespace, "name": object.1,
                           "uid": "uid-obj", "apiVersion": "v1", "resourceVersion": "1500",
                           "fieldPath": "spec.containers{app}"},
        "reason": reason, "message": message,
        "source": {"component": "kubelet", "host": "ip-10-0-2-1.eu-west-1.compute.internal"},
        "firstTimestamp": minutes_ago(last_minutes + 5), "lastTimestamp": minutes_ago(last_minutes),
        "count": count, "type": "Warning", "eventTime": null,
        "reportingComponent": "kubelet", "reportingInstance": "ip-10-0-2-1.eu-west-1.compute.internal"
    })
}

fn pdb(
    namespace: &str,
    name: &str,
    allowed: i32,
    healthy: i32,
    desired: i32,
    expected: i32,
) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "700", "generation": 1},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
        "status": {
            "observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": expected,
            "conditions": [{"type": "DisruptionAllowed", "status": if allowed > 0 {"True"} else {"False"},
                            "reason": if allowed > 0 {"SufficientPods"} else {"InsufficientPods"},
                            "message": "", "lastTransitionTime": minutes_ago(50), "observedGeneration": 1}]
        }
    })
}

fn deployment(namespace: &str, name: &str, replicas: i32) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "800", "generation": 3},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": name, "image": format!("{name}:2.0")}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        },
        "status": {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas,
                   "readyReplicas": replicas, "availableReplicas": replicas}
    })
}

fn list_of(path: &str, resource_version: &str, items: Vec<Value>) -> Reply {
    let (kind, version) = match path {
        NODES => ("NodeList", "v1"),
        PODS => ("PodList", "v1"),
        EVENTS => ("EventList", "v1"),
        PDBS => ("PodDisruptionBudgetList", "policy/v1"),
        _ => ("DeploymentList", "apps/v1"),
    };
    Reply::Json(mock::list(kind, version, resource_version, items))
}

// ---- running the watch and folding what it sends ----------------------------------------

struct Run {
    rx: mpsc::Receiver<SourceEvent>,
    stop: signal::Sender<bool>,
    task: JoinHandle<()>,
    signals: Option<KubeSignals>,
    pictures: usize,
    alerts: BTreeMap<AlertKey, Alert>,
    gone: Vec<AlertKey>,
}

fn start(client: kube::Client, production: bool) -> Run {
    let (tx, rx) = mpsc::channel(64);
    let (stop, stop_rx) = signal::channel(false);
    let target = ClusterTarget {
        id: cluster(),
        arn: "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eu-1".into(),
        endpoint: Some("https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com".into()),
        certificate_authority: None,
        production,
    };
    let task = tokio::spawn(watch(client, target, Clock::Frozen(now()), tx, stop_rx));
    Run {
        rx,
        stop,
        task,
        signals: None,
        pictures: 0,
        alerts: BTreeMap::new(),
        gone: Vec::new(),
    }
}

impl Run {
    /// Folds what the watch sends until `done` holds; panics after 10 virtual minutes.
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => self.fold(event),
                Ok(None) => panic!("channel closed waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; last picture: {:#?}",
                    self.signals
                ),
            }
        }
    }

    fn fold(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::KubeSignals {
                cluster: c,
                signals,
            } => {
                assert_eq!(c, cluster());
                self.pictures += 1;
                self.signals = Some(*signals);
            }
            SourceEvent::Alerts(alerts) => {
                for a in alerts {
                    self.alerts.insert(a.key.clone(), a);
                }
            }
            SourceEvent::AlertsGone(keys) => self.gone.extend(keys),
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn picture(&self) -> &KubeSignals {
        self.signals.as_ref().expect("a picture")
    }

    fn alert(&self, name: &str, fingerprint: &str) -> Option<&Alert> {
        self.alerts.get(&key(name, fingerprint))
    }

    fn firing(&self, name: &str, fingerprint: &str) -> bool {
        self.alert(name, fingerprint).is_some_and(Alert::is_firing)
    }
}

fn has_picture(r: &Run, f: impl Fn(&KubeSignals) -> bool) -> bool {
    r.signals.as_ref().is_some_and(f)
}

// ---- tests ----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn first_lists_become_one_picture_and_its_alerts() {
    let (api, client) = MockApi::start();
    let mut nodes: Vec<Value> = (1..=11).map(ready_node).collect();
    nodes.push(node(
        "ip-10-0-1-23.eu-west-1.compute.internal",
        "Unknown",
        14,
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    ));
    api.lists(NODES, [list_of(NODES, "12001", nodes)]);
    api.lists(
        PODS,
        [list_of(
            PODS,
            "12002",
            vec![
                crashing("shop", "api-7d9f8-x2k4p", 14),
                crashing("shop", "api-7d9f8-q8w2z", 3),
                pod(
                    "shop",
                    "web-5c4b7-m2n3b",
                    "Pending",
                    vec![container_status("app", 0, waiting("PodInitializing"))],
                    vec![container_status("migrate", 0, waiting("ImagePullBackOff"))],
                ),
                pod(
                    "payments",
                    "ledger-0",
                    "Pending",
                    vec![container_status("app", 0, waiting("ErrImagePull"))],
                    vec![],
                ),
                running("shop", "cart-1", 0, "1501"),
            ],
        )],
    );
    let backoff = "Back-off restarting failed container app in pod api-7d9f8-x2k4p_shop(uid-api)";
    api.lists(
        EVENTS,
        [list_of(
            EVENTS,
            "12003",
            vec![
                warning(
                    "api.1",
                    "shop",
                    ("Pod", "api-7d9f8-x2k4p"),
                    "BackOff",
                    backoff,
                    5,
                    3,
                ),
                warning(
                    "api.2",
                    "shop",
                    ("Pod", "api-7d9f8-x2k4p"),
                    "BackOff",
                    backoff,
                    3,
                    1,
                ),
                warning(
                    "pvc.1",
                    "data",
                    ("PersistentVolumeClaim", "pg-0"),
                    "ProvisioningFailed",
                    "failed to provision volume with StorageClass \"gp3\"",
                    1,
                    10,
                ),
                warning(
                    "old.1",
                    "shop",
                    ("Pod", "gone-1"),
                    "FailedScheduling",
                    "0/12 nodes are available",
                    1,
                    61,
                ),
            ],
        )],
    );
    api.lists(
        PDBS,
        [list_of(
            PDBS,
            "12004",
            vec![
                pdb("kube-system", "coredns", 0, 1, 1, 2),
                pdb("shop", "api", 1, 3, 2, 3),
            ],
        )],
    );
    api.lists(
        DEPLOYMENTS,
        [list_of(
            DEPLOYMENTS,
            "12005",
            vec![
                deployment("shop", "checkout", 1),
                deployment("shop", "api", 3),
                deployment("kube-system", "metrics-server", 1),
            ],
        )],
    );

    let mut run = start(client, true);
    run.until("the full picture", |r| {
        has_picture(r, |s| {
            s.nodes_total == 12
                && s.crashing_pods.len() == 4
                && s.single_replica.len() == 1
                && s.blocking_pdbs.len() == 1
                && s.warning_events.len() == 2
        }) && r.alerts.len() == 6
    })
    .await;

    let s = run.picture();
    assert_eq!(s.connection, Connection::Connected);
    assert_eq!(s.updated, now());
    assert_eq!(
        s.not_ready_nodes,
        vec![crate::model::NotReadyNode {
            name: "ip-10-0-1-23.eu-west-1.compute.internal".into(),
            since: Some(now() - chrono::TimeDelta::minutes(14)),
            reason: "NodeStatusUnknown".into(),
        }]
    );
    let pods: Vec<(&str, &str, &str, i32)> = s
        .crashing_pods
        .iter()
        .map(|p| {
            (
                p.namespace.as_str(),
                p.name.as_str(),
                p.reason.as_str(),
                p.restarts,
            )
        })
        .collect();
    assert_eq!(
        pods,
        vec![
            ("payments", "ledger-0", "ErrImagePull", 0),
            ("shop", "api-7d9f8-q8w2z", "CrashLoopBackOff", 3),
            ("shop", "api-7d9f8-x2k4p", "CrashLoopBackOff", 14),
            ("shop", "web-5c4b7-m2n3b", "ImagePullBackOff", 0),
        ]
    );
    // Two Event objects about the same thing are one line; the one older than 1h is gone.
    let first = &s.warning_events[0];
    assert_eq!(
        (first.object.as_str(), first.reason.as_str(), first.count),
        ("Pod/api-7d9f8-x2k4p", "BackOff", 8)
    );
    assert_eq!(first.last_seen, Some(now() - chrono::TimeDelta::minutes(1)));
    assert_eq!(s.warning_events[1].object, "PersistentVolumeClaim/pg-0");
    assert_eq!(
        s.blocking_pdbs,
        vec![crate::model::BlockingPdb {
            namespace: "kube-system".into(),
            name: "coredns".into(),
            current_healthy: 1,
            desired_healthy: 1
        }]
    );
    assert_eq!(s.single_replica[0].name, "checkout");

    // 1 of 12 nodes is under 10%: a warning.
    let n = run
        .alert("node-not-ready", "ip-10-0-1-23.eu-west-1.compute.internal")
        .expect("node alert");
    assert_eq!(n.severity, Severity::Warning);
    assert_eq!(
        n.summary,
        "node ip-10-0-1-23.eu-west-1.compute.internal NotReady for 14m \
         (NodeStatusUnknown: Kubelet stopped posting node status.)"
    );
    assert_eq!(n.first_seen, now() - chrono::TimeDelta::minutes(14));
    assert_eq!(n.labels["cluster"], "prod-eu-1");

    let crash = run
        .alert("pod-crashloopbackoff", "shop")
        .expect("crash alert");
    assert_eq!(crash.labels["namespace"], "shop");
    assert_eq!(crash.labels["reason"], "CrashLoopBackOff");
    assert_eq!(crash.labels["pods"], "2");
    assert_eq!(
        crash.summary,
        "2 pods in CrashLoopBackOff in shop: api-7d9f8-x2k4p (14 restarts), api-7d9f8-q8w2z (3 restarts)"
    );
    assert!(run.firing("pod-imagepullbackoff", "shop"));
    assert!(run.firing("pod-imagepullbackoff", "payments"));
    let p = run
        .alert("pdb-blocks-disruption", "kube-system/coredns")
        .expect("pdb alert");
    assert_eq!(
        p.summary,
        "PDB kube-system/coredns allows 0 disruptions: node drains and upgrades will hang"
    );
    assert_eq!(p.severity, Severity::Warning);
    let single = run
        .alert("single-replica-deployment", "shop")
        .expect("single replica alert");
    assert_eq!(single.severity, Severity::Info);

    // The API server was asked to filter, and the watches resume from each list.
    let pods_list = &api.seen(PODS, false)[0];
    assert!(
        pods_list
            .query
            .contains("fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"),
        "{}",
        pods_list.query
    );
    assert!(
        api.seen(EVENTS, false)[0]
            .query
            .contains("fieldSelector=type%3DWarning")
    );
    assert!(
        api.seen(DEPLOYMENTS, false)[0]
            .query
            .contains("fieldSelector=metadata.namespace%21%3Dkube-system")
    );
    assert!(
        api.seen(PODS, true)[0]
            .query
            .contains("resourceVersion=12002")
    );
}

#[tokio::test(start_paused = true)]
async fn nodes_are_listed_in_small_pages() {
    let (api, client) = MockApi::start();
    let mut first = mock::list("NodeList", "v1", "", (1..=3).map(ready_node).collect());
    first["metadata"] =
        json!({"continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NTAwfQ", "remainingItemCount": 2});
    api.lists(
        NODES,
        [
            Reply::Json(first),
            list_of(NODES, "500", (4..=5).map(ready_node).collect()),
        ],
    );
    let mut run = start(client, false);
    run.until("both pages", |r| has_picture(r, |s| s.nodes_total == 5))
        .await;
    // One picture: the first page alone was never shown as the whole fleet.
    assert_eq!(run.pictures, 1);
    let pages = api.seen(NODES, false);
    assert!(pages[0].query.contains("limit=100"), "{}", pages[0].query);
    assert!(
        pages[1].query.contains("continue=eyJ2Ijoi"),
        "{}",
        pages[1].query
    );
    assert!(
        api.seen(NODES, true)[0]
            .query
            .contains("resourceVersion=500")
    );
}

#[tokio::test(start_paused = true)]
async fn recovered_and_deleted_pods_resolve_their_alerts() {
    let (api, client) = MockApi::start();
    api.lists(
        PODS,
        [list_of(
            PODS,
            "100",
            vec![
                crashing("shop", "api-1", 4),
                crashing("batch", "report-1", 9),
            ],
        )],
    );
    let mut deleted = crashing("batch", "report-1", 9);
    deleted["metadata"]["resourceVersion"] = json!("122");
    api.watches(
        PODS,
        [Reply::After(
            Duration::from_secs(5),
            Box::new(Reply::Stream(vec![
                mock::bookmark("Pod", "v1", "12746"),
                mock::event(
                    "MODIFIED",
                    "Pod",
                    "v1",
                    running("shop", "api-1", 4, "12750"),
                ),
                mock::event("DELETED", "Pod", "v1", deleted),
            ])),
        )],
    );

    let mut run = start(client, false);
    run.until("crash loops firing", |r| {
        r.firing("pod-crashloopbackoff", "shop") && r.firing("pod-crashloopbackoff", "batch")
    })
    .await;
    run.until("both resolved", |r| {
        !r.firing("pod-crashloopbackoff", "shop") && !r.firing("pod-crashloopbackoff", "batch")
    })
    .await;
    let resolved = run.alert("pod-crashloopbackoff", "shop").expect("alert");
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.last_change, now());
    run.until("no crashing pods", |r| {
        has_picture(r, |s| s.crashing_pods.is_empty())
    })
    .await;

    // The stream ended after the DELETED event: the watch resumed from the newest
    // resourceVersion it saw, not from the list's, and never re-listed.
    run.until("the resumed watch", |_| api.seen(PODS, true).len() == 2)
        .await;
    assert!(
        api.seen(PODS, true)[0]
            .query
            .contains("resourceVersion=100")
    );
    assert!(
        api.seen(PODS, true)[1]
            .query
            .contains("resourceVersion=122")
    );
    assert_eq!(api.seen(PODS, false).len(), 1);
    // Not production: deployments are not watched at all.
    assert!(api.seen(DEPLOYMENTS, false).is_empty());
}

#[tokio::test(start_paused = true)]
async fn gone_410_relists_and_rebuilds_the_picture() {
    let (api, client) = MockApi::start();
    api.lists(
        PODS,
        [
            list_of(PODS, "100", vec![crashing("shop", "api-1", 4)]),
            list_of(PODS, "200", vec![crashing("payments", "ledger-0", 1)]),
        ],
    );
    api.watches(
        PODS,
        [Reply::After(
            Duration::from_secs(5),
            Box::new(Reply::Stream(vec![mock::expired()])),
        )],
    );

    let mut run = start(client, false);
    run.until("the first list", |r| {
        r.firing("pod-crashloopbackoff", "shop")
    })
    .await;
    run.until("the re-list", |r| {
        has_picture(r, |s| {
            s.crashing_pods.len() == 1 && s.crashing_pods[0].name == "ledger-0"
        }) && r.firing("pod-crashloopbackoff", "payments")
    })
    .await;
    assert!(run.firing("pod-crashloopbackoff", "payments"));
    assert_eq!(
        run.alert("pod-crashloopbackoff", "shop").map(|a| a.state),
        Some(AlertState::Resolved)
    );
    assert_eq!(run.picture().connection, Connection::Connected);
    let lists = api.seen(PODS, false);
    assert_eq!(lists.len(), 2, "one list, then one re-list after 410");
    // A re-list starts afresh: no stale resourceVersion.
    assert!(
        !lists[1].query.contains("resourceVersion="),
        "{}",
        lists[1].query
    );
    run.until("the watch from the re-list", |_| {
        api.seen(PODS, true).len() == 2
    })
    .await;
    assert!(
        api.seen(PODS, true)[1]
            .query
            .contains("resourceVersion=200")
    );
}

#[tokio::test(start_paused = true)]
async fn forbidden_pods_leave_a_note_and_the_other_watches_run() {
    let (api, client) = MockApi::start();
    api.lists(PODS, [mock::forbidden("pods", "")]);
    api.lists(
        NODES,
        [list_of(
            NODES,
            "5",
            vec![
                ready_node(1),
                node(
                    "ip-10-0-1-23",
                    "False",
                    3,
                    "KubeletNotReady",
                    "PLEG is not healthy",
                ),
            ],
        )],
    );

    let mut run = start(client, false);
    run.until("nodes and the note", |r| {
        has_picture(r, |s| s.nodes_total == 2 && !s.warning_events.is_empty())
            && r.firing("node-not-ready", "ip-10-0-1-23")
    })
    .await;
    let s = run.picture();
    assert_eq!(s.connection, Connection::Connected);
    let note = &s.warning_events[0];
    assert_eq!(
        (
            note.object.as_str(),
            note.reason.as_str(),
            note.message.as_str()
        ),
        (
            "fleetdeck/watch-pods",
            "Forbidden",
            "pods is forbidden: User \"x\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        )
    );
    // 1 of 2 nodes is 50%: critical.
    let n = run
        .alert("node-not-ready", "ip-10-0-1-23")
        .expect("node alert");
    assert_eq!(n.severity, Severity::Critical);
    // The refused list is retried, with backoff, in case RBAC changes.
    run.until("a retry", |_| api.seen(PODS, false).len() >= 3)
        .await;
    let tries = api.seen(PODS, false);
    assert!(tries[1].at - tries[0].at >= Duration::from_millis(800));
}

#[tokio::test(start_paused = true)]
async fn a_refused_watch_that_recovers_silently_loses_its_note() {
    let (api, client) = MockApi::start();
    api.lists(
        PDBS,
        [list_of(
            PDBS,
            "40",
            vec![pdb("kube-system", "coredns", 0, 1, 1, 2)],
        )],
    );
    // RBAC changed between the list and the watch; then it is fixed, and the resumed
    // watch stays quiet (nothing changes), as watches do.
    api.watches(PDBS, [mock::forbidden("poddisruptionbudgets", "policy")]);

    let mut run = start(client, false);
    run.until("the note", |r| {
        has_picture(r, |s| {
            s.warning_events.iter().any(|e| e.reason == "Forbidden")
        })
    })
    .await;
    let noted = tokio::time::Instant::now();
    run.until("the note gone", |r| {
        has_picture(r, |s| s.warning_events.is_empty())
    })
    .await;
    assert!(noted.elapsed() >= access::PROBLEM_TTL - Duration::from_secs(2));
    // What was listed before the refusal still stands, and the watch resumed from it.
    assert_eq!(run.picture().blocking_pdbs.len(), 1);
    assert!(api.seen(PDBS, true)[1].query.contains("resourceVersion=40"));
    assert_eq!(api.seen(PDBS, false).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_watchable_makes_the_cluster_unavailable() {
    let (api, client) = MockApi::start();
    api.lists(NODES, [mock::forbidden("nodes", "")]);
    api.lists(PODS, [mock::forbidden("pods", "")]);
    api.lists(EVENTS, [mock::forbidden("events", "")]);
    api.lists(PDBS, [mock::forbidden("poddisruptionbudgets", "policy")]);

    let mut run = start(client, false);
    run.until("unavailable", |r| {
        has_picture(r, |s| {
            matches!(s.connection, Connection::Unavailable { .. })
        })
    })
    .await;
    assert_eq!(
        run.picture().connection,
        Connection::Unavailable {
            reason: "forbidden (403): nodes is forbidden: User \"x\" cannot list resource \
                     \"nodes\" in API group \"\" at the cluster scope"
                .into()
        }
    );
    assert!(run.picture().warning_events.is_empty());
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_show_until_a_fresh_token_works() {
    let (api, client) = MockApi::start();
    for path in [NODES, PODS, EVENTS, PDBS] {
        api.lists(
            path,
            [
                mock::unauthorized(),
                mock::unauthorized(),
                mock::unauthorized(),
            ],
        );
    }
    api.lists(NODES, [list_of(NODES, "5", vec![ready_node(1)])]);
    for path in [PODS, EVENTS, PDBS] {
        api.lists(path, [list_of(path, "5", vec![])]);
    }

    let mut run = start(client, false);
    run.until("credentials rejected", |r| {
        has_picture(r, |s| {
            s.connection
                == Connection::Unavailable {
                    reason: "credentials rejected (401)".into(),
                }
        })
    })
    .await;
    run.until("connected again", |r| {
        has_picture(r, |s| {
            s.connection == Connection::Connected && s.nodes_total == 1
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn timeouts_back_off_and_the_watch_carries_on() {
    let (api, client) = MockApi::start();
    for path in [NODES, PODS, EVENTS, PDBS] {
        api.lists(path, [Reply::Timeout, Reply::Timeout, Reply::Timeout]);
    }
    api.lists(
        PODS,
        [list_of(PODS, "100", vec![crashing("shop", "api-1", 2)])],
    );
    for path in [NODES, EVENTS, PDBS] {
        api.lists(path, [list_of(path, "100", vec![])]);
    }
    // Once listed, the pods watch itself times out once, then is served.
    api.watches(
        PODS,
        [
            Reply::Timeout,
            Reply::Stream(vec![mock::event(
                "ADDED",
                "Pod",
                "v1",
                crashing("shop", "api-2", 1),
            )]),
        ],
    );

    let mut run = start(client, false);
    run.until("unreachable", |r| {
        has_picture(r, |s| {
            matches!(&s.connection, Connection::Unavailable { reason } if reason.contains("operation timed out"))
        })
    })
    .await;
    run.until("both pods after the watch retried", |r| {
        has_picture(r, |s| {
            s.connection == Connection::Connected && s.crashing_pods.len() == 2
        })
    })
    .await;
    let lists = api.seen(PODS, false);
    assert_eq!(lists.len(), 4);
    for pair in lists.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(800),
            "retried without backoff"
        );
    }
    let watches = api.seen(PODS, true);
    assert!(watches[1].at - watches[0].at >= Duration::from_millis(800));
    // The timed-out watch resumed where the list left off: no re-list was needed.
    assert!(watches[1].query.contains("resourceVersion=100"));
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_one_picture() {
    let (api, client) = MockApi::start();
    api.lists(PODS, [list_of(PODS, "100", vec![])]);
    let burst = (0..40)
        .map(|i| {
            let mut p = crashing("shop", &format!("api-{i}"), i);
            p["metadata"]["resourceVersion"] = json!((101 + i).to_string());
            mock::event("ADDED", "Pod", "v1", p)
        })
        .collect();
    api.watches(
        PODS,
        [Reply::After(
            Duration::from_secs(5),
            Box::new(Reply::Stream(burst)),
        )],
    );

    let mut run = start(client, false);
    run.until("the burst", |r| {
        has_picture(r, |s| s.crashing_pods.len() == 40) && r.firing("pod-crashloopbackoff", "shop")
    })
    .await;
    // The empty first picture, then the whole burst at once.
    assert_eq!(run.pictures, 2);
    assert_eq!(
        run.alert("pod-crashloopbackoff", "shop")
            .map(|a| a.labels["pods"].clone()),
        Some("40".into())
    );
}

#[tokio::test(start_paused = true)]
async fn stop_withdraws_the_alerts_and_ends() {
    let (api, client) = MockApi::start();
    api.lists(
        PDBS,
        [list_of(
            PDBS,
            "1",
            vec![pdb("kube-system", "coredns", 0, 2, 2, 2)],
        )],
    );
    let mut run = start(client, false);
    run.until("the pdb alert", |r| {
        r.firing("pdb-blocks-disruption", "kube-system/coredns")
    })
    .await;
    run.stop.send(true).expect("stop");
    run.until("withdrawn", |r| !r.gone.is_empty()).await;
    assert_eq!(
        run.gone,
        vec![key("pdb-blocks-disruption", "kube-system/coredns")]
    );
    tokio::time::timeout(Duration::from_secs(5), &mut run.task)
        .await
        .expect("ended")
        .expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_closed_channel_ends_the_watch() {
    let (_api, client) = MockApi::start();
    let run = start(client, false);
    drop(run.rx);
    tokio::time::timeout(Duration::from_secs(5), run.task)
        .await
        .expect("ended")
        .expect("no panic");
}

#[test]
fn events_older_than_an_hour_age_out_on_refresh() {
    let target = ClusterTarget {
        id: cluster(),
        arn: String::new(),
        endpoint: None,
        certificate_authority: None,
        production: false,
    };
    let mut spoke = Spoke::new(target, Clock::Frozen(now()));
    spoke.access.watching(Kind::Events);
    let event = WarningEvent {
        namespace: "shop".into(),
        object: "Pod/api-1".into(),
        reason: "BackOff".into(),
        message: "Back-off restarting failed container".into(),
        count: 1,
        last_seen: Some(now() - chrono::TimeDelta::minutes(50)),
    };
    for change in [
        Change::Listed("shop/api.1".into(), Some(event)),
        Change::RelistDone,
    ] {
        spoke.observe(Update {
            kind: Kind::Events,
            result: Ok(Observed::Event(change)),
        });
    }
    assert!(
        matches!(&spoke.flush(false)[..], [SourceEvent::KubeSignals { signals, .. }] if signals.warning_events.len() == 1)
    );
    spoke.clock = Clock::Frozen(now() + chrono::TimeDelta::minutes(11));
    assert!(
        matches!(&spoke.flush(true)[..], [SourceEvent::KubeSignals { signals, .. }] if signals.warning_events.is_empty())
    );
}

#[test]
fn three_not_ready_nodes_are_critical_even_in_a_large_fleet() {
    let trouble = |name: &str| summary::NodeTrouble {
        node: crate::model::NotReadyNode {
            name: name.into(),
            since: None,
            reason: "KubeletNotReady".into(),
        },
        message: String::new(),
    };
    let nodes = [trouble("a"), trouble("b"), trouble("c")];
    let factory = AlertFactory {
        cluster: &cluster(),
        now: now(),
    };
    let refs: Vec<_> = nodes.iter().collect();
    assert!(
        factory
            .nodes(&refs, 500)
            .iter()
            .all(|a| a.severity == Severity::Critical)
    );
    assert!(
        factory
            .nodes(&refs[..2], 500)
            .iter()
            .all(|a| a.severity == Severity::Warning)
    );
    assert_eq!(
        factory.nodes(&refs[..1], 500)[0].summary,
        "node a NotReady (KubeletNotReady)"
    );
}

// ---- faults mid-run: the last picture stands while shown unavailable, then recovers ----

/// Every watch lists once, expires after 5 s, and its re-lists meet `fault` three times
/// before the API server answers again.
async fn spoke_survives(fault: Reply, reason: impl Fn(&str) -> bool) {
    let (api, client) = MockApi::start();
    for path in [NODES, PODS, EVENTS, PDBS] {
        let items = match path {
            NODES => vec![ready_node(1)],
            PODS => vec![crashing("shop", "api-1", 4)],
            _ => vec![],
        };
        api.lists(
            path,
            [
                list_of(path, "100", items.clone()),
                fault.clone(),
                fault.clone(),
                fault.clone(),
                list_of(path, "300", items),
            ],
        );
        api.watches(
            path,
            [Reply::After(
                Duration::from_secs(5),
                Box::new(Reply::Stream(vec![mock::expired()])),
            )],
        );
    }
    let mut run = start(client, false);
    run.until("the first picture", |r| {
        has_picture(r, |s| s.nodes_total == 1 && s.crashing_pods.len() == 1)
    })
    .await;
    run.until("shown unavailable", |r| {
        has_picture(
            r,
            |s| matches!(&s.connection, Connection::Unavailable { reason: why } if reason(why)),
        )
    })
    .await;
    let held = run.picture();
    assert_eq!(held.nodes_total, 1, "the last picture stands");
    assert_eq!(held.crashing_pods.len(), 1);
    assert!(run.firing("pod-crashloopbackoff", "shop"), "its alert too");
    run.until("every watch listed afresh and connected", |r| {
        [NODES, PODS, EVENTS, PDBS]
            .iter()
            .all(|p| api.seen(p, false).len() == 5)
            && has_picture(r, |s| {
                s.connection == Connection::Connected
                    && s.nodes_total == 1
                    && s.crashing_pods.len() == 1
            })
    })
    .await;
    assert!(run.firing("pod-crashloopbackoff", "shop"));
    let lists = api.seen(PODS, false);
    for pair in lists[1..].windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(800),
            "re-listed without backoff"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn fault_5xx_mid_run_keeps_the_picture_and_recovers() {
    spoke_survives(
        Reply::Status(
            503,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server is currently unable to handle the request",
                "reason": "ServiceUnavailable", "code": 503
            }),
        ),
        |why| {
            why == "API server answered 503 ServiceUnavailable: the server is currently unable to handle the request"
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_429_mid_run_keeps_the_picture_and_recovers() {
    spoke_survives(
        Reply::Status(
            429,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests", "code": 429
            }),
        ),
        |why| why.starts_with("API server answered 429 TooManyRequests"),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_malformed_list_mid_run_keeps_the_picture_and_recovers() {
    spoke_survives(
        Reply::Json(serde_json::json!("<html>proxy login</html>")),
        |why| why.starts_with("Error deserializing response"),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_expired_token_mid_run_keeps_the_picture_and_recovers() {
    spoke_survives(mock::unauthorized(), |why| {
        why == "credentials rejected (401)"
    })
    .await;
}

// ---- policy reports -------------------------------------------------------------------

const POLICY_REPORTS: &str = "/apis/wgpolicyk8s.io/v1alpha2/policyreports";
const CLUSTER_POLICY_REPORTS: &str = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports";
const OPEN_REPORTS: &str = "/apis/openreports.io/v1alpha1/reports";
const OPEN_CLUSTER_REPORTS: &str = "/apis/openreports.io/v1alpha1/clusterreports";

/// A result as Kyverno writes it.
fn kyverno_result(policy: &str, rule: &str, result: &str, severity: &str, message: &str) -> Value {
    json!({
        "category": "Pod Security Standards (Baseline)",
        "message": message,
        "policy": policy,
        "result": result,
        "rule": rule,
        "scored": true,
        "severity": severity,
        "source": "kyverno",
        "timestamp": {"nanos": 0, "seconds": 1_795_000_000}
    })
}

/// A per-resource PolicyReport as Kyverno 1.10+ writes it: named after the resource's
/// uid, the resource in `scope`, a summary and the results.
fn kyverno_report(namespace: &str, kind: &str, name: &str, results: Vec<Value>) -> Value {
    let count = |r: &str| results.iter().filter(|x| x["result"] == r).count();
    json!({
        "metadata": {
            "name": format!("uid-{name}"), "namespace": namespace, "resourceVersion": "77",
            "labels": {"app.kubernetes.io/managed-by": "kyverno"}
        },
        "scope": {"apiVersion": "v1", "kind": kind, "name": name, "namespace": namespace, "uid": format!("uid-{name}")},
        "summary": {"error": count("error"), "fail": count("fail"), "pass": count("pass"), "skip": count("skip"), "warn": count("warn")},
        "results": results
    })
}

/// What an API server without the CRD answers to its list.
fn not_found() -> Reply {
    Reply::Status(
        404,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound", "details": {}, "code": 404
        }),
    )
}

#[tokio::test(start_paused = true)]
async fn policy_reports_are_summed_grouped_by_policy_and_rule_and_high_failures_alert() {
    let (api, client) = MockApi::start();
    let mut reports: Vec<Value> = (0..300)
        .map(|i| {
            kyverno_report(
                "batch",
                "Pod",
                &format!("worker-{i:03}"),
                vec![
                    kyverno_result(
                        "require-run-as-nonroot",
                        "run-as-non-root",
                        "fail",
                        "medium",
                        "Running as root is not allowed.",
                    ),
                    kyverno_result(
                        "disallow-privileged-containers",
                        "privileged-containers",
                        "pass",
                        "high",
                        "validation rule 'privileged-containers' passed.",
                    ),
                ],
            )
        })
        .collect();
    reports.push(kyverno_report(
        "observability",
        "Pod",
        "node-exporter-2x7lq",
        vec![kyverno_result(
            "disallow-privileged-containers",
            "privileged-containers",
            "fail",
            "high",
            "validation error: Privileged mode is disallowed.",
        )],
    ));
    reports.push(kyverno_report(
        "payments",
        "Deployment",
        "api",
        vec![kyverno_result(
            "require-probes",
            "validate-probes",
            "warn",
            "low",
            "Liveness probe is required.",
        )],
    ));
    api.lists(
        POLICY_REPORTS,
        [Reply::Json(mock::list(
            "PolicyReportList",
            "wgpolicyk8s.io/v1alpha2",
            "500",
            reports,
        ))],
    );
    api.lists(
        CLUSTER_POLICY_REPORTS,
        [Reply::Json(mock::list(
            "ClusterPolicyReportList",
            "wgpolicyk8s.io/v1alpha2",
            "501",
            vec![json!({
                "metadata": {"name": "cpol-namespaces", "resourceVersion": "9"},
                "scope": {"apiVersion": "v1", "kind": "Namespace", "name": "legacy"},
                "summary": {"pass": 4, "fail": 1, "warn": 0, "error": 0, "skip": 2},
                "results": [kyverno_result("require-ns-owner", "owner-label", "fail", "critical", "label 'owner' is required")]
            })],
        ))],
    );
    // This cluster has no openreports.io CRDs: not an error.
    api.lists(OPEN_REPORTS, [not_found()]);
    api.lists(OPEN_CLUSTER_REPORTS, [not_found()]);
    let mut run = start(client, true);
    run.until("the policy reports", |r| {
        has_picture(r, |p| {
            p.policy_reports.as_ref().is_some_and(|p| p.reports == 303)
        })
    })
    .await;

    let picture = run.picture().clone();
    let reports = picture.policy_reports.expect("reports");
    assert_eq!(
        reports.summary,
        crate::model::PolicyCounts {
            pass: 304,
            fail: 302,
            warn: 1,
            error: 0,
            skip: 2
        }
    );
    let groups: Vec<(&str, &str, &str, usize)> = reports
        .failing
        .iter()
        .map(|r| {
            (
                r.policy.as_str(),
                r.rule.as_str(),
                r.result.as_str(),
                r.count,
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("require-ns-owner", "owner-label", "fail", 1),
            (
                "disallow-privileged-containers",
                "privileged-containers",
                "fail",
                1
            ),
            ("require-run-as-nonroot", "run-as-non-root", "fail", 300),
            ("require-probes", "validate-probes", "warn", 1),
        ],
        "most severe first, then failures before warnings, then the most resources"
    );
    assert_eq!(reports.failing[0].resources, ["Namespace legacy"]);
    assert_eq!(
        reports.failing[2].resources.len(),
        crate::model::RESOURCES_LISTED
    );
    assert_eq!(reports.failing[2].resources[0], "Pod batch/worker-000");
    assert_eq!(
        picture.connection,
        Connection::Connected,
        "a missing CRD is no problem"
    );
    assert!(
        picture
            .warning_events
            .iter()
            .all(|e| !e.object.contains("reports")),
        "and no note either: {:?}",
        picture.warning_events
    );

    // High and critical failures are alerts, one per policy; the 300 medium ones are not.
    run.until("the policy alerts", |r| {
        r.alerts
            .values()
            .any(|a| a.source == crate::model::AlertSource::PolicyReport)
    })
    .await;
    let policy_alerts: Vec<&Alert> = run
        .alerts
        .values()
        .filter(|a| a.source == crate::model::AlertSource::PolicyReport)
        .collect();
    let names: Vec<(&str, &str)> = policy_alerts
        .iter()
        .map(|a| (a.name.as_str(), a.labels["count"].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("disallow-privileged-containers", "1"),
            ("require-ns-owner", "1")
        ]
    );
    assert!(
        policy_alerts
            .iter()
            .all(|a| a.severity == Severity::Critical && a.is_firing())
    );
    assert!(
        policy_alerts[0].summary.starts_with("disallow-privileged-containers fails on 1 resource: Pod observability/node-exporter-2x7lq"),
        "{}",
        policy_alerts[0].summary
    );

    // The missing CRDs were asked once each and then left alone; the served ones watched.
    tokio::time::sleep(Duration::from_secs(300)).await;
    while let Ok(event) = run.rx.try_recv() {
        run.fold(event);
    }
    assert!(
        api.seen(OPEN_REPORTS, false).len() <= 2,
        "{:?}",
        api.seen(OPEN_REPORTS, false)
    );
    assert!(
        !api.seen(POLICY_REPORTS, true).is_empty(),
        "the served kind is watched"
    );
    run.stop.send(true).expect("stop");
    run.task.await.expect("the watch ends");
}

#[tokio::test(start_paused = true)]
async fn a_cluster_without_any_policy_report_crd_has_no_policy_picture_and_no_problem() {
    let (api, client) = MockApi::start();
    for path in [
        POLICY_REPORTS,
        CLUSTER_POLICY_REPORTS,
        OPEN_REPORTS,
        OPEN_CLUSTER_REPORTS,
    ] {
        api.lists(path, [not_found()]);
    }
    api.lists(
        NODES,
        [list_of(NODES, "1", (1..=3).map(ready_node).collect())],
    );
    let mut run = start(client, false);
    run.until("the nodes", |r| has_picture(r, |p| p.nodes_total == 3))
        .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    while let Ok(event) = run.rx.try_recv() {
        run.fold(event);
    }
    let picture = run.picture();
    assert_eq!(picture.policy_reports, None);
    assert_eq!(picture.connection, Connection::Connected);
    assert!(
        run.alerts
            .values()
            .all(|a| a.source != crate::model::AlertSource::PolicyReport)
    );
}
