//! The console: the UI state on top of the engine (which owns the sources and the store).
//! It turns keys into actions and hands writes to the engine's executor. The loop itself
//! is in `run`.

mod commands;
mod run;
pub mod setup;
mod steps;
mod terminal;

pub use run::run;
pub use setup::Setup;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::Frame;
use tokio::sync::mpsc;

use crate::actions::{self, Action, Mode, Outcome};
use crate::engine::Engine;
use crate::model::{SourceEvent, Store, Timestamp, WaveState};
use crate::runbook::RunbookSet;
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
    /// The sources and the picture; the console adds keys and frames.
    pub engine: Engine,
    pub ui: UiState,
    pub theme: Theme,
    pub glyphs: Glyphs,
    pub runbooks: RunbookSet,
    /// The config allows runbook shell steps (`allow_shell = true`).
    pub allow_shell: bool,
    color_depth: ColorDepth,
    themes_dir: PathBuf,
    audit_path: PathBuf,
    messages: mpsc::Sender<AppMessage>,
    /// Waves known as halted by a circuit breaker, to announce each new trip once.
    halted: BTreeSet<(String, usize)>,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
}

impl App {
    /// Builds the console on `engine`; writes go through the engine's executor, if it has
    /// one (operators), and their outcomes come back on `messages`.
    pub fn new(setup: Setup, engine: Engine, messages: mpsc::Sender<AppMessage>) -> Self {
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
        Self {
            engine,
            ui,
            theme: setup.theme,
            glyphs: setup.glyphs,
            runbooks: setup.runbooks,
            allow_shell,
            color_depth: setup.color_depth,
            themes_dir,
            audit_path: setup.audit_path,
            messages,
            halted: BTreeSet::new(),
            dirty: true,
            quit: false,
        }
    }

    /// The picture the console shows.
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    pub fn now(&self) -> Timestamp {
        self.engine.now()
    }

    pub fn mode(&self) -> Mode {
        self.engine.mode()
    }

    /// Whether the picture is the simulated demo fleet.
    pub fn demo(&self) -> bool {
        self.engine.demo()
    }

    fn context(&self) -> Context<'_> {
        Context {
            store: self.engine.store(),
            theme: &self.theme,
            glyphs: &self.glyphs,
            now: self.now(),
            mode: self.mode(),
            runbooks: &self.runbooks,
            demo: self.demo(),
        }
    }

    /// Draws the current state.
    pub fn render(&self, frame: &mut Frame) {
        ui::render(frame, &self.ui, &self.context());
    }

    /// Folds a source event into the picture (tests feed events this way).
    pub fn apply(&mut self, event: SourceEvent) {
        self.engine.apply(event);
        self.after_events();
    }

    /// What follows new events: a breaker trip is announced at once, not when someone
    /// looks at the Rollouts view.
    pub fn after_events(&mut self) {
        if let Some(text) = self.new_halts().into_iter().next() {
            self.flash(text, true);
        }
        self.dirty = true;
    }

    /// Waves halted now that were not at the last look, in words.
    fn new_halts(&mut self) -> Vec<String> {
        let mut now = BTreeSet::new();
        let mut news = Vec::new();
        for rollout in self.engine.store().rollouts() {
            for (i, wave) in rollout.waves.iter().enumerate() {
                if let WaveState::Halted { alarm, cluster, .. } = &wave.state {
                    let key = (rollout.name.clone(), i);
                    if !self.halted.contains(&key) {
                        news.push(format!(
                            "CIRCUIT BREAKER: {} wave {} HALTED: {alarm} fired on {}",
                            rollout.name, wave.name, cluster.name
                        ));
                    }
                    now.insert(key);
                }
            }
        }
        self.halted = now;
        news
    }

    /// The 1 Hz tick: clocks, countdowns and expiring messages move.
    pub fn on_tick(&mut self) {
        self.engine.tick();
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
                self.engine.finished(&action, &outcome);
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
                        store: self.engine.store(),
                        theme: &self.theme,
                        glyphs: &self.glyphs,
                        now: self.engine.now(),
                        mode: self.engine.mode(),
                        runbooks: &self.runbooks,
                        demo: self.engine.demo(),
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

    /// Tells the engine which cluster is on screen, so sources fetch its full metric set
    /// and connect to it.
    fn sync_focus(&mut self) {
        let want = (self.ui.active() == ViewId::Cluster)
            .then(|| self.ui.cluster.cluster.clone())
            .flatten();
        self.engine.set_focus(want);
    }

    /// The one authorization point, through the engine. A refusal (or no executor, in
    /// tests of views) is said on the status bar.
    pub(super) fn authorize(
        &mut self,
        action: Action,
    ) -> Option<(actions::Authorized, actions::ExecContext)> {
        match self.engine.authorize(action) {
            Ok(pair) => Some(pair),
            Err(reason) => {
                self.flash(reason, true);
                None
            }
        }
    }

    /// Authorizes and starts a write. The result comes back as `AppMessage::ActionDone`.
    pub fn submit(&mut self, action: Action) {
        let Some((authorized, exec)) = self.authorize(action) else {
            return;
        };
        let action = authorized.action().clone();
        self.flash(format!("{} {}…", action.gerund(), action.target()), false);
        self.ui.alerts.steps.started(&action);
        let progress = self.progress_for(&action);
        let run = self.engine.execute(authorized, exec, progress);
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let outcome = run.await;
            let _ = messages
                .send(AppMessage::ActionDone { action, outcome })
                .await;
        });
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
