//! The demo fleet's inventory: accounts, regions, clusters, add-ons and insights, and the
//! plan of the rollout's waves.

use std::collections::{BTreeMap, HashMap};

use super::hash::{between, hash, tag, unit};
use super::metrics::Profile;
use crate::model::{
    Addon, Alert, AlertKey, AlertSource, AlertState, Cluster, ClusterId, ClusterStatus,
    Deprecation, Environment, HealthIssue, Insight, InsightDetail, InsightStatus, Severity,
    Support, Timestamp,
};

/// One wave of the demo rollout, as planned for the 48-cluster fleet.
pub(super) struct WaveSpec {
    pub name: &'static str,
    pub environment: Environment,
    /// Cluster-name prefix.
    pub prefix: &'static str,
    /// Clusters in this and all earlier waves at 48 clusters (sizes 1/4/8/15/20).
    pub cumulative: usize,
    /// Cells in flight at once at 48 clusters; scaled with the fleet.
    pub max_parallel: usize,
    pub soak_minutes: i64,
}

/// The rollout's waves in order. Soak shrinks and waves grow as confidence grows.
pub(super) const WAVES: [WaveSpec; 5] = [
    WaveSpec {
        name: "sandbox",
        environment: Environment::Sandbox,
        prefix: "sbx",
        cumulative: 1,
        max_parallel: 1,
        soak_minutes: 60,
    },
    WaveSpec {
        name: "dev",
        environment: Environment::Dev,
        prefix: "dev",
        cumulative: 5,
        max_parallel: 2,
        soak_minutes: 45,
    },
    WaveSpec {
        name: "staging",
        environment: Environment::Staging,
        prefix: "stg",
        cumulative: 13,
        max_parallel: 3,
        soak_minutes: 30,
    },
    WaveSpec {
        name: "prod-1",
        environment: Environment::Prod,
        prefix: "prod",
        cumulative: 28,
        max_parallel: 5,
        soak_minutes: 20,
    },
    WaveSpec {
        name: "prod-2",
        environment: Environment::Prod,
        prefix: "prod",
        cumulative: 48,
        max_parallel: 5,
        soak_minutes: 10,
    },
];

/// Index of the staging wave (running when the demo starts).
pub(super) const STAGING: usize = 2;
/// Index of prod-1 (where the circuit breaker trips).
pub(super) const PROD1: usize = 3;
/// Index of prod-2 (the wave that must not start while prod-1 is halted).
pub(super) const PROD2: usize = 4;

/// The reference fleet size the wave plan is written for.
const REFERENCE_CLUSTERS: usize = 48;

/// (region, short name used in cluster names, UTC offset in hours for the daily cycle).
pub(super) const REGIONS: [(&str, &str, f64); 3] = [
    ("us-east-1", "use1", -5.0),
    ("eu-west-1", "euw1", 1.0),
    ("ap-southeast-2", "apse2", 10.0),
];

const NONPROD: &str = "platform-nonprod";
const STAGING_ACCOUNT: &str = "platform-staging";
/// Production is split over two accounts: shared platform services and payments (PCI).
const PROD_ACCOUNTS: [&str; 2] = ["platform-prod", "payments-prod"];
/// Every account, in the order the fleet lists them.
pub(super) const ACCOUNTS: [&str; 4] =
    [NONPROD, STAGING_ACCOUNT, PROD_ACCOUNTS[0], PROD_ACCOUNTS[1]];

const PLATFORM_TEAMS: [&str; 8] = [
    "platform",
    "search",
    "catalog",
    "identity",
    "data",
    "messaging",
    "edge",
    "ml",
];
const PAYMENTS_TEAMS: [&str; 5] = ["payments", "checkout", "ledger", "billing", "fraud"];

/// Cluster counts per wave for a fleet of `n`: the 48-cluster plan scaled, sandbox at
/// least one cluster.
pub(super) fn wave_sizes(n: usize) -> [usize; 5] {
    let mut sizes = [0; 5];
    let mut taken = 0;
    for (i, spec) in WAVES.iter().enumerate() {
        let cumulative = if i == WAVES.len() - 1 {
            n
        } else {
            ((n * spec.cumulative + REFERENCE_CLUSTERS / 2) / REFERENCE_CLUSTERS).clamp(1, n)
        };
        sizes[i] = cumulative.saturating_sub(taken);
        taken = taken.max(cumulative);
    }
    sizes
}

/// `max_parallel` for a wave in a fleet of `n`: scaled so a big fleet's story takes about
/// as long as the 48-cluster one.
pub(super) fn max_parallel(wave: usize, n: usize) -> usize {
    (WAVES[wave].max_parallel * n)
        .div_ceil(REFERENCE_CLUSTERS)
        .max(1)
}

/// What the simulator knows about a cluster beyond the model's `Cluster`.
pub(super) struct Member {
    pub wave: usize,
    /// Kubernetes minor version before the upgrade (29 needs two hops to reach 31).
    pub from_minor: u8,
    /// Minor version now.
    pub minor: u8,
    pub profile: Profile,
}

/// The fleet as built: clusters (versions still at their pre-upgrade value), members
/// and the clusters of each wave.
pub(super) struct Inventory {
    pub clusters: Vec<Cluster>,
    pub members: Vec<Member>,
    pub wave_clusters: Vec<Vec<usize>>,
}

/// A 12-digit AWS account id, stable for a seed and account name.
pub(super) fn account_id(seed: u64, account: &str) -> String {
    let index = ACCOUNTS.iter().position(|a| *a == account).unwrap_or(0) as i64;
    format!(
        "{:012}",
        100_000_000_000 + hash(seed, &[tag::ACCOUNT, index]) % 900_000_000_000
    )
}

/// Builds `n` clusters deterministically from `seed`.
pub(super) fn build(seed: u64, n: usize) -> Inventory {
    let sizes = wave_sizes(n);
    let account_ids: HashMap<&str, String> =
        ACCOUNTS.iter().map(|a| (*a, account_id(seed, a))).collect();
    let mut counters: HashMap<(&str, &str, &str), u32> = HashMap::new();
    let mut clusters = Vec::with_capacity(n);
    let mut members = Vec::with_capacity(n);
    let mut wave_clusters = vec![Vec::new(); WAVES.len()];
    let mut prod_index = 0;
    for (wave, &size) in sizes.iter().enumerate() {
        let spec = &WAVES[wave];
        for cell in 0..size {
            let c = clusters.len();
            // Spread each environment over every region (and prod over both accounts), so
            // every account x region pair has clusters.
            let (account, region) = match spec.environment {
                Environment::Sandbox => (NONPROD, cell % 3),
                Environment::Dev => (NONPROD, (cell + 1) % 3),
                Environment::Staging => (STAGING_ACCOUNT, cell % 3),
                _ => {
                    let j = prod_index;
                    prod_index += 1;
                    (PROD_ACCOUNTS[j % 2], (j / 2) % 3)
                }
            };
            let teams: &[&str] = if account == PROD_ACCOUNTS[1] {
                &PAYMENTS_TEAMS
            } else {
                &PLATFORM_TEAMS
            };
            let team = teams[(hash(seed, &[tag::TEAM, c as i64]) % teams.len() as u64) as usize];
            let (region_name, short, tz) = REGIONS[region];
            let number = counters.entry((spec.prefix, short, team)).or_insert(0);
            *number += 1;
            let name = format!("{}-{short}-{team}-{:02}", spec.prefix, *number);
            let from_minor = if unit(hash(seed, &[tag::VERSION, c as i64])) < 0.25 {
                29
            } else {
                30
            };
            let id = ClusterId::new(account, region_name, &name);
            let arn = format!(
                "arn:aws:eks:{region_name}:{}:cluster/{name}",
                account_ids
                    .get(account)
                    .map_or("000000000000", String::as_str)
            );
            let mut cluster = Cluster {
                id,
                arn,
                version: version(from_minor),
                platform_version: platform_version(from_minor).into(),
                described: crate::model::Described::Yes,
                status: ClusterStatus::Active,
                environment: spec.environment.clone(),
                team: Some(team.into()),
                health_issues: Vec::new(),
                insights: insights(seed, c, wave, cell),
                updates: Vec::new(),
                addons: Vec::new(),
                // 1.29 left standard support in March 2025: those clusters bill extended.
                support: Some(Support {
                    policy: "EXTENDED".into(),
                    in_extended: from_minor == 29,
                    extra_usd_per_hour: if from_minor == 29 {
                        Support::EXTENDED_EXTRA_USD_PER_HOUR
                    } else {
                        0.0
                    },
                }),
                endpoint: Some(format!(
                    "https://{:032X}.gr7.{region_name}.eks.amazonaws.com",
                    hash(seed, &[tag::INSIGHT, c as i64, 7]) as u128
                )),
                certificate_authority: None,
            };
            cluster.addons = addons(seed, c, from_minor);
            clusters.push(cluster);
            members.push(Member {
                wave,
                from_minor,
                minor: from_minor,
                profile: Profile::new(seed, c, &spec.environment, tz),
            });
            wave_clusters[wave].push(c);
        }
    }
    Inventory {
        clusters,
        members,
        wave_clusters,
    }
}

/// `1.<minor>`.
pub(super) fn version(minor: u8) -> String {
    format!("1.{minor}")
}

/// The EKS platform version a cluster of this minor is on.
pub(super) fn platform_version(minor: u8) -> &'static str {
    match minor {
        29 => "eks.20",
        30 => "eks.16",
        _ => "eks.12",
    }
}

/// Add-on versions that fit a Kubernetes minor version.
fn addon_version(addon: &str, minor: u8) -> &'static str {
    match (addon, minor) {
        ("vpc-cni", 29) => "v1.18.3-eksbuild.3",
        ("vpc-cni", 30) => "v1.18.5-eksbuild.1",
        ("vpc-cni", _) => "v1.19.0-eksbuild.1",
        ("coredns", 29) => "v1.11.1-eksbuild.9",
        ("coredns", 30) => "v1.11.3-eksbuild.1",
        ("coredns", _) => "v1.11.3-eksbuild.2",
        ("kube-proxy", 29) => "v1.29.10-eksbuild.3",
        ("kube-proxy", 30) => "v1.30.6-eksbuild.3",
        ("kube-proxy", _) => "v1.31.2-eksbuild.3",
        ("aws-ebs-csi-driver", _) => "v1.37.0-eksbuild.1",
        _ => "v1.3.4-eksbuild.1",
    }
}

const ADDONS: [&str; 5] = [
    "vpc-cni",
    "coredns",
    "kube-proxy",
    "aws-ebs-csi-driver",
    "eks-pod-identity-agent",
];

/// Which add-on (if any) of cluster `c` is DEGRADED, with its health issue. About one
/// cluster in nineteen has one.
fn degraded_addon(seed: u64, c: usize) -> Option<(&'static str, HealthIssue)> {
    let offset = hash(seed, &[tag::ADDON, -1]) % 19;
    if !(c as u64 + offset).is_multiple_of(19) {
        return None;
    }
    Some(
        if hash(seed, &[tag::ADDON, c as i64, -2]).is_multiple_of(2) {
            (
                "aws-ebs-csi-driver",
                HealthIssue {
                    code: "AccessDenied".into(),
                    message: "the add-on's IAM role is missing ec2:CreateVolume; new \
                          PersistentVolumes can't be provisioned"
                        .into(),
                },
            )
        } else {
            (
                "coredns",
                HealthIssue {
                    code: "InsufficientNumberOfReplicas".into(),
                    message: "1 of 2 coredns replicas is ready; DNS has no redundancy".into(),
                },
            )
        },
    )
}

/// The add-ons of cluster `c` at Kubernetes `minor`. The storage driver and pod identity
/// agent are installed on most clusters, not all.
pub(super) fn addons(seed: u64, c: usize, minor: u8) -> Vec<Addon> {
    let degraded = degraded_addon(seed, c).map(|(name, _)| name);
    ADDONS
        .iter()
        .enumerate()
        .filter(|(i, name)| {
            *i < 3
                || Some(**name) == degraded
                || !hash(seed, &[tag::ADDON, c as i64, *i as i64]).is_multiple_of(5)
        })
        .map(|(_, name)| Addon {
            name: (*name).into(),
            version: addon_version(name, minor).into(),
            status: if Some(*name) == degraded {
                "DEGRADED".into()
            } else {
                "ACTIVE".into()
            },
        })
        .collect()
}

/// A UUID-shaped id from a hash (EKS insight and update ids look like this).
pub(super) fn uuid(h: u64) -> String {
    let l = hash(h, &[1]);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (l >> 52) & 0xfff,
        l & 0xffff_ffff_ffff
    )
}

const INSIGHTS: [(&str, &str, &str); 4] = [
    (
        "Deprecated APIs removed in Kubernetes v1.32",
        "No deprecated API usage detected within the last 30 days.",
        "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema and PriorityLevelConfiguration \
         were called 1,204 times in the last 30 days; they are removed in v1.32",
    ),
    (
        "Kubelet version skew",
        "All kubelets are within the supported version skew of the control plane.",
        "6 nodes in node group ng-batch run kubelet v1.28: upgrading the control plane again \
         would exceed the supported skew",
    ),
    (
        "EKS add-on version compatibility",
        "All add-ons are compatible with the next Kubernetes version.",
        "aws-ebs-csi-driver v1.37.0-eksbuild.1 is not validated for the next Kubernetes \
         version; update the add-on first",
    ),
    (
        "Cluster health issues",
        "No cluster health issues detected.",
        "",
    ),
];

/// Upgrade-readiness insights of cluster `c`. Mostly passing; one prod-2 cluster in ten
/// has an ERROR or WARNING.
fn insights(seed: u64, c: usize, wave: usize, cell: usize) -> Vec<Insight> {
    let offset = (hash(seed, &[tag::INSIGHT, -1]) % 10) as usize;
    let flagged = wave == PROD2 && (cell + offset).is_multiple_of(10);
    let error = flagged && ((cell + offset) / 10).is_multiple_of(2);
    INSIGHTS
        .iter()
        .enumerate()
        .map(|(i, (name, passing, failing))| {
            let status = match (flagged, i) {
                (true, 0) if error => InsightStatus::Error,
                (true, 1) if !error => InsightStatus::Warning,
                _ => InsightStatus::Passing,
            };
            Insight {
                id: uuid(hash(seed, &[tag::INSIGHT, c as i64, i as i64])),
                name: (*name).into(),
                category: "UPGRADE_READINESS".into(),
                status,
                reason: if status == InsightStatus::Passing {
                    (*passing).into()
                } else {
                    (*failing).into()
                },
                detail: (status != InsightStatus::Passing).then(|| insight_detail(name)),
            }
        })
        .collect()
}

/// What `DescribeInsight` would add for a failing demo insight.
fn insight_detail(name: &str) -> InsightDetail {
    if name.starts_with("Deprecated APIs") {
        InsightDetail {
            description: "Checks for usage of deprecated APIs that are scheduled for removal in Kubernetes v1.32.".into(),
            recommendation: "Update manifests and API clients to use newer Kubernetes APIs if applicable before upgrading to Kubernetes v1.32.".into(),
            deprecations: vec![Deprecation {
                usage: "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas".into(),
                replaced_with: Some("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas".into()),
                stop_serving_version: Some("1.32".into()),
                clients: vec![
                    ("prometheus-operator/v0.68.0".into(), 1_104, None),
                    ("kubectl/v1.27.4 (linux/amd64)".into(), 100, None),
                ],
            }],
        }
    } else {
        InsightDetail {
            description: format!("Checks for {name}."),
            recommendation: "Upgrade the node groups to the control plane's minor version before the next control plane upgrade.".into(),
            deprecations: vec![],
        }
    }
}

/// Labels every alert about a cluster carries.
pub(super) fn labels_for(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster.alert_labels()
}

/// Alerts from EKS itself: degraded add-ons and insights in WARNING or ERROR. They hold for
/// the whole demo; `since` is when they were first seen.
pub(super) fn eks_alerts(seed: u64, clusters: &[Cluster], since: Timestamp) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (c, cluster) in clusters.iter().enumerate() {
        if let Some((addon, issue)) = degraded_addon(seed, c) {
            let mut labels = labels_for(cluster);
            labels.insert("addon".into(), addon.into());
            labels.insert("issue_code".into(), issue.code.clone());
            let first_seen = since
                - chrono::TimeDelta::minutes(between(
                    hash(seed, &[tag::FIRST_SEEN, c as i64]),
                    30,
                    600,
                ));
            alerts.push(Alert {
                key: AlertKey::new(
                    AlertSource::EksHealth,
                    Some(&cluster.id),
                    "eks-addon-degraded",
                    addon,
                ),
                source: AlertSource::EksHealth,
                cluster: Some(cluster.id.clone()),
                name: "eks-addon-degraded".into(),
                severity: Severity::Warning,
                state: AlertState::Firing,
                first_seen,
                last_change: first_seen,
                summary: format!("{addon} is DEGRADED: {}: {}", issue.code, issue.message),
                labels,
                runbook_url: None,
                ack: None,
            });
        }
        for insight in cluster
            .insights
            .iter()
            .filter(|i| matches!(i.status, InsightStatus::Error | InsightStatus::Warning))
        {
            let mut labels = labels_for(cluster);
            labels.insert("category".into(), insight.category.clone());
            labels.insert("insight_id".into(), insight.id.clone());
            labels.insert("status".into(), insight.status.as_str().into());
            alerts.push(Alert {
                key: AlertKey::new(
                    AlertSource::EksInsight,
                    Some(&cluster.id),
                    &insight.name,
                    &insight.id,
                ),
                source: AlertSource::EksInsight,
                cluster: Some(cluster.id.clone()),
                name: insight.name.clone(),
                severity: if insight.status == InsightStatus::Error {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                state: AlertState::Firing,
                first_seen: since,
                last_change: since,
                summary: format!("{}: {}", insight.status.as_str(), insight.reason),
                labels,
                runbook_url: Some(
                    "https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html".into(),
                ),
                ack: None,
            });
        }
    }
    alerts
}

/// Bumps the add-ons tied to the Kubernetes version after an upgrade step.
pub(super) fn upgrade_addons(addons: &mut [Addon], minor: u8) {
    for addon in addons
        .iter_mut()
        .filter(|a| matches!(a.name.as_str(), "vpc-cni" | "coredns" | "kube-proxy"))
    {
        addon.version = addon_version(&addon.name, minor).into();
    }
}
