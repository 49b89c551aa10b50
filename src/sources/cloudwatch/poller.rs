//! The polls of one account and region, with the CloudWatch client injected (tests hand
//! in a mocked one). Each poll returns the events it produced, its health report last.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, ScanBy};

use super::alarms::{AlarmRecord, SentAlerts, TAG_LOOKUPS_PER_POLL, TagCache};
use super::metrics::{self, Batch, BatchData, CostMeter, FetchKind, Held, MAX_PAGES, Series};
use super::{POLL_INTERVAL_SECS, source_name};
use crate::config::Cloudwatch;
use crate::model::{Alert, ClusterId, MetricName, SourceEvent, SourceHealth, Timestamp};
use crate::sources::aws::{AwsScope, CallKind, CallStats, RequestBudget, call};

/// DescribeAlarms returns at most 100 alarms a page; ask for full pages.
const ALARMS_PER_PAGE: i32 = 100;
/// A `NextToken` chain longer than this (100,000 alarms) is a service bug, not a fleet.
const MAX_ALARM_PAGES: usize = 1000;

/// The CloudWatch source's state for one account and region.
pub(super) struct Poller {
    client: Client,
    account: String,
    region: String,
    budget: Arc<RequestBudget>,
    settings: Cloudwatch,
    stats: CallStats,
    health: SourceHealth,
    tags: TagCache,
    sent: SentAlerts,
    held: Held,
    cost: CostMeter,
    clusters: BTreeSet<ClusterId>,
    focus: Option<ClusterId>,
}

impl Poller {
    pub(super) fn new(client: Client, scope: &AwsScope, settings: Cloudwatch) -> Self {
        Self {
            client,
            account: scope.account.name.clone(),
            region: scope.region.clone(),
            budget: scope.budget.clone(),
            settings,
            stats: CallStats::default(),
            health: SourceHealth::new(source_name(scope), POLL_INTERVAL_SECS),
            tags: TagCache::default(),
            sent: SentAlerts::default(),
            held: Held::default(),
            cost: CostMeter::default(),
            clusters: BTreeSet::new(),
            focus: None,
        }
    }

    /// The cluster whose full metric set is fetched every minute, if any.
    pub(super) fn focus(&self) -> Option<&ClusterId> {
        self.focus.as_ref()
    }

    /// Call counters so far (tests read them).
    #[cfg(test)]
    pub(super) fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// Metrics billed so far (tests read them).
    #[cfg(test)]
    pub(super) fn metrics_requested(&self) -> u64 {
        self.cost.requested_total
    }

    /// Lists every metric and composite alarm, maps each to a cluster, and returns the
    /// alerts that changed, the alarms that disappeared, and the health report.
    pub(super) async fn poll_alarms(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let mut alarms = Vec::new();
        let listed = self.list_alarms(&mut alarms).await;
        let mut warning = None;
        if listed.is_ok() {
            warning = self.read_due_tags(&alarms, now).await;
            let arns: HashSet<&str> = alarms.iter().map(|a| a.arn.as_str()).collect();
            self.tags.retain(&arns);
        }
        let empty = HashMap::new();
        let alerts: Vec<Alert> = alarms
            .iter()
            .map(|a| {
                let tags = self.tags.get(&a.arn).unwrap_or(&empty);
                a.to_alert(tags, &self.settings, &self.account, &self.region, now)
            })
            .collect();
        // After a failed page the listing is partial: update what was seen, remove nothing.
        let (changed, gone) = self.sent.reconcile(alerts, listed.is_ok());
        let mut events = Vec::new();
        if !changed.is_empty() {
            events.push(SourceEvent::Alerts(changed));
        }
        if !gone.is_empty() {
            events.push(SourceEvent::AlertsGone(gone));
        }
        let health = match listed {
            Ok(()) => self.report(now, true, warning),
            Err(e) => self.report(now, false, Some(e)),
        };
        events.push(health);
        events
    }

    /// Every page of `DescribeAlarms`, metric and composite alarms alike (composite alarms
    /// are only returned when asked for by type). On error, `alarms` holds the pages read.
    async fn list_alarms(&mut self, alarms: &mut Vec<AlarmRecord>) -> Result<(), String> {
        let mut token: Option<String> = None;
        for _ in 0..MAX_ALARM_PAGES {
            let client = &self.client;
            let page = call(
                &self.budget,
                &mut self.stats,
                "cloudwatch:DescribeAlarms",
                || {
                    client
                        .describe_alarms()
                        .alarm_types(AlarmType::MetricAlarm)
                        .alarm_types(AlarmType::CompositeAlarm)
                        .max_records(ALARMS_PER_PAGE)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            alarms.extend(
                page.metric_alarms()
                    .iter()
                    .filter_map(AlarmRecord::from_metric),
            );
            alarms.extend(
                page.composite_alarms()
                    .iter()
                    .filter_map(AlarmRecord::from_composite),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next) => {
                    token = Some(next.to_string());
                }
                _ => return Ok(()),
            }
        }
        Err(format!(
            "cloudwatch:DescribeAlarms: more than {MAX_ALARM_PAGES} pages; listing cut short"
        ))
    }

    /// Reads the tags of the alarms due for it (new ones first, then hourly). A failure
    /// keeps what was held; a permissions failure stops this poll's lookups, since the
    /// rest would fail the same way. Returns the error worth reporting, if any.
    async fn read_due_tags(&mut self, alarms: &[AlarmRecord], now: Timestamp) -> Option<String> {
        let mut warning = None;
        for arn in self.tags.due(alarms, now, TAG_LOOKUPS_PER_POLL) {
            let client = &self.client;
            let read = call(
                &self.budget,
                &mut self.stats,
                "cloudwatch:ListTagsForResource",
                || client.list_tags_for_resource().resource_arn(&arn).send(),
            )
            .await;
            match read {
                Ok(out) => {
                    let tags = out
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                        })
                        .collect();
                    self.tags.store(arn, tags, now);
                }
                Err(e) => {
                    self.tags.failed(&arn, now);
                    // Deleted since it was listed: the next listing drops it.
                    if e.kind == CallKind::NotFound {
                        continue;
                    }
                    warning = Some(e.to_string());
                    if e.kind == CallKind::Auth {
                        break;
                    }
                }
            }
        }
        warning
    }

    /// The summary metrics of every known cluster but the focused one (its full set,
    /// summary included, is fetched every minute anyway).
    pub(super) async fn poll_summary(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let series = self.summary_series(self.clusters.iter());
        self.fetch_and_report(series, FetchKind::Summary, now).await
    }

    /// Takes the EKS source's new cluster list: clusters not seen before get their summary
    /// metrics now rather than at the next summary poll; clusters gone are forgotten.
    pub(super) async fn set_clusters(
        &mut self,
        clusters: Vec<ClusterId>,
        now: Timestamp,
    ) -> Vec<SourceEvent> {
        let added = self.replace_clusters(clusters);
        let series = self.summary_series(added.iter());
        self.fetch_and_report(series, FetchKind::Summary, now).await
    }

    /// Takes a cluster list without fetching anything; returns the clusters it added.
    pub(super) fn replace_clusters(&mut self, clusters: Vec<ClusterId>) -> Vec<ClusterId> {
        let clusters: BTreeSet<ClusterId> = clusters.into_iter().collect();
        let added = clusters.difference(&self.clusters).cloned().collect();
        let focus = self.focus.clone();
        self.held
            .retain_clusters(|c| clusters.contains(c) || Some(c) == focus.as_ref());
        self.clusters = clusters;
        added
    }

    /// Takes the cluster now on screen. A new one (in this account and region) has its
    /// full metric set fetched at once; a cluster elsewhere is another source's business.
    pub(super) async fn set_focus(
        &mut self,
        focus: Option<ClusterId>,
        now: Timestamp,
    ) -> Vec<SourceEvent> {
        let focus = focus.filter(|c| c.account == self.account && c.region == self.region);
        if focus == self.focus {
            return Vec::new();
        }
        self.focus = focus;
        // Leaving a cluster changes the cost; entering one fetches it.
        self.poll_focus(now).await
    }

    /// Every metric of the focused cluster.
    pub(super) async fn poll_focus(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let series = match &self.focus {
            Some(cluster) => MetricName::ALL
                .iter()
                .map(|&metric| Series {
                    cluster: cluster.clone(),
                    metric,
                })
                .collect(),
            None => Vec::new(),
        };
        self.fetch_and_report(series, FetchKind::Focus, now).await
    }

    fn summary_series<'a>(&self, clusters: impl Iterator<Item = &'a ClusterId>) -> Vec<Series> {
        clusters
            .filter(|c| Some(*c) != self.focus.as_ref())
            .flat_map(|c| {
                MetricName::SUMMARY.iter().map(|&metric| Series {
                    cluster: c.clone(),
                    metric,
                })
            })
            .collect()
    }

    async fn fetch_and_report(
        &mut self,
        series: Vec<Series>,
        kind: FetchKind,
        now: Timestamp,
    ) -> Vec<SourceEvent> {
        let fetched = !series.is_empty();
        let (mut events, errors) = self.fetch(series, kind, now).await;
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        events.push(self.report(now, fetched && error.is_none(), error));
        events
    }

    /// Fetches `series` in batches of 500 queries, following `NextToken`. A failed batch
    /// is reported and retried next time (its minutes stay unclaimed); the other batches
    /// still count.
    async fn fetch(
        &mut self,
        series: Vec<Series>,
        kind: FetchKind,
        now: Timestamp,
    ) -> (Vec<SourceEvent>, Vec<String>) {
        let now_minute = now.timestamp().div_euclid(60);
        let batches = metrics::plan(series, &self.held, now_minute);
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        let (mut queries_asked, mut billed) = (0, 0);
        let mut complete = true;
        for batch in &batches {
            let mut data = BatchData::default();
            let outcome = self.fetch_batch(batch, &mut data, &mut billed).await;
            queries_asked += batch.series.len();
            match outcome {
                Ok(()) => {
                    for (&index, &minute) in &data.newest {
                        if let Some(series) = batch.series.get(index) {
                            self.held.commit(series.clone(), minute);
                        }
                    }
                }
                Err(e) => {
                    complete = false;
                    errors.push(e);
                }
            }
            if !data.problems.is_empty() {
                errors.push(format!(
                    "cloudwatch:GetMetricData: {}",
                    data.problems.join("; ")
                ));
            }
            // Points that did arrive are real, even from a batch that later failed.
            events.extend(
                data.samples
                    .into_iter()
                    .map(|(cluster, samples)| SourceEvent::Metrics { cluster, samples }),
            );
        }
        if complete {
            self.cost.completed(kind, queries_asked, billed);
        }
        (events, errors)
    }

    async fn fetch_batch(
        &mut self,
        batch: &Batch,
        data: &mut BatchData,
        billed: &mut usize,
    ) -> Result<(), String> {
        let queries = batch.queries();
        let (start, end) = (batch.start_time(), batch.end_time());
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let client = &self.client;
            let page = call(
                &self.budget,
                &mut self.stats,
                "cloudwatch:GetMetricData",
                || {
                    client
                        .get_metric_data()
                        .set_metric_data_queries(Some(queries.clone()))
                        .start_time(start)
                        .end_time(end)
                        .scan_by(ScanBy::TimestampAscending)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            // Billed per metric per call: every page counts every query again.
            self.cost.billed(queries.len());
            *billed += queries.len();
            batch.absorb(&page, data);
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
        Err(format!(
            "cloudwatch:GetMetricData: more than {MAX_PAGES} pages for one batch; cut short"
        ))
    }

    /// The health report after a poll: success moves `last_ok`, an error is recorded
    /// (both can happen: alarms listed but some tags unreadable).
    fn report(&mut self, now: Timestamp, ok: bool, error: Option<String>) -> SourceEvent {
        if ok {
            self.health.last_ok = Some(now);
        }
        if let Some(error) = error {
            self.health.last_error = Some(error);
            self.health.last_error_at = Some(now);
        }
        self.health.calls = self.stats.calls;
        self.health.errors = self.stats.errors;
        self.health.throttles = self.stats.throttles;
        self.health.pace = Some(self.budget.pace(now));
        let summary_series = self
            .clusters
            .iter()
            .filter(|c| Some(*c) != self.focus.as_ref())
            .count()
            * MetricName::SUMMARY.len();
        self.health.cost_usd_per_hour = Some(self.cost.usd_per_hour(
            summary_series,
            self.settings.summary_interval_secs,
            self.focus.is_some(),
        ));
        SourceEvent::Health(self.health.clone())
    }
}
