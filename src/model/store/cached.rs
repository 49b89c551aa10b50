//! What the store shows from the last session's picture (the warm start) until the
//! sources refresh it: which clusters and alerts are only remembered, and from when.
//! Nothing remembered counts as fresh: a cached cluster's health is unknown, a cached
//! alert was restored as `unknown` (never firing now).

use std::collections::HashSet;

use crate::model::{Alert, AlertKey, AlertSource, ClusterId, Timestamp};

#[derive(Debug, Default)]
pub(super) struct Cached {
    /// When the picture was written.
    pub at: Option<Timestamp>,
    pub clusters: HashSet<ClusterId>,
    pub alerts: HashSet<AlertKey>,
}

impl Cached {
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.alerts.is_empty()
    }
}

/// Whether `alert` is one that source `source` (by its name: `cloudwatch:acct/region`,
/// `argocd:hub`, `alertmanager`, ...) reports, so its first complete picture settles it.
pub(super) fn reported_by(alert: &Alert, source: &str) -> bool {
    let (kind, scope) = source.split_once(':').unwrap_or((source, ""));
    let in_scope = || {
        scope.rsplit_once('/').is_some_and(|(account, region)| {
            alert
                .cluster
                .as_ref()
                .is_some_and(|c| c.account == account && c.region == region)
        })
    };
    match (kind, alert.source) {
        ("demo", _) => true,
        ("cloudwatch", AlertSource::Cloudwatch) => in_scope(),
        ("eks", AlertSource::EksHealth | AlertSource::EksInsight) => in_scope(),
        ("argocd", AlertSource::ArgoCd) => true,
        ("alertmanager", AlertSource::Alertmanager) => true,
        ("kubernetes", AlertSource::Kubernetes | AlertSource::PolicyReport) => true,
        // A source reading the aggregation region reports every region of its account.
        ("securityhub", AlertSource::SecurityHub) => {
            scope.rsplit_once('/').is_some_and(|(account, _)| {
                alert.cluster.as_ref().is_some_and(|c| c.account == account)
            })
        }
        _ => false,
    }
}
