//! Each Kubernetes write against kube's mock service (tower-test), with requests checked
//! field by field and answers shaped like a real API server's: `dryRun=All` on previews,
//! the strategic-merge patch kubectl sends, the Eviction API's 429 when a disruption
//! budget refuses, 404 and 409 Status bodies.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::super::testing::{Log, Seen, server, status};
use super::perform;
use crate::actions::{Operation, Remediation};
use crate::model::ClusterId;
use crate::sources::WriteResult;
use crate::sources::remediation::RemediateRequest;

fn remediation(op: Operation) -> Remediation {
    Remediation {
        cluster: ClusterId::new("prod", "us-east-1", "prod-use1-api-01"),
        production: true,
        step: Some("node-not-ready:90".into()),
        op,
    }
}

/// Runs `op` on `client` and returns the result and the progress lines.
async fn run(client: &kube::Client, op: Operation, dry_run: bool) -> (WriteResult, Vec<String>) {
    let (reply, _answer) = oneshot::channel();
    let (progress, mut lines) = mpsc::channel(256);
    let request = RemediateRequest {
        remediation: remediation(op),
        dry_run,
        progress: Some(progress),
        reply,
    };
    let result = perform(client, "https://api.example", &request).await;
    drop(request);
    let mut out = Vec::new();
    while let Some(l) = lines.recv().await {
        out.push(l);
    }
    (result, out)
}

fn deployment(replicas: i64) -> Value {
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "coredns", "namespace": "kube-system", "generation": 7,
                     "resourceVersion": "918273"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {"containers": [{"name": "coredns", "image": "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.11.4-eksbuild.2"}]}}
        },
        "status": {"replicas": replicas, "readyReplicas": replicas}
    })
}

fn node(unschedulable: bool) -> Value {
    json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": "ip-10-0-1-7.ec2.internal", "resourceVersion": "55"},
        "spec": {"providerID": "aws:///us-east-1a/i-0abc", "unschedulable": unschedulable},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}
    })
}

fn pod(ns: &str, name: &str, owner_kind: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": "owner", "uid": "u-1", "controller": true}]},
        "spec": {"nodeName": "ip-10-0-1-7.ec2.internal", "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running"}
    })
}

fn pod_list(items: Vec<Value>) -> Value {
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1200"}, "items": items})
}

fn evicted() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// What the API server answers when a PodDisruptionBudget refuses an eviction.
fn pdb_refusal() -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget coredns needs 1 healthy pods and has 1 currently"}]},
        "code": 429
    })
}

#[tokio::test]
async fn rollout_restart_previews_with_dry_run_then_patches_the_template() {
    let (client, log) = server(|_, _| (200, deployment(2)));
    let restart = Operation::RolloutRestart {
        namespace: "kube-system".into(),
        deployment: "coredns".into(),
    };
    let (result, _) = run(&client, restart.clone(), true).await;
    assert_eq!(
        result.unwrap(),
        "dry run accepted by the API server: would restart deployment kube-system/coredns: 2 pod(s) replaced by a rolling update (maxUnavailable 1, maxSurge 25%)"
    );
    let (result, _) = run(&client, restart, false).await;
    assert!(
        result
            .unwrap()
            .starts_with("restarted deployment kube-system/coredns")
    );

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (s, dry) in seen.iter().zip([true, false]) {
        assert_eq!(s.method, "PATCH");
        assert_eq!(
            s.path,
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns"
        );
        assert_eq!(s.content_type, "application/strategic-merge-patch+json");
        assert_eq!(s.query.contains("dryRun=All"), dry, "{}", s.query);
        assert!(s.query.contains("fieldManager=fleetdeck"), "{}", s.query);
        let at = s.body["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }
}

#[tokio::test]
async fn scale_reads_the_scale_then_patches_it() {
    let scale = |replicas: i64| {
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": "coredns", "namespace": "kube-system", "resourceVersion": "918273"},
               "spec": {"replicas": replicas}, "status": {"replicas": 2, "selector": "k8s-app=kube-dns"}})
    };
    let (client, log) = server(move |s, _| match s.method.as_str() {
        "GET" => (200, scale(2)),
        _ => (200, scale(s.body["spec"]["replicas"].as_i64().unwrap())),
    });
    let op = Operation::Scale {
        namespace: "kube-system".into(),
        deployment: "coredns".into(),
        replicas: 4,
    };
    let (result, _) = run(&client, op, true).await;
    assert_eq!(
        result.unwrap(),
        "dry run accepted by the API server: would scale deployment kube-system/coredns from 2 to 4 replicas"
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].path,
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns/scale"
    );
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(
        seen[1].path,
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns/scale"
    );
    assert_eq!(seen[1].content_type, "application/merge-patch+json");
    assert!(seen[1].query.contains("dryRun=All"));
    assert_eq!(seen[1].body, json!({"spec": {"replicas": 4}}));
}

#[tokio::test]
async fn cordon_patches_unschedulable_and_skips_a_node_already_cordoned() {
    let (client, log) = server(|s, _| match s.method.as_str() {
        "GET" => (200, node(false)),
        _ => (200, node(true)),
    });
    let (result, _) = run(
        &client,
        Operation::Cordon {
            node: "ip-10-0-1-7.ec2.internal".into(),
        },
        false,
    )
    .await;
    assert_eq!(
        result.unwrap(),
        "cordoned node ip-10-0-1-7.ec2.internal: no new pod will be scheduled there; running pods stay"
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].path, "/api/v1/nodes/ip-10-0-1-7.ec2.internal");
    assert_eq!(seen[1].body, json!({"spec": {"unschedulable": true}}));
    assert!(!seen[1].query.contains("dryRun"));

    let (client, log) = server(|_, _| (200, node(true)));
    let (result, _) = run(
        &client,
        Operation::Cordon {
            node: "ip-10-0-1-7.ec2.internal".into(),
        },
        false,
    )
    .await;
    assert_eq!(
        result.unwrap(),
        "node ip-10-0-1-7.ec2.internal is already cordoned: nothing to change"
    );
    assert_eq!(log.lock().unwrap().len(), 1, "no write for no change");

    let (client, _) = server(|_, _| (200, node(true)));
    let (result, _) = run(
        &client,
        Operation::Uncordon {
            node: "ip-10-0-1-7.ec2.internal".into(),
        },
        true,
    )
    .await;
    assert_eq!(
        result.unwrap(),
        "dry run accepted by the API server: would uncordon node ip-10-0-1-7.ec2.internal: pods may be scheduled there again"
    );
}

#[tokio::test]
async fn delete_pod_sends_dry_run_in_delete_options_and_names_the_owner() {
    let (client, log) = server(|_, _| {
        let mut p = pod("payments", "payments-worker-6f9c7d5b8-x2lq9", "ReplicaSet");
        p["metadata"]["deletionTimestamp"] = "2026-11-21T02:10:00Z".into();
        (200, p)
    });
    let op = Operation::DeletePod {
        namespace: "payments".into(),
        pod: "payments-worker-6f9c7d5b8-x2lq9".into(),
    };
    let (result, _) = run(&client, op, true).await;
    assert_eq!(
        result.unwrap(),
        "dry run accepted by the API server: would delete pod payments/payments-worker-6f9c7d5b8-x2lq9; ReplicaSet owner replaces it"
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[0].method, "DELETE");
    assert_eq!(
        seen[0].path,
        "/api/v1/namespaces/payments/pods/payments-worker-6f9c7d5b8-x2lq9"
    );
    assert_eq!(seen[0].body["dryRun"], json!(["All"]));
}

#[tokio::test]
async fn api_errors_say_reason_code_and_message() {
    let (client, _) = server(|_, _| {
        let s = status(404, "NotFound", "deployments.apps \"coredns\" not found");
        (404, serde_json::from_str(&s).unwrap())
    });
    let op = Operation::RolloutRestart {
        namespace: "kube-system".into(),
        deployment: "coredns".into(),
    };
    let (result, _) = run(&client, op, true).await;
    assert_eq!(
        result.unwrap_err(),
        "prod-use1-api-01: NotFound (404): deployments.apps \"coredns\" not found"
    );
    let (client, _) = server(|_, _| {
        let s = status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on deployments.apps \"coredns\": the object has been modified; please apply your changes to the latest version and try again",
        );
        (409, serde_json::from_str(&s).unwrap())
    });
    let op = Operation::Scale {
        namespace: "kube-system".into(),
        deployment: "coredns".into(),
        replicas: 3,
    };
    let (result, _) = run(&client, op, false).await;
    assert!(
        result
            .unwrap_err()
            .starts_with("prod-use1-api-01: Conflict (409): Operation cannot be fulfilled"),
    );
}

/// The drain API server: the node, its pods (a DaemonSet pod, a mirror pod, a finished
/// pod, and two to evict), evictions refused `refusals` times for coredns, and the pods
/// gone from the node once evicted.
fn drain_server(refusals: usize) -> (kube::Client, Log) {
    let mut refused = 0;
    let mut gone: Vec<String> = Vec::new();
    server(move |s, _| {
        let on_node = |evicted: &[String]| {
            let mut mirror = pod("kube-system", "kube-proxy-static", "Node");
            mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
            let mut done = pod("batch", "report-29012", "Job");
            done["status"]["phase"] = "Succeeded".into();
            let mut items = vec![
                pod("kube-system", "aws-node-7xk2p", "DaemonSet"),
                mirror,
                done,
            ];
            for (ns, name) in [
                ("kube-system", "coredns-5d8f7c9b4-x2lq9"),
                ("payments", "payments-api-7d4f9c8b6-kq2mz"),
            ] {
                if !evicted.iter().any(|e| e == name) {
                    items.push(pod(ns, name, "ReplicaSet"));
                }
            }
            pod_list(items)
        };
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/api/v1/nodes/ip-10-0-1-7.ec2.internal") => (200, node(false)),
            ("PATCH", "/api/v1/nodes/ip-10-0-1-7.ec2.internal") => (200, node(true)),
            ("GET", "/api/v1/pods") => (200, on_node(&gone)),
            ("POST", path) if path.ends_with("/eviction") => {
                let name = s.body["metadata"]["name"].as_str().unwrap().to_string();
                if name.starts_with("coredns") && refused < refusals {
                    refused += 1;
                    (429, pdb_refusal())
                } else {
                    if !s.query.contains("dryRun") {
                        gone.push(name);
                    }
                    (201, evicted())
                }
            }
            _ => (
                404,
                json!({"kind": "Status", "code": 404, "status": "Failure", "reason": "NotFound", "message": "not found"}),
            ),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn drain_cordons_evicts_through_the_eviction_api_and_waits_out_a_pdb() {
    let (client, log) = drain_server(2);
    let op = Operation::Drain {
        node: "ip-10-0-1-7.ec2.internal".into(),
        timeout_secs: 300,
    };
    let (result, progress) = run(&client, op, false).await;
    assert_eq!(
        result.unwrap(),
        "drained node ip-10-0-1-7.ec2.internal: 2 pod(s) evicted (2 DaemonSet or static pod(s) stay); the node stays cordoned"
    );
    assert_eq!(
        progress,
        [
            "cordoned node ip-10-0-1-7.ec2.internal: no new pod will be scheduled there; running pods stay",
            "2 pod(s) to evict from ip-10-0-1-7.ec2.internal (2 DaemonSet or static pod(s) stay)",
            "kube-system/coredns-5d8f7c9b4-x2lq9: eviction refused, retrying every 5s: prod-use1-api-01: TooManyRequests (429): Cannot evict pod as it would violate the pod's disruption budget. (The disruption budget coredns needs 1 healthy pods and has 1 currently)",
            "evicted payments/payments-api-7d4f9c8b6-kq2mz",
            "evicted kube-system/coredns-5d8f7c9b4-x2lq9",
        ]
    );
    let seen = log.lock().unwrap().clone();
    let list = seen.iter().find(|s| s.path == "/api/v1/pods").unwrap();
    assert!(
        list.query
            .contains("fieldSelector=spec.nodeName%3Dip-10-0-1-7.ec2.internal"),
        "{}",
        list.query
    );
    let evictions: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path.ends_with("/eviction"))
        .collect();
    assert_eq!(
        evictions.len(),
        4,
        "coredns tried three times, payments once"
    );
    let e = evictions[0];
    assert_eq!(
        e.path,
        "/api/v1/namespaces/kube-system/pods/coredns-5d8f7c9b4-x2lq9/eviction"
    );
    assert!(
        e.query.contains("fieldManager=fleetdeck"),
        "evictions say who asked: {}",
        e.query
    );
    assert_eq!(e.body["apiVersion"], "policy/v1");
    assert_eq!(e.body["kind"], "Eviction");
    assert!(
        !seen.iter().any(|s| s.path.contains("aws-node")
            || s.path.contains("kube-proxy")
            || s.path.contains("report")),
        "DaemonSet, mirror and finished pods are not evicted"
    );
}

#[tokio::test(start_paused = true)]
async fn drain_times_out_naming_the_pods_a_budget_protects() {
    let (client, _) = drain_server(usize::MAX);
    let op = Operation::Drain {
        node: "ip-10-0-1-7.ec2.internal".into(),
        timeout_secs: 30,
    };
    let started = tokio::time::Instant::now();
    let (result, _) = run(&client, op, false).await;
    assert_eq!(
        result.unwrap_err(),
        "timed out after 30s: 1 pod(s) not evicted, a PodDisruptionBudget allows no disruption: kube-system/coredns-5d8f7c9b4-x2lq9; 1 evicted; the node stays cordoned"
    );
    assert!(started.elapsed() <= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn drain_dry_run_changes_nothing_and_says_what_a_budget_would_hold() {
    let (client, log) = drain_server(usize::MAX);
    let op = Operation::Drain {
        node: "ip-10-0-1-7.ec2.internal".into(),
        timeout_secs: 300,
    };
    let (result, _) = run(&client, op, true).await;
    assert_eq!(
        result.unwrap(),
        "dry run accepted by the API server: would cordon node ip-10-0-1-7.ec2.internal and evict 2 pod(s) (2 DaemonSet or static pod(s) stay): kube-system/coredns-5d8f7c9b4-x2lq9, payments/payments-api-7d4f9c8b6-kq2mz; refused now by a PodDisruptionBudget (the drain would wait for them): kube-system/coredns-5d8f7c9b4-x2lq9"
    );
    let seen = log.lock().unwrap().clone();
    for s in seen.iter().filter(|s| s.method != "GET") {
        assert!(
            s.query.contains("dryRun=All"),
            "{} {} {}",
            s.method,
            s.path,
            s.query
        );
    }
    let eviction = seen.iter().find(|s| s.path.ends_with("/eviction")).unwrap();
    assert_eq!(eviction.body["deleteOptions"]["dryRun"], json!(["All"]));
}
