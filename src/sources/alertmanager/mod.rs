//! The Alertmanager source: every `[[alertmanagers]]` entry (Prometheus Alertmanager, or an
//! Amazon Managed Prometheus workspace's Alertmanager, SigV4-signed) polled by one task.
//!
//! - Every `poll_every` (30 s), each Alertmanager is asked, concurrently, for
//!   `GET /api/v2/alerts/groups` (`/api/v2/alerts` when it has no groups endpoint) and
//!   `GET /api/v2/silences`. Each reports its own health as `alertmanager:NAME`.
//! - The alerts of all of them are merged ([`merge`]): one row per real alert however many
//!   Alertmanagers hold it, silenced and inhibited ones carrying who silenced them and until
//!   when. An Alertmanager that fails keeps its last alerts (they go stale with its health);
//!   it never blanks the others.
//! - Acks are silences: `SilenceAlert` posts one with an exact matcher per label to the
//!   first Alertmanager holding the alert that answered its last poll (members of an HA
//!   pair share it by gossip); `ExpireSilences` deletes the silences wherever they are.
//!   Both re-read at once, so the console shows the change without waiting for a poll.

mod client;
pub(crate) mod merge;
pub mod sigv4;
#[cfg(test)]
mod tests;
/// Public only so the fuzz targets (`fuzz/`) and `tests/fuzz_parsers.rs` can reach it.
#[doc(hidden)]
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

pub use self::client::Client;
use self::merge::{ClusterIndex, Held};
use self::wire::{Matcher, PostSilence, WireAlert, WireSilence};
use crate::clock::Clock;
use crate::config::AlertmanagerConfig;
use crate::model::{Alert, AlertKey, SourceEvent, SourceHealth, Timestamp};
use crate::sources::{SourceCommand, SourceHandle, WriteResult, alert_diff};

/// The handle's name: the one task answering for every Alertmanager.
pub const SOURCE_NAME: &str = "alertmanager";
/// How often each Alertmanager is read; also the health report's poll interval.
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Commands are rare (a key press); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// The health report's name of one Alertmanager: `alertmanager:NAME`.
pub fn source_name(name: &str) -> String {
    format!("{SOURCE_NAME}:{name}")
}

/// One configured Alertmanager: its client and what it held at its last good read.
pub struct Member {
    name: String,
    cluster_label: String,
    client: Client,
    /// False once it answered 404 to `/alerts/groups` (an API without groups).
    groups: bool,
    alerts: Vec<WireAlert>,
    silences: HashMap<String, WireSilence>,
    health: SourceHealth,
    /// Its last read succeeded.
    answering: bool,
}

impl Member {
    /// A member reading through `client`, reporting health every `poll_every`.
    pub fn new(config: &AlertmanagerConfig, client: Client, poll_every: Duration) -> Self {
        Self {
            name: config.name.clone(),
            cluster_label: config.cluster_label.clone(),
            client,
            groups: true,
            alerts: Vec::new(),
            silences: HashMap::new(),
            health: SourceHealth::new(source_name(&config.name), poll_every.as_secs().max(1)),
            answering: false,
        }
    }

    /// Reads alerts and silences. On failure the last alerts are kept; the health says why.
    async fn poll(&mut self, now: Timestamp) -> SourceEvent {
        match self.read().await {
            Ok(warning) => {
                self.answering = true;
                self.health.last_ok = Some(now);
                // Shown, but the Alertmanager answered: it is not failing.
                if warning.is_some() {
                    self.health.last_error = warning;
                }
            }
            Err(e) => {
                self.answering = false;
                self.health.errors += 1;
                self.health.last_error = Some(e);
                self.health.last_error_at = Some(now);
            }
        }
        SourceEvent::Health(self.health.clone())
    }

    /// Alerts, then silences; both must answer for either to replace what was held.
    /// Returns a warning when some entries could not be read.
    async fn read(&mut self) -> Result<Option<String>, String> {
        let alerts = self.read_alerts().await?;
        let path = "/api/v2/silences";
        self.health.calls += 1;
        let body = self.client.get(path).await.map_err(|e| self.failed(e))?;
        let silences = wire::parse_silences(&body).map_err(|e| self.bad_body(path, e))?;
        let warning = alerts
            .warning("alerts")
            .or_else(|| silences.warning("silences"))
            .map(|w| format!("{}: {w}", self.name));
        let mut seen = std::collections::HashSet::new();
        self.alerts = alerts
            .items
            .into_iter()
            // An alert routed to several receivers is in several groups.
            .filter(|a| seen.insert(merge::key(a)))
            .collect();
        self.silences = silences
            .items
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        Ok(warning)
    }

    /// `/alerts/groups`, or `/alerts` from an API without groups (it answers 404).
    async fn read_alerts(&mut self) -> Result<wire::Read<WireAlert>, String> {
        if self.groups {
            let path = "/api/v2/alerts/groups";
            self.health.calls += 1;
            match self.client.get(path).await {
                Ok(body) => return wire::parse_groups(&body).map_err(|e| self.bad_body(path, e)),
                Err(e) if e.status == Some(404) => self.groups = false,
                Err(e) => return Err(self.failed(e)),
            }
        }
        let path = "/api/v2/alerts";
        self.health.calls += 1;
        let body = self.client.get(path).await.map_err(|e| self.failed(e))?;
        wire::parse_alerts(&body).map_err(|e| self.bad_body(path, e))
    }

    /// A failed request, counted as a throttle when the answer was 429 Too Many Requests.
    fn failed(&mut self, e: client::HttpError) -> String {
        if e.status == Some(429) {
            self.health.throttles += 1;
        }
        e.to_string()
    }

    fn bad_body(&self, path: &str, problem: String) -> String {
        format!("{}: GET {}: {problem}", self.name, self.client.url(path))
    }

    fn holds(&self, key: &AlertKey) -> bool {
        self.alerts.iter().any(|a| &merge::key(a) == key)
    }

    fn held(&self) -> Held<'_> {
        Held {
            name: &self.name,
            answering: self.answering,
            cluster_label: &self.cluster_label,
            alerts: &self.alerts,
            silences: &self.silences,
        }
    }
}

/// Every Alertmanager, and what was last sent to the store.
pub struct Alertmanagers {
    members: Vec<Member>,
    clusters: ClusterIndex,
    sent: BTreeMap<AlertKey, Alert>,
}

impl Alertmanagers {
    pub fn new(members: Vec<Member>) -> Self {
        Self {
            members,
            clusters: ClusterIndex::default(),
            sent: BTreeMap::new(),
        }
    }

    /// Reads every Alertmanager at once; returns their health and the alerts that changed.
    pub async fn poll_all(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let mut events =
            futures::future::join_all(self.members.iter_mut().map(|m| m.poll(now))).await;
        events.extend(self.settle(now));
        events
    }

    /// The merged picture compared with what was sent: new, changed and resolved alerts.
    fn settle(&mut self, now: Timestamp) -> Option<SourceEvent> {
        let held: Vec<Held> = self.members.iter().map(Member::held).collect();
        let current = merge::merge(&held, &self.clusters, now);
        let (send, firing) = alert_diff::settle(std::mem::take(&mut self.sent), current, now);
        self.sent = firing;
        (!send.is_empty()).then_some(SourceEvent::Alerts(send))
    }

    /// The fleet changed: map cluster labels again.
    pub fn retarget(
        &mut self,
        fleet: &[crate::sources::ClusterTarget],
        now: Timestamp,
    ) -> Vec<SourceEvent> {
        self.clusters = ClusterIndex::new(fleet);
        self.settle(now).into_iter().collect()
    }

    /// Silences `alert` for `minutes` with an exact matcher per label, in the first
    /// answering Alertmanager holding it (the next on failure). Returns the result and the
    /// Alertmanagers to re-read (after replying: the reply must not wait for the read).
    pub async fn silence(
        &mut self,
        alert: &AlertKey,
        matchers: &BTreeMap<String, String>,
        created_by: &str,
        comment: &str,
        minutes: u64,
        now: Timestamp,
    ) -> (WriteResult, Vec<usize>) {
        if matchers.is_empty() {
            return (
                Err("refused: a silence without matchers would silence everything".into()),
                Vec::new(),
            );
        }
        let body = PostSilence {
            matchers: matchers.iter().map(|(k, v)| Matcher::exact(k, v)).collect(),
            starts_at: now,
            ends_at: now + chrono::Duration::minutes(minutes.max(1) as i64),
            created_by: created_by.to_string(),
            comment: comment.to_string(),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => return (Err(format!("cannot encode the silence: {e}")), Vec::new()),
        };
        let mut order: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].holds(alert))
            .collect();
        if order.is_empty() {
            return (
                Err(format!(
                    "no Alertmanager holds {alert} any more (resolved?)"
                )),
                Vec::new(),
            );
        }
        // Those that answered their last read first.
        order.sort_by_key(|&i| !self.members[i].answering);
        let mut errors = Vec::new();
        for i in order {
            let member = &self.members[i];
            match member
                .client
                .post_json("/api/v2/silences", body.clone())
                .await
            {
                Ok(answer) => {
                    let id = wire::parse_silence_created(&answer)
                        .unwrap_or_else(|e| format!("(id unknown: {e})"));
                    let message = format!(
                        "silenced in {} for {} as {id}",
                        member.name,
                        crate::ui::widgets::format::duration(minutes as i64 * 60)
                    );
                    return (Ok(message), vec![i]);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (Err(errors.join("; ")), Vec::new())
    }

    /// Expires silences `ids` in every Alertmanager that has them (in all that hold the
    /// alert when none is known to have them). Returns the result and those to re-read.
    pub async fn expire(&mut self, alert: &AlertKey, ids: &[String]) -> (WriteResult, Vec<usize>) {
        if ids.is_empty() {
            return (
                Err("the alert has no silence to expire (an inhibited alert clears when the alert inhibiting it resolves)".into()),
                Vec::new(),
            );
        }
        let mut expired = Vec::new();
        let mut errors = Vec::new();
        let mut touched = Vec::new();
        for id in ids {
            let mut targets: Vec<usize> = (0..self.members.len())
                .filter(|&i| self.members[i].silences.contains_key(id))
                .collect();
            if targets.is_empty() {
                targets = (0..self.members.len())
                    .filter(|&i| self.members[i].holds(alert))
                    .collect();
            }
            for i in targets {
                let member = &self.members[i];
                match member.client.delete(&format!("/api/v2/silence/{id}")).await {
                    Ok(_) => expired.push(format!("{id} in {}", member.name)),
                    // Already gone (404; Alertmanager before 0.27 answers 500 "not found").
                    Err(e) if e.status == Some(404) || e.message.contains("not found") => {
                        expired.push(format!("{id} in {} (already gone)", member.name))
                    }
                    Err(e) => errors.push(e.to_string()),
                }
                if !touched.contains(&i) {
                    touched.push(i);
                }
            }
        }
        let result = if errors.is_empty() && !expired.is_empty() {
            Ok(format!("expired silence {}", expired.join(", ")))
        } else if errors.is_empty() {
            Err(format!(
                "no Alertmanager holds {alert} or its silences any more"
            ))
        } else {
            Err(errors.join("; "))
        };
        (result, touched)
    }

    /// Reads the Alertmanagers `members` again, so a write shows without waiting a poll.
    pub async fn reread(&mut self, members: &[usize], now: Timestamp) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        for &i in members {
            if let Some(member) = self.members.get_mut(i) {
                events.push(member.poll(now).await);
            }
        }
        events.extend(self.settle(now));
        events
    }
}

/// Starts the source for `configs` (at least one). Sends `Ready` once every Alertmanager
/// has been read once, answering or not; exits when `events` closes.
pub async fn spawn(
    configs: &[AlertmanagerConfig],
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for config in configs {
        let signer = match &config.sigv4 {
            None => None,
            Some(s) => match sigv4::Signer::from_chain(&s.region, s.profile.as_deref()).await {
                Ok(signer) => Some(signer),
                Err(e) => {
                    problems.push((config.name.clone(), e));
                    None
                }
            },
        };
        let client = Client::new(&config.name, &config.url, signer);
        members.push(Member::new(config, client, POLL_INTERVAL));
    }
    for (name, problem) in problems {
        if let Some(m) = members.iter_mut().find(|m| m.name == name) {
            m.health.last_error = Some(format!("{name}: SigV4: {problem}"));
        }
    }
    spawn_with(Alertmanagers::new(members), POLL_INTERVAL, clock, events)
}

/// [`spawn`] with the members built by the caller and the poll interval chosen (tests).
pub fn spawn_with(
    mut ams: Alertmanagers,
    poll_every: Duration,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (commands, mut inbox) = mpsc::channel(COMMAND_CAPACITY);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ready_sent = false;
        let mut inbox_open = true;
        loop {
            let batch = tokio::select! {
                biased;
                () = events.closed() => return,
                _ = tick.tick() => {
                    let mut out = ams.poll_all(clock.now()).await;
                    if !ready_sent {
                        ready_sent = true;
                        out.push(SourceEvent::Ready { source: SOURCE_NAME.into() });
                    }
                    out
                }
                command = inbox.recv(), if inbox_open => match command {
                    Some(command) => handle(&mut ams, command, &clock).await,
                    None => {
                        inbox_open = false;
                        Vec::new()
                    }
                },
            };
            for event in batch {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    SourceHandle {
        name: SOURCE_NAME.into(),
        commands,
    }
}

async fn handle(
    ams: &mut Alertmanagers,
    command: SourceCommand,
    clock: &Clock,
) -> Vec<SourceEvent> {
    match command {
        SourceCommand::Focus(_) => Vec::new(),
        SourceCommand::Targets { seq, fleet, .. } => {
            let mut out = ams.retarget(&fleet, clock.now());
            out.push(SourceEvent::Targeted {
                source: SOURCE_NAME.into(),
                seq,
            });
            out
        }
        SourceCommand::SilenceAlert {
            alert,
            matchers,
            created_by,
            comment,
            minutes,
            reply,
        } => {
            let (result, touched) = ams
                .silence(
                    &alert,
                    &matchers,
                    &created_by,
                    &comment,
                    minutes,
                    clock.now(),
                )
                .await;
            // The requester may have stopped waiting; the silence stands either way.
            let _ = reply.send(result);
            ams.reread(&touched, clock.now()).await
        }
        SourceCommand::ExpireSilences { alert, ids, reply } => {
            let (result, touched) = ams.expire(&alert, &ids).await;
            let _ = reply.send(result);
            ams.reread(&touched, clock.now()).await
        }
        command @ (SourceCommand::PauseWave { .. }
        | SourceCommand::ResumeWave { .. }
        | SourceCommand::Remediate(_)
        | SourceCommand::UpdateFindings { .. }
        | SourceCommand::Relay { .. }) => {
            crate::sources::refuse_wave(command, "the Alertmanager source");
            Vec::new()
        }
    }
}
