//! Account discovery end to end, on moto: an AWS Organization (`CreateOrganization`,
//! `CreateAccount`, `CloseAccount`), member accounts whose EKS clusters moto keeps apart
//! (each reached through `sts:AssumeRole` into that account), and the real binary reading
//! them through `[organization]` alone, as a new user would.
//!
//! What moto cannot do here: refuse an `AssumeRole`. It assumes any role, and with its
//! IAM enforcement on (`/moto-api/reset-auth`, moto 5.2.5) it still does not evaluate a
//! member account's trust policy (it looks the role up in the caller's account) and
//! rejects the assumed role's signatures on EKS. A refused role is covered with the SDK's
//! mocks in `src/sources/organizations/tests.rs`.

mod common;
mod moto;
mod pty;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use aws_sdk_eks::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

use moto::MotoServer;

/// The role fleetdeck assumes in every member account.
const ROLE: &str = "fleetdeck-viewer";

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "test")
}

fn organizations(server: &MotoServer) -> aws_sdk_organizations::Client {
    let config = aws_sdk_organizations::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .credentials_provider(credentials())
        .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// Credentials in member account `id`, through a role of that account as fleetdeck
/// reaches it: moto keeps each account's resources apart.
async fn member_credentials(server: &MotoServer, id: &str, region: &str) -> Credentials {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(server.endpoint())
            .credentials_provider(credentials())
            .build(),
    );
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{id}:role/test-setup"))
        .role_session_name("test-setup")
        .send()
        .await
        .expect("assume a role in the member account");
    let c = assumed.credentials().expect("credentials");
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "assumed",
    )
}

/// An EKS client acting in member account `id`.
async fn member_eks(server: &MotoServer, id: &str, region: &str) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(server.endpoint())
            .credentials_provider(member_credentials(server, id, region).await)
            .build(),
    )
}

/// Creates account `name` in the organization; its id.
async fn create_account(server: &MotoServer, name: &str) -> String {
    let status = organizations(server)
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create account {name}: {e:?}"));
    status
        .create_account_status()
        .and_then(|s| s.account_id())
        .unwrap_or_else(|| panic!("moto gave account {name} no id"))
        .to_string()
}

/// Creates cluster `name` in account `id`, region `region`.
async fn create_cluster(server: &MotoServer, id: &str, region: &str, name: &str) {
    member_eks(server, id, region)
        .await
        .create_cluster()
        .name(name)
        .version("1.31")
        .role_arn(format!("arn:aws:iam::{id}:role/eks-cluster"))
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0a1b2c3d")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name} in {id}/{region}: {e:?}"));
}

/// The organization of these tests, by account name: its id.
struct Org {
    ids: std::collections::BTreeMap<&'static str, String>,
}

impl Org {
    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }
}

/// An organization of six member accounts (and the management account moto adds), each
/// with clusters of its own, and one closed account whose cluster must never show.
async fn organization(server: &MotoServer) -> Org {
    organizations(server)
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create the organization");
    let mut ids = std::collections::BTreeMap::new();
    for name in [
        "prod-payments",
        "prod-search",
        "prod-closed",
        "staging-web",
        "staging-old",
        "sandbox-alice",
        "sandbox-bob",
    ] {
        ids.insert(name, create_account(server, name).await);
    }
    let org = Org { ids };
    for (account, region, cluster) in [
        ("prod-payments", "us-east-1", "pay-1"),
        ("prod-payments", "us-east-1", "pay-2"),
        ("prod-payments", "eu-west-1", "pay-eu"),
        ("prod-search", "us-east-1", "search-1"),
        ("prod-closed", "us-east-1", "closed-1"),
        ("staging-web", "eu-west-1", "web-eu"),
        ("staging-old", "us-east-1", "old-1"),
        ("sandbox-alice", "us-east-1", "alice-1"),
        ("sandbox-bob", "us-east-1", "bob-1"),
    ] {
        create_cluster(server, org.id(account), region, cluster).await;
    }
    organizations(server)
        .close_account()
        .account_id(org.id("prod-closed"))
        .send()
        .await
        .expect("close an account");
    org
}

/// `[organization]` with globs by name and by id, an exclusion, and an `[[accounts]]`
/// entry for an account the organization also lists (the entry wins).
fn write_config(home: &Path, org: &Org, list_interval_secs: u64) -> PathBuf {
    let path = home.join("fleet.toml");
    let text = format!(
        r#"[organization]
role_name = "{ROLE}"
include = ["prod-*", "staging-*", "{bob}"]
exclude = ["staging-old"]
regions = ["us-east-1", "eu-west-1"]
list_interval_secs = {list_interval_secs}

[[accounts]]
name = "search"
role_arn = "arn:aws:iam::{search}:role/{ROLE}"
regions = ["us-east-1"]
"#,
        bob = org.id("sandbox-bob"),
        search = org.id("prod-search"),
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// The binary with moto as every AWS endpoint and test credentials.
fn fleetdeck(home: &Path, server: &MotoServer) -> Command {
    let mut cmd = common::binary(home);
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("USER", "alice")
        .timeout(Duration::from_secs(120));
    cmd
}

/// `(account, region, name)` of every cluster in a snapshot, sorted.
fn clusters(doc: &Value) -> Vec<(String, String, String)> {
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    let mut rows: Vec<_> = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| (field(c, "account"), field(c, "region"), field(c, "name")))
        .collect();
    rows.sort();
    rows
}

fn row(account: &str, region: &str, name: &str) -> (String, String, String) {
    (account.into(), region.into(), name.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reads_the_accounts_the_organization_lists_and_the_globs_keep() {
    let server = MotoServer::start();
    let org = organization(&server).await;
    // A member's finding, in the region its Security Hub aggregates to.
    let payments = org.id("prod-payments");
    let hub = moto::securityhub_with(
        &server,
        "us-east-1",
        member_credentials(&server, payments, "us-east-1").await,
    );
    let finding =
        moto::findings::eks_control("eks2-pay-eu", payments, "us-east-1", "eu-west-1", "pay-eu");
    moto::findings::import(&hub, vec![finding]).await;
    let home = tempfile::tempdir().expect("home");
    let config = write_config(home.path(), &org, 900);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[securityhub]\naggregation_region = \"us-east-1\"\n");
    std::fs::write(&config, text).expect("config written");
    let out = fleetdeck(home.path(), &server)
        .args(["snapshot", "--format", "json", "--config"])
        .arg(&config)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    // Included by name (prod-*, staging-*) and by id (sandbox-bob); not staging-old
    // (excluded), sandbox-alice (not included), prod-closed (not ACTIVE), nor the
    // management account. prod-search comes once, through its [[accounts]] entry.
    assert_eq!(
        clusters(&doc),
        [
            row("prod-payments", "eu-west-1", "pay-eu"),
            row("prod-payments", "us-east-1", "pay-1"),
            row("prod-payments", "us-east-1", "pay-2"),
            row("sandbox-bob", "us-east-1", "bob-1"),
            row("search", "us-east-1", "search-1"),
            row("staging-web", "eu-west-1", "web-eu"),
        ],
        "{doc:#}"
    );
    let sources = doc["sources"].as_array().expect("sources");
    let names: Vec<&str> = sources.iter().filter_map(|s| s["name"].as_str()).collect();
    for name in [
        "organizations",
        "eks:prod-payments/us-east-1",
        "eks:prod-payments/eu-west-1",
        "cloudwatch:prod-payments/us-east-1",
        "eks:staging-web/eu-west-1",
        "eks:sandbox-bob/us-east-1",
        "eks:search/us-east-1",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("prod-search")
            || n.contains("alice")
            || n.contains("staging-old")
            || n.contains("closed")),
        "{names:?}"
    );
    let org_row = sources
        .iter()
        .find(|s| s["name"] == "organizations")
        .expect("organizations");
    // Seven ACTIVE accounts (six members and the management account); three read
    // through discovery (prod-search is the [[accounts]] entry's); none failing.
    assert_eq!(
        org_row["accounts"],
        serde_json::json!({"discovered": 7, "included": 3, "failing": 0}),
        "{org_row:#}"
    );
    assert_eq!(org_row["healthy"], true, "{org_row:#}");
    // Discovered accounts read Security Hub too, in the aggregation region only, through
    // the role assumed in them; the finding is on its cluster in another region.
    assert!(
        names.contains(&"securityhub:prod-payments/us-east-1"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"securityhub:prod-payments/eu-west-1"),
        "{names:?}"
    );
    let finding = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["source"] == "securityhub")
        .unwrap_or_else(|| panic!("no Security Hub alert: {:#}", doc["alerts"]));
    assert_eq!(
        (
            &finding["account"],
            &finding["region"],
            &finding["cluster"],
            &finding["name"]
        ),
        (
            &Value::from("prod-payments"),
            &Value::from("eu-west-1"),
            &Value::from("pay-eu"),
            &Value::from("EKS.2")
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_an_account_that_joins_and_drops_one_that_leaves_without_a_restart() {
    let server = MotoServer::start();
    let org = organization(&server).await;
    let home = tempfile::tempdir().expect("home");
    let config = write_config(home.path(), &org, 10);
    let mut cmd = common::pty_command(home.path());
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("USER", "alice"),
    ] {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL", server.endpoint());
    cmd.args(["--no-cache", "--config"]);
    cmd.arg(&config);
    let mut console = pty::Console::start(cmd, 160, 48);
    console.wait_for(&["pay-1", "web-eu", "bob-1"], Duration::from_secs(60));
    let screen = console.screen();
    assert!(!screen.contains("alice-1"), "{screen}");

    // An account joins the organization while the console runs.
    let new = create_account(&server, "prod-new").await;
    create_cluster(&server, &new, "us-east-1", "new-1").await;
    console.wait_for(&["new-1"], Duration::from_secs(60));

    // The Sources view counts the accounts.
    console.keys("6");
    console.wait_for(
        &["8 accounts discovered, 4 included, 0 failing"],
        Duration::from_secs(10),
    );

    // It leaves: closed, it is no longer listed, and its cluster goes with its sources.
    organizations(&server)
        .close_account()
        .account_id(&new)
        .send()
        .await
        .expect("close the account");
    console.wait_for(
        &["7 accounts discovered, 3 included, 0 failing"],
        Duration::from_secs(60),
    );
    let screen = console.screen();
    assert!(!screen.contains("eks:prod-new"), "{screen}");
    console.keys("1");
    let screen = console.wait_for(&["pay-1"], Duration::from_secs(10));
    assert!(!screen.contains("new-1"), "{screen}");
    assert!(console.quit().success());
}
