//! The watchers of one cluster (a spoke): nodes, pods, Warning events, PodDisruptionBudgets,
//! PolicyReports (`policy.rs`; a cluster without their CRDs answers 404 and that watch
//! ends quietly) and, in production, deployments, each through kube-runtime's `watcher` (one list, then
//! a watch that resumes from its resourceVersion and re-lists on 410 Gone).
//!
//! Memory stays bounded: every object is reduced to a compact summary as it arrives and
//! the object dropped (`summary.rs`); only what is wrong is kept (crashing pods, blocking
//! PDBs...), except nodes, which keep a tiny summary each to be counted. Warning events
//! are capped at [`EVENTS_TRACKED`] and aged out after [`EVENT_MAX_AGE`]. Pages of the
//! initial lists are small, so a re-list of a large cluster never holds many objects.
//! The API server filters what it can: finished pods, non-Warning events and
//! `kube-system` deployments are never sent. Metadata-only watches would not do: every
//! signal here lives in `status` or `spec`.
//!
//! What it sends: `SourceEvent::KubeSignals` (the whole picture, replacing the previous
//! one) when it changed, coalesced to at most one a second, and once a minute regardless
//! as a heartbeat, so `updated` says when the watch last confirmed the picture; and
//! `SourceEvent::Alerts` with new, changed and resolved alerts.
//!
//! Errors: 403 on a resource keeps the other watches going and adds a note
//! (`fleetdeck/watch-pods`, reason `Forbidden`, the API server's message) to the warning
//! events the cluster view lists; the connection is `Unavailable` only when no watch
//! delivers (every watch forbidden or unreachable) or the credentials were rejected
//! (401). Every watch retries with kube-runtime's default backoff (0.8 s doubling to
//! 30 s, with jitter), so a refused, timed-out or reset watch recovers by itself when
//! the API server does; the connection layer refreshes tokens behind the client. How a
//! problem clears is in `access.rs`.

mod access;
mod alerts;
mod policy;
mod summary;
mod tracker;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch as signal};
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::Clock;
use crate::model::{
    BlockingPdb, CrashingPod, KubeSignals, SourceEvent, Timestamp, WarningEvent, WorkloadRef,
};
use crate::sources::ClusterTarget;

use access::{Access, Kind, Verdict};
use alerts::{AlertBook, AlertFactory};
use summary::NodeSummary;
use tracker::{Change, Limit, Tracked};

/// Bursts of changes are folded into at most one picture per this interval.
const COALESCE: Duration = Duration::from_secs(1);
/// How often the picture is re-sent unchanged, old events aged out, and alert summaries
/// ("NotReady for 14m") brought up to date.
const REFRESH: Duration = Duration::from_secs(60);
/// Warning events older than this are not shown.
pub const EVENT_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Warning events kept (one per Event object); the oldest go first.
pub const EVENTS_TRACKED: usize = 1000;
/// Warning events listed in the picture, after de-duplication, newest first.
pub const EVENTS_LISTED: usize = 200;
/// Crashing pods and single-replica deployments listed in the picture. Alerts count
/// them all; the list is for reading, and a list longer than this is not read.
pub const WORKLOADS_LISTED: usize = 500;
/// Deployments are watched outside this namespace only (see [`summary::SYSTEM_NAMESPACE`]).
const DEPLOYMENT_FIELDS: &str = "metadata.namespace!=kube-system";
/// Finished pods can be neither crashing nor pulling: the API server leaves them out.
const POD_FIELDS: &str = "status.phase!=Succeeded,status.phase!=Failed";
/// How long the farewell (`AlertsGone`) may wait for room in the channel.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Watches one cluster through `client` until `*stop` becomes true (or its sender is
/// dropped) or `events` closes. On stop, the alerts it raised are withdrawn with
/// `AlertsGone`: nothing will resolve them once nobody watches.
pub async fn watch(
    client: kube::Client,
    target: ClusterTarget,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
    mut stop: signal::Receiver<bool>,
) {
    if *stop.borrow() {
        return;
    }
    let mut spoke = Spoke::new(target, clock);
    let mut updates = futures::stream::select_all(spoke.streams(&client));
    let mut tick = tokio::time::interval(COALESCE);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_refresh = Instant::now() + REFRESH;

    let ending = 'watch: loop {
        let step = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => Step::End(Ending::Stopped),
            () = events.closed() => Step::End(Ending::ChannelClosed),
            _ = tick.tick() => Step::Flush,
            Some(update) = updates.next() => Step::Observe(update),
        };
        match step {
            Step::End(ending) => break ending,
            Step::Observe(update) => spoke.observe(update),
            Step::Flush => {
                let refresh = Instant::now() >= next_refresh;
                if refresh {
                    next_refresh = Instant::now() + REFRESH;
                }
                for event in spoke.flush(refresh) {
                    if let Some(ending) = deliver(&events, &mut stop, event).await {
                        break 'watch ending;
                    }
                }
            }
        }
    };
    drop(updates);
    if ending == Ending::Stopped {
        spoke.farewell(&events).await;
    }
}

/// Sends `event` unless the watch is told to stop first; `Some` says why it must end.
async fn deliver(
    events: &mpsc::Sender<SourceEvent>,
    stop: &mut signal::Receiver<bool>,
    event: SourceEvent,
) -> Option<Ending> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => Some(Ending::Stopped),
        sent = events.send(event) => sent.is_err().then_some(Ending::ChannelClosed),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Stopped,
    ChannelClosed,
}

enum Step {
    End(Ending),
    Flush,
    Observe(Update),
}

/// One watch event (already summarized) or error, and which watch it came from.
struct Update {
    kind: Kind,
    result: Result<Observed, watcher::Error>,
}

enum Observed {
    Node(Change<NodeSummary>),
    Pod(Change<CrashingPod>),
    Event(Change<WarningEvent>),
    Pdb(Change<BlockingPdb>),
    Deployment(Change<WorkloadRef>),
    Report(Change<policy::ReportSummary>),
}

impl Observed {
    /// `Init` is emitted before the list request is made: it proves nothing about the
    /// API server. Every other event is an answer from it.
    fn is_answer(&self) -> bool {
        !matches!(
            self,
            Self::Node(Change::Relist)
                | Self::Pod(Change::Relist)
                | Self::Event(Change::Relist)
                | Self::Pdb(Change::Relist)
                | Self::Deployment(Change::Relist)
                | Self::Report(Change::Relist)
        )
    }
}

/// Everything the watch knows of one cluster.
struct Spoke {
    target: ClusterTarget,
    clock: Clock,
    nodes: Tracked<NodeSummary>,
    pods: Tracked<CrashingPod>,
    events: Tracked<WarningEvent>,
    pdbs: Tracked<BlockingPdb>,
    deployments: Tracked<WorkloadRef>,
    /// Policy reports, by resource kind; a kind is dropped when the cluster does not
    /// serve it (404).
    reports: std::collections::BTreeMap<Kind, Tracked<policy::ReportSummary>>,
    /// Some policy report resource has answered a list.
    reports_served: bool,
    access: Access,
    book: AlertBook,
    /// Something changed since the last flush.
    dirty: bool,
    /// The last picture sent, to send only changed ones.
    sent: Option<KubeSignals>,
}

impl Spoke {
    fn new(target: ClusterTarget, clock: Clock) -> Self {
        Self {
            target,
            clock,
            nodes: Tracked::new(),
            pods: Tracked::new(),
            events: Tracked::limited(Limit {
                max: EVENTS_TRACKED,
                rank: |e: &WarningEvent| e.last_seen,
            }),
            pdbs: Tracked::new(),
            deployments: Tracked::new(),
            reports: std::collections::BTreeMap::new(),
            reports_served: false,
            access: Access::default(),
            book: AlertBook::default(),
            dirty: false,
            sent: None,
        }
    }

    /// One watch per resource. Deployments are watched in production clusters only:
    /// that is the only place a single replica is flagged.
    fn streams(&mut self, client: &kube::Client) -> Vec<BoxStream<'static, Update>> {
        let mut streams = vec![
            summarized(
                Api::<Node>::all(client.clone()),
                // Node objects are large (image lists): small pages.
                watcher::Config::default().page_size(100),
                Kind::Nodes,
                |n| Some(summary::node(n)),
                Observed::Node,
            ),
            summarized(
                Api::<Pod>::all(client.clone()),
                watcher::Config::default().fields(POD_FIELDS).page_size(250),
                Kind::Pods,
                summary::crashing_pod,
                Observed::Pod,
            ),
            summarized(
                Api::<Event>::all(client.clone()),
                watcher::Config::default()
                    .fields("type=Warning")
                    .page_size(250),
                Kind::Events,
                {
                    let clock = self.clock.clone();
                    move |e| summary::warning_event(e, clock.now() - EVENT_MAX_AGE)
                },
                Observed::Event,
            ),
            summarized(
                Api::<PodDisruptionBudget>::all(client.clone()),
                watcher::Config::default(),
                Kind::PodDisruptionBudgets,
                summary::blocking_pdb,
                Observed::Pdb,
            ),
        ];
        if self.target.production {
            streams.push(summarized(
                Api::<Deployment>::all(client.clone()),
                watcher::Config::default().fields(DEPLOYMENT_FIELDS),
                Kind::Deployments,
                summary::single_replica,
                Observed::Deployment,
            ));
        }
        for kind in [
            Kind::Nodes,
            Kind::Pods,
            Kind::Events,
            Kind::PodDisruptionBudgets,
        ] {
            self.access.watching(kind);
        }
        if self.target.production {
            self.access.watching(Kind::Deployments);
        }
        for (resource, kind) in policy::resources() {
            streams.push(until_not_served(summarized(
                Api::<DynamicObject>::all_with(client.clone(), &resource),
                watcher::Config::default().page_size(100),
                kind,
                policy::summarize,
                Observed::Report,
            )));
            self.access.watching(kind);
            self.reports.insert(kind, Tracked::new());
        }
        streams
    }

    /// Folds one update in.
    fn observe(&mut self, update: Update) {
        let Update { kind, result } = update;
        match result {
            Ok(observed) => {
                if kind.is_policy_report()
                    && matches!(observed, Observed::Report(Change::RelistDone))
                {
                    self.reports_served = true;
                }
                if observed.is_answer() && self.access.heard(kind) {
                    tracing::info!(cluster = %self.target.id, watch = kind.plural(), "watch recovered");
                    self.dirty = true;
                }
                self.dirty |= match observed {
                    Observed::Node(c) => self.nodes.apply(c),
                    Observed::Pod(c) => self.pods.apply(c),
                    Observed::Event(c) => self.events.apply(c),
                    Observed::Pdb(c) => self.pdbs.apply(c),
                    Observed::Deployment(c) => self.deployments.apply(c),
                    Observed::Report(c) => self
                        .reports
                        .get_mut(&kind)
                        .is_some_and(|tracked| tracked.apply(c)),
                };
            }
            Err(error) if kind.is_policy_report() && access::is_not_served(&error) => {
                // No such CRD here: not an error, and nothing to watch.
                tracing::debug!(cluster = %self.target.id, watch = kind.plural(), "not served");
                self.reports.remove(&kind);
                self.dirty |= self.access.not_watching(kind);
            }
            Err(error) => match access::classify(&error, self.clock.now()) {
                Verdict::Problem(problem) => {
                    if self.access.failed(kind, problem, Instant::now()) {
                        tracing::warn!(cluster = %self.target.id, watch = kind.plural(), %error, "watch failing; retrying with backoff");
                        self.dirty = true;
                    } else {
                        tracing::debug!(cluster = %self.target.id, watch = kind.plural(), %error, "watch still failing");
                    }
                }
                Verdict::Expired => {
                    tracing::debug!(cluster = %self.target.id, watch = kind.plural(), "resourceVersion expired (410); re-listing");
                }
                Verdict::Transient(message) => {
                    tracing::debug!(cluster = %self.target.id, watch = kind.plural(), %message, "watch error");
                }
            },
        }
    }

    /// What to send now: the picture if it changed (or `refresh` asks for a heartbeat),
    /// and alerts that changed. On `refresh`, events older than an hour are dropped.
    fn flush(&mut self, refresh: bool) -> Vec<SourceEvent> {
        let now = self.clock.now();
        self.dirty |= self.access.expire(Instant::now());
        if refresh {
            let oldest = now - EVENT_MAX_AGE;
            self.dirty |= self
                .events
                .retain(|e| e.last_seen.is_none_or(|t| t >= oldest));
        }
        if !self.dirty && !refresh {
            return Vec::new();
        }
        self.dirty = false;
        let mut out = Vec::new();
        let signals = self.signals(now);
        let changed = self.sent.as_ref().is_none_or(|sent| {
            let mut unstamped = signals.clone();
            unstamped.updated = sent.updated;
            *sent != unstamped
        });
        // The heartbeat is only for a picture already sent: before any watch answered
        // there is nothing to confirm.
        if changed || (refresh && self.sent.is_some()) {
            self.sent = Some(signals.clone());
            out.push(SourceEvent::KubeSignals {
                cluster: self.target.id.clone(),
                signals: Box::new(signals),
            });
        }
        let alerts = self.book.settle(self.alerts(now), now);
        if !alerts.is_empty() {
            out.push(SourceEvent::Alerts(alerts));
        }
        out
    }

    /// The cluster view's picture, in a stable order.
    fn signals(&self, now: Timestamp) -> KubeSignals {
        let mut not_ready_nodes: Vec<_> = self
            .nodes
            .values()
            .filter_map(|n| n.not_ready.as_ref())
            .map(|t| t.node.clone())
            .collect();
        not_ready_nodes.sort_by(|a, b| a.since.cmp(&b.since).then(a.name.cmp(&b.name)));

        let mut crashing_pods: Vec<CrashingPod> = self.pods.values().cloned().collect();
        crashing_pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        crashing_pods.truncate(WORKLOADS_LISTED);

        let mut warning_events = self.access.notes();
        warning_events.extend(deduplicated(self.events.values()));

        let mut blocking_pdbs: Vec<BlockingPdb> = self.pdbs.values().cloned().collect();
        blocking_pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

        let mut single_replica: Vec<WorkloadRef> = self.deployments.values().cloned().collect();
        single_replica.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        single_replica.truncate(WORKLOADS_LISTED);

        KubeSignals {
            connection: self.access.connection(),
            nodes_total: self.nodes.len(),
            not_ready_nodes,
            crashing_pods,
            warning_events,
            blocking_pdbs,
            single_replica,
            policy_reports: self.policy_reports(),
            updated: now,
        }
    }

    /// Every policy report read, as one picture; `None` before any report resource
    /// answered, and when the cluster serves none.
    fn policy_reports(&self) -> Option<crate::model::PolicyReports> {
        (self.reports_served && !self.reports.is_empty())
            .then(|| policy::picture(self.reports.values().flat_map(Tracked::values)))
    }

    /// Every alert the summaries raise now.
    fn alerts(&self, now: Timestamp) -> Vec<crate::model::Alert> {
        let factory = AlertFactory {
            cluster: &self.target.id,
            now,
        };
        let not_ready: Vec<_> = self
            .nodes
            .values()
            .filter_map(|n| n.not_ready.as_ref())
            .collect();
        let mut alerts = factory.nodes(&not_ready, self.nodes.len());
        alerts.extend(factory.pods(&self.pods.values().collect::<Vec<_>>()));
        alerts.extend(factory.pdbs(&self.pdbs.values().collect::<Vec<_>>()));
        alerts.extend(factory.single_replica(&self.deployments.values().collect::<Vec<_>>()));
        if let Some(reports) = self.policy_reports() {
            alerts.extend(factory.policies(&reports));
        }
        alerts
    }

    /// Withdraws every alert this watch raised: once it stops, nothing would resolve them.
    async fn farewell(&self, events: &mpsc::Sender<SourceEvent>) {
        let keys = self.book.keys();
        if keys.is_empty() {
            return;
        }
        let sent =
            tokio::time::timeout(FAREWELL_TIMEOUT, events.send(SourceEvent::AlertsGone(keys)));
        if !matches!(sent.await, Ok(Ok(()))) {
            tracing::warn!(cluster = %self.target.id, "could not withdraw the cluster's Kubernetes alerts");
        }
    }
}

/// One resource's watcher, with backoff on errors, each object reduced by `summarize`
/// as it arrives.
fn summarized<K, S>(
    api: Api<K>,
    config: watcher::Config,
    kind: Kind,
    summarize: impl Fn(&K) -> Option<S> + Send + 'static,
    wrap: fn(Change<S>) -> Observed,
) -> BoxStream<'static, Update>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    S: Send + 'static,
{
    let key =
        |obj: &K| summary::object_key(obj.meta().namespace.as_deref(), obj.meta().name.as_deref());
    watcher(api, config)
        .default_backoff()
        .map_ok(move |event| wrap(Change::from_event(event, key, &summarize)))
        .map(move |result| Update { kind, result })
        .boxed()
}

/// `stream` until it reports that its resource is not served (404 on the list): that
/// update is passed on, and the stream ends instead of retrying a CRD that is not there.
fn until_not_served(stream: BoxStream<'static, Update>) -> BoxStream<'static, Update> {
    let mut ended = false;
    stream
        .take_while(move |update| {
            let go = !ended;
            ended |= matches!(&update.result, Err(e) if access::is_not_served(e));
            futures::future::ready(go)
        })
        .boxed()
}

/// Warning events with the same object, reason and message folded into one (counts
/// added, the latest time kept), newest first, at most [`EVENTS_LISTED`].
fn deduplicated<'a>(events: impl Iterator<Item = &'a WarningEvent>) -> Vec<WarningEvent> {
    let mut folded: std::collections::HashMap<(&str, &str, &str, &str), WarningEvent> =
        std::collections::HashMap::new();
    for e in events {
        folded
            .entry((&e.namespace, &e.object, &e.reason, &e.message))
            .and_modify(|f| {
                f.count = f.count.saturating_add(e.count);
                f.last_seen = f.last_seen.max(e.last_seen);
            })
            .or_insert_with(|| e.clone());
    }
    let mut list: Vec<WarningEvent> = folded.into_values().collect();
    list.sort_by(|a, b| {
        b.last_seen.cmp(&a.last_seen).then_with(|| {
            (&a.namespace, &a.object, &a.reason).cmp(&(&b.namespace, &b.object, &b.reason))
        })
    });
    list.truncate(EVENTS_LISTED);
    list
}
