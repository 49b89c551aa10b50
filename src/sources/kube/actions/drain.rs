//! Draining a node as `kubectl drain` does: cordon it, then evict its pods through the
//! Eviction API, so PodDisruptionBudgets are respected. A refused eviction (429, the
//! budget allows no disruption now) is retried until the timeout; the drain then fails
//! naming the pods left and why. DaemonSet pods and static (mirror) pods stay, as with
//! `--ignore-daemonsets`. Progress goes out line by line.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use crate::sources::WriteResult;
use crate::sources::remediation::RemediateRequest;

/// Wait between rounds of evictions refused by a disruption budget.
const EVICT_RETRY: Duration = Duration::from_secs(5);
/// Wait between checks that evicted pods are gone.
const GONE_POLL: Duration = Duration::from_secs(2);

/// A pod on the node, by namespace and name.
type PodRef = (String, String);

pub(super) async fn drain(
    client: &kube::Client,
    node: &str,
    timeout_secs: u64,
    request: &RemediateRequest,
    fail: &(dyn Fn(kube::Error) -> String + Sync),
) -> WriteResult {
    let dry_run = request.dry_run;
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let cordoned = super::set_unschedulable(client, node, true, dry_run)
        .await
        .map_err(fail)?;
    request.progress(cordoned);

    let (to_evict, staying) = pods_on(client, node).await.map_err(fail)?;
    let stay = if staying == 0 {
        String::new()
    } else {
        format!(" ({staying} DaemonSet or static pod(s) stay)")
    };
    request.progress(format!(
        "{} pod(s) to evict from {node}{stay}",
        to_evict.len()
    ));

    if dry_run {
        let mut refused = Vec::new();
        for (ns, name) in &to_evict {
            match evict(client, ns, name, true).await {
                Ok(()) => {}
                Err(e) if is_budget_refusal(&e) => refused.push(format!("{ns}/{name}")),
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        let names: Vec<String> = to_evict.iter().map(|(n, p)| format!("{n}/{p}")).collect();
        let mut text = format!(
            "dry run accepted by the API server: would cordon node {node} and evict {} pod(s){stay}: {}",
            names.len(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
        if !refused.is_empty() {
            text.push_str(&format!(
                "; refused now by a PodDisruptionBudget (the drain would wait for them): {}",
                refused.join(", ")
            ));
        }
        return Ok(text);
    }

    // Evict, retrying those a budget protects until the deadline.
    let mut pending: Vec<PodRef> = to_evict.clone();
    let mut blocked: BTreeMap<PodRef, String> = BTreeMap::new();
    let mut evicted: Vec<PodRef> = Vec::new();
    loop {
        let mut still = Vec::new();
        for pod in pending {
            match evict(client, &pod.0, &pod.1, false).await {
                Ok(()) => {
                    request.progress(format!("evicted {}/{}", pod.0, pod.1));
                    blocked.remove(&pod);
                    evicted.push(pod);
                }
                Err(e) if is_gone(&e) => {
                    blocked.remove(&pod);
                }
                Err(e) if is_budget_refusal(&e) => {
                    let why = fail(e);
                    if !blocked.contains_key(&pod) {
                        request.progress(format!(
                            "{}/{}: eviction refused, retrying every {}s: {why}",
                            pod.0,
                            pod.1,
                            EVICT_RETRY.as_secs()
                        ));
                    }
                    blocked.insert(pod.clone(), why);
                    still.push(pod);
                }
                Err(e) => {
                    return Err(format!(
                        "drain of {node} stopped (the node stays cordoned): {}",
                        fail(e)
                    ));
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() + EVICT_RETRY > deadline {
            let left: Vec<String> = pending.iter().map(|p| format!("{}/{}", p.0, p.1)).collect();
            return Err(format!(
                "timed out after {timeout_secs}s: {} pod(s) not evicted, a PodDisruptionBudget allows no disruption: {}; {} evicted; the node stays cordoned",
                left.len(),
                left.join(", "),
                evicted.len()
            ));
        }
        tokio::time::sleep(EVICT_RETRY).await;
    }

    // Evicted pods terminate with their grace period; the drain ends when they are gone.
    loop {
        let (now_on, _) = pods_on(client, node).await.map_err(fail)?;
        let remaining: Vec<String> = now_on
            .iter()
            .filter(|p| evicted.contains(p))
            .map(|p| format!("{}/{}", p.0, p.1))
            .collect();
        if remaining.is_empty() {
            break;
        }
        if Instant::now() + GONE_POLL > deadline {
            return Err(format!(
                "timed out after {timeout_secs}s waiting for evicted pods to terminate: {}; the node stays cordoned",
                remaining.join(", ")
            ));
        }
        request.progress(format!(
            "waiting for {} pod(s) to terminate",
            remaining.len()
        ));
        tokio::time::sleep(GONE_POLL).await;
    }
    Ok(format!(
        "drained node {node}: {} pod(s) evicted{stay}; the node stays cordoned",
        evicted.len()
    ))
}

/// The node's pods that a drain evicts, and how many stay (DaemonSet and mirror pods).
/// Finished pods (Succeeded, Failed) need no eviction.
async fn pods_on(client: &kube::Client, node: &str) -> Result<(Vec<PodRef>, usize), kube::Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    let mut evict = Vec::new();
    let mut stay = 0;
    for pod in list.items {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let daemon = pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.kind == "DaemonSet"));
        let mirror = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        if daemon || mirror {
            stay += 1;
        } else {
            evict.push((
                pod.metadata.namespace.unwrap_or_default(),
                pod.metadata.name.unwrap_or_default(),
            ));
        }
    }
    evict.sort();
    Ok((evict, stay))
}

/// `POST .../pods/NAME/eviction` with a `policy/v1` Eviction, as kubectl sends it.
async fn evict(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut eviction = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    });
    if dry_run {
        // As kubectl sends it; the API server requires body and query to agree.
        eviction["deleteOptions"] = json!({"dryRun": ["All"]});
    }
    // An Eviction is not stored, but the API server's audit log keeps the query.
    let params = PostParams {
        dry_run,
        field_manager: Some(super::FIELD_MANAGER.into()),
    };
    api.create_subresource::<_, serde_json::Value>("eviction", name, &params, &eviction)
        .await
        .map(|_| ())
}

/// 429 from the Eviction API: a disruption budget allows no eviction now.
fn is_budget_refusal(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 429)
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
