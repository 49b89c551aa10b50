//! Confirming a runbook step: what will run, the preview (a server-side dry run's answer,
//! or a shell script in full), and a confirmation that grows with the blast radius: `y`/`n`,
//! or the cluster's name typed for a disruptive write on production.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::dialog::DialogOutcome;
use crate::actions::{Action, Confirmation};
use crate::model::Environment;
use crate::ui::Context;

/// The dialog's state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDialog {
    pub action: Action,
    pub environment: Environment,
    /// What the preview said, line by line.
    pub preview: String,
    pub confirmation: Confirmation,
    pub typed: String,
    pub error: Option<String>,
}

impl StepDialog {
    pub fn new(action: Action, environment: Environment, preview: String) -> Self {
        let confirmation = match &action {
            Action::Remediate(r) => r.confirmation(),
            _ => Confirmation::YesNo,
        };
        Self {
            action,
            environment,
            preview,
            confirmation,
            typed: String::new(),
            error: None,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> DialogOutcome {
        match &self.confirmation {
            Confirmation::YesNo => match key.code {
                KeyCode::Char('y' | 'Y') => DialogOutcome::Submit(self.action.clone()),
                KeyCode::Char('n' | 'N') => DialogOutcome::Cancelled,
                _ => DialogOutcome::Open,
            },
            Confirmation::TypeName(name) => match key.code {
                KeyCode::Enter if self.typed == *name => DialogOutcome::Submit(self.action.clone()),
                KeyCode::Enter => {
                    self.error = Some(format!("type the cluster name '{name}' exactly to confirm"));
                    DialogOutcome::Open
                }
                KeyCode::Backspace => {
                    self.typed.pop();
                    DialogOutcome::Open
                }
                KeyCode::Char(c) if self.typed.chars().count() < 100 => {
                    self.typed.push(c);
                    self.error = None;
                    DialogOutcome::Open
                }
                _ => DialogOutcome::Open,
            },
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, ctx: &Context) {
        let t = ctx.theme;
        let env = ctx.env_style(&self.environment);
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", self.action.kind()), t.title),
            Span::styled(self.action.target(), env),
        ])];
        if let Action::Remediate(r) = &self.action
            && let Some(step) = &r.step
        {
            lines.push(Line::from(Span::styled(
                format!("runbook step {step} · environment {}", self.environment),
                t.muted,
            )));
        }
        lines.push(Line::default());
        for l in self.preview.lines() {
            lines.push(Line::from(Span::styled(l.to_string(), t.text)));
        }
        lines.push(Line::default());
        match &self.confirmation {
            Confirmation::YesNo => lines.push(Line::from(Span::styled(
                "y run · n / esc cancel · every run is recorded in the audit log",
                t.muted,
            ))),
            Confirmation::TypeName(name) => {
                lines.push(Line::from(Span::styled(
                    format!("Production: type the cluster name ({name}) and enter to run."),
                    t.warning,
                )));
                lines.push(Line::from(vec![
                    Span::styled("> ", t.title),
                    Span::styled(self.typed.clone(), t.text),
                    Span::styled("_", t.accent),
                ]));
                if let Some(e) = &self.error {
                    lines.push(Line::from(Span::styled(e.clone(), t.critical)));
                }
                lines.push(Line::from(Span::styled(
                    "esc cancel · every run is recorded in the audit log",
                    t.muted,
                )));
            }
        }
        let width = area.width.clamp(20, 100);
        let inner = usize::from(width.saturating_sub(2)).max(1);
        let wrapped: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
        let height = u16::try_from(wrapped + 2)
            .unwrap_or(u16::MAX)
            .min(area.height);
        let [row] = area.layout(&Layout::vertical([Constraint::Length(height)]).flex(Flex::Center));
        let [popup] =
            row.layout(&Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center));
        frame.render_widget(Clear, popup);
        let block = ctx.block(" run runbook step ".into(), Some(&self.environment));
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            popup,
        );
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;
    use crate::actions::Remediation;
    use crate::model::ClusterId;

    fn press(d: &mut StepDialog, code: KeyCode) -> DialogOutcome {
        d.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn production_drain_needs_the_exact_cluster_name() {
        let cluster = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        let drain = Remediation::examples(&cluster, true)
            .into_iter()
            .find(|r| r.op.kind() == "drain")
            .expect("drain");
        let action = Action::Remediate(drain);
        let mut d = StepDialog::new(action.clone(), Environment::Prod, "would drain".into());
        assert_eq!(
            press(&mut d, KeyCode::Char('y')),
            DialogOutcome::Open,
            "y is not enough"
        );
        assert_eq!(press(&mut d, KeyCode::Enter), DialogOutcome::Open);
        assert!(
            d.error
                .as_deref()
                .is_some_and(|e| e.contains("prod-use1-api-01"))
        );
        d.typed.clear();
        for c in "prod-use1-api-0".chars() {
            press(&mut d, KeyCode::Char(c));
        }
        assert_eq!(
            press(&mut d, KeyCode::Enter),
            DialogOutcome::Open,
            "a prefix is not the name"
        );
        press(&mut d, KeyCode::Char('1'));
        assert_eq!(press(&mut d, KeyCode::Enter), DialogOutcome::Submit(action));
    }

    #[test]
    fn outside_production_y_confirms_and_n_cancels() {
        let cluster = ClusterId::new("dev", "us-east-1", "dev-use1-api-01");
        let restart = Remediation::examples(&cluster, false).remove(0);
        let action = Action::Remediate(restart);
        let mut d = StepDialog::new(action.clone(), Environment::Dev, String::new());
        assert_eq!(press(&mut d, KeyCode::Char('n')), DialogOutcome::Cancelled);
        assert_eq!(
            press(&mut d, KeyCode::Char('y')),
            DialogOutcome::Submit(action)
        );
    }
}
