//! User intents that change the world, the one authorization point, the audit log and
//! the executor. A write reaches a system only as an `Authorized` value, which only
//! `authorize` can make: a view that forgets the check does not compile.

mod ack;
mod audit;
mod executor;
pub mod remediation;
mod shell;

pub use ack::local_acks_in_force;
pub use audit::{
    AuditEntry, AuditLog, AuditReadError, AuditTail, Outcome, TAIL_BYTES as AUDIT_TAIL_BYTES,
    read as read_audit, read_tail as read_audit_tail,
};
pub use executor::{ExecContext, execute, execute_with_progress, preview};
pub use remediation::{Confirmation, Operation, Remediation};

use serde::{Deserialize, Serialize};

use crate::model::{ClusterId, PermissionCheck};

/// Who asked for a write through the feed of `fleetdeck serve`: recorded in the server's
/// audit log beside the server's own user and identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUser {
    /// The name of the token the client presented.
    pub token: String,
    /// The role that token carries.
    pub role: Mode,
    /// The OS user of the console that sent the write, as that console said.
    pub os_user: String,
    /// The client's address.
    pub address: String,
}

impl RemoteUser {
    /// How the write's author is shown (an ack's `by`): `bob (token alice)`.
    pub fn who(&self) -> String {
        format!("{} (token {})", self.os_user, self.token)
    }
}

/// Operator may act; viewer sees everything and can change nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Operator,
    Viewer,
}

impl Mode {
    pub fn badge(self) -> &'static str {
        match self {
            Self::Operator => "OPERATOR",
            Self::Viewer => "VIEWER",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }
}

/// A user intent that changes something outside fleetdeck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Hold a wave: no new cell starts; cells in flight finish.
    PauseWave {
        rollout: String,
        wave: usize,
        wave_name: String,
        reason: String,
    },
    /// Release a paused or halted wave.
    ResumeWave {
        rollout: String,
        wave: usize,
        wave_name: String,
    },
    /// `fleetdeck guard` held a wave (soak, circuit breaker, insights); `reason` says why.
    GuardHold {
        rollout: String,
        wave: usize,
        wave_name: String,
        reason: String,
    },
    /// `fleetdeck guard` lifted one of its holds; `reason` says why.
    GuardRelease {
        rollout: String,
        wave: usize,
        wave_name: String,
        reason: String,
    },
    /// A write on one cluster, usually a runbook step (restart, drain, sync, ...).
    Remediate(Remediation),
    /// Acknowledge an alert: an Alertmanager silence with exact matchers, or for sources
    /// with no silences a record in the audit log. Build with [`Action::ack`].
    AckAlert {
        alert: crate::model::AlertKey,
        name: String,
        cluster: Option<String>,
        source: crate::model::AlertSource,
        /// The alert's labels: each becomes an exact matcher of the silence.
        matchers: std::collections::BTreeMap<String, String>,
        minutes: u64,
        comment: String,
    },
    /// Withdraw an ack: expire its silences, or forget the local ack. Build with
    /// [`Action::unack`].
    UnackAlert {
        alert: crate::model::AlertKey,
        name: String,
        cluster: Option<String>,
        source: crate::model::AlertSource,
        silences: Vec<String>,
    },
}

impl Action {
    /// Short machine name, as written in the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PauseWave { .. } => "pause-wave",
            Self::ResumeWave { .. } => "resume-wave",
            Self::GuardHold { .. } => "guard-hold",
            Self::GuardRelease { .. } => "guard-release",
            Self::AckAlert { .. } => "ack-alert",
            Self::UnackAlert { .. } => "unack-alert",
            Self::Remediate(r) => r.op.kind(),
        }
    }

    /// The name of the permission check that covers this action (uncordon needs what
    /// cordon needs).
    pub fn permission_kind(&self) -> &'static str {
        match self.kind() {
            "uncordon" => "cordon",
            kind => kind,
        }
    }

    /// The cluster a remediation acts on (permissions are checked per cluster).
    pub fn cluster(&self) -> Option<&ClusterId> {
        match self {
            Self::Remediate(r) => Some(&r.cluster),
            _ => None,
        }
    }

    /// What the action acts on, e.g. `eks-1-31-upgrade/prod-1`.
    pub fn target(&self) -> String {
        match self {
            Self::PauseWave {
                rollout, wave_name, ..
            }
            | Self::ResumeWave {
                rollout, wave_name, ..
            }
            | Self::GuardHold {
                rollout, wave_name, ..
            }
            | Self::GuardRelease {
                rollout, wave_name, ..
            } => format!("{rollout}/{wave_name}"),
            Self::Remediate(r) => r.target(),
            Self::AckAlert { name, cluster, .. } | Self::UnackAlert { name, cluster, .. } => {
                ack::target(name, cluster.as_deref())
            }
        }
    }

    /// The operator's stated reason, if the action carries one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::PauseWave { reason, .. }
            | Self::GuardHold { reason, .. }
            | Self::GuardRelease { reason, .. } => Some(reason),
            Self::AckAlert { comment, .. } => Some(comment),
            Self::ResumeWave { .. } | Self::Remediate(_) | Self::UnackAlert { .. } => None,
        }
    }

    /// A phrase for messages: "pausing a wave".
    pub fn gerund(&self) -> &'static str {
        match self {
            Self::PauseWave { .. } => "pausing a wave",
            Self::ResumeWave { .. } => "resuming a wave",
            Self::GuardHold { .. } => "holding a wave (guard)",
            Self::GuardRelease { .. } => "releasing a guard hold",
            Self::Remediate(r) => r.op.gerund(),
            Self::AckAlert { .. } => "acknowledging an alert",
            Self::UnackAlert { .. } => "withdrawing an ack",
        }
    }

    /// Every action kind, with placeholder targets: used to prove viewer mode denies all.
    pub fn examples() -> Vec<Action> {
        let cluster = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        let remediations = Remediation::examples(&cluster, true)
            .into_iter()
            .map(Action::Remediate);
        let mut all = vec![
            Action::PauseWave {
                rollout: "r".into(),
                wave: 0,
                wave_name: "w".into(),
                reason: "x".into(),
            },
            Action::ResumeWave {
                rollout: "r".into(),
                wave: 0,
                wave_name: "w".into(),
            },
            Action::GuardHold {
                rollout: "r".into(),
                wave: 0,
                wave_name: "w".into(),
                reason: "x".into(),
            },
            Action::GuardRelease {
                rollout: "r".into(),
                wave: 0,
                wave_name: "w".into(),
                reason: "x".into(),
            },
            ack::example_ack(),
            ack::example_unack(),
        ];
        all.extend(remediations);
        all
    }
}

/// An action that passed `authorize`. The private field means nothing else can make one.
#[derive(Debug)]
pub struct Authorized {
    action: Action,
    _sealed: (),
}

impl Authorized {
    pub fn action(&self) -> &Action {
        &self.action
    }
}

/// Why an action may not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denied {
    pub reason: String,
}

/// The one place that decides whether an action may run. Viewer mode denies every write
/// here, once, for all views; and an action the API server said this user may not do
/// (`permission`, from a SelfSubjectAccessReview) is unavailable, with the server's reason,
/// rather than tried and failed.
pub fn authorize(
    mode: Mode,
    permission: Option<&PermissionCheck>,
    action: Action,
) -> Result<Authorized, Denied> {
    if mode == Mode::Viewer {
        return Err(Denied {
            reason: format!("read-only viewer mode: {} is not allowed", action.gerund()),
        });
    }
    if let Some(check) = permission.filter(|c| !c.allowed) {
        return Err(Denied {
            reason: format!(
                "unavailable: {} needs {} ({})",
                action.gerund(),
                check.checked,
                check.reason
            ),
        });
    }
    Ok(Authorized {
        action,
        _sealed: (),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_mode_denies_every_write_action() {
        for action in Action::examples() {
            let denied =
                authorize(Mode::Viewer, None, action.clone()).expect_err("viewer must be denied");
            assert!(denied.reason.contains("read-only viewer mode"), "{denied}");
        }
    }

    #[test]
    fn an_action_the_api_server_refuses_is_unavailable_with_its_reason() {
        let refused = PermissionCheck {
            action: "pause-wave".into(),
            checked: "patch applicationsets.argoproj.io".into(),
            namespace: Some("argocd".into()),
            allowed: false,
            reason: "RBAC: no rule allows it".into(),
        };
        for action in Action::examples() {
            let denied = authorize(Mode::Operator, Some(&refused), action).expect_err("refused");
            assert!(denied.reason.starts_with("unavailable:"), "{denied}");
            assert!(
                denied.reason.contains("RBAC: no rule allows it"),
                "{denied}"
            );
        }
        let allowed = PermissionCheck {
            allowed: true,
            ..refused
        };
        assert!(
            authorize(
                Mode::Operator,
                Some(&allowed),
                Action::examples()[0].clone()
            )
            .is_ok()
        );
    }

    #[test]
    fn operator_mode_authorizes_every_action_unchanged() {
        for action in Action::examples() {
            let ok = authorize(Mode::Operator, None, action.clone()).expect("operator may act");
            assert_eq!(ok.action(), &action);
        }
    }
}
