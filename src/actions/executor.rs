//! Runs authorized actions: intent to the audit log, the call, the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Action, AuditLog, Authorized, Mode, Operation, Outcome};
use crate::clock::Clock;
use crate::sources::remediation::RemediateRequest;
use crate::sources::{SourceCommand, SourceHandle};

/// How long a source may take to answer a write before it is reported as timed out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// What an executor needs: where to record, whom to ask, who is asking.
#[derive(Clone)]
pub struct ExecContext {
    /// Where writes are recorded; `None` when they are relayed to a server (`--connect`),
    /// which records them in its own.
    pub audit: Option<Arc<AuditLog>>,
    pub sources: Vec<SourceHandle>,
    pub mode: Mode,
    pub os_user: String,
    pub identity: String,
    pub clock: Clock,
    /// Every write goes to the server this console is connected to (`--connect`), through
    /// the source named by the engine: the server authorizes, carries out and audits it.
    pub relay: bool,
    /// Who asked, for a write a remote console sent through the feed (`fleetdeck serve`).
    pub remote: Option<super::RemoteUser>,
}

impl ExecContext {
    /// Who a write is done by, as the systems written to record it (a pause's annotation,
    /// a silence's author): the remote console's user when the write came through the
    /// feed.
    pub fn by(&self) -> String {
        self.remote
            .as_ref()
            .map_or_else(|| self.os_user.clone(), super::RemoteUser::who)
    }
}

/// Runs one authorized action to its outcome. The intent is synced to the audit file
/// before the call; if that fails, the call is not made.
pub async fn execute(action: Authorized, ctx: ExecContext, source: &str) -> Outcome {
    execute_with_progress(action, ctx, source, None).await
}

/// [`execute`], with progress lines (a drain's evictions) sent to `progress`.
pub async fn execute_with_progress(
    action: Authorized,
    ctx: ExecContext,
    source: &str,
    progress: Option<mpsc::Sender<String>>,
) -> Outcome {
    if ctx.relay {
        // The server authorizes, audits and carries it out; its answer is the outcome.
        let result = relay(action.action(), &ctx, source, false).await;
        return Outcome {
            time: ctx.clock.now(),
            ok: result.is_ok(),
            message: result.unwrap_or_else(|e| e),
        };
    }
    let now = ctx.clock.now();
    let Some(audit) = ctx.audit.clone() else {
        return refused(&ctx, "not run: no audit log to record it in".into());
    };
    let (os_user, identity, mode) = (ctx.os_user.clone(), ctx.identity.clone(), ctx.mode);
    let remote = ctx.remote.clone();
    let intent_log = audit.clone();
    let written = tokio::task::spawn_blocking(move || {
        let audit = intent_log;
        let id = audit.intent_for(&action, mode, &os_user, &identity, remote.as_ref(), now);
        (action, id)
    })
    .await;
    let (action, id) = match written {
        Ok((action, Ok(id))) => (action, id),
        Ok((_, Err(e))) => return refused(&ctx, format!("not run: audit log unwritable: {e}")),
        Err(e) => return refused(&ctx, format!("not run: audit writer failed: {e}")),
    };

    let result = call(action.action(), &ctx, source, false, progress).await;
    let outcome = Outcome {
        time: ctx.clock.now(),
        ok: result.is_ok(),
        message: result.unwrap_or_else(|e| e),
    };
    let (record, id_for_log) = (outcome.clone(), id.clone());
    let saved = tokio::task::spawn_blocking(move || audit.outcome(&id_for_log, &record)).await;
    if !matches!(saved, Ok(Ok(()))) {
        tracing::error!(id, "could not record the outcome in the audit log");
    }
    outcome
}

fn refused(ctx: &ExecContext, message: String) -> Outcome {
    Outcome {
        time: ctx.clock.now(),
        ok: false,
        message,
    }
}

/// What an authorized action would do, without doing it: a remediation's dry run (a
/// server-side `dryRun=All` for Kubernetes writes), or a shell step's script in full. Not
/// audited: nothing changes. Pause and resume have their own dialogs and no preview.
pub async fn preview(
    action: &Authorized,
    ctx: &ExecContext,
    source: &str,
) -> Result<String, String> {
    match action.action() {
        Action::Remediate(r) => match &r.op {
            Operation::Shell { script, env } => Ok(super::shell::describe(script, env)),
            _ => call(action.action(), ctx, source, true, None).await,
        },
        other => Err(format!("{} has no preview", other.kind())),
    }
}

async fn call(
    action: &Action,
    ctx: &ExecContext,
    source: &str,
    dry_run: bool,
    progress: Option<mpsc::Sender<String>>,
) -> Result<String, String> {
    if ctx.relay {
        return relay(action, ctx, source, dry_run).await;
    }
    if let Some(result) = super::ack::local_outcome(action) {
        return result;
    }
    if let Action::Remediate(r) = action
        && let Operation::Shell { script, env } = &r.op
    {
        // Shell steps run here, not in a source; `allow_shell` was checked before.
        return super::shell::run(script, env).await;
    }
    let handle = ctx
        .sources
        .iter()
        .find(|h| h.name == source)
        .ok_or_else(|| format!("no source named {source} is running"))?;
    let (reply, answer) = oneshot::channel();
    let mut timeout = WRITE_TIMEOUT;
    let command = match action.clone() {
        Action::PauseWave {
            rollout,
            wave,
            reason,
            ..
        } => SourceCommand::PauseWave {
            rollout,
            wave,
            by: ctx.by(),
            reason,
            reply,
        },
        Action::ResumeWave { rollout, wave, .. } => SourceCommand::ResumeWave {
            rollout,
            wave,
            by: ctx.by(),
            reply,
        },
        // The guard writes its own holds (`crate::guard`); the console never runs them.
        Action::GuardHold { .. } | Action::GuardRelease { .. } => {
            return Err(format!(
                "{} is done by `fleetdeck guard`, not from the console",
                action.gerund()
            ));
        }
        Action::Remediate(remediation) => {
            if let Operation::Drain { timeout_secs, .. } = &remediation.op {
                // The drain times out by itself; allow for its last evictions.
                timeout = Duration::from_secs(timeout_secs + 30);
            }
            SourceCommand::Remediate(RemediateRequest {
                remediation,
                dry_run,
                progress,
                reply,
            })
        }
        Action::AckAlert {
            alert,
            source: crate::model::AlertSource::SecurityHub,
            comment,
            ..
        } => SourceCommand::UpdateFindings {
            alert,
            notified: true,
            by: ctx.by(),
            note: comment,
            reply,
        },
        Action::UnackAlert {
            alert,
            source: crate::model::AlertSource::SecurityHub,
            ..
        } => SourceCommand::UpdateFindings {
            alert,
            notified: false,
            by: ctx.by(),
            note: String::new(),
            reply,
        },
        Action::AckAlert {
            alert,
            matchers,
            minutes,
            comment,
            ..
        } => SourceCommand::SilenceAlert {
            alert,
            matchers,
            created_by: ctx.by(),
            comment,
            minutes,
            reply,
        },
        Action::UnackAlert {
            alert, silences, ..
        } => SourceCommand::ExpireSilences {
            alert,
            ids: silences,
            reply,
        },
    };
    ask(handle, command, answer, timeout).await
}

/// Sends a write to its source and waits for the answer, at most `timeout`.
async fn ask(
    handle: &SourceHandle,
    command: SourceCommand,
    answer: oneshot::Receiver<Result<String, String>>,
    timeout: Duration,
) -> Result<String, String> {
    let source = &handle.name;
    handle
        .commands
        .send(command)
        .await
        .map_err(|_| format!("source {source} has stopped"))?;
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(format!("source {source} dropped the request")),
        Err(_) => Err(format!(
            "timed out after {}s waiting for {source}; the change may still apply",
            timeout.as_secs()
        )),
    }
}

/// A write of a console connected to a server (`--connect`): the whole action goes to the
/// feed source, which sends it to the server and brings back its answer.
async fn relay(
    action: &Action,
    ctx: &ExecContext,
    source: &str,
    dry_run: bool,
) -> Result<String, String> {
    let handle = ctx
        .sources
        .iter()
        .find(|h| h.name == source)
        .ok_or_else(|| format!("no source named {source} is running"))?;
    let (reply, answer) = oneshot::channel();
    let timeout = match action {
        Action::Remediate(r) => match &r.op {
            Operation::Drain { timeout_secs, .. } => Duration::from_secs(timeout_secs + 60),
            _ => WRITE_TIMEOUT * 2,
        },
        _ => WRITE_TIMEOUT * 2,
    };
    let command = SourceCommand::Relay {
        action: action.clone(),
        dry_run,
        os_user: ctx.os_user.clone(),
        reply,
    };
    ask(handle, command, answer, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{Remediation, authorize, read_audit};
    use crate::model::ClusterId;

    fn drain() -> Action {
        let cluster = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        Action::Remediate(
            Remediation::examples(&cluster, true)
                .into_iter()
                .find(|r| r.op.kind() == "drain")
                .expect("drain"),
        )
    }

    /// A source that, when the call reaches it, reads the audit file as another process
    /// would, and answers with what it found there.
    fn witness(path: std::path::PathBuf) -> mpsc::Sender<SourceCommand> {
        let (commands, mut inbox) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(command) = inbox.recv().await {
                if let SourceCommand::Remediate(request) = command {
                    let (entries, _) = read_audit(&path).expect("readable");
                    let seen = match entries.as_slice() {
                        [e] if e.outcome.is_none() => Ok("intent on disk, no outcome yet".into()),
                        other => Err(format!("audit at call time: {other:?}")),
                    };
                    request.progress("evicted kube-system/coredns-x");
                    request.answer(seen);
                }
            }
        });
        commands
    }

    /// An operator's context whose only source is `kubernetes`, fed to `commands`.
    fn context(audit: Arc<AuditLog>, commands: mpsc::Sender<SourceCommand>) -> ExecContext {
        ExecContext {
            audit: Some(audit),
            sources: vec![SourceHandle {
                name: "kubernetes".into(),
                commands,
            }],
            mode: Mode::Operator,
            os_user: "alice".into(),
            identity: "arn:aws:iam::111111111111:role/oncall".into(),
            clock: Clock::Frozen(chrono::DateTime::UNIX_EPOCH),
            relay: false,
            remote: None,
        }
    }

    #[tokio::test]
    async fn the_intent_is_synced_before_the_call_and_the_outcome_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Arc::new(AuditLog::open(&path).expect("open"));
        let ctx = context(audit, witness(path.clone()));
        let action = authorize(Mode::Operator, None, drain()).expect("operator");
        let (progress, mut lines) = mpsc::channel(8);
        let outcome = execute_with_progress(action, ctx, "kubernetes", Some(progress)).await;
        assert_eq!(outcome.message, "intent on disk, no outcome yet");
        assert!(outcome.ok);
        assert_eq!(
            lines.recv().await.as_deref(),
            Some("evicted kube-system/coredns-x")
        );
        let (entries, _) = read_audit(&path).expect("readable");
        assert_eq!(entries[0].outcome.as_ref(), Some(&outcome));
        assert_eq!(entries[0].identity, "arn:aws:iam::111111111111:role/oncall");
    }

    #[tokio::test]
    async fn no_call_without_an_intent_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Arc::new(AuditLog::open(&path).expect("open"));
        // The file is made read-only under the open handle's feet: the intent cannot be
        // written, so the source must never hear of the action.
        drop(audit);
        std::fs::write(&path, "").expect("reset");
        let readonly = std::fs::File::open(&path).expect("open read-only");
        let audit = Arc::new(AuditLog::from_file_for_tests(&path, readonly));
        let (commands, mut inbox) = mpsc::channel(4);
        let ctx = context(audit, commands);
        let action = authorize(Mode::Operator, None, drain()).expect("operator");
        let outcome = execute(action, ctx, "kubernetes").await;
        assert!(!outcome.ok);
        assert!(
            outcome.message.starts_with("not run: audit log unwritable"),
            "{}",
            outcome.message
        );
        assert!(inbox.try_recv().is_err(), "the source was never called");
    }

    #[tokio::test]
    async fn a_preview_is_not_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Arc::new(AuditLog::open(&path).expect("open"));
        let (commands, mut inbox) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(SourceCommand::Remediate(r)) = inbox.recv().await {
                let dry = r.dry_run;
                r.answer(Ok(format!("dry_run={dry}")));
            }
        });
        let ctx = context(audit, commands);
        let action = authorize(Mode::Operator, None, drain()).expect("operator");
        assert_eq!(
            preview(&action, &ctx, "kubernetes").await,
            Ok("dry_run=true".into())
        );
        let (entries, _) = read_audit(&path).expect("readable");
        assert!(entries.is_empty());
    }
}
