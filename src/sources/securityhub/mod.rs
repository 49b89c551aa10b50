//! The Security Hub source: policy findings (Kyverno through Policy Reporter, Gatekeeper,
//! AWS's own EKS controls, ...) on the fleet's clusters, one task per account and region,
//! or per account in the aggregation region when `[securityhub] aggregation_region` names
//! one (it holds the findings of every linked region).
//!
//! Every `poll_interval_secs` it reads `GetFindings`, every page, asking for ACTIVE
//! findings whose workflow status is NEW or NOTIFIED (in its own region unless it reads
//! the aggregation region), ties each to a cluster and groups them by cluster and policy
//! into one alert each (`findings.rs`). The fleet comes from the engine's
//! `SourceCommand::Targets`, so findings are tied again at once when clusters come or go.
//! Calls share the account and region's request budget with EKS and CloudWatch, with the
//! same retries and counters (`sources::aws::call`).
//!
//! An ack (`SourceCommand::UpdateFindings`) sets the group's findings to NOTIFIED with a
//! note naming the user (`BatchUpdateFindings`, 100 findings a call); an un-ack sets them
//! back to NEW. Security Hub keeps the status, so every console sees it.

mod findings;
mod poller;
#[cfg(test)]
mod tests;

use std::time::Duration;

use aws_sdk_securityhub::Client;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use self::findings::FleetIndex;
use self::poller::Poller;
use crate::clock::Clock;
use crate::config::SecurityHub;
use crate::model::SourceEvent;
use crate::sources::aws::AwsScope;
use crate::sources::{SourceCommand, SourceHandle};

/// The first read waits for the engine to name the fleet's clusters (a long read ties
/// findings to them as its pages come, and the fleet is not heard again until it ends), at
/// most this long.
const FLEET_GRACE: Duration = Duration::from_secs(10);
/// Commands are rare (a key press); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// The source's name: `securityhub:{account}/{region}`.
pub fn source_name(scope: &AwsScope) -> String {
    format!("securityhub:{}", scope.label())
}

/// Starts the source for `scope`'s account and region. Sends `Ready` after the first
/// read, success or not; exits when `events` closes.
pub fn spawn(
    scope: AwsScope,
    settings: SecurityHub,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let client = Client::new(&scope.sdk);
    spawn_with_client(client, scope, settings, events)
}

/// [`spawn`] with the client given, so tests can hand in a mocked one.
pub(crate) fn spawn_with_client(
    client: Client,
    scope: AwsScope,
    settings: SecurityHub,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let name = source_name(&scope);
    let clock = scope.clock.clone();
    let mut poller = Poller::new(client, &scope, settings);
    poller.progress = Some(events.clone());
    tokio::spawn(run(poller, clock, events, inbox, name.clone()));
    SourceHandle { name, commands }
}

async fn run(
    mut poller: Poller,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
    mut inbox: mpsc::Receiver<SourceCommand>,
    name: String,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(poller.settings.poll_interval_secs));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ready_sent = false;
    let mut inbox_open = true;
    let grace = tokio::time::sleep(FLEET_GRACE);
    tokio::pin!(grace);
    let mut fleet_known = false;
    loop {
        let batch = tokio::select! {
            biased;
            () = events.closed() => return,
            () = &mut grace, if !fleet_known => {
                fleet_known = true;
                Vec::new()
            }
            _ = tick.tick(), if fleet_known => {
                let mut out = poller.poll(clock.now()).await;
                if !ready_sent {
                    ready_sent = true;
                    out.push(SourceEvent::Ready { source: name.clone() });
                }
                out
            }
            command = inbox.recv(), if inbox_open => match command {
                Some(SourceCommand::Targets { seq, fleet, .. }) => {
                    // The engine's first word may be an empty fleet: the clusters follow.
                    fleet_known |= !fleet.is_empty();
                    poller.fleet = FleetIndex::new(&fleet, &poller.account);
                    let mut out = poller.settle(clock.now());
                    out.push(SourceEvent::Targeted { source: name.clone(), seq });
                    out
                }
                Some(SourceCommand::UpdateFindings { alert, notified, by, note, reply }) => {
                    let (result, out) = poller.update(&alert, notified, &by, &note, clock.now()).await;
                    // The requester may have stopped waiting; Security Hub has the change.
                    let _ = reply.send(result);
                    out
                }
                Some(SourceCommand::Focus(_)) => Vec::new(),
                Some(command) => {
                    crate::sources::refuse_wave(command, &name);
                    Vec::new()
                }
                None => {
                    inbox_open = false;
                    Vec::new()
                }
            },
        };
        for event in batch {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}
