//! The demo's Prometheus alerts, as a simulated Alertmanager would hold them: one silenced
//! by a colleague, one inhibited by the node alert that explains it, and that node alert
//! itself, active. Acks on them are silences here too, so the demo behaves like the real
//! thing: `a` silences, `A` expires the silence.

use std::collections::BTreeMap;

use super::DemoFleet;
use crate::model::{
    Ack, AckKind, Alert, AlertKey, AlertSource, AlertState, Cluster, Environment, Severity,
    SourceEvent, Timestamp,
};
use crate::sources::WriteResult;

/// The simulated Alertmanager's alerts and its silence counter.
#[derive(Debug, Default)]
pub(super) struct DemoAlertmanager {
    pub(super) alerts: Vec<Alert>,
    next_silence: u32,
}

impl DemoAlertmanager {
    /// The alerts as they stand at `start`, on the first prod and the first dev cluster.
    pub(super) fn new(clusters: &[Cluster], start: Timestamp) -> Self {
        let first = |env: Environment| clusters.iter().find(|c| c.environment == env);
        let mut alerts = Vec::new();
        if let Some(prod) = first(Environment::Prod) {
            let mut silenced = alert(
                prod,
                "KubeDeploymentReplicasMismatch",
                Severity::Warning,
                &[("namespace", "checkout"), ("deployment", "cart-api")],
                "Deployment checkout/cart-api has not matched its replicas for 15 minutes",
                start - chrono::Duration::minutes(25),
            );
            silenced.ack = Some(Ack {
                by: "dana".into(),
                until: Some(start + chrono::Duration::minutes(35)),
                comment: "INC-4398: cart-api canary held on purpose".into(),
                kind: AckKind::Silence {
                    ids: vec!["demo-silence-0".into()],
                },
            });
            alerts.push(silenced);
        }
        if let Some(dev) = first(Environment::Dev) {
            let node = alert(
                dev,
                "KubeNodeNotReady",
                Severity::Warning,
                &[("node", "ip-10-20-7-14.ec2.internal")],
                "Node ip-10-20-7-14.ec2.internal has been NotReady for 12 minutes",
                start - chrono::Duration::minutes(12),
            );
            let mut pod = alert(
                dev,
                "KubePodNotReady",
                Severity::Warning,
                &[
                    ("node", "ip-10-20-7-14.ec2.internal"),
                    ("namespace", "edge"),
                    ("pod", "ingress-7c9d5-x2k4q"),
                ],
                "Pod edge/ingress-7c9d5-x2k4q has been NotReady for 10 minutes",
                start - chrono::Duration::minutes(10),
            );
            let fingerprint = node
                .key
                .0
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            pod.ack = Some(Ack {
                by: "inhibited".into(),
                until: None,
                comment: format!("inhibited by {fingerprint}"),
                kind: AckKind::Inhibited {
                    by: vec![fingerprint],
                },
            });
            alerts.push(node);
            alerts.push(pod);
        }
        Self {
            alerts,
            next_silence: 1,
        }
    }
}

/// An Alertmanager alert as the real source maps one: every label kept, keyed by name and
/// a fingerprint of the labels.
fn alert(
    cluster: &Cluster,
    name: &str,
    severity: Severity,
    extra: &[(&str, &str)],
    summary: &str,
    since: Timestamp,
) -> Alert {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("alertname".to_string(), name.to_string()),
        ("cluster".to_string(), cluster.id.name.clone()),
        ("severity".to_string(), severity.as_str().to_string()),
    ]);
    for (k, v) in extra {
        labels.insert((*k).into(), (*v).into());
    }
    let fingerprint = crate::sources::alertmanager::merge::label_fingerprint(&labels);
    Alert {
        key: AlertKey::new(AlertSource::Alertmanager, None, name, &fingerprint),
        source: AlertSource::Alertmanager,
        cluster: Some(cluster.id.clone()),
        name: name.into(),
        severity,
        state: AlertState::Firing,
        first_seen: since,
        last_change: since,
        summary: summary.into(),
        labels,
        runbook_url: Some(format!(
            "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/{}",
            name.to_lowercase()
        )),
        ack: None,
    }
}

impl DemoFleet {
    /// Silences a demo Alertmanager alert for `minutes`, as the real source would.
    pub(super) fn silence(
        &mut self,
        key: &AlertKey,
        created_by: &str,
        comment: &str,
        minutes: u64,
        now: Timestamp,
    ) -> (WriteResult, Vec<SourceEvent>) {
        let am = &mut self.prometheus;
        let Some(alert) = am.alerts.iter_mut().find(|a| &a.key == key) else {
            return (
                Err(format!("the demo Alertmanager holds no {key}")),
                Vec::new(),
            );
        };
        let id = format!("demo-silence-{}", am.next_silence);
        am.next_silence += 1;
        alert.ack = Some(Ack {
            by: created_by.into(),
            until: Some(now + chrono::Duration::minutes(minutes as i64)),
            comment: comment.into(),
            kind: AckKind::Silence {
                ids: vec![id.clone()],
            },
        });
        (
            Ok(format!("silenced in the demo Alertmanager as {id}")),
            vec![SourceEvent::Alerts(vec![alert.clone()])],
        )
    }

    /// Expires the silences on a demo Alertmanager alert.
    pub(super) fn expire_silences(
        &mut self,
        key: &AlertKey,
        ids: &[String],
    ) -> (WriteResult, Vec<SourceEvent>) {
        let Some(alert) = self.prometheus.alerts.iter_mut().find(|a| &a.key == key) else {
            return (
                Err(format!("the demo Alertmanager holds no {key}")),
                Vec::new(),
            );
        };
        match &alert.ack {
            Some(Ack {
                kind: AckKind::Silence { ids: held },
                ..
            }) if ids.iter().any(|id| held.contains(id)) => {
                alert.ack = None;
                (
                    Ok(format!("expired silence {}", ids.join(", "))),
                    vec![SourceEvent::Alerts(vec![alert.clone()])],
                )
            }
            _ => (
                Err(format!("{} has no such silence", alert.name)),
                Vec::new(),
            ),
        }
    }
}
