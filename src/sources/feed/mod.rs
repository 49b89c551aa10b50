//! The source of a console connected to `fleetdeck serve` (`--connect URL`): it reads the
//! server's feed and hands its events to the engine like any source, so every view works
//! as with local sources and the console needs no AWS or Kubernetes credentials at all.
//!
//! On connect the server sends the whole picture; what this console knew of before and
//! is not in it (a source or alert gone while it was away) is dropped. A lost connection
//! keeps the last picture (its sources age as any silent source does) and is tried again
//! with backoff; a refused token or another protocol stops the source, saying why.
//! Writes are relayed to the server (`SourceCommand::Relay`), which authorizes, carries
//! out and audits them.

mod client;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::actions::Mode;
use crate::clock::Clock;
use crate::feed::{self, Frame};
use crate::model::{AlertKey, SourceEvent, SourceHealth};
use crate::sources::{SourceCommand, SourceHandle};

/// Commands waiting for the source (writes, targets).
const COMMAND_CHANNEL_CAPACITY: usize = 64;

pub use client::FeedClient;

/// How to reach the server.
#[derive(Clone, Debug)]
pub struct Connect {
    pub url: String,
    /// The bearer token, unless a client certificate says who this is.
    pub token: Option<String>,
    /// A client certificate and its key (PEM files) to present over TLS.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// A CA to trust for the server's certificate, instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub os_user: String,
}

/// The source's name: `feed:HOST`.
pub fn source_name(url: &str) -> String {
    format!("feed:{}", feed::host_of(url))
}

/// What the console has learnt of its server, shared with the engine: the role its token
/// carries (until the server said, nothing may be written).
#[derive(Clone, Debug, Default)]
pub struct Link {
    role: Arc<AtomicU8>,
}

impl Link {
    /// The token's role, once the server said it.
    pub fn role(&self) -> Option<Mode> {
        match self.role.load(Ordering::Relaxed) {
            1 => Some(Mode::Viewer),
            2 => Some(Mode::Operator),
            _ => None,
        }
    }

    fn set_role(&self, role: Mode) {
        let v = match role {
            Mode::Viewer => 1,
            Mode::Operator => 2,
        };
        self.role.store(v, Ordering::Relaxed);
    }
}

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// No frame for this long: the connection is dead, even if TCP has not said so.
const SILENT_LIMIT: Duration = Duration::from_secs(3 * feed::HEARTBEAT.as_secs());

/// Starts the feed source. `clock` (a following clock) takes the server's time.
pub fn spawn(
    connect: Connect,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> (SourceHandle, Link) {
    let name = source_name(&connect.url);
    let (commands, inbox) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let link = Link::default();
    let client = FeedClient::new(&connect);
    let task = Task {
        name: name.clone(),
        client,
        os_user: connect.os_user.clone(),
        clock,
        events,
        link: link.clone(),
        health: SourceHealth::new(&name, feed::HEARTBEAT.as_secs()),
        known_sources: BTreeSet::new(),
        known_alerts: HashSet::new(),
        ready_sent: false,
    };
    tokio::spawn(task.run(inbox));
    (SourceHandle { name, commands }, link)
}

struct Task {
    name: String,
    client: FeedClient,
    os_user: String,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
    link: Link,
    health: SourceHealth,
    /// The server's sources and alerts this console was told of: what a new picture
    /// drops when they are no longer in it.
    known_sources: BTreeSet<String>,
    known_alerts: HashSet<AlertKey>,
    ready_sent: bool,
}

/// How a connection ended.
enum Ended {
    /// Try again after a while.
    Lost(String),
    /// Trying again cannot help (a refused token, another protocol): stop.
    Refused(String),
    /// The engine is gone.
    Shutdown,
}

impl Task {
    async fn run(mut self, mut inbox: mpsc::Receiver<SourceCommand>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.connection(&mut inbox).await {
                Ended::Shutdown => return,
                Ended::Refused(reason) => {
                    // Asking again cannot help: say why and stop, so a `snapshot` ends
                    // now rather than waiting out its timeout; a console keeps its
                    // picture and the reason in the header and the Sources view.
                    tracing::error!(source = %self.name, "{reason}");
                    self.failed(reason).await;
                    return;
                }
                Ended::Lost(reason) => {
                    tracing::warn!(source = %self.name, "{reason}; again in {backoff:?}");
                    self.failed(reason).await;
                }
            }
            let wait = backoff.mul_f64(0.75 + fastrand::f64() * 0.5);
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    command = inbox.recv() => match command {
                        Some(command) => self.command(command).await,
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.health.last_ok.is_some_and(|ok| {
                self.health
                    .last_error_at
                    .is_some_and(|err| (err - ok).num_seconds() < 1)
            }) {
                backoff = Duration::from_millis(500);
            }
        }
    }

    /// One connection, from the request to its end.
    async fn connection(&mut self, inbox: &mut mpsc::Receiver<SourceCommand>) -> Ended {
        self.health.calls += 1;
        let mut stream = match self.client.open_feed().await {
            Ok(stream) => stream,
            Err(client::OpenError::Refused(reason)) => return Ended::Refused(reason),
            Err(client::OpenError::Failed(reason)) => return Ended::Lost(reason),
        };
        let mut said_hello = false;
        loop {
            tokio::select! {
                frame = tokio::time::timeout(SILENT_LIMIT, stream.next_frame()) => {
                    let frame = match frame {
                        Err(_) => return Ended::Lost(format!(
                            "{}: nothing from the server for {}s",
                            self.client.url(), SILENT_LIMIT.as_secs()
                        )),
                        Ok(Err(reason)) => return Ended::Lost(reason),
                        Ok(Ok(frame)) => frame,
                    };
                    if !said_hello && !matches!(frame, Frame::Hello(_)) {
                        return Ended::Refused(format!(
                            "{}: the server did not start with its hello; is this a fleetdeck feed?",
                            self.client.url()
                        ));
                    }
                    said_hello = true;
                    if let Err(ended) = self.frame(frame).await {
                        return ended;
                    }
                }
                command = inbox.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => return Ended::Shutdown,
                },
            }
        }
    }

    /// Folds one frame in.
    async fn frame(&mut self, frame: Frame) -> Result<(), Ended> {
        let now = self.clock.now();
        match frame {
            Frame::Hello(hello) => {
                if hello.protocol != feed::PROTOCOL {
                    return Err(Ended::Refused(format!(
                        "{} speaks feed protocol {}, this fleetdeck {}: run the same \
                         fleetdeck version on both sides (server {})",
                        self.client.url(),
                        hello.protocol,
                        feed::PROTOCOL,
                        hello.version
                    )));
                }
                self.clock.follow(hello.now, hello.speed);
                // The feed's freshness is judged on the server's clock: a heartbeat is due
                // every few seconds of real time, however fast that clock runs (a demo's).
                self.health.poll_interval_secs =
                    (feed::HEARTBEAT.as_secs_f64() * hello.speed.max(1.0)).ceil() as u64;
                // A server whose clock restarted behind ours (a demo started again):
                // the last failure is not in the future.
                let now = self.clock.now();
                if self.health.last_error_at.is_some_and(|at| at > now) {
                    self.health.last_error_at = Some(now);
                }
                self.link.set_role(hello.role);
                tracing::info!(
                    source = %self.name,
                    "connected to {} (fleetdeck {}) as {} ({})",
                    hello.server, hello.version, hello.token, hello.role.as_str()
                );
                if !hello.plans.is_empty() {
                    self.send(SourceEvent::RolloutPlans(hello.plans)).await?;
                }
                Ok(())
            }
            Frame::Picture {
                sent_at,
                complete,
                events,
            } => {
                self.lag(sent_at);
                let (sources, alerts) = known_in(&events);
                let gone_sources: Vec<String> =
                    self.known_sources.difference(&sources).cloned().collect();
                let gone_alerts: Vec<AlertKey> =
                    self.known_alerts.difference(&alerts).cloned().collect();
                self.known_sources = sources;
                self.known_alerts = alerts;
                for event in events {
                    self.send(event).await?;
                }
                if !gone_alerts.is_empty() {
                    self.send(SourceEvent::AlertsGone(gone_alerts)).await?;
                }
                for source in gone_sources {
                    self.send(SourceEvent::SourceGone { source }).await?;
                }
                self.ok(now).await?;
                if complete {
                    self.complete().await?;
                }
                Ok(())
            }
            Frame::Complete { sent_at } => {
                self.lag(sent_at);
                self.complete().await
            }
            Frame::Events { sent_at, events } => {
                self.lag(sent_at);
                for event in events {
                    note(&event, &mut self.known_sources, &mut self.known_alerts);
                    self.send(event).await?;
                }
                self.ok(now).await
            }
            Frame::Heartbeat { sent_at } => {
                self.lag(sent_at);
                self.ok(now).await
            }
        }
    }

    /// The server's picture is whole: so is this console's (once).
    async fn complete(&mut self) -> Result<(), Ended> {
        if !self.ready_sent {
            self.ready_sent = true;
            self.send(SourceEvent::Ready {
                source: self.name.clone(),
            })
            .await?;
        }
        Ok(())
    }

    fn lag(&mut self, sent_at: crate::model::Timestamp) {
        let lag = (chrono::Utc::now() - sent_at).num_milliseconds().max(0);
        self.health.lag_ms = Some(lag as u64);
    }

    /// A frame arrived: the feed is healthy. Said at most once a second.
    async fn ok(&mut self, now: crate::model::Timestamp) -> Result<(), Ended> {
        let said = self.health.last_ok;
        self.health.last_ok = Some(now);
        if said.is_none_or(|t| (now - t).num_milliseconds() >= 1000)
            || self
                .health
                .last_error_at
                .is_some_and(|e| said.is_none_or(|ok| e > ok))
        {
            self.send(SourceEvent::Health(self.health.clone())).await?;
        }
        Ok(())
    }

    async fn failed(&mut self, reason: String) {
        self.health.errors += 1;
        self.health.last_error = Some(reason);
        self.health.last_error_at = Some(self.clock.now());
        let _ = self
            .events
            .send(SourceEvent::Health(self.health.clone()))
            .await;
    }

    async fn send(&self, event: SourceEvent) -> Result<(), Ended> {
        self.events.send(event).await.map_err(|_| Ended::Shutdown)
    }

    async fn command(&mut self, command: SourceCommand) {
        match command {
            // The server reads the fleet; what this console finds interesting changes
            // nothing there.
            SourceCommand::Targets { seq, .. } => {
                let _ = self
                    .events
                    .send(SourceEvent::Targeted {
                        source: self.name.clone(),
                        seq,
                    })
                    .await;
            }
            SourceCommand::Focus(_) => {}
            SourceCommand::Relay {
                action,
                dry_run,
                os_user,
                reply,
            } => {
                let client = self.client.clone();
                let os_user = if os_user.is_empty() {
                    self.os_user.clone()
                } else {
                    os_user
                };
                tokio::spawn(async move {
                    let result = client
                        .act(&feed::ActionRequest {
                            action,
                            dry_run,
                            os_user,
                        })
                        .await;
                    let _ = reply.send(result);
                });
            }
            other => crate::sources::refuse_wave(other, &self.name),
        }
    }
}

/// The sources and alerts a picture speaks of.
fn known_in(events: &[SourceEvent]) -> (BTreeSet<String>, HashSet<AlertKey>) {
    let mut sources = BTreeSet::new();
    let mut alerts = HashSet::new();
    for event in events {
        note(event, &mut sources, &mut alerts);
    }
    (sources, alerts)
}

/// Keeps track of the server's sources and alerts as the events name them.
fn note(event: &SourceEvent, sources: &mut BTreeSet<String>, alerts: &mut HashSet<AlertKey>) {
    match event {
        SourceEvent::Expected { source, .. }
        | SourceEvent::Ready { source }
        | SourceEvent::ClusterInventory { source, .. }
        | SourceEvent::ClustersChanged { source, .. }
        | SourceEvent::Applications { source, .. }
        | SourceEvent::ApplicationSets { source, .. }
            if !source.is_empty() =>
        {
            sources.insert(source.clone());
        }
        SourceEvent::Health(health) => {
            sources.insert(health.name.clone());
        }
        SourceEvent::SourceGone { source } => {
            sources.remove(source);
        }
        SourceEvent::Alerts(list) => alerts.extend(list.iter().map(|a| a.key.clone())),
        SourceEvent::AlertsGone(keys) => {
            for key in keys {
                alerts.remove(key);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
