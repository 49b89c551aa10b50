//! Running a runbook step from the Alerts view: plan it from the alert, authorize it,
//! preview it (server-side dry run), open the confirmation, then submit it through the one
//! executor path, which audits it. Step states and output follow in the pane.

use super::{App, AppMessage};
use crate::actions::{self, Action, Operation, Remediation};
use crate::model::Environment;
use crate::runbook::plan;
use crate::sources::{demo, kube};
use crate::ui::views::alert_runbook::{StepRef, StepState};
use crate::ui::widgets::dialog::Dialog;
use crate::ui::widgets::step_dialog::StepDialog;

/// Progress lines a running step may queue before the oldest wait.
const PROGRESS_CAPACITY: usize = 64;

impl App {
    /// The one authorization point, with what the app knows: its mode, and the API
    /// server's answer on this permission for the action's cluster. A refusal (or no
    /// executor, in tests of views) is said on the status bar.
    pub(super) fn authorize(
        &mut self,
        action: Action,
    ) -> Option<(actions::Authorized, actions::ExecContext)> {
        let permission = self
            .store
            .permission(action.permission_kind(), action.cluster());
        let authorized = match actions::authorize(self.mode, permission, action) {
            Ok(a) => a,
            Err(denied) => {
                self.flash(denied.reason, true);
                return None;
            }
        };
        let Some(exec) = self.exec.clone() else {
            self.flash("no source can carry out actions here", true);
            return None;
        };
        Some((authorized, exec))
    }

    /// `x` on a step: plan, authorize, then preview (or, for a wave, confirm at once).
    pub fn run_step(&mut self, step: StepRef) {
        let planned = (|| {
            let alert = self.store.alert(&step.alert).ok_or("the alert is gone")?;
            let rb = self
                .runbooks
                .get(&step.runbook)
                .ok_or("the runbook is no longer loaded")?;
            let s = rb
                .steps
                .iter()
                .find(|s| s.line == step.line)
                .ok_or("the step is no longer in the runbook")?;
            plan::plan(rb, s, alert, &self.store, self.allow_shell)
        })();
        // A script would run on this machine against real credentials, not the simulator.
        let planned = planned.and_then(|action| match &action {
            Action::Remediate(r) if self.demo && matches!(r.op, Operation::Shell { .. }) => {
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
        let source = self.source_of(&action);
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let result = actions::preview(&authorized, &exec, &source).await;
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
                    .and_then(|c| self.store.cluster(c))
                    .map_or(Environment::Other("unknown".into()), |c| {
                        c.environment.clone()
                    });
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

    /// Which source carries out a remediation: the demo for the demo fleet; else the
    /// Kubernetes source, the Argo CD hub, or the EKS source of the cluster's account and
    /// region. Shell steps run here (no source).
    pub(super) fn remediation_source(&self, r: &Remediation) -> String {
        if self.demo {
            return demo::SOURCE_NAME.into();
        }
        match &r.op {
            Operation::UpdateAddon { .. } => {
                format!("eks:{}/{}", r.cluster.account, r.cluster.region)
            }
            Operation::ArgocdRefresh { .. } | Operation::ArgocdSync { .. } => self
                .sources
                .iter()
                .find(|s| s.name.starts_with("argocd:"))
                .map_or_else(
                    || "argocd (no [hub] in the config)".into(),
                    |s| s.name.clone(),
                ),
            Operation::Shell { .. } => String::new(),
            _ => kube::SOURCE_NAME.into(),
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

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::model::ClusterId;
    use crate::sources::SourceHandle;

    /// A real (not demo) app with one source of each kind, to see where writes go.
    fn real_app() -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let setup =
            super::super::Setup::for_demo(dir.path(), actions::Mode::Operator, Default::default())
                .expect("setup");
        let handle = |name: &str| SourceHandle {
            name: name.into(),
            commands: mpsc::channel(1).0,
        };
        let sources = vec![
            handle("eks:prod/us-east-1"),
            handle("cloudwatch:prod/us-east-1"),
            handle("kubernetes"),
            handle("argocd:hub"),
        ];
        let (tx, _) = mpsc::channel(1);
        let clock = crate::clock::Clock::Frozen(chrono::DateTime::UNIX_EPOCH);
        let mut app = App::new(setup, clock, sources, None, tx);
        app.demo = false;
        app
    }

    #[test]
    fn each_write_goes_to_the_system_that_carries_it_out() {
        let app = real_app();
        let cluster = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        for r in Remediation::examples(&cluster, true) {
            let expected = match r.op.kind() {
                "update-addon" => "eks:prod/us-east-1",
                "argocd-refresh" | "argocd-sync" => "argocd:hub",
                "shell" => "",
                _ => "kubernetes",
            };
            assert_eq!(
                app.source_of(&Action::Remediate(r.clone())),
                expected,
                "{}",
                r.op.kind()
            );
        }
        let mut demo = real_app();
        demo.demo = true;
        let restart = Remediation::examples(&cluster, true).remove(0);
        assert_eq!(demo.source_of(&Action::Remediate(restart)), "demo");
    }
}
