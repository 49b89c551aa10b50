//! Account discovery: the member accounts of an AWS Organization (`[organization]`),
//! read like `[[accounts]]` entries without typing them in.
//!
//! ## What it does
//!
//! - **Listing**, at start and every `list_interval_secs` (15 minutes by default): `organizations:ListAccounts` (every
//!   page) with the management or delegated-admin account's credentials; ACTIVE accounts
//!   only. `include` / `exclude` globs on the account name or id choose the accounts
//!   read; an `[[accounts]]` entry for the same account wins (see [`listing::plan`]).
//! - **Each new account**: `sts:AssumeRole` of `arn:{partition}:iam::{id}:role/{role_name}`
//!   (session `fleetdeck-{os user}`, the `external_id` if set), then its regions: the
//!   configured list, or `account:ListRegions` (ENABLED and ENABLED_BY_DEFAULT) for
//!   `regions = "enabled"`. Then an EKS and a CloudWatch source per region, named
//!   `eks:{account name}/{region}` and `cloudwatch:{account name}/{region}`, exactly as
//!   for an `[[accounts]]` entry, with the role's credentials (refreshed before they
//!   expire by the SDK's identity cache).
//! - **An account that left** (closed, moved out, or no longer included): its sources
//!   stop, and its clusters and alerts leave the screen.
//! - **A role that cannot be assumed**: that account is one failing source,
//!   `account:{name}`, with AWS's reason (`sts:AssumeRole: AccessDenied: User: ... is
//!   not authorized to perform: sts:AssumeRole on resource: ...`); it is tried again
//!   every minute and every other account is read meanwhile.
//!
//! Sources started and stopped are reported to the engine as `SourceChange`s (each
//! followed by `SourceEvent::SourcesChanged`). The source reports `Ready` after its first
//! listing, once the sources of the accounts then found are reported, so the first
//! complete picture waits for them; its `Health` (`organizations`) counts its own calls
//! and says how many accounts were discovered, included and failing.
//!
//! Each account's sources send their events through a channel of their own: closing it
//! is what stops them (every source stops when its events channel closes).

mod listing;
mod role;
mod task;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use tokio::sync::mpsc;

pub use listing::{Listed, Member, Plan, plan};
pub use role::MemberRole;

use crate::clock::Clock;
use crate::config::{Account, Config, Organization, OrganizationRegions};
use crate::model::SourceEvent;
use crate::sources::aws::{self, AccountCredentials, AwsScope, RequestBudget};
use crate::sources::{SourceChange, SourceHandle, cloudwatch, eks, securityhub};

/// The name this source reports `Health` and `Ready` under.
pub const SOURCE_NAME: &str = "organizations";
/// How often an account whose role could not be assumed is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(60);

/// The failing source of a member account whose role could not be assumed.
pub fn account_source_name(account: &str) -> String {
    format!("account:{account}")
}

/// The discovery source, and the channel of the sources it starts and stops.
pub struct Started {
    pub handle: SourceHandle,
    pub changes: mpsc::Receiver<SourceChange>,
}

/// Starts account discovery for `config`'s `[organization]` (and `[[accounts]]`, which
/// win over discovered accounts), listing every `list_interval_secs` (15 minutes unless
/// told otherwise). The credentials of each account it reads are added to
/// `credentials`, for the Kubernetes source's native EKS access.
pub async fn spawn(
    config: &Config,
    org: &Organization,
    credentials: AccountCredentials,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> Started {
    let base = management_sdk(org).await;
    let parts = task::Parts {
        org: org.clone(),
        explicit: config.accounts.clone(),
        organizations: aws_sdk_organizations::Client::new(&base),
        sts: aws_sdk_sts::Client::new(&base),
        account_api: Arc::new(aws_sdk_account::Client::new),
        start: Arc::new(pairs(config, credentials, clock.clone())),
        base,
        list_every: Duration::from_secs(org.list_interval_secs),
        retry_every: RETRY_EVERY,
        session_name: aws::session_name(),
        clock,
    };
    task::spawn(parts, events)
}

/// The management account's SDK config: its profile (or the default chain), in the first
/// configured region, else the region of the environment or profile, else us-east-1
/// (Organizations answers there for the commercial partition anyway).
async fn management_sdk(org: &Organization) -> SdkConfig {
    let region = match &org.regions {
        OrganizationRegions::Listed(regions) if !regions.is_empty() => regions[0].clone(),
        _ => {
            let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
            if let Some(profile) = &org.profile {
                chain = chain.profile_name(profile);
            }
            chain
                .build()
                .region()
                .await
                .map_or_else(|| "us-east-1".to_string(), |r| r.to_string())
        }
    };
    let management = Account {
        name: "organization".into(),
        profile: org.profile.clone(),
        regions: vec![region.clone()],
        role_arn: None,
        endpoint_url: None,
        endpoints: Default::default(),
    };
    aws::sdk_config(&management, &region).await
}

/// Starts one member account's sources: an EKS and a CloudWatch source per region,
/// sharing a request budget, and with `[securityhub]` a Security Hub source per region
/// (or in the aggregation region only), as `start_real` does for `[[accounts]]`; its
/// credentials recorded for the Kubernetes source.
fn pairs(
    config: &Config,
    credentials: AccountCredentials,
    clock: Clock,
) -> impl Fn(&task::Start<'_>) -> Vec<SourceHandle> + Send + Sync + use<> {
    let clusters = config.clusters.clone();
    let settings = config.cloudwatch.clone();
    let securityhub = config.securityhub.clone();
    let ceiling = config.aws.max_requests_per_second;
    move |start| {
        let mut handles = Vec::new();
        let aggregation = securityhub
            .as_ref()
            .and_then(|s| s.aggregation_region.clone());
        // The aggregation region holds every region's findings, even one the account's
        // clusters are not read in.
        let extra = aggregation
            .as_ref()
            .filter(|r| !start.regions.contains(r))
            .cloned();
        for region in start.regions.iter().chain(extra.iter()) {
            let reads_clusters = start.regions.contains(region);
            let account = Account {
                name: start.member.name.clone(),
                profile: None,
                regions: start.regions.to_vec(),
                role_arn: Some(start.role_arn.to_string()),
                endpoint_url: None,
                endpoints: Default::default(),
            };
            let sdk = start
                .sdk
                .clone()
                .into_builder()
                .region(Region::new(region.clone()))
                .build();
            if reads_clusters {
                credentials.insert(&account.name, region, &sdk);
            }
            let scope = AwsScope {
                account,
                region: region.clone(),
                sdk,
                budget: Arc::new(RequestBudget::new(ceiling)),
                clusters: clusters.clone(),
                clock: clock.clone(),
            };
            if let Some(hub) = &securityhub
                && aggregation.as_ref().is_none_or(|r| r == region)
            {
                handles.push(securityhub::spawn(
                    scope.clone(),
                    hub.clone(),
                    start.events.clone(),
                ));
            }
            if !reads_clusters {
                continue;
            }
            let (inventory_tx, inventory_rx) = tokio::sync::watch::channel(Vec::new());
            handles.push(eks::spawn(
                scope.clone(),
                start.events.clone(),
                inventory_tx,
            ));
            handles.push(cloudwatch::spawn(
                scope,
                settings.clone(),
                start.events.clone(),
                inventory_rx,
            ));
        }
        handles
    }
}
