//! Objects of a spoke (an EKS cluster's insides) as the API server stores them: nodes,
//! pods, Events, PodDisruptionBudgets and Deployments, with the fields fleetdeck's
//! Kubernetes source reads (`src/sources/kube/spoke/summary.rs`).

use serde_json::{Value, json};

use super::argocd::AT;

/// An EKS managed node group's node; `ready: false` is the kubelet having stopped
/// posting status (Ready Unknown, `NodeStatusUnknown`).
pub fn node(name: &str, ready: bool) -> Value {
    let condition = if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "kubelet is posting ready status", "lastHeartbeatTime": AT, "lastTransitionTime": AT})
    } else {
        json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
               "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": AT, "lastTransitionTime": AT})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "eks.amazonaws.com/nodegroup": "general",
                "topology.kubernetes.io/zone": "us-east-1a",
                "node.kubernetes.io/instance-type": "m6i.large",
            },
        },
        "spec": {"providerID": format!("aws:///us-east-1a/i-0{:015x}", name.len())},
        "status": {
            "conditions": [condition],
            "nodeInfo": {"kubeletVersion": "v1.33.4-eks-3025e55", "containerRuntimeVersion": "containerd://1.7.27", "osImage": "Amazon Linux 2023"},
        },
    })
}

/// A running pod of `owner` (`("ReplicaSet", "api-7d9f8")`, `("DaemonSet", "aws-node")`)
/// on `node`, labelled `labels`.
pub fn pod(
    namespace: &str,
    name: &str,
    node: &str,
    labels: &[(&str, &str)],
    owner: (&str, &str),
) -> Value {
    let mut label_map = json!({});
    for (k, v) in labels {
        label_map[*k] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": label_map,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                                  "uid": "5b0c7e2a-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "main", "image": "public.ecr.aws/acme/app:1.42.0"}],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": AT}],
            "containerStatuses": [{
                "name": "main", "ready": true, "restartCount": 0, "started": true,
                "image": "public.ecr.aws/acme/app:1.42.0", "imageID": "",
                "state": {"running": {"startedAt": AT}},
            }],
            "startTime": AT,
        },
    })
}

/// `pod` in CrashLoopBackOff after `restarts` restarts.
pub fn crash_looping(mut pod: Value, restarts: i64) -> Value {
    pod["status"]["conditions"][0]["status"] = json!("False");
    pod["status"]["containerStatuses"][0]["ready"] = json!(false);
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts);
    pod["status"]["containerStatuses"][0]["state"] = json!({"waiting": {
        "reason": "CrashLoopBackOff",
        "message": "back-off 5m0s restarting failed container=main",
    }});
    pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {
        "exitCode": 1, "reason": "Error", "startedAt": AT, "finishedAt": AT,
    }});
    pod
}

/// A core/v1 Warning Event about `kind`/`name` in `namespace`, seen `count` times, last
/// at `last` (RFC 3339).
pub fn warning_event(
    namespace: &str,
    kind: &str,
    name: &str,
    reason: &str,
    message: &str,
    count: i64,
    last: &str,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", message.len() * 7919), "namespace": namespace},
        "involvedObject": {"kind": kind, "namespace": namespace, "name": name, "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "ip-10-0-1-7.ec2.internal"},
        "firstTimestamp": last,
        "lastTimestamp": last,
        "count": count,
        "type": "Warning",
        "reportingComponent": "kubelet",
        "reportingInstance": "ip-10-0-1-7.ec2.internal",
    })
}

/// A PodDisruptionBudget over pods labelled `app: {app}`, with the status the disruption
/// controller keeps (`disruptionsAllowed` is what evictions spend).
pub fn pdb(
    namespace: &str,
    name: &str,
    app: &str,
    allowed: i64,
    current: i64,
    desired: i64,
) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": app}}},
        "status": {
            "observedGeneration": 1,
            "disruptionsAllowed": allowed,
            "currentHealthy": current,
            "desiredHealthy": desired,
            "expectedPods": current.max(1),
            "conditions": [{"type": "DisruptionAllowed", "status": if allowed > 0 { "True" } else { "False" },
                            "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                            "message": "", "lastTransitionTime": AT, "observedGeneration": 1}],
        },
    })
}

/// A Deployment of `replicas` pods labelled `app: {name}`.
pub fn deployment(namespace: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "public.ecr.aws/acme/app:1.42.0"}]},
            },
        },
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "updatedReplicas": replicas},
    })
}
