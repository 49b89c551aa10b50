use std::fmt;

use serde::{Deserialize, Serialize};

/// The EKS control-plane metrics fleetdeck reads (CloudWatch namespace `AWS/EKS`,
/// dimension `ClusterName`, 1-minute period). Values are held as CloudWatch reports them
/// for the statistic fleetdeck asks for: request counts are the per-minute `Sum`, latency
/// `P99` is seconds, the rest `Maximum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MetricName {
    RequestTotal,
    Request4xx,
    Request429,
    Request5xx,
    P99Get,
    P99List,
    P99Put,
    P99Patch,
    P99Post,
    P99Delete,
    InflightMutating,
    InflightReadonly,
    StorageSizeBytes,
    PendingPods,
    UnschedulableAttempts,
    WebhookRejections,
}

/// etcd turns read-only at its quota; on EKS the quota is 8 GiB.
pub const ETCD_QUOTA_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

impl MetricName {
    pub const COUNT: usize = 16;

    pub const ALL: [MetricName; Self::COUNT] = [
        Self::RequestTotal,
        Self::Request4xx,
        Self::Request429,
        Self::Request5xx,
        Self::P99Get,
        Self::P99List,
        Self::P99Put,
        Self::P99Patch,
        Self::P99Post,
        Self::P99Delete,
        Self::InflightMutating,
        Self::InflightReadonly,
        Self::StorageSizeBytes,
        Self::PendingPods,
        Self::UnschedulableAttempts,
        Self::WebhookRejections,
    ];

    /// The few metrics held for every cluster (fleet columns and sparklines); the rest are
    /// fetched only for the cluster on screen.
    pub const SUMMARY: [MetricName; 5] = [
        Self::RequestTotal,
        Self::Request5xx,
        Self::P99Get,
        Self::StorageSizeBytes,
        Self::PendingPods,
    ];

    /// p99 latency metrics, one per verb, with the verb's name.
    pub const LATENCY_BY_VERB: [(MetricName, &'static str); 6] = [
        (Self::P99Get, "GET"),
        (Self::P99List, "LIST"),
        (Self::P99Put, "PUT"),
        (Self::P99Patch, "PATCH"),
        (Self::P99Post, "POST"),
        (Self::P99Delete, "DELETE"),
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The CloudWatch metric name.
    pub fn cloudwatch_name(self) -> &'static str {
        match self {
            Self::RequestTotal => "apiserver_request_total",
            Self::Request4xx => "apiserver_request_total_4XX",
            Self::Request429 => "apiserver_request_total_429",
            Self::Request5xx => "apiserver_request_total_5XX",
            Self::P99Get => "apiserver_request_duration_seconds_GET_P99",
            Self::P99List => "apiserver_request_duration_seconds_LIST_P99",
            Self::P99Put => "apiserver_request_duration_seconds_PUT_P99",
            Self::P99Patch => "apiserver_request_duration_seconds_PATCH_P99",
            Self::P99Post => "apiserver_request_duration_seconds_POST_P99",
            Self::P99Delete => "apiserver_request_duration_seconds_DELETE_P99",
            Self::InflightMutating => "apiserver_current_inflight_requests_MUTATING",
            Self::InflightReadonly => "apiserver_current_inflight_requests_READONLY",
            Self::StorageSizeBytes => "apiserver_storage_size_bytes",
            Self::PendingPods => "scheduler_pending_pods",
            Self::UnschedulableAttempts => "scheduler_schedule_attempts_UNSCHEDULABLE",
            Self::WebhookRejections => "apiserver_admission_webhook_rejection_count",
        }
    }

    /// The CloudWatch statistic fleetdeck requests for this metric.
    pub fn statistic(self) -> &'static str {
        match self {
            Self::RequestTotal
            | Self::Request4xx
            | Self::Request429
            | Self::Request5xx
            | Self::UnschedulableAttempts
            | Self::WebhookRejections => "Sum",
            _ => "Maximum",
        }
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cloudwatch_name())
    }
}

/// A bounded ring of 1-minute points ending at `end_minute` (minutes since the Unix epoch).
/// Missing minutes are NaN. Values are `f32` to keep thousands of clusters in little memory.
#[derive(Clone, Debug)]
pub struct MetricRing {
    end_minute: i64,
    /// `values[(minute mod CAPACITY)]`.
    values: Box<[f32; MetricRing::CAPACITY]>,
    len: usize,
}

impl MetricRing {
    /// 90 minutes: the last hour on screen plus room for late points.
    pub const CAPACITY: usize = 90;

    pub fn new() -> Self {
        Self {
            end_minute: i64::MIN,
            values: Box::new([f32::NAN; Self::CAPACITY]),
            len: 0,
        }
    }

    fn slot(minute: i64) -> usize {
        minute.rem_euclid(Self::CAPACITY as i64) as usize
    }

    /// Records `value` for `minute`. Points older than the ring's window are ignored;
    /// a point for a held minute overwrites it (CloudWatch revises recent minutes).
    pub fn record(&mut self, minute: i64, value: f32) {
        if self.len == 0 {
            self.end_minute = minute;
            self.values[Self::slot(minute)] = value;
            self.len = 1;
            return;
        }
        if minute > self.end_minute {
            let gap = (minute - self.end_minute).min(Self::CAPACITY as i64);
            for m in (minute - gap + 1)..minute {
                self.values[Self::slot(m)] = f32::NAN;
            }
            self.values[Self::slot(minute)] = value;
            self.len = (self.len + gap as usize).min(Self::CAPACITY);
            self.end_minute = minute;
        } else if self.end_minute - minute < self.len as i64 {
            self.values[Self::slot(minute)] = value;
        } else if self.end_minute - minute < Self::CAPACITY as i64 {
            // Older than what is held but still inside the window: extend backwards.
            let extra = (self.end_minute - minute + 1) as usize - self.len;
            for m in (minute + 1)..(self.end_minute + 1 - self.len as i64) {
                self.values[Self::slot(m)] = f32::NAN;
            }
            self.values[Self::slot(minute)] = value;
            self.len += extra;
        }
    }

    /// The newest minute held, if any.
    pub fn end_minute(&self) -> Option<i64> {
        (self.len > 0).then_some(self.end_minute)
    }

    /// The newest non-missing value.
    pub fn latest(&self) -> Option<f32> {
        self.last(self.len).rev().flatten().next()
    }

    /// The value at `minute`, if held.
    pub fn get(&self, minute: i64) -> Option<f32> {
        if self.len == 0 || minute > self.end_minute || self.end_minute - minute >= self.len as i64
        {
            return None;
        }
        let v = self.values[Self::slot(minute)];
        (!v.is_nan()).then_some(v)
    }

    /// The last `n` minutes up to the newest held, oldest first; `None` where missing.
    pub fn last(&self, n: usize) -> impl DoubleEndedIterator<Item = Option<f32>> + '_ {
        let n = n.min(self.len) as i64;
        let end = self.end_minute;
        (end - n + 1..=end).map(move |m| {
            let v = self.values[Self::slot(m)];
            (!v.is_nan()).then_some(v)
        })
    }

    /// `(minute, value)` for the window ending at `end_minute` (inclusive) of `n` minutes,
    /// skipping missing points. Used by charts, which place points on a time axis.
    pub fn window(&self, end_minute: i64, n: usize) -> Vec<(i64, f32)> {
        (end_minute - n as i64 + 1..=end_minute)
            .filter_map(|m| self.get(m).map(|v| (m, v)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for MetricRing {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reads_back_in_order() {
        let mut ring = MetricRing::new();
        for m in 100..110 {
            ring.record(m, m as f32);
        }
        let last: Vec<_> = ring.last(3).collect();
        assert_eq!(last, vec![Some(107.0), Some(108.0), Some(109.0)]);
        assert_eq!(ring.latest(), Some(109.0));
        assert_eq!(ring.len(), 10);
    }

    #[test]
    fn gaps_are_missing_not_stale_values() {
        let mut ring = MetricRing::new();
        ring.record(10, 1.0);
        ring.record(13, 4.0);
        let last: Vec<_> = ring.last(4).collect();
        assert_eq!(last, vec![Some(1.0), None, None, Some(4.0)]);
    }

    #[test]
    fn stays_bounded_and_forgets_the_oldest() {
        let mut ring = MetricRing::new();
        for m in 0..1000 {
            ring.record(m, m as f32);
        }
        assert_eq!(ring.len(), MetricRing::CAPACITY);
        assert_eq!(ring.get(999), Some(999.0));
        assert_eq!(ring.get(999 - MetricRing::CAPACITY as i64), None);
        assert_eq!(ring.get(1000 - MetricRing::CAPACITY as i64), Some(910.0));
    }

    #[test]
    fn late_points_fill_in_and_too_old_points_are_ignored() {
        let mut ring = MetricRing::new();
        ring.record(500, 5.0);
        ring.record(498, 3.0);
        assert_eq!(ring.get(498), Some(3.0));
        assert_eq!(ring.get(499), None);
        assert_eq!(ring.len(), 3);
        ring.record(500 - 200, 1.0);
        assert_eq!(ring.get(300), None);
        ring.record(500, 6.0);
        assert_eq!(ring.latest(), Some(6.0));
    }

    #[test]
    fn a_long_silence_clears_the_window() {
        let mut ring = MetricRing::new();
        ring.record(0, 1.0);
        ring.record(10_000, 2.0);
        assert_eq!(ring.get(0), None);
        assert_eq!(ring.last(MetricRing::CAPACITY).flatten().count(), 1);
    }
}
