//! What the AWS sources share: one SDK config per account and region, the per-region
//! request budget, and calls with retries, backoff with jitter, and honest counters.

mod budget;
mod call;

pub use budget::RequestBudget;
pub use call::{CallError, CallKind, CallStats, call};

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Account;

/// Per-attempt limits: a hung endpoint costs at most this long before it is retried.
const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The SDK config for one account in one region, through the standard credential chain
/// (environment, profiles, SSO, instance metadata), then the account's `role_arn` if set.
/// The SDK's own retries are off: `call` retries, so every attempt is budgeted and counted.
pub async fn sdk_config(account: &Account, region: &str) -> SdkConfig {
    let base = loader(account, region).load().await;
    let region = Region::new(region.to_string());
    let Some(role) = &account.role_arn else {
        return base;
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("fleetdeck")
        .region(region)
        .configure(&base)
        .build()
        .await;
    base.into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The loader of [`sdk_config`] before its credentials: region, profile, endpoint,
/// fleetdeck's timeouts and no SDK retries. (Tests hand it credentials of their own.)
pub(crate) fn loader(account: &Account, region: &str) -> aws_config::ConfigLoader {
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
    if let Some(url) = &account.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
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
