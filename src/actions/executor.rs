//! Runs authorized actions: intent to the audit log, the call, the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Action, AuditLog, Authorized, Mode, Outcome};
use crate::clock::Clock;
use crate::sources::{SourceCommand, SourceHandle};

/// How long a source may take to answer a write before it is reported as timed out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// What an executor needs: where to record, whom to ask, who is asking.
#[derive(Clone)]
pub struct ExecContext {
    pub audit: Arc<AuditLog>,
    pub sources: Vec<SourceHandle>,
    pub mode: Mode,
    pub os_user: String,
    pub identity: String,
    pub clock: Clock,
}

/// Runs one authorized action to its outcome. The intent is synced to the audit file
/// before the call; if that fails, the call is not made.
pub async fn execute(action: Authorized, ctx: ExecContext, source: &str) -> Outcome {
    let now = ctx.clock.now();
    let audit = ctx.audit.clone();
    let (os_user, identity, mode) = (ctx.os_user.clone(), ctx.identity.clone(), ctx.mode);
    let written = tokio::task::spawn_blocking(move || {
        let id = audit.intent(&action, mode, &os_user, &identity, now);
        (action, id)
    })
    .await;
    let (action, id) = match written {
        Ok((action, Ok(id))) => (action, id),
        Ok((_, Err(e))) => return refused(&ctx, format!("not run: audit log unwritable: {e}")),
        Err(e) => return refused(&ctx, format!("not run: audit writer failed: {e}")),
    };

    let result = call(action.action(), &ctx, source).await;
    let outcome = Outcome {
        time: ctx.clock.now(),
        ok: result.is_ok(),
        message: result.unwrap_or_else(|e| e),
    };
    let audit = ctx.audit.clone();
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

async fn call(action: &Action, ctx: &ExecContext, source: &str) -> Result<String, String> {
    if let Some(result) = super::ack::local_outcome(action) {
        return result;
    }
    let handle = ctx
        .sources
        .iter()
        .find(|h| h.name == source)
        .ok_or_else(|| format!("no source named {source} is running"))?;
    let (reply, answer) = oneshot::channel();
    let command = match action.clone() {
        Action::PauseWave {
            rollout,
            wave,
            reason,
            ..
        } => SourceCommand::PauseWave {
            rollout,
            wave,
            by: ctx.os_user.clone(),
            reason,
            reply,
        },
        Action::ResumeWave { rollout, wave, .. } => SourceCommand::ResumeWave {
            rollout,
            wave,
            by: ctx.os_user.clone(),
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
            created_by: ctx.os_user.clone(),
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
    handle
        .commands
        .send(command)
        .await
        .map_err(|_| format!("source {source} has stopped"))?;
    match tokio::time::timeout(WRITE_TIMEOUT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(format!("source {source} dropped the request")),
        Err(_) => Err(format!(
            "timed out after {}s waiting for {source}; the change may still apply",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}
