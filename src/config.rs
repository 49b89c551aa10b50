//! The config file: model, discovery and validation.
//!
//! The file lives at `$XDG_CONFIG_HOME/fleetdeck/config.toml` (through `directories`);
//! `--config PATH` or `FLEETDECK_CONFIG` override it. No file means the demo fleet.
//!
//! ```toml
//! mode = "operator"              # or "viewer"
//! theme = "default"              # optional; unset lets NO_COLOR pick "mono"
//! allow_shell = false            # runbook steps may run arbitrary shell only if true
//!
//! [[accounts]]
//! name = "prod"                  # unique, no '/'
//! profile = "prod-readonly"      # optional AWS profile
//! regions = ["us-east-1"]        # required, non-empty
//! role_arn = "arn:aws:iam::123456789012:role/fleetdeck"   # optional
//! endpoint_url = "http://127.0.0.1:5000"                  # optional, for tests
//!
//! [accounts.endpoints]           # optional, per service; each beats endpoint_url
//! eks = "http://127.0.0.1:5000"  # also cloudwatch, securityhub, sts (role_arn's AssumeRole)
//!
//! [organization]                 # optional: the accounts of an AWS Organization
//! profile = "org-management"     # optional: management or delegated-admin account
//! role_name = "fleetdeck-viewer" # required: assumed in each member account
//! external_id = "..."            # optional: the trust policy's sts:ExternalId
//! include = ["*"]                # globs on the account name or id
//! exclude = ["sandbox-*"]        # globs on the account name or id
//! regions = ["us-east-1"]        # required: a list, or "enabled"
//! list_interval_secs = 900       # optional: list the accounts again, 10 to 86400
//!
//! [clusters]
//! include = ["*"]                # globs on the cluster name or account/region/name
//! environment_tag = "env"
//!
//! [hub]                          # optional: the Argo CD hub
//! context = "hub"
//! namespace = "argocd"
//! plans = "plans.yaml"           # optional: rollout plans (soak, gates) by ApplicationSet
//!
//! [[alertmanagers]]
//! name = "amp-prod"              # unique
//! url = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/alertmanager"
//! cluster_label = "cluster"
//! sigv4 = { region = "us-east-1", profile = "prod-readonly" }   # optional
//!
//! [alerts]                       # optional; these are the defaults
//! ack_minutes = 60               # how long an ack (an Alertmanager silence) lasts, 1 to 10080
//!
//! [cloudwatch]                   # optional; these are the defaults
//! cluster_tag = "eks:cluster-name"   # alarm tag naming the cluster (no ClusterName dimension)
//! severity_tag = "severity"          # alarm tag: critical, warning or info
//! summary_interval_secs = 300        # fleet-wide summary metrics, 60 to 3600
//!
//! [securityhub]                  # optional: policy findings from AWS Security Hub
//! aggregation_region = "us-east-1"   # optional: read only this region of each account
//! cluster_field = "cluster"          # finding field naming the cluster (Policy Reporter's)
//! poll_interval_secs = 300           # 60 to 3600
//!
//! [aws]                          # optional; this is the default
//! max_requests_per_second = 10   # per account and region (EKS + CloudWatch), 1 to 100;
//!                                # halved on throttling, climbs back to this
//!
//! [kubernetes]                   # optional; these are the defaults
//! # kubeconfig = "~/.kube/fleet"     # default $KUBECONFIG or ~/.kube/config; missing = none
//! native_auth = true                 # reach EKS clusters without kubeconfig (endpoint + STS token)
//! pool_size = 20                     # clusters connected at once, 1 to 200
//! idle_secs = 300                    # close a connection this long after interest ends, >= 30
//!
//! [kubernetes.contexts]              # optional: kubeconfig context -> account/region/name
//! "prod-use1" = "prod/us-east-1/prod-use1-api-01"
//!
//! [audit]
//! file = "/var/log/fleetdeck/audit.jsonl"   # optional; relative to the config file
//! ```
//!
//! Unknown keys are errors everywhere (a typo must not be silently ignored), and every
//! error names the file, the line and the field, and says what was expected.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::actions::Mode;
use crate::model::ClusterId;
use crate::sources::aws::{RequestBudget, regions};

/// Where fleetdeck reads its config and writes its data and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The config file (it may not exist).
    pub config_file: PathBuf,
    /// User themes live in `themes/` and runbooks in `runbooks/` under this directory.
    pub config_dir: PathBuf,
    /// The audit log lives here.
    pub data_dir: PathBuf,
    /// Logs live here.
    pub state_dir: PathBuf,
    /// True when the config file was named by `--config` or `FLEETDECK_CONFIG`; a missing
    /// file is then an error rather than "run the demo".
    pub explicit: bool,
}

impl Paths {
    /// Standard locations, overridden by `explicit` (from `--config`) or `FLEETDECK_CONFIG`.
    pub fn discover(explicit: Option<PathBuf>) -> Result<Paths, ConfigError> {
        Self::discover_with(explicit, |k| std::env::var(k).ok())
    }

    /// [`Paths::discover`] with the environment injected, for tests.
    pub fn discover_with(
        explicit: Option<PathBuf>,
        get_env: impl Fn(&str) -> Option<String>,
    ) -> Result<Paths, ConfigError> {
        let chosen = explicit.or_else(|| {
            get_env("FLEETDECK_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let project = directories::ProjectDirs::from("", "", "fleetdeck");
        match (chosen, project) {
            (Some(file), project) => {
                let config_dir = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                // Without a home directory, keep everything next to the config file.
                let (data_dir, state_dir) = match &project {
                    Some(p) => (p.data_dir().to_path_buf(), state_dir_of(p)),
                    None => (config_dir.clone(), config_dir.clone()),
                };
                Ok(Paths {
                    config_file: file,
                    config_dir,
                    data_dir,
                    state_dir,
                    explicit: true,
                })
            }
            (None, Some(p)) => Ok(Paths {
                config_file: p.config_dir().join("config.toml"),
                config_dir: p.config_dir().to_path_buf(),
                data_dir: p.data_dir().to_path_buf(),
                state_dir: state_dir_of(&p),
                explicit: false,
            }),
            (None, None) => Err(ConfigError::NoHome),
        }
    }

    /// The user's theme directory, `<config_dir>/themes`.
    pub fn themes_dir(&self) -> PathBuf {
        self.config_dir.join("themes")
    }

    /// The user's runbook directory, `<config_dir>/runbooks`.
    pub fn runbooks_dir(&self) -> PathBuf {
        self.config_dir.join("runbooks")
    }
}

/// XDG state dir on Linux; other platforms have none, so use the local data dir.
fn state_dir_of(p: &directories::ProjectDirs) -> PathBuf {
    p.state_dir()
        .unwrap_or_else(|| p.data_local_dir())
        .to_path_buf()
}

/// The whole config file, validated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Operator or viewer. `--viewer` on the command line can only make this stricter.
    pub mode: Mode,
    /// Theme name; `None` when the file does not choose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Whether runbook steps may run arbitrary shell commands.
    pub allow_shell: bool,
    /// AWS accounts to discover EKS clusters in.
    pub accounts: Vec<Account>,
    /// The AWS Organization whose member accounts are read too (`[organization]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// Which discovered clusters to show, and how to read their environment.
    pub clusters: Clusters,
    /// The Argo CD hub cluster, if rollouts are driven by Argo CD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<Hub>,
    /// Alertmanager (or Amazon Managed Prometheus) endpoints to read alerts from.
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// How alerts are acknowledged.
    pub alerts: AlertSettings,
    /// How CloudWatch alarms map to clusters and how often fleet metrics are read.
    pub cloudwatch: Cloudwatch,
    /// Policy findings from AWS Security Hub (`[securityhub]`), when the file asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub securityhub: Option<SecurityHub>,
    /// How fast fleetdeck may call AWS.
    pub aws: Aws,
    /// How the clusters' API servers are reached.
    pub kubernetes: Kubernetes,
    /// Where the audit log goes.
    pub audit: Audit,
    /// Read the fleet from a `fleetdeck serve` instead of the sources (`[connect]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectSettings>,
    /// What looks wrong but does not stop the start (a region this build does not know),
    /// each naming file, line and field: printed at start, never fatal.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Where some fields were written, for problems found after loading.
    #[serde(skip)]
    pub locations: FieldLocations,
}

/// Where fields were written, for problems found after loading (an AWS profile missing
/// from the AWS files). Not part of what the config says: any two compare equal.
#[derive(Clone, Debug, Default)]
pub struct FieldLocations {
    /// By account name: its `profile` field, as an issue without a message.
    profiles: HashMap<String, ConfigIssue>,
}

impl PartialEq for FieldLocations {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl FieldLocations {
    /// `message` about the `profile` of account `account`, located in the file.
    pub fn profile_issue(&self, account: &str, message: String) -> Option<ConfigIssue> {
        self.profiles.get(account).map(|at| ConfigIssue {
            message,
            ..at.clone()
        })
    }
}

/// One AWS account (`[[accounts]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Unique display name; the first part of a `ClusterId`.
    pub name: String,
    /// AWS profile to use; the default credential chain when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Regions to look for clusters in; never empty.
    pub regions: Vec<String>,
    /// A role to assume on top of the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// An AWS-compatible endpoint (e.g. an emulator in tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Endpoints per service (`[accounts.endpoints]`), each beating `endpoint_url`.
    #[serde(skip_serializing_if = "ServiceEndpoints::is_empty")]
    pub endpoints: ServiceEndpoints,
}

/// `[accounts.endpoints]`: an endpoint per AWS service fleetdeck calls. A service left out
/// goes where `AWS_ENDPOINT_URL_<SERVICE>`, then `endpoint_url`, then the SDK send it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceEndpoints {
    /// EKS (clusters, insights, add-ons, node groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eks: Option<String>,
    /// CloudWatch (alarms, metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<String>,
    /// STS, for assuming the account's `role_arn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts: Option<String>,
    /// Security Hub (policy findings, `[securityhub]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub securityhub: Option<String>,
}

impl ServiceEndpoints {
    /// The service names the config accepts, as written there.
    pub const SERVICES: [&'static str; 4] = ["eks", "cloudwatch", "sts", "securityhub"];

    /// True when no service has an endpoint of its own.
    pub fn is_empty(&self) -> bool {
        self.eks.is_none()
            && self.cloudwatch.is_none()
            && self.sts.is_none()
            && self.securityhub.is_none()
    }

    /// The endpoint of the service the AWS SDK calls `service_id` (`EKS`, `CloudWatch`,
    /// `STS`), if one is set.
    pub fn for_service_id(&self, service_id: &str) -> Option<&str> {
        let url = match service_id.to_ascii_lowercase().as_str() {
            "eks" => &self.eks,
            "cloudwatch" => &self.cloudwatch,
            "sts" => &self.sts,
            "securityhub" => &self.securityhub,
            _ => return None,
        };
        url.as_deref()
    }
}

/// `[organization]`: the member accounts of an AWS Organization, listed through the
/// management (or delegated-admin) account and read through a role assumed in each.
#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    /// The AWS profile of the management or delegated-admin account; the default
    /// credential chain when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The role assumed in each member account: `arn:aws:iam::{id}:role/{role_name}`.
    pub role_name: String,
    /// The `sts:ExternalId` the member role's trust policy asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Globs on the account name or id: the accounts read.
    pub include: Vec<String>,
    /// Globs on the account name or id: accounts left out even if included.
    pub exclude: Vec<String>,
    /// The regions read in every member account.
    pub regions: OrganizationRegions,
    /// How often the organization's accounts are listed again, seconds.
    pub list_interval_secs: u64,
    #[serde(skip)]
    include_set: GlobSet,
    #[serde(skip)]
    exclude_set: GlobSet,
}

impl PartialEq for Organization {
    fn eq(&self, other: &Self) -> bool {
        self.profile == other.profile
            && self.role_name == other.role_name
            && self.external_id == other.external_id
            && self.include == other.include
            && self.exclude == other.exclude
            && self.regions == other.regions
            && self.list_interval_secs == other.list_interval_secs
    }
}

/// `regions` of `[organization]`: a list, or `"enabled"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationRegions {
    /// These regions in every account.
    Listed(Vec<String>),
    /// The regions enabled in each account (the Account API's `ListRegions`).
    Enabled,
}

impl Serialize for OrganizationRegions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Listed(regions) => regions.serialize(serializer),
            Self::Enabled => serializer.serialize_str(Organization::ENABLED_REGIONS),
        }
    }
}

impl Organization {
    /// The word `regions` takes for "the regions enabled in each account".
    pub const ENABLED_REGIONS: &'static str = "enabled";
    /// Accounts are listed again every 15 minutes unless told otherwise.
    pub const DEFAULT_LIST_INTERVAL_SECS: u64 = 15 * 60;
    /// Listing more often than this spends the management account's quota for nothing.
    pub const MIN_LIST_INTERVAL_SECS: u64 = 10;
    /// A day: accounts that join should not wait longer.
    pub const MAX_LIST_INTERVAL_SECS: u64 = 24 * 60 * 60;

    /// Builds the section, compiling the globs (tests and code; the file is validated).
    pub fn new(
        role_name: impl Into<String>,
        include: Vec<String>,
        exclude: Vec<String>,
        regions: OrganizationRegions,
    ) -> Result<Self, globset::Error> {
        Ok(Self {
            profile: None,
            role_name: role_name.into(),
            external_id: None,
            include_set: glob_set(&include)?,
            exclude_set: glob_set(&exclude)?,
            include,
            exclude,
            regions,
            list_interval_secs: Self::DEFAULT_LIST_INTERVAL_SECS,
        })
    }

    /// Whether the account (by its name or its id) is read: some `include` glob matches
    /// and no `exclude` glob does.
    pub fn includes(&self, id: &str, name: &str) -> bool {
        let matches = |set: &GlobSet| set.is_match(id) || set.is_match(name);
        matches(&self.include_set) && !matches(&self.exclude_set)
    }

    /// The ARN of the role assumed in account `id`, in `partition` (`aws`, `aws-us-gov`...).
    pub fn role_arn(&self, partition: &str, id: &str) -> String {
        format!("arn:{partition}:iam::{id}:role/{}", self.role_name)
    }
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern)?);
    }
    builder.build()
}

/// `[clusters]`: which clusters to show and which tag holds the environment.
#[derive(Clone, Debug, Serialize)]
pub struct Clusters {
    /// Globs matched against the cluster name and against `account/region/name`.
    pub include: Vec<String>,
    /// The cluster tag whose value is the environment (`prod`, `staging`, ...).
    pub environment_tag: String,
    #[serde(skip)]
    include_set: GlobSet,
}

impl PartialEq for Clusters {
    fn eq(&self, other: &Self) -> bool {
        self.include == other.include && self.environment_tag == other.environment_tag
    }
}

impl Default for Clusters {
    fn default() -> Self {
        Self::new(vec!["*".into()], "env".into()).unwrap_or_else(|_| Self {
            include: vec!["*".into()],
            environment_tag: "env".into(),
            include_set: GlobSet::empty(),
        })
    }
}

impl Clusters {
    /// Builds the section, compiling the globs.
    pub fn new(include: Vec<String>, environment_tag: String) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &include {
            builder.add(Glob::new(pattern)?);
        }
        Ok(Self {
            include_set: builder.build()?,
            include,
            environment_tag,
        })
    }

    /// Whether a cluster passes the `include` filter.
    pub fn includes(&self, id: &ClusterId) -> bool {
        self.include_set.is_match(&id.name) || self.include_set.is_match(id.to_string())
    }
}

/// `[hub]`: the kubeconfig context of the Argo CD hub cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hub {
    /// kubeconfig context name.
    pub context: String,
    /// Namespace Argo CD runs in.
    pub namespace: String,
    /// A YAML file of rollout plans by ApplicationSet name (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<PathBuf>,
}

/// One `[[alertmanagers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertmanagerConfig {
    /// Unique display name.
    pub name: String,
    /// Base URL of the Alertmanager API.
    pub url: String,
    /// The alert label that names the cluster.
    pub cluster_label: String,
    /// SigV4 signing, for Amazon Managed Prometheus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4>,
}

/// `[alerts]`: how alerts are acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertSettings {
    /// How long an ack lasts: the length of an Alertmanager silence, or of a local ack.
    pub ack_minutes: u64,
}

impl AlertSettings {
    /// One hour.
    pub const DEFAULT_ACK_MINUTES: u64 = 60;
    /// A week: longer is a maintenance silence, made in Alertmanager, not an ack.
    pub const MAX_ACK_MINUTES: u64 = 7 * 24 * 60;
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            ack_minutes: Self::DEFAULT_ACK_MINUTES,
        }
    }
}

/// SigV4 request signing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sigv4 {
    /// Region of the signed service.
    pub region: String,
    /// AWS profile for the signing credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// `[cloudwatch]`: how alarms are tied to clusters, and the fleet-wide metric cadence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cloudwatch {
    /// The alarm tag naming its cluster, for alarms without a `ClusterName` dimension.
    pub cluster_tag: String,
    /// The alarm tag holding its severity (`critical`, `warning` or `info`).
    pub severity_tag: String,
    /// Seconds between reads of the summary metrics of every cluster. Each read is billed
    /// per metric, so this is the main cost knob on a large fleet.
    pub summary_interval_secs: u64,
}

impl Cloudwatch {
    /// The default summary cadence: five minutes.
    pub const DEFAULT_SUMMARY_INTERVAL_SECS: u64 = 300;
    /// CloudWatch's EKS metrics have 1-minute resolution: reading faster buys nothing.
    pub const MIN_SUMMARY_INTERVAL_SECS: u64 = 60;
    /// Sparklines show the last hour; a slower cadence would leave them mostly empty.
    pub const MAX_SUMMARY_INTERVAL_SECS: u64 = 3600;
}

impl Default for Cloudwatch {
    fn default() -> Self {
        Self {
            cluster_tag: "eks:cluster-name".into(),
            severity_tag: "severity".into(),
            summary_interval_secs: Self::DEFAULT_SUMMARY_INTERVAL_SECS,
        }
    }
}

/// `[securityhub]`: read policy findings from AWS Security Hub in every account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityHub {
    /// Read only this region of each account (the cross-Region aggregation region, which
    /// holds every linked region's findings); `None`: every region of the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation_region: Option<String>,
    /// The key of a finding's `Resources[].Details.Other` or `ProductFields` naming its
    /// cluster (Policy Reporter's `customFields`), matched case-insensitively.
    pub cluster_field: String,
    /// Seconds between reads of the findings.
    pub poll_interval_secs: u64,
}

impl SecurityHub {
    pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 300;
    pub const MIN_POLL_INTERVAL_SECS: u64 = 60;
    pub const MAX_POLL_INTERVAL_SECS: u64 = 3600;
}

impl Default for SecurityHub {
    fn default() -> Self {
        Self {
            aggregation_region: None,
            cluster_field: "cluster".into(),
            poll_interval_secs: Self::DEFAULT_POLL_INTERVAL_SECS,
        }
    }
}

/// `[aws]`: how fast fleetdeck may call AWS.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aws {
    /// The request rate each account and region starts at and climbs back to after
    /// throttling halved it, shared by its EKS and CloudWatch sources.
    pub max_requests_per_second: f64,
}

impl Aws {
    /// Below one request a second, a thousand clusters take over a quarter of an hour.
    pub const MIN_REQUESTS_PER_SECOND: f64 = 1.0;
    /// Ten times AWS's published rates for the reads fleetdeck makes (CloudWatch
    /// `DescribeAlarms` 9/s, `ListTagsForResource` 10/s), for accounts whose quotas were
    /// raised; throttling still halves it.
    pub const MAX_REQUESTS_PER_SECOND: f64 = 100.0;
}

impl Default for Aws {
    fn default() -> Self {
        Self {
            max_requests_per_second: RequestBudget::DEFAULT_CEILING,
        }
    }
}

/// `[kubernetes]`: how fleetdeck reaches the API servers of the clusters of interest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kubernetes {
    /// The kubeconfig file; `None` means `$KUBECONFIG` or `~/.kube/config`. A missing file
    /// means no contexts, not an error. Relative paths are resolved against the config
    /// file's directory when loaded; a leading `~/` is the home directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Reach EKS clusters with no kubeconfig context through their endpoint, CA and a
    /// bearer token signed with the account's AWS credentials.
    pub native_auth: bool,
    /// How many clusters may be connected (and watched) at once.
    pub pool_size: usize,
    /// Seconds a connection stays open after its cluster stops being of interest.
    pub idle_secs: u64,
    /// kubeconfig context name -> the cluster it reaches, for contexts that cannot be
    /// matched by the EKS ARN or the endpoint.
    #[serde(serialize_with = "cluster_ids_as_strings")]
    pub contexts: BTreeMap<String, ClusterId>,
}

impl Kubernetes {
    /// The default pool: a screenful of clusters plus those with alerts or in a wave.
    pub const DEFAULT_POOL_SIZE: usize = 20;
    /// Each connection holds a few watches; beyond this a laptop and the API servers suffer.
    pub const MAX_POOL_SIZE: usize = 200;
    /// Five minutes: flicking between clusters does not reconnect each time.
    pub const DEFAULT_IDLE_SECS: u64 = 300;
    /// Shorter than this, moving the cursor over a cluster would churn connections.
    pub const MIN_IDLE_SECS: u64 = 30;
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            native_auth: true,
            pool_size: Self::DEFAULT_POOL_SIZE,
            idle_secs: Self::DEFAULT_IDLE_SECS,
            contexts: BTreeMap::new(),
        }
    }
}

/// `[kubernetes.contexts]` is written as `"ctx" = "account/region/name"`.
fn cluster_ids_as_strings<S: serde::Serializer>(
    contexts: &BTreeMap<String, ClusterId>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(contexts.iter().map(|(k, v)| (k, v.to_string())))
}

/// `[audit]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// The audit log file; default `<data_dir>/audit.jsonl`. Relative paths are resolved
    /// against the config file's directory when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// `[connect]`: the server whose feed this console shows (`fleetdeck serve`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectSettings {
    /// `http://HOST:PORT` or `https://HOST:PORT` of the server.
    pub url: String,
    /// A file holding the bearer token (its first line). Relative paths are resolved
    /// against the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the server's, instead of the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) to present, and its key: instead of or beside a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No home directory and no explicit config path.
    #[error(
        "cannot find a home directory for the config; pass --config PATH or set FLEETDECK_CONFIG"
    )]
    NoHome,
    /// An explicitly named config file does not exist.
    #[error("{}: config file not found", path.display())]
    NotFound { path: PathBuf },
    /// The file exists but could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config; every problem found is listed.
    #[error("{}", issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { issues: Vec<ConfigIssue> },
}

/// One problem in a config file: where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Where in the document, for people: `field 'regions' in [[accounts]] 'prod'`;
    /// empty for the document as a whole.
    pub context: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.context.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.context, self.message)
        }
    }
}

impl Config {
    /// Reads `paths.config_file`. A missing file is `Ok(None)` (run the demo) unless the
    /// path was given explicitly.
    pub fn load(paths: &Paths, explicit: bool) -> Result<Option<Config>, ConfigError> {
        let path = &paths.config_file;
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if explicit {
                    Err(ConfigError::NotFound { path: path.clone() })
                } else {
                    Ok(None)
                }
            }
            Err(source) => Err(ConfigError::Io {
                path: path.clone(),
                source,
            }),
        }
    }

    /// Parses and validates config text; `origin` is the file named in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            issues: vec![serde_issue(text, origin, &e)],
        })?;
        let mut v = Validator {
            text,
            file: origin,
            issues: Vec::new(),
            warnings: Vec::new(),
            profile_locations: HashMap::new(),
        };
        let mut config = v.convert(raw, origin);
        config.warnings = v.warnings.iter().map(ToString::to_string).collect();
        config.locations = FieldLocations {
            profiles: std::mem::take(&mut v.profile_locations),
        };
        if v.issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { issues: v.issues })
        }
    }

    /// True when the file names any real system to read from; otherwise run the demo.
    /// An `[organization]` alone is a real fleet.
    pub fn has_real_sources(&self) -> bool {
        !self.accounts.is_empty()
            || self.organization.is_some()
            || self.hub.is_some()
            || !self.alertmanagers.is_empty()
    }

    /// The audit log file: as configured, else `<data_dir>/audit.jsonl`.
    pub fn audit_file(&self, paths: &Paths) -> PathBuf {
        self.audit
            .file
            .clone()
            .unwrap_or_else(|| paths.data_dir.join("audit.jsonl"))
    }
}

// ---- The file as written: every field spanned where validation needs a line. ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Mode,
    theme: Option<Spanned<String>>,
    #[serde(default)]
    allow_shell: bool,
    #[serde(default)]
    accounts: Vec<Spanned<RawAccount>>,
    organization: Option<Spanned<RawOrganization>>,
    clusters: Option<RawClusters>,
    hub: Option<RawHub>,
    #[serde(default)]
    alertmanagers: Vec<Spanned<RawAlertmanager>>,
    alerts: Option<RawAlerts>,
    cloudwatch: Option<RawCloudwatch>,
    securityhub: Option<RawSecurityHub>,
    aws: Option<RawAws>,
    kubernetes: Option<RawKubernetes>,
    audit: Option<RawAudit>,
    connect: Option<RawConnect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Spanned<String>,
    profile: Option<Spanned<String>>,
    regions: Spanned<Vec<Spanned<String>>>,
    role_arn: Option<Spanned<String>>,
    endpoint_url: Option<Spanned<String>>,
    endpoints: Option<RawEndpoints>,
}

/// Unknown service names are refused by serde, naming the ones accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoints {
    eks: Option<Spanned<String>>,
    cloudwatch: Option<Spanned<String>>,
    sts: Option<Spanned<String>>,
    securityhub: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    profile: Option<Spanned<String>>,
    role_name: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    include: Option<Spanned<Vec<Spanned<String>>>>,
    exclude: Option<Spanned<Vec<Spanned<String>>>>,
    regions: Option<Spanned<RawOrgRegions>>,
    list_interval_secs: Option<Spanned<i64>>,
}

/// `regions = [...]` or `regions = "enabled"`, each item keeping its place in the file.
enum RawOrgRegions {
    List(Vec<Spanned<String>>),
    Word(String),
}

impl<'de> Deserialize<'de> for RawOrgRegions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawOrgRegions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of AWS regions or \"enabled\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawOrgRegions::Word(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawOrgRegions::List(items))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClusters {
    include: Option<Spanned<Vec<Spanned<String>>>>,
    environment_tag: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    context: Spanned<String>,
    namespace: Option<Spanned<String>>,
    plans: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    name: Spanned<String>,
    url: Spanned<String>,
    cluster_label: Option<Spanned<String>>,
    sigv4: Option<RawSigv4>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    /// Signed so that a negative number gets our message rather than serde's.
    ack_minutes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigv4 {
    region: Spanned<String>,
    profile: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloudwatch {
    cluster_tag: Option<Spanned<String>>,
    severity_tag: Option<Spanned<String>>,
    /// Signed so that a negative number gets our message rather than serde's.
    summary_interval_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurityHub {
    aggregation_region: Option<Spanned<String>>,
    cluster_field: Option<Spanned<String>>,
    /// Signed so that a negative number gets our message rather than serde's.
    poll_interval_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    /// A float, so that `10` and `2.5` are both read; bounds are checked after.
    max_requests_per_second: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    kubeconfig: Option<Spanned<String>>,
    native_auth: Option<bool>,
    /// Signed so that a negative number gets our message rather than serde's.
    pool_size: Option<Spanned<i64>>,
    idle_secs: Option<Spanned<i64>>,
    #[serde(default)]
    contexts: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnect {
    url: Spanned<String>,
    token_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    client_cert: Option<Spanned<String>>,
    client_key: Option<Spanned<String>>,
}

/// One step of a path into the document: a key or an array index.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Turns a toml/serde error into an issue, finding the field from the error's span.
fn serde_issue(text: &str, file: &Path, err: &toml::de::Error) -> ConfigIssue {
    let message = err.message().trim().replace('`', "'");
    let Some(span) = err.span() else {
        return ConfigIssue {
            file: file.to_path_buf(),
            line: None,
            context: String::new(),
            message,
        };
    };
    let line = Some(line_at(text, span.start));
    match toml::de::DeTable::parse(text) {
        // Syntax errors: the document has no structure to point into.
        Err(_) => ConfigIssue {
            file: file.to_path_buf(),
            line,
            context: String::new(),
            message: format!("invalid TOML: {message}"),
        },
        Ok(doc) => {
            let mut path = Vec::new();
            locate(doc.get_ref(), &span, &mut path);
            ConfigIssue {
                file: file.to_path_buf(),
                line,
                context: describe(&path, |table, index| {
                    name_in_doc(doc.get_ref(), table, index)
                }),
                message,
            }
        }
    }
}

/// Finds the deepest key or value containing `span.start`, recording its path. Table
/// spans cover only their `[header]`, so every entry is searched, not just one subtree.
fn locate(table: &toml::de::DeTable<'_>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table {
        path.push(Seg::Key(key.get_ref().to_string()));
        if key.span().contains(&span.start) || locate_value(value, span, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn locate_value(
    value: &Spanned<toml::de::DeValue<'_>>,
    span: &Range<usize>,
    path: &mut Vec<Seg>,
) -> bool {
    use toml::de::DeValue;
    let found = match value.get_ref() {
        DeValue::Table(t) => locate(t, span, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(Seg::Index(i));
            let hit = locate_value(item, span, path);
            if !hit {
                path.pop();
            }
            hit
        }),
        _ => false,
    };
    found || value.span().contains(&span.start) || value.span() == *span
}

/// The `name` of element `index` of array-of-tables `table`, from the parsed document.
fn name_in_doc(doc: &toml::de::DeTable<'_>, table: &str, index: usize) -> Option<String> {
    let (_, value) = doc.iter().find(|(k, _)| k.get_ref() == table)?;
    let item = value.get_ref().as_array()?.get(index)?;
    let (_, name) = item
        .get_ref()
        .as_table()?
        .iter()
        .find(|(k, _)| k.get_ref() == "name")?;
    name.get_ref().as_str().map(str::to_string)
}

/// Human wording for a path: `field 'regions' in [[accounts]] 'prod'`.
fn describe(path: &[Seg], name_of: impl Fn(&str, usize) -> Option<String>) -> String {
    let (table, rest) = match path {
        [] => return String::new(),
        [Seg::Key(k)] => return format!("field '{k}'"),
        [Seg::Key(k), Seg::Index(i), rest @ ..] => {
            let ident = name_of(k, *i).map_or_else(|| format!("#{}", i + 1), |n| format!("'{n}'"));
            (format!("[[{k}]] {ident}"), rest)
        }
        [Seg::Key(k), rest @ ..] => (format!("[{k}]"), rest),
        [Seg::Index(_), ..] => return String::new(),
    };
    let mut keys: Vec<String> = Vec::new();
    let mut item = None;
    for seg in rest {
        match seg {
            Seg::Key(k) => keys.push(k.clone()),
            Seg::Index(i) => item = Some(*i),
        }
    }
    let Some(field) = keys.pop() else {
        return table;
    };
    let item = item.map_or_else(String::new, |i| format!(" (item {})", i + 1));
    if keys.is_empty() {
        format!("field '{field}'{item} in {table}")
    } else {
        format!("field '{field}'{item} of {} in {table}", keys.join("."))
    }
}

/// Converts the raw file into [`Config`], collecting every validation problem.
struct Validator<'a> {
    text: &'a str,
    file: &'a Path,
    issues: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
    profile_locations: HashMap<String, ConfigIssue>,
}

impl Validator<'_> {
    fn issue(
        &mut self,
        span: Range<usize>,
        path: &[Seg],
        names: &[(&str, usize, &str)],
        message: String,
    ) {
        let issue = self.located(span, path, names, message);
        self.issues.push(issue);
    }

    /// Like [`Self::issue`], for what is suspicious but usable.
    fn warn(
        &mut self,
        span: Range<usize>,
        path: &[Seg],
        names: &[(&str, usize, &str)],
        message: String,
    ) {
        let warning = self.located(span, path, names, message);
        self.warnings.push(warning);
    }

    fn located(
        &self,
        span: Range<usize>,
        path: &[Seg],
        names: &[(&str, usize, &str)],
        message: String,
    ) -> ConfigIssue {
        let context = describe(path, |table, index| {
            names
                .iter()
                .find(|(t, i, _)| *t == table && *i == index)
                .map(|(_, _, n)| n.to_string())
        });
        ConfigIssue {
            file: self.file.to_path_buf(),
            line: Some(line_at(self.text, span.start)),
            context,
            message,
        }
    }

    fn convert(&mut self, raw: RawConfig, origin: &Path) -> Config {
        let key = |k: &str| Seg::Key(k.to_string());

        let theme = raw.theme.map(|t| {
            if t.get_ref().trim().is_empty() {
                self.issue(
                    t.span(),
                    &[key("theme")],
                    &[],
                    "expected a theme name such as 'default', 'light', 'high-contrast' or 'mono'"
                        .into(),
                );
            }
            t.into_inner()
        });

        // [[accounts]]
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut accounts = Vec::new();
        for (i, spanned) in raw.accounts.into_iter().enumerate() {
            let account = spanned.into_inner();
            let name = account.name.get_ref().clone();
            let names = [("accounts", i, name.as_str())];
            let at = |field: &str| vec![key("accounts"), Seg::Index(i), key(field)];
            if name.trim().is_empty() || name.contains('/') {
                self.issue(
                    account.name.span(),
                    &at("name"),
                    &names,
                    "expected a non-empty account name without '/'".into(),
                );
            } else if let Some(first) = seen.get(&name) {
                self.issue(
                    account.name.span(),
                    &at("name"),
                    &names,
                    format!("duplicate account name '{name}' (first used on line {first}); expected each name once"),
                );
            } else {
                seen.insert(name.clone(), line_at(self.text, account.name.span().start));
            }
            if let Some(p) = &account.profile {
                if p.get_ref().trim().is_empty() {
                    self.issue(p.span(), &at("profile"), &names, "expected a non-empty AWS profile name (leave it out to use the default credential chain)".into());
                }
                let at_profile = self.located(p.span(), &at("profile"), &names, String::new());
                self.profile_locations.insert(name.clone(), at_profile);
            }
            let regions = account.regions.get_ref();
            if regions.is_empty() {
                self.issue(
                    account.regions.span(),
                    &at("regions"),
                    &names,
                    "expected a non-empty list of AWS regions".into(),
                );
            }
            let mut region_seen = Vec::new();
            for (j, region) in regions.iter().enumerate() {
                let mut path = at("regions");
                path.push(Seg::Index(j));
                let r = region.get_ref();
                let known = regions::is_known(r);
                if !known && !is_aws_region(r) {
                    self.issue(
                        region.span(),
                        &path,
                        &names,
                        format!("expected an AWS region like 'us-east-1', found '{r}'"),
                    );
                } else if region_seen.contains(r) {
                    self.issue(
                        region.span(),
                        &path,
                        &names,
                        format!("region '{r}' is listed twice; expected each region once"),
                    );
                } else if !known {
                    self.warn(region.span(), &path, &names, unknown_region(r));
                }
                region_seen.push(r.clone());
            }
            if let Some(arn) = &account.role_arn
                && !is_role_arn(arn.get_ref())
            {
                self.issue(arn.span(), &at("role_arn"), &names, format!("expected an IAM role ARN like 'arn:aws:iam::123456789012:role/fleetdeck', found '{}'", arn.get_ref()));
            }
            if let Some(url) = &account.endpoint_url
                && !is_http_url(url.get_ref())
            {
                self.issue(
                    url.span(),
                    &at("endpoint_url"),
                    &names,
                    format!(
                        "expected an http:// or https:// URL, found '{}'",
                        url.get_ref()
                    ),
                );
            }
            let mut endpoints = ServiceEndpoints::default();
            if let Some(raw) = account.endpoints {
                for (service, url, slot) in [
                    ("eks", raw.eks, &mut endpoints.eks),
                    ("cloudwatch", raw.cloudwatch, &mut endpoints.cloudwatch),
                    ("sts", raw.sts, &mut endpoints.sts),
                    ("securityhub", raw.securityhub, &mut endpoints.securityhub),
                ] {
                    let Some(url) = url else { continue };
                    if !is_http_url(url.get_ref()) {
                        let mut path = at("endpoints");
                        path.push(key(service));
                        self.issue(
                            url.span(),
                            &path,
                            &names,
                            format!(
                                "expected an http:// or https:// URL for {service}, found '{}'",
                                url.get_ref()
                            ),
                        );
                    }
                    *slot = Some(url.into_inner());
                }
            }
            accounts.push(Account {
                name,
                profile: account.profile.map(Spanned::into_inner),
                regions: region_seen,
                role_arn: account.role_arn.map(Spanned::into_inner),
                endpoint_url: account.endpoint_url.map(Spanned::into_inner),
                endpoints,
            });
        }

        let organization = raw.organization.map(|o| self.organization(o));

        // [clusters]
        let clusters = match raw.clusters {
            None => Clusters::default(),
            Some(c) => {
                let mut include = Vec::new();
                match c.include {
                    None => include.push("*".to_string()),
                    Some(list) => {
                        if list.get_ref().is_empty() {
                            self.issue(
                                list.span(),
                                &[key("clusters"), key("include")],
                                &[],
                                "expected at least one glob (use [\"*\"] for every cluster)".into(),
                            );
                        }
                        for (j, pattern) in list.into_inner().into_iter().enumerate() {
                            if let Err(e) = Glob::new(pattern.get_ref()) {
                                self.issue(
                                    pattern.span(),
                                    &[key("clusters"), key("include"), Seg::Index(j)],
                                    &[],
                                    format!(
                                        "invalid glob '{}' ({}); expected a glob like 'prod-*'",
                                        pattern.get_ref(),
                                        e.kind()
                                    ),
                                );
                            }
                            include.push(pattern.into_inner());
                        }
                    }
                }
                let tag = match c.environment_tag {
                    None => "env".to_string(),
                    Some(t) => {
                        if t.get_ref().trim().is_empty() {
                            self.issue(
                                t.span(),
                                &[key("clusters"), key("environment_tag")],
                                &[],
                                "expected the name of a cluster tag, such as 'env'".into(),
                            );
                        }
                        t.into_inner()
                    }
                };
                Clusters::new(include.clone(), tag.clone()).unwrap_or(Clusters {
                    include,
                    environment_tag: tag,
                    include_set: GlobSet::empty(),
                })
            }
        };

        // [hub]
        let hub = raw.hub.map(|h| {
            if h.context.get_ref().trim().is_empty() {
                self.issue(h.context.span(), &[key("hub"), key("context")], &[], "expected the kubeconfig context of the Argo CD hub cluster".into());
            }
            let namespace = match h.namespace {
                None => "argocd".to_string(),
                Some(ns) => {
                    if !is_dns_label(ns.get_ref()) {
                        self.issue(ns.span(), &[key("hub"), key("namespace")], &[], format!("expected a Kubernetes namespace name (lowercase letters, digits, '-'), found '{}'", ns.get_ref()));
                    }
                    ns.into_inner()
                }
            };
            let plans = h.plans.map(|f| {
                if f.get_ref().trim().is_empty() {
                    self.issue(f.span(), &[key("hub"), key("plans")], &[], "expected the path of a rollout plans file (leave it out for none)".into());
                }
                let path = PathBuf::from(f.into_inner());
                // Relative to the config file, not to wherever fleetdeck was started.
                match origin.parent() {
                    Some(dir) if path.is_relative() && !dir.as_os_str().is_empty() => dir.join(path),
                    _ => path,
                }
            });
            Hub {
                context: h.context.into_inner(),
                namespace,
                plans,
            }
        });

        // [[alertmanagers]]
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut alertmanagers = Vec::new();
        for (i, spanned) in raw.alertmanagers.into_iter().enumerate() {
            let am = spanned.into_inner();
            let name = am.name.get_ref().clone();
            let names = [("alertmanagers", i, name.as_str())];
            let at = |field: &str| vec![key("alertmanagers"), Seg::Index(i), key(field)];
            if name.trim().is_empty() {
                self.issue(
                    am.name.span(),
                    &at("name"),
                    &names,
                    "expected a non-empty name".into(),
                );
            } else if let Some(first) = seen.get(&name) {
                self.issue(
                    am.name.span(),
                    &at("name"),
                    &names,
                    format!("duplicate alertmanager name '{name}' (first used on line {first}); expected each name once"),
                );
            } else {
                seen.insert(name.clone(), line_at(self.text, am.name.span().start));
            }
            if !is_http_url(am.url.get_ref()) {
                self.issue(
                    am.url.span(),
                    &at("url"),
                    &names,
                    format!(
                        "expected an http:// or https:// URL, found '{}'",
                        am.url.get_ref()
                    ),
                );
            }
            let cluster_label = match am.cluster_label {
                None => "cluster".to_string(),
                Some(l) => {
                    if l.get_ref().trim().is_empty() {
                        self.issue(
                            l.span(),
                            &at("cluster_label"),
                            &names,
                            "expected the alert label that names the cluster, such as 'cluster'"
                                .into(),
                        );
                    }
                    l.into_inner()
                }
            };
            let sigv4 = am.sigv4.map(|s| {
                let path = vec![
                    key("alertmanagers"),
                    Seg::Index(i),
                    key("sigv4"),
                    key("region"),
                ];
                let region = s.region.get_ref();
                if regions::is_known(region) {
                    // As expected.
                } else if is_aws_region(region) {
                    self.warn(s.region.span(), &path, &names, unknown_region(region));
                } else {
                    self.issue(
                        s.region.span(),
                        &path,
                        &names,
                        format!(
                            "expected an AWS region like 'us-east-1', found '{}'",
                            s.region.get_ref()
                        ),
                    );
                }
                Sigv4 {
                    region: s.region.into_inner(),
                    profile: s.profile.map(Spanned::into_inner),
                }
            });
            alertmanagers.push(AlertmanagerConfig {
                name,
                url: am.url.into_inner(),
                cluster_label,
                sigv4,
            });
        }

        // [cloudwatch]
        let cloudwatch = match raw.cloudwatch {
            None => Cloudwatch::default(),
            Some(c) => {
                let defaults = Cloudwatch::default();
                let mut tag = |value: Option<Spanned<String>>, field: &str, default: String| {
                    let Some(value) = value else {
                        return default;
                    };
                    if value.get_ref().trim().is_empty() {
                        self.issue(
                            value.span(),
                            &[key("cloudwatch"), key(field)],
                            &[],
                            format!("expected the name of an alarm tag, such as '{default}'"),
                        );
                    }
                    value.into_inner()
                };
                let cluster_tag = tag(c.cluster_tag, "cluster_tag", defaults.cluster_tag);
                let severity_tag = tag(c.severity_tag, "severity_tag", defaults.severity_tag);
                let summary_interval_secs = match c.summary_interval_secs {
                    None => defaults.summary_interval_secs,
                    Some(secs) => {
                        let range = Cloudwatch::MIN_SUMMARY_INTERVAL_SECS
                            ..=Cloudwatch::MAX_SUMMARY_INTERVAL_SECS;
                        match u64::try_from(*secs.get_ref()) {
                            Ok(v) if range.contains(&v) => v,
                            _ => {
                                self.issue(
                                    secs.span(),
                                    &[key("cloudwatch"), key("summary_interval_secs")],
                                    &[],
                                    format!(
                                        "expected seconds from {} to {} (CloudWatch's EKS metrics are per minute; sparklines show an hour), found {}",
                                        range.start(),
                                        range.end(),
                                        secs.get_ref()
                                    ),
                                );
                                defaults.summary_interval_secs
                            }
                        }
                    }
                };
                Cloudwatch {
                    cluster_tag,
                    severity_tag,
                    summary_interval_secs,
                }
            }
        };

        let securityhub = raw.securityhub.map(|s| self.securityhub(s));

        let kubernetes = match raw.kubernetes {
            None => Kubernetes::default(),
            Some(k) => self.kubernetes(k, origin),
        };
        let aws = raw.aws.map(|a| self.aws(a)).unwrap_or_default();

        // [alerts]
        let mut alerts = AlertSettings::default();
        if let Some(minutes) = raw.alerts.and_then(|a| a.ack_minutes) {
            match u64::try_from(*minutes.get_ref()) {
                Ok(v) if (1..=AlertSettings::MAX_ACK_MINUTES).contains(&v) => {
                    alerts.ack_minutes = v
                }
                _ => self.issue(
                    minutes.span(),
                    &[key("alerts"), key("ack_minutes")],
                    &[],
                    format!(
                        "expected minutes from 1 to {} (a week), found {}",
                        AlertSettings::MAX_ACK_MINUTES,
                        minutes.get_ref()
                    ),
                ),
            }
        }

        // [audit]
        let audit = Audit {
            file: raw.audit.and_then(|a| a.file).map(|f| {
                if f.get_ref().trim().is_empty() {
                    self.issue(
                        f.span(),
                        &[key("audit"), key("file")],
                        &[],
                        "expected a file path (leave it out for the default in the data directory)"
                            .into(),
                    );
                }
                let path = PathBuf::from(f.into_inner());
                // Relative to the config file, not to wherever fleetdeck was started.
                match origin.parent() {
                    Some(dir) if path.is_relative() && !dir.as_os_str().is_empty() => {
                        dir.join(path)
                    }
                    _ => path,
                }
            }),
        };

        // [connect]
        let relative = |path: PathBuf| match origin.parent() {
            Some(dir) if path.is_relative() && !dir.as_os_str().is_empty() => dir.join(path),
            _ => path,
        };
        let connect = raw.connect.map(|c| {
            let url = c.url.get_ref().trim().to_string();
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.parse::<http::Uri>().is_err()
            {
                self.issue(
                    c.url.span(),
                    &[key("connect"), key("url")],
                    &[],
                    format!(
                        "expected the address of a fleetdeck serve, like https://fleetdeck.example:8443, found {url:?}"
                    ),
                );
            }
            let mut file = |f: Option<Spanned<String>>, name: &str| {
                f.map(|f| {
                    if f.get_ref().trim().is_empty() {
                        self.issue(
                            f.span(),
                            &[key("connect"), key(name)],
                            &[],
                            "expected a file path".into(),
                        );
                    }
                    relative(PathBuf::from(f.into_inner()))
                })
            };
            let alone = match (&c.client_cert, &c.client_key) {
                (Some(cert), None) => Some((cert.span(), "client_cert", "client_key")),
                (None, Some(key)) => Some((key.span(), "client_key", "client_cert")),
                _ => None,
            };
            let token_file = file(c.token_file, "token_file");
            let ca_file = file(c.ca_file, "ca_file");
            let client_cert = file(c.client_cert, "client_cert");
            let client_key = file(c.client_key, "client_key");
            if let Some((span, given, missing)) = alone {
                self.issue(
                    span,
                    &[key("connect"), key(given)],
                    &[],
                    format!("{given} needs {missing} too (the certificate and its key)"),
                );
            }
            ConnectSettings {
                url,
                token_file,
                ca_file,
                client_cert,
                client_key,
            }
        });

        Config {
            mode: raw.mode,
            theme,
            allow_shell: raw.allow_shell,
            accounts,
            organization,
            clusters,
            hub,
            alertmanagers,
            alerts,
            cloudwatch,
            securityhub,
            aws,
            kubernetes,
            audit,
            connect,
            warnings: Vec::new(),
            locations: FieldLocations::default(),
        }
    }

    /// `[securityhub]`, with the defaults for what is left out.
    fn securityhub(&mut self, s: RawSecurityHub) -> SecurityHub {
        let defaults = SecurityHub::default();
        let at = |field: &str| {
            [
                Seg::Key("securityhub".to_string()),
                Seg::Key(field.to_string()),
            ]
        };
        let aggregation_region = s.aggregation_region.map(|region| {
            let name = region.get_ref().trim();
            if !regions::is_known(name) && !is_aws_region(name) {
                self.issue(
                    region.span(),
                    &at("aggregation_region"),
                    &[],
                    format!("expected an AWS region such as 'us-east-1', found '{name}'"),
                );
            }
            name.to_string()
        });
        let cluster_field = match s.cluster_field {
            None => defaults.cluster_field,
            Some(field) => {
                if field.get_ref().trim().is_empty() {
                    self.issue(
                        field.span(),
                        &at("cluster_field"),
                        &[],
                        "expected the name of a finding field, such as 'cluster'".into(),
                    );
                }
                field.into_inner()
            }
        };
        let poll_interval_secs = match s.poll_interval_secs {
            None => defaults.poll_interval_secs,
            Some(secs) => {
                let range =
                    SecurityHub::MIN_POLL_INTERVAL_SECS..=SecurityHub::MAX_POLL_INTERVAL_SECS;
                match u64::try_from(*secs.get_ref()) {
                    Ok(v) if range.contains(&v) => v,
                    _ => {
                        self.issue(
                            secs.span(),
                            &at("poll_interval_secs"),
                            &[],
                            format!(
                                "expected seconds from {} to {}, found {}",
                                range.start(),
                                range.end(),
                                secs.get_ref()
                            ),
                        );
                        defaults.poll_interval_secs
                    }
                }
            }
        };
        SecurityHub {
            aggregation_region,
            cluster_field,
            poll_interval_secs,
        }
    }

    /// `[aws]`, with the default for what is left out.
    fn aws(&mut self, a: RawAws) -> Aws {
        let mut aws = Aws::default();
        if let Some(rate) = a.max_requests_per_second {
            let range = Aws::MIN_REQUESTS_PER_SECOND..=Aws::MAX_REQUESTS_PER_SECOND;
            // NaN and infinity (valid TOML floats) fall outside the range too.
            if range.contains(rate.get_ref()) {
                aws.max_requests_per_second = *rate.get_ref();
            } else {
                self.issue(
                    rate.span(),
                    &[Seg::Key("aws".into()), Seg::Key("max_requests_per_second".into())],
                    &[],
                    format!(
                        "expected requests per second from {} to {} (per account and region; AWS publishes about 10 per second for the reads fleetdeck makes), found {}",
                        range.start(),
                        range.end(),
                        rate.get_ref()
                    ),
                );
            }
        }
        aws
    }

    /// `[organization]`: `role_name` and `regions` required, the rest optional.
    fn organization(&mut self, spanned: Spanned<RawOrganization>) -> Organization {
        let key = |k: &str| Seg::Key(k.to_string());
        let at = |field: &str| vec![key("organization"), key(field)];
        let table = spanned.span();
        let o = spanned.into_inner();
        if let Some(p) = &o.profile
            && p.get_ref().trim().is_empty()
        {
            self.issue(p.span(), &at("profile"), &[], "expected a non-empty AWS profile name (leave it out to use the default credential chain)".into());
        }
        let role_name = match o.role_name {
            None => {
                self.issue(
                    table.clone(),
                    &at("role_name"),
                    &[],
                    "missing; expected the name of the role to assume in each member account, such as 'fleetdeck-viewer'".into(),
                );
                String::new()
            }
            Some(name) => {
                if !is_role_name(name.get_ref()) {
                    self.issue(name.span(), &at("role_name"), &[], format!("expected an IAM role name (letters, digits and +=,.@_- , up to 64, optionally after a path such as 'ops/'), found '{}'", name.get_ref()));
                }
                name.into_inner()
            }
        };
        let external_id = o.external_id.map(|id| {
            if !is_external_id(id.get_ref()) {
                self.issue(id.span(), &at("external_id"), &[], format!("expected an external id of 2 to 1224 characters (letters, digits and +=,.@:/_-), found '{}'", id.get_ref()));
            }
            id.into_inner()
        });
        let list_interval_secs = match o.list_interval_secs {
            None => Organization::DEFAULT_LIST_INTERVAL_SECS,
            Some(secs) => {
                let range =
                    Organization::MIN_LIST_INTERVAL_SECS..=Organization::MAX_LIST_INTERVAL_SECS;
                match u64::try_from(*secs.get_ref()) {
                    Ok(v) if range.contains(&v) => v,
                    _ => {
                        self.issue(
                            secs.span(),
                            &at("list_interval_secs"),
                            &[],
                            format!(
                                "expected seconds from {} to {} between listings of the organization's accounts, found {}",
                                range.start(),
                                range.end(),
                                secs.get_ref()
                            ),
                        );
                        Organization::DEFAULT_LIST_INTERVAL_SECS
                    }
                }
            }
        };
        let mut globs = |list: Option<Spanned<Vec<Spanned<String>>>>,
                         field: &str,
                         default: &[&str]| {
            let Some(list) = list else {
                return default.iter().map(|g| g.to_string()).collect::<Vec<_>>();
            };
            if field == "include" && list.get_ref().is_empty() {
                self.issue(list.span(), &at(field), &[], "expected at least one glob on the account name or id (use [\"*\"] for every account)".into());
            }
            let mut out = Vec::new();
            for (j, pattern) in list.into_inner().into_iter().enumerate() {
                if let Err(e) = Glob::new(pattern.get_ref()) {
                    let mut path = at(field);
                    path.push(Seg::Index(j));
                    self.issue(pattern.span(), &path, &[], format!("invalid glob '{}' ({}); expected a glob on the account name or id, like 'prod-*' or '1234*'", pattern.get_ref(), e.kind()));
                }
                out.push(pattern.into_inner());
            }
            out
        };
        let include = globs(o.include, "include", &["*"]);
        let exclude = globs(o.exclude, "exclude", &[]);
        let regions = match o.regions {
            None => {
                self.issue(
                    table,
                    &at("regions"),
                    &[],
                    "missing; expected a list of AWS regions, or \"enabled\" for the regions enabled in each account".into(),
                );
                OrganizationRegions::Listed(Vec::new())
            }
            Some(regions) => {
                let span = regions.span();
                match regions.into_inner() {
                    RawOrgRegions::Word(word) if word == Organization::ENABLED_REGIONS => {
                        OrganizationRegions::Enabled
                    }
                    RawOrgRegions::Word(word) => {
                        self.issue(span, &at("regions"), &[], format!("expected a list of AWS regions, or \"enabled\" for the regions enabled in each account, found '{word}'"));
                        OrganizationRegions::Listed(Vec::new())
                    }
                    RawOrgRegions::List(list) => {
                        if list.is_empty() {
                            self.issue(
                                span,
                                &at("regions"),
                                &[],
                                "expected a non-empty list of AWS regions, or \"enabled\"".into(),
                            );
                        }
                        let mut seen: Vec<String> = Vec::new();
                        for (j, region) in list.into_iter().enumerate() {
                            let mut path = at("regions");
                            path.push(Seg::Index(j));
                            let r = region.get_ref();
                            let known = regions::is_known(r);
                            if !known && !is_aws_region(r) {
                                self.issue(
                                    region.span(),
                                    &path,
                                    &[],
                                    format!("expected an AWS region like 'us-east-1', found '{r}'"),
                                );
                            } else if seen.contains(r) {
                                self.issue(
                                    region.span(),
                                    &path,
                                    &[],
                                    format!(
                                        "region '{r}' is listed twice; expected each region once"
                                    ),
                                );
                            } else if !known {
                                self.warn(region.span(), &path, &[], unknown_region(r));
                            }
                            if !seen.contains(r) {
                                seen.push(region.into_inner());
                            }
                        }
                        OrganizationRegions::Listed(seen)
                    }
                }
            }
        };
        // A bad glob was reported above; it matches nothing.
        Organization {
            profile: o.profile.map(Spanned::into_inner),
            role_name,
            external_id,
            include_set: glob_set(&include).unwrap_or_else(|_| GlobSet::empty()),
            exclude_set: glob_set(&exclude).unwrap_or_else(|_| GlobSet::empty()),
            include,
            exclude,
            regions,
            list_interval_secs,
        }
    }

    /// `[kubernetes]`, with defaults for what is left out.
    fn kubernetes(&mut self, k: RawKubernetes, origin: &Path) -> Kubernetes {
        let key = |k: &str| Seg::Key(k.to_string());
        let defaults = Kubernetes::default();
        let kubeconfig = k.kubeconfig.map(|f| {
            if f.get_ref().trim().is_empty() {
                self.issue(
                    f.span(),
                    &[key("kubernetes"), key("kubeconfig")],
                    &[],
                    "expected a kubeconfig file path (leave it out for $KUBECONFIG or ~/.kube/config)"
                        .into(),
                );
            }
            let path = PathBuf::from(f.into_inner());
            // Relative to the config file; `~/...` is expanded when the file is read.
            match origin.parent() {
                Some(dir)
                    if path.is_relative()
                        && !path.starts_with("~")
                        && !dir.as_os_str().is_empty() =>
                {
                    dir.join(path)
                }
                _ => path,
            }
        });
        let mut number = |value: Option<Spanned<i64>>,
                          field: &str,
                          range: std::ops::RangeInclusive<u64>,
                          expected: &str,
                          default: u64| {
            let Some(value) = value else {
                return default;
            };
            match u64::try_from(*value.get_ref()) {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    self.issue(
                        value.span(),
                        &[key("kubernetes"), key(field)],
                        &[],
                        format!("{expected}, found {}", value.get_ref()),
                    );
                    default
                }
            }
        };
        let pool_size = number(
            k.pool_size,
            "pool_size",
            1..=Kubernetes::MAX_POOL_SIZE as u64,
            &format!(
                "expected how many clusters to connect to at once, from 1 to {}",
                Kubernetes::MAX_POOL_SIZE
            ),
            defaults.pool_size as u64,
        );
        let idle_secs = number(
            k.idle_secs,
            "idle_secs",
            Kubernetes::MIN_IDLE_SECS..=u64::MAX,
            &format!(
                "expected seconds of at least {} (shorter would reconnect as the cursor moves)",
                Kubernetes::MIN_IDLE_SECS
            ),
            defaults.idle_secs,
        );
        let mut contexts = BTreeMap::new();
        let mut mapped: HashMap<ClusterId, String> = HashMap::new();
        for (context, target) in k.contexts {
            let path = [key("kubernetes"), key("contexts"), key(&context)];
            let Some(id) = parse_cluster_id(target.get_ref()) else {
                self.issue(
                    target.span(),
                    &path,
                    &[],
                    format!(
                        "expected the cluster as 'account/region/name', like 'prod/us-east-1/api-01', found '{}'",
                        target.get_ref()
                    ),
                );
                continue;
            };
            if let Some(first) = mapped.get(&id) {
                self.issue(
                    target.span(),
                    &path,
                    &[],
                    format!("cluster '{id}' is already reached through context '{first}'; expected one context per cluster"),
                );
                continue;
            }
            mapped.insert(id.clone(), context.clone());
            contexts.insert(context, id);
        }
        Kubernetes {
            kubeconfig,
            native_auth: k.native_auth.unwrap_or(defaults.native_auth),
            pool_size: usize::try_from(pool_size).unwrap_or(defaults.pool_size),
            idle_secs,
            contexts,
        }
    }
}

/// `account/region/name`, as `ClusterId` displays it: an account name without '/', an AWS
/// region, and an EKS cluster name (letters, digits, '-' and '_', up to 100).
fn parse_cluster_id(s: &str) -> Option<ClusterId> {
    let [account, region, name] = s.split('/').collect::<Vec<_>>()[..] else {
        return None;
    };
    let name_ok = name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!account.trim().is_empty() && (is_aws_region(region) || regions::is_known(region)) && name_ok)
        .then(|| ClusterId::new(account, region, name))
}

/// The warning for a well-shaped region the SDK does not list (it may be newer).
fn unknown_region(region: &str) -> String {
    let guess = regions::closest(region)
        .map(|r| format!("; did you mean '{r}'?"))
        .unwrap_or_default();
    format!(
        "'{region}' is not an AWS region this build knows{guess} (used as written, in case \
         the region is newer than this build)"
    )
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-7`, `cn-north-1`...
fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`.
fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

/// An IAM role name, optionally after a path: `fleetdeck-viewer`, `ops/fleetdeck`.
fn is_role_name(s: &str) -> bool {
    let name = s.rsplit('/').next().unwrap_or_default();
    let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    !name.is_empty()
        && name.len() <= 64
        && s.len() <= 512
        && !s.starts_with('/')
        && s.split('/')
            .all(|part| !part.is_empty() && part.chars().all(ok))
}

/// STS's `ExternalId`: 2 to 1224 of `[\w+=,.@:/-]`.
fn is_external_id(s: &str) -> bool {
    (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c))
}

/// An http(s) URL with a host. Deliberately simple: the HTTP client reports the rest.
fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// A Kubernetes namespace name (RFC 1123 label).
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
mode = "viewer"
theme = "light"
allow_shell = true

[[accounts]]
name = "prod"
profile = "prod-readonly"
regions = ["us-east-1", "eu-west-1"]
role_arn = "arn:aws:iam::123456789012:role/fleetdeck"

[[accounts]]
name = "test"
regions = ["us-gov-west-1"]
endpoint_url = "http://127.0.0.1:5000"

[accounts.endpoints]
eks = "http://127.0.0.1:5001"
cloudwatch = "https://monitoring.example.com"

[clusters]
include = ["prod-*", "prod/us-east-1/*"]
environment_tag = "stage"

[hub]
context = "hub"

[[alertmanagers]]
name = "amp-prod"
url = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/alertmanager"
sigv4 = { region = "us-east-1", profile = "prod-readonly" }

[cloudwatch]
cluster_tag = "cluster"
severity_tag = "sev"
summary_interval_secs = 600

[aws]
max_requests_per_second = 25

[kubernetes]
kubeconfig = "kube/fleet.yaml"
native_auth = false
pool_size = 50
idle_secs = 120

[kubernetes.contexts]
"prod-use1" = "prod/us-east-1/prod-use1-api-01"
"arn:aws:eks:eu-west-1:123456789012:cluster/edge" = "prod/eu-west-1/edge"

[audit]
file = "audit/log.jsonl"
"#;

    fn origin() -> PathBuf {
        PathBuf::from("/home/a/.config/fleetdeck/config.toml")
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, Path::new("config.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn connect_is_read_relative_to_the_file_and_checked() {
        let c = Config::from_toml(
            "[connect]\nurl = \"https://bastion.example:7700\"\ntoken_file = \"t\"\n\
             client_cert = \"c.pem\"\nclient_key = \"k.pem\"\n",
            &origin(),
        )
        .unwrap();
        let connect = c.connect.expect("[connect]");
        assert_eq!(connect.url, "https://bastion.example:7700");
        assert_eq!(
            connect.token_file.as_deref(),
            Some(Path::new("/home/a/.config/fleetdeck/t"))
        );
        assert!(connect.client_key.is_some());
        let e = err("[connect]\nurl = \"bastion:7700\"\n");
        assert!(
            e.contains("config.toml:2") && e.contains("fleetdeck serve"),
            "{e}"
        );
        let e = err("[connect]\nurl = \"https://b\"\nclient_cert = \"c.pem\"\n");
        assert!(
            e.contains("config.toml:3") && e.contains("needs client_key"),
            "{e}"
        );
        let e = err("[connect]\nurl = \"https://b\"\ntoken = \"fdk_x\"\n");
        assert!(
            e.contains("token"),
            "a token itself is not a config key: {e}"
        );
    }

    #[test]
    fn good_config_parses_every_field() {
        let c = Config::from_toml(GOOD, &origin()).unwrap();
        assert_eq!(c.mode, Mode::Viewer);
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert!(c.allow_shell);
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts[0].regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(c.accounts[0].profile.as_deref(), Some("prod-readonly"));
        assert_eq!(
            c.accounts[1].endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            c.accounts[1].endpoints,
            ServiceEndpoints {
                eks: Some("http://127.0.0.1:5001".into()),
                cloudwatch: Some("https://monitoring.example.com".into()),
                sts: None,
                securityhub: None,
            }
        );
        assert!(c.accounts[0].endpoints.is_empty());
        assert_eq!(c.clusters.environment_tag, "stage");
        assert!(
            c.clusters
                .includes(&ClusterId::new("x", "us-west-2", "prod-a"))
        );
        assert!(
            c.clusters
                .includes(&ClusterId::new("prod", "us-east-1", "edge"))
        );
        assert!(
            !c.clusters
                .includes(&ClusterId::new("prod", "eu-west-1", "edge"))
        );
        let hub = c.hub.as_ref().unwrap();
        assert_eq!(
            (hub.context.as_str(), hub.namespace.as_str()),
            ("hub", "argocd")
        );
        assert_eq!(c.alertmanagers[0].cluster_label, "cluster");
        assert_eq!(
            c.alertmanagers[0].sigv4.as_ref().unwrap().region,
            "us-east-1"
        );
        assert_eq!(
            c.cloudwatch,
            Cloudwatch {
                cluster_tag: "cluster".into(),
                severity_tag: "sev".into(),
                summary_interval_secs: 600,
            }
        );
        assert_eq!(c.aws.max_requests_per_second, 25.0);
        assert_eq!(
            c.kubernetes,
            Kubernetes {
                kubeconfig: Some("/home/a/.config/fleetdeck/kube/fleet.yaml".into()),
                native_auth: false,
                pool_size: 50,
                idle_secs: 120,
                contexts: BTreeMap::from([
                    (
                        "prod-use1".to_string(),
                        ClusterId::new("prod", "us-east-1", "prod-use1-api-01")
                    ),
                    (
                        "arn:aws:eks:eu-west-1:123456789012:cluster/edge".to_string(),
                        ClusterId::new("prod", "eu-west-1", "edge")
                    ),
                ]),
            }
        );
        assert_eq!(
            c.audit.file.as_deref(),
            Some(Path::new("/home/a/.config/fleetdeck/audit/log.jsonl"))
        );
        assert!(c.has_real_sources());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let c = Config::from_toml(GOOD, &origin()).unwrap();
        let text = toml::to_string(&c).unwrap();
        let again = Config::from_toml(&text, &origin()).unwrap();
        assert_eq!(c, again, "{text}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("", &origin()).unwrap();
        assert_eq!(c.mode, Mode::Operator);
        assert_eq!(c.theme, None);
        assert!(!c.allow_shell);
        assert_eq!(c.clusters.include, ["*"]);
        assert_eq!(c.clusters.environment_tag, "env");
        assert!(
            c.clusters
                .includes(&ClusterId::new("a", "us-east-1", "anything"))
        );
        assert!(!c.has_real_sources());
        assert_eq!(c.cloudwatch.cluster_tag, "eks:cluster-name");
        assert_eq!(c.cloudwatch.severity_tag, "severity");
        assert_eq!(c.cloudwatch.summary_interval_secs, 300);
        assert_eq!(c.aws.max_requests_per_second, 10.0);
        assert_eq!(c.kubernetes, Kubernetes::default());
        assert_eq!(c.kubernetes.pool_size, 20);
        assert_eq!(c.kubernetes.idle_secs, 300);
        assert!(c.kubernetes.native_auth);
        assert_eq!(c.kubernetes.kubeconfig, None);
        let paths = Paths::discover_with(Some(origin()), |_| None).unwrap();
        assert_eq!(c.audit_file(&paths), paths.data_dir.join("audit.jsonl"));
    }

    #[test]
    fn empty_regions_names_file_line_field_and_account() {
        let e = err(
            "\n[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n\n[[accounts]]\nname = \"prod\"\nregions = []\n",
        );
        assert_eq!(
            e,
            "config.toml:8: field 'regions' in [[accounts]] 'prod': expected a non-empty list of AWS regions"
        );
    }

    #[test]
    fn duplicate_account_names() {
        let e = err(
            "[[accounts]]\nname = \"prod\"\nregions = [\"us-east-1\"]\n[[accounts]]\nname = \"prod\"\nregions = [\"us-west-2\"]\n",
        );
        assert_eq!(
            e,
            "config.toml:5: field 'name' in [[accounts]] 'prod': duplicate account name 'prod' (first used on line 2); expected each name once"
        );
    }

    #[test]
    fn bad_region_arn_and_url_are_all_reported() {
        let e = err(
            "[[accounts]]\nname = \"p\"\nregions = [\"us-east-1\", \"useast1\"]\nrole_arn = \"prod-role\"\nendpoint_url = \"localhost:5000\"\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "config.toml:3: field 'regions' (item 2) in [[accounts]] 'p': expected an AWS region like 'us-east-1', found 'useast1'",
                "config.toml:4: field 'role_arn' in [[accounts]] 'p': expected an IAM role ARN like 'arn:aws:iam::123456789012:role/fleetdeck', found 'prod-role'",
                "config.toml:5: field 'endpoint_url' in [[accounts]] 'p': expected an http:// or https:// URL, found 'localhost:5000'",
            ]
        );
    }

    #[test]
    fn bad_glob_and_alertmanager_url() {
        let e = err("[clusters]\ninclude = [\"prod-[\"]\n");
        assert!(
            e.starts_with(
                "config.toml:2: field 'include' (item 1) in [clusters]: invalid glob 'prod-['"
            ),
            "{e}"
        );
        let e = err("[[alertmanagers]]\nname = \"am\"\nurl = \"ftp://x\"\n");
        assert_eq!(
            e,
            "config.toml:3: field 'url' in [[alertmanagers]] 'am': expected an http:// or https:// URL, found 'ftp://x'"
        );
        let e = err(
            "[[alertmanagers]]\nname = \"am\"\nurl = \"http://x\"\n[alertmanagers.sigv4]\nregion = \"moon\"\n",
        );
        assert_eq!(
            e,
            "config.toml:5: field 'region' of sigv4 in [[alertmanagers]] 'am': expected an AWS region like 'us-east-1', found 'moon'"
        );
    }

    #[test]
    fn ack_minutes_default_to_an_hour_and_are_bounded() {
        let c = Config::from_toml("", &origin()).unwrap();
        assert_eq!(c.alerts.ack_minutes, 60);
        let c = Config::from_toml("[alerts]\nack_minutes = 240\n", &origin()).unwrap();
        assert_eq!(c.alerts.ack_minutes, 240);
        let e = err("[alerts]\nack_minutes = 0\n");
        assert_eq!(
            e,
            "config.toml:2: field 'ack_minutes' in [alerts]: expected minutes from 1 to 10080 (a week), found 0"
        );
    }

    #[test]
    fn cloudwatch_fields_left_out_take_their_defaults() {
        let c =
            Config::from_toml("[cloudwatch]\nseverity_tag = \"priority\"\n", &origin()).unwrap();
        assert_eq!(
            c.cloudwatch,
            Cloudwatch {
                severity_tag: "priority".into(),
                ..Cloudwatch::default()
            }
        );
        let c = Config::from_toml("[cloudwatch]\nsummary_interval_secs = 60\n", &origin()).unwrap();
        assert_eq!(c.cloudwatch.summary_interval_secs, 60);
        assert_eq!(c.cloudwatch.cluster_tag, "eks:cluster-name");
    }

    #[test]
    fn cloudwatch_interval_out_of_range_and_empty_tag_are_reported() {
        for (value, shown) in [("59", "59"), ("-300", "-300"), ("7200", "7200")] {
            let e = err(&format!("[cloudwatch]\nsummary_interval_secs = {value}\n"));
            assert_eq!(
                e,
                format!(
                    "config.toml:2: field 'summary_interval_secs' in [cloudwatch]: expected seconds from 60 to 3600 (CloudWatch's EKS metrics are per minute; sparklines show an hour), found {shown}"
                )
            );
        }
        let e = err("[cloudwatch]\ncluster_tag = \" \"\nseverity_tag = \"\"\n");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "config.toml:2: field 'cluster_tag' in [cloudwatch]: expected the name of an alarm tag, such as 'eks:cluster-name'",
                "config.toml:3: field 'severity_tag' in [cloudwatch]: expected the name of an alarm tag, such as 'severity'",
            ]
        );
        let e = err("[cloudwatch]\nsummary_interval = 300\n");
        assert!(
            e.starts_with("config.toml:2: field 'summary_interval' in [cloudwatch]: unknown field 'summary_interval', expected one of"),
            "{e}"
        );
        let e = err("[cloudwatch]\nsummary_interval_secs = \"5m\"\n");
        assert!(
            e.starts_with(
                "config.toml:2: field 'summary_interval_secs' in [cloudwatch]: invalid type: string"
            ),
            "{e}"
        );
    }

    #[test]
    fn aws_rate_ceiling_takes_whole_and_fractional_requests_per_second() {
        let rate = |text: &str| {
            Config::from_toml(text, &origin())
                .unwrap()
                .aws
                .max_requests_per_second
        };
        assert_eq!(rate("[aws]\n"), RequestBudget::DEFAULT_CEILING);
        assert_eq!(rate("[aws]\nmax_requests_per_second = 1\n"), 1.0);
        assert_eq!(rate("[aws]\nmax_requests_per_second = 2.5\n"), 2.5);
        assert_eq!(rate("[aws]\nmax_requests_per_second = 100\n"), 100.0);
    }

    #[test]
    fn aws_rate_ceiling_out_of_range_wrong_type_and_unknown_key_are_reported() {
        for shown in ["0", "0.5", "-5", "101", "nan", "inf"] {
            let e = err(&format!(
                "mode = \"operator\"\n[aws]\nmax_requests_per_second = {shown}\n"
            ));
            let found = match shown {
                "nan" => "NaN",
                other => other,
            };
            assert_eq!(
                e,
                format!(
                    "config.toml:3: field 'max_requests_per_second' in [aws]: expected requests per second from 1 to 100 (per account and region; AWS publishes about 10 per second for the reads fleetdeck makes), found {found}"
                )
            );
        }
        let e = err("[aws]\nmax_requests_per_second = \"fast\"\n");
        assert!(
            e.starts_with(
                "config.toml:2: field 'max_requests_per_second' in [aws]: invalid type: string \"fast\""
            ),
            "{e}"
        );
        let e = err("[aws]\nmax_rps = 5\n");
        assert_eq!(
            e,
            "config.toml:2: field 'max_rps' in [aws]: unknown field 'max_rps', expected 'max_requests_per_second'"
        );
    }

    #[test]
    fn kubernetes_fields_left_out_take_their_defaults() {
        let c = Config::from_toml("[kubernetes]\npool_size = 1\n", &origin()).unwrap();
        assert_eq!(
            c.kubernetes,
            Kubernetes {
                pool_size: 1,
                ..Kubernetes::default()
            }
        );
        let c =
            Config::from_toml("[kubernetes]\nkubeconfig = \"~/.kube/fleet\"\n", &origin()).unwrap();
        assert_eq!(
            c.kubernetes.kubeconfig.as_deref(),
            Some(Path::new("~/.kube/fleet")),
            "a home-relative path is not made relative to the config file"
        );
    }

    #[test]
    fn kubernetes_out_of_range_and_bad_contexts_are_reported() {
        for (value, shown) in [("0", "0"), ("-1", "-1"), ("201", "201")] {
            let e = err(&format!("[kubernetes]\npool_size = {value}\n"));
            assert_eq!(
                e,
                format!(
                    "config.toml:2: field 'pool_size' in [kubernetes]: expected how many clusters to connect to at once, from 1 to 200, found {shown}"
                )
            );
        }
        let e = err("[kubernetes]\nidle_secs = 29\n");
        assert_eq!(
            e,
            "config.toml:2: field 'idle_secs' in [kubernetes]: expected seconds of at least 30 (shorter would reconnect as the cursor moves), found 29"
        );
        let e = err(
            "[kubernetes]\nkubeconfig = \"\"\n\n[kubernetes.contexts]\nhub = \"prod/us-east-1/a\"\nprod = \"prod-use1-api-01\"\nstage = \"stage/mars-1/a\"\nagain = \"prod/us-east-1/a\"\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        // Contexts are checked in name order.
        assert_eq!(
            lines,
            [
                "config.toml:2: field 'kubeconfig' in [kubernetes]: expected a kubeconfig file path (leave it out for $KUBECONFIG or ~/.kube/config)",
                "config.toml:5: field 'hub' of contexts in [kubernetes]: cluster 'prod/us-east-1/a' is already reached through context 'again'; expected one context per cluster",
                "config.toml:6: field 'prod' of contexts in [kubernetes]: expected the cluster as 'account/region/name', like 'prod/us-east-1/api-01', found 'prod-use1-api-01'",
                "config.toml:7: field 'stage' of contexts in [kubernetes]: expected the cluster as 'account/region/name', like 'prod/us-east-1/api-01', found 'stage/mars-1/a'",
            ]
        );
        let e = err("[kubernetes]\npool = 5\n");
        assert!(
            e.starts_with(
                "config.toml:2: field 'pool' in [kubernetes]: unknown field 'pool', expected one of"
            ),
            "{e}"
        );
        let e = err("[kubernetes]\nnative_auth = \"yes\"\n");
        assert!(
            e.starts_with(
                "config.toml:2: field 'native_auth' in [kubernetes]: invalid type: string"
            ),
            "{e}"
        );
    }

    #[test]
    fn cluster_ids_parse_only_in_their_written_shape() {
        assert_eq!(
            parse_cluster_id("prod/us-east-1/api_01"),
            Some(ClusterId::new("prod", "us-east-1", "api_01"))
        );
        for bad in [
            "",
            "prod/us-east-1",
            "prod/us-east-1/a/b",
            "/us-east-1/a",
            "prod/us-east-1/",
            "prod/us-east-1/-a",
            "prod/us-east-1/a.b",
            "prod/useast1/a",
        ] {
            assert_eq!(parse_cluster_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn endpoints_are_per_service_and_inline_tables_work_too() {
        let c = Config::from_toml(
            "[[accounts]]\nname = \"p\"\nregions = [\"us-east-1\"]\nendpoints = { sts = \"http://127.0.0.1:7\" }\n",
            Path::new("config.toml"),
        )
        .unwrap();
        let endpoints = &c.accounts[0].endpoints;
        assert_eq!(endpoints.sts.as_deref(), Some("http://127.0.0.1:7"));
        // As the SDK's clients name their services.
        assert_eq!(endpoints.for_service_id("STS"), Some("http://127.0.0.1:7"));
        assert_eq!(endpoints.for_service_id("EKS"), None);
        assert_eq!(endpoints.for_service_id("S3"), None);
    }

    #[test]
    fn unknown_service_and_bad_endpoint_name_file_line_and_field() {
        let e = err(
            "[[accounts]]\nname = \"prod\"\nregions = [\"us-east-1\"]\n\n[accounts.endpoints]\neks = \"http://127.0.0.1:5000\"\nec2 = \"http://127.0.0.1:5001\"\n",
        );
        assert_eq!(
            e,
            "config.toml:7: field 'ec2' of endpoints in [[accounts]] 'prod': unknown field 'ec2', expected one of 'eks', 'cloudwatch', 'sts', 'securityhub'"
        );
        let e = err(
            "[[accounts]]\nname = \"prod\"\nregions = [\"us-east-1\"]\n[accounts.endpoints]\ncloudwatch = \"127.0.0.1:4566\"\n",
        );
        assert_eq!(
            e,
            "config.toml:5: field 'cloudwatch' of endpoints in [[accounts]] 'prod': expected an http:// or https:// URL for cloudwatch, found '127.0.0.1:4566'"
        );
    }

    #[test]
    fn a_region_the_sdk_does_not_know_is_a_warning_with_a_suggestion() {
        let c = Config::from_toml(
            "[[accounts]]\nname = \"prod\"\nregions = [\"us-east-1\", \"us-est-1\", \"xx-mars-1\"]\n\n[[alertmanagers]]\nname = \"amp\"\nurl = \"https://aps.example.com\"\nsigv4 = { region = \"eu-wset-1\" }\n",
            Path::new("config.toml"),
        )
        .unwrap();
        assert_eq!(
            c.accounts[0].regions,
            ["us-east-1", "us-est-1", "xx-mars-1"]
        );
        assert_eq!(
            c.warnings,
            [
                "config.toml:3: field 'regions' (item 2) in [[accounts]] 'prod': 'us-est-1' is not an AWS region this build knows; did you mean 'us-east-1'? (used as written, in case the region is newer than this build)",
                "config.toml:3: field 'regions' (item 3) in [[accounts]] 'prod': 'xx-mars-1' is not an AWS region this build knows (used as written, in case the region is newer than this build)",
                "config.toml:8: field 'region' of sigv4 in [[alertmanagers]] 'amp': 'eu-wset-1' is not an AWS region this build knows; did you mean 'eu-west-1'? (used as written, in case the region is newer than this build)",
            ]
        );
        // Known regions warn about nothing, whatever their shape.
        let c = Config::from_toml(
            "[[accounts]]\nname = \"eu\"\nregions = [\"eusc-de-east-1\", \"us-gov-west-1\", \"cn-north-1\"]\n",
            Path::new("config.toml"),
        )
        .unwrap();
        assert_eq!(c.warnings, Vec::<String>::new());
        // A badly shaped region is still an error, and a duplicate is not also a warning.
        assert_eq!(
            err("[[accounts]]\nname = \"p\"\nregions = [\"us-est-1\", \"us-est-1\"]\n"),
            "config.toml:3: field 'regions' (item 2) in [[accounts]] 'p': region 'us-est-1' is listed twice; expected each region once"
        );
    }

    #[test]
    fn an_organization_alone_is_a_real_fleet_and_every_field_parses() {
        let c = Config::from_toml(
            r#"
[organization]
profile = "org-admin"
role_name = "ops/fleetdeck-viewer"
external_id = "fleetdeck-7f3a"
include = ["prod-*", "2222*"]
exclude = ["prod-sandbox"]
regions = ["us-east-1", "eu-west-1"]
list_interval_secs = 300
"#,
            &origin(),
        )
        .unwrap();
        assert!(c.accounts.is_empty());
        assert!(c.has_real_sources(), "not the demo");
        let org = c.organization.as_ref().unwrap();
        assert_eq!(org.profile.as_deref(), Some("org-admin"));
        assert_eq!(org.external_id.as_deref(), Some("fleetdeck-7f3a"));
        assert_eq!(org.list_interval_secs, 300);
        assert_eq!(
            org.regions,
            OrganizationRegions::Listed(vec!["us-east-1".into(), "eu-west-1".into()])
        );
        assert_eq!(
            org.role_arn("aws", "222233334444"),
            "arn:aws:iam::222233334444:role/ops/fleetdeck-viewer"
        );
        // By name or by id; exclude beats include.
        assert!(org.includes("111122223333", "prod-payments"));
        assert!(org.includes("222233334444", "shared-services"));
        assert!(!org.includes("111122223333", "prod-sandbox"));
        assert!(!org.includes("333344445555", "dev"));
        let text = toml::to_string(&c).unwrap();
        assert_eq!(Config::from_toml(&text, &origin()).unwrap(), c, "{text}");
    }

    #[test]
    fn organization_defaults_and_enabled_regions() {
        let c = Config::from_toml(
            "[organization]\nrole_name = \"fleetdeck\"\nregions = \"enabled\"\n",
            &origin(),
        )
        .unwrap();
        let org = c.organization.as_ref().unwrap();
        assert_eq!(org.regions, OrganizationRegions::Enabled);
        assert_eq!(
            (org.include.as_slice(), org.exclude.len()),
            (&["*".to_string()][..], 0)
        );
        assert!(org.includes("123456789012", "anything"));
        assert_eq!(org.profile, None);
        assert_eq!(org.list_interval_secs, 900, "every 15 minutes");
        let text = toml::to_string(&c).unwrap();
        assert!(text.contains("regions = \"enabled\""), "{text}");
        assert_eq!(Config::from_toml(&text, &origin()).unwrap(), c);
    }

    #[test]
    fn organization_errors_name_file_line_and_field() {
        let e = err("[organization]\nprofile = \"org\"\n");
        assert_eq!(
            e.lines().collect::<Vec<_>>(),
            [
                "config.toml:1: field 'role_name' in [organization]: missing; expected the name of the role to assume in each member account, such as 'fleetdeck-viewer'",
                "config.toml:1: field 'regions' in [organization]: missing; expected a list of AWS regions, or \"enabled\" for the regions enabled in each account",
            ]
        );
        let e = err(
            "[organization]\nrole_name = \"arn:aws:iam::1:role/x\"\nexternal_id = \"a b\"\ninclude = []\nexclude = [\"prod-[\"]\nregions = \"all\"\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 5, "{e}");
        assert!(
            lines[0].starts_with(
                "config.toml:2: field 'role_name' in [organization]: expected an IAM role name"
            ),
            "{e}"
        );
        assert!(
            lines[1].starts_with(
                "config.toml:3: field 'external_id' in [organization]: expected an external id"
            ),
            "{e}"
        );
        assert!(
            lines[2].starts_with(
                "config.toml:4: field 'include' in [organization]: expected at least one glob"
            ),
            "{e}"
        );
        assert!(
            lines[3].starts_with(
                "config.toml:5: field 'exclude' (item 1) in [organization]: invalid glob 'prod-['"
            ),
            "{e}"
        );
        assert_eq!(
            lines[4],
            "config.toml:6: field 'regions' in [organization]: expected a list of AWS regions, or \"enabled\" for the regions enabled in each account, found 'all'"
        );
        let e = err(
            "[organization]\nrole_name = \"r\"\nregions = [\n  \"us-east-1\",\n  \"useast1\",\n  \"us-east-1\",\n]\n",
        );
        assert_eq!(
            e.lines().collect::<Vec<_>>(),
            [
                "config.toml:5: field 'regions' (item 2) in [organization]: expected an AWS region like 'us-east-1', found 'useast1'",
                "config.toml:6: field 'regions' (item 3) in [organization]: region 'us-east-1' is listed twice; expected each region once",
            ]
        );
        let e = err("[organization]\nrole_name = \"r\"\nregions = 5\n");
        assert!(
            e.starts_with(
                "config.toml:3: field 'regions' in [organization]: invalid type: integer"
            ),
            "{e}"
        );
        let e = err(
            "[organization]\nrole_name = \"r\"\nregions = \"enabled\"\nlist_interval_secs = 5\n",
        );
        assert_eq!(
            e,
            "config.toml:4: field 'list_interval_secs' in [organization]: expected seconds from 10 to 86400 between listings of the organization's accounts, found 5"
        );
        let e = err("[organization]\nrole_name = \"r\"\nregions = \"enabled\"\naccounts = 3\n");
        assert!(e.starts_with("config.toml:4: "), "{e}");
        assert!(e.contains("unknown field 'accounts'"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_table() {
        let e = err("[[accounts]]\nname = \"prod\"\nregoins = [\"us-east-1\"]\n");
        assert!(
            e.starts_with("config.toml:3: field 'regoins' in [[accounts]] 'prod': unknown field 'regoins', expected one of"),
            "{e}"
        );
        let e = err("mode = \"operator\"\nthem = \"light\"\n");
        assert!(
            e.starts_with("config.toml:2: field 'them': unknown field 'them'"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_bad_enum() {
        let e = err("allow_shell = \"yes\"\n");
        assert!(e.starts_with("config.toml:1: field 'allow_shell': invalid type: string \"yes\", expected a boolean"), "{e}");
        let e = err("\nmode = \"admin\"\n");
        assert!(
            e.starts_with("config.toml:2: field 'mode': unknown variant 'admin'"),
            "{e}"
        );
        let e = err("[hub]\nnamespace = 5\ncontext = \"hub\"\n");
        assert!(
            e.starts_with("config.toml:2: field 'namespace' in [hub]: invalid type: integer"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_field() {
        let e = err("[[accounts]]\nname = \"prod\"\n");
        assert!(
            e.contains("[[accounts]] 'prod': missing field 'regions'"),
            "{e}"
        );
        assert!(e.starts_with("config.toml:1:"), "{e}");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = err("mode = \"viewer\"\n[accounts\n");
        assert!(e.starts_with("config.toml:2: invalid TOML"), "{e}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\u{0}",
            "[[accounts]]\n[[accounts]]",
            "accounts = 3",
            "hub = []",
            "= =",
            "[clusters]\ninclude = [[]]",
        ] {
            assert!(
                Config::from_toml(text, Path::new("c.toml")).is_err(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn missing_file_is_demo_unless_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nope.toml");
        let paths = Paths::discover_with(Some(file.clone()), |_| None).unwrap();
        assert!(Config::load(&paths, false).unwrap().is_none());
        let e = Config::load(&paths, true).unwrap_err().to_string();
        assert_eq!(e, format!("{}: config file not found", file.display()));

        std::fs::write(&file, "theme = \"mono\"\n").unwrap();
        let c = Config::load(&paths, true).unwrap().unwrap();
        assert_eq!(c.theme.as_deref(), Some("mono"));
    }

    #[test]
    fn explicit_path_and_env_override_discovery() {
        let p = Paths::discover_with(Some("/etc/fd/c.toml".into()), |_| Some("/x/y.toml".into()))
            .unwrap();
        assert_eq!(p.config_file, Path::new("/etc/fd/c.toml"));
        assert_eq!(p.config_dir, Path::new("/etc/fd"));
        assert!(p.explicit);
        assert_eq!(p.themes_dir(), Path::new("/etc/fd/themes"));

        let p = Paths::discover_with(None, |k| {
            (k == "FLEETDECK_CONFIG").then(|| "/x/y.toml".into())
        })
        .unwrap();
        assert_eq!(p.config_file, Path::new("/x/y.toml"));
        assert_eq!(p.runbooks_dir(), Path::new("/x/runbooks"));

        let p = Paths::discover_with(Some("c.toml".into()), |_| None).unwrap();
        assert_eq!(p.config_dir, Path::new("."));
    }

    #[test]
    fn default_discovery_uses_project_dirs() {
        // HOME is set in any test environment; XDG variables are honoured by `directories`.
        if let Ok(p) = Paths::discover_with(None, |_| None) {
            assert!(p.config_file.ends_with("fleetdeck/config.toml"), "{p:?}");
            assert!(!p.explicit);
        }
    }

    #[test]
    fn validators() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-7",
            "cn-north-1",
            "il-central-1",
        ] {
            assert!(is_aws_region(ok), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "useast1", "us--1", "u-east-1"] {
            assert!(!is_aws_region(bad), "{bad}");
        }
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::123456789012:role/path/name"
        ));
        assert!(!is_role_arn("arn:aws:iam::12345:role/x"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/x"));
        assert!(is_http_url("https://h:8080/x"));
        assert!(!is_http_url("https:///x"));
    }
}

/// Every key the config file accepts, as dotted paths (`accounts.endpoints.eks`; an array
/// of tables is named once), read from the same serde definitions that parse the file,
/// so that the documentation can be checked against it and never drift.
pub fn accepted_keys() -> Vec<String> {
    let keys = std::cell::RefCell::new(Vec::new());
    let probe = probe::Probe {
        path: String::new(),
        keys: &keys,
    };
    if let Err(e) = RawConfig::deserialize(probe) {
        tracing::error!("the config's keys could not all be listed: {e}");
    }
    let mut keys = keys.into_inner();
    keys.sort();
    keys.dedup();
    keys
}

/// A deserializer that answers every question serde asks with a placeholder and notes the
/// field names of every struct it is asked for: walking `RawConfig` with it lists the keys.
mod probe {
    use std::cell::RefCell;

    use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

    /// `toml::Spanned`'s private shape: a struct of start, end and the value.
    const SPANNED: &str = "$__serde_spanned_private_Spanned";

    #[derive(Debug)]
    pub struct Stop(String);

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(msg: T) -> Self {
            Stop(msg.to_string())
        }
    }

    pub struct Probe<'a> {
        pub path: String,
        pub keys: &'a RefCell<Vec<String>>,
    }

    impl<'a> Probe<'a> {
        fn child(&self, key: &str) -> Probe<'a> {
            Probe {
                path: if self.path.is_empty() {
                    key.to_string()
                } else {
                    format!("{}.{key}", self.path)
                },
                keys: self.keys,
            }
        }

        fn same(&self) -> Probe<'a> {
            Probe {
                path: self.path.clone(),
                keys: self.keys,
            }
        }
    }

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_str("probe")
        }
        fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_bool(false)
        }
        fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_i64(1)
        }
        fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_u64(1)
        }
        fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_f64(1.0)
        }
        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_some(self)
        }
        fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            v.visit_seq(One(Some(self)))
        }
        fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
            // Keys the user names (`[kubernetes.contexts]`): none to list.
            v.visit_map(Fields {
                probe: self,
                fields: &[],
                next: 0,
            })
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Stop> {
            if name == SPANNED {
                return v.visit_map(Spanned {
                    probe: self,
                    next: 0,
                });
            }
            for field in fields {
                let key = self.child(field).path;
                self.keys.borrow_mut().push(key);
            }
            v.visit_map(Fields {
                probe: self,
                fields,
                next: 0,
            })
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Stop> {
            let first: de::value::StrDeserializer<'_, Stop> =
                variants.first().copied().unwrap_or("").into_deserializer();
            v.visit_enum(first)
        }

        serde::forward_to_deserialize_any! {
            i8 i16 i32 i128 u8 u16 u32 u128 f32 char str string bytes byte_buf unit
            unit_struct newtype_struct tuple tuple_struct identifier ignored_any
        }
    }

    /// An array with one element, so the tables inside it are walked too.
    struct One<'a>(Option<Probe<'a>>);

    impl<'de> SeqAccess<'de> for One<'_> {
        type Error = Stop;
        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Stop> {
            self.0.take().map(|p| seed.deserialize(p)).transpose()
        }
    }

    struct Fields<'a> {
        probe: Probe<'a>,
        fields: &'static [&'static str],
        next: usize,
    }

    impl<'de> MapAccess<'de> for Fields<'_> {
        type Error = Stop;
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Stop> {
            let Some(field) = self.fields.get(self.next) else {
                return Ok(None);
            };
            seed.deserialize(de::value::BorrowedStrDeserializer::<Stop>::new(field))
                .map(Some)
        }
        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
            let field = self.fields[self.next];
            self.next += 1;
            seed.deserialize(self.probe.child(field))
        }
    }

    struct Spanned<'a> {
        probe: Probe<'a>,
        next: usize,
    }

    impl<'de> MapAccess<'de> for Spanned<'_> {
        type Error = Stop;
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Stop> {
            const KEYS: [&str; 3] = [
                "$__serde_spanned_private_start",
                "$__serde_spanned_private_end",
                "$__serde_spanned_private_value",
            ];
            let Some(key) = KEYS.get(self.next) else {
                return Ok(None);
            };
            // Spanned's own visitor takes its keys borrowed only.
            seed.deserialize(de::value::BorrowedStrDeserializer::<Stop>::new(key))
                .map(Some)
        }
        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
            self.next += 1;
            match self.next {
                1 | 2 => seed.deserialize(0u64.into_deserializer()),
                _ => seed.deserialize(self.probe.same()),
            }
        }
    }
}
