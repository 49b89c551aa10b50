use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ClusterId, Timestamp};

/// Alert severity, most urgent first so that sorting ascending puts critical on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an alert is firing. `Unknown` is what CloudWatch calls INSUFFICIENT_DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Unknown,
    Resolved,
}

impl AlertState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Unknown => "unknown",
            Self::Resolved => "resolved",
        }
    }
}

/// The system an alert came from. Every source's findings become the same `Alert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertSource {
    Cloudwatch,
    Alertmanager,
    EksHealth,
    EksInsight,
    Kubernetes,
    ArgoCd,
    /// AWS Security Hub findings on a cluster or its Kubernetes objects.
    #[serde(rename = "securityhub")]
    SecurityHub,
    /// Failing results of a cluster's PolicyReports (Kyverno, Gatekeeper...).
    #[serde(rename = "policyreport")]
    PolicyReport,
}

impl AlertSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cloudwatch => "cloudwatch",
            Self::Alertmanager => "alertmanager",
            Self::EksHealth => "eks-health",
            Self::EksInsight => "eks-insight",
            Self::Kubernetes => "kubernetes",
            Self::ArgoCd => "argocd",
            Self::SecurityHub => "securityhub",
            Self::PolicyReport => "policyreport",
        }
    }

    /// Whether the system itself keeps an ack, so every console sees it: Alertmanager
    /// (silences) and Security Hub (workflow status). Other acks are fleetdeck's own.
    pub fn keeps_acks(&self) -> bool {
        matches!(self, Self::Alertmanager | Self::SecurityHub)
    }
}

/// Stable identity of an alert: source + cluster + name + fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertKey(pub String);

impl AlertKey {
    pub fn new(
        source: AlertSource,
        cluster: Option<&ClusterId>,
        name: &str,
        fingerprint: &str,
    ) -> Self {
        let cluster = cluster
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into());
        Self(format!(
            "{}:{}:{}:{}",
            source.as_str(),
            cluster,
            name,
            fingerprint
        ))
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acknowledged an alert, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub until: Option<Timestamp>,
    pub comment: String,
    /// Where the ack lives: fleetdeck's audit log only, or an Alertmanager silence.
    #[serde(default)]
    pub kind: AckKind,
}

/// Where an ack lives, which decides who else sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AckKind {
    /// Recorded in this machine's audit log and shown here only: CloudWatch alarms, EKS
    /// findings and Kubernetes signals have no silences.
    #[default]
    Local,
    /// Alertmanager silences (their ids): every console and Alertmanager's own UI see them.
    Silence { ids: Vec<String> },
    /// Alertmanager inhibits the alert because other alerts fire (their fingerprints).
    Inhibited { by: Vec<String> },
    /// Security Hub findings whose workflow status is NOTIFIED (how many): every console
    /// and Security Hub itself see it; it lasts until someone sets them back to NEW.
    Notified { findings: usize },
}

/// One alert from any source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub source: AlertSource,
    pub cluster: Option<ClusterId>,
    pub name: String,
    pub severity: Severity,
    pub state: AlertState,
    /// When fleetdeck (or the source) first saw it fire.
    pub first_seen: Timestamp,
    /// When its state last changed.
    pub last_change: Timestamp,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    /// The alert's own runbook link (`runbook_url` annotation), if any.
    pub runbook_url: Option<String>,
    pub ack: Option<Ack>,
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.state == AlertState::Firing
    }

    /// Silenced or inhibited by Alertmanager, or a Security Hub finding already NOTIFIED
    /// (and not expired at `now`): shown dimmed.
    pub fn is_suppressed(&self, now: Timestamp) -> bool {
        self.is_acked(now)
            && self
                .ack
                .as_ref()
                .is_some_and(|a| !matches!(a.kind, AckKind::Local))
    }

    /// Acked and the ack has not expired at `now`.
    pub fn is_acked(&self, now: Timestamp) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|a| a.until.is_none_or(|until| until > now))
    }
}
