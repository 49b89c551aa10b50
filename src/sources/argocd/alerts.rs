//! `argocd-app-degraded`: an Application whose health is Degraded, or whose last sync
//! operation Failed or Errored.
//!
//! | condition | severity |
//! |---|---|
//! | last sync operation Failed / Error | critical |
//! | health Degraded on a production cluster | critical |
//! | health Degraded elsewhere (or cluster unknown) | warning |
//!
//! Keyed `argocd:{cluster}:argocd-app-degraded:{namespace}/{name}`. When the app is
//! healthy again (or deleted) the alert is sent once more as resolved. When the app is
//! mapped to a different cluster (the fleet changed), the alert's key changes: the old key
//! is sent as gone and the new one carries the original first-seen time.

use std::collections::BTreeMap;

use crate::sources::alert_diff;

use crate::model::{Alert, AlertKey, AlertSource, AlertState, ArgoApp, Severity, Timestamp};

/// The alert's name.
pub(super) const APP_DEGRADED: &str = "argocd-app-degraded";

/// What one app should raise now, if anything.
pub(super) fn app_alert(app: &ArgoApp, production: bool, now: Timestamp) -> Option<Alert> {
    let failed = matches!(app.operation_phase.as_deref(), Some("Failed" | "Error"));
    let degraded = app.health == "Degraded";
    if !failed && !degraded {
        return None;
    }
    let severity = if failed || production {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut summary = format!(
        "Argo CD app {}/{} is {}",
        app.namespace, app.name, app.health
    );
    if let Some(phase) = app.operation_phase.as_deref().filter(|_| failed) {
        summary.push_str(&format!(", last sync {phase}"));
    }
    if let Some(message) = &app.message {
        summary.push_str(": ");
        summary.push_str(message);
    }
    let labels = BTreeMap::from([
        ("app".to_string(), app.name.clone()),
        ("project".to_string(), app.project.clone()),
        ("namespace".to_string(), app.namespace.clone()),
        ("destination".to_string(), app.destination.clone()),
        ("health".to_string(), app.health.clone()),
        ("sync".to_string(), app.sync.clone()),
    ]);
    Some(Alert {
        key: AlertKey::new(
            AlertSource::ArgoCd,
            app.cluster.as_ref(),
            APP_DEGRADED,
            &format!("{}/{}", app.namespace, app.name),
        ),
        source: AlertSource::ArgoCd,
        cluster: app.cluster.clone(),
        name: APP_DEGRADED.to_string(),
        severity,
        state: AlertState::Firing,
        first_seen: now,
        last_change: now,
        summary,
        labels,
        runbook_url: None,
        ack: None,
    })
}

/// What changed since the last settle.
#[derive(Debug, Default, PartialEq)]
pub(super) struct AlertChanges {
    /// New, changed and resolved alerts.
    pub alerts: Vec<Alert>,
    /// Keys that no longer exist (the app moved to another cluster key).
    pub gone: Vec<AlertKey>,
}

/// The alerts firing now, by app (`namespace/name`).
#[derive(Debug, Default)]
pub(super) struct AlertBook {
    firing: BTreeMap<String, Alert>,
}

impl AlertBook {
    /// Replaces what fires with `current` (by app); returns what to send. Unchanged firing
    /// alerts are not sent again.
    pub(super) fn settle(
        &mut self,
        current: BTreeMap<String, Alert>,
        now: Timestamp,
    ) -> AlertChanges {
        let mut previous = std::mem::take(&mut self.firing);
        let mut changes = AlertChanges::default();
        for (app, mut alert) in current {
            match previous.remove(&app) {
                Some(old) => {
                    alert_diff::carry_over(&old, &mut alert, now);
                    if old.key != alert.key {
                        changes.gone.push(old.key.clone());
                        changes.alerts.push(alert.clone());
                    } else if alert != old {
                        changes.alerts.push(alert.clone());
                    }
                }
                None => changes.alerts.push(alert.clone()),
            }
            self.firing.insert(app, alert);
        }
        changes
            .alerts
            .extend(previous.into_values().map(|a| alert_diff::resolved(a, now)));
        changes
    }
}
