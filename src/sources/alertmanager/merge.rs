//! From what each Alertmanager holds to one list of `Alert`s: each alert mapped to its
//! cluster by a label, one row per real alert however many Alertmanagers hold it (an HA
//! pair holds every alert twice, under the same fingerprint), with its silence or
//! inhibition. Pure: no I/O, time passed in.

use std::collections::{BTreeMap, HashMap};

use super::wire::{self, WireAlert, WireSilence};
use crate::model::{
    Ack, AckKind, Alert, AlertKey, AlertSource, AlertState, ClusterId, Severity, Timestamp,
};
use crate::sources::ClusterTarget;

/// What one Alertmanager holds, as last read successfully.
pub struct Held<'a> {
    pub name: &'a str,
    /// Its last read succeeded; otherwise what it holds is stale.
    pub answering: bool,
    pub cluster_label: &'a str,
    pub alerts: &'a [WireAlert],
    pub silences: &'a HashMap<String, WireSilence>,
}

/// Cluster label values to clusters: by name, by `account/region/name`, by EKS ARN.
#[derive(Default, Debug)]
pub struct ClusterIndex {
    by_value: HashMap<String, ClusterId>,
}

impl ClusterIndex {
    pub fn new(fleet: &[ClusterTarget]) -> Self {
        let mut by_value = HashMap::new();
        for t in fleet {
            // The first of clusters sharing a name wins; `account/region/name` is exact.
            by_value
                .entry(t.id.name.clone())
                .or_insert_with(|| t.id.clone());
            by_value.insert(t.id.to_string(), t.id.clone());
            if !t.arn.is_empty() {
                by_value.insert(t.arn.clone(), t.id.clone());
            }
        }
        Self { by_value }
    }

    /// The cluster a label value names; one no source lists keeps its name alone.
    pub fn cluster(&self, value: &str) -> ClusterId {
        self.by_value
            .get(value)
            .cloned()
            .unwrap_or_else(|| ClusterId::new("", "", value))
    }
}

/// The key of an Alertmanager alert: its name and fingerprint (the hash of its labels,
/// the same in every Alertmanager that holds it). The cluster is left out so the key does
/// not change when the cluster list arrives.
pub fn key(alert: &WireAlert) -> AlertKey {
    AlertKey::new(
        AlertSource::Alertmanager,
        None,
        &name(alert),
        &fingerprint(alert),
    )
}

fn name(alert: &WireAlert) -> String {
    alert
        .labels
        .get("alertname")
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| "(no alertname)".into())
}

/// The alert's fingerprint, or one made from its labels when the body has none.
fn fingerprint(alert: &WireAlert) -> String {
    if !alert.fingerprint.is_empty() {
        return alert.fingerprint.clone();
    }
    label_fingerprint(&alert.labels)
}

/// A fingerprint of a label set (FNV-1a over the sorted labels): stable across runs and
/// machines, for alerts that come without Alertmanager's own.
pub(crate) fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("l{h:016x}")
}

/// Severity from the `severity` (or `priority`) label; warning when absent or unknown.
fn severity(labels: &BTreeMap<String, String>) -> Severity {
    let value = labels
        .get("severity")
        .or_else(|| labels.get("priority"))
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    match value.as_str() {
        "critical" | "crit" | "page" | "error" | "high" | "p1" | "p2" | "disaster" => {
            Severity::Critical
        }
        "info" | "informational" | "none" | "low" | "notice" | "p4" | "p5" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Every alert firing in any Alertmanager, once. An alert whose `endsAt` has passed is
/// resolved and left out. What only Alertmanagers that stopped answering hold is kept, and
/// its summary says it is stale and why.
pub fn merge(held: &[Held], clusters: &ClusterIndex, now: Timestamp) -> Vec<Alert> {
    let mut merged: BTreeMap<AlertKey, Alert> = BTreeMap::new();
    // Per alert: whether an answering Alertmanager holds it, else the silent ones.
    let mut fresh: HashMap<AlertKey, bool> = HashMap::new();
    let mut silent: HashMap<AlertKey, Vec<&str>> = HashMap::new();
    for am in held {
        for wire in am.alerts {
            let ends = wire::time(wire.ends_at.as_deref());
            // A stale copy's end passes while nobody can refresh it: keep it, marked.
            if am.answering && ends.is_some_and(|end| end <= now) {
                continue;
            }
            let alert = to_alert(wire, am, clusters, now);
            *fresh.entry(alert.key.clone()).or_default() |= am.answering;
            if !am.answering {
                silent.entry(alert.key.clone()).or_default().push(am.name);
            }
            match merged.get_mut(&alert.key) {
                Some(existing) => combine(existing, alert),
                None => {
                    merged.insert(alert.key.clone(), alert);
                }
            }
        }
    }
    for alert in merged.values_mut() {
        if !fresh.get(&alert.key).copied().unwrap_or(true) {
            let names = silent
                .get(&alert.key)
                .map(|n| n.join(", "))
                .unwrap_or_default();
            alert.summary = format!("stale: {names} not answering · {}", alert.summary);
        }
    }
    merged.into_values().collect()
}

fn to_alert(wire: &WireAlert, am: &Held, clusters: &ClusterIndex, now: Timestamp) -> Alert {
    let started = wire::time(wire.starts_at.as_deref())
        .filter(|t| *t <= now)
        .unwrap_or(now);
    let annotation = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| wire.annotations.get(*n).filter(|v| !v.trim().is_empty()))
            .cloned()
    };
    let name = name(wire);
    Alert {
        key: key(wire),
        source: AlertSource::Alertmanager,
        cluster: wire
            .labels
            .get(am.cluster_label)
            .filter(|v| !v.is_empty())
            .map(|v| clusters.cluster(v)),
        severity: severity(&wire.labels),
        state: AlertState::Firing,
        first_seen: started,
        last_change: started,
        summary: annotation(&["summary", "description", "message"])
            .map(|s| s.lines().next().unwrap_or("").trim().to_string())
            .unwrap_or_else(|| name.clone()),
        name,
        labels: wire.labels.clone(),
        runbook_url: annotation(&["runbook_url", "runbook"]),
        ack: suppression(wire, am.silences),
    }
}

/// Why Alertmanager holds the alert back, as an ack: its silences (who made the one that
/// lasts longest, and until when), else what inhibits or mutes it.
fn suppression(wire: &WireAlert, silences: &HashMap<String, WireSilence>) -> Option<Ack> {
    let status = &wire.status;
    if !status.silenced_by.is_empty() {
        let longest = status
            .silenced_by
            .iter()
            .filter_map(|id| silences.get(id))
            .max_by_key(|s| wire::time(s.ends_at.as_deref()));
        return Some(Ack {
            by: longest
                .map(|s| s.created_by.clone())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "silenced".into()),
            until: longest.and_then(|s| wire::time(s.ends_at.as_deref())),
            comment: longest.map(|s| s.comment.clone()).unwrap_or_default(),
            kind: AckKind::Silence {
                ids: status.silenced_by.clone(),
            },
        });
    }
    if !status.inhibited_by.is_empty() {
        return Some(Ack {
            by: "inhibited".into(),
            until: None,
            comment: format!("inhibited by {}", status.inhibited_by.join(", ")),
            kind: AckKind::Inhibited {
                by: status.inhibited_by.clone(),
            },
        });
    }
    if !status.muted_by.is_empty() {
        return Some(Ack {
            by: "muted".into(),
            until: None,
            comment: format!("muted by time interval {}", status.muted_by.join(", ")),
            kind: AckKind::Inhibited {
                by: status.muted_by.clone(),
            },
        });
    }
    None
}

/// One alert seen through a second Alertmanager: the earliest start, and every silence
/// any of them applies (a silence in one member of a pair is a silence).
fn combine(existing: &mut Alert, other: Alert) {
    if other.first_seen < existing.first_seen {
        existing.first_seen = other.first_seen;
        existing.last_change = other.last_change;
    }
    match (&mut existing.ack, other.ack) {
        (
            Some(Ack {
                kind: AckKind::Silence { ids },
                until,
                by,
                comment,
            }),
            Some(Ack {
                kind: AckKind::Silence { ids: more },
                until: other_until,
                by: other_by,
                comment: other_comment,
            }),
        ) => {
            for id in more {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            if other_until > *until {
                *until = other_until;
                *by = other_by;
                *comment = other_comment;
            }
        }
        // A silence anywhere beats an inhibition or nothing.
        (
            slot @ (None
            | Some(Ack {
                kind: AckKind::Inhibited { .. },
                ..
            })),
            Some(ack),
        ) if matches!(ack.kind, AckKind::Silence { .. }) || slot.is_none() => {
            *slot = Some(ack);
        }
        _ => {}
    }
}
