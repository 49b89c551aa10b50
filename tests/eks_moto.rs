//! The EKS source against moto's AWS emulator on 127.0.0.1: two moto servers are two AWS
//! accounts, with clusters in two regions created through the SDK as a user would.
//!
//! Two levels: the source itself spawned per account and region and folded into a `Store`,
//! and the real binary's `fleetdeck snapshot --format json` over the same scene.
//! moto serves ListClusters, DescribeCluster, node groups and tags, but not insights,
//! updates, add-ons or DescribeClusterVersions (it answers those with a bare 404): those
//! paths are covered by the unit tests against the SDK's mocks.

mod common;
mod moto;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_eks::config::{Credentials, Region};
use fleetdeck::clock::Clock;
use fleetdeck::config::{Account, Clusters};
use fleetdeck::model::{ClusterId, Store};
use fleetdeck::sources::aws::{AwsScope, RequestBudget};
use fleetdeck::sources::{EVENT_CHANNEL_CAPACITY, SourceHandle, eks};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use moto::{ClusterSpec, MOTO_ACCOUNT_ID, MotoServer, create_clusters};

/// A closed port: connections to it are refused at once.
const UNREACHABLE: &str = "http://127.0.0.1:1";
/// How long a source may take to its first complete picture here.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The fleet of the "prod" account: two clusters in us-east-1, one in eu-west-1.
const PROD_US: &[ClusterSpec] = &[
    ClusterSpec {
        name: "payments-prod",
        version: "1.30",
        tags: &[("env", "prod"), ("team", "payments")],
    },
    ClusterSpec {
        name: "search-prod",
        version: "1.31",
        // A common spelling, folded into prod.
        tags: &[("env", "production"), ("team", "search")],
    },
];
const PROD_EU: &[ClusterSpec] = &[ClusterSpec {
    name: "payments-prod-eu",
    version: "1.29",
    tags: &[("env", "prod"), ("team", "payments")],
}];
/// The "staging" account: one tagged cluster and one nobody tagged.
const STAGING_US: &[ClusterSpec] = &[
    ClusterSpec {
        name: "payments-staging",
        version: "1.31",
        tags: &[("env", "staging"), ("team", "payments")],
    },
    ClusterSpec {
        name: "scratch",
        version: "1.31",
        tags: &[],
    },
];

/// Two moto servers (two accounts) with the fleet above, plus a node group on one cluster
/// so the detail poll has something to describe.
async fn scene() -> (MotoServer, MotoServer) {
    let prod = MotoServer::start();
    let staging = MotoServer::start();
    create_clusters(&prod, "us-east-1", PROD_US).await;
    create_clusters(&prod, "eu-west-1", PROD_EU).await;
    create_clusters(&staging, "us-east-1", STAGING_US).await;
    prod.eks("us-east-1")
        .create_nodegroup()
        .cluster_name("payments-prod")
        .nodegroup_name("general")
        .node_role(format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/eks-node"))
        .subnets("subnet-0a1b2c3d")
        .send()
        .await
        .expect("node group created");
    (prod, staging)
}

/// `(name, account, region, environment, version, status)` of every cluster, sorted.
type Row = (String, String, String, String, String, String);

fn expected_rows() -> Vec<Row> {
    let row = |name: &str, account: &str, region: &str, env: &str, version: &str| {
        (
            name.to_string(),
            account.to_string(),
            region.to_string(),
            env.to_string(),
            version.to_string(),
            "ACTIVE".to_string(),
        )
    };
    vec![
        row("payments-prod", "prod", "us-east-1", "prod", "1.30"),
        row("payments-prod-eu", "prod", "eu-west-1", "prod", "1.29"),
        row(
            "payments-staging",
            "staging",
            "us-east-1",
            "staging",
            "1.31",
        ),
        row("scratch", "staging", "us-east-1", "untagged", "1.31"),
        row("search-prod", "prod", "us-east-1", "prod", "1.31"),
    ]
}

// ---- the source, spawned directly ----

fn account(name: &str, endpoint: &str, regions: &[&str]) -> Account {
    Account {
        name: name.into(),
        profile: None,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        role_arn: None,
        endpoint_url: Some(endpoint.into()),
        endpoints: Default::default(),
    }
}

/// The scope `sources::aws::sdk_config` would build, with moto's test credentials given
/// directly rather than through the environment.
async fn scope(account: &Account, region: &str) -> AwsScope {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(account.endpoint_url.clone().expect("an endpoint"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        )
        .load()
        .await;
    AwsScope {
        account: account.clone(),
        region: region.into(),
        sdk,
        budget: Arc::new(RequestBudget::default()),
        clusters: Clusters::default(),
        clock: Clock::Wall,
    }
}

/// Runs one EKS source per account and region until each has said Ready (and, with
/// `details`, until every cluster has had its first detail poll), folding every event into
/// a store.
async fn run_sources(
    accounts: &[Account],
    details: bool,
) -> (Store, Vec<watch::Receiver<Vec<ClusterId>>>) {
    let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let mut handles: Vec<SourceHandle> = Vec::new();
    let mut inventories = Vec::new();
    for a in accounts {
        for region in &a.regions {
            let (inv_tx, inv_rx) = watch::channel(Vec::new());
            handles.push(eks::spawn(scope(a, region).await, tx.clone(), inv_tx));
            inventories.push(inv_rx);
        }
    }
    drop(tx);
    let names: Vec<String> = handles.iter().map(|h| h.name.clone()).collect();
    let mut store = Store::new();
    let mut detailed = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let done = |store: &Store, detailed: &std::collections::HashSet<ClusterId>| {
        store.is_ready(&names)
            && (!details || store.clusters().iter().all(|c| detailed.contains(&c.id)))
    };
    while !done(&store, &detailed) {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the sources were not done within {READY_TIMEOUT:?}"))
            .expect("the sources run");
        if let fleetdeck::model::SourceEvent::ClusterChanged(c) = &event {
            detailed.insert(c.id.clone());
        }
        store.apply(event, chrono::Utc::now());
    }
    (store, inventories)
}

fn store_rows(store: &Store) -> Vec<Row> {
    let mut rows: Vec<Row> = store
        .clusters()
        .iter()
        .map(|c| {
            (
                c.id.name.clone(),
                c.id.account.clone(),
                c.id.region.clone(),
                c.environment.to_string(),
                c.version.clone(),
                c.status.to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_reads_every_account_and_region_into_the_store() {
    let (prod, staging) = scene().await;
    let accounts = [
        account("prod", &prod.endpoint(), &["us-east-1", "eu-west-1"]),
        account("staging", &staging.endpoint(), &["us-east-1"]),
    ];
    let (store, inventories) = run_sources(&accounts, true).await;
    assert_eq!(store_rows(&store), expected_rows());
    assert!(
        store.clusters().iter().all(|c| c.is_described()),
        "Ready means every listed cluster was described"
    );

    let payments = store
        .cluster(&ClusterId::new("prod", "us-east-1", "payments-prod"))
        .expect("payments-prod");
    assert_eq!(
        payments.arn,
        format!("arn:aws:eks:us-east-1:{MOTO_ACCOUNT_ID}:cluster/payments-prod")
    );
    assert_eq!(payments.team.as_deref(), Some("payments"));
    assert!(!payments.platform_version.is_empty());
    assert!(
        payments.support.is_none(),
        "moto has neither an upgrade policy nor DescribeClusterVersions"
    );

    let now = chrono::Utc::now();
    let sources: Vec<(String, bool, Option<String>)> = store
        .sources()
        .map(|s| (s.name.clone(), s.is_healthy(now), s.last_error.clone()))
        .collect();
    assert_eq!(
        sources,
        [
            ("eks:prod/eu-west-1".to_string(), true, None),
            ("eks:prod/us-east-1".to_string(), true, None),
            ("eks:staging/us-east-1".to_string(), true, None),
        ],
        "what moto does not serve is not an error"
    );
    assert!(
        store.alerts().next().is_none(),
        "a healthy fleet raises nothing"
    );

    // The CloudWatch source of each account and region gets the cluster list.
    let mut lists: Vec<Vec<ClusterId>> = inventories.iter().map(|r| r.borrow().clone()).collect();
    lists.sort();
    assert_eq!(
        lists,
        [
            vec![ClusterId::new("prod", "eu-west-1", "payments-prod-eu")],
            vec![
                ClusterId::new("prod", "us-east-1", "payments-prod"),
                ClusterId::new("prod", "us-east-1", "search-prod"),
            ],
            vec![
                ClusterId::new("staging", "us-east-1", "payments-staging"),
                ClusterId::new("staging", "us-east-1", "scratch"),
            ],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_account_is_reported_and_does_not_hold_up_the_others() {
    let (prod, _staging) = scene().await;
    let accounts = [
        account("prod", &prod.endpoint(), &["us-east-1", "eu-west-1"]),
        account("staging", UNREACHABLE, &["us-east-1"]),
    ];
    let (store, _) = run_sources(&accounts, false).await;
    let prod_rows: Vec<Row> = expected_rows()
        .into_iter()
        .filter(|r| r.1 == "prod")
        .collect();
    assert_eq!(store_rows(&store), prod_rows);

    let now = chrono::Utc::now();
    let broken = store
        .sources()
        .find(|s| s.name == "eks:staging/us-east-1")
        .expect("the unreachable source reports");
    assert!(!broken.is_healthy(now));
    let error = broken.last_error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("eks:ListClusters: connection failed"),
        "{error}"
    );
    assert!(broken.calls >= 1 && broken.errors >= 1, "{broken:?}");
    assert!(
        store
            .sources()
            .filter(|s| s.name.starts_with("eks:prod/"))
            .all(|s| s.is_healthy(now))
    );
}

// ---- the binary: `fleetdeck snapshot --format json` ----

/// The isolated binary, with moto's test credentials.
fn fleetdeck(home: &Path) -> Command {
    let mut cmd = common::binary(home);
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(120));
    cmd
}

fn write_config(home: &Path, prod: &str, staging: &str) -> std::path::PathBuf {
    let path = home.join("fleet.toml");
    let text = format!(
        r#"[[accounts]]
name = "prod"
regions = ["us-east-1", "eu-west-1"]
endpoint_url = "{prod}"

[[accounts]]
name = "staging"
regions = ["us-east-1"]
endpoint_url = "{staging}"

[clusters]
include = ["*"]
environment_tag = "env"
"#
    );
    std::fs::write(&path, text).expect("config written");
    path
}

fn snapshot(home: &Path, config: &Path) -> Value {
    let out = fleetdeck(home)
        .args(["snapshot", "--format", "json", "--config"])
        .arg(config)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("valid JSON")
}

fn json_rows(doc: &Value) -> Vec<Row> {
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    let mut rows: Vec<Row> = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                field(c, "name"),
                field(c, "account"),
                field(c, "region"),
                field(c, "environment"),
                field(c, "version"),
                field(c, "status"),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `(name, healthy, last_error)` of the EKS sources (others, like CloudWatch, may be
/// listed too: moto does not serve what they need).
fn eks_sources(doc: &Value) -> Vec<(String, bool, Option<String>)> {
    let mut rows: Vec<_> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("eks:")))
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["healthy"].as_bool().unwrap_or(false),
                s["last_error"].as_str().map(str::to_string),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_lists_every_cluster_of_every_account_and_region() {
    let (prod, staging) = scene().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = write_config(home.path(), &prod.endpoint(), &staging.endpoint());
    let doc = tokio::task::spawn_blocking({
        let home = home.path().to_path_buf();
        move || snapshot(&home, &config)
    })
    .await
    .expect("snapshot ran");
    assert_eq!(json_rows(&doc), expected_rows());
    // Names come first, but the picture printed waits for every description.
    assert!(
        doc["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .all(|c| c["described"] == true),
        "{doc}"
    );
    let arns: Vec<&str> = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["arn"].as_str())
        .collect();
    assert!(
        arns.contains(&"arn:aws:eks:eu-west-1:123456789012:cluster/payments-prod-eu"),
        "{arns:?}"
    );
    assert_eq!(
        eks_sources(&doc),
        [
            ("eks:prod/eu-west-1".to_string(), true, None),
            ("eks:prod/us-east-1".to_string(), true, None),
            ("eks:staging/us-east-1".to_string(), true, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_completes_when_one_account_is_unreachable() {
    let (prod, _staging) = scene().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = write_config(home.path(), &prod.endpoint(), UNREACHABLE);
    let doc = tokio::task::spawn_blocking({
        let home = home.path().to_path_buf();
        move || snapshot(&home, &config)
    })
    .await
    .expect("snapshot ran");
    let prod_rows: Vec<Row> = expected_rows()
        .into_iter()
        .filter(|r| r.1 == "prod")
        .collect();
    assert_eq!(json_rows(&doc), prod_rows);
    let sources = eks_sources(&doc);
    assert_eq!(
        sources
            .iter()
            .map(|(n, healthy, _)| (n.as_str(), *healthy))
            .collect::<Vec<_>>(),
        [
            ("eks:prod/eu-west-1", true),
            ("eks:prod/us-east-1", true),
            ("eks:staging/us-east-1", false),
        ]
    );
    let error = sources[2].2.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("eks:ListClusters: connection failed"),
        "{error}"
    );
}
