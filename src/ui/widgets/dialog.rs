//! Confirmation dialogs. Confirmation is data: a dialog holds the action it will submit.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::actions::Action;
use crate::model::Environment;
use crate::ui::Context;

/// A dialog asking the operator to confirm a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Dialog {
    /// Pausing asks for a reason; `enter` confirms, `esc` cancels.
    PauseReason {
        rollout: String,
        wave: usize,
        wave_name: String,
        environment: Environment,
        in_flight: usize,
        /// What the pause will hold, in plain words.
        effect: String,
        reason: String,
        error: Option<String>,
    },
    /// Resuming asks y/n.
    ConfirmResume {
        rollout: String,
        wave: usize,
        wave_name: String,
        environment: Environment,
        held: String,
        /// What resuming will set moving, in plain words.
        consequence: String,
    },
    /// A runbook step: its preview, then y/n or the cluster name typed.
    Step(Box<super::step_dialog::StepDialog>),
    /// A y/n question that submits `action` on `y` (acks, un-acks).
    Confirm {
        title: String,
        environment: Option<Environment>,
        /// The question, then what will happen, one line each.
        lines: Vec<String>,
        /// What `y` does, for the key hint: "y ack".
        yes: String,
        action: Action,
    },
}

/// What a key did to the dialog.
#[derive(Debug, PartialEq)]
pub enum DialogOutcome {
    Open,
    Cancelled,
    Submit(Action),
}

impl Dialog {
    pub fn on_key(&mut self, key: KeyEvent) -> DialogOutcome {
        if key.code == KeyCode::Esc
            || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
        {
            return DialogOutcome::Cancelled;
        }
        match self {
            Dialog::Step(step) => step.on_key(key),
            Dialog::PauseReason {
                rollout,
                wave,
                wave_name,
                reason,
                error,
                ..
            } => match key.code {
                KeyCode::Enter if reason.trim().is_empty() => {
                    *error = Some(
                        "a reason is required: it is shown to everyone who sees the wave".into(),
                    );
                    DialogOutcome::Open
                }
                KeyCode::Enter => DialogOutcome::Submit(Action::PauseWave {
                    rollout: rollout.clone(),
                    wave: *wave,
                    wave_name: wave_name.clone(),
                    reason: reason.trim().to_string(),
                }),
                KeyCode::Backspace => {
                    reason.pop();
                    DialogOutcome::Open
                }
                KeyCode::Char(c) if reason.chars().count() < 200 => {
                    reason.push(c);
                    *error = None;
                    DialogOutcome::Open
                }
                _ => DialogOutcome::Open,
            },
            Dialog::ConfirmResume {
                rollout,
                wave,
                wave_name,
                ..
            } => match key.code {
                KeyCode::Char('y' | 'Y') => DialogOutcome::Submit(Action::ResumeWave {
                    rollout: rollout.clone(),
                    wave: *wave,
                    wave_name: wave_name.clone(),
                }),
                KeyCode::Char('n' | 'N') => DialogOutcome::Cancelled,
                _ => DialogOutcome::Open,
            },
            Dialog::Confirm { action, .. } => match key.code {
                KeyCode::Char('y' | 'Y') => DialogOutcome::Submit(action.clone()),
                KeyCode::Char('n' | 'N') => DialogOutcome::Cancelled,
                _ => DialogOutcome::Open,
            },
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, ctx: &Context) {
        let t = ctx.theme;
        let (title, env, lines) = match self {
            Dialog::Step(step) => return step.render(frame, area, ctx),
            Dialog::PauseReason {
                rollout,
                wave_name,
                environment,
                in_flight,
                effect,
                reason,
                error,
                ..
            } => {
                let mut lines = vec![
                    Line::from(vec![
                        Span::styled("Pause wave ", t.text),
                        Span::styled(wave_name.clone(), ctx.env_style(environment)),
                        Span::styled(format!(" of {rollout}"), t.text),
                    ]),
                    Line::from(Span::styled(effect.clone(), t.muted)),
                ];
                if *in_flight > 0 {
                    lines.push(Line::from(Span::styled(
                        format!("{in_flight} cell(s) in flight now will finish."),
                        t.warning,
                    )));
                }
                lines.push(Line::default());
                lines.push(Line::from(vec![
                    Span::styled("Reason: ", t.title),
                    Span::styled(reason.clone(), t.text),
                    Span::styled("_", t.accent),
                ]));
                if let Some(e) = error {
                    lines.push(Line::from(Span::styled(e.clone(), t.critical)));
                }
                lines.push(Line::from(Span::styled(
                    "enter pause · esc cancel",
                    t.muted,
                )));
                ("pause wave", environment, lines)
            }
            Dialog::ConfirmResume {
                rollout,
                wave_name,
                environment,
                held,
                consequence,
                ..
            } => (
                "resume wave",
                environment,
                vec![
                    Line::from(vec![
                        Span::styled("Resume wave ", t.text),
                        Span::styled(wave_name.clone(), ctx.env_style(environment)),
                        Span::styled(format!(" of {rollout}?"), t.text),
                    ]),
                    Line::from(Span::styled(format!("Held: {held}"), t.muted)),
                    Line::from(Span::styled(consequence.clone(), t.warning)),
                    Line::default(),
                    Line::from(Span::styled("y resume · n / esc cancel", t.muted)),
                ],
            ),
            Dialog::Confirm {
                title,
                environment,
                lines,
                yes,
                ..
            } => {
                let mut text: Vec<Line> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        Line::from(Span::styled(
                            l.clone(),
                            if i == 0 { t.text } else { t.muted },
                        ))
                    })
                    .collect();
                text.push(Line::default());
                text.push(Line::from(Span::styled(
                    format!("{yes} · n / esc cancel"),
                    t.muted,
                )));
                return popup(frame, area, ctx, title, environment.as_ref(), text);
            }
        };
        popup(frame, area, ctx, title, Some(env), lines);
    }
}

/// Draws a dialog box centred in `area`.
fn popup(
    frame: &mut Frame,
    area: Rect,
    ctx: &Context,
    title: &str,
    env: Option<&Environment>,
    lines: Vec<Line<'static>>,
) {
    let width = area.width.clamp(20, 72);
    let height = (lines.len() as u16 + 4).min(area.height);
    let [row] = area.layout(&Layout::vertical([Constraint::Length(height)]).flex(Flex::Center));
    let [popup] = row.layout(&Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center));
    frame.render_widget(Clear, popup);
    let block = ctx.block(format!(" {title} "), env);
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(d: &mut Dialog, code: KeyCode) -> DialogOutcome {
        d.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn pause_dialog() -> Dialog {
        Dialog::PauseReason {
            rollout: "eks-1-31-upgrade".into(),
            wave: 3,
            wave_name: "prod-1".into(),
            environment: Environment::Prod,
            in_flight: 2,
            effect: "No new cluster in this wave will start.".into(),
            reason: String::new(),
            error: None,
        }
    }

    #[test]
    fn pause_needs_a_reason_then_submits_it() {
        let mut d = pause_dialog();
        assert_eq!(press(&mut d, KeyCode::Enter), DialogOutcome::Open);
        assert!(matches!(&d, Dialog::PauseReason { error: Some(_), .. }));
        for c in "INC-1 ".chars() {
            press(&mut d, KeyCode::Char(c));
        }
        assert_eq!(
            press(&mut d, KeyCode::Enter),
            DialogOutcome::Submit(Action::PauseWave {
                rollout: "eks-1-31-upgrade".into(),
                wave: 3,
                wave_name: "prod-1".into(),
                reason: "INC-1".into(),
            })
        );
    }

    #[test]
    fn esc_cancels_and_resume_takes_y_or_n() {
        let mut d = pause_dialog();
        assert_eq!(press(&mut d, KeyCode::Esc), DialogOutcome::Cancelled);
        let mut r = Dialog::ConfirmResume {
            rollout: "r".into(),
            wave: 1,
            wave_name: "dev".into(),
            environment: Environment::Dev,
            held: "paused by alice".into(),
            consequence: "2 clusters waiting in dev will start updating.".into(),
        };
        assert_eq!(press(&mut r, KeyCode::Char('x')), DialogOutcome::Open);
        assert_eq!(press(&mut r, KeyCode::Char('n')), DialogOutcome::Cancelled);
        assert!(matches!(
            press(&mut r, KeyCode::Char('y')),
            DialogOutcome::Submit(Action::ResumeWave { .. })
        ));
    }
}
