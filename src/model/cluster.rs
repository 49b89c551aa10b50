use std::fmt;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A cluster is identified by where it lives: account, region and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterId {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl ClusterId {
    pub fn new(
        account: impl Into<String>,
        region: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.account, self.region, self.name)
    }
}

/// The environment a cluster serves, read from a cluster tag. Ordered from least to most
/// critical so that sorting puts production last (or first, descending).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Dev,
    Staging,
    Prod,
    /// A tag value fleetdeck does not know; shown as written.
    #[serde(untagged)]
    Other(String),
}

impl Environment {
    /// Parses a tag value; common spellings (`production`, `stage`, `development`) are
    /// folded into the four known environments.
    pub fn from_tag(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "sandbox" | "sbx" => Self::Sandbox,
            "dev" | "development" => Self::Dev,
            "staging" | "stage" | "stg" => Self::Staging,
            "prod" | "production" | "prd" => Self::Prod,
            _ => Self::Other(value.trim().to_string()),
        }
    }

    pub fn is_production(&self) -> bool {
        matches!(self, Self::Prod)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// EKS cluster status, as `DescribeCluster` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Creating,
    Active,
    Updating,
    Deleting,
    Failed,
    Pending,
    Unknown,
}

impl ClusterStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
            Self::Failed => "FAILED",
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem EKS reports in `health.issues` of a cluster, add-on or node group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthIssue {
    pub code: String,
    pub message: String,
}

/// Status of an EKS upgrade insight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InsightStatus {
    Passing,
    Warning,
    Error,
    Unknown,
}

impl InsightStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Passing => "PASSING",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// One EKS insight (upgrade readiness or misconfiguration) for a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insight {
    pub id: String,
    pub name: String,
    pub category: String,
    pub status: InsightStatus,
    pub reason: String,
    /// Fetched on demand (`DescribeInsight`) when the cluster is on screen.
    pub detail: Option<InsightDetail>,
}

/// What `DescribeInsight` adds: the recommendation and who still calls deprecated APIs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsightDetail {
    pub description: String,
    pub recommendation: String,
    pub deprecations: Vec<Deprecation>,
}

/// A deprecated API still in use, with the clients calling it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deprecation {
    /// The deprecated resource, e.g. `/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas`.
    pub usage: String,
    pub replaced_with: Option<String>,
    pub stop_serving_version: Option<String>,
    /// `(user agent, requests in the last 30 days, last request)`.
    pub clients: Vec<(String, i64, Option<Timestamp>)>,
}

/// Where a cluster stands on EKS version support.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Support {
    /// `upgradePolicy.supportType`: STANDARD or EXTENDED.
    pub policy: String,
    /// The cluster's version is past standard support and billed as extended support.
    pub in_extended: bool,
    /// What extended support adds to the cluster's cost, US dollars per hour.
    pub extra_usd_per_hour: f64,
}

impl Support {
    /// Extended support costs $0.60 per cluster-hour against $0.10 standard.
    pub const EXTENDED_EXTRA_USD_PER_HOUR: f64 = 0.50;
}

/// An in-flight or finished EKS update (version, add-on, config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksUpdate {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub started: Timestamp,
    pub detail: String,
}

/// An EKS add-on installed on a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub name: String,
    pub version: String,
    pub status: String,
}

/// How much of a cluster its inventory source has read. A listing (`ListClusters`) names
/// clusters long before each one's `DescribeCluster` answers: they are shown at once, and
/// nothing is believed about them but their id until then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Described {
    /// Every field is as the source last read it.
    #[default]
    Yes,
    /// Only listed so far: its description has not come yet.
    Pending,
    /// Only listed, and describing it failed (the source's error says why); tried again
    /// on the next inventory.
    Failed,
}

/// One EKS cluster as fleetdeck knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: ClusterId,
    /// Whether the fields below were read. Until they are, they are placeholders that
    /// nothing may act on: the cluster's health is unknown, its environment places it in
    /// no wave, and a write to it is confirmed as if it served production.
    #[serde(default)]
    pub described: Described,
    pub arn: String,
    pub version: String,
    pub platform_version: String,
    pub status: ClusterStatus,
    pub environment: Environment,
    pub team: Option<String>,
    pub health_issues: Vec<HealthIssue>,
    pub insights: Vec<Insight>,
    pub updates: Vec<EksUpdate>,
    pub addons: Vec<Addon>,
    /// Version support; `None` when the source does not know.
    pub support: Option<Support>,
    /// The API server endpoint and its CA bundle (base64 PEM), from `DescribeCluster`:
    /// what a native connection needs.
    pub endpoint: Option<String>,
    pub certificate_authority: Option<String>,
}

impl Cluster {
    /// Whether its description (version, status, tags, endpoint...) has been read.
    pub fn is_described(&self) -> bool {
        self.described == Described::Yes
    }

    /// Its environment, once its tags have been read.
    pub fn known_environment(&self) -> Option<&Environment> {
        self.is_described().then_some(&self.environment)
    }

    /// Whether it serves production, or might: a cluster not yet described could.
    pub fn may_be_production(&self) -> bool {
        !self.is_described() || self.environment.is_production()
    }

    /// The labels every alert about this cluster carries, whatever its source.
    pub fn alert_labels(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            ("account".to_string(), self.id.account.clone()),
            ("region".to_string(), self.id.region.clone()),
            ("cluster".to_string(), self.id.name.clone()),
            ("environment".to_string(), self.environment.to_string()),
            ("team".to_string(), self.team.clone().unwrap_or_default()),
        ])
    }

    /// The worst insight status, or `Passing` when there are none.
    pub fn insight_summary(&self) -> InsightStatus {
        let worst = |s: InsightStatus| match s {
            InsightStatus::Error => 3,
            InsightStatus::Warning => 2,
            InsightStatus::Unknown => 1,
            InsightStatus::Passing => 0,
        };
        self.insights
            .iter()
            .map(|i| i.status)
            .max_by_key(|s| worst(*s))
            .unwrap_or(InsightStatus::Passing)
    }
}

/// How a cluster looks at a glance, derived from its status and its firing alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterHealth {
    Healthy,
    Warning,
    Critical,
    Unknown,
}

impl ClusterHealth {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Unknown => "unknown",
        }
    }
}
