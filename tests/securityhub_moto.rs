//! The Security Hub source end to end, on moto: EKS clusters created through the SDK,
//! findings seeded with `BatchImportFindings` shaped as Policy Reporter writes Kyverno's
//! and as AWS's EKS controls are, and the real binary's `fleetdeck snapshot --format json`
//! with `[securityhub]`, as a new user would run it. The EKS source tells the engine the
//! fleet, and the engine tells the Security Hub source: the whole wiring, not a part.
//!
//! What moto 5.2.5 cannot show: it ignores `GetFindings`' `Filters` (it returns every
//! finding; the source checks them again on the answer, which is what is seen here) and
//! has no `BatchUpdateFindings`. The filtered request and the ack are covered with the
//! SDK's mocks in `src/sources/securityhub/tests.rs`.

mod common;
mod moto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, RecordState, SeverityLabel, Workflow, WorkflowStatus,
};
use serde_json::Value;

use moto::{ClusterSpec, MOTO_ACCOUNT_ID, MotoServer, create_clusters, findings};

const US: &[ClusterSpec] = &[
    ClusterSpec {
        name: "payments-prod",
        version: "1.30",
        tags: &[("env", "prod")],
    },
    ClusterSpec {
        name: "search-prod",
        version: "1.31",
        tags: &[("env", "prod")],
    },
];
const EU: &[ClusterSpec] = &[ClusterSpec {
    name: "payments-prod-eu",
    version: "1.29",
    tags: &[("env", "prod")],
}];

/// A Kyverno finding of moto's account.
fn kyverno(
    id: &str,
    region: &str,
    cluster: &str,
    policy: &str,
    object: (&str, &str, &str),
    label: SeverityLabel,
) -> AwsSecurityFinding {
    findings::kyverno(id, MOTO_ACCOUNT_ID, region, cluster, policy, object, label)
}

/// us-east-1: 150 pods failing run-as-non-root on payments-prod (two pages), a PDB on
/// search-prod, and what must be left out (a RESOLVED finding, an ARCHIVED one, one on a
/// cluster that is not this fleet's). `eu_findings_in`: where the eu-west-1 cluster's
/// control finding is stored (its own region, or the aggregation region).
async fn scene(eu_findings_in: &str) -> MotoServer {
    let server = MotoServer::start();
    create_clusters(&server, "us-east-1", US).await;
    create_clusters(&server, "eu-west-1", EU).await;
    let mut us: Vec<AwsSecurityFinding> = (0..150)
        .map(|i| {
            kyverno(
                &format!("nonroot-{i:03}"),
                "us-east-1",
                "payments-prod",
                "require-run-as-nonroot",
                ("Pod", "batch", &format!("worker-{i:03}")),
                SeverityLabel::Medium,
            )
        })
        .collect();
    us.push(kyverno(
        "pdb-1",
        "us-east-1",
        "search-prod",
        "pdb-maxunavailable",
        ("PodDisruptionBudget", "search", "indexer"),
        SeverityLabel::High,
    ));
    let mut resolved = kyverno(
        "fixed-1",
        "us-east-1",
        "search-prod",
        "disallow-latest-tag",
        ("Pod", "search", "api-0"),
        SeverityLabel::High,
    );
    resolved.workflow = Some(Workflow::builder().status(WorkflowStatus::Resolved).build());
    us.push(resolved);
    let mut archived = kyverno(
        "old-1",
        "us-east-1",
        "search-prod",
        "disallow-host-path",
        ("Pod", "search", "api-1"),
        SeverityLabel::High,
    );
    archived.record_state = Some(RecordState::Archived);
    us.push(archived);
    us.push(kyverno(
        "stranger-1",
        "us-east-1",
        "not-this-fleets",
        "pdb-maxunavailable",
        ("PodDisruptionBudget", "x", "y"),
        SeverityLabel::Critical,
    ));
    findings::import(&server.securityhub("us-east-1"), us).await;
    findings::import(
        &server.securityhub(eu_findings_in),
        vec![findings::eks_control(
            "eks2-eu",
            MOTO_ACCOUNT_ID,
            eu_findings_in,
            "eu-west-1",
            "payments-prod-eu",
        )],
    )
    .await;
    server
}

fn write_config(home: &Path, endpoint: &str, securityhub: &str) -> PathBuf {
    let path = home.join("fleet.toml");
    let text = format!(
        r#"[[accounts]]
name = "prod"
regions = ["us-east-1", "eu-west-1"]
endpoint_url = "{endpoint}"

[securityhub]
{securityhub}
"#
    );
    std::fs::write(&path, text).expect("config written");
    path
}

fn snapshot(home: &Path, config: &Path) -> Value {
    let out = common::binary(home)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(120))
        .args(["snapshot", "--format", "json", "--config"])
        .arg(config)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("valid JSON")
}

async fn snapshot_of(server: &MotoServer, securityhub: &str) -> Value {
    let home = tempfile::tempdir().expect("tempdir");
    let config = write_config(home.path(), &server.endpoint(), securityhub);
    tokio::task::spawn_blocking(move || {
        let doc = snapshot(home.path(), &config);
        drop(home);
        doc
    })
    .await
    .expect("snapshot ran")
}

/// `name -> policies_failing` of every cluster.
fn failing(doc: &Value) -> BTreeMap<String, u64> {
    doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["policies_failing"].as_u64().expect("policies_failing"),
            )
        })
        .collect()
}

/// `(cluster, name, severity, count)` of the Security Hub alerts.
fn findings(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["source"] == "securityhub")
        .map(|a| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&a["cluster"]),
                s(&a["name"]),
                s(&a["severity"]),
                s(&a["labels"]["count"]),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn securityhub_sources(doc: &Value) -> Vec<(String, bool, u64)> {
    let mut rows: Vec<_> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("securityhub:"))
        })
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["healthy"].as_bool().unwrap_or(false),
                s["calls"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn expected_findings() -> Vec<(String, String, String, String)> {
    let row = |c: &str, n: &str, s: &str, k: &str| (c.into(), n.into(), s.into(), k.into());
    vec![
        row("payments-prod", "require-run-as-nonroot", "warning", "150"),
        row("payments-prod-eu", "EKS.2", "critical", "1"),
        row("search-prod", "pdb-maxunavailable", "critical", "1"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_ties_findings_of_every_region_to_their_clusters() {
    let server = scene("eu-west-1").await;
    let doc = snapshot_of(&server, "").await;

    assert_eq!(findings(&doc), expected_findings(), "{:#}", doc["alerts"]);
    assert_eq!(
        failing(&doc),
        BTreeMap::from([
            ("payments-prod".to_string(), 150),
            ("payments-prod-eu".to_string(), 1),
            ("search-prod".to_string(), 1),
        ])
    );
    let pdb = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "search-prod")
        .expect("search-prod");
    assert_eq!(pdb["policies"][0]["policy"], "pdb-maxunavailable");
    assert_eq!(pdb["policies"][0]["sources"][0], "securityhub");
    // The PDB finding opens the shipped runbook, and names its one resource.
    let alert = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["name"] == "pdb-maxunavailable")
        .expect("the PDB alert");
    assert_eq!(alert["runbook"], "policy-pdb-no-disruption");
    assert_eq!(alert["labels"]["namespace"], "search");
    assert_eq!(alert["labels"]["name"], "indexer");
    // One source per region, on the account's request budget: us-east-1 read two pages.
    assert_eq!(
        securityhub_sources(&doc),
        [
            ("securityhub:prod/eu-west-1".to_string(), true, 1),
            ("securityhub:prod/us-east-1".to_string(), true, 2),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_aggregation_region_one_source_per_account_reads_every_region() {
    // Security Hub's cross-Region aggregation: the eu-west-1 finding is in us-east-1.
    let server = scene("us-east-1").await;
    let doc = snapshot_of(&server, "aggregation_region = \"us-east-1\"").await;

    assert_eq!(findings(&doc), expected_findings(), "{:#}", doc["alerts"]);
    let sources = securityhub_sources(&doc);
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert_eq!(sources[0].0, "securityhub:prod/us-east-1");
    assert!(sources[0].1);
}
