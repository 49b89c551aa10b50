//! The CloudWatch source: one task per account and region, reading
//!
//! - **alarms** every 60 s: `DescribeAlarms` (metric and composite, every page), each tied
//!   to a cluster by its `ClusterName` dimension or else its cluster tag
//!   (`ListTagsForResource`, cached per alarm, refreshed hourly), sent as alerts;
//! - **summary metrics** (`MetricName::SUMMARY`) of every cluster every
//!   `summary_interval_secs` (and at once for a cluster that appears), and
//! - **every metric** (`MetricName::ALL`) of the cluster on screen every 60 s (at once on a
//!   new focus), through `GetMetricData`, 500 queries a call, asking only for minutes not
//!   already held.
//!
//! `GetMetricData` is billed per metric requested, so the source reports what its cadence
//! costs (`SourceHealth::cost_usd_per_hour`; see `metrics::CostMeter`). Failures keep what
//! was had (it goes stale) and are retried next cycle.

mod alarms;
mod metrics;
mod poller;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};

use self::poller::Poller;
use crate::clock::Clock;
use crate::config::Cloudwatch;
use crate::model::{ClusterId, SourceEvent};
use crate::sources::aws::AwsScope;
use crate::sources::{SourceCommand, SourceHandle};

/// Alarms and the focused cluster's metrics are read this often; also the health
/// report's poll interval (stale after three).
const POLL_INTERVAL_SECS: u64 = 60;
/// Commands are rare (a key press); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// The source's name in health reports and `Ready`: `cloudwatch:{account}/{region}`.
pub fn source_name(scope: &AwsScope) -> String {
    format!("cloudwatch:{}", scope.label())
}

/// Starts the CloudWatch source for `scope`'s account and region. `clusters` is the EKS
/// source's cluster list there (it may start empty). Sends `Ready` after the first alarm
/// poll, success or not; exits when `events` closes.
pub fn spawn(
    scope: AwsScope,
    settings: Cloudwatch,
    events: mpsc::Sender<SourceEvent>,
    clusters: watch::Receiver<Vec<ClusterId>>,
) -> SourceHandle {
    let client = aws_sdk_cloudwatch::Client::new(&scope.sdk);
    spawn_with_client(client, scope, settings, events, clusters)
}

/// [`spawn`] with the client given, so tests can hand in a mocked one.
pub(crate) fn spawn_with_client(
    client: aws_sdk_cloudwatch::Client,
    scope: AwsScope,
    settings: Cloudwatch,
    events: mpsc::Sender<SourceEvent>,
    clusters: watch::Receiver<Vec<ClusterId>>,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let name = source_name(&scope);
    let mut settings = settings;
    // The config file enforces the minimum; settings built in code get it here.
    settings.summary_interval_secs = settings
        .summary_interval_secs
        .max(Cloudwatch::MIN_SUMMARY_INTERVAL_SECS);
    let summary_every = Duration::from_secs(settings.summary_interval_secs);
    let poller = Poller::new(client, &scope, settings);
    tokio::spawn(run(
        poller,
        scope.clock,
        summary_every,
        events,
        inbox,
        clusters,
        name.clone(),
    ));
    SourceHandle { name, commands }
}

fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval(period);
    // After a slow poll, carry on from now rather than firing a burst of catch-ups: each
    // poll asks for everything missing anyway.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

async fn run(
    mut poller: Poller,
    clock: Clock,
    summary_every: Duration,
    events: mpsc::Sender<SourceEvent>,
    mut inbox: mpsc::Receiver<SourceCommand>,
    mut clusters: watch::Receiver<Vec<ClusterId>>,
    name: String,
) {
    let poll_every = Duration::from_secs(POLL_INTERVAL_SECS);
    let mut alarm_tick = every(poll_every);
    let mut focus_tick = every(poll_every);
    let mut summary_tick = every(summary_every);
    let mut ready_sent = false;
    let (mut inbox_open, mut clusters_open) = (true, true);
    // Known before the first summary tick (which fires at once), so that tick covers them.
    poller.replace_clusters(clusters.borrow_and_update().clone());
    let mut batch = Vec::new();
    loop {
        if !send_all(&events, std::mem::take(&mut batch)).await {
            return;
        }
        batch = tokio::select! {
            // Alarms first: the first alarm poll is what `Ready` waits for.
            biased;
            () = events.closed() => return,
            _ = alarm_tick.tick() => {
                let mut out = poller.poll_alarms(clock.now()).await;
                if !ready_sent {
                    ready_sent = true;
                    out.push(SourceEvent::Ready { source: name.clone() });
                }
                out
            }
            command = inbox.recv(), if inbox_open => match command {
                Some(SourceCommand::Focus(cluster)) => {
                    let before = poller.focus().cloned();
                    let out = poller.set_focus(cluster, clock.now()).await;
                    if poller.focus() != before.as_ref() {
                        // The fetch just made counts as this minute's.
                        focus_tick.reset();
                    }
                    out
                }
                // The cluster list comes from the EKS source; the engine's targets add
                // nothing but the answer.
                Some(SourceCommand::Targets { seq, .. }) => {
                    vec![SourceEvent::Targeted { source: name.clone(), seq }]
                }
                Some(SourceCommand::PauseWave { reply, .. })
                | Some(SourceCommand::ResumeWave { reply, .. }) => {
                    // The requester may have given up; nothing to undo either way.
                    let _ = reply.send(Err(format!("{name} runs no rollouts")));
                    Vec::new()
                }
                Some(command @ (SourceCommand::Remediate(_)
                | SourceCommand::SilenceAlert { .. }
                | SourceCommand::ExpireSilences { .. }
                | SourceCommand::UpdateFindings { .. }
                | SourceCommand::Relay { .. })) => {
                    crate::sources::refuse_wave(command, &name);
                    Vec::new()
                }
                None => {
                    inbox_open = false;
                    Vec::new()
                }
            },
            _ = focus_tick.tick(), if poller.focus().is_some() => {
                poller.poll_focus(clock.now()).await
            }
            changed = clusters.changed(), if clusters_open => match changed {
                Ok(()) => {
                    let list = clusters.borrow_and_update().clone();
                    poller.set_clusters(list, clock.now()).await
                }
                // The EKS source stopped: keep the last list.
                Err(_) => {
                    clusters_open = false;
                    Vec::new()
                }
            },
            _ = summary_tick.tick() => poller.poll_summary(clock.now()).await,
        };
    }
}

/// Sends events in order; false once the receiver is gone.
async fn send_all(events: &mpsc::Sender<SourceEvent>, batch: Vec<SourceEvent>) -> bool {
    for event in batch {
        if events.send(event).await.is_err() {
            return false;
        }
    }
    true
}
