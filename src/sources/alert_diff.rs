//! How a source turns "what is wrong now" into alert events: new and changed alerts are
//! sent, unchanged ones are not, and the ones no longer raised are resolved, never dropped.

use std::collections::BTreeMap;

use crate::model::{Alert, AlertKey, AlertState, Timestamp};

/// Carries an alert's history over to its new reading: it keeps its first-seen time, and
/// its last-change time unless its severity moved.
pub fn carry_over(old: &Alert, new: &mut Alert, now: Timestamp) {
    new.first_seen = old.first_seen;
    new.last_change = if old.severity == new.severity {
        old.last_change
    } else {
        now
    };
}

/// The alert, resolved at `now`.
pub fn resolved(mut alert: Alert, now: Timestamp) -> Alert {
    alert.state = AlertState::Resolved;
    alert.last_change = now;
    alert
}

/// Compares what fired (`previous`) with what fires now (`current`): returns what to send
/// and what fires from now on.
pub fn settle(
    mut previous: BTreeMap<AlertKey, Alert>,
    current: Vec<Alert>,
    now: Timestamp,
) -> (Vec<Alert>, BTreeMap<AlertKey, Alert>) {
    let mut send = Vec::new();
    let mut firing = BTreeMap::new();
    for mut alert in current {
        match previous.remove(&alert.key) {
            Some(old) => {
                carry_over(&old, &mut alert, now);
                if alert != old {
                    send.push(alert.clone());
                }
            }
            None => send.push(alert.clone()),
        }
        firing.insert(alert.key.clone(), alert);
    }
    send.extend(previous.into_values().map(|a| resolved(a, now)));
    (send, firing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertSource, ClusterId, Severity};

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000 + s, 0).expect("valid time")
    }

    fn alert(name: &str, severity: Severity, at: i64) -> Alert {
        let c = ClusterId::new("a", "r", "c");
        Alert {
            key: AlertKey::new(AlertSource::Kubernetes, Some(&c), name, ""),
            source: AlertSource::Kubernetes,
            cluster: Some(c),
            name: name.into(),
            severity,
            state: AlertState::Firing,
            first_seen: t(at),
            last_change: t(at),
            summary: String::new(),
            labels: Default::default(),
            runbook_url: None,
            ack: None,
        }
    }

    #[test]
    fn new_changed_unchanged_and_gone() {
        let (send, firing) = settle(
            BTreeMap::new(),
            vec![
                alert("x", Severity::Warning, 0),
                alert("y", Severity::Warning, 0),
            ],
            t(0),
        );
        assert_eq!(send.len(), 2, "both new");

        // x unchanged, y worse, z new; later readings keep their first-seen time.
        let (send, firing) = settle(
            firing,
            vec![
                alert("x", Severity::Warning, 60),
                alert("y", Severity::Critical, 60),
                alert("z", Severity::Info, 60),
            ],
            t(60),
        );
        let names: Vec<&str> = send.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["y", "z"], "unchanged x is not sent again");
        assert_eq!((send[0].first_seen, send[0].last_change), (t(0), t(60)));

        // Only z still fires: x and y are resolved, not dropped.
        let (send, firing) = settle(firing, vec![alert("z", Severity::Info, 120)], t(120));
        let resolved: Vec<(&str, AlertState)> =
            send.iter().map(|a| (a.name.as_str(), a.state)).collect();
        assert_eq!(
            resolved,
            [("x", AlertState::Resolved), ("y", AlertState::Resolved)]
        );
        assert!(send.iter().all(|a| a.last_change == t(120)));
        assert_eq!(firing.len(), 1);
    }
}
