//! The hub source as tasks: a watcher task per kind feeds the hub loop, which keeps the
//! current picture, ties Applications to clusters, raises alerts, sends coalesced
//! complete sets and reports health; a permission task re-checks RBAC now and then.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::alerts::{AlertBook, app_alert};
use super::fleet::FleetIndex;
use super::meter::{Collection, Meter, metered};
use super::parse::{self, Malformed, ParsedApp};
use super::{POLL_INTERVAL_SECS, Tuning, permissions, source_name, waves};
use crate::clock::Clock;
use crate::config::Hub;
use crate::model::{ApplicationSet, SourceEvent, SourceHealth, Timestamp};
use crate::rollout::plan::Plan;
use crate::sources::{ClusterTarget, SourceCommand, SourceHandle};

/// Commands are rare (a key press, a fleet change); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;
/// Watch events waiting for the hub loop. Bounded so a huge re-list waits for the loop
/// instead of piling up in memory.
const UPDATE_CAPACITY: usize = 256;
/// Skipped objects named in one health report.
const MAX_SKIPS_NAMED: usize = 3;

/// The two kinds the source watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Applications,
    ApplicationSets,
}

impl Kind {
    fn kind(self) -> &'static str {
        match self {
            Self::Applications => "Application",
            Self::ApplicationSets => "ApplicationSet",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Applications => "applications",
            Self::ApplicationSets => "applicationsets",
        }
    }

    fn resource(self) -> ApiResource {
        ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: self.kind().into(),
            plural: self.plural().into(),
        }
    }

    fn collection(self) -> Collection {
        match self {
            Self::Applications => Collection::Applications,
            Self::ApplicationSets => Collection::ApplicationSets,
        }
    }
}

/// What a watcher task tells the hub loop.
#[derive(Debug)]
pub(super) enum Update {
    /// Boxed: objects are large and most channel slots hold small events.
    Event(Kind, Box<watcher::Event<DynamicObject>>),
    Failed(Kind, String),
    /// The hub answered, but with a body that is not a list or watch event (a proxy's
    /// page, a truncated answer): counted as an error, since the meter saw a success.
    Unreadable(Kind, String),
}

/// Spawns the source's tasks; see [`super::spawn`].
pub(super) fn spawn(
    client: kube::Client,
    hub: Hub,
    plans: BTreeMap<String, Plan>,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
    tuning: Tuning,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let name = source_name(&hub);
    let meter = Meter::new(tuning.watch_spacing);
    let client = metered(client, meter.clone(), clock.clone());
    let writer = Writer {
        client: client.clone(),
        plans: Arc::new(plans),
    };
    tokio::spawn(run(
        client, hub, writer, clock, meter, events, inbox, tuning,
    ));
    SourceHandle { name, commands }
}

/// Aborts the helper tasks when the hub loop ends, whichever way it ends.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    client: kube::Client,
    hub: Hub,
    writer: Writer,
    clock: Clock,
    meter: Meter,
    events: mpsc::Sender<SourceEvent>,
    mut inbox: mpsc::Receiver<SourceCommand>,
    tuning: Tuning,
) {
    let source = source_name(&hub);
    let (updates_tx, mut updates) = mpsc::channel(UPDATE_CAPACITY);
    // Application refresh and sync (runbook steps) write with the same client.
    let (app_client, app_namespace) = (client.clone(), hub.namespace.clone());
    let _helpers = AbortOnDrop(vec![
        tokio::spawn(watch(
            client.clone(),
            hub.namespace.clone(),
            Kind::Applications,
            tuning.clone(),
            updates_tx.clone(),
        )),
        tokio::spawn(watch(
            client.clone(),
            hub.namespace.clone(),
            Kind::ApplicationSets,
            tuning.clone(),
            updates_tx,
        )),
        tokio::spawn(recheck_permissions(
            client,
            hub.namespace.clone(),
            source.clone(),
            tuning.permission_recheck,
            events.clone(),
        )),
    ]);
    let mut state = HubState::new(source, hub.namespace, clock, meter);
    let mut health_tick = tokio::time::interval(tuning.health_interval);
    health_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut flush_at: Option<Instant> = None;
    let mut last_flush: Option<Instant> = None;
    let mut inbox_open = true;
    loop {
        let batch = tokio::select! {
            // Flushing before reading more updates: a long re-list must not starve sends.
            biased;
            () = events.closed() => return,
            () = crate::sources::sleep_until(flush_at) => {
                flush_at = None;
                last_flush = Some(Instant::now());
                state.flush()
            }
            command = inbox.recv(), if inbox_open => {
                match command {
                    Some(SourceCommand::Targets { seq, fleet, .. }) => state.retarget(seq, fleet),
                    Some(SourceCommand::Focus(_)) => {}
                    Some(SourceCommand::PauseWave { rollout, wave, by, reason, reply }) => {
                        let job = writer.job(&state, &rollout);
                        tokio::spawn(async move {
                            let result = job
                                .run(|r, now| {
                                    crate::rollout::pause(r, wave, &by, &reason, now)
                                        .map_err(|e| e.to_string())?;
                                    Ok(Some(format!(
                                        "paused {} of {}: no new application in it starts; \
                                         those already Pending or Progressing finish",
                                        r.waves[wave].name, r.name
                                    )))
                                })
                                .await;
                            let _ = reply.send(result);
                        });
                    }
                    Some(SourceCommand::ResumeWave { rollout, wave, reply, .. }) => {
                        let job = writer.job(&state, &rollout);
                        tokio::spawn(async move {
                            let result = job
                                .run(|r, now| {
                                    crate::rollout::resume(r, wave, now, &[])
                                        .map_err(|e| e.to_string())?;
                                    Ok(Some(format!(
                                        "resumed {} of {}: its maxUpdate is restored",
                                        r.waves[wave].name, r.name
                                    )))
                                })
                                .await;
                            let _ = reply.send(result);
                        });
                    }
                    Some(command @ (SourceCommand::SilenceAlert { .. }
                    | SourceCommand::ExpireSilences { .. }
                    | SourceCommand::UpdateFindings { .. }
                    | SourceCommand::Relay { .. })) => {
                        crate::sources::refuse_wave(command, "the Argo CD hub source");
                    }
                    Some(SourceCommand::Remediate(request)) => {
                        tokio::spawn(super::app_actions::run(app_client.clone(), app_namespace.clone(), request));
                    }
                    None => inbox_open = false,
                }
                Vec::new()
            }
            update = updates.recv() => match update {
                Some(update) => {
                    state.apply(update);
                    Vec::new()
                }
                // The watchers only stop when this loop does.
                None => return,
            },
            _ = health_tick.tick() => state.health_event().into_iter().collect(),
        };
        for event in batch {
            if events.send(event).await.is_err() {
                return;
            }
        }
        if flush_at.is_none() && state.has_news() {
            let now = Instant::now();
            flush_at = Some(last_flush.map_or(now, |t| (t + tuning.flush_interval).max(now)));
        }
    }
}

/// What the hub source needs to write holds: its client and the plans file's plans.
#[derive(Clone)]
struct Writer {
    client: kube::Client,
    plans: Arc<BTreeMap<String, Plan>>,
}

/// One write to one ApplicationSet, with what the hub loop knew when it was asked.
struct WriteJob {
    api: Api<DynamicObject>,
    source: String,
    namespace: String,
    name: String,
    apps: Vec<crate::model::ArgoApp>,
    plan: Option<Plan>,
    clock: Clock,
}

impl Writer {
    fn job(&self, state: &HubState, set: &str) -> WriteJob {
        let plan = crate::rollout::plan::find(&self.plans, &state.namespace, set).cloned();
        WriteJob {
            api: Api::namespaced_with(
                self.client.clone(),
                &state.namespace,
                &Kind::ApplicationSets.resource(),
            ),
            source: state.source.clone(),
            namespace: state.namespace.clone(),
            name: set.to_string(),
            apps: state.apps.items.values().map(|p| p.app.clone()).collect(),
            plan,
            clock: state.clock.clone(),
        }
    }
}

impl WriteJob {
    async fn run<F>(self, change: F) -> Result<String, String>
    where
        F: Fn(&mut crate::model::Rollout, Timestamp) -> Result<Option<String>, String>,
    {
        let target = waves::Target {
            api: &self.api,
            source: &self.source,
            namespace: &self.namespace,
            name: &self.name,
            apps: &self.apps,
            file_plan: self.plan.as_ref(),
        };
        let clock = self.clock.clone();
        waves::update(&target, || clock.now(), change)
            .await
            .map(|updated| updated.message)
    }
}

/// Runs the kube-runtime watcher for one kind, forwarding its events, and waits between
/// failures: doubling from `retry_min` to `retry_max`, or `crd_retry` when the kind does
/// not exist on the hub. Ends when the hub loop stops listening.
async fn watch(
    client: kube::Client,
    namespace: String,
    kind: Kind,
    tuning: Tuning,
    updates: mpsc::Sender<Update>,
) {
    let api = Api::<DynamicObject>::namespaced_with(client, &namespace, &kind.resource());
    let config = watcher::Config::default().timeout(tuning.watch_timeout_secs);
    let mut stream = pin!(watcher(api, config));
    let mut backoff = tuning.retry_min;
    while let Some(item) = stream.next().await {
        let update = match item {
            Ok(event) => {
                // `Init` comes before every (re-)list, including ones about to fail: only
                // an answer from the hub proves it is back, so only that resets the backoff.
                if !matches!(event, watcher::Event::Init) {
                    backoff = tuning.retry_min;
                }
                Update::Event(kind, Box::new(event))
            }
            // The watch fell too far behind: the watcher re-lists by itself, at once.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                tracing::debug!(kind = kind.plural(), "watch expired, re-listing");
                continue;
            }
            Err(error) => {
                let (message, wait) = if crd_missing(&error) {
                    (
                        format!(
                            "Argo CD CRDs not found on the hub (argoproj.io/v1alpha1 {})",
                            kind.plural()
                        ),
                        tuning.crd_retry,
                    )
                } else {
                    let wait = backoff;
                    backoff = (backoff * 2).min(tuning.retry_max);
                    // The whole chain: "client error (Connect)" alone says neither DNS
                    // nor refused.
                    let why = crate::sources::kube::token::error_chain(&error);
                    (
                        format!("argoproj.io/v1alpha1 {}: {why}", kind.plural()),
                        wait,
                    )
                };
                tracing::warn!(kind = kind.plural(), "{message}; retrying in {wait:?}");
                let update = if unreadable(&error) {
                    Update::Unreadable(kind, message)
                } else {
                    Update::Failed(kind, message)
                };
                if updates.send(update).await.is_err() {
                    return;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

/// An answer that came back 2xx but could not be read.
fn unreadable(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::SerdeError(_))
            | watcher::Error::WatchStartFailed(kube::Error::SerdeError(_))
            | watcher::Error::WatchFailed(kube::Error::SerdeError(_))
    )
}

/// A 404 on the collection itself: the resource type is not served (the CRD is missing).
/// A namespace without Argo CD just lists empty.
fn crd_missing(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => {
            status.code == 404 || status.is_not_found()
        }
        _ => false,
    }
}

/// Checks the pause/resume permissions now and every `every`, sending each answer.
async fn recheck_permissions(
    client: kube::Client,
    namespace: String,
    source: String,
    every: std::time::Duration,
    events: mpsc::Sender<SourceEvent>,
) {
    loop {
        let checks = permissions::check(&client, &namespace).await;
        let event = SourceEvent::Permissions {
            source: source.clone(),
            cluster: None,
            checks,
        };
        if events.send(event).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// One kind's objects as last listed and watched.
struct Picture<T> {
    /// The committed set, by `namespace/name`.
    items: BTreeMap<String, T>,
    /// Objects of a list in progress; they replace `items` when it completes.
    pending: Option<BTreeMap<String, T>>,
    /// A complete list has been committed at least once.
    listed: bool,
    /// Listed, or failed at least once: `Ready` need not wait for it any longer.
    settled: bool,
    /// `items` changed since the last send.
    dirty: bool,
    /// The current failure: the meter's sequence number when it was seen, and the message.
    failure: Option<(u64, String)>,
}

impl<T> Default for Picture<T> {
    fn default() -> Self {
        Self {
            items: BTreeMap::new(),
            pending: None,
            listed: false,
            settled: false,
            dirty: false,
            failure: None,
        }
    }
}

impl<T: PartialEq> Picture<T> {
    /// Folds in one watcher event; objects that cannot be read are returned with why.
    fn apply(
        &mut self,
        event: watcher::Event<DynamicObject>,
        namespace: &str,
        read: impl Fn(&DynamicObject) -> Result<T, Malformed>,
    ) -> Vec<(String, Malformed)> {
        let mut skipped = Vec::new();
        match event {
            watcher::Event::Init => self.pending = Some(BTreeMap::new()),
            watcher::Event::InitApply(obj) => {
                let key = parse::object_key(&obj, namespace);
                match read(&obj) {
                    Ok(item) => {
                        self.pending
                            .get_or_insert_with(BTreeMap::new)
                            .insert(key, item);
                    }
                    Err(why) => skipped.push((key, why)),
                }
            }
            watcher::Event::InitDone => {
                let items = self.pending.take().unwrap_or_default();
                if !self.listed || items != self.items {
                    self.dirty = true;
                }
                self.items = items;
                self.listed = true;
                self.settled = true;
            }
            watcher::Event::Apply(obj) => {
                let key = parse::object_key(&obj, namespace);
                match read(&obj) {
                    Ok(item) => {
                        if self.items.get(&key) != Some(&item) {
                            self.items.insert(key, item);
                            self.dirty = true;
                        }
                    }
                    Err(why) => {
                        // What it says now cannot be read; showing its old state instead
                        // would be showing something that is no longer true.
                        self.dirty |= self.items.remove(&key).is_some();
                        skipped.push((key, why));
                    }
                }
            }
            watcher::Event::Delete(obj) => {
                let key = parse::object_key(&obj, namespace);
                self.dirty |= self.items.remove(&key).is_some();
            }
        }
        skipped
    }
}

/// Everything the hub loop knows.
struct HubState {
    source: String,
    namespace: String,
    clock: Clock,
    meter: Meter,
    fleet: Vec<ClusterTarget>,
    index: FleetIndex,
    apps: Picture<ParsedApp>,
    sets: Picture<ApplicationSet>,
    alerts: AlertBook,
    /// The fleet or its production flags changed: severities and keys may have.
    alerts_dirty: bool,
    /// A failure or skipped object to report.
    health_dirty: bool,
    skipped: u64,
    /// Answers that came back 2xx but could not be read.
    unreadable: u64,
    /// Objects skipped since the last health report.
    new_skips: Vec<String>,
    last_error: Option<(Timestamp, String)>,
    last_ok: Option<Timestamp>,
    health_sent: Option<SourceHealth>,
    ready_sent: bool,
    /// The engine's `Targets` applied, answered after the flush that carries its effects.
    targeted: Option<u64>,
}

impl HubState {
    fn new(source: String, namespace: String, clock: Clock, meter: Meter) -> Self {
        Self {
            source,
            namespace,
            clock,
            meter,
            fleet: Vec::new(),
            index: FleetIndex::default(),
            apps: Picture::default(),
            sets: Picture::default(),
            alerts: AlertBook::default(),
            alerts_dirty: false,
            health_dirty: false,
            skipped: 0,
            unreadable: 0,
            new_skips: Vec::new(),
            last_error: None,
            last_ok: None,
            health_sent: None,
            ready_sent: false,
            targeted: None,
        }
    }

    fn apply(&mut self, update: Update) {
        let unreadable = matches!(update, Update::Unreadable(..));
        let (kind, skipped) = match update {
            Update::Failed(kind, message) | Update::Unreadable(kind, message) => {
                if unreadable {
                    self.unreadable += 1;
                }
                let seq = self.meter.counts().seq;
                let picture = match kind {
                    Kind::Applications => (&mut self.apps.settled, &mut self.apps.failure),
                    Kind::ApplicationSets => (&mut self.sets.settled, &mut self.sets.failure),
                };
                *picture.0 = true;
                *picture.1 = Some((seq, message.clone()));
                self.last_error = Some((self.clock.now(), message));
                self.health_dirty = true;
                return;
            }
            Update::Event(Kind::Applications, event) => {
                let index = &self.index;
                let namespace = self.namespace.clone();
                let skipped = self.apps.apply(*event, &self.namespace, |obj| {
                    let mut parsed = parse::application(obj, &namespace)?;
                    parsed.app.cluster =
                        index.cluster_for(parsed.server.as_deref(), parsed.dest_name.as_deref());
                    Ok(parsed)
                });
                (Kind::Applications, skipped)
            }
            Update::Event(Kind::ApplicationSets, event) => {
                let namespace = self.namespace.clone();
                let skipped = self.sets.apply(*event, &self.namespace, |obj| {
                    parse::application_set(obj, &namespace)
                });
                (Kind::ApplicationSets, skipped)
            }
        };
        for (key, why) in skipped {
            tracing::warn!(source = %self.source, object = %key, "skipped malformed {}: {why}", kind.kind());
            self.skipped += 1;
            self.new_skips
                .push(format!("skipped malformed {} {key}: {why}", kind.kind()));
            self.health_dirty = true;
        }
    }

    /// Puts the objects skipped since the last report into the last error, naming up to
    /// three (a list with many bad objects must not make an unreadable line).
    fn report_skips(&mut self) {
        if self.new_skips.is_empty() {
            return;
        }
        let skips = std::mem::take(&mut self.new_skips);
        let mut message = skips
            .iter()
            .take(MAX_SKIPS_NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if skips.len() > MAX_SKIPS_NAMED {
            message.push_str(&format!("; and {} more", skips.len() - MAX_SKIPS_NAMED));
        }
        // Dated when the answer carrying them arrived: the hub answered fine, so skipped
        // objects must not make the source look failing.
        let at = self
            .meter
            .counts()
            .last_ok
            .unwrap_or_else(|| self.clock.now());
        self.last_error = Some((at, message));
    }

    /// Re-maps every Application to the new fleet.
    fn retarget(&mut self, seq: u64, fleet: Vec<ClusterTarget>) {
        self.targeted = Some(seq);
        if fleet == self.fleet {
            return;
        }
        self.index = FleetIndex::new(&fleet);
        self.fleet = fleet;
        let index = &self.index;
        let remap = |parsed: &mut ParsedApp| {
            let cluster = index.cluster_for(parsed.server.as_deref(), parsed.dest_name.as_deref());
            let changed = parsed.app.cluster != cluster;
            parsed.app.cluster = cluster;
            changed
        };
        let mut changed = false;
        for parsed in self.apps.items.values_mut() {
            changed |= remap(parsed);
        }
        for parsed in self.apps.pending.iter_mut().flat_map(|p| p.values_mut()) {
            remap(parsed);
        }
        self.apps.dirty |= changed;
        self.alerts_dirty = true;
    }

    fn ready_due(&self) -> bool {
        !self.ready_sent && self.apps.settled && self.sets.settled
    }

    /// Whether a flush would send anything beyond routine health.
    fn has_news(&self) -> bool {
        self.apps.dirty
            || self.sets.dirty
            || (self.alerts_dirty && self.apps.listed)
            || self.health_dirty
            || self.ready_due()
            || self.targeted.is_some()
    }

    /// Everything that changed since the last flush, complete sets first, `Ready` last.
    fn flush(&mut self) -> Vec<SourceEvent> {
        let now = self.clock.now();
        let mut out = Vec::new();
        if self.apps.listed && (self.apps.dirty || self.alerts_dirty) {
            if self.apps.dirty {
                out.push(SourceEvent::Applications {
                    source: self.source.clone(),
                    apps: self.apps.items.values().map(|p| p.app.clone()).collect(),
                });
            }
            let current = self
                .apps
                .items
                .iter()
                .filter_map(|(key, parsed)| {
                    let production = parsed
                        .app
                        .cluster
                        .as_ref()
                        .is_some_and(|c| self.index.is_production(c));
                    app_alert(&parsed.app, production, now).map(|a| (key.clone(), a))
                })
                .collect();
            let changes = self.alerts.settle(current, now);
            if !changes.gone.is_empty() {
                out.push(SourceEvent::AlertsGone(changes.gone));
            }
            if !changes.alerts.is_empty() {
                out.push(SourceEvent::Alerts(changes.alerts));
            }
            self.apps.dirty = false;
            self.alerts_dirty = false;
        }
        if self.sets.listed && self.sets.dirty {
            out.push(SourceEvent::ApplicationSets {
                source: self.source.clone(),
                sets: self.sets.items.values().cloned().collect(),
            });
            self.sets.dirty = false;
        }
        self.health_dirty = false;
        out.extend(self.health_event());
        if self.ready_due() {
            self.ready_sent = true;
            out.push(SourceEvent::Ready {
                source: self.source.clone(),
            });
        }
        if let Some(seq) = self.targeted.take() {
            out.push(SourceEvent::Targeted {
                source: self.source.clone(),
                seq,
            });
        }
        out
    }

    /// The source's health, when it differs from what was last sent.
    fn health_event(&mut self) -> Option<SourceEvent> {
        self.report_skips();
        let counts = self.meter.counts();
        for (picture_failure, kind) in [
            (&mut self.apps.failure, Kind::Applications),
            (&mut self.sets.failure, Kind::ApplicationSets),
        ] {
            // A success on that collection after the failure means it recovered.
            if picture_failure
                .as_ref()
                .is_some_and(|(seq, _)| counts.ok_since(kind.collection(), *seq))
            {
                *picture_failure = None;
            }
        }
        let failing = self.apps.failure.is_some() || self.sets.failure.is_some();
        // While a kind fails, its data is not fresh, whatever else answers.
        if !failing && counts.last_ok.is_some() {
            self.last_ok = counts.last_ok.max(self.last_ok);
        }
        let mut health = SourceHealth::new(self.source.clone(), POLL_INTERVAL_SECS);
        health.calls = counts.calls;
        health.errors = counts.errors + self.skipped + self.unreadable;
        health.throttles = counts.throttles;
        health.last_ok = self.last_ok;
        if let Some((at, message)) = &self.last_error {
            health.last_error = Some(message.clone());
            health.last_error_at = Some(*at);
        }
        if self.health_sent.as_ref() == Some(&health) {
            return None;
        }
        self.health_sent = Some(health.clone());
        Some(SourceEvent::Health(health))
    }
}
