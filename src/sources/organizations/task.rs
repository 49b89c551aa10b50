//! The discovery task: lists the organization, starts and stops the member accounts'
//! sources, retries the accounts whose role could not be assumed, and reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_organizations::types::{AccountState, AccountStatus};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::listing::{self, Listed, Member, partition_of_arn};
use super::role::MemberRole;
use super::{SOURCE_NAME, Started, account_source_name};
use crate::clock::Clock;
use crate::config::{Account, Organization, OrganizationRegions};
use crate::model::{AccountCounts, SourceEvent, SourceHealth, Timestamp};
use crate::sources::aws::{CallError, CallStats, RequestBudget, call};
use crate::sources::{CHANGE_CHANNEL_CAPACITY, SourceChange, SourceCommand, SourceHandle};

/// Commands are rare (a new target list); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;
/// One account's events wait here on their way to the app.
const ACCOUNT_EVENT_CAPACITY: usize = 256;
/// Member accounts checked (AssumeRole, regions) at once.
const CHECKS_AT_ONCE: usize = 8;

/// Builds the Account API client of a member account from its SDK config.
pub(super) type AccountApi = Arc<dyn Fn(&SdkConfig) -> aws_sdk_account::Client + Send + Sync>;
/// Starts the sources of a member account (the EKS and CloudWatch pairs).
pub(super) type StartAccount = Arc<dyn Fn(&Start<'_>) -> Vec<SourceHandle> + Send + Sync>;

/// What starting a member account's sources needs.
pub(super) struct Start<'a> {
    pub member: &'a Member,
    pub role_arn: &'a str,
    pub regions: &'a [String],
    /// The management config with the member role's credentials.
    pub sdk: &'a SdkConfig,
    /// The account's own events channel: closing it stops its sources.
    pub events: &'a mpsc::Sender<SourceEvent>,
}

/// Everything the task works with; tests hand in mocked clients and a fake `start`.
pub(super) struct Parts {
    pub org: Organization,
    pub explicit: Vec<Account>,
    pub base: SdkConfig,
    pub organizations: aws_sdk_organizations::Client,
    pub sts: aws_sdk_sts::Client,
    pub account_api: AccountApi,
    pub start: StartAccount,
    pub list_every: Duration,
    pub retry_every: Duration,
    pub session_name: String,
    pub clock: Clock,
}

pub(super) fn spawn(parts: Parts, events: mpsc::Sender<SourceEvent>) -> Started {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let (changes_tx, changes) = mpsc::channel(CHANGE_CHANNEL_CAPACITY);
    let discovery = Discovery {
        parts,
        events,
        changes: changes_tx,
        reading: BTreeMap::new(),
        failing: BTreeMap::new(),
        budget: RequestBudget::default(),
        stats: CallStats::default(),
        last_ok: None,
        last_error: None,
        counts: AccountCounts::default(),
    };
    tokio::spawn(discovery.run(inbox));
    Started {
        handle: SourceHandle {
            name: SOURCE_NAME.into(),
            commands,
        },
        changes,
    }
}

/// A member account being read. Dropping it stops its sources.
struct Reading {
    member: Member,
    sources: Vec<String>,
    forwarder: JoinHandle<()>,
}

impl Drop for Reading {
    fn drop(&mut self) {
        // The account's events channel closes with its forwarder: its sources stop.
        self.forwarder.abort();
    }
}

/// A member account whose role could not be assumed (or whose regions not be listed).
struct Failing {
    member: Member,
    error: CallError,
    at: Timestamp,
    stats: CallStats,
}

/// Why the task stopped: nobody listens any more.
struct Closed;

struct Discovery {
    parts: Parts,
    events: mpsc::Sender<SourceEvent>,
    changes: mpsc::Sender<SourceChange>,
    /// By account id.
    reading: BTreeMap<String, Reading>,
    failing: BTreeMap<String, Failing>,
    budget: RequestBudget,
    /// The organization's own calls and the checks of member accounts.
    stats: CallStats,
    last_ok: Option<Timestamp>,
    last_error: Option<(String, Timestamp)>,
    counts: AccountCounts,
}

impl Discovery {
    async fn run(mut self, mut inbox: mpsc::Receiver<SourceCommand>) {
        let mut listing = tokio::time::interval(self.parts.list_every);
        listing.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(self.parts.retry_every);
        retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first listing checks every account: no retry right after it.
        retry.reset();
        let closed = self.events.clone();
        let mut inbox_open = true;
        let mut ready = false;
        loop {
            let step = tokio::select! {
                biased;
                () = closed.closed() => return,
                command = inbox.recv(), if inbox_open => match command {
                    // The accounts are this source's own; the fleet adds nothing.
                    Some(SourceCommand::Targets { seq, .. }) => {
                        self.send(SourceEvent::Targeted { source: SOURCE_NAME.into(), seq }).await
                    }
                    Some(command) => {
                        crate::sources::refuse_wave(command, "the organizations source");
                        Ok(())
                    }
                    None => {
                        inbox_open = false;
                        Ok(())
                    }
                },
                _ = listing.tick() => {
                    let listed = self.list().await;
                    // Ready after the first attempt, worked or not: the accounts then
                    // found are reported before it, so the picture waits for them.
                    if listed.is_ok() && !ready {
                        ready = true;
                        self.send(SourceEvent::Ready { source: SOURCE_NAME.into() }).await
                    } else {
                        listed
                    }
                }
                _ = retry.tick(), if !self.failing.is_empty() => self.retry().await,
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn send(&self, event: SourceEvent) -> Result<(), Closed> {
        self.events.send(event).await.map_err(|_| Closed)
    }

    /// Lists the organization and reads the accounts it now has.
    async fn list(&mut self) -> Result<(), Closed> {
        match self.list_accounts().await {
            Ok(listed) => {
                self.last_ok = Some(self.parts.clock.now());
                let plan = listing::plan(&self.parts.org, &self.parts.explicit, &listed);
                self.counts.discovered = plan.discovered;
                self.reconcile(plan.members).await?;
            }
            Err(e) => {
                // The accounts read so far stay: a failed listing says nothing of them.
                tracing::warn!("{e}");
                self.last_error = Some((e.to_string(), self.parts.clock.now()));
            }
        }
        self.send(self.health()).await
    }

    /// Every page of `ListAccounts`, ACTIVE accounts only.
    async fn list_accounts(&mut self) -> Result<Vec<Listed>, CallError> {
        let client = &self.parts.organizations;
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = call(
                &self.budget,
                &mut self.stats,
                "organizations:ListAccounts",
                || client.list_accounts().set_next_token(token.clone()).send(),
            )
            .await?;
            for account in page.accounts() {
                // `State` replaces the deprecated `Status`; older answers have only it.
                let active = match account.state() {
                    Some(state) => *state == AccountState::Active,
                    #[allow(deprecated)]
                    None => account.status() == Some(&AccountStatus::Active),
                };
                let (Some(id), true) = (account.id(), active) else {
                    continue;
                };
                listed.push(Listed {
                    id: id.to_string(),
                    name: account.name().unwrap_or_default().to_string(),
                    partition: partition_of_arn(account.arn()),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(listed);
            }
        }
    }

    /// Stops the accounts no longer wanted (or renamed), starts the new ones.
    async fn reconcile(&mut self, wanted: BTreeMap<String, Member>) -> Result<(), Closed> {
        let mut stopped = Vec::new();
        let gone: Vec<String> = self
            .reading
            .iter()
            .filter(|(id, r)| wanted.get(*id) != Some(&r.member))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(reading) = self.reading.remove(&id) {
                tracing::info!(account = %reading.member.name, "no longer read");
                stopped.extend(reading.sources.iter().cloned());
            }
        }
        let gone: Vec<String> = self
            .failing
            .iter()
            .filter(|(id, f)| wanted.get(*id) != Some(&f.member))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(failing) = self.failing.remove(&id) {
                stopped.push(account_source_name(&failing.member.name));
            }
        }
        self.counts.included = wanted.len();
        let new: Vec<Member> = wanted
            .into_values()
            .filter(|m| !self.reading.contains_key(&m.id) && !self.failing.contains_key(&m.id))
            .collect();
        self.start(new, stopped).await
    }

    /// Tries the failing accounts again.
    async fn retry(&mut self) -> Result<(), Closed> {
        let members: Vec<Member> = self.failing.values().map(|f| f.member.clone()).collect();
        self.start(members, Vec::new()).await?;
        self.send(self.health()).await
    }

    /// Checks `members` (their role, their regions), starts the sources of those that
    /// pass, and reports the change with `stopped`; the others are failing sources.
    async fn start(
        &mut self,
        members: Vec<Member>,
        mut stopped: Vec<String>,
    ) -> Result<(), Closed> {
        let this = &*self;
        let checked: Vec<(Member, Result<Checked, CallError>, CallStats)> =
            futures::stream::iter(members)
                .map(|member| async move {
                    let mut stats = CallStats::default();
                    let result = this.check(&member, &mut stats).await;
                    (member, result, stats)
                })
                .buffer_unordered(CHECKS_AT_ONCE)
                .collect()
                .await;
        let mut started = Vec::new();
        let mut failing = Vec::new();
        for (member, result, stats) in checked {
            self.stats.calls += stats.calls;
            self.stats.throttles += stats.throttles;
            self.stats.errors += stats.errors;
            match result {
                Ok(checked) => {
                    if self.failing.remove(&member.id).is_some() {
                        stopped.push(account_source_name(&member.name));
                    }
                    let reading = self.read(member, &checked);
                    started.extend(reading.1);
                    let id = reading.0.member.id.clone();
                    self.reading.insert(id, reading.0);
                }
                Err(error) => {
                    tracing::warn!(account = %member.name, "{error}");
                    let entry = self.failing.entry(member.id.clone()).or_insert(Failing {
                        member,
                        error: error.clone(),
                        at: self.parts.clock.now(),
                        stats: CallStats::default(),
                    });
                    entry.error = error;
                    entry.at = self.parts.clock.now();
                    entry.stats.calls += stats.calls.max(1);
                    entry.stats.throttles += stats.throttles;
                    entry.stats.errors += 1;
                    failing.push(entry.member.id.clone());
                }
            }
        }
        self.counts.failing = self.failing.len();
        if !stopped.is_empty() {
            self.change(SourceChange::Stopped(stopped)).await?;
        }
        if !started.is_empty() {
            self.change(SourceChange::Started(started)).await?;
        }
        for id in failing {
            if let Some(f) = self.failing.get(&id) {
                let mut health = SourceHealth::new(
                    account_source_name(&f.member.name),
                    self.parts.retry_every.as_secs(),
                );
                health.last_error = Some(f.error.to_string());
                health.last_error_at = Some(f.at);
                health.calls = f.stats.calls;
                health.errors = f.stats.errors;
                health.throttles = f.stats.throttles;
                self.send(SourceEvent::Health(health)).await?;
            }
        }
        Ok(())
    }

    /// Tells the engine, in order with the events.
    async fn change(&self, change: SourceChange) -> Result<(), Closed> {
        self.changes.send(change).await.map_err(|_| Closed)?;
        self.send(SourceEvent::SourcesChanged).await
    }

    /// Assumes the member's role and finds its regions.
    async fn check(&self, member: &Member, stats: &mut CallStats) -> Result<Checked, CallError> {
        let parts = &self.parts;
        let role = MemberRole::new(
            parts.sts.clone(),
            parts.org.role_arn(&member.partition, &member.id),
            parts.session_name.clone(),
            parts.org.external_id.clone(),
        );
        role.assume(stats).await?;
        let role_arn = role.arn().to_string();
        let sdk = parts
            .base
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(role))
            .build();
        let regions = match &parts.org.regions {
            OrganizationRegions::Listed(regions) => regions.clone(),
            OrganizationRegions::Enabled => {
                let client = (parts.account_api)(&sdk);
                enabled_regions(&client, &self.budget, stats).await?
            }
        };
        Ok(Checked {
            sdk,
            role_arn,
            regions,
        })
    }

    /// Starts a checked member's sources on an events channel of its own.
    fn read(&self, member: Member, checked: &Checked) -> (Reading, Vec<SourceHandle>) {
        let (tx, mut rx) = mpsc::channel(ACCOUNT_EVENT_CAPACITY);
        let out = self.events.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if out.send(event).await.is_err() {
                    return;
                }
            }
        });
        let handles = (self.parts.start)(&Start {
            member: &member,
            role_arn: &checked.role_arn,
            regions: &checked.regions,
            sdk: &checked.sdk,
            events: &tx,
        });
        tracing::info!(
            account = %member.name,
            regions = ?checked.regions,
            "reading member account {}", member.id
        );
        let reading = Reading {
            member,
            sources: handles.iter().map(|h| h.name.clone()).collect(),
            forwarder,
        };
        (reading, handles)
    }

    fn health(&self) -> SourceEvent {
        let mut health = SourceHealth::new(SOURCE_NAME, self.parts.list_every.as_secs());
        health.last_ok = self.last_ok;
        if let Some((error, at)) = &self.last_error {
            health.last_error = Some(error.clone());
            health.last_error_at = Some(*at);
        }
        health.calls = self.stats.calls;
        health.errors = self.stats.errors;
        health.throttles = self.stats.throttles;
        health.accounts = Some(self.counts);
        SourceEvent::Health(health)
    }
}

/// A member account ready to read.
struct Checked {
    sdk: SdkConfig,
    role_arn: String,
    regions: Vec<String>,
}

/// The regions enabled in the account of `client`'s credentials, every page.
async fn enabled_regions(
    client: &aws_sdk_account::Client,
    budget: &RequestBudget,
    stats: &mut CallStats,
) -> Result<Vec<String>, CallError> {
    let enabled = [RegionOptStatus::Enabled, RegionOptStatus::EnabledByDefault];
    let mut regions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = call(budget, stats, "account:ListRegions", || {
            client
                .list_regions()
                .set_region_opt_status_contains(Some(enabled.to_vec()))
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        regions.extend(
            page.regions()
                .iter()
                .filter(|r| r.region_opt_status().is_some_and(|s| enabled.contains(s)))
                .filter_map(|r| r.region_name().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    regions.sort();
    regions.dedup();
    Ok(regions)
}
