//! The source's state and its polls: what it knows about each cluster, when each is due,
//! what fires, and the health it reports. The task in `task.rs` only decides *when*.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use aws_sdk_eks::types as eks;
use tokio::time::Instant;

use super::alerts::{AlertBook, Aspect};
use super::api::{Api, is_unsupported};
use super::{
    BATCH_MAX, BATCH_WINDOW, DETAIL_INTERVAL, FIRST_DETAIL_WINDOW, FOCUS_DETAIL_INTERVAL,
    POLL_INTERVAL_SECS, UNSUPPORTED_RETRY, VERSIONS_TTL, map,
};
use crate::clock::Clock;
use crate::config::Clusters;
use crate::model::{
    Alert, Cluster, ClusterId, Described, InsightDetail, InsightStatus, SourceEvent, SourceHealth,
    Timestamp,
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
    /// The last inventory could describe none of its clusters: a listing alone is no
    /// success until a description is (or the source would look healthy between two
    /// refused inventories).
    describe_refused: bool,
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
    /// Our clusters of interest, most important first (the engine's order: firing alerts,
    /// then a started wave).
    interest: Vec<String>,
    /// The clusters of this inventory still to describe.
    queue: DescribeQueue,
    /// Described since the last batch was sent.
    batch: Batch,
    health: HealthState,
    ready_sent: bool,
}

/// The clusters listed and not yet described in this inventory: those never described
/// first, then those described before (their picture stands meanwhile).
#[derive(Default)]
struct DescribeQueue {
    fresh: BTreeSet<String>,
    again: BTreeSet<String>,
    /// `DescribeClusterVersions` (hourly) is due before the first description.
    versions_checked: bool,
    /// Described (or tried) in this inventory, and how many of those failed.
    tried: usize,
    errors: Vec<String>,
    /// `errors` not yet reported in `Health`.
    unreported: bool,
}

impl DescribeQueue {
    fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.again.is_empty()
    }

    fn contains(&self, name: &str) -> bool {
        self.fresh.contains(name) || self.again.contains(name)
    }

    fn remove(&mut self, name: &str) -> bool {
        self.fresh.remove(name) | self.again.remove(name)
    }
}

/// What goes out in the next batch of descriptions.
struct Batch {
    clusters: Vec<String>,
    alerts: Vec<Alert>,
    /// A cluster went (deleted between the listing and its description): the next batch
    /// is the whole inventory again, so that the store drops it.
    listing_changed: bool,
    since: Instant,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            alerts: Vec::new(),
            listing_changed: false,
            since: Instant::now(),
        }
    }
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
            interest: Vec::new(),
            queue: DescribeQueue::default(),
            batch: Batch::default(),
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

    /// When the next detail poll of a described cluster is due.
    pub(super) fn next_detail_due(&self) -> Option<Instant> {
        self.tracked
            .values()
            .filter(|t| t.cluster.is_described())
            .map(|t| t.next_detail)
            .min()
    }

    /// Whether clusters of the last listing are still to be described.
    pub(super) fn describing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The clusters of interest, most important first, as the engine sent them: ours are
    /// described before the others.
    pub(super) fn set_interest(&mut self, interest: &[ClusterId]) {
        self.interest = interest
            .iter()
            .filter(|id| id.account == self.account && id.region == self.region)
            .map(|id| id.name.clone())
            .collect();
    }

    /// `ListClusters`, names first: emits the complete inventory at once (clusters seen
    /// before with their last picture, new ones as `Described::Pending`), the alerts of
    /// clusters that went, and Health; each cluster is then described by
    /// [`Self::describe_next`]. Ready goes out with the last description of the first
    /// inventory, or here when there is nothing to describe (none listed, or the listing
    /// failed). A failed `ListClusters` emits no inventory: the last one stands and goes
    /// stale.
    pub(super) async fn list(&mut self) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        match self.api.list_clusters().await {
            Err(e) => {
                let now = self.clock.now();
                tracing::warn!(source = %self.name, "inventory failed: {e}");
                self.health.inventory_failed(e.to_string(), now);
            }
            Ok(names) => {
                let alerts = self.take_listing(names);
                events.push(self.inventory_event());
                if !alerts.is_empty() {
                    events.push(SourceEvent::Alerts(alerts));
                }
                let now = self.clock.now();
                self.health.inventory_ok = true;
                if !self.health.describe_refused {
                    self.health.last_ok = Some(now);
                }
            }
        }
        events.push(self.health_event());
        if self.queue.is_empty() {
            self.send_ready(&mut events);
        }
        events
    }

    /// Every cluster as known now, as the complete inventory.
    fn inventory_event(&self) -> SourceEvent {
        SourceEvent::ClusterInventory {
            source: self.name.clone(),
            clusters: self.tracked.values().map(|t| t.cluster.clone()).collect(),
        }
    }

    fn send_ready(&mut self, events: &mut Vec<SourceEvent>) {
        if !self.ready_sent {
            self.ready_sent = true;
            events.push(SourceEvent::Ready {
                source: self.name.clone(),
            });
        }
    }

    /// Folds a successful `ListClusters` in: clusters no longer listed are forgotten, new
    /// ones tracked (not described yet), and every listed one queued for its description.
    /// Returns the alerts to send.
    fn take_listing(&mut self, names: Vec<String>) -> Vec<Alert> {
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
        let fresh: Vec<&ClusterId> = ids
            .iter()
            .filter(|id| !self.tracked.contains_key(&id.name))
            .collect();
        let schedule = self.first_schedule(&fresh);
        self.queue = DescribeQueue::default();
        for id in &ids {
            let tracked = self
                .tracked
                .entry(id.name.clone())
                .or_insert_with(|| Tracked::start(id, &schedule));
            if tracked.cluster.is_described() {
                self.queue.again.insert(id.name.clone());
            } else {
                self.queue.fresh.insert(id.name.clone());
            }
        }
        self.batch = Batch::default();
        alerts
    }

    /// The next cluster to describe: the one on screen, then the clusters of interest in
    /// the engine's order, then those never described, then the rest.
    fn next_to_describe(&self) -> Option<String> {
        let queued = |n: &&String| self.queue.contains(n);
        self.focus
            .iter()
            .find(queued)
            .or_else(|| self.interest.iter().find(queued))
            .or_else(|| self.queue.fresh.first())
            .or_else(|| self.queue.again.first())
            .cloned()
    }

    /// Describes the next cluster (see [`Self::next_to_describe`]) and returns the batch
    /// of descriptions when one is due: at most every [`BATCH_WINDOW`] or
    /// [`BATCH_MAX`] clusters, at once for the cluster on screen, and with the inventory's
    /// last description (then with Ready, the first time).
    pub(super) async fn describe_next(&mut self) -> Vec<SourceEvent> {
        let Some(name) = self.next_to_describe() else {
            return Vec::new();
        };
        self.describe(&name).await;
        let on_screen = self.focus.as_deref() == Some(name.as_str());
        if on_screen
            || self.queue.is_empty()
            || self.batch.clusters.len() >= BATCH_MAX
            || self.batch.since.elapsed() >= BATCH_WINDOW
        {
            self.send_batch()
        } else {
            Vec::new()
        }
    }

    /// `DescribeCluster` of one queued cluster, folded in and added to the next batch. A
    /// cluster described before keeps its picture when this fails; one never described
    /// is marked `Described::Failed`. Deleted since the listing: forgotten.
    async fn describe(&mut self, name: &str) {
        if !self.queue.remove(name) {
            return;
        }
        if !std::mem::replace(&mut self.queue.versions_checked, true) {
            self.refresh_versions().await;
        }
        let result = self.api.describe_cluster(name).await;
        let now = self.clock.now();
        self.queue.tried += 1;
        let env_tag = self.include.environment_tag.clone();
        match result {
            Ok(c) => {
                self.health.describe_refused = false;
                let Some(tracked) = self.tracked.get_mut(name) else {
                    return;
                };
                let id = tracked.cluster.id.clone();
                let mut cluster = map::cluster(id, &c, &env_tag, self.extended.as_ref());
                // The detail poll's findings stand until it runs again.
                let old = &mut tracked.cluster;
                cluster.insights = std::mem::take(&mut old.insights);
                cluster.updates = std::mem::take(&mut old.updates);
                cluster.addons = std::mem::take(&mut old.addons);
                tracked.cluster = cluster;
                let current = map::health_alerts(&tracked.cluster, now);
                let settled = self.alerts.settle(name, Aspect::Health, current, now);
                self.batch.alerts.extend(settled);
                self.batch.clusters.push(name.to_string());
            }
            // Deleted between the list and the describe.
            Err(e) if e.kind == CallKind::NotFound && !is_unsupported(&e) => {
                let mut alerts = Vec::new();
                self.forget(name, &mut alerts);
                self.batch.alerts.extend(alerts);
                self.batch.listing_changed = true;
            }
            Err(e) => {
                // Keep what we knew (it goes stale), or say it could not be described: a
                // cluster we cannot read is still there.
                self.queue.errors.push(format!("{name}: {e}"));
                self.queue.unreported = true;
                if let Some(t) = self.tracked.get_mut(name)
                    && !t.cluster.is_described()
                {
                    t.cluster.described = Described::Failed;
                    self.batch.clusters.push(name.to_string());
                }
            }
        }
    }

    /// The descriptions since the last batch, their alerts and Health; with the
    /// inventory's last description, the verdict on it (and Ready, the first time).
    fn send_batch(&mut self) -> Vec<SourceEvent> {
        let batch = std::mem::take(&mut self.batch);
        let mut events = Vec::new();
        if batch.listing_changed {
            events.push(self.inventory_event());
        } else if !batch.clusters.is_empty() {
            events.push(SourceEvent::ClustersChanged {
                source: self.name.clone(),
                clusters: batch
                    .clusters
                    .iter()
                    .filter_map(|n| self.tracked.get(n))
                    .map(|t| t.cluster.clone())
                    .collect(),
            });
        }
        if !batch.alerts.is_empty() {
            events.push(SourceEvent::Alerts(batch.alerts));
        }
        let now = self.clock.now();
        let done = self.queue.is_empty();
        let errors = &self.queue.errors;
        if done && self.queue.tried > 0 && errors.len() == self.queue.tried {
            // Listing allowed but describing refused everywhere (a common policy mistake):
            // the clusters still show, as they were or not described, but the source is
            // unhealthy.
            let error = summary(errors);
            self.health.inventory_failed(error, now);
            self.health.describe_refused = true;
        } else if self.queue.unreported && (done || errors.len() < self.queue.tried) {
            // Some could be described: the error is shown, the source stays healthy.
            self.health.partial(vec![summary(errors)], now);
            self.queue.unreported = false;
        }
        events.push(self.health_event());
        if done {
            self.send_ready(&mut events);
        }
        events
    }

    /// Every cluster listed and described now, as one batch of events: for tests, which
    /// look at an inventory's outcome rather than its pacing.
    #[cfg(test)]
    pub(super) async fn poll_inventory(&mut self) -> Vec<SourceEvent> {
        let mut events = self.list().await;
        while self.describing() {
            events.extend(self.describe_next().await);
        }
        events
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

    /// Polls the next described cluster whose detail poll is due, if any.
    pub(super) async fn poll_due_detail(&mut self) -> Vec<SourceEvent> {
        let now = Instant::now();
        let due = self
            .tracked
            .iter()
            .filter(|(_, t)| t.cluster.is_described() && t.next_detail <= now)
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
                // Not described yet in this inventory: its description comes first.
                let mut events = Vec::new();
                if self.queue.contains(&name) {
                    self.describe(&name).await;
                    events = self.send_batch();
                }
                events.extend(self.poll_detail(&name).await);
                events
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
            pace: Some(self.api.pace(self.clock.now())),
            accounts: None,
            lag_ms: None,
        })
    }
}

/// `first (and N more)`.
fn summary(errors: &[String]) -> String {
    let more = errors.len().saturating_sub(1);
    let first = errors.first().cloned().unwrap_or_default();
    if more > 0 {
        format!("{first} (and {more} more)")
    } else {
        first
    }
}

impl Tracked {
    /// A newly found cluster, not described yet, on its first schedule.
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
