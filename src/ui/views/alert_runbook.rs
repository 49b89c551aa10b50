//! The runbook pane of the Alerts view: the runbook(s) matching the selected alert, beside
//! it, with each runnable step, its parameters filled in from the alert, its state (not
//! run, previewing, awaiting confirmation, running, done, failed) and its output. The
//! alert's own `runbook_url` is a terminal hyperlink (OSC 8) and `y` copies it (OSC 52).

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::actions::{Action, Outcome};
use crate::model::{Alert, AlertKey};
use crate::runbook::{Runbook, plan};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::markdown::markdown_text;
use crate::ui::widgets::scroll::Scroll;
use crate::ui::widgets::terminal_link::TerminalLink;
use crate::ui::{Context, Effect};

/// Output lines kept per step (a drain's progress can be long).
const OUTPUT_KEPT: usize = 50;
/// Output lines shown under a step.
const OUTPUT_SHOWN: usize = 4;

/// One step of one runbook for one alert.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepRef {
    pub alert: AlertKey,
    pub runbook: String,
    /// The step's line in its file: stable while the runbook is loaded.
    pub line: usize,
}

/// Where a step stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StepState {
    #[default]
    NotRun,
    /// The dry run is on its way.
    Previewing,
    /// The confirmation dialog is open for this action.
    Confirming(Action),
    Running(Action),
    Done(String),
    Failed(String),
}

impl StepState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotRun => "not run",
            Self::Previewing => "previewing",
            Self::Confirming(_) => "confirm?",
            Self::Running(_) => "running",
            Self::Done(_) => "done",
            Self::Failed(_) => "failed",
        }
    }
}

/// A step's state and what it printed.
#[derive(Clone, Debug, Default)]
pub struct StepRun {
    pub state: StepState,
    pub output: Vec<String>,
}

/// Every step that was touched in this session.
#[derive(Debug, Default)]
pub struct StepRuns {
    runs: BTreeMap<StepRef, StepRun>,
}

impl StepRuns {
    pub fn get(&self, step: &StepRef) -> Option<&StepRun> {
        self.runs.get(step)
    }

    /// Sets a step's state; a new attempt starts with empty output.
    pub fn set(&mut self, step: StepRef, state: StepState) {
        let run = self.runs.entry(step).or_default();
        if matches!(state, StepState::Previewing) {
            run.output.clear();
        }
        if let StepState::Failed(message) | StepState::Done(message) = &state {
            push(&mut run.output, message);
        }
        run.state = state;
    }

    /// The step waiting for confirmation of `action` is running now.
    pub fn started(&mut self, action: &Action) {
        for run in self.runs.values_mut() {
            if run.state == StepState::Confirming(action.clone()) {
                run.state = StepState::Running(action.clone());
            }
        }
    }

    /// A confirmation was cancelled: its step is back to not run.
    pub fn cancelled(&mut self) {
        for run in self.runs.values_mut() {
            if matches!(run.state, StepState::Confirming(_)) {
                run.state = StepState::NotRun;
                push(&mut run.output, "cancelled: nothing changed");
            }
        }
    }

    /// A progress line of the running `action`.
    pub fn progress(&mut self, action: &Action, line: &str) {
        for run in self.runs.values_mut() {
            if run.state == StepState::Running(action.clone()) {
                push(&mut run.output, line);
            }
        }
    }

    /// The running `action` ended.
    pub fn finished(&mut self, action: &Action, outcome: &Outcome) {
        for run in self.runs.values_mut() {
            if run.state == StepState::Running(action.clone()) {
                push(&mut run.output, &outcome.message);
                run.state = if outcome.ok {
                    StepState::Done(outcome.message.clone())
                } else {
                    StepState::Failed(outcome.message.clone())
                };
            }
        }
    }
}

fn push(output: &mut Vec<String>, text: &str) {
    output.extend(text.lines().map(str::to_string));
    let excess = output.len().saturating_sub(OUTPUT_KEPT);
    output.drain(..excess);
}

/// The open pane: which alert, which of its runbooks, which step.
#[derive(Debug)]
pub struct RunbookPane {
    pub alert: AlertKey,
    pub runbook: usize,
    pub step: usize,
    pub scroll: Scroll,
    /// Where the last draw put the alert's `runbook_url` (presentation memo for OSC 8).
    pub link: std::cell::RefCell<Option<TerminalLink>>,
}

impl RunbookPane {
    pub fn new(alert: AlertKey) -> Self {
        Self {
            alert,
            runbook: 0,
            step: 0,
            scroll: Scroll::default(),
            link: std::cell::RefCell::new(None),
        }
    }

    /// The alert and the runbook shown, if both still exist.
    pub fn current<'a>(&self, ctx: &Context<'a>) -> Option<(&'a Alert, Option<&'a Runbook>)> {
        let alert = ctx.store.alert(&self.alert)?;
        let matching = ctx.runbooks.matching(alert);
        Some((alert, matching.get(self.runbook).copied()))
    }

    /// Keys while the pane is open.
    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        let Some((alert, runbook)) = self.current(ctx) else {
            return Effect::Ignored;
        };
        let steps = runbook.map_or(0, |r| r.steps.len());
        match action {
            KeyAction::Up => self.step = self.step.saturating_sub(1),
            KeyAction::Down if self.step + 1 < steps => self.step += 1,
            KeyAction::Down => {}
            KeyAction::PageUp | KeyAction::PageDown | KeyAction::Top | KeyAction::Bottom => {
                self.scroll.handle(action);
            }
            KeyAction::NextRunbook => {
                let n = ctx.runbooks.matching(alert).len();
                if n > 1 {
                    self.runbook = (self.runbook + 1) % n;
                    self.step = 0;
                    self.scroll.reset();
                } else {
                    return Effect::Flash("only one runbook matches this alert".into());
                }
            }
            KeyAction::RunStep => {
                let Some(rb) = runbook else {
                    return Effect::Flash("no local runbook matches this alert".into());
                };
                let Some(step) = rb.steps.get(self.step) else {
                    return Effect::Flash("this runbook has no runnable step".into());
                };
                return Effect::RunStep(StepRef {
                    alert: alert.key.clone(),
                    runbook: rb.id.clone(),
                    line: step.line,
                });
            }
            KeyAction::CopyLink => {
                return match &alert.runbook_url {
                    Some(url) => Effect::Copy(url.clone()),
                    None => Effect::Flash("this alert has no runbook_url".into()),
                };
            }
            KeyAction::OpenRunbook => {
                return match runbook {
                    Some(rb) => Effect::OpenRunbook(rb.id.clone()),
                    None => Effect::Flash("no local runbook matches this alert".into()),
                };
            }
            KeyAction::OpenCluster => {
                return match &alert.cluster {
                    Some(c) => Effect::OpenCluster(c.clone()),
                    None => Effect::Flash("this alert is not tied to a cluster".into()),
                };
            }
            _ => return Effect::Ignored,
        }
        Effect::None
    }
}

/// Draws the pane for the alert and runbook it shows.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    pane: &RunbookPane,
    alerts: &super::alerts::AlertsState,
    ctx: &Context,
) {
    let runs = &alerts.steps;
    let t = ctx.theme;
    let Some((alert, runbook)) = pane.current(ctx) else {
        let block = ctx.block(" runbook ".into(), None);
        frame.render_widget(
            Paragraph::new("the alert is gone (resolved and expired)").block(block),
            area,
        );
        return;
    };
    let env = alert
        .cluster
        .as_ref()
        .and_then(|c| ctx.store.cluster(c))
        .map(|c| &c.environment);
    let count = ctx.runbooks.matching(alert).len();
    let title = match runbook {
        Some(rb) if count > 1 => format!(" runbook {}/{count}: {} ", pane.runbook + 1, rb.title),
        Some(rb) => format!(" runbook: {} ", rb.title),
        None => " no local runbook ".into(),
    };
    let block = ctx.block(title, env);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let cluster = alert
        .cluster
        .as_ref()
        .map_or("-".into(), |c| c.name.clone());
    let mut head = vec![Line::from(vec![
        Span::styled(
            format!("{} ", alert.severity.as_str().to_uppercase()),
            t.title,
        ),
        Span::styled(alert.name.clone(), t.text),
        Span::styled(format!(" on {cluster}"), t.muted),
    ])];
    let link_row = alert.runbook_url.as_ref().map(|url| {
        head.push(Line::from(vec![
            Span::styled("link: ", t.muted),
            Span::styled(url.clone(), t.accent),
        ]));
        (head.len() - 1, url)
    });
    let mut steps: Vec<Line> = Vec::new();
    if let Some(rb) = runbook {
        if rb.steps.is_empty() {
            steps.push(Line::from(Span::styled("no runnable step", t.muted)));
        } else {
            steps.push(Line::from(Span::styled(
                "STEPS  (x runs the selected one)",
                t.title,
            )));
        }
        for (i, step) in rb.steps.iter().enumerate() {
            let run = runs.get(&StepRef {
                alert: alert.key.clone(),
                runbook: rb.id.clone(),
                line: step.line,
            });
            let state = run.map(|r| &r.state).cloned().unwrap_or_default();
            let state_style = match state {
                StepState::Done(_) => t.ok,
                StepState::Failed(_) => t.critical,
                StepState::NotRun => t.muted,
                _ => t.warning,
            };
            let marker = if i == pane.step {
                ctx.glyphs.selected
            } else {
                "  "
            };
            let planned = plan::plan(rb, step, alert, ctx.store, alerts.allow_shell);
            let what = match &planned {
                Ok(action) => format!("{} {}", action.kind(), action.target()),
                Err(_) => step.action.clone(),
            };
            let row_style = if i == pane.step { t.selection } else { t.text };
            // State first: it stays visible when a long target is cut at the edge.
            steps.push(Line::from(vec![
                Span::styled(format!("{marker}{}. ", i + 1), row_style),
                Span::styled(format!("[{}] ", state.label()), state_style),
                Span::styled(what, row_style),
            ]));
            if let Err(e) = planned {
                steps.push(Line::from(Span::styled(
                    format!("     cannot run: {e}"),
                    t.critical,
                )));
            }
            if let Some(run) = run {
                let skip = run.output.len().saturating_sub(OUTPUT_SHOWN);
                for line in &run.output[skip..] {
                    steps.push(Line::from(Span::styled(format!("     {line}"), t.muted)));
                }
            }
        }
    } else {
        steps.push(Line::from(Span::styled(
            "No runbook in runbooks/ or your config directory matches this alert.",
            t.muted,
        )));
    }

    let head_h = u16::try_from(head.len()).unwrap_or(1);
    let steps_h = u16::try_from(steps.len())
        .unwrap_or(u16::MAX)
        .min(inner.height.saturating_sub(head_h) / 2 + 1);
    let [head_area, steps_area, body_area] = inner.layout(&Layout::vertical([
        Constraint::Length(head_h),
        Constraint::Length(steps_h),
        Constraint::Min(0),
    ]));
    frame.render_widget(Paragraph::new(head), head_area);
    // The URL's text as drawn, for the loop to make it a hyperlink (OSC 8).
    let link = link_row.and_then(|(row, url)| {
        let y = head_area.y + u16::try_from(row).ok()?;
        let room = usize::from(head_area.width.saturating_sub(6));
        (y < head_area.bottom() && room > 0).then(|| TerminalLink {
            x: head_area.x + 6,
            y,
            text: url.chars().take(room).collect(),
            url: url.clone(),
        })
    });
    *pane.link.borrow_mut() = link;
    // The step list keeps the selected step in sight.
    let offset = (pane.step + 2).saturating_sub(usize::from(steps_h));
    frame.render_widget(
        Paragraph::new(steps).scroll((u16::try_from(offset).unwrap_or(0), 0)),
        steps_area,
    );
    if let Some(rb) = runbook {
        let text = markdown_text(&rb.body, t, ctx.glyphs.ascii);
        let width = usize::from(body_area.width).max(1);
        let wrapped: usize = text
            .lines
            .iter()
            .map(|l| l.width().div_ceil(width).max(1))
            .sum();
        let scroll = pane.scroll.at(wrapped, body_area.height);
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0)),
            body_area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Remediation;
    use crate::model::ClusterId;

    fn step(line: usize) -> StepRef {
        StepRef {
            alert: AlertKey("cloudwatch:prod/us-east-1/a:node-not-ready:n".into()),
            runbook: "node-not-ready".into(),
            line,
        }
    }

    fn drain() -> Action {
        let c = ClusterId::new("prod", "us-east-1", "a");
        Action::Remediate(
            Remediation::examples(&c, true)
                .into_iter()
                .find(|r| r.op.kind() == "drain")
                .expect("drain"),
        )
    }

    fn outcome(ok: bool, message: &str) -> Outcome {
        Outcome {
            time: chrono::DateTime::UNIX_EPOCH,
            ok,
            message: message.into(),
        }
    }

    #[test]
    fn a_step_goes_from_preview_to_confirm_to_running_with_progress_to_done() {
        let mut runs = StepRuns::default();
        runs.set(step(90), StepState::Previewing);
        runs.set(step(90), StepState::Confirming(drain()));
        // Another step's confirmation is not this one's.
        runs.set(step(95), StepState::NotRun);
        runs.started(&drain());
        assert_eq!(
            runs.get(&step(90)).map(|r| &r.state),
            Some(&StepState::Running(drain()))
        );
        assert_eq!(
            runs.get(&step(95)).map(|r| &r.state),
            Some(&StepState::NotRun)
        );
        runs.progress(&drain(), "evicted kube-system/coredns-x");
        runs.finished(&drain(), &outcome(true, "drained node a"));
        let run = runs.get(&step(90)).expect("run");
        assert_eq!(run.state, StepState::Done("drained node a".into()));
        assert_eq!(
            run.output,
            ["evicted kube-system/coredns-x", "drained node a"]
        );
        // A second attempt starts with a clean slate; a cancelled confirmation is not run.
        runs.set(step(90), StepState::Previewing);
        assert!(runs.get(&step(90)).expect("run").output.is_empty());
        runs.set(step(90), StepState::Confirming(drain()));
        runs.cancelled();
        let run = runs.get(&step(90)).expect("run");
        assert_eq!(run.state, StepState::NotRun);
        assert_eq!(run.output, ["cancelled: nothing changed"]);
    }

    #[test]
    fn a_failure_keeps_its_message_and_long_output_keeps_its_end() {
        let mut runs = StepRuns::default();
        runs.set(step(1), StepState::Confirming(drain()));
        runs.started(&drain());
        for i in 0..(OUTPUT_KEPT + 5) {
            runs.progress(&drain(), &format!("line {i}"));
        }
        runs.finished(&drain(), &outcome(false, "timed out after 300s"));
        let run = runs.get(&step(1)).expect("run");
        assert_eq!(run.state, StepState::Failed("timed out after 300s".into()));
        assert_eq!(run.output.len(), OUTPUT_KEPT);
        assert_eq!(
            run.output.last().map(String::as_str),
            Some("timed out after 300s")
        );
    }
}
