//! Running a runbook step from the Alerts view: plan it from the alert, authorize it,
//! preview it (server-side dry run), open the confirmation, then submit it through the one
//! executor path, which audits it. Step states and output follow in the pane.

use super::{App, AppMessage};
use crate::actions::{Action, Operation};
use crate::model::Environment;
use crate::runbook::plan;
use crate::ui::views::alert_runbook::{StepRef, StepState};
use crate::ui::widgets::dialog::Dialog;
use crate::ui::widgets::step_dialog::StepDialog;

/// Progress lines a running step may queue before the oldest wait.
const PROGRESS_CAPACITY: usize = 64;

impl App {
    /// `x` on a step: plan, authorize, then preview (or, for a wave, confirm at once).
    pub fn run_step(&mut self, step: StepRef) {
        let planned = (|| {
            let alert = self
                .engine
                .store()
                .alert(&step.alert)
                .ok_or("the alert is gone")?;
            let rb = self
                .runbooks
                .get(&step.runbook)
                .ok_or("the runbook is no longer loaded")?;
            let s = rb
                .steps
                .iter()
                .find(|s| s.line == step.line)
                .ok_or("the step is no longer in the runbook")?;
            plan::plan(rb, s, alert, self.engine.store(), self.allow_shell)
        })();
        // A script would run on this machine against real credentials, not the simulator.
        let planned = planned.and_then(|action| match &action {
            Action::Remediate(r) if self.engine.demo() && matches!(r.op, Operation::Shell { .. }) => {
                Err("shell steps are not run on the demo fleet: they would run on this machine, not in the simulator".to_string())
            }
            _ => Ok(action),
        });
        let action = match planned {
            Ok(action) => action,
            Err(e) => {
                let text = format!("step not run: {e}");
                self.ui
                    .alerts
                    .steps
                    .set(step, StepState::Failed(text.clone()));
                self.flash(text, true);
                return;
            }
        };
        // Refused here (viewer, RBAC) before any call; authorized again on submit.
        let Some((authorized, exec)) = self.authorize(action.clone()) else {
            return;
        };
        if !matches!(action, Action::Remediate(_)) {
            // Pause and resume change only fleetdeck's hold on the wave: y/n, no preview.
            let preview = format!(
                "{} {}: {}",
                action.kind(),
                action.target(),
                "no dry run needed: this changes only the rollout's hold"
            );
            self.confirm_step(step, action, Ok(preview));
            return;
        }
        self.ui
            .alerts
            .steps
            .set(step.clone(), StepState::Previewing);
        let preview = self.engine.preview(authorized, exec);
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let result = preview.await;
            let _ = messages
                .send(AppMessage::StepPreview {
                    step,
                    action,
                    result,
                })
                .await;
        });
    }

    /// The preview came back: open the confirmation, or say why the step cannot run.
    pub(super) fn confirm_step(
        &mut self,
        step: StepRef,
        action: Action,
        result: Result<String, String>,
    ) {
        match result {
            Err(e) => {
                let text = format!("preview refused, nothing changed: {e}");
                self.ui
                    .alerts
                    .steps
                    .set(step, StepState::Failed(text.clone()));
                self.flash(text, true);
            }
            Ok(preview) => {
                let environment = action
                    .cluster()
                    .and_then(|c| self.engine.store().cluster(c))
                    .and_then(|c| c.known_environment().cloned())
                    .unwrap_or_else(|| Environment::Other("unknown".into()));
                self.ui
                    .alerts
                    .steps
                    .set(step, StepState::Confirming(action.clone()));
                self.ui.dialog = Some(Dialog::Step(Box::new(StepDialog::new(
                    action,
                    environment,
                    preview,
                ))));
                self.dirty = true;
            }
        }
    }

    /// A channel for the progress of `action`, forwarded to the app as messages.
    pub(super) fn progress_for(
        &self,
        action: &Action,
    ) -> Option<tokio::sync::mpsc::Sender<String>> {
        if !matches!(action, Action::Remediate(_)) {
            return None;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(PROGRESS_CAPACITY);
        let messages = self.messages.clone();
        let action = action.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let message = AppMessage::StepProgress {
                    action: action.clone(),
                    line,
                };
                if messages.send(message).await.is_err() {
                    return;
                }
            }
        });
        Some(tx)
    }
}
