//! Account discovery against the SDK's own mocks (`aws-smithy-mocks`): moto's STS assumes
//! any role it is asked for, so the refused `AssumeRole` is tested here, with AWS's own
//! error body; the Account API's `ListRegions` (which moto does not serve) too. Listing,
//! globs and accounts joining while running are tested on moto (`tests/organizations_moto.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_account::operation::list_regions::ListRegionsOutput;
use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
use aws_sdk_organizations::types::{Account as OrgAccount, AccountState};
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::DateTime;
use aws_smithy_types::body::SdkBody;
use tokio::sync::mpsc;

use super::task::{self, Parts, Start};
use super::{SOURCE_NAME, account_source_name};
use crate::clock::Clock;
use crate::config::{Organization, OrganizationRegions};
use crate::model::{AccountCounts, SourceEvent, SourceHealth, Timestamp};
use crate::sources::{SourceChange, SourceHandle};

const MANAGEMENT: &str = "111111111111";
const GOOD: &str = "222222222222";
const DENIED: &str = "333333333333";

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid time")
}

fn account(id: &str, name: &str, state: AccountState) -> OrgAccount {
    OrgAccount::builder()
        .id(id)
        .name(name)
        .arn(format!(
            "arn:aws:organizations::{MANAGEMENT}:account/o-abc/{id}"
        ))
        .state(state)
        .build()
}

/// One page of accounts, then another.
fn list_accounts() -> Rule {
    mock!(aws_sdk_organizations::Client::list_accounts)
        .sequence()
        .output(|| {
            ListAccountsOutput::builder()
                .accounts(account(GOOD, "payments-prod", AccountState::Active))
                .accounts(account("444444444444", "closed", AccountState::Suspended))
                .next_token("page-2")
                .build()
        })
        .output(|| {
            ListAccountsOutput::builder()
                .accounts(account(DENIED, "search-prod", AccountState::Active))
                .build()
        })
        .repeatedly()
        .build()
}

fn credentials() -> AssumeRoleOutput {
    AssumeRoleOutput::builder()
        .credentials(
            aws_sdk_sts::types::Credentials::builder()
                .access_key_id("ASIAMEMBER")
                .secret_access_key("secret")
                .session_token("token")
                .expiration(DateTime::from_secs(4_000_000_000))
                .build()
                .expect("complete credentials"),
        )
        .build()
}

/// STS's own answer (awsQuery XML) to a role whose trust policy does not allow us.
fn access_denied(id: &str) -> HttpResponse {
    let body = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:sts::{MANAGEMENT}:assumed-role/OrgAdmin/fleetdeck-test is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{id}:role/fleetdeck</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"#
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(403).expect("valid status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", "text/xml");
    response
}

/// Roles assumed, as (role ARN, session name, external id).
type Assumed = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

fn assume_role(assumed: Assumed) -> Vec<Rule> {
    let seen = assumed.clone();
    let good = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |req| {
            seen.lock().expect("lock").push((
                req.role_arn().unwrap_or_default().to_string(),
                req.role_session_name().unwrap_or_default().to_string(),
                req.external_id().map(str::to_string),
            ));
            req.role_arn()
                .is_some_and(|arn| arn.contains(&format!("::{GOOD}:")))
        })
        .then_output(credentials);
    let seen = assumed;
    let denied = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |req| {
            seen.lock().expect("lock").push((
                req.role_arn().unwrap_or_default().to_string(),
                req.role_session_name().unwrap_or_default().to_string(),
                req.external_id().map(str::to_string),
            ));
            req.role_arn()
                .is_some_and(|arn| arn.contains(&format!("::{DENIED}:")))
        })
        .then_http_response(|| access_denied(DENIED));
    vec![good, denied]
}

/// What the fake `start` was asked to start: (account name, role ARN, regions).
type Starts = Arc<Mutex<Vec<(String, String, Vec<String>)>>>;

fn fake_start(starts: Starts) -> task::StartAccount {
    Arc::new(move |start: &Start<'_>| {
        starts.lock().expect("lock").push((
            start.member.name.clone(),
            start.role_arn.to_string(),
            start.regions.to_vec(),
        ));
        start
            .regions
            .iter()
            .map(|region| SourceHandle {
                name: format!("eks:{}/{region}", start.member.name),
                commands: mpsc::channel(1).0,
            })
            .collect()
    })
}

struct Scene {
    org: Organization,
    organizations: Vec<Rule>,
    sts: Vec<Rule>,
    account: Vec<Rule>,
    retry_every: Duration,
}

struct Run {
    events: mpsc::Receiver<SourceEvent>,
    changes: mpsc::Receiver<SourceChange>,
    starts: Starts,
    _handle: SourceHandle,
}

fn run(scene: Scene) -> Run {
    let organizations = mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        scene.organizations.iter()
    );
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, scene.sts.iter());
    let account = mock_client!(aws_sdk_account, RuleMode::MatchAny, scene.account.iter());
    let starts = Starts::default();
    let parts = Parts {
        org: scene.org,
        explicit: Vec::new(),
        base: SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build(),
        organizations,
        sts,
        account_api: Arc::new(move |_| account.clone()),
        start: fake_start(starts.clone()),
        list_every: Duration::from_secs(900),
        retry_every: scene.retry_every,
        session_name: "fleetdeck-test".into(),
        clock: Clock::Frozen(t0()),
    };
    let (tx, events) = mpsc::channel(64);
    let started = task::spawn(parts, tx);
    Run {
        events,
        changes: started.changes,
        starts,
        _handle: started.handle,
    }
}

fn org(regions: OrganizationRegions) -> Organization {
    let mut org =
        Organization::new("fleetdeck", vec!["*".into()], Vec::new(), regions).expect("valid globs");
    org.external_id = Some("fleetdeck-7f3a".into());
    org
}

impl Run {
    /// Events up to and including the source's `Ready`.
    async fn until_ready(&mut self) -> Vec<SourceEvent> {
        self.until(|e| matches!(e, SourceEvent::Ready { source } if source == SOURCE_NAME))
            .await
    }

    async fn until(&mut self, done: impl Fn(&SourceEvent) -> bool) -> Vec<SourceEvent> {
        let mut seen = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(120), self.events.recv())
                .await
                .expect("an event in time")
                .expect("the source runs");
            let last = done(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
    }

    fn changes(&mut self) -> Vec<SourceChange> {
        let mut out = Vec::new();
        while let Ok(change) = self.changes.try_recv() {
            out.push(change);
        }
        out
    }
}

fn health_of<'a>(events: &'a [SourceEvent], name: &str) -> Option<&'a SourceHealth> {
    events.iter().rev().find_map(|e| match e {
        SourceEvent::Health(h) if h.name == name => Some(h),
        _ => None,
    })
}

fn started_names(changes: &[SourceChange]) -> Vec<String> {
    changes
        .iter()
        .flat_map(|c| match c {
            SourceChange::Started(handles) => handles.iter().map(|h| h.name.clone()).collect(),
            SourceChange::Stopped(_) => Vec::new(),
        })
        .collect()
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_one_failing_source_and_the_rest_is_read() {
    let assumed = Assumed::default();
    let mut run = run(Scene {
        org: org(OrganizationRegions::Listed(vec![
            "us-east-1".into(),
            "eu-west-1".into(),
        ])),
        organizations: vec![list_accounts()],
        sts: assume_role(assumed.clone()),
        account: Vec::new(),
        retry_every: Duration::from_secs(60),
    });
    let events = run.until_ready().await;
    // The new sources are reported before Ready, each change with its marker.
    assert!(events.contains(&SourceEvent::SourcesChanged));
    assert_eq!(
        started_names(&run.changes()),
        ["eks:payments-prod/us-east-1", "eks:payments-prod/eu-west-1"]
    );
    assert_eq!(
        *run.starts.lock().expect("lock"),
        [(
            "payments-prod".to_string(),
            format!("arn:aws:iam::{GOOD}:role/fleetdeck"),
            vec!["us-east-1".to_string(), "eu-west-1".to_string()],
        )]
    );
    let failing = health_of(&events, &account_source_name("search-prod"))
        .expect("the refused account is a source of its own");
    assert_eq!(
        failing.last_error.as_deref(),
        Some(
            format!(
                "sts:AssumeRole: AccessDenied: User: arn:aws:sts::{MANAGEMENT}:assumed-role/OrgAdmin/fleetdeck-test \
                 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{DENIED}:role/fleetdeck"
            )
            .as_str()
        )
    );
    assert_eq!(failing.errors, 1);
    let org = health_of(&events, SOURCE_NAME).expect("its own health");
    assert_eq!(
        org.accounts,
        Some(AccountCounts {
            discovered: 2,
            included: 2,
            failing: 1,
        }),
        "the suspended account is not counted"
    );
    assert_eq!(org.last_ok, Some(t0()));
    assert!(org.last_error.is_none(), "listing worked: {org:?}");
    // Both pages listed, two roles assumed, one refused.
    assert_eq!((org.calls, org.errors), (4, 1));
    // Every role asked for with the session name and the external id.
    let assumed = assumed.lock().expect("lock");
    assert!(
        assumed
            .iter()
            .all(|(_, session, external)| session == "fleetdeck-test"
                && external.as_deref() == Some("fleetdeck-7f3a")),
        "{assumed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_account_is_tried_again_and_read_once_its_role_is_fixed() {
    let fixed = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|req| {
            req.role_arn()
                .is_some_and(|arn| arn.contains(&format!("::{DENIED}:")))
        })
        .sequence()
        .http_response(|| access_denied(DENIED))
        .output(credentials)
        .repeatedly()
        .build();
    let good = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|req| {
            req.role_arn()
                .is_some_and(|arn| arn.contains(&format!("::{GOOD}:")))
        })
        .then_output(credentials);
    let mut run = run(Scene {
        org: org(OrganizationRegions::Listed(vec!["us-east-1".into()])),
        organizations: vec![list_accounts()],
        sts: vec![fixed, good],
        account: Vec::new(),
        retry_every: Duration::from_secs(60),
    });
    let events = run.until_ready().await;
    assert!(health_of(&events, "account:search-prod").is_some());
    assert_eq!(
        started_names(&run.changes()),
        ["eks:payments-prod/us-east-1"]
    );
    // A minute later the trust policy is fixed: the account is read, its failing
    // source goes.
    let events = run
        .until(|e| matches!(e, SourceEvent::Health(h) if h.name == SOURCE_NAME))
        .await;
    let changes = run.changes();
    assert_eq!(started_names(&changes), ["eks:search-prod/us-east-1"]);
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, SourceChange::Stopped(names)
            if names == &["account:search-prod".to_string()])),
        "{changes:?}"
    );
    let org = health_of(&events, SOURCE_NAME).expect("its own health");
    assert_eq!(org.accounts.map(|a| a.failing), Some(0));
}

#[tokio::test]
async fn enabled_regions_are_those_the_account_api_lists_as_enabled() {
    let regions = mock!(aws_sdk_account::Client::list_regions)
        .sequence()
        .output(|| {
            use aws_sdk_account::types::{Region, RegionOptStatus};
            let region = |name: &str, status| {
                Region::builder()
                    .region_name(name)
                    .region_opt_status(status)
                    .build()
            };
            ListRegionsOutput::builder()
                .regions(region("us-east-1", RegionOptStatus::EnabledByDefault))
                .regions(region("af-south-1", RegionOptStatus::Enabled))
                .regions(region("me-south-1", RegionOptStatus::Disabled))
                .next_token("more")
                .build()
        })
        .output(|| {
            use aws_sdk_account::types::{Region, RegionOptStatus};
            ListRegionsOutput::builder()
                .regions(
                    Region::builder()
                        .region_name("eu-west-1")
                        .region_opt_status(RegionOptStatus::EnabledByDefault)
                        .build(),
                )
                .build()
        })
        .build();
    let only_good = mock!(aws_sdk_organizations::Client::list_accounts).then_output(|| {
        ListAccountsOutput::builder()
            .accounts(account(GOOD, "payments-prod", AccountState::Active))
            .build()
    });
    let mut run = run(Scene {
        org: org(OrganizationRegions::Enabled),
        organizations: vec![only_good],
        sts: assume_role(Assumed::default()),
        account: vec![regions],
        retry_every: Duration::from_secs(60),
    });
    run.until_ready().await;
    let starts = run.starts.lock().expect("lock");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].2, ["af-south-1", "eu-west-1", "us-east-1"]);
}

/// A discovered account's credentials reach the Kubernetes source (native EKS access signs
/// its tokens with them), per region, and its sources are named as `[[accounts]]` ones.
#[tokio::test]
async fn the_sources_of_a_discovered_account_share_its_credentials_with_kubernetes() {
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
    let config = crate::config::Config::from_toml(
        "[organization]\nrole_name = \"fleetdeck\"\nregions = [\"us-east-1\"]\n",
        std::path::Path::new("config.toml"),
    )
    .expect("config");
    let credentials = crate::sources::aws::AccountCredentials::default();
    let start = super::pairs(&config, credentials.clone(), crate::clock::Clock::Wall);
    let member = super::Member {
        id: "222233334444".into(),
        name: "payments".into(),
        partition: "aws".into(),
    };
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("ASIAMEMBER", "secret", None, None, "role"),
        ))
        .build();
    let (events, _rx) = mpsc::channel(16);
    let regions = ["us-east-1".to_string(), "eu-west-1".to_string()];
    assert!(credentials.get("payments", "us-east-1").is_none());
    let handles = start(&Start {
        member: &member,
        role_arn: "arn:aws:iam::222233334444:role/fleetdeck",
        regions: &regions,
        sdk: &sdk,
        events: &events,
    });
    let mut names: Vec<&str> = handles.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cloudwatch:payments/eu-west-1",
            "cloudwatch:payments/us-east-1",
            "eks:payments/eu-west-1",
            "eks:payments/us-east-1",
        ]
    );
    for region in regions {
        let got = credentials
            .get("payments", &region)
            .unwrap_or_else(|| panic!("no credentials for payments/{region}"))
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(got.access_key_id(), "ASIAMEMBER");
    }
}
