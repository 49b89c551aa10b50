//! The source as a task: follows the app's targets and focus, keeps the pool of spokes,
//! connects (with backoff), starts and stops the watchers, and reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::connect::{self, ConnectError};
use super::dial::{Dial, NO_ROUTE, Route};
use super::permissions::{self, SPOKE_WRITES};
use super::pool::Pool;
use super::{SOURCE_NAME, spoke};
use crate::clock::Clock;
use crate::model::{
    ClusterId, Connection, KubeSignals, PermissionCheck, SourceEvent, SourceHealth,
};
use crate::sources::{ClusterTarget, SourceCommand};

/// Health is re-sent this often (and after every connection attempt).
pub(super) const HEALTH_INTERVAL: Duration = Duration::from_secs(60);
/// First wait after a failed connection that may heal by itself (network, 5xx).
const TRANSIENT_BACKOFF: Duration = Duration::from_secs(30);
/// First wait after a failure someone has to fix (credentials, RBAC, a bad CA).
const PERMANENT_BACKOFF: Duration = Duration::from_secs(120);
/// The longest wait between attempts on one cluster.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a stopped watcher may take to finish before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// What the source says while no cluster is of interest, before and after any answered.
const WAITING_FIRST: &str = "no cluster of interest yet";
const WAITING_AGAIN: &str = "no cluster of interest now";
/// Calls one successful connection makes: `GET /version` and one review per write.
const CONNECT_CALLS: u64 = 1 + SPOKE_WRITES.len() as u64;

/// A cluster's slot in the pool.
enum Spoke {
    /// Dialing, probing and checking permissions; `attempt` tells a late result from a
    /// current one.
    Connecting { attempt: u64, task: JoinHandle<()> },
    /// Its watchers run until `stop` is set.
    Watching {
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
}

/// What a connection attempt came to.
struct Outcome {
    id: ClusterId,
    attempt: u64,
    /// Calls made, successful or not.
    calls: u64,
    result: Result<(kube::Client, Vec<PermissionCheck>), ConnectError>,
}

/// Failed attempts on one cluster, and when the next may start.
struct Backoff {
    failures: u32,
    retry_at: Instant,
}

/// The events channel is closed: the app is gone.
struct Closed;

pub(super) struct Source<D> {
    dial: Arc<D>,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
    pool: Pool<Spoke>,
    fleet: HashMap<ClusterId, ClusterTarget>,
    interest: Vec<ClusterId>,
    /// The engine's `Targets` applied but not yet answered.
    targeted: Option<u64>,
    focus: Option<ClusterId>,
    /// The connection state last reported for each cluster, so nothing is repeated.
    shown: HashMap<ClusterId, Connection>,
    backoff: HashMap<ClusterId, Backoff>,
    health: SourceHealth,
    next_attempt: u64,
    outcomes_tx: mpsc::Sender<Outcome>,
    outcomes: mpsc::Receiver<Outcome>,
}

impl<D: Dial> Source<D> {
    pub(super) fn new(
        dial: Arc<D>,
        pool_size: usize,
        idle: Duration,
        clock: Clock,
        events: mpsc::Sender<SourceEvent>,
    ) -> Self {
        // Every attempt in flight holds a pool slot, so this never fills up.
        let (outcomes_tx, outcomes) = mpsc::channel(pool_size.max(1));
        Self {
            dial,
            clock,
            events,
            pool: Pool::new(pool_size, idle),
            fleet: HashMap::new(),
            interest: Vec::new(),
            targeted: None,
            focus: None,
            shown: HashMap::new(),
            backoff: HashMap::new(),
            health: SourceHealth::new(SOURCE_NAME, HEALTH_INTERVAL.as_secs()),
            next_attempt: 0,
            outcomes_tx,
            outcomes,
        }
    }

    /// Records a problem found before the loop started (an unreadable kubeconfig).
    pub(super) fn note_error(&mut self, error: String) {
        let now = self.clock.now();
        self.health.errors += 1;
        self.health.last_error = Some(error);
        self.health.last_error_at = Some(now);
    }

    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<SourceCommand>) {
        // Nothing to wait for: the first picture is "nothing connected yet". It is no
        // success, though: `last_ok` waits for a cluster to answer.
        self.health.waiting = Some(WAITING_FIRST.into());
        let ready = SourceEvent::Ready {
            source: SOURCE_NAME.into(),
        };
        if self.emit(ready).await.is_err() || self.report_health().await.is_err() {
            return;
        }
        let mut health_tick =
            tokio::time::interval_at(Instant::now() + HEALTH_INTERVAL, HEALTH_INTERVAL);
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut inbox_open = true;
        loop {
            let wake = self.next_wake();
            let step = tokio::select! {
                biased;
                () = self.events.closed() => Err(Closed),
                command = inbox.recv(), if inbox_open => match command {
                    Some(command) => {
                        self.command(command);
                        Ok(())
                    }
                    None => {
                        inbox_open = false;
                        Ok(())
                    }
                },
                Some(outcome) = self.outcomes.recv() => self.outcome(outcome).await,
                _ = health_tick.tick() => self.report_health().await,
                () = crate::sources::sleep_until(wake) => Ok(()),
            };
            if step.is_err() || self.reconcile().await.is_err() {
                break;
            }
            // Clusters of interest came or all went: say so now, not at the next tick.
            if self.wanted().is_empty() != self.health.waiting.is_some()
                && self.report_health().await.is_err()
            {
                break;
            }
            // Answered once the connections the targets ask for are under way.
            if let Some(seq) = self.targeted.take() {
                let answer = SourceEvent::Targeted {
                    source: SOURCE_NAME.into(),
                    seq,
                };
                if self.emit(answer).await.is_err() {
                    break;
                }
            }
        }
        self.stop_all();
    }

    fn command(&mut self, command: SourceCommand) {
        match command {
            SourceCommand::Focus(id) => self.focus = id,
            SourceCommand::Targets {
                seq,
                fleet,
                interest,
            } => {
                self.fleet = fleet.into_iter().map(|t| (t.id.clone(), t)).collect();
                self.interest = interest;
                self.targeted = Some(seq);
            }
            SourceCommand::PauseWave { reply, .. } | SourceCommand::ResumeWave { reply, .. } => {
                // The requester may have stopped waiting.
                let _ = reply.send(Err("the Kubernetes source runs no rollouts".into()));
            }
            SourceCommand::Remediate(request) => {
                let target = self.fleet.get(&request.remediation.cluster).cloned();
                tokio::spawn(super::actions::run(self.dial.clone(), target, request));
            }
            command @ (SourceCommand::SilenceAlert { .. }
            | SourceCommand::ExpireSilences { .. }
            | SourceCommand::UpdateFindings { .. }
            | SourceCommand::Relay { .. }) => {
                crate::sources::refuse_wave(command, "the Kubernetes source")
            }
        }
    }

    /// The focused cluster, if it is one of the fleet.
    fn focused(&self) -> Option<&ClusterId> {
        self.focus
            .as_ref()
            .filter(|id| self.fleet.contains_key(*id))
    }

    /// The clusters to connect, most important first: the focused one, then the interest
    /// list in the app's order. Only clusters of the fleet: others have no target.
    fn wanted(&self) -> Vec<ClusterId> {
        let mut wanted: Vec<ClusterId> = Vec::new();
        for id in self.focused().into_iter().chain(&self.interest) {
            if self.fleet.contains_key(id) && !wanted.contains(id) {
                wanted.push(id.clone());
            }
        }
        wanted
    }

    /// Brings the pool in line with what is wanted now.
    async fn reconcile(&mut self) -> Result<(), Closed> {
        let now = Instant::now();
        let wanted = self.wanted();
        let focused = self.focused().is_some();
        self.pool.set_interest(&wanted, focused, now);

        // Clusters gone from the fleet close at once; idle ones at their deadline.
        let gone: Vec<ClusterId> = self
            .pool
            .ids()
            .into_iter()
            .filter(|id| !self.fleet.contains_key(id))
            .collect();
        for id in gone {
            if let Some(spoke) = self.pool.remove(&id) {
                self.close(id, spoke, Connection::Idle);
            }
        }
        for (id, spoke) in self.pool.expire(now) {
            self.close(id, spoke, Connection::Idle);
        }
        self.free_ended_watchers(now);
        let pool_full = unavailable(&format!(
            "not connected: {} clusters are connected already ([kubernetes] pool_size)",
            self.pool.capacity()
        ));

        for (position, id) in wanted.iter().enumerate() {
            // Rank 0 is the focused cluster's alone, as in the pool.
            let rank = position + usize::from(!focused);
            if self.pool.contains(id) {
                continue;
            }
            if self.backoff.get(id).is_some_and(|b| b.retry_at > now) {
                continue;
            }
            let Some(target) = self.fleet.get(id).cloned() else {
                continue;
            };
            let Some(route) = self.dial.route(&target) else {
                self.show(id, unavailable(NO_ROUTE)).await?;
                continue;
            };
            if !self.pool.has_room(rank == 0) {
                self.show(id, pool_full.clone()).await?;
                continue;
            }
            let attempt = self.next_attempt;
            self.next_attempt += 1;
            let task = tokio::spawn(attempt_connection(
                self.dial.clone(),
                target,
                route,
                attempt,
                self.outcomes_tx.clone(),
            ));
            match self
                .pool
                .admit(id.clone(), Spoke::Connecting { attempt, task }, rank, now)
            {
                Ok(evicted) => {
                    for (id, spoke) in evicted {
                        // Pushed out while wanted (for the focused cluster), or idle.
                        let after = if wanted.contains(&id) {
                            pool_full.clone()
                        } else {
                            Connection::Idle
                        };
                        self.close(id, spoke, after);
                    }
                }
                Err(spoke) => stop(spoke),
            }
        }

        // What is no longer wanted and holds no slot is idle, whatever it was shown as.
        let idle: Vec<ClusterId> = self
            .shown
            .iter()
            .filter(|(id, c)| {
                **c != Connection::Idle && !self.pool.contains(id) && !wanted.contains(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.show(&id, Connection::Idle).await?;
        }
        Ok(())
    }

    /// A watcher that ended by itself (it reported why) frees its slot; its cluster is
    /// dialed again after a backoff, as after a failed connection.
    fn free_ended_watchers(&mut self, now: Instant) {
        for id in self.pool.ids() {
            let ended = matches!(
                self.pool.get_mut(&id),
                Some(Spoke::Watching { task, .. }) if task.is_finished()
            );
            if !ended {
                continue;
            }
            self.pool.remove(&id);
            let failures = self.backoff.get(&id).map_or(0, |b| b.failures) + 1;
            let wait = backoff_after(failures, true);
            tracing::info!(cluster = %id, retry_in_secs = wait.as_secs(), "watcher ended");
            self.backoff.insert(
                id,
                Backoff {
                    failures,
                    retry_at: now + wait,
                },
            );
        }
    }

    async fn outcome(&mut self, outcome: Outcome) -> Result<(), Closed> {
        let Outcome {
            id,
            attempt,
            calls,
            result,
        } = outcome;
        self.health.calls += calls;
        let current = matches!(
            self.pool.get_mut(&id),
            Some(Spoke::Connecting { attempt: a, .. }) if *a == attempt
        );
        if !current {
            // Closed or evicted while connecting: the client is dropped unused.
            return Ok(());
        }
        let now = self.clock.now();
        match result {
            Ok((client, checks)) => {
                self.backoff.remove(&id);
                let Some(target) = self.fleet.get(&id).cloned() else {
                    self.pool.remove(&id);
                    return Ok(());
                };
                let (stop_tx, stop_rx) = watch::channel(false);
                let task = tokio::spawn(spoke::watch(
                    client,
                    target,
                    self.clock.clone(),
                    self.events.clone(),
                    stop_rx,
                ));
                if let Some(slot) = self.pool.get_mut(&id) {
                    *slot = Spoke::Watching {
                        stop: stop_tx,
                        task,
                    };
                }
                // The watcher reports the connection with what it sees.
                self.shown.insert(id.clone(), Connection::Connected);
                self.health.last_ok = Some(now);
                self.emit(SourceEvent::Permissions {
                    source: SOURCE_NAME.into(),
                    cluster: Some(id),
                    checks,
                })
                .await?;
            }
            Err(error) => {
                self.pool.remove(&id);
                let failures = self.backoff.get(&id).map_or(0, |b| b.failures) + 1;
                let wait = backoff_after(failures, error.is_transient());
                tracing::info!(cluster = %id, %error, retry_in_secs = wait.as_secs(), "cannot connect");
                self.backoff.insert(
                    id.clone(),
                    Backoff {
                        failures,
                        retry_at: Instant::now() + wait,
                    },
                );
                self.health.errors += 1;
                if matches!(error, ConnectError::Api { code: 429, .. }) {
                    self.health.throttles += 1;
                }
                self.health.last_error = Some(error.to_string());
                self.health.last_error_at = Some(now);
                self.show(&id, unavailable(&error.to_string())).await?;
            }
        }
        self.report_health().await
    }

    /// Stops a slot's work and reports the cluster as `after` (idle, or not connected
    /// for want of room) once its watcher has finished, so a last update from the watcher
    /// cannot land after it.
    fn close(&mut self, id: ClusterId, spoke: Spoke, after: Connection) {
        self.shown.insert(id.clone(), after.clone());
        let events = self.events.clone();
        let last = signals(after, &self.clock);
        let finished = match spoke {
            Spoke::Connecting { task, .. } => {
                task.abort();
                None
            }
            Spoke::Watching { stop, task } => {
                let _ = stop.send(true);
                Some(task)
            }
        };
        tokio::spawn(async move {
            if let Some(mut task) = finished
                && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
            {
                tracing::warn!(cluster = %id, "watcher did not stop in time; aborted");
                task.abort();
            }
            let _ = events
                .send(SourceEvent::KubeSignals {
                    cluster: id,
                    signals: Box::new(last),
                })
                .await;
        });
    }

    /// Reports `connection` for `id` unless that is what was reported last.
    async fn show(&mut self, id: &ClusterId, connection: Connection) -> Result<(), Closed> {
        if self.shown.get(id) == Some(&connection) {
            return Ok(());
        }
        self.shown.insert(id.clone(), connection.clone());
        let event = SourceEvent::KubeSignals {
            cluster: id.clone(),
            signals: Box::new(signals(connection, &self.clock)),
        };
        self.emit(event).await
    }

    /// Fresh while at least one wanted cluster is connected (one failing cluster shows
    /// as the last error, not as a failing source); waiting, neither healthy nor failing,
    /// while no cluster is of interest. Never a success no cluster gave.
    async fn report_health(&mut self) -> Result<(), Closed> {
        let wanted = self.wanted();
        let connected = wanted
            .iter()
            .any(|id| self.shown.get(id) == Some(&Connection::Connected));
        if connected {
            self.health.last_ok = Some(self.clock.now());
        }
        self.health.waiting = wanted.is_empty().then(|| {
            if self.health.last_ok.is_none() {
                WAITING_FIRST.into()
            } else {
                WAITING_AGAIN.into()
            }
        });
        self.emit(SourceEvent::Health(self.health.clone())).await
    }

    /// The next time something is due: an idle deadline or a retry.
    fn next_wake(&self) -> Option<Instant> {
        let wanted = self.wanted();
        let retries = wanted
            .iter()
            .filter(|id| !self.pool.contains(id))
            .filter_map(|id| self.backoff.get(id).map(|b| b.retry_at));
        self.pool.next_expiry().into_iter().chain(retries).min()
    }

    fn stop_all(&mut self) {
        for id in self.pool.ids() {
            if let Some(spoke) = self.pool.remove(&id) {
                stop(spoke);
            }
        }
    }

    async fn emit(&self, event: SourceEvent) -> Result<(), Closed> {
        self.events.send(event).await.map_err(|_| Closed)
    }
}

/// Dials, proves the client with `GET /version`, then reviews the writes fleetdeck offers.
async fn attempt_connection<D: Dial>(
    dial: Arc<D>,
    target: ClusterTarget,
    route: Route,
    attempt: u64,
    outcomes: mpsc::Sender<Outcome>,
) {
    let id = target.id.clone();
    let (calls, result) = match dial.dial(&target, route).await {
        Err(e) => (0, Err(e)),
        Ok((client, url)) => match connect::probe(&client, &target, &url).await {
            Err(e) => (1, Err(e)),
            Ok(()) => {
                let checks =
                    permissions::check(&client, &SPOKE_WRITES, &target.id.name, &url).await;
                (CONNECT_CALLS, Ok((client, checks)))
            }
        },
    };
    // The source may be gone; then so is the interest in this result.
    let _ = outcomes
        .send(Outcome {
            id,
            attempt,
            calls,
            result,
        })
        .await;
}

fn stop(spoke: Spoke) {
    match spoke {
        Spoke::Connecting { task, .. } => task.abort(),
        Spoke::Watching { stop, .. } => {
            let _ = stop.send(true);
        }
    }
}

/// Doubling from the first wait to the cap, with ±20 % jitter so clusters that failed
/// together (a VPN drop) do not retry together.
fn backoff_after(failures: u32, transient: bool) -> Duration {
    let first = if transient {
        TRANSIENT_BACKOFF
    } else {
        PERMANENT_BACKOFF
    };
    let exponent = failures.saturating_sub(1).min(10);
    let wait = first.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    wait.mul_f64(0.8 + 0.4 * fastrand::f64())
}

fn unavailable(reason: &str) -> Connection {
    Connection::Unavailable {
        reason: reason.to_string(),
    }
}

/// Signals carrying only a connection state.
fn signals(connection: Connection, clock: &Clock) -> KubeSignals {
    KubeSignals {
        connection,
        nodes_total: 0,
        not_ready_nodes: Vec::new(),
        crashing_pods: Vec::new(),
        warning_events: Vec::new(),
        blocking_pdbs: Vec::new(),
        single_replica: Vec::new(),
        policy_reports: None,
        updated: clock.now(),
    }
}
