//! The demo fleet: a deterministic simulator behind the same interface as real sources.
//!
//! `DemoFleet` is pure: time is passed in and every random-looking choice is a hash of the
//! seed, so the same seed and the same instants always produce the same events. `spawn`
//! wraps it in a tokio task fed by a (usually simulated) clock.
//!
//! The story, with default options: staging is finishing its wave when the demo starts;
//! prod-1 follows; during prod-1's soak `eks-apiserver-5xx-high` fires on a prod-1 cluster
//! and the circuit breaker halts the rollout; the alarm clears about 15 minutes later and
//! an operator's resume lets the rollout carry on to prod-2. Meanwhile gate alarms on
//! prod-2 clusters (a wave not yet started) fire without tripping anything.

mod alarms;
mod driver;
mod fleet;
mod hash;
mod kube;
mod metrics;
mod policy;
mod prometheus;
mod remediate;
mod task;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;

pub use task::spawn;

use self::alarms::{Alarm, Episode, Firing, minute_time};
use self::fleet::Member;
use crate::model::{
    Alert, AlertState, Cluster, ClusterId, MetricName, MetricSample, Rollout, SourceEvent,
    SourceHealth, Timestamp,
};
use crate::rollout::{self, RolloutError};

/// The demo source's name, in `SourceHealth`, inventories and `Ready`.
pub const SOURCE_NAME: &str = "demo";
/// The demo "polls" CloudWatch once a minute, like the real source.
const POLL_INTERVAL_SECS: u64 = 60;
/// Minutes of metric history sent when a cluster first shows up (or comes into focus).
const BACKFILL_MINUTES: i64 = 60;
/// Fleet size bounds: one cluster up to a large enterprise fleet.
const MAX_CLUSTERS: usize = 10_000;

/// How the demo fleet is built and run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Seed of every random-looking choice: same seed, same story.
    pub seed: u64,
    /// Number of clusters, 1 to 10,000 (values outside are clamped).
    pub clusters: usize,
    /// Simulated seconds per real second, for the simulated clock that drives `spawn`.
    pub speed: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 7,
            clusters: 48,
            speed: 10.0,
        }
    }
}

/// The simulated fleet: clusters, alarms, metrics and the `eks-1-31-upgrade` rollout.
pub struct DemoFleet {
    seed: u64,
    /// The minute (since the Unix epoch) the demo started in.
    start_minute: i64,
    /// How far the simulation has run.
    now: Timestamp,
    /// The next minute boundary to process; the boundary at minute `b` evaluates the
    /// datapoint of minute `b - 1`.
    next_boundary: i64,
    clusters: Vec<Cluster>,
    members: Vec<Member>,
    wave_clusters: Vec<Vec<usize>>,
    rollout: Rollout,
    /// Scripted alarm episodes (the story); random ones are computed on demand.
    incidents: Vec<Episode>,
    firing: BTreeMap<(usize, Alarm), Firing>,
    /// Degraded add-ons and insights, fixed for the demo's life.
    eks_alerts: Vec<Alert>,
    focus: Option<usize>,
    /// Whether the prod-1 incident has been scheduled (it is, once prod-1 starts soaking).
    story_scheduled: bool,
    health: SourceHealth,
    /// Events produced by a refused command's catch-up, delivered with the next call.
    backlog: Vec<SourceEvent>,
    /// Prometheus alerts, as a simulated Alertmanager holds them.
    prometheus: prometheus::DemoAlertmanager,
    /// Policy findings, as Security Hub and the clusters' PolicyReports hold them.
    policies: policy::DemoPolicies,
}

/// What one call has changed, turned into events at the end of the call.
#[derive(Default)]
struct Outbox {
    clusters: BTreeSet<usize>,
    alerts: Vec<Alert>,
    rollout: bool,
    /// A gate alarm changed: gate statuses need recomputing.
    gates: bool,
    /// Metric points per cluster index (allocated on the first point).
    samples: Vec<Vec<MetricSample>>,
}

impl Outbox {
    fn samples(&mut self, c: usize, clusters: usize) -> &mut Vec<MetricSample> {
        if self.samples.is_empty() {
            self.samples = vec![Vec::new(); clusters];
        }
        &mut self.samples[c]
    }
}

impl DemoFleet {
    /// Builds the fleet as it stands at `start` (staging mid-wave, a few alarms firing).
    pub fn new(options: &DemoOptions, start: Timestamp) -> Self {
        let n = options.clusters.clamp(1, MAX_CLUSTERS);
        let seed = options.seed;
        // Whole seconds keep the timeline readable; sub-second precision adds nothing.
        let start = start - TimeDelta::nanoseconds(i64::from(start.timestamp_subsec_nanos()));
        let start_minute = start.timestamp().div_euclid(60);
        let inventory = fleet::build(seed, n);
        let mut demo = Self {
            seed,
            start_minute,
            now: start,
            next_boundary: start_minute + 1,
            clusters: inventory.clusters,
            members: inventory.members,
            wave_clusters: inventory.wave_clusters,
            rollout: Rollout {
                name: String::new(),
                source: SOURCE_NAME.into(),
                description: String::new(),
                waves: Vec::new(),
                gates: Vec::new(),
                unmatched: Vec::new(),
            },
            incidents: Vec::new(),
            firing: BTreeMap::new(),
            eks_alerts: Vec::new(),
            focus: None,
            story_scheduled: false,
            health: SourceHealth::new(SOURCE_NAME, POLL_INTERVAL_SECS),
            backlog: Vec::new(),
            prometheus: Default::default(),
            policies: Default::default(),
        };
        demo.fill_etcd_on_two_clusters();
        demo.rollout = demo.initial_rollout(start);
        demo.script_incidents();
        demo.eks_alerts = fleet::eks_alerts(seed, &demo.clusters, start);
        demo.prometheus = prometheus::DemoAlertmanager::new(&demo.clusters, start);
        // The staging cluster whose turn is last: its failing policy holds the wave.
        let held = demo
            .rollout
            .waves
            .get(fleet::STAGING)
            .and_then(|w| {
                w.cells
                    .iter()
                    .rev()
                    .find(|c| c.phase == crate::model::CellPhase::Pending)
            })
            .and_then(|cell| demo.clusters.iter().position(|c| c.id == cell.cluster));
        demo.policies =
            policy::DemoPolicies::new(seed, &demo.clusters, &demo.wave_clusters, held, start);
        // Alarms as they stood at the last minute boundary before the start.
        let minute = start_minute - 1;
        for c in 0..n {
            for alarm in Alarm::ALL {
                if let Some(severity) = demo.alarm_state(c, alarm, minute) {
                    let since = demo.fired_before_start(c, alarm, minute);
                    demo.firing.insert((c, alarm), Firing { since, severity });
                }
            }
        }
        let mut out = Outbox::default();
        demo.step_rollout(start, &mut out);
        demo.guard_pass(start, &mut out);
        let firing = demo.firing_gates();
        rollout::sync_gates(&mut demo.rollout, &firing);
        demo
    }

    /// Inventory, alerts, rollout, 60 minutes of `MetricName::SUMMARY` backfill for every
    /// cluster, Health, then Ready.
    pub fn initial_events(&mut self) -> Vec<SourceEvent> {
        let mut events = std::mem::take(&mut self.backlog);
        events.push(SourceEvent::ClusterInventory {
            source: SOURCE_NAME.into(),
            clusters: self.clusters.clone(),
        });
        let minute = self.last_minute();
        let mut alerts = self.eks_alerts.clone();
        alerts.extend(self.prometheus.alerts.iter().cloned());
        alerts.extend(self.policies.alerts(&self.clusters, self.now));
        alerts.extend(self.firing.iter().map(|(&(c, alarm), f)| {
            self.alarm_alert(c, alarm, *f, AlertState::Firing, f.since, minute)
        }));
        events.push(SourceEvent::Alerts(alerts));
        events.push(SourceEvent::Rollout(self.rollout.clone()));
        events.push(self.applications_event());
        events.push(SourceEvent::Permissions {
            source: SOURCE_NAME.into(),
            cluster: None,
            checks: ["pause-wave", "resume-wave"]
                .into_iter()
                .map(|action| crate::model::PermissionCheck {
                    action: action.into(),
                    checked: "demo rollout".into(),
                    namespace: None,
                    allowed: true,
                    reason: "the demo allows every action".into(),
                })
                .collect(),
        });
        let mut samples = Vec::new();
        for c in 0..self.clusters.len() {
            let metrics: &[MetricName] = if self.focus == Some(c) {
                &MetricName::ALL
            } else {
                &MetricName::SUMMARY
            };
            samples.reserve(metrics.len() * BACKFILL_MINUTES as usize);
            self.backfill(c, metrics, &mut samples);
            events.push(SourceEvent::Metrics {
                cluster: self.clusters[c].id.clone(),
                samples: std::mem::take(&mut samples),
            });
        }
        events.push(SourceEvent::Health(self.touch_health()));
        events.push(SourceEvent::Ready {
            source: SOURCE_NAME.into(),
        });
        events
    }

    /// Everything that happened between the last call and `now`: cell transitions, cluster
    /// changes, alarms firing and clearing, breaker trips, metric minutes, health.
    pub fn advance_to(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let mut out = Outbox::default();
        self.run_until(now, &mut out);
        let alerts_changed = !out.alerts.is_empty();
        let mut events = self.flush(out);
        if alerts_changed {
            events.push(self.applications_event());
            events.extend(self.focus_signals());
        }
        events
    }

    /// The cluster on screen: backfills the last 60 minutes of every metric for it, and
    /// from then on each minute carries the full set for it (others get only
    /// `MetricName::SUMMARY`). `None`, or a cluster the demo doesn't have, clears the focus.
    pub fn focus(&mut self, cluster: Option<ClusterId>, now: Timestamp) -> Vec<SourceEvent> {
        let mut out = Outbox::default();
        self.run_until(now, &mut out);
        self.focus = cluster.and_then(|id| self.clusters.iter().position(|c| c.id == id));
        if let Some(c) = self.focus {
            let n = self.clusters.len();
            let mut samples = std::mem::take(out.samples(c, n));
            self.backfill(c, &MetricName::ALL, &mut samples);
            *out.samples(c, n) = samples;
        }
        let mut events = self.flush(out);
        events.extend(self.focus_signals());
        events
    }

    /// The focused cluster's inside, as its API server would tell it.
    fn focus_signals(&self) -> Option<SourceEvent> {
        let c = self.focus?;
        let firing: Vec<&str> = self
            .firing
            .keys()
            .filter(|(fc, _)| *fc == c)
            .map(|(_, alarm)| alarm.name())
            .collect();
        let mut signals = kube::signals(self.seed, c, &self.clusters[c], &firing, self.now);
        signals.policy_reports = self.policy_reports(c);
        Some(SourceEvent::KubeSignals {
            cluster: self.clusters[c].id.clone(),
            signals: Box::new(signals),
        })
    }

    /// The demo hub's Applications; the ones on clusters answering 5xx are degraded.
    fn applications_event(&self) -> SourceEvent {
        let failing: Vec<usize> = self
            .firing
            .keys()
            .filter(|(_, alarm)| alarm.name().starts_with("eks-apiserver-5xx"))
            .map(|(c, _)| *c)
            .collect();
        SourceEvent::Applications {
            source: SOURCE_NAME.into(),
            apps: kube::applications(self.seed, &self.clusters, &failing),
        }
    }

    /// Pauses wave `wave` (index) of `rollout` at `now` (after catching up to it).
    pub fn pause_wave(
        &mut self,
        rollout: &str,
        wave: usize,
        by: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<SourceEvent>, RolloutError> {
        let mut out = Outbox::default();
        self.run_until(now, &mut out);
        let result = self
            .check_rollout(rollout)
            .and_then(|()| rollout::pause(&mut self.rollout, wave, by, reason, self.now));
        if let Err(error) = result {
            self.backlog = self.flush(out);
            return Err(error);
        }
        tracing::info!(rollout, wave, by, reason, "demo: wave paused");
        out.rollout = true;
        Ok(self.flush(out))
    }

    /// Resumes a paused or halted wave at `now`; refused while a gate alarm fires on a
    /// cluster of this or an earlier wave.
    pub fn resume_wave(
        &mut self,
        rollout: &str,
        wave: usize,
        by: &str,
        now: Timestamp,
    ) -> Result<Vec<SourceEvent>, RolloutError> {
        let mut out = Outbox::default();
        self.run_until(now, &mut out);
        let firing = self.firing_gates();
        let result = self
            .check_rollout(rollout)
            .and_then(|()| rollout::resume(&mut self.rollout, wave, self.now, &firing));
        if let Err(error) = result {
            self.backlog = self.flush(out);
            return Err(error);
        }
        tracing::info!(rollout, wave, by, "demo: wave resumed");
        out.rollout = true;
        let now = self.now;
        self.step_rollout(now, &mut out);
        Ok(self.flush(out))
    }

    /// The rollout as it stands (for the task's replies and for tests).
    pub(crate) fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    fn check_rollout(&self, name: &str) -> Result<(), RolloutError> {
        if name == self.rollout.name {
            Ok(())
        } else {
            Err(RolloutError::NoRollout(name.into()))
        }
    }

    /// The newest complete metric minute.
    fn last_minute(&self) -> i64 {
        self.next_boundary - 2
    }

    /// Appends the last `BACKFILL_MINUTES` of `metrics` for cluster `c`.
    fn backfill(&self, c: usize, metrics: &[MetricName], out: &mut Vec<MetricSample>) {
        let last = self.last_minute();
        let profile = &self.members[c].profile;
        for minute in last - BACKFILL_MINUTES + 1..=last {
            let on = self.conditions(c, minute);
            metrics::sample(
                self.seed,
                c,
                profile,
                metrics,
                minute,
                self.start_minute,
                on,
                out,
            );
        }
    }

    /// Runs the simulation up to `now`: rollout events and minute boundaries, in time
    /// order, so the outcome doesn't depend on how often this is called.
    fn run_until(&mut self, now: Timestamp, out: &mut Outbox) {
        loop {
            let boundary = minute_time(self.next_boundary);
            let progressed = match self.next_rollout_event() {
                Some(at) if at <= boundary && at <= now => {
                    let at = at.max(self.now);
                    self.now = at;
                    self.step_rollout(at, out)
                }
                _ => false,
            };
            if progressed {
                continue;
            }
            if boundary > now {
                break;
            }
            self.now = self.now.max(boundary);
            self.process_boundary(out);
        }
        self.now = self.now.max(now);
        if out.gates || out.rollout {
            let firing = self.firing_gates();
            if rollout::sync_gates(&mut self.rollout, &firing) {
                out.rollout = true;
            }
        }
    }

    /// One minute boundary: the minute just finished gets its datapoints, and every alarm
    /// is evaluated on them.
    fn process_boundary(&mut self, out: &mut Outbox) {
        let boundary = self.next_boundary;
        let minute = boundary - 1;
        let at = minute_time(boundary);
        let n = self.clusters.len();
        for c in 0..n {
            let metrics: &[MetricName] = if self.focus == Some(c) {
                &MetricName::ALL
            } else {
                &MetricName::SUMMARY
            };
            let on = self.conditions(c, minute);
            let profile = self.members[c].profile;
            metrics::sample(
                self.seed,
                c,
                &profile,
                metrics,
                minute,
                self.start_minute,
                on,
                out.samples(c, n),
            );
        }
        for c in 0..n {
            for alarm in Alarm::ALL {
                let state = self.alarm_state(c, alarm, minute);
                match (self.firing.get(&(c, alarm)).copied(), state) {
                    (None, Some(severity)) => {
                        let firing = Firing {
                            since: at,
                            severity,
                        };
                        self.firing.insert((c, alarm), firing);
                        out.alerts.push(self.alarm_alert(
                            c,
                            alarm,
                            firing,
                            AlertState::Firing,
                            at,
                            minute,
                        ));
                        if alarm.is_gate() {
                            self.guard_pass(at, out);
                        }
                    }
                    (Some(firing), None) => {
                        self.firing.remove(&(c, alarm));
                        out.alerts.push(self.alarm_alert(
                            c,
                            alarm,
                            firing,
                            AlertState::Resolved,
                            at,
                            minute,
                        ));
                        out.gates |= alarm.is_gate();
                    }
                    (Some(firing), Some(severity)) if firing.severity != severity => {
                        let firing = Firing { severity, ..firing };
                        self.firing.insert((c, alarm), firing);
                        out.alerts.push(self.alarm_alert(
                            c,
                            alarm,
                            firing,
                            AlertState::Firing,
                            at,
                            minute,
                        ));
                    }
                    _ => {}
                }
            }
        }
        self.fix_policies(minute, at, out);
        self.next_boundary += 1;
    }

    /// Gate alarms firing now, as (alarm, cluster).
    pub(super) fn firing_gates(&self) -> Vec<(String, ClusterId)> {
        self.firing
            .keys()
            .filter(|(_, alarm)| alarm.is_gate())
            .map(|&(c, alarm)| (alarm.name().to_string(), self.clusters[c].id.clone()))
            .collect()
    }

    /// Counts a call in the source's health and returns a copy to send.
    fn touch_health(&mut self) -> SourceHealth {
        self.health.last_ok = Some(self.now);
        self.health.calls += 1;
        self.health.clone()
    }

    /// Turns what changed into events: cluster changes, the rollout, alerts, metrics,
    /// then health.
    fn flush(&mut self, out: Outbox) -> Vec<SourceEvent> {
        let mut events = std::mem::take(&mut self.backlog);
        events.extend(
            out.clusters
                .iter()
                .map(|&c| SourceEvent::ClusterChanged(Box::new(self.clusters[c].clone()))),
        );
        if out.rollout {
            events.push(SourceEvent::Rollout(self.rollout.clone()));
        }
        if !out.alerts.is_empty() {
            events.push(SourceEvent::Alerts(out.alerts));
        }
        events.extend(
            out.samples
                .into_iter()
                .enumerate()
                .filter(|(_, samples)| !samples.is_empty())
                .map(|(c, samples)| SourceEvent::Metrics {
                    cluster: self.clusters[c].id.clone(),
                    samples,
                }),
        );
        events.push(SourceEvent::Health(self.touch_health()));
        events
    }
}
