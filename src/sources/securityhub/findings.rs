//! Security Hub findings as fleetdeck alerts: which cluster a finding is about, which
//! policy it reports, and the grouping that makes a policy failing on 300 pods of one
//! cluster one alert with a count. Pure: no I/O here.
//!
//! A finding is tied to a cluster by, in this order:
//! 1. a resource of type `AwsEksCluster`, whose `Id` is the cluster's ARN;
//! 2. the `cluster_field` key (`[securityhub] cluster_field`, default `cluster`, any case)
//!    of a resource's `Details.Other` or of the finding's `ProductFields`: the cluster's
//!    name, in the finding's account and the resource's (else the finding's) region. This
//!    is what Policy Reporter's `customFields` write for Kyverno's findings;
//! 3. a resource tag `eks:cluster-name` or `aws:eks:cluster-name` (the EC2 instances of
//!    its nodes), or a tag key `kubernetes.io/cluster/NAME`.
//!
//! Only findings on resources of the types in [`RESOURCE_TYPES`] are read.
//!
//! A finding tied to no cluster fleetdeck shows is left out (and counted in the source's
//! health note). The policy is `Details.Other.Policy` (Policy Reporter), else the control
//! id (`Compliance.SecurityControlId`, e.g. `EKS.2`), else the `GeneratorId`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_securityhub::types::AwsSecurityFinding;

use crate::model::{
    Ack, AckKind, Alert, AlertKey, AlertSource, AlertState, ClusterId, Severity, Timestamp,
    severity_of,
};

/// The resource types a finding about a cluster is on: the cluster itself, a Kubernetes
/// object (Policy Reporter writes `Other`; GuardDuty and Inspector `Container`), or a node.
/// Asked for in the request, so an account's thousands of findings on buckets and roles
/// are never read.
pub(super) const RESOURCE_TYPES: [&str; 4] =
    ["AwsEksCluster", "Other", "Container", "AwsEc2Instance"];

/// Resources named in an alert's summary before "+N more".
const NAMED_IN_SUMMARY: usize = 3;

/// One finding, reduced to what an alert needs.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FindingRecord {
    pub id: String,
    pub product_arn: String,
    pub account_id: String,
    pub region: String,
    /// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` or `INFORMATIONAL`.
    pub severity_label: String,
    pub title: String,
    pub policy: String,
    pub rule: String,
    /// What the finding is about, as a person reads it (`Pod payments/api-7d9`).
    pub resource: String,
    /// Where it says its cluster is: (account id, region, cluster name).
    pub cluster: Option<(String, String, String)>,
    /// `NEW` or `NOTIFIED` (the others are not read).
    pub workflow: String,
    pub note: Option<(String, String)>,
    pub first_seen: Option<Timestamp>,
    pub product: String,
    pub remediation_url: Option<String>,
    pub record_state: String,
    pub compliance: Option<String>,
    /// The types of its resources.
    pub resource_types: Vec<String>,
}

impl FindingRecord {
    /// Reduces a finding; `cluster_field` is the key naming its cluster.
    pub(super) fn from_finding(f: &AwsSecurityFinding, cluster_field: &str) -> Self {
        let account_id = f.aws_account_id().unwrap_or_default().to_string();
        let region = f.region().unwrap_or_default().to_string();
        let resources = f.resources();
        let other = |key: &str| {
            resources.iter().find_map(|r| {
                r.details()
                    .and_then(|d| d.other())
                    .and_then(|m| get_ignore_case(m, key))
            })
        };
        let product_field = |key: &str| f.product_fields().and_then(|m| get_ignore_case(m, key));
        let resource_region = |r: &aws_sdk_securityhub::types::Resource| {
            r.region()
                .filter(|s| !s.is_empty())
                .unwrap_or(&region)
                .to_string()
        };

        // 1. The EKS cluster itself.
        let by_arn = resources
            .iter()
            .filter(|r| r.r#type() == Some("AwsEksCluster"))
            .find_map(|r| r.id().and_then(parse_cluster_arn));
        // 2. The configured field.
        let by_field = || {
            resources
                .iter()
                .find_map(|r| {
                    let name = r
                        .details()
                        .and_then(|d| d.other())
                        .and_then(|m| get_ignore_case(m, cluster_field))?;
                    Some((account_id.clone(), resource_region(r), name.to_string()))
                })
                .or_else(|| {
                    product_field(cluster_field)
                        .map(|name| (account_id.clone(), region.clone(), name.to_string()))
                })
        };
        // 3. Tags.
        let by_tag = || {
            resources.iter().find_map(|r| {
                let tags = r.tags()?;
                let name = ["eks:cluster-name", "aws:eks:cluster-name"]
                    .iter()
                    .find_map(|k| tags.get(*k).cloned())
                    .or_else(|| {
                        tags.keys()
                            .find_map(|k| k.strip_prefix("kubernetes.io/cluster/"))
                            .map(str::to_string)
                    })?;
                Some((account_id.clone(), resource_region(r), name))
            })
        };
        let cluster = by_arn
            .or_else(by_field)
            .or_else(by_tag)
            .filter(|(_, _, name)| !name.trim().is_empty());

        let policy = other("Policy")
            .map(str::to_string)
            .or_else(|| {
                f.compliance()
                    .and_then(|c| c.security_control_id())
                    .map(str::to_string)
            })
            .or_else(|| f.generator_id().map(str::to_string))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| f.title().unwrap_or("untitled finding").to_string());
        let resource = resources
            .first()
            .map(|r| {
                let kind = other("Resource Kind").unwrap_or_default();
                let namespace = other("Resource Namespace").unwrap_or_default();
                let name = other("Resource Name").unwrap_or_default();
                match (kind.is_empty() && name.is_empty(), namespace.is_empty()) {
                    (false, false) => format!("{kind} {namespace}/{name}"),
                    (false, true) => format!("{kind} {name}"),
                    (true, _) => r.id().unwrap_or_default().to_string(),
                }
            })
            .unwrap_or_default();
        Self {
            id: f.id().unwrap_or_default().to_string(),
            product_arn: f.product_arn().unwrap_or_default().to_string(),
            severity_label: f
                .severity()
                .and_then(|s| s.label())
                .map(|l| l.as_str().to_string())
                .unwrap_or_else(|| "INFORMATIONAL".into()),
            title: f.title().unwrap_or_default().to_string(),
            rule: other("Rule").unwrap_or_default().to_string(),
            resource: resource.trim().to_string(),
            cluster,
            workflow: f
                .workflow()
                .and_then(|w| w.status())
                .map(|s| s.as_str().to_string())
                .or_else(|| f.workflow_state().map(|s| s.as_str().to_string()))
                .unwrap_or_else(|| "NEW".into()),
            note: f.note().map(|n| {
                (
                    n.updated_by().unwrap_or_default().to_string(),
                    n.text().unwrap_or_default().to_string(),
                )
            }),
            first_seen: f
                .first_observed_at()
                .or(f.created_at())
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            product: f
                .product_name()
                .map(str::to_string)
                .unwrap_or_else(|| f.product_arn().unwrap_or_default().to_string()),
            remediation_url: f
                .remediation()
                .and_then(|r| r.recommendation())
                .and_then(|r| r.url())
                .map(str::to_string),
            resource_types: resources
                .iter()
                .filter_map(|r| r.r#type())
                .map(str::to_string)
                .collect(),
            record_state: f
                .record_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "ACTIVE".into()),
            compliance: f
                .compliance()
                .and_then(|c| c.status())
                .map(|s| s.as_str().to_string()),
            policy,
            account_id,
            region,
        }
    }

    /// What the request's filters ask for, checked again here: an emulator (moto) ignores
    /// `Filters`, and a finding that passed its check is not a failure.
    pub(super) fn is_wanted(&self, region: Option<&str>) -> bool {
        self.record_state == "ACTIVE"
            && matches!(self.workflow.as_str(), "NEW" | "NOTIFIED")
            && self.compliance.as_deref() != Some("PASSED")
            && region.is_none_or(|r| self.region == r)
            && self
                .resource_types
                .iter()
                .any(|t| RESOURCE_TYPES.contains(&t.as_str()))
    }

    pub(super) fn severity(&self) -> Severity {
        severity_of(&self.severity_label)
    }
}

fn get_ignore_case<'a>(map: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    map.get(key)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// `arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME` as (account, region, name).
pub(super) fn parse_cluster_arn(arn: &str) -> Option<(String, String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("cluster/")?;
    (service == "eks" && !name.is_empty())
        .then(|| (account.to_string(), region.to_string(), name.to_string()))
}

/// The clusters fleetdeck shows, by where a finding says a cluster is.
#[derive(Default)]
pub(super) struct FleetIndex {
    /// (account id, region, name) from each cluster's ARN.
    by_arn: HashMap<(String, String, String), ClusterId>,
    /// (region, name) of the clusters of this source's own account, for clusters whose
    /// ARN is not known yet.
    own: HashMap<(String, String), ClusterId>,
    /// The account ids the ARNs carry.
    accounts: std::collections::HashSet<String>,
}

impl FleetIndex {
    /// Indexes `fleet`; `account` is this source's account (by its config name).
    pub(super) fn new(fleet: &[crate::sources::ClusterTarget], account: &str) -> Self {
        let mut index = Self::default();
        for target in fleet {
            if let Some(key) = parse_cluster_arn(&target.arn) {
                index.accounts.insert(key.0.clone());
                index.by_arn.insert(key, target.id.clone());
            }
            if target.id.account == account {
                index.own.insert(
                    (target.id.region.clone(), target.id.name.clone()),
                    target.id.clone(),
                );
            }
        }
        index
    }

    fn cluster(&self, (account, region, name): &(String, String, String)) -> Option<&ClusterId> {
        self.by_arn
            .get(&(account.clone(), region.clone(), name.clone()))
            .or_else(|| {
                // An account id no cluster's ARN carries: this account's own cluster.
                (!self.accounts.contains(account))
                    .then(|| self.own.get(&(region.clone(), name.clone())))
                    .flatten()
            })
    }
}

/// The findings behind one alert: one policy on one cluster.
#[derive(Clone, Debug, Default)]
pub(super) struct Group {
    pub findings: Vec<FindingRecord>,
}

impl Group {
    /// `(Id, ProductArn)` of every finding, for `BatchUpdateFindings`.
    pub(super) fn identifiers(&self) -> Vec<(String, String)> {
        self.findings
            .iter()
            .map(|f| (f.id.clone(), f.product_arn.clone()))
            .collect()
    }
}

/// Groups the findings by cluster and policy; returns the groups by alert key and how
/// many findings no cluster of the fleet claims.
pub(super) fn group(
    findings: &[FindingRecord],
    fleet: &FleetIndex,
) -> (BTreeMap<AlertKey, (ClusterId, Group)>, usize) {
    let mut groups: BTreeMap<AlertKey, (ClusterId, Group)> = BTreeMap::new();
    let mut unclaimed = 0;
    for finding in findings {
        let Some(cluster) = finding.cluster.as_ref().and_then(|c| fleet.cluster(c)) else {
            unclaimed += 1;
            continue;
        };
        let key = key(cluster, &finding.policy);
        groups
            .entry(key)
            .or_insert_with(|| (cluster.clone(), Group::default()))
            .1
            .findings
            .push(finding.clone());
    }
    (groups, unclaimed)
}

/// The alert key of a policy's findings on a cluster.
pub(super) fn key(cluster: &ClusterId, policy: &str) -> AlertKey {
    AlertKey::new(AlertSource::SecurityHub, Some(cluster), policy, policy)
}

/// The alert for one group at `now`.
pub(super) fn alert(key: &AlertKey, cluster: &ClusterId, group: &Group, now: Timestamp) -> Alert {
    let findings = &group.findings;
    let first = &findings[0];
    let count = findings.len();
    let severity = findings
        .iter()
        .map(FindingRecord::severity)
        .min()
        .unwrap_or(Severity::Info);
    let mut resources: Vec<&str> = findings
        .iter()
        .map(|f| f.resource.as_str())
        .filter(|r| !r.is_empty())
        .collect();
    resources.sort_unstable();
    resources.dedup();
    // Policy Reporter titles a finding `policy: resource`; the resources are listed below.
    let title = first
        .title
        .strip_suffix(first.resource.as_str())
        .and_then(|t| t.strip_suffix(": "))
        .unwrap_or(&first.title);
    let mut summary = format!(
        "{} on {count} {}",
        if title.is_empty() {
            &first.policy
        } else {
            title
        },
        if count == 1 { "resource" } else { "resources" }
    );
    if !resources.is_empty() {
        let shown = resources
            .iter()
            .take(NAMED_IN_SUMMARY)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        summary.push_str(&format!(": {shown}"));
        if count > NAMED_IN_SUMMARY {
            summary.push_str(&format!(" +{} more", count - NAMED_IN_SUMMARY));
        }
    }
    let mut rules: Vec<&str> = findings
        .iter()
        .map(|f| f.rule.as_str())
        .filter(|r| !r.is_empty())
        .collect();
    rules.sort_unstable();
    rules.dedup();
    let notified = findings.iter().filter(|f| f.workflow == "NOTIFIED").count();
    let workflow = match notified {
        0 => "NEW".to_string(),
        n if n == count => "NOTIFIED".to_string(),
        n => format!("{n} of {count} NOTIFIED"),
    };
    let mut labels = BTreeMap::from([
        ("account".to_string(), cluster.account.clone()),
        ("region".to_string(), cluster.region.clone()),
        ("cluster".to_string(), cluster.name.clone()),
        ("policy".to_string(), first.policy.clone()),
        ("rule".to_string(), rules.join(",")),
        ("count".to_string(), count.to_string()),
        ("product".to_string(), first.product.clone()),
        ("severity_label".to_string(), first.severity_label.clone()),
        ("workflow".to_string(), workflow),
    ]);
    labels.extend(crate::model::resource_labels(
        findings.iter().map(|f| f.resource.as_str()),
    ));
    // Acked when every finding is NOTIFIED: by whoever wrote the latest note.
    let ack = (notified == count).then(|| {
        let (by, text) = findings
            .iter()
            .find_map(|f| f.note.clone())
            .unwrap_or_else(|| ("Security Hub".into(), String::new()));
        Ack {
            by: if by.is_empty() {
                "Security Hub".into()
            } else {
                by
            },
            until: None,
            comment: text,
            kind: AckKind::Notified { findings: count },
        }
    });
    let first_seen = findings
        .iter()
        .filter_map(|f| f.first_seen)
        .min()
        .filter(|t| *t <= now)
        .unwrap_or(now);
    Alert {
        key: key.clone(),
        source: AlertSource::SecurityHub,
        cluster: Some(cluster.clone()),
        name: first.policy.clone(),
        severity,
        state: AlertState::Firing,
        first_seen,
        last_change: first_seen,
        summary,
        labels,
        runbook_url: findings.iter().find_map(|f| f.remediation_url.clone()),
        ack,
    }
}
