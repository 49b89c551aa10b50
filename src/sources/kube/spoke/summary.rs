//! Pure conversions from API objects to the compact summaries the watch keeps. The full
//! object is dropped right after one of these runs, so memory grows with what is wrong
//! in a cluster, not with its size.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff;

use crate::model::{BlockingPdb, CrashingPod, NotReadyNode, Timestamp, WarningEvent, WorkloadRef};

/// Longest event or condition message kept; API messages can run to kilobytes.
pub(super) const MESSAGE_CHARS: usize = 300;

/// The namespace whose single-replica deployments are not flagged: its add-ons (and
/// controllers such as cluster-autoscaler) run one replica with leader election by
/// design, and app teams cannot act on them.
pub(super) const SYSTEM_NAMESPACE: &str = "kube-system";

/// What the watch keeps of a node: enough to count it and, if it is not Ready, say why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NodeSummary {
    pub not_ready: Option<NodeTrouble>,
}

/// A node whose Ready condition is False or Unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NodeTrouble {
    pub node: NotReadyNode,
    /// The condition's message, clipped, for the alert summary.
    pub message: String,
}

/// `namespace/name`, or `name` for cluster-scoped objects: the identity watch events
/// (including DELETED) carry.
pub(super) fn object_key(namespace: Option<&str>, name: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{}", name.unwrap_or_default()),
        None => name.unwrap_or_default().to_string(),
    }
}

/// A node's Ready state. A node that reports no Ready condition yet (it is registering)
/// is not counted as NotReady: only False and Unknown are.
pub(super) fn node(node: &Node) -> NodeSummary {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let not_ready = ready
        .filter(|c| c.status == "False" || c.status == "Unknown")
        .map(|c| NodeTrouble {
            node: NotReadyNode {
                name: node.metadata.name.clone().unwrap_or_default(),
                since: c
                    .last_transition_time
                    .as_ref()
                    .and_then(|t| timestamp(&t.0)),
                reason: c
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("Ready={}", c.status)),
            },
            message: clip(c.message.as_deref().unwrap_or_default(), MESSAGE_CHARS),
        });
    NodeSummary { not_ready }
}

/// The waiting reasons that mean a pod is stuck, most telling first: a crash loop says
/// more than an image pull that may be its first attempt.
const STUCK_REASONS: [&str; 3] = ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"];

/// A pod stuck in CrashLoopBackOff or an image pull, from any container or init
/// container's `state.waiting.reason`; restarts are summed over containers, as kubectl
/// shows them.
pub(super) fn crashing_pod(pod: &Pod) -> Option<CrashingPod> {
    let status = pod.status.as_ref()?;
    let containers = || {
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
    };
    let reason = containers()
        .filter_map(waiting_reason)
        .filter_map(|r| STUCK_REASONS.iter().position(|s| *s == r))
        .min()
        .map(|i| STUCK_REASONS[i])?;
    Some(CrashingPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        reason: reason.to_string(),
        restarts: containers().map(|c| c.restart_count).sum(),
    })
}

fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
    c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

/// A Warning event seen at or after `not_before`; older ones (and non-warnings, should
/// the field selector be ignored) are not kept.
pub(super) fn warning_event(event: &Event, not_before: Timestamp) -> Option<WarningEvent> {
    if event.type_.as_deref() != Some("Warning") {
        return None;
    }
    let last_seen = last_seen(event);
    if last_seen.is_some_and(|t| t < not_before) {
        return None;
    }
    let involved = &event.involved_object;
    let count = event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .unwrap_or(1);
    Some(WarningEvent {
        namespace: involved
            .namespace
            .clone()
            .or_else(|| event.metadata.namespace.clone())
            .unwrap_or_default(),
        object: format!(
            "{}/{}",
            involved.kind.as_deref().unwrap_or("?"),
            involved.name.as_deref().unwrap_or("?")
        ),
        reason: event.reason.clone().unwrap_or_default(),
        message: clip(
            event.message.as_deref().unwrap_or_default().trim(),
            MESSAGE_CHARS,
        ),
        count,
        last_seen,
    })
}

/// When an event last happened: the newest of the times the various event writers set.
fn last_seen(event: &Event) -> Option<Timestamp> {
    let series = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| &t.0);
    series
        .or(event.last_timestamp.as_ref().map(|t| &t.0))
        .or(event.event_time.as_ref().map(|t| &t.0))
        .or(event.first_timestamp.as_ref().map(|t| &t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| &t.0))
        .and_then(timestamp)
}

/// A PDB that allows no disruption while it guards pods. One that expects no pods
/// (its selector matches nothing) blocks nothing, so it is not kept.
pub(super) fn blocking_pdb(pdb: &PodDisruptionBudget) -> Option<BlockingPdb> {
    let status = pdb.status.as_ref()?;
    (status.disruptions_allowed == 0 && status.expected_pods > 0).then(|| BlockingPdb {
        namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
        name: pdb.metadata.name.clone().unwrap_or_default(),
        current_healthy: status.current_healthy,
        desired_healthy: status.desired_healthy,
    })
}

/// A deployment running one replica outside `kube-system`. An unset `spec.replicas` is
/// 1: that is what the API server defaults it to.
pub(super) fn single_replica(deployment: &Deployment) -> Option<WorkloadRef> {
    let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    (replicas == 1 && namespace != SYSTEM_NAMESPACE).then(|| WorkloadRef {
        namespace,
        name: deployment.metadata.name.clone().unwrap_or_default(),
    })
}

/// k8s-openapi speaks jiff; the domain speaks chrono.
pub(super) fn timestamp(t: &jiff::Timestamp) -> Option<Timestamp> {
    let nanos = u32::try_from(t.subsec_nanosecond()).ok()?;
    chrono::DateTime::from_timestamp(t.as_second(), nanos)
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    #[test]
    fn init_container_image_pull_is_seen_and_crash_loop_wins() {
        let p = pod(json!({
            "metadata": {"name": "api-1", "namespace": "shop"},
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "migrate", "image": "x", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            }
        }));
        let c = crashing_pod(&p).expect("stuck");
        assert_eq!(c.reason, "ImagePullBackOff");

        let p = pod(json!({
            "metadata": {"name": "api-2", "namespace": "shop"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 2,
                 "state": {"waiting": {"reason": "ErrImagePull"}}},
                {"name": "b", "image": "x", "imageID": "", "ready": false, "restartCount": 7,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }));
        let c = crashing_pod(&p).expect("stuck");
        assert_eq!((c.reason.as_str(), c.restarts), ("CrashLoopBackOff", 9));
    }

    #[test]
    fn running_or_creating_pods_are_not_stuck() {
        let p = pod(json!({
            "metadata": {"name": "api-3", "namespace": "shop"},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        }));
        assert_eq!(crashing_pod(&p), None);
    }

    #[test]
    fn pdb_expecting_no_pods_blocks_nothing() {
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "idle", "namespace": "shop"},
            "status": {"currentHealthy": 0, "desiredHealthy": 1, "disruptionsAllowed": 0,
                       "expectedPods": 0}
        }))
        .expect("pdb");
        assert_eq!(blocking_pdb(&pdb), None);
    }

    #[test]
    fn node_without_ready_condition_is_not_counted_not_ready() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "ip-10-0-9-9"},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}]}
        }))
        .expect("node");
        assert_eq!(node(&n).not_ready, None);
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("ok", 2), "ok");
    }
}
