//! The request a source gets to carry out, or preview, a remediation.

use tokio::sync::{mpsc, oneshot};

use super::WriteResult;
use crate::actions::Remediation;

/// Carry out `remediation`, or with `dry_run` only say what it would do (Kubernetes: a
/// server-side dry run, `dryRun=All`; EKS: the versions it would go from and to).
#[derive(Debug)]
pub struct RemediateRequest {
    pub remediation: Remediation,
    pub dry_run: bool,
    /// Progress lines while it runs (a drain's evictions); `None` when nobody listens.
    pub progress: Option<mpsc::Sender<String>>,
    /// The outcome: a short human message either way.
    pub reply: oneshot::Sender<WriteResult>,
}

impl RemediateRequest {
    /// Sends a progress line; a full or closed channel only loses the line.
    pub fn progress(&self, line: impl Into<String>) {
        if let Some(p) = &self.progress {
            let _ = p.try_send(line.into());
        }
    }

    /// Answers; the requester may have stopped waiting.
    pub fn answer(self, result: WriteResult) {
        let _ = self.reply.send(result);
    }
}
