//! The engine every mode runs on: it owns the sources, the store, what the sources are
//! told (the fleet, the clusters of interest, the focus), expiry, readiness (the first
//! complete picture) and the action path. The console adds keys and frames, `snapshot`
//! printing, `guard` its election and passes; none of them decides what the fleet *is*.
//!
//! ```text
//!  sources ──SourceEvent──▶ Engine::recv ──▶ Store::apply
//!     ▲                        │
//!     └── Targets / Focus ◀────┘  (after every batch and tick, when they changed)
//!  discovery ──SourceChange──▶ (sources started and stopped while running)
//! ```
//!
//! Sources can come and go while running (an organization's accounts join and leave):
//! a `SourceChange` on the channel given to [`Engine::follow_source_changes`] adds or
//! removes them, taken up when `SourceEvent::SourcesChanged` arrives on the events
//! channel. The change is thereby ordered with the events: what a stopped source sent
//! before it is folded in before it is forgotten (nothing of it comes back), and a
//! discovery source that reports its own `Ready` after the marker has the new sources
//! counted in readiness first. Sources started with the first listing are waited for by
//! the first complete picture; sources started after it are not (they load as any
//! source does, and the picture stays whole).

mod actions;
pub mod cache;
mod targets;

pub use targets::{fleet, interest};

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::Result;
use tokio::sync::mpsc;

use crate::actions::{ExecContext, Mode};
use crate::app::Setup;
use crate::clock::Clock;
use crate::model::{ClusterId, SourceEvent, SourceHealth, Store, Timestamp};
use crate::sources::{self, EVENT_CHANNEL_CAPACITY, SourceChange, SourceCommand, SourceHandle};
use targets::Targeting;

/// The poll interval a source is listed with until it reports its own health.
const LOADING_POLL_SECS: u64 = 60;

/// The sources, the store and everything between them.
pub struct Engine {
    store: Store,
    clock: Clock,
    mode: Mode,
    /// The picture is the simulated demo fleet.
    demo: bool,
    events: mpsc::Receiver<SourceEvent>,
    sources: Vec<SourceHandle>,
    /// Sources started and stopped while running, when some can be.
    changes: Option<mpsc::Receiver<SourceChange>>,
    /// Sources started after the first complete picture: not waited for.
    late: Vec<String>,
    /// The sources the engine started with, the config's own (an organization's accounts
    /// come later): what the warm-start picture is kept for.
    configured: Vec<String>,
    /// The first complete picture has been in.
    was_ready: bool,
    targeting: Targeting,
    exec: Option<ExecContext>,
    /// Where the last picture is kept (the warm start), when this mode keeps one.
    cache: Option<Cache>,
    /// Every event folded into the store since the last `take_published`, when the
    /// picture is served to remote consoles (`fleetdeck serve`).
    published: Option<Vec<SourceEvent>>,
    /// Writes are relayed to the server this console is connected to (`--connect`):
    /// the feed source's name, and what it learnt of the server (the token's role).
    relay: Option<String>,
    link: Option<crate::sources::feed::Link>,
}

/// The warm-start file and when it was last written.
struct Cache {
    path: PathBuf,
    written: Option<std::time::Instant>,
    /// Store generation last written (nothing new: nothing to write).
    generation: u64,
}

/// Sources that had not delivered their picture when `Engine::until_ready` gave up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unready {
    /// Sources with no first complete picture.
    pub silent: Vec<String>,
    /// Sources that have not yet applied the fleet they were told.
    pub behind: Vec<String>,
}

impl Engine {
    /// Starts the sources the setup names (the demo fleet, or the config's real systems)
    /// on `clock`.
    pub async fn start(setup: &Setup, clock: Clock) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let running = sources::start(setup, clock.clone(), tx).await;
        let mut engine = Self::new(setup, clock, running.handles, rx);
        if let Some(changes) = running.changes {
            engine.follow_source_changes(changes);
        }
        if let Some((name, link)) = running.feed {
            engine.relay_writes_to(&name, link);
        }
        engine
    }

    /// [`Engine::start`], then the warm start (unless `--no-cache`) and keeping the
    /// picture for the next one: the console's and the guard's engine. `snapshot` uses
    /// `start` alone: it prints only what it saw.
    pub async fn start_warm(setup: &Setup, clock: Clock) -> Self {
        let mut engine = Self::start(setup, clock).await;
        if let Some(path) = &setup.cache_file {
            engine.use_cache(path.clone(), !setup.no_cache);
        }
        engine
    }

    /// An engine over sources already running (tests start their own), or none.
    pub fn new(
        setup: &Setup,
        clock: Clock,
        sources: Vec<SourceHandle>,
        events: mpsc::Receiver<SourceEvent>,
    ) -> Self {
        let mut store = Store::new();
        store.set_rollout_plans(setup.plans.clone());
        // Every running source is listed from the start (as loading), so the console
        // says what it waits for instead of "no source".
        for source in &sources {
            store.apply(expected(&source.name), clock.now());
        }
        // Local acks outlive a restart; the demo's clock is not the audit log's.
        if !setup.demo_mode
            && let Ok((entries, _)) = crate::actions::read_audit(&setup.audit_path)
        {
            for (key, ack) in crate::actions::local_acks_in_force(&entries, clock.now()) {
                store.set_local_ack(&key, ack);
            }
        }
        let configured = sources.iter().map(|s| s.name.clone()).collect();
        Self {
            store,
            clock,
            mode: setup.mode,
            demo: setup.demo_mode,
            events,
            sources,
            configured,
            changes: None,
            late: Vec::new(),
            was_ready: false,
            targeting: Targeting::default(),
            exec: None,
            cache: None,
            published: None,
            relay: None,
            link: None,
        }
    }

    /// From now on, keeps every event folded into the store for `take_published`: what
    /// `fleetdeck serve` streams, after the whole picture (`Store::picture`).
    pub fn publish(&mut self) {
        self.published.get_or_insert_with(Vec::new);
    }

    /// The events folded in since the last call, in order.
    pub fn take_published(&mut self) -> Vec<SourceEvent> {
        self.published
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every write goes to `source`, the feed of the server this console is connected to:
    /// the server authorizes it again, carries it out with its own credentials and
    /// audits it.
    pub fn relay_writes_to(&mut self, source: &str, link: crate::sources::feed::Link) {
        self.relay = Some(source.to_string());
        self.link = Some(link);
    }

    /// Whether writes are relayed to a server (`--connect`).
    pub fn relays(&self) -> bool {
        self.relay.is_some()
    }

    /// Folds an event into the store, and keeps it for the feed when serving.
    fn fold(&mut self, event: SourceEvent) {
        if let Some(published) = self.published.as_mut() {
            published.push(event.clone());
        }
        self.store.apply(event, self.clock.now());
    }

    /// An engine with no sources, fed by hand with `apply` (tests and benches).
    pub fn without_sources(setup: &Setup, clock: Clock) -> Self {
        Self::new(setup, clock, Vec::new(), mpsc::channel(1).1)
    }

    /// Takes sources started and stopped while running from `changes` (account
    /// discovery): see the module's documentation.
    pub fn follow_source_changes(&mut self, changes: mpsc::Receiver<SourceChange>) {
        self.changes = Some(changes);
    }

    fn apply_change(&mut self, change: SourceChange) {
        match change {
            SourceChange::Started(handles) => {
                for handle in handles {
                    self.fold(expected(&handle.name));
                    // What the others were told, so the newcomer can answer it too.
                    self.targeting.introduce(&handle);
                    if self.was_ready {
                        self.late.push(handle.name.clone());
                    }
                    self.sources.retain(|s| s.name != handle.name);
                    self.sources.push(handle);
                }
            }
            SourceChange::Stopped(names) => {
                for name in &names {
                    self.sources.retain(|s| s.name != *name);
                    self.late.retain(|s| s != name);
                    self.targeting.forget(name);
                    self.fold(SourceEvent::SourceGone {
                        source: name.clone(),
                    });
                }
            }
        }
    }

    /// Replaces the clock (tests move a frozen clock on).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Operator or viewer. Connected to a server, the lesser of this console's mode and
    /// the role of its token (a viewer until the server has said which).
    pub fn mode(&self) -> Mode {
        match &self.link {
            Some(link) if link.role() != Some(Mode::Operator) => Mode::Viewer,
            _ => self.mode,
        }
    }

    /// Whether the picture is the simulated demo fleet.
    pub fn demo(&self) -> bool {
        self.demo
    }

    pub fn sources(&self) -> &[SourceHandle] {
        &self.sources
    }

    /// The names of the running sources, as they report `Ready` and `Health`.
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.clone()).collect()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Targeted { source, seq } => self.targeting.answered(&source, seq),
            SourceEvent::SourcesChanged => {
                // Sent after the change itself: it is there.
                if let Some(change) = self.changes.as_mut().and_then(|c| c.try_recv().ok()) {
                    self.apply_change(change);
                }
            }
            event => self.fold(event),
        }
    }

    /// Waits for the next source event, folds it and up to `batch - 1` more already queued
    /// in, and tells the sources what changed. `None` once every source has stopped.
    pub async fn recv(&mut self, batch: usize) -> Option<usize> {
        let first = self.events.recv().await?;
        self.apply(first);
        let n = 1 + self.fold_queued(batch.saturating_sub(1));
        self.settle();
        Some(n)
    }

    /// Folds in what is queued now, without waiting; returns how many events.
    pub fn drain(&mut self) -> usize {
        let n = self.fold_queued(usize::MAX);
        self.settle();
        n
    }

    fn fold_queued(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.events.try_recv() {
                Ok(event) => self.apply(event),
                Err(_) => break,
            }
            n += 1;
        }
        n
    }

    /// The slow tick: old resolutions and acks expire, the sources hear of it, and the
    /// picture is written for the next start when it is due.
    pub fn tick(&mut self) {
        self.store.expire(self.clock.now());
        self.settle();
        if self.cache_due() {
            self.write_cache(false);
        }
    }

    /// Shows the last picture kept at `path` at once (marked as remembered, with its age;
    /// not with `show` false) and keeps the picture there from now on. A file that cannot
    /// be used is ignored with a log line. `snapshot` never calls this.
    pub fn use_cache(&mut self, path: PathBuf, show: bool) {
        match cache::read(&path, &self.configured) {
            Ok(Some(_)) if !show => {
                tracing::info!("warm start skipped (--no-cache): {}", path.display())
            }
            Ok(Some(picture)) => {
                let at = picture.written_at;
                let now = self.clock.now();
                for event in picture.into_events() {
                    self.store.apply(event, now);
                }
                self.store.mark_cached(at);
                tracing::info!(
                    "warm start: {} clusters and {} alerts from {} (written {at})",
                    self.store.clusters().len(),
                    self.store.alerts().count(),
                    path.display()
                );
            }
            Ok(None) => tracing::info!("no picture kept at {} yet", path.display()),
            Err(why) => tracing::warn!("warm start skipped: {why}"),
        }
        self.cache = Some(Cache {
            path,
            written: None,
            generation: self.store.generation(),
        });
    }

    /// Due: the first complete picture is in, something changed, and the last write is
    /// at least `cache::WRITE_EVERY` old.
    fn cache_due(&self) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        cache.generation != self.store.generation()
            && cache
                .written
                .is_none_or(|at| at.elapsed() >= cache::WRITE_EVERY)
            && self.is_ready()
    }

    /// Writes the picture for the next start: in the background, or (on exit) now.
    pub fn write_cache(&mut self, now_and_wait: bool) {
        if !self.is_ready() {
            // Half a picture would be shown as the whole fleet next time.
            return;
        }
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        cache.written = Some(std::time::Instant::now());
        cache.generation = self.store.generation();
        // Kept for the config's own sources (those discovered are found again at start).
        let picture = cache::Picture::of(&self.store, &self.configured, self.clock.now());
        let path = cache.path.clone();
        let write = move || match cache::write(&path, &picture) {
            Ok(bytes) => tracing::debug!("picture kept: {bytes} bytes in {}", path.display()),
            Err(e) => tracing::warn!("cannot keep the picture in {}: {e}", path.display()),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if !now_and_wait => {
                handle.spawn_blocking(write);
            }
            _ => write(),
        }
    }

    /// Tells the sources the fleet and interest if they changed, and notes readiness.
    fn settle(&mut self) {
        self.targeting.sync(&self.store, &self.sources);
        if self.store.is_ready(&self.awaited_names()) {
            self.targeting.all_ready(&self.store);
        }
        if !self.was_ready && self.is_ready() {
            self.was_ready = true;
            self.store.forget_unwatched(&self.source_names());
        }
    }

    /// The sources the first complete picture waits for: all but those started after it.
    fn awaited(&self) -> Vec<SourceHandle> {
        self.sources
            .iter()
            .filter(|s| !self.late.contains(&s.name))
            .cloned()
            .collect()
    }

    fn awaited_names(&self) -> Vec<String> {
        self.awaited().into_iter().map(|s| s.name).collect()
    }

    /// The cluster on screen (its full metric set and its insides are wanted), or none.
    pub fn set_focus(&mut self, focus: Option<ClusterId>) {
        if !self.targeting.set_focus(focus.clone()) {
            return;
        }
        for source in &self.sources {
            // A full queue only delays the cluster's charts; never block the caller.
            let _ = source
                .commands
                .try_send(SourceCommand::Focus(focus.clone()));
        }
        self.settle();
    }

    pub fn focus(&self) -> Option<&ClusterId> {
        self.targeting.focus()
    }

    /// Whether the first complete picture is in: every source has delivered its own, and
    /// has applied the fleet the others listed (so applications and alerts are tied to
    /// their clusters).
    pub fn is_ready(&self) -> bool {
        let awaited = self.awaited();
        let names: Vec<String> = awaited.iter().map(|s| s.name.clone()).collect();
        self.store.is_ready(&names) && self.targeting.settled(&awaited)
    }

    /// Folds events in until the first complete picture, or `timeout`. A source that never
    /// answers must not hide the others: on timeout the silent ones are recorded as
    /// failing (with what they had counted) and named in the result.
    pub async fn until_ready(&mut self, timeout: Duration) -> Result<(), Unready> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.settle();
        while !self.is_ready() {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    self.apply(event);
                    self.fold_queued(usize::MAX);
                    self.settle();
                }
                // Every source has stopped: nothing more will come.
                Ok(None) => break,
                Err(_) => break,
            }
        }
        // Whatever is already queued belongs to the picture too (a source that failed to
        // start reports that before anything else).
        self.drain();
        if self.is_ready() {
            return Ok(());
        }
        let names = self.awaited_names();
        let silent: Vec<String> = names
            .iter()
            .filter(|s| !self.store.is_ready(std::slice::from_ref(s)))
            .cloned()
            .collect();
        let awaited = self.awaited();
        let behind: Vec<String> = self
            .targeting
            .unanswered(&awaited)
            .into_iter()
            .map(str::to_string)
            .filter(|s| !silent.contains(s))
            .collect();
        for name in &silent {
            self.mark_silent(name, timeout);
        }
        Err(Unready { silent, behind })
    }

    fn mark_silent(&mut self, name: &str, waited: Duration) {
        let now = self.clock.now();
        let mut health = SourceHealth::new(name, 60);
        health.last_error = Some(format!("no complete picture within {}s", waited.as_secs()));
        health.last_error_at = Some(now);
        if let Some(known) = self.store.sources().find(|s| s.name == name) {
            health.calls = known.calls;
            health.errors = known.errors;
            health.throttles = known.throttles;
            health.last_ok = known.last_ok;
            // A source that said why it failed keeps its own words (a refused token).
            if let (Some(error), Some(at)) = (&known.last_error, known.last_error_at)
                && known.last_ok.is_none_or(|ok| at > ok)
            {
                health.last_error = Some(format!(
                    "{error} (no complete picture within {}s)",
                    waited.as_secs()
                ));
            }
        }
        self.fold(SourceEvent::Health(health));
    }
}

/// A source started under `name`, listed as loading until it says more.
fn expected(name: &str) -> SourceEvent {
    SourceEvent::Expected {
        source: name.to_string(),
        poll_interval_secs: LOADING_POLL_SECS,
    }
}

#[cfg(test)]
mod tests;
