//! Unit tests of the EKS source against the SDK's own mocks (`aws-smithy-mocks`).
//!
//! Each test lists the rules it cares about first; `defaults()` answers everything else
//! with an empty, healthy region, so a test reads as the one thing it is about.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_eks::Client;
use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::operation::describe_addon::DescribeAddonOutput;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
use aws_sdk_eks::operation::describe_cluster_versions::DescribeClusterVersionsOutput;
use aws_sdk_eks::operation::describe_insight::DescribeInsightOutput;
use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use aws_sdk_eks::operation::describe_update::DescribeUpdateOutput;
use aws_sdk_eks::operation::list_addons::ListAddonsOutput;
use aws_sdk_eks::operation::list_clusters::ListClustersOutput;
use aws_sdk_eks::operation::list_insights::ListInsightsOutput;
use aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput;
use aws_sdk_eks::operation::list_updates::ListUpdatesOutput;
use aws_sdk_eks::types as eks;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::DateTime;
use aws_smithy_types::body::SdkBody;
use tokio::sync::{mpsc, watch};

use super::poller::Poller;
use crate::clock::Clock;
use crate::config::{Account, Clusters};
use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, Cluster, ClusterId, ClusterStatus, Described,
    Environment, InsightStatus, Severity, SourceEvent, SourceHealth, SourceStatus, Store, Support,
    Timestamp,
};
use crate::sources::aws::{AwsScope, RequestBudget};

// ---- fixtures ----

fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

fn sdk_time(t: Timestamp) -> DateTime {
    DateTime::from_secs(t.timestamp())
}

fn scope_with(include: &[&str], environment_tag: &str) -> AwsScope {
    AwsScope {
        account: Account {
            name: "prod".into(),
            profile: None,
            regions: vec!["us-east-1".into()],
            role_arn: None,
            endpoint_url: None,
            endpoints: Default::default(),
        },
        region: "us-east-1".into(),
        sdk: aws_config::SdkConfig::builder().build(),
        budget: Arc::new(RequestBudget::default()),
        clusters: Clusters::new(
            include.iter().map(|s| s.to_string()).collect(),
            environment_tag.into(),
        )
        .expect("valid globs"),
        clock: Clock::Frozen(t0()),
    }
}

fn scope() -> AwsScope {
    scope_with(&["*"], "env")
}

fn id(name: &str) -> ClusterId {
    ClusterId::new("prod", "us-east-1", name)
}

/// A client answering with `rules` first, then with `defaults()`. The SDK's own retries
/// are off, as in `sdk_config`: `call` does the retrying.
fn client(rules: &[&Rule]) -> Client {
    let defaults = defaults();
    let all: Vec<&Rule> = rules.iter().copied().chain(defaults.iter()).collect();
    mock_client!(aws_sdk_eks, RuleMode::MatchAny, all, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn poller(rules: &[&Rule]) -> Poller {
    poller_in(&scope(), rules)
}

fn poller_in(scope: &AwsScope, rules: &[&Rule]) -> Poller {
    Poller::new(client(rules), scope)
}

/// One ACTIVE 1.31 cluster tagged env=prod, team=payments.
fn eks_cluster(name: &str) -> eks::Cluster {
    eks::Cluster::builder()
        .name(name)
        .arn(format!("arn:aws:eks:us-east-1:111111111111:cluster/{name}"))
        .version("1.31")
        .platform_version("eks.12")
        .status(eks::ClusterStatus::Active)
        .tags("env", "prod")
        .tags("team", "payments")
        .build()
}

fn describe(c: eks::Cluster) -> DescribeClusterOutput {
    DescribeClusterOutput::builder().cluster(c).build()
}

/// An empty, healthy region: no clusters, no insights, add-ons, updates or node groups;
/// any cluster described is `eks_cluster(name)`.
fn defaults() -> Vec<Rule> {
    vec![
        mock!(Client::list_clusters).then_output(|| ListClustersOutput::builder().build()),
        mock!(Client::describe_cluster)
            .then_compute_output(|req| describe(eks_cluster(req.name().unwrap_or_default()))),
        mock!(Client::describe_cluster_versions)
            .then_output(|| DescribeClusterVersionsOutput::builder().build()),
        mock!(Client::list_insights).then_output(|| ListInsightsOutput::builder().build()),
        mock!(Client::list_addons).then_output(|| ListAddonsOutput::builder().build()),
        mock!(Client::list_updates).then_output(|| ListUpdatesOutput::builder().build()),
        mock!(Client::list_nodegroups).then_output(|| ListNodegroupsOutput::builder().build()),
    ]
}

fn list_clusters(names: &'static [&'static str]) -> Rule {
    mock!(Client::list_clusters).then_output(move || {
        ListClustersOutput::builder()
            .set_clusters(Some(names.iter().map(|s| s.to_string()).collect()))
            .build()
    })
}

/// An error response as EKS (restJson1) sends it.
fn http_error(status: u16, code: &'static str, message: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(format!(r#"{{"message":"{message}"}}"#)),
    );
    response.headers_mut().insert("x-amzn-errortype", code);
    response
        .headers_mut()
        .insert("content-type", "application/json");
    response
}

const DENIED: &str =
    "User: arn:aws:iam::111111111111:user/oncall is not authorized to perform: eks:ListClusters";

fn health(events: &[SourceEvent]) -> SourceHealth {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .expect("a Health event")
}

/// The inventory as these events leave it: the names-first listing with every batch of
/// descriptions that followed folded in, or `None` when there was no listing.
fn inventory(events: &[SourceEvent]) -> Option<Vec<Cluster>> {
    let mut listed: Option<Vec<Cluster>> = None;
    for e in events {
        match e {
            SourceEvent::ClusterInventory { source, clusters } => {
                assert_eq!(source, "eks:prod/us-east-1");
                listed = Some(clusters.clone());
            }
            SourceEvent::ClustersChanged { source, clusters } => {
                assert_eq!(source, "eks:prod/us-east-1");
                let list = listed
                    .as_mut()
                    .expect("descriptions come after the listing");
                for c in clusters {
                    let at = list.iter().position(|l| l.id == c.id);
                    list[at.expect("a listed cluster")] = c.clone();
                }
            }
            _ => {}
        }
    }
    listed
}

fn names(clusters: &[Cluster]) -> Vec<&str> {
    clusters.iter().map(|c| c.id.name.as_str()).collect()
}

fn alerts(events: &[SourceEvent]) -> Vec<Alert> {
    events
        .iter()
        .flat_map(|e| match e {
            SourceEvent::Alerts(a) => a.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn changed(events: &[SourceEvent]) -> Cluster {
    events
        .iter()
        .find_map(|e| match e {
            SourceEvent::ClusterChanged(c) => Some((**c).clone()),
            _ => None,
        })
        .expect("a ClusterChanged event")
}

fn is_ready(events: &[SourceEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, SourceEvent::Ready { source } if source == "eks:prod/us-east-1"))
}

fn key(source: AlertSource, cluster: &str, name: &str, fingerprint: &str) -> AlertKey {
    AlertKey::new(source, Some(&id(cluster)), name, fingerprint)
}

/// Inventory then the detail poll of `name`, as the task would run them.
async fn inventory_then_detail(p: &mut Poller, name: &str) -> (Vec<SourceEvent>, Vec<SourceEvent>) {
    let inv = p.poll_inventory().await;
    // A single new cluster's first detail poll is due at once.
    let detail = p.poll_due_detail().await;
    assert!(
        detail
            .iter()
            .any(|e| matches!(e, SourceEvent::ClusterChanged(c) if c.id.name == name)),
        "the detail poll of {name} ran"
    );
    (inv, detail)
}

// ---- inventory ----

#[tokio::test(start_paused = true)]
async fn list_clusters_follows_every_page() {
    let page1 = mock!(Client::list_clusters)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            ListClustersOutput::builder()
                .clusters("alpha")
                .clusters("bravo")
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(Client::list_clusters)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            ListClustersOutput::builder()
                .clusters("charlie")
                .next_token("page-3")
                .build()
        });
    let page3 = mock!(Client::list_clusters)
        .match_requests(|r| r.next_token() == Some("page-3"))
        .then_output(|| ListClustersOutput::builder().clusters("delta").build());
    let mut p = poller(&[&page1, &page2, &page3]);
    let events = p.poll_inventory().await;
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(names(&clusters), ["alpha", "bravo", "charlie", "delta"]);
    assert_eq!(
        (page1.num_calls(), page2.num_calls(), page3.num_calls()),
        (1, 1, 1)
    );
    let c = &clusters[0];
    assert_eq!(c.id, id("alpha"));
    assert_eq!(c.version, "1.31");
    assert_eq!(c.platform_version, "eks.12");
    assert_eq!(c.status, ClusterStatus::Active);
    assert_eq!(c.arn, "arn:aws:eks:us-east-1:111111111111:cluster/alpha");
    // 3 pages + DescribeClusterVersions + 4 DescribeCluster.
    let h = health(&events);
    assert_eq!((h.calls, h.errors, h.throttles), (8, 0, 0));
    assert_eq!(h.last_ok, Some(t0()));
    assert_eq!(h.poll_interval_secs, 60);
    assert!(is_ready(&events));
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_counted_and_the_data_delivered() {
    let throttled = mock!(Client::list_clusters)
        .sequence()
        .http_response(|| http_error(400, "ThrottlingException", "Rate exceeded"))
        .times(2)
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .build();
    let mut p = poller(&[&throttled]);
    let events = p.poll_inventory().await;
    assert_eq!(names(&inventory(&events).expect("an inventory")), ["alpha"]);
    let h = health(&events);
    assert_eq!(h.throttles, 2);
    assert_eq!(h.errors, 0);
    assert_eq!(h.last_error, None);
    assert!(h.is_healthy(t0()));
}

#[tokio::test(start_paused = true)]
async fn access_denied_reports_the_error_keeps_the_inventory_and_still_says_ready() {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .http_response(|| http_error(403, "AccessDeniedException", DENIED))
        .build();
    // A clock that moves, so that the failure comes after the success.
    let mut s = scope();
    s.clock = Clock::simulated(t0(), 1000.0);
    let mut p = poller_in(&s, &[&listing]);
    let mut store = Store::new();
    for e in p.poll_inventory().await {
        store.apply(e, t0());
    }
    let events = p.poll_inventory().await;
    assert!(
        inventory(&events).is_none(),
        "a failed listing sends no inventory: {events:?}"
    );
    let h = health(&events);
    assert_eq!(
        h.last_error.as_deref(),
        Some(format!("eks:ListClusters: AccessDeniedException: {DENIED}").as_str())
    );
    assert!(h.last_error_at > h.last_ok, "{h:?}");
    assert_eq!(h.errors, 1);
    assert!(!h.is_healthy(s.clock.now()));
    for e in events {
        store.apply(e, t0());
    }
    assert!(
        store.cluster(&id("alpha")).is_some(),
        "the last inventory stands"
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_inventory_that_fails_still_sends_ready_and_recovers_by_itself() {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .http_response(|| http_error(403, "AccessDeniedException", DENIED))
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .build();
    let mut p = poller(&[&listing]);
    let first = p.poll_inventory().await;
    assert!(is_ready(&first));
    assert!(inventory(&first).is_none());
    assert!(health(&first).last_error.is_some());
    let second = p.poll_inventory().await;
    assert!(!is_ready(&second), "Ready is sent once");
    assert_eq!(names(&inventory(&second).expect("an inventory")), ["alpha"]);
    assert!(health(&second).is_healthy(t0()));
}

#[tokio::test(start_paused = true)]
async fn one_cluster_that_cannot_be_described_does_not_drop_the_others() {
    let listing = list_clusters(&["alpha", "bravo", "charlie"]);
    let denied = mock!(Client::describe_cluster)
        .match_requests(|r| r.name() == Some("bravo"))
        .then_http_response(|| http_error(403, "AccessDeniedException", "not allowed"));
    let mut p = poller(&[&listing, &denied]);
    let events = p.poll_inventory().await;
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(names(&clusters), ["alpha", "bravo", "charlie"]);
    assert_eq!(clusters[0].status, ClusterStatus::Active);
    assert_eq!(
        clusters[1].status,
        ClusterStatus::Unknown,
        "a cluster we cannot read is shown, as UNKNOWN"
    );
    assert_eq!(
        clusters[1].described,
        Described::Failed,
        "and as not described, not as describing"
    );
    assert_eq!(clusters[2].status, ClusterStatus::Active);
    assert!(
        is_ready(&events),
        "tried every cluster: the picture is complete"
    );
    let h = health(&events);
    assert_eq!(
        h.last_error.as_deref(),
        Some("bravo: eks:DescribeCluster: AccessDeniedException: not allowed")
    );
    assert!(h.is_healthy(t0()), "the inventory itself is current");
}

#[tokio::test(start_paused = true)]
async fn a_region_where_no_cluster_can_be_described_is_unhealthy_but_still_shown() {
    let listing = list_clusters(&["alpha", "bravo"]);
    let denied = mock!(Client::describe_cluster)
        .then_http_response(|| http_error(403, "AccessDeniedException", "not allowed"));
    let mut s = scope();
    s.clock = Clock::simulated(t0(), 1000.0);
    let mut p = poller_in(&s, &[&listing, &denied]);
    let events = p.poll_inventory().await;
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(names(&clusters), ["alpha", "bravo"]);
    let h = health(&events);
    assert_eq!(
        h.last_error.as_deref(),
        Some("alpha: eks:DescribeCluster: AccessDeniedException: not allowed (and 1 more)")
    );
    assert!(!h.is_healthy(s.clock.now()));
    assert_eq!(
        inventory(&events).map(|c| c.iter().map(|c| c.described).collect::<Vec<_>>()),
        Some(vec![Described::Failed, Described::Failed])
    );
    // The next listing answers, but that alone does not make the region healthy again.
    std::thread::sleep(std::time::Duration::from_millis(3));
    let listed = p.list().await;
    assert!(!health(&listed).is_healthy(s.clock.now()), "{listed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cluster_described_before_keeps_its_picture_when_describe_fails() {
    let listing = list_clusters(&["alpha"]);
    let describe_rule = mock!(Client::describe_cluster)
        .sequence()
        .output(|| describe(eks_cluster("alpha")))
        .http_response(|| http_error(500, "ServerException", "boom"))
        .times(4)
        .build();
    let mut p = poller(&[&listing, &describe_rule]);
    p.poll_inventory().await;
    let events = p.poll_inventory().await;
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(clusters[0].status, ClusterStatus::Active);
    assert_eq!(clusters[0].version, "1.31");
}

#[tokio::test(start_paused = true)]
async fn include_globs_pick_the_clusters_and_the_others_are_not_described() {
    let listing = list_clusters(&["prod-api", "prod-batch", "dev-api", "sandbox-1"]);
    let describe_rule = mock!(Client::describe_cluster)
        .then_compute_output(|r| describe(eks_cluster(r.name().unwrap_or_default())));
    let scope = scope_with(&["prod-*", "prod/us-east-1/sandbox-*"], "env");
    let mut p = poller_in(&scope, &[&listing, &describe_rule]);
    let events = p.poll_inventory().await;
    assert_eq!(
        names(&inventory(&events).expect("an inventory")),
        ["prod-api", "prod-batch", "sandbox-1"]
    );
    assert_eq!(describe_rule.num_calls(), 3);
    assert_eq!(
        p.cluster_ids(),
        vec![id("prod-api"), id("prod-batch"), id("sandbox-1")]
    );
}

#[tokio::test(start_paused = true)]
async fn the_environment_comes_from_the_configured_tag_and_the_team_from_team() {
    let listing = list_clusters(&["a", "b", "c", "d"]);
    let describe_rule = mock!(Client::describe_cluster).then_compute_output(|r| {
        let name = r.name().unwrap_or_default();
        let c = eks::Cluster::builder()
            .name(name)
            .status(eks::ClusterStatus::Active);
        describe(
            match name {
                "a" => c.tags("environment", "production").tags("team", "payments"),
                "b" => c.tags("environment", "stage"),
                "c" => c.tags("environment", "perf-lab").tags("env", "prod"),
                _ => c.tags("env", "prod"),
            }
            .build(),
        )
    });
    let scope = scope_with(&["*"], "environment");
    let mut p = poller_in(&scope, &[&listing, &describe_rule]);
    let clusters = inventory(&p.poll_inventory().await).expect("an inventory");
    let envs: Vec<(&str, Environment, Option<&str>)> = clusters
        .iter()
        .map(|c| (c.id.name.as_str(), c.environment.clone(), c.team.as_deref()))
        .collect();
    assert_eq!(
        envs,
        [
            ("a", Environment::Prod, Some("payments")),
            ("b", Environment::Staging, None),
            ("c", Environment::Other("perf-lab".into()), None),
            ("d", Environment::Other("untagged".into()), None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn statuses_map_and_a_new_one_is_unknown() {
    let listing = list_clusters(&["a", "b", "c"]);
    let describe_rule = mock!(Client::describe_cluster).then_compute_output(|r| {
        let name = r.name().unwrap_or_default();
        let status = match name {
            "a" => eks::ClusterStatus::Updating,
            "b" => eks::ClusterStatus::Failed,
            _ => eks::ClusterStatus::from("HIBERNATING"),
        };
        describe(eks::Cluster::builder().name(name).status(status).build())
    });
    let mut p = poller(&[&listing, &describe_rule]);
    let clusters = inventory(&p.poll_inventory().await).expect("an inventory");
    let statuses: Vec<ClusterStatus> = clusters.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ClusterStatus::Updating,
            ClusterStatus::Failed,
            ClusterStatus::Unknown
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn health_issues_raise_one_critical_alert_per_code_and_resolve_when_gone() {
    let listing = list_clusters(&["alpha"]);
    let sick = mock!(Client::describe_cluster)
        .sequence()
        .output(|| {
            let mut c = eks_cluster("alpha");
            c.health = Some(
                eks::ClusterHealth::builder()
                    .issues(
                        eks::ClusterIssue::builder()
                            .code(eks::ClusterIssueCode::Ec2SubnetNotFound)
                            .message("subnet-1 not found")
                            .build(),
                    )
                    .issues(
                        eks::ClusterIssue::builder()
                            .code(eks::ClusterIssueCode::Ec2SubnetNotFound)
                            .message("subnet-2 not found")
                            .build(),
                    )
                    .issues(
                        eks::ClusterIssue::builder()
                            .code(eks::ClusterIssueCode::KmsKeyDisabled)
                            .message("key disabled")
                            .build(),
                    )
                    .build(),
            );
            describe(c)
        })
        .times(2)
        .build();
    let mut p = poller(&[&listing, &sick]);
    let first = p.poll_inventory().await;
    let cluster = &inventory(&first).expect("an inventory")[0];
    assert_eq!(cluster.health_issues.len(), 3);
    assert_eq!(cluster.health_issues[2].code, "KmsKeyDisabled");
    let fired = alerts(&first);
    assert_eq!(fired.len(), 2, "{fired:#?}");
    let subnet = &fired[0];
    assert_eq!(
        subnet.key,
        key(
            AlertSource::EksHealth,
            "alpha",
            "eks-cluster-health",
            "Ec2SubnetNotFound"
        )
    );
    assert_eq!(subnet.severity, Severity::Critical);
    assert_eq!(subnet.state, AlertState::Firing);
    assert_eq!(
        subnet.summary,
        "Ec2SubnetNotFound: subnet-1 not found; subnet-2 not found"
    );
    assert_eq!(subnet.labels["environment"], "prod");
    assert_eq!(subnet.labels["team"], "payments");

    // Still the same: nothing new to send.
    let second = p.poll_inventory().await;
    assert!(alerts(&second).is_empty(), "{:#?}", alerts(&second));

    // Fixed: both resolve.
    let third = p.poll_inventory().await;
    let resolved = alerts(&third);
    assert_eq!(resolved.len(), 2);
    assert!(
        resolved
            .iter()
            .all(|a| a.state == AlertState::Resolved && a.last_change == t0())
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_cluster_leaves_the_inventory_and_its_alerts_resolve() {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .output(|| {
            ListClustersOutput::builder()
                .clusters("alpha")
                .clusters("bravo")
                .build()
        })
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .build();
    let sick = mock!(Client::describe_cluster)
        .match_requests(|r| r.name() == Some("bravo"))
        .then_output(|| {
            let mut c = eks_cluster("bravo");
            c.health = Some(
                eks::ClusterHealth::builder()
                    .issues(
                        eks::ClusterIssue::builder()
                            .code(eks::ClusterIssueCode::IamRoleNotFound)
                            .message("role gone")
                            .build(),
                    )
                    .build(),
            );
            describe(c)
        });
    let mut p = poller(&[&listing, &sick]);
    let mut store = Store::new();
    for e in p.poll_inventory().await {
        store.apply(e, t0());
    }
    let k = key(
        AlertSource::EksHealth,
        "bravo",
        "eks-cluster-health",
        "IamRoleNotFound",
    );
    assert_eq!(store.alert(&k).map(|a| a.state), Some(AlertState::Firing));
    let events = p.poll_inventory().await;
    assert_eq!(names(&inventory(&events).expect("an inventory")), ["alpha"]);
    for e in events {
        store.apply(e, t0());
    }
    assert!(store.cluster(&id("bravo")).is_none());
    assert_eq!(store.alert(&k).map(|a| a.state), Some(AlertState::Resolved));
}

// ---- names first ----

/// A DescribeCluster rule that records the order clusters were described in.
fn recording_describe() -> (Rule, Arc<std::sync::Mutex<Vec<String>>>) {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = order.clone();
    let rule = mock!(Client::describe_cluster).then_compute_output(move |r| {
        let name = r.name().unwrap_or_default().to_string();
        if let Ok(mut seen) = seen.lock() {
            seen.push(name.clone());
        }
        describe(eks_cluster(&name))
    });
    (rule, order)
}

fn described_order(order: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    order.lock().map(|o| o.clone()).unwrap_or_default()
}

fn batches(events: &[SourceEvent]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::ClustersChanged { clusters, .. } => {
                Some(clusters.iter().map(|c| c.id.name.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn names_are_sent_before_any_cluster_is_described() {
    let listing = list_clusters(&["alpha", "bravo", "charlie"]);
    let (describe_rule, order) = recording_describe();
    let mut p = poller(&[&listing, &describe_rule]);
    let listed = p.list().await;
    assert!(described_order(&order).is_empty(), "nothing described yet");
    let clusters = inventory(&listed).expect("the names, at once");
    assert_eq!(names(&clusters), ["alpha", "bravo", "charlie"]);
    assert!(
        clusters
            .iter()
            .all(|c| c.described == Described::Pending && c.status == ClusterStatus::Unknown),
        "{clusters:#?}"
    );
    assert!(health(&listed).is_healthy(t0()), "the listing answered");
    assert!(!is_ready(&listed), "not a complete picture yet");
    assert!(p.describing());

    let mut rest = Vec::new();
    while p.describing() {
        rest.extend(p.describe_next().await);
    }
    assert_eq!(described_order(&order), ["alpha", "bravo", "charlie"]);
    assert!(is_ready(&rest), "Ready comes with the last description");
    let mut all = listed;
    all.extend(rest);
    let clusters = inventory(&all).expect("an inventory");
    assert!(clusters.iter().all(|c| c.is_described()), "{clusters:#?}");
    assert_eq!(clusters[0].version, "1.31");
}

#[tokio::test(start_paused = true)]
async fn the_cluster_on_screen_then_firing_then_wave_clusters_are_described_first() {
    let listing = list_clusters(&["a", "b", "c", "d", "e", "f", "g", "h"]);
    let (describe_rule, order) = recording_describe();
    let mut p = poller(&[&listing, &describe_rule]);
    // The engine's interest, most important first: the focus, firing alerts (c, e), a
    // started wave (b); a cluster of another region is not ours to describe.
    p.focus(Some(id("g"))).await;
    p.set_interest(&[
        id("g"),
        id("c"),
        ClusterId::new("prod", "eu-west-1", "a"),
        id("e"),
        id("b"),
    ]);
    p.poll_inventory().await;
    assert_eq!(
        described_order(&order),
        ["g", "c", "e", "b", "a", "d", "f", "h"]
    );
}

#[tokio::test(start_paused = true)]
async fn interest_that_changes_while_describing_reorders_what_is_left() {
    let listing = list_clusters(&["a", "b", "c", "d", "e", "f"]);
    let (describe_rule, order) = recording_describe();
    let mut p = poller(&[&listing, &describe_rule]);
    p.list().await;
    p.describe_next().await;
    p.describe_next().await;
    // An alarm fires on f: it is next.
    p.set_interest(&[id("f")]);
    p.describe_next().await;
    // The operator opens d: described at once, and sent at once with what was waiting
    // for the next batch (the budget's burst made the first ones quick).
    let opened = p.focus(Some(id("d"))).await;
    assert_eq!(batches(&opened), [["a", "b", "f", "d"]]);
    assert_eq!(changed(&opened).id, id("d"), "then its details are polled");
    while p.describing() {
        p.describe_next().await;
    }
    assert_eq!(described_order(&order), ["a", "b", "f", "d", "c", "e"]);
}

#[tokio::test(start_paused = true)]
async fn a_new_cluster_is_described_before_the_known_ones_are_described_again() {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .output(|| {
            ListClustersOutput::builder()
                .clusters("b")
                .clusters("c")
                .build()
        })
        .output(|| {
            ListClustersOutput::builder()
                .clusters("a")
                .clusters("b")
                .clusters("c")
                .build()
        })
        .build();
    let (describe_rule, order) = recording_describe();
    let mut p = poller(&[&listing, &describe_rule]);
    p.poll_inventory().await;
    let listed = p.list().await;
    let clusters = inventory(&listed).expect("an inventory");
    let described: Vec<(&str, Described)> = clusters
        .iter()
        .map(|c| (c.id.name.as_str(), c.described))
        .collect();
    assert_eq!(
        described,
        [
            ("a", Described::Pending),
            ("b", Described::Yes),
            ("c", Described::Yes)
        ],
        "the known clusters keep their picture while described again"
    );
    while p.describing() {
        p.describe_next().await;
    }
    assert_eq!(described_order(&order), ["b", "c", "a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn descriptions_go_out_in_batches_not_one_event_per_cluster() {
    // 600 clusters in three pages, described as fast as a generous budget allows: the
    // batches are capped in size.
    let page = |from: usize| -> ListClustersOutput {
        let mut out = ListClustersOutput::builder();
        for n in from..from + 200 {
            out = out.clusters(format!("c{n:03}"));
        }
        if from < 400 {
            out = out.next_token(format!("{}", from + 200));
        }
        out.build()
    };
    let listing = mock!(Client::list_clusters).then_compute_output(move |r| {
        page(r.next_token().and_then(|t| t.parse().ok()).unwrap_or(0))
    });
    let mut fast = scope();
    fast.budget = Arc::new(RequestBudget::new(10_000.0));
    let mut p = poller_in(&fast, &[&listing]);
    let events = p.poll_inventory().await;
    let sizes: Vec<usize> = batches(&events).iter().map(Vec::len).collect();
    assert_eq!(sizes, [250, 250, 100]);
    assert_eq!(inventory(&events).map(|c| c.len()), Some(600));

    // At the default budget (5 requests a second) a batch goes out about every second.
    let listing = list_clusters(&[
        "c00", "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10", "c11", "c12",
        "c13", "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25",
        "c26", "c27", "c28", "c29",
    ]);
    let mut p = poller(&[&listing]);
    let start = tokio::time::Instant::now();
    let events = p.poll_inventory().await;
    let took = start.elapsed();
    let sent = batches(&events);
    assert_eq!(sent.iter().map(Vec::len).sum::<usize>(), 30);
    assert!(
        sent.len() >= 3 && sent.len() <= took.as_secs() as usize + 2,
        "{} batches in {took:?}: {sent:?}",
        sent.len()
    );
}

#[tokio::test(start_paused = true)]
async fn the_task_sends_the_names_first_and_ready_after_the_last_description() {
    let listing = list_clusters(&["alpha", "bravo", "charlie", "delta"]);
    let (tx, mut rx) = mpsc::channel(256);
    let (inv_tx, inv_rx) = watch::channel(Vec::new());
    let _handle = super::task::spawn_with_client(client(&[&listing]), &scope(), tx, inv_tx);
    let mut seen = Vec::new();
    while !is_ready(&seen) {
        let e = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
            .await
            .expect("the source answers")
            .expect("the task runs");
        seen.push(e);
    }
    let first = seen
        .iter()
        .position(|e| matches!(e, SourceEvent::ClusterInventory { .. }))
        .expect("an inventory");
    let SourceEvent::ClusterInventory { clusters, .. } = &seen[first] else {
        unreachable!("found above")
    };
    assert!(clusters.iter().all(|c| !c.is_described()), "names first");
    assert!(
        !seen[..first]
            .iter()
            .any(|e| matches!(e, SourceEvent::ClustersChanged { .. })),
        "no description before the names"
    );
    assert!(
        inventory(&seen)
            .expect("an inventory")
            .iter()
            .all(Cluster::is_described)
    );
    assert_eq!(
        inv_rx.borrow().len(),
        4,
        "CloudWatch hears the names at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cluster_deleted_before_its_description_leaves_the_inventory() {
    let listing = list_clusters(&["alpha", "bravo", "charlie"]);
    let gone = mock!(Client::describe_cluster)
        .match_requests(|r| r.name() == Some("bravo"))
        .then_http_response(|| {
            http_error(
                404,
                "ResourceNotFoundException",
                "No cluster found for name: bravo.",
            )
        });
    let mut p = poller(&[&listing, &gone]);
    let events = p.poll_inventory().await;
    let mut store = Store::new();
    for e in events.iter().cloned() {
        store.apply(e, t0());
    }
    let listed: Vec<&str> = store
        .clusters()
        .iter()
        .map(|c| c.id.name.as_str())
        .collect();
    assert_eq!(listed, ["alpha", "charlie"]);
    assert!(store.clusters().iter().all(Cluster::is_described));
    assert_eq!(
        health(&events).last_error,
        None,
        "a deleted cluster is no error"
    );
    assert!(is_ready(&events));
}

// ---- extended support ----

fn versions() -> DescribeClusterVersionsOutput {
    DescribeClusterVersionsOutput::builder()
        .cluster_versions(
            eks::ClusterVersionInformation::builder()
                .cluster_version("1.29")
                .version_status(eks::VersionStatus::ExtendedSupport)
                .build(),
        )
        .cluster_versions(
            eks::ClusterVersionInformation::builder()
                .cluster_version("1.30")
                // Only the older, deprecated field says so.
                .status(eks::ClusterVersionStatus::ExtendedSupport)
                .build(),
        )
        .cluster_versions(
            eks::ClusterVersionInformation::builder()
                .cluster_version("1.31")
                .version_status(eks::VersionStatus::StandardSupport)
                .build(),
        )
        .build()
}

fn on_version(name: &str, version: &str, policy: eks::SupportType) -> eks::Cluster {
    let mut c = eks_cluster(name);
    c.version = Some(version.into());
    c.upgrade_policy = Some(
        eks::UpgradePolicyResponse::builder()
            .support_type(policy)
            .build(),
    );
    c
}

#[tokio::test(start_paused = true)]
async fn clusters_on_extended_support_versions_are_flagged_with_their_extra_cost() {
    let listing = list_clusters(&["old", "older", "current"]);
    let versions_rule = mock!(Client::describe_cluster_versions).then_output(versions);
    let describe_rule = mock!(Client::describe_cluster).then_compute_output(|r| {
        describe(match r.name().unwrap_or_default() {
            "old" => on_version("old", "1.30", eks::SupportType::Extended),
            "older" => on_version("older", "1.29", eks::SupportType::Extended),
            _ => on_version("current", "1.31", eks::SupportType::Standard),
        })
    });
    let mut p = poller(&[&listing, &versions_rule, &describe_rule]);
    let clusters = inventory(&p.poll_inventory().await).expect("an inventory");
    let support: HashMap<&str, Option<Support>> = clusters
        .iter()
        .map(|c| (c.id.name.as_str(), c.support.clone()))
        .collect();
    let extended = Some(Support {
        policy: "EXTENDED".into(),
        in_extended: true,
        extra_usd_per_hour: Support::EXTENDED_EXTRA_USD_PER_HOUR,
    });
    assert_eq!(support["old"], extended);
    assert_eq!(support["older"], extended);
    assert_eq!(
        support["current"],
        Some(Support {
            policy: "STANDARD".into(),
            in_extended: false,
            extra_usd_per_hour: 0.0,
        })
    );
    // Read once an hour, not every minute.
    p.poll_inventory().await;
    assert_eq!(versions_rule.num_calls(), 1);
    tokio::time::advance(super::VERSIONS_TTL).await;
    p.poll_inventory().await;
    assert_eq!(versions_rule.num_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_cluster_versions_nothing_is_flagged_and_the_source_stays_healthy() {
    let listing = list_clusters(&["old"]);
    let versions_rule = mock!(Client::describe_cluster_versions).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).expect("valid status"),
            SdkBody::from("<!doctype html><title>404 Not Found</title>"),
        )
    });
    let describe_rule = mock!(Client::describe_cluster)
        .then_output(|| describe(on_version("old", "1.29", eks::SupportType::Extended)));
    let mut p = poller(&[&listing, &versions_rule, &describe_rule]);
    let events = p.poll_inventory().await;
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(
        clusters[0].support,
        Some(Support {
            policy: "EXTENDED".into(),
            in_extended: false,
            extra_usd_per_hour: 0.0,
        })
    );
    let h = health(&events);
    assert_eq!(h.last_error, None);
    assert!(h.is_healthy(t0()));
    p.poll_inventory().await;
    assert_eq!(
        versions_rule.num_calls(),
        1,
        "not asked again within the hour"
    );
}

// ---- insights ----

fn insight(
    id: &str,
    name: &str,
    status: eks::InsightStatusValue,
    reason: &str,
) -> eks::InsightSummary {
    eks::InsightSummary::builder()
        .id(id)
        .name(name)
        .category(eks::Category::UpgradeReadiness)
        .last_refresh_time(sdk_time(t0()))
        .last_transition_time(sdk_time(t0() - chrono::TimeDelta::days(2)))
        .insight_status(
            eks::InsightStatus::builder()
                .status(status)
                .reason(reason)
                .build(),
        )
        .build()
}

fn four_insights() -> ListInsightsOutput {
    ListInsightsOutput::builder()
        .insights(insight(
            "i-err",
            "Deprecated APIs removed in Kubernetes v1.32",
            eks::InsightStatusValue::Error,
            "Deprecated API usage detected within last 30 days",
        ))
        .insights(insight(
            "i-warn",
            "Kubelet version skew",
            eks::InsightStatusValue::Warning,
            "Node kubelet versions lag the control plane",
        ))
        .insights(insight(
            "i-unknown",
            "Cluster health issues",
            eks::InsightStatusValue::UnknownValue,
            "Not evaluated yet",
        ))
        .insights(insight(
            "i-pass",
            "EKS add-on version compatibility",
            eks::InsightStatusValue::Passing,
            "No issues",
        ))
        .build()
}

#[tokio::test(start_paused = true)]
async fn insights_map_to_statuses_and_error_and_warning_alert() {
    let listing = list_clusters(&["alpha"]);
    let insights_rule = mock!(Client::list_insights)
        .match_requests(|r| {
            let categories = r.filter().map(|f| f.categories()).unwrap_or_default();
            r.cluster_name() == Some("alpha")
                && categories.contains(&eks::Category::UpgradeReadiness)
                && categories.contains(&eks::Category::Misconfiguration)
        })
        .then_output(four_insights);
    let mut p = poller(&[&listing, &insights_rule]);
    let (_, detail) = inventory_then_detail(&mut p, "alpha").await;
    let cluster = changed(&detail);
    let statuses: Vec<(&str, InsightStatus)> = cluster
        .insights
        .iter()
        .map(|i| (i.id.as_str(), i.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("i-err", InsightStatus::Error),
            ("i-warn", InsightStatus::Warning),
            ("i-unknown", InsightStatus::Unknown),
            ("i-pass", InsightStatus::Passing),
        ]
    );
    assert_eq!(cluster.insights[0].category, "UPGRADE_READINESS");
    assert!(
        cluster.insights.iter().all(|i| i.detail.is_none()),
        "no detail until focused"
    );
    let fired = alerts(&detail);
    let summary: Vec<(AlertKey, Severity, &str)> = fired
        .iter()
        .map(|a| (a.key.clone(), a.severity, a.summary.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                key(
                    AlertSource::EksInsight,
                    "alpha",
                    "Deprecated APIs removed in Kubernetes v1.32",
                    "i-err"
                ),
                Severity::Critical,
                "ERROR: Deprecated API usage detected within last 30 days"
            ),
            (
                key(
                    AlertSource::EksInsight,
                    "alpha",
                    "Kubelet version skew",
                    "i-warn"
                ),
                Severity::Warning,
                "WARNING: Node kubelet versions lag the control plane"
            ),
        ]
    );
    // AWS says since when the insight is in this status.
    let since = t0() - chrono::TimeDelta::days(2);
    assert!(
        fired
            .iter()
            .all(|a| a.first_seen == since && a.last_change == since)
    );
}

#[test]
fn an_insight_status_added_later_is_unknown() {
    use super::map::insight_status;
    assert_eq!(
        insight_status(Some(&eks::InsightStatusValue::from("CRITICAL"))),
        InsightStatus::Unknown
    );
    assert_eq!(
        insight_status(Some(&eks::InsightStatusValue::UnknownValue)),
        InsightStatus::Unknown
    );
    assert_eq!(insight_status(None), InsightStatus::Unknown);
}

#[tokio::test(start_paused = true)]
async fn an_insight_passing_again_is_sent_resolved() {
    let listing = list_clusters(&["alpha"]);
    let insights_rule = mock!(Client::list_insights)
        .sequence()
        .output(four_insights)
        .output(|| {
            ListInsightsOutput::builder()
                .insights(insight(
                    "i-err",
                    "Deprecated APIs removed in Kubernetes v1.32",
                    eks::InsightStatusValue::Passing,
                    "No deprecated API usage",
                ))
                .insights(insight(
                    "i-warn",
                    "Kubelet version skew",
                    eks::InsightStatusValue::Warning,
                    "Node kubelet versions lag the control plane",
                ))
                .build()
        })
        .build();
    let mut p = poller(&[&listing, &insights_rule]);
    let (_, first) = inventory_then_detail(&mut p, "alpha").await;
    let first_seen = alerts(&first)[0].first_seen;

    tokio::time::advance(super::DETAIL_INTERVAL * 2).await;
    let second = p.poll_due_detail().await;
    let sent = alerts(&second);
    assert_eq!(sent.len(), 1, "only the change is sent: {sent:#?}");
    assert_eq!(
        sent[0].key.0,
        "eks-insight:prod/us-east-1/alpha:Deprecated APIs removed in Kubernetes v1.32:i-err"
    );
    assert_eq!(sent[0].state, AlertState::Resolved);
    assert_eq!(sent[0].last_change, t0());
    assert_eq!(sent[0].first_seen, first_seen);
}

#[tokio::test(start_paused = true)]
async fn focusing_a_cluster_describes_its_insights_that_are_not_passing() {
    let listing = list_clusters(&["alpha"]);
    let insights_rule = mock!(Client::list_insights).then_output(four_insights);
    let described = mock!(Client::describe_insight)
        .match_requests(|r| r.cluster_name() == Some("alpha"))
        .then_compute_output(|r| {
            let id = r.id().unwrap_or_default();
            let mut i = eks::Insight::builder()
                .id(id)
                .description(format!("description of {id}"))
                .recommendation(format!("recommendation for {id}"));
            if id == "i-err" {
                i = i.category_specific_summary(
                    eks::InsightCategorySpecificSummary::builder()
                        .deprecation_details(
                            eks::DeprecationDetail::builder()
                                .usage("/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas")
                                .replaced_with("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas")
                                .stop_serving_version("1.32")
                                .client_stats(
                                    eks::ClientStat::builder()
                                        .user_agent("kube-state-metrics/v2.8.0")
                                        .number_of_requests_last30_days(1234)
                                        .last_request_time(sdk_time(t0()))
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                );
            }
            DescribeInsightOutput::builder().insight(i.build()).build()
        });
    let mut p = poller(&[&listing, &insights_rule, &described]);
    inventory_then_detail(&mut p, "alpha").await;
    assert_eq!(described.num_calls(), 0, "not described until focused");

    let events = p.focus(Some(id("alpha"))).await;
    let cluster = changed(&events);
    assert_eq!(described.num_calls(), 3, "the three insights not passing");
    let err = &cluster.insights[0];
    let detail = err.detail.as_ref().expect("detail filled");
    assert_eq!(detail.description, "description of i-err");
    assert_eq!(detail.recommendation, "recommendation for i-err");
    assert_eq!(detail.deprecations.len(), 1);
    let d = &detail.deprecations[0];
    assert_eq!(
        d.usage,
        "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"
    );
    assert_eq!(
        d.replaced_with.as_deref(),
        Some("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas")
    );
    assert_eq!(d.stop_serving_version.as_deref(), Some("1.32"));
    assert_eq!(
        d.clients,
        vec![("kube-state-metrics/v2.8.0".to_string(), 1234, Some(t0()))]
    );
    assert!(
        cluster.insights[3].detail.is_none(),
        "a passing insight is not described"
    );

    // Focused: polled again a minute later; unchanged insights are not described again.
    tokio::time::advance(super::FOCUS_DETAIL_INTERVAL).await;
    let again = p.poll_due_detail().await;
    assert!(changed(&again).insights[0].detail.is_some());
    assert_eq!(described.num_calls(), 3);

    // Another account's cluster is not ours: nothing happens.
    assert!(
        p.focus(Some(ClusterId::new("dev", "us-east-1", "alpha")))
            .await
            .is_empty()
    );
}

// ---- updates ----

fn update(
    id: &str,
    status: eks::UpdateStatus,
    kind: eks::UpdateType,
    at: Timestamp,
) -> eks::Update {
    eks::Update::builder()
        .id(id)
        .status(status)
        .r#type(kind)
        .created_at(sdk_time(at))
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_failed_update_alerts_and_one_in_progress_shows_on_the_cluster() {
    let listing = list_clusters(&["alpha"]);
    let ids = mock!(Client::list_updates)
        .match_requests(|r| r.addon_name().is_none())
        .then_output(|| {
            ListUpdatesOutput::builder()
                .update_ids("u-failed")
                .update_ids("u-running")
                .update_ids("u-old-failure")
                .build()
        });
    let started = t0() - chrono::TimeDelta::minutes(40);
    let describe_rule = mock!(Client::describe_update).then_compute_output(move |r| {
        let u = match r.update_id().unwrap_or_default() {
            "u-failed" => {
                let mut u = update(
                    "u-failed",
                    eks::UpdateStatus::Failed,
                    eks::UpdateType::VersionUpdate,
                    started,
                );
                u.params = Some(vec![
                    eks::UpdateParam::builder()
                        .r#type(eks::UpdateParamType::Version)
                        .value("1.32")
                        .build(),
                ]);
                u.errors = Some(vec![
                    eks::ErrorDetail::builder()
                        .error_code(eks::ErrorCode::SubnetNotFound)
                        .error_message("subnet-0abc does not exist")
                        .build(),
                ]);
                u
            }
            "u-running" => {
                let mut u = update(
                    "u-running",
                    eks::UpdateStatus::InProgress,
                    eks::UpdateType::ConfigUpdate,
                    started,
                );
                u.params = Some(vec![
                    eks::UpdateParam::builder()
                        .r#type(eks::UpdateParamType::ClusterLogging)
                        .value("api")
                        .build(),
                ]);
                u
            }
            _ => update(
                "u-old-failure",
                eks::UpdateStatus::Failed,
                eks::UpdateType::VersionUpdate,
                t0() - chrono::TimeDelta::days(3),
            ),
        };
        DescribeUpdateOutput::builder().update(u).build()
    });
    let mut p = poller(&[&listing, &ids, &describe_rule]);
    let (_, detail) = inventory_then_detail(&mut p, "alpha").await;
    let cluster = changed(&detail);
    assert_eq!(cluster.updates.len(), 1);
    let running = &cluster.updates[0];
    assert_eq!(
        (
            running.id.as_str(),
            running.kind.as_str(),
            running.status.as_str()
        ),
        ("u-running", "ConfigUpdate", "InProgress")
    );
    assert_eq!(running.detail, "ClusterLogging=api");
    assert_eq!(running.started, started);

    let fired = alerts(&detail);
    assert_eq!(
        fired.len(),
        1,
        "the 3-day-old failure does not alert: {fired:#?}"
    );
    let a = &fired[0];
    assert_eq!(
        a.key,
        key(
            AlertSource::EksHealth,
            "alpha",
            "eks-update-failed",
            "u-failed"
        )
    );
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.first_seen, started, "AWS's own time");
    assert_eq!(
        a.summary,
        "VersionUpdate (Version=1.32) failed: SubnetNotFound: subnet-0abc does not exist"
    );

    // Finished updates are described once; the running one again.
    tokio::time::advance(super::DETAIL_INTERVAL * 2).await;
    p.poll_due_detail().await;
    assert_eq!(describe_rule.num_calls(), 4);
}

// ---- add-ons and node groups ----

fn addon(
    name: &str,
    status: eks::AddonStatus,
    issues: &[(eks::AddonIssueCode, &str)],
) -> eks::Addon {
    let mut health = eks::AddonHealth::builder();
    for (code, message) in issues {
        health = health.issues(
            eks::AddonIssue::builder()
                .code(code.clone())
                .message(*message)
                .build(),
        );
    }
    eks::Addon::builder()
        .addon_name(name)
        .addon_version("v1.18.3-eksbuild.1")
        .status(status)
        .health(health.build())
        .modified_at(sdk_time(t0() - chrono::TimeDelta::days(30)))
        .build()
}

#[tokio::test(start_paused = true)]
async fn degraded_and_failed_add_ons_alert_and_their_updates_are_looked_at() {
    let listing = list_clusters(&["alpha"]);
    let names = mock!(Client::list_addons).then_output(|| {
        ListAddonsOutput::builder()
            .addons("vpc-cni")
            .addons("coredns")
            .addons("kube-proxy")
            .build()
    });
    let describe_rule = mock!(Client::describe_addon).then_compute_output(|r| {
        let a = match r.addon_name().unwrap_or_default() {
            "vpc-cni" => addon(
                "vpc-cni",
                eks::AddonStatus::Degraded,
                &[(
                    eks::AddonIssueCode::InsufficientNumberOfReplicas,
                    "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                )],
            ),
            "coredns" => addon(
                "coredns",
                eks::AddonStatus::UpdateFailed,
                &[(eks::AddonIssueCode::ConfigurationConflict, "Conflicts found")],
            ),
            name => addon(name, eks::AddonStatus::Active, &[]),
        };
        DescribeAddonOutput::builder().addon(a).build()
    });
    let addon_updates = mock!(Client::list_updates)
        .match_requests(|r| r.addon_name().is_some())
        .then_compute_output(|r| {
            let b = ListUpdatesOutput::builder();
            match r.addon_name() {
                Some("coredns") => b.update_ids("u-coredns").build(),
                _ => b.build(),
            }
        });
    let describe_update = mock!(Client::describe_update)
        .match_requests(|r| r.addon_name() == Some("coredns"))
        .then_output(|| {
            let mut u = update(
                "u-coredns",
                eks::UpdateStatus::Failed,
                eks::UpdateType::AddonUpdate,
                t0() - chrono::TimeDelta::hours(2),
            );
            u.params = Some(vec![
                eks::UpdateParam::builder()
                    .r#type(eks::UpdateParamType::AddonVersion)
                    .value("v1.11.4-eksbuild.2")
                    .build(),
            ]);
            u.errors = Some(vec![
                eks::ErrorDetail::builder()
                    .error_code(eks::ErrorCode::ConfigurationConflict)
                    .error_message("Conflicts found when trying to apply")
                    .build(),
            ]);
            DescribeUpdateOutput::builder().update(u).build()
        });
    let mut p = poller(&[
        &listing,
        &names,
        &describe_rule,
        &addon_updates,
        &describe_update,
    ]);
    let (_, detail) = inventory_then_detail(&mut p, "alpha").await;
    let cluster = changed(&detail);
    let addons: Vec<(&str, &str)> = cluster
        .addons
        .iter()
        .map(|a| (a.name.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        addons,
        [
            ("vpc-cni", "DEGRADED"),
            ("coredns", "UPDATE_FAILED"),
            ("kube-proxy", "ACTIVE")
        ]
    );
    assert_eq!(cluster.addons[0].version, "v1.18.3-eksbuild.1");
    // Only the two add-ons not ACTIVE have their updates listed.
    assert_eq!(addon_updates.num_calls(), 2);

    let fired = alerts(&detail);
    let by_key: HashMap<String, &Alert> = fired.iter().map(|a| (a.key.0.clone(), a)).collect();
    let cni = by_key["eks-health:prod/us-east-1/alpha:eks-addon-degraded:vpc-cni"];
    assert_eq!(cni.severity, Severity::Warning);
    assert_eq!(
        cni.summary,
        "vpc-cni is DEGRADED: InsufficientNumberOfReplicas: The add-on is unhealthy because it doesn't have the desired number of replicas."
    );
    let dns = by_key["eks-health:prod/us-east-1/alpha:eks-addon-degraded:coredns"];
    assert_eq!(dns.severity, Severity::Critical);
    assert_eq!(
        dns.summary,
        "coredns is UPDATE_FAILED: ConfigurationConflict: Conflicts found"
    );
    let failed = by_key["eks-health:prod/us-east-1/alpha:eks-update-failed:u-coredns"];
    assert_eq!(
        failed.summary,
        "AddonUpdate (coredns: AddonVersion=v1.11.4-eksbuild.2) failed: ConfigurationConflict: Conflicts found when trying to apply"
    );
    assert_eq!(failed.labels["addon"], "coredns");
    assert_eq!(fired.len(), 3, "{fired:#?}");
}

#[tokio::test(start_paused = true)]
async fn degraded_node_groups_alert_naming_their_issues() {
    let listing = list_clusters(&["alpha"]);
    let names = mock!(Client::list_nodegroups).then_output(|| {
        ListNodegroupsOutput::builder()
            .nodegroups("general")
            .nodegroups("gpu")
            .nodegroups("spot")
            .build()
    });
    let describe_rule = mock!(Client::describe_nodegroup).then_compute_output(|r| {
        let name = r.nodegroup_name().unwrap_or_default();
        let ng = eks::Nodegroup::builder().nodegroup_name(name);
        let ng = match name {
            "gpu" => ng.status(eks::NodegroupStatus::Degraded).health(
                eks::NodegroupHealth::builder()
                    .issues(
                        eks::Issue::builder()
                            .code(eks::NodegroupIssueCode::AsgInstanceLaunchFailures)
                            .message("Could not launch On-Demand Instances. InsufficientInstanceCapacity")
                            .build(),
                    )
                    .build(),
            ),
            "spot" => ng.status(eks::NodegroupStatus::CreateFailed),
            _ => ng.status(eks::NodegroupStatus::Active),
        };
        DescribeNodegroupOutput::builder().nodegroup(ng.build()).build()
    });
    let mut p = poller(&[&listing, &names, &describe_rule]);
    let (_, detail) = inventory_then_detail(&mut p, "alpha").await;
    let fired: Vec<(String, Severity, String)> = alerts(&detail)
        .into_iter()
        .map(|a| (a.key.0, a.severity, a.summary))
        .collect();
    assert_eq!(
        fired,
        [
            (
                "eks-health:prod/us-east-1/alpha:eks-nodegroup-degraded:gpu".to_string(),
                Severity::Warning,
                "node group gpu is DEGRADED: AsgInstanceLaunchFailures: Could not launch On-Demand Instances. InsufficientInstanceCapacity".to_string()
            ),
            (
                "eks-health:prod/us-east-1/alpha:eks-nodegroup-degraded:spot".to_string(),
                Severity::Critical,
                "node group spot is CREATE_FAILED".to_string()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn operations_the_endpoint_does_not_serve_are_skipped_without_an_error() {
    let listing = list_clusters(&["alpha"]);
    let not_served = || {
        HttpResponse::new(
            StatusCode::try_from(404).expect("valid status"),
            SdkBody::from("<!doctype html><title>404 Not Found</title>"),
        )
    };
    let insights_rule = mock!(Client::list_insights).then_http_response(not_served);
    let addons_rule = mock!(Client::list_addons).then_http_response(not_served);
    let mut p = poller(&[&listing, &insights_rule, &addons_rule]);
    let (_, detail) = inventory_then_detail(&mut p, "alpha").await;
    let h = health(&detail);
    assert_eq!(h.last_error, None);
    assert!(h.is_healthy(t0()));
    tokio::time::advance(super::DETAIL_INTERVAL * 2).await;
    p.poll_due_detail().await;
    assert_eq!(
        (insights_rule.num_calls(), addons_rule.num_calls()),
        (1, 1),
        "not asked again within the hour"
    );
}

#[tokio::test(start_paused = true)]
async fn a_detail_failure_names_the_cluster_and_keeps_the_previous_alerts() {
    let listing = list_clusters(&["alpha"]);
    let insights_rule = mock!(Client::list_insights)
        .sequence()
        .output(four_insights)
        .http_response(|| http_error(403, "AccessDeniedException", "no insights for you"))
        .build();
    let mut p = poller(&[&listing, &insights_rule]);
    inventory_then_detail(&mut p, "alpha").await;
    tokio::time::advance(super::DETAIL_INTERVAL * 2).await;
    let events = p.poll_due_detail().await;
    assert!(
        alerts(&events).is_empty(),
        "nothing resolved on a failed poll"
    );
    assert_eq!(
        changed(&events).insights.len(),
        4,
        "the last insights stand"
    );
    assert_eq!(
        health(&events).last_error.as_deref(),
        Some("alpha: eks:ListInsights: AccessDeniedException: no insights for you")
    );
}

// ---- the task ----

#[tokio::test(start_paused = true)]
async fn the_task_sends_ready_on_a_failing_region_and_stops_when_the_channel_closes() {
    let denied = mock!(Client::list_clusters)
        .then_http_response(|| http_error(403, "AccessDeniedException", DENIED));
    let (tx, mut rx) = mpsc::channel(64);
    let (inv_tx, inv_rx) = watch::channel(vec![id("stale")]);
    let handle = super::task::spawn_with_client(client(&[&denied]), &scope(), tx, inv_tx);
    assert_eq!(handle.name, "eks:prod/us-east-1");
    let mut seen = Vec::new();
    while let Some(e) = rx.recv().await {
        let ready = matches!(e, SourceEvent::Ready { .. });
        seen.push(e);
        if ready {
            break;
        }
    }
    assert!(health(&seen).last_error.is_some());
    assert_eq!(
        *inv_rx.borrow(),
        vec![id("stale")],
        "a failed inventory does not blank the CloudWatch source's list"
    );
    drop(rx);
    // The task notices the closed channel and ends: the command channel closes with it.
    tokio::time::timeout(std::time::Duration::from_secs(5), handle.commands.closed())
        .await
        .expect("the task ended");
}

#[tokio::test(start_paused = true)]
async fn the_task_publishes_the_inventory_and_answers_focus() {
    let listing = list_clusters(&["alpha", "bravo"]);
    let insights_rule = mock!(Client::list_insights).then_output(four_insights);
    let described = mock!(Client::describe_insight).then_compute_output(|r| {
        DescribeInsightOutput::builder()
            .insight(
                eks::Insight::builder()
                    .id(r.id().unwrap_or_default())
                    .build(),
            )
            .build()
    });
    let (tx, mut rx) = mpsc::channel(256);
    let (inv_tx, mut inv_rx) = watch::channel(Vec::new());
    let handle = super::task::spawn_with_client(
        client(&[&listing, &insights_rule, &described]),
        &scope(),
        tx,
        inv_tx,
    );
    inv_rx.changed().await.expect("an inventory");
    assert_eq!(*inv_rx.borrow(), vec![id("alpha"), id("bravo")]);
    handle
        .commands
        .send(crate::sources::SourceCommand::Focus(Some(id("bravo"))))
        .await
        .expect("the task listens");
    let mut store = Store::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while described.num_calls() < 3
        || store
            .cluster(&id("bravo"))
            .is_none_or(|c| c.insights.first().is_none_or(|i| i.detail.is_none()))
    {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("focus answered in time")
            .expect("the task runs");
        store.apply(e, t0());
    }
    assert!(store.is_ready(&["eks:prod/us-east-1".to_string()]));
}

// ---- faults: each one shown, the last good picture kept, recovery by itself ----

/// A clock that moves (1000x), so that an error after a success is seen as after it.
fn moving_scope() -> AwsScope {
    let mut s = scope();
    s.clock = Clock::simulated(t0(), 1000.0);
    s
}

/// Polls the inventory and folds it into `store`, a little later than the last poll.
async fn poll_into(p: &mut Poller, store: &mut Store) -> Vec<SourceEvent> {
    std::thread::sleep(std::time::Duration::from_millis(3));
    let events = p.poll_inventory().await;
    for e in events.clone() {
        store.apply(e, t0());
    }
    events
}

fn failing(h: &SourceHealth) -> bool {
    matches!((h.last_error_at, h.last_ok), (Some(err), Some(ok)) if err > ok)
        || (h.last_error_at.is_some() && h.last_ok.is_none())
}

fn recovered(h: &SourceHealth) -> bool {
    h.last_ok.is_some() && !failing(h) && h.status(h.last_ok.expect("ok")) == SourceStatus::Ok
}

/// A good inventory (alpha), then `fault` for `attempts` answers, then a good one (alpha and
/// bravo): the fault is shown as `error`, alpha stays on screen, then both show and the
/// source is healthy again. Returns the health while failing.
async fn survives(fault: fn() -> HttpResponse, attempts: usize, error: &str) -> SourceHealth {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .http_response(fault)
        .times(attempts)
        .output(|| {
            ListClustersOutput::builder()
                .clusters("alpha")
                .clusters("bravo")
                .build()
        })
        .build();
    let mut p = poller_in(&moving_scope(), &[&listing]);
    let mut store = Store::new();
    let good = poll_into(&mut p, &mut store).await;
    let before = health(&good);
    assert!(recovered(&before), "{before:?}");

    let events = poll_into(&mut p, &mut store).await;
    assert!(
        inventory(&events).is_none(),
        "no inventory from a failed listing"
    );
    let h = health(&events);
    assert_eq!(h.last_error.as_deref(), Some(error));
    assert!(failing(&h), "shown failing: {h:?}");
    assert_eq!(h.errors, before.errors + 1);
    assert_eq!(
        h.calls,
        before.calls + attempts as u64,
        "retried as often as the fault deserves, and no more"
    );
    assert!(
        store.cluster(&id("alpha")).is_some(),
        "the last inventory stands"
    );

    let events = poll_into(&mut p, &mut store).await;
    assert_eq!(
        names(&inventory(&events).expect("fresh inventory")),
        ["alpha", "bravo"]
    );
    let after = health(&events);
    assert!(recovered(&after), "recovered: {after:?}");
    assert!(store.cluster(&id("bravo")).is_some());
    h
}

#[tokio::test(start_paused = true)]
async fn fault_throttled_past_every_retry_is_failing_counted_and_recovers() {
    let h = survives(
        || http_error(400, "ThrottlingException", "Rate exceeded"),
        4,
        "eks:ListClusters: ThrottlingException: Rate exceeded",
    )
    .await;
    assert_eq!(h.throttles, 4, "every throttled attempt counts");
}

#[tokio::test(start_paused = true)]
async fn fault_5xx_is_retried_shown_and_recovers() {
    let h = survives(
        || http_error(503, "ServiceUnavailableException", "Service is unavailable"),
        4,
        "eks:ListClusters: ServiceUnavailableException: Service is unavailable",
    )
    .await;
    assert_eq!(h.throttles, 0);
}

#[tokio::test(start_paused = true)]
async fn fault_a_5xx_from_a_proxy_without_a_code_says_the_status() {
    survives(
        || {
            let mut r = HttpResponse::new(
                StatusCode::try_from(502).expect("valid status"),
                SdkBody::from("<html><body>502 Bad Gateway</body></html>"),
            );
            r.headers_mut().insert("content-type", "text/html");
            r
        },
        4,
        "eks:ListClusters: HTTP 502",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_a_malformed_body_is_unreadable_retried_and_recovers() {
    let listing = mock!(Client::list_clusters)
        .sequence()
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .http_response(|| {
            let mut r = HttpResponse::new(
                StatusCode::try_from(200).expect("valid status"),
                SdkBody::from(r#"{"clusters": ["alpha", "#),
            );
            r.headers_mut().insert("content-type", "application/json");
            r
        })
        .times(4)
        .output(|| ListClustersOutput::builder().clusters("alpha").build())
        .build();
    let mut p = poller_in(&moving_scope(), &[&listing]);
    let mut store = Store::new();
    poll_into(&mut p, &mut store).await;
    let events = poll_into(&mut p, &mut store).await;
    let h = health(&events);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("eks:ListClusters: unreadable response (HTTP 200): "),
        "{error}"
    );
    assert!(
        error.contains("unexpected end"),
        "says what is wrong: {error}"
    );
    assert!(failing(&h));
    assert_eq!(listing.num_calls(), 1 + 4, "retried, then given up");
    assert!(store.cluster(&id("alpha")).is_some());
    let events = poll_into(&mut p, &mut store).await;
    assert!(recovered(&health(&events)));
}

#[tokio::test(start_paused = true)]
async fn fault_an_expired_token_is_shown_not_retried_and_recovers() {
    survives(
        || {
            http_error(
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        },
        1,
        "eks:ListClusters: ExpiredTokenException: The security token included in the request is expired",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_describe_failing_mid_run_keeps_the_clusters_picture() {
    // DescribeCluster times out (transient) for alpha on the second poll: alpha keeps its
    // last picture and the error names it.
    let describe = mock!(Client::describe_cluster)
        .match_requests(|r| r.name() == Some("alpha"))
        .sequence()
        .output(|| describe(eks_cluster("alpha")))
        .http_response(|| http_error(500, "ServerException", "internal error"))
        .times(4)
        .output(|| describe(eks_cluster("alpha")))
        .build();
    let mut p = poller_in(
        &moving_scope(),
        &[&list_clusters(&["alpha", "bravo"]), &describe],
    );
    let mut store = Store::new();
    poll_into(&mut p, &mut store).await;
    let events = poll_into(&mut p, &mut store).await;
    let h = health(&events);
    assert_eq!(
        h.last_error.as_deref(),
        Some("alpha: eks:DescribeCluster: ServerException: internal error")
    );
    let alpha = store.cluster(&id("alpha")).expect("alpha kept");
    assert_eq!(alpha.status, ClusterStatus::Active, "its last picture");
    assert_eq!(alpha.version, "1.31");
    let events = poll_into(&mut p, &mut store).await;
    assert!(recovered(&health(&events)));
}

// -- the real SDK stack over loopback: timeouts, DNS, refused connections, credentials --

/// What a small EKS endpoint answers: one cluster, alpha.
fn eks_endpoint(seen: &crate::sources::faults::Seen) -> crate::sources::faults::Reply {
    use crate::sources::faults::json;
    let path = seen.path.split('?').next().unwrap_or_default();
    match path {
        "/clusters" => json(200, r#"{"clusters":["alpha"]}"#),
        "/clusters/alpha" => json(
            200,
            r#"{"cluster":{"name":"alpha","arn":"arn:aws:eks:us-east-1:111111111111:cluster/alpha","version":"1.31","status":"ACTIVE","tags":{"env":"prod"}}}"#,
        ),
        _ => json(404, r#"{"message":"not served here"}"#),
    }
}

/// A poller whose client is built as `sdk_config` builds it (fleetdeck's timeouts, no SDK
/// retries), against `endpoint`, with `credentials` and no credential cache.
async fn networked(
    endpoint: &str,
    credentials: crate::sources::faults::FlakyCredentials,
) -> Poller {
    let mut s = moving_scope();
    s.account.endpoint_url = Some(endpoint.to_string());
    let sdk = crate::sources::aws::loader(&s.account, &s.region)
        .credentials_provider(credentials)
        .identity_cache(aws_sdk_eks::config::IdentityCache::no_cache())
        .load()
        .await;
    Poller::new(Client::new(&sdk), &s)
}

#[tokio::test]
async fn fault_a_hung_endpoint_times_out_and_recovers() {
    use crate::sources::faults::{FaultServer, FlakyCredentials, Mode};
    let server = FaultServer::start(eks_endpoint).await;
    let mut p = networked(&server.url, FlakyCredentials::default()).await;
    let mut store = Store::new();
    let before = health(&poll_into(&mut p, &mut store).await);
    assert!(recovered(&before));

    // Virtual time only while the server hangs: a paused clock jumps ahead whenever the
    // runtime waits, so a real server's answer would lose the race to the timeouts.
    tokio::time::pause();
    server.set(Mode::Hang);
    let started = tokio::time::Instant::now();
    let events = poll_into(&mut p, &mut store).await;
    let waited = started.elapsed();
    // Four attempts of at most 20 s each, and the backoffs between them: bounded.
    assert!(
        waited >= std::time::Duration::from_secs(20) && waited < std::time::Duration::from_secs(90),
        "{waited:?}"
    );
    let h = health(&events);
    let error = h.last_error.clone().expect("an error");
    assert!(error.starts_with("eks:ListClusters: timed out"), "{error}");
    assert!(failing(&h));
    assert_eq!(h.errors, before.errors + 1);
    assert_eq!(h.calls, before.calls + 4);
    assert!(store.cluster(&id("alpha")).is_some());

    // The endpoint answers again (real time from here: the server is real).
    tokio::time::resume();
    server.set(Mode::Answer);
    let events = poll_into(&mut p, &mut store).await;
    assert_eq!(
        names(&inventory(&events).expect("fresh inventory")),
        ["alpha"]
    );
    assert!(recovered(&health(&events)), "{:?}", health(&events));
}

#[tokio::test]
async fn fault_a_name_that_does_not_resolve_is_shown_as_a_connection_failure() {
    use crate::sources::faults::{FlakyCredentials, UNRESOLVABLE_HOST};
    let mut p = networked(
        &format!("http://{UNRESOLVABLE_HOST}"),
        FlakyCredentials::default(),
    )
    .await;
    let events = p.poll_inventory().await;
    let h = health(&events);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("eks:ListClusters: connection failed: ")
            || error.starts_with("eks:ListClusters: request not sent: "),
        "{error}"
    );
    assert!(error.contains("dns error"), "{error}");
    assert!(failing(&h));
    assert_eq!((h.calls, h.errors), (4, 1), "retried, then given up");
    assert!(
        is_ready(&events),
        "a region that cannot be reached is still Ready"
    );
}

#[tokio::test]
async fn fault_a_refused_connection_is_shown_and_recovers_when_the_endpoint_is_back() {
    use crate::sources::faults::{FaultServer, FlakyCredentials, refused_port};
    let port = refused_port();
    let mut p = networked(
        &format!("http://127.0.0.1:{port}"),
        FlakyCredentials::default(),
    )
    .await;
    let mut store = Store::new();
    let events = poll_into(&mut p, &mut store).await;
    let h = health(&events);
    let error = h.last_error.clone().expect("an error");
    assert!(
        error.starts_with("eks:ListClusters: connection failed: "),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(failing(&h));

    let _server = FaultServer::start_on(port, eks_endpoint).await;
    let events = poll_into(&mut p, &mut store).await;
    assert_eq!(names(&inventory(&events).expect("an inventory")), ["alpha"]);
    assert!(recovered(&health(&events)));
}

#[tokio::test]
async fn fault_credentials_expiring_mid_run_are_shown_not_hammered_and_recover() {
    use crate::sources::faults::{FaultServer, FlakyCredentials};
    let server = FaultServer::start(eks_endpoint).await;
    let credentials = FlakyCredentials::default();
    let mut p = networked(&server.url, credentials.clone()).await;
    let mut store = Store::new();
    assert!(recovered(&health(&poll_into(&mut p, &mut store).await)));
    let requests = server.seen().len();

    credentials.fail(true);
    let asked = credentials.calls();
    let events = poll_into(&mut p, &mut store).await;
    let h = health(&events);
    let error = h.last_error.clone().expect("an error");
    assert!(error.starts_with("eks:ListClusters: "), "{error}");
    assert!(error.contains("the SSO session has expired"), "{error}");
    assert!(failing(&h));
    assert_eq!(server.seen().len(), requests, "nothing is sent unsigned");
    assert_eq!(
        credentials.calls() - asked,
        1,
        "a broken chain is not retried: {error}"
    );
    assert!(store.cluster(&id("alpha")).is_some());

    credentials.fail(false);
    let events = poll_into(&mut p, &mut store).await;
    assert!(inventory(&events).is_some());
    assert!(recovered(&health(&events)));
}

// ---- pacing: the account and region's request rate adapts to throttling ----

/// AWS's side of an account whose EKS quota is partly used by other tools: a token bucket
/// of `per_second` requests holding one second of them. A request it refuses is answered
/// as EKS does, 429 `TooManyRequestsException`.
#[derive(Clone)]
struct Quota(Arc<std::sync::Mutex<QuotaState>>);

struct QuotaState {
    per_second: f64,
    tokens: f64,
    at: tokio::time::Instant,
    /// Every request, when it came and whether it was refused.
    seen: Vec<(tokio::time::Instant, bool)>,
}

impl Quota {
    fn new(per_second: f64) -> Self {
        Self(Arc::new(std::sync::Mutex::new(QuotaState {
            per_second,
            tokens: per_second,
            at: tokio::time::Instant::now(),
            seen: Vec::new(),
        })))
    }

    /// The other tools stop (or start): the quota left to fleetdeck changes.
    fn set(&self, per_second: f64) {
        let mut q = self.0.lock().expect("quota");
        q.per_second = per_second;
        q.tokens = q.tokens.min(per_second);
    }

    /// Whether AWS takes a request now.
    fn admit(&self) -> bool {
        let mut q = self.0.lock().expect("quota");
        let now = tokio::time::Instant::now();
        let earned = (now - q.at).as_secs_f64() * q.per_second;
        q.tokens = (q.tokens + earned).min(q.per_second);
        q.at = now;
        let ok = q.tokens >= 1.0;
        if ok {
            q.tokens -= 1.0;
        }
        q.seen.push((now, !ok));
        ok
    }

    fn seen(&self) -> Vec<(tokio::time::Instant, bool)> {
        self.0.lock().expect("quota").seen.clone()
    }
}

/// `n` clusters, `c00`, `c01`...
fn many_clusters(n: usize) -> Rule {
    mock!(Client::list_clusters).then_output(move || {
        ListClustersOutput::builder()
            .set_clusters(Some((0..n).map(|i| format!("c{i:02}")).collect()))
            .build()
    })
}

/// `DescribeCluster` under `quota`.
fn describe_under(quota: &Quota) -> Rule {
    let quota = quota.clone();
    mock!(Client::describe_cluster).then_compute_response(move |req| {
        if quota.admit() {
            aws_smithy_mocks::MockResponse::Output(describe(eks_cluster(
                req.name().unwrap_or_default(),
            )))
        } else {
            aws_smithy_mocks::MockResponse::Http(http_error(
                429,
                "TooManyRequestsException",
                "Too Many Requests",
            ))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn throttled_describes_slow_the_region_down_then_it_climbs_back_to_the_ceiling() {
    use std::time::Duration;
    // The retries' backoff is random (full jitter, from this thread's generator): with
    // some draws (about 1 run in 40) one describe is refused on all four attempts and
    // given up, which the next inventory would retry. A fixed seed makes the run the same
    // every time, so the bounds below test the pacing, not the luck.
    fastrand::seed(7);
    const CLUSTERS: usize = 80;
    // fleetdeck may make 10 requests a second; other tools leave it 4 of the account's.
    let quota = Quota::new(4.0);
    let (list, describes) = (many_clusters(CLUSTERS), describe_under(&quota));
    let mut p = poller(&[&list, &describes]);

    let start = tokio::time::Instant::now();
    let events = p.poll_inventory().await;
    let took = start.elapsed();
    let clusters = inventory(&events).expect("an inventory");
    assert_eq!(clusters.len(), CLUSTERS);
    assert!(
        clusters.iter().all(|c| c.status == ClusterStatus::Active),
        "every cluster described: nothing given up after its retries"
    );
    let h = health(&events);
    assert_eq!((h.errors, h.last_error.as_deref()), (0, None));
    let pace = h.pace.expect("an AWS source says its pace");
    assert!(h.throttles > 0 && pace.cuts > 0, "{h:?}");
    assert!(pace.cut_at.is_some() && pace.ceiling == 10.0, "{pace:?}");
    // Slowed to what the quota allows rather than hammering it at the ceiling: throttles
    // stay a small share of the requests (at a fixed 10/s about half are, and some clusters
    // are given up after their retries), and the whole takes little longer than the
    // quota's own pace allows (19 s: 4 at once, then 4 a second).
    let seen = quota.seen();
    let refused = seen.iter().filter(|(_, refused)| *refused).count();
    assert_eq!(refused as u64, h.throttles);
    assert!(
        refused * 5 <= seen.len(),
        "{refused} of {} refused",
        seen.len()
    );
    assert!(
        took >= Duration::from_secs(19) && took <= Duration::from_secs(25),
        "{took:?}"
    );

    // The other tools stop: fleetdeck climbs back to its ceiling and stays there.
    quota.set(1000.0);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let start = tokio::time::Instant::now();
    let events = p.poll_inventory().await;
    let took = start.elapsed();
    assert_eq!(inventory(&events).expect("an inventory").len(), CLUSTERS);
    let after = health(&events);
    assert_eq!(after.throttles, h.throttles, "no new throttle");
    let pace = after.pace.expect("a pace");
    assert!(!pace.is_cut(), "{pace:?}");
    // 81 requests at 10/s with a second of them at once: about 7 s.
    assert!(
        took >= Duration::from_millis(6500) && took <= Duration::from_millis(7500),
        "{took:?}"
    );
}
