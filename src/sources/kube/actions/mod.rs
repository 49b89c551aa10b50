//! Kubernetes writes on a spoke: rollout restart, scale, cordon, uncordon, drain and pod
//! deletion. Each can run as a server-side dry run (`dryRun=All`): the API server
//! validates and admits the change (webhooks included) without storing it, and the answer
//! says what would change. The connection is dialed per write, the same way the watchers'
//! is (kubeconfig context or native EKS token).

mod drain;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::connect::classify;
use super::dial::{Dial, NO_ROUTE};
use crate::actions::Operation;
use crate::sources::remediation::RemediateRequest;
use crate::sources::{ClusterTarget, WriteResult};

pub use super::connect::FIELD_MANAGER;

/// Dials `target` and carries out (or previews) the request, then answers it.
pub(super) async fn run<D: Dial>(
    dial: Arc<D>,
    target: Option<ClusterTarget>,
    request: RemediateRequest,
) {
    let cluster = request.remediation.cluster.name.clone();
    let result = async {
        let target = target.ok_or_else(|| {
            format!("{cluster}: not a cluster of the fleet (no endpoint known for it)")
        })?;
        let route = dial
            .route(&target)
            .ok_or_else(|| format!("{cluster}: {NO_ROUTE}"))?;
        let (client, url) = dial.dial(&target, route).await.map_err(|e| e.to_string())?;
        perform(&client, &url, &request).await
    }
    .await;
    request.answer(result);
}

/// Carries out one Kubernetes remediation on `client` (`url` names the server in errors).
pub async fn perform(client: &kube::Client, url: &str, request: &RemediateRequest) -> WriteResult {
    let dry_run = request.dry_run;
    let cluster = request.remediation.cluster.name.as_str();
    let fail = |e: kube::Error| describe_error(cluster, url, &e);
    match &request.remediation.op {
        Operation::RolloutRestart {
            namespace,
            deployment,
        } => restart(client, namespace, deployment, dry_run)
            .await
            .map_err(fail),
        Operation::Scale {
            namespace,
            deployment,
            replicas,
        } => scale(client, namespace, deployment, *replicas, dry_run)
            .await
            .map_err(fail),
        Operation::Cordon { node } => set_unschedulable(client, node, true, dry_run)
            .await
            .map_err(fail),
        Operation::Uncordon { node } => set_unschedulable(client, node, false, dry_run)
            .await
            .map_err(fail),
        Operation::DeletePod { namespace, pod } => delete_pod(client, namespace, pod, dry_run)
            .await
            .map_err(fail),
        Operation::Drain { node, timeout_secs } => {
            drain::drain(client, node, *timeout_secs, request, &fail).await
        }
        other => Err(format!(
            "{} is not a Kubernetes write; the Kubernetes source cannot carry it out",
            other.kind()
        )),
    }
}

/// `reason (code): message`, as the API server said it, naming the cluster.
fn describe_error(cluster: &str, url: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let causes: Vec<&str> = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.message.as_str()).collect())
                .unwrap_or_default();
            let mut text = format!(
                "{cluster}: {} ({}): {}",
                status.reason, status.code, status.message
            );
            if !causes.is_empty() {
                text = format!("{text} ({})", causes.join("; "));
            }
            text
        }
        other => classify(cluster, url, other).to_string(),
    }
}

fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// "dry run: would ..." or the plain outcome.
fn said(dry_run: bool, would: String, did: String) -> String {
    if dry_run {
        format!("dry run accepted by the API server: would {would}")
    } else {
        did
    }
}

/// What `kubectl rollout restart` does: a new `restartedAt` annotation on the pod
/// template, so the deployment rolls its pods by its own strategy.
async fn restart(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now
    }}}}});
    let d = api
        .patch(name, &patch_params(dry_run), &Patch::Strategic(&patch))
        .await?;
    let spec = d.spec.unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let how = match spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
    {
        Some(r) => format!(
            "a rolling update (maxUnavailable {}, maxSurge {})",
            int_or_string(r.max_unavailable.as_ref(), "25%"),
            int_or_string(r.max_surge.as_ref(), "25%"),
        ),
        None => match spec.strategy.and_then(|s| s.type_) {
            Some(t) if t == "Recreate" => "Recreate: all pods stop before new ones start".into(),
            _ => "a rolling update".into(),
        },
    };
    Ok(said(
        dry_run,
        format!("restart deployment {namespace}/{name}: {replicas} pod(s) replaced by {how}"),
        format!(
            "restarted deployment {namespace}/{name}: {replicas} pod(s) being replaced by {how}"
        ),
    ))
}

fn int_or_string(
    v: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    default: &str,
) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => default.to_string(),
    }
}

/// Reads the scale subresource, then patches it: the answer says from how many to how many.
async fn scale(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    replicas: u32,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let before = api.get_scale(name).await?;
    let from = before.spec.and_then(|s| s.replicas).unwrap_or(0);
    let patch = json!({"spec": {"replicas": replicas}});
    let after = api
        .patch_scale(name, &patch_params(dry_run), &Patch::Merge(&patch))
        .await?;
    let to = after.spec.and_then(|s| s.replicas).unwrap_or(0);
    Ok(said(
        dry_run,
        format!("scale deployment {namespace}/{name} from {from} to {to} replicas"),
        format!("scaled deployment {namespace}/{name} from {from} to {to} replicas"),
    ))
}

/// Cordon (`true`) or uncordon, as kubectl does: `spec.unschedulable`. Already so is no
/// change and no write.
async fn set_unschedulable(
    client: &kube::Client,
    name: &str,
    unschedulable: bool,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let node = api.get(name).await?;
    let now = node.spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let verb = if unschedulable { "cordon" } else { "uncordon" };
    if now == unschedulable {
        let state = if now { "cordoned" } else { "schedulable" };
        return Ok(format!("node {name} is already {state}: nothing to change"));
    }
    let patch = json!({"spec": {"unschedulable": unschedulable}});
    api.patch(name, &patch_params(dry_run), &Patch::Strategic(&patch))
        .await?;
    let what = if unschedulable {
        "no new pod will be scheduled there; running pods stay"
    } else {
        "pods may be scheduled there again"
    };
    Ok(said(
        dry_run,
        format!("{verb} node {name}: {what}"),
        format!("{verb}ed node {name}: {what}"),
    ))
}

/// Deletes one pod with its grace period; its controller (if any) replaces it.
async fn delete_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        dry_run,
        ..DeleteParams::default()
    };
    // The pod as it is now being deleted (or a bare Status for an immediate delete).
    let deleted = api.delete(name, &params).await?.left();
    let owner = deleted
        .and_then(|pod| pod.metadata.owner_references)
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{} {}", o.kind, o.name));
    let after = match owner {
        Some(owner) => format!("{owner} replaces it"),
        None => "no controller owns it: it will not come back".into(),
    };
    Ok(said(
        dry_run,
        format!("delete pod {namespace}/{name}; {after}"),
        format!("deleted pod {namespace}/{name}; {after}"),
    ))
}
