//! The engine every mode runs on: it owns the sources, the store, what the sources are
//! told (the fleet, the clusters of interest, the focus), expiry, readiness (the first
//! complete picture) and the action path. The console adds keys and frames, `snapshot`
//! printing, `guard` its election and passes; none of them decides what the fleet *is*.
//!
//! ```text
//!  sources ──SourceEvent──▶ Engine::recv ──▶ Store::apply
//!     ▲                        │
//!     └── Targets / Focus ◀────┘  (after every batch and tick, when they changed)
//! ```

mod actions;
mod targets;

pub use targets::{fleet, interest};

use std::time::Duration;

use color_eyre::eyre::Result;
use tokio::sync::mpsc;

use crate::actions::{ExecContext, Mode};
use crate::app::Setup;
use crate::clock::Clock;
use crate::model::{ClusterId, SourceEvent, SourceHealth, Store, Timestamp};
use crate::sources::{self, EVENT_CHANNEL_CAPACITY, SourceCommand, SourceHandle};
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
    targeting: Targeting,
    exec: Option<ExecContext>,
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
        Self::new(setup, clock, running.handles, rx)
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
            store.expect_source(&source.name, LOADING_POLL_SECS);
        }
        // Local acks outlive a restart; the demo's clock is not the audit log's.
        if !setup.demo_mode
            && let Ok((entries, _)) = crate::actions::read_audit(&setup.audit_path)
        {
            for (key, ack) in crate::actions::local_acks_in_force(&entries, clock.now()) {
                store.set_local_ack(&key, ack);
            }
        }
        Self {
            store,
            clock,
            mode: setup.mode,
            demo: setup.demo_mode,
            events,
            sources,
            targeting: Targeting::default(),
            exec: None,
        }
    }

    /// An engine with no sources, fed by hand with `apply` (tests and benches).
    pub fn without_sources(setup: &Setup, clock: Clock) -> Self {
        Self::new(setup, clock, Vec::new(), mpsc::channel(1).1)
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

    pub fn mode(&self) -> Mode {
        self.mode
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
            event => self.store.apply(event, self.clock.now()),
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

    /// The slow tick: old resolutions and acks expire, and the sources hear of it.
    pub fn tick(&mut self) {
        self.store.expire(self.clock.now());
        self.settle();
    }

    /// Tells the sources the fleet and interest if they changed, and notes readiness.
    fn settle(&mut self) {
        self.targeting.sync(&self.store, &self.sources);
        if self.store.is_ready(&self.source_names()) {
            self.targeting.all_ready(&self.store);
        }
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
        self.store.is_ready(&self.source_names()) && self.targeting.settled(&self.sources)
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
        let names = self.source_names();
        let silent: Vec<String> = names
            .iter()
            .filter(|s| !self.store.is_ready(std::slice::from_ref(s)))
            .cloned()
            .collect();
        let behind: Vec<String> = self
            .targeting
            .unanswered(&self.sources)
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
        }
        self.store.apply(SourceEvent::Health(health), now);
    }
}

#[cfg(test)]
mod tests;
