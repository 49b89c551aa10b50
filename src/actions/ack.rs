//! Acks: building the actions from an alert, and what an ack means for each source. An
//! Alertmanager alert is acked with a silence that everyone sees; the other sources have
//! no silences, so their ack is the audit record and the mark this console shows.

use std::collections::BTreeMap;

use super::Action;
use crate::model::{Ack, AckKind, Alert, AlertKey, AlertSource, Timestamp};

/// How long an ack lasts unless the config says otherwise: one hour.
pub const DEFAULT_ACK_MINUTES: u64 = 60;

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
                *source != AlertSource::Alertmanager
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
        minutes: DEFAULT_ACK_MINUTES,
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
