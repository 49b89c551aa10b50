//! What fleetdeck learns from inside clusters (the spokes) and from the Argo CD hub.

use serde::{Deserialize, Serialize};

use super::{ClusterId, Timestamp};

/// Whether fleetdeck can talk to a cluster's API server, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Connection {
    /// Not connected because nothing asked for it (not on screen, no alert, no wave).
    Idle,
    Connected,
    /// Tried and failed: the reason names what the API server or the network said
    /// (401 credentials rejected, 403 forbidden, timeout, TLS...).
    Unavailable {
        reason: String,
    },
}

/// A node that is not Ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReadyNode {
    pub name: String,
    /// When its Ready condition last changed.
    pub since: Option<Timestamp>,
    pub reason: String,
}

/// A pod stuck in CrashLoopBackOff or ImagePullBackOff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashingPod {
    pub namespace: String,
    pub name: String,
    /// `CrashLoopBackOff`, `ImagePullBackOff` or `ErrImagePull`.
    pub reason: String,
    pub restarts: i32,
}

/// A Warning event, deduplicated by object, reason and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningEvent {
    pub namespace: String,
    /// `Kind/name` of the object the event is about.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<Timestamp>,
}

/// A PodDisruptionBudget that allows no disruption: it blocks node drains and rollouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockingPdb {
    pub namespace: String,
    pub name: String,
    pub current_healthy: i32,
    pub desired_healthy: i32,
}

/// A deployment with one replica (flagged in production: one pod is one outage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
}

/// Everything one cluster's API server told fleetdeck, for the cluster view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeSignals {
    pub connection: Connection,
    pub nodes_total: usize,
    pub not_ready_nodes: Vec<NotReadyNode>,
    pub crashing_pods: Vec<CrashingPod>,
    pub warning_events: Vec<WarningEvent>,
    pub blocking_pdbs: Vec<BlockingPdb>,
    pub single_replica: Vec<WorkloadRef>,
    /// What the cluster's PolicyReports say; `None` while none has been read, or when the
    /// cluster serves no PolicyReport resource at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_reports: Option<super::PolicyReports>,
    pub updated: Timestamp,
}

/// An Argo CD Application, as the hub reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgoApp {
    pub name: String,
    pub namespace: String,
    pub project: String,
    /// The spoke it deploys to, when fleetdeck knows that cluster.
    pub cluster: Option<ClusterId>,
    /// `spec.destination.server` or `.name`, as written.
    pub destination: String,
    /// `status.sync.status`: Synced, OutOfSync, Unknown.
    pub sync: String,
    /// `status.health.status`: Healthy, Progressing, Degraded, Suspended, Missing, Unknown.
    pub health: String,
    /// `status.operationState.phase`: Running, Succeeded, Failed, Error, Terminating.
    pub operation_phase: Option<String>,
    pub message: Option<String>,
    /// `metadata.labels`: progressive-sync steps select Applications by these.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The ApplicationSet that generated it (its `ownerReferences`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_set: Option<String>,
}

/// A write fleetdeck offers, and whether the API server lets this user do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionCheck {
    /// What fleetdeck would do, e.g. `pause-wave`.
    pub action: String,
    /// The Kubernetes verb and resource checked, e.g. `patch applicationsets.argoproj.io`.
    pub checked: String,
    pub namespace: Option<String>,
    pub allowed: bool,
    /// The API server's reason, or why the check itself failed.
    pub reason: String,
}

/// One step of an ApplicationSet's RollingSync strategy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStep {
    /// `matchExpressions` as `(key, operator, values)`, e.g. `("env", "In", ["staging"])`.
    pub match_expressions: Vec<(String, String, Vec<String>)>,
    /// `maxUpdate` as written: an integer or a percentage (`"25%"`); `None` when unset.
    pub max_update: Option<String>,
}

/// One entry of `status.applicationStatus[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStepStatus {
    pub application: String,
    /// Waiting, Pending, Progressing, Healthy.
    pub status: String,
    /// 1-based step number as Argo CD writes it (a string; `-1` for no step).
    pub step: Option<String>,
    pub message: String,
    pub last_transition_time: Option<Timestamp>,
}

/// An Argo CD ApplicationSet, with what progressive syncs need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSet {
    pub name: String,
    pub namespace: String,
    /// `metadata.resourceVersion`, for optimistic-concurrency writes.
    pub resource_version: String,
    /// `spec.strategy.type` (`RollingSync`, `AllAtOnce`), if any.
    pub strategy: Option<String>,
    pub steps: Vec<SyncStep>,
    pub application_status: Vec<AppStepStatus>,
    pub annotations: std::collections::BTreeMap<String, String>,
}
