//! CloudWatch-like alarms: which fire when, and the alerts they become. An alarm follows
//! an *episode* (a stretch of minutes when a metric misbehaves): it fires once three
//! datapoints breach and clears the minute the metric recovers. The etcd alarm follows the
//! storage size directly.

use super::DemoFleet;
use super::hash::{between, hash, tag, unit};
use super::metrics::{self, Conditions};
use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, ETCD_QUOTA_BYTES, MetricName, Severity, Timestamp,
};

/// Consecutive breaching 1-minute datapoints before an alarm fires.
pub(super) const DATAPOINTS: i64 = 3;
/// Random episodes are placed in slots of this many minutes, at most one per slot.
const SLOT_MINUTES: i64 = 240;

/// The alarms the demo raises (the names real fleets use in their CloudWatch alarms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Alarm {
    Apiserver5xx,
    ApiserverLatency,
    EtcdStorage,
    PendingPods,
    Throttling,
}

impl Alarm {
    /// Every alarm, in evaluation order.
    pub const ALL: [Alarm; 5] = [
        Self::Apiserver5xx,
        Self::ApiserverLatency,
        Self::EtcdStorage,
        Self::PendingPods,
        Self::Throttling,
    ];

    /// The CloudWatch alarm name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Apiserver5xx => "eks-apiserver-5xx-high",
            Self::ApiserverLatency => "eks-apiserver-p99-latency-high",
            Self::EtcdStorage => "eks-etcd-storage-high",
            Self::PendingPods => "eks-pending-pods-high",
            Self::Throttling => "eks-apiserver-429-throttling",
        }
    }

    /// Gate alarms stop the rollout when they fire on a cluster already in it.
    pub fn is_gate(self) -> bool {
        matches!(self, Self::Apiserver5xx | Self::ApiserverLatency)
    }

    /// The metric the alarm watches.
    pub fn metric(self) -> MetricName {
        match self {
            Self::Apiserver5xx => MetricName::Request5xx,
            Self::ApiserverLatency => MetricName::P99Get,
            Self::EtcdStorage => MetricName::StorageSizeBytes,
            Self::PendingPods => MetricName::PendingPods,
            Self::Throttling => MetricName::Request429,
        }
    }

    fn severity(self) -> Severity {
        match self {
            Self::Apiserver5xx => Severity::Critical,
            _ => Severity::Warning,
        }
    }

    fn runbook_url(self) -> Option<String> {
        match self {
            Self::Apiserver5xx | Self::ApiserverLatency | Self::EtcdStorage => {
                Some(format!("https://runbooks.example.com/eks/{}", self.name()))
            }
            Self::PendingPods | Self::Throttling => None,
        }
    }

    /// Chance that a slot holds a random episode (only the noisy, non-gate alarms have
    /// random episodes: gate alarms follow the demo's script, so the story stays the story).
    fn random_chance(self) -> f64 {
        match self {
            Self::PendingPods => 0.10,
            Self::Throttling => 0.08,
            _ => 0.0,
        }
    }
}

/// A stretch of metric minutes `[start, end)` when one alarm's metric misbehaves on one
/// cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Episode {
    pub cluster: usize,
    pub alarm: Alarm,
    pub start: i64,
    pub end: i64,
}

impl Episode {
    /// The boundary minute at which the alarm fires (after `DATAPOINTS` breaching points).
    pub fn fires_at(&self) -> i64 {
        self.start + DATAPOINTS
    }
}

/// The random episode of `alarm` on cluster `c` covering `minute`, if any. Each slot holds
/// at most one episode that ends inside it, so only one slot needs looking at.
fn random_episode(seed: u64, c: usize, alarm: Alarm, minute: i64) -> Option<Episode> {
    let chance = alarm.random_chance();
    if chance == 0.0 {
        return None;
    }
    let slot = minute.div_euclid(SLOT_MINUTES);
    let h = hash(seed, &[tag::EPISODE, c as i64, alarm as i64, slot]);
    if unit(h) >= chance {
        return None;
    }
    let start = slot * SLOT_MINUTES + between(h >> 8, 0, SLOT_MINUTES - 45);
    let end = start + between(h >> 24, 12, 40);
    (start..end).contains(&minute).then_some(Episode {
        cluster: c,
        alarm,
        start,
        end,
    })
}

/// One alarm in ALARM state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Firing {
    pub since: Timestamp,
    pub severity: Severity,
}

impl DemoFleet {
    /// The episode of `alarm` on cluster `c` covering metric minute `minute`: scripted
    /// incidents first, then the random background.
    pub(super) fn episode_at(&self, c: usize, alarm: Alarm, minute: i64) -> Option<Episode> {
        self.incidents
            .iter()
            .find(|e| e.cluster == c && e.alarm == alarm && (e.start..e.end).contains(&minute))
            .copied()
            .or_else(|| random_episode(self.seed, c, alarm, minute))
    }

    /// What shapes cluster `c`'s metrics at `minute`.
    pub(super) fn conditions(&self, c: usize, minute: i64) -> Conditions {
        Conditions {
            five_xx: self.episode_at(c, Alarm::Apiserver5xx, minute).is_some(),
            latency: self
                .episode_at(c, Alarm::ApiserverLatency, minute)
                .is_some(),
            pending: self.episode_at(c, Alarm::PendingPods, minute).is_some(),
            throttled: self.episode_at(c, Alarm::Throttling, minute).is_some(),
        }
    }

    /// One metric point of cluster `c`.
    pub(super) fn metric_value(&self, c: usize, metric: MetricName, minute: i64) -> f64 {
        metrics::value(
            self.seed,
            c,
            &self.members[c].profile,
            metric,
            minute,
            self.start_minute,
            self.conditions(c, minute),
        )
    }

    /// The alarm's state after evaluating the datapoint of metric minute `minute`:
    /// `Some(severity)` when in ALARM.
    pub(super) fn alarm_state(&self, c: usize, alarm: Alarm, minute: i64) -> Option<Severity> {
        match alarm {
            Alarm::EtcdStorage => {
                let used = metrics::etcd_bytes(
                    self.seed,
                    c,
                    &self.members[c].profile,
                    minute,
                    self.start_minute,
                ) / ETCD_QUOTA_BYTES;
                if used > 0.9 {
                    Some(Severity::Critical)
                } else if used > 0.8 {
                    Some(Severity::Warning)
                } else {
                    None
                }
            }
            _ => {
                let episode = self.episode_at(c, alarm, minute)?;
                (minute >= episode.start + DATAPOINTS - 1).then_some(alarm.severity())
            }
        }
    }

    /// When an alarm found firing at the start of the demo went into ALARM.
    pub(super) fn fired_before_start(&self, c: usize, alarm: Alarm, minute: i64) -> Timestamp {
        let boundary = match self.episode_at(c, alarm, minute) {
            Some(episode) => episode.fires_at(),
            // etcd has been filling up for a while: hours ago.
            None => {
                minute
                    - between(
                        hash(self.seed, &[tag::FIRST_SEEN, c as i64, alarm as i64]),
                        120,
                        900,
                    )
            }
        };
        minute_time(boundary.min(minute + 1))
    }

    /// The alert for an alarm on cluster `c` in ALARM since `alarm_state.since` (firing,
    /// or resolved at `last_change`), described with the datapoint of `minute`.
    pub(super) fn alarm_alert(
        &self,
        c: usize,
        alarm: Alarm,
        alarm_state: Firing,
        state: AlertState,
        last_change: Timestamp,
        minute: i64,
    ) -> Alert {
        let firing = state == AlertState::Firing;
        let cluster = &self.clusters[c];
        let metric = alarm.metric();
        let reading = self.metric_value(c, metric, minute);
        let summary = match (alarm, firing) {
            (Alarm::Apiserver5xx, _) => {
                let total = self
                    .metric_value(c, MetricName::RequestTotal, minute)
                    .max(1.0);
                let percent = 100.0 * reading / total;
                if firing {
                    format!(
                        "5xx at {percent:.1}% of requests (threshold 1%) for {DATAPOINTS} minutes"
                    )
                } else {
                    format!("5xx back to {percent:.2}% of requests (threshold 1%)")
                }
            }
            (Alarm::ApiserverLatency, true) => format!(
                "GET p99 latency at {reading:.2} s (threshold 1 s) for {DATAPOINTS} minutes"
            ),
            (Alarm::ApiserverLatency, false) => {
                format!("GET p99 latency back to {reading:.2} s (threshold 1 s)")
            }
            (Alarm::EtcdStorage, _) => {
                let percent = 100.0 * reading / ETCD_QUOTA_BYTES;
                let gib = reading / (1024.0 * 1024.0 * 1024.0);
                if firing {
                    format!(
                        "etcd database at {percent:.0}% of its 8 GiB quota ({gib:.2} GiB; \
                         warning at 80%, critical at 90%)"
                    )
                } else {
                    format!("etcd database back to {percent:.0}% of its 8 GiB quota")
                }
            }
            (Alarm::PendingPods, true) => {
                format!("{reading:.0} pods pending (threshold 50) for {DATAPOINTS} minutes")
            }
            (Alarm::PendingPods, false) => {
                format!("pending pods back to {reading:.0} (threshold 50)")
            }
            (Alarm::Throttling, true) => format!(
                "{reading:.0} requests throttled with HTTP 429 in a minute (threshold 200) \
                 for {DATAPOINTS} minutes"
            ),
            (Alarm::Throttling, false) => {
                format!("429 throttling back to {reading:.0} requests a minute (threshold 200)")
            }
        };
        let mut labels = super::fleet::labels_for(cluster);
        labels.insert("alarm_name".into(), alarm.name().into());
        labels.insert("namespace".into(), "AWS/EKS".into());
        labels.insert("metric_name".into(), metric.cloudwatch_name().into());
        labels.insert("ClusterName".into(), cluster.id.name.clone());
        Alert {
            key: AlertKey::new(AlertSource::Cloudwatch, Some(&cluster.id), alarm.name(), ""),
            source: AlertSource::Cloudwatch,
            cluster: Some(cluster.id.clone()),
            name: alarm.name().into(),
            severity: alarm_state.severity,
            state,
            first_seen: alarm_state.since,
            last_change,
            summary,
            labels,
            runbook_url: alarm.runbook_url(),
            ack: None,
        }
    }
}

/// The instant a minute (minutes since the Unix epoch) begins.
pub(super) fn minute_time(minute: i64) -> Timestamp {
    chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::TimeDelta::minutes(minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_episodes_are_rare_bounded_and_only_for_noisy_alarms() {
        let mut minutes_in_episode = 0;
        for c in 0..50 {
            for minute in 0..SLOT_MINUTES * 20 {
                for alarm in Alarm::ALL {
                    if let Some(e) = random_episode(7, c, alarm, minute) {
                        assert!(!alarm.is_gate() && alarm != Alarm::EtcdStorage);
                        assert!(e.start <= minute && minute < e.end);
                        assert!(e.end - e.start >= 12 && e.end - e.start <= 40);
                        assert_eq!(
                            e.start.div_euclid(SLOT_MINUTES),
                            minute.div_euclid(SLOT_MINUTES)
                        );
                        minutes_in_episode += 1;
                    }
                }
            }
        }
        let share = minutes_in_episode as f64 / (50.0 * SLOT_MINUTES as f64 * 20.0);
        assert!(
            share > 0.005 && share < 0.05,
            "share of minutes in an episode: {share}"
        );
    }
}
