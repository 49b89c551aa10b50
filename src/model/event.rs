use serde::{Deserialize, Serialize};

use super::{
    Ack, Alert, AlertKey, ApplicationSet, ArgoApp, Cluster, ClusterId, KubeSignals, MetricName,
    PermissionCheck, Rollout, SourceHealth,
};

/// One point of one metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub metric: MetricName,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub value: f32,
}

/// Minutes of one metric of one cluster, from `start` (minutes since the Unix epoch) on,
/// one value per minute (`None`: no point that minute). The compact form a whole picture
/// sends its metric history in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRun {
    pub metric: MetricName,
    pub start: i64,
    pub values: Vec<Option<f32>>,
}

/// Everything a source can tell the store. Sources send these over a bounded channel;
/// `Store::apply` folds them in. No event carries UI state. The same events, serialized,
/// are what `fleetdeck serve` streams to remote consoles (`crate::feed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceEvent {
    /// The complete set of clusters a source sees: clusters of this source not listed are
    /// removed (with their metrics), so a deleted cluster disappears.
    ClusterInventory {
        source: String,
        clusters: Vec<Cluster>,
    },
    /// One cluster changed (status, version, insights, updates...).
    ClusterChanged(Box<Cluster>),
    /// Some of a source's clusters changed, in one batch (descriptions as they come in,
    /// names first); the source's other clusters stand.
    ClustersChanged {
        source: String,
        clusters: Vec<Cluster>,
    },
    /// New or changed alerts (a resolved alert is sent with `state: Resolved`).
    Alerts(Vec<Alert>),
    /// Alerts the source no longer knows at all (not just resolved).
    AlertsGone(Vec<AlertKey>),
    /// Metric points for one cluster.
    Metrics {
        cluster: ClusterId,
        samples: Vec<MetricSample>,
    },
    /// Metric history for one cluster, run by run (a whole picture's form of `Metrics`).
    MetricRuns {
        cluster: ClusterId,
        runs: Vec<MetricRun>,
    },
    /// A rollout's whole state, replacing the previous one of that name.
    Rollout(Rollout),
    /// What a cluster's API server says now (replaces the previous picture).
    KubeSignals {
        cluster: ClusterId,
        signals: Box<KubeSignals>,
    },
    /// The complete set of Argo CD Applications a hub source sees.
    Applications { source: String, apps: Vec<ArgoApp> },
    /// The complete set of Argo CD ApplicationSets a hub source sees.
    ApplicationSets {
        source: String,
        sets: Vec<ApplicationSet>,
    },
    /// What the user may do, as the API server of `cluster` (or of the hub, when `None`)
    /// answered; replaces that source's previous checks.
    Permissions {
        source: String,
        cluster: Option<ClusterId>,
        checks: Vec<PermissionCheck>,
    },
    /// The source's own health counters.
    Health(SourceHealth),
    /// The source has delivered its first complete picture.
    Ready { source: String },
    /// The source has applied `SourceCommand::Targets` number `seq` and sent the events
    /// that follow from it (applications and alerts tied to their clusters). The engine
    /// keeps this; the store has nothing to fold in.
    Targeted { source: String, seq: u64 },
    /// A source was started under this name: it is listed as loading until it reports
    /// its own health, and counts as loading until its `Ready`.
    Expected {
        source: String,
        poll_interval_secs: u64,
    },
    /// An ack fleetdeck keeps itself (an alert whose source keeps none), or its end.
    LocalAck { alert: AlertKey, ack: Option<Ack> },
    /// The rollout plans of a server's config (`[hub] plans`), for a console connected to
    /// it: as a local console reads them from its own config.
    RolloutPlans(std::collections::BTreeMap<String, crate::rollout::plan::Plan>),
    /// A source stopped for good: its clusters, alerts and health go with it.
    SourceGone { source: String },
    /// Sources were started or stopped (an organization's accounts came or went): the
    /// engine takes the `SourceChange` sent just before this from its own channel, in
    /// order with the events. The store has nothing to fold in.
    SourcesChanged,
}
