//! Which EKS control-plane metrics to ask CloudWatch for, packed into as few
//! `GetMetricData` calls as the API allows, asking only for minutes not already held;
//! and what that costs. Pure: no I/O here.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, StatusCode as ResultStatus,
};
use aws_smithy_types::DateTime;

use super::alarms::CLUSTER_DIMENSION;
use crate::model::{ClusterId, MetricName, MetricRing, MetricSample};

/// The EKS control plane publishes its metrics here, per cluster, every minute.
pub(super) const NAMESPACE: &str = "AWS/EKS";
pub(super) const PERIOD_SECS: i32 = 60;
/// `GetMetricData` accepts at most this many queries per call.
pub(super) const MAX_QUERIES_PER_CALL: usize = 500;
/// A metric's first fetch covers the last hour: what the charts show.
pub(super) const BACKFILL_MINUTES: i64 = 60;
/// Never further back than the store's ring holds: older points would be dropped.
pub(super) const MAX_LOOKBACK_MINUTES: i64 = MetricRing::CAPACITY as i64;
/// A runaway `NextToken` chain is cut here; 500 queries of 91 points fit one page anyway.
pub(super) const MAX_PAGES: usize = 20;
/// CloudWatch bills `GetMetricData` at $0.01 per 1,000 metrics requested.
pub(super) const USD_PER_METRIC: f64 = 0.01 / 1000.0;

/// One metric of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Series {
    pub cluster: ClusterId,
    pub metric: MetricName,
}

/// The newest minute received per series, so each fetch asks only for what is missing.
#[derive(Debug, Default)]
pub(super) struct Held {
    newest: HashMap<Series, i64>,
}

impl Held {
    /// First minute to ask for: the newest held (CloudWatch may still revise that partial
    /// minute), else the last hour; never more than the ring's 90 minutes back.
    pub(super) fn start_for(&self, series: &Series, now_minute: i64) -> i64 {
        self.newest
            .get(series)
            .copied()
            .unwrap_or(now_minute - BACKFILL_MINUTES)
            .max(now_minute - MAX_LOOKBACK_MINUTES)
    }

    pub(super) fn commit(&mut self, series: Series, minute: i64) {
        let newest = self.newest.entry(series).or_insert(minute);
        *newest = (*newest).max(minute);
    }

    /// Forgets series of clusters that are gone.
    pub(super) fn retain_clusters(&mut self, keep: impl Fn(&ClusterId) -> bool) {
        self.newest.retain(|s, _| keep(&s.cluster));
    }
}

/// One `GetMetricData` request (all its pages share these queries and times).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Batch {
    /// Inclusive, minutes since the epoch.
    pub start_minute: i64,
    /// Exclusive: the minute after the current (partial) one.
    pub end_minute: i64,
    /// Query `q{i}` asks for `series[i]`.
    pub series: Vec<Series>,
}

/// Packs `series` into batches of at most 500 queries. A call has one StartTime for all
/// its queries, so series are sorted by the minute they need and each batch starts at its
/// earliest: the fewest calls possible (billing is per metric, not per datapoint, so a
/// query sharing an earlier start costs nothing more), and in steady state every query in
/// a batch needs the same minute anyway.
pub(super) fn plan(series: Vec<Series>, held: &Held, now_minute: i64) -> Vec<Batch> {
    let mut wanted: Vec<(i64, Series)> = series
        .into_iter()
        .map(|s| (held.start_for(&s, now_minute), s))
        .collect();
    wanted.sort();
    wanted.dedup_by(|a, b| a.1 == b.1);
    wanted
        .chunks(MAX_QUERIES_PER_CALL)
        .map(|chunk| Batch {
            start_minute: chunk[0].0,
            end_minute: now_minute + 1,
            series: chunk.iter().map(|(_, s)| s.clone()).collect(),
        })
        .collect()
}

impl Batch {
    /// The `MetricDataQueries`: ids `q0`, `q1`... (unique, lowercase first, as required).
    pub(super) fn queries(&self) -> Vec<MetricDataQuery> {
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let metric = Metric::builder()
                    .namespace(NAMESPACE)
                    .metric_name(s.metric.cloudwatch_name())
                    .dimensions(
                        Dimension::builder()
                            .name(CLUSTER_DIMENSION)
                            .value(&s.cluster.name)
                            .build(),
                    )
                    .build();
                MetricDataQuery::builder()
                    .id(format!("q{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(PERIOD_SECS)
                            .stat(s.metric.statistic())
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect()
    }

    pub(super) fn start_time(&self) -> DateTime {
        DateTime::from_secs(self.start_minute * 60)
    }

    pub(super) fn end_time(&self) -> DateTime {
        DateTime::from_secs(self.end_minute * 60)
    }

    /// Adds one page's datapoints to `into`.
    pub(super) fn absorb(&self, page: &GetMetricDataOutput, into: &mut BatchData) {
        for result in page.metric_data_results() {
            let Some(index) = result
                .id()
                .and_then(|id| id.strip_prefix('q'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let Some(series) = self.series.get(index) else {
                continue;
            };
            if let Some(status @ (ResultStatus::Forbidden | ResultStatus::InternalError)) =
                result.status_code()
            {
                let detail = result
                    .messages()
                    .iter()
                    .filter_map(|m| m.value())
                    .collect::<Vec<_>>()
                    .join("; ");
                into.problems.push(format!(
                    "{} for {}: {} {detail}",
                    series.metric,
                    series.cluster.name,
                    status.as_str()
                ));
            }
            for (t, v) in result.timestamps().iter().zip(result.values()) {
                if !v.is_finite() {
                    continue;
                }
                let minute = t.secs().div_euclid(60);
                into.samples
                    .entry(series.cluster.clone())
                    .or_default()
                    .push(MetricSample {
                        metric: series.metric,
                        minute,
                        value: *v as f32,
                    });
                let newest = into.newest.entry(index).or_insert(minute);
                *newest = (*newest).max(minute);
            }
        }
    }
}

/// What one batch's pages returned so far.
#[derive(Debug, Default)]
pub(super) struct BatchData {
    pub samples: BTreeMap<ClusterId, Vec<MetricSample>>,
    /// Newest minute per query index.
    pub newest: HashMap<usize, i64>,
    /// Queries CloudWatch answered with an error status.
    pub problems: Vec<String>,
}

/// Which cadence a fetch belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FetchKind {
    /// The summary metrics of every cluster, every `summary_interval_secs`.
    Summary,
    /// Every metric of the cluster on screen, every minute.
    Focus,
}

/// The cost of `GetMetricData`, as CloudWatch bills it: every query of every call counts
/// as one metric, and every `NextToken` page counts again.
///
/// The hourly figure is *projected from the cadence*: the series each poll covers now
/// (clusters known, cluster on screen) times polls per hour, times the pages per call
/// last seen for that kind of poll. A rolling count would read near zero for the first
/// hour and lag every change of fleet size or focus; the projection is right from the
/// first poll and moves as soon as the fleet does.
#[derive(Debug)]
pub(super) struct CostMeter {
    /// Metrics billed since the source started.
    pub requested_total: u64,
    summary_pages_per_query: f64,
    focus_pages_per_query: f64,
}

impl Default for CostMeter {
    fn default() -> Self {
        Self {
            requested_total: 0,
            summary_pages_per_query: 1.0,
            focus_pages_per_query: 1.0,
        }
    }
}

impl CostMeter {
    /// Records metrics billed by one page of a call.
    pub(super) fn billed(&mut self, metrics: usize) {
        self.requested_total += metrics as u64;
    }

    /// Records a completed fetch: `queries` asked, `billed` metrics over all its pages.
    pub(super) fn completed(&mut self, kind: FetchKind, queries: usize, billed: usize) {
        if queries == 0 {
            return;
        }
        let ratio = (billed as f64 / queries as f64).max(1.0);
        match kind {
            FetchKind::Summary => self.summary_pages_per_query = ratio,
            FetchKind::Focus => self.focus_pages_per_query = ratio,
        }
    }

    /// Metrics requested per hour at the current cadence.
    pub(super) fn metrics_per_hour(
        &self,
        summary_series: usize,
        summary_interval_secs: u64,
        focused: bool,
    ) -> f64 {
        let summary_polls = 3600.0 / summary_interval_secs.max(1) as f64;
        let focus_polls = 3600.0 / super::POLL_INTERVAL_SECS as f64;
        let summary = summary_series as f64 * self.summary_pages_per_query * summary_polls;
        let focus = if focused {
            MetricName::ALL.len() as f64 * self.focus_pages_per_query * focus_polls
        } else {
            0.0
        };
        summary + focus
    }

    /// US dollars per hour at the current cadence.
    pub(super) fn usd_per_hour(
        &self,
        summary_series: usize,
        summary_interval_secs: u64,
        focused: bool,
    ) -> f64 {
        self.metrics_per_hour(summary_series, summary_interval_secs, focused) * USD_PER_METRIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(cluster: &str, metric: MetricName) -> Series {
        Series {
            cluster: ClusterId::new("prod", "us-east-1", cluster),
            metric,
        }
    }

    #[test]
    fn first_fetch_is_the_last_hour_then_from_the_newest_held_minute_capped_at_90() {
        let mut held = Held::default();
        let s = series("a", MetricName::RequestTotal);
        assert_eq!(held.start_for(&s, 1000), 940);
        held.commit(s.clone(), 995);
        held.commit(s.clone(), 990);
        assert_eq!(held.start_for(&s, 1000), 995);
        assert_eq!(held.start_for(&s, 2000), 2000 - 90);
    }

    #[test]
    fn batches_hold_at_most_500_unique_queries_with_valid_ids() {
        let all: Vec<Series> = (0..201)
            .flat_map(|c| MetricName::SUMMARY.map(|m| series(&format!("c{c}"), m)))
            .collect();
        let batches = plan(all, &Held::default(), 1000);
        assert_eq!(
            batches.iter().map(|b| b.series.len()).collect::<Vec<_>>(),
            [500, 500, 5]
        );
        let queries = batches[0].queries();
        let ids: std::collections::HashSet<&str> = queries.iter().filter_map(|q| q.id()).collect();
        assert_eq!(ids.len(), 500);
        assert!(ids.iter().all(|id| {
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }));
        assert_eq!(batches[2].start_time(), DateTime::from_secs(940 * 60));
        assert_eq!(batches[2].end_time(), DateTime::from_secs(1001 * 60));
    }

    #[test]
    fn pages_count_again_in_the_projection() {
        let mut cost = CostMeter::default();
        assert_eq!(cost.metrics_per_hour(100, 300, false), 1200.0);
        assert_eq!(cost.metrics_per_hour(0, 300, true), 960.0);
        cost.completed(FetchKind::Summary, 100, 200);
        assert_eq!(cost.metrics_per_hour(100, 300, false), 2400.0);
        assert!((cost.usd_per_hour(100, 300, false) - 0.024).abs() < 1e-12);
    }
}
