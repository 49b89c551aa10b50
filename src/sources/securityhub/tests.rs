//! The Security Hub source against the SDK's own mocks (`aws-smithy-mocks`), for what
//! moto's Security Hub cannot show: that the request carries its filters (moto ignores
//! `Filters`), `BatchUpdateFindings` (moto has none), throttling and refusals. Reading
//! real findings end to end against moto: `tests/securityhub_moto.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsOutput;
use aws_sdk_securityhub::operation::get_findings::{GetFindingsError, GetFindingsOutput};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, BatchUpdateFindingsUnprocessedFinding, Compliance, ComplianceStatus,
    Resource, ResourceDetails, Severity as HubSeverity, SeverityLabel, StringFilterComparison,
    Workflow, WorkflowStatus,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use chrono::TimeZone;

use super::findings::{FindingRecord, FleetIndex, parse_cluster_arn};
use super::poller::Poller;
use super::*;
use crate::config::{Account, Clusters};
use crate::model::{AckKind, AlertSource, AlertState, Severity};
use crate::model::{Alert, AlertKey, ClusterId, SourceHealth, Timestamp};
use crate::sources::ClusterTarget;
use crate::sources::aws::RequestBudget;

const ACCOUNT: &str = "prod";
const ACCOUNT_ID: &str = "123456789012";
const REGION: &str = "us-east-1";

fn t0() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 6, 1, 12, 0, 30)
        .single()
        .expect("valid time")
}

fn scope() -> AwsScope {
    AwsScope {
        account: Account {
            name: ACCOUNT.into(),
            profile: None,
            regions: vec![REGION.into()],
            role_arn: None,
            endpoint_url: None,
            endpoints: Default::default(),
        },
        region: REGION.into(),
        sdk: aws_config::SdkConfig::builder().build(),
        budget: Arc::new(RequestBudget::new(1000.0)),
        clusters: Clusters::default(),
        clock: Clock::Frozen(t0()),
    }
}

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn poller(rules: &[&Rule], settings: SecurityHub) -> Poller {
    let mut p = Poller::new(client(rules), &scope(), settings);
    p.fleet = FleetIndex::new(&fleet(), ACCOUNT);
    p
}

fn target(name: &str) -> ClusterTarget {
    ClusterTarget {
        id: ClusterId::new(ACCOUNT, REGION, name),
        arn: format!("arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/{name}"),
        endpoint: None,
        certificate_authority: None,
        production: true,
    }
}

fn fleet() -> Vec<ClusterTarget> {
    vec![target("prod-api"), target("prod-web")]
}

/// A finding as Policy Reporter writes Kyverno's results: resource type `Other`, the
/// policy and the object in `Details.Other`, the cluster in a custom field.
fn kyverno(
    id: &str,
    cluster: &str,
    policy: &str,
    pod: &str,
    label: SeverityLabel,
) -> AwsSecurityFinding {
    let other = HashMap::from([
        ("Source".to_string(), "kyverno".to_string()),
        ("Policy".to_string(), policy.to_string()),
        ("Rule".to_string(), format!("{policy}-rule")),
        ("Result".to_string(), "fail".to_string()),
        ("Resource Kind".to_string(), "Pod".to_string()),
        ("Resource Namespace".to_string(), "payments".to_string()),
        ("Resource Name".to_string(), pod.to_string()),
        ("cluster".to_string(), cluster.to_string()),
    ]);
    AwsSecurityFinding::builder()
        .id(id)
        .product_arn(format!(
            "arn:aws:securityhub:{REGION}:{ACCOUNT_ID}:product/{ACCOUNT_ID}/default"
        ))
        .aws_account_id(ACCOUNT_ID)
        .region(REGION)
        .generator_id(format!("kyverno/{policy}"))
        .title(format!("{policy}: Pod payments/{pod}"))
        .severity(HubSeverity::builder().label(label).build())
        .workflow(Workflow::builder().status(WorkflowStatus::New).build())
        .record_state(aws_sdk_securityhub::types::RecordState::Active)
        .compliance(
            Compliance::builder()
                .status(ComplianceStatus::Failed)
                .build(),
        )
        .created_at("2026-06-01T10:00:00Z")
        .resources(
            Resource::builder()
                .r#type("Other")
                .id(format!("uid-{id}"))
                .region(REGION)
                .details(ResourceDetails::builder().set_other(Some(other)).build())
                .build(),
        )
        .build()
}

/// An AWS control finding on the cluster itself (`AwsEksCluster`, its ARN).
fn control(id: &str, cluster: &str, control: &str) -> AwsSecurityFinding {
    AwsSecurityFinding::builder()
        .id(id)
        .product_arn(format!(
            "arn:aws:securityhub:{REGION}::product/aws/securityhub"
        ))
        .aws_account_id(ACCOUNT_ID)
        .region(REGION)
        .generator_id(format!("security-control/{control}"))
        .title("EKS clusters should run on a supported Kubernetes version")
        .severity(HubSeverity::builder().label(SeverityLabel::Medium).build())
        .workflow(Workflow::builder().status(WorkflowStatus::Notified).build())
        .note(
            aws_sdk_securityhub::types::Note::builder()
                .text("upgrade planned")
                .updated_by("alice")
                .updated_at("2026-06-01T11:00:00Z")
                .build(),
        )
        .compliance(
            Compliance::builder()
                .status(ComplianceStatus::Failed)
                .security_control_id(control)
                .build(),
        )
        .resources(
            Resource::builder()
                .r#type("AwsEksCluster")
                .id(format!(
                    "arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/{cluster}"
                ))
                .build(),
        )
        .build()
}

fn page(findings: Vec<AwsSecurityFinding>, next: Option<&str>) -> GetFindingsOutput {
    GetFindingsOutput::builder()
        .set_findings(Some(findings))
        .set_next_token(next.map(str::to_string))
        .build()
}

fn alerts_in(events: &[SourceEvent]) -> Vec<Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Alerts(a) => Some(a.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn health_in(events: &[SourceEvent]) -> SourceHealth {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .expect("a health report")
}

#[test]
fn cluster_arns_are_read_and_other_arns_are_not() {
    assert_eq!(
        parse_cluster_arn("arn:aws:eks:eu-west-1:111122223333:cluster/prod-euw1"),
        Some((
            "111122223333".into(),
            "eu-west-1".into(),
            "prod-euw1".into()
        ))
    );
    assert_eq!(
        parse_cluster_arn("arn:aws:eks:eu-west-1:111122223333:nodegroup/x/y"),
        None
    );
    assert_eq!(
        parse_cluster_arn("arn:aws:ec2:eu-west-1:111122223333:cluster/x"),
        None
    );
    assert_eq!(parse_cluster_arn("not an arn"), None);
}

#[test]
fn a_finding_is_tied_by_arn_then_field_then_tag() {
    let by_field = FindingRecord::from_finding(
        &kyverno(
            "f1",
            "prod-api",
            "require-pdb",
            "api-0",
            SeverityLabel::High,
        ),
        "Cluster",
    );
    assert_eq!(
        by_field.cluster,
        Some((ACCOUNT_ID.into(), REGION.into(), "prod-api".into())),
        "the field is matched in any case"
    );
    assert_eq!(by_field.policy, "require-pdb");
    assert_eq!(by_field.resource, "Pod payments/api-0");
    let by_arn = FindingRecord::from_finding(&control("c1", "prod-web", "EKS.2"), "cluster");
    assert_eq!(by_arn.cluster.map(|c| c.2), Some("prod-web".to_string()));
    assert_eq!(by_arn.policy, "EKS.2", "the control id names the policy");

    let node = AwsSecurityFinding::builder()
        .id("n1")
        .aws_account_id(ACCOUNT_ID)
        .region(REGION)
        .generator_id("inspector/CVE-2026-1")
        .resources(
            Resource::builder()
                .r#type("AwsEc2Instance")
                .id("i-0abc")
                .tags("eks:cluster-name", "prod-api")
                .build(),
        )
        .build();
    let by_tag = FindingRecord::from_finding(&node, "cluster");
    assert_eq!(by_tag.cluster.map(|c| c.2), Some("prod-api".to_string()));
    assert_eq!(by_tag.policy, "inspector/CVE-2026-1");

    let nowhere = FindingRecord::from_finding(
        &AwsSecurityFinding::builder()
            .id("x")
            .title("orphan")
            .build(),
        "cluster",
    );
    assert_eq!(nowhere.cluster, None);
    assert_eq!(nowhere.policy, "orphan");
}

#[tokio::test]
async fn findings_are_grouped_by_cluster_and_policy_with_a_count() {
    // 300 pods failing one policy on one cluster: one alert, not 300.
    let mut findings: Vec<AwsSecurityFinding> = (0..300)
        .map(|i| {
            kyverno(
                &format!("run-as-nonroot-{i}"),
                "prod-api",
                "require-run-as-nonroot",
                &format!("worker-{i:03}"),
                SeverityLabel::Medium,
            )
        })
        .collect();
    findings.push(kyverno(
        "pdb",
        "prod-web",
        "pdb-maxunavailable",
        "api",
        SeverityLabel::Critical,
    ));
    findings.push(control("eks2", "prod-web", "EKS.2"));
    // Not this fleet's: another cluster, and a finding tied to nothing.
    findings.push(kyverno(
        "other",
        "someone-elses",
        "require-pdb",
        "x",
        SeverityLabel::High,
    ));
    let (first, second) = findings.split_at(100);
    let (first, second) = (first.to_vec(), second.to_vec());
    let pages = mock!(Client::get_findings)
        .sequence()
        .output(move || page(first.clone(), Some("2")))
        .output(move || page(second.clone(), None))
        .build();
    let mut p = poller(&[&pages], SecurityHub::default());

    let events = p.poll(t0()).await;

    assert_eq!(pages.num_calls(), 2, "every page");
    let mut alerts = alerts_in(&events);
    alerts.sort_by(|a, b| a.key.cmp(&b.key));
    let summary: Vec<(String, &str, Severity, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a.cluster
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                a.name.as_str(),
                a.severity,
                a.labels["count"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "prod-api".into(),
                "require-run-as-nonroot",
                Severity::Warning,
                "300"
            ),
            ("prod-web".into(), "EKS.2", Severity::Warning, "1"),
            (
                "prod-web".into(),
                "pdb-maxunavailable",
                Severity::Critical,
                "1"
            ),
        ]
    );
    let nonroot = &alerts[0];
    assert_eq!(nonroot.source, AlertSource::SecurityHub);
    assert!(
        nonroot.summary.ends_with("on 300 resources: Pod payments/worker-000, Pod payments/worker-001, Pod payments/worker-002 +297 more"),
        "{}",
        nonroot.summary
    );
    assert!(
        nonroot
            .summary
            .starts_with("require-run-as-nonroot on 300 resources: "),
        "the title's own resource is not repeated: {}",
        nonroot.summary
    );
    assert_eq!(nonroot.ack, None);
    // Already NOTIFIED in Security Hub: acked by whoever wrote the note.
    let ack = alerts[1].ack.clone().expect("NOTIFIED is an ack");
    assert_eq!(
        (ack.by.as_str(), ack.comment.as_str()),
        ("alice", "upgrade planned")
    );
    assert_eq!(ack.kind, AckKind::Notified { findings: 1 });
    let health = health_in(&events);
    assert_eq!((health.calls, health.errors), (2, 0));
    assert_eq!(health.last_ok, Some(t0()));
    assert!(health.pace.is_some(), "paced by the account's budget");
}

#[tokio::test]
async fn the_request_asks_for_active_new_or_notified_findings_in_its_region() {
    let read = mock!(Client::get_findings)
        .match_requests(|r| {
            let Some(f) = r.filters() else { return false };
            let values = |list: &[aws_sdk_securityhub::types::StringFilter]| {
                list.iter()
                    .map(|s| {
                        assert_eq!(s.comparison(), Some(&StringFilterComparison::Equals));
                        s.value().unwrap_or_default().to_string()
                    })
                    .collect::<Vec<_>>()
            };
            values(f.record_state()) == ["ACTIVE"]
                && values(f.workflow_status()) == ["NEW", "NOTIFIED"]
                && values(f.region()) == [REGION]
                && values(f.resource_type())
                    == ["AwsEksCluster", "Other", "Container", "AwsEc2Instance"]
                && r.max_results() == Some(100)
        })
        .then_output(|| page(vec![], None));
    let mut p = poller(&[&read], SecurityHub::default());
    p.poll(t0()).await;
    assert_eq!(read.num_calls(), 1, "the filtered request was sent");

    // Reading the aggregation region: every region's findings, so no region filter.
    let aggregated = mock!(Client::get_findings)
        .match_requests(|r| r.filters().is_some_and(|f| f.region().is_empty()))
        .then_output(|| page(vec![], None));
    let settings = SecurityHub {
        aggregation_region: Some(REGION.into()),
        ..SecurityHub::default()
    };
    let mut p = poller(&[&aggregated], settings);
    p.poll(t0()).await;
    assert_eq!(aggregated.num_calls(), 1);
}

#[tokio::test]
async fn what_the_filters_leave_out_is_left_out_even_when_the_service_ignores_them() {
    let mut resolved = kyverno("r", "prod-api", "require-pdb", "a", SeverityLabel::High);
    resolved.workflow = Some(Workflow::builder().status(WorkflowStatus::Resolved).build());
    let mut archived = kyverno("x", "prod-api", "require-pdb", "b", SeverityLabel::High);
    archived.record_state = Some(aws_sdk_securityhub::types::RecordState::Archived);
    let mut passed = kyverno("p", "prod-api", "require-pdb", "c", SeverityLabel::High);
    passed.compliance = Some(
        Compliance::builder()
            .status(ComplianceStatus::Passed)
            .build(),
    );
    let mut elsewhere = kyverno("e", "prod-api", "require-pdb", "d", SeverityLabel::High);
    elsewhere.region = Some("eu-west-1".into());
    let mut bucket = kyverno("b", "prod-api", "require-pdb", "f", SeverityLabel::High);
    bucket.resources = Some(vec![
        Resource::builder()
            .r#type("AwsS3Bucket")
            .id("arn:aws:s3:::logs")
            .tags("eks:cluster-name", "prod-api")
            .build(),
    ]);
    let kept = kyverno("k", "prod-api", "require-pdb", "e", SeverityLabel::High);
    let all = vec![resolved, archived, passed, elsewhere, bucket, kept];
    let read = mock!(Client::get_findings).then_output(move || page(all.clone(), None));
    let mut p = poller(&[&read], SecurityHub::default());
    let alerts = alerts_in(&p.poll(t0()).await);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].labels["count"], "1");
    assert!(
        alerts[0].summary.contains("Pod payments/e"),
        "{}",
        alerts[0].summary
    );
}

#[tokio::test]
async fn an_ack_sets_the_findings_to_notified_with_a_note_naming_the_user() {
    let findings: Vec<AwsSecurityFinding> = (0..150)
        .map(|i| {
            kyverno(
                &format!("f{i}"),
                "prod-api",
                "require-pdb",
                &format!("p{i}"),
                SeverityLabel::High,
            )
        })
        .collect();
    let read = mock!(Client::get_findings).then_output(move || page(findings.clone(), None));
    // 150 findings: two calls of at most 100, each carrying the status and the note.
    let update = mock!(Client::batch_update_findings)
        .match_requests(|r| {
            r.finding_identifiers().len() <= 100
                && r.workflow().and_then(|w| w.status()) == Some(&WorkflowStatus::Notified)
                && r.note().is_some_and(|n| {
                    n.updated_by() == Some("alice")
                        && n.text()
                            .is_some_and(|t| t.starts_with("acknowledged by alice in fleetdeck: "))
                })
        })
        .then_compute_output(|r| {
            BatchUpdateFindingsOutput::builder()
                .set_processed_findings(Some(r.finding_identifiers().to_vec()))
                .set_unprocessed_findings(Some(Vec::new()))
                .build()
        });
    let mut p = poller(&[&read, &update], SecurityHub::default());
    let alerts = alerts_in(&p.poll(t0()).await);
    let key = alerts[0].key.clone();

    let (result, events) = p.update(&key, true, "alice", "looking at it", t0()).await;

    assert_eq!(
        result,
        Ok("150 Security Hub findings set to NOTIFIED".to_string())
    );
    assert_eq!(update.num_calls(), 2);
    let acked = alerts_in(&events);
    let ack = acked[0].ack.clone().expect("the alert is acked at once");
    assert_eq!(ack.by, "alice");
    assert_eq!(ack.kind, AckKind::Notified { findings: 150 });
    assert_eq!(acked[0].labels["workflow"], "NOTIFIED");
    assert_eq!(
        acked[0].state,
        AlertState::Firing,
        "still failing: only acknowledged"
    );

    // Un-ack: back to NEW.
    let back = mock!(Client::batch_update_findings)
        .match_requests(|r| r.workflow().and_then(|w| w.status()) == Some(&WorkflowStatus::New))
        .then_compute_output(|r| {
            BatchUpdateFindingsOutput::builder()
                .set_processed_findings(Some(r.finding_identifiers().to_vec()))
                .set_unprocessed_findings(Some(Vec::new()))
                .build()
        });
    p.client = client(&[&back]);
    let (result, events) = p.update(&key, false, "alice", "", t0()).await;
    assert_eq!(
        result,
        Ok("150 Security Hub findings set to NEW".to_string())
    );
    assert_eq!(alerts_in(&events)[0].ack, None);
}

#[tokio::test]
async fn findings_security_hub_refuses_are_named() {
    let findings = vec![kyverno(
        "f1",
        "prod-api",
        "require-pdb",
        "a",
        SeverityLabel::High,
    )];
    let read = mock!(Client::get_findings).then_output(move || page(findings.clone(), None));
    let update = mock!(Client::batch_update_findings).then_compute_output(|r| {
        BatchUpdateFindingsOutput::builder()
            .set_processed_findings(Some(Vec::new()))
            .set_unprocessed_findings(Some(
                r.finding_identifiers()
                    .iter()
                    .map(|id| {
                        BatchUpdateFindingsUnprocessedFinding::builder()
                            .finding_identifier(id.clone())
                            .error_code("FindingNotFound")
                            .error_message("the finding was archived")
                            .build()
                    })
                    .collect(),
            ))
            .build()
    });
    let mut p = poller(&[&read, &update], SecurityHub::default());
    let key = alerts_in(&p.poll(t0()).await)[0].key.clone();
    let (result, _) = p.update(&key, true, "bob", "", t0()).await;
    assert_eq!(
        result,
        Err("0 finding(s) set to NOTIFIED; Security Hub refused 1: f1: FindingNotFound the finding was archived".to_string())
    );
    // An alert it no longer holds.
    let gone = AlertKey("securityhub:prod/us-east-1/prod-api:nope:nope".into());
    let (result, _) = p.update(&gone, true, "bob", "", t0()).await;
    assert!(
        result
            .expect_err("no such alert")
            .contains("holds no findings")
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_and_a_disabled_hub_says_what_to_do() {
    let read = mock!(Client::get_findings)
        .sequence()
        .error(|| {
            GetFindingsError::generic(
                ErrorMetadata::builder()
                    .code("TooManyRequestsException")
                    .message("slow down")
                    .build(),
            )
        })
        .output(|| page(vec![], None))
        .build();
    let mut p = poller(&[&read], SecurityHub::default());
    let health = health_in(&p.poll(t0()).await);
    assert_eq!((health.calls, health.throttles, health.errors), (2, 1, 0));
    assert_eq!(p.stats().throttles, 1);

    let disabled = mock!(Client::get_findings).then_error(|| {
        GetFindingsError::generic(
            ErrorMetadata::builder()
                .code("InvalidAccessException")
                .message("Account 123456789012 is not subscribed to AWS Security Hub")
                .build(),
        )
    });
    let mut p = poller(&[&disabled], SecurityHub::default());
    let health = health_in(&p.poll(t0()).await);
    let error = health.last_error.expect("failing");
    assert!(error.starts_with("securityhub:GetFindings: "), "{error}");
    assert!(
        error.contains("not subscribed") && error.contains("aggregation_region"),
        "{error}"
    );
}

#[tokio::test]
async fn findings_are_tied_again_when_the_fleet_changes_and_resolve_when_gone() {
    let findings = vec![kyverno(
        "f1",
        "prod-new",
        "require-pdb",
        "a",
        SeverityLabel::High,
    )];
    let read = mock!(Client::get_findings)
        .sequence()
        .output(move || page(findings.clone(), None))
        .output(|| page(vec![], None))
        .build();
    let mut p = poller(&[&read], SecurityHub::default());
    assert!(
        alerts_in(&p.poll(t0()).await).is_empty(),
        "no such cluster yet"
    );
    let mut grown = fleet();
    grown.push(target("prod-new"));
    p.fleet = FleetIndex::new(&grown, ACCOUNT);
    let alerts = alerts_in(&p.settle(t0()));
    assert_eq!(alerts.len(), 1, "tied as soon as the cluster is known");
    // Fixed: the next read has it no more, and its alert is resolved, not dropped.
    let alerts = alerts_in(&p.poll(t0()).await);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, AlertState::Resolved);
}

#[tokio::test(start_paused = true)]
async fn pages_are_asked_no_faster_than_security_hub_answers_get_findings() {
    let pages = mock!(Client::get_findings)
        .sequence()
        .output(|| page(vec![], Some("2")))
        .output(|| page(vec![], Some("3")))
        .output(|| page(vec![], Some("4")))
        .output(|| page(vec![], None))
        .build();
    let mut p = poller(&[&pages], SecurityHub::default());
    let start = tokio::time::Instant::now();
    p.poll(t0()).await;
    assert_eq!(pages.num_calls(), 4);
    // 3 a second: three gaps between four pages.
    assert!(
        start.elapsed() >= super::poller::PAGE_GAP * 3,
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_read_sends_what_its_pages_say_as_they_come_and_resolves_only_at_its_end() {
    // 25 pages: the first 10 and 20 are sent as they come, the rest when the read ends.
    let pages: Vec<Vec<AwsSecurityFinding>> = (0..25)
        .map(|p| {
            let cluster = if p < 10 { "prod-api" } else { "prod-web" };
            vec![kyverno(
                &format!("f{p}"),
                cluster,
                "require-pdb",
                &format!("pod-{p}"),
                SeverityLabel::High,
            )]
        })
        .collect();
    let mut rule = mock!(Client::get_findings).sequence();
    for (i, findings) in pages.into_iter().enumerate() {
        let next = (i < 24).then(|| (i + 2).to_string());
        rule = rule.output(move || page(findings.clone(), next.as_deref()));
    }
    let read = rule.build();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut p = poller(&[&read], SecurityHub::default());
    p.progress = Some(tx);
    // An alert of the last read that this one no longer has.
    p.findings = vec![FindingRecord::from_finding(
        &kyverno(
            "old",
            "prod-web",
            "disallow-latest-tag",
            "x",
            SeverityLabel::High,
        ),
        "cluster",
    )];
    p.settle(t0());

    let events = p.poll(t0()).await;
    let mut progress = Vec::new();
    while let Ok(SourceEvent::Alerts(alerts)) = rx.try_recv() {
        progress.push(alerts);
    }
    let counts = |alerts: &[Alert]| -> Vec<(String, String)> {
        alerts
            .iter()
            .map(|a| {
                (
                    a.cluster
                        .as_ref()
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                    a.labels["count"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(progress.len(), 2, "after pages 10 and 20: {progress:?}");
    assert_eq!(
        counts(&progress[0]),
        [("prod-api".to_string(), "10".to_string())]
    );
    assert_eq!(
        counts(&progress[1]),
        [("prod-web".to_string(), "10".to_string())]
    );
    assert!(
        progress
            .iter()
            .flatten()
            .all(|a| a.state == AlertState::Firing),
        "nothing resolved mid-read"
    );
    // The end: prod-web's whole count, and the old alert resolved.
    let last = alerts_in(&events);
    let resolved: Vec<&str> = last
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(resolved, ["disallow-latest-tag"]);
    assert!(
        last.iter()
            .any(|a| a.is_firing() && a.labels["count"] == "15"),
        "{last:?}"
    );
}
