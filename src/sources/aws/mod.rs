//! What the AWS sources share: one SDK config per account and region, the per-region
//! request budget, and calls with retries, backoff with jitter, and honest counters.

mod budget;
mod call;
mod credentials;
pub mod profiles;
pub mod regions;

pub use budget::RequestBudget;
pub use call::{CallError, CallKind, CallStats, call};
pub use credentials::AccountCredentials;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::config::{Account, ServiceEndpoints};

/// Per-attempt limits: a hung endpoint costs at most this long before it is retried.
const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The SDK config for one account in one region, through the standard credential chain
/// (environment, profiles, SSO, instance metadata), then the account's `role_arn` if set.
/// The SDK's own retries are off: `call` retries, so every attempt is budgeted and counted.
pub async fn sdk_config(account: &Account, region: &str) -> SdkConfig {
    if !regions::is_known(region) {
        // The config's warning went to stderr before the console drew over it.
        tracing::warn!(
            "account {}: region '{region}' is not one this build of the AWS SDK knows",
            account.name
        );
    }
    load(account, region, loader(account, region)).await
}

/// Loads `loader` (from [`loader`], perhaps given test credentials), then adds what only
/// fleetdeck's config says: the account's per-service endpoints and its `role_arn`.
pub async fn load(account: &Account, region: &str, loader: aws_config::ConfigLoader) -> SdkConfig {
    let base = with_service_endpoints(loader.load().await, account);
    let base = with_profile_named(base, account);
    let region = Region::new(region.to_string());
    let Some(role) = &account.role_arn else {
        return base;
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(session_name())
        .region(region)
        .configure(&base)
        .build()
        .await;
    base.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The session name of every role fleetdeck assumes: `fleetdeck-` and the OS user, so
/// CloudTrail in the member account says who was reading (`fleetdeck-alice`).
pub fn session_name() -> String {
    let user = whoami::username()
        .ok()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    session_name_for(&user)
}

/// `fleetdeck-{user}` in what STS allows in `RoleSessionName`: 2 to 64 of
/// `[A-Za-z0-9+=,.@_-]`; anything else becomes `-`.
pub fn session_name_for(user: &str) -> String {
    let user: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = if user.is_empty() {
        "fleetdeck".to_string()
    } else {
        format!("fleetdeck-{user}")
    };
    name.truncate(64);
    name
}

/// The loader of [`sdk_config`] before its credentials: region, profile, endpoint,
/// fleetdeck's timeouts and no SDK retries. Public so that tests build their SDK config as
/// the app does, with credentials of their own.
pub fn loader(account: &Account, region: &str) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        );
    if let Some(profile) = &account.profile {
        loader = loader.profile_name(profile);
    }
    // Set here, it would beat every per-service endpoint (the SDK's clients skip their
    // service's lookup when the endpoint was set in code): with per-service endpoints,
    // `endpoint_url` is answered by that lookup instead (`with_service_endpoints`).
    if let Some(url) = &account.endpoint_url
        && account.endpoints.is_empty()
    {
        loader = loader.endpoint_url(url);
    }
    loader
}

/// `sdk` with the account's endpoints answering first when a client asks for its
/// service's endpoint: the service's own, else the account's `endpoint_url`; every other
/// question (and every service left out) goes to what the SDK loaded from the environment
/// and profile (`AWS_ENDPOINT_URL_EKS`...). Every client built from the config asks, so
/// EKS, CloudWatch and the STS of `role_arn` each go where the account says.
fn with_service_endpoints(sdk: SdkConfig, account: &Account) -> SdkConfig {
    if account.endpoints.is_empty() {
        return sdk;
    }
    let lookup = AccountEndpoints {
        endpoints: account.endpoints.clone(),
        all_services: account.endpoint_url.clone(),
        loaded: sdk.clone(),
    };
    sdk.into_builder().service_config(lookup).build()
}

/// `sdk` whose credential errors name the account's `profile`: the chain's own last words
/// ("IMDS is disabled") do not.
fn with_profile_named(sdk: SdkConfig, account: &Account) -> SdkConfig {
    let (Some(profile), Some(inner)) = (&account.profile, sdk.credentials_provider()) else {
        return sdk;
    };
    let named = ProfileCredentials {
        profile: profile.clone(),
        inner,
    };
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(named))
        .build()
}

/// A credentials provider whose errors say which profile failed.
#[derive(Debug)]
struct ProfileCredentials {
    profile: String,
    inner: SharedCredentialsProvider,
}

impl ProvideCredentials for ProfileCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.inner.provide_credentials().await.map_err(|source| {
                CredentialsError::provider_error(FromProfile {
                    profile: self.profile.clone(),
                    source,
                })
            })
        })
    }
}

/// A credentials error, with the profile it came from.
#[derive(Debug)]
struct FromProfile {
    profile: String,
    source: CredentialsError,
}

impl std::fmt::Display for FromProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AWS profile '{}'", self.profile)
    }
}

impl std::error::Error for FromProfile {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The SDK's per-service config lookup, with an account's endpoints in front.
#[derive(Debug)]
struct AccountEndpoints {
    endpoints: ServiceEndpoints,
    /// The account's `endpoint_url`, for the services without one of their own.
    all_services: Option<String>,
    /// The config as loaded, whose own lookup answers everything else.
    loaded: SdkConfig,
}

/// What the SDK's clients ask for when they look up their endpoint.
const ENDPOINT_PROFILE_KEY: &str = "endpoint_url";

impl LoadServiceConfig for AccountEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.profile() == ENDPOINT_PROFILE_KEY
            && let Some(url) = self
                .endpoints
                .for_service_id(key.service_id())
                .or(self.all_services.as_deref())
        {
            return Some(url.to_string());
        }
        self.loaded.service_config()?.load_config(key)
    }
}

/// Everything an AWS source for one account and region needs.
#[derive(Clone, Debug)]
pub struct AwsScope {
    pub account: Account,
    pub region: String,
    pub sdk: SdkConfig,
    /// Shared by every source calling this account and region.
    pub budget: std::sync::Arc<RequestBudget>,
    /// Which clusters to show and which tag names their environment.
    pub clusters: crate::config::Clusters,
    pub clock: crate::clock::Clock,
}

impl AwsScope {
    /// `account/region`, as used in source names (`eks:prod/us-east-1`).
    pub fn label(&self) -> String {
        format!("{}/{}", self.account.name, self.region)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback endpoint that records the first line and body of every request and
    /// answers each with a 500 (the caller's error is not the point).
    struct Recorder {
        url: String,
        requests: tokio::sync::mpsc::UnboundedReceiver<String>,
    }

    async fn recorder() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut len = 0;
                    // Enough of the request to see its line and a small body.
                    while let Ok(n) = tokio::time::timeout(
                        std::time::Duration::from_millis(300),
                        stream.read(&mut buf[len..]),
                    )
                    .await
                    .unwrap_or(Ok(0))
                    {
                        if n == 0 {
                            break;
                        }
                        len += n;
                    }
                    let _ = tx.send(String::from_utf8_lossy(&buf[..len]).to_string());
                    let _ = stream
                        .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        Recorder { url, requests }
    }

    impl Recorder {
        fn seen(&mut self) -> Vec<String> {
            let mut out = Vec::new();
            while let Ok(r) = self.requests.try_recv() {
                out.push(r);
            }
            out
        }
    }

    fn account() -> Account {
        Account {
            name: "prod".into(),
            profile: None,
            regions: vec!["us-east-1".into()],
            role_arn: None,
            endpoint_url: None,
            endpoints: ServiceEndpoints::default(),
        }
    }

    async fn config_of(account: &Account) -> SdkConfig {
        let credentials = Credentials::new("test", "test", None, None, "test");
        load(
            account,
            "us-east-1",
            loader(account, "us-east-1").credentials_provider(credentials),
        )
        .await
    }

    #[test]
    fn session_names_carry_the_user_in_what_sts_allows() {
        assert_eq!(session_name_for("alice"), "fleetdeck-alice");
        assert_eq!(
            session_name_for("CORP\\Bob Smith"),
            "fleetdeck-CORP-Bob-Smith"
        );
        assert_eq!(session_name_for("josé"), "fleetdeck-jos-");
        assert_eq!(session_name_for(""), "fleetdeck");
        let long = session_name_for(&"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("fleetdeck-xxx"));
    }

    #[tokio::test]
    async fn eks_and_cloudwatch_of_one_account_go_to_their_own_endpoints() {
        let (mut eks, mut cloudwatch, mut global) =
            (recorder().await, recorder().await, recorder().await);
        let mut account = account();
        account.endpoint_url = Some(global.url.clone());
        account.endpoints.eks = Some(eks.url.clone());
        account.endpoints.cloudwatch = Some(cloudwatch.url.clone());
        let sdk = config_of(&account).await;
        let _ = aws_sdk_eks::Client::new(&sdk).list_clusters().send().await;
        let _ = aws_sdk_cloudwatch::Client::new(&sdk)
            .describe_alarms()
            .send()
            .await;
        let eks_seen = eks.seen();
        let cloudwatch_seen = cloudwatch.seen();
        assert!(
            eks_seen.iter().any(|r| r.starts_with("GET /clusters")),
            "{eks_seen:?}"
        );
        assert!(
            cloudwatch_seen
                .iter()
                .any(|r| r.contains("/operation/DescribeAlarms")),
            "{cloudwatch_seen:?}"
        );
        assert_eq!(eks_seen.len(), 1);
        assert_eq!(cloudwatch_seen.len(), 1);
        assert_eq!(global.seen(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_service_without_its_own_endpoint_takes_the_accounts_endpoint_url() {
        let (mut eks, mut global) = (recorder().await, recorder().await);
        let mut account = account();
        account.endpoint_url = Some(global.url.clone());
        account.endpoints.eks = Some(eks.url.clone());
        let sdk = config_of(&account).await;
        let _ = aws_sdk_cloudwatch::Client::new(&sdk)
            .describe_alarms()
            .send()
            .await;
        let global_seen = global.seen();
        assert!(
            global_seen
                .iter()
                .any(|r| r.contains("/operation/DescribeAlarms")),
            "{global_seen:?}"
        );
        assert_eq!(eks.seen(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_role_is_assumed_at_the_sts_endpoint() {
        let (mut sts, mut eks) = (recorder().await, recorder().await);
        let mut account = account();
        account.role_arn = Some("arn:aws:iam::123456789012:role/fleetdeck".into());
        account.endpoints.sts = Some(sts.url.clone());
        account.endpoints.eks = Some(eks.url.clone());
        let sdk = config_of(&account).await;
        // The call needs the role's credentials first: AssumeRole, which fails here.
        let result = aws_sdk_eks::Client::new(&sdk).list_clusters().send().await;
        assert!(result.is_err());
        let sts_seen = sts.seen();
        assert!(
            sts_seen
                .iter()
                .any(|r| r.contains("Action=AssumeRole") && r.contains("role%2Ffleetdeck")),
            "{sts_seen:?}"
        );
        assert_eq!(eks.seen(), Vec::<String>::new(), "no credentials, no call");
    }

    /// The chain's last link failing, as it does when nothing provides credentials.
    #[derive(Debug)]
    struct NoCredentials;

    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "failed to load IMDS session token: IMDS is disabled",
            )))
        }
    }

    #[tokio::test]
    async fn a_credentials_failure_names_the_profile() {
        let mut eks = recorder().await;
        let mut account = account();
        account.profile = Some("prod-ro".into());
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(eks.url.clone())
            .credentials_provider(SharedCredentialsProvider::new(NoCredentials))
            .build();
        let client = aws_sdk_eks::Client::new(&with_profile_named(sdk, &account));
        let mut stats = CallStats::default();
        let err = call(
            &RequestBudget::default(),
            &mut stats,
            "eks:ListClusters",
            || client.list_clusters().send(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, CallKind::Auth);
        assert!(
            err.to_string()
                .starts_with("eks:ListClusters: no AWS credentials: ")
                && err.to_string().contains(
                    "AWS profile 'prod-ro': the credential provider was not enabled: \
                     failed to load IMDS session token: IMDS is disabled"
                ),
            "{err}"
        );
        assert_eq!(eks.seen(), Vec::<String>::new(), "nothing sent unsigned");
    }
}
