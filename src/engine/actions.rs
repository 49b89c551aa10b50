//! The engine's action path: the one authorization point with what the engine knows (the
//! mode, the API server's answers on permissions), which source carries each write out,
//! and what a finished action changes in the picture (a local ack).

use std::future::Future;
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr};
use tokio::sync::mpsc;

use super::Engine;
use crate::actions::{self, Action, AuditLog, Authorized, ExecContext, Mode, Operation, Outcome};
use crate::app::Setup;
use crate::clock::Clock;
use crate::sources::{demo, kube};

impl Engine {
    /// Opens the audit log and makes writes possible, for an operator. Viewers never
    /// write: no audit log is opened, so no data directory is needed.
    pub fn open_actions(&mut self, setup: &Setup) -> Result<()> {
        if self.mode == Mode::Viewer {
            return Ok(());
        }
        // Connected to a server: it audits what this console asks of it.
        let audit = match self.relay {
            Some(_) => None,
            None => Some(Arc::new(AuditLog::open(&setup.audit_path).wrap_err_with(
                || format!("cannot open the audit log {}", setup.audit_path.display()),
            )?)),
        };
        self.exec = Some(ExecContext {
            audit,
            sources: self.sources.clone(),
            mode: self.mode,
            os_user: setup.os_user.clone(),
            identity: if self.demo {
                "demo (simulated)".into()
            } else {
                "unknown".into()
            },
            // Audit records carry real time, even when the demo's clock runs fast.
            clock: Clock::Wall,
            relay: self.relay.is_some(),
            remote: None,
        });
        Ok(())
    }

    /// Uses `exec` for writes (tests give their own audit log and user).
    pub fn set_executor(&mut self, exec: Option<ExecContext>) {
        self.exec = exec;
    }

    /// Who writes, as the audit log records them; empty without an executor.
    pub fn os_user(&self) -> &str {
        self.exec.as_ref().map_or("", |e| e.os_user.as_str())
    }

    /// The one authorization point: the mode, then the API server's answer on this
    /// permission for the action's cluster. Without an executor nothing can run.
    pub fn authorize(&self, action: Action) -> Result<(Authorized, ExecContext), String> {
        let permission = self
            .store
            .permission(action.permission_kind(), action.cluster());
        let authorized =
            actions::authorize(self.mode(), permission, action).map_err(|d| d.reason)?;
        let exec = self
            .exec
            .clone()
            .ok_or("no source can carry out actions here")?;
        Ok((authorized, exec))
    }

    /// The same authorization point for a write a remote console sent through the feed
    /// (`fleetdeck serve`): the mode is the lesser of this process's and the caller's
    /// role, so a viewer's write is refused here whatever the client sent; what runs is
    /// audited with who asked.
    pub fn authorize_remote(
        &self,
        action: Action,
        remote: actions::RemoteUser,
    ) -> Result<(Authorized, ExecContext), String> {
        let mode = match (self.mode, remote.role) {
            (Mode::Operator, Mode::Operator) => Mode::Operator,
            _ => Mode::Viewer,
        };
        let permission = self
            .store
            .permission(action.permission_kind(), action.cluster());
        let authorized = actions::authorize(mode, permission, action).map_err(|d| d.reason)?;
        let mut exec = self
            .exec
            .clone()
            .ok_or("no source can carry out actions here")?;
        exec.remote = Some(remote);
        Ok((authorized, exec))
    }

    /// Carries out an authorized action through the source that owns it: the intent is
    /// audited before the call, the outcome after. Progress lines (a drain's evictions)
    /// go to `progress`.
    pub fn execute(
        &self,
        authorized: Authorized,
        exec: ExecContext,
        progress: Option<mpsc::Sender<String>>,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        let source = self.source_of(authorized.action());
        async move { actions::execute_with_progress(authorized, exec, &source, progress).await }
    }

    /// What an authorized remediation would do, without doing it (not audited).
    pub fn preview(
        &self,
        authorized: Authorized,
        exec: ExecContext,
    ) -> impl Future<Output = Result<String, String>> + Send + 'static {
        let source = self.source_of(authorized.action());
        async move { actions::preview(&authorized, &exec, &source).await }
    }

    /// A finished action's effect on the picture: a local ack lives in the store (a
    /// silence comes back from its source).
    pub fn finished(&mut self, action: &Action, outcome: &Outcome) {
        self.finished_by(action, outcome, None);
    }

    /// [`Engine::finished`] for a write a remote console asked for: the ack is theirs.
    /// A console that relays its writes leaves this to the server, whose feed brings the
    /// ack back.
    pub fn finished_by(&mut self, action: &Action, outcome: &Outcome, by: Option<&str>) {
        if !outcome.ok || self.relay.is_some() {
            return;
        }
        let by = by.unwrap_or(self.os_user()).to_string();
        if let Some((key, ack)) = action.local_ack_effect(&by, self.clock.now()) {
            self.fold(crate::model::SourceEvent::LocalAck { alert: key, ack });
        }
    }

    /// The source that carries `action` out.
    pub fn source_of(&self, action: &Action) -> String {
        if let Some(feed) = &self.relay {
            return feed.clone();
        }
        let rollout = match action {
            Action::PauseWave { rollout, .. }
            | Action::ResumeWave { rollout, .. }
            | Action::GuardHold { rollout, .. }
            | Action::GuardRelease { rollout, .. } => rollout,
            Action::Remediate(r) => return self.remediation_source(&r.op, &r.cluster),
            // The demo simulates its Alertmanager itself.
            Action::AckAlert { .. } | Action::UnackAlert { .. } if self.demo => {
                return demo::SOURCE_NAME.into();
            }
            Action::AckAlert {
                alert,
                source: crate::model::AlertSource::SecurityHub,
                ..
            }
            | Action::UnackAlert {
                alert,
                source: crate::model::AlertSource::SecurityHub,
                ..
            } => return self.securityhub_source(alert),
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

    /// The Security Hub source holding the findings of `alert`: the one of its cluster's
    /// account and region, else that account's (reading the aggregation region).
    fn securityhub_source(&self, alert: &crate::model::AlertKey) -> String {
        let cluster = self
            .store
            .alerts()
            .find(|a| &a.key == alert)
            .and_then(|a| a.cluster.clone());
        let Some(c) = cluster else {
            return "securityhub (the alert is no longer known)".into();
        };
        let exact = format!("securityhub:{}/{}", c.account, c.region);
        let account = format!("securityhub:{}/", c.account);
        self.sources
            .iter()
            .map(|s| &s.name)
            .find(|n| **n == exact)
            .or_else(|| {
                self.sources
                    .iter()
                    .map(|s| &s.name)
                    .find(|n| n.starts_with(&account))
            })
            .cloned()
            .unwrap_or(exact)
    }

    /// Which source carries out a remediation: the demo for the demo fleet; else the
    /// Kubernetes source, the Argo CD hub, or the EKS source of the cluster's account and
    /// region. Shell steps run here (no source).
    fn remediation_source(&self, op: &Operation, cluster: &crate::model::ClusterId) -> String {
        if self.demo {
            return demo::SOURCE_NAME.into();
        }
        match op {
            Operation::UpdateAddon { .. } => {
                format!("eks:{}/{}", cluster.account, cluster.region)
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
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::actions::Remediation;
    use crate::model::ClusterId;
    use crate::sources::SourceHandle;

    /// A real (not demo) engine with one source of each kind, to see where writes go.
    fn engine(demo: bool) -> Engine {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut setup =
            Setup::for_demo(dir.path(), Mode::Operator, Default::default()).expect("setup");
        setup.demo_mode = demo;
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
        let clock = Clock::Frozen(chrono::DateTime::UNIX_EPOCH);
        Engine::new(&setup, clock, sources, mpsc::channel(1).1)
    }

    #[test]
    fn each_write_goes_to_the_system_that_carries_it_out() {
        let real = engine(false);
        let cluster = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        for r in Remediation::examples(&cluster, true) {
            let expected = match r.op.kind() {
                "update-addon" => "eks:prod/us-east-1",
                "argocd-refresh" | "argocd-sync" => "argocd:hub",
                "shell" => "",
                _ => "kubernetes",
            };
            assert_eq!(
                real.source_of(&Action::Remediate(r.clone())),
                expected,
                "{}",
                r.op.kind()
            );
        }
        let restart = Remediation::examples(&cluster, true).remove(0);
        assert_eq!(engine(true).source_of(&Action::Remediate(restart)), "demo");
    }

    #[test]
    fn without_an_executor_nothing_is_authorized_to_run() {
        let e = engine(false);
        let action = Action::examples().remove(0);
        let refused = e.authorize(action).err();
        assert_eq!(
            refused.as_deref(),
            Some("no source can carry out actions here")
        );
    }
}
