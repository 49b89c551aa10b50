//! The store: every source's events folded into one picture. Pure: no I/O, no clock reads.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};

/// The store's hash maps: keyed by cluster ids and alert keys, looked up for every event,
/// so hashed with foldhash (fast, still seeded per process) rather than SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::metric::ETCD_QUOTA_BYTES;
use super::{
    Alert, AlertKey, AlertState, ApplicationSet, ArgoApp, Cell, Cluster, ClusterHealth, ClusterId,
    ClusterStatus, Described, KubeSignals, MetricName, MetricRing, PermissionCheck, Rollout,
    SourceEvent, SourceHealth, Timestamp,
};
use alert_table::{AlertId, AlertTable};

/// Resolved alerts are kept this long so the Alerts view can show what just cleared.
const RESOLVED_RETENTION_SECS: i64 = 3600;
/// At most this many resolved alerts are kept, oldest dropped first.
const RESOLVED_CAP: usize = 5_000;

/// Columns the fleet table can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    Name,
    Account,
    Region,
    Environment,
    Version,
    Status,
    Alerts,
    RequestRate,
    Errors5xx,
    LatencyP99,
    EtcdPercent,
}

impl SortKey {
    pub const ALL: [SortKey; 11] = [
        SortKey::Name,
        SortKey::Account,
        SortKey::Region,
        SortKey::Environment,
        SortKey::Version,
        SortKey::Status,
        SortKey::Alerts,
        SortKey::RequestRate,
        SortKey::Errors5xx,
        SortKey::LatencyP99,
        SortKey::EtcdPercent,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "cluster",
            Self::Account => "account",
            Self::Region => "region",
            Self::Environment => "env",
            Self::Version => "version",
            Self::Status => "status",
            Self::Alerts => "alerts",
            Self::RequestRate => "req/s",
            Self::Errors5xx => "5xx",
            Self::LatencyP99 => "p99",
            Self::EtcdPercent => "etcd%",
        }
    }

    /// The next column, for a key that cycles through sort orders.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// A fleet filter: whitespace-separated terms that must all match. `field:value` matches
/// one field (`env:prod`, `region:eu-`, `version:1.29`, `status:failed`, `account:`,
/// `wave:`, `policy:` a policy failing on the cluster; `policy:` alone, any); a bare term
/// matches name, account, region, environment, version or status. Matching is
/// case-insensitive substring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFilter {
    terms: Vec<(Option<String>, String)>,
}

impl ClusterFilter {
    pub fn parse(text: &str) -> Self {
        let terms = text
            .split_whitespace()
            .map(|t| match t.split_once(':') {
                Some((field, value)) if !field.is_empty() => {
                    (Some(field.to_ascii_lowercase()), value.to_lowercase())
                }
                _ => (None, t.to_lowercase()),
            })
            .collect();
        Self { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// `search` is the cluster's `search_text`; `policies` the policies failing on it.
    fn matches(
        &self,
        cluster: &Cluster,
        search: &str,
        wave: Option<&str>,
        policies: &[String],
    ) -> bool {
        self.terms.iter().all(|(field, value)| {
            let has = |s: &str| contains_ignore_case(s, value);
            match field.as_deref() {
                Some("name" | "cluster") => has(&cluster.id.name),
                Some("account") => has(&cluster.id.account),
                Some("region") => has(&cluster.id.region),
                Some("env" | "environment") => has(described_fields(cluster)[0]),
                Some("version" | "v") => has(described_fields(cluster)[1]),
                Some("status") => has(described_fields(cluster)[2]),
                Some("wave") => wave.is_some_and(has),
                Some("team") => cluster.team.as_deref().is_some_and(has),
                Some("policy" | "pol") => policies.iter().any(|p| has(p)),
                // An unknown field matches nothing rather than everything: a typo must not
                // look like a fleet with no problems.
                Some(_) => false,
                None => search.contains(value.as_str()),
            }
        })
    }
}

/// The fields a term without a field searches, lowercased and joined by newlines (a term
/// holds no whitespace, so it cannot match across two fields). Kept per cluster, so a
/// keystroke in the filter does not lowercase the fleet again.
fn search_text(c: &Cluster) -> String {
    let [environment, version, status] = described_fields(c);
    [
        c.id.name.as_str(),
        &c.id.account,
        &c.id.region,
        environment,
        version,
        status,
    ]
    .join("\n")
    .to_lowercase()
}

/// Environment, version and status as a filter sees them: a cluster not described yet
/// has none of them, so it is found by `describing` (or `unknown`, when describing it
/// failed), never by an environment it may not have.
fn described_fields(c: &Cluster) -> [&str; 3] {
    match c.described {
        Described::Yes => [c.environment.as_str(), &c.version, c.status.as_str()],
        Described::Pending => ["describing"; 3],
        Described::Failed => ["unknown"; 3],
    }
}

fn contains_ignore_case(haystack: &str, lower_needle: &str) -> bool {
    if lower_needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() {
        let (h, n) = (haystack.as_bytes(), lower_needle.as_bytes());
        h.windows(n.len())
            .any(|w| w[0].to_ascii_lowercase() == n[0] && w.eq_ignore_ascii_case(n))
    } else {
        haystack.to_lowercase().contains(lower_needle)
    }
}

/// The fleet at a glance, for the header on every view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetSummary {
    pub clusters: usize,
    pub healthy: usize,
    pub warning: usize,
    pub critical: usize,
    pub unknown: usize,
    pub firing_critical: usize,
    pub firing_warning: usize,
    pub firing_info: usize,
    pub acked: usize,
    /// Percentage of cells updated across all rollouts, if any rollout exists.
    pub rollout_percent: Option<f64>,
}

/// Where a cluster sits in a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellRef {
    pub rollout: usize,
    pub wave: usize,
    pub cell: usize,
}

#[derive(Default)]
struct ClusterSlot {
    /// Which source reported it, so an inventory from that source can remove it.
    source: String,
    metrics: Vec<Option<MetricRing>>,
    /// What a filter term without a field searches (`search_text`).
    search: String,
    /// Its alerts, kept in step with the store's: a cluster view reads its own alerts
    /// without walking the fleet's.
    alerts: Vec<AlertId>,
}

/// Every source's events folded into one picture of the fleet.
#[derive(Default)]
pub struct Store {
    clusters: Vec<Cluster>,
    slots: Vec<ClusterSlot>,
    index: HashMap<ClusterId, usize>,
    alerts: AlertTable,
    /// Firing alert counts, kept in step with `alerts`.
    firing: FiringCounts,
    rollouts: Vec<Rollout>,
    cells: HashMap<ClusterId, CellRef>,
    sources: BTreeMap<String, SourceHealth>,
    /// Sources listed as loading before they reported any health of their own.
    placeholders: Vec<String>,
    /// Every source started under its own name (`expect_source`): each sends `Ready`
    /// under that name, so it is loading until then even once it has answered.
    started: Vec<String>,
    /// What is only remembered from the last session (the warm start).
    cached: cached::Cached,
    ready: Vec<String>,
    kube: HashMap<ClusterId, KubeSignals>,
    apps: BTreeMap<String, Vec<ArgoApp>>,
    app_sets: BTreeMap<String, Vec<ApplicationSet>>,
    permissions: BTreeMap<(String, Option<ClusterId>), Vec<PermissionCheck>>,
    /// Argo CD rollouts: plans from a file, and what each rollout's plan and the guard say.
    argo: rollouts::ArgoRollouts,
    /// Acks fleetdeck recorded itself (alerts with no silence to carry them), kept across
    /// the source's updates of the alert until it resolves.
    local_acks: HashMap<AlertKey, super::Ack>,
    /// Bumped on every change, so views can tell when to recompute.
    generation: u64,
    /// Bumped on every change to `alerts`, so the Alerts view re-sorts only then.
    alerts_generation: u64,
    /// Cluster name order (see `name_ranks`); reset whenever a cluster comes or goes.
    name_ranks: OnceCell<Vec<u32>>,
    /// The first listed cluster of each name (see `place`); reset with `name_ranks`.
    first_named: OnceCell<HashMap<String, usize>>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in. `now` dates what the event changes (rollout soak states).
    pub fn apply(&mut self, event: SourceEvent, now: Timestamp) {
        self.generation += 1;
        match event {
            SourceEvent::ClusterInventory { source, clusters } => {
                self.replace_inventory(&source, clusters)
            }
            SourceEvent::ClusterChanged(cluster) => {
                if let Some((i, true)) = self.refresh_cluster("", *cluster) {
                    self.file_alerts_of(i);
                }
            }
            SourceEvent::ClustersChanged { source, clusters } => {
                let mut added = false;
                for cluster in clusters {
                    added |= self
                        .refresh_cluster(&source, cluster)
                        .is_some_and(|(_, new)| new);
                }
                if added {
                    self.reindex_alerts();
                }
            }
            SourceEvent::Alerts(alerts) => {
                for alert in alerts {
                    if !self.cached.alerts.is_empty() {
                        self.cached.alerts.remove(&alert.key);
                    }
                    self.upsert_alert(alert);
                }
                // Old resolutions are forgotten on the clock tick (`expire`), not here: a
                // scan of every alert per event made a burst of N alerts cost N².
            }
            SourceEvent::AlertsGone(keys) => {
                self.alerts_generation += 1;
                for key in keys {
                    self.remove_alert(&key);
                }
            }
            SourceEvent::Metrics { cluster, samples } => {
                if let Some(&i) = self.index.get(&cluster) {
                    let slot = &mut self.slots[i];
                    for s in samples {
                        slot.metrics[s.metric.index()]
                            .get_or_insert_with(MetricRing::new)
                            .record(s.minute, s.value);
                    }
                }
            }
            SourceEvent::MetricRuns { cluster, runs } => {
                if let Some(&i) = self.index.get(&cluster) {
                    let slot = &mut self.slots[i];
                    for run in runs {
                        let ring =
                            slot.metrics[run.metric.index()].get_or_insert_with(MetricRing::new);
                        for (minute, value) in (run.start..).zip(run.values) {
                            if let Some(value) = value {
                                ring.record(minute, value);
                            }
                        }
                    }
                }
            }
            SourceEvent::Rollout(rollout) => {
                match self.rollouts.iter_mut().find(|r| r.name == rollout.name) {
                    Some(existing) => *existing = rollout,
                    None => self.rollouts.push(rollout),
                }
                self.reindex_cells();
            }
            SourceEvent::KubeSignals { cluster, signals } => {
                self.kube.insert(cluster, *signals);
            }
            SourceEvent::Applications { source, apps } => {
                self.apps.insert(source.clone(), apps);
                self.rebuild_argo_rollouts(&source, now);
            }
            SourceEvent::ApplicationSets { source, sets } => {
                self.app_sets.insert(source.clone(), sets);
                self.rebuild_argo_rollouts(&source, now);
            }
            SourceEvent::Permissions {
                source,
                cluster,
                checks,
            } => {
                self.permissions.insert((source, cluster), checks);
            }
            SourceEvent::Health(health) => {
                self.placeholders.retain(|p| *p != health.name);
                self.sources.insert(health.name.clone(), health);
            }
            SourceEvent::Ready { source } => {
                self.settle_cached(&source);
                // A source reporting its health under other names (one per Alertmanager)
                // leaves no empty row behind.
                if let Some(i) = self.placeholders.iter().position(|p| *p == source) {
                    self.placeholders.swap_remove(i);
                    self.sources.remove(&source);
                }
                if !self.ready.contains(&source) {
                    self.ready.push(source);
                }
            }
            SourceEvent::Expected {
                source,
                poll_interval_secs,
            } => {
                self.generation -= 1;
                self.expect_source(&source, poll_interval_secs);
            }
            SourceEvent::LocalAck { alert, ack } => {
                self.generation -= 1;
                self.set_local_ack(&alert, ack);
            }
            SourceEvent::RolloutPlans(plans) => self.set_rollout_plans(plans),
            SourceEvent::SourceGone { source } => {
                self.generation -= 1;
                self.forget_source(&source);
            }
            // What a source was told is the engine's business, not the picture's.
            SourceEvent::Targeted { .. } | SourceEvent::SourcesChanged => self.generation -= 1,
        }
    }

    /// Lists or updates a cluster: its index, and whether it is new. Alerts that named a
    /// new cluster before it was listed are not yet filed under it: the caller files them
    /// (`file_alerts_of` for one cluster, `reindex_alerts` after an inventory).
    fn upsert_cluster(&mut self, source: &str, cluster: Cluster) -> (usize, bool) {
        if let Some(&i) = self.index.get(&cluster.id) {
            self.slots[i].search = search_text(&cluster);
            self.clusters[i] = cluster;
            if !source.is_empty() {
                self.slots[i].source = source.to_string();
            }
            (i, false)
        } else {
            let i = self.clusters.len();
            self.clusters_changed();
            self.index.insert(cluster.id.clone(), i);
            self.slots.push(ClusterSlot {
                source: source.to_string(),
                metrics: vec![None; MetricName::COUNT],
                search: search_text(&cluster),
                alerts: Vec::new(),
            });
            self.clusters.push(cluster);
            self.firing.per_cluster.push([0; 3]);
            (i, true)
        }
    }

    /// Lists or updates a cluster a source sent, unless it would hide a better picture: a
    /// cluster not described yet does not replace one remembered from the last session
    /// (that stays, marked as remembered, until the description comes). Returns what
    /// `upsert_cluster` does, or `None` when the remembered picture was kept.
    fn refresh_cluster(&mut self, source: &str, cluster: Cluster) -> Option<(usize, bool)> {
        if !self.cached.clusters.is_empty() && self.cached.clusters.contains(&cluster.id) {
            let remembered = self
                .cluster(&cluster.id)
                .is_some_and(|old| old.is_described());
            if remembered && !cluster.is_described() {
                if let Some(&i) = self.index.get(&cluster.id)
                    && !source.is_empty()
                {
                    self.slots[i].source = source.to_string();
                }
                return None;
            }
            self.cached.clusters.remove(&cluster.id);
        }
        Some(self.upsert_cluster(source, cluster))
    }

    /// Forgets what was worked out from the set of clusters.
    fn clusters_changed(&mut self) {
        self.name_ranks = OnceCell::new();
        self.first_named = OnceCell::new();
    }

    fn replace_inventory(&mut self, source: &str, clusters: Vec<Cluster>) {
        let keep: std::collections::HashSet<ClusterId> =
            clusters.iter().map(|c| c.id.clone()).collect();
        let gone: Vec<ClusterId> = self
            .clusters
            .iter()
            .zip(&self.slots)
            .filter(|(c, s)| s.source == source && !keep.contains(&c.id))
            .map(|(c, _)| c.id.clone())
            .collect();
        if !gone.is_empty() {
            self.remove_clusters(&gone);
        }
        let mut added = false;
        for cluster in clusters {
            added |= self
                .refresh_cluster(source, cluster)
                .is_some_and(|(_, new)| new);
        }
        let placed = self.place_alerts();
        if added || placed {
            self.reindex_alerts();
        }
    }

    /// Ties an alert whose source knows its cluster only by name (an Alertmanager label:
    /// no account, no region) to the listed cluster of that name, if there is one.
    fn place(&self, alert: &mut Alert) -> bool {
        let Some(c) = alert.cluster.as_ref() else {
            return false;
        };
        if !(c.account.is_empty() && c.region.is_empty()) {
            return false;
        }
        let first = self.first_named.get_or_init(|| {
            let mut first = HashMap::default();
            for (i, k) in self.clusters.iter().enumerate() {
                first.entry(k.id.name.clone()).or_insert(i);
            }
            first
        });
        match first.get(&c.name) {
            Some(&i) => {
                alert.cluster = Some(self.clusters[i].id.clone());
                true
            }
            None => false,
        }
    }

    /// Places the alerts that arrived before their cluster was listed; says whether any
    /// moved (the alert indexes then need `reindex_alerts`).
    fn place_alerts(&mut self) -> bool {
        let mut alerts = std::mem::take(&mut self.alerts);
        let mut moved = false;
        for alert in alerts.values_mut() {
            moved |= self.place(alert);
        }
        self.alerts = alerts;
        if moved {
            self.alerts_generation += 1;
        }
        moved
    }

    fn remove_clusters(&mut self, gone: &[ClusterId]) {
        let gone: std::collections::HashSet<&ClusterId> = gone.iter().collect();
        let mut clusters = Vec::with_capacity(self.clusters.len());
        let mut slots = Vec::with_capacity(self.slots.len());
        for (c, s) in std::mem::take(&mut self.clusters)
            .into_iter()
            .zip(std::mem::take(&mut self.slots))
        {
            if !gone.contains(&c.id) {
                clusters.push(c);
                slots.push(s);
            }
        }
        self.clusters = clusters;
        self.slots = slots;
        if !self.cached.clusters.is_empty() {
            for id in &gone {
                self.cached.clusters.remove(*id);
            }
        }
        self.clusters_changed();
        self.index = self
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        self.reindex_alerts();
    }

    /// Records (or with `None` forgets) an ack made in fleetdeck for an alert whose source
    /// keeps no acks. It lasts until the alert resolves or the ack expires.
    pub fn set_local_ack(&mut self, key: &AlertKey, ack: Option<super::Ack>) {
        self.generation += 1;
        self.alerts_generation += 1;
        match &ack {
            Some(a) => self.local_acks.insert(key.clone(), a.clone()),
            None => self.local_acks.remove(key),
        };
        let local = self.alerts.get(key).map(|alert| {
            alert
                .ack
                .as_ref()
                .is_none_or(|a| a.kind == super::AckKind::Local)
        });
        if local == Some(true)
            && let Some(alert) = self.alerts.get_mut(key)
        {
            let at = listed_at(&self.index, alert);
            self.firing.count(at, alert, -1);
            alert.ack = ack;
            self.firing.count(at, alert, 1);
        }
    }

    fn upsert_alert(&mut self, mut alert: Alert) {
        self.alerts_generation += 1;
        self.place(&mut alert);
        if alert.state == AlertState::Resolved {
            self.local_acks.remove(&alert.key);
        } else if alert.ack.is_none() {
            alert.ack = self.local_acks.get(&alert.key).cloned();
        }
        let at = listed_at(&self.index, &alert);
        self.firing.count(at, &alert, 1);
        let (id, old) = self.alerts.upsert(alert);
        match old {
            Some(old) => {
                let was = if old.cluster == self.alerts.at(id).cluster {
                    at
                } else {
                    listed_at(&self.index, &old)
                };
                self.firing.count(was, &old, -1);
                if was != at {
                    self.unfile(was, id);
                    self.file(at, id);
                }
            }
            None => self.file(at, id),
        }
    }

    fn remove_alert(&mut self, key: &AlertKey) {
        if let Some((id, old)) = self.alerts.remove(key) {
            let at = listed_at(&self.index, &old);
            self.firing.count(at, &old, -1);
            self.unfile(at, id);
        }
    }

    /// Files an alert under the listed cluster at `at`.
    fn file(&mut self, at: Option<usize>, id: AlertId) {
        if let Some(i) = at {
            self.slots[i].alerts.push(id);
        }
    }

    fn unfile(&mut self, at: Option<usize>, id: AlertId) {
        if let Some(i) = at {
            let filed = &mut self.slots[i].alerts;
            if let Some(p) = filed.iter().position(|&x| x == id) {
                filed.swap_remove(p);
            }
        }
    }

    /// Files the alerts that named a newly listed cluster before it was listed.
    fn file_alerts_of(&mut self, i: usize) {
        let id = &self.clusters[i].id;
        let mine: Vec<AlertId> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.cluster.as_ref() == Some(id))
            .map(|(n, _)| n)
            .collect();
        for n in mine {
            // Counted in the fleet's totals when it came; now on the cluster's too.
            let a = self.alerts.at(n);
            if a.is_firing() {
                self.firing.per_cluster[i][a.severity as usize] += 1;
            }
            self.file(Some(i), n);
        }
    }

    /// Works out the firing counts and each cluster's alerts afresh, after clusters came,
    /// went or moved, or alerts were placed.
    fn reindex_alerts(&mut self) {
        self.firing = FiringCounts {
            per_cluster: vec![[0; 3]; self.clusters.len()],
            ..FiringCounts::default()
        };
        for slot in &mut self.slots {
            slot.alerts.clear();
        }
        for (id, a) in self.alerts.iter() {
            let at = listed_at(&self.index, a);
            self.firing.count(at, a, 1);
            if let Some(i) = at {
                self.slots[i].alerts.push(id);
            }
        }
    }

    /// Forgets resolved alerts past their retention. Called on the clock tick too, so a
    /// quiet source does not keep old resolutions on screen.
    pub fn expire(&mut self, now: Timestamp) {
        let before = self.alerts.len();
        self.expire_resolved(now);
        let rollouts_changed = self.refresh_argo_rollouts(now);
        if self.alerts.len() != before || rollouts_changed {
            self.generation += 1;
        }
    }

    fn expire_resolved(&mut self, now: Timestamp) {
        let mut resolved: Vec<(Timestamp, &AlertKey)> = self
            .alerts
            .values()
            .filter(|a| a.state == AlertState::Resolved)
            .map(|a| (a.last_change, &a.key))
            .collect();
        // Oldest first; the key breaks ties so which of equally old alerts go is fixed.
        resolved.sort_unstable();
        let over = resolved.len().saturating_sub(RESOLVED_CAP);
        let gone: Vec<AlertKey> = resolved
            .into_iter()
            .enumerate()
            .filter(|&(i, (changed, _))| {
                i < over || (now - changed).num_seconds() > RESOLVED_RETENTION_SECS
            })
            .map(|(_, (_, key))| key.clone())
            .collect();
        if !gone.is_empty() {
            self.alerts_generation += 1;
        }
        for key in gone {
            self.remove_alert(&key);
        }
    }

    fn reindex_cells(&mut self) {
        self.cells.clear();
        for (r, rollout) in self.rollouts.iter().enumerate() {
            for (w, wave) in rollout.waves.iter().enumerate() {
                for (c, cell) in wave.cells.iter().enumerate() {
                    self.cells.insert(
                        cell.cluster.clone(),
                        CellRef {
                            rollout: r,
                            wave: w,
                            cell: c,
                        },
                    );
                }
            }
        }
    }

    // ----- reads -----

    /// Bumped on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Changes with every change to the alerts (and only then).
    pub fn alerts_generation(&self) -> u64 {
        self.alerts_generation
    }

    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    pub fn cluster_index(&self, id: &ClusterId) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn cluster(&self, id: &ClusterId) -> Option<&Cluster> {
        self.cluster_index(id).map(|i| &self.clusters[i])
    }

    /// Finds a cluster by bare name (first match) or by its full `account/region/name`.
    pub fn find_cluster(&self, name: &str) -> Option<usize> {
        self.clusters
            .iter()
            .position(|c| c.id.name == name || c.id.to_string() == name)
    }

    pub fn metric(&self, cluster: usize, metric: MetricName) -> Option<&MetricRing> {
        self.slots.get(cluster)?.metrics[metric.index()].as_ref()
    }

    pub fn latest(&self, cluster: usize, metric: MetricName) -> Option<f32> {
        self.metric(cluster, metric)?.latest()
    }

    /// Requests per second over the newest minute.
    pub fn request_rate(&self, cluster: usize) -> Option<f64> {
        self.latest(cluster, MetricName::RequestTotal)
            .map(|v| f64::from(v) / 60.0)
    }

    /// 5xx responses as a percentage of all requests over the newest minute.
    pub fn error_percent(&self, cluster: usize) -> Option<f64> {
        let total = self.latest(cluster, MetricName::RequestTotal)?;
        let errors = self.latest(cluster, MetricName::Request5xx)?;
        Some(if total > 0.0 {
            100.0 * f64::from(errors) / f64::from(total)
        } else {
            0.0
        })
    }

    /// etcd database size as a percentage of its quota.
    pub fn etcd_percent(&self, cluster: usize) -> Option<f64> {
        self.latest(cluster, MetricName::StorageSizeBytes)
            .map(|v| 100.0 * f64::from(v) / ETCD_QUOTA_BYTES)
    }

    /// Firing alerts on a cluster, by severity: `[critical, warning, info]`.
    pub fn firing_counts(&self, cluster: usize) -> [u32; 3] {
        self.firing
            .per_cluster
            .get(cluster)
            .copied()
            .unwrap_or_default()
    }

    pub fn firing_total(&self, cluster: usize) -> u32 {
        self.firing_counts(cluster).iter().sum()
    }

    /// How the cluster looks at a glance at `now`. Unknown when a source that watches it
    /// (its account and region's EKS or CloudWatch source) is failing or stale: silence
    /// from a broken source must never read as health.
    pub fn health(&self, cluster: usize, now: Timestamp) -> ClusterHealth {
        self.health_given(cluster, &self.scopes_down(now))
    }

    /// `health`, with the account/region scopes whose EKS or CloudWatch source is not
    /// answering worked out once for many clusters.
    fn health_given(&self, cluster: usize, down: &HashSet<(&str, &str)>) -> ClusterHealth {
        let c = &self.clusters[cluster];
        // Remembered from the last session: nothing about it is known now.
        if self.is_cached_cluster(cluster) {
            return ClusterHealth::Unknown;
        }
        let [crit, warn, _] = self.firing_counts(cluster);
        let covered = || !down.contains(&(c.id.account.as_str(), c.id.region.as_str()));
        match c.status {
            ClusterStatus::Failed => ClusterHealth::Critical,
            _ if crit > 0 => ClusterHealth::Critical,
            // Not described yet: its status and health issues are not known.
            _ if !c.is_described() => ClusterHealth::Unknown,
            ClusterStatus::Unknown => ClusterHealth::Unknown,
            _ if !covered() => ClusterHealth::Unknown,
            _ if warn > 0 || !c.health_issues.is_empty() => ClusterHealth::Warning,
            _ => ClusterHealth::Healthy,
        }
    }

    /// The (account, region) scopes whose EKS or CloudWatch source is failing or stale.
    fn scopes_down(&self, now: Timestamp) -> HashSet<(&str, &str)> {
        self.sources
            .values()
            .filter(|s| s.status(now) != super::SourceStatus::Ok)
            .filter_map(|s| {
                let scope = s
                    .name
                    .strip_prefix("eks:")
                    .or_else(|| s.name.strip_prefix("cloudwatch:"))?;
                scope.rsplit_once('/')
            })
            .collect()
    }

    /// Alert sources (CloudWatch alarms and, later, Alertmanagers) not answering now, and
    /// how many there are: while any is down, "no alert firing" is not known.
    pub fn alert_sources_down(&self, now: Timestamp) -> (usize, usize) {
        let alerting: Vec<&SourceHealth> = self
            .sources
            .values()
            .filter(|s| s.name.starts_with("cloudwatch:") || s.name.starts_with("alertmanager:"))
            .collect();
        let down = alerting
            .iter()
            .filter(|s| s.status(now) != super::SourceStatus::Ok)
            .count();
        (down, alerting.len())
    }

    /// All alerts, in no particular order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn alert(&self, key: &AlertKey) -> Option<&Alert> {
        self.alerts.get(key)
    }

    /// Alerts for the Alerts view: firing first, then unknown, then resolved; within
    /// each, by severity, then name, then cluster, then key.
    pub fn alerts_sorted(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.values().collect();
        v.sort_unstable_by(|a, b| {
            (a.state, a.severity, &a.name, &a.cluster, &a.key)
                .cmp(&(b.state, b.severity, &b.name, &b.cluster, &b.key))
        });
        v
    }

    /// One cluster's alerts, sorted as `alerts_sorted`.
    pub fn alerts_for(&self, cluster: &ClusterId) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = match self.index.get(cluster) {
            Some(&i) => self.slots[i]
                .alerts
                .iter()
                .map(|&id| self.alerts.at(id))
                .collect(),
            // Not listed, so not filed: walk them all.
            None => self
                .alerts
                .values()
                .filter(|a| a.cluster.as_ref() == Some(cluster))
                .collect(),
        };
        v.sort_unstable_by(|a, b| {
            (a.state, a.severity, &a.name, &a.key).cmp(&(b.state, b.severity, &b.name, &b.key))
        });
        v
    }

    pub fn rollouts(&self) -> &[Rollout] {
        &self.rollouts
    }

    /// The rollout cell a cluster belongs to, if any.
    pub fn cell_of(&self, cluster: &ClusterId) -> Option<(CellRef, &Cell)> {
        let r = *self.cells.get(cluster)?;
        let cell = &self.rollouts[r.rollout].waves[r.wave].cells[r.cell];
        Some((r, cell))
    }

    /// `wave/phase` text for a cluster, e.g. `staging/updating`.
    pub fn wave_label(&self, cluster: &ClusterId) -> Option<String> {
        let (r, cell) = self.cell_of(cluster)?;
        let wave = &self.rollouts[r.rollout].waves[r.wave];
        Some(format!("{}/{}", wave.name, cell.phase))
    }

    /// What the cluster's API server said last, if fleetdeck has talked to it.
    pub fn kube_signals(&self, cluster: &ClusterId) -> Option<&KubeSignals> {
        self.kube.get(cluster)
    }

    /// Every Argo CD Application the hub sources report.
    pub fn applications(&self) -> impl Iterator<Item = &ArgoApp> {
        self.apps.values().flatten()
    }

    /// Every Argo CD ApplicationSet the hub sources report.
    pub fn application_sets(&self) -> impl Iterator<Item = &ApplicationSet> {
        self.app_sets.values().flatten()
    }

    /// The Applications deployed to `cluster`.
    pub fn applications_on(&self, cluster: &ClusterId) -> Vec<&ArgoApp> {
        self.applications()
            .filter(|a| a.cluster.as_ref() == Some(cluster))
            .collect()
    }

    /// Permission checks for `action`: on `cluster`'s API server, or the hub's (`None`).
    pub fn permission(
        &self,
        action: &str,
        cluster: Option<&ClusterId>,
    ) -> Option<&PermissionCheck> {
        let checks: Vec<&PermissionCheck> = self
            .permissions
            .iter()
            .filter(|((_, c), _)| c.as_ref() == cluster)
            .flat_map(|(_, checks)| checks)
            .filter(|c| c.action == action)
            .collect();
        // Where sources disagree, the refusal wins: better unavailable than tried and failed.
        checks
            .iter()
            .find(|c| !c.allowed)
            .or(checks.first())
            .copied()
    }
    pub fn sources(&self) -> impl Iterator<Item = &SourceHealth> {
        self.sources.values()
    }

    /// The source whose inventory lists cluster `i` (empty for one known only by a
    /// `ClusterChanged`).
    pub fn cluster_source(&self, i: usize) -> &str {
        &self.slots[i].source
    }

    /// Every hub source's Argo CD Applications, by source name.
    pub fn applications_by_source(&self) -> impl Iterator<Item = (&String, &Vec<ArgoApp>)> {
        self.apps.iter()
    }

    /// Every hub source's ApplicationSets, by source name.
    pub fn application_sets_by_source(
        &self,
    ) -> impl Iterator<Item = (&String, &Vec<ApplicationSet>)> {
        self.app_sets.iter()
    }

    /// Marks everything the store holds now as remembered from a picture written at `at`
    /// (the warm start fills an empty store, then calls this).
    pub fn mark_cached(&mut self, at: Timestamp) {
        self.generation += 1;
        self.alerts_generation += 1;
        self.cached.at = Some(at);
        self.cached.clusters = self.clusters.iter().map(|c| c.id.clone()).collect();
        self.cached.alerts = self.alerts.iter().map(|(_, a)| a.key.clone()).collect();
    }

    /// When the remembered picture still shown was written; `None` once every cluster and
    /// alert of it has been refreshed or dropped.
    pub fn cached_since(&self) -> Option<Timestamp> {
        self.cached.at.filter(|_| !self.cached.is_empty())
    }

    /// Whether cluster `i` is only remembered (not yet listed again by its source).
    pub fn is_cached_cluster(&self, i: usize) -> bool {
        !self.cached.clusters.is_empty() && self.cached.clusters.contains(&self.clusters[i].id)
    }

    /// Whether the alert is only remembered (its source has not reported it again).
    pub fn is_cached_alert(&self, key: &AlertKey) -> bool {
        !self.cached.alerts.is_empty() && self.cached.alerts.contains(key)
    }

    /// A source delivered its first complete picture: what it would have reported again
    /// and did not is gone (its remembered alerts; its clusters went with its inventory).
    fn settle_cached(&mut self, source: &str) {
        if self.cached.alerts.is_empty() {
            return;
        }
        let stale: Vec<AlertKey> = self
            .cached
            .alerts
            .iter()
            .filter(|k| {
                self.alerts
                    .get(k)
                    .is_some_and(|a| cached::reported_by(a, source))
            })
            .cloned()
            .collect();
        if stale.is_empty() {
            return;
        }
        self.alerts_generation += 1;
        for key in stale {
            self.cached.alerts.remove(&key);
            self.remove_alert(&key);
        }
    }

    /// A source that stopped for good (the account it read left the organization): its
    /// clusters (with their metrics), the alerts it reported and its health are dropped,
    /// so nothing of it is shown as if it were still watched.
    pub fn forget_source(&mut self, name: &str) {
        self.generation += 1;
        self.replace_inventory(name, Vec::new());
        let gone: Vec<AlertKey> = self
            .alerts
            .iter()
            .filter(|(_, a)| cached::reported_by(a, name))
            .map(|(_, a)| a.key.clone())
            .collect();
        if !gone.is_empty() {
            self.alerts_generation += 1;
            for key in gone {
                self.cached.alerts.remove(&key);
                self.remove_alert(&key);
            }
        }
        self.sources.remove(name);
        self.placeholders.retain(|p| p != name);
        self.ready.retain(|r| r != name);
    }

    /// The first complete picture is in: what is remembered from the last session of
    /// sources that are not running now (an account that left the organization while
    /// fleetdeck was not running) is dropped, since no source will ever say it again.
    /// Only remembered things go: a running source's fresh data is never touched.
    pub fn forget_unwatched(&mut self, running: &[String]) {
        if self.cached.is_empty() {
            return;
        }
        let mut orphans: Vec<String> = self
            .slots
            .iter()
            .zip(&self.clusters)
            .filter(|(slot, c)| {
                self.cached.clusters.contains(&c.id)
                    && !slot.source.is_empty()
                    && !running.contains(&slot.source)
            })
            .map(|(slot, _)| slot.source.clone())
            .collect();
        orphans.sort();
        orphans.dedup();
        for source in orphans {
            self.generation += 1;
            self.replace_inventory(&source, Vec::new());
        }
        let unwatched: Vec<AlertKey> = self
            .cached
            .alerts
            .iter()
            .filter(|k| {
                self.alerts
                    .get(k)
                    .is_some_and(|a| !running.iter().any(|r| cached::reported_by(a, r)))
            })
            .cloned()
            .collect();
        if !unwatched.is_empty() {
            self.alerts_generation += 1;
            for key in unwatched {
                self.cached.alerts.remove(&key);
                self.remove_alert(&key);
            }
        }
    }

    /// Lists a started source as loading until it reports its own health.
    pub fn expect_source(&mut self, name: &str, poll_interval_secs: u64) {
        if !self.started.iter().any(|s| s == name) {
            self.started.push(name.to_string());
        }
        if self.sources.contains_key(name) {
            return;
        }
        self.generation += 1;
        self.placeholders.push(name.to_string());
        self.sources.insert(
            name.to_string(),
            SourceHealth::new(name, poll_interval_secs),
        );
    }

    /// Whether a source is still on its first picture: not ready, and the last thing it
    /// said was not an error; and no answer yet, or (for a source started under this
    /// name) no `Ready` yet: a source may answer before its picture is complete (EKS lists
    /// names first, then describes each cluster). Health reported under other names (one
    /// per Alertmanager) is loading only until it answers.
    pub fn is_loading(&self, source: &SourceHealth) -> bool {
        let failing = match (source.last_error_at, source.last_ok) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            (None, _) => false,
        };
        // One source may report health under several names (`alertmanager:NAME` for each
        // Alertmanager of the `alertmanager` source): its `Ready` covers them all.
        let ready = self.ready.iter().any(|r| {
            source.name == *r
                || source
                    .name
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with(':'))
        });
        !failing && !ready && (source.last_ok.is_none() || self.started.contains(&source.name))
    }

    /// Whether every named source has delivered its first complete picture.
    pub fn is_ready(&self, sources: &[String]) -> bool {
        sources.iter().all(|s| self.ready.contains(s))
    }

    pub fn summary(&self, now: Timestamp) -> FleetSummary {
        let mut s = FleetSummary {
            clusters: self.clusters.len(),
            ..FleetSummary::default()
        };
        let down = self.scopes_down(now);
        for i in 0..self.clusters.len() {
            match self.health_given(i, &down) {
                ClusterHealth::Healthy => s.healthy += 1,
                ClusterHealth::Warning => s.warning += 1,
                ClusterHealth::Critical => s.critical += 1,
                ClusterHealth::Unknown => s.unknown += 1,
            }
        }
        let [critical, warning, info] = self.firing.all.map(|n| n as usize);
        (s.firing_critical, s.firing_warning, s.firing_info) = (critical, warning, info);
        s.acked = self.firing.acked as usize;
        let (total, done) = self.rollouts.iter().fold((0, 0), |(t, d), r| {
            (t + r.cells_total(), d + r.cells_done())
        });
        if total > 0 {
            s.rollout_percent = Some(100.0 * done as f64 / total as f64);
        }
        s
    }

    /// Indices of clusters that pass `filter`, in `key` order (ties by name, then id).
    pub fn cluster_rows(
        &self,
        filter: &ClusterFilter,
        key: SortKey,
        descending: bool,
    ) -> Vec<usize> {
        // The wave label is built only for a filter that asks for it.
        let wants = |field: &[&str]| {
            filter
                .terms
                .iter()
                .any(|(f, _)| f.as_deref().is_some_and(|f| field.contains(&f)))
        };
        let (wants_wave, wants_policies) = (wants(&["wave"]), wants(&["policy", "pol"]));
        let mut rows: Vec<usize> = (0..self.clusters.len())
            .filter(|&i| {
                filter.is_empty() || {
                    let c = &self.clusters[i];
                    let wave = wants_wave.then(|| self.wave_label(&c.id)).flatten();
                    let policies: Vec<String> = if wants_policies {
                        self.policy_failures(&c.id)
                            .into_iter()
                            .map(|f| f.policy)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    filter.matches(c, &self.slots[i].search, wave.as_deref(), &policies)
                }
            })
            .collect();
        self.sort_rows(&mut rows, key, descending);
        rows
    }

    /// Sorts cluster indices by a column. Missing metric values sort last either way;
    /// ties go by name, then id. Each row's key is worked out once, not per comparison,
    /// and names compare by a rank kept per cluster, so 5,000 rows sort in well under a
    /// millisecond.
    pub fn sort_rows(&self, rows: &mut [usize], key: SortKey, descending: bool) {
        use std::cmp::Ordering;
        let rank = self.name_ranks();
        let dir = |o: Ordering| if descending { o.reverse() } else { o };
        let metric = |i: usize| -> Option<f64> {
            match key {
                SortKey::RequestRate => self.request_rate(i),
                SortKey::Errors5xx => self.error_percent(i),
                SortKey::LatencyP99 => self.latest(i, MetricName::P99Get).map(f64::from),
                SortKey::EtcdPercent => self.etcd_percent(i),
                _ => None,
            }
        };
        match key {
            SortKey::Name => {
                rows.sort_unstable_by(|&a, &b| dir(rank[a].cmp(&rank[b])));
            }
            SortKey::RequestRate
            | SortKey::Errors5xx
            | SortKey::LatencyP99
            | SortKey::EtcdPercent => sort_keyed(rows, rank, metric, |a, b| match (a, b) {
                (Some(x), Some(y)) => dir(x.total_cmp(y)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }),
            SortKey::Alerts => {
                sort_keyed(rows, rank, |i| self.firing_counts(i), |a, b| dir(a.cmp(b)))
            }
            SortKey::Version => sort_keyed(
                rows,
                rank,
                |i| version_key(&self.clusters[i].version),
                |a, b| dir(a.cmp(b)),
            ),
            _ => rows.sort_unstable_by(|&a, &b| {
                let (ca, cb) = (&self.clusters[a], &self.clusters[b]);
                let primary = match key {
                    SortKey::Account => ca.id.account.cmp(&cb.id.account),
                    SortKey::Region => ca.id.region.cmp(&cb.id.region),
                    SortKey::Environment => ca.environment.cmp(&cb.environment),
                    SortKey::Status => ca.status.cmp(&cb.status),
                    _ => Ordering::Equal,
                };
                dir(primary).then(rank[a].cmp(&rank[b]))
            }),
        }
    }

    /// Each cluster's place in (name, id) order, by cluster index; worked out once per
    /// change to the set of clusters.
    fn name_ranks(&self) -> &[u32] {
        self.name_ranks.get_or_init(|| {
            let mut order: Vec<usize> = (0..self.clusters.len()).collect();
            order.sort_by(|&a, &b| {
                let (x, y) = (&self.clusters[a].id, &self.clusters[b].id);
                (&x.name, x).cmp(&(&y.name, y))
            });
            let mut rank = vec![0; order.len()];
            for (r, i) in order.into_iter().enumerate() {
                rank[i] = r as u32;
            }
            rank
        })
    }

    /// The `n` clusters with the highest newest value of `metric`, highest first.
    pub fn top_n(&self, metric: MetricName, n: usize) -> Vec<(usize, f32)> {
        let mut v: Vec<(usize, f32)> = (0..self.clusters.len())
            .filter_map(|i| self.latest(i, metric).map(|x| (i, x)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// Kubernetes versions compare numerically: 1.9 < 1.29 < 1.31.
/// Sorts cluster indices by a key worked out once per row and compared by `cmp`; ties go
/// by name rank.
fn sort_keyed<K>(
    rows: &mut [usize],
    rank: &[u32],
    key: impl Fn(usize) -> K,
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering,
) {
    let mut keyed: Vec<(K, usize)> = rows.iter().map(|&i| (key(i), i)).collect();
    keyed.sort_unstable_by(|(a, i), (b, j)| cmp(a, b).then(rank[*i].cmp(&rank[*j])));
    for (row, (_, i)) in rows.iter_mut().zip(keyed) {
        *row = i;
    }
}

/// The index of the listed cluster an alert is on, if it is on one.
fn listed_at(index: &HashMap<ClusterId, usize>, alert: &Alert) -> Option<usize> {
    alert.cluster.as_ref().and_then(|c| index.get(c).copied())
}

/// Firing alerts counted as they come and go, so neither the header nor a sort walks
/// every alert.
#[derive(Default)]
struct FiringCounts {
    /// By cluster index: `[critical, warning, info]`.
    per_cluster: Vec<[u32; 3]>,
    /// The whole fleet's, listed cluster or not.
    all: [u32; 3],
    /// Firing and acked.
    acked: u32,
}

impl FiringCounts {
    /// Adds `delta` to every count the alert is part of, if it fires; `at` is the listed
    /// cluster it is on (`listed_at`).
    fn count(&mut self, at: Option<usize>, alert: &Alert, delta: i32) {
        if !alert.is_firing() {
            return;
        }
        let add = |n: &mut u32| *n = n.saturating_add_signed(delta);
        add(&mut self.all[alert.severity as usize]);
        if alert.ack.is_some() {
            add(&mut self.acked);
        }
        if let Some(i) = at {
            add(&mut self.per_cluster[i][alert.severity as usize]);
        }
    }
}

fn version_key(v: &str) -> Vec<u32> {
    v.split(['.', '-'])
        .map(|p| p.trim_start_matches('v').parse().unwrap_or(0))
        .collect()
}

mod alert_table;
mod cached;
mod picture;
mod policies;
mod rollouts;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AlertSource, CellPhase, Environment, MetricSample, Severity, Wave, WaveState,
    };

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000 + s, 0).expect("valid time")
    }

    fn cluster(name: &str, env: Environment, version: &str) -> Cluster {
        Cluster {
            id: ClusterId::new("acct", "eu-west-1", name),
            arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
            version: version.into(),
            platform_version: "eks.1".into(),
            described: crate::model::Described::Yes,
            status: ClusterStatus::Active,
            environment: env,
            team: Some("core".into()),
            health_issues: vec![],
            insights: vec![],
            updates: vec![],
            addons: vec![],
            support: None,
            endpoint: None,
            certificate_authority: None,
        }
    }

    fn alert(cluster: &str, name: &str, severity: Severity, state: AlertState, at: i64) -> Alert {
        let id = ClusterId::new("acct", "eu-west-1", cluster);
        Alert {
            key: AlertKey::new(AlertSource::Cloudwatch, Some(&id), name, ""),
            source: AlertSource::Cloudwatch,
            cluster: Some(id),
            name: name.into(),
            severity,
            state,
            first_seen: t(at),
            last_change: t(at),
            summary: String::new(),
            labels: Default::default(),
            runbook_url: None,
            ack: None,
        }
    }

    fn metric(store: &mut Store, name: &str, metric: MetricName, value: f32) {
        store.apply(
            SourceEvent::Metrics {
                cluster: ClusterId::new("acct", "eu-west-1", name),
                samples: vec![MetricSample {
                    metric,
                    minute: 100,
                    value,
                }],
            },
            t(0),
        );
    }

    fn fleet() -> Store {
        let mut s = Store::new();
        s.apply(
            SourceEvent::ClusterInventory {
                source: "demo".into(),
                clusters: vec![
                    cluster("prod-a", Environment::Prod, "1.30"),
                    cluster("prod-b", Environment::Prod, "1.29"),
                    cluster("dev-a", Environment::Dev, "1.31"),
                    cluster("stg-a", Environment::Staging, "1.9"),
                ],
            },
            t(0),
        );
        s
    }

    fn names(s: &Store, rows: &[usize]) -> Vec<String> {
        rows.iter()
            .map(|&i| s.clusters()[i].id.name.clone())
            .collect()
    }

    #[test]
    fn summary_counts_health_and_firing_alerts() {
        let mut s = fleet();
        s.apply(
            SourceEvent::Alerts(vec![
                alert("prod-a", "5xx", Severity::Critical, AlertState::Firing, 0),
                alert(
                    "prod-b",
                    "latency",
                    Severity::Warning,
                    AlertState::Firing,
                    0,
                ),
                alert("dev-a", "old", Severity::Critical, AlertState::Resolved, 0),
            ]),
            t(10),
        );
        let sum = s.summary(t(10));
        assert_eq!(
            (sum.clusters, sum.healthy, sum.warning, sum.critical),
            (4, 2, 1, 1)
        );
        assert_eq!((sum.firing_critical, sum.firing_warning), (1, 1));

        // Resolving the critical alert makes prod-a healthy again.
        s.apply(
            SourceEvent::Alerts(vec![alert(
                "prod-a",
                "5xx",
                Severity::Critical,
                AlertState::Resolved,
                20,
            )]),
            t(20),
        );
        let i = s.find_cluster("prod-a").expect("present");
        assert_eq!(s.firing_total(i), 0);
        assert_eq!(s.summary(t(20)).critical, 0);
    }

    #[test]
    fn resolved_alerts_expire_after_an_hour_but_firing_ones_stay() {
        let mut s = fleet();
        s.apply(
            SourceEvent::Alerts(vec![
                alert("prod-a", "old", Severity::Warning, AlertState::Resolved, 0),
                alert("prod-b", "firing", Severity::Warning, AlertState::Firing, 0),
            ]),
            t(0),
        );
        s.expire(t(RESOLVED_RETENTION_SECS));
        assert_eq!(s.alerts().count(), 2, "kept for the hour");
        s.expire(t(RESOLVED_RETENTION_SECS + 1));
        let names: Vec<_> = s.alerts().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["firing"]);
    }

    /// The per-cluster alert index and the firing counts are kept incrementally; after
    /// every kind of change they must equal a recount from the alerts themselves.
    #[test]
    fn alert_indexes_agree_with_a_recount_after_every_change() {
        let check = |s: &Store, when: &str| {
            for (i, c) in s.clusters().iter().enumerate() {
                let mut walked: Vec<&str> = s
                    .alerts()
                    .filter(|a| a.cluster.as_ref() == Some(&c.id))
                    .map(|a| a.key.0.as_str())
                    .collect();
                walked.sort_unstable();
                let mut indexed: Vec<&str> = s
                    .alerts_for(&c.id)
                    .iter()
                    .map(|a| a.key.0.as_str())
                    .collect();
                indexed.sort_unstable();
                assert_eq!(indexed, walked, "{when}: alerts of {}", c.id.name);
                let mut counted = [0u32; 3];
                for a in s.alerts().filter(|a| a.is_firing()) {
                    if a.cluster.as_ref() == Some(&c.id) {
                        counted[a.severity as usize] += 1;
                    }
                }
                assert_eq!(
                    s.firing_counts(i),
                    counted,
                    "{when}: firing on {}",
                    c.id.name
                );
            }
            let firing: Vec<&Alert> = s.alerts().filter(|a| a.is_firing()).collect();
            let sum = s.summary(t(0));
            let by = |sev| firing.iter().filter(|a| a.severity == sev).count();
            assert_eq!(
                (sum.firing_critical, sum.firing_warning, sum.firing_info),
                (
                    by(Severity::Critical),
                    by(Severity::Warning),
                    by(Severity::Info)
                ),
                "{when}: header counts"
            );
            let acked = firing.iter().filter(|a| a.ack.is_some()).count();
            assert_eq!(sum.acked, acked, "{when}: acked");
        };
        let mut s = fleet();
        let a = alert("prod-a", "cpu", Severity::Critical, AlertState::Firing, 0);
        let b = alert("prod-b", "disk", Severity::Warning, AlertState::Firing, 0);
        s.apply(SourceEvent::Alerts(vec![a.clone(), b.clone()]), t(0));
        check(&s, "added");
        // The same key moves to another cluster, then changes severity and resolves.
        let mut moved = a.clone();
        moved.cluster = Some(ClusterId::new("acct", "eu-west-1", "dev-a"));
        moved.severity = Severity::Info;
        s.apply(SourceEvent::Alerts(vec![moved.clone()]), t(0));
        check(&s, "moved");
        let mut resolved = moved.clone();
        resolved.state = AlertState::Resolved;
        s.apply(SourceEvent::Alerts(vec![resolved]), t(0));
        check(&s, "resolved");
        // An ack made here, then taken back.
        let ack = crate::model::Ack {
            kind: crate::model::AckKind::Local,
            by: "alice".into(),
            until: Some(t(3600)),
            comment: String::new(),
        };
        s.set_local_ack(&b.key, Some(ack));
        check(&s, "acked");
        s.set_local_ack(&b.key, None);
        check(&s, "unacked");
        // Gone, and expired.
        s.apply(SourceEvent::AlertsGone(vec![b.key.clone()]), t(0));
        check(&s, "gone");
        s.expire(t(RESOLVED_RETENTION_SECS + 10));
        check(&s, "expired");
        assert_eq!(s.alerts().count(), 0);
        // An alert that names its cluster only by name is placed once it is listed.
        let mut by_name = alert("new-a", "oom", Severity::Critical, AlertState::Firing, 0);
        by_name.cluster = Some(ClusterId::new("", "", "new-a"));
        s.apply(SourceEvent::Alerts(vec![by_name]), t(0));
        let mut listed = s.clusters().to_vec();
        listed.push(cluster("new-a", Environment::Dev, "1.31"));
        s.apply(
            SourceEvent::ClusterInventory {
                source: "demo".into(),
                clusters: listed,
            },
            t(0),
        );
        check(&s, "placed");
        let i = s.cluster_index(&ClusterId::new("acct", "eu-west-1", "new-a"));
        assert_eq!(i.map(|i| s.firing_total(i)), Some(1));
        // An alert that names a cluster in full before any source lists it is counted
        // under it once it is listed, by an inventory or by one cluster's change.
        let early = alert("late-a", "oom", Severity::Warning, AlertState::Firing, 0);
        let later = alert("late-b", "oom", Severity::Warning, AlertState::Firing, 0);
        s.apply(SourceEvent::Alerts(vec![early, later]), t(0));
        check(&s, "before their clusters");
        s.apply(
            SourceEvent::ClusterChanged(Box::new(cluster("late-b", Environment::Dev, "1.31"))),
            t(0),
        );
        check(&s, "one listed by a change");
        let mut listed = s.clusters().to_vec();
        listed.push(cluster("late-a", Environment::Dev, "1.31"));
        s.apply(
            SourceEvent::ClusterInventory {
                source: "demo".into(),
                clusters: listed,
            },
            t(0),
        );
        check(&s, "the other listed by an inventory");
        for name in ["late-a", "late-b"] {
            let i = s.cluster_index(&ClusterId::new("acct", "eu-west-1", name));
            assert_eq!(i.map(|i| s.firing_counts(i)), Some([0, 1, 0]), "{name}");
        }
        // A cluster going renumbers the others; their alerts follow.
        let mut fewer = s.clusters().to_vec();
        fewer.retain(|c| c.id.name != "prod-a");
        s.apply(
            SourceEvent::ClusterInventory {
                source: "demo".into(),
                clusters: fewer,
            },
            t(0),
        );
        check(&s, "a cluster gone");
    }

    #[test]
    fn filter_terms_all_match_and_fields_narrow() {
        let mut s = fleet();
        let rows = |s: &Store, f: &str| {
            names(
                s,
                &s.cluster_rows(&ClusterFilter::parse(f), SortKey::Name, false),
            )
        };
        assert_eq!(rows(&s, "prod"), ["prod-a", "prod-b"]);
        assert_eq!(rows(&s, "env:prod version:1.29"), ["prod-b"]);
        assert_eq!(rows(&s, "ENV:DEV"), ["dev-a"]);
        assert_eq!(
            rows(&s, "region:eu-west"),
            ["dev-a", "prod-a", "prod-b", "stg-a"]
        );
        assert!(
            rows(&s, "colour:blue").is_empty(),
            "an unknown field must match nothing"
        );
        assert!(rows(&s, "nothing-like-this").is_empty());
        // A bare term searches name, account, region, environment, version and status,
        // each on its own: "a-acct" would only match the name and account run together.
        assert_eq!(rows(&s, "1.9"), ["stg-a"]);
        assert_eq!(rows(&s, "ACTIVE").len(), 4);
        assert_eq!(rows(&s, "acct").len(), 4);
        assert_eq!(rows(&s, "staging"), ["stg-a"]);
        assert!(rows(&s, "a-acct").is_empty());
        assert!(rows(&s, "1.31active").is_empty());
        // A cluster's change is searched at once.
        let mut upgraded = cluster("prod-a", Environment::Prod, "1.32");
        upgraded.status = ClusterStatus::Updating;
        s.apply(SourceEvent::ClusterChanged(Box::new(upgraded)), t(0));
        assert_eq!(rows(&s, "1.32"), ["prod-a"]);
        assert_eq!(rows(&s, "updat"), ["prod-a"]);
        assert!(rows(&s, "1.30").is_empty());
    }

    #[test]
    fn sorts_by_columns_with_missing_values_last() {
        let mut s = fleet();
        metric(&mut s, "prod-a", MetricName::RequestTotal, 600.0);
        metric(&mut s, "dev-a", MetricName::RequestTotal, 6000.0);
        let all = ClusterFilter::default();
        assert_eq!(
            names(&s, &s.cluster_rows(&all, SortKey::RequestRate, true)),
            ["dev-a", "prod-a", "prod-b", "stg-a"]
        );
        assert_eq!(
            names(&s, &s.cluster_rows(&all, SortKey::RequestRate, false)),
            ["prod-a", "dev-a", "prod-b", "stg-a"]
        );
        // Versions compare numerically: 1.9 < 1.29 < 1.30 < 1.31.
        assert_eq!(
            names(&s, &s.cluster_rows(&all, SortKey::Version, false)),
            ["stg-a", "prod-b", "prod-a", "dev-a"]
        );
        assert_eq!(
            names(&s, &s.cluster_rows(&all, SortKey::Environment, true))[..2],
            ["prod-a", "prod-b"]
        );
        assert_eq!(
            names(&s, &s.cluster_rows(&all, SortKey::Name, true)),
            ["stg-a", "prod-b", "prod-a", "dev-a"]
        );
    }

    #[test]
    fn top_n_by_metric_is_highest_first() {
        let mut s = fleet();
        metric(&mut s, "prod-a", MetricName::StorageSizeBytes, 1.0e9);
        metric(&mut s, "prod-b", MetricName::StorageSizeBytes, 7.0e9);
        metric(&mut s, "dev-a", MetricName::StorageSizeBytes, 3.0e9);
        let top = s.top_n(MetricName::StorageSizeBytes, 2);
        let top: Vec<_> = top
            .iter()
            .map(|(i, v)| (s.clusters()[*i].id.name.as_str(), *v))
            .collect();
        assert_eq!(top, [("prod-b", 7.0e9), ("dev-a", 3.0e9)]);
        let pct = s
            .etcd_percent(s.find_cluster("prod-b").expect("present"))
            .expect("has etcd");
        assert!((pct - 81.49).abs() < 0.1, "{pct}");
    }

    #[test]
    fn an_inventory_removes_clusters_its_source_no_longer_lists() {
        let mut s = fleet();
        s.apply(
            SourceEvent::Alerts(vec![alert(
                "dev-a",
                "x",
                Severity::Warning,
                AlertState::Firing,
                0,
            )]),
            t(0),
        );
        metric(&mut s, "dev-a", MetricName::RequestTotal, 60.0);
        s.apply(
            SourceEvent::ClusterInventory {
                source: "demo".into(),
                clusters: vec![cluster("dev-a", Environment::Dev, "1.31")],
            },
            t(1),
        );
        assert_eq!(
            names(
                &s,
                &s.cluster_rows(&ClusterFilter::default(), SortKey::Name, false)
            ),
            ["dev-a"]
        );
        // Indices were rebuilt: dev-a keeps its metrics and alert counts.
        let i = s.find_cluster("dev-a").expect("present");
        assert_eq!(s.request_rate(i), Some(1.0));
        assert_eq!(s.firing_total(i), 1);
        // Another source's inventory does not touch demo's clusters.
        s.apply(
            SourceEvent::ClusterInventory {
                source: "eks".into(),
                clusters: vec![],
            },
            t(2),
        );
        assert_eq!(s.clusters().len(), 1);
    }

    #[test]
    fn clusters_know_their_wave_and_phase() {
        let mut s = fleet();
        let cell = |name: &str, phase| crate::model::Cell {
            cluster: ClusterId::new("acct", "eu-west-1", name),
            app: None,
            phase,
            since: t(0),
            message: String::new(),
        };
        s.apply(
            SourceEvent::Rollout(Rollout {
                name: "r".into(),
                source: "demo".into(),
                description: String::new(),
                waves: vec![Wave {
                    name: "prod-1".into(),
                    environment: Environment::Prod,
                    cells: vec![
                        cell("prod-a", CellPhase::Updating),
                        cell("prod-b", CellPhase::Done),
                    ],
                    state: WaveState::Running,
                    soak_secs: 600,
                    max_parallel: 1,
                    holds: vec![],
                    soak_from: None,
                }],
                gates: vec![],
                unmatched: vec![],
            }),
            t(0),
        );
        let id = ClusterId::new("acct", "eu-west-1", "prod-a");
        assert_eq!(s.wave_label(&id).as_deref(), Some("prod-1/updating"));
        assert_eq!(s.summary(t(0)).rollout_percent, Some(50.0));
        let rows = s.cluster_rows(&ClusterFilter::parse("wave:prod-1"), SortKey::Name, false);
        assert_eq!(names(&s, &rows), ["prod-a", "prod-b"]);
    }

    #[test]
    fn metrics_for_unknown_clusters_are_ignored_not_panicking() {
        let mut s = fleet();
        metric(&mut s, "ghost", MetricName::RequestTotal, 1.0);
        assert!(s.find_cluster("ghost").is_none());
    }

    #[test]
    fn argo_rollouts_follow_their_sets_gates_and_leave_other_rollouts_alone() {
        use crate::model::{AppStepStatus, ApplicationSet, ArgoApp, GateStatus, SyncStep};
        let mut s = fleet();
        let app = |name: &str, env: &str| ArgoApp {
            name: format!("addons-{name}"),
            namespace: "argocd".into(),
            project: "platform".into(),
            cluster: Some(ClusterId::new("acct", "eu-west-1", name)),
            destination: String::new(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            operation_phase: None,
            message: None,
            labels: [("env".to_string(), env.to_string())].into(),
            app_set: Some("addons".into()),
        };
        let set = ApplicationSet {
            name: "addons".into(),
            namespace: "argocd".into(),
            resource_version: "1".into(),
            strategy: Some("RollingSync".into()),
            steps: ["dev", "prod"]
                .iter()
                .map(|env| SyncStep {
                    match_expressions: vec![("env".into(), "In".into(), vec![env.to_string()])],
                    max_update: None,
                })
                .collect(),
            application_status: vec![AppStepStatus {
                application: "addons-dev-a".into(),
                status: "Healthy".into(),
                step: Some("1".into()),
                message: String::new(),
                last_transition_time: Some(t(0)),
            }],
            annotations: [(
                crate::rollout::argo::PLAN.to_string(),
                "soak: 10m\ngates: [eks-apiserver-5xx-*]".to_string(),
            )]
            .into(),
        };
        s.apply(
            SourceEvent::Rollout(Rollout {
                name: "demo-rollout".into(),
                source: "argocd:hub".into(),
                description: String::new(),
                waves: vec![],
                gates: vec![],
                unmatched: vec![],
            }),
            t(0),
        );
        s.apply(
            SourceEvent::ApplicationSets {
                source: "argocd:hub".into(),
                sets: vec![set],
            },
            t(1),
        );
        s.apply(
            SourceEvent::Applications {
                source: "argocd:hub".into(),
                apps: vec![app("dev-a", "dev"), app("prod-a", "prod")],
            },
            t(1),
        );
        let names: Vec<&str> = s.rollouts().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["demo-rollout", "addons"],
            "a source's own rollout stays"
        );
        let addons = &s.rollouts()[1];
        assert_eq!(addons.waves[0].state, WaveState::Soaking { until: t(600) });
        assert_eq!(
            s.wave_label(&ClusterId::new("acct", "eu-west-1", "prod-a")),
            Some("env In [prod]/pending".into())
        );
        assert_eq!(s.guard_next("addons").len(), 1, "the guard would hold prod");

        s.apply(
            SourceEvent::Alerts(vec![alert(
                "dev-a",
                "eks-apiserver-5xx-high",
                Severity::Critical,
                AlertState::Firing,
                2,
            )]),
            t(2),
        );
        s.expire(t(2));
        assert_eq!(
            s.rollouts()[1].gates[0].status,
            GateStatus::Firing {
                cluster: ClusterId::new("acct", "eu-west-1", "dev-a")
            }
        );
        s.expire(t(600));
        assert_eq!(
            s.rollouts()[1].waves[0].state,
            WaveState::Done,
            "soak ended on a tick"
        );
    }

    #[test]
    fn a_started_source_is_loading_until_it_reports_and_leaves_no_empty_row() {
        let mut store = Store::new();
        store.expect_source("eks:prod/us-east-1", 60);
        store.expect_source("alertmanager", 60);
        let loading = |store: &Store, name: &str| {
            let h = store.sources().find(|s| s.name == name).expect("listed");
            store.is_loading(h)
        };
        assert!(loading(&store, "eks:prod/us-east-1"));
        // Its own health replaces the placeholder; an error ends "loading".
        let mut failing = SourceHealth::new("eks:prod/us-east-1", 60);
        failing.last_error = Some("AccessDenied".into());
        failing.last_error_at = Some(t(0));
        store.apply(SourceEvent::Health(failing), t(0));
        assert!(!loading(&store, "eks:prod/us-east-1"));
        // A source that reports under other names: its placeholder goes when it is ready,
        // and the names it reports under are loading only until they answer.
        store.apply(
            SourceEvent::Health(SourceHealth::new("alertmanager:amp", 60)),
            t(0),
        );
        assert!(loading(&store, "alertmanager"));
        assert!(loading(&store, "alertmanager:amp"));
        let mut answered = SourceHealth::new("alertmanager:amp", 60);
        answered.last_ok = Some(t(0));
        store.apply(SourceEvent::Health(answered), t(0));
        assert!(!loading(&store, "alertmanager:amp"));
        store.apply(
            SourceEvent::Ready {
                source: "alertmanager".into(),
            },
            t(0),
        );
        let names: Vec<&str> = store.sources().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alertmanager:amp", "eks:prod/us-east-1"]);
        // Its Ready covers the health it reports under its Alertmanager's name.
        assert!(!loading(&store, "alertmanager:amp"));
    }

    /// A cluster only listed so far, as the EKS source sends it before `DescribeCluster`
    /// answers; its placeholder fields are set to something plausible on purpose, to show
    /// that nothing believes them.
    fn listed(name: &str) -> Cluster {
        Cluster {
            described: Described::Pending,
            status: ClusterStatus::Active,
            ..cluster(name, Environment::Prod, "1.31")
        }
    }

    #[test]
    fn a_cluster_not_described_yet_is_unknown_and_found_only_as_describing() {
        let mut s = Store::new();
        s.apply(
            SourceEvent::ClusterInventory {
                source: "eks:acct/eu-west-1".into(),
                clusters: vec![
                    cluster("prod-a", Environment::Prod, "1.31"),
                    listed("new-a"),
                ],
            },
            t(0),
        );
        let i = s.find_cluster("new-a").expect("listed at once");
        assert_eq!(s.health(i, t(0)), ClusterHealth::Unknown);
        let summary = s.summary(t(0));
        assert_eq!((summary.healthy, summary.unknown), (1, 1));
        let rows = |f: &str| {
            names(
                &s,
                &s.cluster_rows(&ClusterFilter::parse(f), SortKey::Name, false),
            )
        };
        assert_eq!(
            rows("env:prod"),
            ["prod-a"],
            "no environment until its tags are read"
        );
        assert_eq!(rows("status:active"), ["prod-a"]);
        assert_eq!(rows("1.31"), ["prod-a"]);
        assert_eq!(rows("describing"), ["new-a"]);
        assert_eq!(rows("status:describing"), ["new-a"]);
        // A critical alert on it is known, whatever its description says.
        s.apply(
            SourceEvent::Alerts(vec![alert(
                "new-a",
                "boom",
                Severity::Critical,
                AlertState::Firing,
                0,
            )]),
            t(0),
        );
        assert_eq!(s.health(i, t(0)), ClusterHealth::Critical);
    }

    #[test]
    fn descriptions_come_in_batches_and_the_inventory_stands() {
        let mut s = Store::new();
        let source = "eks:acct/eu-west-1";
        s.apply(
            SourceEvent::ClusterInventory {
                source: source.into(),
                clusters: vec![listed("a"), listed("b"), listed("c")],
            },
            t(0),
        );
        s.apply(
            SourceEvent::ClustersChanged {
                source: source.into(),
                clusters: vec![
                    cluster("c", Environment::Dev, "1.30"),
                    cluster("a", Environment::Prod, "1.31"),
                ],
            },
            t(1),
        );
        let described: Vec<(&str, bool)> = s
            .clusters()
            .iter()
            .map(|c| (c.id.name.as_str(), c.is_described()))
            .collect();
        assert_eq!(described, [("a", true), ("b", false), ("c", true)]);
        let a = s.find_cluster("a").expect("a");
        assert_eq!(s.health(a, t(1)), ClusterHealth::Healthy);
        // The next inventory of that source still owns them all.
        s.apply(
            SourceEvent::ClusterInventory {
                source: source.into(),
                clusters: vec![cluster("a", Environment::Prod, "1.31")],
            },
            t(2),
        );
        assert_eq!(names(&s, &[0]), ["a"]);
        assert_eq!(s.clusters().len(), 1);
    }

    #[test]
    fn a_remembered_cluster_keeps_its_picture_until_it_is_described_again() {
        let mut s = Store::new();
        let source = "eks:acct/eu-west-1";
        s.apply(
            SourceEvent::ClusterInventory {
                source: source.into(),
                clusters: vec![cluster("a", Environment::Prod, "1.30")],
            },
            t(0),
        );
        s.mark_cached(t(0));
        s.apply(
            SourceEvent::ClusterInventory {
                source: source.into(),
                clusters: vec![listed("a"), listed("b")],
            },
            t(1),
        );
        let a = s.find_cluster("a").expect("a");
        assert!(
            s.clusters()[a].is_described(),
            "the remembered picture stays"
        );
        assert_eq!(s.clusters()[a].version, "1.30");
        assert!(s.is_cached_cluster(a), "still shown as remembered");
        s.apply(
            SourceEvent::ClustersChanged {
                source: source.into(),
                clusters: vec![cluster("a", Environment::Prod, "1.31")],
            },
            t(2),
        );
        assert_eq!(s.clusters()[a].version, "1.31");
        assert!(!s.is_cached_cluster(a));
    }

    #[test]
    fn a_cluster_not_described_yet_places_no_wave_by_its_environment() {
        use crate::model::{ApplicationSet, ArgoApp, SyncStep};
        let mut s = Store::new();
        let mut guess = listed("new-a");
        guess.environment = Environment::Staging;
        s.apply(
            SourceEvent::ClusterInventory {
                source: "eks:acct/eu-west-1".into(),
                clusters: vec![cluster("prod-a", Environment::Prod, "1.31"), guess],
            },
            t(0),
        );
        let app = |name: &str| ArgoApp {
            name: format!("addons-{name}"),
            namespace: "argocd".into(),
            project: "platform".into(),
            cluster: Some(ClusterId::new("acct", "eu-west-1", name)),
            destination: String::new(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            operation_phase: None,
            message: None,
            labels: [("team".to_string(), "core".to_string())].into(),
            app_set: Some("addons".into()),
        };
        s.apply(
            SourceEvent::ApplicationSets {
                source: "argocd:hub".into(),
                sets: vec![ApplicationSet {
                    name: "addons".into(),
                    namespace: "argocd".into(),
                    resource_version: "1".into(),
                    strategy: Some("RollingSync".into()),
                    // Selected by team, not environment: the wave's environment is its
                    // clusters'.
                    steps: vec![SyncStep {
                        match_expressions: vec![("team".into(), "In".into(), vec!["core".into()])],
                        max_update: None,
                    }],
                    application_status: vec![],
                    annotations: Default::default(),
                }],
            },
            t(0),
        );
        s.apply(
            SourceEvent::Applications {
                source: "argocd:hub".into(),
                apps: vec![app("prod-a"), app("new-a")],
            },
            t(0),
        );
        assert_eq!(s.rollouts()[0].waves[0].environment, Environment::Prod);
    }

    #[test]
    fn a_source_that_answered_is_still_loading_until_its_picture_is_complete() {
        let mut store = Store::new();
        store.expect_source("eks:prod/us-east-1", 60);
        let loading = |store: &Store| {
            let h = store.sources().next().expect("listed");
            store.is_loading(h)
        };
        // Names listed, descriptions still coming.
        let mut listed = SourceHealth::new("eks:prod/us-east-1", 60);
        listed.last_ok = Some(t(0));
        store.apply(SourceEvent::Health(listed.clone()), t(0));
        assert!(loading(&store));
        // One cluster could not be described: the source is not failing for that.
        listed.last_error = Some("a: eks:DescribeCluster: AccessDeniedException".into());
        listed.last_error_at = Some(t(0));
        store.apply(SourceEvent::Health(listed.clone()), t(0));
        assert!(loading(&store));
        // The listing itself failed: no longer loading, failing.
        listed.last_error_at = Some(t(1));
        store.apply(SourceEvent::Health(listed.clone()), t(1));
        assert!(!loading(&store));
        listed.last_ok = Some(t(2));
        store.apply(SourceEvent::Health(listed), t(2));
        assert!(loading(&store));
        store.apply(
            SourceEvent::Ready {
                source: "eks:prod/us-east-1".into(),
            },
            t(2),
        );
        assert!(!loading(&store));
    }
}
