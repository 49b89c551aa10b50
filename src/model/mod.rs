//! Domain types and the pure `Store` that every source feeds and every view reads.

mod alert;
mod cluster;
mod event;
mod kube;
mod metric;
mod policy;
mod rollout;
mod source;
mod store;

pub use alert::{Ack, AckKind, Alert, AlertKey, AlertSource, AlertState, Severity};
pub use cluster::{
    Addon, Cluster, ClusterHealth, ClusterId, ClusterStatus, Deprecation, Described, EksUpdate,
    Environment, HealthIssue, Insight, InsightDetail, InsightStatus, Support,
};
pub use event::{MetricRun, MetricSample, SourceEvent};
pub use kube::{
    AppStepStatus, ApplicationSet, ArgoApp, BlockingPdb, Connection, CrashingPod, KubeSignals,
    NotReadyNode, PermissionCheck, SyncStep, WarningEvent, WorkloadRef,
};
pub use metric::{ETCD_QUOTA_BYTES, MetricName, MetricRing};
pub use policy::{
    PolicyCounts, PolicyFailure, PolicyReports, PolicyResult, RESOURCES_LISTED, resource_labels,
    severity_of,
};
pub use rollout::{Cell, CellPhase, Gate, GateStatus, Hold, HoldKind, Rollout, Wave, WaveState};
pub use source::{AccountCounts, Pace, SourceHealth, SourceStatus};
pub use store::{ClusterFilter, FleetSummary, SortKey, Store};

/// All times in the domain are UTC instants; the clock is always passed in, never read.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
