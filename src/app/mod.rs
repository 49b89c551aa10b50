//! The app: owns the store and the UI state, turns keys into actions and source events into
//! store changes, and hands writes to the executor. The loop itself is in `run`.

mod commands;
mod run;
pub mod setup;
mod steps;
mod terminal;

pub use run::run;
pub use setup::Setup;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::Frame;
use tokio::sync::mpsc;

use crate::actions::{self, Action, ExecContext, Mode, Outcome};
use crate::clock::Clock;
use crate::model::{ClusterId, SourceEvent, Store, Timestamp, WaveState};
use crate::runbook::RunbookSet;
use crate::sources::{ClusterTarget, SourceCommand, SourceHandle};
use crate::ui::keymap::{self, KeyAction, ViewId};
use crate::ui::theme::{ColorDepth, Theme};
use crate::ui::widgets::dialog::DialogOutcome;
use crate::ui::{self, Context, Effect, Flash, Glyphs, Input, UiState};

/// How long a status-bar message stays.
const FLASH_FOR: Duration = Duration::from_secs(6);

/// Messages from the app's own background tasks (executors).
#[derive(Debug)]
pub enum AppMessage {
    ActionDone {
        action: Action,
        outcome: Outcome,
    },
    /// A runbook step's preview (dry run) came back.
    StepPreview {
        step: crate::ui::views::alert_runbook::StepRef,
        action: Action,
        result: Result<String, String>,
    },
    /// A progress line of a running step (a drain's evictions).
    StepProgress {
        action: Action,
        line: String,
    },
}

/// The running console's state. Only the loop mutates it.
pub struct App {
    pub store: Store,
    pub ui: UiState,
    pub mode: Mode,
    pub clock: Clock,
    pub theme: Theme,
    pub glyphs: Glyphs,
    pub runbooks: RunbookSet,
    pub demo: bool,
    /// The config allows runbook shell steps (`allow_shell = true`).
    pub allow_shell: bool,
    color_depth: ColorDepth,
    themes_dir: PathBuf,
    audit_path: PathBuf,
    sources: Vec<SourceHandle>,
    exec: Option<ExecContext>,
    messages: mpsc::Sender<AppMessage>,
    focus_sent: Option<ClusterId>,
    /// What the sources were last told about the fleet and the clusters of interest.
    targets_sent: Option<(Vec<ClusterTarget>, Vec<ClusterId>)>,
    /// Store generation and focus the targets were computed from (skip recomputing).
    targets_from: Option<(u64, Option<ClusterId>)>,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
}

impl App {
    /// Builds the app. `exec` is `None` when no write can be executed (viewer mode, tests
    /// of views); `sources` are told which cluster is on screen.
    pub fn new(
        setup: Setup,
        clock: Clock,
        sources: Vec<SourceHandle>,
        exec: Option<ExecContext>,
        messages: mpsc::Sender<AppMessage>,
    ) -> Self {
        let mut ui = UiState::default();
        ui.runbooks.errors = setup.runbook_errors;
        if let Some(notice) = setup.notice {
            ui.flash = Some(Flash {
                text: notice,
                error: false,
                until: Instant::now() + FLASH_FOR * 2,
            });
        }
        if let Some(config) = &setup.config {
            ui.alerts.ack_minutes = config.alerts.ack_minutes;
        }
        let themes_dir = setup.paths.config_dir.join("themes");
        let allow_shell = setup.config.as_ref().is_some_and(|c| c.allow_shell);
        ui.alerts.allow_shell = allow_shell;
        let mut store = Store::new();
        store.set_rollout_plans(setup.plans.clone());
        // Local acks outlive a restart; the demo's clock is not the audit log's.
        if !setup.demo_mode
            && let Ok((entries, _)) = actions::read_audit(&setup.audit_path)
        {
            for (key, ack) in actions::local_acks_in_force(&entries, clock.now()) {
                store.set_local_ack(&key, ack);
            }
        }
        Self {
            store,
            ui,
            mode: setup.mode,
            clock,
            theme: setup.theme,
            glyphs: setup.glyphs,
            runbooks: setup.runbooks,
            demo: setup.demo_mode,
            allow_shell,
            sources,
            color_depth: setup.color_depth,
            themes_dir,
            audit_path: setup.audit_path,
            exec,
            messages,
            focus_sent: None,
            targets_sent: None,
            targets_from: None,
            dirty: true,
            quit: false,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn context(&self) -> Context<'_> {
        Context {
            store: &self.store,
            theme: &self.theme,
            glyphs: &self.glyphs,
            now: self.now(),
            mode: self.mode,
            runbooks: &self.runbooks,
            demo: self.demo,
        }
    }

    /// Draws the current state.
    pub fn render(&self, frame: &mut Frame) {
        ui::render(frame, &self.ui, &self.context());
    }

    /// Folds a source event into the store.
    pub fn apply(&mut self, event: SourceEvent) {
        let now = self.now();
        let news = match &event {
            SourceEvent::Rollout(rollout) => self.new_halts(rollout),
            _ => Vec::new(),
        };
        self.store.apply(event, now);
        // A breaker trip must not wait for someone to look at the Rollouts view.
        if let Some(text) = news.into_iter().next() {
            self.flash(text, true);
        }
        self.dirty = true;
    }

    /// Waves that `rollout` halts and the store does not yet know as halted.
    fn new_halts(&self, rollout: &crate::model::Rollout) -> Vec<String> {
        let before = self
            .store
            .rollouts()
            .iter()
            .find(|r| r.name == rollout.name);
        rollout
            .waves
            .iter()
            .enumerate()
            .filter_map(|(i, wave)| match &wave.state {
                WaveState::Halted { alarm, cluster, .. } => {
                    let was = before
                        .and_then(|r| r.waves.get(i))
                        .is_some_and(|w| matches!(w.state, WaveState::Halted { .. }));
                    (!was).then(|| {
                        format!(
                            "CIRCUIT BREAKER: {} wave {} HALTED: {alarm} fired on {}",
                            rollout.name, wave.name, cluster.name
                        )
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The 1 Hz tick: clocks, countdowns and expiring messages move.
    pub fn on_tick(&mut self) {
        let now = self.now();
        self.store.expire(now);
        self.sync_targets();
        if self
            .ui
            .flash
            .as_ref()
            .is_some_and(|f| f.until <= Instant::now())
        {
            self.ui.flash = None;
        }
        self.dirty = true;
    }

    pub fn on_message(&mut self, message: AppMessage) {
        match message {
            AppMessage::ActionDone { action, outcome } => {
                // A local ack lives in the store; a silence comes back from its source.
                let by = self
                    .exec
                    .as_ref()
                    .map(|e| e.os_user.clone())
                    .unwrap_or_default();
                if outcome.ok
                    && let Some((key, ack)) = action.local_ack_effect(&by, self.now())
                {
                    self.store.set_local_ack(&key, ack);
                }
                let text = if outcome.ok {
                    format!("{}: {}", action.target(), outcome.message)
                } else {
                    format!("{} failed: {}", action.kind(), outcome.message)
                };
                self.ui.alerts.steps.finished(&action, &outcome);
                self.flash(text, !outcome.ok);
                self.reload_audit();
            }
            AppMessage::StepPreview {
                step,
                action,
                result,
            } => self.confirm_step(step, action, result),
            AppMessage::StepProgress { action, line } => {
                self.ui.alerts.steps.progress(&action, &line);
                self.dirty = true;
            }
        }
    }

    pub fn flash(&mut self, text: impl Into<String>, error: bool) {
        self.ui.flash = Some(Flash {
            text: text.into(),
            error,
            until: Instant::now() + FLASH_FOR,
        });
        self.dirty = true;
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        if let Some(dialog) = self.ui.dialog.as_mut() {
            match dialog.on_key(key) {
                DialogOutcome::Open => {}
                DialogOutcome::Cancelled => {
                    self.ui.dialog = None;
                    self.ui.alerts.steps.cancelled();
                    self.flash("cancelled: nothing changed", false);
                }
                DialogOutcome::Submit(action) => {
                    self.ui.dialog = None;
                    self.submit(action);
                }
            }
            return;
        }
        if self.ui.input.is_some() {
            self.on_input_key(key);
            return;
        }
        if let Some(action) = keymap::lookup(self.ui.active(), &key) {
            self.dispatch(action);
        }
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.ui.input.as_mut() else {
            return;
        };
        let text = match input {
            Input::Command(t) | Input::Filter(t) => t,
        };
        match key.code {
            KeyCode::Esc => {
                if matches!(input, Input::Filter(_)) {
                    self.set_filter(String::new());
                }
                self.ui.input = None;
            }
            KeyCode::Enter => {
                let input = self.ui.input.take();
                if let Some(Input::Command(cmd)) = input {
                    self.run_command(&cmd);
                }
            }
            KeyCode::Backspace => {
                text.pop();
                if let Some(Input::Filter(t)) = &self.ui.input {
                    let t = t.clone();
                    self.set_filter(t);
                }
            }
            KeyCode::Char(c) if text.chars().count() < 200 => {
                text.push(c);
                if let Some(Input::Filter(t)) = &self.ui.input {
                    let t = t.clone();
                    self.set_filter(t);
                }
            }
            _ => {}
        }
    }

    fn filter_mut(&mut self) -> Option<&mut String> {
        match self.ui.active() {
            ViewId::Fleet => Some(&mut self.ui.fleet.filter),
            ViewId::Alerts => Some(&mut self.ui.alerts.filter),
            ViewId::Runbooks => Some(&mut self.ui.runbooks.filter),
            ViewId::Audit => Some(&mut self.ui.audit.filter),
            _ => None,
        }
    }

    fn set_filter(&mut self, text: String) {
        if let Some(f) = self.filter_mut() {
            *f = text;
        }
    }

    /// Runs one keymap action.
    pub fn dispatch(&mut self, action: KeyAction) {
        match action {
            KeyAction::Quit => self.quit = true,
            KeyAction::Help => {
                if self.ui.active() != ViewId::Help {
                    self.ui.help.scroll.reset();
                    self.ui.stack.push(ViewId::Help);
                }
            }
            KeyAction::CommandLine => self.ui.input = Some(Input::Command(String::new())),
            KeyAction::Filter => match self.filter_mut() {
                Some(f) => {
                    let current = f.clone();
                    self.ui.input = Some(Input::Filter(current));
                }
                None => self.flash("this view has no filter", false),
            },
            KeyAction::Show(view) => self.show(view),
            other => {
                let effect = {
                    let ctx = Context {
                        store: &self.store,
                        theme: &self.theme,
                        glyphs: &self.glyphs,
                        now: self.clock.now(),
                        mode: self.mode,
                        runbooks: &self.runbooks,
                        demo: self.demo,
                    };
                    match self.ui.active() {
                        ViewId::Fleet => self.ui.fleet.handle(other, &ctx),
                        ViewId::Alerts => self.ui.alerts.handle(other, &ctx),
                        ViewId::Cluster => self.ui.cluster.handle(other, &ctx),
                        ViewId::Rollouts => self.ui.rollouts.handle(other, &ctx),
                        ViewId::Runbooks => self.ui.runbooks.handle(other, &ctx),
                        ViewId::Audit => self.ui.audit.handle(other, &ctx),
                        ViewId::Sources => self.ui.sources.handle(other, &ctx),
                        ViewId::Help => self.ui.help.handle(other),
                    }
                };
                if effect == Effect::Ignored && other == KeyAction::Back {
                    self.back();
                } else {
                    self.apply_effect(effect);
                }
            }
        }
        self.sync_focus();
    }

    fn apply_effect(&mut self, effect: Effect) {
        match effect {
            Effect::None | Effect::Ignored => {}
            Effect::OpenCluster(id) => {
                self.ui.cluster.cluster = Some(id);
                self.ui.cluster.scroll.reset();
                self.push(ViewId::Cluster);
            }
            Effect::OpenRunbook(id) => {
                self.ui.runbooks.show(id);
                self.push(ViewId::Runbooks);
            }
            Effect::Dialog(d) => self.ui.dialog = Some(d),
            Effect::Flash(text) => self.flash(text, false),
            Effect::Error(text) => self.flash(text, true),
            Effect::RunStep(step) => self.run_step(step),
            Effect::Copy(text) => {
                self.flash(format!("copied to your clipboard (OSC 52): {text}"), false);
                self.ui.clipboard = Some(text);
            }
        }
    }

    fn push(&mut self, view: ViewId) {
        if self.ui.active() != view {
            self.ui.stack.push(view);
        }
    }

    fn back(&mut self) {
        if self.ui.stack.len() > 1 {
            self.ui.stack.pop();
        }
    }

    /// Switches to a main view, leaving any drill-down.
    pub fn show(&mut self, view: ViewId) {
        self.ui.stack = vec![view];
        if view == ViewId::Audit {
            self.reload_audit();
        }
        if view == ViewId::Runbooks {
            self.ui.runbooks.open = false;
        }
    }

    /// Tells sources which cluster is on screen, so they fetch its full metric set.
    fn sync_focus(&mut self) {
        let want = (self.ui.active() == ViewId::Cluster)
            .then(|| self.ui.cluster.cluster.clone())
            .flatten();
        if want == self.focus_sent {
            return;
        }
        self.focus_sent = want.clone();
        for source in &self.sources {
            // A full queue only delays the cluster's charts; never block the UI for it.
            let _ = source.commands.try_send(SourceCommand::Focus(want.clone()));
        }
        self.sync_targets();
    }

    /// The clusters whose insides matter now: the one on screen, those with firing alerts,
    /// and those in a rollout's current wave.
    pub fn interest(&self) -> Vec<ClusterId> {
        let mut ids: Vec<ClusterId> = Vec::new();
        if self.ui.active() == ViewId::Cluster
            && let Some(id) = &self.ui.cluster.cluster
        {
            ids.push(id.clone());
        }
        for (i, c) in self.store.clusters().iter().enumerate() {
            if self.store.firing_total(i) > 0 {
                ids.push(c.id.clone());
            }
        }
        for rollout in self.store.rollouts() {
            if let Some(w) = rollout.current_wave() {
                let wave = &rollout.waves[w];
                if !matches!(wave.state, WaveState::Pending) {
                    ids.extend(wave.cells.iter().map(|c| c.cluster.clone()));
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Tells the sources the fleet and the clusters of interest, when either changed.
    fn sync_targets(&mut self) {
        let from = (self.store.generation(), self.focus_sent.clone());
        if self.targets_from.as_ref() == Some(&from) {
            return;
        }
        let fleet: Vec<ClusterTarget> = self
            .store
            .clusters()
            .iter()
            .map(|c| ClusterTarget {
                id: c.id.clone(),
                arn: c.arn.clone(),
                endpoint: c.endpoint.clone(),
                certificate_authority: c.certificate_authority.clone(),
                production: c.environment.is_production(),
            })
            .collect();
        let interest = self.interest();
        let now = (fleet, interest);
        if self.targets_sent.as_ref() == Some(&now) {
            return;
        }
        for source in &self.sources {
            // A full queue only delays the change; the next tick sends it again.
            if source
                .commands
                .try_send(SourceCommand::Targets {
                    fleet: now.0.clone(),
                    interest: now.1.clone(),
                })
                .is_err()
            {
                return;
            }
        }
        self.targets_sent = Some(now);
        self.targets_from = Some(from);
    }

    /// Authorizes and starts a write. The result comes back as `AppMessage::ActionDone`.
    pub fn submit(&mut self, action: Action) {
        let Some((authorized, exec)) = self.authorize(action) else {
            return;
        };
        let action = authorized.action().clone();
        let source = self.source_of(&action);
        self.flash(format!("{} {}…", action.gerund(), action.target()), false);
        self.ui.alerts.steps.started(&action);
        let progress = self.progress_for(&action);
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let outcome = actions::execute_with_progress(authorized, exec, &source, progress).await;
            let _ = messages
                .send(AppMessage::ActionDone { action, outcome })
                .await;
        });
    }

    fn source_of(&self, action: &Action) -> String {
        let rollout = match action {
            Action::PauseWave { rollout, .. }
            | Action::ResumeWave { rollout, .. }
            | Action::GuardHold { rollout, .. }
            | Action::GuardRelease { rollout, .. } => rollout,
            Action::Remediate(r) => return self.remediation_source(r),
            // The demo simulates its Alertmanager itself.
            Action::AckAlert { .. } | Action::UnackAlert { .. } if self.demo => {
                return crate::sources::demo::SOURCE_NAME.into();
            }
            Action::AckAlert { .. } | Action::UnackAlert { .. } => {
                return crate::sources::alertmanager::SOURCE_NAME.into();
            }
        };
        self.store
            .rollouts()
            .iter()
            .find(|r| &r.name == rollout)
            .map(|r| r.source.clone())
            .unwrap_or_default()
    }

    /// Re-reads the audit file for the Audit view (I/O here, never in render).
    pub fn reload_audit(&mut self) {
        let audit = &mut self.ui.audit;
        audit.path = self.audit_path.display().to_string();
        match actions::read_audit_tail(&self.audit_path, actions::AUDIT_TAIL_BYTES) {
            Ok(tail) => {
                audit.entries = tail.entries;
                audit.bad_lines = tail.bad_lines;
                audit.skipped_bytes = tail.skipped_bytes;
                audit.load_error = None;
            }
            Err(e) => audit.load_error = Some(e.to_string()),
        }
        self.dirty = true;
    }

    /// Switches theme live (`:theme NAME`).
    pub fn set_theme(&mut self, name: &str) -> Result<(), String> {
        let theme = Theme::load(name, Some(&self.themes_dir)).map_err(|e| e.to_string())?;
        self.theme = theme.for_depth(self.color_depth);
        Ok(())
    }
}
