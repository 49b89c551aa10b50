//! Acks: building the actions from an alert, and what an ack means for each source. An
//! Alertmanager alert is acked with a silence that everyone sees, a Security Hub finding
//! by setting its workflow status to NOTIFIED (`BatchUpdateFindings`); the other sources
//! keep no acks, so theirs is the audit record and the mark this console shows.

use std::collections::BTreeMap;

use super::Action;
use crate::model::{Ack, AckKind, Alert, AlertKey, AlertSource, Timestamp};

impl Action {
    /// Acknowledges `alert` for `minutes`: a silence matching exactly its labels when it
    /// comes from Alertmanager, else a local ack recorded in the audit log.
    pub fn ack(alert: &Alert, minutes: u64) -> Action {
        let silence = alert.source == AlertSource::Alertmanager;
        Action::AckAlert {
            alert: alert.key.clone(),
            name: alert.name.clone(),
            cluster: alert.cluster.as_ref().map(|c| c.name.clone()),
            source: alert.source,
            matchers: if silence {
                alert.labels.clone()
            } else {
                BTreeMap::new()
            },
            minutes: minutes.max(1),
            comment: format!("acknowledged in fleetdeck: {}", alert.name),
        }
    }

    /// Withdraws the ack on `alert`: expires its silences, or forgets the local ack.
    pub fn unack(alert: &Alert) -> Action {
        let silences = match alert.ack.as_ref().map(|a| &a.kind) {
            Some(AckKind::Silence { ids }) => ids.clone(),
            _ => Vec::new(),
        };
        Action::UnackAlert {
            alert: alert.key.clone(),
            name: alert.name.clone(),
            cluster: alert.cluster.as_ref().map(|c| c.name.clone()),
            source: alert.source,
            silences,
        }
    }

    /// True when the action is an ack or un-ack that no source carries out: its effect is
    /// the audit record and the mark in this console.
    pub fn is_local_ack(&self) -> bool {
        match self {
            Action::AckAlert { source, .. } | Action::UnackAlert { source, .. } => {
                !source.keeps_acks()
            }
            _ => false,
        }
    }

    /// The ack a successful local ack leaves on the alert, `Some(None)` for a successful
    /// local un-ack, and `None` for every other action.
    pub fn local_ack_effect(&self, by: &str, now: Timestamp) -> Option<(AlertKey, Option<Ack>)> {
        if !self.is_local_ack() {
            return None;
        }
        match self {
            Action::AckAlert {
                alert,
                minutes,
                comment,
                ..
            } => Some((
                alert.clone(),
                Some(Ack {
                    by: by.to_string(),
                    until: Some(now + chrono::Duration::minutes(*minutes as i64)),
                    comment: comment.clone(),
                    kind: AckKind::Local,
                }),
            )),
            Action::UnackAlert { alert, .. } => Some((alert.clone(), None)),
            _ => None,
        }
    }
}

/// The local acks still in force at `now`, from the audit log (`entries` newest first, as
/// `read_audit` returns them): a restart keeps what this console acked. Each key appears
/// once, with its latest state (`None`: withdrawn).
pub fn local_acks_in_force(
    entries: &[super::AuditEntry],
    now: Timestamp,
) -> Vec<(AlertKey, Option<Ack>)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for entry in entries {
        if !entry.outcome.as_ref().is_some_and(|o| o.ok) || !entry.action.is_local_ack() {
            continue;
        }
        // A write relayed by a connected console is that console's user's.
        let by = entry
            .remote
            .as_ref()
            .map_or_else(|| entry.os_user.clone(), |r| r.who());
        let Some((key, ack)) = entry.action.local_ack_effect(&by, entry.time) else {
            continue;
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        let ack = ack.filter(|a| a.until.is_none_or(|until| until > now));
        if ack.is_some() {
            out.push((key, ack));
        }
    }
    out
}

/// What an ack acts on: `cluster/alert`, or the alert name alone.
pub(super) fn target(name: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("{c}/{name}"),
        None => name.to_string(),
    }
}

/// The message of a local ack or un-ack: there is nothing to call.
pub(super) fn local_outcome(action: &Action) -> Option<Result<String, String>> {
    if !action.is_local_ack() {
        return None;
    }
    Some(Ok(match action {
        Action::AckAlert { source, .. } => format!(
            "acked here and in the audit log ({} has no silences)",
            source.as_str()
        ),
        _ => "ack withdrawn".to_string(),
    }))
}

pub(super) fn example_ack() -> Action {
    Action::AckAlert {
        alert: AlertKey("alertmanager:-:a:f".into()),
        name: "a".into(),
        cluster: None,
        source: AlertSource::Alertmanager,
        matchers: BTreeMap::from([("alertname".to_string(), "a".to_string())]),
        minutes: crate::config::AlertSettings::DEFAULT_ACK_MINUTES,
        comment: "x".into(),
    }
}

pub(super) fn example_unack() -> Action {
    Action::UnackAlert {
        alert: AlertKey("alertmanager:-:a:f".into()),
        name: "a".into(),
        cluster: None,
        source: AlertSource::Alertmanager,
        silences: vec!["s".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertState, ClusterId, Severity};

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000 + s, 0).expect("valid time")
    }

    fn alert(source: AlertSource) -> Alert {
        let c = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        Alert {
            key: AlertKey::new(source, Some(&c), "KubeAPIErrorsHigh", "fp"),
            source,
            cluster: Some(c),
            name: "KubeAPIErrorsHigh".into(),
            severity: Severity::Critical,
            state: AlertState::Firing,
            first_seen: t(0),
            last_change: t(0),
            summary: String::new(),
            labels: BTreeMap::from([
                ("alertname".to_string(), "KubeAPIErrorsHigh".to_string()),
                ("cluster".to_string(), "prod-use1-api-01".to_string()),
            ]),
            runbook_url: None,
            ack: None,
        }
    }

    #[test]
    fn an_alertmanager_ack_is_a_silence_on_every_label() {
        let action = Action::ack(&alert(AlertSource::Alertmanager), 30);
        assert!(!action.is_local_ack());
        assert_eq!(action.kind(), "ack-alert");
        assert_eq!(action.target(), "prod-use1-api-01/KubeAPIErrorsHigh");
        let Action::AckAlert {
            matchers, minutes, ..
        } = &action
        else {
            panic!("not an ack: {action:?}");
        };
        assert_eq!(matchers.len(), 2);
        assert_eq!(*minutes, 30);
        assert_eq!(local_outcome(&action), None, "a silence is a real call");
    }

    #[test]
    fn a_cloudwatch_ack_is_local_and_lasts_its_minutes() {
        let action = Action::ack(&alert(AlertSource::Cloudwatch), 60);
        assert!(action.is_local_ack());
        let (key, ack) = action.local_ack_effect("alice", t(100)).expect("local ack");
        assert_eq!(key, alert(AlertSource::Cloudwatch).key);
        let ack = ack.expect("an ack");
        assert_eq!((ack.by.as_str(), ack.until), ("alice", Some(t(3700))));
        let message = local_outcome(&action).expect("local").expect("ok");
        assert!(message.contains("cloudwatch has no silences"), "{message}");
        let unack = Action::unack(&alert(AlertSource::Cloudwatch));
        assert_eq!(unack.local_ack_effect("alice", t(200)), Some((key, None)));
    }

    #[test]
    fn local_acks_in_force_are_the_latest_unexpired_per_alert() {
        let entry = |action: Action, at: i64, ok: bool| super::super::AuditEntry {
            id: format!("{at}"),
            time: t(at),
            os_user: "alice".into(),
            identity: "x".into(),
            remote: None,
            action,
            outcome: Some(super::super::Outcome {
                time: t(at),
                ok,
                message: String::new(),
            }),
        };
        let cw = alert(AlertSource::Cloudwatch);
        let mut other = alert(AlertSource::EksHealth);
        other.key = AlertKey("eks-health:x:y:z".into());
        let mut expired = alert(AlertSource::Kubernetes);
        expired.key = AlertKey("kubernetes:x:y:z".into());
        // Newest first, as the audit reader returns them.
        let entries = vec![
            entry(Action::ack(&other, 60), 500, false),
            entry(Action::unack(&cw), 400, true),
            entry(Action::ack(&cw, 60), 300, true),
            entry(Action::ack(&other, 60), 200, true),
            entry(Action::ack(&expired, 1), 100, true),
            entry(Action::ack(&alert(AlertSource::Alertmanager), 60), 50, true),
        ];
        let acks = local_acks_in_force(&entries, t(600));
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert_eq!(
            acks[0].0, other.key,
            "withdrawn, failed, expired and silences left out"
        );
        assert_eq!(acks[0].1.as_ref().and_then(|a| a.until), Some(t(3800)));
    }

    #[test]
    fn the_store_keeps_a_local_ack_over_updates_until_the_alert_resolves() {
        use crate::model::{SourceEvent, Store};
        let mut store = Store::new();
        let a = alert(AlertSource::Cloudwatch);
        store.apply(SourceEvent::Alerts(vec![a.clone()]), t(0));
        let (key, ack) = Action::ack(&a, 60)
            .local_ack_effect("alice", t(10))
            .expect("local");
        store.set_local_ack(&key, ack.clone());
        assert_eq!(store.alert(&key).and_then(|x| x.ack.clone()), ack);
        // The source sends it again (it changed): still acked.
        let mut changed = a.clone();
        changed.summary = "worse".into();
        store.apply(SourceEvent::Alerts(vec![changed.clone()]), t(20));
        assert_eq!(store.alert(&key).and_then(|x| x.ack.clone()), ack);
        // Resolved: the ack goes with it, and does not come back if it fires again.
        changed.state = AlertState::Resolved;
        store.apply(SourceEvent::Alerts(vec![changed.clone()]), t(30));
        changed.state = AlertState::Firing;
        store.apply(SourceEvent::Alerts(vec![changed]), t(40));
        assert_eq!(store.alert(&key).and_then(|x| x.ack.clone()), None);
    }

    #[test]
    fn unack_carries_the_silences_to_expire() {
        let mut a = alert(AlertSource::Alertmanager);
        a.ack = Some(Ack {
            by: "bob".into(),
            until: Some(t(600)),
            comment: "looking".into(),
            kind: AckKind::Silence {
                ids: vec!["s1".into()],
            },
        });
        let Action::UnackAlert { silences, .. } = Action::unack(&a) else {
            panic!("not an un-ack");
        };
        assert_eq!(silences, ["s1"]);
    }
}
