//! Runbook steps against the demo fleet: the same requests the real Kubernetes, Argo CD and
//! EKS sources take, answered with simulated results (every message says "demo") so the
//! whole path, preview, confirmation, progress, outcome and audit, can be tried without a
//! cluster. Nothing here talks to a real system.

use std::time::Duration;

use super::DemoFleet;
use super::hash::{between, hash};
use crate::actions::Operation;
use crate::sources::remediation::RemediateRequest;

/// Hash tag of this module (apart from the fleet's, so nothing else shifts).
const PODS: i64 = 201;
/// Pace of a simulated drain, real time.
const DRAIN_STEP: Duration = Duration::from_millis(250);

/// Answers `request` for `fleet`; a drain is paced in a task of its own.
pub(super) fn handle(fleet: &DemoFleet, request: RemediateRequest) {
    let Some(c) = fleet
        .clusters
        .iter()
        .position(|c| c.id == request.remediation.cluster)
    else {
        let name = request.remediation.cluster.name.clone();
        request.answer(Err(format!(
            "demo: no cluster named {name} in the demo fleet"
        )));
        return;
    };
    let cluster = &fleet.clusters[c];
    let dry = request.dry_run;
    let say = |would: String, did: String| {
        if dry {
            format!("demo: dry run accepted: would {would}")
        } else {
            format!("demo: {did}")
        }
    };
    let pods = between(hash(fleet.seed, &[PODS, c as i64]), 3, 9) as usize;
    let result = match &request.remediation.op {
        Operation::RolloutRestart {
            namespace,
            deployment,
        } => Ok(say(
            format!(
                "restart deployment {namespace}/{deployment}: 2 pod(s) replaced by a rolling update (maxUnavailable 1, maxSurge 25%)"
            ),
            format!("restarted deployment {namespace}/{deployment}: 2 pod(s) being replaced"),
        )),
        Operation::Scale {
            namespace,
            deployment,
            replicas,
        } => Ok(say(
            format!("scale deployment {namespace}/{deployment} from 2 to {replicas} replicas"),
            format!("scaled deployment {namespace}/{deployment} from 2 to {replicas} replicas"),
        )),
        Operation::Cordon { node } => Ok(say(
            format!("cordon node {node}: no new pod will be scheduled there; running pods stay"),
            format!("cordoned node {node}"),
        )),
        Operation::Uncordon { node } => Ok(say(
            format!("uncordon node {node}: pods may be scheduled there again"),
            format!("uncordoned node {node}"),
        )),
        Operation::DeletePod { namespace, pod } => Ok(say(
            format!("delete pod {namespace}/{pod}; its ReplicaSet replaces it"),
            format!("deleted pod {namespace}/{pod}; its ReplicaSet replaces it"),
        )),
        Operation::ArgocdRefresh { application } => Ok(say(
            format!("refresh application {application}"),
            format!("application {application} refresh requested"),
        )),
        Operation::ArgocdSync { application } => Ok(say(
            format!("sync application {application} to its target revision"),
            format!("sync of application {application} started"),
        )),
        Operation::UpdateAddon { addon, version, .. } => {
            match cluster.addons.iter().find(|a| &a.name == addon) {
                None => Err(format!(
                    "demo: ResourceNotFoundException: No addon: {addon} found in cluster: {}",
                    cluster.id.name
                )),
                Some(a) => {
                    let to = version.clone().unwrap_or_else(|| next_build(&a.version));
                    Ok(say(
                        format!("update add-on {addon} from {} to {to}", a.version),
                        format!(
                            "update of add-on {addon} from {} to {to} started",
                            a.version
                        ),
                    ))
                }
            }
        }
        Operation::Drain { node, .. } if !dry => {
            tokio::spawn(drain(node.clone(), pods, request));
            return;
        }
        Operation::Drain { node, .. } => Ok(say(
            format!("cordon node {node} and evict {pods} pod(s) (2 DaemonSet pod(s) stay)"),
            String::new(),
        )),
        Operation::Shell { .. } => {
            Err("demo: shell steps run on this machine, not in a source".into())
        }
    };
    request.answer(result);
}

/// A simulated drain: cordon, then one eviction per step, the first refused once by a
/// disruption budget, as on a cluster whose CoreDNS runs at its budget.
async fn drain(node: String, pods: usize, request: RemediateRequest) {
    request.progress(format!("demo: cordoned node {node}"));
    request.progress(format!(
        "demo: {pods} pod(s) to evict from {node} (2 DaemonSet pod(s) stay)"
    ));
    tokio::time::sleep(DRAIN_STEP).await;
    request.progress(
        "demo: kube-system/coredns-5d8f7c9b4-x2lq9: eviction refused, retrying every 5s: TooManyRequests (429): Cannot evict pod as it would violate the pod's disruption budget.",
    );
    for i in 0..pods {
        tokio::time::sleep(DRAIN_STEP).await;
        let name = if i == 0 {
            "kube-system/coredns-5d8f7c9b4-x2lq9".to_string()
        } else {
            format!("payments/payments-api-7d4f9c8b6-{i:02}")
        };
        request.progress(format!("demo: evicted {name}"));
    }
    request.answer(Ok(format!(
        "demo: drained node {node}: {pods} pod(s) evicted (2 DaemonSet pod(s) stay); the node stays cordoned"
    )));
}

/// `v1.11.1-eksbuild.4` -> `v1.11.1-eksbuild.5`: the demo's "default" version.
fn next_build(version: &str) -> String {
    match version.rsplit_once("eksbuild.") {
        Some((head, n)) => match n.parse::<u32>() {
            Ok(n) => format!("{head}eksbuild.{}", n + 1),
            Err(_) => format!("{version}-1"),
        },
        None => format!("{version}-1"),
    }
}
