//! The EKS source as a task: a `Poller` driven by the inventory tick, the detail schedule
//! and the app's commands.

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::POLL_INTERVAL;
use super::poller::Poller;
use crate::model::{ClusterId, SourceEvent};
use crate::sources::aws::AwsScope;
use crate::sources::{SourceCommand, SourceHandle};

/// Commands are rare (a key press); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// Spawns the EKS source for one account and region: inventory every minute (names at
/// once, then each cluster's description), details per cluster every five (every minute
/// for the focused one). `inventory` receives the cluster list after each successful
/// listing. Exits when the events channel is closed.
pub fn spawn(
    scope: AwsScope,
    events: mpsc::Sender<SourceEvent>,
    inventory: watch::Sender<Vec<ClusterId>>,
) -> SourceHandle {
    let client = aws_sdk_eks::Client::new(&scope.sdk);
    spawn_with_client(client, &scope, events, inventory)
}

/// [`spawn`] with the client given, for tests.
pub(super) fn spawn_with_client(
    client: aws_sdk_eks::Client,
    scope: &AwsScope,
    events: mpsc::Sender<SourceEvent>,
    inventory: watch::Sender<Vec<ClusterId>>,
) -> SourceHandle {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    // Add-on updates (runbook steps) use the same client, outside the poll budget.
    let writer = client.clone();
    let poller = Poller::new(client, scope);
    let name = super::source_name(scope);
    tokio::spawn(run(poller, writer, events, inventory, inbox));
    SourceHandle { name, commands }
}

async fn run(
    mut poller: Poller,
    writer: aws_sdk_eks::Client,
    events: mpsc::Sender<SourceEvent>,
    inventory: watch::Sender<Vec<ClusterId>>,
    mut inbox: mpsc::Receiver<SourceCommand>,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    // A slow cycle (a big fleet under the budget) delays the next one instead of
    // starting a burst of catch-up cycles.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut inbox_open = true;
    loop {
        let detail_due = poller.next_detail_due();
        let describing = poller.describing();
        let batch = tokio::select! {
            // Commands first: a focus change should not wait behind a detail poll.
            biased;
            () = events.closed() => return,
            command = inbox.recv(), if inbox_open => match command {
                Some(SourceCommand::Focus(id)) => poller.focus(id).await,
                Some(SourceCommand::Remediate(request)) => {
                    tokio::spawn(super::addon_update::run(writer.clone(), request));
                    Vec::new()
                }
                // The inventory is this source's own; the clusters of interest are
                // described first.
                Some(SourceCommand::Targets { seq, interest, .. }) => {
                    poller.set_interest(&interest);
                    vec![SourceEvent::Targeted { source: poller.name().to_string(), seq }]
                }
                Some(command) => {
                    crate::sources::refuse_wave(command, "the EKS source");
                    Vec::new()
                }
                None => {
                    inbox_open = false;
                    Vec::new()
                }
            },
            // Names first: each listed cluster is described as the budget allows, the
            // ones that matter first, with commands heard between two descriptions.
            () = std::future::ready(()), if describing => poller.describe_next().await,
            // The next listing once this one is described: a big fleet slows the cadence.
            _ = tick.tick(), if !describing => {
                let batch = poller.list().await;
                if batch.iter().any(|e| matches!(e, SourceEvent::ClusterInventory { .. })) {
                    inventory.send_replace(poller.cluster_ids());
                }
                batch
            }
            () = crate::sources::sleep_until(detail_due), if detail_due.is_some() => poller.poll_due_detail().await,
        };
        for event in batch {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}
