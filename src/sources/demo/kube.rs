//! What the demo clusters' API servers and the demo's Argo CD hub would say: the same
//! `KubeSignals` and `ArgoApp` types the real Kubernetes and Argo CD sources produce.

use super::hash::{between, hash};
use crate::model::{
    ArgoApp, BlockingPdb, Cluster, Connection, CrashingPod, KubeSignals, NotReadyNode, Timestamp,
    WarningEvent, WorkloadRef,
};

/// Hash tags of this module (apart from the fleet's, so nothing else shifts).
const NODES: i64 = 101;
const PDB: i64 = 102;
const SINGLE: i64 = 103;
const APPS: i64 = 104;

/// The inside of cluster `c` at `now`, given the alarms firing on it.
pub(super) fn signals(
    seed: u64,
    c: usize,
    cluster: &Cluster,
    firing: &[&str],
    now: Timestamp,
) -> KubeSignals {
    let minutes = |m: i64| Some(now - chrono::TimeDelta::minutes(m));
    let nodes_total = between(hash(seed, &[NODES, c as i64]), 3, 40) as usize;
    let mut s = KubeSignals {
        connection: Connection::Connected,
        nodes_total,
        not_ready_nodes: Vec::new(),
        crashing_pods: Vec::new(),
        warning_events: Vec::new(),
        blocking_pdbs: Vec::new(),
        single_replica: Vec::new(),
        policy_reports: None,
        updated: now,
    };
    // A degraded add-on or EKS health issue shows inside as a node that dropped out.
    if !cluster.health_issues.is_empty() || cluster.addons.iter().any(|a| a.status != "ACTIVE") {
        s.not_ready_nodes.push(NotReadyNode {
            name: format!(
                "ip-10-{}-{}-{}.ec2.internal",
                c % 250,
                17 + c % 200,
                40 + c % 180
            ),
            since: minutes(23),
            reason: "KubeletNotReady: container runtime network not ready: NetworkReady=false"
                .into(),
        });
        s.warning_events.push(WarningEvent {
            namespace: "kube-system".into(),
            object: "Pod/aws-node-7xk2p".into(),
            reason: "BackOff".into(),
            message: "Back-off restarting failed container aws-node".into(),
            count: 14,
            last_seen: minutes(2),
        });
    }
    // Pods that can't be scheduled, and the ones crashing after the last deploy.
    if firing.iter().any(|a| a.starts_with("eks-pending-pods")) {
        s.crashing_pods.push(CrashingPod {
            namespace: "payments".into(),
            name: "payments-worker-6f9c7d5b8-x2lq9".into(),
            reason: "CrashLoopBackOff".into(),
            restarts: 17,
        });
        s.warning_events.push(WarningEvent {
            namespace: "payments".into(),
            object: "Pod/payments-api-7d4f9c8b6-kq2mz".into(),
            reason: "FailedScheduling".into(),
            message: "0/12 nodes are available: 12 Insufficient cpu. preemption: 0/12 nodes are available".into(),
            count: 212,
            last_seen: minutes(1),
        });
    }
    if firing.iter().any(|a| a.starts_with("eks-apiserver-5xx")) {
        s.warning_events.push(WarningEvent {
            namespace: "kube-system".into(),
            object: "APIService/v1beta1.metrics.k8s.io".into(),
            reason: "FailedDiscoveryCheck".into(),
            message: "failing or missing response from https://10.100.41.7:443/apis/metrics.k8s.io/v1beta1: context deadline exceeded".into(),
            count: 48,
            last_seen: minutes(0),
        });
    }
    if hash(seed, &[PDB, c as i64]).is_multiple_of(6) {
        s.blocking_pdbs.push(BlockingPdb {
            namespace: "kube-system".into(),
            name: "coredns".into(),
            current_healthy: 1,
            desired_healthy: 1,
        });
    }
    if cluster.environment.is_production() && hash(seed, &[SINGLE, c as i64]).is_multiple_of(4) {
        s.single_replica.push(WorkloadRef {
            namespace: "payments".into(),
            name: "ledger-reconciler".into(),
        });
    }
    s
}

/// The demo hub's Applications: two per cluster, the one on a cluster whose API answers
/// 5xx degraded.
pub(super) fn applications(seed: u64, clusters: &[Cluster], failing: &[usize]) -> Vec<ArgoApp> {
    let mut apps = Vec::with_capacity(clusters.len() * 2);
    for (c, cluster) in clusters.iter().enumerate() {
        let team = cluster.team.clone().unwrap_or_else(|| "platform".into());
        for (kind, project) in [("addons", "platform"), (team.as_str(), team.as_str())] {
            let degraded = kind != "addons" && failing.contains(&c);
            apps.push(ArgoApp {
                name: format!("{}-{kind}", cluster.id.name),
                namespace: "argocd".into(),
                project: project.to_string(),
                cluster: Some(cluster.id.clone()),
                destination: cluster.endpoint.clone().unwrap_or_default(),
                sync: if degraded { "OutOfSync" } else { "Synced" }.into(),
                health: if degraded { "Degraded" } else { "Healthy" }.into(),
                operation_phase: Some(if degraded { "Failed" } else { "Succeeded" }.into()),
                message: degraded.then(|| {
                    format!(
                        "Deployment {kind}-api: {} of 3 replicas available",
                        between(hash(seed, &[APPS, c as i64]), 0, 2)
                    )
                }),
                labels: Default::default(),
                app_set: None,
            });
        }
    }
    apps
}
