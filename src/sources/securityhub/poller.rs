//! The reads and writes of one account and region, with the Security Hub client
//! injected (tests hand in a mocked one). Each returns the events it produced.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, NoteUpdate, StringFilter,
    StringFilterComparison, WorkflowStatus, WorkflowUpdate,
};

use super::findings::{self, FindingRecord, FleetIndex, Group};
use super::source_name;
use crate::config::SecurityHub;
use crate::model::{Alert, AlertKey, ClusterId, SourceEvent, SourceHealth, Timestamp};
use crate::sources::WriteResult;
use crate::sources::aws::{AwsScope, CallStats, RequestBudget, call};

/// GetFindings returns at most 100 findings a page.
const FINDINGS_PER_PAGE: i32 = 100;
/// A `NextToken` chain longer than this (50,000 findings) is cut short and said so.
const MAX_PAGES: usize = 500;
/// Security Hub answers GetFindings 3 times a second per account and region (burst 6):
/// pages are asked at most this often, so a long read is not throttled (and does not cut
/// the budget EKS and CloudWatch share with it).
pub(super) const PAGE_GAP: std::time::Duration = std::time::Duration::from_millis(334);
/// BatchUpdateFindings takes at most 100 findings a call.
const UPDATE_BATCH: usize = 100;
/// During a long read, what the pages so far say is sent every this many pages.
const PROGRESS_EVERY_PAGES: usize = 10;
/// Security Hub's limits on a note.
const NOTE_TEXT_MAX: usize = 512;
const NOTE_BY_MAX: usize = 128;

/// The source's state for one account and region.
pub(super) struct Poller {
    pub(super) client: Client,
    pub(super) account: String,
    region: String,
    budget: Arc<RequestBudget>,
    pub(super) settings: SecurityHub,
    stats: CallStats,
    health: SourceHealth,
    pub(super) fleet: FleetIndex,
    /// The findings of the last complete read.
    pub(super) findings: Vec<FindingRecord>,
    /// Groups as last sent, by alert key (the findings an ack acts on).
    groups: BTreeMap<AlertKey, (ClusterId, Group)>,
    /// Alerts as last sent, for `alert_diff::settle`.
    firing: BTreeMap<AlertKey, Alert>,
    /// Where the findings of a long read go as its pages come (new and changed alerts;
    /// nothing is resolved until the read is whole), if anywhere.
    pub(super) progress: Option<tokio::sync::mpsc::Sender<SourceEvent>>,
}

impl Poller {
    pub(super) fn new(client: Client, scope: &AwsScope, settings: SecurityHub) -> Self {
        Self {
            client,
            account: scope.account.name.clone(),
            region: scope.region.clone(),
            budget: scope.budget.clone(),
            health: SourceHealth::new(source_name(scope), settings.poll_interval_secs),
            settings,
            stats: CallStats::default(),
            fleet: FleetIndex::default(),
            findings: Vec::new(),
            groups: BTreeMap::new(),
            firing: BTreeMap::new(),
            progress: None,
        }
    }

    /// Reads every page of findings, then sends what changed and the health report. A
    /// failed read keeps the last findings (they go stale) and is retried next poll.
    pub(super) async fn poll(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        match self.read(now).await {
            Ok(findings) => {
                self.findings = findings;
                self.health.last_ok = Some(now);
                let mut out = self.settle(now);
                out.push(self.report(now));
                out
            }
            Err(error) => {
                self.health.last_error = Some(error);
                self.health.last_error_at = Some(now);
                vec![self.report(now)]
            }
        }
    }

    /// The region findings must be from: this one, unless it reads the aggregation region.
    fn own_region(&self) -> Option<&str> {
        match &self.settings.aggregation_region {
            Some(aggregation) if *aggregation == self.region => None,
            _ => Some(&self.region),
        }
    }

    /// The request's filters: active, NEW or NOTIFIED, in this region unless aggregated.
    fn filters(&self) -> AwsSecurityFindingFilters {
        let equals = |value: &str| {
            StringFilter::builder()
                .comparison(StringFilterComparison::Equals)
                .value(value)
                .build()
        };
        let mut filters = AwsSecurityFindingFilters::builder()
            .record_state(equals("ACTIVE"))
            .workflow_status(equals("NEW"))
            .workflow_status(equals("NOTIFIED"));
        if let Some(region) = self.own_region() {
            filters = filters.region(equals(region));
        }
        for resource_type in findings::RESOURCE_TYPES {
            filters = filters.resource_type(equals(resource_type));
        }
        filters.build()
    }

    /// Every page of `GetFindings`, reduced and checked against the filters again.
    async fn read(&mut self, now: Timestamp) -> Result<Vec<FindingRecord>, String> {
        let filters = self.filters();
        let region = self.own_region().map(str::to_string);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut last_page: Option<tokio::time::Instant> = None;
        for read in 1..=MAX_PAGES {
            if let Some(at) = last_page {
                tokio::time::sleep_until(at + PAGE_GAP).await;
            }
            last_page = Some(tokio::time::Instant::now());
            let client = &self.client;
            let page = call(
                &self.budget,
                &mut self.stats,
                "securityhub:GetFindings",
                || {
                    client
                        .get_findings()
                        .filters(filters.clone())
                        .max_results(FINDINGS_PER_PAGE)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await
            .map_err(|e| explain(&e.to_string()))?;
            out.extend(
                page.findings()
                    .iter()
                    .map(|f| FindingRecord::from_finding(f, &self.settings.cluster_field))
                    .filter(|f| f.is_wanted(region.as_deref())),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(out),
            }
            if read % PROGRESS_EVERY_PAGES == 0 {
                self.send_progress(&out, now).await;
            }
        }
        Err(format!(
            "securityhub:GetFindings: more than {MAX_PAGES} pages; the findings are cut short"
        ))
    }

    /// Sends the alerts the findings read so far raise, new or changed ones only: the
    /// read is not whole, so nothing is resolved.
    async fn send_progress(&mut self, so_far: &[FindingRecord], now: Timestamp) {
        let Some(progress) = self.progress.clone() else {
            return;
        };
        let (groups, _) = findings::group(so_far, &self.fleet);
        let mut send = Vec::new();
        for (key, (cluster, group)) in &groups {
            let mut alert = findings::alert(key, cluster, group, now);
            if let Some(old) = self.firing.get(key) {
                crate::sources::alert_diff::carry_over(old, &mut alert, now);
                if *old == alert {
                    continue;
                }
            }
            self.firing.insert(key.clone(), alert.clone());
            send.push(alert);
        }
        if !send.is_empty() {
            // The engine may have stopped; the read goes on and its end says so.
            let _ = progress.send(SourceEvent::Alerts(send)).await;
        }
    }

    /// Groups the findings on the fleet as known now and returns the alerts that changed
    /// (those no longer raised are resolved, never dropped).
    pub(super) fn settle(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let (groups, unclaimed) = findings::group(&self.findings, &self.fleet);
        let alerts: Vec<Alert> = groups
            .iter()
            .map(|(key, (cluster, group))| findings::alert(key, cluster, group, now))
            .collect();
        self.groups = groups;
        if unclaimed > 0 {
            tracing::debug!(
                source = %self.health.name,
                "{unclaimed} findings are on no cluster fleetdeck shows"
            );
        }
        let (send, firing) =
            crate::sources::alert_diff::settle(std::mem::take(&mut self.firing), alerts, now);
        self.firing = firing;
        if send.is_empty() {
            Vec::new()
        } else {
            vec![SourceEvent::Alerts(send)]
        }
    }

    /// Sets the workflow status of the findings behind `alert`: NOTIFIED with a note by
    /// `by` (an ack), or NEW (an un-ack). Returns the answer and the events that follow.
    pub(super) async fn update(
        &mut self,
        alert: &AlertKey,
        notified: bool,
        by: &str,
        note: &str,
        now: Timestamp,
    ) -> (WriteResult, Vec<SourceEvent>) {
        let Some((_, group)) = self.groups.get(alert) else {
            return (
                Err(format!(
                    "{} holds no findings for {alert}: they may have been resolved; read again in a moment",
                    self.health.name
                )),
                Vec::new(),
            );
        };
        let identifiers = group.identifiers();
        let status = if notified {
            WorkflowStatus::Notified
        } else {
            WorkflowStatus::New
        };
        let text = if notified {
            format!("acknowledged by {by} in fleetdeck: {note}")
        } else {
            format!("ack withdrawn by {by} in fleetdeck")
        };
        let text: String = text.chars().take(NOTE_TEXT_MAX).collect();
        let updated_by: String = by.chars().take(NOTE_BY_MAX).collect();
        let mut processed = Vec::new();
        let mut refused = Vec::new();
        let mut failed = None;
        for chunk in identifiers.chunks(UPDATE_BATCH) {
            let ids: Vec<AwsSecurityFindingIdentifier> = chunk
                .iter()
                .map(|(id, product)| {
                    AwsSecurityFindingIdentifier::builder()
                        .id(id)
                        .product_arn(product)
                        .build()
                })
                .collect();
            let client = &self.client;
            let (status_ref, text_ref, by_ref) = (&status, &text, &updated_by);
            let answer = call(
                &self.budget,
                &mut self.stats,
                "securityhub:BatchUpdateFindings",
                || {
                    client
                        .batch_update_findings()
                        .set_finding_identifiers(Some(ids.clone()))
                        .workflow(WorkflowUpdate::builder().status(status_ref.clone()).build())
                        .note(
                            NoteUpdate::builder()
                                .text(text_ref)
                                .updated_by(by_ref)
                                .build(),
                        )
                        .send()
                },
            )
            .await;
            match answer {
                Ok(out) => {
                    processed.extend(
                        out.processed_findings()
                            .iter()
                            .filter_map(|p| p.id())
                            .map(str::to_string),
                    );
                    refused.extend(out.unprocessed_findings().iter().map(|u| {
                        format!(
                            "{}: {} {}",
                            u.finding_identifier().and_then(|f| f.id()).unwrap_or("?"),
                            u.error_code().unwrap_or_default(),
                            u.error_message().unwrap_or_default()
                        )
                    }));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut events = self.mark(&processed, notified, &updated_by, &text, now);
        events.push(self.report(now));
        let word = if notified { "NOTIFIED" } else { "NEW" };
        let result = if let Some(e) = failed {
            Err(match processed.len() {
                0 => e.to_string(),
                n => format!("{e} ({n} findings were updated before it failed)"),
            })
        } else if refused.is_empty() {
            Ok(format!(
                "{} Security Hub finding{} set to {word}",
                processed.len(),
                if processed.len() == 1 { "" } else { "s" }
            ))
        } else {
            Err(format!(
                "{} finding(s) set to {word}; Security Hub refused {}: {}",
                processed.len(),
                refused.len(),
                refused.join("; ")
            ))
        };
        (result, events)
    }

    /// Records the new workflow status of `ids` here (Security Hub has it; the next read
    /// confirms it) and returns the alerts that changed.
    fn mark(
        &mut self,
        ids: &[String],
        notified: bool,
        by: &str,
        text: &str,
        now: Timestamp,
    ) -> Vec<SourceEvent> {
        let ids: std::collections::HashSet<&String> = ids.iter().collect();
        for finding in self.findings.iter_mut().filter(|f| ids.contains(&f.id)) {
            finding.workflow = if notified { "NOTIFIED" } else { "NEW" }.into();
            finding.note = Some((by.to_string(), text.to_string()));
        }
        self.settle(now)
    }

    /// The health report: counters, pace and the last error.
    fn report(&mut self, now: Timestamp) -> SourceEvent {
        self.health.calls = self.stats.calls;
        self.health.errors = self.stats.errors;
        self.health.throttles = self.stats.throttles;
        self.health.pace = Some(self.budget.pace(now));
        // No cost: Security Hub bills findings ingested and checks run, not reads.
        SourceEvent::Health(self.health.clone())
    }

    #[cfg(test)]
    pub(super) fn stats(&self) -> &CallStats {
        &self.stats
    }
}

/// The error, with what to do when Security Hub is not enabled where it was asked.
fn explain(error: &str) -> String {
    if error.contains("not subscribed") || error.contains("InvalidAccessException") {
        format!(
            "{error} (Security Hub is not enabled in this account and region: enable it, or name the region that aggregates the findings in [securityhub] aggregation_region)"
        )
    } else {
        error.to_string()
    }
}
