//! Placeholder for the watchers of one cluster (written separately; replaced at merge).
//! It reports the cluster as connected with nothing found, then waits to be stopped.

use crate::model::{Connection, KubeSignals, SourceEvent};

/// Watches one cluster through `client` until `stop` turns true (or its sender is gone),
/// sending `KubeSignals` for `target` on `events`.
pub async fn watch(
    client: kube::Client,
    target: crate::sources::ClusterTarget,
    clock: crate::clock::Clock,
    events: tokio::sync::mpsc::Sender<crate::model::SourceEvent>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The real watchers use the client; the placeholder only holds it while "watching".
    let _client = client;
    let signals = KubeSignals {
        connection: Connection::Connected,
        nodes_total: 0,
        not_ready_nodes: Vec::new(),
        crashing_pods: Vec::new(),
        warning_events: Vec::new(),
        blocking_pdbs: Vec::new(),
        single_replica: Vec::new(),
        updated: clock.now(),
    };
    let event = SourceEvent::KubeSignals {
        cluster: target.id,
        signals: Box::new(signals),
    };
    if events.send(event).await.is_err() {
        return;
    }
    // `wait_for` also returns (with an error) when the sender is dropped: stop then too.
    let _ = stop.wait_for(|stopped| *stopped).await;
}
