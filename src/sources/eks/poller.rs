//! The source's state and its polls: what it knows about each cluster, when each is due,
//! what fires, and the health it reports. The task in `task.rs` only decides *when*.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_sdk_eks::types as eks;
use tokio::time::Instant;

use super::alerts::{AlertBook, Aspect};
use super::api::{Api, is_unsupported};
use super::{
    DETAIL_INTERVAL, FIRST_DETAIL_WINDOW, FOCUS_DETAIL_INTERVAL, POLL_INTERVAL_SECS,
    UNSUPPORTED_RETRY, VERSIONS_TTL, map,
};
use crate::clock::Clock;
use crate::config::Clusters;
use crate::model::{
    Alert, Cluster, ClusterId, InsightDetail, InsightStatus, SourceEvent, SourceHealth, Timestamp,
};
use crate::sources::aws::{AwsScope, CallError, CallKind};

/// Failed updates older than this no longer alert.
const FAILED_UPDATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The update type of add-on updates.
const ADDON_UPDATE: &str = "AddonUpdate";

/// Families of operations an endpoint may not serve at all (moto serves none of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Family {
    Versions,
    Insights,
    Updates,
    Addons,
    Nodegroups,
}

/// One cluster as this source knows it.
struct Tracked {
    /// The last good picture: DescribeCluster fields plus the detail poll's.
    cluster: Cluster,
    next_detail: Instant,
    /// Added once, after the first detail poll, so the clusters found together end up
    /// spread over the whole detail interval instead of bunched in its first minute.
    spread: Duration,
    /// Updates in a final state never change again: described once, remembered.
    finished_updates: HashMap<String, eks::Update>,
    /// Insight details by id, with the `lastRefreshTime` they were read at.
    insight_details: HashMap<String, (Option<aws_smithy_types::DateTime>, InsightDetail)>,
}

/// What the source reports about itself.
#[derive(Default)]
struct HealthState {
    last_ok: Option<Timestamp>,
    last_error: Option<String>,
    last_error_at: Option<Timestamp>,
    /// The last `ListClusters` succeeded.
    inventory_ok: bool,
}

impl HealthState {
    /// The inventory itself failed: the source is unhealthy until one succeeds again.
    fn inventory_failed(&mut self, error: String, now: Timestamp) {
        self.inventory_ok = false;
        self.last_error = Some(error);
        self.last_error_at = Some(now);
    }

    /// Some clusters or aspects could not be read while the inventory stands: the error is
    /// shown, but the source stays healthy (its inventory is current); the failing
    /// cluster's data is what goes stale. `last_ok` moves to the same instant so that the
    /// error does not count as "after the last success".
    fn partial(&mut self, mut errors: Vec<String>, now: Timestamp) {
        if errors.is_empty() {
            return;
        }
        let more = errors.len() - 1;
        let mut text = errors.swap_remove(0);
        if more > 0 {
            text.push_str(&format!(" (and {more} more)"));
        }
        self.last_error = Some(text);
        self.last_error_at = Some(now);
        if self.inventory_ok {
            self.last_ok = Some(now);
        }
    }
}

/// The EKS source for one account and region.
pub(super) struct Poller {
    api: Api,
    name: String,
    account: String,
    region: String,
    include: Clusters,
    clock: Clock,
    tracked: BTreeMap<String, Tracked>,
    alerts: AlertBook,
    /// Versions in extended support in this region; `None` until read once.
    extended: Option<HashSet<String>>,
    versions_due: Option<Instant>,
    /// Operation families the endpoint does not serve, and when to try again.
    unsupported: HashMap<Family, Instant>,
    /// Families whose failure was already logged at warn level.
    logged: HashSet<Family>,
    /// The cluster on screen, if it is one of ours.
    focus: Option<String>,
    health: HealthState,
    ready_sent: bool,
}

impl Poller {
    /// The source's name (`eks:{account}/{region}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn new(client: aws_sdk_eks::Client, scope: &AwsScope) -> Self {
        Self {
            api: Api::new(client, scope.budget.clone()),
            name: super::source_name(scope),
            account: scope.account.name.clone(),
            region: scope.region.clone(),
            include: scope.clusters.clone(),
            clock: scope.clock.clone(),
            tracked: BTreeMap::new(),
            alerts: AlertBook::default(),
            extended: None,
            versions_due: None,
            unsupported: HashMap::new(),
            logged: HashSet::new(),
            focus: None,
            health: HealthState::default(),
            ready_sent: false,
        }
    }

    /// The clusters currently known, for the CloudWatch source of this account and region.
    pub(super) fn cluster_ids(&self) -> Vec<ClusterId> {
        self.tracked
            .values()
            .map(|t| t.cluster.id.clone())
            .collect()
    }

    /// When the next cluster's detail poll is due.
    pub(super) fn next_detail_due(&self) -> Option<Instant> {
        self.tracked.values().map(|t| t.next_detail).min()
    }

    /// `ListClusters` + `DescribeCluster` for each included cluster (and
    /// `DescribeClusterVersions` when its hour is up). Emits the complete inventory, the
    /// health-issue alerts that changed, Health, and Ready after the first attempt. A failed
    /// `ListClusters` emits no inventory: the last one stands and goes stale.
    pub(super) async fn poll_inventory(&mut self) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        match self.api.list_clusters().await {
            Err(e) => {
                let now = self.clock.now();
                tracing::warn!(source = %self.name, "inventory failed: {e}");
                self.health.inventory_failed(e.to_string(), now);
            }
            Ok(names) => {
                let alerts = self.take_inventory(names).await;
                let clusters = self.tracked.values().map(|t| t.cluster.clone()).collect();
                events.push(SourceEvent::ClusterInventory {
                    source: self.name.clone(),
                    clusters,
                });
                if !alerts.is_empty() {
                    events.push(SourceEvent::Alerts(alerts));
                }
            }
        }
        events.push(self.health_event());
        if !self.ready_sent {
            self.ready_sent = true;
            events.push(SourceEvent::Ready {
                source: self.name.clone(),
            });
        }
        events
    }

    /// Folds a successful `ListClusters` in; returns the alerts to send.
    async fn take_inventory(&mut self, names: Vec<String>) -> Vec<Alert> {
        let ids: Vec<ClusterId> = names
            .into_iter()
            .map(|n| ClusterId::new(&self.account, &self.region, n))
            .filter(|id| self.include.includes(id))
            .collect();
        let listed: HashSet<&str> = ids.iter().map(|id| id.name.as_str()).collect();
        let mut alerts = Vec::new();
        let gone: Vec<String> = self
            .tracked
            .keys()
            .filter(|n| !listed.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.forget(&name, &mut alerts);
        }
        self.refresh_versions().await;

        let fresh: Vec<&ClusterId> = ids
            .iter()
            .filter(|id| !self.tracked.contains_key(&id.name))
            .collect();
        let schedule = self.first_schedule(&fresh);
        let mut errors = Vec::new();
        let env_tag = self.include.environment_tag.clone();
        for id in &ids {
            let result = self.api.describe_cluster(&id.name).await;
            let now = self.clock.now();
            match result {
                Ok(c) => {
                    let mut cluster =
                        map::cluster(id.clone(), &c, &env_tag, self.extended.as_ref());
                    let tracked = self
                        .tracked
                        .entry(id.name.clone())
                        .or_insert_with(|| Tracked::start(id, &schedule));
                    // The detail poll's findings stand until it runs again.
                    let old = &mut tracked.cluster;
                    cluster.insights = std::mem::take(&mut old.insights);
                    cluster.updates = std::mem::take(&mut old.updates);
                    cluster.addons = std::mem::take(&mut old.addons);
                    tracked.cluster = cluster;
                    let current = map::health_alerts(&tracked.cluster, now);
                    alerts.extend(self.alerts.settle(&id.name, Aspect::Health, current, now));
                }
                // Deleted between the list and the describe.
                Err(e) if e.kind == CallKind::NotFound && !is_unsupported(&e) => {
                    self.forget(&id.name, &mut alerts);
                }
                Err(e) => {
                    // Keep what we knew (it goes stale) or show it as UNKNOWN: a cluster
                    // we cannot read is still there.
                    errors.push(format!("{}: {e}", id.name));
                    self.tracked
                        .entry(id.name.clone())
                        .or_insert_with(|| Tracked::start(id, &schedule));
                }
            }
        }
        let now = self.clock.now();
        if !ids.is_empty() && errors.len() == ids.len() {
            // Listing allowed but describing refused everywhere (a common policy mistake):
            // the clusters still show, as they were or UNKNOWN, but the source is unhealthy.
            let more = errors.len() - 1;
            let mut error = errors.swap_remove(0);
            if more > 0 {
                error.push_str(&format!(" (and {more} more)"));
            }
            self.health.inventory_failed(error, now);
        } else {
            self.health.inventory_ok = true;
            self.health.last_ok = Some(now);
            self.health.partial(errors, now);
        }
        alerts
    }

    /// First detail polls of newly found clusters: spread over the first minute (the
    /// focused one at once), each then given the offset that spreads the later polls over
    /// the whole detail interval.
    fn first_schedule(&self, fresh: &[&ClusterId]) -> HashMap<String, (Instant, Duration)> {
        let start = Instant::now();
        let n = fresh.len().max(1) as u32;
        let later = DETAIL_INTERVAL.saturating_sub(FIRST_DETAIL_WINDOW);
        fresh
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let i = i as u32;
                let due = if self.focus.as_deref() == Some(id.name.as_str()) {
                    start
                } else {
                    start + FIRST_DETAIL_WINDOW * i / n
                };
                (id.name.clone(), (due, later * i / n))
            })
            .collect()
    }

    /// Drops a cluster: it was deleted, or no longer passes the include filter.
    fn forget(&mut self, name: &str, alerts: &mut Vec<Alert>) {
        self.tracked.remove(name);
        alerts.extend(self.alerts.resolve_cluster(name, self.clock.now()));
    }

    /// `DescribeClusterVersions`, at most once an hour. A failure keeps what was known
    /// (nothing, the first time: no cluster is flagged as in extended support); it is
    /// logged, and not reported as the source's error, since only that flag depends on it.
    async fn refresh_versions(&mut self) {
        let now = Instant::now();
        if self.versions_due.is_some_and(|due| now < due) {
            return;
        }
        self.versions_due = Some(now + VERSIONS_TTL);
        match self.api.describe_cluster_versions().await {
            Ok(versions) => {
                self.extended = Some(
                    versions
                        .iter()
                        .filter(|v| map::is_extended(v))
                        .filter_map(|v| v.cluster_version.clone())
                        .collect(),
                );
            }
            Err(e) => self.log_once(Family::Versions, &e),
        }
    }

    /// Polls the next cluster whose detail poll is due, if any.
    pub(super) async fn poll_due_detail(&mut self) -> Vec<SourceEvent> {
        let now = Instant::now();
        let due = self
            .tracked
            .iter()
            .filter(|(_, t)| t.next_detail <= now)
            .min_by_key(|(_, t)| t.next_detail)
            .map(|(n, _)| n.clone());
        match due {
            Some(name) => self.poll_detail(&name).await,
            None => Vec::new(),
        }
    }

    /// The cluster now on screen. One of ours: its details (with `DescribeInsight` for
    /// the insights that are not passing) are polled now and then every minute.
    pub(super) async fn focus(&mut self, id: Option<ClusterId>) -> Vec<SourceEvent> {
        let mine = id
            .filter(|id| id.account == self.account && id.region == self.region)
            .map(|id| id.name);
        let changed = mine != self.focus;
        self.focus = mine.clone();
        match mine {
            Some(name) if changed && self.tracked.contains_key(&name) => {
                self.poll_detail(&name).await
            }
            _ => Vec::new(),
        }
    }

    /// Insights, add-ons, updates and node groups of one cluster. Each aspect whose poll
    /// fails keeps its previous picture and alerts; the others are settled.
    async fn poll_detail(&mut self, name: &str) -> Vec<SourceEvent> {
        let focused = self.focus.as_deref() == Some(name);
        let Some(t) = self.tracked.get_mut(name) else {
            return Vec::new();
        };
        let interval = if focused {
            FOCUS_DETAIL_INTERVAL
        } else {
            DETAIL_INTERVAL
        };
        t.next_detail = Instant::now() + interval + std::mem::take(&mut t.spread);
        let mut errors = Vec::new();
        let mut alerts = Vec::new();

        self.poll_insights(name, focused, &mut errors, &mut alerts)
            .await;
        let addons = self.poll_addons(name, &mut errors, &mut alerts).await;
        self.poll_updates(name, addons, &mut errors, &mut alerts)
            .await;
        self.poll_nodegroups(name, &mut errors, &mut alerts).await;

        let mut events = Vec::new();
        if let Some(t) = self.tracked.get(name) {
            events.push(SourceEvent::ClusterChanged(Box::new(t.cluster.clone())));
        }
        if !alerts.is_empty() {
            events.push(SourceEvent::Alerts(alerts));
        }
        let now = self.clock.now();
        self.health.partial(errors, now);
        events.push(self.health_event());
        events
    }

    async fn poll_insights(
        &mut self,
        name: &str,
        focused: bool,
        errors: &mut Vec<String>,
        alerts: &mut Vec<Alert>,
    ) {
        if self.skips(Family::Insights) {
            return;
        }
        let summaries = match self.api.list_insights(name).await {
            Ok(s) => s,
            Err(e) => return self.failed(Family::Insights, name, e, errors),
        };
        let Some(t) = self.tracked.get_mut(name) else {
            return;
        };
        let mut insights = Vec::with_capacity(summaries.len());
        let mut to_describe = Vec::new();
        for s in &summaries {
            let mut insight = map::insight(s);
            let refreshed = s.last_refresh_time;
            // A detail read at the same refresh is still true; a newer refresh drops it.
            match t.insight_details.get(&insight.id) {
                Some((at, detail)) if *at == refreshed => insight.detail = Some(detail.clone()),
                _ => {
                    if focused && insight.status != InsightStatus::Passing {
                        to_describe.push((insight.id.clone(), refreshed));
                    }
                }
            }
            insights.push(insight);
        }
        let mut described = Vec::new();
        for (id, refreshed) in to_describe {
            match self.api.describe_insight(name, &id).await {
                Ok(i) => described.push((id, refreshed, map::insight_detail(&i))),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        let now = self.clock.now();
        let Some(t) = self.tracked.get_mut(name) else {
            return;
        };
        let ids: HashSet<&str> = insights.iter().map(|i| i.id.as_str()).collect();
        t.insight_details.retain(|id, _| ids.contains(id.as_str()));
        for (id, refreshed, detail) in described {
            if let Some(i) = insights.iter_mut().find(|i| i.id == id) {
                i.detail = Some(detail.clone());
            }
            t.insight_details.insert(id, (refreshed, detail));
        }
        t.cluster.insights = insights;
        let since: HashMap<String, Timestamp> = summaries
            .iter()
            .filter_map(|s| Some((s.id.clone()?, map::time(s.last_transition_time.as_ref())?)))
            .collect();
        let current = map::insight_alerts(&t.cluster, &since, now);
        alerts.extend(self.alerts.settle(name, Aspect::Insights, current, now));
    }

    /// Returns the add-ons whose updates are worth listing (not ACTIVE, or changed in the
    /// last day: an update is running or may have failed), or `None` when the add-on poll
    /// failed.
    async fn poll_addons(
        &mut self,
        name: &str,
        errors: &mut Vec<String>,
        alerts: &mut Vec<Alert>,
    ) -> Option<Vec<String>> {
        if self.skips(Family::Addons) {
            return Some(Vec::new());
        }
        let names = match self.api.list_addons(name).await {
            Ok(n) => n,
            Err(e) => {
                self.failed(Family::Addons, name, e, errors);
                return None;
            }
        };
        let mut described = Vec::with_capacity(names.len());
        let mut complete = true;
        for addon in &names {
            match self.api.describe_addon(name, addon).await {
                Ok(a) => described.push(a),
                Err(e) => {
                    complete = false;
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
        let now = self.clock.now();
        let recent = now - FAILED_UPDATE_WINDOW;
        let watch = described
            .iter()
            .filter(|a| {
                !matches!(a.status, Some(eks::AddonStatus::Active))
                    || map::time(a.modified_at.as_ref()).is_some_and(|t| t >= recent)
            })
            .filter_map(|a| a.addon_name.clone())
            .collect();
        let t = self.tracked.get_mut(name)?;
        if !complete {
            return Some(watch);
        }
        t.cluster.addons = described.iter().map(map::addon).collect();
        let current = described
            .iter()
            .filter_map(|a| map::addon_alert(&t.cluster, a, now))
            .collect();
        alerts.extend(self.alerts.settle(name, Aspect::Addons, current, now));
        Some(watch)
    }

    /// The cluster's updates and those of the watched add-ons: the ones in progress go on
    /// the cluster, the ones that failed in the last day alert. The cluster's own updates
    /// and the add-ons' are settled apart, so that one failing keeps only its own picture.
    async fn poll_updates(
        &mut self,
        name: &str,
        addons: Option<Vec<String>>,
        errors: &mut Vec<String>,
        alerts: &mut Vec<Alert>,
    ) {
        if self.skips(Family::Updates) {
            return;
        }
        let own = self.updates_of(name, None, errors).await;
        if self.skips(Family::Updates) {
            return;
        }
        let addon_updates = match addons {
            Some(addons) => {
                let mut all = Some(Vec::new());
                for addon in addons {
                    match (self.updates_of(name, Some(&addon), errors).await, &mut all) {
                        (Some(found), Some(all)) => {
                            all.extend(found.into_iter().map(|u| (addon.clone(), u)))
                        }
                        _ => all = None,
                    }
                }
                all
            }
            None => None,
        };
        let now = self.clock.now();
        let Some(t) = self.tracked.get_mut(name) else {
            return;
        };
        let in_progress = |u: &eks::Update| matches!(u.status, Some(eks::UpdateStatus::InProgress));
        let recent = now - FAILED_UPDATE_WINDOW;
        let failed_recently = |u: &eks::Update| {
            matches!(u.status, Some(eks::UpdateStatus::Failed))
                && map::time(u.created_at.as_ref()).is_none_or(|t| t >= recent)
        };
        // What could not be read stays as it was: add-on updates are the AddonUpdate ones.
        let (old_addon, old_own): (Vec<_>, Vec<_>) = std::mem::take(&mut t.cluster.updates)
            .into_iter()
            .partition(|u| u.kind == ADDON_UPDATE);
        let mut updates = match &own {
            Some(own) => own
                .iter()
                .filter(|u| in_progress(u))
                .map(|u| map::eks_update(u, None, now))
                .collect(),
            None => old_own,
        };
        match &addon_updates {
            Some(found) => updates.extend(
                found
                    .iter()
                    .filter(|(_, u)| in_progress(u))
                    .map(|(a, u)| map::eks_update(u, Some(a), now)),
            ),
            None => updates.extend(old_addon),
        }
        t.cluster.updates = updates;
        if let Some(own) = own {
            let current = own
                .iter()
                .filter(|u| failed_recently(u))
                .map(|u| map::failed_update_alert(&t.cluster, u, None, now))
                .collect();
            alerts.extend(self.alerts.settle(name, Aspect::Updates, current, now));
        }
        if let Some(found) = addon_updates {
            let current = found
                .iter()
                .filter(|(_, u)| failed_recently(u))
                .map(|(a, u)| map::failed_update_alert(&t.cluster, u, Some(a), now))
                .collect();
            alerts.extend(self.alerts.settle(name, Aspect::AddonUpdates, current, now));
        }
    }

    /// `ListUpdates` then `DescribeUpdate` for the ids not already known to be finished;
    /// `None` when any call failed.
    async fn updates_of(
        &mut self,
        name: &str,
        addon: Option<&str>,
        errors: &mut Vec<String>,
    ) -> Option<Vec<eks::Update>> {
        let ids = match self.api.list_updates(name, addon).await {
            Ok(ids) => ids,
            Err(e) => {
                self.failed(Family::Updates, name, e, errors);
                return None;
            }
        };
        let mut found = Vec::with_capacity(ids.len());
        let mut complete = true;
        for id in ids {
            let known = self
                .tracked
                .get(name)
                .and_then(|t| t.finished_updates.get(&id).cloned());
            if let Some(u) = known {
                found.push(u);
                continue;
            }
            match self.api.describe_update(name, addon, &id).await {
                Ok(u) => {
                    let finished = matches!(
                        u.status,
                        Some(
                            eks::UpdateStatus::Successful
                                | eks::UpdateStatus::Failed
                                | eks::UpdateStatus::Cancelled
                        )
                    );
                    if let (true, Some(t)) = (finished, self.tracked.get_mut(name)) {
                        t.finished_updates.insert(id, u.clone());
                    }
                    found.push(u);
                }
                Err(e) => {
                    complete = false;
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
        complete.then_some(found)
    }

    async fn poll_nodegroups(
        &mut self,
        name: &str,
        errors: &mut Vec<String>,
        alerts: &mut Vec<Alert>,
    ) {
        if self.skips(Family::Nodegroups) {
            return;
        }
        let names = match self.api.list_nodegroups(name).await {
            Ok(n) => n,
            Err(e) => return self.failed(Family::Nodegroups, name, e, errors),
        };
        let mut described = Vec::with_capacity(names.len());
        for ng in &names {
            match self.api.describe_nodegroup(name, ng).await {
                Ok(n) => described.push(n),
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    return;
                }
            }
        }
        let now = self.clock.now();
        let Some(t) = self.tracked.get(name) else {
            return;
        };
        let current = described
            .iter()
            .filter_map(|n| map::nodegroup_alert(&t.cluster, n, now))
            .collect();
        alerts.extend(self.alerts.settle(name, Aspect::Nodegroups, current, now));
    }

    /// Whether an operation family is known not to be served here (for now).
    fn skips(&self, family: Family) -> bool {
        self.unsupported
            .get(&family)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// A failed list call: an endpoint that does not serve the operation is noted (and the
    /// family left alone for a while); anything else is the source's error.
    fn failed(&mut self, family: Family, cluster: &str, e: CallError, errors: &mut Vec<String>) {
        if is_unsupported(&e) {
            self.log_once(family, &e);
            self.unsupported
                .insert(family, Instant::now() + UNSUPPORTED_RETRY);
        } else {
            errors.push(format!("{cluster}: {e}"));
        }
    }

    /// Warns the first time a family fails, then only at debug level: an emulator or a
    /// partition without the API would otherwise fill the log every poll.
    fn log_once(&mut self, family: Family, e: &CallError) {
        if self.logged.insert(family) {
            tracing::warn!(source = %self.name, ?family, "{e}; carrying on without it");
        } else {
            tracing::debug!(source = %self.name, ?family, "{e}");
        }
    }

    pub(super) fn health_event(&self) -> SourceEvent {
        let stats = &self.api.stats;
        SourceEvent::Health(SourceHealth {
            name: self.name.clone(),
            last_ok: self.health.last_ok,
            last_error: self.health.last_error.clone(),
            last_error_at: self.health.last_error_at,
            calls: stats.calls,
            errors: stats.errors,
            throttles: stats.throttles,
            poll_interval_secs: POLL_INTERVAL_SECS,
            // EKS read APIs are not billed.
            cost_usd_per_hour: None,
            waiting: None,
            accounts: None,
        })
    }
}

impl Tracked {
    /// A newly found cluster, shown as UNKNOWN until described, on its first schedule.
    fn start(id: &ClusterId, schedule: &HashMap<String, (Instant, Duration)>) -> Self {
        let (next_detail, spread) = schedule
            .get(&id.name)
            .copied()
            .unwrap_or_else(|| (Instant::now(), Duration::ZERO));
        Self {
            cluster: map::placeholder(id.clone()),
            next_detail,
            spread,
            finished_updates: HashMap::new(),
            insight_details: HashMap::new(),
        }
    }
}
