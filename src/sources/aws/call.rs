//! One AWS call with the budget, retries on throttling and transient failures (exponential
//! backoff with full jitter), and counters that say what really happened. A throttle also
//! slows the budget (see `budget.rs`): the SDK's own retries stay off, so that every
//! attempt is paced by the budget shared with the account and region's other source and
//! counted here.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::RequestBudget;

/// At most this many attempts per call.
const MAX_ATTEMPTS: u32 = 4;
const BASE_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Error codes AWS services use for "slow down" (the SDK's own list, `aws-runtime`'s
/// `THROTTLING_ERRORS`).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes for a request that timed out on the service's side: worth another try.
const TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Error codes that mean the credentials or permissions are wrong: retrying won't help.
const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// What kind of failure a call ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Still throttled after every retry.
    Throttled,
    /// Credentials missing, expired or not allowed.
    Auth,
    NotFound,
    /// Timeouts, connection failures, 5xx: still failing after every retry.
    Unavailable,
    /// Anything else (a bad request, a malformed response).
    Other,
}

/// A failed call, with what was being done and what AWS said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub kind: CallKind,
    pub operation: String,
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for CallError {}

/// Counters for one source, reported in its `SourceHealth`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Every attempt sent, retries included.
    pub calls: u64,
    /// Attempts answered with a throttling error.
    pub throttles: u64,
    /// Calls that failed after their retries.
    pub errors: u64,
}

fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> (CallKind, bool, String) {
    let credentials = credentials_error(err);
    match err {
        SdkError::ServiceError(ctx) if ctx.raw().status().is_success() => {
            // A 2xx whose body is not the operation's output: a truncated body, a proxy's
            // page. Not a service error at all; worth another try.
            let status = ctx.raw().status().as_u16();
            (
                CallKind::Unavailable,
                true,
                format!(
                    "unreadable response (HTTP {status}): {}",
                    source_chain(ctx.err())
                ),
            )
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or_default();
            let message = ctx.err().message().unwrap_or_default();
            let text = if code.is_empty() {
                format!("HTTP {status} {message}").trim_end().to_string()
            } else {
                format!("{code}: {message}")
            };
            if status == 429 || THROTTLING_CODES.contains(&code) {
                (CallKind::Throttled, true, text)
            } else if AUTH_CODES.contains(&code) || status == 401 || status == 403 {
                (CallKind::Auth, false, text)
            } else if code == "ResourceNotFoundException" || status == 404 {
                (CallKind::NotFound, false, text)
            } else if status >= 500 || TRANSIENT_CODES.contains(&code) {
                (CallKind::Unavailable, true, text)
            } else {
                (CallKind::Other, false, text)
            }
        }
        SdkError::TimeoutError(_) => (CallKind::Unavailable, true, "timed out".into()),
        // The credential chain failed (an expired SSO session, a refused AssumeRole):
        // nothing was sent, and retrying at once will not fix it.
        SdkError::DispatchFailure(_) if credentials.is_some() => {
            let detail = credentials.map(source_chain).unwrap_or_default();
            (
                CallKind::Auth,
                false,
                format!("no AWS credentials: {detail}"),
            )
        }
        SdkError::DispatchFailure(e) => {
            let detail = if e.is_timeout() {
                "timed out connecting".to_string()
            } else if e.is_io() {
                format!("connection failed: {}", source_chain(err))
            } else {
                format!("request not sent: {}", source_chain(err))
            };
            // A missing or broken credential chain shows up here too: don't hammer it.
            let user = e.is_user();
            (
                if user {
                    CallKind::Auth
                } else {
                    CallKind::Unavailable
                },
                !user,
                detail,
            )
        }
        SdkError::ResponseError(_) => (
            CallKind::Unavailable,
            true,
            format!("unreadable response: {}", source_chain(err)),
        ),
        SdkError::ConstructionFailure(_) => (
            CallKind::Other,
            false,
            format!("request not built: {}", source_chain(err)),
        ),
        _ => (CallKind::Other, false, source_chain(err)),
    }
}

/// The credential provider's error behind a failed call, if that is what failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return Some(e);
        }
        cur = e.source();
    }
    None
}

/// The error and its sources, innermost last, on one line.
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Full-jitter backoff for attempt `n` (0-based): uniform in [0, min(cap, base * 2^n)].
fn backoff(n: u32) -> Duration {
    let ceiling = BASE_BACKOFF.saturating_mul(1 << n.min(10)).min(MAX_BACKOFF);
    ceiling.mul_f64(fastrand::f64())
}

/// Runs `op` under the budget, retrying throttling and transient failures.
pub async fn call<T, E, F, Fut>(
    budget: &RequestBudget,
    stats: &mut CallStats,
    operation: &str,
    mut op: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut attempt = 0;
    loop {
        let grant = budget.acquire().await;
        stats.calls += 1;
        let err = match op().await {
            Ok(out) => return Ok(out),
            Err(err) => err,
        };
        let (kind, retry, message) = classify(&err);
        if kind == CallKind::Throttled {
            stats.throttles += 1;
            // Slows every source of the account and region, not just this retry.
            if let Some(rate) = budget.throttled(grant) {
                tracing::info!(operation, "throttled: pacing at {rate:.1} requests/s");
            }
        }
        attempt += 1;
        if !retry || attempt >= MAX_ATTEMPTS {
            stats.errors += 1;
            tracing::warn!(operation, ?kind, attempt, "AWS call failed: {message}");
            return Err(CallError {
                kind,
                operation: operation.to_string(),
                message,
            });
        }
        let wait = backoff(attempt - 1);
        tracing::debug!(operation, ?kind, attempt, ?wait, "retrying: {message}");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn service_error(status: u16, code: &str) -> SdkError<DescribeAlarmsError, HttpResponse> {
        let err =
            DescribeAlarmsError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let status = StatusCode::try_from(status).expect("a valid status");
        SdkError::service_error(err, HttpResponse::new(status, SdkBody::empty()))
    }

    #[test]
    fn classifies_throttling_auth_and_transient_codes() {
        let kind = |status, code| {
            let (kind, retry, _) = classify(&service_error(status, code));
            (kind, retry)
        };
        assert_eq!(kind(400, "Throttling"), (CallKind::Throttled, true));
        assert_eq!(
            kind(400, "PriorRequestNotComplete"),
            (CallKind::Throttled, true)
        );
        assert_eq!(kind(429, ""), (CallKind::Throttled, true));
        assert_eq!(kind(400, "AccessDenied"), (CallKind::Auth, false));
        assert_eq!(kind(400, "RequestTimeout"), (CallKind::Unavailable, true));
        assert_eq!(
            kind(503, "ServiceUnavailable"),
            (CallKind::Unavailable, true)
        );
        assert_eq!(kind(400, "ValidationError"), (CallKind::Other, false));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 0..20 {
            let b = backoff(n);
            assert!(b <= MAX_BACKOFF, "{b:?}");
            assert!(b <= BASE_BACKOFF.saturating_mul(1 << n.min(10)));
        }
    }
}
