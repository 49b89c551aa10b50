//! `fleetdeck guard`: the headless guard, meant to run as a Deployment on the Argo CD hub.
//!
//! It runs the real sources into a `Store` exactly as the console does, and on every pass
//! (while it holds the leader Lease and the hub has been listed) runs
//! `rollout::guard::enforce` on each Argo CD rollout and writes the resulting holds to
//! the ApplicationSet (`sources::argocd::waves::update`: read, change, merge patch with
//! `resourceVersion`, re-read on 409). The console computes the same pass read-only.
//!
//! For every change it makes: an audit intent synced to disk *before* the write, the
//! outcome after it, and a Kubernetes Event on the ApplicationSet once written.
//!
//! Safety rules:
//! - Only the leader acts, and only within `lease::ACT_WINDOW_SECS` of its last renewal;
//!   it checks before every write.
//! - It never *releases* a hold while it cannot see: when a gate's alert source
//!   (CloudWatch, Alertmanager) is failing, stale or not yet listed, "no gate alarm
//!   firing" is unknown, so releases wait (loudly) while new holds are still placed. The
//!   same for EKS sources when a plan requires insights to pass.
//! - A failed write is logged and retried on the next pass; nothing is assumed written.

pub mod events;
pub mod lease;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use kube::api::{Api, DynamicObject};

use crate::actions::{Action, AuditLog, Mode, Outcome, authorize};
use crate::app::Setup;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::model::{ArgoApp, Rollout, SourceStatus, Store, Timestamp};
use crate::rollout::guard::{GuardAction, enforce};
use crate::rollout::plan::Plan;
use crate::sources;
use crate::sources::argocd::waves::{self, Target};
use events::{Recorder, SetRef};
use lease::{LeaseLock, Term};

/// How long the guard waits for the first complete picture before passing on what it has.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many source events are folded in before the loop looks at its timers.
const EVENT_BATCH: usize = 4096;

/// How `fleetdeck guard` was asked to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardOptions {
    /// Time between passes.
    pub interval: Duration,
    /// Who this replica is in the leader election (else `$POD_NAME`, else the hostname).
    pub identity: Option<String>,
    /// One pass, then exit.
    pub once: bool,
}

/// One guard replica: its election, its writers and what it must not do blind.
pub struct Guard {
    client: kube::Client,
    lock: LeaseLock,
    events: Recorder,
    audit: AuditLog,
    /// The hub source's name (`argocd:{context}`): its rollouts are the guard's.
    hub_source: String,
    namespace: String,
    /// Plans from the plans file, for sets without a `fleetdeck.io/plan` annotation.
    plans: BTreeMap<String, Plan>,
    os_user: String,
    /// Sources whose silence makes gate alarms (alert sources) or insights (EKS) unknown.
    watched: Vec<String>,
    /// Until when this replica may act: set by a successful renewal.
    act_until: Option<Timestamp>,
    /// Also print what it does on stderr (a Deployment's `kubectl logs`).
    echo: bool,
}

/// What one pass did, for `--once` and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassReport {
    /// Holds placed or lifted, and written: (rollout, action).
    pub written: Vec<(String, GuardAction)>,
    /// Releases not made because the guard could not see: (rollout, why).
    pub withheld: Vec<(String, String)>,
    /// Writes that failed, to be retried next pass.
    pub failed: Vec<String>,
    /// Why nothing was attempted at all (not leading, hub not listed yet).
    pub skipped: Option<String>,
}

impl Guard {
    /// A guard on hub `client`, namespace `namespace`, known as `identity`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        hub_source: &str,
        namespace: &str,
        identity: &str,
        audit: AuditLog,
        plans: BTreeMap<String, Plan>,
        os_user: &str,
        watched: Vec<String>,
    ) -> Self {
        Self {
            lock: LeaseLock::new(client.clone(), namespace, identity),
            events: Recorder::new(client.clone(), identity),
            client,
            audit,
            hub_source: hub_source.to_string(),
            namespace: namespace.to_string(),
            plans,
            os_user: os_user.to_string(),
            watched,
            act_until: None,
            echo: false,
        }
    }

    pub fn identity(&self) -> &str {
        self.lock.identity()
    }

    /// Whether this replica may act at `now`.
    pub fn leading(&self, now: Timestamp) -> bool {
        self.act_until.is_some_and(|until| now < until)
    }

    /// One round of the election. A failure leaves the last renewal in force, so a leader
    /// that cannot renew stops acting when its window ends.
    pub async fn elect(&mut self, now: Timestamp) -> Result<Term, String> {
        let was_leading = self.leading(now);
        let term = self.lock.try_acquire_or_renew(now).await;
        match &term {
            Ok(Term::Leading { act_until }) => {
                if !was_leading {
                    self.say(format!(
                        "{} leads: holds the Lease {}/{}",
                        self.identity(),
                        self.namespace,
                        lease::LEASE_NAME
                    ));
                }
                self.act_until = Some(*act_until);
            }
            Ok(Term::Following { holder }) => {
                if was_leading || self.act_until.is_none() {
                    self.say(format!(
                        "{} follows: the Lease is held by {}",
                        self.identity(),
                        holder.as_deref().unwrap_or("another replica")
                    ));
                }
                self.act_until = None;
            }
            Err(e) => {
                tracing::error!("leader election: {e}");
                if self.echo {
                    eprintln!("fleetdeck guard: leader election: {e}");
                }
            }
        }
        term
    }

    /// Gives the Lease up (on exit), so a successor takes over at once.
    pub async fn release(&mut self, now: Timestamp) -> Result<bool, String> {
        self.act_until = None;
        self.lock.release(now).await
    }

    /// One pass over every Argo CD rollout in `store`. Reads `clock` before each write,
    /// so a pass that outlives the leader's window stops there.
    pub async fn pass(&self, store: &Store, clock: &Clock) -> PassReport {
        let mut report = PassReport::default();
        let now = clock.now();
        if !self.leading(now) {
            report.skipped = Some("not the leader".into());
            return report;
        }
        if !store.is_ready(std::slice::from_ref(&self.hub_source)) {
            report.skipped = Some(format!("{} has not listed the hub yet", self.hub_source));
            return report;
        }
        let apps: Vec<ArgoApp> = store.applications().cloned().collect();
        let blind = self.blind(store, now);
        let sets = waves::application_sets(self.client.clone(), &self.namespace);
        let rollouts = store
            .rollouts()
            .iter()
            .filter(|r| r.source == self.hub_source);
        for rollout in rollouts {
            // The console's read-only preview of this pass: nothing to do, nothing to read.
            if store.guard_next(&rollout.name).is_empty() {
                continue;
            }
            if !self.leading(clock.now()) {
                report.failed.push(format!(
                    "stopped before {}: the Lease was not renewed in time",
                    rollout.name
                ));
                break;
            }
            let plan = store
                .rollout_plan(&rollout.name)
                .cloned()
                .unwrap_or_default();
            let blind_on: Vec<&String> = blind
                .iter()
                .filter(|(_, kind)| match kind {
                    Watched::Gates => !plan.gates.is_empty(),
                    Watched::Insights => plan.insights_must_pass,
                    Watched::Policies => !plan.policies_must_pass.is_empty(),
                })
                .map(|(why, _)| why)
                .collect();
            let blind_on = (!blind_on.is_empty()).then(|| {
                blind_on
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            self.guard_rollout(
                store,
                rollout,
                &plan,
                &apps,
                &sets,
                blind_on,
                clock,
                &mut report,
            )
            .await;
        }
        report
    }

    /// Runs `enforce` on one rollout's set as read now, and writes what changed.
    #[allow(clippy::too_many_arguments)]
    async fn guard_rollout(
        &self,
        store: &Store,
        rollout: &Rollout,
        plan: &Plan,
        apps: &[ArgoApp],
        sets: &Api<DynamicObject>,
        blind: Option<String>,
        clock: &Clock,
        report: &mut PassReport,
    ) {
        let name = rollout.name.as_str();
        let file_plan = crate::rollout::plan::find(&self.plans, &self.namespace, name);
        let target = Target {
            api: sets,
            source: &self.hub_source,
            namespace: &self.namespace,
            name,
            apps,
            file_plan,
        };
        // Intents of the attempt in progress; a 409 re-runs the change on the set as
        // read again, and the previous attempt's intents are closed as not written.
        let pending: RefCell<Vec<(GuardAction, String)>> = RefCell::default();
        let withheld: RefCell<Vec<GuardAction>> = RefCell::default();
        let change = |r: &mut Rollout, at: Timestamp| -> Result<Option<String>, String> {
            for (_, id) in pending.borrow_mut().drain(..) {
                self.record_outcome(
                    &id,
                    clock.now(),
                    false,
                    "not written: the ApplicationSet changed meanwhile; read again and re-checked",
                );
            }
            let signals = store.guard_signals(r, plan);
            let mut actions = enforce(r, &signals, at);
            if blind.is_some() {
                let (releases, rest): (Vec<_>, Vec<_>) =
                    actions.into_iter().partition(|a| !a.placed);
                keep_holds(r, &releases, at);
                *withheld.borrow_mut() = releases;
                actions = rest;
            }
            if actions.is_empty() {
                return Ok(None);
            }
            if !self.leading(clock.now()) {
                return Err("not written: this replica's Lease was not renewed in time".into());
            }
            for action in &actions {
                let id = self.record_intent(name, action, at)?;
                pending.borrow_mut().push((action.clone(), id));
            }
            Ok(Some(
                actions
                    .iter()
                    .map(GuardAction::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        };
        let result = waves::update(&target, || clock.now(), change).await;
        let pending = pending.into_inner();
        if let Some(why) = &blind {
            for action in withheld.into_inner() {
                let line = format!(
                    "NOT releasing ({}) on rollout {name}: gate status unknown: {why}",
                    action.describe()
                );
                tracing::warn!("{line}");
                if self.echo {
                    eprintln!("fleetdeck guard: {line}");
                }
                report.withheld.push((name.to_string(), line));
            }
        }
        match result {
            Ok(updated) if updated.written => {
                let set = SetRef {
                    namespace: self.namespace.clone(),
                    name: name.to_string(),
                    uid: updated.uid.clone(),
                };
                for (action, id) in pending {
                    let now = clock.now();
                    self.record_outcome(&id, now, true, &action.describe());
                    self.say(format!("rollout {name}: {}", action.describe()));
                    if let Err(e) = self.events.post(&set, &action, now).await {
                        tracing::error!("{e}");
                        if self.echo {
                            eprintln!("fleetdeck guard: {e}");
                        }
                    }
                    report.written.push((name.to_string(), action));
                }
            }
            Ok(_) => {
                // Nothing written: the change found nothing to do on the set as read.
                for (_, id) in pending {
                    self.record_outcome(&id, clock.now(), false, "not written: nothing to change");
                }
            }
            Err(e) => {
                for (_, id) in &pending {
                    self.record_outcome(id, clock.now(), false, &e);
                }
                let line = format!("rollout {name}: {e}; retrying next pass");
                tracing::error!("{line}");
                if self.echo {
                    eprintln!("fleetdeck guard: {line}");
                }
                report.failed.push(line);
            }
        }
    }

    /// Writes the intent for `action` on rollout `rollout`, synced before the write.
    fn record_intent(
        &self,
        rollout: &str,
        action: &GuardAction,
        at: Timestamp,
    ) -> Result<String, String> {
        let authorized =
            authorize(Mode::Operator, None, audit_action(rollout, action)).map_err(|d| d.reason)?;
        self.audit
            .intent(
                &authorized,
                Mode::Operator,
                &self.os_user,
                self.identity(),
                at,
            )
            .map_err(|e| {
                format!(
                    "not written: audit log {} is not writable: {e}",
                    self.audit.path().display()
                )
            })
    }

    fn record_outcome(&self, id: &str, time: Timestamp, ok: bool, message: &str) {
        let outcome = Outcome {
            time,
            ok,
            message: message.to_string(),
        };
        if let Err(e) = self.audit.outcome(id, &outcome) {
            tracing::error!(id, "could not record the outcome in the audit log: {e}");
        }
    }

    /// The watched sources that cannot be trusted at `now` (failing, stale, or never
    /// listed), with what their silence hides.
    fn blind(&self, store: &Store, now: Timestamp) -> Vec<(String, Watched)> {
        let mut blind = Vec::new();
        // Policy failures come from Security Hub where it is read (Policy Reporter sends
        // the PolicyReports there too); else only the clusters' PolicyReports, through the
        // Kubernetes source, can say whether a policy still fails.
        let policy_sources: &[&str] = if self.watched.iter().any(|n| n.starts_with("securityhub:"))
        {
            &["securityhub:"]
        } else {
            &["kubernetes"]
        };
        let kinds = [
            (Watched::Gates, &["cloudwatch:", "alertmanager:"][..]),
            (Watched::Insights, &["eks:"][..]),
            (Watched::Policies, policy_sources),
        ];
        for (kind, prefixes) in kinds {
            let names: Vec<&String> = self
                .watched
                .iter()
                .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
                .collect();
            if names.is_empty() {
                let what = match kind {
                    Watched::Gates => "no alert source (CloudWatch, Alertmanager) is configured",
                    Watched::Insights => "no EKS source is configured",
                    Watched::Policies => {
                        "no policy source is configured ([securityhub], or the Kubernetes source)"
                    }
                };
                blind.push((what.to_string(), kind));
            }
            for name in names {
                let health = store.sources().find(|s| &s.name == name);
                let why = match health.map(|h| (h.status(now), h)) {
                    _ if !store.is_ready(std::slice::from_ref(name)) => {
                        Some(format!("{name} has not listed yet"))
                    }
                    None => Some(format!("{name} has not reported")),
                    Some((SourceStatus::Ok, _)) => None,
                    Some((SourceStatus::Stale, _)) => Some(format!("{name} is stale")),
                    Some((SourceStatus::Failing, h)) => Some(format!(
                        "{name} is failing: {}",
                        h.last_error.as_deref().unwrap_or("unknown error")
                    )),
                };
                blind.extend(why.map(|w| (w, kind)));
            }
        }
        blind
    }

    fn say(&self, line: String) {
        tracing::info!("{line}");
        if self.echo {
            eprintln!("fleetdeck guard: {line}");
        }
    }
}

/// What a watched source's silence hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    Gates,
    Insights,
    Policies,
}

/// Puts back the holds of `releases` (the guard must not release them now).
fn keep_holds(rollout: &mut Rollout, releases: &[GuardAction], now: Timestamp) {
    for action in releases {
        if let Some(wave) = rollout.waves.get_mut(action.wave) {
            if !wave.holds.iter().any(|h| h.kind == action.hold.kind) {
                wave.holds.push(action.hold.clone());
            }
            crate::rollout::refresh_state(wave, now);
        }
    }
}

/// The audit log's record of a guard action.
fn audit_action(rollout: &str, action: &GuardAction) -> Action {
    let (rollout, wave, wave_name, reason) = (
        rollout.to_string(),
        action.wave,
        action.wave_name.clone(),
        action.describe(),
    );
    if action.placed {
        Action::GuardHold {
            rollout,
            wave,
            wave_name,
            reason,
        }
    } else {
        Action::GuardRelease {
            rollout,
            wave,
            wave_name,
            reason,
        }
    }
}

/// Runs `fleetdeck guard` until SIGTERM or SIGINT (or one pass, with `--once`).
pub async fn run(setup: Setup, options: GuardOptions) -> Result<()> {
    let config_file = setup.paths.config_file.display().to_string();
    let Some(config) = setup.config.as_ref() else {
        bail!(
            "fleetdeck guard needs a config file with a [hub] section; none found at {config_file} (--config FILE or FLEETDECK_CONFIG)"
        );
    };
    let Some(hub) = config.hub.as_ref() else {
        bail!(
            "{config_file}: fleetdeck guard needs a [hub] section (context and namespace of the Argo CD hub)"
        );
    };
    if setup.mode == Mode::Viewer {
        bail!(
            "fleetdeck guard writes holds to ApplicationSets and refuses to run in viewer mode (--viewer, or mode = \"viewer\" in {config_file})"
        );
    }
    if setup.demo_mode {
        bail!(
            "fleetdeck guard acts on a real Argo CD hub; it does not run on the demo fleet (--demo)"
        );
    }
    let identity = lease::identity(
        options.identity.as_deref(),
        |k| std::env::var(k).ok(),
        || whoami::hostname().ok(),
    )
    .map_err(|e| eyre!(e))?;
    let client = sources::hub_client(config, hub)
        .await
        .map_err(|e| eyre!("{config_file}: [hub]: {e}"))?;
    let audit = open_audit(&setup.audit_path)?;

    let clock = Clock::Wall;
    // The same engine as the console's: the sources are told the fleet, so gate alarms and
    // applications are tied to the clusters of the waves.
    let mut engine = Engine::start_warm(&setup, clock.clone()).await;
    let hub_source = sources::argocd::source_name(hub);
    let mut guard = Guard::new(
        client,
        &hub_source,
        &hub.namespace,
        &identity,
        audit,
        setup.plans.clone(),
        &setup.os_user,
        engine.source_names(),
    );
    guard.echo = true;
    guard.say(format!(
        "started as {identity}: hub {hub_source} namespace {}, a pass every {}s, audit log {}",
        hub.namespace,
        options.interval.as_secs(),
        setup.audit_path.display()
    ));

    let result = if options.once {
        run_once(&mut guard, &mut engine, &hub_source).await
    } else {
        run_loop(&mut guard, &mut engine, options.interval).await
    };
    match guard.release(clock.now()).await {
        Ok(true) => guard.say("released the Lease".into()),
        Ok(false) => {}
        Err(e) => eprintln!("fleetdeck guard: {e}"),
    }
    engine.write_cache(true);
    drop(engine);
    result
}

fn open_audit(path: &Path) -> Result<AuditLog> {
    AuditLog::open(path).map_err(|e| {
        eyre!(
            "audit log {}: {e} (set [audit] file to a writable path)",
            path.display()
        )
    })
}

/// Waits for the first complete picture (the hub listed, and every source tied to the
/// fleet), then one election and one pass.
async fn run_once(guard: &mut Guard, engine: &mut Engine, hub_source: &str) -> Result<()> {
    if let Err(unready) = engine.until_ready(READY_TIMEOUT).await {
        if !engine.store().is_ready(&[hub_source.to_string()]) {
            let why = engine
                .store()
                .sources()
                .find(|s| s.name == hub_source)
                .and_then(|s| s.last_error.clone())
                .unwrap_or_else(|| "no answer".into());
            bail!(
                "{hub_source}: no complete picture within {}s: {why}",
                READY_TIMEOUT.as_secs()
            );
        }
        // The pass withholds releases while a watched source cannot be trusted.
        let late: Vec<String> = unready.silent.into_iter().chain(unready.behind).collect();
        guard.say(format!(
            "no complete picture within {}s from: {}; passing on what is known",
            READY_TIMEOUT.as_secs(),
            late.join(", ")
        ));
    }
    engine.tick();
    let clock = engine.clock().clone();
    match guard.elect(clock.now()).await.map_err(|e| eyre!(e))? {
        Term::Following { .. } => return Ok(()),
        Term::Leading { .. } => {}
    }
    let report = guard.pass(engine.store(), &clock).await;
    if let Some(why) = &report.skipped {
        guard.say(format!("pass skipped: {why}"));
    } else if report.written.is_empty() && report.failed.is_empty() {
        guard.say("pass done: nothing to change".into());
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} write(s) failed: {}",
            report.failed.len(),
            report.failed.join("; ")
        )
    }
}

/// Elects every `RENEW_INTERVAL`, passes every `interval`, folds source events in between,
/// until SIGTERM or SIGINT.
async fn run_loop(guard: &mut Guard, engine: &mut Engine, interval: Duration) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut renew = tokio::time::interval(lease::RENEW_INTERVAL);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut passes = tokio::time::interval(interval);
    passes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Passes wait for the first complete picture (or the ready timeout): a pass on a
    // half-listed fleet would see waves without their clusters.
    let started = tokio::time::Instant::now();
    let clock = engine.clock().clone();
    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                guard.say("SIGTERM: stopping".into());
                return Ok(());
            }
            _ = sigint.recv() => {
                guard.say("SIGINT: stopping".into());
                return Ok(());
            }
            batch = engine.recv(EVENT_BATCH) => if batch.is_none() {
                bail!("every source stopped; the guard cannot see the fleet");
            },
            _ = renew.tick() => {
                // Errors are logged by `elect`; the leader stops acting when its window ends.
                let _ = guard.elect(clock.now()).await;
            }
            _ = passes.tick() => {
                if !engine.is_ready() && started.elapsed() < READY_TIMEOUT {
                    tracing::debug!("pass skipped: the first complete picture is not in yet");
                    continue;
                }
                // Whatever is queued belongs to this pass's picture.
                engine.drain();
                engine.tick();
                let report = guard.pass(engine.store(), &clock).await;
                if let Some(why) = report.skipped {
                    tracing::debug!("pass skipped: {why}");
                }
            }
        }
    }
}
